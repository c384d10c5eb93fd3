//! `audit_syslog`: every audit event also goes, as one datagram, to journald (its native
//! protocol) or to the local syslog daemon (RFC 5424), for the tools that already ship logs to
//! a SIEM. The record is the JSON line's ([`super::record`]): the same keys, the same capped
//! values.
//!
//! journald (systemd's "Native Journal Protocol", what `sd_journal_send` writes): fields
//! `NAME=value\n`, or for a value holding a newline `NAME\n` + its length as 64-bit little
//! endian + the value + `\n`, so that no byte of a value can end it. Fields: `MESSAGE` (a
//! one-line summary, client text escaped as in the text log), `PRIORITY`, `SYSLOG_FACILITY`
//! (10, authpriv), `SYSLOG_IDENTIFIER=mshd`, and `MSH_<KEY>` for each key of the record
//! (`MSH_EVENT`, `MSH_USER`, `MSH_PEER`, `MSH_OUTCOME`, ...), so `journalctl MSH_EVENT=auth`.
//!
//! syslog: `<PRI>1 TIMESTAMP HOSTNAME mshd PID EVENT [msh@32473 key="value" ...] JSON`,
//! facility authpriv (where sshd's security messages go on most systems), one datagram per
//! record (no framing to forge), the record's keys as SD-PARAMs with `"`, `\` and `]` escaped
//! (RFC 5424 6.3.3) after control characters were escaped as in the text log, and the JSON
//! line, exact, as MSG.
//!
//! Sends never wait (a non-blocking socket): a record the socket does not take at once
//! (receiver gone, its queue full) is lost, counted in `mshd_audit_syslog_dropped_total`,
//! logged once until a record goes through again, and then reported with an `audit_dropped`
//! record.
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use serde_json::{Map, Value};

use super::AuditEvent;
use crate::config::AuditSyslog;

/// RFC 5424 SD-ID of mshd's STRUCTURED-DATA element. A private SD-ID must be `name@<private
/// enterprise number>`; msh has no IANA number, so it uses 32473, the one RFC 5612 reserves
/// for documentation and examples (it can never be another organisation's).
pub(crate) const SD_ID: &str = "msh@32473";

/// syslog facility authpriv (RFC 5424 table 1: 10).
const AUTHPRIV: u8 = 10;

/// Where audit records go besides the JSON-lines file.
pub(crate) struct Structured {
    kind: AuditSyslog,
    path: PathBuf,
    sock: UnixDatagram,
    /// Records lost since the last one that went through.
    lost: AtomicU64,
    /// RFC 5424 HOSTNAME (`-` when the host name is not printable ASCII).
    hostname: String,
    pid: u32,
}

impl Structured {
    /// The sink `kind` at `path` (`None` when off). A socket that cannot be reached now is an
    /// error naming it (a typo, no journald): at start mshd does not start, at SIGHUP the
    /// previous configuration stays. Later outages only lose records.
    pub(crate) fn open(kind: AuditSyslog, path: Option<&Path>) -> Result<Option<Self>> {
        let path = match (kind, path) {
            (AuditSyslog::Off, _) | (_, None) => return Ok(None),
            (_, Some(p)) => p.to_path_buf(),
        };
        let name = sink_name(kind);
        let probe = UnixDatagram::unbound().context("cannot create a datagram socket")?;
        probe.connect(&path).with_context(|| {
            format!(
                "audit_syslog = \"{name}\": cannot reach the datagram socket {} (is {} running? \
                 set audit_syslog_socket to where it listens, or audit_syslog = \"off\")",
                path.display(),
                if kind == AuditSyslog::Journald {
                    "systemd-journald"
                } else {
                    "the syslog daemon"
                }
            )
        })?;
        // Unconnected: each record is sent to the path, so a restarted daemon's new socket
        // is found again.
        let sock = UnixDatagram::unbound().context("cannot create a datagram socket")?;
        sock.set_nonblocking(true)
            .context("cannot make the audit_syslog socket non-blocking")?;
        let hostname = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .filter(|h| {
                !h.is_empty() && h.len() <= 255 && h.bytes().all(|b| (33..=126).contains(&b))
            })
            .unwrap_or_else(|| "-".to_string());
        Ok(Some(Structured {
            kind,
            path,
            sock,
            lost: AtomicU64::new(0),
            hostname,
            pid: std::process::id(),
        }))
    }

    /// The socket records go to.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn datagram(&self, rec: &Map<String, Value>, json: &str) -> Vec<u8> {
        match self.kind {
            AuditSyslog::Syslog => syslog_datagram(rec, json, &self.hostname, self.pid),
            _ => journald_datagram(rec),
        }
    }

    /// Sends one record (`json` is its JSON line); never waits.
    pub(crate) fn send(&self, rec: &Map<String, Value>, json: &str) {
        let name = sink_name(self.kind);
        match self.sock.send_to(&self.datagram(rec, json), &self.path) {
            Ok(_) => {
                let n = self.lost.swap(0, Ordering::SeqCst);
                if n > 0 {
                    tracing::warn!(
                        "audit_syslog: {} takes records again; {n} were lost (an audit_dropped record follows)",
                        self.path.display()
                    );
                    let ev = AuditEvent::AuditDropped { dropped: n };
                    let v = Value::Object(super::record(0, "", &ev));
                    let json = v.to_string();
                    let sent = match v.as_object() {
                        Some(m) => self.sock.send_to(&self.datagram(m, &json), &self.path),
                        None => Ok(0),
                    };
                    if sent.is_err() {
                        self.lost.fetch_add(n, Ordering::SeqCst);
                    }
                }
            }
            Err(e) => {
                crate::metrics::audit_syslog_dropped(name);
                if self.lost.fetch_add(1, Ordering::SeqCst) == 0 {
                    tracing::warn!(
                        "audit_syslog = \"{name}\": cannot send to {}: {e}; audit records are dropped (counted in mshd_audit_syslog_dropped_total) until it takes them again",
                        self.path.display()
                    );
                }
            }
        }
    }
}

