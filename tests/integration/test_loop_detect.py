# SPDX-License-Identifier: GPL-2.0-or-later
"""--dns-loop-detect where the loop really happens: kubemasq on port 53 of a network namespace
of its own (a new one has only `lo`, so port 53 is private and nothing leaves it), with a
resolv-file naming systemd-resolved's 127.0.0.53, which there is kubemasq itself, as in a pod
with dnsPolicy: Default on a systemd-resolved node. The loop is reported within a second of
the start, external names get REFUSED at once instead of after the upstream timeout, the
cluster zone and a zone with a real server keep answering, /metrics counts it; a normal server
beside the looping one answers every name; a relay that loops and then stops is used again
after a SIGHUP; a resolv-file change probes the new servers.

The namespace is held by a `sleep` started with `unshare --net`; the daemon runs in it through
`nsenter`, and the test's own DNS and HTTP clients and upstreams from a thread that entered it
with setns(2), so every socket the test makes lives in it too. Needs root (the machines and CI
run the tests as root): skipped otherwise, except in CI."""

import concurrent.futures
import ctypes
import http.client
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import time

import dns.message
import dns.query
import dns.rcode
import pytest

from conftest import SANITIZER_RX, TOP, kubemasq_bin, missing_tool, query, rdatas, wait_until
from scripted_upstream import ScriptedAnswer, ScriptedUpstream, answer_all, make_answer

DEMO = TOP / "conf" / "demo-cluster.json"
CLONE_NEWNET = 0x40000000
LOOP_LINE = (r"server 127\.0\.0\.53#53 loops back to kubemasq itself \(dns-loop-detect\): not "
             r"used\. If this is systemd-resolved's stub .* point --resolv-file .* at "
             r"/run/systemd/resolve/resolv\.conf")


def need_root():
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("the loop tests need root for a network namespace; CI runs as root")
        pytest.skip("needs root for a network namespace")
    for tool in ("unshare", "nsenter", "ip"):
        if not shutil.which(tool):
            missing_tool(f"{tool} (util-linux, iproute2) is not installed")


