# SPDX-License-Identifier: GPL-2.0-or-later
"""Serve-stale (--use-stale-cache, RFC 8767) and prefetch (--prefetch) against the scripted
upstream: what a client gets once the upstream is silent and the answer has expired, how long
it waits for it, and how many queries the upstream sees. Waiting until a given moment is the
scenario here (a TTL running out), not synchronisation."""

import signal
import time

import dns.query
import dns.rcode

from conftest import Dnsmasq, query, wait_until
from scripted_upstream import ScriptedAnswer, make_answer


class Upstream:
    """A scripted upstream answering A queries with `addr` and `ttl`, after `delay` seconds;
    `silent = True` makes it drop every query from then on (a dead server, as seen by us)."""

    def __init__(self, scripted, ttl, delay=0.0, addr="192.0.2.1"):
        self.ttl, self.delay, self.addr, self.silent = ttl, delay, addr, False
        self.up = scripted(self.script)

    def script(self, q, transport):
        if self.silent:
            return None
        return ScriptedAnswer(make_answer(q, [self.addr], ttl=self.ttl), delay=self.delay)

    def count(self, name):
        return self.up.count(name, "A")


def daemon(kubemasq, up, *args):
    return kubemasq([f"--server=127.0.0.1#{up.up.port}", "--upstream-timeout=1500",
                     "--upstream-retry=1500", *args])


def ask(k, name, timeout=5.0):
    """(response, seconds it took)."""
    t = time.monotonic()
    r = k.udp(query(name), timeout=timeout)
    return r, time.monotonic() - t


def ttl_of(resp):
    assert resp.answer, f"no answer: {resp}"
    return resp.answer[0].ttl


def until(t0, seconds):
    """Sleep until `seconds` after t0: the point of the scenario (a TTL has run out)."""
    left = t0 + seconds - time.monotonic()
    if left > 0:
        time.sleep(left)


def cached(k, name, up):
    """Query once so that the answer is cached; returns the moment it was answered."""
    r, _ = ask(k, name)
    assert r.rcode() == dns.rcode.NOERROR and ttl_of(r) == up.ttl
    return time.monotonic()


def cache_line(k):
    start = k.log_size()
    k.signal(signal.SIGUSR1)
    return k.wait_log(r"kubemasq cache: .*stale served (\d+), prefetches (\d+)", 5, start)


def test_stale_answer_when_upstream_silent(kubemasq, scripted):
    up = Upstream(scripted, ttl=2)
    k = daemon(kubemasq, up, "--use-stale-cache")
    t0 = cached(k, "www.stale.test", up)
    up.silent = True
    until(t0, 2.2)
    r, took = ask(k, "www.stale.test")
    assert r.rcode() == dns.rcode.NOERROR
    assert [rr.to_text() for rr in r.answer[0]] == ["192.0.2.1"]
    assert 1 <= ttl_of(r) <= 30
    assert took < 0.5, f"stale answer took {took:.3f} s (upstream timeout 1.5 s)"
    # the stale answer started a refresh: the upstream saw it
    wait_until(lambda: up.count("www.stale.test") == 2, 3, what="the background refresh")
    # a never-cached name is still a SERVFAIL
    r, _ = ask(k, "never.stale.test")
    assert r.rcode() == dns.rcode.SERVFAIL
    # the refresh failed: the entry is still served, and counted
    r, took = ask(k, "www.stale.test")
    assert r.rcode() == dns.rcode.NOERROR and took < 0.5
    m = cache_line(k)
    assert int(m.group(1)) == 2


def test_stale_answer_after_upstream_killed(kubemasq, scripted):
    up = Upstream(scripted, ttl=2)
    k = daemon(kubemasq, up, "--use-stale-cache", "--stale-ttl=7")
    t0 = cached(k, "killed.stale.test", up)
    up.up.close()
    until(t0, 2.2)
    r, took = ask(k, "killed.stale.test")
    assert r.rcode() == dns.rcode.NOERROR and ttl_of(r) == 7 and took < 0.5


def test_without_option_servfail(kubemasq, scripted):
    up = Upstream(scripted, ttl=2)
    k = daemon(kubemasq, up)
    t0 = cached(k, "www.stale.test", up)
    up.silent = True
    until(t0, 2.2)
    r, _ = ask(k, "www.stale.test")
    assert r.rcode() == dns.rcode.SERVFAIL


def test_refresh_replaces_the_entry(kubemasq, scripted):
    up = Upstream(scripted, ttl=2)
    k = daemon(kubemasq, up, "--use-stale-cache")
    t0 = cached(k, "moved.stale.test", up)
    up.addr, up.ttl = "192.0.2.9", 300
    until(t0, 2.2)
    r, _ = ask(k, "moved.stale.test")
    assert [rr.to_text() for rr in r.answer[0]] == ["192.0.2.1"]     # stale, at once
    wait_until(lambda: up.count("moved.stale.test") == 2, 3, what="the background refresh")

    def refreshed():
        r, _ = ask(k, "moved.stale.test")
        return [rr.to_text() for rr in r.answer[0]] == ["192.0.2.9"]
    wait_until(refreshed, 3, what="the refreshed answer")
    assert up.count("moved.stale.test") == 2


