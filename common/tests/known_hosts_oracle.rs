//! Oracle tests: the real `ssh-keygen -F / -H / -R` against our known_hosts matcher and
//! rewriter, on generated files. Disagreement with OpenSSH is a bug on our side unless the
//! test names it as a documented deviation.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use msh_common::known_hosts::verify::{entry_matches_name, find};
use msh_common::known_hosts::{check, write, HostKeyVerdict, KnownHostsFile, Line};
use russh::keys::PublicKey;
use support::{key_line, ssh_keygen, Dir};

/// A fresh key pair made by ssh-keygen; returns the public key line `type base64`.
fn gen_key(dir: &Dir, name: &str, ty: &str) -> String {
    key_line(dir, name, ty).1
}

struct Keys {
    ed1: String,
    ed2: String,
    ec1: String,
}

fn keys(dir: &Dir) -> Keys {
    Keys {
        ed1: gen_key(dir, "ed1", "ed25519"),
        ed2: gen_key(dir, "ed2", "ed25519"),
        ec1: gen_key(dir, "ec1", "ecdsa"),
    }
}

/// Runs ssh-keygen with `args`; returns (exit success, stdout, stderr).
fn run(args: &[&str], file: &Path) -> (bool, String, String) {
    let out = Command::new(ssh_keygen())
        .args(args)
        .arg("-f")
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Line numbers ssh-keygen reports as `# Host NAME found: line N ...`.
fn reported_lines(stdout: &str) -> BTreeSet<usize> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("# Host "))
        .filter_map(|l| l.split(": line ").nth(1))
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect()
}

fn ours_find(path: &Path, name: &str) -> BTreeSet<usize> {
    let f = KnownHostsFile::load(path).unwrap();
    // port 22: the name is used verbatim, as ssh-keygen -F uses it.
    find(&f, name, 22).iter().map(|e| e.line).collect()
}

/// Every kind of host field OpenSSH accepts, plus lines it (and we) reject.
fn mixed_file(k: &Keys) -> String {
    let Keys { ed1, ed2, ec1 } = k;
    format!(
        "# generated for the oracle\n\
         alpha {ed1}\n\
         alpha,beta.x {ed2} two names\n\
         \tgamma\t\t{ec1}   \n\
         *.x {ed1}\n\
         *.x,!bad.x {ed2}\n\
         !beta.x,*.x {ec1}\n\
         web?? {ed1}\n\
         ALPHA {ec1}\n\
         [alpha]:2222 {ed1}\n\
         [*.x]:2200,delta {ed2}\n\
         [alpha]:22 {ec1}\n\
         @cert-authority *.x {ed1}\n\
         @revoked alpha {ed2}\n\
         @revoked * {ec1}\n\
         \n\
         this line is not valid\n\
         @nonsense alpha {ed1}\n\
         alpha ssh-ed25519\n\
         10.0.0.? {ed1}\n\
         a*b*c {ed2}\n"
    )
}

const QUERIES: &[&str] = &[
    "alpha",
    "ALPHA",
    "beta.x",
    "bad.x",
    "good.x",
    "x",
    "gamma",
    "delta",
    "web01",
    "web1",
    "[alpha]:2222",
    "[alpha]:22",
    "[bad.x]:2200",
    "[alpha]:2200",
    "10.0.0.5",
    "10.0.0.55",
    "aXXbYYc",
    "ab",
    "nobody",
];

#[test]
fn find_agrees_with_ssh_keygen_f_on_every_kind_of_line() {
    let dir = Dir::new("known-hosts-oracle");
    let k = keys(&dir);
    let path = dir.join("known_hosts");
    std::fs::write(&path, mixed_file(&k)).unwrap();
    // Spot checks, so that agreement on empty answers cannot pass for agreement.
    assert_eq!(ours_find(&path, "alpha"), BTreeSet::from([2, 3, 9, 14, 15]));
    assert_eq!(ours_find(&path, "bad.x"), BTreeSet::from([5, 7, 13, 15]));
    assert_eq!(ours_find(&path, "[bad.x]:2200"), BTreeSet::from([11, 15]));
    for name in QUERIES {
        let (_, stdout, _) = run(&["-F", name], &path);
        assert_eq!(
            ours_find(&path, name),
            reported_lines(&stdout),
            "lines matching {name:?} (ssh-keygen said:\n{stdout})"
        );
    }
}

