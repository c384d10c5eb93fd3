//! Jump hosts and proxies: `msh -J` / `ProxyJump` through one and two OpenSSH sshd bastions
//! to mshd and to sshd, each hop's host key verified by its own name and port (a hop whose
//! key is unknown or changed stops everything, nothing runs on the target, and the error
//! names the hop), HostKeyAlias per Host block and `--pin` for the final host only;
//! `ProxyCommand` with `%h %p %r %n` run through a relay and through OpenSSH's `ssh -W`;
//! OpenSSH's `ssh` using `msh -W %h:%p bastion` as its ProxyCommand; hostile user and host
//! names refused before they reach a shell.
//! The same through mshd as the bastion, for msh and for OpenSSH's `ssh -J`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use msh_tests::mshd::Mshd;
use msh_tests::sshd::Sshd;
use msh_tests::*;

pub(crate) const T: Duration = Duration::from_secs(60);

static COUNT: AtomicU32 = AtomicU32::new(0);

/// Bastions and targets on loopback, one client key they all accept, a known_hosts file
/// trusting all of them and an msh config naming them (`bastion`, `bastion2`, `target`
/// = mshd, `starget` = sshd, `mbastion` = mshd as a bastion).
pub(crate) struct Net {
    pub dir: TestDir,
    pub bastion: Sshd,
    pub bastion2: Sshd,
    pub sshd_target: Sshd,
    pub mshd: Mshd,
    pub key: PathBuf,
    pub kh: PathBuf,
    pub cfg: PathBuf,
    /// The sshd fixtures' directories, removed last.
    _dirs: Vec<TestDir>,
}

impl Net {
    pub(crate) fn new(name: &str) -> Net {
        let dir = TestDir::new(name);
        let dirs: Vec<TestDir> = ["b1", "b2", "st"]
            .iter()
            .map(|d| TestDir::new(&format!("{name}-{d}")))
            .collect();
        let bastion = Sshd::start(&dirs[0]);
        let bastion2 = Sshd::start(&dirs[1]);
        // The target sshd also serves sftp, for transport_tools.
        let sshd_target = Sshd::start_with(
            &dirs[2],
            msh_tests::sshd::SshdOptions {
                extra_config: vec!["Subsystem sftp internal-sftp".into()],
                ..Default::default()
            },
        );
        let mshd = Mshd::start(&format!("{name}-mshd"));
        let key = mshd.client_key.clone();
        for s in [&bastion, &bastion2, &sshd_target] {
            s.authorize(&key);
        }
        let kh = dir.join("known_hosts");
        let net = Net {
            dir,
            bastion,
            bastion2,
            sshd_target,
            mshd,
            key,
            kh,
            cfg: PathBuf::new(),
            _dirs: dirs,
        };
        net.write_known_hosts(&["bastion", "bastion2", "starget", "target"]);
        let cfg = net.write_config("");
        Net { cfg, ..net }
    }

    /// known_hosts with the keys of the named hosts only.
    pub(crate) fn write_known_hosts(&self, names: &[&str]) {
        let mut text = String::new();
        for n in names {
            text.push_str(&match *n {
                "bastion" => self.bastion.known_hosts_lines(),
                "bastion2" => self.bastion2.known_hosts_lines(),
                "starget" => self.sshd_target.known_hosts_lines(),
                "target" => self.mshd.known_hosts_line() + "\n",
                other => panic!("no host {other}"),
            });
        }
        self.dir.write("known_hosts", text, 0o644);
    }

    /// The msh config: a Host block per machine, `extra` lines first (they win), and the
    /// client settings for all of them.
    pub(crate) fn write_config(&self, extra: &str) -> PathBuf {
        let name = if extra.is_empty() {
            "msh_config".to_string()
        } else {
            format!("msh_config-{}", COUNT.fetch_add(1, Ordering::SeqCst))
        };
        let text = format!(
            "{extra}\n\
             Host bastion\n  HostName 127.0.0.1\n  Port {b1}\n\
             Host bastion2\n  HostName 127.0.0.1\n  Port {b2}\n\
             Host target\n  HostName 127.0.0.1\n  Port {m}\n\
             Host mbastion\n  HostName 127.0.0.1\n  Port {m}\n\
             Host starget\n  HostName 127.0.0.1\n  Port {st}\n\
             Host *\n  User {user}\n  IdentityFile {key}\n  IdentitiesOnly yes\n  \
             UserKnownHostsFile {kh}\n  GlobalKnownHostsFile /dev/null\n  \
             StrictHostKeyChecking yes\n  BatchMode yes\n  ConnectTimeout 20\n",
            b1 = self.bastion.port,
            b2 = self.bastion2.port,
            m = self.mshd.port,
            st = self.sshd_target.port,
            user = self.mshd.user,
            key = self.key.display(),
            kh = self.kh.display(),
        );
        self.dir.write(&name, text, 0o600)
    }

