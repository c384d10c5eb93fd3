//! `check_user_cert` / `check_host_cert` on certificates signed by the real `ssh-keygen -s`:
//! one accepted case with its permissions, and one certificate per reject reason, each
//! asserting the specific reason a user would read in the log. Revocation (checked before the
//! policy, as sshd does) is exercised on the same certificates through text lists.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use msh_common::certs::{self, check_host_cert, check_user_cert, CertDecision, PrincipalsFile};
use msh_common::keys::load_public_key;
use msh_common::revocation::{append_revoked, Reason, RevocationList, Revokee};
use russh::keys::{Certificate, PublicKey};
use support::{key, now, pub_path, ssh_keygen_ok, Dir};

struct Fixture {
    dir: Dir,
    ca: PathBuf,
    ca_pub: PublicKey,
    other_ca: PathBuf,
    user: PathBuf,
    n: std::cell::Cell<u32>,
}

impl Fixture {
    fn new() -> Self {
        let dir = Dir::new("certs-policy");
        let gen = |name: &str| key(&dir, name, "ed25519");
        let ca = gen("ca");
        let other_ca = gen("other_ca");
        let user = gen("user");
        let ca_pub = load_public_key(&pub_path(&ca)).unwrap();
        Fixture {
            dir,
            ca,
            ca_pub,
            other_ca,
            user,
            n: std::cell::Cell::new(0),
        }
    }

    /// Signs a fresh copy of the user key with `ca` and `args`; returns the certificate.
    fn sign_with(&self, ca: &Path, args: &[&str]) -> (Certificate, PathBuf) {
        let n = self.n.get() + 1;
        self.n.set(n);
        let copy = self.dir.path().join(format!("c{n}.pub"));
        std::fs::copy(pub_path(&self.user), &copy).unwrap();
        let mut all = vec![
            "-q",
            "-s",
            ca.to_str().unwrap(),
            "-I",
            "id-of-alice",
            "-z",
            "17",
        ];
        all.extend_from_slice(args);
        all.push(copy.to_str().unwrap());
        ssh_keygen_ok(&all);
        let path = self.dir.path().join(format!("c{n}-cert.pub"));
        (certs::load(&path).unwrap(), path)
    }

    fn sign(&self, args: &[&str]) -> Certificate {
        self.sign_with(&self.ca, args).0
    }

    fn trusted(&self) -> Vec<PublicKey> {
        vec![self.ca_pub.clone()]
    }
}

const LOCAL: &str = "127.0.0.1";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn rejected(d: &CertDecision) -> String {
    match d {
        CertDecision::Reject { reason, info } => {
            assert_eq!(info.key_id, "id-of-alice");
            assert_eq!(info.serial, 17);
            assert!(info.ca_fingerprint.starts_with("SHA256:"));
            reason.clone()
        }
        CertDecision::Accept { .. } => panic!("expected a rejection, got {d:?}"),
    }
}

#[test]
fn a_good_user_certificate_is_accepted_with_its_permissions() {
    let f = Fixture::new();
    let cert = f.sign(&[
        "-n",
        "alice,ops",
        "-V",
        "-5m:+1h",
        "-O",
        "force-command=/usr/bin/uptime",
        "-O",
        "source-address=10.0.0.0/8,127.0.0.0/8",
    ]);
    let d = check_user_cert(&cert, "alice", &f.trusted(), None, ip(LOCAL), now());
    let CertDecision::Accept {
        info,
        principal,
        permissions,
    } = d
    else {
        panic!("rejected: {d:?}")
    };
    assert_eq!(principal, "alice");
    assert_eq!(info.key_id, "id-of-alice");
    assert_eq!(info.serial, 17);
    assert_eq!(
        info.ca_fingerprint,
        msh_common::keys::fingerprint(&f.ca_pub)
    );
    assert_eq!(
        permissions.force_command.as_deref(),
        Some("/usr/bin/uptime")
    );
    assert!(permissions.pty && permissions.agent_forwarding && permissions.user_rc);
    // An IPv4 client seen on a dual-stack socket still matches 127.0.0.0/8.
    let mapped = check_user_cert(
        &cert,
        "alice",
        &f.trusted(),
        None,
        ip("::ffff:127.0.0.1"),
        now(),
    );
    assert!(mapped.is_accepted(), "{mapped:?}");

    // ssh-keygen -O clear: no extensions, so no pty.
    let bare = f.sign(&["-n", "alice", "-O", "clear"]);
    let CertDecision::Accept { permissions, .. } =
        check_user_cert(&bare, "alice", &f.trusted(), None, ip(LOCAL), now())
    else {
        panic!()
    };
    assert!(
        !permissions.pty && !permissions.port_forwarding && permissions.force_command.is_none()
    );
}

