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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// resolve + plan for `argv` with `config` as the -F file.
    fn plan_for(name: &str, config: &str, argv: &[&str]) -> Result<Vec<Settings>> {
        let dir = std::env::temp_dir().join(format!("msh-jump-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("config");
        std::fs::write(&cfg, config).unwrap();
        let mut full = vec![
            "msh".to_string(),
            "-F".to_string(),
            cfg.display().to_string(),
        ];
        full.extend(argv.iter().map(|s| s.to_string()));
        let args = Args::try_parse_from(&full).unwrap();
        let target = settings::resolve(args, Some(&dir), "me")?;
        let r = plan(&target, Some(&dir), "me");
        let _ = std::fs::remove_dir_all(&dir);
        r
    }

    #[test]
    fn chain_order_and_per_hop_settings() {
        let cfg = "Host b1\n  HostName 10.0.0.1\n  User ops\n  HostKeyAlias bastion-one\n\
                   Host b2\n  Port 2200\n  ProxyJump ignored\n";
        let hops = plan_for(
            "order",
            cfg,
            &["-o", "User=final", "-J", "b1,root@b2:2222", "t"],
        )
        .unwrap();
        let shown: Vec<(String, u16, String, Option<String>)> = hops
            .iter()
            .map(|h| {
                (
                    h.host.clone(),
                    h.port,
                    h.user.clone(),
                    h.host_key_alias.clone(),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "10.0.0.1".into(),
                    22,
                    "ops".into(),
                    Some("bastion-one".into())
                ),
                // The list's user and port win over b2's block; -J b1 wins over its ProxyJump;
                // the destination's -o User does not reach the hops.
                ("b2".into(), 2222, "root".into(), None),
            ]
        );
        // The hops keep -F (so their Host blocks apply) and nothing else of the command line.
        assert_eq!(hops[1].hop_flags.first().map(String::as_str), Some("-F"));
        assert!(hops[0].pins.is_empty());
    }

    #[test]
    fn a_proxyjump_loop_stops() {
        let cfg = "Host a\n  ProxyJump b\nHost b\n  ProxyJump a\n";
        let e = format!("{:#}", plan_for("loop", cfg, &["a"]).unwrap_err());
        assert!(e.contains("more than 16 jump hosts"), "{e}");
    }

    #[test]
    fn first_hop_may_use_a_proxy_command() {
        let cfg = "Host b\n  ProxyCommand nc %h %p\n";
        let hops = plan_for("cmd", cfg, &["-J", "b", "t"]).unwrap();
        assert!(matches!(hops[0].proxy, Some(Proxy::Command { .. })));
    }
}
