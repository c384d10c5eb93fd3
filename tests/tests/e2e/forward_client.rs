//! msh's port and agent forwarding (`-L`, `-R`, `-D`, `-N`, `-A`, ExitOnForwardFailure)
//! against a real OpenSSH sshd, with a TCP echo server run by the test on 127.0.0.1: every
//! tunnel carries 300 KB each way and the bytes are compared. msh runs with `-N` in the
//! background and is stopped by its PID.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use msh_tests::forward::*;
use msh_tests::sshd::SshdOptions;
use msh_tests::*;
use nix::sys::signal::Signal;

use crate::msh_to_sshd::{remote_stderr, setup, Setup, T};

/// `msh -N ARGS 127.0.0.1` in the background, its stderr in DIR/NAME.log.
fn msh_background(s: &Setup, name: &str, args: &[&str]) -> Proc {
    let mut c = s.msh(&["-N"]);
    c.args(args).arg("127.0.0.1");
    Proc::spawn(name, c, &s.dir.join(format!("{name}.log")))
}

/// Stops msh by PID with SIGTERM and checks it exits 0, as ssh -N does (see
/// `dash_n_stopped_by_a_signal_is_silent_as_ssh`).
fn stop(mut p: Proc) {
    p.signal(Signal::SIGTERM);
    let st = p
        .wait_timeout(T)
        .unwrap_or_else(|| panic!("msh did not stop on SIGTERM; log:\n{}", p.log_text()));
    assert_eq!(st.code(), Some(0), "log:\n{}", p.log_text());
}

#[test]
fn local_forward_carries_300k_each_way_and_stops_on_sigterm() {
    let s = setup("fwd-local");
    let echo = echo_server();
    let lp = free_port();
    let spec = format!("127.0.0.1:{lp}:127.0.0.1:{}", echo.port());
    let mut p = msh_background(&s, "msh-L", &["-L", &spec]);
    let c = connect_retry(addr(lp), Some(&mut p));
    roundtrip(c, "-L");
    // A second connection through the same listener.
    roundtrip(
        TcpStream::connect(addr(lp)).unwrap(),
        "-L, second connection",
    );
    // sshd saw a direct-tcpip open to the echo server.
    assert!(
        s.sshd
            .log()
            .contains(&format!("127.0.0.1 port {}", echo.port())),
        "sshd log:\n{}",
        s.sshd.log()
    );
    stop(p);
}

#[test]
fn local_forward_from_and_to_unix_sockets() {
    let s = setup("fwd-local-unix");
    let echo = echo_server();
    // A Unix socket listener locally, forwarded to the TCP echo server.
    let sock = s.dir.join("l.sock");
    let spec = format!("{}:127.0.0.1:{}", sock.display(), echo.port());
    let mut p = msh_background(&s, "msh-L-unix", &["-L", &spec]);
    let start = Instant::now();
    while !sock.exists() {
        assert!(start.elapsed() < T, "no socket; log:\n{}", p.log_text());
        assert!(
            p.wait_timeout(Duration::from_millis(20)).is_none(),
            "{}",
            p.log_text()
        );
    }
    let mode = std::fs::metadata(&sock).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600,
        "the listening socket is private"
    );
    let mut u = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    u.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    u.write_all(b"through a unix socket").unwrap();
    u.shutdown(Shutdown::Write).unwrap();
    let mut back = String::new();
    u.read_to_string(&mut back).unwrap();
    assert_eq!(back, "through a unix socket");
    stop(p);
}

#[test]
fn remote_forward_with_allocated_port_carries_300k_each_way() {
    let s = setup("fwd-remote");
    let echo = echo_server();
    let spec = format!("0:127.0.0.1:{}", echo.port());
    let mut p = msh_background(&s, "msh-R", &["-R", &spec]);
    // As ssh: "Allocated port N for remote forward to HOST:PORT" on stderr.
    let port = allocated_port(&p, &format!("127.0.0.1:{}", echo.port()));
    // sshd listens on the allocated port; connections come back through msh.
    let c = connect_retry(addr(port), Some(&mut p));
    roundtrip(c, "-R");
    stop(p);
}

#[test]
fn remote_forward_with_fixed_port_carries_300k_each_way() {
    let s = setup("fwd-remote-fixed");
    let echo = echo_server();
    let rp = free_port();
    let spec = format!("127.0.0.1:{rp}:127.0.0.1:{}", echo.port());
    let mut p = msh_background(&s, "msh-R-fixed", &["-R", &spec]);
    let c = connect_retry(addr(rp), Some(&mut p));
    roundtrip(c, "-R fixed port");
    stop(p);
}

