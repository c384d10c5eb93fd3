//! Whether a certificate is acceptable: user certificates for mshd (`check_user_cert`), host
//! certificates for msh (`check_host_cert`). Pure: the caller supplies the trusted CA keys,
//! the allowed principals, the peer address and the time, and logs the decision, which
//! carries the certificate's key id, serial and CA fingerprint.
//!
//! Checks run in OpenSSH's order and the first failure decides: CA trusted, CA signature,
//! certificate type, validity window, principal, critical options (`force-command`,
//! `source-address`; any other critical option rejects, as PROTOCOL.certkeys requires), then
//! extensions become permissions (unknown extensions are ignored). Revocation is checked
//! separately, before this (see `crate::revocation`).

use std::net::IpAddr;

use russh::keys::{Certificate, PublicKey};

use super::validity::format_utc;
use crate::authorized_keys::policy::canonical_peer;
use crate::keys::fingerprint;

/// What identifies a certificate in logs and audit events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub key_id: String,
    pub serial: u64,
    /// SHA256 fingerprint of the signing CA (`SHA256:...`).
    pub ca_fingerprint: String,
    /// SHA256 fingerprint of the certified key.
    pub key_fingerprint: String,
}

impl CertInfo {
    pub fn of(cert: &Certificate) -> Self {
        CertInfo {
            key_id: cert.key_id().to_string(),
            serial: cert.serial(),
            ca_fingerprint: fingerprint(&PublicKey::new(cert.signature_key().clone(), "")),
            key_fingerprint: fingerprint(&PublicKey::new(cert.public_key().clone(), "")),
        }
    }
}

impl std::fmt::Display for CertInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key id is anyone's choice until the CA is known to be trusted: capped (Debug
        // escapes control characters) so it cannot fill the log.
        let id: String = self.key_id.chars().take(100).collect();
        let more = self.key_id.chars().count().saturating_sub(100);
        write!(f, "certificate key id {id:?}")?;
        if more > 0 {
            write!(f, "...[{more} more characters]")?;
        }
        write!(
            f,
            " serial {} signed by CA {}",
            self.serial, self.ca_fingerprint
        )
    }
}

/// What a session authenticated by a user certificate may do, from its extensions and
/// critical options.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CertPermissions {
    pub pty: bool,
    pub port_forwarding: bool,
    pub agent_forwarding: bool,
    pub x11_forwarding: bool,
    pub user_rc: bool,
    /// `force-command`: runs instead of what the client asked.
    pub force_command: Option<String>,
    /// `source-address` as written (already checked against the peer).
    pub source_address: Option<String>,
}

/// The verdict on one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertDecision {
    Accept {
        info: CertInfo,
        /// The certificate principal that granted access (the user, an authorized
        /// principal, or the host name).
        principal: String,
        permissions: CertPermissions,
    },
    Reject {
        info: CertInfo,
        /// Short and specific, e.g. `certificate expired at 2026-11-20T10:00:00Z`.
        reason: String,
    },
}

impl CertDecision {
    pub fn info(&self) -> &CertInfo {
        match self {
            CertDecision::Accept { info, .. } | CertDecision::Reject { info, .. } => info,
        }
    }

    pub fn is_accepted(&self) -> bool {
        matches!(self, CertDecision::Accept { .. })
    }

    /// The rejection reason, `None` when accepted.
    pub fn reason(&self) -> Option<&str> {
        match self {
            CertDecision::Reject { reason, .. } => Some(reason),
            CertDecision::Accept { .. } => None,
        }
    }
}

