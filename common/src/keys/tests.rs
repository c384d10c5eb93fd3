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
