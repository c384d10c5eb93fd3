//! Oracle tests for certificates: what `certs::issue` writes, `ssh-keygen -L` reads and
//! reports exactly as `certs::inspect` does (line by line, ours adding one UTC line); what
//! `ssh-keygen -s` signs, we parse and report identically; and `certs::validity` turns every
//! `-V` form into the same window ssh-keygen puts in the certificate. ssh-keygen runs with
//! TZ set to a zone with a half-hour offset so that local and UTC times differ.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::Path;
use std::process::Command;

use jiff::tz::TimeZone;
use msh_common::certs::{self, inspect, validity, CertRequest, Validity};
use msh_common::keys::{load_private_key, load_public_key};
use support::{key, now, pub_path, ssh_keygen, stdout_of_ok, Dir};

const ZONE: &str = "Asia/Kolkata";

fn zone() -> TimeZone {
    TimeZone::get(ZONE).unwrap_or_else(|e| panic!("time zone {ZONE}: {e}; apt-get install tzdata"))
}

fn keygen(args: &[&str]) -> std::process::Output {
    Command::new(ssh_keygen())
        .env("TZ", ZONE)
        .args(args)
        .output()
        .unwrap()
}

/// ssh-keygen's stdout (in ZONE), failing the test unless it succeeds.
fn keygen_ok(args: &[&str]) -> String {
    stdout_of_ok(args, keygen(args))
}

/// Our report without the UTC line must equal ssh-keygen -L's output byte for byte.
fn assert_same_report(cert_path: &Path) {
    let theirs = keygen_ok(&["-L", "-f", cert_path.to_str().unwrap()]);
    let cert = certs::load(cert_path).unwrap();
    let mine = inspect::render_in(cert_path.to_str().unwrap(), &cert, &zone());
    let utc_lines: Vec<&str> = mine
        .lines()
        .filter(|l| l.starts_with(inspect::UTC_LINE_PREFIX))
        .collect();
    assert_eq!(utc_lines.len(), 1, "{mine}");
    let without: String = mine
        .lines()
        .filter(|l| !l.starts_with(inspect::UTC_LINE_PREFIX))
        .map(|l| format!("{l}\n"))
        .collect();
    for (n, (a, b)) in theirs.lines().zip(without.lines()).enumerate() {
        assert_eq!(
            a,
            b,
            "line {} differs\nssh-keygen:\n{theirs}\nours:\n{mine}",
            n + 1
        );
    }
    assert_eq!(theirs, without, "ssh-keygen:\n{theirs}\nours:\n{mine}");
}

#[test]
fn certificates_we_issue_are_read_by_ssh_keygen() {
    let d = Dir::new("certs-oracle");
    let cases = [
        ("ed25519", "ed25519"),
        ("ecdsa", "ed25519"),
        ("rsa", "ed25519"),
        ("ed25519", "ecdsa"),
    ];
    for (n, (ca_type, user_type)) in cases.iter().enumerate() {
        let ca = key(&d, &format!("ca{n}"), ca_type);
        let user = key(&d, &format!("user{n}"), user_type);
        let ca_key = load_private_key(&ca, None).unwrap();
        let subject = load_public_key(&pub_path(&user)).unwrap();
        let req = CertRequest {
            host: false,
            key_id: "alice@laptop".into(),
            serial: 4242 + n as u64,
            principals: vec!["alice".into(), "ops".into()],
            validity: validity::parse_in("20260101:20270101123000Z", now(), &zone()).unwrap(),
            force_command: Some("/usr/bin/uptime -p".into()),
            source_address: Some("10.0.0.0/8,127.0.0.1,::1".into()),
        };
        let cert = certs::issue(&ca_key, &subject, &req).unwrap();
        let path = certs::cert_path(&pub_path(&user));
        assert_eq!(path, d.join(&format!("user{n}-cert.pub")));
        std::fs::write(&path, certs::to_line(&cert).unwrap()).unwrap();
        let report = keygen_ok(&["-L", "-f", path.to_str().unwrap()]);
        assert!(report.contains("user certificate"), "{report}");
        assert!(report.contains("Key ID: \"alice@laptop\""), "{report}");
        assert!(
            report.contains(&format!("Serial: {}", 4242 + n)),
            "{report}"
        );
        assert!(report.contains("permit-pty"), "{report}");
        assert!(
            report.contains("force-command /usr/bin/uptime -p"),
            "{report}"
        );
        assert_same_report(&path);
        // The certificate line keeps the key's comment, as ssh-keygen's do.
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .trim_end()
            .ends_with(&format!("user{n}")));
    }

    let ca = key(&d, "hca", "ed25519");
    let host = key(&d, "host", "ed25519");
    let req = CertRequest {
        host: true,
        key_id: "web1".into(),
        serial: 0,
        principals: vec!["web1.example.com".into(), "web1".into()],
        validity: Validity {
            valid_after: 0,
            valid_before: validity::FOREVER,
        },
        force_command: None,
        source_address: None,
    };
    let cert = certs::issue(
        &load_private_key(&ca, None).unwrap(),
        &load_public_key(&pub_path(&host)).unwrap(),
        &req,
    )
    .unwrap();
    let path = d.join("host-cert.pub");
    std::fs::write(&path, certs::to_line(&cert).unwrap()).unwrap();
    let report = keygen_ok(&["-L", "-f", path.to_str().unwrap()]);
    assert!(report.contains("host certificate"), "{report}");
    assert!(report.contains("Valid: forever"), "{report}");
    assert!(report.contains("Extensions: (none)"), "{report}");
    assert_same_report(&path);
}

