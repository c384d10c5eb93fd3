//! Command-line layering: clap parses the raw arguments (`cli::Args`), then `resolve`
//! merges the flags, `-o Key=Value` options and one ssh_config file into one validated
//! `Settings`. Nothing past this module sees clap types.
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
//! writes. The file itself is read by `msh_common::ssh_config` (Include, Host blocks, tokens);
//! the keys msh implements are the table in `options`, their meaning is `apply`. Nothing that
//! would weaken host verification is dropped: `StrictHostKeyChecking no` and
//! `RevokedHostKeys` that apply are refused, naming file:line. `ProxyJump`/`ProxyCommand`
//! (and `-J`) become `Settings::proxy`, which `proxy` carries out.

mod apply;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use msh_common::ssh_config::proxy::{parse_proxy_jump, JumpHop};
use msh_common::ssh_config::tokens::{expand_path_tokens, PathTokens};
use msh_common::ssh_config::values::LogLevel;
use msh_common::ssh_config::{split_key_value, Directive, Mode, Reader, Supported};

pub use super::cli::Args;
use super::options;
use apply::Resolver;

/// UpdateHostKeys: what to do with the host keys a verified server announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateHostKeys {
    /// Record keys the server proves, remove keys it no longer has.
    Yes,
    /// Never change known_hosts after the connection is verified.
    No,
    /// Ask on the terminal first (`no` with BatchMode or without a terminal).
    Ask,
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
    /// UpdateHostKeys: learn the keys a trusted server announces after authentication
    /// (OpenSSH's `hostkeys-00@openssh.com`). Default `yes` when UserKnownHostsFile was not
    /// set, as in ssh; `no` otherwise.
    pub update_host_keys: UpdateHostKeys,
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
    /// ProxyJump / ProxyCommand (or -J) that applies, if not `none`.
    pub proxy: Option<Proxy>,
    /// `-W host:port`: stdio forwarding instead of a session.
    pub stdio_forward: Option<(String, u16)>,
    /// `-s`: the command is a subsystem name.
    pub subsystem: bool,
    /// `-G`: print the settings and exit.
    pub print_config: bool,
    /// The flags a jump host inherits (`-F`, `-v`, `-q`), as OpenSSH passes them to the
    /// `ssh -W` it runs for a ProxyJump hop; nothing else of the command line applies to it.
    pub hop_flags: Vec<String>,
    /// Port and agent forwarding, -N (msh/forward).
    pub forwarding: super::forward::ForwardSettings,
}

/// How the connection reaches the host instead of a direct TCP connection.
#[derive(Debug, Clone)]
pub enum Proxy {
    /// Through these hosts in order (ProxyJump, -J), with where the list was set.
    Jump {
        /// The first is connected to first.
        hops: Vec<JumpHop>,
        /// `-J`, `-o #N` or `path:line`.
        origin: String,
    },
    /// The stdin/stdout of this command (ProxyCommand).
    Command {
        /// As written, tokens not yet expanded.
        command: String,
        /// `-o #N` or `path:line`.
        origin: String,
    },
}

