# SPDX-License-Identifier: GPL-2.0-or-later
"""TCP flow control (RFC 7766 section 6.2): a client that reads slowly is paused and resumed,
never dropped while it makes progress; a client that half-closes still gets every answer; a
connection that makes no progress, paused or not, is closed after --tcp-idle-timeout, so that
stalled clients cannot hold every connection slot."""

import select
import signal
import socket
import struct
import time

import dns.message
import dns.rcode
import pytest

from conftest import query, rdatas, wait_until
from scripted_upstream import answer_all, silent
from test_tcp import recv_msg, send_msg, tcp_connect, wait_closed

# Answers of about 300 bytes: 50,000 of them (15 MB) are more than the kernel's socket buffers
# take (4 MB by default on Linux), so the daemon's own output buffer fills and reading pauses.
ADDRS = [f"192.0.2.{i}" for i in range(1, 17)]
NAMES = [f"n{i}.flow.test." for i in range(4)]
NOERROR_ANSWER = 0x8000		# QR set; opcode, rcode 0 (checked through a mask below)


def tcp_counters(k):
    """(refused, idle closed) from the statistics the daemon logs on SIGUSR1."""
    start = k.log_size()
    k.signal(signal.SIGUSR1)
    m = k.wait_log(r"tcp refused (\d+), tcp idle closed (\d+)", start=start)
    return int(m.group(1)), int(m.group(2))


def frame(wire):
    return struct.pack("!H", len(wire)) + wire


