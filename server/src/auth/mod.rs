//! The user-authentication policy, separate from the SSH plumbing (`crate::handler::auth`);
//! user certificates (trusted_user_ca_keys, principals, revocation) are in [`cert`].
//!
//! Order of decisions for one verified key: who the user is (unprivileged mode: only the user
//! running mshd; root mode: any local user, allow_users/deny_users), then the user's
//! authorized_keys files (expanded from `authorized_keys_files`, each checked with
//! strict_modes, malformed lines skipped with a warning naming path:line, never modified),
//! then `msh_common::authorized_keys::authorize` for the key, the peer address and the clock;
//! when no file admits the key, `authorized_keys_command`'s output the same way ([`command`]).
#![forbid(unsafe_code)]

use std::ffi::CString;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::SystemTime;

use msh_common::authorized_keys::{
    authorize, expand_tokens, match_from, AuthDecision, AuthorizedKeys, FromMatch, Permissions,
};
use msh_common::certs::CertInfo;
use msh_common::pattern::{match_list, ListMatch};
use msh_common::revocation::RevocationList;
use nix::unistd::{Gid, Uid, User};
use russh::keys::PublicKey;

use crate::config::Settings;

mod cert;
mod command;

pub(crate) use self::cert::decide_cert;

/// A local account, as read from the passwd database.
#[derive(Debug, Clone)]
pub(crate) struct Account {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
    pub home: PathBuf,
    /// Login shell (`/bin/sh` when the passwd entry has none).
    pub shell: PathBuf,
    /// Supplementary groups (getgrouplist), used by the root-mode privilege drop.
    pub groups: Vec<Gid>,
    /// The passwd entry's own password field starts with `!` (locked; see crate::shadow).
    pub passwd_locked: bool,
}

/// The outcome of checking one verified key or certificate for one user.
#[derive(Debug, Clone)]
// One per authentication attempt, moved once into the handler: boxing buys nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Verdict {
    Accept {
        account: Account,
        perms: Permissions,
        /// Set for a certificate login: key id, serial, CA fingerprint (for the log).
        cert: Option<CertInfo>,
    },
    /// Refused, with a reason for the log (never sent to the client).
    Reject {
        reason: String,
        cert: Option<CertInfo>,
    },
}

impl Verdict {
    fn reject(reason: impl Into<String>) -> Self {
        Verdict::Reject {
            reason: reason.into(),
            cert: None,
        }
    }
}

/// A client-sent user name for a log line: quoted, escaped and capped (crate::logsafe).
fn quoted(name: &str) -> String {
    format!("\"{}\"", crate::logsafe::user(name))
}

/// Looks a user up (getpwnam + getgrouplist). Blocking: call it off the event loop.
pub(crate) fn lookup_account(name: &str) -> Result<Option<Account>, String> {
    let user = match User::from_name(name) {
        Ok(Some(u)) => u,
        Ok(None) => return Ok(None),
        Err(e) => return Err(format!("cannot look up user {}: {e}", quoted(name))),
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
        passwd_locked: user.passwd.as_bytes().starts_with(b"!"),
    }))
}

/// Whether `name` may log in at all, before any key is looked at.
pub(crate) fn check_user(
    settings: &Settings,
    name: &str,
    own_uid: Uid,
    peer: IpAddr,
) -> Result<Account, String> {
    let shown = quoted(name);
    let account = lookup_account(name)?.ok_or_else(|| format!("no such local user {shown}"))?;
    // As sshd's allowed_user: the lists match the account's own name (pw_name), which an
    // NSS source may spell differently from what the client sent, never the raw request.
    let peer = msh_common::authorized_keys::policy::canonical_peer(peer);
    if users_match(&settings.deny_users, &account.name, peer) {
        return Err(format!(
            "user {} from {peer} is in deny_users",
            quoted(&account.name)
        ));
    }
    if !settings.allow_users.is_empty() && !users_match(&settings.allow_users, &account.name, peer)
    {
        return Err(format!(
            "user {} from {peer} is not in allow_users",
            quoted(&account.name)
        ));
    }
    if !settings.root_mode && account.uid != own_uid {
        return Err(format!(
            "mshd runs unprivileged (uid {own_uid}) and serves only its own user; {shown} is uid {}",
            account.uid
        ));
    }
    account_enabled(settings, &account)?;
    Ok(account)
}

