#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
//! msh-client: the library behind the `msh` client and the `msh-keygen` tool. The binaries
//! (`src/bin/`) only call [`msh::main`] and [`keygen::main`]; the library exists so that the
//! command-line layering can be tested and fuzzed without running a binary.
//!
//! - [`msh`]: command line and ssh_config resolution, connection and host verification,
//!   authentication, the session (PTY, stdio, escape sequences).
//! - [`keygen`]: key generation, fingerprints, host-key scanning, known_hosts maintenance,
//!   certificates and revocation lists.

mod algorithms;
pub mod keygen;
pub mod msh;
