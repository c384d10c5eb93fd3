//! Forwarding specifications as `-L`, `-R`, `-D` and `LocalForward`, `RemoteForward`,
//! `DynamicForward` write them, parsed with OpenSSH's rules (readconf.c `parse_forward` and
//! `parse_fwd_field`): fields separated by `:`, a field in `[...]` taken literally (IPv6
//! addresses), `\` escaping the next character, and a field containing `/` being a Unix
//! socket path. Pure: no I/O, no name resolution.

use std::fmt;
use std::path::PathBuf;

/// Which way a forward goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `-L`: msh listens, the server connects.
    Local,
    /// `-R`: the server listens, msh connects.
    Remote,
    /// `-D`: msh listens and speaks SOCKS, the server connects.
    Dynamic,
}

impl Kind {
    /// The flag that writes this kind.
    pub fn flag(self) -> &'static str {
        match self {
            Kind::Local => "-L",
            Kind::Remote => "-R",
            Kind::Dynamic => "-D",
        }
    }

    /// The ssh_config key that writes this kind.
    pub fn key(self) -> &'static str {
        match self {
            Kind::Local => "LocalForward",
            Kind::Remote => "RemoteForward",
            Kind::Dynamic => "DynamicForward",
        }
    }

    fn word(self) -> &'static str {
        match self {
            Kind::Local => "local",
            Kind::Remote => "remote",
            Kind::Dynamic => "dynamic",
        }
    }
}

/// Where a forward listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// A TCP port, with the bind address as written (None: not given; `""` or `*`: all
    /// interfaces). Port 0 (only for `-R`) lets the server choose.
    Tcp { bind: Option<String>, port: u16 },
    /// A Unix socket path.
    Unix(PathBuf),
}

/// Where a forward's connections go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connect {
    /// host:port.
    Tcp { host: String, port: u16 },
    /// A Unix socket path.
    Unix(PathBuf),
    /// SOCKS: the client of each connection names the destination (`-D`, and `-R` with no
    /// destination).
    Socks,
}

/// One parsed forwarding specification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub kind: Kind,
    pub listen: Listen,
    pub connect: Connect,
    /// The specification as the user wrote it.
    pub spec: String,
    /// Where a config value came from (`path:line`, `-o #2`); None for the flags.
    pub origin: Option<String>,
}

impl fmt::Display for Forward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            None => write!(f, "{} {}", self.kind.flag(), self.spec),
            Some(origin) => write!(f, "{} {} ({origin})", self.kind.key(), self.spec),
        }
    }
}

/// Longest host name or Unix socket path OpenSSH accepts in a spec (NI_MAXHOST, and
/// sun_path's 108 bytes including the NUL).
const MAX_HOST: usize = 1025;
const MAX_SUN_PATH: usize = 108;

/// One `:`-separated field and whether it looks like a path.
struct Field {
    text: String,
    path: bool,
}

/// Splits `spec` into at most 4 fields as OpenSSH's `parse_fwd_field` does; None for a
/// malformed spec (unmatched `[`, text after `]`, a trailing `\`, more than 4 fields).
fn fields(spec: &str) -> Option<Vec<Field>> {
    let mut out = Vec::new();
    let mut rest = spec.trim_start();
    while !rest.is_empty() {
        if out.len() == 4 {
            return None;
        }
        if let Some(inner) = rest.strip_prefix('[') {
            let end = inner.find(']')?;
            let (text, after) = inner.split_at(end);
            let after = after.get(1..).unwrap_or("");
            if !(after.is_empty() || after.starts_with(':')) {
                return None;
            }
            out.push(Field {
                text: text.to_string(),
                path: text.contains('/'),
            });
            rest = after.strip_prefix(':').unwrap_or(after);
            continue;
        }
        let mut text = String::new();
        let mut path = false;
        let mut chars = rest.char_indices();
        let mut next = rest.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => text.push(chars.next()?.1),
                '/' => {
                    path = true;
                    text.push(c);
                }
                ':' => {
                    next = i + 1;
                    break;
                }
                _ => text.push(c),
            }
        }
        out.push(Field { text, path });
        rest = rest.get(next..).unwrap_or("");
    }
    Some(out)
}

