//! A real OpenSSH `sshd` on a free 127.0.0.1 port, configured entirely from a test's own
//! directory: the peer that msh's client (and msh-keygen scan) must interoperate with.
//!
//! What the fixture sets up, all under `TestDir/sshd/`:
//! - host keys made by `ssh-keygen` (`ssh_host_ed25519_key` always; ECDSA P-256 and RSA 3072
//!   when asked through [`SshdOptions::host_key_types`]), mode 0600;
//! - an empty `authorized_keys` (mode 0600) that [`Sshd::authorize`] appends to;
//! - `sshd_config` with `ListenAddress 127.0.0.1`, `Port`, `HostKey`s, `AuthorizedKeysFile`,
//!   `PidFile none`, `UsePAM no`, `StrictModes yes`, `LogLevel DEBUG1`, public-key auth only,
//!   `PermitRootLogin prohibit-password` (tests run as root in CI), `UseDNS no`, and a generous
//!   `MaxStartups` so parallel connections are not dropped;
//! - `sshd -D -e -f CONFIG` run as a harness [`Proc`] (stopped by PID on drop), its log (stderr)
//!   in `TestDir/sshd/sshd.log`. The fixture returns only once sshd logs that it listens and the
//!   port accepts TCP connections; if sshd exits or times out, the test panics with the log.
//!
//! Logins are as the user running the tests ([`Sshd::user`]). As root, sshd needs its
//! privilege-separation directory `/run/sshd` (created 0755 if missing).
//!
//! Example:
//! ```no_run
//! use msh_tests::{sshd::Sshd, TestDir, ssh_keygen_ed25519, run};
//! let dir = TestDir::new("example");
//! let sshd = Sshd::start(&dir);
//! let id = ssh_keygen_ed25519(&dir, "id_user");
//! sshd.authorize(&id);
//! let kh = sshd.write_known_hosts(&dir.join("known_hosts"));
//! let out = run(sshd.ssh_command(&id, &kh, "echo hi"), b"", std::time::Duration::from_secs(20));
//! assert_eq!(out.stdout, b"hi\n");
//! ```

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use russh::keys::PublicKey;

use crate::{cmd, free_port, is_root, run, tool, Proc, TestDir};

/// How long sshd may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Choices for [`Sshd::start_with`].
#[derive(Debug, Clone)]
pub struct SshdOptions {
    /// Host key types to create with ssh-keygen: any of `ed25519`, `ecdsa` (P-256), `rsa`
    /// (3072 bits). Order is the order of `HostKey` lines. Default: `["ed25519"]`.
    pub host_key_types: Vec<String>,
    /// Extra `sshd_config` lines. They are written before the fixture's own lines, so they
    /// win (sshd keeps the first value it reads for a keyword); a line starting with `Match`
    /// and all lines after it go to the end of the file, where Match blocks must be.
    pub extra_config: Vec<String>,
}

impl Default for SshdOptions {
    fn default() -> Self {
        SshdOptions {
            host_key_types: vec!["ed25519".into()],
            extra_config: Vec::new(),
        }
    }
}

/// One host key of the running sshd.
#[derive(Debug, Clone)]
pub struct HostKey {
    /// `ed25519`, `ecdsa` or `rsa`, as given in [`SshdOptions::host_key_types`].
    pub kind: String,
    /// Private key file (the `HostKey` line).
    pub path: PathBuf,
    /// The `.pub` file beside it.
    pub public_path: PathBuf,
    /// The public key, parsed.
    pub public: PublicKey,
    /// `keytype base64` as in the `.pub` file, without the comment.
    pub public_line: String,
}

/// A running OpenSSH sshd; killed (by PID) when dropped.
pub struct Sshd {
    /// Port on 127.0.0.1.
    pub port: u16,
    /// `127.0.0.1:port`.
    pub addr: SocketAddr,
    /// Directory holding config, keys and log.
    pub dir: PathBuf,
    /// The `sshd_config` in use.
    pub config: PathBuf,
    /// Host keys, in the order of [`SshdOptions::host_key_types`].
    pub host_keys: Vec<HostKey>,
    /// The `AuthorizedKeysFile` (starts empty, mode 0600).
    pub authorized_keys: PathBuf,
    /// User name that may log in: the user running the tests.
    pub user: String,
    /// The sshd process; its log is `proc.log`.
    pub proc: Proc,
}

