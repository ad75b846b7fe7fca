# SPDX-License-Identifier: GPL-2.0-or-later
"""A believable generated Kubernetes cluster, for the kube benchmarks.

gen_cluster() returns the items that `kubectl get namespaces,services,endpointslices -A -o json`
would print for a cluster of N services whose EndpointSlices hold E endpoints in all: a mix of
ClusterIP (some dual-stack, with an IPv6 slice beside the IPv4 one), headless StatefulSet-style
services whose endpoints have hostnames, and a few ExternalName services; named ports; some
endpoints not ready; at most 100 endpoints per slice, as the EndpointSlice controller cuts them.
The same seed gives the same cluster, byte for byte, so the snapshot benchmark
(tests/bench/kube_scale.sh) and a test API server can serve one cluster. snapshot() wraps the
items in the List object, and queries() picks dnsperf query lines from the items (A of ClusterIP
and headless services, SRV, PTR of ClusterIPs, A of endpoint hostnames, NXDOMAIN names).

    /usr/bin/python3 tests/bench/gen_cluster.py [-n SERVICES] [-e ENDPOINTS] [-s SEED]
        [-o FILE] [-q QUERYFILE] [--queries-per-kind N] [--queries-dir DIR]

Importable: `from gen_cluster import gen_cluster, snapshot, queries, query_kinds`, e.g.
`json.dumps(snapshot(gen_cluster(10000, 100000, seed=1)))`.
"""

import argparse
import datetime
import ipaddress
import json
import random
import sys
import uuid

MAX_PER_SLICE = 100  # the EndpointSlice controller's default maxEndpointsPerSlice

TEAMS = ["payments", "checkout", "catalog", "search", "identity", "billing", "ledger", "media",
         "notify", "orders", "inventory", "shipping", "reviews", "ads", "analytics", "ml",
         "platform", "observability", "data", "edge", "mobile", "partner", "risk", "support"]
ENVS = ["prod", "staging", "dev", "canary"]
PARTS = ["api", "web", "worker", "gateway", "cache", "db", "queue", "scheduler", "indexer",
         "frontend", "backend", "auth", "proxy", "sync", "export", "import", "ingest", "render",
         "store", "events", "stream", "batch", "cron", "admin", "grpc", "metrics", "feed"]
STATEFUL = ["postgres", "redis", "kafka", "zookeeper", "etcd", "cassandra", "mongo", "rabbitmq",
            "elasticsearch", "nats", "minio", "clickhouse"]
# (name, port, targetPort, protocol) sets a Service may expose
PORT_SETS = [
    [("http", 80, 8080, "TCP")],
    [("http", 80, 8080, "TCP"), ("metrics", 9090, 9090, "TCP")],
    [("grpc", 9000, 9000, "TCP"), ("http", 8080, 8080, "TCP")],
    [("https", 443, 8443, "TCP")],
    [("dns", 53, 5353, "UDP"), ("dns-tcp", 53, 5353, "TCP")],
    [("http", 80, 8080, "TCP"), ("", 8081, 8081, "TCP")],  # one unnamed port: no SRV
]
STATEFUL_PORTS = {"postgres": 5432, "redis": 6379, "kafka": 9092, "zookeeper": 2181,
                  "etcd": 2379, "cassandra": 9042, "mongo": 27017, "rabbitmq": 5672,
                  "elasticsearch": 9200, "nats": 4222, "minio": 9000, "clickhouse": 8123}
EPOCH = datetime.datetime(2025, 3, 1, 8, 0, 0, tzinfo=datetime.timezone.utc)
ALNUM = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' generateName alphabet


class _Gen:
    """One cluster's state while it is generated: the random source and the address pools."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.rv = 1000
        self.svc_ip = 10      # 10.96.0.0/12: ClusterIPs
        self.pod_ip = 2       # 10.128.0.0/9: pod IPs (8M)
        self.nodes = ["worker-%d" % i for i in range(1, 41)]

    def uid(self):
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def resource_version(self):
        self.rv += self.rng.randint(1, 7)
        return str(self.rv)

    def stamp(self, lo_s=0, hi_s=86400 * 60):
        t = EPOCH + datetime.timedelta(seconds=self.rng.randint(lo_s, hi_s))
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")

    def suffix(self, n):
        return "".join(self.rng.choice(ALNUM) for _ in range(n))

    def cluster_ip(self, v6=False):
        self.svc_ip += 1
        if v6:
            return str(ipaddress.IPv6Address("fd00:10:96::") + self.svc_ip)
        return str(ipaddress.IPv4Address("10.96.0.0") + self.svc_ip)

    def pod_ips(self):
        """A fresh pod's IPv4 address and the IPv6 one it has on a dual-stack network."""
        self.pod_ip += 1
        return (str(ipaddress.IPv4Address("10.128.0.0") + self.pod_ip),
                str(ipaddress.IPv6Address("fd00:10:244::") + self.pod_ip))


