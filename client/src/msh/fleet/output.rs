//! Where the hosts' output goes in `msh --hosts`: each host's stdout and stderr are cut into
//! lines (`LineSplitter`), cleaned of terminal control sequences (`clean_line`) and handed,
//! one whole `LABEL: line` at a time, to a single writer thread that owns our stdout and
//! stderr (`Writer`). One writer means a line is never cut by another host's; the bounded
//! queue in front of it means a host whose output we cannot write fast enough is not read
//! faster either (the SSH window closes). The same thread draws the progress line on a
//! terminal stderr, erasing it before any other output.
//!
//! With `--json` the output is kept instead (`Capture`, bounded) and goes out as one JSON
//! object per host, where JSON escaping makes control characters harmless.

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::thread::JoinHandle;

use nix::poll::{PollFd, PollFlags, PollTimeout};
use tokio::sync::mpsc;

/// A host line longer than this is printed in pieces of this size: a host that never sends a
/// newline must not make msh buffer without end.
pub(super) const MAX_LINE: usize = 64 * 1024;
/// Per host and stream, the output `--json` keeps; the rest is counted, not kept.
pub(super) const MAX_CAPTURE: usize = 16 * 1024 * 1024;
/// Lines queued for the writer thread across all hosts.
const QUEUE: usize = 1024;

/// Which of our streams a line goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stream {
    Out,
    Err,
}

/// What the writer thread is asked to do.
#[derive(Debug)]
pub(super) enum Msg {
    /// A finished line (with its newline) for stdout or stderr.
    Line(Stream, Vec<u8>),
    /// The progress line's new text (drawn only when stderr is a terminal).
    Progress(String),
    /// Erase the progress line for good (before the summary).
    EndProgress,
}

/// Cuts a byte stream into lines; keeps the unfinished last line until more comes.
#[derive(Debug, Default)]
pub(super) struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    /// The complete lines in `data` (with what was pending), without their `\n`.
    pub(super) fn feed(&mut self, mut data: &[u8]) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        while let Some(pos) = data.iter().position(|&b| b == b'\n') {
            let (line, rest) = data.split_at(pos);
            self.partial.extend_from_slice(line);
            lines.push(std::mem::take(&mut self.partial));
            data = rest.get(1..).unwrap_or_default();
        }
        self.partial.extend_from_slice(data);
        while self.partial.len() >= MAX_LINE {
            let rest = self.partial.split_off(MAX_LINE);
            lines.push(std::mem::replace(&mut self.partial, rest));
        }
        lines
    }

    /// The unfinished last line, if any: printed too when the host's output ends.
    pub(super) fn finish(&mut self) -> Option<Vec<u8>> {
        (!self.partial.is_empty()).then(|| std::mem::take(&mut self.partial))
    }
}

/// Output kept for `--json`, up to `MAX_CAPTURE` bytes.
#[derive(Debug, Default)]
pub(super) struct Capture {
    pub bytes: Vec<u8>,
    /// Bytes received beyond `MAX_CAPTURE` and dropped.
    pub dropped: u64,
}

impl Capture {
    pub(super) fn push(&mut self, data: &[u8]) {
        let room = MAX_CAPTURE.saturating_sub(self.bytes.len());
        let keep = data.len().min(room);
        self.bytes
            .extend_from_slice(data.get(..keep).unwrap_or_default());
        self.dropped += (data.len() - keep) as u64;
    }

    /// The kept bytes as UTF-8, invalid sequences as U+FFFD.
    pub(super) fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// A host's line made safe for a terminal: decoded as UTF-8 (invalid bytes become U+FFFD),
/// escape sequences (CSI `ESC [`, OSC `ESC ]`, DCS/SOS/PM/APC strings, two-byte `ESC x`, and
/// their C1 forms) removed, and every other control character except tab removed (a
/// trailing `\r` of a CRLF line too). Remote output must not be able to move our cursor,
/// retitle the window, rewrite earlier lines with another host's label or talk to the
/// terminal's clipboard.
pub(super) fn clean_line(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\t' => out.push(c),
            '\u{1b}' => match chars.next() {
                Some('[') => skip_csi(&mut chars),
                Some(']' | 'P' | 'X' | '^' | '_') => skip_string(&mut chars),
                // Two-byte sequences (ESC 7, ESC c...): the second byte goes with ESC.
                _ => {}
            },
            '\u{9b}' => skip_csi(&mut chars),
            '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Parameter and intermediate bytes up to and including the final byte (ECMA-48 5.4).
fn skip_csi(chars: &mut impl Iterator<Item = char>) {
    for c in chars.by_ref() {
        if ('\u{40}'..='\u{7e}').contains(&c) {
            return;
        }
    }
}

/// A control string up to its terminator: BEL (as xterm accepts for OSC), `ESC \` or ST.
fn skip_string(chars: &mut std::iter::Peekable<impl Iterator<Item = char>>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => return,
            '\u{1b}' => {
                if chars.peek() == Some(&'\\') {
                    chars.next();
                }
                return;
            }
            _ => {}
        }
    }
}

/// `LABEL: line\n`.
pub(super) fn labelled(label: &str, line: &[u8]) -> Vec<u8> {
    let mut s = String::with_capacity(label.len() + line.len() + 3);
    s.push_str(label);
    s.push_str(": ");
    s.push_str(&clean_line(line));
    s.push('\n');
    s.into_bytes()
}

