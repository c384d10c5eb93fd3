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
    authorize, authorize_cert_authority, expand_tokens, match_from, AuthDecision, AuthorizedKeys,
    FromMatch, Permissions,
};
use msh_common::certs::{check_user_cert, CertDecision, CertInfo, CertPermissions, PrincipalsFile};
use msh_common::pattern::{match_list, ListMatch};
use msh_common::revocation::RevocationList;
use nix::unistd::{Gid, Uid, User};
use russh::keys::{Certificate, PublicKey};

use crate::config::Settings;

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
    match revocation(settings) {
        Err(reason) => return Verdict::reject(reason),
        Ok(Some(list)) => {
            if let Some(why) = list.is_revoked(key) {
                return Verdict::reject(why.to_string());
            }
        }
        Ok(None) => {}
    }
    let files = load_authorized_keys(settings, &account);
    if files.is_empty() {
        return Verdict::reject(no_files(settings, &account));
    }
    match authorize(&files, key, peer, SystemTime::now()) {
        AuthDecision::Accept(perms) => Verdict::Accept {
            account,
            perms: user_environment(settings, perms),
            cert: None,
        },
        AuthDecision::Reject(reason) => Verdict::reject(reason),
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
    match revocation(settings) {
        Err(reason) => return Some(reason),
        Ok(Some(list)) => {
            if let Some(why) = list.is_revoked(key) {
                return Some(why.to_string());
            }
        }
        Ok(None) => {}
    }
    if files.is_empty() {
        return Some(no_files(settings, &account));
    }
    match authorize(&files, key, peer, SystemTime::now()) {
        AuthDecision::Accept(_) => None,
        AuthDecision::Reject(reason) => Some(reason),
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
        source,
    };
    if let Some(l) = line {
        p.pty &= l.pty;
        p.port_forwarding &= l.port_forwarding;
        p.agent_forwarding &= l.agent_forwarding;
        p.x11_forwarding &= l.x11_forwarding;
        p.user_rc &= l.user_rc;
        p.environment = l.environment.clone();
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
    match revocation(settings) {
        Err(reason) => return reject(reason),
        Ok(Some(list)) => {
            if let Some(why) = list.is_cert_revoked(cert) {
                return reject(why.to_string());
            }
        }
        Ok(None) => {}
    }
    let now_secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let ca = PublicKey::new(cert.signature_key().clone(), "");
    let cas = trusted_cas(settings);
    if cas.iter().any(|k| k.key_data() == ca.key_data()) {
        let principals = match principals_file(settings, &account) {
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
                match merge(
                    &permissions,
                    line.as_ref(),
                    format!("CA in trusted_user_ca_keys, principal {principal:?}"),
                ) {
                    Ok(perms) => Verdict::Accept {
                        account,
                        perms: user_environment(settings, perms),
                        cert: Some(info),
                    },
                    Err(reason) => reject(reason),
                }
            }
            CertDecision::Reject { reason, .. } => reject(reason),
        };
    }
    // Not a trusted_user_ca_keys CA: a cert-authority line for it may still admit.
    let files = load_authorized_keys(settings, &account);
    if files.is_empty() {
        return reject(format!(
            "{}, and {}",
            not_trusted(settings, &info.ca_fingerprint),
            no_files(settings, &account)
        ));
    }
    let line = match authorize_cert_authority(
        &files,
        &ca,
        cert.valid_principals(),
        user,
        peer,
        SystemTime::now(),
    ) {
        AuthDecision::Accept(p) => p,
        AuthDecision::Reject(reason) => {
            return reject(format!(
                "{reason}; {}",
                not_trusted(settings, &info.ca_fingerprint)
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
        } => match merge(
            &permissions,
            Some(&line),
            format!("cert-authority at {}", line.source),
        ) {
            Ok(perms) => Verdict::Accept {
                account,
                perms: user_environment(settings, perms),
                cert: Some(info),
            },
            Err(reason) => reject(reason),
        },
        CertDecision::Reject { reason, .. } => reject(reason),
    }
}
