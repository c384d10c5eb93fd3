//! `ProxyCommand`: the connection is the stdin/stdout of a command run as ssh runs it,
//! `/bin/sh -c "exec COMMAND"` with its stderr on ours. The `%` tokens are expanded only
//! with names a shell cannot misread (msh_common::ssh_config::proxy); the command text is
//! the user's. When msh ends, the command gets SIGHUP, as ssh sends it (ssh.c,
//! kill_proxy_command).

use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context as TaskContext, Poll};

use anyhow::{Context, Result};
use msh_common::ssh_config::proxy::{expand_proxy_command, CommandTokens};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::process::{Child, ChildStdin, ChildStdout};

use super::super::settings::Settings;

/// PIDs of the proxy commands started, for `hang_up`.
static RUNNING: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// The proxy command's stdout (what the server sends) and stdin (what we send).
pub(super) struct CommandStream {
    _child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
}

/// Starts `command` for the connection to `s`.
pub(super) fn spawn(s: &Settings, command: &str, origin: &str) -> Result<CommandStream> {
    let tokens = CommandTokens {
        host: &s.host,
        port: s.port,
        user: &s.user,
        original: &s.host_arg,
    };
    let expanded = expand_proxy_command(command, &tokens)
        .with_context(|| format!("{origin}: ProxyCommand {command}"))?;
    tracing::info!("executing proxy command: exec {expanded}");
    let mut child = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("exec {expanded}"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("{origin}: cannot run ProxyCommand {expanded}"))?;
    if let (Some(pid), Ok(mut running)) = (child.id(), RUNNING.lock()) {
        running.push(pid);
    }
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        anyhow::bail!("{origin}: ProxyCommand {expanded}: no pipes to the command");
    };
    Ok(CommandStream {
        _child: child,
        stdin,
        stdout,
    })
}

/// Sends SIGHUP to the proxy commands still running (msh exits without dropping the
/// connection, see msh::main, so `kill_on_drop` alone would not stop them).
pub(crate) fn hang_up() {
    let pids = match RUNNING.lock() {
        Ok(mut r) => std::mem::take(&mut *r),
        Err(_) => return,
    };
    for pid in pids {
        if let Ok(raw) = i32::try_from(pid) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(raw),
                nix::sys::signal::Signal::SIGHUP,
            );
        }
    }
}

impl AsyncRead for CommandStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdout).poll_read(cx, buf)
    }
}

impl AsyncWrite for CommandStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stdin).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdin).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdin).poll_shutdown(cx)
    }
}
