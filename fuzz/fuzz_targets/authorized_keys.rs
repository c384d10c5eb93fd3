//! Fuzzes the authorized_keys parser (`parse::parse`, `AuthorizedKeys::parse`) and the login
//! policy on what it parsed: `authorize` for the fixture keys and the input's own keys from
//! fixed peers, `authorize_cert_authority` for the fixture CA, `match_from` on every `from=`
//! list (and on the raw first line), plus the `authorized_principals_file` parser, which
//! shares the options parser, and `PrincipalEntry::authorise` (a line's from=/expiry-time=). Besides "no panic", it asserts that an entry with no `from=`
//! and no passed `expiry-time=` admits its key, that an accepted login names a line holding
//! the key, and that `quote_option_value` writes a `command=` that parses back to itself.
#![no_main]

mod fixtures;

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use msh_common::authorized_keys::parse::{parse_options, quote_option_value};
use msh_common::authorized_keys::{
    authorize, authorize_cert_authority, match_from, parse, AuthDecision, AuthorizedKeys,
    ParsedLine,
};
use msh_common::certs::PrincipalsFile;
use russh::keys::PublicKey;

const PATH: &str = "fuzz/authorized_keys";

fuzz_target!(|data: &[u8]| {
    let fx = fixtures::get();
    let now = fixtures::now();
    let text = String::from_utf8_lossy(data);

    let lines = parse(&text);
    assert_eq!(lines.len(), text.lines().count(), "one ParsedLine per line");
    for l in &lines {
        if let ParsedLine::Invalid { reason, .. } = l {
            assert!(!reason.is_empty(), "an unusable line needs a reason");
        }
    }
    let file = AuthorizedKeys::parse(Path::new(PATH), &text);
    for w in file.warnings() {
        assert!(w.starts_with(PATH), "warning without path: {w}");
    }
    let files = std::slice::from_ref(&file);

    let mut keys: Vec<&PublicKey> = fx.plain_keys().to_vec();
    keys.extend(file.entries().take(8).map(|e| &e.key));
    for &peer in fixtures::PEERS {
        for key in &keys {
            let decision = authorize(files, key, peer, now);
            let for_key = || {
                file.entries()
                    .filter(|e| !e.options.cert_authority && e.key.key_data() == key.key_data())
            };
            let open = for_key().any(|e| {
                e.options.from.is_none() && e.options.expiry_time.is_none_or(|t| t >= now)
            });
            match &decision {
                AuthDecision::Accept(p) => {
                    let line = p
                        .source
                        .strip_prefix(&format!("{PATH}:"))
                        .and_then(|n| n.parse::<usize>().ok())
                        .unwrap_or_else(|| panic!("Accept names no {PATH}:LINE: {:?}", p.source));
                    assert!(
                        for_key().any(|e| e.line == line),
                        "Accept by line {line}, which holds no entry for this key"
                    );
                }
                AuthDecision::Reject(why) => {
                    assert!(
                        !open,
                        "an entry without from=/expiry admits {peer}, yet: {why}"
                    );
                    assert!(!why.is_empty());
                }
            }
        }
        let principals = ["alice".to_string(), "bob".to_string()];
        let _ = authorize_cert_authority(files, &fx.ca_pub, &principals, "alice", peer, now);
        if let Some(first) = text.lines().next() {
            let _ = match_from(first, peer);
        }
        for e in file.entries() {
            if let Some(from) = &e.options.from {
                let _ = match_from(from, peer);
            }
        }
    }

    for e in file.entries() {
        if let Some(command) = &e.options.command {
            if let Some(quoted) = quote_option_value(command) {
                let written = format!("command={quoted}");
                match parse_options(&written) {
                    Ok((opts, rest)) => {
                        assert_eq!(opts.command.as_ref(), Some(command), "{written:?}");
                        assert!(rest.is_empty(), "{written:?} left {rest:?}");
                    }
                    Err(why) => panic!("{written:?} (quoted {command:?}) does not parse: {why}"),
                }
            }
        }
    }

    let principals = PrincipalsFile::parse(Path::new("fuzz/principals"), &text);
    let _ = principals.find(&["alice".to_string(), "ops".to_string()]);
    // A principals-file line's options as sshd's auth_authorise_keyopts applies them: a line
    // without from=, a passed expiry-time=, cert-authority or principals= admits every peer;
    // cert-authority or principals= never admits.
    for &peer in fixtures::PEERS {
        for e in &principals.entries {
            let o = &e.options;
            let verdict = e.authorise(peer, now);
            let open = o.from.is_none()
                && o.expiry_time.is_none_or(|t| t >= now)
                && !o.cert_authority
                && o.principals.is_none();
            match &verdict {
                Ok(()) => assert!(
                    !o.cert_authority && o.principals.is_none(),
                    "line {} admitted with cert-authority/principals=",
                    e.line
                ),
                Err(why) => {
                    assert!(!open, "open line {} refused {peer}: {why}", e.line);
                    assert!(!why.is_empty());
                }
            }
        }
    }
});
