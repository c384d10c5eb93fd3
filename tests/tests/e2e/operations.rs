//! Issue 12, "Operations": the Prometheus endpoint (`metrics_listen`) counts what OpenSSH's
//! ssh and msh do against mshd and shows the gauges of open sessions, forwards and
//! unauthenticated connections; a scraper that never sends its request holds up neither the
//! next scrape nor a login; systemd's notify protocol (READY, RELOADING + MONOTONIC_USEC,
//! STOPPING) over a real datagram socket; log records as native journal entries when stderr
//! is the journal stream; dist/mshd.service passes `systemd-analyze verify` and
//! scripts/install.sh installs it pointing at the installed mshd.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use msh_tests::mshd::{Mshd, MshdBuilder};
use msh_tests::{bin, cmd, free_port, run, ssh_keygen_ed25519, tool, Proc, TestDir};
use nix::sys::signal::Signal;

use crate::msh_to_mshd::msh;

const T: Duration = Duration::from_secs(30);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// An mshd with `metrics_listen` on a free loopback port; returns it and that address.
fn with_metrics(b: MshdBuilder) -> (Mshd, SocketAddr) {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let d = b.toml(&format!("metrics_listen = \"{addr}\"")).start();
    d.wait_for_log("metrics on http://", T);
    (d, addr)
}

/// One HTTP exchange with the metrics endpoint: the status line and the body.
fn http(addr: SocketAddr, request: &str) -> (String, String) {
    let mut s = TcpStream::connect_timeout(&addr, T).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text)
        .unwrap_or_else(|e| panic!("reading the answer to {request:?}: {e}"));
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {text:?}"));
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

/// The samples of `GET /metrics`: series (name with labels, as written) -> value.
fn scrape(addr: SocketAddr) -> HashMap<String, f64> {
    let (status, body) = http(addr, "GET /metrics HTTP/1.1\r\nHost: mshd\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_string(), value.parse().unwrap())
        })
        .collect()
}

fn sample(m: &HashMap<String, f64>, series: &str) -> f64 {
    m.get(series).copied().unwrap_or(0.0)
}