def _namespace(g, name):
    return {
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"creationTimestamp": g.stamp(0, 3600),
                     "labels": {"kubernetes.io/metadata.name": name}, "name": name,
                     "resourceVersion": g.resource_version(), "uid": g.uid()},
        "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"},
    }


def _service(g, ns, name, kind, ports, dual=False):
    """kind: "ClusterIP", "Headless" or "ExternalName"."""
    meta = {"creationTimestamp": g.stamp(), "labels": {"app": name}, "name": name,
            "namespace": ns, "resourceVersion": g.resource_version(), "uid": g.uid()}
    if kind == "ExternalName":
        target = "%s.%s.example.com" % (name, g.rng.choice(["eu", "us", "ap"]))
        return {"apiVersion": "v1", "kind": "Service", "metadata": meta,
                "spec": {"externalName": target, "sessionAffinity": "None",
                         "type": "ExternalName"}, "status": {"loadBalancer": {}}}
    spec = {"internalTrafficPolicy": "Cluster", "ports": [], "selector": {"app": name},
            "sessionAffinity": "None", "type": "ClusterIP"}
    for pname, port, target, proto in ports:
        p = {"port": port, "protocol": proto, "targetPort": target}
        if pname:
            p["name"] = pname
        spec["ports"].append(p)
    if kind == "Headless":
        spec.update(clusterIP="None", clusterIPs=["None"], ipFamilies=["IPv4"],
                    ipFamilyPolicy="SingleStack")
    elif dual:
        ips = [g.cluster_ip(), g.cluster_ip(v6=True)]
        spec.update(clusterIP=ips[0], clusterIPs=ips, ipFamilies=["IPv4", "IPv6"],
                    ipFamilyPolicy="PreferDualStack")
    else:
        ip = g.cluster_ip()
        spec.update(clusterIP=ip, clusterIPs=[ip], ipFamilies=["IPv4"],
                    ipFamilyPolicy="SingleStack")
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec,
            "status": {"loadBalancer": {}}}


def _slice(g, svc, family, pods, ports, headless):
    """One EndpointSlice of svc's pods (dicts with name, ip4, ip6, ready, node)."""
    ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
    eps = []
    for pod in pods:
        ep = {"addresses": [pod["ip4"] if family == "IPv4" else pod["ip6"]],
              "conditions": {"ready": pod["ready"], "serving": pod["ready"],
                             "terminating": False}}
        if headless:
            ep["hostname"] = pod["name"]
        ep["nodeName"] = pod["node"]
        ep["targetRef"] = {"kind": "Pod", "name": pod["name"], "namespace": ns,
                           "uid": pod["uid"]}
        eps.append(ep)
    labels = {"app": name, "endpointslice.kubernetes.io/managed-by":
              "endpointslice-controller.k8s.io", "kubernetes.io/service-name": name}
    if headless:
        labels["service.kubernetes.io/headless"] = ""
    stamp = g.stamp()
    obj = {
        "addressType": family, "apiVersion": "discovery.k8s.io/v1", "endpoints": eps,
        "kind": "EndpointSlice",
        "metadata": {
            "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": stamp},
            "creationTimestamp": stamp, "generateName": name + "-",
            "generation": g.rng.randint(1, 12), "labels": labels,
            "name": "%s-%s" % (name, g.suffix(5)), "namespace": ns,
            "ownerReferences": [{"apiVersion": "v1", "blockOwnerDeletion": True,
                                 "controller": True, "kind": "Service", "name": name,
                                 "uid": svc["metadata"]["uid"]}],
            "resourceVersion": g.resource_version(), "uid": g.uid()},
        "ports": [],
    }
    for pname, _port, target, proto in ports:
        p = {"port": target, "protocol": proto}
        if pname:
            p["name"] = pname
        obj["ports"].append(p)
    return obj


def _pods(g, name, count, stateful):
    pods, tmpl = [], "%s-%s" % (name, g.suffix(9))
    for i in range(count):
        ip4, ip6 = g.pod_ips()
        pods.append({"name": "%s-%d" % (name, i) if stateful else "%s-%s" % (tmpl, g.suffix(5)),
                     "ip4": ip4, "ip6": ip6, "ready": g.rng.random() >= 0.05,
                     "node": g.rng.choice(g.nodes), "uid": g.uid()})
    return pods


