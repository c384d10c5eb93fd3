//! Issue 4, part 2: connection limits with OpenSSH's meanings — max_auth_tries,
//! login_grace_time (unauthenticated connections only), max_startups, and
//! per_source_max_startups so that a flood from one address cannot lock out another.

use std::time::{Duration, Instant};

use msh_tests::mshd::{probe_cmd, Mshd};
use msh_tests::{run, ssh_keygen_ed25519, Proc};

const T: Duration = Duration::from_secs(60);

/// Holds `n` unauthenticated connections from 127.0.0.2 (each sends its version line and
/// then nothing, as a slowloris) until dropped; returns once they are made and counted.
fn flood(d: &Mshd, n: usize) -> (Proc, usize, usize) {
    let port = d.port.to_string();
    let count = n.to_string();
    let c = probe_cmd(&[
        "flood",
        "127.0.0.1",
        &port,
        "127.0.0.2",
        &count,
        "yes",
        "60",
    ]);
    let p = Proc::spawn("flood", c, &d.dir.join("flood.log"));
    let log = p.wait_for_log("closed ", Duration::from_secs(60));
    let num = |key: &str| -> usize {
        log.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {key:?} in flood log: {log}"))
    };
    (p, num("ready "), num("closed "))
}

#[test]
fn a_flood_of_idle_connections_from_one_address_does_not_lock_out_another() {
    let d = Mshd::start("flood");
    let (_flood, opened, closed) = flood(&d, 300);
    println!("flood from 127.0.0.2: {opened} connected, {closed} closed by mshd");
    // Default per_source_max_startups (5): 5 of the flood's connections run, 64 more wait
    // for a slot (the per-source queue that lets a burst from one address through), all
    // others are dropped.
    assert!(opened >= 290, "the flood could not connect: {opened}");
    assert!(
        opened - closed <= 5 + 64,
        "127.0.0.2 kept {} unauthenticated connections",
        opened - closed
    );
    d.wait_for_log("per_source_max_startups", Duration::from_secs(5));
    for i in 0..3 {
        let start = Instant::now();
        let out = run(d.ssh(&["-T"], "echo in"), b"", T);
        println!(
            "login {i} from 127.0.0.1 during the flood took {:?}",
            start.elapsed()
        );
        assert_eq!(out.code(), Some(0), "{}", out.stderr);
        assert_eq!(out.stdout_str(), "in\n");
    }
}

#[test]
fn without_the_per_source_limit_the_same_flood_locks_everyone_out() {
    // Shows what per_source_max_startups prevents (and that the flood above is a real one).
    let d = Mshd::builder("flood-nolimit")
        .toml("per_source_max_startups = 0")
        // start = full: no random early drop, so the outcome is certain.
        .toml("max_startups = \"50\"")
        .start();
    let (_flood, opened, closed) = flood(&d, 300);
    println!("flood: {opened} connected, {closed} closed by mshd");
    assert!(opened - closed >= 50, "max_startups full (50) not reached");
    let out = run(d.ssh(&["-T"], "echo in"), b"", T);
    assert_ne!(out.code(), Some(0), "login got through a full max_startups");
    d.wait_for_log("(max_startups 50:100:50)", Duration::from_secs(5));
}

#[test]
fn max_auth_tries_disconnects_after_that_many_failed_signatures() {
    let d = Mshd::builder("auth-tries")
        .toml("max_auth_tries = 3")
        .start();
    let bad = ssh_keygen_ed25519(&d.dir, "unauthorized");
    let r = d.probe_as_user("auth-tries", &[&bad.display().to_string(), "6"], T);
    let replies: Vec<u64> = r["replies"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_u64())
        .collect();
    assert_eq!(r["closed"], true, "not disconnected after 6 failures: {r}");
    assert!(
        replies.len() <= 3 && replies.iter().all(|t| *t == 51),
        "more than max_auth_tries (3) attempts answered: {r}"
    );
}

#[test]
fn login_grace_time_does_not_cut_an_authenticated_session() {
    let d = Mshd::builder("grace-authed")
        .toml("login_grace_time = \"1s\"")
        .start();
    let out = run(d.ssh(&["-T"], "sleep 2.5; echo survived"), b"", T);
    assert_eq!(out.stdout_str(), "survived\n", "{}", out.stderr);
}
