//! Host key rotation (issue 12): UpdateHostKeys. A server holding two host keys announces
//! both after authentication (`hostkeys-00@openssh.com`); a client that verified it through
//! a known_hosts key asks for proofs of the one it does not know and records it, and drops
//! keys the server no longer has. Client side against a real OpenSSH sshd (which announces
//! its keys by default); what msh writes is then used by OpenSSH's `ssh` to connect.

use std::path::Path;

use msh_tests::mshd::Mshd;
use msh_tests::sshd::SshdOptions;
use msh_tests::*;

use crate::msh_to_sshd::{other_key_line, remote_stderr, setup_with, Setup, T};

/// sshd with an ed25519 and an ecdsa host key; the known_hosts file trusts only ed25519.
fn two_key_sshd(name: &str) -> Setup {
    let s = setup_with(
        name,
        SshdOptions {
            host_key_types: vec!["ed25519".into(), "ecdsa".into()],
            ..SshdOptions::default()
        },
    );
    std::fs::write(&s.kh, format!("{} {}\n", s.name(), s.host_key_line())).unwrap();
    s
}

fn ecdsa_line(s: &Setup) -> String {
    format!("{} {}\n", s.name(), s.sshd.host_key("ecdsa").public_line)
}

fn ed25519_line(s: &Setup) -> String {
    format!("{} {}\n", s.name(), s.host_key_line())
}

/// OpenSSH's ssh, restricted to the ecdsa host key, strict, with `kh`: succeeds only if
/// `kh` holds the right ecdsa key.
fn ssh_with_ecdsa_only(s: &Setup, kh: &Path) -> Output {
    run(
        openssh_command(
            s.sshd.port,
            &s.sshd.user,
            &s.id,
            kh,
            &["-o", "HostKeyAlgorithms=ecdsa-sha2-nistp256"],
            "echo via-ecdsa",
        ),
        b"",
        T,
    )
}

/// `msh -o UpdateHostKeys=MODE 127.0.0.1 COMMAND` to the fixture's sshd, which must succeed.
fn msh_update_host_keys(s: &Setup, mode: &str, command: &str) -> Output {
    let opt = format!("UpdateHostKeys={mode}");
    let out = run(s.msh(&["-o", &opt, "127.0.0.1", command]), b"", T);
    s.sshd.assert_ok(&out);
    out
}

#[test]
fn msh_learns_the_second_host_key_of_sshd() {
    let s = two_key_sshd("hkr-msh-learns");
    // Before: OpenSSH cannot use the ecdsa key (it is unknown).
    assert_ne!(ssh_with_ecdsa_only(&s, &s.kh).code(), Some(0));

    let out = msh_update_host_keys(&s, "yes", "echo hi");
    assert_eq!(out.stdout, b"hi\n");
    let ecdsa_fp = msh_common::keys::fingerprint(&s.sshd.host_key("ecdsa").public);
    assert!(
        out.stderr.contains(&format!(
            "learned new host key for {}: ECDSA {ecdsa_fp}",
            s.name()
        )),
        "{}",
        out.stderr
    );
    let text = std::fs::read_to_string(&s.kh).unwrap();
    assert_eq!(text, format!("{}{}", ed25519_line(&s), ecdsa_line(&s)));

    // The recorded line is one OpenSSH uses.
    let out = ssh_with_ecdsa_only(&s, &s.kh);
    s.sshd.assert_ok(&out);
    assert_eq!(out.stdout, b"via-ecdsa\n");

    // Nothing more to learn: the file stays as it is, and msh says nothing.
    let out = msh_update_host_keys(&s, "yes", "true");
    assert!(!out.stderr.contains("host key"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&s.kh).unwrap(), text);
}

/// `msh EXTRA... 127.0.0.1 true` to the fixture's sshd with no UserKnownHostsFile: msh uses
/// ~/.ssh/known_hosts (HOME is the test directory).
fn msh_with_default_known_hosts(s: &Setup, extra: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(bin("msh"));
    c.args(extra)
        .args(["-p", &s.sshd.port.to_string(), "-l", &s.sshd.user])
        .args([
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
        ])
        .arg("-i")
        .arg(&s.id)
        .args(["127.0.0.1", "true"])
        .env("HOME", &s.dir.path)
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("RUST_LOG");
    c
}

