//! File-permission checks: OpenSSH's StrictModes for authorized_keys (`auth_secure_path`),
//! the private-key permission check (`sshkey_perm_ok`), and [`read_file_as`], which reads a
//! user's file for root making those checks on the descriptors it reads (no symlink swapped
//! in later, no FIFO, a size cap, a time bound). Errors name the path that fails, why, and
//! the command that fixes it.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};

use crate::{Error, Result};

/// StrictModes: `file` and every directory above it up to `home` (or `/` when the file is
/// not under home) must be owned by `uid` or root and not group/world-writable. The file must
/// be a regular file. Symbolic links are resolved first, as OpenSSH's `realpath` does, so the
/// directories checked are those that really hold the file.
pub fn check_strict_modes(file: &Path, uid: u32, home: &Path) -> Result<()> {
    let who = Reader {
        uid,
        gids: Vec::new(),
        home: home.to_path_buf(),
        strict_modes: true,
        check_access: false,
    };
    match open_checked(file, &who)? {
        Some(_) => Ok(()),
        None => Err(Error::io(
            file,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        )),
    }
}

/// Whom a file is read for, and which checks apply: mshd (root) reading a user's
/// authorized_keys or principals file.
#[derive(Debug, Clone)]
pub struct Reader {
    pub uid: u32,
    /// The user's primary and supplementary groups (for the read and search permission bits).
    pub gids: Vec<u32>,
    pub home: PathBuf,
    /// StrictModes (see [`check_strict_modes`]).
    pub strict_modes: bool,
    /// Refuse what the user could not read themselves: every directory searchable and the
    /// file readable by `uid`/`gids` from the permission bits (ACLs are not consulted). sshd
    /// reads these files as the user; mshd reads as root and checks this instead.
    pub check_access: bool,
}

/// Largest authorized_keys or authorized_principals_file mshd reads (OpenSSH has no cap; 4
/// MiB is several thousand keys). A bigger file is refused rather than read on every key
/// offer.
pub const MAX_USER_FILE: u64 = 4 << 20;

/// How long reading one such file may take (a file on a hung network or FUSE filesystem).
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads that overran [`READ_TIMEOUT`] and whose thread is still blocked; past
/// [`MAX_STUCK_READS`] new reads are refused at once instead of piling up threads.
static STUCK_READS: AtomicUsize = AtomicUsize::new(0);
const MAX_STUCK_READS: usize = 16;

/// Reads `file` for `who` without trusting anything a path check said earlier: the
/// directories are opened one by one from `/` without following symlinks (the path is
/// resolved first, as OpenSSH's `realpath`), and the ownership, mode and type checks are made
/// on the descriptors that are then read (so a file swapped in after a check is not read);
/// the file is opened `O_NOFOLLOW|O_NONBLOCK` only once it is known to be a regular file (a
/// FIFO or device is never opened). At most `limit` bytes are read, within `timeout` (the
/// read runs on its own thread; a read that overruns is abandoned and reported). `Ok(None)`
/// when the file does not exist.
pub fn read_file_as(
    file: &Path,
    who: &Reader,
    limit: u64,
    timeout: Duration,
) -> Result<Option<Vec<u8>>> {
    let stuck = STUCK_READS.load(Ordering::Relaxed);
    if stuck >= MAX_STUCK_READS {
        return Err(Error::io(
            file,
            std::io::Error::other(format!(
                "not read: {stuck} earlier reads are still blocked after {}s (hung filesystem?)",
                timeout.as_secs()
            )),
        ));
    }
    // The reader thread and this one agree under one lock whether the read finished in
    // time or was abandoned, so the count of stuck reads is exact.
    let slot = Arc::new((Mutex::new(Slot::Running), Condvar::new()));
    let (path, who, theirs) = (file.to_path_buf(), who.clone(), Arc::clone(&slot));
    let spawned = std::thread::Builder::new()
        .name("read-user-file".into())
        .spawn(move || {
            let result = open_checked(&path, &who).and_then(|f| match f {
                None => Ok(None),
                Some(mut f) => crate::safefs::read_capped(&mut f, &path, limit).map(Some),
            });
            let (lock, done) = &*theirs;
            let mut state = lock.lock().unwrap_or_else(|p| p.into_inner());
            if matches!(*state, Slot::Abandoned) {
                STUCK_READS.fetch_sub(1, Ordering::Relaxed);
            } else {
                *state = Slot::Done(result);
                done.notify_one();
            }
        });
    if let Err(e) = spawned {
        return Err(Error::io(file, e));
    }
    let (lock, done) = &*slot;
    let state = lock.lock().unwrap_or_else(|p| p.into_inner());
    let (mut state, _) = done
        .wait_timeout_while(state, timeout, |s| matches!(s, Slot::Running))
        .unwrap_or_else(|p| p.into_inner());
    match std::mem::replace(&mut *state, Slot::Abandoned) {
        Slot::Done(result) => result,
        Slot::Running | Slot::Abandoned => {
            STUCK_READS.fetch_add(1, Ordering::Relaxed);
            Err(Error::io(
                file,
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("not read within {}s: refused", timeout.as_secs()),
                ),
            ))
        }
    }
}

