//! Login records for PTY sessions, as sshd's loginrec.c and sshlogin.c: a `USER_PROCESS`
//! entry in utmp (`who`, `w`), the same record appended to wtmp (`last`), the user's lastlog
//! entry (`lastlog`), and at the end of the session a `DEAD_PROCESS` entry for the line in
//! utmp and a logout record (empty user) in wtmp. Before the lastlog entry is replaced, its
//! previous value can be shown as sshd's PrintLastLog does ("Last login: ... from ...").
//!
//! Only in root mode (the files are root's) and only for sessions with a PTY, as sshd. The
//! records are written by one thread of their own, in the order they were asked for (a
//! session's logout never overtakes its login) and never on the async runtime. A failure
//! never stops a session: it is logged once per file at warning level (then at debug), with
//! the file and the error.
//!
//! Files: utmp through the C library ([`crate::utmpx`]); wtmp appended to directly (one
//! `write` with `O_APPEND`, truncated back on a short write, as loginrec.c's wtmp_write);
//! lastlog read and written at `uid * record size` (292 bytes on x86_64 glibc). wtmp and
//! lastlog are opened without following symlinks and must be regular files owned by root;
//! a missing file is skipped with a debug line, as sshd.
#![forbid(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::net::IpAddr;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::oneshot;

use crate::utmpx::{self, Kind, Record};

/// glibc's `_PATH_UTMP`, `_PATH_WTMP` and `_PATH_LASTLOG`.
pub(crate) const UTMP: &str = "/var/run/utmp";
pub(crate) const WTMP: &str = "/var/log/wtmp";
pub(crate) const LASTLOG: &str = "/var/log/lastlog";

/// Size of one lastlog entry: `ll_time`, `ll_line[32]`, `ll_host[256]`, padded to the
/// alignment of `ll_time` (292 bytes on x86_64 glibc, 296 where `ll_time` is 64-bit).
const LASTLOG_SIZE: usize = (utmpx::TIME_SIZE + utmpx::LINE_SIZE + utmpx::HOST_SIZE)
    .div_ceil(utmpx::TIME_SIZE)
    * utmpx::TIME_SIZE;

/// What a PTY session records, decided when it starts (see [`plan`]).
#[derive(Debug, Clone)]
pub(crate) struct Login {
    pub(crate) user: String,
    pub(crate) uid: u32,
    /// The client's address: `ut_host`, `ut_addr_v6` and lastlog's host (mshd never looks
    /// up names: sshd's UseDNS no).
    pub(crate) host: IpAddr,
    /// For `~/.hushlogin`.
    pub(crate) home: PathBuf,
    /// `record_logins`: write utmp, wtmp and lastlog.
    pub(crate) record: bool,
    /// `print_last_log`, for an interactive shell: show the previous lastlog entry.
    pub(crate) print_last_log: bool,
}

/// Whether and what a session records: root mode, a PTY, and `record_logins` (the
/// records) or `print_last_log` for a shell without a command (sshd's do_login shows the
/// last login only when check_quietlogin finds no command and no `~/.hushlogin`).
pub(crate) fn plan(
    root_mode: bool,
    pty: bool,
    interactive_shell: bool,
    record_logins: bool,
    print_last_log: bool,
    account: &crate::auth::Account,
    peer: IpAddr,
) -> Option<Login> {
    if !root_mode || !pty {
        return None;
    }
    let print_last_log = print_last_log && interactive_shell;
    if !record_logins && !print_last_log {
        return None;
    }
    Some(Login {
        user: account.name.clone(),
        uid: account.uid.as_raw(),
        host: peer.to_canonical(),
        home: account.home.clone(),
        record: record_logins,
        print_last_log,
    })
}

/// A session's login, recorded (or being recorded): dropping it records the logout and
/// only then closes `keep` (the PTY master), so the line cannot be given to another login
/// before its `DEAD_PROCESS` entry is written (sshd's session_pty_cleanup2 records the
/// logout before it releases the PTY).
pub(crate) struct Recorded {
    line: String,
    pid: i32,
    record: bool,
    keep: Option<Box<dyn Send + Sync>>,
}

impl Drop for Recorded {
    fn drop(&mut self) {
        let keep = self.keep.take();
        if self.record {
            send(Job::Logout {
                line: std::mem::take(&mut self.line),
                pid: self.pid,
                keep,
            });
        }
    }
}

/// Records the login of `login` on `tty` (`/dev/pts/3`) for the session led by `pid`.
/// The receiver gets the "Last login" greeting to show (if any) once the records are
/// written. `keep` is held until the logout is written (see [`Recorded`]).
pub(crate) fn login(
    login: Login,
    tty: &Path,
    pid: i32,
    keep: Box<dyn Send + Sync>,
) -> (Recorded, oneshot::Receiver<Option<String>>) {
    let line = tty
        .to_string_lossy()
        .trim_start_matches("/dev/")
        .to_string();
    let (tx, rx) = oneshot::channel();
    let record = login.record;
    send(Job::Login {
        login,
        line: line.clone(),
        pid,
        reply: tx,
    });
    (
        Recorded {
            line,
            pid,
            record,
            keep: Some(keep),
        },
        rx,
    )
}

