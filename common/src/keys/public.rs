//! Public keys as one text line (`keytype base64 [comment]`) and `.pub` files.

use std::path::{Path, PathBuf};

use russh::keys::PublicKey;

use crate::{Error, Result};

/// The `.pub` path beside a private key: `PATH.pub`.
pub fn public_key_path(private: &Path) -> PathBuf {
    let mut s = private.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

/// `keytype base64 comment` for `key` with its comment (no trailing newline; no trailing
/// space when the comment is empty).
pub fn public_key_line(key: &PublicKey) -> Result<String> {
    let mut bare = key.clone();
    bare.set_comment("");
    let line = bare
        .to_openssh()
        .map_err(|e| Error::Invalid(format!("cannot encode public key: {e}")))?;
    let comment = key.comment().as_str_lossy();
    if comment.is_empty() {
        Ok(line.trim_end().to_string())
    } else {
        Ok(format!("{} {comment}", line.trim_end()))
    }
}

/// Parses one public-key line `keytype base64 [comment]` (any run of spaces or tabs between
/// fields; the comment keeps its inner spacing). The key's comment is set from the line.
pub fn parse_public_key_line(line: &str) -> std::result::Result<PublicKey, String> {
    let line = line.trim_matches(|c: char| c == ' ' || c == '\t' || c == '\r' || c == '\n');
    let is_sep = |c: char| c == ' ' || c == '\t';
    let (ktype, rest) = line
        .split_once(is_sep)
        .ok_or_else(|| "expected `keytype base64 [comment]`".to_string())?;
    let rest = rest.trim_start_matches(is_sep);
    let (blob, comment) = rest.split_once(is_sep).unwrap_or((rest, ""));
    let mut key = russh::keys::parse_public_key_base64(blob).map_err(|_| key_data_problem(blob))?;
    let algo = key.algorithm();
    if algo.as_str() != ktype {
        return Err(format!(
            "key type {ktype:?} does not match the key data ({})",
            algo.as_str()
        ));
    }
    key.set_comment(comment.trim_start_matches(is_sep));
    Ok(key)
}

/// Why a key's base64 blob did not decode, in words a person can act on (the decoder's own
/// errors read like `SshKey: length invalid`).
pub fn key_data_problem(blob: &str) -> String {
    use base64::Engine as _;
    match base64::engine::general_purpose::STANDARD.decode(blob) {
        Err(_) => "the key data is not valid base64 (a line broken in two, or characters \
                   lost in copying?)"
            .to_string(),
        Ok(raw) => format!(
            "the key data ({} bytes) does not decode as an SSH key: truncated or corrupted \
             in copying?",
            raw.len()
        ),
    }
}

/// Reads the first key line of a public key file (`ssh-ed25519 AAAA... comment`), skipping
/// blank and `#` lines. The key carries the line's comment.
pub fn load_public_key(path: &Path) -> Result<PublicKey> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    for (n, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        return parse_public_key_line(t).map_err(|reason| Error::Parse {
            path: path.to_path_buf(),
            line: n + 1,
            reason,
        });
    }
    Err(Error::Key {
        path: path.to_path_buf(),
        reason: "no public key in file".into(),
    })
}