/// Whether `user` connecting from `peer` matches `list` (allow_users / deny_users): entries
/// without `@` together form one OpenSSH pattern list (`*`, `?`, `!`) over the user name; an
/// entry `USER@HOSTS` (sshd's `match_user`) matches when USER matches the name and HOSTS (a
/// `from=`-style list of addresses, CIDR networks and address patterns; no DNS, as UseDNS
/// no) admits the peer. Host lists were validated when the config was read.
fn users_match(list: &[String], user: &str, peer: IpAddr) -> bool {
    let plain: Vec<&str> = list
        .iter()
        .filter(|e| !e.contains('@'))
        .map(String::as_str)
        .collect();
    if !plain.is_empty() && match_list(user, &plain.join(","), false) == ListMatch::Matched {
        return true;
    }
    list.iter()
        .filter_map(|e| e.rsplit_once('@'))
        .any(|(u, hosts)| {
            match_list(user, u, false) == ListMatch::Matched
                && match_from(hosts, peer) == FromMatch::Admit
        })
}

/// sshd without PAM: an expired or locked account may not log in (crate::shadow). Only root
/// can read /etc/shadow; unprivileged, the passwd field alone decides.
fn account_enabled(settings: &Settings, account: &Account) -> Result<(), String> {
    let entry = if settings.root_mode {
        crate::shadow::lookup(std::path::Path::new("/etc/shadow"), &account.name)
            .map_err(|e| format!("cannot check whether {:?} is disabled: {e}", account.name))?
    } else {
        None
    };
    let today = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| (d.as_secs() / 86_400) as i64)
        .unwrap_or(0);
    if let Some(reason) =
        crate::shadow::refusal(&account.name, entry.as_ref(), account.passwd_locked, today)
    {
        return Err(reason);
    }
    // sshd's allowed_user also refuses an account whose login shell does not exist or has no
    // execute bit at all: nothing could run for it.
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(&account.shell) {
        Err(e) => Err(format!(
            "user {:?} not allowed: login shell {} does not exist ({e})",
            account.name,
            account.shell.display()
        )),
        Ok(m) if m.permissions().mode() & 0o111 == 0 => Err(format!(
            "user {:?} not allowed: login shell {} is not executable",
            account.name,
            account.shell.display()
        )),
        Ok(_) => Ok(()),
    }
}

/// Largest revoked_keys list read (a KRL or text list of many thousands of keys fits).
const MAX_REVOKED_KEYS: u64 = 64 << 20;
/// Largest trusted_user_ca_keys file read (a few CA keys).
const MAX_CA_FILE: u64 = 1 << 20;

/// How mshd (root) reads a user's file. sshd opens authorized_keys and the principals file
/// as the user; mshd, one multi-threaded process that cannot switch uid per file safely,
/// reads as root and checks on the opened descriptors what the user could read (every
/// directory searchable, the file readable), strict_modes, the file type (never a FIFO or
/// device), a size cap and a time limit (`msh_common::perms::read_file_as`). This stops a
/// user from pointing `~/.ssh/authorized_keys` at a root-only file such as /etc/shadow (its
/// lines would be echoed in parse warnings), at a FIFO (a blocked thread per key offer) or at
/// a huge sparse file (gigabytes read per key offer).
fn reader_for(settings: &Settings, account: &Account) -> msh_common::perms::Reader {
    let mut gids: Vec<u32> = account.groups.iter().map(|g| g.as_raw()).collect();
    gids.push(account.gid.as_raw());
    msh_common::perms::Reader {
        uid: account.uid.as_raw(),
        gids,
        home: account.home.clone(),
        strict_modes: settings.strict_modes,
        check_access: true,
    }
}

/// Reads a user's file (`Ok(None)`: absent), with the checks of [`reader_for`].
fn read_users_file(
    settings: &Settings,
    account: &Account,
    path: &std::path::Path,
) -> msh_common::Result<Option<String>> {
    let who = reader_for(settings, account);
    let bytes = msh_common::perms::read_file_as(
        path,
        &who,
        msh_common::perms::MAX_USER_FILE,
        msh_common::perms::READ_TIMEOUT,
    )?;
    // Invalid UTF-8 spoils only the lines it is on, not the file.
    Ok(bytes.map(|b| String::from_utf8_lossy(&b).into_owned()))
}

