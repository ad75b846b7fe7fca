# SPDX-License-Identifier: GPL-2.0-or-later
"""Start and reload with a snapshot big enough to take a while to read: a generated cluster
(tests/bench/gen_cluster.py, 3,000 services and 30,000 endpoints, a 29 MB file that takes most
of a second to read, two under ASan), generated once for the module.

* A signal that arrives while the daemon reads the snapshot at start (before it listens) does
  not kill it: SIGHUP is remembered and re-reads the file once the loop runs, SIGUSR1 prints
  its statistics then, SIGUSR2 is harmless, SIGTERM ends it with exit code 0.
* While a re-read of the snapshot runs (SIGHUP, or the file rewritten on disk), the daemon
  keeps answering: queries sent after the "kube: reading" line are all answered before the
  "kube: read" line that ends the read. Cluster names cached before, cluster names asked for
  the first time (from the old state), names forwarded upstream, and the same for PTR and SRV.
* After the rewritten file is swapped in, nothing stale is served: names cached before or
  during the read (at --kube-ttl=3600) answer the new state.

The start and end of a read are told by the daemon's own log lines, never by timing."""

import json
import os
import re
import signal
import sys

import dns.rcode
import dns.reversename
import pytest

from conftest import TOP, query, rdatas, wait_until
from scripted_upstream import answer_all

sys.path.insert(0, str(TOP / "tests" / "bench"))
from gen_cluster import gen_cluster, snapshot  # noqa: E402

SERVICES, ENDPOINTS, SEED = 3000, 30000, 12
ZONE = "cluster.local."
EXTERNAL_IP = "192.0.2.77"
CHANGED = 80           # services whose ClusterIP the rewrite changes: more names than the
#                        64 a read collects, so the whole zone is dropped from the cache
READ_END = r"kube: read {}: \d+ namespaces"


class Cluster:
    """The generated cluster: its items, the snapshot's text, and names picked from it."""

    def __init__(self):
        self.items = gen_cluster(SERVICES, ENDPOINTS, seed=SEED)
        self.text = json.dumps(snapshot(self.items))
        svcs = [o for o in self.items if o["kind"] == "Service"]
        self.cip = [o for o in svcs if o["spec"].get("clusterIP") not in (None, "None")
                    and o["spec"].get("type") != "ExternalName"]
        assert len(self.cip) > CHANGED + 10
        self.headless = {(o["metadata"]["namespace"], o["metadata"]["name"])
                         for o in svcs if o["spec"].get("clusterIP") == "None"}
        self.hosts = []     # (name, ip) of ready IPv4 endpoints with a hostname
        for o in self.items:
            if o["kind"] != "EndpointSlice" or o["addressType"] != "IPv4":
                continue
            m = o["metadata"]
            svc = m["labels"]["kubernetes.io/service-name"]
            if (m["namespace"], svc) not in self.headless:
                continue
            for ep in o["endpoints"]:
                if ep.get("hostname") and ep["conditions"]["ready"]:
                    self.hosts.append((f"{ep['hostname']}.{svc}.{m['namespace']}.svc.{ZONE}",
                                       ep["addresses"][0]))
        assert len(self.hosts) >= 4

    @staticmethod
    def fqdn(svc):
        m = svc["metadata"]
        return f"{m['name']}.{m['namespace']}.svc.{ZONE}"

    def changed_text(self):
        """The cluster with the first CHANGED ClusterIP services moved to 10.250.x.y (IPv4
        only, as the generator makes most of them), the last one deleted."""
        items = json.loads(self.text)["items"]
        by_key = {(o["metadata"]["namespace"], o["metadata"]["name"]): o
                  for o in items if o["kind"] == "Service"}
        for i, svc in enumerate(self.cip[:CHANGED]):
            o = by_key[(svc["metadata"]["namespace"], svc["metadata"]["name"])]
            ip = self.new_ip(i)
            o["spec"]["clusterIP"], o["spec"]["clusterIPs"] = ip, [ip]
            o["spec"].pop("ipFamilies", None)
            o["spec"]["ipFamilyPolicy"] = "SingleStack"
        gone = self.cip[-1]["metadata"]
        items = [o for o in items if not (o["kind"] == "Service" and
                                          o["metadata"]["name"] == gone["name"] and
                                          o["metadata"]["namespace"] == gone["namespace"])]
        return json.dumps(snapshot(items))

    @staticmethod
    def new_ip(i):
        return f"10.250.{i // 250}.{i % 250 + 1}"


@pytest.fixture(scope="module")
def cluster():
    return Cluster()


@pytest.fixture
def snap(cluster, public_dir):
    """The snapshot, readable by the user the daemon drops to."""
    path = public_dir / "cluster.json"
    write(path, cluster.text)
    return path


