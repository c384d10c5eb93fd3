//! msh reads `~/.ssh/config` (HOME is a TestDir) like ssh: `Host alias` + `HostName` /
//! `Port` / `User` / `IdentityFile` reach mshd, the accept-new known_hosts entry is named
//! after the HostName (`[127.0.0.1]:PORT`, as real ssh records it with the same file);
//! OpenSSH keywords msh does not implement are skipped with a note at -v; ProxyJump and
//! `StrictHostKeyChecking no` that apply are refused naming file:line; `-F none` reads
//! nothing; a config file others can write is refused; an alias from an `Include`d file
//! works, and a connect failure names the included file:line its HostName came from.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use msh_tests::mshd::{set_mode, Mshd};
use msh_tests::*;

const T: Duration = Duration::from_secs(60);

/// A home directory for msh (HOME) holding `.ssh/id_test`, a copy of the fixture's
/// authorized client key.
fn home_for(d: &Mshd, name: &str) -> TestDir {
    let home = TestDir::new(name);
    let key = std::fs::read(&d.client_key).unwrap();
    home.write(".ssh/id_test", key, 0o600);
    home
}

/// msh with HOME = `home` and nothing from the environment that could change its choices.
fn msh(home: &TestDir, args: &[&str]) -> Command {
    let mut c = Command::new(bin("msh"));
    c.args(args)
        .env("HOME", &home.path)
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("RUST_LOG");
    c
}

/// known_hosts host field and key (type, base64) of every line in `path`.
fn known_hosts_entries(path: &Path) -> Vec<(String, String, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_string(), f[1].to_string(), f[2].to_string())
        })
        .collect()
}

/// `ssh-keygen -F name -f file` (the oracle) finds an entry.
fn ssh_keygen_finds(name: &str, file: &Path) -> bool {
    let out = run(
        cmd(
            tool("ssh-keygen"),
            ["-F", name, "-f", file.to_str().unwrap()],
        ),
        b"",
        T,
    );
    out.code() == Some(0)
}

#[test]
fn alias_with_hostname_reaches_mshd_and_known_hosts_names_the_hostname_as_ssh_does() {
    let d = Mshd::start("msh-config-alias");
    let home = home_for(&d, "msh-config-alias-home");
    let kh = home.join(".ssh/known_hosts");
    // Absolute paths where ssh would expand `~` from the passwd entry (root's home), not
    // HOME: the same file then means the same thing to msh and to ssh. The second block
    // would send both to a dead port if Host were matched again after HostName.
    let config = home.write(
        ".ssh/config",
        format!(
            "# shared with OpenSSH\n\
             Host alias\n\
             \x20   HostName 127.0.0.1\n\
             \x20   Port {port}\n\
             \x20   User {user}\n\
             \x20   IdentityFile {id}\n\
             \x20   IdentitiesOnly yes\n\
             \x20   UserKnownHostsFile {kh}\n\
             \x20   GlobalKnownHostsFile /dev/null\n\
             \x20   StrictHostKeyChecking accept-new\n\
             \x20   BatchMode yes\n\
             Host 127.0.0.1\n\
             \x20   Port 1\n",
            port = d.port,
            user = d.user,
            id = home.join(".ssh/id_test").display(),
            kh = kh.display(),
        ),
        0o644,
    );

    let out = run(msh(&home, &["alias", "echo ok"]), b"", T);
    d.assert_ok(&out);
    assert_eq!(out.stdout_str(), "ok\n");
    let name = format!("[127.0.0.1]:{}", d.port);
    out.assert_stderr_contains(&format!("Permanently added '{name}'"));
    let host_key: Vec<&str> = d.host_public.split_whitespace().take(2).collect();
    let msh_entries = known_hosts_entries(&kh);
    assert_eq!(
        msh_entries,
        vec![(
            name.clone(),
            host_key[0].to_string(),
            host_key[1].to_string()
        )],
        "known_hosts written by msh"
    );
    assert!(
        ssh_keygen_finds(&name, &kh),
        "ssh-keygen -F {name} on msh's known_hosts"
    );
    assert!(
        !ssh_keygen_finds("alias", &kh),
        "the alias must not be recorded"
    );

    // A second run finds the host it recorded (nothing added, nothing asked).
    let out = run(msh(&home, &["alias", "echo again"]), b"", T);
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_str(), "again\n");
    assert_eq!(known_hosts_entries(&kh), msh_entries);

    // The oracle: real ssh with the same file, from an empty known_hosts, gets the same
    // outcome and records the host under the same name.
    let msh_kh = home.join("known_hosts.msh");
    std::fs::rename(&kh, &msh_kh).unwrap();
    let mut ssh = Command::new(tool("ssh"));
    ssh.arg("-F")
        .arg(&config)
        .args(["alias", "echo ok"])
        .env("HOME", &home.path)
        .env_remove("SSH_AUTH_SOCK");
    let out = run(ssh, b"", T);
    assert_eq!(
        out.code(),
        Some(0),
        "ssh stderr: {}\nmshd log:\n{}",
        out.stderr,
        d.log_text()
    );
    assert_eq!(out.stdout_str(), "ok\n");
    assert_eq!(
        known_hosts_entries(&kh),
        msh_entries,
        "ssh recorded the host differently"
    );
}

