//! Pure parser for known_hosts text (OpenSSH `hostfile.c` semantics, no I/O but `load`).
//!
//! One entry a line: `[@cert-authority|@revoked] HOSTS KEYTYPE BASE64 [COMMENT]`, e.g.
//! `[build.internal]:2222,10.0.0.5 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI... ops@laptop`.
//! HOSTS is a comma-separated pattern list (`*`, `?`, `!negation`, `[host]:port`) or one
//! hashed name `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`. Fields are separated by any
//! run of spaces or tabs; blank lines and `#` comments are ignored. A line that cannot be
//! understood becomes `Line::Invalid` with its line number and a reason, and stays in the
//! model so that rewrites keep it.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use russh::keys::PublicKey;

use crate::{Error, Result};

/// Length of the salt and of the HMAC-SHA1 in a `|1|` hashed host name.
pub const HASH_LEN: usize = 20;

/// Marker at the start of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    None,
    CertAuthority,
    Revoked,
}

/// The host field: plain pattern list, or a hashed `|1|salt|hash` name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostField {
    Patterns(String),
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
}

/// One usable entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// 1-based line number in its file.
    pub line: usize,
    pub marker: Marker,
    pub hosts: HostField,
    pub key: PublicKey,
    pub comment: String,
    /// The line as it stands in the file (without its line ending), for `find`-style output.
    pub text: String,
}

/// One line of the file, as read.
// Entries are most lines of a known_hosts file, so boxing them would save nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Line {
    Entry(Entry),
    /// Blank or comment line.
    Other,
    /// Malformed line: kept so it can be reported (and never rewritten away).
    Invalid {
        line: usize,
        reason: String,
    },
}

/// A parsed known_hosts file with its path.
#[derive(Debug, Clone)]
pub struct KnownHostsFile {
    pub path: PathBuf,
    pub lines: Vec<Line>,
}

/// Splits off the first field (up to a space or tab); returns it and the rest, with the
/// separating whitespace skipped.
fn next_field(s: &str) -> (&str, &str) {
    let s = s.trim_start_matches(is_field_sep);
    match s.find(is_field_sep) {
        Some(i) => {
            let (field, rest) = s.split_at(i);
            (field, rest.trim_start_matches(is_field_sep))
        }
        None => (s, ""),
    }
}

/// Field separators. `\r` counts so that CRLF files parse; OpenSSH's tokenizer also
/// treats it as whitespace.
fn is_field_sep(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\r'
}

/// Decodes a `|1|salt|hash` host field. `field` starts with `|`.
fn parse_hashed(field: &str) -> std::result::Result<HostField, String> {
    let bad = |why: &str| {
        format!(
            "hashed host name `{field}` {why}; expected |1|BASE64-SALT|BASE64-HASH as written \
             by ssh-keygen -H (delete or fix this line)"
        )
    };
    let Some(rest) = field.strip_prefix("|1|") else {
        return Err(bad("uses an unknown hash type"));
    };
    let Some((salt_b64, hash_b64)) = rest.split_once('|') else {
        return Err(bad("has no hash part"));
    };
    let salt = BASE64
        .decode(salt_b64)
        .map_err(|_| bad("has a salt that is not base64"))?;
    let hash = BASE64
        .decode(hash_b64)
        .map_err(|_| bad("has a hash that is not base64"))?;
    if salt.len() != HASH_LEN || hash.len() != HASH_LEN {
        return Err(bad("has a salt or hash that is not 20 bytes long"));
    }
    Ok(HostField::Hashed { salt, hash })
}

