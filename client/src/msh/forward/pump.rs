//! Copies bytes both ways between a local socket and a forwarded channel, with the
//! backpressure of both: the local socket is read only when the channel's window lets the
//! last chunk go, and the channel is read only as fast as the local socket takes the bytes
//! (the vendored russh then withholds WINDOW_ADJUST, so the server stops sending on this
//! channel alone, vendor/russh/PATCHES.md §1). A stalled tunnel therefore holds at most one
//! window of this channel's data and never stalls the connection's other channels.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::BytesMut;
use russh::client::Msg;
use russh::{Channel, ChannelMsg};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

/// Size of one read from the local socket (one SSH data packet carries at most ~32 KiB
/// towards OpenSSH's default maximum packet size; russh splits larger chunks itself).
const CHUNK: usize = 32 * 1024;

/// Counts the forwarded connections open, so that msh can wait for them when the session
/// ends, as ssh does (its client loop runs while any channel but a listener is open).
#[derive(Debug, Default)]
pub(super) struct Tracker {
    open: AtomicUsize,
    idle: Notify,
}

/// One open forwarded connection; dropping it closes the count.
pub(super) struct OpenConn(Arc<Tracker>);

impl Tracker {
    pub(super) fn open(self: &Arc<Self>) -> OpenConn {
        self.open.fetch_add(1, Ordering::SeqCst);
        OpenConn(self.clone())
    }

    pub(super) fn count(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Returns once no forwarded connection is open.
    pub(super) async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for OpenConn {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Bytes moved by one forwarded connection, for the log.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Moved {
    /// Local socket to channel.
    pub up: u64,
    /// Channel to local socket.
    pub down: u64,
}

/// Runs until both directions have ended (EOF both ways) or either side failed or closed,
/// then closes the channel. `to_channel` / `to_stream` are bytes already read during a
/// handshake (SOCKS) that belong to the other side.
pub(super) async fn pump<S>(
    channel: Channel<Msg>,
    stream: S,
    to_channel: Vec<u8>,
    to_stream: Vec<u8>,
) -> Moved
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, wr) = channel.split();
    let (mut sr, mut sw) = tokio::io::split(stream);
    let up_bytes = AtomicU64::new(0);
    let down_bytes = AtomicU64::new(0);
    // Set when that direction has ended with EOF; the channel is closed once both have.
    let up_eof = AtomicBool::new(false);
    let down_eof = AtomicBool::new(false);
    // Local socket -> channel. False when it failed (the tunnel is then torn down).
    let up = async {
        if !to_channel.is_empty() {
            up_bytes.fetch_add(to_channel.len() as u64, Ordering::Relaxed);
            if wr.data_bytes(to_channel).await.is_err() {
                return false;
            }
        }
        let mut buf = BytesMut::with_capacity(CHUNK);
        loop {
            buf.reserve(CHUNK);
            match sr.read_buf(&mut buf).await {
                Ok(0) => {
                    up_eof.store(true, Ordering::Relaxed);
                    return wr.eof().await.is_ok();
                }
                Ok(n) => {
                    up_bytes.fetch_add(n as u64, Ordering::Relaxed);
                    // Waits for channel window: the upload backpressure.
                    if wr.data_bytes(buf.split().freeze()).await.is_err() {
                        return false;
                    }
                }
                Err(e) => {
                    tracing::debug!("forwarded socket read: {e}");
                    return false;
                }
            }
        }
    };
    // Channel -> local socket, concurrently with `up` (a client that writes everything
    // before reading must not stop its own upload). True when the peer closed the channel.
    let down = async {
        if !to_stream.is_empty() {
            down_bytes.fetch_add(to_stream.len() as u64, Ordering::Relaxed);
            if sw.write_all(&to_stream).await.is_err() {
                return false;
            }
        }
        loop {
            match rd.wait().await {
                Some(ChannelMsg::Data { data }) => {
                    down_bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                    if let Err(e) = sw.write_all(&data).await {
                        tracing::debug!("forwarded socket write: {e}");
                        return false;
                    }
                }
                Some(ChannelMsg::Eof) => {
                    down_eof.store(true, Ordering::Relaxed);
                    let _ = sw.shutdown().await;
                    if up_eof.load(Ordering::Relaxed) {
                        return false;
                    }
                }
                Some(ChannelMsg::Close) | None => return true,
                Some(_) => {}
            }
        }
    };
    tokio::pin!(up, down);
    let mut up_done = false;
    let peer_closed = loop {
        tokio::select! {
            clean = &mut up, if !up_done => {
                up_done = true;
                if !clean || down_eof.load(Ordering::Relaxed) {
                    break false;
                }
            }
            closed = &mut down => break closed,
        }
    };
    if !peer_closed {
        let _ = wr.close().await;
    }
    Moved {
        up: up_bytes.load(Ordering::Relaxed),
        down: down_bytes.load(Ordering::Relaxed),
    }
}
