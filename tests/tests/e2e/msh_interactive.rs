//! msh on a real terminal, driven through tmux (a detached session of 100x30 with its own
//! socket in the test's directory): the remote shell answers, `stty size` shows the window
//! and follows a resize, `exit 3` makes msh exit 3, the local terminal is back in cooked mode
//! afterwards (also when msh is killed by SIGTERM), and the `ask` question answered `yes`
//! records the host.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use msh_tests::*;

use crate::msh_to_sshd::setup;

const SCREEN_TIMEOUT: Duration = Duration::from_secs(30);

/// A tmux server of the test's own (socket under the test dir), killed on drop.
pub(crate) struct Tmux {
    sock: PathBuf,
}

impl Tmux {
    pub fn new(dir: &TestDir) -> Tmux {
        let _ = tool("tmux");
        Tmux {
            sock: dir.join("tmux.sock"),
        }
    }

    fn cmd(&self, args: &[&str]) -> Output {
        let mut c = cmd(tool("tmux"), ["-S"]);
        c.arg(&self.sock).args(args);
        let out = run(c, b"", Duration::from_secs(10));
        assert_eq!(out.code(), Some(0), "tmux {args:?}: {}", out.stderr);
        out
    }

    /// Starts the session running `sh -c LINE` in a 100x30 window.
    pub fn start(&self, line: &str) {
        self.cmd(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "100",
            "-y",
            "30",
            line,
        ]);
    }

    pub fn send_keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        self.cmd(&args);
    }

    pub fn screen(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-J", "-t", "t"])
            .stdout_str()
    }

    /// Waits until the visible screen contains `needle`; panics showing the screen.
    pub fn wait_for_screen(&self, needle: &str) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if s.contains(needle) {
                return s;
            }
            if start.elapsed() > SCREEN_TIMEOUT {
                panic!("{needle:?} not on screen after {SCREEN_TIMEOUT:?}; screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn resize(&self, x: u16, y: u16) {
        self.cmd(&[
            "resize-window",
            "-t",
            "t",
            "-x",
            &x.to_string(),
            "-y",
            &y.to_string(),
        ]);
    }

    /// Asserts the terminal is in cooked mode: `stty -a` (its output found by `marker`) shows
    /// icanon and echo on.
    pub fn assert_cooked(&self, marker: &str) {
        self.send_keys(&["clear", "Enter"]);
        std::thread::sleep(Duration::from_millis(300));
        self.send_keys(&[&format!("stty -a; echo {marker}-$((2+3))"), "Enter"]);
        let screen = self.wait_for_screen(&format!("{marker}-5"));
        assert!(
            screen.contains(" icanon") && !screen.contains("-icanon"),
            "terminal left without icanon:\n{screen}"
        );
        assert!(
            screen.contains(" echo ") && !screen.contains("-echo "),
            "terminal left without echo:\n{screen}"
        );
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let mut c = cmd(tool("tmux"), ["-S"]);
        c.arg(&self.sock).arg("kill-server");
        let _ = run(c, b"", Duration::from_secs(10));
    }
}

