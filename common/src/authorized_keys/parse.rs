//! Pure parser for authorized_keys text (OpenSSH `auth2-pubkeyfile.c` / `auth-options.c`).
//!
//! A line is `[options] keytype base64 [comment]`, e.g.
//! `restrict,pty,command="echo #x, y" ssh-ed25519 AAAAC3Nza... ci@build`.
//! Options are comma-separated and end at the first unquoted blank; values are double-quoted
//! with `\"` standing for a quote (every other backslash is literal) and may hold blanks,
//! commas and `#`. Option names are case-insensitive. Blank lines and `#` comments are
//! `Other`; anything that cannot be used is `Invalid` with its line number and what is wrong,
//! and never stops the lines after it from working.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use russh::keys::PublicKey;

use super::options::FlagOption;
use super::KeyOptions;
use crate::{Error, Result};

/// One usable line.
#[derive(Debug, Clone)]
pub struct AuthorizedKey {
    /// 1-based line number.
    pub line: usize,
    pub options: KeyOptions,
    pub key: PublicKey,
    pub comment: String,
}

/// One line as read.
// Unboxed on purpose: callers match on `ParsedLine::Key(k)`, and a file holds few lines.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum ParsedLine {
    Key(AuthorizedKey),
    /// Blank or comment line.
    Other,
    /// A line that cannot be used, with its 1-based number and what is wrong with it.
    Invalid {
        line: usize,
        reason: String,
    },
}

/// Pure: parses the text of an authorized_keys file, one `ParsedLine` per line.
pub fn parse(text: &str) -> Vec<ParsedLine> {
    text.lines()
        .enumerate()
        .map(|(i, l)| parse_line(i.saturating_add(1), l))
        .collect()
}

/// Pure: parses one line; `line` is its 1-based number.
pub fn parse_line(line: usize, text: &str) -> ParsedLine {
    let s = text.trim_matches(|c| c == ' ' || c == '\t' || c == '\r' || c == '\n');
    if s.is_empty() || s.starts_with('#') {
        return ParsedLine::Other;
    }
    match parse_entry(s) {
        Ok((options, key, comment)) => ParsedLine::Key(AuthorizedKey {
            line,
            options,
            key,
            comment,
        }),
        Err(reason) => ParsedLine::Invalid { line, reason },
    }
}

fn parse_entry(s: &str) -> Result<(KeyOptions, PublicKey, String), String> {
    let (first, _) = split_token(s);
    // As OpenSSH: a line that starts with a key is a key without options; anything else
    // starts with options.
    let (options, rest) = if is_key_type(first) {
        (KeyOptions::default(), s)
    } else {
        let (options, rest) = parse_options(s)?;
        let rest = rest.trim_start_matches([' ', '\t']);
        if rest.is_empty() {
            return Err("options but no key after them".to_string());
        }
        (options, rest)
    };
    let (key, comment) = parse_key(rest)?;
    Ok((options, key, comment))
}

/// Splits at the first blank: (token, rest starting at the blank or empty).
fn split_token(s: &str) -> (&str, &str) {
    let end = s.find([' ', '\t']).unwrap_or(s.len());
    s.split_at(end)
}

/// Key algorithm names OpenSSH writes in authorized_keys.
const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ssh-dss",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

const CERT_SUFFIX: &str = "-cert-v01@openssh.com";

fn is_key_type(token: &str) -> bool {
    KEY_TYPES.contains(&token) || token.ends_with(CERT_SUFFIX)
}

/// `keytype base64 [comment]` → key and comment.
fn parse_key(s: &str) -> Result<(PublicKey, String), String> {
    let (key_type, rest) = split_token(s);
    if !is_key_type(key_type) {
        return Err(format!("unknown key type \"{key_type}\""));
    }
    if key_type.ends_with(CERT_SUFFIX) {
        // OpenSSH reads such a line but it can never match a login: a certificate is trusted
        // through its CA, listed with `cert-authority`.
        return Err(format!(
            "{key_type} is a certificate, not a key; list the CA key with cert-authority instead"
        ));
    }
    let (data, rest) = split_token(rest.trim_start_matches([' ', '\t']));
    if data.is_empty() {
        return Err(format!("missing key data after {key_type}"));
    }
    let key = PublicKey::from_openssh(&format!("{key_type} {data}"))
        .map_err(|e| format!("invalid {key_type} key: {e}"))?;
    let comment = rest.trim_matches([' ', '\t']).to_string();
    Ok((key, comment))
}

