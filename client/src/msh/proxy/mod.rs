//! How the connection reaches the host: a TCP connection, a `ProxyCommand`'s stdin/stdout
//! (`command`), or a chain of jump hosts (`jump`), each reached through a `direct-tcpip`
//! channel of the one before. Every hop is a full msh connection of its own: its settings
//! come from the config file's Host blocks for its own name, its host key is verified with
//! the same rules as a direct connection (known_hosts under its own name and port,
//! HostKeyAlias, StrictHostKeyChecking), and it authenticates before the next hop's channel
//! is asked for. A hop that fails stops everything, and the error names the hop.
//!
//! Also `-W host:port` (`stdio`): the channel to host:port carried on stdin/stdout.

mod command;
mod jump;
pub(super) mod stdio;

use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use russh::client::Handle;

use super::connect::{self, Client};
use super::forward::Inbound;
use super::settings::{Proxy, Settings};

pub(super) use command::hang_up;

/// The connections to the jump hosts, kept open as long as the connection through them.
pub(super) struct Hops(#[allow(dead_code)] Vec<Handle<Client>>);

/// Connects to `settings`' host by its route and verifies it (and every hop, which also
/// authenticates). The caller authenticates to the host itself.
/// `inbound` serves what the host opens towards msh; a jump host may open nothing.
pub(super) async fn connect(
    settings: &Settings,
    home: Option<&Path>,
    inbound: Arc<Inbound>,
) -> Result<(Handle<Client>, Hops)> {
    let hops = jump::plan(settings, home, &super::local_user_name())?;
    let total = hops.len();
    let mut kept = Vec::with_capacity(total);
    let mut prev: Option<(Handle<Client>, String)> = None;
    for (i, hop) in hops.iter().chain(std::iter::once(settings)).enumerate() {
        let label = (i < total)
            .then(|| format!("jump host {} of {total} ({})", i + 1, jump::describe(hop)));
        let serves = if i < total {
            Arc::new(Inbound::default())
        } else {
            inbound.clone()
        };
        let result = match prev.take() {
            None => first_connection(hop, serves).await,
            Some((through, through_label)) => {
                connect::log_settings(hop);
                let stream = open_channel(&through, &through_label, hop).await?;
                kept.push(through);
                connect::handshake(hop, stream, serves).await
            }
        };
        let mut handle = match &label {
            Some(l) => result.with_context(|| l.clone())?,
            None => result?,
        };
        if let Some(l) = label {
            let ids = super::identity_files(hop, home);
            super::auth::authenticate(&mut handle, hop, &ids)
                .await
                .with_context(|| l.clone())?;
            tracing::info!("{l}: authenticated as {}", hop.user);
            prev = Some((handle, l));
        } else {
            return Ok((handle, Hops(kept)));
        }
    }
    Err(anyhow!("no connection was made"))
}

/// The first connection of the route: ProxyCommand or TCP.
async fn first_connection(s: &Settings, inbound: Arc<Inbound>) -> Result<Handle<Client>> {
    match &s.proxy {
        Some(Proxy::Command { command, origin }) => {
            connect::log_settings(s);
            let stream = command::spawn(s, command, origin)?;
            connect::handshake(s, stream, inbound).await
        }
        _ => connect::connect(s, inbound).await,
    }
}

/// A `direct-tcpip` channel through `through` to `s`' HostName and Port, as a stream.
async fn open_channel(
    through: &Handle<Client>,
    through_label: &str,
    s: &Settings,
) -> Result<russh::ChannelStream<russh::client::Msg>> {
    // OpenSSH's stdio forward (-W) names itself 127.0.0.1:65535 as the originator.
    let channel = through
        .channel_open_direct_tcpip(s.host.as_str(), u32::from(s.port), "127.0.0.1", 65535)
        .await
        .map_err(|e| {
            anyhow!(
                "{through_label}: could not open a connection to {}: {}",
                jump::describe(s),
                channel_open_desc(&e)
            )
        })?;
    tracing::info!(
        "{through_label}: channel to {} port {} open",
        s.host,
        s.port
    );
    Ok(channel.into_stream())
}

/// Why a server refused a channel, as OpenSSH words the RFC 4254 reason codes.
pub(super) fn channel_open_desc(e: &russh::Error) -> String {
    use russh::ChannelOpenFailure as F;
    match e {
        russh::Error::ChannelOpenFailure(f) => match f {
            F::AdministrativelyProhibited => {
                "administratively prohibited (the server does not allow it)".to_string()
            }
            F::ConnectFailed => "the server could not connect there".to_string(),
            F::UnknownChannelType => "the server does not support direct-tcpip".to_string(),
            F::ResourceShortage => "resource shortage on the server".to_string(),
            F::Other { code, reason } => format!("refused (code {code}): {reason}"),
        },
        other => connect::russh_desc(other),
    }
}
