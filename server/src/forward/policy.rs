//! The one decision on every forwarding request (the lesson of CVE-2025-32728, where sshd's
//! DisableForwarding did not reach agent and X11 forwarding because each kind had its own
//! check): [`decide`] is called for every kind on every path, from the server's settings, the
//! key's authorized_keys options and the certificate's extensions (both already folded into
//! [`Permissions`] at login: a certificate without `permit-port-forwarding` /
//! `permit-agent-forwarding` leaves them false, as OpenSSH).
#![forbid(unsafe_code)]

use msh_common::authorized_keys::Permissions;

use crate::config::forwarding::split_host_port;
use crate::config::Settings;

/// What the client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ask<'a> {
    /// `direct-tcpip`: connect to `host:port` (ssh -L, -D, -W, -J).
    Connect { host: &'a str, port: u32 },
    /// `direct-streamlocal@openssh.com`: connect to a Unix socket (ssh -L to a path).
    ConnectSocket { path: &'a str },
    /// `tcpip-forward`: listen on `host:port` (ssh -R; port 0: the server picks).
    Listen { host: &'a str, port: u32 },
    /// `streamlocal-forward@openssh.com`: listen on a Unix socket (not served by mshd).
    ListenSocket { path: &'a str },
    /// `auth-agent-req@openssh.com`: an agent socket for the sessions.
    Agent,
    /// `x11-req` (ssh -X): not implemented, always refused.
    X11,
}

impl Ask<'_> {
    /// The request as the log and the audit log name it.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Ask::Connect { .. } => "direct-tcpip",
            Ask::ConnectSocket { .. } => "direct-streamlocal",
            Ask::Listen { .. } => "tcpip-forward",
            Ask::ListenSocket { .. } => "streamlocal-forward",
            Ask::Agent => "auth-agent",
            Ask::X11 => "x11",
        }
    }
}

/// Whether `ask` is allowed for a login with `perms` (None: not authenticated) as a user
/// who is root (`user_is_root`) or not. `Err` says why, naming the key or file to change.
pub(crate) fn decide(
    settings: &Settings,
    perms: Option<&Permissions>,
    user_is_root: bool,
    ask: &Ask<'_>,
) -> Result<(), String> {
    let Some(perms) = perms else {
        return Err("not authenticated".into());
    };
    let config = settings.source.display();
    let key_forbids_ports = || {
        format!(
            "port forwarding is not permitted for this login (no-port-forwarding or restrict \
             in {}, or a certificate without permit-port-forwarding)",
            perms.source
        )
    };
    // The first checks of every port or socket forward: the server's `key` (= `value`)
    // allows `what`, then the login may forward ports at all.
    let ports_gate = |allowed: bool, key: &str, value, what: &str| {
        if !allowed {
            return Err(format!(
                "{key} = \"{}\" in {config} refuses {what}",
                name(value)
            ));
        }
        if !perms.port_forwarding {
            return Err(key_forbids_ports());
        }
        Ok(())
    };
    match *ask {
        Ask::Connect { host, port } => {
            ports_gate(
                settings.allow_tcp_forwarding.local(),
                "allow_tcp_forwarding",
                settings.allow_tcp_forwarding,
                "local forwards",
            )?;
            if port == 0 || port > 65535 {
                return Err(format!("port {port} is not a TCP port"));
            }
            permit_lists(settings, perms, host, port, false)
        }
        Ask::ConnectSocket { path } => {
            ports_gate(
                settings.allow_stream_local_forwarding.local(),
                "allow_stream_local_forwarding",
                settings.allow_stream_local_forwarding,
                "Unix-socket forwards",
            )?;
            if !path.starts_with('/') {
                return Err("the socket path is not absolute".into());
            }
            Ok(())
        }
        Ask::Listen { host, port } => {
            ports_gate(
                settings.allow_tcp_forwarding.remote(),
                "allow_tcp_forwarding",
                settings.allow_tcp_forwarding,
                "remote forwards",
            )?;
            if port > 65535 {
                return Err(format!("port {port} is not a TCP port"));
            }
            // As sshd (serverloop.c): only root may listen below 1024, whatever the kernel's
            // net.ipv4.ip_unprivileged_port_start says.
            if port != 0 && port < 1024 && !user_is_root {
                return Err(format!(
                    "port {port} is privileged (below 1024) and the user is not root"
                ));
            }
            permit_lists(settings, perms, host, port, true)
        }
        Ask::ListenSocket { .. } => Err(
            "mshd does not listen on Unix sockets for clients (streamlocal-forward is not supported)"
                .into(),
        ),
        Ask::X11 => Err("mshd does not implement X11 forwarding".into()),
        Ask::Agent => {
            if !settings.allow_agent_forwarding {
                return Err(format!(
                    "allow_agent_forwarding = false in {config}"
                ));
            }
            if !perms.agent_forwarding {
                return Err(format!(
                    "agent forwarding is not permitted for this login (no-agent-forwarding or \
                     restrict in {}, or a certificate without permit-agent-forwarding)",
                    perms.source
                ));
            }
            Ok(())
        }
    }
}

