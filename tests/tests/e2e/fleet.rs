//! `msh --hosts` (issue 11) against three real mshd and one OpenSSH sshd on loopback: prefixed
//! stdout/stderr lines, the summary and exit status (0, 1 for a forced `exit 3`, 255 for an
//! unreachable port and a changed host key while the other hosts still run), `@FILE` lists,
//! `--json`, `--parallel 1` against the default, unknown hosts refused without a prompt,
//! `--timeout`, the progress line on a terminal (tmux), a host's `ProxyJump` block.
//!
//! The three mshd are reached through `Host` aliases of an ssh_config file (`-F`): alpha,
//! beta, gamma; the sshd by `127.0.0.1:PORT`. One user key is authorized everywhere, one
//! known_hosts file trusts all four host keys. HOME is the test's directory.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use msh_tests::mshd::Mshd;
use msh_tests::sshd::Sshd;
use msh_tests::*;

const T: Duration = Duration::from_secs(90);

struct Fleet {
    dir: TestDir,
    mshd: Vec<Mshd>,
    sshd: Sshd,
    key: PathBuf,
    known_hosts: PathBuf,
    config: PathBuf,
}

impl Fleet {
    /// Three mshd (alpha, beta, gamma) and one sshd. `beta_options`: authorized_keys options
    /// for beta's key line (e.g. a forced command).
    fn start(name: &str, beta_options: &str) -> Fleet {
        let dir = TestDir::new(name);
        let key = ssh_keygen_ed25519(&dir, "id_fleet");
        let public = std::fs::read_to_string(dir.join("id_fleet.pub")).unwrap();
        let public = public.trim();
        let mshd: Vec<Mshd> = ["alpha", "beta", "gamma"]
            .iter()
            .map(|n| {
                let line = match *n {
                    "beta" if !beta_options.is_empty() => format!("{beta_options} {public}\n"),
                    _ => format!("{public}\n"),
                };
                Mshd::builder(&format!("{name}-{n}"))
                    .authorized_keys_contents(&line)
                    .start()
            })
            .collect();
        let sshd = Sshd::start(&dir);
        sshd.authorize(&key);
        let mut kh = sshd.known_hosts_lines();
        for d in &mshd {
            kh.push_str(&d.known_hosts_line());
            kh.push('\n');
        }
        let known_hosts = dir.write("known_hosts", kh, 0o644);
        let mut config = String::new();
        for (n, d) in ["alpha", "beta", "gamma"].iter().zip(&mshd) {
            config.push_str(&format!(
                "Host {n}\n  HostName 127.0.0.1\n  Port {}\n",
                d.port
            ));
        }
        let config = dir.write("ssh_config", config, 0o644);
        Fleet {
            dir,
            mshd,
            sshd,
            key,
            known_hosts,
            config,
        }
    }

    fn sshd_label(&self) -> String {
        format!("127.0.0.1:{}", self.sshd.port)
    }

    /// `alpha,beta,gamma,127.0.0.1:SSHD`.
    fn all(&self) -> String {
        format!("alpha,beta,gamma,{}", self.sshd_label())
    }

    /// msh with the fleet's key, known_hosts and config; then `args`.
    fn msh(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin("msh"));
        c.arg("-F")
            .arg(&self.config)
            .arg("-i")
            .arg(&self.key)
            .arg("-l")
            .arg(&self.sshd.user)
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .args(["-o", "GlobalKnownHostsFile=/dev/null"])
            .args(args)
            .env("HOME", &self.dir.path)
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("RUST_LOG");
        c
    }
}

/// The lines of `text` that start with `label: `, without the label. The fixture sshd's
/// `LogLevel DEBUG1` copies its session `debug1:` lines to the client's stderr: skipped.
fn lines_of(text: &str, label: &str) -> Vec<String> {
    let prefix = format!("{label}: ");
    text.lines()
        .filter_map(|l| l.strip_prefix(&prefix).map(str::to_string))
        .filter(|l| !l.starts_with("debug1: "))
        .collect()
}

/// Asserts that each host in `labels` printed exactly `lines` on `stdout` (none: nothing).
#[track_caller]
fn assert_printed(stdout: &str, labels: &[&str], lines: &[&str]) {
    for label in labels {
        assert_eq!(lines_of(stdout, label), lines, "{label}: stdout:\n{stdout}");
    }
}

