//! Command-line layering: clap parses the raw arguments (`Args`), then `resolve` merges the
//! flags, `-o Key=Value` options and the `-F CONFIG` file (an ssh_config subset) into one
//! validated `Settings`. Nothing past this module sees clap types.
//!
//! Precedence is OpenSSH's "first value wins": flags (`-p`, `-l`, `user@`), then `-o` in the
//! order given, then the config file's matching `Host` blocks in file order. List-valued keys
//! (`IdentityFile`, `CertificateFile`, `SendEnv`) accumulate across all sources instead.
//!
//! Config file example (keys are case-insensitive, `Key Value` or `Key=Value`):
//! ```text
//! Host build-* !build-old
//!     Port 2222
//!     StrictHostKeyChecking accept-new
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::{ArgAction, Parser};
use msh_common::pattern::{match_list, ListMatch};

/// Raw command line, exactly as clap understands it.
#[derive(Debug, Parser)]
#[command(
    name = "msh",
    version,
    about = "Mutual-authentication remote shell client (OpenSSH-compatible files).",
    long_about = "Connects to an mshd or OpenSSH server, verifies its host key (known_hosts, \
or --pin) before sending any credential, authenticates with public keys (agent, -i files or \
~/.ssh/id_*), then runs COMMAND or an interactive shell.\n\n\
Exit status: the remote command's status; 255 when msh itself fails (connection, host \
verification, authentication, refused option) or the remote command was killed by a signal.",
    after_long_help = "Examples:\n  msh build.internal uptime\n  msh -p 2222 ops@10.0.0.5\n  \
msh -o StrictHostKeyChecking=accept-new host true\n  msh --pin SHA256:abc... host 'cat /etc/os-release'\n\n\
-o keys: StrictHostKeyChecking (ask [default], accept-new, yes; `no` is refused), \
UserKnownHostsFile, GlobalKnownHostsFile, BatchMode, ConnectTimeout, IdentityFile, IdentitiesOnly, \
CertificateFile (a user certificate, offered with the identity whose key it certifies; \
KEY-cert.pub beside a key is offered without it), Port, User, HashKnownHosts, \
HostKeyAlias, SendEnv, SetEnv, ServerAliveInterval, LogLevel.\n\n\
With `ask` and no terminal to ask on (or BatchMode=yes), an unknown host is refused as with `yes`.\n\
Precedence: user@host, then -l/-p, then -o in order, then -F's Host blocks: the first value wins."
)]
pub struct Args {
    /// Port to connect to (default 22).
    #[arg(short = 'p', value_name = "PORT")]
    pub port: Option<u16>,
    /// User to log in as (default: the local user name).
    #[arg(short = 'l', value_name = "USER")]
    pub login: Option<String>,
    /// Private key file to authenticate with (repeatable).
    #[arg(short = 'i', value_name = "IDENTITY", action = ArgAction::Append)]
    pub identity: Vec<PathBuf>,
    /// Force a PTY even with a command (-tt: even when stdin is not a terminal).
    #[arg(short = 't', action = ArgAction::Count, conflicts_with = "no_tty")]
    pub tty: u8,
    /// Never request a PTY.
    #[arg(short = 'T')]
    pub no_tty: bool,
    /// More logging (-v, -vv, -vvv). RUST_LOG, when set, wins.
    #[arg(short = 'v', action = ArgAction::Count)]
    pub verbose: u8,
    /// Quiet: no warnings or notices on stderr (errors still).
    #[arg(short = 'q')]
    pub quiet: bool,
    /// Read options from this ssh_config-style file (only the keys -o accepts).
    #[arg(short = 'F', value_name = "CONFIG")]
    pub config: Option<PathBuf>,
    /// An option in ssh_config syntax, e.g. -o StrictHostKeyChecking=accept-new (repeatable).
    #[arg(short = 'o', value_name = "Key=Value", action = ArgAction::Append)]
    pub options: Vec<String>,
    /// Trust the host only if its key (or, for a host certificate, its CA's key) has this
    /// SHA256 fingerprint (repeatable: any one matches). known_hosts is then neither read
    /// nor written.
    #[arg(long = "pin", value_name = "SHA256:...", action = ArgAction::Append)]
    pub pins: Vec<String>,
    /// Host to connect to, optionally with the user: [user@]host.
    #[arg(value_name = "[user@]host")]
    pub destination: String,
    /// Command to run remotely; its words are joined with spaces, as ssh does.
    #[arg(
        value_name = "command",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

/// What to do with a host that known_hosts does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrictHostKeyChecking {
    /// Ask on the terminal (OpenSSH's default). Without a terminal, or with BatchMode, an
    /// unknown host is refused as with `yes`.
    Ask,
    /// Record the key of a host never seen before; a changed key is still refused.
    AcceptNew,
    /// Only hosts already in known_hosts.
    Yes,
}