fn name(a: crate::config::AllowForwarding) -> &'static str {
    use crate::config::AllowForwarding::*;
    match a {
        Yes => "yes",
        No => "no",
        Local => "local",
        Remote => "remote",
    }
}

/// `host:port` against the config's `permit_open` / `permit_listen` (for `listen`), then
/// against the key's `permitopen=` / `permitlisten=` when it has one: both must admit it, as
/// sshd's PermitOpen and permitopen= (channels.c).
fn permit_lists(
    settings: &Settings,
    perms: &Permissions,
    host: &str,
    port: u32,
    listen: bool,
) -> Result<(), String> {
    let (config_list, config_key, key_list, key_option) = if listen {
        (
            &settings.permit_listen,
            "permit_listen",
            &perms.permit_listen,
            "permitlisten=",
        )
    } else {
        (
            &settings.permit_open,
            "permit_open",
            &perms.permit_open,
            "permitopen=",
        )
    };
    if !permitted(config_list, host, port, listen) {
        return Err(format!(
            "{host}:{port} is not in {config_key} in {} ({})",
            settings.source.display(),
            config_list.join(", ")
        ));
    }
    if !key_list.is_empty() && !permitted(key_list, host, port, listen) {
        return Err(format!(
            "{host}:{port} is not in the key's {key_option} ({}) at {}",
            key_list.join(", "),
            perms.source
        ));
    }
    Ok(())
}

