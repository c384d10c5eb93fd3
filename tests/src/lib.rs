//! Test harness for msh's end-to-end tests: per-test directories, free loopback ports,
//! processes that are stopped by PID when dropped, and commands run with a timeout.
//! Tests only ever talk to 127.0.0.0/8 or ::1.

#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod forward;
pub mod mshd;
pub mod sshd;
pub mod users;

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Directory holding the workspace's built binaries (`target/debug`), found from the test
/// executable's own path (`target/debug/deps/e2e-...`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("deps dir");
    deps.parent().expect("profile dir").to_path_buf()
}

/// Path to a workspace binary (`mshd`, `msh`, `msh-keygen`). Fails with the fix when the
/// binary was not built.
pub fn bin(name: &str) -> PathBuf {
    let p = target_dir().join(name);
    assert!(
        p.exists(),
        "{} not built: run `cargo build --workspace` before the tests (scripts/test.sh does)",
        p.display()
    );
    p
}

/// Path to a system tool (`ssh`, `sshd`, `ssh-keygen`). Fails, never skips, when missing.
pub fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} not installed: run scripts/test.sh, which installs openssh-client and openssh-server from apt");
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A directory of a test's own, under `target/e2e-tmp/` (not /tmp: /tmp is world-writable, so
/// strict_modes would rightly refuse files below it). Mode 0755 so a throwaway user can
/// traverse it. Removed on drop unless MSH_KEEP_TEST_DIRS is set.
pub struct TestDir {
    pub path: PathBuf,
}

impl TestDir {
    pub fn new(name: &str) -> Self {
        let base = target_dir().join("e2e-tmp");
        if let Some(bad) = writable_ancestor(&target_dir()) {
            panic!(
                "{} is below {}, which others can write to: strict_modes (mshd's and sshd's) \
                 rightly refuses files there. Run scripts/test.sh (it builds elsewhere) or set \
                 CARGO_TARGET_DIR to a directory whose ancestors are not group/world-writable",
                target_dir().display(),
                bad.display()
            );
        }
        std::fs::create_dir_all(&base).unwrap();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path = base.join(format!("{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        TestDir { path }
    }

    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.path.join(p)
    }

    /// Writes `contents` to `name` with `mode`, returning the path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>, mode: u32) -> PathBuf {
        let p = self.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, contents).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.join(name)).unwrap_or_default()
    }
}

/// The first of `path` and its ancestors that is group- or world-writable (e.g. /tmp).
pub fn writable_ancestor(path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.permissions().mode() & 0o022 != 0)
                .unwrap_or(false)
        })
        .map(Path::to_path_buf)
}

/// The first of `path` and its ancestors that other users cannot enter (no `o+x`), if any.
pub fn closed_ancestor(path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_dir() && m.permissions().mode() & 0o001 == 0)
                .unwrap_or(false)
        })
        .map(Path::to_path_buf)
}

impl AsRef<Path> for TestDir {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if std::env::var_os("MSH_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A free TCP port on 127.0.0.1 (bound to :0, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts TCP connections on `addr`, or panics after `timeout`.
pub fn wait_for_port(addr: SocketAddr, timeout: Duration) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing listening on {addr} after {timeout:?}");
}

/// A background process, stopped by PID (SIGTERM, then SIGKILL) when dropped.
pub struct Proc {
    pub child: Child,
    pub name: String,
    /// Where stderr went, if redirected to a file (shown when a test fails).
    pub log: Option<PathBuf>,
}

impl Proc {
    /// Starts `cmd` with stdout/stderr appended to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Self {
        let out = std::fs::File::create(log).unwrap();
        let err = out.try_clone().unwrap();
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            child,
            name: name.to_string(),
            log: Some(log.to_path_buf()),
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Contents of the log so far.
    pub fn log_text(&self) -> String {
        self.log
            .as_ref()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .unwrap_or_default()
    }

    /// Waits until the log contains `needle`, or panics (showing the log) after `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            let text = self.log_text();
            if text.contains(needle) {
                return text;
            }
            if start.elapsed() > timeout {
                panic!(
                    "{}: {needle:?} not in log after {timeout:?}; log:\n{text}",
                    self.name
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Sends a signal by PID.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig);
    }

    /// Waits for exit up to `timeout`; None if still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_timeout(&mut self.child, timeout)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        self.signal(nix::sys::signal::Signal::SIGTERM);
        if self.wait_timeout(Duration::from_secs(3)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits for `child` to exit, up to `timeout`; None if it is still running then.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// Reads `pipe` to its end on a thread of its own; join for the bytes.
fn read_in_thread(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = pipe.read_to_end(&mut v);
        v
    })
}

/// Output of a command run to completion.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Output {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    /// Asserts the exit code; the failure shows both streams.
    #[track_caller]
    pub fn assert_code(&self, code: i32) {
        assert_eq!(
            self.code(),
            Some(code),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout_str(),
            self.stderr
        );
    }
    /// Asserts that stderr contains `needle`; the failure shows all of stderr.
    #[track_caller]
    pub fn assert_stderr_contains(&self, needle: &str) {
        let holds = self.stderr.contains(needle);
        assert_text(holds, "stderr", &self.stderr, "contain", needle);
    }
    /// Asserts that stderr starts with `prefix`; the failure shows all of stderr.
    #[track_caller]
    pub fn assert_stderr_starts_with(&self, prefix: &str) {
        let holds = self.stderr.starts_with(prefix);
        assert_text(holds, "stderr", &self.stderr, "start with", prefix);
    }
    /// Asserts that stdout (as text) contains `needle`; the failure shows all of stdout.
    #[track_caller]
    pub fn assert_stdout_contains(&self, needle: &str) {
        let stdout = self.stdout_str();
        assert_text(
            stdout.contains(needle),
            "stdout",
            &stdout,
            "contain",
            needle,
        );
    }
}

