//! Running `authorized_keys_command` and `authorized_principals_command` (sshd's
//! AuthorizedKeysCommand / AuthorizedPrincipalsCommand, auth2-pubkey.c, and misc.c's
//! `subprocess`), and reading what they print.
//!
//! As sshd: the program is named by an absolute path and it, and every directory above it, is
//! owned by root and not group- or world-writable (`safe_path`; unprivileged, mshd's own user
//! may own them too); the arguments are split without a shell and their `%` tokens expanded
//! (no arguments: the user name is passed); it runs as the configured user (unprivileged:
//! as mshd's user) with stdin `/dev/null`, stderr discarded, a clean environment (`PATH`,
//! `USER`, `LOGNAME`, `HOME` of the run-as user, `LANG` from mshd's) and `/` as working
//! directory. Its standard output is read as authorized_keys (or principals) lines; a bad
//! line is skipped with a warning naming `authorized_keys_command:LINE`.
//!
//! Stricter than sshd: the run-as user may never be root (sshd would run it), and the command
//! is bounded: past its timeout, or past [`MAX_OUTPUT`] bytes of output, its process group is
//! killed and it admits nobody; a non-zero exit admits nobody either (as sshd).
#![forbid(unsafe_code)]

use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use msh_common::authorized_keys::AuthorizedKeys;
use msh_common::certs::PrincipalsFile;
use nix::unistd::Uid;
use russh::keys::{Certificate, PublicKey};

use super::{lookup_account, Account};
use crate::config::commands::{argv_split, expand, CommandKind, IdentityCommand};
use crate::config::Settings;

/// Most output read from a command (sshd reads all of it); more admits nobody.
pub(crate) const MAX_OUTPUT: usize = 1 << 20;

/// `PATH` in the command's environment (OpenSSH's `_PATH_STDPATH`).
const STD_PATH: &str = "/usr/bin:/bin:/usr/sbin:/sbin";

/// The values of the `%` tokens for one run.
pub(crate) struct Tokens {
    values: Vec<(char, String)>,
}

impl Tokens {
    fn base(account: &Account) -> Vec<(char, String)> {
        vec![
            ('u', account.name.clone()),
            ('U', account.uid.to_string()),
            ('h', account.home.display().to_string()),
        ]
    }

    /// For a plain key: `%f` its fingerprint, `%k` its base64 blob, `%t` its type.
    pub(crate) fn key(account: &Account, key: &PublicKey) -> Tokens {
        let mut values = Self::base(account);
        values.push(('f', msh_common::keys::fingerprint(key)));
        values.push(('k', base64_of(key.to_openssh().ok())));
        values.push(('t', key.algorithm().as_str().to_string()));
        Tokens { values }
    }

    /// For a certificate: `%f` the fingerprint of its key, `%k` the certificate's base64 blob,
    /// `%t` the certificate type; and `%i` key id, `%s` serial, `%F`/`%K`/`%T` the CA's
    /// fingerprint, base64 blob and type (only the principals command knows the last five).
    pub(crate) fn cert(account: &Account, cert: &Certificate) -> Tokens {
        let mut values = Self::base(account);
        let inner = PublicKey::new(cert.public_key().clone(), "");
        let ca = PublicKey::new(cert.signature_key().clone(), "");
        values.push(('f', msh_common::keys::fingerprint(&inner)));
        values.push(('k', base64_of(cert.to_openssh().ok())));
        values.push(('t', cert.algorithm().to_certificate_type()));
        values.push(('i', cert.key_id().to_string()));
        values.push(('s', cert.serial().to_string()));
        values.push(('F', msh_common::keys::fingerprint(&ca)));
        values.push(('K', base64_of(ca.to_openssh().ok())));
        values.push(('T', ca.algorithm().as_str().to_string()));
        Tokens { values }
    }

    fn get(&self, kind: CommandKind, t: char) -> Option<String> {
        if !kind.tokens().contains(t) {
            return None;
        }
        self.values
            .iter()
            .find(|(k, _)| *k == t)
            .map(|(_, v)| v.clone())
    }
}

/// The second field of an OpenSSH public line (`TYPE BASE64 [COMMENT]`).
fn base64_of(line: Option<String>) -> String {
    line.and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        .unwrap_or_default()
}

