//! Changes to known_hosts files: locked appends and atomic rewrites.
//!
//! Nothing here follows a symlink at a name it creates or replaces (see `crate::safefs`):
//! root rewriting a user's file must not be steered into creating or chowning another file.
//!
//! Every change takes an exclusive `flock` on a lock file beside the database
//! (`known_hosts.lock`; left in place, since removing a lock file races with its next user),
//! re-reads the current file under the lock, writes the complete new contents to a temporary
//! file in the same directory, fsyncs it and renames it over the original. Readers that take
//! no lock (msh verifying a host) therefore see either the old or the new file, never half a
//! line, and many concurrent writers never lose each other's lines.
//!
//! Rewrites (`remove_host` like `ssh-keygen -R`, `hash_file` like `ssh-keygen -H`) keep the
//! previous file as `PATH.old` and keep every line they do not change byte-for-byte,
//! including comments and lines that do not parse (ssh-keygen refuses to rewrite such a file;
//! msh keeps them, so nothing is lost).

use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use nix::fcntl::Flock;
use rand::Rng as _;
use russh::keys::PublicKey;

use super::parse::{parse_line, HASH_LEN};
use super::verify::{entry_matches_name, hash_host_name};
use super::{host_key_name, HostField, Line, Marker};
use crate::safefs::{self, Contents as Existing, Dir};
use crate::{Error, Result};

/// Mode of a known_hosts file msh creates (ssh creates them 0644; 0600 keeps the list of
/// hosts a user visits private).
const NEW_FILE_MODE: u32 = 0o600;

/// `name` hashed as `|1|base64(salt)|base64(HMAC-SHA1(salt, name))` with a fresh random
/// 20-byte salt. The name is lowercased first, because ssh and msh lowercase the host
/// name they look up.
pub fn hashed_name(name: &str) -> String {
    let mut salt = [0u8; HASH_LEN];
    rand::rng().fill_bytes(&mut salt);
    format!(
        "|1|{}|{}",
        BASE64.encode(salt),
        BASE64.encode(hash_host_name(&salt, &name.to_ascii_lowercase()))
    )
}

/// The known_hosts line (without newline) recording `key` for `host` on `port`:
/// `NAME KEYTYPE BASE64`, NAME hashed when `hash`. The key's comment is not written.
pub fn format_line(host: &str, port: u16, key: &PublicKey, hash: bool) -> Result<String> {
    let name = host_key_name(&host.to_ascii_lowercase(), port);
    let name = if hash { hashed_name(&name) } else { name };
    let bare = PublicKey::new(key.key_data().clone(), "");
    let key_text = bare
        .to_openssh()
        .map_err(|e| Error::Invalid(format!("cannot encode the host key for {host}: {e}")))?;
    Ok(format!("{name} {}", key_text.trim_end()))
}

/// Appends `host`'s key under an exclusive lock, atomically, hashing the name when `hash`.
///
/// Creates the parent directory (0700) and the file (0600, owned by the directory's owner)
/// when missing; an existing file keeps its mode and owner, and its bytes stay as they were
/// (a final newline is added first if it lacked one). If another process recorded the same
/// key for the same name meanwhile, nothing is written. A symlinked file is updated at its
/// target when the link belongs to the user running us or to root (see `resolve_symlink`).
pub fn append(path: &Path, host: &str, port: u16, key: &PublicKey, hash: bool) -> Result<()> {
    // `UserKnownHostsFile=/dev/null` is a common idiom. A device (or FIFO) must never be
    // replaced by a temp-file rename, nor get a lock file beside it in /dev: write the line
    // to it in place, as OpenSSH does (for /dev/null: nowhere).
    if let Some(special) = existing_non_regular(path)? {
        let line = format_line(host, port, key, hash)? + "\n";
        return OpenOptions::new()
            .append(true)
            // What was looked at, not a symlink swapped in since.
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&special)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .map_err(|e| Error::io(&special, e));
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| Error::io(parent, e))?;
    }
    let (dir, name) = resolve_symlink(path)?;
    let _lock = lock(&dir, &name)?;
    let current = read_existing(&dir, &name)?;
    let old = current.as_ref().map(|c| c.bytes.as_slice()).unwrap_or(&[]);

    let host_name = host_key_name(&host.to_ascii_lowercase(), port);
    if already_recorded(old, &host_name, key) {
        return Ok(());
    }
    let mut contents = Vec::with_capacity(old.len() + 128);
    contents.extend_from_slice(old);
    if !contents.is_empty() && !contents.ends_with(b"\n") {
        contents.push(b'\n');
    }
    contents.extend_from_slice(format_line(host, port, key, hash)?.as_bytes());
    contents.push(b'\n');
    replace_file(&dir, &name, &contents, current.as_ref())
}

