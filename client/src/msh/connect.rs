//! The connection: russh client configuration (algorithms, window sizes, keepalive), the TCP
//! connect and handshake under ConnectTimeout, and the `Handler` whose `check_server_key`
//! runs host verification (of a plain host key or a host certificate) before any user
//! authentication is sent. Certificate host-key algorithms are offered only when an
//! `@cert-authority` line could vouch for the host or `--pin` is given (OpenSSH offers them
//! always and falls back to the certified key as a plain key when no CA matches; asking only
//! when a CA could apply reaches the same verdicts with a plain key on the wire).

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail, Result};
use russh::client::{self, Handle};
use russh::keys::Algorithm;
use russh::keys::PublicKeyOrCertificate;
use russh::{cipher, Preferred};

use super::hostkeys;
use super::settings::Settings;
use super::verify::{self, Decision, VerifyConfig};

/// State shared between the handler (inside russh's task) and `connect`.
#[derive(Debug, Default)]
pub(super) struct Shared {
    /// Why host verification refused the server: russh only reports "unknown key".
    pub refusal: Mutex<Option<String>>,
    /// Set while a question is on the terminal, so ConnectTimeout does not cut the user off.
    pub prompting: AtomicBool,
    /// The host key verified through a user known_hosts entry, when UpdateHostKeys may
    /// act on the server's announcement (`hostkeys::eligible`).
    pub update_from: Mutex<Option<russh::keys::PublicKey>>,
}

/// russh client handler: host verification only; channels are read through `Channel`.
pub(super) struct Client {
    cfg: Arc<VerifyConfig>,
    shared: Arc<Shared>,
    /// Serves the channels the server opens (remote forwards, agent); refuses the rest.
    inbound: Arc<super::forward::Inbound>,
    /// The span `connect` ran in (a host's in `msh --hosts`): russh calls the handler from
    /// its own task, outside it, so the handler's log lines re-enter it to carry the host.
    span: tracing::Span,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let presented = match server_public_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => Presented::Key(key.clone()),
            PublicKeyOrCertificate::Certificate(cert) => Presented::Cert(Box::new(cert.clone())),
        };
        let cfg = self.cfg.clone();
        let shared = self.shared.clone();
        let span = self.span.clone();
        // Verification may prompt on /dev/tty and write known_hosts: keep it off the executor.
        let decision = tokio::task::spawn_blocking(move || {
            let _in_host = span.enter();
            shared.prompting.store(true, Ordering::SeqCst);
            let d = match &presented {
                Presented::Key(key) => {
                    // Before `verify`, which may record the key (a host just learned).
                    let from = hostkeys::eligible(&cfg, key);
                    let d = verify::verify(&cfg, key);
                    if d == Decision::Accept {
                        if let Ok(mut u) = shared.update_from.lock() {
                            *u = from;
                        }
                    }
                    d
                }
                // Never extended: a host vouched for by a CA has no keys of its own on record.
                Presented::Cert(cert) => verify::verify_cert(&cfg, cert),
            };
            shared.prompting.store(false, Ordering::SeqCst);
            d
        })
        .await
        .unwrap_or_else(|e| Decision::Refuse(format!("host verification failed: {e}")));
        match decision {
            Decision::Accept => Ok(true),
            Decision::Refuse(msg) => {
                self.refuse(msg);
                Ok(false)
            }
        }
    }

    // Server-opened channels (forward/remote.rs): russh's defaults accept every kind.
    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        channel: russh::Channel<client::Msg>,
        connected_address: &str,
        connected_port: u32,
        originator_address: &str,
        originator_port: u32,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        self.span.in_scope(|| {
            self.inbound.forwarded_tcpip(
                channel,
                connected_address,
                connected_port,
                (originator_address, originator_port),
                reply,
            );
        });
        Ok(())
    }

    async fn server_channel_open_agent_forward(
        &mut self,
        channel: russh::Channel<client::Msg>,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        self.span.in_scope(|| {
            self.inbound.agent(channel, reply);
        });
        Ok(())
    }

    // Dropping `reply` refuses the channel.
    async fn server_channel_open_forwarded_streamlocal(
        &mut self,
        _channel: russh::Channel<client::Msg>,
        _socket_path: &str,
        _reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        self.span.in_scope(|| {
            tracing::debug!("refused a forwarded-streamlocal channel msh did not ask for")
        });
        Ok(())
    }

    async fn server_channel_open_session(
        &mut self,
        _channel: russh::Channel<client::Msg>,
        _reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        self.span
            .in_scope(|| tracing::debug!("refused a session channel opened by the server"));
        Ok(())
    }

    async fn server_channel_open_direct_tcpip(
        &mut self,
        _channel: russh::Channel<client::Msg>,
        _host_to_connect: &str,
        _port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        _reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        self.span
            .in_scope(|| tracing::debug!("refused a direct-tcpip channel opened by the server"));
        Ok(())
    }

    async fn server_channel_open_direct_streamlocal(
        &mut self,
        _channel: russh::Channel<client::Msg>,
        _socket_path: &str,
        _reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        self.span.in_scope(|| {
            tracing::debug!("refused a direct-streamlocal channel opened by the server")
        });
        Ok(())
    }

    async fn server_channel_open_x11(
        &mut self,
        _channel: russh::Channel<client::Msg>,
        _originator_address: &str,
        _originator_port: u32,
        _reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        self.span
            .in_scope(|| tracing::debug!("refused an x11 channel (msh does not forward X11)"));
        Ok(())
    }

    async fn openssh_ext_host_keys_announced(
        &mut self,
        keys: Vec<russh::keys::PublicKey>,
        session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        let trusted = self
            .shared
            .update_from
            .lock()
            .ok()
            .and_then(|mut u| u.take());
        self.span
            .in_scope(|| hostkeys::announced(&self.cfg, trusted, keys, session));
        Ok(())
    }
}

