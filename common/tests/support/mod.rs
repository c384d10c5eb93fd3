//! Helpers shared by the oracle tests in `common/tests`: finding the OpenSSH tools, running
//! ssh-keygen, per-test directories under CARGO_TARGET_TMPDIR, and a real sshd (stopped by
//! its PID when dropped) that tests log in to with the real ssh.
//! Each test target uses only some of these, hence `dead_code` is allowed.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Read as _;
use std::net::{IpAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// An OpenSSH tool (`ssh`, `sshd`, `ssh-keygen`) from the usual directories or PATH; a
/// missing one fails the test with how to install it.
pub fn tool(name: &str) -> PathBuf {
    [
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
        "/usr/local/sbin",
        "/usr/local/bin",
    ]
    .iter()
    .map(|d| Path::new(d).join(name))
    .chain(
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|d| d.join(name)),
    )
    .find(|p| p.is_file())
    .unwrap_or_else(|| panic!("{name} not found: apt-get install openssh-server openssh-client"))
}

pub fn ssh_keygen() -> PathBuf {
    tool("ssh-keygen")
}

/// Runs `ssh-keygen ARGS`, failing the test with its stderr unless it succeeds; its stdout.
pub fn ssh_keygen_ok(args: &[&str]) -> String {
    stdout_of_ok(
        args,
        Command::new(ssh_keygen()).args(args).output().unwrap(),
    )
}

/// The stdout of `ssh-keygen ARGS` that ended as `out`, failing the test with its stderr
/// unless it succeeded.
pub fn stdout_of_ok(args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "ssh-keygen {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `PATH.pub`: where ssh-keygen puts the public half of the key at PATH.
pub fn pub_path(p: &Path) -> PathBuf {
    PathBuf::from(format!("{}.pub", p.display()))
}

/// A fresh key pair `DIR/NAME`, `DIR/NAME.pub` of type `ty`, commented NAME.
pub fn key(dir: impl AsRef<Path>, name: &str, ty: &str) -> PathBuf {
    new_key(dir.as_ref(), name, ty, name)
}

/// A fresh key pair `DIR/NAME` of type `ty` with no comment; its path and its public key line
/// `type base64`.
pub fn key_line(dir: impl AsRef<Path>, name: &str, ty: &str) -> (PathBuf, String) {
    let path = new_key(dir.as_ref(), name, ty, "");
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    let line = public
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    (path, line)
}

fn new_key(dir: &Path, name: &str, ty: &str, comment: &str) -> PathBuf {
    let p = dir.join(name);
    ssh_keygen_ok(&[
        "-q",
        "-t",
        ty,
        "-N",
        "",
        "-C",
        comment,
        "-f",
        p.to_str().unwrap(),
    ]);
    p
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A fresh directory under CARGO_TARGET_TMPDIR/GROUP, removed when dropped.
pub struct Dir(tempfile::TempDir);

impl Dir {
    pub fn new(group: &str) -> Self {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join(group);
        std::fs::create_dir_all(&base).unwrap();
        Dir(tempfile::Builder::new().tempdir_in(base).unwrap())
    }
    pub fn path(&self) -> &Path {
        self.0.path()
    }
    pub fn join(&self, p: &str) -> PathBuf {
        self.0.path().join(p)
    }
}

impl AsRef<Path> for Dir {
    fn as_ref(&self) -> &Path {
        self.0.path()
    }
}

/// A port nothing listens on at `host` right now.
pub fn free_port(host: IpAddr) -> u16 {
    TcpListener::bind((host, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits up to `timeout` for `child` to exit; its status and what it wrote to its piped
/// stdout and stderr (empty where not piped). `None`, with the child killed, on timeout.
pub fn finish(mut child: Child, timeout: Duration) -> Option<(ExitStatus, String, String)> {
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut out = String::new();
    if let Some(mut pipe) = child.stdout.take() {
        pipe.read_to_string(&mut out).unwrap();
    }
    let mut err = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_string(&mut err).unwrap();
    }
    Some((status, out, err))
}

/// sshd, stopped by its PID when dropped.
pub struct Sshd {
    child: Child,
    /// `127.0.0.1` or `::1`.
    pub host: IpAddr,
    pub port: u16,
    pub log: PathBuf,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sshd {
    /// Starts `sshd -D -e -f CONFIG` (which must listen on `host`:`port`), its stderr in
    /// `log`, and waits up to 15 s until it accepts connections.
    pub fn spawn(host: IpAddr, port: u16, config: &Path, log: PathBuf) -> Sshd {
        // sshd run as root needs its privilege-separation directory.
        let run_sshd = Path::new("/run/sshd");
        if !run_sshd.exists() {
            std::fs::create_dir_all(run_sshd).unwrap();
            std::fs::set_permissions(run_sshd, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let child = Command::new(tool("sshd"))
            .args(["-D", "-e", "-f"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut sshd = Sshd {
            child,
            host,
            port,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect((host, port)).is_err() {
            if let Ok(Some(status)) = sshd.child.try_wait() {
                panic!("sshd exited ({status}): {}", sshd.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "sshd did not listen on {port} in 15 s: {}",
                sshd.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        sshd
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Logs in as root with `key` (and its `-cert.pub` beside it, if any), with the extra ssh
    /// `-o` options `opts`, and runs `command`; `Some(stdout)` if sshd let us in.
    pub fn login(&self, key: &Path, opts: &[&str], command: &str) -> Option<String> {
        let child = Command::new(tool("ssh"))
            .args([
                "-F",
                "/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
            ])
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ])
            .args(["-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR"])
            .args(opts.iter().flat_map(|o| ["-o", *o]))
            .args(["-T", "-i"])
            .arg(key)
            .args([
                "-p",
                &self.port.to_string(),
                &format!("root@{}", self.host),
                command,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let Some((status, out, err)) = finish(child, Duration::from_secs(30)) else {
            panic!("ssh did not finish in 30 s; sshd log: {}", self.log_text());
        };
        match status.code() {
            Some(255) if err.contains("Permission denied") => None,
            Some(0) => Some(out),
            other => panic!("ssh exited {other:?}: {err}; sshd log: {}", self.log_text()),
        }
    }
}

/// CARGO_TARGET_TMPDIR/NAME-PID, emptied, mode 0755 (sshd's StrictModes checks the
/// directories above the files it reads).
pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}
