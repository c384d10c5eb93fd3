//! Issuing certificates (`msh-keygen sign`): a CA private key signs a subject public key into
//! an OpenSSH certificate, with ssh-keygen's defaults (user certificates carry the five
//! `permit-*` extensions; host certificates none; a 32-byte random nonce).

use std::path::{Path, PathBuf};

use rand::TryRng as _;
use russh::keys::ssh_key::certificate::{Builder, CertType};
use russh::keys::{Certificate, PrivateKey, PublicKey};

use super::policy::parse_source_address;
use super::validity::Validity;
use crate::{Error, Result};

/// The extensions ssh-keygen puts in a user certificate unless told otherwise.
pub const DEFAULT_USER_EXTENSIONS: [&str; 5] = [
    "permit-X11-forwarding",
    "permit-agent-forwarding",
    "permit-port-forwarding",
    "permit-pty",
    "permit-user-rc",
];

/// What to put in a certificate.
#[derive(Debug, Clone)]
pub struct CertRequest {
    /// Host certificate (`--host`) instead of a user certificate.
    pub host: bool,
    /// Free-form identity logged by servers (`--id`).
    pub key_id: String,
    pub serial: u64,
    /// User or host names the certificate is valid for; empty means "any" (as ssh-keygen
    /// without `-n`; servers refuse such user certificates).
    pub principals: Vec<String>,
    pub validity: Validity,
    /// Critical option `force-command` (user certificates only).
    pub force_command: Option<String>,
    /// Critical option `source-address`: comma-separated addresses/CIDRs (user certificates
    /// only).
    pub source_address: Option<String>,
}

/// Signs `subject` with `ca` as `req` says.
pub fn issue(ca: &PrivateKey, subject: &PublicKey, req: &CertRequest) -> Result<Certificate> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        Error::Invalid(format!(
            "cannot issue certificate {:?}: {what}: {e}",
            req.key_id
        ))
    };
    if subject.key_data().is_certificate() {
        return Err(Error::Invalid(
            "the key to sign is already a certificate; sign the plain public key (KEY.pub)".into(),
        ));
    }
    if req.host && (req.force_command.is_some() || req.source_address.is_some()) {
        return Err(Error::Invalid(
            "force-command and source-address apply to user certificates only, not --host".into(),
        ));
    }
    if let Some(list) = &req.source_address {
        parse_source_address(list).map_err(Error::Invalid)?;
    }
    if req.validity.valid_before <= req.validity.valid_after {
        return Err(Error::Invalid(
            "empty certificate validity interval (end is not after start)".into(),
        ));
    }
    let mut nonce = [0u8; 32];
    rand::rngs::SysRng
        .try_fill_bytes(&mut nonce)
        .map_err(|e| Error::Invalid(format!("cannot read random bytes for the nonce: {e}")))?;
    let mut b = Builder::new(
        nonce.to_vec(),
        subject.key_data().clone(),
        req.validity.valid_after,
        req.validity.valid_before,
    )
    .map_err(|e| fail("validity", &e))?;
    b.serial(req.serial).map_err(|e| fail("serial", &e))?;
    b.key_id(req.key_id.clone())
        .map_err(|e| fail("key id", &e))?;
    b.cert_type(if req.host {
        CertType::Host
    } else {
        CertType::User
    })
    .map_err(|e| fail("type", &e))?;
    if req.principals.is_empty() {
        b.all_principals_valid()
            .map_err(|e| fail("principals", &e))?;
    }
    for p in &req.principals {
        b.valid_principal(p.clone())
            .map_err(|e| fail("principal", &e))?;
    }
    if let Some(cmd) = &req.force_command {
        b.critical_option("force-command", cmd.clone())
            .map_err(|e| fail("force-command", &e))?;
    }
    if let Some(src) = &req.source_address {
        b.critical_option("source-address", src.clone())
            .map_err(|e| fail("source-address", &e))?;
    }
    if !req.host {
        for ext in DEFAULT_USER_EXTENSIONS {
            b.extension(ext, "").map_err(|e| fail("extension", &e))?;
        }
    }
    b.comment(subject.comment().clone())
        .map_err(|e| fail("comment", &e))?;
    b.sign(ca).map_err(|e| fail("signing", &e))
}

/// The one-line OpenSSH text of `cert` (`ssh-ed25519-cert-v01@openssh.com AAAA... comment`),
/// with a trailing newline, as ssh-keygen writes `KEY-cert.pub`.
pub fn to_line(cert: &Certificate) -> Result<String> {
    let text = cert
        .to_openssh()
        .map_err(|e| Error::Invalid(format!("cannot encode certificate: {e}")))?;
    Ok(format!("{}\n", text.trim_end()))
}

/// Where ssh-keygen writes the certificate for `KEY.pub` (or `KEY`): `KEY-cert.pub`.
pub fn cert_path(public_key: &Path) -> PathBuf {
    let s = public_key.as_os_str().to_string_lossy();
    let base = s.strip_suffix(".pub").unwrap_or(&s);
    PathBuf::from(format!("{base}-cert.pub"))
}
