//! `authorized_principals_file` (sshd's AuthorizedPrincipalsFile): one principal name a line;
//! blank lines and `#` comments are skipped. As in sshd (`auth_check_principals_line`), when
//! a line has inner whitespace its last word is the principal and everything before is an
//! authorized_keys-style options field that applies when that principal grants access:
//!
//! ```text
//! # principals allowed to log in as this user
//! alice
//! command="/usr/bin/backup",no-pty backup-operators
//! ```
//!
//! A line whose options do not parse is skipped with a warning naming file:line (sshd skips
//! it too); the other lines still count.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::authorized_keys::parse::parse_options;
use crate::authorized_keys::KeyOptions;
use crate::{Error, Result};

/// One principal line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalEntry {
    /// 1-based line number.
    pub line: usize,
    pub principal: String,
    /// Options written before the principal (empty when none).
    pub options: KeyOptions,
}

impl PrincipalEntry {
    /// OpenSSH's `auth_authorise_keyopts` for a principals-file line (`loc` "principals"):
    /// no `principals=` or `cert-authority` (both invalid here: sshd denies the line),
    /// `expiry-time=` not passed, `from=` admitting `peer`. `Err` says why, for the log.
    pub fn authorise(&self, peer: IpAddr, now: SystemTime) -> std::result::Result<(), String> {
        if self.options.principals.is_some() && !self.options.cert_authority {
            return Err("principals= without cert-authority: line refused".to_string());
        }
        if self.options.cert_authority {
            return Err(
                "cert-authority is not valid in a principals file: line refused".to_string(),
            );
        }
        crate::authorized_keys::policy::check_entry(&self.options, peer, now)
    }
}

/// A parsed principals file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalsFile {
    pub path: PathBuf,
    pub entries: Vec<PrincipalEntry>,
    /// `path:line: reason` for every skipped line.
    pub warnings: Vec<String>,
}

impl PrincipalsFile {
    /// Pure: parses `text` read from `path`.
    pub fn parse(path: &Path, text: &str) -> Self {
        let mut entries = Vec::new();
        let mut warnings = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            match parse_line(raw) {
                Ok(Some((principal, options))) => entries.push(PrincipalEntry {
                    line,
                    principal,
                    options,
                }),
                Ok(None) => {}
                Err(why) => warnings.push(format!("{}:{line}: {why}", path.display())),
            }
        }
        PrincipalsFile {
            path: path.to_path_buf(),
            entries,
            warnings,
        }
    }

    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Ok(Self::parse(path, &text))
    }

    /// The principal names, in file order.
    pub fn names(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.principal.clone()).collect()
    }

    /// The first entry naming one of `cert_principals` (whose options apply), if any.
    pub fn find(&self, cert_principals: &[String]) -> Option<&PrincipalEntry> {
        self.entries
            .iter()
            .find(|e| cert_principals.contains(&e.principal))
    }
}

/// `Ok(None)` for blank and comment lines.
pub fn parse_line(raw: &str) -> std::result::Result<Option<(String, KeyOptions)>, String> {
    let is_blank = |c: char| c == ' ' || c == '\t';
    let text = raw.trim_matches(|c: char| is_blank(c) || c == '\r');
    if text.is_empty() || text.starts_with('#') {
        return Ok(None);
    }
    match text.rfind(is_blank) {
        None => Ok(Some((text.to_string(), KeyOptions::default()))),
        Some(at) => {
            let (opts_text, principal) = text.split_at(at);
            let principal = principal.trim_start_matches(is_blank);
            let (options, rest) = parse_options(opts_text.trim_end_matches(is_blank))
                .map_err(|why| format!("bad options before principal {principal:?}: {why}"))?;
            if !rest.trim_matches(is_blank).is_empty() {
                return Err(format!(
                    "unexpected text {:?} before principal {principal:?}",
                    rest.trim_matches(is_blank)
                ));
            }
            Ok(Some((principal.to_string(), options)))
        }
    }
}