/// Flag options: (name, takes the `no-` form, flag it sets).
fn flag_option(name: &str) -> Option<FlagOption> {
    let (negated, base) = match name.strip_prefix("no-") {
        Some(b) => (true, b),
        None => (false, name),
    };
    let make: fn(bool) -> FlagOption = match base {
        "pty" => FlagOption::Pty,
        "port-forwarding" => FlagOption::PortForwarding,
        "agent-forwarding" => FlagOption::AgentForwarding,
        "x11-forwarding" => FlagOption::X11Forwarding,
        "user-rc" => FlagOption::UserRc,
        _ => return None,
    };
    Some(make(!negated))
}

const VALUE_OPTIONS: &[&str] = &[
    "command",
    "from",
    "environment",
    "expiry-time",
    "principals",
    "permitopen",
    "permitlisten",
    "tunnel",
];

const BARE_OPTIONS: &[&str] = &[
    "restrict",
    "cert-authority",
    "touch-required",
    "no-touch-required",
    "verify-required",
    "no-verify-required",
];

/// Pure: parses an options field. Returns the options and the rest of the line, which starts
/// at the blank that ended the options (or is empty).
pub fn parse_options(s: &str) -> Result<(KeyOptions, &str), String> {
    let mut opts = KeyOptions::default();
    let mut rest = s;
    let mut first = true;
    loop {
        let end = rest.find(['=', ',', ' ', '\t']).unwrap_or(rest.len());
        let (name, after) = rest.split_at(end);
        if name.is_empty() {
            return Err(if first {
                "empty option".to_string()
            } else {
                "empty option after ','".to_string()
            });
        }
        first = false;
        let (value, after) = match after.strip_prefix('=') {
            Some(v) => {
                let (value, after) = dequote(name, v)?;
                (Some(value), after)
            }
            None => (None, after),
        };
        apply_option(&mut opts, name, value)?;
        let mut chars = after.chars();
        match chars.next() {
            None => return Ok((opts, after)),
            Some(' ' | '\t') => return Ok((opts, after)),
            Some(',') => rest = chars.as_str(),
            Some(c) => {
                return Err(format!(
                    "unexpected {c:?} after the value of {name}= (options are separated by ',')"
                ))
            }
        }
    }
}

/// Reads a `"..."` value at the start of `s` (right after `name=`): returns the value and
/// what follows the closing quote.
fn dequote<'a>(name: &str, s: &'a str) -> Result<(String, &'a str), String> {
    let Some(body) = s.strip_prefix('"') else {
        return Err(format!(
            "value of {name}= must be in double quotes: {name}=\"...\""
        ));
    };
    let mut value = String::new();
    let mut chars = body.chars();
    loop {
        match chars.next() {
            None => return Err(format!("unterminated quote in {name}=")),
            Some('"') => return Ok((value, chars.as_str())),
            Some('\\') if chars.as_str().starts_with('"') => {
                chars.next();
                value.push('"');
            }
            Some(c) => value.push(c),
        }
    }
}

