//! Tests of write.rs: appending, removal, hashing, planted links, special files, UpdateHostKeys.

use super::*;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::known_hosts::test_keys::{key, ED1, ED2};
    use crate::known_hosts::{check, HostKeyVerdict, KnownHostsFile};
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn append_creates_dir_and_file_private() {
        let dir = crate::known_hosts::test_dir();
        let path = dir.path().join("new/.ssh/known_hosts");
        append(
            &path,
            "Host.Example",
            2222,
            &key(&format!("{ED1} comment")),
            false,
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("[host.example]:2222 {ED1}\n")
        );
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        let f = KnownHostsFile::load(&path).unwrap();
        assert!(matches!(
            check(&[f], "host.example", 2222, &key(ED1)),
            HostKeyVerdict::Trusted { line: 1, .. }
        ));
    }

    #[test]
    fn append_keeps_bytes_and_mode_and_adds_missing_newline() {
        let dir = crate::known_hosts::test_dir();
        let path = dir.path().join("known_hosts");
        let before = format!("# mine\r\n  odd   line\nh {ED2}");
        std::fs::write(&path, &before).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        append(&path, "x", 22, &key(ED1), true).unwrap();
        let after = std::fs::read_to_string(&path).unwrap();
        let (head, tail) = after.split_at(before.len());
        assert_eq!(head, before);
        assert!(tail.starts_with("\n|1|"), "{tail:?}");
        assert!(tail.ends_with(&format!(" {ED1}\n")), "{tail:?}");
        assert_eq!(mode(&path), 0o644);
        let f = KnownHostsFile::load(&path).unwrap();
        assert!(matches!(
            check(&[f], "x", 22, &key(ED1)),
            HostKeyVerdict::Trusted { line: 4, .. }
        ));
        // The same key for the same name again: nothing is added.
        append(&path, "x", 22, &key(ED1), false).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), after);
    }

    /// Root recording a host in a user's directory must not leave root-owned files there
    /// (the user's next msh could not take the lock or rewrite the file).
    #[test]
    fn files_created_in_someone_elses_directory_are_theirs() {
        let dir = crate::known_hosts::test_dir();
        let ssh = dir.path().join("ssh");
        std::fs::create_dir(&ssh).unwrap();
        let (uid, gid) = (54321, 54322);
        let root = nix::unistd::geteuid().is_root();
        if root {
            std::os::unix::fs::chown(&ssh, Some(uid), Some(gid)).unwrap();
        }
        let path = ssh.join("known_hosts");
        append(&path, "h", 22, &key(ED1), false).unwrap();
        let me = (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        let expected = if root { (uid, gid) } else { me };
        for p in [path.clone(), with_suffix(&path, ".lock")] {
            let m = std::fs::metadata(&p).unwrap();
            assert_eq!((m.uid(), m.gid()), expected, "{}", p.display());
        }
        // An existing file keeps its owner through a rewrite, whoever rewrites it.
        if root {
            std::os::unix::fs::chown(&path, Some(uid + 1), Some(gid + 1)).unwrap();
            append(&path, "h2", 22, &key(ED2), false).unwrap();
            let m = std::fs::metadata(&path).unwrap();
            assert_eq!((m.uid(), m.gid()), (uid + 1, gid + 1));
            assert_eq!(remove_host(&path, "h", 22).unwrap(), 1);
            let m = std::fs::metadata(&path).unwrap();
            assert_eq!((m.uid(), m.gid()), (uid + 1, gid + 1));
        }
    }

    #[test]
    fn append_through_symlink_keeps_link() {
        let dir = crate::known_hosts::test_dir();
        let real = dir.path().join("real");
        let link = dir.path().join("known_hosts");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        append(&link, "a", 22, &key(ED1), false).unwrap();
        append(&link, "b", 22, &key(ED2), false).unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(
            std::fs::read_to_string(&real).unwrap(),
            format!("a {ED1}\nb {ED2}\n")
        );
    }

    #[test]
    fn remove_keeps_markers_invalid_and_unrelated_lines() {
        let dir = crate::known_hosts::test_dir();
        let path = dir.path().join("kh");
        let text = format!(
            "# c\nh {ED1}\nh,other {ED2} com\n@revoked h {ED2}\n@cert-authority h {ED1}\n\
             garbage\n*.x {ED1}\nkeep {ED1}\n[h]:2222 {ED1}\n  H\t{ED2}"
        );
        std::fs::write(&path, &text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(remove_host(&path, "h", 22).unwrap(), 3);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!(
                "# c\n@revoked h {ED2}\n@cert-authority h {ED1}\ngarbage\n*.x {ED1}\n\
                 keep {ED1}\n[h]:2222 {ED1}\n"
            )
        );
        assert_eq!(
            std::fs::read_to_string(with_suffix(&path, ".old")).unwrap(),
            text
        );
        assert_eq!(mode(&path), 0o640);
        assert_eq!(remove_host(&path, "a.x", 22).unwrap(), 1);
        assert_eq!(remove_host(&path, "h", 2222).unwrap(), 1);
        // Nothing matches: file and .old untouched.
        let now = std::fs::read(&path).unwrap();
        let old = std::fs::read(with_suffix(&path, ".old")).unwrap();
        assert_eq!(remove_host(&path, "nothere", 22).unwrap(), 0);
        assert_eq!(std::fs::read(&path).unwrap(), now);
        assert_eq!(std::fs::read(with_suffix(&path, ".old")).unwrap(), old);
        let err = remove_host(&dir.path().join("missing"), "h", 22).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    }

    #[test]
    fn hash_splits_lists_and_skips_what_ssh_keygen_skips() {
        let dir = crate::known_hosts::test_dir();
        let path = dir.path().join("kh");
        let text = format!(
            "# c\n  A,b,,[c]:2200\t{ED1}  comment  \n*.w {ED1}\nn,!m {ED1}\n@revoked r {ED2}\n\
             |1|qZaw0aoYr7jXH7lo4ydmJks89Lk=|cVKnaU44jy1CpcCQhg7jT8LORWQ= {ED1}\nbad\n"
        );
        std::fs::write(&path, &text).unwrap();
        assert_eq!(hash_file(&path).unwrap(), 3);
        let out = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 9, "{out}");
        assert_eq!(lines[0], "# c");
        for l in &lines[1..4] {
            assert!(l.starts_with("|1|"), "{l}");
            assert!(l.ends_with(&format!(" {ED1}  comment  ")), "{l:?}");
        }
        assert_eq!(&lines[4..], &text.lines().collect::<Vec<_>>()[2..]);
        assert_eq!(
            std::fs::read_to_string(with_suffix(&path, ".old")).unwrap(),
            text
        );
        let f = KnownHostsFile::load(&path).unwrap();
        for (h, p) in [("a", 22), ("b", 22), ("c", 2200)] {
            assert!(matches!(
                check(std::slice::from_ref(&f), h, p, &key(ED1)),
                HostKeyVerdict::Trusted { .. }
            ));
        }
    }
}

