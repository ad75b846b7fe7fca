# SPDX-License-Identifier: GPL-2.0-or-later
"""The Kubernetes manifests of packaging/kubernetes/ are what they claim: valid YAML with the
fields each kind requires; RBAC that grants exactly list and watch on namespaces, services and
discovery.k8s.io endpointslices (pods only in the separate verified-mode role); kubemasq
containers that run non-root on a read-only root with NET_BIND_SERVICE as their only
capability, probe /health and /ready on the port --metrics-address serves, keep the cache
budget under the memory limit, detect forwarding loops, and whose args the real binary
accepts; a sidecar pod whose resolv.conf names only its sidecar; a node-local Service that
prefers the DaemonSet's pod on the same node and falls back to another, with a surge rolling
update and a grace period that covers --shutdown-delay; the kube-dns drop-in (Service
kube-dns with CoreDNS's labels, ports and a documented clusterIP, a spread, critical,
surge-rolled Deployment of two, its PodDisruptionBudget). kubectl checks them offline: every
workload, Service and binding round-trips through kubectl's typed decoding (a misspelt or
misplaced field would be dropped or refused; fields newer than the installed kubectl are
named), and `kubectl apply --dry-run=client --validate=false` runs on every file against a
loopback stand-in for the API server's discovery."""

import http.server
import json
import os
import pathlib
import re
import shutil
import subprocess
import threading

import pytest
import yaml

from conftest import kubemasq_bin, missing_tool

TOP = pathlib.Path(__file__).resolve().parents[2]
KDIR = TOP / "packaging" / "kubernetes"
DEMO = TOP / "conf" / "demo-cluster.json"

NAMESPACED = {"ServiceAccount", "Deployment", "DaemonSet", "Service", "PodDisruptionBudget"}
WORKLOADS = {"Deployment", "DaemonSet"}
BASE_RULES = {("", "namespaces"), ("", "services"), ("discovery.k8s.io", "endpointslices")}


def manifest_files():
    files = sorted(KDIR.glob("*.yaml"))
    assert files, "no manifests in packaging/kubernetes"
    return files


def load(path):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs, f"{path.name} holds no object"
    return docs


def all_docs():
    return [(f.name, d) for f in manifest_files() for d in load(f)]


def by_kind(kind):
    return [d for _, d in all_docs() if d["kind"] == kind]


def kubemasq_containers():
    """(workload, pod spec, container) for every kubemasq container of every workload."""
    out = []
    for _, d in all_docs():
        if d["kind"] in WORKLOADS:
            spec = d["spec"]["template"]["spec"]
            for c in spec.get("initContainers", []) + spec["containers"]:
                if c["image"].split("/")[-1].startswith("kubemasq:"):
                    out.append((d, spec, c))
    assert len(out) >= 2, "expected the sidecar and the DaemonSet's kubemasq"
    return out


def opt(args, name, default=None):
    """The last value of --name=VALUE in args (dnsmasq semantics: the last one wins)."""
    vals = [a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")]
    return vals[-1] if vals else default


def size_bytes(text):
    m = re.fullmatch(r"(\d+)([KMG]?)(i?)", text)
    assert m, f"cannot read size {text}"
    return int(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2)]


def container_port(container, ref):
    """A probe's or Service's port (a name or a number) -> the container port it means."""
    for p in container.get("ports", []):
        if ref in (p.get("name"), p["containerPort"]):
            return p
    raise AssertionError(f"port {ref} is not a port of container {container['name']}")


def image_file_capability():
    """The file capability packaging/image-rootfs.sh gives the image's binary."""
    m = re.search(r"^setcap (\S+) ", (TOP / "packaging" / "image-rootfs.sh").read_text(), re.M)
    return m.group(1) if m else None


