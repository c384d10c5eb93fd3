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

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use russh::server::{Handle, Msg};
use russh::{Channel, ChannelId, ChannelMsg, Pty, Sig};
use serde_json::Value;
use tokio::io::unix::AsyncFd;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::AbortHandle;

use crate::audit::Audit;
use crate::sys::{self, ChildSetup, Identity};

/// Bytes the client sent on the channel, or its EOF.
#[derive(Debug)]
pub enum Input {
    Data(Vec<u8>),
    Eof,
}

/// What a `pty-req` asked for.
#[derive(Debug, Clone)]
pub struct PtyReq {
    pub term: String,
    pub cols: u32,
    pub rows: u32,
    pub modes: Vec<(Pty, u32)>,
}

/// What a session runs. sshd refuses a client's `signal` to forced-command and subsystem
/// sessions (session_signal_req), and so does mshd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Shell,
    Exec,
    Subsystem,
    Forced,
}

/// Everything needed to start one session process.
pub struct Launch {
    /// The program (the user's shell).
    pub program: PathBuf,
    /// argv[0]: `-bash` for a login shell, `bash` for `bash -c`.
    pub argv0: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Entered by the child after the privilege drop (`/` if it cannot).
    pub home: PathBuf,
    pub pty: Option<PtyReq>,
    /// Root mode: who the child becomes before exec.
    pub identity: Option<Identity>,
    /// What to log as the command (`shell`, the command line, or `subsystem:NAME`).
    pub command: String,
    /// The subsystem requested (`sftp`), also when a forced command runs instead.
    pub subsystem: Option<String>,
    pub kind: Kind,
}

/// A started session process.
pub struct Running {
    /// Resize requests for the PTY (window-change), when there is one.
    pub resize: Option<mpsc::UnboundedSender<(u16, u16)>>,
}

/// Context for the audit events a session writes.
#[derive(Clone)]
pub struct AuditCtx {
    pub audit: Audit,
    pub conn_id: u64,
    pub peer: String,
    pub user: String,
    /// The subsystem this session serves (audit field `subsystem`); set by [`start`].
    pub subsystem: Option<String>,
}

/// A session's process leader. Reaping it and signalling it are serialised by one lock: while
/// the leader is not reaped its PID, and so its process group ID, cannot be reused by the
/// kernel, so a signal sent under the lock can only reach this session's processes. Once it
/// is reaped the session refuses signals (sshd clears `s->pid` at the same point).
pub struct Leader {
    pid: i32,
    /// Readable when the leader exits; also the handle for pidfd_send_signal.
    pidfd: Arc<OwnedFd>,
    /// The unreaped child; `None` once reaped.
    child: Mutex<Option<std::process::Child>>,
    /// Root mode: the user whose credentials a client's `signal` is sent with.
    owner: Option<(nix::unistd::Uid, nix::unistd::Gid)>,
}

