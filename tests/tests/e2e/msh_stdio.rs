//! msh's stdin, stdout and stderr as other programs hand them over: `rsync -e msh` (rsync
//! gives its transport a non-blocking socket as stdout), tar streams through msh both ways,
//! and explicitly non-blocking pipes whose other ends are slow, so that msh meets `EAGAIN`
//! on every stream. The same rsync copies through OpenSSH's `ssh` against mshd, and msh
//! against sshd, so a pass does not depend on msh being at both ends.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use msh_tests::mshd::Mshd;
use msh_tests::*;

use crate::msh_to_sshd::setup;

const T: Duration = Duration::from_secs(180);

/// `-e` for rsync (and the command prefix for shell pipelines): msh to `port` as `user` with
/// `key`, the pinned known_hosts, no prompts. Test paths hold no spaces or quotes.
fn msh_line(port: u16, user: &str, key: &Path, kh: &Path) -> String {
    format!(
        "{} -p {port} -l {user} -i {} -o UserKnownHostsFile={} -o GlobalKnownHostsFile=/dev/null \
         -o StrictHostKeyChecking=yes -o BatchMode=yes",
        bin("msh").display(),
        key.display(),
        kh.display()
    )
}

/// The same for OpenSSH's `ssh` (what `Mshd::ssh` runs), as one `-e` string.
fn ssh_line(d: &Mshd) -> String {
    format!(
        "{} -F /dev/null -p {} -l {} -i {} -o UserKnownHostsFile={} \
         -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes \
         -o IdentitiesOnly=yes",
        tool("ssh").display(),
        d.port,
        d.user,
        d.client_key.display(),
        d.known_hosts.display()
    )
}

fn msh_to_mshd(d: &Mshd) -> String {
    msh_line(d.port, &d.user, &d.client_key, &d.known_hosts)
}

/// Runs a bash pipeline (with `pipefail`, so every stage's failure counts) with msh's
/// environment: HOME in the test dir, no agent, no RUST_LOG.
fn pipeline(home: &Path, script: &str) -> Output {
    let mut c = cmd("bash", ["-c", &format!("set -o pipefail; {script}")]);
    c.env("HOME", home)
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("RUST_LOG");
    run(c, b"", T)
}

fn rsync(home: &Path, e: &str, from: &str, to: &str) -> Output {
    let mut c = cmd("rsync", ["-a", "-e", e, from, to]);
    c.env("HOME", home)
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("RUST_LOG");
    run(c, b"", T)
}

/// `rsync -a -e E` pushes `src/` to `home/pushed/` through 127.0.0.1 and pulls it back into
/// `home/pulled/`; each run must satisfy `ok`, and each copy must equal `src`. Returns the
/// pushed copy.
fn rsync_push_and_pull(home: &Path, e: &str, src: &Path, ok: impl Fn(&Output)) -> PathBuf {
    let (pushed, pulled) = (home.join("pushed"), home.join("pulled"));
    let local = |p: &Path| format!("{}/", p.display());
    let remote = |p: &Path| format!("127.0.0.1:{}/", p.display());
    for (from, to, copy) in [
        (local(src), remote(&pushed), &pushed),
        (remote(src), local(&pulled), &pulled),
    ] {
        ok(&rsync(home, e, &from, &to));
        assert_same_tree(src, copy);
    }
    pushed
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rand::fill(&mut v[..]);
    v
}

/// A tree as rsync and tar see it: `small` files (0 to ~5 KB, modes 0644/0600/0755/0640/0444)
/// in ten directories of their own modes, the `big` files at the top, an empty directory and a
/// relative symlink.
fn make_tree(root: &Path, small: usize, big: &[usize]) {
    const MODES: [u32; 5] = [0o644, 0o600, 0o755, 0o640, 0o444];
    std::fs::create_dir_all(root).unwrap();
    for i in 0..small {
        let sub = root.join(format!("d{}", i % 10));
        std::fs::create_dir_all(&sub).unwrap();
        let p = sub.join(format!("f{i:03}"));
        std::fs::write(&p, random_bytes((i * 137) % 5000)).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(MODES[i % MODES.len()]))
            .unwrap();
    }
    for i in 0..10u32 {
        let sub = root.join(format!("d{i}"));
        if sub.exists() {
            std::fs::set_permissions(
                &sub,
                std::fs::Permissions::from_mode(0o700 | (i % 2 * 0o055)),
            )
            .unwrap();
        }
    }
    for (i, len) in big.iter().enumerate() {
        std::fs::write(root.join(format!("big{i}.bin")), random_bytes(*len)).unwrap();
    }
    std::fs::create_dir_all(root.join("empty")).unwrap();
    std::fs::set_permissions(root.join("empty"), std::fs::Permissions::from_mode(0o750)).unwrap();
    std::os::unix::fs::symlink("d0/f000", root.join("link")).unwrap();
}

