//! Host verification, run from russh's `check_server_key` before any user authentication is
//! sent: `--pin` fingerprints, else the known_hosts files (user file, then global) with
//! StrictHostKeyChecking deciding what an unknown host means. The decision's message is kept
//! by the caller because russh's own error ("unknown key") says nothing a user can act on.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use msh_common::known_hosts::{self, HostKeyVerdict, KnownHostsFile};
use russh::keys::PublicKey;

use crate::settings::{Settings, StrictHostKeyChecking};

/// What verification decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Accept,
    /// Refused: the one line to print (without the `msh: ` prefix).
    Refuse(String),
}

/// The parts of `Settings` host verification needs.
#[derive(Debug, Clone)]
pub struct VerifyConfig {
    /// Name for messages and known_hosts (HostKeyAlias or the host).
    pub name: String,
    pub port: u16,
    pub pins: Vec<String>,
    pub strict: StrictHostKeyChecking,
    pub batch_mode: bool,
    pub hash_known_hosts: bool,
    pub quiet: bool,
    pub user_files: Vec<PathBuf>,
    pub global_files: Vec<PathBuf>,
}

impl VerifyConfig {
    pub fn from_settings(s: &Settings) -> Self {
        // As OpenSSH: a HostKeyAlias is the known_hosts name verbatim, without `[..]:port`.
        let port = if s.host_key_alias.is_some() {
            22
        } else {
            s.port
        };
        VerifyConfig {
            name: s.known_hosts_name().to_string(),
            port,
            pins: s.pins.clone(),
            strict: s.strict,
            batch_mode: s.batch_mode,
            hash_known_hosts: s.hash_known_hosts,
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
pub fn verify(cfg: &VerifyConfig, key: &PublicKey) -> Decision {
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
        HostKeyVerdict::Unknown => unknown_host(cfg, key, &fp, &name),
        #[allow(unreachable_patterns)]
        other => Decision::Refuse(format!(
            "host key verification failed for {name}: {other:?}"
        )),
    }
}

/// Host-key algorithms already on record for this host, for OpenSSH's trick of asking the
/// server for a key we can verify (a host known by its ECDSA key is asked for that key
/// rather than for a new ed25519 one). Empty with --pin.
pub fn known_algorithms(cfg: &VerifyConfig) -> Vec<russh::keys::Algorithm> {
    if !cfg.pins.is_empty() {
        return Vec::new();
    }
    let files: Vec<KnownHostsFile> = cfg
        .user_files
        .iter()
        .chain(cfg.global_files.iter())
        .filter_map(|p| KnownHostsFile::load(p).ok())
        .collect();
    known_hosts::verify::known_algorithms(&files, &cfg.name, cfg.port)
}

fn load_files(cfg: &VerifyConfig) -> Vec<KnownHostsFile> {
    let mut files = Vec::new();
    for path in cfg.user_files.iter().chain(cfg.global_files.iter()) {
        match KnownHostsFile::load(path) {
            Ok(f) => {
                if !cfg.quiet {
                    for w in f.warnings() {
                        eprintln!("msh: warning: {w} (line ignored)");
                    }
                }
                files.push(f);
            }
            Err(e) => {
                if !cfg.quiet {
                    eprintln!("msh: warning: cannot read known_hosts file: {e} (skipped)");
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
            match ask(name, key, fp) {
                Ok(true) => record(cfg, key, name),
                Ok(false) => Decision::Refuse(format!(
                    "host key verification failed: {name} ({} key {fp}) was not accepted",
                    key_label(key)
                )),
                Err(e) => Decision::Refuse(format!(
                    "host key verification failed: no known_hosts entry for {name} ({} key \
                     {fp}) and no terminal to ask on ({e}); {how_to_trust}",
                    key_label(key)
                )),
            }
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
                eprintln!(
                    "Warning: Permanently added '{name}' ({}) to the list of known hosts ({}).",
                    key_label(key),
                    path.display()
                );
            }
            Decision::Accept
        }
        Err(e) => Decision::Refuse(format!("cannot record the key of {name}: {e}")),
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
