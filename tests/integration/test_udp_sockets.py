# SPDX-License-Identifier: GPL-2.0-or-later
"""A UDP listener is two sockets in one SO_REUSEPORT group (server.c, server_udp_sender): the
watched one receives every query, the other only sends answers. These tests check what a client
sees of that: every query is answered whatever its source port (the kernel would spread them
over both sockets without the steering program, and the sending socket never reads), answers
leave from the address and port the query went to, also on a wildcard listener, and a second
daemon on the same port still fails to start instead of joining the group.

With one UDP address and nothing else in progress the daemon waits a little in recvmmsg for
more queries before going back to its event loop (server_udp_may_wait): the last tests check
that TCP, upstream answers and signals are still served around such waits."""

import selectors
import signal
import socket
import subprocess
import threading
import time

import dns.message
import dns.rcode
import pytest

from conftest import free_port, kubemasq_bin, query, rdatas, stop_process, wait_until

CLIENTS = 64


def ask_from_many_ports(host, port, family=socket.AF_INET, name="www.test.", timeout=3.0):
    """One query from each of CLIENTS sockets (distinct source ports, so distinct reuseport
    hashes); returns [(source address of the answer, answer)] for those answered within
    `timeout` seconds in all."""
    sel = selectors.DefaultSelector()
    socks = []
    try:
        for i in range(CLIENTS):
            s = socket.socket(family, socket.SOCK_DGRAM)
            socks.append(s)
            s.bind((host, 0))
            q = query(name, "A")
            q.id = i
            s.sendto(q.to_wire(), (host, port))
            sel.register(s, selectors.EVENT_READ)
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < CLIENTS and time.monotonic() < deadline:
            for key, _ in sel.select(deadline - time.monotonic()):
                data, src = key.fileobj.recvfrom(65535)
                sel.unregister(key.fileobj)
                got.append((src[:2], dns.message.from_wire(data)))
        return got
    finally:
        sel.close()
        for s in socks:
            s.close()


def test_every_source_port_is_answered_from_the_listening_port(knotd, kubemasq):
    k = kubemasq([f"--server=127.0.0.1#{knotd.port}"])
    for round_ in ("forwarded", "cached"):   # late answers (sendmsg), then batched (sendmmsg)
        got = ask_from_many_ports("127.0.0.1", k.port)
        assert len(got) == CLIENTS, f"{round_}: {CLIENTS - len(got)} of {CLIENTS} unanswered"
        for src, r in got:
            assert src == ("127.0.0.1", k.port), f"{round_}: answer came from {src}"
            assert rdatas(r) == ["192.0.2.10"]
        assert sorted(r.id for _, r in got) == list(range(CLIENTS))


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_wildcard_listener_answers_from_the_address_asked(knotd):
    """Without --listen-address the daemon binds 0.0.0.0 and ::; an answer to a query sent to
    127.0.0.2 must come from 127.0.0.2 (IP_PKTINFO set on the sending socket), or the client
    drops it."""
    port = free_port(host="0.0.0.0")
    proc = subprocess.Popen([kubemasq_bin(), "-k", f"--port={port}", "--no-resolv",
                             f"--server=127.0.0.1#{knotd.port}", "--log-facility=-"],
                            stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: ask_from_many_ports("127.0.0.1", port, timeout=0.2)[:1], 10,
                   what="an answer on 127.0.0.1")
        for host in ("127.0.0.1", "127.0.0.2"):
            got = ask_from_many_ports(host, port)
            assert len(got) == CLIENTS, f"{host}: {CLIENTS - len(got)} unanswered"
            assert {src for src, _ in got} == {(host, port)}
        if ipv6_loopback():
            got = ask_from_many_ports("::1", port, socket.AF_INET6)
            assert len(got) == CLIENTS, f"::1: {CLIENTS - len(got)} unanswered"
            assert {src for src, _ in got} == {("::1", port)}
    finally:
        assert stop_process(proc) == 0