#[test]
fn each_reject_reason_is_specific() {
    let f = Fixture::new();
    let t = f.trusted();
    let now = now();

    let expired = f.sign(&["-n", "alice", "-V", "20200101Z:20200102Z"]);
    assert_eq!(
        rejected(&check_user_cert(
            &expired,
            "alice",
            &t,
            None,
            ip(LOCAL),
            now
        )),
        "certificate expired at 2020-01-02T00:00:00Z"
    );

    let future = f.sign(&["-n", "alice", "-V", "20990101Z:20991231Z"]);
    assert_eq!(
        rejected(&check_user_cert(&future, "alice", &t, None, ip(LOCAL), now)),
        "certificate not yet valid (valid from 2099-01-01T00:00:00Z)"
    );

    let alice = f.sign(&["-n", "alice"]);
    assert_eq!(
        rejected(&check_user_cert(&alice, "bob", &t, None, ip(LOCAL), now)),
        "principal \"bob\" not in certificate principals [alice]"
    );

    let host = f.sign(&["-h", "-n", "alice"]);
    assert_eq!(
        rejected(&check_user_cert(&host, "alice", &t, None, ip(LOCAL), now)),
        "host certificate offered as user certificate"
    );
    assert_eq!(
        rejected(&check_host_cert(&alice, "alice", &t, now)),
        "user certificate offered as host certificate"
    );

    let critical = f.sign(&["-n", "alice", "-O", "critical:foo=bar"]);
    assert_eq!(
        rejected(&check_user_cert(
            &critical,
            "alice",
            &t,
            None,
            ip(LOCAL),
            now
        )),
        "unknown critical option \"foo\""
    );

    let src = f.sign(&["-n", "alice", "-O", "source-address=10.0.0.0/8"]);
    assert_eq!(
        rejected(&check_user_cert(&src, "alice", &t, None, ip(LOCAL), now)),
        "source-address 10.0.0.0/8 does not admit 127.0.0.1"
    );
    assert!(check_user_cert(&src, "alice", &t, None, ip("10.1.2.3"), now).is_accepted());

    let (foreign, _) = f.sign_with(&f.other_ca, &["-n", "alice"]);
    let reason = rejected(&check_user_cert(
        &foreign,
        "alice",
        &t,
        None,
        ip(LOCAL),
        now,
    ));
    let other_fp = msh_common::keys::fingerprint(&load_public_key(&pub_path(&f.other_ca)).unwrap());
    assert_eq!(reason, format!("CA {other_fp} not trusted"));
    assert_eq!(
        rejected(&check_user_cert(&alice, "alice", &[], None, ip(LOCAL), now)),
        format!(
            "CA {} not trusted",
            msh_common::keys::fingerprint(&f.ca_pub)
        )
    );

    // ssh-keygen without -n: valid for any principal, which sshd refuses for users.
    let any = f.sign(&[]);
    assert!(
        rejected(&check_user_cert(&any, "alice", &t, None, ip(LOCAL), now))
            .contains("no principals")
    );
}

