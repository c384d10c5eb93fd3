//! `msh-keygen scan HOST[:PORT]`: like ssh-keyscan, one SSH handshake per host-key type
//! (ed25519, ECDSA, RSA), each offering only that type, so the server proves and reveals the
//! key of that type. Keys go to stdout as known_hosts lines (`host` or `[host]:port keytype
//! base64`), and to stderr the server's version line (`# host:port SSH-2.0-...`) and each
//! key's fingerprint. The handshake stops as soon as the key is seen: no authentication.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use msh_common::keys;
use russh::client;
use russh::keys::{Algorithm, PublicKey, PublicKeyOrCertificate};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::Report;

#[derive(Debug, Args)]
pub(super) struct ScanArgs {
    /// HOST, HOST:PORT, [HOST]:PORT (IPv6 as [::1]:2222).
    host: String,
    /// Port (overrides one given in HOST).
    #[arg(short = 'p', long = "port")]
    port: Option<u16>,
    /// Key types to ask for, comma-separated: ed25519, ecdsa, rsa.
    #[arg(short = 't', long = "types", default_value = "ed25519,ecdsa,rsa")]
    types: String,
    /// Seconds to wait for each connection and handshake.
    #[arg(long = "timeout", default_value_t = 5)]
    timeout: u64,
}

/// `HOST[:PORT]`, `[HOST]:PORT` or a bare IPv6 address.
fn split_host_port(spec: &str) -> anyhow::Result<(String, Option<u16>)> {
    let port_of = |p: &str| -> anyhow::Result<u16> {
        p.parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .with_context(|| format!("{spec}: {p:?} is not a port number (1-65535)"))
    };
    if let Some(rest) = spec.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            bail!("{spec}: missing `]` (write [HOST]:PORT)");
        };
        return match after {
            "" => Ok((host.to_string(), None)),
            a => match a.strip_prefix(':') {
                Some(p) => Ok((host.to_string(), Some(port_of(p)?))),
                None => bail!("{spec}: expected `:PORT` after `]`"),
            },
        };
    }
    match spec.matches(':').count() {
        0 => Ok((spec.to_string(), None)),
        1 => {
            let (h, p) = spec.split_once(':').unwrap_or((spec, ""));
            Ok((h.to_string(), Some(port_of(p)?)))
        }
        // A bare IPv6 address.
        _ => Ok((spec.to_string(), None)),
    }
}

/// The algorithms msh accepts (`crate::algorithms`) of the family `-t` names.
fn algorithms_for(t: &str) -> anyhow::Result<Vec<Algorithm>> {
    let family = |a: &Algorithm| match t {
        "ed25519" => matches!(a, Algorithm::Ed25519),
        "ecdsa" => matches!(a, Algorithm::Ecdsa { .. }),
        "rsa" => matches!(a, Algorithm::Rsa { .. }),
        _ => false,
    };
    let algs: Vec<Algorithm> = crate::algorithms::preferred_key_algorithms()
        .into_iter()
        .filter(family)
        .collect();
    if algs.is_empty() {
        bail!("unknown key type {t:?} for -t: use ed25519, ecdsa, rsa");
    }
    Ok(algs)
}

/// Takes the host key from the handshake and refuses to go on.
struct Grab {
    key: mpsc::UnboundedSender<PublicKey>,
}

impl client::Handler for Grab {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        if let PublicKeyOrCertificate::PublicKey { key, .. } = server_public_key {
            let _ = self.key.send(key.clone());
        }
        Ok(false)
    }
}

/// A TCP stream that remembers the first line the server sends (its version string), so it
/// can be printed as ssh-keyscan does; russh does not hand it to the handler.
struct BannerTap {
    inner: TcpStream,
    banner: Arc<Mutex<Vec<u8>>>,
    done: bool,
}

impl AsyncRead for BannerTap {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        if !this.done {
            let new = buf.filled().get(before..).unwrap_or_default();
            if let Ok(mut b) = this.banner.lock() {
                for &c in new {
                    // Lines before the version line are allowed (RFC 4253 4.2); keep the last.
                    if c == b'\n' {
                        if b.starts_with(b"SSH-") {
                            this.done = true;
                            break;
                        }
                        b.clear();
                    } else if b.len() < 255 {
                        b.push(c);
                    }
                }
            }
        }
        res
    }
}

