//! `msh --hosts LIST COMMAND`: one command on many hosts, from one process. Each host gets
//! its own `Settings` from `settings::resolve` (its `Host` blocks, its port and user), then
//! goes through exactly the single-host path: `connect::connect` (known_hosts, certificates,
//! pins, revocation), `auth::authenticate`. Nothing ever prompts: BatchMode is forced, so an
//! unknown host is refused unless StrictHostKeyChecking=accept-new was given, and an
//! encrypted key without an agent is skipped. No PTY, and stdin is not sent (the channel gets
//! EOF at once, as `ssh -n`).
//!
//! Hosts run as tokio tasks, at most `--parallel` (default 32) at a time; `--timeout` bounds
//! each from connect to exit. Output: `output` (prefixed lines through one writer thread, or
//! kept for `--json`); the end: `summary`.

mod hosts;
pub(super) mod log;
mod output;
mod summary;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use russh::ChannelMsg;
use tokio::sync::Semaphore;
use tracing::Instrument;

use super::settings::{self, Args, Settings, TtyMode};
use super::{auth, connect, proxy, session};
use hosts::HostEntry;
use output::{labelled, Capture, LineSplitter, Msg, Stream, Writer, WriterTx};
use summary::{Ending, HostResult, Tally};

/// `--parallel`'s default.
const DEFAULT_PARALLEL: usize = 32;

/// What applies to the whole run.
struct Plan {
    /// Each host with its settings, or why they could not be had.
    hosts: Vec<(HostEntry, Result<Settings, String>)>,
    parallel: usize,
    json: bool,
    timeout: Option<Duration>,
}

/// Runs `msh --hosts ...` and returns the exit status: 0 when every command exited 0, 255
/// when any host failed, else 1.
pub(super) fn main(args: Args, home: Option<PathBuf>, local_user: &str) -> i32 {
    let plan = match plan(args, home.as_deref(), local_user) {
        Ok(p) => p,
        Err(e) => {
            errln!("msh: {e:#}");
            return 255;
        }
    };
    if let Some(s) = plan.hosts.iter().find_map(|(_, s)| s.as_ref().ok()) {
        super::init_fleet_tracing(s);
    }
    // Many connections: their key exchanges and ciphers keep every core busy.
    let Some(runtime) = super::start_runtime(tokio::runtime::Builder::new_multi_thread()) else {
        return 255;
    };
    let code = runtime.block_on(run(plan, home));
    proxy::hang_up();
    // As single msh: leaked, not dropped (see msh::main).
    std::mem::forget(runtime);
    code
}

/// Parses the list and the fleet options and resolves every host's settings. Errors that
/// concern the whole command line stop here; a host's own (its `Host` block sets ProxyJump)
/// fail that host only.
fn plan(args: Args, home: Option<&Path>, local_user: &str) -> Result<Plan> {
    let list = args.hosts.clone().unwrap_or_default();
    let entries = hosts::parse_list(&list, home)?;
    if args.tty > 0 {
        bail!("--hosts runs commands without a PTY: -t is not accepted");
    }
    for (given, flag) in [
        (args.stdio_forward.is_some(), "-W"),
        (args.subsystem, "-s"),
        (args.print_config, "-G"),
        (!args.local_forward.is_empty(), "-L"),
        (!args.remote_forward.is_empty(), "-R"),
        (!args.dynamic_forward.is_empty(), "-D"),
        (args.no_session, "-N"),
        (args.agent, "-A"),
    ] {
        if given {
            bail!("--hosts runs a command on each host: {flag} is not accepted with it");
        }
    }
    let parallel = args.parallel.unwrap_or(DEFAULT_PARALLEL);
    if parallel == 0 {
        bail!("--parallel 0: at least one host must be able to run (e.g. --parallel 8)");
    }
    let timeout = args
        .timeout
        .as_deref()
        .map(msh_common::duration::parse_duration)
        .transpose()
        .context("--timeout")?;
    if timeout == Some(Duration::ZERO) {
        bail!("--timeout 0: give a time a host can finish in (e.g. --timeout 30s)");
    }
    // Without a destination the first positional word is the command's first word.
    let mut command = vec![args.destination.clone()];
    command.extend(args.command.iter().cloned());

    let mut resolved = Vec::with_capacity(entries.len());
    for entry in entries {
        let mut host_args = args.clone();
        host_args.hosts = None;
        host_args.destination = entry.destination.clone();
        if entry.port.is_some() {
            host_args.port = entry.port;
        }
        host_args.command = command.clone();
        let settings = settings::resolve(host_args, home, local_user)
            .map(fleet_settings)
            .map_err(|e| format!("{e:#}"));
        resolved.push((entry, settings));
    }
    // A bad -o fails every host alike: one message, not one per host.
    if let [(_, Err(first)), rest @ ..] = resolved.as_slice() {
        if rest.iter().all(|(_, s)| s.as_ref().err() == Some(first)) {
            bail!("{first}");
        }
    }
    Ok(Plan {
        hosts: resolved,
        parallel,
        json: args.json,
        timeout,
    })
}