/// What the server proved itself with, moved into the blocking verification task.
enum Presented {
    Key(russh::keys::PublicKey),
    Cert(Box<russh::keys::Certificate>),
}

impl Client {
    fn refuse(&self, msg: String) {
        if let Ok(mut r) = self.shared.refusal.lock() {
            *r = Some(msg);
        }
    }
}

/// russh client configuration for msh.
/// `certificates`: also offer certificate host-key algorithms (ahead of plain keys), so a
/// server holding a host certificate presents it.
fn russh_config(settings: &Settings, known: &[Algorithm], certificates: bool) -> client::Config {
    // No `ssh-rsa` (SHA-1 signatures) for host keys or our own keys.
    let mut key_algs = crate::algorithms::preferred_key_algorithms();
    // Algorithms of keys already in known_hosts go first, as OpenSSH orders them, so the
    // server proves itself with a key we can check instead of one we have never seen.
    key_algs.sort_by_key(|a| {
        let family = match a {
            Algorithm::Rsa { .. } => Algorithm::Rsa { hash: None },
            other => other.clone(),
        };
        known
            .iter()
            .position(|k| *k == family)
            .unwrap_or(usize::MAX)
    });
    let host_key_certificates = if certificates {
        key_algs.clone()
    } else {
        Vec::new()
    };
    let preferred = Preferred {
        key: Cow::Owned(key_algs),
        host_key_certificates: Cow::Owned(host_key_certificates),
        // AES-GCM first: with AES-NI it is several times faster than chacha20-poly1305 (bulk
        // copies are cipher-bound on loopback), and both are AEADs.
        cipher: Cow::Owned(vec![
            cipher::AES_128_GCM,
            cipher::AES_256_GCM,
            cipher::CHACHA20_POLY1305,
            cipher::AES_256_CTR,
            cipher::AES_128_CTR,
        ]),
        ..Preferred::default()
    };
    client::Config {
        preferred,
        // Nagle + delayed ACK costs ~40 ms per handshake round trip; interactive keystrokes
        // suffer the same way.
        nodelay: true,
        // The receive window bounds how much the server may send before we acknowledge it:
        // at 2 MiB a bulk download stalls on every window round trip; 16 MiB keeps the pipe
        // full while still bounding memory per channel.
        window_size: 16 * 1024 * 1024,
        // Largest packet russh accepts without complaint (it warns above 65535); fewer,
        // bigger packets mean less per-packet MAC/framing work.
        maximum_packet_size: 65535,
        keepalive_interval: settings.server_alive_interval,
        keepalive_max: 3,
        ..client::Config::default()
    }
}

/// Connects, runs key exchange and host verification. Every failure is one line naming the
/// host and port (e.g. "connect to 127.0.0.1 port 2222: Connection refused").
/// `inbound` serves the channels this server may open towards msh (forward/remote.rs).
pub(super) async fn connect(
    settings: &Settings,
    inbound: Arc<super::forward::Inbound>,
) -> Result<Handle<Client>> {
    log_settings(settings);
    let stream = tcp(settings).await?;
    handshake(settings, stream, inbound).await
}