def test_verify_mode_waits_for_the_timer(kubemasq, scripted):
    up = Upstream(scripted, ttl=1)
    k = kubemasq([f"--server=127.0.0.1#{up.up.port}", "--upstream-timeout=4000",
                  "--upstream-retry=4000", "--use-stale-cache", "--stale-mode=verify",
                  "--stale-answer-timeout=700"])
    t0 = cached(k, "verify.stale.test", up)
    # a server that answers in time is asked first and its answer given
    up.addr = "192.0.2.2"
    until(t0, 1.2)
    r, took = ask(k, "verify.stale.test")
    assert [rr.to_text() for rr in r.answer[0]] == ["192.0.2.2"] and took < 0.5
    # a silent one: the stale answer, once the timer has run out, well before the timeout
    up.silent = True
    until(t0, 1.2 + 1.2)
    r, took = ask(k, "verify.stale.test")
    assert r.rcode() == dns.rcode.NOERROR and 1 <= ttl_of(r) <= 30
    assert [rr.to_text() for rr in r.answer[0]] == ["192.0.2.2"]
    assert 0.7 <= took < 2.0, f"verify-mode stale answer after {took:.3f} s"


def test_verify_mode_servfail_answered_stale(kubemasq, scripted):
    up = Upstream(scripted, ttl=1)
    k = kubemasq([f"--server=127.0.0.1#{up.up.port}", "--use-stale-cache",
                  "--stale-mode=verify", "--stale-answer-timeout=3000"])
    t0 = cached(k, "sf.stale.test", up)
    up.script = lambda q, tr: ScriptedAnswer(make_answer(q, [], rcode=dns.rcode.SERVFAIL))
    up.up.script = up.script
    until(t0, 1.2)
    r, took = ask(k, "sf.stale.test")
    assert r.rcode() == dns.rcode.NOERROR and ttl_of(r) == 30
    assert took < 1.0, f"a SERVFAIL from the server should not wait for the timer: {took:.3f}"


def test_stale_limit(kubemasq, scripted):
    up = Upstream(scripted, ttl=1)
    k = daemon(kubemasq, up, "--use-stale-cache=2")
    t0 = cached(k, "limit.stale.test", up)
    up.silent = True
    until(t0, 1.5)
    r, took = ask(k, "limit.stale.test")
    assert r.rcode() == dns.rcode.NOERROR and took < 0.5       # within the limit
    until(t0, 1 + 2 + 0.5)
    r, _ = ask(k, "limit.stale.test")
    assert r.rcode() == dns.rcode.SERVFAIL


def test_prefetch(kubemasq, scripted):
    up = Upstream(scripted, ttl=10, delay=0.5)
    k = daemon(kubemasq, up, "--prefetch")
    r, took = ask(k, "hot.prefetch.test")
    t0 = time.monotonic()
    assert ttl_of(r) == 10 and took >= 0.5
    until(t0, 9.3)
    r, took = ask(k, "hot.prefetch.test")
    assert ttl_of(r) <= 1 and took < 0.3, f"hit at 9.3 s: TTL {ttl_of(r)}, {took:.3f} s"
    until(t0, 10.6)
    r, took = ask(k, "hot.prefetch.test")
    assert took < 0.3, f"at 10.6 s: {took:.3f} s, not a hit"
    assert 8 <= ttl_of(r) <= 10
    assert up.count("hot.prefetch.test") == 2
    assert int(cache_line(k).group(2)) == 1


def test_stale_answer_like_dnsmasq(kubemasq, scripted, tmp_path):
    """The real dnsmasq 2.90 with the same --use-stale-cache, behind the same upstream: once the
    upstream is silent and the TTL has run out, both answer at once with the expired record. The
    TTL differs on purpose: dnsmasq shows 0, kubemasq --stale-ttl (RFC 8767's 30), since a
    stub that caches nothing with TTL 0 would ask again for every lookup."""
    up = Upstream(scripted, ttl=2)
    k = daemon(kubemasq, up, "--use-stale-cache")
    d = Dnsmasq(tmp_path, up.up.port, ["--use-stale-cache"])
    try:
        def ask_d(name):
            t = time.monotonic()
            r = dns.query.udp(query(name), "127.0.0.1", port=d.port, timeout=5)
            return r, time.monotonic() - t

        t0 = cached(k, "both.stale.test", up)
        r, _ = ask_d("both.stale.test")
        assert r.rcode() == dns.rcode.NOERROR and ttl_of(r) == up.ttl
        up.silent = True
        until(t0, 2.5)
        got = {"kubemasq": ask(k, "both.stale.test"), "dnsmasq": ask_d("both.stale.test")}
        for who, (r, took) in got.items():
            assert r.rcode() == dns.rcode.NOERROR, (who, r)
            assert [rr.to_text() for rr in r.answer[0]] == ["192.0.2.1"], (who, r)
            assert took < 0.5, f"{who}: the stale answer took {took:.3f} s"
        assert ttl_of(got["dnsmasq"][0]) == 0
        assert ttl_of(got["kubemasq"][0]) == 30
    finally:
        d.stop()