/// ssh's default: UpdateHostKeys is on when the known_hosts file is the default one.
#[test]
fn msh_updates_the_default_known_hosts_file_by_default() {
    let s = two_key_sshd("hkr-msh-default");
    let ssh_dir = s.dir.join(".ssh");
    std::fs::create_dir_all(&ssh_dir).unwrap();
    let kh = ssh_dir.join("known_hosts");
    std::fs::write(&kh, ed25519_line(&s)).unwrap();

    let out = run(msh_with_default_known_hosts(&s, &[]), b"", T);
    s.sshd.assert_ok(&out);
    assert_eq!(
        std::fs::read_to_string(&kh).unwrap(),
        format!("{}{}", ed25519_line(&s), ecdsa_line(&s))
    );

    // With -q the update is made without a word.
    std::fs::write(&kh, ed25519_line(&s)).unwrap();
    let out = run(msh_with_default_known_hosts(&s, &["-q"]), b"", T);
    s.sshd.assert_ok(&out);
    // (sshd's -e copies its own debug lines to the client's stderr: only msh's words count.)
    assert!(
        !remote_stderr(&out.stderr).contains("msh:"),
        "-q printed: {:?}",
        out.stderr
    );
    assert!(std::fs::read_to_string(&kh)
        .unwrap()
        .contains(&ecdsa_line(&s)));
}

#[test]
fn msh_changes_nothing_when_update_host_keys_is_off() {
    let s = two_key_sshd("hkr-msh-off");
    let before = std::fs::read_to_string(&s.kh).unwrap();
    // Explicitly off, and off by default with a UserKnownHostsFile of one's own (as ssh).
    for opts in [&["-o", "UpdateHostKeys=no"][..], &[][..]] {
        let mut args = opts.to_vec();
        args.extend(["127.0.0.1", "true"]);
        let out = run(s.msh(&args), b"", T);
        s.sshd.assert_ok(&out);
        assert_eq!(std::fs::read_to_string(&s.kh).unwrap(), before, "{opts:?}");
    }
    // ask with BatchMode is no.
    msh_update_host_keys(&s, "ask", "true");
    assert_eq!(std::fs::read_to_string(&s.kh).unwrap(), before);
}

/// Trust that did not come from a known_hosts key is never extended: --pin, a key recorded
/// by accept-new in this very connection, a global known_hosts file.
#[test]
fn msh_adds_nothing_for_a_host_it_did_not_verify_through_user_known_hosts() {
    let s = two_key_sshd("hkr-msh-untrusted");
    let before = std::fs::read_to_string(&s.kh).unwrap();
    let pin = s.fingerprint();
    let out = run(
        s.msh(&[
            "-o",
            "UpdateHostKeys=yes",
            "--pin",
            &pin,
            "127.0.0.1",
            "true",
        ]),
        b"",
        T,
    );
    s.sshd.assert_ok(&out);
    assert_eq!(std::fs::read_to_string(&s.kh).unwrap(), before);

    // accept-new records the key it was shown, and only that one.
    let fresh = s.dir.join("fresh_known_hosts");
    let out = run(
        s.msh_with(
            &fresh,
            &s.id,
            &[
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=accept-new",
                "-o",
                "UpdateHostKeys=yes",
                "127.0.0.1",
                "true",
            ],
        ),
        b"",
        T,
    );
    s.sshd.assert_ok(&out);
    let text = std::fs::read_to_string(&fresh).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(!text.contains("ecdsa"), "{text}");

    // Known only through the global file: the user file is not filled from it.
    let global = s.dir.join("global_known_hosts");
    std::fs::write(&global, &before).unwrap();
    let empty = s.dir.join("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    // msh_cmd sets GlobalKnownHostsFile=/dev/null: build the command here.
    let cfg = s.dir.join("config");
    std::fs::write(&cfg, format!("GlobalKnownHostsFile {}\n", global.display())).unwrap();
    let mut c = std::process::Command::new(bin("msh"));
    c.args(["-F", cfg.to_str().unwrap()])
        .args(["-p", &s.sshd.port.to_string(), "-l", &s.sshd.user])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", empty.display()))
        .args(["-o", "BatchMode=yes", "-o", "UpdateHostKeys=yes"])
        .arg("-i")
        .arg(&s.id)
        .args(["127.0.0.1", "true"])
        .env("HOME", &s.dir.path)
        .env_remove("SSH_AUTH_SOCK");
    let out = run(c, b"", T);
    s.sshd.assert_ok(&out);
    assert_eq!(std::fs::read_to_string(&empty).unwrap(), "");
}

/// Keys the server no longer has are removed, but only from lines that name exactly this
/// host; a line shared with another host, a pattern line and marker lines stay.
#[test]
fn msh_removes_keys_the_server_dropped_from_its_own_lines_only() {
    let s = two_key_sshd("hkr-msh-remove");
    let old = other_key_line(&s.dir, "retired_host_key");
    let name = s.name();
    let kept = format!(
        "{name},otherhost {old}\n[127.0.0.*]:{} {old}\n@revoked {name} {old}\n# comment\n",
        s.sshd.port
    );
    std::fs::write(&s.kh, format!("{}{name} {old}\n{kept}", ed25519_line(&s))).unwrap();
    let out = msh_update_host_keys(&s, "yes", "true");
    let old_fp =
        msh_common::keys::fingerprint(&msh_common::keys::parse_public_key_line(&old).unwrap());
    assert!(
        out.stderr.contains(&format!(
            "removed host key of {name} the server no longer offers: ED25519 {old_fp}"
        )),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&s.kh).unwrap(),
        format!("{}{kept}{}", ed25519_line(&s), ecdsa_line(&s))
    );
    // The previous file is kept beside it, as ssh does.
    let old_file = s.dir.join("known_hosts.old");
    assert!(std::fs::read_to_string(old_file).unwrap().contains(&old));
}

