//! msh's stdin, stdout and stderr, whatever they are and however they were opened: a
//! terminal, a pipe, a socket, a regular file, `/dev/null`; blocking or non-blocking.
//!
//! Each stream gets its own thread doing plain `read`/`write` on a duplicate of the
//! descriptor, and talks to the session through a small bounded queue (the backpressure both
//! ways). `EINTR` is retried; a short write continues with the rest; `EAGAIN` — the
//! descriptor is non-blocking, as rsync leaves the socket it gives its `-e` command as stdout
//! — waits for readiness with poll(2), so nothing spins and nothing is lost.
//!
//! msh never changes a descriptor's flags. OpenSSH sets `O_NONBLOCK` on non-terminal stdio and
//! restores the old flags when it closes the channel (channels.c, `channel_register_fds` /
//! `channel_close_fd`), but the flags belong to the open file description, which other
//! processes share (the rest of a pipeline, the parent shell): while ssh runs they see the
//! change too, and a killed ssh never restores it. Blocking I/O on our own threads needs
//! neither.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};

use bytes::Bytes;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use tokio::sync::{mpsc, oneshot};

/// Bytes per read of stdin. Large so that bulk uploads cost few reads and few channel sends.
const READ_CHUNK: usize = 256 * 1024;
/// Reads queued ahead of the session (at most `READ_QUEUE * READ_CHUNK` bytes).
const READ_QUEUE: usize = 4;
/// Writes queued for the writer thread; with up to 64 KiB per SSH packet about 2 MiB, which
/// keeps the thread busy while the session fetches the next packets.
const WRITE_QUEUE: usize = 32;
/// Buffers handed to one writev(2): the thread drains what queued up while it was writing.
const MAX_IOV: usize = 64;

/// A duplicate of one of our standard descriptors, so the thread owns what it uses. A
/// closed standard descriptor reads as `/dev/null`, as ssh makes it (`sanitise_stdfd`).
fn dup_std(fd: BorrowedFd<'_>, write: bool) -> io::Result<File> {
    match fd.try_clone_to_owned() {
        Ok(owned) => Ok(File::from(owned)),
        Err(e) if e.raw_os_error() == Some(nix::libc::EBADF) => std::fs::OpenOptions::new()
            .read(!write)
            .write(write)
            .open("/dev/null"),
        Err(e) => Err(e),
    }
}