class Netns:
    """A network namespace with `lo` up, for as long as the object lives."""

    def __init__(self):
        self.holder = subprocess.Popen(
            ["unshare", "--net", "--", "sh", "-c",
             "ip link set lo up && echo up && exec sleep 600"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        r, _, _ = select.select([self.holder.stdout], [], [], 5)
        line = self.holder.stdout.readline() if r else ""
        if line.strip() != "up":
            self.holder.kill()
            raise AssertionError(f"cannot make a network namespace: {line!r}")
        self.path = f"/proc/{self.holder.pid}/ns/net"
        self.fd = os.open(self.path, os.O_RDONLY)
        self.pool = concurrent.futures.ThreadPoolExecutor(1, initializer=self._enter)

    def _enter(self):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(self.fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")

    def run(self, fn, *args, **kw):
        """fn(*args, **kw) in the namespace (sockets it makes stay there)."""
        return self.pool.submit(fn, *args, **kw).result()

    def popen(self, args, **kw):
        return subprocess.Popen(["nsenter", f"--net={self.path}", "--", *args], **kw)

    def close(self):
        self.pool.shutdown()
        os.close(self.fd)
        self.holder.kill()
        self.holder.wait()


@pytest.fixture
def netns():
    need_root()
    ns = Netns()
    yield ns
    ns.close()


class Daemon:
    """kubemasq inside the namespace, on port 53 of every address unless told otherwise."""

    def __init__(self, ns, tmp, args):
        self.ns = ns
        self.log = tmp / "kubemasq.log"
        self.args = [kubemasq_bin(), "-k", "--log-facility=-", "--dns-loop-detect",
                     "--metrics-address=127.0.0.1:9153", *args]
        self.started = time.monotonic()
        self.proc = ns.popen(self.args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=open(self.log, "w"))

    def text(self):
        return self.log.read_text(errors="replace")

    def wait_log(self, pattern, timeout, start=0):
        rx = re.compile(pattern, re.M)
        try:
            return wait_until(lambda: rx.search(self.text()[start:]), timeout, 0.01,
                              f"log line /{pattern}/")
        except AssertionError as e:
            raise AssertionError(f"{e}; log:\n{self.text()[-3000:]}")

    def ask(self, name, rdtype="A", timeout=3.0):
        """(rcode, A records, seconds) of a UDP query from inside the namespace."""
        def go():
            t = time.monotonic()
            r = dns.query.udp(query(name, rdtype), "127.0.0.1", port=53, timeout=timeout)
            return r.rcode(), rdatas(r), time.monotonic() - t
        return self.ns.run(go)

    def metric(self, name):
        def go():
            c = http.client.HTTPConnection("127.0.0.1", 9153, timeout=2)
            try:
                c.request("GET", "/metrics")
                return c.getresponse().read().decode()
            finally:
                c.close()
        m = re.search(rf"^{re.escape(name)} (\S+)$", self.ns.run(go), re.M)
        assert m, f"{name} not in /metrics"
        return float(m.group(1))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=10)
        m = SANITIZER_RX.search(self.text())
        assert not m, "sanitizer report:\n" + self.text()[max(0, m.start() - 200):][:3000]
        assert rc == 0, f"exit code {rc}; log:\n{self.text()[-3000:]}"


@pytest.fixture
def daemons(netns, tmp_path):
    made = []

    def make(args):
        d = Daemon(netns, tmp_path, args)
        made.append(d)
        return d
    yield make
    for d in made:
        d.stop()


@pytest.fixture
def resolv(public_dir):
    def write(*ips):
        path = public_dir / "resolv.conf"
        tmp = path.with_suffix(".new")
        tmp.write_text("".join(f"nameserver {ip}\n" for ip in ips))
        os.replace(tmp, path)
        return path
    return write


@pytest.fixture
def upstreams(netns):
    """Factory: a ScriptedUpstream on a random port of 127.0.0.1 inside the namespace."""
    made = []

    def make(script):
        u = netns.run(ScriptedUpstream, script)
        made.append(u)
        return u
    yield make
    for u in made:
        u.close()


# -- the case -----------------------------------------------------------------------

def test_resolved_stub_loop_reported_and_answered_at_once(daemons, upstreams, resolv):
    """Every default server loops: reported within a second of the start, external names get
    REFUSED at once (not after the 4 s upstream timeout), the cluster zone and a zone with a
    real server of its own keep answering."""
    zone = upstreams(answer_all(["192.0.2.99"]))
    d = daemons([f"--resolv-file={resolv('127.0.0.53')}", f"--kube-snapshot={DEMO}",
                 f"--server=/test/127.0.0.1#{zone.port}"])
    d.wait_log(LOOP_LINE, 3)
    found = time.monotonic() - d.started
    assert found < 1.0, f"the loop was reported {found:.2f} s after the start"
    d.wait_log(r"every server of 1 forwarder loops: the names routed there get REFUSED at "
               r"once", 1)
    for name in ("example.com.", "www.example.org."):
        rcode, _, took = d.ask(name)
        assert rcode == dns.rcode.REFUSED, name
        assert took < 0.5, f"{name} answered after {took:.2f} s, not at once"
    assert d.ask("kubernetes.default.svc.cluster.local.")[:2] == (dns.rcode.NOERROR,
                                                                   ["10.96.0.1"])
    assert d.ask("www.test.")[:2] == (dns.rcode.NOERROR, ["192.0.2.99"])
    assert d.metric("kubemasq_upstream_servers_looping") == 1
    assert d.metric("kubemasq_upstream_loops_detected_total") >= 1
    # the probe is dnsmasq's: a TXT query for <hex>.test; the zone's own server got its own
    assert zone.count(qtype="TXT") == 1
    (probe,) = [n for (n, t, _), c in zone.counts.items() if t == "TXT"]
    assert re.fullmatch(r"[0-9a-f]{16}\.test\.", probe), probe
    # SIGUSR1 says it of the server too
    at = len(d.text())
    d.proc.send_signal(signal.SIGUSR1)
    d.wait_log(r"server 127\.0\.0\.53#53: queries sent 0, .*, loops back to us: not used", 2, at)


def test_all_servers_looping_answers_as_dnsmasq(daemons, netns, resolv, tmp_path):
    """Side by side with dnsmasq 2.90 in the same namespace, on the same port 53 in turn, with
    the same resolv-file naming 127.0.0.53 (itself): once the loop is found, an external name
    gets the same rcode from both (REFUSED: no server left to ask)."""
    exe = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    if not os.access(exe, os.X_OK):
        missing_tool("dnsmasq (dnsmasq-base) is not installed")
    path = resolv("127.0.0.53")
    log = tmp_path / "dnsmasq.log"
    dm = netns.popen([exe, "--no-daemon", "--conf-file=/dev/null", "--pid-file=", "--user=root",
                      "--no-hosts", "--log-facility=-", "--dns-loop-detect",
                      f"--resolv-file={path}"],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    try:
        wait_until(lambda: "query loop detected" in log.read_text(errors="replace"), 5, 0.02,
                   "dnsmasq to find the loop")

        def ask():
            r = dns.query.udp(query("example.com.", "A"), "127.0.0.1", port=53, timeout=3)
            return r.rcode()
        theirs = netns.run(ask)
    finally:
        dm.terminate()
        dm.wait(timeout=10)
    d = daemons([f"--resolv-file={path}"])
    d.wait_log(LOOP_LINE, 3)
    ours, _, _ = d.ask("example.com.")
    assert (dns.rcode.to_text(ours), dns.rcode.to_text(theirs)) == ("REFUSED", "REFUSED"), \
        log.read_text(errors="replace")[-2000:]


def test_a_normal_server_beside_the_looping_one_answers_everything(daemons, upstreams, resolv):
    """The same zone has a working server too: once the loop is found every name goes to it,
    at once (the looping server is never tried first, so no retry interval is waited)."""
    good = upstreams(answer_all(["192.0.2.7"]))
    d = daemons([f"--resolv-file={resolv('127.0.0.53')}", f"--server=127.0.0.1#{good.port}",
                 "--strict-order"])
    d.wait_log(LOOP_LINE, 3)
    for i in range(20):
        rcode, addrs, took = d.ask(f"name{i}.example.com.")
        assert (rcode, addrs) == (dns.rcode.NOERROR, ["192.0.2.7"])
        assert took < 0.5, f"name{i} took {took:.2f} s"
        assert good.count(f"name{i}.example.com.") == 1
    assert "REFUSED at once" not in d.text()
    assert d.metric("kubemasq_upstream_servers_looping") == 1


# -- a loop through another forwarder, and its end ----------------------------------------

class Relay:
    """A server that, while `looping`, forwards every query to kubemasq (as a node's resolver
    pointing back at the cluster DNS would) and answers nothing; otherwise it answers."""

    def __init__(self):
        self.looping = True

    def __call__(self, q, transport):
        if self.looping:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the namespace's: see run()
            try:
                s.sendto(q.to_wire(), ("127.0.0.1", 53))
            finally:
                s.close()
            return None
        return ScriptedAnswer(make_answer(q, ["192.0.2.44"]))


def test_relay_loop_detected_then_used_again_after_sighup(daemons, upstreams, netns):
    relay = Relay()
    up = upstreams(relay)
    d = daemons(["--no-resolv", f"--server=127.0.0.1#{up.port}", "--upstream-timeout=1000"])
    d.wait_log(rf"server 127\.0\.0\.1#{up.port} loops back to kubemasq itself "
               r"\(dns-loop-detect\): not used\. Remove it from --server", 3)
    rcode, _, took = d.ask("before.example.com.")
    assert rcode == dns.rcode.REFUSED and took < 0.5
    assert up.count("before.example.com.") == 0, "a looping server was asked"
    # the relay is mended; SIGHUP probes again: out of service meanwhile, back after the round
    relay.looping = False
    at = len(d.text())
    d.proc.send_signal(signal.SIGHUP)
    d.wait_log(rf"server 127\.0\.0\.1#{up.port} no longer loops back to kubemasq "
               r"\(dns-loop-detect\): used again", 3, at)
    assert d.ask("after.example.com.")[:2] == (dns.rcode.NOERROR, ["192.0.2.44"])
    assert d.metric("kubemasq_upstream_servers_looping") == 0
    assert d.metric("kubemasq_upstream_loops_detected_total") == 1


def test_sighup_probes_a_looping_server_again(daemons, resolv):
    d = daemons([f"--resolv-file={resolv('127.0.0.53')}"])
    d.wait_log(LOOP_LINE, 3)
    at = len(d.text())
    d.proc.send_signal(signal.SIGHUP)
    d.wait_log(r"server 127\.0\.0\.53#53 still loops back to kubemasq \(dns-loop-detect\): "
               r"not used", 2, at)
    assert d.ask("example.com.")[0] == dns.rcode.REFUSED
    assert d.metric("kubemasq_upstream_servers_looping") == 1
    assert d.metric("kubemasq_upstream_loops_detected_total") == 2


def test_resolv_file_change_probes_the_new_servers(daemons, upstreams, resolv):
    """The resolv-file changes from the stub to systemd-resolved's other address, 127.0.0.54
    (here kubemasq again): the new list is probed at once and the new loop found, the old
    server is forgotten, and a zone with a server of its own keeps answering."""
    good = upstreams(answer_all(["192.0.2.8"]))
    path = resolv("127.0.0.53")
    d = daemons([f"--resolv-file={path}", f"--server=/example.net/127.0.0.1#{good.port}"])
    d.wait_log(LOOP_LINE, 3)
    at = len(d.text())
    resolv("127.0.0.54")
    d.wait_log(r"server 127\.0\.0\.54#53 loops back to kubemasq itself", 3, at)
    assert d.metric("kubemasq_upstream_servers_looping") == 1, "127.0.0.53 is forgotten"
    assert d.ask("www.example.net.")[:2] == (dns.rcode.NOERROR, ["192.0.2.8"])
