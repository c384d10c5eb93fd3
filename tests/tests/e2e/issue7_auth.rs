//! Issue 7, authentication and logging: each test drives real mshd from outside (OpenSSH
//! ssh, paramiko through tests/probes/sshprobe.py, real local users) and checks what a user
//! or an administrator would notice.

use std::path::{Path, PathBuf};
use std::time::Duration;

use msh_tests::mshd::{probe, Mshd};
use msh_tests::{openssh_command, run, ssh_keygen_ed25519};

const T: Duration = Duration::from_secs(60);
const LOG: Duration = Duration::from_secs(10);

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Waits until mshd's log holds `n` lines containing `needle` (panics after `T`).
fn wait_for_count(d: &Mshd, needle: &str, n: usize) -> String {
    d.wait_for_log_count(needle, n, T)
}

// ---------------------------------------------------------------- item 5: log forging

#[test]
fn a_user_name_cannot_forge_log_lines_or_flood_the_log() {
    let d = Mshd::builder("logforge").audit_log().start();
    let key = ssh_keygen_ed25519(&d.dir, "not_authorized");
    let key = key.display().to_string();
    let port = d.port.to_string();
    let attempt = |names: &[&str]| {
        let mut args = vec!["auth-names", "127.0.0.1", &port, &key];
        let hexed: Vec<String> = names.iter().map(|n| hex(n)).collect();
        args.extend(hexed.iter().map(String::as_str));
        probe(&args, T)
    };
    // The reference: how many lines one refused connection writes for a plain unknown name.
    let before = d.log_text().lines().count();
    attempt(&["msh-plain-unknown"]);
    let text = wait_for_count(&d, " ended: ", 1);
    let per_connection = text.lines().count() - before;

    let forged = "x\nFORGED-LINE accepted publickey for root\r\x1b[2J\u{202e}tail";
    let long = "L".repeat(10_000);
    let before = text.lines().count();
    let r = attempt(&[forged, &long]);
    let text = wait_for_count(&d, " ended: ", 3);
    assert_eq!(
        text.lines().count() - before,
        2 * per_connection,
        "the two connections wrote a different number of lines than a plain one ({per_connection} each):\n{text}"
    );
    assert!(
        text.lines().all(|l| !l.starts_with("FORGED")),
        "a forged line:\n{text}"
    );
    assert!(
        text.contains(
            "rejected publickey for x\\nFORGED-LINE accepted publickey for root\\r\\x1b[2J\\u{202e}tail"
        ),
        "the name is not shown escaped:\n{text}"
    );
    assert!(!text.contains('\x1b'), "an escape sequence reached the log");
    let capped = format!("{}...[9900 more characters]", "L".repeat(100));
    assert!(text.contains(&capped), "long name not capped:\n{text}");
    let longest = text.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 1000, "a {longest}-byte log line");
    for res in r["results"].as_array().unwrap() {
        assert_eq!(res["signed"]["type"], 51, "{r}");
    }

    // The audit log keeps the name as sent (JSON-escaped), capped at 100 characters.
    let ev = d.audit_events();
    let users: Vec<&str> = ev
        .iter()
        .filter(|e| e["event"] == "auth")
        .filter_map(|e| e["user"].as_str())
        .collect();
    assert!(users.contains(&forged), "{users:?}");
    assert!(users.contains(&capped.as_str()), "{users:?}");
    assert!(users.iter().all(|u| u.chars().count() <= 130), "{users:?}");
    let raw = std::fs::read_to_string(d.audit_path()).unwrap();
    assert!(
        raw.lines().all(|l| !l.starts_with("FORGED")) && raw.lines().all(|l| l.len() < 2000),
        "{raw}"
    );

    // The client's version line is its own text too: logged escaped and capped.
    let version = format!("SSH-2.0-evil\x1b[2J\x07{}", "v".repeat(200));
    let mut c = msh_tests::mshd::probe_cmd(&[
        "login-exec",
        "127.0.0.1",
        &port,
        &d.user,
        &d.client_key.display().to_string(),
        "true",
    ]);
    c.env("MSHPROBE_CLIENT_VERSION", &version);
    let out = run(c, b"", T);
    assert!(out.stdout_str().contains("\"type\": 52"), "{}", out.stderr);
    let text = d.wait_for_log("client software", LOG);
    assert!(
        text.contains("client software \"SSH-2.0-evil\\x1b[2J\\x07vvv")
            && text.contains("more characters]\""),
        "{text}"
    );
    assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text}");
}

