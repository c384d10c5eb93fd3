//! Property tests: the KRL reader and the text-list reader never panic, whatever the bytes
//! (random, random after the KRL magic, or a real `ssh-keygen -k` KRL with bytes flipped or
//! cut); malformed KRLs always report a byte offset inside the file; and serial lists,
//! ranges and bitmaps built by hand revoke exactly the serials they hold.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use msh_common::revocation::{krl, RevocationList};
use proptest::prelude::*;

/// A real KRL with a certificate section (serial list, range, bitmap, key id) and an
/// explicit key, written once by ssh-keygen.
fn real_krl() -> &'static [u8] {
    static KRL: OnceLock<Vec<u8>> = OnceLock::new();
    KRL.get_or_init(|| {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("revocation-props");
        std::fs::create_dir_all(&base).unwrap();
        let dir = tempfile::Builder::new().tempdir_in(base).unwrap();
        let keygen = |args: &[&str]| {
            let out = Command::new("ssh-keygen")
                .args(args)
                .output()
                .unwrap_or_else(|e| {
                    panic!("cannot run ssh-keygen ({e}): apt-get install openssh-client")
                });
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ca = dir.path().join("ca");
        let k = dir.path().join("k");
        for p in [&ca, &k] {
            keygen(&["-q", "-t", "ed25519", "-N", "", "-f", p.to_str().unwrap()]);
        }
        let spec = dir.path().join("spec");
        let mut text = String::from("serial: 1000000\nserial: 5-90000\nid: someone\n");
        for s in (100_001..100_040).step_by(3) {
            text.push_str(&format!("serial: {s}\n"));
        }
        text.push_str(&format!(
            "key: {}",
            std::fs::read_to_string(format!("{}.pub", k.display())).unwrap()
        ));
        std::fs::write(&spec, text).unwrap();
        let out = dir.path().join("krl");
        let ca_pub = PathBuf::from(format!("{}.pub", ca.display()));
        keygen(&[
            "-k",
            "-s",
            ca_pub.to_str().unwrap(),
            "-f",
            out.to_str().unwrap(),
            spec.to_str().unwrap(),
        ]);
        std::fs::read(out).unwrap()
    })
}

fn check_no_panic(data: &[u8]) {
    let path = Path::new("/etc/msh/revoked_keys");
    match RevocationList::parse(path, data) {
        Ok(_) => {}
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with("/etc/msh/revoked_keys"), "{msg}");
            if data.starts_with(krl::MAGIC) {
                let off: usize = msg
                    .split("byte offset ")
                    .nth(1)
                    .and_then(|s| s.split(':').next())
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("no byte offset in {msg}"));
                assert!(
                    off <= data.len(),
                    "offset {off} past the end ({}): {msg}",
                    data.len()
                );
            }
        }
    }
}

fn be32(v: usize) -> [u8; 4] {
    (v as u32).to_be_bytes()
}

fn string(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&be32(b.len()));
    out.extend_from_slice(b);
}