/// What fleet mode changes in a host's settings: never a prompt, no PTY, no escapes.
/// A config file's LocalForward & co. are not set up either: one port cannot serve many
/// hosts.
fn fleet_settings(mut s: Settings) -> Settings {
    s.forwarding = Default::default();
    s.batch_mode = true;
    s.tty = TtyMode::Never;
    s.escape_char = None;
    s
}

async fn run(plan: Plan, home: Option<PathBuf>) -> i32 {
    let writer = match Writer::start() {
        Ok(w) => w,
        Err(e) => {
            errln!("msh: cannot start the output thread: {e}");
            return 255;
        }
    };
    let total = plan.hosts.len();
    let limit = Arc::new(Semaphore::new(plan.parallel));
    let home = Arc::new(home);
    let mut tasks = tokio::task::JoinSet::new();
    for (index, (entry, settings)) in plan.hosts.into_iter().enumerate() {
        let limit = limit.clone();
        let home = home.clone();
        let tx = writer.tx.clone();
        let (json, timeout) = (plan.json, plan.timeout);
        let span = log::host_span(&entry.label);
        tasks.spawn(
            async move {
                // Never closed, so acquire cannot fail; a host runs without a permit otherwise.
                let _permit = limit.acquire_owned().await.ok();
                let mut sink = HostSink::new(entry.label.clone(), json, tx);
                let start = Instant::now();
                let ending = match settings {
                    Err(e) => Ending::Failed(e),
                    Ok(s) => {
                        let work = run_host(&s, home.as_deref(), &mut sink);
                        let ending = match timeout {
                            None => work.await,
                            Some(t) => match tokio::time::timeout(t, work).await {
                                Ok(e) => e,
                                Err(_) => Ending::Failed(format!(
                                    "timed out after {} (--timeout)",
                                    duration_words(t)
                                )),
                            },
                        };
                        sink.finish().await;
                        ending
                    }
                };
                let (stdout, stderr) = sink.into_captures();
                (
                    index,
                    HostResult {
                        label: entry.label,
                        ending,
                        duration: start.elapsed(),
                        stdout,
                        stderr,
                    },
                )
            }
            .instrument(span),
        );
    }

    let mut results: Vec<Option<HostResult>> = (0..total).map(|_| None).collect();
    let mut tally = Tally::default();
    while let Some(joined) = tasks.join_next().await {
        let (index, result) = match joined {
            Ok(r) => r,
            Err(e) => {
                // A panicking host task: the others go on; its entry reads as failed below.
                errln!("msh: internal error in a host task: {e}");
                continue;
            }
        };
        tally.add(&result.ending);
        if plan.json {
            let line = summary::json_line(&result).into_bytes();
            let _ = writer.tx.send(Msg::Line(Stream::Out, line)).await;
        }
        let _ = writer.tx.send(Msg::Progress(tally.progress(total))).await;
        if let Some(slot) = results.get_mut(index) {
            *slot = Some(result);
        }
    }
    let _ = writer.tx.send(Msg::EndProgress).await;
    let results: Vec<HostResult> = results
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.unwrap_or_else(|| HostResult {
                label: format!("host #{}", i + 1),
                ending: Ending::Failed("internal error (see above)".into()),
                duration: Duration::ZERO,
                stdout: Capture::default(),
                stderr: Capture::default(),
            })
        })
        .collect();
    let code = summary::exit_code(&results);
    let text = summary::summary(&results).into_bytes();
    let _ = writer.tx.send(Msg::Line(Stream::Err, text)).await;
    writer.finish();
    code
}