/// Whether the session gets a PTY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtyMode {
    /// PTY when there is no command and stdin is a terminal (ssh's default).
    Auto,
    /// -t: PTY when stdin is a terminal, even with a command.
    Force,
    /// -tt: PTY even when stdin is not a terminal.
    ForceAlways,
    /// -T: never.
    Never,
}

/// The validated, merged settings the rest of msh runs on.
#[derive(Debug, Clone)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Name used for known_hosts lookups and writes instead of `host` (HostKeyAlias).
    pub host_key_alias: Option<String>,
    /// Identity files in order (flags first, then -o, then config).
    pub identity_files: Vec<PathBuf>,
    /// True when identities came from -i / IdentityFile (no default ~/.ssh/id_* then).
    pub identities_explicit: bool,
    pub identities_only: bool,
    /// CertificateFile: user certificates, offered with the identity (file or agent key)
    /// they certify, before that plain key.
    pub certificate_files: Vec<PathBuf>,
    pub strict: StrictHostKeyChecking,
    pub user_known_hosts: Vec<PathBuf>,
    pub global_known_hosts: Vec<PathBuf>,
    pub batch_mode: bool,
    pub connect_timeout: Option<Duration>,
    pub hash_known_hosts: bool,
    /// Environment variable name patterns to send (SendEnv).
    pub send_env: Vec<String>,
    /// Variables to set remotely (SetEnv), first definition of a name wins.
    pub set_env: Vec<(String, String)>,
    pub server_alive_interval: Option<Duration>,
    /// Default tracing level from -v/-q/LogLevel (RUST_LOG still wins).
    pub log_level: tracing::Level,
    /// LogLevel=QUIET or -q: no warnings or notices.
    pub quiet: bool,
    pub pins: Vec<String>,
    pub tty: TtyMode,
    /// The command words joined with spaces, or None for a shell.
    pub command: Option<String>,
    /// EscapeChar (`-e` overrides it in main): None = `none`, escapes off.
    pub escape_char: Option<u8>,
}

impl Settings {
    /// The name this host is stored under in known_hosts (HostKeyAlias or the host).
    pub fn known_hosts_name(&self) -> &str {
        self.host_key_alias.as_deref().unwrap_or(&self.host)
    }
}

/// The ssh_config keys msh understands (lowercase), for -o and -F alike.
const KNOWN_KEYS: &[&str] = &[
    "stricthostkeychecking",
    "userknownhostsfile",
    "globalknownhostsfile",
    "batchmode",
    "connecttimeout",
    "identityfile",
    "identitiesonly",
    "certificatefile",
    "port",
    "user",
    "hashknownhosts",
    "hostkeyalias",
    "sendenv",
    "setenv",
    "serveraliveinterval",
    "loglevel",
    "escapechar",
];

const KNOWN_KEYS_DISPLAY: &str = "StrictHostKeyChecking, UserKnownHostsFile, \
GlobalKnownHostsFile, BatchMode, ConnectTimeout, IdentityFile, IdentitiesOnly, CertificateFile, \
Port, User, HashKnownHosts, HostKeyAlias, SendEnv, SetEnv, ServerAliveInterval, LogLevel, EscapeChar";

