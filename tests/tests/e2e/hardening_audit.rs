//! Issue 4, part 6: the audit log of a real session follows schema v1 (server/README.md) and
//! holds no secrets; a stalled audit log never blocks a login or a command.

use std::time::{Duration, Instant};

use msh_tests::mshd::{probe_cmd, Mshd};
use msh_tests::{run, Proc, TestDir};
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

fn str_field<'a>(e: &'a Value, k: &str) -> &'a str {
    e[k].as_str()
        .unwrap_or_else(|| panic!("field {k:?} missing or not a string in {e}"))
}

fn num_field(e: &Value, k: &str) -> u64 {
    e[k].as_u64()
        .unwrap_or_else(|| panic!("field {k:?} missing or not a number in {e}"))
}

#[test]
fn audit_events_of_a_real_session_follow_schema_v1_and_hold_no_secrets() {
    let d = Mshd::builder("audit-schema").audit_log().start();
    let secret = "SESSION-DATA-7f3a9c-never-in-the-audit-log";
    let out = run(d.ssh(&["-T"], "cat"), secret.as_bytes(), T);
    assert_eq!(out.stdout_str(), secret, "{}", out.stderr);
    let ev = d.wait_for_audit("disconnect", 1, T);
    // The session's connection is the one with a session_start.
    let start = ev
        .iter()
        .find(|e| e["event"] == "session_start")
        .unwrap_or_else(|| panic!("no session_start: {ev:?}"));
    let conn = num_field(start, "conn_id");
    let mine: Vec<&Value> = ev.iter().filter(|e| e["conn_id"] == conn).collect();
    let kinds: Vec<&str> = mine.iter().map(|e| str_field(e, "event")).collect();
    assert_eq!(kinds.first(), Some(&"connect"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"disconnect"), "{kinds:?}");
    let pos = |k: &str| kinds.iter().position(|x| *x == k).unwrap_or(usize::MAX);
    assert!(
        pos("connect") < pos("auth")
            && pos("auth") < pos("session_start")
            && pos("session_start") < pos("session_end")
            && pos("session_end") < pos("disconnect"),
        "events out of order: {kinds:?}"
    );
    let peer = str_field(mine[0], "peer").to_string();
    assert!(peer.starts_with("127.0.0.1:"), "{peer}");
    let fp = msh_tests::mshd::fingerprint_of(&d.dir.join("id_ed25519.pub"));
    for e in &mine {
        assert_eq!(e["v"], 1, "{e}");
        let ts = str_field(e, "ts");
        assert!(
            ts.len() == 24 && ts.ends_with('Z') && &ts[10..11] == "T",
            "ts not RFC 3339 UTC with ms: {ts}"
        );
        assert_eq!(
            str_field(e, "peer"),
            peer,
            "peer changes within a connection: {e}"
        );
        match str_field(e, "event") {
            "connect" => {}
            "auth" => {
                assert_eq!(str_field(e, "user"), d.user);
                assert_eq!(str_field(e, "method"), "publickey");
                assert_eq!(str_field(e, "key_type"), "ssh-ed25519");
                assert_eq!(str_field(e, "fingerprint"), fp);
                assert!(
                    ["accepted", "rejected"].contains(&str_field(e, "outcome")),
                    "{e}"
                );
                str_field(e, "reason");
            }
            "session_start" => {
                assert_eq!(str_field(e, "user"), d.user);
                assert_eq!(str_field(e, "command"), "cat");
                assert_eq!(e["pty"], false, "{e}");
            }
            "session_end" => {
                assert_eq!(str_field(e, "user"), d.user);
                assert_eq!(num_field(e, "exit_status"), 0);
                assert_eq!(num_field(e, "bytes_in"), secret.len() as u64, "{e}");
                assert_eq!(num_field(e, "bytes_out"), secret.len() as u64, "{e}");
                num_field(e, "duration_ms");
            }
            "disconnect" => {
                str_field(e, "reason");
            }
            other => panic!("undocumented event {other:?}: {e}"),
        }
    }
    assert!(mine.iter().any(|e| e["outcome"] == "accepted"), "{kinds:?}");
    // No secrets: neither the session's data nor any line of a private key.
    let text = std::fs::read_to_string(d.audit_path()).unwrap();
    assert!(!text.contains(secret), "session data in the audit log");
    for key in [&d.client_key, &d.host_key] {
        let pem = std::fs::read_to_string(key).unwrap();
        for line in pem
            .lines()
            .filter(|l| !l.starts_with("-----") && l.len() > 16)
        {
            assert!(
                !text.contains(line),
                "private key material of {} in the audit log",
                key.display()
            );
        }
    }
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(d.audit_path()).unwrap().mode() & 0o777,
        0o600
    );
}

#[test]
fn a_stalled_audit_log_does_not_stop_a_login_and_a_command() {
    let dir = TestDir::new("audit-fifo");
    let fifo = dir.join("audit.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let drain = dir.join("drain");
    let drained = dir.join("drained.txt");
    let holder = Proc::spawn(
        "fifo-holder",
        probe_cmd(&[
            "fifo-hold",
            fifo.to_str().unwrap(),
            drain.to_str().unwrap(),
            drained.to_str().unwrap(),
        ]),
        &dir.join("holder.log"),
    );
    holder.wait_for_log("full ", T);
    let d = Mshd::builder("audit-fifo")
        .dir(dir)
        .arg("--audit-log")
        .arg(fifo.to_str().unwrap())
        .start();
    // The pipe is full and nobody reads it: every audit write blocks from now on.
    for i in 0..3 {
        let start = Instant::now();
        let out = run(d.ssh(&["-T"], &format!("echo through-{i}")), b"", T);
        println!(
            "login + command {i} with a stalled audit log: {:?}",
            start.elapsed()
        );
        assert_eq!(out.stdout_str(), format!("through-{i}\n"), "{}", out.stderr);
    }
    // Nothing was lost while stalled (the queue held it): once drained, the events arrive.
    std::fs::write(&drain, "").unwrap();
    let deadline = Instant::now() + T;
    loop {
        let text = std::fs::read_to_string(&drained).unwrap_or_default();
        if text.contains("\"command\":\"echo through-2\"") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "queued audit events never arrived: {text:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(d);
    drop(holder);
}
