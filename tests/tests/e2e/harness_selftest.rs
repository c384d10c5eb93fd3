//! The harness itself: a test that could not fail would hide broken fixtures.

use std::time::Duration;

use msh_tests::*;

#[test]
fn run_reports_exit_code_and_output() {
    let out = run(
        cmd("sh", ["-c", "cat; echo err >&2; exit 3"]),
        b"hello",
        Duration::from_secs(10),
    );
    assert_eq!(out.code(), Some(3));
    assert_eq!(out.stdout, b"hello");
    assert_eq!(out.stderr, "err\n");
}
