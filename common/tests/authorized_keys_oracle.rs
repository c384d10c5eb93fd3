//! Oracle test: the real OpenSSH sshd decides logins from the same authorized_keys text that
//! `authorize` decides, for the same key and peer (127.0.0.1); both must agree on accept /
//! reject, and on what an accepted session runs (forced command and environment=), which is
//! compared by running the command locally with our `Permissions` and through sshd.
//! Deliberate deviations from sshd are named in the cases that show them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use support::{free_port, fresh_dir, tool, Sshd};

use msh_common::authorized_keys::{authorize, AuthDecision, AuthorizedKeys};
use russh::keys::PublicKey;

/// sshd serving root from `authorized_keys` on 127.0.0.1.
fn start_sshd(dir: &Path, authorized_keys: &Path, strict_modes: bool) -> Sshd {
    start_sshd_on(
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        dir,
        authorized_keys,
        strict_modes,
    )
}

fn start_sshd_on(host: IpAddr, dir: &Path, authorized_keys: &Path, strict_modes: bool) -> Sshd {
    let host_key = dir.join("host_key");
    keygen(&host_key);
    let port = free_port(host);
    let config = dir.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "ListenAddress {host}\nPort {port}\nHostKey {}\nAuthorizedKeysFile {}\n\
             PidFile none\nUsePAM no\nStrictModes {}\nUseDNS no\nPermitRootLogin yes\n\
             PubkeyAuthentication yes\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPermitUserEnvironment yes\nLogLevel DEBUG1\n\
             MaxStartups 100\n",
            host_key.display(),
            authorized_keys.display(),
            if strict_modes { "yes" } else { "no" },
        ),
    )
    .unwrap();
    Sshd::spawn(host, port, &config, dir.join("sshd.log"))
}

fn keygen(path: &Path) -> PublicKey {
    let out = Command::new(tool("ssh-keygen"))
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "", "-f"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "ssh-keygen: {out:?}");
    PublicKey::read_openssh_file(path.with_extension("pub")).unwrap()
}

/// What the session runs according to our decision, run locally: the forced command or the
/// requested one, with the environment= pairs set.
fn run_locally(command: &str, env: &[(String, String)]) -> String {
    let mut c = Command::new("/bin/sh");
    c.arg("-c")
        .arg(command)
        .env_remove("MSHTEST")
        .env_remove("A");
    for (k, v) in env {
        c.env(k, v);
    }
    String::from_utf8(c.output().unwrap().stdout).unwrap()
}

const REQUESTED: &str = "echo requested; echo \"E=$MSHTEST A=$A\"";

