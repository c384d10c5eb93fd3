//! The local terminal: raw mode with a guard that restores the saved settings on every exit
//! path (drop on normal end or error, the panic hook on a panic, and the session loop turns
//! SIGINT/SIGTERM/SIGHUP into an orderly return), the window size, and the terminal modes
//! sent in the pty-req.

use std::io::IsTerminal;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Mutex;

use nix::sys::termios::{self, LocalFlags, OutputFlags, SetArg, SpecialCharacterIndices as SC};
use russh::Pty;

/// The settings to put back, kept globally so the panic hook can restore them too.
static SAVED: Mutex<Option<nix::libc::termios>> = Mutex::new(None);

pub(super) fn stdin_is_tty() -> bool {
    std::io::stdin().is_terminal()
}

/// Puts stdin's terminal in raw mode until dropped.
pub(super) struct RawGuard {
    _private: (),
}

impl RawGuard {
    pub(super) fn enable() -> std::io::Result<RawGuard> {
        let stdin = std::io::stdin();
        let fd = stdin.as_fd();
        let orig = termios::tcgetattr(fd).map_err(std::io::Error::from)?;
        if let Ok(mut saved) = SAVED.lock() {
            *saved = Some(orig.clone().into());
        }
        install_panic_hook();
        let mut raw = orig;
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSADRAIN, &raw).map_err(std::io::Error::from)?;
        Ok(RawGuard { _private: () })
    }
}

impl Drop for RawGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Puts back the saved terminal settings, once.
pub(super) fn restore() {
    let saved = SAVED.lock().ok().and_then(|mut s| s.take());
    if let Some(t) = saved {
        let stdin = std::io::stdin();
        let t: termios::Termios = t.into();
        let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSADRAIN, &t);
    }
}

/// `~^Z`: puts the terminal back as msh found it, stops msh as ^Z would in a cooked
/// terminal, and once the shell continues it (`fg`) enters raw mode again. Without raw mode
/// (stdin not a terminal) it only stops.
pub(super) fn suspend_self() -> std::io::Result<()> {
    use nix::sys::signal::{raise, Signal};
    let stdin = std::io::stdin();
    let fd = stdin.as_fd();
    let saved = SAVED.lock().ok().and_then(|s| s.as_ref().copied());
    if let Some(t) = saved {
        let t: termios::Termios = t.into();
        termios::tcsetattr(fd, SetArg::TCSADRAIN, &t).map_err(std::io::Error::from)?;
    }
    // To this thread, not kill(getpid()): a process-directed signal may be taken by another
    // thread while this one runs on and re-enters raw mode before the stop. A stop signal
    // stops every thread either way, and SIGCONT (`fg`) resumes them all.
    raise(Signal::SIGTSTP).map_err(std::io::Error::from)?;
    // Under the lock: if the session ended meanwhile and restore() took the saved settings,
    // the terminal must stay cooked.
    let guard = SAVED.lock().ok();
    if let Some(t) = guard.as_ref().and_then(|s| s.as_ref()) {
        let mut raw: termios::Termios = (*t).into();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSADRAIN, &raw).map_err(std::io::Error::from)?;
    }
    Ok(())
}

fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // Restore first, so the panic message is readable on a sane terminal.
            restore();
            prev(info);
        }));
    });
}

/// (columns, rows, pixel width, pixel height) of the terminal on stdin, else stdout, else
/// 80x24.
pub(super) fn window_size() -> (u32, u32, u32, u32) {
    let from = |fd: BorrowedFd<'_>| rustix::termios::tcgetwinsize(fd).ok();
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    match from(stdin.as_fd()).or_else(|| from(stdout.as_fd())) {
        Some(w) if w.ws_col > 0 && w.ws_row > 0 => (
            u32::from(w.ws_col),
            u32::from(w.ws_row),
            u32::from(w.ws_xpixel),
            u32::from(w.ws_ypixel),
        ),
        _ => (80, 24, 0, 0),
    }
}

/// The terminal modes for pty-req, taken from the local terminal when stdin is one (as
/// OpenSSH does), so the remote line discipline behaves like the local one.
pub(super) fn pty_modes() -> Vec<(Pty, u32)> {
    let stdin = std::io::stdin();
    let Ok(t) = termios::tcgetattr(stdin.as_fd()) else {
        return Vec::new();
    };
    let mut modes = Vec::new();
    let cc = |i: SC| u32::from(t.control_chars.get(i as usize).copied().unwrap_or(0));
    for (pty, idx) in [
        (Pty::VINTR, SC::VINTR),
        (Pty::VQUIT, SC::VQUIT),
        (Pty::VERASE, SC::VERASE),
        (Pty::VKILL, SC::VKILL),
        (Pty::VEOF, SC::VEOF),
        (Pty::VSUSP, SC::VSUSP),
        (Pty::VWERASE, SC::VWERASE),
        (Pty::VLNEXT, SC::VLNEXT),
        (Pty::VREPRINT, SC::VREPRINT),
        (Pty::VSTART, SC::VSTART),
        (Pty::VSTOP, SC::VSTOP),
    ] {
        modes.push((pty, cc(idx)));
    }
    let l = t.local_flags;
    for (pty, flag) in [
        (Pty::ISIG, LocalFlags::ISIG),
        (Pty::ICANON, LocalFlags::ICANON),
        (Pty::ECHO, LocalFlags::ECHO),
        (Pty::ECHOE, LocalFlags::ECHOE),
        (Pty::ECHOK, LocalFlags::ECHOK),
        (Pty::ECHONL, LocalFlags::ECHONL),
        (Pty::IEXTEN, LocalFlags::IEXTEN),
        (Pty::ECHOCTL, LocalFlags::ECHOCTL),
        (Pty::ECHOKE, LocalFlags::ECHOKE),
    ] {
        modes.push((pty, u32::from(l.contains(flag))));
    }
    let i = t.input_flags;
    for (pty, flag) in [
        (Pty::ICRNL, termios::InputFlags::ICRNL),
        (Pty::IXON, termios::InputFlags::IXON),
        (Pty::IXANY, termios::InputFlags::IXANY),
        (Pty::IXOFF, termios::InputFlags::IXOFF),
        (Pty::IMAXBEL, termios::InputFlags::IMAXBEL),
        (Pty::IUTF8, termios::InputFlags::IUTF8),
    ] {
        modes.push((pty, u32::from(i.contains(flag))));
    }
    let o = t.output_flags;
    modes.push((Pty::OPOST, u32::from(o.contains(OutputFlags::OPOST))));
    modes.push((Pty::ONLCR, u32::from(o.contains(OutputFlags::ONLCR))));
    modes.push((
        Pty::CS8,
        u32::from(t.control_flags.contains(termios::ControlFlags::CS8)),
    ));
    let speed = |s: termios::BaudRate| -> u32 {
        use termios::BaudRate::*;
        match s {
            B9600 => 9600,
            B19200 => 19200,
            B38400 => 38400,
            B57600 => 57600,
            B115200 => 115200,
            _ => 38400,
        }
    };
    modes.push((Pty::TTY_OP_ISPEED, speed(termios::cfgetispeed(&t))));
    modes.push((Pty::TTY_OP_OSPEED, speed(termios::cfgetospeed(&t))));
    modes
}
