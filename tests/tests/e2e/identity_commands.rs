//! `authorized_keys_command` and `authorized_principals_command` (sshd's AuthorizedKeysCommand
//! and AuthorizedPrincipalsCommand) in root mode: real shell scripts run by mshd as a
//! throwaway user, logged in to with OpenSSH's `ssh` and with `msh`. The script's behaviour is
//! switched by a file the test writes (`mode`), so one mshd serves every case of a test.
//! Needs root (useradd).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use msh_tests::mshd::{Mshd, MshdBuilder};
use msh_tests::users::{require_root, TestUser};
use msh_tests::*;

const T: Duration = Duration::from_secs(30);
const LOG: Duration = Duration::from_secs(10);

/// The script every test runs: records its uid, arguments and PID in its run-as user's home
/// (`$HOME`, set by mshd), then acts on `DIR/mode`: `ok` prints `DIR/out`; `fail` prints it
/// and exits 1; `sleep` prints it and waits on a child sleeping for a minute (both PIDs
/// recorded); `big` prints it and then 2 MB of comment characters.
fn script(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "#!/bin/sh\n\
         id -u > \"$HOME/uid\"\n\
         echo \"$@\" > \"$HOME/args\"\n\
         echo \"$HOME $USER $LOGNAME $PATH\" > \"$HOME/env\"\n\
         echo $$ > \"$HOME/pid\"\n\
         cat {d}/out\n\
         case \"$(cat {d}/mode)\" in\n\
         fail) exit 1 ;;\n\
         sleep) sleep 60 & echo $! > \"$HOME/child\"; wait ;;\n\
         big) head -c 2000000 /dev/zero | tr '\\0' '#' ;;\n\
         esac\n\
         exit 0\n"
    )
}

/// A test's setup: the target user, the command's run-as user, and mshd running the script
/// (`/DIR/bin/keys` here) as `key` with extra config lines.
struct Setup {
    d: Mshd,
    target: TestUser,
    runner: TestUser,
    program: PathBuf,
    /// Key B: a second key of the test, never printed by the command.
    other_key: PathBuf,
}

fn builder(name: &str, dir: TestDir) -> MshdBuilder {
    // No authorized_keys file at all: only the command can admit.
    Mshd::builder(name)
        .dir(dir)
        .use_config_authorized_keys()
        .toml("authorized_keys_files = [\"%h/.ssh/authorized_keys\"]")
        .audit_log()
}

impl Setup {
    /// `key` is `authorized_keys_command` or `authorized_principals_command`; `args` the
    /// arguments after the program.
    fn start(name: &str, key: &str, args: &str, extra: &[&str]) -> Setup {
        let target = TestUser::new();
        let runner = TestUser::new();
        let dir = TestDir::new(name);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        let program = dir.write("bin/keys", script(&dir.path), 0o755);
        dir.write("mode", "ok", 0o644);
        dir.write("out", "", 0o644);
        let other_key = ssh_keygen_ed25519(&dir, "other_key");
        let mut b = builder(name, dir)
            .toml(&format!("{key} = \"{} {args}\"", program.display()))
            .toml(&format!("{key}_user = \"{}\"", runner.name));
        for line in extra {
            b = b.toml(line);
        }
        let d = b.start();
        Setup {
            d,
            target,
            runner,
            program,
            other_key,
        }
    }

    fn set(&self, file: &str, text: &str) {
        self.d.dir.write(file, text, 0o644);
    }

    /// `ssh` and `msh` as the target user with `key` (its `-cert.pub` is used when present),
    /// running `echo in`.
    fn both(&self, key: &Path) -> [Output; 2] {
        let ssh = run(
            self.d.ssh_with_key(&self.target.name, key, &[], "echo in"),
            b"",
            T,
        );
        let mut c = crate::msh_to_sshd::msh_cmd(
            &self.d.dir,
            self.d.port,
            &self.target.name,
            &self.d.known_hosts,
            &["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"],
        );
        c.arg("-i").arg(key).args(["127.0.0.1", "echo in"]);
        let msh = run(c, b"", T);
        [ssh, msh]
    }

