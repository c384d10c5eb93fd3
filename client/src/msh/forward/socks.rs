//! The SOCKS side of `-D` (and of `-R [bind:]port`): SOCKS4, SOCKS4a and SOCKS5 with the
//! CONNECT command only and no authentication, as OpenSSH's channels.c serves them. A pure
//! state machine over the bytes received so far; the callers do the I/O.

use std::net::{Ipv4Addr, Ipv6Addr};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The most a handshake may take before the destination is known: a SOCKS4a request with a
/// 255-byte user id and host name fits; anything longer is an abuse of the listener.
pub(super) const MAX_HANDSHAKE: usize = 1024;

/// Which protocol the client spoke, for the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Version {
    V4,
    V5,
}

/// What the handshake needs next.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// Not enough bytes yet.
    More,
    /// Send `reply`, drop the first `consumed` bytes, and go on.
    Reply { reply: Vec<u8>, consumed: usize },
    /// The client wants `host:port`; the first `consumed` bytes were the handshake (what
    /// follows is already data for the destination). Answer with [`reply`].
    Connect {
        version: Version,
        host: String,
        port: u16,
        consumed: usize,
    },
    /// Refused: send `reply` (if not empty) and close. `reason` says why, for the log.
    Fail { reply: Vec<u8>, reason: String },
}

#[derive(Debug, Default)]
enum Stage {
    #[default]
    Start,
    /// SOCKS5 method chosen, waiting for the request.
    Request5,
}

/// One client's handshake.
#[derive(Debug, Default)]
pub(super) struct Handshake {
    stage: Stage,
}

const V4_REJECTED: [u8; 8] = [0, 0x5b, 0, 0, 0, 0, 0, 0];

fn v5_reply(code: u8) -> Vec<u8> {
    vec![5, code, 0, 1, 0, 0, 0, 0, 0, 0]
}

/// The answer once the connection to the destination succeeded (`ok`) or failed.
pub(super) fn reply(version: Version, ok: bool) -> Vec<u8> {
    match (version, ok) {
        (Version::V4, true) => vec![0, 0x5a, 0, 0, 0, 0, 0, 0],
        (Version::V4, false) => V4_REJECTED.to_vec(),
        (Version::V5, true) => v5_reply(0),
        // 0x05: connection refused; OpenSSH cannot tell why a channel open failed either.
        (Version::V5, false) => v5_reply(5),
    }
}

/// A NUL-terminated string in `buf` from `start`: the string and the index after the NUL.
fn cstr(buf: &[u8], start: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(start..)?;
    let end = rest.iter().position(|b| *b == 0)?;
    Some((rest.get(..end)?, start + end + 1))
}

fn host_name(raw: &[u8]) -> Result<String, String> {
    let name = std::str::from_utf8(raw).map_err(|_| "host name is not UTF-8".to_string())?;
    if name.is_empty() || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("host name is empty or holds control characters".to_string());
    }
    Ok(name.to_string())
}

impl Handshake {
    /// Looks at everything received and not yet consumed.
    pub(super) fn feed(&mut self, buf: &[u8]) -> Step {
        let step = match self.stage {
            Stage::Start => match buf.first() {
                None => Step::More,
                Some(4) => Self::v4(buf),
                Some(5) => self.greeting5(buf),
                Some(v) => Step::Fail {
                    reply: Vec::new(),
                    reason: format!("not a SOCKS4 or SOCKS5 client (first byte {v:#04x})"),
                },
            },
            Stage::Request5 => Self::request5(buf),
        };
        match step {
            Step::More if buf.len() >= MAX_HANDSHAKE => Step::Fail {
                reply: Vec::new(),
                reason: format!("handshake longer than {MAX_HANDSHAKE} bytes"),
            },
            other => other,
        }
    }

