//! msh against a real OpenSSH sshd: exec with exit status and separate stderr, 64 MiB of
//! stdin checksummed remotely, every host-verification rule (accept-new, yes, changed,
//! @revoked, hashed, wildcards/negation, port rules, --pin), identities (encrypted key with
//! the passphrase typed on a pty, a 0644 key refused, ssh-agent keys).
//!
//! Every msh here runs with HOME set to the test's directory (so no real ~/.ssh is used),
//! without SSH_AUTH_SOCK unless the test starts its own agent, and with
//! GlobalKnownHostsFile=/dev/null.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use msh_tests::sshd::{Sshd, SshdOptions};
use msh_tests::*;

pub(crate) const T: Duration = Duration::from_secs(60);

/// An msh command for `port` as `user` with known_hosts `kh`, HOME = `dir`, no agent.
pub(crate) fn msh_cmd(dir: &TestDir, port: u16, user: &str, kh: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin("msh"));
    c.arg("-p")
        .arg(port.to_string())
        .arg("-l")
        .arg(user)
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", kh.display()))
        .args(["-o", "GlobalKnownHostsFile=/dev/null"])
        .args(args)
        .env("HOME", &dir.path)
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("RUST_LOG");
    c
}

/// A fixture sshd with an authorized ed25519 user key and a known_hosts file that trusts it.
pub(crate) struct Setup {
    pub dir: TestDir,
    pub sshd: Sshd,
    pub id: PathBuf,
    pub kh: PathBuf,
}

pub(crate) fn setup(name: &str) -> Setup {
    setup_with(name, SshdOptions::default())
}

pub(crate) fn setup_with(name: &str, opts: SshdOptions) -> Setup {
    let dir = TestDir::new(name);
    let sshd = Sshd::start_with(&dir, opts);
    let id = ssh_keygen_ed25519(&dir, "id_user");
    sshd.authorize(&id);
    let kh = sshd.write_known_hosts(&dir.join("known_hosts"));
    Setup { dir, sshd, id, kh }
}

impl Setup {
    /// msh with the user key, StrictHostKeyChecking=yes, BatchMode, then `args`.
    pub fn msh(&self, args: &[&str]) -> Command {
        let mut c = self.msh_with(&self.kh, &self.id, &["-o", "BatchMode=yes"]);
        c.args(args);
        c
    }

    /// Runs msh with `-o StrictHostKeyChecking=MODE 127.0.0.1 COMMAND` (and [`Setup::msh`]'s
    /// options).
    pub fn run_strict(&self, mode: &str, command: &str) -> Output {
        run(
            self.msh(&[
                "-o",
                &format!("StrictHostKeyChecking={mode}"),
                "127.0.0.1",
                command,
            ]),
            b"",
            T,
        )
    }

    /// msh with known_hosts `kh` and key `key`, then `args` (no other options).
    pub fn msh_with(&self, kh: &Path, key: &Path, args: &[&str]) -> Command {
        let mut c = msh_cmd(&self.dir, self.sshd.port, &self.sshd.user, kh, &[]);
        c.arg("-i").arg(key).args(args);
        c
    }

    pub fn host_key_line(&self) -> &str {
        &self.sshd.host_key("ed25519").public_line
    }

    pub fn fingerprint(&self) -> String {
        msh_common::keys::fingerprint(&self.sshd.host_key("ed25519").public)
    }

    pub fn name(&self) -> String {
        format!("[127.0.0.1]:{}", self.sshd.port)
    }

    /// `ssh-keygen -F [127.0.0.1]:PORT -f KH`: what OpenSSH finds for this sshd in `kh`.
    pub fn ssh_keygen_find(&self, kh: &Path) -> Output {
        run(
            cmd(
                tool("ssh-keygen"),
                ["-F", &self.name(), "-f", kh.to_str().unwrap()],
            ),
            b"",
            T,
        )
    }
}

