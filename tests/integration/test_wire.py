# SPDX-License-Identifier: GPL-2.0-or-later
"""The front end's handling of the wire: EDNS in and out, BADVERS, opcodes it does not
implement, malformed queries (FORMERR with the client's ID), garbage that gets no answer, and
a thousand random datagrams that must crash nothing."""

import random
import socket
import struct

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import pytest

from conftest import header, parse_header, qname_wire, query, raw_udp, rdatas


@pytest.fixture
def daemon(knotd, kubemasq):
    return kubemasq([f"--server=127.0.0.1#{knotd.port}"])


def test_edns_in_edns_out(daemon):
    for transport in ("udp", "tcp"):
        q = query("www.test.", "A", use_edns=0, payload=1232)
        r = daemon.udp(q) if transport == "udp" else daemon.tcp(q)
        assert r.edns == 0, f"{transport}: a query with OPT gets an OPT back"
        assert rdatas(r) == ["192.0.2.10"]
        q = query("www.test.", "A", use_edns=False)
        r = daemon.udp(q) if transport == "udp" else daemon.tcp(q)
        assert r.edns == -1, f"{transport}: a query without OPT gets none"
        assert not r.additional, f"{transport}: nothing in additional for a plain query"
        assert rdatas(r) == ["192.0.2.10"]


def test_edns_version_1_is_badvers(daemon):
    for transport in ("udp", "tcp"):
        q = query("www.test.", "A")
        # not make_query(use_edns=1): dnspython takes that 1 for True, i.e. version 0
        q.use_edns(1, payload=1232)
        assert q.edns == 1 and q.to_wire()[-5] == 1	# OPT TTL: ext-rcode, VERSION, flags
        r = daemon.udp(q) if transport == "udp" else daemon.tcp(q)
        assert r.rcode() == dns.rcode.BADVERS, f"{transport}: rcode {r.rcode()}"
        assert r.edns == 0, "BADVERS is answered with the version we do support (RFC 6891)"
        assert not r.answer


@pytest.mark.parametrize("opcode", [dns.opcode.NOTIFY, dns.opcode.STATUS])
def test_unimplemented_opcode_is_notimp(daemon, opcode):
    q = query("www.test.", "SOA")
    q.set_opcode(opcode)
    data = raw_udp(q.to_wire(), daemon.port)
    assert data is not None, f"no reply to opcode {dns.opcode.to_text(opcode)}"
    h = parse_header(data)
    assert h["id"] == q.id and h["qr"]
    assert h["rcode"] == dns.rcode.NOTIMP, f"rcode {h['rcode']}"
    assert h["opcode"] == opcode
    assert h["an"] == 0


