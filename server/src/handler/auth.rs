//! User authentication (sshd's auth2.c, auth2-pubkey.c): each public-key or certificate
//! request is decided by [`crate::auth`] off the event loop, logged and audited once, and
//! counted towards `max_auth_tries` as sshd counts it.
#![forbid(unsafe_code)]

use msh_common::certs::validity::format_utc;
use msh_common::certs::CertInfo;
use russh::keys::{Certificate, PublicKey};
use russh::server::{Auth, CertificateRefusal, PublicKeyOffer, Session, VerifiedPublicKey};

use super::Conn;
use crate::audit::{AuditEvent, CertFields, Outcome};
use crate::auth::{self, Verdict};
use crate::connection::disconnect;

/// How long PAM's account modules may take (an unreachable directory server) before the
/// login is refused. The blocking thread is left to finish on its own.
const PAM_ACCOUNT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

fn key_type(key: &PublicKey) -> String {
    key.algorithm().as_str().to_string()
}

fn fingerprint(key: &PublicKey) -> String {
    msh_common::keys::fingerprint(key)
}

// The callbacks (see `super`), then the bookkeeping they share.
impl Conn {
    /// Names the client software in the log once it is in (sshd logs it at debug1); the
    /// version line is the client's own text, so it is escaped and capped.
    pub(super) async fn auth_succeeded(
        &mut self,
        session: &mut Session,
    ) -> Result<(), anyhow::Error> {
        let version = String::from_utf8_lossy(session.remote_sshid());
        tracing::info!(
            "connection {}: client software \"{}\"",
            self.conn_id,
            crate::logsafe::clean(&version, crate::logsafe::NAME_MAX * 2)
        );
        // As sshd does once a user is in: every host key, so clients with UpdateHostKeys
        // learn a key added for a rotation (they ask for proofs, which russh answers).
        if let Err(e) = session.announce_host_keys() {
            tracing::warn!(
                "connection {}: cannot announce host keys: {e}",
                self.conn_id
            );
        }
        Ok(())
    }

    pub(super) async fn auth_none(&mut self, user: &str) -> Result<Auth, anyhow::Error> {
        if self.over_limit() {
            return Ok(Auth::reject());
        }
        let first = self.auth_requests == 0;
        Ok(self.tally(user, Auth::reject(), first))
    }

    pub(super) async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, anyhow::Error> {
        if self.over_limit() {
            return Ok(Auth::reject());
        }
        if self.user.as_deref() != Some(user) {
            self.reset(user);
        }
        // Only screens out keys that cannot succeed (see auth::screen_offer); acceptance is
        // decided in auth_publickey / auth_openssh_certificate after the signature verified.
        let key: PublicKey = offer.public_key.clone();
        self.offered_algorithm = Some(offer.algorithm.clone());
        let settings = self.settings.clone();
        let own_uid = self.shared.own_uid;
        let peer_ip = self.peer.ip();
        let user_s = user.to_string();
        let k2 = key.clone();
        let refusal = tokio::task::spawn_blocking(move || {
            auth::screen_offer(&settings, &user_s, &k2, peer_ip, own_uid)
        })
        .await
        .unwrap_or_else(|e| Some(format!("internal error: {e}")));
        let auth = match refusal {
            None => Auth::Accept,
            Some(reason) => {
                self.log_attempt(
                    user,
                    &key_type(&key),
                    &fingerprint(&key),
                    None,
                    Outcome::Rejected,
                    &format!("{reason} (refused at the offer, no signature asked)"),
                );
                Auth::reject()
            }
        };
        Ok(self.tally(user, auth, false))
    }

    pub(super) async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, anyhow::Error> {
        if self.over_limit() {
            return Ok(Auth::reject());
        }
        if self.user.as_deref() != Some(user) {
            self.reset(user);
        }
        let key: PublicKey = key.public_key.clone();
        let settings = self.settings.clone();
        let own_uid = self.shared.own_uid;
        let peer_ip = self.peer.ip();
        let user_s = user.to_string();
        let k2 = key.clone();
        // getpwnam and file reads may block (NSS, NFS homes): keep them off the event loop.
        let verdict = tokio::task::spawn_blocking(move || {
            auth::decide(&settings, &user_s, &k2, peer_ip, own_uid)
        })
        .await
        .unwrap_or_else(|e| Verdict::Reject {
            reason: format!("internal error: {e}"),
            cert: None,
        });
        let verdict = self.pam_account(verdict).await;
        let auth = self.conclude(user, &key_type(&key), &fingerprint(&key), verdict);
        Ok(self.tally(user, auth, false))
    }