/// A `--json` stderr without the fixture sshd's `debug1:` lines.
fn without_debug(stderr: &serde_json::Value) -> String {
    stderr
        .as_str()
        .unwrap()
        .split_inclusive('\n')
        .filter(|l| !l.starts_with("debug1: "))
        .collect()
}

#[test]
fn fleet_prefixes_every_line_with_its_host_and_sends_no_stdin() {
    let f = Fleet::start("fleet-prefix", "");
    let all = f.all();
    // `cat` first: stdin must not reach the hosts, and they must see EOF at once.
    let remote =
        "cat; echo one; echo two >&2; printf '\\033[31mred\\033[0m\\033]0;title\\007\\n'; \
                  printf partial";
    let out = run(f.msh(&["--hosts", &all, remote]), b"secret stdin\n", T);
    let stdout = out.stdout_str();
    out.assert_code(0);
    let labels = ["alpha", "beta", "gamma", &f.sshd_label()];
    for label in labels {
        assert_eq!(
            lines_of(&stdout, label),
            ["one", "red", "partial"],
            "{label}: stdout:\n{stdout}"
        );
        assert_eq!(
            lines_of(&out.stderr, label),
            ["two"],
            "{label}: {}",
            out.stderr
        );
    }
    // Every stdout line is whole and labelled: no mid-line interleaving, no escape left.
    assert_eq!(stdout.lines().count(), 12, "{stdout}");
    assert!(stdout
        .lines()
        .all(|l| labels.iter().any(|p| l.starts_with(&format!("{p}: ")))));
    assert!(
        !stdout.contains('\x1b') && !stdout.contains("secret"),
        "{stdout:?}"
    );
    out.assert_stderr_contains("msh: 4 hosts: 4 succeeded, 0 exited non-zero, 0 failed");
    // stderr is a pipe here: no progress line.
    assert!(!out.stderr.contains("hosts done"), "{}", out.stderr);
}

#[test]
fn fleet_forced_exit_3_on_one_host_gives_1_and_the_summary_names_it() {
    let f = Fleet::start("fleet-exit3", "command=\"exit 3\"");
    let all = f.all();
    let out = run(f.msh(&["--hosts", &all, "echo ran"]), b"", T);
    let stdout = out.stdout_str();
    out.assert_code(1);
    assert_printed(&stdout, &["alpha", "gamma", &f.sshd_label()], &["ran"]);
    assert_printed(&stdout, &["beta"], &[]);
    out.assert_stderr_contains("msh: non-zero: beta: exit status 3\n");
    out.assert_stderr_contains("3 succeeded, 1 exited non-zero, 0 failed");
}

#[test]
fn fleet_unreachable_port_and_changed_host_key_give_255_while_the_others_run() {
    let f = Fleet::start("fleet-fail", "");
    // gamma's known_hosts line (line 4: after the sshd's and two mshd lines) now holds
    // another key: its real key is "changed".
    let other = ssh_keygen_ed25519(&f.dir, "other_host");
    let other_pub = std::fs::read_to_string(msh_common::keys::public_key_path(&other)).unwrap();
    let gamma = &f.mshd[2];
    let kh = std::fs::read_to_string(&f.known_hosts)
        .unwrap()
        .replace(&gamma.host_public, other_pub.trim());
    std::fs::write(&f.known_hosts, kh).unwrap();
    let dead = free_port();
    let list = format!("alpha,beta,gamma,{},127.0.0.1:{dead}", f.sshd_label());
    let out = run(f.msh(&["--hosts", &list, "echo ran"]), b"", T);
    let stdout = out.stdout_str();
    out.assert_code(255);
    assert_printed(&stdout, &["alpha", "beta", &f.sshd_label()], &["ran"]);
    assert_printed(&stdout, &["gamma"], &[]);
    let failed: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("msh: failed: "))
        .collect();
    assert_eq!(failed.len(), 2, "{}", out.stderr);
    assert!(
        failed.iter().any(|l| l.starts_with(&format!(
            "msh: failed: 127.0.0.1:{dead}: connect to 127.0.0.1 port {dead}: Connection refused"
        ))),
        "{failed:?}"
    );
    let changed = failed
        .iter()
        .find(|l| l.starts_with("msh: failed: gamma: "))
        .expect("gamma in the summary");
    assert!(
        changed.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
            && changed.contains(&format!("{}:4", f.known_hosts.display())),
        "{changed}"
    );
    out.assert_stderr_contains("5 hosts: 3 succeeded, 0 exited non-zero, 2 failed");
}

