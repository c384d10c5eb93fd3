//! mshd's `use_pam` (issue 12, Identity): PAM account management refuses logins (pam_nologin),
//! the session modules wrap every session in a per-session process and not in mshd
//! (pam_limits, pam_env, pam_exec around the command, open before and close after it), and
//! with `use_pam = false` none of it runs. Each test installs a throwaway PAM service
//! `/etc/pam.d/msh-test-*` (removed by a guard) so the system's own stacks are untouched.
//! Needs root (throwaway users, /etc/pam.d). Driven with OpenSSH's ssh and with msh.

use std::path::{Path, PathBuf};
use std::time::Duration;

use msh_tests::mshd::Mshd;
use msh_tests::users::{require_root, TestUser};
use msh_tests::*;

const T: Duration = Duration::from_secs(30);
const LOG: Duration = Duration::from_secs(5);

/// A PAM service file in /etc/pam.d, removed when dropped.
struct PamService {
    name: String,
    path: PathBuf,
}

impl PamService {
    /// A name of its own for every install: tests run in parallel threads of one process,
    /// and two with the same tag must not share (and overwrite, and remove) one file.
    fn install(tag: &str, text: &str) -> PamService {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("msh-test-{tag}-{}-{n}", std::process::id());
        let path = Path::new("/etc/pam.d").join(&name);
        std::fs::write(&path, text).unwrap();
        PamService { name, path }
    }
}

