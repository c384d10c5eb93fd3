//! Oracle tests for the KRL reader: `ssh-keygen -k` writes KRLs (from key files, from
//! certificate files, from spec files with `serial:`, `id:`, `key:`, `sha256:`, `hash:`
//! lines, with and without `-s CA`), and for every probe key or certificate our
//! `RevocationList` must say "revoked" exactly when `ssh-keygen -Q -f KRL FILE` prints
//! REVOKED. Also: a revoked CA revokes its certificates; malformed KRLs are errors naming the
//! path and a byte offset.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use msh_common::revocation::{Reason, RevocationList};
use russh::keys::{Certificate, PublicKey};
use support::{pub_path, ssh_keygen, ssh_keygen_ok, Dir};

/// A fresh ed25519 key pair `NAME`, `NAME.pub`.
fn key(dir: &Dir, name: &str) -> PathBuf {
    support::key(dir, name, "ed25519")
}

/// Signs `NAME.pub` with `ca` into `CERTNAME-cert.pub` (a copy of the key is made so that
/// several certificates of one key can coexist).
fn cert(dir: &Dir, ca: &Path, subject: &Path, certname: &str, id: &str, serial: u64) -> PathBuf {
    let copy = dir.join(&format!("{certname}.pub"));
    std::fs::copy(pub_path(subject), &copy).unwrap();
    ssh_keygen_ok(&[
        "-q",
        "-s",
        ca.to_str().unwrap(),
        "-I",
        id,
        "-n",
        "alice",
        "-z",
        &serial.to_string(),
        copy.to_str().unwrap(),
    ]);
    dir.join(&format!("{certname}-cert.pub"))
}

