//! Accepting connections: the accept loop on every listener, sshd's MaxStartups admission
//! (random early drop of unauthenticated connections) and PerSourceMaxStartups, with a
//! bounded queue for a burst from one address instead of a reset. An admitted connection
//! runs in [`crate::connection::run`].
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::config::MaxStartups;
use crate::daemon::{LiveGuard, Shared};

/// Unauthenticated connections, in all and per source address, and the connections waiting
/// for a per-source slot.
#[derive(Default)]
pub(crate) struct Admission {
    /// Connections not authenticated yet (for max_startups).
    unauth: AtomicU64,
    /// The same, per source address (for per_source_max_startups).
    unauth_by_source: Mutex<HashMap<IpAddr, u64>>,
    /// Connections waiting for a per-source slot, per address (bounded by PER_SOURCE_QUEUE).
    queued_by_source: Mutex<HashMap<IpAddr, u32>>,
    /// Woken whenever a per-source slot is released.
    slot_freed: tokio::sync::Notify,
}

/// Serves connections from `listeners` until `shutdown` completes; then stops accepting and
/// returns while already open sessions run to their end on the runtime.
pub(crate) async fn serve(
    listeners: Vec<TcpListener>,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let (tx, mut rx) = mpsc::channel::<(tokio::net::TcpStream, SocketAddr, SocketAddr)>(16);
    let mut accept_tasks = Vec::new();
    for l in listeners {
        let tx = tx.clone();
        accept_tasks.push(tokio::spawn(async move {
            loop {
                match l.accept().await {
                    Ok((s, peer)) => {
                        let local = s.local_addr().unwrap_or(peer);
                        if tx.send((s, peer, local)).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        // EMFILE and friends: log, back off, keep serving.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }));
    }
    drop(tx);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            conn = rx.recv() => {
                let Some((stream, peer, local)) = conn else { break };
                let accepted = tokio::time::Instant::now();
                let (per_source, grace) = {
                    let g = shared.generation();
                    (g.settings.per_source_max_startups, g.settings.login_grace_time)
                };
                let source = source_key(peer.ip());
                // Checked first, so that one address's flood is turned away before it can
                // use up the global max_startups budget that everyone else shares.
                if shared.admission.enter_source(source, per_source) {
                    admit(&shared, stream, peer, local, source, accepted);
                    continue;
                }
                // Over its limit, the address waits for one of its own slots (a deploy
                // script's burst), up to PER_SOURCE_QUEUE connections for login_grace_time;
                // the socket is not read meanwhile. Beyond that it is a flood: dropped.
                if !shared.admission.enqueue(source) {
                    tracing::warn!(
                        "dropping connection from {peer}: {source} already has {per_source} unauthenticated connections (per_source_max_startups) and {PER_SOURCE_QUEUE} waiting"
                    );
                    drop(stream);
                    continue;
                }
                tracing::debug!(
                    "connection from {peer} waits: {source} already has {per_source} unauthenticated connections (per_source_max_startups)"
                );
                let wait = if grace.is_zero() { Duration::from_secs(120) } else { grace };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let got = shared
                        .admission
                        .wait_for_slot(source, per_source, accepted + wait, shared.stopping())
                        .await;
                    shared.admission.dequeue(source);
                    if got {
                        admit(&shared, stream, peer, local, source, accepted);
                    } else {
                        tracing::info!(
                            "closing connection from {peer}: no per_source_max_startups slot for {source} within {wait:?}"
                        );
                    }
                });
            }
        }
    }
    // abort() only asks; awaiting the tasks makes sure the listeners are closed (the port
    // refuses connections) by the time serve returns.
    for t in &accept_tasks {
        t.abort();
    }
    for t in accept_tasks {
        let _ = t.await;
    }
    Ok(())
}

/// Connections one address may have waiting for a per_source_max_startups slot, and all
/// addresses together: what a burst may queue; more are a flood and are dropped.
pub(crate) const PER_SOURCE_QUEUE: u32 = 64;
/// See [`PER_SOURCE_QUEUE`].
pub(crate) const TOTAL_QUEUE: u32 = 1024;

/// Starts a connection that holds a per-source slot, unless max_startups drops it. The
/// connection gets the generation (settings and russh configuration) current now.
fn admit(
    shared: &Arc<Shared>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    source: IpAddr,
    accepted: tokio::time::Instant,
) {
    let generation = shared.generation();
    let startups = generation.settings.max_startups;
    let pending = shared.admission.unauth.load(Ordering::SeqCst);
    if should_drop(startups, pending, rand::random::<u32>() % 100) {
        shared.admission.leave_source(source);
        tracing::warn!(
            "dropping connection from {peer}: {pending} connections are not authenticated yet (max_startups {}:{}:{})",
            startups.start, startups.rate, startups.full
        );
        drop(stream);
        return;
    }
    shared.admission.unauth.fetch_add(1, Ordering::SeqCst);
    let guard = LiveGuard::new(shared.clone());
    let Some(shards) = &shared.shards else {
        let shared = shared.clone();
        tokio::spawn(async move {
            crate::connection::run(stream, peer, local, generation, shared, accepted).await;
            drop(guard);
        });
        return;
    };
    // The socket moves to its shard's reactor: taken off this one here, registered there.
    let stream = match stream.into_std() {
        Ok(s) => s,
        Err(e) => {
            shared.admission.unauth.fetch_sub(1, Ordering::SeqCst);
            shared.admission.leave_source(source);
            tracing::warn!("dropping connection from {peer}: {e}");
            return;
        }
    };
    let conn_shared = shared.clone();
    shards.spawn(move || async move {
        match tokio::net::TcpStream::from_std(stream) {
            Ok(stream) => {
                crate::connection::run(stream, peer, local, generation, conn_shared, accepted).await
            }
            Err(e) => {
                conn_shared
                    .admission
                    .leave_unauth(&AtomicBool::new(false), peer.ip());
                tracing::warn!("dropping connection from {peer}: {e}");
            }
        }
        drop(guard);
    });
}

/// OpenSSH's MaxStartups: below `start` unauthenticated connections accept all; from `start`
/// drop with probability `rate`%, rising linearly to 100% at `full`. `roll` is 0..100.
fn should_drop(m: MaxStartups, pending: u64, roll: u32) -> bool {
    let (start, full) = (u64::from(m.start), u64::from(m.full));
    if pending >= full {
        return true;
    }
    if pending < start {
        return false;
    }
    let span = full.saturating_sub(start).max(1);
    let p = u64::from(m.rate) + (100 - u64::from(m.rate).min(100)) * (pending - start) / span;
    u64::from(roll) < p
}

/// The address a per-source limit counts: IPv4-mapped IPv6 as IPv4.
fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Takes one from `source`'s count, forgetting the address at zero so the map only holds
/// addresses with connections.
fn count_down<N: Copy + PartialEq + std::ops::SubAssign + From<u8>>(
    m: &mut HashMap<IpAddr, N>,
    source: IpAddr,
) {
    if let Some(n) = m.get_mut(&source) {
        if *n != N::from(0) {
            *n -= N::from(1);
        }
        if *n == N::from(0) {
            m.remove(&source);
        }
    }
}

impl Admission {
    /// Connections not authenticated yet (the metrics' gauge).
    pub(crate) fn unauthenticated(&self) -> u64 {
        self.unauth.load(Ordering::SeqCst)
    }

    /// Counts one more unauthenticated connection from `source`, unless it already has
    /// `limit` (0 = no limit): then false and nothing counted.
    fn enter_source(&self, source: IpAddr, limit: u32) -> bool {
        let Ok(mut m) = self.unauth_by_source.lock() else {
            return true;
        };
        let n = m.entry(source).or_insert(0);
        if limit != 0 && *n >= u64::from(limit) {
            return false;
        }
        *n += 1;
        true
    }

    fn leave_source(&self, source: IpAddr) {
        if let Ok(mut m) = self.unauth_by_source.lock() {
            count_down(&mut m, source);
        }
        self.slot_freed.notify_waiters();
    }

    /// Counts one more connection waiting for a slot of `source`, unless its queue (or the
    /// total) is full: then false.
    fn enqueue(&self, source: IpAddr) -> bool {
        let Ok(mut m) = self.queued_by_source.lock() else {
            return false;
        };
        let total: u32 = m.values().sum();
        let n = m.entry(source).or_insert(0);
        if *n >= PER_SOURCE_QUEUE || total >= TOTAL_QUEUE {
            if *n == 0 {
                m.remove(&source);
            }
            return false;
        }
        *n += 1;
        true
    }

    fn dequeue(&self, source: IpAddr) {
        if let Ok(mut m) = self.queued_by_source.lock() {
            count_down(&mut m, source);
        }
    }

    /// Waits until `source` gets an unauthenticated-connection slot (then holds it), until
    /// `deadline` or until shutdown (false).
    async fn wait_for_slot(
        &self,
        source: IpAddr,
        limit: u32,
        deadline: tokio::time::Instant,
        mut stopping: tokio::sync::watch::Receiver<bool>,
    ) -> bool {
        loop {
            let freed = self.slot_freed.notified();
            tokio::pin!(freed);
            // Registered before the check, so a slot freed in between is not missed.
            freed.as_mut().enable();
            if *stopping.borrow() {
                return false;
            }
            if self.enter_source(source, limit) {
                return true;
            }
            tokio::select! {
                _ = &mut freed => {}
                _ = tokio::time::sleep_until(deadline) => return false,
                _ = stopping.changed() => {}
            }
        }
    }
}

impl Admission {
    /// Marks the connection authenticated (or gone) once, releasing its max_startups slot
    /// and its per-source slot.
    pub(crate) fn leave_unauth(&self, authed: &AtomicBool, peer: IpAddr) {
        if !authed.swap(true, Ordering::SeqCst) {
            self.unauth.fetch_sub(1, Ordering::SeqCst);
            self.leave_source(source_key(peer));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::should_drop;
    use crate::config::MaxStartups;

    #[test]
    fn per_source_limit_counts_each_address_and_ipv4_mapped_as_ipv4() {
        use std::net::IpAddr;
        let sh = super::Admission::default();
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let mapped = super::source_key("::ffff:127.0.0.2".parse().unwrap());
        assert_eq!(mapped, a);
        assert!(sh.enter_source(a, 2));
        assert!(sh.enter_source(mapped, 2));
        assert!(!sh.enter_source(a, 2));
        assert!(sh.enter_source("127.0.0.1".parse().unwrap(), 2));
        sh.leave_source(a);
        assert!(sh.enter_source(a, 2));
        assert!(sh.enter_source(a, 0), "0 = no limit");
    }

    #[test]
    fn the_per_source_queue_is_bounded_per_address() {
        use std::net::IpAddr;
        let sh = super::Admission::default();
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        for _ in 0..super::PER_SOURCE_QUEUE {
            assert!(sh.enqueue(a));
        }
        assert!(!sh.enqueue(a), "a full queue takes no more");
        assert!(
            sh.enqueue("127.0.0.3".parse().unwrap()),
            "another address has its own"
        );
        sh.dequeue(a);
        assert!(sh.enqueue(a));
    }

    #[test]
    fn max_startups_drops_as_openssh() {
        let m = MaxStartups {
            start: 10,
            rate: 30,
            full: 100,
        };
        assert!(!should_drop(m, 9, 0));
        assert!(should_drop(m, 10, 29));
        assert!(!should_drop(m, 10, 30));
        assert!(should_drop(m, 100, 99));
        assert!(should_drop(m, 55, 64)); // 30 + 70 * 45/90 = 65 %
        assert!(!should_drop(m, 55, 65));
    }
}
