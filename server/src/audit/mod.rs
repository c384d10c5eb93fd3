//! The audit log: one JSON object per line for each connect, auth attempt, session start/end
//! and disconnect. Schema version 1 (`"v": 1`); every event has `ts` (RFC 3339 UTC), `event`,
//! `conn_id` and `peer`; the others are the fields of its [`AuditEvent`] variant. Events are
//! built typed wherever they happen and written by one emitter, [`Audit::emit`], through a
//! bounded queue to one writer thread. With `audit_syslog`, each event also goes to journald
//! or syslog as a structured record ([`structured`]), sent directly (never queued behind the
//! file).
#![forbid(unsafe_code)]

mod event;
pub(crate) mod structured;

pub(crate) use structured::Structured;

pub(crate) use event::{AuditEvent, CertFields, Exit, Outcome};

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Map, Value};

use crate::config::AuditTarget;

/// Events waiting for the writer thread. A full queue drops new events (counted), so a
/// stalled sink (hung disk, a pipe nobody reads) never blocks a connection.
pub(crate) const QUEUE_EVENTS: usize = 4096;

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
pub(crate) struct Audit {
    inner: Option<Arc<Inner>>,
    /// `audit_syslog`'s sink, shared by every clone and replaced at SIGHUP.
    structured: Arc<RwLock<Option<Arc<Structured>>>>,
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
                    crate::metrics::audit_dropped(1);
                    continue;
                }
                let n = dropped.swap(0, Ordering::SeqCst);
                if n > 0 {
                    tracing::warn!(
                        "audit log: {n} events were dropped (the log did not keep up); recorded as an audit_dropped event"
                    );
                    let ev = render(0, "", &AuditEvent::AuditDropped { dropped: n });
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

/// One event as a JSON line: see [`record`].
fn render(conn_id: u64, peer: &str, event: &AuditEvent<'_>) -> String {
    Value::Object(record(conn_id, peer, event)).to_string()
}

/// One event's record: the event's own fields (text capped, see [`event::field_max`]) and
/// the ones every event has. Keys come out sorted (serde_json's map), as they always have.
fn record(conn_id: u64, peer: &str, event: &AuditEvent<'_>) -> Map<String, Value> {
    let mut m = match serde_json::to_value(event) {
        Ok(Value::Object(m)) => m,
        // Cannot happen (every variant is a struct with string keys); keep the line anyway.
        _ => Map::new(),
    };
    for (k, v) in m.iter_mut() {
        if let Value::String(s) = v {
            *s = event::cap(s, event::field_max(k));
        }
    }
    m.insert("v".into(), Value::from(1));
    m.insert("ts".into(), Value::from(now_rfc3339()));
    m.insert("conn_id".into(), Value::from(conn_id));
    m.insert("peer".into(), Value::from(peer));
    m
}

impl Audit {
    /// Opens the target and starts the writer thread (none when disabled).
    pub(crate) fn open(target: Option<&AuditTarget>) -> Result<Self> {
        Self::with_queue(target, QUEUE_EVENTS)
    }

    /// As [`Audit::open`] with a queue of `events` lines.
    pub(crate) fn with_queue(target: Option<&AuditTarget>, events: usize) -> Result<Self> {
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
            structured: Arc::default(),
        })
    }

    /// Re-opens (a rotated file) or switches the target; on error the old sink stays. The
    /// open happens here (so errors are reported to the caller), the swap in the writer.
    pub(crate) fn reopen(&self, target: Option<&AuditTarget>) -> Result<()> {
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

    /// Replaces `audit_syslog`'s sink (`None`: off) for every clone.
    pub(crate) fn set_structured(&self, sink: Option<Structured>) {
        *self.structured.write().unwrap_or_else(|p| p.into_inner()) = sink.map(Arc::new);
    }

    /// Queues one event of connection `conn_id` from `peer`: the one way events reach the
    /// log. Never blocks: when the queue is full the event is dropped and counted; the count
    /// is written as an `audit_dropped` event once the log accepts lines again.
    /// Every event is also counted in the metrics ([`crate::metrics::observe`]), with or
    /// without an audit log.
    pub(crate) fn emit(&self, conn_id: u64, peer: &str, event: &AuditEvent<'_>) {
        crate::metrics::observe(event);
        let structured = self
            .structured
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if self.inner.is_none() && structured.is_none() {
            return;
        }
        let rec = Value::Object(record(conn_id, peer, event));
        let line = rec.to_string();
        if let (Some(s), Some(m)) = (structured, rec.as_object()) {
            s.send(m, &line);
        }
        let Some(inner) = &self.inner else { return };
        match inner.tx.try_send(Msg::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                crate::metrics::audit_dropped(1);
                if inner.dropped.fetch_add(1, Ordering::SeqCst) == 0 {
                    tracing::warn!(
                        "audit log is not keeping up (stalled disk or pipe?): dropping events; the number dropped will be logged"
                    );
                }
            }
        }
    }

    /// Waits (up to `timeout`) until every queued event is written: called at exit.
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
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
    pub(crate) fn dropped(&self) -> u64 {
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
            a.emit(i, "127.0.0.1:1", &AuditEvent::Connect);
        }
        assert!(start.elapsed() < Duration::from_secs(1), "event() blocked");
        assert!(a.dropped() >= 7, "{}", a.dropped());
        for _ in 0..1000 {
            let _ = open_tx.send(());
        }
        a.emit(99, "127.0.0.1:1", &AuditEvent::Connect);
        assert!(a.flush(Duration::from_secs(5)));
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        assert!(text.contains("\"event\":\"audit_dropped\""), "{text}");
        assert_eq!(a.dropped(), 0);
    }

    /// The JSON keys of one rendered event, with the common ones checked and removed.
    fn keys(conn_id: u64, peer: &str, e: &AuditEvent<'_>) -> (Map<String, Value>, Vec<String>) {
        let line = render(conn_id, peer, e);
        assert!(!line.contains('\n'), "{line}");
        let Value::Object(m) = serde_json::from_str::<Value>(&line).unwrap() else {
            panic!("not an object: {line}")
        };
        assert_eq!(m["v"], 1, "{line}");
        assert_eq!(m["conn_id"], conn_id, "{line}");
        assert_eq!(m["peer"], peer, "{line}");
        assert_eq!(m["ts"].as_str().map(str::len), Some(24), "{line}");
        let own = m
            .keys()
            .filter(|k| !["v", "ts", "event", "conn_id", "peer"].contains(&k.as_str()))
            .cloned()
            .collect();
        (m, own)
    }

    /// Schema version 1 as server/README.md documents it: each event's name and fields. A
    /// field renamed or dropped here breaks every consumer of the log.
    #[test]
    fn every_event_serializes_to_the_v1_schema() {
        let (m, own) = keys(3, "192.0.2.7:50000", &AuditEvent::Connect);
        assert_eq!((m["event"].as_str(), own.len()), (Some("connect"), 0));

        let auth = |cert| AuditEvent::Auth {
            user: "alice",
            method: "publickey",
            key_type: "ssh-ed25519-cert-v01@openssh.com",
            fingerprint: "SHA256:abc",
            outcome: Outcome::Accepted,
            reason: "ak:1",
            cert,
        };
        let plain = [
            "fingerprint",
            "key_type",
            "method",
            "outcome",
            "reason",
            "user",
        ];
        let (m, own) = keys(3, "p", &auth(None));
        assert_eq!(m["event"], "auth");
        assert_eq!(own, plain);
        assert_eq!(
            (m["outcome"].as_str(), m["method"].as_str()),
            (Some("accepted"), Some("publickey"))
        );
        let cert = CertFields {
            cert_key_id: "laptop",
            cert_serial: 77,
            cert_ca_fingerprint: "SHA256:ca",
        };
        let (m, own) = keys(3, "p", &auth(Some(cert)));
        let mut with_cert = vec!["cert_ca_fingerprint", "cert_key_id", "cert_serial"];
        with_cert.extend(plain);
        assert_eq!(own, with_cert);
        assert_eq!(m["cert_serial"], 77);
        let rejected = AuditEvent::Auth {
            user: "alice",
            method: "publickey",
            key_type: "ssh-ed25519",
            fingerprint: "SHA256:abc",
            outcome: Outcome::Rejected,
            reason: "no",
            cert: None,
        };
        assert_eq!(keys(3, "p", &rejected).0["outcome"], "rejected");

        let start = |subsystem| AuditEvent::SessionStart {
            user: "alice",
            command: "subsystem:sftp",
            pty: false,
            subsystem,
        };
        let (m, own) = keys(3, "p", &start(Some("sftp")));
        assert_eq!(m["event"], "session_start");
        assert_eq!(own, ["command", "pty", "subsystem", "user"]);
        assert_eq!(
            (m["pty"].as_bool(), m["subsystem"].as_str()),
            (Some(false), Some("sftp"))
        );
        assert_eq!(keys(3, "p", &start(None)).1, ["command", "pty", "user"]);

        let end = |exit| AuditEvent::SessionEnd {
            user: "alice",
            exit,
            bytes_in: 1,
            bytes_out: 2,
            duration_ms: 3,
            subsystem: None,
        };
        let (m, own) = keys(3, "p", &end(Some(Exit::ExitStatus(-1))));
        assert_eq!(m["event"], "session_end");
        assert_eq!(
            own,
            [
                "bytes_in",
                "bytes_out",
                "duration_ms",
                "exit_status",
                "user"
            ]
        );
        assert_eq!(
            (m["exit_status"].as_i64(), m["bytes_out"].as_u64()),
            (Some(-1), Some(2))
        );
        let (m, own) = keys(3, "p", &end(Some(Exit::ExitSignal("TERM".into()))));
        assert!(own.contains(&"exit_signal".to_string()) && m["exit_signal"] == "TERM");
        let (_, own) = keys(3, "p", &end(None));
        assert_eq!(own, ["bytes_in", "bytes_out", "duration_ms", "user"]);

        let (m, own) = keys(3, "p", &AuditEvent::Disconnect { reason: "closed" });
        assert_eq!(
            (m["event"].as_str(), own),
            (Some("disconnect"), vec!["reason".to_string()])
        );

        let (m, own) = keys(0, "", &AuditEvent::AuditDropped { dropped: 5 });
        assert_eq!(
            (m["event"].as_str(), m["dropped"].as_u64()),
            (Some("audit_dropped"), Some(5))
        );
        assert_eq!(own, ["dropped"]);
    }

    /// The forwarding events of schema version 1, as server/README.md documents them.
    #[test]
    fn forward_events_serialize_to_the_v1_schema() {
        let open = AuditEvent::ForwardOpen {
            user: "alice",
            direction: "local",
            kind: "direct-tcpip",
            from: "127.0.0.1:5000",
            to: "db:5432",
            outcome: Outcome::Rejected,
            reason: "not in permit_open",
        };
        let (m, own) = keys(3, "p", &open);
        assert_eq!(m["event"], "forward_open");
        assert_eq!(
            own,
            [
                "direction",
                "from",
                "kind",
                "outcome",
                "reason",
                "to",
                "user"
            ]
        );
        assert_eq!(m["outcome"], "rejected");
        let close = AuditEvent::ForwardClose {
            user: "alice",
            direction: "remote",
            kind: "forwarded-tcpip",
            from: "127.0.0.1:6000",
            to: "127.0.0.1:8080",
            bytes_to_target: 1,
            bytes_to_client: 2,
            duration_ms: 3,
            reason: "closed",
        };
        let (m, own) = keys(3, "p", &close);
        assert_eq!(m["event"], "forward_close");
        assert_eq!(
            own,
            [
                "bytes_to_client",
                "bytes_to_target",
                "direction",
                "duration_ms",
                "from",
                "kind",
                "reason",
                "to",
                "user"
            ]
        );
        assert_eq!(m["bytes_to_client"], 2);
    }

    #[test]
    fn client_text_is_capped_per_field_and_keys_stay_sorted() {
        let long = "x".repeat(5000);
        let line = render(
            1,
            "p",
            &AuditEvent::SessionStart {
                user: &long,
                command: &long,
                pty: true,
                subsystem: Some(&long),
            },
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert!(v["user"]
            .as_str()
            .unwrap()
            .ends_with("...[4900 more characters]"));
        assert!(v["subsystem"]
            .as_str()
            .unwrap()
            .ends_with("...[4900 more characters]"));
        assert!(v["command"]
            .as_str()
            .unwrap()
            .ends_with("...[904 more characters]"));
        // serde_json's map sorts keys: the lines look as they always have.
        let at = |k: &str| line.find(&format!("\"{k}\":")).unwrap();
        assert!(
            at("command") < at("conn_id") && at("conn_id") < at("event") && at("ts") < at("user")
        );
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
