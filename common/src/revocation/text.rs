//! Text revocation lists: OpenSSH public-key list files, as sshd's `RevokedKeys` reads them
//! when the file is not a KRL (`sshkey_in_file`): one key a line, blank lines and `#`
//! comments skipped. A certificate line stands for the certificate's key (sshd compares
//! public parts), so listing a certificate revokes its key and every certificate of it.
//!
//! ```text
//! # revoked 2026-11-20: laptop stolen
//! ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE7x9ln6uZLLkfXM8iatrnAAuytVHeCznU8VlEgx7TvL alice@laptop
//! ```
//!
//! A line that is not a key makes the whole file an error, as in sshd (which then refuses
//! every key rather than guess).

use russh::keys::ssh_key::public::KeyData;
use russh::keys::Certificate;

use crate::keys::parse_public_key_line;

/// One listed key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextEntry {
    /// 1-based line number.
    pub line: usize,
    /// The plain key (a certificate line's inner key).
    pub key: KeyData,
    /// Set when the line was a certificate: its key id, for messages.
    pub cert_key_id: Option<String>,
}

/// Parses a text list; `Err((line, reason))` for the first line that is not a key.
pub fn parse(text: &str) -> Result<Vec<TextEntry>, (usize, String)> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let t = raw.trim_matches(|c: char| c == ' ' || c == '\t' || c == '\r');
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        out.push(parse_entry(line, t).map_err(|why| (line, why))?);
    }
    Ok(out)
}

fn parse_entry(line: usize, t: &str) -> Result<TextEntry, String> {
    let ktype = t.split([' ', '\t']).next().unwrap_or("");
    if ktype.ends_with("-cert-v01@openssh.com") {
        let blob = t.split([' ', '\t']).find(|w| !w.is_empty() && *w != ktype);
        let cert = Certificate::from_openssh(t).map_err(|_| {
            format!(
                "not a valid certificate line: {}",
                crate::keys::key_data_problem(blob.unwrap_or(""))
            )
        })?;
        return Ok(TextEntry {
            line,
            key: cert.public_key().clone(),
            cert_key_id: Some(cert.key_id().to_string()),
        });
    }
    let key = parse_public_key_line(t).map_err(|why| {
        format!("not a public key line: {why} (expected `keytype base64 [comment]`)")
    })?;
    Ok(TextEntry {
        line,
        key: key.key_data().clone(),
        cert_key_id: None,
    })
}
