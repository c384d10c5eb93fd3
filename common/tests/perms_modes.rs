//! StrictModes and private-key mode checks on real files and directories with real modes and
//! owners (the tests run as root, so they can chown). Everything lives under cargo's
//! CARGO_TARGET_TMPDIR, and `home` is set to the test's own directory so that the checks
//! stop there, as sshd's do at the user's home.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use msh_common::perms::{check_private_key_mode, check_strict_modes};
use msh_common::Error;

/// A fresh directory (mode 0755, owned by root) removed on drop.
struct Root(PathBuf);

impl Root {
    fn new(name: &str) -> Self {
        let p = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("perms-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        chmod(&p, 0o755);
        // Canonical, so that paths in errors (which are resolved) compare equal.
        Root(std::fs::canonicalize(&p).unwrap())
    }

    /// `home/.ssh/authorized_keys` with home 0755, .ssh 0700, the file 0600.
    fn home_with_keys(&self) -> (PathBuf, PathBuf) {
        let home = self.0.join("home");
        let ssh = home.join(".ssh");
        std::fs::create_dir_all(&ssh).unwrap();
        chmod(&home, 0o755);
        chmod(&ssh, 0o700);
        let file = ssh.join("authorized_keys");
        std::fs::write(&file, "").unwrap();
        chmod(&file, 0o600);
        (home, file)
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown(p: &Path, uid: u32) {
    std::os::unix::fs::chown(p, Some(uid), None)
        .unwrap_or_else(|e| panic!("chown {}: {e} (these tests must run as root)", p.display()));
}

/// A uid with no passwd entry, for "someone else".
const STRANGER: u32 = 54_321;
const USER: u32 = 54_320;

fn refused(r: msh_common::Result<()>) -> (PathBuf, String) {
    match r {
        Err(Error::Permissions { path, reason }) => (path, reason),
        other => panic!("expected a permissions error, got {other:?}"),
    }
}

#[test]
fn good_layout_owned_by_user_is_accepted() {
    let root = Root::new("good");
    let (home, file) = root.home_with_keys();
    for p in [&home, &home.join(".ssh"), &file] {
        chown(p, USER);
    }
    check_strict_modes(&file, USER, &home).unwrap();
}

#[test]
fn owned_by_root_is_accepted() {
    let root = Root::new("rootowned");
    let (home, file) = root.home_with_keys();
    check_strict_modes(&file, USER, &home).unwrap();
}

#[test]
fn group_writable_file_is_refused_with_fix() {
    let root = Root::new("file664");
    let (home, file) = root.home_with_keys();
    chmod(&file, 0o664);
    let (path, reason) = refused(check_strict_modes(&file, USER, &home));
    assert_eq!(path, file);
    assert_eq!(
        reason,
        format!(
            "bad ownership or modes: writable by group (mode 0664); fix with chmod 600 {}",
            file.display()
        )
    );
    let shown = Error::Permissions { path, reason }.to_string();
    assert!(shown.starts_with(&format!("{}: bad ownership or modes", file.display())));
}

#[test]
fn world_writable_directory_is_refused() {
    let root = Root::new("dir777");
    let (home, file) = root.home_with_keys();
    let ssh = home.join(".ssh");
    chmod(&ssh, 0o777);
    let (path, reason) = refused(check_strict_modes(&file, USER, &home));
    assert_eq!(path, ssh);
    assert!(
        reason.contains("writable by group and others (mode 0777); fix with chmod go-w"),
        "{reason}"
    );
}

#[test]
fn writable_home_is_refused_but_above_home_is_not_checked() {
    let root = Root::new("home");
    let (home, file) = root.home_with_keys();
    chmod(&home, 0o757);
    let (path, reason) = refused(check_strict_modes(&file, USER, &home));
    assert_eq!(path, home);
    assert!(
        reason.contains("writable by others (mode 0757)"),
        "{reason}"
    );
    chmod(&home, 0o755);
    // The directory above home is world-writable: sshd stops at home, so do we.
    chmod(&root.0, 0o777);
    let r = check_strict_modes(&file, USER, &home);
    chmod(&root.0, 0o755);
    r.unwrap();
}

#[test]
fn file_owned_by_someone_else_is_refused() {
    let root = Root::new("owner");
    let (home, file) = root.home_with_keys();
    chown(&file, STRANGER);
    let (path, reason) = refused(check_strict_modes(&file, USER, &home));
    assert_eq!(path, file);
    assert!(
        reason.contains(&format!(
            "owned by uid {STRANGER}, not by uid {USER} or root; fix with chown {USER}"
        )),
        "{reason}"
    );
}

#[test]
fn directory_owned_by_someone_else_is_refused() {
    let root = Root::new("dirowner");
    let (home, file) = root.home_with_keys();
    chown(&home.join(".ssh"), STRANGER);
    let (path, _) = refused(check_strict_modes(&file, USER, &home));
    assert_eq!(path, home.join(".ssh"));
}

#[test]
fn sticky_world_writable_dir_outside_home_is_refused() {
    // As sshd: a file under a /tmp-like directory (1777) fails even though the sticky bit
    // keeps others from replacing it, because the walk goes to / when the file is not in home.
    let root = Root::new("sticky");
    let (home, _) = root.home_with_keys();
    let tmp = root.0.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    chmod(&tmp, 0o1777);
    let file = tmp.join("keys");
    std::fs::write(&file, "").unwrap();
    chmod(&file, 0o600);
    let (path, reason) = refused(check_strict_modes(&file, USER, &home));
    assert_eq!(path, tmp);
    assert!(reason.contains("(mode 1777)"), "{reason}");
}

#[test]
fn file_outside_home_is_checked_up_to_root() {
    // /etc/passwd, /etc and / are root-owned and not group/world-writable on any sane system.
    check_strict_modes(
        Path::new("/etc/passwd"),
        USER,
        Path::new("/nonexistent-home"),
    )
    .unwrap();
    // And a bad directory well above the file (here the test root, outside "home") is found.
    let root = Root::new("above");
    let deep = root.0.join("a/b/c");
    std::fs::create_dir_all(&deep).unwrap();
    for d in ["a", "a/b", "a/b/c"] {
        chmod(&root.0.join(d), 0o755);
    }
    chmod(&root.0.join("a"), 0o775);
    let file = deep.join("keys");
    std::fs::write(&file, "").unwrap();
    chmod(&file, 0o644);
    let (path, _) = refused(check_strict_modes(
        &file,
        USER,
        Path::new("/nonexistent-home"),
    ));
    assert_eq!(path, root.0.join("a"));
}

#[test]
fn symlink_is_resolved_and_target_checked() {
    let root = Root::new("symlink");
    let (home, file) = root.home_with_keys();
    let elsewhere = root.0.join("shared");
    std::fs::create_dir(&elsewhere).unwrap();
    chmod(&elsewhere, 0o777);
    let target = elsewhere.join("keys");
    std::fs::write(&target, "").unwrap();
    chmod(&target, 0o600);
    std::fs::remove_file(&file).unwrap();
    std::os::unix::fs::symlink(&target, &file).unwrap();
    let (path, _) = refused(check_strict_modes(&file, USER, &home));
    assert_eq!(
        path, elsewhere,
        "the directory really holding the file is checked"
    );
}

#[test]
fn not_a_regular_file_is_refused() {
    let root = Root::new("notfile");
    let (home, file) = root.home_with_keys();
    std::fs::remove_file(&file).unwrap();
    std::fs::create_dir(&file).unwrap();
    chmod(&file, 0o700);
    let (path, reason) = refused(check_strict_modes(&file, USER, &home));
    assert_eq!(path, file);
    assert!(reason.contains("not a regular file"), "{reason}");
}

#[test]
fn missing_file_is_io_error_naming_it() {
    let root = Root::new("missing");
    let (home, _) = root.home_with_keys();
    let file = home.join(".ssh/nope");
    match check_strict_modes(&file, USER, &home) {
        Err(e @ Error::Io { .. }) => assert!(e.to_string().contains(&file.display().to_string())),
        other => panic!("{other:?}"),
    }
}

#[test]
fn private_key_modes() {
    let root = Root::new("privkey");
    let key = root.0.join("id_ed25519");
    std::fs::write(&key, "not really a key").unwrap();
    for ok in [0o600, 0o400, 0o700] {
        chmod(&key, ok);
        check_private_key_mode(&key).unwrap();
    }
    for bad in [0o644, 0o640, 0o604, 0o660] {
        chmod(&key, bad);
        let (path, reason) = refused(check_private_key_mode(&key));
        assert_eq!(path, key);
        assert_eq!(
            reason,
            format!(
                "permissions {bad:04o} are too open: a private key must not be accessible by others; fix with chmod 600 {}",
                key.display()
            )
        );
    }
    // Owned by another user: not ours to protect (OpenSSH's sshkey_perm_ok), so accepted.
    chmod(&key, 0o644);
    chown(&key, STRANGER);
    check_private_key_mode(&key).unwrap();
    // A missing key is an I/O error naming it.
    let missing = root.0.join("absent");
    assert!(matches!(
        check_private_key_mode(&missing),
        Err(Error::Io { .. })
    ));
}