/// The sending side of the writer thread; cloned into every host task.
pub(super) type WriterTx = mpsc::Sender<Msg>;

/// The writer thread and its queue.
pub(super) struct Writer {
    pub tx: WriterTx,
    thread: JoinHandle<()>,
}

impl Writer {
    /// Starts the thread on duplicates of fds 1 and 2.
    pub(super) fn start() -> io::Result<Writer> {
        let stdout = File::from(io::stdout().as_fd().try_clone_to_owned()?);
        let stderr = File::from(io::stderr().as_fd().try_clone_to_owned()?);
        let progress = io::stderr().is_terminal();
        // Both on one terminal: a stdout line must erase the progress line on stderr too.
        let shared_tty = progress && io::stdout().is_terminal();
        let (tx, rx) = mpsc::channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("fleet-output".into())
            .spawn(move || {
                WriterThread {
                    stdout,
                    stderr,
                    progress,
                    shared_tty,
                    shown: None,
                    stdout_broken: false,
                }
                .run(rx)
            })?;
        Ok(Writer { tx, thread })
    }

    /// Drops this handle to the queue and waits until everything queued is written (every
    /// other sender must be gone already).
    pub(super) fn finish(self) {
        drop(self.tx);
        let _ = self.thread.join();
    }
}

struct WriterThread {
    stdout: File,
    stderr: File,
    /// Draw progress at all (stderr is a terminal).
    progress: bool,
    shared_tty: bool,
    /// The progress text on screen now.
    shown: Option<String>,
    /// stdout's reader went away (`| head`): its lines are dropped, the run goes on.
    stdout_broken: bool,
}

impl WriterThread {
    fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut pending_progress: Option<String> = None;
        while let Some(first) = rx.blocking_recv() {
            let mut next = Some(first);
            // Everything queued goes out before the progress line is drawn again.
            while let Some(msg) = next {
                match msg {
                    Msg::Line(stream, bytes) => self.line(stream, &bytes),
                    Msg::Progress(text) => pending_progress = Some(text),
                    Msg::EndProgress => {
                        pending_progress = None;
                        self.erase();
                        self.progress = false;
                    }
                }
                next = rx.try_recv().ok();
            }
            if let Some(text) = pending_progress.take() {
                self.draw(text);
            }
        }
        self.erase();
    }

    fn line(&mut self, stream: Stream, bytes: &[u8]) {
        match stream {
            Stream::Out => {
                if self.stdout_broken {
                    return;
                }
                if self.shared_tty {
                    self.erase();
                }
                if let Err(e) = write_all(&self.stdout, bytes) {
                    tracing::debug!("stdout: {e}");
                    self.stdout_broken = true;
                }
            }
            Stream::Err => {
                self.erase();
                let _ = write_all(&self.stderr, bytes);
            }
        }
    }

    fn draw(&mut self, text: String) {
        if !self.progress {
            return;
        }
        let _ = write_all(&self.stderr, format!("\r\x1b[K{text}").as_bytes());
        self.shown = Some(text);
    }

    fn erase(&mut self) {
        if self.shown.take().is_some() {
            let _ = write_all(&self.stderr, b"\r\x1b[K");
        }
    }
}

/// The whole buffer, in one write(2) when the descriptor takes it; waits for room when the
/// descriptor is non-blocking (msh never changes its flags, see stdio.rs).
fn write_all(file: &File, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match (&*file).write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = buf.get(n..).unwrap_or_default(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait_writable(file.as_fd())?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn wait_writable(fd: BorrowedFd<'_>) -> io::Result<()> {
    loop {
        let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
        match nix::poll::poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_at_newlines_and_the_partial_last_line_is_kept() {
        let mut s = LineSplitter::default();
        assert_eq!(s.feed(b"a\nb"), vec![b"a".to_vec()]);
        assert_eq!(s.feed(b"c\n\nd"), vec![b"bc".to_vec(), b"".to_vec()]);
        assert_eq!(s.finish(), Some(b"d".to_vec()));
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn an_endless_line_is_printed_in_pieces() {
        let mut s = LineSplitter::default();
        let lines = s.feed(&vec![b'x'; MAX_LINE * 2 + 5]);
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|l| l.len() == MAX_LINE));
        assert_eq!(s.finish().map(|l| l.len()), Some(5));
    }

    #[test]
    fn control_sequences_are_removed_and_text_kept() {
        assert_eq!(clean_line(b"\x1b[31mred\x1b[0m\tok\r"), "red\tok");
        assert_eq!(
            clean_line(b"a\x1b]0;title\x07b\x1b]52;c;Zm9v\x1b\\c"),
            "abc"
        );
        assert_eq!(clean_line(b"x\x1bPq#0\x1b\\y\x1b7z\x08"), "xyz");
        assert_eq!(clean_line("a\u{9b}2Jb\u{9d}t\u{9c}c".as_bytes()), "abc");
        assert_eq!(clean_line(b"caf\xc3\xa9 \xff"), "caf\u{e9} \u{fffd}");
    }

    #[test]
    fn capture_keeps_a_bounded_prefix() {
        let mut c = Capture::default();
        c.push(&vec![b'a'; MAX_CAPTURE - 1]);
        c.push(b"bcd");
        assert_eq!(c.bytes.len(), MAX_CAPTURE);
        assert_eq!(c.dropped, 2);
    }
}
