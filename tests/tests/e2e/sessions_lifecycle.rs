//! Session lifetime in mshd (issue 8 items 4-5, issue 7 items 6, 7, 14): a closed channel
//! frees its max_sessions slot whatever the order of close, EOF and exit-status; a dropped
//! connection leaves no descriptor behind in mshd and hangs up its PTY sessions; signals
//! never reach a recycled PID and are refused for forced commands and subsystems; session
//! children inherit no descriptor of mshd's; the home directory is entered as the user and
//! supplementary groups are read at each session start.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use msh_tests::mshd::{probe, probe_cmd, Mshd};
use msh_tests::users::{require_root, TestUser};
use msh_tests::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::msh_to_mshd::msh;

const T: Duration = Duration::from_secs(30);

fn fd_list(pid: i32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| {
                let e = e.ok()?;
                let target = std::fs::read_link(e.path()).ok()?;
                Some(format!(
                    "{} -> {}",
                    e.file_name().to_string_lossy(),
                    target.display()
                ))
            })
            .collect()
        })
        .unwrap_or_default()
}

/// (pid, parent pid, command line) of every process.
fn processes() -> Vec<(i32, i32, String)> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The command name is in parentheses and may contain spaces: fields follow the last ')'.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.first() == Some(&"Z") {
            continue;
        }
        let ppid: i32 = fields.get(1).and_then(|p| p.parse().ok()).unwrap_or(0);
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        v.push((pid, ppid, cmdline));
    }
    v
}

/// Processes below `root` (children, grandchildren...) whose command line contains `needle`.
fn descendants_matching(root: i32, needle: &str) -> Vec<i32> {
    let all = processes();
    let mut tree = BTreeSet::from([root]);
    loop {
        let before = tree.len();
        for (pid, ppid, _) in &all {
            if tree.contains(ppid) {
                tree.insert(*pid);
            }
        }
        if tree.len() == before {
            break;
        }
    }
    all.iter()
        .filter(|(pid, _, c)| *pid != root && tree.contains(pid) && c.contains(needle))
        .map(|(pid, _, _)| *pid)
        .collect()
}

fn alive(pid: i32) -> bool {
    processes().iter().any(|(p, _, _)| *p == pid)
}

fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// SIGKILLs the processes it holds when dropped (clients, leftover session processes).
#[derive(Default)]
struct Reap {
    pids: Vec<i32>,
    children: Vec<Child>,
}

impl Reap {
    fn pids(pids: Vec<i32>) -> Self {
        Reap {
            pids,
            children: Vec::new(),
        }
    }
}

