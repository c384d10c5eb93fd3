//! msh: the client. Parses the command line into `Settings`, connects and verifies the host
//! (`connect`, `verify`), authenticates (`auth`), then runs a command or an interactive shell
//! (`session`, `terminal`). Exit status: the remote command's, or 255 when msh itself fails
//! or the remote command was killed by a signal — always with one line on stderr — or when
//! msh was stopped by a signal (silent, as ssh; `-N` stopped by SIGTERM exits 0).

/// `eprintln!` for msh's own messages that survives a non-blocking stderr (stdio::StderrNow):
/// waits for room rather than panicking on `EAGAIN`; other errors drop the message.
/// The line goes out in one write(2), so that `msh --hosts` output lines written meanwhile
/// by another thread cannot land inside it.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut line = format!($($arg)*);
        line.push('\n');
        let _ = $crate::msh::stdio::StderrNow.write_all(line.as_bytes());
    }};
}

mod auth;
mod cli;
pub use cli::command;
mod connect;
mod escape;
mod fleet;
mod forward;
mod hostkeys;
mod options;
mod proxy;
mod sanitize;
mod session;
pub mod settings;
mod stdio;
mod terminal;
mod verify;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Parser;

use self::session::Outcome;
use self::settings::{Args, Settings};

/// Runs msh with the process's arguments and returns its exit status (the remote command's,
/// or 255). The caller exits with it at once, without dropping anything: a stdin read parked
/// in its thread (stdio.rs) would otherwise keep the process alive until a key is pressed.
pub fn main() -> i32 {
    let code = real_main();
    let _ = std::io::stdout().flush();
    code
}

fn real_main() -> i32 {
    raise_malloc_trim_threshold();
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let code = if e.use_stderr() { 255 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let home = dirs::home_dir();
    let local_user = local_user_name();
    if args.hosts.is_some() {
        return fleet::main(args, home, &local_user);
    }
    let settings = match settings::resolve(args, home.as_deref(), &local_user) {
        Ok(s) => s,
        Err(e) => {
            errln!("msh: {e:#}");
            return 255;
        }
    };
    init_tracing(&settings);
    if settings.print_config {
        print!("{}", settings::print_config(&settings));
        return 0;
    }

    // One connection, one session: a single-threaded runtime runs russh's connection task and
    // our session loop on the same thread, so a packet goes from decryption to the stdout queue
    // without waking another worker (a second worker cost more CPU in futex wake-ups than it
    // saved). The stdio threads (stdio.rs) overlap the pipe copies with decryption.
    let Some(runtime) = start_runtime(tokio::runtime::Builder::new_current_thread()) else {
        return 255;
    };
    let result = runtime.block_on(run(&settings, home));
    proxy::hang_up();
    let code = match result {
        Ok(Outcome::Exited(code)) => i32::try_from(code & 0xff).unwrap_or(255),
        Ok(Outcome::Signalled(sig)) => {
            errln!(
                "msh: remote command killed by signal {}",
                sanitize::for_terminal(&sig)
            );
            255
        }
        Ok(Outcome::NoStatus) => {
            errln!(
                "msh: {}@{}: the connection ended without an exit status from the remote side",
                settings.user,
                settings.host
            );
            255
        }
        Ok(Outcome::BrokenPipe) => 255,
        Ok(Outcome::EscapeDisconnect) => {
            // As ssh, whose "Connection to HOST closed." is an INFO message: -q hides it.
            if !settings.quiet {
                errln!("msh: connection to {} closed.", settings.host);
            }
            255
        }
        Ok(Outcome::LocalSignal(sig)) => {
            // As ssh, whose "Killed by signal N." is a VERBOSE message: the one who sent the
            // signal knows; -v says it.
            tracing::info!("killed by signal {sig}");
            255
        }
        Err(e) => {
            // Errors can carry text from a server (a refused channel's reason, a
            // disconnect message): never let it drive the terminal (CVE-2019-6110 class).
            errln!("msh: {}", sanitize::for_terminal(&format!("{e:#}")));
            255
        }
    };
    // The runtime is leaked on purpose, see main().
    std::mem::forget(runtime);
    code
}

/// `builder` with every driver enabled, started; `None` once the reason is printed (the
/// caller exits 255, as ssh on a local failure).
fn start_runtime(mut builder: tokio::runtime::Builder) -> Option<tokio::runtime::Runtime> {
    match builder.enable_all().build() {
        Ok(r) => Some(r),
        Err(e) => {
            errln!("msh: cannot start the async runtime: {e}");
            None
        }
    }
}

async fn run(settings: &Settings, home: Option<PathBuf>) -> Result<Outcome> {
    let identity_files = identity_files(settings, home.as_deref());
    let inbound = forward::Inbound::new(&settings.forwarding);
    let (mut handle, _hops) = proxy::connect(settings, home.as_deref(), inbound.clone()).await?;
    auth::authenticate(&mut handle, settings, &identity_files).await?;
    let running = forward::setup(&handle, &settings.forwarding, &inbound, settings.quiet).await?;
    let outcome = match &settings.stdio_forward {
        Some((host, port)) => proxy::stdio::forward(&handle, settings, host, *port).await?,
        None if settings.forwarding.no_session => {
            forward::without_session(&handle, running).await?
        }
        None => forward::alongside(&handle, running, session::run(&handle, settings)).await?,
    };
    if matches!(outcome, Outcome::NoStatus) && handle.is_closed() {
        // The connection itself ended: say why (russh keeps the reason in its task).
        let (host, port) = (&settings.host, settings.port);
        match tokio::time::timeout(std::time::Duration::from_secs(1), handle).await {
            Ok(Err(russh::Error::KeepaliveTimeout)) => bail!(
                "{host} port {port}: the server stopped answering (no reply to 3 keepalives \
                 sent every {}s, ServerAliveInterval)",
                settings
                    .server_alive_interval
                    .map(|d| d.as_secs())
                    .unwrap_or_default()
            ),
            Ok(Err(e)) => bail!("connection to {host} port {port} lost: {e}"),
            _ => bail!("connection to {host} port {port} closed by the server"),
        }
    }
    // A host-key update may still wait for the server's proof or be writing known_hosts.
    hostkeys::wait_pending().await;
    // Say goodbye as OpenSSH does, and wait until the session task has written it: the
    // process exits right after, which would otherwise cut the message off and leave the
    // server with an unexplained EOF. Bounded: after a broken pipe the session task may be
    // stuck delivering data nobody reads.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
        let _ = handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
        let _ = handle.await;
    })
    .await;
    Ok(outcome)
}