/// Waits until `path` exists with content, returning it.
pub(crate) fn wait_for_file(path: &Path) -> String {
    let start = Instant::now();
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            if !s.is_empty() {
                return s;
            }
        }
        if start.elapsed() > SCREEN_TIMEOUT {
            panic!("{} not written after {SCREEN_TIMEOUT:?}", path.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The shell line that runs msh with HOME `home` to 127.0.0.1:`port` as `user` with `id`,
/// checking the host against `kh` alone, followed by `rest` (options, destination, command).
fn msh_tty_line(home: &Path, port: u16, user: &str, id: &Path, kh: &Path, rest: &str) -> String {
    format!(
        "env HOME={home} {msh} -p {port} -l {user} -i {id} -o UserKnownHostsFile={kh} \
         -o GlobalKnownHostsFile=/dev/null {rest}",
        home = home.display(),
        msh = bin("msh").display(),
        id = id.display(),
        kh = kh.display(),
    )
}

/// [`msh_tty_line`] to the fixture sshd of `s`.
fn msh_line(s: &crate::msh_to_sshd::Setup, extra: &str) -> String {
    msh_tty_line(&s.dir.path, s.sshd.port, &s.sshd.user, &s.id, &s.kh, extra)
}

/// [`msh_tty_line`] to `d` with its client key and pinned known_hosts.
pub(crate) fn msh_line_to_mshd(d: &msh_tests::mshd::Mshd, rest: &str) -> String {
    msh_tty_line(
        &d.dir.path,
        d.port,
        &d.user,
        &d.client_key,
        &d.known_hosts,
        rest,
    )
}

#[test]
fn interactive_shell_window_size_resize_exit_status_and_restore() {
    let s = setup("msh-interactive");
    let tmux = Tmux::new(&s.dir);
    tmux.start("sh");
    tmux.send_keys(&[
        &format!("{} 127.0.0.1; echo RC=$?", msh_line(&s, "")),
        "Enter",
    ]);
    // Typed once the remote shell may still be starting: the PTY buffers it.
    std::thread::sleep(Duration::from_millis(500));
    // SSH_TTY is set by sshd on the remote side only: proof the shell is the remote one.
    tmux.send_keys(&["echo REMOTE-${SSH_TTY:+tty}-$((6*7))", "Enter"]);
    tmux.wait_for_screen("REMOTE-tty-42");
    tmux.send_keys(&["stty size", "Enter"]);
    tmux.wait_for_screen("30 100");
    tmux.resize(120, 40);
    std::thread::sleep(Duration::from_millis(300));
    tmux.send_keys(&["stty size", "Enter"]);
    tmux.wait_for_screen("40 120");
    tmux.send_keys(&["exit 3", "Enter"]);
    tmux.wait_for_screen("RC=3");
    tmux.assert_cooked("STTY");
}

#[test]
fn sigterm_to_interactive_msh_restores_terminal_and_exits_255() {
    let s = setup("msh-interactive-term");
    let tmux = Tmux::new(&s.dir);
    let pidfile = s.dir.join("msh.pid");
    tmux.start("sh");
    tmux.send_keys(&[
        &format!(
            "sh -c 'echo $$ > {}; exec {} 127.0.0.1'; echo RC=$?",
            pidfile.display(),
            msh_line(&s, "")
        ),
        "Enter",
    ]);
    std::thread::sleep(Duration::from_millis(500));
    // SSH_TTY is set by sshd on the remote side only: proof the shell is the remote one.
    tmux.send_keys(&["echo REMOTE-${SSH_TTY:+tty}-$((6*7))", "Enter"]);
    tmux.wait_for_screen("REMOTE-tty-42");
    let pid: i32 = wait_for_file(&pidfile).trim().parse().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    tmux.wait_for_screen("RC=255");
    tmux.assert_cooked("STTY");
}

#[test]
fn ask_prompt_answered_yes_records_the_host() {
    let s = setup("msh-interactive-ask");
    std::fs::write(&s.kh, "").unwrap();
    let tmux = Tmux::new(&s.dir);
    tmux.start("sh");
    tmux.send_keys(&[
        &format!(
            "{} 127.0.0.1 echo ADDED-$((1+1)); echo RC=$?",
            msh_line(&s, "")
        ),
        "Enter",
    ]);
    tmux.wait_for_screen(&format!(
        "The authenticity of host '[127.0.0.1]:{}' can't be established.",
        s.sshd.port
    ));
    let screen = tmux.wait_for_screen("Are you sure you want to continue connecting");
    let fp = msh_common::keys::fingerprint(&s.sshd.host_key("ed25519").public);
    assert!(screen.contains(&fp), "fingerprint not shown:\n{screen}");
    tmux.send_keys(&["yes", "Enter"]);
    tmux.wait_for_screen("RC=0");
    let screen = tmux.screen();
    assert!(screen.contains("ADDED-2"), "{screen}");
    let text = std::fs::read_to_string(&s.kh).unwrap();
    assert!(
        text.contains(&format!("[127.0.0.1]:{}", s.sshd.port))
            && text.contains(&s.sshd.host_key("ed25519").public_line),
        "known_hosts: {text}"
    );
}

#[test]
fn interactive_shell_on_mshd_window_size_and_exit_status() {
    let d = msh_tests::mshd::Mshd::builder("msh-interactive-mshd")
        .toml("accept_env = [\"MSHT_*\"]")
        .start();
    let tmux = Tmux::new(&d.dir);
    tmux.start("sh");
    tmux.send_keys(&[
        &msh_line_to_mshd(&d, "-o SetEnv=MSHT_SIDE=remote 127.0.0.1; echo RC=$?"),
        "Enter",
    ]);
    std::thread::sleep(Duration::from_millis(500));
    // MSHT_SIDE is set only in the remote session (SetEnv): proof the shell is mshd's.
    tmux.send_keys(&["echo SIDE-${MSHT_SIDE:-local}-$((6*7))", "Enter"]);
    tmux.wait_for_screen("SIDE-remote-42");
    tmux.send_keys(&["stty size", "Enter"]);
    tmux.wait_for_screen("30 100");
    tmux.resize(110, 35);
    std::thread::sleep(Duration::from_millis(300));
    tmux.send_keys(&["stty size", "Enter"]);
    tmux.wait_for_screen("35 110");
    tmux.send_keys(&["exit 3", "Enter"]);
    tmux.wait_for_screen("RC=3");
    tmux.assert_cooked("STTY");
}
