//! Issue 4, part 7: SIGTERM ends sessions gracefully (a note on each session's stderr, a
//! configurable grace time, then hang-up) and mshd exits 0; SIGHUP reloads without dropping a
//! running session.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use msh_tests::mshd::Mshd;
use msh_tests::{run, wait_timeout};
use nix::sys::signal::Signal;

const T: Duration = Duration::from_secs(30);

#[test]
fn sigterm_warns_sessions_hangs_up_after_shutdown_grace_time_and_exits_0() {
    let mut d = Mshd::builder("sigterm-grace")
        .toml("shutdown_grace_time = \"1s\"")
        .start();
    // The marker says the session's process runs (so mshd has registered it): the exec line
    // in the log comes before the process starts, and a SIGTERM in between finds no session
    // to warn.
    let started = d.dir.path.join("started");
    let long = d.ssh(
        &["-T"],
        &format!("touch {}; sleep 60; echo never", started.display()),
    );
    let session = std::thread::spawn(move || run(long, b"", Duration::from_secs(40)));
    let waited = Instant::now();
    while !started.exists() {
        assert!(waited.elapsed() < T, "the session never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let start = Instant::now();
    d.proc.signal(Signal::SIGTERM);
    let out = session.join().unwrap();
    println!("session ended {:?} after SIGTERM", start.elapsed());
    assert!(
        out.stderr
            .contains("mshd: the server is shutting down; this session will be closed in 1 s"),
        "no shutdown note on the session's stderr: {:?}",
        out.stderr
    );
    assert!(!out.stdout_str().contains("never"), "{}", out.stdout_str());
    assert_ne!(
        out.code(),
        Some(0),
        "the cut session must not look successful"
    );
    let st = d
        .proc
        .wait_timeout(T)
        .expect("mshd still running after SIGTERM");
    println!("mshd exited {:?} after SIGTERM", start.elapsed());
    assert!(st.success(), "mshd exit status {st:?}\n{}", d.log_text());
    let log = d.log_text();
    assert!(log.contains("SIGHUP to session pid"), "{log}");
}

#[test]
fn a_session_running_across_sighup_keeps_working() {
    let d = Mshd::start("sighup-live");
    let mut c = d.ssh(&["-T"], "cat");
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    // Stopped by PID if an assertion below fails.
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    struct KillOnDrop(nix::unistd::Pid);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = nix::sys::signal::kill(self.0, Signal::SIGKILL);
        }
    }
    let _guard = KillOnDrop(pid);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || loop {
        let mut l = String::new();
        if stdout.read_line(&mut l).unwrap_or(0) == 0 {
            break;
        }
        let _ = tx.send(l);
    });
    stdin.write_all(b"before\n").unwrap();
    assert_eq!(rx.recv_timeout(T).unwrap(), "before\n");
    // A real change, so the reload is visible: this user may no longer log in.
    std::fs::write(&d.config, format!("deny_users = [\"{}\"]\n", d.user)).unwrap();
    d.proc.signal(Signal::SIGHUP);
    d.wait_for_log("configuration reloaded", T);
    let out = run(d.ssh(&["-T"], "echo new"), b"", T);
    assert_eq!(
        out.code(),
        Some(255),
        "new config not in force: {}",
        out.stderr
    );
    // The session opened before the reload goes on.
    stdin.write_all(b"after\n").unwrap();
    assert_eq!(rx.recv_timeout(T).unwrap(), "after\n");
    drop(stdin);
    let st = wait_timeout(&mut child, T).expect("ssh did not end after EOF");
    assert!(st.success(), "{st:?}");
}