    fn v4(buf: &[u8]) -> Step {
        // VN CD DSTPORT(2) DSTIP(4) USERID NUL [HOST NUL]
        let Some(head) = buf.get(..8) else {
            return Step::More;
        };
        let [_, cmd, p1, p2, a, b, c, d] = *head else {
            return Step::More;
        };
        let Some((_user, after_user)) = cstr(buf, 8) else {
            return Step::More;
        };
        if cmd != 1 {
            return Step::Fail {
                reply: V4_REJECTED.to_vec(),
                reason: format!("SOCKS4 command {cmd} (only CONNECT is supported)"),
            };
        }
        let port = u16::from_be_bytes([p1, p2]);
        // SOCKS4a: 0.0.0.x with x != 0 means a host name follows the user id.
        let (host, consumed) = if a == 0 && b == 0 && c == 0 && d != 0 {
            let Some((name, end)) = cstr(buf, after_user) else {
                return Step::More;
            };
            match host_name(name) {
                Ok(h) => (h, end),
                Err(reason) => {
                    return Step::Fail {
                        reply: V4_REJECTED.to_vec(),
                        reason,
                    }
                }
            }
        } else {
            (Ipv4Addr::new(a, b, c, d).to_string(), after_user)
        };
        Step::Connect {
            version: Version::V4,
            host,
            port,
            consumed,
        }
    }

    fn greeting5(&mut self, buf: &[u8]) -> Step {
        let Some(&n) = buf.get(1) else {
            return Step::More;
        };
        let end = 2 + usize::from(n);
        let Some(methods) = buf.get(2..end) else {
            return Step::More;
        };
        if !methods.contains(&0) {
            return Step::Fail {
                reply: vec![5, 0xff],
                reason: "SOCKS5 client offers no method without authentication".to_string(),
            };
        }
        self.stage = Stage::Request5;
        Step::Reply {
            reply: vec![5, 0],
            consumed: end,
        }
    }

    fn request5(buf: &[u8]) -> Step {
        // VER CMD RSV ATYP DST.ADDR DST.PORT(2)
        let Some(&[ver, cmd, _, atyp]) = buf.get(..4) else {
            return Step::More;
        };
        if ver != 5 {
            return Step::Fail {
                reply: v5_reply(1),
                reason: format!("SOCKS5 request with version {ver}"),
            };
        }
        let (host, addr_end) = match atyp {
            1 => {
                let Some(&[a, b, c, d]) = buf.get(4..8) else {
                    return Step::More;
                };
                (Ipv4Addr::new(a, b, c, d).to_string(), 8)
            }
            3 => {
                let Some(&len) = buf.get(4) else {
                    return Step::More;
                };
                let end = 5 + usize::from(len);
                let Some(raw) = buf.get(5..end) else {
                    return Step::More;
                };
                match host_name(raw) {
                    Ok(h) => (h, end),
                    Err(reason) => {
                        return Step::Fail {
                            reply: v5_reply(1),
                            reason,
                        }
                    }
                }
            }
            4 => {
                let Some(raw) = buf.get(4..20) else {
                    return Step::More;
                };
                let mut octets = [0u8; 16];
                octets.copy_from_slice(raw);
                (Ipv6Addr::from(octets).to_string(), 20)
            }
            other => {
                return Step::Fail {
                    reply: v5_reply(8),
                    reason: format!("SOCKS5 address type {other}"),
                }
            }
        };
        let Some(&[p1, p2]) = buf.get(addr_end..addr_end + 2) else {
            return Step::More;
        };
        if cmd != 1 {
            return Step::Fail {
                reply: v5_reply(7),
                reason: format!("SOCKS5 command {cmd} (only CONNECT is supported)"),
            };
        }
        Step::Connect {
            version: Version::V5,
            host,
            port: u16::from_be_bytes([p1, p2]),
            consumed: addr_end + 2,
        }
    }
}