    /// msh with the config, HOME = the test directory, no agent, then `args`.
    pub(crate) fn msh(&self, args: &[&str]) -> Command {
        self.msh_cfg(&self.cfg, args)
    }

    /// As `msh`, with the config file `cfg`.
    pub(crate) fn msh_cfg(&self, cfg: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(bin("msh"));
        c.arg("-F")
            .arg(cfg)
            .args(args)
            .env("HOME", &self.dir.path)
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("RUST_LOG");
        c
    }

    /// A marker path on the target and the command that creates it.
    pub(crate) fn marker(&self, name: &str) -> (PathBuf, String) {
        let p = self.dir.join(name);
        let c = format!("touch {} && echo ran", p.display());
        (p, c)
    }

    /// Runs `msh -F cfg ARGS... CMD`, CMD creating the marker `name`, and asserts that it
    /// ran on the target ([`assert_ran`]).
    pub(crate) fn assert_runs(&self, cfg: &Path, args: &[&str], name: &str) -> Output {
        let (m, c) = self.marker(name);
        let mut all = args.to_vec();
        all.push(&c);
        let out = run(self.msh_cfg(cfg, &all), b"", T);
        assert_ran(&out, &m);
        out
    }

    /// Writes `ssh_config` for OpenSSH's ssh: the Host blocks `hosts`, then, for the last
    /// of them, mshd's user, the test key only, the test known_hosts, strict and in batch mode.
    pub(crate) fn write_openssh_config(&self, hosts: &str) -> PathBuf {
        let text = format!(
            "{hosts}  User {}\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  \
             GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  BatchMode yes\n",
            self.mshd.user,
            self.key.display(),
            self.kh.display()
        );
        self.dir.write("ssh_config", text, 0o600)
    }

    /// The number of publickey logins sshd `s` accepted so far.
    pub(crate) fn logins(s: &Sshd) -> usize {
        s.log().matches("Accepted publickey").count()
    }
}

fn assert_ran(out: &Output, marker: &Path) {
    assert_eq!(
        out.code(),
        Some(0),
        "stdout {:?} stderr {}",
        out.stdout_str(),
        out.stderr
    );
    assert_eq!(out.stdout_str(), "ran\n");
    assert!(marker.exists(), "{} not created", marker.display());
}

fn assert_refused(out: &Output, marker: &Path, needles: &[&str]) {
    assert_eq!(out.code(), Some(255), "stderr {}", out.stderr);
    assert!(
        !marker.exists(),
        "{} created on the target",
        marker.display()
    );
    assert!(out.stdout.is_empty(), "stdout {:?}", out.stdout_str());
    for n in needles {
        assert!(out.stderr.contains(n), "{n:?} not in: {}", out.stderr);
    }
}

#[test]
fn jump_one_hop_sshd_to_mshd_and_to_sshd() {
    let net = Net::new("jump-one");
    let out = net.assert_runs(&net.cfg, &["-v", "-J", "bastion", "target"], "m1");
    assert_eq!(Net::logins(&net.bastion), 1, "{}", net.bastion.log());
    // The target was reached through the bastion's channel, not directly.
    let hop = format!(
        "{}: channel to 127.0.0.1 port {} open",
        hop_name(1, 1, "bastion", net.bastion.port),
        net.mshd.port
    );
    assert!(out.stderr.contains(&hop), "{hop:?} not in {}", out.stderr);

    net.assert_runs(&net.cfg, &["-J", "bastion", "starget"], "m2");
    assert_eq!(Net::logins(&net.bastion), 2);
    assert_eq!(Net::logins(&net.sshd_target), 1);
}

