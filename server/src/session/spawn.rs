//! Starting a session's process (fork, the child's set-up through [`crate::sys`], exec) and,
//! without a PTY, connecting its stdin/stdout/stderr pipes to the channel; then reporting
//! its end (`exit-status`/`exit-signal`, EOF, close, the `session_end` audit event).
#![forbid(unsafe_code)]

use std::ffi::CString;
use std::future::Future;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use russh::server::Handle;
use russh::ChannelId;
use tokio::io::unix::AsyncFd;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinHandle};

use super::leader::Leader;
use super::{signal_name, to_ssh_sig, Input, Launch, Running, SessionCtx};
use crate::audit::{AuditEvent, Exit};
use crate::error::Error;
use crate::sys::{self, ChildSetup};

/// The command that starts the session's program; with `use_pam`, the PAM session keeper
/// that starts it (crate::pam), and the write end of the keeper's control pipe. `tty`: the
/// PTY's path, for PAM_TTY.
pub(super) fn base_command(
    launch: &Launch,
    pty: bool,
    tty: Option<&std::path::Path>,
) -> Result<(std::process::Command, Option<OwnedFd>), Error> {
    if let (Some(p), Some(id)) = (&launch.pam, &launch.identity) {
        let spec = crate::pam::spec(
            &p.service,
            &launch.user,
            &p.rhost,
            pty,
            tty,
            id,
            &launch.home,
            &launch.program,
            &launch.argv0,
            &launch.args,
            &launch.env,
        );
        let (cmd, control) = crate::pam::keeper_command(&spec)
            .map_err(|e| Error::start("cannot prepare the PAM session", e))?;
        return Ok((cmd, Some(control)));
    }
    let mut cmd = std::process::Command::new(&launch.program);
    cmd.arg0(&launch.argv0)
        .args(&launch.args)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let home = CString::new(launch.home.as_os_str().as_bytes()).map_err(|_| {
        Error::start(
            format!("home directory {}", launch.home.display()),
            "contains a NUL byte",
        )
    })?;
    let mut home_note = b"Could not chdir to home directory ".to_vec();
    home_note.extend_from_slice(launch.home.as_os_str().as_bytes());
    home_note.extend_from_slice(b": ");
    sys::prepare_child(
        &mut cmd,
        ChildSetup {
            pty,
            identity: launch.identity.clone(),
            home,
            home_note,
        },
    );
    Ok((cmd, None))
}

/// Spawns `cmd` and takes a pidfd for it.
pub(super) fn spawn(
    (mut cmd, control): (std::process::Command, Option<OwnedFd>),
    launch: &Launch,
) -> Result<(Stdio3, Arc<Leader>), Error> {
    let mut child = cmd.spawn().map_err(|e| {
        let what = match launch.pam {
            // mshd itself, re-executed (crate::pam): /proc must be mounted.
            Some(_) => "cannot start the PAM session keeper (/proc/self/exe)".to_string(),
            None => format!("cannot start {}", launch.program.display()),
        };
        Error::start(what, sys::spawn_error(&e))
    })?;
    // The parent's copies of the child's stdio (the PTY slave) close with the command.
    drop(cmd);
    let pid = child.id() as i32;
    // Race-free: the child is ours and not reaped, so the PID still names it.
    let pidfd = rustix::process::Pid::from_raw(pid)
        .ok_or_else(|| io::Error::other("pid 0"))
        .and_then(|p| {
            rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty())
                .map_err(io::Error::from)
        });
    let pidfd = match pidfd {
        Ok(fd) => fd,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::start(
                "cannot open a pidfd for the session process",
                e,
            ));
        }
    };
    let stdio = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let owner = launch.identity.as_ref().map(|i| (i.uid, i.gid));
    let leader = Arc::new(Leader::new(child, pidfd, owner).with_control(control));
    Ok((stdio, leader))
}

type Stdio3 = (
    Option<std::process::ChildStdin>,
    Option<std::process::ChildStdout>,
    Option<std::process::ChildStderr>,
);

