//! mshd's user authentication seen from OpenSSH's `ssh`: who is refused, why the log says
//! so (naming files and lines), and that authorized_keys files are only ever read.

use std::time::Duration;

use msh_tests::mshd::{check_config, fingerprint_of, user_ca_builder, Mshd};
use msh_tests::users::{require_root, TestUser};
use msh_tests::*;

const T: Duration = Duration::from_secs(30);
const LOG: Duration = Duration::from_secs(5);

#[test]
fn unknown_key_is_refused() {
    let d = Mshd::start("unknown-key");
    let other = ssh_keygen_ed25519(&d.dir, "other_key");
    let c = d.ssh_with_key(&d.user, &other, &["-v"], "echo in");
    let out = run(c, b"", T);
    assert_eq!(out.code(), Some(255));
    assert!(out.stdout.is_empty());
    out.assert_stderr_contains("Permission denied");
    // Refused at the offer: the client is never asked to sign (or unlock) this key.
    out.assert_stderr_contains("Offering public key");
    assert!(!out.stderr.contains("Server accepts key"), "{}", out.stderr);
    let fp = fingerprint_of(&d.dir.join("other_key.pub"));
    let log = d.wait_for_log("rejected publickey", LOG);
    assert!(log.contains(&fp) && log.contains("key not in"), "{log}");
}

#[test]
fn unknown_user_is_refused() {
    let d = Mshd::start("unknown-user");
    let out = run(d.ssh_as("msht-no-such-user", &[], "echo in"), b"", T);
    assert_eq!(out.code(), Some(255));
    assert!(out.stdout.is_empty());
    d.wait_for_log("no such local user \"msht-no-such-user\"", LOG);
}

#[test]
fn deny_users_refuses_an_otherwise_good_key() {
    let d = Mshd::builder("deny-users")
        .toml(&format!(
            "deny_users = [\"{}\"]",
            msh_tests::mshd::current_user()
        ))
        .start();
    let out = run(d.ssh(&[], "echo in"), b"", T);
    assert_eq!(out.code(), Some(255));
    d.wait_for_log("is in deny_users", LOG);
}

#[test]
fn group_or_world_writable_authorized_keys_is_refused() {
    for mode in [0o666, 0o620] {
        let d = Mshd::builder("ak-writable")
            .authorized_keys_mode(mode)
            .start();
        let out = run(d.ssh(&[], "echo in"), b"", T);
        assert_eq!(out.code(), Some(255), "mode {mode:o} let the key in");
        assert!(out.stdout.is_empty());
        let log = d.wait_for_log("refused by strict_modes", LOG);
        assert!(
            log.contains(&d.authorized_keys.display().to_string()),
            "log does not name {}: {log}",
            d.authorized_keys.display()
        );
    }
}

#[test]
fn garbage_line_is_skipped_with_its_line_number_and_the_file_is_untouched() {
    // Line 2 is valid but does not admit 127.0.0.1, line 3 is garbage, line 4 admits.
    let text = "# keys\nfrom=\"10.0.0.0/8\" {KEY}\nthis is not a key line\n{KEY}\n";
    let d = Mshd::builder("ak-garbage")
        .authorized_keys_contents(text)
        .start();
    let before = std::fs::read(&d.authorized_keys).unwrap();
    let mtime = std::fs::metadata(&d.authorized_keys)
        .unwrap()
        .modified()
        .unwrap();
    let out = run(d.ssh(&[], "echo in"), b"", T);
    d.assert_ok(&out);
    assert_eq!(out.stdout_str(), "in\n");
    let log = d.wait_for_log("accepted publickey", LOG);
    let at = format!("{}:3", d.authorized_keys.display());
    assert!(log.contains(&at), "no warning naming {at}: {log}");
    assert!(
        log.contains(&format!("{}:4", d.authorized_keys.display())),
        "{log}"
    );
    assert!(
        !log.contains(&format!("{}:2: ", d.authorized_keys.display())),
        "{log}"
    );
    assert_eq!(std::fs::read(&d.authorized_keys).unwrap(), before);
    assert_eq!(
        std::fs::metadata(&d.authorized_keys)
            .unwrap()
            .modified()
            .unwrap(),
        mtime
    );
}

