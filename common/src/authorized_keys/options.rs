//! The options field of an authorized_keys line.

use std::time::SystemTime;

/// Options as written on the line (before `restrict` is applied).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyOptions {
    pub command: Option<String>,
    pub from: Option<String>,
    pub restrict: bool,
    pub no_pty: bool,
    pub pty: bool,
    pub no_port_forwarding: bool,
    pub no_agent_forwarding: bool,
    pub no_x11_forwarding: bool,
    pub no_user_rc: bool,
    pub environment: Vec<(String, String)>,
    pub expiry_time: Option<SystemTime>,
    pub cert_authority: bool,
    pub principals: Option<String>,
}
