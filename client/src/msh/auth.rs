//! User authentication: ssh-agent keys first (when SSH_AUTH_SOCK is set), then identity files
//! (`-i` / IdentityFile, else the default `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa` that
//! exist). Encrypted keys ask for their passphrase on /dev/tty; RSA keys sign with
//! rsa-sha2-512/256, never SHA-1.
//!
//! User certificates: `FILE-cert.pub` beside each identity file and every `CertificateFile`
//! are read at each run (so a renewed certificate is simply picked up) and offered, before
//! the plain key, with the identity file whose key they certify. The agent's own
//! certificates (ssh-add loads `KEY-cert.pub` with `KEY`) are offered too, and so is a
//! certificate file whose key only the agent holds: the agent signs with the plain key (it
//! would refuse a request naming a certificate it does not hold). Certificate logins sign
//! through `CertSigner`, which lets RSA keys use rsa-sha2-512/256 (`rsa-sha2-512-cert-v01`);
//! russh's own certificate method knows only SHA-1 `ssh-rsa-cert-v01`, which OpenSSH 8.8+
//! refuses. Expired (or not yet valid) certificates are skipped with a warning; one that
//! expires within a day is used with a warning.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use msh_common::certs;
use russh::keys::Certificate;

use anyhow::{bail, Result};
use msh_common::keys;
use russh::client::{AuthResult, Handle};
use russh::keys::agent::client::AgentClient;
use russh::keys::agent::AgentIdentity;
use russh::keys::ssh_key::private::KeypairData;
use russh::keys::ssh_key::Signature;
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey};
use russh::{AgentAuthError, Signer};
use tokio::io::{AsyncRead, AsyncWrite};

use super::connect::Client;
use super::settings::Settings;

/// Default identity files, in ssh's order, under `home/.ssh`.
pub(super) fn default_identities(home: &Path) -> Vec<PathBuf> {
    ["id_ed25519", "id_ecdsa", "id_rsa"]
        .iter()
        .map(|n| home.join(".ssh").join(n))
        .filter(|p| p.exists())
        .collect()
}

/// The end of the "permission denied" line: the fixes a user can make, none of which depends
/// on anything the server did not say.
pub(super) const AUTH_HINT: &str =
    "to log in, the public half of one of these keys must be in ~/.ssh/authorized_keys of ";