impl Drop for Reap {
    fn drop(&mut self) {
        for p in &self.pids {
            let _ = kill(Pid::from_raw(*p), Signal::SIGKILL);
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn_client(mut c: Command) -> Child {
    c.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c.spawn().unwrap()
}

/// How a connection ended reads as what happened: msh and ssh say goodbye
/// (SSH_MSG_DISCONNECT), so mshd logs "closed"; a client killed mid-session is "closed by the
/// client without a disconnect message", not russh's "early eof".
#[test]
fn connection_ends_are_logged_as_what_happened() {
    let d = Mshd::start("sess-ends");
    d.assert_ok(&run(msh(&d, &["127.0.0.1", "true"]), b"", T));
    d.assert_ok(&run(d.ssh(&[], "true"), b"", T));
    let text = d.wait_for_log_count(" ended: ", 2, T);
    assert_eq!(text.matches(" ended: closed\n").count(), 2, "{text}");
    let mut victim = spawn_client(msh(&d, &["127.0.0.1", "sleep 3002"]));
    d.wait_for_log("exec \"sleep 3002\"", T);
    let _ = victim.kill();
    let _ = victim.wait();
    let text = d.wait_for_log_count(" ended: ", 3, T);
    assert!(
        text.contains(" ended: closed by the client without a disconnect message\n")
            && !text.contains("early eof"),
        "{text}"
    );
    // Its `sleep` carries on as under sshd (a pipe session); stop it.
    let _ = Command::new("pkill").args(["-f", "sleep 3002"]).status();
}

#[test]
fn max_sessions_2_ten_sequential_paramiko_channels_each_get_their_exit_status() {
    let d = Mshd::builder("seq-channels")
        .toml("max_sessions = 2")
        .start();
    let port = d.port.to_string();
    let key = d.client_key.display().to_string();
    let res = probe(
        &["seq-exec", "127.0.0.1", &port, &d.user, &key, "10"],
        Duration::from_secs(120),
    );
    let results = res["results"].as_array().unwrap();
    assert_eq!(results.len(), 10, "{res}");
    for (i, r) in results.iter().enumerate() {
        assert!(
            r.get("error").is_none(),
            "channel {i}: {r}\n{}",
            d.log_text()
        );
        assert_eq!(r["stdout"], format!("{i}\n"), "channel {i}: {r}");
        assert_eq!(r["exit_status"], i as u64, "channel {i}: {r}");
    }
    assert!(
        !d.log_text().contains("max_sessions (2) reached"),
        "{}",
        d.log_text()
    );
    // The abandoned `sleep 30` processes (pipes closed) are still mshd's to reap; stop them.
    let _cleanup = Reap::pids(descendants_matching(d.proc.pid(), "sleep 30"));
}

#[test]
fn killed_clients_leave_no_descriptor_in_mshd_and_their_pty_sessions_hang_up() {
    let d = Mshd::start("sess-drop");
    let mshd = d.proc.pid();
    d.assert_ok(&run(d.ssh(&[], "true"), b"", T));
    let baseline = fd_list(mshd);
    let mut guard = Reap::default();
    // Pipe sessions carry on after their client vanishes (as under sshd: they get EOF, and
    // SIGPIPE when they write); PTY sessions get the terminal's hang-up. The PTY commands
    // fork (`; true`), so the hang-up must reach the shell's child too.
    guard
        .children
        .push(spawn_client(d.ssh(&["-T"], "sleep 3001")));
    guard
        .children
        .push(spawn_client(msh(&d, &["-T", "127.0.0.1", "sleep 3002"])));
    guard
        .children
        .push(spawn_client(d.ssh(&["-tt"], "sh -c 'sleep 3003; true'")));
    guard.children.push(spawn_client(msh(
        &d,
        &["-tt", "127.0.0.1", "sh -c 'sleep 3004; true'"],
    )));
    // Until each `sleep` itself runs (not only the `sh -c` naming it).
    let found = wait_until(T, || {
        let all = processes();
        (3001..=3004).all(|n| all.iter().any(|(_, _, c)| c.trim() == format!("sleep {n}")))
    });
    assert!(found, "sessions did not start: {}", d.log_text());
    let pipe: Vec<i32> = [3001, 3002]
        .iter()
        .flat_map(|n| descendants_matching(mshd, &format!("sleep {n}")))
        .collect();
    let pty: Vec<i32> = [3003, 3004]
        .iter()
        .flat_map(|n| descendants_matching(mshd, &format!("{n}")))
        .collect();
    guard.pids.extend(pipe.iter().chain(pty.iter()));
    assert!(pty.len() >= 4, "sh and sleep of both PTY sessions: {pty:?}");
    assert!(fd_list(mshd).len() > baseline.len());

    for c in &mut guard.children {
        let _ = c.kill();
        let _ = c.wait();
    }
    let released = wait_until(T, || fd_list(mshd).len() <= baseline.len());
    assert!(
        released,
        "mshd still holds descriptors for the dropped sessions:\nbefore: {baseline:#?}\nnow: {:#?}",
        fd_list(mshd)
    );
    let hung_up = wait_until(T, || pty.iter().all(|p| !alive(*p)));
    assert!(
        hung_up,
        "PTY session processes survived their client: {:?}",
        pty.iter().filter(|p| alive(**p)).collect::<Vec<_>>()
    );
    assert!(
        pipe.iter().all(|p| alive(*p)),
        "pipe sessions carry on after the disconnect, as under sshd"
    );
    for p in &pipe {
        let _ = kill(Pid::from_raw(*p), Signal::SIGKILL);
    }
    // mshd reaps what it started, with no descriptor for it.
    assert!(
        wait_until(T, || pipe.iter().all(|p| !alive(*p))),
        "killed pipe sessions not reaped"
    );
    d.wait_for_log("still running at disconnect", T);
}

/// What the `signal` probe does: as `user`, start `what` (`kind` exec or subsystem), read
/// `marks` lines of its output, then send `sig`.
struct SignalRun<'a> {
    user: &'a str,
    kind: &'a str,
    what: &'a str,
    sig: &'a str,
    marks: usize,
}

/// The `signal` probe in its plain form: `sig` once the session has printed one line.
fn signal_once(d: &Mshd, user: &str, kind: &str, what: &str, sig: &str) -> serde_json::Value {
    let run = SignalRun {
        user,
        kind,
        what,
        sig,
        marks: 1,
    };
    signal_probe(d, run, None, |_| {})
}

/// A signal request refused as sshd refuses it: the reply is `failure`, no exit-signal
/// arrives, and mshd logs `why`.
fn assert_signal_refused(d: &Mshd, r: &serde_json::Value, why: &str) {
    assert_eq!(r["reply"], "failure", "{r}\n{}", d.log_text());
    assert_eq!(r["exit_signal"], serde_json::Value::Null, "{r}");
    d.wait_for_log(why, T);
}

/// Runs the `signal` probe; `on_lines` gets the output lines before the signal is sent (once
/// `flag`, if given, exists). Returns the probe's JSON.
fn signal_probe(
    d: &Mshd,
    run: SignalRun<'_>,
    flag: Option<&std::path::Path>,
    on_lines: impl FnOnce(&[String]),
) -> serde_json::Value {
    let SignalRun {
        user,
        kind,
        what,
        sig,
        marks,
    } = run;
    let port = d.port.to_string();
    let key = d.client_key.display().to_string();
    let marks = marks.to_string();
    let flag_s = flag.map(|f| f.display().to_string());
    let mut args = vec![
        "signal",
        "127.0.0.1",
        &port,
        user,
        &key,
        kind,
        what,
        sig,
        &marks,
    ];
    if let Some(f) = &flag_s {
        args.push(f);
    }
    let mut c = probe_cmd(&args);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut guard = Reap::default();
    let stderr = child.stderr.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    guard.children.push(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let mut lines = Vec::new();
    let start = Instant::now();
    while lines.len() < marks.parse::<usize>().unwrap() {
        let l = rx
            .recv_timeout(T.saturating_sub(start.elapsed()))
            .unwrap_or_else(|_| panic!("probe printed {lines:?}; mshd log:\n{}", d.log_text()));
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&l) {
            if let Some(s) = v["line"].as_str() {
                lines.push(s.to_string());
            }
        }
    }
    on_lines(&lines);
    let mut out = String::new();
    std::io::Read::read_to_string(&mut BufReader::new(stdout), &mut out).unwrap();
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("probe JSON ({e}): {out}"))
}

#[test]
fn signal_reaches_a_running_session_and_is_refused_for_forced_commands_and_subsystems() {
    // Positive control: an exec session gets the signal (exit-signal TERM).
    let d = Mshd::start("signal-exec");
    let r = signal_once(&d, &d.user, "exec", "echo ready; sleep 30", "TERM");
    assert_eq!(r["reply"], "success", "{r}\n{}", d.log_text());
    assert_eq!(r["exit_signal"], "TERM", "{r}");

    // A forced command: refused as sshd does, and the process runs on.
    let d = Mshd::builder("signal-forced")
        .authorized_keys_options("command=\"echo ready; sleep 30\"")
        .start();
    let r = signal_once(&d, &d.user, "exec", "anything", "TERM");
    assert_signal_refused(&d, &r, "refusing to signal a forced-command session");
    let _cleanup = Reap::pids(descendants_matching(d.proc.pid(), "sleep 30"));

    // A subsystem: the same.
    let dir = TestDir::new("signal-subsystem-bin");
    let script = dir.write("sub.sh", "#!/bin/sh\necho ready\nexec sleep 31\n", 0o755);
    let d = Mshd::builder("signal-subsystem")
        .toml(&format!(
            "subsystems = {{ waiter = \"{}\" }}",
            script.display()
        ))
        .start();
    let r = signal_once(&d, &d.user, "subsystem", "waiter", "TERM");
    assert_signal_refused(&d, &r, "refusing to signal a subsystem session");
    let _cleanup2 = Reap::pids(descendants_matching(d.proc.pid(), "sleep 31"));
}

#[test]
fn signal_after_the_shell_was_reaped_never_reaches_a_process_that_reused_its_pid() {
    if !require_root(
        "signal_after_the_shell_was_reaped_never_reaches_a_process_that_reused_its_pid",
    ) {
        return;
    }
    let d = Mshd::start("signal-recycled");
    let flag = d.dir.join("victim-ready");
    let mut guard = Reap::default();
    let mut victim: Option<Child> = None;
    // The shell starts a detached sleeper that keeps the channel's stdout open, prints both
    // PIDs and exits; mshd reaps it while the channel stays open.
    let r = signal_probe(
        &d,
        SignalRun {
            user: &d.user,
            kind: "exec",
            what: "setsid -f sh -c 'echo sleeper $$; exec sleep 3005'; echo leader $$",
            sig: "KILL",
            marks: 2,
        },
        Some(&flag),
        |lines| {
            let pid_of = |w: &str| -> i32 {
                lines
                    .iter()
                    .find_map(|l| l.strip_prefix(w))
                    .unwrap_or_else(|| panic!("no {w} in {lines:?}"))
                    .trim()
                    .parse()
                    .unwrap()
            };
            let leader = pid_of("leader ");
            guard.pids.push(pid_of("sleeper "));
            assert!(
                wait_until(T, || !std::path::Path::new(&format!("/proc/{leader}"))
                    .exists()),
                "mshd did not reap the session's shell {leader}"
            );
            // Make the kernel hand the leader's PID to a new process of ours, in a group of
            // its own (as the session's was), as happens by chance on a busy machine.
            for _ in 0..200 {
                let _ = std::fs::write("/proc/sys/kernel/ns_last_pid", format!("{}", leader - 1));
                let mut c = Command::new("sleep");
                c.arg("3006").process_group(0);
                let child = c.spawn().unwrap();
                if child.id() as i32 == leader {
                    victim = Some(child);
                    break;
                }
                let mut child = child;
                let _ = child.kill();
                let _ = child.wait();
            }
            std::fs::write(&flag, "").unwrap();
        },
    );
    let mut victim = victim.expect("could not get the session's PID reused (ns_last_pid)");
    let still_running = victim.try_wait().unwrap().is_none();
    let _ = victim.kill();
    let _ = victim.wait();
    assert!(
        still_running,
        "mshd's signal for the reaped session killed the unrelated process that reused its PID"
    );
    assert_eq!(r["reply"], "failure", "{r}\n{}", d.log_text());
    d.wait_for_log("has already exited", T);
}

/// Every descriptor number a session's `ls -l /proc/self/fd` shows (the token before `->`).
fn fds_seen(out: &str) -> BTreeSet<String> {
    out.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let arrow = words.clone().position(|w| w == "->")?;
            words.nth(arrow.checked_sub(1)?).map(str::to_string)
        })
        .collect()
}