/// Checks a user certificate offered to log in as `user` from `peer` at `now` (seconds since
/// the epoch).
///
/// `trusted_cas`: the CA keys trusted for user certificates (`trusted_user_ca_keys`, or the
/// key of the `cert-authority` line being tried). `principals_allowed`: `None` when the
/// certificate must name `user` itself; `Some(list)` (from `authorized_principals_file` or
/// `principals=`) when one of the certificate's principals must be in `list` instead.
pub fn check_user_cert(
    cert: &Certificate,
    user: &str,
    trusted_cas: &[PublicKey],
    principals_allowed: Option<&[String]>,
    peer: IpAddr,
    now: u64,
) -> CertDecision {
    let info = CertInfo::of(cert);
    match user_checks(
        cert,
        user,
        trusted_cas,
        principals_allowed,
        peer,
        now,
        &info,
    ) {
        Ok((principal, permissions)) => CertDecision::Accept {
            info,
            principal,
            permissions,
        },
        Err(reason) => CertDecision::Reject { info, reason },
    }
}

fn user_checks(
    cert: &Certificate,
    user: &str,
    trusted_cas: &[PublicKey],
    principals_allowed: Option<&[String]>,
    peer: IpAddr,
    now: u64,
    info: &CertInfo,
) -> Result<(String, CertPermissions), String> {
    common_checks(cert, trusted_cas, now, info)?;
    if !cert.cert_type().is_user() {
        return Err("host certificate offered as user certificate".into());
    }
    let principals = cert.valid_principals();
    if principals.is_empty() {
        return Err("certificate has no principals (a user certificate must name the user)".into());
    }
    let principal = match principals_allowed {
        None => principals
            .iter()
            .find(|p| *p == user)
            .cloned()
            .ok_or_else(|| {
                format!(
                    "principal {user:?} not in certificate principals [{}]",
                    principals.join(", ")
                )
            })?,
        Some(allowed) => principals
            .iter()
            .find(|p| allowed.contains(p))
            .cloned()
            .ok_or_else(|| {
                format!(
                    "none of the certificate principals [{}] is authorized for {user:?} \
                     (authorized: [{}])",
                    principals.join(", "),
                    allowed.join(", ")
                )
            })?,
    };
    let mut perms = CertPermissions::default();
    for (name, value) in cert.critical_options().iter() {
        match name.as_str() {
            "force-command" => perms.force_command = Some(value.clone()),
            "source-address" => {
                let nets = parse_source_address(value)
                    .map_err(|why| format!("invalid source-address: {why}"))?;
                let peer = canonical_peer(peer);
                if !nets.iter().any(|n| n.contains(&peer)) {
                    return Err(format!("source-address {value} does not admit {peer}"));
                }
                perms.source_address = Some(value.clone());
            }
            other => return Err(format!("unknown critical option {other:?}")),
        }
    }
    for name in cert.extensions().keys() {
        match name.as_str() {
            "permit-pty" => perms.pty = true,
            "permit-port-forwarding" => perms.port_forwarding = true,
            "permit-agent-forwarding" => perms.agent_forwarding = true,
            "permit-X11-forwarding" => perms.x11_forwarding = true,
            "permit-user-rc" => perms.user_rc = true,
            _ => {}
        }
    }
    Ok((principal, perms))
}

/// Checks a host certificate presented by the server msh connects to as `host_name` (or
/// the HostKeyAlias), against the `@cert-authority` keys that match that host.
///
/// As OpenSSH, a host certificate with no principals is valid for any host name, and
/// critical options are not allowed in host certificates.
pub fn check_host_cert(
    cert: &Certificate,
    host_name: &str,
    trusted_cas: &[PublicKey],
    now: u64,
) -> CertDecision {
    let info = CertInfo::of(cert);
    let result = (|| -> Result<String, String> {
        common_checks(cert, trusted_cas, now, &info)?;
        if !cert.cert_type().is_host() {
            return Err("user certificate offered as host certificate".into());
        }
        let principals = cert.valid_principals();
        if !principals.is_empty() && !principals.iter().any(|p| p.eq_ignore_ascii_case(host_name)) {
            return Err(format!(
                "host name {host_name:?} not in certificate principals [{}]",
                principals.join(", ")
            ));
        }
        if let Some(name) = cert.critical_options().keys().next() {
            return Err(format!("unknown critical option {name:?}"));
        }
        Ok(host_name.to_string())
    })();
    match result {
        Ok(principal) => CertDecision::Accept {
            info,
            principal,
            permissions: CertPermissions::default(),
        },
        Err(reason) => CertDecision::Reject { info, reason },
    }
}

