//! The few process-level operations the server needs that Rust cannot express safely: running
//! code in the forked child before `exec` to drop root privileges (setgroups, setgid, setuid)
//! and checking that the drop worked. This is the only module of msh allowed `unsafe`.
#![allow(unsafe_code)]

use std::io;

use nix::unistd::{Gid, Uid};

/// Who a session's child process becomes before `exec` (root mode).
#[derive(Debug, Clone)]
pub struct Identity {
    pub uid: Uid,
    pub gid: Gid,
    /// Supplementary groups, computed in the parent with getgrouplist (initgroups reads
    /// /etc/group and allocates, so it may not run between fork and exec).
    pub groups: Vec<Gid>,
}

/// Runs in the child between fork and exec: only async-signal-safe syscalls, no allocation.
fn become_user(id: &Identity) -> io::Result<()> {
    // Order matters: supplementary groups and gid can only be changed while still root.
    nix::unistd::setgroups(&id.groups).map_err(io::Error::from)?;
    nix::unistd::setgid(id.gid).map_err(io::Error::from)?;
    nix::unistd::setuid(id.uid).map_err(io::Error::from)?;
    // Check the drop really happened: both real and effective ids, and that root cannot be
    // regained. If any check fails the exec is aborted and the session refused.
    if nix::unistd::getuid() != id.uid
        || nix::unistd::geteuid() != id.uid
        || nix::unistd::getgid() != id.gid
        || nix::unistd::getegid() != id.gid
    {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "privilege drop did not take effect",
        ));
    }
    if !id.uid.is_root() && nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "root could be regained after setuid",
        ));
    }
    Ok(())
}

/// Makes a plain (no-PTY) command drop to `id` in the child before exec.
pub fn drop_privileges_tokio(cmd: &mut tokio::process::Command, id: Identity) {
    // SAFETY: the closure runs between fork and exec in the child. It only calls setgroups,
    // setgid, setuid, getuid/geteuid/getgid/getegid (async-signal-safe syscalls per
    // signal-safety(7)) on data captured before the fork; it does not allocate (nix passes
    // the slice pointer straight to libc), lock or touch other threads' state.
    unsafe {
        cmd.pre_exec(move || become_user(&id));
    }
}

/// Same for a PTY command: pty-process runs its own pre_exec first (setsid + TIOCSCTTY,
/// which need no privilege), then this one.
pub fn drop_privileges_pty(cmd: pty_process::Command, id: Identity) -> pty_process::Command {
    // SAFETY: as in `drop_privileges_tokio`: only async-signal-safe syscalls on data captured
    // before the fork, no allocation.
    unsafe { cmd.pre_exec(move || become_user(&id)) }
}

/// Restores default dispositions for signals that were ignored when mshd started (a shell
/// starting a background job ignores SIGINT and SIGQUIT, for instance). Ignored signals stay
/// ignored across exec, so without this every user session would inherit them. SIGPIPE is
/// left as Rust set it: std restores it to the default in spawned children.
/// Call once at startup, before any handler is installed.
pub fn reset_inherited_signal_dispositions() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for sig in Signal::iterator() {
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP | Signal::SIGPIPE) {
            continue;
        }
        // SAFETY: installing SIG_DFL replaces no Rust handler (none is installed yet: this
        // runs first thing in main, before tokio registers its own), so no code that relies
        // on a previous handler can be affected.
        let _ = unsafe { sigaction(sig, &dfl) };
    }
    // An inherited blocked-signal mask would also pass on to sessions: clear it.
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&SigSet::empty()),
        None,
    );
}

/// Marks every inherited descriptor above stderr close-on-exec, as sshd's closefrom(3) does
/// at startup: whatever the starting process left open (a log pipe, a terminal) must not leak
/// into user sessions. Call first thing in main, before mshd opens anything of its own.
pub fn cloexec_inherited_fds() {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: the descriptor is only borrowed for this one fcntl call; setting FD_CLOEXEC
        // does not close it or change what it refers to. A number that is no longer open
        // (e.g. the read_dir handle, closed by now) makes fcntl fail with EBADF, ignored.
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let _ = nix::fcntl::fcntl(
            borrowed,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        );
    }
}

/// Raises the soft open-file limit to the hard limit (each connection is one descriptor, and
/// a flood of unauthenticated connections must hit max_startups, not EMFILE). Returns
/// (before, after) soft limits, or the error.
pub fn raise_nofile_limit() -> Result<(u64, u64), nix::Error> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok((soft, hard.max(soft)))
}