#[test]
fn expired_key_is_refused() {
    let d = Mshd::builder("ak-expired")
        .authorized_keys_options("expiry-time=\"20200101\"")
        .start();
    let out = run(d.ssh(&[], "echo in"), b"", T);
    assert_eq!(out.code(), Some(255));
    assert!(out.stdout.is_empty());
    let log = d.wait_for_log("rejected publickey", LOG);
    assert!(log.contains("expir"), "{log}");
}

#[test]
fn audit_log_records_connect_auth_session_and_disconnect() {
    let dir = TestDir::new("audit3");
    let audit = dir.join("audit.jsonl");
    let d = Mshd::builder("audit3")
        .arg("--audit-log")
        .arg(audit.to_str().unwrap())
        .start();
    let out = run(d.ssh(&[], "exit 3"), b"", T);
    assert_eq!(out.code(), Some(3));
    d.wait_for_log("ended", LOG);
    let text = std::fs::read_to_string(&audit).unwrap();
    let events: Vec<&str> = text.lines().collect();
    let has = |ev: &str, extra: &str| {
        events
            .iter()
            .any(|l| l.contains(&format!("\"event\":\"{ev}\"")) && l.contains(extra))
    };
    assert!(has("connect", "\"peer\":\"127.0.0.1:"), "{text}");
    assert!(has("auth", "\"outcome\":\"accepted\""), "{text}");
    assert!(
        has("auth", &fingerprint_of(&d.dir.join("id_ed25519.pub"))),
        "{text}"
    );
    assert!(has("session_start", "\"command\":\"exit 3\""), "{text}");
    assert!(has("session_end", "\"exit_status\":3"), "{text}");
    assert!(has("disconnect", "\"conn_id\""), "{text}");
    assert!(
        events
            .iter()
            .all(|l| l.contains("\"v\":1") && l.contains("\"ts\":")),
        "{text}"
    );
}

/// A config file named with --config that does not exist is said to be missing, with what
/// to do, instead of an errno.
#[test]
fn a_missing_config_file_is_named_as_missing() {
    let dir = TestDir::new("missing-config");
    let out = check_config(&dir.join("nope.toml"));
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert_eq!(
        out.stderr,
        format!(
            "mshd: config file {} does not exist (named with --config); create it, or leave \
             out --config to run with the built-in defaults\n",
            dir.join("nope.toml").display()
        )
    );
}

/// mshd.toml's times take OpenSSH's whole TIME FORMAT (the parser msh uses for ssh_config):
/// before, mshd took one unit only and refused `1m30s` and `2w`.
#[test]
fn grace_times_take_openssh_time_format() {
    let dir = TestDir::new("time-format");
    let cfg = dir.write(
        "times.toml",
        "listen = [\"127.0.0.1:2299\"]\nlogin_grace_time = \"1m30s\"\nshutdown_grace_time = \"1W\"\n",
        0o644,
    );
    let out = check_config(&cfg);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    for want in [
        "login_grace_time = \"90s\"",
        "shutdown_grace_time = \"604800s\"",
    ] {
        assert!(
            out.stdout_str().contains(want),
            "{want}: {}",
            out.stdout_str()
        );
    }
    let bad = dir.write(
        "bad.toml",
        "listen = [\"127.0.0.1:2299\"]\nlogin_grace_time = \"1m 30s\"\n",
        0o644,
    );
    let out = check_config(&bad);
    assert_eq!(out.code(), Some(1));
    assert!(
        out.stderr.contains("login_grace_time")
            && out.stderr.contains("invalid duration \"1m 30s\""),
        "{}",
        out.stderr
    );
}

#[test]
fn check_config_names_file_line_and_key() {
    let dir = TestDir::new("check-config");
    let good = dir.write(
        "good.toml",
        "listen = [\"127.0.0.1:2299\"]\nmax_auth_tries = 3\n",
        0o644,
    );
    let out = check_config(&good);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    out.assert_stdout_contains("max_auth_tries = 3");
    out.assert_stdout_contains("127.0.0.1:2299");

    let bad = dir.write(
        "bad.toml",
        "listen = [\"127.0.0.1:2299\"]\n\nmax_auth_trys = 3\n",
        0o644,
    );
    let out = check_config(&bad);
    assert_eq!(out.code(), Some(1));
    assert!(
        out.stderr.contains(&format!("{}:3:", bad.display()))
            && out.stderr.contains("max_auth_trys"),
        "{}",
        out.stderr
    );
}