/// The -v notes on how the settings came about.
pub(super) fn log_settings(settings: &Settings) {
    // Logged here rather than while reading the config: tracing starts after `resolve`.
    for note in &settings.config_notes {
        tracing::info!("{note}");
    }
    if let Some(origin) = &settings.host_name_origin {
        tracing::info!(
            "{:?} is HostName {} ({origin}); known_hosts name {}",
            settings.host_arg,
            settings.host,
            msh_common::known_hosts::host_key_name(
                settings.known_hosts_name(),
                settings.known_hosts_port()
            )
        );
    }
}

/// The TCP connection to HostName:Port, under ConnectTimeout.
pub(super) async fn tcp(settings: &Settings) -> Result<tokio::net::TcpStream> {
    // The address connected to is HostName; messages name it as ssh's do, with the alias
    // it came from so a user who typed the alias recognises it.
    let host = settings.host.as_str();
    let host_desc = settings.host_description();
    let port = settings.port;
    let timeout = settings.connect_timeout;
    let addrs: Vec<SocketAddr> = match tokio::net::lookup_host((host, port)).await {
        Ok(a) => a.collect(),
        Err(e) => bail!("could not resolve hostname {host_desc}: {}", io_desc(&e)),
    };
    if addrs.is_empty() {
        bail!("could not resolve hostname {host_desc}: no addresses");
    }

    let mut last_err = None;
    let mut stream = None;
    for addr in &addrs {
        let attempt = tokio::net::TcpStream::connect(addr);
        let res = match timeout {
            Some(t) => match tokio::time::timeout(t, attempt).await {
                Ok(r) => r,
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "Connection timed out",
                )),
            },
            None => attempt.await,
        };
        match res {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => {
                tracing::debug!("connect to {addr}: {e}");
                last_err = Some(e);
            }
        }
    }
    let Some(stream) = stream else {
        let desc = last_err.map(|e| io_desc(&e)).unwrap_or_default();
        bail!("connect to {host_desc} port {port}: {desc}");
    };
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!("set_nodelay: {e}");
    }
    tracing::info!("connected to {host} port {port}");
    Ok(stream)
}

/// Key exchange and host verification over `stream` (TCP, a proxy command's stdio or a
/// channel of a jump host), under ConnectTimeout.
pub(super) async fn handshake<S>(
    settings: &Settings,
    stream: S,
    inbound: Arc<super::forward::Inbound>,
) -> Result<Handle<Client>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let host_desc = settings.host_description();
    let port = settings.port;
    let timeout = settings.connect_timeout;
    let verify_cfg = Arc::new(VerifyConfig::from_settings(settings));
    let (known, certificates) = {
        let cfg = verify_cfg.clone();
        tokio::task::spawn_blocking(move || {
            (
                verify::known_algorithms(&cfg),
                verify::wants_certificates(&cfg),
            )
        })
        .await
        .unwrap_or_default()
    };
    let config = Arc::new(russh_config(settings, &known, certificates));
    let shared = Arc::new(Shared::default());

    let handler = Client {
        cfg: verify_cfg,
        shared: shared.clone(),
        inbound,
        span: tracing::Span::current(),
    };
    let handshake = client::connect_stream(config, stream, handler);
    tokio::pin!(handshake);
    let result = match timeout {
        None => handshake.await,
        Some(t) => loop {
            tokio::select! {
                r = &mut handshake => break r,
                _ = tokio::time::sleep(t) => {
                    // A person answering the host-key question is not a dead server.
                    if !shared.prompting.load(Ordering::SeqCst) {
                        bail!("connection to {host_desc} port {port} timed out during the SSH handshake (ConnectTimeout={}s)", t.as_secs());
                    }
                }
            }
        },
    };
    match result {
        Ok(h) => Ok(h),
        Err(e) => {
            let refusal = shared.refusal.lock().ok().and_then(|r| r.clone());
            match refusal {
                Some(msg) => Err(anyhow!(msg)),
                None => Err(anyhow!(
                    "{host_desc} port {port}: SSH handshake failed: {}",
                    russh_desc(&e)
                )),
            }
        }
    }
}

/// An I/O error as OpenSSH prints it: "Connection refused", without "(os error 111)".
pub(super) fn io_desc(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_string(),
        // std words a resolver error as "failed to lookup address information: REASON";
        // OpenSSH prints the reason alone after "Could not resolve hostname".
        None => {
            let text = e.to_string();
            match text.strip_prefix("failed to lookup address information: ") {
                Some(reason) => reason.to_string(),
                None => text,
            }
        }
    }
}

pub(super) fn russh_desc(e: &russh::Error) -> String {
    match e {
        russh::Error::IO(io) => io_desc(io),
        russh::Error::Disconnect => "the server closed the connection".to_string(),
        other => other.to_string(),
    }
}