def assert_graceful_stop(spec, c):
    """--shutdown-delay set, and the grace period covers it, the in-flight queries it then
    waits for (up to --upstream-timeout) and a second to exit: else the kubelet's SIGKILL
    ends the delay early."""
    delay = int(opt(c["args"], "shutdown-delay", "0"))
    assert delay >= 3, "no --shutdown-delay: DNS stops the moment SIGTERM arrives"
    inflight = -(-int(opt(c["args"], "upstream-timeout", "4000")) // 1000)
    grace = spec.get("terminationGracePeriodSeconds", 30)
    assert grace >= delay + inflight + 1, f"grace {grace} s < {delay} + {inflight} + 1"


# -- YAML and required fields ----------------------------------------------------------------

@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: p.name)
def test_valid_yaml_with_required_fields(path):
    text = path.read_text()
    assert text.startswith("# SPDX-License-Identifier:"), "SPDX line first"
    for d in load(path):
        assert isinstance(d, dict)
        assert d.get("apiVersion") and d.get("kind"), d
        md = d.get("metadata") or {}
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", md.get("name", "")), md
        assert ("namespace" in md) == (d["kind"] in NAMESPACED), \
            f"{d['kind']}/{md['name']}: namespace only and always on namespaced kinds"
        if d["kind"] in WORKLOADS:
            spec = d["spec"]
            labels = spec["template"]["metadata"]["labels"]
            sel = spec["selector"]["matchLabels"]
            assert sel.items() <= labels.items(), "the selector must match the pod template"
            for c in spec["template"]["spec"]["containers"]:
                assert c.get("name") and c.get("image"), c
        if d["kind"] in ("ClusterRoleBinding", "RoleBinding"):
            assert d["roleRef"]["apiGroup"] == "rbac.authorization.k8s.io"
            assert d["subjects"], "a binding without subjects"


