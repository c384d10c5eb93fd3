//! New keys: the kinds `ssh-keygen -t TYPE -b BITS` accepts, and their generation.

use rand::rngs::{StdRng, SysRng};
use rand::SeedableRng as _;
use russh::keys::ssh_key::private::{KeypairData, RsaKeypair};
use russh::keys::{Algorithm, EcdsaCurve, PrivateKey};

use crate::{Error, Result};

/// Smallest and largest RSA modulus ssh-keygen accepts.
const RSA_MIN_BITS: u32 = 1024;
const RSA_MAX_BITS: u32 = 16384;
/// ssh-keygen's default RSA size.
pub const RSA_DEFAULT_BITS: u32 = 3072;

/// The kind of key to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Ed25519,
    /// NIST curve P-256, P-384 or P-521 (`bits` is 256, 384 or 521).
    Ecdsa {
        bits: u32,
    },
    /// RSA with a modulus of `bits` (1024..=16384).
    Rsa {
        bits: u32,
    },
}

impl KeyKind {
    /// Resolves `ssh-keygen -t TYPE [-b BITS]`: `ed25519` (bits ignored, as ssh-keygen does),
    /// `ecdsa` (256 default, 384, 521), `rsa` (3072 default). Errors say what is accepted.
    pub fn parse(key_type: &str, bits: Option<u32>) -> Result<Self> {
        match key_type.to_ascii_lowercase().as_str() {
            "ed25519" | "ssh-ed25519" => Ok(KeyKind::Ed25519),
            "ecdsa" | "ecdsa-sha2-nistp256" | "ecdsa-sha2-nistp384" | "ecdsa-sha2-nistp521" => {
                let from_name = key_type
                    .strip_prefix("ecdsa-sha2-nistp")
                    .and_then(|b| b.parse::<u32>().ok());
                let bits = bits.or(from_name).unwrap_or(256);
                match bits {
                    256 | 384 | 521 => Ok(KeyKind::Ecdsa { bits }),
                    _ => Err(Error::Invalid(format!(
                        "invalid ECDSA key length {bits}: valid lengths are 256, 384 or 521 bits"
                    ))),
                }
            }
            "rsa" | "ssh-rsa" => {
                let bits = bits.unwrap_or(RSA_DEFAULT_BITS);
                if bits < RSA_MIN_BITS {
                    Err(Error::Invalid(format!(
                        "invalid RSA key length {bits}: minimum is {RSA_MIN_BITS} bits"
                    )))
                } else if bits > RSA_MAX_BITS {
                    Err(Error::Invalid(format!(
                        "invalid RSA key length {bits}: maximum is {RSA_MAX_BITS} bits"
                    )))
                } else {
                    Ok(KeyKind::Rsa { bits })
                }
            }
            other => Err(Error::Invalid(format!(
                "unknown key type {other:?}: use ed25519, ecdsa or rsa"
            ))),
        }
    }
}

/// Generates a new key of `kind` carrying `comment`.
pub fn generate(kind: KeyKind, comment: &str) -> Result<PrivateKey> {
    let fail = |e: &dyn std::fmt::Display| Error::Invalid(format!("cannot generate key: {e}"));
    // ssh-key's key generation wants an infallible RNG: a ChaCha generator freshly seeded from
    // the kernel (as OpenSSH's arc4random), so a failing getrandom(2) is an error, not a panic.
    let mut rng = StdRng::try_from_rng(&mut SysRng).map_err(|e| fail(&e))?;
    let mut key = match kind {
        KeyKind::Ed25519 => {
            PrivateKey::random(&mut rng, Algorithm::Ed25519).map_err(|e| fail(&e))?
        }
        KeyKind::Ecdsa { bits } => {
            let curve = match bits {
                256 => EcdsaCurve::NistP256,
                384 => EcdsaCurve::NistP384,
                521 => EcdsaCurve::NistP521,
                _ => {
                    return Err(Error::Invalid(format!(
                        "invalid ECDSA key length {bits}: valid lengths are 256, 384 or 521 bits"
                    )))
                }
            };
            PrivateKey::random(&mut rng, Algorithm::Ecdsa { curve }).map_err(|e| fail(&e))?
        }
        KeyKind::Rsa { bits } => {
            if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
                return Err(Error::Invalid(format!(
                    "invalid RSA key length {bits}: use {RSA_MIN_BITS} to {RSA_MAX_BITS} bits"
                )));
            }
            let pair = RsaKeypair::random(&mut rng, bits as usize).map_err(|e| fail(&e))?;
            PrivateKey::new(KeypairData::from(pair), comment).map_err(|e| fail(&e))?
        }
    };
    key.set_comment(comment);
    Ok(key)
}