/// One `Key Value` pair with where it came from, for error messages.
#[derive(Debug, Clone)]
struct RawOption {
    key: String,
    value: String,
    origin: String,
}

/// Merges `args`, its `-o` options and its `-F` file into `Settings`. `home` expands `~`;
/// `local_user` is the default login name.
pub fn resolve(args: Args, home: Option<&Path>, local_user: &str) -> Result<Settings> {
    let (dest_user, host) = match args.destination.rsplit_once('@') {
        Some((u, h)) => (Some(u.to_string()), h.to_string()),
        None => (None, args.destination.clone()),
    };
    if host.is_empty() {
        bail!("no host in destination {:?}", args.destination);
    }
    if dest_user.as_deref() == Some("") {
        bail!("empty user name in destination {:?}", args.destination);
    }

    let mut raw: Vec<RawOption> = Vec::new();
    for (i, o) in args.options.iter().enumerate() {
        let (key, value) = split_option(o)
            .ok_or_else(|| anyhow!("-o {o:?}: expected Key=Value (e.g. -o Port=2222)"))?;
        raw.push(RawOption {
            key,
            value,
            origin: format!("-o #{}", i + 1),
        });
    }
    if let Some(path) = &args.config {
        let path = expand_tilde(path, home);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        raw.extend(parse_config(&path, &text, &host)?);
    }

    let mut s = Settings {
        host: host.clone(),
        port: 22,
        user: local_user.to_string(),
        host_key_alias: None,
        identity_files: args
            .identity
            .iter()
            .map(|p| expand_tilde(p, home))
            .collect(),
        identities_explicit: !args.identity.is_empty(),
        identities_only: false,
        certificate_files: Vec::new(),
        strict: StrictHostKeyChecking::Ask,
        user_known_hosts: Vec::new(),
        global_known_hosts: Vec::new(),
        batch_mode: false,
        connect_timeout: None,
        hash_known_hosts: false,
        send_env: Vec::new(),
        set_env: Vec::new(),
        server_alive_interval: None,
        log_level: tracing::Level::WARN,
        quiet: args.quiet,
        pins: Vec::new(),
        tty: TtyMode::Auto,
        command: None,
        escape_char: Some(crate::escape::DEFAULT_ESCAPE),
    };

    // "First value wins": track which single-valued keys are already set.
    let mut seen: Vec<String> = Vec::new();
    let mut port = args.port;
    let mut user = dest_user.or(args.login.clone());
    let mut log_level: Option<(tracing::Level, bool)> = None;
    let mut first = |key: &str| -> bool {
        if seen.iter().any(|k| k == key) {
            false
        } else {
            seen.push(key.to_string());
            true
        }
    };
    for o in &raw {
        let key = o.key.to_ascii_lowercase();
        let v = o.value.as_str();
        let ctx = || format!("{}: {}={}", o.origin, o.key, o.value);
        match key.as_str() {
            "stricthostkeychecking" => {
                let mode = parse_strict(v).with_context(ctx)?;
                if first(&key) {
                    s.strict = mode;
                }
            }
            "userknownhostsfile" | "globalknownhostsfile" => {
                let files: Vec<PathBuf> = v
                    .split_whitespace()
                    .map(|f| expand_tilde(Path::new(f), home))
                    .collect();
                if files.is_empty() {
                    return Err(anyhow!("a file name is required")).with_context(ctx);
                }
                if first(&key) {
                    if key == "userknownhostsfile" {
                        s.user_known_hosts = files;
                    } else {
                        s.global_known_hosts = files;
                    }
                }
            }
            "batchmode" => {
                let b = parse_yes_no(v).with_context(ctx)?;
                if first(&key) {
                    s.batch_mode = b;
                }
            }
            "connecttimeout" => {
                let secs = parse_seconds(v).with_context(ctx)?;
                if first(&key) {
                    s.connect_timeout = (secs > 0).then(|| Duration::from_secs(secs));
                }
            }
            "identityfile" => {
                s.identity_files.push(expand_tilde(Path::new(v), home));
                s.identities_explicit = true;
            }
            "identitiesonly" => {
                let b = parse_yes_no(v).with_context(ctx)?;
                if first(&key) {
                    s.identities_only = b;
                }
            }
            "certificatefile" => {
                s.certificate_files.push(expand_tilde(Path::new(v), home));
            }
            "port" => {
                let p = parse_port(v).with_context(ctx)?;
                if port.is_none() {
                    port = Some(p);
                }
            }
            "user" => {
                if v.is_empty() {
                    return Err(anyhow!("empty user name")).with_context(ctx);
                }
                if user.is_none() {
                    user = Some(v.to_string());
                }
            }
            "hashknownhosts" => {
                let b = parse_yes_no(v).with_context(ctx)?;
                if first(&key) {
                    s.hash_known_hosts = b;
                }
            }
            "hostkeyalias" => {
                if v.is_empty() || v.contains(char::is_whitespace) {
                    return Err(anyhow!("expected one host name")).with_context(ctx);
                }
                if first(&key) {
                    s.host_key_alias = Some(v.to_string());
                }
            }
            "sendenv" => s.send_env.extend(v.split_whitespace().map(str::to_string)),
            "setenv" => {
                for pair in v.split_whitespace() {
                    let (name, value) = pair
                        .split_once('=')
                        .filter(|(n, _)| !n.is_empty())
                        .ok_or_else(|| anyhow!("expected NAME=VALUE, got {pair:?}"))
                        .with_context(ctx)?;
                    if !s.set_env.iter().any(|(n, _)| n == name) {
                        s.set_env.push((name.to_string(), value.to_string()));
                    }
                }
            }
            "serveraliveinterval" => {
                let secs = parse_seconds(v).with_context(ctx)?;
                if first(&key) {
                    s.server_alive_interval = (secs > 0).then(|| Duration::from_secs(secs));
                }
            }
            "loglevel" => {
                let l = parse_log_level(v).with_context(ctx)?;
                if log_level.is_none() {
                    log_level = Some(l);
                }
            }
            "escapechar" => {
                let c = crate::escape::parse_escape_char(v).with_context(ctx)?;
                if first(&key) {
                    s.escape_char = c;
                }
            }
            _ => bail!(
                "{}: unknown option {:?}; msh accepts: {}",
                o.origin,
                o.key,
                KNOWN_KEYS_DISPLAY
            ),
        }
    }

    s.port = port.unwrap_or(22);
    if s.port == 0 {
        bail!("port 0 is not a valid port");
    }
    s.user = user.unwrap_or_else(|| local_user.to_string());

    if s.user_known_hosts.is_empty() {
        if let Some(h) = home {
            s.user_known_hosts.push(h.join(".ssh/known_hosts"));
        }
    }
    if s.global_known_hosts.is_empty() {
        s.global_known_hosts
            .push(PathBuf::from("/etc/ssh/ssh_known_hosts"));
    }

    for pin in &args.pins {
        let body = pin.strip_prefix("SHA256:").ok_or_else(|| {
            anyhow!("--pin {pin:?}: expected a SHA256 fingerprint such as SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s (see msh-keygen fingerprint)")
        })?;
        if body.is_empty()
            || !body
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
        {
            bail!("--pin {pin:?}: not a SHA256 fingerprint (base64 without padding after SHA256:)");
        }
        s.pins.push(pin.clone());
    }

    // -v beats LogLevel, LogLevel beats the default; -q / LogLevel=QUIET silence notices.
    let (lvl_from_opt, quiet_from_opt) = log_level.unwrap_or((tracing::Level::WARN, false));
    s.log_level = match args.verbose {
        0 => lvl_from_opt,
        1 => tracing::Level::INFO,
        2 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    if args.quiet || (quiet_from_opt && args.verbose == 0) {
        s.quiet = true;
        s.log_level = tracing::Level::ERROR;
    }

    s.tty = match (args.no_tty, args.tty) {
        (true, _) => TtyMode::Never,
        (false, 0) => TtyMode::Auto,
        (false, 1) => TtyMode::Force,
        (false, _) => TtyMode::ForceAlways,
    };
    s.command = (!args.command.is_empty()).then(|| args.command.join(" "));
    Ok(s)
}

/// Splits `Key=Value` or `Key Value` (ssh_config accepts both, with optional spaces
/// around `=`).
fn split_option(s: &str) -> Option<(String, String)> {
    let s = s.trim();
    let idx = s.find(|c: char| c == '=' || c.is_whitespace())?;
    let (key, rest) = s.split_at(idx);
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim();
    if key.is_empty() {
        return None;
    }
    Some((key.to_string(), unquote(rest)))
}

fn unquote(s: &str) -> String {
    s.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(s)
        .to_string()
}

/// Parses an ssh_config subset: `Host` blocks (pattern lists with `*`, `?`, `!`) holding the
/// keys `-o` accepts; returns the options that apply to `host`, in file order, tagged with
/// `path:line`. `Match`, `Include` and unknown keys are errors naming the line.
fn parse_config(path: &Path, text: &str, host: &str) -> Result<Vec<RawOption>> {
    let mut out = Vec::new();
    let mut active = true;
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let (key, value) = split_option(t).ok_or_else(|| {
            anyhow!(
                "{}:{lineno}: expected \"Key Value\", got {t:?}",
                path.display()
            )
        })?;
        match key.to_ascii_lowercase().as_str() {
            "host" => {
                // ssh_config: Host takes whitespace-separated patterns; one negated match
                // cancels the block.
                let pats: Vec<&str> = value.split_whitespace().collect();
                active = host_block_matches(host, &pats);
            }
            "match" | "include" => bail!(
                "{}:{lineno}: {key} is not supported by msh; use Host blocks",
                path.display()
            ),
            k if !KNOWN_KEYS.contains(&k) => bail!(
                "{}:{lineno}: unknown option {key:?}; msh accepts: {}",
                path.display(),
                KNOWN_KEYS_DISPLAY
            ),
            _ if active => out.push(RawOption {
                key,
                value,
                origin: format!("{}:{lineno}", path.display()),
            }),
            _ => {}
        }
    }
    Ok(out)
}

