#![forbid(unsafe_code)]
//! msh-common: OpenSSH file formats (known_hosts, authorized_keys), key loading and
//! fingerprints, file-permission checks and default paths, shared by `mshd`, `msh` and
//! `msh-keygen`. Parsers are pure (text in, typed lines with line numbers out); policy lives in
//! separate modules; every function that touches a file takes its path.

pub mod authorized_keys;
pub mod certs;
pub mod duration;
pub mod error;
pub mod keys;
pub mod known_hosts;
mod lockfile;
pub mod pattern;
pub mod perms;
pub mod revocation;
pub mod safefs;
pub mod ssh_config;

pub use error::{Chain, Error, Result};
