//! Prometheus metrics (`metrics_listen`): the counters and gauges, and the small HTTP
//! responder that serves them on `GET /metrics` in the Prometheus text format 0.0.4.
//!
//! Counters move where the events already happen: [`observe`] is called by the audit log's
//! one emitter ([`crate::audit::Audit::emit`], whether or not an audit log is configured), so
//! a login, a session end or a forward is counted exactly when it is audited. What is state
//! rather than an event is read or held where it lives: open session channels through a
//! [`SessionGauge`] held with the channel's `max_sessions` slot, unauthenticated connections
//! from the listener's admission count at each scrape.
//!
//! The responder is written for hostile or broken scrapers, since whoever can reach the
//! address can connect: GET only, a request head of at most [`HEAD_MAX`] bytes read within
//! [`SCRAPE_TIMEOUT`] (the whole exchange has that bound), at most [`MAX_SCRAPERS`] at once
//! (more are closed at accept), one request per connection. It runs on the runtime's tasks
//! like everything else and takes no lock the SSH side waits for, so a scraper that connects
//! and sends nothing holds one of its slots for at most [`SCRAPE_TIMEOUT`], nothing else.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::audit::{AuditEvent, Outcome};
use crate::daemon::Shared;

/// Scrapes served at once; a connection beyond them is closed at accept.
pub(crate) const MAX_SCRAPERS: usize = 8;
/// The whole exchange (request head in, answer out) of one scrape.
pub(crate) const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest request head accepted (request line and headers).
pub(crate) const HEAD_MAX: usize = 8192;

type Labels = Vec<(&'static str, String)>;

/// Every metric mshd exports (one set per process, see [`metrics`]).
pub(crate) struct Metrics {
    registry: Registry,
    connections: Counter,
    auth: Family<Labels, Counter>,
    sessions_active: Gauge,
    unauthenticated: Gauge,
    forwards_active: Gauge,
    bytes: Family<Labels, Counter>,
    cert_expiry: Family<Labels, Gauge>,
    audit_dropped: Counter,
    audit_syslog_dropped: Family<Labels, Counter>,
    reloads: Family<Labels, Counter>,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::default();
        let connections = Counter::default();
        let auth = Family::<Labels, Counter>::default();
        let sessions_active = Gauge::default();
        let unauthenticated = Gauge::default();
        let forwards_active = Gauge::default();
        let bytes = Family::<Labels, Counter>::default();
        let cert_expiry = Family::<Labels, Gauge>::default();
        let audit_dropped = Counter::default();
        let audit_syslog_dropped = Family::<Labels, Counter>::default();
        let reloads = Family::<Labels, Counter>::default();
        // The crate appends `_total` to counter names.
        registry.register(
            "mshd_connections",
            "TCP connections admitted (after max_startups and per_source_max_startups)",
            connections.clone(),
        );
        registry.register(
            "mshd_auth",
            "Authentication attempts, by method and outcome (accepted, rejected)",
            auth.clone(),
        );
        registry.register(
            "mshd_sessions_active",
            "Session channels open, each holding one of its connection's max_sessions slots",
            sessions_active.clone(),
        );
        registry.register(
            "mshd_unauthenticated_connections",
            "Connections not authenticated yet (what max_startups limits)",
            unauthenticated.clone(),
        );
        registry.register(
            "mshd_forwards_active",
            "Forwarded connections open (local, remote and agent tunnels; not listeners)",
            forwards_active.clone(),
        );
        registry.register(
            "mshd_bytes",
            "Payload bytes of sessions and forwards, counted when each ends; direction in = from the client",
            bytes.clone(),
        );
        registry.register(
            "mshd_host_certificate_expiry_timestamp_seconds",
            "End of validity (valid_before, Unix time) of each host certificate served",
            cert_expiry.clone(),
        );
        registry.register(
            "mshd_audit_dropped",
            "Audit events lost because the audit log did not keep up or a write failed",
            audit_dropped.clone(),
        );
        registry.register(
            "mshd_audit_syslog_dropped",
            "Audit records audit_syslog could not send at once (socket missing or full), by sink (journald, syslog)",
            audit_syslog_dropped.clone(),
        );
        registry.register(
            "mshd_config_reloads",
            "SIGHUP reloads, by outcome (success, failure: the previous configuration stays)",
            reloads.clone(),
        );
        Metrics {
            registry,
            connections,
            auth,
            sessions_active,
            unauthenticated,
            forwards_active,
            bytes,
            cert_expiry,
            audit_dropped,
            audit_syslog_dropped,
            reloads,
        }
    }

    fn add_bytes(&self, direction: &'static str, n: u64) {
        if n > 0 {
            self.bytes
                .get_or_create(&vec![("direction", direction.to_string())])
                .inc_by(n);
        }
    }

    /// The text exposition, with the admission gauge read now.
    fn render(&self, shared: &Shared) -> String {
        self.unauthenticated
            .set(i64::try_from(shared.admission.unauthenticated()).unwrap_or(i64::MAX));
        let mut out = String::new();
        if let Err(e) = prometheus_text::encode(&mut out, &self.registry) {
            tracing::warn!("metrics: cannot encode: {e}");
        }
        out
    }
}

