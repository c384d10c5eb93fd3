//! systemd socket activation (sd_listen_fds(3)): when `LISTEN_PID` is this process,
//! `LISTEN_FDS` descriptors from 3 on are listening sockets systemd bound for mshd
//! (dist/mshd.socket), and mshd serves them instead of binding `listen`. The descriptors are
//! close-on-exec (main marks every inherited descriptor so, and sd_notify::listen_fds again)
//! and the variables removed, so sessions inherit neither. A `LISTEN_PID` naming another process (the variables
//! inherited from a parent that was activated) is ignored, as sd_listen_fds does.
#![forbid(unsafe_code)]

use anyhow::{Context, Result};

/// The environment of the protocol, removed whatever it said.
const VARS: [&str; 3] = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"];

/// The listeners systemd passed, none without activation. Must run before any thread
/// starts (it changes the environment) and before any file is opened (it takes descriptors
/// 3 and up).
pub(crate) fn take() -> Result<Vec<std::net::TcpListener>> {
    let fds = sd_notify::listen_fds();
    for v in VARS {
        // Edition 2021: safe, and no other thread exists yet to read the environment.
        std::env::remove_var(v);
    }
    let fds = fds.context(
        "socket activation: LISTEN_PID or LISTEN_FDS is not a number (set by systemd: check the unit)",
    )?;
    fds.map(|fd| {
        crate::sys::inherited_tcp_listener(fd)
            .with_context(|| format!("socket activation: descriptor {fd} from systemd"))
    })
    .collect()
}
