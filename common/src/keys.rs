//! Key loading and fingerprints in OpenSSH's formats.
//!
//! API CONTRACT:
//! - `fingerprint(key) -> String`: `SHA256:...`.
//! - `fingerprint_line(key, comment) -> String`: `256 SHA256:... comment (ED25519)` like
//!   `ssh-keygen -lf`.
//! - `key_bits(key) -> u32`, `key_type_label(key) -> &'static str` (`ED25519`, `RSA`, ...).