#[derive(Debug, PartialEq)]
enum Node {
    Dir { mode: u32 },
    File { mode: u32, data: Vec<u8> },
    Link { target: PathBuf },
}

/// Every entry below `root` (not following symlinks) by its relative path.
fn tree(root: &Path) -> BTreeMap<PathBuf, Node> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Node>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            let mode = meta.permissions().mode() & 0o7777;
            let node = if meta.file_type().is_symlink() {
                Node::Link {
                    target: std::fs::read_link(&path).unwrap(),
                }
            } else if meta.is_dir() {
                walk(root, &path, out);
                Node::Dir { mode }
            } else {
                Node::File {
                    mode,
                    data: std::fs::read(&path).unwrap(),
                }
            };
            out.insert(rel, node);
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// The two trees hold the same names, kinds, modes, bytes and link targets.
#[track_caller]
fn assert_same_tree(want: &Path, got: &Path) {
    let (a, b) = (tree(want), tree(got));
    let names_a: Vec<_> = a.keys().collect();
    let names_b: Vec<_> = b.keys().collect();
    assert_eq!(
        names_a,
        names_b,
        "{} vs {}: entries differ",
        want.display(),
        got.display()
    );
    for (name, node) in &a {
        let other = &b[name];
        match (node, other) {
            (Node::File { mode: m1, data: d1 }, Node::File { mode: m2, data: d2 }) => {
                assert_eq!(m1, m2, "{}: mode {m1:o} became {m2:o}", name.display());
                assert!(
                    d1 == d2,
                    "{}: contents differ ({} bytes vs {})",
                    name.display(),
                    d1.len(),
                    d2.len()
                );
            }
            _ => assert_eq!(node, other, "{}", name.display()),
        }
    }
    // The top directories' own modes too (rsync -a copies them with `src/`).
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(want), mode(got), "mode of {}", got.display());
}

/// Regression: rsync hands its `-e` command a non-blocking socket as stdout, and msh took the
/// first `EAGAIN` for a fatal error ("connection unexpectedly closed").
#[test]
fn rsync_e_msh_pushes_and_pulls_a_tree() {
    let d = Mshd::start("stdio-rsync-msh");
    let src = d.dir.join("src");
    make_tree(&src, 300, &[3 << 20, 5 << 20, 1 << 20]);
    let e = msh_to_mshd(&d);
    let pushed = rsync_push_and_pull(&d.dir.path, &e, &src, |out| d.assert_ok(out));

    // A second push finds nothing to send and still succeeds (rsync's quick check over msh).
    let out = rsync(
        &d.dir.path,
        &e,
        &format!("{}/", src.display()),
        &format!("127.0.0.1:{}/", pushed.display()),
    );
    d.assert_ok(&out);
    assert_same_tree(&src, &pushed);
}

/// OpenSSH's `ssh` as rsync's transport against mshd, both ways: the server half of the same
/// copies, driven by the reference client.
#[test]
fn rsync_e_ssh_against_mshd_pushes_and_pulls_a_tree() {
    let d = Mshd::start("stdio-rsync-ssh");
    let src = d.dir.join("src");
    make_tree(&src, 300, &[3 << 20, 5 << 20, 1 << 20]);
    rsync_push_and_pull(&d.dir.path, &ssh_line(&d), &src, |out| d.assert_ok(out));
}

/// msh as rsync's transport against OpenSSH's sshd, both ways.
#[test]
fn rsync_e_msh_against_sshd_pushes_and_pulls_a_tree() {
    let s = setup("stdio-rsync-sshd");
    let src = s.dir.join("src");
    make_tree(&src, 200, &[4 << 20]);
    let e = msh_line(s.sshd.port, &s.sshd.user, &s.id, &s.kh);
    rsync_push_and_pull(&s.dir.path, &e, &src, |out| s.sshd.assert_ok(out));
}