/// What `update_host_keys` changed.
#[derive(Debug, Default)]
pub struct HostKeysUpdate {
    /// Keys appended.
    pub added: Vec<PublicKey>,
    /// Keys whose lines were removed (one entry per line).
    pub removed: Vec<PublicKey>,
}

/// Brings `host`'s plain keys in line with what the server announced and proved
/// (UpdateHostKeys, as OpenSSH's clientloop.c `update_known_hosts`), under the lock and in
/// one atomic rewrite: appends every key of `add` not already recorded for exactly that
/// name, and removes the lines that are exactly `host_key_name(host, port)` (a single plain
/// name or a hashed name of it, no marker) whose key is not in `offered`. Lines naming
/// several hosts or patterns are never touched: they may speak for other hosts too. The
/// previous file is kept as `PATH.old` when a line is removed (ssh keeps one too). Nothing
/// is written when nothing changes.
pub fn update_host_keys(
    path: &Path,
    host: &str,
    port: u16,
    offered: &[PublicKey],
    add: &[PublicKey],
    hash: bool,
) -> Result<HostKeysUpdate> {
    if existing_non_regular(path)?.is_some() {
        // /dev/null: nothing to keep up to date.
        return Ok(HostKeysUpdate::default());
    }
    let (dir, file_name) = resolve_symlink(path)?;
    let _lock = lock(&dir, &file_name)?;
    let current = read_existing(&dir, &file_name)?;
    let old = current.as_ref().map(|c| c.bytes.as_slice()).unwrap_or(&[]);
    let name = host_key_name(&host.to_ascii_lowercase(), port);
    let mut update = HostKeysUpdate::default();
    let mut out = Vec::with_capacity(old.len() + 256);
    for (i, raw) in old.split_inclusive(|b| *b == b'\n').enumerate() {
        if let Line::Entry(e) = parse_line(i + 1, &String::from_utf8_lossy(strip_eol(raw))) {
            let exactly_this_host = match &e.hosts {
                HostField::Patterns(list) => list.eq_ignore_ascii_case(&name),
                HostField::Hashed { .. } => entry_matches_name(&e, &name),
            };
            if e.marker == Marker::None
                && exactly_this_host
                && !offered.iter().any(|k| k.key_data() == e.key.key_data())
            {
                update.removed.push(e.key);
                continue;
            }
        }
        out.extend_from_slice(raw);
    }
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    for key in add {
        if already_recorded(&out, &name, key)
            || update.added.iter().any(|k| k.key_data() == key.key_data())
        {
            continue;
        }
        out.extend_from_slice(format_line(host, port, key, hash)?.as_bytes());
        out.push(b'\n');
        update.added.push(key.clone());
    }
    if update.added.is_empty() && update.removed.is_empty() {
        return Ok(update);
    }
    if let (Some(c), false) = (current.as_ref(), update.removed.is_empty()) {
        keep_old(&dir, &file_name, c)?;
    }
    replace_file(&dir, &file_name, &out, current.as_ref())?;
    Ok(update)
}

