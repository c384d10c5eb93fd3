//! resolve's tests: precedence, config files in a real home directory, tokens, refusals.

use super::*;
use clap::Parser;

fn args(v: &[&str]) -> Args {
    Args::try_parse_from(std::iter::once("msh").chain(v.iter().copied())).unwrap()
}

fn res(v: &[&str]) -> Result<Settings> {
    resolve(args(v), Some(Path::new("/home/me")), "me")
}

#[test]
fn command_words_joined_and_options_after_host() {
    let s = res(&["-p", "2222", "ops@h", "-l", "x", "ls", "-la", "/tmp"]).unwrap();
    assert_eq!(s.user, "ops");
    assert_eq!(s.port, 2222);
    assert_eq!(s.host, "h");
    assert_eq!(s.command.as_deref(), Some("ls -la /tmp"));
}

#[test]
fn first_value_wins_flags_then_o() {
    let s = res(&[
        "-p", "1", "-o", "Port=2", "-o", "User=u", "-o", "user=v", "h",
    ])
    .unwrap();
    assert_eq!(s.port, 1);
    assert_eq!(s.user, "u");
    let s = res(&["-o", "Port 2", "-o", "Port=3", "h"]).unwrap();
    assert_eq!(s.port, 2);
}

#[test]
fn strict_no_refused_with_reason() {
    let e = res(&["-o", "StrictHostKeyChecking=no", "h"]).unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("accept-new") && msg.contains("--pin"), "{msg}");
    assert!(res(&["-o", "StrictHostKeyChecking=off", "h"]).is_err());
}

#[test]
fn unknown_key_named() {
    let e = res(&["-o", "Tunnel=yes", "h"]).unwrap_err();
    assert!(
        format!("{e:#}").starts_with(
            "-o #1: unknown option \"Tunnel\" (an OpenSSH option msh does not implement)"
        ),
        "{e:#}"
    );
    let e = res(&["-o", "Frobnicate=yes", "h"]).unwrap_err();
    assert!(format!("{e:#}").contains("unknown option \"Frobnicate\""));
}

/// What scp, sftp, rsync and git pass (argv logged from OpenSSH 9.2's scp/sftp, rsync 3.2,
/// git 2.39) is accepted as they send it.
#[test]
fn transport_tools_options_accepted() {
    let s = res(&[
        "-x",
        "-oPermitLocalCommand=no",
        "-oClearAllForwardings=yes",
        "-oRemoteCommand=none",
        "-oRequestTTY=no",
        "-oForwardAgent=no",
        "-oControlMaster=no",
        "-p",
        "2222",
        "-l",
        "u",
        "-s",
        "--",
        "h",
        "sftp",
    ])
    .unwrap();
    assert!(s.subsystem);
    assert_eq!(s.command.as_deref(), Some("sftp"));
    assert_eq!(s.tty, TtyMode::Never);
    assert_eq!((s.user.as_str(), s.port), ("u", 2222));
    // sftp writes `-oKey value` in one word.
    let s = res(&[
        "-oForwardX11 no",
        "-oPermitLocalCommand no",
        "-oClearAllForwardings yes",
        "-oForwardAgent no",
        "-oPort 2200",
        "-l",
        "u",
        "-s",
        "--",
        "h",
        "sftp",
    ])
    .unwrap();
    assert_eq!(s.port, 2200);
    let s = res(&["-G", "-o", "SendEnv=GIT_PROTOCOL", "-p", "2222", "u@h"]).unwrap();
    assert!(s.print_config);
    assert!(print_config(&s).contains("port 2222\n"));
    // Asked for on the command line, a forwarding msh does not do is refused by name.
    let e = format!("{:#}", res(&["-o", "ForwardX11=yes", "h"]).unwrap_err());
    assert!(e.contains("msh does not forward"), "{e}");
    assert!(res(&["-s", "h"]).is_err());
    assert!(res(&["-W", "db:5432", "h", "ls"]).is_err());
    let s = res(&["-W", "[::1]:22", "h"]).unwrap();
    assert_eq!(s.stdio_forward, Some(("::1".to_string(), 22)));
    let s = res(&["-o", "RemoteCommand=uptime", "-o", "RequestTTY=force", "h"]).unwrap();
    assert_eq!(s.command.as_deref(), Some("uptime"));
    assert_eq!(s.tty, TtyMode::ForceAlways);
}

