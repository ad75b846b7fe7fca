# SPDX-License-Identifier: GPL-2.0-or-later
"""The forwarder against upstreams that misbehave: RFC 5452 anti-spoofing (replies with a
wrong ID, from another port, for another question), silence (SERVFAIL within
--upstream-timeout), a silent first server under --strict-order, TC over UDP (retry over TCP),
replies that are garbage or answer another question (ldns-testns), replies whose question is
compressed, and queries over the waiter cap, which must not reach the upstream."""

import re
import signal
import socket
import struct
import time

import dns.flags
import dns.opcode
import dns.rcode
import pytest

from conftest import query, raw_udp, rdatas, wait_until
from scripted_upstream import ScriptedAnswer, make_answer, silent


def spoof_script(q, transport):
    """Three decoys, then the genuine answer 192.0.2.1."""
    return ScriptedAnswer(make_answer(q, ["192.0.2.1"]), decoys=[
        ("udp", make_answer(q, ["6.6.6.1"], qid=q.id ^ 0x5a5a)),	# wrong ID
        ("other-port", make_answer(q, ["6.6.6.2"])),			# wrong source port
        ("udp", make_answer(q, ["6.6.6.3"], qname="evil.spoof.test.")),	# wrong question
    ])


def test_spoofed_replies_are_ignored(scripted, kubemasq):
    up = scripted(spoof_script)
    k = kubemasq([f"--server=127.0.0.1#{up.port}", "--cache-size=0", "--log-queries",
                  "--upstream-retry=2000", "--upstream-timeout=4000"])
    for i, transport in enumerate(["udp", "tcp", "udp"]):
        name = f"spoof{i}.test."
        q = query(name, "A")
        t0 = time.monotonic()
        r = k.udp(q, timeout=5) if transport == "udp" else k.tcp(q, timeout=5)
        elapsed = time.monotonic() - t0
        assert r.rcode() == dns.rcode.NOERROR, f"{name}: {r}"
        assert rdatas(r) == ["192.0.2.1"], f"{name}: took a decoy: {r}"
        # the decoys did not end the query: it was answered by the genuine reply, which comes
        # ~0.15 s after the query, well before any retry
        assert elapsed < 1.5, f"{name}: {elapsed:.2f}s, the genuine reply came at ~0.15s"
        assert up.count(name) == 1, \
            f"{name}: the upstream was asked {up.count(name)} times, the decoys caused a retry"
    assert not re.search(r"reply \S+ is 6\.6\.6\.", k.log_text()), "a decoy was taken"
    # and it counted them: at least the wrong-ID and wrong-question decoys of each query (the
    # other-port one never reaches a connected socket)
    assert bogus_replies(k) >= 2 * 3


def bogus_replies(k):
    """The sum over servers of SIGUSR1's `bogus replies N` and `garbage replies N`."""
    start = k.log_size()
    k.signal(signal.SIGUSR1)
    k.wait_log(r"queries forwarded \d+", start=start)
    k.wait_log(r"bogus replies \d+, garbage replies \d+", start=start)
    text = k.log_text()[start:]
    return sum(int(a) + int(b) for a, b in
               re.findall(r"bogus replies (\d+), garbage replies (\d+)", text))


def test_silent_upstream_servfail_within_timeout(scripted, kubemasq):
    up = scripted(silent)
    k = kubemasq([f"--server=127.0.0.1#{up.port}", "--upstream-timeout=1000",
                  "--upstream-retry=300"])
    for transport in ("udp", "tcp"):
        name = f"quiet-{transport}.test."
        t0 = time.monotonic()
        q = query(name, "A")
        r = k.udp(q, timeout=6) if transport == "udp" else k.tcp(q, timeout=6)
        elapsed = time.monotonic() - t0
        assert r.rcode() == dns.rcode.SERVFAIL, f"{transport}: {r}"
        assert not r.answer
        assert elapsed < 1.0 + 1.0, f"{transport}: SERVFAIL after {elapsed:.2f}s, timeout 1s"
        assert up.count(name) >= 1, "the silent upstream was never asked"
    assert k.alive()