#[test]
fn sshd_and_authorize_agree() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("authorized-keys-oracle-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let id = dir.join("id");
    let key = keygen(&id);
    let other = keygen(&dir.join("other"));
    let k = key.to_openssh().unwrap();
    let o = other.to_openssh().unwrap();
    let ak_path = dir.join("authorized_keys");
    std::fs::write(&ak_path, "").unwrap();
    let sshd = start_sshd(&dir, &ak_path, false);

    let cases: Vec<(&str, String)> = vec![
        ("plain", format!("{k} me\n")),
        ("other key only", format!("{o}\n")),
        ("from exact", format!("from=\"127.0.0.1\" {k}\n")),
        ("from other net", format!("from=\"10.0.0.0/8\" {k}\n")),
        ("from negated", format!("from=\"!127.0.0.1,*\" {k}\n")),
        ("from cidr minus other", format!("from=\"127.0.0.0/8,!127.0.0.2\" {k}\n")),
        ("from glob", format!("from=\"127.0.0.?\" {k}\n")),
        ("from glob miss", format!("from=\"127.0.1.*\" {k}\n")),
        ("from host bits", format!("from=\"127.0.0.1/8\" {k}\n")),
        ("from mask too long", format!("from=\"127.0.0.0/33,*\" {k}\n")),
        ("from host name, no DNS", format!("from=\"localhost\" {k}\n")),
        ("from star", format!("from=\"*\" {k}\n")),
        ("from empty entry", format!("from=\"127.0.0.1,\" {k}\n")),
        ("expired", format!("expiry-time=\"20200101\" {k}\n")),
        ("not yet expired", format!("expiry-time=\"20991231Z\" {k}\n")),
        ("not yet expired local", format!("expiry-time=\"209912312359\" {k}\n")),
        (
            "restrict and forced command",
            format!("restrict,command=\"echo forced \\\"q\\\" #x, y\" {k}\n"),
        ),
        ("upper-case option", format!("COMMAND=\"echo upper\" {k}\n")),
        (
            "environment",
            format!("environment=\"MSHTEST=hello world\",environment=\"A=1\",environment=\"A=2\" {k}\n"),
        ),
        ("cert-authority", format!("cert-authority {k}\n")),
        ("garbage then key", format!("garbage line\n{k}\n")),
        ("unknown option", format!("bogus {k}\n")),
        ("unterminated quote", format!("command=\"ls {k}\n")),
        (
            "first line wins",
            format!("command=\"echo first\" {k}\ncommand=\"echo second\" {k}\n"),
        ),
        (
            "first admitting line wins",
            format!("from=\"10.0.0.0/8\",command=\"echo a\" {k}\ncommand=\"echo b\" {k}\n"),
        ),
        (
            "refused then plain",
            format!("expiry-time=\"20200101\",command=\"echo old\" {k}\nbogus,command=\"echo x\" {k}\n{k}\n"),
        ),
    ];

    let mut disagreements = Vec::new();
    let mut sshd_said = std::collections::HashMap::new();
    for (name, text) in &cases {
        std::fs::write(&ak_path, text).unwrap();
        let theirs = sshd.login(&id, &[], REQUESTED);
        let files = [AuthorizedKeys::parse(&ak_path, text)];
        let peer = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let ours = match authorize(&files, &key, peer, SystemTime::now()) {
            AuthDecision::Accept(p) => Some(run_locally(
                p.forced_command.as_deref().unwrap_or(REQUESTED),
                &p.environment,
            )),
            AuthDecision::Reject(_) => None,
        };
        if ours != theirs {
            disagreements.push(format!("{name}: sshd {theirs:?}, msh {ours:?}"));
        }
        sshd_said.insert(*name, theirs);
    }
    drop(sshd);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(disagreements.is_empty(), "{disagreements:#?}");
    // The oracle itself behaved as documented (so agreement is not agreement on nothing).
    let said = |name: &str| sshd_said[name].clone();
    assert_eq!(said("plain").as_deref(), Some("requested\nE= A=\n"));
    assert_eq!(said("other key only"), None);
    assert_eq!(
        said("restrict and forced command").as_deref(),
        // The shell sees `echo forced "q" #x, y`: quotes removed, `#x, y` a shell comment.
        Some("forced q\n")
    );
    assert_eq!(
        said("environment").as_deref(),
        Some("requested\nE=hello world A=1\n")
    );
    assert_eq!(said("first admitting line wins").as_deref(), Some("b\n"));
}

/// Signs `id.pub` with `ca` as a user certificate for `principals`; writes `id-cert.pub`,
/// which ssh offers with `-i id`.
fn sign(ca: &Path, id: &Path, principals: &str) {
    let out = Command::new(tool("ssh-keygen"))
        .args(["-q", "-s"])
        .arg(ca)
        .args(["-I", "oracle", "-n", principals])
        .arg(id.with_extension("pub"))
        .output()
        .unwrap();
    assert!(out.status.success(), "ssh-keygen -s: {out:?}");
}

