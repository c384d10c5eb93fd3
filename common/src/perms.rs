//! File-permission checks: OpenSSH's StrictModes for authorized_keys and the private-key
//! permission check.

use std::path::Path;

use crate::Result;

/// StrictModes: `file` and every directory above it up to `home` (or `/` when the file is
/// not under home) must be owned by `uid` or root and not group/world-writable.
pub fn check_strict_modes(file: &Path, uid: u32, home: &Path) -> Result<()> {
    let _ = (file, uid, home);
    todo!("strict modes")
}

/// A private key readable by group or others is refused, as OpenSSH does.
pub fn check_private_key_mode(path: &Path) -> Result<()> {
    let _ = path;
    todo!("private key mode")
}