/// A different ed25519 public key line (`ssh-ed25519 AAAA...`), made by ssh-keygen.
pub(crate) fn other_key_line(dir: &TestDir, name: &str) -> String {
    let p = ssh_keygen_ed25519(dir, name);
    let text = std::fs::read_to_string(msh_common::keys::public_key_path(&p)).unwrap();
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The remote part of stderr: the fixture's sshd runs with LogLevel DEBUG1 and `-e`, which
/// makes it copy its session `debug1:` lines to the client's stderr.
pub(crate) fn remote_stderr(stderr: &str) -> String {
    stderr
        .split_inclusive('\n')
        .filter(|l| !l.starts_with("debug1: "))
        .collect()
}

fn one_line(stderr: &str) -> bool {
    stderr.trim_end().lines().count() == 1
}

/// msh refused before any session: exit 255 and the reason in one line.
#[track_caller]
fn assert_refused_in_one_line(out: &Output) {
    assert_eq!(out.code(), Some(255));
    assert!(one_line(&out.stderr), "{}", out.stderr);
}

#[test]
fn exec_returns_exit_status_and_separates_stderr() {
    let s = setup("msh-sshd-exec");
    let out = run(
        s.msh(&[
            "-o",
            "StrictHostKeyChecking=yes",
            "127.0.0.1",
            "echo",
            "out",
            "words;",
            "echo err >&2; exit 7",
        ]),
        b"",
        T,
    );
    assert_eq!(out.code(), Some(7), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_str(), "out words\n");
    assert_eq!(remote_stderr(&out.stderr), "err\n");
}

#[test]
fn stdin_64mib_streams_with_matching_remote_sha256() {
    let s = setup("msh-sshd-bulk");
    let mut data = vec![0u8; 64 * 1024 * 1024];
    rand::fill(&mut data[..]);
    let file = s.dir.write("bulk.bin", &data, 0o600);
    let local_sum = sha256sum(&file);
    let start = Instant::now();
    let out = run(s.msh(&["127.0.0.1", "sha256sum"]), &data, T);
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    let remote_sum = out
        .stdout_str()
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string();
    assert_eq!(remote_sum, local_sum, "64 MiB arrived altered");
    eprintln!("64 MiB upload + checksum: {:?}", start.elapsed());
}

#[test]
fn accept_new_appends_a_line_that_ssh_keygen_finds() {
    let s = setup("msh-sshd-accept-new");
    let kh = s.dir.join("fresh_known_hosts");
    let c = s.msh_with(
        &kh,
        &s.id,
        &[
            "-o",
            "StrictHostKeyChecking=accept-new",
            "127.0.0.1",
            "echo ok",
        ],
    );
    let out = run(c, b"", T);
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_str(), "ok\n");
    out.assert_stderr_contains("Permanently added");
    let found = s.ssh_keygen_find(&kh);
    assert_eq!(
        found.code(),
        Some(0),
        "ssh-keygen -F found nothing: {}",
        found.stderr
    );
    found.assert_stdout_contains(s.host_key_line());
    // Second connection: now trusted under StrictHostKeyChecking=yes, file unchanged.
    let before = std::fs::read_to_string(&kh).unwrap();
    let c = s.msh_with(
        &kh,
        &s.id,
        &["-o", "StrictHostKeyChecking=yes", "127.0.0.1", "true"],
    );
    assert_eq!(run(c, b"", T).code(), Some(0));
    assert_eq!(std::fs::read_to_string(&kh).unwrap(), before);
}

#[test]
fn accept_new_with_hash_known_hosts_writes_a_hashed_line() {
    let s = setup("msh-sshd-accept-hashed");
    let kh = s.dir.join("hashed_known_hosts");
    let c = s.msh_with(
        &kh,
        &s.id,
        &[
            "-q",
            "-o",
            "StrictHostKeyChecking=accept-new",
            "-o",
            "HashKnownHosts=yes",
            "127.0.0.1",
            "true",
        ],
    );
    let out = run(c, b"", T);
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(remote_stderr(&out.stderr), "", "-q must silence the notice");
    let text = std::fs::read_to_string(&kh).unwrap();
    assert!(text.starts_with("|1|"), "{text}");
    assert!(!text.contains("127.0.0.1"), "{text}");
    let found = s.ssh_keygen_find(&kh);
    assert_eq!(found.code(), Some(0), "{}", found.stderr);
}

