//! What each ssh_config key does to `Settings`: one `-o` option or config line at a time,
//! in precedence order, "first value wins" for single-valued keys (as ssh). Every value is
//! checked, also on lines of `Host` blocks that do not apply (as ssh does), but only lines
//! that apply change anything.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use msh_common::duration::parse_duration;
use msh_common::ssh_config::keywords::is_openssh_keyword;
use msh_common::ssh_config::proxy::{expand_proxy_command, parse_proxy_jump, CommandTokens};
use msh_common::ssh_config::tokens::{check_path_tokens, expand_host_name};
use msh_common::ssh_config::values::{parse_log_level, parse_port, parse_yes_no, LogLevel};
use msh_common::ssh_config::Directive;

use super::super::options;
use super::{expand_tilde, Settings, StrictHostKeyChecking, TtyMode, UpdateHostKeys};

/// "First value wins" bookkeeping for single-valued keys.
#[derive(Default)]
pub(super) struct Seen(Vec<String>);

impl Seen {
    pub(super) fn has(&self, key: &str) -> bool {
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

/// A `Key Value` that applies, with where it came from: (key as written, value, origin).
pub(super) type Sourced = (String, String, String);

/// The settings being built, and what the keys that are not plain `Settings` fields have
/// collected so far.
pub(super) struct Resolver<'a> {
    pub(super) s: Settings,
    home: Option<&'a Path>,
    pub(super) seen: Seen,
    /// Port and User: `-p`/`-l`/`user@` come first, so these start with the flags' values.
    pub(super) port: Option<u16>,
    pub(super) user: Option<String>,
    pub(super) log_level: Option<LogLevel>,
    /// HostName and its origin.
    pub(super) host_name: Option<(String, String)>,
    /// The first ProxyJump or ProxyCommand that applies (one slot for both, as in ssh).
    pub(super) proxy: Option<Sourced>,
    /// The first RevokedHostKeys that applies.
    pub(super) revoked: Option<Sourced>,
    /// RequestTTY (the -t/-T flags win over it).
    pub(super) request_tty: Option<TtyMode>,
    /// RemoteCommand: Some(None) for `none`.
    pub(super) remote_command: Option<Option<String>>,
    /// The config file is a `-F` file (strict), not the `~/.ssh/config` ssh shares.
    pub(super) strict_file: bool,
    /// UpdateHostKeys as set (its default depends on UserKnownHostsFile).
    pub(super) update_host_keys: Option<UpdateHostKeys>,
}

impl<'a> Resolver<'a> {
    pub(super) fn new(
        s: Settings,
        home: Option<&'a Path>,
        port: Option<u16>,
        user: Option<String>,
    ) -> Self {
        Resolver {
            s,
            home,
            seen: Seen::default(),
            port,
            user,
            log_level: None,
            host_name: None,
            proxy: None,
            revoked: None,
            request_tty: None,
            remote_command: None,
            strict_file: false,
            update_host_keys: None,
        }
    }

