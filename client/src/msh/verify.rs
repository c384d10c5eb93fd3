//! Host verification, run from russh's `check_server_key` before any user authentication is
//! sent: `--pin` fingerprints, else the known_hosts files (user file, then global) with
//! StrictHostKeyChecking deciding what an unknown host means. Host certificates (`verify_cert`)
//! are accepted through `@cert-authority` lines and never recorded. The decision's message is
//! kept by the caller because russh's own error ("unknown key") says nothing a user can act on.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use msh_common::certs::{self, CertDecision, CertInfo};
use msh_common::known_hosts::{self, HostKeyVerdict, KnownHostsFile, Marker};
use russh::keys::{Certificate, PublicKey};

use super::settings::{Settings, StrictHostKeyChecking};

/// What verification decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Decision {
    Accept,
    /// Refused: the one line to print (without the `msh: ` prefix).
    Refuse(String),
}

/// The parts of `Settings` host verification needs.
#[derive(Debug, Clone)]
pub(super) struct VerifyConfig {
    /// Name for messages and known_hosts: HostKeyAlias, else HostName (the address
    /// connected to), never the alias typed (`Settings::known_hosts_name`).
    pub name: String,
    pub port: u16,
    pub pins: Vec<String>,
    pub strict: StrictHostKeyChecking,
    pub batch_mode: bool,
    pub hash_known_hosts: bool,
    pub update: super::settings::UpdateHostKeys,
    pub quiet: bool,
    pub user_files: Vec<PathBuf>,
    pub global_files: Vec<PathBuf>,
}

impl VerifyConfig {
    pub(super) fn from_settings(s: &Settings) -> Self {
        VerifyConfig {
            name: s.known_hosts_name().to_string(),
            port: s.known_hosts_port(),
            pins: s.pins.clone(),
            strict: s.strict,
            batch_mode: s.batch_mode,
            hash_known_hosts: s.hash_known_hosts,
            update: s.update_host_keys,
            quiet: s.quiet,
            user_files: s.user_known_hosts.clone(),
            global_files: s.global_known_hosts.clone(),
        }
    }

    /// `[host]:port` (or `host` on 22), as known_hosts and OpenSSH's messages spell it.
    fn display_name(&self) -> String {
        known_hosts::host_key_name(&self.name, self.port)
    }
}

fn fingerprint(key: &PublicKey) -> String {
    msh_common::keys::fingerprint(key)
}

fn key_label(key: &PublicKey) -> &'static str {
    msh_common::keys::key_type_label(key)
}

/// Decides whether `key` is the right key for the host. May prompt on /dev/tty (`ask`) and
/// may append to the user's known_hosts (`accept-new`, or `ask` answered yes): call it off
/// the async executor.
pub(super) fn verify(cfg: &VerifyConfig, key: &PublicKey) -> Decision {
    let fp = fingerprint(key);
    let name = cfg.display_name();
    if !cfg.pins.is_empty() {
        if cfg.pins.iter().any(|p| p == &fp) {
            tracing::info!("host key {fp} for {name} matches a --pin");
            return Decision::Accept;
        }
        return Decision::Refuse(format!(
            "host key verification failed: {name} presented {} key {fp}, which matches none of \
             the --pin fingerprints ({}); check the pin with the host's administrator",
            key_label(key),
            cfg.pins.join(", ")
        ));
    }

    let files = load_files(cfg);
    let verdict = known_hosts::check(&files, &cfg.name, cfg.port, key);
    match verdict {
        HostKeyVerdict::Trusted { path, line } => {
            tracing::info!(
                "host key {fp} for {name} found in {}:{line}",
                path.display()
            );
            Decision::Accept
        }
        HostKeyVerdict::Revoked { path, line } => Decision::Refuse(format!(
            "host key verification failed: the {} key {fp} presented by {name} is marked \
             @revoked in {}:{line}; refusing to connect (ask the host's administrator for its \
             new key)",
            key_label(key),
            path.display()
        )),
        HostKeyVerdict::Changed {
            path,
            line,
            old_fingerprint,
        } => Decision::Refuse(format!(
            "WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! The {} key of {name} is now \
             {fp}, but {}:{line} holds {old_fingerprint}. Someone could be intercepting the \
             connection (man-in-the-middle), or the host key was replaced. Refusing to connect. \
             If the change is expected, remove the old key with: msh-keygen known-hosts remove \
             '{name}' -f {}",
            key_label(key),
            path.display(),
            path.display()
        )),
        HostKeyVerdict::Unknown => match other_type_entry(&files, cfg, key) {
            Some(known) => other_type_known(cfg, key, &fp, &name, &known),
            None => unknown_host(cfg, key, &fp, &name),
        },
        #[allow(unreachable_patterns)]
        other => Decision::Refuse(format!(
            "host key verification failed for {name}: {other:?}"
        )),
    }
}