#[test]
fn fleet_reads_hosts_from_a_file_with_comments_and_blank_lines() {
    let f = Fleet::start("fleet-file", "");
    let list = f.dir.write(
        "hosts.txt",
        format!(
            "# web tier\nalpha\n\n   beta   # the second one\n# gamma is out for repair\n{}\n",
            f.sshd_label()
        ),
        0o644,
    );
    let arg = format!("@{}", list.display());
    let out = run(f.msh(&["--hosts", &arg, "echo", "from", "file"]), b"", T);
    let stdout = out.stdout_str();
    out.assert_code(0);
    assert_printed(&stdout, &["alpha", "beta", &f.sshd_label()], &["from file"]);
    assert_printed(&stdout, &["gamma"], &[]);
    out.assert_stderr_contains("msh: 3 hosts: 3 succeeded");

    // A bad line is named by file:line, and nothing runs.
    std::fs::write(&list, "alpha\nbeta:notaport\n").unwrap();
    let out = run(f.msh(&["--hosts", &arg, "echo ran"]), b"", T);
    assert_eq!(out.code(), Some(255));
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr.contains(&format!("{}:2: ", list.display())) && out.stderr.contains("bad port"),
        "{}",
        out.stderr
    );
}

#[test]
fn fleet_json_is_one_object_per_host() {
    let f = Fleet::start("fleet-json", "command=\"echo forced; exit 3\"");
    let dead = free_port();
    let list = format!("{},127.0.0.1:{dead}", f.all());
    let out = run(
        f.msh(&["--hosts", &list, "--json", "printf 'a\\nb'; echo e >&2"]),
        b"",
        T,
    );
    assert_eq!(out.code(), Some(255), "{}", out.stderr);
    let objects: Vec<serde_json::Value> = out
        .stdout_str()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    assert_eq!(objects.len(), 5, "{}", out.stdout_str());
    let by_host = |h: &str| {
        objects
            .iter()
            .find(|o| o["host"] == h)
            .unwrap_or_else(|| panic!("no object for {h}"))
    };
    for h in ["alpha", "gamma", &f.sshd_label()] {
        let o = by_host(h);
        assert_eq!(o["exit_status"], 0, "{o}");
        assert_eq!(o["stdout"], "a\nb", "{o}");
        assert_eq!(without_debug(&o["stderr"]), "e\n", "{o}");
        assert!(o["duration_ms"].is_u64() && o.get("error").is_none(), "{o}");
    }
    let beta = by_host("beta");
    assert_eq!(beta["exit_status"], 3);
    assert_eq!(beta["stdout"], "forced\n");
    let dead_obj = by_host(&format!("127.0.0.1:{dead}"));
    assert!(dead_obj.get("exit_status").is_none());
    assert!(
        dead_obj["error"]
            .as_str()
            .unwrap()
            .contains("Connection refused"),
        "{dead_obj}"
    );
    // The summary is still on stderr.
    out.assert_stderr_contains("msh: failed: 127.0.0.1:");
}

#[test]
fn fleet_parallel_1_runs_hosts_one_at_a_time_and_the_default_overlaps_them() {
    let f = Fleet::start("fleet-parallel", "");
    let all = f.all();
    let log = f.dir.join("order.log");
    let log = log.display();
    // One at a time: every host's start is followed by its own end. The sleep only gives an
    // overlap, were there one, the chance to show in the log.
    let serial = format!("echo start $$ >> {log}; sleep 0.3; echo end $$ >> {log}");
    let out = run(
        f.msh(&["--hosts", &all, "--parallel", "1", &serial]),
        b"",
        T,
    );
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let text = f.dir.read("order.log");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 8, "{text}");
    for pair in lines.chunks(2) {
        let pid = pair[0]
            .strip_prefix("start ")
            .unwrap_or_else(|| panic!("{text}"));
        assert_eq!(pair[1], format!("end {pid}"), "hosts overlapped:\n{text}");
    }

    // Default: each host waits (at most 30 s) until all four have started, so the log shows
    // four starts before any end only if they really ran at the same time.
    let barrier = f.dir.join("barrier.log");
    let barrier = barrier.display();
    let overlap = format!(
        "echo start >> {barrier}; i=0; while [ $(grep -c start {barrier}) -lt 4 ] && \
         [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; echo end >> {barrier}"
    );
    let out = run(f.msh(&["--hosts", &all, &overlap]), b"", T);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let text = f.dir.read("barrier.log");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        ["start", "start", "start", "start", "end", "end", "end", "end"]
    );
}

