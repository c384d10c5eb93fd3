//! mshd settings: the TOML file (`/etc/msh/mshd.toml` as root, `<config_dir>/msh/mshd.toml`
//! otherwise), the defaults that apply when a key is absent, and the command-line flags that
//! override both. [`Settings`] is the validated result the rest of the server reads; nothing
//! outside this module sees clap or serde types.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use msh_common::duration::parse_duration;
use serde::{Deserialize, Serialize};

mod checks;
pub mod commands;
pub mod forwarding;
pub mod keys;
mod parse;
mod values;

pub use parse::parse_file;

use checks::{check_subsystem, check_tokens, check_user_pattern, resolve_pam};
pub use forwarding::AllowForwarding;
pub use values::{parse_startups, AuditSyslog, AuditTarget, MaxStartups, PermitUserEnvironment};

/// The config file as written. Every key is optional: absent means "the default".
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
// Each field is the TOML key of the same name, as written; what it means is documented on
// the resolved field of `Settings`.
#[allow(missing_docs)]
pub struct FileConfig {
    pub listen: Option<Vec<String>>,
    pub host_keys: Option<Vec<PathBuf>>,
    pub host_certificates: Option<Vec<PathBuf>>,
    pub authorized_keys_files: Option<Vec<String>>,
    pub trusted_user_ca_keys: Option<Vec<PathBuf>>,
    pub authorized_principals_file: Option<String>,
    pub authorized_keys_command: Option<String>,
    pub authorized_keys_command_user: Option<String>,
    pub authorized_keys_command_timeout: Option<String>,
    pub authorized_principals_command: Option<String>,
    pub authorized_principals_command_user: Option<String>,
    pub authorized_principals_command_timeout: Option<String>,
    pub revoked_keys: Option<PathBuf>,
    pub strict_modes: Option<bool>,
    pub max_auth_tries: Option<u32>,
    pub login_grace_time: Option<String>,
    pub max_startups: Option<String>,
    pub max_sessions: Option<u32>,
    pub per_source_max_startups: Option<u32>,
    pub allow_users: Option<Vec<String>>,
    pub deny_users: Option<Vec<String>>,
    pub accept_env: Option<Vec<String>>,
    pub permit_user_environment: Option<PermitUserEnvironment>,
    pub audit_log: Option<String>,
    pub audit_syslog: Option<String>,
    pub audit_syslog_socket: Option<PathBuf>,
    pub metrics_listen: Option<String>,
    pub record_logins: Option<bool>,
    pub print_last_log: Option<bool>,
    pub use_pam: Option<bool>,
    pub pam_service: Option<String>,
    pub post_quantum_only: Option<bool>,
    pub shutdown_grace_time: Option<String>,
    pub allow_tcp_forwarding: Option<AllowForwarding>,
    pub allow_stream_local_forwarding: Option<AllowForwarding>,
    pub allow_agent_forwarding: Option<bool>,
    pub gateway_ports: Option<bool>,
    pub permit_open: Option<Vec<String>>,
    pub permit_listen: Option<Vec<String>>,
    /// Subsystem name -> command line (`sftp = "/usr/lib/openssh/sftp-server"`); spans let
    /// [`parse_file`] name the line of a bad value.
    pub subsystems: Option<BTreeMap<String, toml::Spanned<String>>>,
    /// Line of each key in the file (`subsystems.sftp` for a table entry), so that a value
    /// refused in [`Settings::resolve`] is reported at `file:line` with its key.
    #[serde(skip)]
    pub lines: BTreeMap<String, usize>,
}

/// What the command line may override (already parsed by clap in `main`).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--listen` (repeatable): replaces `listen`.
    pub listen: Vec<String>,
    /// `--host-key` (repeatable): replaces `host_keys`.
    pub host_keys: Vec<PathBuf>,
    /// `--authorized-keys` (repeatable): replaces `authorized_keys_files`.
    pub authorized_keys: Vec<String>,
    /// `--audit-log`: replaces `audit_log`.
    pub audit_log: Option<String>,
}

