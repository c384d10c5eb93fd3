//! PTY sessions: the terminal pair (close-on-exec from the start), its size and the
//! `pty-req` terminal modes, handing the slave to the user, and the tasks that connect the
//! master to the channel.
#![forbid(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::Pty;
use tokio::sync::{mpsc, oneshot};

use super::spawn::{base_command, pump_out, spawn, spawn_waiter, Fd};
use super::{Input, Launch, Running, SessionCtx};
use crate::error::Error;
use crate::login_records;

/// How long a PTY session's I/O waits for its login to be recorded (utmp is locked by the C
/// library, which could be slow); past it the session goes on without the greeting.
const LOGIN_RECORD_WAIT: Duration = Duration::from_secs(2);

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

pub(super) fn start_pty(
    launch: Launch,
    input: mpsc::Receiver<Input>,
    ctx: SessionCtx,
) -> Result<Running, Error> {
    let Some(req) = launch.pty.clone() else {
        return Err(Error::Internal("no pty request".into()));
    };
    let (master, pts) = open_pty().map_err(|e| Error::start("cannot allocate a PTY", e))?;
    set_size(&master, clamp16(req.rows), clamp16(req.cols))
        .map_err(|e| Error::start("cannot set the PTY size", e))?;
    apply_modes(&pts, &req.modes);
    let tty_path = nix::unistd::ttyname(pts.as_fd()).ok();
    if let Some(id) = &launch.identity {
        // As sshd: the user owns their terminal (group tty, mode 0620).
        let tty_gid = nix::unistd::Group::from_name("tty")
            .ok()
            .flatten()
            .map(|g| g.gid);
        if let Err(e) = nix::unistd::fchown(pts.as_fd(), Some(id.uid), tty_gid) {
            return Err(Error::start(
                format!("cannot give the PTY to uid {}", id.uid),
                e,
            ));
        }
        if let Err(e) =
            nix::sys::stat::fchmod(pts.as_fd(), nix::sys::stat::Mode::from_bits_truncate(0o620))
        {
            return Err(Error::start("cannot set the PTY's mode", e));
        }
    }
    let mut launch = launch;
    if let Some(p) = &tty_path {
        launch.env.push(("SSH_TTY".into(), p.display().to_string()));
    }
    let (mut cmd, control) = base_command(&launch, true, tty_path.as_deref())?;
    let stdio = |fd: &OwnedFd| {
        fd.try_clone()
            .map(Stdio::from)
            .map_err(|e| Error::start("cannot duplicate the PTY", e))
    };
    cmd.stdin(stdio(&pts)?)
        .stdout(stdio(&pts)?)
        .stderr(stdio(&pts)?);
    drop(pts);
    let (_, leader) = spawn((cmd, control), &launch)?;
    let started = Instant::now();
    // Login records (root mode): written by their own thread now that the leader's PID is
    // known. Each I/O task holds `record`, so the logout is written once both are gone,
    // and the master (kept by `record`) is closed only after it.
    let (record, greeting) = match (launch.login.take(), &tty_path) {
        (Some(login), Some(tty)) => {
            let keep = Box::new(master.0.get_ref().clone());
            let (r, g) = login_records::login(login, tty, leader.pid, keep);
            (Some(Arc::new(r)), Some(g))
        }
        (Some(_), None) => {
            tracing::warn!("the PTY has no name: the session is not recorded in utmp/wtmp");
            (None, None)
        }
        _ => (None, None),
    };
    // Input waits until the login is recorded, so a command typed at once (`who`) sees it.
    let (gate_tx, gate_rx) = oneshot::channel::<()>();
    let writer = master.clone();
    let (resize_tx, mut resize_rx) = mpsc::unbounded_channel::<(u16, u16)>();

    let bytes_in = Arc::new(AtomicU64::new(0));
    let counter = bytes_in.clone();
    let in_record = record.clone();
    let in_task = tokio::spawn(async move {
        let _record = in_record;
        let _ = gate_rx.await;
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
    // Only the two tasks (and `record`) hold the master: when both end or are aborted, it
    // closes. The "Last login" greeting, if any, goes out before the shell's first output.
    let (handle, channel) = (ctx.handle.clone(), ctx.channel);
    let mut out_task = tokio::spawn(async move {
        let _record = record;
        if let Some(greeting) = greeting {
            if let Ok(Ok(Some(text))) = tokio::time::timeout(LOGIN_RECORD_WAIT, greeting).await {
                let _ = handle.data(channel, text.into_bytes()).await;
            }
        }
        drop(gate_tx);
        pump_out(master, handle, channel, None).await
    });
    let io = vec![in_task.abort_handle(), out_task.abort_handle()];

    // The master returns EIO once every slave fd is closed; a background job keeping the
    // terminal open must not keep the session alive forever after the shell exited. The 2 s
    // count from the reaping: the future is first polled then.
    let output = async move {
        match tokio::time::timeout(Duration::from_secs(2), &mut out_task).await {
            Ok(r) => r.unwrap_or(0),
            Err(_) => {
                out_task.abort();
                0
            }
        }
    };
    spawn_waiter(leader, ctx, io, (in_task, bytes_in), started, output);
    Ok(Running {
        resize: Some(resize_tx),
    })
}

fn clamp16(v: u32) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
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