/// Reads the user's authorized_keys files, skipping (with a warning) files that fail
/// strict_modes or the other checks of [`reader_for`] and lines that do not parse.
/// Blocking: call it off the event loop.
pub(crate) fn load_authorized_keys(settings: &Settings, account: &Account) -> Vec<AuthorizedKeys> {
    let mut files = Vec::new();
    for pattern in &settings.authorized_keys_files {
        let path = PathBuf::from(expand_tokens(pattern, &account.name, &account.home));
        match read_users_file(settings, account, &path) {
            Ok(None) => tracing::debug!("authorized_keys {}: absent", path.display()),
            Ok(Some(text)) => {
                let ak = AuthorizedKeys::parse(&path, &text);
                for w in ak.warnings() {
                    tracing::warn!("{w}; line skipped");
                }
                files.push(ak);
            }
            Err(e) => tracing::warn!(
                "authorized_keys {}: {}",
                refusal(&path, &e),
                msh_common::Chain(&e)
            ),
        }
    }
    files
}

/// "PATH refused" or "PATH refused by strict_modes", for the log line of a refused file.
fn refusal(path: &std::path::Path, e: &msh_common::Error) -> String {
    match e {
        msh_common::Error::Permissions { reason, .. }
            if reason.starts_with("bad ownership or modes") =>
        {
            format!("{} refused by strict_modes", path.display())
        }
        _ => format!("{} refused", path.display()),
    }
}

/// `revoked_keys`, read at each login like authorized_keys. Fails closed, as sshd: a list
/// that cannot be read or parsed refuses every key, with the reason.
fn revocation(settings: &Settings) -> Result<Option<RevocationList>, String> {
    let Some(path) = &settings.revoked_keys else {
        return Ok(None);
    };
    let unusable =
        |e: String| format!("revoked_keys unusable, refusing every key until it is fixed: {e}");
    let data = msh_common::perms::read_config_file(
        path,
        MAX_REVOKED_KEYS,
        msh_common::perms::READ_TIMEOUT,
    )
    .map_err(|e| unusable(msh_common::Chain(&e).to_string()))?
    .ok_or_else(|| unusable(format!("{}: No such file or directory", path.display())))?;
    RevocationList::parse(path, &data)
        .map(Some)
        .map_err(|e| unusable(msh_common::Chain(&e).to_string()))
}

/// Why `revoked_keys` refuses this login: the list is unusable (failing closed), or `find`
/// names the key or certificate in it.
fn revoked<W: std::fmt::Display>(
    settings: &Settings,
    find: impl FnOnce(&RevocationList) -> Option<W>,
) -> Option<String> {
    match revocation(settings) {
        Err(reason) => Some(reason),
        Ok(Some(list)) => find(&list).map(|why| why.to_string()),
        Ok(None) => None,
    }
}

/// The whole decision for a plain key whose signature russh has verified: the user, then
/// revocation, then authorized_keys.
pub(crate) fn decide(
    settings: &Settings,
    user: &str,
    key: &PublicKey,
    peer: IpAddr,
    own_uid: Uid,
) -> Verdict {
    let account = match check_user(settings, user, own_uid, peer) {
        Ok(a) => a,
        Err(reason) => return Verdict::reject(reason),
    };
    if let Some(reason) = revoked(settings, |list| list.is_revoked(key)) {
        return Verdict::reject(reason);
    }
    let mut files = load_authorized_keys(settings, &account);
    let now = SystemTime::now();
    let mut decision = authorize(&files, key, peer, now);
    // As sshd: authorized_keys_command runs only when no file admits the key.
    let mut failed = None;
    if let AuthDecision::Reject(_) = decision {
        match command::authorized_keys(settings, &account, &command::Tokens::key(&account, key)) {
            None => {}
            Some(Ok(out)) => {
                files.push(out);
                decision = authorize(&files, key, peer, now);
            }
            Some(Err(why)) => failed = Some(why),
        }
    }
    match decision {
        AuthDecision::Accept(perms) => Verdict::Accept {
            account,
            perms: user_environment(settings, perms),
            cert: None,
        },
        AuthDecision::Reject(reason) => {
            let reason = if files.is_empty() {
                no_files(settings, &account)
            } else {
                reason
            };
            Verdict::reject(with_failure(reason, failed))
        }
    }
}

/// A refusal's reason, followed by why the identity command admitted nobody, if it failed.
fn with_failure(reason: String, failed: Option<String>) -> String {
    match failed {
        Some(why) => format!("{reason}; {why}"),
        None => reason,
    }
}