/// Reference: OpenSSH's own client does the same against sshd (the behaviour msh follows).
#[test]
fn openssh_learns_the_second_host_key_of_sshd() {
    let s = two_key_sshd("hkr-ssh-sshd");
    let out = run(
        openssh_command(
            s.sshd.port,
            &s.sshd.user,
            &s.id,
            &s.kh,
            &["-o", "UpdateHostKeys=yes"],
            "true",
        ),
        b"",
        T,
    );
    s.sshd.assert_ok(&out);
    let out = ssh_with_ecdsa_only(&s, &s.kh);
    s.sshd.assert_ok(&out);
}

// --- mshd's side: it announces its host keys and proves them. ---

/// mshd serving the fixture's ed25519 host key and one more of each of `kinds`
/// (`--host-key` for each); the fixture's known_hosts trusts only the ed25519 key. Returns
/// the extra keys' `TYPE BASE64` lines, in order.
fn multi_key_mshd(name: &str, kinds: &[&str]) -> (Mshd, Vec<String>) {
    let dir = TestDir::new(name);
    let mut b = Mshd::builder(name);
    let mut lines = Vec::new();
    for kind in kinds {
        let file = format!("host_{kind}");
        let key = ssh_keygen_key(&dir, &file, kind);
        lines.push(public_key_fields(&dir.join(format!("{file}.pub"))));
        b = b.arg("--host-key").arg(key.to_str().unwrap());
    }
    (b.dir(dir).start(), lines)
}

fn two_key_mshd(name: &str) -> (Mshd, String) {
    let (d, mut lines) = multi_key_mshd(name, &["ecdsa"]);
    (d, lines.remove(0))
}

/// `msh -o UpdateHostKeys=MODE 127.0.0.1 true` to `d`, which must succeed.
fn msh_to_mshd_update_host_keys(d: &Mshd, mode: &str) -> Output {
    let opt = format!("UpdateHostKeys={mode}");
    let out = run(
        crate::msh_to_mshd::msh(d, &["-o", &opt, "127.0.0.1", "true"]),
        b"",
        T,
    );
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    out
}

/// OpenSSH ssh to `d`, restricted to the ecdsa host key: succeeds only if the fixture's
/// known_hosts holds mshd's ecdsa key.
fn ssh_to_mshd_with_ecdsa_only(d: &Mshd) -> Output {
    run(
        d.ssh(
            &["-o", "HostKeyAlgorithms=ecdsa-sha2-nistp256"],
            "echo via-ecdsa",
        ),
        b"",
        T,
    )
}

#[test]
fn openssh_learns_the_other_host_keys_of_mshd() {
    // RSA too: mshd proves it with an rsa-sha2-512 signature.
    let (d, lines) = multi_key_mshd("hkr-ssh-mshd", &["ecdsa", "rsa"]);
    let (ecdsa, rsa) = (&lines[0], &lines[1]);
    assert_ne!(ssh_to_mshd_with_ecdsa_only(&d).code(), Some(0));
    let before = std::fs::read_to_string(&d.known_hosts).unwrap();
    let out = run(d.ssh(&["-o", "UpdateHostKeys=yes"], "true"), b"", T);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let after = std::fs::read_to_string(&d.known_hosts).unwrap();
    assert!(after.starts_with(&before), "{after}");
    assert!(
        after.contains(ecdsa),
        "ssh did not learn the ecdsa key:\n{after}"
    );
    assert!(
        after.contains(rsa),
        "ssh did not learn the rsa key:\n{after}"
    );
    let out = ssh_to_mshd_with_ecdsa_only(&d);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, b"via-ecdsa\n");
}