#[test]
fn jump_two_hops_and_proxyjump_from_config() {
    let net = Net::new("jump-two");
    net.assert_runs(&net.cfg, &["-J", "bastion,bastion2", "target"], "m1");
    assert_eq!(Net::logins(&net.bastion), 1);
    assert_eq!(Net::logins(&net.bastion2), 1);

    // ProxyJump in the target's block, a hop's own ProxyJump in its block: the chain
    // bastion -> bastion2 -> starget. `user@host:port` in the list overrides the block.
    let cfg = net.write_config(&format!(
        "Host viajump\n  HostName 127.0.0.1\n  Port {}\n  ProxyJump {}@bastion2:{}\n\
         Host bastion2\n  ProxyJump bastion\n",
        net.sshd_target.port, net.mshd.user, net.bastion2.port
    ));
    net.assert_runs(&cfg, &["viajump"], "m2");
    assert_eq!(Net::logins(&net.bastion), 2);
    assert_eq!(Net::logins(&net.bastion2), 2);
    assert_eq!(Net::logins(&net.sshd_target), 1);

    // `-J none` (and -o ProxyJump=none) connect directly.
    net.assert_runs(&cfg, &["-J", "none", "viajump"], "m3");
    assert_eq!(Net::logins(&net.bastion), 2);
}

#[test]
fn jump_refused_when_a_hop_key_is_unknown() {
    let net = Net::new("jump-unknown");
    let (m, c) = net.marker("m");
    // The bastion is unknown: nothing past it is tried.
    net.write_known_hosts(&["bastion2", "target"]);
    let out = run(net.msh(&["-J", "bastion", "target", &c]), b"", T);
    let hop = hop_name(1, 1, "bastion", net.bastion.port);
    assert_refused(
        &out,
        &m,
        &[&hop, &format!("[127.0.0.1]:{}", net.bastion.port)],
    );
    assert_eq!(Net::logins(&net.bastion), 0);

    // The second of two hops is unknown: the first was passed, the second named.
    net.write_known_hosts(&["bastion", "target"]);
    let out = run(net.msh(&["-J", "bastion,bastion2", "target", &c]), b"", T);
    let hop = hop_name(2, 2, "bastion2", net.bastion2.port);
    assert_refused(&out, &m, &[&hop]);
    assert_eq!(Net::logins(&net.bastion2), 0);

    // The target is unknown: the bastion let us through, the target is refused by name.
    net.write_known_hosts(&["bastion", "bastion2"]);
    let out = run(net.msh(&["-J", "bastion", "target", &c]), b"", T);
    assert_refused(&out, &m, &[&format!("[127.0.0.1]:{}", net.mshd.port)]);
    assert!(!out.stderr.contains("jump host"), "{}", out.stderr);
}

#[test]
fn jump_refused_when_a_hop_key_changed() {
    let net = Net::new("jump-changed");
    let (m, c) = net.marker("m");
    let other = ssh_keygen_ed25519(&net.dir, "other_host");
    let other_pub = public_key_fields(&other.with_extension("pub"));
    // The bastion's known key is another one.
    let text = format!(
        "[127.0.0.1]:{} {other_pub}\n{}\n",
        net.bastion.port,
        net.mshd.known_hosts_line()
    );
    net.dir.write("known_hosts", text, 0o644);
    let out = run(net.msh(&["-J", "bastion", "target", &c]), b"", T);
    let hop = hop_name(1, 1, "bastion", net.bastion.port);
    assert_refused(&out, &m, &[&hop, "CHANGED"]);
    // The target's key changed: refused, the target named.
    let text = format!(
        "{}[127.0.0.1]:{} {other_pub}\n",
        net.bastion.known_hosts_lines(),
        net.mshd.port
    );
    net.dir.write("known_hosts", text, 0o644);
    let out = run(net.msh(&["-J", "bastion", "target", &c]), b"", T);
    assert_refused(
        &out,
        &m,
        &["CHANGED", &format!("[127.0.0.1]:{}", net.mshd.port)],
    );
    assert_eq!(Net::logins(&net.bastion), 1, "the bastion itself was fine");
}

