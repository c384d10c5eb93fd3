//! Tests of [`super`]: the journald and RFC 5424 encodings parsed back by readers written
//! from the protocol texts, and the non-blocking sender against real datagram sockets.

use super::*;
use crate::audit::{record, AuditEvent, Outcome};

/// A native-protocol datagram as journald reads it (journald-native.c): `NAME=value\n`, or
/// `NAME\n` + u64 LE length + value + `\n`. Panics on anything else.
fn parse_journald(mut d: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    while !d.is_empty() {
        let nl = d.iter().position(|&b| b == b'\n').expect("field not ended");
        let line = &d[..nl];
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            out.push((
                String::from_utf8(line[..eq].to_vec()).unwrap(),
                line[eq + 1..].to_vec(),
            ));
            d = &d[nl + 1..];
        } else {
            let name = String::from_utf8(line.to_vec()).unwrap();
            let rest = &d[nl + 1..];
            let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            out.push((name, rest[8..8 + len].to_vec()));
            assert_eq!(rest[8 + len], b'\n', "binary field not ended by a newline");
            d = &rest[8 + len + 1..];
        }
    }
    for (n, _) in &out {
        assert!(
            journald_name_ok(n),
            "journald would refuse the field name {n:?}"
        );
    }
    out
}

fn field<'a>(f: &'a [(String, Vec<u8>)], name: &str) -> Vec<&'a [u8]> {
    f.iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
        .collect()
}

/// RFC 5424 as a receiver parses it: header, one SD-ELEMENT (ID and params, with `\"`,
/// `\\`, `\]` unescaped as section 6.3.3 says), MSG.
struct Syslog {
    pri: u32,
    header: Vec<String>,
    sd_id: String,
    params: Vec<(String, String)>,
    msg: String,
}

