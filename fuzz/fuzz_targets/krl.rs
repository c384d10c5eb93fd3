//! Fuzzes the revocation-list reader: `revocation::krl::parse` (OpenSSH binary KRLs) and
//! `RevocationList::parse` (KRL or text key list), then asks the parsed list about the
//! fixture keys and certificates. Besides "no panic", it asserts that serial ranges come out
//! sorted and merged and that `serial_revoked` agrees with a linear scan of them, and that a
//! listed CA or subject key revokes the fixture certificates (as OpenSSH does).
#![no_main]

mod fixtures;

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use msh_common::revocation::{krl, RevocationList};

fuzz_target!(|data: &[u8]| {
    let fx = fixtures::get();
    if let Ok(k) = krl::parse(data) {
        for section in &k.certs {
            let serials = &section.serials;
            for (lo, hi) in serials {
                assert!(lo <= hi, "range {lo}-{hi} reversed");
            }
            for pair in serials.windows(2) {
                assert!(
                    pair[0].1 < pair[1].0,
                    "ranges not sorted and merged: {pair:?}"
                );
            }
            let scan = |s: u64| s != 0 && serials.iter().any(|(lo, hi)| *lo <= s && s <= *hi);
            let mut probes = vec![0, 1, 7, 42, u64::MAX];
            for (lo, hi) in serials.iter().take(16) {
                probes.extend([*lo, *hi, lo.wrapping_sub(1), hi.wrapping_add(1)]);
            }
            for s in probes {
                assert_eq!(
                    section.serial_revoked(s),
                    scan(s),
                    "serial {s} in {serials:?}"
                );
            }
        }
    }

    let Ok(list) = RevocationList::parse(Path::new("fuzz/revoked_keys"), data) else {
        return;
    };
    for key in fx.plain_keys() {
        if let Some(reason) = list.is_revoked(key) {
            assert!(!reason.to_string().is_empty());
        }
    }
    for (cert, subject) in [(&fx.user_cert, &fx.user), (&fx.host_cert, &fx.host)] {
        let revoked = list.is_cert_revoked(cert);
        if list.is_revoked(&fx.ca_pub).is_some() {
            assert!(revoked.is_some(), "CA revoked but its certificate is not");
        }
        if list.is_revoked(subject).is_some() {
            assert!(revoked.is_some(), "key revoked but its certificate is not");
        }
        let as_key = russh::keys::PublicKey::new(cert.clone().into(), "");
        assert_eq!(
            list.is_revoked(&as_key),
            revoked,
            "is_revoked(cert) != is_cert_revoked"
        );
    }
});
