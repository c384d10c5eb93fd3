//! Login records in root mode, as sshd keeps them: a PTY session, from OpenSSH's `ssh -tt`
//! and from `msh -tt`, is listed by `who` on its pts line with the client's address while it
//! runs, shows in `last` with its logout once it ended, and in `lastlog`; the next
//! interactive shell is greeted with "Last login: ... from 127.0.0.1" (not with
//! `~/.hushlogin`, not with print_last_log = false, not for a command). A session without a
//! PTY, and any session under record_logins = false, records nothing. Needs root.
//!
//! /var/run/utmp may not exist on a test machine (no systemd): each test creates it (root:utmp
//! 0664) when it is absent and removes it when done, one test at a time; an existing file is
//! only added to. Other tests (sshd's) write wtmp at the same time, so everything is matched
//! on this test's own user and pts line, never on counts.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use msh_tests::mshd::Mshd;
use msh_tests::users::{require_root, TestUser};
use msh_tests::*;

use crate::msh_to_sshd::msh_cmd;

const T: Duration = Duration::from_secs(30);
const UTMP: &str = "/var/run/utmp";
const WTMP: &str = "/var/log/wtmp";

/// Holds /var/run/utmp in existence while a test needs it (see the module doc), and runs the
/// tests of this module one at a time (one of them makes the file unacceptable for a while).
struct UtmpFile {
    /// This test created the file (it did not exist): it removes it.
    created: bool,
    _serial: std::sync::MutexGuard<'static, ()>,
}

static SERIAL: Mutex<()> = Mutex::new(());

impl UtmpFile {
    fn hold() -> UtmpFile {
        let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        use std::os::unix::fs::OpenOptionsExt;
        let created = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o664)
            .open(UTMP)
        {
            Ok(_) => {
                let gid = nix::unistd::Group::from_name("utmp")
                    .unwrap()
                    .map(|g| g.gid);
                nix::unistd::chown(UTMP, Some(nix::unistd::Uid::from_raw(0)), gid).unwrap();
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(UTMP, std::fs::Permissions::from_mode(0o664)).unwrap();
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
            Err(e) => panic!("cannot create {UTMP}: {e}"),
        };
        UtmpFile {
            created,
            _serial: serial,
        }
    }
}

impl Drop for UtmpFile {
    fn drop(&mut self) {
        if self.created {
            let _ = std::fs::remove_file(UTMP);
        }
    }
}

/// A client with a PTY session, driven through pipes: its output is collected by a thread.
struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<Vec<u8>>>,
}

