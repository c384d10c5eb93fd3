//! `ProxyJump` and `ProxyCommand` values (ssh_config(5)): the jump-host list
//! `[user@]host[:port][,...]` (also `ssh://[user@]host[:port]`, `[v6addr]:port`) and the
//! expansion of `%h %p %r %n %%` in a proxy command.
//!
//! A proxy command is run by a shell, so a value substituted into it must not be able to
//! change the command: OpenSSH's CVE-2023-51385 (shell metacharacters in a host or user
//! name given on the command line), CVE-2025-61984 (control characters in a user name) and
//! CVE-2025-61985 (`\0` in an `ssh://` URI) all came from names reaching a shell through
//! `%` tokens. Here a substituted value must consist of characters a POSIX shell gives no
//! meaning to, and must not start with `-` (it would read as an option of the command);
//! anything else is refused with the token and the value named. The command text itself is
//! the user's own configuration and is not checked.

use super::tokens::expand_percent;
use crate::{Error, Result};

fn invalid(message: String) -> Error {
    Error::Invalid(message)
}

/// One jump host of a `ProxyJump` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpHop {
    /// `user@`, if given.
    pub user: Option<String>,
    /// The host (an IPv6 address without its brackets).
    pub host: String,
    /// `:port`, if given.
    pub port: Option<u16>,
}

impl std::fmt::Display for JumpHop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        match (self.host.contains(':'), self.port) {
            (true, Some(p)) => write!(f, "[{}]:{p}", self.host),
            (false, Some(p)) => write!(f, "{}:{p}", self.host),
            (_, None) => write!(f, "{}", self.host),
        }
    }
}

/// Parses a `ProxyJump` value (or `-J`): `none` gives `None`, otherwise the hops in the
/// order they are passed through (the first is connected to first).
pub fn parse_proxy_jump(v: &str) -> Result<Option<Vec<JumpHop>>> {
    let v = v.trim();
    if v.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    if v.is_empty() {
        return Err(invalid("a jump host is required (or none)".to_string()));
    }
    v.split(',')
        .map(|item| parse_hop(item.trim()))
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

fn parse_hop(item: &str) -> Result<JumpHop> {
    let bad = |why: &str| invalid(format!("jump host {item:?}: {why}"));
    if item.is_empty() {
        return Err(bad("empty entry in the list"));
    }
    if let Some(c) = item.chars().find(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad(&format!(
            "contains {c:?}: a control or blank character has no place in a user or host name"
        )));
    }
    let rest = item.strip_prefix("ssh://").unwrap_or(item);
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (user, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    if user == Some("") {
        return Err(bad("empty user name"));
    }
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| bad("unterminated [ in the host"))?;
        match after {
            "" => (h, None),
            _ => match after.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None => return Err(bad("expected :PORT after ]")),
            },
        }
    } else {
        match hostport.split_once(':') {
            Some((h, p)) if !p.contains(':') => (h, Some(p)),
            // A bare IPv6 address: no port can follow it unbracketed.
            Some(_) => (hostport, None),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err(bad("empty host name"));
    }
    if host.starts_with('-') || user.is_some_and(|u| u.starts_with('-')) {
        return Err(bad("a user or host name cannot start with '-'"));
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n != 0 => Some(n),
            _ => return Err(bad(&format!("bad port {p:?} (1-65535)"))),
        },
    };
    Ok(JumpHop {
        user: user.map(str::to_string),
        host: host.to_string(),
        port,
    })
}

/// What `ProxyCommand`'s tokens stand for.
#[derive(Debug, Clone, Copy)]
pub struct CommandTokens<'a> {
    /// The address to connect to: HostName, else the name given (%h).
    pub host: &'a str,
    /// The port (%p).
    pub port: u16,
    /// The remote user (%r).
    pub user: &'a str,
    /// The host name as given on the command line (%n).
    pub original: &'a str,
}

/// `ProxyCommand`'s value with `%h %p %r %n %%` expanded. Refuses a value that a shell
/// would give a meaning to (see the module docs).
pub fn expand_proxy_command(v: &str, t: &CommandTokens) -> Result<String> {
    expand_percent(v, |token, out| {
        let (what, value) = match token {
            Some('%') => {
                out.push('%');
                return Ok(());
            }
            Some('p') => {
                out.push_str(&t.port.to_string());
                return Ok(());
            }
            Some('h') => ("%h (the host name)", t.host),
            Some('n') => ("%n (the host name as given)", t.original),
            Some('r') => ("%r (the user name)", t.user),
            Some(other) => {
                return Err(invalid(format!(
                    "ProxyCommand: unknown token %{other} (ProxyCommand expands %h, %p, %r, %n \
                     and %%)"
                )))
            }
            None => {
                return Err(invalid(
                    "ProxyCommand: a lone % at the end (write %% for a percent sign)".to_string(),
                ))
            }
        };
        check_shell_safe(what, value)?;
        out.push_str(value);
        Ok(())
    })
}

