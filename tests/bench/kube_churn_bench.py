# SPDX-License-Identifier: GPL-2.0-or-later
"""kube_churn_bench.py - what a cluster change costs the daemon beside a big cache, measured.

Run by kube_churn.sh (which builds the release binary and starts a knotd serving a wildcard
zone, bench.test). A small generated cluster (gen_cluster.py) is served by
tests/kubeapi/kubeapi.py; two kubemasq daemons watch it through --kube-api-url and forward
everything else to knotd. One is filled with SMALL external names (h1..hN.bench.test, one A
each, through dnsperf), the other with LARGE; both then cache the cluster's names (A, SRV, PTR,
endpoint hostnames, NXDOMAINs: gen_cluster.queries). Then, in each round, CHANGES Service
changes go to the API server at RATE per second, cycling over the single-stack ClusterIP
services: with --kind=port each gives the service's first named port a new number (the store
reports the service's name), with --kind=ip a new ClusterIP (its name and two reverse names).
The round ends when both daemons answer the last change's SRV or A with its new value (the
watch stream is ordered: every change before it is in too). Per daemon: its CPU time over the round (the sum over its threads
of /proc/PID/task/TID/schedstat's run time, in ns; utime+stime from /proc/PID/stat counts in
10 ms ticks, too coarse here), divided by the changes. Both daemons see the same changes at the
same moment, so contention on the machine falls on both alike, and CPU time, unlike wall time,
does not count the waits. Before the rounds, the CPU each daemon uses over the same time with no
change at all is measured once and printed (idle_cpu_ms). Reported, never asserted.
Loopback only, random free ports; every process started is stopped.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import dns.message
import dns.query
import dns.rcode

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_cluster  # noqa: E402
from kube_api_bench import control, free_port, wait_for  # noqa: E402

KUBEAPI = os.path.join(HERE, "..", "kubeapi", "kubeapi.py")
ZONE = "cluster.local"


def cpu_ns(pid):
    """The process's CPU time so far, in ns: the sum over its threads."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # a thread that just ended
    return total


def ask(port, name, rdtype, timeout=0.5):
    q = dns.message.make_query(name, rdtype)
    try:
        return dns.query.udp(q, "127.0.0.1", port=port, timeout=timeout)
    except Exception:  # noqa: BLE001 - a lost datagram is a "not yet"
        return None


def answer_values(reply):
    """SRV ports and A addresses of a reply's answer, as strings."""
    out = set()
    for rr in reply.answer:
        for rd in rr:
            if hasattr(rd, "port"):
                out.add(str(rd.port))
            elif hasattr(rd, "address"):
                out.add(rd.address)
    return out


class Daemon:
    def __init__(self, args, work, label, upstream, api_url):
        self.label, self.port = label, free_port()
        self.log_path = os.path.join(work, "kubemasq-%s.log" % label)
        self.log = open(self.log_path, "w")
        cmd = [args.kubemasq, "--keep-in-foreground", "--port=%d" % self.port,
               "--listen-address=127.0.0.1", "--no-resolv", "--log-facility=-",
               "--server=" + upstream, "--kube-api-url=" + api_url,
               "--cache-size=%d" % max(2000000, 2 * args.large), "--dns-forward-max=1000"]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid

    def cache_entries(self):
        """Entries from the SIGUSR1 cache line (waits for a new line to appear)."""
        def lines():
            with open(self.log_path) as f:
                return [ln for ln in f if "kubemasq cache:" in ln]
        before = len(lines())
        self.proc.send_signal(signal.SIGUSR1)
        if not wait_for(lambda: len(lines()) > before, 10, step=0.05):
            return -1
        words = lines()[-1].split("entries ")
        return int(words[1].split(",")[0].split()[0]) if len(words) > 1 else -1

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def dnsperf(port, qfile, passes=1):
    out = subprocess.run(["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", qfile,
                          "-n", str(passes), "-c", "4", "-q", "200", "-t", "10"],
                         capture_output=True, text=True, check=False).stdout
    done = lost = "?"
    for line in out.splitlines():
        w = line.split()
        if line.strip().startswith("Queries completed:"):
            done = w[2]
        elif line.strip().startswith("Queries lost:"):
            lost = w[2]
    return done, lost


