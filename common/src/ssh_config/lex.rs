//! The line syntax of ssh_config: `Key Value` or `Key=Value`, trailing `#` comments,
//! quoted values, `Host` pattern lists.

use crate::pattern::{match_list, ListMatch};

/// Splits `Key=Value` or `Key Value` (ssh_config accepts both, with optional spaces
/// around `=`).
pub fn split_key_value(s: &str) -> Option<(String, String)> {
    let s = s.trim();
    let idx = s.find(|c: char| c == '=' || c.is_whitespace())?;
    let (key, rest) = s.split_at(idx);
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim();
    if key.is_empty() {
        return None;
    }
    Some((key.to_string(), unquote(rest)))
}

/// The value without one pair of surrounding double quotes.
fn unquote(s: &str) -> String {
    s.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(s)
        .to_string()
}

/// The line without a trailing comment: `#` starting a word outside quotes begins one, as
/// in OpenSSH 9 (`Port 2222 # test box`).
pub(crate) fn strip_comment(line: &str) -> &str {
    let mut in_quotes = false;
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            '#' if !in_quotes && prev_space => return line.get(..i).unwrap_or(line).trim_end(),
            _ => {}
        }
        prev_space = c.is_whitespace();
    }
    line
}

/// True when the `Host` line's patterns select `host`: one matches and none negated does.
pub(crate) fn host_block_matches(host: &str, patterns: &[&str]) -> bool {
    let mut matched = false;
    for p in patterns {
        match match_list(host, p, true) {
            ListMatch::Negated => return false,
            ListMatch::Matched => matched = true,
            ListMatch::NoMatch => {}
        }
    }
    matched
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments() {
        assert_eq!(strip_comment("Port 22 # x"), "Port 22");
        assert_eq!(strip_comment("SetEnv A=\"b #c\""), "SetEnv A=\"b #c\"");
        assert_eq!(strip_comment("User a#b"), "User a#b");
    }

    #[test]
    fn key_value_forms() {
        let kv = |k: &str, v: &str| Some((k.to_string(), v.to_string()));
        assert_eq!(split_key_value("Port 22"), kv("Port", "22"));
        assert_eq!(split_key_value("Port=22"), kv("Port", "22"));
        assert_eq!(split_key_value("  Port = 22 "), kv("Port", "22"));
        assert_eq!(split_key_value("User \"a b\""), kv("User", "a b"));
        assert_eq!(split_key_value("=22"), None);
        assert_eq!(split_key_value("Port"), None);
    }
}
