# SPDX-License-Identifier: GPL-2.0-or-later
"""The answer cache seen from outside: the daemon in front of a scripted upstream that counts
every query it receives. A repeat must not reach the upstream; TTLs count down by the seconds
elapsed; RFC 2308 negative caching (with a SOA for its minimum, without one only with
--neg-ttl); SERVFAIL and TTL 0 never cached; 50 simultaneous identical queries share one
upstream query and each get their own ID and spelling; the cache flags (--no-negcache,
--cache-size=0, --max-ttl, --min-cache-ttl, --cache-bytes); SIGHUP and SIGUSR1; a cached answer
too big for a client goes out truncated. The budget test uses knotd (fast, and its NXDOMAINs
carry a SOA, so every distinct name is an entry).

The upstream's behaviour is chosen by the first label of the name (see `behaviour`), so one
script serves every test and the names say what they test. Time-dependent checks poll until
the observable changes, with a deadline; nothing sleeps for synchronisation.
"""

import random
import re
import select
import signal
import socket
import time

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from conftest import query, rdatas, wait_until
from scripted_upstream import ScriptedAnswer

ZONE = "cache.test."
CACHE_LINE = re.compile(r"cache size (\d+), (\d+)/(\d+) cache insertions re-used unexpired "
                        r"cache entries\.")
KUBEMASQ_LINE = re.compile(r"kubemasq cache: (\d+) bytes used of (\d+), entries (\d+), hits (\d+), "
                           r"misses (\d+), evictions (\d+), expired (\d+), negative entries (\d+)")


def soa_rrset(minimum, ttl=300):
    return dns.rrset.from_text(ZONE, ttl, "IN", "SOA",
                               f"ns.{ZONE} admin.{ZONE} 1 3600 600 86400 {minimum}")


def behaviour(q):
    """The answer for query q, by its first label:
    ttlN-*      A 192.0.2.1 with TTL N         nxsoaN-*   NXDOMAIN, SOA MINIMUM N
    nxbare-*    NXDOMAIN without SOA           nodataN-*  NOERROR, no answer, SOA MINIMUM N
    servfail-*  SERVFAIL                       slow-*     A with TTL 300 after 0.5 s
    big-*       60 A records (~1000 bytes)     anything else: A 192.0.2.1, TTL 300
    """
    name = q.question[0].name
    first = name.labels[0].decode().lower() if name.labels else ""
    kind = first.split("-")[0]
    resp = dns.message.make_response(q)
    resp.flags |= dns.flags.RA
    delay = 0.0
    m = re.fullmatch(r"([a-z]+)(\d*)", kind)
    word, num = (m.group(1), int(m.group(2)) if m.group(2) else None) if m else ("", None)
    if word == "ttl":
        resp.answer.append(dns.rrset.from_text(name, num, "IN", "A", "192.0.2.1"))
    elif word == "nxsoa":
        resp.set_rcode(dns.rcode.NXDOMAIN)
        resp.authority.append(soa_rrset(num))
    elif word == "nxbare":
        resp.set_rcode(dns.rcode.NXDOMAIN)
    elif word == "nodata":
        resp.authority.append(soa_rrset(num))
    elif word == "servfail":
        resp.set_rcode(dns.rcode.SERVFAIL)
    elif word == "big":
        resp.answer.append(dns.rrset.from_text_list(
            name, 300, "IN", "A", [f"198.51.100.{i}" for i in range(1, 61)]))
    else:
        if word == "slow":
            delay = 0.5
        resp.answer.append(dns.rrset.from_text(name, 300, "IN", "A", "192.0.2.1"))
    return ScriptedAnswer(resp.to_wire(max_size=65535), delay=delay)


def script(q, transport):
    return behaviour(q)


@pytest.fixture
def up(scripted):
    return scripted(script)


def start(kubemasq, up, *args):
    return kubemasq([f"--server=127.0.0.1#{up.port}", *args])


def ask(k, name, rdtype="A", **kw):
    return k.udp(query(name, rdtype, **kw))


def first_ttl(resp):
    for section in (resp.answer, resp.authority):
        for rrset in section:
            return rrset.ttl
    raise AssertionError(f"no record in {resp}")


def sigusr1(k):
    """SIGUSR1 and the two cache lines it logs, as match objects."""
    pos = k.log_size()
    k.signal(signal.SIGUSR1)
    kline = k.wait_log(KUBEMASQ_LINE.pattern, start=pos)
    return k.wait_log(CACHE_LINE.pattern, start=pos), kline


# -- hits and TTLs ---------------------------------------------------------------------------

def test_repeat_is_answered_from_cache(kubemasq, up):
    k = start(kubemasq, up)
    name = "ttl300-repeat." + ZONE
    first = ask(k, name)
    assert rdatas(first) == ["192.0.2.1"]
    for _ in range(5):
        again = ask(k, name.upper())
        assert rdatas(again) == ["192.0.2.1"] and again.rcode() == dns.rcode.NOERROR
    assert up.count(name, "A") == 1
    # other types and names are other keys
    ask(k, name, "AAAA")
    assert up.count(name, "AAAA") == 1