#[test]
fn issue_refuses_what_ssh_keygen_refuses() {
    let d = Dir::new("certs-oracle");
    let ca_path = key(&d, "ca", "ed25519");
    let user_path = key(&d, "u", "ed25519");
    let ca = load_private_key(&ca_path, None).unwrap();
    let user = load_public_key(&pub_path(&user_path)).unwrap();
    let ssh_keygen_signs = |opt: &str| {
        keygen(&[
            "-q",
            "-s",
            ca_path.to_str().unwrap(),
            "-I",
            "x",
            "-O",
            opt,
            pub_path(&user_path).to_str().unwrap(),
        ])
        .status
        .success()
    };
    assert!(
        ssh_keygen_signs("source-address=10.0.0.0/8"),
        "the oracle signs a good list"
    );
    let base = CertRequest {
        host: false,
        key_id: "x".into(),
        serial: 1,
        principals: vec!["alice".into()],
        validity: Validity {
            valid_after: 0,
            valid_before: validity::FOREVER,
        },
        force_command: None,
        source_address: None,
    };
    // What `certs::issue` says when it refuses `req`.
    let refused = |req: CertRequest| certs::issue(&ca, &user, &req).unwrap_err().to_string();
    let err = refused(CertRequest {
        source_address: Some("10.0.0.1/8".into()),
        ..base.clone()
    });
    assert!(err.contains("host bits set"), "{err}");
    assert!(!ssh_keygen_signs("source-address=10.0.0.1/8"));
    let err = refused(CertRequest {
        source_address: Some("*.example.com".into()),
        ..base.clone()
    });
    assert!(err.contains("not an address"), "{err}");
    assert!(!ssh_keygen_signs("source-address=*.example.com"));
    let err = refused(CertRequest {
        host: true,
        force_command: Some("ls".into()),
        ..base.clone()
    });
    assert!(err.contains("user certificates only"), "{err}");
}

#[test]
fn certificates_ssh_keygen_signs_are_parsed_and_reported_identically() {
    let d = Dir::new("certs-oracle");
    let ca = key(&d, "ca", "ed25519");
    let rsa_ca = key(&d, "rsaca", "rsa");
    let cases: Vec<(&str, &Path, Vec<&str>)> = vec![
        (
            "plain",
            &ca,
            vec![
                "-I",
                "alice",
                "-n",
                "alice,bob",
                "-z",
                "42",
                "-V",
                "20260101:20270101",
            ],
        ),
        (
            "options",
            &ca,
            vec![
                "-I",
                "key id with spaces",
                "-n",
                "alice",
                "-V",
                "20260315093000Z:forever",
                "-O",
                "force-command=ls -l /",
                "-O",
                "source-address=192.168.0.0/16,::1",
            ],
        ),
        (
            "unknown",
            &ca,
            vec![
                "-I",
                "x",
                "-V",
                "always:20300101",
                "-O",
                "clear",
                "-O",
                "critical:foo=bar",
                "-O",
                "extension:baz",
                "-O",
                "extension:qux=val",
                "-O",
                "permit-pty",
                "-O",
                "no-touch-required",
            ],
        ),
        (
            "host",
            &ca,
            vec![
                "-I",
                "web1",
                "-h",
                "-n",
                "web1,web1.example.com",
                "-V",
                "always:forever",
            ],
        ),
        (
            "rsa",
            &rsa_ca,
            vec![
                "-I",
                "r",
                "-n",
                "alice",
                "-V",
                "+1h",
                "-z",
                "18446744073709551615",
            ],
        ),
    ];
    for (name, signer, opts) in cases {
        let user = key(&d, name, "ed25519");
        let mut args = vec!["-q", "-s", signer.to_str().unwrap()];
        args.extend(opts.iter());
        let p = pub_path(&user);
        args.push(p.to_str().unwrap());
        keygen_ok(&args);
        let cert_path = d.join(&format!("{name}-cert.pub"));
        let cert = certs::load(&cert_path).unwrap();
        match name {
            "plain" => {
                assert_eq!(cert.key_id(), "alice");
                assert_eq!(cert.serial(), 42);
                assert_eq!(cert.valid_principals(), ["alice", "bob"]);
                assert_eq!(cert.extensions().len(), 5);
            }
            "options" => {
                assert_eq!(
                    cert.critical_options().get("force-command").unwrap(),
                    "ls -l /"
                );
                assert_eq!(cert.valid_after(), 1_773_567_000);
                assert_eq!(cert.valid_before(), validity::FOREVER);
            }
            "host" => assert!(cert.cert_type().is_host()),
            "rsa" => assert_eq!(cert.serial(), u64::MAX),
            _ => {}
        }
        assert_same_report(&cert_path);
    }
}

