//! Host-key policy: what known_hosts says about a host's key (OpenSSH `sshconnect.c`
//! `check_host_key` + `hostfile.c` matching).
//!
//! Names are matched as OpenSSH does: the looked-up name is `host` on port 22 and
//! `[host]:port` otherwise; plain host fields are pattern lists (case-insensitive, `*`, `?`,
//! a matching `!negation` excludes the line); hashed fields match when
//! HMAC-SHA1(salt, lowercased name) equals the stored hash.
//!
//! HostKeyAlias: OpenSSH looks the alias up verbatim (never as `[alias]:port`) and skips the
//! portless fallback. Callers with an alias call [`check_alias`] (or `check(files, alias, 22,
//! key)`, which is the same) and use [`super::host_key_name`]`(alias, 22)` when recording.

use std::path::PathBuf;

use hmac::{Hmac, KeyInit, Mac};
use russh::keys::{Algorithm, HashAlg, PublicKey};
use sha1::Sha1;

use super::{host_key_name, Entry, HostField, KnownHostsFile, Marker};
use crate::pattern::{match_list, ListMatch};

/// What the known_hosts files say about a host key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyVerdict {
    /// An entry for this host holds this key.
    Trusted { path: PathBuf, line: usize },
    /// No entry for this host holds a key of this type (or any key).
    Unknown,
    /// The host is known with a different key of the same type: refuse.
    Changed {
        path: PathBuf,
        line: usize,
        /// SHA256 fingerprint of the key on record.
        old_fingerprint: String,
    },
    /// The key is marked `@revoked`: refuse even when otherwise trusted.
    Revoked { path: PathBuf, line: usize },
}

/// HMAC-SHA1(salt, name): the hash stored in a `|1|salt|hash` host field.
pub fn hash_host_name(salt: &[u8], name: &str) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail; an empty result would simply
    // never match.
    match <Hmac<Sha1> as KeyInit>::new_from_slice(salt) {
        Ok(mut mac) => {
            mac.update(name.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// Does `entry`'s host field match the looked-up `name` (already `[host]:port` if needed)?
pub fn entry_matches_name(entry: &Entry, name: &str) -> bool {
    match &entry.hosts {
        HostField::Patterns(list) => match_list(name, list, true) == ListMatch::Matched,
        HostField::Hashed { salt, hash } => {
            // ssh lowercases the host name before it hashes it, so stored hashes are of
            // lowercase names.
            let computed = hash_host_name(salt, &name.to_ascii_lowercase());
            // Not secret: both the salt and the hash are in the file.
            computed == *hash
        }
    }
}

/// Does `entry` match `host` on `port` (as `host_key_name(host, port)`)?
pub fn entry_matches_host(entry: &Entry, host: &str, port: u16) -> bool {
    entry_matches_name(entry, &host_key_name(host, port))
}

/// Every entry of `file` (markers included) that matches `host` on `port`, in file order:
/// what `ssh-keygen -F` reports.
pub fn find<'a>(file: &'a KnownHostsFile, host: &str, port: u16) -> Vec<&'a Entry> {
    let name = host_key_name(host, port);
    file.entries()
        .filter(|e| entry_matches_name(e, &name))
        .collect()
}

/// The `@cert-authority` entries that may vouch for `host` on `port`: those for
/// `[host]:port` first, then (on a non-22 port) those for the portless `host`, since
/// OpenSSH falls back to the portless name when no CA for the port name signed the
/// certificate.
pub fn cert_authorities_for<'a>(
    files: &'a [KnownHostsFile],
    host: &str,
    port: u16,
) -> Vec<&'a Entry> {
    let mut names = vec![host_key_name(host, port)];
    if port != 22 {
        names.push(host.to_string());
    }
    let mut out: Vec<&Entry> = Vec::new();
    for name in &names {
        for f in files {
            for e in f.entries() {
                if e.marker == Marker::CertAuthority
                    && entry_matches_name(e, name)
                    && !out.iter().any(|o| std::ptr::eq(*o, e))
                {
                    out.push(e);
                }
            }
        }
    }
    out
}

/// Algorithms of the plain keys on record for `host` on `port`, in file order without
/// duplicates (RSA once, whatever its signature hash). OpenSSH's client puts these first in
/// its host-key algorithm list (`order_hostkeyalgs`), so that a host known with an ECDSA key
/// is asked for that key rather than for a new ed25519 one; callers that do the same get
/// Trusted instead of Unknown for such hosts. Like OpenSSH, only the looked-up name counts
/// (`[host]:port` on a non-22 port).
pub fn known_algorithms(files: &[KnownHostsFile], host: &str, port: u16) -> Vec<Algorithm> {
    let name = host_key_name(host, port);
    let mut out: Vec<Algorithm> = Vec::new();
    for f in files {
        for e in f.entries() {
            if e.marker == Marker::None && entry_matches_name(e, &name) {
                let a = key_family(&e.key);
                if !out.contains(&a) {
                    out.push(a);
                }
            }
        }
    }
    out
}