#[test]
fn tilde_and_defaults() {
    let s = res(&["-i", "~/k", "h"]).unwrap();
    assert_eq!(s.identity_files, vec![PathBuf::from("/home/me/k")]);
    assert_eq!(
        s.user_known_hosts,
        vec![PathBuf::from("/home/me/.ssh/known_hosts")]
    );
    assert_eq!(s.strict, StrictHostKeyChecking::Ask);
    assert_eq!(s.command, None);
}

/// A real home directory with files (path, contents, mode), removed on drop.
struct Home(PathBuf);

impl Home {
    fn new(name: &str, files: &[(&str, &str, u32)]) -> Home {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("msh-settings-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (path, text, mode) in files {
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, text).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode)).unwrap();
        }
        std::fs::create_dir_all(&dir).unwrap();
        Home(dir)
    }

    fn resolve(&self, v: &[&str]) -> Result<Settings> {
        resolve(args(v), Some(&self.0), "me")
    }

    fn path(&self, p: &str) -> String {
        self.0.join(p).display().to_string()
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const ALIAS_CONFIG: &str = "\
# an OpenSSH user's file
Host alias
HostName 127.0.0.1
Port 2222 # test box
User ops
IdentityFile ~/.ssh/id_test
Host 127.0.0.1
User wrong
Port 1
";

#[test]
fn default_config_alias_with_hostname() {
    let home = Home::new("alias", &[(".ssh/config", ALIAS_CONFIG, 0o644)]);
    let s = home.resolve(&["alias", "true"]).unwrap();
    assert_eq!(s.host, "127.0.0.1");
    assert_eq!(s.host_arg, "alias");
    // Host blocks match the name typed, not the HostName (no second pass, as ssh).
    assert_eq!((s.user.as_str(), s.port), ("ops", 2222));
    assert_eq!(s.identity_files, vec![home.0.join(".ssh/id_test")]);
    assert!(s.identities_explicit);
    // known_hosts uses the HostName, with the port, as ssh writes it.
    assert_eq!(s.known_hosts_name(), "127.0.0.1");
    assert_eq!(s.known_hosts_port(), 2222);
    let origin = format!("{}:3", home.path(".ssh/config"));
    assert_eq!(s.host_name_origin.as_deref(), Some(origin.as_str()));
    assert_eq!(
        s.host_description(),
        format!("127.0.0.1 (HostName of \"alias\", {origin})")
    );
    // Flags and -o come first.
    let s = home
        .resolve(&[
            "-p",
            "7",
            "-o",
            "HostName=localhost",
            "-o",
            "User=me2",
            "alias",
        ])
        .unwrap();
    assert_eq!(
        (s.host.as_str(), s.port, s.user.as_str()),
        ("localhost", 7, "me2")
    );
    // HostKeyAlias still names the known_hosts entry, without a port.
    let s = home.resolve(&["-o", "HostKeyAlias=box", "alias"]).unwrap();
    assert_eq!((s.known_hosts_name(), s.known_hosts_port()), ("box", 22));
    assert_eq!(s.host, "127.0.0.1");
    // -F none: no file at all.
    let s = home.resolve(&["-F", "none", "alias"]).unwrap();
    assert_eq!(
        (s.host.as_str(), s.port, s.user.as_str()),
        ("alias", 22, "me")
    );
    assert!(s.host_name_origin.is_none());
    assert!(!s.identities_explicit);
}

#[test]
fn hostname_tokens() {
    let s = res(&["-o", "HostName=%h.Corp.example.com", "Build7"]).unwrap();
    assert_eq!(s.host, "build7.corp.example.com");
    assert_eq!(s.host_arg, "Build7");
    assert_eq!(s.known_hosts_name(), "build7.corp.example.com");
    let s = res(&["-o", "HostName=a%%b", "h"]).unwrap();
    assert_eq!(s.host, "a%b");
    for bad in ["HostName=%p", "HostName=x%", "HostName=a b", "HostName="] {
        let e = res(&["-o", bad, "h"]).unwrap_err();
        assert!(
            format!("{e:#}").contains("-o #1: HostName="),
            "{bad}: {e:#}"
        );
    }
    // Without HostName the name given is the address, lowercased as ssh does.
    let s = res(&["Example.COM"]).unwrap();
    assert_eq!(
        (s.host.as_str(), s.host_arg.as_str()),
        ("example.com", "Example.COM")
    );
    assert_eq!(s.host_description(), "example.com");
    let s = res(&["-o", "HostName=0:0::1", "h"]).unwrap();
    assert_eq!(s.host, "::1");
}

#[test]
fn strict_no_refused_where_it_applies() {
    let home = Home::new(
        "strictno",
        &[(
            ".ssh/config",
            "Host other\n  StrictHostKeyChecking no\nHost dev-*\n  StrictHostKeyChecking no\n",
            0o600,
        )],
    );
    let e = home.resolve(&["dev-1"]).unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.starts_with(&format!(
            "{}:4: StrictHostKeyChecking=no: refused",
            home.path(".ssh/config")
        )),
        "{msg}"
    );
    assert!(msg.contains("accept-new") && msg.contains("--pin"), "{msg}");
    // A block that does not apply is fine, and -o overrides the file (first value wins).
    assert_eq!(
        home.resolve(&["prod"]).unwrap().strict,
        StrictHostKeyChecking::Ask
    );
    let s = home
        .resolve(&["-o", "StrictHostKeyChecking=accept-new", "dev-1"])
        .unwrap();
    assert_eq!(s.strict, StrictHostKeyChecking::AcceptNew);
}

