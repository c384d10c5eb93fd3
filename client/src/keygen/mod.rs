//! msh-keygen: create keys, print fingerprints, collect a host's keys, maintain known_hosts
//! files, and issue, inspect and revoke certificates, in OpenSSH's formats (what it writes, ssh-keygen/ssh read, and back).
//!
//! Exit status: 0 on success; 1 on any error, and for `known-hosts find` when the host is not
//! in the file (as `ssh-keygen -F`). Errors are printed once, as `msh-keygen: ...`.

mod fingerprint;
mod generate;
mod inspect;
mod known_hosts;
mod revoke;
mod rotate;
mod scan;
mod sign;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

// Each subcommand's examples, shown by its own `--help`; the top-level `--help` shows all.
// Macros, not consts, so `concat!` can join them at compile time.
macro_rules! ex_generate {
    () => {
        "  Create an ed25519 key (asks for a passphrase on a terminal):
    msh-keygen generate -f ~/.ssh/id_ed25519 -C alice@laptop
  Create an unencrypted RSA 4096 key for a script:
    msh-keygen generate -t rsa -b 4096 -N '' -f ./deploy_key
"
    };
}
macro_rules! ex_fingerprint {
    () => {
        "  Show the fingerprint of a key, or of every key in a file:
    msh-keygen fingerprint ~/.ssh/id_ed25519.pub
    msh-keygen fingerprint ~/.ssh/authorized_keys
"
    };
}
macro_rules! ex_scan {
    () => {
        "  Collect a host's keys as known_hosts lines (check the fingerprints before trusting them):
    msh-keygen scan build.internal:2222 > new_hosts
    msh-keygen fingerprint new_hosts && cat new_hosts >> ~/.ssh/known_hosts
"
    };
}
macro_rules! ex_known_hosts {
    () => {
        "  Look up, forget, or hash hosts in ~/.ssh/known_hosts:
    msh-keygen known-hosts find build.internal -p 2222
    msh-keygen known-hosts remove build.internal -p 2222
    msh-keygen known-hosts hash
"
    };
}
macro_rules! ex_sign {
    () => {
        "  Certify a user key for a year, and a host key (for mshd's host_certificates):
    msh-keygen sign --ca ca_key --id alice@corp --principals alice,ops --validity +52w \
      ~/.ssh/id_ed25519.pub
    msh-keygen sign --ca host_ca --host --id web1 --principals web1.corp,10.0.0.5 \
      /etc/msh/ssh_host_ed25519_key.pub
  Restrict a certificate to a command and a network, with a serial to revoke it by:
    msh-keygen sign --ca ca_key --id backup --principals backup --serial 7 \
      --force-command 'rsync --server ...' --source-address 10.0.0.0/8 backup.pub
"
    };
}
macro_rules! ex_inspect {
    () => {
        "  Show a certificate (what ssh-keygen -L shows):
    msh-keygen inspect ~/.ssh/id_ed25519-cert.pub
"
    };
}
macro_rules! ex_revoke {
    () => {
        "  Revoke a key or a certificate's key (mshd's revoked_keys, sshd's RevokedKeys):
    msh-keygen revoke --file /etc/msh/revoked_keys stolen_laptop.pub
  (To revoke one certificate by serial, use a KRL: ssh-keygen -k -f revoked.krl -s ca.pub spec)
"
    };
}
macro_rules! ex_rotate {
    () => {
        "  Start a host key rotation: the next key beside the current one, and the known_hosts
  lines of both for clients that do not learn keys by themselves (UpdateHostKeys):
    msh-keygen rotate-host-key --current /etc/msh/ssh_host_ed25519_key \
      --host web1.corp,10.0.0.5 -p 2222 > web1_known_hosts
"
    };
}
macro_rules! exit_status {
    () => {
        "
Exit status: 0 on success, 1 on error (and for `known-hosts find` when nothing matched)."
    };
}
macro_rules! examples {
    ($($ex:ident),+) => {
        concat!("Examples:\n", $($ex!(),)+ exit_status!())
    };
}

const EXAMPLES: &str = examples!(
    ex_generate,
    ex_fingerprint,
    ex_scan,
    ex_known_hosts,
    ex_sign,
    ex_inspect,
    ex_revoke,
    ex_rotate
);

