//! The few process-level operations the server needs that Rust cannot express safely: running
//! code in the forked child before `exec` (new session or process group, controlling
//! terminal, dropping root privileges and checking that the drop worked, entering the home
//! directory as the user). With crate::utmpx and crate::pam::ffi, the only modules of msh
//! allowed `unsafe`.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use nix::unistd::{Gid, Uid};

/// Who a session's child process becomes before `exec` (root mode).
#[derive(Debug, Clone)]
pub struct Identity {
    /// The user's uid (setuid).
    pub uid: Uid,
    /// The user's primary group (setgid).
    pub gid: Gid,
    /// Supplementary groups, computed in the parent with getgrouplist (initgroups reads
    /// /etc/group and allocates, so it may not run between fork and exec).
    pub groups: Vec<Gid>,
}

/// The errno a child reports when its privilege drop did not take effect (ids not the
/// user's, or root could be regained). Only a number crosses from the child to the parent
/// (std sends the pre-exec error's raw errno through its CLOEXEC pipe; a message would be
/// lost, and building one allocates), so the child picks one no syscall of its set-up
/// returns, and the parent names it: see [`spawn_error`].
pub const PRIVILEGE_DROP_FAILED: i32 = nix::libc::ENOTRECOVERABLE;

/// Runs in the child between fork and exec: only async-signal-safe syscalls, no allocation.
/// Every error is a bare errno (`io::Error::from_raw_os_error`, `From<Errno>`), which does
/// not allocate.
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
        return Err(io::Error::from_raw_os_error(PRIVILEGE_DROP_FAILED));
    }
    if !id.uid.is_root() && nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        return Err(io::Error::from_raw_os_error(PRIVILEGE_DROP_FAILED));
    }
    Ok(())
}

/// What a session's child does between fork and exec, prepared in the parent.
pub struct ChildSetup {
    /// PTY session: a new session with stdin (the PTY slave) as controlling terminal.
    /// Otherwise a new process group (as sshd's setsid, mshd's terminal signals never reach
    /// it, and the whole command can be signalled with killpg).
    pub pty: bool,
    /// Root mode: who the child becomes.
    pub identity: Option<Identity>,
    /// The home directory, entered after the privilege drop.
    pub home: CString,
    /// `Could not chdir to home directory HOME: ` (the reason is appended), preformatted
    /// because the child may not allocate.
    pub home_note: Vec<u8>,
}

/// Installs [`ChildSetup`] as the command's pre-exec step. The chdir comes after setuid, as
/// in sshd's do_child: a home the user can enter but root cannot (root-squashed NFS) works,
/// and one the user cannot enter is refused by the kernel as it would be for the user. On
/// failure the child says so on its stderr and starts in `/`, as sshd does.
pub fn prepare_child(cmd: &mut std::process::Command, setup: ChildSetup) {
    let step = move || -> io::Result<()> {
        // The blocked-signal mask survives exec, and std's spawn leaves it as the forking
        // thread had it: the PAM session keeper blocks every signal, its program must not.
        nix::sys::signal::pthread_sigmask(
            nix::sys::signal::SigmaskHow::SIG_SETMASK,
            Some(&nix::sys::signal::SigSet::empty()),
            None,
        )
        .map_err(io::Error::from)?;
        if setup.pty {
            rustix::process::setsid()?;
            rustix::process::ioctl_tiocsctty(std::io::stdin())?;
        } else {
            nix::unistd::setpgid(nix::unistd::Pid::from_raw(0), nix::unistd::Pid::from_raw(0))
                .map_err(io::Error::from)?;
        }
        if let Some(id) = &setup.identity {
            become_user(id)?;
        }
        if let Err(e) = nix::unistd::chdir(setup.home.as_c_str()) {
            // Straight to fd 2: std's Stderr takes a lock another thread may have held at
            // the fork.
            let err = std::io::stderr();
            let fd = std::os::fd::AsFd::as_fd(&err);
            for part in [setup.home_note.as_slice(), e.desc().as_bytes(), b"\n"] {
                let _ = nix::unistd::write(fd, part);
            }
            nix::unistd::chdir(c"/").map_err(io::Error::from)?;
        }
        Ok(())
    };
    // SAFETY: the closure runs between fork and exec in the child. It only calls
    // pthread_sigmask (on a sigset built on the stack), setsid, ioctl(TIOCSCTTY), setpgid, setgroups, setgid, setuid, get[e]uid/get[e]gid, chdir and
    // write(2) (async-signal-safe syscalls per signal-safety(7)) on data prepared before the
    // fork; it does not allocate (nix passes slices and C strings straight to libc, and its
    // errors are bare errnos: io::Error::from(Errno) and from_raw_os_error hold the number
    // inline, unlike io::Error::new), lock or touch other threads' state.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(cmd, step);
    }
}