#[test]
fn proxies_resolved_and_revoked_host_keys_refused_where_they_apply() {
    let home = Home::new(
        "proxy",
        &[(
            ".ssh/config",
            "Host inner\n  ProxyJump ops@bastion:2200,[::1]:22\nHost cmd\n  ProxyCommand nc %h %p\nHost rev\n  RevokedHostKeys ~/.ssh/revoked\nHost none\n  ProxyCommand none\n",
            0o600,
        )],
    );
    let cfg = home.path(".ssh/config");
    let s = home.resolve(&["inner"]).unwrap();
    match s.proxy {
        Some(Proxy::Jump { hops, origin }) => {
            assert_eq!(origin, format!("{cfg}:2"));
            let shown: Vec<String> = hops.iter().map(ToString::to_string).collect();
            assert_eq!(shown, ["ops@bastion:2200", "[::1]:22"]);
        }
        other => panic!("{other:?}"),
    }
    match home.resolve(&["cmd"]).unwrap().proxy {
        Some(Proxy::Command { command, .. }) => assert_eq!(command, "nc %h %p"),
        other => panic!("{other:?}"),
    }
    let e = format!("{:#}", home.resolve(&["rev"]).unwrap_err());
    assert!(e.starts_with(&format!("{cfg}:6: RevokedHostKeys")), "{e}");
    assert!(e.contains("@revoked"), "{e}");
    let e = format!("{:#}", res(&["-o", "ProxyCommand=nc %z", "h"]).unwrap_err());
    assert!(
        e.starts_with("-o #1: ProxyCommand=nc %z: ProxyCommand: unknown token %z"),
        "{e}"
    );
    assert!(home.resolve(&["none"]).unwrap().proxy.is_none());
    assert!(home
        .resolve(&["-o", "ProxyJump=none", "inner"])
        .unwrap()
        .proxy
        .is_none());
    // The first of ProxyJump/ProxyCommand wins, as in ssh; -J comes before everything.
    assert!(home
        .resolve(&["-o", "ProxyCommand=none", "inner"])
        .unwrap()
        .proxy
        .is_none());
    assert!(matches!(
        home.resolve(&["-J", "b", "cmd"]).unwrap().proxy,
        Some(Proxy::Jump { .. })
    ));
    let e = format!("{:#}", res(&["-J", "a,,b", "h"]).unwrap_err());
    assert!(
        e.starts_with("-J: ProxyJump=a,,b: jump host \"\": empty entry"),
        "{e}"
    );
}