    #[track_caller]
    fn assert_in(&self, key: &Path, expected: &str) {
        for (client, out) in ["ssh", "msh"].iter().zip(self.both(key)) {
            assert_eq!(
                (out.code(), out.stdout_str().as_str()),
                (Some(0), expected),
                "{client} was refused: {}\nlog:\n{}",
                out.stderr,
                self.d.log_text()
            );
        }
    }

    #[track_caller]
    fn assert_refused(&self, key: &Path, what: &str) {
        for (client, out) in ["ssh", "msh"].iter().zip(self.both(key)) {
            assert_eq!(
                out.code(),
                Some(255),
                "{client} got in ({what}): {}\nlog:\n{}",
                out.stdout_str(),
                self.d.log_text()
            );
            assert_eq!(out.stdout_str(), "", "{client}: nothing ran ({what})");
        }
    }

    fn runner_file(&self, name: &str) -> String {
        std::fs::read_to_string(self.runner.home.join(name))
            .unwrap_or_default()
            .trim()
            .to_string()
    }
}

/// Whether process `pid` still exists (a zombie counts as gone: it runs nothing).
fn alive(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[test]
fn keys_command_admits_only_the_key_it_prints_with_its_options_as_its_user() {
    if !require_root("keys_command_admits_only_the_key_it_prints_with_its_options_as_its_user") {
        return;
    }
    let s = Setup::start(
        "akc-admits",
        "authorized_keys_command",
        "%u %U %h %t %f",
        &[],
    );
    // A malformed line (reported, skipped), then the fixture's key with a forced command.
    s.set(
        "out",
        &format!(
            "not a key line\ncommand=\"echo forced\" {}\n",
            s.d.client_public
        ),
    );
    s.assert_in(&s.d.client_key, "forced\n");
    // Run as the configured user, never root or the target, with tokens expanded and a clean
    // environment.
    assert_eq!(s.runner_file("uid"), s.runner.uid.to_string());
    let fp = msh_tests::mshd::fingerprint_of(&s.d.dir.join("id_ed25519.pub"));
    assert_eq!(
        s.runner_file("args"),
        format!(
            "{} {} {} ssh-ed25519 {fp}",
            s.target.name,
            s.target.uid,
            s.target.home.display()
        )
    );
    assert_eq!(
        s.runner_file("env"),
        format!(
            "{} {n} {n} /usr/bin:/bin:/usr/sbin:/sbin",
            s.runner.home.display(),
            n = s.runner.name
        )
    );
    let log = s.d.wait_for_log("authorized_keys_command:1: ", LOG);
    assert!(log.contains("line skipped"), "{log}");
    assert!(
        log.contains(&format!("ran as {} (uid {})", s.runner.name, s.runner.uid)),
        "{log}"
    );
    assert!(log.contains("authorized_keys_command:2"), "{log}");
    // Key B is not printed: refused, with the command named in the reason.
    s.assert_refused(&s.other_key, "a key the command did not print");
    let log = s.d.wait_for_log("key not in", LOG);
    assert!(log.contains("authorized_keys_command"), "{log}");
    let audit = s.d.wait_for_audit("auth", 1, LOG);
    assert!(
        audit.iter().any(|e| e["outcome"] == "accepted"
            && e["reason"]
                .as_str()
                .unwrap_or("")
                .contains("authorized_keys_command:2")),
        "{audit:?}"
    );
}

#[test]
fn keys_command_that_fails_times_out_or_prints_too_much_admits_nobody() {
    if !require_root("keys_command_that_fails_times_out_or_prints_too_much_admits_nobody") {
        return;
    }
    let s = Setup::start(
        "akc-fails",
        "authorized_keys_command",
        "",
        &["authorized_keys_command_timeout = \"2s\""],
    );
    s.set("out", &format!("{}\n", s.d.client_public));
    // Without arguments the command gets the user name, as sshd passes it.
    s.assert_in(&s.d.client_key, "in\n");
    assert_eq!(s.runner_file("args"), s.target.name);

    s.set("mode", "fail");
    s.assert_refused(&s.d.client_key, "exit 1");
    s.d.wait_for_log("admits nobody: exited with status 1", LOG);

    s.set("mode", "big");
    s.assert_refused(&s.d.client_key, "2 MB of output");
    s.d.wait_for_log("admits nobody: more than 1048576 bytes of output", LOG);

    s.set("mode", "sleep");
    let start = Instant::now();
    s.assert_refused(&s.d.client_key, "timeout");
    s.d.wait_for_log("admits nobody: timed out after 2s", LOG);
    // The script and the child it started were killed with their process group.
    let (pid, child) = (s.runner_file("pid"), s.runner_file("child"));
    assert!(
        !pid.is_empty() && !child.is_empty(),
        "the script did not run"
    );
    while alive(&pid) || alive(&child) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "command {pid} or its child {child} outlived the timeout"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // Each refusal's audit event names the command's outcome.
    let audit = s.d.wait_for_audit("auth", 1, LOG);
    for outcome in [
        "exited with status 1",
        "more than 1048576 bytes of output",
        "timed out after 2s",
    ] {
        assert!(
            audit.iter().any(|e| {
                let reason = e["reason"].as_str().unwrap_or("");
                e["outcome"] == "rejected"
                    && reason.contains(&format!(
                        "authorized_keys_command \"{}",
                        s.program.display()
                    ))
                    && reason.contains(&format!("admits nobody: {outcome}"))
            }),
            "no audit event says {outcome:?}: {audit:?}"
        );
    }

    s.set("mode", "ok");
    s.assert_in(&s.d.client_key, "in\n");
}

#[test]
fn keys_command_of_an_unprivileged_mshd_runs_as_mshd_user() {
    if !require_root("keys_command_of_an_unprivileged_mshd_runs_as_mshd_user") {
        return;
    }
    let u = TestUser::new();
    let dir = TestDir::new("akc-unpriv");
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    let program = dir.write("bin/keys", script(&dir.path), 0o755);
    dir.write("mode", "ok", 0o644);
    let d = Mshd::builder("akc-unpriv")
        .dir(dir)
        .run_as(&u.name)
        .authorized_keys_contents("")
        .toml(&format!(
            "authorized_keys_command = \"{} %u\"",
            program.display()
        ))
        .toml("authorized_keys_command_user = \"nobody\"")
        .start();
    d.wait_for_log("authorized_keys_command_user = \"nobody\" is ignored", LOG);
    d.dir.write("out", format!("{}\n", d.client_public), 0o644);
    let out = run(d.ssh_as(&u.name, &[], "echo in"), b"", T);
    d.assert_ok(&out);
    assert_eq!(out.stdout_str(), "in\n");
    let uid = std::fs::read_to_string(u.home.join("uid")).unwrap_or_default();
    assert_eq!(
        uid.trim(),
        u.uid.to_string(),
        "the command ran as someone else"
    );
}

#[test]
fn keys_command_program_writable_by_others_or_in_a_writable_directory_is_not_run() {
    if !require_root(
        "keys_command_program_writable_by_others_or_in_a_writable_directory_is_not_run",
    ) {
        return;
    }
    let s = Setup::start("akc-unsafe", "authorized_keys_command", "%u", &[]);
    s.set("out", &format!("{}\n", s.d.client_public));
    s.assert_in(&s.d.client_key, "in\n");
    let ran = |s: &Setup| s.runner_file("pid");
    std::fs::remove_file(s.runner.home.join("pid")).unwrap();

    msh_tests::mshd::set_mode(&s.program, 0o775);
    s.assert_refused(&s.d.client_key, "group-writable program");
    let log = s.d.wait_for_log("writable by group", LOG);
    assert!(
        log.contains(&format!(
            "unsafe program: {}: bad ownership",
            s.program.display()
        )),
        "{log}"
    );
    assert_eq!(ran(&s), "", "a group-writable program ran");

    msh_tests::mshd::set_mode(&s.program, 0o755);
    let bin = s.program.parent().unwrap().to_path_buf();
    msh_tests::mshd::set_mode(&bin, 0o777);
    s.assert_refused(&s.d.client_key, "program in a world-writable directory");
    let log = s.d.wait_for_log("writable by group and others", LOG);
    assert!(
        log.contains(&format!("unsafe program: {}: bad ownership", bin.display())),
        "{log}"
    );
    assert_eq!(ran(&s), "", "a program in a world-writable directory ran");
    msh_tests::mshd::set_mode(&bin, 0o755);
}

#[test]
fn keys_command_user_root_or_missing_is_refused() {
    if !require_root("keys_command_user_root_or_missing_is_refused") {
        return;
    }
    let target = TestUser::new();
    for (user, needle) in [
        ("root", "is root (uid 0): the command is never run as root"),
        ("msh-no-such-user", "\"msh-no-such-user\" does not exist"),
    ] {
        let dir = TestDir::new("akc-user");
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        let program = dir.write("bin/keys", script(&dir.path), 0o755);
        dir.write("mode", "ok", 0o644);
        let d = builder("akc-user", dir)
            .toml(&format!(
                "authorized_keys_command = \"{}\"",
                program.display()
            ))
            .toml(&format!("authorized_keys_command_user = \"{user}\""))
            .start();
        d.dir.write("out", format!("{}\n", d.client_public), 0o644);
        let out = run(
            d.ssh_with_key(&target.name, &d.client_key, &[], "echo in"),
            b"",
            T,
        );
        assert_eq!(
            out.code(),
            Some(255),
            "ssh got in with the command run as {user}"
        );
        d.wait_for_log(needle, LOG);
    }
}

#[test]
fn principals_command_admits_a_certificate_whose_principal_it_prints() {
    if !require_root("principals_command_admits_a_certificate_whose_principal_it_prints") {
        return;
    }
    let dir_ca = TestDir::new("apc-ca");
    let ca = ssh_keygen_ed25519(&dir_ca, "user_ca");
    let s = Setup::start(
        "apc",
        "authorized_principals_command",
        "%u %i %s %T %F %t",
        &[&format!(
            "trusted_user_ca_keys = [\"{}.pub\"]",
            ca.display()
        )],
    );
    let key_pub = s.d.dir.join("id_ed25519.pub");
    ssh_keygen_sign(&ca, &key_pub, "ops-cert", "ops-team", &["-z", "42"]);
    let other_pub = s.d.dir.join("other_key.pub");
    ssh_keygen_sign(&ca, &other_pub, "other-cert", "someone-else", &[]);
    // Options on the printed line apply, as on a principals-file line.
    s.set("out", "# principals\ncommand=\"echo forced\" ops-team\n");
    s.assert_in(&s.d.client_key, "forced\n");
    assert_eq!(s.runner_file("uid"), s.runner.uid.to_string());
    let ca_fp = msh_tests::mshd::fingerprint_of(&dir_ca.join("user_ca.pub"));
    assert_eq!(
        s.runner_file("args"),
        format!(
            "{} ops-cert 42 ssh-ed25519 {ca_fp} ssh-ed25519-cert-v01@openssh.com",
            s.target.name
        )
    );
    s.d.wait_for_log("authorized_principals_command:2", LOG);
    // A certificate whose principal the command does not print is refused.
    s.assert_refused(&s.other_key, "principal not printed");
    s.d.wait_for_log("other-cert", LOG);
    // A failing command admits nobody, even the certificate it lists.
    s.set("mode", "fail");
    s.assert_refused(&s.d.client_key, "principals command exit 1");
    s.d.wait_for_log("authorized_principals_command \"", LOG);
    s.d.wait_for_log("admits nobody: exited with status 1", LOG);
}
