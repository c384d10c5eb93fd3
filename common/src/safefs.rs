//! File operations that cannot be steered by a symbolic link or hard link planted where msh
//! creates, replaces or reads a file. msh-keygen and mshd run as root on files inside users'
//! directories (`msh-keygen known-hosts remove -f ~alice/.ssh/known_hosts`), where the user
//! can put anything under any name at any time, so:
//!
//! - the directory is opened once and every name is used relative to that descriptor
//!   (`openat`, `renameat`, `linkat`, `unlinkat`), never as a path re-resolved later;
//! - nothing is opened through a symlink (`O_NOFOLLOW`); a new file is created `O_EXCL`
//!   (which also refuses a dangling symlink), so root never creates a file the user chose;
//! - ownership is only ever given (`fchown`) to a file this process has just created;
//! - a file is replaced by writing a new temporary file and renaming it over the old name,
//!   which replaces the directory entry (a symlink there is replaced, not followed).
//!
//! Symlinks in the directory part of a path are followed, as ssh-keygen does: the names
//! written in the directory are fixed (`NAME`, `NAME.lock`, `NAME.old`, `.NAME.tmp…`), so a
//! user who points their own directory elsewhere makes root write files of those names only,
//! owned by that directory's owner.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};
use rand::Rng as _;

use crate::{Error, Result};

/// An open directory, with the path it was opened by (for messages).
pub(crate) struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

/// The bytes of a regular file with the mode and owner it had when read.
pub(crate) struct Contents {
    pub(crate) bytes: Vec<u8>,
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

fn errno_io(e: Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e as i32)
}

impl Dir {
    /// Opens `dir` (symlinks in it followed; see the module comment).
    pub(crate) fn open(dir: &Path) -> Result<Dir> {
        let fd = nix::fcntl::open(
            dir,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io(dir, errno_io(e)))?;
        Ok(Dir {
            fd,
            path: dir.to_path_buf(),
        })
    }