#[test]
fn bad_values_are_errors_even_where_they_do_not_apply() {
    let home = Home::new(
        "badvalue",
        &[(".ssh/config", "Host other\n  Port abc\n", 0o600)],
    );
    let msg = format!("{:#}", home.resolve(&["h"]).unwrap_err());
    assert!(
        msg.starts_with(&format!("{}:2: Port=abc", home.path(".ssh/config"))),
        "{msg}"
    );
}

#[test]
fn default_config_missing_is_fine_but_writable_by_others_is_refused() {
    let home = Home::new("nocfg", &[]);
    assert_eq!(home.resolve(&["h"]).unwrap().port, 22);
    let home = Home::new("wcfg", &[(".ssh/config", "Port 5\n", 0o666)]);
    let e = format!("{:#}", home.resolve(&["h"]).unwrap_err());
    assert!(
        e.contains("bad permissions on config file") && e.contains("chmod go-w"),
        "{e}"
    );
    // -F names the file itself: ssh does not check its mode, and neither does msh.
    let s = home
        .resolve(&["-F", &home.path(".ssh/config"), "h"])
        .unwrap();
    assert_eq!(s.port, 5);
    // -F FILE that does not exist is an error.
    assert!(home.resolve(&["-F", &home.path("nope"), "h"]).is_err());
}

#[test]
fn include_globs_relative_to_dot_ssh_with_own_line_numbers() {
    let home = Home::new(
        "include",
        &[
            (
                ".ssh/config",
                "Include config.d/*.conf\nHost never\n  Include never.conf\nHost *\n  User fallback\n",
                0o600,
            ),
            // Read in lexical order: a.conf's Port wins over b.conf's.
            (".ssh/config.d/b.conf", "Port 2\n", 0o644),
            (".ssh/config.d/a.conf", "\nHost alias\n  HostName 127.0.0.1\n  Port 1\n  ForwardX11 yes\n", 0o600),
            (".ssh/config.d/.hidden.conf", "Port 9\n", 0o600),
            (".ssh/config.d/notes.txt", "Port 8\n", 0o600),
            (".ssh/never.conf", "Host *\n  User never\n", 0o600),
        ],
    );
    let s = home.resolve(&["alias"]).unwrap();
    assert_eq!((s.host.as_str(), s.port), ("127.0.0.1", 1));
    // a.conf ended inside `Host alias`; the including file's state comes back, and
    // never.conf (included from a block that does not apply) sets nothing.
    assert_eq!(s.user, "fallback");
    let a = home.path(".ssh/config.d/a.conf");
    assert_eq!(s.host_name_origin, Some(format!("{a}:3")));
    assert!(
        s.config_notes
            .iter()
            .any(|n| n.starts_with(&format!("{a}:5: ForwardX11"))),
        "{:?}",
        s.config_notes
    );
    let s = home.resolve(&["other"]).unwrap();
    assert_eq!(s.port, 2);
    // An Include matching nothing is a note, as in ssh.
    let home = Home::new(
        "include-none",
        &[(".ssh/config", "Include missing/*\n", 0o600)],
    );
    let s = home.resolve(&["h"]).unwrap();
    assert!(
        s.config_notes[0].ends_with("Include missing/* matched no files"),
        "{:?}",
        s.config_notes
    );
    // An included file others can write is refused, as in ssh.
    let home = Home::new(
        "include-perm",
        &[
            (".ssh/config", "Include ~/.ssh/other\n", 0o600),
            (".ssh/other", "Port 3\n", 0o622),
        ],
    );
    let e = format!("{:#}", home.resolve(&["h"]).unwrap_err());
    assert!(
        e.contains("bad permissions") && e.contains(".ssh/other"),
        "{e}"
    );
    // A file including itself stops at ssh's depth limit with the line that did it.
    let home = Home::new(
        "include-loop",
        &[(".ssh/config", "Include config\n", 0o600)],
    );
    let e = format!("{:#}", home.resolve(&["h"]).unwrap_err());
    assert!(
        e.contains(&format!(
            "{}:1: Include nested more than 16 deep",
            home.path(".ssh/config")
        )),
        "{e}"
    );
    // -F files may include too (strict mode carries into the included file).
    let home = Home::new(
        "include-strict",
        &[
            (".ssh/msh.conf", "Include inc\n", 0o600),
            (".ssh/inc", "\nTunnel yes\n", 0o600),
        ],
    );
    let e = format!(
        "{:#}",
        home.resolve(&["-F", &home.path(".ssh/msh.conf"), "h"])
            .unwrap_err()
    );
    assert!(
        e.starts_with(&format!(
            "{}:2: unknown option \"Tunnel\"",
            home.path(".ssh/inc")
        )),
        "{e}"
    );
}