/// Tries agent keys, then identity files. Ok(()) once the server accepts one; otherwise the
/// OpenSSH-style "permission denied (publickey); tried: ..." error.
pub(super) async fn authenticate(
    handle: &mut Handle<Client>,
    settings: &Settings,
    identity_files: &[PathBuf],
) -> Result<()> {
    let user = settings.user.as_str();
    let mut tried: Vec<String> = Vec::new();
    // Resolved once: only RSA keys need it, and it can wait up to 1 s for the server's
    // ext-info.
    let mut rsa_hash: Option<Option<HashAlg>> = None;

    // Public halves of the identity files, to filter agent keys under IdentitiesOnly.
    let wanted: Vec<PublicKey> = identity_files
        .iter()
        .filter_map(|p| file_public_key(p))
        .collect();

    let cert_files = load_certificates(settings, identity_files);

    if std::env::var_os("SSH_AUTH_SOCK").is_some() {
        match AgentClient::connect_env().await {
            Ok(mut agent) => match agent.request_identities().await {
                Ok(ids) => {
                    for id in ids {
                        let (key, comment) = match id {
                            AgentIdentity::PublicKey { key, comment } => (key, comment),
                            AgentIdentity::Certificate {
                                certificate,
                                comment,
                            } => {
                                // A certificate the agent holds with its key (ssh-add loads
                                // KEY-cert.pub along with KEY).
                                let key = PublicKey::new(certificate.public_key().clone(), "");
                                if settings.identities_only
                                    && !wanted.iter().any(|w| w.key_data() == key.key_data())
                                {
                                    continue;
                                }
                                if !usable(
                                    settings,
                                    &format!("agent certificate {comment}"),
                                    &certificate,
                                ) {
                                    continue;
                                }
                                let hash = hash_for(handle, &key, &mut rsa_hash).await;
                                let label = format!("agent certificate {comment}");
                                tracing::info!("offering {label}");
                                match handle
                                    .authenticate_certificate_with(
                                        user,
                                        certificate,
                                        hash,
                                        &mut agent,
                                    )
                                    .await
                                {
                                    Ok(AuthResult::Success) => {
                                        tracing::info!("authenticated with {label}");
                                        return Ok(());
                                    }
                                    Ok(AuthResult::Failure { .. }) => {}
                                    Err(e) => {
                                        tracing::warn!("agent could not sign with {label}: {e}")
                                    }
                                }
                                tried.push(label);
                                continue;
                            }
                        };
                        if settings.identities_only
                            && !wanted.iter().any(|w| w.key_data() == key.key_data())
                        {
                            continue;
                        }
                        let hash = hash_for(handle, &key, &mut rsa_hash).await;
                        for (cert_path, cert) in certs_for(&cert_files, &key) {
                            let label = format!("{} (key in ssh-agent)", cert_path.display());
                            tracing::info!("offering certificate {label}");
                            let mut signer = CertSigner::Agent {
                                agent: &mut agent,
                                key: key.clone(),
                            };
                            match handle
                                .authenticate_certificate_with(
                                    user,
                                    cert.clone(),
                                    hash,
                                    &mut signer,
                                )
                                .await
                            {
                                Ok(AuthResult::Success) => {
                                    tracing::info!("authenticated with certificate {label}");
                                    return Ok(());
                                }
                                Ok(AuthResult::Failure { .. }) => {}
                                Err(e) => {
                                    tracing::warn!("agent could not sign for {label}: {e}")
                                }
                            }
                            tried.push(label);
                        }
                        let label = format!(
                            "agent:{} {} {comment}",
                            keys::key_type_label(&key),
                            keys::fingerprint(&key)
                        );
                        tracing::info!("offering {label}");
                        match handle
                            .authenticate_publickey_with(user, key, hash, &mut agent)
                            .await
                        {
                            Ok(AuthResult::Success) => {
                                tracing::info!("authenticated with {label}");
                                return Ok(());
                            }
                            Ok(AuthResult::Failure { .. }) => {}
                            Err(e) => tracing::warn!("agent could not sign with {label}: {e}"),
                        }
                        tried.push(label.trim_end().to_string());
                    }
                }
                Err(e) => warn(settings, &format!("ssh-agent: cannot list keys: {e}")),
            },
            Err(e) => warn(
                settings,
                &format!("ssh-agent at SSH_AUTH_SOCK not usable: {e}"),
            ),
        }
    }

    for path in identity_files {
        let Some(key) = load_identity(path, settings)? else {
            continue;
        };
        let key = Arc::new(key);
        let hash = hash_for(handle, key.public_key(), &mut rsa_hash).await;
        for (cert_path, cert) in certs_for(&cert_files, key.public_key()) {
            let label = cert_path.display().to_string();
            tracing::info!("offering certificate {label} for {}", path.display());
            let mut signer = CertSigner::<tokio::net::UnixStream>::Local(key.clone());
            let res = handle
                .authenticate_certificate_with(user, cert.clone(), hash, &mut signer)
                .await?;
            if res.success() {
                tracing::info!("authenticated with certificate {label}");
                return Ok(());
            }
            tried.push(label);
        }
        let label = path.display().to_string();
        tracing::info!(
            "offering {label} ({} {})",
            keys::key_type_label(key.public_key()),
            keys::fingerprint(key.public_key())
        );
        let res = handle
            .authenticate_publickey(user, PrivateKeyWithHashAlg::new(key, hash))
            .await?;
        if res.success() {
            tracing::info!("authenticated with {label}");
            return Ok(());
        }
        tried.push(label);
    }

    let host = &settings.host;
    if tried.is_empty() {
        bail!(
            "{user}@{host}: permission denied (publickey); tried: no keys (add one with -i KEY, \
             or create ~/.ssh/id_ed25519 with msh-keygen generate)"
        );
    }
    // What to do next, from what the client knows alone: the server only said "no".
    bail!(
        "{user}@{host}: permission denied (publickey); tried: {}; {AUTH_HINT}{user} on {host}",
        tried.join(", ")
    )
}

/// Signs a certificate login: with a private key loaded from a file, or by ssh-agent with
/// the plain key the certificate certifies.
enum CertSigner<'a, S: AsyncRead + AsyncWrite + Send + Unpin> {
    Local(Arc<PrivateKey>),
    Agent {
        agent: &'a mut AgentClient<S>,
        key: PublicKey,
    },
}

