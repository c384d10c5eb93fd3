//! mshd: the msh server. Parses the command line, sets up logging and hands over to
//! [`msh_server::daemon::run`], which does everything else.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use msh_server::cli::Cli;
use msh_server::config::Overrides;
use msh_server::daemon::{self, Options};
use msh_server::{logsafe, sys};

fn main() -> ExitCode {
    sys::reset_inherited_signal_dispositions();
    sys::cloexec_inherited_fds();
    // mshd's own per-session PAM process (msh_server::pam::keeper), before anything else.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args
        .get(1)
        .is_some_and(|a| a == msh_server::pam::KEEPER_FLAG)
    {
        msh_server::pam::keeper::main(args.get(2..).unwrap_or_default());
    }
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
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&default))
    };
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    // Started by systemd with stderr connected to the journal: write native journal entries
    // instead (PRIORITY from the level, TARGET and CODE_FILE/CODE_LINE as fields, one entry
    // per record whatever the message holds). If journald's socket cannot be reached, stderr
    // as usual.
    let journald = if stderr_is_the_journal() {
        tracing_journald::layer().ok().map(|l| {
            // sshd's syslog levels: connections and logins at LOG_INFO, not the crate's
            // default of NOTICE for info records.
            use tracing_journald::{Priority, PriorityMappings};
            l.with_syslog_identifier("mshd".into())
                .with_priority_mappings(PriorityMappings {
                    info: Priority::Informational,
                    debug: Priority::Debug,
                    ..PriorityMappings::new()
                })
        })
    } else {
        None
    };
    let fmt = journald.is_none().then(|| {
        tracing_subscriber::fmt::layer()
            // Each record on one line, whatever a client put in the strings it carries.
            .with_writer(logsafe::stderr)
            .with_ansi(
                std::io::IsTerminal::is_terminal(&std::io::stderr())
                    && std::env::var_os("NO_COLOR").is_none(),
            )
            .with_target(false)
            .with_filter(filter())
    });
    tracing_subscriber::registry()
        .with(journald.map(|j| j.with_filter(filter())))
        .with(fmt)
        .init();
}

/// Whether stderr is the stream systemd connected to the journal: `JOURNAL_STREAM` holds
/// its `DEVICE:INODE` (systemd.exec(5)), compared with stderr's own, so a child of a
/// service that redirected stderr elsewhere does not take the variable for its own.
fn stderr_is_the_journal() -> bool {
    let Some(v) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = v.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    let Ok(st) = nix::sys::stat::fstat(std::io::stderr()) else {
        return false;
    };
    dev.parse::<u64>().ok() == Some(st.st_dev) && ino.parse::<u64>().ok() == Some(st.st_ino)
}
