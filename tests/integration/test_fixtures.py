# SPDX-License-Identifier: GPL-2.0-or-later
"""The fixtures checked against the real servers directly, without the daemon: when one of
these fails, the daemon tests that use the fixture say nothing about the daemon."""

import socket
import time

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from conftest import query, rdatas, tcp, udp
from scripted_upstream import ScriptedAnswer, answer_all, make_answer, silent


def test_knotd_serves_the_zone(knotd):
    r = knotd.ask("www.test.", "A")
    assert r.rcode() == dns.rcode.NOERROR and rdatas(r) == ["192.0.2.10"]
    assert rdatas(knotd.ask("www.test.", "AAAA"), "AAAA") == ["2001:db8::10"]
    assert rdatas(knotd.ask("test.", "MX"), "MX") == ["10 mail.test.", "20 mail2.test."]
    assert rdatas(knotd.ask("txt.test.", "TXT"), "TXT") == ['"hello world" "second string"']
    assert rdatas(knotd.ask("_sip._tcp.test.", "SRV"), "SRV") == ["10 20 5060 sip.test."]
    assert rdatas(knotd.ask("multi.test.", "A")) == [f"192.0.2.{100 + i}" for i in range(1, 6)]
    r = knotd.ask("alias.test.", "A")
    assert rdatas(r, "CNAME") == ["www.test."] and rdatas(r) == ["192.0.2.10"]
    r = knotd.ask("nope.test.", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert r.authority and r.authority[0].rdtype == dns.rdatatype.SOA


def test_knotd_big_txt_truncates_over_udp(knotd):
    r = knotd.ask("big.test.", "TXT", transport="udp")
    assert r.flags & dns.flags.TC
    full = knotd.ask("big.test.", "TXT")
    assert not full.flags & dns.flags.TC
    assert len(full.answer[0]) == 18
    assert sum(len(s) for rd in full.answer[0] for s in rd.strings) > 4000
    assert len(full.to_wire()) > 4096


def test_testns_truncates_udp_and_answers_tcp(testns):
    r = udp(query("tc.testns.test.", "A"), testns.port)
    assert r.flags & dns.flags.TC and not r.answer
    r = tcp(query("tc.testns.test.", "A"), testns.port)
    assert not r.flags & dns.flags.TC and len(rdatas(r)) == 6


def test_testns_garbage_and_wrong_question(testns):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.sendto(query("garbage.testns.test.", "A").to_wire(), ("127.0.0.1", testns.port))
    data = s.recv(65535)
    with pytest.raises(Exception):
        dns.message.from_wire(data)
    q = query("wrongq.testns.test.", "A")
    s.sendto(q.to_wire(), ("127.0.0.1", testns.port))
    r = dns.message.from_wire(s.recv(65535))
    assert r.id == q.id and r.question[0].name.to_text() == "other.testns.test."
    s.close()


def test_scripted_counts_and_answers(scripted):
    up = scripted(answer_all(("192.0.2.1",)))
    assert rdatas(udp(query("a.test.", "A"), up.port)) == ["192.0.2.1"]
    assert rdatas(tcp(query("A.test.", "A"), up.port)) == ["192.0.2.1"]
    assert up.count("a.test") == 2 and up.count("a.test", transport="tcp") == 1


def test_scripted_silence_and_delay(scripted):
    up = scripted(silent)
    with pytest.raises(dns.exception.Timeout):
        udp(query("x.test.", "A"), up.port, timeout=0.3)
    assert up.count("x.test.") == 1
    slow = scripted(answer_all(delay=0.3))
    t0 = time.monotonic()
    udp(query("x.test.", "A"), slow.port)
    assert time.monotonic() - t0 >= 0.3


def test_scripted_decoys_come_first(scripted):
    def script(q, transport):
        return ScriptedAnswer(make_answer(q, ["192.0.2.1"]), decoys=[
            ("udp", make_answer(q, ["6.6.6.1"], qid=q.id ^ 0x5a5a)),
            ("other-port", make_answer(q, ["6.6.6.2"])),
            ("udp", make_answer(q, ["6.6.6.3"], qname="other.test.")),
        ])
    up = scripted(script)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    q = query("spoof.test.", "A")
    s.sendto(q.to_wire(), ("127.0.0.1", up.port))
    got = []
    for _ in range(4):
        data, peer = s.recvfrom(65535)
        got.append((dns.message.from_wire(data), peer[1]))
    s.close()
    assert got[0][0].id != q.id
    assert got[1][1] != up.port
    assert got[2][0].question[0].name.to_text() == "other.test."
    assert rdatas(got[3][0]) == ["192.0.2.1"] and got[3][0].id == q.id and got[3][1] == up.port
