//! mshd: the msh server. Parses the command line, sets up logging and hands over to
//! [`msh_server::daemon::run`], which does everything else.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use msh_server::config::Overrides;
use msh_server::daemon::{self, Options};
use msh_server::{logsafe, sys};

/// mshd — msh server: public-key-only SSH server for remote shells and commands.
#[derive(Parser, Debug)]
#[command(
    name = "mshd",
    version,
    after_long_help = "Examples:\n  mshd --check-config\n  mshd --listen 127.0.0.1:2222 -v\n  sudo mshd --config /etc/msh/mshd.toml --audit-log /var/log/mshd-audit.jsonl"
)]
struct Cli {
    /// Config file (TOML). Default: /etc/msh/mshd.toml as root, else <config_dir>/msh/mshd.toml.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on (repeatable); replaces `listen` from the file.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Vec<String>,
    /// Host private key (repeatable); replaces `host_keys` from the file.
    #[arg(long, value_name = "PATH")]
    host_key: Vec<PathBuf>,
    /// authorized_keys file pattern (%h home, %u user; repeatable); replaces
    /// `authorized_keys_files` from the file.
    #[arg(long, value_name = "PATTERN")]
    authorized_keys: Vec<String>,
    /// Write the JSON-lines audit log to PATH (`-` = stdout).
    #[arg(long, value_name = "PATH|-")]
    audit_log: Option<String>,
    /// Validate the configuration, print the effective settings and exit.
    #[arg(long)]
    check_config: bool,
    /// More log output (-v info is the default, -vv debug, -vvv trace). RUST_LOG wins.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

fn main() -> ExitCode {
    sys::reset_inherited_signal_dispositions();
    sys::cloexec_inherited_fds();
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let options = Options {
        config: cli.config,
        overrides: Overrides {
            listen: cli.listen,
            host_keys: cli.host_key,
            authorized_keys: cli.authorized_keys,
            audit_log: cli.audit_log,
        },
        check_config: cli.check_config,
    };
    match daemon::run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mshd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 | 1 => "info",
        2 => "debug",
        _ => "trace",
    };
    // russh is chatty at debug; keep it one notch quieter than our own code unless -vvv.
    let default = if verbose >= 3 {
        level.to_string()
    } else {
        format!("{level},russh=info")
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let fmt = tracing_subscriber::fmt::layer()
        // Each record on one line, whatever a client put in the strings it carries.
        .with_writer(logsafe::stderr)
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .with_target(false)
        .with_filter(filter);
    tracing_subscriber::registry().with(fmt).init();
}