def small_rcvbuf_socket(k, rcvbuf=4096):
    """A TCP client whose receive buffer is set before connect, so the window stays small."""
    s = socket.socket(k.family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(3.0)
    s.connect((k.host, k.port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def flood(n, names=NAMES):
    """n framed A queries with IDs 0..n-1, over the given names in turn."""
    names = list(names)
    out = []
    for i in range(n):
        q = query(names[i % len(names)], "A")
        q.id = i
        out.append(frame(q.to_wire()))
    return b"".join(out)


class Framer:
    """Splits a TCP byte stream into DNS messages and counts their IDs (header only: parsing
    50,000 messages with dnspython would take longer than the daemon takes to answer)."""

    def __init__(self):
        self.buf = bytearray()
        self.ids = {}
        self.bad = 0

    def feed(self, data):
        self.buf += data
        at = 0
        while len(self.buf) - at >= 2:
            n = struct.unpack_from("!H", self.buf, at)[0]
            if len(self.buf) - at < 2 + n:
                break
            qid, flags, _, an = struct.unpack_from("!HHHH", self.buf, at + 2)
            if flags & 0x800f != NOERROR_ANSWER or an != len(ADDRS):
                self.bad += 1
            self.ids[qid] = self.ids.get(qid, 0) + 1
            at += 2 + n
        del self.buf[:at]


def slow_reader(s, data, expect, read_after, stall):
    """Send `data` while not reading; start reading `read_after` seconds after the first send.
    Returns the Framer once `expect` messages came, or when nothing moved either way for
    `stall` seconds (the failure: the daemon stopped reading and writing for good)."""
    s.setblocking(False)
    got = Framer()
    sent = 0
    t0 = last = time.monotonic()
    while sum(got.ids.values()) < expect:
        now = time.monotonic()
        if now - last > stall:
            break
        reading = now - t0 >= read_after
        wr = [s] if sent < len(data) else []
        rd = [s] if reading else []
        wait = min(0.5, max(0.0, t0 + read_after - now)) if not reading else 0.5
        r, w, _ = select.select(rd, wr, [], wait)
        if w:
            try:
                sent += s.send(data[sent:sent + 65536])
                last = time.monotonic()
            except BlockingIOError:
                pass
        if r:
            chunk = s.recv(65536)
            if not chunk:
                break
            got.feed(chunk)
            last = time.monotonic()
    got.sent = sent
    return got


@pytest.fixture
def big_answers(scripted):
    return scripted(answer_all(ADDRS))


def test_slow_reader_with_a_small_window_gets_every_answer(big_answers, kubemasq):
    """50,000 pipelined queries from a client with a 4 KiB receive buffer that reads nothing
    for 2 s: the daemon pauses reading while its output is over the high-water mark and
    resumes as the client drains it; every query is answered exactly once."""
    n = 50000
    k = kubemasq([f"--server=127.0.0.1#{big_answers.port}"])
    data = flood(n)
    s = small_rcvbuf_socket(k)
    got = slow_reader(s, data, n, read_after=2.0, stall=10.0)
    s.close()
    answered = sum(got.ids.values())
    assert got.sent == len(data), \
        f"the daemon stopped reading after {got.sent} bytes of queries"
    assert answered == n, f"{answered} of {n} pipelined queries answered (then nothing for 10s)"
    assert set(got.ids) == set(range(n)), "some IDs were never answered"
    assert max(got.ids.values()) == 1, "an ID was answered twice"
    assert got.bad == 0, f"{got.bad} answers were not NOERROR with {len(ADDRS)} A records"


@pytest.fixture
def slow_upstream(scripted, kubemasq):
    slow = scripted(answer_all(("192.0.2.77",), delay=0.5))
    k = kubemasq([f"--server=127.0.0.1#{slow.port}", "--upstream-timeout=4000",
                  "--upstream-retry=2000", "--tcp-idle-timeout=5"])
    return k, slow


def send_slow_queries(k, n):
    s = tcp_connect(k)
    sent = {}
    for i in range(n):
        q = query(f"n{i}.slow.test.", "A")
        q.id = 100 + i
        sent[q.id] = q
        send_msg(s, q)
    return s, sent


def test_half_close_gets_every_pending_answer(slow_upstream):
    """RFC 7766 6.2.4: a client that sends its queries and then shuts down its sending side
    still gets every answer; the daemon closes once they are all written."""
    k, slow = slow_upstream
    s, sent = send_slow_queries(k, 20)
    s.shutdown(socket.SHUT_WR)
    got = {}
    deadline = time.monotonic() + 10
    while len(got) < len(sent):
        try:
            r = recv_msg(s, timeout=max(0.1, deadline - time.monotonic()))
        except (EOFError, ConnectionResetError, socket.timeout) as e:
            pytest.fail(f"{len(got)} of {len(sent)} answered before the daemon closed "
                        f"the half-closed connection ({type(e).__name__})")
        assert r.id in sent and r.id not in got
        got[r.id] = r
    for qid, r in got.items():
        assert rdatas(r) == ["192.0.2.77"], sent[qid].question[0].name
    assert slow.count() >= len(sent), "the queries were not forwarded (answered from where?)"
    # everything answered: the daemon closes its side too, well before the idle timeout
    closed = wait_closed(s, 3.0)
    s.close()
    assert closed is not None, "the daemon kept the half-closed connection open"
    assert tcp_counters(k)[1] == 0, "the half-closed connection was closed as idle"
    r = k.tcp(query("www.after.slow.test.", "A"), timeout=5.0)
    assert rdatas(r) == ["192.0.2.77"]


def test_half_close_with_a_silent_upstream(scripted, kubemasq):
    """The half-closed connection waits for the upstream timeout, whose SERVFAILs are its last
    answers, and then closes: nothing is left behind when no upstream ever answers."""
    mute = scripted(silent)
    k = kubemasq([f"--server=127.0.0.1#{mute.port}", "--upstream-timeout=1000",
                  "--upstream-retry=400", "--tcp-idle-timeout=10"])
    s, sent = send_slow_queries(k, 5)
    s.shutdown(socket.SHUT_WR)
    for _ in sent:
        r = recv_msg(s, timeout=5.0)
        assert r.id in sent and r.rcode() == dns.rcode.SERVFAIL
    closed = wait_closed(s, 5.0)
    s.close()
    assert closed is not None, "the half-closed connection stayed open after its last answer"


def test_pending_cap_pauses_and_resumes(slow_upstream):
    """More pipelined queries than a connection may have waiting on upstreams (64): reading
    pauses at the cap and resumes as answers come, and every query is answered."""
    k, slow = slow_upstream
    n = 300
    s = tcp_connect(k)
    s.sendall(b"".join(frame(dns.message.make_query(f"c{i % 100}.slow.test.", "A").to_wire())
                       for i in range(n)))
    got = 0
    deadline = time.monotonic() + 15
    while got < n:
        try:
            r = recv_msg(s, timeout=max(0.1, deadline - time.monotonic()))
        except (EOFError, socket.timeout) as e:
            pytest.fail(f"{got} of {n} answered ({type(e).__name__})")
        assert rdatas(r) == ["192.0.2.77"]
        got += 1
    s.close()


@pytest.mark.parametrize("how", ["reset", "half-close-then-reset"])
def test_client_gone_with_answers_pending(slow_upstream, how):
    """A client that resets the connection (after a half-close or not) while its queries wait
    on the upstream: the late answers are dropped, nothing is touched after it is freed (the
    ASan run checks that), and the daemon serves on."""
    k, slow = slow_upstream
    s, sent = send_slow_queries(k, 20)
    if how == "half-close-then-reset":
        s.shutdown(socket.SHUT_WR)
    wait_until_forwarded(slow, len(sent))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    # each name answered over UDP means its upstream query completed, and with it the waiter
    # the gone TCP client had on it (they share one upstream query, or the answer is cached)
    for q in sent.values():
        r = k.udp(dns.message.make_query(q.question[0].name, "A"), timeout=5.0)
        assert rdatas(r) == ["192.0.2.77"]
    assert k.alive()


def wait_until_forwarded(slow, n, timeout=5.0):
    wait_until(lambda: slow.count() >= n, timeout, 0.01, f"{n} queries at the upstream")


def closed_by_peer(s, timeout):
    """Seconds until the peer closed or reset `s`, without reading anything from it (a client
    that never reads must not start now), or None at the deadline."""
    p = select.poll()
    p.register(s, select.POLLRDHUP | select.POLLHUP | select.POLLERR)
    t0 = time.monotonic()
    left = timeout
    while left > 0:
        if p.poll(int(left * 1000)):
            return time.monotonic() - t0
        left = timeout - (time.monotonic() - t0)
    return None


def send_until_paused(s, chunk, stall=0.5, limit=30.0):
    """Send `chunk` over and over without ever reading until the daemon stops taking it: the
    send buffer stays full for `stall` seconds (the kernel's buffers on both sides grow to
    megabytes first). Returns the bytes sent."""
    s.setblocking(False)
    sent = 0
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        _, w, _ = select.select([], [s], [], stall)
        if not w:
            return sent
        at = sent % len(chunk)
        try:
            sent += s.send(chunk[at:at + 65536])
        except BlockingIOError:
            pass
    raise AssertionError(f"the daemon took {sent} bytes of queries from a client that reads "
                         f"nothing and did not pause it in {limit}s")


def drain_until_quiet(s, quiet=0.5, limit=20.0):
    """Read until nothing arrives for `quiet` seconds; returns the bytes read and when the
    last of them came."""
    s.setblocking(False)
    n = 0
    last = time.monotonic()
    deadline = last + limit
    while time.monotonic() < deadline:
        r, _, _ = select.select([s], [], [], quiet)
        if not r:
            return n, last
        chunk = s.recv(65536)
        if not chunk:
            raise AssertionError(f"the daemon closed the connection after {n} bytes")
        n += len(chunk)
        last = time.monotonic()
    raise AssertionError("the daemon kept sending")


def slot_refused(k):
    """True when a new connection is refused or closed at once (every slot is taken)."""
    try:
        c = tcp_connect(k, timeout=2.0)
    except OSError:
        return True
    try:
        send_msg(c, query(NAMES[0], "A"))
        recv_msg(c, timeout=1.0)
        return False
    except (OSError, EOFError):
        return True
    finally:
        c.close()


def test_stalled_connections_are_closed_and_slots_freed(big_answers, kubemasq):
    """Two clients take both slots and stall: one sends queries and never reads, one reads
    until the daemon stops sending and then neither sends nor reads. Both are paused by the
    daemon; both make no progress, so both are closed after --tcp-idle-timeout (2 s), and a
    new client is served."""
    idle = 2
    k = kubemasq([f"--server=127.0.0.1#{big_answers.port}", "--tcp-max-connections=2",
                  f"--tcp-idle-timeout={idle}"])
    chunk = flood(1000)
    never_reads = small_rcvbuf_socket(k)
    stopped = small_rcvbuf_socket(k)
    assert slot_refused(k), "a third client was served with --tcp-max-connections=2"
    send_until_paused(never_reads, chunk)
    send_until_paused(stopped, chunk)
    got, t_last = drain_until_quiet(stopped)
    assert 0 < got, "the second client got no answers"
    for name, s in (("never reads", never_reads), ("stopped reading", stopped)):
        left = t_last + idle + 8 - time.monotonic()
        assert closed_by_peer(s, left) is not None, \
            f"a client that {name} was still open {idle + 8}s later (idle timeout {idle}s)"
    quiet_for = time.monotonic() - t_last
    never_reads.close()
    stopped.close()
    assert quiet_for >= idle * 0.75, \
        f"closed {quiet_for:.2f}s after its last answer, before the {idle}s idle timeout"
    assert tcp_counters(k)[1] == 2, "the two stalled connections were not counted as idle"
    r = k.tcp(query("new.flow.test.", "A"), timeout=3.0)
    assert rdatas(r) == sorted(ADDRS)
