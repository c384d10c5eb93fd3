//! mshd's side of forwarding, driven by OpenSSH's `ssh`: local (-L, -W, -J, -D), remote (-R)
//! and agent (-A) forwarding carrying real bytes to a TCP echo server on loopback, the
//! refusals of every policy (config keys, authorized_keys options) with their reason in the
//! log and the audit log, and root mode making every socket as the user.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use msh_tests::forward::*;
use msh_tests::mshd::{Mshd, MshdBuilder};
use msh_tests::sshd::Sshd;
use msh_tests::users::{require_root, TestUser};
use msh_tests::*;

const T: Duration = Duration::from_secs(30);
const LOG: Duration = Duration::from_secs(10);

/// `ssh -N` with `opts` (forwards) in the background, stopped by PID when dropped.
fn ssh_bg(d: &Mshd, user: &str, opts: &[&str], name: &str) -> Proc {
    let mut all = vec!["-N", "-o", "ExitOnForwardFailure=yes"];
    all.extend_from_slice(opts);
    let c = d.ssh_as(user, &all, "");
    Proc::spawn(name, c, &d.dir.join(format!("{name}.log")))
}

/// Connects to the forward listening on 127.0.0.1 `port` (retrying while it is set up).
fn connect_local(port: u16) -> TcpStream {
    connect_retry(addr(port), None)
}

/// Sends `data` through the forward on 127.0.0.1 `port` to the echo server and asserts that
/// all of it came back unchanged.
fn echo_through(port: u16, data: &[u8], what: &str) {
    assert_echoed(&exchange(connect_local(port), data, what), data, what);
}

/// `ssh -N FLAG PORT:127.0.0.1:ECHO` against `d` (FLAG: -L or -R, PORT free on 127.0.0.1),
/// the 300 KB payload sent through PORT and checked as it comes back; returns the ssh
/// (stopped when dropped) and the first `forward_close` audit event.
fn forward_payload(d: &Mshd, echo: SocketAddr, flag: &str) -> (Proc, serde_json::Value) {
    let port = free_port();
    let spec = format!("{port}:127.0.0.1:{}", echo.port());
    let ssh = ssh_bg(d, &d.user, &[flag, &spec], &format!("ssh{flag}"));
    echo_through(port, &payload(), &format!("ssh {flag}"));
    let mut closes = d.wait_for_audit_named("forward_close", 1, LOG);
    (ssh, closes.swap_remove(0))
}

/// Asserts that a `forward_close` audit event counted the whole payload in each direction.
fn assert_carried_both_ways(c: &serde_json::Value) {
    assert_eq!(c["bytes_to_target"], SIZE as u64, "{c}");
    assert_eq!(c["bytes_to_client"], SIZE as u64, "{c}");
}

#[test]
fn local_forward_carries_300kb_each_way_and_is_audited() {
    let echo = echo_server();
    let d = Mshd::builder("fwd-local").audit_log().start();
    let (_ssh, c) = forward_payload(&d, echo, "-L");
    assert_eq!(c["kind"], "direct-tcpip", "{c}");
    assert_eq!(c["direction"], "local", "{c}");
    assert_eq!(c["to"], format!("127.0.0.1:{}", echo.port()), "{c}");
    assert_carried_both_ways(&c);
    let opens = d.wait_for_audit_named("forward_open", 1, LOG);
    assert_eq!(opens[0]["outcome"], "accepted", "{}", opens[0]);
}