/// What ssh-keygen -Q says about `file` (a `.pub` key or a `-cert.pub` certificate).
fn oracle_revoked(krl: &Path, file: &Path) -> bool {
    let out = Command::new(ssh_keygen())
        .args(["-Q", "-f"])
        .arg(krl)
        .arg(file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(": REVOKED") || text.contains(": ok"),
        "unexpected ssh-keygen -Q output for {}: {text} {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    text.contains(": REVOKED")
}

/// Our verdict for `file`.
fn ours(list: &RevocationList, file: &Path) -> Option<Reason> {
    let text = std::fs::read_to_string(file).unwrap();
    if text.contains("-cert-v01@openssh.com") {
        let c = Certificate::from_openssh(text.trim()).unwrap();
        list.is_cert_revoked(&c)
    } else {
        let k = PublicKey::from_openssh(text.trim()).unwrap();
        list.is_revoked(&k)
    }
}

/// Asserts that we and ssh-keygen agree on every probe, and that `expected_revoked` are
/// exactly the revoked ones (so the test cannot pass by both saying "ok" to everything).
fn agree(krl: &Path, probes: &[(&str, &Path)], expected_revoked: &[&str]) {
    let list = RevocationList::load(krl).unwrap();
    assert!(list.is_krl());
    for (name, file) in probes {
        let theirs = oracle_revoked(krl, file);
        let mine = ours(&list, file);
        assert_eq!(
            mine.is_some(),
            theirs,
            "{name}: ssh-keygen -Q says revoked={theirs}, we say {mine:?}"
        );
        assert_eq!(
            theirs,
            expected_revoked.contains(name),
            "{name}: the oracle itself disagrees with the test's expectation"
        );
    }
}

/// `ssh-keygen -k -f DIR/krl FILE...`: a KRL revoking these keys or certificates.
fn ssh_keygen_krl(d: &Dir, files: &[&Path]) -> PathBuf {
    let krl = d.join("krl");
    let mut args = vec!["-k", "-f", krl.to_str().unwrap()];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    ssh_keygen_ok(&args);
    krl
}

/// `ssh-keygen -k -s CA.pub -f DIR/krl SPEC`: a KRL from a revocation spec for `ca`'s
/// certificates.
fn ssh_keygen_krl_spec(d: &Dir, ca: &Path, spec: &Path) -> PathBuf {
    let krl = d.join("krl");
    let ca_pub = pub_path(ca);
    ssh_keygen_ok(&[
        "-k",
        "-s",
        ca_pub.to_str().unwrap(),
        "-f",
        krl.to_str().unwrap(),
        spec.to_str().unwrap(),
    ]);
    krl
}

#[test]
fn krl_from_plain_key_files() {
    let d = Dir::new("revocation-oracle");
    let a = key(&d, "a");
    let b = key(&d, "b");
    let c = key(&d, "c");
    let krl = ssh_keygen_krl(&d, &[&pub_path(&a), &pub_path(&b)]);
    agree(
        &krl,
        &[
            ("a", &pub_path(&a)),
            ("b", &pub_path(&b)),
            ("c", &pub_path(&c)),
        ],
        &["a", "b"],
    );
    // A certificate of a revoked key is revoked too, whoever signed it.
    let ca = key(&d, "ca");
    let ca_cert = cert(&d, &ca, &a, "a1", "a-id", 7);
    let other = cert(&d, &ca, &c, "c1", "c-id", 7);
    agree(&krl, &[("a1", &ca_cert), ("c1", &other)], &["a1"]);
    let list = RevocationList::load(&krl).unwrap();
    let reason = ours(&list, &ca_cert).unwrap();
    assert!(matches!(reason, Reason::Key { .. }), "{reason:?}");
    assert!(
        reason.to_string().contains(&krl.display().to_string()),
        "{reason}"
    );
}

#[test]
fn krl_revoking_a_ca_key_revokes_its_certificates() {
    let d = Dir::new("revocation-oracle");
    let ca = key(&d, "ca");
    let ca2 = key(&d, "ca2");
    let u = key(&d, "u");
    let by_ca = cert(&d, &ca, &u, "u1", "u", 1);
    let by_ca2 = cert(&d, &ca2, &u, "u2", "u", 1);
    let krl = ssh_keygen_krl(&d, &[&pub_path(&ca)]);
    agree(
        &krl,
        &[("u1", &by_ca), ("u2", &by_ca2), ("u", &pub_path(&u))],
        &["u1"],
    );
    let reason = ours(&RevocationList::load(&krl).unwrap(), &by_ca).unwrap();
    assert!(matches!(reason, Reason::CaKey { .. }), "{reason:?}");
}

#[test]
fn krl_from_certificate_files_revokes_by_serial_or_key_id() {
    let d = Dir::new("revocation-oracle");
    let ca = key(&d, "ca");
    let u = key(&d, "u");
    let s5 = cert(&d, &ca, &u, "s5", "id-five", 5);
    let s6 = cert(&d, &ca, &u, "s6", "id-six", 6);
    // Serial 0: ssh-keygen revokes it by key id instead.
    let z = cert(&d, &ca, &u, "z", "zero-id", 0);
    let z_same_id = cert(&d, &ca, &u, "z2", "zero-id", 9);
    let krl = ssh_keygen_krl(&d, &[&s5, &z]);
    agree(
        &krl,
        &[
            ("s5", &s5),
            ("s6", &s6),
            ("z", &z),
            ("z2", &z_same_id),
            ("u", &pub_path(&u)),
        ],
        &["s5", "z", "z2"],
    );
}

#[test]
fn krl_spec_with_ca_serials_ranges_bitmaps_and_ids() {
    let d = Dir::new("revocation-oracle");
    let ca = key(&d, "ca");
    let other_ca = key(&d, "other_ca");
    let u = key(&d, "u");
    let spec = d.join("spec");
    // Dense small serials make ssh-keygen choose a bitmap, a long run a range, and a lone
    // far serial a list.
    let mut text =
        String::from("serial: 5\nserial: 10-20\nserial: 1000\nserial: 100000-200000\nid: bad-id\n");
    for s in (31..=61).step_by(2) {
        text.push_str(&format!("serial: {s}\n"));
    }
    std::fs::write(&spec, text).unwrap();
    let krl = ssh_keygen_krl_spec(&d, &ca, &spec);

    let mut probes: Vec<(String, PathBuf)> = Vec::new();
    let mut expected: Vec<String> = Vec::new();
    for s in [
        1u64, 4, 5, 6, 9, 10, 15, 20, 21, 30, 31, 32, 33, 45, 60, 61, 62, 63, 999, 1000, 1001,
        99_999, 100_000, 150_000, 200_000, 200_001,
    ] {
        let name = format!("s{s}");
        probes.push((name.clone(), cert(&d, &ca, &u, &name, "fine-id", s)));
        let revoked = s == 5
            || (10..=20).contains(&s)
            || s == 1000
            || (100_000..=200_000).contains(&s)
            || ((31..=61).contains(&s) && s % 2 == 1);
        if revoked {
            expected.push(name);
        }
    }
    probes.push(("badid".into(), cert(&d, &ca, &u, "badid", "bad-id", 2)));
    expected.push("badid".into());
    // The same serials and key id from another CA are not revoked.
    probes.push((
        "other5".into(),
        cert(&d, &other_ca, &u, "other5", "bad-id", 5),
    ));
    let probes_ref: Vec<(&str, &Path)> = probes
        .iter()
        .map(|(n, p)| (n.as_str(), p.as_path()))
        .collect();
    let expected_ref: Vec<&str> = expected.iter().map(String::as_str).collect();
    agree(&krl, &probes_ref, &expected_ref);

    let list = RevocationList::load(&krl).unwrap();
    let r = ours(&list, &probes[2].1).unwrap();
    assert!(
        matches!(
            r,
            Reason::Serial {
                serial: 5,
                ca: Some(_),
                ..
            }
        ),
        "{r:?}"
    );
    let r = ours(&list, &d.join("badid-cert.pub")).unwrap();
    assert!(r.to_string().contains("key id \"bad-id\""), "{r}");

    // ssh-keygen really used every serial encoding: list, range and bitmap subsections.
    let bytes = std::fs::read(&krl).unwrap();
    let kinds = cert_subsection_types(&bytes);
    for kind in [0x20u8, 0x21, 0x22, 0x23] {
        assert!(
            kinds.contains(&kind),
            "subsection {kind:#04x} missing: {kinds:x?}"
        );
    }
}

/// The subsection types of the first (certificate) section, walked by hand.
fn cert_subsection_types(b: &[u8]) -> Vec<u8> {
    let be32 = |at: usize| u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize;
    let header = 8 + 4 + 8 + 8 + 8 + 4 + 4;
    assert_eq!(b[header], 1);
    let end = header + 5 + be32(header + 1);
    let mut at = header + 5;
    at += 4 + be32(at); // CA key
    at += 4 + be32(at); // reserved
    let mut kinds = Vec::new();
    while at < end {
        kinds.push(b[at]);
        at += 5 + be32(at + 1);
    }
    kinds
}

#[test]
fn krl_spec_without_ca_revokes_key_ids_for_any_ca_and_keys_by_hash() {
    let d = Dir::new("revocation-oracle");
    let ca = key(&d, "ca");
    let ca2 = key(&d, "ca2");
    let u = key(&d, "u");
    let by_key = key(&d, "by_key");
    let by_sha256 = key(&d, "by_sha256");
    let by_hash = key(&d, "by_hash");
    let spared = key(&d, "spared");
    let fp = |p: &Path| {
        let out = ssh_keygen_ok(&["-l", "-E", "sha256", "-f", pub_path(p).to_str().unwrap()]);
        out.split_whitespace().nth(1).unwrap().to_string()
    };
    let line = |p: &Path| {
        std::fs::read_to_string(pub_path(p))
            .unwrap()
            .trim()
            .to_string()
    };
    let by_sha1 = key(&d, "by_sha1");
    let spec = d.join("spec");
    std::fs::write(
        &spec,
        format!(
            "# comment line\n\nkey: {}\nsha256: {}\nsha1: {}\nhash: {}\n",
            line(&by_key),
            line(&by_sha256),
            line(&by_sha1),
            fp(&by_hash),
        ),
    )
    .unwrap();
    let krl = d.join("krl");
    ssh_keygen_ok(&["-k", "-f", krl.to_str().unwrap(), spec.to_str().unwrap()]);
    let by_key_cert = cert(&d, &ca, &by_key, "bkc", "desk", 4);
    agree(
        &krl,
        &[
            ("by_key", &pub_path(&by_key)),
            ("by_sha256", &pub_path(&by_sha256)),
            ("by_sha1", &pub_path(&by_sha1)),
            ("by_hash", &pub_path(&by_hash)),
            ("spared", &pub_path(&spared)),
            ("bkc", &by_key_cert),
        ],
        &["by_key", "by_sha256", "by_sha1", "by_hash", "bkc"],
    );
    let parsed = msh_common::revocation::krl::parse(&std::fs::read(&krl).unwrap()).unwrap();
    assert_eq!(
        parsed.explicit_keys.len(),
        1,
        "key: makes an explicit-key section"
    );
    assert_eq!(
        parsed.sha256.len(),
        2,
        "sha256: and hash: make SHA256 entries"
    );
    assert_eq!(parsed.sha1.len(), 1, "sha1: makes a SHA1 entry");
    let _ = (ca2, u);
}

/// ssh-keygen 9.2 only writes per-CA certificate sections, so an any-CA section (empty CA
/// key, PROTOCOL.krl 2.) is made by removing the CA key from one it wrote; ssh-keygen -Q
/// still reads the result and stays the oracle.
#[test]
fn krl_any_ca_section_revokes_key_ids_and_serials_from_every_ca() {
    let d = Dir::new("revocation-oracle");
    let ca = key(&d, "ca");
    let ca2 = key(&d, "ca2");
    let u = key(&d, "u");
    let spec = d.join("spec");
    std::fs::write(&spec, "id: lost-laptop\nserial: 77\n").unwrap();
    let krl = ssh_keygen_krl_spec(&d, &ca, &spec);
    let mut bytes = std::fs::read(&krl).unwrap();
    let header = 8 + 4 + 8 + 8 + 8 + 4 + 4;
    assert_eq!(bytes[header], 1, "first section is a certificate section");
    let be32 = |b: &[u8], at: usize| u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize;
    let sect_len = be32(&bytes, header + 1);
    let ca_len = be32(&bytes, header + 5);
    bytes.drain(header + 9..header + 9 + ca_len);
    bytes[header + 5..header + 9].copy_from_slice(&0u32.to_be_bytes());
    bytes[header + 1..header + 5].copy_from_slice(&((sect_len - ca_len) as u32).to_be_bytes());
    let any = d.join("any-ca.krl");
    std::fs::write(&any, &bytes).unwrap();

    let lost1 = cert(&d, &ca, &u, "lost1", "lost-laptop", 3);
    let lost2 = cert(&d, &ca2, &u, "lost2", "lost-laptop", 0);
    let s77 = cert(&d, &ca2, &u, "s77", "desk", 77);
    let fine = cert(&d, &ca2, &u, "fine", "desk", 78);
    agree(
        &any,
        &[
            ("lost1", &lost1),
            ("lost2", &lost2),
            ("s77", &s77),
            ("fine", &fine),
        ],
        &["lost1", "lost2", "s77"],
    );
    let list = RevocationList::load(&any).unwrap();
    let r = ours(&list, &lost2).unwrap();
    assert!(matches!(r, Reason::KeyId { ca: None, .. }), "{r:?}");
    assert!(r.to_string().contains("any CA"), "{r}");
}

#[test]
fn krl_update_version_and_a_trailing_signature_section() {
    let d = Dir::new("revocation-oracle");
    let a = key(&d, "a");
    let b = key(&d, "b");
    let signer = key(&d, "signer");
    let krl = ssh_keygen_krl(&d, &[&pub_path(&a)]);
    ssh_keygen_ok(&[
        "-k",
        "-u",
        "-z",
        "7",
        "-f",
        krl.to_str().unwrap(),
        pub_path(&b).to_str().unwrap(),
    ]);
    agree(
        &krl,
        &[
            ("a", &pub_path(&a)),
            ("b", &pub_path(&b)),
            ("signer", &pub_path(&signer)),
        ],
        &["a", "b"],
    );
    let mut bytes = std::fs::read(&krl).unwrap();
    let parsed = msh_common::revocation::krl::parse(&bytes).unwrap();
    assert_eq!(parsed.krl_version, 7, "the KRL version given with -z");

    // A signature section (PROTOCOL.krl 6.) is skipped, not verified, and must come last.
    let blob = PublicKey::from_openssh(std::fs::read_to_string(pub_path(&signer)).unwrap().trim())
        .unwrap()
        .to_bytes()
        .unwrap();
    bytes.push(4);
    bytes.extend_from_slice(&(blob.len() as u32).to_be_bytes());
    bytes.extend_from_slice(&blob);
    bytes.extend_from_slice(&3u32.to_be_bytes());
    bytes.extend_from_slice(b"sig");
    let signed = d.join("signed");
    std::fs::write(&signed, &bytes).unwrap();
    let list = RevocationList::load(&signed).unwrap();
    assert!(ours(&list, &pub_path(&a)).is_some());
    assert!(ours(&list, &pub_path(&signer)).is_none());
    let at = bytes.len();
    bytes.extend_from_slice(&[2, 0, 0, 0, 0]);
    std::fs::write(&signed, &bytes).unwrap();
    let err = RevocationList::load(&signed).unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "byte offset {at}: section type 2 after a signature"
        )),
        "{err}"
    );
}

