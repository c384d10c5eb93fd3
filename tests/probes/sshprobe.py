#!/usr/bin/env python3
"""Wire-level SSH probes for mshd's hardening tests (tests/tests/e2e/hardening_*.rs).

Each subcommand plays a misbehaving or measuring client against HOST PORT and prints ONE JSON
object on stdout describing what the server did; the Rust test decides pass/fail. Runs in the
venv scripts/test.sh makes (target/probe-venv, paramiko >= 3.4).

Two layers:
- raw socket (kex-level probes: Terrapin, all-zero curve25519): hand-made cleartext packets;
- paramiko Transport after key exchange, with every auth/connection-layer reply captured into a
  queue instead of paramiko's own handlers, so the probe can send messages out of order.
"""
import json
import os
import queue
import socket
import statistics
import struct
import sys
import threading
import time

# ---------------------------------------------------------------- raw cleartext packets


def ssh_string(b):
    if isinstance(b, str):
        b = b.encode()
    return struct.pack(">I", len(b)) + b


def packet(payload):
    block = 8
    pad = block - ((5 + len(payload)) % block)
    if pad < 4:
        pad += block
    return struct.pack(">IB", 1 + len(payload) + pad, pad) + payload + os.urandom(pad)


def kexinit(kex):
    p = bytes([20]) + os.urandom(16)
    for names in [
        kex,
        "ssh-ed25519",
        "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-ctr",
        "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-ctr",
        "hmac-sha2-256-etm@openssh.com",
        "hmac-sha2-256-etm@openssh.com",
        "none",
        "none",
        "",
        "",
    ]:
        p += ssh_string(names)
    return p + b"\x00" + struct.pack(">I", 0)


class Raw:
    def __init__(self, host, port, timeout=5.0):
        self.s = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.s.sendall(b"SSH-2.0-mshprobe_1.0\r\n")
        self.server_version = self._line()

    def _fill(self, n):
        while len(self.buf) < n:
            d = self.s.recv(65536)
            if not d:
                raise EOFError("connection closed by server")
            self.buf += d

    def _line(self):
        while True:
            self._fill(1)
            i = self.buf.find(b"\n")
            if i >= 0:
                line, self.buf = self.buf[: i + 1], self.buf[i + 1 :]
                if line.startswith(b"SSH-"):
                    return line.decode(errors="replace").strip()
            else:
                self._fill(len(self.buf) + 1)

    def send(self, payload):
        self.s.sendall(packet(payload))

    def recv(self):
        self._fill(5)
        length, _pad = struct.unpack(">IB", self.buf[:5])
        self._fill(4 + length)
        pkt, self.buf = self.buf[: 4 + length], self.buf[4 + length :]
        padlen = pkt[4]
        return pkt[5 : 4 + length - padlen]


def x25519_public(zero):
    if zero:
        return bytes(32)
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives import serialization

    k = X25519PrivateKey.generate()
    return k.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def kex_probe(host, port, strict, ignore_first, zero_point):
    """KEXINIT (curve25519-sha256 only) + KEX_ECDH_INIT; optionally an IGNORE first (the
    Terrapin prefix) and/or an all-zero public value. Reports the message types the server
    sent and whether it closed the connection."""
    r = Raw(host, port)
    kex = "curve25519-sha256" + (",kex-strict-c-v00@openssh.com" if strict else "")
    if ignore_first:
        r.send(bytes([2]) + ssh_string(b"terrapin"))
    r.send(kexinit(kex))
    r.send(bytes([30]) + ssh_string(x25519_public(zero_point)))
    got, closed, disconnect = [], False, None
    r.s.settimeout(3.0)
    try:
        while True:
            p = r.recv()
            got.append(p[0])
            if p[0] == 1:
                code = struct.unpack(">I", p[1:5])[0]
                (n,) = struct.unpack(">I", p[5:9])
                disconnect = {"code": code, "text": p[9 : 9 + n].decode(errors="replace")}
            if p[0] == 31:  # KEX_ECDH_REPLY: the exchange went on
                break
    except EOFError:
        closed = True
    except (socket.timeout, ConnectionResetError):
        closed = isinstance(sys.exc_info()[1], ConnectionResetError)
    return {
        "server_version": r.server_version,
        "received": got,
        "ecdh_reply": 31 in got,
        "closed": closed,
        "disconnect": disconnect,
    }


# ---------------------------------------------------------------- paramiko, after kex


