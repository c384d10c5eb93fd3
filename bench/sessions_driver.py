#!/usr/bin/env python3
"""Holds many SSH sessions open for bench/sessions.sh (paramiko, from target/probe-venv).

    sessions_driver.py HOST PORT USER KEY N PARALLEL COMMAND

Opens N connections, PARALLEL at a time, each authenticated with KEY and running COMMAND on
one exec channel (COMMAND `-`: no channel, the connection only); prints `opened N` (or `failed K: reason`) once all are up, then holds them
until stdin closes, when it closes them all and exits. Killing it drops every connection at
once, as clients that vanish do.
"""
import socket
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import paramiko


def one(host, port, user, key, command):
    sock = socket.create_connection((host, port), timeout=30)
    t = paramiko.Transport(sock)
    t.start_client(timeout=30)
    t.auth_publickey(user, key)
    if command != "-":
        ch = t.open_session(timeout=30)
        ch.exec_command(command)
    return t


def main():
    host, port, user, keyfile, n, par, command = sys.argv[1:8]
    key = paramiko.Ed25519Key.from_private_key_file(keyfile)
    held, errors = [], []
    lock = threading.Lock()

    def job(_):
        try:
            t = one(host, int(port), user, key, command)
            with lock:
                held.append(t)
        except Exception as e:  # noqa: BLE001 - counted and reported
            with lock:
                errors.append("%s: %s" % (type(e).__name__, e))

    with ThreadPoolExecutor(max_workers=int(par)) as ex:
        list(ex.map(job, range(int(n))))
    if errors:
        print("failed %d: %s" % (len(errors), errors[0]), flush=True)
    else:
        print("opened %d" % len(held), flush=True)
    sys.stdin.read()
    for t in held:
        t.close()


if __name__ == "__main__":
    main()
