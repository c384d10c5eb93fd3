//! `msh-keygen inspect CERT`: what `ssh-keygen -L -f CERT` prints for each certificate in the
//! file (or on standard input with `-`), plus one extra `Valid (UTC):` line.

use std::io::Read as _;
use std::path::Path;

use anyhow::{bail, Context};
use msh_common::certs;
use russh::keys::Certificate;

use super::Report;

pub(super) fn run(path: &Path) -> anyhow::Result<Report> {
    let stdin = path.as_os_str() == "-";
    let (name, text) = if stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read standard input")?;
        ("(stdin)".to_string(), s)
    } else {
        let s = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read certificate {}", path.display()))?;
        (path.display().to_string(), s)
    };
    let mut out = String::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cert = Certificate::from_openssh(line).map_err(|e| {
            let hint = if line.contains("PRIVATE KEY") || !line.contains("-cert-v01@openssh.com") {
                " (a certificate is the KEY-cert.pub file written by msh-keygen sign or \
                 ssh-keygen -s)"
            } else {
                ""
            };
            anyhow::anyhow!("{name}:{}: not an OpenSSH certificate: {e}{hint}", n + 1)
        })?;
        out.push_str(&certs::render(&name, &cert));
    }
    if out.is_empty() {
        bail!("{name}: no certificate in the file");
    }
    Ok(Report {
        stdout: out,
        ..Report::default()
    })
}