fn host_block_matches(host: &str, patterns: &[&str]) -> bool {
    let mut matched = false;
    for p in patterns {
        match match_list(host, p, true) {
            ListMatch::Negated => return false,
            ListMatch::Matched => matched = true,
            ListMatch::NoMatch => {}
        }
    }
    matched
}

fn parse_strict(v: &str) -> Result<StrictHostKeyChecking> {
    match v.to_ascii_lowercase().as_str() {
        "ask" => Ok(StrictHostKeyChecking::Ask),
        "accept-new" => Ok(StrictHostKeyChecking::AcceptNew),
        "yes" | "true" => Ok(StrictHostKeyChecking::Yes),
        "no" | "off" | "false" => bail!(
            "refused: msh never connects to a host whose key it cannot verify. To record a \
             new host's key automatically use -o StrictHostKeyChecking=accept-new; to trust a \
             key you know, use --pin SHA256:... (msh-keygen scan HOST shows it)"
        ),
        _ => bail!("expected ask, accept-new or yes"),
    }
}

fn parse_yes_no(v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => bail!("expected yes or no"),
    }
}

fn parse_seconds(v: &str) -> Result<u64> {
    v.parse::<u64>()
        .map_err(|_| anyhow!("expected a number of seconds"))
}

fn parse_port(v: &str) -> Result<u16> {
    match v.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => bail!("expected a port number 1-65535"),
    }
}

