//! OpenSSH's escape sequences in msh, typed on a real terminal (tmux) against mshd: `~.`
//! leaves a session whose server stopped answering (exit 255, terminal cooked again), `~~`
//! sends one `~` and a `~` inside a line is plain data, `~?` lists the escapes and the
//! session goes on, `~^Z` suspends msh until `fg`, `-e none` / `-o EscapeChar=none` pass
//! everything through, `-o EscapeChar=^]` moves the escape. Without a PTY (piped stdin)
//! there are no escapes; with `-tt` there are, as in ssh.

use std::path::Path;
use std::time::{Duration, Instant};

use msh_tests::mshd::Mshd;
use msh_tests::*;
use nix::sys::signal::Signal;

use crate::msh_interactive::{msh_line_to_mshd, wait_for_file, Tmux};

/// mshd accepting MSHT_* variables, so `-o SetEnv=MSHT_SIDE=remote` proves which shell
/// answers.
fn mshd(name: &str) -> Mshd {
    Mshd::builder(name)
        .toml("accept_env = [\"MSHT_*\"]")
        .start()
}

/// The msh command line to `d` with `extra` options, followed by `; echo RC=$?`.
fn msh_line(d: &Mshd, extra: &str) -> String {
    msh_line_to_mshd(
        d,
        &format!("-o SetEnv=MSHT_SIDE=remote {extra} 127.0.0.1; echo RC=$?"),
    )
}

/// Starts `sh` in tmux, runs msh in it and waits for the remote shell to answer.
fn interactive(d: &Mshd, extra: &str) -> Tmux {
    let tmux = Tmux::new(&d.dir);
    tmux.start("sh");
    tmux.send_keys(&[&msh_line(d, extra), "Enter"]);
    // MSHT_SIDE is set only in the remote session: proof the shell is mshd's.
    tmux.send_keys(&["echo SIDE-${MSHT_SIDE:-local}-$((6*7))", "Enter"]);
    tmux.wait_for_screen("SIDE-remote-42");
    tmux
}

/// Types `keys` literally (no tmux key names), as one write to the terminal.
fn type_literally(tmux: &Tmux, keys: &str) {
    tmux.send_keys(&["-l", keys]);
}

