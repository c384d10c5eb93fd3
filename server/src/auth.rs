//! The user-authentication policy, separate from the SSH plumbing so that user certificates
//! (trusted_user_ca_keys, principals, revocation) can slot in beside authorized_keys.
//!
//! Order of decisions for one verified key: who the user is (unprivileged mode: only the user
//! running mshd; root mode: any local user, allow_users/deny_users), then the user's
//! authorized_keys files (expanded from `authorized_keys_files`, each checked with
//! strict_modes, malformed lines skipped with a warning naming path:line, never modified),
//! then `msh_common::authorized_keys::authorize` for the key, the peer address and the clock.
#![forbid(unsafe_code)]

use std::ffi::CString;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::SystemTime;

use msh_common::authorized_keys::{
    authorize, expand_tokens, AuthDecision, AuthorizedKeys, Permissions,
};
use msh_common::pattern::{match_list, ListMatch};
use nix::unistd::{Gid, Uid, User};
use russh::keys::PublicKey;

use crate::config::Settings;

/// A local account, as read from the passwd database.
#[derive(Debug, Clone)]
pub struct Account {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
    pub home: PathBuf,
    /// Login shell (`/bin/sh` when the passwd entry has none).
    pub shell: PathBuf,
    /// Supplementary groups (getgrouplist), used by the root-mode privilege drop.
    pub groups: Vec<Gid>,
}

/// The outcome of checking one verified key for one user.
#[derive(Debug, Clone)]
pub enum Verdict {
    Accept {
        account: Account,
        perms: Permissions,
    },
    /// Refused, with a reason for the log (never sent to the client).
    Reject(String),
}

/// Looks a user up (getpwnam + getgrouplist). Blocking: call it off the event loop.
pub fn lookup_account(name: &str) -> Result<Option<Account>, String> {
    let user = match User::from_name(name) {
        Ok(Some(u)) => u,
        Ok(None) => return Ok(None),
        Err(e) => return Err(format!("cannot look up user {name:?}: {e}")),
    };
    let groups = match CString::new(name) {
        Ok(c) => nix::unistd::getgrouplist(&c, user.gid)
            .map_err(|e| format!("cannot read the groups of {name:?}: {e}"))?,
        Err(_) => return Ok(None),
    };
    let shell = if user.shell.as_os_str().is_empty() {
        PathBuf::from("/bin/sh")
    } else {
        user.shell.clone()
    };
    Ok(Some(Account {
        name: user.name,
        uid: user.uid,
        gid: user.gid,
        home: user.dir,
        shell,
        groups,
    }))
}

/// Whether `name` may log in at all, before any key is looked at.
pub fn check_user(settings: &Settings, name: &str, own_uid: Uid) -> Result<Account, String> {
    if !settings.deny_users.is_empty()
        && match_list(name, &settings.deny_users.join(","), false) == ListMatch::Matched
    {
        return Err(format!("user {name:?} is in deny_users"));
    }
    if !settings.allow_users.is_empty()
        && match_list(name, &settings.allow_users.join(","), false) != ListMatch::Matched
    {
        return Err(format!("user {name:?} is not in allow_users"));
    }
    let account = lookup_account(name)?.ok_or_else(|| format!("no such local user {name:?}"))?;
    if !settings.root_mode && account.uid != own_uid {
        return Err(format!(
            "mshd runs unprivileged (uid {own_uid}) and serves only its own user; {name:?} is uid {}",
            account.uid
        ));
    }
    Ok(account)
}

/// Reads the user's authorized_keys files, skipping (with a warning) files that fail
/// strict_modes and lines that do not parse. Blocking: call it off the event loop.
pub fn load_authorized_keys(settings: &Settings, account: &Account) -> Vec<AuthorizedKeys> {
    let mut files = Vec::new();
    for pattern in &settings.authorized_keys_files {
        let path = PathBuf::from(expand_tokens(pattern, &account.name, &account.home));
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::debug!("authorized_keys {}: absent", path.display());
                continue;
            }
            Err(e) => {
                tracing::warn!("authorized_keys {}: cannot read: {e}", path.display());
                continue;
            }
            Ok(_) => {}
        }
        if settings.strict_modes {
            if let Err(e) =
                msh_common::perms::check_strict_modes(&path, account.uid.as_raw(), &account.home)
            {
                tracing::warn!(
                    "authorized_keys {} refused by strict_modes: {e}",
                    path.display()
                );
                continue;
            }
        }
        match AuthorizedKeys::load(&path) {
            Ok(ak) => {
                for w in ak.warnings() {
                    tracing::warn!("{w}; line skipped");
                }
                files.push(ak);
            }
            Err(e) => tracing::warn!("authorized_keys: {e}"),
        }
    }
    files
}

/// The whole decision for a key whose signature russh has verified.
pub fn decide(
    settings: &Settings,
    user: &str,
    key: &PublicKey,
    peer: IpAddr,
    own_uid: Uid,
) -> Verdict {
    let account = match check_user(settings, user, own_uid) {
        Ok(a) => a,
        Err(reason) => return Verdict::Reject(reason),
    };
    let files = load_authorized_keys(settings, &account);
    if files.is_empty() {
        return Verdict::Reject(format!(
            "no usable authorized_keys file for {user:?} (looked at {})",
            settings
                .authorized_keys_files
                .iter()
                .map(|p| expand_tokens(p, &account.name, &account.home))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    match authorize(&files, key, peer, SystemTime::now()) {
        AuthDecision::Accept(perms) => Verdict::Accept { account, perms },
        AuthDecision::Reject(reason) => Verdict::Reject(reason),
    }
}
