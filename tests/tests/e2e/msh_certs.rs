//! msh and certificates, against real servers: host certificates (signed by `ssh-keygen -s`
//! or `msh-keygen sign`) served by OpenSSH sshd (`HostCertificate`) and by mshd
//! (`host_certificates`), accepted through `@cert-authority` lines or `--pin CA`, refused with
//! the failing check named; a host known only with a key of another type; user certificates
//! (`KEY-cert.pub`, `CertificateFile`) logging in to mshd (`trusted_user_ca_keys`) and sshd
//! (`TrustedUserCAKeys`), expiry warnings and renewal.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use msh_tests::mshd::{fingerprint_of, user_ca_builder, Mshd};
use msh_tests::sshd::{Sshd, SshdOptions};
use msh_tests::*;

use crate::msh_interactive::msh_line_to_mshd;
use crate::msh_to_sshd::msh_cmd;

const T: Duration = Duration::from_secs(30);
const LOG: Duration = Duration::from_secs(10);

/// msh options that record an unknown host key.
const ACCEPT_NEW: [&str; 2] = ["-o", "StrictHostKeyChecking=accept-new"];

/// `ssh-keygen -s CA -I ID -n PRINCIPALS [-h] -V VALIDITY KEY.pub` → `KEY-cert.pub`.
fn ssh_sign(ca: &Path, key_pub: &Path, principals: &str, host: bool, validity: &str) -> PathBuf {
    let extra: &[&str] = if host {
        &["-h", "-V", validity]
    } else {
        &["-V", validity]
    };
    ssh_keygen_sign(ca, key_pub, "msh-certs-test", principals, extra);
    msh_common::certs::cert_path(key_pub)
}

