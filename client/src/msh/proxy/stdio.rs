//! `-W host:port`: stdin/stdout carried over one `direct-tcpip` channel, with no session,
//! so that another SSH client can use `msh -W %h:%p bastion` as its ProxyCommand. Ends
//! when the far side closes the channel; EOF on stdin is passed on as channel EOF.

use anyhow::{anyhow, Result};
use russh::client::Handle;
use tokio::io::AsyncWriteExt;

use super::super::connect::Client;
use super::super::session::Outcome;
use super::super::settings::Settings;

pub(in super::super) async fn forward(
    handle: &Handle<Client>,
    settings: &Settings,
    host: &str,
    port: u16,
) -> Result<Outcome> {
    let channel = handle
        .channel_open_direct_tcpip(host, u32::from(port), "127.0.0.1", 65535)
        .await
        .map_err(|e| {
            anyhow!(
                "stdio forwarding to {host} port {port} through {}: {}",
                settings.host_description(),
                super::channel_open_desc(&e)
            )
        })?;
    tracing::info!("stdio forwarding to {host} port {port} open");
    let (mut from_remote, mut to_remote) = tokio::io::split(channel.into_stream());
    let upload = async move {
        let mut stdin = tokio::io::stdin();
        if let Err(e) = tokio::io::copy(&mut stdin, &mut to_remote).await {
            tracing::debug!("-W: stdin: {e}");
        }
        let _ = to_remote.shutdown().await;
        // Keep the write half (and so the channel) until the download ends.
        std::future::pending::<()>().await;
    };
    // Unbuffered: the bytes are often an SSH handshake, waiting for each reply. tokio's copy
    // flushes whenever the channel has nothing more to read.
    let download = async move {
        let mut stdout = tokio::io::stdout();
        let r = tokio::io::copy(&mut from_remote, &mut stdout).await;
        let _ = stdout.flush().await;
        r
    };
    tokio::pin!(upload);
    let result = tokio::select! {
        () = &mut upload => Ok(0),
        r = download => r,
    };
    match result {
        Ok(_) => Ok(Outcome::Exited(0)),
        Err(e) => {
            tracing::debug!("-W: stdout: {e}");
            Ok(Outcome::BrokenPipe)
        }
    }
}