#[test]
fn dynamic_forward_socks4_4a_5_carry_300k_each_way() {
    let s = setup("fwd-dynamic");
    let echo = echo_server();
    let dp = free_port();
    let spec = format!("127.0.0.1:{dp}");
    let mut p = msh_background(&s, "msh-D", &["-D", &spec]);
    for v in ["5", "5-name", "4", "4a"] {
        let c = socks_connect(addr(dp), v, echo.port(), Some(&mut p));
        roundtrip(c, &format!("-D SOCKS{v}"));
    }
    // An independent SOCKS client: curl through the proxy to a file served by python.
    let www = s.dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    let mut page = vec![0u8; SIZE];
    rand::fill(&mut page[..]);
    std::fs::write(www.join("blob"), &page).unwrap();
    let hp = free_port();
    let mut http = Command::new("python3");
    http.args(["-m", "http.server", "--bind", "127.0.0.1", &hp.to_string()])
        .current_dir(&www);
    let mut http = Proc::spawn("http.server", http, &s.dir.join("http.log"));
    connect_retry(addr(hp), Some(&mut http));
    for flag in ["--socks5-hostname", "--socks4"] {
        let out = run(
            cmd(
                "curl",
                [
                    "-sS",
                    "--max-time",
                    "30",
                    flag,
                    &format!("127.0.0.1:{dp}"),
                    &format!("http://localhost:{hp}/blob").replace(
                        "localhost",
                        if flag == "--socks4" {
                            "127.0.0.1"
                        } else {
                            "localhost"
                        },
                    ),
                ],
            ),
            b"",
            T,
        );
        assert_eq!(out.code(), Some(0), "curl {flag}: {}", out.stderr);
        assert!(out.stdout == page, "curl {flag}: the file arrived altered");
    }
    stop(p);
}

#[test]
fn dynamic_remote_forward_serves_socks_from_the_client_side() {
    let s = setup("fwd-remote-socks");
    let echo = echo_server();
    let rp = free_port();
    let spec = format!("127.0.0.1:{rp}");
    let mut p = msh_background(&s, "msh-R-socks", &["-R", &spec]);
    // The server's port speaks SOCKS; msh connects to the destination named.
    let c = socks_connect(addr(rp), "5", echo.port(), Some(&mut p));
    roundtrip(c, "-R SOCKS5");
    stop(p);
}

/// A server that sends without end to whoever connects, and never reads.
fn firehose() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { return };
            std::thread::spawn(move || {
                let _ = c.set_write_timeout(Some(Duration::from_secs(120)));
                let chunk = vec![0x5a_u8; 64 * 1024];
                while c.write_all(&chunk).is_ok() {}
            });
        }
    });
    a
}

// Regression guard for the data path: a tunnel whose local reader stops must hold back
// only its own channel (bounded by its window), not the connection.
#[test]
fn a_stalled_tunnel_does_not_stall_the_others() {
    let s = setup("fwd-stall");
    let echo = echo_server();
    let hose = firehose();
    let (lp1, lp2) = (free_port(), free_port());
    let spec1 = format!("127.0.0.1:{lp1}:127.0.0.1:{}", hose.port());
    let spec2 = format!("127.0.0.1:{lp2}:127.0.0.1:{}", echo.port());
    let mut p = msh_background(&s, "msh-stall", &["-L", &spec1, "-L", &spec2]);
    // Connect to the firehose and never read: msh's write to us blocks for good.
    let stalled = connect_retry(addr(lp1), Some(&mut p));
    std::thread::sleep(Duration::from_secs(2));
    roundtrip(
        connect_retry(addr(lp2), Some(&mut p)),
        "-L next to a stalled tunnel",
    );
    drop(stalled);
    roundtrip(
        connect_retry(addr(lp2), Some(&mut p)),
        "-L after the stalled tunnel closed",
    );
    stop(p);
}