#[test]
fn unknown_host_with_yes_is_refused_and_file_unchanged() {
    let s = setup("msh-sshd-unknown-yes");
    let text = format!("otherhost {}\n", other_key_line(&s.dir, "k2"));
    std::fs::write(&s.kh, &text).unwrap();
    let out = s.run_strict("yes", "true");
    assert_refused_in_one_line(&out);
    out.assert_stderr_contains("accept-new");
    out.assert_stderr_contains(&s.fingerprint());
    assert_eq!(std::fs::read_to_string(&s.kh).unwrap(), text);
}

#[test]
fn default_ask_without_a_terminal_refuses_like_yes() {
    let s = setup("msh-sshd-ask-notty");
    std::fs::write(&s.kh, "").unwrap();
    let c = s.msh_with(&s.kh, &s.id, &["127.0.0.1", "true"]);
    // setsid: no controlling terminal, so /dev/tty cannot be opened.
    let mut sc = Command::new("setsid");
    sc.arg(c.get_program()).args(c.get_args());
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => sc.env(k, v),
            None => sc.env_remove(k),
        };
    }
    let out = run(sc, b"", T);
    assert_eq!(out.code(), Some(255), "stderr: {}", out.stderr);
    out.assert_stderr_contains("no terminal to ask on");
    assert_eq!(std::fs::read_to_string(&s.kh).unwrap(), "");
    // BatchMode=yes never asks, terminal or not.
    let out = run(s.msh(&["127.0.0.1", "true"]), b"", T);
    assert_eq!(out.code(), Some(255), "stderr: {}", out.stderr);
    out.assert_stderr_contains("BatchMode=yes forbids asking");
    assert_eq!(std::fs::read_to_string(&s.kh).unwrap(), "");
}

#[test]
fn changed_key_is_refused_naming_file_and_line() {
    let s = setup("msh-sshd-changed");
    let text = format!(
        "# first line is a comment\n{} {}\n",
        s.name(),
        other_key_line(&s.dir, "k2")
    );
    std::fs::write(&s.kh, &text).unwrap();
    let out = s.run_strict("accept-new", "true");
    assert_refused_in_one_line(&out);
    let where_ = format!("{}:2", s.kh.display());
    out.assert_stderr_contains(&where_);
    out.assert_stderr_contains("CHANGED");
    out.assert_stderr_contains(&s.fingerprint());
    assert!(
        out.stderr
            .contains(&format!("msh-keygen known-hosts remove '{}'", s.name())),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read_to_string(&s.kh).unwrap(), text);
}

#[test]
fn revoked_key_is_refused_even_when_also_trusted() {
    let s = setup("msh-sshd-revoked");
    let text = format!(
        "{} {}\n@revoked * {}\n",
        s.name(),
        s.host_key_line(),
        s.host_key_line()
    );
    std::fs::write(&s.kh, &text).unwrap();
    let out = s.run_strict("yes", "true");
    assert_refused_in_one_line(&out);
    out.assert_stderr_contains("@revoked");
    out.assert_stderr_contains(&format!("{}:2", s.kh.display()));
    assert_eq!(std::fs::read_to_string(&s.kh).unwrap(), text);
}

#[test]
fn hashed_entry_from_ssh_keygen_is_trusted() {
    let s = setup("msh-sshd-hashed");
    let out = run(
        cmd(tool("ssh-keygen"), ["-H", "-f", s.kh.to_str().unwrap()]),
        b"",
        T,
    );
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(std::fs::read_to_string(&s.kh).unwrap().starts_with("|1|"));
    let out = s.run_strict("yes", "echo ok");
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_str(), "ok\n");
}

