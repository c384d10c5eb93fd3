//! Disabled accounts, as sshd decides them without PAM (auth.c `allowed_user`, UsePAM=no):
//! an account whose shadow expiry date has passed (`usermod --expiredate`, `chage -E`), or
//! whose password field starts with `!` (`usermod -L`, `passwd -l`; OpenSSH's
//! LOCKED_PASSWD_PREFIX on Linux), may not log in, whatever key it offers. sshd reads the
//! entry with getspnam; mshd reads /etc/shadow itself (root only; NSS sources other than
//! files are not consulted, as a missing entry: then the passwd field alone decides).
#![forbid(unsafe_code)]

use std::io::Read;
use std::path::Path;

/// What mshd needs from one shadow entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShadowEntry {
    /// Whether the password field starts with `!` (the hash itself is never kept).
    pub locked: bool,
    /// `sp_expire`: days since 1970-01-01 after which the account is expired; None = never.
    pub expire_day: Option<i64>,
}

/// Larger than any real shadow file; a bigger one is refused rather than read.
const MAX_SHADOW_BYTES: u64 = 64 << 20;

/// The shadow entry for `name` from `text` (shadow(5): `name:password:lastchg:min:max:warn:
/// inactive:expire:reserved`).
pub(crate) fn parse_entry(text: &str, name: &str) -> Option<ShadowEntry> {
    let line = text.lines().find(|l| l.split(':').next() == Some(name))?;
    let fields: Vec<&str> = line.split(':').collect();
    let password = fields.get(1).copied().unwrap_or("");
    let expire_day = fields
        .get(7)
        .and_then(|f| f.trim().parse::<i64>().ok())
        .filter(|d| *d != -1);
    Some(ShadowEntry {
        locked: password.starts_with('!'),
        expire_day,
    })
}

/// Reads `path` (/etc/shadow) and returns `name`'s entry; `Ok(None)` when the file or the
/// entry does not exist. The file is root's: opened without following a symlink, checked to
/// be a regular file of bounded size.
pub(crate) fn lookup(path: &Path, name: &str) -> Result<Option<ShadowEntry>, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !meta.is_file() || meta.len() > MAX_SHADOW_BYTES {
        return Err(format!(
            "{} is not a regular file of at most {MAX_SHADOW_BYTES} bytes",
            path.display()
        ));
    }
    let mut text = String::new();
    file.take(MAX_SHADOW_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(parse_entry(&text, name))
}

/// Why `name` may not log in, if it may not: `passwd_locked` is the passwd entry's own
/// password field starting with `!` (used when there is no shadow entry, as sshd does);
/// `today` is days since 1970-01-01 (UTC), as sshd's `time(NULL) / DAY`.
pub(crate) fn refusal(
    name: &str,
    entry: Option<&ShadowEntry>,
    passwd_locked: bool,
    today: i64,
) -> Option<String> {
    let shown = format!("\"{}\"", crate::logsafe::user(name));
    if let Some(day) = entry.and_then(|e| e.expire_day) {
        // sshd: expired when sp_expire - today < 0 (so 0 means 1970-01-01, expired).
        if day < today {
            return Some(format!(
                "account {shown} expired on {} (shadow expire date; `chage -E -1 {shown}` removes it)",
                date_of(day)
            ));
        }
    }
    let locked = entry.map(|e| e.locked).unwrap_or(passwd_locked);
    if locked {
        return Some(format!(
            "account {shown} is locked (its password field starts with `!`: usermod -L or \
             passwd -l; an account meant for keys only should have `*` instead: \
             usermod -p '*' {shown}), as sshd without PAM refuses it"
        ));
    }
    None
}

/// `YYYY-MM-DD` of a day number (days since 1970-01-01); the number itself when it is out
/// of jiff's range (a corrupt shadow field).
fn date_of(day: i64) -> String {
    jiff::Span::new()
        .try_days(day)
        .and_then(|span| jiff::civil::date(1970, 1, 1).checked_add(span))
        .map(|d| d.to_string())
        .unwrap_or_else(|_| format!("day {day}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lock_and_expiry_as_sshd_reads_them() {
        let text = "root:*:19000:0:99999:7:::\n\
                    alice:!$6$x$y:19000:0:99999:7::1:\n\
                    bob:$6$x$y:19000:0:99999:7:::\n\
                    carol:!:19000:0:99999:7::-1:\n\
                    alicex:*:1::::::\n";
        let alice = parse_entry(text, "alice").unwrap();
        assert_eq!(
            alice,
            ShadowEntry {
                locked: true,
                expire_day: Some(1)
            }
        );
        assert!(!parse_entry(text, "bob").unwrap().locked);
        assert_eq!(parse_entry(text, "carol").unwrap().expire_day, None);
        assert!(parse_entry(text, "ali").is_none());
        let today = 20_000;
        let r = refusal("alice", Some(&alice), false, today).unwrap();
        assert!(r.contains("expired on 1970-01-02"), "{r}");
        let carol = parse_entry(text, "carol").unwrap();
        assert!(refusal("carol", Some(&carol), false, today)
            .unwrap()
            .contains("is locked"));
        let root = parse_entry(text, "root").unwrap();
        assert_eq!(refusal("root", Some(&root), false, today), None);
        assert!(refusal("x", None, true, today).is_some());
        // Expires at the end of its day, as sshd (daysleft < 0).
        let e = ShadowEntry {
            locked: false,
            expire_day: Some(today),
        };
        assert_eq!(refusal("e", Some(&e), false, today), None);
        assert_eq!(date_of(0), "1970-01-01");
        assert_eq!(date_of(i64::MAX), format!("day {}", i64::MAX));
        assert_eq!(date_of(20_792), "2026-12-05");
    }
}
