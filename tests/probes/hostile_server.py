#!/usr/bin/env python3
"""Hostile SSH servers for msh's client tests (paramiko): each accepts any public key, then
misbehaves in the way its scenario names. The Rust test decides what is right.

Usage: hostile_server.py SCENARIO HOST_KEY [RESULT_JSON]

Listens on 127.0.0.1 (prints the port on stdout once bound). Scenarios:

exit-signal (tests/tests/e2e/jump.rs)
    Answers every exec with an exit-signal whose signal name and message carry terminal
    escape sequences, so a test can check that msh never prints them raw. Serves any number
    of clients.

open-channels RESULT_JSON (tests/tests/e2e/forward_client.rs)
    Accepts one client, answers its exec request, then opens channels towards the client
    that it did not ask for: auth-agent@openssh.com, x11, session, direct-tcpip, and
    forwarded-tcpip both for a port the client did ask to forward (-R, echoed through) and
    for one it did not (with an escape sequence in the address). What the client accepted
    is written to RESULT_JSON.

Runs in the probe venv (target/probe-venv, paramiko >= 3.4).
"""
import json
import socket
import sys
import threading
import time

import paramiko
from paramiko.common import cMSG_CHANNEL_REQUEST

ESC = "\x1b]0;pwned\x07\x1b[2J\x9b1m"


class Server(paramiko.ServerInterface):
    """Any public key gets in; session channels only."""

    def get_allowed_auths(self, username):
        return "publickey"

    def check_auth_publickey(self, username, key):
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_request(self, kind, chanid):
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


def listen():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(5)
    print(s.getsockname()[1], flush=True)
    return s


def transport(conn, key, server):
    t = paramiko.Transport(conn)
    t.add_server_key(key)
    t.start_server(server=server)
    return t


# ---------------------------------------------------------------- exit-signal


class ExitSignalServer(Server):
    def check_channel_exec_request(self, channel, command):
        threading.Thread(target=send_exit_signal, args=(channel,), daemon=True).start()
        return True


def send_exit_signal(channel):
    time.sleep(0.2)
    m = paramiko.Message()
    m.add_byte(cMSG_CHANNEL_REQUEST)
    m.add_int(channel.remote_chanid)
    m.add_string("exit-signal")
    m.add_boolean(False)
    m.add_string("KILL" + ESC)
    m.add_boolean(False)
    m.add_string("bye" + ESC)
    m.add_string("")
    channel.transport._send_user_message(m)
    time.sleep(0.2)
    channel.close()


def serve_exit_signal(conn, key):
    t = transport(conn, key, ExitSignalServer())
    # Keep the channels: paramiko closes a Channel when it is garbage-collected.
    channels = []
    while t.is_active():
        ch = t.accept(1)
        if ch is not None:
            channels.append(ch)


def exit_signal(key, _args):
    s = listen()
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve_exit_signal, args=(conn, key), daemon=True).start()


# ---------------------------------------------------------------- open-channels


class OpenChannelsServer(Server):
    def __init__(self):
        self.exec_event = threading.Event()
        self.forwards = []
        self.agent_requested = False

    def check_channel_env_request(self, channel, name, value):
        return True

    def check_channel_forward_agent_request(self, channel):
        self.agent_requested = True
        return True

    def check_channel_exec_request(self, channel, command):
        self.exec_event.set()
        return True

    def check_port_forward_request(self, address, port):
        # Pretend to listen; the channels for it are opened by hand below.
        self.forwards.append([address, port])
        return port

    def cancel_port_forward_request(self, address, port):
        pass


def attempt(results, name, opener):
    try:
        ch = opener()
    except Exception as e:  # refused (ChannelException) or timed out
        results[name] = {"accepted": False, "error": type(e).__name__}
        return None
    results[name] = {"accepted": True}
    return ch


def echo_through(results, ch):
    ch.settimeout(20)
    ch.sendall(b"ping through -R")
    ch.shutdown_write()
    got = b""
    try:
        while True:
            d = ch.recv(1024)
            if not d:
                break
            got += d
    except Exception as e:
        results["echo_error"] = str(e)
    results["echo"] = got.decode(errors="replace")
    ch.close()


def try_channels(t, server, results):
    results["agent_requested"] = server.agent_requested
    results["forwards"] = server.forwards
    to = 10
    attempt(results, "agent", lambda: t.open_channel("auth-agent@openssh.com", timeout=to))
    attempt(results, "x11", lambda: t.open_x11_channel(("127.0.0.1", 6010)))
    attempt(results, "session", lambda: t.open_channel("session", timeout=to))
    attempt(
        results,
        "direct-tcpip",
        lambda: t.open_channel("direct-tcpip", ("127.0.0.1", 22), ("127.0.0.1", 1), timeout=to),
    )
    attempt(
        results,
        "forwarded-unrequested",
        lambda: t.open_forwarded_tcpip_channel(("127.0.0.1", 1), ("\x1b[31mevil", 5555)),
    )
    if server.forwards:
        addr, port = server.forwards[0]
        ch = attempt(
            results,
            "forwarded-requested",
            lambda: t.open_forwarded_tcpip_channel(("127.0.0.1", 1), (addr, port)),
        )
        if ch is not None:
            echo_through(results, ch)


def open_channels(key, args):
    out_path = args[0]
    ls = listen()
    ls.settimeout(60)
    sock, _ = ls.accept()
    server = OpenChannelsServer()
    t = transport(sock, key, server)
    chan = t.accept(30)
    results = {}
    if chan is None or not server.exec_event.wait(30):
        results["error"] = "no exec request"
    else:
        try_channels(t, server, results)
    with open(out_path, "w") as f:
        json.dump(results, f)
    chan.send_exit_status(0)
    chan.shutdown_write()
    chan.close()
    # Let the client read the close and disconnect first: closing the socket with its
    # messages unread would reset the connection.
    deadline = time.time() + 10
    while t.is_active() and time.time() < deadline:
        time.sleep(0.05)
    t.close()


SCENARIOS = {"exit-signal": exit_signal, "open-channels": open_channels}


def main():
    scenario, key_file, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if scenario not in SCENARIOS:
        sys.exit(f"hostile_server.py: unknown scenario {scenario!r}: one of {sorted(SCENARIOS)}")
    SCENARIOS[scenario](paramiko.Ed25519Key.from_private_key_file(key_file), args)


if __name__ == "__main__":
    main()
