//! Issue 4, part 3: no user enumeration. An unknown user and a known user with a key that is
//! not theirs get the same answers at the same stages (offer and signed request), and the
//! same answer time (russh's constant auth_rejection_time): measured over 30 tries each with
//! the raw probe client, medians compared with a wide bound (a property, not a benchmark).

use std::time::Duration;

use msh_tests::mshd::Mshd;
use msh_tests::ssh_keygen_ed25519;

#[test]
fn unknown_user_and_known_user_with_a_wrong_key_look_the_same() {
    let d = Mshd::builder("enum").audit_log().start();
    let wrong = ssh_keygen_ed25519(&d.dir, "not_authorized");
    let r = d.probe_as_user(
        "enum-timing",
        &["msh-no-such-user-x", &wrong.display().to_string(), "30"],
        Duration::from_secs(120),
    );
    let (k, u) = (&r["known"], &r["unknown"]);
    for stage in ["offer", "signed"] {
        let (km, um) = (
            k[format!("{stage}_median_ms")].as_f64().unwrap(),
            u[format!("{stage}_median_ms")].as_f64().unwrap(),
        );
        println!(
            "{stage}: known user, wrong key: median {km:.1} ms; unknown user: median {um:.1} ms"
        );
        // One answer, the same for both, at both stages: USERAUTH_FAILURE "publickey".
        let replies = &k[format!("{stage}_replies")];
        assert_eq!(replies, &u[format!("{stage}_replies")], "{stage}: {r}");
        assert_eq!(
            replies,
            &serde_json::json!([r#"{"methods": "publickey", "partial": false, "type": 51}"#]),
            "{stage}: {r}"
        );
        assert!(
            (km - um).abs() < 50.0,
            "{stage}: medians differ by {:.1} ms (known {km:.1}, unknown {um:.1})",
            (km - um).abs()
        );
    }
    // Both were really tried (the audit log names each user's rejections).
    let ev = d.audit_events();
    for user in [d.user.as_str(), "msh-no-such-user-x"] {
        let n = ev
            .iter()
            .filter(|e| e["event"] == "auth" && e["user"] == user && e["outcome"] == "rejected")
            .count();
        assert!(n >= 30, "{n} rejected attempts logged for {user}");
    }
}