impl Settings {
    /// Before any option: the host as given, ssh's defaults, the `-i` files and `-q`.
    fn defaults(args: &Args, host: String, local_user: &str, config_notes: Vec<String>) -> Self {
        Settings {
            host: host.clone(),
            host_arg: host,
            host_name_origin: None,
            config_notes,
            port: 22,
            user: local_user.to_string(),
            host_key_alias: None,
            // Tokens and `~` in these three lists are expanded once all options are in.
            identity_files: args.identity.clone(),
            identities_explicit: !args.identity.is_empty(),
            identities_only: false,
            certificate_files: Vec::new(),
            strict: StrictHostKeyChecking::Ask,
            user_known_hosts: Vec::new(),
            global_known_hosts: Vec::new(),
            update_host_keys: UpdateHostKeys::No,
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
            proxy: None,
            stdio_forward: None,
            subsystem: false,
            print_config: false,
            hop_flags: Vec::new(),
            forwarding: super::forward::ForwardSettings {
                no_session: args.no_session,
                ..Default::default()
            },
        }
    }

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

/// Merges `args`, its `-o` options and its `-F` file into `Settings`. `home` expands `~`;
/// `local_user` is the default login name.
pub fn resolve(args: Args, home: Option<&Path>, local_user: &str) -> Result<Settings> {
    let (dest_user, host) = parse_destination(&args.destination)?;
    let (directives, config_notes) = collect_directives(&args, &host, home)?;
    let defaults = Settings::defaults(&args, host, local_user, config_notes);
    let mut r = Resolver::new(defaults, home, args.port, dest_user.or(args.login.clone()));
    r.strict_file = args
        .config
        .as_ref()
        .is_some_and(|c| c.as_os_str() != "none");
    for d in &directives {
        r.apply(d)?;
    }
    refuse_unsupported(&r)?;
    let log_level = r.log_level;
    let request_tty = r.request_tty;
    let remote_command = r.remote_command.clone().flatten();
    // No UserKnownHostsFile / GlobalKnownHostsFile set: ssh's defaults.
    let user_kh_default = !r.seen.has("userknownhostsfile");
    let global_kh_default = !r.seen.has("globalknownhostsfile");
    let update_host_keys = r.update_host_keys;
    let mut s = connect_target(r, local_user)?;
    expand_paths(&mut s, home, local_user)?;
    if user_kh_default {
        if let Some(h) = home {
            s.user_known_hosts.push(h.join(".ssh/known_hosts"));
        }
    }
    s.update_host_keys = update_host_keys.unwrap_or(if user_kh_default {
        UpdateHostKeys::Yes
    } else {
        UpdateHostKeys::No
    });
    if global_kh_default {
        s.global_known_hosts
            .push(PathBuf::from("/etc/ssh/ssh_known_hosts"));
    }
    s.pins = check_pins(&args.pins)?;
    let (log_level, quiet) = verbosity(&args, log_level);
    s.log_level = log_level;
    s.quiet = quiet;
    s.tty = match (args.no_tty, args.tty) {
        (true, _) => TtyMode::Never,
        (false, 0) => request_tty.unwrap_or(TtyMode::Auto),
        (false, 1) => TtyMode::Force,
        (false, _) => TtyMode::ForceAlways,
    };
    s.command = (!args.command.is_empty()).then(|| args.command.join(" "));
    s.subsystem = args.subsystem;
    s.print_config = args.print_config;
    if let Some(w) = &args.stdio_forward {
        if s.command.is_some() {
            bail!("-W {w}: stdio forwarding takes no command");
        }
        s.stdio_forward = Some(parse_stdio_forward(w)?);
        // A session is never opened: no PTY question, no RemoteCommand.
        s.tty = TtyMode::Never;
    } else if s.command.is_none() {
        s.command = remote_command;
    }
    if s.subsystem && s.command.is_none() {
        bail!("-s needs the subsystem name as the command (e.g. msh -s host sftp)");
    }
    s.hop_flags = hop_flags(&args);
    if s.forwarding.no_session {
        if !args.command.is_empty() {
            bail!("-N runs no remote command: drop -N or the command");
        }
        // As ssh: no session, so no RemoteCommand either.
        s.command = None;
    }
    s.forwarding.add_flags(
        &args.local_forward,
        &args.remote_forward,
        &args.dynamic_forward,
    )?;
    s.forwarding.finish();
    Ok(s)
}

/// `-W`'s `host:port` (`[v6addr]:port` too).
fn parse_stdio_forward(w: &str) -> Result<(String, u16)> {
    let bad = || anyhow!("-W {w:?}: expected host:port (or [address]:port)");
    let (host, port) = match w.strip_prefix('[') {
        Some(rest) => {
            let (h, p) = rest.split_once("]:").ok_or_else(bad)?;
            (h, p)
        }
        None => w.rsplit_once(':').ok_or_else(bad)?,
    };
    if host.is_empty() || host.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad());
    }
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(bad)?;
    Ok((host.to_string(), port))
}

/// `-F`, `-v` and `-q` as given, for the jump hosts.
fn hop_flags(args: &Args) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(c) = &args.config {
        out.push("-F".to_string());
        out.push(c.to_string_lossy().into_owned());
    }
    out.extend((0..args.verbose).map(|_| "-v".to_string()));
    if args.quiet {
        out.push("-q".to_string());
    }
    out
}

/// `[user@]host`: the user (if given) and the host.
fn parse_destination(destination: &str) -> Result<(Option<String>, String)> {
    let (dest_user, host) = match destination.rsplit_once('@') {
        Some((u, h)) => (Some(u.to_string()), h.to_string()),
        None => (None, destination.to_string()),
    };
    if host.is_empty() {
        bail!("no host in destination {destination:?}");
    }
    if dest_user.as_deref() == Some("") {
        bail!("empty user name in destination {destination:?}");
    }
    Ok((dest_user, host))
}

