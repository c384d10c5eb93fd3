//! The audit log's events, one variant each (schema version 1, see server/README.md "Audit
//! log"). Serialized with the event name in `event`; [`super::Audit::emit`] adds the fields
//! every event has (`v`, `ts`, `conn_id`, `peer`) and caps the text fields a client controls.
#![forbid(unsafe_code)]

use serde::Serialize;

/// One audit event. Field names are the JSON keys; within schema version 1 fields may be
/// added, never removed or changed in meaning.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(crate) enum AuditEvent<'a> {
    /// A TCP connection was admitted.
    Connect,
    /// One public-key authentication attempt, accepted or rejected.
    Auth {
        /// The user name as the client sent it.
        user: &'a str,
        /// Always `publickey` (the only method mshd offers).
        method: &'static str,
        /// The key's algorithm (`ssh-ed25519`, `ssh-ed25519-cert-v01@openssh.com`, ...).
        key_type: &'a str,
        /// `SHA256:...` of the key (of the certified key for a certificate).
        fingerprint: &'a str,
        /// What was decided.
        outcome: Outcome,
        /// Why: the authorizing file and line, or the refusal.
        reason: &'a str,
        /// For a certificate: which one.
        #[serde(flatten, skip_serializing_if = "Option::is_none")]
        cert: Option<CertFields<'a>>,
    },
    /// A session process started.
    SessionStart {
        /// The account the session runs as.
        user: &'a str,
        /// The command run: `shell`, the command line, `subsystem:NAME`, or the forced
        /// command that replaced the request.
        command: &'a str,
        /// Whether the session has a PTY.
        pty: bool,
        /// The subsystem requested (`sftp`), also when a forced command ran instead.
        #[serde(skip_serializing_if = "Option::is_none")]
        subsystem: Option<&'a str>,
    },
    /// A session process was reaped and its output forwarded.
    SessionEnd {
        /// The account the session ran as.
        user: &'a str,
        /// Its exit status or the signal that ended it (absent if waiting for it failed).
        #[serde(flatten, skip_serializing_if = "Option::is_none")]
        exit: Option<Exit>,
        /// Bytes the client sent to the session's stdin.
        bytes_in: u64,
        /// Bytes of stdout and stderr sent to the client.
        bytes_out: u64,
        /// From the start to the reaping of the process.
        duration_ms: u64,
        /// As in [`AuditEvent::SessionStart`].
        #[serde(skip_serializing_if = "Option::is_none")]
        subsystem: Option<&'a str>,
    },
    /// A forwarding request was decided (`outcome`), or a forwarded connection opened.
    ForwardOpen {
        /// The account of the connection.
        user: &'a str,
        /// `local` (the client's -L/-D/-W/-J: mshd connects), `remote` (-R: mshd listens,
        /// and connections to it go to the client) or `agent` (-A).
        direction: &'static str,
        /// The SSH request: `direct-tcpip`, `direct-streamlocal`, `tcpip-forward` (a
        /// listener), `forwarded-tcpip` (a connection to it), `auth-agent` (the agent
        /// socket) or `auth-agent-connection`.
        kind: &'static str,
        /// Where the bytes come from: the client's originator address, the listener's peer.
        from: &'a str,
        /// Where they go: the target host:port or socket path, or the listen address.
        to: &'a str,
        /// Accepted, or rejected with `reason`.
        outcome: Outcome,
        /// Why it was refused or failed (empty when accepted).
        reason: &'a str,
    },
    /// A forward that was opened ended.
    ForwardClose {
        /// As in [`AuditEvent::ForwardOpen`].
        user: &'a str,
        /// As in [`AuditEvent::ForwardOpen`].
        direction: &'static str,
        /// As in [`AuditEvent::ForwardOpen`].
        kind: &'static str,
        /// As in [`AuditEvent::ForwardOpen`].
        from: &'a str,
        /// As in [`AuditEvent::ForwardOpen`].
        to: &'a str,
        /// Bytes from the client's side to the target's.
        bytes_to_target: u64,
        /// Bytes from the target's side to the client's.
        bytes_to_client: u64,
        /// From the open to the close.
        duration_ms: u64,
        /// `closed`, `cancelled`, `connection closed`, or the error that ended it.
        reason: &'a str,
    },
    /// The connection ended.
    Disconnect {
        /// `closed`, or what ended it.
        reason: &'a str,
    },
    /// Events were lost before this one (queue full or a failed write); written with
    /// `conn_id` 0 and `peer` `""`.
    AuditDropped {
        /// How many.
        dropped: u64,
    },
}

/// An authentication attempt's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Outcome {
    /// The key (or certificate) logs in.
    Accepted,
    /// Refused; `reason` says why.
    Rejected,
}

/// The certificate of an authentication attempt.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CertFields<'a> {
    /// The certificate's key id, as the CA wrote it.
    pub cert_key_id: &'a str,
    /// Its serial number.
    pub cert_serial: u64,
    /// `SHA256:...` of the CA key that signed it.
    pub cert_ca_fingerprint: &'a str,
}

/// How a session process ended.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Exit {
    /// It exited with this status.
    ExitStatus(i32),
    /// A signal ended it: its name without `SIG` (`TERM`).
    ExitSignal(String),
}

/// How much of a text field the audit log keeps. JSON already escapes control characters;
/// the cap keeps one client from writing kilobytes per event (a user name: sshd's 100).
pub(super) fn field_max(key: &str) -> usize {
    match key {
        "user" => crate::logsafe::USER_MAX,
        "subsystem" | "key_type" | "cert_key_id" => crate::logsafe::NAME_MAX,
        _ => 4 * crate::logsafe::VALUE_MAX,
    }
}

/// `s` cut to `max` characters, marked with how many were left out.
pub(super) fn cap(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    let kept: String = s.chars().take(max).collect();
    format!("{kept}...[{} more characters]", n - max)
}
