//! The options field of an authorized_keys line, as written (OpenSSH `auth-options.c`
//! semantics): `restrict,pty,command="uptime",from="10.0.0.0/8"`. Parsing the field lives in
//! `parse`; turning it into what a session may do lives in `policy`.

use std::time::SystemTime;

/// A flag option, kept in the order written: OpenSSH applies flags left to right, so
/// `restrict,pty` allows a pty while `pty,restrict` does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOption {
    /// `restrict`: turns off pty, port/agent/X11 forwarding and user-rc.
    Restrict,
    /// `pty` (true) / `no-pty` (false).
    Pty(bool),
    /// `port-forwarding` / `no-port-forwarding`.
    PortForwarding(bool),
    /// `agent-forwarding` / `no-agent-forwarding`.
    AgentForwarding(bool),
    /// `X11-forwarding` / `no-X11-forwarding`.
    X11Forwarding(bool),
    /// `user-rc` / `no-user-rc`.
    UserRc(bool),
}

/// What the flag options allow once folded left to right over "everything allowed".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllowedFlags {
    pub pty: bool,
    pub port_forwarding: bool,
    pub agent_forwarding: bool,
    pub x11_forwarding: bool,
    pub user_rc: bool,
}

/// Options as written on the line (before `restrict` is applied). The booleans say which
/// flags appeared; `flags` holds them in order and is what decides (see `allowed`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyOptions {
    /// `command="..."`: the forced command.
    pub command: Option<String>,
    /// `from="..."`: the pattern list the peer address must match (checked by `policy`).
    pub from: Option<String>,
    pub restrict: bool,
    pub no_pty: bool,
    pub pty: bool,
    pub no_port_forwarding: bool,
    pub no_agent_forwarding: bool,
    pub no_x11_forwarding: bool,
    pub no_user_rc: bool,
    /// `environment="NAME=value"` pairs in order; the first of a name wins, as in OpenSSH.
    pub environment: Vec<(String, String)>,
    /// `expiry-time=`: the entry refuses after this instant (the earliest one if repeated).
    pub expiry_time: Option<SystemTime>,
    pub cert_authority: bool,
    /// `principals="a,b"` (only meaningful with `cert-authority`).
    pub principals: Option<String>,
    /// `port-forwarding` appeared.
    pub port_forwarding: bool,
    /// `agent-forwarding` appeared.
    pub agent_forwarding: bool,
    /// `X11-forwarding` appeared.
    pub x11_forwarding: bool,
    /// `user-rc` appeared.
    pub user_rc: bool,
    /// The flag options in the order written.
    pub flags: Vec<FlagOption>,
    /// `permitopen="host:port"` values (enforced by mshd's forwarding policy).
    pub permitopen: Vec<String>,
    /// `permitlisten="[host:]port"` values (enforced by mshd's forwarding policy).
    pub permitlisten: Vec<String>,
    /// `tunnel="n"` (recorded; msh does no tunnelling).
    pub tunnel: Option<String>,
    /// `no-touch-required` (FIDO keys; recorded).
    pub no_touch_required: bool,
    /// `verify-required` (FIDO keys; recorded).
    pub verify_required: bool,
}

impl KeyOptions {
    /// Folds the flag options over "everything allowed", left to right as OpenSSH does.
    /// Options built by hand with an empty `flags` fall back to the booleans, applied as
    /// `restrict` first, then the enabling flags, then the `no-*` ones.
    pub fn allowed(&self) -> AllowedFlags {
        let mut a = AllowedFlags {
            pty: true,
            port_forwarding: true,
            agent_forwarding: true,
            x11_forwarding: true,
            user_rc: true,
        };
        let from_bools;
        let flags: &[FlagOption] = if self.flags.is_empty() {
            from_bools = self.flags_from_bools();
            &from_bools
        } else {
            &self.flags
        };
        for flag in flags {
            match *flag {
                FlagOption::Restrict => {
                    a = AllowedFlags {
                        pty: false,
                        port_forwarding: false,
                        agent_forwarding: false,
                        x11_forwarding: false,
                        user_rc: false,
                    }
                }
                FlagOption::Pty(v) => a.pty = v,
                FlagOption::PortForwarding(v) => a.port_forwarding = v,
                FlagOption::AgentForwarding(v) => a.agent_forwarding = v,
                FlagOption::X11Forwarding(v) => a.x11_forwarding = v,
                FlagOption::UserRc(v) => a.user_rc = v,
            }
        }
        a
    }

    fn flags_from_bools(&self) -> Vec<FlagOption> {
        let mut f = Vec::new();
        if self.restrict {
            f.push(FlagOption::Restrict);
        }
        let pairs = [
            (
                self.pty,
                self.no_pty,
                FlagOption::Pty as fn(bool) -> FlagOption,
            ),
            (
                self.port_forwarding,
                self.no_port_forwarding,
                FlagOption::PortForwarding,
            ),
            (
                self.agent_forwarding,
                self.no_agent_forwarding,
                FlagOption::AgentForwarding,
            ),
            (
                self.x11_forwarding,
                self.no_x11_forwarding,
                FlagOption::X11Forwarding,
            ),
            (self.user_rc, self.no_user_rc, FlagOption::UserRc),
        ];
        for (on, _, make) in pairs {
            if on {
                f.push(make(true));
            }
        }
        for (_, off, make) in pairs {
            if off {
                f.push(make(false));
            }
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_built_options_fold_restrict_then_enable_then_disable() {
        let o = KeyOptions {
            restrict: true,
            pty: true,
            ..Default::default()
        };
        let a = o.allowed();
        assert!(a.pty);
        assert!(!a.port_forwarding && !a.agent_forwarding && !a.x11_forwarding && !a.user_rc);

        let o = KeyOptions {
            no_agent_forwarding: true,
            ..Default::default()
        };
        let a = o.allowed();
        assert!(!a.agent_forwarding);
        assert!(a.pty && a.port_forwarding && a.x11_forwarding && a.user_rc);
    }
}
