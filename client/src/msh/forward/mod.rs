//! Port and agent forwarding in msh: `-L`, `-R`, `-D`, `-N`, `-A` and their ssh_config
//! keys (`LocalForward`, `RemoteForward`, `DynamicForward`, `GatewayPorts`,
//! `ExitOnForwardFailure`, `ClearAllForwardings`, `ForwardAgent`), with OpenSSH's meaning.
//!
//! `spec` parses the specifications, `local` listens for `-L`/`-D` and opens `direct-tcpip`
//! (or `direct-streamlocal@openssh.com`) channels, `remote` serves the channels the server
//! opens (`forwarded-tcpip` for `-R`, `auth-agent@openssh.com` for `-A`) and refuses every
//! other kind, `socks` speaks SOCKS4/4a/5 for `-D` and dynamic `-R`, and `pump` moves the
//! bytes with flow control both ways.

mod local;
mod pump;
mod remote;
mod socks;
pub(super) mod spec;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use msh_common::ssh_config::values::parse_yes_no;
use russh::client::Handle;

pub(super) use self::local::{setup, Running};
pub(super) use self::remote::Inbound;
use self::spec::{Forward, Kind};
use super::connect::Client;
use super::session::Outcome;

/// Where the agent to forward is (ForwardAgent's value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentSource {
    /// `yes`, or `$NAME`: the socket named by this environment variable.
    Env(String),
    /// An explicit socket path.
    Path(PathBuf),
}

/// The forwarding part of `Settings`.
#[derive(Debug, Clone, Default)]
pub struct ForwardSettings {
    /// `-L`/`-R`/`-D` first, then LocalForward/RemoteForward/DynamicForward in precedence
    /// order (they accumulate, as in ssh); empty after ClearAllForwardings.
    pub forwards: Vec<Forward>,
    /// GatewayPorts: `-L`/`-D` without a bind address listen on all interfaces.
    pub gateway_ports: bool,
    /// ExitOnForwardFailure: a forward that cannot be set up ends msh (exit 255).
    pub exit_on_failure: bool,
    /// ClearAllForwardings: no forwards at all, from the command line or config files.
    pub clear_all: bool,
    /// ForwardAgent (None: no).
    pub agent: Option<AgentSource>,
    /// `-N`: no session channel, forward only.
    pub no_session: bool,
}