def transport(host, port):
    import paramiko

    sock = socket.create_connection((host, port), timeout=10)
    t = paramiko.Transport(sock)
    # A test may present another client version line (it is client-controlled text).
    if os.environ.get("MSHPROBE_CLIENT_VERSION"):
        t.local_version = os.environ["MSHPROBE_CLIENT_VERSION"]
    t.start_client(timeout=10)
    q = queue.Queue()
    # Capture every auth / connection-layer message instead of paramiko's own handling, so
    # nothing is answered behind the probe's back.
    for ptype in [6, 51, 52, 53, 60, 80, 81, 82] + list(range(90, 101)):
        t._handler_table[ptype] = (lambda p: (lambda m: q.put((p, m))))(ptype)
    return t, q


def msg(*parts):
    import paramiko

    m = paramiko.Message()
    for kind, v in parts:
        getattr(m, "add_" + kind)(v)
    return m


def collect(t, q, secs):
    """Messages received within `secs` (types only), and whether the transport died."""
    got = []
    end = time.time() + secs
    while time.time() < end:
        try:
            p, _m = q.get(timeout=max(0.01, end - time.time()))
            got.append(p)
        except queue.Empty:
            pass
    return got, not t.is_active()


def wait_for(q, want, secs=10.0):
    end = time.time() + secs
    while time.time() < end:
        try:
            p, m = q.get(timeout=max(0.01, end - time.time()))
        except queue.Empty:
            break
        if p in want:
            return p, m
    return None, None


def service_userauth(t, q):
    t._send_message(msg(("byte", bytes([5])), ("string", "ssh-userauth")))
    p, _ = wait_for(q, (6,))
    return p == 6


def send_channel_open_session(t):
    # CHANNEL_OPEN "session", sender channel 0, window 1 MiB, packets up to 32 KiB.
    t._send_message(
        msg(("byte", bytes([90])), ("string", "session"), ("int", 0), ("int", 1 << 20), ("int", 32768))
    )


def channel_request(t, chan, kind, *strings):
    # CHANNEL_REQUEST `kind` with want-reply on `chan`, its arguments all strings.
    t._send_message(
        msg(("byte", bytes([98])), ("int", chan), ("string", kind), ("boolean", True),
            *[("string", x) for x in strings])
    )


def open_session(t, q):
    """Opens a session channel; the server's channel number, or None if it refused."""
    send_channel_open_session(t)
    p, m = wait_for(q, (91, 92), 10)
    if p != 91:
        return None
    m.get_int()
    return m.get_int()


def read_session(t, q, stop=(97,), secs=10):
    """Channel data until a message of a type in `stop` (or `secs` pass, or the connection
    drops): (stdout bytes, exit status or None)."""
    out = b""
    status = None
    end = time.time() + secs
    while time.time() < end:
        try:
            p, m = q.get(timeout=0.2)
        except queue.Empty:
            if not t.is_active():
                break
            continue
        if p == 94:
            m.get_int()
            out += m.get_binary()
        elif p == 98:
            m.get_int()
            if m.get_text() == "exit-status":
                m.get_boolean()
                status = m.get_int()
        elif p in stop:
            break
    return out, status


def channel_open_exec(t, command):
    # CHANNEL_OPEN "session" (sender channel 0), then exec on channel 0 whether or not the
    # open was confirmed (what the CVE-2025-32433 exploit does).
    send_channel_open_session(t)
    channel_request(t, 0, "exec", command)


def global_request(t):
    t._send_message(
        msg(("byte", bytes([80])), ("string", "tcpip-forward"), ("boolean", True), ("string", "127.0.0.1"), ("int", 0))
    )


def direct_tcpip_open(t, port):
    # CHANNEL_OPEN "direct-tcpip" (sender channel 1) to 127.0.0.1:PORT (a local forward).
    t._send_message(
        msg(
            ("byte", bytes([90])),
            ("string", "direct-tcpip"),
            ("int", 1),
            ("int", 1 << 20),
            ("int", 32768),
            ("string", "127.0.0.1"),
            ("int", port),
            ("string", "127.0.0.1"),
            ("int", 40000),
        )
    )


def load_key(path):
    import paramiko

    return paramiko.Ed25519Key.from_private_key_file(path)


