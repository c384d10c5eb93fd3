//! OpenSSH's client configuration, ssh_config(5), as msh reads it: the line syntax
//! (`lex`), the keyword vocabulary ([`keywords`]), ProxyJump lists and ProxyCommand tokens
//! ([`proxy`]), the file reader with `Host` blocks,
//! `Include` (globs, 16 deep) and `IgnoreUnknown` ([`reader`]), token expansion in values
//! ([`tokens`]) and the value types several keywords share ([`values`]). Which keywords a
//! program implements, and what their values mean, is the program's decision: the reader
//! hands back the lines that apply, each with its `path:line`.
//!
//! A config file (keywords are case-insensitive, `Key Value` or `Key=Value`):
//! ```text
//! Host build-* !build-old
//!     HostName %h.corp.example.com
//!     Port 2222
//!     StrictHostKeyChecking accept-new
//! ```

pub mod keywords;
mod lex;
pub mod proxy;
pub mod reader;
pub mod tokens;
pub mod values;

pub use lex::split_key_value;
pub use reader::{Directive, Mode, Reader, Supported, MAX_INCLUDE_DEPTH};