#[cfg(test)]
mod planted_link_tests {
    use super::*;
    use crate::known_hosts::test_keys::ED1;

    fn setup() -> (tempfile::TempDir, PathBuf) {
        let dir = crate::known_hosts::test_dir();
        let path = dir.path().join("known_hosts");
        std::fs::write(&path, format!("web1 {ED1}\nother {ED1}\n")).unwrap();
        (dir, path)
    }

    // Issue 7 item 1: a lock-file symlink made root create (and chown) its target.
    #[test]
    fn a_lock_symlink_is_refused_and_its_target_never_created() {
        let (dir, path) = setup();
        let target = dir.path().join("would-be-created");
        std::os::unix::fs::symlink(&target, with_suffix(&path, ".lock")).unwrap();
        let before = std::fs::read(&path).unwrap();
        for e in [
            remove_host(&path, "web1", 22).unwrap_err(),
            hash_file(&path).unwrap_err(),
        ] {
            assert!(e.to_string().contains("is a symbolic link"), "{e}");
            assert!(e.to_string().contains("known_hosts.lock"), "{e}");
        }
        assert!(!target.exists(), "the lock symlink's target was created");
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn an_old_symlink_is_replaced_not_written_through() {
        let (dir, path) = setup();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        let old = with_suffix(&path, ".old");
        std::os::unix::fs::symlink(&victim, &old).unwrap();
        let before = std::fs::read(&path).unwrap();
        assert_eq!(remove_host(&path, "web1", 22).unwrap(), 1);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        assert!(!std::fs::symlink_metadata(&old)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(&old).unwrap(), before);
    }

    /// As root: a symlinked known_hosts owned by another user is not followed.
    #[test]
    fn another_users_symlink_is_not_followed_by_root() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let (dir, path) = setup();
        let real = dir.path().join("elsewhere");
        std::fs::rename(&path, &real).unwrap();
        std::os::unix::fs::symlink(&real, &path).unwrap();
        nix::unistd::fchownat(
            nix::fcntl::AT_FDCWD,
            &path,
            Some(nix::unistd::Uid::from_raw(54321)),
            None,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .unwrap();
        let e = remove_host(&path, "web1", 22).unwrap_err();
        assert!(e.to_string().contains("another user's link"), "{e}");
        assert!(std::fs::read_to_string(&real).unwrap().contains("web1"));
    }
}

#[cfg(test)]
mod special_file_tests {
    use super::*;

