//! File-permission checks: OpenSSH's StrictModes for authorized_keys (`auth_secure_path`) and
//! the private-key permission check (`sshkey_perm_ok`). Both read real metadata of real paths;
//! errors name the path that fails, why, and the command that fixes it.

use std::fs::Metadata;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::{Error, Result};

/// StrictModes: `file` and every directory above it up to `home` (or `/` when the file is
/// not under home) must be owned by `uid` or root and not group/world-writable. The file must
/// be a regular file. Symbolic links are resolved first, as OpenSSH's `realpath` does, so the
/// directories checked are those that really hold the file.
pub fn check_strict_modes(file: &Path, uid: u32, home: &Path) -> Result<()> {
    let real = std::fs::canonicalize(file).map_err(|e| Error::io(file, e))?;
    // A home that cannot be resolved never matches, so the walk goes on to `/`, as in OpenSSH.
    let home = std::fs::canonicalize(home).ok();
    let meta = std::fs::metadata(&real).map_err(|e| Error::io(&real, e))?;
    if !meta.is_file() {
        return Err(Error::Permissions {
            path: real,
            reason: "bad ownership or modes: not a regular file".to_string(),
        });
    }
    check_owner_and_mode(&real, &meta, uid, false)?;
    let mut current = real.as_path();
    while let Some(dir) = current.parent() {
        let meta = std::fs::metadata(dir).map_err(|e| Error::io(dir, e))?;
        check_owner_and_mode(dir, &meta, uid, true)?;
        if home.as_deref() == Some(dir) {
            break;
        }
        current = dir;
    }
    Ok(())
}

fn check_owner_and_mode(path: &Path, meta: &Metadata, uid: u32, is_dir: bool) -> Result<()> {
    let mode = meta.permissions().mode() & 0o7777;
    let owner = meta.uid();
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
