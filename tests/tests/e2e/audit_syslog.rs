//! Issue 12, "Operations": `audit_syslog` sends every audit event, besides the JSON-lines
//! file, as a structured record to journald (native protocol) or syslog (RFC 5424). A
//! datagram socket bound by the test in its directory stands in for the daemon
//! (`audit_syslog_socket`); an accepted and a refused login from msh and from OpenSSH's ssh
//! each produce records with the right attributes and priority; a user name built to forge
//! fields or records forges none; and one test runs the real systemd-journald (in a journal
//! namespace of its own) and finds the records with `journalctl MSH_EVENT=...`.

use std::collections::HashMap;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use msh_tests::mshd::{fingerprint_of, probe, Mshd};
use msh_tests::{bin, cmd, run, ssh_keygen_ed25519, tool, Proc, TestDir};

use crate::msh_to_sshd::msh_cmd;

const T: Duration = Duration::from_secs(30);

/// One record as the daemon would store it: the audit attributes by JSON key (`event`,
/// `user`, ...), its syslog severity, and the datagram.
#[derive(Debug)]
struct Rec {
    severity: u8,
    attrs: HashMap<String, String>,
    raw: Vec<u8>,
}

impl Rec {
    fn get(&self, k: &str) -> &str {
        self.attrs.get(k).map(String::as_str).unwrap_or("")
    }
}

/// Native journal protocol fields, in order (`NAME=value\n` or `NAME\n` + u64 LE length +
/// value + `\n`), as journald-native.c reads them.
fn journal_fields(mut d: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    while !d.is_empty() {
        let nl = d.iter().position(|&b| b == b'\n').expect("field not ended");
        let line = &d[..nl];
        match line.iter().position(|&b| b == b'=') {
            Some(eq) => {
                out.push((
                    String::from_utf8(line[..eq].to_vec()).unwrap(),
                    line[eq + 1..].to_vec(),
                ));
                d = &d[nl + 1..];
            }
            None => {
                let rest = &d[nl + 1..];
                let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
                out.push((
                    String::from_utf8(line.to_vec()).unwrap(),
                    rest[8..8 + len].to_vec(),
                ));
                assert_eq!(rest[8 + len], b'\n', "binary field not ended");
                d = &rest[8 + len + 1..];
            }
        }
    }
    out
}

fn journald_rec(d: &[u8]) -> Rec {
    let fields = journal_fields(d);
    let mut attrs = HashMap::new();
    let mut fixed = HashMap::new();
    for (name, value) in fields {
        let value = String::from_utf8(value).unwrap();
        let slot = match name.strip_prefix("MSH_") {
            Some(k) => attrs.insert(k.to_ascii_lowercase(), value),
            None => fixed.insert(name.clone(), value),
        };
        assert!(
            slot.is_none(),
            "field {name} twice: {:?}",
            String::from_utf8_lossy(d)
        );
    }
    assert_eq!(fixed["SYSLOG_IDENTIFIER"], "mshd");
    assert_eq!(fixed["SYSLOG_FACILITY"], "10");
    assert!(!fixed["MESSAGE"].contains('\n'), "{fixed:?}");
    assert_eq!(fixed.len(), 4, "{fixed:?}");
    Rec {
        severity: fixed["PRIORITY"].parse().unwrap(),
        attrs,
        raw: d.to_vec(),
    }
}

