# SPDX-License-Identifier: GPL-2.0-or-later
"""Upstreams freed with queries still pending on them. A resolv-file change swaps in a new
default forwarder and retires the old one, which keeps completing what it accepted; when the
file changes faster than retired forwarders drain, the oldest is freed early. Every query it
still held must be answered (SERVFAIL), not forgotten: a forgotten query never gets an answer,
stays in the in-flight table, and shutdown then cancels it through freed memory.

resolv.conf has no port, so its servers sit on port 53 and are never queried (tests never send
there): the real upstream is a slow scripted one given with --server (no domain), which makes
it the first of the default servers in every forwarder made from the file; --strict-order and a
retry time equal to the timeout keep every query on it. Each rewrite is picked up by SIGHUP and
its "reading" log line awaited, so the 100 swaps take a few seconds, not 100 polls."""

import json
import os
import re
import signal
import socket
import threading
import time

import dns.message
import dns.rcode

from conftest import SANITIZER_RX, query, rdatas, wait_until
from scripted_upstream import answer_all

REWRITES = 100
PER_REWRITE = 4			# distinct names per forwarder, so every one misses
SLOW = 1.5			# the upstream's delay: many forwarders hold queries at once
TIMEOUT_MS = 10000		# retired forwarders live 11 s: 16 of them are retired well within
RESOLV_IPS = ["127.0.0.7", "127.0.0.8"]	# never queried: see the module's docstring


def write_resolv(path, ip):
    tmp = path.with_suffix(".new")
    tmp.write_text(f"nameserver {ip}\noptions ndots:5\n")
    os.replace(tmp, path)	# atomic, as resolvconf and kubelet write it


