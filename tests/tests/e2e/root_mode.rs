//! mshd as root serves any local user, and the session runs as that user (uid, groups, home,
//! shell, terminal ownership); mshd started as an ordinary user serves only that user.
//! Needs root (tests create throwaway users with useradd).

use std::time::Duration;

use msh_tests::mshd::Mshd;
use msh_tests::users::{require_root, TestUser};
use msh_tests::*;

const T: Duration = Duration::from_secs(30);
const LOG: Duration = Duration::from_secs(5);

#[test]
fn root_mode_session_runs_as_the_user() {
    if !require_root("root_mode_session_runs_as_the_user") {
        return;
    }
    let u = TestUser::with_extra_group();
    let d = Mshd::builder("root-mode").home_authorized_keys().start();
    u.write_authorized_keys(&format!("{}\n", d.client_public));
    let out = run(
        d.ssh_as(
            &u.name,
            &[],
            "id -un; id -u; id -g; id -G; echo $HOME; echo $SHELL; pwd; echo $USER $LOGNAME; echo $0",
        ),
        b"",
        T,
    );
    d.assert_ok(&out);
    let text = out.stdout_str();
    let lines: Vec<&str> = text.lines().collect();
    let (extra_name, extra_gid) = u.extra_group.clone().unwrap();
    assert_eq!(lines[0], u.name, "{text}");
    assert_eq!(lines[1], u.uid.to_string());
    assert_eq!(lines[2], u.gid.to_string());
    let groups: Vec<u32> = lines[3].split(' ').map(|g| g.parse().unwrap()).collect();
    assert!(
        groups.contains(&u.gid) && groups.contains(&extra_gid),
        "groups {groups:?} lack {extra_name}"
    );
    assert!(!groups.contains(&0), "root's group kept: {groups:?}");
    assert_eq!(lines[4], u.home.display().to_string());
    assert_eq!(lines[5], u.shell.display().to_string());
    assert_eq!(lines[6], u.home.display().to_string());
    assert_eq!(lines[7], format!("{} {}", u.name, u.name));
    assert_eq!(
        lines[8], "bash",
        "exec runs through the login shell with -c"
    );
    d.wait_for_log(&format!("accepted publickey for {}", u.name), LOG);
}

#[test]
fn root_mode_pty_belongs_to_the_user_and_the_shell_is_a_login_shell() {
    if !require_root("root_mode_pty_belongs_to_the_user_and_the_shell_is_a_login_shell") {
        return;
    }
    let u = TestUser::new();
    let d = Mshd::builder("root-pty")
        .use_config_authorized_keys()
        .toml("authorized_keys_files = [\"/nonexistent/%u\", \"%h/.ssh/authorized_keys\"]")
        .start();
    u.write_authorized_keys(&format!("{}\n", d.client_public));
    // A shell (no command) on a PTY, fed from stdin: argv0 is "-bash" (login shell).
    let out = run(
        d.ssh_as(&u.name, &["-tt"], ""),
        b"echo ARGV0=$0; stat -c OWNER=%U $(tty); id -u; exit 5\n",
        T,
    );
    let text = out.stdout_str();
    assert_eq!(
        out.code(),
        Some(5),
        "out: {text} err: {}\nlog:\n{}",
        out.stderr,
        d.log_text()
    );
    assert!(text.contains("ARGV0=-bash"), "{text}");
    assert!(text.contains(&format!("OWNER={}", u.name)), "{text}");
    assert!(
        text.contains(&format!("\n{}\r", u.uid)) || text.contains(&format!("{}\r\n", u.uid)),
        "{text}"
    );
}

#[test]
fn root_mode_key_of_one_user_does_not_open_another() {
    if !require_root("root_mode_key_of_one_user_does_not_open_another") {
        return;
    }
    let a = TestUser::new();
    let b = TestUser::new();
    let d = Mshd::builder("root-two-users")
        .home_authorized_keys()
        .start();
    a.write_authorized_keys(&format!("{}\n", d.client_public));
    b.write_authorized_keys("");
    let out = run(d.ssh_as(&b.name, &[], "id -un"), b"", T);
    assert_eq!(out.code(), Some(255));
    assert!(out.stdout.is_empty());
    let out = run(d.ssh_as(&a.name, &[], "id -un"), b"", T);
    assert_eq!(out.stdout_str(), format!("{}\n", a.name));
}

#[test]
fn allow_users_limits_who_may_log_in() {
    if !require_root("allow_users_limits_who_may_log_in") {
        return;
    }
    let a = TestUser::new();
    let d = Mshd::builder("root-allow")
        .home_authorized_keys()
        .toml("allow_users = [\"nobody-else\"]")
        .start();
    a.write_authorized_keys(&format!("{}\n", d.client_public));
    let out = run(d.ssh_as(&a.name, &[], "id -un"), b"", T);
    assert_eq!(out.code(), Some(255));
    d.wait_for_log("is not in allow_users", LOG);
}

#[test]
fn unprivileged_mshd_serves_only_its_own_user() {
    if !require_root("unprivileged_mshd_serves_only_its_own_user") {
        return;
    }
    let u = TestUser::new();
    let d = Mshd::builder("unpriv").run_as(&u.name).start();
    d.wait_for_log("unprivileged mode", LOG);
    let out = run(d.ssh_as(&u.name, &[], "id -un; echo $HOME"), b"", T);
    d.assert_ok(&out);
    assert_eq!(
        out.stdout_str(),
        format!("{}\n{}\n", u.name, u.home.display())
    );

    let out = run(d.ssh_as("root", &[], "id -un"), b"", T);
    assert_eq!(
        out.code(),
        Some(255),
        "root got in through an unprivileged mshd"
    );
    assert!(out.stdout.is_empty());
    let log = d.wait_for_log("rejected publickey for root", LOG);
    assert!(log.contains("serves only its own user"), "{log}");
}

#[test]
fn root_mode_reads_only_authorized_keys_the_user_could_read() {
    if !require_root("root_mode_reads_only_authorized_keys_the_user_could_read") {
        return;
    }
    let u = TestUser::new();
    let d = Mshd::builder("root-unreadable")
        .home_authorized_keys()
        .start();
    // A root-only file (0600 root, like /etc/shadow) holding the key, linked from the
    // user's home: strict_modes allows root-owned files, but the user cannot read it.
    let secret = d
        .dir
        .write("root-only-keys", format!("{}\n", d.client_public), 0o600);
    let ak = u.write_authorized_keys("");
    std::fs::remove_file(&ak).unwrap();
    std::os::unix::fs::symlink(&secret, &ak).unwrap();
    let out = run(d.ssh_as(&u.name, &[], "id -un"), b"", T);
    assert_eq!(
        out.code(),
        Some(255),
        "a root-only file authorized {}",
        u.name
    );
    d.wait_for_log("could not read it itself", LOG);
    // The same file made readable by the user works.
    nix::unistd::chown(&secret, Some(nix::unistd::Uid::from_raw(u.uid)), None).unwrap();
    let out = run(d.ssh_as(&u.name, &[], "id -un"), b"", T);
    assert_eq!(
        out.stdout_str(),
        format!("{}\n", u.name),
        "{}",
        d.log_text()
    );
}
