# SPDX-License-Identifier: GPL-2.0-or-later
"""What an operator reads: --log-queries=extra lines (dnsmasq's serial number and client
address/port on every line, and the answer records in zone-file form, formatted by ldns) and
the cache dump SIGUSR1 writes with --log-queries (each entry's records in zone-file form,
at most 10000 entries with a line for the rest).

The records in the log are parsed back with dnspython and compared with what the client was
answered. Types kubemasq has no formatter of its own for (TXT with spaces, SRV, MX, CAA and an
unknown type in RFC 3597's \\# form) show the text came from ldns, and the binary's dynamic
symbols show it calls libldns. Waits poll the log with deadlines; nothing sleeps.
"""

import re
import shutil
import signal
import socket
import subprocess

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from conftest import Dnsmasq, kubemasq_bin, query, wait_until
from scripted_upstream import ScriptedAnswer

ZONE = "log.test."
PREFIX = r"(\d+) 127\.0\.0\.1/(\d+) "

# qtype -> the rdata the upstream answers with (two records where the type allows)
RECORDS = {
    "A": ["192.0.2.1", "192.0.2.2"],
    "TXT": ['"hello world" "with \\"quotes\\""', '"second"'],
    "SRV": ["10 60 5060 sip1.log.test.", "20 0 5061 sip2.log.test."],
    "MX": ["10 mx1.log.test."],
    "CAA": ['0 issue "ca.example.net"'],
    "TYPE65534": ["\\# 4 deadbeef"],
}


def answer(q, transport):
    """Records of RECORDS by the query's type, TTL 300; names starting nx- get NXDOMAIN with
    a SOA (MINIMUM 60), many- 70 A records."""
    resp = dns.message.make_response(q)
    resp.flags |= dns.flags.RA
    qq = q.question[0]
    if qq.name.labels[0].startswith(b"nx-"):
        resp.set_rcode(dns.rcode.NXDOMAIN)
        resp.authority.append(dns.rrset.from_text(
            ZONE, 300, "IN", "SOA", f"ns.{ZONE} admin.{ZONE} 7 3600 600 86400 60"))
    elif qq.name.labels[0].startswith(b"many-"):
        resp.answer.append(dns.rrset.from_text_list(
            qq.name, 300, "IN", "A", [f"192.0.2.{i}" for i in range(1, 71)]))
    else:
        rdtype = dns.rdatatype.to_text(qq.rdtype)
        resp.answer.append(dns.rrset.from_text_list(qq.name, 300, "IN", rdtype,
                                                    RECORDS.get(rdtype, RECORDS["A"])))
    return ScriptedAnswer(resp.to_wire())


