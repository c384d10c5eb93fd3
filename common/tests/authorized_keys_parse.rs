//! authorized_keys parser: quoting, escapes, option names, every option, and invalid lines
//! reported with their line number and reason while the other lines stay usable.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::SystemTime;

use msh_common::authorized_keys::parse::{parse_expiry_time, quote_option_value};
use msh_common::authorized_keys::{parse, AuthorizedKey, AuthorizedKeys, FlagOption, ParsedLine};
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::PublicKey;

/// A deterministic ed25519 public key per seed byte (fixtures made by code, not blobs).
fn key(seed: u8) -> PublicKey {
    PublicKey::from(Ed25519Keypair::from_seed(&[seed; 32]).public)
}

/// `ssh-ed25519 AAAA...` for the key of `seed`, without a comment.
fn key_text(seed: u8) -> String {
    key(seed).to_openssh().unwrap()
}

fn only_key(text: &str) -> AuthorizedKey {
    let lines = parse(text);
    assert_eq!(lines.len(), 1, "{text}");
    match lines.into_iter().next().unwrap() {
        ParsedLine::Key(k) => k,
        other => panic!("expected a key from {text:?}, got {other:?}"),
    }
}

fn invalid_reason(text: &str) -> String {
    match parse(text).into_iter().next().unwrap() {
        ParsedLine::Invalid { line, reason } => {
            assert_eq!(line, 1);
            reason
        }
        other => panic!("expected an invalid line from {text:?}, got {other:?}"),
    }
}

#[test]
fn plain_key_with_comment() {
    let k = only_key(&format!("{}   alice@laptop  extra words ", key_text(1)));
    assert_eq!(k.line, 1);
    assert_eq!(k.key.key_data(), key(1).key_data());
    assert_eq!(k.comment, "alice@laptop  extra words");
    assert_eq!(k.options, Default::default());
}

#[test]
fn blank_and_comment_lines_are_other() {
    let text = format!(
        "\n   \n# a comment {}\n\t# indented\n{}\n",
        key_text(1),
        key_text(2)
    );
    let lines = parse(&text);
    assert_eq!(lines.len(), 5);
    assert!(lines[..4].iter().all(|l| matches!(l, ParsedLine::Other)));
    match &lines[4] {
        ParsedLine::Key(k) => assert_eq!(k.line, 5),
        other => panic!("{other:?}"),
    }
}