#[test]
fn validity_syntax_agrees_with_ssh_keygen() {
    let d = Dir::new("certs-oracle");
    let ca = key(&d, "ca", "ed25519");
    let user = key(&d, "u", "ed25519");
    let specs = [
        "+52w",
        "+1h30m",
        "+90",
        "-1d:+1w",
        "-4w:+4w",
        "20260101:20270101",
        "20260101Z:20270101Z",
        "202601011230:20260102",
        "20260101123000:20270101123000Z",
        "20260101UTC:forever",
        "always:+1d",
        "always:forever",
        "0x10:0x20",
        "-1h:20991231",
    ];
    let user_pub = pub_path(&user);
    // ssh-keygen -s CA -I x -V SPEC u.pub, as argv.
    let sign_args = |spec| {
        [
            "-q",
            "-s",
            ca.to_str().unwrap(),
            "-I",
            "x",
            "-V",
            spec,
            user_pub.to_str().unwrap(),
        ]
    };
    for spec in specs {
        let before = now();
        keygen_ok(&sign_args(spec));
        let after = now();
        let cert = certs::load(&d.join("u-cert.pub")).unwrap();
        let ours_at = |t| validity::parse_in(spec, t, &zone()).unwrap();
        let matches = (before..=after).any(|t| {
            let v = ours_at(t);
            v.valid_after == cert.valid_after() && v.valid_before == cert.valid_before()
        });
        assert!(
            matches,
            "{spec}: ssh-keygen wrote {}..{}, we parse {:?}",
            cert.valid_after(),
            cert.valid_before(),
            ours_at(before)
        );
    }
    for bad in [
        "20270101",
        "1d",
        "+1d:+1h",
        "20260101:",
        ":20260101",
        "+1x",
        "2026010:20270101",
        "20261301:20270101",
    ] {
        assert!(
            !keygen(&sign_args(bad)).status.success(),
            "ssh-keygen accepted {bad}"
        );
        let err = validity::parse_in(bad, now(), &zone())
            .unwrap_err()
            .to_string();
        assert!(err.contains(bad), "error should name {bad}: {err}");
    }
}

#[test]
fn timestamps_are_formatted_local_and_utc() {
    let t = 1_798_761_600; // 2027-01-01T00:00:00Z
    assert_eq!(validity::format_utc(t), "2027-01-01T00:00:00Z");
    assert_eq!(validity::format_in(t, &zone()), "2027-01-01T05:30:00");
    assert_eq!(validity::describe_utc(0, t), "before 2027-01-01T00:00:00Z");
    assert_eq!(
        validity::describe_in(t, validity::FOREVER, &zone()),
        "after 2027-01-01T05:30:00"
    );
}

/// Deliberate deviation: ssh-keygen 9.2 reads a local date with `mktime` and `tm_isdst = 0`,
/// so in summer it applies standard time and lands one hour late. msh uses the offset in
/// force on that date. In winter the two agree.
#[test]
fn local_dates_in_summer_use_daylight_saving_time_unlike_ssh_keygen() {
    let d = Dir::new("certs-oracle");
    let ca = key(&d, "ca", "ed25519");
    let user = key(&d, "u", "ed25519");
    let berlin = TimeZone::get("Europe/Berlin").unwrap();
    let spec = "20260701:20261201";
    let out = Command::new(ssh_keygen())
        .env("TZ", "Europe/Berlin")
        .args(["-q", "-s", ca.to_str().unwrap(), "-I", "x", "-V", spec])
        .arg(pub_path(&user))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let theirs = certs::load(&d.join("u-cert.pub")).unwrap();
    let ours = validity::parse_in(spec, now(), &berlin).unwrap();
    assert_eq!(
        validity::format_utc(ours.valid_after),
        "2026-06-30T22:00:00Z"
    );
    assert_eq!(theirs.valid_after(), ours.valid_after + 3600);
    assert_eq!(
        validity::format_utc(ours.valid_before),
        "2026-11-30T23:00:00Z"
    );
    assert_eq!(theirs.valid_before(), ours.valid_before);
}