#[test]
fn host_key_is_generated_0600_on_first_start_and_its_fingerprint_logged() {
    if !require_root("host_key_is_generated_0600_on_first_start_and_its_fingerprint_logged") {
        return;
    }
    // The default path is under the user's config dir; as root it would be /etc/msh, which a
    // test must not touch, so mshd runs unprivileged as a throwaway user.
    let u = TestUser::new();
    let d = Mshd::builder("hostkey-gen")
        .run_as(&u.name)
        .default_host_key()
        .start();
    let key = u.home.join(".config/msh/ssh_host_ed25519_key");
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&key)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", key.display(), d.log_text()));
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert_eq!(meta.uid(), u.uid);
    let fp = fingerprint_of(&u.home.join(".config/msh/ssh_host_ed25519_key.pub"));
    let log = d.wait_for_log(&format!("host key {} {fp}", key.display()), LOG);
    assert!(log.contains("generated new host key"), "{log}");
    // The client sees that same key.
    let out = run(
        cmd(
            tool("ssh-keyscan"),
            ["-p", &d.port.to_string(), "-t", "ed25519", "127.0.0.1"],
        ),
        b"",
        T,
    );
    let pubkey =
        std::fs::read_to_string(u.home.join(".config/msh/ssh_host_ed25519_key.pub")).unwrap();
    let b64 = pubkey.split_whitespace().nth(1).unwrap();
    out.assert_stdout_contains(b64);
}

#[test]
fn host_key_readable_by_others_is_refused() {
    let dir = TestDir::new("hostkey-mode");
    let key = ssh_keygen_ed25519(&dir, "hk");
    msh_tests::mshd::set_mode(&key, 0o644);
    let out = msh_tests::mshd::run_with_host_key(&dir, &key, "", false);
    assert_eq!(out.code(), Some(1));
    out.assert_stderr_contains(&key.display().to_string());
}

#[test]
fn silent_connection_is_closed_after_login_grace_time() {
    use std::io::Read;
    let d = Mshd::builder("grace")
        .toml("login_grace_time = \"1s\"")
        .start();
    let mut s = std::net::TcpStream::connect(d.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let start = std::time::Instant::now();
    let mut buf = Vec::new();
    // mshd sends its version line, then hangs up once the grace time is over.
    let r = s.read_to_end(&mut buf);
    assert!(r.is_ok(), "connection not closed: {r:?}");
    assert!(
        String::from_utf8_lossy(&buf).starts_with("SSH-2.0-mshd_"),
        "{buf:?}"
    );
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    d.wait_for_log("login_grace_time", LOG);
}

#[test]
fn rsa_with_sha1_signatures_is_refused_and_sha2_accepted() {
    let d = Mshd::start("rsa-sha1");
    let rsa = ssh_keygen_key(&d.dir, "id_rsa", "rsa");
    let line = std::fs::read_to_string(d.dir.join("id_rsa.pub")).unwrap();
    // authorized_keys is read at each login: adding a line needs no restart.
    let mut ak = std::fs::read_to_string(&d.authorized_keys).unwrap();
    ak.push_str(&line);
    std::fs::write(&d.authorized_keys, ak).unwrap();

    let out = run(
        d.ssh_with_key(
            &d.user,
            &rsa,
            &["-o", "PubkeyAcceptedAlgorithms=ssh-rsa"],
            "echo in",
        ),
        b"",
        T,
    );
    assert_eq!(out.code(), Some(255), "ssh-rsa (SHA-1) signature accepted");
    let out = run(d.ssh_with_key(&d.user, &rsa, &[], "echo in"), b"", T);
    assert_eq!(out.code(), Some(0), "rsa-sha2 refused: {}", out.stderr);
    assert_eq!(out.stdout_str(), "in\n");
}

#[test]
fn missing_configured_host_key_is_generated_once_then_reused() {
    let dir = TestDir::new("hostkey-configured");
    let key = dir.join("keys/ssh_host_ed25519_key");
    let start = |name: &str| {
        Mshd::builder(name)
            .default_host_key()
            .arg("--host-key")
            .arg(key.to_str().unwrap())
            .start()
    };
    let d = start("hostkey-configured-1");
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&key)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", key.display(), d.log_text()));
    assert_eq!(meta.mode() & 0o777, 0o600);
    let fp = fingerprint_of(&dir.join("keys/ssh_host_ed25519_key.pub"));
    let log = d.wait_for_log(&format!("host key {} {fp}", key.display()), LOG);
    assert!(log.contains("generated new host key"), "{log}");
    let before = std::fs::read(&key).unwrap();
    drop(d);
    // Second start: the same key, not a new one.
    let d = start("hostkey-configured-2");
    let log = d.wait_for_log(&format!("host key {} {fp}", key.display()), LOG);
    assert!(!log.contains("generated new host key"), "{log}");
    assert_eq!(std::fs::read(&key).unwrap(), before);
}

