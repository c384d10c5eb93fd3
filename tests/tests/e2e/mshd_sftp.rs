//! File transfer through mshd's `sftp` subsystem with OpenSSH's own clients: `scp` (SFTP mode,
//! OpenSSH 9's default) and `sftp -b`, a refused subsystem, a forced `command=` that runs
//! instead of sftp-server (SSH_ORIGINAL_COMMAND as sshd sets it), and, in root mode, files
//! owned by the user who logged in.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use msh_tests::mshd::{check_config, user_ca_builder, Mshd};
use msh_tests::users::{require_root, TestUser};
use msh_tests::*;

const T: Duration = Duration::from_secs(30);
const LOG: Duration = Duration::from_secs(5);

/// OpenSSH's sftp-server on this machine (the same places mshd looks for its default).
fn sftp_server() -> PathBuf {
    [
        "/usr/lib/openssh/sftp-server",
        "/usr/libexec/openssh/sftp-server",
        "/usr/libexec/sftp-server",
        "/usr/lib/ssh/sftp-server",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .expect("OpenSSH's sftp-server is not installed: run scripts/test.sh, which installs openssh-server from apt")
}

/// The client options `Mshd::ssh` uses (no user config, pinned host key, the fixture's key,
/// no agent), for `scp` and `sftp`, which take the port as `-P`.
fn client(d: &Mshd, program: &str, key: &Path) -> Command {
    let mut c = d.openssh_client(program, key);
    c.arg("-P").arg(d.port.to_string());
    c
}

/// `sftp -b BATCH user@127.0.0.1` with `commands` as the batch file.
fn sftp_batch(d: &Mshd, user: &str, commands: &str) -> Output {
    let batch = d.dir.write("batch", commands, 0o644);
    let mut c = client(d, "sftp", &d.client_key);
    c.arg("-b").arg(&batch).arg(format!("{user}@127.0.0.1"));
    run(c, b"", T)
}

/// Deterministic, non-repeating bytes.
fn payload(len: usize) -> Vec<u8> {
    let mut data = Vec::with_capacity(len + 4);
    let mut x: u32 = 0x9e37_79b9;
    while data.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(len);
    data
}

/// This process's umask, read without changing it (`Umask:` in /proc/self/status).
fn umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .expect("no Umask: line in /proc/self/status");
    u32::from_str_radix(line.trim(), 8).unwrap()
}

#[test]
fn scp_in_sftp_mode_uploads_and_downloads_a_file_intact() {
    let d = Mshd::builder("sftp-scp").audit_log().start();
    let data = payload(5 << 20);
    let local = d.dir.write("local.bin", &data, 0o640);
    let remote = d.dir.join("remote.bin");
    // Upload (no -O: OpenSSH 9's scp speaks SFTP through the `sftp` subsystem).
    let mut c = client(&d, "scp", &d.client_key);
    c.arg(&local)
        .arg(format!("{}@127.0.0.1:{}", d.user, remote.display()));
    let out = run(c, b"", Duration::from_secs(60));
    d.assert_ok(&out);
    assert_eq!(
        sha256sum(&remote),
        sha256sum(&local),
        "uploaded bytes differ"
    );
    let meta = std::fs::metadata(&remote).unwrap();
    assert_eq!(meta.len(), data.len() as u64);
    assert_eq!(meta.uid(), nix::unistd::geteuid().as_raw(), "owner");
    // sftp-server creates the file with the source's mode, less its umask (mshd's, inherited
    // from this process).
    assert_eq!(
        meta.mode() & 0o777,
        0o640 & !umask(),
        "scp keeps the source mode"
    );
    // Download it back.
    let back = d.dir.join("back.bin");
    let mut c = client(&d, "scp", &d.client_key);
    c.arg(format!("{}@127.0.0.1:{}", d.user, remote.display()))
        .arg(&back);
    let out = run(c, b"", Duration::from_secs(60));
    d.assert_ok(&out);
    assert_eq!(
        std::fs::read(&back).unwrap(),
        data,
        "downloaded bytes differ"
    );
    // Both went through the subsystem, not `scp -t` over exec (the legacy protocol).
    d.wait_for_log(
        &format!(
            "subsystem \"sftp\" ({}) for {}",
            sftp_server().display(),
            d.user
        ),
        LOG,
    );
    assert!(!d.log_text().contains("exec \"scp"), "{}", d.log_text());
    let starts = d.wait_for_audit_named("session_start", 2, LOG);
    assert_eq!(starts.len(), 2, "{starts:?}");
    for e in &starts {
        assert_eq!(e["command"], "subsystem:sftp", "{e}");
        assert_eq!(e["subsystem"], "sftp", "{e}");
        assert_eq!(e["pty"], false, "{e}");
    }
    let ends = d.wait_for_audit_named("session_end", 2, LOG);
    assert_eq!(ends.len(), 2, "{ends:?}");
    assert!(ends
        .iter()
        .all(|e| e["exit_status"] == 0 && e["subsystem"] == "sftp"));
    // The file's bytes crossed the channel: into sftp-server, then out of it.
    assert!(
        ends[0]["bytes_in"].as_u64().unwrap() > data.len() as u64,
        "{}",
        ends[0]
    );
    assert!(
        ends[1]["bytes_out"].as_u64().unwrap() > data.len() as u64,
        "{}",
        ends[1]
    );
}