/// A port as OpenSSH's `a2port`: a decimal number 0..=65535.
fn port(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses one specification of `kind`. `-R` with one or two fields (`[bind:]port`) is a
/// dynamic reverse forward (SOCKS served by msh), as in ssh.
pub(crate) fn parse(kind: Kind, spec: &str) -> Result<Forward, String> {
    parse_shown(kind, spec, &format!("{} {spec}", kind.flag()))
}

/// [`parse`], with messages starting with `shown` (the flag or key and the value as typed).
fn parse_shown(kind: Kind, spec: &str, shown: &str) -> Result<Forward, String> {
    let bad = || {
        let forms = match kind {
            Kind::Local => {
                "[bind_address:]port:host:hostport, [bind_address:]port:/remote/socket or \
                 /local/socket:host:hostport"
            }
            Kind::Remote => {
                "[bind_address:]port:host:hostport, [bind_address:]port:/local/socket or \
                 [bind_address:]port (SOCKS)"
            }
            Kind::Dynamic => "[bind_address:]port",
        };
        format!(
            "{shown}: bad {} forwarding specification; expected {forms} (IPv6 addresses \
             in brackets: [::1]:8080:host:80)",
            kind.word()
        )
    };
    // Checked first: the other messages quote the spec as typed.
    if let Some(c) = spec.chars().find(|c| c.is_control()) {
        return Err(format!(
            "{:?}: control character {c:?} in a forwarding specification",
            shown
        ));
    }
    let f = fields(spec).ok_or_else(bad)?;
    let tcp_listen = |bind: Option<&Field>, p: &Field| -> Option<Listen> {
        let port = port(&p.text)?;
        // Port 0 asks the server to choose: meaningful for -R only.
        if port == 0 && kind != Kind::Remote {
            return None;
        }
        Some(Listen::Tcp {
            bind: bind.map(|b| b.text.clone()),
            port,
        })
    };
    let tcp_connect = |h: &Field, p: &Field| -> Option<Connect> {
        let port = port(&p.text).filter(|p| *p != 0)?;
        if h.text.is_empty() {
            return None;
        }
        Some(Connect::Tcp {
            host: h.text.clone(),
            port,
        })
    };
    let path = |f: &Field| PathBuf::from(&f.text);
    let socks_ok = matches!(kind, Kind::Dynamic | Kind::Remote);
    let plain_ok = matches!(kind, Kind::Local | Kind::Remote);
    let parsed = match f.as_slice() {
        [a] if socks_ok => {
            let listen = if a.path {
                // A SOCKS listener on a Unix socket: local only (ssh's -D /path).
                (kind == Kind::Dynamic).then(|| Listen::Unix(path(a)))
            } else {
                tcp_listen(None, a)
            };
            listen.map(|l| (l, Connect::Socks))
        }
        [a, b] if b.path && plain_ok && !a.path => {
            tcp_listen(None, a).map(|l| (l, Connect::Unix(path(b))))
        }
        [a, b] if a.path && b.path && kind == Kind::Local => {
            Some((Listen::Unix(path(a)), Connect::Unix(path(b))))
        }
        [a, b] if socks_ok && !a.path && !b.path => {
            tcp_listen(Some(a), b).map(|l| (l, Connect::Socks))
        }
        [a, b, c] if a.path && plain_ok => {
            // A listening Unix socket on the server needs streamlocal-forward, which msh
            // does not request.
            if kind == Kind::Remote {
                None
            } else {
                tcp_connect(b, c).map(|t| (Listen::Unix(path(a)), t))
            }
        }
        [a, b, c] if c.path && plain_ok => {
            tcp_listen(Some(a), b).map(|l| (l, Connect::Unix(path(c))))
        }
        [a, b, c] if plain_ok => tcp_listen(None, a).zip(tcp_connect(b, c)),
        [a, b, c, d] if plain_ok => tcp_listen(Some(a), b).zip(tcp_connect(c, d)),
        _ => None,
    };
    let (listen, connect) = parsed.ok_or_else(bad)?;
    let too_long = match (&listen, &connect) {
        (Listen::Tcp { bind: Some(b), .. }, _) if b.len() >= MAX_HOST => true,
        (Listen::Unix(p), _) if p.as_os_str().len() >= MAX_SUN_PATH => true,
        (_, Connect::Tcp { host, .. }) if host.len() >= MAX_HOST => true,
        (_, Connect::Unix(p)) if p.as_os_str().len() >= MAX_SUN_PATH => true,
        _ => false,
    };
    if too_long {
        return Err(format!("{shown}: a host name or socket path is too long"));
    }
    Ok(Forward {
        kind,
        listen,
        connect,
        spec: spec.to_string(),
        origin: None,
    })
}

/// A `LocalForward`/`RemoteForward` config value (`LISTEN DEST`, two words) or a
/// `DynamicForward` one (one word), as one spec: readconf.c joins the two words with `:`.
pub(crate) fn parse_config_value(kind: Kind, value: &str) -> Result<Forward, String> {
    let words: Vec<&str> = value.split_whitespace().collect();
    let joined = match (kind, words.as_slice()) {
        (_, [one]) => one.to_string(),
        (Kind::Local | Kind::Remote, [listen, dest]) => format!("{listen}:{dest}"),
        _ => {
            return Err(format!(
                "{value:?}: expected {}",
                match kind {
                    Kind::Dynamic => "one [bind_address:]port",
                    _ => "[bind_address:]port host:hostport",
                }
            ))
        }
    };
    let mut f = parse_shown(kind, &joined, &format!("{} {value}", kind.key()))?;
    f.spec = value.trim().to_string();
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(bind: Option<&str>, port: u16) -> Listen {
        Listen::Tcp {
            bind: bind.map(str::to_string),
            port,
        }
    }

    fn to(host: &str, port: u16) -> Connect {
        Connect::Tcp {
            host: host.to_string(),
            port,
        }
    }

    fn ok(kind: Kind, spec: &str) -> (Listen, Connect) {
        let f = parse(kind, spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
        (f.listen, f.connect)
    }

    #[test]
    fn local_forms() {
        assert_eq!(
            ok(Kind::Local, "8080:db:5432"),
            (tcp(None, 8080), to("db", 5432))
        );
        assert_eq!(
            ok(Kind::Local, "0.0.0.0:8080:db:5432"),
            (tcp(Some("0.0.0.0"), 8080), to("db", 5432))
        );
        assert_eq!(
            ok(Kind::Local, "[::1]:8080:[fe80::1]:22"),
            (tcp(Some("::1"), 8080), to("fe80::1", 22))
        );
        assert_eq!(
            ok(Kind::Local, "*:8080:localhost:80"),
            (tcp(Some("*"), 8080), to("localhost", 80))
        );
        assert_eq!(
            ok(Kind::Local, ":8080:localhost:80"),
            (tcp(Some(""), 8080), to("localhost", 80))
        );
        assert_eq!(
            ok(Kind::Local, "8080:/run/pg.sock"),
            (tcp(None, 8080), Connect::Unix("/run/pg.sock".into()))
        );
        assert_eq!(
            ok(Kind::Local, "localhost:8080:/run/pg.sock"),
            (
                tcp(Some("localhost"), 8080),
                Connect::Unix("/run/pg.sock".into())
            )
        );
        assert_eq!(
            ok(Kind::Local, "/tmp/l.sock:db:5432"),
            (Listen::Unix("/tmp/l.sock".into()), to("db", 5432))
        );
        assert_eq!(
            ok(Kind::Local, "/tmp/l.sock:/run/r.sock"),
            (
                Listen::Unix("/tmp/l.sock".into()),
                Connect::Unix("/run/r.sock".into())
            )
        );
        // A backslash escapes the next character (here a colon inside a socket name).
        assert_eq!(
            ok(Kind::Local, "8080:/tmp/a\\:b"),
            (tcp(None, 8080), Connect::Unix("/tmp/a:b".into()))
        );
        assert_eq!(
            ok(Kind::Local, "  8080:db:5432"),
            (tcp(None, 8080), to("db", 5432))
        );
    }

    #[test]
    fn remote_and_dynamic_forms() {
        assert_eq!(
            ok(Kind::Remote, "9000:localhost:80"),
            (tcp(None, 9000), to("localhost", 80))
        );
        assert_eq!(
            ok(Kind::Remote, "0:localhost:80"),
            (tcp(None, 0), to("localhost", 80))
        );
        assert_eq!(ok(Kind::Remote, "9000"), (tcp(None, 9000), Connect::Socks));
        assert_eq!(
            ok(Kind::Remote, "[::1]:9000"),
            (tcp(Some("::1"), 9000), Connect::Socks)
        );
        assert_eq!(
            ok(Kind::Remote, "9000:/tmp/local.sock"),
            (tcp(None, 9000), Connect::Unix("/tmp/local.sock".into()))
        );
        assert_eq!(ok(Kind::Dynamic, "1080"), (tcp(None, 1080), Connect::Socks));
        assert_eq!(
            ok(Kind::Dynamic, "127.0.0.1:1080"),
            (tcp(Some("127.0.0.1"), 1080), Connect::Socks)
        );
        assert_eq!(
            ok(Kind::Dynamic, "/tmp/socks.sock"),
            (Listen::Unix("/tmp/socks.sock".into()), Connect::Socks)
        );
    }

    #[test]
    fn config_values_join_two_words() {
        let f = parse_config_value(Kind::Local, "8080 db:5432").unwrap();
        assert_eq!((f.listen, f.connect), (tcp(None, 8080), to("db", 5432)));
        let f = parse_config_value(Kind::Remote, "[::1]:9000 localhost:22").unwrap();
        assert_eq!(
            (f.listen, f.connect),
            (tcp(Some("::1"), 9000), to("localhost", 22))
        );
        let f = parse_config_value(Kind::Dynamic, "1080").unwrap();
        assert_eq!((f.listen, f.connect), (tcp(None, 1080), Connect::Socks));
        assert!(parse_config_value(Kind::Dynamic, "1080 x").is_err());
        assert!(parse_config_value(Kind::Local, "").is_err());
    }

    #[test]
    fn bad_specs_are_refused_naming_the_spec() {
        let cases = [
            (Kind::Local, "8080"),
            (Kind::Local, "8080:db"),
            (Kind::Local, "0:db:80"),
            (Kind::Local, "8080:db:0"),
            (Kind::Local, "70000:db:80"),
            (Kind::Local, "-1:db:80"),
            (Kind::Local, "x:db:80"),
            (Kind::Local, "8080:db:http"),
            (Kind::Local, "8080::80"),
            (Kind::Local, "a:b:c:d:e"),
            (Kind::Local, "[::1:8080:db:80"),
            (Kind::Local, "[::1]x:8080:db:80"),
            (Kind::Local, "8080:db:80\\"),
            (Kind::Local, ""),
            (Kind::Remote, "/tmp/r.sock:db:80"),
            (Kind::Remote, "a:b:c:d:e"),
            (Kind::Dynamic, "0"),
            (Kind::Dynamic, "1080:db:80"),
            (Kind::Dynamic, "host:1080:x"),
            (Kind::Dynamic, "socks"),
        ];
        for (kind, spec) in cases {
            let e = parse(kind, spec).expect_err(spec);
            assert!(
                e.starts_with(&format!("{} {spec}", kind.flag())),
                "{spec}: {e}"
            );
        }
        let long = format!("8080:{}:80", "h".repeat(1100));
        assert!(parse(Kind::Local, &long).unwrap_err().contains("too long"));
        let e = parse(Kind::Local, "8080:db\x1b[31m:80").unwrap_err();
        assert!(e.contains("control character"), "{e}");
        assert!(!e.contains('\x1b'), "{e}");
    }
}