#[test]
fn sshd_and_authorize_cert_authority_agree() {
    use msh_common::authorized_keys::authorize_cert_authority;
    let dir = fresh_dir("authorized-keys-oracle-ca");
    let ca_path = dir.join("ca");
    let ca = keygen(&ca_path);
    let other_ca = keygen(&dir.join("other_ca"));
    let (c, oc) = (ca.to_openssh().unwrap(), other_ca.to_openssh().unwrap());
    let principal_sets = ["root", "alice", "deploy", "ops,root"];
    let ids: Vec<PathBuf> = principal_sets
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let id = dir.join(format!("id{i}"));
            keygen(&id);
            sign(&ca_path, &id, p);
            id
        })
        .collect();
    let ak_path = dir.join("authorized_keys");
    std::fs::write(&ak_path, "").unwrap();
    let sshd = start_sshd(&dir, &ak_path, false);

    let lines = [
        format!("cert-authority {c}\n"),
        format!("cert-authority,principals=\"ops,deploy\" {c}\n"),
        format!("cert-authority,from=\"10.0.0.0/8\" {c}\n"),
        format!("cert-authority,command=\"echo via-ca\" {c}\n"),
        format!("cert-authority,expiry-time=\"20200101\" {c}\n"),
        format!("cert-authority {oc}\n"),
        format!("{c}\n"),
        format!(
            "cert-authority,from=\"10.0.0.0/8\" {c}\ncert-authority,principals=\"alice\" {c}\n"
        ),
    ];
    let mut disagreements = Vec::new();
    let mut accepted = 0;
    for text in &lines {
        std::fs::write(&ak_path, text).unwrap();
        let files = [AuthorizedKeys::parse(&ak_path, text)];
        for (id, principals) in ids.iter().zip(principal_sets) {
            let theirs = sshd.login(id, &[], REQUESTED);
            let cert_principals: Vec<String> = principals.split(',').map(String::from).collect();
            let peer = IpAddr::V4(Ipv4Addr::LOCALHOST);
            let ours = match authorize_cert_authority(
                &files,
                &ca,
                &cert_principals,
                "root",
                peer,
                SystemTime::now(),
            ) {
                AuthDecision::Accept(p) => Some(run_locally(
                    p.forced_command.as_deref().unwrap_or(REQUESTED),
                    &p.environment,
                )),
                AuthDecision::Reject(_) => None,
            };
            accepted += usize::from(theirs.is_some());
            if ours != theirs {
                disagreements.push(format!(
                    "{text:?} with certificate for {principals}: sshd {theirs:?}, msh {ours:?}"
                ));
            }
        }
    }
    drop(sshd);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(disagreements.is_empty(), "{disagreements:#?}");
    // root, ops+root (line 1); deploy, ops+root (line 2); root, ops+root (line 4); alice (line 8).
    assert_eq!(
        accepted, 7,
        "sshd accepted an unexpected number of certificate logins"
    );
}