pub(super) fn start_pipes(
    launch: Launch,
    input: mpsc::Receiver<Input>,
    ctx: SessionCtx,
) -> Result<Running, Error> {
    let (mut cmd, control) = base_command(&launch, false, None)?;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let ((stdin, stdout, stderr), leader) = spawn((cmd, control), &launch)?;
    let watch = |e: io::Error| Error::start("cannot watch the session's pipes", e);
    let stdin = stdin
        .map(tokio::process::ChildStdin::from_std)
        .transpose()
        .map_err(watch)?;
    let stdout = stdout
        .map(|p| Fd::new(OwnedFd::from(p)))
        .transpose()
        .map_err(watch)?;
    let stderr = stderr
        .map(|p| Fd::new(OwnedFd::from(p)))
        .transpose()
        .map_err(watch)?;
    let started = Instant::now();

    let bytes_in = Arc::new(AtomicU64::new(0));
    let counter = bytes_in.clone();
    let in_task = tokio::spawn(async move {
        let Some(mut stdin) = stdin else { return };
        let mut input = input;
        while let Some(msg) = input.recv().await {
            match msg {
                Input::Data(d) => {
                    counter.fetch_add(d.len() as u64, Ordering::Relaxed);
                    if stdin.write_all(&d).await.is_err() {
                        break;
                    }
                }
                Input::Eof => break,
            }
        }
        // Dropping stdin closes the pipe: the process sees EOF.
    });
    let out_task = stdout.map(|r| tokio::spawn(pump_out(r, ctx.handle.clone(), ctx.channel, None)));
    let err_task =
        stderr.map(|r| tokio::spawn(pump_out(r, ctx.handle.clone(), ctx.channel, Some(1))));
    let mut io = vec![in_task.abort_handle()];
    io.extend(
        out_task
            .iter()
            .chain(err_task.iter())
            .map(|t| t.abort_handle()),
    );

    // As OpenSSH without a PTY: output is forwarded until every writer closed the pipes.
    let output = async move {
        let mut bytes_out = 0;
        for t in [out_task, err_task].into_iter().flatten() {
            bytes_out += t.await.unwrap_or(0);
        }
        bytes_out
    };
    let input = (in_task, bytes_in);
    spawn_waiter(leader, ctx, io, input, started, output);
    Ok(Running { resize: None })
}

/// Starts the task that reaps the session's leader, then waits for `output` (what is left of
/// the output forwarded; its byte count), stops the input task and reports the end
/// ([`finish`]); records the process and the I/O tasks in the connection's channel table.
pub(super) fn spawn_waiter(
    leader: Arc<Leader>,
    ctx: SessionCtx,
    io: Vec<AbortHandle>,
    (in_task, bytes_in): (JoinHandle<()>, Arc<AtomicU64>),
    started: Instant,
    output: impl Future<Output = u64> + Send + 'static,
) {
    let waited = leader.clone();
    let sessions = ctx.sessions.clone();
    let (channel, kind) = (ctx.channel, ctx.kind);
    let waiter = tokio::spawn(async move {
        let status = waited.wait().await;
        if let Some(report) = waited.keeper_report() {
            tracing::warn!(
                "connection {} from {}: session of {}: {}",
                ctx.audit.conn_id,
                ctx.audit.peer,
                crate::logsafe::user(&ctx.audit.user),
                crate::logsafe::clean(&report, 1024)
            );
        }
        drop(waited);
        let bytes_out = output.await;
        in_task.abort();
        let bytes_in = bytes_in.load(Ordering::Relaxed);
        finish(status, &ctx, started, bytes_in, bytes_out).await;
    });
    sessions.attach(channel, io, waiter.abort_handle(), leader, kind);
}

/// A non-blocking descriptor registered with tokio: a session's stdout or stderr pipe, or
/// its PTY master. Reads allocate their buffer only once the descriptor is readable and drop it
/// when it runs dry, so an idle session holds no buffer at all.
pub(super) struct Fd(pub(super) AsyncFd<Arc<OwnedFd>>);