fn parse_syslog(d: &[u8]) -> Syslog {
    let s = std::str::from_utf8(d).unwrap();
    let rest = s.strip_prefix('<').unwrap();
    let (pri, rest) = rest.split_once('>').unwrap();
    let mut parts = rest.splitn(7, ' ');
    let header: Vec<String> = (0..6).map(|_| parts.next().unwrap().to_string()).collect();
    let mut sd = parts.next().unwrap().chars().peekable();
    assert_eq!(sd.next(), Some('['));
    let mut sd_id = String::new();
    while let Some(&c) = sd.peek() {
        if c == ' ' || c == ']' {
            break;
        }
        sd_id.push(c);
        sd.next();
    }
    let mut params = Vec::new();
    loop {
        match sd.next() {
            Some(']') => break,
            Some(' ') => {}
            other => panic!("bad SD at {other:?}"),
        }
        let mut name = String::new();
        for c in sd.by_ref() {
            if c == '=' {
                break;
            }
            name.push(c);
        }
        assert_eq!(sd.next(), Some('"'));
        let mut value = String::new();
        loop {
            match sd.next().expect("unterminated PARAM-VALUE") {
                '\\' => match sd.peek() {
                    Some('"' | '\\' | ']') => value.push(sd.next().unwrap()),
                    _ => value.push('\\'),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        params.push((name, value));
    }
    assert_eq!(sd.next(), Some(' '), "no space before MSG");
    Syslog {
        pri: pri.parse().unwrap(),
        header,
        sd_id,
        params,
        msg: sd.collect(),
    }
}

fn auth(user: &str, outcome: Outcome) -> Map<String, Value> {
    record(
        7,
        "192.0.2.7:50000",
        &AuditEvent::Auth {
            user,
            method: "publickey",
            key_type: "ssh-ed25519",
            fingerprint: "SHA256:abc",
            outcome,
            reason: "not in authorized_keys",
            cert: None,
        },
    )
}

/// A user name that tries to end its field and add its own: a newline then `MSH_EVENT=`, a
/// NUL, a PRIORITY, and RFC 5424's closing quote and bracket.
const FORGED: &str =
    "x\nMSH_EVENT=forged\nPRIORITY=0\n\0MSH_OUTCOME=accepted\"] [msh@32473 outcome=\"accepted\"]";

#[test]
fn journald_fields_one_per_attribute_with_priority_and_identifier() {
    let f = parse_journald(&journald_datagram(&auth("alice", Outcome::Rejected)));
    let one = |n: &str| {
        let v = field(&f, n);
        assert_eq!(v.len(), 1, "{n}: {v:?}");
        String::from_utf8(v[0].to_vec()).unwrap()
    };
    assert_eq!(one("SYSLOG_IDENTIFIER"), "mshd");
    assert_eq!(one("PRIORITY"), "5");
    assert_eq!(one("SYSLOG_FACILITY"), "10");
    assert_eq!(one("MSH_EVENT"), "auth");
    assert_eq!(one("MSH_USER"), "alice");
    assert_eq!(one("MSH_OUTCOME"), "rejected");
    assert_eq!(one("MSH_PEER"), "192.0.2.7:50000");
    assert_eq!(one("MSH_CONN_ID"), "7");
    assert_eq!(one("MSH_FINGERPRINT"), "SHA256:abc");
    assert_eq!(one("MSH_V"), "1");
    assert_eq!(
        one("MESSAGE"),
        "audit auth rejected conn 7 from 192.0.2.7:50000: fingerprint=SHA256:abc \
         key_type=ssh-ed25519 method=publickey reason=\"not in authorized_keys\" user=alice"
    );
    // Every record key, and the four fixed fields, nothing else.
    assert_eq!(f.len(), auth("alice", Outcome::Rejected).len() + 4);
    let ok = parse_journald(&journald_datagram(&auth("alice", Outcome::Accepted)));
    assert_eq!(field(&ok, "PRIORITY"), [b"6"]);
}

#[test]
fn journald_value_with_a_newline_is_length_framed_and_forges_no_field() {
    let rec = auth(FORGED, Outcome::Rejected);
    let d = journald_datagram(&rec);
    // The exact binary framing for MSH_USER: name, newline, u64 LE length, bytes, newline.
    let mut want = b"MSH_USER\n".to_vec();
    want.extend_from_slice(&(FORGED.len() as u64).to_le_bytes());
    want.extend_from_slice(FORGED.as_bytes());
    want.push(b'\n');
    assert!(
        d.windows(want.len()).any(|w| w == want.as_slice()),
        "no length-framed MSH_USER in {:?}",
        String::from_utf8_lossy(&d)
    );
    let f = parse_journald(&d);
    assert_eq!(field(&f, "MSH_USER"), [FORGED.as_bytes()]);
    assert_eq!(field(&f, "MSH_EVENT"), [b"auth"]);
    assert_eq!(field(&f, "MSH_OUTCOME"), [b"rejected"]);
    assert_eq!(field(&f, "PRIORITY"), [b"5"]);
    assert_eq!(f.len(), rec.len() + 4, "{f:?}");
    // The summary stays one escaped line in the plain form.
    let msg = String::from_utf8(field(&f, "MESSAGE")[0].to_vec()).unwrap();
    assert!(!msg.contains('\n') && !msg.contains('\0'), "{msg:?}");
    assert!(
        msg.contains("user=\"x\\nMSH_EVENT=forged\\nPRIORITY=0\\n\\x00"),
        "{msg}"
    );
    // A NUL alone also takes the binary form.
    let nul = journald_datagram(&auth("a\0b", Outcome::Rejected));
    assert!(nul.windows(9).any(|w| w == b"MSH_USER\n"));
}

#[test]
fn syslog_is_rfc5424_authpriv_with_escaped_structured_data_and_the_json_as_msg() {
    let rec = auth(FORGED, Outcome::Rejected);
    let json = Value::Object(rec.clone()).to_string();
    let d = syslog_datagram(&rec, &json, "host1", 4242);
    assert!(!d.contains(&b'\n') && !d.contains(&0), "a raw control byte");
    let s = parse_syslog(&d);
    assert_eq!(s.pri, 10 * 8 + 5, "authpriv.notice");
    assert_eq!(s.header[0], "1");
    assert_eq!(s.header[1], rec["ts"].as_str().unwrap());
    assert_eq!(&s.header[2..], ["host1", "mshd", "4242", "auth"]);
    assert_eq!(s.sd_id, "msh@32473");
    let p = |n: &str| -> Vec<&str> {
        s.params
            .iter()
            .filter(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!(p("outcome"), ["rejected"]);
    assert_eq!(p("event"), ["auth"]);
    assert_eq!(p("conn_id"), ["7"]);
    // The user name, control characters escaped as in the text log, nothing forged.
    assert_eq!(
        p("user"),
        ["x\\nMSH_EVENT=forged\\nPRIORITY=0\\n\\x00MSH_OUTCOME=accepted\"] [msh@32473 outcome=\"accepted\"]"]
    );
    assert_eq!(
        s.params.len(),
        rec.len() - 1,
        "every key but ts: {:?}",
        s.params
    );
    // MSG is the JSON line, exact.
    assert_eq!(s.msg, json);
    let back: Value = serde_json::from_str(&s.msg).unwrap();
    assert_eq!(back["user"], FORGED);
    // A backslash survives unescaping as itself (doubled by the text-log escaping).
    let d = syslog_datagram(&auth("a\\b", Outcome::Accepted), "{}", "h", 1);
    let s = parse_syslog(&d);
    assert_eq!(s.pri, 86, "authpriv.info");
    assert!(s.params.contains(&("user".into(), "a\\\\b".into())));
}

#[test]
fn severities() {
    let ev = |e: &AuditEvent<'_>| severity(&record(1, "p", e));
    assert_eq!(ev(&AuditEvent::Connect), 6);
    assert_eq!(ev(&AuditEvent::AuditDropped { dropped: 2 }), 4);
    let fwd = |outcome| AuditEvent::ForwardOpen {
        user: "a",
        direction: "local",
        kind: "direct-tcpip",
        from: "f",
        to: "t",
        outcome,
        reason: "",
    };
    assert_eq!(ev(&fwd(Outcome::Rejected)), 5);
    assert_eq!(ev(&fwd(Outcome::Accepted)), 6);
}

fn temp_socket(name: &str) -> (PathBuf, UnixDatagram) {
    let dir = std::env::temp_dir().join(format!("msh-structured-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sock");
    let s = UnixDatagram::bind(&path).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    (path, s)
}

#[test]
fn a_missing_socket_is_refused_at_open_and_later_losses_are_counted_then_reported() {
    let missing = std::env::temp_dir().join("msh-structured-no-such-socket");
    let e = Structured::open(AuditSyslog::Journald, Some(&missing))
        .err()
        .unwrap();
    let text = format!("{e:#}");
    assert!(text.contains("msh-structured-no-such-socket") && text.contains("journald"));
    assert!(Structured::open(AuditSyslog::Off, Some(&missing))
        .unwrap()
        .is_none());

    let (path, rx) = temp_socket("loss");
    let s = Structured::open(AuditSyslog::Syslog, Some(&path))
        .unwrap()
        .unwrap();
    let rec = auth("alice", Outcome::Accepted);
    s.send(&rec, "{}");
    let mut buf = vec![0u8; 65536];
    let n = rx.recv(&mut buf).unwrap();
    assert_eq!(parse_syslog(&buf[..n]).header[5], "auth");
    // The daemon goes away: records are lost and counted, the sender never waits.
    drop(rx);
    std::fs::remove_file(&path).unwrap();
    for _ in 0..3 {
        s.send(&rec, "{}");
    }
    assert_eq!(s.lost.load(Ordering::SeqCst), 3);
    // It comes back at the same path: the next record goes through, then the count.
    let rx = UnixDatagram::bind(&path).unwrap();
    rx.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.send(&rec, "{}");
    let n = rx.recv(&mut buf).unwrap();
    assert_eq!(parse_syslog(&buf[..n]).header[5], "auth");
    let n = rx.recv(&mut buf).unwrap();
    let dropped = parse_syslog(&buf[..n]);
    assert_eq!(dropped.header[5], "audit_dropped");
    assert_eq!(dropped.pri, 84, "authpriv.warning");
    assert!(dropped.params.contains(&("dropped".into(), "3".into())));
    assert_eq!(s.lost.load(Ordering::SeqCst), 0);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn a_full_socket_never_blocks_the_sender() {
    let (path, rx) = temp_socket("full");
    let s = Structured::open(AuditSyslog::Journald, Some(&path))
        .unwrap()
        .unwrap();
    let rec = auth("alice", Outcome::Accepted);
    // Nobody reads: the receive queue fills (max_dgram_qlen, 512 by default) and sends fail
    // at once instead of waiting.
    for _ in 0..5000 {
        s.send(&rec, "{}");
    }
    assert!(s.lost.load(Ordering::SeqCst) > 0, "the queue never filled");
    drop(rx);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}
