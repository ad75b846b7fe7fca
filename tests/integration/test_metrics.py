# SPDX-License-Identifier: GPL-2.0-or-later
"""The HTTP endpoint (--metrics-address) and dnsmasq's CHAOS statistics, end to end.

/metrics is scraped and parsed by a strict parser of the Prometheus text format 0.0.4 written
here (every line a HELP, a TYPE or a sample; a family's samples together after its TYPE;
counters ending in _total; histograms with cumulative buckets ending at +Inf equal to _count),
every family the daemon promises is checked present, and counters are checked to move as
queries are made (requests, rcodes, cache hits/misses/inserts, per-upstream queries and
latency); answers are counted by source (cluster, forward, local; a hit for the source of the
cached answer) with their sizes, and the process_* figures are compared with /proc. /health
and /ready are checked through the kube sync (503 with the reason until the
snapshot appears, 200 after), bad requests get 4xx while DNS keeps being served, connections
over the cap are closed, and bad addresses stop the start with a message naming the option.
The CHAOS names are compared with what the real dnsmasq answers after the same queries."""

import http.client
import math
import os
import pathlib
import re
import signal
import time
import socket
import subprocess

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import pytest

from conftest import TOP, Dnsmasq, free_port, query, raw_udp, wait_until
from scripted_upstream import ScriptedAnswer, by_prefix, make_answer

DEMO = TOP / "conf" / "demo-cluster.json"

FAMILIES = {
    "kubemasq_requests_total": "counter",
    "kubemasq_requests_by_type_total": "counter",
    "kubemasq_responses_total": "counter",
    "kubemasq_request_duration_seconds": "histogram",
    "kubemasq_cache_hits_total": "counter",
    "kubemasq_cache_misses_total": "counter",
    "kubemasq_cache_inserts_total": "counter",
    "kubemasq_cache_evictions_total": "counter",
    "kubemasq_cache_renewed_total": "counter",
    "kubemasq_cache_stale_served_total": "counter",
    "kubemasq_cache_prefetches_total": "counter",
    "kubemasq_cache_entries": "gauge",
    "kubemasq_cache_bytes": "gauge",
    "kubemasq_cache_budget_bytes": "gauge",
    "kubemasq_upstream_queries_total": "counter",
    "kubemasq_upstream_failures_total": "counter",
    "kubemasq_upstream_duration_seconds": "histogram",
    "kubemasq_inflight_queries": "gauge",
    "kubemasq_forward_rejections_total": "counter",
    "kubemasq_chaos_queries_total": "counter",
    "kubemasq_metrics_connections_refused_total": "counter",
    "kubemasq_upstream_servers_unlisted": "gauge",
    "kubemasq_upstream_servers_looping": "gauge",
    "kubemasq_upstream_loops_detected_total": "counter",
    "kubemasq_do_requests_total": "counter",
    "kubemasq_request_size_bytes": "histogram",
    "kubemasq_response_size_bytes": "histogram",
    "kubemasq_cache_hits_by_source_total": "counter",
    "process_cpu_seconds_total": "counter",
    "process_resident_memory_bytes": "gauge",
    "process_virtual_memory_bytes": "gauge",
    "process_start_time_seconds": "gauge",
    "process_open_fds": "gauge",
    "process_max_fds": "gauge",
}
KUBE_FAMILIES = {
    "kubemasq_kube_objects": "gauge",
    "kubemasq_kube_synced": "gauge",
    "kubemasq_kube_watch_restarts_total": "counter",
    "kubemasq_kube_relists_total": "counter",
    "kubemasq_kube_programming_duration_seconds": "histogram",
}
CHAOS_NAMES = ["hits", "misses", "insertions", "evictions", "cachesize"]


# -- a strict parser of the text format 0.0.4 ------------------------------------------------

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SAMPLE_RX = re.compile(rf"^({NAME})(?:\{{(.*)\}})? (\S+)$")
LABEL_RX = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')


def parse_labels(text):
    labels, pos = {}, 0
    while pos < len(text):
        m = LABEL_RX.match(text, pos)
        assert m, f"bad labels {text!r} at {pos}"
        assert m.group(1) not in labels, f"label repeated in {text!r}"
        labels[m.group(1)] = re.sub(r"\\(.)", lambda e: "\n" if e.group(1) == "n" else e.group(1),
                                    m.group(2))
        pos = m.end()
    return labels


def family_of(name, types):
    """The family a sample name belongs to (histograms own _bucket, _sum and _count)."""
    if name in types:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[:-len(suffix)]
        if name.endswith(suffix) and types.get(base) == "histogram":
            return base
    raise AssertionError(f"sample {name} has no # TYPE")


