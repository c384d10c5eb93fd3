//! The lock file beside a file msh rewrites (known_hosts, revocation lists): an exclusive
//! `flock` on `PATH.lock`, so that concurrent msh / msh-keygen processes each re-read, change
//! and rename in turn and no writer's line is lost.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::{Error, Result};

/// How long a writer waits for another to finish before giving up with a message.
const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// Takes the exclusive lock for `target` on `target.lock` (released when the returned value
/// is dropped; the file is left in place: removing a lock file races with its next user),
/// waiting up to `LOCK_TIMEOUT`.
pub(crate) fn exclusive(target: &Path) -> Result<Flock<File>> {
    let mut name = target.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = PathBuf::from(name);
    let mut file = open_lock_file(&lock_path)?;
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

/// Opens (creating if needed) the lock file for `target`. flock needs no write access, so an
/// existing lock file is opened read-only. A new one gets the owner of its directory, so
/// that root writing in a user's ~/.ssh does not leave a lock file the user cannot open.
fn open_lock_file(lock_path: &Path) -> Result<File> {
    match File::open(lock_path) {
        Ok(f) => return Ok(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(lock_path, e)),
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(lock_path)
        .map_err(|e| Error::io(lock_path, e))?;
    let dir = lock_path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(m) = dir.and_then(|d| std::fs::metadata(d).ok()) {
        give_to(&file, lock_path, (m.uid(), m.gid()))?;
    }
    Ok(file)
}

/// Makes `file` (at `path`) owned by `owner` (uid, gid) if it is not already. Only root can
/// give a file away: for anyone else the refusal is expected and the file stays theirs,
/// like a file ssh-keygen would write.
pub(crate) fn give_to(file: &File, path: &Path, owner: (u32, u32)) -> Result<()> {
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if (meta.uid(), meta.gid()) == owner {
        return Ok(());
    }
    match nix::unistd::fchown(
        file,
        Some(nix::unistd::Uid::from_raw(owner.0)),
        Some(nix::unistd::Gid::from_raw(owner.1)),
    ) {
        Ok(()) | Err(Errno::EPERM) => Ok(()),
        Err(errno) => Err(Error::io(path, std::io::Error::from(errno))),
    }
}
