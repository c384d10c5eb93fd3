//! Fixture: a real `mshd` on a free 127.0.0.1 port, with its own directory holding a host key
//! (made by ssh-keygen), a client key and the authorized_keys file that lists it, a config
//! file, and a log (`-vv`). The test never touches the real ~/.ssh: the authorized_keys path
//! is passed with `--authorized-keys` unless the test asks for config patterns instead.
//!
//! ```text
//! let d = Mshd::start("exec");                    // defaults: runs as the test's user
//! let out = run(d.ssh(&["-T"], "echo hi"), b"", Duration::from_secs(20));
//! assert_eq!(out.stdout_str(), "hi\n");
//!
//! let d = Mshd::builder("opts")
//!     .authorized_keys_options("command=\"echo forced\"") // options before the test key
//!     .toml("accept_env = [\"LANG\", \"MSHT_*\"]")         // extra config lines
//!     .start();
//! d.proc.wait_for_log("accepted publickey", Duration::from_secs(5));
//! ```
//!
//! `known_hosts_line()` / `known_hosts` give a pinned known_hosts for the fixture's host key,
//! so clients can run with StrictHostKeyChecking=yes.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{bin, cmd, free_port, ssh_keygen_ed25519, tool, wait_for_port, Proc, TestDir};

/// A running mshd and everything a client needs to talk to it.
pub struct Mshd {
    pub port: u16,
    pub addr: SocketAddr,
    /// Host private key (ed25519, from ssh-keygen) and its public line `ssh-ed25519 AAAA... c`.
    pub host_key: PathBuf,
    pub host_public: String,
    /// `SHA256:...` of the host key, as mshd logs it and ssh-keygen -lf prints it.
    pub host_fingerprint: String,
    /// Client key whose public half is in `authorized_keys` (unless the test replaced it).
    pub client_key: PathBuf,
    pub client_public: String,
    pub authorized_keys: PathBuf,
    /// known_hosts holding `[127.0.0.1]:PORT <host key>`.
    pub known_hosts: PathBuf,
    pub config: PathBuf,
    pub log: PathBuf,
    /// The user the fixture logs in as by default (the user mshd runs as).
    pub user: String,
    pub proc: Proc,
    /// Dropped last: the process goes first, then its files.
    pub dir: TestDir,
}

/// Options for [`Mshd`]; `start()` launches it.
pub struct MshdBuilder {
    name: String,
    toml: Vec<String>,
    ak_options: Option<String>,
    ak_contents: Option<String>,
    ak_mode: u32,
    pass_authorized_keys_flag: bool,
    run_as: Option<String>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    pass_host_key: bool,
    dir: Option<TestDir>,
    audit_log: bool,
}

/// A builder for an mshd in a fresh directory `name` that trusts a new user CA `DIR/user_ca`
/// (made by ssh-keygen) and authorizes no plain key ([`MshdBuilder::certificates_only`]); the
/// CA's private key path.
pub fn user_ca_builder(name: &str) -> (MshdBuilder, PathBuf) {
    let dir = TestDir::new(name);
    let ca = ssh_keygen_ed25519(&dir, "user_ca");
    (Mshd::builder(name).dir(dir).certificates_only(&ca), ca)
}

/// The name of the user running the tests.
pub fn current_user() -> String {
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .expect("the test user has no passwd entry")
}

impl MshdBuilder {
    /// Adds a line to mshd's config file (TOML), e.g. `max_sessions = 2`.
    pub fn toml(mut self, line: &str) -> Self {
        self.toml.push(line.to_string());
        self
    }

    /// Writes the test key's authorized_keys line with these options in front of it.
    pub fn authorized_keys_options(mut self, options: &str) -> Self {
        self.ak_options = Some(options.to_string());
        self
    }

    /// Replaces the authorized_keys file's contents; `{KEY}` is replaced by the test key's
    /// public line (so garbage lines can be put around it).
    pub fn authorized_keys_contents(mut self, text: &str) -> Self {
        self.ak_contents = Some(text.to_string());
        self
    }

    /// Mode of the authorized_keys file (default 0600).
    pub fn authorized_keys_mode(mut self, mode: u32) -> Self {
        self.ak_mode = mode;
        self
    }