#[test]
fn jump_host_key_alias_per_block_and_pin_for_the_final_host_only() {
    let net = Net::new("jump-alias");
    // Each hop's HostKeyAlias applies to its own key only.
    let kh = format!(
        "bastion-key {}\ntarget-key {}\n",
        net.bastion.host_key("ed25519").public_line,
        net.mshd.host_public
    );
    net.dir.write("known_hosts", kh, 0o644);
    let cfg = net.write_config(
        "Host bastion\n  HostKeyAlias bastion-key\nHost target\n  HostKeyAlias target-key\n",
    );
    net.assert_runs(&cfg, &["-J", "bastion", "target"], "m1");

    // --pin: the target's fingerprint vouches for the target alone; the bastion is still
    // checked against known_hosts, which no longer knows it.
    net.write_known_hosts(&["bastion"]);
    let (m, c) = net.marker("m2");
    let pin = net.mshd.host_fingerprint.clone();
    let out = run(
        net.msh(&["--pin", &pin, "-J", "bastion", "target", &c]),
        b"",
        T,
    );
    assert_ran(&out, &m);
    net.write_known_hosts(&["target"]);
    let (m, c) = net.marker("m3");
    let out = run(
        net.msh(&["--pin", &pin, "-J", "bastion", "target", &c]),
        b"",
        T,
    );
    let hop = hop_name(1, 1, "bastion", net.bastion.port);
    assert_refused(&out, &m, &[&hop]);
}

#[test]
fn jump_through_a_bastion_that_refuses_forwarding_names_it() {
    let dir = TestDir::new("jump-noforward");
    let net = Net::new("jump-noforward-net");
    let strict = Sshd::start_with(
        &dir,
        msh_tests::sshd::SshdOptions {
            extra_config: vec!["AllowTcpForwarding no".into()],
            ..Default::default()
        },
    );
    strict.authorize(&net.key);
    let kh = format!(
        "{}{}\n",
        strict.known_hosts_lines(),
        net.mshd.known_hosts_line()
    );
    net.dir.write("known_hosts", kh, 0o644);
    let cfg = net.write_config(&format!(
        "Host strict\n  HostName 127.0.0.1\n  Port {}\n",
        strict.port
    ));
    let (m, c) = net.marker("m");
    let out = run(net.msh_cfg(&cfg, &["-J", "strict", "target", &c]), b"", T);
    let hop = format!(
        "{}: could not open a connection to target = 127.0.0.1 port {}: administratively prohibited",
        hop_name(1, 1, "strict", strict.port),
        net.mshd.port
    );
    assert_refused(&out, &m, &[&hop, "prohibited"]);
}

/// How msh names the `i`th of `n` jump hosts, `name` on 127.0.0.1 `port`, in its errors.
fn hop_name(i: usize, n: usize, name: &str, port: u16) -> String {
    format!("jump host {i} of {n} ({name} = 127.0.0.1 port {port})")
}

/// A relay for ProxyCommand: connects to argv[1]:argv[2], logs its arguments, copies both
/// ways.
fn write_relay(dir: &TestDir) -> PathBuf {
    dir.write(
        "relay.py",
        r#"import socket, sys, threading, os
log = sys.argv[-1]
with open(log, "a") as f:
    f.write(" ".join(sys.argv[1:-1]) + "\n")
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
def up():
    while True:
        b = os.read(0, 65536)
        if not b:
            s.shutdown(socket.SHUT_WR)
            return
        s.sendall(b)
threading.Thread(target=up, daemon=True).start()
while True:
    b = s.recv(65536)
    if not b:
        break
    os.write(1, b)
"#,
        0o755,
    )
}

#[test]
fn proxy_command_with_tokens() {
    let net = Net::new("proxy-cmd");
    let relay = write_relay(&net.dir);
    let log = net.dir.join("relay.log");
    let (m, c) = net.marker("m1");
    let pc = format!(
        "ProxyCommand=python3 {} %h %p %r %n 100%% {}",
        relay.display(),
        log.display()
    );
    let out = run(net.msh(&["-o", &pc, "target", &c]), b"", T);
    assert_ran(&out, &m);
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        format!(
            "127.0.0.1 {} {} target 100%\n",
            net.mshd.port, net.mshd.user
        )
    );
    // OpenSSH's own `ssh -W` as the proxy command, to sshd and to mshd targets.
    let ssh_cfg = net.write_openssh_config(&format!(
        "Host bastion\n  HostName 127.0.0.1\n  Port {}\n",
        net.bastion.port
    ));
    for target in ["target", "starget"] {
        let (m, c) = net.marker(&format!("m-{target}"));
        let pc = format!("ProxyCommand=ssh -F {} -W %h:%p bastion", ssh_cfg.display());
        let out = run(net.msh(&["-o", &pc, target, &c]), b"", T);
        assert_ran(&out, &m);
    }
    assert_eq!(Net::logins(&net.bastion), 2);
    // A ProxyCommand that fails: the error says the connection ended.
    let (m, c) = net.marker("m2");
    let out = run(
        net.msh(&["-o", "ProxyCommand=exit 3", "target", &c]),
        b"",
        T,
    );
    assert_refused(&out, &m, &["SSH handshake failed"]);
}