#[test]
fn msh_learns_the_second_host_key_of_mshd() {
    let (d, ecdsa) = two_key_mshd("hkr-msh-mshd");
    let out = msh_to_mshd_update_host_keys(&d, "yes");
    assert!(
        out.stderr.contains("learned new host key for [127.0.0.1]"),
        "{}",
        out.stderr
    );
    let text = std::fs::read_to_string(&d.known_hosts).unwrap();
    assert!(
        text.ends_with(&format!("[127.0.0.1]:{} {ecdsa}\n", d.port)),
        "{text}"
    );
    let out = ssh_to_mshd_with_ecdsa_only(&d);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);

    // UpdateHostKeys=no: a fresh file with the ed25519 key only stays so.
    std::fs::write(&d.known_hosts, d.known_hosts_line() + "\n").unwrap();
    msh_to_mshd_update_host_keys(&d, "no");
    assert_eq!(
        std::fs::read_to_string(&d.known_hosts).unwrap(),
        d.known_hosts_line() + "\n"
    );
}

/// A host vouched for by an @cert-authority line gets no plain keys recorded, by msh or by
/// OpenSSH, although mshd announces its key.
#[test]
fn a_host_accepted_through_its_certificate_gets_nothing_added() {
    let name = "hkr-cert";
    let dir = TestDir::new(name);
    let ca = ssh_keygen_ed25519(&dir, "host_ca");
    let hk = ssh_keygen_ed25519(&dir, "cert_host_key");
    ssh_keygen_sign(
        &ca,
        &dir.join("cert_host_key.pub"),
        "hk",
        "127.0.0.1",
        &["-h"],
    );
    let cert = dir.join("cert_host_key-cert.pub");
    let d = Mshd::builder(name)
        .dir(dir)
        .host_key_with_certificate(&hk, &cert)
        .start();
    let ca_line = std::fs::read_to_string(d.dir.join("host_ca.pub")).unwrap();
    let kh_text = format!("@cert-authority [127.0.0.1]:{} {ca_line}", d.port);
    std::fs::write(&d.known_hosts, &kh_text).unwrap();

    msh_to_mshd_update_host_keys(&d, "yes");
    assert_eq!(std::fs::read_to_string(&d.known_hosts).unwrap(), kh_text);

    let out = run(d.ssh(&["-o", "UpdateHostKeys=yes"], "true"), b"", T);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&d.known_hosts).unwrap(), kh_text);
}

/// `msh-keygen rotate-host-key`: the next key is written beside the current one (0600,
/// never over an existing file), the known_hosts lines of both keys go to stdout, and once
/// mshd serves the next key too, msh with UpdateHostKeys learns exactly that key.
#[test]
fn keygen_rotate_host_key_then_clients_learn_the_next_key() {
    use std::os::unix::fs::PermissionsExt;
    let name = "hkr-keygen-rotate";
    let dir = TestDir::new(name);
    let current = ssh_keygen_ed25519(&dir, "current_host_key");
    let rotate = |extra: &[&str]| {
        let mut c = std::process::Command::new(bin("msh-keygen"));
        c.args(["rotate-host-key", "--current"])
            .arg(&current)
            .args(["--host", "127.0.0.1,web1.test", "-p", "2222"])
            .args(extra);
        run(c, b"", T)
    };
    let out = rotate(&[]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let next = dir.join("current_host_key.next");
    let next_line = public_key_fields(&dir.join("current_host_key.next.pub"));
    let cur_line = public_key_fields(&dir.join("current_host_key.pub"));
    assert_eq!(
        out.stdout_str(),
        format!(
            "[127.0.0.1]:2222,[web1.test]:2222 {cur_line}\n\
             [127.0.0.1]:2222,[web1.test]:2222 {next_line}\n"
        )
    );
    assert!(out.stderr.contains("host_keys"), "{}", out.stderr);
    let mode = std::fs::metadata(&next).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // A second run refuses to replace the key being rolled out.
    let before = std::fs::read(&next).unwrap();
    let out = rotate(&[]);
    assert_eq!(out.code(), Some(1));
    assert!(out.stderr.contains("already exists"), "{}", out.stderr);
    assert_eq!(std::fs::read(&next).unwrap(), before);

    // mshd serves the fixture's key (known to the client), the current and the next key.
    let d = Mshd::builder(name)
        .dir(dir)
        .arg("--host-key")
        .arg(current.to_str().unwrap())
        .arg("--host-key")
        .arg(next.to_str().unwrap())
        .start();
    msh_to_mshd_update_host_keys(&d, "yes");
    let text = std::fs::read_to_string(&d.known_hosts).unwrap();
    assert!(text.contains(&next_line), "{text}");
    assert!(text.contains(&cur_line), "{text}");
}
