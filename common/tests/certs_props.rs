//! Property tests: the certificate-side parsers never panic on arbitrary input — validity
//! intervals, principals files, source-address lists and certificate text — and a parsed
//! validity interval is never empty.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

use jiff::tz::TimeZone;
use msh_common::certs::{self, policy, validity, PrincipalsFile};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn validity_never_panics_and_is_never_empty(
        spec in "([+-]?[0-9smhdwSMHDWxZUTC]{0,16}|always|forever)(:([+-]?[0-9smhdwSMHDWxZUTC]{0,16}|always|forever))?",
        now in any::<u64>(),
    ) {
        if let Ok(v) = validity::parse_in(&spec, now, &TimeZone::UTC) {
            prop_assert!(v.valid_after < v.valid_before, "{spec}: {v:?}");
        }
    }

    #[test]
    fn validity_arbitrary_text(spec in ".{0,40}") {
        let _ = validity::parse_in(&spec, 1_800_000_000, &TimeZone::UTC);
    }

    #[test]
    fn formatting_any_timestamp_never_panics(t in any::<u64>()) {
        let _ = validity::format_utc(t);
        let _ = validity::describe_in(t, t.saturating_add(1), &TimeZone::UTC);
    }

    #[test]
    fn principals_files_never_panic(text in "([a-z\"=, \t#]{0,20}\n){0,6}") {
        let pf = PrincipalsFile::parse(Path::new("p"), &text);
        for e in &pf.entries {
            prop_assert!(!e.principal.is_empty());
            prop_assert!(!e.principal.contains([' ', '\t']));
        }
    }

    #[test]
    fn source_address_lists_never_panic(list in "[0-9a-fA-F.:/,*!]{0,60}") {
        if let Ok(nets) = policy::parse_source_address(&list) {
            prop_assert_eq!(nets.len(), list.split(',').count());
        }
    }

    #[test]
    fn certificate_text_never_panics(text in "(ssh-ed25519-cert-v01@openssh.com )?[A-Za-z0-9+/=]{0,200}") {
        let _ = certs::parse(&text);
    }
}
