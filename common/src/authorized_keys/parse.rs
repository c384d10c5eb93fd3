//! Pure parser for authorized_keys text.

use std::path::{Path, PathBuf};

use russh::keys::PublicKey;

use super::KeyOptions;
use crate::Result;

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
#[derive(Debug, Clone)]
pub enum ParsedLine {
    Key(AuthorizedKey),
    Other,
    Invalid { line: usize, reason: String },
}

/// Pure: parses the text of an authorized_keys file.
pub fn parse(text: &str) -> Vec<ParsedLine> {
    let _ = text;
    todo!("authorized_keys parser")
}

/// A parsed authorized_keys file.
#[derive(Debug, Clone)]
pub struct AuthorizedKeys {
    pub path: PathBuf,
    pub lines: Vec<ParsedLine>,
}

impl AuthorizedKeys {
    pub fn load(path: &Path) -> Result<Self> {
        let _ = path;
        todo!("authorized_keys load")
    }
}
