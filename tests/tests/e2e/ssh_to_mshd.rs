//! OpenSSH's `ssh` client against mshd: exec with exit status and both output streams, a
//! streamed upload, PTYs, environment passing, authorized_keys options, signals.

use std::time::Duration;

use msh_tests::mshd::Mshd;
use msh_tests::*;

const T: Duration = Duration::from_secs(30);

#[test]
fn exec_returns_stdout_stderr_and_exit_status() {
    let d = Mshd::start("exec");
    let out = run(d.ssh(&[], "echo out; echo err >&2; exit 7"), b"", T);
    assert_eq!(
        out.code(),
        Some(7),
        "stderr: {}\nlog:\n{}",
        out.stderr,
        d.log_text()
    );
    assert_eq!(out.stdout_str(), "out\n");
    out.assert_stderr_contains("err\n");
    // The login is in the log with the key's fingerprint (from ssh-keygen, the oracle).
    let fp = msh_tests::mshd::fingerprint_of(&d.dir.join("id_ed25519.pub"));
    let log = d.wait_for_log("accepted publickey", Duration::from_secs(5));
    assert!(log.contains(&fp), "fingerprint {fp} not in log:\n{log}");
}

#[test]
fn stdin_is_streamed_to_the_command_with_eof() {
    let d = Mshd::start("stdin");
    // 8 MiB of non-repeating bytes; the remote side counts and checksums what it read,
    // which also proves EOF arrived (cksum only prints after EOF).
    let mut data = Vec::with_capacity(8 << 20);
    let mut x: u32 = 12345;
    while data.len() < 8 << 20 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        data.extend_from_slice(&x.to_le_bytes());
    }
    let local = run(cmd("cksum", Vec::<&str>::new()), &data, T);
    let out = run(d.ssh(&[], "cksum"), &data, Duration::from_secs(60));
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_str(), local.stdout_str());
    // And the other way: the command's large output arrives whole.
    let out = run(d.ssh(&[], "head -c 5000000 /dev/zero | tr '\\0' x"), b"", T);
    assert_eq!(out.stdout.len(), 5_000_000);
    assert!(out.stdout.iter().all(|b| *b == b'x'));
}

#[test]
fn pty_session_has_a_terminal_of_the_requested_size() {
    let d = Mshd::start("pty");
    // ssh takes the window size from its own terminal: give it one with `script`.
    let ssh = d.ssh(&["-tt"], "tty; stty size; echo TERM=$TERM");
    let line = format!(
        "stty rows 33 cols 101; TERM=xterm-256color {}",
        shell_words(&ssh)
    );
    let out = run(cmd("script", ["-qec", line.as_str(), "/dev/null"]), b"", T);
    let text = out.stdout_str();
    assert_eq!(out.code(), Some(0), "out: {text} err: {}", out.stderr);
    assert!(
        text.contains("/dev/pts/"),
        "tty did not print a pts: {text}"
    );
    assert!(text.contains("33 101"), "stty size is not 33 101: {text}");
    assert!(
        text.contains("TERM=xterm-256color"),
        "TERM not passed: {text}"
    );
}

/// The command line of `c` as one shell string (arguments single-quoted).
fn shell_words(c: &std::process::Command) -> String {
    let mut v = vec![c.get_program().to_string_lossy().into_owned()];
    v.extend(c.get_args().map(|a| a.to_string_lossy().into_owned()));
    v.iter()
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn accepted_env_is_set_and_others_are_not() {
    let d = Mshd::start("env");
    let mut c = d.ssh(
        &["-o", "SendEnv=LANG", "-o", "SendEnv=MSHT_SECRET"],
        "echo LANG=$LANG; echo SECRET=${MSHT_SECRET-unset}",
    );
    c.env("LANG", "C.UTF-8").env("MSHT_SECRET", "leak");
    let out = run(c, b"", T);
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_str(), "LANG=C.UTF-8\nSECRET=unset\n");
}

