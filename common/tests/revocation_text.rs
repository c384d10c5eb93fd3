//! Text revocation lists and `append_revoked`: comments and blank lines, certificate lines,
//! a malformed line is an error naming path:line, a KRL is never rewritten as text, the
//! file's mode is kept, a missing final newline is repaired, and concurrent writers (threads
//! here, each taking the lock) never lose each other's keys.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use msh_common::keys::{generate, public_key_line, KeyKind};
use msh_common::revocation::{append_revoked, Reason, RevocationList, Revokee};
use russh::keys::PublicKey;

fn dir() -> tempfile::TempDir {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("revocation-text");
    std::fs::create_dir_all(&base).unwrap();
    tempfile::Builder::new().tempdir_in(base).unwrap()
}

fn new_key(comment: &str) -> PublicKey {
    generate(KeyKind::Ed25519, comment)
        .unwrap()
        .public_key()
        .clone()
}

#[test]
fn comments_blank_lines_and_odd_spacing_are_read() {
    let d = dir();
    let (a, b, c) = (new_key("a"), new_key("b"), new_key("c"));
    let path = d.path().join("revoked");
    std::fs::write(
        &path,
        format!(
            "# revoked keys\n\n   {}\n\t{}   trailing comment\r\n",
            public_key_line(&a).unwrap(),
            public_key_line(&b).unwrap().replacen(' ', "\t ", 1)
        ),
    )
    .unwrap();
    let list = RevocationList::load(&path).unwrap();
    assert!(!list.is_krl());
    let r = list.is_revoked(&a).unwrap();
    assert_eq!(
        r,
        Reason::Key {
            fingerprint: msh_common::keys::fingerprint(&a),
            source: format!("{}:3", path.display())
        }
    );
    assert!(list.is_revoked(&b).unwrap().to_string().contains(":4"));
    assert!(list.is_revoked(&c).is_none());
}

#[test]
fn a_malformed_line_is_an_error_naming_path_and_line() {
    let d = dir();
    let path = d.path().join("revoked");
    std::fs::write(
        &path,
        format!(
            "{}\nssh-ed25519 not-base64!\n",
            public_key_line(&new_key("a")).unwrap()
        ),
    )
    .unwrap();
    let err = RevocationList::load(&path).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}:2: ", path.display())), "{err}");
    // append_revoked refuses to rewrite it rather than carry the bad line along silently.
    let err = append_revoked(&path, &[Revokee::Key(new_key("b"))])
        .unwrap_err()
        .to_string();
    assert!(err.contains(":2:"), "{err}");
    let missing = RevocationList::load(&d.path().join("nope"))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("nope"), "{missing}");
}

#[test]
fn append_keeps_mode_and_content_and_refuses_krls() {
    let d = dir();
    let path = d.path().join("revoked");
    let a = new_key("a");
    std::fs::write(
        &path,
        format!("# keep me\n{}", public_key_line(&a).unwrap()),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let b = new_key("b");
    assert_eq!(
        append_revoked(&path, &[Revokee::Key(a.clone()), Revokee::Key(b.clone())]).unwrap(),
        1
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        text,
        format!(
            "# keep me\n{}\n{}\n",
            public_key_line(&a).unwrap(),
            public_key_line(&b).unwrap()
        )
    );
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o640
    );

    let fresh = d.path().join("fresh");
    assert_eq!(
        append_revoked(&fresh, &[Revokee::Key(a.clone())]).unwrap(),
        1
    );
    assert_eq!(
        std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777,
        0o644
    );

    let krl = d.path().join("krl");
    let mut bytes = b"SSHKRL\n\0".to_vec();
    bytes.extend_from_slice(&[0, 0, 0, 1]);
    bytes.extend_from_slice(&[0; 32]);
    std::fs::write(&krl, &bytes).unwrap();
    assert!(RevocationList::load(&krl).unwrap().is_krl());
    let err = append_revoked(&krl, &[Revokee::Key(a)])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("binary KRL") && err.contains("ssh-keygen -k -u"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&krl).unwrap(),
        bytes,
        "the KRL was not touched"
    );
}

#[test]
fn concurrent_appends_lose_nothing() {
    let d = dir();
    let path: PathBuf = d.path().join("revoked");
    let keys: Vec<PublicKey> = (0..16).map(|i| new_key(&format!("k{i}"))).collect();
    std::thread::scope(|s| {
        for chunk in keys.chunks(2) {
            let path = &path;
            s.spawn(move || {
                for k in chunk {
                    assert_eq!(append_revoked(path, &[Revokee::Key(k.clone())]).unwrap(), 1);
                }
            });
        }
    });
    let list = RevocationList::load(&path).unwrap();
    for k in &keys {
        assert!(
            list.is_revoked(k).is_some(),
            "lost {}",
            k.comment().as_str_lossy()
        );
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 16);
}
