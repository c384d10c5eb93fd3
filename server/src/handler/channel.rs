//! Session channels (sshd's session.c): opening one within `max_sessions`, the requests
//! that prepare it (`pty-req`, `env`), the one that starts it (`shell`, `exec`, `subsystem`:
//! planned by [`session::plan`], started by [`session::start`]), and those that act on a
//! running session (`window-change`, `signal`).
#![forbid(unsafe_code)]

use russh::server::{ChannelOpenHandle, Msg, Session};
use russh::{Channel, ChannelId, Sig};
use tokio::sync::mpsc;

use super::Conn;
use crate::error::Error;
use crate::session::{self, AuditCtx, ClientFacts, Input, Kind, PtyReq, Request, Running};

/// Accepted `env` variables one session channel may hold (sshd's session_env_req stops at
/// 128 too); a variable set again replaces its value and does not count twice.
pub(crate) const MAX_ENV_VARS: usize = 128;
/// Longest `env` name and value kept (the kernel refuses a single environment string over
/// 128 KiB anyway); with [`MAX_ENV_VARS`] this bounds what a client can make the daemon hold
/// per channel (2 MiB), however many requests it sends.
pub(crate) const MAX_ENV_NAME: usize = 256;
pub(crate) const MAX_ENV_VALUE: usize = 16 * 1024;

/// Why an accepted `env` request is refused anyway: too many variables, or too long.
fn env_refusal(env: &[(String, String)], name: &str, value: &str) -> Option<String> {
    if name.len() > MAX_ENV_NAME {
        return Some(format!(
            "name of {} bytes (at most {MAX_ENV_NAME})",
            name.len()
        ));
    }
    if value.len() > MAX_ENV_VALUE {
        return Some(format!(
            "value of {} bytes (at most {MAX_ENV_VALUE})",
            value.len()
        ));
    }
    if env.len() >= MAX_ENV_VARS && !env.iter().any(|(k, _)| k == name) {
        return Some(format!(
            "this session already has {MAX_ENV_VARS} variables (as sshd, no more)"
        ));
    }
    None
}

/// Per-channel state before and after the process starts.
pub(super) struct ChanState {
    input: Option<mpsc::Receiver<Input>>,
    pty: Option<PtyReq>,
    env: Vec<(String, String)>,
    running: Option<Running>,
}