def fill(d, work, n):
    """Cache n external names; a second pass picks up what a lost datagram left out."""
    qfile = os.path.join(work, "q%d.txt" % n)
    if not os.path.exists(qfile):
        with open(qfile, "w") as f:
            for i in range(1, n + 1):
                f.write("h%d.bench.test A\n" % i)
    t = time.monotonic()
    done, lost = dnsperf(d.port, qfile)
    if d.cache_entries() < n:
        done, lost = dnsperf(d.port, qfile)
    return done, lost, time.monotonic() - t


def churn_targets(items, kind):
    """Single-stack ClusterIP services with a named first port: (service object, the name and
    type that show a change of `kind`: its SRV for "port", its A for "ip")."""
    out = []
    for o in items:
        if o["kind"] != "Service" or o["spec"].get("type") == "ExternalName":
            continue
        if o["spec"].get("clusterIP") in (None, "None") or len(o["spec"]["clusterIPs"]) != 1:
            continue
        p = o["spec"]["ports"][0] if o["spec"]["ports"] else {}
        if not p.get("name"):
            continue
        m = o["metadata"]
        fq = "%s.%s.svc.%s." % (m["name"], m["namespace"], ZONE)
        if kind == "port":
            out.append((o, "_%s._%s.%s" % (p["name"], p["protocol"].lower(), fq), "SRV"))
        else:
            out.append((o, fq, "A"))
    return out


