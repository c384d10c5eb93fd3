#!/usr/bin/env python3
"""A hostile SSH server for msh's tests (paramiko): accepts any public key, and answers an
exec with an exit-signal whose name and message carry terminal escape sequences, so a test
can check that msh never prints them raw.

Usage: evil_server.py PORT HOST_KEY_FILE   (prints "listening" once bound to 127.0.0.1)
"""
import socket
import sys
import threading
import time

import paramiko
from paramiko.common import cMSG_CHANNEL_REQUEST

ESC = "\x1b]0;pwned\x07\x1b[2J\x9b1m"


class Server(paramiko.ServerInterface):
    def get_allowed_auths(self, username):
        return "publickey"

    def check_auth_publickey(self, username, key):
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_request(self, kind, chanid):
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel, command):
        threading.Thread(target=exit_signal, args=(channel,), daemon=True).start()
        return True


def exit_signal(channel):
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


def serve(conn, key):
    t = paramiko.Transport(conn)
    t.add_server_key(key)
    t.start_server(server=Server())
    # Keep the channels: paramiko closes a Channel when it is garbage-collected.
    channels = []
    while t.is_active():
        ch = t.accept(1)
        if ch is not None:
            channels.append(ch)


def main():
    port = int(sys.argv[1])
    key = paramiko.Ed25519Key(filename=sys.argv[2])
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(5)
    print("listening", flush=True)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve, args=(conn, key), daemon=True).start()


if __name__ == "__main__":
    main()