def test_names_are_unique():
    seen = set()
    for name, d in all_docs():
        key = (d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"])
        assert key not in seen, f"{key} defined twice ({name})"
        seen.add(key)


# -- RBAC ------------------------------------------------------------------------------------

def role_grants(role):
    grants = {}
    for rule in role["rules"]:
        assert set(rule) == {"apiGroups", "resources", "verbs"}, \
            f"unexpected keys in a rule of {role['metadata']['name']}: {sorted(rule)}"
        for g in rule["apiGroups"]:
            for r in rule["resources"]:
                grants.setdefault((g, r), set()).update(rule["verbs"])
    return grants


def test_cluster_roles_list_and_watch_exactly():
    roles = {r["metadata"]["name"]: r for r in by_kind("ClusterRole")}
    assert set(roles) == {"kubemasq", "kubemasq-pods", "kubemasq-dns"}
    base = role_grants(roles["kubemasq"])
    assert set(base) == BASE_RULES
    # kube-dns.yaml is self-contained: its own role, the same grants
    assert role_grants(roles["kubemasq-dns"]) == base
    pods = role_grants(roles["kubemasq-pods"])
    assert set(pods) == {("", "pods")}
    for grants in (base, pods):
        for what, verbs in grants.items():
            assert verbs == {"list", "watch"}, f"{what}: {sorted(verbs)}"
    assert not by_kind("Role"), "kubemasq reads cluster-wide: no namespaced Role"


def test_bindings_point_at_defined_roles_and_accounts():
    roles = {r["metadata"]["name"] for r in by_kind("ClusterRole")}
    accounts = {(a["metadata"]["namespace"], a["metadata"]["name"])
                for a in by_kind("ServiceAccount")}
    bound = {}
    for b in by_kind("ClusterRoleBinding"):
        assert b["roleRef"]["kind"] == "ClusterRole" and b["roleRef"]["name"] in roles
        for s in b["subjects"]:
            assert s["kind"] == "ServiceAccount"
            assert (s["namespace"], s["name"]) in accounts, f"no ServiceAccount {s}"
            bound.setdefault((s["namespace"], s["name"]), set()).add(b["roleRef"]["name"])
    # every pod that runs kubemasq can list and watch what it needs
    grants = {r["metadata"]["name"]: role_grants(r) for r in by_kind("ClusterRole")}
    for w, spec, _ in kubemasq_containers():
        sa = (w["metadata"]["namespace"], spec.get("serviceAccountName", "default"))
        assert any(set(grants[r]) >= BASE_RULES for r in bound.get(sa, set())), \
            f"{sa} is bound to no ClusterRole that lists and watches {sorted(BASE_RULES)}"
        assert spec.get("automountServiceAccountToken", True), "--kube needs the token"


# -- kubemasq containers ---------------------------------------------------------------------

def test_containers_unprivileged():
    for w, spec, c in kubemasq_containers():
        pod_sc, sc = spec.get("securityContext", {}), c.get("securityContext", {})
        where = f"{w['kind']}/{w['metadata']['name']}"
        assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, where
        assert sc.get("runAsUser", pod_sc.get("runAsUser", 0)) != 0, where
        assert sc.get("readOnlyRootFilesystem") is True, where
        assert sc.get("allowPrivilegeEscalation") is False, where
        assert sc["capabilities"]["drop"] == ["ALL"], where
        # A non-root container gets no effective capability from `add` alone (Kubernetes sets
        # no ambient capabilities): the image's binary holds NET_BIND_SERVICE as a file
        # capability, which the kernel grants only - and, its effective bit set, starts the
        # binary only - where the bounding set keeps it. So every container adds it, and
        # nothing else. (test_packaging.py runs both halves of that in a chroot.)
        assert image_file_capability() == "cap_net_bind_service=+ep"
        assert sc["capabilities"].get("add") == ["NET_BIND_SERVICE"], \
            f"{where}: the image's binary does not start without NET_BIND_SERVICE"
        assert not spec.get("hostNetwork"), f"{where}: host network"
        assert not pod_sc.get("sysctls"), f"{where}: the capability makes sysctls needless"


def test_probes_on_the_metrics_port():
    for w, _, c in kubemasq_containers():
        where = f"{w['kind']}/{w['metadata']['name']}"
        addr = opt(c["args"], "metrics-address")
        assert addr, f"{where}: no --metrics-address for the probes"
        host, _, port = addr.rpartition(":")
        # the kubelet probes the pod IP: loopback would fail every probe
        assert host in ("0.0.0.0", "[::]"), f"{where}: metrics on {host}"
        probes = {k: c[k] for k in ("livenessProbe", "readinessProbe", "startupProbe") if k in c}
        assert probes["livenessProbe"]["httpGet"]["path"] == "/health", where
        assert probes["readinessProbe"]["httpGet"]["path"] == "/ready", where
        for kind, p in probes.items():
            assert p["httpGet"]["path"] in ("/health", "/ready"), f"{where} {kind}"
            cp = container_port(c, p["httpGet"]["port"])
            assert cp["containerPort"] == int(port) and cp.get("protocol", "TCP") == "TCP", \
                f"{where} {kind} probes {cp}, metrics are on {port}"


def test_resources_hold_the_cache_budget():
    for w, _, c in kubemasq_containers():
        where = f"{w['kind']}/{w['metadata']['name']}"
        res = c["resources"]
        assert {"cpu", "memory"} <= set(res["requests"]), where
        limit = size_bytes(res["limits"]["memory"])
        # the default budget (1G) would outgrow any sidecar's limit: set it below the limit,
        # leaving room for the process itself
        budget = size_bytes(opt(c["args"], "cache-bytes", "1G"))
        assert budget <= limit * 3 // 4, f"{where}: --cache-bytes {budget} vs limit {limit}"
        assert size_bytes(res["requests"]["memory"]) <= limit


def test_args_accepted_by_kubemasq():
    for w, _, c in kubemasq_containers():
        assert "--kube" in c["args"], "in-cluster API server"
        args = [f"--kube-snapshot={DEMO}" if a == "--kube" else a for a in c["args"]]
        r = subprocess.run([kubemasq_bin(), "--test", *args], capture_output=True, text=True,
                           timeout=10)
        assert r.returncode == 0, f"{w['metadata']['name']}: {r.stderr or r.stdout}"
        assert "--keep-in-foreground" not in c["args"], "the image's ENTRYPOINT has it"


def test_images_match_the_dockerfile():
    images = {c["image"] for _, _, c in kubemasq_containers()}
    assert len(images) == 1, images
    version = re.search(r"version:\s*'([^']+)'", (TOP / "meson.build").read_text()).group(1)
    assert images.pop().endswith(f"kubemasq:{version}")
    expose = set()
    for line in (TOP / "packaging" / "Dockerfile").read_text().splitlines():
        if line.startswith("EXPOSE"):
            expose |= set(line.split()[1:])
    for _, _, c in kubemasq_containers():
        port = opt(c["args"], "metrics-address").rpartition(":")[2]
        assert f"{port}/tcp" in expose


# -- the sidecar and the node-local DaemonSet ------------------------------------------------

def test_sidecar_pod_resolves_through_its_sidecar():
    sidecars = [(w, s, c) for w, s, c in kubemasq_containers()
                if c in s.get("initContainers", [])]
    assert len(sidecars) == 1
    w, spec, c = sidecars[0]
    args = c["args"]
    assert spec["dnsPolicy"] == "None"
    dns = spec["dnsConfig"]
    assert dns["nameservers"] == ["127.0.0.1"]
    assert opt(args, "listen-address") == "127.0.0.1" and opt(args, "port", "53") == "53"
    zone = opt(args, "kube-domain", "cluster.local")
    ns = w["metadata"]["namespace"]
    assert dns["searches"] == [f"{ns}.svc.{zone}", f"svc.{zone}", zone]
    assert {o["name"]: o.get("value") for o in dns["options"]} == {"ndots": "5"}
    # the pod's resolv.conf names the sidecar itself: reading it would loop
    assert "--no-resolv" in args and opt(args, "server"), "the sidecar needs its own upstream"
    # a native sidecar: started (and synced, /ready) before the app
    assert c in spec.get("initContainers", []) and c.get("restartPolicy") == "Always"
    assert c["startupProbe"]["httpGet"]["path"] == "/ready"


def test_daemonset_is_node_local():
    ds = by_kind("DaemonSet")
    assert len(ds) == 1
    ds = ds[0]
    spec = ds["spec"]["template"]["spec"]
    c = next(c for c in spec["containers"] if c["name"] == "kubemasq")
    assert spec["dnsPolicy"] == "Default", "upstreams from the node's resolv.conf"
    assert "--no-resolv" not in c["args"]
    assert spec.get("priorityClassName") == "system-node-critical"
    port = int(opt(c["args"], "port", "53"))
    labels = ds["spec"]["template"]["metadata"]["labels"]
    svcs = [s for s in by_kind("Service") if s["spec"]["selector"].items() <= labels.items()]
    assert len(svcs) == 1, "one Service in front of the DaemonSet"
    svc = svcs[0]
    assert svc["metadata"]["namespace"] == ds["metadata"]["namespace"]
    # traffic stays on the node while its kubemasq is ready, and goes to another node's
    # while it is not: internalTrafficPolicy: Local would have no such fallback
    assert svc["spec"]["trafficDistribution"] == "PreferSameNode"
    assert svc["spec"].get("internalTrafficPolicy", "Cluster") == "Cluster"
    # a node's new kubemasq is ready before its old one stops (no host port to share), and
    # the old one answers through its --shutdown-delay
    assert ds["spec"]["updateStrategy"] == {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    assert not any(p.get("hostPort") for p in c["ports"])
    assert_graceful_stop(spec, c)
    assert opt(c["args"], "kube-startup-timeout") == "5"
    protos = set()
    for p in svc["spec"]["ports"]:
        assert p["port"] == 53
        cp = container_port(c, p["targetPort"])
        assert cp["containerPort"] == port and cp["protocol"] == p["protocol"]
        protos.add(p["protocol"])
    assert protos == {"UDP", "TCP"}


# -- every kubemasq: loop detection -----------------------------------------------------------

def test_every_kubemasq_detects_forwarding_loops():
    """A pod's resolv.conf (dnsPolicy: Default) may name 127.0.0.53, which in the pod's own
    network namespace is kubemasq itself: every manifest asks for dnsmasq's loop check."""
    for w, _, c in kubemasq_containers():
        assert "--dns-loop-detect" in c["args"], f"{w['kind']}/{w['metadata']['name']}"


# -- the kube-dns drop-in ----------------------------------------------------------------------

def kube_dns_docs():
    return {d["kind"]: d for d in load(KDIR / "kube-dns.yaml")}


def test_kube_dns_service_is_the_one_kubelets_name():
    docs = kube_dns_docs()
    svc = docs["Service"]
    md = svc["metadata"]
    assert (md["namespace"], md["name"]) == ("kube-system", "kube-dns")
    # the labels kube-dns and CoreDNS put on it (NetworkPolicies and scrape configs select them)
    assert md["labels"]["k8s-app"] == "kube-dns"
    assert md["labels"]["kubernetes.io/cluster-service"] == "true"
    assert md["labels"]["kubernetes.io/name"] == "KubeDNS"
    assert svc["spec"]["selector"] == {"k8s-app": "kube-dns"}, \
        "CoreDNS's own selector: its pods and kubemasq's are both served while they overlap"
    ports = {(p["name"], p["protocol"]): (p["port"], p["targetPort"])
             for p in svc["spec"]["ports"]}
    assert ports == {("dns", "UDP"): (53, 53), ("dns-tcp", "TCP"): (53, 53),
                     ("metrics", "TCP"): (9153, 9153)}
    # a fixed address, and the file says it is a placeholder for the kubelets' --cluster-dns
    ip = svc["spec"]["clusterIP"]
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", ip)
    text = (KDIR / "kube-dns.yaml").read_text()
    before = text[:text.index(f"clusterIP: {ip}")].rsplit("\n---", 1)[-1]
    assert "Placeholder" in before and "--cluster-dns" in before, \
        "the clusterIP must say it is a placeholder for the kubelets' --cluster-dns"
    assert "jsonpath='{.spec.clusterIP}'" in text, "how to read the running Service's address"


def test_kube_dns_deployment():
    docs = kube_dns_docs()
    dep, svc, pdb = docs["Deployment"], docs["Service"], docs["PodDisruptionBudget"]
    assert dep["metadata"]["namespace"] == "kube-system"
    assert dep["spec"]["replicas"] == 2
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert labels["k8s-app"] == "kube-dns" and dep["metadata"]["labels"]["k8s-app"] == "kube-dns"
    assert svc["spec"]["selector"].items() <= labels.items(), "the Service selects the pods"
    # its own pods only: not CoreDNS's, which the Service also selects during the switch
    sel = dep["spec"]["selector"]["matchLabels"]
    assert sel.items() <= labels.items() and len(sel) > 1, sel
    assert dep["spec"]["strategy"] == {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    spec = dep["spec"]["template"]["spec"]
    assert spec["priorityClassName"] == "system-cluster-critical"
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert {"key": "CriticalAddonsOnly", "operator": "Exists"} in spec["tolerations"]
    assert spec["dnsPolicy"] == "Default", "the node's resolvers, not itself"
    # spread across nodes
    spread = {t["topologyKey"]: t for t in spec.get("topologySpreadConstraints", [])}
    anti = spec.get("affinity", {}).get("podAntiAffinity", {})
    terms = [t.get("podAffinityTerm", t) for k in
             ("requiredDuringSchedulingIgnoredDuringExecution",
              "preferredDuringSchedulingIgnoredDuringExecution") for t in anti.get(k, [])]
    by_host = [t for t in terms if t["topologyKey"] == "kubernetes.io/hostname"]
    assert "kubernetes.io/hostname" in spread or by_host, "nothing spreads the replicas"
    for t in list(spread.values()) + by_host:
        assert t["labelSelector"]["matchLabels"].items() <= labels.items()
    c = next(c for c in spec["containers"] if c["name"] == "kubemasq")
    args = c["args"]
    assert "--kube" in args
    # port 53 as non-root, NET_BIND_SERVICE only (test_containers_unprivileged has the rest)
    assert opt(args, "port", "53") == "53" and not opt(args, "listen-address")
    assert {(p["containerPort"], p["protocol"]) for p in c["ports"]} >= {(53, "UDP"),
                                                                          (53, "TCP")}
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"],
                                                    "add": ["NET_BIND_SERVICE"]}
    for p in svc["spec"]["ports"]:
        assert [cp for cp in c["ports"] if p["targetPort"] in (cp.get("name"), cp["containerPort"])
                and cp.get("protocol", "TCP") == p["protocol"]], f"Service port {p} reaches none"
    assert_graceful_stop(spec, c)
    assert opt(args, "kube-startup-timeout") == "5"
    # probes: liveness gives a busy daemon time, readiness reacts within seconds
    live, ready = c["livenessProbe"], c["readinessProbe"]
    assert live["httpGet"]["path"] == "/health" and ready["httpGet"]["path"] == "/ready"
    assert live["periodSeconds"] * live["failureThreshold"] >= 30
    assert live.get("timeoutSeconds", 1) >= 2
    assert ready["periodSeconds"] * ready.get("failureThreshold", 3) <= 10
    # the disruption budget keeps one of the two through a drain
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["metadata"]["namespace"] == "kube-system"
    assert pdb["spec"]["selector"]["matchLabels"] == sel
    assert pdb["spec"].get("maxUnavailable") == 1 or pdb["spec"].get("minAvailable") == 1


def test_kube_dns_rbac_is_its_own():
    docs = kube_dns_docs()
    sa, binding = docs["ServiceAccount"], docs["ClusterRoleBinding"]
    spec = docs["Deployment"]["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == sa["metadata"]["name"]
    assert sa["metadata"]["namespace"] == "kube-system"
    assert binding["roleRef"]["name"] == docs["ClusterRole"]["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"],
                                    "namespace": "kube-system"}]
    assert set(role_grants(docs["ClusterRole"])) == BASE_RULES


# -- kubectl, offline ------------------------------------------------------------------------

def kubectl():
    exe = shutil.which("kubectl")
    if exe is None:
        missing_tool("kubectl is not installed (Debian's kubernetes-client has it)")
    return exe


def kubectl_minor():
    r = subprocess.run([kubectl(), "version", "--client", "-o", "json"], capture_output=True,
                       text=True, timeout=30, env=dict(os.environ, KUBECONFIG=os.devnull))
    v = json.loads(r.stdout)["clientVersion"]
    return int(v["major"]), int(re.match(r"\d+", v["minor"]).group(0))


# Fields of the manifests newer than some kubectl still in use (Debian 12's kubernetes-client
# is 1.20): the Kubernetes minor that added each. A kubectl older than that drops the field when
# it decodes the object; any other dropped field is an error in the manifest.
NEWER_FIELDS = [
    (r"\$\.spec\.trafficDistribution", 30),
    (r"\$\.spec\.internalTrafficPolicy", 21),
    (r"\$\.spec\.updateStrategy\.rollingUpdate\.maxSurge", 21),   # DaemonSet surge
    (r"\$\.spec\.template\.spec\.initContainers\[\d+\]\.restartPolicy", 28),
]


def subset(want, got, path="$", minor=None):
    """Every field of `want` is in `got` with the same value (kubectl adds defaults); fields
    newer than kubectl's minor version `minor` may be missing."""
    if isinstance(want, dict):
        assert isinstance(got, dict), f"{path}: {got!r}"
        for k, v in want.items():
            sub = f"{path}.{k}"
            if k not in got and minor is not None and any(
                    re.fullmatch(rx, sub) and minor < added for rx, added in NEWER_FIELDS):
                continue
            assert k in got, f"{sub} was dropped: not a field of this kind"
            subset(v, got[k], sub, minor)
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) >= len(want), f"{path}: {got!r}"
        for i, v in enumerate(want):
            subset(v, got[i], f"{path}[{i}]", minor)
    else:
        assert want == got, f"{path}: {want!r} became {got!r}"