#[test]
fn path_tokens_expanded_with_final_values() {
    std::env::set_var("MSH_SETTINGS_TEST_DIR", "/envdir");
    let home = Home::new(
        "tokens",
        &[(
            ".ssh/config",
            "Host alias\n  HostName 10.0.0.5\n  User ops\n  Port 2222\n  \
             IdentityFile ~/.ssh/%r@%h-%p\n  IdentityFile %d/k-%n-%u-%%\n  \
             CertificateFile ${MSH_SETTINGS_TEST_DIR}/%k-cert.pub\n  \
             UserKnownHostsFile ~/kh-%h %d/kh2\n",
            0o600,
        )],
    );
    let s = home.resolve(&["alias"]).unwrap();
    assert_eq!(
        s.identity_files,
        vec![
            home.0.join(".ssh/ops@10.0.0.5-2222"),
            home.0.join("k-alias-me-%"),
        ]
    );
    assert_eq!(
        s.certificate_files,
        vec![PathBuf::from("/envdir/alias-cert.pub")]
    );
    assert_eq!(
        s.user_known_hosts,
        vec![home.0.join("kh-10.0.0.5"), home.0.join("kh2")]
    );
    // -i files take the tokens too; %k is HostKeyAlias when set.
    let s = home
        .resolve(&[
            "-i",
            "~/id-%k",
            "-o",
            "HostKeyAlias=box",
            "-l",
            "root",
            "alias",
        ])
        .unwrap();
    assert_eq!(s.identity_files[0], home.0.join("id-box"));
    assert_eq!(s.identity_files[1], home.0.join(".ssh/root@10.0.0.5-2222"));
    // Bad tokens and unset variables name where they came from.
    for (opt, want) in [
        (
            "IdentityFile=~/%C",
            "%C (a hash of the connection) is not supported",
        ),
        ("IdentityFile=~/%x", "unknown token %x"),
        (
            "CertificateFile=${MSH_SETTINGS_TEST_UNSET}/c",
            "MSH_SETTINGS_TEST_UNSET",
        ),
        ("UserKnownHostsFile=${MSH_SETTINGS_TEST_DIR", "unterminated"),
    ] {
        let e = format!("{:#}", res(&["-o", opt, "h"]).unwrap_err());
        assert!(e.starts_with("-o #1: ") && e.contains(want), "{opt}: {e}");
    }
    // A block that does not apply is not expanded (ssh does not look at it either).
    let home = Home::new(
        "tokens-inactive",
        &[(".ssh/config", "Host other\n  IdentityFile %C\n", 0o600)],
    );
    assert!(home.resolve(&["h"]).is_ok());
}

#[test]
fn known_hosts_none_means_no_file() {
    let s = res(&[
        "-o",
        "UserKnownHostsFile=none",
        "-o",
        "GlobalKnownHostsFile=none",
        "h",
    ])
    .unwrap();
    assert!(s.user_known_hosts.is_empty() && s.global_known_hosts.is_empty());
    let s = res(&["-o", "GlobalKnownHostsFile=~/g", "h"]).unwrap();
    assert_eq!(s.global_known_hosts, vec![PathBuf::from("/home/me/g")]);
    assert_eq!(
        s.user_known_hosts,
        vec![PathBuf::from("/home/me/.ssh/known_hosts")]
    );
}

#[test]
fn bad_pin_refused() {
    assert!(res(&["--pin", "MD5:aa", "h"]).is_err());
    assert!(res(&["--pin", "SHA256:abc+/9", "h"]).is_ok());
}

