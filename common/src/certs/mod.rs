//! OpenSSH certificates: validity syntax (`validity`), issuing (`issue`), the `ssh-keygen -L`
//! report (`inspect`), acceptance policy for user and host certificates (`policy`) and
//! `authorized_principals_file` (`principals_file`).

pub mod inspect;
pub mod issue;
pub mod policy;
pub mod principals_file;
pub mod validity;

use std::path::Path;

use russh::keys::Certificate;

pub use inspect::render;
pub use issue::{cert_path, issue, to_line, CertRequest};
pub use policy::{check_host_cert, check_user_cert, CertDecision, CertInfo, CertPermissions};
pub use principals_file::PrincipalsFile;
pub use validity::{Validity, FOREVER};

use crate::{Error, Result};

/// Parses one certificate line (`ssh-ed25519-cert-v01@openssh.com AAAA... comment`).
pub fn parse(text: &str) -> std::result::Result<Certificate, String> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .ok_or("no certificate found (expected `TYPE-cert-v01@openssh.com BASE64 ...`)")?;
    Certificate::from_openssh(line).map_err(|e| format!("not a valid OpenSSH certificate: {e}"))
}

/// Reads a certificate file (`KEY-cert.pub`).
pub fn load(path: &Path) -> Result<Certificate> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse(&text).map_err(|reason| Error::Key {
        path: path.to_path_buf(),
        reason,
    })
}

/// Pure: the CA keys of a `trusted_user_ca_keys` file (OpenSSH public-key list: one key a
/// line, blank lines and `#` comments skipped). A line that is not a plain public key is an
/// error naming `path:line`, as sshd then trusts nothing from the file.
pub fn parse_ca_keys(path: &Path, text: &str) -> Result<Vec<russh::keys::PublicKey>> {
    let mut keys = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let t = raw.trim_matches(|c: char| c == ' ' || c == '\t' || c == '\r');
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let parse_err = |reason: String| Error::Parse {
            path: path.to_path_buf(),
            line: i + 1,
            reason,
        };
        if t.split([' ', '\t'])
            .next()
            .is_some_and(|ty| ty.ends_with("-cert-v01@openssh.com"))
        {
            return Err(parse_err(
                "a certificate is not a CA key; list the CA's public key (ca.pub)".into(),
            ));
        }
        let key = crate::keys::parse_public_key_line(t)
            .map_err(|why| parse_err(format!("not a public key line: {why}")))?;
        keys.push(key);
    }
    Ok(keys)
}

/// Reads a `trusted_user_ca_keys` file (see [`parse_ca_keys`]).
pub fn load_ca_keys(path: &Path) -> Result<Vec<russh::keys::PublicKey>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_ca_keys(path, &text)
}
