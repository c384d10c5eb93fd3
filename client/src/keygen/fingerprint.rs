//! `msh-keygen fingerprint PATH`: what `ssh-keygen -lf PATH` prints, for a private key (its
//! `.pub` beside it, else the public half stored in the key file), a public key, or a file of
//! many keys (authorized_keys with options, known_hosts with host names): one line per key.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context};
use msh_common::keys;

use super::Report;

pub(super) fn run(path: &Path) -> anyhow::Result<Report> {
    // `-` is standard input, as with ssh-keygen -lf - (public key lines only there).
    let stdin = path.as_os_str() == "-";
    let bytes = if stdin {
        let mut v = Vec::new();
        std::io::stdin()
            .read_to_end(&mut v)
            .context("cannot read standard input")?;
        v
    } else {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    let text = String::from_utf8_lossy(&bytes);
    let first_line = text
        .lines()
        .map(|l| l.trim_start_matches([' ', '\t']))
        .find(|l| !l.is_empty() && !l.starts_with('#'));
    if !stdin && first_line.is_some_and(|l| l.contains("PRIVATE KEY")) {
        return Ok(Report {
            stdout: format!("{}\n", private_key_line(path)?),
            ..Report::default()
        });
    }
    let mut out = String::new();
    let mut skipped = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim_start_matches([' ', '\t']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match key_line(line) {
            Some((key, comment)) => {
                out.push_str(&keys::fingerprint_line(&key, &comment));
                out.push('\n');
            }
            None => skipped.push(n + 1),
        }
    }
    if out.is_empty() {
        bail!(
            "{} is not a public key file (no line holds a key{})",
            if stdin {
                "(stdin)".to_string()
            } else {
                path.display().to_string()
            },
            if skipped.is_empty() {
                String::new()
            } else {
                format!("; unreadable lines: {}", join_numbers(&skipped))
            }
        );
    }
    Ok(Report {
        stdout: out,
        ..Report::default()
    })
}

fn join_numbers(n: &[usize]) -> String {
    n.iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The fingerprint line of a private key file, as ssh-keygen: `PATH.pub` when it holds a
/// key (an empty comment there prints as the .pub path), else the public half inside the
/// private key file with the key's own comment (`no comment` when the key is encrypted).
fn private_key_line(path: &Path) -> anyhow::Result<String> {
    let pub_path = keys::public_key_path(path);
    if let Ok(public) = keys::load_public_key(&pub_path) {
        let comment = public.comment().as_str_lossy().to_string();
        let comment = if comment.is_empty() {
            pub_path.display().to_string()
        } else {
            comment
        };
        return Ok(keys::fingerprint_line(&public, &comment));
    }
    let public = keys::private_key_public_part(path)?;
    if keys::is_encrypted(path)? {
        // The comment is inside the encrypted part.
        return Ok(keys::fingerprint_line(&public, ""));
    }
    // An unencrypted key's own comment, printed even when empty, as ssh-keygen does.
    Ok(format!(
        "{} {} {} ({})",
        keys::key_bits(&public),
        keys::fingerprint(&public),
        public.comment().as_str_lossy(),
        keys::key_type_label(&public)
    ))
}

/// A key from one line, with the comment ssh-keygen shows: a bare `keytype base64 [comment]`
/// line, or one prefixed by a host list or authorized_keys options (then, without a
/// trailing comment, the prefix is shown, as ssh-keygen does). Marker lines
/// (`@cert-authority`, `@revoked`) give nothing, as with ssh-keygen.
fn key_line(line: &str) -> Option<(russh::keys::PublicKey, String)> {
    if let Ok(key) = keys::parse_public_key_line(line) {
        let comment = key.comment().as_str_lossy().to_string();
        return Some((key, comment));
    }
    let (prefix, rest) = split_first_field(line)?;
    let key = keys::parse_public_key_line(rest).ok()?;
    let trailing = key.comment().as_str_lossy().to_string();
    let comment = if trailing.is_empty() || trailing.starts_with('#') {
        prefix.to_string()
    } else {
        trailing
    };
    Some((key, comment))
}

/// Splits the first field (options may hold quoted spaces, `\"` inside quotes) from the rest.
fn split_first_field(line: &str) -> Option<(&str, &str)> {
    let mut quoted = false;
    let mut chars = line.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if chars.peek().is_some_and(|(_, n)| *n == '"') => {
                chars.next();
            }
            '"' => quoted = !quoted,
            ' ' | '\t' if !quoted => {
                let (first, rest) = line.split_at(i);
                return Some((first, rest.trim_start_matches([' ', '\t'])));
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn first_field_respects_quotes() {
        assert_eq!(
            split_first_field(r#"command="echo a \"b\" c",no-pty ssh-ed25519 AAAA x"#),
            Some((r#"command="echo a \"b\" c",no-pty"#, "ssh-ed25519 AAAA x"))
        );
        assert_eq!(
            split_first_field("host\t\tssh-rsa"),
            Some(("host", "ssh-rsa"))
        );
        assert_eq!(split_first_field("lonely"), None);
    }
}
