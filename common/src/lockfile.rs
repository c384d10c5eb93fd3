//! The lock file beside a file msh rewrites (known_hosts, revocation lists): an exclusive
//! `flock` on `PATH.lock`, so that concurrent msh / msh-keygen processes each re-read, change
//! and rename in turn and no writer's line is lost.

use std::ffi::OsStr;
use std::fs::File;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::safefs::{self, Dir};
use crate::{Error, Result};

/// How long a writer waits for another to finish before giving up with a message.
const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// Takes the exclusive lock for the file `name` in `dir` on `dir/name.lock` (released when
/// the returned value is dropped; the file is left in place: removing a lock file races with
/// its next user), waiting up to `LOCK_TIMEOUT`.
pub(crate) fn exclusive(dir: &Dir, name: &OsStr) -> Result<Flock<File>> {
    let mut lock_name = name.to_owned();
    lock_name.push(".lock");
    let lock_path = dir.path_of(&lock_name);
    let mut file = open_lock_file(dir, &lock_name)?;
    let started = Instant::now();
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => return Ok(locked),
            Err((f, Errno::EWOULDBLOCK | Errno::EINTR)) if started.elapsed() < LOCK_TIMEOUT => {
                file = f;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((_, Errno::EWOULDBLOCK)) => {
                return Err(Error::Lock {
                    path: lock_path,
                    source: std::io::Error::new(
                        std::io::ErrorKind::WouldBlock,
                        format!(
                            "another process (msh or msh-keygen) has held it for {}s; \
                             retry when it has finished",
                            LOCK_TIMEOUT.as_secs()
                        ),
                    ),
                })
            }
            Err((_, errno)) => {
                return Err(Error::Lock {
                    path: lock_path,
                    source: std::io::Error::from(errno),
                })
            }
        }
    }
}

/// Opens (creating if needed) the lock file `lock_name` in `dir`. flock needs no write
/// access, so an existing lock file is opened read-only. It is never opened through a
/// symlink, and must be a regular file: a user cannot make root open (or create) some other
/// file as the lock. A new one is created `O_EXCL` and given to the owner of its directory,
/// so that root writing in a user's ~/.ssh does not leave a lock file the user cannot open;
/// an existing one is never chowned (it could be a hard link to any file).
fn open_lock_file(dir: &Dir, lock_name: &OsStr) -> Result<File> {
    let lock_path = dir.path_of(lock_name);
    // Twice at most: another process may create the file between our two attempts.
    for _ in 0..2 {
        if let Some(f) = dir.open_read(lock_name)? {
            let meta = f.metadata().map_err(|e| Error::io(&lock_path, e))?;
            if !meta.is_file() {
                return Err(Error::Invalid(format!(
                    "{} is not a regular file: refusing to use it as a lock (remove it; msh \
                     creates it again)",
                    lock_path.display()
                )));
            }
            return Ok(f);
        }
        match dir.create_new(lock_name, 0o600) {
            Ok(file) => {
                safefs::give_to(&file, &lock_path, dir.owner()?)?;
                return Ok(file);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // A symlink or a racing writer's file: look again (a symlink is refused).
                if let Some(st) = dir.lstat(lock_name)? {
                    if st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFLNK {
                        return Err(safefs::symlink_refused(&lock_path));
                    }
                }
            }
            Err(e) => return Err(Error::io(&lock_path, e)),
        }
    }
    Err(Error::Lock {
        path: lock_path,
        source: std::io::Error::other("it keeps appearing and disappearing; try again"),
    })
}