def parse_exposition(text):
    """{family: {"type", "help", "samples": [(name, labels, value)]}}; asserts strictness."""
    assert text.endswith("\n"), "the exposition must end with a newline"
    fams, types, current, done = {}, {}, None, set()
    for line in text.splitlines():
        assert line, "no blank lines"
        if line.startswith("# HELP "):
            name, _, help_ = line[7:].partition(" ")
            assert re.fullmatch(NAME, name) and help_, line
            assert name not in fams, f"family {name} described twice (not grouped)"
            if current:
                done.add(current)
            current = name
            fams[name] = {"help": help_, "type": None, "samples": []}
            continue
        if line.startswith("# TYPE "):
            name, _, typ = line[7:].partition(" ")
            assert name == current and fams[name]["type"] is None, f"TYPE out of place: {line}"
            assert typ in ("counter", "gauge", "histogram", "summary", "untyped"), line
            fams[name]["type"] = types[name] = typ
            continue
        assert not line.startswith("#"), f"unexpected comment {line!r}"
        m = SAMPLE_RX.match(line)
        assert m, f"bad sample line {line!r}"
        fam = family_of(m.group(1), types)
        assert fam == current and fam not in done, f"{m.group(1)} outside its family's group"
        value = float(m.group(3))
        assert not math.isnan(value)
        fams[fam]["samples"].append((m.group(1), parse_labels(m.group(2) or ""), value))
    for name, f in fams.items():
        assert f["type"], f"{name} has no TYPE"
        if f["type"] == "counter":
            assert name.endswith("_total"), f"counter {name} must end in _total"
            assert all(v >= 0 for _, _, v in f["samples"])
        if f["type"] == "histogram":
            assert name.endswith(("_seconds", "_bytes")), f"histogram {name}: seconds or bytes"
            check_histogram(name, f["samples"])
    return fams


def check_histogram(name, samples):
    """Per label set: buckets in increasing le, cumulative, ending with +Inf == _count."""
    series = {}
    for sname, labels, v in samples:
        key = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
        s = series.setdefault(key, {"buckets": [], "sum": None, "count": None})
        if sname == name + "_bucket":
            s["buckets"].append((float(labels["le"]), v))
        elif sname == name + "_sum":
            s["sum"] = v
        else:
            s["count"] = v
    for key, s in series.items():
        les = [le for le, _ in s["buckets"]]
        counts = [c for _, c in s["buckets"]]
        assert les == sorted(les) and len(set(les)) == len(les), f"{name}{key}: le order"
        assert les[-1] == math.inf, f"{name}{key}: no +Inf bucket"
        assert counts == sorted(counts), f"{name}{key}: buckets not cumulative {counts}"
        assert s["count"] == counts[-1], f"{name}{key}: _count != +Inf bucket"
        assert s["sum"] is not None and s["sum"] >= 0


def value(fams, family, sample=None, **labels):
    """The sum of the samples with these labels (sample name defaults to the family's): the
    value of one sample, or a total over the labels not given (e.g. every source)."""
    sample = sample or family
    found = [v for name, lab, v in fams[family]["samples"]
             if name == sample and all(lab.get(k) == x for k, x in labels.items())]
    assert found, f"no sample {sample}{labels}"
    return sum(found)


# -- helpers ---------------------------------------------------------------------------------

def http_get(port, path, method="GET", headers=None, body=None, host="127.0.0.1"):
    c = http.client.HTTPConnection(host, port, timeout=5)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.getheader("Content-Type"), r.read().decode()
    finally:
        c.close()


def scrape(port):
    status, ctype, body = http_get(port, "/metrics")
    assert status == 200
    assert ctype.startswith("text/plain; version=0.0.4")
    return parse_exposition(body)


def settled(port):
    """A scrape taken once every request received has been answered (the fixture's readiness
    probe may still be on its way to the upstream when the test starts)."""
    def answered():
        fams = scrape(port)
        asked = sum(v for _, _, v in fams["kubemasq_requests_total"]["samples"])
        told = sum(v for _, _, v in fams["kubemasq_responses_total"]["samples"])
        quiet = value(fams, "kubemasq_inflight_queries") == 0
        return fams if quiet and asked == told + value(fams, "kubemasq_dropped_total") else None
    return wait_until(answered, 5, 0.05, "every request answered")


def start(kubemasq, scripted, *extra, snapshot=None):
    up = scripted(by_prefix)
    args = [f"--server=127.0.0.1#{up.port}", *extra]
    if snapshot is not None:
        args.append(f"--kube-snapshot={snapshot}")
    for _ in range(3):
        mport = free_port()
        k = kubemasq(args + [f"--metrics-address=127.0.0.1:{mport}"])
        if k.alive():
            k.mport = mport
            k.up = up
            return k
    raise AssertionError("could not start with a free metrics port")


def cluster_snapshot(path):
    path.write_text(DEMO.read_text())


# -- /metrics --------------------------------------------------------------------------------

