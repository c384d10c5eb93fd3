//! The daemon's life: load the settings and host keys, bind the listeners, serve until
//! SIGTERM/SIGINT, then end every connection gracefully; SIGHUP reloads the settings for new
//! connections.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use anyhow::{Context, Result};
use nix::unistd::Uid;
use russh::keys::{Certificate, PrivateKey};

use crate::audit::{self, Audit};
use crate::config::{self, Overrides, Settings};
use crate::listener::Admission;
use crate::{algorithms, hostkey, listener, metrics, notify, session, sys};

/// What the command line asked for.
#[derive(Debug, Default)]
pub struct Options {
    /// `--config`: the config file; `None` = the default path for the mode (see
    /// [`config::default_config_path`]), which may be absent.
    pub config: Option<PathBuf>,
    /// Flags that replace the file's value of the same key.
    pub overrides: Overrides,
    /// `--check-config`: validate, print the effective settings and exit.
    pub check_config: bool,
}

/// Where the settings came from, so that SIGHUP can read them again the same way.
struct Loaded {
    settings: Settings,
    config_path: PathBuf,
    explicit: bool,
    overrides: Overrides,
    /// Serving sockets systemd passed (socket activation): `listen` is not used.
    activated: bool,
}

fn load(options: Options, root_mode: bool) -> Result<Loaded> {
    let explicit = options.config.is_some();
    let config_path = options
        .config
        .unwrap_or_else(|| config::default_config_path(root_mode));
    let settings = Settings::load(&config_path, explicit, &options.overrides, root_mode)?;
    Ok(Loaded {
        settings,
        config_path,
        explicit,
        overrides: options.overrides,
        activated: false,
    })
}

/// Runs mshd as the command line asked: `--check-config`, or serve until SIGTERM/SIGINT.
/// Errors are what `main` prints (`mshd: {e:#}`) before it exits 1.
pub fn run(options: Options) -> Result<()> {
    let root_mode = nix::unistd::geteuid().is_root();
    let check_config = options.check_config;
    let mut loaded = load(options, root_mode)?;
    if check_config {
        hostkey::check(&loaded.settings)?;
        print!("{}", loaded.settings.to_toml()?);
        for key in loaded.settings.unenforced() {
            eprintln!("mshd: warning: `{key}` is parsed but not enforced yet");
        }
        return Ok(());
    }
    // Before the runtime's threads: it edits the environment.
    let inherited = crate::activation::take()?;
    loaded.activated = !inherited.is_empty();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve_main(loaded, inherited))
}

