//! Moving a forward's bytes between its channel and its socket, with the same flow control
//! as sessions: reading the channel is what replenishes the client's window (vendored russh,
//! PATCHES.md 1) and writing it waits for the client's window through `Handle`'s bounded
//! queue, so a target that stops reading stops only its own channel. The target's bytes are
//! read 64 KiB at a time and handed to the channel without a copy; what waits for the client's
//! window is at most one read.
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::BytesMut;
use russh::server::Msg;
use russh::{Channel, ChannelMsg};
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

impl Moved {
    /// The counts of a channel the server opened to the client (forwarded-tcpip, agent),
    /// where the socket's peer is the one asking: turned round so that `to_target` is still
    /// what the client sent, as the audit log counts every forward.
    pub(crate) fn seen_from_client(self) -> Moved {
        Moved {
            to_target: self.to_client,
            to_client: self.to_target,
            reason: self.reason,
        }
    }
}

/// Moves bytes until both sides sent EOF, the client closes the channel (then the socket
/// is closed too, as sshd does), a side fails, or the connection ends (`stop`'s sender is
/// dropped); then closes the channel. The client's EOF becomes a TCP half-close; the target's EOF becomes
/// the channel's EOF.
pub(crate) async fn pump<S>(
    channel: Channel<Msg>,
    socket: S,
    mut stop: watch::Receiver<()>,
) -> Moved
where
    S: AsyncRead + AsyncWrite + Send,
{
    let to_target = AtomicU64::new(0);
    let to_client = AtomicU64::new(0);
    let (mut rh, wh) = channel.split();
    let (mut sr, mut sw) = tokio::io::split(socket);
    let client_eof = tokio::sync::Notify::new();
    let up = async {
        let mut eof = false;
        loop {
            match rh.wait().await {
                Some(ChannelMsg::Data { data }) if !eof => {
                    sw.write_all(&data)
                        .await
                        .map_err(|e| format!("writing what the client sent: {e}"))?;
                    to_target.fetch_add(data.len() as u64, Ordering::Relaxed);
                }
                Some(ChannelMsg::Eof) => {
                    eof = true;
                    let _ = sw.shutdown().await;
                    // A permit: phase two below sees it even if it starts waiting later.
                    client_eof.notify_one();
                }
                Some(ChannelMsg::Close) => return Ok::<(), String>(()),
                // The session dropped the channel: the connection is gone.
                None => return Err("connection closed".to_string()),
                _ => {}
            }
        }
    };
    let down = to_channel(&mut sr, &wh, &to_client);
    tokio::pin!(up, down);
    let reason = tokio::select! {
        r = &mut up => r.err(),
        r = &mut down => match r {
            Err(e) => Some(e),
            // The target is done and the channel has its EOF: once the client's EOF is in
            // too, mshd closes the channel (as sshd; OpenSSH's client waits for that close).
            Ok(()) => tokio::select! {
                r = &mut up => r.err(),
                _ = client_eof.notified() => None,
                _ = stop.changed() => Some("connection closed".to_string()),
            },
        },
        _ = stop.changed() => Some("connection closed".to_string()),
    };
    let _ = wh.close().await;
    Moved {
        to_target: to_target.load(Ordering::Relaxed),
        to_client: to_client.load(Ordering::Relaxed),
        reason: reason.unwrap_or_else(|| "closed".to_string()),
    }
}

/// The target's bytes to the channel: each read's buffer is handed to the channel as it is
/// (no copy), the send waiting for the client's window; at the target's EOF, the channel's EOF.
async fn to_channel<R>(
    r: &mut R,
    w: &russh::ChannelWriteHalf<Msg>,
    count: &AtomicU64,
) -> Result<(), String>
where
    R: AsyncRead + Unpin,
{
    // 64 KiB as a session's output (session/spawn.rs): with 32 KiB, 1 GiB from the far side
    // of an `-L` tunnel ran at about 820 MB/s, with 64 KiB at about 1,080 (release, loopback).
    const CHUNK: usize = 64 * 1024;
    let mut buf = BytesMut::new();
    loop {
        buf.reserve(CHUNK);
        let n = match r.read_buf(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => return Err(format!("reading from the target: {e}")),
        };
        w.data_bytes(buf.split().freeze())
            .await
            .map_err(|e| format!("writing what the target sent: {e}"))?;
        count.fetch_add(n as u64, Ordering::Relaxed);
    }
    let _ = w.eof().await;
    Ok(())
}
