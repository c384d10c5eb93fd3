//! The host list of `msh --hosts LIST`: comma-separated entries, or `@FILE` with one entry a
//! line. An entry is `[user@]host[:port]`, with an IPv6 address in brackets when a port
//! follows (a bare IPv6 address is taken whole):
//!
//! ```text
//! # fleet.txt
//! web1
//! ops@db.internal:2222
//! [fd00::7]:22          # comments run to the end of the line
//! ```
//!
//! Parsing only: what a host entry means (ssh_config `Host` blocks, HostName...) is decided
//! by `settings::resolve`, as for `msh HOST`.

use std::net::Ipv6Addr;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

/// One host of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HostEntry {
    /// The entry as written (trimmed): the label of its output lines and JSON object.
    pub label: String,
    /// `[user@]host` as `msh [user@]host` takes it (IPv6 without brackets).
    pub destination: String,
    /// The port written in the entry, which beats `-p` and `Port` as `user@` beats `-l`.
    pub port: Option<u16>,
}

/// Parses `--hosts`' value: `@FILE` (read here) or a comma-separated list.
pub(super) fn parse_list(value: &str, home: Option<&Path>) -> Result<Vec<HostEntry>> {
    let entries = match value.strip_prefix('@') {
        Some(file) => {
            let path = match (file.strip_prefix("~/"), home) {
                (Some(rest), Some(h)) => h.join(rest),
                _ => Path::new(file).to_path_buf(),
            };
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("--hosts @{file}: cannot read {}", path.display()))?;
            parse_file(&text, &path.display().to_string())?
        }
        None => parse_comma_list(value)?,
    };
    if entries.is_empty() {
        bail!("--hosts {value:?}: no hosts in the list");
    }
    Ok(entries)
}

/// `a,b,c`: every entry must be non-empty.
fn parse_comma_list(value: &str) -> Result<Vec<HostEntry>> {
    let mut out: Vec<HostEntry> = Vec::new();
    for (i, raw) in value.split(',').enumerate() {
        let where_ = format!("--hosts entry {}", i + 1);
        let raw = raw.trim();
        if raw.is_empty() {
            bail!("{where_}: empty (remove the extra comma in {value:?})");
        }
        push_unique(
            &mut out,
            parse_entry(raw).with_context(|| where_.clone())?,
            &where_,
        )?;
    }
    Ok(out)
}

/// One entry a line; blank lines and `#` comments ignored. Errors name `path:line`.
fn parse_file(text: &str, path: &str) -> Result<Vec<HostEntry>> {
    let mut out: Vec<HostEntry> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let where_ = format!("{path}:{}", i + 1);
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        if line.contains(',') || line.split_whitespace().nth(1).is_some() {
            bail!("{where_}: {line:?}: one host per line");
        }
        push_unique(
            &mut out,
            parse_entry(line).with_context(|| where_.clone())?,
            &where_,
        )?;
    }
    Ok(out)
}

/// A host listed twice would run twice, with output no one could tell apart.
fn push_unique(out: &mut Vec<HostEntry>, entry: HostEntry, where_: &str) -> Result<()> {
    if out.iter().any(|e| e.label == entry.label) {
        bail!("{where_}: {:?} is listed twice", entry.label);
    }
    out.push(entry);
    Ok(())
}

/// `[user@]host[:port]`, `[user@][v6addr][:port]` or `[user@]v6addr`.
pub(super) fn parse_entry(raw: &str) -> Result<HostEntry> {
    if let Some(c) = raw.chars().find(|c| c.is_control() || c.is_whitespace()) {
        bail!("{raw:?}: unexpected character {c:?}");
    }
    let (user, rest) = match raw.rsplit_once('@') {
        Some((u, r)) => (Some(u), r),
        None => (None, raw),
    };
    if user == Some("") {
        bail!("{raw:?}: empty user name before @");
    }
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        let (addr, after) = inner
            .split_once(']')
            .ok_or_else(|| anyhow!("{raw:?}: missing ] after the IPv6 address"))?;
        addr.parse::<Ipv6Addr>()
            .map_err(|_| anyhow!("{raw:?}: {addr:?} in brackets is not an IPv6 address"))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| anyhow!("{raw:?}: expected :PORT after ], found {p:?}"))?,
            ),
        };
        (addr, port)
    } else if rest.parse::<Ipv6Addr>().is_ok() {
        (rest, None)
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if host.is_empty() {
        bail!("{raw:?}: no host name");
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n != 0 => Some(n),
            _ => bail!(
                "{raw:?}: bad port {p:?} (1-65535; write an IPv6 address with a port as \
                 [addr]:port)"
            ),
        },
    };
    let destination = match user {
        Some(u) => format!("{u}@{host}"),
        None => host.to_string(),
    };
    Ok(HostEntry {
        label: raw.to_string(),
        destination,
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(raw: &str) -> (String, Option<u16>) {
        let e = parse_entry(raw).unwrap();
        assert_eq!(e.label, raw);
        (e.destination, e.port)
    }

    #[test]
    fn entries_in_every_form() {
        assert_eq!(entry("web1"), ("web1".into(), None));
        assert_eq!(entry("ops@web1:2222"), ("ops@web1".into(), Some(2222)));
        assert_eq!(entry("[::1]:2200"), ("::1".into(), Some(2200)));
        assert_eq!(entry("root@[fd00::7]"), ("root@fd00::7".into(), None));
        assert_eq!(entry("fd00::7"), ("fd00::7".into(), None));
        assert_eq!(entry("a@b@host:22"), ("a@b@host".into(), Some(22)));
    }

    #[test]
    fn bad_entries_say_what_is_wrong() {
        for (raw, needle) in [
            ("web1:0", "bad port"),
            ("web1:ssh", "bad port"),
            ("[::1", "missing ]"),
            ("[web1]:22", "not an IPv6 address"),
            ("[::1]22", "expected :PORT"),
            ("@web1", "empty user"),
            ("ops@:22", "no host"),
            ("we\x1bb", "unexpected character"),
        ] {
            let e = parse_entry(raw).unwrap_err().to_string();
            assert!(e.contains(needle), "{raw}: {e}");
        }
    }

    #[test]
    fn comma_list_refuses_empty_and_duplicate_entries() {
        let l = parse_comma_list(" a, b:2 ,c ").unwrap();
        let labels: Vec<&str> = l.iter().map(|e| e.label.as_str()).collect();
        assert_eq!(labels, ["a", "b:2", "c"]);
        assert!(format!("{:#}", parse_comma_list("a,,b").unwrap_err()).contains("entry 2"));
        assert!(format!("{:#}", parse_comma_list("a,b,a").unwrap_err()).contains("twice"));
    }

    #[test]
    fn file_skips_blank_lines_and_comments_and_names_bad_lines() {
        let l = parse_file("# fleet\n\nweb1\n  ops@db:2222  # primary\n", "f").unwrap();
        let labels: Vec<&str> = l.iter().map(|e| e.label.as_str()).collect();
        assert_eq!(labels, ["web1", "ops@db:2222"]);
        let e = format!("{:#}", parse_file("web1\nweb2 web3\n", "f").unwrap_err());
        assert!(e.starts_with("f:2:"), "{e}");
        let e = format!("{:#}", parse_file("web1\n\nweb1:x\n", "f").unwrap_err());
        assert!(e.starts_with("f:3:") && e.contains("bad port"), "{e}");
    }
}
