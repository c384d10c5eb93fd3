//! Fuzzes ssh_config reading: msh-common's reader (`ssh_config::Reader`, Include, Host
//! blocks, keywords) on its own, and through msh's `msh::settings::resolve` (msh-client),
//! which gives the values their meaning (tokens, value parsers, refusals). The input is written to a real file in a
//! per-process sandbox, `<temp_dir>/msh-fuzz-<pid>/home/.ssh/config` (mode 0600), and resolved
//! for a few fixed host names twice: as `-F FILE` (strict: only keys msh implements) and as
//! `~/.ssh/config` (lenient: OpenSSH keywords and Match blocks skipped), with `home` the
//! sandbox, so `Include` (relative, `~/`) stays inside it. Besides "no panic, no hang" (an
//! `Include` of itself stops at the 16-deep limit), it asserts that every error names a
//! config file (path or path:line) and that a resolved host/port/user is usable.
#![no_main]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use clap::Parser;
use libfuzzer_sys::fuzz_target;
use msh_client::msh::settings::{resolve, Args};
use msh_common::ssh_config::{Mode, Reader, Supported};

const HOSTS: &[&str] = &["host.example.com", "build-1", "alice@extra"];

struct Sandbox {
    /// Every path an error may name lives under this directory.
    dir: String,
    home: PathBuf,
    config: PathBuf,
}

fn write_private(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| {
        remove_stale_sandboxes();
        let dir = std::env::temp_dir().join(format!("msh-fuzz-{}", std::process::id()));
        let home = dir.join("home");
        let ssh = home.join(".ssh");
        let confd = ssh.join("conf.d");
        std::fs::create_dir_all(&confd)
            .unwrap_or_else(|e| panic!("mkdir {}: {e}", confd.display()));
        for d in [&home, &ssh, &confd] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700))
                .unwrap_or_else(|e| panic!("chmod {}: {e}", d.display()));
        }
        // Files an `Include` in the input can name: `conf.d/*`, `extra`, `~/.ssh/loop`.
        write_private(
            &confd.join("10-build"),
            "Host build-*\n  HostName %h.corp.example.com\n  Port 2222\n",
        );
        write_private(&ssh.join("extra"), "Host extra\n  User bob\n  Port 2200\n");
        write_private(&ssh.join("loop"), "Host *\n  Include loop\n");
        let config = ssh.join("config");
        write_private(&config, "");
        let sb = Sandbox {
            dir: dir.display().to_string(),
            home,
            config,
        };
        // The Include depth limit, once: a file including itself is an error naming the line.
        let args = Args::try_parse_from([
            "msh",
            "-F",
            &sb.home.join(".ssh/loop").display().to_string(),
            "x",
        ])
        .unwrap_or_else(|e| panic!("clap: {e}"));
        match resolve(args, Some(&sb.home), "fuzz") {
            Ok(_) => panic!("a self-including config resolved"),
            Err(e) => assert!(format!("{e:#}").contains("nested more than 16"), "{e:#}"),
        }
        sb
    })
}

/// Sandboxes of fuzzer processes that have exited (libFuzzer ends with exit(), so a process
/// cannot remove its own): `msh-fuzz-<pid>` with no /proc/<pid>.
fn remove_stale_sandboxes() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("msh-fuzz-")) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Inputs whose `Include` could leave the sandbox (absolute paths, `..`, `~user`) or fan
/// out exponentially (two self-including arguments double the work at each of 16 levels, as
/// in ssh) are skipped. Crude on purpose: any line mentioning "include" (in any case) counts,
/// which only skips more.
fn include_is_contained(text: &str) -> bool {
    let mut args = 0;
    for line in text.lines() {
        if !line.to_ascii_lowercase().contains("include") {
            continue;
        }
        let words: Vec<&str> = line
            .split(|c: char| c.is_whitespace() || c == '=' || c == '"')
            .filter(|w| !w.is_empty())
            .collect();
        if words.iter().any(|w| {
            w.starts_with('/') || w.contains("..") || (w.starts_with('~') && !w.starts_with("~/"))
        }) {
            return false;
        }
        args += words.len().saturating_sub(1);
    }
    args <= 1
}

fuzz_target!(|data: &[u8]| {
    let sb = sandbox();
    if !include_is_contained(&String::from_utf8_lossy(data)) {
        return;
    }
    std::fs::write(&sb.config, data)
        .unwrap_or_else(|e| panic!("write {}: {e}", sb.config.display()));
    let config = sb.config.display().to_string();
    // The reader alone, with a small vocabulary: every error names the file, every
    // directive it hands back is one of the supported keywords with its path:line.
    let supported = Supported {
        keywords: &["Port", "User", "HostName", "IdentityFile"],
        listed: "Port, User, HostName, IdentityFile",
    };
    for mode in [Mode::Strict, Mode::Lenient] {
        let mut reader = Reader::new("build-1", Some(&sb.home), mode, supported);
        match reader.read(&sb.config, mode == Mode::Lenient) {
            Ok(()) => {
                for d in &reader.directives {
                    assert!(
                        supported.keywords.iter().any(|k| k.eq_ignore_ascii_case(&d.key)),
                        "{mode:?}: unsupported keyword handed back: {d:?}"
                    );
                    assert!(d.origin.starts_with(&sb.dir), "{mode:?}: origin {d:?}");
                }
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.contains(&sb.dir), "{mode:?}: error names no file: {msg:?}");
            }
        }
    }
    for &dest in HOSTS {
        let strict = Args::try_parse_from(["msh", "-F", config.as_str(), dest]);
        let lenient = Args::try_parse_from(["msh", dest]);
        let mut results = Vec::new();
        for (mode, args) in [("-F", strict), ("~/.ssh/config", lenient)] {
            let args = args.unwrap_or_else(|e| panic!("clap: {e}"));
            // `-F FILE` is handed on to jump hosts (hop_flags) and the default file is not: the
            // one field the two modes may differ in, so it is left out of the comparison.
            let r = resolve(args, Some(&sb.home), "fuzz").map(|mut s| {
                s.hop_flags.clear();
                s
            });
            match &r {
                Ok(s) => {
                    assert!(s.port > 0, "{mode} {dest}: port 0");
                    assert!(!s.host.is_empty(), "{mode} {dest}: empty host");
                    assert!(!s.user.is_empty(), "{mode} {dest}: empty user");
                    assert_eq!(s.host_arg, dest.rsplit('@').next().unwrap_or(dest));
                    if dest.contains('@') {
                        assert_eq!(s.user, "alice", "{mode}: user@host must win over User");
                    }
                }
                Err(e) => {
                    let msg = format!("{e:#}");
                    assert!(
                        msg.contains(&sb.dir),
                        "{mode} {dest}: error names no config file: {msg:?}"
                    );
                }
            }
            results.push(r);
        }
        // Strict accepts a subset of what lenient does (lenient only skips more: OpenSSH
        // keywords, Match blocks), and for a file both accept they must agree exactly.
        if let [Ok(strict), lenient] = results.as_slice() {
            match lenient {
                Ok(lenient) => assert_eq!(
                    format!("{strict:?}"),
                    format!("{lenient:?}"),
                    "{dest}: -F and ~/.ssh/config resolve the same file differently"
                ),
                Err(e) => panic!("{dest}: accepted with -F, refused as ~/.ssh/config: {e:#}"),
            }
        }
    }
});