def change(svc, kind, serial):
    """Make change number `serial` of `kind` to svc; returns the value an answer then shows:
    "port" gives its first port a new number (the store reports the service's name), "ip" a
    new ClusterIP, as a delete and re-create would (its name and two reverse names)."""
    if kind == "port":
        svc["spec"]["ports"][0]["port"] = 20000 + serial % 40000
        return str(svc["spec"]["ports"][0]["port"])
    ip = "10.97.%d.%d" % (serial // 250 % 250, serial % 250 + 1)	# never sent anything
    svc["spec"]["clusterIP"] = ip
    svc["spec"]["clusterIPs"] = [ip]
    return ip


def round_(args, api_url, daemons, targets, serial):
    """One round of changes; returns ({label: cpu_ns}, seen, wall_s, next serial)."""
    c0 = {d.label: cpu_ns(d.pid) for d in daemons}
    t0 = time.monotonic()
    period, next_t, last = 1.0 / args.rate, time.monotonic(), None
    for i in range(args.changes):
        svc, name, rdtype = targets[i % len(targets)]
        value = change(svc, args.kind, serial)
        control(api_url, "/_test/apply", svc)
        last, serial = (name, rdtype, value), serial + 1
        next_t += period
        delay = next_t - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def applied():
        for d in daemons:
            r = ask(d.port, last[0], last[1], timeout=0.2)
            if r is None or last[2] not in answer_values(r):
                return False
        return True
    seen = bool(wait_for(applied, args.timeout, step=0.005))
    wall = time.monotonic() - t0
    c1 = {d.label: cpu_ns(d.pid) for d in daemons}
    return {k: c1[k] - c0[k] for k in c0}, seen, wall, serial


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kubemasq", required=True)
    ap.add_argument("--upstream", required=True, help="knotd with a wildcard bench.test")
    ap.add_argument("-s", "--small", type=int, default=10000)
    ap.add_argument("-l", "--large", type=int, default=1000000)
    ap.add_argument("-c", "--changes", type=int, default=200)
    ap.add_argument("-R", "--rate", type=float, default=100.0)
    ap.add_argument("-r", "--rounds", type=int, default=3)
    ap.add_argument("-n", "--services", type=int, default=100)
    ap.add_argument("-k", "--kind", choices=("port", "ip"), default="port")
    ap.add_argument("--timeout", type=int, default=120)
    args = ap.parse_args()

    items = gen_cluster.gen_cluster(args.services, args.services * 3)
    targets = churn_targets(items, args.kind)
    procs, daemons = [], []
    with tempfile.TemporaryDirectory(prefix="kmchurn.") as work:
        try:
            path = os.path.join(work, "cluster.json")
            with open(path, "w") as f:
                json.dump(gen_cluster.snapshot(items), f)
            api = subprocess.Popen([sys.executable, KUBEAPI, "--objects", path],
                                   stdout=subprocess.PIPE, text=True)
            procs.append(api)
            line = api.stdout.readline().split()
            if len(line) < 2 or line[0] != "READY":
                raise SystemExit("kubeapi did not start: %r" % line)
            api_url = line[1]
            for label in ("small", "large"):
                daemons.append(Daemon(args, work, label, args.upstream, api_url))
            for d in daemons:
                ok = wait_for(lambda: (lambda r: r is not None and
                                       r.rcode() == dns.rcode.NOERROR and r.answer)(
                    ask(d.port, "kubernetes.default.svc.%s." % ZONE, "A", 0.2)), args.timeout)
                if not ok:
                    with open(d.log_path) as f:
                        sys.stderr.write(f.read()[-2000:])
                    raise SystemExit("%s: no answer from the cluster zone" % d.label)
            cluster_q = os.path.join(work, "cluster.txt")
            with open(cluster_q, "w") as f:
                f.write("\n".join(gen_cluster.queries(items, ZONE, per_kind=100000)) + "\n")
            for d, n in zip(daemons, (args.small, args.large)):
                done, lost, secs = fill(d, work, n)
                cdone, clost = dnsperf(d.port, cluster_q)
                print("kube_churn fill names=%d completed=%s lost=%s fill_s=%.1f "
                      "cluster_queries=%s cache_entries=%d" %
                      (n, done, lost, secs, cdone, d.cache_entries()), flush=True)
            # the same wall time with no change at all: what the daemons use anyway
            c0 = {d.label: cpu_ns(d.pid) for d in daemons}
            time.sleep(args.changes / args.rate)	# a measured window, not a wait
            idle = {d.label: (cpu_ns(d.pid) - c0[d.label]) / 1e6 for d in daemons}
            per = {d.label: [] for d in daemons}
            serial = 0
            for r in range(1, args.rounds + 1):
                cpu, seen, wall, serial = round_(args, api_url, daemons, targets, serial)
                for d, n in zip(daemons, (args.small, args.large)):
                    ms = cpu[d.label] / 1e6
                    per[d.label].append(ms / args.changes)
                    print("kube_churn round=%d names=%d kind=%s changes=%d seen=%s "
                          "wall_s=%.2f cpu_ms=%.1f cpu_per_change_ms=%.3f idle_cpu_ms=%.1f" %
                          (r, n, args.kind, args.changes, seen, wall, ms, ms / args.changes,
                           idle[d.label]), flush=True)
            for d, n in zip(daemons, (args.small, args.large)):
                print("kube_churn after names=%d cache_entries=%d" % (n, d.cache_entries()))
        finally:
            for d in daemons:
                d.stop()
            for p in procs:
                p.terminate()
                p.wait(10)
    small = sum(per["small"]) / len(per["small"])
    large = sum(per["large"]) / len(per["large"])
    print("kube_churn small=%d large=%d kind=%s changes=%d rounds=%d "
          "cpu_per_change_ms_small=%.3f cpu_per_change_ms_large=%.3f ratio=%.2f" %
          (args.small, args.large, args.kind, args.changes, args.rounds, small, large,
           large / small if small else 0))


if __name__ == "__main__":
    main()