    /// Do not pass `--authorized-keys`: mshd then uses `authorized_keys_files` from the
    /// config (add it with `toml(...)`) or its default `%h/.ssh/authorized_keys`.
    pub fn use_config_authorized_keys(mut self) -> Self {
        self.pass_authorized_keys_flag = false;
        self
    }

    /// Runs mshd as this local user (via `runuser -u USER --`, so the tests must run as root);
    /// the fixture's files are chowned to that user.
    pub fn run_as(mut self, user: &str) -> Self {
        self.run_as = Some(user.to_string());
        self
    }

    /// Extra command-line arguments for mshd.
    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_string());
        self
    }

    /// Sets an environment variable for mshd (e.g. XDG_CONFIG_HOME).
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_string(), v.to_string()));
        self
    }

    /// Do not pass `--host-key`: mshd uses (and on first start generates) its default host
    /// key. `host_key`/`host_public`/`known_hosts` then describe a key mshd does not use.
    pub fn default_host_key(mut self) -> Self {
        self.pass_host_key = false;
        self
    }

    /// Reads each user's own `~/.ssh/authorized_keys` (`authorized_keys_files =
    /// ["%h/.ssh/authorized_keys"]`) instead of the fixture's file: for root-mode tests.
    pub fn home_authorized_keys(self) -> Self {
        self.use_config_authorized_keys()
            .toml("authorized_keys_files = [\"%h/.ssh/authorized_keys\"]")
    }

    /// Authorizes no plain key and trusts the user CA whose private key is `ca`: only
    /// certificates get in.
    pub fn certificates_only(self, ca: &Path) -> Self {
        self.authorized_keys_contents("").trusted_user_ca(ca)
    }

    /// `authorized_principals_file = "PATTERN"`.
    pub fn authorized_principals_file(self, pattern: &Path) -> Self {
        self.toml(&format!(
            "authorized_principals_file = \"{}\"",
            pattern.display()
        ))
    }

    /// Trusts the user CA whose private key is `ca` (`trusted_user_ca_keys = ["CA.pub"]`).
    pub fn trusted_user_ca(self, ca: &Path) -> Self {
        self.toml(&format!(
            "trusted_user_ca_keys = [\"{}.pub\"]",
            ca.display()
        ))
    }

    /// Serves host key `key` (`--host-key`) with the host certificate `cert`
    /// (`host_certificates`); `host_key`/`host_public`/`known_hosts` then describe a key mshd
    /// does not use, as with [`MshdBuilder::default_host_key`].
    pub fn host_key_with_certificate(self, key: &Path, cert: &Path) -> Self {
        self.default_host_key()
            .arg("--host-key")
            .arg(&key.display().to_string())
            .toml(&format!("host_certificates = [\"{}\"]", cert.display()))
    }

    /// Writes the audit log to `<dir>/audit.jsonl` (`--audit-log`); read it with
    /// [`Mshd::audit_events`].
    pub fn audit_log(mut self) -> Self {
        self.audit_log = true;
        self
    }

    /// Uses this directory instead of a fresh one.
    pub fn dir(mut self, dir: TestDir) -> Self {
        self.dir = Some(dir);
        self
    }

    /// Starts mshd and waits (up to 20 s) until it accepts connections.
    pub fn start(self) -> Mshd {
        let dir = self.dir.unwrap_or_else(|| TestDir::new(&self.name));
        let host_key = ssh_keygen_ed25519(&dir, "host_ed25519");
        let host_public = std::fs::read_to_string(dir.join("host_ed25519.pub"))
            .unwrap()
            .trim()
            .to_string();
        let client_key = ssh_keygen_ed25519(&dir, "id_ed25519");
        let client_public = std::fs::read_to_string(dir.join("id_ed25519.pub"))
            .unwrap()
            .trim()
            .to_string();
        let ak_text = match (&self.ak_contents, &self.ak_options) {
            (Some(t), _) => t.replace("{KEY}", &client_public),
            (None, Some(o)) => format!("{o} {client_public}\n"),
            (None, None) => format!("{client_public}\n"),
        };
        let authorized_keys = dir.write("authorized_keys", ak_text, self.ak_mode);
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let known_hosts = dir.write(
            "known_hosts",
            format!("[127.0.0.1]:{port} {host_public}\n"),
            0o644,
        );
        let config = dir.write("mshd.toml", self.toml.join("\n") + "\n", 0o644);
        let log = dir.join("mshd.log");

        if let Some(u) = &self.run_as {
            for p in [&host_key, &authorized_keys, &config] {
                chown(p, u);
            }
            chown(&dir.join("host_ed25519.pub"), u);
        }

        let mshd = bin("mshd");
        let mut c = match &self.run_as {
            Some(u) => {
                let mut c = cmd(tool("runuser"), ["-u", u.as_str(), "--"]);
                c.arg(&mshd);
                c
            }
            None => Command::new(&mshd),
        };
        c.arg("--config").arg(&config);
        c.arg("--listen").arg(addr.to_string());
        if self.pass_host_key {
            c.arg("--host-key").arg(&host_key);
        }
        if self.pass_authorized_keys_flag {
            c.arg("--authorized-keys").arg(&authorized_keys);
        }
        if self.audit_log {
            c.arg("--audit-log").arg(dir.join("audit.jsonl"));
        }
        c.arg("-vv");
        c.args(&self.args);
        c.env_remove("RUST_LOG");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        let proc = Proc::spawn("mshd", c, &log);
        let start = std::time::Instant::now();
        proc.wait_for_log("listening on", Duration::from_secs(20));
        wait_for_port(
            addr,
            Duration::from_secs(20).saturating_sub(start.elapsed()),
        );
        let host_fingerprint = fingerprint_of(&dir.join("host_ed25519.pub"));
        Mshd {
            port,
            addr,
            host_key,
            host_public,
            host_fingerprint,
            client_key,
            client_public,
            authorized_keys,
            known_hosts,
            config,
            log,
            user: self.run_as.clone().unwrap_or_else(current_user),
            proc,
            dir,
        }
    }
}