impl<S: AsyncRead + AsyncWrite + Send + Unpin> Signer for CertSigner<'_, S> {
    type Error = AgentAuthError;

    async fn auth_sign(
        &mut self,
        _cert: &AgentIdentity,
        hash_alg: Option<HashAlg>,
        to_sign: Vec<u8>,
    ) -> Result<Vec<u8>, AgentAuthError> {
        match self {
            CertSigner::Local(key) => {
                use russh::keys::ssh_key::encoding::Encode;
                let sig = sign_local(key, hash_alg, &to_sign)?;
                let blob = sig.encode_vec().map_err(ssh_key_error)?;
                // The request ends with the signature blob as an SSH string.
                let mut out = to_sign;
                blob.as_slice().encode(&mut out).map_err(ssh_key_error)?;
                Ok(out)
            }
            CertSigner::Agent { agent, key } => {
                let id = AgentIdentity::PublicKey {
                    key: key.clone(),
                    comment: String::new(),
                };
                Ok(agent.sign_request(&id, hash_alg, to_sign).await?)
            }
        }
    }
}

/// Signs with the key file's private key; RSA with the hash the server agreed to.
fn sign_local(
    key: &PrivateKey,
    hash_alg: Option<HashAlg>,
    data: &[u8],
) -> Result<Signature, russh::keys::Error> {
    use russh::keys::signature::Signer as _;
    Ok(match key.key_data() {
        KeypairData::Rsa(rsa) => (rsa, hash_alg).try_sign(data)?,
        other => other.try_sign(data)?,
    })
}

fn ssh_key_error(e: russh::keys::ssh_key::encoding::Error) -> russh::keys::Error {
    russh::keys::Error::SshKey(e.into())
}

/// The certificates to offer: `FILE-cert.pub` beside each identity file, then the
/// `CertificateFile`s, each read now and kept only while valid (see `usable`).
fn load_certificates(
    settings: &Settings,
    identity_files: &[PathBuf],
) -> Vec<(PathBuf, Certificate)> {
    let mut out: Vec<(PathBuf, Certificate)> = Vec::new();
    let beside = identity_files.iter().map(|p| (certs::cert_path(p), false));
    let named = settings.certificate_files.iter().map(|p| (p.clone(), true));
    for (path, explicit) in beside.chain(named) {
        if out.iter().any(|(p, _)| *p == path) {
            continue;
        }
        if !explicit && !path.exists() {
            continue;
        }
        match certs::load(&path) {
            Ok(cert) => {
                if usable(settings, &path.display().to_string(), &cert) {
                    out.push((path, cert));
                }
            }
            Err(e) => warn(
                settings,
                &format!(
                    "cannot use certificate: {} (skipped)",
                    msh_common::Chain(&e)
                ),
            ),
        }
    }
    out
}

/// The loaded certificates that certify `key`.
fn certs_for<'a>(
    certs: &'a [(PathBuf, Certificate)],
    key: &'a PublicKey,
) -> impl Iterator<Item = &'a (PathBuf, Certificate)> + 'a {
    certs
        .iter()
        .filter(move |(_, c)| c.public_key() == key.key_data())
}

/// Is the certificate valid now? An expired or not yet valid one is skipped with a warning
/// (always shown: it explains a failed login); one that expires within a day is used, with
/// a warning unless -q.
fn usable(settings: &Settings, name: &str, cert: &Certificate) -> bool {
    let now = super::verify::now();
    let before = cert.valid_before();
    if now >= before {
        errln!(
            "msh: warning: certificate {name} expired at {} (skipped; renew it, e.g. \
             msh-keygen sign, and connect again)",
            certs::validity::format_utc(before)
        );
        return false;
    }
    if now < cert.valid_after() {
        errln!(
            "msh: warning: certificate {name} is not valid until {} (skipped)",
            certs::validity::format_utc(cert.valid_after())
        );
        return false;
    }
    let left = before - now;
    if left < 24 * 3600 {
        warn(
            settings,
            &format!(
                "certificate {name} expires at {} (in {}); renew it soon",
                certs::validity::format_utc(before),
                duration_words(left)
            ),
        );
    }
    true
}

