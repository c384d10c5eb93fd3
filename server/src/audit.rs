//! The audit log: one JSON object per line for each connect, auth attempt, session start/end
//! and disconnect. Schema version 1 (`"v": 1`); every event has `ts` (RFC 3339 UTC), `event`,
//! `conn_id` and `peer`; the others appear when they apply: `user`, `key_type`,
//! `fingerprint`, `outcome` (`accepted`/`rejected`), `reason`, `command`, `exit_status`,
//! `exit_signal`, `bytes_in`, `bytes_out`, `duration_ms`, `subsystem` (added within v1: a
//! session serving a subsystem; its `command` is then `subsystem:NAME`).
#![forbid(unsafe_code)]

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Map, Value};

use crate::config::AuditTarget;

/// Events waiting for the writer thread. A full queue drops new events (counted), so a
/// stalled sink (hung disk, a pipe nobody reads) never blocks a connection.
pub const QUEUE_EVENTS: usize = 4096;

type Sink = Box<dyn Write + Send>;

enum Msg {
    Line(String),
    /// Swap the sink (already opened by the caller).
    Switch(Option<Sink>),
    /// Answered once every earlier message is written.
    Flush(SyncSender<()>),
}

struct Inner {
    tx: SyncSender<Msg>,
    /// Events lost since the last report (queue full or write failed).
    dropped: Arc<AtomicU64>,
}

/// Where audit lines go; cheap to clone (all clones share one writer thread), a no-op when
/// disabled. `reopen` swaps the sink for every clone at once (SIGHUP, log rotation).
#[derive(Clone, Default)]
pub struct Audit {
    inner: Option<Arc<Inner>>,
}

/// Opens the target: a file in append mode, created 0600. `O_NONBLOCK` at open only, so a
/// FIFO without a reader is an immediate error instead of a hang; writes then block, but only
/// the writer thread. `O_NOFOLLOW`: root never appends through a symlink planted at the
/// audit log's name (a log in a directory others can write).
fn open_target(target: Option<&AuditTarget>) -> Result<Option<Sink>> {
    Ok(match target {
        None => None,
        Some(AuditTarget::Stdout) => Some(Box::new(std::io::stdout())),
        Some(AuditTarget::File(p)) => {
            use nix::fcntl::{fcntl, FcntlArg, OFlag};
            use std::os::unix::fs::OpenOptionsExt;
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOFOLLOW)
                .open(p)
                .with_context(|| format!("cannot open audit log {}", p.display()))?;
            let flags = fcntl(&f, FcntlArg::F_GETFL)
                .with_context(|| format!("audit log {}", p.display()))?;
            let mut flags = OFlag::from_bits_truncate(flags);
            flags.remove(OFlag::O_NONBLOCK);
            fcntl(&f, FcntlArg::F_SETFL(flags))
                .with_context(|| format!("audit log {}", p.display()))?;
            Some(Box::new(f))
        }
    })
}

