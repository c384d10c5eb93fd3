//! Issue 4, part 4: mshd offers only modern algorithms, judged by an outside auditor
//! (`ssh-audit` 3.9 from PyPI, JSON output) and by the algorithm names themselves.

use std::time::Duration;

use msh_tests::mshd::{ssh_audit, Mshd};
use msh_tests::{cmd, run};
use serde_json::Value;

/// Runs ssh-audit against the fixture and returns its exit status and JSON report.
fn audit(d: &Mshd) -> (Option<i32>, Value) {
    let port = d.port.to_string();
    let c = cmd(
        ssh_audit(),
        ["-j", "--skip-rate-test", "-p", port.as_str(), "127.0.0.1"],
    );
    let out = run(c, b"", Duration::from_secs(60));
    // ssh-audit 3.9's exit status: 0 good, 2 warnings, 3 failures (ssh_audit/exitcodes.py).
    println!("ssh-audit exit status {:?}", out.code());
    let text = out.stdout_str();
    let v = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("ssh-audit printed no JSON ({e}): {text}\n{}", out.stderr));
    (out.code(), v)
}

/// (section, algorithm, level, note) for every warning and failure ssh-audit reported.
fn findings(report: &Value) -> Vec<(String, String, String, String)> {
    let mut v = Vec::new();
    for sec in ["kex", "key", "enc", "mac"] {
        for a in report[sec].as_array().into_iter().flatten() {
            let name = a["algorithm"].as_str().unwrap_or("?").to_string();
            for level in ["fail", "warn"] {
                for n in a["notes"][level].as_array().into_iter().flatten() {
                    v.push((
                        sec.to_string(),
                        name.clone(),
                        level.to_string(),
                        n.as_str().unwrap_or("?").to_string(),
                    ));
                }
            }
        }
    }
    v
}

fn names(report: &Value, sec: &str) -> Vec<String> {
    report[sec]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["algorithm"].as_str().map(str::to_string))
        .collect()
}

fn assert_only_modern(report: &Value) {
    let kex = names(report, "kex");
    assert_eq!(
        kex.first().map(String::as_str),
        Some("mlkem768x25519-sha256"),
        "{kex:?}"
    );
    assert!(
        kex.iter().any(|k| k == "kex-strict-s-v00@openssh.com"),
        "strict kex not offered: {kex:?}"
    );
    let all: Vec<String> = ["kex", "key", "enc", "mac"]
        .iter()
        .flat_map(|s| names(report, s))
        .collect();
    for a in &all {
        assert!(
            !(a.contains("cbc")
                || a.contains("sha1")
                || a == "ssh-rsa"
                || a.starts_with("ecdh-sha2-nistp")
                || a.starts_with("diffie-hellman")),
            "outdated algorithm offered: {a} (all: {all:?})"
        );
    }
    for m in names(report, "mac") {
        assert!(m.ends_with("-etm@openssh.com"), "non-EtM MAC offered: {m}");
    }
    assert_eq!(report["cves"], serde_json::json!([]), "{}", report["cves"]);
    assert_eq!(
        report["compression"],
        serde_json::json!(["none"]),
        "compression offered"
    );
}

#[test]
fn ssh_audit_reports_no_failure_and_warns_only_about_classical_curve25519() {
    let d = Mshd::start("ssh-audit");
    let (code, report) = audit(&d);
    assert_only_modern(&report);
    assert_eq!(code, Some(2), "ssh-audit: warnings expected, no failure");
    let f = findings(&report);
    println!("ssh-audit findings: {f:#?}");
    let fails: Vec<_> = f.iter().filter(|x| x.2 == "fail").collect();
    assert!(fails.is_empty(), "ssh-audit failures: {fails:#?}");
    for (sec, alg, _, note) in f.iter().filter(|x| x.2 == "warn") {
        assert!(
            sec == "kex" && alg.starts_with("curve25519-sha256"),
            "unexpected ssh-audit warning: {sec} {alg}: {note}"
        );
    }
    // The classical exchange is still there for OpenSSH < 9.9 (Debian 12's 9.2).
    assert!(names(&report, "kex").contains(&"curve25519-sha256".to_string()));
    let out = run(d.ssh(&["-T"], "echo ok"), b"", Duration::from_secs(20));
    assert_eq!(out.stdout_str(), "ok\n", "{}", out.stderr);
}

#[test]
fn post_quantum_only_removes_classical_kex_and_every_ssh_audit_warning() {
    let d = Mshd::builder("ssh-audit-pq")
        .toml("post_quantum_only = true")
        .start();
    let (code, report) = audit(&d);
    assert_only_modern(&report);
    assert_eq!(code, Some(0), "ssh-audit: all good expected");
    let f = findings(&report);
    assert!(
        f.is_empty(),
        "ssh-audit findings with post_quantum_only: {f:#?}"
    );
    let kex: Vec<String> = names(&report, "kex")
        .into_iter()
        .filter(|k| !k.starts_with("ext-info") && !k.starts_with("kex-strict"))
        .collect();
    assert_eq!(kex, vec!["mlkem768x25519-sha256".to_string()]);
    // The trade-off: an OpenSSH client without ML-KEM (< 9.9) cannot connect at all.
    let ssh_v = run(
        cmd(msh_tests::tool("ssh"), ["-V"]),
        b"",
        Duration::from_secs(5),
    );
    let mut c = d.ssh(&["-T"], "echo ok");
    c.args(["-o", "KexAlgorithms=curve25519-sha256"]);
    let out = run(c, b"", Duration::from_secs(20));
    assert_ne!(out.code(), Some(0), "{}", ssh_v.stderr);
    out.assert_stderr_contains("no matching key exchange method");
}
