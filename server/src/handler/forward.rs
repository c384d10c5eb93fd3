//! Forwarding requests (sshd's serverloop.c `server_request_direct_tcpip`,
//! `server_input_global_request`, session.c `session_auth_agent_req`): each one is decided by
//! [`forward::decide`] first, refused with a log line and an audit event saying why, and
//! otherwise handed to the connection's [`forward::Forwards`].
#![forbid(unsafe_code)]

use russh::server::{ChannelOpenHandle, Msg, Session};
use russh::{Channel, ChannelId, ChannelOpenFailure};

use super::Conn;
use crate::forward::{self, Ask, Target};
use crate::sys::Identity;

impl Conn {
    fn forward_ctx(&self) -> forward::Ctx {
        forward::Ctx {
            audit: self.shared.audit.clone(),
            conn_id: self.conn_id,
            peer: self.peer.to_string(),
            user: self.account_name(),
        }
    }

    /// The one gate: [`forward::decide`] for this login, logged and audited when it refuses.
    fn forward_allowed(&self, ask: &Ask<'_>, from: &str, to: &str) -> bool {
        let user_is_root = self.account.as_ref().is_some_and(|a| a.uid.is_root());
        let perms = self.account.as_ref().and(self.perms.as_ref());
        match forward::decide(&self.settings, perms, user_is_root, ask) {
            Ok(()) => true,
            Err(why) => {
                self.forward_ctx().refused(ask, from, to, &why);
                false
            }
        }
    }

    /// Root mode: the user, with the supplementary groups as of now (as a session's); `None`
    /// when mshd runs as the user already.
    async fn forward_identity(&self) -> Result<Option<Identity>, String> {
        if !self.settings.root_mode {
            return Ok(None);
        }
        let account = self.account.clone().ok_or("not authenticated")?;
        let groups = self.session_groups().await.map_err(|e| e.to_string())?;
        Ok(Some(Identity {
            uid: account.uid,
            gid: account.gid,
            groups,
        }))
    }

    /// A direct channel's gate: the policy ([`Self::forward_allowed`]) and then the identity
    /// to connect as. The error is the reason to reject the open with: prohibited by policy,
    /// or connect-failed (logged, naming `what`) when the identity can't be had.
    async fn admit_direct(
        &self,
        ask: &Ask<'_>,
        from: &str,
        to: &str,
        what: &str,
    ) -> Result<Option<Identity>, ChannelOpenFailure> {
        if !self.forward_allowed(ask, from, to) {
            return Err(ChannelOpenFailure::AdministrativelyProhibited);
        }
        self.forward_identity().await.map_err(|e| {
            tracing::warn!("connection {}: {what} refused: {e}", self.conn_id);
            ChannelOpenFailure::ConnectFailed
        })
    }

    pub(super) async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host: &str,
        port: u32,
        originator: (&str, u32),
        reply: ChannelOpenHandle,
    ) -> Result<(), anyhow::Error> {
        let from = format!("{}:{}", originator.0, originator.1);
        let to = format!("{host}:{port}");
        let ask = Ask::Connect { host, port };
        let who = match self
            .admit_direct(&ask, &from, &to, &format!("direct-tcpip to {to}"))
            .await
        {
            Ok(w) => w,
            Err(failure) => {
                reply.reject(failure).await;
                return Ok(());
            }
        };
        let port = u16::try_from(port).unwrap_or(0);
        let target = Target::Tcp {
            host: host.to_string(),
            port,
        };
        self.forwards
            .open_direct(self.forward_ctx(), who, channel, reply, target, from);
        Ok(())
    }

    pub(super) async fn channel_open_direct_streamlocal(
        &mut self,
        channel: Channel<Msg>,
        path: &str,
        reply: ChannelOpenHandle,
    ) -> Result<(), anyhow::Error> {
        let from = "client".to_string();
        let ask = Ask::ConnectSocket { path };
        let who = match self
            .admit_direct(&ask, &from, path, "direct-streamlocal")
            .await
        {
            Ok(w) => w,
            Err(failure) => {
                reply.reject(failure).await;
                return Ok(());
            }
        };
        let target = Target::Unix {
            path: path.to_string(),
        };
        self.forwards
            .open_direct(self.forward_ctx(), who, channel, reply, target, from);
        Ok(())
    }

    pub(super) async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        session: &mut Session,
    ) -> Result<bool, anyhow::Error> {
        let asked = *port;
        let to = format!("{address}:{asked}");
        let ask = Ask::Listen {
            host: address,
            port: asked,
        };
        if !self.forward_allowed(&ask, "client", &to) {
            return Ok(false);
        }
        let ctx = self.forward_ctx();
        let result = match self.forward_identity().await {
            Ok(who) => {
                self.forwards
                    .listen(
                        ctx.clone(),
                        who,
                        session.handle(),
                        address,
                        asked,
                        self.settings.gateway_ports,
                    )
                    .await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(bound) => {
                tracing::info!(
                    "connection {}: remote forward listening on {} port {bound} (asked {})",
                    self.conn_id,
                    crate::logsafe::clean(address, crate::logsafe::VALUE_MAX),
                    asked
                );
                ctx.open_listen(&format!("{address}:{bound}"), Ok(()));
                *port = bound;
                Ok(true)
            }
            Err(e) => {
                ctx.refused(&ask, "client", &to, &format!("cannot listen: {e}"));
                Ok(false)
            }
        }
    }

    pub(super) async fn cancel_tcpip_forward(
        &mut self,
        address: &str,
        port: u32,
    ) -> Result<bool, anyhow::Error> {
        let done = self.forwards.cancel(address, port);
        if done {
            tracing::info!(
                "connection {}: remote forward on {} port {port} cancelled",
                self.conn_id,
                crate::logsafe::clean(address, crate::logsafe::VALUE_MAX)
            );
        }
        Ok(done)
    }

    pub(super) async fn streamlocal_forward(&mut self, path: &str) -> Result<bool, anyhow::Error> {
        // Refused whatever the settings, through the same gate so the reason is logged.
        let allowed = self.forward_allowed(&Ask::ListenSocket { path }, "client", path);
        debug_assert!(!allowed);
        Ok(false)
    }

    pub(super) async fn x11_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), anyhow::Error> {
        // Answered (a failure), so the client's replies stay in order.
        let allowed = self.forward_allowed(&Ask::X11, "client", "display");
        debug_assert!(!allowed);
        session.channel_failure(channel)?;
        Ok(())
    }

    pub(super) async fn agent_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<bool, anyhow::Error> {
        if !self.channels.contains_key(&channel) {
            return Ok(false);
        }
        if !self.forward_allowed(&Ask::Agent, "client", "agent socket") {
            return Ok(false);
        }
        let ctx = self.forward_ctx();
        let result = match self.forward_identity().await {
            Ok(who) => {
                self.forwards
                    .agent(ctx.clone(), who, session.handle())
                    .await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                let path = self
                    .forwards
                    .agent_path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                tracing::info!("connection {}: agent forwarding on {path}", self.conn_id);
                ctx.open_agent(&path);
                Ok(true)
            }
            Err(e) => {
                ctx.refused(&Ask::Agent, "client", "agent socket", &e);
                Ok(false)
            }
        }
    }
}
