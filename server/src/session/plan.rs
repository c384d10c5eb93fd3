//! What a session will run, decided before anything starts (sshd's do_exec / do_child
//! preparation): a pure function of the request, the account, the key's permissions and the
//! connection's facts, so every rule about forced commands, subsystems, argv and the
//! environment is here and tested without a process.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

use msh_common::authorized_keys::Permissions;
use nix::unistd::Gid;

use super::{Kind, PtyReq};
use crate::auth::Account;
use crate::logsafe;
use crate::sys::Identity;

/// What a session channel asked to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Request {
    Shell,
    Exec(String),
    /// A configured subsystem: its name and command line.
    Subsystem {
        name: String,
        command: String,
    },
}

/// What the connection and the channel contribute: addresses for `SSH_CONNECTION` and
/// `SSH_CLIENT`, the `pty-req` (for `TERM`) and the accepted `env` requests.
pub(crate) struct ClientFacts<'a> {
    pub(crate) peer: SocketAddr,
    pub(crate) local: SocketAddr,
    pub(crate) pty: Option<&'a PtyReq>,
    pub(crate) env: &'a [(String, String)],
    /// The forwarded agent's socket (`SSH_AUTH_SOCK`), once the client asked for one.
    pub(crate) agent_socket: Option<&'a std::path::Path>,
}

/// Everything needed to start one session process.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    /// The account the session runs as.
    pub(crate) user: String,
    /// The program (the user's shell).
    pub(crate) program: PathBuf,
    /// argv[0]: `-bash` for a login shell, `bash` for `bash -c`.
    pub(crate) argv0: String,
    /// The arguments after argv[0]: none for a login shell, `-c COMMAND` otherwise.
    pub(crate) args: Vec<String>,
    /// The whole environment (the child's is cleared first).
    pub(crate) env: Vec<(String, String)>,
    /// Entered by the child after the privilege drop (`/` if it cannot).
    pub(crate) home: PathBuf,
    pub(crate) pty: Option<PtyReq>,
    /// Root mode: who the child becomes before exec.
    pub(crate) identity: Option<Identity>,
    /// The command line given to the shell's `-c` (`None`: a login shell).
    pub(crate) run: Option<String>,
    /// What to log as the command (`shell`, the command line, or `subsystem:NAME`).
    pub(crate) command: String,
    /// The subsystem requested (`sftp`), also when a forced command runs instead.
    pub(crate) subsystem: Option<String>,
    pub(crate) kind: Kind,
    /// Root mode, with a PTY: the utmp/wtmp/lastlog records to write (set by the handler
    /// from the settings; see [`crate::login_records::plan`]).
    pub(crate) login: Option<crate::login_records::Login>,
    /// `use_pam`: the program starts through a PAM session keeper (crate::pam).
    pub(crate) pam: Option<PamSession>,
}

/// What the PAM session of a launch needs besides the launch itself.
#[derive(Debug, Clone)]
pub(crate) struct PamSession {
    /// The PAM service (`pam_service`).
    pub(crate) service: String,
    /// The client's address (PAM_RHOST).
    pub(crate) rhost: String,
}

