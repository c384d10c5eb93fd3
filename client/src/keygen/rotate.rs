//! `msh-keygen rotate-host-key`: the first step of a host key rotation. Generates the next
//! host key beside the current one (never replacing a file) and prints the known_hosts lines
//! of both keys for the host's names, to distribute to clients that do not learn keys by
//! themselves (UpdateHostKeys off, or hosts verified through a global file).
//!
//! The rotation itself (printed as steps on stderr): serve both keys (`host_keys` in
//! mshd.toml, then SIGHUP); clients with UpdateHostKeys record the new key on their next
//! login (mshd announces all its keys and proves them); once they have, drop the old key from
//! `host_keys` and reload: those clients then forget it.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use msh_common::keys::{self, KeyKind};
use russh::keys::PublicKey;

use super::Report;

#[derive(Debug, Args)]
pub(super) struct RotateArgs {
    /// The host key in use now (private key file; its PATH.pub is read).
    #[arg(long = "current")]
    current: PathBuf,
    /// Where to write the next key (default: CURRENT.next, and CURRENT.next.pub).
    #[arg(long = "next")]
    next: Option<PathBuf>,
    /// Key type of the next key: ed25519, ecdsa or rsa (default: the current key's type).
    #[arg(short = 't', long = "type")]
    key_type: Option<String>,
    /// Key size (ecdsa 256, 384, 521; rsa 1024..16384, default 3072).
    #[arg(short = 'b', long = "bits")]
    bits: Option<u32>,
    /// Names clients use for the host (repeatable or comma-separated), for the known_hosts
    /// lines.
    #[arg(long = "host", required = true, value_delimiter = ',')]
    hosts: Vec<String>,
    /// mshd's port: names are written `[name]:port` when it is not 22.
    #[arg(short = 'p', long = "port", default_value_t = 22)]
    port: u16,
}

fn line(names: &str, key: &PublicKey) -> anyhow::Result<String> {
    let bare = PublicKey::new(key.key_data().clone(), "");
    let text = bare.to_openssh().context("cannot encode the public key")?;
    Ok(format!("{names} {}\n", text.trim_end()))
}

pub(super) fn run(a: RotateArgs) -> anyhow::Result<Report> {
    let current_pub_path = keys::public_key_path(&a.current);
    let current = keys::load_public_key(&current_pub_path)
        .with_context(|| format!("cannot read the current host key {}", a.current.display()))?;
    for h in &a.hosts {
        if h.is_empty() || h.contains(|c: char| c.is_whitespace() || ",*?!|#[]".contains(c)) {
            bail!("--host {h:?}: expected a plain host name or address (no patterns)");
        }
    }
    let next = a.next.clone().unwrap_or_else(|| {
        let mut s = a.current.as_os_str().to_owned();
        s.push(".next");
        PathBuf::from(s)
    });
    for p in [next.clone(), keys::public_key_path(&next)] {
        if std::fs::symlink_metadata(&p).is_ok() {
            bail!(
                "{} already exists; not overwriting it (a key being rolled out may be in it: \
                 remove it yourself, or choose another path with --next)",
                p.display()
            );
        }
    }
    let type_name = a
        .key_type
        .clone()
        .unwrap_or_else(|| current.algorithm().as_str().to_string());
    let kind = KeyKind::parse(&type_name, a.bits)?;
    let comment = format!(
        "next host key of {}",
        a.hosts.first().map(String::as_str).unwrap_or_default()
    );
    let key = keys::generate(kind, &comment)?;
    // Unencrypted, as host keys are (mshd reads them unattended).
    keys::write_key_pair(&next, &key, Some(""))
        .with_context(|| format!("cannot write the next host key to {}", next.display()))?;

    let names = a
        .hosts
        .iter()
        .map(|h| msh_common::known_hosts::host_key_name(&h.to_ascii_lowercase(), a.port))
        .collect::<Vec<_>>()
        .join(",");
    let mut r = Report {
        stdout: line(&names, &current)? + &line(&names, key.public_key())?,
        ..Report::default()
    };
    r.stderr = format!(
        "Next host key written to {next} ({fp}).\n\
         known_hosts lines for the current and the next key are on stdout.\n\
         Steps:\n\
         1. Serve both keys: add \"{next}\" to host_keys in mshd.toml after \"{current}\", then \
         reload mshd (SIGHUP).\n\
         2. Distribute the lines above to clients that do not learn keys themselves; msh and \
         ssh with UpdateHostKeys record the new key at their next login.\n\
         3. Later, remove \"{current}\" from host_keys and reload: clients with \
         UpdateHostKeys then forget the old key.\n",
        next = next.display(),
        current = a.current.display(),
        fp = keys::fingerprint(key.public_key()),
    );
    Ok(r)
}