fn chown(path: &std::path::Path, user: &str) {
    let u = nix::unistd::User::from_name(user)
        .unwrap()
        .unwrap_or_else(|| panic!("no user {user}"));
    nix::unistd::chown(path, Some(u.uid), Some(u.gid)).unwrap();
}

/// `SHA256:...` of a public key file, computed by ssh-keygen (the oracle).
pub fn fingerprint_of(pubfile: &std::path::Path) -> String {
    let mut c = cmd(tool("ssh-keygen"), ["-l", "-E", "sha256", "-f"]);
    c.arg(pubfile);
    let out = crate::run(c, b"", Duration::from_secs(10));
    assert!(
        out.status.success(),
        "ssh-keygen -lf failed: {}",
        out.stderr
    );
    out.stdout_str()
        .split_whitespace()
        .nth(1)
        .expect("ssh-keygen -l output")
        .to_string()
}

impl Mshd {
    /// mshd with the defaults: runs as the current user, the test key authorized.
    pub fn start(name: &str) -> Mshd {
        Mshd::builder(name).start()
    }

    pub fn builder(name: &str) -> MshdBuilder {
        MshdBuilder {
            name: name.to_string(),
            toml: Vec::new(),
            ak_options: None,
            ak_contents: None,
            ak_mode: 0o600,
            pass_authorized_keys_flag: true,
            run_as: None,
            args: Vec::new(),
            env: Vec::new(),
            pass_host_key: true,
            dir: None,
            audit_log: false,
        }
    }

    /// `[127.0.0.1]:PORT ssh-ed25519 AAAA...` for a known_hosts file.
    pub fn known_hosts_line(&self) -> String {
        format!("[127.0.0.1]:{} {}", self.port, self.host_public)
    }

    /// OpenSSH `ssh` to this mshd as `self.user` with the fixture's key, pinned host key
    /// (StrictHostKeyChecking=yes), BatchMode, no user config. `opts` go before the
    /// destination (e.g. `["-tt"]`, `["-o", "SendEnv=LANG"]`), `remote` is the command.
    pub fn ssh(&self, opts: &[&str], remote: &str) -> Command {
        self.ssh_as(&self.user, opts, remote)
    }

    /// As [`Mshd::ssh`], logging in as `user`.
    pub fn ssh_as(&self, user: &str, opts: &[&str], remote: &str) -> Command {
        self.ssh_with_key(user, &self.client_key, opts, remote)
    }