impl Leader {
    /// Sends `sig` to the session's process group (the leader's own group: a PTY session's
    /// child leads a new session, a pipe session's a new group), as sshd's killpg, or to the
    /// leader alone through its pidfd if the group is empty because the leader left it.
    /// `as_owner`: with the session user's credentials, as sshd's temporarily_use_uid, so a
    /// setuid program in the group is not signalled with root's authority.
    fn signal(&self, sig: Signal, as_owner: bool) -> Result<(), String> {
        let guard = self
            .child
            .lock()
            .map_err(|_| "internal: session lock poisoned".to_string())?;
        if guard.is_none() {
            return Err(format!("process {} has already exited", self.pid));
        }
        let Some(rsig) = rustix::process::Signal::from_named_raw(sig as i32) else {
            return Err(format!("{sig} cannot be sent"));
        };
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
        sent.map_err(|e| format!("kill({}, {sig}): {e}", -pid))
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
    async fn wait(&self) -> io::Result<std::process::ExitStatus> {
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
mod orphans {
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

    pub(super) fn adopt(pid: i32) {
        let o = get();
        if let Ok(mut p) = o.pids.lock() {
            p.push(pid);
        }
        // It may have exited already (its SIGCHLD came and went): look once now.
        o.poke.notify_one();
    }

    pub(super) fn count() -> usize {
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

/// What one channel holds.
struct Entry {
    /// Its `max_sessions` slot, until the channel is done.
    slot: Option<OwnedSemaphorePermit>,
    /// The input pump and the I/O tasks: aborting them drops the pipes and the PTY master.
    io: Vec<AbortHandle>,
    /// The task that reaps the process and reports its exit.
    waiter: Option<AbortHandle>,
    leader: Option<Arc<Leader>>,
    kind: Kind,
}

/// The session channels of one connection (see the module doc).
pub struct Sessions {
    conn_id: u64,
    slots: Arc<Semaphore>,
    map: Mutex<HashMap<ChannelId, Entry>>,
}

impl Sessions {
    pub fn new(conn_id: u64, max_sessions: u32) -> Arc<Self> {
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
    pub fn open(&self, channel: ChannelId) -> bool {
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            return false;
        };
        self.map().insert(
            channel,
            Entry {
                slot: Some(slot),
                io: Vec::new(),
                waiter: None,
                leader: None,
                kind: Kind::Shell,
            },
        );
        true
    }

    /// Whether `channel` is open and holds a slot.
    pub fn is_open(&self, channel: ChannelId) -> bool {
        self.map().get(&channel).is_some_and(|e| e.slot.is_some())
    }

    /// Adds a task to the channel's I/O (aborted when the channel or connection ends).
    fn add_io(&self, channel: ChannelId, task: AbortHandle) {
        match self.map().get_mut(&channel) {
            Some(e) if e.slot.is_some() => e.io.push(task),
            _ => task.abort(),
        }
    }

    /// Records the started process. If the channel was closed meanwhile, its I/O is dropped
    /// at once (the process sees the hang-up or EOF), the waiter still reaps it.
    fn attach(
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
    pub fn close(&self, channel: ChannelId) {
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
    fn release_slot(&self, channel: ChannelId) {
        if let Some(e) = self.map().get_mut(&channel) {
            e.slot = None;
        }
    }

    /// The session sent its close: forget the channel.
    fn finished(&self, channel: ChannelId) {
        let entry = self.map().remove(&channel);
        if let Some(e) = entry {
            for t in e.io {
                t.abort();
            }
        }
    }

    /// Channels with a session process that has not been reaped yet.
    pub fn running(&self) -> Vec<ChannelId> {
        self.map()
            .iter()
            .filter(|(_, e)| e.leader.as_ref().is_some_and(|l| l.pid > 0 && !l.reaped()))
            .map(|(c, _)| *c)
            .collect()
    }

    /// A client's `signal` request on `channel`; Ok(pid) when sent.
    pub fn signal(&self, channel: ChannelId, sig: Signal) -> Result<i32, String> {
        let (leader, kind) = {
            let map = self.map();
            let e = map.get(&channel).ok_or("no session on this channel")?;
            (e.leader.clone(), e.kind)
        };
        match kind {
            Kind::Forced => return Err("refusing to signal a forced-command session".into()),
            Kind::Subsystem => return Err("refusing to signal a subsystem session".into()),
            Kind::Shell | Kind::Exec => {}
        }
        let leader = leader.ok_or("no process runs on this channel yet")?;
        leader.signal(sig, true)?;
        Ok(leader.pid)
    }

    /// Shutdown: SIGHUP to every session's process group (as mshd, not as the user).
    /// Returns the PIDs signalled.
    pub fn hangup_all(&self) -> Vec<i32> {
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
    pub fn end(&self) {
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

impl Leader {
    fn reaped(&self) -> bool {
        self.child.lock().map(|c| c.is_none()).unwrap_or(true)
    }
}

/// Once connections end, gives the memory they freed back to the kernel (see
/// [`sys::trim_heap`]): at most once a second, on the blocking pool, whatever the number of
/// connections ending together.
pub fn trim_heap_soon() {
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
/// only session on it), stdin, stdout and stderr pipes, and the pidfd (a PTY session: the
/// socket, the master and the pidfd).
pub const FDS_PER_SESSION: u64 = 5;

/// How many sessions an open-file limit leaves room for, after the descriptors mshd needs for
/// itself (listeners, log files, the runtime's own).
pub fn sessions_for_fd_limit(limit: u64) -> u64 {
    limit.saturating_sub(64) / FDS_PER_SESSION
}

/// Drains the channel's message queue from the moment it opens, passing stdin on through a
/// bounded queue (capacity 8 chunks: enough to keep a pipe busy, small enough to stop a
/// client that floods a process which does not read). Once the process stops reading, the
/// rest is discarded so the connection never stalls on this channel.
pub fn spawn_input_pump(sessions: &Sessions, mut channel: Channel<Msg>) -> mpsc::Receiver<Input> {
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
pub fn program_problem(command: &str) -> Option<String> {
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
pub fn start(
    launch: Launch,
    channel: ChannelId,
    handle: Handle,
    input: mpsc::Receiver<Input>,
    audit: AuditCtx,
    sessions: Arc<Sessions>,
) -> Result<Running, String> {
    let mut audit = audit;
    audit.subsystem = launch.subsystem.clone();
    audit.audit.event(
        "session_start",
        audit.conn_id,
        &audit.peer,
        &[
            ("user", Value::from(audit.user.as_str())),
            ("command", Value::from(launch.command.as_str())),
            ("pty", Value::from(launch.pty.is_some())),
            ("subsystem", Value::from(audit.subsystem.clone())),
        ],
    );
    let ctx = SessionCtx {
        channel,
        handle,
        audit,
        sessions,
        kind: launch.kind,
    };
    if launch.pty.is_some() {
        start_pty(launch, input, ctx)
    } else {
        start_pipes(launch, input, ctx)
    }
}

/// What the tasks of one session share.
struct SessionCtx {
    channel: ChannelId,
    handle: Handle,
    audit: AuditCtx,
    sessions: Arc<Sessions>,
    kind: Kind,
}

fn base_command(launch: &Launch, pty: bool) -> Result<std::process::Command, String> {
    let mut cmd = std::process::Command::new(&launch.program);
    cmd.arg0(&launch.argv0)
        .args(&launch.args)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let home = CString::new(launch.home.as_os_str().as_bytes()).map_err(|_| {
        format!(
            "home directory {} contains a NUL byte",
            launch.home.display()
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
    Ok(cmd)
}

/// Spawns `cmd` and takes a pidfd for it.
fn spawn(mut cmd: std::process::Command, launch: &Launch) -> Result<(Stdio3, Arc<Leader>), String> {
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", launch.program.display()))?;
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
            return Err(format!("cannot open a pidfd for the session process: {e}"));
        }
    };
    let stdio = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let leader = Arc::new(Leader {
        pid,
        pidfd: Arc::new(pidfd),
        child: Mutex::new(Some(child)),
        owner: launch.identity.as_ref().map(|i| (i.uid, i.gid)),
    });
    Ok((stdio, leader))
}

type Stdio3 = (
    Option<std::process::ChildStdin>,
    Option<std::process::ChildStdout>,
    Option<std::process::ChildStderr>,
);

fn start_pipes(
    launch: Launch,
    input: mpsc::Receiver<Input>,
    ctx: SessionCtx,
) -> Result<Running, String> {
    let mut cmd = base_command(&launch, false)?;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let ((stdin, stdout, stderr), leader) = spawn(cmd, &launch)?;
    let watch = |e: io::Error| format!("cannot watch the session's pipes: {e}");
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

    let waited = leader.clone();
    let sessions = ctx.sessions.clone();
    let (channel, kind) = (ctx.channel, ctx.kind);
    let waiter = tokio::spawn(async move {
        let status = waited.wait().await;
        drop(waited);
        let mut bytes_out = 0;
        // As OpenSSH without a PTY: output is forwarded until every writer closed the pipes.
        for t in [out_task, err_task].into_iter().flatten() {
            bytes_out += t.await.unwrap_or(0);
        }
        in_task.abort();
        let bytes_in = bytes_in.load(Ordering::Relaxed);
        finish(status, &ctx, started, bytes_in, bytes_out).await;
    });
    sessions.attach(channel, io, waiter.abort_handle(), leader, kind);
    Ok(Running { resize: None })
}

/// A non-blocking descriptor registered with tokio: a session's stdout or stderr pipe, or
/// its PTY master. Reads allocate their buffer only once the descriptor is readable and drop it
/// when it runs dry, so an idle session holds no buffer at all.
struct Fd(AsyncFd<Arc<OwnedFd>>);

/// The largest read from a session's output (two maximum-size SSH packets' worth).
const CHUNK: usize = 64 * 1024;

impl Fd {
    fn new(fd: OwnedFd) -> io::Result<Arc<Fd>> {
        rustix::io::ioctl_fionbio(&fd, true)?;
        Ok(Arc::new(Fd(sys::async_fd(Arc::new(fd))?)))
    }

    /// The next bytes (empty at EOF; on a PTY master, EIO once the terminal is gone is EOF).
    /// `buf` is kept between reads while data flows and released when the descriptor would
    /// block.
    async fn read(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
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

    async fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
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

/// Opens a PTY pair, both ends close-on-exec from the start: pty-process 0.5 opened
/// /dev/ptmx without O_CLOEXEC and set it afterwards, so a session started for another
/// connection in between inherited this session's terminal.
fn open_pty() -> io::Result<(Arc<Fd>, OwnedFd)> {
    use rustix::pty::{grantpt, ioctl_tiocgptpeer, openpt, unlockpt, OpenptFlags};
    let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
    let master = openpt(flags)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    // The slave through the master (TIOCGPTPEER), not by its /dev/pts name, which another
    // process could race to replace.
    let slave = ioctl_tiocgptpeer(&master, flags)?;
    Ok((Fd::new(master)?, slave))
}

fn set_size(master: &Fd, rows: u16, cols: u16) -> io::Result<()> {
    let ws = rustix::termios::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(master.0.get_ref(), ws).map_err(io::Error::from)
}

fn start_pty(
    launch: Launch,
    input: mpsc::Receiver<Input>,
    ctx: SessionCtx,
) -> Result<Running, String> {
    let Some(req) = launch.pty.clone() else {
        return Err("internal: no pty request".into());
    };
    let (master, pts) = open_pty().map_err(|e| format!("cannot allocate a PTY: {e}"))?;
    set_size(&master, clamp16(req.rows), clamp16(req.cols))
        .map_err(|e| format!("cannot set the PTY size: {e}"))?;
    apply_modes(&pts, &req.modes);
    let tty_path = nix::unistd::ttyname(pts.as_fd()).ok();
    if let Some(id) = &launch.identity {
        // As sshd: the user owns their terminal (group tty, mode 0620).
        let tty_gid = nix::unistd::Group::from_name("tty")
            .ok()
            .flatten()
            .map(|g| g.gid);
        if let Err(e) = nix::unistd::fchown(pts.as_fd(), Some(id.uid), tty_gid) {
            return Err(format!("cannot give the PTY to uid {}: {e}", id.uid));
        }
        if let Err(e) =
            nix::sys::stat::fchmod(pts.as_fd(), nix::sys::stat::Mode::from_bits_truncate(0o620))
        {
            return Err(format!("cannot set the PTY's mode: {e}"));
        }
    }
    let mut launch = launch;
    if let Some(p) = &tty_path {
        launch.env.push(("SSH_TTY".into(), p.display().to_string()));
    }
    let mut cmd = base_command(&launch, true)?;
    let stdio = |fd: &OwnedFd| {
        fd.try_clone()
            .map(Stdio::from)
            .map_err(|e| format!("cannot duplicate the PTY: {e}"))
    };
    cmd.stdin(stdio(&pts)?)
        .stdout(stdio(&pts)?)
        .stderr(stdio(&pts)?);
    drop(pts);
    let (_, leader) = spawn(cmd, &launch)?;
    let started = Instant::now();
    let writer = master.clone();
    let (resize_tx, mut resize_rx) = mpsc::unbounded_channel::<(u16, u16)>();

    let bytes_in = Arc::new(AtomicU64::new(0));
    let counter = bytes_in.clone();
    let in_task = tokio::spawn(async move {
        let mut input = input;
        let mut input_open = true;
        loop {
            tokio::select! {
                // Resizes first: a window-change reaches this task directly from the handler,
                // while data that the client sent after it comes through the channel pump, so
                // both can be pending at once; applying the resize first keeps the client's
                // order (a `stty size` typed after a resize sees the new size).
                biased;
                sz = resize_rx.recv() => match sz {
                    Some((rows, cols)) => {
                        let _ = set_size(&writer, rows, cols);
                    }
                    None => break,
                },
                msg = input.recv(), if input_open => match msg {
                    Some(Input::Data(d)) => {
                        counter.fetch_add(d.len() as u64, Ordering::Relaxed);
                        if writer.write_all(&d).await.is_err() {
                            input_open = false;
                        }
                    }
                    // A PTY cannot be half-closed; as sshd, EOF from the client is noted
                    // and the terminal stays open for output.
                    Some(Input::Eof) | None => input_open = false,
                },
            }
        }
    });
    // Only the two tasks hold the master: when both end or are aborted, it closes.
    let mut out_task = tokio::spawn(pump_out(master, ctx.handle.clone(), ctx.channel, None));
    let io = vec![in_task.abort_handle(), out_task.abort_handle()];

    let waited = leader.clone();
    let sessions = ctx.sessions.clone();
    let (channel, kind) = (ctx.channel, ctx.kind);
    let waiter = tokio::spawn(async move {
        let status = waited.wait().await;
        drop(waited);
        // The master returns EIO once every slave fd is closed; a background job keeping the
        // terminal open must not keep the session alive forever after the shell exited.
        let bytes_out = match tokio::time::timeout(Duration::from_secs(2), &mut out_task).await {
            Ok(r) => r.unwrap_or(0),
            Err(_) => {
                out_task.abort();
                0
            }
        };
        in_task.abort();
        let bytes_in = bytes_in.load(Ordering::Relaxed);
        finish(status, &ctx, started, bytes_in, bytes_out).await;
    });
    sessions.attach(channel, io, waiter.abort_handle(), leader, kind);
    Ok(Running {
        resize: Some(resize_tx),
    })
}

fn clamp16(v: u32) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
}

/// Copies one output stream to the channel (stdout as data, stderr as extended data 1).
/// Read errors end the stream: on a PTY master, EIO after the child exited is the EOF.
async fn pump_out(fd: Arc<Fd>, handle: Handle, channel: ChannelId, ext: Option<u32>) -> u64 {
    let mut buf = Vec::new();
    let mut total = 0u64;
    loop {
        let n = match fd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        total += n as u64;
        let chunk = buf.get(..n).unwrap_or_default().to_vec();
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
async fn finish(
    status: io::Result<std::process::ExitStatus>,
    ctx: &SessionCtx,
    started: Instant,
    bytes_in: u64,
    bytes_out: u64,
) {
    let (channel, handle, audit) = (ctx.channel, &ctx.handle, &ctx.audit);
    ctx.sessions.release_slot(channel);
    let _ = handle.eof(channel).await;
    let mut fields: Vec<(&str, Value)> = vec![
        ("user", Value::from(audit.user.as_str())),
        (
            "duration_ms",
            Value::from(started.elapsed().as_millis() as u64),
        ),
        ("bytes_out", Value::from(bytes_out)),
        ("subsystem", Value::from(audit.subsystem.clone())),
    ];
    fields.push(("bytes_in", Value::from(bytes_in)));
    match status {
        Ok(st) => {
            if let Some(code) = st.code() {
                let _ = handle.exit_status_request(channel, code as u32).await;
                fields.push(("exit_status", Value::from(code)));
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
                fields.push(("exit_signal", Value::from(name)));
            }
        }
        Err(e) => {
            tracing::warn!("waiting for the session process failed: {e}");
        }
    }
    audit
        .audit
        .event("session_end", audit.conn_id, &audit.peer, &fields);
    let _ = handle.close(channel).await;
    ctx.sessions.finished(channel);
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
pub fn from_ssh_sig(sig: &Sig) -> Option<Signal> {
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

/// Applies the pty-req terminal modes (RFC 4254 §8) that have a termios equivalent here.
fn apply_modes(pts: &OwnedFd, modes: &[(Pty, u32)]) {
    use nix::sys::termios::{
        tcgetattr, tcsetattr, InputFlags, LocalFlags, OutputFlags, SetArg,
        SpecialCharacterIndices as C,
    };
    let Ok(mut t) = tcgetattr(pts.as_fd()) else {
        return;
    };
    for &(mode, val) in modes {
        let on = val != 0;
        let cc = |t: &mut nix::sys::termios::Termios, i: C| {
            if let Some(slot) = t.control_chars.get_mut(i as usize) {
                *slot = val as u8;
            }
        };
        let mut lf = |f: LocalFlags| t.local_flags.set(f, on);
        match mode {
            Pty::ECHO => lf(LocalFlags::ECHO),
            Pty::ECHOE => lf(LocalFlags::ECHOE),
            Pty::ECHOK => lf(LocalFlags::ECHOK),
            Pty::ECHONL => lf(LocalFlags::ECHONL),
            Pty::ICANON => lf(LocalFlags::ICANON),
            Pty::ISIG => lf(LocalFlags::ISIG),
            Pty::IEXTEN => lf(LocalFlags::IEXTEN),
            Pty::ECHOCTL => lf(LocalFlags::ECHOCTL),
            Pty::ECHOKE => lf(LocalFlags::ECHOKE),
            Pty::NOFLSH => lf(LocalFlags::NOFLSH),
            Pty::TOSTOP => lf(LocalFlags::TOSTOP),
            Pty::ICRNL => t.input_flags.set(InputFlags::ICRNL, on),
            Pty::IXON => t.input_flags.set(InputFlags::IXON, on),
            Pty::IXANY => t.input_flags.set(InputFlags::IXANY, on),
            Pty::IXOFF => t.input_flags.set(InputFlags::IXOFF, on),
            Pty::IMAXBEL => t.input_flags.set(InputFlags::IMAXBEL, on),
            Pty::IUTF8 => t.input_flags.set(InputFlags::IUTF8, on),
            Pty::OPOST => t.output_flags.set(OutputFlags::OPOST, on),
            Pty::ONLCR => t.output_flags.set(OutputFlags::ONLCR, on),
            Pty::VINTR => cc(&mut t, C::VINTR),
            Pty::VQUIT => cc(&mut t, C::VQUIT),
            Pty::VERASE => cc(&mut t, C::VERASE),
            Pty::VKILL => cc(&mut t, C::VKILL),
            Pty::VEOF => cc(&mut t, C::VEOF),
            Pty::VSTART => cc(&mut t, C::VSTART),
            Pty::VSTOP => cc(&mut t, C::VSTOP),
            Pty::VSUSP => cc(&mut t, C::VSUSP),
            Pty::VWERASE => cc(&mut t, C::VWERASE),
            Pty::VLNEXT => cc(&mut t, C::VLNEXT),
            _ => {}
        }
    }
    if let Err(e) = tcsetattr(pts.as_fd(), SetArg::TCSANOW, &t) {
        tracing::debug!("cannot apply terminal modes: {e}");
    }
}
