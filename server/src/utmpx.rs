//! The C library's utmp database API (utmpx(3): `setutxent`, `pututxline`, `endutxent`) and
//! the layout of its records, for [`crate::login_records`]. Besides [`crate::sys`], the only
//! module of mshd allowed `unsafe`: two calls, each with its `// SAFETY:` line.
//!
//! A record is built as bytes at the offsets of glibc's `struct utmpx` (`offset_of!` on the
//! `libc` crate's definition), so the same bytes go to utmp through `pututxline` and are
//! appended to wtmp by plain file I/O, and no padding byte is ever read from a Rust value.
#![allow(unsafe_code)]

use std::io;
use std::mem::{offset_of, size_of};
use std::sync::Mutex;

use nix::libc;

/// Size of one utmp/wtmp record (384 bytes on x86_64 glibc).
pub(crate) const RECORD_SIZE: usize = size_of::<libc::utmpx>();

/// Bytes of `ut_line`, `ut_user`, `ut_host` and `ut_id`.
pub(crate) const LINE_SIZE: usize = libc::__UT_LINESIZE;
const USER_SIZE: usize = libc::__UT_NAMESIZE;
pub(crate) const HOST_SIZE: usize = libc::__UT_HOSTSIZE;
const ID_SIZE: usize = 4;

/// Size of the seconds field of `ut_tv`, which is also that of lastlog's `ll_time`: glibc
/// keeps both 32-bit on x86_64 (`__WORDSIZE_TIME64_COMPAT32`) and 64-bit elsewhere.
pub(crate) const TIME_SIZE: usize = field_size(|u: &libc::utmpx| &u.ut_tv) / 2;

const fn field_size<T, F>(_: fn(&T) -> &F) -> usize {
    size_of::<F>()
}

/// What a record says: a login (`USER_PROCESS`) or the end of one (`DEAD_PROCESS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `USER_PROCESS`: someone logged in on the line.
    Login,
    /// `DEAD_PROCESS`: the line's session ended.
    Logout,
}

/// One utmp/wtmp record, as loginrec.c's construct_utmp fills it.
#[derive(Debug, Clone)]
pub(crate) struct Record<'a> {
    pub(crate) kind: Kind,
    pub(crate) pid: i32,
    /// `pts/3` (no `/dev/`).
    pub(crate) line: &'a str,
    /// Empty for a logout, as sshd.
    pub(crate) user: &'a str,
    /// Empty for a logout.
    pub(crate) host: &'a str,
    /// `ut_addr_v6`: an IPv4 address in the first 4 bytes, an IPv6 one in all 16; zero for a
    /// logout.
    pub(crate) addr: [u8; 16],
    pub(crate) tv_sec: i64,
    pub(crate) tv_usec: i64,
}

/// `ut_id` as sshd's line_abbrevname: the last four bytes of the line (`pts/3` -> `ts/3`),
/// so the logout replaces the login's utmp entry (glibc matches entries by `ut_id`).
pub(crate) fn line_id(line: &str) -> &[u8] {
    let b = line.as_bytes();
    b.get(b.len().saturating_sub(ID_SIZE)..).unwrap_or_default()
}

impl Record<'_> {
    /// The record as glibc lays out `struct utmpx`; strings are truncated to their field
    /// and NUL-padded (strncpy, as loginrec.c).
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; RECORD_SIZE];
        let ut_type = match self.kind {
            Kind::Login => libc::USER_PROCESS,
            Kind::Logout => libc::DEAD_PROCESS,
        };
        put(
            &mut b,
            offset_of!(libc::utmpx, ut_type),
            &ut_type.to_ne_bytes(),
        );
        put(
            &mut b,
            offset_of!(libc::utmpx, ut_pid),
            &self.pid.to_ne_bytes(),
        );
        put_str(
            &mut b,
            offset_of!(libc::utmpx, ut_line),
            LINE_SIZE,
            self.line,
        );
        put(&mut b, offset_of!(libc::utmpx, ut_id), line_id(self.line));
        put_str(
            &mut b,
            offset_of!(libc::utmpx, ut_user),
            USER_SIZE,
            self.user,
        );
        put_str(
            &mut b,
            offset_of!(libc::utmpx, ut_host),
            HOST_SIZE,
            self.host,
        );
        let tv = offset_of!(libc::utmpx, ut_tv);
        put_time(&mut b, tv, self.tv_sec);
        put_time(&mut b, tv + TIME_SIZE, self.tv_usec);
        put(&mut b, offset_of!(libc::utmpx, ut_addr_v6), &self.addr);
        b
    }
}

/// Writes `v` as a `ut_tv`/`ll_time` field at `off` (32-bit: truncated, as glibc does until
/// 2038 on x86_64).
pub(crate) fn put_time(b: &mut [u8], off: usize, v: i64) {
    if TIME_SIZE == 4 {
        put(b, off, &(v as i32).to_ne_bytes());
    } else {
        put(b, off, &v.to_ne_bytes());
    }
}

