//! The SSH server: [`serve`] accepts connections on the given listeners until `shutdown`
//! completes, running each on the one tokio runtime (no thread or process per connection);
//! [`Conn`] is the per-connection russh handler: user authentication through
//! [`crate::auth`], then session channels through [`crate::session`].
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use msh_common::authorized_keys::Permissions;
use msh_common::certs::validity::format_utc;
use msh_common::certs::CertInfo;
use nix::unistd::Uid;
use russh::keys::{Certificate, PrivateKey, PublicKey};
use russh::server::{
    Auth, CertificateRefusal, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey,
};
use russh::{Channel, ChannelId, MethodKind, MethodSet, Pty, Sig};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, RwLock};

use crate::audit::Audit;
use crate::auth::{self, Account, Verdict};
use crate::config::Settings;
use crate::session::{self, AuditCtx, Input, Kind, Launch, PtyReq, Running, Sessions};
use crate::sys::Identity;

/// State shared by every connection; `settings` is replaced on SIGHUP.
pub struct Shared {
    pub settings: RwLock<Arc<Settings>>,
    pub audit: Audit,
    pub own_uid: Uid,
    next_conn: AtomicU64,
    /// Open connections, so that SIGTERM can wait for them to end.
    live: AtomicU64,
    /// Connections not authenticated yet (for max_startups).
    unauth: AtomicU64,
    /// The same, per source address (for per_source_max_startups).
    unauth_by_source: std::sync::Mutex<HashMap<IpAddr, u64>>,
    /// Connections waiting for a per-source slot, per address (bounded by PER_SOURCE_QUEUE).
    queued_by_source: std::sync::Mutex<HashMap<IpAddr, u32>>,
    /// Woken whenever a per-source slot is released.
    slot_freed: tokio::sync::Notify,
    idle: tokio::sync::Notify,
    /// Set once on SIGTERM: every connection starts its graceful end.
    stopping: tokio::sync::watch::Sender<bool>,
}

impl Shared {
    pub fn new(settings: Settings, audit: Audit) -> Arc<Self> {
        for note in settings.startup_notes() {
            tracing::info!("{note}");
        }
        Arc::new(Shared {
            settings: RwLock::new(Arc::new(settings)),
            audit,
            own_uid: nix::unistd::geteuid(),
            next_conn: AtomicU64::new(1),
            live: AtomicU64::new(0),
            unauth: AtomicU64::new(0),
            unauth_by_source: std::sync::Mutex::new(HashMap::new()),
            queued_by_source: std::sync::Mutex::new(HashMap::new()),
            slot_freed: tokio::sync::Notify::new(),
            idle: tokio::sync::Notify::new(),
            stopping: tokio::sync::watch::channel(false).0,
        })
    }

    /// SIGTERM: tells every open connection to end (see `graceful_end`).
    pub fn begin_shutdown(&self) {
        self.stopping.send_replace(true);
    }

