//! The session channels of one connection: its `max_sessions` slots and, per channel, the
//! tasks that own its pipes or PTY master and its process leader. Owned by the connection
//! (created in [`crate::connection::run`], held by its handler and its session tasks), so
//! everything in it ends with the connection.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use nix::sys::signal::Signal;
use russh::ChannelId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::AbortHandle;

use super::leader::{orphans, Leader};
use super::Kind;
use crate::error::Error;
use crate::metrics::SessionGauge;

/// What one channel holds.
struct Entry {
    /// Its `max_sessions` slot, until the channel is done (counted in the metrics while
    /// held).
    slot: Option<(OwnedSemaphorePermit, SessionGauge)>,
    /// The input pump and the I/O tasks: aborting them drops the pipes and the PTY master.
    io: Vec<AbortHandle>,
    /// The task that reaps the process and reports its exit.
    waiter: Option<AbortHandle>,
    leader: Option<Arc<Leader>>,
    kind: Kind,
}

/// The session channels of one connection (see the module doc).
pub(crate) struct Sessions {
    conn_id: u64,
    slots: Arc<Semaphore>,
    map: Mutex<HashMap<ChannelId, Entry>>,
}

impl Sessions {
    pub(crate) fn new(conn_id: u64, max_sessions: u32) -> Arc<Self> {
        Arc::new(Sessions {
            conn_id,
            slots: Arc::new(Semaphore::new(max_sessions as usize)),
            map: Mutex::new(HashMap::new()),
        })
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<ChannelId, Entry>> {
        // Nothing panics while holding the lock; recover the data if something did.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a slot for a new channel, or false when `max_sessions` channels are open.
    pub(crate) fn open(&self, channel: ChannelId) -> bool {
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            return false;
        };
        self.map().insert(
            channel,
            Entry {
                slot: Some((slot, SessionGauge::new())),
                io: Vec::new(),
                waiter: None,
                leader: None,
                kind: Kind::Shell,
            },
        );
        true
    }

    /// Whether `channel` is open and holds a slot.
    pub(crate) fn is_open(&self, channel: ChannelId) -> bool {
        self.map().get(&channel).is_some_and(|e| e.slot.is_some())
    }

    /// Adds a task to the channel's I/O (aborted when the channel or connection ends).
    pub(super) fn add_io(&self, channel: ChannelId, task: AbortHandle) {
        match self.map().get_mut(&channel) {
            Some(e) if e.slot.is_some() => e.io.push(task),
            _ => task.abort(),
        }
    }

    /// Records the started process. If the channel was closed meanwhile, its I/O is dropped
    /// at once (the process sees the hang-up or EOF), the waiter still reaps it.
    pub(super) fn attach(
        &self,
        channel: ChannelId,
        io: Vec<AbortHandle>,
        waiter: AbortHandle,
        leader: Arc<Leader>,
        kind: Kind,
    ) {
        let mut map = self.map();
        let Some(e) = map.get_mut(&channel) else {
            // Already finished (the process ended at once): nothing left to track.
            return;
        };
        if e.slot.is_none() {
            for t in io {
                t.abort();
            }
        } else {
            e.io.extend(io);
        }
        e.waiter = Some(waiter);
        e.leader = Some(leader);
        e.kind = kind;
    }

    /// The client closed the channel: its slot is free, its pipes or PTY master are closed
    /// (the process gets EOF/SIGPIPE or the terminal hang-up); a running process is still
    /// reaped and its end audited.
    pub(crate) fn close(&self, channel: ChannelId) {
        let mut map = self.map();
        let Some(e) = map.get_mut(&channel) else {
            return;
        };
        e.slot = None;
        for t in e.io.drain(..) {
            t.abort();
        }
        if e.waiter.is_none() {
            map.remove(&channel);
        }
    }

    /// The process was reaped and its output forwarded: the slot is freed before the exit
    /// status goes out, so a client that opens its next channel on seeing it gets one.
    pub(super) fn release_slot(&self, channel: ChannelId) {
        if let Some(e) = self.map().get_mut(&channel) {
            e.slot = None;
        }
    }

    /// The session sent its close: forget the channel.
    pub(super) fn finished(&self, channel: ChannelId) {
        let entry = self.map().remove(&channel);
        if let Some(e) = entry {
            for t in e.io {
                t.abort();
            }
        }
    }

    /// Channels with a session process that has not been reaped yet.
    pub(crate) fn running(&self) -> Vec<ChannelId> {
        self.map()
            .iter()
            .filter(|(_, e)| e.leader.as_ref().is_some_and(|l| l.pid > 0 && !l.reaped()))
            .map(|(c, _)| *c)
            .collect()
    }

    /// A client's `signal` request on `channel`; Ok(pid) when sent.
    pub(crate) fn signal(&self, channel: ChannelId, sig: Signal) -> Result<i32, Error> {
        let (leader, kind) = {
            let map = self.map();
            let e = map.get(&channel).ok_or(Error::NoSession)?;
            (e.leader.clone(), e.kind)
        };
        match kind {
            Kind::Forced => return Err(Error::SignalForced),
            Kind::Subsystem => return Err(Error::SignalSubsystem),
            Kind::Shell | Kind::Exec => {}
        }
        let leader = leader.ok_or(Error::NotStarted)?;
        leader.signal(sig, true)?;
        Ok(leader.pid)
    }

    /// Shutdown: SIGHUP to every session's process group (as mshd, not as the user).
    /// Returns the PIDs signalled.
    pub(crate) fn hangup_all(&self) -> Vec<i32> {
        let leaders: Vec<Arc<Leader>> = self
            .map()
            .values()
            .filter_map(|e| e.leader.clone())
            .collect();
        leaders
            .into_iter()
            .filter(|l| l.signal(Signal::SIGHUP, false).is_ok())
            .map(|l| l.pid)
            .collect()
    }

    /// The connection ended: close every pipe, PTY master and pidfd its sessions hold and
    /// forget them. Processes still running carry on as under sshd when the client vanishes
    /// (a PTY's processes get the hang-up, a pipe's get EOF/SIGPIPE); mshd reaps them.
    pub(crate) fn end(&self) {
        let entries: Vec<Entry> = self.map().drain().map(|(_, e)| e).collect();
        let mut left = 0;
        for e in entries {
            for t in e.io {
                t.abort();
            }
            if let Some(w) = e.waiter {
                w.abort();
            }
            if e.leader.as_ref().is_some_and(|l| !l.reaped()) {
                left += 1;
            }
        }
        if left > 0 {
            tracing::info!(
                "connection {}: {left} session process(es) still running at disconnect; their terminals and pipes are closed ({} left-over process(es) in all)",
                self.conn_id,
                orphans::count() + left
            );
        }
    }
}
