//! Audit events for the certificate refusals russh 0.65 makes on its own. russh checks a
//! user certificate's validity window and its CA signature in `server_read_auth_request_pk`
//! (server/encrypted.rs) before it calls any `Handler` method with it, answers
//! `USERAUTH_FAILURE` and only logs `Certificate is expired or not yet valid` (or `Certificate
//! signature is invalid`) through the `log` crate. mshd never sees that certificate, so it
//! cannot name its key id, serial or CA; what it can do is tie russh's log record to the
//! connection: russh runs each connection's handler in one tokio task, so the task id
//! recorded when the handler is first called (`authentication_banner`, at the
//! `ssh-userauth` service request, before any authentication request) identifies the
//! connection when the record arrives. [`RusshRefusals`] is the tracing layer that does this
//! and writes an `auth` `rejected` audit event with what is known.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex};

use serde_json::Value;
use tokio::task::Id;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use crate::server::Shared;

/// The connection a russh task serves, and the user its client last named.
struct Watched {
    conn_id: u64,
    peer: SocketAddr,
    user: Option<String>,
    shared: Arc<Shared>,
}

static TASKS: LazyLock<Mutex<HashMap<Id, Watched>>> = LazyLock::new(Default::default);

/// Records that the current tokio task runs connection `conn_id`; returns the task id to
/// pass to [`forget`] when the connection's handler is dropped.
pub fn register(conn_id: u64, peer: SocketAddr, shared: Arc<Shared>) -> Option<Id> {
    let id = tokio::task::try_id()?;
    if let Ok(mut m) = TASKS.lock() {
        m.insert(
            id,
            Watched {
                conn_id,
                peer,
                user: None,
                shared,
            },
        );
    }
    Some(id)
}

/// The user named in the client's latest authentication request on this connection.
pub fn note_user(id: Option<Id>, user: &str) {
    let Some(id) = id else { return };
    if let Ok(mut m) = TASKS.lock() {
        if let Some(w) = m.get_mut(&id) {
            if w.user.as_deref() != Some(user) {
                w.user = Some(user.to_string());
            }
        }
    }
}

pub fn forget(id: Option<Id>) {
    let Some(id) = id else { return };
    if let Ok(mut m) = TASKS.lock() {
        m.remove(&id);
    }
}

/// The audit reason for one of russh's own certificate refusals, by its log message.
fn reason_for(message: &str) -> Option<&'static str> {
    match message {
        "Certificate is expired or not yet valid" => Some(
            "certificate expired or not yet valid (refused by russh before mshd's policy: \
             its key id, serial and CA are not shown to mshd)",
        ),
        "Certificate signature is invalid" => Some(
            "certificate signature does not verify (refused by russh before mshd's policy: \
             its key id, serial and CA are not shown to mshd)",
        ),
        _ => None,
    }
}

/// The message and, for records bridged from the `log` crate, the original target.
#[derive(Default)]
struct Fields {
    message: String,
    log_target: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_string(),
            "log.target" => self.log_target = value.to_string(),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        }
    }
}

/// Turns russh's certificate refusals into audit events (see the module header).
pub struct RusshRefusals;

impl<S: Subscriber> Layer<S> for RusshRefusals {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if *event.metadata().level() != Level::WARN {
            return;
        }
        let mut f = Fields::default();
        event.record(&mut f);
        let target = if f.log_target.is_empty() {
            event.metadata().target()
        } else {
            f.log_target.as_str()
        };
        if !target.starts_with("russh") {
            return;
        }
        let Some(reason) = reason_for(&f.message) else {
            return;
        };
        let Some(id) = tokio::task::try_id() else {
            return;
        };
        let (conn_id, peer, user, shared) = {
            let Ok(m) = TASKS.lock() else { return };
            let Some(w) = m.get(&id) else { return };
            (w.conn_id, w.peer, w.user.clone(), w.shared.clone())
        };
        let mut fields = vec![];
        if let Some(u) = &user {
            fields.push(("user", Value::from(u.as_str())));
        }
        fields.push(("method", Value::from("publickey")));
        fields.push(("outcome", Value::from("rejected")));
        fields.push(("reason", Value::from(reason)));
        shared
            .audit
            .event("auth", conn_id, &peer.to_string(), &fields);
        // Logging from inside a layer's on_event would re-enter the subscriber mid-event;
        // a task logs it just after instead, naming the connection russh's line lacks.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let user = user.unwrap_or_else(|| "?".into());
            rt.spawn(async move {
                tracing::warn!(
                    "connection {conn_id} from {peer}: rejected publickey for {user} (a certificate): {reason}"
                );
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::reason_for;

    #[test]
    fn russh_messages_map_to_reasons() {
        assert!(reason_for("Certificate is expired or not yet valid")
            .is_some_and(|r| r.starts_with("certificate expired or not yet valid")));
        assert!(reason_for("Certificate signature is invalid").is_some());
        assert_eq!(reason_for("something else"), None);
    }
}
