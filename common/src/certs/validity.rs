//! Certificate validity windows: `ssh-keygen -V` interval syntax in, `(valid_after,
//! valid_before)` seconds out; and timestamps printed as `ssh-keygen -L` prints them.
//!
//! Accepted forms, as OpenSSH 9.2's ssh-keygen (`parse_cert_times`, `parse_absolute_time`,
//! `convtime`):
//! - `+TIME` alone: from one minute ago (rounded down to the minute, as ssh-keygen backdates
//!   for badly synchronised clocks) until now + TIME;
//! - `FROM:TO`, where FROM is `-TIME`/`+TIME` (relative to now), `always`, `0xHEX` (raw
//!   seconds), `YYYYMMDD`, `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS` in local time, or the same with
//!   a `Z` (or `UTC`) suffix in UTC; TO likewise, with `forever` instead of `always`.
//!
//! TIME is `convtime`'s syntax: numbers with optional units `s` `m` `h` `d` `w` (either case),
//! concatenated (`1h30m`); a bare number is seconds; the total must fit in a signed 32-bit int.
//!
//! One deliberate difference: ssh-keygen 9.2 converts local dates with `mktime` and
//! `tm_isdst = 0`, so a summer date in a zone with daylight saving time comes out one hour
//! late; msh uses the offset actually in force on that date (jiff's "compatible" rule for
//! times that fall in a gap or an overlap).

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::Timestamp;

use crate::{Error, Result};

/// `valid_before` of a certificate that never expires (`forever`).
pub const FOREVER: u64 = u64::MAX;

/// A validity window in seconds since the epoch: valid when `valid_after <= now <
/// valid_before`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub valid_after: u64,
    pub valid_before: u64,
}

/// Parses an `ssh-keygen -V` interval relative to `now` (seconds since the epoch), absolute
/// dates in the system's local time zone.
pub fn parse(spec: &str, now: u64) -> Result<Validity> {
    parse_in(spec, now, &TimeZone::system())
}

/// [`parse`] with absolute local dates read in `tz`.
pub fn parse_in(spec: &str, now: u64, tz: &TimeZone) -> Result<Validity> {
    let invalid = |why: &str| {
        Error::Invalid(format!(
            "invalid validity interval {spec:?}: {why} (examples: +52w, -1d:+1w, \
             20260101:20270101, 20260101123000Z:forever)"
        ))
    };
    if let Some(rel) = spec.strip_prefix('+').filter(|_| !spec.contains(':')) {
        let secs = parse_interval(rel).ok_or_else(|| invalid("bad relative time"))?;
        let valid_after = (now.saturating_sub(59) / 60) * 60;
        return Ok(Validity {
            valid_after,
            valid_before: now.saturating_add(secs),
        });
    }
    let (from, to) = spec
        .split_once(':')
        .filter(|(f, t)| !f.is_empty() && !t.is_empty())
        .ok_or_else(|| invalid("expected +TIME or FROM:TO"))?;
    let valid_after = if from == "always" {
        0
    } else {
        parse_point(from, now, tz).map_err(|why| invalid(&format!("start time {from:?}: {why}")))?
    };
    let valid_before = if to == "forever" {
        FOREVER
    } else {
        parse_point(to, now, tz).map_err(|why| invalid(&format!("end time {to:?}: {why}")))?
    };
    if valid_before <= valid_after {
        return Err(invalid("the interval is empty (end is not after start)"));
    }
    Ok(Validity {
        valid_after,
        valid_before,
    })
}

/// One end of a `FROM:TO` interval (not `always`/`forever`).
fn parse_point(s: &str, now: u64, tz: &TimeZone) -> std::result::Result<u64, String> {
    if let Some(rel) = s.strip_prefix('+') {
        let secs = parse_interval(rel).ok_or("bad relative time")?;
        return Ok(now.saturating_add(secs));
    }
    if let Some(rel) = s.strip_prefix('-') {
        let secs = parse_interval(rel).ok_or("bad relative time")?;
        return now
            .checked_sub(secs)
            .ok_or_else(|| "reaches before 1970".to_string());
    }
    if let Some(hex) = s.strip_prefix("0x") {
        return u64::from_str_radix(hex, 16).map_err(|_| "bad hexadecimal seconds".to_string());
    }
    parse_absolute(s, tz)
}