#[test]
fn invalid_lines_are_the_ones_ssh_keygen_rejects() {
    let dir = Dir::new("known-hosts-oracle");
    let k = keys(&dir);
    let path = dir.join("known_hosts");
    std::fs::write(&path, mixed_file(&k)).unwrap();
    // ssh-keygen -R names every invalid line as "FILE:N: invalid line" and refuses to rewrite.
    let (_, _, stderr) = run(&["-R", "alpha"], &path);
    let theirs: BTreeSet<usize> = stderr
        .lines()
        .filter(|l| l.ends_with(": invalid line"))
        .map(|l| l.rsplit(':').nth(1).unwrap().parse().unwrap())
        .collect();
    let f = KnownHostsFile::load(&path).unwrap();
    let ours: BTreeSet<usize> = f
        .lines
        .iter()
        .filter_map(|l| match l {
            Line::Invalid { line, .. } => Some(*line),
            _ => None,
        })
        .collect();
    assert_eq!(ours, theirs, "ssh-keygen: {stderr}");
    assert_eq!(ours, BTreeSet::from([17, 18, 19]));
}

#[test]
fn names_hashed_by_ssh_keygen_match_in_ours_and_ours_in_ssh_keygen() {
    let dir = Dir::new("known-hosts-oracle");
    let k = keys(&dir);
    let names = [
        "host1",
        "web.example.org",
        "[h.example]:2222",
        "10.1.2.3",
        "[::1]:22022",
    ];
    // Their hashing, our matching.
    let theirs = dir.join("theirs");
    let text: String = names.iter().map(|n| format!("{n} {}\n", k.ed1)).collect();
    std::fs::write(&theirs, &text).unwrap();
    let (ok, _, stderr) = run(&["-H"], &theirs);
    assert!(ok, "ssh-keygen -H: {stderr}");
    let f = KnownHostsFile::load(&theirs).unwrap();
    assert_eq!(f.entries().count(), names.len());
    let ed1 = PublicKey::from_openssh(&k.ed1).unwrap();
    for (i, n) in names.iter().enumerate() {
        let e = f.entries().nth(i).unwrap();
        assert!(e.text.starts_with("|1|"), "{}", e.text);
        assert!(
            entry_matches_name(e, n),
            "ssh-keygen's hash of {n} not matched"
        );
        assert!(!entry_matches_name(e, "other"), "{n}");
    }
    assert!(matches!(
        check(std::slice::from_ref(&f), "h.example", 2222, &ed1),
        HostKeyVerdict::Trusted { line: 3, .. }
    ));

    // Our hashing (append and hash_file), their matching.
    let ours = dir.join("ours");
    for (n, port) in [("host1", 22), ("web.example.org", 22), ("h.example", 2222)] {
        write::append(&ours, n, port, &ed1, true).unwrap();
    }
    let plain = dir.join("plain");
    std::fs::write(&plain, "10.1.2.3,[::1]:22022 ".to_string() + &k.ed1 + "\n").unwrap();
    assert_eq!(write::hash_file(&plain).unwrap(), 2);
    for (file, name, line) in [
        (&ours, "host1", 1),
        (&ours, "web.example.org", 2),
        (&ours, "[h.example]:2222", 3),
        (&plain, "10.1.2.3", 1),
        (&plain, "[::1]:22022", 2),
    ] {
        let (ok, stdout, stderr) = run(&["-F", name], file);
        assert!(ok, "ssh-keygen -F {name}: {stderr}");
        assert_eq!(reported_lines(&stdout), BTreeSet::from([line]), "{name}");
    }
    let (ok, stdout, _) = run(&["-F", "h.example"], &ours);
    assert!(
        !ok && stdout.is_empty(),
        "portless name must not match [h.example]:2222"
    );
}

