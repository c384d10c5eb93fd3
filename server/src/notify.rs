//! systemd's `Type=notify` protocol (sd_notify(3)), through the `sd-notify` crate: READY=1
//! once every listener is bound, RELOADING=1 with MONOTONIC_USEC at SIGHUP then READY=1 when
//! the reload is done (or refused), STOPPING=1 when shutdown begins. Nothing is sent when
//! `NOTIFY_SOCKET` is unset (mshd not started by systemd with Type=notify). Session and
//! identity-command processes never inherit the variable: both start with a cleared
//! environment.
#![forbid(unsafe_code)]

use sd_notify::NotifyState;

fn send(what: &str, states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("cannot tell systemd {what} (NOTIFY_SOCKET): {e}");
    }
}

/// Startup is done: the listeners accept connections.
pub(crate) fn ready() {
    send("READY", &[NotifyState::Ready]);
}

/// A SIGHUP reload begins. systemd 253 and later require MONOTONIC_USEC with it (to match
/// the reload to the `systemctl reload` that asked for it).
pub(crate) fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send("RELOADING", &[NotifyState::Reloading, now]),
        Err(e) => {
            tracing::warn!("cannot read the monotonic clock for systemd's RELOADING: {e}");
            send("RELOADING", &[NotifyState::Reloading]);
        }
    }
}

/// Shutdown begins: no more connections are accepted.
pub(crate) fn stopping() {
    send("STOPPING", &[NotifyState::Stopping]);
}
