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
//! 0.7.0-rc.11 rejects about one OpenSSH P-256 key in 256 (see `p256_short_scalar`).

use std::path::{Path, PathBuf};

use rand::rngs::{StdRng, SysRng};
use rand::SeedableRng as _;
use russh::keys::ssh_key::private::{KeypairData, RsaKeypair};
use russh::keys::ssh_key::public::KeyData;
use russh::keys::{Algorithm, EcdsaCurve, HashAlg, PrivateKey, PublicKey};

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

/// The `.pub` path beside a private key: `PATH.pub`.
pub fn public_key_path(private: &Path) -> PathBuf {
    let mut s = private.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

/// `keytype base64 comment` for `key` with its comment (no trailing newline; no trailing
/// space when the comment is empty).
pub fn public_key_line(key: &PublicKey) -> Result<String> {
    let mut bare = key.clone();
    bare.set_comment("");
    let line = bare
        .to_openssh()
        .map_err(|e| Error::Invalid(format!("cannot encode public key: {e}")))?;
    let comment = key.comment().as_str_lossy();
    if comment.is_empty() {
        Ok(line.trim_end().to_string())
    } else {
        Ok(format!("{} {comment}", line.trim_end()))
    }
}

/// Writes `contents` to `path` atomically: a temp file in the same directory, created with
/// `mode` (never wider), synced, then renamed over `path`; no symlink is followed (see
/// `crate::safefs`). The temp file is removed on error.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    crate::safefs::write_file_atomic(path, contents, mode)
}

/// Writes `key` to `path` (OpenSSH format, mode 0600, encrypted with bcrypt-pbkdf +
/// aes256-ctr when `passphrase` is non-empty) and its public half to `PATH.pub` (mode 0644).
/// Both writes are atomic; an existing file is replaced (callers decide about overwriting).
pub fn write_key_pair(path: &Path, key: &PrivateKey, passphrase: Option<&str>) -> Result<()> {
    let key_err = |reason: String| Error::Key {
        path: path.to_path_buf(),
        reason,
    };
    let pem = match passphrase {
        Some(p) if !p.is_empty() => key
            .encrypt(&mut SysRng, p)
            .map_err(|e| key_err(format!("cannot encrypt key: {e}")))?
            .to_openssh(russh::keys::ssh_key::LineEnding::LF),
        _ => key.to_openssh(russh::keys::ssh_key::LineEnding::LF),
    }
    .map_err(|e| key_err(format!("cannot encode key: {e}")))?;
    let public = format!("{}\n", public_key_line(key.public_key())?);
    write_atomic(path, pem.as_bytes(), 0o600)?;
    write_atomic(&public_key_path(path), public.as_bytes(), 0o644)
}

/// Parses one public-key line `keytype base64 [comment]` (any run of spaces or tabs between
/// fields; the comment keeps its inner spacing). The key's comment is set from the line.
pub fn parse_public_key_line(line: &str) -> std::result::Result<PublicKey, String> {
    let line = line.trim_matches(|c: char| c == ' ' || c == '\t' || c == '\r' || c == '\n');
    let is_sep = |c: char| c == ' ' || c == '\t';
    let (ktype, rest) = line
        .split_once(is_sep)
        .ok_or_else(|| "expected `keytype base64 [comment]`".to_string())?;
    let rest = rest.trim_start_matches(is_sep);
    let (blob, comment) = rest.split_once(is_sep).unwrap_or((rest, ""));
    let mut key = russh::keys::parse_public_key_base64(blob).map_err(|_| key_data_problem(blob))?;
    let algo = key.algorithm();
    if algo.as_str() != ktype {
        return Err(format!(
            "key type {ktype:?} does not match the key data ({})",
            algo.as_str()
        ));
    }
    key.set_comment(comment.trim_start_matches(is_sep));
    Ok(key)
}

/// Why a key's base64 blob did not decode, in words a person can act on (the decoder's own
/// errors read like `SshKey: length invalid`).
pub fn key_data_problem(blob: &str) -> String {
    use base64::Engine as _;
    match base64::engine::general_purpose::STANDARD.decode(blob) {
        Err(_) => "the key data is not valid base64 (a line broken in two, or characters \
                   lost in copying?)"
            .to_string(),
        Ok(raw) => format!(
            "the key data ({} bytes) does not decode as an SSH key: truncated or corrupted \
             in copying?",
            raw.len()
        ),
    }
}

/// Reads the first key line of a public key file (`ssh-ed25519 AAAA... comment`), skipping
/// blank and `#` lines. The key carries the line's comment.
pub fn load_public_key(path: &Path) -> Result<PublicKey> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    for (n, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        return parse_public_key_line(t).map_err(|reason| Error::Parse {
            path: path.to_path_buf(),
            line: n + 1,
            reason,
        });
    }
    Err(Error::Key {
        path: path.to_path_buf(),
        reason: "no public key in file".into(),
    })
}

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

