//! The transport as mshd offers it: the russh server configuration (algorithms best first,
//! no SHA-1, no CBC, no NIST curves; timeouts, keepalives and window sizes) for a set of
//! settings and host keys. Built at start and at each SIGHUP, into a [`crate::daemon::Generation`].
#![forbid(unsafe_code)]

use std::time::Duration;

use russh::keys::{Certificate, PrivateKey};
use russh::{MethodKind, MethodSet};

use crate::config::Settings;

/// The russh server configuration for these settings and host keys.
pub(crate) fn russh_config(
    settings: &Settings,
    keys: Vec<PrivateKey>,
    certificates: Vec<Certificate>,
) -> russh::server::Config {
    use russh::keys::Algorithm;
    let mut preferred = russh::Preferred::default();
    // No SHA-1 signatures: drop `ssh-rsa` from the accepted key algorithms.
    let key_algos: Vec<Algorithm> = preferred
        .key
        .iter()
        .filter(|a| **a != Algorithm::Rsa { hash: None })
        .cloned()
        .collect();
    preferred.key = key_algos.into();
    preferred.kex = kex_algorithms(settings.post_quantum_only).into();
    // Encrypt-then-MAC only (the AEAD ciphers ignore the MAC): the plain hmac-sha2-* modes
    // MAC the plaintext (encrypt-and-MAC). SHA-1 MACs are not in russh's list at all.
    preferred.mac = vec![russh::mac::HMAC_SHA512_ETM, russh::mac::HMAC_SHA256_ETM].into();
    preferred.cipher = vec![
        russh::cipher::CHACHA20_POLY1305,
        russh::cipher::AES_256_GCM,
        russh::cipher::AES_256_CTR,
        russh::cipher::AES_192_CTR,
        russh::cipher::AES_128_CTR,
    ]
    .into();
    // No compression: zlib before authentication is attack surface for no gain on the links
    // msh is for (OpenSSH's server offers only the delayed zlib@openssh.com).
    preferred.compression = vec![russh::compression::NONE].into();
    russh::server::Config {
        server_id: russh::SshId::Standard(
            concat!("SSH-2.0-mshd_", env!("CARGO_PKG_VERSION")).into(),
        ),
        methods: MethodSet::from(&[MethodKind::PublicKey][..]),
        // Constant-time rejection, but no delay on OpenSSH's initial `none` probe.
        auth_rejection_time: Duration::from_millis(200),
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys,
        certificates,
        // mshd counts failures itself as sshd does (Conn::tally) and disconnects at
        // max_auth_tries; russh's own count (which includes the initial `none` and requests
        // russh refuses without asking mshd, such as a bad signature) stays as a backstop,
        // one higher for that `none`.
        max_auth_attempts: settings.max_auth_tries as usize + 1,
        // No idle cut-off: an idle shell is legitimate (OpenSSH has none by default). Dead
        // peers are found by keepalives (3 unanswered, one a minute), and the pre-auth phase
        // is bounded by login_grace_time in `connection::run`.
        inactivity_timeout: None,
        keepalive_interval: Some(Duration::from_secs(60)),
        keepalive_max: 3,
        // Nagle + delayed ACK cost ~40 ms per handshake round trip (NOTES-russh).
        nodelay: true,
        // An 8 MiB receive window lets an upload run at full speed over loopback and LAN
        // (a small window caps throughput at window/RTT). It is also what bounds the memory a
        // channel's unread input takes: the patched russh replenishes it only as the session
        // consumes (vendor/russh/PATCHES.md).
        window_size: 8 * 1024 * 1024,
        // 32 KiB + headers is what every SSH implementation must accept (RFC 4253 §6.1);
        // OpenSSH uses the same, and larger packets give no measurable gain.
        maximum_packet_size: 32768,
        preferred,
        ..Default::default()
    }
}

/// Key exchanges offered, best first: hybrid post-quantum ML-KEM-768 + X25519, then (unless
/// `post_quantum_only`) classical X25519 for clients without ML-KEM (OpenSSH < 9.9). No
/// finite-field DH (slow, and group14's 2048-bit modulus is weak) and no NIST curves. The
/// `ext-info-s` and strict-kex (Terrapin countermeasure) markers are always advertised.
pub(crate) fn kex_algorithms(post_quantum_only: bool) -> Vec<russh::kex::Name> {
    use russh::kex;
    let mut v = vec![kex::MLKEM768X25519_SHA256];
    if !post_quantum_only {
        v.push(kex::CURVE25519);
        v.push(kex::CURVE25519_PRE_RFC_8731);
    }
    v.extend([
        kex::EXTENSION_SUPPORT_AS_SERVER,
        kex::EXTENSION_OPENSSH_STRICT_KEX_AS_SERVER,
    ]);
    v
}

#[cfg(test)]
mod tests {
    #[test]
    fn post_quantum_only_leaves_only_mlkem_and_the_markers() {
        let names = |pq| -> Vec<String> {
            super::kex_algorithms(pq)
                .iter()
                .map(|n| AsRef::<str>::as_ref(n).to_string())
                .collect()
        };
        let all = names(false);
        assert_eq!(all[0], "mlkem768x25519-sha256");
        assert!(all.contains(&"curve25519-sha256".to_string()));
        assert!(all.contains(&"kex-strict-s-v00@openssh.com".to_string()));
        let pq = names(true);
        assert!(!pq.iter().any(|n| n.starts_with("curve25519")), "{pq:?}");
        assert!(pq.contains(&"kex-strict-s-v00@openssh.com".to_string()));
    }
}
