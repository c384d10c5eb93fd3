//! mshd, the msh server, as a library: the binary (`src/main.rs`) parses the command line
//! ([`cli`]) and calls [`daemon::run`]; the fuzz targets use [`config`] directly.
//!
//! One module per stage of a connection, in the order a connection meets them (OpenSSH's
//! `sshd.c`, `auth2.c`, `session.c` split):
//! - [`daemon`]: start, SIGHUP reload, graceful shutdown; [`config`] and `hostkey` are what
//!   it loads.
//! - `listener`: accept loop, MaxStartups admission, per-source limits.
//! - `connection`: one connection's lifetime (login grace timer, shutdown grace).
//! - `handler`: the russh handler, split by concern (`auth`, `channel`).
//! - `session`: what a session runs (`plan`, pure), starting it (`spawn`, `tty`), and the
//!   connection's table of session channels.
//! - `audit`: the JSON-lines audit log (typed events, one writer); [`sys`]: the few
//!   syscalls that need `unsafe`; [`logsafe`]: client-controlled strings in the text log.
//! - `login_records`: utmp, wtmp and lastlog for PTY sessions (root mode), through
//!   `utmpx`, the C library's utmp API (with `sys` and `pam::ffi`, the only modules allowed
//!   `unsafe`).
//! - `metrics`: the Prometheus endpoint (`metrics_listen`); `notify`: systemd's
//!   `Type=notify` protocol.
//! - [`pam`]: `use_pam` (account management at login; the per-session keeper process that
//!   opens and closes each PAM session outside mshd).
//!
//! The public modules are what the binary and the fuzz targets use; everything else is
//! `pub(crate)`.
#![warn(missing_docs, unreachable_pub)]
// The workspace denies `unsafe_code`; `sys` (privilege drop between fork and exec),
// `utmpx` (the C library's utmp calls) and `pam::ffi` (the Linux-PAM calls) are the modules
// that allow it, and every other module forbids it or inherits the workspace's deny.

mod activation;
mod algorithms;
mod audit;
mod auth;
pub mod cli;
pub mod config;
mod connection;
pub mod daemon;
mod error;
mod forward;
mod handler;
mod hostkey;
mod listener;
mod login_records;
pub mod logsafe;
mod metrics;
mod notify;
pub mod pam;
mod session;
mod shadow;
mod shards;
pub mod sys;
mod utmpx;

pub use error::Error;
#[cfg(test)]
mod tests;