/// Pure: quotes `value` so that `dequote` gives it back. `None` when it cannot be written in
/// an authorized_keys option: a trailing backslash would escape the closing quote, and a
/// line break would end the line.
pub fn quote_option_value(value: &str) -> Option<String> {
    if value.ends_with('\\') || value.contains(['\n', '\r']) {
        return None;
    }
    let mut out = String::with_capacity(value.len().saturating_add(2));
    out.push('"');
    for c in value.chars() {
        if c == '"' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Some(out)
}

fn apply_option(opts: &mut KeyOptions, name: &str, value: Option<String>) -> Result<(), String> {
    let lower = name.to_ascii_lowercase();
    let Some(value) = value else {
        return apply_bare(opts, name, &lower);
    };
    if !VALUE_OPTIONS.contains(&lower.as_str()) {
        if flag_option(&lower).is_some() || BARE_OPTIONS.contains(&lower.as_str()) {
            return Err(format!("option {name} takes no value"));
        }
        return Err(format!("unknown option \"{name}\""));
    }
    match lower.as_str() {
        "command" => set_once(&mut opts.command, name, value)?,
        "from" => set_once(&mut opts.from, name, value)?,
        "principals" => set_once(&mut opts.principals, name, value)?,
        "environment" => {
            let Some((var, val)) = value.split_once('=') else {
                return Err(format!("environment=\"{value}\" is not NAME=value"));
            };
            if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "invalid variable name \"{var}\" in environment= (letters, digits and _ only)"
                ));
            }
            // First of a name wins, as in OpenSSH.
            if !opts.environment.iter().any(|(n, _)| n == var) {
                opts.environment.push((var.to_string(), val.to_string()));
            }
        }
        "expiry-time" => {
            let t = parse_expiry_time(&value)?;
            // The earliest expiry wins, as in OpenSSH.
            if opts.expiry_time.is_none_or(|old| t < old) {
                opts.expiry_time = Some(t);
            }
        }
        "permitopen" => {
            check_permit(&value, false).map_err(|e| format!("permitopen=\"{value}\": {e}"))?;
            opts.permitopen.push(value);
        }
        "permitlisten" => {
            check_permit(&value, true).map_err(|e| format!("permitlisten=\"{value}\": {e}"))?;
            opts.permitlisten.push(value);
        }
        "tunnel" => {
            let ok = value.eq_ignore_ascii_case("any")
                || value.parse::<u32>().is_ok_and(|n| n <= 0x7fff_fffd);
            if !ok {
                return Err(format!(
                    "tunnel=\"{value}\": not a tunnel device number or \"any\""
                ));
            }
            opts.tunnel = Some(value);
        }
        _ => return Err(format!("unknown option \"{name}\"")),
    }
    Ok(())
}

fn set_once(slot: &mut Option<String>, name: &str, value: String) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("{name}= given more than once"));
    }
    *slot = Some(value);
    Ok(())
}

fn apply_bare(opts: &mut KeyOptions, name: &str, lower: &str) -> Result<(), String> {
    if let Some(flag) = flag_option(lower) {
        match flag {
            FlagOption::Pty(true) => opts.pty = true,
            FlagOption::Pty(false) => opts.no_pty = true,
            FlagOption::PortForwarding(true) => opts.port_forwarding = true,
            FlagOption::PortForwarding(false) => opts.no_port_forwarding = true,
            FlagOption::AgentForwarding(true) => opts.agent_forwarding = true,
            FlagOption::AgentForwarding(false) => opts.no_agent_forwarding = true,
            FlagOption::X11Forwarding(true) => opts.x11_forwarding = true,
            FlagOption::X11Forwarding(false) => opts.no_x11_forwarding = true,
            FlagOption::UserRc(true) => opts.user_rc = true,
            FlagOption::UserRc(false) => opts.no_user_rc = true,
            FlagOption::Restrict => {}
        }
        opts.flags.push(flag);
        return Ok(());
    }
    match lower {
        "restrict" => {
            opts.restrict = true;
            opts.flags.push(FlagOption::Restrict);
        }
        "cert-authority" => opts.cert_authority = true,
        "no-touch-required" => opts.no_touch_required = true,
        "touch-required" => opts.no_touch_required = false,
        "verify-required" => opts.verify_required = true,
        "no-verify-required" => opts.verify_required = false,
        _ if VALUE_OPTIONS.contains(&lower) => {
            return Err(format!("option {name} needs a value: {name}=\"...\""))
        }
        _ => return Err(format!("unknown option \"{name}\"")),
    }
    Ok(())
}