impl ForwardSettings {
    /// Applies one ssh_config key (lowercased `key`) if it is one of [`KEYS`]: checks the
    /// value always, changes the settings only when `active`; `first` says no earlier
    /// source set this single-valued key. `origin` names the source for messages. Returns
    /// false for a key that is not ours.
    pub(super) fn apply(
        &mut self,
        key: &str,
        value: &str,
        origin: &str,
        active: bool,
        first: bool,
        home: Option<&Path>,
    ) -> Result<bool> {
        let kind = match key {
            "localforward" => Some(Kind::Local),
            "remoteforward" => Some(Kind::Remote),
            "dynamicforward" => Some(Kind::Dynamic),
            _ => None,
        };
        if let Some(kind) = kind {
            let mut f = spec::parse_config_value(kind, value).map_err(|e| anyhow!(e))?;
            f.origin = Some(origin.to_string());
            if active {
                self.forwards.push(f);
            }
            return Ok(true);
        }
        let set = active && first;
        match key {
            "gatewayports" => {
                let b = parse_yes_no(value)?;
                if set {
                    self.gateway_ports = b;
                }
            }
            "exitonforwardfailure" => {
                let b = parse_yes_no(value)?;
                if set {
                    self.exit_on_failure = b;
                }
            }
            "clearallforwardings" => {
                let b = parse_yes_no(value)?;
                if set {
                    self.clear_all = b;
                }
            }
            "forwardagent" => {
                let a = parse_forward_agent(value, home)?;
                if set {
                    self.agent = a;
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The `-L`, `-R` and `-D` flags, ahead of every config value (ssh adds the command
    /// line's forwards first).
    pub(super) fn add_flags(
        &mut self,
        local: &[String],
        remote: &[String],
        dynamic: &[String],
    ) -> Result<()> {
        let mut flags = Vec::new();
        for (kind, specs) in [
            (Kind::Local, local),
            (Kind::Remote, remote),
            (Kind::Dynamic, dynamic),
        ] {
            for s in specs {
                flags.push(spec::parse(kind, s).map_err(|e| anyhow!(e))?);
            }
        }
        flags.append(&mut self.forwards);
        self.forwards = flags;
        Ok(())
    }

    /// After all sources: ClearAllForwardings empties the list (scp and sftp pass it so
    /// that a config file's forwards do not clash with the user's own session).
    pub(super) fn finish(&mut self) {
        if self.clear_all {
            self.forwards.clear();
        }
    }

    /// The agent socket to forward, if ForwardAgent asks for one and it is known.
    pub(super) fn agent_socket(&self) -> Option<PathBuf> {
        match self.agent.as_ref()? {
            AgentSource::Path(p) => Some(p.clone()),
            AgentSource::Env(name) => std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
        }
    }
}

/// ForwardAgent: yes, no, a socket path (`~` expanded) or `$NAME` of an environment
/// variable holding one (ssh_config(5)).
fn parse_forward_agent(value: &str, home: Option<&Path>) -> Result<Option<AgentSource>> {
    if let Ok(b) = parse_yes_no(value) {
        return Ok(b.then(|| AgentSource::Env("SSH_AUTH_SOCK".to_string())));
    }
    if let Some(name) = value.strip_prefix('$') {
        let name = name
            .strip_prefix('{')
            .and_then(|n| n.strip_suffix('}'))
            .unwrap_or(name);
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            bail!("expected yes, no, a socket path or $VARIABLE");
        }
        return Ok(Some(AgentSource::Env(name.to_string())));
    }
    if value.is_empty() || value.chars().any(char::is_control) {
        bail!("expected yes, no, a socket path or $VARIABLE");
    }
    let p = Path::new(value);
    let p = match (p.strip_prefix("~"), home) {
        (Ok(rest), Some(h)) => h.join(rest),
        _ => p.to_path_buf(),
    };
    Ok(Some(AgentSource::Path(p)))
}

/// `s` with control characters (escape sequences included) escaped: for text the server
/// chose that msh prints itself (CVE-2019-6110 class).
pub(super) fn printable(s: &str) -> String {
    super::sanitize::for_terminal(s).into_owned()
}

/// Runs the forwards next to `session` (the session channel's future) until it ends;
/// then, when the command ended by itself, waits for the forwarded connections still open
/// (not for the listeners), as ssh does: `msh -L ... host sleep 10` keeps a tunnel opened
/// during those 10 s until it closes.
pub(super) async fn alongside<F>(
    handle: &Handle<Client>,
    mut running: Running,
    session: F,
) -> Result<Outcome>
where
    F: std::future::Future<Output = Result<Outcome>>,
{
    let out = {
        let serve = running.serve(handle);
        tokio::pin!(serve);
        tokio::select! {
            out = session => out,
            never = &mut serve => match never {},
        }
    };
    if matches!(out, Ok(Outcome::Exited(_) | Outcome::Signalled(_))) {
        let tracker = running.tracker.clone();
        // No new connections from here on.
        drop(running);
        if tracker.count() > 0 {
            tracing::info!(
                "waiting for {} forwarded connection(s) to close",
                tracker.count()
            );
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tokio::select! {
                    _ = tracker.idle() => break,
                    _ = tick.tick() => if handle.is_closed() { break },
                }
            }
        }
    }
    out
}

/// `-N`: forwards only, until the connection ends (the server closed it or stopped
/// answering: exit 255 with the reason, as ssh) or msh is told to stop. As ssh
/// (clientloop.c: with no session there is no remote status, so a deliberate SIGTERM at this
/// end clears the error), SIGTERM ends it with 0 and without a word: `kill` of a tunnel is
/// its normal way to stop. SIGINT and SIGHUP end it with 255, also silently.
pub(super) async fn without_session(
    handle: &Handle<Client>,
    mut running: Running,
) -> Result<Outcome> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let serve = running.serve(handle);
    tokio::pin!(serve);
    // russh does not expose the end of its connection task other than through the handle;
    // checking it a few times a second is cheap.
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            never = &mut serve => match never {},
            _ = tick.tick() => {
                if handle.is_closed() {
                    return Ok(Outcome::NoStatus);
                }
            }
            _ = int.recv() => return Ok(Outcome::LocalSignal("INT")),
            _ = term.recv() => {
                tracing::info!("stopped by SIGTERM");
                return Ok(Outcome::Exited(0));
            }
            _ = hup.recv() => return Ok(Outcome::LocalSignal("HUP")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_agent_values() {
        let home = Path::new("/home/u");
        let p = |v| parse_forward_agent(v, Some(home));
        assert_eq!(p("no").unwrap(), None);
        assert_eq!(
            p("yes").unwrap(),
            Some(AgentSource::Env("SSH_AUTH_SOCK".into()))
        );
        assert_eq!(
            p("$MY_AGENT").unwrap(),
            Some(AgentSource::Env("MY_AGENT".into()))
        );
        assert_eq!(
            p("${MY_AGENT}").unwrap(),
            Some(AgentSource::Env("MY_AGENT".into()))
        );
        assert_eq!(
            p("~/agent.sock").unwrap(),
            Some(AgentSource::Path("/home/u/agent.sock".into()))
        );
        assert!(p("$").is_err());
        assert!(p("$A-B").is_err());
    }

    #[test]
    fn clear_all_forwardings_drops_flags_and_config() {
        let mut f = ForwardSettings::default();
        f.apply("localforward", "8080 db:5432", "-o #1", true, true, None)
            .unwrap();
        f.add_flags(&["9000:h:1".into()], &[], &["1080".into()])
            .unwrap();
        assert_eq!(f.forwards.len(), 3);
        assert_eq!(f.forwards[0].spec, "9000:h:1");
        f.apply("clearallforwardings", "yes", "-o #2", true, true, None)
            .unwrap();
        f.finish();
        assert!(f.forwards.is_empty());
    }

    #[test]
    fn inactive_lines_are_checked_but_not_applied() {
        let mut f = ForwardSettings::default();
        assert!(f
            .apply("localforward", "8080", "cfg:3", false, true, None)
            .is_err());
        f.apply("remoteforward", "9000 h:1", "cfg:4", false, true, None)
            .unwrap();
        assert!(f.forwards.is_empty());
        assert!(!f.apply("port", "22", "cfg:5", true, true, None).unwrap());
    }
}
