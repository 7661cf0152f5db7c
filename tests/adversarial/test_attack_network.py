"""Outbound connections, here to a listener on this machine's loopback (nothing leaves the box)."""

import socket

from conftest import stdin_problem

ATTACK = "outbound network"


def test_connecting_out(attack, level, record):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    code = f"""
import socket
try:
    s = socket.create_connection(("127.0.0.1", {port}), timeout=0.5)
    s.sendall(b"exfiltrated")
    print("connected")
except OSError as e:
    print("failed", e.errno)
try:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.sendto(b"x", ("127.0.0.1", {port}))
    print("udp-sent")
except OSError as e:
    print("udp-failed", e.errno)
"""
    try:
        r = attack.run(level, code, stdin_problem(["1\n"], ["x\n"]))
    finally:
        listener.close()
    if level == "process":
        assert "connected" in r.stdout
        record(level, "NOT blocked: connected and sent data")
    else:
        assert "connected" not in r.stdout and "udp-sent" not in r.stdout, r.stdout
        how = "socket() denied (EPERM)" if r.stdout.split()[:2] == ["failed", "1"] else " ".join(r.stdout.split())
        record(level, f"blocked: TCP and UDP, {how}")