/// Parses one line (without its line ending). `line` is its 1-based number.
pub fn parse_line(line: usize, text: &str) -> Line {
    let body = text.trim_start_matches(is_field_sep);
    if body.is_empty() || body.starts_with('#') {
        return Line::Other;
    }
    let invalid = |reason: String| Line::Invalid { line, reason };

    let (mut field, mut rest) = next_field(body);
    let mut marker = Marker::None;
    if field.starts_with('@') {
        marker = match field {
            "@cert-authority" => Marker::CertAuthority,
            "@revoked" => Marker::Revoked,
            other => {
                return invalid(format!(
                    "unknown marker `{other}`; only @cert-authority and @revoked exist"
                ))
            }
        };
        (field, rest) = next_field(rest);
        if field.is_empty() {
            return invalid(format!(
                "`{}` is not followed by host patterns and a key",
                marker_text(marker)
            ));
        }
    }

    let hosts = if field.starts_with('|') {
        match parse_hashed(field) {
            Ok(h) => h,
            Err(reason) => return invalid(reason),
        }
    } else {
        HostField::Patterns(field.to_string())
    };

    let (key_type, rest) = next_field(rest);
    if key_type.is_empty() {
        return invalid(format!(
            "host field `{field}` is not followed by a key type and key; expected \
             `HOSTS KEYTYPE BASE64 [COMMENT]`"
        ));
    }
    if key_type.bytes().all(|b| b.is_ascii_digit()) {
        return invalid(format!(
            "SSH protocol 1 key for `{field}` (bits exponent modulus) is not supported; \
             delete this line"
        ));
    }
    let (key_b64, comment) = next_field(rest);
    if key_b64.is_empty() {
        return invalid(format!(
            "key type `{key_type}` for `{field}` has no base64 key data after it"
        ));
    }
    let key = match PublicKey::from_openssh(&format!("{key_type} {key_b64}")) {
        Ok(k) => k,
        Err(e) => {
            return invalid(format!(
                "cannot decode the `{key_type}` key for `{field}` ({e}); fix or delete this line"
            ))
        }
    };
    Line::Entry(Entry {
        line,
        marker,
        hosts,
        key,
        comment: comment.trim_end_matches(is_field_sep).to_string(),
        text: text.trim_end_matches(['\r', '\n']).to_string(),
    })
}

/// The marker as it is written in a file (empty for none).
pub fn marker_text(marker: Marker) -> &'static str {
    match marker {
        Marker::None => "",
        Marker::CertAuthority => "@cert-authority",
        Marker::Revoked => "@revoked",
    }
}

impl KnownHostsFile {
    /// Parses text that came from `path` (pure: does no I/O).
    pub fn parse(path: &Path, text: &str) -> Self {
        let lines = text
            .split_inclusive('\n')
            .enumerate()
            .map(|(i, raw)| parse_line(i + 1, raw.strip_suffix('\n').unwrap_or(raw)))
            .collect();
        KnownHostsFile {
            path: path.to_path_buf(),
            lines,
        }
    }

