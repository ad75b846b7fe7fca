# SPDX-License-Identifier: GPL-2.0-or-later
"""Fixtures for the integration tests: a real knotd serving `test.`, an ldns-testns with a
scripted datafile, a python scripted upstream, and the kubemasq daemon itself, each on random
free loopback ports in a temp dir, each stopped at teardown. Waits are conditions with
deadlines (a reply, a log line, a process exit), never sleeps for synchronisation.

The daemon is $KUBEMASQ_BIN, else build/kubemasq at the top of the source tree.
"""

import os
import pathlib
import pwd
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time

import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from scripted_upstream import ScriptedUpstream

HERE = pathlib.Path(__file__).resolve().parent
TOP = HERE.parent.parent
ZONE_FILE = HERE / "data" / "test.zone"
TESTNS_FILE = HERE / "data" / "testns.data"


# -- generic helpers -------------------------------------------------------------------------

def wait_until(cond, timeout, interval=0.02, what="condition"):
    """Poll cond() until it returns a truthy value (returned) or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    """A port free for UDP and TCP right now on `host` (racy by nature; callers retry)."""
    for _ in range(50):
        u = socket.socket(family, socket.SOCK_DGRAM)
        t = socket.socket(family, socket.SOCK_STREAM)
        try:
            u.bind((host, 0))
            port = u.getsockname()[1]
            t.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            u.close()
            t.close()
    raise RuntimeError("no free port")


def stop_process(proc, timeout=5):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
    return proc.returncode


def udp(q, port, host="127.0.0.1", timeout=3.0, **kw):
    """A dnspython UDP exchange; raises dns.exception.Timeout when nothing comes back."""
    return dns.query.udp(q, host, port=port, timeout=timeout, **kw)


def tcp(q, port, host="127.0.0.1", timeout=3.0, **kw):
    return dns.query.tcp(q, host, port=port, timeout=timeout, **kw)


def query(name, rdtype="A", **kw):
    return dns.message.make_query(name, rdtype, **kw)


def raw_udp(data, port, host="127.0.0.1", timeout=1.0, family=socket.AF_INET):
    """Send raw bytes over UDP and return the first datagram back, or None on timeout."""
    s = socket.socket(family, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.sendto(data, (host, port))
        try:
            return s.recv(65535)
        except socket.timeout:
            return None
    finally:
        s.close()


def rrsets_text(section):
    """A section as a comparable set of (name, class, type, sorted rdata texts), TTLs aside."""
    out = set()
    for rrset in section:
        out.add((rrset.name.to_text().lower(), rrset.rdclass, rrset.rdtype,
                 tuple(sorted(rd.to_text() for rd in rrset))))
    return out


def rdatas(resp, rdtype="A"):
    t = dns.rdatatype.from_text(rdtype)
    return sorted(rd.to_text() for rrset in resp.answer if rrset.rdtype == t for rd in rrset)


def missing_tool(why):
    """Skip when a tool is absent - except in CI, where packaging/dev.sh installs every tool
    and a skip would hide a missing install step behind a green run."""
    if os.environ.get("CI"):
        pytest.fail(f"{why}: packaging/dev.sh should have installed it")
    pytest.skip(why)


def kdig(*args, timeout=10):
    """Run kdig (its CompletedProcess), or pytest.skip when kdig is absent."""
    exe = shutil.which("kdig")
    if exe is None:
        missing_tool("kdig (knot-dnsutils) is not installed")
    r = subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout)
    return r


# -- knotd -----------------------------------------------------------------------------------

class Knotd:
    def __init__(self, tmp):
        exe = shutil.which("knotd") or ("/usr/sbin/knotd" if os.path.exists("/usr/sbin/knotd")
                                        else None)
        if exe is None:
            missing_tool("knotd (knot) is not installed")
        self.dir = tmp
        shutil.copy(ZONE_FILE, tmp / "test.zone")
        last = None
        for _ in range(5):
            self.port = free_port()
            conf = tmp / "knot.conf"
            conf.write_text(
                "server:\n"
                f"    listen: 127.0.0.1@{self.port}\n"
                f"    rundir: {tmp}\n"
                "    udp-workers: 1\n"
                "    tcp-workers: 1\n"
                "    background-workers: 1\n"
                "database:\n"
                f"    storage: {tmp}\n"
                "log:\n"
                "  - target: stderr\n"
                "    any: info\n"
                "template:\n"
                "  - id: default\n"
                f"    storage: {tmp}\n"
                '    file: "%s.zone"\n'
                "zone:\n"
                "  - domain: test\n")
            self.log = tmp / "knotd.log"
            self.proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                         stderr=open(self.log, "w"))
            try:
                wait_until(self._answers, 10, 0.05, "knotd to serve test.")
                return
            except AssertionError as e:
                last = e
                stop_process(self.proc)
        raise AssertionError(f"knotd did not start: {last}\n{self.log.read_text()}")

    def _answers(self):
        if self.proc.poll() is not None:
            raise AssertionError("knotd exited: " + self.log.read_text())
        try:
            r = udp(query("test.", "SOA"), self.port, timeout=0.2)
            return r.rcode() == dns.rcode.NOERROR and len(r.answer) == 1
        except Exception:
            return False

    def ask(self, name, rdtype="A", transport="tcp", **kw):
        """knotd's own answer, the reference the daemon's answers are compared to."""
        q = query(name, rdtype, **kw)
        return tcp(q, self.port) if transport == "tcp" else udp(q, self.port)

    def stop(self):
        stop_process(self.proc)


@pytest.fixture(scope="session")
def knotd(tmp_path_factory):
    k = Knotd(tmp_path_factory.mktemp("knotd"))
    yield k
    k.stop()


# -- ldns-testns -----------------------------------------------------------------------------

class Testns:
    def __init__(self, tmp):
        exe = shutil.which("ldns-testns")
        if exe is None:
            missing_tool("ldns-testns (ldnsutils) is not installed")
        shutil.copy(TESTNS_FILE, tmp / "testns.data")
        self.log = tmp / "testns.log"
        last = None
        for _ in range(5):
            # -p binds 0.0.0.0 (UDP and TCP); we only ever query it on 127.0.0.1
            self.port = free_port(host="0.0.0.0")
            self.proc = subprocess.Popen([exe, "-p", str(self.port), str(tmp / "testns.data")],
                                         stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
            try:
                wait_until(self._answers, 10, 0.05, "ldns-testns to answer")
                return
            except AssertionError as e:
                last = e
                stop_process(self.proc)
        raise AssertionError(f"ldns-testns did not start: {last}\n{self.log.read_text()}")

    def _answers(self):
        if self.proc.poll() is not None:
            raise AssertionError("ldns-testns exited: " + self.log.read_text())
        try:
            udp(query("ping.testns.test.", "A"), self.port, timeout=0.2)
            return True
        except Exception:
            return False

    def stop(self):
        stop_process(self.proc)


@pytest.fixture(scope="session")
def testns(tmp_path_factory):
    t = Testns(tmp_path_factory.mktemp("testns"))
    yield t
    t.stop()


# -- scripted python upstream ----------------------------------------------------------------

@pytest.fixture
def scripted():
    """Factory: scripted(script) -> a running ScriptedUpstream; all stopped at teardown."""
    made = []

    def make(script, **kw):
        s = ScriptedUpstream(script, **kw)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()


@pytest.fixture
def public_dir():
    """A folder the daemon can still reach after dropping root to `nobody` (pytest's tmp_path
    sits under a 0700 root folder), owned by nobody when we are root, as /run/kubemasq is."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="kubemasq-test-", dir="/tmp"))
    os.chmod(d, 0o755)
    if os.getuid() == 0:
        os.chown(d, pwd.getpwnam("nobody").pw_uid, -1)
    yield d
    shutil.rmtree(d, ignore_errors=True)


