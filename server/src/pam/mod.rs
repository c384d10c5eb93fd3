//! PAM (`use_pam`, as sshd's UsePAM; root mode only).
//!
//! - Account management runs at login, after a key was accepted and before the success is
//!   sent (sshd's do_pam_account in userauth_finish), in its own short transaction
//!   (pam_start, pam_acct_mgmt, pam_end) on a blocking thread: account modules decide, they
//!   do not change the calling process. A refusal is a refused login with PAM's reason.
//! - Session modules act on the process that calls them (pam_limits sets its limits,
//!   pam_loginuid writes /proc/self/loginuid, pam_systemd moves it into a logind scope,
//!   pam_env sets the environment). mshd is one process serving every connection, so they
//!   must not run in it: each session's program is started through a fresh exec of mshd in
//!   its hidden keeper mode ([`keeper`]), a root process of its own that opens the PAM session,
//!   forks the user's program (which inherits the limits, loginuid and scope), waits for it,
//!   closes the session and exits as the program did. sshd does the same in its per-connection
//!   child, which is a process of its own.
//!
//! The foreign calls are in [`ffi`] (which allows `unsafe`, as crate::sys); this module and
//! [`keeper`] have none.

pub mod ffi;
pub mod keeper;

use std::ffi::OsString;
use std::io::{Seek, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// argv[1] of mshd's keeper mode. main() looks for it before parsing the command line; mshd
/// only ever starts itself with it, as root, with the two descriptors it names.
pub const KEEPER_FLAG: &str = "--pam-session-keeper";

/// The startup warning when `/etc/pam.d/<service>` does not exist.
pub fn missing_service_note(service: &str) -> Option<String> {
    let file = Path::new("/etc/pam.d").join(service);
    (!file.exists()).then(|| {
        format!(
            "use_pam: {} does not exist, so PAM uses /etc/pam.d/other for pam_service {service:?}; install dist/pam.d/msh as {} (scripts/install.sh does), or set pam_service to an existing service such as \"sshd\"",
            file.display(),
            Path::new("/etc/pam.d").join("msh").display()
        )
    })
}

/// pam_acct_mgmt for `user` connecting from `rhost`: `Err` is the reason the login is
/// refused, for the log and the audit event.
pub(crate) fn account(service: &str, user: &str, rhost: &str) -> Result<(), String> {
    let fail = |what: &str, e: ffi::PamError, messages: Vec<String>| {
        let said = if messages.is_empty() {
            String::new()
        } else {
            format!(" (the modules said: {})", messages.join(" / "))
        };
        format!("PAM {what} for service {service:?} failed: {e}{said}")
    };
    let mut pam = ffi::Pam::start(service, user).map_err(|e| fail("pam_start", e, vec![]))?;
    // As sshd: PAM_RHOST the client's address, PAM_TTY "ssh" until a terminal is known (so
    // that pam_access rules for ssh logins apply).
    pam.set_rhost(rhost)
        .and_then(|()| pam.set_tty("ssh"))
        .map_err(|e| fail("pam_set_item", e, vec![]))?;
    match pam.acct_mgmt() {
        Ok(()) => Ok(()),
        Err(e) if e.code == ffi::NEW_AUTHTOK_REQD => Err(format!(
            "PAM account management for service {service:?}: the password of {user:?} must be changed before logging in, and mshd cannot change passwords (it does not use password authentication); refused (change it with passwd(1) on the host)"
        )),
        Err(e) => {
            let messages = pam.take_messages();
            Err(fail("account management (pam_acct_mgmt)", e, messages))
        }
    }
}

/// What the keeper needs to open the PAM session and start the session's program, written
/// by mshd to a memfd the keeper reads (never on the command line, which every user can read,
/// nor in the environment: the keeper runs as root with a clean one).
#[derive(Debug, Serialize, Deserialize)]
pub struct KeeperSpec {
    /// The PAM service.
    pub service: String,
    /// The account name (PAM_USER).
    pub user: String,
    /// The client's address (PAM_RHOST).
    pub rhost: String,
    /// The PTY's path (PAM_TTY), if the session has one.
    pub tty: Option<String>,
    /// Whether stdin is a PTY slave the program takes as controlling terminal.
    pub pty: bool,
    /// The user's ids and supplementary groups (computed by mshd, as for any session).
    pub uid: u32,
    /// The primary group.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// The home directory, as bytes.
    pub home: Vec<u8>,
    /// The program, as bytes.
    pub program: Vec<u8>,
    /// argv[0].
    pub argv0: String,
    /// The arguments after argv[0].
    pub args: Vec<String>,
    /// The session's environment before PAM's variables are added.
    pub env: Vec<(String, String)>,
}

/// Largest spec read by the keeper (a session's command line and environment are far less).
pub const MAX_SPEC: u64 = 8 << 20;

/// The command that starts the keeper for `spec`, and mshd's end of its control socket:
/// mshd writes two bytes per signal the keeper is to forward (the number, and 1 to send it
/// with the user's credentials); the keeper writes one line if it fails before the program
/// runs, which mshd logs ([`keeper_report`]). The caller sets stdin/stdout/stderr (the
/// session's pipes or PTY slave).
pub(crate) fn keeper_command(
    spec: &KeeperSpec,
) -> std::io::Result<(std::process::Command, OwnedFd)> {
    let json = serde_json::to_vec(spec).map_err(std::io::Error::other)?;
    let memfd =
        nix::sys::memfd::memfd_create(c"mshd-pam-session", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)?;
    let mut file = std::fs::File::from(memfd);
    file.write_all(&json)?;
    file.rewind()?;
    let spec_fd = Arc::new(OwnedFd::from(file));
    // Both ends close-on-exec (std's pair uses SOCK_CLOEXEC); the keeper's end is passed on
    // by sys::prepare_keeper in its child only.
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
    ours.set_nonblocking(true)?;
    let theirs = Arc::new(OwnedFd::from(theirs));
    let num =
        |fd: &Arc<OwnedFd>| OsString::from(std::os::fd::AsRawFd::as_raw_fd(&**fd).to_string());
    let mut cmd = std::process::Command::new("/proc/self/exe");
    cmd.arg0(OsString::from("mshd: pam session"))
        .arg(KEEPER_FLAG)
        .arg(num(&spec_fd))
        .arg(num(&theirs))
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    crate::sys::prepare_keeper(&mut cmd, vec![spec_fd, theirs]);
    Ok((cmd, OwnedFd::from(ours)))
}

/// What the keeper reported on its control socket before it exited (its failure to open
/// the PAM session or start the program), if anything; read once the keeper has exited.
pub(crate) fn keeper_report(control: &OwnedFd) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    let n = rustix::io::read(control, &mut buf[..]).ok()?;
    let text = String::from_utf8_lossy(buf.get(..n)?).trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// The spec for a session of `user` (helper for the session code).
#[allow(clippy::too_many_arguments)]
pub(crate) fn spec(
    service: &str,
    user: &str,
    rhost: &str,
    pty: bool,
    tty: Option<&Path>,
    identity: &crate::sys::Identity,
    home: &Path,
    program: &Path,
    argv0: &str,
    args: &[String],
    env: &[(String, String)],
) -> KeeperSpec {
    KeeperSpec {
        service: service.to_string(),
        user: user.to_string(),
        rhost: rhost.to_string(),
        tty: tty.map(|p| p.display().to_string()),
        pty,
        uid: identity.uid.as_raw(),
        gid: identity.gid.as_raw(),
        groups: identity.groups.iter().map(|g| g.as_raw()).collect(),
        home: home.as_os_str().as_bytes().to_vec(),
        program: program.as_os_str().as_bytes().to_vec(),
        argv0: argv0.to_string(),
        args: args.to_vec(),
        env: env.to_vec(),
    }
}
