//! `msh-keygen sign`, `inspect` and `revoke` against OpenSSH: ssh-keygen reads the
//! certificates msh-keygen writes, `inspect` prints what `ssh-keygen -L` prints (plus one
//! UTC line), OpenSSH's sshd accepts msh-keygen's user certificates and honours the
//! revocation lists it writes; bad input changes no file and says what to do.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use msh_tests::mshd::fingerprint_of;
use msh_tests::sshd::{Sshd, SshdOptions};
use msh_tests::*;

const T: Duration = Duration::from_secs(30);

fn keygen(args: &[&str], paths: &[&Path]) -> Output {
    let mut c = cmd(bin("msh-keygen"), args);
    c.args(paths);
    run(c, b"", T)
}

fn ok(out: Output, what: &str) -> Output {
    assert_eq!(
        out.code(),
        Some(0),
        "{what} failed: {}{}",
        out.stderr,
        out.stdout_str()
    );
    out
}

/// `ssh-keygen -L -f CERT` (the oracle).
fn ssh_keygen_l(cert: &Path) -> String {
    ssh_keygen_l_tz(cert, None)
}

/// `ssh-keygen -L -f CERT` with local times in `tz` (the `TZ` variable), if given.
fn ssh_keygen_l_tz(cert: &Path, tz: Option<&str>) -> String {
    let mut c = cmd(tool("ssh-keygen"), ["-L", "-f"]);
    c.arg(cert);
    if let Some(tz) = tz {
        c.env("TZ", tz);
    }
    let out = run(c, b"", T);
    assert!(out.status.success(), "ssh-keygen -L: {}", out.stderr);
    out.stdout_str()
}

/// `msh-keygen inspect CERT` without the extra `Valid (UTC):` line.
fn inspect_without_utc(cert: &Path) -> String {
    inspect_without_utc_tz(cert, None)
}