/// The validated, effective configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// The file these settings were read from (it may not exist: then all defaults).
    #[serde(skip)]
    pub source: PathBuf,
    /// True when mshd runs as root and may serve any local user.
    #[serde(skip)]
    pub root_mode: bool,
    /// Addresses to listen on (not re-bound at SIGHUP).
    pub listen: Vec<SocketAddr>,
    /// Host private keys (a missing one is generated as ed25519 on first start).
    pub host_keys: Vec<PathBuf>,
    /// Host certificates offered with the matching host keys.
    pub host_certificates: Vec<PathBuf>,
    /// authorized_keys file patterns (`%h` home, `%u` user, `%%`; relative = under home).
    pub authorized_keys_files: Vec<String>,
    /// CA keys whose user certificates are accepted (sshd's TrustedUserCAKeys).
    pub trusted_user_ca_keys: Vec<PathBuf>,
    /// Per-user principals file pattern for certificates (sshd's AuthorizedPrincipalsFile).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorized_principals_file: Option<String>,
    /// sshd's AuthorizedKeysCommand (see [`commands`]); its output counts in addition to
    /// `authorized_keys_files`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorized_keys_command: Option<String>,
    /// The account `authorized_keys_command` runs as (root mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorized_keys_command_user: Option<String>,
    /// How long `authorized_keys_command` may run.
    #[serde(serialize_with = "ser_duration")]
    pub authorized_keys_command_timeout: Duration,
    /// sshd's AuthorizedPrincipalsCommand (see [`commands`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorized_principals_command: Option<String>,
    /// The account `authorized_principals_command` runs as (root mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorized_principals_command_user: Option<String>,
    /// How long `authorized_principals_command` may run.
    #[serde(serialize_with = "ser_duration")]
    pub authorized_principals_command_timeout: Duration,
    /// Revoked keys and certificates (OpenSSH KRL or a list of public keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_keys: Option<PathBuf>,
    /// Refuse group/world-writable key files and directories, as sshd's StrictModes.
    pub strict_modes: bool,
    /// Authentication failures after which the connection is closed.
    pub max_auth_tries: u32,
    /// Time from the TCP accept to a successful authentication (zero: no limit).
    #[serde(serialize_with = "ser_duration")]
    pub login_grace_time: Duration,
    /// sshd's MaxStartups for unauthenticated connections.
    #[serde(serialize_with = "ser_startups")]
    pub max_startups: MaxStartups,
    /// Session channels one connection may have open at once.
    pub max_sessions: u32,
    /// Unauthenticated connections one source address may hold (0 = no limit).
    pub per_source_max_startups: u32,
    /// Only these users (`user` or `user@host` patterns) may log in, when not empty.
    pub allow_users: Vec<String>,
    /// These users may never log in (checked before `allow_users`).
    pub deny_users: Vec<String>,
    /// Name patterns of the client's `env` requests that are accepted.
    pub accept_env: Vec<String>,
    /// Whether `environment=` options of a key apply (see [`PermitUserEnvironment`]).
    pub permit_user_environment: PermitUserEnvironment,
    /// Where the audit log goes (`None`: no audit log).
    #[serde(serialize_with = "ser_audit")]
    pub audit_log: Option<AuditTarget>,
    /// Audit records also go to journald or syslog, as structured records.
    pub audit_syslog: AuditSyslog,
    /// The datagram socket of `audit_syslog` (its default when not set; none when off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_syslog_socket: Option<PathBuf>,
    /// Where the Prometheus metrics endpoint listens (`None`: off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
    /// Root mode: record PTY sessions in utmp, wtmp and lastlog (see `login_records`).
    pub record_logins: bool,
    /// Root mode: show the previous lastlog entry when an interactive PTY shell starts
    /// (sshd's PrintLastLog).
    pub print_last_log: bool,
    /// PAM account management at login and a PAM session around every session (root mode
    /// only; see crate::pam).
    pub use_pam: bool,
    /// The PAM service name (`/etc/pam.d/<pam_service>`).
    pub pam_service: String,
    /// Offer only the hybrid post-quantum key exchange (mlkem768x25519-sha256).
    pub post_quantum_only: bool,
    /// How long sessions may go on after SIGTERM before they are hung up.
    #[serde(serialize_with = "ser_duration")]
    pub shutdown_grace_time: Duration,
    /// sshd's AllowTcpForwarding.
    pub allow_tcp_forwarding: AllowForwarding,
    /// sshd's AllowStreamLocalForwarding (mshd serves local Unix-socket forwards only).
    pub allow_stream_local_forwarding: AllowForwarding,
    /// sshd's AllowAgentForwarding.
    pub allow_agent_forwarding: bool,
    /// sshd's GatewayPorts, as `clientspecified` when true: remote forwards listen where
    /// the client asks; when false (the default) on the loopback address only.
    pub gateway_ports: bool,
    /// sshd's PermitOpen: `["any"]`, `["none"]`, or `host:port` entries.
    pub permit_open: Vec<String>,
    /// sshd's PermitListen: `["any"]`, `["none"]`, or `[host:]port` entries.
    pub permit_listen: Vec<String>,
    /// Subsystem name -> command line run through the user's shell `-c` (sshd's
    /// `Subsystem`). Last, so that the TOML output puts the table after the plain keys.
    pub subsystems: BTreeMap<String, String>,
    /// No `subsystems` key and none of [`SFTP_SERVER_CANDIDATES`] exists: sftp is off.
    #[serde(skip)]
    pub sftp_server_not_found: bool,
}

