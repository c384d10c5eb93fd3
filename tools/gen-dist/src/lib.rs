//! What `dist/` holds, computed in memory: the man pages `msh(1)`, `msh-keygen(1)` (and one
//! page per subcommand, `msh-keygen-generate(1)` ...), `mshd(8)`, `mshd.toml(5)`, and bash,
//! zsh and fish completions for the three binaries. The binary writes it to disk
//! (`scripts/gen-dist.sh`); the test `dist_is_current` compares it with the committed files.
#![warn(missing_docs, unreachable_pub)]

use std::path::PathBuf;

use clap::{ArgAction, Command};
use clap_complete::Shell;
use clap_mangen::roff::{bold, italic, roman, Roff};
use clap_mangen::Man;
use msh_server::config::keys::KEYS;

/// Manual header fields shared by every page (`.TH` source and manual).
const SOURCE: &str = concat!("msh ", env!("CARGO_PKG_VERSION"));
const MANUAL: &str = "msh manual";

/// Every file of `dist/`: path relative to `dist/`, and contents.
pub fn files() -> anyhow::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut out = Vec::new();
    let commands = [
        (msh_client::msh::command(), "1"),
        (msh_client::keygen::command(), "1"),
        (msh_server::cli::command(), "8"),
    ];
    for (cmd, section) in &commands {
        man_pages(cmd.clone(), section, &mut out)?;
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            out.push(completion(cmd.clone(), shell));
        }
    }
    out.push((PathBuf::from("man/mshd.toml.5"), mshd_toml_5().into_bytes()));
    out.sort();
    Ok(out)
}

/// The command's page and, as clap_mangen's `generate_to` does, one page per visible
/// subcommand, named `PARENT-SUB`.
fn man_pages(cmd: Command, section: &str, out: &mut Vec<(PathBuf, Vec<u8>)>) -> anyhow::Result<()> {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    fn walk(cmd: Command, section: &str, out: &mut Vec<(PathBuf, Vec<u8>)>) -> anyhow::Result<()> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
            walk(sub, section, out)?;
        }
        let man = Man::new(cmd.clone())
            .section(section)
            .source(SOURCE)
            .manual(MANUAL);
        let file = PathBuf::from("man").join(man.get_filename());
        let mut buf = Vec::new();
        man.render(&mut buf)?;
        let page = with_synopsis(&String::from_utf8(buf)?, &synopsis(&cmd))
            .ok_or_else(|| anyhow::anyhow!("{}: no SYNOPSIS section", file.display()))?;
        // clap_mangen heads `after_long_help` "EXTRA"; ours is always the examples block.
        let page = page
            .replace(".SH EXTRA\nExamples:\n", ".SH EXAMPLES\n")
            .replace(".SH EXTRA\n", ".SH NOTES\n");
        let page = page + &see_also(cmd.get_name());
        out.push((file, page.into_bytes()));
        Ok(())
    }
    walk(cmd, section, out)
}

/// The page with its SYNOPSIS section's body replaced by `body`. clap_mangen's synopsis
/// leaves out value names (`msh [-p ] [-l ]`); the manual reader wants `[-p port]`.
fn with_synopsis(page: &str, body: &str) -> Option<String> {
    let head = ".SH SYNOPSIS\n";
    let start = page.find(head)? + head.len();
    let end = page
        .get(start..)?
        .find("\n.SH ")
        .map_or(page.len(), |i| start + i + 1);
    Some(format!("{}{body}{}", page.get(..start)?, page.get(end..)?))
}

/// A synopsis in the style of OpenSSH's pages: `[-p port]`, `[--listen ADDR:PORT]...`, the
/// operands in italics, `...` after what may be repeated.
fn synopsis(cmd: &Command) -> String {
    let name = cmd.get_bin_name().unwrap_or_else(|| cmd.get_name());
    let mut line = vec![bold(name)];
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        let (open, close) = if arg.is_required_set() {
            ("", "")
        } else {
            ("[", "]")
        };
        let repeats = matches!(arg.get_action(), ArgAction::Count | ArgAction::Append)
            || arg.get_num_args().is_some_and(|n| n.max_values() > 1);
        let values = arg.get_num_args().is_some_and(|n| n.takes_values());
        let value = arg
            .get_value_names()
            .map(|v| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| arg.get_id().as_str().to_uppercase());
        line.push(roman(format!(" {open}")));
        if arg.is_positional() {
            line.push(italic(value));
        } else {
            let flag = match (arg.get_short(), arg.get_long()) {
                (Some(s), Some(l)) => format!("-{s}|--{l}"),
                (Some(s), None) => format!("-{s}"),
                (None, Some(l)) => format!("--{l}"),
                (None, None) => continue,
            };
            line.push(bold(flag));
            if values {
                line.push(roman(" "));
                line.push(italic(value));
            }
        }
        line.push(roman(close));
        if repeats {
            line.push(roman("..."));
        }
    }
    if cmd.has_subcommands() {
        line.push(roman(" "));
        line.push(italic("COMMAND"));
        line.push(roman(" ..."));
    }
    let mut r = Roff::new();
    r.text(line);
    r.to_roff()
}

