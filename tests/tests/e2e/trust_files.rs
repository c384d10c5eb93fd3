//! Issue 7, items 1 and 8: files root creates, replaces or reads inside a user's home.
//! A throwaway second user plants symlinks, FIFOs and huge files where root will look; root
//! (msh-keygen, mshd) must neither create nor hand over a file the user chose, nor hang or
//! read gigabytes, and must say what it refused. Needs root (useradd).

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use msh_tests::mshd::Mshd;
use msh_tests::users::{require_root, TestUser};
use msh_tests::*;

const T: Duration = Duration::from_secs(30);
const ED1: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIu4PD+s7WG3OO7o1Ix9Byw35Fe9QEwR4T0Pw4uv5e9/";

fn chown_user(p: &Path, u: &TestUser) {
    nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        p,
        Some(nix::unistd::Uid::from_raw(u.uid)),
        Some(nix::unistd::Gid::from_raw(u.gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

/// `~u/.ssh/known_hosts` with lines for web1 and db1, owned by the user; returns its path.
fn user_known_hosts(u: &TestUser) -> PathBuf {
    let ak = u.write_authorized_keys("");
    let kh = ak.with_file_name("known_hosts");
    std::fs::write(&kh, format!("web1 {ED1}\ndb1 {ED1}\n")).unwrap();
    chown_user(&kh, u);
    kh
}

/// A symlink at `link` to `to`, owned by the user (as if they had made it).
fn user_symlink(u: &TestUser, to: &Path, link: &Path) {
    std::os::unix::fs::symlink(to, link).unwrap();
    chown_user(link, u);
}

fn keygen_remove(kh: &Path) -> Output {
    let mut c = cmd(bin("msh-keygen"), ["known-hosts", "remove", "web1", "-f"]);
    c.arg(kh);
    run(c, b"", T)
}

#[test]
fn root_keygen_does_not_create_the_target_of_a_planted_lock_symlink() {
    if !require_root("root_keygen_does_not_create_the_target_of_a_planted_lock_symlink") {
        return;
    }
    let u = TestUser::new();
    let dir = TestDir::new("planted-lock");
    let kh = user_known_hosts(&u);
    // Stands in for /etc/ld.so.preload: a path root would create and hand to the user.
    let target = dir.join("would-be-created");
    user_symlink(&u, &target, &kh.with_file_name("known_hosts.lock"));
    let before = std::fs::read(&kh).unwrap();

    let out = keygen_remove(&kh);
    assert_eq!(out.code(), Some(1), "stdout {:?}", out.stdout_str());
    assert!(
        out.stderr
            .contains("known_hosts.lock is a symbolic link: refusing to follow it"),
        "{}",
        out.stderr
    );
    assert!(!target.exists(), "root created the lock symlink's target");
    assert_eq!(std::fs::read(&kh).unwrap(), before, "file changed anyway");
    // Once the link is gone, the same command works and leaves every file the user's.
    std::fs::remove_file(kh.with_file_name("known_hosts.lock")).unwrap();
    let out = keygen_remove(&kh);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(&kh).unwrap(),
        format!("db1 {ED1}\n")
    );
    for name in ["known_hosts", "known_hosts.lock", "known_hosts.old"] {
        let m = std::fs::symlink_metadata(kh.with_file_name(name)).unwrap();
        assert!(m.is_file(), "{name}");
        assert_eq!((m.uid(), m.gid()), (u.uid, u.gid), "{name} not the user's");
    }
}

#[test]
fn root_keygen_does_not_overwrite_or_chown_the_target_of_a_planted_old_symlink() {
    if !require_root("root_keygen_does_not_overwrite_or_chown_the_target_of_a_planted_old_symlink")
    {
        return;
    }
    let u = TestUser::new();
    let dir = TestDir::new("planted-old");
    let kh = user_known_hosts(&u);
    let victim = dir.write("root-owned", "precious\n", 0o600);
    let old = kh.with_file_name("known_hosts.old");
    user_symlink(&u, &victim, &old);

    let out = keygen_remove(&kh);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    let m = std::fs::metadata(&victim).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (0, 0, 0o600));
    // The link itself was replaced by the previous file.
    let m = std::fs::symlink_metadata(&old).unwrap();
    assert!(m.is_file(), "known_hosts.old is still a symlink");
    assert_eq!(
        std::fs::read_to_string(&old).unwrap(),
        format!("web1 {ED1}\ndb1 {ED1}\n")
    );
}

#[test]
fn root_keygen_does_not_follow_a_users_symlinked_known_hosts() {
    if !require_root("root_keygen_does_not_follow_a_users_symlinked_known_hosts") {
        return;
    }
    let u = TestUser::new();
    let dir = TestDir::new("planted-kh");
    let kh = user_known_hosts(&u);
    std::fs::remove_file(&kh).unwrap();
    let victim = dir.write("root-list", format!("web1 {ED1}\n"), 0o600);
    user_symlink(&u, &victim, &kh);
    let out = keygen_remove(&kh);
    assert_eq!(out.code(), Some(1));
    assert!(
        out.stderr
            .contains("refusing to follow another user's link"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        format!("web1 {ED1}\n")
    );
    assert!(!dir.join("root-list.lock").exists());
    assert!(!dir.join("root-list.old").exists());
}

/// mshd as root reading each user's own `~/.ssh/authorized_keys`.
fn home_keys_mshd(name: &str, extra: &str) -> Mshd {
    Mshd::builder(name)
        .home_authorized_keys()
        .toml(extra)
        .start()
}

/// msh to `d` as `user` with the fixture's key.
fn msh_as(d: &Mshd, user: &str, remote: &str) -> std::process::Command {
    let mut c = crate::msh_to_sshd::msh_cmd(&d.dir, d.port, user, &d.known_hosts, &[]);
    c.arg("-i")
        .arg(&d.client_key)
        .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
        .args(["127.0.0.1", remote]);
    c
}

/// `user` still logs in, with OpenSSH's ssh and with msh.
fn assert_logs_in(d: &Mshd, user: &TestUser) {
    let out = run(d.ssh_as(&user.name, &[], "id -un"), b"", T);
    d.assert_ok(&out);
    assert_eq!(out.stdout_str(), format!("{}\n", user.name));
    let out = run(msh_as(d, &user.name, "id -un"), b"", T);
    d.assert_ok(&out);
    assert_eq!(out.stdout_str(), format!("{}\n", user.name));
}

/// Both clients are refused as `user` (exit 255, nothing run), within T each.
fn assert_refused(d: &Mshd, user: &TestUser) {
    let out = run(d.ssh_as(&user.name, &[], "id -un"), b"", T);
    assert_eq!(out.code(), Some(255), "ssh: {}", out.stderr);
    assert!(out.stdout.is_empty());
    let out = run(msh_as(d, &user.name, "id -un"), b"", T);
    assert_eq!(out.code(), Some(255), "msh: {}", out.stderr);
    assert!(out.stdout.is_empty());
}

#[test]
fn root_mode_huge_sparse_authorized_keys_is_refused_and_others_still_log_in() {
    if !require_root("root_mode_huge_sparse_authorized_keys_is_refused_and_others_still_log_in") {
        return;
    }
    let (a, b) = (TestUser::new(), TestUser::new());
    let d = home_keys_mshd("huge-ak", "");
    // The key on line 1, then 8 GiB of holes: read whole on every key offer before.
    let ak = a.write_authorized_keys(&format!("{}\n", d.client_public));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&ak)
        .unwrap()
        .set_len(8 << 30)
        .unwrap();
    b.write_authorized_keys(&format!("{}\n", d.client_public));
    assert_refused(&d, &a);
    d.wait_for_log(
        &format!(
            "authorized_keys {} refused: {} is larger than the 4194304-byte limit",
            ak.display(),
            ak.display()
        ),
        Duration::from_secs(5),
    );
    assert_logs_in(&d, &b);
}

#[test]
fn root_mode_fifo_or_foreign_symlink_as_authorized_keys_is_refused_and_others_still_log_in() {
    if !require_root(
        "root_mode_fifo_or_foreign_symlink_as_authorized_keys_is_refused_and_others_still_log_in",
    ) {
        return;
    }
    let (a, b) = (TestUser::new(), TestUser::new());
    // Without strict_modes nothing looked at the file type before reading: the read of a
    // FIFO blocked a thread, and the login hung until login_grace_time.
    let d = home_keys_mshd("fifo-ak", "strict_modes = false");
    let ak = a.write_authorized_keys("");
    std::fs::remove_file(&ak).unwrap();
    nix::unistd::mkfifo(&ak, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    chown_user(&ak, &a);
    b.write_authorized_keys(&format!("{}\n", d.client_public));
    assert_refused(&d, &a);
    d.wait_for_log(
        &format!(
            "{}: bad ownership or modes: not a regular file",
            ak.display()
        ),
        Duration::from_secs(5),
    );
    assert_logs_in(&d, &b);

    // A symlink to a root-only file holding the key: the user could not read it.
    let secret = d
        .dir
        .write("root-only-keys", format!("{}\n", d.client_public), 0o600);
    std::fs::remove_file(&ak).unwrap();
    user_symlink(&a, &secret, &ak);
    assert_refused(&d, &a);
    d.wait_for_log("could not read it itself", Duration::from_secs(5));
    assert_logs_in(&d, &b);
}

#[test]
fn root_keygen_revoke_does_not_create_the_target_of_a_planted_lock_symlink() {
    if !require_root("root_keygen_revoke_does_not_create_the_target_of_a_planted_lock_symlink") {
        return;
    }
    let u = TestUser::new();
    let dir = TestDir::new("planted-revoke-lock");
    let list = u.write_authorized_keys("").with_file_name("revoked_keys");
    let target = dir.join("would-be-created");
    user_symlink(&u, &target, &list.with_file_name("revoked_keys.lock"));
    let key = dir.write("k.pub", format!("{ED1}\n"), 0o644);
    let mut c = cmd(bin("msh-keygen"), ["revoke", "--file"]);
    c.arg(&list).arg(&key);
    let out = run(c, b"", T);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    out.assert_stderr_contains("revoked_keys.lock is a symbolic link");
    assert!(!target.exists(), "root created the lock symlink's target");
    assert!(!list.exists());
}