/// RFC 5424: `<PRI>1 TS HOST mshd PID MSGID [msh@32473 k="v" ...] JSON`. The attributes
/// are the JSON message's; each SD-PARAM (unescaped per RFC 5424 6.3.3) must agree with it
/// for values without control characters.
fn syslog_rec(d: &[u8]) -> Rec {
    let s = std::str::from_utf8(d).unwrap();
    assert!(!s.contains(['\n', '\0']), "{s:?}");
    let (pri, rest) = s[1..].split_once('>').unwrap();
    let pri: u8 = pri.parse().unwrap();
    assert_eq!(pri / 8, 10, "facility authpriv: {s}");
    let h: Vec<&str> = rest.splitn(7, ' ').collect();
    assert_eq!((h[0], h[3]), ("1", "mshd"), "{s}");
    let sd = h[6].strip_prefix("[msh@32473").expect(s);
    let mut chars = sd.chars().peekable();
    let mut params = HashMap::new();
    loop {
        match chars.next() {
            Some(']') => break,
            Some(' ') => {}
            other => panic!("bad SD at {other:?}: {s}"),
        }
        let name: String = chars.by_ref().take_while(|&c| c != '=').collect();
        assert_eq!(chars.next(), Some('"'));
        let mut value = String::new();
        loop {
            match chars.next().expect("unterminated PARAM-VALUE") {
                '\\' if matches!(chars.peek(), Some('"' | '\\' | ']')) => {
                    value.push(chars.next().unwrap())
                }
                '"' => break,
                c => value.push(c),
            }
        }
        assert!(params.insert(name, value).is_none(), "a param twice: {s}");
    }
    assert_eq!(chars.next(), Some(' '));
    let msg: String = chars.collect();
    let json: serde_json::Value = serde_json::from_str(&msg).expect(s);
    let attrs: HashMap<String, String> = json
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().map_or(v.to_string(), String::from)))
        .collect();
    assert_eq!(h[5], attrs["event"], "MSGID: {s}");
    for (k, v) in &attrs {
        if k != "ts" && !v.contains(|c: char| c.is_control() || c == '\\') {
            assert_eq!(params.get(k), Some(v), "SD-PARAM {k}: {s}");
        }
    }
    assert_eq!(params.len(), attrs.len() - 1, "every key but ts: {s}");
    Rec {
        severity: pri % 8,
        attrs,
        raw: d.to_vec(),
    }
}

/// The stand-in daemon: a datagram socket in the test's directory.
struct Sink {
    sock: UnixDatagram,
    parse: fn(&[u8]) -> Rec,
}

impl Sink {
    fn next(&self) -> Rec {
        let mut buf = vec![0u8; 1 << 16];
        let n = self
            .sock
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no audit record within {T:?}: {e}"));
        (self.parse)(&buf[..n])
    }

    /// The records of the next connection that tried to log in, up to its `disconnect`
    /// (the fixture's port probes connect and leave).
    fn connection(&self) -> Vec<Rec> {
        let mut out = Vec::new();
        loop {
            let r = self.next();
            let end = r.get("event") == "disconnect";
            out.push(r);
            if end {
                if out.len() > 2 {
                    return out;
                }
                out.clear();
            }
        }
    }
}

fn msh_with_key(d: &Mshd, key: &Path, command: &str) -> Command {
    let mut c = msh_cmd(&d.dir, d.port, &d.user, &d.known_hosts, &[]);
    c.arg("-i")
        .arg(key)
        .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
        .args(["127.0.0.1", command]);
    c
}

/// Runs a client with the given key.
type Client<'a> = Box<dyn Fn(&Path) -> Command + 'a>;

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// A user name that tries to end its field or element and add its own: newlines with
/// `MSH_EVENT=` and `PRIORITY=`, a NUL, RFC 5424's quote and bracket, and a second record.
const FORGED: &str = "x\nMSH_EVENT=forged\nPRIORITY=0\n\u{0}\"] [msh@32473 outcome=\"accepted\"]\n<86>1 - - mshd 1 auth - forged";

