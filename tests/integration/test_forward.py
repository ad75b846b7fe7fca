# SPDX-License-Identifier: GPL-2.0-or-later
"""Forwarding to a real authoritative server (knotd): every record type the zone has, over
UDP and TCP, with dnspython and with kdig, compared to what knotd itself answers; the 4 KB TXT
RRset and truncation; question case echo; local answers (--address, --server=/dom/) that
never reach the upstream."""

import re

import dns.flags
import dns.rcode
import dns.rdatatype
import pytest

from conftest import kdig, query, rdatas, rrsets_text
from scripted_upstream import answer_all

CASES = [
    ("www.test.", "A"),
    ("www.test.", "AAAA"),
    ("test.", "MX"),
    ("txt.test.", "TXT"),
    ("_sip._tcp.test.", "SRV"),
    ("alias.test.", "A"),
    ("multi.test.", "A"),
    ("nope.test.", "A"),
    ("www.test.", "MX"),
]


def assert_same_answer(got, ref, what):
    assert got.rcode() == ref.rcode(), f"{what}: rcode {got.rcode()} != knotd's {ref.rcode()}"
    assert got.flags & dns.flags.QR, f"{what}: QR not set"
    assert not got.flags & dns.flags.TC, f"{what}: truncated"
    assert rrsets_text(got.answer) == rrsets_text(ref.answer), f"{what}: answer differs"
    # TTLs come from knotd, possibly aged by a cache, never raised
    ref_ttl = {(r.name, r.rdtype): r.ttl for r in ref.answer}
    for rrset in got.answer:
        assert 0 <= rrset.ttl <= ref_ttl[(rrset.name, rrset.rdtype)], f"{what}: TTL raised"
    if ref.rcode() == dns.rcode.NXDOMAIN or not ref.answer:
        # the negative answer carries the SOA (RFC 2308), so it can be cached downstream
        assert [r.rdtype for r in got.authority] == [dns.rdatatype.SOA], \
            f"{what}: no SOA in the negative answer"


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_forward_matches_knotd(knotd, kubemasq, transport):
    k = kubemasq([f"--server=127.0.0.1#{knotd.port}"])
    for name, rdtype in CASES:
        ref = knotd.ask(name, rdtype)
        for attempt in ("miss", "hit"):	# the second one may come from the cache
            q = query(name, rdtype)
            got = k.udp(q) if transport == "udp" else k.tcp(q)
            assert_same_answer(got, ref, f"{name} {rdtype} over {transport} ({attempt})")


def kdig_answer(out):
    """kdig's ANSWER SECTION as a set of (name, class, type, rdata) and its status."""
    m = re.search(r"status: (\w+)", out)
    status = m.group(1) if m else None
    rrs = set()
    section = None
    for line in out.splitlines():
        if line.startswith(";; ") and line.endswith("SECTION:"):
            section = line
            continue
        if not line.strip():
            section = None
            continue
        if section == ";; ANSWER SECTION:" and not line.startswith(";"):
            f = line.split(None, 4)
            rrs.add((f[0].lower(), f[2], f[3], f[4]))
    return status, rrs


@pytest.mark.parametrize("mode", ["+notcp", "+tcp"])
def test_forward_with_kdig(knotd, kubemasq, mode):
    k = kubemasq([f"--server=127.0.0.1#{knotd.port}"])
    for name, rdtype in CASES:
        common = [name, rdtype, mode, "+timeout=3", "+retry=0", "+nocookie"]
        ref = kdig("@127.0.0.1", "-p", str(knotd.port), *common)
        got = kdig("@127.0.0.1", "-p", str(k.port), *common)
        assert got.returncode == 0, f"kdig {name} {rdtype} {mode} failed: {got.stdout}{got.stderr}"
        ref_status, ref_rrs = kdig_answer(ref.stdout)
        status, rrs = kdig_answer(got.stdout)
        assert status == ref_status, f"{name} {rdtype} {mode}: {got.stdout}"
        assert rrs == ref_rrs, f"{name} {rdtype} {mode}: {got.stdout}"


def test_big_txt_truncated_over_udp_whole_over_tcp(knotd, kubemasq):
    k = kubemasq([f"--server=127.0.0.1#{knotd.port}"])
    ref = knotd.ask("big.test.", "TXT")
    assert len(ref.answer[0]) == 18

    r = k.udp(query("big.test.", "TXT", use_edns=False))
    assert r.flags & dns.flags.TC, "4.5 KB over UDP without EDNS must set TC"
    assert not r.answer, "a truncated reply carries no partial RRset"
    assert r.rcode() == dns.rcode.NOERROR and r.edns < 0

    r = k.udp(query("big.test.", "TXT", use_edns=0, payload=1232))
    assert r.flags & dns.flags.TC, "4.5 KB does not fit EDNS 1232 either"
    assert not r.answer
    assert r.edns >= 0

    for _ in range(2):	# miss and (possibly) cache hit
        r = k.tcp(query("big.test.", "TXT"))
        assert not r.flags & dns.flags.TC
        assert r.rcode() == dns.rcode.NOERROR
        assert rrsets_text(r.answer) == rrsets_text(ref.answer)

    # and UDP again after the TCP answer may sit in the cache: still truncated
    r = k.udp(query("big.test.", "TXT", use_edns=False))
    assert r.flags & dns.flags.TC and not r.answer


def test_question_case_is_echoed(knotd, kubemasq):
    k = kubemasq([f"--server=127.0.0.1#{knotd.port}"])
    for spelling in ("WwW.TeSt.", "wWw.tEsT.", "WWW.TEST."):
        for transport in ("udp", "tcp"):
            q = query(spelling, "A")
            r = k.udp(q) if transport == "udp" else k.tcp(q)
            assert r.question[0].name.to_text() == spelling, \
                f"{transport}: asked {spelling}, question came back as {r.question[0].name}"
            assert rdatas(r) == ["192.0.2.10"]


def test_address_answers_locally(scripted, kubemasq):
    up = scripted(answer_all(("192.0.2.1",)))
    k = kubemasq([f"--server=127.0.0.1#{up.port}", "--address=/blocked.test/1.2.3.4",
                  "--cache-size=0"])
    for name in ("blocked.test.", "www.blocked.test.", "BlOcKeD.TeSt."):
        r = k.udp(query(name, "A"))
        assert r.rcode() == dns.rcode.NOERROR, name
        assert rdatas(r) == ["1.2.3.4"], name
        r = k.tcp(query(name, "A"))
        assert rdatas(r) == ["1.2.3.4"], name
    assert up.count("blocked.test") == 0 and up.count("www.blocked.test") == 0
    # a name outside the domain (even one that ends in the same letters) is forwarded
    r = k.udp(query("notblocked.test.", "A"))
    assert rdatas(r) == ["192.0.2.1"]
    assert up.count("notblocked.test") == 1


def test_local_only_domain_is_nxdomain_unforwarded(scripted, kubemasq):
    up = scripted(answer_all(("192.0.2.1",)))
    k = kubemasq([f"--server=127.0.0.1#{up.port}", "--server=/local.test/", "--cache-size=0"])
    for name in ("local.test.", "host.local.test."):
        for transport in ("udp", "tcp"):
            q = query(name, "A")
            r = k.udp(q) if transport == "udp" else k.tcp(q)
            assert r.rcode() == dns.rcode.NXDOMAIN, f"{name} over {transport}: {r}"
            assert not r.answer
    assert up.count("local.test") == 0 and up.count("host.local.test") == 0
    r = k.udp(query("other.test.", "A"))
    assert rdatas(r) == ["192.0.2.1"] and up.count("other.test") == 1