/// A plain entry for the host holding a key of another type than `key`: (file, line, type,
/// fingerprint). The library calls such a host Unknown; msh treats it as a changed identity
/// (see `other_type_known`).
struct OtherType {
    path: PathBuf,
    line: usize,
    label: &'static str,
    fingerprint: String,
}

fn other_type_entry(
    files: &[KnownHostsFile],
    cfg: &VerifyConfig,
    key: &PublicKey,
) -> Option<OtherType> {
    files.iter().find_map(|f| {
        known_hosts::verify::find(f, &cfg.name, cfg.port)
            .into_iter()
            .find(|e| e.marker == Marker::None && e.key.algorithm() != key.algorithm())
            .map(|e| OtherType {
                path: f.path.clone(),
                line: e.line,
                label: key_label(&e.key),
                fingerprint: fingerprint(&e.key),
            })
    })
}

/// The host is known, but with a key of another type: the server no longer offers the type
/// we asked for first (`known_algorithms`), which is what a man in the middle without the old
/// key would do. Never recorded silently: `accept-new` and `yes` refuse like a changed key;
/// `ask` warns loudly before asking.
fn other_type_known(
    cfg: &VerifyConfig,
    key: &PublicKey,
    fp: &str,
    name: &str,
    known: &OtherType,
) -> Decision {
    let path = known.path.display();
    let line = known.line;
    let warning = format!(
        "WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! {name} presented a {} key {fp}, but \
         it is known with a {} key ({}) in {path}:{line}, and no longer offers that key. \
         Someone could be intercepting the connection (man-in-the-middle), or the host's keys \
         were replaced.",
        key_label(key),
        known.label,
        known.fingerprint,
    );
    let fix = format!(
        "If the change is expected, confirm the new fingerprint with the host's administrator, \
         then remove the old entry with: msh-keygen known-hosts remove '{name}' -f {path} (or \
         connect once with --pin {fp})"
    );
    if cfg.strict != StrictHostKeyChecking::Ask || cfg.batch_mode {
        return Decision::Refuse(format!("{warning} Refusing to connect. {fix}"));
    }
    if !cfg.quiet {
        errln!("msh: {warning}");
    }
    ask_and_record(cfg, key, fp, name, |e| {
        format!("{warning} No terminal to ask on ({e}); refusing to connect. {fix}")
    })
}

/// Does host verification want the server's certificate? Yes when an `@cert-authority` line
/// could vouch for this host, or with `--pin` (which may name a CA). Otherwise a certificate
/// could only be checked as its plain key, so none is asked for.
pub(super) fn wants_certificates(cfg: &VerifyConfig) -> bool {
    if !cfg.pins.is_empty() {
        return true;
    }
    let files = load_files_silently(cfg);
    !known_hosts::verify::cert_authorities_for(&files, &cfg.name, cfg.port).is_empty()
}

