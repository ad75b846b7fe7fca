# SPDX-License-Identifier: GPL-2.0-or-later
"""kube_api_bench.py - kubemasq's live kube source against the test API server, measured.

Run by kube_api.sh (which builds the release binary): a generated cluster (gen_cluster.py,
10,000 services and 100,000 endpoints by default) is served by tests/kubeapi/kubeapi.py, and
kubemasq lists and watches it through --kube-api-url. Reported, never asserted:
  * ready: from the daemon's start to the first NOERROR answer for a cluster name (the zone
    answers SERVFAIL until the first full sync), and to /ready if --metrics-address works;
  * peak RSS during the initial list (VmHWM once ready) and the steady RSS after it;
  * peak RSS during a re-list: VmHWM is reset through /proc/PID/clear_refs, the server's
    history is expired so every watch gets a 410 and the daemon lists everything again;
  * DNS programming latency: EndpointSlice changes sent at a fixed rate (100/s), each giving a
    headless service a new address; the time from sending the change to the first answer that
    holds the address, p50/p99/max.
Loopback only, random free ports; every process started is stopped.
"""
import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import dns.message
import dns.query
import dns.rcode

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_cluster  # noqa: E402

KUBEAPI = os.path.join(HERE, "..", "kubeapi", "kubeapi.py")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def ask(port, name, rdtype="A", timeout=0.5):
    q = dns.message.make_query(name, rdtype)
    try:
        return dns.query.udp(q, "127.0.0.1", port=port, timeout=timeout)
    except Exception:  # noqa: BLE001 - a lost datagram is a "not yet"
        return None


def addresses(reply):
    return {rd.address for rr in reply.answer for rd in rr if hasattr(rd, "address")}


def control(url, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method="POST" if data or
                                 path != "/_test/stats" else "GET")
    if data:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def wait_for(pred, deadline_s, step=0.01):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return None


class Run:
    def __init__(self, args, work):
        self.args, self.work, self.procs = args, work, []

    def start_api(self, items):
        path = os.path.join(self.work, "cluster.json")
        with open(path, "w") as f:
            json.dump(gen_cluster.snapshot(items), f)
        p = subprocess.Popen([sys.executable, KUBEAPI, "--objects", path, "--page-size", "500"],
                             stdout=subprocess.PIPE, text=True)
        self.procs.append(p)
        line = p.stdout.readline().split()
        if len(line) < 2 or line[0] != "READY":
            raise SystemExit("kubeapi did not start: %r" % line)
        self.api_url = line[1]

    def start_daemon(self):
        self.port = free_port()
        self.log = open(os.path.join(self.work, "kubemasq.log"), "w")
        cmd = [self.args.kubemasq, "--keep-in-foreground", "--port=%d" % self.port,
               "--listen-address=127.0.0.1", "--no-resolv", "--log-facility=-",
               "--kube-api-url=" + self.api_url]
        self.t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        self.procs.append(p)
        self.pid = p.pid

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def ready_time(run, name):
    def answered():
        r = ask(run.port, name, timeout=0.2)
        return r is not None and r.rcode() == dns.rcode.NOERROR and r.answer
    if not wait_for(answered, run.args.timeout, step=0.005):
        raise SystemExit("no answer for %s within %d s" % (name, run.args.timeout))
    return time.monotonic() - run.t0


def relist_peak(run):
    """Reset VmHWM, expire the server's history (every watch gets a 410) and wait until the
    daemon has listed every collection again and is watching once more."""
    with open("/proc/%d/clear_refs" % run.pid, "w") as f:
        f.write("5")
    before = control(run.api_url, "/_test/stats")
    t = time.monotonic()
    control(run.api_url, "/_test/expire", {})

    def relisted():
        s = control(run.api_url, "/_test/stats")
        return (s["lists"] >= before["lists"] + 3 and s["watches"] >= before["watches"] + 3
                and s["watches_open"] >= 3)
    ok = wait_for(relisted, run.args.timeout, step=0.05)
    return status_kib(run.pid, "VmHWM"), time.monotonic() - t, bool(ok)


def headless_slices(items, n):
    """n IPv4 slices of distinct headless services, with their service's DNS name."""
    headless = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in items
                if o["kind"] == "Service" and o["spec"].get("clusterIP") == "None"}
    out, seen = [], set()
    for o in items:
        if o["kind"] != "EndpointSlice" or o["addressType"] != "IPv4" or not o["endpoints"]:
            continue
        ns = o["metadata"]["namespace"]
        svc = o["metadata"]["labels"]["kubernetes.io/service-name"]
        if (ns, svc) in headless and (ns, svc) not in seen:
            seen.add((ns, svc))
            out.append((o, "%s.%s.svc.cluster.local." % (svc, ns)))
            if len(out) == n:
                break
    return out


