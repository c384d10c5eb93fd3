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

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use msh_common::authorized_keys::{authorize, AuthDecision, AuthorizedKeys};
use russh::keys::PublicKey;

fn tool(name: &str) -> PathBuf {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .chain(
            std::env::var_os("PATH")
                .iter()
                .flat_map(std::env::split_paths)
                .map(|d| d.join(name)),
        )
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} not found: apt-get install openssh-server openssh-client")
        })
}

/// sshd, stopped by its PID when dropped.
struct Sshd {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sshd {
    fn start(dir: &Path, authorized_keys: &Path) -> Sshd {
        let host_key = dir.join("host_key");
        keygen(&host_key);
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "ListenAddress 127.0.0.1\nPort {port}\nHostKey {}\nAuthorizedKeysFile {}\n\
                 PidFile none\nUsePAM no\nStrictModes no\nUseDNS no\nPermitRootLogin yes\n\
                 PubkeyAuthentication yes\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPermitUserEnvironment yes\nLogLevel DEBUG1\n\
                 MaxStartups 100\n",
                host_key.display(),
                authorized_keys.display()
            ),
        )
        .unwrap();
        let run_sshd = Path::new("/run/sshd");
        if !run_sshd.exists() {
            std::fs::create_dir_all(run_sshd).unwrap();
            std::fs::set_permissions(run_sshd, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let log = dir.join("sshd.log");
        let child = Command::new(tool("sshd"))
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut sshd = Sshd { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = sshd.child.try_wait() {
                panic!("sshd exited ({status}): {}", sshd.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "sshd did not listen in 15 s: {}",
                sshd.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        sshd
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Logs in with `key` and runs `command`; `Some(stdout)` if sshd let us in.
    fn login(&mut self, key: &Path, command: &str) -> Option<String> {
        let mut child = Command::new(tool("ssh"))
            .args([
                "-F",
                "/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
            ])
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ])
            .args([
                "-o",
                "ConnectTimeout=10",
                "-o",
                "LogLevel=ERROR",
                "-T",
                "-i",
            ])
            .arg(key)
            .args(["-p", &self.port.to_string(), "root@127.0.0.1", command])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("ssh did not finish in 30 s; sshd log: {}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        match status.code() {
            Some(255) if err.contains("Permission denied") => None,
            Some(0) => Some(out),
            other => panic!("ssh exited {other:?}: {err}; sshd log: {}", self.log_text()),
        }
    }
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
    let mut sshd = Sshd::start(&dir, &ak_path);

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
        let theirs = sshd.login(&id, REQUESTED);
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
