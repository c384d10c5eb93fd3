//! mshd: the msh server. Parses the command line, resolves the configuration, loads (or on
//! first start generates) the host key, binds the listeners, and serves until SIGTERM;
//! SIGHUP reloads the configuration for new connections.
// The workspace denies `unsafe_code`; `sys` is the one module that allows it (privilege drop
// between fork and exec), and every other module forbids it outright.

mod audit;
mod auth;
mod config;
mod hostkey;
mod logsafe;
mod server;
mod session;
mod shadow;
mod sys;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;
use tokio::sync::RwLock;

use crate::config::{Overrides, Settings};

/// mshd — msh server: public-key-only SSH server for remote shells and commands.
#[derive(Parser, Debug)]
#[command(
    name = "mshd",
    version,
    after_long_help = "Examples:\n  mshd --check-config\n  mshd --listen 127.0.0.1:2222 -v\n  sudo mshd --config /etc/msh/mshd.toml --audit-log /var/log/mshd-audit.jsonl"
)]
struct Cli {
    /// Config file (TOML). Default: /etc/msh/mshd.toml as root, else <config_dir>/msh/mshd.toml.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on (repeatable); replaces `listen` from the file.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Vec<String>,
    /// Host private key (repeatable); replaces `host_keys` from the file.
    #[arg(long, value_name = "PATH")]
    host_key: Vec<PathBuf>,
    /// authorized_keys file pattern (%h home, %u user; repeatable); replaces
    /// `authorized_keys_files` from the file.
    #[arg(long, value_name = "PATTERN")]
    authorized_keys: Vec<String>,
    /// Write the JSON-lines audit log to PATH (`-` = stdout).
    #[arg(long, value_name = "PATH|-")]
    audit_log: Option<String>,
    /// Validate the configuration, print the effective settings and exit.
    #[arg(long)]
    check_config: bool,
    /// More log output (-v info is the default, -vv debug, -vvv trace). RUST_LOG wins.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

fn main() -> ExitCode {
    sys::reset_inherited_signal_dispositions();
    sys::cloexec_inherited_fds();
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mshd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 | 1 => "info",
        2 => "debug",
        _ => "trace",
    };
    // russh is chatty at debug; keep it one notch quieter than our own code unless -vvv.
    let default = if verbose >= 3 {
        level.to_string()
    } else {
        format!("{level},russh=info")
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let fmt = tracing_subscriber::fmt::layer()
        // Each record on one line, whatever a client put in the strings it carries.
        .with_writer(logsafe::stderr)
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .with_target(false)
        .with_filter(filter);
    tracing_subscriber::registry().with(fmt).init();
}

struct Loaded {
    settings: Settings,
    config_path: PathBuf,
    explicit: bool,
    overrides: Overrides,
}

fn load(cli: &Cli, root_mode: bool) -> Result<Loaded> {
    let overrides = Overrides {
        listen: cli.listen.clone(),
        host_keys: cli.host_key.clone(),
        authorized_keys: cli.authorized_keys.clone(),
        audit_log: cli.audit_log.clone(),
    };
    let explicit = cli.config.is_some();
    let config_path = cli
        .config
        .clone()
        .unwrap_or_else(|| config::default_config_path(root_mode));
    let settings = Settings::load(&config_path, explicit, &overrides, root_mode)?;
    Ok(Loaded {
        settings,
        config_path,
        explicit,
        overrides,
    })
}

fn run(cli: Cli) -> Result<()> {
    let root_mode = nix::unistd::geteuid().is_root();
    let loaded = load(&cli, root_mode)?;
    if cli.check_config {
        hostkey::check(&loaded.settings)?;
        print!("{}", loaded.settings.to_toml()?);
        for key in loaded.settings.unenforced() {
            eprintln!("mshd: warning: `{key}` is parsed but not enforced yet");
        }
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve_main(loaded))
}

async fn serve_main(loaded: Loaded) -> Result<()> {
    let settings = loaded.settings.clone();
    for key in settings.unenforced() {
        tracing::warn!("config key `{key}` is parsed but not enforced yet: it has no effect");
    }
    tracing::info!(
        "config {}; {}",
        settings.source.display(),
        if settings.root_mode {
            "root mode: serves any local user"
        } else {
            "unprivileged mode: serves only the user running mshd"
        }
    );
    match sys::raise_nofile_limit() {
        Ok((before, after)) => {
            let raised = if before != after {
                format!(" (raised from {before})")
            } else {
                String::new()
            };
            tracing::info!(
                "open-file limit {after}{raised}: room for about {} sessions ({} descriptors each at most)",
                session::sessions_for_fd_limit(after),
                session::FDS_PER_SESSION
            );
        }
        Err(e) => tracing::warn!("cannot read or raise the open-file limit: {e}"),
    }
    let keys = hostkey::load_or_generate(&settings)?;
    let certs = hostkey::load_certificates(&settings, &keys)?;
    let audit = audit::Audit::open(settings.audit_log.as_ref())?;
    let mut listeners = Vec::new();
    for addr in &settings.listen {
        let l = tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen on {addr} (in use, or a privileged port without root?)")
        })?;
        tracing::info!("listening on {}", l.local_addr().unwrap_or(*addr));
        listeners.push(l);
    }
    let rcfg = Arc::new(RwLock::new(Arc::new(server::russh_config(
        &settings, keys, certs,
    ))));
    let shared = server::Shared::new(settings, audit);

    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("cannot install the SIGHUP handler")?;

    let reload_shared = shared.clone();
    let reload_cfg = rcfg.clone();
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            reload(&loaded, &reload_shared, &reload_cfg).await;
        }
    });
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: no longer accepting connections; open sessions are told and closed after shutdown_grace_time"),
            _ = int.recv() => tracing::info!("SIGINT: no longer accepting connections"),
        }
    };
    server::serve(listeners, shared.clone(), rcfg, shutdown).await?;
    // Each open connection now ends on its own (graceful_end): a note on every session's
    // stderr, shutdown_grace_time, SIGHUP to what still runs, disconnect. The bound below only
    // guards against a connection that does not go away.
    shared.begin_shutdown();
    let grace = shared.settings.read().await.shutdown_grace_time;
    if tokio::time::timeout(
        grace + std::time::Duration::from_secs(10),
        shared.wait_idle(),
    )
    .await
    .is_err()
    {
        tracing::warn!(
            "connections still open {grace:?} + 10 s after shutdown began; exiting anyway"
        );
    }
    tracing::info!("all sessions ended; exiting");
    if !shared.audit.flush(std::time::Duration::from_secs(2)) {
        tracing::warn!("audit log: queued events could not be written within 2 s of exit");
    }
    Ok(())
}

