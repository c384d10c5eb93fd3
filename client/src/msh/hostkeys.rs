//! UpdateHostKeys: after user authentication an OpenSSH server (and mshd) announces all its
//! plain host keys (`hostkeys-00@openssh.com`, OpenSSH PROTOCOL §2.5). When the host was
//! verified through a key in the user's known_hosts, msh asks the server to prove it holds
//! the keys it does not know yet (`hostkeys-prove-00@openssh.com`: one signature each over
//! the request name, the session id and the key), then records them and removes the lines of
//! this host's keys the server no longer has, in one locked atomic rewrite (clientloop.c
//! `client_input_hostkeys` / `update_known_hosts`).
//!
//! Never for a host accepted through `--pin`, a certificate, the global known_hosts file, or
//! recorded just now (StrictHostKeyChecking accept-new / ask): trust learned that way is not
//! extended to other keys. Only the first UserKnownHostsFile is written, as ssh does.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use msh_common::known_hosts::{self, KnownHostsFile, Marker};
use russh::keys::PublicKey;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::settings::UpdateHostKeys;
use super::verify::VerifyConfig;

/// Updates still running (proof awaited or file being written): msh waits for them before
/// it exits, since the command may end before the server's proof arrives.
static PENDING: Mutex<Vec<JoinHandle<()>>> = Mutex::new(Vec::new());

/// Waits (bounded) for updates started on any connection of this process.
pub(super) async fn wait_pending() {
    let handles: Vec<_> = PENDING
        .lock()
        .map(|mut p| std::mem::take(&mut *p))
        .unwrap_or_default();
    for h in handles {
        if tokio::time::timeout(std::time::Duration::from_secs(5), h)
            .await
            .is_err()
        {
            tracing::warn!("UpdateHostKeys: gave up waiting for the server's proof");
        }
    }
}

/// Whether a verified host key may lead to an update: `Some(key)` when the key the server
/// proved itself with is a plain key found in a user known_hosts file (checked before
/// verification may record it).
pub(super) fn eligible(cfg: &VerifyConfig, key: &PublicKey) -> Option<PublicKey> {
    if cfg.update == UpdateHostKeys::No || !cfg.pins.is_empty() {
        return None;
    }
    if cfg.update == UpdateHostKeys::Ask && cfg.batch_mode {
        return None;
    }
    let files: Vec<KnownHostsFile> = cfg
        .user_files
        .iter()
        .filter_map(|p| KnownHostsFile::load(p).ok())
        .collect();
    match known_hosts::check(&files, &cfg.name, cfg.port, key) {
        known_hosts::HostKeyVerdict::Trusted { .. } => Some(key.clone()),
        _ => None,
    }
}

/// What the announcement changes for this host.
struct Plan {
    path: PathBuf,
    announced: Vec<PublicKey>,
    new: Vec<PublicKey>,
    stale: usize,
}

fn label(key: &PublicKey) -> String {
    format!(
        "{} {}",
        msh_common::keys::key_type_label(key),
        msh_common::keys::fingerprint(key)
    )
}

/// Decides what `announced` changes. None when there is nothing to do or the announcement
/// is suspicious (logged).
fn plan(cfg: &VerifyConfig, kex_key: &PublicKey, announced: Vec<PublicKey>) -> Option<Plan> {
    let name = known_hosts::host_key_name(&cfg.name, cfg.port);
    for (i, k) in announced.iter().enumerate() {
        if announced
            .iter()
            .skip(i + 1)
            .any(|o| o.key_data() == k.key_data())
        {
            tracing::warn!("{name} announced the host key {} twice; ignored", label(k));
            return None;
        }
    }
    // ssh ignores an announcement that lacks the key the connection was verified with: the
    // server is misconfigured or not the one we think.
    if !announced.iter().any(|k| k.key_data() == kex_key.key_data()) {
        tracing::info!("{name} announced host keys without the one it proved itself with; ignored");
        return None;
    }
    let path = cfg.user_files.first()?.clone();
    let user: Vec<KnownHostsFile> = cfg
        .user_files
        .iter()
        .filter_map(|p| KnownHostsFile::load(p).ok())
        .collect();
    let all: Vec<KnownHostsFile> = user
        .iter()
        .cloned()
        .chain(
            cfg.global_files
                .iter()
                .filter_map(|p| KnownHostsFile::load(p).ok()),
        )
        .collect();
    let known = |k: &PublicKey| {
        user.iter().any(|f| {
            known_hosts::find(f, &cfg.name, cfg.port)
                .iter()
                .any(|e| e.marker == Marker::None && e.key.key_data() == k.key_data())
        })
    };
    let new: Vec<PublicKey> = announced
        .iter()
        .filter(|k| !known(k))
        .filter(|k| {
            let revoked = known_hosts::verify::revoked_entry(&all, k).is_some();
            if revoked {
                tracing::warn!(
                    "{name} announced the @revoked host key {}; ignored",
                    label(k)
                );
            }
            !revoked
        })
        .cloned()
        .collect();
    let stale = user
        .iter()
        .find(|f| f.path == path)
        .map(|f| {
            known_hosts::find(f, &cfg.name, cfg.port)
                .iter()
                .filter(|e| {
                    e.marker == Marker::None
                        && !announced.iter().any(|k| k.key_data() == e.key.key_data())
                })
                .count()
        })
        .unwrap_or(0);
    if new.is_empty() && stale == 0 {
        tracing::debug!("{name}: the announced host keys are all known");
        return None;
    }
    Some(Plan {
        path,
        announced,
        new,
        stale,
    })
}