/// Installs the pre-exec step of an authentication helper (`authorized_keys_command`,
/// `authorized_principals_command`; OpenSSH's misc.c `subprocess`): a process group of its
/// own (so that a timeout kills everything it started), then, in root mode, the run-as
/// user's groups, gid and uid (checked as for a session), then `/` as working directory.
pub fn prepare_helper(cmd: &mut std::process::Command, identity: Option<Identity>) {
    let step = move || -> io::Result<()> {
        nix::unistd::setpgid(nix::unistd::Pid::from_raw(0), nix::unistd::Pid::from_raw(0))
            .map_err(io::Error::from)?;
        if let Some(id) = &identity {
            become_user(id)?;
        }
        nix::unistd::chdir(c"/").map_err(io::Error::from)?;
        Ok(())
    };
    // SAFETY: runs between fork and exec in the child; only setpgid, setgroups, setgid,
    // setuid, get[e]uid/get[e]gid and chdir (async-signal-safe per signal-safety(7)) on data
    // prepared before the fork; no allocation (bare errnos), no locks.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(cmd, step);
    }
}

/// Installs the pre-exec step of a PAM session keeper (crate::pam::keeper): a process group
/// of its own, outside the user's session and group (so their signals and the terminal's
/// never reach it), the descriptors in `pass` kept open across exec (the keeper finds them
/// by the numbers on its command line), `/` as working directory. No privilege drop: the
/// keeper stays root to open and close the PAM session; it drops privileges for the program.
pub fn prepare_keeper(cmd: &mut std::process::Command, pass: Vec<Arc<OwnedFd>>) {
    let step = move || -> io::Result<()> {
        nix::unistd::setpgid(nix::unistd::Pid::from_raw(0), nix::unistd::Pid::from_raw(0))
            .map_err(io::Error::from)?;
        for fd in &pass {
            nix::fcntl::fcntl(
                &**fd,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
            )
            .map_err(io::Error::from)?;
        }
        nix::unistd::chdir(c"/").map_err(io::Error::from)?;
        Ok(())
    };
    // SAFETY: runs between fork and exec in the child; only setpgid, fcntl(F_SETFD) on
    // descriptors the closure owns a reference to, and chdir (async-signal-safe per
    // signal-safety(7)); no allocation (bare errnos), no locks.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(cmd, step);
    }
}

/// Takes ownership of descriptor `n`, which this process's parent passed open across exec
/// (the PAM session keeper's spec and control descriptors), marked close-on-exec again.
pub fn take_inherited_fd(n: i32) -> io::Result<OwnedFd> {
    // SAFETY: the descriptor is only borrowed for this one fcntl call, which fails with EBADF
    // if the number is not open (then nothing is taken).
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(n) };
    nix::fcntl::fcntl(
        borrowed,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )?;
    // SAFETY: n is open (checked above) and was passed by the parent for this process to
    // own: nothing else in this process refers to it (the keeper takes each number once, at
    // start, before anything opens a descriptor of its own), so the OwnedFd is its only owner.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(n) })
}

/// What the parent says when starting a session's process failed: the error as the kernel
/// gave it, except [`PRIVILEGE_DROP_FAILED`], which is the child's own verdict.
pub fn spawn_error(e: &io::Error) -> String {
    if e.raw_os_error() == Some(PRIVILEGE_DROP_FAILED) {
        "the privilege drop did not take effect (the ids were not the user's after setuid, or \
         root could be regained); the session was not started"
            .to_string()
    } else {
        e.to_string()
    }
}

/// Runs `f` on a short-lived thread whose credentials (and only its: rustix calls the raw
/// syscalls, not glibc's process-wide wrappers) are those of `uid`/`gid` with no
/// supplementary groups, as sshd's temporarily_use_uid before it signals a session. The
/// thread ends with `f`, so the dropped credentials never serve anything else.
pub fn as_user<T: Send>(
    uid: Uid,
    gid: nix::unistd::Gid,
    f: impl FnOnce() -> T + Send,
) -> io::Result<T> {
    std::thread::scope(|s| {
        s.spawn(move || -> io::Result<T> {
            rustix::thread::set_thread_groups(&[])?;
            let g = rustix::process::Gid::from_raw(gid.as_raw());
            rustix::thread::set_thread_res_gid(g, g, g)?;
            let u = rustix::process::Uid::from_raw(uid.as_raw());
            rustix::thread::set_thread_res_uid(u, u, u)?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("signal thread panicked")))
    })
}

