//! Fuzzes OpenSSH certificate parsing and msh's certificate policy. The first input byte
//! picks the form: even = a certificate line through `msh_common::certs::parse` (which uses
//! `Certificate::from_openssh`), odd = a binary certificate blob (`Certificate::from_bytes`).
//! A parsed certificate is rendered (`ssh-keygen -L` report), written back with `to_line`,
//! and checked with `check_user_cert` / `check_host_cert` against the fixture CA. Since a
//! mutated certificate's signature no longer verifies, its fields are also re-signed with the
//! fixture CA, so the policy past the signature check (principals, validity, critical
//! options, source-address, extensions) sees fuzzed values too. Accepts must keep the
//! promises the policy makes; they are asserted.
#![no_main]

mod fixtures;

use libfuzzer_sys::fuzz_target;
use msh_common::certs::{self, check_host_cert, check_user_cert, CertDecision, CertInfo};
use russh::keys::ssh_key::certificate::Builder;
use russh::keys::{Algorithm, Certificate};

const USER: &str = "alice";
const HOST: &str = "host.example.com";

fn exercise(cert: &Certificate, fx: &fixtures::Fixtures) {
    let _ = certs::inspect::render_in("fuzz", cert, &jiff::tz::TimeZone::UTC);
    let _ = CertInfo::of(cert).to_string();
    // ssh-key's from_bytes accepts any algorithm name (even one with control bytes, see
    // artifacts-regressions/certificate/), which its own line parser then refuses; the
    // round trip is only promised for the algorithms OpenSSH knows.
    let known = !matches!(cert.algorithm(), Algorithm::Other(_));
    if let (true, Ok(line)) = (known, certs::to_line(cert)) {
        match certs::parse(&line) {
            Ok(back) => assert_eq!(back.to_bytes().ok(), cert.to_bytes().ok(), "{line}"),
            Err(why) => panic!("to_line wrote {line:?}, which does not parse: {why}"),
        }
    }
    let cas = [fx.ca_pub.clone()];
    let now = fixtures::NOW_SECS;
    let in_window = cert.valid_after() <= now && now < cert.valid_before();
    let from_ca = cert.signature_key() == fx.ca_pub.key_data();
    let allowed = ["root".to_string(), USER.to_string()];
    for (peer, principals_allowed) in [
        (fixtures::PEERS[0], None),
        (fixtures::PEERS[1], Some(&allowed[..])),
        (fixtures::PEERS[3], None),
    ] {
        match check_user_cert(cert, USER, &cas, principals_allowed, peer, now) {
            CertDecision::Accept {
                principal,
                permissions,
                ..
            } => {
                assert!(from_ca && in_window && cert.cert_type().is_user());
                assert!(cert.valid_principals().contains(&principal));
                match principals_allowed {
                    None => assert_eq!(principal, USER),
                    Some(list) => assert!(list.contains(&principal)),
                }
                for name in cert.critical_options().keys() {
                    assert!(
                        name == "force-command" || name == "source-address",
                        "{name}"
                    );
                }
                assert_eq!(
                    permissions.force_command.as_ref(),
                    cert.critical_options().get("force-command")
                );
                assert_eq!(
                    permissions.pty,
                    cert.extensions().contains_key("permit-pty")
                );
            }
            CertDecision::Reject { reason, .. } => assert!(!reason.is_empty()),
        }
    }
    match check_host_cert(cert, HOST, &cas, now) {
        CertDecision::Accept { principal, .. } => {
            assert!(from_ca && in_window && cert.cert_type().is_host());
            assert_eq!(principal, HOST);
            let names = cert.valid_principals();
            assert!(names.is_empty() || names.iter().any(|n| n.eq_ignore_ascii_case(HOST)));
            assert!(cert.critical_options().is_empty());
        }
        CertDecision::Reject { reason, .. } => assert!(!reason.is_empty()),
    }
}

/// `cert`'s fields signed anew by the fixture CA; `None` when the builder refuses them.
fn resign(cert: &Certificate, fx: &fixtures::Fixtures) -> Option<Certificate> {
    let mut b = Builder::new(
        cert.nonce().to_vec(),
        cert.public_key().clone(),
        cert.valid_after(),
        cert.valid_before(),
    )
    .ok()?;
    b.serial(cert.serial()).ok()?;
    b.cert_type(cert.cert_type()).ok()?;
    b.key_id(cert.key_id()).ok()?;
    if cert.valid_principals().is_empty() {
        b.all_principals_valid().ok()?;
    }
    for p in cert.valid_principals() {
        b.valid_principal(p.clone()).ok()?;
    }
    for (k, v) in cert.critical_options().iter() {
        b.critical_option(k.clone(), v.clone()).ok()?;
    }
    for (k, v) in cert.extensions().iter() {
        b.extension(k.clone(), v.clone()).ok()?;
    }
    b.comment(cert.comment()).ok()?;
    b.sign(&fx.ca).ok()
}

fuzz_target!(|data: &[u8]| {
    let fx = fixtures::get();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let cert = if mode & 1 == 0 {
        certs::parse(&String::from_utf8_lossy(rest)).ok()
    } else {
        Certificate::from_bytes(rest).ok()
    };
    let Some(cert) = cert else {
        return;
    };
    exercise(&cert, fx);
    if let Some(resigned) = resign(&cert, fx) {
        assert!(
            resigned.verify_signature().is_ok(),
            "re-signed certificate must verify"
        );
        exercise(&resigned, fx);
    }
});
