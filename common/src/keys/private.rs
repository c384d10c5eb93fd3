//! Reading private key files: loading (with the mode check and the passphrase failures a
//! caller must tell apart), whether a file is encrypted, and its public half.

use std::path::Path;

use russh::keys::{PrivateKey, PublicKey};

use crate::{Error, Result};

mod p256_short_scalar;

const OPENSSH_BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";

fn read_key_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    String::from_utf8(bytes).map_err(|_| Error::Key {
        path: path.to_path_buf(),
        reason: "not a private key (file is not text)".into(),
    })
}

/// Loads a private key (OpenSSH format, or PEM/PKCS#8/PuTTY through russh), decrypting it
/// with `passphrase`. Refuses a file readable by group or others first. Failures are
/// `Error::PassphraseNeeded`, `Error::PassphraseWrong`, or `Error::Key` with a reason
/// starting `not a private key`.
pub fn load_private_key(path: &Path, passphrase: Option<&str>) -> Result<PrivateKey> {
    crate::perms::check_private_key_mode(path)?;
    let text = read_key_text(path)?;
    let key_err = |reason: String| Error::Key {
        path: path.to_path_buf(),
        reason,
    };
    if text.contains(OPENSSH_BEGIN) {
        let key = match PrivateKey::from_openssh(text.trim()) {
            Ok(k) => k,
            Err(e) => {
                return match p256_short_scalar::decode(&text, passphrase) {
                    Some(r) => r.map_err(|p| p.error(path)),
                    None => Err(key_err(format!(
                        "not a private key: invalid OpenSSH key: {e}"
                    ))),
                }
            }
        };
        if !key.is_encrypted() {
            return Ok(key);
        }
        return match passphrase {
            None => Err(Passphrase::Needed.error(path)),
            Some(p) => match key.decrypt(p) {
                Ok(k) => Ok(k),
                Err(_) => match p256_short_scalar::decode(&text, passphrase) {
                    Some(r) => r.map_err(|p| p.error(path)),
                    None => Err(Passphrase::Wrong.error(path)),
                },
            },
        };
    }
    match russh::keys::decode_secret_key(&text, passphrase) {
        Ok(k) => Ok(k),
        Err(russh::keys::Error::KeyIsEncrypted) if passphrase.is_none() => {
            Err(Passphrase::Needed.error(path))
        }
        Err(_) if passphrase.is_some() && legacy_pem_encrypted(&text) => {
            Err(Passphrase::Wrong.error(path))
        }
        Err(_) if passphrase.is_none() && legacy_pem_encrypted(&text) => {
            Err(Passphrase::Needed.error(path))
        }
        Err(e) => Err(key_err(format!("not a private key: {e}"))),
    }
}

fn legacy_pem_encrypted(text: &str) -> bool {
    text.contains("Proc-Type: 4,ENCRYPTED")
        || text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text
            .lines()
            .any(|l| l.starts_with("Encryption:") && !l.contains("none"))
}

/// Why a key could not be decrypted, before the path is known (`p256_short_scalar`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Passphrase {
    Needed,
    Wrong,
}

impl Passphrase {
    fn error(self, path: &Path) -> Error {
        let path = path.to_path_buf();
        match self {
            Passphrase::Needed => Error::PassphraseNeeded { path },
            Passphrase::Wrong => Error::PassphraseWrong { path },
        }
    }
}

/// Whether the private key at `path` is protected by a passphrase. Does not check the mode.
pub fn is_encrypted(path: &Path) -> Result<bool> {
    let text = read_key_text(path)?;
    if text.contains(OPENSSH_BEGIN) {
        return match PrivateKey::from_openssh(text.trim()) {
            Ok(key) => Ok(key.is_encrypted()),
            Err(e) => match p256_short_scalar::decode(&text, None) {
                Some(Ok(_)) => Ok(false),
                Some(Err(_)) => Ok(true),
                None => Err(Error::Key {
                    path: path.to_path_buf(),
                    reason: format!("not a private key: invalid OpenSSH key: {e}"),
                }),
            },
        };
    }
    if legacy_pem_encrypted(&text) {
        return Ok(true);
    }
    match russh::keys::decode_secret_key(&text, None) {
        Ok(_) => Ok(false),
        Err(russh::keys::Error::KeyIsEncrypted) => Ok(true),
        Err(e) => Err(Error::Key {
            path: path.to_path_buf(),
            reason: format!("not a private key: {e}"),
        }),
    }
}

/// The public half of a private key file without decrypting it (OpenSSH keys store it in
/// the clear), with the file's comment when the key is not encrypted. For fingerprints.
pub fn private_key_public_part(path: &Path) -> Result<PublicKey> {
    let text = read_key_text(path)?;
    if text.contains(OPENSSH_BEGIN) {
        return match PrivateKey::from_openssh(text.trim()) {
            Ok(key) => Ok(key.public_key().clone()),
            Err(e) => match p256_short_scalar::decode(&text, None) {
                Some(Ok(key)) => Ok(key.public_key().clone()),
                _ => Err(Error::Key {
                    path: path.to_path_buf(),
                    reason: format!("not a private key: invalid OpenSSH key: {e}"),
                }),
            },
        };
    }
    match russh::keys::decode_secret_key(&text, None) {
        Ok(k) => Ok(k.public_key().clone()),
        Err(russh::keys::Error::KeyIsEncrypted) => Err(Passphrase::Needed.error(path)),
        Err(e) => Err(Error::Key {
            path: path.to_path_buf(),
            reason: format!("not a private key: {e}"),
        }),
    }
}