def test_strict_order_skips_a_silent_first_server(scripted, knotd, kubemasq):
    up = scripted(silent)
    k = kubemasq(["--strict-order", f"--server=127.0.0.1#{up.port}",
                  f"--server=127.0.0.1#{knotd.port}", "--upstream-retry=500",
                  "--upstream-timeout=4000", "--cache-size=0"])
    for name, want in (("www.test.", ["192.0.2.10"]), ("mail.test.", ["192.0.2.25"])):
        t0 = time.monotonic()
        r = k.udp(query(name, "A"), timeout=6)
        elapsed = time.monotonic() - t0
        assert r.rcode() == dns.rcode.NOERROR and rdatas(r) == want, f"{name}: {r}"
        assert up.count(name) >= 1, f"{name}: strict order asks the first server first"
        assert 0.4 <= elapsed < 3.0, \
            f"{name}: answered after {elapsed:.2f}s, expected after --upstream-retry (0.5s)"


def test_all_servers_answer_comes_from_the_live_one(scripted, knotd, kubemasq):
    up = scripted(silent)
    k = kubemasq(["--all-servers", f"--server=127.0.0.1#{up.port}",
                  f"--server=127.0.0.1#{knotd.port}", "--upstream-retry=2000",
                  "--upstream-timeout=4000", "--cache-size=0"])
    t0 = time.monotonic()
    r = k.udp(query("www.test.", "A"), timeout=6)
    elapsed = time.monotonic() - t0
    assert rdatas(r) == ["192.0.2.10"]
    assert elapsed < 1.0, f"{elapsed:.2f}s: --all-servers waited for the silent server"
    wait_until(lambda: up.count("www.test") >= 1, 2, what="the silent server to be asked too")


def test_tc_over_udp_retries_over_tcp(testns, kubemasq):
    k = kubemasq([f"--server=127.0.0.1#{testns.port}", "--upstream-timeout=3000"])
    want = [f"198.51.100.{i}" for i in range(1, 7)]
    r = k.udp(query("tc.testns.test.", "A", use_edns=0, payload=4096), timeout=5)
    assert r.rcode() == dns.rcode.NOERROR, str(r)
    assert not r.flags & dns.flags.TC, "the daemon passed the upstream's TC on instead of " \
        "retrying over TCP"
    assert rdatas(r) == want
    r = k.tcp(query("tc.testns.test.", "A"), timeout=5)
    assert rdatas(r) == want and not r.flags & dns.flags.TC


@pytest.mark.parametrize("name", ["garbage.testns.test.", "wrongq.testns.test."])
def test_bad_upstream_reply_is_servfail(testns, kubemasq, name):
    k = kubemasq([f"--server=127.0.0.1#{testns.port}", "--upstream-timeout=1000",
                  "--upstream-retry=400", "--log-queries"])
    t0 = time.monotonic()
    r = k.udp(query(name, "A"), timeout=6)
    elapsed = time.monotonic() - t0
    assert r.rcode() == dns.rcode.SERVFAIL, str(r)
    assert not r.answer, "an answer for another question was passed on"
    assert elapsed < 2.0
    assert not re.search(r"reply \S+ is 203\.0\.113\.66", k.log_text())
    assert bogus_replies(k) >= 1, "the bad reply was not counted"
    assert k.alive()
    assert rdatas(k.udp(query("ping.testns.test.", "A"))) == ["192.0.2.200"]


def compressed_question_reply(q, addr, partly):
    """A reply to `q` with one A record `addr` whose question name is compressed: a pointer
    to the answer's owner written out after it, or (partly) its first label and a pointer to
    the rest of that owner. It reads as the right question; its name is just not in place."""
    labels = [lb.lower() for lb in q.question[0].name.labels if lb]
    name = b"".join(bytes([len(lb)]) + lb for lb in labels) + b"\0"
    flags = 0x8180 | (q.flags & 0x0100)
    head = struct.pack("!HHHHHH", q.id, flags, 1, 1, 0, 0)
    if partly:
        first = bytes([len(labels[0])]) + labels[0]
        owner_at = 12 + len(first) + 2 + 4
        question = first + struct.pack("!H", 0xc000 | (owner_at + len(first)))
    else:
        owner_at = 12 + 2 + 4
        question = struct.pack("!H", 0xc000 | owner_at)
    question += struct.pack("!HH", 1, 1)
    rr = name + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(addr)
    return head + question + rr