#[test]
fn exit_on_forward_failure_names_the_spec() {
    let s = setup("fwd-eoff");
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let spec = format!("127.0.0.1:{port}:127.0.0.1:9");
    let out = run(
        s.msh(&[
            "-o",
            "ExitOnForwardFailure=yes",
            "-L",
            &spec,
            "127.0.0.1",
            "echo ran",
        ]),
        b"",
        T,
    );
    assert_eq!(out.code(), Some(255), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_str(), "", "the command must not run");
    let err = remote_stderr(&out.stderr);
    assert!(
        err.contains(&format!("-L {spec}")) && err.contains("Address already in use"),
        "{err}"
    );
    // Without ExitOnForwardFailure: a warning naming the spec, and the command runs.
    let out = run(s.msh(&["-L", &spec, "127.0.0.1", "echo ran"]), b"", T);
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_str(), "ran\n");
    assert!(
        remote_stderr(&out.stderr).contains(&format!("msh: warning: -L {spec}")),
        "{}",
        out.stderr
    );

    // A remote forward the server cannot bind (the port is taken on its side too).
    let rspec = format!("127.0.0.1:{port}:127.0.0.1:9");
    let out = run(
        s.msh(&[
            "-o",
            "ExitOnForwardFailure=yes",
            "-R",
            &rspec,
            "127.0.0.1",
            "echo ran",
        ]),
        b"",
        T,
    );
    assert_eq!(out.code(), Some(255), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_str(), "");
    let err = remote_stderr(&out.stderr);
    assert!(
        err.contains(&format!("-R {rspec}"))
            && err.contains(&format!(
                "remote port forwarding failed for listen port {port}"
            )),
        "{err}"
    );
    drop(taken);
}

#[test]
fn bad_forward_specs_are_refused_before_connecting() {
    let s = setup("fwd-bad-spec");
    for (flag, spec) in [("-L", "8080:db"), ("-D", "0"), ("-R", "a:b:c:d:e")] {
        let out = run(s.msh(&[flag, spec, "127.0.0.1", "true"]), b"", T);
        assert_eq!(out.code(), Some(255), "{flag} {spec}: {}", out.stderr);
        assert!(
            out.stderr.starts_with(&format!("msh: {flag} {spec}: bad ")),
            "{}",
            out.stderr
        );
    }
    let out = run(
        s.msh(&["-o", "LocalForward=8080", "127.0.0.1", "true"]),
        b"",
        T,
    );
    assert_eq!(out.code(), Some(255));
    assert!(
        out.stderr
            .contains("LocalForward=8080: LocalForward 8080: bad local forwarding"),
        "{}",
        out.stderr
    );
}

/// Adds a fresh key to the agent at `sock` and returns its public key line's comment.
fn agent_with_key(dir: &TestDir, sock: &Path) -> String {
    let key = ssh_keygen_ed25519(dir, "agent_key");
    let mut add = cmd(tool("ssh-add"), [key.as_os_str()]);
    add.env("SSH_AUTH_SOCK", sock);
    let out = run(add, b"", T);
    assert_eq!(out.code(), Some(0), "ssh-add: {}", out.stderr);
    "agent_key".to_string()
}

#[test]
fn agent_forwarding_only_with_dash_a() {
    let s = setup("fwd-agent");
    let (agent, sock) = start_ssh_agent(&s.dir.path);
    let comment = agent_with_key(&s.dir, &sock);
    let remote = "ssh-add -l; echo \"sock=${SSH_AUTH_SOCK:-unset}\"";

    let mut c = s.msh(&["-A", "127.0.0.1", remote]);
    c.env("SSH_AUTH_SOCK", &sock);
    let out = run(c, b"", T);
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    let text = out.stdout_str();
    assert!(text.contains(&comment), "ssh-add -l remotely: {text}");
    assert!(!text.contains("sock=unset"), "{text}");

    // Without -A (ForwardAgent defaults to no), and with -A overridden by -a.
    for args in [
        &["127.0.0.1", remote][..],
        &["-A", "-a", "127.0.0.1", remote][..],
    ] {
        let mut c = s.msh(args);
        c.env("SSH_AUTH_SOCK", &sock);
        let out = run(c, b"", T);
        let text = out.stdout_str();
        assert!(text.contains("sock=unset"), "{args:?}: {text}");
        assert!(!text.contains(&comment), "{args:?}: {text}");
    }

    // ForwardAgent with a socket path, from -o.
    let mut c = s.msh(&[
        "-o",
        &format!("ForwardAgent={}", sock.display()),
        "127.0.0.1",
        remote,
    ]);
    c.env_remove("SSH_AUTH_SOCK");
    let out = run(c, b"", T);
    assert!(out.stdout_str().contains(&comment), "{}", out.stdout_str());
    drop(agent);
}