def test_metrics_families_and_counters(kubemasq, scripted, public_dir):
    snap = public_dir / "cluster.json"
    cluster_snapshot(snap)
    k = start(kubemasq, scripted, snapshot=snap)
    wait_until(lambda: http_get(k.mport, "/ready")[0] == 200, 5, 0.05, "kube sync")
    before = settled(k.mport)
    for fam, typ in {**FAMILIES, **KUBE_FAMILIES}.items():
        assert fam in before, f"family {fam} missing"
        assert before[fam]["type"] == typ, f"{fam} is a {before[fam]['type']}, not {typ}"
    assert value(before, "kubemasq_kube_synced") == 1
    assert value(before, "kubemasq_kube_objects", kind="service") > 0
    server = f"127.0.0.1#{k.up.port}"

    names = [f"m{i}.example." for i in range(3)]
    for n in names:                                    # 3 misses, then 3 hits
        assert k.udp(query(n, "A")).rcode() == dns.rcode.NOERROR
    for n in names:
        assert k.udp(query(n, "A")).rcode() == dns.rcode.NOERROR
    assert k.tcp(query("nx.example.", "AAAA")).rcode() == dns.rcode.NXDOMAIN
    assert k.udp(query("m0.example.", "SRV")).rcode() == dns.rcode.NOERROR
    assert k.udp(query("m0.example.", "NAPTR")).rcode() == dns.rcode.NOERROR
    after = scrape(k.mport)

    def delta(family, sample=None, **labels):
        return value(after, family, sample, **labels) - value(before, family, sample, **labels)

    assert delta("kubemasq_requests_total", protocol="udp") == 8
    assert delta("kubemasq_requests_total", protocol="tcp") == 1
    assert delta("kubemasq_requests_by_type_total", type="A") == 6
    assert delta("kubemasq_requests_by_type_total", type="AAAA") == 1
    assert delta("kubemasq_requests_by_type_total", type="SRV") == 1
    assert delta("kubemasq_requests_by_type_total", type="other") == 1   # NAPTR
    assert delta("kubemasq_responses_total", rcode="NOERROR") == 8
    assert delta("kubemasq_responses_total", rcode="NXDOMAIN") == 1
    assert delta("kubemasq_cache_hits_total") == 3
    assert delta("kubemasq_cache_misses_total") == 6
    # 3 A, the SRV and the NAPTR; the NXDOMAIN has no SOA: not cached without --neg-ttl
    assert delta("kubemasq_cache_inserts_total") == 5
    assert delta("kubemasq_cache_entries") == 5
    # a 1 GiB budget keeps records in 2 MiB arenas, counted whole: the first one already held
    # the entries from before, so the figure may not move; it counts at least that arena
    assert 2 << 20 < value(after, "kubemasq_cache_bytes") < 1 << 30
    assert value(after, "kubemasq_cache_budget_bytes") == 1 << 30
    assert delta("kubemasq_upstream_queries_total", upstream="dns", server=server) == 6
    assert delta("kubemasq_upstream_failures_total", upstream="dns", server=server) == 0
    assert delta("kubemasq_upstream_duration_seconds", "kubemasq_upstream_duration_seconds_count",
                 upstream="dns", server=server) == 6
    hist = "kubemasq_request_duration_seconds"
    assert delta(hist, hist + "_count") == 9
    # the 3 hits count as 0 s: in the lowest bucket
    assert delta(hist, hist + "_bucket", le="5e-05") >= 3
    assert value(after, "kubemasq_inflight_queries") == 0
    assert value(after, "kubemasq_forward_rejections_total") == 0


def raw_tcp(data, port):
    """One DNS message over TCP, its reply's bytes back (without the length prefix)."""
    with socket.create_connection(("127.0.0.1", port), timeout=3) as c:
        c.sendall(len(data).to_bytes(2, "big") + data)
        buf = b""
        while len(buf) < 2 or len(buf) < 2 + int.from_bytes(buf[:2], "big"):
            chunk = c.recv(65535)
            assert chunk, "connection closed before the reply"
            buf += chunk
    return buf[2:2 + int.from_bytes(buf[:2], "big")]


