//! msh patch (PATCHES.md, "flow control"): a channel's receive window is replenished only as
//! its reader consumes, and a reader that stops stalls its own channel only: the peer's
//! WINDOW_ADJUST, other channels and global requests keep going, on the server and on the
//! client side. And two russh peers that both have a lot to send at once never block each
//! other: neither session loop stops reading while its writes wait for the socket.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::server::{self, Auth, Msg, Server as _, Session, VerifiedPublicKey};
use russh::{Channel, ChannelMsg, client};
use ssh_key::PrivateKey;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::{sleep, timeout};

/// Both sides grant this window: small, so a stalled reader is reached fast.
const WINDOW: u32 = 256 * 1024;
const PACKET: u32 = 32 * 1024;
const T: Duration = Duration::from_secs(30);

type ServerChannel = Channel<Msg>;

/// A server that hands every session channel it accepts to the test, unread.
async fn start_server() -> (SocketAddr, mpsc::UnboundedReceiver<ServerChannel>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    start_server_on(listener, WINDOW).await
}

/// [`start_server`] on a given listener, granting `window`.
async fn start_server_on(
    listener: TcpListener,
    window: u32,
) -> (SocketAddr, mpsc::UnboundedReceiver<ServerChannel>) {
    let config = Arc::new(server::Config {
        keys: vec![PrivateKey::random(&mut rand::rng(), ssh_key::Algorithm::Ed25519).unwrap()],
        window_size: window,
        maximum_packet_size: PACKET,
        ..Default::default()
    });
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut server = Server { channels: tx };
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                return;
            };
            let handler = server.new_client(Some(peer));
            let config = Arc::clone(&config);
            tokio::spawn(async move {
                if let Ok(session) = server::run_stream(config, stream, handler).await {
                    let _ = session.await;
                }
            });
        }
    });
    (addr, rx)
}

async fn connect(addr: SocketAddr) -> client::Handle<Client> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    connect_stream(stream, WINDOW).await
}

/// An authenticated client session over `stream`, granting `window`.
async fn connect_stream(stream: tokio::net::TcpStream, window: u32) -> client::Handle<Client> {
    let config = Arc::new(client::Config {
        window_size: window,
        maximum_packet_size: PACKET,
        ..Default::default()
    });
    let mut session = client::connect_stream(config, stream, Client)
        .await
        .unwrap();
    let key = Arc::new(PrivateKey::random(&mut rand::rng(), ssh_key::Algorithm::Ed25519).unwrap());
    let auth = session
        .authenticate_publickey("user", PrivateKeyWithHashAlg::new(key, None))
        .await
        .unwrap();
    assert!(auth.success());
    session
}

#[derive(Clone)]
struct Server {
    channels: mpsc::UnboundedSender<ServerChannel>,
}

impl server::Server for Server {
    type Handler = Self;
    fn new_client(&mut self, _: Option<SocketAddr>) -> Self {
        self.clone()
    }
}

impl server::Handler for Server {
    type Error = russh::Error;

    async fn auth_publickey(
        &mut self,
        _: &str,
        _: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(Auth::Accept)
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: server::ChannelOpenHandle,
        _: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        let _ = self.channels.send(channel);
        Ok(())
    }
}

struct Client;