/// Signs `key_pub` with `ca` using ssh-keygen (the oracle), writing `KEY-cert.pub`.
fn public_line(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap().trim().to_string()
}

#[test]
fn user_certificate_from_a_trusted_ca_logs_in_and_bad_ones_are_refused() {
    // The bare key is not authorized: only the certificate can get in.
    let (b, ca) = user_ca_builder("cert-trusted");
    let d = b.start();
    let key_pub = d.dir.join("id_ed25519.pub");
    let cert = d.dir.join("id_ed25519-cert.pub");

    ssh_keygen_sign(
        &ca,
        &key_pub,
        "alice-laptop",
        &d.user,
        &["-z", "42", "-V", "-5m:+1h"],
    );
    let out = run(d.ssh(&[], "echo in"), b"", T);
    d.assert_ok(&out);
    assert_eq!(out.stdout_str(), "in\n");
    let ca_fp = fingerprint_of(&d.dir.join("user_ca.pub"));
    let log = d.wait_for_log("accepted publickey", LOG);
    assert!(
        log.contains("key id \"alice-laptop\" serial 42") && log.contains(&ca_fp),
        "{log}"
    );

    // Principal that is not the user.
    ssh_keygen_sign(&ca, &key_pub, "bob", "someone-else", &[]);
    let out = run(d.ssh(&[], "echo in"), b"", T);
    assert_eq!(out.code(), Some(255));
    d.wait_for_log("not in certificate principals", LOG);

    // Expired.
    ssh_keygen_sign(&ca, &key_pub, "old", &d.user, &["-V", "20200101:20200201"]);
    let out = run(d.ssh(&[], "echo in"), b"", T);
    assert_eq!(out.code(), Some(255));
    // russh refuses a certificate outside its validity window before mshd's policy runs.
    d.wait_for_log("Certificate is expired or not yet valid", LOG);

    // Signed by a CA nobody trusts.
    let rogue = ssh_keygen_ed25519(&d.dir, "rogue_ca");
    ssh_keygen_sign(&rogue, &key_pub, "rogue", &d.user, &[]);
    let out = run(d.ssh(&[], "echo in"), b"", T);
    assert_eq!(out.code(), Some(255));
    d.wait_for_log("key id \"rogue\"", LOG);
    assert!(cert.exists());
}

#[test]
fn cert_authority_line_with_principals_and_force_command() {
    let dir = TestDir::new("cert-authority");
    let ca = ssh_keygen_ed25519(&dir, "user_ca");
    let ca_line = public_line(&dir.join("user_ca.pub"));
    let d = Mshd::builder("cert-authority")
        .dir(dir)
        .authorized_keys_contents(&format!("cert-authority,principals=\"ops\" {ca_line}\n"))
        .start();
    let key_pub = d.dir.join("id_ed25519.pub");
    ssh_keygen_sign(
        &ca,
        &key_pub,
        "ops-cert",
        "ops",
        &["-O", "force-command=echo forced-by-cert"],
    );
    let out = run(d.ssh(&[], "echo asked"), b"", T);
    d.assert_ok(&out);
    assert_eq!(out.stdout_str(), "forced-by-cert\n");
    // A principal not in principals= is refused.
    ssh_keygen_sign(&ca, &key_pub, "dev-cert", "dev", &[]);
    let out = run(d.ssh(&[], "echo asked"), b"", T);
    assert_eq!(out.code(), Some(255));
    d.wait_for_log("not in principals=\"ops\"", LOG);
}