/// Runs the handshake on `s` up to the destination: the SOCKS version, host, port, and
/// any bytes the client sent after its request. Err says why the client was refused (it has
/// been told, where SOCKS has a way to).
pub(super) async fn handshake<S>(s: &mut S) -> Result<(Version, String, u16, Vec<u8>), String>
where
    S: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let mut hs = Handshake::default();
    let mut buf = Vec::new();
    loop {
        match hs.feed(&buf) {
            Step::More => {
                let mut chunk = [0u8; 512];
                let n = s.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
                if n == 0 {
                    return Err("the client closed the connection during the handshake".into());
                }
                buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
            }
            Step::Reply { reply, consumed } => {
                s.write_all(&reply)
                    .await
                    .map_err(|e| format!("write: {e}"))?;
                buf.drain(..consumed.min(buf.len()));
            }
            Step::Connect {
                version,
                host,
                port,
                consumed,
            } => {
                buf.drain(..consumed.min(buf.len()));
                return Ok((version, host, port, buf));
            }
            Step::Fail { reply, reason } => {
                if !reply.is_empty() {
                    let _ = s.write_all(&reply).await;
                }
                return Err(reason);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `bytes` one at a time, as a slow client would send them.
    fn trickle(h: &mut Handshake, bytes: &[u8]) -> Step {
        for n in 1..bytes.len() {
            assert_eq!(h.feed(&bytes[..n]), Step::More, "after {n} bytes");
        }
        h.feed(bytes)
    }

    #[test]
    fn socks4_and_4a() {
        let mut h = Handshake::default();
        let req = [4, 1, 0, 80, 127, 0, 0, 1, b'u', 0, b'x'];
        assert_eq!(
            h.feed(&req),
            Step::Connect {
                version: Version::V4,
                host: "127.0.0.1".into(),
                port: 80,
                consumed: 10
            }
        );
        let mut h = Handshake::default();
        let mut req = vec![4, 1, 0x1f, 0x90, 0, 0, 0, 9, 0];
        req.extend_from_slice(b"db.internal\0");
        assert_eq!(
            trickle(&mut h, &req),
            Step::Connect {
                version: Version::V4,
                host: "db.internal".into(),
                port: 8080,
                consumed: req.len()
            }
        );
        let mut h = Handshake::default();
        assert!(matches!(
            h.feed(&[4, 2, 0, 80, 1, 2, 3, 4, 0]),
            Step::Fail { .. }
        ));
    }

    #[test]
    fn socks5_connect_by_name_and_addresses() {
        let mut h = Handshake::default();
        assert_eq!(
            trickle(&mut h, &[5, 2, 2, 0]),
            Step::Reply {
                reply: vec![5, 0],
                consumed: 4
            }
        );
        let mut req = vec![5, 1, 0, 3, 9];
        req.extend_from_slice(b"localhost");
        req.extend_from_slice(&[0, 22]);
        assert_eq!(
            trickle(&mut h, &req),
            Step::Connect {
                version: Version::V5,
                host: "localhost".into(),
                port: 22,
                consumed: req.len()
            }
        );
        let mut h = Handshake::default();
        h.feed(&[5, 1, 0]);
        let mut req = vec![5, 1, 0, 4];
        req.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        req.extend_from_slice(&[1, 0]);
        assert!(matches!(h.feed(&req), Step::Connect { ref host, port: 256, .. } if host == "::1"));
    }

    #[test]
    fn socks5_refusals() {
        let mut h = Handshake::default();
        assert!(matches!(h.feed(&[5, 1, 2]), Step::Fail { ref reply, .. } if reply == &[5, 0xff]));
        let mut h = Handshake::default();
        h.feed(&[5, 1, 0]);
        // BIND is not supported.
        assert!(matches!(
            h.feed(&[5, 2, 0, 1, 1, 2, 3, 4, 0, 80]),
            Step::Fail { ref reply, .. } if reply.get(1) == Some(&7)
        ));
        let mut h = Handshake::default();
        assert!(matches!(h.feed(&[0x47, 0x45]), Step::Fail { .. }));
        let mut h = Handshake::default();
        let long = [&[4u8, 1, 0, 80, 1, 2, 3, 4][..], &[b'u'; MAX_HANDSHAKE]].concat();
        assert!(matches!(h.feed(&long), Step::Fail { .. }));
        let mut h = Handshake::default();
        h.feed(&[5, 1, 0]);
        let mut req = vec![5, 1, 0, 3, 4];
        req.extend_from_slice(b"a\x1bb ");
        req.extend_from_slice(&[0, 22]);
        assert!(matches!(h.feed(&req), Step::Fail { .. }));
    }
}