/// The related pages, ours and OpenSSH's counterparts: `.SH SEE ALSO` in roff.
fn see_also(name: &str) -> String {
    let pages: &[(&str, &str)] = match name {
        "msh" => &[
            ("msh-keygen", "1"),
            ("mshd", "8"),
            ("ssh", "1"),
            ("ssh_config", "5"),
        ],
        "mshd" => &[
            ("mshd.toml", "5"),
            ("msh", "1"),
            ("msh-keygen", "1"),
            ("sshd", "8"),
        ],
        _ => &[("msh", "1"), ("mshd", "8"), ("ssh-keygen", "1")],
    };
    let mut line = Vec::new();
    for (i, (page, section)) in pages.iter().enumerate() {
        if i > 0 {
            line.push(roman(", "));
        }
        line.push(bold(*page));
        line.push(roman(format!("({section})")));
    }
    let mut r = Roff::new();
    r.control("SH", ["SEE ALSO"]);
    r.text(line);
    r.to_roff()
}

/// One shell's completion script, where that shell's packaging looks for it.
fn completion(mut cmd: Command, shell: Shell) -> (PathBuf, Vec<u8>) {
    let name = cmd.get_name().to_string();
    let file = match shell {
        Shell::Zsh => format!("_{name}"),
        Shell::Fish => format!("{name}.fish"),
        _ => name.clone(),
    };
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, &name, &mut buf);
    (
        PathBuf::from("completions")
            .join(shell.to_string())
            .join(file),
        buf,
    )
}

/// `mshd.toml(5)`, written from the key table the config parser checks keys against.
fn mshd_toml_5() -> String {
    let mut r = Roff::new();
    r.control("TH", ["MSHD.TOML", "5", "", SOURCE, MANUAL]);
    r.control("SH", ["NAME"]);
    r.text([roman(
        "mshd.toml - configuration file of mshd, the msh server",
    )]);
    r.control("SH", ["SYNOPSIS"]);
    r.text([
        bold("/etc/msh/mshd.toml"),
        roman(" (as root), "),
        italic("config_dir"),
        roman("/msh/mshd.toml otherwise ("),
        italic("config_dir"),
        roman(" is $XDG_CONFIG_HOME or ~/.config), or the file given to "),
        bold("mshd --config"),
    ]);
    r.control("SH", ["DESCRIPTION"]);
    r.text([roman(
        "A TOML file. Every key is optional: an absent key takes its default, and an absent \
         file means every default (a file given with --config must exist). An unknown key or \
         a bad value is an error naming the file, the line and the key, then what is wrong \
         and what is expected. mshd --check-config validates the file and prints the \
         effective settings. SIGHUP re-reads the file for new connections; a bad \
         file is logged with its file:line and the previous settings stay; listen changes \
         need a restart. The flags --listen, --host-key, --authorized-keys and --audit-log \
         replace the file's value of the same key.",
    )]);
    r.control("SH", ["KEYS"]);
    for key in KEYS {
        r.control("TP", []);
        r.text([bold(key.name), roman(" ("), italic(key.value), roman(")")]);
        r.text([roman(key.description.replace('`', ""))]);
        r.control("br", []);
        r.text([roman("Default: "), roman(key.default)]);
    }
    r.control("SH", ["EXAMPLE"]);
    r.control("EX", []);
    r.text([roman(
        "listen = [\"127.0.0.1:2222\"]\n\
         host_keys = [\"/etc/msh/ssh_host_ed25519_key\"]\n\
         allow_users = [\"alice\", \"deploy@10.0.0.0/8\"]\n\
         max_auth_tries = 3\n\
         subsystems = { sftp = \"/usr/lib/openssh/sftp-server\" }",
    )]);
    r.control("EE", []);
    r.control("SH", ["SEE ALSO"]);
    r.text([
        bold("mshd"),
        roman("(8), "),
        bold("msh"),
        roman("(1), "),
        bold("msh-keygen"),
        roman("(1), "),
        bold("sshd_config"),
        roman("(5)"),
    ]);
    r.render()
}
