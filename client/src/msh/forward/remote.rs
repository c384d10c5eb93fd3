//! The channels the server opens towards msh. `forwarded-tcpip` is served only for a
//! `-R` forward msh requested (matched by listen address and port, as OpenSSH's
//! `channel_connect_by_listen_address`), `auth-agent@openssh.com` only with ForwardAgent;
//! every other kind (session, x11, direct-tcpip, streamlocal) is refused. russh's default
//! handler would accept them all.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use russh::client::{ChannelOpenHandle, Handle, Msg};
use russh::{Channel, ChannelOpenFailure};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UnixStream};

use super::pump::{pump, Tracker};
use super::socks;
use super::spec::{Connect, Forward, Listen};
use super::{printable, ForwardSettings};
use crate::msh::connect::{io_desc, Client};

/// A remote forward the server accepted: the listen address as sent and the port bound.
struct Binding {
    host: String,
    port: u32,
    fwd: Arc<Forward>,
}

/// What the connection handler needs to serve server-opened channels.
#[derive(Default)]
pub(in crate::msh) struct Inbound {
    /// The agent socket, when ForwardAgent is on and one is known.
    agent: Option<PathBuf>,
    bindings: Mutex<Vec<Binding>>,
    /// Every forwarded connection open, both directions.
    pub(super) tracker: Arc<Tracker>,
}

/// The listen address sent in `tcpip-forward`, as ssh's `channel_rfwd_bind_host`: none
/// given means "localhost" (the server binds loopback), `*` or empty means all interfaces
/// (if the server's GatewayPorts allows).
fn rfwd_bind_host(bind: Option<&str>) -> String {
    match bind {
        None => "localhost".to_string(),
        Some("" | "*") => String::new(),
        Some(h) => h.to_string(),
    }
}

impl Inbound {
    pub(in crate::msh) fn new(fs: &ForwardSettings) -> Arc<Self> {
        Arc::new(Inbound {
            agent: fs.agent_socket(),
            bindings: Mutex::new(Vec::new()),
            tracker: Arc::default(),
        })
    }

    /// Asks the server to listen for `fwd` (a `-R`), and remembers it for the channels that
    /// will come. Err: a message naming the forward.
    pub(super) async fn request(
        &self,
        handle: &Handle<Client>,
        fwd: Arc<Forward>,
        quiet: bool,
    ) -> Result<(), String> {
        let Listen::Tcp { bind, port } = &fwd.listen else {
            return Err(format!(
                "{fwd}: the server cannot listen on a Unix socket for msh"
            ));
        };
        let host = rfwd_bind_host(bind.as_deref());
        let port = u32::from(*port);
        if port != 0 {
            self.add(host.clone(), port, fwd.clone());
        }
        match handle.tcpip_forward(host.clone(), port).await {
            Ok(bound) if port == 0 => {
                if bound == 0 {
                    return Err(format!(
                        "{fwd}: the server accepted the forward but did not say which port it \
                         bound"
                    ));
                }
                self.add(host, bound, fwd.clone());
                // As ssh, on stderr so that scripts can read it.
                if !quiet {
                    match &fwd.connect {
                        Connect::Socks => errln!("Allocated port {bound} for remote forward"),
                        Connect::Tcp { host, port } => {
                            errln!("Allocated port {bound} for remote forward to {host}:{port}")
                        }
                        Connect::Unix(p) => errln!(
                            "Allocated port {bound} for remote forward to {}",
                            p.display()
                        ),
                    }
                }
                Ok(())
            }
            Ok(_) => {
                tracing::info!("{fwd}: the server listens on port {port}");
                Ok(())
            }
            Err(e) => {
                self.remove(&host, port);
                let why = match e {
                    russh::Error::RequestDenied => "the server refused it".to_string(),
                    other => other.to_string(),
                };
                Err(format!(
                    "{fwd}: remote port forwarding failed for listen port {port}: {why}"
                ))
            }
        }
    }

    fn add(&self, host: String, port: u32, fwd: Arc<Forward>) {
        if let Ok(mut b) = self.bindings.lock() {
            b.push(Binding { host, port, fwd });
        }
    }

    fn remove(&self, host: &str, port: u32) {
        if let Ok(mut b) = self.bindings.lock() {
            b.retain(|x| !(x.host == host && x.port == port));
        }
    }

    /// The forward a `forwarded-tcpip` channel belongs to: same port and address as
    /// requested, or the only forward on that port (servers differ in the address they
    /// report: OpenSSH sends the one requested).
    fn find(&self, addr: &str, port: u32) -> Option<Arc<Forward>> {
        let b = self.bindings.lock().ok()?;
        let on_port: Vec<&Binding> = b.iter().filter(|x| x.port == port).collect();
        match on_port.iter().find(|x| x.host == addr) {
            Some(x) => Some(x.fwd.clone()),
            None if on_port.len() == 1 => on_port.first().map(|x| x.fwd.clone()),
            None => None,
        }
    }

