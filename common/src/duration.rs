//! Time values in OpenSSH's format, for both msh's ssh_config options (`ConnectTimeout`,
//! `ServerAliveInterval`) and mshd.toml (`login_grace_time`, `shutdown_grace_time`).
//!
//! The grammar is sshd_config(5)'s TIME FORMATS (OpenSSH `convtime()`): a sequence of
//! `NUMBER[UNIT]` with no spaces in between, summed; a number without a unit is seconds.
//! Units, either case: `s` seconds, `m` minutes, `h` hours, `d` days, `w` weeks.
//!
//! ```text
//! 90        90 seconds
//! 1m30s     90 seconds
//! 1h        3600 seconds
//! 2w        1209600 seconds
//! ```
//!
//! Spaces around the value are ignored (a TOML string `" 2m "` is 2 minutes). Refused, as by
//! OpenSSH: an empty value, a unit without a number (`m`), a sign (`-5`, `+5`), an unknown
//! unit, a total that does not fit in 64-bit seconds.

use std::time::Duration;

use crate::{Error, Result};

/// Parses `text` as an OpenSSH time value (see the module comment): `90`, `1m30s`, `2w`.
pub fn parse_duration(text: &str) -> Result<Duration> {
    let s = text.trim();
    let bad = || {
        Error::Invalid(format!(
            "invalid duration {s:?}: expected e.g. \"120s\", \"2m\", \"1h30m\" (seconds, or \
             numbers with units s, m, h, d, w)"
        ))
    };
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let (num, after) = rest.split_at(digits);
        let n: u64 = num.parse().map_err(|_| bad())?;
        let mut chars = after.chars();
        let mult: u64 = match chars.next().map(|c| c.to_ascii_lowercase()) {
            None => 1,
            Some('s') => 1,
            Some('m') => 60,
            Some('h') => 60 * 60,
            Some('d') => 24 * 60 * 60,
            Some('w') => 7 * 24 * 60 * 60,
            Some(_) => return Err(bad()),
        };
        total = n
            .checked_mul(mult)
            .and_then(|x| total.checked_add(x))
            .ok_or_else(bad)?;
        rest = chars.as_str();
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> u64 {
        parse_duration(s)
            .unwrap_or_else(|e| panic!("{s:?}: {e}"))
            .as_secs()
    }

    #[test]
    fn openssh_examples_and_both_former_grammars() {
        // sshd_config(5)'s examples.
        assert_eq!(secs("600"), 600);
        assert_eq!(secs("600s"), 600);
        assert_eq!(secs("10m"), 600);
        assert_eq!(secs("1h30m"), 5400);
        // What mshd accepted before (one unit, lowercase s/m/h, spaces around).
        assert_eq!(secs("120"), 120);
        assert_eq!(secs("120s"), 120);
        assert_eq!(secs("2m"), 120);
        assert_eq!(secs("1h"), 3600);
        assert_eq!(secs(" 2m "), 120);
        assert_eq!(secs("0"), 0);
        // What msh accepted before (several units, either case, days and weeks).
        assert_eq!(secs("2M5s"), 125);
        assert_eq!(secs("1d"), 86400);
        assert_eq!(secs("2w"), 1_209_600);
        assert_eq!(secs("1w1d1h1m1s"), 694_861);
        // A trailing number is seconds, as convtime() reads it.
        assert_eq!(secs("1m30"), 90);
    }

    #[test]
    fn refused_with_the_value_named() {
        for bad in [
            "",
            " ",
            "m",
            "5x",
            "1 m",
            "1m 30s",
            "-5",
            "+5",
            "1.5m",
            "soon",
            "5mm",
            "99999999999999999999",
            "31000000000000w",
            "18446744073709551615s1s",
        ] {
            let e = parse_duration(bad).expect_err(bad).to_string();
            assert!(
                e.starts_with(&format!("invalid duration {:?}", bad.trim())),
                "{bad:?}: {e}"
            );
            assert!(e.contains("expected e.g. \"120s\""), "{bad:?}: {e}");
        }
    }
}
