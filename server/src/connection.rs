//! One connection's life, as sshd's per-connection process: the SSH handshake within
//! `login_grace_time` (counted from the TCP accept), then the russh session with a
//! [`Conn`] handler until either side closes it, or SIGTERM's graceful end (a note on each
//! session's stderr, `shutdown_grace_time`, SIGHUP, disconnect). The connection owns its
//! [`Sessions`] (slots, processes and descriptors of its channels): they end with it.
#![forbid(unsafe_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use russh::ChannelId;

use crate::audit::AuditEvent;
use crate::daemon::{Generation, Shared};
use crate::handler::Conn;
use crate::session::Sessions;

/// Serves one admitted connection from `peer` (accepted on `local` at `accepted`) with the
/// settings and russh configuration of `generation`, until it ends.
pub(crate) async fn run(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    generation: Arc<Generation>,
    shared: Arc<Shared>,
    accepted: tokio::time::Instant,
) {
    let cfg = generation.russh.clone();
    if let Err(e) = stream.set_nodelay(cfg.nodelay) {
        tracing::debug!("set_nodelay: {e}");
    }
    let conn_id = shared.next_conn_id();
    let settings = generation.settings.clone();
    let peer_s = peer.to_string();
    tracing::info!("connection {conn_id} from {peer}");
    shared.audit.emit(conn_id, &peer_s, &AuditEvent::Connect);
    let authed = Arc::new(AtomicBool::new(false));
    let sessions = Sessions::new(conn_id, settings.max_sessions);
    let stop_grace = settings.shutdown_grace_time;
    let grace = settings.login_grace_time;
    // The grace period covers everything before authentication from the TCP accept,
    // including time spent waiting for a per-source slot and a peer that never sends its
    // version line (russh's run_stream waits for it).
    // As OpenSSH, 0 means no limit (a far deadline keeps one code path).
    let deadline = accepted
        + if grace.is_zero() {
            Duration::from_secs(100 * 365 * 86_400)
        } else {
            grace
        };
    // The session's handle, for the handler to disconnect from inside an auth callback.
    let handle_cell = Arc::new(std::sync::OnceLock::new());
    let handler = Conn::new(
        shared.clone(),
        settings,
        conn_id,
        (peer, local),
        authed.clone(),
        sessions.clone(),
        handle_cell.clone(),
    );
    let setup = tokio::time::timeout_at(deadline, russh::server::run_stream(cfg, stream, handler));
    let session = match setup.await {
        Ok(Ok(s)) => {
            let _ = handle_cell.set(s.handle());
            s
        }
        Ok(Err(e)) => {
            shared.admission.leave_unauth(&authed, peer.ip());
            tracing::info!("connection {conn_id} from {peer}: setup failed: {e:#}");
            let reason = format!("{e:#}");
            shared.audit.emit(
                conn_id,
                &peer_s,
                &AuditEvent::Disconnect { reason: &reason },
            );
            return;
        }
        Err(_) => {
            shared.admission.leave_unauth(&authed, peer.ip());
            tracing::info!(
                "connection {conn_id} from {peer}: no SSH version line within login_grace_time ({grace:?}), closing"
            );
            shared.audit.emit(
                conn_id,
                &peer_s,
                &AuditEvent::Disconnect {
                    reason: "login grace time exceeded",
                },
            );
            return;
        }
    };
    let handle = session.handle();
    let authed2 = authed.clone();
    let grace_timer = tokio::spawn(async move {
        tokio::time::sleep_until(deadline).await;
        if !authed2.load(Ordering::SeqCst) {
            tracing::info!("connection {conn_id} from {peer}: not authenticated within login_grace_time ({grace:?}), disconnecting");
            disconnect(
                &handle,
                russh::Disconnect::ByApplication,
                "login grace time exceeded",
            )
            .await;
        }
    });
    let mut stopping = shared.stopping();
    let end_handle = session.handle();
    tokio::pin!(session);
    let result = tokio::select! {
        r = &mut session => r,
        _ = async { let _ = stopping.wait_for(|s| *s).await; } => {
            graceful_end(conn_id, &end_handle, &sessions, authed.load(Ordering::SeqCst), stop_grace, session.as_mut()).await
        }
    };
    grace_timer.abort();
    shared.admission.leave_unauth(&authed, peer.ip());
    let reason = match &result {
        Ok(()) => "closed".to_string(),
        Err(e) if peer_just_left(e) => {
            "closed by the client without a disconnect message".to_string()
        }
        Err(e) => format!("{e:#}"),
    };
    // The audit event is queued before the log line, so whoever sees "ended" in the log
    // finds the event written (or about to be).
    shared.audit.emit(
        conn_id,
        &peer_s,
        &AuditEvent::Disconnect { reason: &reason },
    );
    tracing::info!("connection {conn_id} from {peer} ended: {reason}");
}