fn sink_name(kind: AuditSyslog) -> &'static str {
    match kind {
        AuditSyslog::Syslog => "syslog",
        _ => "journald",
    }
}

/// syslog severity of a record: refusals notice (5), lost records warning (4), the rest
/// info (6). sshd logs refused keys at info; a SIEM filters on severity, so a refusal stands
/// out from the logins.
pub(crate) fn severity(rec: &Map<String, Value>) -> u8 {
    let text = |k: &str| rec.get(k).and_then(Value::as_str).unwrap_or("");
    match text("event") {
        "audit_dropped" => 4,
        "auth" | "forward_open" if text("outcome") == "rejected" => 5,
        _ => 6,
    }
}

/// A value as text: strings as they are, numbers and booleans as JSON writes them.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The one-line `MESSAGE`: `audit auth rejected conn 3 from 192.0.2.7:50000: user=alice
/// reason="..." ...`, client text escaped as in the text log.
pub(crate) fn summary(rec: &Map<String, Value>) -> String {
    let get = |k: &str| rec.get(k).map(text).unwrap_or_default();
    let mut out = format!("audit {}", crate::logsafe::clean(&get("event"), 64));
    if rec.contains_key("outcome") {
        let _ = write!(out, " {}", crate::logsafe::clean(&get("outcome"), 64));
    }
    let peer = get("peer");
    if !peer.is_empty() {
        let _ = write!(
            out,
            " conn {} from {}",
            get("conn_id"),
            crate::logsafe::clean(&peer, 128)
        );
    }
    let mut first = true;
    for (k, v) in rec {
        if ["v", "ts", "event", "outcome", "conn_id", "peer"].contains(&k.as_str()) {
            continue;
        }
        let mut value = crate::logsafe::clean(&text(v), crate::logsafe::VALUE_MAX);
        if value.is_empty() || value.contains([' ', '"']) {
            value = format!("\"{}\"", value.replace('"', "\\\""));
        }
        let _ = write!(out, "{}{k}={value}", if first { ": " } else { " " });
        first = false;
    }
    out
}

/// journald's field-name rules: `A-Z`, `0-9`, `_`, not starting with `_` (trusted fields)
/// or a digit, at most 64 bytes.
fn journald_name_ok(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && !n.starts_with(|c: char| c == '_' || c.is_ascii_digit())
        && n.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// One field of the native protocol. A value with a newline takes the binary form (length
/// first), so it cannot end the field and start a forged one; one with a NUL too, for
/// readers that treat the plain form as a C string.
fn journald_field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    if value.contains(&b'\n') || value.contains(&0) {
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        out.push(b'=');
    }
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// The native-protocol datagram of one record.
pub(crate) fn journald_datagram(rec: &Map<String, Value>) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    journald_field(&mut out, "MESSAGE", summary(rec).as_bytes());
    journald_field(&mut out, "PRIORITY", severity(rec).to_string().as_bytes());
    journald_field(&mut out, "SYSLOG_FACILITY", AUTHPRIV.to_string().as_bytes());
    journald_field(&mut out, "SYSLOG_IDENTIFIER", b"mshd");
    for (k, v) in rec {
        let name = format!("MSH_{}", k.to_ascii_uppercase());
        // The keys are ours (event.rs), never the client's; the check keeps a future key
        // journald would refuse from costing the whole record.
        if journald_name_ok(&name) {
            journald_field(&mut out, &name, text(v).as_bytes());
        }
    }
    out
}

/// RFC 5424 PARAM-NAME: 1 to 32 printable ASCII characters but `=`, space, `]` and `"`.
fn sd_name_ok(n: &str) -> bool {
    (1..=32).contains(&n.len())
        && n.bytes()
            .all(|b| (33..=126).contains(&b) && !matches!(b, b'=' | b']' | b'"'))
}

/// An SD-PARAM value: control characters escaped as in the text log (`\n`, `\x00`; a
/// backslash doubled), then RFC 5424's `\"`, `\\`, `\]`.
fn sd_value(s: &str) -> String {
    // The record already capped it (at most 4 * VALUE_MAX characters plus the note).
    let clean = crate::logsafe::clean(s, 1 << 20);
    let mut out = String::with_capacity(clean.len() + 8);
    for c in clean.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The RFC 5424 datagram of one record.
pub(crate) fn syslog_datagram(
    rec: &Map<String, Value>,
    json: &str,
    hostname: &str,
    pid: u32,
) -> Vec<u8> {
    let pri = u32::from(AUTHPRIV) * 8 + u32::from(severity(rec));
    let ts = rec
        .get("ts")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty() && t.bytes().all(|b| (33..=126).contains(&b)))
        .unwrap_or("-");
    let msgid = rec
        .get("event")
        .and_then(Value::as_str)
        .filter(|e| sd_name_ok(e))
        .unwrap_or("-");
    let mut sd = format!("[{SD_ID}");
    for (k, v) in rec {
        if k != "ts" && sd_name_ok(k) {
            let _ = write!(sd, " {k}=\"{}\"", sd_value(&text(v)));
        }
    }
    sd.push(']');
    format!("<{pri}>1 {ts} {hostname} mshd {pid} {msgid} {sd} {json}").into_bytes()
}

#[cfg(test)]
#[path = "structured_tests.rs"]
mod tests;
