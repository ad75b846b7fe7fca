# SPDX-License-Identifier: GPL-2.0-or-later
"""The kube resolver end to end: the daemon with --kube-snapshot, queried with dnspython.
The demo cluster (conf/demo-cluster.json, the README's examples) for the record forms,
rcodes, Authority SOA, Additional records and case echo; small snapshots written to a tmp
folder and rewritten on disk for the live re-read (visible within the poll interval, with the
stale cached answers gone even at --kube-ttl=3600), a broken rewrite (previous state kept, the
position logged), a snapshot broken at start (SERVFAIL, never NXDOMAIN), ExternalName targets
and unknown PTRs going to a scripted upstream, SIGHUP and the SIGUSR1 lines."""

import json
import os
import signal
import socket

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from conftest import TOP, query, rdatas, wait_until
from scripted_upstream import ScriptedAnswer, make_answer

DEMO = TOP / "conf" / "demo-cluster.json"
ZONE = "cluster.local."
EXTERNAL_IP = "192.0.2.80"
UNKNOWN_PTR = "4.3.2.1.in-addr.arpa."


# -- snapshots -------------------------------------------------------------------------------

def namespace(name):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def service(ns, name, cluster_ips=None, ports=(), external=None):
    spec = {"ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports]}
    if external:
        spec.update(type="ExternalName", externalName=external)
    elif cluster_ips is None:
        spec.update(type="ClusterIP", clusterIP="None", clusterIPs=["None"])
    else:
        spec.update(type="ClusterIP", clusterIP=cluster_ips[0], clusterIPs=list(cluster_ips))
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def slice_(ns, svc, name, addrs, hostnames=None, ports=()):
    eps = []
    for i, a in enumerate(addrs):
        ep = {"addresses": [a], "conditions": {"ready": True}}
        if hostnames and hostnames[i]:
            ep["hostname"] = hostnames[i]
        eps.append(ep)
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": ns,
                         "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv6" if ":" in addrs[0] else "IPv4", "endpoints": eps,
            "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports]}


def cluster(api_ip="10.96.0.1", extra=()):
    """A small cluster: default/api (ClusterIP api_ip), default/db (headless, two hosts)."""
    items = [namespace("default"),
             service("default", "api", [api_ip], [("https", 443, "TCP")]),
             service("default", "db", None, [("pg", 5432, "TCP")]),
             slice_("default", "db", "db-abc", ["10.244.0.5", "10.244.0.6"],
                    ["db-0", "db-1"], [("pg", 5432, "TCP")])]
    return {"apiVersion": "v1", "kind": "List", "items": items + list(extra)}


def write_snapshot(path, doc_or_text, rename=True):
    """Write the file the way tools do: a new file renamed over the old one (rename=True), or
    rewritten in place (the poll must notice either)."""
    text = doc_or_text if isinstance(doc_or_text, str) else json.dumps(doc_or_text, indent=1)
    if rename:
        tmp = path.with_name(path.name + ".new")
        tmp.write_text(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    else:
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)


# -- the scripted upstream behind the daemon -------------------------------------------------

def upstream_script(query_msg, transport):
    """payments.example.com -> EXTERNAL_IP; gone.example.com -> NXDOMAIN; PTRs -> a name;
    anything else -> 192.0.2.1."""
    q = query_msg.question[0]
    name = q.name.to_text().lower()
    if name == "gone.example.com.":
        return ScriptedAnswer(make_answer(query_msg, [], rcode=dns.rcode.NXDOMAIN))
    if q.rdtype == dns.rdatatype.PTR:
        resp = dns.message.make_response(query_msg)
        resp.flags |= dns.flags.RA
        resp.answer.append(dns.rrset.from_text(q.name, 300, "IN", "PTR", "upstream.example."))
        return ScriptedAnswer(resp.to_wire())
    if q.rdtype == dns.rdatatype.A:
        ip = EXTERNAL_IP if name == "payments.example.com." else "192.0.2.1"
        return ScriptedAnswer(make_answer(query_msg, [ip]))
    return ScriptedAnswer(make_answer(query_msg, []))


@pytest.fixture
def upstream(scripted):
    return scripted(upstream_script)


def start(kubemasq, upstream, snapshot, *extra):
    return kubemasq([f"--server=127.0.0.1#{upstream.port}", f"--kube-snapshot={snapshot}",
                     *extra])


def soa_in_authority(resp):
    return [r for r in resp.authority if r.rdtype == dns.rdatatype.SOA and
            r.name.to_text().lower() == ZONE]


# -- the demo cluster ------------------------------------------------------------------------

@pytest.fixture
def demo(kubemasq, upstream):
    return start(kubemasq, upstream, DEMO)


def test_demo_clusterip_a_and_aaaa(demo):
    r = demo.udp(query("kubernetes.default.svc.cluster.local.", "A"))
    assert r.rcode() == dns.rcode.NOERROR
    assert rdatas(r, "A") == ["10.96.0.1"]
    assert r.flags & dns.flags.AA
    assert r.answer[0].ttl == 5                          # --kube-ttl default
    r = demo.udp(query("web.shop.svc.cluster.local.", "AAAA"))   # dual-stack
    assert rdatas(r, "AAAA") == ["fd00:10:96::1234"]
    r = demo.udp(query("web.shop.svc.cluster.local.", "A"))
    assert rdatas(r, "A") == ["10.96.12.34"]


def test_demo_headless_and_hostnames(demo):
    r = demo.udp(query("postgres.data.svc.cluster.local.", "A"))
    assert rdatas(r, "A") == ["10.244.1.21", "10.244.2.20"]
    r = demo.udp(query("postgres-1.postgres.data.svc.cluster.local.", "A"))
    assert rdatas(r, "A") == ["10.244.2.20"]


def test_demo_negative_answers_carry_soa(demo):
    # NODATA: the name exists, no AAAA
    r = demo.udp(query("kubernetes.default.svc.cluster.local.", "AAAA"))
    assert r.rcode() == dns.rcode.NOERROR and r.answer == []
    assert soa_in_authority(r)
    # NXDOMAIN: unknown service, unknown namespace
    for name in ("nosuch.default.svc.cluster.local.", "kubernetes.nosuchns.svc.cluster.local."):
        r = demo.udp(query(name, "A"))
        assert r.rcode() == dns.rcode.NXDOMAIN, name
        assert soa_in_authority(r), name
    # empty non-terminal
    r = demo.udp(query("svc.cluster.local.", "A"))
    assert r.rcode() == dns.rcode.NOERROR and r.answer == []


def test_demo_srv_with_additional(demo):
    r = demo.tcp(query("_dns._udp.kube-dns.kube-system.svc.cluster.local.", "SRV"))
    assert r.rcode() == dns.rcode.NOERROR
    assert rdatas(r, "SRV") == ["0 100 53 kube-dns.kube-system.svc.cluster.local."]
    extra = {(rr.name.to_text().lower(), rd.to_text()) for rr in r.additional
             if rr.rdtype == dns.rdatatype.A for rd in rr}
    assert ("kube-dns.kube-system.svc.cluster.local.", "10.96.0.10") in extra


def test_demo_ptr(demo, upstream):
    r = demo.udp(query("1.0.96.10.in-addr.arpa.", "PTR"))
    assert rdatas(r, "PTR") == ["kubernetes.default.svc.cluster.local."]
    r = demo.udp(query("21.1.244.10.in-addr.arpa.", "PTR"))
    assert rdatas(r, "PTR") == ["postgres-0.postgres.data.svc.cluster.local."]
    assert upstream.count(qname="1.0.96.10.in-addr.arpa.") == 0


def test_demo_case_echo(demo):
    name = "KuBeRnEtEs.DeFault.svc.cluster.local."
    for _ in range(2):                       # the miss, then the cache hit
        r = demo.udp(query(name, "A"))
        assert r.question[0].name.to_text() == name
        assert r.answer[0].name.to_text() == name
        assert rdatas(r, "A") == ["10.96.0.1"]


def test_demo_external_name_resolved_upstream(demo, upstream):
    r = demo.udp(query("payments-api.shop.svc.cluster.local.", "A"))
    assert r.rcode() == dns.rcode.NOERROR
    assert rdatas(r, "CNAME") == ["payments.example.com."]
    assert rdatas(r, "A") == [EXTERNAL_IP]
    assert r.answer[0].rdtype == dns.rdatatype.CNAME        # the CNAME first
    assert upstream.count(qname="payments.example.com.") >= 1


def test_demo_external_name_in_zone(demo, upstream):
    r = demo.udp(query("cart.shop.svc.cluster.local.", "A"))
    assert rdatas(r, "CNAME") == ["web.shop.svc.cluster.local."]
    assert rdatas(r, "A") == ["10.96.12.34"]
    assert upstream.count(qname="web.shop.svc.cluster.local.") == 0


def test_unknown_ptr_falls_through(demo, upstream):
    r = demo.udp(query(UNKNOWN_PTR, "PTR"))
    assert rdatas(r, "PTR") == ["upstream.example."]
    assert upstream.count(qname=UNKNOWN_PTR) == 1
    r = demo.udp(query("b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa.",
                       "PTR"))
    assert rdatas(r, "PTR") == ["upstream.example."]


def test_out_of_zone_names_forwarded(demo, upstream):
    r = demo.udp(query("www.example.org.", "A"))
    assert rdatas(r, "A") == ["192.0.2.1"]
    assert upstream.count(qname="www.example.org.") == 1


# -- snapshots rewritten on disk -------------------------------------------------------------

def api_ips(k, name="api.default.svc.cluster.local."):
    return rdatas(k.udp(query(name, "A")), "A")


def test_rewrite_visible_and_cache_invalidated(kubemasq, upstream, public_dir):
    snap = public_dir / "cluster.json"
    write_snapshot(snap, cluster("10.96.0.1"))
    k = start(kubemasq, upstream, snap, "--kube-ttl=3600")
    assert api_ips(k) == ["10.96.0.1"]
    r = k.udp(query("1.0.96.10.in-addr.arpa.", "PTR"))
    assert rdatas(r, "PTR") == ["api.default.svc.cluster.local."]
    assert api_ips(k) == ["10.96.0.1"]              # cached now, for an hour
    # a new file renamed over the old one
    write_snapshot(snap, cluster("10.96.0.2"))
    wait_until(lambda: api_ips(k) == ["10.96.0.2"], 4, 0.05, "the new ClusterIP")
    # the old IP's PTR (cached for an hour) is gone too: it now goes to the forwarder
    r = k.udp(query("1.0.96.10.in-addr.arpa.", "PTR"))
    assert rdatas(r, "PTR") == ["upstream.example."]
    r = k.udp(query("2.0.96.10.in-addr.arpa.", "PTR"))
    assert rdatas(r, "PTR") == ["api.default.svc.cluster.local."]
    # the same file rewritten in place, same size
    write_snapshot(snap, cluster("10.96.0.3"), rename=False)
    wait_until(lambda: api_ips(k) == ["10.96.0.3"], 4, 0.05, "the rewritten ClusterIP")
    # a service added, a service deleted
    extra = [service("default", "new", ["10.96.0.9"])]
    write_snapshot(snap, cluster("10.96.0.3", extra))
    wait_until(lambda: api_ips(k, "new.default.svc.cluster.local.") == ["10.96.0.9"], 4, 0.05,
               "the new service")
    write_snapshot(snap, cluster("10.96.0.3"))
    wait_until(lambda: k.udp(query("new.default.svc.cluster.local.", "A")).rcode() ==
               dns.rcode.NXDOMAIN, 4, 0.05, "the deleted service to go")


def cache_counts(k):
    """(expired, renewed) from the SIGUSR1 cache line."""
    start_at = k.log_size()
    k.signal(signal.SIGUSR1)
    m = k.wait_log(r"kubemasq cache: .* expired (\d+), negative entries \d+, renewed (\d+)", 3,
                   start_at)
    return int(m.group(1)), int(m.group(2))


def test_unchanged_answers_renewed_changed_ones_not(kubemasq, upstream, public_dir):
    """A kube answer that expires while the cluster stayed the same is served again from the
    cache (renewed); after any change, one stored before it is built anew instead."""
    snap = public_dir / "cluster.json"
    write_snapshot(snap, cluster("10.96.0.1"))
    k = start(kubemasq, upstream, snap, "--kube-ttl=1")
    assert api_ips(k) == ["10.96.0.1"]             # built by the store, cached for 1 s

    def renewed():
        r = k.udp(query("api.default.svc.cluster.local.", "A"))
        assert rdatas(r, "A") == ["10.96.0.1"] and r.answer[0].ttl <= 1
        return cache_counts(k)[1] >= 1
    wait_until(renewed, 5, 0.1, "the expired answer to be renewed")
    assert cache_counts(k) == (0, 1)                # renewed, never dropped
    # any change to the cluster, here a service added elsewhere
    write_snapshot(snap, cluster("10.96.0.1", [service("default", "new", ["10.96.0.9"])]))
    wait_until(lambda: api_ips(k, "new.default.svc.cluster.local.") == ["10.96.0.9"], 4, 0.05,
               "the change")
    _, renewed_before = cache_counts(k)

    def dropped():
        assert api_ips(k) == ["10.96.0.1"]
        return cache_counts(k)[0] >= 1
    wait_until(dropped, 5, 0.1, "the answer from before the change to expire")
    assert cache_counts(k)[1] == renewed_before     # expired and built anew, not renewed


def test_broken_rewrite_keeps_previous_state(kubemasq, upstream, public_dir):
    snap = public_dir / "cluster.json"
    write_snapshot(snap, cluster("10.96.0.1"))
    k = start(kubemasq, upstream, snap)
    assert api_ips(k) == ["10.96.0.1"]
    start_at = k.log_size()
    write_snapshot(snap, '{"apiVersion": "v1", "kind": "List",\n "items": [ {"kind": ]}\n')
    m = k.wait_log(r"kube: .*cluster\.json:(\d+):(\d+): .*keeping the previous state", 4,
                   start_at)
    assert int(m.group(1)) == 2                               # the line of the bad token
    assert api_ips(k) == ["10.96.0.1"]
    assert k.alive()
    write_snapshot(snap, cluster("10.96.0.7"))
    wait_until(lambda: api_ips(k) == ["10.96.0.7"], 4, 0.05, "the repaired file")


def test_servfail_until_first_good_read(kubemasq, upstream, public_dir):
    snap = public_dir / "cluster.json"
    write_snapshot(snap, "{ not json")
    k = start(kubemasq, upstream, snap)
    k.wait_log(r"kube: .*cluster\.json:1:\d+: .*SERVFAIL", 2)
    for name in ("api.default.svc.cluster.local.", "nosuch.default.svc.cluster.local."):
        r = k.udp(query(name, "A"))
        assert r.rcode() == dns.rcode.SERVFAIL, name       # never NXDOMAIN
    # reverse lookups still work meanwhile, through the forwarders
    assert rdatas(k.udp(query(UNKNOWN_PTR, "PTR")), "PTR") == ["upstream.example."]
    start_at = k.log_size()
    k.signal(signal.SIGUSR1)
    k.wait_log(r"kube: not synced: .*cluster\.json:1:", 3, start_at)
    write_snapshot(snap, cluster("10.96.0.1"))
    wait_until(lambda: k.udp(query("api.default.svc.cluster.local.", "A")).rcode() ==
               dns.rcode.NOERROR, 4, 0.05, "the first good read")
    assert api_ips(k) == ["10.96.0.1"]


def test_missing_snapshot_at_start(kubemasq, upstream, public_dir):
    snap = public_dir / "later.json"
    k = start(kubemasq, upstream, snap)
    assert k.udp(query("api.default.svc.cluster.local.", "A")).rcode() == dns.rcode.SERVFAIL
    write_snapshot(snap, cluster("10.96.0.1"))
    wait_until(lambda: api_ips(k) == ["10.96.0.1"], 4, 0.05, "the file to appear")


def test_sighup_rereads(kubemasq, upstream, public_dir):
    snap = public_dir / "cluster.json"
    write_snapshot(snap, cluster("10.96.0.1"))
    k = start(kubemasq, upstream, snap)
    start_at = k.log_size()
    k.signal(signal.SIGHUP)
    k.wait_log(r"kube: reading .*cluster\.json", 3, start_at)
    k.wait_log(r"kube: read .*cluster\.json: 1 namespaces, 2 services, 1 endpointslices", 3,
               start_at)


def test_skipped_objects_logged(kubemasq, upstream, public_dir):
    snap = public_dir / "cluster.json"
    bad = service("default", "bad", ["10.96.0.300"])           # not an IP
    write_snapshot(snap, cluster("10.96.0.1", [bad]))
    k = start(kubemasq, upstream, snap)
    k.wait_log(r"kube: .*cluster\.json: skipped 1 objects, first: .*bad", 3)
    assert api_ips(k) == ["10.96.0.1"]
    assert k.udp(query("bad.default.svc.cluster.local.", "A")).rcode() == dns.rcode.NXDOMAIN


def test_sigusr1_kube_lines(demo):
    demo.udp(query("kubernetes.default.svc.cluster.local.", "A"))
    start_at = demo.log_size()
    demo.signal(signal.SIGUSR1)
    m = demo.wait_log(r"kube: namespaces (\d+), services (\d+), endpointslices (\d+), "
                      r"endpoints (\d+), pods (\d+)", 3, start_at)
    assert [int(x) for x in m.groups()] == [4, 6, 5, 11, 0]
    demo.wait_log(r"kube: last sync \d\d:\d\d:\d\d from snapshot .*demo-cluster\.json "
                  r"\(0 skipped\)", 3, start_at)


def test_external_target_nxdomain(kubemasq, upstream, public_dir):
    snap = public_dir / "cluster.json"
    write_snapshot(snap, cluster("10.96.0.1", [service("default", "ext", external="gone.example.com")]))
    k = start(kubemasq, upstream, snap)
    r = k.udp(query("ext.default.svc.cluster.local.", "A"))
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert rdatas(r, "CNAME") == ["gone.example.com."]
    assert upstream.count(qname="gone.example.com.") == 1


def test_kube_namespaces_and_domain(kubemasq, upstream, public_dir):
    snap = public_dir / "cluster.json"
    doc = cluster("10.96.0.1", [namespace("other"), service("other", "x", ["10.96.1.1"])])
    write_snapshot(snap, doc)
    k = start(kubemasq, upstream, snap, "--kube-domain=Corp.Example", "--kube-namespaces=default")
    r = k.udp(query("api.default.svc.corp.example.", "A"))
    assert rdatas(r, "A") == ["10.96.0.1"]
    assert k.udp(query("x.other.svc.corp.example.", "A")).rcode() == dns.rcode.NXDOMAIN
    # cluster.local is not ours any more: it goes to the forwarder
    assert rdatas(k.udp(query("api.default.svc.cluster.local.", "A")), "A") == ["192.0.2.1"]


def test_large_answer_over_tcp(kubemasq, upstream, public_dir):
    """300 endpoints do not fit the first 4096-byte try: the answer is made again in 65535
    bytes; UDP gets TC, TCP gets every address."""
    snap = public_dir / "cluster.json"
    ips = [f"10.245.{i // 250}.{i % 250 + 1}" for i in range(300)]
    big = [service("default", "big", None, [("p", 80, "TCP")]),
           slice_("default", "big", "big-1", ips, None, [("p", 80, "TCP")])]
    write_snapshot(snap, cluster("10.96.0.1", big))
    k = start(kubemasq, upstream, snap)
    r = k.tcp(query("big.default.svc.cluster.local.", "A"))
    assert rdatas(r, "A") == sorted(ips)
    r = k.udp(query("big.default.svc.cluster.local.", "A", use_edns=0, payload=1232))
    assert r.flags & dns.flags.TC


def silent_target(query_msg, transport):
    if query_msg.question[0].name.to_text().lower() == "slow.example.com.":
        return None                                            # never answers
    return upstream_script(query_msg, transport)


def test_external_target_timeout_and_shutdown(kubemasq, scripted, public_dir):
    """A target nobody answers: SERVFAIL (never a bare NXDOMAIN), and a daemon stopped while
    a query waits on the target exits cleanly (cancel() of the second stage)."""
    up = scripted(silent_target)
    snap = public_dir / "cluster.json"
    write_snapshot(snap, cluster("10.96.0.1", [service("default", "slow",
                                                       external="slow.example.com")]))
    k = kubemasq([f"--server=127.0.0.1#{up.port}", f"--kube-snapshot={snap}",
                  "--upstream-timeout=400", "--upstream-retry=200"])
    r = k.udp(query("slow.default.svc.cluster.local.", "A"), timeout=5)
    assert r.rcode() == dns.rcode.SERVFAIL
    assert up.count(qname="slow.example.com.") >= 1
    # again, but stop the daemon while the target is still being asked
    k2 = kubemasq([f"--server=127.0.0.1#{up.port}", f"--kube-snapshot={snap}",
                   "--upstream-timeout=10000", "--upstream-retry=5000"])
    before = up.count(qname="slow.example.com.")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.sendto(query("slow.default.svc.cluster.local.", "AAAA").to_wire(), (k2.host, k2.port))
        wait_until(lambda: up.count(qname="slow.example.com.") > before, 3, 0.02,
                   "the target query upstream")
    finally:
        s.close()
    assert k2.stop() == 0
