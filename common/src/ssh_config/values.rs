//! ssh_config value types shared by several keywords: yes/no flags, ports, log levels.

use crate::{Error, Result};

/// `yes`/`true` or `no`/`false`, any case.
pub fn parse_yes_no(v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err(Error::Invalid("expected yes or no".to_string())),
    }
}

/// A TCP port, 1 to 65535.
pub fn parse_port(v: &str) -> Result<u16> {
    match v.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(Error::Invalid("expected a port number 1-65535".to_string())),
    }
}

/// ssh_config's `LogLevel` values (ssh_config(5)), least to most verbose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// `QUIET`: nothing but fatal errors, and no warnings or notices.
    Quiet,
    /// `FATAL`.
    Fatal,
    /// `ERROR`.
    Error,
    /// `INFO` (ssh's default).
    Info,
    /// `VERBOSE`.
    Verbose,
    /// `DEBUG` or `DEBUG1`.
    Debug1,
    /// `DEBUG2`.
    Debug2,
    /// `DEBUG3`.
    Debug3,
}

/// `LogLevel`'s value, any case.
pub fn parse_log_level(v: &str) -> Result<LogLevel> {
    Ok(match v.to_ascii_uppercase().as_str() {
        "QUIET" => LogLevel::Quiet,
        "FATAL" => LogLevel::Fatal,
        "ERROR" => LogLevel::Error,
        "INFO" => LogLevel::Info,
        "VERBOSE" => LogLevel::Verbose,
        "DEBUG" | "DEBUG1" => LogLevel::Debug1,
        "DEBUG2" => LogLevel::Debug2,
        "DEBUG3" => LogLevel::Debug3,
        _ => {
            return Err(Error::Invalid(
                "expected QUIET, FATAL, ERROR, INFO, VERBOSE, DEBUG, DEBUG1, DEBUG2 or DEBUG3"
                    .to_string(),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert!(parse_yes_no("Yes").unwrap() && !parse_yes_no("FALSE").unwrap());
        assert!(parse_yes_no("on").is_err());
        assert_eq!(parse_port("2222").unwrap(), 2222);
        for bad in ["0", "65536", "-1", "x", ""] {
            assert!(parse_port(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_log_level("debug").unwrap(), LogLevel::Debug1);
        assert_eq!(parse_log_level("QUIET").unwrap(), LogLevel::Quiet);
        assert!(parse_log_level("loud").is_err());
    }
}