    /// Waits until no connection is open.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.live.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Counts a connection as open for its lifetime.
struct LiveGuard(Arc<Shared>);

impl LiveGuard {
    fn new(shared: Arc<Shared>) -> Self {
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

/// The russh server configuration for these settings and host keys.
pub fn russh_config(
    settings: &Settings,
    keys: Vec<PrivateKey>,
    certificates: Vec<Certificate>,
) -> russh::server::Config {
    use russh::keys::Algorithm;
    let mut preferred = russh::Preferred::default();
    // No SHA-1 signatures: drop `ssh-rsa` from the accepted key algorithms.
    let key_algos: Vec<Algorithm> = preferred
        .key
        .iter()
        .filter(|a| **a != Algorithm::Rsa { hash: None })
        .cloned()
        .collect();
    preferred.key = key_algos.into();
    preferred.kex = kex_algorithms(settings.post_quantum_only).into();
    // Encrypt-then-MAC only (the AEAD ciphers ignore the MAC): the plain hmac-sha2-* modes
    // MAC the plaintext (encrypt-and-MAC). SHA-1 MACs are not in russh's list at all.
    preferred.mac = vec![russh::mac::HMAC_SHA512_ETM, russh::mac::HMAC_SHA256_ETM].into();
    preferred.cipher = vec![
        russh::cipher::CHACHA20_POLY1305,
        russh::cipher::AES_256_GCM,
        russh::cipher::AES_256_CTR,
        russh::cipher::AES_192_CTR,
        russh::cipher::AES_128_CTR,
    ]
    .into();
    // No compression: zlib before authentication is attack surface for no gain on the links
    // msh is for (OpenSSH's server offers only the delayed zlib@openssh.com).
    preferred.compression = vec![russh::compression::NONE].into();
    russh::server::Config {
        server_id: russh::SshId::Standard(
            concat!("SSH-2.0-mshd_", env!("CARGO_PKG_VERSION")).into(),
        ),
        methods: MethodSet::from(&[MethodKind::PublicKey][..]),
        // Constant-time rejection, but no delay on OpenSSH's initial `none` probe.
        auth_rejection_time: Duration::from_millis(200),
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys,
        certificates,
        // mshd counts failures itself as sshd does (Conn::tally) and disconnects at
        // max_auth_tries; russh's own count (which includes the initial `none` and requests
        // russh refuses without asking mshd, such as a bad signature) stays as a backstop,
        // one higher for that `none`.
        max_auth_attempts: settings.max_auth_tries as usize + 1,
        // No idle cut-off: an idle shell is legitimate (OpenSSH has none by default). Dead
        // peers are found by keepalives (3 unanswered, one a minute), and the pre-auth phase
        // is bounded by login_grace_time in `run_connection`.
        inactivity_timeout: None,
        keepalive_interval: Some(Duration::from_secs(60)),
        keepalive_max: 3,
        // Nagle + delayed ACK cost ~40 ms per handshake round trip (NOTES-russh).
        nodelay: true,
        // An 8 MiB receive window lets an upload run at full speed over loopback and LAN
        // (a small window caps throughput at window/RTT). It is also what bounds the memory a
        // channel's unread input takes: the patched russh replenishes it only as the session
        // consumes (vendor/russh/PATCHES.md).
        window_size: 8 * 1024 * 1024,
        // 32 KiB + headers is what every SSH implementation must accept (RFC 4253 §6.1);
        // OpenSSH uses the same, and larger packets give no measurable gain.
        maximum_packet_size: 32768,
        preferred,
        ..Default::default()
    }
}

/// Key exchanges offered, best first: hybrid post-quantum ML-KEM-768 + X25519, then (unless
/// `post_quantum_only`) classical X25519 for clients without ML-KEM (OpenSSH < 9.9). No
/// finite-field DH (slow, and group14's 2048-bit modulus is weak) and no NIST curves. The
/// `ext-info-s` and strict-kex (Terrapin countermeasure) markers are always advertised.
pub fn kex_algorithms(post_quantum_only: bool) -> Vec<russh::kex::Name> {
    use russh::kex;
    let mut v = vec![kex::MLKEM768X25519_SHA256];
    if !post_quantum_only {
        v.push(kex::CURVE25519);
        v.push(kex::CURVE25519_PRE_RFC_8731);
    }
    v.extend([
        kex::EXTENSION_SUPPORT_AS_SERVER,
        kex::EXTENSION_OPENSSH_STRICT_KEX_AS_SERVER,
    ]);
    v
}

/// Serves connections from `listeners` until `shutdown` completes; then stops accepting and
/// returns while already open sessions run to their end on the runtime.
pub async fn serve(
    listeners: Vec<TcpListener>,
    shared: Arc<Shared>,
    config: Arc<RwLock<Arc<russh::server::Config>>>,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let (tx, mut rx) = mpsc::channel::<(tokio::net::TcpStream, SocketAddr, SocketAddr)>(16);
    let mut accept_tasks = Vec::new();
    for l in listeners {
        let tx = tx.clone();
        accept_tasks.push(tokio::spawn(async move {
            loop {
                match l.accept().await {
                    Ok((s, peer)) => {
                        let local = s.local_addr().unwrap_or(peer);
                        if tx.send((s, peer, local)).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        // EMFILE and friends: log, back off, keep serving.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }));
    }
    drop(tx);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            conn = rx.recv() => {
                let Some((stream, peer, local)) = conn else { break };
                let accepted = tokio::time::Instant::now();
                let (per_source, grace) = {
                    let s = shared.settings.read().await;
                    (s.per_source_max_startups, s.login_grace_time)
                };
                let source = source_key(peer.ip());
                // Checked first, so that one address's flood is turned away before it can
                // use up the global max_startups budget that everyone else shares.
                if shared.enter_source(source, per_source) {
                    admit(&shared, &config, stream, peer, local, source, accepted).await;
                    continue;
                }
                // Over its limit, the address waits for one of its own slots (a deploy
                // script's burst), up to PER_SOURCE_QUEUE connections for login_grace_time;
                // the socket is not read meanwhile. Beyond that it is a flood: dropped.
                if !shared.enqueue(source) {
                    tracing::warn!(
                        "dropping connection from {peer}: {source} already has {per_source} unauthenticated connections (per_source_max_startups) and {PER_SOURCE_QUEUE} waiting"
                    );
                    drop(stream);
                    continue;
                }
                tracing::debug!(
                    "connection from {peer} waits: {source} already has {per_source} unauthenticated connections (per_source_max_startups)"
                );
                let wait = if grace.is_zero() { Duration::from_secs(120) } else { grace };
                let shared = shared.clone();
                let config = config.clone();
                tokio::spawn(async move {
                    let got = shared.wait_for_source_slot(source, per_source, accepted + wait).await;
                    shared.dequeue(source);
                    if got {
                        admit(&shared, &config, stream, peer, local, source, accepted).await;
                    } else {
                        tracing::info!(
                            "closing connection from {peer}: no per_source_max_startups slot for {source} within {wait:?}"
                        );
                    }
                });
            }
        }
    }
    // abort() only asks; awaiting the tasks makes sure the listeners are closed (the port
    // refuses connections) by the time serve returns.
    for t in &accept_tasks {
        t.abort();
    }
    for t in accept_tasks {
        let _ = t.await;
    }
    Ok(())
}

/// Connections one address may have waiting for a per_source_max_startups slot, and all
/// addresses together: what a burst may queue; more are a flood and are dropped.
pub const PER_SOURCE_QUEUE: u32 = 64;
pub const TOTAL_QUEUE: u32 = 1024;

/// Starts a connection that holds a per-source slot, unless max_startups drops it.
async fn admit(
    shared: &Arc<Shared>,
    config: &Arc<RwLock<Arc<russh::server::Config>>>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    source: IpAddr,
    accepted: tokio::time::Instant,
) {
    let startups = shared.settings.read().await.max_startups;
    let pending = shared.unauth.load(Ordering::SeqCst);
    if should_drop(startups, pending, rand::random::<u32>() % 100) {
        shared.leave_source(source);
        tracing::warn!(
            "dropping connection from {peer}: {pending} connections are not authenticated yet (max_startups {}:{}:{})",
            startups.start, startups.rate, startups.full
        );
        drop(stream);
        return;
    }
    shared.unauth.fetch_add(1, Ordering::SeqCst);
    let cfg = config.read().await.clone();
    let shared = shared.clone();
    let guard = LiveGuard::new(shared.clone());
    tokio::spawn(async move {
        run_connection(stream, peer, local, cfg, shared, accepted).await;
        drop(guard);
    });
}

/// OpenSSH's MaxStartups: below `start` unauthenticated connections accept all; from `start`
/// drop with probability `rate`%, rising linearly to 100% at `full`. `roll` is 0..100.
fn should_drop(m: crate::config::MaxStartups, pending: u64, roll: u32) -> bool {
    let (start, full) = (u64::from(m.start), u64::from(m.full));
    if pending >= full {
        return true;
    }
    if pending < start {
        return false;
    }
    let span = full.saturating_sub(start).max(1);
    let p = u64::from(m.rate) + (100 - u64::from(m.rate).min(100)) * (pending - start) / span;
    u64::from(roll) < p
}

/// The address a per-source limit counts: IPv4-mapped IPv6 as IPv4.
fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Takes one from `source`'s count, forgetting the address at zero so the map only holds
/// addresses with connections.
fn count_down<N: Copy + PartialEq + std::ops::SubAssign + From<u8>>(
    m: &mut HashMap<IpAddr, N>,
    source: IpAddr,
) {
    if let Some(n) = m.get_mut(&source) {
        if *n != N::from(0) {
            *n -= N::from(1);
        }
        if *n == N::from(0) {
            m.remove(&source);
        }
    }
}

impl Shared {
    /// Counts one more unauthenticated connection from `source`, unless it already has
    /// `limit` (0 = no limit): then false and nothing counted.
    fn enter_source(&self, source: IpAddr, limit: u32) -> bool {
        let Ok(mut m) = self.unauth_by_source.lock() else {
            return true;
        };
        let n = m.entry(source).or_insert(0);
        if limit != 0 && *n >= u64::from(limit) {
            return false;
        }
        *n += 1;
        true
    }

    fn leave_source(&self, source: IpAddr) {
        if let Ok(mut m) = self.unauth_by_source.lock() {
            count_down(&mut m, source);
        }
        self.slot_freed.notify_waiters();
    }

    /// Counts one more connection waiting for a slot of `source`, unless its queue (or the
    /// total) is full: then false.
    fn enqueue(&self, source: IpAddr) -> bool {
        let Ok(mut m) = self.queued_by_source.lock() else {
            return false;
        };
        let total: u32 = m.values().sum();
        let n = m.entry(source).or_insert(0);
        if *n >= PER_SOURCE_QUEUE || total >= TOTAL_QUEUE {
            if *n == 0 {
                m.remove(&source);
            }
            return false;
        }
        *n += 1;
        true
    }

    fn dequeue(&self, source: IpAddr) {
        if let Ok(mut m) = self.queued_by_source.lock() {
            count_down(&mut m, source);
        }
    }

    /// Waits until `source` gets an unauthenticated-connection slot (then holds it), until
    /// `deadline` or until shutdown (false).
    async fn wait_for_source_slot(
        &self,
        source: IpAddr,
        limit: u32,
        deadline: tokio::time::Instant,
    ) -> bool {
        let mut stopping = self.stopping.subscribe();
        loop {
            let freed = self.slot_freed.notified();
            tokio::pin!(freed);
            // Registered before the check, so a slot freed in between is not missed.
            freed.as_mut().enable();
            if *stopping.borrow() {
                return false;
            }
            if self.enter_source(source, limit) {
                return true;
            }
            tokio::select! {
                _ = &mut freed => {}
                _ = tokio::time::sleep_until(deadline) => return false,
                _ = stopping.changed() => {}
            }
        }
    }
}

/// Marks the connection authenticated (or gone) once, releasing its max_startups slot and
/// its per-source slot.
fn leave_unauth(shared: &Shared, authed: &AtomicBool, peer: IpAddr) {
    if !authed.swap(true, Ordering::SeqCst) {
        shared.unauth.fetch_sub(1, Ordering::SeqCst);
        shared.leave_source(source_key(peer));
    }
}

async fn run_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    cfg: Arc<russh::server::Config>,
    shared: Arc<Shared>,
    accepted: tokio::time::Instant,
) {
    if let Err(e) = stream.set_nodelay(cfg.nodelay) {
        tracing::debug!("set_nodelay: {e}");
    }
    let conn_id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let settings = shared.settings.read().await.clone();
    let peer_s = peer.to_string();
    tracing::info!("connection {conn_id} from {peer}");
    shared.audit.event("connect", conn_id, &peer_s, &[]);
    let authed = Arc::new(AtomicBool::new(false));
    let sessions = Sessions::new(conn_id, settings.max_sessions);
    let stop_grace = settings.shutdown_grace_time;
    let grace = settings.login_grace_time;
    // The grace period covers everything before authentication from the TCP accept,
    // including time spent waiting for a per-source slot and a peer that never sends its
    // version line (russh's run_stream waits for it).
    // As OpenSSH, 0 means no limit (a far deadline keeps one code path).
    let deadline = accepted
        + if grace.is_zero() {
            Duration::from_secs(100 * 365 * 86_400)
        } else {
            grace
        };
    // The session's handle, for the handler to disconnect from inside an auth callback.
    let handle_cell = Arc::new(std::sync::OnceLock::new());
    let handler = Conn {
        shared: shared.clone(),
        settings,
        conn_id,
        peer,
        local,
        user: None,
        account: None,
        perms: None,
        authed: authed.clone(),
        channels: HashMap::new(),
        sessions: sessions.clone(),
        offered_algorithm: None,
        auth_requests: 0,
        auth_failures: 0,
        handle: handle_cell.clone(),
    };
    let setup = tokio::time::timeout_at(deadline, russh::server::run_stream(cfg, stream, handler));
    let session = match setup.await {
        Ok(Ok(s)) => {
            let _ = handle_cell.set(s.handle());
            s
        }
        Ok(Err(e)) => {
            leave_unauth(&shared, &authed, peer.ip());
            tracing::info!("connection {conn_id} from {peer}: setup failed: {e:#}");
            shared.audit.event(
                "disconnect",
                conn_id,
                &peer_s,
                &[("reason", Value::from(format!("{e:#}")))],
            );
            return;
        }
        Err(_) => {
            leave_unauth(&shared, &authed, peer.ip());
            tracing::info!(
                "connection {conn_id} from {peer}: no SSH version line within login_grace_time ({grace:?}), closing"
            );
            shared.audit.event(
                "disconnect",
                conn_id,
                &peer_s,
                &[("reason", Value::from("login grace time exceeded"))],
            );
            return;
        }
    };
    let handle = session.handle();
    let authed2 = authed.clone();
    let grace_timer = tokio::spawn(async move {
        tokio::time::sleep_until(deadline).await;
        if !authed2.load(Ordering::SeqCst) {
            tracing::info!("connection {conn_id} from {peer}: not authenticated within login_grace_time ({grace:?}), disconnecting");
            let _ = handle
                .disconnect(
                    russh::Disconnect::ByApplication,
                    "login grace time exceeded".into(),
                    String::new(),
                )
                .await;
        }
    });
    let mut stopping = shared.stopping.subscribe();
    let end_handle = session.handle();
    tokio::pin!(session);
    let result = tokio::select! {
        r = &mut session => r,
        _ = async { let _ = stopping.wait_for(|s| *s).await; } => {
            graceful_end(conn_id, &end_handle, &sessions, authed.load(Ordering::SeqCst), stop_grace, session.as_mut()).await
        }
    };
    grace_timer.abort();
    leave_unauth(&shared, &authed, peer.ip());
    let reason = match &result {
        Ok(()) => "closed".to_string(),
        Err(e) => format!("{e:#}"),
    };
    // The audit event is queued before the log line, so whoever sees "ended" in the log
    // finds the event written (or about to be).
    shared.audit.event(
        "disconnect",
        conn_id,
        &peer_s,
        &[("reason", Value::from(reason.as_str()))],
    );
    tracing::info!("connection {conn_id} from {peer} ended: {reason}");
}

/// SIGTERM for one connection: an unauthenticated one is disconnected at once; an
/// authenticated one is told on each session's stderr, gets `grace` to finish, then its
/// processes get SIGHUP (as when a terminal hangs up) and the connection is disconnected with
/// the reason "mshd is shutting down".
async fn graceful_end<F>(
    conn_id: u64,
    handle: &russh::server::Handle,
    sessions: &Sessions,
    authed: bool,
    grace: Duration,
    mut session: std::pin::Pin<&mut F>,
) -> Result<(), anyhow::Error>
where
    F: Future<Output = Result<(), anyhow::Error>>,
{
    let channels: Vec<ChannelId> = sessions.running();
    if authed && !channels.is_empty() && !grace.is_zero() {
        let note = format!(
            "\r\nmshd: the server is shutting down; this session will be closed in {} s\r\n",
            grace.as_secs_f64().ceil()
        );
        for ch in &channels {
            let _ = handle
                .extended_data(*ch, 1, note.clone().into_bytes())
                .await;
        }
        tracing::info!(
            "connection {conn_id}: shutting down, {} session(s) get {grace:?} to end",
            channels.len()
        );
        if let Ok(r) = tokio::time::timeout(grace, session.as_mut()).await {
            return r;
        }
        // Each session leads its own process group: hang up all of it (a `sleep` run by the
        // shell holds the output pipe open as long as it lives). Only groups whose leader is
        // not reaped yet, so a recycled PID is never hit.
        for pid in sessions.hangup_all() {
            tracing::info!(
                "connection {conn_id}: shutdown grace time over, SIGHUP to session pid {pid}"
            );
        }
        // Let the exit status reach the client before the disconnect.
        if let Ok(r) = tokio::time::timeout(Duration::from_secs(2), session.as_mut()).await {
            return r;
        }
    }
    let _ = handle
        .disconnect(
            russh::Disconnect::ByApplication,
            "mshd is shutting down".into(),
            String::new(),
        )
        .await;
    match tokio::time::timeout(Duration::from_secs(2), session.as_mut()).await {
        Ok(r) => r,
        Err(_) => Err(anyhow::anyhow!("closed at shutdown")),
    }
}

/// Accepted `env` variables one session channel may hold (sshd's session_env_req stops at
/// 128 too); a variable set again replaces its value and does not count twice.
pub const MAX_ENV_VARS: usize = 128;
/// Longest `env` name and value kept (the kernel refuses a single environment string over
/// 128 KiB anyway); with [`MAX_ENV_VARS`] this bounds what a client can make the daemon hold
/// per channel (2 MiB), however many requests it sends.
pub const MAX_ENV_NAME: usize = 256;
pub const MAX_ENV_VALUE: usize = 16 * 1024;

/// Why an accepted `env` request is refused anyway: too many variables, or too long.
fn env_refusal(env: &[(String, String)], name: &str, value: &str) -> Option<String> {
    if name.len() > MAX_ENV_NAME {
        return Some(format!(
            "name of {} bytes (at most {MAX_ENV_NAME})",
            name.len()
        ));
    }
    if value.len() > MAX_ENV_VALUE {
        return Some(format!(
            "value of {} bytes (at most {MAX_ENV_VALUE})",
            value.len()
        ));
    }
    if env.len() >= MAX_ENV_VARS && !env.iter().any(|(k, _)| k == name) {
        return Some(format!(
            "this session already has {MAX_ENV_VARS} variables (as sshd, no more)"
        ));
    }
    None
}

/// What a session channel asked to run.
enum Request {
    Shell,
    Exec(String),
    /// A configured subsystem: its name and command line.
    Subsystem {
        name: String,
        command: String,
    },
}

/// Per-channel state before and after the process starts.
struct ChanState {
    input: Option<mpsc::Receiver<Input>>,
    pty: Option<PtyReq>,
    env: Vec<(String, String)>,
    running: Option<Running>,
}

/// One connection's handler.
pub struct Conn {
    shared: Arc<Shared>,
    settings: Arc<Settings>,
    conn_id: u64,
    peer: SocketAddr,
    local: SocketAddr,
    /// The user name of the current auth attempts; state is reset when it changes.
    user: Option<String>,
    account: Option<Account>,
    perms: Option<Permissions>,
    authed: Arc<AtomicBool>,
    /// Per-channel requests before the process starts (pruned of finished channels).
    channels: HashMap<ChannelId, ChanState>,
    /// Slots, processes and descriptors of the channels (shared with the session tasks).
    sessions: Arc<Sessions>,
    /// The signature algorithm of the last offer (russh passes it only at the offer stage):
    /// logs an RSA certificate login as the `rsa-sha2-512-cert-v01` it was, not as the
    /// certificate's SHA-1 type name.
    offered_algorithm: Option<russh::keys::Algorithm>,
    /// Authentication requests seen by the handler, and how many failed as sshd counts them
    /// (see `tally`).
    auth_requests: u32,
    auth_failures: u32,
    handle: Arc<std::sync::OnceLock<russh::server::Handle>>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // russh drops the handler when the connection ends, however it ends.
        self.sessions.end();
        session::trim_heap_soon();
    }
}

fn key_type(key: &PublicKey) -> String {
    key.algorithm().as_str().to_string()
}

fn fingerprint(key: &PublicKey) -> String {
    msh_common::keys::fingerprint(key)
}

impl Conn {
    fn audit_ctx(&self) -> AuditCtx {
        AuditCtx {
            audit: self.shared.audit.clone(),
            conn_id: self.conn_id,
            peer: self.peer.to_string(),
            user: self
                .account
                .as_ref()
                .map(|a| a.name.clone())
                .unwrap_or_default(),
            subsystem: None,
        }
    }

    /// Logs one auth attempt (and writes its audit event). `key` is the plain key or the
    /// certificate's key; `cert` identifies a certificate.
    fn log_attempt(
        &self,
        user: &str,
        key_type: &str,
        fp: &str,
        cert: Option<&CertInfo>,
        outcome: &str,
        reason: &str,
    ) {
        let what = match cert {
            Some(c) => format!("{key_type} {fp}, {c}"),
            None => format!("{key_type} {fp}"),
        };
        // The audit event keeps the name as sent (JSON escapes it; the audit log caps it).
        let shown = crate::logsafe::user(user);
        if outcome == "accepted" {
            tracing::info!(
                "connection {} from {}: accepted publickey for {shown} ({what}): {reason}",
                self.conn_id,
                self.peer
            );
        } else {
            tracing::warn!(
                "connection {} from {}: rejected publickey for {shown} ({what}): {reason}",
                self.conn_id,
                self.peer
            );
        }
        let mut fields = vec![
            ("user", Value::from(user)),
            ("method", Value::from("publickey")),
            ("key_type", Value::from(key_type)),
            ("fingerprint", Value::from(fp)),
            ("outcome", Value::from(outcome)),
            ("reason", Value::from(reason)),
        ];
        if let Some(c) = cert {
            fields.push(("cert_key_id", Value::from(c.key_id.as_str())));
            fields.push(("cert_serial", Value::from(c.serial)));
            fields.push((
                "cert_ca_fingerprint",
                Value::from(c.ca_fingerprint.as_str()),
            ));
        }
        self.shared
            .audit
            .event("auth", self.conn_id, &self.peer.to_string(), &fields);
    }

    /// Applies a verdict: remembers the account and permissions, logs, answers russh.
    fn conclude(&mut self, user: &str, key_type: &str, fp: &str, verdict: Verdict) -> Auth {
        match verdict {
            Verdict::Accept {
                account,
                perms,
                cert,
            } => {
                self.log_attempt(user, key_type, fp, cert.as_ref(), "accepted", &perms.source);
                self.account = Some(account);
                self.perms = Some(perms);
                leave_unauth(&self.shared, &self.authed, self.peer.ip());
                Auth::Accept
            }
            Verdict::Reject { reason, cert } => {
                self.log_attempt(user, key_type, fp, cert.as_ref(), "rejected", &reason);
                Auth::reject()
            }
        }
    }

    /// Builds the process environment as sshd does: fixed variables, then the client's
    /// accepted `env` requests, then the key's `environment=` options.
    fn environment(
        &self,
        account: &Account,
        st: &ChanState,
        original: Option<&str>,
    ) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = Vec::new();
        let mut set = |k: &str, v: String| {
            env.retain(|(k2, _)| k2 != k);
            env.push((k.to_string(), v));
        };
        let path = if account.uid.is_root() {
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        } else {
            "/usr/local/bin:/usr/bin:/bin:/usr/games"
        };
        set("HOME", account.home.display().to_string());
        set("USER", account.name.clone());
        set("LOGNAME", account.name.clone());
        set("SHELL", account.shell.display().to_string());
        set("PATH", path.to_string());
        set("MAIL", format!("/var/mail/{}", account.name));
        set(
            "SSH_CONNECTION",
            format!(
                "{} {} {} {}",
                self.peer.ip(),
                self.peer.port(),
                self.local.ip(),
                self.local.port()
            ),
        );
        set(
            "SSH_CLIENT",
            format!(
                "{} {} {}",
                self.peer.ip(),
                self.peer.port(),
                self.local.port()
            ),
        );
        if let Some(p) = &st.pty {
            set("TERM", p.term.clone());
        }
        for (k, v) in &st.env {
            set(k, v.clone());
        }
        if let Some(perms) = &self.perms {
            for (k, v) in &perms.environment {
                set(k, v.clone());
            }
        }
        if let Some(o) = original {
            set("SSH_ORIGINAL_COMMAND", o.to_string());
        }
        env
    }

    /// Starts the shell, a command or a subsystem on `channel`, answering the request.
    async fn start(&mut self, channel: ChannelId, request: Request, session: &mut Session) {
        let groups = self.session_groups().await;
        let result = groups.and_then(|g| self.try_start(channel, request, session.handle(), g));
        match result {
            Ok(()) => {
                let _ = session.channel_success(channel);
            }
            Err(e) => {
                tracing::warn!("connection {}: {e}", self.conn_id);
                let _ = session.channel_failure(channel);
            }
        }
    }

    /// Root mode: the user's supplementary groups now, as sshd's initgroups at each session
    /// start, so a group added or removed since the login applies to the next session.
    async fn session_groups(&self) -> Result<Vec<nix::unistd::Gid>, String> {
        let Some(account) = self.account.clone() else {
            return Err("session request before authentication".into());
        };
        if !self.settings.root_mode {
            return Ok(Vec::new());
        }
        // getgrouplist reads /etc/group or NSS: off the event loop.
        tokio::task::spawn_blocking(move || {
            let name = std::ffi::CString::new(account.name.as_str())
                .map_err(|_| format!("user name {:?} contains a NUL byte", account.name))?;
            nix::unistd::getgrouplist(&name, account.gid)
                .map_err(|e| format!("cannot read the groups of {:?}: {e}", account.name))
        })
        .await
        .unwrap_or_else(|e| Err(format!("internal error: {e}")))
    }

    fn try_start(
        &mut self,
        channel: ChannelId,
        request: Request,
        handle: russh::server::Handle,
        groups: Vec<nix::unistd::Gid>,
    ) -> Result<(), String> {
        // A subsystem runs its configured command line as an exec would (sshd: do_exec with
        // the `Subsystem` command), so a forced command replaces it and gets that command
        // line in SSH_ORIGINAL_COMMAND.
        let (requested, subsystem) = match request {
            Request::Shell => (None, None),
            Request::Exec(c) => (Some(c), None),
            Request::Subsystem { name, command } => (Some(command), Some(name)),
        };
        let account = self
            .account
            .clone()
            .ok_or("session request before authentication")?;
        let forced = self.perms.as_ref().and_then(|p| p.forced_command.clone());
        let ctx = self.audit_ctx();
        let root_mode = self.settings.root_mode;
        let Some(st) = self.channels.get(&channel) else {
            return Err(format!("request on unknown channel {channel:?}"));
        };
        if st.running.is_some() {
            return Err("a shell or command already runs on this channel".into());
        }
        let (command, original) = match (&forced, &requested) {
            (Some(f), r) => (Some(f.clone()), r.clone()),
            (None, r) => (r.clone(), None),
        };
        if let (Some(name), None, Some(c)) = (&subsystem, &forced, &command) {
            // Told before the start, so the client gets a failure instead of a session that
            // ends at once with the shell's "not found".
            if let Some(problem) = session::program_problem(c) {
                return Err(format!(
                    "subsystem {name:?} for {} failed: {problem} (`subsystems` in {})",
                    account.name,
                    self.settings.source.display()
                ));
            }
        }
        let shell_name = account
            .shell
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "sh".into());
        let (argv0, args) = match &command {
            None => (format!("-{shell_name}"), vec![]),
            Some(c) => (shell_name, vec!["-c".to_string(), c.clone()]),
        };
        let env = self.environment(&account, st, original.as_deref());
        let identity = root_mode.then_some(Identity {
            uid: account.uid,
            gid: account.gid,
            groups,
        });
        let launch = Launch {
            program: account.shell.clone(),
            argv0,
            args,
            env,
            home: account.home.clone(),
            pty: st.pty.clone(),
            identity,
            command: match (&subsystem, &forced) {
                (Some(name), None) => format!("subsystem:{name}"),
                _ => command.clone().unwrap_or_else(|| "shell".into()),
            },
            subsystem: subsystem.clone(),
            kind: match (&forced, &subsystem, &command) {
                (Some(_), _, _) => Kind::Forced,
                (None, Some(_), _) => Kind::Subsystem,
                (None, None, Some(_)) => Kind::Exec,
                (None, None, None) => Kind::Shell,
            },
        };
        let Some(st) = self.channels.get_mut(&channel) else {
            return Err(format!("request on unknown channel {channel:?}"));
        };
        let input = st.input.take().ok_or("channel input already taken")?;
        let what = match (&subsystem, &command) {
            (Some(name), Some(c)) if forced.is_some() => {
                format!("subsystem {name:?} replaced by the forced command {c:?}")
            }
            (Some(name), Some(c)) => format!("subsystem {name:?} ({c})"),
            (_, Some(c)) => format!(
                "exec \"{}\"",
                crate::logsafe::clean(c, crate::logsafe::VALUE_MAX)
            ),
            (_, None) => "shell".into(),
        };
        tracing::info!(
            "connection {}: {what} for {}{}",
            self.conn_id,
            account.name,
            if forced.is_some() {
                " (forced by command=)"
            } else {
                ""
            }
        );
        let running = session::start(launch, channel, handle, input, ctx, self.sessions.clone())?;
        st.running = Some(running);
        Ok(())
    }
}

impl russh::server::Handler for Conn {
    type Error = anyhow::Error;

    /// Names the client software in the log once it is in (sshd logs it at debug1); the
    /// version line is the client's own text, so it is escaped and capped.
    async fn auth_succeeded(&mut self, session: &mut Session) -> Result<(), Self::Error> {
        let version = String::from_utf8_lossy(session.remote_sshid());
        tracing::info!(
            "connection {}: client software \"{}\"",
            self.conn_id,
            crate::logsafe::clean(&version, crate::logsafe::NAME_MAX * 2)
        );
        Ok(())
    }

    async fn auth_none(&mut self, user: &str) -> Result<Auth, Self::Error> {
        if self.over_limit() {
            return Ok(Auth::reject());
        }
        let first = self.auth_requests == 0;
        Ok(self.tally(user, Auth::reject(), first))
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        if self.over_limit() {
            return Ok(Auth::reject());
        }
        if self.user.as_deref() != Some(user) {
            self.reset(user);
        }
        // Only screens out keys that cannot succeed (see auth::screen_offer); acceptance is
        // decided in auth_publickey / auth_openssh_certificate after the signature verified.
        let key: PublicKey = offer.public_key.clone();
        self.offered_algorithm = Some(offer.algorithm.clone());
        let settings = self.settings.clone();
        let own_uid = self.shared.own_uid;
        let peer_ip = self.peer.ip();
        let user_s = user.to_string();
        let k2 = key.clone();
        let refusal = tokio::task::spawn_blocking(move || {
            auth::screen_offer(&settings, &user_s, &k2, peer_ip, own_uid)
        })
        .await
        .unwrap_or_else(|e| Some(format!("internal error: {e}")));
        let auth = match refusal {
            None => Auth::Accept,
            Some(reason) => {
                self.log_attempt(
                    user,
                    &key_type(&key),
                    &fingerprint(&key),
                    None,
                    "rejected",
                    &format!("{reason} (refused at the offer, no signature asked)"),
                );
                Auth::reject()
            }
        };
        Ok(self.tally(user, auth, false))
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        if self.over_limit() {
            return Ok(Auth::reject());
        }
        if self.user.as_deref() != Some(user) {
            self.reset(user);
        }
        let key: PublicKey = key.public_key.clone();
        let settings = self.settings.clone();
        let own_uid = self.shared.own_uid;
        let peer_ip = self.peer.ip();
        let user_s = user.to_string();
        let k2 = key.clone();
        // getpwnam and file reads may block (NSS, NFS homes): keep them off the event loop.
        let verdict = tokio::task::spawn_blocking(move || {
            auth::decide(&settings, &user_s, &k2, peer_ip, own_uid)
        })
        .await
        .unwrap_or_else(|e| Verdict::Reject {
            reason: format!("internal error: {e}"),
            cert: None,
        });
        let auth = self.conclude(user, &key_type(&key), &fingerprint(&key), verdict);
        Ok(self.tally(user, auth, false))
    }

    /// russh refuses a user certificate outside its validity window or with a CA signature
    /// that does not verify before any other method sees it (vendor/russh/PATCHES.md): the
    /// refusal stands, and is logged and audited with what was refused, as mshd's own are.
    async fn auth_certificate_refused(
        &mut self,
        user: &str,
        certificate: &Certificate,
        refusal: CertificateRefusal,
    ) -> Result<(), Self::Error> {
        if self.over_limit() {
            return Ok(());
        }
        let info = CertInfo::of(certificate);
        let reason = match refusal {
            CertificateRefusal::NotYetValid => format!(
                "certificate not yet valid (valid from {})",
                format_utc(certificate.valid_after())
            ),
            CertificateRefusal::Expired => format!(
                "certificate expired at {}",
                format_utc(certificate.valid_before())
            ),
            _ => format!("signature by CA {} does not verify", info.ca_fingerprint),
        };
        let inner = PublicKey::new(certificate.public_key().clone(), "");
        let kt = certificate.algorithm().to_certificate_type();
        self.log_attempt(
            user,
            &kt,
            &fingerprint(&inner),
            Some(&info),
            "rejected",
            &reason,
        );
        // A refusal like any other for max_auth_tries (sshd counts it too).
        self.tally(user, Auth::reject(), false);
        Ok(())
    }

    async fn auth_openssh_certificate(
        &mut self,
        user: &str,
        certificate: &Certificate,
    ) -> Result<Auth, Self::Error> {
        // russh calls this once the request's signature verified with the certificate's key.
        if self.over_limit() {
            return Ok(Auth::reject());
        }
        if self.user.as_deref() != Some(user) {
            self.reset(user);
        }
        let cert = certificate.clone();
        let settings = self.settings.clone();
        let own_uid = self.shared.own_uid;
        let peer_ip = self.peer.ip();
        let user_s = user.to_string();
        let c2 = cert.clone();
        let verdict = tokio::task::spawn_blocking(move || {
            auth::decide_cert(&settings, &user_s, &c2, peer_ip, own_uid)
        })
        .await
        .unwrap_or_else(|e| Verdict::Reject {
            reason: format!("internal error: {e}"),
            cert: None,
        });
        let inner = PublicKey::new(cert.public_key().clone(), "");
        let kt = match self.offered_algorithm.take() {
            Some(a @ russh::keys::Algorithm::Rsa { .. }) if cert.algorithm().is_rsa() => {
                a.to_certificate_type()
            }
            _ => cert.algorithm().to_certificate_type(),
        };
        let auth = self.conclude(user, &kt, &fingerprint(&inner), verdict);
        Ok(self.tally(user, auth, false))
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.account.is_none() {
            return Ok(());
        }
        let id = channel.id();
        // Channels the server closed first never reach channel_close (russh ignores the
        // client's answering close): forget their requests here.
        let sessions = self.sessions.clone();
        self.channels.retain(|c, _| sessions.is_open(*c));
        if !self.sessions.open(id) {
            tracing::warn!(
                "connection {}: refusing a session channel: max_sessions ({}) reached",
                self.conn_id,
                self.settings.max_sessions
            );
            reply
                .reject(russh::ChannelOpenFailure::ResourceShortage)
                .await;
            return Ok(());
        }
        let input = session::spawn_input_pump(&self.sessions, channel);
        self.channels.insert(
            id,
            ChanState {
                input: Some(input),
                pty: None,
                env: Vec::new(),
                running: None,
            },
        );
        reply.accept().await;
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        self.sessions.close(channel);
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        term: &str,
        col_width: u32,
        row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        modes: &[(Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let allowed = self.perms.as_ref().map(|p| p.pty).unwrap_or(false);
        match self.channels.get_mut(&channel) {
            Some(st) if allowed && st.running.is_none() => {
                st.pty = Some(PtyReq {
                    term: term.to_string(),
                    cols: col_width,
                    rows: row_height,
                    modes: modes.to_vec(),
                });
                session.channel_success(channel)?;
            }
            _ => {
                if !allowed {
                    tracing::info!(
                        "connection {}: pty-req refused: the key's authorized_keys options forbid a PTY (no-pty/restrict)",
                        self.conn_id
                    );
                }
                session.channel_failure(channel)?;
            }
        }
        Ok(())
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let accepted = self
            .settings
            .accept_env
            .iter()
            .any(|p| msh_common::pattern::glob_match(name, p));
        let refusal = match self.channels.get(&channel) {
            Some(st) if accepted && st.running.is_none() => env_refusal(&st.env, name, value),
            _ => None,
        };
        if let Some(why) = &refusal {
            tracing::info!(
                "connection {}: env {} refused: {why}",
                self.conn_id,
                crate::logsafe::clean(name, crate::logsafe::NAME_MAX)
            );
            session.channel_failure(channel)?;
            return Ok(());
        }
        match self.channels.get_mut(&channel) {
            Some(st) if accepted && st.running.is_none() => {
                st.env.retain(|(k, _)| k != name);
                st.env.push((name.to_string(), value.to_string()));
                session.channel_success(channel)?;
            }
            _ => {
                tracing::debug!(
                    "connection {}: env {} not accepted (accept_env)",
                    self.conn_id,
                    crate::logsafe::clean(name, crate::logsafe::NAME_MAX)
                );
                session.channel_failure(channel)?;
            }
        }
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.start(channel, Request::Shell, session).await;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let command = String::from_utf8_lossy(data).into_owned();
        self.start(channel, Request::Exec(command), session).await;
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(command) = self.settings.subsystems.get(name).cloned() else {
            // As sshd, a forced command does not make an unknown subsystem run. The name is
            // the client's: cut to 100 characters (as sshd) so it cannot flood the log.
            let name: String = name.chars().take(100).collect();
            let configured: Vec<&str> = self
                .settings
                .subsystems
                .keys()
                .map(|k| k.as_str())
                .collect();
            tracing::warn!(
                "connection {}: subsystem {name:?} refused: not configured (`subsystems` in {} has {})",
                self.conn_id,
                self.settings.source.display(),
                if configured.is_empty() {
                    "none".to_string()
                } else {
                    configured.join(", ")
                }
            );
            session.channel_failure(channel)?;
            return Ok(());
        };
        let name = name.to_string();
        self.start(channel, Request::Subsystem { name, command }, session)
            .await;
        Ok(())
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        col_width: u32,
        row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let size = (
            u16::try_from(row_height).unwrap_or(u16::MAX),
            u16::try_from(col_width).unwrap_or(u16::MAX),
        );
        match self.channels.get_mut(&channel) {
            Some(ChanState {
                running: Some(Running {
                    resize: Some(tx), ..
                }),
                ..
            }) => {
                let _ = tx.send(size);
                session.channel_success(channel)?;
            }
            Some(ChanState {
                pty: Some(p),
                running: None,
                ..
            }) => {
                p.cols = col_width;
                p.rows = row_height;
                session.channel_success(channel)?;
            }
            _ => session.channel_failure(channel)?,
        }
        Ok(())
    }

    async fn signal(
        &mut self,
        channel: ChannelId,
        signal: Sig,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(sig) = session::from_ssh_sig(&signal) else {
            tracing::info!(
                "connection {}: signal {signal:?} refused: not a signal mshd passes on",
                self.conn_id
            );
            session.channel_failure(channel)?;
            return Ok(());
        };
        match self.sessions.signal(channel, sig) {
            Ok(pid) => {
                tracing::info!(
                    "connection {}: signal {sig} to process group {pid}",
                    self.conn_id
                );
                session.channel_success(channel)?;
            }
            Err(e) => {
                tracing::info!("connection {}: signal {sig} refused: {e}", self.conn_id);
                session.channel_failure(channel)?;
            }
        }
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        _channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl Conn {
    /// max_auth_tries as sshd counts (auth2.c `userauth_finish`): every refused request is a
    /// failure except the client's initial `none` probe (`first_none`) and a key query
    /// answered with PK_OK (postponed, not refused); when the failures reach the limit the
    /// connection is closed with sshd's "Too many authentication failures". A signed request
    /// may reach two callbacks (offer, then signature), but a refusal ends the request, so
    /// it is counted once.
    fn tally(&mut self, user: &str, auth: Auth, first_none: bool) -> Auth {
        self.auth_requests += 1;
        if auth == Auth::Accept || first_none {
            return auth;
        }
        self.auth_failures += 1;
        let max = self.settings.max_auth_tries;
        if self.auth_failures >= max {
            tracing::warn!(
                "connection {} from {}: maximum authentication attempts exceeded for {} (max_auth_tries {max}), disconnecting",
                self.conn_id,
                self.peer,
                crate::logsafe::user(user)
            );
            if let Some(h) = self.handle.get().cloned() {
                tokio::spawn(async move {
                    let _ = h
                        .disconnect(
                            russh::Disconnect::ProtocolError,
                            "Too many authentication failures".into(),
                            String::new(),
                        )
                        .await;
                });
            }
        }
        auth
    }

    /// Past max_auth_tries every further request is refused unseen (the disconnect is on
    /// its way; this closes the window until it lands).
    fn over_limit(&self) -> bool {
        self.auth_failures >= self.settings.max_auth_tries
    }

    /// A new user name in the auth requests: forget everything decided for the previous one.
    fn reset(&mut self, user: &str) {
        self.user = Some(user.to_string());
        self.account = None;
        self.perms = None;
    }
}

#[cfg(test)]
mod tests {
    use super::should_drop;
    use crate::config::MaxStartups;

    #[test]
    fn per_source_limit_counts_each_address_and_ipv4_mapped_as_ipv4() {
        use std::net::IpAddr;
        let settings = crate::config::Settings::resolve(
            Default::default(),
            std::path::Path::new("m.toml"),
            &Default::default(),
            false,
        )
        .unwrap();
        let sh = super::Shared::new(settings, crate::audit::Audit::default());
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let mapped = super::source_key("::ffff:127.0.0.2".parse().unwrap());
        assert_eq!(mapped, a);
        assert!(sh.enter_source(a, 2));
        assert!(sh.enter_source(mapped, 2));
        assert!(!sh.enter_source(a, 2));
        assert!(sh.enter_source("127.0.0.1".parse().unwrap(), 2));
        sh.leave_source(a);
        assert!(sh.enter_source(a, 2));
        assert!(sh.enter_source(a, 0), "0 = no limit");
    }

    #[test]
    fn the_per_source_queue_is_bounded_per_address() {
        use std::net::IpAddr;
        let settings = crate::config::Settings::resolve(
            Default::default(),
            std::path::Path::new("m.toml"),
            &Default::default(),
            false,
        )
        .unwrap();
        let sh = super::Shared::new(settings, crate::audit::Audit::default());
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        for _ in 0..super::PER_SOURCE_QUEUE {
            assert!(sh.enqueue(a));
        }
        assert!(!sh.enqueue(a), "a full queue takes no more");
        assert!(
            sh.enqueue("127.0.0.3".parse().unwrap()),
            "another address has its own"
        );
        sh.dequeue(a);
        assert!(sh.enqueue(a));
    }

    #[test]
    fn post_quantum_only_leaves_only_mlkem_and_the_markers() {
        let names = |pq| -> Vec<String> {
            super::kex_algorithms(pq)
                .iter()
                .map(|n| AsRef::<str>::as_ref(n).to_string())
                .collect()
        };
        let all = names(false);
        assert_eq!(all[0], "mlkem768x25519-sha256");
        assert!(all.contains(&"curve25519-sha256".to_string()));
        assert!(all.contains(&"kex-strict-s-v00@openssh.com".to_string()));
        let pq = names(true);
        assert!(!pq.iter().any(|n| n.starts_with("curve25519")), "{pq:?}");
        assert!(pq.contains(&"kex-strict-s-v00@openssh.com".to_string()));
    }

    #[test]
    fn max_startups_drops_as_openssh() {
        let m = MaxStartups {
            start: 10,
            rate: 30,
            full: 100,
        };
        assert!(!should_drop(m, 9, 0));
        assert!(should_drop(m, 10, 29));
        assert!(!should_drop(m, 10, 30));
        assert!(should_drop(m, 100, 99));
        assert!(should_drop(m, 55, 64)); // 30 + 70 * 45/90 = 65 %
        assert!(!should_drop(m, 55, 65));
    }
}