    /// As [`Mshd::ssh`], logging in as `user` with the private key `key`.
    pub fn ssh_with_key(
        &self,
        user: &str,
        key: &std::path::Path,
        opts: &[&str],
        remote: &str,
    ) -> Command {
        let mut c = self.openssh_client("ssh", key);
        c.arg("-p")
            .arg(self.port.to_string())
            .arg("-l")
            .arg(user)
            .args(opts)
            .arg("127.0.0.1");
        if !remote.is_empty() {
            c.arg(remote);
        }
        c
    }

    /// An OpenSSH client (`ssh`, `scp`, `sftp`) set up for this mshd without the port (scp and
    /// sftp spell it `-P`): no user config, the pinned host key, only the given key, no agent.
    pub fn openssh_client(&self, program: &str, key: &std::path::Path) -> Command {
        let mut c = Command::new(tool(program));
        c.args(["-F", "/dev/null"])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .args([
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "ConnectTimeout=10",
                "-i",
            ])
            .arg(key);
        c.env_remove("SSH_AUTH_SOCK");
        c
    }

    /// `<dir>/audit.jsonl`, where [`MshdBuilder::audit_log`] sends the audit log.
    pub fn audit_path(&self) -> PathBuf {
        self.dir.join("audit.jsonl")
    }

