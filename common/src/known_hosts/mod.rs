//! known_hosts: OpenSSH's host-key database. Format (one entry a line):
//! `[@cert-authority|@revoked] host-patterns keytype base64 [comment]`, e.g.
//! `[build.internal]:2222,10.0.0.5 ssh-ed25519 AAAAC3Nza... ops@laptop`.
//! `parse` is pure; `verify` decides; `write` changes files (atomic, locked).
//!
//! API CONTRACT (binaries code against these names; keep them):
//! - `host_key_name(host, port) -> String`: `host` for port 22, else `[host]:port`.
//! - `KnownHostsFile::load(path) -> Result<KnownHostsFile>`: missing file = empty; malformed
//!   lines kept as `Line::Invalid` (reported with path:line by `warnings()`), never dropped.
//! - `verify::check(files, host, port, key) -> HostKeyVerdict` (with HostKeyAlias: pass the
//!   alias as `host` and port 22, or call `check_alias`).
//! - `verify::find(file, host, port)`, `verify::cert_authorities_for(files, host, port)`,
//!   `verify::entry_matches_host(entry, host, port)`, `verify::known_algorithms(files, host,
//!   port)` (to prefer known host-key algorithms, as OpenSSH does).
//! - `write::append(path, host, port, key, hash) -> Result<()>`: locked, atomic.
//! - `write::remove_host(path, host, port) -> Result<usize>`, `write::hash_file(path) -> Result<usize>`: atomic
//!   rewrite keeping `path.old`.

pub mod parse;
pub mod verify;
pub mod write;

pub use parse::{Entry, HostField, KnownHostsFile, Line, Marker};
pub use verify::{
    cert_authorities_for, check, check_alias, entry_matches_host, find, known_algorithms,
    HostKeyVerdict,
};

/// The name under which a host is stored: `host` on port 22, `[host]:port` otherwise.
pub fn host_key_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// A fresh directory under the workspace's `target/` for unit tests (never /tmp: tests must
/// not depend on /tmp's sticky, world-writable permissions).
#[cfg(test)]
pub(crate) fn test_dir() -> tempfile::TempDir {
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/unit-tmp");
    std::fs::create_dir_all(&base).unwrap();
    tempfile::Builder::new()
        .prefix("known-hosts-")
        .tempdir_in(base)
        .unwrap()
}

/// Fixed keys for the unit tests, generated with ssh-keygen (public halves only).
#[cfg(test)]
pub(crate) mod test_keys {
    use russh::keys::PublicKey;

    pub(crate) const ED1: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIu4PD+s7WG3OO7o1Ix9Byw35Fe9QEwR4T0Pw4uv5e9/";
    pub(crate) const ED2: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMNoP7qA+qUukkB9yFk9CTXgrSgEvVOhJvOWAFE04AH0";
    pub(crate) const ED3: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGoXsKYeIWbMiHisQqRUVqP5gUWOYo8Z+Ghyw9fqPQaW";
    pub(crate) const RSA1: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDBoIAS+smIRQdiYQKIkzQIzGVnO4u8eJK7LwtMQWtZYahBJvwXjlHKCgQ2FCMNjQcWpVLCYqpl+E4GemDAfdrnwF0Z6IZE08wiLcveBcJnxfVmBo+gqzJLEqzbkydKFBI1gjFNlTKZ4DlL4aBUgtXRsMgsPA7wsBWMrM/LPdS4qFBhacRa6eroPWxYUBk6Zk3WtYYy3InfRq9pM5dLe8+xrvNQvPoMa6aDazFmy1I8kWAVd5oTei1DXsi5+xpsi9Wrp9nAI6NelGcFCs+I7dkzMNuAJy7uvQ2eRu/kqltgdaw/7esLOeh+LSJP88VqnwWgXPsVzEIwsNWwc5wyBeVL";

    pub(crate) fn key(s: &str) -> PublicKey {
        PublicKey::from_openssh(s).unwrap()
    }
}