def test_answers_counted_by_source(kubemasq, scripted, public_dir):
    """What an on-call engineer asks first: do cluster names fail, or forwarded ones? Every
    answer counts for where it came from - the kube resolver (cluster), a server (forward),
    kubemasq itself (local) - and a cache hit for the source of the answer it holds, positive
    or negative; latency likewise. The size histograms count each query and answer by
    transport, byte for byte."""
    snap = public_dir / "cluster.json"
    cluster_snapshot(snap)
    k = start(kubemasq, scripted, "--address=/local.test/192.0.2.9", snapshot=snap)
    wait_until(lambda: http_get(k.mport, "/ready")[0] == 200, 5, 0.05, "kube sync")
    before = settled(k.mport)
    asks = [("web.shop.svc.cluster.local.", dns.rcode.NOERROR, False),    # cluster
            ("web.shop.svc.cluster.local.", dns.rcode.NOERROR, False),    # its hit
            ("nosuch.shop.svc.cluster.local.", dns.rcode.NXDOMAIN, False),
            ("nosuch.shop.svc.cluster.local.", dns.rcode.NXDOMAIN, False),  # a denial hit
            ("s1.example.", dns.rcode.NOERROR, False),                    # forward
            ("s1.example.", dns.rcode.NOERROR, False),                    # its hit
            ("do.example.", dns.rcode.NOERROR, True),                     # with DO
            ("fail.example.", dns.rcode.SERVFAIL, False),                 # never cached
            ("a.local.test.", dns.rcode.NOERROR, False)]                  # --address
    sizes = {"udp": [[], []], "tcp": [[], []]}
    for name, rcode, do in asks:
        wire = query(name, "A", want_dnssec=do).to_wire()
        reply = raw_udp(wire, k.port, timeout=3)
        assert reply is not None and dns.message.from_wire(reply).rcode() == rcode, name
        sizes["udp"][0].append(len(wire))
        sizes["udp"][1].append(len(reply))
    wire = query("web.shop.svc.cluster.local.", "A").to_wire()
    reply = raw_tcp(wire, k.port)                                         # a hit over TCP
    sizes["tcp"] = [[len(wire)], [len(reply)]]
    after = settled(k.mport)

    def delta(family, sample=None, **labels):
        return value(after, family, sample, **labels) - value(before, family, sample, **labels)

    moved = {(src, rc): delta("kubemasq_responses_total", source=src, rcode=rc)
             for src in ("cluster", "forward", "local")
             for rc in ("NOERROR", "NXDOMAIN", "SERVFAIL")}
    assert moved == {("cluster", "NOERROR"): 3, ("cluster", "NXDOMAIN"): 2,
                     ("cluster", "SERVFAIL"): 0, ("forward", "NOERROR"): 3,
                     ("forward", "NXDOMAIN"): 0, ("forward", "SERVFAIL"): 1,
                     ("local", "NOERROR"): 1, ("local", "NXDOMAIN"): 0,
                     ("local", "SERVFAIL"): 0}, moved
    hits = {(src, t): delta("kubemasq_cache_hits_by_source_total", source=src, type=t)
            for src in ("cluster", "forward", "local") for t in ("success", "denial")}
    assert hits == {("cluster", "success"): 2, ("cluster", "denial"): 1,
                    ("forward", "success"): 1, ("forward", "denial"): 0,
                    ("local", "success"): 0, ("local", "denial"): 0}, hits
    assert delta("kubemasq_cache_hits_total") == 4
    hist = "kubemasq_request_duration_seconds"
    assert {src: delta(hist, hist + "_count", source=src)
            for src in ("cluster", "forward", "local")} == {"cluster": 5, "forward": 4,
                                                            "local": 1}
    assert delta("kubemasq_do_requests_total") == 1
    assert delta("kubemasq_requests_by_type_total", protocol="tcp", type="A") == 1
    assert delta("kubemasq_requests_by_type_total", protocol="udp", type="A") == 9
    for proto, (queries, replies) in sizes.items():
        for fam, got in (("kubemasq_request_size_bytes", queries),
                         ("kubemasq_response_size_bytes", replies)):
            assert delta(fam, fam + "_count", protocol=proto) == len(got), (fam, proto)
            assert delta(fam, fam + "_sum", protocol=proto) == sum(got), (fam, proto)
            # every message here is under 200 bytes: in the 100 or the 200 bucket
            small = delta(fam, fam + "_bucket", protocol=proto, le="200")
            assert small == len(got), (fam, proto)
            assert delta(fam, fam + "_bucket", protocol=proto, le="100") == \
                sum(1 for n in got if n <= 100), (fam, proto)


def test_cluster_servfail_before_sync_is_the_clusters(kubemasq, scripted, public_dir):
    """Before its first sync the kube resolver answers SERVFAIL: that is the cluster's
    failure (KubemasqClusterErrors), not the forwarder's; forwarded names go on working."""
    k = start(kubemasq, scripted, snapshot=public_dir / "not-yet.json")
    before = settled(k.mport)
    assert k.udp(query("web.shop.svc.cluster.local.", "A")).rcode() == dns.rcode.SERVFAIL
    assert k.udp(query("fine.example.", "A")).rcode() == dns.rcode.NOERROR
    after = settled(k.mport)
    moved = {(src, rc): value(after, "kubemasq_responses_total", source=src, rcode=rc) -
             value(before, "kubemasq_responses_total", source=src, rcode=rc)
             for src in ("cluster", "forward") for rc in ("NOERROR", "SERVFAIL")}
    assert moved == {("cluster", "NOERROR"): 0, ("cluster", "SERVFAIL"): 1,
                     ("forward", "NOERROR"): 1, ("forward", "SERVFAIL"): 0}, moved


def proc_stat(pid):
    """The fields of /proc/PID/stat after the command: [0] is the state (field 3)."""
    text = pathlib.Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2:].split()


