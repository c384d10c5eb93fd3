//! Works around ssh-key 0.7.0-rc.11 refusing NIST P-256 private keys whose secret scalar
//! starts with a zero byte: OpenSSH stores the scalar as a minimal mpint, so about one key in
//! 256 has a 31-byte scalar, which ssh-key rejects ("length invalid"). This decodes such a key
//! (`openssh-key-v1`, unencrypted or with a non-AEAD cipher such as ssh-keygen's default
//! aes256-ctr) by hand and pads the scalar. Returns None when the file is not such a key, so
//! the caller reports its original error.

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