/// The `TYPE BASE64` of a public key file, without its comment.
fn public_line(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// msh to 127.0.0.1:`port` as `user` with `key`, known_hosts `kh`, strict checking, no
/// prompts; `extra` go before the destination.
fn msh(dir: &TestDir, port: u16, user: &str, kh: &Path, key: &Path, extra: &[&str]) -> Command {
    let mut c = msh_cmd(
        dir,
        port,
        user,
        kh,
        &["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"],
    );
    c.arg("-i")
        .arg(key)
        .args(extra)
        .args(["127.0.0.1", "echo ok"]);
    c
}

/// msh (see `msh`) run against OpenSSH's `sshd`.
fn sshd_login(dir: &TestDir, sshd: &Sshd, kh: &Path, key: &Path, extra: &[&str]) -> Output {
    run(msh(dir, sshd.port, &sshd.user, kh, key, extra), b"", T)
}

fn assert_ok(out: &Output, what: &str) {
    assert_eq!(out.code(), Some(0), "{what}: stderr: {}", out.stderr);
    assert_eq!(out.stdout_str(), "ok\n", "{what}: stderr: {}", out.stderr);
}

fn assert_refused(out: &Output, needles: &[&str], what: &str) {
    assert_eq!(out.code(), Some(255), "{what}: stderr: {}", out.stderr);
    assert_eq!(out.stdout_str(), "", "{what}: nothing ran");
    for n in needles {
        assert!(
            out.stderr.contains(n),
            "{what}: stderr lacks {n:?}: {}",
            out.stderr
        );
    }
}

/// mshd serving a host certificate for a fresh host key, signed by a fresh CA (`host_ca`)
/// with ssh-keygen for `principals`, `validity`, as a host (or, with `host: false`, user)
/// certificate. The fixture's known_hosts is emptied; the test writes what it needs.
struct HostCert {
    d: Mshd,
    ca_pub: PathBuf,
    host_pub: PathBuf,
}

impl HostCert {
    fn start(name: &str, principals: &str, validity: &str, host: bool) -> HostCert {
        let dir = TestDir::new(name);
        let ca = ssh_keygen_ed25519(&dir, "host_ca");
        let hk = ssh_keygen_ed25519(&dir, "cert_host_key");
        let cert = ssh_sign(
            &ca,
            &dir.join("cert_host_key.pub"),
            principals,
            host,
            validity,
        );
        HostCert::serve(dir, name, &hk, &cert)
    }

    fn serve(dir: TestDir, name: &str, hk: &Path, cert: &Path) -> HostCert {
        let d = Mshd::builder(name)
            .dir(dir)
            .host_key_with_certificate(hk, cert)
            .start();
        d.wait_for_log("host certificate", LOG);
        std::fs::write(&d.known_hosts, "").unwrap();
        let ca_pub = d.dir.join("host_ca.pub");
        let host_pub = d.dir.join("cert_host_key.pub");
        HostCert {
            d,
            ca_pub,
            host_pub,
        }
    }

    fn write_known_hosts(&self, text: &str) {
        std::fs::write(&self.d.known_hosts, text).unwrap();
    }

    fn ca_line(&self, hosts: &str) -> String {
        format!("@cert-authority {hosts} {}\n", public_line(&self.ca_pub))
    }

    fn msh(&self, extra: &[&str]) -> Output {
        mshd_login(&self.d, extra)
    }

    fn known_hosts_text(&self) -> String {
        std::fs::read_to_string(&self.d.known_hosts).unwrap()
    }
}

/// OpenSSH's sshd proving itself with a fresh host key `cert_host_key` and its certificate
/// for 127.0.0.1 (valid -1h:+1d) signed by a fresh CA `host_ca`: a host certificate, or
/// with `host: false` a user certificate. A fresh client key `id_user` is authorized.
fn sshd_with_host_cert(dir: &TestDir, host: bool) -> (Sshd, PathBuf) {
    let ca = ssh_keygen_ed25519(dir, "host_ca");
    let hk = ssh_keygen_ed25519(dir, "cert_host_key");
    let cert = ssh_sign(
        &ca,
        &dir.join("cert_host_key.pub"),
        "127.0.0.1",
        host,
        "-1h:+1d",
    );
    let sshd = Sshd::start_with(
        dir,
        SshdOptions {
            extra_config: vec![
                format!("HostKey {}", hk.display()),
                format!("HostCertificate {}", cert.display()),
            ],
            ..SshdOptions::default()
        },
    );
    let id = ssh_keygen_ed25519(dir, "id_user");
    sshd.authorize(&id);
    (sshd, id)
}

/// `DIR/known_hosts` trusting `DIR/host_ca.pub` for every host (`@cert-authority *`).
fn any_host_ca_known_hosts(dir: &TestDir) -> PathBuf {
    let line = public_line(&dir.join("host_ca.pub"));
    dir.write("known_hosts", format!("@cert-authority * {line}\n"), 0o644)
}

#[test]
fn sshd_host_certificate_accepted_via_cert_authority_and_not_recorded() {
    let dir = TestDir::new("mc-sshd-hostcert");
    let (sshd, id) = sshd_with_host_cert(&dir, true);
    // Only the CA, for a pattern matching the host: the plain host keys are unknown.
    let ca_line = format!(
        "@cert-authority [127.0.0.1]:{} {}\n",
        sshd.port,
        public_line(&dir.join("host_ca.pub"))
    );
    let kh = dir.write("known_hosts", &ca_line, 0o644);
    let out = sshd_login(&dir, &sshd, &kh, &id, &["-v"]);
    assert_ok(&out, "sshd host certificate via @cert-authority");
    assert!(
        out.stderr.contains("accepted via @cert-authority"),
        "-v says how the host was trusted: {}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&kh).unwrap(),
        ca_line,
        "a host accepted through its CA is never written to known_hosts"
    );
    // accept-new does not record it either.
    let out = sshd_login(&dir, &sshd, &kh, &id, &ACCEPT_NEW);
    assert_ok(&out, "accept-new with a CA-signed host");
    assert_eq!(std::fs::read_to_string(&kh).unwrap(), ca_line);
}

#[test]
fn mshd_host_certificate_from_ssh_keygen_accepted() {
    let h = HostCert::start("mc-mshd-hostcert", "127.0.0.1,other", "-1h:+1d", true);
    h.write_known_hosts(&h.ca_line(&format!("[127.0.0.1]:{}", h.d.port)));
    let before = h.known_hosts_text();
    assert_ok(&h.msh(&[]), "mshd ssh-keygen host certificate");
    assert_eq!(h.known_hosts_text(), before, "known_hosts untouched");
}

#[test]
fn mshd_host_certificate_from_msh_keygen_accepted_with_wildcard_ca_line() {
    let dir = TestDir::new("mc-mshd-mshkeygen");
    let ca = ssh_keygen_ed25519(&dir, "host_ca");
    let hk = ssh_keygen_ed25519(&dir, "cert_host_key");
    let mut c = cmd(
        bin("msh-keygen"),
        [
            "sign",
            "--ca",
            ca.to_str().unwrap(),
            "--id",
            "mshd-host",
            "--principals",
            "127.0.0.1",
            "--host",
            "--validity",
            "-1h:+1d",
        ],
    );
    c.arg(dir.join("cert_host_key.pub"));
    let out = run(c, b"", T);
    assert_eq!(out.code(), Some(0), "msh-keygen sign: {}", out.stderr);
    let cert = dir.join("cert_host_key-cert.pub");
    let h = HostCert::serve(dir, "mc-mshd-mshkeygen", &hk, &cert);
    // A pattern, as OpenSSH matches `[host]:port` names against it.
    h.write_known_hosts(&h.ca_line("[127.0.0.*]:*"));
    assert_ok(&h.msh(&[]), "mshd msh-keygen host certificate");
}

#[test]
fn host_certificate_for_another_name_is_refused_naming_the_principals() {
    let h = HostCert::start("mc-principal", "build.internal", "-1h:+1d", true);
    h.write_known_hosts(&h.ca_line("*"));
    let out = h.msh(&[]);
    assert_refused(
        &out,
        &[
            "host certificate verification failed for [127.0.0.1]:",
            "host name \"127.0.0.1\" not in certificate principals [build.internal]",
        ],
        "wrong principal",
    );
    // The same certificate is right under the name it was issued for.
    let out = h.msh(&["-o", "HostKeyAlias=build.internal"]);
    assert_ok(&out, "HostKeyAlias naming the principal");
}

#[test]
fn expired_host_certificate_is_refused() {
    let h = HostCert::start("mc-expired", "127.0.0.1", "20200101:20200102", true);
    h.write_known_hosts(&h.ca_line("[127.0.0.1]:*"));
    let out = h.msh(&[]);
    assert_refused(
        &out,
        &["certificate expired at 2020-01-02T00:00:00Z"],
        "expired host certificate",
    );
}

/// mshd will not serve a user certificate as its host certificate, but OpenSSH's sshd does:
/// msh must refuse it.
#[test]
fn user_certificate_served_as_host_certificate_by_sshd_is_refused() {
    let dir = TestDir::new("mc-usercert-host");
    let (sshd, id) = sshd_with_host_cert(&dir, false);
    let kh = any_host_ca_known_hosts(&dir);
    let out = sshd_login(&dir, &sshd, &kh, &id, &[]);
    assert_refused(
        &out,
        &["user certificate offered as host certificate"],
        "user cert as host cert",
    );
}

#[test]
fn revoked_ca_or_host_key_is_refused() {
    let h = HostCert::start("mc-revoked", "127.0.0.1", "-1h:+1d", true);
    let revoked_ca = format!("@revoked * {}\n", public_line(&h.ca_pub));
    h.write_known_hosts(&(h.ca_line("*") + &revoked_ca));
    let out = h.msh(&[]);
    let kh = h.d.known_hosts.display().to_string();
    assert_refused(
        &out,
        &[&format!(
            "the CA key {} is marked @revoked in {kh}:2",
            fingerprint_of(&h.ca_pub)
        )],
        "revoked CA",
    );
    let revoked_key = format!("@revoked * {}\n", public_line(&h.host_pub));
    h.write_known_hosts(&(h.ca_line("*") + &revoked_key));
    let out = h.msh(&[]);
    assert_refused(
        &out,
        &[&format!(
            "the certified key {} is marked @revoked in {kh}:2",
            fingerprint_of(&h.host_pub)
        )],
        "revoked host key",
    );
}

#[test]
fn cert_authority_for_another_host_pattern_does_not_vouch() {
    let h = HostCert::start("mc-otherpattern", "127.0.0.1", "-1h:+1d", true);
    h.write_known_hosts(&h.ca_line("*.example.com"));
    let out = h.msh(&[]);
    // No CA applies, so msh asks for no certificate and the plain key is unknown.
    assert_refused(
        &out,
        &[&format!(
            "no known_hosts entry for [127.0.0.1]:{} (ED25519 key {})",
            h.d.port,
            fingerprint_of(&h.host_pub)
        )],
        "CA line for another host",
    );
    // A CA line for the right host, but from another CA: the untrusted CA is named.
    let other = ssh_keygen_ed25519(&h.d.dir, "other_ca");
    let other_line = format!(
        "@cert-authority [127.0.0.1]:{} {}\n",
        h.d.port,
        public_line(&msh_common::keys::public_key_path(&other))
    );
    h.write_known_hosts(&other_line);
    let out = h.msh(&[]);
    assert_refused(
        &out,
        &[&format!(
            "CA {} is not trusted for 127.0.0.1",
            fingerprint_of(&h.ca_pub)
        )],
        "untrusted CA",
    );
    // A plain entry for the certified key still works, as in OpenSSH.
    h.write_known_hosts(&format!(
        "{other_line}[127.0.0.1]:{} {}\n",
        h.d.port,
        public_line(&h.host_pub)
    ));
    assert_ok(
        &h.msh(&[]),
        "plain known_hosts entry for the certificate's key",
    );
}

#[test]
fn pin_on_the_ca_fingerprint_accepts_without_known_hosts() {
    let h = HostCert::start("mc-pin", "127.0.0.1", "-1h:+1d", true);
    let ca_fp = fingerprint_of(&h.ca_pub);
    let out = h.msh(&["--pin", &ca_fp]);
    assert_ok(&out, "--pin CA");
    assert_eq!(h.known_hosts_text(), "", "--pin writes nothing");
    // The host key's own fingerprint works too.
    assert_ok(
        &h.msh(&["--pin", &fingerprint_of(&h.host_pub)]),
        "--pin host key",
    );
    // Any other pin is refused, naming what the server presented.
    let wrong = h.d.host_fingerprint.clone();
    let out = h.msh(&["--pin", &wrong]);
    assert_refused(
        &out,
        &[
            "neither matches any of the --pin fingerprints",
            &ca_fp,
            &fingerprint_of(&h.host_pub),
        ],
        "wrong pin",
    );
}

#[test]
fn expired_host_certificate_is_refused_even_with_pinned_ca() {
    let h = HostCert::start("mc-pin-expired", "127.0.0.1", "20200101:20200102", true);
    let out = h.msh(&["--pin", &fingerprint_of(&h.ca_pub)]);
    assert_refused(&out, &["certificate expired at"], "pinned CA, expired cert");
}

/// Makes the fixture's known_hosts know mshd only by a fresh ECDSA key `old_ecdsa` (mshd
/// proves itself with ed25519); returns the file's text.
fn known_by_old_ecdsa(d: &Mshd) -> String {
    let mut c = cmd(
        tool("ssh-keygen"),
        ["-q", "-t", "ecdsa", "-b", "256", "-N", "", "-f"],
    );
    c.arg(d.dir.join("old_ecdsa"));
    assert!(run(c, b"", T).status.success());
    let text = format!(
        "[127.0.0.1]:{} {}\n",
        d.port,
        public_line(&d.dir.join("old_ecdsa.pub"))
    );
    std::fs::write(&d.known_hosts, &text).unwrap();
    text
}

/// A host known only with a key of another type, now presenting a new type, is a changed
/// identity: accept-new does not record it; the message names the known line and the fix.
#[test]
fn host_known_with_another_key_type_is_not_silently_recorded() {
    // sshd with only an ECDSA host key; known_hosts knows the host by an ed25519 key.
    let dir = TestDir::new("mc-othertype-sshd");
    let sshd = Sshd::start_with(
        &dir,
        SshdOptions {
            host_key_types: vec!["ecdsa".into()],
            ..SshdOptions::default()
        },
    );
    let id = ssh_keygen_ed25519(&dir, "id_user");
    sshd.authorize(&id);
    let old = ssh_keygen_ed25519(&dir, "old_host_key");
    let old_pub = msh_common::keys::public_key_path(&old);
    let text = format!(
        "# known\n[127.0.0.1]:{} {}\n",
        sshd.port,
        public_line(&old_pub)
    );
    let kh = dir.write("known_hosts", &text, 0o644);
    let ecdsa_fp = fingerprint_of(&sshd.host_key("ecdsa").public_path);
    let out = sshd_login(&dir, &sshd, &kh, &id, &ACCEPT_NEW);
    assert_refused(
        &out,
        &[
            "REMOTE HOST IDENTIFICATION HAS CHANGED",
            &format!("ECDSA key {ecdsa_fp}"),
            &format!("ED25519 key ({})", fingerprint_of(&old_pub)),
            &format!("{}:2", kh.display()),
            "msh-keygen known-hosts remove",
        ],
        "ecdsa-only sshd known by ed25519",
    );
    assert_eq!(
        std::fs::read_to_string(&kh).unwrap(),
        text,
        "nothing recorded"
    );

    // mshd (ed25519 host key) known by an ECDSA key.
    let d = Mshd::start("mc-othertype-mshd");
    let text = known_by_old_ecdsa(&d);
    let out = mshd_login(&d, &ACCEPT_NEW);
    assert_refused(
        &out,
        &[
            "REMOTE HOST IDENTIFICATION HAS CHANGED",
            &format!("ED25519 key {}", d.host_fingerprint),
            &format!("{}:1", d.known_hosts.display()),
        ],
        "ed25519 mshd known by ecdsa",
    );
    assert_eq!(std::fs::read_to_string(&d.known_hosts).unwrap(), text);
}

/// mshd trusting a user CA, with an empty authorized_keys: only certificates get in.
fn user_ca_mshd(name: &str) -> (Mshd, PathBuf) {
    let (b, ca) = user_ca_builder(name);
    (b.start(), ca)
}

/// Signs `d`'s client key with the user CA `ca` for `d`'s user, valid for `validity`
/// (`-V`); the certificate is `id_ed25519-cert.pub` beside the key.
fn sign_client_key(d: &Mshd, ca: &Path, validity: &str) -> PathBuf {
    ssh_sign(ca, &d.dir.join("id_ed25519.pub"), &d.user, false, validity)
}

fn mshd_login(d: &Mshd, extra: &[&str]) -> Output {
    run(
        msh(
            &d.dir,
            d.port,
            &d.user,
            &d.known_hosts,
            &d.client_key,
            extra,
        ),
        b"",
        T,
    )
}

#[test]
fn user_certificate_beside_the_key_logs_in_to_mshd() {
    let (d, ca) = user_ca_mshd("mc-user-mshd");
    // Without a certificate the bare key is not authorized.
    let out = mshd_login(&d, &[]);
    assert_refused(&out, &["permission denied (publickey)"], "no cert");
    sign_client_key(&d, &ca, "-5m:+2d");
    let out = mshd_login(&d, &[]);
    assert_ok(&out, "KEY-cert.pub to mshd");
    assert!(
        !out.stderr.contains("expires"),
        "no warning for a cert valid two more days: {}",
        out.stderr
    );
    d.wait_for_log("msh-certs-test", LOG);
}

#[test]
fn certificate_file_option_logs_in_to_mshd() {
    let (d, ca) = user_ca_mshd("mc-certfile");
    let cert = sign_client_key(&d, &ca, "-5m:+1d");
    let moved = d.dir.join("elsewhere-cert.pub");
    std::fs::rename(&cert, &moved).unwrap();
    let opt = format!("CertificateFile={}", moved.display());
    assert_ok(&mshd_login(&d, &["-o", &opt]), "CertificateFile");
    // A certificate for another key is not offered with this one.
    let other = ssh_keygen_ed25519(&d.dir, "other_key");
    let other_cert = ssh_sign(
        &ca,
        &msh_common::keys::public_key_path(&other),
        &d.user,
        false,
        "-5m:+1d",
    );
    let opt = format!("CertificateFile={}", other_cert.display());
    let out = mshd_login(&d, &["-o", &opt]);
    assert_refused(
        &out,
        &["permission denied (publickey)"],
        "cert of another key",
    );
}

#[test]
fn certificate_expiring_within_a_day_warns() {
    let (d, ca) = user_ca_mshd("mc-expiry-warn");
    let cert = sign_client_key(&d, &ca, "-5m:+2h");
    let out = mshd_login(&d, &[]);
    assert_ok(&out, "cert valid 2 more hours");
    let expected = format!("warning: certificate {} expires at", cert.display());
    out.assert_stderr_contains(&expected);
    assert!(
        out.stderr.contains("(in 1h 59m)") || out.stderr.contains("(in 2h)"),
        "says how long is left: {}",
        out.stderr
    );
    // -q silences the warning, not the login.
    let out = mshd_login(&d, &["-q"]);
    assert_ok(&out, "-q");
    assert!(!out.stderr.contains("expires"), "{}", out.stderr);
}

#[test]
fn expired_certificate_is_skipped_and_a_renewed_one_is_picked_up() {
    let (d, ca) = user_ca_mshd("mc-renewal");
    let key_pub = d.dir.join("id_ed25519.pub");
    let cert = ssh_sign(&ca, &key_pub, &d.user, false, "20200101:20200102");
    let out = mshd_login(&d, &[]);
    assert_refused(
        &out,
        &[
            &format!(
                "certificate {} expired at 2020-01-02T00:00:00Z (skipped",
                cert.display()
            ),
            "permission denied (publickey)",
        ],
        "expired user cert",
    );
    // Renewed in place: the next run reads it.
    std::fs::remove_file(&cert).unwrap();
    ssh_sign(&ca, &key_pub, &d.user, false, "-5m:+1d");
    assert_ok(&mshd_login(&d, &[]), "renewed cert");
}

#[test]
fn user_certificate_logs_in_to_openssh_sshd() {
    let dir = TestDir::new("mc-user-sshd");
    let ca = ssh_keygen_ed25519(&dir, "user_ca");
    let ca_pub = msh_common::keys::public_key_path(&ca);
    let sshd = Sshd::start_with(
        &dir,
        SshdOptions {
            extra_config: vec![format!("TrustedUserCAKeys {}", ca_pub.display())],
            ..SshdOptions::default()
        },
    );
    let id = ssh_keygen_ed25519(&dir, "id_user");
    // Not in authorized_keys: only the certificate can get in.
    let kh = sshd.write_known_hosts(&dir.join("known_hosts"));
    let out = sshd_login(&dir, &sshd, &kh, &id, &[]);
    assert_refused(&out, &["permission denied (publickey)"], "no cert to sshd");
    ssh_sign(
        &ca,
        &msh_common::keys::public_key_path(&id),
        &sshd.user,
        false,
        "-5m:+1d",
    );
    let out = sshd_login(&dir, &sshd, &kh, &id, &[]);
    assert_ok(&out, "KEY-cert.pub to sshd");
    let log = sshd.log();
    assert!(
        log.contains("Accepted publickey") && log.contains("ED25519-CERT"),
        "sshd accepted the certificate: {log}"
    );
}

/// Starts `ssh-agent -D -a SOCK` in `dir`; returns the process and the socket.
fn ssh_add(sock: &Path, args: &[&Path]) -> Output {
    let mut c = Command::new(tool("ssh-add"));
    c.args(args).env("SSH_AUTH_SOCK", sock);
    let out = run(c, b"", T);
    assert!(out.status.success(), "ssh-add {args:?}: {}", out.stderr);
    out
}

#[test]
fn user_certificate_held_by_ssh_agent() {
    let (d, ca) = user_ca_mshd("mc-agent-cert");
    let cert = sign_client_key(&d, &ca, "-5m:+1d");
    let (_agent, sock) = start_ssh_agent(&d.dir.path);
    // ssh-add loads KEY-cert.pub with KEY: the agent holds the certificate itself.
    let out = ssh_add(&sock, &[&d.client_key]);
    out.assert_stderr_contains("Certificate added");
    // No -i and no ~/.ssh keys under HOME: only the agent can sign.
    let agent_msh = |extra: &[&str]| {
        let mut c = msh_cmd(
            &d.dir,
            d.port,
            &d.user,
            &d.known_hosts,
            &[
                "-v",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
            ],
        );
        c.args(extra)
            .args(["127.0.0.1", "echo ok"])
            .env("SSH_AUTH_SOCK", &sock);
        run(c, b"", T)
    };
    let out = agent_msh(&[]);
    assert_ok(&out, "agent-held certificate");
    out.assert_stderr_contains("authenticated with agent certificate");

    // The agent holds only the key (its certificate moved away): the bare key is refused.
    let moved = d.dir.join("elsewhere-cert.pub");
    std::fs::rename(&cert, &moved).unwrap();
    let mut del = Command::new(tool("ssh-add"));
    del.arg("-D").env("SSH_AUTH_SOCK", &sock);
    assert!(run(del, b"", T).status.success());
    let out = ssh_add(&sock, &[&d.client_key]);
    assert!(!out.stderr.contains("Certificate added"), "{}", out.stderr);
    // Without the certificate the agent's bare key is refused.
    let out = agent_msh(&[]);
    assert_refused(&out, &["permission denied (publickey)"], "agent key alone");
    // The certificate given as a file while the agent holds only the key: the agent signs
    // with the key, the certificate file is what the server sees.
    let cf = format!("CertificateFile={}", moved.display());
    let out = agent_msh(&["-o", &cf]);
    assert_ok(&out, "CertificateFile with the key in ssh-agent");
    out.assert_stderr_contains(&format!(
        "authenticated with certificate {} (key in ssh-agent)",
        moved.display()
    ));
}

/// An ECDSA host certificate is negotiated and checked as such (sshd offers only ECDSA).
#[test]
fn ecdsa_host_certificate_from_sshd() {
    let dir = TestDir::new("mc-ecdsa-host");
    let host_ca = ssh_keygen_ed25519(&dir, "host_ca");
    let mut c = cmd(
        tool("ssh-keygen"),
        ["-q", "-t", "ecdsa", "-b", "256", "-N", "", "-C", "", "-f"],
    );
    c.arg(dir.join("ecdsa_host"));
    assert!(run(c, b"", T).status.success());
    let host_cert = ssh_sign(
        &host_ca,
        &dir.join("ecdsa_host.pub"),
        "127.0.0.1",
        true,
        "-1h:+2d",
    );
    let sshd = Sshd::start_with(
        &dir,
        SshdOptions {
            extra_config: vec![
                format!("HostKey {}", dir.join("ecdsa_host").display()),
                format!("HostCertificate {}", host_cert.display()),
                // Only the ECDSA key (and its certificate) may prove the host.
                "HostKeyAlgorithms ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp256"
                    .to_string(),
            ],
            ..SshdOptions::default()
        },
    );
    let id = ssh_keygen_ed25519(&dir, "id_user");
    sshd.authorize(&id);
    let kh = any_host_ca_known_hosts(&dir);
    let out = sshd_login(&dir, &sshd, &kh, &id, &["-v"]);
    assert_ok(&out, "ECDSA host cert");
    out.assert_stderr_contains("accepted via @cert-authority");
    let log = sshd.log();
    assert!(
        log.contains("kex: host key algorithm: ecdsa-sha2-nistp256-cert-v01@openssh.com"),
        "sshd proved itself with its ECDSA certificate: {log}"
    );
}

/// An RSA user certificate logs in with rsa-sha2-512 (`rsa-sha2-512-cert-v01`): to sshd,
/// which refuses SHA-1 `ssh-rsa-cert-v01` by default, and to mshd.
#[test]
fn rsa_user_certificate_signs_with_sha2_for_sshd_and_mshd() {
    let dir = TestDir::new("mc-rsa-user");
    let user_ca = ssh_keygen_ed25519(&dir, "user_ca");
    let sshd = Sshd::start_with(
        &dir,
        SshdOptions {
            extra_config: vec![format!(
                "TrustedUserCAKeys {}",
                msh_common::keys::public_key_path(&user_ca).display()
            )],
            ..SshdOptions::default()
        },
    );
    let mut c = cmd(
        tool("ssh-keygen"),
        ["-q", "-t", "rsa", "-b", "2048", "-N", "", "-C", "", "-f"],
    );
    c.arg(dir.join("id_rsa"));
    assert!(run(c, b"", T).status.success());
    let kh = sshd.write_known_hosts(&dir.join("known_hosts"));
    // Not in authorized_keys: without the certificate the key is refused.
    let out = sshd_login(&dir, &sshd, &kh, &dir.join("id_rsa"), &[]);
    assert_refused(&out, &["permission denied (publickey)"], "RSA key alone");
    let cert = ssh_sign(
        &user_ca,
        &dir.join("id_rsa.pub"),
        &sshd.user,
        false,
        "-5m:+2d",
    );
    let out = sshd_login(&dir, &sshd, &kh, &dir.join("id_rsa"), &["-v"]);
    assert_ok(&out, "RSA user certificate to OpenSSH");
    out.assert_stderr_contains(&format!(
        "authenticated with certificate {}",
        cert.display()
    ));
    let log = sshd.log();
    assert!(
        log.contains("Accepted publickey") && log.contains("RSA-CERT"),
        "sshd accepted the RSA certificate: {log}"
    );
    assert!(
        !log.contains("not in PubkeyAcceptedAlgorithms"),
        "no SHA-1 certificate signature was offered: {log}"
    );

    // The same kind of certificate into mshd, whose only way in is the CA.
    let (d, ca) = user_ca_mshd("mc-rsa-user-mshd");
    let rsa = d.dir.join("id_rsa");
    let mut c = cmd(
        tool("ssh-keygen"),
        ["-q", "-t", "rsa", "-b", "2048", "-N", "", "-C", "", "-f"],
    );
    c.arg(&rsa);
    assert!(run(c, b"", T).status.success());
    ssh_sign(&ca, &d.dir.join("id_rsa.pub"), &d.user, false, "-5m:+2d");
    let out = run(
        msh(&d.dir, d.port, &d.user, &d.known_hosts, &rsa, &[]),
        b"",
        T,
    );
    assert_ok(&out, "RSA user certificate to mshd");
    d.proc.wait_for_log("rsa-sha2-512-cert-v01", T);
    // mshd refuses the SHA-1 form of the same certificate login (OpenSSH ssh can send it).
    let sha1 = [
        "-v",
        "-o",
        "PubkeyAcceptedAlgorithms=ssh-rsa-cert-v01@openssh.com",
    ];
    let out = run(d.ssh_with_key(&d.user, &rsa, &sha1, "echo in"), b"", T);
    assert_eq!(
        out.code(),
        Some(255),
        "SHA-1 RSA certificate signature accepted: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("RSA-CERT"),
        "ssh did offer the certificate: {}",
        out.stderr
    );
    let out = run(d.ssh_with_key(&d.user, &rsa, &[], "echo in"), b"", T);
    assert_eq!(
        out.code(),
        Some(0),
        "ssh's rsa-sha2 certificate: {}",
        out.stderr
    );
}

/// With `ask` on a terminal, a host known only by another key type gets the loud warning
/// before the question; "no" refuses and records nothing, "yes" adds the new key.
#[test]
fn ask_warns_before_accepting_a_new_key_type() {
    use crate::msh_interactive::Tmux;
    let d = Mshd::start("mc-othertype-ask");
    let old = known_by_old_ecdsa(&d);
    let line = msh_line_to_mshd(&d, "127.0.0.1 echo IN-$((20+1)); echo RC=$?");
    let tmux = Tmux::new(&d.dir);
    tmux.start("sh");
    tmux.send_keys(&[&line, "Enter"]);
    tmux.wait_for_screen("REMOTE HOST IDENTIFICATION HAS CHANGED");
    let screen = tmux.wait_for_screen("Are you sure you want to continue connecting");
    let flat = screen.replace('\n', "");
    assert!(flat.contains(&d.host_fingerprint), "{screen}");
    tmux.send_keys(&["no", "Enter"]);
    tmux.wait_for_screen("RC=255");
    assert_eq!(std::fs::read_to_string(&d.known_hosts).unwrap(), old);

    tmux.send_keys(&["clear", "Enter"]);
    tmux.send_keys(&[&line, "Enter"]);
    tmux.wait_for_screen("Are you sure you want to continue connecting");
    tmux.send_keys(&["yes", "Enter"]);
    tmux.wait_for_screen("RC=0");
    assert!(tmux.screen().contains("IN-21"), "{}", tmux.screen());
    let text = std::fs::read_to_string(&d.known_hosts).unwrap();
    assert!(
        text.starts_with(&old) && text.contains(d.host_public.split_whitespace().nth(1).unwrap()),
        "the old line is kept and the new key added: {text}"
    );
}
