//! Port, Unix-socket and agent forwarding (sshd's channels.c / serverloop.c side): what a
//! client may forward is decided in [`policy::decide`]; the sockets are made as the user
//! ([`net`]); bytes move through flow-controlled channels ([`pump`]). Everything a
//! connection forwards is in its [`Forwards`]: when the connection ends, its listeners
//! close, its tunnels end and the agent socket is removed.
#![forbid(unsafe_code)]

pub(crate) mod net;
pub(crate) mod policy;
pub(crate) mod pump;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use russh::server::{ChannelOpenHandle, Handle, Msg};
use russh::{Channel, ChannelOpenFailure};
use tokio::sync::watch;
use tokio::task::AbortHandle;

pub(crate) use self::policy::{decide, Ask};
use crate::audit::{Audit, AuditEvent, Outcome};
use crate::logsafe;
use crate::sys::Identity;

/// Remote-forward listeners one connection may hold (sshd has no limit of its own; each is
/// a descriptor and a task in mshd, so a client cannot make mshd hold thousands).
pub(crate) const MAX_LISTENERS: usize = 64;

/// A connection's forwards.
pub(crate) struct Forwards {
    /// Dropped with the connection: every tunnel's pump sees it and ends.
    stop: watch::Sender<()>,
    /// Remote-forward listeners by (address as the client asked, port as bound).
    listeners: HashMap<(String, u32), AbortHandle>,
    /// The agent socket and its accept loop.
    agent: Option<(net::AgentSocket, AbortHandle)>,
}

impl Default for Forwards {
    fn default() -> Self {
        Forwards {
            stop: watch::channel(()).0,
            listeners: HashMap::new(),
            agent: None,
        }
    }
}

impl Drop for Forwards {
    fn drop(&mut self) {
        for (_, l) in self.listeners.drain() {
            l.abort();
        }
        if let Some((_, task)) = &self.agent {
            task.abort();
        }
        // The agent socket's own Drop removes it and its directory.
    }
}

/// Who and where, for logs and audit events of the tasks a forward runs.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub(crate) audit: Audit,
    pub(crate) conn_id: u64,
    pub(crate) peer: String,
    pub(crate) user: String,
}

impl Ctx {
    fn open(
        &self,
        direction: &'static str,
        kind: &'static str,
        from: &str,
        to: &str,
        r: Result<(), &str>,
    ) {
        self.audit.emit(
            self.conn_id,
            &self.peer,
            &AuditEvent::ForwardOpen {
                user: &self.user,
                direction,
                kind,
                from,
                to,
                outcome: if r.is_ok() {
                    Outcome::Accepted
                } else {
                    Outcome::Rejected
                },
                reason: r.err().unwrap_or(""),
            },
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn close(
        &self,
        direction: &'static str,
        kind: &'static str,
        from: &str,
        to: &str,
        moved: &pump::Moved,
        since: Instant,
    ) {
        tracing::info!(
            "connection {}: {kind} {} -> {} ended ({}): {} bytes to the target, {} to the client",
            self.conn_id,
            logsafe::clean(from, logsafe::VALUE_MAX),
            logsafe::clean(to, logsafe::VALUE_MAX),
            moved.reason,
            moved.to_target,
            moved.to_client
        );
        self.audit.emit(
            self.conn_id,
            &self.peer,
            &AuditEvent::ForwardClose {
                user: &self.user,
                direction,
                kind,
                from,
                to,
                bytes_to_target: moved.to_target,
                bytes_to_client: moved.to_client,
                duration_ms: u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX),
                reason: &moved.reason,
            },
        );
    }

    /// Audits a remote-forward listener that was opened.
    pub(crate) fn open_listen(&self, to: &str, r: Result<(), &str>) {
        self.open("remote", "tcpip-forward", "client", to, r);
    }

    /// Audits the agent socket that was made.
    pub(crate) fn open_agent(&self, path: &str) {
        self.open("agent", "auth-agent", "client", path, Ok(()));
    }

    /// Logs and audits a refusal decided before anything was opened.
    pub(crate) fn refused(&self, ask: &Ask<'_>, from: &str, to: &str, why: &str) {
        // `why` may quote the client's host name or path: escaped like `to`.
        tracing::warn!(
            "connection {}: {} {} refused: {}",
            self.conn_id,
            ask.kind(),
            logsafe::clean(to, logsafe::VALUE_MAX),
            logsafe::clean(why, 4 * logsafe::VALUE_MAX)
        );
        let direction = match ask {
            Ask::Connect { .. } | Ask::ConnectSocket { .. } => "local",
            Ask::Listen { .. } | Ask::ListenSocket { .. } => "remote",
            Ask::Agent => "agent",
            Ask::X11 => "x11",
        };
        self.open(direction, ask.kind(), from, to, Err(why));
    }
}

/// Where a local forward goes.
pub(crate) enum Target {
    Tcp { host: String, port: u16 },
    Unix { path: String },
}

impl Target {
    fn describe(&self) -> String {
        match self {
            Target::Tcp { host, port } if host.contains(':') => format!("[{host}]:{port}"),
            Target::Tcp { host, port } => format!("{host}:{port}"),
            Target::Unix { path } => path.clone(),
        }
    }
}

impl Forwards {
    /// A `direct-tcpip` / `direct-streamlocal` channel already allowed by [`decide`]:
    /// connects as `who` without holding up the connection, then accepts the channel (or
    /// refuses it with "connect failed", as sshd) and moves the bytes.
    pub(crate) fn open_direct(
        &self,
        ctx: Ctx,
        who: Option<Identity>,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        target: Target,
        from: String,
    ) {
        let stop = self.stop.subscribe();
        tokio::spawn(async move {
            let to = target.describe();
            let (kind, sock) = match &target {
                Target::Tcp { host, port } => (
                    "direct-tcpip",
                    net::connect_tcp(who, host, *port).await.map(Sock::Tcp),
                ),
                Target::Unix { path } => (
                    "direct-streamlocal",
                    net::connect_unix(who, path).await.map(Sock::Unix),
                ),
            };
            let sock = match sock {
                Ok(s) => s,
                Err(e) => {
                    let why = format!("connect failed: {e}");
                    tracing::warn!(
                        "connection {}: {kind} to {} refused: {why}",
                        ctx.conn_id,
                        logsafe::clean(&to, logsafe::VALUE_MAX)
                    );
                    ctx.open("local", kind, &from, &to, Err(&why));
                    reply.reject(ChannelOpenFailure::ConnectFailed).await;
                    return;
                }
            };
            reply.accept().await;
            tracing::info!(
                "connection {}: {kind} from {} to {} opened",
                ctx.conn_id,
                logsafe::clean(&from, logsafe::VALUE_MAX),
                logsafe::clean(&to, logsafe::VALUE_MAX)
            );
            ctx.open("local", kind, &from, &to, Ok(()));
            let since = Instant::now();
            let moved = match sock {
                Sock::Tcp(s) => pump::pump(channel, s, stop).await,
                Sock::Unix(s) => pump::pump(channel, s, stop).await,
            };
            ctx.close("local", kind, &from, &to, &moved, since);
        });
    }

