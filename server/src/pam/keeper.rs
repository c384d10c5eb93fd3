//! mshd's keeper mode (`mshd --pam-session-keeper SPEC_FD CONTROL_FD`): one root process per
//! session with `use_pam`, started by mshd in place of the session's program. It opens the
//! PAM session for the user (pam_start, PAM_RHOST, PAM_TTY, pam_setcred(ESTABLISH_CRED),
//! pam_open_session), adds the modules' variables to the environment, starts the program as
//! the user (new session with the PTY as controlling terminal, or a new process group; the
//! same privilege drop as without PAM), forwards the signals mshd asks for over the control
//! pipe, waits for the program, then closes the PAM session (pam_close_session,
//! pam_setcred(DELETE_CRED), pam_end) and exits as the program did: the same exit code, or
//! killed by the same signal, so mshd reports `exit-status` / `exit-signal` as without PAM.
//!
//! The keeper is in a process group of its own, outside the user's session and process
//! group: terminal signals, a hang-up of the PTY and the user's own kill(1) reach only the
//! user's processes, and a client's `signal` (even KILL or STOP, which a process cannot catch
//! to pass on) is sent by the keeper to the program's group as mshd would send it. It blocks
//! every catchable signal, so nothing but SIGKILL from root ends it before it closed the
//! session.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::ExitStatus;

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::unistd::{Gid, Uid};

use super::ffi::Pam;
use super::{KeeperSpec, MAX_SPEC};
use crate::sys::{self, ChildSetup, Identity};

/// The keeper's own failures (before the program runs) end the session with this status
/// and a line on the session's stderr.
const FAILED: i32 = 254;

/// Runs the keeper; `args` are the arguments after [`super::KEEPER_FLAG`]. Never returns.
pub fn main(args: &[OsString]) -> ! {
    let mut control = None;
    match run(args, &mut control) {
        Ok(status) => mirror(status),
        Err(msg) => {
            // To the client (the session's stderr) and to mshd, which logs it.
            let _ = writeln!(std::io::stderr(), "mshd: {msg}");
            if let Some(c) = control {
                let _ = rustix::io::write(&c, msg.as_bytes());
            }
            std::process::exit(FAILED)
        }
    }
}

fn fd_arg(args: &[OsString], i: usize) -> Result<OwnedFd, String> {
    let n: i32 = args
        .get(i)
        .and_then(|a| a.to_str())
        .and_then(|a| a.parse().ok())
        .filter(|n| *n > 2)
        .ok_or("the PAM session keeper is started by mshd only")?;
    sys::take_inherited_fd(n).map_err(|e| format!("PAM session keeper: descriptor {n}: {e}"))
}

fn run(args: &[OsString], report: &mut Option<OwnedFd>) -> Result<ExitStatus, String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("the PAM session keeper is started by mshd (as root) only".into());
    }
    // Nothing but SIGKILL may end the keeper before it closed the PAM session; the program
    // starts with an empty mask (sys::prepare_child clears it in the child).
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::all()), None)
        .map_err(|e| format!("PAM session keeper: sigprocmask: {e}"))?;
    let spec_fd = fd_arg(args, 0)?;
    let control = fd_arg(args, 1)?;
    *report = control.try_clone().ok();
    let mut json = Vec::new();
    std::fs::File::from(spec_fd)
        .take(MAX_SPEC)
        .read_to_end(&mut json)
        .map_err(|e| format!("PAM session keeper: reading the session: {e}"))?;
    let spec: KeeperSpec = serde_json::from_slice(&json)
        .map_err(|e| format!("PAM session keeper: the session description: {e}"))?;

    let session_failed = |what: &str, e: super::ffi::PamError| {
        format!(
            "PAM {what} failed for user {:?} (service {:?}): {e}; the session was not started",
            spec.user, spec.service
        )
    };
    let mut pam =
        Pam::start(&spec.service, &spec.user).map_err(|e| session_failed("pam_start", e))?;
    pam.set_rhost(&spec.rhost)
        .and_then(|()| pam.set_tty(spec.tty.as_deref().unwrap_or("ssh")))
        .map_err(|e| session_failed("pam_set_item", e))?;
    // sshd's order (do_pam_setcred, then do_pam_session): credentials, then the session.
    pam.setcred(true)
        .map_err(|e| session_failed("pam_setcred", e))?;
    if let Err(e) = pam.open_session() {
        show(pam.take_messages());
        let _ = pam.setcred(false);
        return Err(session_failed("pam_open_session", e));
    }
    // What the modules say at session start is shown on a terminal, as sshd shows it at an
    // interactive login; a command's or subsystem's output stays its own.
    let said = pam.take_messages();
    if spec.pty {
        show(said);
    }

    let env = merged_env(&spec.env, pam.env_list());
    let started = start_program(&spec, env);
    let (child, pidfd) = match started {
        Ok(c) => c,
        Err(e) => {
            close(&mut pam);
            return Err(e);
        }
    };
    // The session's terminal or pipes belong to the program now: without the keeper's copies
    // the output ends when the user's processes close it, as without PAM.
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
    let owner = (Uid::from_raw(spec.uid), Gid::from_raw(spec.gid));
    let status = supervise(child, &pidfd, &control, owner);
    close(&mut pam);
    drop(pam);
    status.map_err(|e| format!("PAM session keeper: waiting for the session: {e}"))
}