    /// Reads and parses `path`; a missing file is an empty database. Bytes that are not
    /// UTF-8 are replaced (such a line cannot match a host name anyway).
    pub fn load(path: &Path) -> Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(Self::parse(path, &String::from_utf8_lossy(&bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KnownHostsFile {
                path: path.to_path_buf(),
                lines: Vec::new(),
            }),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Usable entries.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.lines.iter().filter_map(|l| match l {
            Line::Entry(e) => Some(e),
            _ => None,
        })
    }

    /// One `path:line: reason` message per malformed line.
    pub fn warnings(&self) -> Vec<String> {
        self.lines
            .iter()
            .filter_map(|l| match l {
                Line::Invalid { line, reason } => {
                    Some(format!("{}:{line}: {reason}", self.path.display()))
                }
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::known_hosts::test_keys::ED1;

    fn parse(text: &str) -> KnownHostsFile {
        KnownHostsFile::parse(Path::new("/kh"), text)
    }

    fn entry(l: &Line) -> &Entry {
        match l {
            Line::Entry(e) => e,
            other => panic!("expected an entry, got {other:?}"),
        }
    }

    #[test]
    fn plain_entry_with_comment_and_odd_whitespace() {
        let f = parse(&format!(
            "# comment\n\n   \t\nhost1,host2 {ED1} ops@laptop  x\n \t host3\t\t{}  \n",
            ED1.replace(' ', "  \t ")
        ));
        assert_eq!(f.lines.len(), 5);
        assert!(matches!(f.lines[0], Line::Other));
        assert!(matches!(f.lines[1], Line::Other));
        assert!(matches!(f.lines[2], Line::Other));
        let e = entry(&f.lines[3]);
        assert_eq!(e.line, 4);
        assert_eq!(e.marker, Marker::None);
        assert_eq!(e.hosts, HostField::Patterns("host1,host2".into()));
        assert_eq!(e.comment, "ops@laptop  x");
        assert_eq!(e.key.algorithm(), russh::keys::Algorithm::Ed25519);
        let e = entry(&f.lines[4]);
        assert_eq!(e.line, 5);
        assert_eq!(e.hosts, HostField::Patterns("host3".into()));
        assert_eq!(e.comment, "");
        assert!(f.warnings().is_empty());
    }

    #[test]
    fn markers() {
        let f = parse(&format!(
            "@cert-authority *.example.com {ED1}\n@revoked\t* {ED1}\n@bogus h {ED1}\n@revoked\n"
        ));
        assert_eq!(entry(&f.lines[0]).marker, Marker::CertAuthority);
        assert_eq!(entry(&f.lines[1]).marker, Marker::Revoked);
        assert_eq!(
            entry(&f.lines[1]).hosts,
            HostField::Patterns("*".to_string())
        );
        let w = f.warnings();
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].starts_with("/kh:3: unknown marker `@bogus`"), "{w:?}");
        assert!(
            w[1].starts_with("/kh:4: `@revoked` is not followed"),
            "{w:?}"
        );
    }

    #[test]
    fn hashed_host_field() {
        let f = parse(&format!(
            "|1|qZaw0aoYr7jXH7lo4ydmJks89Lk=|cVKnaU44jy1CpcCQhg7jT8LORWQ= {ED1}\n\
             |1|abc=|def= {ED1}\n|2|x|y {ED1}\n|1|nobar {ED1}\n"
        ));
        match &entry(&f.lines[0]).hosts {
            HostField::Hashed { salt, hash } => {
                assert_eq!(salt.len(), 20);
                assert_eq!(hash.len(), 20);
            }
            other => panic!("not hashed: {other:?}"),
        }
        let w = f.warnings();
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].starts_with("/kh:2: hashed host name `|1|abc=|def=`"));
        assert!(w[1].contains(":3: ") && w[1].contains("unknown hash type"));
        assert!(w[2].contains(":4: ") && w[2].contains("no hash part"));
    }

    #[test]
    fn invalid_lines_keep_their_numbers_and_say_why() {
        let f = parse(&format!(
            "good {ED1}\njusthost\nh ssh-ed25519\nh ssh-ed25519 !!notbase64\nh 1024 35 12345\n\
             h ssh-rsa {}\nlast {ED1}",
            ED1.split(' ').nth(1).unwrap_or_default()
        ));
        assert_eq!(f.lines.len(), 7);
        let w = f.warnings();
        assert_eq!(w.len(), 5, "{w:?}");
        assert!(w[0].starts_with("/kh:2: host field `justhost` is not followed"));
        assert!(w[1].starts_with("/kh:3: key type `ssh-ed25519` for `h` has no base64"));
        assert!(w[2].starts_with("/kh:4: cannot decode the `ssh-ed25519` key for `h`"));
        assert!(w[3].starts_with("/kh:5: SSH protocol 1 key"));
        // Type text that disagrees with the encoded key is refused, as OpenSSH does.
        assert!(w[4].starts_with("/kh:6: cannot decode the `ssh-rsa` key"));
        assert_eq!(entry(&f.lines[6]).line, 7);
        assert_eq!(f.entries().count(), 2);
    }

    #[test]
    fn crlf_lines_parse() {
        let f = parse(&format!("h1 {ED1} c\r\nh2 {ED1}\r\n"));
        assert_eq!(f.entries().count(), 2);
        assert_eq!(entry(&f.lines[0]).comment, "c");
        assert_eq!(entry(&f.lines[1]).text, format!("h2 {ED1}"));
    }

    #[test]
    fn load_missing_is_empty_and_other_errors_name_the_path() {
        let dir = super::super::test_dir();
        let missing = dir.path().join("nope");
        assert!(KnownHostsFile::load(&missing).unwrap().lines.is_empty());
        // A directory cannot be read as a file.
        let err = KnownHostsFile::load(dir.path()).unwrap_err();
        assert!(err.to_string().contains(&dir.path().display().to_string()));
    }
}
