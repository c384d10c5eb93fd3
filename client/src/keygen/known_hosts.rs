//! `msh-keygen known-hosts find|remove|hash`: `ssh-keygen -F`, `-R` and `-H` on a known_hosts
//! file (default `~/.ssh/known_hosts`), with the same output. Rewrites are atomic, locked and
//! keep `FILE.old` (done by `msh_common::known_hosts::write`). Unlike ssh-keygen, which
//! refuses to rewrite a file holding a line it cannot parse, such lines are kept as they are
//! and reported on stderr with FILE:LINE.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use msh_common::known_hosts::{self as kh, HostField, KnownHostsFile, Marker};

use super::Report;

#[derive(Debug, Args)]
pub(super) struct HostArgs {
    /// Host name or address (or `[host]:port` as written in the file).
    host: String,
    /// Port: entries for a port other than 22 are stored as `[host]:port`.
    #[arg(short = 'p', long = "port", default_value_t = 22)]
    port: u16,
    /// known_hosts file (default ~/.ssh/known_hosts).
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(super) struct FileArgs {
    /// known_hosts file (default ~/.ssh/known_hosts).
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
}

fn resolve_file(file: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match file {
        Some(f) => Ok(f),
        None => match dirs::home_dir() {
            Some(h) => Ok(h.join(".ssh").join("known_hosts")),
            None => bail!("no home directory to find ~/.ssh/known_hosts in; name the file with -f"),
        },
    }
}

/// Loads `path`, which must exist (a missing file is an error here, as with ssh-keygen).
fn load_existing(path: &Path) -> anyhow::Result<KnownHostsFile> {
    std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(KnownHostsFile::load(path)?)
}

fn warnings_text(file: &KnownHostsFile) -> String {
    file.warnings()
        .iter()
        .map(|w| format!("msh-keygen: warning: {w} (line kept as it is)\n"))
        .collect()
}

/// The file `a` names (or the default) loaded, the name HOST is stored under, and a report
/// that starts with the file's warnings.
fn open_for_host(a: &HostArgs) -> anyhow::Result<(PathBuf, KnownHostsFile, String, Report)> {
    let path = resolve_file(a.file.clone())?;
    let file = load_existing(&path)?;
    let name = kh::host_key_name(&a.host, a.port);
    let report = Report {
        stderr: warnings_text(&file),
        ..Report::default()
    };
    Ok((path, file, name, report))
}

pub(super) fn find(a: HostArgs) -> anyhow::Result<Report> {
    let (path, file, name, mut r) = open_for_host(&a)?;
    for e in kh::find(&file, &a.host, a.port) {
        let marker = match e.marker {
            Marker::CertAuthority => "CA",
            Marker::Revoked => "REVOKED",
            Marker::None => "",
        };
        r.stdout.push_str(&format!(
            "# Host {name} found: line {} {marker}\n{}\n",
            e.line, e.text
        ));
    }
    if r.stdout.is_empty() {
        r.stderr.push_str(&format!(
            "msh-keygen: {name} not found in {}\n",
            path.display()
        ));
        r.code = 1;
    }
    Ok(r)
}

pub(super) fn remove(a: HostArgs) -> anyhow::Result<Report> {
    let (path, file, name, mut r) = open_for_host(&a)?;
    // The lines remove_host deletes: plain-key lines matching the name (markers are kept).
    let lines: Vec<usize> = file
        .entries()
        .filter(|e| e.marker == Marker::None && kh::entry_matches_host(e, &a.host, a.port))
        .map(|e| e.line)
        .collect();
    let removed = kh::write::remove_host(&path, &a.host, a.port)?;
    if removed == 0 {
        r.stderr
            .push_str(&format!("Host {name} not found in {}\n", path.display()));
        return Ok(r);
    }
    for l in lines {
        r.stdout
            .push_str(&format!("# Host {name} found: line {l}\n"));
    }
    r.stdout.push_str(&format!(
        "{p} updated.\nOriginal contents retained as {p}.old\n",
        p = path.display()
    ));
    Ok(r)
}

pub(super) fn hash(a: FileArgs) -> anyhow::Result<Report> {
    let path = resolve_file(a.file)?;
    let file = load_existing(&path)?;
    let mut r = Report {
        stderr: warnings_text(&file),
        ..Report::default()
    };
    for e in file.entries() {
        // ssh-keygen says this for marker lines too (it hashes none of those anyway).
        if let HostField::Patterns(list) = &e.hosts {
            if list.contains(['*', '?', '!']) {
                r.stderr.push_str(&format!(
                    "{}:{}: ignoring host name with wildcard: {list}\n",
                    path.display(),
                    e.line
                ));
            }
        }
    }
    let hashed = kh::write::hash_file(&path)?;
    r.stdout.push_str(&format!(
        "{p} updated.\nOriginal contents retained as {p}.old\n",
        p = path.display()
    ));
    if hashed > 0 {
        r.stderr.push_str(&format!(
            "WARNING: {}.old contains unhashed entries\n\
             Delete this file to ensure privacy of hostnames\n",
            path.display()
        ));
    }
    Ok(r)
}
