//! `-L` and `-D`: msh listens (TCP or Unix socket) and, for every connection accepted,
//! opens a `direct-tcpip` (or `direct-streamlocal@openssh.com`) channel to the destination,
//! after a SOCKS handshake for `-D`. Listeners bind as OpenSSH's client does (channels.c
//! `channel_fwd_bind_addr` with `is_client`): no bind address means loopback only, or every
//! interface with GatewayPorts=yes; `*` or an empty address means every interface;
//! `localhost` means loopback (IPv4 and IPv6); any other address is used as given.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Result};
use futures::stream::{FuturesUnordered, StreamExt};
use russh::client::Handle;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, UnixListener};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::pump::{pump, Tracker};
use super::remote::Inbound;
use super::socks;
use super::spec::{Connect, Forward, Kind, Listen};
use super::ForwardSettings;
use crate::msh::connect::Client;

/// A local socket of either family.
pub(super) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// At most this many channel opens waiting for the server's answer; further accepted
/// connections wait in the kernel's backlog meanwhile.
const MAX_OPENING: usize = 64;

/// Where an accepted connection goes.
#[derive(Debug, Clone)]
enum Target {
    Tcp(String, u16),
    Unix(PathBuf),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Tcp(h, p) if h.contains(':') => write!(f, "[{h}]:{p}"),
            Target::Tcp(h, p) => write!(f, "{h}:{p}"),
            Target::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

/// One accepted connection, ready for its channel.
struct Request {
    conn: Box<dyn Io>,
    fwd: Arc<Forward>,
    target: Target,
    originator: (String, u16),
    /// For `-D`: the SOCKS version to answer in, and bytes the client sent after its
    /// request (already data for the destination).
    socks: Option<(socks::Version, Vec<u8>)>,
}

/// The forwards set up: listener tasks feeding channel-open requests.
pub(in crate::msh) struct Running {
    rx: mpsc::Receiver<Request>,
    tasks: Vec<JoinHandle<()>>,
    pub(super) tracker: Arc<Tracker>,
}

impl Drop for Running {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Binds every `-L`/`-D` listener and requests every `-R` forward, in order. A forward
/// that fails is a warning, or with ExitOnForwardFailure an error naming it.
pub(in crate::msh) async fn setup(
    handle: &Handle<Client>,
    fs: &ForwardSettings,
    inbound: &Inbound,
    quiet: bool,
) -> Result<Running> {
    let (tx, rx) = mpsc::channel(MAX_OPENING);
    let mut tasks = Vec::new();
    for fwd in &fs.forwards {
        let fwd = Arc::new(fwd.clone());
        let result = match fwd.kind {
            Kind::Remote => inbound.request(handle, fwd.clone(), quiet).await,
            Kind::Local | Kind::Dynamic => match bind(&fwd.listen, fs.gateway_ports).await {
                Ok(listeners) => {
                    for l in listeners {
                        tracing::info!("{fwd}: listening on {}", l.name());
                        tasks.push(tokio::spawn(accept_loop(l, fwd.clone(), tx.clone())));
                    }
                    Ok(())
                }
                Err(e) => Err(format!("{fwd}: {e}")),
            },
        };
        if let Err(msg) = result {
            if fs.exit_on_failure {
                bail!("{msg} (ExitOnForwardFailure)");
            }
            if !quiet {
                errln!("msh: warning: {msg}");
            }
        }
    }
    Ok(Running {
        rx,
        tasks,
        tracker: inbound.tracker.clone(),
    })
}

impl Running {
    /// Opens a channel for each accepted connection, for as long as msh runs.
    pub(in crate::msh) async fn serve(&mut self, handle: &Handle<Client>) -> Infallible {
        let mut opening = FuturesUnordered::new();
        let mut listening = true;
        loop {
            tokio::select! {
                req = self.rx.recv(), if listening && opening.len() < MAX_OPENING => match req {
                    Some(r) => opening.push(open(handle, r, &self.tracker)),
                    None => listening = false,
                },
                Some(()) = opening.next(), if !opening.is_empty() => {}
                else => std::future::pending::<()>().await,
            }
        }
    }
}

/// Opens the channel for one connection and starts its pump, or tells the client (SOCKS)
/// and the user why not.
async fn open(handle: &Handle<Client>, req: Request, tracker: &Arc<Tracker>) {
    let (orig_host, orig_port) = req.originator.clone();
    let opened = match &req.target {
        Target::Tcp(host, port) => {
            handle
                .channel_open_direct_tcpip(
                    host.clone(),
                    u32::from(*port),
                    orig_host,
                    u32::from(orig_port),
                )
                .await
        }
        Target::Unix(path) => {
            handle
                .channel_open_direct_streamlocal(path.to_string_lossy())
                .await
        }
    };
    let Request {
        mut conn,
        fwd,
        target,
        socks,
        ..
    } = req;
    let channel = match opened {
        Ok(c) => c,
        Err(e) => {
            if let Some((version, _)) = socks {
                let _ = conn.write_all(&socks::reply(version, false)).await;
            }
            // As ssh's "channel N: open failed": one line per refused connection.
            errln!("msh: {fwd}: the server could not open {target}: {e}");
            return;
        }
    };
    let open = tracker.open();
    tokio::spawn(async move {
        let _open = open;
        let mut early = Vec::new();
        if let Some((version, rest)) = socks {
            if conn.write_all(&socks::reply(version, true)).await.is_err() {
                let _ = channel.close().await;
                return;
            }
            early = rest;
        }
        tracing::info!("{fwd}: connection to {target} open");
        let moved = pump(channel, conn, early, Vec::new()).await;
        tracing::info!(
            "{fwd}: connection to {target} closed ({} bytes out, {} in)",
            moved.up,
            moved.down
        );
    });
}

/// A bound listener.
enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl Listener {
    fn name(&self) -> String {
        match self {
            Listener::Tcp(l) => l
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| "?".to_string()),
            Listener::Unix(_, p) => p.display().to_string(),
        }
    }