/// Scrapes until `series` has `want` (up to `T`), for values that follow an event mshd
/// handles after the client has seen its effect (a disconnect, a channel close).
fn wait_sample(addr: SocketAddr, series: &str, want: f64) -> HashMap<String, f64> {
    let start = Instant::now();
    loop {
        let m = scrape(addr);
        if sample(&m, series) == want {
            return m;
        }
        assert!(
            start.elapsed() < T,
            "{series} is {} after {T:?}, expected {want}: {m:?}",
            sample(&m, series)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

const ACCEPTED: &str = "mshd_auth_total{method=\"publickey\",outcome=\"accepted\"}";
const REJECTED: &str = "mshd_auth_total{method=\"publickey\",outcome=\"rejected\"}";

#[test]
fn metrics_count_accepted_and_rejected_logins_of_ssh_and_msh() {
    let (d, addr) = with_metrics(Mshd::builder("ops-metrics-auth").audit_log());
    // The fixture's readiness check connected once (counted once mshd's task for it runs).
    let before = wait_sample(addr, "mshd_connections_total", 1.0);
    let base = 1.0;
    assert_eq!(sample(&before, ACCEPTED), 0.0, "{before:?}");
    assert_eq!(sample(&before, REJECTED), 0.0, "{before:?}");
    let stranger = ssh_keygen_ed25519(&d.dir, "stranger");

    let ok = run(d.ssh(&["-T"], "true"), b"", T);
    assert_eq!(ok.code(), Some(0), "{}", ok.stderr);
    let ok = run(msh(&d, &["127.0.0.1", "true"]), b"", T);
    assert_eq!(ok.code(), Some(0), "{}", ok.stderr);
    let refused = run(d.ssh_with_key(&d.user, &stranger, &["-T"], "true"), b"", T);
    assert_eq!(refused.code(), Some(255), "{}", refused.stderr);
    let mut c2 = crate::msh_to_sshd::msh_cmd(&d.dir, d.port, &d.user, &d.known_hosts, &[]);
    c2.arg("-i")
        .arg(&stranger)
        .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
        .args(["127.0.0.1", "true"]);
    let refused = run(c2, b"", T);
    assert_eq!(refused.code(), Some(255), "{}", refused.stderr);

    // Every connection has ended (its disconnect is audited) before the counts are read.
    let events = d.wait_for_audit("disconnect", base as usize + 4, T);
    let m = scrape(addr);
    assert_eq!(sample(&m, "mshd_connections_total"), base + 4.0, "{m:?}");
    assert_eq!(sample(&m, ACCEPTED), 2.0, "{m:?}");
    // One refusal per key the client offered, as the audit log records them.
    let audited_refusals = events
        .iter()
        .filter(|e| e["event"] == "auth" && e["outcome"] == "rejected")
        .count();
    assert!(audited_refusals >= 2, "{events:?}");
    assert_eq!(sample(&m, REJECTED), audited_refusals as f64, "{m:?}");
    assert_eq!(sample(&m, "mshd_sessions_active"), 0.0, "{m:?}");
    assert_eq!(sample(&m, "mshd_unauthenticated_connections"), 0.0);
    assert_eq!(sample(&m, "mshd_audit_dropped_total"), 0.0);
}

#[test]
fn metrics_gauges_follow_open_sessions_forwards_and_unauthenticated_connections() {
    let (d, addr) = with_metrics(Mshd::builder("ops-metrics-gauges"));
    // The fixture's readiness check connected once (counted once mshd's task for it runs).
    wait_sample(addr, "mshd_connections_total", 1.0);
    let base = 1.0;
    // A session that stays open until the test ends it.
    let session = Proc::spawn(
        "ssh-session",
        d.ssh(&["-T"], "echo started; exec sleep 120"),
        &d.dir.join("session.log"),
    );
    session.wait_for_log("started", T);
    // A tunnel through `ssh -L` to a listener of the test's, held open; and a `-R` listener
    // in mshd, which is not a forwarded connection and is not counted.
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let lport = free_port();
    let spec = format!("{lport}:{}", target.local_addr().unwrap());
    let tunnel = Proc::spawn(
        "ssh-L",
        d.ssh(
            &[
                "-N",
                "-o",
                "ExitOnForwardFailure=yes",
                "-L",
                &spec,
                "-R",
                "0:127.0.0.1:9",
            ],
            "",
        ),
        &d.dir.join("tunnel.log"),
    );
    tunnel.wait_for_log("Allocated port", T);
    let start = Instant::now();
    let client = loop {
        match TcpStream::connect(("127.0.0.1", lport)) {
            Ok(s) => break s,
            Err(e) if start.elapsed() > T => panic!("ssh -L {spec}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let (far_end, _) = target.accept().unwrap();
    // A connection that never authenticates (it does not even send its version line).
    let silent = TcpStream::connect(d.addr).unwrap();

    let m = wait_sample(addr, "mshd_forwards_active", 1.0);
    let m = if sample(&m, "mshd_unauthenticated_connections") == 1.0 {
        m
    } else {
        wait_sample(addr, "mshd_unauthenticated_connections", 1.0)
    };
    assert_eq!(sample(&m, "mshd_sessions_active"), 1.0, "{m:?}");
    assert_eq!(sample(&m, "mshd_forwards_active"), 1.0, "{m:?}");
    // The silent connection is admitted (unauthenticated) a moment before its task counts it.
    let m = wait_sample(addr, "mshd_connections_total", base + 3.0);
    assert_eq!(sample(&m, "mshd_unauthenticated_connections"), 1.0, "{m:?}");

    drop(silent);
    wait_sample(addr, "mshd_unauthenticated_connections", 0.0);
    drop(client);
    drop(far_end);
    wait_sample(addr, "mshd_forwards_active", 0.0);
    drop(session);
    let m = wait_sample(addr, "mshd_sessions_active", 0.0);
    assert_eq!(sample(&m, "mshd_forwards_active"), 0.0, "{m:?}");
    drop(tunnel);

    // Bytes are counted when a session ends: what `cat` received and sent back.
    let data = vec![b'x'; 10_000];
    let out = run(d.ssh(&["-T"], "cat"), &data, T);
    assert_eq!(out.stdout.len(), data.len(), "{}", out.stderr);
    let m = wait_sample(addr, "mshd_sessions_active", 0.0);
    let start = Instant::now();
    let mut m = m;
    while sample(&m, "mshd_bytes_total{direction=\"out\"}") < 10_000.0 && start.elapsed() < T {
        std::thread::sleep(Duration::from_millis(100));
        m = scrape(addr);
    }
    assert!(
        sample(&m, "mshd_bytes_total{direction=\"in\"}") >= 10_000.0,
        "{m:?}"
    );
    assert!(
        sample(&m, "mshd_bytes_total{direction=\"out\"}") >= 10_000.0,
        "{m:?}"
    );
}

#[test]
fn metrics_endpoint_answers_only_get_metrics_and_a_silent_scraper_blocks_nothing() {
    let (d, addr) = with_metrics(Mshd::builder("ops-metrics-http"));
    let (status, _) = http(addr, "GET / HTTP/1.1\r\nHost: mshd\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let (status, _) = http(addr, "GET /metrics/../etc HTTP/1.1\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let (status, _) = http(addr, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
    let (status, _) = http(
        addr,
        &format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(20_000)),
    );
    assert_eq!(status, "HTTP/1.1 400 Bad Request");

    // Scrapers that connect and send nothing: the next scrape and a login still go through.
    let silent: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let m = scrape(addr);
    assert!(m.contains_key("mshd_sessions_active"), "{m:?}");
    let ok = run(d.ssh(&["-T"], "echo through"), b"", T);
    assert_eq!(ok.stdout_str(), "through\n", "{}", ok.stderr);
    // mshd closes them itself after its scrape timeout (5 s).
    for mut s in silent {
        s.set_read_timeout(Some(T)).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(
            s.read(&mut buf).unwrap_or(0),
            0,
            "a silent scraper got data"
        );
    }
}

#[test]
fn metrics_report_host_certificate_expiry_per_file() {
    let dir = TestDir::new("ops-metrics-cert");
    let ca = ssh_keygen_ed25519(&dir, "host_ca");
    let key = ssh_keygen_ed25519(&dir, "served_host");
    let mut c = cmd(tool("ssh-keygen"), ["-q", "-s"]);
    c.arg(&ca)
        .args(["-h", "-I", "host", "-V", "20300101000000Z:20400101000000Z"])
        .arg(dir.join("served_host.pub"));
    let out = run(c, b"", T);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let cert = dir.join("served_host-cert.pub");
    let (_d, addr) = with_metrics(
        Mshd::builder("ops-metrics-cert")
            .dir(dir)
            .host_key_with_certificate(&key, &cert),
    );
    let m = scrape(addr);
    let series = format!(
        "mshd_host_certificate_expiry_timestamp_seconds{{file=\"{}\"}}",
        cert.display()
    );
    // 2040-01-01T00:00:00Z
    assert_eq!(m.get(&series).copied(), Some(2_208_988_800.0), "{m:?}");
}

/// The next datagram on the notify socket, as text.
fn next_notification(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = sock
        .recv(&mut buf)
        .unwrap_or_else(|e| panic!("no notification from mshd within {T:?}: {e}"));
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn systemd_notify_ready_reloading_and_stopping_over_a_real_socket() {
    let dir = TestDir::new("ops-notify");
    let sock_path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(T)).unwrap();
    let (mut d, addr) = with_metrics(
        Mshd::builder("ops-notify")
            .dir(dir)
            .env("NOTIFY_SOCKET", &sock_path.display().to_string()),
    );
    assert_eq!(next_notification(&sock), "READY=1\n");
    // Sessions do not inherit the variable (they would talk to systemd as mshd).
    let out = run(d.ssh(&["-T"], "env"), b"", T);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(
        !out.stdout_str().contains("NOTIFY_SOCKET"),
        "{}",
        out.stdout_str()
    );

    d.proc.signal(Signal::SIGHUP);
    let reloading = next_notification(&sock);
    let mut lines = reloading.lines();
    assert_eq!(lines.next(), Some("RELOADING=1"), "{reloading}");
    let usec = lines
        .next()
        .and_then(|l| l.strip_prefix("MONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC after RELOADING: {reloading:?}"));
    let usec: u64 = usec.parse().unwrap();
    assert!(usec > 0, "{reloading}");
    assert_eq!(next_notification(&sock), "READY=1\n");
    let m = scrape(addr);
    assert_eq!(
        sample(&m, "mshd_config_reloads_total{outcome=\"success\"}"),
        1.0,
        "{m:?}"
    );

    // A broken file: the reload is refused, mshd says READY again with the old settings.
    std::fs::write(&d.config, "max_sessions = \"many\"\n").unwrap();
    d.proc.signal(Signal::SIGHUP);
    let again = next_notification(&sock);
    let usec2: u64 = again
        .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
        .and_then(|v| v.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("not RELOADING with MONOTONIC_USEC: {again:?}"));
    // The monotonic clock: the second reload's time is after the first's.
    assert!(usec2 > usec, "{usec2} <= {usec}");
    assert_eq!(next_notification(&sock), "READY=1\n");
    d.wait_for_log("config not reloaded", T);
    let m = scrape(addr);
    assert_eq!(
        sample(&m, "mshd_config_reloads_total{outcome=\"failure\"}"),
        1.0,
        "{m:?}"
    );

    d.proc.signal(Signal::SIGTERM);
    assert_eq!(next_notification(&sock), "STOPPING=1\n");
    let status = d
        .proc
        .wait_timeout(T)
        .expect("mshd did not exit after SIGTERM");
    assert!(status.success(), "{status:?}");
}

/// dist/mshd.service with ExecStart pointing at `mshd`, in `dir`.
fn unit_for(dir: &TestDir, mshd: &Path) -> PathBuf {
    let text = std::fs::read_to_string(workspace().join("dist/mshd.service")).unwrap();
    assert!(text.contains("ExecStart=/usr/local/bin/mshd\n"), "{text}");
    dir.write(
        "mshd.service",
        text.replace("/usr/local/bin/mshd", &mshd.display().to_string()),
        0o644,
    )
}

#[test]
fn systemd_analyze_verifies_the_unit() {
    let analyze = Path::new("/usr/bin/systemd-analyze");
    assert!(
        analyze.exists(),
        "systemd-analyze is missing: install the systemd package (scripts/test.sh does)"
    );
    let dir = TestDir::new("ops-unit");
    let unit = unit_for(&dir, &bin("mshd"));
    let mut c = cmd(analyze, ["verify", "--man=no"]);
    c.arg(&unit);
    let out = run(c, b"", T);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    // Unknown or misspelled directives are only warnings: none may appear.
    assert_eq!(out.stderr.trim(), "", "systemd-analyze verify warned");
    let text = std::fs::read_to_string(&unit).unwrap();
    for line in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "LimitNOFILE=65536",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in the unit");
    }
    // su and sudo inside sessions need set-uid to work.
    assert!(
        !text.lines().any(|l| l.starts_with("NoNewPrivileges")),
        "NoNewPrivileges would break su/sudo in sessions"
    );
}

#[test]
fn install_script_installs_the_unit_pointing_at_the_installed_mshd() {
    let dir = TestDir::new("ops-install");
    let prefix = dir.join("prefix");
    let debug = bin("mshd").parent().unwrap().to_path_buf();
    let mut c = cmd(workspace().join("scripts/install.sh"), ["--no-build"]);
    c.arg(&debug).arg(&prefix);
    let out = run(c, b"", Duration::from_secs(60));
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let unit = prefix.join("lib/systemd/system/mshd.service");
    let text = std::fs::read_to_string(&unit).unwrap_or_else(|e| panic!("{}: {e}", unit.display()));
    let want = format!("ExecStart={}/bin/mshd", prefix.display());
    assert!(text.lines().any(|l| l == want), "no {want:?} in {text}");
    assert!(!text.contains("/usr/local/bin/mshd"), "{text}");
    // The socket unit beside it, as written (it names no path).
    let socket = prefix.join("lib/systemd/system/mshd.socket");
    assert_eq!(
        std::fs::read_to_string(&socket).unwrap_or_else(|e| panic!("{}: {e}", socket.display())),
        std::fs::read_to_string(workspace().join("dist/mshd.socket")).unwrap()
    );
}

/// The fields of one native journal protocol datagram (systemd's `journal-native`
/// protocol: `NAME=value\n`, or `NAME\n` + 64-bit little-endian length + value + `\n`).
fn journal_fields(mut d: &[u8]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    while let Some(nl) = d.iter().position(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(&d[..nl]).into_owned();
        d = &d[nl + 1..];
        if let Some((k, v)) = line.split_once('=') {
            out.insert(k.to_string(), v.to_string());
            continue;
        }
        let len = u64::from_le_bytes(d[..8].try_into().unwrap()) as usize;
        let value = String::from_utf8_lossy(&d[8..8 + len]).into_owned();
        out.insert(line, value);
        d = &d[8 + len + 1..];
    }
    out
}

/// Removes the stand-in journald socket this test made.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        // And its directory, when nothing else is in it.
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Under systemd with stderr connected to the journal (JOURNAL_STREAM = stderr's
/// device:inode), mshd writes native journal entries with a priority and fields, not text on
/// stderr. Where no journald runs, the test stands in for it at its well-known socket (root
/// only); where one runs, the entry is read back with journalctl.
#[test]
fn logs_go_to_the_journal_with_fields_when_stderr_is_the_journal_stream() {
    if !msh_tests::users::require_root("logs_go_to_the_journal") {
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let dir = TestDir::new("ops-journal");
    let journal = Path::new("/run/systemd/journal/socket");
    let stand_in = if journal.exists() {
        None
    } else {
        std::fs::create_dir_all(journal.parent().unwrap()).unwrap();
        let s = UnixDatagram::bind(journal).unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        Some((s, RemoveOnDrop(journal.to_path_buf())))
    };
    let key = ssh_keygen_ed25519(&dir, "host_ed25519");
    let config = dir.write("mshd.toml", "", 0o644);
    let log = dir.write("mshd.log", "", 0o644);
    let meta = std::fs::metadata(&log).unwrap();
    let port = free_port();
    let mut c = cmd(bin("mshd"), ["--listen", &format!("127.0.0.1:{port}")]);
    c.arg("--config").arg(&config).arg("--host-key").arg(&key);
    c.env_remove("RUST_LOG")
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
    // Proc::spawn truncates the same file: stderr keeps the inode named above.
    let proc = Proc::spawn("mshd-journal", c, &log);
    let want = format!("listening on 127.0.0.1:{port}");
    let entry = match &stand_in {
        Some((sock, _)) => {
            let start = Instant::now();
            loop {
                let mut buf = vec![0u8; 65536];
                let n = sock
                    .recv(&mut buf)
                    .unwrap_or_else(|e| panic!("no journal entry from mshd: {e}"));
                let f = journal_fields(&buf[..n]);
                if f.get("MESSAGE").is_some_and(|m| m.contains(&want)) {
                    break f;
                }
                assert!(start.elapsed() < T, "no entry with {want:?}");
            }
        }
        None => {
            let start = Instant::now();
            loop {
                let mut c = cmd(tool("journalctl"), ["--no-pager", "-o", "json"]);
                c.arg(format!("_PID={}", proc.pid()));
                let out = run(c, b"", T);
                let found = out.stdout_str().lines().find_map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).ok()?;
                    let m = v["MESSAGE"].as_str()?;
                    m.contains(&want).then(|| {
                        v.as_object()
                            .unwrap()
                            .iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                            .collect::<HashMap<_, _>>()
                    })
                });
                if let Some(f) = found {
                    break f;
                }
                assert!(start.elapsed() < T, "journalctl shows no {want:?}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    };
    assert_eq!(
        entry.get("PRIORITY").map(String::as_str),
        Some("6"),
        "{entry:?}"
    );
    assert_eq!(
        entry.get("SYSLOG_IDENTIFIER").map(String::as_str),
        Some("mshd"),
        "{entry:?}"
    );
    assert!(
        entry
            .get("CODE_FILE")
            .is_some_and(|f| f.ends_with("daemon.rs")),
        "{entry:?}"
    );
    assert!(
        !std::fs::read_to_string(&log)
            .unwrap()
            .contains("listening on"),
        "the record also went to stderr"
    );
    drop(proc);
}

/// The unit's LimitNOFILE, as systemd would set it (soft 1024 as on most systems, hard the
/// unit's value): mshd raises its soft limit to the hard one and logs how many sessions that
/// leaves room for, at 6 descriptors each; the unit's value leaves room for 10,000 (issue 8,
/// item 5). Where this process may not raise its hard limit that far (a container without
/// CAP_SYS_RESOURCE), mshd runs with the highest hard limit it may have.
#[test]
fn the_units_open_file_limit_leaves_room_for_10000_sessions() {
    let text = std::fs::read_to_string(workspace().join("dist/mshd.service")).unwrap();
    let unit_limit: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("LimitNOFILE="))
        .expect("no LimitNOFILE in dist/mshd.service")
        .parse()
        .unwrap();
    // mshd's own rule (server/README.md, Limits): 64 for itself, at most 6 per session.
    assert!((unit_limit - 64) / 6 >= 10_000, "LimitNOFILE={unit_limit}");
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let hard: u64 = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|r| r.split_whitespace().nth(1))
        .and_then(|h| h.parse().ok())
        .unwrap_or_else(|| panic!("no hard open-file limit in /proc/self/limits: {limits}"));
    let limit = unit_limit.min(hard);
    let dir = TestDir::new("ops-nofile");
    let key = ssh_keygen_ed25519(&dir, "host_ed25519");
    let config = dir.write("mshd.toml", "", 0o644);
    let port = free_port();
    let mut c = cmd(tool("prlimit"), [format!("--nofile=1024:{limit}")]);
    c.arg("--")
        .arg(bin("mshd"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--config")
        .arg(&config)
        .arg("--host-key")
        .arg(&key)
        .env_remove("RUST_LOG");
    let proc = Proc::spawn("mshd-nofile", c, &dir.join("mshd.log"));
    let log = proc.wait_for_log("sessions (", T);
    let line = log
        .lines()
        .find(|l| l.contains("open-file limit"))
        .unwrap_or_else(|| panic!("no open-file limit line: {log}"));
    assert!(
        line.contains(&format!("open-file limit {limit} (raised from 1024)")),
        "{line}"
    );
    assert!(
        line.contains(&format!("room for about {} sessions", (limit - 64) / 6)),
        "{line}"
    );
    drop(proc);
}