    /// Checks `o`'s value and, when it applies and no earlier source set the key, sets it.
    pub(super) fn apply(&mut self, o: &Directive) -> Result<()> {
        let key = o.key.to_ascii_lowercase();
        let v = o.value.as_str();
        let on = o.active;
        let ctx = || format!("{}: {}={}", o.origin, o.key, o.value);
        match key.as_str() {
            "stricthostkeychecking" => {
                let mode = parse_strict(v).with_context(ctx)?;
                if self.seen.first(&key, on) {
                    // Refused only where it would decide: `-o StrictHostKeyChecking=accept-new`
                    // still overrides a config file's `no`, as the message suggests.
                    self.s.strict = mode.ok_or_else(strict_no_refusal).with_context(ctx)?;
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
                if self.seen.first(&key, on) {
                    if key == "userknownhostsfile" {
                        self.s.user_known_hosts = files;
                    } else {
                        self.s.global_known_hosts =
                            files.iter().map(|f| expand_tilde(f, self.home)).collect();
                    }
                }
            }
            "updatehostkeys" => {
                let mode = match v.to_ascii_lowercase().as_str() {
                    "yes" | "true" => UpdateHostKeys::Yes,
                    "no" | "false" => UpdateHostKeys::No,
                    "ask" => UpdateHostKeys::Ask,
                    _ => return Err(anyhow!("expected yes, no or ask")).with_context(ctx),
                };
                if on && self.update_host_keys.is_none() {
                    self.update_host_keys = Some(mode);
                }
            }
            "batchmode" => {
                let b = parse_yes_no(v).with_context(ctx)?;
                if self.seen.first(&key, on) {
                    self.s.batch_mode = b;
                }
            }
            "connecttimeout" => {
                let d = parse_duration(v).with_context(ctx)?;
                if self.seen.first(&key, on) {
                    self.s.connect_timeout = (!d.is_zero()).then_some(d);
                }
            }
            "identityfile" | "certificatefile" => {
                if v.is_empty() {
                    return Err(anyhow!("a file name is required")).with_context(ctx);
                }
                if on {
                    check_path_tokens(v).with_context(ctx)?;
                    if key == "identityfile" {
                        self.s.identity_files.push(PathBuf::from(v));
                        self.s.identities_explicit = true;
                    } else {
                        self.s.certificate_files.push(PathBuf::from(v));
                    }
                }
            }
            "identitiesonly" => {
                let b = parse_yes_no(v).with_context(ctx)?;
                if self.seen.first(&key, on) {
                    self.s.identities_only = b;
                }
            }
            "port" => {
                let p = parse_port(v).with_context(ctx)?;
                if on && self.port.is_none() {
                    self.port = Some(p);
                }
            }
            "user" => {
                if v.is_empty() {
                    return Err(anyhow!("empty user name")).with_context(ctx);
                }
                if on && self.user.is_none() {
                    self.user = Some(v.to_string());
                }
            }
            "hashknownhosts" => {
                let b = parse_yes_no(v).with_context(ctx)?;
                if self.seen.first(&key, on) {
                    self.s.hash_known_hosts = b;
                }
            }
            "hostkeyalias" => {
                if v.is_empty() || v.contains(char::is_whitespace) {
                    return Err(anyhow!("expected one host name")).with_context(ctx);
                }
                if self.seen.first(&key, on) {
                    self.s.host_key_alias = Some(v.to_string());
                }
            }
            "hostname" => {
                let name = expand_host_name(v, &self.s.host_arg).with_context(ctx)?;
                if self.seen.first(&key, on) {
                    self.host_name = Some((name, o.origin.clone()));
                }
            }
            "proxyjump" | "proxycommand" => {
                if v.is_empty() {
                    return Err(anyhow!("a value is required")).with_context(ctx);
                }
                // Checked here so that a mistake names its file:line; the tokens are
                // expanded (and the names checked) once the hop's settings are known.
                if key == "proxyjump" {
                    parse_proxy_jump(v).with_context(ctx)?;
                } else {
                    let probe = CommandTokens {
                        host: "h",
                        port: 22,
                        user: "u",
                        original: "n",
                    };
                    expand_proxy_command(v, &probe).with_context(ctx)?;
                }
                // One slot for both, as in ssh: the first of the two that applies wins.
                if on && self.proxy.is_none() {
                    self.proxy = Some((o.key.clone(), v.to_string(), o.origin.clone()));
                }
            }
            "revokedhostkeys" => {
                if v.is_empty() {
                    return Err(anyhow!("a file name is required")).with_context(ctx);
                }
                if on && self.revoked.is_none() {
                    self.revoked = Some((o.key.clone(), v.to_string(), o.origin.clone()));
                }
            }
            "requesttty" => {
                let mode = match v.to_ascii_lowercase().as_str() {
                    "no" | "false" => TtyMode::Never,
                    "yes" | "true" => TtyMode::Force,
                    "force" => TtyMode::ForceAlways,
                    "auto" => TtyMode::Auto,
                    _ => return Err(anyhow!("expected no, yes, force or auto")).with_context(ctx),
                };
                if on && self.request_tty.is_none() {
                    self.request_tty = Some(mode);
                }
            }
            "remotecommand" => {
                if on && self.remote_command.is_none() {
                    let cmd =
                        (!v.eq_ignore_ascii_case("none") && !v.is_empty()).then(|| v.to_string());
                    self.remote_command = Some(cmd);
                }
            }
            // scp and sftp pass these (`-oPermitLocalCommand=no -oControlMaster=no
            // -oForwardX11 no`; ForwardAgent and ClearAllForwardings are forward/'s): msh
            // forwards no X11 and runs no local command, so `no` is what it does anyway.
            // Asking for X11 on the command line or in a -F file is refused rather than
            // silently not done; in ~/.ssh/config (read by ssh too) it is skipped with a note,
            // as before msh knew the key.
            "forwardx11" => {
                let wanted = !matches!(v.to_ascii_lowercase().as_str(), "no" | "false");
                // First value wins: `-oForwardX11=no` overrides a config file's `yes`.
                if self.seen.first(&key, on) && wanted {
                    let what = "X11";
                    if o.origin.starts_with("-o") || self.strict_file {
                        bail!("{}: {}={}: msh does not forward {what}", o.origin, o.key, v);
                    }
                    self.s.config_notes.push(format!(
                        "{}: {} {v} skipped: msh does not forward {what}",
                        o.origin, o.key
                    ));
                }
            }
            "permitlocalcommand" => {
                parse_yes_no(v).with_context(ctx)?;
            }
            "controlmaster" => match v.to_ascii_lowercase().as_str() {
                "no" | "false" => {}
                "yes" | "true" | "ask" | "auto" | "autoask" => {
                    if on {
                        self.s.config_notes.push(format!(
                            "{}: ControlMaster {v} ignored: msh does not share connections",
                            o.origin
                        ));
                    }
                }
                _ => {
                    return Err(anyhow!("expected yes, no, ask, auto or autoask")).with_context(ctx)
                }
            },
            "sendenv" => {
                if on {
                    self.s
                        .send_env
                        .extend(v.split_whitespace().map(str::to_string));
                }
            }
            "setenv" => {
                for pair in v.split_whitespace() {
                    let (name, value) = pair
                        .split_once('=')
                        .filter(|(n, _)| !n.is_empty())
                        .ok_or_else(|| anyhow!("expected NAME=VALUE, got {pair:?}"))
                        .with_context(ctx)?;
                    if on && !self.s.set_env.iter().any(|(n, _)| n == name) {
                        self.s.set_env.push((name.to_string(), value.to_string()));
                    }
                }
            }
            "serveraliveinterval" => {
                let d = parse_duration(v).with_context(ctx)?;
                if self.seen.first(&key, on) {
                    self.s.server_alive_interval = (!d.is_zero()).then_some(d);
                }
            }
            "loglevel" => {
                let l = parse_log_level(v).with_context(ctx)?;
                if on && self.log_level.is_none() {
                    self.log_level = Some(l);
                }
            }
            "escapechar" => {
                let c = super::super::escape::parse_escape_char(v).with_context(ctx)?;
                if self.seen.first(&key, on) {
                    self.s.escape_char = c;
                }
            }
            "localforward"
            | "remoteforward"
            | "dynamicforward"
            | "gatewayports"
            | "exitonforwardfailure"
            | "clearallforwardings"
            | "forwardagent" => {
                let first = self.seen.first(&key, on);
                self.s
                    .forwarding
                    .apply(&key, v, &o.origin, on, first, self.home)
                    .with_context(ctx)?;
            }
            // Only -o gets here: config files reject unknown keys while reading.
            _ if is_openssh_keyword(&key) => bail!(
                "{}: unknown option {:?} (an OpenSSH option msh does not implement); msh \
                 accepts: {}",
                o.origin,
                o.key,
                options::accepted_list()
            ),
            _ => bail!(
                "{}: unknown option {:?}; msh accepts: {}",
                o.origin,
                o.key,
                options::accepted_list()
            ),
        }
        Ok(())
    }
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
