//! Many writers appending to one known_hosts file at once (several msh processes meeting new
//! hosts): no line may be lost, torn or duplicated, and no temporary file left behind.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Barrier};

use msh_common::known_hosts::{check, write, HostKeyVerdict, KnownHostsFile, Line};
use russh::keys::PublicKey;

const THREADS: usize = 16;
const PER_THREAD: usize = 20;

fn ssh_keygen_key(dir: &Path, name: &str) -> PublicKey {
    let path = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("ssh-keygen: {e}: apt-get install openssh-client"));
    assert!(out.status.success(), "{out:?}");
    PublicKey::read_openssh_file(path.with_extension("pub")).unwrap()
}

#[test]
fn sixteen_writers_twenty_hosts_each_lose_nothing() {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("known-hosts-concurrency");
    std::fs::create_dir_all(&base).unwrap();
    let dir = tempfile::Builder::new().tempdir_in(base).unwrap();
    let keys: Vec<PublicKey> = (0..4)
        .map(|i| ssh_keygen_key(dir.path(), &format!("k{i}")))
        .collect();
    let path = dir.path().join("ssh/known_hosts");
    // A pre-existing file without a final newline, whose bytes must survive.
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "# keep me\nnot a valid line").unwrap();

    let keys = Arc::new(keys);
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (keys, barrier, path) = (keys.clone(), barrier.clone(), path.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for i in 0..PER_THREAD {
                    let host = format!("host-{t}-{i}.example");
                    let port = if i % 3 == 0 { 2200 + t as u16 } else { 22 };
                    write::append(&path, &host, port, &keys[(t + i) % 4], i % 2 == 0).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("# keep me\nnot a valid line\n"),
        "{text:.80}"
    );
    let f = KnownHostsFile::load(&path).unwrap();
    assert_eq!(
        f.lines.len(),
        2 + THREADS * PER_THREAD,
        "lines lost or torn"
    );
    assert_eq!(f.entries().count(), THREADS * PER_THREAD);
    assert_eq!(f.warnings().len(), 1, "{:?}", f.warnings());
    assert!(matches!(f.lines[1], Line::Invalid { line: 2, .. }));
    let files = [f];
    for t in 0..THREADS {
        for i in 0..PER_THREAD {
            let host = format!("host-{t}-{i}.example");
            let port = if i % 3 == 0 { 2200 + t as u16 } else { 22 };
            let v = check(&files, &host, port, &keys[(t + i) % 4]);
            assert!(
                matches!(v, HostKeyVerdict::Trusted { .. }),
                "{host}:{port}: {v:?}"
            );
        }
    }
    // Only the database and its lock file remain: no temporary files left behind.
    let mut names: Vec<String> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["known_hosts", "known_hosts.lock"]);
}

/// Separate processes, as several msh instances would be: this test re-runs its own binary
/// as the writers (the child role is chosen by `KH_WRITER_FILE`), 8 processes × 4 threads
/// × 10 hosts, all started at once.
#[test]
fn eight_processes_writing_at_once_lose_nothing() {
    if let Some(path) = std::env::var_os("KH_WRITER_FILE") {
        let id: usize = std::env::var("KH_WRITER_ID").unwrap().parse().unwrap();
        let key = PublicKey::read_openssh_file(std::env::var("KH_WRITER_KEY").unwrap()).unwrap();
        let path = std::path::PathBuf::from(path);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (path, key) = (path.clone(), key.clone());
                std::thread::spawn(move || {
                    for i in 0..10 {
                        let host = format!("p{id}-t{t}-h{i}");
                        write::append(&path, &host, 22, &key, t % 2 == 0).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        return;
    }

    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("known-hosts-concurrency");
    std::fs::create_dir_all(&base).unwrap();
    let dir = tempfile::Builder::new().tempdir_in(base).unwrap();
    let key = ssh_keygen_key(dir.path(), "k");
    let path = dir.path().join("known_hosts");
    let exe = std::env::current_exe().unwrap();
    let mut children = Kids(
        (0..8)
            .map(|id| {
                Command::new(&exe)
                    .args(["--exact", "eight_processes_writing_at_once_lose_nothing"])
                    .args(["--nocapture", "--test-threads=1"])
                    .env("KH_WRITER_FILE", &path)
                    .env("KH_WRITER_ID", id.to_string())
                    .env("KH_WRITER_KEY", dir.path().join("k.pub"))
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect(),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    for c in &mut children.0 {
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                assert!(status.success(), "a writer process failed: {status}");
                break;
            }
            // Kids' Drop stops every writer by PID.
            assert!(
                std::time::Instant::now() < deadline,
                "writer processes did not finish within 60 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    let f = KnownHostsFile::load(&path).unwrap();
    assert_eq!(f.lines.len(), 320, "lines lost or torn");
    assert!(f.warnings().is_empty(), "{:?}", f.warnings());
    let files = [f];
    for id in 0..8 {
        for t in 0..4 {
            for i in 0..10 {
                let host = format!("p{id}-t{t}-h{i}");
                let v = check(&files, &host, 22, &key);
                assert!(matches!(v, HostKeyVerdict::Trusted { .. }), "{host}: {v:?}");
            }
        }
    }
}

/// Writer processes, stopped by PID when the test ends however it ends.
struct Kids(Vec<std::process::Child>);

impl Drop for Kids {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