/// `tar c | msh host tar x` and `msh host tar c | tar x` with a tree of about 40 MB.
#[test]
fn tar_through_msh_both_ways_keeps_a_large_tree() {
    let d = Mshd::start("stdio-tar");
    let src = d.dir.join("src");
    make_tree(&src, 200, &[8 << 20, 8 << 20, 8 << 20, 8 << 20, 6 << 20]);
    let m = msh_to_mshd(&d);

    // Up: local `tar c` into msh running `tar x`; down: msh running `tar c` into local `tar x`.
    for (dst, script) in [
        (
            "up",
            "tar cf - -C {src} . | {m} 127.0.0.1 'tar xpf - -C {dst}'",
        ),
        (
            "down",
            "{m} 127.0.0.1 'tar cf - -C {src} .' | tar xpf - -C {dst}",
        ),
    ] {
        let dst = d.dir.join(dst);
        std::fs::create_dir(&dst).unwrap();
        let script = script
            .replace("{m}", &m)
            .replace("{src}", &src.display().to_string())
            .replace("{dst}", &dst.display().to_string());
        let out = pipeline(&d.dir.path, &script);
        d.assert_ok(&out);
        assert_same_tree(&src, &dst);
    }
}

/// Runs a command with stdin, stdout and stderr on pipes whose command-side ends are
/// O_NONBLOCK, and whose other ends start late: input after 1 s, stdout read after 2 s,
/// stderr after 3 s, so the command meets EAGAIN on all three. With NB_STDERR_ONE_PAGE=1 the
/// stderr pipe holds one page (4096 bytes) and is read only after 6 s. Usage:
/// `nb.py IN OUT ERR -- COMMAND...`; prints the exit status ("timeout" after 120 s).
const NONBLOCKING_DRIVER: &str = r#"
import fcntl, os, subprocess, sys, threading, time
inp, outp, errp = sys.argv[1:4]
argv = sys.argv[5:]
in_r, in_w = os.pipe()
out_r, out_w = os.pipe()
err_r, err_w = os.pipe()
for fd in (in_r, out_w, err_w):
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
one_page = os.environ.get("NB_STDERR_ONE_PAGE") == "1"
if one_page:
    fcntl.fcntl(err_w, fcntl.F_SETPIPE_SZ, 4096)
p = subprocess.Popen(argv, stdin=in_r, stdout=out_w, stderr=err_w)
for fd in (in_r, out_w, err_w):
    os.close(fd)
def feed():
    time.sleep(1)
    data = open(inp, "rb").read()
    with os.fdopen(in_w, "wb", buffering=0) as f:
        for i in range(0, len(data), 100000):
            f.write(data[i:i + 100000])
def drain(fd, path, delay):
    time.sleep(delay)
    with os.fdopen(fd, "rb", buffering=0) as f, open(path, "wb") as o:
        while True:
            b = f.read(65536)
            if not b:
                break
            o.write(b)
threads = [threading.Thread(target=feed),
           threading.Thread(target=drain, args=(out_r, outp, 2)),
           threading.Thread(target=drain, args=(err_r, errp, 6 if one_page else 3))]
for t in threads:
    t.start()
try:
    rc = p.wait(timeout=120)
except subprocess.TimeoutExpired:
    p.kill()
    p.wait()
    print("timeout")
    os._exit(0)
for t in threads:
    t.join(30)
print(rc)
"#;

/// Runs `argv` under the non-blocking driver with `input` on stdin; returns (exit status
/// line, stdout bytes, stderr bytes).
fn run_nonblocking(dir: &TestDir, argv: &[String], input: &[u8]) -> (String, Vec<u8>, Vec<u8>) {
    run_nonblocking_env(dir, argv, input, false)
}

fn run_nonblocking_env(
    dir: &TestDir,
    argv: &[String],
    input: &[u8],
    stderr_one_page: bool,
) -> (String, Vec<u8>, Vec<u8>) {
    let driver = dir.write("nb.py", NONBLOCKING_DRIVER, 0o644);
    let inp = dir.write("nb-in.bin", input, 0o644);
    let (outp, errp) = (dir.join("nb-out.bin"), dir.join("nb-err.bin"));
    let mut c = Command::new("python3");
    c.arg(&driver)
        .arg(&inp)
        .arg(&outp)
        .arg(&errp)
        .arg("--")
        .args(argv)
        .env(
            "NB_STDERR_ONE_PAGE",
            if stderr_one_page { "1" } else { "0" },
        )
        .env("HOME", &dir.path)
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("RUST_LOG");
    let out = run(c, b"", T);
    assert!(out.status.success(), "driver: {}", out.stderr);
    (
        out.stdout_str().trim().to_string(),
        std::fs::read(&outp).unwrap_or_default(),
        std::fs::read(&errp).unwrap_or_default(),
    )
}