/// Waits until `path` holds exactly `want`; panics showing what it holds.
fn wait_for_contents(path: &Path, want: &str) {
    let start = Instant::now();
    loop {
        let got = std::fs::read_to_string(path).unwrap_or_default();
        if got == want {
            return;
        }
        if start.elapsed() > Duration::from_secs(20) {
            panic!("{}: want {want:?}, got {got:?}", path.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `cat > FILE` remotely, types `lines` (each a literal write then Enter), ends cat
/// with ^D and the shell with `exit 4`, and asserts FILE holds `want`.
fn cat_typed_lines(d: &Mshd, tmux: &Tmux, name: &str, lines: &[&str], want: &str) {
    let file = d.dir.join(name);
    tmux.send_keys(&[
        &format!("echo READY-$((1+1)); cat > {}", file.display()),
        "Enter",
    ]);
    tmux.wait_for_screen("READY-2");
    for line in lines {
        type_literally(tmux, line);
        tmux.send_keys(&["Enter"]);
    }
    tmux.send_keys(&["C-d"]);
    wait_for_contents(&file, want);
    tmux.send_keys(&["exit 4", "Enter"]);
    tmux.wait_for_screen("RC=4");
}

#[test]
fn tilde_dot_leaves_a_session_whose_server_stopped_answering() {
    let d = mshd("msh-escape-dot");
    let tmux = interactive(&d, "");
    tmux.send_keys(&["sleep 30", "Enter"]);
    // A stopped mshd is a dead network: TCP still accepts bytes, nothing answers.
    d.proc.signal(Signal::SIGSTOP);
    let start = Instant::now();
    tmux.send_keys(&["Enter"]);
    type_literally(&tmux, "~.");
    let screen = tmux.wait_for_screen("RC=255");
    let took = start.elapsed();
    d.proc.signal(Signal::SIGCONT);
    // Ignored escapes would leave msh waiting for the stopped server forever.
    assert!(took < Duration::from_secs(10), "~. took {took:?}");
    assert!(
        screen.contains("msh: connection to 127.0.0.1 closed."),
        "{screen}"
    );
    tmux.assert_cooked("STTY");
}

#[test]
fn double_tilde_sends_one_and_tilde_inside_a_line_is_data() {
    let d = mshd("msh-escape-tilde");
    let tmux = interactive(&d, "");
    // `~~` at a line start → one `~`; `~` mid-line is plain; `x~.` does not disconnect;
    // an escape msh lacks (`~B`) goes through with its `~`, as in ssh.
    cat_typed_lines(
        &d,
        &tmux,
        "typed",
        &["~~a~b", "x~.y", "~B"],
        "~a~b\nx~.y\n~B\n",
    );
}

#[test]
fn escape_none_passes_everything_through() {
    for (n, opt) in ["-e none", "-o EscapeChar=none"].iter().enumerate() {
        let d = mshd(&format!("msh-escape-none-{n}"));
        let tmux = interactive(&d, opt);
        cat_typed_lines(&d, &tmux, "typed", &["~.", "~?", "~~"], "~.\n~?\n~~\n");
    }
}

#[test]
fn tilde_question_mark_lists_escapes_and_the_session_goes_on() {
    let d = mshd("msh-escape-help");
    let tmux = interactive(&d, "");
    tmux.send_keys(&["Enter"]);
    type_literally(&tmux, "~?");
    let screen = tmux.wait_for_screen("Supported escape sequences:");
    // Raw mode: each help line must start in column 0 (CRLF line ends).
    for line in [" ~.   - terminate connection", " ~?   - this message"] {
        assert!(
            screen.lines().any(|l| l.starts_with(line)),
            "{line:?} not at a line start:\n{screen}"
        );
    }
    tmux.send_keys(&["echo AFTER-${MSHT_SIDE:-local}-$((2*21))", "Enter"]);
    tmux.wait_for_screen("AFTER-remote-42");
    tmux.send_keys(&["exit 3", "Enter"]);
    tmux.wait_for_screen("RC=3");
}

#[test]
fn other_escape_char_from_config_option() {
    let d = mshd("msh-escape-ctrl");
    let tmux = interactive(&d, "-o EscapeChar=^]");
    // `~.` is plain data now: the session survives it.
    type_literally(&tmux, "~.");
    tmux.send_keys(&["C-u", "echo STILL-${MSHT_SIDE:-local}", "Enter"]);
    tmux.wait_for_screen("STILL-remote");
    tmux.send_keys(&["C-]", "."]);
    let screen = tmux.wait_for_screen("RC=255");
    assert!(
        screen.contains("msh: connection to 127.0.0.1 closed."),
        "{screen}"
    );
}

#[test]
fn tilde_ctrl_z_suspends_and_fg_resumes_with_the_new_window_size() {
    let d = mshd("msh-escape-suspend");
    let tmux = Tmux::new(&d.dir);
    let pidfile = d.dir.join("msh.pid");
    tmux.start("sh");
    // msh as the job itself (exec), without `; echo RC`: the local shell must see it stop,
    // and a stopped job in a list would let the shell run the rest of the list.
    let line = msh_line(&d, "");
    let line = line.trim_end_matches("; echo RC=$?");
    tmux.send_keys(&[
        &format!(
            "sh -c 'echo $$ > {}; exec \"$@\"' sh {line}",
            pidfile.display()
        ),
        "Enter",
    ]);
    tmux.send_keys(&["echo SIDE-${MSHT_SIDE:-local}-$((6*7))", "Enter"]);
    tmux.wait_for_screen("SIDE-remote-42");
    let pid: i32 = wait_for_file(&pidfile).trim().parse().unwrap();
    tmux.send_keys(&["Enter"]);
    type_literally(&tmux, "~");
    tmux.send_keys(&["C-z"]);
    tmux.wait_for_screen("[suspend msh]");
    wait_for_state(pid, 'T');
    // The local shell has the terminal, cooked.
    tmux.assert_cooked("SUSPENDED");
    tmux.resize(90, 25);
    tmux.send_keys(&["clear; fg", "Enter"]);
    // The window changed while msh was stopped: it must tell the server on resume.
    tmux.send_keys(&[
        "echo BACK-${MSHT_SIDE:-local}-$(stty size | tr ' ' x)",
        "Enter",
    ]);
    tmux.wait_for_screen("BACK-remote-25x90");
    tmux.send_keys(&["exit 5", "Enter"]);
    wait_for_state(pid, 'X');
    tmux.send_keys(&["echo RC=$?", "Enter"]);
    tmux.wait_for_screen("RC=5");
    tmux.assert_cooked("STTY");
}

/// Waits until process `pid` is in `state` (from /proc/PID/stat: `T` stopped); `X` means
/// gone and reaped.
fn wait_for_state(pid: i32, state: char) {
    let start = Instant::now();
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok();
        // The state follows the command name, which is in parentheses.
        let now = stat
            .as_deref()
            .and_then(|s| s.rsplit_once(") "))
            .and_then(|(_, rest)| rest.chars().next())
            .unwrap_or('X');
        if now == state {
            return;
        }
        if start.elapsed() > Duration::from_secs(20) {
            panic!("process {pid} in state {now}, not {state}, after 20s");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// msh run directly (no shell, no tmux) to `d`: `flags`, then `127.0.0.1 COMMAND`, with HOME
/// in the test dir.
fn msh_cmd(d: &Mshd, flags: &[&str], command: &str) -> std::process::Command {
    let mut c = cmd(bin("msh"), flags);
    c.args(["-p", &d.port.to_string(), "-l", &d.user, "-i"])
        .arg(&d.client_key)
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", d.known_hosts.display()))
        .args(["-o", "GlobalKnownHostsFile=/dev/null", "127.0.0.1", command])
        .env("HOME", &d.dir.path);
    c
}

/// Without a PTY (stdin a pipe) nothing is an escape: the bytes reach the command as sent.
#[test]
fn no_escapes_without_a_pty() {
    let d = mshd("msh-escape-nopty");
    let c = msh_cmd(&d, &[], "cat");
    let out = run(c, b"~.\nx\n~.\n~?\n", Duration::from_secs(20));
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout_str(), "~.\nx\n~.\n~?\n");
    // The oracle: OpenSSH's ssh does the same.
    let out = run(
        d.ssh(&[], "cat"),
        b"~.\nx\n~.\n~?\n",
        Duration::from_secs(20),
    );
    assert_eq!(out.code(), Some(0), "ssh: {}", out.stderr);
    assert_eq!(out.stdout_str(), "~.\nx\n~.\n~?\n");
}

/// `-tt` asks for a PTY even on a pipe, and then escapes are on, as in ssh: `~.` at the
/// start of the input ends the session.
#[test]
fn forced_pty_on_a_pipe_honours_escapes() {
    let d = mshd("msh-escape-tt");
    let c = msh_cmd(&d, &["-tt"], "sleep 30");
    let start = Instant::now();
    let out = run(c, b"~.", Duration::from_secs(20));
    assert_eq!(out.code(), Some(255), "{}", out.stderr);
    out.assert_stderr_contains("msh: connection to 127.0.0.1 closed.");
    assert!(start.elapsed() < Duration::from_secs(10));
    // The oracle: OpenSSH's ssh -tt disconnects on the same input.
    let start = Instant::now();
    let out = run(d.ssh(&["-tt"], "sleep 30"), b"~.", Duration::from_secs(20));
    assert_eq!(out.code(), Some(255), "ssh: {}", out.stderr);
    assert!(
        out.stderr.contains("Connection to 127.0.0.1 closed."),
        "ssh: {}",
        out.stderr
    );
    assert!(start.elapsed() < Duration::from_secs(10));
}
