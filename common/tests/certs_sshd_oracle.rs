//! Oracle test: OpenSSH's sshd (TrustedUserCAKeys, AuthorizedPrincipalsFile, RevokedKeys)
//! and msh's `revocation` + `certs::check_user_cert` decide the same logins for the same
//! certificates (all signed by `ssh-keygen -s`) and the same files, and accepted logins run
//! the same forced command. Each case logs in as root over 127.0.0.1 with the real ssh.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use msh_common::certs::{self, check_user_cert, CertDecision, PrincipalsFile};
use msh_common::keys::load_public_key;
use msh_common::revocation::{append_revoked, RevocationList, Revokee};
use support::{free_port, now, pub_path, ssh_keygen_ok, Sshd};

/// sshd serving root on 127.0.0.1 with the config lines `extra` added; files named NAME_*.
fn start_sshd(dir: &Path, name: &str, extra: &str) -> Sshd {
    let host_key = dir.join(format!("{name}_host_key"));
    ssh_keygen_ok(&[
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-f",
        host_key.to_str().unwrap(),
    ]);
    let host = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let port = free_port(host);
    let config = dir.join(format!("{name}_config"));
    std::fs::write(
        &config,
        format!(
            "ListenAddress 127.0.0.1\nPort {port}\nHostKey {}\nAuthorizedKeysFile none\n\
             PidFile none\nUsePAM no\nStrictModes no\nUseDNS no\nPermitRootLogin yes\n\
             PubkeyAuthentication yes\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nLogLevel DEBUG1\nMaxStartups 100\n{extra}",
            host_key.display()
        ),
    )
    .unwrap();
    Sshd::spawn(host, port, &config, dir.join(format!("{name}.log")))
}

/// Logs in as root with `key` (its `-cert.pub` beside it); `Some(stdout)` if admitted.
fn login(sshd: &Sshd, key: &Path) -> Option<String> {
    sshd.login(key, &["KexAlgorithms=curve25519-sha256"], "echo in")
}

struct Case {
    name: &'static str,
    /// ssh-keygen -s arguments (besides -s CA and the key).
    sign: Vec<&'static str>,
    /// Sign with the untrusted CA.
    other_ca: bool,
    /// What to put in the revocation file before the login.
    revoke: Revoke,
    expect_admitted: bool,
}

enum Revoke {
    Nothing,
    /// Text list holding the user key.
    KeyText,
    /// Text list holding the CA key.
    CaText,
    /// Text list holding the certificate line.
    CertText,
    /// KRL made by ssh-keygen -k -s CA from this spec.
    KrlSpec(&'static str),
}

fn case(name: &'static str, sign: &[&'static str], expect_admitted: bool) -> Case {
    Case {
        name,
        sign: sign.to_vec(),
        other_ca: false,
        revoke: Revoke::Nothing,
        expect_admitted,
    }
}