/// Removes every plain-key line for `host` on `port` (as `ssh-keygen -R`): lines whose
/// pattern list or hashed name matches `host_key_name(host, port)`, including comma lists
/// and wildcard lines that match. `@cert-authority` and `@revoked` lines are kept, as
/// ssh-keygen keeps them. Returns the number of lines removed; when nothing matched, the
/// file is left untouched (no `.old`), else the previous file is kept as `PATH.old`.
/// A missing file is an error naming the path.
pub fn remove_host(path: &Path, host: &str, port: u16) -> Result<usize> {
    let (dir, file_name) = resolve_symlink(path)?;
    let _lock = lock(&dir, &file_name)?;
    let current = read_required(&dir, &file_name)?;
    let name = host_key_name(host, port);
    let mut removed = 0;
    let mut out = Vec::with_capacity(current.bytes.len());
    for (i, raw) in current.bytes.split_inclusive(|b| *b == b'\n').enumerate() {
        if let Line::Entry(e) = parse_line(i + 1, &String::from_utf8_lossy(strip_eol(raw))) {
            if e.marker == Marker::None && entry_matches_name(&e, &name) {
                removed += 1;
                continue;
            }
        }
        out.extend_from_slice(raw);
    }
    if removed > 0 {
        keep_old(&dir, &file_name, &current)?;
        replace_file(&dir, &file_name, &out, Some(&current))?;
    }
    Ok(removed)
}

/// Hashes the host names of `path` (as `ssh-keygen -H`): each name of a plain line's comma
/// list becomes its own `|1|salt|hash KEYTYPE BASE64 [COMMENT]` line. Kept as they are:
/// already hashed lines, `@cert-authority` / `@revoked` lines, lines whose host field has a
/// wildcard or negation (`*`, `?`, `!`), comments and invalid lines. Names are lowercased
/// before hashing (see [`hashed_name`]); empty names in a list (`a,,b`) are skipped, where
/// ssh-keygen would stop at them and drop the names after. Always rewrites the file and
/// keeps the previous one as `PATH.old` (which still holds the plain names). Returns the
/// number of names hashed. A missing file is an error naming the path.
pub fn hash_file(path: &Path) -> Result<usize> {
    let (dir, file_name) = resolve_symlink(path)?;
    let _lock = lock(&dir, &file_name)?;
    let current = read_required(&dir, &file_name)?;
    let mut hashed = 0;
    let mut out = Vec::with_capacity(current.bytes.len() * 2);
    for (i, raw) in current.bytes.split_inclusive(|b| *b == b'\n').enumerate() {
        let line = strip_eol(raw);
        if let Line::Entry(e) = parse_line(i + 1, &String::from_utf8_lossy(line)) {
            if let (Marker::None, HostField::Patterns(list)) = (e.marker, &e.hosts) {
                let names: Vec<&str> = list.split(',').filter(|n| !n.is_empty()).collect();
                if !list.contains(['*', '?', '!']) && !names.is_empty() {
                    let rest = after_host_field(line);
                    for name in names {
                        out.extend_from_slice(hashed_name(name).as_bytes());
                        out.push(b' ');
                        out.extend_from_slice(rest);
                        out.push(b'\n');
                        hashed += 1;
                    }
                    continue;
                }
            }
        }
        out.extend_from_slice(raw);
    }
    keep_old(&dir, &file_name, &current)?;
    replace_file(&dir, &file_name, &out, Some(&current))?;
    Ok(hashed)
}

/// The line without its `\n` (a `\r` before it stays: it is part of the line's bytes).
fn strip_eol(raw: &[u8]) -> &[u8] {
    raw.strip_suffix(b"\n").unwrap_or(raw)
}

/// The bytes of an entry line from its key type on (the host field and the whitespace after
/// it skipped), as ssh-keygen -H copies them.
fn after_host_field(line: &[u8]) -> &[u8] {
    let is_sep = |b: &u8| matches!(b, b' ' | b'\t' | b'\r');
    let start = line.iter().position(|b| !is_sep(b)).unwrap_or(line.len());
    let rest = line.get(start..).unwrap_or_default();
    let host_end = rest.iter().position(is_sep).unwrap_or(rest.len());
    let rest = rest.get(host_end..).unwrap_or_default();
    let key_start = rest.iter().position(|b| !is_sep(b)).unwrap_or(rest.len());
    rest.get(key_start..).unwrap_or_default()
}

