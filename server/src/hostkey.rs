//! Host keys: loaded from `host_keys` (default: the one default path). A configured key file
//! that does not exist yet is generated there as ed25519 (mode 0600, `.pub` beside it) on first
//! start, as `ssh-keygen -A` would; an existing file is never replaced. Every start logs each
//! key's path and SHA256 fingerprint so an operator can tell clients what to pin.
#![forbid(unsafe_code)]

use std::path::Path;

use anyhow::{bail, Context, Result};
use msh_common::keys::{self, KeyKind};
use russh::keys::{Certificate, PrivateKey};

use crate::config::Settings;

/// Loads every configured host key, generating the default one if it does not exist yet.
pub(crate) fn load_or_generate(settings: &Settings) -> Result<Vec<PrivateKey>> {
    let mut out = Vec::new();
    for path in &settings.host_keys {
        if std::fs::symlink_metadata(path).is_err() {
            generate(path)?;
        }
        if settings.strict_modes {
            check_strict(path)?;
        }
        // The error names the path and the fix (e.g. "permissions 0644 are too open").
        let key = keys::load_private_key(path, None).context("cannot use host key")?;
        tracing::info!(
            "host key {} {}",
            path.display(),
            keys::fingerprint(key.public_key())
        );
        out.push(key);
    }
    if out.is_empty() {
        bail!("no host key configured");
    }
    Ok(out)
}

/// strict_modes for a host key: owned by mshd's user or root, readable by nobody else, and in
/// directories (up to `/`) that only their owner (mshd's user or root) can write, so no other
/// user can read or replace the key.
fn check_strict(path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let uid = nix::unistd::geteuid().as_raw();
    msh_common::perms::check_strict_modes(path, uid, Path::new("/")).map_err(|e| {
        anyhow::anyhow!(
            "host key {} refused by strict_modes: {} (or set strict_modes = false)",
            path.display(),
            msh_common::Chain(&e)
        )
    })?;
    let meta = std::fs::metadata(path).with_context(|| format!("host key {}", path.display()))?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        bail!(
            "host key {}: permissions {mode:04o} are too open (strict_modes): fix with chmod 600 {}",
            path.display(),
            path.display()
        );
    }
    Ok(())
}

/// Loads `host_certificates`; each must certify one of the host keys (russh presents a
/// certificate only with its private key) and be a host certificate.
pub(crate) fn load_certificates(
    settings: &Settings,
    keys: &[PrivateKey],
) -> Result<Vec<Certificate>> {
    let mut out = Vec::new();
    for path in &settings.host_certificates {
        let cert = msh_common::certs::load(path).context("cannot use host certificate")?;
        if !cert.cert_type().is_host() {
            bail!(
                "{}: a user certificate, not a host certificate (sign it with msh-keygen sign --host)",
                path.display()
            );
        }
        if !keys
            .iter()
            .any(|k| k.public_key().key_data() == cert.public_key())
        {
            bail!(
                "{}: certifies a key that is not among host_keys ({}); sign the host key's .pub",
                path.display(),
                keys::fingerprint(&russh::keys::PublicKey::new(cert.public_key().clone(), ""))
            );
        }
        tracing::info!(
            "host certificate {} {}",
            path.display(),
            msh_common::certs::CertInfo::of(&cert)
        );
        if let Some(warning) = validity_warning(&cert, now_secs()) {
            tracing::warn!("host certificate {}: {warning}", path.display());
        }
        out.push(cert);
    }
    Ok(out)
}

/// A host certificate outside its validity window is still served (the client decides, and
/// OpenSSH then falls back to the plain host key or refuses), but the operator is told at
/// start and at each SIGHUP; so is one that expires within a day, while there is still time
/// to renew it.
pub(crate) fn validity_warning(cert: &Certificate, now: u64) -> Option<String> {
    const RENEW: &str = "renew it with `msh-keygen sign --host` and send SIGHUP";
    if now < cert.valid_after() {
        return Some(format!(
            "not valid yet (valid from {}): clients checking it will refuse it until then",
            format_utc(cert.valid_after())
        ));
    }
    if now >= cert.valid_before() {
        return Some(format!(
            "expired at {}: clients checking it will refuse it; {RENEW}",
            format_utc(cert.valid_before())
        ));
    }
    let left = cert.valid_before() - now;
    (left < 86_400).then(|| {
        format!(
            "expires at {} (in {}h{:02}m); {RENEW}",
            format_utc(cert.valid_before()),
            left / 3600,
            (left % 3600) / 60
        )
    })
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `YYYY-MM-DD HH:MM:SS UTC` for seconds since the epoch; `forever` for OpenSSH's "no end"
/// sentinel (and anything past jiff's range, year 9999).
fn format_utc(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "forever".into())
}

/// For `--check-config`: every configured host key loads, except a missing one, which the
/// first start will generate (said on stderr).
pub(crate) fn check(settings: &Settings) -> Result<()> {
    for path in &settings.host_keys {
        if std::fs::symlink_metadata(path).is_err() {
            eprintln!(
                "mshd: host key {} does not exist yet: it will be generated on first start",
                path.display()
            );
            continue;
        }
        if settings.strict_modes {
            check_strict(path)?;
        }
        keys::load_private_key(path, None).context("cannot use host key")?;
    }
    for path in &settings.host_certificates {
        msh_common::certs::load(path).context("cannot use host certificate")?;
    }
    Ok(())
}

fn generate(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
    }
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "mshd".into());
    let key = keys::generate(KeyKind::Ed25519, &format!("root@{host}"))
        .context("cannot generate a host key")?;
    keys::write_key_pair(path, &key, None).context("cannot write the new host key")?;
    tracing::info!("generated new host key {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::format_utc;

    #[test]
    fn utc_dates_as_openssh_prints_them() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(1_580_515_200), "2020-02-01 00:00:00 UTC");
        // A leap day, and the last second of a year.
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_utc(1_767_225_599), "2025-12-31 23:59:59 UTC");
        assert_eq!(format_utc(u64::MAX), "forever");
    }
}
