//! Revocation lists for mshd's `revoked_keys` and `msh-keygen revoke`: either an OpenSSH
//! public-key list (text, one key a line; see `text`) or an OpenSSH binary KRL (`ssh-keygen
//! -k`; see `krl`), told apart by the KRL magic `SSHKRL\n\0`, as sshd does.
//!
//! Checks follow OpenSSH (`sshkey_check_revoked`, `ssh_krl_check_key`): a plain key is
//! revoked when listed (KRL: explicit key, SHA1 or SHA256 fingerprint); a certificate is
//! revoked when its key is, when its CA key is (a revoked CA revokes everything it signed),
//! or, in a KRL, when its serial or key id is listed for its CA or for any CA.

pub mod krl;
pub mod text;

use std::fmt;
use std::path::{Path, PathBuf};

use russh::keys::ssh_key::public::KeyData;
use russh::keys::{Certificate, HashAlg, PublicKey};
use sha1::Digest as _;

use crate::keys::fingerprint;
use crate::{Error, Result};

pub use krl::Krl;
pub use text::TextEntry;

/// Why a key or certificate is revoked, for the log and the audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// The key itself is listed; `source` says where (`PATH:LINE`, or the KRL section).
    Key { fingerprint: String, source: String },
    /// The certificate's CA key is listed.
    CaKey { fingerprint: String, source: String },
    /// The certificate's serial is revoked in a KRL for its CA (`ca` = `None`: for any CA).
    Serial {
        serial: u64,
        ca: Option<String>,
        source: String,
    },
    /// The certificate's key id is revoked in a KRL for its CA (`ca` = `None`: any CA).
    KeyId {
        key_id: String,
        ca: Option<String>,
        source: String,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ca_text = |ca: &Option<String>| match ca {
            Some(fp) => format!("CA {fp}"),
            None => "any CA".to_string(),
        };
        match self {
            Reason::Key {
                fingerprint,
                source,
            } => write!(f, "key {fingerprint} is revoked ({source})"),
            Reason::CaKey {
                fingerprint,
                source,
            } => write!(f, "signing CA {fingerprint} is revoked ({source})"),
            Reason::Serial { serial, ca, source } => {
                write!(
                    f,
                    "certificate serial {serial} of {} is revoked ({source})",
                    ca_text(ca)
                )
            }
            Reason::KeyId { key_id, ca, source } => write!(
                f,
                "certificate key id {key_id:?} of {} is revoked ({source})",
                ca_text(ca)
            ),
        }
    }
}

#[derive(Debug, Clone)]
enum Content {
    Text(Vec<TextEntry>),
    Krl(Krl),
}

/// A loaded revocation list.
#[derive(Debug, Clone)]
pub struct RevocationList {
    path: PathBuf,
    content: Content,
}

impl RevocationList {
    /// Reads `path`, a KRL (by its magic) or a text key list. Any malformed content is an
    /// error naming the path and the line (text) or byte offset (KRL).
    pub fn load(path: &Path) -> Result<Self> {
        let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::parse(path, &data)
    }

