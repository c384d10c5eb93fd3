//! msh-keygen against OpenSSH's ssh-keygen and sshd: keys each writes the other reads with the
//! same fingerprint; `scan` sees the fixture sshd's host keys; known_hosts find/remove/hash
//! give the same output, exit codes and file contents as `ssh-keygen -F/-R/-H`. Also checks the
//! sshd fixture itself with the real `ssh` client, so a broken fixture fails loudly here.

use std::time::Duration;

use msh_tests::sshd::{Sshd, SshdOptions};
use msh_tests::*;

const T: Duration = Duration::from_secs(30);

/// The fixture must accept a real `ssh` login with a key in its authorized_keys, verify as the
/// host in known_hosts, and refuse a key that is not authorized.
#[test]
fn sshd_fixture_accepts_real_ssh_with_authorized_key_only() {
    let dir = TestDir::new("sshd-fixture");
    let sshd = Sshd::start_with(
        &dir,
        SshdOptions {
            host_key_types: vec!["ed25519".into(), "ecdsa".into()],
            ..Default::default()
        },
    );
    let good = ssh_keygen_ed25519(&dir, "id_good");
    let bad = ssh_keygen_ed25519(&dir, "id_bad");
    sshd.authorize(&good);
    let kh = sshd.write_known_hosts(&dir.join("known_hosts"));

    let out = run(
        sshd.ssh_command(&good, &kh, "echo fixture-ok; exit 7"),
        b"",
        T,
    );
    assert_eq!(
        (out.code(), out.stdout_str().as_str()),
        (Some(7), "fixture-ok\n"),
        "ssh stderr: {}\nsshd log:\n{}",
        out.stderr,
        sshd.log()
    );

    let out = run(sshd.ssh_command(&bad, &kh, "echo must-not-run"), b"", T);
    assert_eq!(out.code(), Some(255), "unauthorized key got in: {out:?}");
    out.assert_stderr_contains("Permission denied");
    assert!(out.stdout.is_empty());

    // A known_hosts with another key for the host: ssh refuses, so the fixture's host key
    // really is the one in `host_keys`.
    ssh_keygen_ed25519(&dir, "not_the_host_key");
    let other_pub = std::fs::read_to_string(dir.join("not_the_host_key.pub")).unwrap();
    let wrong_kh = dir.write(
        "wrong_known_hosts",
        format!("[127.0.0.1]:{} {}\n", sshd.port, other_pub.trim()),
        0o644,
    );
    let out = run(sshd.ssh_command(&good, &wrong_kh, "true"), b"", T);
    assert_eq!(out.code(), Some(255), "{out:?}");
    assert!(
        out.stderr.contains("HOST IDENTIFICATION HAS CHANGED")
            || out.stderr.contains("Host key verification failed"),
        "{}",
        out.stderr
    );
}

/// Extra config lines take effect (they come before the fixture's own, so they win), and a
/// Match block in them lands at the end of the file where sshd accepts it.
#[test]
fn sshd_fixture_applies_extra_config_and_match_blocks() {
    let dir = TestDir::new("sshd-extra");
    let sshd = Sshd::start_with(
        &dir,
        SshdOptions {
            extra_config: vec![
                "ForceCommand echo forced-by-extra-config".into(),
                "Match User nobody-at-all".into(),
                "  ForceCommand false".into(),
            ],
            ..Default::default()
        },
    );
    let id = ssh_keygen_ed25519(&dir, "id");
    sshd.authorize(&id);
    let kh = sshd.write_known_hosts(&dir.join("known_hosts"));
    let out = run(sshd.ssh_command(&id, &kh, "echo not-forced"), b"", T);
    assert_eq!(
        out.stdout_str(),
        "forced-by-extra-config\n",
        "{}\n{}",
        out.stderr,
        sshd.log()
    );
    let config = std::fs::read_to_string(&sshd.config).unwrap();
    assert!(
        config
            .trim_end()
            .ends_with("Match User nobody-at-all\n  ForceCommand false"),
        "{config}"
    );
}

fn keygen<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    run(cmd(bin("msh-keygen"), args), b"", T)
}

fn ssh_keygen<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    run(cmd(tool("ssh-keygen"), args), b"", T)
}

fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn s(p: &std::path::Path) -> String {
    p.to_str().unwrap().to_string()
}

/// (type, -b) pairs covering every kind msh-keygen makes.
const KINDS: &[(&str, Option<&str>)] = &[
    ("ed25519", None),
    ("ecdsa", None),
    ("ecdsa", Some("384")),
    ("ecdsa", Some("521")),
    ("rsa", None),
];