#[test]
fn wildcard_trusts_and_negation_excludes() {
    let s = setup("msh-sshd-wildcard");
    let port = s.sshd.port;
    std::fs::write(
        &s.kh,
        format!("[127.0.0.?]:{port},[other]:1 {}\n", s.host_key_line()),
    )
    .unwrap();
    let out = s.run_strict("yes", "true");
    assert_eq!(out.code(), Some(0), "wildcard: {}", out.stderr);

    std::fs::write(
        &s.kh,
        format!(
            "[127.0.0.*]:{port},![127.0.0.1]:{port} {}\n",
            s.host_key_line()
        ),
    )
    .unwrap();
    let out = s.run_strict("yes", "true");
    assert_eq!(out.code(), Some(255), "negation must exclude");
    out.assert_stderr_contains("no known_hosts entry");
}

#[test]
fn port_rules_portless_matching_key_vouches_different_key_is_unknown() {
    let s = setup("msh-sshd-ports");
    // Same key recorded without a port: OpenSSH's "matching key w/out port" trusts it.
    std::fs::write(&s.kh, format!("127.0.0.1 {}\n", s.host_key_line())).unwrap();
    let out = s.run_strict("yes", "true");
    assert_eq!(out.code(), Some(0), "portless matching key: {}", out.stderr);

    // A different key recorded without a port: the host on this port is unknown, not changed.
    let text = format!("127.0.0.1 {}\n", other_key_line(&s.dir, "k2"));
    std::fs::write(&s.kh, &text).unwrap();
    let out = s.run_strict("yes", "true");
    assert_eq!(out.code(), Some(255));
    out.assert_stderr_contains("no known_hosts entry");
    assert!(!out.stderr.contains("CHANGED"), "{}", out.stderr);

    // The same different key under [host]:port is a change.
    std::fs::write(
        &s.kh,
        format!("{} {}\n", s.name(), other_key_line(&s.dir, "k3")),
    )
    .unwrap();
    let out = s.run_strict("yes", "true");
    assert_eq!(out.code(), Some(255));
    out.assert_stderr_contains("CHANGED");
}

#[test]
fn pin_right_connects_wrong_refuses_and_known_hosts_untouched() {
    let s = setup("msh-sshd-pin");
    let kh = s.dir.join("never_created");
    let fp = s.fingerprint();
    let wrong = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let with_pins = |pins: &[&str]| {
        let mut args = vec!["-o", "StrictHostKeyChecking=accept-new"];
        for pin in pins {
            args.extend(["--pin", pin]);
        }
        args.extend(["127.0.0.1", "echo pinned"]);
        run(s.msh_with(&kh, &s.id, &args), b"", T)
    };
    let out = with_pins(&[wrong, &fp]);
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_str(), "pinned\n");
    assert!(!kh.exists(), "--pin must not write known_hosts");

    let out = with_pins(&[wrong]);
    assert_refused_in_one_line(&out);
    assert!(
        out.stderr.contains("--pin") && out.stderr.contains(&fp),
        "{}",
        out.stderr
    );
    assert!(!kh.exists(), "--pin must not write known_hosts");
    // A pin also overrides a known_hosts that says "changed": known_hosts is not read.
    std::fs::write(
        &kh,
        format!("{} {}\n", s.name(), other_key_line(&s.dir, "k2")),
    )
    .unwrap();
    let c = s.msh_with(&kh, &s.id, &["--pin", &fp, "127.0.0.1", "true"]);
    assert_eq!(run(c, b"", T).code(), Some(0));
}