#[test]
fn fleet_refuses_an_unknown_host_without_asking_unless_accept_new() {
    let f = Fleet::start("fleet-unknown", "");
    // beta and gamma are missing from known_hosts.
    let (beta, gamma) = (&f.mshd[1], &f.mshd[2]);
    let kh = std::fs::read_to_string(&f.known_hosts)
        .unwrap()
        .replace(&format!("{}\n", beta.known_hosts_line()), "")
        .replace(&format!("{}\n", gamma.known_hosts_line()), "");
    std::fs::write(&f.known_hosts, &kh).unwrap();
    let all = f.all();
    let out = run(f.msh(&["--hosts", &all, "echo ran"]), b"yes\n", T);
    assert_eq!(out.code(), Some(255), "{}", out.stderr);
    out.assert_stderr_contains(
        "msh: failed: gamma: host key verification failed: no known_hosts entry",
    );
    out.assert_stderr_contains("BatchMode=yes forbids asking");
    out.assert_stderr_contains("msh: failed: beta: host key verification failed");
    assert!(lines_of(&out.stdout_str(), "alpha") == ["ran"]);

    let out = run(
        f.msh(&[
            "-o",
            "StrictHostKeyChecking=accept-new",
            "--hosts",
            &all,
            "echo ran",
        ]),
        b"",
        T,
    );
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(lines_of(&out.stdout_str(), "beta"), ["ran"]);
    assert_eq!(lines_of(&out.stdout_str(), "gamma"), ["ran"]);
    // Both recorded, by two hosts writing the one file at the same time.
    let recorded = std::fs::read_to_string(&f.known_hosts).unwrap();
    for d in [beta, gamma] {
        assert!(
            recorded.contains(&format!("[127.0.0.1]:{}", d.port)),
            "{recorded}"
        );
    }
    let out = run(
        f.msh(&["-o", "StrictHostKeyChecking=yes", "--hosts", &all, "true"]),
        b"",
        T,
    );
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
}

#[test]
fn fleet_timeout_stops_each_host_and_still_prints_its_partial_output() {
    let f = Fleet::start("fleet-timeout", "");
    let all = f.all();
    let out = run(
        f.msh(&[
            "--hosts",
            &all,
            // Long enough for every host to log in and print under a loaded test machine
            // (a login here also runs root's shell startup files), far below `sleep 60`.
            "--timeout",
            "8s",
            "printf before; sleep 60",
        ]),
        b"",
        T,
    );
    let stdout = out.stdout_str();
    out.assert_code(255);
    for label in ["alpha", "beta", "gamma", &f.sshd_label()] {
        assert_eq!(lines_of(&stdout, label), ["before"], "{label}: {stdout}");
        out.assert_stderr_contains(&format!(
            "msh: failed: {label}: timed out after 8s (--timeout)\n"
        ));
    }
}

