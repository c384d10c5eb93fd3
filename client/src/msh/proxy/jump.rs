//! The jump hosts a connection goes through, each with settings of its own.
//!
//! As OpenSSH, which runs `ssh [-l user] [-p port] [-F file] [-v] -J REST -W '[%h]:%p' LAST`
//! for `ProxyJump FIRST,...,LAST` (ssh.c): the last hop of the list is reached through the
//! others, which become its own ProxyJump (ahead of anything its Host blocks say); the
//! first hop's Host blocks decide its route, which may be another ProxyJump or a
//! ProxyCommand. A hop inherits only `-F`, `-v` and `-q` from the command line; `-o`,
//! `-i`, `--pin` and the rest apply to the destination alone.

use std::path::Path;

use anyhow::{bail, Context, Result};
use clap::Parser;
use msh_common::ssh_config::proxy::JumpHop;

use super::super::settings::{self, Args, Proxy, Settings};

/// More hops than anyone routes through: a ProxyJump loop in the config files.
const MAX_HOPS: usize = 16;

/// The hops before `target`, first connected to first. Empty for a direct connection or
/// a ProxyCommand.
pub(super) fn plan(
    target: &Settings,
    home: Option<&Path>,
    local_user: &str,
) -> Result<Vec<Settings>> {
    let mut hops: Vec<Settings> = Vec::new();
    loop {
        let first = hops.first().unwrap_or(target);
        let Some(Proxy::Jump { hops: list, origin }) = &first.proxy else {
            return Ok(hops);
        };
        let Some((last, rest)) = list.split_last() else {
            return Ok(hops);
        };
        if hops.len() >= MAX_HOPS {
            bail!(
                "{origin}: more than {MAX_HOPS} jump hosts before {}: is there a ProxyJump loop \
                 in the config file?",
                target.host_arg
            );
        }
        let hop = resolve_hop(first, last, rest, home, local_user)
            .with_context(|| format!("{origin}: jump host {last}"))?;
        hops.insert(0, hop);
    }
}

/// The settings of jump host `hop`, reached through `rest`, as `msh` would resolve them for
/// `msh [-F file] [-v] [-q] [-p port] [-J rest] -- [user@]host`.
fn resolve_hop(
    parent: &Settings,
    hop: &JumpHop,
    rest: &[JumpHop],
    home: Option<&Path>,
    local_user: &str,
) -> Result<Settings> {
    let mut argv: Vec<String> = vec!["msh".to_string()];
    argv.extend(parent.hop_flags.iter().cloned());
    if let Some(p) = hop.port {
        argv.push("-p".to_string());
        argv.push(p.to_string());
    }
    if !rest.is_empty() {
        let list: Vec<String> = rest.iter().map(ToString::to_string).collect();
        argv.push("-J".to_string());
        argv.push(list.join(","));
    }
    argv.push("--".to_string());
    argv.push(match &hop.user {
        Some(u) => format!("{u}@{}", hop.host),
        None => hop.host.clone(),
    });
    let args = Args::try_parse_from(&argv).map_err(|e| anyhow::anyhow!("{e}"))?;
    settings::resolve(args, home, local_user)
}

/// A hop for messages: `bastion` or `alias = 10.0.0.1`, with the port.
pub(super) fn describe(s: &Settings) -> String {
    if s.host_arg == s.host {
        format!("{} port {}", s.host, s.port)
    } else {
        format!("{} = {} port {}", s.host_arg, s.host, s.port)
    }
}
