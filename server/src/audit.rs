//! The audit log: one JSON object per line for each connect, auth attempt, session start/end
//! and disconnect. Schema version 1 (`"v": 1`); every event has `ts` (RFC 3339 UTC), `event`,
//! `conn_id` and `peer`; the others appear when they apply: `user`, `key_type`,
//! `fingerprint`, `outcome` (`accepted`/`rejected`), `reason`, `command`, `exit_status`,
//! `exit_signal`, `bytes_in`, `bytes_out`, `duration_ms`.
#![forbid(unsafe_code)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use serde_json::{Map, Value};

use crate::config::AuditTarget;

/// Where audit lines are written; cheap to clone (all clones share the sink), a no-op when
/// disabled. `reopen` swaps the sink for every clone at once (SIGHUP, log rotation).
#[derive(Clone, Default)]
pub struct Audit {
    out: Arc<Mutex<Option<Box<dyn Write + Send>>>>,
}

fn open_target(target: Option<&AuditTarget>) -> Result<Option<Box<dyn Write + Send>>> {
    Ok(match target {
        None => None,
        Some(AuditTarget::Stdout) => Some(Box::new(std::io::stdout())),
        Some(AuditTarget::File(p)) => {
            use std::os::unix::fs::OpenOptionsExt;
            Some(Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .open(p)
                    .with_context(|| format!("cannot open audit log {}", p.display()))?,
            ))
        }
    })
}

impl Audit {
    /// Opens the target (append mode, created 0600).
    pub fn open(target: Option<&AuditTarget>) -> Result<Self> {
        Ok(Audit {
            out: Arc::new(Mutex::new(open_target(target)?)),
        })
    }

    /// Re-opens (a rotated file) or switches the target; on error the old sink stays.
    pub fn reopen(&self, target: Option<&AuditTarget>) -> Result<()> {
        let new = open_target(target)?;
        if let Ok(mut g) = self.out.lock() {
            *g = new;
        }
        Ok(())
    }

    /// Writes one event. `fields` are added after the common ones.
    pub fn event(&self, event: &str, conn_id: u64, peer: &str, fields: &[(&str, Value)]) {
        let mut m = Map::new();
        m.insert("v".into(), Value::from(1));
        m.insert("ts".into(), Value::from(now_rfc3339()));
        m.insert("event".into(), Value::from(event));
        m.insert("conn_id".into(), Value::from(conn_id));
        m.insert("peer".into(), Value::from(peer));
        for (k, v) in fields {
            if !v.is_null() {
                m.insert((*k).to_string(), v.clone());
            }
        }
        let line = Value::Object(m).to_string();
        // A short line written under a lock; a failing audit sink is reported, not fatal.
        if let Ok(mut g) = self.out.lock() {
            if let Some(w) = g.as_mut() {
                if let Err(e) = writeln!(w, "{line}").and_then(|()| w.flush()) {
                    tracing::error!("audit log write failed: {e}");
                }
            }
        }
    }
}

/// UTC time as `YYYY-MM-DDTHH:MM:SS.mmmZ`, computed without a date crate (civil-from-days).
fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60,
        now.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamp_shape() {
        let t = super::now_rfc3339();
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.ends_with('Z') && t.get(4..5) == Some("-") && t.get(10..11) == Some("T"));
    }
}