/// pam_close_session and pam_setcred(DELETE_CRED); failures cannot be reported to anyone
/// who could act on them at this point (the session's output is closed), so they are
/// ignored as sshd ignores them at the end of a session.
fn close(pam: &mut Pam) {
    let _ = pam.close_session();
    let _ = pam.setcred(false);
    let _ = pam.take_messages();
}

fn show(messages: Vec<String>) {
    let mut err = std::io::stderr();
    for m in messages {
        let _ = writeln!(err, "{m}");
    }
}

/// The session's environment with PAM's variables set over it, except the ones sshd keeps
/// out (`SSH_AUTH_INFO*`, `SSH_CONNECTION*`: PAM must not fake where the user came from).
fn merged_env(base: &[(String, String)], pam: Vec<Vec<u8>>) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = base
        .iter()
        .map(|(k, v)| (OsString::from(k), OsString::from(v)))
        .collect();
    for entry in pam {
        let Some(eq) = entry.iter().position(|b| *b == b'=') else {
            continue;
        };
        let (name, value) = entry.split_at(eq);
        let value = value.get(1..).unwrap_or_default();
        if name.is_empty()
            || name.starts_with(b"SSH_AUTH_INFO")
            || name.starts_with(b"SSH_CONNECTION")
        {
            continue;
        }
        let name = OsString::from_vec(name.to_vec());
        let value = OsString::from_vec(value.to_vec());
        match env.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => env.push((name, value)),
        }
    }
    env
}

fn start_program(
    spec: &KeeperSpec,
    env: Vec<(OsString, OsString)>,
) -> Result<(std::process::Child, OwnedFd), String> {
    let program = std::ffi::OsStr::from_bytes(&spec.program);
    let mut cmd = std::process::Command::new(program);
    cmd.arg0(&spec.argv0).args(&spec.args).env_clear().envs(env);
    let home = std::ffi::CString::new(spec.home.clone())
        .map_err(|_| "the home directory contains a NUL byte".to_string())?;
    let mut home_note = b"Could not chdir to home directory ".to_vec();
    home_note.extend_from_slice(&spec.home);
    home_note.extend_from_slice(b": ");
    sys::prepare_child(
        &mut cmd,
        ChildSetup {
            pty: spec.pty,
            identity: Some(Identity {
                uid: Uid::from_raw(spec.uid),
                gid: Gid::from_raw(spec.gid),
                groups: spec.groups.iter().map(|g| Gid::from_raw(*g)).collect(),
            }),
            home,
            home_note,
        },
    );
    let child = cmd.spawn().map_err(|e| {
        format!(
            "cannot start {}: {}",
            program.to_string_lossy(),
            sys::spawn_error(&e)
        )
    })?;
    let pid = rustix::process::Pid::from_raw(child.id() as i32)
        .ok_or_else(|| "the program has no pid".to_string())?;
    // Race-free: the child is ours and not reaped.
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        .map_err(|e| format!("cannot open a pidfd for the program: {e}"))?;
    Ok((child, pidfd))
}