/// One host, start to end, as single msh runs it; every failure is one line.
async fn run_host(settings: &Settings, home: Option<&Path>, sink: &mut HostSink) -> Ending {
    let identity_files = super::identity_files(settings, home);
    // Its route as for `msh HOST` (ProxyJump, ProxyCommand); the hops stay open until the
    // end of this function.
    // No forwarding in fleet mode: the host may open no channel towards msh.
    let inbound = std::sync::Arc::new(super::forward::Inbound::default());
    let (mut handle, _hops) = match proxy::connect(settings, home, inbound).await {
        Ok(h) => h,
        Err(e) => return Ending::Failed(format!("{e:#}")),
    };
    if let Err(e) = auth::authenticate(&mut handle, settings, &identity_files).await {
        return Ending::Failed(format!("{e:#}"));
    }
    let ending = match exec(&handle, settings, sink).await {
        Ok(e) => e,
        Err(e) => Ending::Failed(format!("{e:#}")),
    };
    // A host-key update (UpdateHostKeys) may still wait for its proof, as in single msh.
    super::hostkeys::wait_pending().await;
    // Goodbye as single msh says it, bounded the same way.
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
        let _ = handle.await;
    })
    .await;
    ending
}

/// Runs the command on an open connection, streaming its output into `sink`.
async fn exec(
    handle: &russh::client::Handle<connect::Client>,
    settings: &Settings,
    sink: &mut HostSink,
) -> Result<Ending> {
    let mut channel = handle.channel_open_session().await?;
    session::send_environment(&channel, settings).await?;
    let command = settings.command.clone().unwrap_or_default();
    tracing::info!("exec: {command}");
    channel.exec(true, command.into_bytes()).await?;
    let mut ending = None;
    let mut replied = false;
    while let Some(msg) = channel.wait().await {
        match msg {
            ChannelMsg::Data { data } => sink.data(Stream::Out, &data).await,
            ChannelMsg::ExtendedData { data, ext: 1 } => sink.data(Stream::Err, &data).await,
            ChannelMsg::ExitStatus { exit_status } => ending = Some(Ending::Exited(exit_status)),
            ChannelMsg::ExitSignal { signal_name, .. } => {
                ending = Some(Ending::Signalled(session::sig_name(&signal_name)))
            }
            // stdin is not sent: EOF as soon as the command runs (ssh -n).
            ChannelMsg::Success if !replied => {
                replied = true;
                channel.eof().await?;
            }
            ChannelMsg::Failure if !replied => bail!(
                "{}@{}: the server refused the exec request",
                settings.user,
                settings.host
            ),
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    match ending {
        Some(e) => Ok(e),
        None => bail!(
            "{}@{}: the connection ended without an exit status from the remote side",
            settings.user,
            settings.host
        ),
    }
}

/// Where a host's output goes: prefixed lines to the writer, or kept for `--json`.
struct HostSink {
    label: String,
    json: bool,
    tx: WriterTx,
    out_lines: LineSplitter,
    err_lines: LineSplitter,
    out: Capture,
    err: Capture,
}

impl HostSink {
    fn new(label: String, json: bool, tx: WriterTx) -> Self {
        HostSink {
            label,
            json,
            tx,
            out_lines: LineSplitter::default(),
            err_lines: LineSplitter::default(),
            out: Capture::default(),
            err: Capture::default(),
        }
    }

    async fn data(&mut self, stream: Stream, data: &[u8]) {
        if self.json {
            match stream {
                Stream::Out => self.out.push(data),
                Stream::Err => self.err.push(data),
            }
            return;
        }
        let lines = match stream {
            Stream::Out => self.out_lines.feed(data),
            Stream::Err => self.err_lines.feed(data),
        };
        for line in lines {
            // Waits while the writer's queue is full: that is the backpressure.
            let _ = self
                .tx
                .send(Msg::Line(stream, labelled(&self.label, &line)))
                .await;
        }
    }

    /// Prints the partial last lines (also after a timeout).
    async fn finish(&mut self) {
        for stream in [Stream::Out, Stream::Err] {
            let partial = match stream {
                Stream::Out => self.out_lines.finish(),
                Stream::Err => self.err_lines.finish(),
            };
            if let Some(line) = partial {
                let _ = self
                    .tx
                    .send(Msg::Line(stream, labelled(&self.label, &line)))
                    .await;
            }
        }
    }

    fn into_captures(self) -> (Capture, Capture) {
        (self.out, self.err)
    }
}

/// `30s`, `2m`, `1m30s`, for the timeout message.
fn duration_words(d: Duration) -> String {
    let secs = d.as_secs();
    match (secs / 60, secs % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}
