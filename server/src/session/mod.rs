//! Session channels: starting the user's shell or command (with or without a PTY, as the
//! user in root mode), streaming stdin/stdout/stderr with backpressure, and reporting
//! `exit-status` / `exit-signal` before EOF and close.
//!
//! Data path: russh hands every channel message to the channel's `Channel` queue; an input
//! pump drains it from the moment the channel opens and forwards stdin bytes through a small
//! bounded queue to the process, so a process that does not read its stdin slows the client
//! down instead of growing memory. Output tasks write through `Handle::data`, whose bounded
//! queue gives backpressure the other way. Nothing here blocks the runtime.
//!
//! Lifetime: [`Sessions`] holds, per connection, the `max_sessions` slots and what each
//! channel owns (the tasks that own its pipes or PTY master, and its process leader). A slot
//! is freed as soon as the channel is done, whoever closes it first; when the connection
//! ends every descriptor is closed and the processes are left to the kernel's hang-up (PTY)
//! or EOF/SIGPIPE (pipes), as when sshd's per-connection process exits; mshd only reaps them.
#![forbid(unsafe_code)]

mod leader;
mod plan;
mod spawn;
mod table;
mod tty;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use russh::server::{Handle, Msg};
use russh::{Channel, ChannelId, ChannelMsg, Pty, Sig};
use tokio::sync::mpsc;

use crate::audit::{Audit, AuditEvent};
use crate::error::Error;
use crate::sys;

pub(crate) use self::plan::{plan, ClientFacts, Launch, PamSession, Request};
pub(crate) use self::table::Sessions;

/// Bytes the client sent on the channel, or its EOF.
#[derive(Debug)]
pub(crate) enum Input {
    Data(Vec<u8>),
    Eof,
}

/// What a `pty-req` asked for.
#[derive(Debug, Clone)]
pub(crate) struct PtyReq {
    pub term: String,
    pub cols: u32,
    pub rows: u32,
    pub modes: Vec<(Pty, u32)>,
}

/// What a session runs. sshd refuses a client's `signal` to forced-command and subsystem
/// sessions (session_signal_req), and so does mshd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Shell,
    Exec,
    Subsystem,
    Forced,
}

/// A started session process.
pub(crate) struct Running {
    /// Resize requests for the PTY (window-change), when there is one.
    pub resize: Option<mpsc::UnboundedSender<(u16, u16)>>,
}

/// Context for the audit events a session writes.
#[derive(Clone)]
pub(crate) struct AuditCtx {
    pub audit: Audit,
    pub conn_id: u64,
    pub peer: String,
    pub user: String,
    /// The subsystem this session serves (audit field `subsystem`); set by [`start`].
    pub subsystem: Option<String>,
}

/// Once connections end, gives the memory they freed back to the kernel (see
/// [`sys::trim_heap`]): at most once a second, on the blocking pool, whatever the number of
/// connections ending together.
pub(crate) fn trim_heap_soon() {
    use std::sync::atomic::AtomicBool;
    static PENDING: AtomicBool = AtomicBool::new(false);
    if PENDING.swap(true, Ordering::AcqRel) {
        return;
    }
    tokio::spawn(async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        PENDING.store(false, Ordering::Release);
        let _ = tokio::task::spawn_blocking(sys::trim_heap).await;
    });
}

/// Descriptors one session can hold in mshd at most: its connection's socket (when it is the
/// only session on it), stdin, stdout and stderr pipes, the pidfd, and with `use_pam` the
/// control socket of its PAM keeper (a PTY session: the socket, the master, the pidfd and the
/// keeper's socket).
pub(crate) const FDS_PER_SESSION: u64 = 6;

/// How many sessions an open-file limit leaves room for, after the descriptors mshd needs for
/// itself (listeners, log files, the runtime's own).
pub(crate) fn sessions_for_fd_limit(limit: u64) -> u64 {
    limit.saturating_sub(64) / FDS_PER_SESSION
}

/// Drains the channel's message queue from the moment it opens, passing stdin on through a
/// bounded queue (capacity 8 chunks: enough to keep a pipe busy, small enough to stop a
/// client that floods a process which does not read). Once the process stops reading, the
/// rest is discarded so the connection never stalls on this channel.
pub(crate) fn spawn_input_pump(
    sessions: &Sessions,
    mut channel: Channel<Msg>,
) -> mpsc::Receiver<Input> {
    let id = channel.id();
    let (tx, rx) = mpsc::channel(8);
    let task = tokio::spawn(async move {
        let mut tx = Some(tx);
        while let Some(msg) = channel.wait().await {
            match msg {
                ChannelMsg::Data { data } => {
                    if let Some(t) = &tx {
                        if t.send(Input::Data(data.to_vec())).await.is_err() {
                            tx = None;
                        }
                    }
                }
                ChannelMsg::Eof => {
                    if let Some(t) = tx.take() {
                        let _ = t.send(Input::Eof).await;
                    }
                }
                ChannelMsg::Close => break,
                _ => {}
            }
        }
    });
    sessions.add_io(id, task.abort_handle());
    rx
}