    async fn accept(&self) -> std::io::Result<(Box<dyn Io>, (String, u16))> {
        match self {
            Listener::Tcp(l) => {
                let (s, peer) = l.accept().await?;
                // As ssh (channels.c): tunnels often carry interactive protocols.
                let _ = s.set_nodelay(true);
                Ok((Box::new(s), (peer.ip().to_string(), peer.port())))
            }
            Listener::Unix(l, _) => {
                let (s, _) = l.accept().await?;
                // What ssh sends as originator for a Unix socket client.
                Ok((Box::new(s), ("UNKNOWN".to_string(), 0)))
            }
        }
    }
}

async fn accept_loop(listener: Listener, fwd: Arc<Forward>, tx: mpsc::Sender<Request>) {
    loop {
        let (conn, originator) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // EMFILE and the like: wait instead of spinning.
                tracing::warn!("{fwd}: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                continue;
            }
        };
        tracing::debug!("{fwd}: connection from {}:{}", originator.0, originator.1);
        match &fwd.connect {
            Connect::Tcp { host, port } => {
                let target = Target::Tcp(host.clone(), *port);
                let req = Request {
                    conn,
                    fwd: fwd.clone(),
                    target,
                    originator,
                    socks: None,
                };
                if tx.send(req).await.is_err() {
                    return;
                }
            }
            Connect::Unix(path) => {
                let req = Request {
                    conn,
                    fwd: fwd.clone(),
                    target: Target::Unix(path.clone()),
                    originator,
                    socks: None,
                };
                if tx.send(req).await.is_err() {
                    return;
                }
            }
            Connect::Socks => {
                // The handshake runs on its own so that a slow client does not hold up
                // the listener.
                let fwd = fwd.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut conn = conn;
                    match socks::handshake(&mut conn).await {
                        Ok((version, host, port, rest)) => {
                            let req = Request {
                                conn,
                                fwd,
                                target: Target::Tcp(host, port),
                                originator,
                                socks: Some((version, rest)),
                            };
                            let _ = tx.send(req).await;
                        }
                        Err(reason) => tracing::info!("{fwd}: SOCKS client refused: {reason}"),
                    }
                });
            }
        }
    }
}

