//! End-to-end and interop tests: real mshd, msh, msh-keygen, OpenSSH ssh/sshd/ssh-keygen
//! processes on loopback. Build the workspace first (scripts/test.sh does).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod audit_syslog;
mod certs_keygen;
mod certs_mshd;
mod dist;
mod fleet;
mod flow_control;
mod forward_client;
mod forward_server;
mod hardening_algorithms;
mod hardening_audit;
mod hardening_enumeration;
mod hardening_files;
mod hardening_limits;
mod hardening_preauth;
mod hardening_signals;
mod harness_selftest;
mod hostkey_rotation;
mod identity_commands;
mod issue7_auth;
mod jump;
mod keygen;
mod login_records;
mod msh_certs;
mod msh_config;
mod msh_escape;
mod msh_interactive;
mod msh_known_hosts;
mod msh_stdio;
mod msh_to_mshd;
mod msh_to_sshd;
mod mshd_auth;
mod mshd_sftp;
mod operations;
mod pam;
mod root_mode;
mod sessions_lifecycle;
mod socket_activation;
mod ssh_to_mshd;
mod transport_tools;
mod trust_files;
mod trust_options;
