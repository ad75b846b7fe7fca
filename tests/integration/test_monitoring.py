# SPDX-License-Identifier: GPL-2.0-or-later
"""packaging/monitoring/ with real parts: the rules pass `promtool check rules` and their unit
tests (`promtool test rules`), and a real Prometheus (Debian's `prometheus` package), loaded
with the rules and scraping a running kubemasq every second while clients ask it cluster
names (the demo snapshot), forwarded names (the scripted upstream; cached and not), local
ones (--address) and malformed ones over UDP and TCP, ends up with data for every recording
rule, for the series under every alert's threshold, for every dashboard query and template
variable - and the CoreDNS series carry CoreDNS's labels, cluster answers told from forwarded
ones. Without prometheus/promtool the tests skip, except in CI, where they fail."""

import json
import math
import pathlib
import re
import shutil
import socket
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request

import dns.exception
import dns.query
import dns.rcode
import yaml

from conftest import TOP, free_port, missing_tool, query, stop_process, wait_until
from scripted_upstream import by_prefix

MON = TOP / "packaging" / "monitoring"
RULES = MON / "kubemasq.rules.yaml"
ALERTS = MON / "kubemasq.alerts.yaml"
RULES_TEST = MON / "kubemasq.rules_test.yaml"
DASHBOARD = MON / "kubemasq.dashboard.json"
DEMO = TOP / "conf" / "demo-cluster.json"

# An alert's expression is a series compared with a number (kubemasq.alerts.yaml says so): the
# series is what must have data, the comparison is normally false.
THRESHOLD = re.compile(r"^(.*\S)\s*(?:>|<|>=|<=|==|!=)\s*[-+0-9.eE]+\s*$", re.S)
# Dashboard queries that may hold only NaN under this load: the programming latency moves
# with API watch events, and a snapshot has none.
NAN_OK = {"DNS programming latency"}


def tool(name):
    exe = shutil.which(name) or (f"/usr/bin/{name}" if pathlib.Path(f"/usr/bin/{name}").exists()
                                 else None)
    if exe is None:
        missing_tool(f"{name} (Debian package prometheus) is not installed")
    return exe


def rules(path):
    return [r for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"]]


def dashboard_queries():
    """(panel title, expr) of every target; (variable name, query) of every query variable."""
    d = json.loads(DASHBOARD.read_text())
    targets = [(p["title"], t["expr"]) for p in d["panels"] for t in p.get("targets", [])]
    variables = [(v["name"], v["query"]["query"]) for v in d["templating"]["list"]
                 if v["type"] == "query"]
    return targets, variables


# -- promtool ---------------------------------------------------------------------------------

def test_promtool_check_rules():
    r = subprocess.run([tool("promtool"), "check", "rules", str(RULES), str(ALERTS)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("SUCCESS") == 2, r.stdout


def test_promtool_test_rules():
    r = subprocess.run([tool("promtool"), "test", "rules", str(RULES_TEST)],
                       capture_output=True, text=True, timeout=60, cwd=MON)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout, r.stdout


def test_files_hold_together():
    """Each alert reads a series compared with a threshold; every dashboard query reads the
    chosen job and instance; every rule file is one the unit tests load."""
    for a in rules(ALERTS):
        assert THRESHOLD.match(a["expr"].strip()), f"{a['alert']}: not SERIES OP NUMBER"
        assert a["labels"]["severity"] in ("critical", "warning", "info"), a["alert"]
        assert a["annotations"]["summary"] and a["annotations"]["description"], a["alert"]
    targets, variables = dashboard_queries()
    assert len(targets) >= 20
    for title, expr in targets:
        for sel in re.findall(r"\{([^}]*)\}", expr):
            assert 'job=~"$job"' in sel and 'instance=~"$instance"' in sel, (title, expr)
    assert [v for v, _ in variables] == ["job", "instance"]
    ids = [p["id"] for p in json.loads(DASHBOARD.read_text())["panels"]]
    assert len(ids) == len(set(ids))
    loaded = yaml.safe_load(RULES_TEST.read_text())["rule_files"]
    assert sorted(loaded) == sorted([RULES.name, ALERTS.name])


# -- a real Prometheus ------------------------------------------------------------------------

class Load:
    """Clients asking kubemasq, in a thread, until stop(): a paced mix, not a benchmark."""

    NAMES = ["web.shop.svc.cluster.local.", "kubernetes.default.svc.cluster.local.",
             "nosuch.shop.svc.cluster.local.", "1.0.96.10.in-addr.arpa.",
             "cached.example.", "nx.example.", "fail.example.", "a.local.test."]

    def __init__(self, port):
        self.port = port
        self.done = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(1)
        n = 0
        try:
            while not self.done.is_set():
                n += 1
                names = self.NAMES + [f"u{n}.example."]
                for name in names:
                    rdtype = "PTR" if name.endswith(".arpa.") else "A"
                    s.sendto(query(name, rdtype, want_dnssec=(n % 2 == 0)).to_wire(),
                             ("127.0.0.1", self.port))
                for _ in names:
                    try:
                        s.recv(65535)
                    except OSError:
                        pass
                s.sendto(b"\x12\x34\x01\x00\x00\x02" + bytes(6), ("127.0.0.1", self.port))
                try:
                    s.recv(65535)                       # FORMERR
                except OSError:
                    pass
                if n % 5 == 0:                           # TCP too
                    try:
                        dns.query.tcp(query("web.shop.svc.cluster.local.", "A"), "127.0.0.1",
                                      port=self.port, timeout=1)
                    except (OSError, dns.exception.DNSException):
                        pass
                self.sent += len(names) + 1
                self.done.wait(0.02)                     # pacing, not synchronisation
        finally:
            s.close()

    def stop(self):
        self.done.set()
        self.thread.join(10)


class Prometheus:
    def __init__(self, tmp, target):
        exe = tool("prometheus")
        cfg = tmp / "prometheus.yml"
        cfg.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s",
                       "evaluation_interval": "1s"},
            "rule_files": [str(RULES), str(ALERTS)],
            "scrape_configs": [{"job_name": "kubemasq",
                                "static_configs": [{"targets": [target]}]}],
        }))
        self.log = tmp / "prometheus.log"
        last = None
        for _ in range(3):
            self.port = free_port()
            self.proc = subprocess.Popen(
                [exe, f"--config.file={cfg}", f"--storage.tsdb.path={tmp / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=open(self.log, "w"))
            try:
                wait_until(self._ready, 30, 0.1, "prometheus to be ready")
                return
            except AssertionError as e:
                last = e
                stop_process(self.proc)
        raise AssertionError(f"prometheus did not start: {last}\n{self.log.read_text()}")

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited:\n{self.log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=1) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def get(self, path, **params):
        url = f"http://127.0.0.1:{self.port}{path}?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{path} {params} refused: {e.read().decode()}")
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr):
        return self.get("/api/v1/query", query=expr)["result"]

    def stop(self):
        stop_process(self.proc, 10)


