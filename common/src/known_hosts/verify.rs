//! Host-key policy: what known_hosts says about a host's key.

use std::path::PathBuf;

use russh::keys::PublicKey;

use super::KnownHostsFile;

/// What the known_hosts files say about a host key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyVerdict {
    /// An entry for this host holds this key.
    Trusted { path: PathBuf, line: usize },
    /// No entry for this host holds a key of this type (or any key).
    Unknown,
    /// The host is known with a different key of the same type: refuse.
    Changed {
        path: PathBuf,
        line: usize,
        /// SHA256 fingerprint of the key on record.
        old_fingerprint: String,
    },
    /// The key is marked `@revoked`: refuse even when otherwise trusted.
    Revoked { path: PathBuf, line: usize },
}

/// Checks `key` presented by `host` on `port` against `files` (user file first, then global).
pub fn check(files: &[KnownHostsFile], host: &str, port: u16, key: &PublicKey) -> HostKeyVerdict {
    let _ = (files, host, port, key);
    todo!("known_hosts check")
}