#[test]
fn malformed_krl_is_an_error_naming_path_and_offset() {
    let d = Dir::new("revocation-oracle");
    let a = key(&d, "a");
    let krl = ssh_keygen_krl(&d, &[&pub_path(&a)]);
    let good = std::fs::read(&krl).unwrap();
    // Truncated in the middle of the explicit-key section.
    let cut = d.join("cut");
    std::fs::write(&cut, &good[..good.len() - 5]).unwrap();
    let err = RevocationList::load(&cut).unwrap_err().to_string();
    assert!(err.contains(&cut.display().to_string()), "{err}");
    assert!(err.contains("byte offset"), "{err}");
    assert!(
        ssh_keygen_rejects(&cut),
        "ssh-keygen accepted the truncated KRL"
    );
    // Unknown section type.
    let mut bad = good.clone();
    let first_section = 8 + 4 + 8 + 8 + 8 + 4 + 4;
    bad[first_section] = 9;
    let badp = d.join("badtype");
    std::fs::write(&badp, &bad).unwrap();
    let err = RevocationList::load(&badp).unwrap_err().to_string();
    assert!(
        err.contains(&format!("byte offset {first_section}")),
        "{err}"
    );
    assert!(err.contains("unsupported KRL section type 9"), "{err}");
    assert!(ssh_keygen_rejects(&badp));
}

fn ssh_keygen_rejects(krl: &Path) -> bool {
    let out = Command::new(ssh_keygen())
        .args(["-Q", "-l", "-f"])
        .arg(krl)
        .output()
        .unwrap();
    !out.status.success()
}