#[test]
fn private_key_readable_by_others_is_refused_with_the_fix() {
    let s = setup("msh-sshd-keymode");
    std::fs::set_permissions(&s.id, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run(s.msh(&["127.0.0.1", "true"]), b"", T);
    assert_eq!(out.code(), Some(255), "stderr: {}", out.stderr);
    out.assert_stderr_contains("UNPROTECTED PRIVATE KEY FILE");
    assert!(
        out.stderr
            .contains(&format!("chmod 600 {}", s.id.display())),
        "{}",
        out.stderr
    );
    out.assert_stderr_contains("permission denied (publickey)");
}

#[test]
fn unauthorized_key_fails_with_one_line_listing_keys() {
    let s = setup("msh-sshd-denied");
    let stranger = ssh_keygen_ed25519(&s.dir, "id_stranger");
    let c = s.msh_with(&s.kh, &stranger, &["127.0.0.1", "true"]);
    let out = run(c, b"", T);
    assert_refused_in_one_line(&out);
    out.assert_stderr_contains(&format!(
        "msh: {u}@127.0.0.1: permission denied (publickey); tried: {}; to log in, the public \
             half of one of these keys must be in ~/.ssh/authorized_keys of {u} on 127.0.0.1",
        stranger.display(),
        u = s.sshd.user,
    ));
}

#[test]
fn ssh_agent_key_logs_in_without_identity_files() {
    let s = setup("msh-sshd-agent");
    let (_agent, sock) = start_ssh_agent(&s.dir.path);
    let mut add = cmd(tool("ssh-add"), [s.id.as_os_str()]);
    add.env("SSH_AUTH_SOCK", &sock);
    let out = run(add, b"", T);
    assert_eq!(out.code(), Some(0), "ssh-add: {}", out.stderr);
    // No -i, and HOME has no ~/.ssh/id_*: only the agent can authenticate.
    let mut c = msh_cmd(&s.dir, s.sshd.port, &s.sshd.user, &s.kh, &[]);
    c.env("SSH_AUTH_SOCK", &sock)
        .args(["-o", "BatchMode=yes", "127.0.0.1", "echo agent-ok"]);
    let out = run(c, b"", T);
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_str(), "agent-ok\n");

    // IdentitiesOnly with an -i file that is not the agent's key: the agent key is not used.
    let stranger = ssh_keygen_ed25519(&s.dir, "id_stranger");
    let mut c = msh_cmd(&s.dir, s.sshd.port, &s.sshd.user, &s.kh, &[]);
    c.env("SSH_AUTH_SOCK", &sock)
        .arg("-i")
        .arg(&stranger)
        .args([
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "127.0.0.1",
            "true",
        ]);
    let out = run(c, b"", T);
    assert_eq!(out.code(), Some(255), "stderr: {}", out.stderr);
    assert!(!out.stderr.contains("agent:"), "{}", out.stderr);
}

#[test]
fn connection_refused_is_one_line_and_255() {
    let dir = TestDir::new("msh-refused");
    let port = free_port();
    assert_connection_refused(&dir, port, &dir.join("kh"));
}

/// msh to a port nobody listens on exits 255 with exactly one line naming address and port.
pub(crate) fn assert_connection_refused(dir: &TestDir, port: u16, kh: &Path) {
    let out = run(
        msh_cmd(dir, port, "nobody", kh, &["127.0.0.1", "true"]),
        b"",
        T,
    );
    assert_eq!(out.code(), Some(255));
    assert_eq!(
        out.stderr,
        format!("msh: connect to 127.0.0.1 port {port}: Connection refused\n")
    );
}

#[test]
fn strict_host_key_checking_no_is_refused_with_an_explanation() {
    let dir = TestDir::new("msh-strict-no");
    let kh = dir.join("kh");
    // msh refuses these options itself; port 1 is never reached.
    let refused_early = |args: &[&str]| run(msh_cmd(&dir, 1, "nobody", &kh, args), b"", T);
    let out = refused_early(&["-o", "StrictHostKeyChecking=no", "127.0.0.1", "true"]);
    assert_refused_in_one_line(&out);
    assert!(
        out.stderr.contains("accept-new") && out.stderr.contains("--pin"),
        "{}",
        out.stderr
    );
    let out = refused_early(&["-o", "Tunnel=yes", "127.0.0.1", "true"]);
    assert_eq!(out.code(), Some(255));
    out.assert_stderr_contains("unknown option \"Tunnel\"");
}