/// A `Host alias` block of five lines: HostName 127.0.0.1, `d`'s port and user, and
/// `~/.ssh/id_test`.
fn alias_block(d: &Mshd) -> String {
    format!(
        "Host alias\n\
         \x20   HostName 127.0.0.1\n\
         \x20   Port {}\n\
         \x20   User {}\n\
         \x20   IdentityFile ~/.ssh/id_test\n",
        d.port, d.user
    )
}

/// `~/.ssh/config` with `~/` paths and no known_hosts keys: msh's defaults under HOME.
fn alias_config(d: &Mshd, extra: &str) -> String {
    format!(
        "{}{extra}\
         Host *\n\
         \x20   GlobalKnownHostsFile /dev/null\n\
         \x20   StrictHostKeyChecking yes\n\
         \x20   BatchMode yes\n",
        alias_block(d)
    )
}

/// A home whose `~/.ssh/known_hosts` already trusts `d`, with `config` as ~/.ssh/config.
fn trusted_home(d: &Mshd, name: &str, config: &str, mode: u32) -> (TestDir, PathBuf) {
    let home = home_for(d, name);
    home.write(
        ".ssh/known_hosts",
        format!("{}\n", d.known_hosts_line()),
        0o644,
    );
    let path = home.write(".ssh/config", config, mode);
    (home, path)
}

#[test]
fn unimplemented_openssh_keywords_are_skipped_and_noted_at_v() {
    let d = Mshd::start("msh-config-unimpl");
    let extra = "    ForwardX11 yes\n\
                 \x20   ControlMaster auto\n\
                 \x20   ServerAliveCountMax 5 # a comment, as ssh allows\n\
                 Match exec \"false\"\n\
                 \x20   Port 1\n";
    let (home, config) = trusted_home(
        &d,
        "msh-config-unimpl-home",
        &alias_config(&d, extra),
        0o600,
    );
    let out = run(msh(&home, &["alias", "echo ok"]), b"", T);
    d.assert_ok(&out);
    assert_eq!(out.stdout_str(), "ok\n");
    assert_eq!(out.stderr, "", "no notes without -v");

    let out = run(msh(&home, &["-v", "alias", "echo ok"]), b"", T);
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_str(), "ok\n");
    let c = config.display();
    for note in [
        // Keys scp and sftp pass are known to msh, and still skipped here with a note.
        format!("{c}:6: ForwardX11 yes skipped: msh does not forward X11"),
        format!("{c}:7: ControlMaster auto ignored: msh does not share connections"),
        format!("{c}:8: ServerAliveCountMax is an OpenSSH option msh does not implement"),
        format!("{c}:9: Match block skipped"),
        format!("\"alias\" is HostName 127.0.0.1 ({c}:2)"),
    ] {
        assert!(
            out.stderr.contains(&note),
            "missing {note:?} in:\n{}",
            out.stderr
        );
    }
}

/// A ProxyJump that applies is followed, never bypassed: when the jump host cannot be
/// reached, msh does not fall back to a direct connection, and says which hop failed.
#[test]
fn proxyjump_that_applies_is_followed_never_bypassed() {
    let d = Mshd::start("msh-config-proxy");
    let (home, _config) = trusted_home(
        &d,
        "msh-config-proxy-home",
        &alias_config(&d, "    ProxyJump bastion.invalid\n"),
        0o600,
    );
    let out = run(msh(&home, &["alias", "echo ok"]), b"", T);
    assert_eq!(out.code(), Some(255), "stdout: {}", out.stdout_str());
    assert_eq!(out.stdout_str(), "");
    assert_eq!(
        out.stderr.lines().count(),
        1,
        "one line on stderr: {}",
        out.stderr
    );
    out.assert_stderr_starts_with(
        "msh: jump host 1 of 1 (bastion.invalid port 22): could not resolve hostname bastion.invalid",
    );
    assert!(
        !d.log_text().contains("accepted publickey"),
        "msh must not have reached mshd:\n{}",
        d.log_text()
    );
    // -o ProxyJump=none wins over the file (first value): a direct connection.
    let out = run(
        msh(&home, &["-o", "ProxyJump=none", "alias", "echo direct"]),
        b"",
        T,
    );
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_str(), "direct\n");
}

