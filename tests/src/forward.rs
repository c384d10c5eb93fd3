//! Fixtures for the forwarding tests (msh's side in forward_client.rs, mshd's in
//! forward_server.rs): a TCP echo server on 127.0.0.1, the payload sent through a tunnel and
//! compared as it comes back, connections to a tunnel's listener while it is being set up,
//! a SOCKS client, and the port a `-R 0` was given.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::Proc;

/// What each tunnel carries each way.
pub const SIZE: usize = 300 * 1024;
/// How long a tunnel may stay silent, and how long its listener may take to come up.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// 127.0.0.1:`port`.
pub fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A TCP echo server on 127.0.0.1 (a thread per connection, each echoing until EOF and then
/// closing its side). The accept thread ends with the test process. Returns its address.
pub fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { return };
            std::thread::spawn(move || {
                let _ = c.set_read_timeout(Some(IO_TIMEOUT));
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if c.write_all(buf.get(..n).unwrap_or_default()).is_err() {
                                return;
                            }
                        }
                    }
                }
                let _ = c.shutdown(Shutdown::Write);
            });
        }
    });
    addr
}

/// `SIZE` bytes that do not repeat with a short period.
pub fn payload() -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..SIZE)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect()
}

/// Sends `data` over `s` (then EOF) while reading everything back until EOF (the writer on a
/// thread, so neither side waits for the other); returns what came back.
pub fn exchange(mut s: TcpStream, data: &[u8], what: &str) -> Vec<u8> {
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut w = s.try_clone().unwrap();
    let owned = data.to_vec();
    let writer = std::thread::spawn(move || {
        w.write_all(&owned).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    let mut back = Vec::new();
    s.read_to_end(&mut back)
        .unwrap_or_else(|e| panic!("{what}: reading the echo: {e} after {} bytes", back.len()));
    writer.join().unwrap();
    back
}

pub fn assert_echoed(back: &[u8], data: &[u8], what: &str) {
    assert_eq!(back.len(), data.len(), "{what}: echo length");
    assert!(back == data, "{what}: the echoed bytes differ");
}

/// Sends the `SIZE` payload through `s` to the echo server and asserts that all of it came
/// back unchanged.
pub fn roundtrip(s: TcpStream, what: &str) {
    let data = payload();
    assert_echoed(&exchange(s, &data, what), &data, what);
}

/// Connects to `addr`, retrying until something listens there (a forward's listener comes
/// up after the SSH handshake). With `owner` (the msh or ssh that makes the listener), fails
/// at once, with its log, when it exits first.
pub fn connect_retry(addr: SocketAddr, mut owner: Option<&mut Proc>) -> TcpStream {
    let start = Instant::now();
    loop {
        if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            return s;
        }
        let log = match owner.as_deref_mut() {
            Some(p) => {
                if let Some(st) = p.wait_timeout(Duration::from_millis(0)) {
                    panic!(
                        "{} exited ({st}) before listening on {addr}; log:\n{}",
                        p.name,
                        p.log_text()
                    );
                }
                p.log_text()
            }
            None => String::new(),
        };
        assert!(
            start.elapsed() < IO_TIMEOUT,
            "nothing listens on {addr}; log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A SOCKS request for 127.0.0.1:`port` in `version` ("4", "4a" by name, "5" by address,
/// "5-name" by name; no authentication) on a fresh connection to the proxy at `proxy`;
/// returns the stream once granted.
pub fn socks_connect(
    proxy: SocketAddr,
    version: &str,
    port: u16,
    owner: Option<&mut Proc>,
) -> TcpStream {
    let mut s = connect_retry(proxy, owner);
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let pb = port.to_be_bytes();
    match version {
        "4" | "4a" => {
            let mut req = vec![4, 1, pb[0], pb[1]];
            if version == "4" {
                req.extend_from_slice(&[127, 0, 0, 1]);
                req.extend_from_slice(b"me\0");
            } else {
                req.extend_from_slice(&[0, 0, 0, 1]);
                req.extend_from_slice(b"me\0localhost\0");
            }
            s.write_all(&req).unwrap();
            let mut reply = [0u8; 8];
            s.read_exact(&mut reply).unwrap();
            assert_eq!(reply[1], 0x5a, "SOCKS{version} request granted");
        }
        _ => {
            s.write_all(&[5, 1, 0]).unwrap();
            let mut m = [0u8; 2];
            s.read_exact(&mut m).unwrap();
            assert_eq!(m, [5, 0], "no-authentication method chosen");
            let mut req = vec![5, 1, 0];
            if version == "5-name" {
                req.push(3);
                req.push(9);
                req.extend_from_slice(b"localhost");
            } else {
                req.extend_from_slice(&[1, 127, 0, 0, 1]);
            }
            req.extend_from_slice(&pb);
            s.write_all(&req).unwrap();
            let mut reply = [0u8; 10];
            s.read_exact(&mut reply).unwrap();
            assert_eq!(reply[1], 0, "SOCKS5 request granted: {reply:?}");
        }
    }
    s
}

/// The port of `-R 0:...:TARGET`, from the line msh and ssh print alike once the server
/// allocated it: "Allocated port N for remote forward to TARGET". Waits for it in `p`'s log.
pub fn allocated_port(p: &Proc, target: &str) -> u16 {
    let needle = format!(" for remote forward to {target}");
    let log = p.wait_for_log(&needle, IO_TIMEOUT);
    let line = log.lines().find(|l| l.contains(&needle)).unwrap();
    line.split("Allocated port ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"))
}
