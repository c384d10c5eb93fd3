//! `msh-keygen sign`: a CA key certifies public keys, like `ssh-keygen -s CA -I ID -n
//! PRINCIPALS [-h] [-V] [-z] [-O force-command=] [-O source-address=] KEY.pub...`, writing
//! `KEY-cert.pub` beside each key and reporting each certificate in ssh-keygen's words.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use msh_common::certs::{self, validity, CertRequest, Validity, FOREVER};
use msh_common::keys;
use russh::keys::{PrivateKey, PublicKey};

use super::Report;

#[derive(Debug, Args)]
pub(super) struct SignArgs {
    /// The CA's private key (asks for its passphrase on the terminal when encrypted).
    #[arg(long = "ca", value_name = "CA_KEY")]
    ca: PathBuf,
    /// Key identity, logged by servers on every login with the certificate.
    #[arg(long = "id", value_name = "KEY_ID")]
    id: String,
    /// Comma-separated user names (or host names with --host) the certificate is valid for.
    #[arg(long = "principals", value_name = "A,B")]
    principals: String,
    /// Issue host certificates (for mshd's host_certificates / sshd's HostCertificate).
    #[arg(long)]
    host: bool,
    /// Validity in `ssh-keygen -V` syntax: +52w, -1d:+4w, 20260101:20270101, always:forever.
    /// Default: forever, as ssh-keygen.
    #[arg(long, value_name = "INTERVAL", allow_hyphen_values = true)]
    validity: Option<String>,
    /// Serial number, revocable with a KRL `serial:` line.
    #[arg(long, default_value_t = 0)]
    serial: u64,
    /// Critical option force-command: run CMD instead of whatever the user asks.
    #[arg(long, value_name = "CMD")]
    force_command: Option<String>,
    /// Critical option source-address: logins only from these addresses/CIDRs.
    #[arg(long, value_name = "CIDR,...")]
    source_address: Option<String>,
    /// Public keys to certify (KEY.pub; a private key KEY means the KEY.pub beside it).
    #[arg(required = true, value_name = "KEY.pub")]
    keys: Vec<PathBuf>,
}

fn now() -> anyhow::Result<u64> {
    Ok(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the system clock is before 1970")?
        .as_secs())
}

/// Loads the CA private key, asking for its passphrase (three tries) when it is encrypted.
fn load_ca(path: &Path) -> anyhow::Result<PrivateKey> {
    match keys::load_private_key(path, None) {
        Ok(k) => return Ok(k),
        Err(msh_common::Error::PassphraseNeeded { .. }) => {}
        Err(e) => return Err(e).context(format!("cannot use {} as the CA key", path.display())),
    }
    for _ in 0..3 {
        let pass =
            rpassword::prompt_password(format!("Enter passphrase for CA key {}: ", path.display()))
                .with_context(|| {
                    format!(
                "the CA key {} is encrypted and its passphrase cannot be asked (no terminal); \
                 run msh-keygen sign from a terminal",
                path.display()
            )
                })?;
        match keys::load_private_key(path, Some(&pass)) {
            Ok(k) => return Ok(k),
            Err(msh_common::Error::PassphraseWrong { .. }) => {
                eprintln!("Bad passphrase.");
            }
            Err(e) => {
                return Err(e).context(format!("cannot use {} as the CA key", path.display()))
            }
        }
    }
    bail!(
        "wrong passphrase for the CA key {} three times; nothing signed",
        path.display()
    )
}

/// The key to certify from `path`: a public key file; a private key path means the `.pub`
/// beside it, as ssh-keygen -s.
fn load_subject(path: &Path) -> anyhow::Result<(PublicKey, PathBuf)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the key to sign {}", path.display()))?;
    if text.contains("PRIVATE KEY") {
        let public = keys::public_key_path(path);
        let key = keys::load_public_key(&public).with_context(|| {
            format!(
                "{} is a private key and its public half {} cannot be read; pass the .pub file",
                path.display(),
                public.display()
            )
        })?;
        return Ok((key, public));
    }
    let is_cert = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .and_then(|l| l.split([' ', '\t']).next())
        .is_some_and(|t| t.ends_with("-cert-v01@openssh.com"));
    if is_cert {
        bail!(
            "{} is already a certificate; sign the plain public key (KEY.pub) to renew it",
            path.display()
        );
    }
    let key = keys::load_public_key(path)
        .with_context(|| format!("{} is not a public key file", path.display()))?;
    Ok((key, path.to_path_buf()))
}

/// Writes `text` to `path` (mode 0644) through a temporary file and a rename, so a server
/// or client reading the certificate meanwhile sees the old or the new one, whole.
fn write_cert(path: &Path, text: &str) -> anyhow::Result<()> {
    // Never through a symlink at the certificate's name or the temporary one (safefs).
    msh_common::safefs::write_file_atomic(path, text.as_bytes(), 0o644)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// ssh-keygen's `fmt_validity`: `forever`, `before T`, `after T` or `from T to T`, local time.
fn describe(v: Validity) -> String {
    match (v.valid_after, v.valid_before) {
        (0, FOREVER) => "forever".to_string(),
        (0, to) => format!("before {}", validity::format_local(to)),
        (from, FOREVER) => format!("after {}", validity::format_local(from)),
        (from, to) => format!(
            "from {} to {}",
            validity::format_local(from),
            validity::format_local(to)
        ),
    }
}

pub(super) fn run(a: SignArgs) -> anyhow::Result<Report> {
    let principals: Vec<String> = a
        .principals
        .split(',')
        .map(|p| p.trim().to_string())
        .collect();
    if principals.iter().any(String::is_empty) {
        bail!(
            "--principals {:?} has an empty name; give a comma-separated list such as alice,ops",
            a.principals
        );
    }
    let validity = match &a.validity {
        Some(spec) => validity::parse(spec, now()?)?,
        None => Validity {
            valid_after: 0,
            valid_before: FOREVER,
        },
    };
    let req = CertRequest {
        host: a.host,
        key_id: a.id.clone(),
        serial: a.serial,
        principals: principals.clone(),
        validity,
        force_command: a.force_command.clone(),
        source_address: a.source_address.clone(),
    };
    // Every key is read before the CA passphrase is asked, so a typo fails fast.
    let subjects = a
        .keys
        .iter()
        .map(|p| load_subject(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let ca = load_ca(&a.ca)?;
    let mut report = Report::default();
    for (subject, public_path) in subjects {
        let cert = certs::issue(&ca, &subject, &req)
            .with_context(|| format!("cannot certify {}", public_path.display()))?;
        let out = certs::cert_path(&public_path);
        write_cert(&out, &certs::to_line(&cert)?)?;
        // ssh-keygen -s prints this line (on stderr, as its log output).
        report.stderr.push_str(&format!(
            "Signed {} key {}: id \"{}\" serial {} for {} valid {}\n",
            if a.host { "host" } else { "user" },
            out.display(),
            a.id,
            a.serial,
            principals.join(","),
            describe(validity),
        ));
    }
    Ok(report)
}
