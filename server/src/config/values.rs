//! The config's value types that have a syntax of their own: `max_startups`,
//! `permit_user_environment`, the audit targets.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// `max_startups` as OpenSSH writes it: `start:rate:full` (or a single number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MaxStartups {
    /// Unauthenticated connections accepted before any is dropped.
    pub start: u32,
    /// Percentage dropped at `start`, rising linearly to 100 at `full`.
    pub rate: u32,
    /// Unauthenticated connections at which every new one is dropped.
    pub full: u32,
}

/// `permit_user_environment` (sshd's PermitUserEnvironment): whether `environment="NAME=value"`
/// options of authorized_keys and authorized_principals_file lines are applied: `false` (the
/// default, as sshd), `true`, or a list of name patterns (`["LANG", "TZ", "APP_*"]`, `!`
/// negates, as sshd 7.8+). Loader and shell-startup variables are never applied either way
/// (see `auth::NEVER_FROM_OPTIONS`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PermitUserEnvironment {
    /// `true`: every `environment=` option applies; `false`: none does.
    All(bool),
    /// Only variables whose names match these patterns (`!` negates).
    Names(Vec<String>),
}

impl<'de> Deserialize<'de> for PermitUserEnvironment {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = PermitUserEnvironment;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "permit_user_environment = true, false, or a list of variable name \
                     patterns such as [\"LANG\", \"APP_*\"]",
                )
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(PermitUserEnvironment::All(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut names = Vec::new();
                while let Some(n) = seq.next_element::<String>()? {
                    names.push(n);
                }
                Ok(PermitUserEnvironment::Names(names))
            }
        }
        d.deserialize_any(V)
    }
}

impl Default for PermitUserEnvironment {
    fn default() -> Self {
        PermitUserEnvironment::All(false)
    }
}

/// Where audit events go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditTarget {
    /// `-`: mshd's stdout.
    Stdout,
    /// A file, appended to (created 0600).
    File(PathBuf),
}

/// `audit_syslog`: where audit records go besides `audit_log`, as structured records (see
/// `crate::audit::structured`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditSyslog {
    /// Nowhere else (the default).
    Off,
    /// systemd-journald's native protocol, one field per attribute.
    Journald,
    /// RFC 5424 on the local syslog socket, the attributes as STRUCTURED-DATA.
    Syslog,
}

impl AuditSyslog {
    /// The socket records go to when `audit_syslog_socket` is not set.
    pub fn default_socket(self) -> Option<&'static str> {
        match self {
            AuditSyslog::Off => None,
            AuditSyslog::Journald => Some("/run/systemd/journal/socket"),
            AuditSyslog::Syslog => Some("/dev/log"),
        }
    }
}

/// `10` or `10:30:100` (start:rate:full), as OpenSSH's MaxStartups.
pub fn parse_startups(s: &str) -> Result<MaxStartups> {
    let parts: Vec<&str> = s.split(':').collect();
    let num = |p: &str| -> Result<u32> {
        p.trim().parse::<u32>().with_context(|| {
            format!("invalid max_startups {s:?}: expected \"10\" or \"10:30:100\"")
        })
    };
    let m = match parts.as_slice() {
        [one] => {
            let n = num(one)?;
            MaxStartups {
                start: n,
                rate: 100,
                full: n,
            }
        }
        [a, b, c] => MaxStartups {
            start: num(a)?,
            rate: num(b)?,
            full: num(c)?,
        },
        _ => bail!("invalid max_startups {s:?}: expected \"10\" or \"10:30:100\""),
    };
    if m.rate > 100 || m.start > m.full || m.full == 0 {
        bail!("invalid max_startups {s:?}: need start <= full, rate <= 100");
    }
    Ok(m)
}