    /// A `tcpip-forward` already allowed by [`decide`]: listens as `who` on the address the
    /// client asked for (loopback only unless `gateway_ports`), and opens a `forwarded-tcpip`
    /// channel to the client for each connection. Returns the port bound.
    pub(crate) async fn listen(
        &mut self,
        ctx: Ctx,
        who: Option<Identity>,
        handle: Handle,
        host: &str,
        port: u32,
        gateway_ports: bool,
    ) -> Result<u32, String> {
        let port16 = u16::try_from(port).map_err(|_| format!("port {port} is not a TCP port"))?;
        if self.listeners.len() >= MAX_LISTENERS {
            return Err(format!(
                "this connection already has {MAX_LISTENERS} remote forwards (the most mshd allows)"
            ));
        }
        let ip = bind_ip(host, gateway_ports).await?;
        let listener = net::listen_tcp(who, SocketAddr::new(ip, port16)).await?;
        let bound = listener.local_addr().map_err(|e| e.to_string())?.port();
        let key = (host.to_string(), u32::from(bound));
        if self.listeners.contains_key(&key) {
            return Err("already forwarded on this connection".into());
        }
        let listen_desc = SocketAddr::new(ip, bound).to_string();
        let stop = self.stop.subscribe();
        let requested = host.to_string();
        let task = tokio::spawn(async move {
            loop {
                let (sock, peer) = match listener.accept().await {
                    Ok(a) => a,
                    Err(e) => {
                        accept_failed(ctx.conn_id, &format!("remote forward {listen_desc}"), e)
                            .await;
                        continue;
                    }
                };
                let _ = sock.set_nodelay(true);
                let (ctx, handle, stop, requested, to) = (
                    ctx.clone(),
                    handle.clone(),
                    stop.clone(),
                    requested.clone(),
                    listen_desc.clone(),
                );
                tokio::spawn(async move {
                    let from = peer.to_string();
                    let ch = handle
                        .channel_open_forwarded_tcpip(
                            requested,
                            u32::from(bound),
                            peer.ip().to_string(),
                            u32::from(peer.port()),
                        )
                        .await;
                    let ch = match ch {
                        Ok(c) => c,
                        Err(e) => {
                            let why = format!("the client refused the channel: {e}");
                            ctx.open("remote", "forwarded-tcpip", &from, &to, Err(&why));
                            return;
                        }
                    };
                    ctx.open("remote", "forwarded-tcpip", &from, &to, Ok(()));
                    let since = Instant::now();
                    // Here the "target" is the client's side: count as seen from the client.
                    let moved = pump::pump(ch, sock, stop).await.seen_from_client();
                    ctx.close("remote", "forwarded-tcpip", &from, &to, &moved, since);
                });
            }
        });
        self.listeners.insert(key, task.abort_handle());
        Ok(u32::from(bound))
    }

