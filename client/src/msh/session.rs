//! One session channel: environment, optional PTY, `exec` or `shell`, then streaming —
//! stdin to the channel (EOF when stdin ends), channel stdout/stderr to ours — until the
//! server closes the channel. Backpressure both ways: we read stdin only as fast as the
//! channel window allows, and read the channel only as fast as our stdout takes it.

use std::collections::VecDeque;

use anyhow::{bail, Context, Result};
use russh::client::Handle;
use russh::{ChannelMsg, Sig};

use super::connect::Client;
use super::escape::{self, Action, EscapeFilter, Event};
use super::settings::{Settings, TtyMode};
use super::stdio::{Input, Output, OutputTx};
use super::terminal;

/// How the remote side ended.
#[derive(Debug)]
pub(super) enum Outcome {
    Exited(u32),
    Signalled(String),
    /// Channel closed without exit-status or exit-signal.
    NoStatus,
    /// A signal told msh itself to stop (interactive session).
    LocalSignal(&'static str),
    /// Our stdout was closed by its reader; msh closed the channel. Exit 255 quietly.
    BrokenPipe,
    /// The user typed the `~.` escape: msh left without waiting for the server.
    EscapeDisconnect,
}

/// Decides whether to request a PTY, printing ssh's notice when one cannot be had.
fn want_pty(settings: &Settings, stdin_tty: bool) -> bool {
    let requested = match settings.tty {
        TtyMode::Never => false,
        TtyMode::ForceAlways => return true,
        TtyMode::Force => true,
        TtyMode::Auto => settings.command.is_none(),
    };
    if requested && !stdin_tty {
        // As ssh: a shell with stdin from a pipe or file runs without a PTY.
        if !settings.quiet && (settings.tty == TtyMode::Force || settings.command.is_none()) {
            errln!("Pseudo-terminal will not be allocated because stdin is not a terminal.");
        }
        return false;
    }
    requested
}

pub(super) async fn run(handle: &Handle<Client>, settings: &Settings) -> Result<Outcome> {
    let channel = handle.channel_open_session().await?;
    let stdin_tty = terminal::stdin_is_tty();
    let pty = want_pty(settings, stdin_tty);

    send_environment(&channel, settings).await?;

    // As ssh: on the session channel, before the command, without asking for a reply.
    if settings.forwarding.agent_socket().is_some() {
        tracing::info!("requesting agent forwarding");
        channel.agent_forward(false).await?;
    }

    // Replies to want_reply requests come back in order.
    let mut pending: VecDeque<&'static str> = VecDeque::new();
    if pty {
        let term = std::env::var("TERM").unwrap_or_else(|_| "xterm".to_string());
        let (cols, rows, pw, ph) = terminal::window_size();
        let modes = terminal::pty_modes();
        channel
            .request_pty(true, &term, cols, rows, pw, ph, &modes)
            .await?;
        pending.push_back("pty");
    }
    match &settings.command {
        Some(name) if settings.subsystem => {
            tracing::info!("subsystem: {name}");
            channel.request_subsystem(true, name.as_str()).await?;
            pending.push_back("subsystem");
        }
        Some(cmd) => {
            tracing::info!("exec: {cmd}");
            channel.exec(true, cmd.as_bytes()).await?;
            pending.push_back("exec");
        }
        None => {
            channel.request_shell(true).await?;
            pending.push_back("shell");
        }
    }

    let (mut read, write) = channel.split();
    let write = std::sync::Arc::new(write);
    let winch_writer = write.clone();

    // Raw mode only with a PTY on a local terminal; the guard restores it on every return
    // from this function (and the panic hook on a panic).
    let raw_guard = if pty && stdin_tty {
        Some(terminal::RawGuard::enable()?)
    } else {
        None
    };
    // Catch the signals that would otherwise kill msh with the terminal still raw. Only in
    // raw mode: elsewhere the default actions (die on SIGINT) are what a user expects.
    let mut signals = if raw_guard.is_some() {
        Some(Signals::new()?)
    } else {
        None
    };

    // As ssh: escapes only when a PTY was requested (also with -tt on a pipe), so a
    // command's piped input passes through untouched.
    let mut escapes = settings.escape_char.filter(|_| pty).map(EscapeFilter::new);
    let escape_char = settings.escape_char.unwrap_or(escape::DEFAULT_ESCAPE);
    let (disconnect_tx, mut disconnect_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let stdout = Output::stdout().context("stdout")?;
    let stderr = Output::stderr().context("stderr")?;
    let mut input = Input::stdin().context("stdin")?;
    let note_tx = stderr.handle();
    let stdin_task = tokio::spawn(async move {
        loop {
            let chunk = match input.read().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!("stdin: {e}");
                    break;
                }
            };
            let events = match &mut escapes {
                Some(f) => f.feed(&chunk),
                None => {
                    // Waits for channel window: this is the upload backpressure.
                    if write.data_bytes(chunk).await.is_err() {
                        return;
                    }
                    continue;
                }
            };
            // `~.` first, before any data of the same read that might wait for a
            // window a dead server will never open.
            if events.contains(&Event::Action(Action::Disconnect)) {
                let _ = disconnect_tx.send(());
                return;
            }
            for event in events {
                match event {
                    Event::Data(d) => {
                        if write.data_bytes(d).await.is_err() {
                            return;
                        }
                    }
                    Event::Action(a) => run_action(a, escape_char, &write, &note_tx).await,
                }
            }
        }
        let _ = write.eof().await;
    });