/// Runs `f` on a short-lived thread whose credentials (only its own, as [`as_user`]) are the
/// user's: uid, gid and supplementary groups. A forward's sockets are made there in root
/// mode (connect, bind + listen, the agent socket's directory): the kernel checks the
/// user's rights (privileged ports, Unix-socket and directory permissions) and records the
/// user as the socket's owner, and no allocation limits apply as they would after a fork.
/// Setting the ids drops the thread's capabilities (no SECBIT_KEEP_CAPS), so root's
/// CAP_NET_BIND_SERVICE and CAP_DAC_OVERRIDE are gone too.
pub fn as_identity<T: Send>(id: &Identity, f: impl FnOnce() -> T + Send) -> io::Result<T> {
    std::thread::scope(|s| {
        s.spawn(move || -> io::Result<T> {
            let groups: Vec<rustix::process::Gid> = id
                .groups
                .iter()
                .map(|g| rustix::process::Gid::from_raw(g.as_raw()))
                .collect();
            rustix::thread::set_thread_groups(&groups)?;
            let g = rustix::process::Gid::from_raw(id.gid.as_raw());
            rustix::thread::set_thread_res_gid(g, g, g)?;
            let u = rustix::process::Uid::from_raw(id.uid.as_raw());
            rustix::thread::set_thread_res_uid(u, u, u)?;
            // As become_user: check the drop took, and that root cannot be regained.
            if rustix::process::geteuid().as_raw() != id.uid.as_raw()
                || rustix::process::getegid().as_raw() != id.gid.as_raw()
            {
                return Err(io::Error::from_raw_os_error(PRIVILEGE_DROP_FAILED));
            }
            if !id.uid.is_root()
                && rustix::thread::set_thread_res_uid(
                    rustix::process::Uid::ROOT,
                    rustix::process::Uid::ROOT,
                    rustix::process::Uid::ROOT,
                )
                .is_ok()
            {
                return Err(io::Error::from_raw_os_error(PRIVILEGE_DROP_FAILED));
            }
            Ok(f())
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("credential thread panicked")))
    })
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

/// Registers an owned descriptor (a PTY master, a pidfd) with tokio's reactor.
pub fn async_fd(fd: Arc<OwnedFd>) -> io::Result<tokio::io::unix::AsyncFd<Arc<OwnedFd>>> {
    // SAFETY: tokio requires the descriptor to stay open and the same for the AsyncFd's
    // lifetime. The AsyncFd owns one reference to the Arc<OwnedFd>, so the descriptor cannot
    // be closed before the AsyncFd is dropped, and an OwnedFd's as_raw_fd never changes.
    unsafe { tokio::io::unix::AsyncFd::register(fd) }.map_err(|e| e.into_parts().1)
}

/// Hands the heap's free pages back to the kernel (glibc's malloc_trim). glibc returns memory
/// on its own only from the top of a heap, and tokio's worker threads each allocate from an
/// arena of their own, where a few long-lived blocks keep everything freed below them
/// resident: measured, 200 sessions opened 16 at a time and then dropped left 11 MB resident
/// with 0.6 MB in use, and malloc_trim brought RSS back to the baseline.
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointer and only walks glibc's own arenas under their locks;
    // it is safe to call from any thread at any time.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

/// Takes the descriptor `fd` that systemd passed for socket activation (sd_listen_fds(3))
/// as a TCP listener. It must be a listening stream socket of IPv4 or IPv6; anything else
/// is an error (the descriptor is then closed).
pub fn inherited_tcp_listener(fd: std::os::fd::RawFd) -> io::Result<std::net::TcpListener> {
    use nix::sys::socket::{getsockname, getsockopt, sockopt, AddressFamily, SockType};
    use nix::sys::socket::{SockaddrLike, SockaddrStorage};
    use std::os::fd::FromRawFd;
    // SAFETY: `fd` is one of the descriptors systemd passed at exec (3 to 3 + LISTEN_FDS - 1,
    // only when LISTEN_PID names this process), open (sd_notify::listen_fds set FD_CLOEXEC
    // on it, which fails on a closed descriptor), and owned by nothing else in the process:
    // `crate::activation::take` reads them once, before any thread or file is opened.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidInput, what);
    if getsockopt(&owned, sockopt::SockType).map_err(io::Error::from)? != SockType::Stream {
        return Err(bad(format!("descriptor {fd} is not a stream socket")));
    }
    if !getsockopt(&owned, sockopt::AcceptConn).map_err(io::Error::from)? {
        return Err(bad(format!("descriptor {fd} is not listening")));
    }
    let addr: SockaddrStorage = getsockname(std::os::fd::AsRawFd::as_raw_fd(&owned))?;
    if !matches!(
        addr.family(),
        Some(AddressFamily::Inet) | Some(AddressFamily::Inet6)
    ) {
        return Err(bad(format!(
            "descriptor {fd} is not a TCP socket (ListenStream= must be a port or ADDR:PORT, not a path)"
        )));
    }
    Ok(std::net::TcpListener::from(owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_privilege_drop_is_named_in_the_parent_and_other_errors_pass_through() {
        let drop = io::Error::from_raw_os_error(PRIVILEGE_DROP_FAILED);
        assert!(spawn_error(&drop).starts_with("the privilege drop did not take effect"));
        let enoent = io::Error::from_raw_os_error(nix::libc::ENOENT);
        assert_eq!(spawn_error(&enoent), enoent.to_string());
    }
}