#[test]
fn no_session_ends_with_255_when_the_server_closes_the_connection() {
    // sshd closes a connection without channels after UnusedConnectionTimeout: -N opens
    // none until a forwarded connection arrives.
    let s = crate::msh_to_sshd::setup_with(
        "fwd-N-server-gone",
        SshdOptions {
            extra_config: vec!["UnusedConnectionTimeout 2s".into()],
            ..SshdOptions::default()
        },
    );
    let lp = free_port();
    let spec = format!("127.0.0.1:{lp}:127.0.0.1:9");
    let mut p = msh_background(&s, "msh-N", &["-L", &spec]);
    let st = p
        .wait_timeout(T)
        .unwrap_or_else(|| panic!("msh -N kept running; log:\n{}", p.log_text()));
    assert_eq!(st.code(), Some(255), "log:\n{}", p.log_text());
    let log = p.log_text();
    assert!(
        log.contains("closed by the server") || log.contains("lost"),
        "{log}"
    );
}

/// msh and OpenSSH's ssh side by side, each with `-N -L` to the same sshd and its tunnel in
/// use, then stopped by PID: SIGTERM ends both with 0 (no session, so no remote status; ssh
/// clears the error for a deliberate SIGTERM), SIGHUP with 255, and neither prints a word.
#[test]
fn dash_n_stopped_by_a_signal_is_silent_as_ssh() {
    let s = setup("fwd-N-signal");
    let echo = echo_server();
    let spec = |port: u16| format!("127.0.0.1:{port}:127.0.0.1:{}", echo.port());
    for (sig, code) in [(Signal::SIGTERM, 0), (Signal::SIGHUP, 255)] {
        let (mp, sp) = (free_port(), free_port());
        let msh = msh_background(&s, &format!("msh-N-{sig}"), &["-L", &spec(mp)]);
        let ssh = openssh_command(
            s.sshd.port,
            &s.sshd.user,
            &s.id,
            &s.kh,
            &["-N", "-L", &spec(sp)],
            "",
        );
        let ssh = Proc::spawn("ssh -N", ssh, &s.dir.join(format!("ssh-N-{sig}.log")));
        for (name, mut p, port) in [("msh", msh, mp), ("ssh", ssh, sp)] {
            roundtrip(
                connect_retry(addr(port), Some(&mut p)),
                &format!("{name} -N -L"),
            );
            p.signal(sig);
            let st = p
                .wait_timeout(T)
                .unwrap_or_else(|| panic!("{name} did not stop on {sig}: {}", p.log_text()));
            assert_eq!(
                (st.code(), remote_stderr(&p.log_text())),
                (Some(code), String::new()),
                "{name} -N stopped by {sig}"
            );
        }
    }
}