def userauth_pubkey(t, user, key, sign):
    """One publickey USERAUTH_REQUEST: an offer (no signature) or a signed request."""
    import paramiko

    algo = key.get_name()
    m = paramiko.Message()
    m.add_byte(bytes([50]))
    m.add_string(user)
    m.add_string("ssh-connection")
    m.add_string("publickey")
    m.add_boolean(sign)
    m.add_string(algo)
    m.add_string(key.asbytes())
    if sign:
        blob = paramiko.Message()
        blob.add_string(t.session_id)
        blob.add_byte(bytes([50]))
        blob.add_string(user)
        blob.add_string("ssh-connection")
        blob.add_string("publickey")
        blob.add_boolean(True)
        blob.add_string(algo)
        blob.add_string(key.asbytes())
        m.add_string(key.sign_ssh_data(blob.asbytes(), algo))
    t._send_message(m)


def auth_reply(q, secs=10.0):
    """(type, detail) of the answer to an auth request: 51 with its method list, 52, 60."""
    p, m = wait_for(q, (51, 52, 60), secs)
    if p == 51:
        return {"type": 51, "methods": m.get_text(), "partial": m.get_boolean()}
    return {"type": p}


def signed_login(host, port, user, keyfile):
    """Connects, asks for the userauth service and sends one signed publickey request:
    (transport, queue, the server's answer)."""
    t, q = transport(host, int(port))
    service_userauth(t, q)
    userauth_pubkey(t, user, load_key(keyfile), sign=True)
    return t, q, auth_reply(q)


def exec_after_auth(t, q, command):
    send_channel_open_session(t)
    p, m = wait_for(q, (91, 92), 10)
    if p != 91:
        return {"opened": False, "reply": p}
    m.get_int()
    server_chan = m.get_int()
    channel_request(t, server_chan, "exec", command)
    out, status = read_session(t, q)
    return {"opened": True, "stdout": out.decode(errors="replace"), "exit_status": status}


# ---------------------------------------------------------------- subcommands


def cmd_kex(a):
    # kex HOST PORT strict|nonstrict ignore|noignore zero|valid
    return kex_probe(a[0], int(a[1]), a[2] == "strict", a[3] == "ignore", a[4] == "zero")


def cmd_preauth_channel(a):
    # preauth-channel HOST PORT COMMAND: channel open + exec, a tcpip-forward global request
    # and a direct-tcpip open (to the server's own port), before any auth
    t, q = transport(a[0], int(a[1]))
    channel_open_exec(t, a[2])
    global_request(t)
    direct_tcpip_open(t, int(a[1]))
    # Also after the userauth service was accepted, still unauthenticated.
    accepted = service_userauth(t, q)
    channel_open_exec(t, a[2])
    global_request(t)
    direct_tcpip_open(t, int(a[1]))
    got, closed = collect(t, q, 2.0)
    t.close()
    return {"service_accepted": accepted, "received": got, "closed": closed}


def cmd_client_userauth_success(a):
    # client-userauth-success HOST PORT USER COMMAND: libssh CVE-2018-10933
    t, q = transport(a[0], int(a[1]))
    accepted = service_userauth(t, q)
    t._send_message(msg(("byte", bytes([52]))))
    channel_open_exec(t, a[3])
    got, closed = collect(t, q, 2.0)
    t.close()
    return {"service_accepted": accepted, "received": got, "closed": closed}


def cmd_offer_then_sign(a):
    # offer-then-sign HOST PORT USER KEY_A KEY_B COMMAND: Go x/crypto CVE-2024-45337
    t, q = transport(a[0], int(a[1]))
    service_userauth(t, q)
    ka, kb = load_key(a[3]), load_key(a[4])
    userauth_pubkey(t, a[2], ka, sign=False)
    offer = auth_reply(q)
    userauth_pubkey(t, a[2], kb, sign=True)
    signed = auth_reply(q)
    # Whatever the server said, try to use the connection as if authenticated.
    channel_open_exec(t, a[5])
    got, closed = collect(t, q, 2.0)
    t.close()
    return {"offer_a": offer, "signed_b": signed, "after": got, "closed": closed}


def cmd_login_exec(a):
    # login-exec HOST PORT USER KEY COMMAND: the positive control (offer, sign, exec)
    t, q = transport(a[0], int(a[1]))
    service_userauth(t, q)
    k = load_key(a[3])
    userauth_pubkey(t, a[2], k, sign=False)
    offer = auth_reply(q)
    userauth_pubkey(t, a[2], k, sign=True)
    signed = auth_reply(q)
    res = {"offer": offer, "signed": signed}
    if signed.get("type") == 52:
        res["exec"] = exec_after_auth(t, q, a[4])
    t.close()
    return res


