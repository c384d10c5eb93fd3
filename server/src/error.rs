//! The server's error type for what it does for an authenticated client: starting a session
//! and acting on one. Each message is what the log says (the client only gets
//! `channel_failure`); the underlying error's text is part of the message, so it is shown
//! with `{}` and has no separate `source`.
#![forbid(unsafe_code)]

use std::io;
use std::path::PathBuf;

use nix::sys::signal::Signal;
use russh::ChannelId;

/// Why a session request or a `signal` request was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A session request arrived before a key was accepted.
    #[error("session request before authentication")]
    NotAuthenticated,
    /// A request named a channel that is not open.
    #[error("request on unknown channel {0:?}")]
    UnknownChannel(ChannelId),
    /// A second `shell`/`exec`/`subsystem` on the same channel.
    #[error("a shell or command already runs on this channel")]
    AlreadyRunning,
    /// The configured program of a subsystem cannot run (checked before the start).
    #[error("subsystem {name:?} for {user} failed: {problem} (`subsystems` in {config})", config = .config.display())]
    Subsystem {
        /// The subsystem's name.
        name: String,
        /// The account.
        user: String,
        /// What is wrong with the program (from `session::program_problem`).
        problem: String,
        /// The config file that configures it.
        config: PathBuf,
    },
    /// The user's supplementary groups could not be read (root mode, at each session).
    #[error("cannot read the groups of {user:?}: {error}")]
    Groups {
        /// The account.
        user: String,
        /// What getgrouplist said.
        error: String,
    },
    /// Starting the process failed; `what` says which step (`cannot allocate a PTY`, ...).
    #[error("{what}: {error}")]
    Start {
        /// The step that failed.
        what: String,
        /// Why.
        error: String,
    },
    /// No session process on the channel to signal.
    #[error("no session on this channel")]
    NoSession,
    /// sshd refuses a client's `signal` to forced-command sessions (session_signal_req).
    #[error("refusing to signal a forced-command session")]
    SignalForced,
    /// ... and to subsystem sessions.
    #[error("refusing to signal a subsystem session")]
    SignalSubsystem,
    /// The channel's process has not been started yet.
    #[error("no process runs on this channel yet")]
    NotStarted,
    /// The session's leader was reaped: its PID may have been reused, so no signal is sent.
    #[error("process {0} has already exited")]
    Exited(i32),
    /// The signal has no number here.
    #[error("{0} cannot be sent")]
    Unsendable(Signal),
    /// kill(2) or pidfd_send_signal(2) failed.
    #[error("kill({pgid}, {signal}): {error}")]
    Kill {
        /// The process group (negative, as kill(2) takes it).
        pgid: i32,
        /// The signal.
        signal: Signal,
        /// What the kernel said.
        error: io::Error,
    },
    /// Something that should not happen (a panicked task, a poisoned lock).
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// A failed start step: `what` (`cannot allocate a PTY`) and the error's text.
    pub(crate) fn start(what: impl Into<String>, error: impl std::fmt::Display) -> Self {
        Error::Start {
            what: what.into(),
            error: error.to_string(),
        }
    }
}
