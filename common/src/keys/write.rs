//! Writing a key pair: the private file (0600) and `PATH.pub` (0644), both atomically.

use std::path::Path;

use rand::rngs::SysRng;
use russh::keys::PrivateKey;

use super::public::{public_key_line, public_key_path};
use crate::{Error, Result};

/// Writes `contents` to `path` atomically: a temp file in the same directory, created with
/// `mode` (never wider), synced, then renamed over `path`; no symlink is followed (see
/// `crate::safefs`). The temp file is removed on error.
fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    crate::safefs::write_file_atomic(path, contents, mode)
}

/// Writes `key` to `path` (OpenSSH format, mode 0600, encrypted with bcrypt-pbkdf +
/// aes256-ctr when `passphrase` is non-empty) and its public half to `PATH.pub` (mode 0644).
/// Both writes are atomic; an existing file is replaced (callers decide about overwriting).
pub fn write_key_pair(path: &Path, key: &PrivateKey, passphrase: Option<&str>) -> Result<()> {
    let key_err = |reason: String| Error::Key {
        path: path.to_path_buf(),
        reason,
    };
    let pem = match passphrase {
        Some(p) if !p.is_empty() => key
            .encrypt(&mut SysRng, p)
            .map_err(|e| key_err(format!("cannot encrypt key: {e}")))?
            .to_openssh(russh::keys::ssh_key::LineEnding::LF),
        _ => key.to_openssh(russh::keys::ssh_key::LineEnding::LF),
    }
    .map_err(|e| key_err(format!("cannot encode key: {e}")))?;
    let public = format!("{}\n", public_key_line(key.public_key())?);
    write_atomic(path, pem.as_bytes(), 0o600)?;
    write_atomic(&public_key_path(path), public.as_bytes(), 0o644)
}