impl Drop for PamService {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn mshd_for(name: &str, u: &TestUser, toml: &str) -> Mshd {
    let d = Mshd::builder(name)
        .home_authorized_keys()
        .toml(toml)
        .start();
    u.write_authorized_keys(&format!("{}\n", d.client_public));
    d
}

fn ssh_as(d: &Mshd, user: &str, opts: &[&str], command: &str) -> Output {
    run(
        openssh_command(d.port, user, &d.client_key, &d.known_hosts, opts, command),
        b"",
        T,
    )
}

fn msh_as(d: &Mshd, user: &str, opts: &[&str], command: &str) -> Output {
    let mut c = cmd(bin("msh"), opts);
    c.args(["-p", &d.port.to_string(), "-l", user, "-i"])
        .arg(&d.client_key)
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", d.known_hosts.display()))
        .args([
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "127.0.0.1",
            command,
        ])
        .env("HOME", &d.dir.path);
    run(c, b"", T)
}

/// Polls `f` every 50 ms until it holds or `timeout` passes.
fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

fn usermod(args: &[&str]) {
    let out = run(cmd(tool("usermod"), args), b"", T);
    assert!(out.status.success(), "usermod {args:?}: {}", out.stderr);
}

#[test]
fn pam_nologin_refuses_logins_while_its_file_exists_for_ssh_and_msh() {
    if !require_root("pam_nologin_refuses_logins_while_its_file_exists_for_ssh_and_msh") {
        return;
    }
    let u = TestUser::new();
    let dir = TestDir::new("pam-nologin");
    let nologin = dir.join("nologin");
    let svc = PamService::install(
        "nologin",
        &format!(
            "account required pam_nologin.so file={}\naccount required pam_permit.so\n\
             session required pam_permit.so\n",
            nologin.display()
        ),
    );
    let d = Mshd::builder("pam-nologin")
        .home_authorized_keys()
        .audit_log()
        .toml(&format!("use_pam = true\npam_service = \"{}\"", svc.name))
        .start();
    u.write_authorized_keys(&format!("{}\n", d.client_public));
    std::fs::write(&nologin, "maintenance until noon\n").unwrap();
    let out = ssh_as(&d, &u.name, &[], "id -un");
    assert_eq!(out.code(), Some(255), "ssh got in: {}", d.log_text());
    assert!(out.stdout.is_empty());
    let out = msh_as(&d, &u.name, &[], "id -un");
    assert_ne!(out.code(), Some(0), "msh got in: {}", d.log_text());
    assert!(out.stdout.is_empty());
    // The log says it was PAM, which step, the service, and what pam_nologin said.
    let log = d.wait_for_log("maintenance until noon", LOG);
    assert!(
        log.contains(&format!("rejected publickey for {}", u.name))
            && log.contains(&format!(
                "PAM account management (pam_acct_mgmt) for service \"{}\" failed",
                svc.name
            )),
        "{log}"
    );
    let refusals = log
        .lines()
        .filter(|l| l.contains("rejected publickey") && l.contains("pam_acct_mgmt"))
        .count();
    assert!(refusals >= 2, "one refusal per client expected: {log}");
    // The audit event of the refused login carries the same reason.
    let event = d.wait_for_audit_where(
        "auth rejected by PAM",
        |e| {
            e["event"] == "auth"
                && e["outcome"] == "rejected"
                && e["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("pam_acct_mgmt") && r.contains("maintenance"))
        },
        LOG,
    );
    assert_eq!(event["user"], u.name.as_str(), "{event}");

    std::fs::remove_file(&nologin).unwrap();
    let out = ssh_as(&d, &u.name, &[], "id -un");
    d.assert_ok(&out);
    assert_eq!(out.stdout_str(), format!("{}\n", u.name));
    let out = msh_as(&d, &u.name, &[], "id -un");
    assert_eq!(out.code(), Some(0), "msh: {}\n{}", out.stderr, d.log_text());
    assert_eq!(out.stdout_str(), format!("{}\n", u.name));
}

#[test]
fn expired_and_locked_accounts_are_refused_with_and_without_pam() {
    if !require_root("expired_and_locked_accounts_are_refused_with_and_without_pam") {
        return;
    }
    let locked = TestUser::new();
    let expired = TestUser::new();
    let normal = TestUser::new();
    usermod(&["-L", &locked.name]);
    usermod(&["--expiredate", "1", &expired.name]);
    // A stack that admits everyone: the refusals below are mshd's own shadow check.
    let svc = PamService::install(
        "permit",
        "account required pam_permit.so\nsession required pam_permit.so\n",
    );
    for use_pam in [true, false] {
        let d = Mshd::builder(&format!("pam-disabled-{use_pam}"))
            .home_authorized_keys()
            .toml(&format!(
                "use_pam = {use_pam}\npam_service = \"{}\"",
                svc.name
            ))
            .start();
        for u in [&locked, &expired, &normal] {
            u.write_authorized_keys(&format!("{}\n", d.client_public));
        }
        for u in [&locked, &expired] {
            let out = ssh_as(&d, &u.name, &[], "id -un");
            assert_eq!(
                out.code(),
                Some(255),
                "use_pam {use_pam}: ssh let {} in",
                u.name
            );
            let out = msh_as(&d, &u.name, &[], "id -un");
            assert_ne!(
                out.code(),
                Some(0),
                "use_pam {use_pam}: msh let {} in",
                u.name
            );
            assert!(out.stdout.is_empty());
        }
        let log = d.wait_for_log(&format!("account \"{}\" is locked", locked.name), LOG);
        assert!(
            log.contains(&format!(
                "account \"{}\" expired on 1970-01-02",
                expired.name
            )),
            "use_pam {use_pam}: {log}"
        );
        let out = ssh_as(&d, &normal.name, &[], "id -un");
        d.assert_ok(&out);
        let out = msh_as(&d, &normal.name, &[], "id -un");
        assert_eq!(out.code(), Some(0), "use_pam {use_pam}: {}", out.stderr);
    }
}

/// The session stack of the session tests: limits, an environment file, and a pam_exec
/// script that records each call with its parent process (the process that called PAM).
fn session_service(dir: &TestDir, user: &str) -> (PamService, PathBuf) {
    let limits = dir.join("limits.conf");
    std::fs::write(
        &limits,
        format!("{user} soft nofile 777\n{user} hard nofile 777\n"),
    )
    .unwrap();
    let env = dir.join("env");
    std::fs::write(&env, "MSH_PAM_TEST=from-pam-env\n").unwrap();
    let record = dir.join("record");
    let script = dir.join("record.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$PAM_TYPE $PAM_USER tty=$PAM_TTY rhost=$PAM_RHOST caller=$PPID\" >> {}\n",
            record.display()
        ),
    )
    .unwrap();
    msh_tests::mshd::set_mode(&script, 0o755);
    let svc = PamService::install(
        "session",
        &format!(
            "account required pam_permit.so\n\
             session required pam_limits.so conf={}\n\
             session required pam_env.so envfile={} conffile=/dev/null\n\
             session optional pam_exec.so {}\n",
            limits.display(),
            env.display(),
            script.display()
        ),
    );
    (svc, record)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The value of `key` in /proc/PID/limits' "Max open files" row (the soft limit).
fn nofile_of(pid: u32) -> String {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let row = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .to_string();
    row.split_whitespace().nth(3).unwrap().to_string()
}

#[test]
fn pam_session_modules_wrap_each_session_in_its_own_process_not_mshd() {
    if !require_root("pam_session_modules_wrap_each_session_in_its_own_process_not_mshd") {
        return;
    }
    let u = TestUser::new();
    let dir = TestDir::new("pam-session");
    let (svc, record) = session_service(&dir, &u.name);
    let d = mshd_for(
        "pam-session",
        &u,
        &format!("use_pam = true\npam_service = \"{}\"", svc.name),
    );
    let mshd_pid = d.proc.child.id();
    // Without a PTY: the limit and the variable are the session's; the PAM session was
    // opened by the shell's parent before the command ran, and is not closed yet.
    let show = format!(
        "ulimit -n; echo \"$MSH_PAM_TEST\"; echo parent=$PPID; cat {}",
        record.display()
    );
    let out = ssh_as(&d, &u.name, &[], &show);
    d.assert_ok(&out);
    let text = out.stdout_str();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "777", "pam_limits: {text}");
    assert_eq!(lines[1], "from-pam-env", "pam_env: {text}");
    let parent = lines[2].strip_prefix("parent=").unwrap().to_string();
    assert_ne!(parent, mshd_pid.to_string(), "the shell's parent is mshd");
    assert_eq!(
        lines[3..].to_vec(),
        vec![format!(
            "open_session {} tty=ssh rhost=127.0.0.1 caller={parent}",
            u.name
        )],
        "{text}"
    );
    // Closed by the same process once the command ended.
    let closed = format!(
        "close_session {} tty=ssh rhost=127.0.0.1 caller={parent}",
        u.name
    );
    assert!(
        wait_until(T, || read(&record).contains(&closed)),
        "no {closed:?} in {}",
        read(&record)
    );
    // The daemon itself is untouched: its limit and environment are not the session's.
    assert_ne!(nofile_of(mshd_pid), "777", "pam_limits changed mshd itself");
    let environ = std::fs::read(format!("/proc/{mshd_pid}/environ")).unwrap();
    assert!(
        !String::from_utf8_lossy(&environ).contains("MSH_PAM_TEST"),
        "pam_env changed mshd's own environment"
    );

    // With a PTY, through msh: the same, with PAM_TTY the terminal's path.
    std::fs::write(&record, "").unwrap();
    let out = msh_as(
        &d,
        &u.name,
        &["-tt"],
        "ulimit -n; echo \"$MSH_PAM_TEST\"; tty",
    );
    assert_eq!(out.code(), Some(0), "msh: {}\n{}", out.stderr, d.log_text());
    let text = out.stdout_str().replace('\r', "");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "777", "pam_limits on a PTY: {text}");
    assert_eq!(lines[1], "from-pam-env", "{text}");
    let tty = lines[2];
    assert!(tty.starts_with("/dev/pts/"), "{text}");
    assert!(
        wait_until(T, || read(&record).contains("close_session")),
        "{}",
        read(&record)
    );
    let rec = read(&record);
    assert!(
        rec.starts_with(&format!("open_session {} tty={tty} ", u.name)),
        "{rec}"
    );
    // Exit codes pass through the keeper unchanged.
    let out = ssh_as(&d, &u.name, &[], "exit 7");
    assert_eq!(out.code(), Some(7), "{}", out.stderr);
    let out = msh_as(&d, &u.name, &[], "exit 7");
    assert_eq!(out.code(), Some(7), "{}", out.stderr);
}