def test_process_metrics_match_proc(kubemasq, scripted):
    """process_* as the Prometheus clients define them, checked against what /proc says of
    the daemon around the scrape."""
    hz, page = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")
    k = start(kubemasq, scripted)
    for i in range(50):                                 # some CPU time to measure
        k.udp(query(f"p{i}.example.", "A"))
    pid = k.proc.pid
    fds0 = len(os.listdir(f"/proc/{pid}/fd"))
    st0 = proc_stat(pid)
    fams = scrape(k.mport)
    st1 = proc_stat(pid)
    fds1 = len(os.listdir(f"/proc/{pid}/fd"))
    cpu = value(fams, "process_cpu_seconds_total")
    ticks = [(int(st[11]) + int(st[12])) / hz for st in (st0, st1)]
    # /proc truncates user and system time to whole ticks each, and the kernel splits the
    # runtime into user and system anew at each read (cputime_adjust), so two reads of the same
    # process may disagree by a few ticks: a loose bound, which still catches a wrong unit
    assert 0 < cpu and ticks[0] - 0.001 <= cpu <= ticks[1] + 5 / hz + 0.001, (cpu, ticks)
    btime = int(re.search(r"^btime (\d+)$", pathlib.Path("/proc/stat").read_text(),
                          re.M).group(1))
    started = btime + int(st0[19]) / hz
    assert abs(value(fams, "process_start_time_seconds") - started) < 0.02
    assert time.time() - 60 < started <= time.time()
    rss = [int(st[21]) * page for st in (st0, st1)]
    vsz = [int(st[20]) for st in (st0, st1)]
    assert 0.9 * min(rss) <= value(fams, "process_resident_memory_bytes") <= 1.1 * max(rss)
    assert 0.9 * min(vsz) <= value(fams, "process_virtual_memory_bytes") <= 1.1 * max(vsz)
    # its own: the scrape's connection and the directory being read, beside ours
    assert min(fds0, fds1) <= value(fams, "process_open_fds") <= max(fds0, fds1) + 2
    soft = re.search(r"^Max open files\s+(\d+)", pathlib.Path(f"/proc/{pid}/limits").read_text(),
                     re.M).group(1)
    assert value(fams, "process_max_fds") == int(soft)
    later = scrape(k.mport)
    assert value(later, "process_cpu_seconds_total") >= cpu


def test_forward_rejections_counted(kubemasq, scripted):
    slow = scripted(lambda q, t: ScriptedAnswer(make_answer(q, ["192.0.2.1"]), delay=1.0))
    mport = free_port()
    k = kubemasq([f"--server=127.0.0.1#{slow.port}", "--dns-forward-max=1",
                  f"--metrics-address=127.0.0.1:{mport}"])
    # the fixture's own readiness probe may still hold the one slot: start from a quiet state
    base = value(settled(mport), "kubemasq_forward_rejections_total")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(3)
        s.sendto(query("a.example.", "A").to_wire(), ("127.0.0.1", k.port))
        wait_until(lambda: value(scrape(mport), "kubemasq_inflight_queries") == 1, 3, 0.02,
                   "one query in flight")
        r = k.udp(query("b.example.", "A"))
        assert r.rcode() == dns.rcode.REFUSED
        fams = scrape(mport)
        assert value(fams, "kubemasq_forward_rejections_total") == base + 1
        assert value(fams, "kubemasq_responses_total", rcode="REFUSED") >= 1
        dns.message.from_wire(s.recv(65535))
    finally:
        s.close()


# -- /health, /ready -------------------------------------------------------------------------

def test_health_and_ready_follow_the_kube_sync(kubemasq, scripted, public_dir):
    snap = public_dir / "later.json"
    k = start(kubemasq, scripted, snapshot=snap)
    assert http_get(k.mport, "/health")[:1] == (200,)
    assert http_get(k.mport, "/health")[2].strip() == "ok"
    status, _, body = http_get(k.mport, "/ready")
    assert status == 503
    assert body.startswith("kube: not synced:"), body
    assert value(scrape(k.mport), "kubemasq_kube_synced") == 0
    cluster_snapshot(snap)
    wait_until(lambda: http_get(k.mport, "/ready")[0] == 200, 5, 0.05, "/ready to turn 200")
    assert http_get(k.mport, "/health")[0] == 200
    assert value(scrape(k.mport), "kubemasq_kube_synced") == 1


def test_ready_without_kube_and_ipv6_address(kubemasq, scripted):
    up = scripted(by_prefix)
    mport = free_port(socket.AF_INET6, "::1")
    k = kubemasq([f"--server=127.0.0.1#{up.port}", f"--metrics-address=[::1]:{mport}"])
    assert http_get(mport, "/ready", host="::1")[0] == 200
    fams = scrape_host(mport, "::1")
    assert "kubemasq_kube_synced" not in fams      # no kube resolver, no kube families
    assert k.udp(query("x.example.", "A")).rcode() == dns.rcode.NOERROR


def scrape_host(port, host):
    status, _, body = http_get(port, "/metrics", host=host)
    assert status == 200
    return parse_exposition(body)