    /// `cancel-tcpip-forward`: closes the listener (tunnels already open go on, as sshd).
    pub(crate) fn cancel(&mut self, host: &str, port: u32) -> bool {
        match self.listeners.remove(&(host.to_string(), port)) {
            Some(l) => {
                l.abort();
                true
            }
            None => false,
        }
    }

    /// The agent socket's path, once one was made on this connection.
    pub(crate) fn agent_path(&self) -> Option<&std::path::Path> {
        self.agent.as_ref().map(|(a, _)| a.path.as_path())
    }

    /// `auth-agent-req@openssh.com` already allowed by [`decide`]: makes the socket as
    /// `who` (once per connection, as sshd) and opens an `auth-agent@openssh.com` channel
    /// to the client for each connection to it.
    pub(crate) async fn agent(
        &mut self,
        ctx: Ctx,
        who: Option<Identity>,
        handle: Handle,
    ) -> Result<(), String> {
        if self.agent.is_some() {
            return Err("agent forwarding was already requested on this connection".into());
        }
        let (sock, listener) = net::AgentSocket::create(who).await?;
        let path = sock.path.display().to_string();
        let stop = self.stop.subscribe();
        let task = tokio::spawn(async move {
            loop {
                let (conn, _) = match listener.accept().await {
                    Ok(a) => a,
                    Err(e) => {
                        accept_failed(ctx.conn_id, &format!("agent socket {path}"), e).await;
                        continue;
                    }
                };
                let (ctx, handle, stop, path) =
                    (ctx.clone(), handle.clone(), stop.clone(), path.clone());
                tokio::spawn(async move {
                    let ch = match handle.channel_open_agent().await {
                        Ok(c) => c,
                        Err(e) => {
                            let why = format!("the client refused the channel: {e}");
                            ctx.open("agent", "auth-agent-connection", &path, "client", Err(&why));
                            return;
                        }
                    };
                    ctx.open("agent", "auth-agent-connection", &path, "client", Ok(()));
                    let since = Instant::now();
                    let moved = pump::pump(ch, conn, stop).await.seen_from_client();
                    ctx.close(
                        "agent",
                        "auth-agent-connection",
                        &path,
                        "client",
                        &moved,
                        since,
                    );
                });
            }
        });
        self.agent = Some((sock, task.abort_handle()));
        Ok(())
    }
}

enum Sock {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

/// The address a remote forward listens on. Without `gateway_ports`, loopback whatever was
/// asked (sshd's GatewayPorts no): `::1` when the client named an IPv6 address, else
/// 127.0.0.1. With it, as the client asked (sshd's clientspecified): `""` or `*` every
/// IPv4 address, `localhost` loopback, an address itself, a name its first address.
async fn bind_ip(host: &str, gateway_ports: bool) -> Result<IpAddr, String> {
    let literal = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .parse::<IpAddr>();
    if !gateway_ports {
        return Ok(match literal {
            Ok(IpAddr::V6(_)) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
        });
    }
    match (host, literal) {
        ("" | "*", _) => Ok(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        (h, _) if h.eq_ignore_ascii_case("localhost") => Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        (_, Ok(ip)) => Ok(ip),
        (h, Err(_)) => {
            let mut addrs =
                tokio::time::timeout(net::CONNECT_TIMEOUT, tokio::net::lookup_host((h, 0)))
                    .await
                    .map_err(|_| "name lookup timed out".to_string())?
                    .map_err(|e| format!("cannot resolve {h}: {e}"))?;
            addrs
                .next()
                .map(|a| a.ip())
                .ok_or_else(|| format!("{h} has no address"))
        }
    }
}

/// A failed accept on a forwarding listener (`what`): logged, then a short wait, since
/// EMFILE and friends would otherwise make the loop spin.
async fn accept_failed(conn_id: u64, what: &str, e: std::io::Error) {
    tracing::warn!("connection {conn_id}: {what}: accept: {e}");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn remote_forwards_bind_loopback_unless_gateway_ports() {
        let lo4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
        for h in ["", "*", "0.0.0.0", "localhost", "192.0.2.1"] {
            assert_eq!(bind_ip(h, false).await, Ok(lo4), "{h}");
        }
        assert_eq!(
            bind_ip("::", false).await,
            Ok(IpAddr::V6(Ipv6Addr::LOCALHOST))
        );
        assert_eq!(
            bind_ip("*", true).await,
            Ok(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
        );
        assert_eq!(bind_ip("localhost", true).await, Ok(lo4));
        assert_eq!(
            bind_ip("127.0.0.2", true).await,
            Ok("127.0.0.2".parse().unwrap())
        );
    }
}
