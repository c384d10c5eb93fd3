//! The raw command line of `msh`, exactly as clap understands it. `settings::resolve` turns
//! it into `Settings`; nothing else sees clap types.

use std::path::PathBuf;

use clap::{ArgAction, Parser};

use super::options;

/// Raw command line, exactly as clap understands it.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "msh",
    version,
    about = "Mutual-authentication remote shell client (OpenSSH-compatible files).",
    long_about = "Connects to an mshd or OpenSSH server, verifies its host key (known_hosts, \
or --pin) before sending any credential, authenticates with public keys (agent, -i files or \
~/.ssh/id_*), then runs COMMAND or an interactive shell.\n\n\
Exit status: the remote command's status; 255 when msh itself fails (connection, host \
verification, authentication, refused option) or the remote command was killed by a signal.",
    after_long_help = after_long_help()
)]
pub struct Args {
    /// Port to connect to (default 22).
    #[arg(short = 'p', value_name = "PORT")]
    pub port: Option<u16>,
    /// User to log in as (default: the local user name).
    #[arg(short = 'l', value_name = "USER")]
    pub login: Option<String>,
    /// Private key file to authenticate with (repeatable).
    #[arg(short = 'i', value_name = "IDENTITY", action = ArgAction::Append)]
    pub identity: Vec<PathBuf>,
    /// Force a PTY even with a command (-tt: even when stdin is not a terminal).
    #[arg(short = 't', action = ArgAction::Count, conflicts_with = "no_tty")]
    pub tty: u8,
    /// Never request a PTY.
    #[arg(short = 'T')]
    pub no_tty: bool,
    /// More logging (-v, -vv, -vvv). RUST_LOG, when set, wins.
    #[arg(short = 'v', action = ArgAction::Count)]
    pub verbose: u8,
    /// Quiet: no warnings or notices on stderr (errors still).
    #[arg(short = 'q')]
    pub quiet: bool,
    /// Read options from this ssh_config file (only the keys -o accepts) instead of
    /// ~/.ssh/config; `none`: no config file.
    #[arg(short = 'F', value_name = "CONFIG")]
    pub config: Option<PathBuf>,
    /// Escape character for interactive sessions (default ~): typed after a newline, ~.
    /// disconnects, ~^Z suspends, ~? lists the escapes; none disables.
    #[arg(short = 'e', value_name = "CHAR|^X|none")]
    pub escape_char: Option<String>,
    /// An option in ssh_config syntax, e.g. -o StrictHostKeyChecking=accept-new (repeatable).
    #[arg(short = 'o', value_name = "Key=Value", action = ArgAction::Append)]
    pub options: Vec<String>,
    /// Local forward: listen on [bind_address:]port (or a Unix socket path) and forward
    /// each connection through the server to host:hostport (or a socket path on the
    /// server). Repeatable.
    #[arg(short = 'L', value_name = "[bind_address:]port:host:hostport", action = ArgAction::Append)]
    pub local_forward: Vec<String>,
    /// Remote forward: the server listens on [bind_address:]port (0: it chooses, printed)
    /// and msh connects each connection to host:hostport; with no destination msh acts as a
    /// SOCKS proxy for it. Repeatable.
    #[arg(short = 'R', value_name = "[bind_address:]port[:host:hostport]", action = ArgAction::Append)]
    pub remote_forward: Vec<String>,
    /// Dynamic forward: a SOCKS4/4a/5 proxy (CONNECT, no authentication) on
    /// [bind_address:]port whose connections leave from the server. Repeatable.
    #[arg(short = 'D', value_name = "[bind_address:]port", action = ArgAction::Append)]
    pub dynamic_forward: Vec<String>,
    /// No remote command or shell: only forward, until the connection ends or msh is
    /// interrupted (exit status 255 either way, as ssh).
    #[arg(short = 'N')]
    pub no_session: bool,
    /// Forward the ssh-agent (SSH_AUTH_SOCK) to the server (ForwardAgent=yes).
    #[arg(short = 'A', overrides_with = "no_agent")]
    pub agent: bool,
    /// Do not forward the agent (ForwardAgent=no, the default).
    #[arg(short = 'a', overrides_with = "agent")]
    pub no_agent: bool,
    /// Trust the host only if its key (or, for a host certificate, its CA's key) has this
    /// SHA256 fingerprint (repeatable: any one matches). known_hosts is then neither read
    /// nor written.
    #[arg(long = "pin", value_name = "SHA256:...", action = ArgAction::Append)]
    pub pins: Vec<String>,
    /// Jump hosts: connect to each in turn and reach the next (finally the destination)
    /// through a direct-tcpip channel of the previous one; every hop's host key is verified
    /// as for a direct connection. Same as -o ProxyJump=...; `none` for a direct connection.
    #[arg(short = 'J', value_name = "[user@]host[:port][,...]")]
    pub jump: Option<String>,
    /// Stdio forwarding: connect stdin/stdout to HOST:PORT through the server (a
    /// direct-tcpip channel, no session), e.g. as OpenSSH's `ProxyCommand msh -W %h:%p
    /// bastion`.
    #[arg(short = 'W', value_name = "host:port", conflicts_with = "subsystem")]
    pub stdio_forward: Option<String>,
    /// Run the command as a subsystem (e.g. `sftp`), as scp and sftp ask for.
    #[arg(short = 's')]
    pub subsystem: bool,
    /// Print the settings msh would use for the destination (ssh -G style) and exit.
    #[arg(short = 'G')]
    pub print_config: bool,
    /// Disable X11 forwarding (msh never forwards X11; accepted for scp and sftp).
    #[arg(short = 'x')]
    pub no_x11: bool,
    /// Run the command on every host of LIST instead of one host: comma-separated
    /// [user@]host[:port] ([v6addr]:port for IPv6), or @FILE with one per line (# comments).
    /// The first word after the options is then the command. Never prompts (BatchMode), no
    /// PTY, stdin not sent; output lines are prefixed with the host as written, a summary
    /// ends on stderr. Exit status: 0 when every command exited 0, 255 when any host failed
    /// (connect, verification, authentication, timeout), else 1.
    #[arg(long = "hosts", value_name = "LIST|@FILE", help_heading = "Many hosts")]
    pub hosts: Option<String>,
    /// With --hosts: at most N hosts connected at a time (default 32).
    #[arg(
        long = "parallel",
        value_name = "N",
        requires = "hosts",
        help_heading = "Many hosts"
    )]
    pub parallel: Option<usize>,
    /// With --hosts: one JSON object per host on stdout as each finishes, instead of
    /// prefixed lines.
    #[arg(long = "json", requires = "hosts", help_heading = "Many hosts")]
    pub json: bool,
    /// With --hosts: give up on a host after this long, from connect to exit (e.g. 30s, 2m).
    #[arg(
        long = "timeout",
        value_name = "DURATION",
        requires = "hosts",
        help_heading = "Many hosts"
    )]
    pub timeout: Option<String>,
    /// Host to connect to, optionally with the user: [user@]host.
    // The doc comment is clap's help text too, which shows it verbatim: no link intended.
    #[allow(rustdoc::broken_intra_doc_links)]
    #[arg(value_name = "[user@]host")]
    pub destination: String,
    /// Command to run remotely; its words are joined with spaces, as ssh does.
    #[arg(
        value_name = "command",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