impl AsyncWrite for BannerTap {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// What one handshake gave.
enum Outcome {
    Key {
        key: PublicKey,
        banner: String,
    },
    /// Connected, but the server has no key of this type (or the handshake failed).
    NoKey {
        banner: String,
        why: String,
    },
}

async fn scan_one(
    host: &str,
    port: u16,
    algs: Vec<Algorithm>,
    timeout: Duration,
) -> anyhow::Result<Outcome> {
    let target = format!(
        "{}:{port}",
        if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        }
    );
    let tcp = tokio::time::timeout(timeout, TcpStream::connect(&target))
        .await
        .with_context(|| format!("{target}: no connection within {}s", timeout.as_secs()))?
        .with_context(|| format!("cannot connect to {target}"))?;
    let _ = tcp.set_nodelay(true);
    let banner = Arc::new(Mutex::new(Vec::new()));
    let stream = BannerTap {
        inner: tcp,
        banner: banner.clone(),
        done: false,
    };
    let mut config = client::Config::default();
    config.preferred.key = algs.into();
    config.nodelay = true;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let res = tokio::time::timeout(
        timeout,
        client::connect_stream(Arc::new(config), stream, Grab { key: tx }),
    )
    .await;
    let banner = banner
        .lock()
        .map(|b| {
            String::from_utf8_lossy(&b)
                .trim_end_matches('\r')
                .to_string()
        })
        .unwrap_or_default();
    if let Ok(key) = rx.try_recv() {
        return Ok(Outcome::Key { key, banner });
    }
    let why = match res {
        Err(_) => format!("no answer within {}s", timeout.as_secs()),
        Ok(Err(e)) => e.to_string(),
        Ok(Ok(_)) => "the server accepted no key check".to_string(),
    };
    Ok(Outcome::NoKey { banner, why })
}

pub(super) fn run(a: ScanArgs) -> anyhow::Result<Report> {
    let (host, spec_port) = split_host_port(&a.host)?;
    let port = a.port.or(spec_port).unwrap_or(22);
    let timeout = Duration::from_secs(a.timeout.max(1));
    let mut plan = Vec::new();
    for t in a.types.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        plan.push((t.to_string(), algorithms_for(t)?));
    }
    if plan.is_empty() {
        bail!("-t names no key type: use ed25519, ecdsa, rsa");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let name = msh_common::known_hosts::host_key_name(&host, port);
    let shown = format!("{host}:{port}");
    let mut r = Report::default();
    let mut misses = Vec::new();
    for (t, algs) in plan {
        match rt.block_on(scan_one(&host, port, algs, timeout))? {
            Outcome::Key { key, banner } => {
                if !banner.is_empty() {
                    r.stderr.push_str(&format!("# {shown} {banner}\n"));
                }
                let line = keys::public_key_line(&PublicKey::new(key.key_data().clone(), ""))?;
                r.stdout.push_str(&format!("{name} {line}\n"));
                r.stderr
                    .push_str(&format!("{}\n", keys::fingerprint_line(&key, &name)));
            }
            Outcome::NoKey { banner, why } => {
                if !banner.is_empty() {
                    r.stderr.push_str(&format!("# {shown} {banner}\n"));
                }
                misses.push(format!("{t}: {why}"));
            }
        }
    }
    if r.stdout.is_empty() {
        bail!("{shown} showed no host key ({})", misses.join("; "));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn host_specs() {
        assert_eq!(split_host_port("h").unwrap(), ("h".into(), None));
        assert_eq!(split_host_port("h:2222").unwrap(), ("h".into(), Some(2222)));
        assert_eq!(
            split_host_port("[::1]:22").unwrap(),
            ("::1".into(), Some(22))
        );
        assert_eq!(split_host_port("::1").unwrap(), ("::1".into(), None));
        assert!(split_host_port("h:x").is_err());
        assert!(split_host_port("[h").is_err());
    }

    #[test]
    fn key_types_select_what_msh_accepts() {
        use russh::keys::{EcdsaCurve, HashAlg};
        assert_eq!(algorithms_for("ed25519").unwrap(), vec![Algorithm::Ed25519]);
        assert_eq!(algorithms_for("ecdsa").unwrap().len(), 3);
        assert_eq!(
            algorithms_for("ecdsa").unwrap()[0],
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP256
            }
        );
        // SHA-2 signatures only: no ssh-rsa (SHA-1), as msh itself.
        assert_eq!(
            algorithms_for("rsa").unwrap(),
            vec![
                Algorithm::Rsa {
                    hash: Some(HashAlg::Sha512)
                },
                Algorithm::Rsa {
                    hash: Some(HashAlg::Sha256)
                }
            ]
        );
        let e = algorithms_for("dsa").unwrap_err().to_string();
        assert!(e.contains("use ed25519, ecdsa, rsa"), "{e}");
    }
}