impl Session {
    fn start(mut c: Command) -> Session {
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let out = Arc::new(Mutex::new(Vec::new()));
        for mut r in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let out = out.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = r.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    out.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
        let stdin = child.stdin.take();
        Session { child, stdin, out }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Waits until the output has a line `TTY=/dev/pts/N PID=M` (the shell's answer, not
    /// the echo of the command) and returns ("pts/N", M).
    fn tty_and_pid(&self, log: &dyn Fn() -> String) -> (String, i32) {
        let start = Instant::now();
        loop {
            let text = self.text();
            for part in text.split("TTY=/dev/").skip(1) {
                let mut words = part.split_whitespace();
                let line = words.next().unwrap_or("");
                let pid = words
                    .next()
                    .and_then(|w| w.strip_prefix("PID="))
                    .and_then(|p| p.parse::<i32>().ok());
                if let (true, Some(pid)) = (line.starts_with("pts/"), pid) {
                    return (line.to_string(), pid);
                }
            }
            assert!(
                start.elapsed() < T,
                "no TTY=... PID=... answer from the session; output:\n{text}\nmshd log:\n{}",
                log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `exit`, waits for the client to end, and returns its output.
    fn exit(mut self) -> String {
        self.send("exit\n");
        drop(self.stdin.take());
        let status = wait_timeout(&mut self.child, T);
        assert!(
            status.is_some_and(|s| s.success()),
            "client did not exit 0: {status:?}\n{}",
            self.text()
        );
        // The reader threads finish with the pipes.
        std::thread::sleep(Duration::from_millis(100));
        self.text()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn tool_output(name: &str, args: &[&str]) -> String {
    let out = run(cmd(tool(name), args), b"", T);
    assert_eq!(out.code(), Some(0), "{name} {args:?}: {}", out.stderr);
    out.stdout_str()
}

/// `who`'s line for `user` on `line`, if any.
fn who_line(user: &str, line: &str) -> Option<String> {
    tool_output("who", &[UTMP])
        .lines()
        .find(|l| {
            let mut w = l.split_whitespace();
            w.next() == Some(user) && w.next() == Some(line)
        })
        .map(str::to_string)
}

/// `last`'s lines for `user` (full names: the test users' names are longer than 8).
fn last_lines(user: &str) -> Vec<String> {
    tool_output("last", &["-w", "-f", WTMP, user])
        .lines()
        .filter(|l| l.split_whitespace().next() == Some(user))
        .map(str::to_string)
        .collect()
}

fn lastlog(user: &str) -> String {
    tool_output("lastlog", &["-u", user])
}

/// Retries `f` until it gives Some, for at most `T`.
fn eventually<R>(what: &str, mut f: impl FnMut() -> Option<R>) -> R {
    let start = Instant::now();
    loop {
        if let Some(r) = f() {
            return r;
        }
        assert!(start.elapsed() < T, "{what} did not happen within {T:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The PID in utmp's entry for `line` (utmpdump: `[7] [PID] [ts/3] [user] [pts/3] ...`).
fn utmp_pid(line: &str) -> Option<i32> {
    tool_output("utmpdump", &[UTMP])
        .lines()
        .filter(|l| l.starts_with("[7]"))
        .find(|l| l.contains(&format!("[{line:<12}]")) || l.contains(&format!("[{line} ")))
        .and_then(|l| {
            l.split('[')
                .nth(2)
                .and_then(|p| p.split(']').next())
                .and_then(|p| p.trim().parse().ok())
        })
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn root_mshd(name: &str, u: &TestUser, toml: &str) -> Mshd {
    let d = Mshd::builder(name)
        .home_authorized_keys()
        .toml(toml)
        .start();
    u.write_authorized_keys(&format!("{}\n", d.client_public));
    d
}

#[derive(Clone, Copy)]
enum Client {
    OpenSsh,
    Msh,
}

/// A shell on a PTY (`-tt`, no command) for `user`, by `client`.
fn shell(d: &Mshd, user: &str, client: Client) -> Command {
    match client {
        Client::OpenSsh => d.ssh_as(user, &["-tt"], ""),
        Client::Msh => {
            let key = d.client_key.display().to_string();
            let mut c = msh_cmd(
                &d.dir,
                d.port,
                user,
                &d.known_hosts,
                &[
                    "-tt",
                    "-i",
                    &key,
                    "-o",
                    "StrictHostKeyChecking=yes",
                    "-o",
                    "BatchMode=yes",
                ],
            );
            c.arg("127.0.0.1");
            c
        }
    }
}

/// One interactive shell: its pts line and shell PID while it runs (checked against `who`
/// and utmp), then its whole output once it exited.
fn one_shell(d: &Mshd, u: &TestUser, client: Client, check_running: bool) -> (String, String) {
    let mut s = Session::start(shell(d, &u.name, client));
    s.send("echo TTY=$(tty) PID=$$\n");
    let (line, pid) = s.tty_and_pid(&|| d.log_text());
    if check_running {
        let who = who_line(&u.name, &line).unwrap_or_else(|| {
            panic!(
                "who does not list {} on {line} while the session runs:\n{}\nmshd log:\n{}",
                u.name,
                tool_output("who", &[UTMP]),
                d.log_text()
            )
        });
        assert!(who.contains("(127.0.0.1)"), "who shows the address: {who}");
        let mut w = cmd(tool("w"), ["-h"]);
        w.env("PROCPS_USERLEN", "32");
        let w = run(w, b"", T).stdout_str();
        assert!(
            w.lines().any(|l| {
                let mut f = l.split_whitespace();
                f.next() == Some(u.name.as_str()) && f.next() == Some(line.as_str())
            }),
            "w lists {} on {line}: {w}",
            u.name
        );
        // ut_pid: the session's process (the shell itself, or a PAM keeper above it).
        let recorded = utmp_pid(&line).expect("a USER_PROCESS entry for the line");
        assert!(
            recorded == pid || parent_of(pid) == Some(recorded),
            "utmp pid {recorded}, shell {pid}"
        );
        // No logout yet: `last` says "still logged in", or "gone - no logout" when the
        // process's loginuid is not the user's (no pam_loginuid: util-linux's is_phantom).
        let l = last_lines(&u.name);
        assert!(
            l.iter().any(|x| x.contains(&line)
                && (x.contains("still logged in") || x.contains("gone - no logout"))),
            "last while it runs: {l:?}"
        );
    }
    let out = s.exit();
    (line, out)
}

/// After the session on `line` ended: gone from `who`, and `last` shows it with a logout
/// time from 127.0.0.1, and `lastlog` names the line and the address.
fn assert_recorded_and_ended(u: &TestUser, line: &str) {
    eventually("the logout in utmp", || {
        who_line(&u.name, line).is_none().then_some(())
    });
    let ended = eventually("the logout in wtmp", || {
        last_lines(&u.name).into_iter().find(|l| {
            l.contains(line)
                && l.contains("127.0.0.1")
                // "still running": util-linux's last says so for a logout within the
                // second it started in; the next look shows the times.
                && !l.contains("still")
                && !l.contains("gone")
        })
    });
    assert!(ended.contains(" - "), "a logout time: {ended}");
    let ll = lastlog(&u.name);
    let entry = ll
        .lines()
        .find(|l| l.starts_with(&u.name))
        .unwrap_or_else(|| panic!("lastlog -u {}: {ll}", u.name));
    assert!(
        entry.contains(line) && entry.contains("127.0.0.1"),
        "lastlog: {entry}"
    );
}

fn pty_session_is_recorded(client: Client, name: &str) {
    let _utmp = UtmpFile::hold();
    let u = TestUser::new();
    let d = root_mshd(name, &u, "");
    let (line, out) = one_shell(&d, &u, client, true);
    assert!(
        !out.contains("Last login"),
        "a first login has no previous one: {out}"
    );
    assert_recorded_and_ended(&u, &line);

    // The next interactive shell is told about the first login (sshd's PrintLastLog).
    let (line2, out) = one_shell(&d, &u, client, false);
    let greeting = out
        .lines()
        .find(|l| l.contains("Last login: "))
        .unwrap_or_else(|| panic!("no Last login line: {out}"));
    assert!(
        greeting.trim_end().ends_with("from 127.0.0.1"),
        "{greeting}"
    );
    assert_recorded_and_ended(&u, &line2);

    // ~/.hushlogin: no greeting (sshd's check_quietlogin); still recorded.
    let hush = u.home.join(".hushlogin");
    std::fs::write(&hush, b"").unwrap();
    let (line3, out) = one_shell(&d, &u, client, false);
    assert!(!out.contains("Last login"), "{out}");
    assert_recorded_and_ended(&u, &line3);
}

#[test]
fn ssh_tt_session_is_in_who_while_it_runs_then_in_last_with_its_logout_and_in_lastlog() {
    if !require_root(
        "ssh_tt_session_is_in_who_while_it_runs_then_in_last_with_its_logout_and_in_lastlog",
    ) {
        return;
    }
    pty_session_is_recorded(Client::OpenSsh, "records-ssh");
}

#[test]
fn msh_tt_session_is_in_who_while_it_runs_then_in_last_with_its_logout_and_in_lastlog() {
    if !require_root(
        "msh_tt_session_is_in_who_while_it_runs_then_in_last_with_its_logout_and_in_lastlog",
    ) {
        return;
    }
    pty_session_is_recorded(Client::Msh, "records-msh");
}

/// Nothing about `user` in wtmp, and lastlog says never.
fn assert_nothing_recorded(u: &TestUser) {
    // Give a (wrongly) queued record time to land before looking.
    std::thread::sleep(Duration::from_millis(500));
    let l = last_lines(&u.name);
    assert!(l.is_empty(), "wtmp has {}: {l:?}", u.name);
    let ll = lastlog(&u.name);
    assert!(ll.contains("**Never logged in**"), "lastlog: {ll}");
}

#[test]
fn a_session_without_a_pty_records_nothing() {
    if !require_root("a_session_without_a_pty_records_nothing") {
        return;
    }
    let _utmp = UtmpFile::hold();
    let u = TestUser::new();
    let d = root_mshd("records-nopty", &u, "");
    let out = run(d.ssh_as(&u.name, &["-T"], "tty; echo done"), b"", T);
    assert!(
        out.stdout_str().contains("not a tty"),
        "{}",
        out.stdout_str()
    );
    let key = d.client_key.display().to_string();
    let mut c = msh_cmd(
        &d.dir,
        d.port,
        &u.name,
        &d.known_hosts,
        &[
            "-i",
            &key,
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
        ],
    );
    c.args(["127.0.0.1", "echo done"]);
    let out = run(c, b"", T);
    assert_eq!(out.stdout_str(), "done\n", "{}", out.stderr);
    assert_nothing_recorded(&u);
    // The same daemon does record a PTY session: nothing above was for lack of a recorder.
    let (line, _) = one_shell(&d, &u, Client::Msh, true);
    assert_recorded_and_ended(&u, &line);
    // A command on a PTY is recorded too (sshd records every PTY session), but not greeted
    // although there is a previous login now (sshd's check_quietlogin: a command).
    let out = run(
        d.ssh_as(&u.name, &["-tt"], "echo TTY=$(tty) PID=$$"),
        b"",
        T,
    );
    let text = out.stdout_str();
    assert!(!text.contains("Last login"), "{text}");
    let line = text
        .split("TTY=/dev/")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .unwrap_or_else(|| panic!("no tty: {text} {}", out.stderr))
        .to_string();
    assert_recorded_and_ended(&u, &line);
}

#[test]
fn record_logins_false_records_nothing_and_print_last_log_false_greets_nobody() {
    if !require_root("record_logins_false_records_nothing_and_print_last_log_false_greets_nobody") {
        return;
    }
    let _utmp = UtmpFile::hold();
    let u = TestUser::new();
    let d = root_mshd("records-off", &u, "record_logins = false");
    let mut s = Session::start(shell(&d, &u.name, Client::OpenSsh));
    s.send("echo TTY=$(tty) PID=$$\n");
    let (line, _) = s.tty_and_pid(&|| d.log_text());
    assert_eq!(who_line(&u.name, &line), None, "record_logins = false");
    s.exit();
    assert_nothing_recorded(&u);
    drop(d);

    // Recorded, but print_last_log = false: the second shell is not greeted.
    let d = root_mshd("records-no-greeting", &u, "print_last_log = false");
    let (line, _) = one_shell(&d, &u, Client::OpenSsh, false);
    assert_recorded_and_ended(&u, &line);
    let (_, out) = one_shell(&d, &u, Client::OpenSsh, false);
    assert!(!out.contains("Last login"), "{out}");
}

/// A client killed mid-session: the connection ends, the logout is recorded and the shell
/// still gets its hang-up (the PTY master, held until the logout is written, is closed).
#[test]
fn a_killed_client_gets_its_logout_recorded_and_its_shell_hung_up() {
    if !require_root("a_killed_client_gets_its_logout_recorded_and_its_shell_hung_up") {
        return;
    }
    let _utmp = UtmpFile::hold();
    let u = TestUser::new();
    let d = root_mshd("records-killed", &u, "");
    let mut s = Session::start(shell(&d, &u.name, Client::OpenSsh));
    s.send("echo TTY=$(tty) PID=$$\n");
    let (line, pid) = s.tty_and_pid(&|| d.log_text());
    assert!(who_line(&u.name, &line).is_some());
    s.child.kill().unwrap();
    let _ = s.child.wait();
    assert_recorded_and_ended(&u, &line);
    eventually("the shell's end after the hang-up", || {
        (!std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    });
}

/// A utmp file mshd must refuse (not root's): the sessions go on, wtmp and lastlog are still
/// written, and the refusal is logged once with the file and the reason, not at each login.
/// Only when the test created the file itself (a real system's utmp is left alone).
#[test]
fn a_refused_utmp_is_logged_once_and_sessions_go_on() {
    if !require_root("a_refused_utmp_is_logged_once_and_sessions_go_on") {
        return;
    }
    let utmp = UtmpFile::hold();
    if !utmp.created {
        eprintln!("SKIPPED a_refused_utmp_is_logged_once_and_sessions_go_on: {UTMP} exists already; not changing its owner");
        return;
    }
    nix::unistd::chown(UTMP, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
    let u = TestUser::new();
    let d = root_mshd("records-refused", &u, "");
    for _ in 0..2 {
        let (line, _) = one_shell(&d, &u, Client::OpenSsh, false);
        assert_eq!(who_line(&u.name, &line), None, "not in the refused utmp");
        let ended = eventually("the logout in wtmp", || {
            last_lines(&u.name)
                .into_iter()
                .find(|l| l.contains(&line) && !l.contains("still") && !l.contains("gone"))
        });
        assert!(ended.contains("127.0.0.1"), "{ended}");
    }
    let warning = format!(
        "login records: cannot write {UTMP}: {UTMP} is owned by uid 65534, not root; refusing to write it"
    );
    d.wait_for_log(&warning, Duration::from_secs(5));
    let log = d.log_text();
    let warnings = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains(&warning))
        .count();
    assert_eq!(warnings, 1, "said once for 2 logins and 2 logouts:\n{log}");
    assert!(lastlog(&u.name).contains("127.0.0.1"));
    nix::unistd::chown(UTMP, Some(nix::unistd::Uid::from_raw(0)), None).unwrap();
}