def test_ttl_drops_by_elapsed_seconds(kubemasq, up):
    k = start(kubemasq, up)
    name = "ttl300-aging." + ZONE
    t0 = time.monotonic()
    assert first_ttl(ask(k, name)) == 300
    seen = {}

    def dropped():
        t = time.monotonic()
        ttl = first_ttl(ask(k, name))
        seen.update(ttl=ttl, elapsed=t - t0)
        return ttl < 299
    wait_until(dropped, 5, 0.05, "the cached TTL to drop by 2")
    # the entry was stored after t0, and the query was sent before `elapsed` was measured
    assert abs((300 - seen["ttl"]) - int(seen["elapsed"])) <= 1, seen
    assert up.count(name) == 1


def test_max_ttl_caps_client_ttl(kubemasq, up):
    k = start(kubemasq, up, "--max-ttl=10")
    name = "ttl300-maxttl." + ZONE
    assert first_ttl(ask(k, name)) == 10          # fresh from upstream
    assert first_ttl(ask(k, name)) <= 10          # from the cache
    assert up.count(name) == 1, "the true TTL stays in the cache"


def test_min_cache_ttl_keeps_answer_longer(kubemasq, up):
    k = start(kubemasq, up, "--min-cache-ttl=60")
    name = "ttl1-mincache." + ZONE
    t0 = time.monotonic()
    assert first_ttl(ask(k, name)) == 1           # the miss: the upstream's reply as it came
    # from the cache, as dnsmasq: the raised TTL, counting down from 60
    assert 59 <= first_ttl(ask(k, name)) <= 60
    wait_until(lambda: time.monotonic() - t0 > 2.1, 5, 0.05, "the record's own second to pass")
    assert 57 <= first_ttl(ask(k, name)) <= 58
    assert up.count(name) == 1


def test_ttl0_and_servfail_never_cached(kubemasq, up):
    k = start(kubemasq, up)
    for name in ("ttl0-zero." + ZONE, "servfail-fail." + ZONE):
        for _ in range(3):
            ask(k, name)
        assert up.count(name) == 3, name


# -- negative caching ------------------------------------------------------------------------

def test_nxdomain_with_soa_cached_for_its_minimum(kubemasq, up):
    k = start(kubemasq, up)
    name = "nxsoa2-gone." + ZONE
    t0 = time.monotonic()
    r = ask(k, name)
    assert r.rcode() == dns.rcode.NXDOMAIN
    r = ask(k, name)
    assert r.rcode() == dns.rcode.NXDOMAIN and first_ttl(r) <= 2    # SOA aged/capped
    assert up.count(name) == 1

    def refetched():
        ask(k, name)
        return up.count(name) == 2
    wait_until(refetched, 6, 0.05, "the negative entry to expire")
    elapsed = time.monotonic() - t0
    assert 1.9 <= elapsed <= 4.0, f"expired after {elapsed:.2f}s, SOA minimum 2"
    # NODATA the same way
    nodata = "nodata60-empty." + ZONE
    ask(k, nodata)
    r = ask(k, nodata)
    assert r.rcode() == dns.rcode.NOERROR and not r.answer and up.count(nodata) == 1


def test_nxdomain_without_soa(kubemasq, up):
    k = start(kubemasq, up)
    name = "nxbare-plain." + ZONE
    ask(k, name)
    assert ask(k, name).rcode() == dns.rcode.NXDOMAIN
    assert up.count(name) == 2, "no SOA: not cached without --neg-ttl"
    k2 = start(kubemasq, up, "--neg-ttl=60")
    name = "nxbare-negttl." + ZONE
    ask(k2, name)
    assert ask(k2, name).rcode() == dns.rcode.NXDOMAIN
    assert up.count(name) == 1, "--neg-ttl caches negatives without SOA"


def test_no_negcache(kubemasq, up):
    k = start(kubemasq, up, "--no-negcache")
    name = "nxsoa60-nocache." + ZONE
    ask(k, name)
    ask(k, name)
    assert up.count(name) == 2
    pos = "ttl300-stillcached." + ZONE
    ask(k, pos)
    ask(k, pos)
    assert up.count(pos) == 1, "positive answers are still cached"


def test_cache_size_zero_disables(kubemasq, up):
    k = start(kubemasq, up, "--cache-size=0")
    name = "ttl300-off." + ZONE
    for _ in range(3):
        assert rdatas(ask(k, name)) == ["192.0.2.1"]
    assert up.count(name) == 3


# -- coalescing and size ---------------------------------------------------------------------

def random_case(name, rng):
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in name)


