//! authorized_keys policy: from= (CIDR v4/v6, negation, globs, mapped addresses), expiry,
//! restrict + pty, forced command, environment, cert-authority lines, first-match order, and
//! the `%h`/`%u` token expansion of authorized_keys_files.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use msh_common::authorized_keys::{
    authorize, authorize_cert_authority, expand_tokens, match_from, try_expand_tokens,
    AuthDecision, AuthorizedKeys, FromMatch, Permissions,
};
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::PublicKey;
use FromMatch::{Admit, Refuse};

fn key(seed: u8) -> PublicKey {
    PublicKey::from(Ed25519Keypair::from_seed(&[seed; 32]).public)
}

fn key_text(seed: u8) -> String {
    key(seed).to_openssh().unwrap()
}

fn file(name: &str, text: &str) -> AuthorizedKeys {
    AuthorizedKeys::parse(Path::new(name), text)
}

/// `ak` holding one line: `options` then key 1.
fn ak_key1(options: &str) -> [AuthorizedKeys; 1] {
    [file("ak", &format!("{options} {}\n", key_text(1)))]
}

/// `ak` holding `template` with `{k}` replaced by the text of key `seed`.
fn ak_lines(template: &str, seed: u8) -> [AuthorizedKeys; 1] {
    [file("ak", &template.replace("{k}", &key_text(seed)))]
}

/// Key 1 logging in from 127.0.0.1 now.
fn key1_from_localhost(fs: &[AuthorizedKeys]) -> AuthDecision {
    authorize(fs, &key(1), ip("127.0.0.1"), now())
}