/// `YYYYMMDD`, `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS`, local (in `tz`) or UTC with a `Z`/`UTC`
/// suffix.
fn parse_absolute(s: &str, tz: &TimeZone) -> std::result::Result<u64, String> {
    let (digits, utc) = if let Some(d) = s.strip_suffix(['Z', 'z']) {
        (d, true)
    } else if s.len() > 3
        && s.get(s.len() - 3..)
            .is_some_and(|u| u.eq_ignore_ascii_case("UTC"))
    {
        (s.get(..s.len() - 3).unwrap_or(""), true)
    } else {
        (s, false)
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) || ![8, 12, 14].contains(&digits.len()) {
        return Err("expected YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS".into());
    }
    let num = |from: usize, to: usize| -> i64 {
        digits
            .get(from..to)
            .and_then(|d| d.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let small = |v: i64| i8::try_from(v).map_err(|_| "field out of range".to_string());
    let year = i16::try_from(num(0, 4)).map_err(|_| "bad year".to_string())?;
    let dt = DateTime::new(
        year,
        small(num(4, 6))?,
        small(num(6, 8))?,
        small(num(8, 10))?,
        small(num(10, 12))?,
        small(num(12, 14))?,
        0,
    )
    .map_err(|e| format!("not a valid date: {e}"))?;
    let zone = if utc { TimeZone::UTC } else { tz.clone() };
    let ts = zone
        .to_timestamp(dt)
        .map_err(|e| format!("not representable: {e}"))?;
    u64::try_from(ts.as_second()).map_err(|_| "before 1970".to_string())
}

/// `convtime`: `90`, `10m`, `1h30m`, `52w1d` to seconds; `None` when malformed or the total
/// exceeds `i32::MAX` (as OpenSSH).
pub fn parse_interval(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let limit = i32::MAX as u64;
    let mut total: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(end);
        let value: u64 = num.parse().ok()?;
        let mut chars = after.chars();
        let multiplier = match chars.next() {
            None => 1,
            Some('s' | 'S') => 1,
            Some('m' | 'M') => 60,
            Some('h' | 'H') => 3600,
            Some('d' | 'D') => 86_400,
            Some('w' | 'W') => 604_800,
            Some(_) => return None,
        };
        let secs = value.checked_mul(multiplier).filter(|v| *v <= limit)?;
        total = total.checked_add(secs).filter(|v| *v <= limit)?;
        rest = chars.as_str();
    }
    Some(total)
}

/// `t` as ssh-keygen -L prints it: local time `YYYY-MM-DDTHH:MM:SS`.
pub fn format_local(t: u64) -> String {
    format_in(t, &TimeZone::system())
}

/// `t` as `YYYY-MM-DDTHH:MM:SS` in `tz`.
pub fn format_in(t: u64, tz: &TimeZone) -> String {
    match to_timestamp(t) {
        Some(ts) => ts
            .to_zoned(tz.clone())
            .strftime("%Y-%m-%dT%H:%M:%S")
            .to_string(),
        None => format!("@{t}"),
    }
}

/// `t` in UTC as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_utc(t: u64) -> String {
    format!("{}Z", format_in(t, &TimeZone::UTC))
}

fn to_timestamp(t: u64) -> Option<Timestamp> {
    // Past jiff's range (year 9999) ssh-keygen's localtime fails too; clamp like its
    // SSH_TIME_T_MAX would rather than print garbage.
    let secs = i64::try_from(t).ok()?;
    Timestamp::from_second(secs)
        .ok()
        .or(Some(Timestamp::MAX).filter(|_| secs > 0))
}

/// The `Valid:` text of ssh-keygen -L: `forever`, `after X`, `before Y` or `from X to Y`,
/// times in `tz`.
pub fn describe_in(valid_after: u64, valid_before: u64, tz: &TimeZone) -> String {
    match (valid_after, valid_before) {
        (0, FOREVER) => "forever".to_string(),
        (0, to) => format!("before {}", format_in(to, tz)),
        (from, FOREVER) => format!("after {}", format_in(from, tz)),
        (from, to) => format!("from {} to {}", format_in(from, tz), format_in(to, tz)),
    }
}

/// [`describe_in`] with UTC times marked `Z`.
pub fn describe_utc(valid_after: u64, valid_before: u64) -> String {
    match (valid_after, valid_before) {
        (0, FOREVER) => "forever".to_string(),
        (0, to) => format!("before {}", format_utc(to)),
        (from, FOREVER) => format!("after {}", format_utc(from)),
        (from, to) => format!("from {} to {}", format_utc(from), format_utc(to)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("90"), Some(90));
        assert_eq!(parse_interval("1h30m"), Some(5400));
        assert_eq!(parse_interval("52w1d"), Some(52 * 604_800 + 86_400));
        assert_eq!(parse_interval("1x"), None);
        assert_eq!(parse_interval(""), None);
        assert_eq!(parse_interval("5000w"), None);
    }

    #[test]
    fn absolute_in_utc_and_zone() {
        let tz = TimeZone::get("Europe/Berlin")
            .unwrap_or(TimeZone::fixed(jiff::tz::Offset::constant(1)));
        let v = parse_in("20260101:20270101Z", 0, &tz).unwrap();
        assert_eq!(v.valid_after, 1_767_222_000); // 2025-12-31T23:00:00Z
        assert_eq!(v.valid_before, 1_798_761_600);
        assert_eq!(format_utc(v.valid_before), "2027-01-01T00:00:00Z");
        assert_eq!(format_in(v.valid_after, &tz), "2026-01-01T00:00:00");
    }
}
