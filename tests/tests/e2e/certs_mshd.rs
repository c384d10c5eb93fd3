//! Certificate lifecycle against a real mshd: certificates issued by `msh-keygen sign` and by
//! OpenSSH's `ssh-keygen -s`, presented by OpenSSH's `ssh`; every refusal is checked both at
//! the client (exit 255) and in mshd's own words (its log and its audit log); renewal and
//! revocation take effect on the next login of the same mshd process.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use msh_tests::mshd::{fingerprint_of, Mshd};
use msh_tests::*;

const T: Duration = Duration::from_secs(30);
const LOG: Duration = Duration::from_secs(10);

/// Runs msh-keygen and asserts it succeeded.
fn msh_keygen(args: &[&str], paths: &[&Path]) -> Output {
    let mut c = cmd(bin("msh-keygen"), args);
    c.args(paths);
    let out = run(c, b"", T);
    assert_eq!(
        out.code(),
        Some(0),
        "msh-keygen {args:?} {paths:?} failed: {}",
        out.stderr
    );
    out
}

/// `msh-keygen sign --ca CA --id ID --principals P EXTRA... KEY.pub`.
fn msh_sign(ca: &Path, key_pub: &Path, id: &str, principals: &str, extra: &[&str]) {
    let mut args = vec![
        "sign",
        "--ca",
        ca.to_str().unwrap(),
        "--id",
        id,
        "--principals",
        principals,
    ];
    args.extend_from_slice(extra);
    msh_keygen(&args, &[key_pub]);
}

/// mshd trusting one user CA, with an empty authorized_keys (only certificates get in) and
/// an audit log.
struct Setup {
    d: Mshd,
    ca: PathBuf,
    audit: PathBuf,
    key_pub: PathBuf,
    cert: PathBuf,
}

impl Setup {
    fn start(name: &str) -> Setup {
        Setup::start_in(TestDir::new(name), name, None)
    }

    /// Starts mshd in `dir`, with `revoked_keys = LIST` when `revoked` is given.
    fn start_in(dir: TestDir, name: &str, revoked: Option<&Path>) -> Setup {
        let ca = ssh_keygen_ed25519(&dir, "user_ca");
        let audit = dir.join("audit.jsonl");
        let mut b = Mshd::builder(name)
            .dir(dir)
            .authorized_keys_contents("")
            .arg("--audit-log")
            .arg(audit.to_str().unwrap())
            .trusted_user_ca(&ca);
        if let Some(list) = revoked {
            b = b.toml(&format!("revoked_keys = \"{}\"", list.display()));
        }
        let d = b.start();
        let key_pub = d.dir.join("id_ed25519.pub");
        let cert = d.dir.join("id_ed25519-cert.pub");
        Setup {
            d,
            ca,
            audit,
            key_pub,
            cert,
        }
    }

    fn ca_pub(&self) -> PathBuf {
        self.d.dir.join("user_ca.pub")
    }

    fn login(&self, remote: &str) -> Output {
        run(self.d.ssh(&[], remote), b"", T)
    }

    fn audit_text(&self) -> String {
        std::fs::read_to_string(&self.audit).unwrap_or_default()
    }

