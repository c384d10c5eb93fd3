//! Copies bytes both ways between a local socket and a forwarded channel, with the
//! backpressure of both: the local socket is read only when the channel's window lets the
//! last chunk go, and the channel is read only as fast as the local socket takes the bytes
//! (the vendored russh then withholds WINDOW_ADJUST, so the server stops sending on this
//! channel alone, vendor/russh/PATCHES.md §1). A stalled tunnel therefore holds at most one
//! window of this channel's data and never stalls the connection's other channels.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::FutureExt;
use russh::client::Msg;
use russh::{Channel, ChannelMsg};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

/// Size of one read from the local socket (one SSH data packet carries at most ~32 KiB
/// towards OpenSSH's default maximum packet size; russh splits larger chunks itself).
const CHUNK: usize = 32 * 1024;

/// At most this much of the channel's queued data is written to the local socket at once.
const BATCH: usize = 256 * 1024;

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
        // A message taken off the channel while gathering a batch, to be handled next.
        let mut taken: Option<Option<ChannelMsg>> = None;
        let mut batch: Vec<Bytes> = Vec::new();
        loop {
            let msg = match taken.take() {
                Some(msg) => msg,
                None => rd.wait().await,
            };
            match msg {
                Some(ChannelMsg::Data { data }) => {
                    // The packets already queued go out in one write: fewer system calls,
                    // and fewer wake-ups of the program reading the socket.
                    let mut len = data.len();
                    batch.push(data);
                    while len < BATCH {
                        match rd.wait().now_or_never() {
                            Some(Some(ChannelMsg::Data { data })) => {
                                len += data.len();
                                batch.push(data);
                            }
                            Some(other) => {
                                taken = Some(other);
                                break;
                            }
                            None => break,
                        }
                    }
                    down_bytes.fetch_add(len as u64, Ordering::Relaxed);
                    let written = write_batch(&mut sw, &batch).await;
                    batch.clear();
                    if let Err(e) = written {
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

/// Writes every chunk of `batch`, in order, with as few writes as the stream allows.
async fn write_batch<W: AsyncWrite + Unpin>(w: &mut W, batch: &[Bytes]) -> std::io::Result<()> {
    let mut slices: Vec<std::io::IoSlice<'_>> =
        batch.iter().map(|b| std::io::IoSlice::new(b)).collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let n = w.write_vectored(rest).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        std::io::IoSlice::advance_slices(&mut rest, n);
    }
    Ok(())
}