#[test]
fn a_tampered_certificate_fails_the_signature_check() {
    let f = Fixture::new();
    let (_, path) = f.sign_with(&f.ca, &["-n", "alice"]);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut fields = text.split_whitespace();
    let ty = fields.next().unwrap();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut blob = b64.decode(fields.next().unwrap()).unwrap();
    // Rename the principal "alice" to "alicf": still well-formed, no longer what was signed.
    let at = blob
        .windows(9)
        .position(|w| w == b"\0\0\0\x05alice")
        .unwrap();
    blob[at + 8] = b'f';
    let forged = Certificate::from_openssh(&format!("{ty} {}", b64.encode(&blob))).unwrap();
    assert_eq!(forged.valid_principals(), ["alicf"]);
    let reason = rejected(&check_user_cert(
        &forged,
        "alicf",
        &f.trusted(),
        None,
        ip(LOCAL),
        now(),
    ));
    assert!(
        reason.starts_with("signature by CA SHA256:") && reason.ends_with("does not verify"),
        "{reason}"
    );
}

#[test]
fn authorized_principals_replace_the_user_name() {
    let f = Fixture::new();
    let cert = f.sign(&["-n", "ops,dba"]);
    let pf = PrincipalsFile::parse(
        Path::new("/etc/msh/principals/root"),
        "# who may be root\n\n  dba  \ncommand=\"/bin/backup\",no-pty backup\nbad\"option x\n",
    );
    assert_eq!(pf.names(), ["dba", "backup"]);
    assert_eq!(pf.warnings.len(), 1, "{:?}", pf.warnings);
    assert!(
        pf.warnings[0].starts_with("/etc/msh/principals/root:5: "),
        "{:?}",
        pf.warnings
    );
    assert_eq!(
        pf.entries[1].options.command.as_deref(),
        Some("/bin/backup")
    );
    assert_eq!(pf.entries[1].line, 4);

    let names = pf.names();
    let d = check_user_cert(&cert, "root", &f.trusted(), Some(&names), ip(LOCAL), now());
    let CertDecision::Accept { principal, .. } = d else {
        panic!("{d:?}")
    };
    assert_eq!(principal, "dba");
    assert_eq!(pf.find(cert.valid_principals()).unwrap().line, 3);

    let only_backup = vec!["backup".to_string()];
    assert_eq!(
        rejected(&check_user_cert(&cert, "root", &f.trusted(), Some(&only_backup), ip(LOCAL), now())),
        "none of the certificate principals [ops, dba] is authorized for \"root\" (authorized: [backup])"
    );
}

#[test]
fn host_certificates_for_the_client() {
    let f = Fixture::new();
    let t = f.trusted();
    let cert = f.sign(&["-h", "-n", "web1.example.com,web1"]);
    let d = check_host_cert(&cert, "WEB1.example.com", &t, now());
    assert!(d.is_accepted(), "{d:?}");
    assert_eq!(
        rejected(&check_host_cert(&cert, "db1", &t, now())),
        "host name \"db1\" not in certificate principals [web1.example.com, web1]"
    );
    let expired = f.sign(&["-h", "-n", "db1", "-V", "20200101Z:20200102Z"]);
    assert!(rejected(&check_host_cert(&expired, "db1", &t, now()))
        .starts_with("certificate expired at"));
    let (foreign, _) = f.sign_with(&f.other_ca, &["-h", "-n", "db1"]);
    assert!(rejected(&check_host_cert(&foreign, "db1", &t, now())).ends_with("not trusted"));
}