/// OpenSSH's permission match (channels.c `open_match` / `open_listen_match_tcp`): `any`
/// admits all, `none` nothing; an entry admits when its port is `*` or equal and its host
/// is `*` or equal (as written, ignoring ASCII case: no name resolution).
fn permitted(list: &[String], host: &str, port: u32, listen: bool) -> bool {
    list.iter().any(|entry| {
        if entry.eq_ignore_ascii_case("any") {
            return true;
        }
        let Some((h, p)) = split_host_port(entry, listen) else {
            return false;
        };
        let port_ok = p == "*" || p.parse::<u32>().is_ok_and(|p| p == port);
        let host_ok = h == "*" || h.eq_ignore_ascii_case(host);
        port_ok && host_ok
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AllowForwarding, FileConfig, Overrides};

    fn settings(edit: impl FnOnce(&mut FileConfig)) -> Settings {
        let mut f = FileConfig::default();
        edit(&mut f);
        Settings::resolve(
            f,
            std::path::Path::new("/etc/msh/mshd.toml"),
            &Overrides::default(),
            false,
        )
        .unwrap()
    }

    /// A key line without options (everything allowed), then `edit`.
    fn perms(edit: impl FnOnce(&mut Permissions)) -> Permissions {
        let mut p = Permissions::from_options(
            &msh_common::authorized_keys::KeyOptions::default(),
            "/home/a/.ssh/authorized_keys:3".into(),
        );
        assert!(p.pty && p.port_forwarding && p.agent_forwarding && p.x11_forwarding);
        edit(&mut p);
        p
    }

    fn from_line(options: &str) -> Permissions {
        let text = format!(
            "{options} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN45veSLTFCiNdHY2Tmn6DOy+AUjLRNVs2g2oxWxjwJ7 t\n"
        );
        let parsed = msh_common::authorized_keys::parse(&text);
        let line = parsed.into_iter().next().unwrap();
        let entry = match line {
            msh_common::authorized_keys::ParsedLine::Key(e) => e,
            other => panic!("{other:?}"),
        };
        Permissions::from_options(&entry.options, "ak:1".into())
    }

    const CONNECT: Ask<'static> = Ask::Connect {
        host: "db.internal",
        port: 5432,
    };
    const SOCKET: Ask<'static> = Ask::ConnectSocket {
        path: "/run/app.sock",
    };
    const LISTEN: Ask<'static> = Ask::Listen {
        host: "localhost",
        port: 8080,
    };
    const ALL: [Ask<'static>; 4] = [CONNECT, SOCKET, LISTEN, Ask::Agent];

    #[test]
    fn defaults_allow_every_kind_but_unix_listeners() {
        let s = settings(|_| {});
        let p = perms(|_| {});
        for ask in ALL {
            assert_eq!(decide(&s, Some(&p), false, &ask), Ok(()), "{ask:?}");
        }
        let e = decide(&s, Some(&p), false, &Ask::ListenSocket { path: "/tmp/x" }).unwrap_err();
        assert!(e.contains("not supported"), "{e}");
        let e = decide(&s, Some(&p), false, &Ask::X11).unwrap_err();
        assert!(e.contains("X11"), "{e}");
    }

    #[test]
    fn nothing_is_allowed_before_authentication() {
        let s = settings(|_| {});
        for ask in ALL {
            assert!(decide(&s, None, false, &ask).is_err(), "{ask:?}");
        }
    }

    #[test]
    fn allow_tcp_forwarding_splits_directions() {
        let p = perms(|_| {});
        let no = settings(|f| f.allow_tcp_forwarding = Some(AllowForwarding::No));
        let e = decide(&no, Some(&p), false, &CONNECT).unwrap_err();
        assert!(
            e.contains("allow_tcp_forwarding = \"no\" in /etc/msh/mshd.toml"),
            "{e}"
        );
        assert!(decide(&no, Some(&p), false, &LISTEN).is_err());
        // It does not cover the agent or Unix sockets (sshd's keys are separate too).
        assert!(decide(&no, Some(&p), false, &Ask::Agent).is_ok());
        assert!(decide(&no, Some(&p), false, &SOCKET).is_ok());

        let local = settings(|f| f.allow_tcp_forwarding = Some(AllowForwarding::Local));
        assert!(decide(&local, Some(&p), false, &CONNECT).is_ok());
        let e = decide(&local, Some(&p), false, &LISTEN).unwrap_err();
        assert!(e.contains("refuses remote forwards"), "{e}");

        let remote = settings(|f| f.allow_tcp_forwarding = Some(AllowForwarding::Remote));
        assert!(decide(&remote, Some(&p), false, &LISTEN).is_ok());
        let e = decide(&remote, Some(&p), false, &CONNECT).unwrap_err();
        assert!(e.contains("refuses local forwards"), "{e}");
    }

    #[test]
    fn stream_local_has_its_own_key() {
        let p = perms(|_| {});
        let s = settings(|f| f.allow_stream_local_forwarding = Some(AllowForwarding::No));
        let e = decide(&s, Some(&p), false, &SOCKET).unwrap_err();
        assert!(e.contains("allow_stream_local_forwarding"), "{e}");
        assert!(decide(&s, Some(&p), false, &CONNECT).is_ok());
        let rel = Ask::ConnectSocket { path: "app.sock" };
        assert!(decide(&settings(|_| {}), Some(&p), false, &rel).is_err());
    }

    #[test]
    fn agent_needs_the_server_and_the_key() {
        let p = perms(|_| {});
        let s = settings(|f| f.allow_agent_forwarding = Some(false));
        let e = decide(&s, Some(&p), false, &Ask::Agent).unwrap_err();
        assert!(e.contains("allow_agent_forwarding = false"), "{e}");
        let s = settings(|_| {});
        let e = decide(
            &s,
            Some(&from_line("no-agent-forwarding")),
            false,
            &Ask::Agent,
        )
        .unwrap_err();
        assert!(e.contains("no-agent-forwarding or restrict in ak:1"), "{e}");
        // no-agent-forwarding leaves ports alone.
        assert!(decide(&s, Some(&from_line("no-agent-forwarding")), false, &CONNECT).is_ok());
    }

    #[test]
    fn key_options_refuse_every_port_kind() {
        let s = settings(|_| {});
        for opts in ["no-port-forwarding", "restrict", "port-forwarding,restrict"] {
            let p = from_line(opts);
            for ask in [CONNECT, SOCKET, LISTEN] {
                let e = decide(&s, Some(&p), false, &ask).unwrap_err();
                assert!(
                    e.contains("port forwarding is not permitted"),
                    "{opts} {ask:?}: {e}"
                );
            }
        }
        // restrict covers the agent too; the re-enabling flags after it work, each alone.
        assert!(decide(&s, Some(&from_line("restrict")), false, &Ask::Agent).is_err());
        let p = from_line("restrict,port-forwarding");
        assert!(decide(&s, Some(&p), false, &CONNECT).is_ok());
        assert!(decide(&s, Some(&p), false, &Ask::Agent).is_err());
        let p = from_line("restrict,agent-forwarding");
        assert!(decide(&s, Some(&p), false, &Ask::Agent).is_ok());
        assert!(decide(&s, Some(&p), false, &LISTEN).is_err());
    }

    #[test]
    fn a_certificate_without_extensions_forwards_nothing() {
        // What auth::cert makes of a certificate with no permit-* extensions.
        let s = settings(|_| {});
        let p = perms(|p| {
            p.port_forwarding = false;
            p.agent_forwarding = false;
        });
        for ask in ALL {
            assert!(decide(&s, Some(&p), false, &ask).is_err(), "{ask:?}");
        }
    }

    #[test]
    fn permit_open_from_config_and_key_both_apply() {
        let p = perms(|_| {});
        let s = settings(|f| f.permit_open = Some(vec!["db.internal:5432".into()]));
        assert!(decide(&s, Some(&p), false, &CONNECT).is_ok());
        let other = Ask::Connect {
            host: "db.internal",
            port: 22,
        };
        let e = decide(&s, Some(&p), false, &other).unwrap_err();
        assert!(e.contains("db.internal:22 is not in permit_open"), "{e}");
        let none = settings(|f| f.permit_open = Some(vec!["none".into()]));
        assert!(decide(&none, Some(&p), false, &CONNECT).is_err());
        let star = settings(|f| f.permit_open = Some(vec!["*:5432".into()]));
        assert!(decide(&star, Some(&p), false, &CONNECT).is_ok());

        let any = settings(|_| {});
        let key = from_line("permitopen=\"localhost:80\"");
        let e = decide(&any, Some(&key), false, &CONNECT).unwrap_err();
        assert!(
            e.contains("not in the key's permitopen= (localhost:80) at ak:1"),
            "{e}"
        );
        let ok = Ask::Connect {
            host: "LOCALHOST",
            port: 80,
        };
        assert!(decide(&any, Some(&key), false, &ok).is_ok());
        // Both lists must admit.
        assert!(decide(&s, Some(&key), false, &ok).is_err());
    }

    #[test]
    fn permit_listen_and_privileged_ports() {
        let p = perms(|_| {});
        let s = settings(|_| {});
        let low = Ask::Listen {
            host: "localhost",
            port: 80,
        };
        let e = decide(&s, Some(&p), false, &low).unwrap_err();
        assert!(e.contains("privileged"), "{e}");
        assert!(decide(&s, Some(&p), true, &low).is_ok());
        let zero = Ask::Listen { host: "", port: 0 };
        assert!(decide(&s, Some(&p), false, &zero).is_ok());

        let s = settings(|f| f.permit_listen = Some(vec!["8080".into()]));
        assert!(decide(&s, Some(&p), false, &LISTEN).is_ok());
        let other = Ask::Listen {
            host: "localhost",
            port: 8081,
        };
        assert!(decide(&s, Some(&p), false, &other).is_err());
        let key = from_line("permitlisten=\"localhost:9000\"");
        let e = decide(&settings(|_| {}), Some(&key), false, &LISTEN).unwrap_err();
        assert!(e.contains("permitlisten="), "{e}");
        let none = settings(|f| f.permit_listen = Some(vec!["none".into()]));
        assert!(decide(&none, Some(&p), false, &LISTEN).is_err());
    }

    #[test]
    fn permit_lists_are_checked_when_read() {
        use crate::config::forwarding::check_permit_list;
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(check_permit_list(&v(&["any"]), false).is_ok());
        assert!(check_permit_list(&v(&["none"]), true).is_ok());
        assert!(check_permit_list(&v(&["[::1]:80", "*:*", "h:22"]), false).is_ok());
        assert!(check_permit_list(&v(&["8080", "localhost:0"]), true).is_ok());
        for bad in [
            &["any", "h:1"][..],
            &[][..],
            &["h"][..],
            &["h:x"][..],
            &["::1:80"][..],
        ] {
            assert!(check_permit_list(&v(bad), false).is_err(), "{bad:?}");
        }
        let e = Settings::resolve(
            FileConfig {
                permit_open: Some(v(&["db"])),
                ..Default::default()
            },
            std::path::Path::new("/etc/msh/mshd.toml"),
            &Overrides::default(),
            false,
        )
        .unwrap_err();
        assert!(
            format!("{e:#}").contains("key `permit_open`: \"db\": expected host:port"),
            "{e:#}"
        );
    }
}