    /// Waits for an `auth` audit event with `outcome` whose line contains every needle;
    /// returns that line. Panics with the audit and mshd logs after LOG.
    fn wait_audit(&self, outcome: &str, needles: &[&str]) -> String {
        let start = Instant::now();
        loop {
            let text = self.audit_text();
            if let Some(line) = text.lines().find(|l| {
                l.contains("\"event\":\"auth\"")
                    && l.contains(&format!("\"outcome\":\"{outcome}\""))
                    && needles.iter().all(|n| l.contains(n))
            }) {
                return line.to_string();
            }
            assert!(
                start.elapsed() < LOG,
                "no {outcome} auth event with {needles:?} in the audit log:\n{text}\nmshd log:\n{}",
                self.d.log_text()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Asserts a login is accepted, prints `remote`'s output, and is audited as accepted
    /// with the certificate's key id.
    fn assert_login_ok(&self, key_id: &str) {
        let out = self.login("echo in");
        assert_eq!(
            out.code(),
            Some(0),
            "login refused; ssh stderr: {}\nmshd log:\n{}",
            out.stderr,
            self.d.log_text()
        );
        assert_eq!(out.stdout_str(), "in\n");
        self.wait_audit("accepted", &[&format!("\"cert_key_id\":\"{key_id}\"")]);
    }

    /// Asserts a login is refused (ssh exit 255, nothing run), that mshd's log has a
    /// `rejected publickey` line containing `reason`, and that the audit log has the
    /// rejection with `reason` too. Only the log line is checked when `audited` is false.
    fn assert_refused(&self, reason: &str, audited: bool) {
        let before = self.d.log_text().len();
        let out = self.login("echo in");
        assert_eq!(
            out.code(),
            Some(255),
            "login not refused (expected: {reason}); stdout {:?}\nmshd log:\n{}",
            out.stdout_str(),
            self.d.log_text()
        );
        assert_eq!(out.stdout_str(), "");
        let start = Instant::now();
        loop {
            let log = self.d.log_text();
            let new = log.get(before..).unwrap_or("");
            if new.contains(reason) {
                break;
            }
            assert!(
                start.elapsed() < LOG,
                "mshd did not log {reason:?}; log since the attempt:\n{new}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        if audited {
            let escaped = reason.replace('"', "\\\"");
            self.wait_audit("rejected", &[&escaped]);
        }
    }
}

fn ca_fingerprint(s: &Setup) -> String {
    fingerprint_of(&s.ca_pub())
}

// ---- interop: who signs, who verifies ----

#[test]
fn ssh_keygen_user_cert_logs_in_beside_the_key_and_as_certificate_file() {
    let s = Setup::start("cm-interop-user");
    ssh_keygen_sign(
        &s.ca,
        &s.key_pub,
        "from-ssh-keygen",
        &s.d.user,
        &["-z", "9"],
    );
    // ssh -i KEY loads KEY-cert.pub beside it.
    s.assert_login_ok("from-ssh-keygen");
    let line = s.wait_audit("accepted", &["\"cert_serial\":9"]);
    assert!(line.contains(&ca_fingerprint(&s)), "{line}");
    assert!(
        line.contains(&fingerprint_of(&s.key_pub)),
        "audit names the certified key: {line}"
    );
    // The certificate elsewhere, named by CertificateFile.
    let moved = s.d.dir.join("elsewhere-cert.pub");
    std::fs::rename(&s.cert, &moved).unwrap();
    let opt = format!("CertificateFile={}", moved.display());
    let out = run(s.d.ssh(&["-o", &opt], "echo via-certfile"), b"", T);
    assert_eq!(out.code(), Some(0), "{}\n{}", out.stderr, s.d.log_text());
    assert_eq!(out.stdout_str(), "via-certfile\n");
    // Without the certificate the bare key is not authorized.
    s.assert_refused("key not in", true);
}

#[test]
fn msh_keygen_user_cert_logs_in_to_mshd() {
    let s = Setup::start("cm-msh-user");
    msh_sign(
        &s.ca,
        &s.key_pub,
        "from-msh-keygen",
        &format!("ops,{}", s.d.user),
        &["--serial", "77", "--validity", "-5m:+1h"],
    );
    s.assert_login_ok("from-msh-keygen");
    s.wait_audit("accepted", &["\"cert_serial\":77"]);
    s.d.wait_for_log("key id \"from-msh-keygen\" serial 77", LOG);
}

/// mshd serving a host certificate that msh-keygen issued for `principal`; known_hosts holds
/// only the CA (`@cert-authority`), no plain host key.
fn host_cert_setup(name: &str, principal: &str) -> Mshd {
    let dir = TestDir::new(name);
    let ca = ssh_keygen_ed25519(&dir, "host_ca");
    let hk = ssh_keygen_ed25519(&dir, "cert_host_key");
    msh_sign(
        &ca,
        &dir.join("cert_host_key.pub"),
        "mshd-host",
        principal,
        &["--host", "--validity", "-1h:+1d"],
    );
    let cert = dir.join("cert_host_key-cert.pub");
    assert!(cert.exists());
    let d = Mshd::builder(name)
        .dir(dir)
        .host_key_with_certificate(&hk, &cert)
        .start();
    d.wait_for_log("host certificate", LOG);
    let ca_line = std::fs::read_to_string(d.dir.join("host_ca.pub")).unwrap();
    std::fs::write(
        &d.known_hosts,
        format!("@cert-authority [127.0.0.1]:{} {}", d.port, ca_line.trim()),
    )
    .unwrap();
    d
}

#[test]
fn msh_keygen_host_cert_served_by_mshd_is_verified_by_openssh() {
    let d = host_cert_setup("cm-hostcert", "127.0.0.1");
    let out = run(d.ssh(&["-v"], "echo in"), b"", T);
    d.assert_ok(&out);
    assert_eq!(out.stdout_str(), "in\n");
    assert!(
        out.stderr
            .contains("Server host certificate: ssh-ed25519-cert-v01@openssh.com")
            && out.stderr.contains("ID \"mshd-host\""),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("Host '[127.0.0.1]:")
            && out
                .stderr
                .contains("is known and matches the ED25519-CERT host certificate"),
        "{}",
        out.stderr
    );
}

#[test]
fn expired_and_expiring_host_certs_are_warned_about_at_start_and_on_sighup() {
    let dir = TestDir::new("cm-hostcert-expiry");
    let ca = ssh_keygen_ed25519(&dir, "host_ca");
    let hk = ssh_keygen_ed25519(&dir, "cert_host_key");
    let hk_pub = dir.join("cert_host_key.pub");
    msh_sign(
        &ca,
        &hk_pub,
        "old-host",
        "127.0.0.1",
        &["--host", "--validity", "20200101:20200201"],
    );
    let cert = dir.join("cert_host_key-cert.pub");
    let d = Mshd::builder("cm-hostcert-expiry")
        .dir(dir)
        .host_key_with_certificate(&hk, &cert)
        .start();
    let log = d.wait_for_log("expired at 2020-02-01 00:00:00 UTC", LOG);
    let line = log
        .lines()
        .find(|l| l.contains("expired at 2020-02-01"))
        .unwrap();
    assert!(
        line.contains("WARN")
            && line.contains(cert.to_str().unwrap())
            && line.contains("msh-keygen sign --host"),
        "{line}"
    );
    // Renewed, but for two hours only: SIGHUP reloads it and warns it expires soon.
    msh_sign(
        &ca,
        &hk_pub,
        "short-host",
        "127.0.0.1",
        &["--host", "--validity", "-1m:+2h"],
    );
    d.proc.signal(nix::sys::signal::Signal::SIGHUP);
    let log = d.wait_for_log("expires at", LOG);
    let line = log.lines().find(|l| l.contains("expires at")).unwrap();
    assert!(
        line.contains("WARN")
            && line.contains(cert.to_str().unwrap())
            && (line.contains("(in 2h00m)") || line.contains("(in 1h59m)")),
        "{line}"
    );
    // A certificate valid for longer than a day gets no warning.
    msh_sign(
        &ca,
        &hk_pub,
        "long-host",
        "127.0.0.1",
        &["--host", "--validity", "-1m:+30d"],
    );
    d.proc.signal(nix::sys::signal::Signal::SIGHUP);
    let log = d.wait_for_log("\"long-host\"", LOG);
    assert_eq!(log.matches("expires at").count(), 1, "{log}");
    assert_eq!(log.matches("expired at").count(), 1, "{log}");
}

#[test]
fn host_cert_for_another_name_is_refused_by_openssh() {
    let d = host_cert_setup("cm-hostcert-wrong", "build.example");
    let out = run(d.ssh(&["-v"], "echo in"), b"", T);
    assert_eq!(out.code(), Some(255), "{}", out.stderr);
    assert_eq!(out.stdout_str(), "");
    out.assert_stderr_contains("name is not a listed principal");
    out.assert_stderr_contains("Host key verification failed");
}

// ---- refusals, each with mshd's reason ----

#[test]
fn expired_and_not_yet_valid_certs_are_refused() {
    let s = Setup::start("cm-validity");
    msh_sign(
        &s.ca,
        &s.key_pub,
        "expired",
        &s.d.user,
        &["--validity", "20200101:20200201", "--serial", "41"],
    );
    // russh refuses a certificate outside its validity window itself, before mshd's policy;
    // its patched Handler::auth_certificate_refused (vendor/russh/PATCHES.md) shows mshd the
    // certificate, so the refusal is logged and audited like mshd's own.
    s.assert_refused("certificate expired at 2020-02-01T00:00:00Z", true);
    msh_sign(
        &s.ca,
        &s.key_pub,
        "future",
        &s.d.user,
        &["--validity", "+1d:+2d", "--serial", "42"],
    );
    s.assert_refused("certificate not yet valid (valid from ", true);
    let events: Vec<_> =
        s.d.audit_events()
            .into_iter()
            .filter(|e| {
                e["event"] == "auth"
                    && e["reason"].as_str().is_some_and(|r| {
                        r.starts_with("certificate expired at")
                            || r.starts_with("certificate not yet valid")
                    })
            })
            .collect();
    assert_eq!(events.len(), 2, "one event per attempt: {events:?}");
    let ca = ca_fingerprint(&s);
    for (e, (id, serial)) in events.iter().zip([("expired", 41), ("future", 42)]) {
        assert_eq!(e["outcome"], "rejected", "{e}");
        assert_eq!(e["user"], s.d.user.as_str(), "{e}");
        assert_eq!(e["method"], "publickey", "{e}");
        assert_eq!(e["cert_key_id"], id, "{e}");
        assert_eq!(e["cert_serial"], serial, "{e}");
        assert_eq!(e["cert_ca_fingerprint"], ca.as_str(), "{e}");
        assert_eq!(e["fingerprint"], fingerprint_of(&s.key_pub).as_str(), "{e}");
        assert!(e["conn_id"].as_u64().is_some_and(|c| c > 0), "{e}");
        assert!(
            e["peer"]
                .as_str()
                .is_some_and(|p| p.starts_with("127.0.0.1:")),
            "{e}"
        );
    }
    assert_ne!(events[0]["conn_id"], events[1]["conn_id"], "{events:?}");
    let log = s.d.log_text();
    assert!(
        log.lines().any(|l| l.contains(&format!(
            "rejected publickey for {} (ssh-ed25519-cert-v01@openssh.com",
            s.d.user
        )) && l
            .contains("certificate key id \"expired\" serial 41 signed by CA")
            && l.contains(&ca)
            && l.contains("from 127.0.0.1:")),
        "mshd's log names the connection, user and certificate:\n{log}"
    );
    assert!(
        !s.audit_text().contains("\"outcome\":\"accepted\""),
        "{}",
        s.audit_text()
    );
}

#[test]
fn wrong_principal_and_host_cert_as_user_cert_are_refused() {
    let s = Setup::start("cm-principal");
    msh_sign(&s.ca, &s.key_pub, "someone", "someone-else,ops", &[]);
    s.assert_refused(
        &format!(
            "principal \"{}\" not in certificate principals [someone-else, ops]",
            s.d.user
        ),
        true,
    );
    s.wait_audit("rejected", &["\"cert_key_id\":\"someone\""]);
    // OpenSSH's ssh never offers a host certificate from a file ("not a user certificate"),
    // but it does offer one held by an agent: that is how it reaches mshd here.
    msh_sign(&s.ca, &s.key_pub, "a-host", &s.d.user, &["--host"]);
    let (_agent, sock) = start_ssh_agent(&s.d.dir.path);
    let mut add = cmd(tool("ssh-add"), [&s.d.client_key]);
    add.env("SSH_AUTH_SOCK", &sock);
    let out = run(add, b"", T);
    assert!(
        out.status.success() && out.stderr.contains("Certificate added"),
        "ssh-add: {}",
        out.stderr
    );
    let mut ssh = cmd(
        tool("ssh"),
        [
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
        ],
    );
    ssh.arg("-o")
        .arg(format!("UserKnownHostsFile={}", s.d.known_hosts.display()))
        .args(["-o", "GlobalKnownHostsFile=/dev/null", "-p"])
        .arg(s.d.port.to_string())
        .args(["-l", &s.d.user, "127.0.0.1", "echo in"])
        .env("SSH_AUTH_SOCK", &sock);
    let out = run(ssh, b"", T);
    assert_eq!(out.code(), Some(255), "{}\n{}", out.stderr, s.d.log_text());
    assert_eq!(out.stdout_str(), "");
    s.d.wait_for_log("host certificate offered as user certificate", LOG);
    s.wait_audit(
        "rejected",
        &[
            "host certificate offered as user certificate",
            "\"cert_key_id\":\"a-host\"",
        ],
    );
}

#[test]
fn unknown_critical_option_and_source_address_mismatch_are_refused() {
    let s = Setup::start("cm-critical");
    ssh_keygen_sign(
        &s.ca,
        &s.key_pub,
        "crit",
        &s.d.user,
        &["-O", "critical:foo=bar"],
    );
    s.assert_refused("unknown critical option \"foo\"", true);
    msh_sign(
        &s.ca,
        &s.key_pub,
        "far-away",
        &s.d.user,
        &["--source-address", "10.0.0.0/8"],
    );
    s.assert_refused("source-address 10.0.0.0/8 does not admit 127.0.0.1", true);
    // The loopback network is admitted.
    msh_sign(
        &s.ca,
        &s.key_pub,
        "near",
        &s.d.user,
        &["--source-address", "10.0.0.0/8,127.0.0.0/8"],
    );
    s.assert_login_ok("near");
}

#[test]
fn untrusted_ca_is_refused() {
    let s = Setup::start("cm-untrusted");
    let rogue = ssh_keygen_ed25519(&s.d.dir, "rogue_ca");
    msh_sign(&rogue, &s.key_pub, "rogue-cert", &s.d.user, &[]);
    let rogue_fp = fingerprint_of(&s.d.dir.join("rogue_ca.pub"));
    s.assert_refused(
        // Not in trusted_user_ca_keys; then no cert-authority line admits it either.
        &format!(
            "CA {rogue_fp} not listed with cert-authority in {}",
            s.d.authorized_keys.display()
        ),
        true,
    );
    let line = s.wait_audit("rejected", &["\"cert_key_id\":\"rogue-cert\""]);
    assert!(
        line.contains(&format!("\"cert_ca_fingerprint\":\"{rogue_fp}\"")),
        "{line}"
    );
    // The reason names both places a CA can be trusted.
    s.wait_audit(
        "rejected",
        &[
            "\"cert_key_id\":\"rogue-cert\"",
            &format!(
                "; CA {rogue_fp} is not in trusted_user_ca_keys ({})",
                s.ca_pub().display()
            ),
        ],
    );
}

#[test]
fn force_command_in_the_certificate_is_honoured() {
    let s = Setup::start("cm-force");
    msh_sign(
        &s.ca,
        &s.key_pub,
        "forced",
        &s.d.user,
        &[
            "--force-command",
            "echo forced-by-cert \"$SSH_ORIGINAL_COMMAND\"",
        ],
    );
    let out = s.login("echo asked");
    assert_eq!(out.code(), Some(0), "{}\n{}", out.stderr, s.d.log_text());
    assert_eq!(out.stdout_str(), "forced-by-cert echo asked\n");
    s.wait_audit("accepted", &["\"cert_key_id\":\"forced\""]);
    let start = Instant::now();
    while !s.audit_text().contains("\"event\":\"session_start\"") {
        assert!(start.elapsed() < LOG, "{}", s.audit_text());
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(
        s.audit_text().contains("forced-by-cert"),
        "audit names the forced command: {}",
        s.audit_text()
    );
}

// ---- revocation ----

#[test]
fn key_revoked_with_msh_keygen_revoke_is_refused() {
    let (s, revoked) = setup_with_revocation_list("cm-revoke-text");
    msh_sign(&s.ca, &s.key_pub, "laptop", &s.d.user, &["--serial", "5"]);
    // The list does not exist yet: mshd fails closed.
    s.assert_refused("revoked_keys unusable", true);
    // A list made by msh-keygen revoke holding an unrelated key: logins work.
    ssh_keygen_ed25519(&s.d.dir, "other");
    msh_keygen(
        &["revoke", "--file", revoked.to_str().unwrap()],
        &[&s.d.dir.join("other.pub")],
    );
    s.assert_login_ok("laptop");
    // Revoked by naming the certificate file: its key is listed, on line 2.
    let out = msh_keygen(&["revoke", "--file", revoked.to_str().unwrap()], &[&s.cert]);
    let key_fp = fingerprint_of(&s.key_pub);
    assert!(out.stdout_str().contains(&key_fp), "{}", out.stdout_str());
    s.assert_refused(
        &format!(
            "key {key_fp} is revoked ({}:2 (certificate \"laptop\"))",
            revoked.display()
        ),
        true,
    );
    // The certificate is audited as a certificate, not refused at the offer as its bare key.
    let line = s.wait_audit(
        "rejected",
        &[
            &format!("key {key_fp} is revoked"),
            "\"cert_key_id\":\"laptop\"",
            "\"cert_serial\":5",
            &format!("\"cert_ca_fingerprint\":\"{}\"", ca_fingerprint(&s)),
        ],
    );
    assert!(
        line.contains("\"key_type\":\"ssh-ed25519-cert-v01@openssh.com\""),
        "{line}"
    );
}

/// mshd with `revoked_keys` set to `list` (not created here) and a trusted CA.
fn setup_with_revocation_list(name: &str) -> (Setup, PathBuf) {
    let dir = TestDir::new(name);
    let list = dir.join("revoked");
    (Setup::start_in(dir, name, Some(&list)), list)
}

/// `ssh-keygen -k -f KRL [-s CA.pub] ARG` (the oracle writes the KRL).
fn ssh_keygen_krl(krl: &Path, ca_pub: Option<&Path>, arg: &Path) {
    let mut c = cmd(tool("ssh-keygen"), ["-q", "-k", "-f"]);
    c.arg(krl);
    if let Some(ca) = ca_pub {
        c.arg("-s").arg(ca);
    }
    c.arg(arg);
    let out = run(c, b"", T);
    assert!(out.status.success(), "ssh-keygen -k failed: {}", out.stderr);
}

#[test]
fn serial_and_key_id_revoked_in_a_krl_by_ssh_keygen_are_refused() {
    let (s, krl) = setup_with_revocation_list("cm-krl-serial");
    let spec = s.d.dir.write("krl.spec", "serial: 40-42\n", 0o644);
    ssh_keygen_krl(&krl, Some(&s.ca_pub()), &spec);
    msh_sign(
        &s.ca,
        &s.key_pub,
        "serial-43",
        &s.d.user,
        &["--serial", "43"],
    );
    s.assert_login_ok("serial-43");
    msh_sign(
        &s.ca,
        &s.key_pub,
        "serial-41",
        &s.d.user,
        &["--serial", "41"],
    );
    s.assert_refused(
        &format!(
            "certificate serial 41 of CA {} is revoked",
            ca_fingerprint(&s)
        ),
        true,
    );
    s.wait_audit("rejected", &["\"cert_serial\":41"]);
    // The KRL updated (-u) with a key id: that certificate is refused, whatever its serial.
    let spec = s.d.dir.write("krl-id.spec", "id: doomed id\n", 0o644);
    let mut c = cmd(tool("ssh-keygen"), ["-q", "-k", "-u", "-f"]);
    c.arg(&krl).arg("-s").arg(s.ca_pub()).arg(&spec);
    assert!(run(c, b"", T).status.success());
    msh_sign(
        &s.ca,
        &s.key_pub,
        "doomed id",
        &s.d.user,
        &["--serial", "43"],
    );
    s.assert_refused(
        &format!(
            "certificate key id \"doomed id\" of CA {} is revoked",
            ca_fingerprint(&s)
        ),
        true,
    );
    // Serial 43 under another id still gets in.
    msh_sign(&s.ca, &s.key_pub, "fine id", &s.d.user, &["--serial", "43"]);
    s.assert_login_ok("fine id");
}

#[test]
fn key_in_a_krl_made_by_ssh_keygen_is_refused_with_its_certificates() {
    let (s, krl) = setup_with_revocation_list("cm-krl-key");
    ssh_keygen_ed25519(&s.d.dir, "other");
    ssh_keygen_krl(&krl, None, &s.d.dir.join("other.pub"));
    msh_sign(&s.ca, &s.key_pub, "before", &s.d.user, &[]);
    s.assert_login_ok("before");
    let mut c = cmd(tool("ssh-keygen"), ["-q", "-k", "-u", "-f"]);
    c.arg(&krl).arg(&s.key_pub);
    assert!(run(c, b"", T).status.success());
    s.assert_refused(
        &format!("key {} is revoked", fingerprint_of(&s.key_pub)),
        true,
    );
}

#[test]
fn revoked_ca_refuses_every_certificate_it_signed() {
    let (s, list) = setup_with_revocation_list("cm-revoked-ca");
    std::fs::write(&list, "").unwrap();
    msh_sign(&s.ca, &s.key_pub, "by-doomed-ca", &s.d.user, &[]);
    s.assert_login_ok("by-doomed-ca");
    msh_keygen(
        &["revoke", "--file", list.to_str().unwrap()],
        &[&s.ca_pub()],
    );
    s.assert_refused(
        &format!("signing CA {} is revoked", ca_fingerprint(&s)),
        true,
    );
    s.wait_audit("rejected", &["\"cert_key_id\":\"by-doomed-ca\""]);
}

// ---- renewal and revocation without restart ----

/// Asserts mshd is still the one process the fixture started: not exited, and it bound its
/// port once (a restart would log `listening on` again).
fn assert_same_process(s: &Setup, pid: i32) {
    // An exited child that was not reaped yet is a zombie (state Z) in /proc.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
    assert!(
        matches!(state, Some(Some(c)) if c != 'Z'),
        "mshd {pid} is gone ({stat:?}):\n{}",
        s.d.log_text()
    );
    assert_eq!(s.d.proc.pid(), pid);
    assert_eq!(
        s.d.log_text().matches("listening on").count(),
        1,
        "mshd started more than once:\n{}",
        s.d.log_text()
    );
}

#[test]
fn renewed_certificate_works_on_the_next_login_of_the_same_mshd() {
    let s = Setup::start("cm-renew");
    let pid = s.d.proc.pid();
    msh_sign(
        &s.ca,
        &s.key_pub,
        "v1",
        &s.d.user,
        &["--validity", "20200101:20200201"],
    );
    s.assert_refused("Certificate is expired or not yet valid", false);
    // Re-sign the same key: same path, new validity.
    msh_sign(
        &s.ca,
        &s.key_pub,
        "v2",
        &s.d.user,
        &["--validity", "-1m:+1h"],
    );
    s.assert_login_ok("v2");
    assert_same_process(&s, pid);
}

#[test]
fn revocation_after_a_login_refuses_the_next_one_without_restart() {
    let (s, list) = setup_with_revocation_list("cm-revoke-live");
    std::fs::write(&list, "").unwrap();
    let pid = s.d.proc.pid();
    msh_sign(&s.ca, &s.key_pub, "live", &s.d.user, &["--serial", "3"]);
    s.assert_login_ok("live");
    msh_keygen(&["revoke", "--file", list.to_str().unwrap()], &[&s.key_pub]);
    s.assert_refused(
        &format!("key {} is revoked", fingerprint_of(&s.key_pub)),
        true,
    );
    assert_same_process(&s, pid);
}

#[test]
fn certificates_from_rsa_and_ecdsa_cas_log_in() {
    let s = Setup::start("cm-ca-kinds");
    for kind in ["rsa", "ecdsa"] {
        let ca = ssh_keygen_key(&s.d.dir, &format!("{kind}_ca"), kind);
        // trusted_user_ca_keys is read at each login: add the CA to the file mshd uses.
        let line = std::fs::read_to_string(msh_common::keys::public_key_path(&ca)).unwrap();
        let mut trusted = std::fs::read_to_string(s.ca_pub()).unwrap();
        trusted.push_str(&line);
        std::fs::write(s.ca_pub(), trusted).unwrap();
        let id = format!("by-{kind}-ca");
        msh_sign(&ca, &s.key_pub, &id, &s.d.user, &[]);
        s.assert_login_ok(&id);
        let ca_fp = fingerprint_of(&msh_common::keys::public_key_path(&ca));
        s.wait_audit(
            "accepted",
            &[&format!("\"cert_ca_fingerprint\":\"{ca_fp}\"")],
        );
    }
}
