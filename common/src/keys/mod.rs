//! Key generation, loading, writing and fingerprints in OpenSSH's formats.
//!
//! Files are what `ssh-keygen` writes and reads: a private key in the `openssh-key-v1` PEM
//! format (`-----BEGIN OPENSSH PRIVATE KEY-----`, bcrypt-pbkdf + aes256-ctr when it has a
//! passphrase, mode 0600) and `PATH.pub` beside it holding one line such as
//! `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI... alice@laptop` (mode 0644).
//!
//! API CONTRACT:
//! - `fingerprint(key) -> String`: `SHA256:...`.
//! - `fingerprint_line(key, comment) -> String`: `256 SHA256:... comment (ED25519)` like
//!   `ssh-keygen -lf` (an empty comment prints as `no comment`, as ssh-keygen does).
//! - `key_bits(key) -> u32`, `key_type_label(key) -> &'static str` (`ED25519`, `RSA`, ...).
//! - `KeyKind::parse(type, bits)`, `generate(kind, comment) -> Result<PrivateKey>`.
//! - `write_key_pair(path, key, passphrase)`: private file 0600 written atomically (temp file
//!   created 0600, then renamed, so it is never readable by others), `PATH.pub` 0644.
//! - `load_public_key(path)`: the first key line of a `.pub` file.
//! - `load_private_key(path, passphrase)`: checks the file mode first
//!   (`perms::check_private_key_mode`); the three failures a caller must tell apart are
//!   `Error::PassphraseNeeded` (encrypted, none given: prompt), `Error::PassphraseWrong`
//!   (prompt again) and anything else (not a usable key).
//! - `is_encrypted(path) -> Result<bool>`.
//! - `parse_public_key_line(text)`: `keytype base64 [comment]` with the comment kept.
//! - `public_key_line(key)`: that line back; `public_key_path(path)`: `PATH.pub`.
//! - `private_key_public_part(path)`: the public key stored in a private key file, without
//!   the passphrase (for fingerprints).
//!
//! Load private keys through `load_private_key`, not `russh::keys::load_secret_key`: ssh-key
//! 0.7.0-rc.11 rejects about one OpenSSH P-256 key in 256 (see `private/p256_short_scalar.rs`).

mod fingerprint;
mod generate;
mod private;
mod public;
mod write;

pub use fingerprint::{fingerprint, fingerprint_line, key_bits, key_type_label};
pub use generate::{generate, KeyKind, RSA_DEFAULT_BITS};
pub use private::{is_encrypted, load_private_key, private_key_public_part};
pub use public::{
    key_data_problem, load_public_key, parse_public_key_line, public_key_line, public_key_path,
};
pub use write::write_key_pair;

#[cfg(test)]
mod file_tests;
#[cfg(test)]
mod tests;