/// A KRL with one any-CA certificate section holding `subsections`.
fn krl_with(subsections: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = krl::MAGIC.to_vec();
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(&[0u8; 24]);
    string(&mut out, b"");
    string(&mut out, b"");
    let mut sect = Vec::new();
    string(&mut sect, b"");
    string(&mut sect, b"");
    for (kind, data) in subsections {
        sect.push(*kind);
        string(&mut sect, data);
    }
    out.push(1);
    string(&mut out, &sect);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        check_no_panic(&data);
    }

    #[test]
    fn arbitrary_bytes_after_the_magic_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut all = krl::MAGIC.to_vec();
        all.extend_from_slice(&[0, 0, 0, 1]);
        all.extend_from_slice(&data);
        check_no_panic(&all);
    }

    #[test]
    fn mutated_real_krls_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        do_cut in any::<bool>(),
    ) {
        let mut data = real_krl().to_vec();
        for (at, byte) in flips {
            let i = at.index(data.len());
            data[i] = byte;
        }
        if do_cut {
            data.truncate(cut.index(data.len()));
        }
        check_no_panic(&data);
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,300}") {
        check_no_panic(text.as_bytes());
    }

    #[test]
    fn key_like_text_lines_never_panic(lines in proptest::collection::vec(
        ("(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256|ssh-ed25519-cert-v01@openssh.com|#|)", "[A-Za-z0-9+/=]{0,80}", "[ a-z]{0,10}"),
        0..5,
    )) {
        let text: String = lines.iter().map(|(t, b, c)| format!("{t} {b} {c}\n")).collect();
        check_no_panic(text.as_bytes());
    }

    /// Serial lists, ranges and bitmaps revoke exactly their serials (never serial 0).
    #[test]
    fn serial_sections_revoke_exactly_their_serials(
        list in proptest::collection::btree_set(1u64..5000, 0..20),
        ranges in proptest::collection::vec((1u64..5000, 0u64..300), 0..4),
        bitmap_offset in 1u64..5000,
        bitmap in proptest::collection::vec(any::<u8>(), 0..12),
        probes in proptest::collection::vec(0u64..6000, 50),
    ) {
        let mut expected: BTreeSet<u64> = list.clone();
        let mut subs = Vec::new();
        if !list.is_empty() {
            subs.push((0x20, list.iter().flat_map(|s| s.to_be_bytes()).collect()));
        }
        for (lo, len) in &ranges {
            let mut d = lo.to_be_bytes().to_vec();
            d.extend_from_slice(&(lo + len).to_be_bytes());
            subs.push((0x21, d));
            expected.extend(*lo..=lo + len);
        }
        // An mpint must not look negative: clear the top bit of the first byte.
        let mut bits = bitmap.clone();
        if let Some(b) = bits.first_mut() {
            *b &= 0x7f;
        }
        let mut d = bitmap_offset.to_be_bytes().to_vec();
        string(&mut d, &bits);
        subs.push((0x22, d));
        for (i, byte) in bits.iter().rev().enumerate() {
            for bit in 0..8 {
                if byte & (1 << bit) != 0 {
                    expected.insert(bitmap_offset + (i * 8 + bit) as u64);
                }
            }
        }
        let parsed = krl::parse(&krl_with(&subs)).unwrap();
        let section = &parsed.certs[0];
        for p in probes.iter().chain(expected.iter()) {
            prop_assert_eq!(section.serial_revoked(*p), *p != 0 && expected.contains(p), "serial {}", p);
        }
    }
}

#[test]
fn serial_zero_and_backwards_ranges_are_malformed_as_in_openssh() {
    let zero = krl_with(&[(0x20, 0u64.to_be_bytes().to_vec())]);
    let err = krl::parse(&zero).unwrap_err();
    assert!(err.reason.contains("invalid serial range 0-0"), "{err:?}");
    let mut backwards = 9u64.to_be_bytes().to_vec();
    backwards.extend_from_slice(&3u64.to_be_bytes());
    let err = krl::parse(&krl_with(&[(0x21, backwards)])).unwrap_err();
    assert!(err.reason.contains("9-3"), "{err:?}");
    // Unknown critical extension: error; non-critical: skipped.
    let ext = |critical: u8| {
        let mut d = Vec::new();
        string(&mut d, b"future@example.com");
        d.push(critical);
        string(&mut d, b"x");
        d
    };
    assert!(krl::parse(&krl_with(&[(0x39, ext(1))])).is_err());
    assert!(krl::parse(&krl_with(&[(0x39, ext(0))])).is_ok());
    // The real KRL parses.
    let k = krl::parse(real_krl()).unwrap();
    assert_eq!(k.explicit_keys.len(), 1);
    assert!(k.certs[0].serial_revoked(1_000_000) && k.certs[0].serial_revoked(100_004));
    assert!(!k.certs[0].serial_revoked(100_002));
}
