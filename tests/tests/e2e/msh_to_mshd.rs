//! msh against a real mshd: exec with exit status, 64 MiB through `cat` both ways at once
//! (checksums equal), stderr kept separate, EOF honoured, remote signal → 255 with the
//! message, authentication failure and connection refused → 255 with one line.

use std::process::Command;
use std::time::{Duration, Instant};

use msh_tests::mshd::Mshd;
use msh_tests::*;

use crate::msh_to_sshd::{assert_connection_refused, msh_cmd};

const T: Duration = Duration::from_secs(60);

/// msh to `d` with the fixture's client key and pinned known_hosts, BatchMode.
pub(crate) fn msh(d: &Mshd, args: &[&str]) -> Command {
    let mut c = msh_cmd(&d.dir, d.port, &d.user, &d.known_hosts, &[]);
    c.arg("-i")
        .arg(&d.client_key)
        .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
        .args(args);
    c
}

/// `data`'s SHA-256 by `sha256sum`, through the file DIR/NAME (removed after).
fn sha256(data: &[u8], dir: &TestDir, name: &str) -> String {
    let f = dir.write(name, data, 0o600);
    let sum = sha256sum(&f);
    let _ = std::fs::remove_file(&f);
    sum
}

#[test]
fn exec_exit_status_and_separate_stderr() {
    let d = Mshd::start("msh-mshd-exec");
    let out = run(
        msh(&d, &["127.0.0.1", "echo out; echo err >&2; exit 42"]),
        b"",
        T,
    );
    assert_eq!(
        out.code(),
        Some(42),
        "stderr: {}\nmshd log:\n{}",
        out.stderr,
        d.log_text()
    );
    assert_eq!(out.stdout_str(), "out\n");
    assert_eq!(out.stderr, "err\n");
}

#[test]
fn cat_64mib_both_ways_checksums_match() {
    let d = Mshd::start("msh-mshd-bulk");
    let mut data = vec![0u8; 64 * 1024 * 1024];
    rand::fill(&mut data[..]);
    let want = sha256(&data, &d.dir, "in.bin");
    let start = Instant::now();
    // Upload and download at the same time: needs flow control both ways, no deadlock.
    let out = run(msh(&d, &["127.0.0.1", "cat"]), &data, T);
    let took = start.elapsed();
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout.len(), data.len(), "byte count through cat");
    assert_eq!(sha256(&out.stdout, &d.dir, "out.bin"), want);
    eprintln!("64 MiB through remote cat: {took:?}");

    // Upload alone, checksummed remotely.
    let out = run(msh(&d, &["127.0.0.1", "sha256sum"]), &data, T);
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(
        out.stdout_str().split_whitespace().next(),
        Some(want.as_str())
    );

    // Download alone: the remote reads a file and we compare.
    let f = d.dir.write("down.bin", &data, 0o644);
    let out = run(
        msh(&d, &["127.0.0.1", &format!("cat {}", f.display())]),
        b"",
        T,
    );
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(sha256(&out.stdout, &d.dir, "down-out.bin"), want);
}

#[test]
fn stdin_eof_ends_remote_cat() {
    let d = Mshd::start("msh-mshd-eof");
    let out = run(msh(&d, &["127.0.0.1", "cat; echo done"]), b"hello\n", T);
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_str(), "hello\ndone\n");
    // Empty stdin: EOF at once.
    let out = run(msh(&d, &["127.0.0.1", "wc -c"]), b"", T);
    assert_eq!(out.stdout_str().trim(), "0");
}

#[test]
fn remote_signal_exits_255_with_message() {
    let d = Mshd::start("msh-mshd-signal");
    let out = run(msh(&d, &["127.0.0.1", "kill -TERM $$"]), b"", T);
    assert_eq!(out.code(), Some(255), "stderr: {}", out.stderr);
    assert_eq!(out.stderr, "msh: remote command killed by signal TERM\n");
}