#[test]
fn openssh_uses_msh_w_as_its_proxy_command() {
    let net = Net::new("proxy-msh-w");
    let pc = format!(
        "ProxyCommand={} -F {} -W %h:%p bastion",
        bin("msh").display(),
        net.cfg.display()
    );
    for (target, port) in [("mshd", net.mshd.port), ("sshd", net.sshd_target.port)] {
        let (m, c) = net.marker(&format!("m-{target}"));
        let mut ssh = openssh_command(port, &net.mshd.user, &net.key, &net.kh, &["-o", &pc], &c);
        ssh.env("HOME", &net.dir.path);
        let out = run(ssh, b"", T);
        assert_ran(&out, &m);
    }
    assert_eq!(Net::logins(&net.bastion), 2);
    // 300 KB each way through `msh -W` as a plain pipe to an sshd's `cat`.
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let port = net.sshd_target.port;
    let mut ssh = openssh_command(port, &net.mshd.user, &net.key, &net.kh, &["-o", &pc], "cat");
    ssh.env("HOME", &net.dir.path);
    let out = run(ssh, &data, T);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(
        out.stdout == data,
        "{} bytes back of {}",
        out.stdout.len(),
        data.len()
    );
}

#[test]
fn msh_w_refused_channel_says_why() {
    let net = Net::new("msh-w-refused");
    let dead = free_port();
    let out = run(
        net.msh(&["-W", &format!("127.0.0.1:{dead}"), "bastion"]),
        b"",
        T,
    );
    assert_eq!(out.code(), Some(255), "{}", out.stderr);
    out.assert_stderr_contains(&format!(
        "stdio forwarding to 127.0.0.1 port {dead} through 127.0.0.1"
    ));
}