# -- the daemon ------------------------------------------------------------------------------

def kubemasq_bin():
    env = os.environ.get("KUBEMASQ_BIN")
    if env:
        return env
    return str(TOP / "build" / "kubemasq")


class Kubemasq:
    """One running daemon: .port, .host, .log (path), .proc, .args."""

    def __init__(self, tmp, args, host="127.0.0.1", ready=True, no_resolv=True):
        exe = kubemasq_bin()
        if not os.access(exe, os.X_OK):
            pytest.fail(f"kubemasq binary {exe} not found (build it or set KUBEMASQ_BIN)")
        self.host = host
        self.family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.tmp = tmp
        for attempt in range(3):
            self.port = free_port(self.family, host)
            self.log = tmp / f"kubemasq-{self.port}.log"
            self.args = [exe, "-k", f"--port={self.port}", f"--listen-address={host}",
                         "--log-facility=-"] + (["--no-resolv"] if no_resolv else []) + list(args)
            self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                         stdout=open(tmp / f"kubemasq-{self.port}.out", "w"),
                                         stderr=open(self.log, "w"))
            if not ready:
                return
            try:
                wait_until(self._answers, 10, 0.01, f"kubemasq to answer on port {self.port}")
                return
            except AssertionError as e:
                text = self.log_text()
                self.stop()
                if "in use" in text.lower() and attempt < 2:
                    continue
                raise AssertionError(f"{e}; args {self.args}; log:\n{text}")

    def _answers(self):
        """Any reply means listening. The probes: opcode STATUS (answered locally) and an
        A query for ready-probe.test. (forwarded; tests count by name so it does not mix)."""
        if self.proc.poll() is not None:
            raise AssertionError(f"kubemasq exited with {self.proc.returncode}")
        s = socket.socket(self.family, socket.SOCK_DGRAM)
        try:
            s.settimeout(0.1)
            st = dns.message.make_query("ready-probe.test.", "A")
            st.set_opcode(dns.opcode.STATUS)
            s.sendto(st.to_wire(), (self.host, self.port))
            s.sendto(query("ready-probe.test.", "A").to_wire(), (self.host, self.port))
            s.recv(65535)
            return True
        except OSError:
            return False
        finally:
            s.close()

    def log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, timeout=5.0, start=0):
        """Wait until the log (from byte offset `start`) matches the regex; return the match."""
        rx = re.compile(pattern, re.M)

        def found():
            return rx.search(self.log_text()[start:])
        try:
            return wait_until(found, timeout, 0.02, f"log line /{pattern}/")
        except AssertionError as e:
            raise AssertionError(f"{e}; log:\n{self.log_text()[-4000:]}")

    def log_size(self):
        return len(self.log_text())

    def alive(self):
        return self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=5):
        return stop_process(self.proc, timeout)

    def udp(self, q, **kw):
        return udp(q, self.port, self.host, **kw)

    def tcp(self, q, **kw):
        return tcp(q, self.port, self.host, **kw)


