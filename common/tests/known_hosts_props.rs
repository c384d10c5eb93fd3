//! Property tests for known_hosts: the parser never panics and numbers every line; a name we
//! hash matches that name (and port) only; rewrites keep every line they do not remove or
//! hash, byte-for-byte and in order.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};

use msh_common::known_hosts::verify::entry_matches_name;
use msh_common::known_hosts::{
    check, entry_matches_host, host_key_name, write, HostKeyVerdict, KnownHostsFile, Line, Marker,
};
use proptest::prelude::*;
use russh::keys::PublicKey;

const ED1: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIu4PD+s7WG3OO7o1Ix9Byw35Fe9QEwR4T0Pw4uv5e9/";
const ED2: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMNoP7qA+qUukkB9yFk9CTXgrSgEvVOhJvOWAFE04AH0";

fn key(s: &str) -> PublicKey {
    PublicKey::from_openssh(s).unwrap()
}

fn test_dir() -> tempfile::TempDir {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("known-hosts-props");
    std::fs::create_dir_all(&base).unwrap();
    tempfile::Builder::new().tempdir_in(base).unwrap()
}

/// Fragments that exercise every branch of the line parser when glued together.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("@revoked".to_string()),
        Just("@cert-authority".to_string()),
        Just("@other".to_string()),
        Just("|1|".to_string()),
        Just("|1|qZaw0aoYr7jXH7lo4ydmJks89Lk=|cVKnaU44jy1CpcCQhg7jT8LORWQ=".to_string()),
        Just("|".to_string()),
        Just("*".to_string()),
        Just("!".to_string()),
        Just(",".to_string()),
        Just(" ".to_string()),
        Just("\t".to_string()),
        Just("\r".to_string()),
        Just("\n".to_string()),
        Just("#".to_string()),
        Just("ssh-ed25519".to_string()),
        Just("ssh-rsa".to_string()),
        Just(ED1.split(' ').nth(1).unwrap().to_string()),
        Just("AAAA".to_string()),
        Just("[h]:2222".to_string()),
        Just("1024".to_string()),
        "[a-z.]{1,8}",
        any::<String>(),
    ]
}

fn glued() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..24).prop_map(|v| v.concat())
}

fn host_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9][a-z0-9.-]{0,40}",
        "[A-Za-z][A-Za-z0-9-]{0,20}\\.[A-Za-z]{2,6}",
        "(25[0-5]|1[0-9]{2}|[1-9]?[0-9])(\\.(25[0-5]|1[0-9]{2}|[1-9]?[0-9])){3}",
        "[0-9a-f]{1,4}(:[0-9a-f]{0,4}){2,7}",
    ]
}

/// One line of a generated file, with a tag saying what it is.
fn file_line() -> impl Strategy<Value = String> {
    let hosts = prop_oneof![
        Just("a"),
        Just("A"),
        Just("b"),
        Just("a,b"),
        Just("b,a"),
        Just("*"),
        Just("a*"),
        Just("!a,*"),
        Just("[a]:2222"),
        Just("a,,b"),
        Just("?"),
    ];
    let entry = (
        prop_oneof![Just(""), Just("@revoked "), Just("@cert-authority ")],
        prop_oneof![Just(""), Just("  "), Just("\t")],
        hosts,
        prop_oneof![Just(" "), Just(" \t "), Just("\t")],
        prop_oneof![Just(ED1), Just(ED2)],
        prop_oneof![Just(""), Just(" comment"), Just("   ")],
    )
        .prop_map(|(m, lead, h, sep, k, c)| format!("{lead}{m}{h}{sep}{k}{c}"));
    prop_oneof![
        4 => entry,
        1 => Just("# a comment".to_string()),
        1 => Just(String::new()),
        1 => Just("not a valid line".to_string()),
        1 => Just(format!("a ssh-ed25519 AAAA{}", "x")),
    ]
}

fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Lines of `text` split after each `\n` (the last one may lack it).
fn raw_lines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parser_never_panics_and_numbers_every_line(text in glued()) {
        let f = KnownHostsFile::parse(Path::new("/kh"), &text);
        prop_assert_eq!(f.lines.len(), raw_lines(&text).len());
        for (i, l) in f.lines.iter().enumerate() {
            match l {
                Line::Entry(e) => prop_assert_eq!(e.line, i + 1),
                Line::Invalid { line, reason } => {
                    prop_assert_eq!(*line, i + 1);
                    prop_assert!(!reason.is_empty());
                }
                Line::Other => {}
            }
        }
        for w in f.warnings() {
            prop_assert!(w.starts_with("/kh:"), "{}", w);
        }
    }

    #[test]
    fn parser_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let text = String::from_utf8_lossy(&bytes);
        let f = KnownHostsFile::parse(Path::new("/kh"), &text);
        prop_assert_eq!(f.lines.len(), raw_lines(&text).len());
    }

    #[test]
    fn a_hashed_name_matches_its_host_and_port_only(
        host in host_name(),
        other in host_name(),
        port in 1u16..,
        other_port in 1u16..,
    ) {
        let k = key(ED1);
        let line = write::format_line(&host, port, &k, true).unwrap();
        // `|1|` + 28 base64 chars of salt + `|` + 28 of hash: the name itself is not stored.
        let field = line.split(' ').next().unwrap();
        prop_assert!(field.starts_with("|1|") && field.len() == 3 + 28 + 1 + 28, "{}", line);
        let f = KnownHostsFile::parse(Path::new("/kh"), &line);
        let e = f.entries().next().expect("our own line parses");
        prop_assert!(entry_matches_host(e, &host, port));
        prop_assert!(entry_matches_host(e, &host.to_ascii_uppercase(), port));
        if host_key_name(&other.to_ascii_lowercase(), other_port)
            != host_key_name(&host.to_ascii_lowercase(), port)
        {
            prop_assert!(!entry_matches_host(e, &other, other_port));
        }
        let files = [f];
        prop_assert_eq!(
            check(&files, &host, port, &k),
            HostKeyVerdict::Trusted { path: PathBuf::from("/kh"), line: 1 }
        );
        let changed = check(&files, &host, port, &key(ED2));
        prop_assert!(matches!(changed, HostKeyVerdict::Changed { line: 1, .. }), "{:?}", changed);
    }

    #[test]
    fn a_plain_line_matches_as_its_patterns_say(host in host_name(), port in 1u16..) {
        let k = key(ED1);
        let line = write::format_line(&host, port, &k, false).unwrap();
        prop_assert_eq!(
            &line,
            &format!("{} {ED1}", host_key_name(&host.to_ascii_lowercase(), port))
        );
        let name = host_key_name(&host, port);
        for (patterns, matches) in [
            (name.clone(), true),
            ("*".to_string(), true),
            (format!("nomatch,{}", name.to_ascii_uppercase()), true),
            (format!("!{name},*"), false),
            (format!("*,!{}", name.to_ascii_uppercase()), false),
            (format!("{name}x"), false),
        ] {
            let f = KnownHostsFile::parse(Path::new("/kh"), &format!("{patterns} {ED1}\n"));
            let e = f.entries().next().unwrap();
            prop_assert_eq!(entry_matches_host(e, &host, port), matches, "{}", patterns);
        }
    }
}

proptest! {
    // Each case writes files: fewer cases keep the suite quick.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn remove_keeps_every_unrelated_line_byte_for_byte(
        lines in prop::collection::vec(file_line(), 0..30),
        final_newline in any::<bool>(),
        target in prop_oneof![Just(("a", 22u16)), Just(("b", 22)), Just(("a", 2222))],
    ) {
        let mut text = lines.join("\n");
        if final_newline && !text.is_empty() {
            text.push('\n');
        }
        let dir = test_dir();
        let path = write_file(dir.path(), "kh", &text);
        let removed = write::remove_host(&path, target.0, target.1).unwrap();
        let after = std::fs::read_to_string(&path).unwrap();

        // Expected: the input minus exactly the unmarked entries matching the target.
        let name = host_key_name(target.0, target.1);
        let parsed = KnownHostsFile::parse(&path, &text);
        let mut expected = String::new();
        let mut n = 0;
        for (raw, l) in raw_lines(&text).iter().zip(&parsed.lines) {
            match l {
                Line::Entry(e) if e.marker == Marker::None && entry_matches_name(e, &name) => n += 1,
                _ => expected.push_str(raw),
            }
        }
        prop_assert_eq!(removed, n);
        prop_assert_eq!(&after, &expected);
        let old = dir.path().join("kh.old");
        prop_assert_eq!(old.exists(), n > 0);
        if n > 0 {
            prop_assert_eq!(std::fs::read_to_string(old).unwrap(), text);
        }
    }

    #[test]
    fn hash_keeps_what_it_does_not_hash_and_names_still_match(
        lines in prop::collection::vec(file_line(), 0..30),
    ) {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let dir = test_dir();
        let path = write_file(dir.path(), "kh", &text);
        let before = KnownHostsFile::parse(&path, &text);
        let hashed = write::hash_file(&path).unwrap();
        let after_text = std::fs::read_to_string(&path).unwrap();
        let after = KnownHostsFile::load(&path).unwrap();

        // Unhashed lines survive verbatim and in order; every new line is a hashed entry.
        let kept: Vec<&str> = after_text
            .lines()
            .filter(|l| !l.starts_with("|1|") || text.contains(*l))
            .collect();
        let unchanged: Vec<&str> = text
            .lines()
            .zip(&before.lines)
            .filter(|(_, l)| match l {
                Line::Entry(e) => {
                    let plain = e.text.split_whitespace().next().unwrap_or_default();
                    e.marker != Marker::None || plain.contains(['*', '?', '!'])
                }
                _ => true,
            })
            .map(|(t, _)| t)
            .collect();
        prop_assert_eq!(&kept, &unchanged);
        prop_assert_eq!(after.lines.len(), unchanged.len() + hashed);
        prop_assert_eq!(after.warnings().len(), before.warnings().len());
        // Whatever host a plain entry named before, check() answers the same after.
        for host in ["a", "b", "c"] {
            for k in [ED1, ED2] {
                prop_assert_eq!(
                    verdict_line(&before, host, k).is_some(),
                    verdict_line(&after, host, k).is_some(),
                    "{} {}", host, k
                );
            }
        }
    }
}

/// Whether `check` trusts `k` for `host` (line numbers change when hashing splits lines).
fn verdict_line(f: &KnownHostsFile, host: &str, k: &str) -> Option<usize> {
    match check(std::slice::from_ref(f), host, 22, &key(k)) {
        HostKeyVerdict::Trusted { line, .. } => Some(line),
        _ => None,
    }
}
