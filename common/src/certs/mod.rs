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