/// SIGHUP: re-read the config file (same flags) and host keys for new connections. A bad
/// file keeps the old settings and says why. Listen addresses are not re-bound.
async fn reload(
    loaded: &Loaded,
    shared: &Arc<server::Shared>,
    rcfg: &Arc<RwLock<Arc<russh::server::Config>>>,
) {
    let new = match Settings::load(
        &loaded.config_path,
        loaded.explicit,
        &loaded.overrides,
        loaded.settings.root_mode,
    ) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("SIGHUP: config not reloaded, keeping the previous one: {e:#}");
            return;
        }
    };
    if new.listen != loaded.settings.listen {
        tracing::warn!("SIGHUP: `listen` changed; restart mshd to bind the new addresses");
    }
    let keys = match hostkey::load_or_generate(&new)
        .and_then(|k| hostkey::load_certificates(&new, &k).map(|c| (k, c)))
    {
        Ok(k) => k,
        Err(e) => {
            tracing::error!("SIGHUP: config not reloaded, keeping the previous one: {e:#}");
            return;
        }
    };
    // Re-opened even when unchanged, so that a rotated audit log file is followed.
    if let Err(e) = shared.audit.reopen(new.audit_log.as_ref()) {
        tracing::error!("SIGHUP: config not reloaded, keeping the previous one: {e:#}");
        return;
    }
    *rcfg.write().await = Arc::new(server::russh_config(&new, keys.0, keys.1));
    *shared.settings.write().await = Arc::new(new);
    tracing::info!(
        "SIGHUP: configuration reloaded from {}",
        loaded.config_path.display()
    );
}
