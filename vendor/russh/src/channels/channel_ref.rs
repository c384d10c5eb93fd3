use std::sync::Arc;

use tokio::sync::Notify;

use super::WindowSizeRef;
use super::inbox::{InboxReceiver, InboxSender, Pushed, inbox};
use crate::ChannelMsg;

/// A handle to the [`super::Channel`]'s to be able to transmit messages
/// to it and update it's `window_size`.
///
/// msh patch: messages go into the channel's [`super::inbox`] queue, which never makes the
/// session loop wait (PATCHES.md, "flow control").
#[derive(Debug)]
pub struct ChannelRef {
    pub(super) sender: InboxSender,
    pub(super) window_size: WindowSizeRef,
}

impl ChannelRef {
    /// A reference and the receiving end of its queue.
    pub(crate) fn new() -> (Self, InboxReceiver) {
        let (sender, receiver) = inbox();
        (
            Self {
                sender,
                window_size: WindowSizeRef::new(0),
            },
            receiver,
        )
    }

    pub(crate) fn window_size(&self) -> &WindowSizeRef {
        &self.window_size
    }

    /// Queues a message that is not channel data. Never waits; a message the reader will
    /// never see (read half gone, or queue full) is dropped, as `try_send` did before.
    #[allow(clippy::unused_async)] // keeps the call sites of the former tokio::mpsc::Sender
    pub(crate) async fn send(&self, msg: ChannelMsg) -> Result<(), ()> {
        self.try_send(msg)
    }

    pub(crate) fn try_send(&self, msg: ChannelMsg) -> Result<(), ()> {
        match self.sender.0.push(msg, None) {
            Pushed::Queued => Ok(()),
            Pushed::Unread => Err(()),
            Pushed::Full => {
                log::warn!("channel queue full, dropping a message the reader has not taken");
                Err(())
            }
        }
    }

    /// Queues channel data without waiting. `Unread` data (no reader any more) already counts
    /// as consumed; `Full` means the peer is flooding a stalled channel.
    pub(crate) fn push_data(
        &self,
        msg: ChannelMsg,
        session: &Arc<Notify>,
        threshold: u32,
    ) -> Pushed {
        self.sender.0.push(msg, Some((session, threshold)))
    }

    /// Data bytes the reader consumed since the last credit, if at least `min`.
    pub(crate) fn take_consumed(&self, min: u32) -> u32 {
        self.sender.0.take_consumed(min)
    }
}
