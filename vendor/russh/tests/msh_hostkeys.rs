//! msh patch (PATCHES.md §7): the server announces its host keys after authentication
//! (`hostkeys-00@openssh.com`) and proves them on request (`hostkeys-prove-00@openssh.com`);
//! upstream's client half verifies the proofs. A key the server does not hold, or more keys
//! than it holds, gets a refusal.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use russh::keys::{PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::server::{self, Auth, Server as _, Session, VerifiedPublicKey};
use russh::{Error, client};
use ssh_key::{Algorithm, EcdsaCurve, PrivateKey};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::timeout;

const T: Duration = Duration::from_secs(30);

fn host_keys() -> Vec<PrivateKey> {
    vec![
        PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).unwrap(),
        PrivateKey::random(
            &mut rand::rng(),
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP256,
            },
        )
        .unwrap(),
    ]
}

async fn start_server(keys: Vec<PrivateKey>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = Arc::new(server::Config {
        keys,
        ..Default::default()
    });
    tokio::spawn(async move {
        let mut server = Server;
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
    addr
}

#[derive(Clone)]
struct Server;

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

    async fn auth_succeeded(&mut self, session: &mut Session) -> Result<(), Self::Error> {
        session.announce_host_keys()
    }
}

struct Client {
    announced: mpsc::UnboundedSender<Vec<PublicKey>>,
}

impl client::Handler for Client {
    type Error = russh::Error;
    async fn check_server_key(&mut self, _: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        Ok(true)
    }

    async fn openssh_ext_host_keys_announced(
        &mut self,
        keys: Vec<PublicKey>,
        _: &mut client::Session,
    ) -> Result<(), Self::Error> {
        let _ = self.announced.send(keys);
        Ok(())
    }
}

async fn connect(addr: SocketAddr) -> (client::Handle<Client>, Vec<PublicKey>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut session = client::connect(
        Arc::new(client::Config::default()),
        addr,
        Client { announced: tx },
    )
    .await
    .unwrap();
    let key = Arc::new(PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).unwrap());
    let auth = session
        .authenticate_publickey("user", PrivateKeyWithHashAlg::new(key, None))
        .await
        .unwrap();
    assert!(auth.success());
    let announced = timeout(T, rx.recv())
        .await
        .expect("hostkeys-00 in time")
        .expect("an announcement");
    (session, announced)
}

#[tokio::test]
async fn host_keys_are_announced_and_proved() {
    let keys = host_keys();
    let publics: Vec<PublicKey> = keys.iter().map(|k| k.public_key().clone()).collect();
    let (session, announced) = connect(start_server(keys).await).await;
    assert_eq!(announced, publics);
    timeout(T, session.hostkeys_prove(announced.clone()))
        .await
        .unwrap()
        .expect("valid proofs of both keys");
    // One key, in another order than held, proves too.
    timeout(T, session.hostkeys_prove(vec![publics[1].clone()]))
        .await
        .unwrap()
        .expect("valid proof of the ecdsa key");
}

#[tokio::test]
async fn a_key_the_server_does_not_hold_is_refused() {
    let keys = host_keys();
    let held = keys[0].public_key().clone();
    let (session, _) = connect(start_server(keys).await).await;
    let foreign = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
        .unwrap()
        .public_key()
        .clone();
    let r = timeout(T, session.hostkeys_prove(vec![held.clone(), foreign]))
        .await
        .unwrap();
    assert!(matches!(r, Err(Error::RequestDenied)), "{r:?}");
    // More keys than the server holds: refused without signing them all.
    let r = timeout(T, session.hostkeys_prove(vec![held.clone(); 3]))
        .await
        .unwrap();
    assert!(matches!(r, Err(Error::RequestDenied)), "{r:?}");
    // The connection still works.
    timeout(T, session.hostkeys_prove(vec![held]))
        .await
        .unwrap()
        .expect("valid proof after refusals");
}