def _slices(g, svc, pods, ports, headless, dual):
    """pods cut into slices of at most MAX_PER_SLICE; a dual-stack service gets an IPv6 slice
    set of its own over the second half of the pods, so the endpoint count stays exact."""
    out, groups = [], [("IPv4", pods)]
    if dual:
        half = len(pods) // 2
        groups = [("IPv4", pods[:len(pods) - half]), ("IPv6", pods[len(pods) - half:])]
    for family, group in groups:
        for i in range(0, len(group), MAX_PER_SLICE):
            out.append(_slice(g, svc, family, group[i:i + MAX_PER_SLICE], ports, headless))
    return out


def _service_names(g, n_ns, n_svc):
    """n_svc distinct (namespace, name, kind) over n_ns namespaces."""
    namespaces = ["default", "kube-system"]
    while len(namespaces) < n_ns:
        cand = "%s-%s" % (g.rng.choice(TEAMS), g.rng.choice(ENVS))
        if cand in namespaces:
            cand = "%s-%d" % (cand, len(namespaces))
        namespaces.append(cand)
    seen, out = set(), [("default", "kubernetes", "ClusterIP"),
                        ("kube-system", "kube-dns", "ClusterIP")]
    seen.update((ns, name) for ns, name, _ in out)
    while len(out) < n_svc:
        ns = g.rng.choice(namespaces[2:] or namespaces)
        r = g.rng.random()
        if r < 0.2:
            kind, base = "Headless", g.rng.choice(STATEFUL)
        elif r < 0.21:
            kind, base = "ExternalName", g.rng.choice(TEAMS) + "-external"
        else:
            kind, base = "ClusterIP", "%s-%s" % (g.rng.choice(TEAMS), g.rng.choice(PARTS))
        name = base
        while (ns, name) in seen:
            name = "%s-%d" % (base, g.rng.randint(2, 9999))
        seen.add((ns, name))
        out.append((ns, name, kind))
    return namespaces, out[:n_svc]


def _counts(g, kinds, endpoints):
    """Endpoints per service, summing to `endpoints`: spread around the mean, none for
    ExternalName services."""
    idx = [i for i, k in enumerate(kinds) if k != "ExternalName"]
    counts = [0] * len(kinds)
    if not idx:
        return counts
    weights = [g.rng.choice([1, 1, 2, 3, 3, 4, 6]) for _ in idx]
    total = sum(weights)
    given = 0
    for i, w in zip(idx, weights):
        counts[i] = endpoints * w // total
        given += counts[i]
    for k in range(endpoints - given):
        counts[idx[k % len(idx)]] += 1
    return counts