/// Reads a `ll_time`-sized time at `off`.
pub(crate) fn get_time(b: &[u8], off: usize) -> i64 {
    let field = b.get(off..off + TIME_SIZE).unwrap_or_default();
    if let Ok(a) = <[u8; 4]>::try_from(field) {
        i64::from(i32::from_ne_bytes(a))
    } else if let Ok(a) = <[u8; 8]>::try_from(field) {
        i64::from_ne_bytes(a)
    } else {
        0
    }
}

pub(crate) fn put(b: &mut [u8], off: usize, v: &[u8]) {
    if let Some(dst) = b.get_mut(off..off + v.len()) {
        dst.copy_from_slice(v);
    }
}

pub(crate) fn put_str(b: &mut [u8], off: usize, size: usize, s: &str) {
    let s = s.as_bytes();
    put(b, off, s.get(..size.min(s.len())).unwrap_or_default());
}

/// Serialises every use of the C library's utmp state in this process: `pututxline` and its
/// friends keep the open file and the current position in static variables.
static UTMP_LOCK: Mutex<()> = Mutex::new(());

/// Writes `record` (a [`Record::to_bytes`]) to the utmp file with `setutxent` +
/// `pututxline` + `endutxent`, as sshd's utmpx_write_library: the entry with the same
/// `ut_id` is replaced, or one is appended. Blocking (the C library takes a file lock);
/// never call it from the async runtime.
pub(crate) fn put_utmp_line(record: &[u8]) -> io::Result<()> {
    if record.len() != RECORD_SIZE {
        return Err(io::Error::other("utmp record of the wrong size"));
    }
    // SAFETY: `struct utmpx` holds only integers and arrays of integers, so any
    // RECORD_SIZE bytes are a valid value of it, and read_unaligned copies them without
    // needing the slice to be aligned; the length was checked just above.
    let ut: libc::utmpx = unsafe { std::ptr::read_unaligned(record.as_ptr().cast()) };
    let _guard = UTMP_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    // SAFETY: these three calls share the C library's static utmp state, which only this
    // function touches in mshd, under UTMP_LOCK; pututxline reads `ut` (a valid, live
    // value) during the call and keeps no pointer to it; errno is read right after it,
    // before endutxent can change it.
    unsafe {
        libc::setutxent();
        let r = libc::pututxline(&ut);
        let err = io::Error::last_os_error();
        libc::endutxent();
        if r.is_null() {
            Err(err)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ut_id_is_the_last_four_bytes_of_the_line_as_sshd() {
        assert_eq!(line_id("pts/3"), b"ts/3");
        assert_eq!(line_id("pts/12"), b"s/12");
        assert_eq!(line_id("tty1"), b"tty1");
        assert_eq!(line_id("p1"), b"p1");
    }

    #[test]
    fn a_login_record_has_glibcs_layout() {
        let r = Record {
            kind: Kind::Login,
            pid: 4242,
            line: "pts/7",
            user: "alice",
            host: "192.0.2.7",
            addr: [192, 0, 2, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            tv_sec: 1_700_000_000,
            tv_usec: 5,
        };
        let b = r.to_bytes();
        assert_eq!(b.len(), RECORD_SIZE);
        #[cfg(target_arch = "x86_64")]
        {
            // glibc x86_64: type(2)+pad(2), pid@4, line@8, id@40, user@44, host@76,
            // exit@332, session@336, tv@340, addr@348; 384 bytes in all.
            assert_eq!(RECORD_SIZE, 384);
            assert_eq!(&b[0..2], &7i16.to_ne_bytes());
            assert_eq!(&b[4..8], &4242i32.to_ne_bytes());
            assert_eq!(&b[8..14], b"pts/7\0");
            assert_eq!(&b[40..44], b"ts/7");
            assert_eq!(&b[44..50], b"alice\0");
            assert_eq!(&b[76..86], b"192.0.2.7\0");
            assert_eq!(&b[340..344], &1_700_000_000i32.to_ne_bytes());
            assert_eq!(&b[344..348], &5i32.to_ne_bytes());
            assert_eq!(&b[348..352], &[192, 0, 2, 7]);
        }
    }

    #[test]
    fn long_strings_are_cut_to_their_field_without_a_nul() {
        let user = "u".repeat(40);
        let r = Record {
            kind: Kind::Logout,
            pid: 1,
            line: "pts/1",
            user: &user,
            host: "",
            addr: [0; 16],
            tv_sec: 0,
            tv_usec: 0,
        };
        let b = r.to_bytes();
        let off = offset_of!(libc::utmpx, ut_user);
        assert_eq!(&b[off..off + USER_SIZE], "u".repeat(USER_SIZE).as_bytes());
        assert_eq!(
            &b[0..2],
            &libc::DEAD_PROCESS.to_ne_bytes(),
            "the next field is untouched"
        );
        assert_ne!(b[off + USER_SIZE], b'u');
    }
}
