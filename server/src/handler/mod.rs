//! The per-connection russh handler, [`Conn`]: one `impl Handler` that hands each callback
//! to the module for its concern (sshd's `auth2.c` and `session.c`/`channels.c`):
//! [`auth`] for user authentication, [`channel`] for session channels and their requests.
#![forbid(unsafe_code)]

mod auth;
mod channel;
mod forward;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

use msh_common::authorized_keys::Permissions;
use russh::keys::Certificate;
use russh::server::{
    Auth, CertificateRefusal, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey,
};
use russh::{Channel, ChannelId, Pty, Sig};

use crate::auth::Account;
use crate::config::Settings;
use crate::daemon::Shared;
use crate::session::{self, PtyReq, Sessions};

use self::channel::ChanState;

/// One connection's handler.
pub(crate) struct Conn {
    shared: Arc<Shared>,
    /// The connection's settings: those of the generation it was accepted in.
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
    /// Slots, processes and descriptors of the channels (owned by the connection, shared
    /// with the session tasks).
    sessions: Arc<Sessions>,
    /// The signature algorithm of the last offer (russh passes it only at the offer stage):
    /// logs an RSA certificate login as the `rsa-sha2-512-cert-v01` it was, not as the
    /// certificate's SHA-1 type name.
    offered_algorithm: Option<russh::keys::Algorithm>,
    /// Authentication requests seen by the handler, and how many failed as sshd counts them
    /// (see `tally`).
    auth_requests: u32,
    auth_failures: u32,
    handle: Arc<OnceLock<russh::server::Handle>>,
    /// Listeners, tunnels and the agent socket of this connection (closed with it).
    forwards: crate::forward::Forwards,
}

impl Conn {
    /// The handler of connection `conn_id` between `peer` and `local` (the address it was
    /// accepted on). `authed` becomes true once a key is accepted; `handle` is set once the
    /// session runs, for disconnecting from inside a callback.
    pub(crate) fn new(
        shared: Arc<Shared>,
        settings: Arc<Settings>,
        conn_id: u64,
        (peer, local): (SocketAddr, SocketAddr),
        authed: Arc<AtomicBool>,
        sessions: Arc<Sessions>,
        handle: Arc<OnceLock<russh::server::Handle>>,
    ) -> Self {
        Conn {
            shared,
            settings,
            conn_id,
            peer,
            local,
            user: None,
            account: None,
            perms: None,
            authed,
            channels: HashMap::new(),
            sessions,
            offered_algorithm: None,
            auth_requests: 0,
            auth_failures: 0,
            handle,
            forwards: crate::forward::Forwards::default(),
        }
    }

    /// The authenticated account's name for logs and audit events; empty before authentication.
    fn account_name(&self) -> String {
        self.account
            .as_ref()
            .map(|a| a.name.clone())
            .unwrap_or_default()
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // russh drops the handler when the connection ends, however it ends.
        self.sessions.end();
        session::trim_heap_soon();
    }
}

// Each callback is the inherent method of the same name in `auth` or `channel` (inherent
// methods take precedence over the trait's in `Conn::name` paths).
impl russh::server::Handler for Conn {
    type Error = anyhow::Error;

    async fn auth_succeeded(&mut self, session: &mut Session) -> Result<(), Self::Error> {
        Conn::auth_succeeded(self, session).await
    }

    async fn auth_none(&mut self, user: &str) -> Result<Auth, Self::Error> {
        Conn::auth_none(self, user).await
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Conn::auth_publickey_offered(self, user, offer).await
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Conn::auth_publickey(self, user, key).await
    }

    async fn auth_certificate_refused(
        &mut self,
        user: &str,
        certificate: &Certificate,
        refusal: CertificateRefusal,
    ) -> Result<(), Self::Error> {
        Conn::auth_certificate_refused(self, user, certificate, refusal).await
    }

    async fn auth_openssh_certificate(
        &mut self,
        user: &str,
        certificate: &Certificate,
    ) -> Result<Auth, Self::Error> {
        Conn::auth_openssh_certificate(self, user, certificate).await
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        Conn::channel_open_session(self, channel, reply, _session).await
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        Conn::channel_close(self, channel, _session).await
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
        // Pixel sizes are not used (sshd passes them to the terminal; nothing reads them).
        let req = PtyReq {
            term: term.to_string(),
            cols: col_width,
            rows: row_height,
            modes: modes.to_vec(),
        };
        Conn::pty_request(self, channel, req, session).await
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        Conn::env_request(self, channel, name, value, session).await
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        Conn::shell_request(self, channel, session).await
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        Conn::exec_request(self, channel, data, session).await
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        Conn::subsystem_request(self, channel, name, session).await
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
        Conn::window_change_request(self, channel, col_width, row_height, session).await
    }

    async fn signal(
        &mut self,
        channel: ChannelId,
        signal: Sig,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        Conn::signal(self, channel, signal, session).await
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        originator_address: &str,
        originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        Conn::channel_open_direct_tcpip(
            self,
            channel,
            host_to_connect,
            port_to_connect,
            (originator_address, originator_port),
            reply,
        )
        .await
    }

    async fn channel_open_direct_streamlocal(
        &mut self,
        channel: Channel<Msg>,
        socket_path: &str,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        Conn::channel_open_direct_streamlocal(self, channel, socket_path, reply).await
    }

    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Conn::tcpip_forward(self, address, port, session).await
    }

    async fn cancel_tcpip_forward(
        &mut self,
        address: &str,
        port: u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Conn::cancel_tcpip_forward(self, address, port).await
    }

    async fn streamlocal_forward(
        &mut self,
        socket_path: &str,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Conn::streamlocal_forward(self, socket_path).await
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        Conn::x11_request(self, channel, session).await
    }

    async fn agent_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Conn::agent_request(self, channel, session).await
    }

    async fn channel_eof(
        &mut self,
        _channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        Conn::channel_eof(self, _channel, _session).await
    }
}