/// `--help`'s text after the options: examples, the `-o` keys (from the one table in
/// `options`), config file and precedence.
fn after_long_help() -> String {
    format!(
        "Examples:\n  msh build.internal uptime\n  msh -p 2222 ops@10.0.0.5\n  \
         msh -o StrictHostKeyChecking=accept-new host true\n  \
         msh --pin SHA256:abc... host 'cat /etc/os-release'\n  \
         msh -J ops@bastion.corp:2222 db.internal    (every hop's host key verified)\n  \
         ssh -o 'ProxyCommand=msh -W %h:%p bastion' db.internal\n  \
         scp -S msh file host:/tmp/; sftp -S msh host; rsync -e msh ...; GIT_SSH_COMMAND=msh git ...\n  \
         msh --hosts web1,web2,ops@db:2222 systemctl is-active nginx\n  \
         msh --hosts @fleet.txt --parallel 8 --timeout 30s --json uname -r\n  \
         msh -N -L 5432:db.internal:5432 bastion   (tunnel to a database)\n  \
         msh -N -D 1080 bastion   (SOCKS proxy: curl --socks5-hostname localhost:1080 ...)\n  \
         msh -A host 'ssh-add -l'\n\n\
         {}\n\n\
         With `ask` and no terminal to ask on (or BatchMode=yes), an unknown host is refused as \
         with `yes`.\n\
         Config file: -F FILE, else ~/.ssh/config if it exists (OpenSSH options msh does not \
         implement are skipped there, noted at -v); -F none reads none.\n\
         Precedence: user@host, then -l/-p, then -o in order, then the config file's Host \
         blocks: the first value wins.",
        options::help_paragraph()
    )
}

/// The clap definition of msh's command line, for the man page and completions
/// (tools/gen-dist).
pub fn command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}