def write(path, text):
    """A new file renamed over the old one, as tools write it."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def cluster_ips(k, name):
    return rdatas(k.udp(query(name, "A")), "A")


def v4(svc):
    return sorted(ip for ip in svc["spec"]["clusterIPs"] if ":" not in ip)


def rev(ip):
    return dns.reversename.from_address(ip).to_text()


def read_lines(k, snap, start):
    """The "kube: read" lines (ends of reads) logged since byte `start`."""
    return re.findall(READ_END.format(re.escape(str(snap))), k.log_text()[start:])


# -- signals during the start-up read --------------------------------------------------------

def start_and_signal(kubemasq, snap, upstream, sig):
    """Start the daemon, send `sig` while it reads the snapshot, before it listens. Returns
    the daemon. The log is unbuffered, so no "kube: read" line after kill() returned means the
    signal was delivered before the read ended (a signal is delivered before the process runs
    any further)."""
    k = kubemasq([f"--server=127.0.0.1#{upstream.port}", f"--kube-snapshot={snap}"],
                 ready=False)
    k.wait_log(r"kube: serving cluster\.local from ", 10)
    k.signal(sig)
    assert not read_lines(k, snap, 0), "the read ended before the signal: file too small"
    return k


def wait_listening(k, timeout=30):
    wait_until(k._answers, timeout, 0.02, "the daemon to answer")


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2],
                         ids=lambda s: s.name)
def test_signal_during_start_up_read_is_not_fatal(kubemasq, scripted, snap, cluster, sig):
    up = scripted(answer_all([EXTERNAL_IP]))
    k = start_and_signal(kubemasq, snap, up, sig)
    wait_listening(k)
    assert k.alive(), f"{sig.name} during the start-up read killed the daemon"
    svc = cluster.cip[0]
    assert cluster_ips(k, cluster.fqdn(svc)) == v4(svc)
    assert cluster_ips(k, "www.example.org.") == [EXTERNAL_IP]
    started = k.wait_log(r"started, version ").start()
    if sig == signal.SIGHUP:
        # remembered, and acted on once the loop runs: a re-read and a cleared cache
        k.wait_log(r"kube: reading " + re.escape(str(snap)), 10, started)
        k.wait_log(READ_END.format(re.escape(str(snap))), 30, started)
        k.wait_log(r"cleared cache", 10, started)
    elif sig == signal.SIGUSR1:
        k.wait_log(r"kube: namespaces \d+, services 3000, ", 10, started)
    assert k.alive()


def test_sigterm_during_start_up_read_exits_0(kubemasq, scripted, snap):
    up = scripted(answer_all([EXTERNAL_IP]))
    k = start_and_signal(kubemasq, snap, up, signal.SIGTERM)
    rc = k.proc.wait(timeout=60)
    assert rc == 0, f"exit code {rc}; log:\n{k.log_text()[-2000:]}"
    k.wait_log(r"exiting on receipt of SIGTERM", 1)


# -- answering during a re-read --------------------------------------------------------------

def ask_during(k, cluster):
    """The queries sent during a re-read, with their answers: ClusterIP services cached before
    it (changed by the rewrite) and asked for the first time (changed and not), the service
    the rewrite deletes, endpoint hostnames, a PTR, an SRV, a name that does not exist, and
    forwarded names cached before it and not."""
    answers = {}
    for svc in cluster.cip[:6] + cluster.cip[CHANGED:CHANGED + 3] + cluster.cip[-1:]:
        answers[cluster.fqdn(svc), "A"] = k.udp(query(cluster.fqdn(svc), "A"))
    for name, _ in cluster.hosts[:4]:
        answers[name, "A"] = k.udp(query(name, "A"))
    svc = cluster.cip[CHANGED + 6]
    answers[rev(v4(svc)[0]), "PTR"] = k.udp(query(rev(v4(svc)[0]), "PTR"))
    port = next(p for p in svc["spec"]["ports"] if p.get("name"))
    name = f"_{port['name']}._{port['protocol'].lower()}.{cluster.fqdn(svc)}"
    answers[name, "SRV"] = k.udp(query(name, "SRV"))
    name = f"nosuch.{svc['metadata']['namespace']}.svc.{ZONE}"
    answers[name, "A"] = k.udp(query(name, "A"))
    for name in ("cached.example.org.", "fresh.example.org."):
        answers[name, "A"] = k.udp(query(name, "A"))
    return answers


def check_old_state(cluster, answers):
    """Answers given during the read are the state from before it."""
    for svc in cluster.cip[:6] + cluster.cip[CHANGED:CHANGED + 3] + cluster.cip[-1:]:
        assert rdatas(answers[cluster.fqdn(svc), "A"]) == v4(svc), cluster.fqdn(svc)
    for name, ip in cluster.hosts[:4]:
        assert rdatas(answers[name, "A"]) == [ip], name
    svc = cluster.cip[CHANGED + 6]
    assert rdatas(answers[rev(v4(svc)[0]), "PTR"], "PTR") == [cluster.fqdn(svc)]
    srv = [r for (n, t), r in answers.items() if t == "SRV"][0]
    assert srv.rcode() == dns.rcode.NOERROR and rdatas(srv, "SRV")
    nx = answers[f"nosuch.{svc['metadata']['namespace']}.svc.{ZONE}", "A"]
    assert nx.rcode() == dns.rcode.NXDOMAIN
    for name in ("cached.example.org.", "fresh.example.org."):
        assert rdatas(answers[name, "A"]) == [EXTERNAL_IP], name


def serve(kubemasq, scripted, snap, *extra):
    """The daemon serving the snapshot, with a scripted upstream for other names."""
    up = scripted(answer_all([EXTERNAL_IP]))
    return kubemasq([f"--server=127.0.0.1#{up.port}", f"--kube-snapshot={snap}", *extra])


def begin_reread(k, snap, trigger):
    """trigger(k), then wait for the re-read to begin; returns (where the log was before the
    trigger, where the "kube: reading" line ends)."""
    at = k.log_size()
    trigger(k)
    return at, k.wait_log(r"kube: reading " + re.escape(str(snap)), 10, at).end() + at


def reread_answers(kubemasq, scripted, snap, cluster, trigger):
    """Start at --kube-ttl=3600, cache a few names, trigger a re-read, and ask while it runs:
    every answer must arrive before the read's end line. Returns the daemon."""
    k = serve(kubemasq, scripted, snap, "--kube-ttl=3600")
    for svc in cluster.cip[:3]:
        assert cluster_ips(k, cluster.fqdn(svc)) == v4(svc)
    assert cluster_ips(k, "cached.example.org.") == [EXTERNAL_IP]
    at, begun = begin_reread(k, snap, trigger)
    answers = ask_during(k, cluster)
    assert not read_lines(k, snap, begun), (
        f"{len(answers)} queries sent once the re-read had begun were answered only after it "
        f"ended; log:\n{k.log_text()[at:]}")
    check_old_state(cluster, answers)
    k.wait_log(READ_END.format(re.escape(str(snap))), 60, begun)
    return k


