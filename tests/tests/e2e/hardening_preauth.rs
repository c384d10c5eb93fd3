//! Issue 4, part 1: nothing of the connection protocol is acted on before authentication, and
//! the transport refuses known key-exchange attacks. Each attack is played from the wire by
//! tests/probes/sshprobe.py (paramiko after kex, raw packets before it); the command it tries
//! to run would create a marker file, so "the file does not exist" + "no session_start in the
//! audit log" is the proof. Every test also runs the matching legitimate sequence, so the
//! probe and the marker are shown to work (a probe that silently did nothing cannot pass).

use std::time::Duration;

use msh_tests::mshd::{probe, Mshd};
use msh_tests::{run, ssh_keygen_ed25519};
use serde_json::Value;

const T: Duration = Duration::from_secs(60);

fn sessions_started(d: &Mshd) -> usize {
    d.audit_events()
        .iter()
        .filter(|e| e["event"] == "session_start")
        .count()
}

fn types(v: &Value) -> Vec<u64> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

/// The legitimate login + exec with the authorized key creates `marker` (the control).
fn control_login_creates(d: &Mshd, marker: &std::path::Path) {
    let port = d.port.to_string();
    let key = d.client_key.display().to_string();
    let cmd = format!("touch {} && echo done", marker.display());
    let r = probe(&["login-exec", "127.0.0.1", &port, &d.user, &key, &cmd], T);
    assert_eq!(r["signed"]["type"], 52, "control login failed: {r}");
    assert_eq!(r["exec"]["stdout"], "done\n", "{r}");
    assert!(
        marker.exists(),
        "control exec did not create its marker: {r}"
    );
}