/// Waits (at most `timeout`) until every record asked for so far is written: at exit, so
/// the logouts of the sessions that just ended are not lost.
pub(crate) fn flush(timeout: Duration) -> bool {
    if WRITER.get().is_none() {
        return true;
    }
    let (tx, rx) = mpsc::channel();
    send(Job::Flush(tx));
    rx.recv_timeout(timeout).is_ok()
}

enum Job {
    Login {
        login: Login,
        line: String,
        pid: i32,
        reply: oneshot::Sender<Option<String>>,
    },
    Logout {
        line: String,
        pid: i32,
        keep: Option<Box<dyn Send + Sync>>,
    },
    Flush(mpsc::Sender<()>),
}

static WRITER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();

/// Queues `job` for the writer thread, started on first use. If the thread could not be
/// started (said once), nothing is recorded and sessions start without a greeting.
fn send(job: Job) {
    let writer = WRITER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let spawned = std::thread::Builder::new()
            .name("login-records".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    run(job);
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot start the login records thread: {e}; logins are not recorded");
        }
        Mutex::new(tx)
    });
    let sent = writer.lock().unwrap_or_else(|p| p.into_inner()).send(job);
    // On failure the job is dropped with its reply sender: the session waits no longer.
    drop(sent);
}

fn run(job: Job) {
    match job {
        Job::Login {
            login,
            line,
            pid,
            reply,
        } => {
            let greeting = write_login(&login, &line, pid);
            let _ = reply.send(greeting);
        }
        Job::Logout { line, pid, keep } => {
            write_logout(&line, pid);
            drop(keep);
        }
        Job::Flush(done) => {
            let _ = done.send(());
        }
    }
}

fn now() -> (i64, i64) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, i64::from(d.subsec_micros()))
}

/// sshd's record_login: the previous lastlog entry is read first (store_lastlog_message),
/// then utmp, wtmp and lastlog are written. Returns the greeting to show.
fn write_login(login: &Login, line: &str, pid: i32) -> Option<String> {
    let greeting = if login.print_last_log && !hushlogin(&login.home) {
        previous_login(Path::new(LASTLOG), login.uid).map(|p| p.greeting())
    } else {
        None
    };
    if login.record {
        let host = login.host.to_string();
        let (tv_sec, tv_usec) = now();
        let bytes = Record {
            kind: Kind::Login,
            pid,
            line,
            user: &login.user,
            host: &host,
            addr: addr_v6(login.host),
            tv_sec,
            tv_usec,
        }
        .to_bytes();
        note(UTMP, put_utmp(&bytes));
        note(WTMP, append_wtmp(Path::new(WTMP), &bytes));
        note(
            LASTLOG,
            write_lastlog(Path::new(LASTLOG), login.uid, tv_sec, line, &host),
        );
        tracing::debug!(
            "recorded the login of {} on {line} (pid {pid}) from {host}",
            login.user
        );
    }
    greeting
}

/// sshd's record_logout: `DEAD_PROCESS` for the line in utmp, and a logout record with an
/// empty user and host in wtmp (loginrec.c's construct_utmp leaves them blank).
fn write_logout(line: &str, pid: i32) {
    let (tv_sec, tv_usec) = now();
    let bytes = Record {
        kind: Kind::Logout,
        pid,
        line,
        user: "",
        host: "",
        addr: [0; 16],
        tv_sec,
        tv_usec,
    }
    .to_bytes();
    note(UTMP, put_utmp(&bytes));
    note(WTMP, append_wtmp(Path::new(WTMP), &bytes));
    tracing::debug!("recorded the logout on {line} (pid {pid})");
}

/// `ut_addr_v6` as loginrec.c fills it: an IPv4 address in the first word.
fn addr_v6(ip: IpAddr) -> [u8; 16] {
    let mut a = [0u8; 16];
    match ip {
        IpAddr::V4(v4) => utmpx::put(&mut a, 0, &v4.octets()),
        IpAddr::V6(v6) => a = v6.octets(),
    }
    a
}

/// What went wrong with one file: `Missing` is skipped quietly, as sshd.
#[derive(Debug)]
enum Failure {
    Missing,
    Other(String),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::NotFound {
            Failure::Missing
        } else {
            Failure::Other(e.to_string())
        }
    }
}