#[test]
fn sshd_and_msh_agree_on_user_certificates() {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("certs-sshd-oracle");
    std::fs::create_dir_all(&base).unwrap();
    let tmp = tempfile::Builder::new().tempdir_in(&base).unwrap();
    let dir = tmp.path();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let ca = dir.join("ca");
    let other_ca = dir.join("other_ca");
    let user = dir.join("user");
    for p in [&ca, &other_ca, &user] {
        ssh_keygen_ok(&["-q", "-t", "ed25519", "-N", "", "-f", p.to_str().unwrap()]);
    }
    let ca_pub = load_public_key(&pub_path(&ca)).unwrap();
    let ca_keys = dir.join("trusted_ca_keys");
    std::fs::copy(pub_path(&ca), &ca_keys).unwrap();
    let revoked = dir.join("revoked_keys");
    let principals_dir = dir.join("principals");
    std::fs::create_dir_all(&principals_dir).unwrap();
    let principals = principals_dir.join("root");
    std::fs::write(
        &principals,
        "# ops may be root\nops\ncommand=\"echo via-principals\" backup\n",
    )
    .unwrap();

    let common = format!(
        "TrustedUserCAKeys {}\nRevokedKeys {}\n",
        ca_keys.display(),
        revoked.display()
    );
    let plain = start_sshd(dir, "plain", &common);
    let with_principals = start_sshd(
        dir,
        "principals",
        &format!(
            "{common}AuthorizedPrincipalsFile {}/%u\n",
            principals_dir.display()
        ),
    );

    let mut cases = vec![
        case("good", &["-n", "root"], true),
        case("good among several", &["-n", "alice,root"], true),
        case("wrong principal", &["-n", "alice"], false),
        case("no principals", &[], false),
        case("expired", &["-n", "root", "-V", "20200101:20200102"], false),
        case("not yet valid", &["-n", "root", "-V", "+52w:+53w"], false),
        case("host certificate", &["-h", "-n", "root"], false),
        case(
            "unknown critical option",
            &["-n", "root", "-O", "critical:foo=bar"],
            false,
        ),
        case(
            "unknown extension",
            &["-n", "root", "-O", "extension:foo@example.com"],
            true,
        ),
        case(
            "source-address elsewhere",
            &["-n", "root", "-O", "source-address=10.0.0.0/8"],
            false,
        ),
        case(
            "source-address here",
            &["-n", "root", "-O", "source-address=10.0.0.0/8,127.0.0.1"],
            true,
        ),
        case(
            "force-command",
            &["-n", "root", "-O", "force-command=echo forced"],
            true,
        ),
    ];
    cases.push(Case {
        other_ca: true,
        ..case("untrusted CA", &["-n", "root"], false)
    });
    cases.push(Case {
        revoke: Revoke::KeyText,
        ..case("key revoked (text)", &["-n", "root"], false)
    });
    cases.push(Case {
        revoke: Revoke::CaText,
        ..case("CA revoked (text)", &["-n", "root"], false)
    });
    cases.push(Case {
        revoke: Revoke::CertText,
        ..case("cert line revoked (text)", &["-n", "root"], false)
    });
    cases.push(Case {
        revoke: Revoke::KrlSpec("serial: 40-50\n"),
        ..case("serial revoked (KRL)", &["-n", "root", "-z", "45"], false)
    });
    cases.push(Case {
        revoke: Revoke::KrlSpec("serial: 40-50\n"),
        ..case("other serial (KRL)", &["-n", "root", "-z", "51"], true)
    });
    cases.push(Case {
        revoke: Revoke::KrlSpec("id: stolen\n"),
        ..case(
            "key id revoked (KRL)",
            &["-n", "root", "-I", "stolen"],
            false,
        )
    });

    for (i, c) in cases.iter().enumerate() {
        let id = dir.join(format!("id{i}"));
        std::fs::copy(&user, &id).unwrap();
        std::fs::set_permissions(&id, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::copy(pub_path(&user), pub_path(&id)).unwrap();
        let signer = if c.other_ca { &other_ca } else { &ca };
        let mut args = vec!["-q", "-s", signer.to_str().unwrap(), "-I", "oracle"];
        args.extend(c.sign.iter());
        let idpub = pub_path(&id);
        args.push(idpub.to_str().unwrap());
        ssh_keygen_ok(&args);
        let cert_path = dir.join(format!("id{i}-cert.pub"));
        let cert = certs::load(&cert_path).unwrap();

        let _ = std::fs::remove_file(&revoked);
        match &c.revoke {
            Revoke::Nothing => std::fs::write(&revoked, "").unwrap(),
            // Text lists are written by append_revoked (msh-keygen revoke), so sshd reading
            // them also checks what we write.
            Revoke::KeyText => {
                let k = load_public_key(&pub_path(&user)).unwrap();
                assert_eq!(append_revoked(&revoked, &[Revokee::Key(k)]).unwrap(), 1);
            }
            Revoke::CaText => {
                assert_eq!(
                    append_revoked(&revoked, &[Revokee::Key(ca_pub.clone())]).unwrap(),
                    1
                );
            }
            Revoke::CertText => {
                let c = Box::new(cert.clone());
                assert_eq!(append_revoked(&revoked, &[Revokee::Cert(c)]).unwrap(), 1);
            }
            Revoke::KrlSpec(spec) => {
                let spec_path = dir.join(format!("spec{i}"));
                std::fs::write(&spec_path, spec).unwrap();
                ssh_keygen_ok(&[
                    "-k",
                    "-s",
                    pub_path(&ca).to_str().unwrap(),
                    "-f",
                    revoked.to_str().unwrap(),
                    spec_path.to_str().unwrap(),
                ]);
            }
        }
        let list = RevocationList::load(&revoked).unwrap();
        let revoked_reason = list.is_cert_revoked(&cert);
        let decision = check_user_cert(
            &cert,
            "root",
            std::slice::from_ref(&ca_pub),
            None,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            now(),
        );
        let ours = revoked_reason.is_none() && decision.is_accepted();

        let theirs = login(&plain, &id);
        assert_eq!(
            theirs.is_some(),
            ours,
            "{}: sshd admitted={}, msh: revoked={revoked_reason:?} decision={decision:?}\nsshd log tail: {}",
            c.name,
            theirs.is_some(),
            plain.log_text().lines().rev().take(15).collect::<Vec<_>>().join("\n")
        );
        assert_eq!(
            ours, c.expect_admitted,
            "{}: the test's expectation is wrong",
            c.name
        );
        if let (Some(out), CertDecision::Accept { permissions, .. }) = (&theirs, &decision) {
            let expected = match &permissions.force_command {
                Some(cmd) => String::from_utf8(
                    Command::new("sh")
                        .args(["-c", cmd])
                        .output()
                        .unwrap()
                        .stdout,
                )
                .unwrap(),
                None => "in\n".to_string(),
            };
            assert_eq!(out, &expected, "{}: what the session ran", c.name);
        }
    }

    // With AuthorizedPrincipalsFile: the file's names replace the user name.
    std::fs::write(&revoked, "").unwrap();
    let pf = PrincipalsFile::load(&principals).unwrap();
    let names = pf.names();
    for (i, (principal_list, expect)) in [("ops", true), ("root", false), ("dba,backup", true)]
        .iter()
        .enumerate()
    {
        let id = dir.join(format!("p{i}"));
        std::fs::copy(&user, &id).unwrap();
        std::fs::set_permissions(&id, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::copy(pub_path(&user), pub_path(&id)).unwrap();
        ssh_keygen_ok(&[
            "-q",
            "-s",
            ca.to_str().unwrap(),
            "-I",
            "p",
            "-n",
            principal_list,
            pub_path(&id).to_str().unwrap(),
        ]);
        let cert = certs::load(&dir.join(format!("p{i}-cert.pub"))).unwrap();
        let decision = check_user_cert(
            &cert,
            "root",
            std::slice::from_ref(&ca_pub),
            Some(&names),
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            now(),
        );
        let theirs = login(&with_principals, &id);
        assert_eq!(
            theirs.is_some(),
            decision.is_accepted(),
            "principals {principal_list}: sshd {theirs:?}, msh {decision:?}"
        );
        assert_eq!(
            decision.is_accepted(),
            *expect,
            "principals {principal_list}"
        );
        if let Some(out) = theirs {
            // The principals line's command= applies (msh's caller applies `entry.options`).
            let entry = pf.find(cert.valid_principals()).unwrap();
            let expected = match &entry.options.command {
                Some(cmd) => String::from_utf8(
                    Command::new("sh")
                        .args(["-c", cmd])
                        .output()
                        .unwrap()
                        .stdout,
                )
                .unwrap(),
                None => "in\n".to_string(),
            };
            assert_eq!(out, expected, "principals {principal_list}");
        }
    }
}