/// `match_from` for the peer address `peer`.
fn from(patterns: &str, peer: &str) -> FromMatch {
    match_from(patterns, ip(peer))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn now() -> SystemTime {
    SystemTime::now()
}

fn accept(d: AuthDecision) -> Permissions {
    match d {
        AuthDecision::Accept(p) => p,
        AuthDecision::Reject(r) => panic!("expected accept, got reject: {r}"),
    }
}

fn reject(d: AuthDecision) -> String {
    match d {
        AuthDecision::Reject(r) => r,
        AuthDecision::Accept(p) => panic!("expected reject, got accept: {p:?}"),
    }
}

#[test]
fn plain_entry_accepts_with_everything_allowed() {
    let f = file("/h/.ssh/authorized_keys", &format!("{} me\n", key_text(1)));
    let p = accept(authorize(&[f], &key(1), ip("127.0.0.1"), now()));
    assert_eq!(
        p,
        Permissions {
            pty: true,
            port_forwarding: true,
            agent_forwarding: true,
            x11_forwarding: true,
            user_rc: true,
            forced_command: None,
            environment: vec![],
            permit_open: vec![],
            permit_listen: vec![],
            source: "/h/.ssh/authorized_keys:1".to_string(),
        }
    );
}

#[test]
fn comment_does_not_matter_key_data_does() {
    let f = file("ak", &format!("{} someone-else\n", key_text(1)));
    let mut offered = key(1);
    offered.set_comment("me@laptop");
    accept(authorize(
        std::slice::from_ref(&f),
        &offered,
        ip("127.0.0.1"),
        now(),
    ));
    let r = reject(authorize(&[f], &key(2), ip("127.0.0.1"), now()));
    assert_eq!(r, "key not in ak");
}

#[test]
fn absent_key_names_every_file() {
    let a = file("/a/keys", &format!("{}\n", key_text(1)));
    let b = file("/b/keys", "# empty\n");
    let r = reject(authorize(&[a, b], &key(9), ip("127.0.0.1"), now()));
    assert_eq!(r, "key not in /a/keys, /b/keys");
}

#[test]
fn from_cidr_v4() {
    let f = file("ak", &format!("from=\"10.0.0.0/8\" {}\n", key_text(1)));
    let fs = [f];
    accept(authorize(&fs, &key(1), ip("10.200.3.4"), now()));
    let r = reject(authorize(&fs, &key(1), ip("11.0.0.1"), now()));
    assert_eq!(r, "ak:1: from=\"10.0.0.0/8\" does not admit 11.0.0.1");
}

#[test]
fn from_cidr_v6_and_exact_v6() {
    let fs = ak_key1("from=\"2001:db8::/32,::1/128\"");
    accept(authorize(&fs, &key(1), ip("2001:db8:1::5"), now()));
    accept(authorize(&fs, &key(1), ip("::1"), now()));
    reject(authorize(&fs, &key(1), ip("2001:db9::1"), now()));
    reject(key1_from_localhost(&fs));
}

#[test]
fn negation_wins_over_a_match() {
    let fs = ak_key1("from=\"10.0.0.0/8,!10.0.0.9\"");
    accept(authorize(&fs, &key(1), ip("10.0.0.8"), now()));
    let r = reject(authorize(&fs, &key(1), ip("10.0.0.9"), now()));
    assert!(r.contains("does not admit 10.0.0.9"), "{r}");
    // Order does not matter for negation.
    assert_eq!(from("!10.0.0.0/24,*", "10.0.0.1"), Refuse);
    assert_eq!(from("!10.0.0.0/24,*", "10.0.1.1"), Admit);
    assert_eq!(from("*,!10.0.0.?", "10.0.0.7"), Refuse);
}

#[test]
fn globs_over_address_text_and_host_names() {
    assert_eq!(from("192.168.1.*", "192.168.1.77"), Admit);
    assert_eq!(from("192.168.1.?", "192.168.1.77"), Refuse);
    assert_eq!(from("192.168.1.??", "192.168.1.77"), Admit);
    assert_eq!(from("*", "::1"), Admit);
    assert_eq!(from("fe80::*", "fe80::1"), Admit);
    // Without DNS a host name cannot match an address.
    assert_eq!(from("*.example.com", "10.0.0.1"), Refuse);
    assert_eq!(from("build.example.com", "10.0.0.1"), Refuse);
    assert_eq!(from("build.example.com,10.0.0.1", "10.0.0.1"), Admit);
}

#[test]
fn ipv4_mapped_peer_is_matched_as_ipv4() {
    let fs = ak_key1("from=\"127.0.0.0/8\"");
    accept(authorize(&fs, &key(1), ip("::ffff:127.0.0.1"), now()));
    assert_eq!(from("127.0.0.1", "::ffff:127.0.0.1"), Admit);
    assert_eq!(from("!127.0.0.1,*", "::ffff:127.0.0.1"), Refuse);
}

#[test]
fn malformed_from_refuses_the_entry() {
    for bad in [
        "10.0.0.1/8",
        "10.0.0.0/33",
        "10.0.0.0/abc",
        "10.0.0.0/",
        "300.1.1.1/8",
        "::1/129",
        "10.0.0.1,,*",
        "!",
    ] {
        match match_from(bad, ip("10.0.0.1")) {
            FromMatch::Invalid(_) => {}
            other => panic!("from=\"{bad}\" gave {other:?}"),
        }
    }
    let fs = ak_key1("from=\"10.0.0.1/8,*\"");
    let r = reject(authorize(&fs, &key(1), ip("10.0.0.1"), now()));
    assert!(
        r.starts_with("ak:1: from=\"10.0.0.1/8,*\" is invalid"),
        "{r}"
    );
    assert!(
        r.contains("host bits set (did you mean 10.0.0.0/8?)"),
        "{r}"
    );
}

#[test]
fn expiry_past_refuses_future_accepts() {
    let fs = ak_lines(
        "expiry-time=\"20200101Z\" {k}\nexpiry-time=\"20991231\" {k} later\n",
        1,
    );
    let p = accept(key1_from_localhost(&fs));
    assert_eq!(p.source, "ak:2");
    // A "now" past both: both entries refuse, each named.
    let far = SystemTime::UNIX_EPOCH + Duration::from_secs(4_200_000_000);
    let r = reject(authorize(&fs, &key(1), ip("127.0.0.1"), far));
    assert!(
        r.starts_with(
            "ak:1: entry expired at 2020-01-01 00:00:00 UTC; ak:2: entry expired at 2099-12-31"
        ),
        "{r}"
    );
}

#[test]
fn restrict_then_pty_and_no_flags() {
    let fs = ak_key1("restrict,pty");
    let p = accept(key1_from_localhost(&fs));
    assert!(p.pty);
    assert!(!p.port_forwarding && !p.agent_forwarding && !p.x11_forwarding && !p.user_rc);

    let fs = ak_key1("no-pty,no-agent-forwarding");
    let p = accept(key1_from_localhost(&fs));
    assert!(!p.pty && !p.agent_forwarding);
    assert!(p.port_forwarding && p.x11_forwarding && p.user_rc);

    let fs = ak_key1("restrict");
    let p = accept(key1_from_localhost(&fs));
    assert!(!p.pty && !p.port_forwarding && !p.agent_forwarding && !p.x11_forwarding && !p.user_rc);
}

#[test]
fn forced_command_and_environment() {
    let fs = [file(
        "ak",
        &format!(
            r#"command="echo \"hi\", #1",environment="LANG=C",environment="X=a b" {}"#,
            key_text(1)
        ),
    )];
    let p = accept(key1_from_localhost(&fs));
    assert_eq!(p.forced_command.as_deref(), Some(r#"echo "hi", #1"#));
    assert_eq!(
        p.environment,
        vec![("LANG".into(), "C".into()), ("X".into(), "a b".into())]
    );
}

#[test]
fn cert_authority_lines_never_match_a_plain_key() {
    let fs = ak_key1("cert-authority");
    let r = reject(key1_from_localhost(&fs));
    assert_eq!(r, "key not in ak");
    // The same key on a later plain line still works.
    let fs = ak_lines(
        "cert-authority,command=\"ca\" {k}\ncommand=\"plain\" {k}\n",
        1,
    );
    let p = accept(key1_from_localhost(&fs));
    assert_eq!(
        (p.forced_command.as_deref(), p.source.as_str()),
        (Some("plain"), "ak:2")
    );
}

#[test]
fn first_admitting_entry_wins_across_lines_and_files() {
    let a = file(
        "a",
        &format!(
            "from=\"10.0.0.0/8\",command=\"first\" {k}\ncommand=\"second\" {k}\ncommand=\"third\" {k}\n",
            k = key_text(1)
        ),
    );
    let b = file("b", &format!("command=\"fourth\" {}\n", key_text(1)));
    let fs = [a, b];
    let p = accept(authorize(&fs, &key(1), ip("10.1.1.1"), now()));
    assert_eq!(
        (p.forced_command.as_deref(), p.source.as_str()),
        (Some("first"), "a:1")
    );
    let p = accept(authorize(&fs, &key(1), ip("192.0.2.1"), now()));
    assert_eq!(
        (p.forced_command.as_deref(), p.source.as_str()),
        (Some("second"), "a:2")
    );
    let p = accept(authorize(&fs[1..], &key(1), ip("192.0.2.1"), now()));
    assert_eq!(p.source, "b:1");
}

#[test]
fn invalid_lines_are_skipped_not_fatal() {
    let fs = ak_lines("command=\"broken {k}\nnonsense\n{k}\n", 1);
    let p = accept(key1_from_localhost(&fs));
    assert_eq!(p.source, "ak:3");
    assert_eq!(fs[0].warnings().len(), 2);
}

/// alice logs in from `peer` with a certificate for `principal` signed by CA key `ca`.
fn ca_login(fs: &[AuthorizedKeys], ca: u8, principal: &str, peer: &str) -> AuthDecision {
    authorize_cert_authority(fs, &key(ca), &[principal.into()], "alice", ip(peer), now())
}

#[test]
fn cert_authority_principals() {
    let fs = ak_lines(
        "cert-authority,principals=\"ops,deploy\" {k}\ncert-authority,from=\"10.0.0.0/8\" {k}\n",
        7,
    );
    let p = accept(ca_login(&fs, 7, "deploy", "127.0.0.1"));
    assert_eq!(p.source, "ak:1");
    // Line 1 wants ops/deploy; line 2 wants the user name as a principal, from 10/8.
    let p = accept(ca_login(&fs, 7, "alice", "10.0.0.1"));
    assert_eq!(p.source, "ak:2");
    let r = reject(ca_login(&fs, 7, "alice", "127.0.0.1"));
    assert!(
        r.contains("ak:1: certificate principals [alice] not in principals=\"ops,deploy\""),
        "{r}"
    );
    assert!(
        r.contains("ak:2: from=\"10.0.0.0/8\" does not admit 127.0.0.1"),
        "{r}"
    );
    let r = reject(ca_login(&fs, 8, "alice", "10.0.0.1"));
    assert!(
        r.starts_with("CA SHA256:") && r.ends_with("not listed with cert-authority in ak"),
        "{r}"
    );
    // A plain line for the CA key is not a CA line.
    let fs = [file("ak", &format!("{}\n", key_text(7)))];
    reject(ca_login(&fs, 7, "alice", "127.0.0.1"));
}

#[test]
fn expand_tokens_like_sshd() {
    let home = Path::new("/home/alice");
    assert_eq!(
        expand_tokens("%h/.ssh/authorized_keys", "alice", home),
        "/home/alice/.ssh/authorized_keys"
    );
    assert_eq!(
        expand_tokens("/etc/msh/keys/%u", "alice", home),
        "/etc/msh/keys/alice"
    );
    assert_eq!(
        expand_tokens(".ssh/authorized_keys2", "alice", home),
        "/home/alice/.ssh/authorized_keys2"
    );
    assert_eq!(expand_tokens("/x/100%%/%u", "bob", home), "/x/100%/bob");
    assert!(try_expand_tokens("/x/%z", "bob", home)
        .unwrap_err()
        .to_string()
        .contains("unknown token %z"));
    assert!(try_expand_tokens("/x/%", "bob", home)
        .unwrap_err()
        .to_string()
        .contains("lone %"));
}
