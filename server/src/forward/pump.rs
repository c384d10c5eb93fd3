//! Moving a forward's bytes between its channel and its socket, with the same flow control
//! as sessions: reading the channel is what replenishes the client's window (vendored russh,
//! PATCHES.md 1) and writing it waits for the client's window through `Handle`'s bounded
//! queue, so a target that stops reading stops only its own channel. Each direction holds
//! one 32 KiB buffer; nothing else is queued here.
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use russh::server::Msg;
use russh::ChannelStream;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

/// Bytes moved each way and why the forward ended.
pub(crate) struct Moved {
    /// From the client to the target.
    pub(crate) to_target: u64,
    /// From the target to the client.
    pub(crate) to_client: u64,
    /// `closed` (both sides ended), the error, or `connection closed`.
    pub(crate) reason: String,
}

/// Copies until both directions have ended (each passes its EOF on), one fails, or the
/// connection ends (`stop`'s sender is dropped).
pub(crate) async fn pump<S>(
    channel: ChannelStream<Msg>,
    socket: S,
    mut stop: watch::Receiver<()>,
) -> Moved
where
    S: AsyncRead + AsyncWrite + Send,
{
    let to_target = AtomicU64::new(0);
    let to_client = AtomicU64::new(0);
    let (mut cr, mut cw) = tokio::io::split(channel);
    let (mut sr, mut sw) = tokio::io::split(socket);
    let up = copy(&mut cr, &mut sw, &to_target, "the client");
    let down = copy(&mut sr, &mut cw, &to_client, "the target");
    let reason = tokio::select! {
        r = async { tokio::try_join!(up, down) } => match r {
            Ok(_) => "closed".to_string(),
            Err(e) => e,
        },
        _ = stop.changed() => "connection closed".to_string(),
    };
    Moved {
        to_target: to_target.load(Ordering::Relaxed),
        to_client: to_client.load(Ordering::Relaxed),
        reason,
    }
}

/// One direction: read, write all, count; at EOF shut the writer (EOF to the channel, or
/// a TCP half-close) and end.
async fn copy<R, W>(r: &mut R, w: &mut W, count: &AtomicU64, from: &str) -> Result<(), String>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => return Err(format!("reading from {from}: {e}")),
        };
        let chunk = buf.get(..n).unwrap_or_default();
        w.write_all(chunk)
            .await
            .map_err(|e| format!("writing what {from} sent: {e}"))?;
        count.fetch_add(n as u64, Ordering::Relaxed);
    }
    let _ = w.shutdown().await;
    Ok(())
}