/// The identity files to offer: -i / IdentityFile, else the default ~/.ssh/id_* that exist.
fn identity_files(settings: &Settings, home: Option<&std::path::Path>) -> Vec<PathBuf> {
    if settings.identities_explicit {
        settings.identity_files.clone()
    } else {
        home.map(auth::default_identities).unwrap_or_default()
    }
}

/// russh hands each received packet over in a fresh buffer, which the stdout thread frees.
/// With glibc's default 128 KiB trim threshold, every batch written returns heap to the
/// kernel and the next packets fault it back in: 70,000 page faults per GiB downloaded, about
/// a tenth of msh's CPU. glibc raises the threshold to twice the size of the largest
/// mmap-backed block freed so far (mallopt(3), M_MMAP_THRESHOLD's dynamic adjustment), so
/// freeing one 8 MiB block here keeps up to 16 MiB of freed heap for reuse (3,700 faults per
/// GiB). The block is calloc'ed from fresh mmap pages and never touched: it costs no memory.
/// Elsewhere (musl) this is a harmless allocation.
fn raise_malloc_trim_threshold() {
    let block = vec![0u8; 8 << 20];
    drop(std::hint::black_box(block));
}

fn local_user_name() -> String {
    if let Ok(Some(u)) = nix::unistd::User::from_uid(nix::unistd::getuid()) {
        return u.name;
    }
    std::env::var("USER").unwrap_or_else(|_| "root".to_string())
}

/// `-v`/`-vv`/`-vvv` (or LogLevel) set the default level; RUST_LOG, when set, wins.
fn log_filter(settings: &Settings) -> tracing_subscriber::EnvFilter {
    use tracing_subscriber::EnvFilter;
    let default = match settings.log_level {
        tracing::Level::ERROR => "error",
        tracing::Level::WARN => "warn",
        // russh is chatty at info/debug; -v is about msh's own decisions.
        tracing::Level::INFO => "warn,msh=info",
        tracing::Level::DEBUG => "info,msh=debug",
        tracing::Level::TRACE => "debug,msh=trace",
    };
    match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => EnvFilter::new(v),
        _ => EnvFilter::new(default),
    }
}

fn init_tracing(settings: &Settings) {
    let filter = log_filter(settings);
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| stdio::StderrNow)
        .with_target(false)
        .with_ansi(ansi)
        .without_time()
        .try_init();
}

/// As `init_tracing`, with each line logged inside a host's task labelled with the host
/// (`msh --hosts`, see fleet/log.rs).
fn init_fleet_tracing(settings: &Settings) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::registry()
        .with(log_filter(settings))
        .with(fleet::log::HostLabels)
        .with(
            tracing_subscriber::fmt::layer()
                .event_format(fleet::log::Labelled)
                .with_writer(|| stdio::StderrNow)
                .with_ansi(ansi),
        )
        .try_init();
}
