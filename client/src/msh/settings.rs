//! Command-line layering: clap parses the raw arguments (`Args`), then `resolve` merges the
//! flags, `-o Key=Value` options and one ssh_config file into one validated `Settings`.
//! Nothing past this module sees clap types.
//!
//! Precedence is OpenSSH's "first value wins": flags (`-p`, `-l`, `user@`), then `-o` in the
//! order given, then the config file's matching `Host` blocks in file order. List-valued keys
//! (`IdentityFile`, `CertificateFile`, `SendEnv`) accumulate across all sources instead.
//!
//! The config file is `-F FILE` (strict: every key must be one msh implements), else
//! `~/.ssh/config` when it exists (lenient, because OpenSSH reads it too: an OpenSSH keyword
//! msh does not implement is skipped with a note at -v, `Match` blocks are skipped since msh
//! does not evaluate their conditions), `-F none` for no file. `/etc/ssh/ssh_config` is never
//! read: distributions fill it with their own defaults for ssh (Debian's `SendEnv LANG LC_*`,
//! `GSSAPIAuthentication`, `HashKnownHosts`), which would silently change what msh sends and
//! writes. In both modes `Include` is followed (glob, relative to `~/.ssh`, 16 deep), a
//! keyword OpenSSH does not know is an error, and nothing that would weaken host verification
//! or route the connection elsewhere is dropped: `StrictHostKeyChecking no`, `ProxyJump`,
//! `ProxyCommand` and `RevokedHostKeys` that apply are refused, naming file:line.
//!
//! Config file example (keys are case-insensitive, `Key Value` or `Key=Value`):
//! ```text
//! Host build-* !build-old
//!     HostName %h.corp.example.com
//!     Port 2222
//!     StrictHostKeyChecking accept-new
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::{ArgAction, Parser};
use msh_common::duration::parse_duration;
use msh_common::pattern::{glob_match, match_list, ListMatch};

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
HostKeyAlias, HostName (%h = the name given), SendEnv, SetEnv, ServerAliveInterval, LogLevel, \
EscapeChar; ProxyJump, ProxyCommand and RevokedHostKeys only as `none` (msh refuses to ignore \
them where a config file sets them; `-o ProxyJump=none` connects directly).\n\n\
With `ask` and no terminal to ask on (or BatchMode=yes), an unknown host is refused as with `yes`.\n\
Config file: -F FILE, else ~/.ssh/config if it exists (OpenSSH options msh does not implement \
are skipped there, noted at -v); -F none reads none.\n\
Precedence: user@host, then -l/-p, then -o in order, then the config file's Host blocks: the \
first value wins."
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
    /// Read options from this ssh_config file (only the keys -o accepts) instead of
    /// ~/.ssh/config; `none`: no config file.
    #[arg(short = 'F', value_name = "CONFIG")]
    pub config: Option<PathBuf>,
    /// Escape character for interactive sessions (default ~): typed after a newline, ~.
    /// disconnects, ~^Z suspends, ~? lists the escapes; none disables.
    #[arg(short = 'e', value_name = "CHAR|^X|none")]
    pub escape_char: Option<String>,
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
    /// The address to connect to: HostName (with `%h` expanded) or else the name given,
    /// lowercased as ssh does. Also the known_hosts name unless HostKeyAlias is set, and the
    /// host that messages name (as in ssh's).
    pub host: String,
    /// The host name as given on the command line: what `Host` blocks matched.
    pub host_arg: String,
    /// Where the HostName that set `host` came from (`-o #1`, `path:line`).
    pub host_name_origin: Option<String>,
    /// What the config file reading skipped (path:line and why), shown at -v.
    pub config_notes: Vec<String>,
    /// Port to connect to (Port, -p; default 22).
    pub port: u16,
    /// Remote user (user@, -l, User; default the local user).
    pub user: String,
    /// Name used for known_hosts lookups and writes instead of `host` (HostKeyAlias).
    pub host_key_alias: Option<String>,
    /// Identity files in order (flags first, then -o, then config).
    pub identity_files: Vec<PathBuf>,
    /// True when identities came from -i / IdentityFile (no default ~/.ssh/id_* then).
    pub identities_explicit: bool,
    /// IdentitiesOnly: offer only the identity files' keys, not every agent key.
    pub identities_only: bool,
    /// CertificateFile: user certificates, offered with the identity (file or agent key)
    /// they certify, before that plain key.
    pub certificate_files: Vec<PathBuf>,
    /// StrictHostKeyChecking: what to do with an unknown host.
    pub strict: StrictHostKeyChecking,
    /// UserKnownHostsFile: read, and written when a new host is recorded.
    pub user_known_hosts: Vec<PathBuf>,
    /// GlobalKnownHostsFile: read only.
    pub global_known_hosts: Vec<PathBuf>,
    /// BatchMode: never ask on the terminal.
    pub batch_mode: bool,
    /// ConnectTimeout (None: the system's TCP timeout).
    pub connect_timeout: Option<Duration>,
    /// HashKnownHosts: write new known_hosts entries with hashed names.
    pub hash_known_hosts: bool,
    /// Environment variable name patterns to send (SendEnv).
    pub send_env: Vec<String>,
    /// Variables to set remotely (SetEnv), first definition of a name wins.
    pub set_env: Vec<(String, String)>,
    /// ServerAliveInterval (None: no keepalives).
    pub server_alive_interval: Option<Duration>,
    /// Default tracing level from -v/-q/LogLevel (RUST_LOG still wins).
    pub log_level: tracing::Level,
    /// LogLevel=QUIET or -q: no warnings or notices.
    pub quiet: bool,
    /// `--pin` fingerprints (`SHA256:...`); when any is given known_hosts is not used.
    pub pins: Vec<String>,
    /// Whether to request a PTY (-t, -tt, -T).
    pub tty: TtyMode,
    /// The command words joined with spaces, or None for a shell.
    pub command: Option<String>,
    /// EscapeChar (`-e` first): None = `none`, escapes off.
    pub escape_char: Option<u8>,
}

impl Settings {
    /// The name this host is stored under in known_hosts: HostKeyAlias, else the address
    /// connected to (HostName), never the alias typed, as in OpenSSH.
    pub fn known_hosts_name(&self) -> &str {
        self.host_key_alias.as_deref().unwrap_or(&self.host)
    }

    /// The port known_hosts entries are looked up and written under: a HostKeyAlias is
    /// used verbatim (no `[..]:port`), as OpenSSH does.
    pub fn known_hosts_port(&self) -> u16 {
        if self.host_key_alias.is_some() {
            22
        } else {
            self.port
        }
    }

    /// The connect address for messages, with the alias it came from when HostName set it:
    /// `127.0.0.1 (HostName of "alias", ~/.ssh/config:3)`.
    pub fn host_description(&self) -> String {
        match &self.host_name_origin {
            Some(origin) if self.host != self.host_arg => {
                format!("{} (HostName of {:?}, {origin})", self.host, self.host_arg)
            }
            _ => self.host.clone(),
        }
    }
}

