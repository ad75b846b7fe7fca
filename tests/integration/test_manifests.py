# SPDX-License-Identifier: GPL-2.0-or-later
"""The Kubernetes manifests of packaging/kubernetes/ are what they claim: valid YAML with the
fields each kind requires; RBAC that grants exactly list and watch on namespaces, services and
discovery.k8s.io endpointslices (pods only in the separate verified-mode role); kubemasq
containers that run non-root on a read-only root without capabilities, probe /health and
/ready on the port --metrics-address serves, keep the cache budget under the memory limit,
and whose args the real binary accepts; a sidecar pod whose resolv.conf names only its
sidecar; a node-local Service that reaches the DaemonSet's DNS ports on the same node. Where
kubectl is installed, every workload, Service and binding also round-trips through kubectl's
typed decoding offline (a misspelt or misplaced field would be dropped or refused)."""

import json
import os
import pathlib
import re
import shutil
import subprocess

import pytest
import yaml

from conftest import free_port, kubemasq_bin

TOP = pathlib.Path(__file__).resolve().parents[2]
KDIR = TOP / "packaging" / "kubernetes"
DEMO = TOP / "conf" / "demo-cluster.json"

NAMESPACED = {"ServiceAccount", "Deployment", "DaemonSet", "Service"}
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
    assert set(roles) == {"kubemasq", "kubemasq-pods"}
    base = role_grants(roles["kubemasq"])
    assert set(base) == BASE_RULES
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
    for w, spec, _ in kubemasq_containers():
        sa = (w["metadata"]["namespace"], spec.get("serviceAccountName", "default"))
        assert "kubemasq" in bound.get(sa, set()), f"{sa} is not bound to ClusterRole kubemasq"
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
        # A non-root container gets no effective capability from `add` (Kubernetes sets no
        # ambient capabilities), so a port below 1024 needs the pod's sysctl instead.
        assert not sc["capabilities"].get("add"), f"{where}: capabilities that cannot apply"
        assert not spec.get("hostNetwork"), f"{where}: host network"
        port = int(opt(c["args"], "port", "53"))
        if port and port < 1024:
            sysctls = {s["name"]: int(s["value"]) for s in pod_sc.get("sysctls", [])}
            assert sysctls.get("net.ipv4.ip_unprivileged_port_start", 1024) <= port, \
                f"{where}: non-root on port {port} without ip_unprivileged_port_start"


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
    sidecars = [(w, s, c) for w, s, c in kubemasq_containers() if w["kind"] == "Deployment"]
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
    assert svc["spec"]["internalTrafficPolicy"] == "Local", "traffic stays on the node"
    protos = set()
    for p in svc["spec"]["ports"]:
        assert p["port"] == 53
        cp = container_port(c, p["targetPort"])
        assert cp["containerPort"] == port and cp["protocol"] == p["protocol"]
        protos.add(p["protocol"])
    assert protos == {"UDP", "TCP"}


# -- kubectl, offline ------------------------------------------------------------------------

def subset(want, got, path="$"):
    """Every field of `want` is in `got` with the same value (kubectl adds defaults)."""
    if isinstance(want, dict):
        assert isinstance(got, dict), f"{path}: {got!r}"
        for k, v in want.items():
            assert k in got, f"{path}.{k} was dropped: not a field of this kind"
            subset(v, got[k], f"{path}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) >= len(want), f"{path}: {got!r}"
        for i, v in enumerate(want):
            subset(v, got[i], f"{path}[{i}]")
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
    r = subprocess.run(["kubectl", *cmd, "--local", "-f", "-", "-o", "json"],
                       input=json.dumps(doc), capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, KUBECONFIG=os.devnull))
    assert r.returncode == 0, f"{kind}/{doc['metadata']['name']}: {r.stderr}"
    out = json.loads(r.stdout)
    if kind == "Service":
        assert out["spec"]["selector"] == {"kubemasq-manifest-check": "1"}
        out["spec"]["selector"] = doc["spec"]["selector"]
    return out


def test_kubectl_typed_round_trip():
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed (it is not in Debian's archive)")
    checked = set()
    for name, d in all_docs():
        out = kubectl_typed(d)
        if out is not None:
            subset(d, out)
            checked.add(d["kind"])
    assert checked == {"Deployment", "DaemonSet", "Service", "ClusterRoleBinding"}


def test_kubectl_apply_dry_run(tmp_path):
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed (it is not in Debian's archive)")
    # a kubeconfig naming a loopback port nobody listens on: apply needs the server's API
    # discovery even for --dry-run=client, so this runs only if kubectl manages without it
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "offline",
        "clusters": [{"name": "offline",
                      "cluster": {"server": f"http://127.0.0.1:{free_port()}"}}],
        "contexts": [{"name": "offline", "context": {"cluster": "offline", "user": "u"}}],
        "users": [{"name": "u", "user": {}}]}))
    r = subprocess.run(["kubectl", f"--kubeconfig={kubeconfig}", "--request-timeout=2s",
                        "apply", "--dry-run=client", "--validate=false",
                        "-f", str(manifest_files()[0])],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0 and re.search(r"connection refused|unable to recognize|couldn't get",
                                       r.stderr):
        pytest.skip("kubectl apply --dry-run=client cannot run offline: it needs the API "
                    "server's discovery (test_kubectl_typed_round_trip checks the types)")
    assert r.returncode == 0, r.stderr
    for f in manifest_files():
        r = subprocess.run(["kubectl", f"--kubeconfig={kubeconfig}", "apply",
                            "--dry-run=client", "--validate=false", "-f", str(f)],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"{f.name}: {r.stderr}"