/// Is `key` already recorded as a plain key for exactly `name`?
fn already_recorded(bytes: &[u8], name: &str, key: &PublicKey) -> bool {
    bytes
        .split_inclusive(|b| *b == b'\n')
        .enumerate()
        .any(
            |(i, raw)| match parse_line(i + 1, &String::from_utf8_lossy(strip_eol(raw))) {
                Line::Entry(e) => {
                    e.marker == Marker::None
                        && e.key.key_data() == key.key_data()
                        && entry_matches_name(&e, name)
                }
                _ => false,
            },
        )
}

/// `path` with `suffix` appended to its file name (`known_hosts` → `known_hosts.lock`).
#[cfg(test)]
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s: OsString = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Follows a symlinked known_hosts file to its target (which may not exist yet), so that
/// the rename replaces the target and the link survives; only links owned by the user
/// running us or by root are followed (see `safefs::resolve_own_symlinks`). Returns the
/// directory and name of the file itself.
fn resolve_symlink(path: &Path) -> Result<(Dir, OsString)> {
    safefs::resolve_own_symlinks(path)
}

/// Takes the exclusive lock for `dir/name` (released when the returned value is dropped).
fn lock(dir: &Dir, name: &OsStr) -> Result<Flock<File>> {
    // Every rewrite goes through here first: a device or FIFO is never rewritten (the rename
    // would replace it) and gets no lock file beside it.
    if let Some(st) = dir.lstat(name)? {
        if st.st_mode & nix::libc::S_IFMT != nix::libc::S_IFREG {
            return Err(Error::Invalid(format!(
                "{} is not a regular file: refusing to rewrite it",
                dir.path_of(name).display()
            )));
        }
    }
    crate::lockfile::exclusive(dir, name)
}

/// Reads `dir/name` with its mode and owner, never through a symlink; `None` when it does
/// not exist.
fn read_existing(dir: &Dir, name: &OsStr) -> Result<Option<Existing>> {
    dir.read_regular(name, u64::MAX)
}

/// Like `read_existing`, but a missing file is an error (there is nothing to rewrite).
fn read_required(dir: &Dir, name: &OsStr) -> Result<Existing> {
    read_existing(dir, name)?.ok_or_else(|| {
        Error::io(
            dir.path_of(name),
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such known_hosts file (check the -f path)",
            ),
        )
    })
}

/// Makes `NAME.old` hold the current file: a hard link to it when the filesystem allows,
/// else a new file with its bytes, mode and owner. Neither follows a symlink at `NAME.old`
/// (link and rename replace the name itself), and there is no copy into an existing file.
fn keep_old(dir: &Dir, name: &OsStr, current: &Existing) -> Result<()> {
    let mut old = name.to_owned();
    old.push(".old");
    dir.remove(&old)?;
    if dir.hard_link(name, &old).is_ok() {
        return Ok(());
    }
    dir.replace(
        &old,
        &current.bytes,
        current.mode,
        Some((current.uid, current.gid)),
    )
}

/// The resolved path when `path` exists and is not a regular file (a device such as
/// /dev/null, a FIFO, a directory); None when it is a regular file or missing.
fn existing_non_regular(path: &Path) -> Result<Option<PathBuf>> {
    let (dir, name) = match resolve_symlink(path) {
        // A missing directory (made by `append`) holds no device.
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None)
        }
        r => r?,
    };
    match dir.lstat(&name)? {
        Some(st) if st.st_mode & nix::libc::S_IFMT != nix::libc::S_IFREG => {
            Ok(Some(dir.path_of(&name)))
        }
        _ => Ok(None),
    }
}

/// Atomically replaces `dir/name` with `contents`: temp file in the same directory, same
/// mode and owner as `existing` (0600 and the directory's owner for a new file), fsync,
/// rename, fsync directory.
fn replace_file(
    dir: &Dir,
    name: &OsStr,
    contents: &[u8],
    existing: Option<&Existing>,
) -> Result<()> {
    let (mode, owner) = match existing {
        // Root editing a user's file must leave it the user's.
        Some(e) => (e.mode, (e.uid, e.gid)),
        // A new file belongs to the owner of its directory (root recording a host in a
        // user's ~/.ssh).
        None => (NEW_FILE_MODE, dir.owner()?),
    };
    dir.replace(name, contents, mode, Some(owner))
}

#[cfg(test)]
#[path = "write_tests.rs"]
mod write_tests;
