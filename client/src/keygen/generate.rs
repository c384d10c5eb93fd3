//! `msh-keygen generate`: a new key pair in OpenSSH format, like `ssh-keygen -t -b -f -C -N`,
//! except that an existing key is never replaced without `--force`.

use std::io::IsTerminal;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use anyhow::{bail, Context};
use msh_common::keys::{self, KeyKind};

use super::{GenerateArgs, Report};

/// ssh-keygen's default comment: `user@hostname`.
fn default_comment() -> String {
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_default();
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default();
    format!("{user}@{host}")
}

/// Asks twice on the terminal, as ssh-keygen does; three mismatches give up.
fn prompt_passphrase() -> anyhow::Result<String> {
    for _ in 0..3 {
        let first = rpassword::prompt_password("Enter passphrase (empty for no passphrase): ")
            .context("cannot read the passphrase from the terminal")?;
        let second = rpassword::prompt_password("Enter same passphrase again: ")
            .context("cannot read the passphrase from the terminal")?;
        if first == second {
            return Ok(first);
        }
        eprintln!("Passphrases do not match.  Try again.");
    }
    bail!("passphrases did not match three times; no key written")
}

fn refuse_existing(path: &Path) -> anyhow::Result<()> {
    for p in [path.to_path_buf(), keys::public_key_path(path)] {
        if std::fs::symlink_metadata(&p).is_ok() {
            bail!(
                "{} already exists; not overwriting it (pass --force to replace the key, or \
                 choose another path with -f)",
                p.display()
            );
        }
    }
    Ok(())
}

/// Whether `dir` is the user's `~/.ssh` (compared after resolving `~` and the parent, so
/// `-f ~/.ssh/id_ed25519` and `-f $HOME/./.ssh/id_ed25519` both count).
fn is_users_ssh_dir(dir: &Path) -> bool {
    let Some(home) = dirs::home_dir() else {
        return false;
    };
    let canonical = |p: &Path| std::fs::canonicalize(p).ok();
    match (dir.parent().and_then(canonical), canonical(&home)) {
        (Some(parent), Some(home)) => parent == home && dir.file_name() == Some(".ssh".as_ref()),
        _ => false,
    }
}

pub(super) fn run(a: GenerateArgs) -> anyhow::Result<Report> {
    let kind = KeyKind::parse(&a.key_type, a.bits)?;
    let mut created = None;
    if let Some(dir) = a.file.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() && is_users_ssh_dir(dir) {
            // As ssh-keygen: the user's own ~/.ssh is created (0700) for a key saved in it;
            // any other missing directory is the user's to create.
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            created = Some(dir.to_path_buf());
        } else if !dir.is_dir() {
            bail!(
                "directory {} does not exist; create it first (mkdir -m 700 -p {})",
                dir.display(),
                dir.display()
            );
        }
    }
    if !a.force {
        refuse_existing(&a.file)?;
    }
    let comment = a.comment.clone().unwrap_or_else(default_comment);
    let passphrase = match a.passphrase {
        Some(p) => p,
        None if std::io::stdin().is_terminal() => prompt_passphrase()?,
        None => String::new(),
    };
    let key = keys::generate(kind, &comment)?;
    keys::write_key_pair(&a.file, &key, Some(passphrase.as_str()))
        .with_context(|| format!("cannot write the key to {}", a.file.display()))?;
    let mut r = Report::default();
    if !a.quiet {
        if let Some(dir) = created {
            r.stdout = format!("Created directory '{}'.\n", dir.display());
        }
        r.stdout += &format!(
            "Your identification has been saved in {path}\n\
             Your public key has been saved in {path}.pub\n\
             The key fingerprint is:\n\
             {fp} {comment}\n",
            path = a.file.display(),
            fp = keys::fingerprint(key.public_key()),
        );
    }
    Ok(r)
}