def gen_cluster(services=10000, endpoints=100000, seed=1, namespaces=None):
    """The cluster's items (Namespaces, then Services, then EndpointSlices, as kubectl orders
    the kinds it was asked for), a list of dicts. Deterministic in its arguments."""
    if services < 2:
        raise ValueError("at least 2 services (kubernetes and kube-dns)")
    g = _Gen(seed)
    n_ns = namespaces or max(2, min(services // 80, 400))
    ns_names, svc_names = _service_names(g, n_ns, services)
    counts = _counts(g, [k for _, _, k in svc_names], endpoints)
    items_ns = [_namespace(g, ns) for ns in sorted(ns_names)]
    items_svc, items_sl = [], []
    for (ns, name, kind), count in zip(svc_names, counts):
        if name == "kubernetes":
            ports = [("https", 443, 6443, "TCP")]
        elif name == "kube-dns":
            ports = [("dns", 53, 53, "UDP"), ("dns-tcp", 53, 53, "TCP"),
                     ("metrics", 9153, 9153, "TCP")]
        elif kind == "Headless":
            base = name.split("-")[0]
            ports = [(base, STATEFUL_PORTS.get(base, 8080), STATEFUL_PORTS.get(base, 8080),
                      "TCP")]
        else:
            ports = g.rng.choice(PORT_SETS)
        dual = kind == "ClusterIP" and count >= 2 and g.rng.random() < 0.1
        svc = _service(g, ns, name, kind, ports, dual)
        items_svc.append(svc)
        if kind == "ExternalName":
            continue
        pods = _pods(g, name, count, kind == "Headless")
        items_sl.extend(_slices(g, svc, pods, ports, kind == "Headless", dual))
    key = lambda o: (o["metadata"]["namespace"], o["metadata"]["name"])  # noqa: E731
    return items_ns + sorted(items_svc, key=key) + sorted(items_sl, key=key)


def snapshot(items):
    """The List object kubectl prints around the items."""
    return {"apiVersion": "v1", "items": items, "kind": "List",
            "metadata": {"resourceVersion": ""}}


def _rev(ip):
    return ipaddress.ip_address(ip).reverse_pointer + "."


QUERY_KINDS = ("clusterip", "headless", "srv", "ptr", "hostname", "nxdomain")


def query_kinds(items, zone="cluster.local", per_kind=10000, seed=1):
    """dnsperf lines ("NAME TYPE") by kind, a dict over QUERY_KINDS: A of ClusterIP services,
    A of headless services, SRV of named ports, PTR of ClusterIPs, A of ready endpoints'
    hostnames, and NXDOMAIN names (absent services in existing namespaces); per_kind of each,
    fewer when the cluster has fewer distinct ones. Each line is a distinct name."""
    rng = random.Random(seed)
    cip, hless, srv, ptr, host, nx = [], [], [], [], [], []
    headless = set()
    for o in items:
        m = o["metadata"]
        if o["kind"] == "Service" and o["spec"].get("type") != "ExternalName":
            fq = "%s.%s.svc.%s." % (m["name"], m["namespace"], zone)
            if o["spec"].get("clusterIP") == "None":
                hless.append(fq + " A")
                headless.add((m["namespace"], m["name"]))
            else:
                cip.append(fq + " A")
                ptr.extend(_rev(ip) + " PTR" for ip in o["spec"]["clusterIPs"])
            srv.extend("_%s._%s.%s SRV" % (p["name"], p["protocol"].lower(), fq)
                       for p in o["spec"]["ports"] if p.get("name"))
            nx.append("%s-gone.%s.svc.%s. A" % (m["name"], m["namespace"], zone))
        elif o["kind"] == "EndpointSlice":
            svc = o["metadata"]["labels"]["kubernetes.io/service-name"]
            if (m["namespace"], svc) not in headless or o["addressType"] != "IPv4":
                continue
            host.extend("%s.%s.%s.svc.%s. A" % (ep["hostname"], svc, m["namespace"], zone)
                        for ep in o["endpoints"]
                        if ep.get("hostname") and ep["conditions"]["ready"])
    kinds = {}
    for kind, lines in zip(QUERY_KINDS, (cip, hless, srv, ptr, host, nx)):
        rng.shuffle(lines)
        kinds[kind] = lines[:per_kind]
    return kinds


def queries(items, zone="cluster.local", per_kind=10000, seed=1):
    """The lines of query_kinds() interleaved: one of each kind in turn."""
    kinds = list(query_kinds(items, zone, per_kind, seed).values())
    out = []
    for i in range(max(len(k) for k in kinds)):
        out.extend(k[i] for k in kinds if i < len(k))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--services", type=int, default=10000)
    ap.add_argument("-e", "--endpoints", type=int, default=100000)
    ap.add_argument("-s", "--seed", type=int, default=1)
    ap.add_argument("--namespaces", type=int, default=None,
                    help="how many namespaces (default services/80, 2..400)")
    ap.add_argument("-o", "--output", default="-", help="snapshot file (default stdout)")
    ap.add_argument("-q", "--queries", help="also write a dnsperf query file here")
    ap.add_argument("--queries-per-kind", type=int, default=10000)
    ap.add_argument("--queries-dir", help="also write one query file per kind here, "
                    "named KIND.txt (" + ", ".join(QUERY_KINDS) + ")")
    ap.add_argument("--zone", default="cluster.local")
    a = ap.parse_args(argv)
    items = gen_cluster(a.services, a.endpoints, a.seed, a.namespaces)
    out = sys.stdout if a.output == "-" else open(a.output, "w", encoding="ascii")
    with out:
        json.dump(snapshot(items), out, indent=4, sort_keys=True)
        out.write("\n")
    if a.queries:
        with open(a.queries, "w", encoding="ascii") as f:
            f.write("\n".join(queries(items, a.zone, a.queries_per_kind, a.seed)) + "\n")
    if a.queries_dir:
        kinds = query_kinds(items, a.zone, a.queries_per_kind, a.seed)
        for kind, lines in kinds.items():
            with open("%s/%s.txt" % (a.queries_dir, kind), "w", encoding="ascii") as f:
                f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
