//! Client-controlled strings in mshd's logs. A user name, command, environment variable,
//! subsystem or terminal name comes from the network; written as is, a newline in it starts
//! a forged log line (`x\nFORGED accepted publickey for root`), an escape sequence rewrites
//! the terminal of whoever reads the log, and 30 kB of it fills the disk one attempt at a
//! time. [`clean`] escapes and caps one such string; [`EscapingWriter`] is the backstop under
//! the whole text log, so a string that reaches a log line unescaped still cannot start a
//! new line. sshd caps a logged user name at 100 characters (`%.100s`) and escapes with
//! strnvis in some places only; its log file lets a newline through.
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::io::{self, Write};

/// Longest user name logged (sshd's `%.100s`).
pub const USER_MAX: usize = 100;
/// Longest name of anything else the client picks (env variable, subsystem, TERM, signal).
pub const NAME_MAX: usize = 100;
/// Longest value or command line logged.
pub const VALUE_MAX: usize = 1024;

/// `s` safe for one log line: control characters (C0, DEL, C1), line and paragraph
/// separators and bidirectional overrides escaped (`\n`, `\r`, `\t`, `\\`, `\x1b`,
/// `\u{202e}`), then cut to `max` characters of the original with the number left out, so a
/// reader sees both that it was cut and how long it was.
pub fn clean(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max + 32));
    for (n, c) in s.chars().enumerate() {
        if n == max {
            let rest = s.chars().count() - n;
            let _ = write!(out, "...[{rest} more characters]");
            return out;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_dangerous_unicode(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// A user name for the log: [`clean`] with sshd's cap.
pub fn user(s: &str) -> String {
    clean(s, USER_MAX)
}

/// C1 controls, line/paragraph separators and the bidirectional embeddings, overrides and
/// isolates (a `U+202E` makes a terminal show the rest of the line reversed).
fn is_dangerous_unicode(c: char) -> bool {
    matches!(c as u32,
        0x80..=0x9f | 0x2028 | 0x2029 | 0x200e | 0x200f | 0x202a..=0x202e | 0x2066..=0x2069)
}

/// Writes one formatted log record, escaping every `\n` and `\r` but the record's last
/// newline. tracing-subscriber's fmt layer formats a whole event into one buffer and writes
/// it with one `write_all`, so one `write` call here is one record.
pub struct EscapingWriter<W: Write>(pub W);

impl<W: Write> Write for EscapingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (body, end) = match buf.split_last() {
            Some((b'\n', body)) => (body, &b"\n"[..]),
            _ => (buf, &b""[..]),
        };
        if !body.iter().any(|b| *b == b'\n' || *b == b'\r') {
            self.0.write_all(buf)?;
            return Ok(buf.len());
        }
        let mut out = Vec::with_capacity(buf.len() + 16);
        for b in body {
            match b {
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b => out.push(*b),
            }
        }
        out.extend_from_slice(end);
        self.0.write_all(&out)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// `make_writer` for the fmt layer: stderr behind [`EscapingWriter`].
pub fn stderr() -> EscapingWriter<io::Stderr> {
    EscapingWriter(io::stderr())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_caps() {
        assert_eq!(clean("alice", 100), "alice");
        assert_eq!(
            clean("a\nFORGED\r\t\\\x1b[2J\x7f\u{85}\u{202e}é", 100),
            "a\\nFORGED\\r\\t\\\\\\x1b[2J\\x7f\\u{85}\\u{202e}é"
        );
        let long = "x".repeat(10_000);
        let c = user(&long);
        assert!(c.starts_with(&"x".repeat(100)));
        assert!(c.ends_with("...[9900 more characters]"), "{c}");
        assert_eq!(clean("abc", 3), "abc");
    }

    #[test]
    fn writer_keeps_one_record_on_one_line() {
        let mut w = EscapingWriter(Vec::new());
        w.write_all(b"INFO user a\nFORGED\r line\n").unwrap();
        w.write_all(b"INFO plain\n").unwrap();
        assert_eq!(
            String::from_utf8(w.0).unwrap(),
            "INFO user a\\nFORGED\\r line\nINFO plain\n"
        );
    }
}