/// Where a reader thread leaves its result.
enum Slot {
    Running,
    Done(Result<Option<Vec<u8>>>),
    /// The caller gave up waiting; the thread counts itself out of `STUCK_READS` when it ends.
    Abandoned,
}

/// Reads a root-owned configuration file (trusted CA keys, revoked keys): symlinks followed
/// (the administrator's choice), but only a regular file is read (a FIFO or device is never
/// opened), at most `limit` bytes, within `timeout`. `Ok(None)` when it does not exist.
pub fn read_config_file(file: &Path, limit: u64, timeout: Duration) -> Result<Option<Vec<u8>>> {
    let real = match std::fs::canonicalize(file) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(file, e)),
    };
    let who = Reader {
        uid: 0,
        gids: Vec::new(),
        home: PathBuf::from("/"),
        strict_modes: false,
        check_access: false,
    };
    read_file_as(&real, &who, limit, timeout)
}

fn errno_io(e: Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e as i32)
}

fn not_regular(path: &Path) -> Error {
    Error::Permissions {
        path: path.to_path_buf(),
        reason: "bad ownership or modes: not a regular file".to_string(),
    }
}

/// The walk behind [`read_file_as`] and [`check_strict_modes`]: the open file when every
/// check passes, `None` when it does not exist.
fn open_checked(file: &Path, who: &Reader) -> Result<Option<File>> {
    let real = match std::fs::canonicalize(file) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(file, e)),
    };
    // A home that cannot be resolved never matches, so the checks go on to `/`, as in
    // OpenSSH.
    let home = std::fs::canonicalize(&who.home).ok();
    let changed = |p: &Path| {
        Error::io(
            p,
            std::io::Error::other("changed while being checked (a symlink appeared): refused"),
        )
    };
    let (Some(name), Some(parent)) = (real.file_name(), real.parent()) else {
        return Err(not_regular(&real));
    };
    // Open every directory from `/` down, none through a symlink, keeping each one's stat.
    let dir_flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let root = Path::new("/");
    let mut fd: OwnedFd = nix::fcntl::open(root, dir_flags, Mode::empty())
        .map_err(|e| Error::io(root, errno_io(e)))?;
    let mut dirs: Vec<(PathBuf, FileStat)> = vec![(
        root.to_path_buf(),
        nix::sys::stat::fstat(&fd).map_err(|e| Error::io(root, errno_io(e)))?,
    )];
    let mut at = root.to_path_buf();
    for comp in parent.components().skip(1) {
        at.push(comp);
        fd = match nix::fcntl::openat(&fd, comp.as_os_str(), dir_flags, Mode::empty()) {
            Ok(next) => next,
            Err(Errno::ELOOP | Errno::ENOTDIR) => return Err(changed(&at)),
            Err(Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(Error::io(&at, errno_io(e))),
        };
        let st = nix::sys::stat::fstat(&fd).map_err(|e| Error::io(&at, errno_io(e)))?;
        dirs.push((at.clone(), st));
    }
    // Look before opening: a FIFO or device is refused without being opened.
    let before = match nix::sys::stat::fstatat(&fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(Error::io(&real, errno_io(e))),
    };
    if file_type(&before) == SFlag::S_IFLNK {
        return Err(changed(&real));
    }
    if file_type(&before) != SFlag::S_IFREG {
        return Err(not_regular(&real));
    }
    let flags = OFlag::O_RDONLY
        | OFlag::O_NOFOLLOW
        | OFlag::O_NONBLOCK
        | OFlag::O_NOCTTY
        | OFlag::O_CLOEXEC;
    let f = match nix::fcntl::openat(&fd, name, flags, Mode::empty()) {
        Ok(f) => File::from(f),
        Err(Errno::ELOOP) => return Err(changed(&real)),
        Err(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(Error::io(&real, errno_io(e))),
    };
    // From here on, only what was opened counts.
    let st = nix::sys::stat::fstat(&f).map_err(|e| Error::io(&real, errno_io(e)))?;
    if file_type(&st) != SFlag::S_IFREG {
        return Err(not_regular(&real));
    }
    if (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino) {
        return Err(changed(&real));
    }
    if who.strict_modes {
        check_owner_and_mode(&real, st.st_uid, st.st_mode, who.uid, false)?;
        // From the file's directory up to home (or `/`), as OpenSSH's auth_secure_path.
        for (dir, dst) in dirs.iter().rev() {
            check_owner_and_mode(dir, dst.st_uid, dst.st_mode, who.uid, true)?;
            if home.as_deref() == Some(dir.as_path()) {
                break;
            }
        }
    }
    if who.check_access && who.uid != 0 {
        for (dir, dst) in &dirs {
            if !allowed(dst, who, 0o1) {
                return Err(no_access(dir, dst, who, "search"));
            }
        }
        if !allowed(&st, who, 0o4) {
            return Err(no_access(&real, &st, who, "read"));
        }
    }
    Ok(Some(f))
}

/// OpenSSH's `safe_path` for a program run on authentication's behalf (AuthorizedKeysCommand):
/// resolved first (as `realpath`), the program must be a regular file owned by root or
/// `owner` and not group- or world-writable, and so must every directory above it up to `/`.
/// Returns the resolved path, which is what should be executed: a symlink on the way cannot
/// be swapped after the check.
pub fn check_trusted_program(file: &Path, owner: u32) -> Result<PathBuf> {
    let real = std::fs::canonicalize(file).map_err(|e| Error::io(file, e))?;
    let meta = std::fs::metadata(&real).map_err(|e| Error::io(&real, e))?;
    if !meta.is_file() {
        return Err(not_regular(&real));
    }
    // `is_dir` only picks the fix shown: `chmod go-w` suits a program as it does a directory.
    check_owner_and_mode(&real, meta.uid(), meta.mode(), owner, true)?;
    for dir in real.ancestors().skip(1) {
        let m = std::fs::metadata(dir).map_err(|e| Error::io(dir, e))?;
        check_owner_and_mode(dir, m.uid(), m.mode(), owner, true)?;
    }
    Ok(real)
}

fn file_type(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

/// Would the permission bits let `who` do `bit` (4 read, 1 search)? The owner class applies
/// to the owner, else the group class to a member, else the other class, as the kernel does.
fn allowed(st: &FileStat, who: &Reader, bit: u32) -> bool {
    let mode = st.st_mode;
    if st.st_uid == who.uid {
        mode & (bit << 6) != 0
    } else if who.gids.contains(&st.st_gid) {
        mode & (bit << 3) != 0
    } else {
        mode & bit != 0
    }
}

fn no_access(path: &Path, st: &FileStat, who: &Reader, what: &str) -> Error {
    Error::Permissions {
        path: path.to_path_buf(),
        reason: format!(
            "{} could not {what} it itself (owner uid {}, gid {}, mode {:04o}); mshd reads only \
             what the user can",
            user_label(who.uid),
            st.st_uid,
            st.st_gid,
            st.st_mode & 0o7777
        ),
    }
}

fn check_owner_and_mode(path: &Path, owner: u32, mode: u32, uid: u32, is_dir: bool) -> Result<()> {
    let mode = mode & 0o7777;
    let shown = path.display();
    if owner != 0 && owner != uid {
        return Err(Error::Permissions {
            path: path.to_path_buf(),
            reason: format!(
                "bad ownership or modes: owned by {}, not by {} or root; fix with chown {} {shown}",
                user_label(owner),
                user_label(uid),
                user_name(uid).unwrap_or_else(|| uid.to_string()),
            ),
        });
    }
    let writable = match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (true, true) => "group and others",
        (true, false) => "group",
        (false, true) => "others",
        (false, false) => return Ok(()),
    };
    let fix = if is_dir {
        format!("chmod go-w {shown}")
    } else {
        format!("chmod 600 {shown}")
    };
    Err(Error::Permissions {
        path: path.to_path_buf(),
        reason: format!(
            "bad ownership or modes: writable by {writable} (mode {mode:04o}); fix with {fix}"
        ),
    })
}

fn user_name(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}

pub(crate) fn user_label(uid: u32) -> String {
    match user_name(uid) {
        Some(name) => format!("{name} (uid {uid})"),
        None => format!("uid {uid}"),
    }
}

/// A private key readable by group or others is refused, as OpenSSH does — but only when the
/// file belongs to the user running us: a key owned by someone else (root reading a user's
/// key, say) is not this user's to protect.
pub fn check_private_key_mode(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let mode = meta.permissions().mode() & 0o7777;
    if meta.uid() == nix::unistd::getuid().as_raw() && mode & 0o077 != 0 {
        return Err(Error::Permissions {
            path: path.to_path_buf(),
            reason: format!(
                "permissions {mode:04o} are too open: a private key must not be accessible by others; fix with chmod 600 {}",
                path.display()
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> Reader {
        Reader {
            uid: nix::unistd::geteuid().as_raw(),
            gids: vec![nix::unistd::getegid().as_raw()],
            home: PathBuf::from("/nonexistent-home"),
            strict_modes: false,
            check_access: true,
        }
    }

    #[test]
    fn read_file_as_refuses_fifos_big_files_and_reads_the_rest() {
        let dir = crate::known_hosts::test_dir();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
        let e = read_file_as(&fifo, &me(), 100, READ_TIMEOUT).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");

        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 101]).unwrap();
        let e = read_file_as(&big, &me(), 100, READ_TIMEOUT).unwrap_err();
        assert!(
            e.to_string().contains("larger than the 100-byte limit"),
            "{e}"
        );
        assert_eq!(
            read_file_as(&big, &me(), 101, READ_TIMEOUT).unwrap(),
            Some(vec![b'x'; 101])
        );
        // Through a symlink: the file it resolves to is read.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&big, &link).unwrap();
        assert_eq!(
            read_file_as(&link, &me(), 101, READ_TIMEOUT)
                .unwrap()
                .map(|b| b.len()),
            Some(101)
        );
        assert_eq!(
            read_file_as(&dir.path().join("missing"), &me(), 1, READ_TIMEOUT).unwrap(),
            None
        );
    }

    /// A program writable by its group, or in a directory others can write, is refused with
    /// the path that fails (the nearest such directory).
    #[test]
    fn check_trusted_program_refuses_writable_programs_and_directories() {
        let dir = crate::known_hosts::test_dir();
        let me = nix::unistd::geteuid().as_raw();
        let bin = std::fs::canonicalize(dir.path()).unwrap().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let prog = bin.join("keys");
        std::fs::write(&prog, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o775)).unwrap();
        let e = check_trusted_program(&prog, me).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}: ", prog.display())), "{e}");
        assert!(e.contains("writable by group"), "{e}");
        assert!(e.contains("chmod go-w"), "{e}");
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = check_trusted_program(&prog, me).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}: ", bin.display())), "{e}");
        assert!(e.contains("writable by group and others"), "{e}");
        let e = check_trusted_program(&bin.join("missing"), me).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
    }

    /// A read that overruns its time is refused and counted as stuck until its thread ends.
    #[test]
    fn an_overrun_read_is_refused_and_uncounted_when_its_thread_ends() {
        let dir = crate::known_hosts::test_dir();
        let f = dir.path().join("f");
        std::fs::write(&f, "x").unwrap();
        let e = read_file_as(&f, &me(), 10, Duration::ZERO);
        if let Err(e) = e {
            assert!(
                crate::Chain(&e).to_string().contains("not read within 0s"),
                "{e}"
            );
        }
        let start = std::time::Instant::now();
        while STUCK_READS.load(Ordering::Relaxed) != 0 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "stuck count leaked"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