/// LogLevel → (tracing level, quiet).
fn parse_log_level(v: &str) -> Result<(tracing::Level, bool)> {
    use tracing::Level;
    Ok(match v.to_ascii_uppercase().as_str() {
        "QUIET" => (Level::ERROR, true),
        "FATAL" | "ERROR" => (Level::ERROR, false),
        "INFO" => (Level::WARN, false),
        "VERBOSE" => (Level::INFO, false),
        "DEBUG" | "DEBUG1" => (Level::DEBUG, false),
        "DEBUG2" | "DEBUG3" => (Level::TRACE, false),
        _ => bail!("expected QUIET, FATAL, ERROR, INFO, VERBOSE, DEBUG, DEBUG1, DEBUG2 or DEBUG3"),
    })
}

fn expand_tilde(p: &Path, home: Option<&Path>) -> PathBuf {
    match (p.strip_prefix("~"), home) {
        (Ok(rest), Some(h)) => h.join(rest),
        _ => p.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("msh").chain(v.iter().copied())).unwrap()
    }

    fn res(v: &[&str]) -> Result<Settings> {
        resolve(args(v), Some(Path::new("/home/me")), "me")
    }

    #[test]
    fn command_words_joined_and_options_after_host() {
        let s = res(&["-p", "2222", "ops@h", "-l", "x", "ls", "-la", "/tmp"]).unwrap();
        assert_eq!(s.user, "ops");
        assert_eq!(s.port, 2222);
        assert_eq!(s.host, "h");
        assert_eq!(s.command.as_deref(), Some("ls -la /tmp"));
    }

    #[test]
    fn first_value_wins_flags_then_o() {
        let s = res(&[
            "-p", "1", "-o", "Port=2", "-o", "User=u", "-o", "user=v", "h",
        ])
        .unwrap();
        assert_eq!(s.port, 1);
        assert_eq!(s.user, "u");
        let s = res(&["-o", "Port 2", "-o", "Port=3", "h"]).unwrap();
        assert_eq!(s.port, 2);
    }

    #[test]
    fn strict_no_refused_with_reason() {
        let e = res(&["-o", "StrictHostKeyChecking=no", "h"]).unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("accept-new") && msg.contains("--pin"), "{msg}");
        assert!(res(&["-o", "StrictHostKeyChecking=off", "h"]).is_err());
    }

    #[test]
    fn unknown_key_named() {
        let e = res(&["-o", "ProxyJump=x", "h"]).unwrap_err();
        assert!(format!("{e:#}").contains("\"ProxyJump\""));
    }

    #[test]
    fn tilde_and_defaults() {
        let s = res(&["-i", "~/k", "h"]).unwrap();
        assert_eq!(s.identity_files, vec![PathBuf::from("/home/me/k")]);
        assert_eq!(
            s.user_known_hosts,
            vec![PathBuf::from("/home/me/.ssh/known_hosts")]
        );
        assert_eq!(s.strict, StrictHostKeyChecking::Ask);
        assert_eq!(s.command, None);
    }

    #[test]
    fn config_host_blocks() {
        let text = "Port 1000\nHost a* !ab\n  User alice\n  Port 2000\nHost *\n  User bob\n";
        let o = parse_config(Path::new("c"), text, "ac").unwrap();
        let keys: Vec<_> = o
            .iter()
            .map(|r| (r.key.as_str(), r.value.as_str()))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("Port", "1000"),
                ("User", "alice"),
                ("Port", "2000"),
                ("User", "bob")
            ]
        );
        let o = parse_config(Path::new("c"), text, "ab").unwrap();
        assert_eq!(o.len(), 2);
        let e = parse_config(Path::new("c"), "Match all\n", "x").unwrap_err();
        assert!(format!("{e}").contains("c:1"));
        // Unknown keys are errors even in blocks that do not apply.
        let e = parse_config(Path::new("c"), "Host other\n\n  ProxyJump x\n", "x").unwrap_err();
        assert!(
            format!("{e}").contains("c:3: unknown option \"ProxyJump\""),
            "{e}"
        );
    }

    #[test]
    fn bad_pin_refused() {
        assert!(res(&["--pin", "MD5:aa", "h"]).is_err());
        assert!(res(&["--pin", "SHA256:abc+/9", "h"]).is_ok());
    }
}
