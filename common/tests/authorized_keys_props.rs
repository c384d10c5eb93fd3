//! Properties of the authorized_keys parser and from= matching: no input makes the parser
//! panic, a quoted option value comes back unchanged, and every address in a network is
//! admitted by it and refused by its negation.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use msh_common::authorized_keys::parse::{parse_options, quote_option_value};
use msh_common::authorized_keys::{match_from, parse, FromMatch, ParsedLine};
use proptest::prelude::*;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::PublicKey;

fn key_text() -> String {
    PublicKey::from(Ed25519Keypair::from_seed(&[5; 32]).public)
        .to_openssh()
        .unwrap()
}

/// Text made of the pieces that matter to the parser, so that random lines often get deep.
fn line_pieces() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("\"".to_string()),
        Just("\\\"".to_string()),
        Just("\\".to_string()),
        Just(",".to_string()),
        Just("=".to_string()),
        Just(" ".to_string()),
        Just("\t".to_string()),
        Just("#".to_string()),
        Just("command=".to_string()),
        Just("from=".to_string()),
        Just("environment=".to_string()),
        Just("expiry-time=".to_string()),
        Just("permitopen=".to_string()),
        Just("restrict".to_string()),
        Just("no-pty".to_string()),
        Just("ssh-ed25519".to_string()),
        Just("AAAAC3NzaC1lZDI1NTE5".to_string()),
        Just(key_text()),
        "[a-zA-Z0-9:/.*?!-]{0,6}",
        any::<char>().prop_map(|c| c.to_string()),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics_on_arbitrary_text(text in any::<String>()) {
        let lines = parse(&text);
        prop_assert_eq!(lines.len(), text.lines().count());
    }

    #[test]
    fn parser_never_panics_on_option_like_text(text in line_pieces(), text2 in line_pieces()) {
        let joined = format!("{text}\n{text2}");
        let lines = parse(&joined);
        prop_assert_eq!(lines.len(), joined.lines().count());
        for (i, l) in lines.iter().enumerate() {
            match l {
                ParsedLine::Key(k) => prop_assert_eq!(k.line, i + 1),
                ParsedLine::Invalid { line, reason } => {
                    prop_assert_eq!(*line, i + 1);
                    prop_assert!(!reason.is_empty());
                }
                ParsedLine::Other => {}
            }
        }
    }

    #[test]
    fn quoted_value_round_trips(value in any::<String>(), upper in any::<bool>()) {
        let Some(quoted) = quote_option_value(&value) else {
            // Only values that cannot be written are refused.
            prop_assert!(value.ends_with('\\') || value.contains(['\n', '\r']));
            return Ok(());
        };
        let name = if upper { "COMMAND" } else { "command" };
        let line = format!("no-pty,{name}={quoted},restrict {} comment", key_text());
        let parsed = parse(&line);
        prop_assert_eq!(parsed.len(), 1);
        match &parsed[0] {
            ParsedLine::Key(k) => {
                prop_assert_eq!(k.options.command.as_deref(), Some(value.as_str()));
                prop_assert!(k.options.no_pty && k.options.restrict);
                prop_assert_eq!(k.comment.as_str(), "comment");
            }
            other => prop_assert!(false, "{line:?} gave {other:?}"),
        }
        let field = format!("from={quoted} x");
        let (opts, rest) = parse_options(&field).unwrap();
        prop_assert_eq!(opts.from.as_deref(), Some(value.as_str()));
        prop_assert_eq!(rest, " x");
    }

    #[test]
    fn ipv4_network_admits_its_addresses(addr in any::<u32>(), len in 0u8..=32, host in any::<u32>()) {
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) };
        let net = addr & mask;
        let inside = IpAddr::V4(Ipv4Addr::from(net | (host & !mask)));
        let cidr = format!("{}/{len}", Ipv4Addr::from(net));
        prop_assert_eq!(match_from(&cidr, inside), FromMatch::Admit);
        prop_assert_eq!(match_from(&format!("!{cidr}"), inside), FromMatch::Refuse);
        prop_assert_eq!(match_from(&format!("*,!{cidr}"), inside), FromMatch::Refuse);
        // The same address as an IPv4-mapped IPv6 peer is matched as IPv4.
        let mapped = match inside {
            IpAddr::V4(v4) => IpAddr::V6(v4.to_ipv6_mapped()),
            v6 => v6,
        };
        prop_assert_eq!(match_from(&cidr, mapped), FromMatch::Admit);
        if len > 0 {
            // Flipping a network bit leaves the network.
            let outside = IpAddr::V4(Ipv4Addr::from((net | (host & !mask)) ^ (1 << (32 - u32::from(len)))));
            prop_assert_eq!(match_from(&cidr, outside), FromMatch::Refuse);
            prop_assert_eq!(match_from(&format!("!{cidr},*"), outside), FromMatch::Admit);
        }
    }

    #[test]
    fn ipv6_network_admits_its_addresses(addr in any::<u128>(), len in 0u8..=128, host in any::<u128>()) {
        let mask = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len)) };
        let net = addr & mask;
        let inside_raw = net | (host & !mask);
        let inside = IpAddr::V6(Ipv6Addr::from(inside_raw));
        // A mapped address is matched as IPv4 (as sshd does), so IPv6 rules do not apply.
        prop_assume!(Ipv6Addr::from(inside_raw).to_ipv4_mapped().is_none());
        let cidr = format!("{}/{len}", Ipv6Addr::from(net));
        prop_assert_eq!(match_from(&cidr, inside), FromMatch::Admit);
        prop_assert_eq!(match_from(&format!("!{cidr}"), inside), FromMatch::Refuse);
        prop_assert_eq!(match_from(&format!("*,!{cidr}"), inside), FromMatch::Refuse);
        if len > 0 {
            let outside_raw = inside_raw ^ (1u128 << (128 - u32::from(len)));
            prop_assume!(Ipv6Addr::from(outside_raw).to_ipv4_mapped().is_none());
            prop_assert_eq!(match_from(&cidr, IpAddr::V6(Ipv6Addr::from(outside_raw))), FromMatch::Refuse);
        }
    }
}