#[test]
fn revoked_key_serial_and_ca_in_text_lists_and_krls() {
    let f = Fixture::new();
    let (cert, cert_path) = f.sign_with(&f.ca, &["-n", "alice"]);
    let list_path = f.dir.path().join("revoked_keys");

    // Nothing listed yet: an empty (missing-then-created) list revokes nothing.
    assert_eq!(append_revoked(&list_path, &[]).unwrap(), 0);
    let user_key = load_public_key(&pub_path(&f.user)).unwrap();
    let other = load_public_key(&pub_path(&f.other_ca)).unwrap();
    assert_eq!(
        append_revoked(&list_path, &[Revokee::Key(other.clone())]).unwrap(),
        1
    );
    let list = RevocationList::load(&list_path).unwrap();
    assert!(list.is_cert_revoked(&cert).is_none());
    assert!(list.is_revoked(&other).is_some());

    // Revoking the CA revokes the certificate.
    assert_eq!(
        append_revoked(&list_path, &[Revokee::Key(f.ca_pub.clone())]).unwrap(),
        1
    );
    let list = RevocationList::load(&list_path).unwrap();
    let r = list.is_cert_revoked(&cert).unwrap();
    assert!(matches!(r, Reason::CaKey { .. }), "{r:?}");
    assert!(
        r.to_string()
            .contains(&format!("{}:2", list_path.display())),
        "{r}"
    );

    // Listing a certificate revokes its key, for that and every other certificate of it.
    let list2 = f.dir.path().join("revoked2");
    assert_eq!(
        append_revoked(&list2, &[Revokee::Cert(Box::new(cert.clone()))]).unwrap(),
        1
    );
    assert_eq!(
        append_revoked(&list2, &[Revokee::Key(user_key.clone())]).unwrap(),
        0,
        "already listed"
    );
    let l2 = RevocationList::load(&list2).unwrap();
    assert!(l2.is_revoked(&user_key).is_some());
    let another = f.sign(&["-n", "alice", "-I", "x"]);
    let r = l2.is_cert_revoked(&another).unwrap();
    assert!(matches!(r, Reason::Key { .. }), "{r:?}");
    assert!(r.to_string().contains("certificate \"id-of-alice\""), "{r}");
    assert!(std::fs::read_to_string(&list2)
        .unwrap()
        .starts_with("ssh-ed25519-cert-v01@openssh.com "));

    // A KRL revoking serial 17 of this CA.
    let spec = f.dir.path().join("spec");
    std::fs::write(&spec, "serial: 17\n").unwrap();
    let krl = f.dir.path().join("krl");
    ssh_keygen_ok(&[
        "-k",
        "-s",
        pub_path(&f.ca).to_str().unwrap(),
        "-f",
        krl.to_str().unwrap(),
        spec.to_str().unwrap(),
    ]);
    let r = RevocationList::load(&krl)
        .unwrap()
        .is_cert_revoked(&cert)
        .unwrap();
    assert_eq!(
        r.to_string(),
        format!(
            "certificate serial 17 of CA {} is revoked (KRL {})",
            msh_common::keys::fingerprint(&f.ca_pub),
            krl.display()
        )
    );
    let _ = cert_path;
}

#[test]
fn trusted_ca_key_files_hold_several_keys_and_name_bad_lines() {
    let f = Fixture::new();
    let other = load_public_key(&pub_path(&f.other_ca)).unwrap();
    let path = f.dir.path().join("trusted_user_ca_keys");
    std::fs::write(
        &path,
        format!(
            "# CAs\n\n{}\n  {}\n",
            std::fs::read_to_string(pub_path(&f.ca)).unwrap().trim(),
            std::fs::read_to_string(pub_path(&f.other_ca))
                .unwrap()
                .trim()
        ),
    )
    .unwrap();
    let cas = certs::load_ca_keys(&path).unwrap();
    assert_eq!(cas.len(), 2);
    assert_eq!(cas[1].key_data(), other.key_data());
    let (foreign, cert_path) = f.sign_with(&f.other_ca, &["-n", "alice"]);
    assert!(check_user_cert(&foreign, "alice", &cas, None, ip(LOCAL), now()).is_accepted());

    std::fs::write(
        &path,
        format!("{}\n", std::fs::read_to_string(&cert_path).unwrap().trim()),
    )
    .unwrap();
    let err = certs::load_ca_keys(&path).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "{}:1: a certificate is not a CA key",
            path.display()
        )),
        "{err}"
    );
    std::fs::write(&path, "# x\nssh-ed25519 AAAA\n").unwrap();
    let err = certs::load_ca_keys(&path).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}:2: ", path.display())), "{err}");
}
