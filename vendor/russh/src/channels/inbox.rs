//! msh patch (PATCHES.md, "flow control"): a channel's receive queue.
//!
//! The session loop pushes into it without ever waiting, and the read half ([`InboxReceiver`])
//! counts the data bytes it takes out. The session replenishes the peer's window from that
//! count only ([`Inbox::take_consumed`]), so what is queued here is bounded by the window the
//! peer was granted, and a consumer that stops reading stalls its own channel and nothing
//! else (russh issues #387, #392).

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;

use crate::ChannelMsg;

/// Most messages one channel's queue holds. Data bytes are bounded by the window; this bounds
/// the per-message overhead (small packets, requests): past it the peer is flooding a channel
/// whose reader is stalled, and the connection is closed.
pub(crate) const MAX_QUEUED: usize = 65536;
/// A data packet smaller than this is appended to a queued data message of the same stream,
/// so a peer trickling tiny packets costs window bytes, not a message each.
const COALESCE_BELOW: usize = 4096;
/// ... as long as that message stays within one maximum-size packet.
const COALESCE_MAX: usize = 32768;
/// How far back (through data messages only) a small packet looks for its stream.
const COALESCE_LOOKBACK: usize = 4;

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<ChannelMsg>,
    waker: Option<Waker>,
    /// The session side dropped its `ChannelRef`: `recv` ends once the queue is empty.
    sender_gone: bool,
    /// The read half was dropped or closed: nothing more is queued, data counts as consumed.
    receiver_gone: bool,
    /// Data bytes taken by the reader and not yet credited back to the peer.
    consumed: u32,
    /// The session is woken when `consumed` reaches this (half the window).
    threshold: u32,
    session: Option<Arc<Notify>>,
}

/// Result of [`Inbox::push`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    Queued,
    /// Nobody will read it (the read half is gone); data was counted as consumed.
    Unread,
    /// [`MAX_QUEUED`] reached.
    Full,
}

#[derive(Debug, Default)]
pub(crate) struct Inbox {
    state: Mutex<State>,
}

fn data_len(msg: &ChannelMsg) -> usize {
    match msg {
        ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. } => data.len(),
        _ => 0,
    }
}

fn stream_of(msg: &ChannelMsg) -> Option<Option<u32>> {
    match msg {
        ChannelMsg::Data { .. } => Some(None),
        ChannelMsg::ExtendedData { ext, .. } => Some(Some(*ext)),
        _ => None,
    }
}

fn append(dst: &mut Bytes, src: &[u8]) {
    let mut buf = match std::mem::take(dst).try_into_mut() {
        Ok(buf) => buf,
        Err(shared) => {
            let mut buf = BytesMut::with_capacity(shared.len() + src.len());
            buf.extend_from_slice(&shared);
            buf
        }
    };
    buf.extend_from_slice(src);
    *dst = buf.freeze();
}