/// Called from russh's handler on `hostkeys-00@openssh.com`. `trusted` is what `eligible`
/// returned at verification (taken, so a second announcement changes nothing).
pub(super) fn announced(
    cfg: &Arc<VerifyConfig>,
    trusted: Option<PublicKey>,
    keys: Vec<PublicKey>,
    session: &mut russh::client::Session,
) {
    let Some(kex_key) = trusted else {
        tracing::debug!(
            "server announced {} host keys; not updating known_hosts (UpdateHostKeys off, or \
             the host was not verified through a user known_hosts key)",
            keys.len()
        );
        return;
    };
    // A small file read in the session task, once per connection: the proof must be asked
    // for from here (the handler has no Handle).
    let Some(plan) = plan(cfg, &kex_key, keys) else {
        return;
    };
    let proof = if plan.new.is_empty() {
        None
    } else {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if let Err(e) = session.request_hostkeys_prove(tx, plan.new.clone()) {
            tracing::warn!("UpdateHostKeys: cannot ask for host key proofs: {e}");
            return;
        }
        Some(rx)
    };
    let cfg = cfg.clone();
    let span = tracing::Span::current();
    let task = tokio::spawn(
        async move {
            if let Some(rx) = proof {
                match rx.await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        if !cfg.quiet {
                            errln!(
                                "msh: warning: {} did not prove it holds its new host keys ({e}); \
                             known_hosts left unchanged",
                                known_hosts::host_key_name(&cfg.name, cfg.port)
                            );
                        }
                        return;
                    }
                    Err(_) => return,
                }
            }
            let in_host = tracing::Span::current();
            let _ =
                tokio::task::spawn_blocking(move || in_host.in_scope(|| apply(&cfg, &plan))).await;
        }
        .instrument(span),
    );
    if let Ok(mut p) = PENDING.lock() {
        p.push(task);
    }
}

/// Writes the proved changes (after asking, with UpdateHostKeys=ask) and says what changed.
fn apply(cfg: &VerifyConfig, plan: &Plan) {
    let name = known_hosts::host_key_name(&cfg.name, cfg.port);
    if cfg.update == UpdateHostKeys::Ask && !ask(&name, plan) {
        return;
    }
    match known_hosts::write::update_host_keys(
        &plan.path,
        &cfg.name,
        cfg.port,
        &plan.announced,
        &plan.new,
        cfg.hash_known_hosts,
    ) {
        Ok(u) => {
            tracing::info!(
                "UpdateHostKeys {name}: {} added, {} removed in {}",
                u.added.len(),
                u.removed.len(),
                plan.path.display()
            );
            if cfg.quiet {
                return;
            }
            for k in &u.added {
                errln!(
                    "msh: learned new host key for {name}: {} (added to {})",
                    label(k),
                    plan.path.display()
                );
            }
            for k in &u.removed {
                errln!(
                    "msh: removed host key of {name} the server no longer offers: {} (from {})",
                    label(k),
                    plan.path.display()
                );
            }
        }
        Err(e) => {
            if !cfg.quiet {
                errln!(
                    "msh: warning: cannot update the host keys of {name}: {}",
                    msh_common::Chain(&e)
                );
            }
        }
    }
}

/// UpdateHostKeys=ask: the changes, then ssh's question on /dev/tty. No terminal = no.
fn ask(name: &str, plan: &Plan) -> bool {
    use std::io::{BufRead, Write};
    let Ok(tty) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
    else {
        return false;
    };
    let mut out = &tty;
    let mut text = format!("The server {name} has updated its host keys.\r\n");
    for k in &plan.new {
        text.push_str(&format!("New key: {}\r\n", label(k)));
    }
    if plan.stale > 0 {
        text.push_str(&format!(
            "{} key(s) in {} are no longer offered and would be removed.\r\n",
            plan.stale,
            plan.path.display()
        ));
    }
    text.push_str("Accept updated hostkeys? (yes/no): ");
    if out
        .write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .is_err()
    {
        return false;
    }
    let mut line = String::new();
    match std::io::BufReader::new(&tty).read_line(&mut line) {
        Ok(_) => line.trim().eq_ignore_ascii_case("yes"),
        Err(_) => false,
    }
}