/// The addresses a TCP listen spec binds, by OpenSSH's client rules.
async fn tcp_addrs(bind: Option<&str>, port: u16, gateway_ports: bool) -> Result<Vec<SocketAddr>> {
    let loopback = vec![
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
        SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
    ];
    let wildcard = vec![
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
        SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
    ];
    Ok(match bind {
        None if gateway_ports => wildcard,
        None | Some("localhost") => loopback,
        Some("" | "*") => wildcard,
        Some(name) => match tokio::net::lookup_host((name, port)).await {
            Ok(a) => a.collect(),
            Err(e) => bail!(
                "cannot resolve bind address {name}: {}",
                crate::msh::connect::io_desc(&e)
            ),
        },
    })
}

fn bind_tcp(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        let s = TcpSocket::new_v6()?;
        // [::] must not also take the IPv4 port that 0.0.0.0 binds next to it.
        nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::Ipv6V6Only, &true)
            .map_err(std::io::Error::from)?;
        s
    };
    // As ssh: a port in TIME_WAIT from an earlier run may be reused at once.
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    sock.listen(128)
}

/// Binds `listen`; succeeds when at least one address could be bound (as ssh, which also
/// goes on when, say, ::1 is unavailable).
async fn bind(listen: &Listen, gateway_ports: bool) -> Result<Vec<Listener>> {
    match listen {
        Listen::Tcp { bind, port } => {
            let addrs = tcp_addrs(bind.as_deref(), *port, gateway_ports).await?;
            let mut out = Vec::new();
            let mut errors = Vec::new();
            for a in addrs {
                match bind_tcp(a) {
                    Ok(l) => out.push(Listener::Tcp(l)),
                    Err(e) => {
                        tracing::debug!("bind {a}: {e}");
                        errors.push(format!(
                            "cannot listen on {a}: {}",
                            crate::msh::connect::io_desc(&e)
                        ));
                    }
                }
            }
            if out.is_empty() {
                bail!("{}", errors.join("; "));
            }
            Ok(out)
        }
        Listen::Unix(path) => Ok(vec![Listener::Unix(bind_unix(path)?, path.clone())]),
    }
}

/// A listening Unix socket, created 0600 (ssh's StreamLocalBindMask 0177): the umask is
/// set around bind(2) because the socket file gets its mode from it, and no other thread
/// of msh creates files meanwhile. An existing file is an error (StreamLocalBindUnlink no).
fn bind_unix(path: &Path) -> Result<UnixListener> {
    use nix::sys::stat::{umask, Mode};
    let old = umask(Mode::from_bits_truncate(0o177));
    let res = UnixListener::bind(path);
    umask(old);
    match res {
        Ok(l) => Ok(l),
        Err(e) => bail!(
            "cannot listen on {}: {}",
            path.display(),
            crate::msh::connect::io_desc(&e)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(v: Vec<SocketAddr>) -> Vec<String> {
        v.iter().map(|a| a.to_string()).collect()
    }

    #[tokio::test]
    async fn bind_addresses_follow_ssh_client_rules() {
        let loopback = ["127.0.0.1:80", "[::1]:80"];
        let wildcard = ["0.0.0.0:80", "[::]:80"];
        let a = |bind: Option<&'static str>, gw: bool| async move {
            strs(tcp_addrs(bind, 80, gw).await.unwrap())
        };
        assert_eq!(a(None, false).await, loopback);
        assert_eq!(a(None, true).await, wildcard);
        assert_eq!(a(Some("localhost"), true).await, loopback);
        assert_eq!(a(Some("*"), false).await, wildcard);
        assert_eq!(a(Some(""), false).await, wildcard);
        // An explicit address is honoured whatever GatewayPorts says (channels.c, is_client).
        assert_eq!(a(Some("127.0.0.2"), false).await, ["127.0.0.2:80"]);
        assert_eq!(a(Some("::1"), false).await, ["[::1]:80"]);
        assert_eq!(a(Some("0.0.0.0"), false).await, ["0.0.0.0:80"]);
    }
}