/// The process's metrics. One mshd is one process, and every connection, session and
/// forward counts into the same set, so a process-wide value spares threading a handle
/// through each of them.
pub(crate) fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

/// Counts one audit event (called by the audit log's emitter for every event).
pub(crate) fn observe(event: &AuditEvent<'_>) {
    let m = metrics();
    match event {
        AuditEvent::Connect => {
            m.connections.inc();
        }
        AuditEvent::Auth {
            method, outcome, ..
        } => {
            let outcome = match outcome {
                Outcome::Accepted => "accepted",
                Outcome::Rejected => "rejected",
            };
            m.auth
                .get_or_create(&vec![
                    ("method", method.to_string()),
                    ("outcome", outcome.to_string()),
                ])
                .inc();
        }
        AuditEvent::SessionEnd {
            bytes_in,
            bytes_out,
            ..
        } => {
            m.add_bytes("in", *bytes_in);
            m.add_bytes("out", *bytes_out);
        }
        // Listeners (`tcpip-forward`) and the agent socket (`auth-agent`) are not tunnels and
        // have no close event; every accepted tunnel gets exactly one ForwardClose (its pump
        // always returns, at the latest when the connection ends).
        AuditEvent::ForwardOpen {
            kind,
            outcome: Outcome::Accepted,
            ..
        } if !matches!(*kind, "tcpip-forward" | "auth-agent") => {
            m.forwards_active.inc();
        }
        AuditEvent::ForwardClose {
            bytes_to_target,
            bytes_to_client,
            ..
        } => {
            m.forwards_active.dec();
            m.add_bytes("in", *bytes_to_target);
            m.add_bytes("out", *bytes_to_client);
        }
        AuditEvent::ForwardOpen { .. }
        | AuditEvent::SessionStart { .. }
        | AuditEvent::Disconnect { .. }
        | AuditEvent::AuditDropped { .. } => {}
    }
}

/// `n` audit events were lost (counted where they are lost, not from the later
/// `audit_dropped` event, which is itself lost when the log stays broken).
pub(crate) fn audit_dropped(n: u64) {
    metrics().audit_dropped.inc_by(n);
}

/// One audit record could not be sent to `audit_syslog`'s socket (`sink`: journald, syslog).
pub(crate) fn audit_syslog_dropped(sink: &'static str) {
    metrics()
        .audit_syslog_dropped
        .get_or_create(&vec![("sink", sink.to_string())])
        .inc();
}

/// A SIGHUP reload ended: `ok` = the new configuration is in use.
pub(crate) fn config_reload(ok: bool) {
    let outcome = if ok { "success" } else { "failure" };
    metrics()
        .reloads
        .get_or_create(&vec![("outcome", outcome.to_string())])
        .inc();
}

