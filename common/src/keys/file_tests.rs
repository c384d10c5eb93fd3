#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use russh::keys::PrivateKey;

use super::*;
use crate::Error;

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
