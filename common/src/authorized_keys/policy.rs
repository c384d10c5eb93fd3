//! Decides whether a key may log in, and with which restrictions (OpenSSH `auth2-pubkey.c`
//! `check_authkeys_file` + `auth_authorise_keyopts`, with UseDNS=no).
//!
//! Entries are tried in file order, files in the order given; the first entry for the key whose
//! `from=` admits the peer and whose `expiry-time=` has not passed decides. An entry that
//! refuses does not end the search: a later line for the same key may still admit it.

use std::net::IpAddr;
use std::path::Path;
use std::time::SystemTime;

use russh::keys::PublicKey;

use super::{AuthorizedKey, AuthorizedKeys, KeyOptions};
use crate::pattern::{glob_match, match_list, ListMatch};

/// What a session authenticated by this key may do (after `restrict` and friends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    pub pty: bool,
    pub port_forwarding: bool,
    pub agent_forwarding: bool,
    pub x11_forwarding: bool,
    pub user_rc: bool,
    /// `command=`: runs instead of what the client asked (which goes in SSH_ORIGINAL_COMMAND).
    pub forced_command: Option<String>,
    /// `environment=` pairs.
    pub environment: Vec<(String, String)>,
    /// `permitopen="host:port"` values: when not empty, the only targets a local forward
    /// (`direct-tcpip`) may reach (OpenSSH's auth-options.c).
    pub permit_open: Vec<String>,
    /// `permitlisten="[host:]port"` values: when not empty, the only addresses a remote
    /// forward (`tcpip-forward`) may listen on.
    pub permit_listen: Vec<String>,
    /// Where the permission came from, `path:line`, for the log.
    pub source: String,
}

impl Permissions {
    /// The permissions an entry's options grant; `source` is its `path:line`.
    pub fn from_options(options: &KeyOptions, source: String) -> Self {
        let a = options.allowed();
        Permissions {
            pty: a.pty,
            port_forwarding: a.port_forwarding,
            agent_forwarding: a.agent_forwarding,
            x11_forwarding: a.x11_forwarding,
            user_rc: a.user_rc,
            forced_command: options.command.clone(),
            environment: options.environment.clone(),
            permit_open: options.permitopen.clone(),
            permit_listen: options.permitlisten.clone(),
            source,
        }
    }
}

/// The outcome for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthDecision {
    Accept(Permissions),
    /// Refused, with the reason for the log (e.g. "key not in authorized_keys",
    /// "path:line: from= does not admit 10.0.0.9", "path:line: expired").
    Reject(String),
}

/// First matching, admitting entry wins. `cert-authority` entries never match a plain key.
pub fn authorize(
    files: &[AuthorizedKeys],
    key: &PublicKey,
    peer: IpAddr,
    now: SystemTime,
) -> AuthDecision {
    decide(
        files,
        |e| !e.options.cert_authority && e.key.key_data() == key.key_data(),
        |_| Ok(()),
        peer,
        now,
    )
    .unwrap_or_else(|| AuthDecision::Reject(format!("key not in {}", list_paths(files))))
}

/// For a user certificate signed by `ca`: the first `cert-authority` entry for that CA that
/// admits the peer (from=, expiry-time=) and whose `principals=` names one of the
/// certificate's principals (without `principals=`, the certificate must name `user`) gives
/// `Accept`. The certificate's own signature, validity, type and critical options are the
/// caller's to check.
pub fn authorize_cert_authority(
    files: &[AuthorizedKeys],
    ca: &PublicKey,
    cert_principals: &[String],
    user: &str,
    peer: IpAddr,
    now: SystemTime,
) -> AuthDecision {
    decide(
        files,
        |e| e.options.cert_authority && e.key.key_data() == ca.key_data(),
        |o| match &o.principals {
            Some(list) => {
                if cert_principals
                    .iter()
                    .any(|p| list.split(',').any(|allowed| allowed == p))
                {
                    Ok(())
                } else {
                    Err(format!(
                        "certificate principals [{}] not in principals=\"{list}\"",
                        cert_principals.join(",")
                    ))
                }
            }
            None if cert_principals.iter().any(|p| p == user) => Ok(()),
            None => Err(format!(
                "certificate principals [{}] do not include user {user}",
                cert_principals.join(",")
            )),
        },
        peer,
        now,
    )
    .unwrap_or_else(|| {
        AuthDecision::Reject(format!(
            "CA {} not listed with cert-authority in {}",
            ca.fingerprint(russh::keys::HashAlg::Sha256),
            list_paths(files)
        ))
    })
}

