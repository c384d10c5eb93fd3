//! The sockets of forwards, made with the user's credentials: in root mode on a thread that
//! has become the user ([`sys::as_identity`]), so a user cannot listen on port 22, reach a
//! Unix socket only root may open or have root create files in a directory of theirs
//! (CVE-2016-10010); unprivileged, mshd is the user already. Names are resolved first (as
//! mshd), then only addresses cross to the user's thread.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use crate::sys::{self, Identity};

/// How long a name lookup or a connect may take (sshd's connect is non-blocking with the
/// system's timeout; a client waiting on a dead target learns of it sooner here).
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `f` as `who` (root mode) or as mshd (`None`), off the event loop.
async fn run_as<T: Send + 'static>(
    who: Option<Identity>,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, String> {
    let joined = tokio::task::spawn_blocking(move || match who {
        Some(id) => sys::as_identity(&id, f).and_then(|r| r),
        None => f(),
    })
    .await;
    match joined {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(sys::spawn_error(&e)),
        Err(e) => Err(format!("internal error: {e}")),
    }
}

/// Connects to `host:port` as the user: every address the name resolves to, in order.
pub(crate) async fn connect_tcp(
    who: Option<Identity>,
    host: &str,
    port: u16,
) -> Result<TcpStream, String> {
    // A bracketed IPv6 literal as OpenSSH clients sometimes send it.
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let addrs: Vec<SocketAddr> =
        match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::lookup_host((host, port))).await {
            Err(_) => return Err("name lookup timed out".into()),
            Ok(Err(e)) => return Err(format!("cannot resolve the name: {e}")),
            Ok(Ok(a)) => a.collect(),
        };
    let mut last = String::from("the name has no address");
    for addr in addrs {
        let r = run_as(who.clone(), move || {
            let s = std::net::TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
            s.set_nonblocking(true)?;
            Ok(s)
        })
        .await;
        match r {
            Ok(s) => {
                let s = TcpStream::from_std(s).map_err(|e| e.to_string())?;
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
}

/// Connects to the Unix socket at `path` as the user.
pub(crate) async fn connect_unix(who: Option<Identity>, path: &str) -> Result<UnixStream, String> {
    let path = PathBuf::from(path);
    let fut = run_as(who, move || {
        let s = std::os::unix::net::UnixStream::connect(&path)?;
        s.set_nonblocking(true)?;
        Ok(s)
    });
    let s = tokio::time::timeout(CONNECT_TIMEOUT, fut)
        .await
        .map_err(|_| "connect timed out".to_string())??;
    UnixStream::from_std(s).map_err(|e| e.to_string())
}

/// Listens on `addr` as the user (a remote forward).
pub(crate) async fn listen_tcp(
    who: Option<Identity>,
    addr: SocketAddr,
) -> Result<TcpListener, String> {
    let l = run_as(who, move || {
        let l = std::net::TcpListener::bind(addr)?;
        l.set_nonblocking(true)?;
        Ok(l)
    })
    .await?;
    TcpListener::from_std(l).map_err(|e| e.to_string())
}

/// A forwarded agent's socket: `/tmp/msh-XXXXXXXXXX/agent.PID` (as sshd's
/// `/tmp/ssh-XXXXXXXXXX/agent.PID`), the directory 0700 and both made by the user.
pub(crate) struct AgentSocket {
    pub(crate) dir: PathBuf,
    pub(crate) path: PathBuf,
    who: Option<Identity>,
}

impl AgentSocket {
    /// Makes the directory and the listening socket.
    pub(crate) async fn create(
        who: Option<Identity>,
    ) -> Result<(AgentSocket, UnixListener), String> {
        let pid = std::process::id();
        let (dir, path, l) = run_as(who.clone(), move || {
            use std::os::unix::fs::DirBuilderExt;
            // mkdir fails on anything already there (a planted directory or symlink), so
            // the directory is ours; ten random characters make guessing it pointless.
            let mut tries = 0;
            let dir = loop {
                let name: String = (0..10)
                    .map(|_| {
                        let i = (rand::random::<u32>() % 36) as u8;
                        char::from(if i < 10 { b'0' + i } else { b'a' + i - 10 })
                    })
                    .collect();
                let dir = Path::new("/tmp").join(format!("msh-{name}"));
                match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                    Ok(()) => break dir,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && tries < 8 => {
                        tries += 1
                    }
                    Err(e) => return Err(e),
                }
            };
            let path = dir.join(format!("agent.{pid}"));
            match std::os::unix::net::UnixListener::bind(&path) {
                Ok(l) => {
                    l.set_nonblocking(true)?;
                    Ok((dir, path, l))
                }
                Err(e) => {
                    let _ = std::fs::remove_dir(&dir);
                    Err(e)
                }
            }
        })
        .await?;
        let listener = UnixListener::from_std(l).map_err(|e| e.to_string())?;
        Ok((AgentSocket { dir, path, who }, listener))
    }
}

impl Drop for AgentSocket {
    fn drop(&mut self) {
        // Removed as the user too: root following a path the user controls could be sent
        // to unlink elsewhere. Off the event loop when there is one.
        let (dir, path, who) = (self.dir.clone(), self.path.clone(), self.who.take());
        let remove = move || {
            let rm = || {
                let _ = std::fs::remove_file(&path);
                let _ = std::fs::remove_dir(&dir);
            };
            match who {
                Some(id) => {
                    if let Err(e) = sys::as_identity(&id, rm) {
                        tracing::warn!("agent socket {}: not removed: {e}", dir.display());
                    }
                }
                None => rm(),
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) => drop(h.spawn_blocking(remove)),
            Err(_) => remove(),
        }
    }
}