/// [`inspect_without_utc`] with local times in `tz`, if given.
fn inspect_without_utc_tz(cert: &Path, tz: Option<&str>) -> String {
    let mut c = cmd(bin("msh-keygen"), ["inspect"]);
    c.arg(cert);
    if let Some(tz) = tz {
        c.env("TZ", tz);
    }
    let out = ok(run(c, b"", T), "msh-keygen inspect");
    let text = out.stdout_str();
    assert_eq!(
        text.matches("        Valid (UTC): ").count(),
        text.matches("        Valid: ").count(),
        "one UTC line per certificate:\n{text}"
    );
    text.lines()
        .filter(|l| !l.starts_with("        Valid (UTC): "))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn pubfile(key: &Path) -> PathBuf {
    msh_common::keys::public_key_path(key)
}

#[test]
fn sign_writes_certificates_that_ssh_keygen_reads_and_inspect_matches_it() {
    let dir = TestDir::new("ck-sign");
    let ca = ssh_keygen_key(&dir, "ca", "ed25519");
    let alice = ssh_keygen_key(&dir, "alice", "ed25519");
    let bob = ssh_keygen_key(&dir, "bob", "ecdsa");
    let out = ok(
        keygen(
            &[
                "sign",
                "--ca",
                ca.to_str().unwrap(),
                "--id",
                "team key",
                "--principals",
                "alice,ops",
                "--validity",
                "20300101000000Z:20310101000000Z",
                "--serial",
                "4242",
                "--force-command",
                "/usr/bin/backup --run",
                "--source-address",
                "10.0.0.0/8,127.0.0.1",
            ],
            &[&pubfile(&alice), &bob],
        ),
        "msh-keygen sign",
    );
    let alice_cert = dir.join("alice-cert.pub");
    let bob_cert = dir.join("bob-cert.pub");
    // What ssh-keygen -s prints, once per key (times in local time, as ssh-keygen).
    let l = ssh_keygen_l(&alice_cert);
    let valid = l
        .lines()
        .find_map(|x| x.trim().strip_prefix("Valid: "))
        .unwrap()
        .to_string();
    assert_eq!(
        out.stderr,
        format!(
            "Signed user key {}: id \"team key\" serial 4242 for alice,ops valid {valid}\n\
             Signed user key {}: id \"team key\" serial 4242 for alice,ops valid {valid}\n",
            alice_cert.display(),
            bob_cert.display()
        )
    );
    assert_eq!(
        std::fs::metadata(&alice_cert).unwrap().permissions().mode() & 0o777,
        0o644
    );
    // ssh-keygen reads every field as written.
    for needle in [
        "Type: ssh-ed25519-cert-v01@openssh.com user certificate",
        "Key ID: \"team key\"",
        "Serial: 4242",
        &format!("Signing CA: ED25519 {}", fingerprint_of(&pubfile(&ca))),
        &format!(
            "Public key: ED25519-CERT {}",
            fingerprint_of(&pubfile(&alice))
        ),
        "                alice\n                ops\n",
        "force-command /usr/bin/backup --run",
        "source-address 10.0.0.0/8,127.0.0.1",
        "permit-X11-forwarding\n                permit-agent-forwarding\n                \
         permit-port-forwarding\n                permit-pty\n                permit-user-rc\n",
    ] {
        assert!(l.contains(needle), "{needle:?} not in ssh-keygen -L:\n{l}");
    }
    assert!(
        ssh_keygen_l(&bob_cert).contains("Type: ecdsa-sha2-nistp256-cert-v01@openssh.com"),
        "{}",
        ssh_keygen_l(&bob_cert)
    );
    // inspect prints the same report, plus the UTC line.
    assert_eq!(inspect_without_utc(&alice_cert), l);
    let full = ok(keygen(&["inspect"], &[&alice_cert]), "inspect").stdout_str();
    assert!(
        full.contains("        Valid (UTC): from 2030-01-01T00:00:00Z to 2031-01-01T00:00:00Z\n"),
        "{full}"
    );

    // A host certificate from an RSA CA for an RSA key: no extensions, as ssh-keygen.
    let host_ca = ssh_keygen_key(&dir, "host_ca", "rsa");
    let host = ssh_keygen_key(&dir, "host", "rsa");
    let out = ok(
        keygen(
            &[
                "sign",
                "--ca",
                host_ca.to_str().unwrap(),
                "--host",
                "--id",
                "web1",
                "--principals",
                "web1.example,10.0.0.5",
            ],
            &[&pubfile(&host)],
        ),
        "msh-keygen sign --host",
    );
    let host_cert = dir.join("host-cert.pub");
    assert_eq!(
        out.stderr,
        format!(
            "Signed host key {}: id \"web1\" serial 0 for web1.example,10.0.0.5 valid forever\n",
            host_cert.display()
        )
    );
    let l = ssh_keygen_l(&host_cert);
    assert!(
        l.contains("Type: ssh-rsa-cert-v01@openssh.com host certificate")
            && l.contains("Valid: forever")
            && l.contains("Extensions: (none)")
            && l.contains("(using rsa-sha2-512)"),
        "{l}"
    );
    assert_eq!(inspect_without_utc(&host_cert), l);
}

#[test]
fn inspect_equals_ssh_keygen_l_on_certificates_ssh_keygen_made() {
    let dir = TestDir::new("ck-inspect");
    let ca = ssh_keygen_key(&dir, "ca", "ecdsa");
    let key = ssh_keygen_key(&dir, "user", "ed25519");
    let cases: &[&[&str]] = &[
        &["-n", "alice", "-z", "1"],
        &["-n", "summer", "-V", "20300701123000:20301231235959"],
        &[
            "-n",
            "alice,bob",
            "-V",
            "always:20350101",
            "-O",
            "critical:foo=bar",
            "-O",
            "extension:custom@example.com=val",
            "-O",
            "no-pty",
            "-O",
            "source-address=127.0.0.0/8",
        ],
        &[
            "-n",
            "x",
            "-V",
            "20300101:forever",
            "-O",
            "clear",
            "-O",
            "permit-pty",
        ],
        &[
            "-h",
            "-n",
            "host.example",
            "-V",
            "-1d:+1w",
            "-z",
            "18446744073709551615",
        ],
        &["-O", "verify-required", "-O", "critical:flagonly"],
    ];
    for (i, extra) in cases.iter().enumerate() {
        let mut c = cmd(tool("ssh-keygen"), ["-q", "-s"]);
        c.arg(&ca)
            .args(["-I", &format!("case {i}")])
            .args(*extra)
            .arg(pubfile(&key));
        let out = run(c, b"", T);
        assert!(out.status.success(), "case {i}: {}", out.stderr);
        let cert = dir.join("user-cert.pub");
        // Local times as ssh-keygen prints them, in zones with and without daylight saving.
        for tz in [None, Some("America/New_York"), Some("Asia/Kolkata")] {
            assert_eq!(
                inspect_without_utc_tz(&cert, tz),
                ssh_keygen_l_tz(&cert, tz),
                "case {i} {extra:?} TZ {tz:?}"
            );
        }
    }
    // Not a certificate: the file and line are named.
    let out = keygen(&["inspect"], &[&pubfile(&key)]);
    assert_eq!(out.code(), Some(1));
    out.assert_stderr_starts_with(&format!(
        "msh-keygen: {}:1: not an OpenSSH certificate",
        pubfile(&key).display()
    ));
}

/// Lists a directory's file names, sorted.
fn files(dir: &TestDir) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(&dir.path)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn sign_refuses_bad_input_and_writes_nothing() {
    let dir = TestDir::new("ck-sign-bad");
    let ca = ssh_keygen_key(&dir, "ca", "ed25519");
    let key = ssh_keygen_key(&dir, "user", "ed25519");
    let key_pub = pubfile(&key);
    let ca_s = ca.to_str().unwrap().to_string();
    let base = ["sign", "--ca", &ca_s, "--id", "x"];
    let before = files(&dir);
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["--principals", "a", "--validity", "+1fortnight"],
            "invalid validity interval \"+1fortnight\"".into(),
        ),
        (vec!["--principals", "a,,b"], "has an empty name".into()),
        (
            vec!["--principals", "a", "--host", "--force-command", "true"],
            "apply to user certificates only".into(),
        ),
        (
            vec!["--principals", "a", "--source-address", "10.0.0.0/99"],
            "10.0.0.0/99".into(),
        ),
        (
            vec!["--principals", "a", "--validity", "20300101:20200101"],
            "end is not after start".into(),
        ),
    ];
    for (extra, needle) in &cases {
        let mut args: Vec<&str> = base.to_vec();
        args.extend(extra);
        let out = keygen(&args, &[&key_pub]);
        assert_eq!(out.code(), Some(1), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.starts_with("msh-keygen: ") && out.stderr.contains(needle.as_str()),
            "{args:?}: {needle:?} not in {}",
            out.stderr
        );
        assert_eq!(files(&dir), before, "{args:?} wrote a file");
    }
    // A missing key names the path; nothing is signed for the others either.
    let missing = dir.join("nope.pub");
    let mut args = base.to_vec();
    args.extend(["--principals", "a"]);
    let out = keygen(&args, &[&key_pub, &missing]);
    assert_eq!(out.code(), Some(1));
    out.assert_stderr_contains(&missing.display().to_string());
    assert_eq!(files(&dir), before);
    // A certificate is not a key to sign.
    ok(keygen(&args, &[&key_pub]), "sign");
    let cert = dir.join("user-cert.pub");
    let cert_text = std::fs::read(&cert).unwrap();
    let out = keygen(&args, &[&cert]);
    assert_eq!(out.code(), Some(1));
    out.assert_stderr_contains("already a certificate");
    assert_eq!(std::fs::read(&cert).unwrap(), cert_text);
    // A CA key others can read is refused, as ssh-keygen refuses it.
    std::fs::set_permissions(&ca, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = keygen(&args, &[&key_pub]);
    assert_eq!(out.code(), Some(1));
    assert!(
        out.stderr.contains(&ca.display().to_string()) && out.stderr.contains("644"),
        "{}",
        out.stderr
    );
}

