//! Session channels: starting the user's shell or command (with or without a PTY, as the
//! user in root mode), streaming stdin/stdout/stderr with backpressure, and reporting
//! `exit-status` / `exit-signal` before EOF and close.
//!
//! Data path: russh hands every channel message to the channel's `Channel` queue; an input
//! pump drains it from the moment the channel opens and forwards stdin bytes through a small
//! bounded queue to the process, so a process that does not read its stdin slows the client
//! down instead of growing memory. Output tasks write through `Handle::data`, whose bounded
//! queue gives backpressure the other way. Nothing here blocks the runtime.
#![forbid(unsafe_code)]

use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use russh::server::{Handle, Msg};
use russh::{Channel, ChannelId, ChannelMsg, Pty, Sig};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::audit::Audit;
use crate::sys::{self, Identity};

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

/// Everything needed to start one session process.
pub struct Launch {
    /// The program (the user's shell).
    pub program: PathBuf,
    /// argv[0]: `-bash` for a login shell, `bash` for `bash -c`.
    pub argv0: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    pub pty: Option<PtyReq>,
    /// Root mode: who the child becomes before exec.
    pub identity: Option<Identity>,
    /// What to log as the command (`shell`, the command line, or `subsystem:NAME`).
    pub command: String,
    /// The subsystem requested (`sftp`), also when a forced command runs instead.
    pub subsystem: Option<String>,
}

/// A started session process.
pub struct Running {
    pub pid: i32,
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
    /// The connection's running sessions (channel -> pid), for shutdown; `finish` removes
    /// its entry as soon as the process has been reaped, so a stale pid is never signalled.
    pub live: LiveSessions,
    /// The subsystem this session serves (audit field `subsystem`); set by [`start`].
    pub subsystem: Option<String>,
}

/// Channel -> pid of each session process that still runs on a connection.
pub type LiveSessions = std::sync::Arc<std::sync::Mutex<std::collections::HashMap<ChannelId, i32>>>;

/// Drains the channel's message queue from the moment it opens, passing stdin on through a
/// bounded queue (capacity 8 chunks: enough to keep a pipe busy, small enough to stop a
/// client that floods a process which does not read). Once the process stops reading, the
/// rest is discarded so the connection never stalls on this channel.
pub fn spawn_input_pump(mut channel: Channel<Msg>) -> mpsc::Receiver<Input> {
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
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
    if launch.pty.is_some() {
        start_pty(launch, channel, handle, input, audit)
    } else {
        start_pipes(launch, channel, handle, input, audit)
    }
}

fn base_command(launch: &Launch) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(&launch.program);
    cmd.arg0(&launch.argv0)
        .args(&launch.args)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(&launch.cwd)
        .kill_on_drop(false);
    cmd
}

fn start_pipes(
    launch: Launch,
    channel: ChannelId,
    handle: Handle,
    input: mpsc::Receiver<Input>,
    audit: AuditCtx,
) -> Result<Running, String> {
    let mut cmd = base_command(&launch);
    // Its own process group (sshd uses setsid): mshd's terminal signals never reach it, and
    // shutdown can hang up the whole command with killpg. Not for a PTY session: pty-process
    // calls setsid, which a process group leader may not.
    cmd.process_group(0);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(id) = launch.identity.clone() {
        sys::drop_privileges_tokio(&mut cmd, id);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", launch.program.display()))?;
    let pid = child.id().map(|p| p as i32).unwrap_or(0);
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
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
    let out_task = stdout.map(|r| tokio::spawn(pump_out(r, handle.clone(), channel, None)));
    let err_task = stderr.map(|r| tokio::spawn(pump_out(r, handle.clone(), channel, Some(1))));

    tokio::spawn(async move {
        let status = child.wait().await;
        let mut bytes_out = 0;
        // As OpenSSH without a PTY: output is forwarded until every writer closed the pipes.
        for t in [out_task, err_task].into_iter().flatten() {
            bytes_out += t.await.unwrap_or(0);
        }
        in_task.abort();
        let bytes_in = bytes_in.load(Ordering::Relaxed);
        finish(
            status, channel, &handle, &audit, started, bytes_in, bytes_out,
        )
        .await;
    });
    Ok(Running { pid, resize: None })
}

fn start_pty(
    launch: Launch,
    channel: ChannelId,
    handle: Handle,
    input: mpsc::Receiver<Input>,
    audit: AuditCtx,
) -> Result<Running, String> {
    let Some(req) = launch.pty.clone() else {
        return Err("internal: no pty request".into());
    };
    let (pty, pts) = pty_process::open().map_err(|e| format!("cannot allocate a PTY: {e}"))?;
    let size = pty_process::Size::new(clamp16(req.rows), clamp16(req.cols));
    pty.resize(size)
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
        if let Some(p) = &tty_path {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o620));
        }
    }
    let mut launch = launch;
    if let Some(p) = &tty_path {
        launch.env.push(("SSH_TTY".into(), p.display().to_string()));
    }
    let mut cmd = pty_process::Command::from(base_command(&launch));
    if let Some(id) = launch.identity.clone() {
        cmd = sys::drop_privileges_pty(cmd, id);
    }
    let mut child = cmd
        .spawn(pts)
        .map_err(|e| format!("cannot start {}: {e}", launch.program.display()))?;
    let pid = child.id().map(|p| p as i32).unwrap_or(0);
    let started = Instant::now();
    let (reader, mut writer) = pty.into_split();
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
                        let _ = writer.resize(pty_process::Size::new(rows, cols));
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
    let mut out_task = tokio::spawn(pump_out(reader, handle.clone(), channel, None));

    tokio::spawn(async move {
        let status = child.wait().await;
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
        finish(
            status, channel, &handle, &audit, started, bytes_in, bytes_out,
        )
        .await;
    });
    Ok(Running {
        pid,
        resize: Some(resize_tx),
    })
}

fn clamp16(v: u32) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
}

/// Copies one output stream to the channel (stdout as data, stderr as extended data 1).
/// Read errors end the stream: on a PTY master, EIO after the child exited is the EOF.
async fn pump_out<R: AsyncRead + Unpin>(
    mut r: R,
    handle: Handle,
    channel: ChannelId,
    ext: Option<u32>,
) -> u64 {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf).await {
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
    status: std::io::Result<std::process::ExitStatus>,
    channel: ChannelId,
    handle: &Handle,
    audit: &AuditCtx,
    started: Instant,
    bytes_in: u64,
    bytes_out: u64,
) {
    if let Ok(mut m) = audit.live.lock() {
        m.remove(&channel);
    }
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
fn apply_modes(pts: &pty_process::Pts, modes: &[(Pty, u32)]) {
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