def test_answers_during_sighup_reread(kubemasq, scripted, snap, cluster):
    k = reread_answers(kubemasq, scripted, snap, cluster, lambda k: k.signal(signal.SIGHUP))
    svc = cluster.cip[0]
    assert cluster_ips(k, cluster.fqdn(svc)) == v4(svc)


def test_answers_during_reread_of_rewritten_file_then_new_state(kubemasq, scripted, snap,
                                                                 cluster):
    """The file rewritten on disk (the 1 s poll sees it); once it is swapped in every changed
    name answers its new address, whether it was cached before the read or during it, and
    the deleted service is gone though it was cached during the read."""
    text = cluster.changed_text()
    k = reread_answers(kubemasq, scripted, snap, cluster, lambda k: write(snap, text))
    for i, svc in enumerate(cluster.cip[:CHANGED]):
        assert cluster_ips(k, cluster.fqdn(svc)) == [cluster.new_ip(i)], cluster.fqdn(svc)
    gone = k.udp(query(cluster.fqdn(cluster.cip[-1]), "A"))
    assert gone.rcode() == dns.rcode.NXDOMAIN
    ptr = k.udp(query(rev(cluster.new_ip(0)), "PTR"))
    assert rdatas(ptr, "PTR") == [cluster.fqdn(cluster.cip[0])]
    unchanged = cluster.cip[CHANGED]
    assert cluster_ips(k, cluster.fqdn(unchanged)) == v4(unchanged)


def test_sighup_during_reread_reads_once_more(kubemasq, scripted, snap):
    """One read at a time: SIGHUPs while one runs ask for exactly one more after it."""
    k = serve(kubemasq, scripted, snap)
    at, _ = begin_reread(k, snap, lambda k: k.signal(signal.SIGHUP))
    k.signal(signal.SIGHUP)
    k.signal(signal.SIGHUP)
    wait_until(lambda: len(read_lines(k, snap, at)) >= 2, 60, 0.05, "two reads")
    # SIGUSR1 is handled on the loop after the second read's end, where a third would start
    mark = k.log_size()
    k.signal(signal.SIGUSR1)
    k.wait_log(r"kube: namespaces \d+, services 3000, ", 10, mark)
    text = k.log_text()[at:]
    assert text.count("kube: reading " + str(snap)) == 2, text
    assert len(read_lines(k, snap, at)) == 2, text
    assert k.alive()


def test_sigterm_during_reread_exits_0(kubemasq, scripted, snap):
    """The re-read's thread is stopped and joined, and what it built freed (under ASan the
    fixture fails on a leak or any other report)."""
    k = serve(kubemasq, scripted, snap)
    at, _ = begin_reread(k, snap, lambda k: k.signal(signal.SIGHUP))
    k.signal(signal.SIGTERM)
    rc = k.proc.wait(timeout=60)
    assert rc == 0, f"exit code {rc}; log:\n{k.log_text()[-2000:]}"
    k.wait_log(r"exiting on receipt of SIGTERM", 1, at)