#[test]
fn session_environment_describes_the_login() {
    let d = Mshd::start("envfixed");
    let out = run(
        d.ssh(
            &[],
            "echo $USER $LOGNAME; echo $HOME; pwd; echo $SSH_CONNECTION",
        ),
        b"",
        T,
    );
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    let u = nix::unistd::User::from_uid(nix::unistd::geteuid())
        .unwrap()
        .unwrap();
    let lines: Vec<String> = out.stdout_str().lines().map(String::from).collect();
    assert_eq!(lines[0], format!("{} {}", u.name, u.name));
    assert_eq!(lines[1], u.dir.display().to_string());
    assert_eq!(lines[2], u.dir.display().to_string());
    assert!(
        lines[3].starts_with("127.0.0.1 ") && lines[3].ends_with(&format!(" 127.0.0.1 {}", d.port)),
        "SSH_CONNECTION: {}",
        lines[3]
    );
}

#[test]
fn forced_command_replaces_the_request_and_keeps_the_original() {
    let d = Mshd::builder("forced")
        .authorized_keys_options(r#"command="echo forced:$SSH_ORIGINAL_COMMAND""#)
        .start();
    let out = run(d.ssh(&[], "echo asked"), b"", T);
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_str(), "forced:echo asked\n");
}

#[test]
fn from_option_refuses_and_admits_by_address() {
    let d = Mshd::builder("from-no")
        .authorized_keys_options(r#"from="10.0.0.0/8""#)
        .start();
    let out = run(d.ssh(&[], "echo in"), b"", T);
    assert_eq!(
        out.code(),
        Some(255),
        "a from= not admitting 127.0.0.1 let us in"
    );
    assert!(out.stdout.is_empty());
    let log = d.wait_for_log("rejected publickey", Duration::from_secs(5));
    assert!(log.contains("127.0.0.1"), "{log}");

    let d = Mshd::builder("from-yes")
        .authorized_keys_options(r#"from="10.0.0.0/8,127.0.0.1""#)
        .start();
    let out = run(d.ssh(&[], "echo in"), b"", T);
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_str(), "in\n");
}

#[test]
fn no_pty_refuses_the_terminal() {
    let d = Mshd::builder("nopty")
        .authorized_keys_options("no-pty")
        .start();
    // An interactive login from a real terminal (script): ssh asks for a PTY on its own,
    // is refused, and carries on with a shell without one, as it does against sshd.
    let ssh = d.ssh(&[], "");
    let out = run(
        cmd("script", ["-qec", shell_words(&ssh).as_str(), "/dev/null"]),
        b"tty; echo rc=$?; exit\n",
        T,
    );
    let text = out.stdout_str();
    assert!(
        text.contains("not a tty"),
        "stdout: {text} stderr: {}",
        out.stderr
    );
    assert!(text.contains("rc=1"), "stdout: {text}");
    assert!(
        text.contains("PTY allocation request failed"),
        "stdout: {text}"
    );
    // An explicit `-tt` makes the refusal fatal in OpenSSH's client: no command runs.
    let out = run(d.ssh(&["-tt"], "tty"), b"", T);
    out.assert_stderr_contains("PTY allocation request failed");
    assert!(
        !out.stdout_str().contains("/dev/pts"),
        "{}",
        out.stdout_str()
    );
    d.wait_for_log("pty-req refused", Duration::from_secs(5));
}

#[test]
fn command_killed_by_a_signal_makes_ssh_exit_255() {
    let d = Mshd::start("signal");
    let out = run(d.ssh(&[], "echo before; kill -TERM $$"), b"", T);
    assert_eq!(out.stdout_str(), "before\n");
    assert_eq!(out.code(), Some(255), "stderr: {}", out.stderr);
    // OpenSSH reports the signal name it received in exit-signal.
    let out = run(d.ssh(&["-v"], "kill -TERM $$"), b"", T);
    assert!(
        out.stderr.contains("signal TERM") || out.stderr.contains("exit-signal"),
        "{}",
        out.stderr
    );
}

#[test]
fn sigterm_stops_accepting_but_lets_running_sessions_finish() {
    let mut d = Mshd::start("sigterm");
    let long = d.ssh(&[], "sleep 2; echo finished; exit 4");
    let session = std::thread::spawn(move || run(long, b"", T));
    d.wait_for_log("exec \"sleep 2", Duration::from_secs(10));
    d.proc.signal(nix::sys::signal::Signal::SIGTERM);
    d.wait_for_log("no longer accepting", Duration::from_secs(5));
    // New connections are refused at once...
    let out = run(d.ssh(&[], "echo new"), b"", T);
    assert_eq!(out.code(), Some(255));
    assert!(out.stdout.is_empty());
    // ...while the running command completes with its output and status.
    let out = session.join().unwrap();
    assert_eq!(out.stdout_str(), "finished\n", "stderr: {}", out.stderr);
    assert_eq!(out.code(), Some(4));
    // Then mshd exits by itself, successfully.
    let st = d
        .proc
        .wait_timeout(Duration::from_secs(10))
        .expect("mshd still running after its last session");
    assert!(st.success(), "mshd exit status {st:?}\n{}", d.log_text());
}

#[test]
fn sighup_reloads_the_config_and_keeps_it_when_the_new_one_is_bad() {
    let d = Mshd::start("sighup");
    assert_eq!(run(d.ssh(&[], "echo a"), b"", T).stdout_str(), "a\n");
    let user = msh_tests::mshd::current_user();
    std::fs::write(&d.config, format!("deny_users = [\"{user}\"]\n")).unwrap();
    d.proc.signal(nix::sys::signal::Signal::SIGHUP);
    d.wait_for_log("configuration reloaded", Duration::from_secs(5));
    let out = run(d.ssh(&[], "echo b"), b"", T);
    assert_eq!(out.code(), Some(255), "deny_users not applied after SIGHUP");
    d.wait_for_log("is in deny_users", Duration::from_secs(5));

    // A broken file is reported with its line and the previous settings stay.
    std::fs::write(&d.config, "deny_users = [\"x\"]\nbogus = 1\n").unwrap();
    d.proc.signal(nix::sys::signal::Signal::SIGHUP);
    let log = d.wait_for_log("config not reloaded", Duration::from_secs(5));
    assert!(log.contains(&format!("{}:2:", d.config.display())), "{log}");
    let out = run(d.ssh(&[], "echo c"), b"", T);
    assert_eq!(
        out.code(),
        Some(255),
        "the broken config replaced the previous one"
    );
}

#[test]
fn window_change_resizes_the_remote_terminal() {
    let d = Mshd::start("winch");
    let ssh = d.ssh(&["-tt"], "sleep 2; stty size");
    // Inside script's terminal: start at 20x80, resize to 40x120 while the remote command
    // sleeps; the kernel sends ssh SIGWINCH and ssh sends window-change.
    let line = format!(
        "stty rows 20 cols 80; (sleep 1; stty -F /dev/tty rows 40 cols 120) & {}; wait",
        shell_words(&ssh)
    );
    let out = run(cmd("script", ["-qec", line.as_str(), "/dev/null"]), b"", T);
    let text = out.stdout_str();
    assert!(
        text.contains("40 120"),
        "size not updated: {text} {}",
        out.stderr
    );
}

#[test]
fn environment_option_sets_variables_for_the_session() {
    // Off by default, as sshd's PermitUserEnvironment (issue 7 item 13).
    let d = Mshd::builder("ak-environment")
        .authorized_keys_options(r#"environment="MSHT_FROM_KEY=yes it is""#)
        .toml("permit_user_environment = true")
        .start();
    let out = run(d.ssh(&[], "echo \"$MSHT_FROM_KEY\""), b"", T);
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_str(), "yes it is\n");
}

#[test]
fn restrict_refuses_the_pty_and_forced_command_applies_to_shells() {
    let d = Mshd::builder("ak-restrict")
        .authorized_keys_options(r#"restrict,command="echo only-this; tty""#)
        .start();
    // No command: the shell request is replaced by the forced command; no PTY is given
    // (ssh does not ask for one when stdin is not a terminal; the forced command runs).
    let out = run(d.ssh(&[], ""), b"", T);
    assert_eq!(
        out.stdout_str(),
        "only-this\nnot a tty\n",
        "stderr: {}",
        out.stderr
    );
}

#[test]
fn max_sessions_limits_channels_on_one_connection() {
    let d = Mshd::builder("max-sessions")
        .toml("max_sessions = 1")
        .start();
    // One connection, shared through an OpenSSH control master (a harness Proc).
    let ctl = d.dir.join("ctl");
    let mut master = d.ssh(&["-M", "-S", ctl.to_str().unwrap(), "-N"], "");
    master.stdin(std::process::Stdio::null());
    let master = Proc::spawn("ssh-master", master, &d.dir.join("master.log"));
    let start = std::time::Instant::now();
    while !ctl.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "control socket not created: {}",
            master.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let first = d.ssh(&["-S", ctl.to_str().unwrap()], "sleep 2; echo first");
    let first = std::thread::spawn(move || run(first, b"", T));
    d.wait_for_log("exec \"sleep 2", Duration::from_secs(10));
    // When the multiplexed session is refused, OpenSSH falls back to a connection of its
    // own; a failing ProxyCommand makes that fallback fail so the refusal is visible.
    let out = run(
        d.ssh(
            &["-S", ctl.to_str().unwrap(), "-o", "ProxyCommand=false"],
            "echo second",
        ),
        b"",
        T,
    );
    assert_ne!(out.code(), Some(0));
    assert!(out.stdout.is_empty(), "{}", out.stdout_str());
    d.wait_for_log("max_sessions (1) reached", Duration::from_secs(5));
    let out = first.join().unwrap();
    assert_eq!(out.stdout_str(), "first\n", "{}", out.stderr);
    // Once the first session is gone, a new one fits again.
    let out = run(d.ssh(&["-S", ctl.to_str().unwrap()], "echo third"), b"", T);
    assert_eq!(out.stdout_str(), "third\n", "{}", out.stderr);
    drop(master);
}

#[test]
fn sessions_get_neither_mshd_descriptors_nor_its_environment() {
    let d = Mshd::builder("hygiene")
        .env("MSHT_MSHD_ONLY", "leak")
        .start();
    let out = run(
        d.ssh(
            &[],
            "echo ${MSHT_MSHD_ONLY-unset}; ls -l /proc/$$/fd | tail -n +2",
        ),
        b"",
        T,
    );
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    let text = out.stdout_str();
    assert!(
        text.starts_with("unset\n"),
        "mshd's environment reached the session: {text}"
    );
    // Only stdin/stdout/stderr (plus what the shell itself opens): no listening socket,
    // no other connection, no PTY master of another session.
    assert!(
        !text.contains("socket:"),
        "a socket leaked into the session:\n{text}"
    );
    assert!(
        !text.contains("/dev/ptmx"),
        "a PTY master leaked into the session:\n{text}"
    );
}

#[test]
fn only_publickey_is_offered() {
    let d = Mshd::start("methods");
    let out = run(
        d.ssh(
            &[
                "-o",
                "PubkeyAuthentication=no",
                "-o",
                "PasswordAuthentication=yes",
                "-o",
                "KbdInteractiveAuthentication=yes",
            ],
            "echo in",
        ),
        b"",
        T,
    );
    assert_eq!(out.code(), Some(255));
    out.assert_stderr_contains("Permission denied (publickey)");
}

#[test]
fn listens_on_several_addresses_including_ipv6_loopback() {
    let port6 = {
        let l = std::net::TcpListener::bind("[::1]:0").expect("no IPv6 loopback on this machine");
        l.local_addr().unwrap().port()
    };
    let d = Mshd::builder("ipv6")
        .arg("--listen")
        .arg(&format!("[::1]:{port6}"))
        .start();
    d.wait_for_log(
        &format!("listening on [::1]:{port6}"),
        Duration::from_secs(5),
    );
    let kh = d.dir.write(
        "known_hosts6",
        format!("[::1]:{port6} {}\n", d.host_public),
        0o644,
    );
    let mut c = cmd(
        tool("ssh"),
        [
            "-F",
            "/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
        ],
    );
    c.arg("-o")
        .arg(format!("UserKnownHostsFile={}", kh.display()))
        .arg("-i")
        .arg(&d.client_key)
        .args([
            "-p",
            &port6.to_string(),
            "-l",
            &d.user,
            "::1",
            "echo $SSH_CONNECTION",
        ]);
    let out = run(c, b"", T);
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert!(
        out.stdout_str().starts_with("::1 ")
            && out
                .stdout_str()
                .trim_end()
                .ends_with(&format!("::1 {port6}")),
        "{}",
        out.stdout_str()
    );
    // The IPv4 listener still works too.
    assert_eq!(run(d.ssh(&[], "echo v4"), b"", T).stdout_str(), "v4\n");
}
