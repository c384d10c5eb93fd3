//! Issue 12, "Operations": socket activation. systemd's own `systemd-socket-activate` binds
//! the port and execs mshd at the first connection with the socket as descriptor 3
//! (LISTEN_FDS=1, LISTEN_PID = mshd): mshd serves it instead of its `listen` address, to
//! OpenSSH's ssh (the connection that woke it) and msh; sessions inherit neither the socket
//! nor the variables. LISTEN_PID naming another process is ignored (mshd binds `listen`).
//! dist/mshd.socket passes `systemd-analyze verify` with dist/mshd.service.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use msh_tests::mshd::{current_user, fingerprint_of, Mshd};
use msh_tests::{bin, cmd, free_port, run, ssh_keygen_ed25519, tool, Proc, TestDir};

use crate::msh_to_sshd::msh_cmd;

const T: Duration = Duration::from_secs(30);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The fixture's files for an mshd on `port` (host key, authorized client key, known_hosts,
/// empty config), and `systemd-socket-activate -l 127.0.0.1:ACTIVATION [env ...] mshd ...
/// --listen 127.0.0.1:LISTEN` started on them, waiting for its first connection. The
/// returned [`Mshd`] names `port` (the activation port, or `listen` to talk to mshd's own).
fn activated(name: &str, activation: u16, listen: u16, env: &[&str], port: u16) -> Mshd {
    let dir = TestDir::new(name);
    let host_key = ssh_keygen_ed25519(&dir, "host_ed25519");
    let host_public = dir.read("host_ed25519.pub").trim().to_string();
    let client_key = ssh_keygen_ed25519(&dir, "id_ed25519");
    let client_public = dir.read("id_ed25519.pub").trim().to_string();
    let authorized_keys = dir.write("authorized_keys", format!("{client_public}\n"), 0o600);
    let known_hosts = dir.write(
        "known_hosts",
        format!("[127.0.0.1]:{port} {host_public}\n"),
        0o644,
    );
    let config = dir.write("mshd.toml", "", 0o644);
    let log = dir.join("mshd.log");
    let mut c = cmd(
        tool("systemd-socket-activate"),
        ["-l", &format!("127.0.0.1:{activation}")],
    );
    if !env.is_empty() {
        c.arg("env").args(env);
    }
    c.arg(bin("mshd"))
        .arg("--config")
        .arg(&config)
        .args(["--listen", &format!("127.0.0.1:{listen}")])
        .arg("--host-key")
        .arg(&host_key)
        .arg("--authorized-keys")
        .arg(&authorized_keys)
        .arg("-vv")
        .env_remove("RUST_LOG");
    let proc = Proc::spawn(name, c, &log);
    proc.wait_for_log(&format!("Listening on 127.0.0.1:{activation} as 3."), T);
    let host_fingerprint = fingerprint_of(&dir.join("host_ed25519.pub"));
    Mshd {
        port,
        addr: format!("127.0.0.1:{port}").parse().unwrap(),
        host_key,
        host_public,
        host_fingerprint,
        client_key,
        client_public,
        authorized_keys,
        known_hosts,
        config,
        log,
        user: current_user(),
        proc,
        dir,
    }
}

fn msh(d: &Mshd, command: &str) -> std::process::Command {
    let mut c = msh_cmd(&d.dir, d.port, &d.user, &d.known_hosts, &[]);
    c.arg("-i")
        .arg(&d.client_key)
        .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
        .args(["127.0.0.1", command]);
    c
}

/// What a session sees of its descriptors and environment.
const PROBE: &str = "for f in /proc/$$/fd/*; do readlink $f; done; env | grep ^LISTEN_ || true";

#[test]
fn socket_activated_mshd_serves_systemds_socket_to_ssh_and_msh() {
    let (activation, listen) = (free_port(), free_port());
    let d = activated("sa-serve", activation, listen, &[], activation);
    // The first connection makes systemd-socket-activate exec mshd; mshd answers it on the
    // socket it inherited.
    let out = run(d.ssh(&[], PROBE), b"", T);
    assert_eq!(out.code(), Some(0), "ssh: {}\n{}", out.stderr, d.log_text());
    let log = d.log_text();
    assert!(
        log.contains(&format!(
            "listening on 127.0.0.1:{activation} (socket activation: a socket from systemd; `listen` is not used)"
        )),
        "{log}"
    );
    assert!(
        !log.contains(&format!("listening on 127.0.0.1:{listen}")),
        "{log}"
    );
    let socket = std::fs::read_link(format!("/proc/{}/fd/3", d.proc.pid()))
        .unwrap()
        .display()
        .to_string();
    assert!(socket.starts_with("socket:["), "{socket}");
    // The session has neither the listening socket nor the variables.
    let seen = out.stdout_str();
    assert!(
        !seen.contains(&socket),
        "the session inherited {socket}:\n{seen}"
    );
    assert!(!seen.contains("LISTEN_"), "{seen}");
    let out = run(msh(&d, PROBE), b"", T);
    assert_eq!(out.code(), Some(0), "msh: {}", out.stderr);
    assert!(!out.stdout_str().contains(&socket), "{}", out.stdout_str());
    // `listen` was not bound.
    let addr: SocketAddr = format!("127.0.0.1:{listen}").parse().unwrap();
    assert!(
        TcpStream::connect_timeout(&addr, T).is_err(),
        "mshd also bound {addr}"
    );
}

#[test]
fn listen_pid_of_another_process_is_ignored() {
    let (activation, listen) = (free_port(), free_port());
    let d = activated(
        "sa-wrong-pid",
        activation,
        listen,
        &["LISTEN_PID=1"],
        listen,
    );
    // Wake it: systemd-socket-activate execs env, which execs mshd with LISTEN_PID=1.
    let _waker =
        TcpStream::connect_timeout(&format!("127.0.0.1:{activation}").parse().unwrap(), T).unwrap();
    let log = d
        .proc
        .wait_for_log(&format!("listening on 127.0.0.1:{listen}"), T);
    assert!(!log.contains("socket activation"), "{log}");
    let out = run(d.ssh(&[], "echo hi"), b"", T);
    assert_eq!(out.code(), Some(0), "ssh: {}", out.stderr);
    assert_eq!(out.stdout_str(), "hi\n");
    let out = run(msh(&d, "echo hi"), b"", T);
    assert_eq!(out.code(), Some(0), "msh: {}", out.stderr);
    assert_eq!(out.stdout_str(), "hi\n");
}

#[test]
fn systemd_analyze_verifies_the_socket_unit_with_the_service() {
    let dir = TestDir::new("sa-unit");
    let service = std::fs::read_to_string(workspace().join("dist/mshd.service")).unwrap();
    dir.write(
        "mshd.service",
        service.replace("/usr/local/bin/mshd", &bin("mshd").display().to_string()),
        0o644,
    );
    let socket = dir.write(
        "mshd.socket",
        std::fs::read_to_string(workspace().join("dist/mshd.socket")).unwrap(),
        0o644,
    );
    let mut c = cmd("/usr/bin/systemd-analyze", ["verify", "--man=no"]);
    c.arg(&socket);
    let out = run(c, b"", T);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stderr.trim(), "", "systemd-analyze verify warned");
    let text = std::fs::read_to_string(&socket).unwrap();
    // The port mshd listens on by default as root, one mshd for every connection.
    for line in [
        "ListenStream=0.0.0.0:22",
        "Accept=no",
        "WantedBy=sockets.target",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no {line:?} in mshd.socket"
        );
    }
}