    /// A connection arrived at a remote forward: connect to its destination, then accept
    /// the channel (or refuse it, as ssh does, when the destination cannot be reached).
    pub(in crate::msh) fn forwarded_tcpip(
        &self,
        channel: Channel<Msg>,
        addr: &str,
        port: u32,
        originator: (&str, u32),
        reply: ChannelOpenHandle,
    ) {
        let Some(fwd) = self.find(addr, port) else {
            errln!(
                "msh: warning: the server opened a connection for {}:{port}, which msh did not \
                 ask to forward; refused",
                printable(addr)
            );
            drop(reply);
            return;
        };
        tracing::debug!(
            "{fwd}: connection from {}:{}",
            printable(originator.0),
            originator.1
        );
        let open = self.tracker.open();
        tokio::spawn(async move {
            let _open = open;
            match fwd.connect.clone() {
                Connect::Tcp { host, port } => {
                    match TcpStream::connect((host.as_str(), port)).await {
                        Ok(s) => {
                            let _ = s.set_nodelay(true);
                            reply.accept().await;
                            let moved = pump(channel, s, Vec::new(), Vec::new()).await;
                            tracing::info!(
                                "{fwd}: connection to {host}:{port} closed ({} bytes in, {} out)",
                                moved.up,
                                moved.down
                            );
                        }
                        Err(e) => {
                            errln!(
                                "msh: {fwd}: connect to {host} port {port} failed: {}",
                                io_desc(&e)
                            );
                            reply.reject(ChannelOpenFailure::ConnectFailed).await;
                        }
                    }
                }
                Connect::Unix(path) => match UnixStream::connect(&path).await {
                    Ok(s) => {
                        reply.accept().await;
                        pump(channel, s, Vec::new(), Vec::new()).await;
                    }
                    Err(e) => {
                        errln!(
                            "msh: {fwd}: connect to {} failed: {}",
                            path.display(),
                            io_desc(&e)
                        );
                        reply.reject(ChannelOpenFailure::ConnectFailed).await;
                    }
                },
                Connect::Socks => {
                    reply.accept().await;
                    serve_socks(channel, &fwd).await;
                }
            }
        });
    }

    /// The server opened an agent connection: connect it to the local agent if msh
    /// forwards one, refuse it otherwise.
    pub(in crate::msh) fn agent(&self, channel: Channel<Msg>, reply: ChannelOpenHandle) {
        let Some(path) = self.agent.clone() else {
            // As ssh: "Warning: ssh server tried agent forwarding. Probably a malicious
            // server."
            errln!(
                "msh: warning: the server tried to use the agent, which msh does not forward \
                 (no -A / ForwardAgent); refused"
            );
            drop(reply);
            return;
        };
        let open = self.tracker.open();
        tokio::spawn(async move {
            let _open = open;
            match UnixStream::connect(&path).await {
                Ok(s) => {
                    reply.accept().await;
                    pump(channel, s, Vec::new(), Vec::new()).await;
                }
                Err(e) => {
                    errln!(
                        "msh: warning: cannot reach the agent at {} for the server: {}",
                        path.display(),
                        io_desc(&e)
                    );
                    reply.reject(ChannelOpenFailure::ConnectFailed).await;
                }
            }
        });
    }
}

/// `-R [bind:]port`: the server's clients speak SOCKS through the channel and msh
/// connects to the destination they name, as ssh does since 7.6.
async fn serve_socks(channel: Channel<Msg>, fwd: &Forward) {
    let mut stream = channel.into_stream();
    let (version, host, port, rest) = match socks::handshake(&mut stream).await {
        Ok(r) => r,
        Err(reason) => {
            tracing::info!("{fwd}: SOCKS client refused: {}", printable(&reason));
            return;
        }
    };
    let mut target = match TcpStream::connect((host.as_str(), port)).await {
        Ok(s) => s,
        Err(e) => {
            tracing::info!(
                "{fwd}: connect to {host} port {port} failed: {}",
                io_desc(&e)
            );
            let _ = stream.write_all(&socks::reply(version, false)).await;
            let _ = stream.shutdown().await;
            return;
        }
    };
    let _ = target.set_nodelay(true);
    if stream
        .write_all(&socks::reply(version, true))
        .await
        .is_err()
        || target.write_all(&rest).await.is_err()
    {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut stream, &mut target).await;
}
