//! Validation of single config values (subsystems, user patterns, path tokens, PAM).
#![forbid(unsafe_code)]

use std::path::Path;

use anyhow::{bail, Result};

/// A subsystem needs a name and a command to run.
pub(super) fn check_subsystem(name: &str, command: &str) -> Result<()> {
    if name.trim().is_empty() {
        bail!("empty subsystem name");
    }
    if command.trim().is_empty() {
        bail!(
            "empty command: give the program to run, e.g. sftp = \"/usr/lib/openssh/sftp-server\" (or remove the entry to turn the subsystem off)"
        );
    }
    Ok(())
}

/// An allow_users / deny_users entry: a user pattern, or `USER@HOSTS` as sshd's
/// AllowUsers, HOSTS being addresses, CIDR networks or address patterns (no DNS: mshd never
/// resolves the client's name, so a host name pattern could never match and is refused).
pub(super) fn check_user_pattern(entry: &str) -> Result<()> {
    if entry.trim().is_empty() {
        bail!("empty entry");
    }
    let Some((user, hosts)) = entry.rsplit_once('@') else {
        return Ok(());
    };
    if user.is_empty() || hosts.is_empty() {
        bail!("{entry:?}: expected USER@HOSTS, e.g. \"alice@10.0.0.0/8\" or \"*@192.168.1.*\"");
    }
    for h in hosts.split(',') {
        let h = h.strip_prefix('!').unwrap_or(h);
        let probe: std::net::IpAddr = std::net::Ipv4Addr::LOCALHOST.into();
        if let msh_common::authorized_keys::FromMatch::Invalid(why) =
            msh_common::authorized_keys::match_from(h, probe)
        {
            bail!("{entry:?}: {why}");
        }
        let address_like = h
            .chars()
            .all(|c| c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '/' | '*' | '?'));
        if !address_like {
            bail!(
                "{entry:?}: {h:?} is a host name; mshd does not resolve names (as sshd with UseDNS no): give addresses or networks, e.g. \"alice@10.0.0.0/8\""
            );
        }
    }
    Ok(())
}

/// `%h`, `%u` and `%%` are the only tokens (as OpenSSH's AuthorizedKeysFile).
pub(super) fn check_tokens(pattern: &str) -> Result<()> {
    msh_common::authorized_keys::try_expand_tokens(pattern, "user", Path::new("/home/user"))?;
    Ok(())
}

/// `use_pam` and `pam_service`. PAM is on by default when mshd runs as root on a system with
/// PAM (`/etc/pam.d` exists), as sshd builds with UsePAM on distributions; it cannot be on
/// unprivileged: PAM sessions are opened for the logged-in user by root.
pub(super) fn resolve_pam(
    use_pam: Option<bool>,
    service: Option<&str>,
    root_mode: bool,
    where_: &dyn Fn(&str) -> String,
) -> Result<(bool, String)> {
    if use_pam == Some(true) && !root_mode {
        bail!(
            "{}: use_pam = true needs mshd to run as root (PAM opens each session for the logged-in user as root); remove the key or set it to false",
            where_("use_pam")
        );
    }
    let on = use_pam.unwrap_or_else(|| root_mode && Path::new("/etc/pam.d").is_dir());
    let service = service.unwrap_or("msh");
    // A name, not a path: PAM looks it up as /etc/pam.d/<service>.
    let valid = !service.is_empty()
        && service.len() <= 64
        && service
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !service.starts_with('.');
    if !valid {
        bail!(
            "{}: `{}` is not a PAM service name; give the name of a file in /etc/pam.d such as \"msh\" or \"sshd\" (letters, digits, `-`, `_`, `.`)",
            where_("pam_service"),
            service.escape_debug()
        );
    }
    Ok((on, service.to_string()))
}