/// Runs `authorized_keys_command` for `account` and parses its output as an authorized_keys
/// file named `authorized_keys_command` (so lines are reported as
/// `authorized_keys_command:LINE`). `None`: not configured. `Err`: why it admits nobody.
pub(crate) fn authorized_keys(
    settings: &Settings,
    account: &Account,
    tokens: &Tokens,
) -> Option<Result<AuthorizedKeys, String>> {
    let cmd = settings.keys_command()?;
    Some(
        run(settings, CommandKind::Keys, &cmd, account, tokens).map(|text| {
            let ak = AuthorizedKeys::parse(Path::new(CommandKind::Keys.key()), &text);
            for w in ak.warnings() {
                tracing::warn!("{w}; line skipped");
            }
            ak
        }),
    )
}

/// Runs `authorized_principals_command` and parses its output as a principals file named
/// `authorized_principals_command`. `None`: not configured. `Err`: why it admits nobody.
pub(crate) fn principals(
    settings: &Settings,
    account: &Account,
    tokens: &Tokens,
) -> Option<Result<PrincipalsFile, String>> {
    let cmd = settings.principals_command()?;
    Some(
        run(settings, CommandKind::Principals, &cmd, account, tokens).map(|text| {
            let file = PrincipalsFile::parse(Path::new(CommandKind::Principals.key()), &text);
            for w in &file.warnings {
                tracing::warn!("{w}; line skipped");
            }
            file
        }),
    )
}