async fn serve_main(loaded: Loaded, inherited: Vec<std::net::TcpListener>) -> Result<()> {
    let settings = loaded.settings.clone();
    for key in settings.unenforced() {
        tracing::warn!("config key `{key}` is parsed but not enforced yet: it has no effect");
    }
    // A missing default file is normal (every key has a default), but say so: a typo in
    // the path or a file in the wrong place would otherwise look like a config that works.
    let missing = if settings.source.exists() {
        ""
    } else {
        " (no such file: built-in defaults)"
    };
    tracing::info!(
        "config {}{missing}; {}",
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
    let audit = Audit::open(settings.audit_log.as_ref())?;
    let structured = audit::Structured::open(
        settings.audit_syslog,
        settings.audit_syslog_socket.as_deref(),
    )?;
    if let Some(s) = &structured {
        tracing::info!("audit records also go to {}", s.path().display());
    }
    audit.set_structured(structured);
    let mut listeners = Vec::new();
    for l in inherited {
        let l = l
            .set_nonblocking(true)
            .and_then(|()| tokio::net::TcpListener::from_std(l))
            .context("socket activation: cannot use the socket from systemd")?;
        let addr = l
            .local_addr()
            .map_or_else(|_| "?".to_string(), |a| a.to_string());
        tracing::info!(
            "listening on {addr} (socket activation: a socket from systemd; `listen` is not used)"
        );
        listeners.push(l);
    }
    for addr in settings.listen.iter().filter(|_| !loaded.activated) {
        let l = tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen on {addr} (in use, or a privileged port without root?)")
        })?;
        tracing::info!("listening on {}", l.local_addr().unwrap_or(*addr));
        listeners.push(l);
    }
    let metrics_listener = match settings.metrics_listen {
        None => None,
        Some(addr) => {
            let l = tokio::net::TcpListener::bind(addr).await.with_context(|| {
                format!("cannot listen on {addr} for metrics (metrics_listen: in use?)")
            })?;
            tracing::info!(
                "metrics on http://{}/metrics",
                l.local_addr().unwrap_or(addr)
            );
            Some(l)
        }
    };
    metrics::host_certificates(&cert_files(&settings, &certs));
    let shared = Shared::new(Generation::new(settings, keys, certs), audit);
    let metrics_task = metrics_listener.map(|l| tokio::spawn(metrics::serve(l, shared.clone())));

    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("cannot install the SIGHUP handler")?;

    let reload_shared = shared.clone();
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            notify::reloading();
            let ok = reload(&loaded, &reload_shared);
            metrics::config_reload(ok);
            notify::ready();
        }
    });
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: no longer accepting connections; open sessions are told and closed after shutdown_grace_time"),
            _ = int.recv() => tracing::info!("SIGINT: no longer accepting connections"),
        }
    };
    let shutdown = async move {
        shutdown.await;
        notify::stopping();
    };
    // Every listener is bound and the signal handlers are installed: a SIGHUP from now on
    // reloads, so systemd may consider the service started.
    notify::ready();
    listener::serve(listeners, shared.clone(), shutdown).await?;
    if let Some(t) = metrics_task {
        t.abort();
    }
    // Each open connection now ends on its own (graceful_end): a note on every session's
    // stderr, shutdown_grace_time, SIGHUP to what still runs, disconnect. The bound below only
    // guards against a connection that does not go away.
    shared.begin_shutdown();
    let grace = shared.generation().settings.shutdown_grace_time;
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
    if !crate::login_records::flush(std::time::Duration::from_secs(2)) {
        tracing::warn!("login records: logouts could not be written within 2 s of exit");
    }
    if !shared.audit.flush(std::time::Duration::from_secs(2)) {
        tracing::warn!("audit log: queued events could not be written within 2 s of exit");
    }
    Ok(())
}

/// Each host certificate with the file it came from (`load_certificates` keeps the order
/// of `host_certificates`), for the metrics.
fn cert_files(settings: &Settings, certs: &[Certificate]) -> Vec<(PathBuf, u64)> {
    settings
        .host_certificates
        .iter()
        .zip(certs)
        .map(|(p, c)| (p.clone(), c.valid_before()))
        .collect()
}

/// SIGHUP: re-read the config file (same flags) and host keys for new connections. A bad
/// file keeps the old settings and says why (false). Listen addresses are not re-bound.
fn reload(loaded: &Loaded, shared: &Shared) -> bool {
    let new = match Settings::load(
        &loaded.config_path,
        loaded.explicit,
        &loaded.overrides,
        loaded.settings.root_mode,
    ) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("SIGHUP: config not reloaded, keeping the previous one: {e:#}");
            return false;
        }
    };
    if new.listen != loaded.settings.listen && !loaded.activated {
        tracing::warn!("SIGHUP: `listen` changed; restart mshd to bind the new addresses");
    }
    if new.metrics_listen != loaded.settings.metrics_listen {
        tracing::warn!("SIGHUP: `metrics_listen` changed; restart mshd to apply it");
    }
    let keys = match hostkey::load_or_generate(&new)
        .and_then(|k| hostkey::load_certificates(&new, &k).map(|c| (k, c)))
    {
        Ok(k) => k,
        Err(e) => {
            tracing::error!("SIGHUP: config not reloaded, keeping the previous one: {e:#}");
            return false;
        }
    };
    let structured =
        match audit::Structured::open(new.audit_syslog, new.audit_syslog_socket.as_deref()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("SIGHUP: config not reloaded, keeping the previous one: {e:#}");
                return false;
            }
        };
    // Re-opened even when unchanged, so that a rotated audit log file is followed.
    if let Err(e) = shared.audit.reopen(new.audit_log.as_ref()) {
        tracing::error!("SIGHUP: config not reloaded, keeping the previous one: {e:#}");
        return false;
    }
    shared.audit.set_structured(structured);
    metrics::host_certificates(&cert_files(&new, &keys.1));
    shared.replace(Generation::new(new, keys.0, keys.1));
    tracing::info!(
        "SIGHUP: configuration reloaded from {}",
        loaded.config_path.display()
    );
    true
}