SANITIZER_RX = re.compile(r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|"
                          r"ThreadSanitizer|MemorySanitizer")


@pytest.fixture
def kubemasq(tmp_path):
    """Factory: kubemasq(args, host=..., ready=True) -> a running Kubemasq, stopped with
    SIGTERM at teardown. The teardown fails the test when a daemon died during it, did not
    exit 0 on SIGTERM, or logged a sanitizer report."""
    made = []

    def make(args, **kw):
        k = Kubemasq(tmp_path, args, **kw)
        made.append(k)
        return k
    yield make
    problems = []
    for k in made:
        rc = k.proc.poll()
        if rc is not None and rc != 0:
            problems.append(f"died with {rc} during the test")
        elif rc is None:
            rc = k.stop()
            if rc != 0:
                problems.append(f"exit code {rc} on SIGTERM")
        m = SANITIZER_RX.search(k.log_text())
        if m:
            problems.append("sanitizer report: " + k.log_text()[max(0, m.start() - 200):][:3000])
        if problems:
            problems.append(f"args {k.args}; log tail:\n{k.log_text()[-2000:]}")
            break
    for k in made:
        k.stop()
    if problems:
        pytest.fail("kubemasq: " + "; ".join(problems))


# -- raw wire builders for malformed queries ------------------------------------------------

def header(qid, flags=0x0100, qd=1, an=0, ns=0, ar=0):
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


def qname_wire(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def parse_header(data):
    qid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", data[:12])
    return {"id": qid, "flags": flags, "qr": bool(flags & 0x8000), "opcode": (flags >> 11) & 0xF,
            "tc": bool(flags & 0x0200), "rcode": flags & 0xF, "qd": qd, "an": an, "ns": ns,
            "ar": ar}


# -- test Kubernetes API server (tests/kubeapi/kubeapi.py) ----------------------------------

@pytest.fixture
def kubeapi():
    """Factory: kubeapi(objects=[...], tls=False, token=None, page_size=500, host=...) -> a
    running kubeapi.KubeAPI on a random free port, closed at teardown."""
    import sys
    if str(TOP / "tests" / "kubeapi") not in sys.path:
        sys.path.insert(0, str(TOP / "tests" / "kubeapi"))
    from kubeapi import KubeAPI
    made = []

    def make(*args, **kw):
        api = KubeAPI(*args, **kw)
        made.append(api)
        return api
    yield make
    for api in made:
        api.close()


# -- the reference: the real dnsmasq --------------------------------------------------------

class Dnsmasq:
    """The real dnsmasq (2.90, dnsmasq-base) on a free loopback port, forwarding to
    `upstream_port`, with `args` added: the reference for every side-by-side test."""

    def __init__(self, tmp, upstream_port, args):
        exe = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
        if not os.access(exe, os.X_OK):
            missing_tool("dnsmasq (dnsmasq-base) is not installed")
        user = ["--user=root"] if os.geteuid() == 0 else []   # to re-read hosts on SIGHUP
        self.port = free_port()
        self.log = tmp / f"dnsmasq-{self.port}.log"
        self.proc = subprocess.Popen(
            [exe, "--no-daemon", f"--port={self.port}", "--listen-address=127.0.0.1",
             "--bind-interfaces", "--no-resolv", "--pid-file=", "--conf-file=/dev/null",
             f"--server=127.0.0.1#{upstream_port}", "--log-facility=-", *user, *args],
            stdout=subprocess.DEVNULL, stderr=open(self.log, "w"))
        wait_until(self._answers, 5, 0.05, "dnsmasq to answer")

    def _answers(self):
        assert self.proc.poll() is None, self.log.read_text()
        try:
            q = dns.message.make_query("version.bind.", "TXT", rdclass="CH")
            dns.query.udp(q, "127.0.0.1", port=self.port, timeout=0.2)
            return True
        except Exception:
            return False

    def stop(self):
        stop_process(self.proc)