#[test]
fn sshd_strict_modes_and_check_strict_modes_agree() {
    use msh_common::perms::check_strict_modes;
    let dir = fresh_dir("authorized-keys-oracle-strict");
    let id = dir.join("id");
    let key = keygen(&id);
    let home = dir.join("home");
    let ssh = home.join(".ssh");
    let shared = dir.join("shared");
    let ak_path = ssh.join("authorized_keys");
    let sshd = start_sshd(&dir, &ak_path, true);
    let chmod =
        |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    // Group 54321 has no entry: Debian's sshd accepts a group-writable file whose group is the
    // user's private group (its user-group-modes patch); upstream OpenSSH, SPEC and msh refuse
    // any group-writable file. A group with no entry makes Debian's sshd refuse as upstream.
    let chown = |p: &Path, uid: u32| std::os::unix::fs::chown(p, Some(uid), Some(54_321)).unwrap();
    // (name, file mode, .ssh mode, home mode, file owner, .ssh owner, via symlink into a 0777 dir)
    let cases: [(&str, u32, u32, u32, u32, u32, bool); 11] = [
        ("good", 0o600, 0o700, 0o755, 0, 0, false),
        ("file 0644", 0o644, 0o755, 0o755, 0, 0, false),
        ("file 0664", 0o664, 0o700, 0o755, 0, 0, false),
        ("file 0606", 0o606, 0o700, 0o755, 0, 0, false),
        (".ssh 0777", 0o600, 0o777, 0o755, 0, 0, false),
        (".ssh 1777", 0o600, 0o1777, 0o755, 0, 0, false),
        (".ssh 0770", 0o600, 0o770, 0o755, 0, 0, false),
        ("home 0775", 0o600, 0o700, 0o775, 0, 0, false),
        (
            "file owned by stranger",
            0o600,
            0o700,
            0o755,
            54_321,
            0,
            false,
        ),
        (
            ".ssh owned by stranger",
            0o600,
            0o700,
            0o755,
            0,
            54_321,
            false,
        ),
        ("symlink into 0777 dir", 0o600, 0o700, 0o755, 0, 0, true),
    ];
    let mut disagreements = Vec::new();
    let mut sshd_said = std::collections::HashMap::new();
    for (name, fmode, smode, hmode, fowner, sowner, symlink) in cases {
        let _ = std::fs::remove_dir_all(&home);
        let _ = std::fs::remove_dir_all(&shared);
        std::fs::create_dir_all(&ssh).unwrap();
        let text = format!("{}\n", key.to_openssh().unwrap());
        let real_file = if symlink {
            std::fs::create_dir(&shared).unwrap();
            chmod(&shared, 0o777);
            let target = shared.join("keys");
            std::os::unix::fs::symlink(&target, &ak_path).unwrap();
            target
        } else {
            ak_path.clone()
        };
        std::fs::write(&real_file, &text).unwrap();
        chmod(&real_file, fmode);
        chmod(&ssh, smode);
        chmod(&home, hmode);
        chown(&real_file, fowner);
        chown(&ssh, sowner);
        chown(&home, 0);
        let theirs = sshd.login(&id, &[], "true").is_some();
        // sshd runs as root here: the user is root, home /root, and the file is outside it.
        let ours = check_strict_modes(&ak_path, 0, Path::new("/root"));
        if ours.is_ok() != theirs {
            disagreements.push(format!("{name}: sshd accepted={theirs}, msh {ours:?}"));
        }
        sshd_said.insert(name, theirs);
    }
    drop(sshd);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(disagreements.is_empty(), "{disagreements:#?}");
    assert!(
        sshd_said["good"] && sshd_said["file 0644"],
        "sshd refused a safe layout: are the directories above {} group/world-writable?",
        env!("CARGO_TARGET_TMPDIR")
    );
    assert!(!sshd_said["file 0664"] && !sshd_said[".ssh 1777"]);
}

#[test]
fn sshd_and_authorize_agree_over_ipv6() {
    let dir = fresh_dir("authorized-keys-oracle-v6");
    let id = dir.join("id");
    let key = keygen(&id);
    let k = key.to_openssh().unwrap();
    let ak_path = dir.join("authorized_keys");
    std::fs::write(&ak_path, "").unwrap();
    let peer = IpAddr::V6(std::net::Ipv6Addr::LOCALHOST);
    let sshd = start_sshd_on(peer, &dir, &ak_path, false);
    let froms = [
        "::1",
        "::1/128",
        "::/0",
        "::/64",
        "0:0:0:0:0:0:0:1",
        "2001:db8::/32",
        "!::1,*",
        "!::/0,*",
        "127.0.0.1",
        "127.0.0.0/8",
        "::?",
        "::1/64",
        "*",
    ];
    let mut disagreements = Vec::new();
    let mut accepted = Vec::new();
    for from in froms {
        let text = format!("from=\"{from}\" {k}\n");
        std::fs::write(&ak_path, &text).unwrap();
        let theirs = sshd.login(&id, &[], "true").is_some();
        let files = [AuthorizedKeys::parse(&ak_path, &text)];
        let ours = authorize(&files, &key, peer, SystemTime::now());
        if matches!(ours, AuthDecision::Accept(_)) != theirs {
            disagreements.push(format!(
                "from=\"{from}\": sshd accepted={theirs}, msh {ours:?}"
            ));
        }
        if theirs {
            accepted.push(from);
        }
    }
    drop(sshd);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(disagreements.is_empty(), "{disagreements:#?}");
    assert_eq!(
        accepted,
        [
            "::1",
            "::1/128",
            "::/0",
            "::/64",
            "0:0:0:0:0:0:0:1",
            "::?",
            "*"
        ]
    );
}