#[track_caller]
fn assert_text(holds: bool, stream: &str, all: &str, relation: &str, text: &str) {
    assert!(holds, "{stream} does not {relation} {text:?}:\n{all}");
}

/// Runs `cmd` feeding `stdin`, killing it (by PID) if it has not exited after `timeout`.
pub fn run(mut cmd: Command, stdin: &[u8], timeout: Duration) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let desc = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {desc}: {e}"));
    let mut child_in = child.stdin.take().unwrap();
    let input = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = child_in.write_all(&input);
    });
    let out_t = read_in_thread(child.stdout.take().unwrap());
    let err_t = read_in_thread(child.stderr.take().unwrap());
    let Some(status) = wait_timeout(&mut child, timeout) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{desc} did not finish within {timeout:?}");
    };
    let _ = writer.join();
    let stdout = out_t.join().unwrap();
    let stderr = String::from_utf8_lossy(&err_t.join().unwrap()).into_owned();
    Output {
        status,
        stdout,
        stderr,
    }
}

/// Builds a `Command` for `program` with `args`.
pub fn cmd<I, S>(program: impl AsRef<OsStr>, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = Command::new(program);
    c.args(args);
    c
}

/// OpenSSH's `ssh` to 127.0.0.1:`port` as `user` with only `identity`, checking the host key
/// strictly against `known_hosts` alone, with no user config, no agent and no prompts; `opts`
/// come before the destination, then `remote_command`.
pub fn openssh_command(
    port: u16,
    user: &str,
    identity: &Path,
    known_hosts: &Path,
    opts: &[&str],
    remote_command: &str,
) -> Command {
    let mut c = cmd(
        tool("ssh"),
        "-F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes \
         -o GlobalKnownHostsFile=/dev/null"
            .split_whitespace(),
    );
    c.arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .arg("-i")
        .arg(identity)
        .args(opts)
        .args([
            "-p",
            &port.to_string(),
            "-l",
            user,
            "127.0.0.1",
            remote_command,
        ])
        .env_remove("SSH_AUTH_SOCK");
    c
}

/// The SHA-256 of the file at `path` in hex, as coreutils' `sha256sum` computes it: the
/// oracle for bytes that went through a connection.
pub fn sha256sum(path: &Path) -> String {
    let out = run(cmd("sha256sum", [path]), b"", Duration::from_secs(60));
    assert!(
        out.status.success(),
        "sha256sum {}: {}",
        path.display(),
        out.stderr
    );
    out.stdout_str()
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// True when the tests run as root (CI does): root-mode tests need it.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Generates an ed25519 key pair with OpenSSH's ssh-keygen at `dir/name` (mode 0600).
pub fn ssh_keygen_ed25519(dir: &TestDir, name: &str) -> PathBuf {
    ssh_keygen_key(dir, name, "ed25519")
}

/// The key type and base64 of the OpenSSH public key file `key_pub`, without its comment:
/// what a known_hosts, authorized_keys or allowed_signers line carries.
pub fn public_key_fields(key_pub: &Path) -> String {
    std::fs::read_to_string(key_pub)
        .unwrap()
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `ssh-keygen -s CA -I ID -n PRINCIPALS EXTRA... KEY.pub`: OpenSSH signs a certificate,
/// written as `KEY-cert.pub`.
pub fn ssh_keygen_sign(ca: &Path, key_pub: &Path, id: &str, principals: &str, extra: &[&str]) {
    let mut c = cmd(tool("ssh-keygen"), ["-q", "-s"]);
    c.arg(ca)
        .args(["-I", id, "-n", principals])
        .args(extra)
        .arg(key_pub);
    let out = run(c, b"", Duration::from_secs(30));
    assert!(out.status.success(), "ssh-keygen -s failed: {}", out.stderr);
}

/// An `ssh-agent -D -a DIR/agent.sock` (log in `DIR/agent.log`), once its socket exists
/// (up to 10 s); the agent process and the socket path.
pub fn start_ssh_agent(dir: &Path) -> (Proc, PathBuf) {
    let sock = dir.join("agent.sock");
    let mut c = cmd(tool("ssh-agent"), ["-D", "-a"]);
    c.arg(&sock);
    let agent = Proc::spawn("ssh-agent", c, &dir.join("agent.log"));
    let start = Instant::now();
    while !sock.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "ssh-agent made no socket {}",
            sock.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (agent, sock)
}

/// A key pair of `kind` (`ed25519`, `ecdsa`, `rsa` with 2048 bits) made by ssh-keygen at
/// `dir/name`, commented `name`, without a passphrase.
pub fn ssh_keygen_key(dir: impl AsRef<Path>, name: &str, kind: &str) -> PathBuf {
    let path = dir.as_ref().join(name);
    let mut c = cmd(tool("ssh-keygen"), ["-q", "-N", "", "-C", name, "-t", kind]);
    if kind == "rsa" {
        c.args(["-b", "2048"]);
    }
    c.arg("-f").arg(&path);
    let out = run(c, b"", Duration::from_secs(30));
    assert!(
        out.status.success(),
        "ssh-keygen -t {kind} failed: {}",
        out.stderr
    );
    path
}
