//! mshd's command line as clap understands it: the binary parses it, and tools/gen-dist
//! writes `mshd(8)` and the shell completions from [`command`].

use std::path::PathBuf;

use clap::{CommandFactory, Parser};

/// mshd — msh server: public-key-only SSH server for remote shells and commands.
#[derive(Parser, Debug)]
#[command(
    name = "mshd",
    version,
    after_long_help = "Examples:\n  mshd --check-config\n  mshd --listen 127.0.0.1:2222 -v\n  sudo mshd --config /etc/msh/mshd.toml --audit-log /var/log/mshd-audit.jsonl"
)]
pub struct Cli {
    /// Config file (TOML). Default: /etc/msh/mshd.toml as root, else <config_dir>/msh/mshd.toml.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on (repeatable); replaces `listen` from the file.
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Vec<String>,
    /// Host private key (repeatable); replaces `host_keys` from the file.
    #[arg(long, value_name = "PATH")]
    pub host_key: Vec<PathBuf>,
    /// authorized_keys file pattern (%h home, %u user; repeatable); replaces
    /// `authorized_keys_files` from the file.
    #[arg(long, value_name = "PATTERN")]
    pub authorized_keys: Vec<String>,
    /// Write the JSON-lines audit log to PATH (`-` = stdout).
    #[arg(long, value_name = "PATH|-")]
    pub audit_log: Option<String>,
    /// Validate the configuration, print the effective settings and exit.
    #[arg(long)]
    pub check_config: bool,
    /// More log output (-v info is the default, -vv debug, -vvv trace). RUST_LOG wins.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// The clap definition of mshd's command line, for the man page and completions.
pub fn command() -> clap::Command {
    Cli::command()
}