#[test]
fn concurrent_sessions_inherit_no_descriptor_but_their_stdio() {
    let d = Mshd::builder("fd-leak")
        .toml("max_startups = \"100:30:200\"\nper_source_max_startups = 100")
        .start();
    for round in 0..3 {
        let mut clients = Vec::new();
        for i in 0..16 {
            let pty = i % 2 == 0;
            let mut c = if i % 4 < 2 {
                d.ssh(&[if pty { "-tt" } else { "-T" }], "ls -l /proc/self/fd")
            } else {
                msh(
                    &d,
                    &[
                        if pty { "-tt" } else { "-T" },
                        "127.0.0.1",
                        "ls -l /proc/self/fd",
                    ],
                )
            };
            c.stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            clients.push((pty, c.spawn().unwrap()));
        }
        for (pty, c) in clients {
            let out = c.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            assert!(
                out.status.success(),
                "round {round}: {text} {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let seen = fds_seen(&text);
            // 0, 1, 2 and the directory ls itself opened (3).
            let allowed: BTreeSet<String> = ["0", "1", "2", "3"].map(String::from).into();
            assert!(
                seen.is_subset(&allowed) && seen.contains("2"),
                "round {round}, pty {pty}: the session inherited {seen:?}:\n{text}"
            );
        }
    }
}

/// mshd as root reading keys from a root-owned file outside the users' homes.
fn root_mshd_with_keys_for(name: &str, user: &TestUser) -> Mshd {
    let dir = TestDir::new(&format!("{name}-keys"));
    let d = Mshd::builder(name)
        .use_config_authorized_keys()
        .toml(&format!(
            "authorized_keys_files = [\"{}/%u\"]",
            dir.path.display()
        ))
        .start();
    dir.write(&user.name, format!("{}\n", d.client_public), 0o644);
    std::mem::forget(dir);
    d
}

#[test]
fn home_is_entered_as_the_user_after_the_privilege_drop() {
    if !require_root("home_is_entered_as_the_user_after_the_privilege_drop") {
        return;
    }
    let u = TestUser::new();
    let d = root_mshd_with_keys_for("home-chdir", &u);
    let out = run(d.ssh_as(&u.name, &[], "pwd"), b"", T);
    d.assert_ok(&out);
    assert_eq!(out.stdout_str(), format!("{}\n", u.home.display()));
    // A home the user cannot enter (root could): the session starts in /, with sshd's note.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&u.home, std::fs::Permissions::from_mode(0o000)).unwrap();
    let out = run(d.ssh_as(&u.name, &[], "pwd"), b"", T);
    std::fs::set_permissions(&u.home, std::fs::Permissions::from_mode(0o700)).unwrap();
    d.assert_ok(&out);
    assert_eq!(out.stdout_str(), "/\n", "entered as root: {}", out.stderr);
    out.assert_stderr_contains(&format!(
        "Could not chdir to home directory {}: Permission denied",
        u.home.display()
    ));
}

#[test]
fn a_group_added_between_two_sessions_of_one_connection_shows_in_the_second() {
    if !require_root("a_group_added_between_two_sessions_of_one_connection_shows_in_the_second") {
        return;
    }
    let u = TestUser::new();
    let d = root_mshd_with_keys_for("groups-per-session", &u);
    let group = format!("{}n", u.name);
    let ctl = format!("/tmp/msh-cm-{}", std::process::id());
    let mut master = d.ssh_as(
        &u.name,
        &["-M", "-N", "-o", &format!("ControlPath={ctl}")],
        "",
    );
    master
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut guard = Reap::default();
    guard.children.push(master.spawn().unwrap());
    assert!(
        wait_until(T, || std::path::Path::new(&ctl).exists()),
        "ssh control master did not start: {}",
        d.log_text()
    );
    let via_master = || {
        let out = run(
            d.ssh_as(&u.name, &["-o", &format!("ControlPath={ctl}")], "id -G"),
            b"",
            T,
        );
        d.assert_ok(&out);
        out.stdout_str()
    };
    let first = via_master();
    assert!(run(cmd(tool("groupadd"), [group.as_str()]), b"", T)
        .status
        .success());
    let added = run(
        cmd(tool("usermod"), ["-aG", group.as_str(), u.name.as_str()]),
        b"",
        T,
    );
    let gid = nix::unistd::Group::from_name(&group)
        .unwrap()
        .unwrap()
        .gid
        .as_raw()
        .to_string();
    let second = via_master();
    drop(guard);
    let _ = std::fs::remove_file(&ctl);
    let _ = run(cmd(tool("groupdel"), [group.as_str()]), b"", T);
    assert!(added.status.success(), "{}", added.stderr);
    assert!(!first.split_whitespace().any(|g| g == gid), "{first}");
    assert!(
        second.split_whitespace().any(|g| g == gid),
        "group {gid} added between the sessions is missing from the second: {second} \
         (connections logged: {})",
        d.log_text().matches("accepted publickey").count()
    );
    assert_eq!(
        d.log_text().matches("accepted publickey").count(),
        1,
        "both sessions must share one connection"
    );
}

#[test]
fn root_mode_signal_is_sent_with_the_users_credentials_and_reaches_their_session() {
    if !require_root(
        "root_mode_signal_is_sent_with_the_users_credentials_and_reaches_their_session",
    ) {
        return;
    }
    let u = TestUser::new();
    let d = root_mshd_with_keys_for("signal-as-user", &u);
    let r = signal_once(&d, &u.name, "exec", "echo ready; sleep 32", "INT");
    assert_eq!(r["reply"], "success", "{r}\n{}", d.log_text());
    assert_eq!(r["exit_signal"], "INT", "{r}");
}