#[test]
fn hostile_names_never_reach_the_proxy_command_shell() {
    let net = Net::new("proxy-hostile");
    let relay = write_relay(&net.dir);
    let log = net.dir.join("relay.log");
    let pwned = net.dir.join("pwned");
    let pc = format!(
        "ProxyCommand=python3 {} %h %p %r {}",
        relay.display(),
        log.display()
    );
    let touch = format!("touch {}", pwned.display());
    // A host name with shell metacharacters (CVE-2023-51385), as a destination...
    let host = format!("a;{touch};b");
    let out = run(net.msh(&["-o", &pc, &host, "true"]), b"", T);
    assert_eq!(out.code(), Some(255), "{}", out.stderr);
    out.assert_stderr_contains("refused to put %h (the host name)");
    // ... a user name with them or with a control character (CVE-2025-61984), -l and
    // user@ ...
    for user in [
        format!("$({touch})"),
        format!("u\n{touch}"),
        format!("`{touch}`"),
    ] {
        let out = run(net.msh(&["-o", &pc, "-l", &user, "target", "true"]), b"", T);
        assert_eq!(out.code(), Some(255), "{}", out.stderr);
        out.assert_stderr_contains("refused to put %r (the user name)");
        assert!(
            !out.stderr.contains('\n') || out.stderr.lines().count() == 1,
            "{}",
            out.stderr
        );
    }
    // ... and a ProxyJump hop whose user name reaches its ProxyCommand's %r.
    let cfg = net.write_config(&format!(
        "Host relayed\n  HostName 127.0.0.1\n  Port {}\n  ProxyCommand python3 {} %h %p %r {}\n",
        net.bastion.port,
        relay.display(),
        log.display()
    ));
    let jump = format!("x;touch${{IFS}}{}@relayed", pwned.display());
    let out = run(net.msh_cfg(&cfg, &["-J", &jump, "target", "true"]), b"", T);
    assert_eq!(out.code(), Some(255), "{}", out.stderr);
    out.assert_stderr_contains("refused to put %r (the user name)");
    out.assert_stderr_contains("jump host 1 of 1");
    assert!(!pwned.exists(), "a hostile name ran a command");
    assert!(
        !log.exists(),
        "the proxy command ran: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // The same names are fine where no shell sees them (nothing is refused without %h/%r):
    // the relay with a fixed address carries a normal login.
    let pc = format!(
        "ProxyCommand=python3 {} 127.0.0.1 {} fixed {}",
        relay.display(),
        net.mshd.port,
        log.display()
    );
    net.assert_runs(&net.cfg, &["-o", &pc, "target"], "m");
}

/// Text a server chooses that msh prints itself (here the name of the signal that "killed"
/// the command, sent by a hostile paramiko server) is printed with its control characters
/// escaped, never raw (CVE-2019-6110 class).
#[test]
fn server_text_in_messages_is_stripped_of_control_sequences() {
    let dir = TestDir::new("evil-server");
    let host_key = ssh_keygen_ed25519(&dir, "evil_host");
    let client_key = ssh_keygen_ed25519(&dir, "id");
    let (_server, port) = msh_tests::mshd::hostile_server(&dir, "exit-signal", &host_key, &[]);
    let pin = msh_tests::mshd::fingerprint_of(&dir.join("evil_host.pub"));
    let mut msh = Command::new(bin("msh"));
    msh.args([
        "-F",
        "none",
        "--pin",
        &pin,
        "-o",
        "BatchMode=yes",
        "-p",
        &port.to_string(),
    ])
    .arg("-i")
    .arg(&client_key)
    .args(["127.0.0.1", "true"])
    .env("HOME", &dir.path)
    .env_remove("SSH_AUTH_SOCK");
    let out = run(msh, b"", T);
    assert_eq!(out.code(), Some(255), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("remote command killed by signal KILL\\x1b]0;pwned\\x07"),
        "{:?}",
        out.stderr
    );
    for raw in ['\u{1b}', '\u{7}', '\u{9b}'] {
        assert!(
            !out.stderr.contains(raw),
            "raw {raw:?} on stderr: {:?}",
            out.stderr
        );
    }
}

/// mshd as the bastion, to mshd and to sshd.
#[test]
fn jump_through_mshd_to_mshd_and_to_sshd() {
    let net = Net::new("jump-mshd-bastion");
    net.assert_runs(&net.cfg, &["-J", "mbastion", "target"], "m1");
    net.assert_runs(&net.cfg, &["-J", "mbastion", "starget"], "m2");
    assert_eq!(Net::logins(&net.sshd_target), 1);
}

/// OpenSSH's `ssh -J` through mshd, and `msh -W` through mshd as OpenSSH's ProxyCommand.
#[test]
fn openssh_jump_through_mshd() {
    let net = Net::new("ssh-jump-mshd");
    let (m, c) = net.marker("m");
    let ssh_cfg = net.write_openssh_config(&format!(
        "Host mbastion\n  HostName 127.0.0.1\n  Port {}\nHost *\n",
        net.mshd.port
    ));
    let mut ssh = Command::new(tool("ssh"));
    ssh.arg("-F")
        .arg(&ssh_cfg)
        .args([
            "-J",
            "mbastion",
            "-p",
            &net.sshd_target.port.to_string(),
            "127.0.0.1",
            &c,
        ])
        .env("HOME", &net.dir.path)
        .env_remove("SSH_AUTH_SOCK");
    let out = run(ssh, b"", T);
    assert_ran(&out, &m);
    // msh -W through mshd as OpenSSH's ProxyCommand.
    let (m, c) = net.marker("m2");
    let mut ssh = Command::new(tool("ssh"));
    ssh.arg("-F")
        .arg(&ssh_cfg)
        .arg("-o")
        .arg(format!(
            "ProxyCommand={} -F {} -W %h:%p mbastion",
            bin("msh").display(),
            net.cfg.display()
        ))
        .args(["-p", &net.sshd_target.port.to_string(), "127.0.0.1", &c])
        .env("HOME", &net.dir.path)
        .env_remove("SSH_AUTH_SOCK");
    let out = run(ssh, b"", T);
    assert_ran(&out, &m);
}
