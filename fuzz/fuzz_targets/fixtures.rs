//! Fixed keys and certificates for the fuzz targets, made by `fuzz/mkcorpus.sh` with
//! ssh-keygen and embedded at build time, plus the fixed host names, peers and clock the
//! targets check against. The seed corpora name these same keys (KRL entries, trusted CA,
//! authorized_keys lines), so mutated seeds keep reaching the "listed / trusted" branches.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use russh::keys::{Certificate, PrivateKey, PublicKey};

/// 2027-01-15: inside the fixture certificates' validity (2020..2040).
pub const NOW_SECS: u64 = 1_800_000_000;

pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW_SECS)
}

/// Peers the policies are asked about (values only: nothing is sent anywhere).
pub const PEERS: &[IpAddr] = &[
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9)),
    IpAddr::V6(Ipv6Addr::LOCALHOST),
    // ::ffff:10.1.2.3, which sshd matches as 10.1.2.3.
    IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0x0a01, 0x0203)),
];

pub struct Fixtures {
    pub ca: PrivateKey,
    pub ca_pub: PublicKey,
    pub user: PublicKey,
    pub host: PublicKey,
    pub ecdsa: PublicKey,
    pub rsa: PublicKey,
    pub user_cert: Certificate,
    pub host_cert: Certificate,
}

impl Fixtures {
    /// The plain public keys (CA included).
    pub fn plain_keys(&self) -> [&PublicKey; 5] {
        [&self.ca_pub, &self.user, &self.host, &self.ecdsa, &self.rsa]
    }
}

fn public(name: &str, text: &str) -> PublicKey {
    PublicKey::from_openssh(text.trim())
        .unwrap_or_else(|e| panic!("fuzz/fixtures/{name}: {e}; re-run fuzz/mkcorpus.sh"))
}

fn cert(name: &str, text: &str) -> Certificate {
    Certificate::from_openssh(text.trim())
        .unwrap_or_else(|e| panic!("fuzz/fixtures/{name}: {e}; re-run fuzz/mkcorpus.sh"))
}

pub fn get() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| Fixtures {
        ca: PrivateKey::from_openssh(include_str!("../fixtures/ca"))
            .unwrap_or_else(|e| panic!("fuzz/fixtures/ca: {e}; re-run fuzz/mkcorpus.sh")),
        ca_pub: public("ca.pub", include_str!("../fixtures/ca.pub")),
        user: public("user.pub", include_str!("../fixtures/user.pub")),
        host: public("host.pub", include_str!("../fixtures/host.pub")),
        ecdsa: public("ecdsa.pub", include_str!("../fixtures/ecdsa.pub")),
        rsa: public("rsa.pub", include_str!("../fixtures/rsa.pub")),
        user_cert: cert("user-cert.pub", include_str!("../fixtures/user-cert.pub")),
        host_cert: cert("host-cert.pub", include_str!("../fixtures/host-cert.pub")),
    })
}