#[test]
fn authorized_principals_file_maps_certificate_principals_to_the_user() {
    let (b, ca) = user_ca_builder("cert-principals");
    let pattern = ca.with_file_name("principals-%u");
    let d = b.authorized_principals_file(&pattern).start();
    let file = d.dir.join(format!("principals-{}", d.user));
    std::fs::write(&file, "# who may log in\nops-team\n").unwrap();
    msh_tests::mshd::set_mode(&file, 0o600);
    let key_pub = d.dir.join("id_ed25519.pub");
    ssh_keygen_sign(&ca, &key_pub, "team", "ops-team", &[]);
    let out = run(d.ssh(&[], "echo in"), b"", T);
    d.assert_ok(&out);
    // The user's own name is not enough once a principals file exists.
    ssh_keygen_sign(&ca, &key_pub, "self", &d.user, &[]);
    let out = run(d.ssh(&[], "echo in"), b"", T);
    assert_eq!(out.code(), Some(255));
    d.wait_for_log("is authorized for", LOG);
}

#[test]
fn revoked_keys_refuse_a_key_and_its_certificates() {
    let dir = TestDir::new("revoked");
    let revoked = dir.write("revoked_keys", "", 0o644);
    let ca = ssh_keygen_ed25519(&dir, "user_ca");
    let d = Mshd::builder("revoked")
        .dir(dir)
        .toml(&format!("revoked_keys = \"{}\"", revoked.display()))
        .trusted_user_ca(&ca)
        .start();
    assert_eq!(run(d.ssh(&[], "echo in"), b"", T).code(), Some(0));
    // Read at each login: no restart needed.
    std::fs::write(&revoked, format!("# stolen laptop\n{}\n", d.client_public)).unwrap();
    let out = run(d.ssh(&[], "echo in"), b"", T);
    assert_eq!(out.code(), Some(255));
    let log = d.wait_for_log("is revoked", LOG);
    assert!(log.contains(&format!("{}:2", revoked.display())), "{log}");
    // A certificate of the revoked key is refused too.
    ssh_keygen_sign(
        &ca,
        &d.dir.join("id_ed25519.pub"),
        "cert-of-revoked",
        &d.user,
        &[],
    );
    let before = d.log_text().matches("is revoked").count();
    let out = run(d.ssh(&[], "echo in"), b"", T);
    assert_eq!(out.code(), Some(255));
    // Refused after the signature, where russh shows the certificate (server/README.md):
    // with a CA configured the offer stage cannot tell a certificate from its bare key.
    let log = d.wait_for_log("key id \"cert-of-revoked\"", LOG);
    assert!(log.matches("is revoked").count() > before, "{log}");
    // Revoking the CA revokes its certificates (the key itself is not listed; only the
    // certificate could log in, authorized_keys is emptied).
    std::fs::write(&d.authorized_keys, "").unwrap();
    let ca_line = std::fs::read_to_string(d.dir.join("user_ca.pub")).unwrap();
    std::fs::write(&revoked, &ca_line).unwrap();
    let out = run(d.ssh(&[], "echo in"), b"", T);
    assert_eq!(out.code(), Some(255));
    let log = d.wait_for_log("signing CA", LOG);
    assert!(log.contains("key id \"cert-of-revoked\""), "{log}");
    // An unreadable list fails closed.
    std::fs::write(&revoked, "not a key\n").unwrap();
    std::fs::remove_file(d.dir.join("id_ed25519-cert.pub")).unwrap();
    let out = run(d.ssh(&[], "echo in"), b"", T);
    assert_eq!(out.code(), Some(255));
    d.wait_for_log("revoked_keys unusable", LOG);
}

#[test]
fn host_certificate_is_presented_and_verified_by_openssh() {
    let dir = TestDir::new("host-cert");
    let ca = ssh_keygen_ed25519(&dir, "host_ca");
    let hk = ssh_keygen_ed25519(&dir, "signed_host_key");
    ssh_keygen_sign(
        &ca,
        &dir.join("signed_host_key.pub"),
        "host-cert",
        "127.0.0.1",
        &["-h"],
    );
    let d = Mshd::builder("host-cert")
        .dir(dir)
        .host_key_with_certificate(&hk, std::path::Path::new(&d_path(&hk, "-cert.pub")))
        .start();
    d.wait_for_log("host certificate", LOG);
    // known_hosts trusts only the CA: the connection works only if mshd presents the cert.
    let ca_line = public_line(&d.dir.join("host_ca.pub"));
    std::fs::write(
        &d.known_hosts,
        format!("@cert-authority [127.0.0.1]:{} {ca_line}\n", d.port),
    )
    .unwrap();
    let out = run(d.ssh(&["-v"], "echo in"), b"", T);
    d.assert_ok(&out);
    assert_eq!(out.stdout_str(), "in\n");
    out.assert_stderr_contains("ED25519-CERT");
}