/// The passphrase is typed on a real terminal: msh runs inside a detached tmux session and
/// tmux send-keys types it when the prompt appears.
#[test]
fn encrypted_key_passphrase_is_asked_on_the_terminal() {
    let s = setup("msh-sshd-passphrase");
    let enc = s.dir.join("id_enc");
    let out = run(
        cmd(
            tool("ssh-keygen"),
            [
                "-q",
                "-t",
                "ed25519",
                "-N",
                "sekrit pass",
                "-C",
                "enc",
                "-f",
                enc.to_str().unwrap(),
            ],
        ),
        b"",
        T,
    );
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    s.sshd.authorize(&enc);
    let tmux = crate::msh_interactive::Tmux::new(&s.dir);
    let outf = s.dir.join("out.txt");
    let rcf = s.dir.join("rc.txt");
    let line = format!(
        "HOME={home} {msh} -p {port} -l {user} -i {id} -o UserKnownHostsFile={kh} \
         -o GlobalKnownHostsFile=/dev/null 127.0.0.1 'echo unlocked' > {out} 2>&1; echo $? > {rc}",
        home = s.dir.path.display(),
        msh = bin("msh").display(),
        port = s.sshd.port,
        user = s.sshd.user,
        id = enc.display(),
        kh = s.kh.display(),
        out = outf.display(),
        rc = rcf.display(),
    );
    tmux.start(&line);
    tmux.wait_for_screen(&format!("Enter passphrase for key '{}':", enc.display()));
    tmux.send_keys(&["sekrit pass", "Enter"]);
    let rc = crate::msh_interactive::wait_for_file(&rcf);
    assert_eq!(
        rc.trim(),
        "0",
        "msh output: {}",
        std::fs::read_to_string(&outf).unwrap_or_default()
    );
    assert_eq!(
        remote_stderr(&std::fs::read_to_string(&outf).unwrap()),
        "unlocked\n"
    );
}

#[test]
fn config_file_host_block_supplies_port_identity_and_strictness() {
    let s = setup("msh-sshd-config");
    let kh = s.dir.join("cfg_known_hosts");
    let config = s.dir.write(
        "msh_config",
        format!(
            "# comment\nHost nomatch\n  Port 1\nHost 127.0.0.*\n  Port {port}\n  \
             IdentityFile {id}\n  User {user}\n  StrictHostKeyChecking accept-new\n  \
             UserKnownHostsFile {kh}\n  GlobalKnownHostsFile /dev/null\n",
            port = s.sshd.port,
            id = s.id.display(),
            user = s.sshd.user,
            kh = kh.display()
        ),
        0o644,
    );
    let mut c = Command::new(bin("msh"));
    c.arg("-F")
        .arg(&config)
        .args(["-q", "-o", "BatchMode=yes", "127.0.0.1", "echo from-config"])
        .env("HOME", &s.dir.path)
        .env_remove("SSH_AUTH_SOCK");
    let out = run(c, b"", T);
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_str(), "from-config\n");
    assert!(std::fs::read_to_string(&kh)
        .unwrap()
        .contains(s.host_key_line()));

    // An unknown key in the file is an error naming file:line, before any connection.
    let bad = s
        .dir
        .write("bad_config", "Host *\n  ForwardX11 yes\n", 0o644);
    let mut c = Command::new(bin("msh"));
    c.arg("-F").arg(&bad).args(["127.0.0.1", "true"]);
    let out = run(c, b"", T);
    assert_eq!(out.code(), Some(255));
    out.assert_stderr_contains(&format!(
        "{}:2: ForwardX11=yes: msh does not forward X11",
        bad.display()
    ));
}