def test_50_identical_queries_make_one_upstream_query(kubemasq, up):
    k = start(kubemasq, up)
    name = "slow-herd." + ZONE
    rng = random.Random(7)
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(5)]
    sent = {}                   # (sock index, id) -> question name bytes as sent
    try:
        ids = rng.sample(range(1, 65536), 50)
        for i, qid in enumerate(ids):
            q = query(random_case(name, rng), "A")
            q.id = qid
            wire = q.to_wire()
            end = wire.index(b"\0", 12) + 1
            sent[(i % 5, qid)] = wire[12:end]
            socks[i % 5].sendto(wire, (k.host, k.port))
        got = {}
        deadline = time.monotonic() + 5
        while len(got) < 50 and time.monotonic() < deadline:
            r, _, _ = select.select(socks, [], [], 0.2)
            for s in r:
                data = s.recv(65535)
                qid = int.from_bytes(data[:2], "big")
                got[(socks.index(s), qid)] = data
    finally:
        for s in socks:
            s.close()
    assert len(got) == 50, f"{len(got)} answers of 50"
    assert set(got) == set(sent), "every client gets its own ID on its own socket"
    for key, data in got.items():
        spelling = sent[key]
        assert data[12:12 + len(spelling)] == spelling, "each client sees its own spelling"
        assert rdatas(dns.message.from_wire(data)) == ["192.0.2.1"]
    assert up.count(name) == 1


def test_cached_answer_too_big_is_truncated(kubemasq, up):
    k = start(kubemasq, up)
    name = "big-answer." + ZONE
    full = ask(k, name, use_edns=0, payload=4096)
    assert len(rdatas(full)) == 60 and not full.flags & dns.flags.TC
    assert len(full.to_wire()) > 900
    small = ask(k, name)                                  # no EDNS: 512 bytes
    assert small.flags & dns.flags.TC and not small.answer
    again = ask(k, name, use_edns=0, payload=4096)
    assert len(rdatas(again)) == 60 and not again.flags & dns.flags.TC
    assert up.count(name) == 1, "all three from one upstream answer"


# -- operations ------------------------------------------------------------------------------

def test_sighup_clears_cache_and_counters(kubemasq, up):
    k = start(kubemasq, up, "--cache-size=500")
    name = "ttl300-hup." + ZONE
    ask(k, name)
    ask(k, name)
    assert up.count(name) == 1
    line, _ = sigusr1(k)
    assert int(line.group(3)) >= 1
    pos = k.log_size()
    k.signal(signal.SIGHUP)
    k.wait_log(r"cleared cache", start=pos)
    line, kline = sigusr1(k)
    assert line.group(1) == "500" and line.group(2) == "0" and line.group(3) == "0", line.group(0)
    assert kline.group(3) == "0", kline.group(0)
    ask(k, name)
    assert up.count(name) == 2, "after SIGHUP the query reaches the upstream again"


def test_sigusr1_cache_lines_and_dump(kubemasq, up):
    k = start(kubemasq, up, "--cache-size=1000", "--log-queries")
    names = [f"ttl300-stat{i}.{ZONE}" for i in range(3)]
    for n in names:
        for _ in range(3):
            ask(k, n)
    ask(k, "nxsoa60-statneg." + ZONE)
    line, kline = sigusr1(k)
    size, reused, inserted = map(int, line.groups())
    assert size == 1000 and reused == 0 and inserted >= 4, line.group(0)
    used, budget, entries, hits, misses, evictions, expired, negative = map(int, kline.groups())
    assert 0 < used <= budget == 1 << 30, kline.group(0)
    assert entries >= 4 and hits >= 6 and misses >= 4 and negative >= 1, kline.group(0)
    assert evictions == 0, kline.group(0)
    # --log-queries: one dump line per entry, after the statistics
    for n in names:
        k.wait_log(rf"cache {re.escape(n.rstrip('.'))} A (\d+) 192\.0\.2\.1$")
    k.wait_log(rf"cache nxsoa60-statneg\.{re.escape(ZONE.rstrip('.'))} A \d+ NXDOMAIN$")


def test_log_queries_cached_line(kubemasq, up):
    k = start(kubemasq, up, "--log-queries")
    name = "ttl300-logged." + ZONE
    ask(k, name)
    pos = k.log_size()
    ask(k, name)
    k.wait_log(rf"cached {re.escape(name.rstrip('.'))} is 192\.0\.2\.1$", start=pos)
    assert up.count(name) == 1


def test_tiny_budget_holds(kubemasq, knotd):
    """3000 distinct names (knotd's NXDOMAIN with SOA: cached negatives) through a 64 KiB
    budget, which holds a few hundred: bytes used never above the budget, evictions happen."""
    budget = 64 * 1024
    k = kubemasq([f"--server=127.0.0.1#{knotd.port}", f"--cache-bytes={budget}"])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    rcodes = set()
    try:
        for batch in range(30):                     # 100 in flight at a time
            for i in range(100):
                q = query(f"b{batch}x{i}.nope.test.", "A")
                s.sendto(q.to_wire(), (k.host, k.port))
            for _ in range(100):
                rcodes.add(dns.message.from_wire(s.recv(65535)).rcode())
            if batch % 10 == 9:
                _, kline = sigusr1(k)
                used, limit = int(kline.group(1)), int(kline.group(2))
                assert used <= limit == budget, kline.group(0)
    finally:
        s.close()
    assert rcodes == {dns.rcode.NXDOMAIN}
    _, kline = sigusr1(k)
    used, limit, entries, evictions, negative = (int(kline.group(i)) for i in (1, 2, 3, 6, 8))
    assert used <= budget and 0 < entries < 3000 and evictions > 0, kline.group(0)
    assert negative == entries, kline.group(0)
