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

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use msh_common::certs::{self, check_user_cert, CertDecision, PrincipalsFile};
use msh_common::keys::load_public_key;
use msh_common::revocation::{append_revoked, RevocationList, Revokee};

fn tool(name: &str) -> PathBuf {
    [
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
        "/usr/local/bin",
        "/usr/local/sbin",
    ]
    .iter()
    .map(|d| Path::new(d).join(name))
    .find(|p| p.is_file())
    .unwrap_or_else(|| panic!("{name} not found: apt-get install openssh-server openssh-client"))
}

fn keygen(args: &[&str]) {
    let out = Command::new(tool("ssh-keygen"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ssh-keygen {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// sshd, stopped by its PID when dropped.
struct Sshd {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sshd {
    fn start(dir: &Path, name: &str, extra: &str) -> Sshd {
        let host_key = dir.join(format!("{name}_host_key"));
        keygen(&[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-f",
            host_key.to_str().unwrap(),
        ]);
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
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
        let run_sshd = Path::new("/run/sshd");
        if !run_sshd.exists() {
            std::fs::create_dir_all(run_sshd).unwrap();
            std::fs::set_permissions(run_sshd, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(tool("sshd"))
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut sshd = Sshd { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            if let Ok(Some(status)) = sshd.child.try_wait() {
                panic!("sshd exited ({status}): {}", sshd.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "sshd did not listen in 15 s: {}",
                sshd.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        sshd
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Logs in as root with `key` (its `-cert.pub` beside it); `Some(stdout)` if admitted.
    fn login(&self, key: &Path) -> Option<String> {
        let mut child = Command::new(tool("ssh"))
            .args([
                "-F",
                "/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
            ])
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ])
            .args([
                "-o",
                "ConnectTimeout=10",
                "-o",
                "LogLevel=ERROR",
                "-o",
                "KexAlgorithms=curve25519-sha256",
                "-T",
                "-i",
            ])
            .arg(key)
            .args(["-p", &self.port.to_string(), "root@127.0.0.1", "echo in"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("ssh did not finish in 30 s; sshd log: {}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        match status.code() {
            Some(255) if err.contains("Permission denied") => None,
            Some(0) => Some(out),
            other => panic!("ssh exited {other:?}: {err}; sshd log: {}", self.log_text()),
        }
    }
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

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
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
        keygen(&["-q", "-t", "ed25519", "-N", "", "-f", p.to_str().unwrap()]);
    }
    let pubp = |p: &Path| PathBuf::from(format!("{}.pub", p.display()));
    let ca_pub = load_public_key(&pubp(&ca)).unwrap();
    let ca_keys = dir.join("trusted_ca_keys");
    std::fs::copy(pubp(&ca), &ca_keys).unwrap();
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
    let plain = Sshd::start(dir, "plain", &common);
    let with_principals = Sshd::start(
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
        std::fs::copy(pubp(&user), pubp(&id)).unwrap();
        let signer = if c.other_ca { &other_ca } else { &ca };
        let mut args = vec!["-q", "-s", signer.to_str().unwrap(), "-I", "oracle"];
        args.extend(c.sign.iter());
        let idpub = pubp(&id);
        args.push(idpub.to_str().unwrap());
        keygen(&args);
        let cert_path = dir.join(format!("id{i}-cert.pub"));
        let cert = certs::load(&cert_path).unwrap();

        let _ = std::fs::remove_file(&revoked);
        match &c.revoke {
            Revoke::Nothing => std::fs::write(&revoked, "").unwrap(),
            // Text lists are written by append_revoked (msh-keygen revoke), so sshd reading
            // them also checks what we write.
            Revoke::KeyText => {
                let k = load_public_key(&pubp(&user)).unwrap();
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
                keygen(&[
                    "-k",
                    "-s",
                    pubp(&ca).to_str().unwrap(),
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

        let theirs = plain.login(&id);
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
        std::fs::copy(pubp(&user), pubp(&id)).unwrap();
        keygen(&[
            "-q",
            "-s",
            ca.to_str().unwrap(),
            "-I",
            "p",
            "-n",
            principal_list,
            pubp(&id).to_str().unwrap(),
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
        let theirs = with_principals.login(&id);
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