/// SIGTERM for one connection: an unauthenticated one is disconnected at once; an
/// authenticated one is told on each session's stderr, gets `grace` to finish, then its
/// processes get SIGHUP (as when a terminal hangs up) and the connection is disconnected with
/// the reason "mshd is shutting down".
async fn graceful_end<F>(
    conn_id: u64,
    handle: &russh::server::Handle,
    sessions: &Sessions,
    authed: bool,
    grace: Duration,
    mut session: std::pin::Pin<&mut F>,
) -> Result<(), anyhow::Error>
where
    F: Future<Output = Result<(), anyhow::Error>>,
{
    let channels: Vec<ChannelId> = sessions.running();
    if authed && !channels.is_empty() && !grace.is_zero() {
        let note = format!(
            "\r\nmshd: the server is shutting down; this session will be closed in {} s\r\n",
            grace.as_secs_f64().ceil()
        );
        for ch in &channels {
            let _ = handle
                .extended_data(*ch, 1, note.clone().into_bytes())
                .await;
        }
        tracing::info!(
            "connection {conn_id}: shutting down, {} session(s) get {grace:?} to end",
            channels.len()
        );
        if let Ok(r) = tokio::time::timeout(grace, session.as_mut()).await {
            return r;
        }
        // Each session leads its own process group: hang up all of it (a `sleep` run by the
        // shell holds the output pipe open as long as it lives). Only groups whose leader is
        // not reaped yet, so a recycled PID is never hit.
        for pid in sessions.hangup_all() {
            tracing::info!(
                "connection {conn_id}: shutdown grace time over, SIGHUP to session pid {pid}"
            );
        }
        // Let the exit status reach the client before the disconnect.
        if let Ok(r) = tokio::time::timeout(Duration::from_secs(2), session.as_mut()).await {
            return r;
        }
    }
    disconnect(
        handle,
        russh::Disconnect::ByApplication,
        "mshd is shutting down",
    )
    .await;
    match tokio::time::timeout(Duration::from_secs(2), session.as_mut()).await {
        Ok(r) => r,
        Err(_) => Err(anyhow::anyhow!("closed at shutdown")),
    }
}

/// Sends SSH_MSG_DISCONNECT with `reason` (what the client shows) and closes; an error only
/// means the connection is gone already.
pub(crate) async fn disconnect(
    handle: &russh::server::Handle,
    kind: russh::Disconnect,
    reason: &str,
) {
    let _ = handle.disconnect(kind, reason.into(), String::new()).await;
}

/// Whether the connection ended because the peer closed its socket without sending
/// SSH_MSG_DISCONNECT first (a killed client, or one that just exits): russh words that as
/// "early eof" or a reset, which reads like a fault of mshd's.
fn peer_just_left(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        let io = match cause.downcast_ref::<russh::Error>() {
            Some(russh::Error::IO(io)) => Some(io),
            _ => cause.downcast_ref::<std::io::Error>(),
        };
        io.is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
            )
        })
    })
}