    /// russh refuses a user certificate outside its validity window or with a CA signature
    /// that does not verify before any other method sees it (vendor/russh/PATCHES.md): the
    /// refusal stands, and is logged and audited with what was refused, as mshd's own are.
    pub(super) async fn auth_certificate_refused(
        &mut self,
        user: &str,
        certificate: &Certificate,
        refusal: CertificateRefusal,
    ) -> Result<(), anyhow::Error> {
        if self.over_limit() {
            return Ok(());
        }
        let info = CertInfo::of(certificate);
        let reason = match refusal {
            CertificateRefusal::NotYetValid => format!(
                "certificate not yet valid (valid from {})",
                format_utc(certificate.valid_after())
            ),
            CertificateRefusal::Expired => format!(
                "certificate expired at {}",
                format_utc(certificate.valid_before())
            ),
            _ => format!("signature by CA {} does not verify", info.ca_fingerprint),
        };
        let inner = PublicKey::new(certificate.public_key().clone(), "");
        let kt = certificate.algorithm().to_certificate_type();
        self.log_attempt(
            user,
            &kt,
            &fingerprint(&inner),
            Some(&info),
            Outcome::Rejected,
            &reason,
        );
        // A refusal like any other for max_auth_tries (sshd counts it too).
        self.tally(user, Auth::reject(), false);
        Ok(())
    }

    pub(super) async fn auth_openssh_certificate(
        &mut self,
        user: &str,
        certificate: &Certificate,
    ) -> Result<Auth, anyhow::Error> {
        // russh calls this once the request's signature verified with the certificate's key.
        if self.over_limit() {
            return Ok(Auth::reject());
        }
        if self.user.as_deref() != Some(user) {
            self.reset(user);
        }
        let cert = certificate.clone();
        let settings = self.settings.clone();
        let own_uid = self.shared.own_uid;
        let peer_ip = self.peer.ip();
        let user_s = user.to_string();
        let c2 = cert.clone();
        let verdict = tokio::task::spawn_blocking(move || {
            auth::decide_cert(&settings, &user_s, &c2, peer_ip, own_uid)
        })
        .await
        .unwrap_or_else(|e| Verdict::Reject {
            reason: format!("internal error: {e}"),
            cert: None,
        });
        let verdict = self.pam_account(verdict).await;
        let inner = PublicKey::new(cert.public_key().clone(), "");
        let kt = match self.offered_algorithm.take() {
            Some(a @ russh::keys::Algorithm::Rsa { .. }) if cert.algorithm().is_rsa() => {
                a.to_certificate_type()
            }
            _ => cert.algorithm().to_certificate_type(),
        };
        let auth = self.conclude(user, &kt, &fingerprint(&inner), verdict);
        Ok(self.tally(user, auth, false))
    }

    /// `use_pam`: an accepted key still needs PAM's account management (sshd's do_pam_account
    /// in userauth_finish, before the success is sent); its refusal, or no answer within
    /// [`PAM_ACCOUNT_TIMEOUT`], turns the verdict into a rejection with PAM's reason.
    async fn pam_account(&self, verdict: Verdict) -> Verdict {
        let Verdict::Accept { account, .. } = &verdict else {
            return verdict;
        };
        if !(self.settings.root_mode && self.settings.use_pam) {
            return verdict;
        }
        let service = self.settings.pam_service.clone();
        let name = account.name.clone();
        let rhost = msh_common::authorized_keys::policy::canonical_peer(self.peer.ip()).to_string();
        let check =
            tokio::task::spawn_blocking(move || crate::pam::account(&service, &name, &rhost));
        let refusal = match tokio::time::timeout(PAM_ACCOUNT_TIMEOUT, check).await {
            Ok(Ok(Ok(()))) => return verdict,
            Ok(Ok(Err(reason))) => reason,
            Ok(Err(e)) => format!("PAM account management: internal error: {e}"),
            Err(_) => format!(
                "PAM account management for service {:?} did not answer within {} s",
                self.settings.pam_service,
                PAM_ACCOUNT_TIMEOUT.as_secs()
            ),
        };
        let cert = match verdict {
            Verdict::Accept { cert, .. } | Verdict::Reject { cert, .. } => cert,
        };
        Verdict::Reject {
            reason: refusal,
            cert,
        }
    }

