//! Fuzzes the known_hosts parser (`KnownHostsFile::parse`) and the host-key policy on what
//! it parsed: `find`, `entry_matches_host`, `check`, `check_alias`, `cert_authorities_for`,
//! `known_algorithms` for fixed host names and ports, with the fixture keys and the keys
//! found in the input. Besides "no panic", it asserts the promises the verdicts make (a
//! `Trusted`/`Changed`/`Revoked` verdict names a line that says so; a host listed with its
//! key and not revoked is `Trusted`), and that a line written by `write::format_line`
//! (plain or hashed) parses back to an entry that matches the host it was written for.
#![no_main]

mod fixtures;

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use msh_common::known_hosts::parse::parse_line;
use msh_common::known_hosts::write::format_line;
use msh_common::known_hosts::{
    cert_authorities_for, check, check_alias, entry_matches_host, find, host_key_name,
    known_algorithms, Entry, HostKeyVerdict, KnownHostsFile, Line, Marker,
};
use russh::keys::PublicKey;

const HOSTS: &[&str] = &[
    "host.example.com",
    "HOST.Example.COM",
    "bad.example.com",
    "10.0.0.5",
    "build.internal",
    "::1",
];
const PORTS: &[u16] = &[22, 2222];

/// The entry on `line`, which a verdict names.
fn entry_at(file: &KnownHostsFile, line: usize) -> &Entry {
    file.entries()
        .find(|e| e.line == line)
        .unwrap_or_else(|| panic!("verdict names line {line}, which is no entry"))
}

/// A host name to write with `format_line`, taken from the input (first name of the first
/// field), when it is one that can be written without quoting: no pattern characters,
/// separators, brackets or markers.
fn derived_host(text: &str) -> Option<&str> {
    let first = text.split([' ', '\t', '\n', '\r']).next()?;
    let name = first.split(',').next()?;
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    ok.then_some(name)
}

fuzz_target!(|data: &[u8]| {
    let fx = fixtures::get();
    let text = String::from_utf8_lossy(data);
    let file = KnownHostsFile::parse(Path::new("fuzz/known_hosts"), &text);
    let n_lines = text.split_inclusive('\n').count();
    assert_eq!(file.lines.len(), n_lines, "one Line per input line");
    for w in file.warnings() {
        assert!(
            w.starts_with("fuzz/known_hosts:"),
            "warning without path: {w}"
        );
    }
    for l in &file.lines {
        if let Line::Entry(Entry { line, .. }) | Line::Invalid { line, .. } = l {
            assert!(
                (1..=n_lines).contains(line),
                "line number {line} of {n_lines}"
            );
        }
    }

    let files = std::slice::from_ref(&file);
    let mut keys: Vec<&PublicKey> = fx.plain_keys().to_vec();
    keys.extend(file.entries().take(8).map(|e| &e.key));

    for host in HOSTS {
        for &port in PORTS {
            let found = find(&file, host, port);
            for e in file.entries() {
                assert_eq!(
                    entry_matches_host(e, host, port),
                    found.iter().any(|f| std::ptr::eq(*f, e)),
                    "find and entry_matches_host disagree on line {}",
                    e.line
                );
            }
            for ca in cert_authorities_for(files, host, port) {
                assert_eq!(ca.marker, Marker::CertAuthority);
            }
            let _ = known_algorithms(files, host, port);
            for key in &keys {
                let verdict = check(files, host, port, key);
                let revoked = file
                    .entries()
                    .any(|e| e.marker == Marker::Revoked && e.key.key_data() == key.key_data());
                match &verdict {
                    HostKeyVerdict::Revoked { line, .. } => {
                        let e = entry_at(&file, *line);
                        assert_eq!(e.marker, Marker::Revoked);
                        assert_eq!(e.key.key_data(), key.key_data());
                    }
                    HostKeyVerdict::Trusted { line, .. } => {
                        assert!(!revoked, "revoked key trusted");
                        let e = entry_at(&file, *line);
                        assert_eq!(e.marker, Marker::None);
                        assert_eq!(e.key.key_data(), key.key_data());
                        assert!(
                            entry_matches_host(e, host, port)
                                || (port != 22 && entry_matches_host(e, host, 22)),
                            "Trusted by line {line}, which is not for {host}:{port}"
                        );
                    }
                    HostKeyVerdict::Changed { line, .. } => {
                        assert!(!revoked, "revoked key reported as changed");
                        let e = entry_at(&file, *line);
                        assert_eq!(e.marker, Marker::None);
                        assert_ne!(e.key.key_data(), key.key_data());
                        assert!(entry_matches_host(e, host, port));
                    }
                    HostKeyVerdict::Unknown => assert!(!revoked, "revoked key unknown"),
                }
                let listed = found
                    .iter()
                    .any(|e| e.marker == Marker::None && e.key.key_data() == key.key_data());
                if listed && !revoked {
                    assert!(
                        matches!(verdict, HostKeyVerdict::Trusted { .. }),
                        "{host}:{port} is listed with this key but the verdict is {verdict:?}"
                    );
                }
                if port == 22 {
                    assert_eq!(check_alias(files, host, key), verdict);
                }
            }
        }
    }

    if let Some(host) = derived_host(&text) {
        for &port in PORTS {
            for hash in [false, true] {
                let line = format_line(host, port, &fx.user, hash)
                    .unwrap_or_else(|e| panic!("format_line({host:?}, {port}): {e}"));
                match parse_line(1, &line) {
                    Line::Entry(e) => {
                        assert!(
                            entry_matches_host(&e, host, port),
                            "{line:?} (written for {}) does not match it",
                            host_key_name(host, port)
                        );
                        assert_eq!(e.key.key_data(), fx.user.key_data());
                        assert_eq!(e.marker, Marker::None);
                    }
                    other => panic!("format_line wrote {line:?}, which parses as {other:?}"),
                }
            }
        }
    }
});