/// Logs a failure to write `file`: the first one per file at warning level, the rest at
/// debug, so a missing or refused file does not fill the log at every login.
fn note(file: &'static str, result: Result<(), Failure>) {
    static WARNED: [AtomicBool; 3] = [
        AtomicBool::new(false),
        AtomicBool::new(false),
        AtomicBool::new(false),
    ];
    let slot = match file {
        UTMP => 0,
        WTMP => 1,
        _ => 2,
    };
    let what = match result {
        Ok(()) => return,
        Err(Failure::Missing) => {
            tracing::debug!("login records: {file} does not exist; not recorded there");
            return;
        }
        Err(Failure::Other(e)) => e,
    };
    let first = WARNED
        .get(slot)
        .is_some_and(|w| !w.swap(true, Ordering::Relaxed));
    if first {
        tracing::warn!(
            "login records: cannot write {file}: {what}; sessions go on without it (said once; later failures are logged at debug level)"
        );
    } else {
        tracing::debug!("login records: cannot write {file}: {what}");
    }
}

/// Refuses a login record file that is not a regular file owned by root (a symlink
/// included): `who` and `last` trust it, and mshd writes it as root.
fn check_owned_by_root(path: &Path, meta: &std::fs::Metadata) -> Result<(), Failure> {
    if !meta.file_type().is_file() {
        return Err(Failure::Other(format!(
            "{} is not a regular file; refusing to write it",
            path.display()
        )));
    }
    if meta.uid() != 0 {
        return Err(Failure::Other(format!(
            "{} is owned by uid {}, not root; refusing to write it",
            path.display(),
            meta.uid()
        )));
    }
    Ok(())
}

/// utmp through the C library (which opens [`UTMP`] itself, so the file is checked
/// first without following a symlink; its directory, /run, is root's).
fn put_utmp(bytes: &[u8]) -> Result<(), Failure> {
    let path = Path::new(UTMP);
    let meta = std::fs::symlink_metadata(path)?;
    check_owned_by_root(path, &meta)?;
    utmpx::put_utmp_line(bytes).map_err(|e| Failure::Other(e.to_string()))
}

/// Opens a record file with `options`, never following a symlink (named as the reason).
fn open_no_follow(path: &Path, options: &mut OpenOptions) -> Result<File, Failure> {
    options
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NOCTTY)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(nix::libc::ELOOP) => Failure::Other(format!(
                "{} is a symbolic link; refusing to write it",
                path.display()
            )),
            _ => Failure::from(e),
        })
}

/// Opens a record file without following symlinks and checks it is root's.
fn open_checked(path: &Path, write: bool) -> Result<File, Failure> {
    let file = open_no_follow(path, OpenOptions::new().read(true).write(write))?;
    check_owned_by_root(path, &file.metadata()?)?;
    Ok(file)
}

/// Appends one record to wtmp as loginrec.c's wtmp_write: one write in append mode, cut
/// back to the old size if it was short, so a reader never sees half a record.
fn append_wtmp(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let file = open_no_follow(path, OpenOptions::new().append(true))?;
    let meta = file.metadata()?;
    check_owned_by_root(path, &meta)?;
    match rustix::io::write(&file, bytes) {
        Ok(n) if n == bytes.len() => Ok(()),
        r => {
            let _ = file.set_len(meta.len());
            Err(Failure::Other(match r {
                Ok(n) => format!("short write ({n} of {} bytes)", bytes.len()),
                Err(e) => io::Error::from(e).to_string(),
            }))
        }
    }
}

/// sshd's lastlog_write_entry: the user's entry (time, line, host) at `uid * size`.
fn write_lastlog(path: &Path, uid: u32, time: i64, line: &str, host: &str) -> Result<(), Failure> {
    let file = open_checked(path, true)?;
    let mut entry = vec![0u8; LASTLOG_SIZE];
    utmpx::put_time(&mut entry, 0, time);
    utmpx::put_str(&mut entry, utmpx::TIME_SIZE, utmpx::LINE_SIZE, line);
    utmpx::put_str(
        &mut entry,
        utmpx::TIME_SIZE + utmpx::LINE_SIZE,
        // One byte short: lastlog's host is NUL-terminated (strlcpy in loginrec.c).
        utmpx::HOST_SIZE - 1,
        host,
    );
    file.write_all_at(&entry, lastlog_offset(uid))?;
    Ok(())
}

fn lastlog_offset(uid: u32) -> u64 {
    u64::from(uid) * LASTLOG_SIZE as u64
}

/// A user's previous login, from lastlog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PreviousLogin {
    pub(crate) time: i64,
    pub(crate) host: String,
}

impl PreviousLogin {
    /// sshd's store_lastlog_message: `Last login: <ctime> from <host>` (without `from`
    /// when no host was recorded), in mshd's local time zone.
    fn greeting(&self) -> String {
        let when = jiff::Timestamp::from_second(self.time)
            .map(|t| {
                t.to_zoned(jiff::tz::TimeZone::system())
                    .strftime("%a %b %e %H:%M:%S %Y")
                    .to_string()
            })
            .unwrap_or_else(|_| self.time.to_string());
        if self.host.is_empty() {
            format!("Last login: {when}\r\n")
        } else {
            format!("Last login: {when} from {}\r\n", self.host)
        }
    }
}