    /// Pure: parses `data` read from `path`.
    pub fn parse(path: &Path, data: &[u8]) -> Result<Self> {
        let content = if data.starts_with(krl::MAGIC) {
            Content::Krl(krl::parse(data).map_err(|m| Error::Key {
                path: path.to_path_buf(),
                reason: format!(
                    "malformed KRL at byte offset {}: {}; regenerate it with ssh-keygen -k",
                    m.offset, m.reason
                ),
            })?)
        } else {
            let text = std::str::from_utf8(data).map_err(|e| Error::Parse {
                path: path.to_path_buf(),
                line: line_of(data, e.valid_up_to()),
                reason: "not UTF-8 text, and not a KRL (no SSHKRL magic)".into(),
            })?;
            Content::Text(text::parse(text).map_err(|(line, reason)| Error::Parse {
                path: path.to_path_buf(),
                line,
                reason,
            })?)
        };
        Ok(RevocationList {
            path: path.to_path_buf(),
            content,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the list is a binary KRL (else a text key list).
    pub fn is_krl(&self) -> bool {
        matches!(self.content, Content::Krl(_))
    }

    /// Whether the plain key `key` is revoked. A certificate given here is checked as
    /// [`Self::is_cert_revoked`] does.
    pub fn is_revoked(&self, key: &PublicKey) -> Option<Reason> {
        if let Some(cert) = key.key_data().certificate() {
            return self.is_cert_revoked(cert);
        }
        self.key_listed(key.key_data())
            .map(|(fingerprint, source)| Reason::Key {
                fingerprint,
                source,
            })
    }

    /// Whether `cert` is revoked: its key, its CA key, or (KRL) its serial or key id.
    pub fn is_cert_revoked(&self, cert: &Certificate) -> Option<Reason> {
        if let Some((fingerprint, source)) = self.key_listed(cert.public_key()) {
            return Some(Reason::Key {
                fingerprint,
                source,
            });
        }
        if let Content::Krl(k) = &self.content {
            if let Some(r) = self.cert_listed(k, cert) {
                return Some(r);
            }
        }
        self.key_listed(cert.signature_key())
            .map(|(fingerprint, source)| Reason::CaKey {
                fingerprint,
                source,
            })
    }

    /// `(fingerprint, source)` when the plain key `key` is listed.
    fn key_listed(&self, key: &KeyData) -> Option<(String, String)> {
        let key = match key.certificate() {
            Some(c) => c.public_key(),
            None => key,
        };
        let fp = || fingerprint(&PublicKey::new(key.clone(), ""));
        match &self.content {
            Content::Text(entries) => entries.iter().find(|e| &e.key == key).map(|e| {
                let what = match &e.cert_key_id {
                    Some(id) => format!(" (certificate {id:?})"),
                    None => String::new(),
                };
                (fp(), format!("{}:{}{what}", self.path.display(), e.line))
            }),
            Content::Krl(k) => {
                let src = |what: &str| format!("KRL {}: {what}", self.path.display());
                let blob = plain_blob(key)?;
                if k.sha1.contains(sha1::Sha1::digest(&blob).as_slice()) {
                    return Some((fp(), src("SHA1 fingerprint")));
                }
                if k.sha256
                    .contains(key.fingerprint(HashAlg::Sha256).as_bytes())
                {
                    return Some((fp(), src("SHA256 fingerprint")));
                }
                if k.explicit_keys.contains(&blob) {
                    return Some((fp(), src("explicit key")));
                }
                None
            }
        }
    }

    fn cert_listed(&self, k: &Krl, cert: &Certificate) -> Option<Reason> {
        let ca = cert.signature_key();
        let ca_fp = fingerprint(&PublicKey::new(ca.clone(), ""));
        // The CA's own section first, then the any-CA ones, as OpenSSH.
        let sections = k
            .certs
            .iter()
            .filter(|s| s.ca.as_ref() == Some(ca))
            .chain(k.certs.iter().filter(|s| s.ca.is_none()));
        for s in sections {
            let who = s.ca.as_ref().map(|_| ca_fp.clone());
            if s.key_ids.contains(cert.key_id()) {
                return Some(Reason::KeyId {
                    key_id: cert.key_id().to_string(),
                    ca: who,
                    source: format!("KRL {}", self.path.display()),
                });
            }
            if s.serial_revoked(cert.serial()) {
                return Some(Reason::Serial {
                    serial: cert.serial(),
                    ca: who,
                    source: format!("KRL {}", self.path.display()),
                });
            }
        }
        None
    }
}

/// The SSH wire encoding of a plain key (what KRL explicit-key sections and fingerprints
/// are computed over).
fn plain_blob(key: &KeyData) -> Option<Vec<u8>> {
    PublicKey::new(key.clone(), "").to_bytes().ok()
}

fn line_of(data: &[u8], offset: usize) -> usize {
    data.get(..offset)
        .map_or(1, |b| b.iter().filter(|c| **c == b'\n').count() + 1)
}

/// Something to add to a text revocation list.
#[derive(Debug, Clone)]
pub enum Revokee {
    /// A plain public key (written as `keytype base64 comment`).
    Key(PublicKey),
    /// A certificate: written as its certificate line, which revokes its key.
    Cert(Box<Certificate>),
}

impl Revokee {
    fn plain_key(&self) -> &KeyData {
        match self {
            Revokee::Key(k) => k
                .key_data()
                .certificate()
                .map_or(k.key_data(), |c| c.public_key()),
            Revokee::Cert(c) => c.public_key(),
        }
    }

    fn line(&self) -> Result<String> {
        match self {
            Revokee::Key(k) => crate::keys::public_key_line(k),
            Revokee::Cert(c) => c
                .to_openssh()
                .map(|s| s.trim_end().to_string())
                .map_err(|e| Error::Invalid(format!("cannot encode certificate: {e}"))),
        }
    }
}

/// Adds `entries` to the text revocation list at `path` (created 0644 if missing), under an
/// exclusive lock on `PATH.lock`, by writing the new contents to a temporary file and
/// renaming it over the list: sshd and mshd reading it concurrently see the old or the new
/// file, never half of it. Keys already listed are not added again. Returns how many lines
/// were added. A binary KRL at `path` is refused (update it with `ssh-keygen -k -u`), as is a
/// list that does not parse (it would be rewritten with its errors).
pub fn append_revoked(path: &Path, entries: &[Revokee]) -> Result<usize> {
    // The rename below would replace a device, FIFO or symlink with a regular file; the
    // list is read and replaced relative to its directory, never through a symlink.
    let (dir, name) = crate::safefs::Dir::parent_of(path)?;
    match dir.lstat(&name)? {
        Some(st) if st.st_mode & nix::libc::S_IFMT != nix::libc::S_IFREG => {
            return Err(Error::Invalid(format!(
                "{} is not a regular file: refusing to rewrite it; give the path of the list \
                 itself",
                path.display()
            )));
        }
        _ => {}
    }
    let _lock = crate::lockfile::exclusive(&dir, &name)?;
    let (old, mode, owner) = match dir.read_regular(&name, u64::MAX)? {
        Some(c) => (c.bytes, c.mode, Some((c.uid, c.gid))),
        None => (Vec::new(), 0o644, None),
    };
    let current = RevocationList::parse(path, &old)?;
    let Content::Text(existing) = &current.content else {
        return Err(Error::Invalid(format!(
            "{} is a binary KRL; msh-keygen revoke writes text key lists. Add keys to the \
             KRL with `ssh-keygen -k -u -f {}`, or choose another file",
            path.display(),
            path.display()
        )));
    };
    let mut listed: Vec<KeyData> = existing.iter().map(|e| e.key.clone()).collect();
    let mut contents = old.clone();
    if !contents.is_empty() && !contents.ends_with(b"\n") {
        contents.push(b'\n');
    }
    let mut added = 0;
    for entry in entries {
        let key = entry.plain_key();
        if listed.contains(key) {
            continue;
        }
        contents.extend_from_slice(entry.line()?.as_bytes());
        contents.push(b'\n');
        listed.push(key.clone());
        added += 1;
    }
    if added > 0 {
        dir.replace(&name, &contents, mode, owner)?;
    }
    Ok(added)
}