/// Decides what runs for `request`. A forced command (`command=`, a certificate's
/// `force-command`) replaces whatever was asked, and the request's command line goes in
/// `SSH_ORIGINAL_COMMAND`; a subsystem runs its configured command line as an exec would
/// (sshd: do_exec with the `Subsystem` command), so a forced command replaces it too.
/// `groups`: root mode's supplementary groups (the child becomes the user); `None` in
/// unprivileged mode.
pub(crate) fn plan(
    request: Request,
    account: &Account,
    perms: Option<&Permissions>,
    client: &ClientFacts<'_>,
    groups: Option<Vec<Gid>>,
) -> Launch {
    let (requested, subsystem) = match request {
        Request::Shell => (None, None),
        Request::Exec(c) => (Some(c), None),
        Request::Subsystem { name, command } => (Some(command), Some(name)),
    };
    let forced = perms.and_then(|p| p.forced_command.clone());
    let (run, original) = match (&forced, requested) {
        (Some(f), r) => (Some(f.clone()), r),
        (None, r) => (r, None),
    };
    let shell_name = account
        .shell
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "sh".into());
    let (argv0, args) = match &run {
        None => (format!("-{shell_name}"), vec![]),
        Some(c) => (shell_name, vec!["-c".to_string(), c.clone()]),
    };
    let env = environment(account, perms, client, original.as_deref());
    Launch {
        user: account.name.clone(),
        program: account.shell.clone(),
        argv0,
        args,
        env,
        home: account.home.clone(),
        pty: client.pty.cloned(),
        identity: groups.map(|groups| Identity {
            uid: account.uid,
            gid: account.gid,
            groups,
        }),
        command: match (&subsystem, &forced) {
            (Some(name), None) => format!("subsystem:{name}"),
            _ => run.clone().unwrap_or_else(|| "shell".into()),
        },
        kind: match (&forced, &subsystem, &run) {
            (Some(_), _, _) => Kind::Forced,
            (None, Some(_), _) => Kind::Subsystem,
            (None, None, Some(_)) => Kind::Exec,
            (None, None, None) => Kind::Shell,
        },
        subsystem,
        run,
        login: None,
        pam: None,
    }
}

impl Launch {
    /// The session as the text log names it: `exec "CMD" for alice`, `shell for alice`,
    /// `subsystem "sftp" (/usr/lib/openssh/sftp-server) for alice`, with ` (forced by
    /// command=)` when a forced command runs. The client's command line is escaped.
    pub(crate) fn describe(&self) -> String {
        let forced = self.kind == Kind::Forced;
        let what = match (&self.subsystem, &self.run) {
            (Some(name), Some(c)) if forced => {
                format!("subsystem {name:?} replaced by the forced command {c:?}")
            }
            (Some(name), Some(c)) => format!("subsystem {name:?} ({c})"),
            (_, Some(c)) => format!("exec \"{}\"", logsafe::clean(c, logsafe::VALUE_MAX)),
            (_, None) => "shell".into(),
        };
        format!(
            "{what} for {}{}",
            self.user,
            if forced { " (forced by command=)" } else { "" }
        )
    }
}