/// The host certificates now served, each with the file it came from (the previous set is
/// forgotten, so a certificate removed at a reload stops being reported).
pub(crate) fn host_certificates(certs: &[(PathBuf, u64)]) {
    let m = metrics();
    m.cert_expiry.clear();
    for (file, valid_before) in certs {
        m.cert_expiry
            .get_or_create(&vec![("file", file.display().to_string())])
            .set(i64::try_from(*valid_before).unwrap_or(i64::MAX));
    }
}

/// One open session channel, counted in `mshd_sessions_active` for as long as it lives.
pub(crate) struct SessionGauge(Gauge<i64, AtomicI64>);

impl SessionGauge {
    pub(crate) fn new() -> Self {
        let g = metrics().sessions_active.clone();
        g.inc();
        SessionGauge(g)
    }
}

impl Drop for SessionGauge {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Serves `GET /metrics` on `listener` until the task is aborted.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_SCRAPERS));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("metrics: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!("metrics: {MAX_SCRAPERS} scrapes already running, closing {peer}");
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(SCRAPE_TIMEOUT, answer(stream, &shared)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!("metrics: scrape from {peer}: {e}"),
                Err(_) => tracing::debug!(
                    "metrics: scrape from {peer} not done within {SCRAPE_TIMEOUT:?}, closed"
                ),
            }
            drop(slot);
        });
    }
}

/// What a request head asks for.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    Metrics,
    NotFound,
    MethodNotAllowed,
    Bad,
}

/// Reads one request head and answers it.
async fn answer(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let request = loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(buf.get(..n).unwrap_or_default());
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break parse(head.get(..end).unwrap_or_default());
        }
        if head.len() > HEAD_MAX {
            break Request::Bad;
        }
    };
    let (status, content_type, body) = match request {
        Request::Metrics => (
            "200 OK",
            prometheus_text::CONTENT_TYPE,
            metrics().render(shared),
        ),
        Request::NotFound => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "mshd serves only /metrics\n".to_string(),
        ),
        Request::MethodNotAllowed => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET\n".to_string(),
        ),
        Request::Bad => (
            "400 Bad Request",
            "text/plain; charset=utf-8",
            "bad request\n".to_string(),
        ),
    };
    let allow = if request == Request::MethodNotAllowed {
        "Allow: GET\r\n"
    } else {
        ""
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(reply.as_bytes()).await?;
    stream.shutdown().await
}

/// The request line of `head` (without the blank line): `GET /metrics HTTP/1.x`, a query
/// string allowed (Prometheus sends none, curl users may).
fn parse(head: &[u8]) -> Request {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let Ok(line) = std::str::from_utf8(line) else {
        return Request::Bad;
    };
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Request::Bad;
    };
    if !version.starts_with("HTTP/1.") {
        return Request::Bad;
    }
    if method != "GET" {
        return Request::MethodNotAllowed;
    }
    let path = target.split('?').next().unwrap_or_default();
    if path == "/metrics" {
        Request::Metrics
    } else {
        Request::NotFound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert_eq!(parse(b"GET /metrics HTTP/1.1\r\nHost: x"), Request::Metrics);
        assert_eq!(parse(b"GET /metrics?x=1 HTTP/1.0"), Request::Metrics);
        assert_eq!(parse(b"GET / HTTP/1.1"), Request::NotFound);
        assert_eq!(parse(b"GET /metricsx HTTP/1.1"), Request::NotFound);
        assert_eq!(parse(b"POST /metrics HTTP/1.1"), Request::MethodNotAllowed);
        assert_eq!(parse(b"GET /metrics"), Request::Bad);
        assert_eq!(parse(b"GET /metrics SSH-2.0"), Request::Bad);
        assert_eq!(parse(b"\xff\xfe"), Request::Bad);
    }
}