def finite(result):
    return [r for r in result if not math.isnan(float(r["value"][1]))]


def test_real_prometheus_reads_every_rule_and_panel(kubemasq, scripted, public_dir, tmp_path):
    tool("promtool")
    snap = public_dir / "cluster.json"
    snap.write_text(DEMO.read_text())
    up = scripted(by_prefix)
    mport = free_port()
    k = kubemasq([f"--server=127.0.0.1#{up.port}", f"--kube-snapshot={snap}",
                  "--address=/local.test/192.0.2.9", f"--metrics-address=127.0.0.1:{mport}"])
    prom = Prometheus(tmp_path, f"127.0.0.1:{mport}")
    load = Load(k.port)
    try:
        wait_until(lambda: prom.query('up{job="kubemasq"} == 1'), 30, 0.2,
                   "prometheus to scrape kubemasq")
        checks = {}     # what -> (expr, whether a finite value is required)
        for r in rules(RULES):
            checks[f"recording rule {r['record']}"] = (r["record"], True)
        for a in rules(ALERTS):
            series = THRESHOLD.match(a["expr"].strip()).group(1)
            checks[f"alert {a['alert']}"] = (series, True)
        targets, variables = dashboard_queries()
        for title, expr in targets:
            e = (expr.replace("$__rate_interval", "15s").replace('"$job"', '".+"')
                 .replace('"$instance"', '".+"'))
            checks[f"panel {title}: {expr}"] = (e, title not in NAN_OK)
        for name, q in variables:
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", q)
            assert m, q
            e = m.group(1).replace('"$job"', '".+"')
            checks[f"variable {name}"] = (f"count by ({m.group(2)}) ({e})", True)

        left = list(checks)

        def all_have_data():
            left[:] = [what for what in left if not has_data(*checks[what])]
            return not left

        def has_data(expr, need_finite):
            res = prom.query(expr)
            return finite(res) if need_finite else res
        try:
            wait_until(all_have_data, 60, 0.5, "data for every rule, alert series and panel")
        except AssertionError as e:
            raise AssertionError(f"{e}: still without data: {left}\n"
                                 f"prometheus log:\n{prom.log.read_text()[-2000:]}")

        # every rule evaluates without error (a vector matching error would leave it empty)
        states = [(r["name"], r["health"], r.get("lastError", ""))
                  for g in prom.get("/api/v1/rules")["groups"] for r in g["rules"]]
        assert len(states) == len(rules(RULES)) + len(rules(ALERTS))
        assert [st for st in states if st[1:] != ("ok", "")] == []

        # CoreDNS's labels, and the cluster told from the forwarded
        def value(expr):
            res = prom.query(expr)
            return sum(float(r["value"][1]) for r in res) if res else None
        assert value('coredns_dns_responses_total{plugin="kubernetes",rcode="NOERROR",'
                     'source="cluster",server="dns://:53",zone="."}') > 0
        assert value('coredns_dns_responses_total{plugin="kubernetes",rcode="NXDOMAIN"}') > 0
        assert value('coredns_dns_responses_total{plugin="forward",rcode="SERVFAIL"}') > 0
        assert value('coredns_dns_responses_total{plugin="kubernetes",rcode="SERVFAIL"}') == 0
        assert value('coredns_dns_responses_total{source="local",rcode="FORMERR"}') > 0
        assert value('coredns_cache_hits_total{source="cluster"}') > 0
        assert value('coredns_cache_hits_total{source="forward",type="success"}') > 0
        assert value(f'coredns_forward_requests_total{{to="127.0.0.1:{up.port}"}}') > 0
        assert value('coredns_dns_requests_total{proto="tcp",type="A"}') > 0
        assert value('coredns_dns_do_requests_total') > 0
        assert value('kubemasq:responses_servfail:ratio_rate5m{source="cluster"}') == 0
        assert value('kubemasq:responses_servfail:ratio_rate5m{source="forward"}') > 0
        assert value('process_start_time_seconds') > 0
    finally:
        load.stop()
        prom.stop()
    assert load.sent > 0
