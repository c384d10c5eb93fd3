//! Many msh processes recording new hosts in ONE known_hosts at the same time: 20 clients
//! with `accept-new`, each under its own HostKeyAlias, against an sshd and an mshd fixture.
//! Afterwards every one of the 20 lines is present, whole, and found by `ssh-keygen -F`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use msh_tests::mshd::Mshd;
use msh_tests::sshd::Sshd;
use msh_tests::*;

use crate::msh_to_sshd::msh_cmd;

const N: usize = 20;

#[test]
fn twenty_concurrent_accept_new_clients_lose_no_line() {
    let dir = TestDir::new("msh-kh-concurrent");
    let sshd = Sshd::start(&dir);
    let id = ssh_keygen_ed25519(&dir, "id_user");
    sshd.authorize(&id);
    // Ten clients at once from one address would meet mshd's startup limits (max_startups
    // 10:30:100, per_source_max_startups 5), which rightly drop some unauthenticated
    // connections: raise them for this test.
    let mshd = Mshd::builder("msh-kh-concurrent-mshd")
        .toml("max_startups = \"50:30:100\"")
        .toml("per_source_max_startups = 50")
        .start();
    let kh = dir.write("known_hosts", "# shared by 20 clients\n", 0o644);

    // Half the clients go to sshd, half to mshd; each records its own alias.
    let mut children = Vec::new();
    for i in 0..N {
        let alias = format!("alias{i}.test");
        let mut c: Command = if i % 2 == 0 {
            let mut c = msh_cmd(&dir, sshd.port, &sshd.user, &kh, &[]);
            c.arg("-i").arg(&id);
            c
        } else {
            let mut c = msh_cmd(&dir, mshd.port, &mshd.user, &kh, &[]);
            c.arg("-i").arg(&mshd.client_key);
            c
        };
        c.args([
            "-q",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=accept-new",
            "-o",
        ])
        .arg(format!("HostKeyAlias={alias}"))
        .args(["127.0.0.1", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        let child = c.spawn().expect("spawn msh");
        children.push(Proc {
            child,
            name: format!("msh {alias}"),
            log: None,
        });
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    for p in &mut children {
        let left = deadline.saturating_duration_since(Instant::now());
        let st = p
            .wait_timeout(left)
            .unwrap_or_else(|| panic!("{} did not finish", p.name));
        if !st.success() {
            let mut err = String::new();
            if let Some(e) = p.child.stderr.as_mut() {
                let _ = std::io::Read::read_to_string(e, &mut err);
            }
            panic!(
                "{} failed ({st}): {err}\nmshd log:\n{}",
                p.name,
                mshd.log_text()
            );
        }
    }

    let text = std::fs::read_to_string(&kh).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), N + 1, "known_hosts:\n{text}");
    assert_eq!(lines[0], "# shared by 20 clients");
    let sshd_key = &sshd.host_key("ed25519").public_line;
    let mshd_key: String = mshd
        .host_public
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    for i in 0..N {
        // As OpenSSH: a HostKeyAlias is recorded verbatim, without `[..]:port`.
        let name = format!("alias{i}.test");
        let want = if i % 2 == 0 { sshd_key } else { &mshd_key };
        let line = format!("{name} {want}");
        assert!(
            lines.iter().filter(|l| l.starts_with(&line)).count() == 1,
            "line for {name} missing or torn:\n{text}"
        );
        let found = run(
            cmd(
                tool("ssh-keygen"),
                ["-F", &name, "-f", kh.to_str().unwrap()],
            ),
            b"",
            Duration::from_secs(20),
        );
        assert_eq!(found.code(), Some(0), "ssh-keygen -F {name}: {text}");
    }
}