fn current_user() -> String {
    let uid = nix::unistd::geteuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(u)) => u.name,
        _ => panic!("no passwd entry for uid {uid}: sshd needs one to log in as"),
    }
}

/// Creates a host key of `kind` with ssh-keygen at `dir/ssh_host_KIND_key`.
fn make_host_key(dir: &Path, kind: &str) -> HostKey {
    let (t, bits) = match kind {
        "ed25519" => ("ed25519", None),
        "ecdsa" => ("ecdsa", Some("256")),
        "rsa" => ("rsa", Some("3072")),
        other => {
            panic!("SshdOptions::host_key_types: unknown type {other:?} (ed25519, ecdsa, rsa)")
        }
    };
    let path = dir.join(format!("ssh_host_{kind}_key"));
    let mut c = cmd(tool("ssh-keygen"), ["-q", "-t", t, "-N", "", "-C", ""]);
    if let Some(b) = bits {
        c.args(["-b", b]);
    }
    c.arg("-f").arg(&path);
    let out = run(c, b"", Duration::from_secs(60));
    assert!(
        out.status.success(),
        "ssh-keygen -t {t} for the sshd fixture failed: {}",
        out.stderr
    );
    let public_path = msh_common::keys::public_key_path(&path);
    let text = std::fs::read_to_string(&public_path).unwrap();
    let public_line = text
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let public = msh_common::keys::parse_public_key_line(&public_line)
        .unwrap_or_else(|e| panic!("{}: {e}", public_path.display()));
    HostKey {
        kind: kind.to_string(),
        path,
        public_path,
        public,
        public_line,
    }
}

impl Sshd {
    /// Starts sshd with one ed25519 host key and no extra config.
    pub fn start(dir: &TestDir) -> Sshd {
        Self::start_with(dir, SshdOptions::default())
    }

    /// Starts sshd with `opts`. Retries on another port if the chosen one was taken between
    /// picking it and sshd binding it. Panics (showing sshd's log) if sshd does not come up.
    pub fn start_with(dir: &TestDir, opts: SshdOptions) -> Sshd {
        let sshd_bin = tool("sshd");
        let base = dir.join("sshd");
        std::fs::create_dir_all(&base).unwrap();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
        if is_root() {
            // Privilege separation directory; sshd refuses to start without it.
            let run_sshd = Path::new("/run/sshd");
            if !run_sshd.exists() {
                std::fs::create_dir_all(run_sshd).unwrap();
                std::fs::set_permissions(run_sshd, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
        }
        let host_keys: Vec<HostKey> = opts
            .host_key_types
            .iter()
            .map(|k| make_host_key(&base, k))
            .collect();
        assert!(
            !host_keys.is_empty(),
            "SshdOptions::host_key_types is empty"
        );
        let authorized_keys = base.join("authorized_keys");
        std::fs::write(&authorized_keys, b"").unwrap();
        std::fs::set_permissions(&authorized_keys, std::fs::Permissions::from_mode(0o600)).unwrap();
        let user = current_user();
        let config = base.join("sshd_config");

        let mut last_log = String::new();
        for attempt in 0..3 {
            let port = free_port();
            write_config(
                &config,
                port,
                &host_keys,
                &authorized_keys,
                &opts.extra_config,
            );
            let log = base.join(format!("sshd-{attempt}.log"));
            let mut c = Command::new(&sshd_bin);
            c.arg("-D").arg("-e").arg("-f").arg(&config);
            let mut proc = Proc::spawn("sshd", c, &log);
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            match wait_listening(&mut proc, port) {
                Ok(()) => {
                    return Sshd {
                        port,
                        addr,
                        dir: base,
                        config,
                        host_keys,
                        authorized_keys,
                        user,
                        proc,
                    }
                }
                Err(text) => {
                    let port_taken = text.contains("Address already in use");
                    last_log = text;
                    drop(proc);
                    if !port_taken {
                        break;
                    }
                }
            }
        }
        panic!(
            "OpenSSH sshd did not start (config {}); its log:\n{last_log}",
            config.display()
        );
    }

    /// The host key of `kind` (`ed25519`, `ecdsa`, `rsa`); panics if the fixture has none.
    pub fn host_key(&self, kind: &str) -> &HostKey {
        self.host_keys
            .iter()
            .find(|k| k.kind == kind)
            .unwrap_or_else(|| panic!("sshd fixture has no {kind} host key"))
    }

    /// Appends the public key of `identity` (`identity.pub`, or `identity` itself if it
    /// already ends in `.pub`) to the authorized_keys file.
    pub fn authorize(&self, identity: &Path) {
        let public = if identity.extension().is_some_and(|e| e == "pub") {
            identity.to_path_buf()
        } else {
            msh_common::keys::public_key_path(identity)
        };
        let line = std::fs::read_to_string(&public)
            .unwrap_or_else(|e| panic!("{}: {e}", public.display()));
        self.authorize_line(line.trim());
    }

    /// Appends one raw line (options allowed) to the authorized_keys file.
    pub fn authorize_line(&self, line: &str) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.authorized_keys)
            .unwrap();
        writeln!(f, "{line}").unwrap();
    }