/// The process environment as sshd builds it: fixed variables, then the client's accepted
/// `env` requests, then the key's `environment=` options (already filtered by
/// `permit_user_environment`), then `SSH_AUTH_SOCK` and `SSH_ORIGINAL_COMMAND`; a later value replaces an
/// earlier one of the same name.
fn environment(
    account: &Account,
    perms: Option<&Permissions>,
    client: &ClientFacts<'_>,
    original: Option<&str>,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: String| {
        env.retain(|(k2, _)| k2 != k);
        env.push((k.to_string(), v));
    };
    let path = if account.uid.is_root() {
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    } else {
        "/usr/local/bin:/usr/bin:/bin:/usr/games"
    };
    let (peer, local) = (client.peer, client.local);
    set("HOME", account.home.display().to_string());
    set("USER", account.name.clone());
    set("LOGNAME", account.name.clone());
    set("SHELL", account.shell.display().to_string());
    set("PATH", path.to_string());
    set("MAIL", format!("/var/mail/{}", account.name));
    set(
        "SSH_CONNECTION",
        format!(
            "{} {} {} {}",
            peer.ip(),
            peer.port(),
            local.ip(),
            local.port()
        ),
    );
    set(
        "SSH_CLIENT",
        format!("{} {} {}", peer.ip(), peer.port(), local.port()),
    );
    if let Some(p) = client.pty {
        set("TERM", p.term.clone());
    }
    for (k, v) in client.env {
        set(k, v.clone());
    }
    if let Some(perms) = perms {
        for (k, v) in &perms.environment {
            set(k, v.clone());
        }
    }
    // After what the client and the key may set: the socket mshd made is the agent.
    if let Some(sock) = client.agent_socket {
        set("SSH_AUTH_SOCK", sock.display().to_string());
    }
    if let Some(o) = original {
        set("SSH_ORIGINAL_COMMAND", o.to_string());
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::unistd::Uid;

    fn account(uid: u32) -> Account {
        Account {
            name: "alice".into(),
            uid: Uid::from_raw(uid),
            gid: Gid::from_raw(1000),
            home: "/home/alice".into(),
            shell: "/bin/bash".into(),
            groups: vec![],
            passwd_locked: false,
        }
    }

    fn perms(forced: Option<&str>, environment: &[(&str, &str)]) -> Permissions {
        Permissions {
            pty: true,
            port_forwarding: false,
            agent_forwarding: false,
            x11_forwarding: false,
            user_rc: false,
            forced_command: forced.map(str::to_string),
            environment: environment
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            permit_open: vec![],
            permit_listen: vec![],
            source: "ak:1".into(),
        }
    }

    fn facts<'a>(pty: Option<&'a PtyReq>, env: &'a [(String, String)]) -> ClientFacts<'a> {
        ClientFacts {
            peer: "192.0.2.7:50000".parse().unwrap(),
            local: "192.0.2.1:22".parse().unwrap(),
            pty,
            env,
            agent_socket: None,
        }
    }

    fn get<'a>(l: &'a Launch, k: &str) -> Option<&'a str> {
        l.env
            .iter()
            .find(|(k2, _)| k2 == k)
            .map(|(_, v)| v.as_str())
    }

    fn sftp() -> Request {
        Request::Subsystem {
            name: "sftp".into(),
            command: "/usr/lib/openssh/sftp-server -l INFO".into(),
        }
    }

    #[test]
    fn a_shell_is_a_login_shell_with_sshds_fixed_environment() {
        let l = plan(
            Request::Shell,
            &account(1000),
            None,
            &facts(None, &[]),
            None,
        );
        assert_eq!(l.program, PathBuf::from("/bin/bash"));
        assert_eq!((l.argv0.as_str(), l.args.len()), ("-bash", 0));
        assert_eq!(
            (l.command.as_str(), l.kind, l.run.as_deref()),
            ("shell", Kind::Shell, None)
        );
        assert_eq!(
            get(&l, "SSH_CONNECTION"),
            Some("192.0.2.7 50000 192.0.2.1 22")
        );
        assert_eq!(get(&l, "SSH_CLIENT"), Some("192.0.2.7 50000 22"));
        assert_eq!(
            get(&l, "PATH"),
            Some("/usr/local/bin:/usr/bin:/bin:/usr/games")
        );
        assert_eq!(get(&l, "MAIL"), Some("/var/mail/alice"));
        assert_eq!(get(&l, "TERM"), None, "no PTY, no TERM");
        assert_eq!(get(&l, "SSH_ORIGINAL_COMMAND"), None);
        assert!(
            l.identity.is_none(),
            "unprivileged mode: no identity change"
        );
        assert_eq!(l.describe(), "shell for alice");
    }

    #[test]
    fn an_exec_runs_through_the_shell_and_root_gets_the_sbin_path() {
        let groups = Some(vec![Gid::from_raw(27)]);
        let l = plan(
            Request::Exec("id -u".into()),
            &account(0),
            None,
            &facts(None, &[]),
            groups,
        );
        assert_eq!(l.argv0, "bash");
        assert_eq!(l.args, ["-c", "id -u"]);
        assert_eq!((l.command.as_str(), l.kind), ("id -u", Kind::Exec));
        assert_eq!(
            get(&l, "PATH"),
            Some("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        );
        let id = l.identity.as_ref().unwrap();
        assert_eq!((id.uid.as_raw(), id.gid.as_raw()), (0, 1000));
        assert_eq!(id.groups, [Gid::from_raw(27)]);
        assert_eq!(l.describe(), "exec \"id -u\" for alice");
    }

    #[test]
    fn a_forced_command_replaces_the_request_which_goes_in_ssh_original_command() {
        let p = perms(Some("/usr/bin/backup"), &[]);
        let l = plan(
            Request::Exec("rm -rf /".into()),
            &account(1000),
            Some(&p),
            &facts(None, &[]),
            None,
        );
        assert_eq!(l.args, ["-c", "/usr/bin/backup"]);
        assert_eq!(
            (l.command.as_str(), l.kind),
            ("/usr/bin/backup", Kind::Forced)
        );
        assert_eq!(get(&l, "SSH_ORIGINAL_COMMAND"), Some("rm -rf /"));
        assert_eq!(
            l.describe(),
            "exec \"/usr/bin/backup\" for alice (forced by command=)"
        );
        // A shell request under a forced command: the command runs, no original command.
        let l = plan(
            Request::Shell,
            &account(1000),
            Some(&p),
            &facts(None, &[]),
            None,
        );
        assert_eq!((l.argv0.as_str(), l.kind), ("bash", Kind::Forced));
        assert_eq!(get(&l, "SSH_ORIGINAL_COMMAND"), None);
    }

    #[test]
    fn a_forwarded_agent_is_named_in_ssh_auth_sock_and_a_client_env_cannot_override_it() {
        let l = plan(
            Request::Shell,
            &account(1000),
            None,
            &facts(None, &[]),
            None,
        );
        assert_eq!(get(&l, "SSH_AUTH_SOCK"), None);
        let env = [("SSH_AUTH_SOCK".to_string(), "/tmp/evil".to_string())];
        let mut f = facts(None, &env);
        let sock = std::path::Path::new("/tmp/msh-abc/agent.7");
        f.agent_socket = Some(sock);
        let l = plan(Request::Shell, &account(1000), None, &f, None);
        assert_eq!(get(&l, "SSH_AUTH_SOCK"), Some("/tmp/msh-abc/agent.7"));
    }

    #[test]
    fn a_subsystem_runs_its_configured_command_line_and_is_audited_by_name() {
        let l = plan(sftp(), &account(1000), None, &facts(None, &[]), None);
        assert_eq!(l.args, ["-c", "/usr/lib/openssh/sftp-server -l INFO"]);
        assert_eq!(
            (l.command.as_str(), l.kind),
            ("subsystem:sftp", Kind::Subsystem)
        );
        assert_eq!(l.subsystem.as_deref(), Some("sftp"));
        assert_eq!(
            l.describe(),
            "subsystem \"sftp\" (/usr/lib/openssh/sftp-server -l INFO) for alice"
        );
    }

    #[test]
    fn a_forced_command_replaces_a_subsystem_and_gets_its_command_line() {
        let p = perms(Some("/bin/false"), &[]);
        let l = plan(sftp(), &account(1000), Some(&p), &facts(None, &[]), None);
        assert_eq!((l.command.as_str(), l.kind), ("/bin/false", Kind::Forced));
        assert_eq!(
            l.subsystem.as_deref(),
            Some("sftp"),
            "still audited as a subsystem"
        );
        assert_eq!(
            get(&l, "SSH_ORIGINAL_COMMAND"),
            Some("/usr/lib/openssh/sftp-server -l INFO"),
            "what sshd sets: the configured command line"
        );
        assert!(l
            .describe()
            .starts_with("subsystem \"sftp\" replaced by the forced command"));
    }

    #[test]
    fn environment_order_client_then_key_options_then_original_command() {
        let pty = PtyReq {
            term: "xterm-256color".into(),
            cols: 80,
            rows: 24,
            modes: vec![],
        };
        let client_env = vec![
            ("LANG".to_string(), "C.UTF-8".to_string()),
            ("TERM".to_string(), "vt100".to_string()),
            ("FOO".to_string(), "client".to_string()),
        ];
        let p = perms(None, &[("FOO", "key")]);
        let l = plan(
            Request::Exec("env".into()),
            &account(1000),
            Some(&p),
            &facts(Some(&pty), &client_env),
            None,
        );
        assert_eq!(get(&l, "LANG"), Some("C.UTF-8"));
        assert_eq!(
            get(&l, "TERM"),
            Some("vt100"),
            "an accepted env request comes after pty-req"
        );
        assert_eq!(
            get(&l, "FOO"),
            Some("key"),
            "environment= wins over the client"
        );
        assert_eq!(get(&l, "SSH_ORIGINAL_COMMAND"), None, "no forced command");
        assert!(l.pty.is_some());
        let names: Vec<&str> = l.env.iter().map(|(k, _)| k.as_str()).collect();
        let unique: std::collections::HashSet<&str> = names.iter().copied().collect();
        assert_eq!(names.len(), unique.len(), "each name once: {names:?}");
    }
}