/// A paramiko server (tests/probes/hostile_server.py open-channels) opens every kind of channel towards
/// msh after the command starts. Only the `forwarded-tcpip` for the `-R` msh requested may
/// be accepted (and it reaches the echo server); agent, x11, session, direct-tcpip and a
/// forwarded-tcpip for a port msh never asked for are refused, the last with a warning
/// whose server-chosen address has its escape sequence neutralised.
#[test]
fn server_opened_channels_are_refused_unless_requested() {
    let dir = TestDir::new("fwd-hostile");
    let host_key = ssh_keygen_ed25519(&dir, "host_key");
    let host_pub = std::fs::read_to_string(msh_common::keys::public_key_path(&host_key)).unwrap();
    let host_pub: Vec<&str> = host_pub.split_whitespace().take(2).collect();
    let id = ssh_keygen_ed25519(&dir, "id_user");
    let result = dir.join("result.json");
    let (server, port) =
        msh_tests::mshd::hostile_server(&dir, "open-channels", &host_key, &[&result]);
    let kh = dir.write(
        "known_hosts",
        format!("[127.0.0.1]:{port} {}\n", host_pub.join(" ")),
        0o600,
    );
    let echo = echo_server();
    let spec = format!("7000:127.0.0.1:{}", echo.port());
    let mut c = crate::msh_to_sshd::msh_cmd(&dir, port, "u", &kh, &[]);
    c.arg("-i")
        .arg(&id)
        .args(["-o", "BatchMode=yes", "-R", &spec, "127.0.0.1", "true"]);
    let out = run(c, b"", T);
    assert_eq!(
        out.code(),
        Some(0),
        "stderr: {}\nserver log:\n{}",
        out.stderr,
        server.log_text()
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
    for kind in [
        "agent",
        "x11",
        "session",
        "direct-tcpip",
        "forwarded-unrequested",
    ] {
        assert_eq!(r[kind]["accepted"], false, "{kind} accepted: {r}");
    }
    assert_eq!(r["agent_requested"], false, "{r}");
    assert_eq!(r["forwards"][0][1], 7000, "{r}");
    assert_eq!(r["forwarded-requested"]["accepted"], true, "{r}");
    assert_eq!(r["echo"], "ping through -R", "{r}");
    assert!(
        out.stderr
            .contains("msh: warning: the server opened a connection for \\x1b[31mevil:5555"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("the server tried to use the agent"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains('\x1b'), "{:?}", out.stderr);
}

/// As ssh: when the command ends, msh waits for the forwarded connections still open (the
/// `ssh -L ... host sleep 10` idiom), then exits with the command's status.
#[test]
fn tunnels_open_when_the_command_ends_are_waited_for() {
    let s = setup("fwd-wait");
    let echo = echo_server();
    let lp = free_port();
    let spec = format!("127.0.0.1:{lp}:127.0.0.1:{}", echo.port());
    let mut c = s.msh(&["-L", &spec, "127.0.0.1", "sleep 2; exit 3"]);
    c.stdin(std::process::Stdio::null());
    let mut p = Proc::spawn("msh-wait", c, &s.dir.join("msh-wait.log"));
    let mut held = connect_retry(addr(lp), Some(&mut p));
    held.write_all(b"early ").unwrap();
    // The command has ended; the tunnel still works and msh still runs.
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        p.wait_timeout(Duration::from_millis(0)).is_none(),
        "msh left with a tunnel open; log:\n{}",
        p.log_text()
    );
    held.write_all(b"late").unwrap();
    held.shutdown(Shutdown::Write).unwrap();
    held.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut back = String::new();
    held.read_to_string(&mut back).unwrap();
    assert_eq!(back, "early late");
    let st = p
        .wait_timeout(T)
        .unwrap_or_else(|| panic!("msh did not exit after the tunnel closed: {}", p.log_text()));
    assert_eq!(st.code(), Some(3), "log:\n{}", p.log_text());
}

/// The addresses listening on `port` (`ss -ltnH`), e.g. `["127.0.0.1:4000", "[::1]:4000"]`.
fn listening(port: u16) -> Vec<String> {
    let out = run(cmd("ss", ["-ltnH", &format!("sport = :{port}")]), b"", T);
    let mut v: Vec<String> = out
        .stdout_str()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3).map(str::to_string))
        .collect();
    v.sort();
    v
}

/// -L/-D listen on loopback only unless GatewayPorts=yes or an address is given; IPv6
/// `[::1]:port` specs work end to end.
#[test]
fn listeners_bind_loopback_unless_gateway_ports_or_an_address() {
    let s = setup("fwd-gateway");
    let echo = echo_server();
    let (l1, l2, l3) = (free_port(), free_port(), free_port());
    let default = format!("{l1}:127.0.0.1:{}", echo.port());
    let v6 = format!("[::1]:{l3}:[127.0.0.1]:{}", echo.port());
    let mut p = msh_background(&s, "msh-gw-default", &["-L", &default, "-L", &v6]);
    connect_retry(addr(l1), Some(&mut p));
    assert_eq!(
        listening(l1),
        [format!("127.0.0.1:{l1}"), format!("[::1]:{l1}")],
        "no bind address: loopback only"
    );
    assert_eq!(listening(l3), [format!("[::1]:{l3}")]);
    let c = TcpStream::connect(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, l3))).unwrap();
    roundtrip(c, "-L [::1]");
    stop(p);

    let spec = format!("{l2}:127.0.0.1:{}", echo.port());
    let mut p = msh_background(
        &s,
        "msh-gw-yes",
        &[
            "-o",
            "GatewayPorts=yes",
            "-L",
            &spec,
            "-D",
            &format!("localhost:{l1}"),
        ],
    );
    connect_retry(addr(l2), Some(&mut p));
    assert_eq!(
        listening(l2),
        [format!("0.0.0.0:{l2}"), format!("[::]:{l2}")],
        "GatewayPorts=yes: every interface"
    );
    assert_eq!(
        listening(l1),
        [format!("127.0.0.1:{l1}"), format!("[::1]:{l1}")],
        "localhost stays loopback"
    );
    stop(p);
}