/// The `@revoked` entry (in any file, for any host) that holds `key`, if one does.
///
/// Deliberately stricter than OpenSSH, which honours `@revoked` only on lines whose host
/// field matches: a key someone marked revoked is refused for every host.
pub fn revoked_entry<'a>(
    files: &'a [KnownHostsFile],
    key: &PublicKey,
) -> Option<(&'a KnownHostsFile, &'a Entry)> {
    files.iter().find_map(|f| {
        f.entries()
            .find(|e| e.marker == Marker::Revoked && e.key.key_data() == key.key_data())
            .map(|e| (f, e))
    })
}

/// The algorithm family a key belongs to for "same type" comparisons: RSA keys compare
/// equal whatever signature hash was negotiated; ECDSA keys only on the same curve.
fn key_family(key: &PublicKey) -> Algorithm {
    match key.key_data().algorithm() {
        Algorithm::Rsa { .. } => Algorithm::Rsa { hash: None },
        other => other,
    }
}

/// Looks `name` up verbatim (no port logic) among plain-key entries.
fn check_name(files: &[KnownHostsFile], name: &str, key: &PublicKey) -> HostKeyVerdict {
    let family = key_family(key);
    let mut changed: Option<HostKeyVerdict> = None;
    for f in files {
        for e in f.entries() {
            if e.marker != Marker::None || !entry_matches_name(e, name) {
                continue;
            }
            if e.key.key_data() == key.key_data() {
                return HostKeyVerdict::Trusted {
                    path: f.path.clone(),
                    line: e.line,
                };
            }
            if changed.is_none() && key_family(&e.key) == family {
                changed = Some(HostKeyVerdict::Changed {
                    path: f.path.clone(),
                    line: e.line,
                    old_fingerprint: e.key.fingerprint(HashAlg::Sha256).to_string(),
                });
            }
        }
    }
    changed.unwrap_or(HostKeyVerdict::Unknown)
}

/// Checks `key` presented by `host` on `port` against `files` (user file first, then global).
///
/// Order as OpenSSH: a `@revoked` key is refused first; then the entries for the looked-up
/// name decide (Trusted if one holds the key, Changed naming the first entry holding a
/// different key of the same algorithm, else Unknown). On a non-22 port, when the
/// `[host]:port` entries leave the host Unknown, a portless `host` entry holding this very key
/// vouches for it; a portless entry with a different key leaves it Unknown (never Changed).
/// `@cert-authority` lines are not host keys and are skipped (see [`cert_authorities_for`]).
///
/// Differs from OpenSSH in one case, as msh's contract says: a host known only with keys of
/// other algorithms is Unknown here, where OpenSSH reports it changed. OpenSSH rarely gets
/// there because it asks for the known algorithms first: see [`known_algorithms`].
///
/// With HostKeyAlias, pass the alias as `host` and port 22 (or call [`check_alias`]).
pub fn check(files: &[KnownHostsFile], host: &str, port: u16, key: &PublicKey) -> HostKeyVerdict {
    if let Some((f, e)) = revoked_entry(files, key) {
        return HostKeyVerdict::Revoked {
            path: f.path.clone(),
            line: e.line,
        };
    }
    let verdict = check_name(files, &host_key_name(host, port), key);
    if verdict != HostKeyVerdict::Unknown || port == 22 {
        return verdict;
    }
    match check_name(files, host, key) {
        trusted @ HostKeyVerdict::Trusted { .. } => trusted,
        _ => HostKeyVerdict::Unknown,
    }
}