@pytest.mark.parametrize("partly", [False, True], ids=["pointer", "label-and-pointer"])
def test_compressed_question_reply_is_refused(scripted, kubemasq, partly):
    """The question is rewritten in place with the client's spelling, so a reply whose
    question is compressed would reach the client malformed: it is dropped as garbage, and the
    genuine reply that follows is taken."""
    def script(q, transport):
        return ScriptedAnswer(make_answer(q, ["192.0.2.1"]), decoys=[
            ("udp", compressed_question_reply(q, "6.6.6.6", partly))])
    up = scripted(script)
    k = kubemasq([f"--server=127.0.0.1#{up.port}", "--log-queries",
                  "--upstream-retry=2000", "--upstream-timeout=4000"])
    for i in range(2):
        name = f"Compressed{i}.Example."
        r = k.udp(query(name, "A"), timeout=5)	# dnspython raises on a malformed answer
        assert r.rcode() == dns.rcode.NOERROR, str(r)
        assert r.question[0].name.to_text() == name
        assert rdatas(r) == ["192.0.2.1"], f"{name}: took the compressed reply: {r}"
        assert up.count(name) == 1, "the dropped reply caused a retry"
    assert not re.search(r"reply \S+ is 6\.6\.6\.6", k.log_text())
    # cached: the genuine reply, not the compressed one
    assert rdatas(k.udp(query("compressed0.example.", "A"))) == ["192.0.2.1"]
    assert bogus_replies(k) >= 2, "the compressed replies were not counted"


def test_over_the_waiter_cap_nothing_reaches_the_upstream(scripted, kubemasq):
    """Once as many clients wait as the daemon holds (its total-waiter cap), a query for a new
    name is answered SERVFAIL at once and is not sent upstream first. The clients wait on a
    silent upstream, 500 to a name (coalesced), until the daemon logs the cap."""
    up = scripted(silent)
    k = kubemasq([f"--server=127.0.0.1#{up.port}", "--upstream-timeout=60000",
                  "--upstream-retry=60000", "--dns-forward-max=65535"])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    n = 0
    try:
        deadline = time.monotonic() + 60
        while "too many queries waiting" not in k.log_text():
            assert time.monotonic() < deadline, "the waiter cap was never reached"
            for _ in range(2000):
                q = query(f"fill{n // 500}.cap.example.", "A")
                q.id = n & 0xffff
                s.sendto(q.to_wire(), ("127.0.0.1", k.port))
                n += 1
            # pace the sender by a round trip the daemon answers itself (opcode STATUS)
            status = query("pace.cap.example.", "A")
            status.set_opcode(dns.opcode.STATUS)
            assert raw_udp(status.to_wire(), k.port, timeout=5) is not None
    finally:
        s.close()
    probes = [f"over{i}.cap.example." for i in range(20)]
    for name in probes:
        r = k.udp(query(name, "A"), timeout=3)
        assert r.rcode() == dns.rcode.SERVFAIL, str(r)
    # The daemon's sends for the probes (if any) were queued at the upstream's socket before
    # their SERVFAILs left; a marker sent now lands behind them in the same queue.
    marker = "marker.cap.example."
    m = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        m.sendto(query(marker, "A").to_wire(), ("127.0.0.1", up.port))
    finally:
        m.close()
    wait_until(lambda: up.count(marker) == 1, 5, what="the marker at the upstream")
    sent = {name: up.count(name) for name in probes if up.count(name)}
    assert not sent, f"refused queries reached the upstream: {sent}"
    assert up.count("fill0.cap.example.") >= 1
