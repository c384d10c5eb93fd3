//! Issue 4, part 5: strict_modes on host keys (mode and every directory above them) and on
//! authorized_keys' directories; a SIGHUP whose new host key is unusable keeps the old
//! configuration running and says why. (The authorized_keys file's own mode, a generated
//! host key's 0600 and a SIGHUP with a malformed config file are tested in mshd_auth.rs and
//! ssh_to_mshd.rs.)

use std::time::Duration;

use msh_tests::mshd::{run_with_host_key, set_mode, Mshd};
use msh_tests::{run, ssh_keygen_ed25519, TestDir};
use nix::sys::signal::Signal;

const T: Duration = Duration::from_secs(20);

/// [`run_with_host_key`]: (exit code, stderr).
fn start_with_host_key(
    dir: &TestDir,
    key: &std::path::Path,
    extra: &str,
    check: bool,
) -> (Option<i32>, String) {
    let out = run_with_host_key(dir, key, extra, check);
    (out.code(), out.stderr)
}

#[test]
fn host_key_in_a_group_writable_directory_or_group_readable_is_refused() {
    let dir = TestDir::new("hk-strict");
    std::fs::create_dir(dir.join("keys")).unwrap();
    let keys = dir.join("keys");
    let key = ssh_keygen_ed25519(&dir, "keys/hk");
    // Control: a 0755 directory and a 0600 key are fine.
    set_mode(&keys, 0o755);
    let (code, err) = start_with_host_key(&dir, &key, "", true);
    assert_eq!(code, Some(0), "{err}");

    set_mode(&keys, 0o775);
    let (code, err) = start_with_host_key(&dir, &key, "", false);
    assert_eq!(code, Some(1), "group-writable key directory accepted");
    assert!(
        err.contains("strict_modes") && err.contains(keys.to_str().unwrap()),
        "{err}"
    );
    // strict_modes = false is the documented way out.
    let (code, err) = start_with_host_key(&dir, &key, "strict_modes = false\n", true);
    assert_eq!(code, Some(0), "{err}");

    set_mode(&keys, 0o755);
    set_mode(&key, 0o640);
    let (code, err) = start_with_host_key(&dir, &key, "", false);
    assert_eq!(code, Some(1), "group-readable host key accepted");
    assert!(err.contains("0640") && err.contains("chmod 600"), "{err}");
}

#[test]
fn authorized_keys_in_a_group_writable_directory_is_refused() {
    let dir = TestDir::new("ak-dir-strict");
    std::fs::create_dir(dir.join("sub")).unwrap();
    let sub = dir.join("sub");
    set_mode(&sub, 0o775);
    let ak = sub.join("authorized_keys");
    let d = Mshd::builder("ak-dir-strict")
        .dir(dir)
        .toml(&format!("authorized_keys_files = [\"{}\"]", ak.display()))
        .use_config_authorized_keys()
        .start();
    std::fs::copy(&d.authorized_keys, &ak).unwrap();
    set_mode(&ak, 0o600);
    let out = run(d.ssh(&["-T"], "echo in"), b"", T);
    assert_eq!(
        out.code(),
        Some(255),
        "login through a group-writable directory"
    );
    let log = d.wait_for_log("refused by strict_modes", T);
    assert!(log.contains(sub.to_str().unwrap()), "{log}");
    // Control: the same file once the directory is fixed.
    set_mode(&sub, 0o755);
    let out = run(d.ssh(&["-T"], "echo in"), b"", T);
    assert_eq!(out.stdout_str(), "in\n", "{}", out.stderr);
}

#[test]
fn sighup_with_an_unusable_host_key_keeps_the_running_config_and_says_why() {
    let dir = TestDir::new("hup-hostkey");
    let good = dir.join("host_ed25519"); // the fixture generates it there before starting
    let d = Mshd::builder("hup-hostkey")
        .dir(dir)
        .default_host_key()
        .toml(&format!("host_keys = [\"{}\"]", good.display()))
        .start();
    assert_eq!(run(d.ssh(&["-T"], "echo a"), b"", T).stdout_str(), "a\n");
    // The new file denies this user and names a host key strict_modes refuses (0644).
    let bad = ssh_keygen_ed25519(&d.dir, "bad_hk");
    set_mode(&bad, 0o644);
    std::fs::write(
        &d.config,
        format!(
            "deny_users = [\"{}\"]\nhost_keys = [\"{}\"]\n",
            d.user,
            bad.display()
        ),
    )
    .unwrap();
    d.proc.signal(Signal::SIGHUP);
    let log = d.wait_for_log("config not reloaded", T);
    let line = log
        .lines()
        .find(|l| l.contains("config not reloaded"))
        .unwrap();
    assert!(
        line.contains(bad.to_str().unwrap()) && line.contains("0644"),
        "the reason does not name the key and its mode: {line}"
    );
    // Nothing of the new file applies: not the deny, not the key (pinned known_hosts).
    let out = run(d.ssh(&["-T"], "echo still"), b"", T);
    assert_eq!(out.stdout_str(), "still\n", "{}", out.stderr);
}