/// `line` split into words, then `rest` as they are.
fn argv(line: &str, rest: &[&str]) -> Vec<String> {
    line.split_whitespace()
        .chain(rest.iter().copied())
        .map(String::from)
        .collect()
}

/// Non-blocking stdin, stdout and stderr with slow peers: every byte arrives both ways and
/// msh exits 0. Before, msh took stdin's EAGAIN for end of input and stdout's for a broken pipe.
#[test]
fn nonblocking_stdio_with_slow_peers_loses_nothing() {
    let d = Mshd::start("stdio-nonblocking");
    let data = random_bytes(8 << 20);
    let (status, got, err) = run_nonblocking(
        &d.dir,
        &argv(
            &msh_to_mshd(&d),
            &["127.0.0.1", "cat; head -c 3000000 /dev/zero >&2"],
        ),
        &data,
    );
    assert_eq!(
        status,
        "0",
        "msh's exit status; its stderr: {}\nmshd log:\n{}",
        String::from_utf8_lossy(&err[..err.len().min(2000)]),
        d.log_text()
    );
    assert_eq!(got.len(), data.len(), "bytes through remote cat");
    assert!(got == data, "stdout differs from what went in");
    assert_eq!(err.len(), 3_000_000, "stderr byte count");
    assert!(err.iter().all(|&b| b == 0), "stderr holds other bytes");
}

/// msh's own last words (here: the remote command was killed) reach a non-blocking stderr
/// that is full: the remote's 4096 bytes fill the one-page pipe, read only seconds later.
/// std's `eprintln!` panicked on the EAGAIN (exit 101, message lost).
#[test]
fn full_nonblocking_stderr_still_gets_mshs_own_message() {
    let d = Mshd::start("stdio-nonblocking-stderr");
    let (status, _, err) = run_nonblocking_env(
        &d.dir,
        &argv(
            &msh_to_mshd(&d),
            &["127.0.0.1", "head -c 4096 /dev/zero >&2; kill -TERM $$"],
        ),
        b"",
        true,
    );
    // msh's own words, after the remote's zeros.
    let text = String::from_utf8_lossy(&err)
        .trim_start_matches('\0')
        .to_string();
    assert_eq!(status, "255", "msh's exit status; its stderr: {text:?}");
    assert!(
        err.len() > 4096 && err[..4096].iter().all(|&b| b == 0),
        "the remote's 4096 bytes of stderr first: {text:?}"
    );
    assert_eq!(
        String::from_utf8_lossy(&err[4096..]),
        "msh: remote command killed by signal TERM\n"
    );
}

/// The same against OpenSSH's sshd (stdout only: the fixture sshd copies its debug log to the
/// client's stderr).
#[test]
fn nonblocking_stdio_msh_to_sshd_loses_nothing() {
    let s = setup("stdio-nonblocking-sshd");
    let data = random_bytes(6 << 20);
    let (status, got, err) = run_nonblocking(
        &s.dir,
        &argv(
            &msh_line(s.sshd.port, &s.sshd.user, &s.id, &s.kh),
            &["127.0.0.1", "cat"],
        ),
        &data,
    );
    assert_eq!(
        status,
        "0",
        "msh's exit status; its stderr: {}",
        String::from_utf8_lossy(&err)
    );
    assert_eq!(got.len(), data.len(), "bytes through remote cat");
    assert!(got == data, "stdout differs from what went in");
}

/// OpenSSH's `sftp` through mshd in both directions (mshd_sftp.rs covers scp both ways and
/// sftp uploads): `put` then `get` of a 6 MiB file, bytes equal each way.
#[test]
fn sftp_put_and_get_through_mshd() {
    let d = Mshd::start("stdio-sftp");
    let data = random_bytes(6 << 20);
    let local = d.dir.write("local.bin", &data, 0o644);
    let (remote, back) = (d.dir.join("remote.bin"), d.dir.join("back.bin"));
    let batch = d.dir.write(
        "batch",
        format!(
            "put {} {}\nget {} {}\n",
            local.display(),
            remote.display(),
            remote.display(),
            back.display()
        ),
        0o644,
    );
    let mut c = d.openssh_client("sftp", &d.client_key);
    c.arg("-P")
        .arg(d.port.to_string())
        .arg("-b")
        .arg(&batch)
        .arg(format!("{}@127.0.0.1", d.user));
    let out = run(c, b"", T);
    d.assert_ok(&out);
    assert!(
        std::fs::read(&remote).unwrap() == data,
        "uploaded bytes differ"
    );
    assert!(
        std::fs::read(&back).unwrap() == data,
        "downloaded bytes differ"
    );
}