/// Seconds since the epoch (0 if the clock is before 1970).
pub(super) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Decides whether the host certificate `cert` vouches for the host, as OpenSSH does: a
/// `@revoked` certificate key or CA refuses; a CA from an `@cert-authority` line for this
/// host makes `check_host_cert` decide (type, validity, principals, signature); otherwise the
/// certified key is checked as a plain key (a known_hosts entry for it still works). Nothing
/// is ever written to known_hosts for a certificate accepted through its CA.
pub(super) fn verify_cert(cfg: &VerifyConfig, cert: &Certificate) -> Decision {
    let key = PublicKey::new(cert.public_key().clone(), "");
    let ca = PublicKey::new(cert.signature_key().clone(), "");
    let info = CertInfo::of(cert);
    let name = cfg.display_name();
    let refuse = |reason: &str, fix: &str| {
        Decision::Refuse(format!(
            "host certificate verification failed for {name}: {reason} ({} key {}, {info}); \
             refusing to connect. {fix}",
            key_label(&key),
            info.key_fingerprint
        ))
    };

    if !cfg.pins.is_empty() {
        if cfg.pins.contains(&info.key_fingerprint) {
            tracing::info!(
                "host key {} for {name} matches a --pin",
                info.key_fingerprint
            );
            return Decision::Accept;
        }
        if cfg.pins.contains(&info.ca_fingerprint) {
            return match certs::check_host_cert(cert, &cfg.name, &[ca], now()) {
                CertDecision::Accept { .. } => {
                    tracing::info!("host certificate of {name} signed by pinned CA: {info}");
                    Decision::Accept
                }
                CertDecision::Reject { reason, .. } => refuse(
                    &reason,
                    "The CA is pinned, but the certificate itself is not valid for this host; \
                     ask the host's administrator to renew it.",
                ),
            };
        }
        return Decision::Refuse(format!(
            "host key verification failed: {name} presented a certificate for {} key {} signed \
             by CA {}; neither matches any of the --pin fingerprints ({}); check the pin with the \
             host's administrator",
            key_label(&key),
            info.key_fingerprint,
            info.ca_fingerprint,
            cfg.pins.join(", ")
        ));
    }

    let files = load_files(cfg);
    for (what, k) in [("certified key", &key), ("CA key", &ca)] {
        if let Some((f, e)) = known_hosts::verify::revoked_entry(&files, k) {
            return refuse(
                &format!(
                    "the {what} {} is marked @revoked in {}:{}",
                    fingerprint(k),
                    f.path.display(),
                    e.line
                ),
                "Ask the host's administrator for a certificate from a CA you trust.",
            );
        }
    }

    let authorities = known_hosts::verify::cert_authorities_for(&files, &cfg.name, cfg.port);
    let matching: Vec<_> = authorities
        .iter()
        .filter(|e| e.key.key_data() == cert.signature_key())
        .collect();
    if let Some(entry) = matching.first() {
        let at = entry_location(&files, entry);
        let cas: Vec<PublicKey> = matching.iter().map(|e| e.key.clone()).collect();
        return match certs::check_host_cert(cert, &cfg.name, &cas, now()) {
            CertDecision::Accept { .. } => {
                tracing::info!(
                    "host certificate of {name} accepted via @cert-authority {at}: {info}"
                );
                Decision::Accept
            }
            CertDecision::Reject { reason, .. } => refuse(
                &reason,
                &format!(
                    "The CA is trusted by {at}, but this certificate is not valid for {}; ask \
                     the host's administrator to issue a correct one.",
                    cfg.name
                ),
            ),
        };
    }

    // No trusted CA signed it: OpenSSH then checks the certified key as a plain host key.
    match known_hosts::check(&files, &cfg.name, cfg.port, &key) {
        HostKeyVerdict::Trusted { path, line } => {
            tracing::info!(
                "host key {} for {name} (in a certificate from an untrusted CA) found in {}:{line}",
                info.key_fingerprint,
                path.display()
            );
            Decision::Accept
        }
        _ if !authorities.is_empty() => {
            let listed: Vec<String> = authorities
                .iter()
                .map(|e| format!("{} ({})", fingerprint(&e.key), entry_location(&files, e)))
                .collect();
            refuse(
                &format!(
                    "CA {} is not trusted for {}: the @cert-authority lines for it list {}",
                    info.ca_fingerprint,
                    cfg.name,
                    listed.join(", ")
                ),
                "Check with the host's administrator which CA signs its certificate.",
            )
        }
        // Unreachable in practice (certificates are only asked for when a CA line applies,
        // or with --pin, handled above); treat as a plain key.
        _ => verify(cfg, &key),
    }
}

/// `file:line` of a known_hosts entry, for messages.
fn entry_location(files: &[KnownHostsFile], entry: &known_hosts::Entry) -> String {
    files
        .iter()
        .find(|f| f.entries().any(|e| std::ptr::eq(e, entry)))
        .map(|f| format!("{}:{}", f.path.display(), entry.line))
        .unwrap_or_else(|| format!("line {}", entry.line))
}

/// Host-key algorithms already on record for this host, for OpenSSH's trick of asking the
/// server for a key we can verify (a host known by its ECDSA key is asked for that key
/// rather than for a new ed25519 one). Empty with --pin.
pub(super) fn known_algorithms(cfg: &VerifyConfig) -> Vec<russh::keys::Algorithm> {
    if !cfg.pins.is_empty() {
        return Vec::new();
    }
    let files = load_files_silently(cfg);
    known_hosts::verify::known_algorithms(&files, &cfg.name, cfg.port)
}

/// The known_hosts files that load, without a word about the others: for decisions taken
/// before the handshake, whose files `load_files` reads again (with warnings) to verify.
fn load_files_silently(cfg: &VerifyConfig) -> Vec<KnownHostsFile> {
    cfg.user_files
        .iter()
        .chain(cfg.global_files.iter())
        .filter_map(|p| KnownHostsFile::load(p).ok())
        .collect()
}

fn load_files(cfg: &VerifyConfig) -> Vec<KnownHostsFile> {
    let mut files = Vec::new();
    for path in cfg.user_files.iter().chain(cfg.global_files.iter()) {
        match KnownHostsFile::load(path) {
            Ok(f) => {
                if !cfg.quiet {
                    for w in f.warnings() {
                        errln!("msh: warning: {w} (line ignored)");
                    }
                }
                files.push(f);
            }
            Err(e) => {
                if !cfg.quiet {
                    errln!(
                        "msh: warning: cannot read known_hosts file: {} (skipped)",
                        msh_common::Chain(&e)
                    );
                }
            }
        }
    }
    files
}