/// The ssh_config keys msh implements (lowercase), for -o and config files alike.
const KNOWN_KEYS: &[&str] = &[
    "hostname",
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
Port, User, HashKnownHosts, HostKeyAlias, HostName, SendEnv, SetEnv, ServerAliveInterval, \
LogLevel, EscapeChar";

/// Keys msh accepts only as `none` where they apply: ignoring any other value would route
/// the connection around the proxy the user set up (ProxyJump, ProxyCommand) or accept host
/// keys the user revoked (RevokedHostKeys). `-o KEY=none` overrides a config file's value,
/// as in ssh (first value wins).
const NONE_ONLY_KEYS: &[&str] = &["proxyjump", "proxycommand", "revokedhostkeys"];

/// Every keyword of ssh_config(5) (OpenSSH 9.x, with Debian's GSSAPI additions), the obsolete
/// names OpenSSH still parses, and Apple's `UseKeychain` (macOS users share their
/// ~/.ssh/config). In ~/.ssh/config one of these that msh does not implement is skipped with
/// a note at -v; a keyword outside this list is an error, as it is for ssh.
const OPENSSH_KEYWORDS: &[&str] = &[
    "host",
    "match",
    "include",
    "ignoreunknown",
    "addkeystoagent",
    "addressfamily",
    "batchmode",
    "bindaddress",
    "bindinterface",
    "canonicaldomains",
    "canonicalizefallbacklocal",
    "canonicalizehostname",
    "canonicalizemaxdots",
    "canonicalizepermittedcnames",
    "casignaturealgorithms",
    "certificatefile",
    "checkhostip",
    "ciphers",
    "clearallforwardings",
    "compression",
    "connectionattempts",
    "connecttimeout",
    "controlmaster",
    "controlpath",
    "controlpersist",
    "dynamicforward",
    "enableescapecommandline",
    "enablesshkeysign",
    "escapechar",
    "exitonforwardfailure",
    "fingerprinthash",
    "forkafterauthentication",
    "forwardagent",
    "forwardx11",
    "forwardx11timeout",
    "forwardx11trusted",
    "gatewayports",
    "globalknownhostsfile",
    "gssapiauthentication",
    "gssapiclientidentity",
    "gssapidelegatecredentials",
    "gssapikeyexchange",
    "gssapirenewalforcesrekey",
    "gssapiserveridentity",
    "gssapitrustdns",
    "gssapikexalgorithms",
    "hashknownhosts",
    "hostbasedacceptedalgorithms",
    "hostbasedauthentication",
    "hostkeyalgorithms",
    "hostkeyalias",
    "hostname",
    "identitiesonly",
    "identityagent",
    "identityfile",
    "ipqos",
    "kbdinteractiveauthentication",
    "kbdinteractivedevices",
    "kexalgorithms",
    "knownhostscommand",
    "localcommand",
    "localforward",
    "loglevel",
    "logverbose",
    "macs",
    "nohostauthenticationforlocalhost",
    "numberofpasswordprompts",
    "passwordauthentication",
    "permitlocalcommand",
    "permitremoteopen",
    "pkcs11provider",
    "port",
    "preferredauthentications",
    "proxycommand",
    "proxyjump",
    "proxyusefdpass",
    "pubkeyacceptedalgorithms",
    "pubkeyauthentication",
    "rekeylimit",
    "remotecommand",
    "remoteforward",
    "requesttty",
    "requiredrsasize",
    "revokedhostkeys",
    "securitykeyprovider",
    "sendenv",
    "serveralivecountmax",
    "serveraliveinterval",
    "sessiontype",
    "setenv",
    "stdinnull",
    "streamlocalbindmask",
    "streamlocalbindunlink",
    "stricthostkeychecking",
    "syslogfacility",
    "tcpkeepalive",
    "tunnel",
    "tunneldevice",
    "updatehostkeys",
    "user",
    "userknownhostsfile",
    "verifyhostkeydns",
    "visualhostkey",
    "xauthlocation",
    // Obsolete names and aliases OpenSSH still accepts.
    "protocol",
    "cipher",
    "fallbacktorsh",
    "globalknownhostsfile2",
    "rhostsauthentication",
    "userknownhostsfile2",
    "useroaming",
    "usersh",
    "useprivilegedport",
    "afstokenpassing",
    "kerberosauthentication",
    "kerberostgtpassing",
    "rsaauthentication",
    "rhostsrsaauthentication",
    "compressionlevel",
    "dsaauthentication",
    "challengeresponseauthentication",
    "skeyauthentication",
    "tisauthentication",
    "identityfile2",
    "keepalive",
    "smartcarddevice",
    "pubkeyacceptedkeytypes",
    "hostbasedkeytypes",
    "hostbasedacceptedkeytypes",
    // Apple's OpenSSH.
    "usekeychain",
];

/// Most nested `Include`s followed, as OpenSSH's READCONF_MAX_DEPTH.
const MAX_INCLUDE_DEPTH: usize = 16;

/// One `Key Value` pair with where it came from, for error messages.
#[derive(Debug, Clone)]
struct RawOption {
    key: String,
    value: String,
    origin: String,
    /// False for a config line in a `Host` block that does not match: its value is still
    /// checked (as ssh does) but not applied.
    active: bool,
}

/// "First value wins" bookkeeping for single-valued keys.
#[derive(Default)]
struct Seen(Vec<String>);

impl Seen {
    fn has(&self, key: &str) -> bool {
        self.0.iter().any(|k| k == key)
    }

    /// True when `key` applies here (`active`) and no earlier source set it.
    fn first(&mut self, key: &str, active: bool) -> bool {
        if !active || self.0.iter().any(|k| k == key) {
            false
        } else {
            self.0.push(key.to_string());
            true
        }
    }
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
    // -e is EscapeChar ahead of every -o: the first value wins.
    if let Some(e) = &args.escape_char {
        raw.push(RawOption {
            key: "EscapeChar".to_string(),
            value: e.clone(),
            origin: "-e".to_string(),
            active: true,
        });
    }
    for (i, o) in args.options.iter().enumerate() {
        let (key, value) = split_option(o)
            .ok_or_else(|| anyhow!("-o {o:?}: expected Key=Value (e.g. -o Port=2222)"))?;
        raw.push(RawOption {
            key,
            value,
            origin: format!("-o #{}", i + 1),
            active: true,
        });
    }
    let mut config_notes = Vec::new();
    match &args.config {
        Some(path) if path.as_os_str() == "none" => {}
        Some(path) => {
            let path = expand_tilde(path, home);
            let mut reader = ConfigReader::new(&host, home, ConfigMode::Strict);
            // The user named this file: a missing one is an error, and ssh does not check
            // its permissions either.
            reader.read_file(&path, 0, true, false)?;
            raw.extend(reader.out);
            config_notes = reader.notes;
        }
        None => {
            if let Some(h) = home {
                let path = h.join(".ssh/config");
                let mut reader = ConfigReader::new(&host, home, ConfigMode::Lenient);
                reader.read_file(&path, 0, true, true)?;
                raw.extend(reader.out);
                config_notes = reader.notes;
            }
        }
    }

    let mut s = Settings {
        host: host.clone(),
        host_arg: host.clone(),
        host_name_origin: None,
        config_notes,
        port: 22,
        user: local_user.to_string(),
        host_key_alias: None,
        // Tokens and `~` in these three lists are expanded after the loop below.
        identity_files: args.identity.clone(),
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
        escape_char: Some(super::escape::DEFAULT_ESCAPE),
    };

    // "First value wins": track which single-valued keys are already set.
    let mut seen = Seen::default();
    let mut port = args.port;
    let mut user = dest_user.or(args.login.clone());
    let mut log_level: Option<(tracing::Level, bool)> = None;
    let mut host_name: Option<(String, String)> = None;
    // (key as written, value, origin) of the first ProxyJump/ProxyCommand, and of the first
    // RevokedHostKeys, that apply.
    let mut proxy: Option<(String, String, String)> = None;
    let mut revoked: Option<(String, String, String)> = None;
    for o in &raw {
        let key = o.key.to_ascii_lowercase();
        let v = o.value.as_str();
        let on = o.active;
        let ctx = || format!("{}: {}={}", o.origin, o.key, o.value);
        match key.as_str() {
            "stricthostkeychecking" => {
                let mode = parse_strict(v).with_context(ctx)?;
                if seen.first(&key, on) {
                    // Refused only where it would decide: `-o StrictHostKeyChecking=accept-new`
                    // still overrides a config file's `no`, as the message suggests.
                    s.strict = mode.ok_or_else(strict_no_refusal).with_context(ctx)?;
                }
            }
            "userknownhostsfile" | "globalknownhostsfile" => {
                let mut files: Vec<PathBuf> = v.split_whitespace().map(PathBuf::from).collect();
                if files.is_empty() {
                    return Err(anyhow!("a file name is required")).with_context(ctx);
                }
                // `none`, as in ssh: no such file at all (not a file named "none").
                if v.eq_ignore_ascii_case("none") {
                    files.clear();
                }
                if on && key == "userknownhostsfile" {
                    check_path_tokens(v).with_context(ctx)?;
                }
                if seen.first(&key, on) {
                    if key == "userknownhostsfile" {
                        s.user_known_hosts = files;
                    } else {
                        s.global_known_hosts =
                            files.iter().map(|f| expand_tilde(f, home)).collect();
                    }
                }
            }
            "batchmode" => {
                let b = parse_yes_no(v).with_context(ctx)?;
                if seen.first(&key, on) {
                    s.batch_mode = b;
                }
            }
            "connecttimeout" => {
                let d = parse_duration(v).with_context(ctx)?;
                if seen.first(&key, on) {
                    s.connect_timeout = (!d.is_zero()).then_some(d);
                }
            }
            "identityfile" => {
                if v.is_empty() {
                    return Err(anyhow!("a file name is required")).with_context(ctx);
                }
                if on {
                    check_path_tokens(v).with_context(ctx)?;
                    s.identity_files.push(PathBuf::from(v));
                    s.identities_explicit = true;
                }
            }
            "identitiesonly" => {
                let b = parse_yes_no(v).with_context(ctx)?;
                if seen.first(&key, on) {
                    s.identities_only = b;
                }
            }
            "certificatefile" => {
                if v.is_empty() {
                    return Err(anyhow!("a file name is required")).with_context(ctx);
                }
                if on {
                    check_path_tokens(v).with_context(ctx)?;
                    s.certificate_files.push(PathBuf::from(v));
                }
            }
            "port" => {
                let p = parse_port(v).with_context(ctx)?;
                if on && port.is_none() {
                    port = Some(p);
                }
            }
            "user" => {
                if v.is_empty() {
                    return Err(anyhow!("empty user name")).with_context(ctx);
                }
                if on && user.is_none() {
                    user = Some(v.to_string());
                }
            }
            "hashknownhosts" => {
                let b = parse_yes_no(v).with_context(ctx)?;
                if seen.first(&key, on) {
                    s.hash_known_hosts = b;
                }
            }
            "hostkeyalias" => {
                if v.is_empty() || v.contains(char::is_whitespace) {
                    return Err(anyhow!("expected one host name")).with_context(ctx);
                }
                if seen.first(&key, on) {
                    s.host_key_alias = Some(v.to_string());
                }
            }
            "hostname" => {
                let name = expand_host_name(v, &host).with_context(ctx)?;
                if seen.first(&key, on) {
                    host_name = Some((name, o.origin.clone()));
                }
            }
            "proxyjump" | "proxycommand" => {
                if v.is_empty() {
                    return Err(anyhow!("a value is required")).with_context(ctx);
                }
                // One slot for both, as in ssh: the first of the two that applies wins.
                if on && proxy.is_none() {
                    proxy = Some((o.key.clone(), v.to_string(), o.origin.clone()));
                }
            }
            "revokedhostkeys" => {
                if v.is_empty() {
                    return Err(anyhow!("a file name is required")).with_context(ctx);
                }
                if on && revoked.is_none() {
                    revoked = Some((o.key.clone(), v.to_string(), o.origin.clone()));
                }
            }
            "sendenv" => {
                if on {
                    s.send_env.extend(v.split_whitespace().map(str::to_string));
                }
            }
            "setenv" => {
                for pair in v.split_whitespace() {
                    let (name, value) = pair
                        .split_once('=')
                        .filter(|(n, _)| !n.is_empty())
                        .ok_or_else(|| anyhow!("expected NAME=VALUE, got {pair:?}"))
                        .with_context(ctx)?;
                    if on && !s.set_env.iter().any(|(n, _)| n == name) {
                        s.set_env.push((name.to_string(), value.to_string()));
                    }
                }
            }
            "serveraliveinterval" => {
                let d = parse_duration(v).with_context(ctx)?;
                if seen.first(&key, on) {
                    s.server_alive_interval = (!d.is_zero()).then_some(d);
                }
            }
            "loglevel" => {
                let l = parse_log_level(v).with_context(ctx)?;
                if on && log_level.is_none() {
                    log_level = Some(l);
                }
            }
            "escapechar" => {
                let c = super::escape::parse_escape_char(v).with_context(ctx)?;
                if seen.first(&key, on) {
                    s.escape_char = c;
                }
            }
            // Only -o gets here: config files reject unknown keys while reading.
            _ if OPENSSH_KEYWORDS.contains(&key.as_str()) => bail!(
                "{}: unknown option {:?} (an OpenSSH option msh does not implement); msh \
                 accepts: {}",
                o.origin,
                o.key,
                KNOWN_KEYS_DISPLAY
            ),
            _ => bail!(
                "{}: unknown option {:?}; msh accepts: {}",
                o.origin,
                o.key,
                KNOWN_KEYS_DISPLAY
            ),
        }
    }

    if let Some((key, value, origin)) = proxy.filter(|(_, v, _)| !v.eq_ignore_ascii_case("none")) {
        bail!(
            "{origin}: {key} {value} applies to {host}, but msh has no proxy support: \
             connecting directly would reach the host by another route than ssh takes (or \
             another host). Use ssh for this host, or connect directly with -o {key}=none"
        );
    }
    if let Some((key, value, origin)) = revoked.filter(|(_, v, _)| !v.eq_ignore_ascii_case("none"))
    {
        bail!(
            "{origin}: {key} {value}: msh does not read revocation lists for host keys, so a \
             revoked host key could be accepted. Mark revoked keys with @revoked lines in \
             known_hosts instead (msh honours them), or override with -o {key}=none"
        );
    }
    if let Some((name, origin)) = host_name {
        s.host = name;
        s.host_name_origin = Some(origin);
    }
    s.host = canonical_host(&s.host);

    s.port = port.unwrap_or(22);
    if s.port == 0 {
        bail!("port 0 is not a valid port");
    }
    s.user = user.unwrap_or_else(|| local_user.to_string());

    // Path tokens need the final user, host and port, so they are expanded last; then `~`
    // (ssh expands `~` first, which differs only for a home directory holding `%`).
    let tokens = Tokens {
        home,
        local_user,
        host: &s.host,
        original: &s.host_arg,
        alias: s.host_key_alias.as_deref().unwrap_or(&s.host_arg),
        port: s.port,
        user: &s.user,
    };
    let expand_all = |paths: &[PathBuf], what: &str| -> Result<Vec<PathBuf>> {
        paths
            .iter()
            .map(|p| match p.to_str() {
                Some(t) if t.contains('%') || t.contains("${") => {
                    expand_path_tokens(t, Some(&tokens))
                        .map(|e| expand_tilde(Path::new(&e), home))
                        .with_context(|| format!("{what} {t}"))
                }
                _ => Ok(expand_tilde(p, home)),
            })
            .collect()
    };
    let identity_files = expand_all(&s.identity_files, "IdentityFile")?;
    let certificate_files = expand_all(&s.certificate_files, "CertificateFile")?;
    let user_known_hosts = expand_all(&s.user_known_hosts, "UserKnownHostsFile")?;
    s.identity_files = identity_files;
    s.certificate_files = certificate_files;
    s.user_known_hosts = user_known_hosts;
    if !seen.has("userknownhostsfile") {
        if let Some(h) = home {
            s.user_known_hosts.push(h.join(".ssh/known_hosts"));
        }
    }
    if !seen.has("globalknownhostsfile") {
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

/// How a config file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConfigMode {
    /// `-F FILE`: written for msh, so every key must be one msh implements.
    Strict,
    /// `~/.ssh/config`: shared with ssh, so OpenSSH keywords msh does not implement and
    /// `Match` blocks are skipped (noted for -v).
    Lenient,
}

/// Reads one ssh_config file and its `Include`s: collects the options (tagged `path:line`,
/// active or not for the host) and notes on what was skipped.
struct ConfigReader<'a> {
    /// The name given on the command line: `Host` patterns match it, as in ssh (HostName
    /// does not cause a second match).
    host: &'a str,
    home: Option<&'a Path>,
    mode: ConfigMode,
    out: Vec<RawOption>,
    notes: Vec<String>,
    /// The first `IgnoreUnknown` pattern list that applies.
    ignore_unknown: Option<String>,
}

impl<'a> ConfigReader<'a> {
    fn new(host: &'a str, home: Option<&'a Path>, mode: ConfigMode) -> Self {
        ConfigReader {
            host,
            home,
            mode,
            out: Vec::new(),
            notes: Vec::new(),
            ignore_unknown: None,
        }
    }

    /// Reads `path` at include `depth`. `enabled`: false when the `Include` that named the
    /// file sits in a block that does not apply, so nothing in it applies (it is still
    /// checked, as ssh does). `shared`: the default file or an included one, which ssh
    /// refuses when others could write it, and which may be missing.
    fn read_file(&mut self, path: &Path, depth: usize, enabled: bool, shared: bool) -> Result<()> {
        let Some(text) = read_config_text(path, shared)? else {
            return Ok(());
        };
        self.parse(path, &text, depth, enabled)
    }

    fn parse(&mut self, path: &Path, text: &str, depth: usize, enabled: bool) -> Result<()> {
        let mut active = enabled;
        for (i, line) in text.lines().enumerate() {
            let at = format!("{}:{}", path.display(), i + 1);
            let t = strip_comment(line.trim());
            if t.is_empty() {
                continue;
            }
            let (key, value) = split_option(t)
                .ok_or_else(|| anyhow!("{at}: expected \"Key Value\", got {t:?}"))?;
            let lower = key.to_ascii_lowercase();
            match lower.as_str() {
                "host" => {
                    // Host takes whitespace-separated patterns; one negated match cancels
                    // the block.
                    let pats: Vec<&str> = value.split_whitespace().collect();
                    if pats.is_empty() {
                        bail!("{at}: Host needs at least one pattern");
                    }
                    active = enabled && host_block_matches(self.host, &pats);
                }
                "match" => match self.mode {
                    ConfigMode::Strict => {
                        bail!("{at}: Match is not supported by msh; use Host blocks")
                    }
                    ConfigMode::Lenient => {
                        self.notes.push(format!(
                            "{at}: Match block skipped: msh does not evaluate Match conditions, \
                             so its options (up to the next Host or Match line) do not apply"
                        ));
                        active = false;
                    }
                },
                "include" => self.include(&at, &value, depth, active)?,
                "ignoreunknown" => {
                    if active && self.ignore_unknown.is_none() {
                        self.ignore_unknown = Some(value);
                    }
                }
                k if KNOWN_KEYS.contains(&k) || NONE_ONLY_KEYS.contains(&k) => {
                    self.out.push(RawOption {
                        key,
                        value,
                        origin: at,
                        active,
                    })
                }
                k if OPENSSH_KEYWORDS.contains(&k) => match self.mode {
                    ConfigMode::Strict => bail!(
                        "{at}: unknown option {key:?} (an OpenSSH option msh does not \
                         implement); msh accepts: {KNOWN_KEYS_DISPLAY}"
                    ),
                    ConfigMode::Lenient => {
                        if active {
                            self.notes.push(format!(
                                "{at}: {key} is an OpenSSH option msh does not implement; ignored"
                            ));
                        }
                    }
                },
                k => {
                    let ignored = self.ignore_unknown.as_deref().is_some_and(|pats| {
                        match_list(k, &pats.replace(char::is_whitespace, ","), true)
                            == ListMatch::Matched
                    });
                    if !ignored {
                        bail!(
                            "{at}: unknown option {key:?} (not an ssh_config keyword); msh \
                             accepts: {KNOWN_KEYS_DISPLAY}{}",
                            if self.mode == ConfigMode::Lenient {
                                " (to keep it for another program, put \"IgnoreUnknown \
                                 KEYWORD\" above it, as for ssh)"
                            } else {
                                ""
                            }
                        );
                    }
                    self.notes
                        .push(format!("{at}: {key} ignored (IgnoreUnknown)"));
                }
            }
        }
        Ok(())
    }

    /// `Include` at `at`: each glob pattern is relative to ~/.ssh unless absolute or `~/`;
    /// files are read in lexical order, each with its own Host state, as ssh does.
    fn include(&mut self, at: &str, value: &str, depth: usize, active: bool) -> Result<()> {
        if depth + 1 > MAX_INCLUDE_DEPTH {
            bail!(
                "{at}: Include nested more than {MAX_INCLUDE_DEPTH} deep (does a file include \
                 itself?)"
            );
        }
        let args: Vec<&str> = value.split_whitespace().collect();
        if args.is_empty() {
            bail!("{at}: Include needs a file name");
        }
        for arg in args {
            let pattern = if let Some(rest) = arg.strip_prefix("~/") {
                let home = self
                    .home
                    .ok_or_else(|| anyhow!("{at}: Include {arg}: no home directory for ~"))?;
                home.join(rest)
            } else if arg.starts_with('~') {
                bail!("{at}: Include {arg}: only ~/ (your own home) is supported");
            } else if arg.starts_with('/') {
                PathBuf::from(arg)
            } else {
                let home = self.home.ok_or_else(|| {
                    anyhow!(
                        "{at}: Include {arg}: relative to ~/.ssh, but there is no home directory"
                    )
                })?;
                home.join(".ssh").join(arg)
            };
            let files = glob_paths(&pattern).with_context(|| format!("{at}: Include {arg}"))?;
            if files.is_empty() {
                self.notes
                    .push(format!("{at}: Include {arg} matched no files"));
            }
            for file in files {
                if file.is_dir() {
                    self.notes.push(format!(
                        "{at}: Include {arg}: {} is a directory; skipped",
                        file.display()
                    ));
                    continue;
                }
                self.read_file(&file, depth + 1, active, true)?;
            }
        }
        Ok(())
    }
}

/// The text of a config file, or None when `shared` and it does not exist. A shared file
/// (~/.ssh/config or an included one) must not be writable by others, as ssh requires:
/// whoever can write it chooses where msh connects and which keys it trusts.
fn read_config_text(path: &Path, shared: bool) -> Result<Option<String>> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if shared && e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read config file {}", path.display()))
        }
    };
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    if shared {
        let uid = nix::unistd::getuid().as_raw();
        if meta.uid() != 0 && meta.uid() != uid {
            bail!(
                "bad owner of config file {}: owned by uid {}, not by you or root; fix with \
                 chown {uid} {}",
                path.display(),
                meta.uid(),
                path.display()
            );
        }
        if meta.mode() & 0o022 != 0 {
            bail!(
                "bad permissions on config file {}: mode {:04o} lets others write it; fix with \
                 chmod go-w {}",
                path.display(),
                meta.mode() & 0o7777,
                path.display()
            );
        }
    }
    let mut text = String::new();
    file.read_to_string(&mut text)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    Ok(Some(text))
}