// The callbacks (see `super`), then starting a session.
impl Conn {
    pub(super) async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), anyhow::Error> {
        if self.account.is_none() {
            return Ok(());
        }
        let id = channel.id();
        // Channels the server closed first never reach channel_close (russh ignores the
        // client's answering close): forget their requests here.
        let sessions = self.sessions.clone();
        self.channels.retain(|c, _| sessions.is_open(*c));
        if !self.sessions.open(id) {
            tracing::warn!(
                "connection {}: refusing a session channel: max_sessions ({}) reached",
                self.conn_id,
                self.settings.max_sessions
            );
            reply
                .reject(russh::ChannelOpenFailure::ResourceShortage)
                .await;
            return Ok(());
        }
        let input = session::spawn_input_pump(&self.sessions, channel);
        self.channels.insert(
            id,
            ChanState {
                input: Some(input),
                pty: None,
                env: Vec::new(),
                running: None,
            },
        );
        reply.accept().await;
        Ok(())
    }

    pub(super) async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), anyhow::Error> {
        self.channels.remove(&channel);
        self.sessions.close(channel);
        Ok(())
    }

    pub(super) async fn pty_request(
        &mut self,
        channel: ChannelId,
        req: PtyReq,
        session: &mut Session,
    ) -> Result<(), anyhow::Error> {
        let allowed = self.perms.as_ref().map(|p| p.pty).unwrap_or(false);
        match self.channels.get_mut(&channel) {
            Some(st) if allowed && st.running.is_none() => {
                st.pty = Some(req);
                session.channel_success(channel)?;
            }
            _ => {
                if !allowed {
                    tracing::info!(
                        "connection {}: pty-req refused: the key's authorized_keys options forbid a PTY (no-pty/restrict)",
                        self.conn_id
                    );
                }
                session.channel_failure(channel)?;
            }
        }
        Ok(())
    }

    pub(super) async fn env_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        value: &str,
        session: &mut Session,
    ) -> Result<(), anyhow::Error> {
        let accepted = self
            .settings
            .accept_env
            .iter()
            .any(|p| msh_common::pattern::glob_match(name, p));
        let refusal = match self.channels.get(&channel) {
            Some(st) if accepted && st.running.is_none() => env_refusal(&st.env, name, value),
            _ => None,
        };
        if let Some(why) = &refusal {
            tracing::info!(
                "connection {}: env {} refused: {why}",
                self.conn_id,
                crate::logsafe::clean(name, crate::logsafe::NAME_MAX)
            );
            session.channel_failure(channel)?;
            return Ok(());
        }
        match self.channels.get_mut(&channel) {
            Some(st) if accepted && st.running.is_none() => {
                st.env.retain(|(k, _)| k != name);
                st.env.push((name.to_string(), value.to_string()));
                session.channel_success(channel)?;
            }
            _ => {
                tracing::debug!(
                    "connection {}: env {} not accepted (accept_env)",
                    self.conn_id,
                    crate::logsafe::clean(name, crate::logsafe::NAME_MAX)
                );
                session.channel_failure(channel)?;
            }
        }
        Ok(())
    }

    pub(super) async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), anyhow::Error> {
        self.start(channel, Request::Shell, session).await;
        Ok(())
    }

    pub(super) async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), anyhow::Error> {
        let command = String::from_utf8_lossy(data).into_owned();
        self.start(channel, Request::Exec(command), session).await;
        Ok(())
    }

    pub(super) async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), anyhow::Error> {
        let Some(command) = self.settings.subsystems.get(name).cloned() else {
            // As sshd, a forced command does not make an unknown subsystem run. The name is
            // the client's: cut to 100 characters (as sshd) so it cannot flood the log.
            let name: String = name.chars().take(100).collect();
            let configured: Vec<&str> = self
                .settings
                .subsystems
                .keys()
                .map(|k| k.as_str())
                .collect();
            tracing::warn!(
                "connection {}: subsystem {name:?} refused: not configured (`subsystems` in {} has {})",
                self.conn_id,
                self.settings.source.display(),
                if configured.is_empty() {
                    "none".to_string()
                } else {
                    configured.join(", ")
                }
            );
            session.channel_failure(channel)?;
            return Ok(());
        };
        let name = name.to_string();
        self.start(channel, Request::Subsystem { name, command }, session)
            .await;
        Ok(())
    }

    pub(super) async fn window_change_request(
        &mut self,
        channel: ChannelId,
        col_width: u32,
        row_height: u32,
        session: &mut Session,
    ) -> Result<(), anyhow::Error> {
        let size = (
            u16::try_from(row_height).unwrap_or(u16::MAX),
            u16::try_from(col_width).unwrap_or(u16::MAX),
        );
        match self.channels.get_mut(&channel) {
            Some(ChanState {
                running: Some(Running {
                    resize: Some(tx), ..
                }),
                ..
            }) => {
                let _ = tx.send(size);
                session.channel_success(channel)?;
            }
            Some(ChanState {
                pty: Some(p),
                running: None,
                ..
            }) => {
                p.cols = col_width;
                p.rows = row_height;
                session.channel_success(channel)?;
            }
            _ => session.channel_failure(channel)?,
        }
        Ok(())
    }

    pub(super) async fn signal(
        &mut self,
        channel: ChannelId,
        signal: Sig,
        session: &mut Session,
    ) -> Result<(), anyhow::Error> {
        let Some(sig) = session::from_ssh_sig(&signal) else {
            tracing::info!(
                "connection {}: signal {signal:?} refused: not a signal mshd passes on",
                self.conn_id
            );
            session.channel_failure(channel)?;
            return Ok(());
        };
        match self.sessions.signal(channel, sig) {
            Ok(pid) => {
                tracing::info!(
                    "connection {}: signal {sig} to process group {pid}",
                    self.conn_id
                );
                session.channel_success(channel)?;
            }
            Err(e) => {
                tracing::info!("connection {}: signal {sig} refused: {e}", self.conn_id);
                session.channel_failure(channel)?;
            }
        }
        Ok(())
    }

    pub(super) async fn channel_eof(
        &mut self,
        _channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), anyhow::Error> {
        Ok(())
    }

    fn audit_ctx(&self) -> AuditCtx {
        AuditCtx {
            audit: self.shared.audit.clone(),
            conn_id: self.conn_id,
            peer: self.peer.to_string(),
            user: self.account_name(),
            subsystem: None,
        }
    }

    /// Starts the shell, a command or a subsystem on `channel`, answering the request.
    async fn start(&mut self, channel: ChannelId, request: Request, session: &mut Session) {
        let groups = self.session_groups().await;
        let result = groups.and_then(|g| self.try_start(channel, request, session.handle(), g));
        match result {
            Ok(()) => {
                let _ = session.channel_success(channel);
            }
            Err(e) => {
                tracing::warn!("connection {}: {e}", self.conn_id);
                let _ = session.channel_failure(channel);
            }
        }
    }

    /// Root mode: the user's supplementary groups now, as sshd's initgroups at each session
    /// start, so a group added or removed since the login applies to the next session.
    pub(super) async fn session_groups(&self) -> Result<Vec<nix::unistd::Gid>, Error> {
        let Some(account) = self.account.clone() else {
            return Err(Error::NotAuthenticated);
        };
        if !self.settings.root_mode {
            return Ok(Vec::new());
        }
        // getgrouplist reads /etc/group or NSS: off the event loop.
        tokio::task::spawn_blocking(move || {
            let name =
                std::ffi::CString::new(account.name.as_str()).map_err(|_| Error::Groups {
                    user: account.name.clone(),
                    error: "the name contains a NUL byte".into(),
                })?;
            nix::unistd::getgrouplist(&name, account.gid).map_err(|e| Error::Groups {
                user: account.name.clone(),
                error: e.to_string(),
            })
        })
        .await
        .unwrap_or_else(|e| Err(Error::Internal(e.to_string())))
    }

    /// Plans and starts what `request` asks for on `channel`; the error is what the log says
    /// (the client gets `channel_failure`).
    fn try_start(
        &mut self,
        channel: ChannelId,
        request: Request,
        handle: russh::server::Handle,
        groups: Vec<nix::unistd::Gid>,
    ) -> Result<(), Error> {
        let account = self.account.clone().ok_or(Error::NotAuthenticated)?;
        let ctx = self.audit_ctx();
        let root_mode = self.settings.root_mode;
        let Some(st) = self.channels.get(&channel) else {
            return Err(Error::UnknownChannel(channel));
        };
        if st.running.is_some() {
            return Err(Error::AlreadyRunning);
        }
        let client = ClientFacts {
            peer: self.peer,
            local: self.local,
            pty: st.pty.as_ref(),
            env: &st.env,
            agent_socket: self.forwards.agent_path(),
        };
        let mut launch = session::plan(
            request,
            &account,
            self.perms.as_ref(),
            &client,
            root_mode.then_some(groups),
        );
        launch.login = crate::login_records::plan(
            root_mode,
            launch.pty.is_some(),
            launch.kind == Kind::Shell,
            self.settings.record_logins,
            self.settings.print_last_log,
            &account,
            self.peer.ip(),
        );
        if root_mode && self.settings.use_pam {
            launch.pam = Some(session::PamSession {
                service: self.settings.pam_service.clone(),
                rhost: msh_common::authorized_keys::policy::canonical_peer(self.peer.ip())
                    .to_string(),
            });
        }
        if let (Kind::Subsystem, Some(name), Some(c)) =
            (launch.kind, &launch.subsystem, &launch.run)
        {
            // Told before the start, so the client gets a failure instead of a session that
            // ends at once with the shell's "not found".
            if let Some(problem) = session::program_problem(c) {
                return Err(Error::Subsystem {
                    name: name.clone(),
                    user: account.name.clone(),
                    problem,
                    config: self.settings.source.clone(),
                });
            }
        }
        let Some(st) = self.channels.get_mut(&channel) else {
            return Err(Error::UnknownChannel(channel));
        };
        let input = st
            .input
            .take()
            .ok_or_else(|| Error::Internal("channel input already taken".into()))?;
        tracing::info!("connection {}: {}", self.conn_id, launch.describe());
        let running = session::start(launch, channel, handle, input, ctx, self.sessions.clone())?;
        st.running = Some(running);
        Ok(())
    }
}