#[test]
fn setenv_and_sendenv_reach_the_remote_command() {
    let s = setup_with(
        "msh-sshd-env",
        SshdOptions {
            extra_config: vec!["AcceptEnv MSHT_*".into()],
            ..Default::default()
        },
    );
    let mut c = s.msh(&[
        "-o",
        "SetEnv=MSHT_A=set",
        "-o",
        "SendEnv=MSHT_B*",
        "127.0.0.1",
        "echo \"$MSHT_A/$MSHT_B1/${MSHT_C:-unset}\"",
    ]);
    c.env("MSHT_B1", "sent").env("MSHT_C", "not-sent");
    let out = run(c, b"", T);
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_str(), "set/sent/unset\n");
}

#[test]
fn verbose_names_the_known_hosts_line_that_vouched() {
    let s = setup("msh-sshd-verbose");
    let out = run(s.msh(&["-v", "127.0.0.1", "true"]), b"", T);
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("found in {}:1", s.kh.display())),
        "{}",
        out.stderr
    );
}

#[test]
fn malformed_known_hosts_line_is_warned_about_and_kept() {
    let s = setup("msh-sshd-malformed");
    let text = format!(
        "this line is not a known_hosts entry\n{} {}\n",
        s.name(),
        s.host_key_line()
    );
    std::fs::write(&s.kh, &text).unwrap();
    let out = run(s.msh(&["127.0.0.1", "echo ok"]), b"", T);
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert!(
        out.stderr.contains(&format!("{}:1", s.kh.display())),
        "no warning naming the line: {}",
        out.stderr
    );
    assert_eq!(std::fs::read_to_string(&s.kh).unwrap(), text);

    // accept-new appending for another name keeps the bad line as it was.
    let out = run(
        s.msh(&[
            "-q",
            "-o",
            "StrictHostKeyChecking=accept-new",
            "-o",
            "HostKeyAlias=alias.test",
            "127.0.0.1",
            "true",
        ]),
        b"",
        T,
    );
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    let after = std::fs::read_to_string(&s.kh).unwrap();
    assert!(after.starts_with(&text), "{after}");
    assert!(
        after.contains(&format!("\nalias.test {}", s.host_key_line())),
        "{after}"
    );
}

#[test]
fn connect_timeout_on_a_server_that_never_speaks() {
    let dir = TestDir::new("msh-timeout");
    // Accepts TCP connections (kernel backlog) but never sends an SSH banner.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let kh = dir.join("kh");
    let start = Instant::now();
    let out = run(
        msh_cmd(
            &dir,
            port,
            "nobody",
            &kh,
            &["-o", "ConnectTimeout=1", "127.0.0.1", "true"],
        ),
        b"",
        T,
    );
    assert_eq!(out.code(), Some(255));
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(
        out.stderr,
        format!(
            "msh: connection to 127.0.0.1 port {port} timed out during the SSH handshake \
             (ConnectTimeout=1s)\n"
        )
    );
    drop(listener);
}

#[test]
fn pty_only_when_asked_and_shell_reads_piped_stdin() {
    let s = setup("msh-sshd-tty");
    // -tt forces a PTY even with stdin from a pipe.
    let out = run(s.msh(&["-tt", "127.0.0.1", "tty"]), b"", T);
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    // (The fixture's sshd also copies its debug1 lines onto the PTY.)
    assert!(
        out.stdout_str().lines().any(|l| l.starts_with("/dev/pts/")),
        "{}",
        out.stdout_str()
    );
    // A command alone gets no PTY.
    let out = run(s.msh(&["127.0.0.1", "tty"]), b"", T);
    assert_eq!(out.stdout_str(), "not a tty\n");
    // No command and stdin not a terminal: no PTY, the shell reads commands from stdin.
    let out = run(s.msh(&["127.0.0.1"]), b"echo via-shell $((40+2))\n", T);
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_str(), "via-shell 42\n");
    assert!(
        out.stderr
            .contains("Pseudo-terminal will not be allocated because stdin is not a terminal."),
        "{}",
        out.stderr
    );
}