impl client::Handler for Client {
    type Error = russh::Error;
    async fn check_server_key(&mut self, _: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Sends `data` on a channel in packet-size pieces, counting in `sent` what went out.
async fn send_counted<S>(ch: &russh::ChannelWriteHalf<S>, data: Vec<u8>, sent: Arc<AtomicUsize>)
where
    S: From<(russh::ChannelId, ChannelMsg)> + Send + Sync + 'static,
{
    for chunk in data.chunks(PACKET as usize) {
        ch.data_bytes(chunk.to_vec()).await.unwrap();
        sent.fetch_add(chunk.len(), Ordering::SeqCst);
    }
}

/// Reads `len` data bytes from a channel.
async fn read_data(ch: &mut russh::ChannelReadHalf, len: usize) -> Vec<u8> {
    let mut got = Vec::with_capacity(len);
    while got.len() < len {
        match timeout(T, ch.wait()).await.expect("data in time") {
            Some(ChannelMsg::Data { data }) => got.extend_from_slice(&data),
            Some(_) => {}
            None => panic!("channel ended after {} of {len} bytes", got.len()),
        }
    }
    got
}

/// Sends `len` bytes on a fresh channel and expects them echoed: another channel's stall
/// must not get in the way.
async fn echo_round_trip(
    session: &client::Handle<Client>,
    server_channels: &mut mpsc::UnboundedReceiver<ServerChannel>,
    len: usize,
) {
    let ch = timeout(T, session.channel_open_session())
        .await
        .unwrap()
        .unwrap();
    let sb = timeout(T, server_channels.recv()).await.unwrap().unwrap();
    let (mut sb_read, sb_write) = sb.split();
    tokio::spawn(async move {
        while let Some(msg) = sb_read.wait().await {
            if let ChannelMsg::Data { data } = msg
                && sb_write.data_bytes(data).await.is_err()
            {
                return;
            }
        }
    });
    let (mut read, write) = ch.split();
    let data = pattern(len, 7);
    let sending = tokio::spawn({
        let data = data.clone();
        async move { send_counted(&write, data, Arc::default()).await }
    });
    let got = timeout(T, read_data(&mut read, len))
        .await
        .expect("echo in time");
    assert!(got == data, "echoed bytes differ");
    sending.await.unwrap();
}

/// How far `sent` gets within a moment of quiet.
async fn settled(sent: &AtomicUsize) -> usize {
    let mut last = usize::MAX;
    loop {
        sleep(Duration::from_millis(300)).await;
        let now = sent.load(Ordering::SeqCst);
        if now == last {
            return now;
        }
        last = now;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_reader_that_stops_stalls_only_its_channel() {
    let (addr, mut server_channels) = start_server().await;
    let session = connect(addr).await;
    let a = session.channel_open_session().await.unwrap();
    let sa = timeout(T, server_channels.recv()).await.unwrap().unwrap();
    let (mut sa_read, sa_write) = sa.split();
    let (mut a_read, a_write) = a.split();

    // The client uploads 4 windows on A; the server does not read A.
    let upload = pattern(4 * WINDOW as usize, 1);
    let up_sent = Arc::new(AtomicUsize::new(0));
    let uploading = tokio::spawn({
        let (data, sent) = (upload.clone(), Arc::clone(&up_sent));
        async move { send_counted(&a_write, data, sent).await }
    });
    let stalled_at = settled(&up_sent).await;
    assert!(
        stalled_at <= WINDOW as usize,
        "the client sent {stalled_at} bytes to a reader that consumed nothing, window {WINDOW}"
    );

    // Meanwhile the server sends 4 windows back on A: it needs the client's WINDOW_ADJUSTs,
    // which the stalled A must not keep it from reading.
    let download = pattern(4 * WINDOW as usize, 2);
    let downloading = tokio::spawn({
        let data = download.clone();
        async move { send_counted(&sa_write, data, Arc::default()).await }
    });
    let got = timeout(T, read_data(&mut a_read, download.len()))
        .await
        .expect("download in time");
    assert!(got == download, "downloaded bytes differ");
    timeout(T, downloading).await.unwrap().unwrap();

    // Another channel and a global request go through.
    echo_round_trip(&session, &mut server_channels, 1 << 20).await;
    timeout(T, session.send_ping()).await.unwrap().unwrap();

    // Less than half a window consumed: no WINDOW_ADJUST yet.
    let first = read_data(&mut sa_read, (WINDOW / 4) as usize).await;
    assert_eq!(
        settled(&up_sent).await,
        stalled_at,
        "window replenished before half was consumed"
    );
    // Reading on replenishes it, and everything arrives intact.
    let rest = read_data(&mut sa_read, upload.len() - first.len()).await;
    timeout(T, uploading).await.unwrap().unwrap();
    assert!([first, rest].concat() == upload, "uploaded bytes differ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_reader_that_stops_stalls_only_its_channel() {
    let (addr, mut server_channels) = start_server().await;
    let session = connect(addr).await;
    let a = session.channel_open_session().await.unwrap();
    let sa = timeout(T, server_channels.recv()).await.unwrap().unwrap();
    let (mut sa_read, sa_write) = sa.split();
    let (mut a_read, a_write) = a.split();

    // The server sends 4 windows on A; the client does not read A.
    let download = pattern(4 * WINDOW as usize, 3);
    let down_sent = Arc::new(AtomicUsize::new(0));
    let downloading = tokio::spawn({
        let (data, sent) = (download.clone(), Arc::clone(&down_sent));
        async move { send_counted(&sa_write, data, sent).await }
    });
    let stalled_at = settled(&down_sent).await;
    assert!(
        stalled_at <= WINDOW as usize,
        "the server sent {stalled_at} bytes to a reader that consumed nothing, window {WINDOW}"
    );

    // The client uploads 4 windows on A, which the server reads: the server's WINDOW_ADJUSTs
    // must get through the client's stalled A.
    let upload = pattern(4 * WINDOW as usize, 4);
    let uploading = tokio::spawn({
        let data = upload.clone();
        async move { send_counted(&a_write, data, Arc::default()).await }
    });
    let got = timeout(T, read_data(&mut sa_read, upload.len()))
        .await
        .expect("upload in time");
    assert!(got == upload, "uploaded bytes differ");
    timeout(T, uploading).await.unwrap().unwrap();

    echo_round_trip(&session, &mut server_channels, 1 << 20).await;
    timeout(T, session.send_ping()).await.unwrap().unwrap();

    let first = read_data(&mut a_read, (WINDOW / 4) as usize).await;
    assert_eq!(
        settled(&down_sent).await,
        stalled_at,
        "window replenished before half was consumed"
    );
    let rest = read_data(&mut a_read, download.len() - first.len()).await;
    timeout(T, downloading).await.unwrap().unwrap();
    assert!(
        [first, rest].concat() == download,
        "downloaded bytes differ"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_reader_counts_as_consumed() {
    // A server that keeps only the write half (e.g. it reads through Handler::data) must
    // still get the whole upload: data nobody can read any more replenishes the window.
    let (addr, mut server_channels) = start_server().await;
    let session = connect(addr).await;
    let a = session.channel_open_session().await.unwrap();
    let sa = timeout(T, server_channels.recv()).await.unwrap().unwrap();
    let (sa_read, _sa_write) = sa.split();
    drop(sa_read);
    let (_a_read, a_write) = a.split();
    let sent = Arc::new(AtomicUsize::new(0));
    timeout(
        T,
        send_counted(&a_write, pattern(8 * WINDOW as usize, 5), Arc::clone(&sent)),
    )
    .await
    .expect("upload to a dropped reader in time");
    assert_eq!(sent.load(Ordering::SeqCst), 8 * WINDOW as usize);
}

/// Loopback socket buffers this small (the kernel doubles them) hold far less than one batch
/// of packets either session loop encrypts at once.
const SOCKET_BUFFER: u32 = 32 * 1024;

fn small_buffer_socket() -> tokio::net::TcpSocket {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(SOCKET_BUFFER).unwrap();
    socket.set_recv_buffer_size(SOCKET_BUFFER).unwrap();
    socket
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_sides_sending_at_once_never_block_each_other() {
    // msh's windows (client 16 MiB, mshd 8 MiB) are far larger than a socket buffer, so both
    // session loops can have megabytes to write at the same moment. Before the patch each loop
    // wrote its whole batch with `write_all` and read nothing meanwhile: both blocked writing
    // into a full socket that the other was not reading, for good (msh -> mshd hung this way
    // with 256 MiB through `cat`). Both readers here read everything as fast as it comes.
    let listener = small_buffer_socket();
    listener.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = listener.listen(16).unwrap();
    let (addr, mut server_channels) = start_server_on(listener, 8 << 20).await;
    let stream = small_buffer_socket().connect(addr).await.unwrap();
    let session = connect_stream(stream, 16 << 20).await;
    let ch = session.channel_open_session().await.unwrap();
    let sch = timeout(T, server_channels.recv()).await.unwrap().unwrap();
    let (mut read, write) = ch.split();
    let (mut sread, swrite) = sch.split();

    const LEN: usize = 48 << 20;
    let upload = pattern(LEN, 8);
    let download = pattern(LEN, 9);
    let up_sent = Arc::new(AtomicUsize::new(0));
    let down_sent = Arc::new(AtomicUsize::new(0));
    let uploading = tokio::spawn({
        let (data, sent) = (upload.clone(), Arc::clone(&up_sent));
        async move { send_counted(&write, data, sent).await }
    });
    let downloading = tokio::spawn({
        let (data, sent) = (download.clone(), Arc::clone(&down_sent));
        async move { send_counted(&swrite, data, sent).await }
    });
    // No timeout per message here: the one below says how far each side got.
    async fn read_all(ch: &mut russh::ChannelReadHalf) -> Vec<u8> {
        let mut got = Vec::with_capacity(LEN);
        while got.len() < LEN {
            match ch.wait().await {
                Some(ChannelMsg::Data { data }) => got.extend_from_slice(&data),
                Some(_) => {}
                None => panic!("channel ended after {} of {LEN} bytes", got.len()),
            }
        }
        got
    }
    let server_reading = tokio::spawn(async move { read_all(&mut sread).await });
    let client_reading = tokio::spawn(async move { read_all(&mut read).await });
    let both = async {
        let (up, down) = (server_reading.await.unwrap(), client_reading.await.unwrap());
        uploading.await.unwrap();
        downloading.await.unwrap();
        (up, down)
    };
    let Ok((up, down)) = timeout(Duration::from_secs(120), both).await else {
        panic!(
            "both directions stalled: client sent {} and server sent {} of {LEN} bytes",
            up_sent.load(Ordering::SeqCst),
            down_sent.load(Ordering::SeqCst)
        );
    };
    assert!(up == upload, "uploaded bytes differ");
    assert!(down == download, "downloaded bytes differ");
}
