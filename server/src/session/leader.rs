//! A session's process leader and the reaper of leaders whose connection is gone.
#![forbid(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};

use nix::sys::signal::Signal;

use crate::error::Error;
use crate::sys;

/// A session's process leader. Reaping it and signalling it are serialised by one lock: while
/// the leader is not reaped its PID, and so its process group ID, cannot be reused by the
/// kernel, so a signal sent under the lock can only reach this session's processes. Once it
/// is reaped the session refuses signals (sshd clears `s->pid` at the same point).
pub(super) struct Leader {
    pub(super) pid: i32,
    /// Readable when the leader exits; also the handle for pidfd_send_signal.
    pidfd: Arc<OwnedFd>,
    /// The unreaped child; `None` once reaped.
    child: Mutex<Option<std::process::Child>>,
    /// Root mode: the user whose credentials a client's `signal` is sent with.
    owner: Option<(nix::unistd::Uid, nix::unistd::Gid)>,
    /// `use_pam`: the leader is the session's PAM keeper (crate::pam::keeper), and signals
    /// are asked of it through this socket (two bytes: the number, 1 for the user's
    /// credentials); it sends them to the program's group as below.
    control: Option<OwnedFd>,
}

impl Leader {
    /// The leader of a just-spawned, unreaped `child` (its PID is still its own) with a
    /// pidfd for it; `owner`: root mode's session user.
    pub(super) fn new(
        child: std::process::Child,
        pidfd: OwnedFd,
        owner: Option<(nix::unistd::Uid, nix::unistd::Gid)>,
    ) -> Self {
        Leader {
            pid: child.id() as i32,
            pidfd: Arc::new(pidfd),
            child: Mutex::new(Some(child)),
            owner,
            control: None,
        }
    }

    /// The leader is a PAM session keeper listening on `control` (see the field).
    pub(super) fn with_control(mut self, control: Option<OwnedFd>) -> Self {
        self.control = control;
        self
    }

    /// What a PAM session keeper reported before it exited (its own failure), if anything.
    pub(super) fn keeper_report(&self) -> Option<String> {
        self.control.as_ref().and_then(crate::pam::keeper_report)
    }
}

impl Leader {
    /// Sends `sig` to the session's process group (the leader's own group: a PTY session's
    /// child leads a new session, a pipe session's a new group), as sshd's killpg, or to the
    /// leader alone through its pidfd if the group is empty because the leader left it.
    /// `as_owner`: with the session user's credentials, as sshd's temporarily_use_uid, so a
    /// setuid program in the group is not signalled with root's authority.
    pub(super) fn signal(&self, sig: Signal, as_owner: bool) -> Result<(), Error> {
        let guard = self
            .child
            .lock()
            .map_err(|_| Error::Internal("session lock poisoned".into()))?;
        if guard.is_none() {
            return Err(Error::Exited(self.pid));
        }
        let Some(rsig) = rustix::process::Signal::from_named_raw(sig as i32) else {
            return Err(Error::Unsendable(sig));
        };
        if let Some(control) = &self.control {
            // The keeper is not reaped (checked under the lock), so it reads this.
            let sent = rustix::io::write(control, &[sig as i32 as u8, u8::from(as_owner)]);
            drop(guard);
            return match sent {
                Ok(2) => Ok(()),
                Ok(_) => Err(io::Error::other("short write to the PAM session keeper")),
                Err(e) => Err(io::Error::from(e)),
            }
            .map_err(|error| Error::Kill {
                pgid: -self.pid,
                signal: sig,
                error,
            });
        }
        let pid = self.pid;
        let pidfd = self.pidfd.clone();
        let send = move || -> io::Result<()> {
            let Some(p) = rustix::process::Pid::from_raw(pid) else {
                return Err(io::Error::other("no pid"));
            };
            match rustix::process::kill_process_group(p, rsig) {
                Err(rustix::io::Errno::SRCH) => {
                    rustix::process::pidfd_send_signal(pidfd.as_fd(), rsig).map_err(io::Error::from)
                }
                r => r.map_err(io::Error::from),
            }
        };
        let sent = match self.owner {
            Some((uid, gid)) if as_owner && !uid.is_root() => {
                sys::as_user(uid, gid, send).and_then(|r| r)
            }
            _ => send(),
        };
        drop(guard);
        sent.map_err(|error| Error::Kill {
            pgid: -pid,
            signal: sig,
            error,
        })
    }