/// Expands `*` and `?` in the components of the absolute path `pattern`, as glob(3) does
/// for ssh's `Include`: names starting with `.` only match a pattern starting with `.`;
/// results are sorted; a path without wildcards is returned if it exists.
fn glob_paths(pattern: &Path) -> Result<Vec<PathBuf>> {
    use std::path::Component;
    let text = pattern.to_string_lossy();
    if text.contains('[') {
        bail!("character classes ([...]) in Include patterns are not supported by msh; use * or ?");
    }
    let mut paths = vec![PathBuf::new()];
    for comp in pattern.components() {
        match comp {
            Component::Normal(name) => {
                let name = name.to_string_lossy();
                if !name.contains(['*', '?']) {
                    for p in &mut paths {
                        p.push(name.as_ref());
                    }
                    continue;
                }
                let mut next = Vec::new();
                for dir in &paths {
                    // An unreadable directory matches nothing, as glob(3) without GLOB_ERR.
                    let Ok(entries) = std::fs::read_dir(dir) else {
                        continue;
                    };
                    for entry in entries.flatten() {
                        let file_name = entry.file_name();
                        let Some(f) = file_name.to_str() else {
                            continue;
                        };
                        if f.starts_with('.') && !name.starts_with('.') {
                            continue;
                        }
                        if glob_match(f, &name) {
                            next.push(dir.join(f));
                        }
                    }
                }
                paths = next;
            }
            other => {
                for p in &mut paths {
                    p.push(other.as_os_str());
                }
            }
        }
    }
    paths.retain(|p| p.exists());
    paths.sort();
    Ok(paths)
}