/// The user's lastlog entry, if there is one (time not zero). Read errors are logged once
/// like write errors, and mean no greeting.
fn previous_login(path: &Path, uid: u32) -> Option<PreviousLogin> {
    let read = || -> Result<Option<PreviousLogin>, Failure> {
        let file = open_checked(path, false)?;
        let mut entry = vec![0u8; LASTLOG_SIZE];
        let n = file.read_at(&mut entry, lastlog_offset(uid))?;
        Ok(parse_lastlog(entry.get(..n).unwrap_or_default()))
    };
    match read() {
        Ok(p) => p,
        Err(e) => {
            note(LASTLOG, Err(e));
            None
        }
    }
}

/// An entry as read (a short read past the end of the file: never logged in).
fn parse_lastlog(entry: &[u8]) -> Option<PreviousLogin> {
    if entry.len() < LASTLOG_SIZE {
        return None;
    }
    let time = utmpx::get_time(entry, 0);
    if time == 0 {
        return None;
    }
    let host_field = entry
        .get(utmpx::TIME_SIZE + utmpx::LINE_SIZE..)
        .unwrap_or_default();
    let end = host_field
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(host_field.len());
    // Shown on the user's terminal: nothing but printable ASCII from a file others write.
    let host = host_field
        .get(..end)
        .unwrap_or_default()
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect();
    Some(PreviousLogin { time, host })
}

/// sshd's check_quietlogin: `~/.hushlogin` exists. Looked at as root, so a symlink counts
/// as itself (lstat): following it would tell the user whether a path only root can see
/// exists.
fn hushlogin(home: &Path) -> bool {
    std::fs::symlink_metadata(home.join(".hushlogin")).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn lastlog_entries_are_292_bytes_on_x86_64_glibc() {
        #[cfg(target_arch = "x86_64")]
        assert_eq!(LASTLOG_SIZE, 292);
        assert_eq!(lastlog_offset(3), 3 * LASTLOG_SIZE as u64);
    }

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("msh-login-records-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_lastlog_entry_written_reads_back_and_greets_like_sshd() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: the file must be root's, so the test needs root");
            return;
        }
        let dir = temp("lastlog");
        let path = dir.join("lastlog");
        std::fs::write(&path, b"").unwrap();
        assert_eq!(previous_login(&path, 1000), None, "never logged in");
        write_lastlog(&path, 1000, 1_700_000_000, "pts/4", "192.0.2.7").unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), 1001 * LASTLOG_SIZE as u64);
        let p = previous_login(&path, 1000).unwrap();
        assert_eq!(p.time, 1_700_000_000);
        assert_eq!(p.host, "192.0.2.7");
        let g = p.greeting();
        assert!(
            g.starts_with("Last login: ") && g.ends_with(" from 192.0.2.7\r\n"),
            "{g}"
        );
        assert!(g.contains(" 2023"), "{g}");
        assert_eq!(previous_login(&path, 999), None, "another uid: zeros");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn record_files_that_are_symlinks_or_not_roots_are_refused() {
        let dir = temp("refuse");
        let target = dir.join("real");
        std::fs::write(&target, b"").unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        match append_wtmp(&link, &[0u8; 4]) {
            Err(Failure::Other(e)) => assert!(e.contains("symbolic link"), "{e}"),
            other => panic!("{other:?}"),
        }
        match write_lastlog(&link, 1, 1, "pts/1", "h") {
            Err(Failure::Other(e)) => assert!(e.contains("symbolic link"), "{e}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(std::fs::metadata(&target).unwrap().len(), 0, "untouched");
        if nix::unistd::geteuid().is_root() {
            nix::unistd::chown(&target, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
            match append_wtmp(&target, &[0u8; 4]) {
                Err(Failure::Other(e)) => assert!(e.contains("not root"), "{e}"),
                other => panic!("{other:?}"),
            }
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(matches!(
            append_wtmp(&dir.join("missing"), &[0u8; 4]),
            Err(Failure::Missing)
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_lastlog_host_with_control_characters_is_shown_harmlessly() {
        let mut e = vec![0u8; LASTLOG_SIZE];
        utmpx::put_time(&mut e, 0, 5);
        utmpx::put_str(&mut e, utmpx::TIME_SIZE + utmpx::LINE_SIZE, 10, "a\x1b[2Jb");
        let p = parse_lastlog(&e).unwrap();
        assert_eq!(p.host, "a?[2Jb");
        assert_eq!(parse_lastlog(&e[..10]), None, "short: never logged in");
    }
}