#[test]
fn closed_stdout_ends_msh_quietly() {
    let s = setup("msh-sshd-epipe");
    let mut c = s.msh(&["127.0.0.1", "yes"]);
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .stdin(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = [0u8; 4];
    std::io::Read::read_exact(&mut stdout, &mut buf).unwrap();
    assert_eq!(&buf, b"y\ny\n");
    drop(stdout);
    let mut p = Proc {
        child,
        name: "msh yes".into(),
        log: None,
    };
    let st = p
        .wait_timeout(Duration::from_secs(15))
        .expect("msh kept running after its stdout was closed");
    assert_eq!(st.code(), Some(255));
    let mut err = String::new();
    std::io::Read::read_to_string(p.child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(remote_stderr(&err), "", "quiet exit expected");
}

#[test]
fn rsa_host_key_and_rsa_user_key_use_sha2_signatures() {
    let s = setup_with(
        "msh-sshd-rsa",
        SshdOptions {
            host_key_types: vec!["rsa".into()],
            // Refuse SHA-1 RSA signatures on both sides: a login proves rsa-sha2 was used.
            extra_config: vec![
                "PubkeyAcceptedAlgorithms rsa-sha2-512,rsa-sha2-256".into(),
                "HostKeyAlgorithms rsa-sha2-512,rsa-sha2-256".into(),
            ],
        },
    );
    let rsa = ssh_keygen_key(&s.dir, "id_rsa_user", "rsa");
    s.sshd.authorize(&rsa);
    let kh = s.dir.write(
        "rsa_known_hosts",
        format!("{} {}\n", s.name(), s.sshd.host_key("rsa").public_line),
        0o644,
    );
    let c = s.msh_with(
        &kh,
        &rsa,
        &[
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "127.0.0.1",
            "echo rsa-ok",
        ],
    );
    let out = run(c, b"", T);
    s.sshd.assert_ok(&out);
    assert_eq!(out.stdout_str(), "rsa-ok\n");
}

/// OpenSSH asks the server for the key type it already knows; so must msh, or a host
/// recorded with its ECDSA key would look unknown when it also has an ed25519 key.
#[test]
fn host_known_by_its_ecdsa_key_is_trusted_although_ed25519_is_preferred() {
    let s = setup_with(
        "msh-sshd-ecdsa-known",
        SshdOptions {
            host_key_types: vec!["ed25519".into(), "ecdsa".into()],
            ..Default::default()
        },
    );
    std::fs::write(
        &s.kh,
        format!("{} {}\n", s.name(), s.sshd.host_key("ecdsa").public_line),
    )
    .unwrap();
    let out = s.run_strict("yes", "echo ecdsa-ok");
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_str(), "ecdsa-ok\n");
}

#[test]
fn default_identity_in_home_ssh_is_used_without_i() {
    let s = setup("msh-sshd-default-id");
    let ssh_dir = s.dir.join(".ssh");
    std::fs::create_dir_all(&ssh_dir).unwrap();
    std::fs::set_permissions(&ssh_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::copy(&s.id, ssh_dir.join("id_ed25519")).unwrap();
    std::fs::set_permissions(
        ssh_dir.join("id_ed25519"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let mut c = msh_cmd(&s.dir, s.sshd.port, &s.sshd.user, &s.kh, &[]);
    c.args(["-o", "BatchMode=yes", "127.0.0.1", "echo default-id"]);
    let out = run(c, b"", T);
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_str(), "default-id\n");
    // With an explicit -o IdentityFile that is not authorized, the default is not tried.
    let stranger = ssh_keygen_ed25519(&s.dir, "id_stranger");
    let mut c = msh_cmd(&s.dir, s.sshd.port, &s.sshd.user, &s.kh, &[]);
    c.arg("-o")
        .arg(format!("IdentityFile={}", stranger.display()))
        .args(["-o", "BatchMode=yes", "127.0.0.1", "true"]);
    let out = run(c, b"", T);
    assert_eq!(out.code(), Some(255), "stderr: {}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("tried: {}; to log in", stranger.display())),
        "{}",
        out.stderr
    );
}