/// Keys msh-keygen writes are read by OpenSSH: `ssh-keygen -y` recovers the public key (only
/// with the right passphrase when encrypted), `ssh-keygen -l` prints what `msh-keygen
/// fingerprint` prints, and the files have modes 0600 / 0644.
#[test]
fn generated_keys_are_read_by_ssh_keygen() {
    let dir = TestDir::new("keygen-gen");
    for (i, (t, bits)) in KINDS.iter().enumerate() {
        for pass in [None, Some("correct horse")] {
            let path = dir.join(format!("k{i}-{}", pass.is_some()));
            let comment = format!("test key {t} {i}");
            let mut args = vec!["generate".to_string(), "-t".into(), t.to_string()];
            if let Some(b) = bits {
                args.extend(["-b".into(), b.to_string()]);
            }
            args.extend(["-f".into(), s(&path), "-C".into(), comment.clone()]);
            if let Some(p) = pass {
                args.extend(["-N".into(), p.to_string()]);
            }
            let out = keygen(&args);
            assert_eq!(out.code(), Some(0), "{args:?}: {}", out.stderr);
            let pub_path = dir.join(format!("k{i}-{}.pub", pass.is_some()));
            assert_eq!(mode(&path), 0o600, "{args:?}");
            assert_eq!(mode(&pub_path), 0o644, "{args:?}");
            let pub_line = std::fs::read_to_string(&pub_path).unwrap();
            assert!(pub_line.ends_with(&format!(" {comment}\n")), "{pub_line}");

            // ssh-keygen -y derives the same public key from the private file.
            let out = ssh_keygen(["-y", "-P", pass.unwrap_or(""), "-f", &s(&path)]);
            assert_eq!(out.code(), Some(0), "{args:?}: {}", out.stderr);
            let derived = out.stdout_str();
            let fields = |l: &str| l.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
            assert_eq!(fields(&derived), fields(&pub_line), "{args:?}");
            if pass.is_some() {
                let out = ssh_keygen(["-y", "-P", "wrong", "-f", &s(&path)]);
                assert_ne!(
                    out.code(),
                    Some(0),
                    "wrong passphrase accepted for {args:?}"
                );
                assert!(out.stdout.is_empty());
            }

            // Same fingerprint line from both tools, for the .pub and the private file.
            for f in [&pub_path, &path] {
                let theirs = ssh_keygen(["-l", "-f", &s(f)]);
                let ours = keygen(["fingerprint", &s(f)]);
                assert_eq!(theirs.code(), Some(0), "{}", theirs.stderr);
                assert_eq!(ours.code(), Some(0), "{}", ours.stderr);
                assert_eq!(ours.stdout_str(), theirs.stdout_str(), "{}", f.display());
                assert!(ours
                    .stdout_str()
                    .ends_with(&format!(" {comment} ({})\n", t.to_uppercase())));
            }
        }
    }
}