impl Inbox {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `msg` without waiting. `session` and `threshold` say whom to wake, and when,
    /// once the reader has consumed enough to be worth a `WINDOW_ADJUST`.
    /// Control messages (not data) pass `None`: they do not count against the window.
    pub(crate) fn push(&self, msg: ChannelMsg, wake: Option<(&Arc<Notify>, u32)>) -> Pushed {
        let len = data_len(&msg);
        let mut st = self.lock();
        if let Some((session, threshold)) = wake {
            if st.session.is_none() {
                st.session = Some(Arc::clone(session));
            }
            st.threshold = threshold.max(1);
        }
        if st.receiver_gone {
            let wake = add_consumed(&mut st, len);
            drop(st);
            if let Some(n) = wake {
                n.notify_one();
            }
            return Pushed::Unread;
        }
        if let Some(stream) = stream_of(&msg) {
            if len == 0 {
                return Pushed::Queued;
            }
            if len < COALESCE_BELOW {
                let src = match &msg {
                    ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. } => data,
                    _ => return Pushed::Queued,
                };
                for queued in st.queue.iter_mut().rev().take(COALESCE_LOOKBACK) {
                    let Some(s) = stream_of(queued) else { break };
                    if s != stream {
                        continue;
                    }
                    if let ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. } =
                        queued
                        && data.len() + len <= COALESCE_MAX
                    {
                        append(data, src);
                        return Pushed::Queued;
                    }
                    break;
                }
            }
        }
        // Informational, and sent for every WINDOW_ADJUST the peer sends: a reader busy
        // elsewhere needs only the latest.
        if let ChannelMsg::WindowAdjusted { new_size } = &msg
            && let Some(ChannelMsg::WindowAdjusted { new_size: queued }) = st.queue.back_mut()
        {
            *queued = *new_size;
            return Pushed::Queued;
        }
        if st.queue.len() >= MAX_QUEUED {
            return Pushed::Full;
        }
        st.queue.push_back(msg);
        let waker = st.waker.take();
        drop(st);
        if let Some(w) = waker {
            w.wake();
        }
        Pushed::Queued
    }

    /// Takes the bytes consumed since the last credit, if at least `min`.
    pub(crate) fn take_consumed(&self, min: u32) -> u32 {
        let mut st = self.lock();
        if st.consumed == 0 || st.consumed < min {
            return 0;
        }
        std::mem::take(&mut st.consumed)
    }

    pub(crate) fn sender_dropped(&self) {
        let mut st = self.lock();
        st.sender_gone = true;
        let waker = st.waker.take();
        drop(st);
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<ChannelMsg>> {
        let mut st = self.lock();
        if let Some(msg) = st.queue.pop_front() {
            let wake = add_consumed(&mut st, data_len(&msg));
            drop(st);
            if let Some(n) = wake {
                n.notify_one();
            }
            return Poll::Ready(Some(msg));
        }
        if st.sender_gone || st.receiver_gone {
            return Poll::Ready(None);
        }
        match &st.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => st.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    fn close(&self) {
        self.lock().receiver_gone = true;
    }

    /// The reader is gone: what it left unread will never be read, so it counts as consumed.
    fn receiver_dropped(&self) {
        let mut st = self.lock();
        st.receiver_gone = true;
        let unread: usize = st.queue.iter().map(data_len).sum();
        st.queue.clear();
        let wake = add_consumed(&mut st, unread);
        drop(st);
        if let Some(n) = wake {
            n.notify_one();
        }
    }
}

/// Adds `len` consumed bytes; returns the session to wake when they reach the threshold.
/// Every time, not only on crossing it: the session may not credit at once (it waits until
/// less than half the window is left), and its wake-ups coalesce anyway.
fn add_consumed(st: &mut State, len: usize) -> Option<Arc<Notify>> {
    if len == 0 {
        return None;
    }
    st.consumed = st
        .consumed
        .saturating_add(u32::try_from(len).unwrap_or(u32::MAX));
    if st.consumed >= st.threshold {
        st.session.clone()
    } else {
        None
    }
}

/// The session's end of a channel's queue (held by `ChannelRef`).
#[derive(Debug)]
pub(crate) struct InboxSender(pub(crate) Arc<Inbox>);

impl Drop for InboxSender {
    fn drop(&mut self) {
        self.0.sender_dropped();
    }
}

/// The reading end of a channel's queue (held by `ChannelReadHalf`).
#[derive(Debug)]
pub(crate) struct InboxReceiver(Arc<Inbox>);

impl InboxReceiver {
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<ChannelMsg>> {
        self.0.poll_recv(cx)
    }

    pub(crate) async fn recv(&mut self) -> Option<ChannelMsg> {
        poll_fn(|cx| self.0.poll_recv(cx)).await
    }

    /// Nothing more is queued; what is already queued can still be read.
    pub(crate) fn close(&mut self) {
        self.0.close();
    }
}

impl Drop for InboxReceiver {
    fn drop(&mut self) {
        self.0.receiver_dropped();
    }
}

/// A new, empty queue.
pub(crate) fn inbox() -> (InboxSender, InboxReceiver) {
    let inbox = Arc::new(Inbox::default());
    (InboxSender(Arc::clone(&inbox)), InboxReceiver(inbox))
}