    fn key() -> PublicKey {
        PublicKey::from_openssh(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOqB0jruqSl0l+OPbCQJK8m++I23A2Bw0mBdpTDFYchl",
        )
        .unwrap()
    }

    // Regression: `UserKnownHostsFile=/dev/null` with accept-new, run as root, replaced the
    // /dev/null device with a regular file (temp file renamed over it).
    #[test]
    fn append_to_dev_null_leaves_the_device_alone() {
        use std::os::unix::fs::FileTypeExt as _;
        append(Path::new("/dev/null"), "h", 2222, &key(), false).unwrap();
        let m = std::fs::metadata("/dev/null").unwrap();
        assert!(
            m.file_type().is_char_device(),
            "/dev/null is no longer a device"
        );
        assert!(!Path::new("/dev/null.lock").exists());
    }

    #[test]
    fn rewrites_of_a_device_are_refused() {
        use std::os::unix::fs::FileTypeExt as _;
        let e = remove_host(Path::new("/dev/null"), "h", 22).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let e = hash_file(Path::new("/dev/null")).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let m = std::fs::metadata("/dev/null").unwrap();
        assert!(m.file_type().is_char_device());
    }
}

#[cfg(test)]
mod update_host_keys_tests {
    use super::*;
    use crate::known_hosts::test_keys::{key, ED1, ED2, ED3, RSA1};

    #[test]
    fn adds_proved_keys_and_removes_only_exact_lines_of_dropped_keys() {
        let dir = crate::known_hosts::test_dir();
        let path = dir.path().join("known_hosts");
        let hashed = format_line("web1", 2222, &key(ED3), true).unwrap();
        std::fs::write(
            &path,
            format!(
                "# mine\n[web1]:2222 {ED1}\n[web1]:2222 {ED2}\n[web1]:2222,web2 {ED2}\n\
                 [web*]:2222 {ED2}\n{hashed}\n@revoked [web1]:2222 {ED2}\nweb1 {ED2}\n"
            ),
        )
        .unwrap();
        let offered = [key(ED1), key(RSA1)];
        let u = update_host_keys(&path, "web1", 2222, &offered, &[key(RSA1)], false).unwrap();
        assert_eq!(u.added.len(), 1);
        // The exact plain line of ED2 and the hashed line of ED3 go; the list, the pattern,
        // the marker line and the other port stay.
        assert_eq!(u.removed.len(), 2);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            format!(
                "# mine\n[web1]:2222 {ED1}\n[web1]:2222,web2 {ED2}\n[web*]:2222 {ED2}\n\
                 @revoked [web1]:2222 {ED2}\nweb1 {ED2}\n[web1]:2222 {RSA1}\n"
            )
        );
        assert!(with_suffix(&path, ".old").exists());
        // Nothing more to do: the file is left alone.
        let u = update_host_keys(&path, "web1", 2222, &offered, &[key(RSA1)], false).unwrap();
        assert!(u.added.is_empty() && u.removed.is_empty());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }
}
