//! msh-keygen against OpenSSH's ssh-keygen and sshd: keys each writes the other reads with the
//! same fingerprint; `scan` sees the fixture sshd's host keys; known_hosts find/remove/hash
//! give the same output, exit codes and file contents as `ssh-keygen -F/-R/-H`. Also checks the
//! sshd fixture itself with the real `ssh` client, so a broken fixture fails loudly here.

use std::time::Duration;

use msh_tests::sshd::{Sshd, SshdOptions};
use msh_tests::*;

const T: Duration = Duration::from_secs(30);

/// The fixture must accept a real `ssh` login with a key in its authorized_keys, verify as the
/// host in known_hosts, and refuse a key that is not authorized.
#[test]
fn sshd_fixture_accepts_real_ssh_with_authorized_key_only() {
    let dir = TestDir::new("sshd-fixture");
    let sshd = Sshd::start_with(
        &dir,
        SshdOptions {
            host_key_types: vec!["ed25519".into(), "ecdsa".into()],
            ..Default::default()
        },
    );
    let good = ssh_keygen_ed25519(&dir, "id_good");
    let bad = ssh_keygen_ed25519(&dir, "id_bad");
    sshd.authorize(&good);
    let kh = sshd.write_known_hosts(&dir.join("known_hosts"));

    let out = run(
        sshd.ssh_command(&good, &kh, "echo fixture-ok; exit 7"),
        b"",
        T,
    );
    assert_eq!(
        (out.code(), out.stdout_str().as_str()),
        (Some(7), "fixture-ok\n"),
        "ssh stderr: {}\nsshd log:\n{}",
        out.stderr,
        sshd.log()
    );

    let out = run(sshd.ssh_command(&bad, &kh, "echo must-not-run"), b"", T);
    assert_eq!(out.code(), Some(255), "unauthorized key got in: {out:?}");
    assert!(out.stderr.contains("Permission denied"), "{}", out.stderr);
    assert!(out.stdout.is_empty());

    // A known_hosts with another key for the host: ssh refuses, so the fixture's host key
    // really is the one in `host_keys`.
    ssh_keygen_ed25519(&dir, "not_the_host_key");
    let other_pub = std::fs::read_to_string(dir.join("not_the_host_key.pub")).unwrap();
    let wrong_kh = dir.write(
        "wrong_known_hosts",
        format!("[127.0.0.1]:{} {}\n", sshd.port, other_pub.trim()),
        0o644,
    );
    let out = run(sshd.ssh_command(&good, &wrong_kh, "true"), b"", T);
    assert_eq!(out.code(), Some(255), "{out:?}");
    assert!(
        out.stderr.contains("HOST IDENTIFICATION HAS CHANGED")
            || out.stderr.contains("Host key verification failed"),
        "{}",
        out.stderr
    );
}