/// Where distributions install OpenSSH's sftp-server; the first that exists when the config
/// is resolved is the default `sftp` subsystem (Debian/Ubuntu, Fedora/RHEL, macOS/BSD, Arch).
pub const SFTP_SERVER_CANDIDATES: [&str; 4] = [
    "/usr/lib/openssh/sftp-server",
    "/usr/libexec/openssh/sftp-server",
    "/usr/libexec/sftp-server",
    "/usr/lib/ssh/sftp-server",
];

/// The first of `candidates` that exists.
pub fn first_existing<P: AsRef<Path>>(candidates: &[P]) -> Option<PathBuf> {
    candidates
        .iter()
        .map(|p| p.as_ref())
        .find(|p| p.exists())
        .map(Path::to_path_buf)
}

fn ser_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{}s", d.as_secs()))
}

fn ser_startups<S: serde::Serializer>(m: &MaxStartups, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{}:{}:{}", m.start, m.rate, m.full))
}

fn ser_audit<S: serde::Serializer>(a: &Option<AuditTarget>, s: S) -> Result<S::Ok, S::Error> {
    match a {
        None => s.serialize_str(""),
        Some(AuditTarget::Stdout) => s.serialize_str("-"),
        Some(AuditTarget::File(p)) => s.serialize_str(&p.display().to_string()),
    }
}

/// The config file used when `--config` is not given.
pub fn default_config_path(root_mode: bool) -> PathBuf {
    if root_mode {
        PathBuf::from("/etc/msh/mshd.toml")
    } else {
        user_config_dir().join("msh/mshd.toml")
    }
}

/// The host key generated on first start when `host_keys` is not set.
pub fn default_host_key_path(root_mode: bool) -> PathBuf {
    if root_mode {
        PathBuf::from("/etc/msh/ssh_host_ed25519_key")
    } else {
        user_config_dir().join("msh/ssh_host_ed25519_key")
    }
}

fn user_config_dir() -> PathBuf {
    dirs::config_dir().unwrap_or_else(|| PathBuf::from(".config"))
}