#[test]
fn check_config_prints_the_subsystems_table_and_names_a_bad_entry() {
    let dir = TestDir::new("sftp-check-config");
    let good = dir.write(
        "good.toml",
        "subsystems = { sftp = \"/opt/sftp-server -l INFO\", backup = \"/usr/local/bin/b\" }\n",
        0o644,
    );
    let out = check_config(&good);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let text = out.stdout_str();
    assert!(
        text.contains(
            "[subsystems]\nbackup = \"/usr/local/bin/b\"\nsftp = \"/opt/sftp-server -l INFO\"\n"
        ),
        "{text}"
    );
    // The default: sftp -> the sftp-server installed here.
    let empty = dir.write("empty.toml", "", 0o644);
    let out = check_config(&empty);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(
        out.stdout_str()
            .contains(&format!("sftp = \"{}\"", sftp_server().display())),
        "{}",
        out.stdout_str()
    );
    let bad = dir.write(
        "bad.toml",
        "max_sessions = 4\nsubsystems = { sftp = \"\" }\n",
        0o644,
    );
    let out = check_config(&bad);
    assert_eq!(out.code(), Some(1));
    out.assert_stderr_contains(&format!(
        "{}:2: key `subsystems.sftp`: empty command",
        bad.display()
    ));
}

#[test]
fn sftp_batch_mkdir_put_ls_rename_rm() {
    let d = Mshd::start("sftp-batch");
    let a = d.dir.write("a.txt", "alpha\n", 0o644);
    let b = d.dir.write("b.txt", "bravo\n", 0o644);
    let up = d.dir.join("up");
    let home = nix::unistd::User::from_name(&d.user).unwrap().unwrap().dir;
    let batch = format!(
        "pwd\nmkdir {up}\nput {a} {up}/a.txt\nput {b} {up}/b.txt\nls -1 {up}\nrename {up}/a.txt {up}/c.txt\nrm {up}/b.txt\nls -1 {up}\n",
        up = up.display(),
        a = a.display(),
        b = b.display()
    );
    let out = sftp_batch(&d, &d.user, &batch);
    d.assert_ok(&out);
    let text = out.stdout_str();
    // The session starts in the user's home, as an exec does.
    assert!(
        text.contains(&format!("Remote working directory: {}\n", home.display())),
        "{text}"
    );
    // The first listing shows both uploads, the second only the renamed file.
    let first = format!(
        "sftp> ls -1 {up}\n{up}/a.txt\n{up}/b.txt\nsftp> rename",
        up = up.display()
    );
    assert!(text.contains(&first), "{text}");
    assert!(
        text.ends_with(&format!(
            "sftp> ls -1 {up}\n{up}/c.txt\n",
            up = up.display()
        )),
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(up.join("c.txt")).unwrap(),
        "alpha\n"
    );
    assert!(!up.join("a.txt").exists());
    assert!(!up.join("b.txt").exists());
    assert!(up.is_dir());
}