    /// known_hosts lines for this server: `[127.0.0.1]:PORT keytype base64`, one per host key.
    pub fn known_hosts_lines(&self) -> String {
        self.host_keys
            .iter()
            .map(|k| format!("[127.0.0.1]:{} {}\n", self.port, k.public_line))
            .collect()
    }

    /// Writes [`Self::known_hosts_lines`] to `path` (mode 0644) and returns it.
    pub fn write_known_hosts(&self, path: &Path) -> PathBuf {
        std::fs::write(path, self.known_hosts_lines()).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
        path.to_path_buf()
    }

    /// An OpenSSH `ssh` command that logs in with `identity`, checking the host strictly
    /// against `known_hosts`, with no user config, no agent and no prompts, and runs
    /// `remote_command`.
    pub fn ssh_command(
        &self,
        identity: &Path,
        known_hosts: &Path,
        remote_command: &str,
    ) -> Command {
        crate::openssh_command(
            self.port,
            &self.user,
            identity,
            known_hosts,
            &[],
            remote_command,
        )
    }

    /// Asserts that a client run against this sshd exited 0, showing its stderr and sshd's
    /// log otherwise.
    #[track_caller]
    pub fn assert_ok(&self, out: &crate::Output) {
        assert_eq!(
            out.code(),
            Some(0),
            "stderr: {}\nsshd log:\n{}",
            out.stderr,
            self.log()
        );
    }

    /// sshd's log so far.
    pub fn log(&self) -> String {
        self.proc.log_text()
    }
}

/// Waits for sshd's "Server listening" line and a TCP accept; Err(log) if it exits or stalls.
fn wait_listening(proc: &mut Proc, port: u16) -> Result<(), String> {
    let start = Instant::now();
    let needle = format!("Server listening on 127.0.0.1 port {port}");
    loop {
        let text = proc.log_text();
        if text.contains(&needle)
            && std::net::TcpStream::connect_timeout(
                &SocketAddr::from(([127, 0, 0, 1], port)),
                Duration::from_millis(500),
            )
            .is_ok()
        {
            return Ok(());
        }
        if let Ok(Some(status)) = proc.child.try_wait() {
            return Err(format!("{text}\n(sshd exited: {status})"));
        }
        if start.elapsed() > START_TIMEOUT {
            return Err(format!("{text}\n(not listening after {START_TIMEOUT:?})"));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn write_config(
    config: &Path,
    port: u16,
    host_keys: &[HostKey],
    authorized_keys: &Path,
    extra: &[String],
) {
    let split = extra
        .iter()
        .position(|l| l.trim_start().to_ascii_lowercase().starts_with("match "))
        .unwrap_or(extra.len());
    let (first, matches) = extra.split_at(split);
    let mut text = String::from("# Written by msh-tests' sshd fixture.\n");
    for l in first {
        text.push_str(l);
        text.push('\n');
    }
    text.push_str(&format!("Port {port}\nListenAddress 127.0.0.1\n"));
    for k in host_keys {
        text.push_str(&format!("HostKey {}\n", k.path.display()));
    }
    text.push_str(&format!(
        "AuthorizedKeysFile {}\n\
         PidFile none\n\
         UsePAM no\n\
         StrictModes yes\n\
         LogLevel DEBUG1\n\
         PermitRootLogin prohibit-password\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UseDNS no\n\
         MaxStartups 200\n\
         MaxSessions 100\n",
        authorized_keys.display()
    ));
    for l in matches {
        text.push_str(l);
        text.push('\n');
    }
    std::fs::write(config, text).unwrap();
}
