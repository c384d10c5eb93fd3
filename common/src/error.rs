//! The one error type of msh-common. Errors about files carry the path (and line where there
//! is one) so that binaries can print a message a user can act on.

use std::path::PathBuf;

/// Everything that can go wrong in msh-common.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading, writing or renaming a file failed.
    #[error("{}: {source}", path.display())]
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
    /// A key file could not be decoded (or a passphrase was wrong).
    #[error("{}: {reason}", path.display())]
    Key { path: PathBuf, reason: String },
    /// A file or directory has permissions or ownership that make it unsafe to trust.
    #[error("{}: {reason}", path.display())]
    Permissions { path: PathBuf, reason: String },
    /// Taking the lock on a file failed.
    #[error("{}: cannot lock: {source}", path.display())]
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