fn writer(rx: Receiver<Msg>, mut sink: Option<Sink>, dropped: Arc<AtomicU64>) {
    let write = |sink: &mut Option<Sink>, line: &str| -> bool {
        match sink.as_mut() {
            None => true,
            Some(w) => match writeln!(w, "{line}").and_then(|()| w.flush()) {
                Ok(()) => true,
                Err(e) => {
                    tracing::error!("audit log write failed, event lost: {e}");
                    false
                }
            },
        }
    };
    for m in rx {
        match m {
            Msg::Line(line) => {
                if !write(&mut sink, &line) {
                    dropped.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
                let n = dropped.swap(0, Ordering::SeqCst);
                if n > 0 {
                    tracing::warn!(
                        "audit log: {n} events were dropped (the log did not keep up); recorded as an audit_dropped event"
                    );
                    let ev = render("audit_dropped", 0, "", &[("dropped", Value::from(n))]);
                    if !write(&mut sink, &ev) {
                        dropped.fetch_add(n + 1, Ordering::SeqCst);
                    }
                }
            }
            Msg::Switch(new) => sink = new,
            Msg::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// One event as a JSON line.
fn render(event: &str, conn_id: u64, peer: &str, fields: &[(&str, Value)]) -> String {
    let mut m = Map::new();
    m.insert("v".into(), Value::from(1));
    m.insert("ts".into(), Value::from(now_rfc3339()));
    m.insert("event".into(), Value::from(event));
    m.insert("conn_id".into(), Value::from(conn_id));
    m.insert("peer".into(), Value::from(peer));
    for (k, v) in fields {
        match v {
            Value::Null => {}
            Value::String(s) => {
                m.insert((*k).to_string(), Value::from(cap(s, field_max(k))));
            }
            v => {
                m.insert((*k).to_string(), v.clone());
            }
        }
    }
    Value::Object(m).to_string()
}

/// How much of a text field the audit log keeps. JSON already escapes control characters;
/// the cap keeps one client from writing kilobytes per event (a user name: sshd's 100).
fn field_max(key: &str) -> usize {
    match key {
        "user" => crate::logsafe::USER_MAX,
        "subsystem" | "key_type" | "cert_key_id" => crate::logsafe::NAME_MAX,
        _ => 4 * crate::logsafe::VALUE_MAX,
    }
}

/// `s` cut to `max` characters, marked with how many were left out.
fn cap(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    let kept: String = s.chars().take(max).collect();
    format!("{kept}...[{} more characters]", n - max)
}

impl Audit {
    /// Opens the target and starts the writer thread (none when disabled).
    pub fn open(target: Option<&AuditTarget>) -> Result<Self> {
        Self::with_queue(target, QUEUE_EVENTS)
    }

    /// As [`Audit::open`] with a queue of `events` lines.
    pub fn with_queue(target: Option<&AuditTarget>, events: usize) -> Result<Self> {
        let sink = open_target(target)?;
        let (tx, rx) = sync_channel(events);
        let dropped = Arc::new(AtomicU64::new(0));
        let d2 = dropped.clone();
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer(rx, sink, d2))
            .context("cannot start the audit log writer thread")?;
        Ok(Audit {
            inner: Some(Arc::new(Inner { tx, dropped })),
        })
    }

    /// Re-opens (a rotated file) or switches the target; on error the old sink stays. The
    /// open happens here (so errors are reported to the caller), the swap in the writer.
    pub fn reopen(&self, target: Option<&AuditTarget>) -> Result<()> {
        let new = open_target(target)?;
        if let Some(inner) = &self.inner {
            inner.tx.try_send(Msg::Switch(new)).map_err(|_| {
                anyhow::anyhow!(
                    "the audit log writer is stalled (its queue is full); the old log stays"
                )
            })?;
        }
        Ok(())
    }

    /// Queues one event (`fields` after the common ones). Never blocks: when the queue is
    /// full the event is dropped and counted; the count is written as an `audit_dropped`
    /// event once the log accepts lines again.
    pub fn event(&self, event: &str, conn_id: u64, peer: &str, fields: &[(&str, Value)]) {
        let Some(inner) = &self.inner else { return };
        let line = render(event, conn_id, peer, fields);
        match inner.tx.try_send(Msg::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                if inner.dropped.fetch_add(1, Ordering::SeqCst) == 0 {
                    tracing::warn!(
                        "audit log is not keeping up (stalled disk or pipe?): dropping events; the number dropped will be logged"
                    );
                }
            }
        }
    }

    /// Waits (up to `timeout`) until every queued event is written: called at exit.
    pub fn flush(&self, timeout: Duration) -> bool {
        let Some(inner) = &self.inner else {
            return true;
        };
        let deadline = std::time::Instant::now() + timeout;
        let (tx, rx) = sync_channel(1);
        let mut msg = Msg::Flush(tx);
        // The queue may be full for a moment: retry until the deadline, never block forever.
        loop {
            match inner.tx.try_send(msg) {
                Ok(()) => break,
                Err(TrySendError::Full(m)) if std::time::Instant::now() < deadline => {
                    msg = m;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(_) => return false,
            }
        }
        rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .is_ok()
    }

    /// Events dropped and not yet reported.
    #[cfg(test)]
    pub fn dropped(&self) -> u64 {
        self.inner
            .as_ref()
            .map(|i| i.dropped.load(Ordering::SeqCst))
            .unwrap_or(0)
    }
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn now_rfc3339() -> String {
    rfc3339_millis(jiff::Timestamp::now())
}

/// `t` in UTC with milliseconds (truncated, not rounded, so a line never claims a later time).
fn rfc3339_millis(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_queue_drops_and_counts_then_reports() {
        // A sink that blocks until released stands for a stalled disk or pipe.
        struct Gate(
            std::sync::mpsc::Receiver<()>,
            Arc<std::sync::Mutex<Vec<u8>>>,
        );
        impl Write for Gate {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                let _ = self.0.recv();
                self.1.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let (open_tx, open_rx) = std::sync::mpsc::channel();
        let out = Arc::new(std::sync::Mutex::new(Vec::new()));
        let a = Audit::with_queue(None, 2).unwrap();
        a.inner
            .as_ref()
            .unwrap()
            .tx
            .send(Msg::Switch(Some(Box::new(Gate(open_rx, out.clone())))))
            .unwrap();
        let start = std::time::Instant::now();
        for i in 0..10 {
            a.event("connect", i, "127.0.0.1:1", &[]);
        }
        assert!(start.elapsed() < Duration::from_secs(1), "event() blocked");
        assert!(a.dropped() >= 7, "{}", a.dropped());
        for _ in 0..1000 {
            let _ = open_tx.send(());
        }
        a.event("connect", 99, "127.0.0.1:1", &[]);
        assert!(a.flush(Duration::from_secs(5)));
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        assert!(text.contains("\"event\":\"audit_dropped\""), "{text}");
        assert_eq!(a.dropped(), 0);
    }

    #[test]
    fn timestamp_shape() {
        let t = super::now_rfc3339();
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.ends_with('Z') && t.get(4..5) == Some("-") && t.get(10..11) == Some("T"));
    }

    #[test]
    fn timestamp_is_utc_with_truncated_milliseconds() {
        let at = |s, ns| super::rfc3339_millis(jiff::Timestamp::new(s, ns).unwrap());
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_825_599, 999_999_999), "2000-02-29T11:59:59.999Z");
        assert_eq!(at(4_107_542_400, 1_000_000), "2100-03-01T00:00:00.001Z");
    }
}
