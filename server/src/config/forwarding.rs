//! The forwarding keys of `mshd.toml`, with sshd's meaning: `allow_tcp_forwarding` and
//! `allow_stream_local_forwarding` (`yes`, `no`, `local`, `remote`), `permit_open` and
//! `permit_listen` (lists of `host:port` / `[host:]port`, `any` or `none`). Whether a given
//! forward is allowed is decided in one place, `crate::forward::policy`.
#![forbid(unsafe_code)]

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// sshd's AllowTcpForwarding / AllowStreamLocalForwarding: which directions are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AllowForwarding {
    /// Both directions (the default, as sshd).
    #[default]
    Yes,
    /// Neither.
    No,
    /// Only local forwards (the client's `-L`, `-W`, `-J`, `-D`: `direct-*` channels).
    Local,
    /// Only remote forwards (the client's `-R`: listeners on the server).
    Remote,
}

impl AllowForwarding {
    /// Whether `direct-tcpip` / `direct-streamlocal` channels are allowed.
    pub fn local(self) -> bool {
        matches!(self, AllowForwarding::Yes | AllowForwarding::Local)
    }

    /// Whether listeners for the client (`tcpip-forward`) are allowed.
    pub fn remote(self) -> bool {
        matches!(self, AllowForwarding::Yes | AllowForwarding::Remote)
    }
}

/// Checks a `permit_open` (`listen` false) or `permit_listen` (`listen` true) list: `any`
/// or `none` alone, or entries `host:port` (`[v6]:port`; `*` as host or port means any;
/// `permit_listen` also takes a bare port). Returns the error naming the bad entry.
pub fn check_permit_list(list: &[String], listen: bool) -> Result<()> {
    let example = if listen {
        "\"8080\", \"localhost:8080\", \"*:*\""
    } else {
        "\"db.internal:5432\", \"[::1]:80\", \"*:443\""
    };
    if list.is_empty() {
        bail!("empty list: write [\"any\"] (the default) or [\"none\"]");
    }
    let keyword = list
        .iter()
        .any(|e| e.eq_ignore_ascii_case("any") || e.eq_ignore_ascii_case("none"));
    if keyword && list.len() > 1 {
        bail!("\"any\" and \"none\" must be the only entry of the list");
    }
    if keyword {
        return Ok(());
    }
    for e in list {
        if split_host_port(e, listen).is_none() {
            bail!("{e:?}: expected host:port, e.g. {example}");
        }
    }
    Ok(())
}

/// `host:port`, `[v6]:port`, or (when `bare_port`) `port` alone (host `*`), with host `*`
/// or a name and port `*` or 1..=65535 (0 too for a listen entry: sshd's "any port chosen
/// by the server"). `None` when malformed.
pub fn split_host_port(entry: &str, bare_port: bool) -> Option<(&str, &str)> {
    let (host, port) = if let Some(v6) = entry.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        (host, after.strip_prefix(':')?)
    } else {
        match entry.rsplit_once(':') {
            // An unbracketed IPv6 address is ambiguous: refused.
            Some((h, _)) if h.contains(':') => return None,
            Some(hp) => hp,
            None if bare_port => ("*", entry),
            None => return None,
        }
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let port_ok = port == "*" || port.parse::<u16>().is_ok_and(|p| p > 0 || bare_port);
    port_ok.then_some((host, port))
}
