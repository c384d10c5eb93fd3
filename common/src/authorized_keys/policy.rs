//! Decides whether a key may log in, and with which restrictions.

use std::net::IpAddr;
use std::time::SystemTime;

use russh::keys::PublicKey;

use super::AuthorizedKeys;

/// What a session authenticated by this key may do (after `restrict` and friends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    pub pty: bool,
    pub port_forwarding: bool,
    pub agent_forwarding: bool,
    pub x11_forwarding: bool,
    pub user_rc: bool,
    /// `command=`: runs instead of what the client asked (which goes in SSH_ORIGINAL_COMMAND).
    pub forced_command: Option<String>,
    /// `environment=` pairs.
    pub environment: Vec<(String, String)>,
    /// Where the permission came from, `path:line`, for the log.
    pub source: String,
}

/// The outcome for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthDecision {
    Accept(Permissions),
    /// Refused, with the reason for the log (e.g. "key not in authorized_keys",
    /// "path:line: from= does not admit 10.0.0.9", "path:line: expired").
    Reject(String),
}

/// First matching, admitting entry wins.
pub fn authorize(
    files: &[AuthorizedKeys],
    key: &PublicKey,
    peer: IpAddr,
    now: SystemTime,
) -> AuthDecision {
    let _ = (files, key, peer, now);
    todo!("authorized_keys policy")
}
