//! User certificates (sshd's auth2-pubkey.c with TrustedUserCAKeys, AuthorizedPrincipalsFile
//! and `cert-authority` lines): which CA is trusted for the user, which principals count,
//! and how the certificate's options fold into authorized_keys-style permissions.
#![forbid(unsafe_code)]

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::SystemTime;

use msh_common::authorized_keys::{
    authorize_cert_authority, expand_tokens, AuthDecision, Permissions,
};
use msh_common::certs::{check_user_cert, CertDecision, CertInfo, CertPermissions, PrincipalsFile};
use nix::unistd::Uid;
use russh::keys::{Certificate, PublicKey};

use super::{
    check_user, load_authorized_keys, no_files, read_users_file, refusal, revoked,
    user_environment, Account, Verdict, MAX_CA_FILE,
};
use crate::config::Settings;

/// Why a certificate's CA was not trusted through `trusted_user_ca_keys`: the reason names
/// the files looked at, so that a refusal points at both places a CA can be trusted.
fn not_trusted(settings: &Settings, ca_fingerprint: &str) -> String {
    if settings.trusted_user_ca_keys.is_empty() {
        format!("CA {ca_fingerprint} is not in trusted_user_ca_keys (none configured)")
    } else {
        format!(
            "CA {ca_fingerprint} is not in trusted_user_ca_keys ({})",
            settings
                .trusted_user_ca_keys
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// CA keys from `trusted_user_ca_keys` (each file may hold several keys, one a line).
/// Unreadable files and bad lines are logged and skipped: they trust nothing.
fn trusted_cas(settings: &Settings) -> Vec<PublicKey> {
    let mut cas = Vec::new();
    for path in &settings.trusted_user_ca_keys {
        let read =
            msh_common::perms::read_config_file(path, MAX_CA_FILE, msh_common::perms::READ_TIMEOUT);
        let text = match read {
            Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            Ok(None) => {
                tracing::warn!(
                    "trusted_user_ca_keys {}: cannot read: No such file or directory",
                    path.display()
                );
                continue;
            }
            Err(e) => {
                tracing::warn!(
                    "trusted_user_ca_keys: cannot read: {}",
                    msh_common::Chain(&e)
                );
                continue;
            }
        };
        for (i, line) in text.lines().enumerate() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            match msh_common::keys::parse_public_key_line(t) {
                Ok(k) => cas.push(k),
                Err(why) => tracing::warn!("{}:{}: {why}; line skipped", path.display(), i + 1),
            }
        }
    }
    cas
}

/// `authorized_principals_file` for this user: `Ok(None)` when not configured (then the
/// certificate must name the user), the file otherwise. A configured file that does not
/// exist admits no certificate, as in sshd (`match_principals_file` finds no principal and
/// AuthorizedPrincipalsFile being set requires one).
fn principals_file(
    settings: &Settings,
    account: &Account,
) -> Result<Option<PrincipalsFile>, String> {
    let Some(pattern) = &settings.authorized_principals_file else {
        return Ok(None);
    };
    // sshd's spelling of "not set".
    if pattern == "none" {
        return Ok(None);
    }
    let path = PathBuf::from(expand_tokens(pattern, &account.name, &account.home));
    let text = match read_users_file(settings, account, &path) {
        Ok(Some(text)) => text,
        Ok(None) => {
            return Err(format!(
                "authorized_principals_file {} does not exist: no certificate principal is \
                 authorized for {:?} (sshd refuses too; create the file or unset the key)",
                path.display(),
                account.name
            ))
        }
        Err(e) => {
            return Err(format!(
                "authorized_principals_file {}: {}",
                refusal(&path, &e),
                msh_common::Chain(&e)
            ))
        }
    };
    let file = PrincipalsFile::parse(&path, &text);
    for w in &file.warnings {
        tracing::warn!("{w}; line skipped");
    }
    Ok(Some(file))
}

/// The principals that count for a certificate of a trusted CA, as sshd's
/// `user_cert_trusted_ca`: `authorized_principals_file` first; when it names none of the
/// certificate's principals (or cannot be used), `authorized_principals_command`. `Ok(None)`:
/// neither is configured (the certificate must name the user). With either configured, a
/// certificate must carry a principal one of them lists.
fn principals_for(
    settings: &Settings,
    account: &Account,
    cert: &Certificate,
) -> Result<Option<PrincipalsFile>, String> {
    let from_file = principals_file(settings, account);
    if let Ok(Some(f)) = &from_file {
        if f.find(cert.valid_principals()).is_some() {
            return from_file;
        }
    }
    if let (Err(file_reason), Some(_)) = (&from_file, &settings.authorized_principals_command) {
        tracing::warn!("{file_reason}; trying authorized_principals_command");
    }
    let tokens = super::command::Tokens::cert(account, cert);
    match super::command::principals(settings, account, &tokens) {
        None => from_file,
        Some(Ok(out)) => Ok(Some(out)),
        Some(Err(why)) => Err(match from_file {
            Err(file_reason) => format!("{file_reason}; {why}"),
            Ok(_) => why,
        }),
    }
}

/// Folds the certificate's permissions into authorized_keys-style ones (both must allow).
fn merge(
    cert: &CertPermissions,
    line: Option<&Permissions>,
    source: String,
) -> Result<Permissions, String> {
    let mut p = Permissions {
        pty: cert.pty,
        port_forwarding: cert.port_forwarding,
        agent_forwarding: cert.agent_forwarding,
        x11_forwarding: cert.x11_forwarding,
        user_rc: cert.user_rc,
        forced_command: cert.force_command.clone(),
        environment: Vec::new(),
        permit_open: Vec::new(),
        permit_listen: Vec::new(),
        source,
    };
    if let Some(l) = line {
        p.pty &= l.pty;
        p.port_forwarding &= l.port_forwarding;
        p.agent_forwarding &= l.agent_forwarding;
        p.x11_forwarding &= l.x11_forwarding;
        p.user_rc &= l.user_rc;
        p.environment = l.environment.clone();
        // Certificates carry no permitopen/permitlisten: the line's lists apply.
        p.permit_open = l.permit_open.clone();
        p.permit_listen = l.permit_listen.clone();
        match (&p.forced_command, &l.forced_command) {
            (Some(a), Some(b)) if a != b => {
                // As sshd: two different forced commands are a refusal, not a choice.
                return Err(format!(
                    "certificate force-command {a:?} conflicts with command={b:?} at {}",
                    l.source
                ));
            }
            (None, Some(b)) => p.forced_command = Some(b.clone()),
            _ => {}
        }
    }
    Ok(p)
}

/// Accepts the login with the certificate's permissions folded into those of the line that
/// vouched for it (see [`merge`]) and the user's environment options applied; a conflict
/// between the two is the refusal reason.
fn accept_merged(
    settings: &Settings,
    account: Account,
    info: CertInfo,
    permissions: &CertPermissions,
    line: Option<&Permissions>,
    source: String,
) -> Result<Verdict, String> {
    let perms = merge(permissions, line, source)?;
    Ok(Verdict::Accept {
        account,
        perms: user_environment(settings, perms),
        cert: Some(info),
    })
}

/// The decision for a user certificate whose key signed the request: the user, revocation
/// (the certificate's key, its CA, serial or key id), then either a CA from
/// `trusted_user_ca_keys` (principals: the user, or `authorized_principals_file`) or a
/// `cert-authority` line in the user's authorized_keys (principals: the user, or `principals=`).
pub(crate) fn decide_cert(
    settings: &Settings,
    user: &str,
    cert: &Certificate,
    peer: IpAddr,
    own_uid: Uid,
) -> Verdict {
    let info = CertInfo::of(cert);
    let reject = |reason: String| Verdict::Reject {
        reason,
        cert: Some(info.clone()),
    };
    let account = match check_user(settings, user, own_uid, peer) {
        Ok(a) => a,
        Err(reason) => return reject(reason),
    };
    if let Some(reason) = revoked(settings, |list| list.is_cert_revoked(cert)) {
        return reject(reason);
    }
    let now_secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let ca = PublicKey::new(cert.signature_key().clone(), "");
    let cas = trusted_cas(settings);
    if cas.iter().any(|k| k.key_data() == ca.key_data()) {
        let principals = match principals_for(settings, &account, cert) {
            Ok(p) => p,
            Err(reason) => return reject(reason),
        };
        let names = principals.as_ref().map(|f| f.names());
        let decision = check_user_cert(cert, user, &cas, names.as_deref(), peer, now_secs);
        return match decision {
            CertDecision::Accept {
                info,
                permissions,
                principal,
            } => {
                // Options on the principals-file line apply as an authorized_keys line would:
                // the first line naming one of the certificate's principals decides, and its
                // from= / expiry-time= can refuse (sshd's auth_authorise_keyopts on it).
                let mut line = None;
                if let Some((f, e)) = principals
                    .as_ref()
                    .and_then(|f| f.find(cert.valid_principals()).map(|e| (f, e)))
                {
                    let source = format!("{}:{}", f.path.display(), e.line);
                    if let Err(why) = e.authorise(peer, SystemTime::now()) {
                        return reject(format!("{source}: {why}"));
                    }
                    line = Some(Permissions::from_options(&e.options, source));
                }
                // Name where the principal was listed (a file's or the command's line).
                let at = line
                    .as_ref()
                    .map(|l| format!(" listed at {}", l.source))
                    .unwrap_or_default();
                let source = format!("CA in trusted_user_ca_keys, principal {principal:?}{at}");
                accept_merged(settings, account, info, &permissions, line.as_ref(), source)
                    .unwrap_or_else(reject)
            }
            CertDecision::Reject { reason, .. } => reject(reason),
        };
    }
    // Not a trusted_user_ca_keys CA: a cert-authority line for it may still admit, from the
    // files or, when none does, from authorized_keys_command (run for the certificate).
    let mut files = load_authorized_keys(settings, &account);
    let now = SystemTime::now();
    let by_line = |files: &[msh_common::authorized_keys::AuthorizedKeys]| {
        authorize_cert_authority(files, &ca, cert.valid_principals(), user, peer, now)
    };
    let mut decision = by_line(&files);
    let mut failed = None;
    if let AuthDecision::Reject(_) = decision {
        let tokens = super::command::Tokens::cert(&account, cert);
        match super::command::authorized_keys(settings, &account, &tokens) {
            None => {}
            Some(Ok(out)) => {
                files.push(out);
                decision = by_line(&files);
            }
            Some(Err(why)) => failed = Some(why),
        }
    }
    let line = match decision {
        AuthDecision::Accept(p) => p,
        AuthDecision::Reject(_) if files.is_empty() => {
            return reject(super::with_failure(
                format!(
                    "{}, and {}",
                    not_trusted(settings, &info.ca_fingerprint),
                    no_files(settings, &account)
                ),
                failed,
            ));
        }
        AuthDecision::Reject(reason) => {
            return reject(super::with_failure(
                format!("{reason}; {}", not_trusted(settings, &info.ca_fingerprint)),
                failed,
            ))
        }
    };
    // The line vouched for the principals; the certificate itself must still be valid now,
    // of user type, correctly signed, with acceptable critical options.
    let all: Vec<String> = cert.valid_principals().to_vec();
    match check_user_cert(
        cert,
        user,
        std::slice::from_ref(&ca),
        Some(&all),
        peer,
        now_secs,
    ) {
        CertDecision::Accept {
            info, permissions, ..
        } => {
            let source = format!("cert-authority at {}", line.source);
            accept_merged(settings, account, info, &permissions, Some(&line), source)
                .unwrap_or_else(reject)
        }
        CertDecision::Reject { reason, .. } => reject(reason),
    }
}