/// What one configuration load produced: the settings and the russh configuration built from
/// them and the host keys, swapped together on SIGHUP, so that a connection accepted during
/// a reload gets one consistent pair (never new settings with the old host keys or
/// algorithms, or the reverse).
pub(crate) struct Generation {
    pub(crate) settings: Arc<Settings>,
    pub(crate) russh: Arc<russh::server::Config>,
}

impl Generation {
    pub(crate) fn new(
        settings: Settings,
        keys: Vec<PrivateKey>,
        certificates: Vec<Certificate>,
    ) -> Arc<Self> {
        let russh = Arc::new(algorithms::russh_config(&settings, keys, certificates));
        Arc::new(Generation {
            settings: Arc::new(settings),
            russh,
        })
    }
}

/// State shared by every connection.
pub(crate) struct Shared {
    /// The current settings and russh configuration; replaced whole on SIGHUP.
    generation: RwLock<Arc<Generation>>,
    pub(crate) audit: Audit,
    pub(crate) own_uid: Uid,
    /// Unauthenticated connections and per-source slots (max_startups and friends).
    pub(crate) admission: Admission,
    next_conn: AtomicU64,
    /// Open connections, so that SIGTERM can wait for them to end.
    live: AtomicU64,
    idle: tokio::sync::Notify,
    /// Set once on SIGTERM: every connection starts its graceful end.
    stopping: tokio::sync::watch::Sender<bool>,
    /// Where connections run (one single-threaded runtime per CPU); `None` if the shards'
    /// threads could not be started, and then connections run on the main runtime.
    pub(crate) shards: Option<crate::shards::Shards>,
}

impl Shared {
    pub(crate) fn new(generation: Arc<Generation>, audit: Audit) -> Arc<Self> {
        for note in generation.settings.startup_notes() {
            tracing::info!("{note}");
        }
        if generation.settings.use_pam {
            if let Some(w) = crate::pam::missing_service_note(&generation.settings.pam_service) {
                tracing::warn!("{w}");
            }
        }
        Arc::new(Shared {
            generation: RwLock::new(generation),
            audit,
            own_uid: nix::unistd::geteuid(),
            admission: Admission::default(),
            next_conn: AtomicU64::new(1),
            live: AtomicU64::new(0),
            idle: tokio::sync::Notify::new(),
            stopping: tokio::sync::watch::channel(false).0,
            shards: crate::shards::Shards::per_cpu()
                .inspect_err(|e| {
                    tracing::warn!("cannot start a runtime per CPU ({e}); connections share one")
                })
                .ok(),
        })
    }

    /// The settings and russh configuration new connections get.
    pub(crate) fn generation(&self) -> Arc<Generation> {
        // A poisoned lock still holds a whole generation (it is only ever replaced whole).
        self.generation
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn replace(&self, generation: Arc<Generation>) {
        *self.generation.write().unwrap_or_else(|p| p.into_inner()) = generation;
    }

    /// The next connection's id (1, 2, ...: the audit log's `conn_id`).
    pub(crate) fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// SIGTERM: tells every open connection to end (see `connection::graceful_end`).
    pub(crate) fn begin_shutdown(&self) {
        self.stopping.send_replace(true);
    }

    /// Becomes true once shutdown has begun.
    pub(crate) fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// Waits until no connection is open.
    pub(crate) async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.live.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Counts a connection as open for its lifetime (see [`Shared::wait_idle`]).
pub(crate) struct LiveGuard(Arc<Shared>);

impl LiveGuard {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        shared.live.fetch_add(1, Ordering::SeqCst);
        LiveGuard(shared)
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}