def kubectl_typed(doc):
    """Decode doc into kubectl's typed objects and back, without a cluster: `kubectl set ...
    --local` reads the object into its Go type (wrong types are errors, unknown fields are
    dropped) and prints it; the change it makes (kubectl prints nothing without one) is an added
    env variable, subject or a replaced Service selector."""
    kind = doc["kind"]
    if kind in WORKLOADS:
        cmd = ["set", "env", "KUBEMASQ_MANIFEST_CHECK=1"]
    elif kind == "Service":
        cmd = ["set", "selector", "kubemasq-manifest-check=1"]  # replaces the selector
    elif kind == "ClusterRoleBinding":
        cmd = ["set", "subject", "--serviceaccount=kubemasq-check:kubemasq-check"]  # appends
    else:
        return None
    r = subprocess.run([kubectl(), *cmd, "--local", "-f", "-", "-o", "json"],
                       input=json.dumps(doc), capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, KUBECONFIG=os.devnull))
    assert r.returncode == 0, f"{kind}/{doc['metadata']['name']}: {r.stderr}"
    out = json.loads(r.stdout)
    if kind == "Service":
        assert out["spec"]["selector"] == {"kubemasq-manifest-check": "1"}
        out["spec"]["selector"] = doc["spec"]["selector"]
    return out