/// Starts mshd with `audit_syslog = kind` to a socket in its directory; logs in with msh and
/// ssh, each with the authorized key and with another one; sends the forged name. Returns
/// the sink for more checks.
fn logins_produce_records(kind: &str, parse: fn(&[u8]) -> Rec) {
    let dir = TestDir::new(&format!("audit-{kind}"));
    let path = dir.join("audit.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(T)).unwrap();
    let sink = Sink { sock, parse };
    let d = Mshd::builder(&format!("audit-{kind}"))
        .dir(dir)
        .toml(&format!("audit_syslog = \"{kind}\""))
        .toml(&format!("audit_syslog_socket = \"{}\"", path.display()))
        .start();
    let log = d.wait_for_log("audit records also go to", T);
    assert!(log.contains(&path.display().to_string()), "{log}");
    let good = fingerprint_of(&d.dir.join("id_ed25519.pub"));
    let wrong = ssh_keygen_ed25519(&d.dir, "id_wrong");
    let wrong_fp = fingerprint_of(&d.dir.join("id_wrong.pub"));

    let clients: [(&str, Client); 2] = [
        ("msh", Box::new(|k| msh_with_key(&d, k, "echo hi"))),
        (
            "ssh",
            Box::new(|k| d.ssh_with_key(&d.user, k, &[], "echo hi")),
        ),
    ];
    for (name, client) in &clients {
        let out = run(client(&d.client_key), b"", T);
        assert_eq!(out.code(), Some(0), "{name}: {}", out.stderr);
        assert_eq!(out.stdout_str(), "hi\n", "{name}");
        let recs = sink.connection();
        let events: Vec<&str> = recs.iter().map(|r| r.get("event")).collect();
        assert_eq!(events[0], "connect", "{name}: {events:?}");
        for e in ["auth", "session_start", "session_end", "disconnect"] {
            assert!(events.contains(&e), "{name}: no {e} in {events:?}");
        }
        let auth: Vec<&Rec> = recs.iter().filter(|r| r.get("event") == "auth").collect();
        let ok = auth.last().unwrap();
        assert_eq!(ok.get("outcome"), "accepted", "{name}: {ok:?}");
        assert_eq!(ok.get("user"), d.user, "{name}");
        assert_eq!(ok.get("fingerprint"), good, "{name}");
        assert_eq!(ok.get("method"), "publickey", "{name}");
        assert_eq!(ok.get("v"), "1", "{name}");
        assert!(ok.get("peer").starts_with("127.0.0.1:"), "{name}: {ok:?}");
        assert_eq!(ok.severity, 6, "{name}: info");
        let start = recs.iter().find(|r| r.get("event") == "session_start");
        assert_eq!(start.unwrap().get("command"), "echo hi", "{name}");
        let end = recs.iter().find(|r| r.get("event") == "session_end");
        assert_eq!(end.unwrap().get("exit_status"), "0", "{name}");
        // Every record of the connection carries its id.
        let id = ok.get("conn_id");
        assert!(
            recs.iter().all(|r| r.get("conn_id") == id),
            "{name}: {recs:?}"
        );

        let out = run(client(&wrong), b"", T);
        assert_eq!(
            out.code(),
            Some(255),
            "{name} with a wrong key: {}",
            out.stderr
        );
        let recs = sink.connection();
        let auth: Vec<&Rec> = recs.iter().filter(|r| r.get("event") == "auth").collect();
        assert!(!auth.is_empty(), "{name}: {recs:?}");
        for r in &auth {
            assert_eq!(r.get("outcome"), "rejected", "{name}: {r:?}");
            assert_eq!(r.get("fingerprint"), wrong_fp, "{name}");
            assert_eq!(r.severity, 5, "{name}: notice");
        }
        assert!(
            !recs.iter().any(|r| r.get("event") == "session_start"),
            "{name}: {recs:?}"
        );
    }

    // The forged name, sent by a raw client (ssh and msh do not send such names).
    let key = d.client_key.display().to_string();
    let port = d.port.to_string();
    probe(&["auth-names", "127.0.0.1", &port, &key, &hex(FORGED)], T);
    let recs = sink.connection();
    let events: Vec<&str> = recs.iter().map(|r| r.get("event")).collect();
    assert!(!events.contains(&"forged"), "{events:?}");
    let auth: Vec<&Rec> = recs.iter().filter(|r| r.get("event") == "auth").collect();
    assert!(!auth.is_empty(), "{events:?}");
    for r in &auth {
        assert_eq!(r.get("outcome"), "rejected", "{r:?}");
        assert_eq!(r.severity, 5, "{r:?}");
        if kind == "journald" {
            // The exact name, in the length-framed form.
            assert_eq!(r.get("user"), FORGED);
            let mut framed = b"MSH_USER\n".to_vec();
            framed.extend_from_slice(&(FORGED.len() as u64).to_le_bytes());
            framed.extend_from_slice(FORGED.as_bytes());
            framed.push(b'\n');
            assert!(r.raw.windows(framed.len()).any(|w| w == framed.as_slice()));
        } else {
            // The JSON message keeps it exact; the datagram has no raw control byte
            // (checked in syslog_rec) and the SD-PARAM escapes them.
            assert_eq!(r.get("user"), FORGED);
            let text = String::from_utf8(r.raw.clone()).unwrap();
            assert!(
                text.contains(r#"user="x\\nMSH_EVENT=forged\\nPRIORITY=0\\n\\x00\"\] [msh@32473"#),
                "{text}"
            );
        }
    }
}

#[test]
fn journald_records_for_msh_and_ssh_logins_and_no_forged_fields() {
    logins_produce_records("journald", journald_rec);
}

#[test]
fn syslog_records_for_msh_and_ssh_logins_and_no_forged_fields() {
    logins_produce_records("syslog", syslog_rec);
}

/// A socket that is not there is a start-up error naming it, as an audit log file that
/// cannot be opened is.
#[test]
fn a_missing_audit_syslog_socket_stops_mshd_at_start_with_its_name() {
    let dir = TestDir::new("audit-missing");
    let key = ssh_keygen_ed25519(&dir, "host_ed25519");
    let missing = dir.join("no-such.sock");
    let config = dir.write(
        "mshd.toml",
        format!(
            "audit_syslog = \"journald\"\naudit_syslog_socket = \"{}\"\n",
            missing.display()
        ),
        0o644,
    );
    let mut c = cmd(bin("mshd"), ["--listen", "127.0.0.1:0"]);
    c.arg("--config").arg(&config).arg("--host-key").arg(&key);
    let out = run(c, b"", T);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    out.assert_stderr_contains(&format!(
        "audit_syslog = \"journald\": cannot reach the datagram socket {}",
        missing.display()
    ));
}

/// Stops the test's journald and removes its namespace's files.
struct Journald {
    proc: Option<Proc>,
    namespace: String,
}

impl Drop for Journald {
    fn drop(&mut self) {
        drop(self.proc.take());
        let _ = std::fs::remove_dir_all(format!("/run/systemd/journal.{}", self.namespace));
        if let Ok(id) = std::fs::read_to_string("/etc/machine-id") {
            for base in ["/var/log/journal", "/run/log/journal"] {
                let _ = std::fs::remove_dir_all(format!("{base}/{}.{}", id.trim(), self.namespace));
            }
        }
    }
}

/// The real systemd-journald, in a journal namespace of its own (`systemd-journald NS`
/// listens on /run/systemd/journal.NS/socket without systemd as PID 1): the refused and the
/// accepted login are found with `journalctl --namespace=NS MSH_EVENT=auth MSH_OUTCOME=...`,
/// and the forged name is one MSH_USER value.
#[test]
fn real_journald_stores_the_records_and_journalctl_finds_them_by_field() {
    if !msh_tests::users::require_root("real_journald_stores_the_records") {
        return;
    }
    let journald = Path::new("/lib/systemd/systemd-journald");
    assert!(
        journald.exists(),
        "{} missing: install systemd",
        journald.display()
    );
    let dir = TestDir::new("audit-real-journald");
    let namespace = format!("msht{}", std::process::id());
    let socket = format!("/run/systemd/journal.{namespace}/socket");
    let mut j = Journald {
        proc: None,
        namespace: namespace.clone(),
    };
    j.proc = Some(Proc::spawn(
        "journald",
        cmd(journald, [&namespace]),
        &dir.join("journald.log"),
    ));
    let start = Instant::now();
    while !Path::new(&socket).exists() {
        assert!(start.elapsed() < T, "journald made no {socket}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let d = Mshd::builder("audit-real-journald")
        .dir(dir)
        .toml("audit_syslog = \"journald\"")
        .toml(&format!("audit_syslog_socket = \"{socket}\""))
        .start();
    let wrong = ssh_keygen_ed25519(&d.dir, "id_wrong");
    let out = run(d.ssh(&[], "true"), b"", T);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let out = run(msh_with_key(&d, &wrong, "true"), b"", T);
    assert_eq!(out.code(), Some(255), "{}", out.stderr);
    let port = d.port.to_string();
    let key = wrong.display().to_string();
    probe(&["auth-names", "127.0.0.1", &port, &key, &hex(FORGED)], T);

    let query = |filters: &[&str]| -> Vec<serde_json::Value> {
        let mut c = cmd(tool("journalctl"), ["--no-pager", "-o", "json", "--all"]);
        c.arg(format!("--namespace={namespace}")).args(filters);
        let out = run(c, b"", T);
        out.stdout_str()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let start = Instant::now();
    let (accepted, rejected) = loop {
        let a = query(&["MSH_EVENT=auth", "MSH_OUTCOME=accepted"]);
        let r = query(&["MSH_EVENT=auth", "MSH_OUTCOME=rejected"]);
        if !a.is_empty() && r.len() >= 2 {
            break (a, r);
        }
        assert!(start.elapsed() < T, "journalctl found {a:?} and {r:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    let a = &accepted[0];
    assert_eq!(a["MSH_USER"], d.user.as_str());
    assert_eq!(a["PRIORITY"], "6");
    assert_eq!(a["SYSLOG_IDENTIFIER"], "mshd");
    assert_eq!(a["_TRANSPORT"], "journal");
    let fp = fingerprint_of(&d.dir.join("id_ed25519.pub"));
    assert_eq!(a["MSH_FINGERPRINT"], fp.as_str());
    assert!(
        a["MESSAGE"]
            .as_str()
            .is_some_and(|m| m.starts_with("audit auth accepted conn ")),
        "{a}"
    );
    assert!(
        rejected.iter().all(|r| r["PRIORITY"] == "5"),
        "{rejected:?}"
    );
    // journalctl -o json writes a value that is not printable text as an array of bytes.
    let forged: Vec<u8> = FORGED.bytes().collect();
    let users: Vec<Vec<u8>> = rejected
        .iter()
        .map(|r| match &r["MSH_USER"] {
            serde_json::Value::String(s) => s.as_bytes().to_vec(),
            serde_json::Value::Array(b) => b.iter().map(|x| x.as_u64().unwrap() as u8).collect(),
            other => panic!("MSH_USER {other}"),
        })
        .collect();
    assert!(users.contains(&d.user.as_bytes().to_vec()), "{users:?}");
    assert!(users.contains(&forged), "{rejected:?}");
    // Nothing forged a record or a field.
    assert!(query(&["MSH_EVENT=forged"]).is_empty());
    let all = query(&["SYSLOG_IDENTIFIER=mshd"]);
    assert!(
        all.iter()
            .all(|r| r["MSH_OUTCOME"] != "accepted" || r["MSH_USER"] == d.user.as_str()),
        "{all:?}"
    );
    drop(d);
    drop(j);
}

/// `GET /metrics` from mshd's endpoint: the value of `series` (0 when absent).
fn metric(addr: &str, series: &str) -> f64 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: mshd\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// The daemon goes away: records are lost without holding up a login, counted in
/// `mshd_audit_syslog_dropped_total{sink}`, logged once (not per record); when it is back the
/// count arrives as an `audit_dropped` record. SIGHUP then switches the format.
#[test]
fn lost_records_are_counted_logged_once_and_reported_and_sighup_switches_the_format() {
    let dir = TestDir::new("audit-loss");
    let path = dir.join("audit.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    let metrics = format!("127.0.0.1:{}", msh_tests::free_port());
    let d = Mshd::builder("audit-loss")
        .dir(dir)
        .toml("audit_syslog = \"journald\"")
        .toml(&format!("audit_syslog_socket = \"{}\"", path.display()))
        .toml(&format!("metrics_listen = \"{metrics}\""))
        .start();
    d.wait_for_log("metrics on http://", T);
    drop(sock);
    std::fs::remove_file(&path).unwrap();
    for _ in 0..2 {
        let out = run(d.ssh(&[], "echo hi"), b"", T);
        assert_eq!(out.code(), Some(0), "{}", out.stderr);
    }
    let series = "mshd_audit_syslog_dropped_total{sink=\"journald\"}";
    // The disconnect record follows the client's exit: wait for the count to settle.
    let start = Instant::now();
    let mut lost = metric(&metrics, series);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = metric(&metrics, series);
        if now == lost && now >= 10.0 {
            break;
        }
        assert!(start.elapsed() < T, "{series} = {now}");
        lost = now;
    }
    let log = d.log_text();
    assert_eq!(
        log.matches("cannot send to").count(),
        1,
        "not logged exactly once:\n{log}"
    );
    // Back: the next record goes through, then the count.
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(T)).unwrap();
    let sink = Sink {
        sock,
        parse: journald_rec,
    };
    let out = run(d.ssh(&[], "true"), b"", T);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let first = sink.next();
    assert_eq!(first.get("event"), "connect", "{first:?}");
    let dropped = sink.next();
    assert_eq!(dropped.get("event"), "audit_dropped", "{dropped:?}");
    assert_eq!(dropped.get("dropped"), (lost as u64).to_string());
    assert_eq!(dropped.severity, 4);
    sink.connection();

    // SIGHUP to syslog: the next login's records are RFC 5424.
    let text = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(&d.config, text.replace("\"journald\"", "\"syslog\"")).unwrap();
    d.proc.signal(nix::sys::signal::Signal::SIGHUP);
    d.wait_for_log("configuration reloaded", T);
    let sink = Sink {
        sock: sink.sock,
        parse: syslog_rec,
    };
    let out = run(d.ssh(&[], "true"), b"", T);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let recs = sink.connection();
    assert!(
        recs.iter()
            .any(|r| r.get("event") == "auth" && r.get("outcome") == "accepted"),
        "{recs:?}"
    );
}