// ---------------------------------------------------------------- item 4: enumeration

#[test]
fn with_a_trusted_user_ca_an_unknown_key_gets_the_same_answer_for_any_user() {
    let dir = msh_tests::TestDir::new("enum-ca");
    let ca = ssh_keygen_ed25519(&dir, "user_ca");
    let d = Mshd::builder("enum-ca")
        .dir(dir)
        .trusted_user_ca(&ca)
        .audit_log()
        .start();
    let wrong = ssh_keygen_ed25519(&d.dir, "not_authorized");
    let missing = "msh-no-such-user-e4";
    // OpenSSH's client: what it prints for the existing and for the missing user.
    let mut stderr = Vec::new();
    for user in [d.user.as_str(), missing] {
        let out = run(d.ssh_with_key(user, &wrong, &["-v"], "echo in"), b"", T);
        assert_eq!(out.code(), Some(255), "{user} got in: {}", out.stderr);
        assert!(out.stdout.is_empty());
        out.assert_stderr_contains("Permission denied");
        stderr.push(out.stderr.contains("Server accepts key"));
    }
    assert_eq!(
        stderr[0], stderr[1],
        "ssh -v: \"Server accepts key\" for the existing user: {}, for the missing one: {}",
        stderr[0], stderr[1]
    );
    // The same on the wire, offer and signed request, from paramiko.
    let port = d.port.to_string();
    let key = wrong.display().to_string();
    let r = probe(
        &[
            "auth-names",
            "127.0.0.1",
            &port,
            &key,
            &hex(&d.user),
            &hex(missing),
        ],
        T,
    );
    let res = r["results"].as_array().unwrap();
    assert_eq!(res[0], res[1], "existing vs missing user: {r}");
    assert_eq!(res[0]["signed"]["type"], 51, "{r}");
    // Both refused after the signature, each with its real reason in the log.
    let log = wait_for_count(&d, "rejected publickey", 2);
    assert!(
        log.contains(&format!("no such local user \"{missing}\"")),
        "{log}"
    );
}

// ---------------------------------------------------------------- item 16: config errors