/// Every key of the one table is implemented: a valid value is accepted (or, for the keys
/// accepted only as `none`, `none` is), never reported as an unknown option.
#[test]
fn every_table_key_is_handled() {
    for k in options::OPTION_KEYS {
        let value = match k.name {
            _ if k.none_only => "none",
            "StrictHostKeyChecking" => "yes",
            "BatchMode"
            | "IdentitiesOnly"
            | "HashKnownHosts"
            | "ForwardAgent"
            | "ForwardX11"
            | "ClearAllForwardings"
            | "PermitLocalCommand"
            | "ControlMaster"
            | "UpdateHostKeys"
            | "RequestTTY" => "no",
            "ConnectTimeout" | "ServerAliveInterval" | "Port" => "5",
            "SetEnv" => "A=b",
            "LogLevel" => "INFO",
            "EscapeChar" => "none",
            "LocalForward" | "RemoteForward" => "8080 h:80",
            "DynamicForward" => "1080",
            "GatewayPorts" | "ExitOnForwardFailure" => "no",
            _ => "x",
        };
        let opt = format!("{}={value}", k.name);
        if let Err(e) = res(&["-o", &opt, "h"]) {
            panic!("-o {opt}: {e:#}");
        }
    }
    let e = format!("{:#}", res(&["-o", "Tunnel=yes", "h"]).unwrap_err());
    assert!(
        e.ends_with(&format!("msh accepts: {}", options::accepted_list())),
        "{e}"
    );
    assert!(options::accepted_list().contains("ProxyJump"));
    assert!(!options::accepted_list().contains("RevokedHostKeys"));
}

/// Time values take OpenSSH's whole TIME FORMAT grammar (msh-common's duration parser).
#[test]
fn time_values() {
    let s = res(&[
        "-o",
        "ServerAliveInterval=1m30s",
        "-o",
        "ConnectTimeout=0",
        "h",
    ])
    .unwrap();
    assert_eq!(s.server_alive_interval, Some(Duration::from_secs(90)));
    assert_eq!(s.connect_timeout, None);
    let s = res(&["-o", "ConnectTimeout=2W", "h"]).unwrap();
    assert_eq!(s.connect_timeout, Some(Duration::from_secs(1_209_600)));
    let e = format!("{:#}", res(&["-o", "ConnectTimeout=5x", "h"]).unwrap_err());
    assert!(
        e.starts_with("-o #1: ConnectTimeout=5x: invalid duration \"5x\""),
        "{e}"
    );
}

/// The `-o keys:` paragraph of --help comes from the table.
#[test]
fn help_lists_the_table() {
    use clap::CommandFactory;
    let help = Args::command().render_long_help().to_string();
    for k in options::OPTION_KEYS {
        assert!(help.contains(k.name), "{} missing from --help", k.name);
    }
    assert!(help.contains("RevokedHostKeys only as `none`"));
}

/// UpdateHostKeys defaults to yes only with ssh's default known_hosts file, as in ssh.
#[test]
fn update_host_keys_default_follows_the_known_hosts_file() {
    assert_eq!(res(&["h"]).unwrap().update_host_keys, UpdateHostKeys::Yes);
    let own = ["-o", "UserKnownHostsFile=/tmp/kh", "h"];
    assert_eq!(res(&own).unwrap().update_host_keys, UpdateHostKeys::No);
    let s = res(&[
        "-o",
        "UpdateHostKeys=ask",
        "-o",
        "UserKnownHostsFile=/k",
        "h",
    ])
    .unwrap();
    assert_eq!(s.update_host_keys, UpdateHostKeys::Ask);
    let s = res(&["-o", "UpdateHostKeys=no", "-o", "UpdateHostKeys=yes", "h"]).unwrap();
    assert_eq!(s.update_host_keys, UpdateHostKeys::No);
    let e = format!(
        "{:#}",
        res(&["-o", "UpdateHostKeys=maybe", "h"]).unwrap_err()
    );
    assert!(
        e.contains("UpdateHostKeys=maybe: expected yes, no or ask"),
        "{e}"
    );
}