/// The line without a trailing comment: `#` starting a word outside quotes begins one, as
/// in OpenSSH 9 (`Port 2222 # test box`).
fn strip_comment(line: &str) -> &str {
    let mut in_quotes = false;
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            '#' if !in_quotes && prev_space => return line.get(..i).unwrap_or(line).trim_end(),
            _ => {}
        }
        prev_space = c.is_whitespace();
    }
    line
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

/// HostName's value with `%h` (the name given) and `%%` expanded; ssh knows no other token
/// here.
fn expand_host_name(v: &str, host: &str) -> Result<String> {
    let mut out = String::new();
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('h') => out.push_str(host),
            Some('%') => out.push('%'),
            Some(t) => bail!("unknown token %{t} (HostName expands only %h and %%)"),
            None => bail!("a lone % at the end (write %% for a percent sign)"),
        }
    }
    if out.is_empty() || out.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("expected one host name or address");
    }
    Ok(out)
}

/// The connect address as ssh keeps it: an IP address in its canonical form, a name
/// lowercased (known_hosts entries are written so).
fn canonical_host(h: &str) -> String {
    match h.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => h.to_ascii_lowercase(),
    }
}

/// What ssh_config's path tokens stand for (ssh_config(5) TOKENS; IdentityFile,
/// CertificateFile and UserKnownHostsFile take %%, %d, %h, %i, %k, %L, %l, %n, %p, %r, %u).
struct Tokens<'a> {
    home: Option<&'a Path>,
    local_user: &'a str,
    /// The address connected to (HostName).
    host: &'a str,
    /// The name given on the command line.
    original: &'a str,
    /// HostKeyAlias, else the name given.
    alias: &'a str,
    port: u16,
    /// The remote user.
    user: &'a str,
}