#[test]
fn strict_host_key_checking_no_in_the_file_is_refused_naming_file_line() {
    let d = Mshd::start("msh-config-strictno");
    let config = format!(
        "Host alias\n\
         \x20   StrictHostKeyChecking no\n\
         \x20   UserKnownHostsFile /dev/null\n\
         {}",
        alias_config(&d, "")
    );
    let (home, path) = trusted_home(&d, "msh-config-strictno-home", &config, 0o600);
    let out = run(msh(&home, &["alias", "echo ok"]), b"", T);
    assert_eq!(out.code(), Some(255), "stdout: {}", out.stdout_str());
    out.assert_stderr_starts_with(&format!(
            "msh: {}:2: StrictHostKeyChecking=no: refused: msh never connects to a host whose key it cannot verify",
            path.display()
        ));
    // -o comes first: the explanation's advice works, and the host is still verified
    // (UserKnownHostsFile /dev/null from the file applies, so accept-new records nothing
    // there and the key must be accepted as new).
    let out = run(
        msh(
            &home,
            &["-o", "StrictHostKeyChecking=accept-new", "alias", "echo ok"],
        ),
        b"",
        T,
    );
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_str(), "ok\n");
}

#[test]
fn dash_f_none_ignores_the_file() {
    let d = Mshd::start("msh-config-none");
    // Not an ssh_config keyword at all: an error naming the line when the file is read.
    let config = alias_config(&d, "    Frobnicate yes\n");
    let (home, path) = trusted_home(&d, "msh-config-none-home", &config, 0o600);
    let out = run(msh(&home, &["alias", "echo ok"]), b"", T);
    assert_eq!(out.code(), Some(255));
    out.assert_stderr_starts_with(&format!(
        "msh: {}:6: unknown option \"Frobnicate\"",
        path.display()
    ));

    // -F none: the file is not read, so its error is gone and so is the alias.
    let id = home.join(".ssh/id_test");
    let direct = [
        "-F",
        "none",
        "-p",
        &d.port.to_string(),
        "-l",
        &d.user,
        "-i",
        id.to_str().unwrap(),
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
    ]
    .map(str::to_string);
    let mut c = msh(&home, &[]);
    c.args(&direct).args(["127.0.0.1", "echo none"]);
    let out = run(c, b"", T);
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_str(), "none\n");
    let mut c = msh(&home, &[]);
    c.args(&direct).args(["alias", "echo none"]);
    let out = run(c, b"", T);
    assert_eq!(out.code(), Some(255), "stdout: {}", out.stdout_str());
    assert!(
        out.stderr
            .starts_with("msh: could not resolve hostname alias: ")
            && !out.stderr.contains("failed to lookup")
            && !out.stderr.contains("os error"),
        "stderr: {}",
        out.stderr
    );
}

#[test]
fn config_others_can_write_is_refused() {
    let d = Mshd::start("msh-config-perms");
    let (home, path) = trusted_home(&d, "msh-config-perms-home", &alias_config(&d, ""), 0o666);
    let out = run(msh(&home, &["alias", "echo ok"]), b"", T);
    assert_eq!(out.code(), Some(255), "stdout: {}", out.stdout_str());
    assert_eq!(
        out.stderr,
        format!(
            "msh: bad permissions on config file {p}: mode 0666 lets others write it; fix with chmod go-w {p}\n",
            p = path.display()
        )
    );
    set_mode(&path, 0o644);
    let out = run(msh(&home, &["alias", "echo ok"]), b"", T);
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_str(), "ok\n");
}

#[test]
fn included_file_defines_the_alias_and_messages_name_it() {
    let d = Mshd::start("msh-config-include");
    let home = home_for(&d, "msh-config-include-home");
    home.write(
        ".ssh/known_hosts",
        format!("{}\n", d.known_hosts_line()),
        0o644,
    );
    home.write(
        ".ssh/config",
        "Include config.d/*.conf\n\
         Host *\n\
         \x20   GlobalKnownHostsFile /dev/null\n\
         \x20   StrictHostKeyChecking yes\n\
         \x20   BatchMode yes\n",
        0o600,
    );
    let dead_port = free_port();
    let hosts = home.write(
        ".ssh/config.d/hosts.conf",
        format!(
            "{}Host dead\n\
             \x20   HostName 127.0.0.1\n\
             \x20   Port {dead_port}\n",
            alias_block(&d)
        ),
        0o644,
    );
    let out = run(msh(&home, &["alias", "echo included"]), b"", T);
    d.assert_ok(&out);
    assert_eq!(out.stdout_str(), "included\n");

    // A failure names the address and, since the user typed an alias, where it came from.
    let out = run(msh(&home, &["dead", "true"]), b"", T);
    assert_eq!(out.code(), Some(255), "stdout: {}", out.stdout_str());
    assert_eq!(
        out.stderr,
        format!(
            "msh: connect to 127.0.0.1 (HostName of \"dead\", {}:7) port {dead_port}: Connection refused\n",
            hosts.display()
        )
    );
}
