//! In-process tests of [`crate::listener::serve`] driven by russh's client: requests OpenSSH's
//! `ssh` cannot be made to send (a `signal` request, window-change before any terminal size
//! change), and a clean stop through the shutdown future. Real sockets on 127.0.0.1, real
//! files under target/ (not /tmp: strict_modes), real processes.
#![forbid(unsafe_code)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use msh_common::keys::{self, KeyKind};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{client, ChannelMsg, Sig};
use tokio::sync::oneshot;

use crate::audit::Audit;
use crate::config::{FileConfig, Overrides, Settings};
use crate::daemon::{Generation, Shared};
use crate::listener::serve;

const T: Duration = Duration::from_secs(20);

/// Trusts exactly the server's host key.
struct Client {
    host: PublicKey,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(&mut self, k: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        Ok(matches!(k, PublicKeyOrCertificate::PublicKey { key, .. }
            if key.key_data() == self.host.key_data()))
    }
}

struct Running {
    addr: SocketAddr,
    user_key: PrivateKey,
    host: PublicKey,
    user: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    dir: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `serve` on 127.0.0.1:0 in unprivileged mode for the current user, with a fresh host key
/// and one authorized user key.
async fn start(name: &str) -> Running {
    start_at(name, "127.0.0.1:0").await
}

async fn start_at(name: &str, bind: &str) -> Running {
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().unwrap().parent().unwrap();
    let dir = profile
        .join("unit-tmp")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for d in [dir.parent().unwrap(), dir.as_path()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let host = keys::generate(KeyKind::Ed25519, "host").unwrap();
    let user_key = keys::generate(KeyKind::Ed25519, "user").unwrap();
    let ak = dir.join("authorized_keys");
    std::fs::write(
        &ak,
        keys::public_key_line(user_key.public_key()).unwrap() + "\n",
    )
    .unwrap();
    std::fs::set_permissions(&ak, std::fs::Permissions::from_mode(0o600)).unwrap();
    let over = Overrides {
        authorized_keys: vec![ak.display().to_string()],
        ..Default::default()
    };
    let settings =
        Settings::resolve(FileConfig::default(), &dir.join("mshd.toml"), &over, false).unwrap();
    let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let generation = Generation::new(settings, vec![host.clone()], vec![]);
    let shared = Shared::new(generation, Audit::default());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(vec![listener], shared, async move {
        let _ = rx.await;
    }));
    let user = nix::unistd::User::from_uid(nix::unistd::geteuid())
        .unwrap()
        .unwrap()
        .name;
    Running {
        addr,
        user_key,
        host: host.public_key().clone(),
        user,
        stop: Some(tx),
        task,
        dir,
    }
}

async fn login(r: &Running) -> client::Handle<Client> {
    let config = Arc::new(client::Config::default());
    let mut h = client::connect(
        config,
        r.addr,
        Client {
            host: r.host.clone(),
        },
    )
    .await
    .unwrap();
    let ok = h
        .authenticate_publickey(
            r.user.clone(),
            PrivateKeyWithHashAlg::new(Arc::new(r.user_key.clone()), None),
        )
        .await
        .unwrap();
    assert!(ok.success(), "authentication refused");
    h
}

/// Collects stdout and the exit report until the channel closes.
async fn drain(ch: &mut russh::Channel<client::Msg>) -> (Vec<u8>, Option<u32>, Option<Sig>) {
    let (mut out, mut status, mut signal) = (Vec::new(), None, None);
    while let Some(msg) = tokio::time::timeout(T, ch.wait())
        .await
        .expect("channel stalled")
    {
        match msg {
            ChannelMsg::Data { data } => out.extend_from_slice(&data),
            ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
            ChannelMsg::ExitSignal { signal_name, .. } => signal = Some(signal_name),
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    (out, status, signal)
}

#[tokio::test]
async fn signal_request_reaches_the_command_and_comes_back_as_exit_signal() {
    let r = start("signal").await;
    let h = login(&r).await;
    let mut ch = h.channel_open_session().await.unwrap();
    ch.exec(true, "echo started; exec sleep 30").await.unwrap();
    // Wait for the command to run before signalling it.
    loop {
        match tokio::time::timeout(T, ch.wait()).await.unwrap() {
            Some(ChannelMsg::Data { data }) if data.starts_with(b"started") => break,
            Some(_) => {}
            None => panic!("channel closed before the command started"),
        }
    }
    ch.signal(Sig::TERM).await.unwrap();
    let (_, status, signal) = drain(&mut ch).await;
    assert!(matches!(signal, Some(Sig::TERM)), "exit-signal: {signal:?}");
    assert_eq!(status, None);
}

#[tokio::test]
async fn pty_window_change_is_applied_to_the_terminal() {
    let r = start("winch").await;
    let h = login(&r).await;
    let mut ch = h.channel_open_session().await.unwrap();
    ch.request_pty(true, "xterm", 80, 24, 0, 0, &[])
        .await
        .unwrap();
    ch.exec(true, "stty size; read x; stty size").await.unwrap();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("24 80") {
        match tokio::time::timeout(T, ch.wait()).await.unwrap() {
            Some(ChannelMsg::Data { data }) => seen.extend_from_slice(&data),
            Some(_) => {}
            None => panic!("closed early: {:?}", String::from_utf8_lossy(&seen)),
        }
    }
    ch.window_change(132, 50, 0, 0).await.unwrap();
    ch.data(&b"go\n"[..]).await.unwrap();
    let (out, status, _) = drain(&mut ch).await;
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("50 132"),
        "size after window-change: {text:?}"
    );
    assert_eq!(status, Some(0));
}

#[tokio::test]
async fn shutdown_future_stops_accepting_and_serve_returns() {
    // An address no other test binds: a port freed here and reused by a
    // concurrent test's listener on 127.0.0.1 must not look like ours.
    let mut r = start_at("shutdown", "127.0.0.77:0").await;
    let h = login(&r).await;
    drop(h);
    r.stop.take().unwrap().send(()).unwrap();
    let res = tokio::time::timeout(T, &mut r.task)
        .await
        .expect("serve did not return");
    res.unwrap().unwrap();
    // A process that other tests in this binary fork at this moment holds a copy of the
    // listening socket until it execs (CLOEXEC acts only then), so the port may accept for a
    // few milliseconds more; it must refuse soon after.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::net::TcpStream::connect(r.addr).await {
            Err(_) => break,
            // Linux may pick the destination port as the source port and connect the socket
            // to itself; that is not a listener.
            Ok(s) if s.local_addr().unwrap() == s.peer_addr().unwrap() => break,
            Ok(s) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "still accepting 5 s after shutdown (from {:?})",
                    s.local_addr()
                );
                drop(s);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}