    let mut stdout_ok = true;
    let mut outcome = Outcome::NoStatus;
    loop {
        let msg = tokio::select! {
            m = read.wait() => m,
            // None only when the stdin task ended without `~.`: that arm is then disabled.
            Some(()) = disconnect_rx.recv() => {
                outcome = Outcome::EscapeDisconnect;
                break;
            }
            s = next_signal(&mut signals) => {
                match s {
                    SignalEvent::Winch => {
                        let (c, r, pw, ph) = terminal::window_size();
                        if let Err(e) = winch_writer.window_change(c, r, pw, ph).await {
                            tracing::debug!("window-change: {e}");
                        }
                        continue;
                    }
                    SignalEvent::Stop(name) => {
                        outcome = Outcome::LocalSignal(name);
                        break;
                    }
                }
            }
        };
        let Some(msg) = msg else { break };
        match msg {
            ChannelMsg::Data { data } => {
                let queued = stdout.write(data).await;
                if queued.is_err() {
                    // Broken pipe (e.g. `| head`): nobody reads the output any more; end
                    // the session quietly with 255, as ssh does.
                    stdout_ok = false;
                    break;
                }
            }
            ChannelMsg::ExtendedData { data, ext: 1 } => {
                // An unwritable stderr must not end the session: the output still counts.
                let _ = stderr.write(data).await;
            }
            ChannelMsg::ExtendedData { .. } => {}
            ChannelMsg::ExitStatus { exit_status } => outcome = Outcome::Exited(exit_status),
            ChannelMsg::ExitSignal { signal_name, .. } => {
                outcome = Outcome::Signalled(sig_name(&signal_name))
            }
            ChannelMsg::Success => {
                pending.pop_front();
            }
            ChannelMsg::Failure => match pending.pop_front() {
                Some("pty") if !settings.quiet => {
                    errln!("msh: PTY allocation request failed\r");
                }
                Some("pty") => {}
                Some(what) => {
                    drop(raw_guard);
                    bail!(
                        "{}@{}: the server refused the {what} request",
                        settings.user,
                        settings.host
                    );
                }
                None => {}
            },
            // OpenSSH sends EOF before exit-status, russh after: only Close ends the session.
            ChannelMsg::Eof => {}
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    stdin_task.abort();
    // The task holds a stderr handle (for `~?`); finish() waits for every handle.
    let _ = stdin_task.await;
    if let Err(e) = stdout.finish().await {
        tracing::debug!("stdout: {e}");
        stdout_ok = false;
    }
    if let Err(e) = stderr.finish().await {
        tracing::debug!("stderr: {e}");
    }
    if !stdout_ok && !matches!(outcome, Outcome::Exited(_)) {
        outcome = Outcome::BrokenPipe;
    }
    Ok(outcome)
}

/// SetEnv's variables, then those of our environment that SendEnv names (SetEnv wins).
pub(super) async fn send_environment(
    channel: &russh::Channel<russh::client::Msg>,
    settings: &Settings,
) -> Result<()> {
    for (name, value) in &settings.set_env {
        channel
            .set_env(false, name.as_str(), value.as_str())
            .await?;
    }
    if !settings.send_env.is_empty() {
        // Collected first: the iterator is not Send, and `msh --hosts` runs this on a
        // multi-threaded runtime.
        let vars: Vec<(String, String)> = std::env::vars().collect();
        for (name, value) in vars {
            let wanted = settings
                .send_env
                .iter()
                .any(|p| msh_common::pattern::glob_match(&name, p));
            if wanted && !settings.set_env.iter().any(|(n, _)| n == &name) {
                channel.set_env(false, name, value).await?;
            }
        }
    }
    Ok(())
}

/// Carries out a local escape (`~?`, `~^Z`); `~.` is the session loop's.
async fn run_action(
    action: Action,
    escape_char: u8,
    write: &russh::ChannelWriteHalf<russh::client::Msg>,
    stderr: &OutputTx,
) {
    match action {
        Action::Help => {
            let _ = stderr.write(escape::help_text(escape_char).into()).await;
        }
        Action::Suspend => {
            let note = format!("{}^Z [suspend msh]\r\n", escape::display(escape_char));
            // Written directly, not queued: it must be on the terminal before msh stops.
            let _ = std::io::Write::write_all(&mut std::io::stderr(), note.as_bytes());
            if let Err(e) = terminal::suspend_self() {
                tracing::warn!("cannot suspend: {e}");
            }
            // The window may have changed while msh was stopped; its SIGWINCH may have gone
            // to the shell instead.
            let (c, r, pw, ph) = terminal::window_size();
            if let Err(e) = write.window_change(c, r, pw, ph).await {
                tracing::debug!("window-change: {e}");
            }
        }
        Action::Disconnect => {}
    }
}

/// The signal name without "SIG", as ssh prints it.
pub(super) fn sig_name(sig: &Sig) -> String {
    match sig {
        Sig::Custom(s) => s.trim_start_matches("SIG").to_string(),
        other => format!("{other:?}"),
    }
}

enum SignalEvent {
    Winch,
    Stop(&'static str),
}

struct Signals {
    winch: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            winch: signal(SignalKind::window_change())?,
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }
}

async fn next_signal(signals: &mut Option<Signals>) -> SignalEvent {
    match signals {
        None => std::future::pending().await,
        Some(s) => tokio::select! {
            _ = s.winch.recv() => SignalEvent::Winch,
            _ = s.int.recv() => SignalEvent::Stop("INT"),
            _ = s.term.recv() => SignalEvent::Stop("TERM"),
            _ = s.hup.recv() => SignalEvent::Stop("HUP"),
        },
    }
}