fn d_path(key: &std::path::Path, suffix: &str) -> String {
    format!("{}{suffix}", key.display())
}

#[test]
fn revoked_keys_as_a_binary_krl_from_ssh_keygen() {
    let dir = TestDir::new("revoked-krl");
    let krl = dir.join("revoked.krl");
    let d = Mshd::builder("revoked-krl")
        .dir(dir)
        .toml(&format!("revoked_keys = \"{}\"", krl.display()))
        .start();
    // No file yet: fail closed.
    let out = run(d.ssh(&[], "echo in"), b"", T);
    assert_eq!(out.code(), Some(255));
    d.wait_for_log("revoked_keys unusable", LOG);
    // A KRL revoking another key: the test key gets in.
    let other = ssh_keygen_ed25519(&d.dir, "other");
    let mut c = cmd(tool("ssh-keygen"), ["-q", "-k", "-f"]);
    c.arg(&krl).arg(d.dir.join("other.pub"));
    assert!(run(c, b"", T).status.success());
    let _ = other;
    assert_eq!(run(d.ssh(&[], "echo in"), b"", T).stdout_str(), "in\n");
    // Updated (-u) to revoke the test key too.
    let mut c = cmd(tool("ssh-keygen"), ["-q", "-k", "-u", "-f"]);
    c.arg(&krl).arg(d.dir.join("id_ed25519.pub"));
    assert!(run(c, b"", T).status.success());
    let out = run(d.ssh(&[], "echo in"), b"", T);
    assert_eq!(out.code(), Some(255));
    d.wait_for_log("is revoked", LOG);
}

#[test]
fn max_startups_drops_connections_beyond_the_unauthenticated_limit() {
    let d = Mshd::builder("startups")
        .toml("max_startups = \"1\"")
        .start();
    // The fixture's readiness probe was connection 1: wait until it is gone, so that the
    // silent connection below is the only unauthenticated one (connection 2).
    d.wait_for_log(": setup failed", LOG);
    let silent = std::net::TcpStream::connect(d.addr).unwrap();
    d.wait_for_log("connection 2 from", LOG);
    let out = run(d.ssh(&[], "echo in"), b"", T);
    assert_eq!(
        out.code(),
        Some(255),
        "a second unauthenticated connection was served"
    );
    d.wait_for_log("not authenticated yet (max_startups 1:100:1)", LOG);
    // Once the slot is free, logins work again.
    drop(silent);
    let start = std::time::Instant::now();
    loop {
        let out = run(d.ssh(&[], "echo in"), b"", T);
        if out.code() == Some(0) {
            assert_eq!(out.stdout_str(), "in\n");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "slot never freed:\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sighup_reopens_a_rotated_audit_log() {
    let dir = TestDir::new("audit-rotate");
    let audit = dir.join("audit.jsonl");
    let d = Mshd::builder("audit-rotate")
        .dir(dir)
        .arg("--audit-log")
        .arg(audit.to_str().unwrap())
        .start();
    assert_eq!(run(d.ssh(&[], "echo first"), b"", T).code(), Some(0));
    d.wait_for_log("connection 2 from 127.0.0.1", LOG);
    let rotated = d.dir.join("audit.jsonl.1");
    std::fs::rename(&audit, &rotated).unwrap();
    d.proc.signal(nix::sys::signal::Signal::SIGHUP);
    d.wait_for_log("configuration reloaded", LOG);
    assert_eq!(run(d.ssh(&[], "exit 9"), b"", T).code(), Some(9));
    let old = std::fs::read_to_string(&rotated).unwrap();
    let start = std::time::Instant::now();
    let new = loop {
        let t = std::fs::read_to_string(&audit).unwrap_or_default();
        if t.contains("\"exit_status\":9") || start.elapsed() > LOG {
            break t;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(old.contains("\"command\":\"echo first\""), "{old}");
    assert!(!old.contains("exit 9"), "{old}");
    assert!(
        new.contains("\"command\":\"exit 9\"") && new.contains("\"exit_status\":9"),
        "{new}"
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&audit).unwrap().mode() & 0o777, 0o600);
}
