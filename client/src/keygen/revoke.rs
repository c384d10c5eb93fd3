//! `msh-keygen revoke --file REVOKED KEY_OR_CERT...`: adds keys to the OpenSSH public-key
//! list that mshd's `revoked_keys` and sshd's `RevokedKeys` read. A certificate revokes its
//! key (and so every certificate of that key); revoking by serial or key id needs a KRL,
//! which ssh-keygen -k writes.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use msh_common::keys;
use msh_common::revocation::{append_revoked, Revokee};
use russh::keys::{Certificate, PublicKey};

use super::Report;

#[derive(Debug, Args)]
pub(super) struct RevokeArgs {
    /// The revocation list to add to (created 0644 if missing). A binary KRL is refused:
    /// update it with `ssh-keygen -k -u`.
    #[arg(short = 'f', long = "file", value_name = "REVOKED")]
    file: PathBuf,
    /// Public keys, certificates (KEY-cert.pub) or private keys (their public half) to revoke;
    /// a file of several key lines revokes each.
    #[arg(required = true, value_name = "KEY_OR_CERT")]
    keys: Vec<PathBuf>,
}

/// One thing to revoke and how to describe it.
struct Item {
    revokee: Revokee,
    description: String,
}

fn plain_fingerprint_line(key: &PublicKey) -> String {
    keys::fingerprint_line(key, key.comment().as_str_lossy())
}

fn read_items(path: &Path) -> anyhow::Result<Vec<Item>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the key to revoke {}", path.display()))?;
    if text.contains("PRIVATE KEY") {
        let key = keys::private_key_public_part(path).with_context(|| {
            format!(
                "cannot read the public half of {}; pass its .pub file",
                path.display()
            )
        })?;
        return Ok(vec![Item {
            description: plain_fingerprint_line(&key),
            revokee: Revokee::Key(key),
        }]);
    }
    let mut items = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let is_cert = line
            .split([' ', '\t'])
            .next()
            .is_some_and(|t| t.ends_with("-cert-v01@openssh.com"));
        if is_cert {
            let cert = Certificate::from_openssh(line).map_err(|e| {
                anyhow::anyhow!("{}:{}: not a valid certificate: {e}", path.display(), n + 1)
            })?;
            let key = PublicKey::new(cert.public_key().clone(), cert.comment());
            let description = format!(
                "{} (certificate id \"{}\" serial {}: its key and every certificate of it)",
                plain_fingerprint_line(&key),
                cert.key_id(),
                cert.serial()
            );
            items.push(Item {
                revokee: Revokee::Cert(Box::new(cert)),
                description,
            });
        } else {
            let key = keys::parse_public_key_line(line).map_err(|why| {
                anyhow::anyhow!(
                    "{}:{}: not a public key or certificate line: {why}",
                    path.display(),
                    n + 1
                )
            })?;
            items.push(Item {
                description: plain_fingerprint_line(&key),
                revokee: Revokee::Key(key),
            });
        }
    }
    if items.is_empty() {
        bail!("{}: no key or certificate in the file", path.display());
    }
    Ok(items)
}

pub(super) fn run(a: RevokeArgs) -> anyhow::Result<Report> {
    // Everything is read first: a bad argument changes nothing in the list.
    let mut items = Vec::new();
    for p in &a.keys {
        items.extend(read_items(p)?);
    }
    let mut report = Report::default();
    for item in items {
        // One locked, atomic append per entry, so the report says exactly which ones were
        // already listed.
        let added = append_revoked(&a.file, std::slice::from_ref(&item.revokee))?;
        let verb = if added > 0 {
            "Revoked"
        } else {
            "Already revoked"
        };
        report.stdout.push_str(&format!(
            "{verb} in {}: {}\n",
            a.file.display(),
            item.description
        ));
    }
    Ok(report)
}