/// Applies `ssh-keygen -H` and our `hash_file` to copies of one file; the results must
/// differ only in the random salts: the same lines kept verbatim in the same places, and
/// hashed lines for the same names with the same remainder.
#[test]
fn hash_file_agrees_with_ssh_keygen_h() {
    let dir = Dir::new("known-hosts-oracle");
    let k = keys(&dir);
    // ssh-keygen -H refuses files with invalid lines: this one has none.
    let text: String = mixed_file(&k)
        .lines()
        .filter(|l| {
            !(l.starts_with("this") || l.starts_with("@nonsense") || l.ends_with("ssh-ed25519"))
        })
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        + &format!(
            "|1|qZaw0aoYr7jXH7lo4ydmJks89Lk=|cVKnaU44jy1CpcCQhg7jT8LORWQ= {}\n",
            k.ed2
        );
    let theirs = dir.join("theirs");
    let ours = dir.join("ours");
    std::fs::write(&theirs, &text).unwrap();
    std::fs::write(&ours, &text).unwrap();
    let (ok, _, stderr) = run(&["-H"], &theirs);
    assert!(ok, "ssh-keygen -H: {stderr}");
    let n = write::hash_file(&ours).unwrap();

    let t = std::fs::read_to_string(&theirs).unwrap();
    let o = std::fs::read_to_string(&ours).unwrap();
    let (tl, ol): (Vec<&str>, Vec<&str>) = (t.lines().collect(), o.lines().collect());
    assert_eq!(tl.len(), ol.len(), "theirs:\n{t}\nours:\n{o}");
    let mut hashed = 0;
    for (a, b) in tl.iter().zip(&ol) {
        if a.starts_with("|1|") && !text.contains(a) {
            // Hashed by both: same remainder after the host field.
            assert!(b.starts_with("|1|"), "{a}\n{b}");
            assert_eq!(a.split_once(' ').unwrap().1, b.split_once(' ').unwrap().1);
            hashed += 1;
        } else {
            assert_eq!(a, b);
        }
    }
    assert_eq!(hashed, n);
    // alpha, alpha, beta.x, gamma, ALPHA, [alpha]:2222, [alpha]:22.
    assert_eq!(n, 7);
    // Both .old files hold the input.
    assert_eq!(
        std::fs::read_to_string(dir.join("theirs.old")).unwrap(),
        text
    );
    assert_eq!(std::fs::read_to_string(dir.join("ours.old")).unwrap(), text);
    // The same hashed lines match the same names in both matchers (lowercase names: ssh
    // lowercases what it looks up, and so do we).
    for name in [
        "alpha",
        "beta.x",
        "gamma",
        "[alpha]:2222",
        "[alpha]:22",
        "good.x",
    ] {
        let (_, ts, _) = run(&["-F", name], &theirs);
        let (_, os, _) = run(&["-F", name], &ours);
        assert_eq!(reported_lines(&ts), reported_lines(&os), "{name}");
        assert_eq!(ours_find(&ours, name), reported_lines(&ts), "{name}");
        assert_eq!(ours_find(&theirs, name), reported_lines(&ts), "{name}");
    }
}

#[test]
fn remove_host_agrees_with_ssh_keygen_r() {
    let dir = Dir::new("known-hosts-oracle");
    let k = keys(&dir);
    let valid: String = mixed_file(&k)
        .lines()
        .filter(|l| {
            !(l.starts_with("this") || l.starts_with("@nonsense") || l.ends_with("ssh-ed25519"))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    // Hash a copy so that -R also meets hashed lines.
    let hashed_src = dir.join("hashed-src");
    std::fs::write(&hashed_src, &valid).unwrap();
    write::hash_file(&hashed_src).unwrap();
    let hashed = std::fs::read_to_string(&hashed_src).unwrap();

    for (label, text) in [("plain", &valid), ("hashed", &hashed)] {
        for name in QUERIES {
            // Deviation: for hashed lines ssh-keygen -R hashes the name as typed, so
            // `-R ALPHA` misses the hashed `alpha` that ssh itself would match (ssh
            // lowercases host names); ours lowercases, like ssh. Compared on lowercase only.
            if label == "hashed" && name.chars().any(|c| c.is_ascii_uppercase()) {
                continue;
            }
            let theirs = dir.join("theirs");
            let ours = dir.join("ours");
            for p in [&theirs, &ours] {
                std::fs::write(p, text).unwrap();
                let _ = std::fs::remove_file(p.with_extension("old"));
            }
            let (ok, stdout, stderr) = run(&["-R", name], &theirs);
            assert!(ok, "ssh-keygen -R {name}: {stderr}");
            let removed = write::remove_host(&ours, name, 22).unwrap();
            assert_eq!(
                std::fs::read_to_string(&ours).unwrap(),
                std::fs::read_to_string(&theirs).unwrap(),
                "{label} file after removing {name:?}"
            );
            assert_eq!(removed, reported_lines(&stdout).len(), "{label} {name}");
            let (t_old, o_old) = (dir.join("theirs.old"), dir.join("ours.old"));
            assert_eq!(t_old.exists(), o_old.exists(), "{label} {name}: .old kept?");
            if o_old.exists() {
                assert_eq!(std::fs::read_to_string(&o_old).unwrap(), *text);
            }
        }
    }
}