#[test]
fn remote_forward_carries_300kb_each_way_and_port_0_is_allocated() {
    let echo = echo_server();
    let d = Mshd::builder("fwd-remote").audit_log().start();
    let (_ssh, c) = forward_payload(&d, echo, "-R");
    assert_eq!(c["kind"], "forwarded-tcpip", "{c}");
    assert_carried_both_ways(&c);

    // Port 0: mshd picks one and tells the client, which prints it (as with sshd).
    let spec = format!("0:127.0.0.1:{}", echo.port());
    let ssh0 = ssh_bg(&d, &d.user, &["-R", &spec], "ssh-R0");
    let port = allocated_port(&ssh0, &format!("127.0.0.1:{}", echo.port()));
    echo_through(port, b"hello", "ssh -R 0");
    // The listener goes with the connection.
    drop(ssh0);
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            start.elapsed() < LOG,
            "port {port} still listening after the client left"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn dynamic_forward_socks5_carries_300kb_each_way() {
    let echo = echo_server();
    let d = Mshd::start("fwd-dynamic");
    let dport = free_port();
    let _ssh = ssh_bg(&d, &d.user, &["-D", &dport.to_string()], "ssh-D");
    let data = payload();
    let s = socks_connect(addr(dport), "5", echo.port(), None);
    assert_echoed(&exchange(s, &data, "ssh -D"), &data, "ssh -D");
    d.wait_for_log("direct-tcpip from", LOG);
}

#[test]
fn stdio_forward_w_carries_300kb() {
    let echo = echo_server();
    let d = Mshd::start("fwd-w");
    let data = payload();
    let target = format!("127.0.0.1:{}", echo.port());
    let out = run(d.ssh(&["-W", &target], ""), &data, T);
    d.assert_ok(&out);
    assert_echoed(&out.stdout, &data, "ssh -W");
}

/// An ssh_config for `-J`: every host with `key`, `known_hosts`, strict checking.
fn jump_config(dir: &Path, key: &Path, known_hosts: &Path, bastion: &Mshd) -> std::path::PathBuf {
    let text = format!(
        "Host bastion\n  HostName 127.0.0.1\n  Port {}\n  User {}\nHost *\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  BatchMode yes\n",
        bastion.port,
        bastion.user,
        key.display(),
        known_hosts.display()
    );
    let p = dir.join("jump_config");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn ssh_jump_through_mshd_to_mshd_and_to_sshd() {
    let bastion = Mshd::start("fwd-bastion");
    let target = Mshd::start("fwd-target");
    // The bastion's client key opens the target too.
    let mut ak = std::fs::OpenOptions::new()
        .append(true)
        .open(&target.authorized_keys)
        .unwrap();
    writeln!(ak, "{}", bastion.client_public).unwrap();
    let sshd = Sshd::start(&bastion.dir);
    sshd.authorize(&bastion.client_key);
    let kh = bastion.dir.join("jump_known_hosts");
    std::fs::write(
        &kh,
        format!(
            "{}\n{}\n{}",
            bastion.known_hosts_line(),
            target.known_hosts_line(),
            sshd.known_hosts_lines()
        ),
    )
    .unwrap();
    let cfg = jump_config(&bastion.dir.path, &bastion.client_key, &kh, &bastion);
    for (port, user, what) in [
        (target.port, target.user.clone(), "mshd"),
        (sshd.port, sshd.user.clone(), "sshd"),
    ] {
        let mut c = cmd(tool("ssh"), ["-F"]);
        c.arg(&cfg)
            .args(["-J", "bastion", "-p", &port.to_string(), "-l", &user])
            .args(["127.0.0.1", "echo via-jump"])
            .env_remove("SSH_AUTH_SOCK");
        let out = run(c, b"", T);
        assert_eq!(
            (out.code(), out.stdout_str()),
            (Some(0), "via-jump\n".to_string()),
            "to {what}: stderr {}\nbastion log:\n{}",
            out.stderr,
            bastion.log_text()
        );
    }
    bastion.wait_for_log_count("direct-tcpip from", 2, LOG);
}

#[test]
fn a_stalled_tunnel_does_not_stall_the_others() {
    // A target that accepts and never reads.
    let stall = TcpListener::bind("127.0.0.1:0").unwrap();
    let stall_port = stall.local_addr().unwrap().port();
    let held = std::thread::spawn(move || stall.accept().map(|(s, _)| s));
    let echo = echo_server();
    let d = Mshd::start("fwd-stall");
    let (a, b) = (free_port(), free_port());
    let spec_a = format!("{a}:127.0.0.1:{stall_port}");
    let spec_b = format!("{b}:127.0.0.1:{}", echo.port());
    let _ssh = ssh_bg(&d, &d.user, &["-L", &spec_a, "-L", &spec_b], "ssh-stall");
    let stalled = connect_local(a);
    let mut w = stalled.try_clone().unwrap();
    // 64 MiB: far more than the window and every socket buffer on the way hold.
    let flood = std::thread::spawn(move || {
        let chunk = vec![7u8; 1 << 20];
        let mut sent = 0usize;
        for _ in 0..64 {
            match w.write_all(&chunk) {
                Ok(()) => sent += chunk.len(),
                Err(_) => break,
            }
        }
        sent
    });
    let _target = held.join().unwrap().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // The other tunnel on the same connection still carries 300 KB each way.
    let data = payload();
    echo_through(b, &data, "the tunnel beside a stalled one");
    // And mshd still serves new connections.
    let out = run(d.ssh(&[], "echo alive"), b"", T);
    assert_eq!(out.stdout_str(), "alive\n");
    stalled.shutdown(Shutdown::Both).unwrap();
    let sent = flood.join().unwrap();
    assert!(
        sent < 64 << 20,
        "the stalled target took everything ({sent} bytes)"
    );
}

#[test]
fn tunnels_end_with_the_connection() {
    // A target that keeps its side open: only mshd closing the tunnel ends it.
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let tport = target.local_addr().unwrap().port();
    let d = Mshd::builder("fwd-conn-end").audit_log().start();
    let lport = free_port();
    let spec = format!("{lport}:127.0.0.1:{tport}");
    let ssh = ssh_bg(&d, &d.user, &["-L", &spec], "ssh-L-end");
    let mut client = connect_local(lport);
    client.write_all(b"hi").unwrap();
    let (mut t, _) = target.accept().unwrap();
    t.set_read_timeout(Some(T)).unwrap();
    let mut two = [0u8; 2];
    t.read_exact(&mut two).unwrap();
    // The client disappears without a word (no EOF, no close on the channel).
    ssh.signal(nix::sys::signal::Signal::SIGKILL);
    let mut rest = Vec::new();
    let n = t
        .read_to_end(&mut rest)
        .expect("mshd closed the target connection");
    assert_eq!(n, 0);
    let closes = d.wait_for_audit_named("forward_close", 1, LOG);
    assert_eq!(closes[0]["reason"], "connection closed", "{}", closes[0]);
    assert_eq!(closes[0]["bytes_to_target"], 2, "{}", closes[0]);
}

/// `ssh -W` to the echo server must fail as refused, and mshd's log and audit say `why`.
fn assert_local_refused(d: &Mshd, echo: SocketAddr, why: &str) {
    let target = format!("127.0.0.1:{}", echo.port());
    let out = run(d.ssh(&["-W", &target], ""), b"x", T);
    assert_ne!(out.code(), Some(0), "ssh -W went through");
    assert!(
        out.stderr.contains("administratively prohibited"),
        "ssh's stderr: {}",
        out.stderr
    );
    let log = d.wait_for_log("direct-tcpip", LOG);
    assert!(log.contains(why), "{why:?} not in the log:\n{log}");
    assert_open_rejected(d, "direct-tcpip", why);
}

/// Waits for the audit log's `forward_open` of `kind` and asserts it was rejected for `why`
/// (the same mshd may have audited another kind already).
fn assert_open_rejected(d: &Mshd, kind: &str, why: &str) {
    let e = d.wait_for_audit_where(
        &format!("forward_open of kind {kind}"),
        |e| e["event"] == "forward_open" && e["kind"] == kind,
        LOG,
    );
    assert_eq!(e["outcome"], "rejected", "{e}");
    assert!(e["reason"].as_str().unwrap().contains(why), "{e}");
}

/// `ssh -R` (ExitOnForwardFailure) must fail, and mshd's log says `why`.
fn assert_remote_refused(d: &Mshd, user: &str, port: u16, why: &str) {
    let spec = format!("{port}:127.0.0.1:9");
    let c = d.ssh_as(
        user,
        &["-N", "-o", "ExitOnForwardFailure=yes", "-R", &spec],
        "",
    );
    let out = run(c, b"", T);
    assert_eq!(out.code(), Some(255), "ssh -R: {}", out.stderr);
    assert!(
        out.stderr.contains("remote port forwarding failed"),
        "ssh's stderr: {}",
        out.stderr
    );
    let log = d.wait_for_log("tcpip-forward", LOG);
    assert!(log.contains(why), "{why:?} not in the log:\n{log}");
    if d.audit_path().exists() {
        assert_open_rejected(d, "tcpip-forward", why);
    }
}

fn refusing(name: &str, f: impl FnOnce(MshdBuilder) -> MshdBuilder) -> Mshd {
    f(Mshd::builder(name).audit_log()).start()
}

#[test]
fn no_port_forwarding_and_restrict_refuse_local_and_remote() {
    let echo = echo_server();
    for opts in ["no-port-forwarding", "restrict", "port-forwarding,restrict"] {
        let d = refusing("fwd-no-pf", |b| b.authorized_keys_options(opts));
        assert_local_refused(&d, echo, "port forwarding is not permitted for this login");
        assert_remote_refused(
            &d,
            &d.user,
            free_port(),
            "port forwarding is not permitted for this login",
        );
    }
    // restrict,port-forwarding turns it back on.
    let d = refusing("fwd-restrict-pf", |b| {
        b.authorized_keys_options("restrict,port-forwarding")
    });
    let out = run(
        d.ssh(&["-W", &format!("127.0.0.1:{}", echo.port())], ""),
        b"ok",
        T,
    );
    d.assert_ok(&out);
    assert_eq!(out.stdout, b"ok");
}

#[test]
fn allow_tcp_forwarding_no_local_remote() {
    let echo = echo_server();
    let d = refusing("fwd-atf-no", |b| b.toml("allow_tcp_forwarding = \"no\""));
    assert_local_refused(&d, echo, "allow_tcp_forwarding = \"no\"");
    assert_remote_refused(&d, &d.user, free_port(), "allow_tcp_forwarding = \"no\"");

    let d = refusing("fwd-atf-local", |b| {
        b.toml("allow_tcp_forwarding = \"local\"")
    });
    assert_remote_refused(&d, &d.user, free_port(), "refuses remote forwards");
    let out = run(
        d.ssh(&["-W", &format!("127.0.0.1:{}", echo.port())], ""),
        b"ok",
        T,
    );
    d.assert_ok(&out);

    let d = refusing("fwd-atf-remote", |b| {
        b.toml("allow_tcp_forwarding = \"remote\"")
    });
    assert_local_refused(&d, echo, "refuses local forwards");
}

#[test]
fn permit_open_and_permitopen_refuse_other_targets() {
    let echo = echo_server();
    let d = refusing("fwd-permit-open", |b| {
        b.toml("permit_open = [\"127.0.0.1:1\"]")
    });
    assert_local_refused(&d, echo, "is not in permit_open");
    let d = refusing("fwd-permitopen", |b| {
        b.authorized_keys_options("permitopen=\"localhost:1\"")
    });
    assert_local_refused(&d, echo, "is not in the key's permitopen=");
    // The matching entry lets it through.
    let allowed = format!("permitopen=\"127.0.0.1:{}\"", echo.port());
    let d = refusing("fwd-permitopen-ok", |b| b.authorized_keys_options(&allowed));
    let out = run(
        d.ssh(&["-W", &format!("127.0.0.1:{}", echo.port())], ""),
        b"ok",
        T,
    );
    d.assert_ok(&out);
    assert_eq!(out.stdout, b"ok");
}

/// ssh to `d` with the test agent (`sock`) and `opts`, running `ssh-add -l` and printing
/// `SSH_AUTH_SOCK`; returns (exit code, stdout).
fn ssh_add_l(d: &Mshd, sock: &Path, opts: &[&str]) -> (Option<i32>, String) {
    let mut c = d.ssh(opts, "ssh-add -l; echo rc=$?; echo sock=$SSH_AUTH_SOCK");
    c.env("SSH_AUTH_SOCK", sock);
    let out = run(c, b"", T);
    (out.code(), out.stdout_str())
}

#[test]
fn agent_forwarding_lists_the_key_only_with_a_and_when_allowed() {
    let dir = TestDir::new("fwd-agent");
    let (_agent, sock) = start_ssh_agent(&dir.path);
    let key = ssh_keygen_key(&dir.path, "agentkey", "ed25519");
    let mut add = cmd(tool("ssh-add"), Vec::<&str>::new());
    add.arg(&key).env("SSH_AUTH_SOCK", &sock);
    assert!(run(add, b"", T).status.success());
    let fp = msh_tests::mshd::fingerprint_of(&dir.join("agentkey.pub"));

    let d = Mshd::builder("fwd-agent-ok").audit_log().start();
    let (code, text) = ssh_add_l(&d, &sock, &["-A"]);
    assert_eq!(code, Some(0), "{text}\n{}", d.log_text());
    assert!(text.contains(&fp) && text.contains("rc=0"), "{text}");
    let path = text
        .lines()
        .find_map(|l| l.strip_prefix("sock="))
        .unwrap()
        .to_string();
    let agent_dir = Path::new(&path).parent().unwrap().to_path_buf();
    assert!(
        agent_dir.to_string_lossy().starts_with("/tmp/msh-"),
        "{path}"
    );
    // Gone once the connection is over.
    let start = Instant::now();
    while agent_dir.exists() {
        assert!(
            start.elapsed() < LOG,
            "{} still there after the session",
            agent_dir.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    d.wait_for_audit_named("forward_close", 1, LOG);

    // Without -A there is no agent on the far side.
    let (_, text) = ssh_add_l(&d, &sock, &[]);
    assert!(
        !text.contains(&fp) && text.contains("rc=2") && text.contains("sock=\n"),
        "{text}"
    );

    for (name, b) in [
        (
            "no-agent-forwarding",
            Mshd::builder("fwd-agent-key").authorized_keys_options("no-agent-forwarding"),
        ),
        (
            "allow_agent_forwarding = false",
            Mshd::builder("fwd-agent-cfg").toml("allow_agent_forwarding = false"),
        ),
    ] {
        let d = b.start();
        let (_, text) = ssh_add_l(&d, &sock, &["-A"]);
        assert!(
            !text.contains(&fp) && text.contains("rc=2"),
            "{name}: {text}"
        );
        let log = d.wait_for_log("auth-agent", LOG);
        assert!(log.contains(name), "{name} not in the log:\n{log}");
    }
}

/// The owner uid of the established TCP socket whose remote end is 127.0.0.1:`port`
/// (mshd's outgoing connection of a local forward).
fn outgoing_uid(port: u16) -> Option<u32> {
    tcp_socket_uid(2, port, "01")
}

/// The owner uid of the TCP socket listening on 127.0.0.1:`port`.
fn listener_uid(port: u16) -> Option<u32> {
    tcp_socket_uid(1, port, "0A")
}

/// The owner uid of the first socket in /proc/net/tcp whose field `field` (1: local
/// address, 2: remote) is 127.0.0.1:`port` and whose state is `state` (01: established,
/// 0A: listening). Fields: sl local rem st ... uid (7).
fn tcp_socket_uid(field: usize, port: u16, state: &str) -> Option<u32> {
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let addr = format!("0100007F:{port:04X}");
    text.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(field) == Some(&addr.as_str()) && f.get(3) == Some(&state))
            .then(|| f.get(7).and_then(|u| u.parse().ok()))
            .flatten()
    })
}

#[test]
fn root_mode_forwards_are_made_as_the_user() {
    if !require_root("root_mode_forwards_are_made_as_the_user") {
        return;
    }
    let u = TestUser::new();
    let echo = echo_server();
    let d = Mshd::builder("fwd-root")
        .use_config_authorized_keys()
        .toml("authorized_keys_files = [\"%h/.ssh/authorized_keys\"]")
        .start();
    u.write_authorized_keys(&format!("{}\n", d.client_public));

    // The outgoing connection of -L is the user's.
    let lport = free_port();
    let spec = format!("{lport}:127.0.0.1:{}", echo.port());
    let ssh_l = ssh_bg(&d, &u.name, &["-L", &spec], "ssh-L-user");
    let mut s = connect_local(lport);
    s.set_read_timeout(Some(T)).unwrap();
    s.write_all(b"ping").unwrap();
    let mut four = [0u8; 4];
    s.read_exact(&mut four).unwrap();
    assert_eq!(&four, b"ping");
    assert_eq!(
        outgoing_uid(echo.port()),
        Some(u.uid),
        "uid of the -L connection"
    );
    drop(s);
    drop(ssh_l);

    // The agent socket and its directory are the user's, the directory private.
    let adir = TestDir::new("fwd-root-agent");
    let (_agent, asock) = start_ssh_agent(&adir.path);
    let key = ssh_keygen_key(&adir.path, "agentkey", "ed25519");
    let mut add = cmd(tool("ssh-add"), Vec::<&str>::new());
    add.arg(&key).env("SSH_AUTH_SOCK", &asock);
    assert!(run(add, b"", T).status.success());
    let mut c = d.ssh_as(
        &u.name,
        &["-A"],
        "stat -c '%U %a' \"$(dirname \"$SSH_AUTH_SOCK\")\" \"$SSH_AUTH_SOCK\"; ssh-add -l",
    );
    c.env("SSH_AUTH_SOCK", &asock);
    let out = run(c, b"", T);
    d.assert_ok(&out);
    let text = out.stdout_str();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], format!("{} 700", u.name), "{text}");
    assert!(lines[1].starts_with(&format!("{} ", u.name)), "{text}");
    assert!(text.contains("agentkey"), "{text}");

    // A privileged port is refused to the user (root could bind it).
    assert_remote_refused(&d, &u.name, 80, "port 80 is privileged");

    // The listening socket of -R is the user's.
    let rport = free_port();
    let spec = format!("{rport}:127.0.0.1:{}", echo.port());
    let _ssh = ssh_bg(&d, &u.name, &["-R", &spec], "ssh-R-user");
    echo_through(rport, b"as-user", "-R as the user");
    assert_eq!(listener_uid(rport), Some(u.uid), "uid of the -R listener");

    // A Unix socket only root may reach (0600 in a 0700 root directory) stays out of reach.
    let dir = TestDir::new("fwd-root-sock");
    let private = dir.join("private");
    std::fs::create_dir(&private).unwrap();
    msh_tests::mshd::set_mode(&private, 0o700);
    let sock = private.join("root.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    msh_tests::mshd::set_mode(&sock, 0o600);
    let lport = free_port();
    let spec = format!("{lport}:{}", sock.display());
    let _ssh_l = ssh_bg(&d, &u.name, &["-L", &spec], "ssh-L-sock");
    let mut s = connect_local(lport);
    s.set_read_timeout(Some(T)).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(buf.is_empty());
    let log = d.wait_for_log("direct-streamlocal to", LOG);
    assert!(log.contains("Permission denied"), "{log}");
}