#[test]
fn subsystems_off_refuses_sftp_and_logs_the_name() {
    let d = Mshd::builder("sftp-off").toml("subsystems = {}").start();
    let out = sftp_batch(&d, &d.user, "ls\n");
    assert_ne!(out.code(), Some(0), "sftp worked with subsystems = {{}}");
    out.assert_stderr_contains("subsystem request failed");
    let log = d.wait_for_log("subsystem \"sftp\" refused", LOG);
    assert!(log.contains("not configured"), "{log}");
    assert!(
        log.contains(&format!("{} has none", d.config.display())),
        "{log}"
    );
    // With the default table, an unknown name is refused the same way and named.
    let d = Mshd::start("sftp-unknown");
    let out = run(d.ssh(&["-s"], "no-such-subsystem"), b"", T);
    assert_eq!(out.code(), Some(255), "stderr: {}", out.stderr);
    out.assert_stderr_contains("subsystem request failed");
    let log = d.wait_for_log("subsystem \"no-such-subsystem\" refused", LOG);
    assert!(log.contains("has sftp"), "{log}");
}

#[test]
fn missing_subsystem_program_fails_at_once_with_a_reason() {
    let d = Mshd::builder("sftp-missing")
        .toml("subsystems = { sftp = \"/nonexistent/sftp-server -l INFO\" }")
        .start();
    let out = sftp_batch(&d, &d.user, "ls\n");
    assert_ne!(out.code(), Some(0));
    out.assert_stderr_contains("subsystem request failed");
    let log = d.wait_for_log("/nonexistent/sftp-server does not exist", LOG);
    assert!(log.contains("subsystem \"sftp\""), "{log}");
    // A file without execute permission is named as such.
    let dir = TestDir::new("sftp-noexec");
    let noexec = dir.write("not-a-program", "#!/bin/sh\n", 0o644);
    let d = Mshd::builder("sftp-noexec")
        .dir(dir)
        .toml(&format!(
            "subsystems = {{ sftp = \"{}\" }}",
            noexec.display()
        ))
        .start();
    let out = sftp_batch(&d, &d.user, "ls\n");
    out.assert_stderr_contains("subsystem request failed");
    d.wait_for_log(&format!("{} is not executable", noexec.display()), LOG);
}

