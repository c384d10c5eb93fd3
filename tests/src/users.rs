//! Throwaway local users for root-mode tests: `useradd -m` with a unique name
//! (`msht<pid><n>`), optionally an extra group, removed with `userdel -r` (and `groupdel`) on
//! drop. Only possible as root; [`require_root`] says what to do otherwise.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::{cmd, is_root, run, tool};

static N: AtomicU32 = AtomicU32::new(0);

/// For tests that need root. Returns false (after printing that the test was skipped) only
/// when MSH_TESTS_NO_ROOT=1 is set explicitly; otherwise, when not root, fails the test.
pub fn require_root(test: &str) -> bool {
    if is_root() {
        return true;
    }
    if std::env::var("MSH_TESTS_NO_ROOT").as_deref() == Ok("1") {
        eprintln!("SKIPPED {test}: needs root (MSH_TESTS_NO_ROOT=1 is set)");
        return false;
    }
    panic!("{test} needs root (it creates local users and runs mshd in root mode): run the tests as root, or set MSH_TESTS_NO_ROOT=1 to skip it explicitly");
}

/// A local user that exists for the lifetime of this value.
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    pub shell: PathBuf,
    /// The extra supplementary group created with the user, if any: (name, gid).
    pub extra_group: Option<(String, u32)>,
}

impl TestUser {
    /// Creates a user with a home directory and `/bin/bash` as its shell.
    pub fn new() -> TestUser {
        Self::create(false)
    }

    /// Same, plus an extra group `<name>g` the user is a member of.
    pub fn with_extra_group() -> TestUser {
        Self::create(true)
    }

    fn create(extra: bool) -> TestUser {
        assert!(is_root(), "creating a local user needs root");
        if let Some(closed) = crate::closed_ancestor(&crate::target_dir()) {
            panic!(
                "{} is below {}, which other users cannot enter: the throwaway users of the \
                 root-mode tests could not run mshd or reach their test files. Run \
                 scripts/test.sh (it then builds in /var/lib/msh-build) or set CARGO_TARGET_DIR \
                 to a directory every user can traverse",
                crate::target_dir().display(),
                closed.display()
            );
        }
        let n = N.fetch_add(1, Ordering::SeqCst);
        let name = format!("msht{}{n}", std::process::id());
        let t = Duration::from_secs(30);
        let mut extra_group = None;
        if extra {
            let g = format!("{name}g");
            let out = run(cmd(tool("groupadd"), [g.as_str()]), b"", t);
            assert!(out.status.success(), "groupadd {g} failed: {}", out.stderr);
            let gid = nix::unistd::Group::from_name(&g)
                .unwrap()
                .unwrap()
                .gid
                .as_raw();
            extra_group = Some((g, gid));
        }
        // Password field `*`: no password, but not locked (useradd's default `!` marks the
        // account locked, which sshd without PAM, and mshd, refuse).
        let mut args = vec!["-m", "-s", "/bin/bash", "-p", "*"];
        if let Some((g, _)) = &extra_group {
            args.push("-G");
            args.push(g.as_str());
        }
        args.push(name.as_str());
        let out = run(cmd(tool("useradd"), &args), b"", t);
        assert!(
            out.status.success(),
            "useradd {name} failed: {}",
            out.stderr
        );
        let u = nix::unistd::User::from_name(&name)
            .unwrap()
            .unwrap_or_else(|| panic!("user {name} not found after useradd"));
        TestUser {
            name,
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
            home: u.dir,
            shell: u.shell,
            extra_group,
        }
    }

    /// Writes `text` to `~/.ssh/authorized_keys` (0600, `.ssh` 0700, both owned by the user).
    pub fn write_authorized_keys(&self, text: &str) -> PathBuf {
        let ssh = self.home.join(".ssh");
        std::fs::create_dir_all(&ssh).unwrap();
        let ak = ssh.join("authorized_keys");
        std::fs::write(&ak, text).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::set_permissions(&ak, std::fs::Permissions::from_mode(0o600)).unwrap();
        let (uid, gid) = (
            Some(nix::unistd::Uid::from_raw(self.uid)),
            Some(nix::unistd::Gid::from_raw(self.gid)),
        );
        nix::unistd::chown(&ssh, uid, gid).unwrap();
        nix::unistd::chown(&ak, uid, gid).unwrap();
        ak
    }
}

impl Default for TestUser {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let t = Duration::from_secs(30);
        // -f: a session process that outlived its test must not keep the account around.
        let out = run(
            cmd(tool("userdel"), ["-r", "-f", self.name.as_str()]),
            b"",
            t,
        );
        if !out.status.success() {
            eprintln!("userdel -r {} failed: {}", self.name, out.stderr);
        }
        if let Some((g, _)) = &self.extra_group {
            let _ = run(cmd(tool("groupdel"), [g.as_str()]), b"", t);
        }
    }
}
