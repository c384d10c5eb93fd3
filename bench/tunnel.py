#!/usr/bin/env python3
"""Bytes through a TCP forward, for bench/compare.sh.

  tunnel.py serve PORT        on 127.0.0.1:PORT: a connection starting with b"u" is read to
                              EOF and answered b"ok"; one starting with b"d" + 8-byte size
                              gets that many zero bytes, then EOF.
  tunnel.py up PORT MIB       sends MIB MiB to PORT (through the forward), prints MB/s
  tunnel.py down PORT MIB     receives MIB MiB from PORT, prints MB/s (FAIL if short)
"""
import socket
import struct
import sys
import threading
import time

CHUNK = memoryview(bytes(1 << 20))


def handle(conn):
    with conn:
        mode = conn.recv(1)
        if mode == b"u":
            buf = bytearray(1 << 20)
            while conn.recv_into(buf):
                pass
            conn.sendall(b"ok")
        elif mode == b"d":
            hdr = b""
            while len(hdr) < 8:
                more = conn.recv(8 - len(hdr))
                if not more:
                    return
                hdr += more
            left = struct.unpack(">Q", hdr)[0]
            while left:
                n = min(left, len(CHUNK))
                conn.sendall(CHUNK[:n])
                left -= n


def serve(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(16)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def connect(port):
    # The forward's listener may not be up yet right after the client started.
    deadline = time.time() + 30
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=120)
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)


def up(port, size):
    c = connect(port)
    t0 = time.perf_counter()
    c.sendall(b"u")
    left = size
    while left:
        n = min(left, len(CHUNK))
        c.sendall(CHUNK[:n])
        left -= n
    c.shutdown(socket.SHUT_WR)
    ok = c.recv(2) == b"ok"
    dt = time.perf_counter() - t0
    print("%.0f" % (size / 1e6 / dt) if ok else "FAIL")


def down(port, size):
    c = connect(port)
    t0 = time.perf_counter()
    c.sendall(b"d" + struct.pack(">Q", size))
    got, buf = 0, bytearray(1 << 20)
    while True:
        n = c.recv_into(buf)
        if not n:
            break
        got += n
    dt = time.perf_counter() - t0
    print("%.0f" % (size / 1e6 / dt) if got == size else "FAIL")


if __name__ == "__main__":
    cmd, port = sys.argv[1], int(sys.argv[2])
    if cmd == "serve":
        serve(port)
    elif cmd == "up":
        up(port, int(sys.argv[3]) << 20)
    elif cmd == "down":
        down(port, int(sys.argv[3]) << 20)
    else:
        sys.exit(__doc__)
