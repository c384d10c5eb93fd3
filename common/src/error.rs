//! The one error type of msh-common. Errors about files carry the path (and line where there
//! is one) so that binaries can print a message a user can act on.
//!
//! A variant with a `source` does not repeat it in its own message: print the whole chain
//! (anyhow's `{:#}` in the binaries, or [`Chain`] where there is no anyhow error, e.g. a log
//! line), which reads `PATH: cannot lock: Resource temporarily unavailable (os error 11)`.

use std::fmt;
use std::path::PathBuf;

/// Everything that can go wrong in msh-common.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading, writing or renaming a file failed.
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line of a text file could not be understood.
    #[error("{}:{line}: {reason}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    /// A key file could not be decoded.
    #[error("{}: {reason}", path.display())]
    Key { path: PathBuf, reason: String },
    /// The private key is encrypted and no passphrase was given: ask for one.
    #[error("{}: key is encrypted: a passphrase is needed", path.display())]
    PassphraseNeeded { path: PathBuf },
    /// The passphrase given does not decrypt the private key: ask again.
    #[error(
        "{}: incorrect passphrase supplied to decrypt private key",
        path.display()
    )]
    PassphraseWrong { path: PathBuf },
    /// A file or directory has permissions or ownership that make it unsafe to trust.
    #[error("{}: {reason}", path.display())]
    Permissions { path: PathBuf, reason: String },
    /// Taking the lock on a file failed.
    #[error("{}: cannot lock", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A value given by the user (flag, option, pattern) is invalid.
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Displays an error followed by its causes, separated by `": "`, as anyhow's `{:#}` does:
/// for messages built outside an anyhow chain (log lines, warnings, verdict reasons).
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn io_and_lock_name_their_cause_once_in_the_chain() {
        let e = Error::io("/x/y", std::io::Error::from_raw_os_error(2));
        assert_eq!(e.to_string(), "/x/y");
        assert_eq!(
            Chain(&e).to_string(),
            "/x/y: No such file or directory (os error 2)"
        );
        let e = Error::Lock {
            path: "/k".into(),
            source: std::io::Error::from_raw_os_error(11),
        };
        assert_eq!(
            Chain(&e).to_string(),
            "/k: cannot lock: Resource temporarily unavailable (os error 11)"
        );
        let e = Error::Invalid("bad".into());
        assert_eq!(Chain(&e).to_string(), "bad");
    }
}