/// Why the program of a subsystem command line cannot run, when that can be told before
/// starting it: an absolute path that does not exist, is not a regular file, or has no
/// execute bit. A bare name is left to the shell's PATH search (which reports its own error).
pub(crate) fn program_problem(command: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let program = command.split_whitespace().next()?;
    if !program.starts_with('/') {
        return None;
    }
    match std::fs::metadata(program) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Some(format!("{program} does not exist"))
        }
        Err(e) => Some(format!("cannot stat {program}: {e}")),
        Ok(m) if !m.is_file() => Some(format!("{program} is not a regular file")),
        Ok(m) if m.permissions().mode() & 0o111 == 0 => {
            Some(format!("{program} is not executable"))
        }
        Ok(_) => None,
    }
}

/// Starts the process and the tasks that connect it to the channel.
pub(crate) fn start(
    launch: Launch,
    channel: ChannelId,
    handle: Handle,
    input: mpsc::Receiver<Input>,
    audit: AuditCtx,
    sessions: Arc<Sessions>,
) -> Result<Running, Error> {
    let mut audit = audit;
    audit.subsystem = launch.subsystem.clone();
    audit.audit.emit(
        audit.conn_id,
        &audit.peer,
        &AuditEvent::SessionStart {
            user: &audit.user,
            command: &launch.command,
            pty: launch.pty.is_some(),
            subsystem: audit.subsystem.as_deref(),
        },
    );
    let ctx = SessionCtx {
        channel,
        handle,
        audit,
        sessions,
        kind: launch.kind,
    };
    if launch.pty.is_some() {
        tty::start_pty(launch, input, ctx)
    } else {
        spawn::start_pipes(launch, input, ctx)
    }
}

/// What the tasks of one session share.
pub(super) struct SessionCtx {
    pub(super) channel: ChannelId,
    pub(super) handle: Handle,
    pub(super) audit: AuditCtx,
    pub(super) sessions: Arc<Sessions>,
    pub(super) kind: Kind,
}

/// `TERM` for SIGTERM (the SSH name has no `SIG` prefix).
fn signal_name(sig: i32) -> String {
    match Signal::try_from(sig) {
        Ok(s) => s.as_str().trim_start_matches("SIG").to_string(),
        Err(_) => format!("{sig}"),
    }
}

fn to_ssh_sig(name: &str) -> Sig {
    match name {
        "ABRT" => Sig::ABRT,
        "ALRM" => Sig::ALRM,
        "FPE" => Sig::FPE,
        "HUP" => Sig::HUP,
        "ILL" => Sig::ILL,
        "INT" => Sig::INT,
        "KILL" => Sig::KILL,
        "PIPE" => Sig::PIPE,
        "QUIT" => Sig::QUIT,
        "SEGV" => Sig::SEGV,
        "TERM" => Sig::TERM,
        "USR1" => Sig::USR1,
        other => Sig::Custom(other.to_string()),
    }
}

/// The local signal for an SSH `signal` request (RFC 4254 names, without `SIG`).
pub(crate) fn from_ssh_sig(sig: &Sig) -> Option<Signal> {
    Some(match sig {
        Sig::ABRT => Signal::SIGABRT,
        Sig::ALRM => Signal::SIGALRM,
        Sig::FPE => Signal::SIGFPE,
        Sig::HUP => Signal::SIGHUP,
        Sig::ILL => Signal::SIGILL,
        Sig::INT => Signal::SIGINT,
        Sig::KILL => Signal::SIGKILL,
        Sig::PIPE => Signal::SIGPIPE,
        Sig::QUIT => Signal::SIGQUIT,
        Sig::SEGV => Signal::SIGSEGV,
        Sig::TERM => Signal::SIGTERM,
        Sig::USR1 => Signal::SIGUSR1,
        Sig::Custom(name) => match name.as_str() {
            "USR2" => Signal::SIGUSR2,
            "CONT" => Signal::SIGCONT,
            "STOP" => Signal::SIGSTOP,
            "TSTP" => Signal::SIGTSTP,
            "WINCH" => Signal::SIGWINCH,
            _ => return None,
        },
    })
}