#[test]
fn fleet_progress_line_on_a_terminal_stderr_is_erased_before_the_summary() {
    // beta's command waits for a file the test creates once the progress line shows the
    // other three hosts done.
    let go = std::env::temp_dir().join(format!("msh-fleet-progress-go-{}", std::process::id()));
    let _ = std::fs::remove_file(&go);
    let f = Fleet::start(
        "fleet-progress",
        &format!(
            "command=\"while [ ! -e {} ]; do sleep 0.1; done; echo beta-done\"",
            go.display()
        ),
    );
    let dir = f.dir.path.display().to_string();
    let mut line = format!("cd '{dir}' && env -u SSH_AUTH_SOCK -u RUST_LOG HOME='{dir}' ");
    line.push_str(&format!("'{}'", bin("msh").display()));
    for a in f.msh(&["--hosts", &f.all(), "echo ran"]).get_args() {
        line.push_str(&format!(" '{}'", a.to_str().unwrap()));
    }
    line.push_str(" > out.txt; echo DONE-$?; sleep 60\n");
    let script = f.dir.write("run.sh", line, 0o755);
    let tmux = crate::msh_interactive::Tmux::new(&f.dir);
    tmux.start(&format!("sh '{}'", script.display()));
    tmux.wait_for_screen("msh: 3/4 hosts done, 0 non-zero, 0 failed");
    std::fs::write(&go, "").unwrap();
    let screen = tmux.wait_for_screen("DONE-0");
    std::fs::remove_file(&go).unwrap();
    assert!(!screen.contains("hosts done"), "{screen}");
    assert!(screen.contains("msh: 4 hosts: 4 succeeded"), "{screen}");
    let out = f.dir.read("out.txt");
    assert_eq!(lines_of(&out, "beta"), ["beta-done"], "{out}");
}

#[test]
fn fleet_host_blocks_apply_per_host_including_proxyjump() {
    let f = Fleet::start("fleet-jump", "");
    let gamma = f.mshd[2].port;
    // delta is gamma reached through the sshd as a jump host; the hop keeps only -F, so its
    // block names its own key, known_hosts and user.
    let mut config = std::fs::read_to_string(&f.config).unwrap();
    config.push_str(&format!(
        "Host hop\n  HostName 127.0.0.1\n  Port {}\n  User {}\n  IdentityFile {}\n  \
         UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n\
         Host delta\n  HostName 127.0.0.1\n  Port {gamma}\n  ProxyJump hop\n",
        f.sshd.port,
        f.sshd.user,
        f.key.display(),
        f.known_hosts.display()
    ));
    std::fs::write(&f.config, config).unwrap();
    let out = run(f.msh(&["--hosts", "alpha,delta", "echo ran"]), b"", T);
    let stdout = out.stdout_str();
    out.assert_code(0);
    assert_printed(&stdout, &["alpha", "delta"], &["ran"]);
    // delta really went through the jump host, alpha did not.
    let log = f
        .sshd
        .proc
        .wait_for_log("direct-tcpip", Duration::from_secs(10));
    assert!(log.contains(&format!("port {gamma}")), "{log}");
    assert!(!log.contains(&format!("port {}", f.mshd[0].port)), "{log}");
}

/// With -v, msh's own log lines of each host carry its label, as its output lines do: the
/// connect (host task), the host key check (russh's task, through the handler) and the
/// exec, each naming that host's own port; no log line is left unlabelled.
#[test]
fn fleet_verbose_log_lines_carry_their_host_label() {
    let f = Fleet::start("fleet-verbose", "");
    let all = f.all();
    let out = run(f.msh(&["-v", "--hosts", &all, "true"]), b"", T);
    out.assert_code(0);
    let ports = f.mshd.iter().map(|d| d.port).chain([f.sshd.port]);
    let labels = ["alpha", "beta", "gamma", &f.sshd_label()];
    for (label, port) in labels.iter().zip(ports) {
        let lines = lines_of(&out.stderr, label);
        for expected in [
            format!("INFO connected to 127.0.0.1 port {port}"),
            "INFO exec: true".to_string(),
        ] {
            assert!(
                lines.contains(&expected),
                "{label}: no {expected:?} in:\n{}",
                out.stderr
            );
        }
        assert!(
            lines.iter().any(|l| l.starts_with("INFO host key ")
                && l.contains(&format!("for [127.0.0.1]:{port} found in"))),
            "{label}: no host key line in:\n{}",
            out.stderr
        );
    }
    for line in out.stderr.lines() {
        let is_log = ["TRACE ", "DEBUG ", "INFO ", "WARN ", "ERROR "]
            .iter()
            .any(|level| {
                line.trim_start().starts_with(level) || line.contains(&format!(": {level}"))
            });
        if is_log {
            assert!(
                labels.iter().any(|l| line.starts_with(&format!("{l}: "))),
                "unlabelled log line {line:?} in:\n{}",
                out.stderr
            );
        }
    }
}