def test_second_daemon_on_the_same_port_fails_and_steals_nothing(knotd, kubemasq):
    k = kubemasq([f"--server=127.0.0.1#{knotd.port}"])
    r = subprocess.run([kubemasq_bin(), "-k", f"--port={k.port}", "--listen-address=127.0.0.1",
                        "--no-resolv", f"--server=127.0.0.1#{knotd.port}", "--log-facility=-"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=10)
    assert r.returncode != 0
    assert "in use" in r.stderr.lower(), r.stderr
    got = ask_from_many_ports("127.0.0.1", k.port)
    assert len(got) == CLIENTS, f"{CLIENTS - len(got)} of {CLIENTS} unanswered after it"


@pytest.mark.parametrize("family,host", [(socket.AF_INET, "127.0.0.1"),
                                         (socket.AF_INET6, "::1")])
def test_the_sending_socket_drops_nothing_it_should_read(knotd, kubemasq, family, host):
    """/proc/net/udp{,6} counts drops per socket: after a spread of source ports, neither of
    the listener's two sockets has dropped a datagram (misrouted queries would be dropped by
    the sending socket's filter and counted there)."""
    if family == socket.AF_INET6 and not ipv6_loopback():
        pytest.skip("no ::1 on this machine")
    k = kubemasq([f"--server=127.0.0.1#{knotd.port}"], host=host)
    got = ask_from_many_ports(host, k.port, family)
    assert len(got) == CLIENTS
    table = "/proc/net/udp6" if family == socket.AF_INET6 else "/proc/net/udp"
    rows = [line.split() for line in open(table).read().splitlines()[1:]]
    ours = [row for row in rows if int(row[1].split(":")[1], 16) == k.port]
    assert len(ours) == 2, f"expected the listening and the sending socket, found {ours}"
    assert [int(row[-1]) for row in ours] == [0, 0], f"drops: {ours}"


def test_tcp_right_after_a_udp_hit_is_answered(knotd, kubemasq):
    """After answering a UDP query the daemon may wait for the next one, up to its receive
    timeout: a TCP query sent meanwhile must be answered, not left until another UDP query."""
    k = kubemasq([f"--server=127.0.0.1#{knotd.port}"])
    k.udp(query("www.test.", "A"))
    for _ in range(50):
        assert rdatas(k.udp(query("www.test.", "A"))) == ["192.0.2.10"]
        # a fresh connection each time: while one is open the daemon does not wait
        assert rdatas(k.tcp(query("mail.test.", "A"), timeout=2.0)) == ["192.0.2.25"]


def test_a_stream_of_hits_leaves_tcp_upstreams_and_signals_served(knotd, kubemasq):
    k = kubemasq([f"--server=127.0.0.1#{knotd.port}"])
    k.udp(query("www.test.", "A"))
    stop = threading.Event()
    answered = [0]

    def hits():         # one client keeping the socket busy, a query in flight at a time
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(2.0)
            wire = query("www.test.", "A").to_wire()
            while not stop.is_set():
                s.sendto(wire, ("127.0.0.1", k.port))
                s.recv(65535)
                answered[0] += 1
    t = threading.Thread(target=hits)
    t.start()
    try:
        wait_until(lambda: answered[0] >= 100, 10, what="a stream of answered hits")
        for i in range(20):
            r = k.tcp(query("mail.test.", "A"), timeout=2.0)
            assert rdatas(r) == ["192.0.2.25"]
            r = k.udp(query(f"nx{i}.test.", "A"), timeout=2.0)     # forwarded: a miss
            assert r.rcode() == dns.rcode.NXDOMAIN
        start = k.log_size()
        k.signal(signal.SIGUSR1)
        k.wait_log(r"cache size", timeout=5, start=start)
        assert t.is_alive(), "the stream of hits stopped: a query went unanswered"
    finally:
        stop.set()
        t.join(timeout=5)
    assert answered[0] > 100