/// At the offer stage (no signature yet): `Some(reason)` when this key can certainly not log
/// in, so the client is not asked to sign with it (which could mean a passphrase prompt or a
/// token touch for nothing). Never accepts anything: the decision is made again, in full,
/// once a signature verified. As the offered key may be a certificate's inner key (russh shows
/// no difference here), a key is only refused when no certificate could help: no
/// `trusted_user_ca_keys` and no `cert-authority` line.
pub(crate) fn screen_offer(
    settings: &Settings,
    user: &str,
    key: &PublicKey,
    peer: IpAddr,
    own_uid: Uid,
) -> Option<String> {
    // When a certificate could be on offer, everything waits for the signed request: only
    // there does russh show the certificate, so that its refusal is logged with its key id,
    // serial and CA rather than as a plain key (the cost: one signature by a revoked key).
    // This comes before the user is looked at: answering PK_OK for an existing user and
    // FAILURE for a missing one would tell who has an account (sshd, which sees the
    // certificate at the offer, answers both alike too).
    if !settings.trusted_user_ca_keys.is_empty() {
        return None;
    }
    let account = match check_user(settings, user, own_uid, peer) {
        Ok(a) => a,
        Err(reason) => return Some(reason),
    };
    let files = load_authorized_keys(settings, &account);
    if files
        .iter()
        .any(|f| f.entries().any(|e| e.options.cert_authority))
    {
        return None;
    }
    if let Some(reason) = revoked(settings, |list| list.is_revoked(key)) {
        return Some(reason);
    }
    let now = SystemTime::now();
    let reason = match authorize(&files, key, peer, now) {
        AuthDecision::Accept(_) => return None,
        AuthDecision::Reject(_) if files.is_empty() => no_files(settings, &account),
        AuthDecision::Reject(reason) => reason,
    };
    // The command runs at the offer too (sshd does as well). It sees the offered key: should
    // that be a certificate's key, only a cert-authority line it prints lets the offer go on.
    match command::authorized_keys(settings, &account, &command::Tokens::key(&account, key)) {
        None => Some(reason),
        Some(Err(why)) => Some(with_failure(reason, Some(why))),
        Some(Ok(out)) => {
            if out.entries().any(|e| e.options.cert_authority) {
                return None;
            }
            match authorize(std::slice::from_ref(&out), key, peer, now) {
                AuthDecision::Accept(_) => None,
                AuthDecision::Reject(why) => Some(format!("{reason}; {why}")),
            }
        }
    }
}

fn no_files(settings: &Settings, account: &Account) -> String {
    format!(
        "no usable authorized_keys file for {:?} (looked at {})",
        account.name,
        settings
            .authorized_keys_files
            .iter()
            .map(|p| expand_tokens(p, &account.name, &account.home))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Variables an `environment=` option never sets, even with `permit_user_environment`: they
/// make the dynamic loader, a shell or an interpreter run code of the user's choosing before a
/// forced command (`LD_PRELOAD`, `BASH_ENV`...), and the line may come from a file the user
/// writes (authorized_keys, a principals file under `%h`) while the forced command comes from
/// the CA or the administrator.
pub(crate) const NEVER_FROM_OPTIONS: &[&str] = &[
    "LD_*",
    "GLIBC_TUNABLES",
    "BASH_ENV",
    "ENV",
    "BASH_FUNC_*",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
    "IFS",
    "PROMPT_COMMAND",
    "ZDOTDIR",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONHOME",
    "PERL5LIB",
    "PERL5OPT",
    "PERLLIB",
    "RUBYOPT",
    "RUBYLIB",
    "NODE_OPTIONS",
];

/// Keeps the `environment=` pairs `permit_user_environment` allows (sshd's
/// PermitUserEnvironment: off by default; `true`; or a pattern list matched against the name)
/// and that are not in [`NEVER_FROM_OPTIONS`]; logs each one dropped, by name only (values
/// may be secrets).
fn user_environment(settings: &Settings, mut perms: Permissions) -> Permissions {
    use crate::config::PermitUserEnvironment as P;
    if perms.environment.is_empty() {
        return perms;
    }
    let source = perms.source.clone();
    perms.environment.retain(|(name, _)| {
        // From a file the user writes: shown escaped, as every such string in the log.
        let shown = name.escape_debug();
        let permitted = match &settings.permit_user_environment {
            P::All(on) => *on,
            P::Names(list) => match_list(name, &list.join(","), false) == ListMatch::Matched,
        };
        if !permitted {
            tracing::info!(
                "environment=\"{shown}=...\" at {source} ignored: permit_user_environment does not allow it"
            );
            return false;
        }
        if NEVER_FROM_OPTIONS
            .iter()
            .any(|p| msh_common::pattern::glob_match(name, p))
        {
            tracing::warn!(
                "environment=\"{shown}=...\" at {source} ignored: {shown} is never set from an option (loader or shell start-up variable)"
            );
            return false;
        }
        true
    });
    perms
}