#[test]
fn encrypted_ca_key_asks_its_passphrase_on_the_terminal_only() {
    let dir = TestDir::new("ck-ca-pass");
    let ca = dir.join("ca");
    let mut c = cmd(
        tool("ssh-keygen"),
        ["-q", "-t", "ed25519", "-N", "s3cret", "-C", "ca", "-f"],
    );
    c.arg(&ca);
    assert!(run(c, b"", T).status.success());
    let key = ssh_keygen_key(&dir, "user", "ed25519");
    let sign = format!(
        "{} sign --ca {} --id pw --principals alice {}",
        bin("msh-keygen").display(),
        ca.display(),
        pubfile(&key).display()
    );
    // No controlling terminal: refused, saying why.
    let mut c = cmd(tool("setsid"), ["-w", "sh", "-c", &sign]);
    c.env_remove("SSH_ASKPASS");
    let out = run(c, b"", T);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("is encrypted") && out.stderr.contains("from a terminal"),
        "{}",
        out.stderr
    );
    assert!(!dir.join("user-cert.pub").exists());
    // On a terminal (script gives one): a wrong passphrase, then the right one.
    let c = cmd(tool("script"), ["-q", "-e", "-c", &sign, "/dev/null"]);
    let out = run(c, b"wrong\ns3cret\n", T);
    let all = format!("{}{}", out.stdout_str(), out.stderr);
    assert_eq!(out.code(), Some(0), "{all}");
    assert!(all.contains("Enter passphrase for CA key"), "{all}");
    assert!(all.contains("Bad passphrase."), "{all}");
    assert!(all.contains("Signed user key"), "{all}");
    assert!(
        ssh_keygen_l(&dir.join("user-cert.pub")).contains("Key ID: \"pw\""),
        "certificate not written"
    );
}