MALFORMED = {
    "qdcount 2, one question": header(0x1234, qd=2) + qname_wire("www.test.") + b"\0\1\0\1",
    "question cut in the name": header(0x2345) + b"\x03www\x04te",
    "question without class": header(0x3456) + qname_wire("www.test.") + b"\0\1",
    "label pointer loop": header(0x4567) + b"\xc0\x0c\0\1\0\1",
    "label longer than the packet": header(0x5678) + b"\x3fwww\0\0\1\0\1",
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_query_is_formerr_with_same_id(daemon, name):
    data = MALFORMED[name]
    qid = struct.unpack("!H", data[:2])[0]
    reply = raw_udp(data, daemon.port)
    assert reply is not None, f"{name}: no reply (a valid header deserves FORMERR)"
    h = parse_header(reply)
    assert h["id"] == qid, f"{name}: reply ID {h['id']:#x} != {qid:#x}"
    assert h["qr"], name
    assert h["rcode"] == dns.rcode.FORMERR, f"{name}: rcode {h['rcode']}"
    assert h["an"] == 0


def test_short_garbage_gets_no_answer(daemon):
    assert raw_udp(b"\x01\x02\x03\x04\x05", daemon.port, timeout=0.5) is None
    assert raw_udp(b"", daemon.port, timeout=0.2) is None
    r = daemon.udp(query("www.test.", "A"))
    assert rdatas(r) == ["192.0.2.10"]


def test_a_response_sent_to_the_daemon_is_not_answered(daemon):
    """Answering a packet with QR=1 is how two servers start a loop."""
    q = query("www.test.", "A")
    resp = dns.message.make_response(q)
    assert raw_udp(resp.to_wire(), daemon.port, timeout=0.5) is None
    assert rdatas(daemon.udp(query("www.test.", "A"))) == ["192.0.2.10"]


def test_thousand_garbage_datagrams_crash_nothing(daemon):
    rng = random.Random(20240605)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    sent = 0
    for i in range(1000):
        kind = i % 4
        if kind == 0:		# pure noise, any length up to 1500
            data = rng.randbytes(rng.randrange(0, 1500))
        elif kind == 1:		# a query header followed by noise
            data = header(rng.randrange(65536), flags=rng.randrange(65536) & ~0x8000,
                          qd=rng.randrange(4), an=rng.randrange(3), ns=rng.randrange(3),
                          ar=rng.randrange(3)) + rng.randbytes(rng.randrange(0, 300))
        elif kind == 2:		# a real query with a few bytes flipped or cut
            w = bytearray(query(f"n{i}.test.", rng.choice(["A", "AAAA", "TXT"]),
                                use_edns=rng.choice([False, 0])).to_wire())
            for _ in range(rng.randrange(1, 4)):
                w[rng.randrange(2, len(w))] = rng.randrange(256)
            data = bytes(w[:rng.randrange(12, len(w) + 1)])
        else:			# EDNS with random option bytes
            w = query(f"e{i}.test.", "A", use_edns=0).to_wire()
            opt_len = rng.randrange(0, 64)
            data = w[:-2] + struct.pack("!H", opt_len) + rng.randbytes(rng.randrange(0, 64))
        try:
            s.sendto(data, ("127.0.0.1", daemon.port))
            sent += 1
        except BlockingIOError:
            pass
        # drain replies so our socket buffer never fills
        try:
            while True:
                s.recv(65535)
        except BlockingIOError:
            pass
    s.close()
    assert sent >= 900
    assert daemon.alive(), f"the daemon died: {daemon.log_text()[-3000:]}"
    r = daemon.udp(query("www.test.", "A"), timeout=5)
    assert rdatas(r) == ["192.0.2.10"]
    r = daemon.tcp(query("multi.test.", "A"), timeout=5)
    assert len(rdatas(r)) == 5
    assert daemon.alive()


def padded_query(name, size, qid):
    """A valid A query with EDNS padding (option 12) making it exactly `size` bytes."""
    base = query(name, "A", use_edns=0)
    base.id = qid
    bare = len(base.to_wire())
    pad = size - bare - 4                      # option code + option length
    assert pad >= 0
    q = query(name, "A", use_edns=0, options=[dns.edns.GenericOption(12, b"\0" * pad)])
    q.id = qid
    wire = q.to_wire(max_size=65535)
    assert len(wire) == size
    return wire


@pytest.mark.parametrize("size", [100, 511, 512, 513, 1500, 4096])
def test_queries_of_every_size_up_to_4096(daemon, size):
    """The front end receives the first 512 bytes of a datagram apart from the rest: queries on
    either side of that line, and up to the 4096-byte limit, are answered alike."""
    wire = padded_query("www.test.", size, 4000 + size)
    resp = raw_udp(wire, daemon.port, timeout=2)
    assert resp is not None, f"a {size}-byte query got no answer"
    r = dns.message.from_wire(resp)
    assert r.id == 4000 + size
    assert rdatas(r) == ["192.0.2.10"]


def test_query_over_4096_is_dropped(daemon):
    wire = padded_query("www.test.", 4097, 77)
    assert raw_udp(wire, daemon.port, timeout=0.5) is None
    assert rdatas(daemon.udp(query("www.test.", "A"))) == ["192.0.2.10"]