def ask(k, name, rdtype):
    """One UDP query from a fresh socket: (response, client port)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", 0))
        s.settimeout(3)
        s.sendto(query(name, rdtype).to_wire(), (k.host, k.port))
        return dns.message.from_wire(s.recv(65535)), s.getsockname()[1]
    finally:
        s.close()


def parse_rr(text):
    """'NAME TTL CLASS TYPE RDATA...' -> an RRset of one record (dnspython's parser)."""
    name, ttl, rdclass, rdtype, rdata = text.split(None, 4)
    return dns.rrset.from_text(name, int(ttl), rdclass, rdtype, rdata)


def merge(rrs):
    """Records parsed one per line -> one RRset (same name, class and type) with its TTL."""
    out = None
    for rr in rrs:
        if out is None:
            out = dns.rrset.RRset(rr.name, rr.rdclass, rr.rdtype)
            out.update_ttl(rr.ttl)
        assert (rr.name, rr.rdclass, rr.rdtype) == (out.name, out.rdclass, out.rdtype)
        assert rr.ttl == out.ttl, "one RRset, one TTL"
        out.union_update(rr)
    return out


def lines(k, pattern, start=0):
    return [m for m in re.finditer(pattern, k.log_text()[start:], re.M)]


@pytest.fixture
def up(scripted):
    return scripted(answer)


def start(kubemasq, up, *args):
    return kubemasq([f"--server=127.0.0.1#{up.port}", *args])


def test_binary_calls_libldns():
    exe = kubemasq_bin()
    if shutil.which("nm") is None or shutil.which("ldd") is None:
        pytest.skip("nm or ldd missing")
    syms = subprocess.run(["nm", "-D", "--undefined-only", exe], capture_output=True,
                          text=True, check=True).stdout
    for sym in ("ldns_wire2pkt", "ldns_rr2buffer_str"):
        assert re.search(rf"\bU {sym}\b", syms), f"{exe} does not call {sym}"
    libs = subprocess.run(["ldd", exe], capture_output=True, text=True, check=True).stdout
    assert "libldns" in libs, libs


@pytest.mark.parametrize("rdtype", list(RECORDS))
def test_extra_forwarded_then_cached(kubemasq, up, rdtype):
    k = start(kubemasq, up, "--log-queries=extra")
    name = f"{rdtype.lower()}.{ZONE}"
    resp, port = ask(k, name, rdtype)
    got = resp.find_rrset(resp.answer, dns.name.from_text(name), dns.rdataclass.IN,
                          dns.rdatatype.from_text(rdtype))
    # dnsmasq's shape: SERIAL ADDR/PORT query[TYPE] NAME from ADDR, then forwarded
    q = k.wait_log(rf"^.*: {PREFIX}query\[{rdtype}\] {re.escape(name[:-1])} from "
                   rf"127\.0\.0\.1$")
    serial = q.group(1)
    assert q.group(2) == str(port), "the client's port"
    k.wait_log(rf": {serial} 127\.0\.0\.1/{port} forwarded {re.escape(name[:-1])} to "
               rf"127\.0\.0\.1#{up.port}$")
    k.wait_log(rf": {serial} 127\.0\.0\.1/{port} reply ")
    wait_until(lambda: len(lines(k, rf": {serial} 127\.0\.0\.1/{port} reply (.*)$"))
               >= len(got), 5, what="a reply line per record")
    replies = [parse_rr(m.group(1)) for m in
               lines(k, rf": {serial} 127\.0\.0\.1/{port} reply (.*)$")]
    logged = merge(replies)
    assert logged == got and logged.ttl == got.ttl, (logged, got)

    # the same question again: a hit, logged with the next serial and the new client
    pos = k.log_size()
    resp2, port2 = ask(k, name, rdtype)
    got2 = resp2.find_rrset(resp2.answer, dns.name.from_text(name), dns.rdataclass.IN,
                            dns.rdatatype.from_text(rdtype))
    q2 = k.wait_log(rf": {PREFIX}query\[{rdtype}\] ", start=pos)
    assert int(q2.group(1)) > int(serial) and q2.group(2) == str(port2)
    pat = rf": {q2.group(1)} 127\.0\.0\.1/{port2} cached (.*)$"
    wait_until(lambda: len(lines(k, pat, pos)) >= len(got2), 5, what="cached lines")
    cached = merge(parse_rr(m.group(1)) for m in lines(k, pat, pos))
    assert cached == got2 and cached.ttl == got2.ttl <= 300, (cached, got2)
    assert up.count(name) == 1, "the second answer came from the cache"


def test_extra_negative_keeps_dnsmasq_line(kubemasq, up):
    k = start(kubemasq, up, "--log-queries=extra")
    name = "nx-gone." + ZONE
    resp, port = ask(k, name, "A")
    assert resp.rcode() == dns.rcode.NXDOMAIN
    k.wait_log(rf": \d+ 127\.0\.0\.1/{port} reply {re.escape(name[:-1])} is NXDOMAIN$")


def test_extra_caps_record_lines(kubemasq, up):
    """At most 64 record lines per answer, then one that counts the rest."""
    k = start(kubemasq, up, "--log-queries=extra")
    name = "many-a." + ZONE
    _, port = ask(k, name, "A")
    k.wait_log(rf": \d+ 127\.0\.0\.1/{port} reply {re.escape(name[:-1])} is 6 more records$")
    recs = [parse_rr(m.group(1)) for m in lines(k, rf"/{port} reply ({re.escape(name)} .*)$")]
    assert len(recs) == 64 and len(merge(recs)) == 64


def test_plain_log_queries_has_no_prefix(kubemasq, up):
    k = start(kubemasq, up, "--log-queries")
    name = "a." + ZONE
    ask(k, name, "A")
    k.wait_log(rf"\]: reply {re.escape(name[:-1])} is 192\.0\.2\.1$")
    assert not re.search(r"\]: \d+ 127\.0\.0\.1/\d+ ", k.log_text())


@pytest.mark.parametrize("value,ok", [("extra", True), ("proto", True), ("auth", True),
                                      ("", True), ("bogus", False)])
def test_log_queries_values(value, ok, tmp_path):
    arg = "--log-queries" + (f"={value}" if value else "")
    conf = tmp_path / "k.conf"
    conf.write_text(arg[2:] + "\n")
    for how in ([arg], [f"--conf-file={conf}"]):
        r = subprocess.run([kubemasq_bin(), "--test", "--no-resolv", *how],
                           capture_output=True, text=True, timeout=10)
        assert (r.returncode == 0) == ok, (how, r.stdout, r.stderr)
        if not ok:
            assert "log-queries" in r.stderr and "bogus" in r.stderr, r.stderr


def sigusr1_dump(k):
    """Send SIGUSR1, then a marker query: its query line comes after the whole dump (the dump
    is written in one go). Returns the log text of the dump."""
    pos = k.log_size()
    k.signal(signal.SIGUSR1)
    k.wait_log(r"cache dump: ", start=pos)
    marker = "dump-done.marker.test."
    k.udp(query(marker, "A"))
    m = k.wait_log(rf"query\[A\] {re.escape(marker[:-1])} ", start=pos)
    return k.log_text()[pos:pos + m.start()]


def dump_entries(text):
    """{(name, type): (ttl_left, [record RRsets])} from the dump's entry and record lines."""
    entries, cur = {}, None
    for line in text.splitlines():
        m = re.search(r"\]: cache (\S+) (\S+) (\d+) ", line)
        if m:
            cur = (m.group(1).rstrip(".") + ".", dns.rdatatype.from_text(m.group(2)))
            entries[cur] = (int(m.group(3)), [])
            continue
        m = re.search(r"\]: record (.*)$", line)
        if m and cur and not re.match(r"\d+ more not shown$", m.group(1)):
            entries[cur][1].append(parse_rr(m.group(1)))
    return entries


def test_sigusr1_dump_in_zone_file_form(kubemasq, up):
    k = start(kubemasq, up, "--log-queries")
    answers = {}
    for rdtype in RECORDS:
        name = f"dump-{rdtype.lower()}.{ZONE}"
        resp, _ = ask(k, name, rdtype)
        answers[(name, dns.rdatatype.from_text(rdtype))] = resp.answer[0]
    resp, _ = ask(k, "nx-dump." + ZONE, "A")
    soa = resp.authority[0]
    entries = dump_entries(sigusr1_dump(k))
    for (name, rdtype), got in answers.items():
        assert (name, rdtype) in entries, (name, rdtype, sorted(entries))
        left, rrs = entries[(name, rdtype)]
        rrset = merge(rrs)
        assert rrset == got, (rrset, got)
        assert rrset.ttl == left <= 300, "the records show the TTL a hit gives now"
    left, rrs = entries[("nx-dump." + ZONE, dns.rdatatype.A)]
    assert merge(rrs) == soa and 0 < left <= 60, "a negative entry shows its SOA"


def test_sigusr1_dump_cap(kubemasq, up):
    """STATS_DUMP_MAX (10000) entries at most, and a line with the number left out. Local
    answers (--address with --local-ttl) are cached without a round trip to an upstream."""
    k = kubemasq(["--address=/cap.test/192.0.2.9", "--local-ttl=600", "--log-queries"])
    n = 10050
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.settimeout(3)
    try:
        for base in range(0, n, 200):
            batch = range(base, min(n, base + 200))
            for i in batch:
                s.sendto(query(f"h{i}.cap.test.", "A").to_wire(), (k.host, k.port))
            for _ in batch:
                s.recv(512)
    finally:
        s.close()
    pos = k.log_size()
    k.signal(signal.SIGUSR1)
    m = k.wait_log(r"entries (\d+), hits", start=pos)
    total = int(m.group(1))
    assert total >= n, m.group(0)
    left = k.wait_log(r"cache dump: (\d+) more entries not shown$", start=pos, timeout=20)
    assert int(left.group(1)) == total - 10000
    text = k.log_text()[pos:]
    assert len(re.findall(r"\]: cache h\d+\.cap\.test A ", text)) == 10000
    recs = re.findall(r"\]: record (h\d+\.cap\.test\. .*)$", text, re.M)
    assert len(recs) == 10000 and parse_rr(recs[0]).ttl <= 600


def test_extra_query_and_forward_lines_as_dnsmasq(kubemasq, up, tmp_path):
    """Side by side with dnsmasq 2.90: the query and forwarded lines of one miss read alike
    (serial, client address/port, wording) once the serial and ports are set aside. The reply
    lines differ on purpose: ours are the records in zone-file form."""
    dm = Dnsmasq(tmp_path, up.port, ["--no-hosts", "--log-queries=extra"])
    try:
        k = start(kubemasq, up, "--log-queries=extra")
        shapes = {}
        for who, port, text in (("dnsmasq", dm.port, lambda: dm.log.read_text()),
                                ("kubemasq", k.port, k.log_text)):
            name = f"{who}.{ZONE}"
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            s.settimeout(3)
            s.sendto(query(name, "A").to_wire(), ("127.0.0.1", port))
            s.recv(65535)
            client = s.getsockname()[1]
            s.close()
            rx = re.compile(rf"^.*?: (\d+ 127\.0\.0\.1/{client} (?:query|forwarded)\S* .*)$", re.M)
            found = wait_until(lambda: len(rx.findall(text())) >= 2 and rx.findall(text()), 5,
                               what=f"{who}'s query and forwarded lines")
            shapes[who] = [re.sub(r"^\d+ ", "S ", line).replace(f"/{client} ", "/P ")
                           .replace(name[:-1], "NAME").replace(f"#{up.port}", "#U")
                           for line in found[:2]]
        assert shapes["kubemasq"] == shapes["dnsmasq"], shapes
        assert shapes["kubemasq"] == ["S 127.0.0.1/P query[A] NAME from 127.0.0.1",
                                      "S 127.0.0.1/P forwarded NAME to 127.0.0.1#U"]
    finally:
        dm.stop()