    /// Opens the directory holding `path` and returns it with the file's name.
    pub(crate) fn parent_of(path: &Path) -> Result<(Dir, OsString)> {
        let name = path
            .file_name()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| Error::Invalid(format!("{}: not a file name", path.display())))?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        Ok((Dir::open(dir)?, name.to_owned()))
    }

    /// `DIR/name`, for messages.
    pub(crate) fn path_of(&self, name: &OsStr) -> PathBuf {
        self.path.join(name)
    }

    /// The directory's owner (uid, gid), read from the open descriptor.
    pub(crate) fn owner(&self) -> Result<(u32, u32)> {
        let st = nix::sys::stat::fstat(&self.fd).map_err(|e| Error::io(&self.path, errno_io(e)))?;
        Ok((st.st_uid, st.st_gid))
    }

    /// `lstat` of `name`: `None` when it does not exist.
    pub(crate) fn lstat(&self, name: &OsStr) -> Result<Option<FileStat>> {
        match nix::sys::stat::fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(Error::io(self.path_of(name), errno_io(e))),
        }
    }

    /// The target of the symlink `name`.
    pub(crate) fn read_link(&self, name: &OsStr) -> Result<PathBuf> {
        nix::fcntl::readlinkat(&self.fd, name)
            .map(PathBuf::from)
            .map_err(|e| Error::io(self.path_of(name), errno_io(e)))
    }

    /// Opens `name` for reading without following a symlink and without blocking on a FIFO
    /// or device: `None` when it does not exist; an error naming the file when it is a
    /// symlink. The caller checks the file type on the returned descriptor.
    pub(crate) fn open_read(&self, name: &OsStr) -> Result<Option<File>> {
        let flags = OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC;
        match nix::fcntl::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => Ok(Some(File::from(fd))),
            Err(Errno::ENOENT) => Ok(None),
            Err(Errno::ELOOP) => Err(symlink_refused(&self.path_of(name))),
            Err(e) => Err(Error::io(self.path_of(name), errno_io(e))),
        }
    }

    /// Creates `name`, which must not exist (not even as a dangling symlink), for writing.
    pub(crate) fn create_new(&self, name: &OsStr, mode: u32) -> std::io::Result<File> {
        let flags = OFlag::O_WRONLY
            | OFlag::O_CREAT
            | OFlag::O_EXCL
            | OFlag::O_NOFOLLOW
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC;
        nix::fcntl::openat(&self.fd, name, flags, Mode::from_bits_truncate(mode))
            .map(File::from)
            .map_err(errno_io)
    }

    /// Creates a new temporary file `.NAME.tmp.PID.RANDOM` beside `name`.
    pub(crate) fn create_temp(&self, name: &OsStr, mode: u32) -> Result<(File, OsString)> {
        let mut last = None;
        for _ in 0..16 {
            let mut tmp = OsString::from(".");
            tmp.push(name);
            tmp.push(format!(
                ".tmp.{}.{:016x}",
                std::process::id(),
                rand::rng().next_u64()
            ));
            match self.create_new(&tmp, mode) {
                Ok(f) => return Ok((f, tmp)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(Error::io(self.path_of(&tmp), e)),
            }
        }
        Err(Error::io(
            self.path_of(name),
            last.unwrap_or_else(|| std::io::Error::other("cannot create a temporary file")),
        ))
    }

    /// Renames `from` to `to` within this directory (`to`, whatever it is, is replaced).
    pub(crate) fn rename(&self, from: &OsStr, to: &OsStr) -> Result<()> {
        nix::fcntl::renameat(&self.fd, from, &self.fd, to)
            .map_err(|e| Error::io(self.path_of(to), errno_io(e)))
    }

    /// Removes `name` (a missing one is fine).
    pub(crate) fn remove(&self, name: &OsStr) -> Result<()> {
        match nix::unistd::unlinkat(&self.fd, name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(Error::io(self.path_of(name), errno_io(e))),
        }
    }

    /// Hard-links `from` as `to` (`from` itself, never what a symlink there points at).
    pub(crate) fn hard_link(&self, from: &OsStr, to: &OsStr) -> std::io::Result<()> {
        nix::unistd::linkat(&self.fd, from, &self.fd, to, AtFlags::empty()).map_err(errno_io)
    }

    /// fsync of the directory, making renames in it durable.
    pub(crate) fn sync(&self) -> Result<()> {
        nix::unistd::fsync(&self.fd).map_err(|e| Error::io(&self.path, errno_io(e)))
    }

    /// Reads `name` if it is a regular file: `None` when missing; an error when it is a
    /// symlink, not a regular file, or larger than `limit` bytes.
    pub(crate) fn read_regular(&self, name: &OsStr, limit: u64) -> Result<Option<Contents>> {
        let Some(mut f) = self.open_read(name)? else {
            return Ok(None);
        };
        let path = self.path_of(name);
        let meta = f.metadata().map_err(|e| Error::io(&path, e))?;
        if !meta.is_file() {
            return Err(Error::Invalid(format!(
                "{} is not a regular file: refusing to use it",
                path.display()
            )));
        }
        let bytes = read_capped(&mut f, &path, limit)?;
        Ok(Some(Contents {
            bytes,
            mode: meta.permissions().mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
        }))
    }

    /// Atomically replaces `name` with `contents`: a new temporary file (mode `mode`, given
    /// to `owner` when set), fsync, rename over `name`, fsync of the directory. The
    /// temporary file is removed on error.
    pub(crate) fn replace(
        &self,
        name: &OsStr,
        contents: &[u8],
        mode: u32,
        owner: Option<(u32, u32)>,
    ) -> Result<()> {
        let (mut f, tmp) = self.create_temp(name, mode & 0o600)?;
        let tmp_path = self.path_of(&tmp);
        let result = (|| -> Result<()> {
            let io = |e| Error::io(&tmp_path, e);
            // Created owner-only before any byte is written; then exactly `mode`, whatever
            // the umask cut at open.
            f.set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(io)?;
            if let Some(owner) = owner {
                give_to(&f, &tmp_path, owner)?;
            }
            f.write_all(contents).map_err(io)?;
            f.sync_all().map_err(io)?;
            self.rename(&tmp, name)
        })();
        if result.is_err() {
            let _ = self.remove(&tmp);
            return result;
        }
        // A failure here leaves a correct file; it only matters after a crash, and is
        // reported all the same.
        self.sync()
    }
}

