//! What `ssh-keygen -L -f CERT` prints, for `msh-keygen inspect`: type, public key and CA
//! fingerprints, key id, serial, validity (local time, plus one extra line in UTC),
//! principals, critical options and extensions, in ssh-keygen's layout and wording.
//!
//! ```text
//! user-cert.pub:
//!         Type: ssh-ed25519-cert-v01@openssh.com user certificate
//!         Public key: ED25519-CERT SHA256:qX8j/G3D86qM9mlQgyVwqQqqC7DI3hnAsyWCCtwG2NU
//!         Signing CA: ED25519 SHA256:eHiPw4SdHoQHLxXC00VnzP1IFMdRKSJxlnaNFx4KuTM (using ssh-ed25519)
//!         Key ID: "alice"
//!         Serial: 42
//!         Valid: from 2026-01-01T00:00:00 to 2027-01-01T00:00:00
//!         Valid (UTC): from 2026-01-01T00:00:00Z to 2027-01-01T00:00:00Z
//!         Principals:
//!                 alice
//!         Critical Options: (none)
//!         Extensions:
//!                 permit-pty
//! ```

use std::fmt::Write as _;

use jiff::tz::TimeZone;
use russh::keys::{Certificate, PublicKey};

use super::validity::{describe_in, describe_utc};
use crate::keys::{fingerprint, key_type_label};

/// The label of the extra line msh adds after `Valid:`.
pub const UTC_LINE_PREFIX: &str = "        Valid (UTC): ";

/// ssh-keygen -L's report for `cert` read from `name`, times in the system's time zone.
pub fn render(name: &str, cert: &Certificate) -> String {
    render_in(name, cert, &TimeZone::system())
}

/// [`render`] with local times in `tz`.
pub fn render_in(name: &str, cert: &Certificate, tz: &TimeZone) -> String {
    let subject = PublicKey::new(cert.public_key().clone(), "");
    let ca = PublicKey::new(cert.signature_key().clone(), "");
    let kind = if cert.cert_type().is_host() {
        "host"
    } else {
        "user"
    };
    let mut out = String::new();
    let _ = writeln!(out, "{name}:");
    let _ = writeln!(
        out,
        "        Type: {} {kind} certificate",
        cert.algorithm().to_certificate_type()
    );
    let _ = writeln!(
        out,
        "        Public key: {}-CERT {}",
        key_type_label(&subject),
        fingerprint(&subject)
    );
    let _ = writeln!(
        out,
        "        Signing CA: {} {} (using {})",
        key_type_label(&ca),
        fingerprint(&ca),
        cert.signature().algorithm().as_str()
    );
    let _ = writeln!(out, "        Key ID: \"{}\"", cert.key_id());
    let _ = writeln!(out, "        Serial: {}", cert.serial());
    let _ = writeln!(
        out,
        "        Valid: {}",
        describe_in(cert.valid_after(), cert.valid_before(), tz)
    );
    let _ = writeln!(
        out,
        "{UTC_LINE_PREFIX}{}",
        describe_utc(cert.valid_after(), cert.valid_before())
    );
    if cert.valid_principals().is_empty() {
        out.push_str("        Principals: (none)\n");
    } else {
        out.push_str("        Principals: \n");
        for p in cert.valid_principals() {
            let _ = writeln!(out, "                {p}");
        }
    }
    render_options(&mut out, "Critical Options", cert.critical_options(), true);
    render_options(&mut out, "Extensions", cert.extensions(), false);
    out
}

fn render_options(
    out: &mut String,
    title: &str,
    options: &std::collections::BTreeMap<String, String>,
    critical: bool,
) {
    if options.is_empty() {
        let _ = writeln!(out, "        {title}: (none)");
        return;
    }
    let _ = writeln!(out, "        {title}: ");
    for (name, data) in options {
        let known_flag = !critical
            && matches!(
                name.as_str(),
                "permit-X11-forwarding"
                    | "permit-agent-forwarding"
                    | "permit-port-forwarding"
                    | "permit-pty"
                    | "permit-user-rc"
                    | "no-touch-required"
            );
        let known_value = critical && matches!(name.as_str(), "force-command" | "source-address");
        if known_flag || (critical && name == "verify-required") {
            let _ = writeln!(out, "                {name}");
        } else if known_value {
            let _ = writeln!(out, "                {name} {data}");
        } else if data.is_empty() {
            let _ = writeln!(out, "                {name} UNKNOWN FLAG OPTION");
        } else {
            // ssh-keygen dumps the option's raw wire data: the value as an SSH string.
            let mut wire = (data.len() as u32).to_be_bytes().to_vec();
            wire.extend_from_slice(data.as_bytes());
            let hex: String = wire.iter().map(|b| format!("{b:02x}")).collect();
            let _ = writeln!(
                out,
                "                {name} UNKNOWN OPTION: {hex} (len {})",
                wire.len()
            );
        }
    }
}