/// Characters a POSIX shell gives no meaning to inside a word: letters and digits (any
/// script), and `.`, `_`, `-`, `:`, `@`, `+`, `%` (an IPv6 zone, `fe80::1%eth0`).
fn shell_inert(c: char) -> bool {
    c.is_alphanumeric() && !c.is_control() || matches!(c, '.' | '_' | '-' | ':' | '@' | '+' | '%')
}

/// Refuses `value` for `what` unless a shell would take it as one plain word.
pub fn check_shell_safe(what: &str, value: &str) -> Result<()> {
    let refuse = |why: String| {
        Err(invalid(format!(
            "refused to put {what} {value:?} into ProxyCommand: {why}. A shell would interpret \
             it (OpenSSH CVE-2023-51385, CVE-2025-61984); msh passes only names made of \
             letters, digits and . _ - : @ + % to a proxy command"
        )))
    };
    if value.is_empty() {
        return refuse("it is empty".to_string());
    }
    if value.starts_with('-') {
        return refuse("it starts with '-' and would read as an option".to_string());
    }
    match value.chars().find(|c| !shell_inert(*c)) {
        Some(c) if c.is_control() => refuse(format!("it contains the control character {c:?}")),
        Some(c) => refuse(format!("it contains {c:?}")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn hop(user: Option<&str>, host: &str, port: Option<u16>) -> JumpHop {
        JumpHop {
            user: user.map(str::to_string),
            host: host.to_string(),
            port,
        }
    }

    #[test]
    fn jump_lists() {
        assert_eq!(parse_proxy_jump("none").unwrap(), None);
        assert_eq!(
            parse_proxy_jump("a@b:22,c, ssh://d@e:2200,[::1]:2222,f").unwrap(),
            Some(vec![
                hop(Some("a"), "b", Some(22)),
                hop(None, "c", None),
                hop(Some("d"), "e", Some(2200)),
                hop(None, "::1", Some(2222)),
                hop(None, "f", None),
            ])
        );
        assert_eq!(
            parse_proxy_jump("u@x@h").unwrap(),
            Some(vec![hop(Some("u@x"), "h", None)])
        );
        for bad in [
            "",
            "a,,b",
            "@h",
            "h:0",
            "h:99999",
            "-oProxyCommand=x",
            "a\u{1b}[2Jb",
            "[::1",
        ] {
            assert!(parse_proxy_jump(bad).is_err(), "{bad:?}");
        }
        assert_eq!(hop(Some("u"), "::1", Some(22)).to_string(), "u@[::1]:22");
    }

    #[test]
    fn command_tokens() {
        let t = CommandTokens {
            host: "10.0.0.5",
            port: 2222,
            user: "ops",
            original: "db",
        };
        assert_eq!(
            expand_proxy_command("nc %h %p # %r %n 100%%", &t).unwrap(),
            "nc 10.0.0.5 2222 # ops db 100%"
        );
        assert!(expand_proxy_command("nc %x", &t).is_err());
        assert!(expand_proxy_command("nc %", &t).is_err());
    }

    #[test]
    fn hostile_names_never_reach_the_shell() {
        for name in [
            "a;touch /tmp/x",
            "$(id)",
            "`id`",
            "a|b",
            "a&b",
            "a b",
            "a\nb",
            "a\u{1b}]0;x",
            "a\0b",
            "-oProxyCommand=x",
            "a'b",
            "a\"b",
            "a\\b",
            "a>b",
            "~root",
            "*",
            "",
        ] {
            let t = CommandTokens {
                host: name,
                port: 22,
                user: name,
                original: name,
            };
            for cmd in ["nc %h %p", "nc -X connect %r", "echo %n"] {
                let err = expand_proxy_command(cmd, &t).unwrap_err().to_string();
                assert!(err.contains("refused"), "{name:?} in {cmd}: {err}");
            }
            // Not used by the command: nothing to refuse.
            assert_eq!(
                expand_proxy_command("nc relay %p", &t).unwrap(),
                "nc relay 22"
            );
        }
        let ok = CommandTokens {
            host: "fe80::1%eth0",
            port: 22,
            user: "j.doe+ops@corp",
            original: "bücher.example",
        };
        assert!(expand_proxy_command("x %h %r %n", &ok).is_ok());
    }
}