/// The largest read from a session's output (two maximum-size SSH packets' worth).
const CHUNK: usize = 64 * 1024;

impl Fd {
    pub(super) fn new(fd: OwnedFd) -> io::Result<Arc<Fd>> {
        rustix::io::ioctl_fionbio(&fd, true)?;
        Ok(Arc::new(Fd(sys::async_fd(Arc::new(fd))?)))
    }

    /// The next bytes (empty at EOF; on a PTY master, EIO once the terminal is gone is EOF).
    /// `buf` is kept between reads while data flows and released when the descriptor would
    /// block.
    pub(super) async fn read(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        loop {
            let mut ready = self.0.readable().await?;
            if buf.capacity() == 0 {
                *buf = Vec::with_capacity(CHUNK);
            }
            buf.clear();
            match ready.try_io(|fd| {
                rustix::io::read(fd.get_ref(), rustix::buffer::spare_capacity(&mut *buf))
                    .map_err(io::Error::from)
            }) {
                Ok(r) => return r,
                Err(_would_block) => *buf = Vec::new(),
            }
        }
    }

    pub(super) async fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let mut ready = self.0.writable().await?;
            match ready.try_io(|fd| rustix::io::write(fd.get_ref(), data).map_err(io::Error::from))
            {
                Ok(Ok(n)) => data = data.get(n..).unwrap_or_default(),
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => {}
            }
        }
        Ok(())
    }
}

/// Copies one output stream to the channel (stdout as data, stderr as extended data 1).
/// Read errors end the stream: on a PTY master, EIO after the child exited is the EOF.
pub(super) async fn pump_out(
    fd: Arc<Fd>,
    handle: Handle,
    channel: ChannelId,
    ext: Option<u32>,
) -> u64 {
    let mut buf = Vec::new();
    let mut total = 0u64;
    loop {
        let n = match fd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        total += n as u64;
        // A large read hands its buffer on as it is (the next read allocates a fresh one); a
        // small one is copied, so that a queued chunk of an interactive session does not hold
        // a whole 64 KiB buffer.
        let chunk = if n >= CHUNK / 2 {
            let mut whole = std::mem::take(&mut buf);
            whole.truncate(n);
            whole
        } else {
            buf.get(..n).unwrap_or_default().to_vec()
        };
        let sent = match ext {
            None => handle.data(channel, chunk).await.is_ok(),
            Some(e) => handle.extended_data(channel, e, chunk).await.is_ok(),
        };
        if !sent {
            break;
        }
    }
    total
}

/// Sends EOF, the exit status (or the signal that killed the process), and closes.
pub(super) async fn finish(
    status: io::Result<std::process::ExitStatus>,
    ctx: &SessionCtx,
    started: Instant,
    bytes_in: u64,
    bytes_out: u64,
) {
    let (channel, handle, audit) = (ctx.channel, &ctx.handle, &ctx.audit);
    ctx.sessions.release_slot(channel);
    let _ = handle.eof(channel).await;
    let duration_ms = started.elapsed().as_millis() as u64;
    let mut exit = None;
    match status {
        Ok(st) => {
            if let Some(code) = st.code() {
                let _ = handle.exit_status_request(channel, code as u32).await;
                exit = Some(Exit::ExitStatus(code));
            } else if let Some(sig) = st.signal() {
                let name = signal_name(sig);
                let _ = handle
                    .exit_signal_request(
                        channel,
                        to_ssh_sig(&name),
                        st.core_dumped(),
                        String::new(),
                        String::new(),
                    )
                    .await;
                exit = Some(Exit::ExitSignal(name));
            }
        }
        Err(e) => {
            tracing::warn!("waiting for the session process failed: {e}");
        }
    }
    audit.audit.emit(
        audit.conn_id,
        &audit.peer,
        &AuditEvent::SessionEnd {
            user: &audit.user,
            exit,
            bytes_in,
            bytes_out,
            duration_ms,
            subsystem: audit.subsystem.as_deref(),
        },
    );
    let _ = handle.close(channel).await;
    ctx.sessions.finished(channel);
}