/// SHA-1 CA signatures (`ssh-rsa`, and `ssh-dss`, which is SHA-1 only) are refused, as
/// OpenSSH 8.2+ does by default (`CASignatureAlgorithms` lists only SHA-2 RSA, ECDSA and
/// Ed25519): a SHA-1 collision lets whoever obtains one certificate forge another.
fn ca_signature_algorithm_allowed(cert: &Certificate) -> Result<(), String> {
    use russh::keys::Algorithm;
    let alg = cert.signature().algorithm();
    match alg {
        Algorithm::Rsa { hash: None } | Algorithm::Dsa => Err(format!(
            "the CA signed this certificate with {} (SHA-1), which is refused (as OpenSSH 8.2+ \
             does, CASignatureAlgorithms); re-sign it with SHA-2: ssh-keygen -s CA_KEY -t \
             rsa-sha2-512 ...",
            alg.as_str()
        )),
        _ => Ok(()),
    }
}

/// CA trusted, SHA-2 signature algorithm, signature, validity window.
fn common_checks(
    cert: &Certificate,
    trusted_cas: &[PublicKey],
    now: u64,
    info: &CertInfo,
) -> Result<(), String> {
    let ca = cert.signature_key();
    // Plain key equality, as sshd's `sshkey_in_file(..., strict_type)`: a certificate listed
    // as a CA does not stand for its key.
    if !trusted_cas.iter().any(|k| k.key_data() == ca) {
        return Err(format!("CA {} not trusted", info.ca_fingerprint));
    }
    ca_signature_algorithm_allowed(cert)?;
    cert.verify_signature()
        .map_err(|_| format!("signature by CA {} does not verify", info.ca_fingerprint))?;
    if now < cert.valid_after() {
        return Err(format!(
            "certificate not yet valid (valid from {})",
            format_utc(cert.valid_after())
        ));
    }
    if now >= cert.valid_before() {
        return Err(format!(
            "certificate expired at {}",
            format_utc(cert.valid_before())
        ));
    }
    Ok(())
}

/// OpenSSH's `addr_match_cidr_list` syntax for `source-address`: comma-separated addresses
/// or CIDR networks, no patterns, no negation, no host bits set beyond the mask.
pub fn parse_source_address(list: &str) -> Result<Vec<ipnet::IpNet>, String> {
    let mut nets = Vec::new();
    for entry in list.split(',') {
        if entry.is_empty() {
            return Err(format!("empty entry in {list:?}"));
        }
        if entry.len() > 46 + 3
            || !entry
                .chars()
                .all(|c| c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '/'))
        {
            return Err(format!("{entry:?} is not an address or CIDR network"));
        }
        let net = match entry.split_once('/') {
            None => entry
                .parse::<IpAddr>()
                .map(ipnet::IpNet::from)
                .map_err(|_| format!("{entry:?} is not an IP address"))?,
            Some((addr, len)) => {
                let addr: IpAddr = addr
                    .parse()
                    .map_err(|_| format!("{entry:?} is not an IP address/mask"))?;
                let len: u8 = len
                    .parse()
                    .map_err(|_| format!("{entry:?} has a bad mask length"))?;
                let net = ipnet::IpNet::new(addr, len)
                    .map_err(|_| format!("{entry:?} has a mask too long for its family"))?;
                if net.network() != addr {
                    return Err(format!(
                        "{entry:?} has host bits set (did you mean {}?)",
                        net.trunc()
                    ));
                }
                net
            }
        };
        nets.push(net);
    }
    Ok(nets)
}