#[test]
fn quoted_command_keeps_hash_commas_spaces_and_escaped_quotes() {
    let line = format!(
        r#"command="echo #x, y \"quoted\" a\b",no-pty {} ci@build # not a comment"#,
        key_text(3)
    );
    let k = only_key(&line);
    assert_eq!(
        k.options.command.as_deref(),
        Some(r#"echo #x, y "quoted" a\b"#)
    );
    assert!(k.options.no_pty);
    assert_eq!(k.comment, "ci@build # not a comment");
    assert_eq!(k.key.key_data(), key(3).key_data());
}

#[test]
fn option_names_are_case_insensitive() {
    let k = only_key(&format!(
        r#"COMMAND="ls",No-Pty,NO-X11-FORWARDING,Restrict,PTY,From="10.0.0.1" {}"#,
        key_text(1)
    ));
    assert_eq!(k.options.command.as_deref(), Some("ls"));
    assert_eq!(k.options.from.as_deref(), Some("10.0.0.1"));
    assert!(k.options.no_pty && k.options.no_x11_forwarding && k.options.restrict && k.options.pty);
    assert_eq!(
        k.options.flags,
        vec![
            FlagOption::Pty(false),
            FlagOption::X11Forwarding(false),
            FlagOption::Restrict,
            FlagOption::Pty(true)
        ]
    );
}

#[test]
fn every_option_is_recognised() {
    let line = format!(
        concat!(
            r#"command="uptime",from="10.0.0.0/8,!10.0.0.9",restrict,no-pty,pty,"#,
            r#"no-port-forwarding,port-forwarding,no-agent-forwarding,agent-forwarding,"#,
            r#"no-X11-forwarding,X11-forwarding,no-user-rc,user-rc,"#,
            r#"environment="LANG=C.UTF-8",environment="A_1=x=y",environment="LANG=ignored","#,
            r#"expiry-time="20991231Z",cert-authority,principals="alice,bob","#,
            r#"permitopen="localhost:8080",permitopen="[::1]:*",permitlisten="9000","#,
            r#"permitlisten="localhost:9001",tunnel="0",no-touch-required,verify-required {}"#
        ),
        key_text(4)
    );
    let o = only_key(&line).options;
    assert_eq!(o.command.as_deref(), Some("uptime"));
    assert_eq!(o.from.as_deref(), Some("10.0.0.0/8,!10.0.0.9"));
    assert!(o.restrict && o.no_pty && o.pty);
    assert!(o.no_port_forwarding && o.port_forwarding);
    assert!(o.no_agent_forwarding && o.agent_forwarding);
    assert!(o.no_x11_forwarding && o.x11_forwarding);
    assert!(o.no_user_rc && o.user_rc);
    assert_eq!(o.flags.len(), 11);
    assert_eq!(
        o.environment,
        vec![
            ("LANG".to_string(), "C.UTF-8".to_string()),
            ("A_1".to_string(), "x=y".to_string())
        ],
        "first value of a name wins, as in OpenSSH"
    );
    assert_eq!(o.expiry_time, Some(parse_expiry_time("20991231Z").unwrap()));
    assert!(o.cert_authority);
    assert_eq!(o.principals.as_deref(), Some("alice,bob"));
    assert_eq!(o.permitopen, vec!["localhost:8080", "[::1]:*"]);
    assert_eq!(o.permitlisten, vec!["9000", "localhost:9001"]);
    assert_eq!(o.tunnel.as_deref(), Some("0"));
    assert!(o.no_touch_required && o.verify_required);
    let a = o.allowed();
    assert!(a.pty && a.port_forwarding && a.agent_forwarding && a.x11_forwarding && a.user_rc);
}

#[test]
fn expiry_time_forms() {
    let utc = |s| {
        parse_expiry_time(s)
            .unwrap()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    // 2030-01-02 00:00:00 UTC = 1893542400.
    assert_eq!(utc("20300102Z"), 1_893_542_400);
    assert_eq!(utc("203001020304Z"), 1_893_542_400 + 3 * 3600 + 4 * 60);
    assert_eq!(
        utc("20300102030405Z"),
        1_893_542_400 + 3 * 3600 + 4 * 60 + 5
    );
    assert_eq!(utc("20300102utc"), 1_893_542_400);
    // Local time follows the system zone, as OpenSSH's mktime does.
    let local = parse_expiry_time("20300102").unwrap();
    let expected = jiff::civil::date(2030, 1, 2)
        .at(0, 0, 0, 0)
        .to_zoned(jiff::tz::TimeZone::system())
        .unwrap()
        .timestamp();
    assert_eq!(local, SystemTime::from(expected));
    for bad in [
        "2030010",
        "20301301Z",
        "20300230",
        "2030-01-02",
        "x",
        "19691231Z",
        "",
    ] {
        let err = parse_expiry_time(bad).unwrap_err();
        assert!(err.contains("invalid expiry-time"), "{bad}: {err}");
    }
}

#[test]
fn repeated_expiry_time_keeps_the_earliest() {
    let o = only_key(&format!(
        r#"expiry-time="20400101Z",expiry-time="20300101Z",expiry-time="20350101Z" {}"#,
        key_text(1)
    ))
    .options;
    assert_eq!(o.expiry_time, Some(parse_expiry_time("20300101Z").unwrap()));
}

#[test]
fn invalid_lines_say_what_is_wrong() {
    let k = key_text(1);
    let cases: Vec<(String, &str)> = vec![
        (format!("foo {k}"), r#"unknown option "foo""#),
        (format!("no-pty,bar=\"x\" {k}"), r#"unknown option "bar""#),
        (
            format!(r#"command="ls {k}"#),
            "unterminated quote in command=",
        ),
        (
            format!(r#"command="ls\" {k}"#),
            "unterminated quote in command=",
        ),
        (
            format!("command=ls {k}"),
            "value of command= must be in double quotes",
        ),
        (format!("command {k}"), "option command needs a value"),
        (format!(r#"no-pty="x" {k}"#), "option no-pty takes no value"),
        (
            format!(r#"command="a",command="b" {k}"#),
            "command= given more than once",
        ),
        (
            format!(r#"from="a",from="b" {k}"#),
            "from= given more than once",
        ),
        (
            format!(r#"command="a"x {k}"#),
            "unexpected 'x' after the value of command=",
        ),
        (format!("no-pty,,pty {k}"), "empty option after ','"),
        (format!("no-pty, {k}"), "empty option after ','"),
        (format!(",no-pty {k}"), "empty option"),
        ("no-pty".to_string(), "options but no key after them"),
        ("no-pty   ".to_string(), "options but no key after them"),
        (
            "no-pty ssh-foo AAAA".to_string(),
            r#"unknown key type "ssh-foo""#,
        ),
        (
            "ssh-ed25519".to_string(),
            "missing key data after ssh-ed25519",
        ),
        (
            "ssh-ed25519 AAAA!!notbase64".to_string(),
            "invalid ssh-ed25519 key",
        ),
        (
            format!("ssh-rsa {}", k.split(' ').nth(1).unwrap()),
            "invalid ssh-rsa key",
        ),
        (
            "ssh-ed25519-cert-v01@openssh.com AAAA".to_string(),
            "is a certificate, not a key",
        ),
        (
            format!(r#"environment="NOEQUALS" {k}"#),
            "is not NAME=value",
        ),
        (
            format!(r#"environment="BAD-NAME=1" {k}"#),
            "invalid variable name \"BAD-NAME\"",
        ),
        (
            format!(r#"environment="=1" {k}"#),
            "invalid variable name \"\"",
        ),
        (
            format!(r#"expiry-time="tomorrow" {k}"#),
            "invalid expiry-time=\"tomorrow\"",
        ),
        (
            format!(r#"permitopen="nohostport" {k}"#),
            "permitopen=\"nohostport\": missing :port",
        ),
        (format!(r#"permitopen="h:99999" {k}"#), "bad port \"99999\""),
        (
            format!(r#"tunnel="eth0" {k}"#),
            "tunnel=\"eth0\": not a tunnel device",
        ),
        (
            format!("no-restrict {k}"),
            r#"unknown option "no-restrict""#,
        ),
        (format!("ptyx {k}"), r#"unknown option "ptyx""#),
        ("garbage".to_string(), r#"unknown option "garbage""#),
    ];
    for (line, want) in cases {
        let reason = invalid_reason(&line);
        assert!(
            reason.contains(want),
            "line {line:?}: reason {reason:?} does not contain {want:?}"
        );
    }
}

#[test]
fn garbage_between_good_lines_leaves_both_usable() {
    let text = format!(
        "{}\nthis is not a key\n{}\n",
        key_text(1),
        format_args!(r#"command="id" {} second"#, key_text(2))
    );
    let lines = parse(&text);
    assert_eq!(lines.len(), 3);
    match (&lines[0], &lines[1], &lines[2]) {
        (ParsedLine::Key(a), ParsedLine::Invalid { line, reason }, ParsedLine::Key(b)) => {
            assert_eq!((a.line, *line, b.line), (1, 2, 3));
            assert_eq!(reason, r#"unknown option "this""#);
            assert_eq!(a.key.key_data(), key(1).key_data());
            assert_eq!(b.key.key_data(), key(2).key_data());
            assert_eq!(b.options.command.as_deref(), Some("id"));
            assert_eq!(b.comment, "second");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn crlf_lines_parse() {
    let text = format!("{} a\r\n{} b\r\n", key_text(1), key_text(2));
    let f = AuthorizedKeys::parse("ak".as_ref(), &text);
    let comments: Vec<_> = f.entries().map(|e| e.comment.clone()).collect();
    assert_eq!(comments, vec!["a", "b"]);
    assert!(f.warnings().is_empty());
}

#[test]
fn load_reads_file_and_warnings_name_path_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("authorized_keys");
    std::fs::write(
        &path,
        format!(
            "{}\n\nbogus-option {}\n#c\ncommand=\"x {}\n",
            key_text(1),
            key_text(2),
            key_text(3)
        ),
    )
    .unwrap();
    let f = AuthorizedKeys::load(&path).unwrap();
    assert_eq!(f.entries().count(), 1);
    assert_eq!(
        f.warnings(),
        vec![
            format!("{}:3: unknown option \"bogus-option\"", path.display()),
            format!("{}:5: unterminated quote in command=", path.display()),
        ]
    );
}

#[test]
fn load_missing_file_is_io_error_naming_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope");
    let err = AuthorizedKeys::load(&path).unwrap_err();
    assert!(matches!(err, msh_common::Error::Io { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn reads_what_ssh_keygen_writes() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("id");
    let mut failures = Vec::new();
    for (t, bits) in [
        ("ed25519", None),
        ("ecdsa", Some("384")),
        ("rsa", Some("2048")),
    ] {
        let _ = std::fs::remove_file(&key_path);
        let _ = std::fs::remove_file(key_path.with_extension("pub"));
        let mut cmd = std::process::Command::new("ssh-keygen");
        cmd.args(["-q", "-t", t, "-N", "", "-C", "user@host", "-f"])
            .arg(&key_path);
        if let Some(b) = bits {
            cmd.args(["-b", b]);
        }
        let out = cmd.output().unwrap_or_else(|e| {
            panic!("ssh-keygen not runnable ({e}): install it with apt-get install openssh-client")
        });
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pubtext = std::fs::read_to_string(dir.path().join("id.pub")).unwrap();
        let line = format!("restrict,command=\"echo hi\" {pubtext}");
        match parse(&line).into_iter().next().unwrap() {
            ParsedLine::Key(k) => {
                assert_eq!(k.comment, "user@host");
                assert_eq!(
                    k.key.key_data(),
                    PublicKey::from_openssh(&pubtext).unwrap().key_data()
                );
            }
            other => failures.push(format!("{t}: {other:?}")),
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn quote_option_value_escapes_quotes_and_refuses_trailing_backslash() {
    assert_eq!(
        quote_option_value(r#"say "hi""#).unwrap(),
        r#""say \"hi\"""#
    );
    assert_eq!(quote_option_value(r"a\b").unwrap(), r#""a\b""#);
    assert_eq!(quote_option_value(r"a\"), None);
    assert_eq!(quote_option_value("a\nb"), None);
    let k = only_key(&format!(
        "command={} {}",
        quote_option_value(r#"printf '%s\n' "a,b #c" \" "#).unwrap(),
        key_text(1)
    ));
    assert_eq!(
        k.options.command.as_deref(),
        Some(r#"printf '%s\n' "a,b #c" \" "#)
    );
}

#[test]
fn restrict_then_pty_and_pty_then_restrict() {
    let a = only_key(&format!("restrict,pty {}", key_text(1)))
        .options
        .allowed();
    assert!(a.pty && !a.port_forwarding && !a.agent_forwarding && !a.x11_forwarding && !a.user_rc);
    let a = only_key(&format!("pty,restrict {}", key_text(1)))
        .options
        .allowed();
    assert!(
        !a.pty,
        "restrict after pty turns it off again, as in OpenSSH"
    );
}