def cmd_unopened_channel_request(a):
    # unopened-channel-request HOST PORT USER KEY COMMAND: after auth, requests and data for
    # channels never opened, then a real exec on the same connection.
    t, q, signed = signed_login(*a[:4])
    for chan in (7, 0xFFFFFFFF):
        channel_request(t, chan, "exec", a[4])
        t._send_message(msg(("byte", bytes([94])), ("int", chan), ("string", b"data for nobody")))
        t._send_message(msg(("byte", bytes([93])), ("int", chan), ("int", 1000)))
        t._send_message(msg(("byte", bytes([96])), ("int", chan)))
        t._send_message(msg(("byte", bytes([97])), ("int", chan)))
    got, closed = collect(t, q, 1.0)
    res = {"signed": signed, "after_bogus": got, "closed": closed}
    if not closed:
        res["exec"] = exec_after_auth(t, q, "echo still-alive")
    t.close()
    return res


def cmd_auth_tries(a):
    # auth-tries HOST PORT USER KEY N: N signed requests with a key that is not authorized,
    # on one connection; reports each answer and whether the server disconnected.
    t, q = transport(a[0], int(a[1]))
    service_userauth(t, q)
    k = load_key(a[3])
    replies = []
    for _ in range(int(a[4])):
        if not t.is_active():
            break
        try:
            userauth_pubkey(t, a[2], k, sign=True)
        except Exception:  # the server closed the connection under us
            break
        r = auth_reply(q, 5.0)
        if r.get("type") is None:
            break
        replies.append(r["type"])
    time.sleep(0.5)
    closed = not t.is_active()
    t.close()
    return {"replies": replies, "closed": closed}


def cmd_auth_names(a):
    # auth-names HOST PORT KEY HEX_USER...: for each user name (hex-encoded UTF-8, so it may
    # hold newlines and control characters), a fresh connection with one offer and one
    # signed request; reports both answers per name.
    key = load_key(a[2])
    out = []
    for hexname in a[3:]:
        user = bytes.fromhex(hexname).decode()
        t, q = transport(a[0], int(a[1]))
        service_userauth(t, q)
        userauth_pubkey(t, user, key, sign=False)
        offer = auth_reply(q)
        userauth_pubkey(t, user, key, sign=True)
        signed = auth_reply(q)
        t.close()
        out.append({"offer": offer, "signed": signed})
    return {"results": out}


def cmd_env_flood(a):
    # env-flood HOST PORT USER KEY N: logs in, opens a session, sends N `env` requests
    # LC_MSHV<i>=v (want reply), then one with a 20 kB value and one with a 300-byte name,
    # then runs `env` and reports how many LC_MSHV variables the session got.
    t, q, signed = signed_login(*a[:4])
    if signed.get("type") != 52:
        return {"signed": signed}
    chan = open_session(t, q)
    if chan is None:
        return {"opened": False}

    def env(name, value):
        channel_request(t, chan, "env", name, value)
        p, _ = wait_for(q, (99, 100), 10)
        return p

    replies = [env("LC_MSHV%d" % i, "v") for i in range(int(a[4]))]
    again = env("LC_MSHV0", "replaced")
    big_value = env("LC_MSHV0", "x" * 20000)
    long_name = env("LC_" + "N" * 300, "v")
    channel_request(t, chan, "exec", "env | grep -c '^LC_MSHV'; echo \"$LC_MSHV0\"")
    out, _ = read_session(t, q, stop=(96, 97))
    t.close()
    return {
        "success": replies.count(99),
        "failure": replies.count(100),
        "first_failure": replies.index(100) if 100 in replies else None,
        "again": again,
        "big_value": big_value,
        "long_name": long_name,
        "stdout": out.decode(errors="replace"),
    }


def cmd_auth_seq(a):
    # auth-seq HOST PORT USER STEP...: one connection, one auth request per STEP (`none`,
    # `offer:KEY` query without signature, `sign:KEY` signed request); after each, the
    # reply (51 failure, 52 success, 60 PK_OK, null if none came) and whether the server
    # closed the connection within a moment. Stops at the first close or success.
    t, q = transport(a[0], int(a[1]))
    service_userauth(t, q)
    user = a[2]
    steps = []
    for step in a[3:]:
        if not t.is_active():
            break
        try:
            if step == "none":
                t._send_message(msg(("byte", bytes([50])), ("string", user),
                                    ("string", "ssh-connection"), ("string", "none")))
            else:
                kind, path = step.split(":", 1)
                userauth_pubkey(t, user, load_key(path), sign=(kind == "sign"))
        except Exception:
            steps.append({"step": step, "reply": None, "closed": True})
            break
        reply = None
        end = time.time() + 5.0
        while time.time() < end and reply is None and t.is_active():
            try:
                p, _m = q.get(timeout=0.05)
                if p in (51, 52, 60):
                    reply = p
            except queue.Empty:
                pass
        end = time.time() + 0.4
        while time.time() < end and t.is_active():
            time.sleep(0.05)
        closed = not t.is_active()
        steps.append({"step": step, "reply": reply, "closed": closed})
        if closed or reply == 52:
            break
    t.close()
    return {"steps": steps}


