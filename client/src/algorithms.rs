//! The public-key algorithms msh accepts from servers, shared by `msh` (host keys it asks
//! for) and `msh-keygen scan` (the keys it collects), so that a key scanned is one msh would
//! accept.

use russh::keys::{Algorithm, EcdsaCurve, HashAlg};

/// Host-key (and user-key) signature algorithms in msh's order of preference. No `ssh-rsa`:
/// RSA keys sign with SHA-2 only, as OpenSSH 8.8+ does by default.
pub(crate) fn preferred_key_algorithms() -> Vec<Algorithm> {
    vec![
        Algorithm::Ed25519,
        Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP256,
        },
        Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP384,
        },
        Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP521,
        },
        Algorithm::Rsa {
            hash: Some(HashAlg::Sha512),
        },
        Algorithm::Rsa {
            hash: Some(HashAlg::Sha256),
        },
    ]
}