#[test]
fn auth_failure_is_255_with_one_line() {
    let d = Mshd::start("msh-mshd-denied");
    let stranger = ssh_keygen_ed25519(&d.dir, "id_stranger");
    let mut c = msh_cmd(&d.dir, d.port, &d.user, &d.known_hosts, &[]);
    c.arg("-i")
        .arg(&stranger)
        .args(["-o", "BatchMode=yes", "127.0.0.1", "true"]);
    let out = run(c, b"", T);
    assert_eq!(out.code(), Some(255));
    assert_eq!(
        out.stderr,
        format!(
            "msh: {u}@127.0.0.1: permission denied (publickey); tried: {}; to log in, the public \
             half of one of these keys must be in ~/.ssh/authorized_keys of {u} on 127.0.0.1\n",
            stranger.display(),
            u = d.user,
        )
    );
}

#[test]
fn connection_refused_after_mshd_stops_is_255() {
    let d = Mshd::start("msh-mshd-refused");
    let port = d.port;
    let dir = TestDir::new("msh-mshd-refused-client");
    let kh = dir.write("kh", format!("{}\n", d.known_hosts_line()), 0o644);
    drop(d);
    assert_connection_refused(&dir, port, &kh);
}

#[test]
fn accept_new_records_mshd_host_key() {
    let d = Mshd::start("msh-mshd-hostkey");
    let kh = d.dir.join("fresh_kh");
    let mut c = msh_cmd(&d.dir, d.port, &d.user, &kh, &[]);
    c.arg("-i").arg(&d.client_key).args([
        "-o",
        "StrictHostKeyChecking=accept-new",
        "127.0.0.1",
        "echo first",
    ]);
    let out = run(c, b"", T);
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_str(), "first\n");
    let text = std::fs::read_to_string(&kh).unwrap();
    let key: Vec<&str> = d.host_public.split_whitespace().take(2).collect();
    assert_eq!(
        text.split_whitespace().take(3).collect::<Vec<_>>(),
        [format!("[127.0.0.1]:{}", d.port).as_str(), key[0], key[1]],
        "{text}"
    );
}

#[test]
fn refused_pty_is_reported_and_the_command_still_runs() {
    let d = Mshd::builder("msh-mshd-nopty")
        .authorized_keys_options("no-pty")
        .start();
    let out = run(msh(&d, &["-tt", "127.0.0.1", "tty; exit 4"]), b"", T);
    assert_eq!(out.code(), Some(4), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_str(), "not a tty\n");
    out.assert_stderr_contains("PTY allocation request failed");
}

#[test]
fn setenv_reaches_mshd_when_accept_env_allows() {
    let d = Mshd::builder("msh-mshd-env")
        .toml("accept_env = [\"MSHT_*\"]")
        .start();
    let out = run(
        msh(
            &d,
            &[
                "-o",
                "SetEnv=MSHT_X=1 OTHER_Y=2",
                "127.0.0.1",
                "echo \"$MSHT_X/${OTHER_Y:-unset}\"",
            ],
        ),
        b"",
        T,
    );
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_str(), "1/unset\n");
}

#[test]
fn server_alive_interval_detects_a_frozen_server() {
    let d = Mshd::start("msh-mshd-alive");
    let mut c = msh(
        &d,
        &["-o", "ServerAliveInterval=1", "127.0.0.1", "sleep 60"],
    );
    c.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut p = Proc {
        child: c.spawn().unwrap(),
        name: "msh sleep".into(),
        log: None,
    };
    d.wait_for_log("sleep 60", Duration::from_secs(10));
    // Freeze mshd: the TCP connection stays open but nothing answers the keepalives.
    d.proc.signal(nix::sys::signal::Signal::SIGSTOP);
    let st = p.wait_timeout(Duration::from_secs(20));
    d.proc.signal(nix::sys::signal::Signal::SIGCONT);
    let st = st.expect("msh did not notice the frozen server within 20 s");
    assert_eq!(st.code(), Some(255));
    let mut err = String::new();
    std::io::Read::read_to_string(p.child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(
        err,
        format!(
            "msh: 127.0.0.1 port {}: the server stopped answering (no reply to 3 keepalives \
             sent every 1s, ServerAliveInterval)\n",
            d.port
        )
    );
}
