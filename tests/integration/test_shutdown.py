# SPDX-License-Identifier: GPL-2.0-or-later
"""The stop of --shutdown-delay (CoreDNS's lameduck), as a kubelet stopping the pod sees it:
on SIGTERM /ready turns 503 at once, UDP and TCP keep being answered (forwarded names, not
just cached ones) for the delay, then the listeners close, a query still in flight gets its
answer, and the daemon exits 0; a second SIGTERM ends the delay at once. Times are measured
from the SIGTERM with the monotonic clock; the waits are conditions with deadlines (waiting
until 1.5 s in to ask is the scenario itself)."""

import http.client
import signal
import socket
import time

import dns.message
import dns.rcode

from conftest import free_port, query, rdatas, wait_until
from scripted_upstream import ScriptedAnswer, make_answer

DELAY = 3


def ready_status(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        c.request("GET", "/ready")
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def script(q, transport):
    """Every name answered at once, except slow.test., answered after 1.5 s."""
    name = q.question[0].name.to_text().lower()
    return ScriptedAnswer(make_answer(q, ["192.0.2.7"]), delay=1.5 if name == "slow.test." else 0)


def start(kubemasq, scripted, *extra):
    up = scripted(script)
    mport = free_port()
    k = kubemasq([f"--server=127.0.0.1#{up.port}", f"--metrics-address=127.0.0.1:{mport}",
                  f"--shutdown-delay={DELAY}", *extra])
    k.mport = mport
    wait_until(lambda: ready_status(mport)[0] == 200, 5, 0.02, "/ready 200")
    return k, up


def sleep_until(t):
    """The scenario's own clock: act at time t (monotonic)."""
    while time.monotonic() < t:
        time.sleep(min(0.01, max(0.0, t - time.monotonic())))


def test_sigterm_drains_for_the_delay_then_exits_0(kubemasq, scripted):
    k, up = start(kubemasq, scripted)
    t0 = time.monotonic()
    k.signal(signal.SIGTERM)
    # /ready: 503 within half a second, saying why
    status, body = wait_until(lambda: (lambda r: r if r[0] == 503 else None)(ready_status(k.mport)),
                              0.5, 0.01, "/ready 503 after SIGTERM")
    assert "shutting down" in body
    assert time.monotonic() - t0 < 0.5
    k.wait_log(r"SIGTERM: draining for 3 s \(--shutdown-delay\)", 1)
    # 1.5 s in: still answered over UDP and TCP, and still forwarded (names never asked before)
    sleep_until(t0 + 1.5)
    r = k.udp(query("during-udp.test.", "A"), timeout=1)
    assert r.rcode() == dns.rcode.NOERROR and rdatas(r) == ["192.0.2.7"]
    r = k.tcp(query("during-tcp.test.", "A"), timeout=1)
    assert r.rcode() == dns.rcode.NOERROR and rdatas(r) == ["192.0.2.7"]
    assert up.count("during-udp.test.") == 1 and up.count("during-tcp.test.") == 1
    assert ready_status(k.mport)[0] == 503
    assert k.alive(), "exited during the delay"
    # then it exits 0: not before the delay, and without lingering
    rc = k.proc.wait(timeout=DELAY + 3)
    elapsed = time.monotonic() - t0
    assert rc == 0
    assert elapsed >= DELAY - 0.05, f"exited after {elapsed:.2f} s, before the {DELAY} s delay"
    assert elapsed < DELAY + 1.5, f"exited only after {elapsed:.2f} s"
    log = k.log_text()
    assert "shutdown delay over: listeners closed" in log
    assert "exiting on receipt of SIGTERM" in log


def test_query_in_flight_at_the_end_of_the_delay_is_answered(kubemasq, scripted):
    """The listeners close when the delay ends; a forwarded query still waiting then gets its
    answer before the exit, and new connections are refused meanwhile."""
    k, up = start(kubemasq, scripted)
    t0 = time.monotonic()
    k.signal(signal.SIGTERM)
    k.wait_log(r"SIGTERM: draining", 1)
    sleep_until(t0 + DELAY - 0.5)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(3)
        s.sendto(query("slow.test.", "A").to_wire(), ("127.0.0.1", k.port))
        wait_until(lambda: up.count("slow.test.") == 1, 1, 0.01, "slow.test. forwarded")
        k.wait_log(r"shutdown delay over: listeners closed, finishing 1 queries in flight", 2)
        # listening has ended: a new TCP connection is refused
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            c.settimeout(1)
            assert c.connect_ex(("127.0.0.1", k.port)) != 0, "TCP still accepted after the delay"
        finally:
            c.close()
        data = s.recv(65535)
    finally:
        s.close()
    r = dns.message.from_wire(data)
    assert r.rcode() == dns.rcode.NOERROR and rdatas(r) == ["192.0.2.7"]
    assert k.proc.wait(timeout=3) == 0
    elapsed = time.monotonic() - t0
    assert elapsed >= DELAY + 0.9, f"exited after {elapsed:.2f} s, before its answer was due"


def test_second_sigterm_exits_at_once(kubemasq, scripted):
    k, _ = start(kubemasq, scripted, "--shutdown-delay=60")
    k.signal(signal.SIGTERM)
    k.wait_log(r"SIGTERM: draining for 60 s", 1)
    assert k.udp(query("still.test.", "A"), timeout=1).rcode() == dns.rcode.NOERROR
    t1 = time.monotonic()
    k.signal(signal.SIGTERM)
    assert k.proc.wait(timeout=2) == 0
    assert time.monotonic() - t1 < 1.0
    assert "SIGTERM during the shutdown: exiting now" in k.log_text()


def test_without_delay_sigterm_exits_at_once(kubemasq, scripted):
    """The default (0) is the old behaviour: no drain."""
    up = scripted(script)
    k = kubemasq([f"--server=127.0.0.1#{up.port}"])
    t1 = time.monotonic()
    k.signal(signal.SIGTERM)
    assert k.proc.wait(timeout=2) == 0
    assert time.monotonic() - t1 < 1.0
    assert "draining" not in k.log_text()