fn unknown_host(cfg: &VerifyConfig, key: &PublicKey, fp: &str, name: &str) -> Decision {
    let how_to_trust = format!(
        "to trust it, confirm the fingerprint with the host's administrator, then connect once \
         with -o StrictHostKeyChecking=accept-new, or use --pin {fp}"
    );
    match cfg.strict {
        StrictHostKeyChecking::Yes => Decision::Refuse(format!(
            "host key verification failed: no known_hosts entry for {name} ({} key {fp}) and \
             StrictHostKeyChecking=yes; {how_to_trust}",
            key_label(key)
        )),
        StrictHostKeyChecking::AcceptNew => record(cfg, key, name),
        StrictHostKeyChecking::Ask => {
            if cfg.batch_mode {
                return Decision::Refuse(format!(
                    "host key verification failed: no known_hosts entry for {name} ({} key \
                     {fp}) and BatchMode=yes forbids asking; {how_to_trust}",
                    key_label(key)
                ));
            }
            ask_and_record(cfg, key, fp, name, |e| {
                format!(
                    "host key verification failed: no known_hosts entry for {name} ({} key \
                     {fp}) and no terminal to ask on ({e}); {how_to_trust}",
                    key_label(key)
                )
            })
        }
    }
}

/// Appends the key to the first user known_hosts file and says so (unless -q).
fn record(cfg: &VerifyConfig, key: &PublicKey, name: &str) -> Decision {
    let Some(path) = cfg.user_files.first() else {
        return Decision::Refuse(format!(
            "cannot record the key of {name}: no user known_hosts file (set \
             -o UserKnownHostsFile=PATH)"
        ));
    };
    if let Err(e) = ensure_parent(path) {
        return Decision::Refuse(format!(
            "cannot record the key of {name} in {}: {e}",
            path.display()
        ));
    }
    match known_hosts::write::append(path, &cfg.name, cfg.port, key, cfg.hash_known_hosts) {
        Ok(()) => {
            if !cfg.quiet {
                errln!(
                    "Warning: Permanently added '{name}' ({}) to the list of known hosts ({}).",
                    key_label(key),
                    path.display()
                );
            }
            Decision::Accept
        }
        Err(e) => Decision::Refuse(format!(
            "cannot record the key of {name}: {}",
            msh_common::Chain(&e)
        )),
    }
}

/// Creates `~/.ssh` (mode 0700) when the known_hosts file's directory is missing, as ssh
/// does on first use.
fn ensure_parent(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.exists() => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir),
        _ => Ok(()),
    }
}

/// Asks on the terminal; records the key when the user says yes. `no_terminal` words the
/// refusal when there is no terminal to ask on.
fn ask_and_record(
    cfg: &VerifyConfig,
    key: &PublicKey,
    fp: &str,
    name: &str,
    no_terminal: impl FnOnce(std::io::Error) -> String,
) -> Decision {
    match ask(name, key, fp) {
        Ok(true) => record(cfg, key, name),
        Ok(false) => Decision::Refuse(format!(
            "host key verification failed: {name} ({} key {fp}) was not accepted",
            key_label(key)
        )),
        Err(e) => Decision::Refuse(no_terminal(e)),
    }
}

/// OpenSSH's question on /dev/tty. Ok(true) = trust; Err when there is no terminal.
fn ask(name: &str, key: &PublicKey, fp: &str) -> std::io::Result<bool> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    let mut out = &tty;
    let mut input = std::io::BufReader::new(&tty);
    write!(
        out,
        "The authenticity of host '{name}' can't be established.\r\n{} key fingerprint is {fp}.\r\n\
         Are you sure you want to continue connecting (yes/no/[fingerprint])? ",
        key_label(key)
    )?;
    out.flush()?;
    loop {
        let mut line = String::new();
        if input.read_line(&mut line)? == 0 {
            return Ok(false);
        }
        let answer = line.trim();
        match answer.to_ascii_lowercase().as_str() {
            "yes" => return Ok(true),
            "no" => return Ok(false),
            _ if answer == fp => return Ok(true),
            _ if answer.starts_with("SHA256:") => {
                write!(
                    out,
                    "The fingerprint you entered does not match the host key.\r\nPlease type 'yes', 'no' or the fingerprint: "
                )?;
            }
            _ => write!(out, "Please type 'yes', 'no' or the fingerprint: ")?,
        }
        out.flush()?;
    }
}