/// Every `Key Value` in precedence order: `-e` (EscapeChar), the `-o` options, then the
/// config file's lines (those of blocks that do not apply too, marked inactive), and the
/// notes on what the config reading skipped.
fn collect_directives(
    args: &Args,
    host: &str,
    home: Option<&Path>,
) -> Result<(Vec<Directive>, Vec<String>)> {
    let mut out: Vec<Directive> = Vec::new();
    // -e is EscapeChar ahead of every -o: the first value wins.
    if let Some(e) = &args.escape_char {
        out.push(Directive {
            key: "EscapeChar".to_string(),
            value: e.clone(),
            origin: "-e".to_string(),
            active: true,
        });
    }
    // -J is ProxyJump ahead of every -o and of a config file's ProxyCommand, as in ssh.
    if let Some(j) = &args.jump {
        out.push(Directive {
            key: "ProxyJump".to_string(),
            value: j.clone(),
            origin: "-J".to_string(),
            active: true,
        });
    }
    // -A / -a are ForwardAgent ahead of every -o, as ssh sets it from the flag.
    if args.agent || args.no_agent {
        out.push(Directive {
            key: "ForwardAgent".to_string(),
            value: if args.agent { "yes" } else { "no" }.to_string(),
            origin: if args.agent { "-A" } else { "-a" }.to_string(),
            active: true,
        });
    }
    for (i, o) in args.options.iter().enumerate() {
        let (key, value) = split_key_value(o)
            .ok_or_else(|| anyhow!("-o {o:?}: expected Key=Value (e.g. -o Port=2222)"))?;
        out.push(Directive {
            key,
            value,
            origin: format!("-o #{}", i + 1),
            active: true,
        });
    }
    let keywords = options::keywords();
    let listed = options::accepted_list();
    let supported = Supported {
        keywords: &keywords,
        listed: &listed,
    };
    let (path, mode, shared) = match &args.config {
        Some(path) if path.as_os_str() == "none" => return Ok((out, Vec::new())),
        // The user named this file: a missing one is an error, and ssh does not check its
        // permissions either.
        Some(path) => (expand_tilde(path, home), Mode::Strict, false),
        None => match home {
            Some(h) => (h.join(".ssh/config"), Mode::Lenient, true),
            None => return Ok((out, Vec::new())),
        },
    };
    let mut reader = Reader::new(host, home, mode, supported);
    reader.read(&path, shared)?;
    out.extend(reader.directives);
    Ok((out, reader.notes))
}

/// RevokedHostKeys that applies with a value other than `none`.
fn refuse_unsupported(r: &Resolver) -> Result<()> {
    if let Some((key, value, origin)) = r
        .revoked
        .as_ref()
        .filter(|(_, v, _)| !v.eq_ignore_ascii_case("none"))
    {
        bail!(
            "{origin}: {key} {value}: msh does not read revocation lists for host keys, so a \
             revoked host key could be accepted. Mark revoked keys with @revoked lines in \
             known_hosts instead (msh honours them), or override with -o {key}=none"
        );
    }
    Ok(())
}

/// Host, port and user as they end up: HostName (canonical), the first port, the first
/// user or the local one.
fn connect_target(r: Resolver, local_user: &str) -> Result<Settings> {
    let mut s = r.s;
    if let Some((name, origin)) = r.host_name {
        s.host = name;
        s.host_name_origin = Some(origin);
    }
    s.host = canonical_host(&s.host);
    s.port = r.port.unwrap_or(22);
    if s.port == 0 {
        bail!("port 0 is not a valid port");
    }
    s.user = r.user.unwrap_or_else(|| local_user.to_string());
    s.proxy = match r.proxy {
        Some((key, value, origin)) if !value.eq_ignore_ascii_case("none") => {
            if key.eq_ignore_ascii_case("proxyjump") {
                parse_proxy_jump(&value)
                    .with_context(|| format!("{origin}: {key}={value}"))?
                    .map(|hops| Proxy::Jump { hops, origin })
            } else {
                Some(Proxy::Command {
                    command: value,
                    origin,
                })
            }
        }
        _ => None,
    };
    Ok(s)
}