#[test]
fn channel_open_exec_and_global_request_before_auth_are_ignored_cve_2025_32433() {
    let d = Mshd::builder("pre-chan").audit_log().start();
    let marker = d.dir.join("PWNED");
    let port = d.port.to_string();
    let r = probe(
        &[
            "preauth-channel",
            "127.0.0.1",
            &port,
            &format!("touch {}", marker.display()),
        ],
        T,
    );
    assert_eq!(r["service_accepted"], true, "{r}");
    let got = types(&r["received"]);
    // 91 CHANNEL_OPEN_CONFIRMATION (session or direct-tcpip), 81 REQUEST_SUCCESS (tcpip-forward),
    // 94 DATA, 98 exit-status: none may come.
    for bad in [91, 81, 94, 98, 99] {
        assert!(
            !got.contains(&bad),
            "server answered {bad} before auth: {r}"
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(!marker.exists(), "a command ran before authentication");
    assert_eq!(sessions_started(&d), 0, "{:?}", d.audit_events());

    control_login_creates(&d, &d.dir.join("control"));
    assert_eq!(sessions_started(&d), 1);
}

#[test]
fn client_sent_userauth_success_does_not_authenticate_cve_2018_10933() {
    let d = Mshd::builder("pre-success").audit_log().start();
    let marker = d.dir.join("PWNED");
    let r = d.probe_as_user(
        "client-userauth-success",
        &[&format!("touch {}", marker.display())],
        T,
    );
    assert_eq!(r["service_accepted"], true, "{r}");
    let got = types(&r["received"]);
    assert!(!got.contains(&91) && !got.contains(&52), "{r}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !marker.exists(),
        "USERAUTH_SUCCESS from the client opened a session"
    );
    assert_eq!(sessions_started(&d), 0, "{:?}", d.audit_events());
    assert!(
        !d.audit_events().iter().any(|e| e["outcome"] == "accepted"),
        "{:?}",
        d.audit_events()
    );

    control_login_creates(&d, &d.dir.join("control"));
}

#[test]
fn authorization_follows_the_key_that_signed_not_an_earlier_offer_cve_2024_45337() {
    let d = Mshd::builder("pre-offer").audit_log().start();
    let other = ssh_keygen_ed25519(&d.dir, "unauthorized");
    let other_fp = msh_tests::mshd::fingerprint_of(&d.dir.join("unauthorized.pub"));
    let marker = d.dir.join("PWNED");
    let r = d.probe_as_user(
        "offer-then-sign",
        &[
            &d.client_key.display().to_string(),
            &other.display().to_string(),
            &format!("touch {}", marker.display()),
        ],
        T,
    );
    // The authorized key A is acceptable (PK_OK) at the offer...
    assert_eq!(r["offer_a"]["type"], 60, "{r}");
    // ...but the request signed by the unauthorized key B fails.
    assert_eq!(r["signed_b"]["type"], 51, "{r}");
    assert_eq!(r["signed_b"]["methods"], "publickey", "{r}");
    assert!(!types(&r["after"]).contains(&91), "{r}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(!marker.exists());
    let ev = d.audit_events();
    assert_eq!(sessions_started(&d), 0, "{ev:?}");
    assert!(!ev.iter().any(|e| e["outcome"] == "accepted"), "{ev:?}");
    assert!(
        ev.iter().any(|e| e["event"] == "auth"
            && e["fingerprint"] == other_fp.as_str()
            && e["outcome"] == "rejected"),
        "no rejected auth event for the signing key {other_fp}: {ev:?}"
    );

    control_login_creates(&d, &d.dir.join("control"));
}

#[test]
fn requests_for_a_never_opened_channel_neither_run_nor_crash() {
    let d = Mshd::builder("unopened").audit_log().start();
    let marker = d.dir.join("PWNED");
    let r = d.probe_as_user(
        "unopened-channel-request",
        &[
            &d.client_key.display().to_string(),
            &format!("touch {}", marker.display()),
        ],
        T,
    );
    assert_eq!(r["signed"]["type"], 52, "{r}");
    assert!(!marker.exists(), "exec on a never-opened channel ran: {r}");
    // russh drops messages for unknown channels and the connection goes on (closing cleanly
    // would also be acceptable; a crash or a hang would not).
    assert_eq!(r["closed"], false, "{r}");
    assert_eq!(r["exec"]["stdout"], "still-alive\n", "{r}");
    // Other connections are unaffected and mshd still runs.
    let out = run(d.ssh(&["-T"], "echo other"), b"", T);
    assert_eq!(out.stdout_str(), "other\n", "{}", out.stderr);
    let mut d = d;
    assert!(d.proc.wait_timeout(Duration::from_millis(50)).is_none());
}

fn kex(d: &Mshd, strict: &str, ignore: &str, point: &str) -> Value {
    let port = d.port.to_string();
    probe(&["kex", "127.0.0.1", &port, strict, ignore, point], T)
}

#[test]
fn all_zero_curve25519_public_value_is_refused() {
    let d = Mshd::start("zero-x25519");
    let ok = kex(&d, "strict", "noignore", "valid");
    assert_eq!(
        ok["ecdh_reply"], true,
        "control: a valid point must get a reply: {ok}"
    );
    let r = kex(&d, "strict", "noignore", "zero");
    assert_eq!(
        r["ecdh_reply"], false,
        "all-zero public value accepted: {r}"
    );
    assert_eq!(r["closed"], true, "{r}");
}

#[test]
fn terrapin_ignore_before_kexinit_with_strict_kex_disconnects() {
    let d = Mshd::start("terrapin");
    let r = kex(&d, "strict", "ignore", "valid");
    assert_eq!(
        r["ecdh_reply"], false,
        "strict kex did not catch the IGNORE: {r}"
    );
    assert_eq!(r["closed"], true, "{r}");
    d.wait_for_log("strict kex violated", Duration::from_secs(5));
    // Controls: the same exchange without the IGNORE, and the IGNORE without strict kex
    // (allowed by RFC 4253), both go on.
    let ok = kex(&d, "strict", "noignore", "valid");
    assert_eq!(ok["ecdh_reply"], true, "{ok}");
    let lax = kex(&d, "nonstrict", "ignore", "valid");
    assert_eq!(lax["ecdh_reply"], true, "{lax}");
}