    /// Logs one auth attempt (and writes its audit event). `key` is the plain key or the
    /// certificate's key; `cert` identifies a certificate.
    fn log_attempt(
        &self,
        user: &str,
        key_type: &str,
        fp: &str,
        cert: Option<&CertInfo>,
        outcome: Outcome,
        reason: &str,
    ) {
        let what = match cert {
            Some(c) => format!("{key_type} {fp}, {c}"),
            None => format!("{key_type} {fp}"),
        };
        // The audit event keeps the name as sent (JSON escapes it; the audit log caps it).
        let shown = crate::logsafe::user(user);
        if outcome == Outcome::Accepted {
            tracing::info!(
                "connection {} from {}: accepted publickey for {shown} ({what}): {reason}",
                self.conn_id,
                self.peer
            );
        } else {
            tracing::warn!(
                "connection {} from {}: rejected publickey for {shown} ({what}): {reason}",
                self.conn_id,
                self.peer
            );
        }
        let event = AuditEvent::Auth {
            user,
            method: "publickey",
            key_type,
            fingerprint: fp,
            outcome,
            reason,
            cert: cert.map(|c| CertFields {
                cert_key_id: &c.key_id,
                cert_serial: c.serial,
                cert_ca_fingerprint: &c.ca_fingerprint,
            }),
        };
        self.shared
            .audit
            .emit(self.conn_id, &self.peer.to_string(), &event);
    }

    /// Applies a verdict: remembers the account and permissions, logs, answers russh.
    fn conclude(&mut self, user: &str, key_type: &str, fp: &str, verdict: Verdict) -> Auth {
        match verdict {
            Verdict::Accept {
                account,
                perms,
                cert,
            } => {
                let source = perms.source.as_str();
                self.log_attempt(user, key_type, fp, cert.as_ref(), Outcome::Accepted, source);
                self.account = Some(account);
                self.perms = Some(perms);
                self.shared
                    .admission
                    .leave_unauth(&self.authed, self.peer.ip());
                Auth::Accept
            }
            Verdict::Reject { reason, cert } => {
                self.log_attempt(
                    user,
                    key_type,
                    fp,
                    cert.as_ref(),
                    Outcome::Rejected,
                    &reason,
                );
                Auth::reject()
            }
        }
    }

    /// max_auth_tries as sshd counts (auth2.c `userauth_finish`): every refused request is a
    /// failure except the client's initial `none` probe (`first_none`) and a key query
    /// answered with PK_OK (postponed, not refused); when the failures reach the limit the
    /// connection is closed with sshd's "Too many authentication failures". A signed request
    /// may reach two callbacks (offer, then signature), but a refusal ends the request, so
    /// it is counted once.
    fn tally(&mut self, user: &str, auth: Auth, first_none: bool) -> Auth {
        self.auth_requests += 1;
        if auth == Auth::Accept || first_none {
            return auth;
        }
        self.auth_failures += 1;
        let max = self.settings.max_auth_tries;
        if self.auth_failures >= max {
            tracing::warn!(
                "connection {} from {}: maximum authentication attempts exceeded for {} (max_auth_tries {max}), disconnecting",
                self.conn_id,
                self.peer,
                crate::logsafe::user(user)
            );
            if let Some(h) = self.handle.get().cloned() {
                tokio::spawn(async move {
                    let reason = "Too many authentication failures";
                    disconnect(&h, russh::Disconnect::ProtocolError, reason).await;
                });
            }
        }
        auth
    }

    /// Past max_auth_tries every further request is refused unseen (the disconnect is on
    /// its way; this closes the window until it lands).
    fn over_limit(&self) -> bool {
        self.auth_failures >= self.settings.max_auth_tries
    }

    /// A new user name in the auth requests: forget everything decided for the previous one.
    fn reset(&mut self, user: &str) {
        self.user = Some(user.to_string());
        self.account = None;
        self.perms = None;
    }
}