/// Runs the command and returns its output, or why it admits nobody (the reason starts with
/// the key, e.g. `authorized_keys_command "/usr/bin/k %u" timed out after 30s`). The outcome
/// is logged either way.
fn run(
    settings: &Settings,
    kind: CommandKind,
    cmd: &IdentityCommand,
    account: &Account,
    tokens: &Tokens,
) -> Result<String, String> {
    // The command as configured, never with its tokens expanded, names it in the log.
    let name = format!("{} {:?}", kind.key(), cmd.command);
    let fail = |why: String| {
        let reason = format!("{name} admits nobody: {why}");
        tracing::warn!("{reason}");
        reason
    };
    let runner = run_as(settings, kind, cmd).map_err(&fail)?;
    let mut argv = argv_split(&cmd.command).map_err(|e| fail(format!("cannot split: {e}")))?;
    for arg in argv.iter_mut().skip(1) {
        *arg = expand(arg, |t| tokens.get(kind, t)).map_err(&fail)?;
    }
    // sshd: without arguments the user name is the one argument.
    if argv.len() == 1 {
        argv.push(account.name.clone());
    }
    let Some((program, args)) = argv.split_first() else {
        return Err(fail("empty command".to_string()));
    };
    let owner = if settings.root_mode {
        0
    } else {
        nix::unistd::geteuid().as_raw()
    };
    let real = msh_common::perms::check_trusted_program(Path::new(program), owner)
        .map_err(|e| fail(format!("unsafe program: {}", msh_common::Chain(&e))))?;

    let mut command = std::process::Command::new(&real);
    command
        .arg0(program)
        .args(args)
        .env_clear()
        .env("PATH", STD_PATH)
        .env("USER", &runner.name)
        .env("LOGNAME", &runner.name)
        .env("HOME", &runner.home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(lang) = std::env::var_os("LANG") {
        command.env("LANG", lang);
    }
    let identity = settings.root_mode.then(|| crate::sys::Identity {
        uid: runner.uid,
        gid: runner.gid,
        groups: runner.groups.clone(),
    });
    crate::sys::prepare_helper(&mut command, identity);
    let started = Instant::now();
    let mut child = command.spawn().map_err(|e| {
        fail(format!(
            "cannot start {}: {}",
            real.display(),
            crate::sys::spawn_error(&e)
        ))
    })?;
    let outcome = collect(&mut child, cmd.timeout);
    let pid = child.id();
    let output = match outcome {
        Ok(out) => out,
        Err(why) => {
            kill_group(pid);
            // SIGKILL cannot be caught: the wait is short.
            let _ = child.wait();
            return Err(fail(why));
        }
    };
    let status = child
        .wait()
        .map_err(|e| fail(format!("cannot wait for it: {e}")))?;
    let ran = started.elapsed();
    if let Some(sig) = status.signal() {
        return Err(fail(format!("killed by signal {sig}")));
    }
    match status.code() {
        Some(0) => {}
        Some(code) => return Err(fail(format!("exited with status {code}"))),
        None => return Err(fail("ended without an exit status".to_string())),
    }
    let lines = output.iter().filter(|b| **b == b'\n').count();
    tracing::info!(
        "{name} ran as {} (uid {}) for {}: exit 0, {} bytes, {lines} lines, in {} ms",
        runner.name,
        runner.uid,
        crate::logsafe::user(&account.name),
        output.len(),
        ran.as_millis()
    );
    // Invalid UTF-8 spoils only the lines it is on.
    Ok(String::from_utf8_lossy(&output).into_owned())
}

/// Who the command runs as: in root mode the configured user, which must exist and not be
/// root; unprivileged, mshd's own user.
fn run_as(
    settings: &Settings,
    kind: CommandKind,
    cmd: &IdentityCommand,
) -> Result<Account, String> {
    if !settings.root_mode {
        let me = nix::unistd::User::from_uid(nix::unistd::geteuid())
            .map_err(|e| format!("cannot look up mshd's own user: {e}"))?
            .ok_or_else(|| "mshd's own uid has no passwd entry".to_string())?;
        return lookup_account(&me.name)?
            .ok_or_else(|| format!("mshd's own user {:?} vanished", me.name));
    }
    let Some(user) = &cmd.user else {
        // The config refuses this in root mode; kept as a refusal rather than a panic.
        return Err(format!("{}_user is not set", kind.key()));
    };
    let account = lookup_account(user)?.ok_or_else(|| {
        format!(
            "{}_user {user:?} does not exist; create the account or fix the key",
            kind.key()
        )
    })?;
    if account.uid == Uid::from_raw(0) {
        return Err(format!(
            "{}_user {user:?} is root (uid 0): the command is never run as root; name an \
             unprivileged account",
            kind.key()
        ));
    }
    Ok(account)
}

/// Reads the child's stdout until it ends and the child has exited, within `timeout`, at most
/// [`MAX_OUTPUT`] bytes. `Err` says why the command was cut short (the caller kills it).
fn collect(child: &mut std::process::Child, timeout: Duration) -> Result<Vec<u8>, String> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let deadline = Instant::now() + timeout;
    let Some(mut stdout) = child.stdout.take() else {
        return Err("its output could not be captured".to_string());
    };
    let pid =
        rustix::process::Pid::from_raw(child.id() as i32).ok_or_else(|| "pid 0".to_string())?;
    // The child is ours and not reaped, so its PID cannot name anything else.
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        .map_err(|e| format!("pidfd_open: {e}"))?;
    nix::fcntl::fcntl(
        &stdout,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .map_err(|e| format!("cannot make its output non-blocking: {e}"))?;
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut open = true;
    let mut exited = false;
    while open || !exited {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "timed out after {}s; its process group was killed",
                timeout.as_secs()
            ));
        }
        let ts = Timespec {
            tv_sec: left.as_secs().try_into().unwrap_or(i64::MAX),
            tv_nsec: left.subsec_nanos().into(),
        };
        let out_fd = stdout.as_fd();
        let mut fds = Vec::with_capacity(2);
        if open {
            fds.push(PollFd::new(&out_fd, PollFlags::IN));
        }
        if !exited {
            fds.push(PollFd::new(&pidfd, PollFlags::IN));
        }
        match poll(&mut fds, Some(&ts)) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(format!("poll: {e}")),
        }
        let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
        drop(fds);
        let mut i = 0;
        if open {
            if ready.get(i).copied().unwrap_or(false) {
                loop {
                    match stdout.read(&mut chunk) {
                        Ok(0) => {
                            open = false;
                            break;
                        }
                        Ok(n) => {
                            out.extend_from_slice(chunk.get(..n).unwrap_or_default());
                            if out.len() > MAX_OUTPUT {
                                return Err(format!(
                                    "more than {} bytes of output; it was killed",
                                    MAX_OUTPUT
                                ));
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(format!("cannot read its output: {e}")),
                    }
                }
            }
            i += 1;
        }
        if !exited && ready.get(i).copied().unwrap_or(false) {
            exited = true;
        }
    }
    Ok(out)
}

/// SIGKILL to the command's process group (it is the group's leader, see
/// `sys::prepare_helper`, and not yet reaped, so the id still names it).
fn kill_group(pid: u32) {
    let Ok(pid) = i32::try_from(pid) else { return };
    if let Err(e) = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    ) {
        tracing::warn!("cannot kill process group {pid}: {e}");
    }
}