/// Works around ssh-key 0.7.0-rc.11 refusing NIST P-256 private keys whose secret scalar
/// starts with a zero byte: OpenSSH stores the scalar as a minimal mpint, so about one key in
/// 256 has a 31-byte scalar, which ssh-key rejects ("length invalid"). This decodes such a key
/// (`openssh-key-v1`, unencrypted or with a non-AEAD cipher such as ssh-keygen's default
/// aes256-ctr) by hand and pads the scalar. Returns None when the file is not such a key, so
/// the caller reports its original error.
mod p256_short_scalar {
    use base64::engine::general_purpose::STANDARD as BASE64;
    use base64::Engine as _;
    use russh::keys::ssh_key::private::{EcdsaKeypair, EcdsaPrivateKey, KeypairData};
    use russh::keys::ssh_key::public::{EcdsaPublicKey, KeyData};
    use russh::keys::{PrivateKey, PublicKey};

    use super::Passphrase;

    struct Reader<'a>(&'a [u8]);

    impl<'a> Reader<'a> {
        fn take(&mut self, n: usize) -> Option<&'a [u8]> {
            if self.0.len() < n {
                return None;
            }
            let (head, tail) = self.0.split_at(n);
            self.0 = tail;
            Some(head)
        }
        fn u32(&mut self) -> Option<u32> {
            let b = self.take(4)?;
            Some(u32::from_be_bytes(b.try_into().ok()?))
        }
        fn string(&mut self) -> Option<&'a [u8]> {
            let n = self.u32()? as usize;
            self.take(n)
        }
    }

    pub(super) fn decode(
        text: &str,
        passphrase: Option<&str>,
    ) -> Option<Result<PrivateKey, Passphrase>> {
        let b64: String = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let raw = BASE64.decode(b64).ok()?;
        let mut r = Reader(&raw);
        if r.take(15)? != b"openssh-key-v1\0" {
            return None;
        }
        let cipher_name = r.string()?;
        let _kdf_name = r.string()?;
        let _kdf_options = r.string()?;
        if r.u32()? != 1 {
            return None;
        }
        let public = PublicKey::from_bytes(r.string()?).ok()?;
        let KeyData::Ecdsa(EcdsaPublicKey::NistP256(point)) = public.key_data() else {
            return None;
        };
        let mut private = r.string()?.to_vec();
        if cipher_name != b"none" {
            let Some(pass) = passphrase else {
                return Some(Err(Passphrase::Needed));
            };
            // The header parses fine; only the private section trips ssh-key.
            let enc = PrivateKey::from_openssh(text.trim()).ok()?;
            if enc.cipher().has_tag() {
                return None;
            }
            let (key, iv) = enc.kdf().derive_key_and_iv(enc.cipher(), pass).ok()?;
            enc.cipher().decrypt(&key, &iv, &mut private, None).ok()?;
        }
        let mut p = Reader(&private);
        if p.u32()? != p.u32()? {
            return Some(Err(Passphrase::Wrong));
        }
        if p.string()? != b"ecdsa-sha2-nistp256" {
            return None;
        }
        let _curve = p.string()?;
        if p.string()? != point.as_bytes() {
            return None;
        }
        let scalar = p.string()?;
        let first = scalar.iter().position(|b| *b != 0).unwrap_or(scalar.len());
        let scalar = scalar.get(first..)?;
        let mut bytes = [0u8; 32];
        let start = 32usize.checked_sub(scalar.len())?;
        bytes.get_mut(start..)?.copy_from_slice(scalar);
        let comment = String::from_utf8_lossy(p.string()?).into_owned();
        let pair = EcdsaKeypair::NistP256 {
            public: *point,
            private: EcdsaPrivateKey::from(bytes),
        };
        Some(PrivateKey::new(KeypairData::from(pair), comment).map_err(|_| Passphrase::Wrong))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn kind_parse_follows_ssh_keygen_rules() {
        assert_eq!(
            KeyKind::parse("ed25519", Some(1)).unwrap(),
            KeyKind::Ed25519
        );
        assert_eq!(
            KeyKind::parse("ecdsa", None).unwrap(),
            KeyKind::Ecdsa { bits: 256 }
        );
        assert_eq!(
            KeyKind::parse("rsa", None).unwrap(),
            KeyKind::Rsa { bits: 3072 }
        );
        assert!(KeyKind::parse("ecdsa", Some(300))
            .unwrap_err()
            .to_string()
            .contains("256, 384 or 521"));
        assert!(KeyKind::parse("rsa", Some(512))
            .unwrap_err()
            .to_string()
            .contains("minimum is 1024"));
        assert!(KeyKind::parse("dsa", None).is_err());
    }

    #[test]
    fn fingerprint_line_matches_ssh_keygen_shape() {
        let k = generate(KeyKind::Ed25519, "c").unwrap();
        let line = fingerprint_line(k.public_key(), "");
        assert!(line.starts_with("256 SHA256:"), "{line}");
        assert!(line.ends_with(" no comment (ED25519)"), "{line}");
        let e = generate(KeyKind::Ecdsa { bits: 384 }, "c").unwrap();
        assert_eq!(key_bits(e.public_key()), 384);
        assert_eq!(key_type_label(e.public_key()), "ECDSA");
    }

    #[test]
    fn public_line_round_trips_with_spaces_in_comment() {
        let k = generate(KeyKind::Ed25519, "a  b c").unwrap();
        let line = public_key_line(k.public_key()).unwrap();
        assert!(line.ends_with(" a  b c"), "{line}");
        let back = parse_public_key_line(&line.replacen(' ', " \t ", 1)).unwrap();
        assert_eq!(back.key_data(), k.public_key().key_data());
        assert_eq!(back.comment().as_str_lossy(), "a  b c");
        assert!(parse_public_key_line(
            "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ"
        )
        .is_err());
    }
}