/// Waits for the program, forwarding the signals mshd sends over `control` meanwhile.
fn supervise(
    mut child: std::process::Child,
    pidfd: &OwnedFd,
    control: &OwnedFd,
    owner: (Uid, Gid),
) -> std::io::Result<ExitStatus> {
    use rustix::event::{poll, PollFd, PollFlags};
    let pid = child.id() as i32;
    let mut control_open = true;
    loop {
        let mut fds = vec![PollFd::new(pidfd, PollFlags::IN)];
        if control_open {
            fds.push(PollFd::new(control, PollFlags::IN));
        }
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let exited = fds.first().is_some_and(|f| !f.revents().is_empty());
        let request = fds.get(1).is_some_and(|f| !f.revents().is_empty());
        if request {
            let mut buf = [0u8; 64];
            match rustix::io::read(control, &mut buf) {
                // mshd closed its end (the connection is gone): only the program's end is
                // left to wait for.
                Ok(0) => control_open = false,
                Ok(n) => {
                    for pair in buf.get(..n).unwrap_or_default().chunks(2) {
                        if let [sig, as_owner] = pair {
                            forward(pid, pidfd, *sig, *as_owner == 1, owner);
                        }
                    }
                }
                Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
                Err(_) => control_open = false,
            }
        }
        if exited {
            // Reaped only here, after every forward: until then its PID, and so its process
            // group ID, cannot name anything else.
            return child.wait();
        }
    }
}

/// Sends `sig` to the program's process group (it leads a new session or group), or to the
/// program alone if the group is empty, as mshd sends it without PAM; with the user's
/// credentials when mshd asks (a client's `signal`, as sshd's temporarily_use_uid).
fn forward(pid: i32, pidfd: &OwnedFd, sig: u8, as_owner: bool, owner: (Uid, Gid)) {
    let Some(rsig) = rustix::process::Signal::from_named_raw(i32::from(sig)) else {
        return;
    };
    let Some(p) = rustix::process::Pid::from_raw(pid) else {
        return;
    };
    let send = || match rustix::process::kill_process_group(p, rsig) {
        Err(rustix::io::Errno::SRCH) => rustix::process::pidfd_send_signal(pidfd, rsig),
        r => r,
    };
    let (uid, gid) = owner;
    if as_owner && !uid.is_root() {
        let _ = sys::as_user(uid, gid, send);
    } else {
        let _ = send();
    }
}

/// Exits as the program did: its exit code, or the signal that killed it, re-raised with its
/// default action (core dumps off: the keeper is root, and its core is of no use).
fn mirror(status: ExitStatus) -> ! {
    if let Some(code) = status.code() {
        std::process::exit(code);
    }
    if let Some(raw) = status.signal() {
        if let Ok(sig) = Signal::try_from(raw) {
            let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
            let mut set = SigSet::empty();
            set.add(sig);
            let _ = nix::sys::signal::raise(sig);
            let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
        }
        // A signal whose default is not to terminate cannot have killed the program.
        std::process::exit(128 + raw);
    }
    std::process::exit(FAILED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pam_variables_override_the_session_s_except_where_the_user_came_from() {
        let base = vec![
            ("PATH".to_string(), "/usr/bin".to_string()),
            ("LANG".to_string(), "C".to_string()),
            (
                "SSH_CONNECTION".to_string(),
                "1.2.3.4 5 6.7.8.9 22".to_string(),
            ),
        ];
        let pam = vec![
            b"LANG=de_DE.UTF-8".to_vec(),
            b"XDG_RUNTIME_DIR=/run/user/1000".to_vec(),
            b"SSH_CONNECTION=forged".to_vec(),
            b"SSH_AUTH_INFO_0=x".to_vec(),
            b"NOEQUALS".to_vec(),
            b"=empty-name".to_vec(),
            b"EMPTY=".to_vec(),
        ];
        let env = merged_env(&base, pam);
        let get = |k: &str| {
            env.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.to_string_lossy().into_owned())
        };
        assert_eq!(get("LANG").as_deref(), Some("de_DE.UTF-8"));
        assert_eq!(get("XDG_RUNTIME_DIR").as_deref(), Some("/run/user/1000"));
        assert_eq!(
            get("SSH_CONNECTION").as_deref(),
            Some("1.2.3.4 5 6.7.8.9 22")
        );
        assert_eq!(get("SSH_AUTH_INFO_0"), None);
        assert_eq!(get("NOEQUALS"), None);
        assert_eq!(get("EMPTY").as_deref(), Some(""));
        assert_eq!(env.len(), 5, "{env:?}");
    }
}
