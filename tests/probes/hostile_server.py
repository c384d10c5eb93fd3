#!/usr/bin/env python3
"""A hostile SSH server for msh's client tests (tests/tests/e2e/forward_client.rs).

Usage: hostile_server.py HOST_KEY RESULT_JSON

Listens on 127.0.0.1 (prints the port on stdout), accepts one client with any public key,
answers its exec request, then opens channels towards the client that it did not ask for:
auth-agent@openssh.com, x11, session, direct-tcpip, and forwarded-tcpip both for a port the
client did ask to forward (-R, echoed through) and for one it did not (with an escape
sequence in the address). What the client accepted is written to RESULT_JSON; the Rust test
decides. Runs in the probe venv (target/probe-venv, paramiko >= 3.4).
"""
import json
import socket
import sys
import threading
import time

import paramiko


class Server(paramiko.ServerInterface):
    def __init__(self):
        self.exec_event = threading.Event()
        self.forwards = []
        self.agent_requested = False

    def get_allowed_auths(self, username):
        return "publickey"

    def check_auth_publickey(self, username, key):
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_request(self, kind, chanid):
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

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


def main():
    key = paramiko.Ed25519Key.from_private_key_file(sys.argv[1])
    out_path = sys.argv[2]
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    print(ls.getsockname()[1], flush=True)
    ls.settimeout(60)
    sock, _ = ls.accept()
    t = paramiko.Transport(sock)
    t.add_server_key(key)
    server = Server()
    t.start_server(server=server)
    chan = t.accept(30)
    results = {}
    if chan is None or not server.exec_event.wait(30):
        results["error"] = "no exec request"
    else:
        results["agent_requested"] = server.agent_requested
        results["forwards"] = server.forwards
        to = 10
        attempt(results, "agent", lambda: t.open_channel("auth-agent@openssh.com", timeout=to))
        attempt(results, "x11", lambda: t.open_x11_channel(("127.0.0.1", 6010)))
        attempt(results, "session", lambda: t.open_channel("session", timeout=to))
        attempt(
            results,
            "direct-tcpip",
            lambda: t.open_channel(
                "direct-tcpip", ("127.0.0.1", 22), ("127.0.0.1", 1), timeout=to
            ),
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


main()
