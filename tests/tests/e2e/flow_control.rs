//! Flow control under a slow reader (issue 8; the russh patch in vendor/russh/PATCHES.md):
//! 256 MiB through a remote `cat` while the client's stdout is read late and with a long
//! pause, from OpenSSH's `ssh` and from msh; msh against sshd and mshd with a reader that
//! stops for seconds mid-stream. What comes back must be exactly what was sent (sha256), and
//! nothing may hang: before the patch, ssh -> mshd stopped for good after 2 MiB (russh
//! parked the whole connection on the full queue of the `cat`'s stdin and never read the
//! client's WINDOW_ADJUST), and msh -> mshd sometimes for good at any point (both russh
//! session loops blocked writing at once).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use msh_tests::mshd::Mshd;
use msh_tests::*;

use crate::msh_to_sshd::{msh_cmd, setup};

/// Generous: a debug-build mshd on a shared 2-core machine moves ~100 MB/s.
const T: Duration = Duration::from_secs(300);

/// A file of `len` random bytes in `dir` and its sha256.
fn random_file(dir: &TestDir, name: &str, len: usize) -> (PathBuf, String) {
    let mut data = vec![0u8; len];
    rand::fill(&mut data[..]);
    let path = dir.write(name, &data, 0o600);
    (path.clone(), sha256sum(&path))
}

/// How the reader of the client's stdout misbehaves.
struct Reader {
    /// Before the first read.
    initial_pause: Duration,
    /// After this many bytes ...
    pause_after: usize,
    /// ... it stops reading for this long.
    pause: Duration,
}

/// What came out of the client: exit code, byte count and sha256 of its stdout, stderr.
struct Got {
    code: Option<i32>,
    len: usize,
    sha256: String,
    stderr: String,
}

impl Got {
    /// The client exited 0 and every byte came back unchanged; on failure the message has
    /// the client's stderr and the daemon's log.
    fn assert_intact(&self, len: usize, want: &str, client: &str, log: impl Fn() -> String) {
        assert_eq!(
            self.code,
            Some(0),
            "{client} stderr: {}\nlog:\n{}",
            self.stderr,
            log()
        );
        assert_eq!(self.len, len, "bytes back through cat");
        assert_eq!(self.sha256, want);
    }
}

/// Runs `client` with `input` as stdin and its stdout read by `reader` into `sha256sum`;
/// kills it (by PID) and fails with `context()` if it has not finished within [`T`].
fn run_slow_reader(
    mut client: Command,
    input: &Path,
    reader: Reader,
    context: impl Fn() -> String,
) -> Got {
    client
        .stdin(std::fs::File::open(input).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = client.spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let mut hasher = cmd("sha256sum", Vec::<&str>::new())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut hash_in = hasher.stdin.take().unwrap();
    let copier = std::thread::spawn(move || {
        std::thread::sleep(reader.initial_pause);
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0usize;
        let mut paused = false;
        loop {
            let n = match out.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            hash_in.write_all(&buf[..n]).unwrap();
            total += n;
            if !paused && total >= reader.pause_after {
                paused = true;
                std::thread::sleep(reader.pause);
            }
        }
        total
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let Some(status) = wait_timeout(&mut child, T) else {
        let _ = child.kill();
        let _ = child.wait();
        let _ = hasher.kill();
        let _ = hasher.wait();
        panic!("client did not finish within {T:?}\n{}", context());
    };
    let len = copier.join().unwrap();
    let mut sha = String::new();
    hasher
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut sha)
        .unwrap();
    hasher.wait().unwrap();
    Got {
        code: status.code(),
        len,
        sha256: sha
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string(),
        stderr: err_t.join().unwrap(),
    }
}

fn msh_to(d: &Mshd, remote: &str) -> Command {
    let mut c = msh_cmd(&d.dir, d.port, &d.user, &d.known_hosts, &[]);
    c.arg("-i")
        .arg(&d.client_key)
        .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
        .args(["127.0.0.1", remote]);
    c
}

/// Read late (2 s), then stop for 3 s after 64 MiB.
fn slow() -> Reader {
    Reader {
        initial_pause: Duration::from_secs(2),
        pause_after: 64 << 20,
        pause: Duration::from_secs(3),
    }
}

/// Stops for 5 s after 4 MiB: longer than it takes to fill every window and pipe.
fn stalling() -> Reader {
    Reader {
        initial_pause: Duration::ZERO,
        pause_after: 4 << 20,
        pause: Duration::from_secs(5),
    }
}

#[test]
fn ssh_to_mshd_256mib_through_cat_with_a_slow_reader() {
    let d = Mshd::start("flow-ssh-mshd");
    let (input, want) = random_file(&d.dir, "in.bin", 256 << 20);
    let got = run_slow_reader(d.ssh(&[], "cat"), &input, slow(), || d.log_text());
    got.assert_intact(256 << 20, &want, "ssh", || d.log_text());
}

// Both directions at once between two russh peers: msh grants 16 MiB, mshd 8 MiB, far more
// than the socket buffers hold. This hung (1 run in 4) while russh's session loops wrote the
// socket with `write_all` and read nothing meanwhile: both could block writing into a full
// socket the other was not reading (vendor/russh/PATCHES.md, "reading while writing").
#[test]
fn msh_to_mshd_256mib_through_cat_with_a_slow_reader() {
    let d = Mshd::start("flow-msh-mshd");
    let (input, want) = random_file(&d.dir, "in.bin", 256 << 20);
    let got = run_slow_reader(msh_to(&d, "cat"), &input, slow(), || d.log_text());
    got.assert_intact(256 << 20, &want, "msh", || d.log_text());
}

#[test]
fn msh_to_mshd_reader_that_stops_loses_nothing() {
    let d = Mshd::start("flow-msh-mshd-stall");
    let (input, want) = random_file(&d.dir, "in.bin", 64 << 20);
    let got = run_slow_reader(msh_to(&d, "cat"), &input, stalling(), || d.log_text());
    got.assert_intact(64 << 20, &want, "msh", || d.log_text());
}

#[test]
fn msh_to_sshd_reader_that_stops_loses_nothing() {
    let s = setup("flow-msh-sshd-stall");
    let (input, want) = random_file(&s.dir, "in.bin", 64 << 20);
    let got = run_slow_reader(s.msh(&["127.0.0.1", "cat"]), &input, stalling(), || {
        s.sshd.log()
    });
    got.assert_intact(64 << 20, &want, "msh", || s.sshd.log());
}