def test_kubectl_typed_round_trip():
    minor = kubectl_minor()[1]
    checked = set()
    for name, d in all_docs():
        out = kubectl_typed(d)
        if out is not None:
            subset(d, out, minor=minor)
            checked.add(d["kind"])
    assert checked == {"Deployment", "DaemonSet", "Service", "ClusterRoleBinding"}


def test_newer_fields_are_dropped_only_by_older_kubectl():
    """The allowance above is no blanket: a misspelt field is reported whatever the version,
    and a field the installed kubectl knows must survive."""
    svc = next(d for d in by_kind("Service") if d["spec"].get("trafficDistribution"))
    bad = json.loads(json.dumps(svc))
    bad["spec"]["trafficDistributon"] = "PreferSameNode"
    with pytest.raises(AssertionError, match="trafficDistributon was dropped"):
        subset(bad, kubectl_typed(bad), minor=kubectl_minor()[1])
    if kubectl_minor()[1] >= 30:
        assert kubectl_typed(svc)["spec"]["trafficDistribution"] == "PreferSameNode"


# What kube-apiserver's discovery says of the kinds the manifests use:
# (groupVersion, kind) -> (resource, namespaced).
API_KINDS = {
    ("v1", "Namespace"): ("namespaces", False),
    ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("v1", "Service"): ("services", True),
    ("v1", "ConfigMap"): ("configmaps", True),
    ("apps/v1", "Deployment"): ("deployments", True),
    ("apps/v1", "DaemonSet"): ("daemonsets", True),
    ("policy/v1", "PodDisruptionBudget"): ("poddisruptionbudgets", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ("clusterroles", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): ("clusterrolebindings", False),
    ("rbac.authorization.k8s.io/v1", "Role"): ("roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("rolebindings", True),
}


class DiscoveryOnly(http.server.BaseHTTPRequestHandler):
    """The API server as far as `kubectl apply --dry-run=client` asks it: discovery (which
    kinds exist, their resource names and scope) and a GET of each object, which is never there
    (404: apply would create it). Anything else is a 405, which fails the apply."""

    def do_GET(self):
        path = self.path.split("?")[0].rstrip("/")
        gvs = sorted({gv for gv, _ in API_KINDS})
        if path == "/api":
            return self.send(200, {"kind": "APIVersions", "versions": ["v1"],
                                   "serverAddressByClientCIDRs": []})
        if path == "/apis":
            return self.send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": gv.split("/")[0],
                 "versions": [{"groupVersion": gv, "version": gv.split("/")[1]}],
                 "preferredVersion": {"groupVersion": gv, "version": gv.split("/")[1]}}
                for gv in gvs if "/" in gv]})
        gv = "v1" if path == "/api/v1" else path[len("/apis/"):] if path.startswith("/apis/") \
            else None
        if gv in gvs:
            return self.send(200, {"kind": "APIResourceList", "apiVersion": "v1",
                                   "groupVersion": gv, "resources": [
                                       {"name": res, "singularName": kind.lower(),
                                        "namespaced": ns, "kind": kind,
                                        "verbs": ["create", "get", "list", "patch"]}
                                       for (g, kind), (res, ns) in API_KINDS.items()
                                       if g == gv]})
        self.server.gets.append(path)
        self.send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                        "reason": "NotFound", "code": 404, "message": "not found"})

    def do_POST(self):
        self.server.writes.append(self.path)
        self.send(405, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                        "reason": "MethodNotAllowed", "code": 405})

    do_PUT = do_PATCH = do_DELETE = do_POST

    def send(self, code, doc):
        body = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def discovery_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), DiscoveryOnly)
    srv.gets, srv.writes = [], []
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_kubectl_apply_dry_run(tmp_path, discovery_server):
    """`kubectl apply --dry-run=client --validate=false -f FILE` for every manifest. apply
    needs the server's discovery and a GET of each object even in a client dry run, so it runs
    against a loopback server that has discovery and nothing else; it must write nothing."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "offline",
        "clusters": [{"name": "offline", "cluster": {
            "server": f"http://127.0.0.1:{discovery_server.server_address[1]}"}}],
        "contexts": [{"name": "offline", "context": {"cluster": "offline", "user": "u",
                                                     "namespace": "default"}}],
        "users": [{"name": "u", "user": {}}]}))
    kinds = {(d["apiVersion"], d["kind"]) for _, d in all_docs()}
    assert kinds <= set(API_KINDS), f"add {sorted(kinds - set(API_KINDS))} to API_KINDS"
    for f in manifest_files():
        docs = load(f)
        r = subprocess.run([kubectl(), f"--kubeconfig={kubeconfig}", f"--cache-dir={tmp_path}",
                            "--request-timeout=10s", "apply", "--dry-run=client",
                            "--validate=false", "-f", str(f), "-o", "json"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"{f.name}: {r.stderr}"
        out = json.loads(r.stdout)
        items = out["items"] if out.get("kind") == "List" else [out]
        assert [(i["kind"], i["metadata"]["name"]) for i in items] == \
            [(d["kind"], d["metadata"]["name"]) for d in docs], f.name
        for i, d in zip(items, docs):
            ns = i["metadata"].get("namespace")
            # namespaced objects keep the namespace the file gives (not the context's)
            assert ns == d["metadata"].get("namespace") or not API_KINDS[
                (d["apiVersion"], d["kind"])][1], f"{f.name}: {d['kind']} namespace {ns}"
    assert discovery_server.writes == [], "a client dry run wrote to the server"
    assert discovery_server.gets, "apply looked up no object: it did not reach the server"