#[cfg(test)]
mod file_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn written_pair_has_modes_and_decrypts_only_with_passphrase() {
        let dir = unit_dir();
        let path = dir.path().join("id");
        let k = generate(KeyKind::Ed25519, "me@host").unwrap();
        write_key_pair(&path, &k, Some("sekrit")).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&public_key_path(&path)), 0o644);
        assert!(is_encrypted(&path).unwrap());
        let text = std::fs::read_to_string(&path).unwrap();
        let enc = PrivateKey::from_openssh(text.trim()).unwrap();
        assert!(enc.decrypt("wrong").is_err());
        let dec = enc.decrypt("sekrit").unwrap();
        assert_eq!(dec.public_key().key_data(), k.public_key().key_data());
        assert_eq!(dec.comment().as_str_lossy(), "me@host");
        let public = load_public_key(&public_key_path(&path)).unwrap();
        assert_eq!(public.key_data(), k.public_key().key_data());
        assert_eq!(public.comment().as_str_lossy(), "me@host");
        // No temp file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn rsa_generates_requested_size() {
        // 1024 bits keeps this quick in a debug build; the e2e tests cover the 3072 default.
        let k = generate(KeyKind::Rsa { bits: 1024 }, "r").unwrap();
        assert_eq!(key_bits(k.public_key()), 1024);
        assert_eq!(key_type_label(k.public_key()), "RSA");
    }

    /// A fresh directory under target/ (not /tmp, whose permissions are not ours).
    fn unit_dir() -> tempfile::TempDir {
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/unit-tmp");
        std::fs::create_dir_all(&base).unwrap();
        tempfile::Builder::new()
            .prefix("keys-")
            .tempdir_in(base)
            .unwrap()
    }

    #[test]
    fn load_private_key_tells_missing_from_wrong_passphrase_from_not_a_key() {
        let dir = unit_dir();
        let path = dir.path().join("id");
        let k = generate(KeyKind::Ecdsa { bits: 256 }, "who@where").unwrap();
        write_key_pair(&path, &k, Some("pw")).unwrap();

        let e = load_private_key(&path, None).unwrap_err();
        assert!(matches!(e, Error::PassphraseNeeded { .. }), "{e}");
        assert!(e.to_string().contains(path.to_str().unwrap()), "{e}");
        let e = load_private_key(&path, Some("nope")).unwrap_err();
        assert!(matches!(e, Error::PassphraseWrong { .. }), "{e}");
        let loaded = load_private_key(&path, Some("pw")).unwrap();
        assert_eq!(loaded.public_key().key_data(), k.public_key().key_data());
        assert_eq!(loaded.comment().as_str_lossy(), "who@where");

        let junk = dir.path().join("junk");
        std::fs::write(&junk, "hello\n").unwrap();
        std::fs::set_permissions(&junk, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = load_private_key(&junk, None).unwrap_err();
        assert!(matches!(e, Error::Key { .. }), "{e}");
        assert!(e.to_string().contains("not a private key"), "{e}");
        assert!(is_encrypted(&junk).is_err());

        let plain = dir.path().join("plain");
        write_key_pair(&plain, &k, None).unwrap();
        assert!(!is_encrypted(&plain).unwrap());
        assert!(load_private_key(&plain, None).is_ok());
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_private_key(&plain, None).unwrap_err();
        assert!(matches!(e, Error::Permissions { .. }), "{e}");
    }
}