def timing_series(host, port, user, key, n):
    """n offer-stage and n signed-stage attempts (fresh connection per pair, so max_auth_tries
    never interferes); each entry is (reply, seconds from send to reply)."""
    offers, signs = [], []
    for _ in range(n):
        t, q = transport(host, port)
        service_userauth(t, q)
        t0 = time.perf_counter()
        userauth_pubkey(t, user, key, sign=False)
        r = auth_reply(q)
        offers.append((r, time.perf_counter() - t0))
        t0 = time.perf_counter()
        userauth_pubkey(t, user, key, sign=True)
        r = auth_reply(q)
        signs.append((r, time.perf_counter() - t0))
        t.close()
    return offers, signs


def cmd_enum_timing(a):
    # enum-timing HOST PORT KNOWN_USER UNKNOWN_USER UNAUTHORIZED_KEY N
    host, port, known, unknown, keyp, n = a[0], int(a[1]), a[2], a[3], a[4], int(a[5])
    key = load_key(keyp)
    results = {}

    def run(label, user):
        results[label] = timing_series(host, port, user, key, n)

    # The two series run side by side, so machine load affects both alike.
    th = [threading.Thread(target=run, args=(lbl, u)) for lbl, u in (("known", known), ("unknown", unknown))]
    for x in th:
        x.start()
    for x in th:
        x.join()
    out = {}
    for label, (offers, signs) in results.items():
        out[label] = {
            "offer_replies": sorted({json.dumps(r, sort_keys=True) for r, _ in offers}),
            "signed_replies": sorted({json.dumps(r, sort_keys=True) for r, _ in signs}),
            "offer_median_ms": statistics.median(d for _, d in offers) * 1000,
            "signed_median_ms": statistics.median(d for _, d in signs) * 1000,
        }
    return out


def cmd_flood(a):
    # flood HOST PORT SOURCE_IP N SEND_VERSION(yes|no) HOLD_SECS: N idle unauthenticated
    # connections from SOURCE_IP; prints "ready <n connected>" on stderr, then holds them.
    host, port, src, n, send_version, hold = a[0], int(a[1]), a[2], int(a[3]), a[4] == "yes", float(a[5])
    socks, refused = [], 0
    for _ in range(n):
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((src, 0))
            s.settimeout(5)
            s.connect((host, port))
            if send_version:
                s.sendall(b"SSH-2.0-slowloris\r\n")
            socks.append(s)
        except OSError:
            refused += 1
    sys.stderr.write("ready %d\n" % len(socks))
    sys.stderr.flush()
    # How many the server has closed on us by now (dropped by max_startups / per-source).
    time.sleep(1.0)
    closed = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1, socket.MSG_PEEK) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    sys.stderr.write("closed %d\n" % closed)
    sys.stderr.flush()
    time.sleep(hold)
    return {"opened": len(socks), "refused": refused, "closed_by_server": closed}


def cmd_fifo_hold(a):
    # fifo-hold FIFO DRAIN_FLAG OUT: holds FIFO open (read+write) with its buffer full and
    # never reads, so a writer stalls; once DRAIN_FLAG exists, copies everything to OUT.
    fifo, flag, out = a
    fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    n = 0
    for chunk in (b"\n" * 4096, b"\n"):
        while True:
            try:
                n += os.write(fd, chunk)
            except BlockingIOError:
                break
    sys.stderr.write("full %d\n" % n)
    sys.stderr.flush()
    while not os.path.exists(flag):
        time.sleep(0.05)
    with open(out, "ab") as f:
        while True:
            try:
                d = os.read(fd, 65536)
                f.write(d)
                f.flush()
            except BlockingIOError:
                time.sleep(0.05)


# ---------------------------------------------------------------- session lifecycle probes