def programming_latency(run, items):
    """Send args.events slice changes at args.rate per second; measure change -> answer."""
    targets = headless_slices(items, 64)
    if not targets:
        raise SystemExit("the generated cluster has no headless service")
    pending, done, lock = {}, [], threading.Lock()
    stop = threading.Event()

    def checker():
        while not stop.is_set() or pending:
            with lock:
                work = list(pending.items())
            if not work:
                time.sleep(0.0005)
                continue
            for key, (name, ip, sent) in work:
                r = ask(run.port, name, timeout=0.2)
                if r is not None and ip in addresses(r):
                    with lock:
                        pending.pop(key, None)
                        done.append(time.monotonic() - sent)
            if stop.is_set() and time.monotonic() > stop_deadline[0]:
                return

    stop_deadline = [float("inf")]
    th = threading.Thread(target=checker, daemon=True)
    th.start()
    period = 1.0 / run.args.rate
    next_t = time.monotonic()
    for i in range(run.args.events):
        sl, name = targets[i % len(targets)]
        ip = "10.250.%d.%d" % ((i // 250) % 250, i % 250 + 1)
        sl = json.loads(json.dumps(sl))
        sl["endpoints"][0]["addresses"] = [ip]	# and ready, or no A record shows it
        sl["endpoints"][0]["conditions"] = {"ready": True, "serving": True, "terminating": False}
        sl["metadata"].get("annotations", {}).pop(
            "endpoints.kubernetes.io/last-change-trigger-time", None)
        targets[i % len(targets)] = (sl, name)
        with lock:
            pending.pop(name, None)	# an older change of this name no longer matters
        sent = time.monotonic()
        control(run.api_url, "/_test/apply", sl)
        with lock:
            pending[name] = (name, ip, sent)
        next_t += period
        delay = next_t - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    stop.set()
    stop_deadline[0] = time.monotonic() + 5
    th.join()
    for name, ip, sent in pending.values():	# say what an unseen change left behind
        r = ask(run.port, name)
        print("unseen: %s wanted %s, answer %s after %.1f s" %
              (name, ip, sorted(addresses(r)) if r else "none", time.monotonic() - sent),
              file=sys.stderr)
    return done, len(pending)


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kubemasq", required=True)
    ap.add_argument("-n", "--services", type=int, default=10000)
    ap.add_argument("-e", "--endpoints", type=int, default=100000)
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--timeout", type=int, default=120)
    args = ap.parse_args()

    items = gen_cluster.gen_cluster(args.services, args.endpoints)
    endpoints = sum(len(o["endpoints"]) for o in items if o["kind"] == "EndpointSlice")
    with tempfile.TemporaryDirectory(prefix="kmkubeapi.") as work:
        run = Run(args, work)
        try:
            run.start_api(items)
            run.start_daemon()
            ready = ready_time(run, "kubernetes.default.svc.cluster.local.")
            peak_initial = status_kib(run.pid, "VmHWM")
            time.sleep(2)	# a benchmark's settling time, not synchronisation
            steady = status_kib(run.pid, "VmRSS")
            peak_relist, relist_s, relisted = relist_peak(run)
            steady_after = status_kib(run.pid, "VmRSS")
            lat, lost = programming_latency(run, items)
        finally:
            run.stop()
    print("kube_api services=%d endpoints=%d ready_s=%.3f rss_peak_initial_kib=%d "
          "rss_steady_kib=%d rss_peak_relist_kib=%d relist_s=%.2f relist_complete=%s "
          "relist_peak_over_steady=%.2f rss_after_relist_kib=%d" %
          (args.services, endpoints, ready, peak_initial, steady, peak_relist, relist_s,
           relisted, peak_relist / steady if steady else 0, steady_after))
    if lat:
        print("kube_api programming events=%d rate=%g seen=%d unseen=%d p50_ms=%.1f "
              "p99_ms=%.1f max_ms=%.1f mean_ms=%.1f" %
              (args.events, args.rate, len(lat), lost, pct(lat, 50) * 1e3, pct(lat, 99) * 1e3,
               max(lat) * 1e3, statistics.mean(lat) * 1e3))
    else:
        print("kube_api programming events=%d seen=0 unseen=%d" % (args.events, lost))


if __name__ == "__main__":
    main()