#[test]
fn a_certificate_forwards_only_what_its_extensions_permit() {
    let echo = echo_server();
    let dir = TestDir::new("fwd-cert");
    let ca = ssh_keygen_ed25519(&dir, "user_ca");
    let d = Mshd::builder("fwd-cert")
        .dir(dir)
        .authorized_keys_contents("")
        .trusted_user_ca(&ca)
        .start();
    let key_pub = d.dir.join("id_ed25519.pub");
    let target = format!("127.0.0.1:{}", echo.port());
    // Only permit-pty: no port or agent forwarding, as OpenSSH.
    ssh_keygen_sign(
        &ca,
        &key_pub,
        "no-fwd",
        &d.user,
        &["-O", "clear", "-O", "permit-pty"],
    );
    let out = run(d.ssh(&["-W", &target], ""), b"x", T);
    assert_ne!(out.code(), Some(0), "ssh -W went through: {}", out.stderr);
    let log = d.wait_for_log("direct-tcpip", LOG);
    assert!(
        log.contains("a certificate without permit-port-forwarding"),
        "{log}"
    );
    // ssh asks for agent forwarding only when it has an agent.
    let (_agent, sock) = start_ssh_agent(&d.dir.path);
    let mut c = d.ssh(&["-A"], "echo sock=$SSH_AUTH_SOCK");
    c.env("SSH_AUTH_SOCK", &sock);
    let out = run(c, b"", T);
    d.assert_ok(&out);
    assert_eq!(out.stdout_str(), "sock=\n");
    d.wait_for_log("a certificate without permit-agent-forwarding", LOG);
    // ssh-keygen's default extensions include both.
    std::fs::remove_file(d.dir.join("id_ed25519-cert.pub")).unwrap();
    ssh_keygen_sign(&ca, &key_pub, "fwd", &d.user, &[]);
    let out = run(d.ssh(&["-W", &target], ""), b"ok", T);
    d.assert_ok(&out);
    assert_eq!(out.stdout, b"ok");
}

#[test]
fn x11_is_refused_with_an_answer_and_the_session_goes_on() {
    let d = Mshd::start("fwd-x11");
    let mut c = d.ssh(&["-o", "ForwardX11=yes"], "echo ok");
    c.env("DISPLAY", "127.0.0.1:99");
    let out = run(c, b"", T);
    d.assert_ok(&out);
    assert_eq!(out.stdout_str(), "ok\n");
    assert!(
        out.stderr.contains("X11 forwarding request failed"),
        "ssh's stderr: {}",
        out.stderr
    );
    d.wait_for_log("mshd does not implement X11 forwarding", LOG);
}