    /// Reaps the leader if it has exited.
    fn try_reap(&self) -> Option<io::Result<std::process::ExitStatus>> {
        let mut guard = match self.child.lock() {
            Ok(g) => g,
            Err(_) => return Some(Err(io::Error::other("session lock poisoned"))),
        };
        let child = guard.as_mut()?;
        match child.try_wait() {
            Ok(None) => None,
            Ok(Some(st)) => {
                *guard = None;
                Some(Ok(st))
            }
            Err(e) => {
                *guard = None;
                Some(Err(e))
            }
        }
    }

    /// Waits until the leader exits and reaps it.
    pub(super) async fn wait(&self) -> io::Result<std::process::ExitStatus> {
        let fd = sys::async_fd(self.pidfd.clone())?;
        loop {
            if let Some(r) = self.try_reap() {
                return r;
            }
            let mut ready = fd.readable().await?;
            ready.clear_ready();
        }
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        // Still running when its session is forgotten (connection gone): only its PID is
        // kept, for the reaper, so no descriptor stays open for it.
        if let Ok(Some(_)) = self.child.get_mut().map(|c| c.take()) {
            orphans::adopt(self.pid);
        }
    }
}

/// Reaps session processes whose connection is gone, holding only their PIDs.
pub(super) mod orphans {
    use std::sync::{Mutex, OnceLock};

    struct Orphans {
        pids: Mutex<Vec<i32>>,
        poke: tokio::sync::Notify,
    }

    static ORPHANS: OnceLock<Orphans> = OnceLock::new();

    fn get() -> &'static Orphans {
        ORPHANS.get_or_init(|| {
            // First use is from a runtime task (a session being forgotten).
            tokio::spawn(reaper());
            Orphans {
                pids: Mutex::new(Vec::new()),
                poke: tokio::sync::Notify::new(),
            }
        })
    }

    pub(in crate::session) fn adopt(pid: i32) {
        let o = get();
        if let Ok(mut p) = o.pids.lock() {
            p.push(pid);
        }
        // It may have exited already (its SIGCHLD came and went): look once now.
        o.poke.notify_one();
    }

    pub(in crate::session) fn count() -> usize {
        ORPHANS
            .get()
            .and_then(|o| o.pids.lock().ok().map(|p| p.len()))
            .unwrap_or(0)
    }

    async fn reaper() {
        use tokio::signal::unix::{signal, SignalKind};
        let mut chld = match signal(SignalKind::child()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!("cannot watch SIGCHLD ({e}); left-over session processes are reaped once a minute");
                None
            }
        };
        loop {
            let o = get();
            tokio::select! {
                _ = async { match &mut chld { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {}
                _ = o.poke.notified() => {}
                _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
            }
            if let Ok(mut pids) = o.pids.lock() {
                // These are our own unreaped children, so their PIDs cannot have been reused.
                pids.retain(|&pid| {
                    matches!(
                        nix::sys::wait::waitpid(
                            nix::unistd::Pid::from_raw(pid),
                            Some(nix::sys::wait::WaitPidFlag::WNOHANG)
                        ),
                        Ok(nix::sys::wait::WaitStatus::StillAlive)
                    )
                });
            }
        }
    }
}

impl Leader {
    pub(super) fn reaped(&self) -> bool {
        self.child.lock().map(|c| c.is_none()).unwrap_or(true)
    }
}