/// The clap definition of msh-keygen's command line, for the man page and completions
/// (tools/gen-dist).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Create keys, show fingerprints, scan host keys, edit known_hosts files, and sign,
/// inspect and revoke certificates (OpenSSH formats).
#[derive(Debug, Parser)]
#[command(name = "msh-keygen", version, after_long_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a key pair: PATH (private, 0600) and PATH.pub (0644).
    #[command(after_long_help = examples!(ex_generate))]
    Generate(GenerateArgs),
    /// Print `BITS SHA256:... COMMENT (TYPE)` for a key file, or for each key of an
    /// authorized_keys/known_hosts-style file, like `ssh-keygen -lf`.
    #[command(after_long_help = examples!(ex_fingerprint))]
    Fingerprint {
        /// Public or private key file, a file of many keys, or `-` for standard input.
        path: PathBuf,
    },
    /// Connect to HOST[:PORT] once per host-key type and print its keys as known_hosts
    /// lines (stdout) with their fingerprints (stderr), like ssh-keyscan.
    #[command(after_long_help = examples!(ex_scan))]
    Scan(scan::ScanArgs),
    /// Certify public keys with a CA key, writing KEY-cert.pub beside each (ssh-keygen -s).
    #[command(after_long_help = examples!(ex_sign))]
    Sign(sign::SignArgs),
    /// Show a certificate as `ssh-keygen -L` does (plus its validity in UTC).
    #[command(after_long_help = examples!(ex_inspect))]
    Inspect {
        /// Certificate file (KEY-cert.pub), or `-` for standard input.
        cert: PathBuf,
    },
    /// Add keys (or certificates' keys) to a revocation list read by mshd and sshd.
    #[command(after_long_help = examples!(ex_revoke))]
    Revoke(revoke::RevokeArgs),
    /// Find, remove or hash host entries in a known_hosts file (ssh-keygen -F, -R, -H).
    #[command(subcommand, after_long_help = examples!(ex_known_hosts))]
    KnownHosts(KnownHostsCommand),
    /// Generate the next host key beside the current one (CURRENT.next) and print the
    /// known_hosts lines of both keys, with the rotation's steps.
    #[command(after_long_help = examples!(ex_rotate))]
    RotateHostKey(rotate::RotateArgs),
}

#[derive(Debug, Args)]
struct GenerateArgs {
    /// Key type: ed25519, ecdsa or rsa.
    #[arg(short = 't', long = "type", default_value = "ed25519")]
    key_type: String,
    /// Key size: ecdsa 256 (default), 384 or 521; rsa 1024..16384 (default 3072).
    #[arg(short = 'b', long = "bits")]
    bits: Option<u32>,
    /// Where to write the private key (PATH.pub gets the public key).
    #[arg(short = 'f', long = "file")]
    file: PathBuf,
    /// Comment stored with the key (default: user@hostname).
    #[arg(short = 'C', long = "comment")]
    comment: Option<String>,
    /// Passphrase ('' for none). Without it, asked twice on a terminal; empty otherwise.
    #[arg(short = 'N', long = "passphrase")]
    passphrase: Option<String>,
    /// Replace PATH and PATH.pub if they exist.
    #[arg(long)]
    force: bool,
    /// Print nothing on success.
    #[arg(short = 'q', long)]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum KnownHostsCommand {
    /// Print the lines that match HOST, like `ssh-keygen -F`; exit 1 when none does.
    #[command(after_long_help = examples!(ex_known_hosts))]
    Find(known_hosts::HostArgs),
    /// Delete the lines for HOST (keeping FILE.old), like `ssh-keygen -R`.
    #[command(after_long_help = examples!(ex_known_hosts))]
    Remove(known_hosts::HostArgs),
    /// Replace plain host names by hashed ones (keeping FILE.old), like `ssh-keygen -H`.
    #[command(after_long_help = examples!(ex_known_hosts))]
    Hash(known_hosts::FileArgs),
}

/// What a command wants printed, and its exit status. Printing happens once, in `main`, so a
/// closed stdout (`| head`) ends the program quietly instead of panicking.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub stdout: String,
    pub stderr: String,
    pub code: u8,
}

fn run(cli: Cli) -> anyhow::Result<Report> {
    match cli.command {
        Command::Generate(a) => generate::run(a),
        Command::Fingerprint { path } => fingerprint::run(&path),
        Command::Scan(a) => scan::run(a),
        Command::Sign(a) => sign::run(a),
        Command::Inspect { cert } => inspect::run(&cert),
        Command::Revoke(a) => revoke::run(a),
        Command::KnownHosts(KnownHostsCommand::Find(a)) => known_hosts::find(a),
        Command::KnownHosts(KnownHostsCommand::Remove(a)) => known_hosts::remove(a),
        Command::KnownHosts(KnownHostsCommand::Hash(a)) => known_hosts::hash(a),
        Command::RotateHostKey(a) => rotate::run(a),
    }
}

/// Runs msh-keygen with the process's arguments; prints the report or the error once.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli) {
        Ok(report) => {
            let _ = std::io::stderr().write_all(report.stderr.as_bytes());
            let mut out = std::io::stdout().lock();
            // A closed pipe is the reader's choice, not an error worth a message.
            let _ = out
                .write_all(report.stdout.as_bytes())
                .and_then(|_| out.flush());
            ExitCode::from(report.code)
        }
        Err(e) => {
            eprintln!("msh-keygen: {e:#}");
            ExitCode::from(1)
        }
    }
}