class Client:
    """One UDP socket that sends queries with distinct IDs and collects every reply by ID."""

    def __init__(self, port):
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sent = {}			# id -> name
        self.replies = {}		# id -> rcode
        self.bad = []
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self._recv, daemon=True)
        self.thread.start()

    def send(self, name):
        q = dns.message.make_query(name, "A")
        q.id = len(self.sent) + 1
        with self.lock:
            self.sent[q.id] = name
        self.sock.sendto(q.to_wire(), ("127.0.0.1", self.port))

    def _recv(self):
        self.sock.settimeout(0.1)
        while not self.stopping:
            try:
                data = self.sock.recv(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                r = dns.message.from_wire(data)
            except Exception as e:	# a malformed answer is a failure too
                self.bad.append(repr(e))
                continue
            with self.lock:
                if self.sent.get(r.id) != r.question[0].name.to_text():
                    self.bad.append(f"answer for {r.question[0].name} with id {r.id}")
                self.replies[r.id] = r.rcode()

    def missing(self):
        with self.lock:
            return sorted(set(self.sent) - set(self.replies))

    def close(self):
        self.stopping = True
        self.thread.join(timeout=2)
        self.sock.close()


def churn(k, resolv, up, send, asked):
    """Rewrite the resolv-file REWRITES times, alternating its server, each rewrite read at once
    (SIGHUP) and awaited. send(i) sends the queries of round i; before the rewrite the upstream
    has them all (asked(i): names it must have been asked), so they wait on the forwarder of
    the moment, and the scripted upstream (one Python thread reading its socket) never gets a
    burst that overflows its socket buffer."""
    reading = re.compile(r"reading " + re.escape(str(resolv)) + "$", re.M)
    reads = len(reading.findall(k.log_text()))
    for i in range(REWRITES):
        send(i)
        wait_until(lambda: all(up.count(n) for n in asked(i)), 5, 0.002,
                   f"the upstream to be asked round {i}'s names")
        write_resolv(resolv, RESOLV_IPS[(i + 1) % len(RESOLV_IPS)])
        k.signal(signal.SIGHUP)
        reads += 1
        wait_until(lambda: len(reading.findall(k.log_text())) >= reads, 5, 0.005,
                   f"the daemon to read the resolv-file for the {i + 1}th time")


def check_answered(c, rcodes, k, up):
    """Every query answered (by the upstream, or with SERVFAIL by a forwarder freed before the
    answer came: none may be left without one) with one of `rcodes`, both of which occur."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000 + 4
    while c.missing() and time.monotonic() < deadline:
        time.sleep(0.05)
    missing = c.missing()
    assert not missing, (f"{len(missing)} of {len(c.sent)} queries never answered, "
                         f"e.g. {[c.sent[i] for i in missing[:5]]}")
    assert not c.bad, c.bad[:5]
    got = set(c.replies.values())
    assert got <= set(rcodes), got
    # the swaps really did free forwarders early: some queries got SERVFAIL, and some the
    # upstream's answer
    assert got == set(rcodes), (f"only {got}; the upstream got {up.total()} queries; "
                                f"log tail:\n{k.log_text()[-3000:]}")


def check_clean_exit(k):
    rc = k.stop(timeout=10)
    assert rc == 0, f"exit code {rc} on SIGTERM; log tail:\n{k.log_text()[-3000:]}"
    m = SANITIZER_RX.search(k.log_text())
    assert not m, k.log_text()[max(0, m.start() - 200):][:4000]


def test_resolv_file_rewritten_while_queries_flow(kubemasq, scripted, public_dir):
    up = scripted(answer_all(["192.0.2.1"], delay=SLOW))
    resolv = public_dir / "resolv.conf"
    write_resolv(resolv, RESOLV_IPS[0])
    k = kubemasq([f"--resolv-file={resolv}", f"--server=127.0.0.1#{up.port}",
                  "--strict-order", f"--upstream-timeout={TIMEOUT_MS}",
                  f"--upstream-retry={TIMEOUT_MS}", "--dns-forward-max=10000"],
                 no_resolv=False)
    c = Client(k.port)
    try:
        names = [[f"n{i}-{j}.teardown.example." for j in range(PER_REWRITE)]
                 for i in range(REWRITES)]
        churn(k, resolv, up, lambda i: [c.send(n) for n in names[i]], lambda i: names[i])
        check_answered(c, {dns.rcode.NOERROR, dns.rcode.SERVFAIL}, k, up)
    finally:
        c.close()
    # The resolv-file's servers were never asked (only the current forwarder is listed).
    start = k.log_size()
    k.signal(signal.SIGUSR1)
    ip = RESOLV_IPS[REWRITES % len(RESOLV_IPS)]
    k.wait_log(r"server " + re.escape(ip) + r"#53: queries sent 0", start=start)
    check_clean_exit(k)


def test_kube_external_names_during_resolv_churn(kubemasq, scripted, public_dir):
    """The kube resolver asks the default forwarder for ExternalName targets outside the zone:
    a forwarder freed with such a target pending completes it too, and the client gets the
    CNAME with SERVFAIL rather than nothing. The snapshot has a service per query."""
    up = scripted(answer_all(["192.0.2.1"], delay=SLOW))
    items = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}},
             {"apiVersion": "v1", "kind": "Service",
              "metadata": {"name": "ready", "namespace": "default"},
              "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.7",
                       "clusterIPs": ["10.96.0.7"]}}]
    for i in range(REWRITES):
        for j in range(PER_REWRITE):
            items.append({"apiVersion": "v1", "kind": "Service",
                          "metadata": {"name": f"ext{i}-{j}", "namespace": "default"},
                          "spec": {"type": "ExternalName",
                                   "externalName": f"t{i}-{j}.teardown.example"}})
    snap = public_dir / "cluster.json"
    snap.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    os.chmod(snap, 0o644)
    resolv = public_dir / "resolv.conf"
    write_resolv(resolv, RESOLV_IPS[0])
    k = kubemasq([f"--resolv-file={resolv}", f"--server=127.0.0.1#{up.port}",
                  "--strict-order", f"--upstream-timeout={TIMEOUT_MS}",
                  f"--upstream-retry={TIMEOUT_MS}", f"--kube-snapshot={snap}"],
                 no_resolv=False)
    wait_until(lambda: rdatas(k.udp(query("ready.default.svc.cluster.local.", "A"))) ==
               ["10.96.0.7"], 10, what="the snapshot to be read")
    c = Client(k.port)
    try:
        churn(k, resolv, up,
              lambda i: [c.send(f"ext{i}-{j}.default.svc.cluster.local.")
                         for j in range(PER_REWRITE)],
              lambda i: [f"t{i}-{j}.teardown.example." for j in range(PER_REWRITE)])
        check_answered(c, {dns.rcode.NOERROR, dns.rcode.SERVFAIL}, k, up)
    finally:
        c.close()
    assert up.count("t0-0.teardown.example") == 1
    check_clean_exit(k)