/// Without -N and without a terminal, the key is written unencrypted (as documented).
#[test]
fn generate_without_tty_or_passphrase_writes_unencrypted_key() {
    let dir = TestDir::new("keygen-notty");
    let path = dir.join("id");
    let out = keygen(["generate", "-f", &s(&path), "-C", "c"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let out = ssh_keygen(["-y", "-P", "", "-f", &s(&path)]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(out.stdout_str().starts_with("ssh-ed25519 "));
}

/// A key saved in a missing `~/.ssh` creates it (0700) and says so in ssh-keygen's words
/// (ssh-keygen does the same for its user's home from the passwd entry; msh follows `$HOME`,
/// as everywhere else); any other missing directory is still refused with the command that
/// creates it.
#[test]
fn generate_creates_a_missing_dot_ssh_0700_like_ssh_keygen() {
    let dir = TestDir::new("keygen-dotssh");
    let home = dir.join("home");
    std::fs::create_dir(&home).unwrap();
    let key = home.join(".ssh/id_ed25519");
    let mut c = cmd(bin("msh-keygen"), ["generate", "-N", "", "-f", &s(&key)]);
    c.env("HOME", &home);
    let out = run(c, b"", T);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(
        out.stdout_str().starts_with(&format!(
            "Created directory '{}'.\n",
            home.join(".ssh").display()
        )),
        "{}",
        out.stdout_str()
    );
    assert_eq!(mode(&home.join(".ssh")), 0o700);
    let out = ssh_keygen(["-y", "-P", "", "-f", &s(&key)]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);

    let elsewhere = home.join("missing/id");
    let mut c = cmd(
        bin("msh-keygen"),
        ["generate", "-N", "", "-f", &s(&elsewhere)],
    );
    c.env("HOME", &home);
    let out = run(c, b"", T);
    assert_eq!(out.code(), Some(1));
    assert!(
        out.stderr
            .contains("does not exist; create it first (mkdir -m 700 -p"),
        "{}",
        out.stderr
    );
    assert!(!home.join("missing").exists());
}

/// Keys ssh-keygen writes (every type, encrypted or not, with or without the .pub beside
/// them) get the same fingerprint line from msh-keygen.
#[test]
fn ssh_keygen_keys_fingerprint_identically() {
    let dir = TestDir::new("keygen-fp");
    for (i, (t, bits)) in KINDS.iter().enumerate() {
        for pass in ["", "pw"] {
            let path = dir.join(format!("o{i}{pass}"));
            let mut args = vec!["-q", "-t", t, "-N", pass, "-C", "made by openssh"];
            if let Some(b) = bits {
                args.extend(["-b", b]);
            }
            let p = s(&path);
            args.extend(["-f", &p]);
            let out = ssh_keygen(&args);
            assert_eq!(out.code(), Some(0), "{}", out.stderr);
            let pub_path = format!("{p}.pub");
            for f in [&pub_path, &p] {
                let theirs = ssh_keygen(["-l", "-f", f]);
                let ours = keygen(["fingerprint", f]);
                assert_eq!(ours.code(), Some(0), "{f}: {}", ours.stderr);
                assert_eq!(ours.stdout_str(), theirs.stdout_str(), "{f}");
            }
            // Private file alone: the public half inside it (comment only when unencrypted).
            std::fs::remove_file(&pub_path).unwrap();
            let theirs = ssh_keygen(["-l", "-f", &p]);
            let ours = keygen(["fingerprint", &p]);
            assert_eq!(ours.code(), Some(0), "{p}: {}", ours.stderr);
            assert_eq!(ours.stdout_str(), theirs.stdout_str(), "{p} without .pub");
        }
    }
}

/// A file of many keys (authorized_keys with quoted options, known_hosts with host lists,
/// markers, comments, a garbage line) prints one line per key, as ssh-keygen -lf; a file
/// with no key is an error naming it.
#[test]
fn fingerprint_of_key_lists_matches_ssh_keygen() {
    let dir = TestDir::new("keygen-fplist");
    ssh_keygen_ed25519(&dir, "a");
    let a_pub = std::fs::read_to_string(dir.join("a.pub")).unwrap();
    let a_fields = public_key_fields(&dir.join("a.pub"));
    let out = ssh_keygen([
        "-q",
        "-t",
        "ecdsa",
        "-N",
        "",
        "-C",
        "",
        "-f",
        &s(&dir.join("e")),
    ]);
    assert_eq!(out.code(), Some(0));
    let e_fields = public_key_fields(&dir.join("e.pub"));
    let text = format!(
        "# authorized_keys style\n\
         command=\"echo a \\\"b c\\\"\",no-pty {a_fields} quoted options\n\
         restrict {e_fields}\n\
         \n\
         {a_pub}\
         this line is garbage\n\
         host1,[host2]:2222 {e_fields}\n\
         @revoked * {a_fields}\n\
         host3\t{a_fields}   comment  with  spaces\n"
    );
    let list = dir.write("list", text, 0o644);
    let theirs = ssh_keygen(["-l", "-f", &s(&list)]);
    let ours = keygen(["fingerprint", &s(&list)]);
    assert_eq!(theirs.code(), Some(0), "{}", theirs.stderr);
    assert_eq!(ours.code(), Some(0), "{}", ours.stderr);
    assert_eq!(ours.stdout_str(), theirs.stdout_str());
    assert_eq!(
        ours.stdout_str().lines().count(),
        5,
        "{}",
        ours.stdout_str()
    );
    // `-` reads standard input, as ssh-keygen -lf - does.
    let list_text = std::fs::read(&list).unwrap();
    let from_stdin = run(cmd(bin("msh-keygen"), ["fingerprint", "-"]), &list_text, T);
    let theirs_stdin = run(cmd(tool("ssh-keygen"), ["-l", "-f", "-"]), &list_text, T);
    assert_eq!(from_stdin.code(), Some(0), "{}", from_stdin.stderr);
    assert_eq!(from_stdin.stdout_str(), theirs_stdin.stdout_str());

    let junk = dir.write("junk", "not a key\n", 0o644);
    let out = keygen(["fingerprint", &s(&junk)]);
    assert_eq!(out.code(), Some(1));
    assert!(out.stdout.is_empty());
    out.assert_stderr_starts_with(&format!(
        "msh-keygen: {} is not a public key file",
        s(&junk)
    ));
    let out = keygen(["fingerprint", &s(&dir.join("missing"))]);
    assert_eq!(out.code(), Some(1));
    assert!(
        out.stderr.contains("missing") && out.stderr.contains("No such file"),
        "{}",
        out.stderr
    );
}

/// generate never replaces an existing key (private or .pub) without --force.
#[test]
fn generate_refuses_to_overwrite() {
    let dir = TestDir::new("keygen-overwrite");
    let path = dir.join("id");
    assert_eq!(
        keygen(["generate", "-N", "", "-f", &s(&path)]).code(),
        Some(0)
    );
    let before = std::fs::read(&path).unwrap();
    let before_pub = std::fs::read(dir.join("id.pub")).unwrap();
    let out = keygen(["generate", "-N", "", "-f", &s(&path)]);
    assert_eq!(out.code(), Some(1));
    assert_eq!(
        out.stderr,
        format!(
            "msh-keygen: {} already exists; not overwriting it (pass --force to replace the \
             key, or choose another path with -f)\n",
            s(&path)
        )
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(std::fs::read(dir.join("id.pub")).unwrap(), before_pub);

    // A lone .pub is protected too.
    let lone = dir.write("lone.pub", "keep me\n", 0o644);
    let out = keygen(["generate", "-N", "", "-f", &s(&dir.join("lone"))]);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&lone).unwrap(), "keep me\n");
    assert!(!dir.join("lone").exists());

    // A missing directory is named, with the fix.
    let nodir = dir.join("no/such/dir/id");
    let out = keygen(["generate", "-N", "", "-f", &s(&nodir)]);
    assert_eq!(out.code(), Some(1));
    assert_eq!(
        out.stderr,
        format!(
            "msh-keygen: directory {d} does not exist; create it first (mkdir -m 700 -p {d})\n",
            d = s(&dir.join("no/such/dir"))
        )
    );

    let out = keygen(["generate", "-N", "", "--force", "-f", &s(&path)]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_ne!(std::fs::read(&path).unwrap(), before);
    assert_eq!(mode(&path), 0o600);
}

/// Regression: msh-common's I/O errors carried their cause in the message and as their
/// source, so `{:#}` printed it twice ("...: Is a directory (os error 21): Is a directory
/// (os error 21)").
#[test]
fn io_errors_name_their_cause_once() {
    let dir = TestDir::new("keygen-io-cause");
    let sub = dir.join("a-directory");
    std::fs::create_dir(&sub).unwrap();
    let out = keygen(["known-hosts", "hash", "-f", &s(&sub)]);
    assert_eq!(out.code(), Some(1));
    assert_eq!(
        out.stderr,
        format!("msh-keygen: {}: Is a directory (os error 21)\n", s(&sub))
    );
    let out = keygen(["generate", "-N", "", "--force", "-f", &s(&sub)]);
    assert_eq!(out.code(), Some(1));
    assert_eq!(
        out.stderr,
        format!(
            "msh-keygen: cannot write the key to {p}: {p}: Is a directory (os error 21)\n",
            p = s(&sub)
        )
    );
}

/// scan reports exactly the fixture sshd's host keys, in a form ssh-keygen and ssh accept.
#[test]
fn scan_prints_the_sshd_host_keys() {
    let dir = TestDir::new("keygen-scan");
    let sshd = Sshd::start_with(
        &dir,
        SshdOptions {
            host_key_types: vec!["ed25519".into(), "ecdsa".into(), "rsa".into()],
            ..Default::default()
        },
    );
    let target = format!("127.0.0.1:{}", sshd.port);
    let out = keygen(["scan", &target]);
    assert_eq!(
        out.code(),
        Some(0),
        "{}\nsshd log:\n{}",
        out.stderr,
        sshd.log()
    );
    assert_eq!(out.stdout_str(), sshd.known_hosts_lines());
    assert!(
        out.stderr
            .contains(&format!("# 127.0.0.1:{} SSH-2.0-OpenSSH", sshd.port)),
        "{}",
        out.stderr
    );
    for k in &sshd.host_keys {
        let fp = msh_common::keys::fingerprint(&k.public);
        assert!(out.stderr.contains(&fp), "{fp} missing from {}", out.stderr);
    }
    // ssh-keygen reads the lines, with the fixture's fingerprints.
    let scanned = dir.write("scanned", &out.stdout, 0o644);
    let listed = ssh_keygen(["-l", "-f", &s(&scanned)]);
    assert_eq!(listed.code(), Some(0), "{}", listed.stderr);
    let fps: Vec<String> = listed
        .stdout_str()
        .lines()
        .map(|l| l.split(' ').nth(1).unwrap().to_string())
        .collect();
    let want: Vec<String> = sshd
        .host_keys
        .iter()
        .map(|k| msh_common::keys::fingerprint(&k.public))
        .collect();
    assert_eq!(fps, want);
    // And ssh trusts the host with that known_hosts and StrictHostKeyChecking=yes.
    let id = ssh_keygen_ed25519(&dir, "id");
    sshd.authorize(&id);
    let out = run(sshd.ssh_command(&id, &scanned, "echo scanned-ok"), b"", T);
    assert_eq!(out.stdout_str(), "scanned-ok\n", "{}", out.stderr);

    // One type only, with -p.
    let out = keygen([
        "scan",
        "127.0.0.1",
        "-p",
        &sshd.port.to_string(),
        "-t",
        "ecdsa",
    ]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(
        out.stdout_str(),
        format!(
            "[127.0.0.1]:{} {}\n",
            sshd.port,
            sshd.host_key("ecdsa").public_line
        )
    );

    // Nothing listening: exit 1 with the address in the message.
    let port = free_port();
    let out = keygen(["scan", &format!("127.0.0.1:{port}"), "--timeout", "3"]);
    assert_eq!(out.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr
            .starts_with(&format!("msh-keygen: cannot connect to 127.0.0.1:{port}")),
        "{}",
        out.stderr
    );
}

/// Public key lines (`type base64`) of three fresh keys: ed25519, ecdsa, rsa.
fn three_keys(dir: &TestDir) -> [String; 3] {
    let mut out = Vec::new();
    for (t, name) in [("ed25519", "ka"), ("ecdsa", "kb"), ("rsa", "kc")] {
        let p = dir.join(name);
        let o = ssh_keygen(["-q", "-t", t, "-N", "", "-C", "", "-f", &s(&p)]);
        assert_eq!(o.code(), Some(0), "{}", o.stderr);
        out.push(public_key_fields(&dir.join(format!("{name}.pub"))));
    }
    out.try_into().unwrap()
}

/// A known_hosts file OpenSSH considers valid: comments, blank lines, comma lists, ports,
/// wildcards, markers, a hashed entry (made by ssh-keygen), odd spacing.
fn sample_known_hosts(dir: &TestDir) -> String {
    let [a, b, c] = three_keys(dir);
    // A hashed entry for hashed.example, written by ssh-keygen -H.
    let h = dir.write("to-hash", format!("hashed.example {a} hashed\n"), 0o644);
    let o = ssh_keygen(["-H", "-f", &s(&h)]);
    assert_eq!(o.code(), Some(0), "{}", o.stderr);
    let hashed = std::fs::read_to_string(&h).unwrap();
    format!(
        "# known hosts for the tests\n\
         foo.example,10.0.0.1 {a} com1\n\
         [foo.example]:2222 {c}\n\
         \n\
         *.example {b}\n\
         @revoked foo.example {c}\n\
         @cert-authority *.example {a}\n\
         {hashed}\
         bar.example\t{b}   two  spaces\n\
         Foo.Example {b}\n"
    )
}

/// `known-hosts find` prints what `ssh-keygen -F` prints and exits as it does, for plain,
/// ported, wildcard, marker, hashed and absent hosts (a garbage line is skipped by both).
#[test]
fn known_hosts_find_matches_ssh_keygen_f() {
    let dir = TestDir::new("kh-find");
    let text = format!("{}garbage line\n", sample_known_hosts(&dir));
    let f = s(&dir.write("known_hosts", &text, 0o644));
    let cases: &[(&str, Option<&str>, &str)] = &[
        ("foo.example", None, "foo.example"),
        ("foo.example", Some("2222"), "[foo.example]:2222"),
        ("x.example", None, "x.example"),
        ("hashed.example", None, "hashed.example"),
        ("bar.example", None, "bar.example"),
        ("nothere", None, "nothere"),
        ("10.0.0.1", None, "10.0.0.1"),
    ];
    for (host, port, openssh_name) in cases {
        let theirs = ssh_keygen(["-F", openssh_name, "-f", &f]);
        let mut args = vec!["known-hosts", "find", host, "-f", &f];
        if let Some(p) = port {
            args.extend(["-p", p]);
        }
        let ours = keygen(&args);
        assert_eq!(ours.stdout_str(), theirs.stdout_str(), "{args:?}");
        assert_eq!(ours.code(), theirs.code(), "{args:?}: {}", ours.stderr);
    }
    // Found something: exit 0, and the header names the line.
    let ours = keygen(["known-hosts", "find", "foo.example", "-p", "2222", "-f", &f]);
    assert_eq!(ours.code(), Some(0));
    assert!(ours
        .stdout_str()
        .starts_with("# Host [foo.example]:2222 found: line 3 \n"));
    // The garbage line is reported with file:line on stderr.
    ours.assert_stderr_contains(&format!("{f}:11:"));
    // A missing file is an error, not "not found".
    let out = keygen(["known-hosts", "find", "x", "-f", &s(&dir.join("nope"))]);
    assert_eq!(out.code(), Some(1));
    out.assert_stderr_contains("nope");
}

/// `known-hosts remove` deletes the same lines as `ssh-keygen -R`, prints the same, keeps the
/// same FILE.old, and leaves comments, blank lines and marker lines in place.
#[test]
fn known_hosts_remove_matches_ssh_keygen_r() {
    let dir = TestDir::new("kh-remove");
    let text = sample_known_hosts(&dir);
    for (host, port, openssh_name) in [
        ("foo.example", None, "foo.example"),
        ("foo.example", Some("2222"), "[foo.example]:2222"),
        ("hashed.example", None, "hashed.example"),
        ("bar.example", None, "bar.example"),
    ] {
        let theirs_f = s(&dir.write("theirs", &text, 0o644));
        let ours_f = s(&dir.write("ours", &text, 0o644));
        let _ = std::fs::remove_file(format!("{theirs_f}.old"));
        let _ = std::fs::remove_file(format!("{ours_f}.old"));
        let theirs = ssh_keygen(["-R", openssh_name, "-f", &theirs_f]);
        let mut args = vec!["known-hosts", "remove", host, "-f", &ours_f];
        if let Some(p) = port {
            args.extend(["-p", p]);
        }
        let ours = keygen(&args);
        assert_eq!(theirs.code(), Some(0), "{}", theirs.stderr);
        assert_eq!(ours.code(), Some(0), "{args:?}: {}", ours.stderr);
        assert_eq!(
            ours.stdout_str(),
            theirs.stdout_str().replace(&theirs_f, &ours_f),
            "{args:?}"
        );
        let ours_text = std::fs::read_to_string(&ours_f).unwrap();
        assert_eq!(
            ours_text,
            std::fs::read_to_string(&theirs_f).unwrap(),
            "{args:?}"
        );
        assert_ne!(ours_text, text, "{args:?} removed nothing");
        assert_eq!(
            std::fs::read_to_string(format!("{ours_f}.old")).unwrap(),
            text
        );
        assert!(ours_text.starts_with("# known hosts for the tests\n"));
        assert!(ours_text.contains("@revoked foo.example "));
        assert!(ours_text.contains("\n\n"));
    }

    // Not there: both leave the file alone, make no .old, say so on stderr, exit 0.
    let ours_f = s(&dir.write("ours2", &text, 0o644));
    let theirs_f = s(&dir.write("theirs2", &text, 0o644));
    let ours = keygen(["known-hosts", "remove", "nothere", "-f", &ours_f]);
    let theirs = ssh_keygen(["-R", "nothere", "-f", &theirs_f]);
    assert_eq!((ours.code(), theirs.code()), (Some(0), Some(0)));
    assert_eq!(ours.stderr, format!("Host nothere not found in {ours_f}\n"));
    // OpenSSH's log lines end in \r\n.
    assert_eq!(
        theirs.stderr.replace("\r\n", "\n"),
        format!("Host nothere not found in {theirs_f}\n")
    );
    assert!(ours.stdout.is_empty());
    assert_eq!(std::fs::read_to_string(&ours_f).unwrap(), text);
    assert!(!std::path::Path::new(&format!("{ours_f}.old")).exists());

    // A garbage line: ssh-keygen refuses to rewrite the file; msh-keygen removes the host and
    // keeps the garbage line (reporting it), so nothing of the user's is lost either way.
    let with_junk = format!("{text}garbage line\n");
    let ours_f = s(&dir.write("ours3", &with_junk, 0o644));
    let ours = keygen(["known-hosts", "remove", "bar.example", "-f", &ours_f]);
    assert_eq!(ours.code(), Some(0), "{}", ours.stderr);
    let after = std::fs::read_to_string(&ours_f).unwrap();
    assert!(after.ends_with("garbage line\n"), "{after}");
    assert!(!after.contains("bar.example"));
    ours.assert_stderr_contains(&format!("{ours_f}:11:"));
}

/// `known-hosts hash` hashes what `ssh-keygen -H` hashes (same lines, same layout, wildcard
/// and marker lines kept), keeps FILE.old, and each tool finds hosts in the other's output.
#[test]
fn known_hosts_hash_matches_ssh_keygen_h() {
    let dir = TestDir::new("kh-hash");
    let text = sample_known_hosts(&dir);
    let theirs_f = s(&dir.write("theirs", &text, 0o644));
    let ours_f = s(&dir.write("ours", &text, 0o644));
    let theirs = ssh_keygen(["-H", "-f", &theirs_f]);
    let ours = keygen(["known-hosts", "hash", "-f", &ours_f]);
    assert_eq!(theirs.code(), Some(0), "{}", theirs.stderr);
    assert_eq!(ours.code(), Some(0), "{}", ours.stderr);
    assert_eq!(
        ours.stdout_str(),
        format!("{ours_f} updated.\nOriginal contents retained as {ours_f}.old\n")
    );
    assert_eq!(
        ours.stdout_str(),
        theirs.stdout_str().replace(&theirs_f, &ours_f)
    );
    assert_eq!(
        ours.stderr,
        theirs
            .stderr
            .replace(&theirs_f, &ours_f)
            .replace("\r\n", "\n")
    );
    assert_eq!(
        std::fs::read_to_string(format!("{ours_f}.old")).unwrap(),
        text
    );

    // Line by line: hashed where ssh-keygen hashed (salts differ), identical elsewhere.
    let o = std::fs::read_to_string(&ours_f).unwrap();
    let t = std::fs::read_to_string(&theirs_f).unwrap();
    assert_eq!(
        o.lines().count(),
        t.lines().count(),
        "ours:\n{o}\ntheirs:\n{t}"
    );
    for (ol, tl) in o.lines().zip(t.lines()) {
        if tl.starts_with("|1|") {
            assert!(ol.starts_with("|1|"), "{ol} vs {tl}");
            let rest = |l: &str| l.split_once(' ').unwrap().1.to_string();
            assert_eq!(rest(ol), rest(tl));
        } else {
            assert_eq!(ol, tl);
        }
    }
    assert!(
        !o.contains("foo.example,") && !o.contains("bar.example"),
        "{o}"
    );

    // Each finds hosts in the other's hashed file, with the same output.
    for name in [
        "foo.example",
        "10.0.0.1",
        "[foo.example]:2222",
        "bar.example",
        "hashed.example",
    ] {
        for f in [&ours_f, &theirs_f] {
            let theirs = ssh_keygen(["-F", name, "-f", f]);
            let ours = keygen(["known-hosts", "find", name, "-f", f]);
            assert_eq!(theirs.code(), Some(0), "ssh-keygen -F {name} in {f}");
            assert_eq!(ours.code(), Some(0), "find {name} in {f}: {}", ours.stderr);
            assert_eq!(ours.stdout_str(), theirs.stdout_str(), "{name} in {f}");
        }
    }
}

/// Private keys ssh-keygen writes (every type, with and without a passphrase) load through
/// `msh_common::keys::load_private_key` with the right public key and comment; an encrypted
/// one asks for its passphrase and refuses a wrong one.
#[test]
fn ssh_keygen_private_keys_load_in_msh() {
    use msh_common::keys;
    let dir = TestDir::new("keygen-load");
    for (i, (t, bits)) in KINDS.iter().enumerate() {
        for pass in ["", "s3cret"] {
            let p = s(&dir.join(format!("l{i}{pass}")));
            let mut args = vec!["-q", "-t", t, "-N", pass, "-C", "from openssh"];
            if let Some(b) = bits {
                args.extend(["-b", b]);
            }
            args.extend(["-f", &p]);
            assert_eq!(ssh_keygen(&args).code(), Some(0));
            let path = std::path::Path::new(&p);
            let public = keys::load_public_key(&keys::public_key_path(path)).unwrap();
            assert_eq!(keys::is_encrypted(path).unwrap(), !pass.is_empty(), "{p}");
            if pass.is_empty() {
                let k = keys::load_private_key(path, None).unwrap();
                assert_eq!(k.public_key().key_data(), public.key_data());
                assert_eq!(k.comment().as_str_lossy(), "from openssh");
            } else {
                let e = keys::load_private_key(path, None).unwrap_err();
                assert!(
                    matches!(e, msh_common::Error::PassphraseNeeded { .. }),
                    "{p}: {e}"
                );
                let e = keys::load_private_key(path, Some("wrong")).unwrap_err();
                assert!(
                    matches!(e, msh_common::Error::PassphraseWrong { .. }),
                    "{p}: {e}"
                );
                assert!(e.to_string().starts_with(&p), "{e}");
                let k = keys::load_private_key(path, Some(pass)).unwrap();
                assert_eq!(k.public_key().key_data(), public.key_data());
                assert_eq!(k.comment().as_str_lossy(), "from openssh");
            }
        }
    }
}

/// Regression: ssh-key 0.7.0-rc.11 rejects P-256 keys whose secret scalar starts with a zero
/// byte (OpenSSH writes it as a 31-byte mpint, about one key in 256), which made such keys
/// unusable and our tests flaky. msh must load them, plain and encrypted, and sign with the
/// right key (checked by `ssh-keygen -Y verify`).
#[test]
fn p256_key_with_short_scalar_loads_and_signs() {
    use msh_common::keys;
    let dir = TestDir::new("keygen-p256-short");
    let mut found = None;
    for i in 0..4000 {
        let p = dir.join(format!("p{i}"));
        let o = ssh_keygen(["-q", "-t", "ecdsa", "-N", "", "-C", "", "-f", &s(&p)]);
        assert_eq!(o.code(), Some(0), "{}", o.stderr);
        let text = std::fs::read_to_string(&p).unwrap();
        if russh::keys::PrivateKey::from_openssh(text.trim()).is_err() {
            found = Some(p);
            break;
        }
        std::fs::remove_file(&p).unwrap();
        std::fs::remove_file(keys::public_key_path(&p)).unwrap();
    }
    let path = found.expect(
        "no short-scalar P-256 key in 4000 tries: ssh-key may accept them now; then drop \
         keys::p256_short_scalar and this test",
    );
    let public = keys::load_public_key(&keys::public_key_path(&path)).unwrap();
    assert!(!keys::is_encrypted(&path).unwrap());
    let k = keys::load_private_key(&path, None).unwrap();
    assert_eq!(k.public_key().key_data(), public.key_data());

    // Sign with it; OpenSSH verifies the signature against the .pub key.
    let msg = b"signed by msh\n";
    let sig = k
        .sign("file", russh::keys::HashAlg::Sha256, msg)
        .unwrap()
        .to_pem(russh::keys::ssh_key::LineEnding::LF)
        .unwrap();
    let sig_path = dir.write("msg.sig", sig, 0o644);
    let pub_fields = public_key_fields(&keys::public_key_path(&path));
    let signers = dir.write("allowed_signers", format!("tester {pub_fields}\n"), 0o644);
    let verify = run(
        cmd(
            tool("ssh-keygen"),
            [
                "-Y",
                "verify",
                "-f",
                &s(&signers),
                "-I",
                "tester",
                "-n",
                "file",
                "-s",
                &s(&sig_path),
            ],
        ),
        msg,
        T,
    );
    assert_eq!(
        verify.code(),
        Some(0),
        "{} {}",
        verify.stdout_str(),
        verify.stderr
    );

    // The private file alone fingerprints like ssh-keygen (empty comment printed as is).
    std::fs::remove_file(keys::public_key_path(&path)).unwrap();
    let theirs = ssh_keygen(["-l", "-f", &s(&path)]);
    let ours = keygen(["fingerprint", &s(&path)]);
    assert_eq!(ours.code(), Some(0), "{}", ours.stderr);
    assert_eq!(ours.stdout_str(), theirs.stdout_str());

    // Encrypted by ssh-keygen (aes256-ctr): needs, refuses and accepts passphrases correctly.
    let o = ssh_keygen(["-q", "-p", "-P", "", "-N", "pw", "-f", &s(&path)]);
    assert_eq!(o.code(), Some(0), "{}", o.stderr);
    assert!(keys::is_encrypted(&path).unwrap());
    let e = keys::load_private_key(&path, None).unwrap_err();
    assert!(
        matches!(e, msh_common::Error::PassphraseNeeded { .. }),
        "{e}"
    );
    let e = keys::load_private_key(&path, Some("nope")).unwrap_err();
    assert!(
        matches!(e, msh_common::Error::PassphraseWrong { .. }),
        "{e}"
    );
    let k2 = keys::load_private_key(&path, Some("pw")).unwrap();
    assert_eq!(k2.public_key().key_data(), public.key_data());
    let ours = keygen(["fingerprint", &s(&path)]);
    assert_eq!(
        ours.stdout_str(),
        ssh_keygen(["-l", "-f", &s(&path)]).stdout_str()
    );
}

/// On a terminal without -N, generate asks for the passphrase twice (again on a mismatch)
/// and encrypts the key with it. `script` gives msh-keygen a pseudo-terminal.
#[test]
fn generate_asks_for_passphrase_twice_on_a_tty() {
    let dir = TestDir::new("keygen-tty");
    let path = dir.join("id");
    let line = format!("{} generate -C tty -f {}", s(&bin("msh-keygen")), s(&path));
    let out = run(
        cmd(tool("script"), ["-qec", &line, "/dev/null"]),
        b"first\nsecond\ntyped twice\ntyped twice\n",
        T,
    );
    let text = out.stdout_str();
    assert_eq!(out.code(), Some(0), "{text} {}", out.stderr);
    assert_eq!(
        text.matches("Enter passphrase (empty for no passphrase): ")
            .count(),
        2,
        "{text}"
    );
    assert_eq!(
        text.matches("Enter same passphrase again: ").count(),
        2,
        "{text}"
    );
    assert!(
        text.contains("Passphrases do not match.  Try again."),
        "{text}"
    );
    let o = ssh_keygen(["-y", "-P", "typed twice", "-f", &s(&path)]);
    assert_eq!(o.code(), Some(0), "{}", o.stderr);
    let o = ssh_keygen(["-y", "-P", "", "-f", &s(&path)]);
    assert_ne!(o.code(), Some(0), "key was not encrypted");
}

/// `-h` is short, `--help` has examples, a usage error exits 1 with clap's message.
#[test]
fn help_and_usage_errors() {
    let short = keygen(["-h"]);
    assert_eq!(short.code(), Some(0));
    assert!(short.stdout_str().contains("Usage: msh-keygen <COMMAND>"));
    assert!(!short.stdout_str().contains("Examples:"));
    let long = keygen(["--help"]);
    assert_eq!(long.code(), Some(0));
    assert!(long.stdout_str().contains("Examples:"));
    assert!(long
        .stdout_str()
        .contains("msh-keygen known-hosts remove build.internal -p 2222"));
    let bad = keygen(["generate", "-t", "dsa", "-f", "x"]);
    assert_eq!(bad.code(), Some(1));
    assert_eq!(
        bad.stderr,
        "msh-keygen: unknown key type \"dsa\": use ed25519, ecdsa or rsa\n"
    );
    let bad = keygen(["frobnicate"]);
    assert_eq!(bad.code(), Some(1));
    bad.assert_stderr_contains("unrecognized subcommand 'frobnicate'");
}