#[test]
fn forced_command_runs_instead_of_sftp_server() {
    // What sshd sets: SSH_ORIGINAL_COMMAND is the subsystem's configured command line.
    let server = format!("{} -l INFO", sftp_server().display());
    let dir = TestDir::new("sftp-forced");
    let ran = dir.join("forced.log");
    let d = Mshd::builder("sftp-forced")
        .dir(dir)
        .toml(&format!("subsystems = {{ sftp = \"{server}\" }}"))
        .authorized_keys_options(&format!(
            "command=\"echo ORIG=$SSH_ORIGINAL_COMMAND; echo ran >> {}\"",
            ran.display()
        ))
        .audit_log()
        .start();
    let out = run(d.ssh(&["-s"], "sftp"), b"", T);
    d.assert_ok(&out);
    assert_eq!(out.stdout_str(), format!("ORIG={server}\n"));
    // sftp gets the forced command's output instead of an SFTP server: no transfer.
    let src = d.dir.write("src.txt", "payload\n", 0o644);
    let dest = d.dir.join("dest.txt");
    let out = sftp_batch(
        &d,
        &d.user,
        &format!("put {} {}\n", src.display(), dest.display()),
    );
    assert_ne!(
        out.code(),
        Some(0),
        "sftp succeeded through a forced command"
    );
    assert!(
        !dest.exists(),
        "a file was transferred past the forced command"
    );
    // The forced command ran for both sessions (sftp may give up before it finished).
    let deadline = std::time::Instant::now() + LOG;
    while std::fs::read_to_string(&ran).unwrap_or_default() != "ran\nran\n" {
        assert!(
            std::time::Instant::now() < deadline,
            "forced.log: {:?}",
            std::fs::read_to_string(&ran)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    d.wait_for_log("subsystem \"sftp\" replaced by the forced command", LOG);
    let starts = d.wait_for_audit_named("session_start", 2, LOG);
    assert_eq!(starts.len(), 2, "{starts:?}");
    for e in &starts {
        assert_eq!(e["subsystem"], "sftp", "{e}");
        assert!(
            e["command"].as_str().unwrap().starts_with("echo ORIG="),
            "the audit names the command that ran: {e}"
        );
    }
}

#[test]
fn certificate_force_command_runs_instead_of_sftp_server() {
    let (b, ca) = user_ca_builder("sftp-cert-forced");
    let d = b.start();
    // OpenSSH's ssh-keygen issues the certificate; ssh offers id_ed25519-cert.pub itself.
    ssh_keygen_sign(
        &ca,
        &d.dir.join("id_ed25519.pub"),
        "sftp-forced",
        &d.user,
        &["-O", "force-command=echo CERT-FORCED $SSH_ORIGINAL_COMMAND"],
    );
    let out = run(d.ssh(&["-s"], "sftp"), b"", T);
    d.assert_ok(&out);
    assert_eq!(
        out.stdout_str(),
        format!("CERT-FORCED {}\n", sftp_server().display())
    );
    d.wait_for_log("subsystem \"sftp\" replaced by the forced command", LOG);
}

#[test]
fn restrict_does_not_forbid_sftp() {
    // As OpenSSH: `restrict` turns off forwarding, PTYs and ~/.ssh/rc, not subsystems.
    let d = Mshd::builder("sftp-restrict")
        .authorized_keys_options("restrict")
        .start();
    let src = d.dir.write("src.txt", "restricted but allowed\n", 0o644);
    let dest = d.dir.join("dest.txt");
    let out = sftp_batch(
        &d,
        &d.user,
        &format!("put {} {}\n", src.display(), dest.display()),
    );
    d.assert_ok(&out);
    assert_eq!(
        std::fs::read_to_string(&dest).unwrap(),
        "restricted but allowed\n"
    );
}

#[test]
fn root_mode_upload_is_owned_by_the_user() {
    if !require_root("root_mode_upload_is_owned_by_the_user") {
        return;
    }
    let u = TestUser::new();
    let d = Mshd::builder("sftp-root").home_authorized_keys().start();
    u.write_authorized_keys(&format!("{}\n", d.client_public));
    let data = payload(1 << 20);
    let local = d.dir.write("up.bin", &data, 0o600);
    // A relative remote path is relative to the user's home (the session's cwd).
    let mut c = client(&d, "scp", &d.client_key);
    c.arg(&local).arg(format!("{}@127.0.0.1:up.bin", u.name));
    let out = run(c, b"", T);
    d.assert_ok(&out);
    let remote = u.home.join("up.bin");
    assert_eq!(std::fs::read(&remote).unwrap(), data);
    let meta = std::fs::metadata(&remote).unwrap();
    assert_eq!(meta.uid(), u.uid, "uploaded file not owned by {}", u.name);
    assert_eq!(meta.gid(), u.gid);
    // And the user cannot write where only root may (the server runs as the user).
    let out = sftp_batch(
        &d,
        &u.name,
        &format!("put {} /root/msht-sftp-not-allowed\n", local.display()),
    );
    assert_ne!(out.code(), Some(0), "{}", out.stdout_str());
    out.assert_stderr_contains("Permission denied");
    assert!(!Path::new("/root/msht-sftp-not-allowed").exists());
}