/// `host:port` (`[v6]:port`), port a number or `*`; with `bare_port_ok`, a lone port too.
fn check_permit(value: &str, bare_port_ok: bool) -> Result<(), String> {
    let (host, port) = if let Some(v6) = value.strip_prefix('[') {
        let Some((host, after)) = v6.split_once(']') else {
            return Err("missing ']'".to_string());
        };
        let Some(port) = after.strip_prefix(':') else {
            return Err("missing :port".to_string());
        };
        (host, port)
    } else {
        match value.split_once(':') {
            Some(hp) => hp,
            None if bare_port_ok => ("*", value),
            None => return Err("missing :port".to_string()),
        }
    };
    if host.is_empty() {
        return Err("missing host".to_string());
    }
    if port != "*" && !port.parse::<u16>().is_ok_and(|p| p > 0) {
        return Err(format!("bad port \"{port}\""));
    }
    Ok(())
}

/// Pure: OpenSSH's `parse_absolute_time`: `YYYYMMDD`, `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS`,
/// in local time, or in UTC with a trailing `Z` (or `UTC`).
pub fn parse_expiry_time(value: &str) -> Result<SystemTime, String> {
    let bad = |why: &str| format!("invalid expiry-time=\"{value}\": {why}");
    let upper = value.to_ascii_uppercase();
    let (digits, utc) = if let Some(d) = upper.strip_suffix('Z') {
        (d, true)
    } else if let Some(d) = upper.strip_suffix("UTC") {
        (d, true)
    } else {
        (upper.as_str(), false)
    };
    if !digits.chars().all(|c| c.is_ascii_digit()) || ![8, 12, 14].contains(&digits.len()) {
        return Err(bad(
            "expected YYYYMMDD[HHMM[SS]], optionally followed by Z for UTC",
        ));
    }
    let num = |from: usize, to: usize| -> i32 {
        digits
            .get(from..to)
            .and_then(|s| s.parse::<i32>().ok())
            .unwrap_or(0)
    };
    let year = i16::try_from(num(0, 4)).map_err(|_| bad("year out of range"))?;
    let small = |v: i32| i8::try_from(v).unwrap_or(i8::MAX);
    let dt = jiff::civil::DateTime::new(
        year,
        small(num(4, 6)),
        small(num(6, 8)),
        small(num(8, 10)),
        small(num(10, 12)),
        small(num(12, 14)),
        0,
    )
    .map_err(|e| bad(&e.to_string()))?;
    let tz = if utc {
        jiff::tz::TimeZone::UTC
    } else {
        jiff::tz::TimeZone::system()
    };
    let ts = dt
        .to_zoned(tz)
        .map_err(|e| bad(&e.to_string()))?
        .timestamp();
    if ts.as_second() <= 0 {
        return Err(bad("before 1970"));
    }
    Ok(SystemTime::from(ts))
}

/// A parsed authorized_keys file.
#[derive(Debug, Clone)]
pub struct AuthorizedKeys {
    pub path: PathBuf,
    pub lines: Vec<ParsedLine>,
}

impl AuthorizedKeys {
    /// Parses text that came from `path` (pure: does no I/O).
    pub fn parse(path: &Path, text: &str) -> Self {
        AuthorizedKeys {
            path: path.to_path_buf(),
            lines: parse(text),
        }
    }

    /// Reads and parses `path`. A file that cannot be read, a missing one included, is an
    /// `Error::Io` naming it: the caller decides whether "missing" means "no keys".
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        // Invalid UTF-8 spoils only the lines it is on, not the file.
        let text = String::from_utf8_lossy(&bytes);
        Ok(Self::parse(path, &text))
    }

    /// Usable entries.
    pub fn entries(&self) -> impl Iterator<Item = &AuthorizedKey> {
        self.lines.iter().filter_map(|l| match l {
            ParsedLine::Key(k) => Some(k),
            _ => None,
        })
    }

    /// One `path:line: reason` message per line that cannot be used.
    pub fn warnings(&self) -> Vec<String> {
        self.lines
            .iter()
            .filter_map(|l| match l {
                ParsedLine::Invalid { line, reason } => {
                    Some(format!("{}:{line}: {reason}", self.path.display()))
                }
                _ => None,
            })
            .collect()
    }
}
