//! Where connections run: one single-threaded runtime per CPU ("shard"), each on its own
//! thread, and every task of a connection (its SSH session, its sessions' pumps, its
//! forwards) on its connection's shard.
//!
//! Why not the work-stealing runtime: a connection's data path is a pipeline of tasks (a
//! forward's pump, russh's session loop, the socket), and on a work-stealing runtime each
//! hand-off between them can wake another worker thread, which then steals the task. Measured
//! through an `-L` tunnel (1 GiB down, release, 2 CPUs): mshd used about 0.8 s of CPU per GiB
//! on the work-stealing runtime with 2 workers and about 0.6 s with one thread, for more
//! throughput. Shards keep that one-thread path for each connection while connections
//! together still use every CPU. A new connection goes to the shard with the fewest open
//! connections.
#![forbid(unsafe_code)]

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The shards; see the module documentation.
pub(crate) struct Shards {
    shards: Vec<Shard>,
}

struct Shard {
    handle: tokio::runtime::Handle,
    /// Connections running on this shard.
    open: Arc<AtomicUsize>,
}

impl Shards {
    /// Starts `count` shards (at least one), each a thread driving its runtime for the life
    /// of the process.
    pub(crate) fn start(count: usize) -> std::io::Result<Shards> {
        let mut shards = Vec::new();
        for i in 0..count.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let handle = runtime.handle().clone();
            std::thread::Builder::new()
                .name(format!("mshd-shard-{i}"))
                .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
            shards.push(Shard {
                handle,
                open: Arc::new(AtomicUsize::new(0)),
            });
        }
        Ok(Shards { shards })
    }

    /// One shard per CPU this process may run on.
    pub(crate) fn per_cpu() -> std::io::Result<Shards> {
        Shards::start(std::thread::available_parallelism().map_or(1, usize::from))
    }

    /// Runs the connection that `make` builds on the least busy shard. `make` runs on that
    /// shard, so what it registers (its socket) belongs to that shard's reactor.
    pub(crate) fn spawn<F, Fut>(&self, make: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Some(shard) = self
            .shards
            .iter()
            .min_by_key(|s| s.open.load(Ordering::Relaxed))
        else {
            return;
        };
        let open = shard.open.clone();
        open.fetch_add(1, Ordering::Relaxed);
        shard.handle.spawn(async move {
            struct Close(Arc<AtomicUsize>);
            impl Drop for Close {
                fn drop(&mut self) {
                    self.0.fetch_sub(1, Ordering::Relaxed);
                }
            }
            let _close = Close(open);
            make().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn connections_go_to_the_least_busy_shard_and_run_on_its_thread() {
        let shards = Shards::start(2).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = tokio::sync::watch::channel(false);
        for _ in 0..4 {
            let tx = tx.clone();
            let mut release = release_rx.clone();
            shards.spawn(move || async move {
                let name = std::thread::current().name().map(str::to_owned);
                tx.send(name).unwrap();
                let _ = release.wait_for(|r| *r).await;
            });
        }
        let mut names: Vec<String> = (0..4)
            .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "mshd-shard-0",
                "mshd-shard-0",
                "mshd-shard-1",
                "mshd-shard-1"
            ]
        );
        release_tx.send_replace(true);
        let start = std::time::Instant::now();
        while shards
            .shards
            .iter()
            .any(|s| s.open.load(Ordering::Relaxed) != 0)
        {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "counts not released"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