/// `check` for a HostKeyAlias: the alias is looked up verbatim, with no port handling.
pub fn check_alias(files: &[KnownHostsFile], alias: &str, key: &PublicKey) -> HostKeyVerdict {
    check(files, alias, 22, key)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use base64::engine::general_purpose::STANDARD as BASE64;
    use base64::Engine as _;

    use super::*;
    use crate::known_hosts::test_keys::{key, ED1, ED2, ED3, RSA1};

    fn file(name: &str, text: &str) -> KnownHostsFile {
        KnownHostsFile::parse(Path::new(name), text)
    }

    fn trusted(path: &str, line: usize) -> HostKeyVerdict {
        HostKeyVerdict::Trusted {
            path: PathBuf::from(path),
            line,
        }
    }

    fn changed(path: &str, line: usize, old: &str) -> HostKeyVerdict {
        HostKeyVerdict::Changed {
            path: PathBuf::from(path),
            line,
            old_fingerprint: key(old).fingerprint(HashAlg::Sha256).to_string(),
        }
    }

    #[test]
    fn plain_names_lists_and_case() {
        let f = [file("/u", &format!("# c\nalpha,Beta {ED1}\n"))];
        assert_eq!(check(&f, "alpha", 22, &key(ED1)), trusted("/u", 2));
        assert_eq!(check(&f, "BETA", 22, &key(ED1)), trusted("/u", 2));
        assert_eq!(check(&f, "gamma", 22, &key(ED1)), HostKeyVerdict::Unknown);
        assert_eq!(check(&f, "beta", 22, &key(ED2)), changed("/u", 2, ED1));
    }

    #[test]
    fn wildcards_and_negation() {
        let f = [file(
            "/u",
            &format!("*.example.com,!bad.example.com {ED1}\nweb?? {ED2}\n"),
        )];
        assert_eq!(check(&f, "a.example.com", 22, &key(ED1)), trusted("/u", 1));
        assert_eq!(
            check(&f, "bad.example.com", 22, &key(ED1)),
            HostKeyVerdict::Unknown
        );
        // Negated: the line does not apply, so a different key is not "Changed" either.
        assert_eq!(
            check(&f, "bad.example.com", 22, &key(ED2)),
            HostKeyVerdict::Unknown
        );
        assert_eq!(check(&f, "web01", 22, &key(ED2)), trusted("/u", 2));
        assert_eq!(check(&f, "web1", 22, &key(ED2)), HostKeyVerdict::Unknown);
    }

    #[test]
    fn ports() {
        let f = [file(
            "/u",
            &format!("[h]:2222 {ED1}\nh {ED2}\nother {ED3}\n[*.lab]:2200 {ED3}\n"),
        )];
        assert_eq!(check(&f, "h", 2222, &key(ED1)), trusted("/u", 1));
        // Port entries decide: a different key there is Changed.
        assert_eq!(check(&f, "h", 2222, &key(ED3)), changed("/u", 1, ED1));
        // Port entries decide even when the portless entry holds the presented key.
        assert_eq!(check(&f, "h", 2222, &key(ED2)), changed("/u", 1, ED1));
        assert_eq!(check(&f, "h", 22, &key(ED2)), trusted("/u", 2));
        assert_eq!(check(&f, "h", 22, &key(ED1)), changed("/u", 2, ED2));
        assert_eq!(check(&f, "x.lab", 2200, &key(ED3)), trusted("/u", 4));
        assert_eq!(check(&f, "x.lab", 22, &key(ED3)), HostKeyVerdict::Unknown);
        // Port 22 is never written as [host]:22.
        assert_eq!(check(&f, "other", 22, &key(ED3)), trusted("/u", 3));

        let g = [file("/u", &format!("h {ED2}\n"))];
        assert_eq!(check(&g, "h", 2222, &key(ED2)), trusted("/u", 1));
        // A portless entry with another key: unknown, not changed.
        assert_eq!(check(&g, "h", 2222, &key(ED1)), HostKeyVerdict::Unknown);
    }

    #[test]
    fn alias_is_looked_up_verbatim() {
        let f = [file(
            "/u",
            &format!("myalias {ED1}\n[myalias]:2222 {ED2}\n"),
        )];
        assert_eq!(check_alias(&f, "myalias", &key(ED1)), trusted("/u", 1));
        assert_eq!(check_alias(&f, "myalias", &key(ED2)), changed("/u", 1, ED1));
    }

    #[test]
    fn hashed_names() {
        let salt = [7u8; 20];
        let hashed = |name: &str| {
            format!(
                "|1|{}|{}",
                BASE64.encode(salt),
                BASE64.encode(hash_host_name(&salt, name))
            )
        };
        let f = [file(
            "/u",
            &format!(
                "{} {ED1}\n{} {ED2}\n",
                hashed("h.example"),
                hashed("[h.example]:2222")
            ),
        )];
        assert_eq!(check(&f, "h.example", 22, &key(ED1)), trusted("/u", 1));
        assert_eq!(check(&f, "H.Example", 22, &key(ED1)), trusted("/u", 1));
        assert_eq!(check(&f, "h.example", 22, &key(ED2)), changed("/u", 1, ED1));
        assert_eq!(check(&f, "h.example", 2222, &key(ED2)), trusted("/u", 2));
        assert_eq!(check(&f, "other", 22, &key(ED1)), HostKeyVerdict::Unknown);
        // A name hashed by ssh-keygen -H (salt/hash copied from its output for "host1").
        let g = [file(
            "/g",
            &format!("|1|qZaw0aoYr7jXH7lo4ydmJks89Lk=|cVKnaU44jy1CpcCQhg7jT8LORWQ= {ED1}\n"),
        )];
        assert_eq!(check(&g, "host1", 22, &key(ED1)), trusted("/g", 1));
    }

    #[test]
    fn several_keys_per_host() {
        let f = [file(
            "/u",
            &format!("h {RSA1}\nh {ED2}\nh {ED1}\nonlyrsa {RSA1}\n"),
        )];
        // Two ed25519 entries, one matching: trusted.
        assert_eq!(check(&f, "h", 22, &key(ED1)), trusted("/u", 3));
        assert_eq!(check(&f, "h", 22, &key(RSA1)), trusted("/u", 1));
        // Changed names the first same-type entry.
        assert_eq!(check(&f, "h", 22, &key(ED3)), changed("/u", 2, ED2));
        // Known only with another key type: unknown.
        assert_eq!(check(&f, "onlyrsa", 22, &key(ED1)), HostKeyVerdict::Unknown);
    }

    #[test]
    fn user_file_then_global_file() {
        let files = [
            file("/user", &format!("a {ED1}\n")),
            file("/global", &format!("b {ED2}\na {ED3}\n")),
        ];
        assert_eq!(check(&files, "b", 22, &key(ED2)), trusted("/global", 1));
        // A match anywhere wins over a mismatch elsewhere (several keys per host).
        assert_eq!(check(&files, "a", 22, &key(ED3)), trusted("/global", 2));
        assert_eq!(
            check(&files, "b", 22, &key(ED1)),
            changed("/global", 1, ED2)
        );
    }

    #[test]
    fn revoked_wins_everywhere() {
        let files = [
            file("/user", &format!("h {ED1}\n")),
            file("/global", &format!("# x\n@revoked other.host {ED1}\n")),
        ];
        assert_eq!(
            check(&files, "h", 22, &key(ED1)),
            HostKeyVerdict::Revoked {
                path: PathBuf::from("/global"),
                line: 2
            }
        );
        assert_eq!(
            check(&files, "unknown", 2222, &key(ED1)),
            HostKeyVerdict::Revoked {
                path: PathBuf::from("/global"),
                line: 2
            }
        );
        assert_eq!(check(&files, "h", 22, &key(ED2)), changed("/user", 1, ED1));
    }

    #[test]
    fn cert_authority_lines_are_not_host_keys() {
        let f = [file(
            "/u",
            &format!(
                "@cert-authority *.example.com {ED1}\n@cert-authority h {ED2}\n\
                 @cert-authority [h]:2222 {ED3}\n"
            ),
        )];
        assert_eq!(
            check(&f, "a.example.com", 22, &key(ED1)),
            HostKeyVerdict::Unknown
        );
        assert_eq!(
            check(&f, "a.example.com", 22, &key(ED2)),
            HostKeyVerdict::Unknown
        );
        let lines = |v: Vec<&Entry>| v.iter().map(|e| e.line).collect::<Vec<_>>();
        assert_eq!(lines(cert_authorities_for(&f, "a.example.com", 22)), [1]);
        assert_eq!(lines(cert_authorities_for(&f, "h", 22)), [2]);
        assert_eq!(lines(cert_authorities_for(&f, "h", 2222)), [3, 2]);
        assert!(cert_authorities_for(&f, "nope", 22).is_empty());
    }

    #[test]
    fn known_algorithms_in_file_order() {
        let f = [
            file("/u", &format!("h {RSA1}\nh {ED1}\n@revoked h {ED2}\n")),
            file("/g", &format!("h {ED2}\n[h]:2222 {ED3}\n*,!h {RSA1}\n")),
        ];
        assert_eq!(
            known_algorithms(&f, "h", 22),
            [Algorithm::Rsa { hash: None }, Algorithm::Ed25519]
        );
        // `*,!h` excludes `h` but not `[h]:2222`.
        assert_eq!(
            known_algorithms(&f, "h", 2222),
            [Algorithm::Ed25519, Algorithm::Rsa { hash: None }]
        );
        assert_eq!(
            known_algorithms(&f, "x", 22),
            [Algorithm::Rsa { hash: None }]
        );
        let g = [file("/u", &format!("h {ED1}\n"))];
        assert!(known_algorithms(&g, "h", 2222).is_empty());
    }

    #[test]
    fn find_reports_markers_too() {
        let f = file(
            "/u",
            &format!("h {ED1}\n@revoked h {ED2}\n@cert-authority * {ED3}\n[h]:2 {ED1}\nbad line\n"),
        );
        let lines = |v: Vec<&Entry>| v.iter().map(|e| e.line).collect::<Vec<_>>();
        assert_eq!(lines(find(&f, "h", 22)), [1, 2, 3]);
        assert_eq!(lines(find(&f, "h", 2)), [3, 4]);
        assert!(entry_matches_host(f.entries().next().unwrap(), "H", 22));
    }
}