    /// Every audit event so far, each line parsed as JSON (panics, naming the line, on one
    /// that is not JSON).
    pub fn audit_events(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.audit_path()).unwrap_or_default();
        // Only whole lines: the writer thread may be in the middle of one.
        let whole = text.rfind('\n').map_or("", |end| &text[..end]);
        whole
            .lines()
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("audit.jsonl:{}: not JSON ({e}): {l}", i + 1))
            })
            .collect()
    }

    /// All audit events once `n` of them are named `event` (the audit log is written by a
    /// thread of its own, so events land a moment after the log line or client exit that
    /// tests see first). Fails after `timeout`.
    pub fn wait_for_audit(
        &self,
        event: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<serde_json::Value> {
        let start = std::time::Instant::now();
        loop {
            let all = self.audit_events();
            if all.iter().filter(|e| e["event"] == event).count() >= n {
                return all;
            }
            assert!(
                start.elapsed() < timeout,
                "{n} x {event:?} not in the audit log after {timeout:?}: {all:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The first audit event `pred` accepts, once there is one: for a test that looks for one
    /// event among others a daemon may still be writing.
    pub fn wait_for_audit_where(
        &self,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
        timeout: Duration,
    ) -> serde_json::Value {
        let start = std::time::Instant::now();
        loop {
            let all = self.audit_events();
            if let Some(e) = all.iter().find(|e| pred(e)) {
                return e.clone();
            }
            assert!(
                start.elapsed() < timeout,
                "no audit event ({what}) after {timeout:?}: {all:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Only the audit events named `event`, once there are `n` of them (see
    /// [`Self::wait_for_audit`]).
    pub fn wait_for_audit_named(
        &self,
        event: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<serde_json::Value> {
        self.wait_for_audit(event, n, timeout)
            .into_iter()
            .filter(|e| e["event"] == event)
            .collect()
    }

    /// mshd's log so far.
    pub fn log_text(&self) -> String {
        self.proc.log_text()
    }

    /// Waits for `needle` in mshd's log (panics with the log after `timeout`).
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> String {
        self.proc.wait_for_log(needle, timeout)
    }

    /// Waits until `needle` is in the log `n` times; returns the log then.
    pub fn wait_for_log_count(&self, needle: &str, n: usize, timeout: Duration) -> String {
        let start = std::time::Instant::now();
        loop {
            let text = self.log_text();
            if text.matches(needle).count() >= n {
                return text;
            }
            assert!(
                start.elapsed() < timeout,
                "{n} x {needle:?} not in mshd's log after {timeout:?}:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Runs the `sshprobe.py` subcommand `subcommand` against this mshd as its user
    /// (`SUBCOMMAND 127.0.0.1 PORT USER ARGS...`) and returns the JSON it prints.
    pub fn probe_as_user(
        &self,
        subcommand: &str,
        args: &[&str],
        timeout: Duration,
    ) -> serde_json::Value {
        let port = self.port.to_string();
        let mut argv = vec![subcommand, "127.0.0.1", &port, &self.user];
        argv.extend_from_slice(args);
        probe(&argv, timeout)
    }

    /// Asserts that a client run against this mshd exited 0, showing its stderr and mshd's
    /// log otherwise.
    #[track_caller]
    pub fn assert_ok(&self, out: &crate::Output) {
        assert_eq!(
            out.code(),
            Some(0),
            "stderr: {}\nlog:\n{}",
            out.stderr,
            self.log_text()
        );
    }
}

/// Runs mshd with `dir/mshd.toml` holding `toml` and only `key` as host key: `--check-config`
/// when `check`, else a real start with `-v` on a free loopback port, for tests where it must
/// fail (a start that succeeds is killed after 20 s).
pub fn run_with_host_key(dir: &TestDir, key: &Path, toml: &str, check: bool) -> crate::Output {
    let cfg = dir.write("mshd.toml", toml, 0o644);
    let listen = format!("127.0.0.1:{}", free_port());
    let mut c = cmd(bin("mshd"), ["--config"]);
    c.arg(cfg)
        .args(["--listen", &listen, "--host-key"])
        .arg(key)
        .arg(if check { "--check-config" } else { "-v" });
    crate::run(c, b"", Duration::from_secs(20))
}

/// `mshd --check-config --config FILE` run to completion (20 s at most).
pub fn check_config(file: &Path) -> crate::Output {
    let mut c = cmd(bin("mshd"), ["--check-config", "--config"]);
    c.arg(file);
    crate::run(c, b"", Duration::from_secs(20))
}

/// Makes a file's mode exactly `mode` (for strict_modes tests).
pub fn set_mode(path: &std::path::Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The Python of the probe venv that scripts/test.sh makes (`target/probe-venv`, with
/// paramiko and ssh-audit from PyPI). Fails, never skips, when it is missing.
pub fn probe_python() -> PathBuf {
    let p = probe_venv().join("bin/python");
    assert!(
        p.exists(),
        "{} missing: run scripts/test.sh, which creates the venv with paramiko and ssh-audit",
        p.display()
    );
    p
}

/// `target/probe-venv`.
pub fn probe_venv() -> PathBuf {
    crate::target_dir()
        .parent()
        .expect("target dir")
        .join("probe-venv")
}

/// `ssh-audit` from the probe venv.
pub fn ssh_audit() -> PathBuf {
    let p = probe_venv().join("bin/ssh-audit");
    assert!(
        p.exists(),
        "{} missing: run scripts/test.sh, which installs ssh-audit 3.9 into the probe venv",
        p.display()
    );
    p
}

/// A `Command` running `tests/probes/sshprobe.py SUBCOMMAND ARGS...`.
pub fn probe_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(probe_python());
    c.arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("probes/sshprobe.py"));
    c.args(args);
    c
}

/// Runs a wire probe (see tests/probes/sshprobe.py) and returns the JSON it printed.
pub fn probe(args: &[&str], timeout: Duration) -> serde_json::Value {
    let out = crate::run(probe_cmd(args), b"", timeout);
    assert!(
        out.status.success(),
        "sshprobe.py {args:?} failed ({:?}): {}",
        out.code(),
        out.stderr
    );
    let text = out.stdout_str();
    serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "sshprobe.py {args:?} printed no JSON ({e}): {text}\n{}",
            out.stderr
        )
    })
}

/// tests/probes/hostile_server.py SCENARIO HOST_KEY ARGS... in the probe venv, its output in
/// DIR/hostile-SCENARIO.log; returns it (stopped by PID when dropped) and the port it listens
/// on once it said so.
pub fn hostile_server(
    dir: &TestDir,
    scenario: &str,
    host_key: &Path,
    args: &[&Path],
) -> (Proc, u16) {
    let mut c = Command::new(probe_python());
    c.arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("probes/hostile_server.py"))
        .arg(scenario)
        .arg(host_key)
        .args(args);
    let server = Proc::spawn(
        &format!("hostile_server.py {scenario}"),
        c,
        &dir.join(format!("hostile-{scenario}.log")),
    );
    let start = Instant::now();
    loop {
        let log = server.log_text();
        if let Some(port) = log.lines().next().and_then(|l| l.trim().parse().ok()) {
            return (server, port);
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no port from hostile_server.py {scenario}; log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}