def test_bad_requests_get_4xx_and_dns_goes_on(kubemasq, scripted):
    k = start(kubemasq, scripted)
    assert http_get(k.mport, "/nope")[0] == 404
    assert http_get(k.mport, "/metrics", method="POST", body="x=1")[0] == 405
    assert http_get(k.mport, "/health", method="DELETE")[0] == 405
    status = http_get(k.mport, "/metrics", headers={"X-Big": "a" * 20000})[0]
    assert 400 <= status < 500
    assert http_get(k.mport, "/health", method="HEAD")[0] == 200
    # HEAD: the headers, Content-Length included, and not one byte after them
    with socket.create_connection(("127.0.0.1", k.mport), timeout=5) as c:
        c.sendall(b"HEAD /metrics HTTP/1.0\r\n\r\n")
        raw = b""
        while chunk := c.recv(65536):
            raw += chunk
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.") and b" 200 " in head.split(b"\r\n")[0], raw[:200]
    assert int(re.search(rb"(?im)^content-length: *(\d+)", head).group(1)) > 1000
    assert rest == b""
    assert http_get(k.mport, "/metrics?debug=1")[0] == 200
    assert k.udp(query("after.example.", "A")).rcode() == dns.rcode.NOERROR
    assert http_get(k.mport, "/health")[0] == 200


def test_connections_are_capped(kubemasq, scripted):
    k = start(kubemasq, scripted)
    idle = [socket.create_connection(("127.0.0.1", k.mport)) for _ in range(40)]
    try:
        def closed_by_server():
            n = 0
            for s in idle:
                s.settimeout(0.01)
                try:
                    if s.recv(1, socket.MSG_PEEK) == b"":
                        n += 1
                except socket.timeout:
                    pass
                except ConnectionResetError:
                    n += 1
            return n
        # exactly the 24 over the cap of 16 go, the 16 within it stay open
        wait_until(lambda: closed_by_server() == 40 - 16, 3, 0.05,
                   "the 24 connections over the cap to be closed")
        assert closed_by_server() == 24
        assert k.udp(query("busy.example.", "A")).rcode() == dns.rcode.NOERROR
    finally:
        for s in idle:
            s.close()
    wait_until(lambda: http_get(k.mport, "/health")[0] == 200, 5, 0.1, "HTTP served again")
    assert value(scrape(k.mport), "kubemasq_metrics_connections_refused_total") == 24


@pytest.mark.parametrize("addr", ["127.0.0.1", "localhost:9153", "127.0.0.1:0", "::1:9153",
                                  "[::1]:99999", "[127.0.0.1]:9153", "1.2.3.4.5:80", ""])