impl Settings {
    /// Reads `path` (absent = defaults; `explicit` = the user named it, so it must exist),
    /// applies `over`, and validates everything.
    pub fn load(path: &Path, explicit: bool, over: &Overrides, root_mode: bool) -> Result<Self> {
        let file = match std::fs::read_to_string(path) {
            Ok(text) => parse_file(&text, path)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                FileConfig::default()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "config file {} does not exist (named with --config); create it, or leave out \
                 --config to run with the built-in defaults",
                path.display()
            ),
            Err(e) => bail!("cannot read config {}: {e}", path.display()),
        };
        Self::resolve(file, path, over, root_mode)
    }

    /// Applies defaults and overrides to a parsed file and checks every value.
    pub fn resolve(
        mut file: FileConfig,
        path: &Path,
        over: &Overrides,
        root_mode: bool,
    ) -> Result<Self> {
        let lines = std::mem::take(&mut file.lines);
        let where_ = |key: &str| match lines.get(key) {
            Some(l) => format!("{}:{l}: key `{key}`", path.display()),
            None => format!("{}: key `{key}`", path.display()),
        };
        let listen_src = if over.listen.is_empty() {
            file.listen.unwrap_or_else(|| {
                vec![if root_mode {
                    "0.0.0.0:22".into()
                } else {
                    "127.0.0.1:2222".into()
                }]
            })
        } else {
            over.listen.clone()
        };
        let listen_where = if over.listen.is_empty() {
            where_("listen")
        } else {
            "--listen".to_string()
        };
        let mut listen = Vec::new();
        for l in &listen_src {
            let addr: SocketAddr = l.parse().with_context(|| {
                format!(
                    "{listen_where}: invalid listen address {l:?}: expected ADDR:PORT such as 127.0.0.1:2222 or [::1]:2222"
                )
            })?;
            listen.push(addr);
        }
        if listen.is_empty() {
            bail!("{}: at least one address is needed", where_("listen"));
        }
        let host_keys = if !over.host_keys.is_empty() {
            over.host_keys.clone()
        } else {
            file.host_keys
                .unwrap_or_else(|| vec![default_host_key_path(root_mode)])
        };
        if host_keys.is_empty() {
            bail!("{}: at least one host key is needed", where_("host_keys"));
        }
        let authorized_keys_files = if !over.authorized_keys.is_empty() {
            over.authorized_keys.clone()
        } else {
            file.authorized_keys_files
                .unwrap_or_else(|| vec!["%h/.ssh/authorized_keys".into()])
        };
        let ak_where = if over.authorized_keys.is_empty() {
            where_("authorized_keys_files")
        } else {
            "--authorized-keys".to_string()
        };
        for p in &authorized_keys_files {
            check_tokens(p).with_context(|| ak_where.clone())?;
        }
        if let Some(p) = &file.authorized_principals_file {
            check_tokens(p).with_context(|| where_("authorized_principals_file"))?;
        }
        let keys_command = commands::resolve(
            commands::CommandKind::Keys,
            file.authorized_keys_command.as_deref(),
            file.authorized_keys_command_user.as_deref(),
            file.authorized_keys_command_timeout.as_deref(),
            &where_,
        )?;
        let principals_command = commands::resolve(
            commands::CommandKind::Principals,
            file.authorized_principals_command.as_deref(),
            file.authorized_principals_command_user.as_deref(),
            file.authorized_principals_command_timeout.as_deref(),
            &where_,
        )?;
        for (kind, c) in [
            (commands::CommandKind::Keys, &keys_command),
            (commands::CommandKind::Principals, &principals_command),
        ] {
            if let Some(c) = c {
                commands::require_user(kind, c, root_mode, &where_)?;
            }
        }
        for key in ["allow_users", "deny_users"] {
            let list = if key == "allow_users" {
                &file.allow_users
            } else {
                &file.deny_users
            };
            for entry in list.iter().flatten() {
                check_user_pattern(entry).with_context(|| where_(key))?;
            }
        }
        let max_auth_tries = file.max_auth_tries.unwrap_or(6);
        if max_auth_tries == 0 {
            bail!("{}: must be at least 1", where_("max_auth_tries"));
        }
        let login_grace_time = match &file.login_grace_time {
            None => Duration::from_secs(120),
            Some(s) => parse_duration(s).with_context(|| where_("login_grace_time"))?,
        };
        let max_startups = match &file.max_startups {
            None => MaxStartups {
                start: 10,
                rate: 30,
                full: 100,
            },
            Some(s) => parse_startups(s).with_context(|| where_("max_startups"))?,
        };
        let max_sessions = file.max_sessions.unwrap_or(10);
        let shutdown_grace_time = match &file.shutdown_grace_time {
            None => Duration::from_secs(10),
            Some(s) => parse_duration(s).with_context(|| where_("shutdown_grace_time"))?,
        };
        let (subsystems, sftp_server_not_found) = match file.subsystems {
            Some(table) => {
                let mut m = BTreeMap::new();
                for (name, cmd) in table {
                    check_subsystem(&name, cmd.get_ref())
                        .with_context(|| where_(&format!("subsystems.{name}")))?;
                    m.insert(name, cmd.into_inner());
                }
                (m, false)
            }
            None => match first_existing(&SFTP_SERVER_CANDIDATES) {
                Some(p) => (
                    BTreeMap::from([("sftp".to_string(), p.display().to_string())]),
                    false,
                ),
                None => (BTreeMap::new(), true),
            },
        };
        let permit_user_environment = file.permit_user_environment.unwrap_or_default();
        if let PermitUserEnvironment::Names(names) = &permit_user_environment {
            if names.iter().any(|n| n.trim().is_empty()) {
                bail!(
                    "{}: empty pattern; give variable names or patterns such as [\"LANG\", \"APP_*\"], or true / false",
                    where_("permit_user_environment")
                );
            }
        }
        let permit_open = file.permit_open.unwrap_or_else(|| vec!["any".into()]);
        forwarding::check_permit_list(&permit_open, false)
            .with_context(|| where_("permit_open"))?;
        let permit_listen = file.permit_listen.unwrap_or_else(|| vec!["any".into()]);
        forwarding::check_permit_list(&permit_listen, true)
            .with_context(|| where_("permit_listen"))?;
        let audit_src = over.audit_log.clone().or(file.audit_log);
        let audit_log = match audit_src.as_deref() {
            None | Some("") => None,
            Some("-") => Some(AuditTarget::Stdout),
            Some(p) => Some(AuditTarget::File(PathBuf::from(p))),
        };
        let audit_syslog = match file.audit_syslog.as_deref() {
            None | Some("off") => AuditSyslog::Off,
            Some("journald") => AuditSyslog::Journald,
            Some("syslog") => AuditSyslog::Syslog,
            Some(v) => bail!(
                "{}: `{v}` is not one of \"off\", \"journald\" (systemd's journal, native \
                 protocol) or \"syslog\" (RFC 5424 on /dev/log)",
                where_("audit_syslog")
            ),
        };
        let audit_syslog_socket = match (audit_syslog.default_socket(), file.audit_syslog_socket) {
            (None, _) => None,
            (Some(_), Some(p)) if !p.is_absolute() => bail!(
                "{}: `{}` is not an absolute path; name the datagram socket from /",
                where_("audit_syslog_socket"),
                p.display()
            ),
            (Some(_), Some(p)) => Some(p),
            (Some(d), None) => Some(PathBuf::from(d)),
        };
        let metrics_listen = match file.metrics_listen.as_deref() {
            None | Some("") => None,
            Some(a) => Some(a.parse::<SocketAddr>().map_err(|_| {
                anyhow::anyhow!(
                    "{}: `{a}` is not ADDR:PORT; write for example \"127.0.0.1:9122\" (an IP address, not a name)",
                    where_("metrics_listen")
                )
            })?),
        };
        let (use_pam, pam_service) = resolve_pam(
            file.use_pam,
            file.pam_service.as_deref(),
            root_mode,
            &where_,
        )?;
        Ok(Settings {
            source: path.to_path_buf(),
            root_mode,
            listen,
            host_keys,
            host_certificates: file.host_certificates.unwrap_or_default(),
            authorized_keys_files,
            trusted_user_ca_keys: file.trusted_user_ca_keys.unwrap_or_default(),
            authorized_principals_file: file.authorized_principals_file,
            authorized_keys_command: keys_command.as_ref().map(|c| c.command.clone()),
            authorized_keys_command_user: keys_command.as_ref().and_then(|c| c.user.clone()),
            authorized_keys_command_timeout: keys_command
                .as_ref()
                .map_or(Duration::from_secs(30), |c| c.timeout),
            authorized_principals_command: principals_command.as_ref().map(|c| c.command.clone()),
            authorized_principals_command_user: principals_command
                .as_ref()
                .and_then(|c| c.user.clone()),
            authorized_principals_command_timeout: principals_command
                .as_ref()
                .map_or(Duration::from_secs(30), |c| c.timeout),
            revoked_keys: file.revoked_keys,
            strict_modes: file.strict_modes.unwrap_or(true),
            max_auth_tries,
            login_grace_time,
            max_startups,
            max_sessions,
            per_source_max_startups: file.per_source_max_startups.unwrap_or(5),
            allow_users: file.allow_users.unwrap_or_default(),
            deny_users: file.deny_users.unwrap_or_default(),
            accept_env: file
                .accept_env
                .unwrap_or_else(|| vec!["LANG".into(), "LC_*".into()]),
            permit_user_environment,
            audit_log,
            audit_syslog,
            audit_syslog_socket,
            metrics_listen,
            record_logins: file.record_logins.unwrap_or(true),
            print_last_log: file.print_last_log.unwrap_or(true),
            use_pam,
            pam_service,
            post_quantum_only: file.post_quantum_only.unwrap_or(false),
            shutdown_grace_time,
            allow_tcp_forwarding: file.allow_tcp_forwarding.unwrap_or_default(),
            allow_stream_local_forwarding: file.allow_stream_local_forwarding.unwrap_or_default(),
            allow_agent_forwarding: file.allow_agent_forwarding.unwrap_or(true),
            gateway_ports: file.gateway_ports.unwrap_or(false),
            permit_open,
            permit_listen,
            subsystems,
            sftp_server_not_found,
        })
    }

    /// What to say at start about the configuration beyond the errors: sftp being off
    /// because no sftp-server was found.
    pub fn startup_notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if !self.root_mode {
            for (kind, c) in [
                (commands::CommandKind::Keys, self.keys_command()),
                (commands::CommandKind::Principals, self.principals_command()),
            ] {
                notes.extend(c.and_then(|c| commands::ignored_user_note(kind, &c)));
            }
        }
        if self.sftp_server_not_found {
            notes.push(format!(
                "sftp is off: no sftp-server found at {}; to enable it (and OpenSSH's scp), install OpenSSH's sftp-server and restart mshd, or set `subsystems = {{ sftp = \"/path/to/sftp-server\" }}` in {}",
                SFTP_SERVER_CANDIDATES.join(", "),
                self.source.display()
            ));
        }
        notes
    }

    /// `authorized_keys_command` with its user and timeout, when set.
    pub fn keys_command(&self) -> Option<commands::IdentityCommand> {
        self.authorized_keys_command
            .as_ref()
            .map(|c| commands::IdentityCommand {
                command: c.clone(),
                user: self.authorized_keys_command_user.clone(),
                timeout: self.authorized_keys_command_timeout,
            })
    }

    /// `authorized_principals_command` with its user and timeout, when set.
    pub fn principals_command(&self) -> Option<commands::IdentityCommand> {
        self.authorized_principals_command
            .as_ref()
            .map(|c| commands::IdentityCommand {
                command: c.clone(),
                user: self.authorized_principals_command_user.clone(),
                timeout: self.authorized_principals_command_timeout,
            })
    }

    /// The effective configuration as TOML, for `--check-config`.
    pub fn to_toml(&self) -> Result<String> {
        Ok(toml::to_string_pretty(self)?)
    }

    /// Keys that are parsed and validated but whose feature is not implemented yet; `main`
    /// warns about each one that is set so nobody believes it is enforced. (None left: every
    /// key is enforced; kept so the next unfinished key is reported the same way.)
    pub fn unenforced(&self) -> Vec<&'static str> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests;