/// Blocks until `fd` is ready for `flags` (or has an error/hangup the next call reports).
fn wait_ready(fd: BorrowedFd<'_>, flags: PollFlags) -> io::Result<()> {
    loop {
        let mut fds = [PollFd::new(fd, flags)];
        match nix::poll::poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// fd 2 for msh's own messages (errors, notices, `-v` logs), written in full before the call
/// returns. std's `eprintln!` panics on `EAGAIN`, which a full non-blocking stderr gives; this
/// waits for room instead (see the `errln!` macro).
pub(super) struct StderrNow;

impl Write for StderrNow {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let stderr = io::stderr();
        loop {
            match (&stderr).write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    wait_ready(stderr.as_fd(), PollFlags::POLLOUT)?
                }
                other => return other,
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Standard input, read on its own thread.
pub(super) struct Input {
    rx: mpsc::Receiver<io::Result<Bytes>>,
}

impl Input {
    /// Starts reading fd 0. The thread ends at end of file, on an error, or when `Input` is
    /// dropped and it next has something to deliver; a thread still parked in read(2) then
    /// ends with the process (a terminal read cannot be cancelled).
    pub(super) fn stdin() -> io::Result<Input> {
        let file = dup_std(io::stdin().as_fd(), false)?;
        let (tx, rx) = mpsc::channel(READ_QUEUE);
        std::thread::Builder::new()
            .name("msh-stdin".into())
            .spawn(move || read_loop(file, tx))?;
        Ok(Input { rx })
    }

    /// The next piece of input; `Ok(None)` at end of file.
    pub(super) async fn read(&mut self) -> io::Result<Option<Bytes>> {
        match self.rx.recv().await {
            Some(Ok(b)) => Ok(Some(b)),
            Some(Err(e)) => Err(e),
            None => Ok(None),
        }
    }
}

fn read_loop(mut file: File, tx: mpsc::Sender<io::Result<Bytes>>) {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let item = match file.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => Ok(Bytes::copy_from_slice(buf.get(..n).unwrap_or_default())),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                match wait_ready(file.as_fd(), PollFlags::POLLIN) {
                    Ok(()) => continue,
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        let failed = item.is_err();
        if tx.blocking_send(item).is_err() || failed {
            return;
        }
    }
}

/// Standard output or standard error, written on its own thread.
pub(super) struct Output {
    tx: OutputTx,
    done: oneshot::Receiver<io::Result<()>>,
}

/// A cheap handle to queue bytes on an `Output` from another task.
#[derive(Clone)]
pub(super) struct OutputTx(mpsc::Sender<Bytes>);

impl OutputTx {
    /// Queues `data`, waiting while the queue is full (our reader is slower than the
    /// server). Fails once the writer has stopped on an error; `Output::finish` tells which.
    pub(super) async fn write(&self, data: Bytes) -> Result<(), WriterGone> {
        if data.is_empty() {
            return Ok(());
        }
        self.0.send(data).await.map_err(|_| WriterGone)
    }
}

/// The writer thread stopped on an error (e.g. `EPIPE`): nothing more can be written.
#[derive(Debug)]
pub(super) struct WriterGone;

impl Output {
    pub(super) fn stdout() -> io::Result<Output> {
        Output::start(dup_std(io::stdout().as_fd(), true)?, "msh-stdout")
    }

    pub(super) fn stderr() -> io::Result<Output> {
        Output::start(dup_std(io::stderr().as_fd(), true)?, "msh-stderr")
    }

    fn start(file: File, name: &str) -> io::Result<Output> {
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let (done_tx, done) = oneshot::channel();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let mut rx = rx;
                let result = write_loop(&file, &mut rx);
                // Drop the queue first, so that a sender waiting for room fails at once.
                drop(rx);
                let _ = done_tx.send(result);
            })?;
        Ok(Output {
            tx: OutputTx(tx),
            done,
        })
    }

    pub(super) fn handle(&self) -> OutputTx {
        self.tx.clone()
    }

    pub(super) async fn write(&self, data: Bytes) -> Result<(), WriterGone> {
        self.tx.write(data).await
    }

    /// Closes the queue and waits until everything queued is written (as ssh drains its
    /// buffers before it exits), or returns the error that stopped the writer. Handles from
    /// `handle()` must be dropped first, or this waits for them.
    pub(super) async fn finish(self) -> io::Result<()> {
        drop(self.tx);
        self.done
            .await
            .unwrap_or_else(|_| Err(io::Error::other("writer thread ended without a result")))
    }
}

fn write_loop(file: &File, rx: &mut mpsc::Receiver<Bytes>) -> io::Result<()> {
    let mut queue: VecDeque<Bytes> = VecDeque::with_capacity(MAX_IOV);
    loop {
        if queue.is_empty() {
            match rx.blocking_recv() {
                Some(b) => queue.push_back(b),
                None => return Ok(()),
            }
        }
        while queue.len() < MAX_IOV {
            match rx.try_recv() {
                Ok(b) => queue.push_back(b),
                Err(_) => break,
            }
        }
        let slices: Vec<IoSlice<'_>> = queue.iter().map(|b| IoSlice::new(b)).collect();
        match (&*file).write_vectored(&slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => consume(&mut queue, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                wait_ready(file.as_fd(), PollFlags::POLLOUT)?
            }
            Err(e) => return Err(e),
        }
    }
}

/// Drops the first `n` written bytes from the queue; a partly written buffer keeps its rest.
fn consume(queue: &mut VecDeque<Bytes>, mut n: usize) {
    while n > 0 {
        let Some(front) = queue.front_mut() else {
            return;
        };
        if n >= front.len() {
            n -= front.len();
            queue.pop_front();
        } else {
            bytes::Buf::advance(front, n);
            n = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consume_keeps_the_unwritten_rest() {
        let mut q: VecDeque<Bytes> = ["abc", "defg", "h"]
            .iter()
            .map(|s| Bytes::from_static(s.as_bytes()))
            .collect();
        consume(&mut q, 5);
        let rest: Vec<&[u8]> = q.iter().map(|b| &b[..]).collect();
        assert_eq!(rest, vec![&b"fg"[..], &b"h"[..]]);
        consume(&mut q, 3);
        assert!(q.is_empty());
    }

    /// A non-blocking pipe whose reader is slow: the writer waits for room, never spins, never
    /// drops a byte.
    #[test]
    fn nonblocking_pipe_short_writes_lose_nothing() {
        let (r, w) = nix::unistd::pipe().unwrap();
        let fl = nix::fcntl::fcntl(&w, nix::fcntl::FcntlArg::F_GETFL).unwrap();
        let mut fl = nix::fcntl::OFlag::from_bits_truncate(fl);
        fl.insert(nix::fcntl::OFlag::O_NONBLOCK);
        nix::fcntl::fcntl(&w, nix::fcntl::FcntlArg::F_SETFL(fl)).unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let expected = data.clone();
        let reader = std::thread::spawn(move || {
            let mut f = File::from(r);
            let mut got = Vec::new();
            let mut buf = [0u8; 7000];
            loop {
                std::thread::sleep(std::time::Duration::from_micros(50));
                match f.read(&mut buf).unwrap() {
                    0 => break,
                    n => got.extend_from_slice(&buf[..n]),
                }
            }
            got
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async move {
            let out = Output::start(File::from(w), "test").unwrap();
            for chunk in data.chunks(100_000) {
                out.write(Bytes::copy_from_slice(chunk)).await.unwrap();
            }
            out.finish().await.unwrap();
        });
        assert!(reader.join().unwrap() == expected);
    }
}