/// Checks a path's `%` tokens and `${VAR}` references where the option is read, so an
/// error can name its file:line; the values are filled in by `expand_path_tokens` later.
fn check_path_tokens(v: &str) -> Result<()> {
    expand_path_tokens(v, None).map(|_| ())
}

/// Expands `${VAR}` (environment) and `%` tokens in a path, as ssh does for IdentityFile,
/// CertificateFile and UserKnownHostsFile. With `t` None only checks them.
fn expand_path_tokens(v: &str, t: Option<&Tokens>) -> Result<String> {
    let mut out = String::new();
    let mut rest = v;
    while let Some(c) = rest.chars().next() {
        rest = rest.get(c.len_utf8()..).unwrap_or("");
        if c == '$' && rest.starts_with('{') {
            let end = rest
                .find('}')
                .ok_or_else(|| anyhow!("unterminated ${{ (write ${{NAME}})"))?;
            let name = rest.get(1..end).unwrap_or("");
            if name.is_empty() {
                bail!("empty environment variable name in ${{}}");
            }
            let value = std::env::var(name)
                .map_err(|_| anyhow!("environment variable {name} (in ${{{name}}}) is not set"))?;
            out.push_str(&value);
            rest = rest.get(end + 1..).unwrap_or("");
            continue;
        }
        if c != '%' {
            out.push(c);
            continue;
        }
        let token = rest.chars().next();
        rest = rest.get(token.map_or(0, char::len_utf8)..).unwrap_or("");
        let Some(token) = token else {
            bail!("a lone % at the end (write %% for a percent sign)");
        };
        if !"%dhikLlnpru".contains(token) {
            match token {
                'C' => bail!(
                    "token %C (a hash of the connection) is not supported by msh; write the \
                     path out"
                ),
                _ => bail!(
                    "unknown token %{token} (paths take %%, %d, %h, %i, %k, %L, %l, %n, %p, %r, %u)"
                ),
            }
        }
        let Some(t) = t else { continue };
        match token {
            '%' => out.push('%'),
            'd' => {
                let home = t
                    .home
                    .ok_or_else(|| anyhow!("%d: no home directory (HOME is not set)"))?;
                out.push_str(&home.to_string_lossy());
            }
            'h' => out.push_str(t.host),
            'i' => out.push_str(&nix::unistd::getuid().to_string()),
            'k' => out.push_str(t.alias),
            'l' | 'L' => {
                let name = nix::unistd::gethostname()
                    .map(|h| h.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if token == 'L' {
                    out.push_str(name.split('.').next().unwrap_or(""));
                } else {
                    out.push_str(&name);
                }
            }
            'n' => out.push_str(t.original),
            'p' => out.push_str(&t.port.to_string()),
            'r' => out.push_str(t.user),
            _ => out.push_str(t.local_user),
        }
    }
    Ok(out)
}

/// StrictHostKeyChecking's value; None for `no`, which is refused where it would apply.
fn parse_strict(v: &str) -> Result<Option<StrictHostKeyChecking>> {
    match v.to_ascii_lowercase().as_str() {
        "ask" => Ok(Some(StrictHostKeyChecking::Ask)),
        "accept-new" => Ok(Some(StrictHostKeyChecking::AcceptNew)),
        "yes" | "true" => Ok(Some(StrictHostKeyChecking::Yes)),
        "no" | "off" | "false" => Ok(None),
        _ => bail!("expected ask, accept-new or yes"),
    }
}

fn strict_no_refusal() -> anyhow::Error {
    anyhow!(
        "refused: msh never connects to a host whose key it cannot verify. To record a \
         new host's key automatically use -o StrictHostKeyChecking=accept-new; to trust a \
         key you know, use --pin SHA256:... (msh-keygen scan HOST shows it)"
    )
}

fn parse_yes_no(v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => bail!("expected yes or no"),
    }
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
        let e = res(&["-o", "ForwardAgent=yes", "h"]).unwrap_err();
        assert!(
            format!("{e:#}").starts_with(
                "-o #1: unknown option \"ForwardAgent\" (an OpenSSH option msh does not implement)"
            ),
            "{e:#}"
        );
        let e = res(&["-o", "Frobnicate=yes", "h"]).unwrap_err();
        assert!(format!("{e:#}").contains("unknown option \"Frobnicate\""));
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

    type KeyValue = (String, String);

    /// Parses `text` as file `c` for `host`: the options that apply, as (key, value).
    fn parse(text: &str, host: &str, mode: ConfigMode) -> Result<(Vec<KeyValue>, Vec<String>)> {
        let mut r = ConfigReader::new(host, Some(Path::new("/home/me")), mode);
        r.parse(Path::new("c"), text, 0, true)?;
        let applied = r
            .out
            .iter()
            .filter(|o| o.active)
            .map(|o| (o.key.clone(), o.value.clone()))
            .collect();
        Ok((applied, r.notes))
    }

    fn kv(v: &[(&str, &str)]) -> Vec<KeyValue> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn config_host_blocks() {
        let text = "Port 1000\nHost a* !ab\n  User alice\n  Port 2000\nHost *\n  User bob\n";
        let (o, _) = parse(text, "ac", ConfigMode::Strict).unwrap();
        assert_eq!(
            o,
            kv(&[
                ("Port", "1000"),
                ("User", "alice"),
                ("Port", "2000"),
                ("User", "bob")
            ])
        );
        let (o, _) = parse(text, "ab", ConfigMode::Strict).unwrap();
        assert_eq!(o.len(), 2);
        let e = parse("Match all\n", "x", ConfigMode::Strict).unwrap_err();
        assert!(format!("{e}").contains("c:1"));
        // Unknown keys are errors even in blocks that do not apply.
        let e = parse("Host other\n\n  Frobnicate x\n", "x", ConfigMode::Strict).unwrap_err();
        assert!(
            format!("{e}").contains("c:3: unknown option \"Frobnicate\""),
            "{e}"
        );
    }

    /// A real home directory with files (path, contents, mode), removed on drop.
    struct Home(PathBuf);

    impl Home {
        fn new(name: &str, files: &[(&str, &str, u32)]) -> Home {
            use std::os::unix::fs::PermissionsExt;
            let dir =
                std::env::temp_dir().join(format!("msh-settings-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            for (path, text, mode) in files {
                let p = dir.join(path);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(&p, text).unwrap();
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode)).unwrap();
            }
            std::fs::create_dir_all(&dir).unwrap();
            Home(dir)
        }

        fn resolve(&self, v: &[&str]) -> Result<Settings> {
            resolve(args(v), Some(&self.0), "me")
        }

        fn path(&self, p: &str) -> String {
            self.0.join(p).display().to_string()
        }
    }

    impl Drop for Home {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const ALIAS_CONFIG: &str = "\
# an OpenSSH user's file
Host alias
    HostName 127.0.0.1
    Port 2222 # test box
    User ops
    IdentityFile ~/.ssh/id_test
Host 127.0.0.1
    User wrong
    Port 1
";

    #[test]
    fn default_config_alias_with_hostname() {
        let home = Home::new("alias", &[(".ssh/config", ALIAS_CONFIG, 0o644)]);
        let s = home.resolve(&["alias", "true"]).unwrap();
        assert_eq!(s.host, "127.0.0.1");
        assert_eq!(s.host_arg, "alias");
        // Host blocks match the name typed, not the HostName (no second pass, as ssh).
        assert_eq!((s.user.as_str(), s.port), ("ops", 2222));
        assert_eq!(s.identity_files, vec![home.0.join(".ssh/id_test")]);
        assert!(s.identities_explicit);
        // known_hosts uses the HostName, with the port, as ssh writes it.
        assert_eq!(s.known_hosts_name(), "127.0.0.1");
        assert_eq!(s.known_hosts_port(), 2222);
        let origin = format!("{}:3", home.path(".ssh/config"));
        assert_eq!(s.host_name_origin.as_deref(), Some(origin.as_str()));
        assert_eq!(
            s.host_description(),
            format!("127.0.0.1 (HostName of \"alias\", {origin})")
        );
        // Flags and -o come first.
        let s = home
            .resolve(&[
                "-p",
                "7",
                "-o",
                "HostName=localhost",
                "-o",
                "User=me2",
                "alias",
            ])
            .unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.user.as_str()),
            ("localhost", 7, "me2")
        );
        // HostKeyAlias still names the known_hosts entry, without a port.
        let s = home.resolve(&["-o", "HostKeyAlias=box", "alias"]).unwrap();
        assert_eq!((s.known_hosts_name(), s.known_hosts_port()), ("box", 22));
        assert_eq!(s.host, "127.0.0.1");
        // -F none: no file at all.
        let s = home.resolve(&["-F", "none", "alias"]).unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.user.as_str()),
            ("alias", 22, "me")
        );
        assert!(s.host_name_origin.is_none());
        assert!(!s.identities_explicit);
    }

    #[test]
    fn hostname_tokens() {
        let s = res(&["-o", "HostName=%h.Corp.example.com", "Build7"]).unwrap();
        assert_eq!(s.host, "build7.corp.example.com");
        assert_eq!(s.host_arg, "Build7");
        assert_eq!(s.known_hosts_name(), "build7.corp.example.com");
        let s = res(&["-o", "HostName=a%%b", "h"]).unwrap();
        assert_eq!(s.host, "a%b");
        for bad in ["HostName=%p", "HostName=x%", "HostName=a b", "HostName="] {
            let e = res(&["-o", bad, "h"]).unwrap_err();
            assert!(
                format!("{e:#}").contains("-o #1: HostName="),
                "{bad}: {e:#}"
            );
        }
        // Without HostName the name given is the address, lowercased as ssh does.
        let s = res(&["Example.COM"]).unwrap();
        assert_eq!(
            (s.host.as_str(), s.host_arg.as_str()),
            ("example.com", "Example.COM")
        );
        assert_eq!(s.host_description(), "example.com");
        let s = res(&["-o", "HostName=0:0::1", "h"]).unwrap();
        assert_eq!(s.host, "::1");
    }

    #[test]
    fn lenient_skips_unimplemented_openssh_keywords_with_notes() {
        let text = "Host *\n  ForwardAgent yes\n  ControlMaster auto\n  UseKeychain yes\n  Port 2\nHost other\n  LocalForward 1 x:2\n";
        let (o, notes) = parse(text, "h", ConfigMode::Lenient).unwrap();
        assert_eq!(o, kv(&[("Port", "2")]));
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(
            notes[0].starts_with("c:2: ForwardAgent is an OpenSSH option msh does not implement"),
            "{notes:?}"
        );
        assert!(notes[2].starts_with("c:4: UseKeychain"), "{notes:?}");
        // -F is strict: the same file is an error naming the line.
        let e = parse(text, "h", ConfigMode::Strict).unwrap_err();
        assert!(
            format!("{e}").starts_with(
                "c:2: unknown option \"ForwardAgent\" (an OpenSSH option msh does not implement)"
            ),
            "{e}"
        );
        // Not an OpenSSH keyword at all: an error in both modes, unless IgnoreUnknown.
        for mode in [ConfigMode::Lenient, ConfigMode::Strict] {
            let e = parse("Port 2\nFrobnicate yes\n", "h", mode).unwrap_err();
            assert!(
                format!("{e}").contains("c:2: unknown option \"Frobnicate\""),
                "{e}"
            );
        }
        let (o, notes) = parse(
            "IgnoreUnknown Frob*,Other\nFrobnicate yes\nPort 3\n",
            "h",
            ConfigMode::Lenient,
        )
        .unwrap();
        assert_eq!(o, kv(&[("Port", "3")]));
        assert_eq!(
            notes,
            vec!["c:2: Frobnicate ignored (IgnoreUnknown)".to_string()]
        );
    }

    #[test]
    fn lenient_skips_match_blocks() {
        let text = "Match host h exec \"true\"\n  Port 1\n  ForwardAgent yes\nHost h\n  Port 2\n";
        let (o, notes) = parse(text, "h", ConfigMode::Lenient).unwrap();
        assert_eq!(o, kv(&[("Port", "2")]));
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].starts_with("c:1: Match block skipped"),
            "{notes:?}"
        );
        // Keys inside a skipped Match block must still be ssh_config keywords.
        let e = parse("Match all\n  Nonsense 1\n", "h", ConfigMode::Lenient).unwrap_err();
        assert!(format!("{e}").contains("c:2: unknown option"), "{e}");
    }

    #[test]
    fn strict_no_refused_where_it_applies() {
        let home = Home::new(
            "strictno",
            &[(
                ".ssh/config",
                "Host other\n  StrictHostKeyChecking no\nHost dev-*\n  StrictHostKeyChecking no\n",
                0o600,
            )],
        );
        let e = home.resolve(&["dev-1"]).unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.starts_with(&format!(
                "{}:4: StrictHostKeyChecking=no: refused",
                home.path(".ssh/config")
            )),
            "{msg}"
        );
        assert!(msg.contains("accept-new") && msg.contains("--pin"), "{msg}");
        // A block that does not apply is fine, and -o overrides the file (first value wins).
        assert_eq!(
            home.resolve(&["prod"]).unwrap().strict,
            StrictHostKeyChecking::Ask
        );
        let s = home
            .resolve(&["-o", "StrictHostKeyChecking=accept-new", "dev-1"])
            .unwrap();
        assert_eq!(s.strict, StrictHostKeyChecking::AcceptNew);
    }

    #[test]
    fn proxies_and_revoked_host_keys_refused_where_they_apply() {
        let home = Home::new(
            "proxy",
            &[(
                ".ssh/config",
                "Host inner\n  ProxyJump bastion\nHost cmd\n  ProxyCommand nc %h %p\nHost rev\n  RevokedHostKeys ~/.ssh/revoked\nHost none\n  ProxyCommand none\n",
                0o600,
            )],
        );
        let cfg = home.path(".ssh/config");
        let e = format!("{:#}", home.resolve(&["inner"]).unwrap_err());
        assert!(
            e.starts_with(&format!(
                "{cfg}:2: ProxyJump bastion applies to inner, but msh has no proxy support"
            )),
            "{e}"
        );
        assert!(e.contains("-o ProxyJump=none"), "{e}");
        let e = format!("{:#}", home.resolve(&["cmd"]).unwrap_err());
        assert!(
            e.starts_with(&format!("{cfg}:4: ProxyCommand nc %h %p applies")),
            "{e}"
        );
        let e = format!("{:#}", home.resolve(&["rev"]).unwrap_err());
        assert!(e.starts_with(&format!("{cfg}:6: RevokedHostKeys")), "{e}");
        assert!(e.contains("@revoked"), "{e}");
        // `none`, a block that does not apply, or an -o override: a direct connection is
        // what the user asked for.
        assert!(home.resolve(&["none"]).is_ok());
        assert!(home.resolve(&["elsewhere"]).is_ok());
        assert!(home.resolve(&["-o", "ProxyJump=none", "inner"]).is_ok());
        // The first of ProxyJump/ProxyCommand wins, as in ssh.
        assert!(home.resolve(&["-o", "ProxyCommand=none", "inner"]).is_ok());
        let e = format!("{:#}", res(&["-o", "ProxyJump=x", "h"]).unwrap_err());
        assert!(e.starts_with("-o #1: ProxyJump x applies to h"), "{e}");
    }

    #[test]
    fn bad_values_are_errors_even_where_they_do_not_apply() {
        let mut r = ConfigReader::new("h", None, ConfigMode::Lenient);
        r.parse(Path::new("c"), "Host other\n  Port abc\n", 0, true)
            .unwrap();
        let e = r.out;
        // The reader keeps the line (inactive); resolve checks its value.
        assert_eq!(e.len(), 1);
        assert!(!e[0].active);
        let home = Home::new(
            "badvalue",
            &[(".ssh/config", "Host other\n  Port abc\n", 0o600)],
        );
        let msg = format!("{:#}", home.resolve(&["h"]).unwrap_err());
        assert!(
            msg.starts_with(&format!("{}:2: Port=abc", home.path(".ssh/config"))),
            "{msg}"
        );
    }

    #[test]
    fn default_config_missing_is_fine_but_writable_by_others_is_refused() {
        let home = Home::new("nocfg", &[]);
        assert_eq!(home.resolve(&["h"]).unwrap().port, 22);
        let home = Home::new("wcfg", &[(".ssh/config", "Port 5\n", 0o666)]);
        let e = format!("{:#}", home.resolve(&["h"]).unwrap_err());
        assert!(
            e.contains("bad permissions on config file") && e.contains("chmod go-w"),
            "{e}"
        );
        // -F names the file itself: ssh does not check its mode, and neither does msh.
        let s = home
            .resolve(&["-F", &home.path(".ssh/config"), "h"])
            .unwrap();
        assert_eq!(s.port, 5);
        // -F FILE that does not exist is an error.
        assert!(home.resolve(&["-F", &home.path("nope"), "h"]).is_err());
    }

    #[test]
    fn include_globs_relative_to_dot_ssh_with_own_line_numbers() {
        let home = Home::new(
            "include",
            &[
                (
                    ".ssh/config",
                    "Include config.d/*.conf\nHost never\n  Include never.conf\nHost *\n  User fallback\n",
                    0o600,
                ),
                // Read in lexical order: a.conf's Port wins over b.conf's.
                (".ssh/config.d/b.conf", "Port 2\n", 0o644),
                (".ssh/config.d/a.conf", "\nHost alias\n  HostName 127.0.0.1\n  Port 1\n  ForwardAgent yes\n", 0o600),
                (".ssh/config.d/.hidden.conf", "Port 9\n", 0o600),
                (".ssh/config.d/notes.txt", "Port 8\n", 0o600),
                (".ssh/never.conf", "Host *\n  User never\n", 0o600),
            ],
        );
        let s = home.resolve(&["alias"]).unwrap();
        assert_eq!((s.host.as_str(), s.port), ("127.0.0.1", 1));
        // a.conf ended inside `Host alias`; the including file's state comes back, and
        // never.conf (included from a block that does not apply) sets nothing.
        assert_eq!(s.user, "fallback");
        let a = home.path(".ssh/config.d/a.conf");
        assert_eq!(s.host_name_origin, Some(format!("{a}:3")));
        assert!(
            s.config_notes
                .iter()
                .any(|n| n.starts_with(&format!("{a}:5: ForwardAgent"))),
            "{:?}",
            s.config_notes
        );
        let s = home.resolve(&["other"]).unwrap();
        assert_eq!(s.port, 2);
        // An Include matching nothing is a note, as in ssh.
        let home = Home::new(
            "include-none",
            &[(".ssh/config", "Include missing/*\n", 0o600)],
        );
        let s = home.resolve(&["h"]).unwrap();
        assert!(
            s.config_notes[0].ends_with("Include missing/* matched no files"),
            "{:?}",
            s.config_notes
        );
        // An included file others can write is refused, as in ssh.
        let home = Home::new(
            "include-perm",
            &[
                (".ssh/config", "Include ~/.ssh/other\n", 0o600),
                (".ssh/other", "Port 3\n", 0o622),
            ],
        );
        let e = format!("{:#}", home.resolve(&["h"]).unwrap_err());
        assert!(
            e.contains("bad permissions") && e.contains(".ssh/other"),
            "{e}"
        );
        // A file including itself stops at ssh's depth limit with the line that did it.
        let home = Home::new(
            "include-loop",
            &[(".ssh/config", "Include config\n", 0o600)],
        );
        let e = format!("{:#}", home.resolve(&["h"]).unwrap_err());
        assert!(
            e.contains(&format!(
                "{}:1: Include nested more than 16 deep",
                home.path(".ssh/config")
            )),
            "{e}"
        );
        // -F files may include too (strict mode carries into the included file).
        let home = Home::new(
            "include-strict",
            &[
                (".ssh/msh.conf", "Include inc\n", 0o600),
                (".ssh/inc", "\nForwardAgent yes\n", 0o600),
            ],
        );
        let e = format!(
            "{:#}",
            home.resolve(&["-F", &home.path(".ssh/msh.conf"), "h"])
                .unwrap_err()
        );
        assert!(
            e.starts_with(&format!(
                "{}:2: unknown option \"ForwardAgent\"",
                home.path(".ssh/inc")
            )),
            "{e}"
        );
    }

    #[test]
    fn path_tokens_expanded_with_final_values() {
        std::env::set_var("MSH_SETTINGS_TEST_DIR", "/envdir");
        let home = Home::new(
            "tokens",
            &[(
                ".ssh/config",
                "Host alias\n  HostName 10.0.0.5\n  User ops\n  Port 2222\n  \
                 IdentityFile ~/.ssh/%r@%h-%p\n  IdentityFile %d/k-%n-%u-%%\n  \
                 CertificateFile ${MSH_SETTINGS_TEST_DIR}/%k-cert.pub\n  \
                 UserKnownHostsFile ~/kh-%h %d/kh2\n",
                0o600,
            )],
        );
        let s = home.resolve(&["alias"]).unwrap();
        assert_eq!(
            s.identity_files,
            vec![
                home.0.join(".ssh/ops@10.0.0.5-2222"),
                home.0.join("k-alias-me-%"),
            ]
        );
        assert_eq!(
            s.certificate_files,
            vec![PathBuf::from("/envdir/alias-cert.pub")]
        );
        assert_eq!(
            s.user_known_hosts,
            vec![home.0.join("kh-10.0.0.5"), home.0.join("kh2")]
        );
        // -i files take the tokens too; %k is HostKeyAlias when set.
        let s = home
            .resolve(&[
                "-i",
                "~/id-%k",
                "-o",
                "HostKeyAlias=box",
                "-l",
                "root",
                "alias",
            ])
            .unwrap();
        assert_eq!(s.identity_files[0], home.0.join("id-box"));
        assert_eq!(s.identity_files[1], home.0.join(".ssh/root@10.0.0.5-2222"));
        // Bad tokens and unset variables name where they came from.
        for (opt, want) in [
            (
                "IdentityFile=~/%C",
                "%C (a hash of the connection) is not supported",
            ),
            ("IdentityFile=~/%x", "unknown token %x"),
            (
                "CertificateFile=${MSH_SETTINGS_TEST_UNSET}/c",
                "MSH_SETTINGS_TEST_UNSET",
            ),
            ("UserKnownHostsFile=${MSH_SETTINGS_TEST_DIR", "unterminated"),
        ] {
            let e = format!("{:#}", res(&["-o", opt, "h"]).unwrap_err());
            assert!(e.starts_with("-o #1: ") && e.contains(want), "{opt}: {e}");
        }
        // A block that does not apply is not expanded (ssh does not look at it either).
        let home = Home::new(
            "tokens-inactive",
            &[(".ssh/config", "Host other\n  IdentityFile %C\n", 0o600)],
        );
        assert!(home.resolve(&["h"]).is_ok());
    }

    #[test]
    fn known_hosts_none_means_no_file() {
        let s = res(&[
            "-o",
            "UserKnownHostsFile=none",
            "-o",
            "GlobalKnownHostsFile=none",
            "h",
        ])
        .unwrap();
        assert!(s.user_known_hosts.is_empty() && s.global_known_hosts.is_empty());
        let s = res(&["-o", "GlobalKnownHostsFile=~/g", "h"]).unwrap();
        assert_eq!(s.global_known_hosts, vec![PathBuf::from("/home/me/g")]);
        assert_eq!(
            s.user_known_hosts,
            vec![PathBuf::from("/home/me/.ssh/known_hosts")]
        );
    }

    #[test]
    fn comments_and_times() {
        assert_eq!(strip_comment("Port 22 # x"), "Port 22");
        assert_eq!(strip_comment("SetEnv A=\"b #c\""), "SetEnv A=\"b #c\"");
        assert_eq!(strip_comment("User a#b"), "User a#b");
    }

    #[test]
    fn bad_pin_refused() {
        assert!(res(&["--pin", "MD5:aa", "h"]).is_err());
        assert!(res(&["--pin", "SHA256:abc+/9", "h"]).is_ok());
    }
}