#[test]
fn with_use_pam_false_no_pam_module_runs() {
    if !require_root("with_use_pam_false_no_pam_module_runs") {
        return;
    }
    let u = TestUser::new();
    let dir = TestDir::new("pam-off");
    let (svc, record) = session_service(&dir, &u.name);
    let d = mshd_for(
        "pam-off",
        &u,
        &format!("use_pam = false\npam_service = \"{}\"", svc.name),
    );
    let out = ssh_as(
        &d,
        &u.name,
        &[],
        "ulimit -n; echo \"[$MSH_PAM_TEST]\"; echo parent=$PPID",
    );
    d.assert_ok(&out);
    let text = out.stdout_str();
    let lines: Vec<&str> = text.lines().collect();
    assert_ne!(lines[0], "777", "{text}");
    assert_eq!(lines[1], "[]", "{text}");
    // Without PAM the shell is mshd's own child, as before.
    assert_eq!(lines[2], format!("parent={}", d.proc.child.id()), "{text}");
    let out = msh_as(&d, &u.name, &["-tt"], "true");
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(!record.exists(), "pam_exec ran: {}", read(&record));
}

#[test]
fn use_pam_true_without_root_is_a_config_error_naming_the_key() {
    let dir = TestDir::new("pam-unprivileged");
    let file = dir.join("mshd.toml");
    std::fs::write(&file, "# PAM\nuse_pam = true\n").unwrap();
    let mut c = cmd(bin("mshd"), ["--check-config", "--config"]);
    c.arg(&file);
    if is_root() {
        // Checked as an ordinary user: mshd decides root mode from its own uid.
        let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
        use std::os::unix::process::CommandExt;
        msh_tests::mshd::set_mode(&dir.path, 0o755);
        msh_tests::mshd::set_mode(&file, 0o644);
        c.uid(nobody.uid.as_raw()).gid(nobody.gid.as_raw());
    }
    let out = run(c, b"", T);
    assert_ne!(out.code(), Some(0), "{}", out.stdout_str());
    assert!(
        out.stderr.contains(&format!(
            "{}:2: key `use_pam`: use_pam = true needs mshd to run as root",
            file.display()
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn the_shipped_pam_service_admits_a_session_with_and_without_a_pty() {
    if !require_root("the_shipped_pam_service_admits_a_session_with_and_without_a_pty") {
        return;
    }
    let text = std::fs::read_to_string(workspace().join("dist/pam.d/msh")).unwrap();
    let svc = PamService::install("dist", &text);
    let u = TestUser::new();
    let d = mshd_for(
        "pam-dist",
        &u,
        &format!("use_pam = true\npam_service = \"{}\"", svc.name),
    );
    let out = ssh_as(&d, &u.name, &[], "id -un");
    d.assert_ok(&out);
    assert_eq!(out.stdout_str(), format!("{}\n", u.name));
    let out = msh_as(&d, &u.name, &["-tt"], "id -un; exit 3");
    assert_eq!(out.code(), Some(3), "{}\n{}", out.stderr, d.log_text());
    assert!(out.stdout_str().contains(&u.name), "{}", out.stdout_str());
}

#[test]
fn a_pam_session_that_cannot_open_refuses_the_session_and_says_why() {
    if !require_root("a_pam_session_that_cannot_open_refuses_the_session_and_says_why") {
        return;
    }
    let svc = PamService::install(
        "deny",
        "account required pam_permit.so\nsession required pam_deny.so\n",
    );
    let u = TestUser::new();
    let d = mshd_for(
        "pam-deny",
        &u,
        &format!("use_pam = true\npam_service = \"{}\"", svc.name),
    );
    let why = format!(
        "PAM pam_open_session failed for user \"{}\" (service \"{}\")",
        u.name, svc.name
    );
    for (client, out) in [
        ("ssh", ssh_as(&d, &u.name, &[], "echo ran")),
        ("msh", msh_as(&d, &u.name, &[], "echo ran")),
    ] {
        assert_eq!(out.code(), Some(254), "{client}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{client}: the command ran");
        assert!(out.stderr.contains(&why), "{client}: {}", out.stderr);
    }
    d.wait_for_log_count(&why, 2, LOG);
}

#[test]
fn a_missing_pam_service_file_is_warned_about_at_start() {
    if !require_root("a_missing_pam_service_file_is_warned_about_at_start") {
        return;
    }
    let name = format!("msh-test-absent-{}", std::process::id());
    let d = Mshd::builder("pam-absent")
        .toml(&format!("use_pam = true\npam_service = \"{name}\""))
        .start();
    let log = d.wait_for_log(&format!("/etc/pam.d/{name} does not exist"), LOG);
    let line = log
        .lines()
        .find(|l| l.contains(&format!("/etc/pam.d/{name} does not exist")))
        .unwrap();
    assert!(
        line.contains("WARN") && line.contains("/etc/pam.d/other"),
        "{line}"
    );
}

#[test]
fn a_client_signal_reaches_the_program_and_the_pam_session_still_closes_even_after_kill() {
    if !require_root(
        "a_client_signal_reaches_the_program_and_the_pam_session_still_closes_even_after_kill",
    ) {
        return;
    }
    let u = TestUser::new();
    let dir = TestDir::new("pam-signal");
    let (svc, record) = session_service(&dir, &u.name);
    let d = mshd_for(
        "pam-signal",
        &u,
        &format!("use_pam = true\npam_service = \"{}\"", svc.name),
    );
    let port = d.port.to_string();
    let key = d.client_key.display().to_string();
    // TERM is caught-able, KILL is not: if it reached the keeper instead of the program,
    // the keeper would die without closing the PAM session.
    for sig in ["TERM", "KILL"] {
        std::fs::write(&record, "").unwrap();
        let r = msh_tests::mshd::probe(
            &[
                "signal",
                "127.0.0.1",
                &port,
                &u.name,
                &key,
                "exec",
                "echo ready; sleep 30",
                sig,
                "1",
            ],
            T,
        );
        assert_eq!(r["reply"], "success", "{sig}: {r}\n{}", d.log_text());
        assert_eq!(r["exit_signal"], sig, "{sig}: {r}");
        assert!(
            wait_until(T, || read(&record).contains("close_session")),
            "{sig}: the PAM session was not closed: {}",
            read(&record)
        );
        let rec = read(&record);
        assert!(rec.starts_with("open_session "), "{sig}: {rec}");
    }
}