#[test]
fn revoke_records_fingerprints_and_refuses_a_krl() {
    let dir = TestDir::new("ck-revoke");
    let ca = ssh_keygen_key(&dir, "ca", "ed25519");
    let k1 = ssh_keygen_key(&dir, "k1", "ed25519");
    let k2 = ssh_keygen_key(&dir, "k2", "rsa");
    let mut c = cmd(tool("ssh-keygen"), ["-q", "-s"]);
    c.arg(&ca)
        .args(["-I", "k2-cert", "-z", "8", "-n", "u"])
        .arg(pubfile(&k2));
    assert!(run(c, b"", T).status.success());
    let list = dir.join("revoked_keys");
    let list_s = list.to_str().unwrap().to_string();
    // k1 by its private key file, k2 by its certificate.
    let out = ok(
        keygen(
            &["revoke", "--file", &list_s],
            &[&k1, &dir.join("k2-cert.pub")],
        ),
        "revoke",
    );
    let fp1 = fingerprint_of(&pubfile(&k1));
    let fp2 = fingerprint_of(&pubfile(&k2));
    assert_eq!(
        out.stdout_str(),
        format!(
            "Revoked in {list_s}: 256 {fp1} k1 (ED25519)\n\
             Revoked in {list_s}: 2048 {fp2} k2 (RSA) (certificate id \"k2-cert\" serial 8: its \
             key and every certificate of it)\n"
        )
    );
    assert_eq!(
        std::fs::metadata(&list).unwrap().permissions().mode() & 0o777,
        0o644
    );
    // ssh-keygen reads the list: both fingerprints, one line each.
    let mut c = cmd(tool("ssh-keygen"), ["-l", "-f"]);
    c.arg(&list);
    let l = run(c, b"", T).stdout_str();
    assert!(
        l.contains(&fp1) && l.contains(&fp2) && l.lines().count() == 2,
        "{l}"
    );
    // Again: nothing added, said so.
    let out = ok(
        keygen(&["revoke", "--file", &list_s], &[&pubfile(&k1)]),
        "revoke again",
    );
    assert_eq!(
        out.stdout_str(),
        format!("Already revoked in {list_s}: 256 {fp1} k1 (ED25519)\n")
    );
    assert_eq!(
        run(cmd(tool("ssh-keygen"), ["-l", "-f", &list_s]), b"", T)
            .stdout_str()
            .lines()
            .count(),
        2
    );
    // A bad argument changes nothing, and names file:line.
    let junk = dir.write("junk.pub", "# comment\nnot a key\n", 0o644);
    let before = std::fs::read(&list).unwrap();
    let k3 = ssh_keygen_key(&dir, "k3", "ed25519");
    let out = keygen(&["revoke", "--file", &list_s], &[&pubfile(&k3), &junk]);
    assert_eq!(out.code(), Some(1));
    out.assert_stderr_contains(&format!("{}:2:", junk.display()));
    assert_eq!(std::fs::read(&list).unwrap(), before);
    // A corrupted line in the list itself is named with its file:line in words, not the
    // decoder's ("SshKey: length invalid"), and nothing is written.
    let good = std::fs::read_to_string(&list).unwrap();
    let first = good.lines().next().unwrap();
    let (ktype, rest) = first.split_once(' ').unwrap();
    let truncated = format!("{ktype} {}\n", &rest[..20]);
    let corrupt = dir.write("corrupt_list", format!("{good}{truncated}"), 0o644);
    let before = std::fs::read(&corrupt).unwrap();
    let out = keygen(
        &["revoke", "--file", corrupt.to_str().unwrap()],
        &[&pubfile(&k3)],
    );
    assert_eq!(out.code(), Some(1));
    assert!(
        out.stderr.contains(&format!(
            "{}:3: not a public key line: the key data",
            corrupt.display()
        )) && out.stderr.contains("truncated or corrupted in copying?")
            && !out.stderr.contains("SshKey"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read(&corrupt).unwrap(), before);
    // A KRL is left to ssh-keygen -k -u.
    let krl = dir.join("revoked.krl");
    let mut c = cmd(tool("ssh-keygen"), ["-q", "-k", "-f"]);
    c.arg(&krl).arg(pubfile(&k1));
    assert!(run(c, b"", T).status.success());
    let krl_before = std::fs::read(&krl).unwrap();
    let out = keygen(
        &["revoke", "--file", krl.to_str().unwrap()],
        &[&pubfile(&k3)],
    );
    assert_eq!(out.code(), Some(1));
    assert!(
        out.stderr.contains("binary KRL") && out.stderr.contains("ssh-keygen -k -u"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read(&krl).unwrap(), krl_before);
}

#[test]
fn openssh_sshd_accepts_msh_keygen_user_certs_and_its_revocation_list() {
    let dir = TestDir::new("ck-sshd");
    let ca = ssh_keygen_key(&dir, "ca", "ed25519");
    let revoked = dir.write("revoked_keys", "", 0o644);
    let sshd = Sshd::start_with(
        &dir,
        SshdOptions {
            extra_config: vec![
                format!("TrustedUserCAKeys {}", pubfile(&ca).display()),
                format!("RevokedKeys {}", revoked.display()),
            ],
            ..Default::default()
        },
    );
    let id = ssh_keygen_key(&dir, "id", "ed25519");
    let kh = sshd.write_known_hosts(&dir.join("known_hosts"));
    let sign = |principals: &str, key_id: &str, extra: &[&str]| {
        let mut args = vec![
            "sign",
            "--ca",
            ca.to_str().unwrap(),
            "--id",
            key_id,
            "--principals",
            principals,
        ];
        args.extend_from_slice(extra);
        ok(keygen(&args, &[&pubfile(&id)]), "sign");
    };
    // authorized_keys is empty: only the certificate can get in.
    sign(
        &format!("ops,{}", sshd.user),
        "for-sshd",
        &["--serial", "31", "--validity", "-5m:+1h"],
    );
    let out = run(sshd.ssh_command(&id, &kh, "echo in"), b"", T);
    assert_eq!(
        out.code(),
        Some(0),
        "{}\nsshd log:\n{}",
        out.stderr,
        sshd.log()
    );
    assert_eq!(out.stdout_str(), "in\n");
    let log = sshd.log();
    assert!(
        log.contains("Accepted publickey") && log.contains("ID for-sshd (serial 31) CA ED25519"),
        "{log}"
    );
    // force-command from the certificate is obeyed by sshd too.
    sign(&sshd.user, "forced", &["--force-command", "echo forced"]);
    let out = run(sshd.ssh_command(&id, &kh, "echo asked"), b"", T);
    assert_eq!(out.stdout_str(), "forced\n", "{}", out.stderr);
    // A principal that is not the user: refused.
    sign("someone-else", "other", &[]);
    let out = run(sshd.ssh_command(&id, &kh, "echo in"), b"", T);
    assert_eq!(out.code(), Some(255));
    let log = sshd.log();
    assert!(
        log.contains("Failed publickey") && log.contains("ID other (serial 0)"),
        "{log}"
    );
    // Revoked with msh-keygen revoke: sshd refuses.
    sign(&sshd.user, "again", &[]);
    ok(
        keygen(
            &["revoke", "--file", revoked.to_str().unwrap()],
            &[&pubfile(&id)],
        ),
        "revoke",
    );
    let out = run(sshd.ssh_command(&id, &kh, "echo in"), b"", T);
    assert_eq!(out.code(), Some(255), "{}", out.stdout_str());
    let log = sshd.log();
    assert!(
        log.contains(&format!(
            "Authentication key ED25519-CERT {} revoked by file {}",
            fingerprint_of(&pubfile(&id)),
            revoked.display()
        )),
        "{log}"
    );
}

#[test]
fn help_of_the_certificate_commands_has_examples() {
    // Each subcommand's help shows its own examples, not every command's.
    for (sub, own) in [
        ("sign", "msh-keygen sign --ca"),
        ("inspect", "msh-keygen inspect"),
        ("revoke", "msh-keygen revoke --file"),
    ] {
        let out = ok(keygen(&[sub, "--help"], &[]), sub);
        let text = out.stdout_str();
        let others = [
            "msh-keygen generate -f",
            "msh-keygen scan",
            "msh-keygen known-hosts",
        ];
        assert!(
            text.contains("Examples:")
                && text.contains(own)
                && !others.iter().any(|o| text.contains(o)),
            "{sub}:\n{text}"
        );
    }
    let out = keygen(&["sign", "--ca", "x", "--id", "y"], &[]);
    assert_eq!(out.code(), Some(1));
    out.assert_stderr_contains("--principals");
}
