//! What `ssh-keygen -l` prints about a key: fingerprint, size in bits and type label.

use russh::keys::ssh_key::public::KeyData;
use russh::keys::{EcdsaCurve, HashAlg, PublicKey};

/// `SHA256:<base64 without padding>`, as OpenSSH prints fingerprints.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Number of significant bits of a big-endian unsigned integer.
fn bit_len(bytes: &[u8]) -> u32 {
    let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    match trimmed.first() {
        None => 0,
        Some(first) => (trimmed.len() as u32 - 1) * 8 + (8 - first.leading_zeros()),
    }
}

fn key_data_bits(data: &KeyData) -> u32 {
    match data {
        KeyData::Ed25519(_) | KeyData::SkEd25519(_) => 256,
        KeyData::Ecdsa(k) => curve_bits(k.curve()),
        KeyData::SkEcdsaSha2NistP256(_) => 256,
        KeyData::Rsa(k) => k.key_size(),
        KeyData::Dsa(k) => k.p().as_positive_bytes().map(bit_len).unwrap_or(0),
        KeyData::Certificate(c) => key_data_bits(c.public_key()),
        _ => 0,
    }
}

fn curve_bits(curve: EcdsaCurve) -> u32 {
    match curve {
        EcdsaCurve::NistP256 => 256,
        EcdsaCurve::NistP384 => 384,
        EcdsaCurve::NistP521 => 521,
    }
}

/// Size of the key in bits as ssh-keygen reports it (256 for ed25519, the curve size for
/// ECDSA, the modulus size for RSA and DSA).
pub fn key_bits(key: &PublicKey) -> u32 {
    key_data_bits(key.key_data())
}

/// The type label ssh-keygen prints in parentheses: `ED25519`, `ECDSA`, `RSA`, `DSA`,
/// `ED25519-SK`, `ECDSA-SK`, and `...-CERT` for certificates.
pub fn key_type_label(key: &PublicKey) -> &'static str {
    label_of(key.key_data())
}

fn label_of(data: &KeyData) -> &'static str {
    match data {
        KeyData::Ed25519(_) => "ED25519",
        KeyData::SkEd25519(_) => "ED25519-SK",
        KeyData::Ecdsa(_) => "ECDSA",
        KeyData::SkEcdsaSha2NistP256(_) => "ECDSA-SK",
        KeyData::Rsa(_) => "RSA",
        KeyData::Dsa(_) => "DSA",
        KeyData::Certificate(c) => match label_of(c.public_key()) {
            "ED25519" => "ED25519-CERT",
            "ED25519-SK" => "ED25519-SK-CERT",
            "ECDSA" => "ECDSA-CERT",
            "ECDSA-SK" => "ECDSA-SK-CERT",
            "RSA" => "RSA-CERT",
            "DSA" => "DSA-CERT",
            _ => "UNKNOWN-CERT",
        },
        _ => "UNKNOWN",
    }
}

/// One line as `ssh-keygen -lf` prints it: `256 SHA256:... comment (ED25519)`. An empty
/// comment prints as `no comment`, like ssh-keygen.
pub fn fingerprint_line(key: &PublicKey, comment: &str) -> String {
    let comment = if comment.is_empty() {
        "no comment"
    } else {
        comment
    };
    format!(
        "{} {} {} ({})",
        key_bits(key),
        fingerprint(key),
        comment,
        key_type_label(key)
    )
}