/// LocalForward from a config file is set up (a taken port fails it, naming file:line), and
/// ClearAllForwardings=yes, as scp and sftp pass it, drops it and the -L flags alike.
#[test]
fn config_forwards_and_clear_all_forwardings() {
    let s = setup("fwd-config");
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let cfg = s.dir.write(
        "config",
        format!(
            "Host *\n  LocalForward 127.0.0.1:{port} 127.0.0.1:9\n  ExitOnForwardFailure yes\n"
        ),
        0o600,
    );
    let cfg = cfg.to_str().unwrap();
    let out = run(s.msh(&["-F", cfg, "127.0.0.1", "echo ran"]), b"", T);
    assert_eq!(out.code(), Some(255), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "LocalForward 127.0.0.1:{port} 127.0.0.1:9 ({cfg}:2)"
        )),
        "{}",
        out.stderr
    );
    let flag = format!("127.0.0.1:{port}:127.0.0.1:9");
    let out = run(
        s.msh(&[
            "-F",
            cfg,
            "-L",
            &flag,
            "-oForwardAgent=no",
            "-oClearAllForwardings=yes",
            "127.0.0.1",
            "echo ran",
        ]),
        b"",
        T,
    );
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout_str(), "ran\n");
    drop(taken);
}

/// `msh -N ARGS 127.0.0.1` to mshd in the background, its stderr in DIR/NAME.log.
fn msh_to_mshd_background(d: &msh_tests::mshd::Mshd, name: &str, args: &[&str]) -> Proc {
    let mut all = vec!["-N"];
    all.extend_from_slice(args);
    all.push("127.0.0.1");
    let c = crate::msh_to_mshd::msh(d, &all);
    Proc::spawn(name, c, &d.dir.join(format!("{name}.log")))
}

/// The same tunnels against mshd: -L, -R (fixed and allocated port), -D (SOCKS5), 300 KB
/// each way through each.
#[test]
fn msh_to_mshd_local_remote_dynamic_carry_300k_each_way() {
    let d = msh_tests::mshd::Mshd::start("fwd-mshd");
    let echo = echo_server();
    let (lp, rp, dp) = (free_port(), free_port(), free_port());
    let l = format!("127.0.0.1:{lp}:127.0.0.1:{}", echo.port());
    let r = format!("127.0.0.1:{rp}:127.0.0.1:{}", echo.port());
    let r0 = format!("0:127.0.0.1:{}", echo.port());
    let dy = format!("127.0.0.1:{dp}");
    let mut p = msh_to_mshd_background(
        &d,
        "msh-mshd-fwd",
        &["-L", &l, "-R", &r, "-R", &r0, "-D", &dy],
    );
    roundtrip(connect_retry(addr(lp), Some(&mut p)), "msh -L to mshd");
    roundtrip(connect_retry(addr(rp), Some(&mut p)), "msh -R to mshd");
    let port = allocated_port(&p, &format!("127.0.0.1:{}", echo.port()));
    roundtrip(connect_retry(addr(port), Some(&mut p)), "msh -R 0 to mshd");
    let c = socks_connect(addr(dp), "5-name", echo.port(), Some(&mut p));
    roundtrip(c, "msh -D to mshd");
    stop(p);
}

#[test]
fn msh_to_mshd_agent_forwarding_only_with_dash_a() {
    let d = msh_tests::mshd::Mshd::start("fwd-mshd-agent");
    let (agent, sock) = start_ssh_agent(&d.dir.path);
    let comment = agent_with_key(&d.dir, &sock);
    let remote = "ssh-add -l; echo \"sock=${SSH_AUTH_SOCK:-unset}\"";
    let mut c = crate::msh_to_mshd::msh(&d, &["-A", "127.0.0.1", remote]);
    c.env("SSH_AUTH_SOCK", &sock);
    let out = run(c, b"", T);
    assert_eq!(
        out.code(),
        Some(0),
        "stderr: {}\nmshd log:\n{}",
        out.stderr,
        d.log_text()
    );
    assert!(out.stdout_str().contains(&comment), "{}", out.stdout_str());
    let mut c = crate::msh_to_mshd::msh(&d, &["127.0.0.1", remote]);
    c.env("SSH_AUTH_SOCK", &sock);
    let out = run(c, b"", T);
    assert!(
        out.stdout_str().contains("sock=unset"),
        "{}",
        out.stdout_str()
    );
    assert!(!out.stdout_str().contains(&comment), "{}", out.stdout_str());
    drop(agent);
}