/// Reads at most `limit` bytes from `f`; more is an error naming the file and the limit.
pub(crate) fn read_capped(f: &mut File, path: &Path, limit: u64) -> Result<Vec<u8>> {
    let too_big = || {
        Error::Invalid(format!(
            "{} is larger than the {limit}-byte limit: refusing to read it",
            path.display()
        ))
    };
    let size = f.metadata().map_err(|e| Error::io(path, e))?.len();
    if size > limit {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    // The file may grow after fstat: read one byte past the limit to notice.
    f.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(too_big());
    }
    Ok(bytes)
}

pub(crate) fn symlink_refused(path: &Path) -> Error {
    Error::Invalid(format!(
        "{} is a symbolic link: refusing to follow it (remove it, or give the path of the \
         file it points to)",
        path.display()
    ))
}

/// Makes `file` (at `path`), which this process has just created, owned by `owner` (uid,
/// gid) if it is not already. Only root can give a file away: for anyone else the refusal
/// is expected and the file stays theirs, like a file ssh-keygen would write.
pub(crate) fn give_to(file: &File, path: &Path, owner: (u32, u32)) -> Result<()> {
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if (meta.uid(), meta.gid()) == owner {
        return Ok(());
    }
    match nix::unistd::fchown(
        file.as_fd(),
        Some(nix::unistd::Uid::from_raw(owner.0)),
        Some(nix::unistd::Gid::from_raw(owner.1)),
    ) {
        Ok(()) | Err(Errno::EPERM) => Ok(()),
        Err(errno) => Err(Error::io(path, errno_io(errno))),
    }
}

/// Resolves a symlink at `path`'s last component when the link is owned by the user running
/// us or by root (a link someone else planted is refused: as root, following it would let
/// that user choose which file root rewrites). Returns the directory and name of the file
/// itself, which then is not a symlink (or does not exist).
pub(crate) fn resolve_own_symlinks(path: &Path) -> Result<(Dir, OsString)> {
    let me = nix::unistd::geteuid().as_raw();
    let mut p = path.to_path_buf();
    // The kernel's own limit on nested links.
    for _ in 0..40 {
        let (dir, name) = Dir::parent_of(&p)?;
        let Some(st) = dir.lstat(&name)? else {
            return Ok((dir, name));
        };
        if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFLNK {
            return Ok((dir, name));
        }
        let link = dir.path_of(&name);
        if st.st_uid != me && st.st_uid != 0 {
            return Err(Error::Invalid(format!(
                "{} is a symbolic link owned by {}: refusing to follow another user's link \
                 (it could point at any file); give the path of the file it points to if \
                 that is the file you mean",
                link.display(),
                crate::perms::user_label(st.st_uid)
            )));
        }
        let to = dir.read_link(&name)?;
        // The link must still be the one whose owner was checked.
        match dir.lstat(&name)? {
            Some(again) if again.st_ino == st.st_ino && again.st_uid == st.st_uid => {}
            _ => {
                return Err(Error::Invalid(format!(
                    "{} changed while it was being read; try again",
                    link.display()
                )))
            }
        }
        p = match link.parent() {
            Some(d) if to.is_relative() => d.join(to),
            _ => to,
        };
    }
    Err(Error::io(
        path,
        std::io::Error::other("too many levels of symbolic links"),
    ))
}

/// Writes `contents` to `path` atomically (temporary file in the same directory created with
/// `mode`, synced, renamed over `path`), never following a symlink at `path` or at the
/// temporary name: a symlink at `path` is replaced by the file.
pub fn write_file_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let (dir, name) = Dir::parent_of(path)?;
    dir.replace(&name, contents, mode, None)
}