#[test]
fn every_bad_config_value_is_reported_with_file_line_and_key() {
    let dir = msh_tests::TestDir::new("cfg-errors");
    // (the bad line, the key named, words of what is wrong or expected)
    let cases: &[(&str, &str, &str)] = &[
        (
            "max_auth_tries = \"six\"",
            "max_auth_tries",
            "expected a whole number",
        ),
        (
            "max_auth_tries = -1",
            "max_auth_tries",
            "expected a whole number",
        ),
        ("max_auth_tries = 0", "max_auth_tries", "must be at least 1"),
        (
            "audit_syslog = \"rsyslog\"",
            "audit_syslog",
            "is not one of \"off\", \"journald\"",
        ),
        (
            "audit_syslog_socket = \"dev/log\"\naudit_syslog = \"syslog\"",
            "audit_syslog_socket",
            "not an absolute path",
        ),
        (
            "max_sessions = 1.5",
            "max_sessions",
            "expected a whole number",
        ),
        (
            "per_source_max_startups = \"5\"",
            "per_source_max_startups",
            "expected a whole number",
        ),
        (
            "login_grace_time = \"soon\"",
            "login_grace_time",
            "expected e.g. \"120s\"",
        ),
        (
            "shutdown_grace_time = \"x\"",
            "shutdown_grace_time",
            "invalid duration",
        ),
        (
            "max_startups = \"10:30\"",
            "max_startups",
            "expected \"10\" or \"10:30:100\"",
        ),
        ("deny_users = \"root\"", "deny_users", "expected a list"),
        (
            "post_quantum_only = 1",
            "post_quantum_only",
            "expected true or false",
        ),
        ("listen = \"127.0.0.1:22\"", "listen", "expected a list"),
        ("listen = [\"nowhere\"]", "listen", "expected ADDR:PORT"),
        ("host_keys = []", "host_keys", "at least one host key"),
        ("allow_users = [1]", "allow_users", "expected a string"),
        (
            "authorized_keys_files = [\"%x/keys\"]",
            "authorized_keys_files",
            "unknown token %x",
        ),
        (
            "authorized_principals_file = \"%q\"",
            "authorized_principals_file",
            "unknown token %q",
        ),
        ("audit_log = 5", "audit_log", "expected a string"),
        (
            "subsystems = { sftp = 3 }",
            "subsystems.sftp",
            "expected a string",
        ),
        (
            "subsystems = { sftp = \" \" }",
            "subsystems.sftp",
            "empty command",
        ),
        ("subsystems = 3", "subsystems", "expected a table"),
        ("no_such_key = 1", "no_such_key", "unknown key"),
        (
            "deny_users = [\"al@db.example.com\"]",
            "deny_users",
            "does not resolve names",
        ),
        (
            "allow_users = [\"al@10.0.0.0/33\"]",
            "allow_users",
            "bad network",
        ),
        (
            "allow_users = [\"al@\"]",
            "allow_users",
            "expected USER@HOSTS",
        ),
    ];
    let mut failures = Vec::new();
    for (i, (line, key, words)) in cases.iter().enumerate() {
        // The bad line is line 4, after a comment, a good key and a blank line.
        let text = format!(
            "# mshd test {i}\nstrict_modes = true # good\n\n{line}\naccept_env = [\"LANG\"]\n"
        );
        let path = dir.write(&format!("mshd{i}.toml"), text, 0o644);
        let mut c = msh_tests::cmd(msh_tests::bin("mshd"), ["--check-config", "--config"]);
        c.arg(&path);
        let out = run(c, b"", T);
        let want = format!("{}:4: key `{key}`: ", path.display());
        if out.code() != Some(1) || !out.stderr.contains(&want) || !out.stderr.contains(words) {
            failures.push(format!(
                "{line:?}: exit {:?}, want {want:?} and {words:?}, got: {}",
                out.code(),
                out.stderr.trim()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------- item 12: SHA-1 CA signatures

/// Signs `key_pub` with the RSA CA `ca` using signature algorithm `alg` (`ssh-rsa` for
/// SHA-1), as `-h` host certificate when `host`; returns the certificate path.
fn rsa_sign(ca: &Path, key_pub: &Path, principals: &str, host: bool, alg: &str) -> PathBuf {
    let mut extra = vec!["-t", alg, "-V", "-5m:+1h"];
    if host {
        extra.push("-h");
    }
    msh_tests::ssh_keygen_sign(ca, key_pub, "sha1-test", principals, &extra);
    let cert = msh_common::certs::cert_path(key_pub);
    let mut c = msh_tests::cmd(msh_tests::tool("ssh-keygen"), ["-L", "-f"]);
    c.arg(&cert);
    let listed = run(c, b"", T).stdout_str();
    assert!(listed.contains(&format!("(using {alg})")), "{listed}");
    cert
}

#[test]
fn a_user_certificate_with_a_sha1_ca_signature_is_refused_naming_the_algorithm() {
    let dir = msh_tests::TestDir::new("sha1-user");
    let ca = msh_tests::ssh_keygen_key(&dir, "rsa_ca", "rsa");
    let d = Mshd::builder("sha1-user")
        .dir(dir)
        .certificates_only(&ca)
        .start();
    let key_pub = d.dir.join("id_ed25519.pub");
    rsa_sign(&ca, &key_pub, &d.user, false, "ssh-rsa");
    let out = run(d.ssh(&[], "echo in"), b"", T);
    assert_eq!(out.code(), Some(255), "SHA-1 CA signature accepted");
    assert!(out.stdout.is_empty());
    let log = d.wait_for_log("rejected publickey", LOG);
    assert!(
        log.contains("the CA signed this certificate with ssh-rsa (SHA-1), which is refused"),
        "{log}"
    );
    // The same CA signing with SHA-2 is accepted.
    rsa_sign(&ca, &key_pub, &d.user, false, "rsa-sha2-512");
    let out = run(d.ssh(&[], "echo in"), b"", T);
    d.assert_ok(&out);
    assert_eq!(out.stdout_str(), "in\n");
}

/// mshd serving a fresh host key with a host certificate for 127.0.0.1 signed by the RSA CA
/// in `dir` with `alg`; its known_hosts trusts only that CA.
fn mshd_with_rsa_host_cert(name: &str, alg: &str) -> Mshd {
    let dir = msh_tests::TestDir::new(name);
    let ca = msh_tests::ssh_keygen_key(&dir, "host_ca", "rsa");
    let hk = ssh_keygen_ed25519(&dir, "cert_host_key");
    let cert = rsa_sign(&ca, &dir.join("cert_host_key.pub"), "127.0.0.1", true, alg);
    let d = Mshd::builder(name)
        .dir(dir)
        .host_key_with_certificate(&hk, &cert)
        .start();
    let ca_line = std::fs::read_to_string(d.dir.join("host_ca.pub")).unwrap();
    std::fs::write(
        &d.known_hosts,
        format!("@cert-authority [127.0.0.1]:* {ca_line}"),
    )
    .unwrap();
    d
}

fn msh_login(d: &Mshd) -> msh_tests::Output {
    let mut c = crate::msh_to_sshd::msh_cmd(
        &d.dir,
        d.port,
        &d.user,
        &d.known_hosts,
        &["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"],
    );
    c.arg("-i")
        .arg(&d.client_key)
        .args(["127.0.0.1", "echo ok"]);
    run(c, b"", T)
}

#[test]
fn a_host_certificate_with_a_sha1_ca_signature_is_refused_by_msh_as_by_ssh() {
    let d = mshd_with_rsa_host_cert("sha1-host", "ssh-rsa");
    let out = msh_login(&d);
    assert_eq!(out.code(), Some(255), "msh accepted: {}", out.stderr);
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr
            .contains("host certificate verification failed for [127.0.0.1]:")
            && out.stderr.contains("ssh-rsa (SHA-1)"),
        "{}",
        out.stderr
    );
    // OpenSSH's ssh, the reference, refuses it too.
    let out = run(d.ssh(&[], "echo ok"), b"", T);
    assert_eq!(out.code(), Some(255), "ssh accepted: {}", out.stderr);

    let d = mshd_with_rsa_host_cert("sha2-host", "rsa-sha2-512");
    let out = msh_login(&d);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout_str(), "ok\n");
}

// ---------------------------------------------------------------- item 10: disabled accounts

fn usermod(args: &[&str]) {
    let out = run(msh_tests::cmd(msh_tests::tool("usermod"), args), b"", T);
    assert!(out.status.success(), "usermod {args:?}: {}", out.stderr);
}

#[test]
fn locked_and_expired_accounts_are_refused_as_by_sshd_without_pam() {
    use msh_tests::users::{require_root, TestUser};
    if !require_root("locked_and_expired_accounts_are_refused_as_by_sshd_without_pam") {
        return;
    }
    let normal = TestUser::new();
    let locked = TestUser::new();
    let expired = TestUser::new();
    let no_shell = TestUser::new();
    usermod(&["-L", &locked.name]);
    usermod(&["--expiredate", "1970-01-02", &expired.name]);
    usermod(&["-s", "/nonexistent/shell", &no_shell.name]);

    let d = Mshd::builder("disabled").home_authorized_keys().start();
    for u in [&normal, &locked, &expired, &no_shell] {
        u.write_authorized_keys(&format!("{}\n", d.client_public));
    }
    // The reference: OpenSSH's sshd without PAM (the fixture has UsePAM no), same key.
    let sshd = msh_tests::sshd::Sshd::start(&d.dir);
    sshd.authorize(&d.client_key);
    // sshd reads it as the user logging in.
    msh_tests::mshd::set_mode(&sshd.authorized_keys, 0o644);
    let sshd_kh = sshd.write_known_hosts(&d.dir.join("sshd_known_hosts"));

    for (u, ok) in [
        (&normal, true),
        (&locked, false),
        (&expired, false),
        (&no_shell, false),
    ] {
        let out = run(
            openssh_command(
                d.port,
                &u.name,
                &d.client_key,
                &d.known_hosts,
                &[],
                "id -un",
            ),
            b"",
            T,
        );
        let oracle = run(
            openssh_command(sshd.port, &u.name, &d.client_key, &sshd_kh, &[], "id -un"),
            b"",
            T,
        );
        assert_eq!(
            oracle.code(),
            Some(if ok { 0 } else { 255 }),
            "sshd for {}: {}\n{}",
            u.name,
            oracle.stderr,
            sshd.log()
        );
        if ok {
            d.assert_ok(&out);
            assert_eq!(out.stdout_str(), format!("{}\n", u.name));
        } else {
            assert_eq!(out.code(), Some(255), "{} got in: {}", u.name, d.log_text());
            assert!(out.stdout.is_empty());
        }
    }
    let log = d.wait_for_log(
        &format!("account \"{}\" expired on 1970-01-02", expired.name),
        LOG,
    );
    assert!(
        log.contains(&format!("account \"{}\" is locked", locked.name))
            && log.contains("login shell /nonexistent/shell does not exist"),
        "{log}"
    );
    let slog = sshd.log();
    assert!(
        slog.contains(&format!(
            "User {} not allowed because account is locked",
            locked.name
        )) && slog.contains(&format!("Account {} has expired", expired.name)),
        "{slog}"
    );
}

// ---------------------------------------------------------------- item 9: allow/deny users

#[test]
fn allow_and_deny_users_take_user_at_address_patterns_as_sshd() {
    use msh_tests::users::{require_root, TestUser};
    if !require_root("allow_and_deny_users_take_user_at_address_patterns_as_sshd") {
        return;
    }
    let (u, v, w) = (TestUser::new(), TestUser::new(), TestUser::new());
    let d = Mshd::builder("userhost")
        .home_authorized_keys()
        .toml(&format!(
            "allow_users = [\"{}@127.0.0.2\", \"{}\", \"{}\"]",
            u.name, v.name, w.name
        ))
        .toml(&format!("deny_users = [\"{}@127.0.0.0/8\"]", w.name))
        .start();
    for x in [&u, &v, &w] {
        x.write_authorized_keys(&format!("{}\n", d.client_public));
    }
    let sshd = msh_tests::sshd::Sshd::start_with(
        &d.dir,
        msh_tests::sshd::SshdOptions {
            extra_config: vec![
                format!("AllowUsers {}@127.0.0.2 {} {}", u.name, v.name, w.name),
                format!("DenyUsers {}@127.0.0.0/8", w.name),
            ],
            ..Default::default()
        },
    );
    sshd.authorize(&d.client_key);
    msh_tests::mshd::set_mode(&sshd.authorized_keys, 0o644);
    let sshd_kh = sshd.write_known_hosts(&d.dir.join("sshd_known_hosts"));
    let from2: &[&str] = &["-b", "127.0.0.2"];
    for (x, opts, ok) in [
        (&u, &[][..], false),
        (&u, from2, true),
        (&v, &[][..], true),
        (&w, &[][..], false),
        (&w, from2, false),
    ] {
        let out = run(
            openssh_command(
                d.port,
                &x.name,
                &d.client_key,
                &d.known_hosts,
                opts,
                "id -un",
            ),
            b"",
            T,
        );
        let oracle = run(
            openssh_command(sshd.port, &x.name, &d.client_key, &sshd_kh, opts, "id -un"),
            b"",
            T,
        );
        let want = if ok { Some(0) } else { Some(255) };
        assert_eq!(
            oracle.code(),
            want,
            "sshd, {} {opts:?}: {}",
            x.name,
            oracle.stderr
        );
        assert_eq!(
            out.code(),
            want,
            "mshd, {} {opts:?}: {}\n{}",
            x.name,
            out.stderr,
            d.log_text()
        );
    }
    let log = d.log_text();
    assert!(
        log.contains(&format!(
            "user \"{}\" from 127.0.0.1 is not in allow_users",
            u.name
        )) && log.contains(&format!(
            "user \"{}\" from 127.0.0.2 is in deny_users",
            w.name
        )),
        "{log}"
    );
}

// ---------------------------------------------------------------- item 11: env requests

#[test]
fn env_requests_are_capped_per_session_as_sshd_and_the_session_still_works() {
    let d = Mshd::builder("envcap")
        .toml("accept_env = [\"LANG\", \"LC_*\"]")
        .start();
    let port = d.port.to_string();
    let key = d.client_key.display().to_string();
    let r = probe(&["env-flood", "127.0.0.1", &port, &d.user, &key, "300"], T);
    assert_eq!(r["success"], 128, "{r}");
    assert_eq!(r["failure"], 300 - 128, "{r}");
    assert_eq!(r["first_failure"], 128, "{r}");
    assert_eq!(
        r["again"], 99,
        "re-setting a variable is not a new one: {r}"
    );
    assert_eq!(r["big_value"], 100, "a 20 kB value was kept: {r}");
    assert_eq!(r["long_name"], 100, "a 300-byte name was kept: {r}");
    assert_eq!(r["stdout"], "128\nreplaced\n", "{r}");
    let log = d.wait_for_log("already has 128 variables", LOG);
    assert!(
        log.contains("value of 20000 bytes (at most 16384)"),
        "{log}"
    );

    // OpenSSH's ssh sending 200 variables (SetEnv) gets a working session with 128 of them.
    let vars: Vec<String> = (0..200).map(|i| format!("LC_SSHV{i}=x")).collect();
    let setenv = format!("SetEnv={}", vars.join(" "));
    let out = run(
        d.ssh(
            &["-o", &setenv],
            "env | grep -c '^LC_SSHV'; echo still-works",
        ),
        b"",
        T,
    );
    d.assert_ok(&out);
    assert_eq!(out.stdout_str(), "128\nstill-works\n", "{}", out.stderr);
}

// ---------------------------------------------------------------- item 15: max_auth_tries

/// The outcome of each step of a paramiko auth sequence (see sshprobe.py auth-seq).
fn auth_seq(port: u16, user: &str, steps: &[String]) -> serde_json::Value {
    let port = port.to_string();
    let mut args = vec!["auth-seq", "127.0.0.1", &port, user];
    args.extend(steps.iter().map(String::as_str));
    probe(&args, T)["steps"].clone()
}

/// Replies until the connection closed; the reply to the request that closed it is left out
/// (sshd closes without answering it, mshd answers FAILURE and then closes).
fn normalized(steps: &serde_json::Value) -> Vec<String> {
    steps
        .as_array()
        .unwrap()
        .iter()
        .map(|s| match s["closed"].as_bool() {
            Some(true) => format!("{}: closed", s["step"].as_str().unwrap_or("?")),
            _ => format!("{}: {}", s["step"].as_str().unwrap_or("?"), s["reply"]),
        })
        .collect()
}

#[test]
fn max_auth_tries_counts_as_sshd_for_openssh_and_paramiko_sequences() {
    let d = Mshd::builder("maxtries").toml("max_auth_tries = 3").start();
    let sshd = msh_tests::sshd::Sshd::start_with(
        &d.dir,
        msh_tests::sshd::SshdOptions {
            extra_config: vec!["MaxAuthTries 3".into()],
            ..Default::default()
        },
    );
    sshd.authorize(&d.client_key);
    let sshd_kh = sshd.write_known_hosts(&d.dir.join("sshd_known_hosts"));
    let wrong: Vec<PathBuf> = (1..=3)
        .map(|i| ssh_keygen_ed25519(&d.dir, &format!("wrong{i}")))
        .collect();
    let right = d.client_key.clone();

    // OpenSSH's ssh offering keys in order (IdentitiesOnly): the initial `none` is free.
    let sequences: [(&str, Vec<&Path>); 2] = [
        (
            "two wrong keys, then the right one",
            vec![&wrong[0], &wrong[1], &right],
        ),
        (
            "three wrong keys, then the right one",
            vec![&wrong[0], &wrong[1], &wrong[2], &right],
        ),
    ];
    for (what, keys) in &sequences {
        let mut opts: Vec<String> = Vec::new();
        for k in keys {
            opts.push("-i".into());
            opts.push(k.display().to_string());
        }
        let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
        let mshd_out = run(
            openssh_command(d.port, &d.user, &wrong[0], &d.known_hosts, &opts, "echo in"),
            b"",
            T,
        );
        let sshd_out = run(
            openssh_command(sshd.port, &sshd.user, &wrong[0], &sshd_kh, &opts, "echo in"),
            b"",
            T,
        );
        assert_eq!(
            mshd_out.code(),
            sshd_out.code(),
            "{what}: mshd {:?} ({}), sshd {:?} ({})",
            mshd_out.code(),
            mshd_out.stderr,
            sshd_out.code(),
            sshd_out.stderr
        );
        let too_many = "Too many authentication failures";
        assert_eq!(
            mshd_out.stderr.contains(too_many),
            sshd_out.stderr.contains(too_many),
            "{what}: mshd: {}\nsshd: {}",
            mshd_out.stderr,
            sshd_out.stderr
        );
        println!("{what}: exit {:?} from both", sshd_out.code());
    }

    // paramiko: queries answered PK_OK are not failures; refused queries and signatures are;
    // a second `none` is.
    let k = |kind: &str, p: &Path| format!("{kind}:{}", p.display());
    let (w1, w2, w3) = (&wrong[0], &wrong[1], &wrong[2]);
    let paramiko: Vec<(&str, Vec<String>)> = vec![
        (
            "signed wrong keys",
            vec![
                k("sign", w1),
                k("sign", w2),
                k("sign", w3),
                k("sign", &right),
            ],
        ),
        (
            "none, none, wrong offers",
            vec![
                "none".into(),
                "none".into(),
                k("offer", w1),
                k("offer", w2),
                k("sign", &right),
            ],
        ),
        (
            "PK_OK queries are free",
            vec![
                k("offer", &right),
                k("offer", &right),
                k("offer", &right),
                k("offer", w1),
                k("offer", &right),
                k("sign", w2),
                k("sign", &right),
            ],
        ),
        (
            "wrong offers then the right key",
            vec![
                "none".into(),
                k("offer", w1),
                k("sign", w2),
                k("offer", &right),
                k("sign", &right),
            ],
        ),
    ];
    for (what, steps) in &paramiko {
        let m = normalized(&auth_seq(d.port, &d.user, steps));
        let o = normalized(&auth_seq(sshd.port, &sshd.user, steps));
        assert_eq!(m, o, "{what}: mshd vs sshd");
        println!("{what}: {o:?}");
    }
    d.wait_for_log("maximum authentication attempts exceeded", LOG);
}

// ---------------------------------------------------------------- item 17: bursts

/// Runs `n` commands at once (each in a thread, each with a timeout); their outputs.
fn all_at_once(cmds: Vec<std::process::Command>) -> Vec<msh_tests::Output> {
    let threads: Vec<_> = cmds
        .into_iter()
        .map(|c| std::thread::spawn(move || run(c, b"", Duration::from_secs(120))))
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// Runs `cmds` (client `who`) all at once: each must exit 0 printing `burst-I`.
fn assert_every_burst_login_ran(who: &str, cmds: Vec<std::process::Command>) {
    let n = cmds.len();
    let failed: Vec<String> = all_at_once(cmds)
        .iter()
        .enumerate()
        .filter(|(i, o)| o.code() != Some(0) || o.stdout_str() != format!("burst-{i}\n"))
        .map(|(i, o)| format!("{who} {i}: {:?} {}", o.code(), o.stderr.trim()))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {n} failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

#[test]
fn a_burst_of_40_logins_from_one_address_waits_for_slots_instead_of_failing() {
    let d = Mshd::builder("burst")
        .toml("max_startups = \"100:30:200\"")
        .start();
    // msh, as a deploy script runs it: a new host key accepted by all 40 at once.
    std::fs::write(&d.known_hosts, "").unwrap();
    let cmds: Vec<std::process::Command> = (0..40)
        .map(|i| {
            let mut c = crate::msh_to_sshd::msh_cmd(
                &d.dir,
                d.port,
                &d.user,
                &d.known_hosts,
                &[
                    "-o",
                    "StrictHostKeyChecking=accept-new",
                    "-o",
                    "BatchMode=yes",
                ],
            );
            c.arg("-i")
                .arg(&d.client_key)
                .args(["127.0.0.1", &format!("echo burst-{i}")]);
            c
        })
        .collect();
    assert_every_burst_login_ran("msh", cmds);

    // The same with OpenSSH's ssh.
    let cmds: Vec<std::process::Command> = (0..40)
        .map(|i| d.ssh(&["-T"], &format!("echo burst-{i}")))
        .collect();
    assert_every_burst_login_ran("ssh", cmds);
    assert!(
        !d.log_text().contains("dropping connection"),
        "{}",
        d.log_text()
    );
}