def test_bad_metrics_address_stops_the_start(addr, tmp_path):
    from conftest import kubemasq_bin
    r = subprocess.run([kubemasq_bin(), "-k", f"--port={free_port()}",
                        "--listen-address=127.0.0.1", "--no-resolv",
                        f"--metrics-address={addr}", "--log-facility=-"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert "--metrics-address" in r.stderr, r.stderr


def test_metrics_port_in_use(kubemasq, tmp_path):
    from conftest import kubemasq_bin
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        r = subprocess.run([kubemasq_bin(), "-k", f"--port={free_port()}",
                            "--listen-address=127.0.0.1", "--no-resolv", "--log-facility=-",
                            f"--metrics-address=127.0.0.1:{busy.getsockname()[1]}"],
                           capture_output=True, text=True, timeout=10)
    finally:
        busy.close()
    assert r.returncode == 1
    assert "--metrics-address" in r.stderr and "in use" in r.stderr, r.stderr


# -- CHAOS -----------------------------------------------------------------------------------

def chaos(port, name, rdtype="TXT"):
    q = dns.message.make_query(name, rdtype, rdclass=dns.rdataclass.CH)
    return dns.query.udp(q, "127.0.0.1", port=port, timeout=3)


def chaos_value(port, name):
    r = chaos(port, name + ".bind.")
    assert r.rcode() == dns.rcode.NOERROR
    (rrset,) = r.answer
    return [s.decode() for rd in rrset for s in rd.strings]


def chaos_shape(r):
    """What must match dnsmasq: rcode, flags, and each answer's name, class, type, TTL."""
    flags = dns.flags.to_text(r.flags & ~dns.flags.RD)
    answers = [(rr.name.to_text().lower(), rr.rdclass, rr.rdtype, rr.ttl) for rr in r.answer]
    return r.rcode(), flags, answers


def test_chaos_like_dnsmasq(kubemasq, scripted, tmp_path):
    up = scripted(by_prefix)
    dm = Dnsmasq(tmp_path, up.port, ["--no-hosts", "--cache-size=150"])
    try:
        k = kubemasq([f"--server=127.0.0.1#{up.port}", "--cache-size=150"])
        ports = {"dnsmasq": dm.port, "kubemasq": k.port}
        for name, rdtype in [("hits.bind.", "TXT"), ("servers.bind.", "TXT"),
                             ("cachesize.bind.", "ANY"), ("hits.bind.", "A"),
                             ("nosuch.bind.", "TXT"), ("id.server.", "TXT"), ("bind.", "TXT")]:
            shapes = {who: chaos_shape(chaos(p, name, rdtype)) for who, p in ports.items()}
            assert shapes["kubemasq"] == shapes["dnsmasq"], (name, rdtype, shapes)
        assert chaos_value(k.port, "cachesize") == chaos_value(dm.port, "cachesize") == ["150"]

        def stats(port):
            v = {n: int(chaos_value(port, n)[0]) for n in CHAOS_NAMES}
            (srv,) = chaos_value(port, "servers")
            addr, q, f = srv.split(" ")
            assert addr == f"127.0.0.1#{up.port}"
            v["server_queries"], v["server_failures"] = int(q), int(f)
            return v
        base = {who: stats(p) for who, p in ports.items()}
        for who, p in ports.items():            # two misses, two hits, one negative answer
            for n in ["c1.example.", "c2.example.", "c1.example.", "c2.example.",
                      "nx.c3.example."]:
                dns.query.udp(query(n, "A"), "127.0.0.1", port=p, timeout=3)
        moved = {who: stats(p) for who, p in ports.items()}
        deltas = {who: {n: moved[who][n] - base[who][n] for n in base[who]} for who in ports}
        assert deltas["kubemasq"] == deltas["dnsmasq"], deltas
        assert deltas["kubemasq"]["misses"] == 3
        assert deltas["kubemasq"]["insertions"] == 2     # the NXDOMAIN has no SOA: not cached
        assert deltas["kubemasq"]["server_queries"] == 3
        assert deltas["kubemasq"]["hits"] >= 2
    finally:
        dm.stop()


def test_chaos_local_answers_like_dnsmasq(kubemasq, scripted, tmp_path):
    """Answers from our own configuration (--host-record, --address) are answered locally in
    dnsmasq's count: hits.bind moves, misses.bind (the queries forwarded) does not."""
    up = scripted(by_prefix)
    local = ["--host-record=h.example,192.0.2.1", "--address=/a.example/192.0.2.2",
             "--cache-size=150"]
    dm = Dnsmasq(tmp_path, up.port, ["--no-hosts", *local])
    try:
        k = kubemasq([f"--server=127.0.0.1#{up.port}", "--no-hosts", *local])
        ports = {"dnsmasq": dm.port, "kubemasq": k.port}

        def stats(port):
            return {n: int(chaos_value(port, n)[0]) for n in ("hits", "misses")}
        base = {who: stats(p) for who, p in ports.items()}
        for who, p in ports.items():
            for n in ["h.example.", "a.example.", "h.example.", "x.a.example."]:
                r = dns.query.udp(query(n, "A"), "127.0.0.1", port=p, timeout=3)
                assert r.rcode() == dns.rcode.NOERROR and r.answer, (who, n, r)
        moved = {who: stats(p) for who, p in ports.items()}
        deltas = {who: {n: moved[who][n] - base[who][n] for n in base[who]} for who in ports}
        assert deltas["kubemasq"] == deltas["dnsmasq"], deltas
        # the four answers, and the CHAOS reads themselves, as dnsmasq counts them
        assert deltas["kubemasq"]["misses"] == 0 and deltas["kubemasq"]["hits"] >= 4
    finally:
        dm.stop()


def test_chaos_counts_move_and_other_classes_forward(kubemasq, scripted):
    up = scripted(by_prefix)
    k = kubemasq([f"--server=127.0.0.1#{up.port}"])
    h0 = int(chaos_value(k.port, "hits")[0])
    m0 = int(chaos_value(k.port, "misses")[0])
    k.udp(query("z.example.", "A"))
    k.udp(query("z.example.", "A"))
    assert int(chaos_value(k.port, "misses")[0]) == m0 + 1
    # the hit, and the three CHAOS answers before this one (as dnsmasq counts them)
    assert int(chaos_value(k.port, "hits")[0]) == h0 + 1 + 3
    # a CHAOS name outside bind. and server. goes to the upstream, as in dnsmasq
    chaos(k.port, "foo.example.")
    assert up.count("foo.example.", "TXT") == 1
    start_at = k.log_size()
    k.signal(signal.SIGUSR1)
    k.wait_log(r"kubemasq queries: .* chaos 4$", 3, start_at)    # hits and misses, twice each
    # cache off: cachesize.bind is 0, as dnsmasq --cache-size=0
    k2 = kubemasq([f"--server=127.0.0.1#{up.port}", "--cache-size=0"])
    assert chaos_value(k2.port, "cachesize") == ["0"]
    (srv,) = chaos_value(k2.port, "servers")
    assert srv.startswith(f"127.0.0.1#{up.port} ")


def test_chaos_edns_and_case(kubemasq, scripted):
    up = scripted(by_prefix)
    k = kubemasq([f"--server=127.0.0.1#{up.port}"])
    q = dns.message.make_query("HiTs.BiNd.", "TXT", rdclass=dns.rdataclass.CH, use_edns=0)
    r = dns.query.udp(q, "127.0.0.1", port=k.port, timeout=3)
    assert r.rcode() == dns.rcode.NOERROR and r.edns == 0
    assert r.question[0].name.to_text() == "HiTs.BiNd."
    assert r.flags & dns.flags.AA
    assert r.answer[0].ttl == 0 and r.answer[0].rdclass == dns.rdataclass.CH
    # as dnsmasq, an answer counts after it is sent: the first hits.bind reads 0, the next 1
    assert int(r.answer[0][0].strings[0]) == 0
    r = dns.query.udp(q, "127.0.0.1", port=k.port, timeout=3)
    assert int(r.answer[0][0].strings[0]) == 1


def test_udp_answer_capped_by_edns_packet_max(kubemasq, scripted):
    """A client advertising 65000 bytes gets at most --edns-packet-max over UDP (TC=1 beyond):
    otherwise a spoofed 40-byte query could draw a 4 KB servers.bind answer at its victim."""
    up = scripted(by_prefix)
    # 150 servers, never asked: servers.bind alone makes the big answer
    servers = [f"--server=127.0.{i // 250}.{i % 250 + 2}#{up.port}" for i in range(150)]
    q = dns.message.make_query("servers.bind.", "TXT", rdclass=dns.rdataclass.CH, use_edns=0,
                               payload=65000)
    k = kubemasq(["--no-resolv", *servers])
    r = dns.query.udp(q, "127.0.0.1", port=k.port, timeout=3)
    assert r.flags & dns.flags.TC and not r.answer
    full = dns.query.tcp(q, "127.0.0.1", port=k.port, timeout=3)
    strings = full.answer[0][0].strings
    assert len(full.to_wire()) > 1232 and len(strings) == 150
    k2 = kubemasq(["--no-resolv", "--edns-packet-max=65000", *servers])
    r = dns.query.udp(q, "127.0.0.1", port=k2.port, timeout=3)
    assert not r.flags & dns.flags.TC
    # the same servers (their counters differ: each daemon's readiness probe went to one)
    assert [t.split()[0] for t in r.answer[0][0].strings] == [t.split()[0] for t in strings]


def test_local_answers_counted_as_one_upstream(kubemasq, scripted):
    k = start(kubemasq, scripted, "--address=/one.test/192.0.2.7", "--address=/two.test/192.0.2.8")
    before = settled(k.mport)
    for n in ["a.one.test.", "b.two.test.", "c.two.test."]:
        assert k.udp(query(n, "A")).rcode() == dns.rcode.NOERROR
    after = scrape(k.mport)
    lines = [lab for name, lab, _ in after["kubemasq_upstream_queries_total"]["samples"]
             if lab["upstream"] == "local"]
    assert lines == [{"upstream": "local", "server": "local"}]     # the zones summed
    moved = (value(after, "kubemasq_upstream_queries_total", upstream="local") -
             value(before, "kubemasq_upstream_queries_total", upstream="local"))
    assert moved == 3
    assert value(after, "kubemasq_answered_locally_total") - \
        value(before, "kubemasq_answered_locally_total") == 3


def test_servers_over_the_caps_are_counted_not_hidden(kubemasq, scripted):
    """300 servers and the local upstream: /metrics lists 256 and says 45 are left out;
    servers.bind (the --server addresses only) lists what fits in its 4 KB and says how many
    more of them there are."""
    up = scripted(by_prefix)
    servers = [f"--server=127.0.{i // 250}.{i % 250 + 2}#{up.port}" for i in range(299)]
    k = start(kubemasq, scripted, "--no-resolv", "--no-hosts", "--address=/local.test/192.0.2.1",
              *servers)                                         # start() adds the 300th
    fams = scrape(k.mport)
    listed = fams["kubemasq_upstream_queries_total"]["samples"]
    assert len(listed) == 256
    assert value(fams, "kubemasq_upstream_servers_unlisted") == 301 - 256
    q = dns.message.make_query("servers.bind.", "TXT", rdclass=dns.rdataclass.CH)
    strings = [s.decode() for s in
               dns.query.tcp(q, "127.0.0.1", port=k.port, timeout=3).answer[0][0].strings]
    m = re.fullmatch(r"\((\d+) more servers not listed\)", strings[-1])
    assert m, strings[-1]
    assert len(strings) - 1 + int(m.group(1)) == 300
    assert 50 < len(strings) - 1 < 256                          # cut by the 4 KB, not the 256
    assert all(re.fullmatch(r"127\.0\.\d+\.\d+#\d+ \d+ \d+", s) for s in strings[:-1])
    assert sum(1 + len(s) for s in strings) <= 4096               # the TXT data cap


def test_trickling_client_cut_at_the_deadline(kubemasq, scripted):
    """evhttp's timeout is per read (10 s), so a client sending a header line every two seconds
    would keep its slot for ever: every connection gets 30 s in all. The wait is the feature."""
    k = start(kubemasq, scripted)
    s = socket.create_connection(("127.0.0.1", k.mport))
    t0 = time.monotonic()
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    closed_at = None
    try:
        while time.monotonic() - t0 < 40:
            s.settimeout(2.0)
            try:
                if s.recv(1) == b"":
                    closed_at = time.monotonic() - t0
                    break
            except socket.timeout:
                pass
            except ConnectionResetError:
                closed_at = time.monotonic() - t0
                break
            try:
                s.sendall(b"X-Trickle: 1\r\n")
            except (BrokenPipeError, ConnectionResetError):
                closed_at = time.monotonic() - t0
                break
    finally:
        s.close()
    assert closed_at is not None, "still open after 40 s"
    assert 29 <= closed_at <= 34, f"closed after {closed_at:.1f} s, deadline 30 s"
    assert http_get(k.mport, "/health")[0] == 200