/// Walks the entries selected by `wanted`; `None` when no entry was for this key.
fn decide(
    files: &[AuthorizedKeys],
    wanted: impl Fn(&AuthorizedKey) -> bool,
    extra: impl Fn(&KeyOptions) -> Result<(), String>,
    peer: IpAddr,
    now: SystemTime,
) -> Option<AuthDecision> {
    let mut refusals = Vec::new();
    for file in files {
        for entry in file.entries().filter(|e| wanted(e)) {
            let source = format!("{}:{}", file.path.display(), entry.line);
            match check_entry(&entry.options, peer, now).and_then(|()| extra(&entry.options)) {
                Ok(()) => {
                    return Some(AuthDecision::Accept(Permissions::from_options(
                        &entry.options,
                        source,
                    )))
                }
                Err(why) => refusals.push(format!("{source}: {why}")),
            }
        }
    }
    if refusals.is_empty() {
        None
    } else {
        Some(AuthDecision::Reject(refusals.join("; ")))
    }
}

fn list_paths(files: &[AuthorizedKeys]) -> String {
    if files.is_empty() {
        return "any authorized_keys file (none given)".to_string();
    }
    files
        .iter()
        .map(|f| f.path.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The per-entry checks OpenSSH's `auth_authorise_keyopts` makes: expiry, then from=.
pub(crate) fn check_entry(
    options: &KeyOptions,
    peer: IpAddr,
    now: SystemTime,
) -> Result<(), String> {
    if let Some(expiry) = options.expiry_time {
        if expiry < now {
            return Err(format!("entry expired at {}", format_time(expiry)));
        }
    }
    if let Some(from) = &options.from {
        let peer = canonical_peer(peer);
        match match_from(from, peer) {
            FromMatch::Admit => {}
            FromMatch::Refuse => {
                return Err(format!("from=\"{from}\" does not admit {peer}"));
            }
            FromMatch::Invalid(why) => {
                return Err(format!("from=\"{from}\" is invalid ({why}); refusing"));
            }
        }
    }
    Ok(())
}

fn format_time(t: SystemTime) -> String {
    match jiff::Timestamp::try_from(t) {
        Ok(ts) => ts.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        Err(_) => format!("{t:?}"),
    }
}

/// sshd sees an IPv4 client on a dual-stack socket as `::ffff:a.b.c.d` and matches it as
/// `a.b.c.d`.
pub fn canonical_peer(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Outcome of a `from=` list against a peer address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromMatch {
    Admit,
    Refuse,
    /// The list is malformed (empty entry, bad network): OpenSSH refuses the entry.
    Invalid(String),
}

/// OpenSSH's `match_host_and_ip` with UseDNS=no, where the "host name" is the address text:
/// each entry is an address pattern (`*`/`?` over the address text), a CIDR network, or a
/// host-name pattern (which only `*`-style globs can match without DNS); a matching `!` entry
/// refuses whatever else matched. An IPv4-mapped IPv6 peer is matched as IPv4.
pub fn match_from(patterns: &str, peer: IpAddr) -> FromMatch {
    let peer = canonical_peer(peer);
    let text = peer.to_string();
    let ip = match addr_match_list(peer, &text, patterns) {
        Ok(m) => m,
        Err(why) => return FromMatch::Invalid(why),
    };
    if ip == ListMatch::Negated {
        return FromMatch::Refuse;
    }
    match match_list(&text, patterns, true) {
        ListMatch::Negated => FromMatch::Refuse,
        ListMatch::NoMatch if ip == ListMatch::NoMatch => FromMatch::Refuse,
        _ => FromMatch::Admit,
    }
}

/// OpenSSH's `addr_match_list`: CIDR entries compared as networks, the rest as globs over
/// the address text.
fn addr_match_list(peer: IpAddr, text: &str, patterns: &str) -> Result<ListMatch, String> {
    let mut result = ListMatch::NoMatch;
    for item in patterns.split(',') {
        let (negated, pat) = match item.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, item),
        };
        if pat.is_empty() {
            return Err("empty entry".to_string());
        }
        let matched = match parse_network(pat)? {
            Some(net) => net.contains(&peer),
            None => glob_match(text, pat),
        };
        if matched {
            if negated {
                return Ok(ListMatch::Negated);
            }
            result = ListMatch::Matched;
        }
    }
    Ok(result)
}

/// `Some(net)` for an address or CIDR, `None` for anything else (a pattern or host name).
/// An entry with a `/` that is not a valid network is an error: OpenSSH refuses host bits
/// set and over-long masks; msh refuses every other malformed network too, rather than
/// treating it as a pattern that can never match.
fn parse_network(pat: &str) -> Result<Option<ipnet::IpNet>, String> {
    let Some((addr, mask)) = pat.split_once('/') else {
        return Ok(pat.parse::<IpAddr>().ok().map(ipnet::IpNet::from));
    };
    let bad = |why: &str| Err(format!("bad network \"{pat}\": {why}"));
    let Ok(addr) = addr.parse::<IpAddr>() else {
        return bad("not an IP address before '/'");
    };
    if mask.is_empty() || !mask.chars().all(|c| c.is_ascii_digit()) {
        return bad("mask is not a number");
    }
    let Ok(len) = mask.parse::<u8>() else {
        return bad("mask too long");
    };
    let Ok(net) = ipnet::IpNet::new(addr, len) else {
        return bad("mask too long for the address family");
    };
    if net.network() != addr {
        return bad(&format!(
            "address has host bits set (did you mean {}?)",
            net.trunc()
        ));
    }
    Ok(Some(net))
}

/// Expands `authorized_keys_files` tokens: `%h` home, `%u` user, `%%` a percent sign. A
/// relative result is relative to home, as in sshd. An unknown token is left as written
/// (use `try_expand_tokens` to reject it).
pub fn expand_tokens(pattern: &str, user: &str, home: &Path) -> String {
    expand(pattern, user, home, true).unwrap_or_else(|_| pattern.to_string())
}

/// As `expand_tokens`, but an unknown `%x` token or a trailing `%` is an error naming it.
pub fn try_expand_tokens(pattern: &str, user: &str, home: &Path) -> crate::Result<String> {
    expand(pattern, user, home, false)
}

fn expand(pattern: &str, user: &str, home: &Path, lenient: bool) -> crate::Result<String> {
    let out = crate::ssh_config::tokens::expand_percent(pattern, |token, out| {
        match token {
            Some('h') => out.push_str(&home.to_string_lossy()),
            Some('u') => out.push_str(user),
            Some('%') => out.push('%'),
            Some(other) if lenient => {
                out.push('%');
                out.push(other);
            }
            None if lenient => out.push('%'),
            Some(other) => {
                return Err(crate::Error::Invalid(format!(
                    "unknown token %{other} in \"{pattern}\" (known: %h home, %u user, %% percent)"
                )))
            }
            None => {
                return Err(crate::Error::Invalid(format!(
                    "\"{pattern}\" ends with a lone % (write %% for a percent sign)"
                )))
            }
        }
        Ok(())
    })?;
    if Path::new(&out).is_absolute() {
        Ok(out)
    } else {
        Ok(home.join(out).to_string_lossy().into_owned())
    }
}