/// `3h`, `2h 59m`, `12m`, `40s`.
fn duration_words(secs: u64) -> String {
    let (h, m) = (secs / 3600, secs % 3600 / 60);
    match (h, m) {
        (0, 0) => format!("{secs}s"),
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h {m}m"),
    }
}

/// For RSA keys, the best SHA-2 hash the server supports (rsa-sha2-512, then -256); SHA-1
/// only if the server announces nothing else.
async fn hash_for(
    handle: &Handle<Client>,
    key: &PublicKey,
    cache: &mut Option<Option<HashAlg>>,
) -> Option<HashAlg> {
    if !key.algorithm().is_rsa() {
        return None;
    }
    if cache.is_none() {
        let best = match handle.best_supported_rsa_hash().await {
            Ok(Some(h)) => h,
            // No server-sig-algs: assume a modern server (OpenSSH >= 7.2 speaks SHA-2).
            _ => Some(HashAlg::Sha512),
        };
        *cache = Some(best);
    }
    cache.flatten()
}

/// The public key of an identity file: `FILE.pub` when present, else the clear public half
/// of the private key file.
fn file_public_key(path: &Path) -> Option<PublicKey> {
    keys::load_public_key(&keys::public_key_path(path))
        .ok()
        .or_else(|| keys::private_key_public_part(path).ok())
}

/// Loads one identity file, asking for its passphrase on the terminal when it is encrypted.
/// Ok(None) means "skip this file" (missing, refused mode, no passphrase): the reason was
/// printed.
fn load_identity(path: &Path, settings: &Settings) -> Result<Option<PrivateKey>> {
    if !path.exists() {
        warn(
            settings,
            &format!(
                "identity file {} not accessible: no such file (skipped)",
                path.display()
            ),
        );
        return Ok(None);
    }
    let mut passphrase: Option<String> = None;
    let mut attempts = 0;
    loop {
        match keys::load_private_key(path, passphrase.as_deref()) {
            Ok(k) => return Ok(Some(k)),
            Err(
                e @ (msh_common::Error::PassphraseNeeded { .. }
                | msh_common::Error::PassphraseWrong { .. }),
            ) => {
                if matches!(e, msh_common::Error::PassphraseWrong { .. }) {
                    errln!("msh: wrong passphrase for key '{}'", path.display());
                }
                if settings.batch_mode {
                    warn(
                        settings,
                        &format!(
                            "key {} is encrypted and BatchMode=yes forbids asking for its \
                             passphrase (skipped; load it into ssh-agent instead)",
                            path.display()
                        ),
                    );
                    return Ok(None);
                }
                if attempts == 3 {
                    return Ok(None);
                }
                attempts += 1;
                match rpassword::prompt_password(format!(
                    "Enter passphrase for key '{}': ",
                    path.display()
                )) {
                    Ok(p) if !p.is_empty() => passphrase = Some(p),
                    // Empty answer: skip this key, as ssh does.
                    Ok(_) => return Ok(None),
                    Err(err) => {
                        warn(
                            settings,
                            &format!(
                                "key {} is encrypted and there is no terminal to ask for its \
                                 passphrase ({err}); skipped",
                                path.display()
                            ),
                        );
                        return Ok(None);
                    }
                }
            }
            Err(e @ msh_common::Error::Permissions { .. }) => {
                // Printed even with -q: a refused key is why the login may fail.
                errln!(
                    "msh: UNPROTECTED PRIVATE KEY FILE: {e}. It is required that your private \
                     key files are NOT accessible by others; this key will be ignored. Fix: \
                     chmod 600 {}",
                    path.display()
                );
                return Ok(None);
            }
            Err(e) => {
                warn(
                    settings,
                    &format!("cannot load identity: {} (skipped)", msh_common::Chain(&e)),
                );
                return Ok(None);
            }
        }
    }
}

fn warn(settings: &Settings, msg: &str) {
    if !settings.quiet {
        errln!("msh: warning: {msg}");
    }
}

#[cfg(test)]
mod tests {
    use super::duration_words;

    #[test]
    fn time_left_reads_like_the_warning_promises() {
        assert_eq!(duration_words(3 * 3600), "3h");
        assert_eq!(duration_words(2 * 3600 - 1), "1h 59m");
        assert_eq!(duration_words(12 * 60 + 5), "12m");
        assert_eq!(duration_words(40), "40s");
    }
}