/// Path tokens need the final user, host and port, so they are expanded last; then `~`
/// (ssh expands `~` first, which differs only for a home directory holding `%`).
fn expand_paths(s: &mut Settings, home: Option<&Path>, local_user: &str) -> Result<()> {
    let local_host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tokens = PathTokens {
        home,
        local_user,
        local_uid: nix::unistd::getuid().as_raw(),
        local_host: &local_host,
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
    Ok(())
}

/// `--pin` values: `SHA256:` and unpadded base64.
fn check_pins(pins: &[String]) -> Result<Vec<String>> {
    for pin in pins {
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
    }
    Ok(pins.to_vec())
}

/// The default tracing level and quietness: -v beats LogLevel, LogLevel beats the default;
/// -q / LogLevel=QUIET silence notices.
fn verbosity(args: &Args, log_level: Option<LogLevel>) -> (tracing::Level, bool) {
    use tracing::Level;
    let (lvl_from_opt, quiet_from_opt) = match log_level {
        None => (Level::WARN, false),
        Some(LogLevel::Quiet) => (Level::ERROR, true),
        Some(LogLevel::Fatal | LogLevel::Error) => (Level::ERROR, false),
        Some(LogLevel::Info) => (Level::WARN, false),
        Some(LogLevel::Verbose) => (Level::INFO, false),
        Some(LogLevel::Debug1) => (Level::DEBUG, false),
        Some(LogLevel::Debug2 | LogLevel::Debug3) => (Level::TRACE, false),
    };
    let level = match args.verbose {
        0 => lvl_from_opt,
        1 => Level::INFO,
        2 => Level::DEBUG,
        _ => Level::TRACE,
    };
    if args.quiet || (quiet_from_opt && args.verbose == 0) {
        (Level::ERROR, true)
    } else {
        (level, false)
    }
}

/// The connect address as ssh keeps it: an IP address in its canonical form, a name
/// lowercased (known_hosts entries are written so).
fn canonical_host(h: &str) -> String {
    match h.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => h.to_ascii_lowercase(),
    }
}

fn expand_tilde(p: &Path, home: Option<&Path>) -> PathBuf {
    match (p.strip_prefix("~"), home) {
        (Ok(rest), Some(h)) => h.join(rest),
        _ => p.to_path_buf(),
    }
}

/// `-G`: the settings msh would use, one `key value` a line in lowercase as `ssh -G`
/// prints them (the keys msh implements). git runs `SSH -G host` to learn whether its ssh
/// command takes OpenSSH's options.
pub fn print_config(s: &Settings) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let mut line = |k: &str, v: &dyn std::fmt::Display| {
        let _ = writeln!(out, "{k} {v}");
    };
    line("host", &s.host_arg);
    line("user", &s.user);
    line("hostname", &s.host);
    line("port", &s.port);
    if let Some(a) = &s.host_key_alias {
        line("hostkeyalias", a);
    }
    match &s.proxy {
        Some(Proxy::Jump { hops, .. }) => {
            let list: Vec<String> = hops.iter().map(ToString::to_string).collect();
            line("proxyjump", &list.join(","));
        }
        Some(Proxy::Command { command, .. }) => line("proxycommand", command),
        None => {}
    }
    let strict = match s.strict {
        StrictHostKeyChecking::Ask => "ask",
        StrictHostKeyChecking::AcceptNew => "accept-new",
        StrictHostKeyChecking::Yes => "true",
    };
    line("stricthostkeychecking", &strict);
    line("batchmode", &if s.batch_mode { "yes" } else { "no" });
    let update = match s.update_host_keys {
        UpdateHostKeys::Yes => "true",
        UpdateHostKeys::No => "false",
        UpdateHostKeys::Ask => "ask",
    };
    line("updatehostkeys", &update);
    for f in &s.identity_files {
        line("identityfile", &f.display());
    }
    for f in &s.certificate_files {
        line("certificatefile", &f.display());
    }
    let files = |v: &[PathBuf]| {
        v.iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    line("userknownhostsfile", &files(&s.user_known_hosts));
    line("globalknownhostsfile", &files(&s.global_known_hosts));
    if let Some(t) = s.connect_timeout {
        line("connecttimeout", &t.as_secs());
    }
    for e in &s.send_env {
        line("sendenv", e);
    }
    if let Some(c) = &s.command {
        line("remotecommand", c);
    }
    out
}
