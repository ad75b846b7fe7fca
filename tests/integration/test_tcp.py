# SPDX-License-Identifier: GPL-2.0-or-later
"""The TCP listener: pipelined queries answered out of order (RFC 7766), the idle timeout,
the connection cap, and connections that send nonsense."""

import select
import socket
import struct
import time

import dns.message
import dns.rcode
import pytest

from conftest import query, rdatas
from scripted_upstream import answer_all


def tcp_connect(k, timeout=3.0):
    s = socket.create_connection((k.host, k.port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def send_msg(s, q):
    w = q.to_wire()
    s.sendall(struct.pack("!H", len(w)) + w)


def recv_exact(s, n, deadline):
    buf = b""
    while len(buf) < n:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def recv_msg(s, timeout=5.0):
    deadline = time.monotonic() + timeout
    n = struct.unpack("!H", recv_exact(s, 2, deadline))[0]
    return dns.message.from_wire(recv_exact(s, n, deadline))


def wait_closed(s, timeout):
    """Seconds until the peer closed (EOF or reset), or None if it is still open at the
    deadline. Data that arrives meanwhile is read and ignored."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        r, _, _ = select.select([s], [], [], left)
        if not r:
            continue
        try:
            if not s.recv(65535):
                return time.monotonic() - t0
        except (ConnectionResetError, ConnectionAbortedError):
            return time.monotonic() - t0


@pytest.fixture
def slow_and_knotd(scripted, knotd, kubemasq):
    slow = scripted(answer_all(("192.0.2.77",), delay=0.8))
    k = kubemasq([f"--server=127.0.0.1#{knotd.port}", f"--server=/slow.test/127.0.0.1#{slow.port}",
                  "--upstream-retry=2000", "--upstream-timeout=4000", "--cache-size=0"])
    return k, slow


def test_pipelined_queries_answered_out_of_order(slow_and_knotd):
    k, slow = slow_and_knotd
    s = tcp_connect(k)
    q1 = query("a.slow.test.", "A")
    q2 = query("www.test.", "A")
    q2.id = (q1.id + 1) % 65536
    w1, w2 = q1.to_wire(), q2.to_wire()
    s.sendall(struct.pack("!H", len(w1)) + w1 + struct.pack("!H", len(w2)) + w2)
    t0 = time.monotonic()
    first = recv_msg(s)
    t_first = time.monotonic() - t0
    second = recv_msg(s)
    s.close()
    assert first.id == q2.id, "the fast answer waited behind the slow one (head-of-line)"
    assert rdatas(first) == ["192.0.2.10"]
    assert t_first < 0.7, f"the fast answer took {t_first:.2f}s"
    assert second.id == q1.id and rdatas(second) == ["192.0.2.77"]
    assert slow.count("a.slow.test") >= 1


def test_many_pipelined_queries_on_one_connection(knotd, kubemasq):
    k = kubemasq([f"--server=127.0.0.1#{knotd.port}"])
    s = tcp_connect(k)
    names = {"www.test.": ["192.0.2.10"], "mail.test.": ["192.0.2.25"],
             "sip.test.": ["192.0.2.50"], "ns.test.": ["127.0.0.1"]}
    sent = {}
    buf = b""
    for i in range(20):
        name = list(names)[i % len(names)]
        q = query(name, "A")
        q.id = 1000 + i
        sent[q.id] = name
        w = q.to_wire()
        buf += struct.pack("!H", len(w)) + w
    s.sendall(buf)
    got = {}
    for _ in range(20):
        r = recv_msg(s)
        assert r.id in sent and r.id not in got
        got[r.id] = r
    s.close()
    for qid, name in sent.items():
        assert rdatas(got[qid]) == names[name], name


def test_idle_connection_closed_after_timeout(knotd, kubemasq):
    k = kubemasq([f"--server=127.0.0.1#{knotd.port}", "--tcp-idle-timeout=1"])
    s = tcp_connect(k)
    closed = wait_closed(s, 6.0)
    s.close()
    assert closed is not None, "an idle connection was still open after 6s (timeout 1s)"
    assert closed >= 0.5, f"closed after {closed:.2f}s, before the 1s idle timeout"
    # after a query, the clock starts again
    s = tcp_connect(k)
    send_msg(s, query("www.test.", "A"))
    assert rdatas(recv_msg(s)) == ["192.0.2.10"]
    closed = wait_closed(s, 6.0)
    s.close()
    assert closed is not None, "still open 6s after the last answer (timeout 1s)"


def test_connection_cap(knotd, kubemasq):
    k = kubemasq([f"--server=127.0.0.1#{knotd.port}", "--tcp-max-connections=2",
                  "--tcp-idle-timeout=30"])
    c1, c2 = tcp_connect(k), tcp_connect(k)
    for c in (c1, c2):
        send_msg(c, query("www.test.", "A"))
        assert rdatas(recv_msg(c)) == ["192.0.2.10"]
    refused = False
    try:
        c3 = tcp_connect(k)
    except (ConnectionRefusedError, ConnectionResetError):
        refused = True
    if not refused:
        try:
            send_msg(c3, query("mail.test.", "A"))
        except (BrokenPipeError, ConnectionResetError):
            pass
        closed = wait_closed(c3, 3.0)
        c3.close()
        assert closed is not None, \
            "a third connection over --tcp-max-connections=2 was neither refused nor closed"
    for c in (c1, c2):	# the first two stay usable
        send_msg(c, query("mail.test.", "A"))
        assert rdatas(recv_msg(c)) == ["192.0.2.25"]
    # a slot freed is a slot usable again
    c1.close()

    def fourth_served():
        try:
            c = tcp_connect(k)
            send_msg(c, query("sip.test.", "A"))
            r = recv_msg(c, timeout=1.0)
            c.close()
            return rdatas(r) == ["192.0.2.50"]
        except (OSError, EOFError):
            return False
    deadline = time.monotonic() + 5
    ok = False
    while time.monotonic() < deadline and not (ok := fourth_served()):
        time.sleep(0.05)
    assert ok, "after one of two connections closed, a new one was still not served"
    c2.close()


@pytest.mark.parametrize("payload", [
    b"",				# connect and close at once
    b"\x00",			# half a length prefix, then close
    b"\xff\xff" + b"\x00" * 100,	# announces 64 KB, sends 100 bytes, then close
    b"\x00\x00",			# a zero-length message
    b"\x00\x05hello",		# a 5-byte message
    b"\x00\x0c" + b"\x12\x34\x01\x00" + b"\x00" * 8,	# a header with no question
])
def test_tcp_nonsense_then_service_continues(knotd, kubemasq, payload):
    k = kubemasq([f"--server=127.0.0.1#{knotd.port}", "--tcp-idle-timeout=1"])
    for _ in range(20):
        s = tcp_connect(k)
        if payload:
            s.sendall(payload)
        s.close()
    s = tcp_connect(k)
    if payload:
        s.sendall(payload)
    # the daemon may answer FORMERR or close at once; it must not hold the connection past
    # its idle timeout
    closed = wait_closed(s, 5.0)
    s.close()
    assert closed is not None, "a connection that sent nonsense was open after 5s (idle 1s)"
    assert k.alive()
    r = k.tcp(query("www.test.", "A"))
    assert rdatas(r) == ["192.0.2.10"]