def login(host, port, user, keyfile):
    """A paramiko Transport authenticated with the key (paramiko's own handlers)."""
    import paramiko

    sock = socket.create_connection((host, port), timeout=10)
    t = paramiko.Transport(sock)
    t.start_client(timeout=10)
    t.auth_publickey(user, load_key(keyfile))
    return t


def cmd_seq_exec(a):
    # seq-exec HOST PORT USER KEY N: N exec channels one after the other on one connection,
    # each `echo i; exit i`, read to its exit status and closed before the next opens (as
    # paramiko's exec_command users do); every other one sends EOF first. Between them a
    # channel is opened on `sleep 30` and closed at once, its process still running.
    t = login(a[0], int(a[1]), a[2], a[3])
    results = []
    for i in range(int(a[4])):
        entry = {"i": i}
        try:
            ch = t.open_session(timeout=10)
            ch.exec_command("echo %d; exit %d" % (i, i))
            if i % 2:
                ch.shutdown_write()
            entry["stdout"] = ch.makefile("rb").read().decode(errors="replace")
            entry["exit_status"] = ch.recv_exit_status()
            ch.close()
            ab = t.open_session(timeout=10)
            ab.exec_command("sleep 30")
            ab.close()
        except Exception as e:  # noqa: BLE001 - reported to the test
            entry["error"] = "%s: %s" % (type(e).__name__, e)
        results.append(entry)
    t.close()
    return {"results": results}


def cmd_signal(a):
    # signal HOST PORT USER KEY exec|subsystem WHAT SIG MARK [FLAG]: starts WHAT (a command or a
    # subsystem name) on a channel, reads stdout until it has MARK lines (echoed to stderr, one
    # JSON line each, for the test), waits for FLAG to exist if given, sends `signal SIG` with
    # want-reply and reports the reply and what followed (exit-signal / exit-status) within 3 s.
    host, port, user, keyfile, kind, what, sig, marks = a[:8]
    flag = a[8] if len(a) > 8 else None
    t, q, signed = signed_login(host, port, user, keyfile)
    if signed.get("type") != 52:
        return {"error": "authentication failed"}
    chan = open_session(t, q)
    if chan is None:
        return {"error": "channel refused"}
    channel_request(t, chan, kind, what)
    out = b""
    res = {"exit_status": None, "exit_signal": None, "closed": False}

    def handle(p, m):
        nonlocal out
        if p == 94:
            m.get_int()
            out += m.get_binary()
        elif p == 98:
            m.get_int()
            name = m.get_text()
            m.get_boolean()
            if name == "exit-status":
                res["exit_status"] = m.get_int()
            elif name == "exit-signal":
                res["exit_signal"] = m.get_text()
        elif p == 97:
            res["closed"] = True

    end = time.time() + 20
    while out.count(b"\n") < int(marks) and time.time() < end:
        try:
            p, m = q.get(timeout=0.2)
        except queue.Empty:
            continue
        handle(p, m)
    for line in out.decode(errors="replace").splitlines():
        sys.stderr.write(json.dumps({"line": line}) + "\n")
    sys.stderr.flush()
    if flag:
        while not os.path.exists(flag) and time.time() < end + 60:
            time.sleep(0.05)
    channel_request(t, chan, "signal", sig)
    reply = None
    end = time.time() + 3
    while time.time() < end:
        try:
            p, m = q.get(timeout=0.1)
        except queue.Empty:
            continue
        if p in (99, 100) and reply is None:
            reply = "success" if p == 99 else "failure"
        else:
            handle(p, m)
    res["reply"] = reply
    res["stdout"] = out.decode(errors="replace")
    t.close()
    return res


COMMANDS = {
    "kex": cmd_kex,
    "preauth-channel": cmd_preauth_channel,
    "client-userauth-success": cmd_client_userauth_success,
    "offer-then-sign": cmd_offer_then_sign,
    "login-exec": cmd_login_exec,
    "unopened-channel-request": cmd_unopened_channel_request,
    "enum-timing": cmd_enum_timing,
    "auth-tries": cmd_auth_tries,
    "auth-names": cmd_auth_names,
    "env-flood": cmd_env_flood,
    "auth-seq": cmd_auth_seq,
    "fifo-hold": cmd_fifo_hold,
    "flood": cmd_flood,
    "seq-exec": cmd_seq_exec,
    "signal": cmd_signal,
}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.stderr.write("usage: sshprobe.py {%s} ARGS...\n" % "|".join(COMMANDS))
        return 2
    print(json.dumps(COMMANDS[sys.argv[1]](sys.argv[2:])))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
