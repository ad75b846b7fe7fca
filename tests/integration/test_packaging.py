# SPDX-License-Identifier: GPL-2.0-or-later
"""The packaging holds together: the systemd unit passes `systemd-analyze verify` and keeps its
hardening, its command lines parse with the real binary, and the daemon speaks its Type=notify
protocol (READY=1 once it answers, STOPPING=1 on SIGTERM) to a notify socket the test owns; the
container recipe is a two-stage build whose runtime stage holds only the binary, its libraries
and CA certificates, runs as non-root with the right ports, entrypoint and labels, and whose
root file system, assembled here by the same script, runs the daemon in a chroot; the Debian
package builds from a copy of the sources with dpkg-buildpackage (packaging/build-deb.sh),
carries the binary, man page, unit, conf files and system user, and installs with dpkg into a
throw-away root (never onto this machine), where its postinst creates the user and enables the
unit, and the installed binary with the installed conf answers on loopback only, beside
systemd-resolved's 127.0.0.53."""

import configparser
import contextlib
import gzip
import ipaddress
import json
import os
import pathlib
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import (free_port, kubemasq_bin, missing_tool, query, stop_process, udp,
                      wait_until)

TOP = pathlib.Path(__file__).resolve().parents[2]
PKG = TOP / "packaging"
UNIT = PKG / "kubemasq.service"
DOCKERFILE = PKG / "Dockerfile"
DEMO = TOP / "conf" / "demo-cluster.json"
DEB_CONF = PKG / "debian" / "conf" / "kubemasq.conf"


def run(*argv, timeout=30, **kw):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          timeout=timeout, **kw)


def dev_sh_list(name):
    m = re.search(rf'^{name}="([^"]*)"', (PKG / "dev.sh").read_text(), re.M)
    assert m, f"packaging/dev.sh has no {name}"
    return set(m.group(1).split())


def check_args(args, conf=None):
    """kubemasq --test with these arguments; --kube (the in-cluster API server) is swapped for
    the demo snapshot, and the packaged conf path for the source tree's."""
    args = [f"--kube-snapshot={DEMO}" if a == "--kube" else a for a in args]
    if conf:
        args = [a.replace("/etc/kubemasq/kubemasq.conf", str(conf)) for a in args]
    r = run(kubemasq_bin(), "--test", *args)
    assert r.returncode == 0, f"kubemasq --test {' '.join(args)}: {r.stderr or r.stdout}"


# -- the systemd unit ------------------------------------------------------------------------

def unit_service():
    # strict=False: a repeated key (SystemCallFilter) keeps its last value; tests that care
    # about every line of one read the file's text
    cp = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    cp.optionxform = str
    cp.read_string(UNIT.read_text())
    return cp


def test_unit_hardening():
    s = unit_service()["Service"]
    text = UNIT.read_text()
    assert s["Type"] == "notify", "systemd must wait until kubemasq listens"
    assert s.get("NotifyAccess", "main") == "main"
    assert s["User"] == "kubemasq" or s.get("DynamicUser") == "yes"
    assert s["AmbientCapabilities"] == "CAP_NET_BIND_SERVICE"
    assert s["CapabilityBoundingSet"] == "CAP_NET_BIND_SERVICE"
    # AF_UNIX: the journal and the notify socket; AF_NETLINK: getifaddrs() for --interface
    assert set(s["RestrictAddressFamilies"].split()) == {"AF_INET", "AF_INET6", "AF_UNIX",
                                                          "AF_NETLINK"}
    assert re.search(r"^SystemCallFilter=@system-service$", text, re.M)
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices",
                "MemoryDenyWriteExecute", "LockPersonality", "RestrictNamespaces",
                "ProtectKernelTunables", "ProtectKernelModules", "ProtectControlGroups"):
        assert s.get(key) == "yes", f"{key}=yes missing from the unit"
    assert s["ProtectSystem"] == "strict"
    assert s["ExecReload"] == "/bin/kill -HUP $MAINPID"


def test_unit_command_lines_parse():
    s = unit_service()["Service"]
    start = shlex.split(s["ExecStart"])
    assert start[0] == "/usr/sbin/kubemasq"
    assert "--keep-in-foreground" in start and "--log-facility=-" in start
    assert not any(a.startswith("--pid-file") for a in start), "systemd tracks the main pid"
    conf = TOP / "conf" / "kubemasq.conf"
    check_args(start[1:], conf)
    pre = shlex.split(s["ExecStartPre"])
    assert pre[0] == "/usr/sbin/kubemasq" and "--test" in pre
    check_args([a for a in pre[1:] if a != "--test"], conf)


def test_unit_verifies(tmp_path):
    if shutil.which("systemd-analyze") is None:
        missing_tool("systemd-analyze (systemd) is not installed")
    # verify insists that ExecStart's binary exists: point it at the one under test
    unit = tmp_path / "kubemasq.service"
    unit.write_text(UNIT.read_text().replace("/usr/sbin/kubemasq",
                                              os.path.abspath(kubemasq_bin())))
    r = run("systemd-analyze", "verify", "--man=no", unit)
    assert r.returncode == 0, r.stderr
    assert "kubemasq.service" not in r.stderr, r.stderr
    # the exposure score systemd computes from the sandboxing options (0 best, 10 worst)
    r = run("systemd-analyze", "security", "--offline=yes", "--no-pager", unit)
    m = re.search(r"Overall exposure level for kubemasq\.service: ([0-9.]+)", r.stdout)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= 2.0, r.stdout


# -- Type=notify: the sd_notify datagrams ----------------------------------------------------

def notify_listener(tmp_path, abstract):
    """A datagram socket in the role of systemd's notify socket: (socket, NOTIFY_SOCKET value).
    Run as root, kubemasq has become `nobody` by the time it is ready: like
    /run/systemd/notify, the socket is writable by everyone, in a folder anyone may traverse
    (pytest's tmp_path sits below a folder only root may enter)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if abstract:
        name = f"kubemasq-test-notify-{os.getpid()}-{time.monotonic_ns()}"
        s.bind("\0" + name)
        return s, "@" + name
    folder = pathlib.Path(tempfile.mkdtemp(prefix="kubemasq-notify-"))
    folder.chmod(0o711)
    path = folder / "notify"
    s.bind(str(path))
    path.chmod(0o666)
    return s, str(path)


def notify_recv(sock, timeout):
    sock.settimeout(timeout)
    return sock.recv(4096).decode()


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_notify_ready_when_answering_stopping_on_sigterm(kubemasq, tmp_path, monkeypatch,
                                                          request, abstract):
    sock, where = notify_listener(tmp_path, abstract)
    if not abstract:
        request.addfinalizer(lambda: shutil.rmtree(os.path.dirname(where)))
    with sock:
        monkeypatch.setenv("NOTIFY_SOCKET", where)
        k = kubemasq(["--address=/notify.test/192.0.2.9"], ready=False)
        try:
            msg = notify_recv(sock, 10)
        except socket.timeout:
            pytest.fail(f"no READY=1 within 10 s; log:\n{k.log_text()}")
        assert msg == "READY=1"
        # at the moment systemd hears READY=1, DNS is answered: one try each, no retry loop
        for send in (k.udp, k.tcp):
            r = send(query("notify.test"), timeout=2)
            assert [rd.address for rr in r.answer for rd in rr] == ["192.0.2.9"]
        k.signal(signal.SIGTERM)
        assert notify_recv(sock, 10) == "STOPPING=1"
        assert k.proc.wait(timeout=10) == 0
    assert "cannot tell the service manager" not in k.log_text()


def test_notify_socket_unreachable_is_logged_and_harmless(kubemasq, tmp_path, monkeypatch):
    """A NOTIFY_SOCKET nobody listens on: one warning naming it, and DNS is served all the
    same (systemd would time the start out, which the warning explains)."""
    gone = tmp_path / "nobody-listens"
    monkeypatch.setenv("NOTIFY_SOCKET", str(gone))
    k = kubemasq(["--address=/notify.test/192.0.2.9"])
    k.wait_log(rf"cannot tell the service manager READY=1 through NOTIFY_SOCKET={gone}")
    r = k.udp(query("notify.test"))
    assert [rd.address for rr in r.answer for rd in rr] == ["192.0.2.9"]


# -- the container recipe --------------------------------------------------------------------

def dockerfile_instructions():
    """[(INSTRUCTION, arguments)] with continuation lines joined and comments dropped."""
    out, cur = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not cur and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):
            continue
        cur += line.rstrip()
        if cur.endswith("\\"):
            cur = cur[:-1] + " "
            continue
        word, _, rest = cur.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        cur = ""
    assert not cur, "Dockerfile ends inside a continuation line"
    return out


def dockerfile_stages():
    stages = []
    for ins, arg in dockerfile_instructions():
        if ins == "FROM":
            stages.append([])
        assert stages, f"{ins} before the first FROM"
        stages[-1].append((ins, arg))
    return stages


def apt_packages(stage):
    pkgs = set()
    for ins, arg in stage:
        if ins == "RUN" and "apt-get install" in arg:
            words = arg.split("apt-get install", 1)[1].split("&&")[0].split()
            pkgs |= {w for w in words if not w.startswith("-")}
    return pkgs


def runtime_copies(stage):
    return [arg for ins, arg in stage if ins == "COPY"]


def test_dockerfile_two_stages_runtime_from_scratch():
    stages = dockerfile_stages()
    assert len(stages) == 2, "a build stage and a runtime stage"
    assert re.match(r"debian:bookworm\S* AS build$", stages[0][0][1], re.I), stages[0][0]
    for ins, arg in dockerfile_instructions():
        assert ins != "ADD", "COPY, not ADD: nothing to fetch or unpack"
    runtime = stages[-1]
    assert runtime[0][1] == "scratch", "the runtime stage starts empty"
    # nothing runs while it is built (there is no shell to run it) and nothing comes in but
    # the root file system the build stage assembled
    kinds = {ins for ins, _ in runtime}
    assert kinds <= {"FROM", "ARG", "LABEL", "COPY", "USER", "EXPOSE", "ENTRYPOINT", "CMD",
                     "ENV", "WORKDIR"}, kinds
    assert runtime_copies(runtime) == ["--from=build /rootfs/ /"]
    build_runs = " ".join(arg for ins, arg in stages[0] if ins == "RUN")
    assert re.search(r"packaging/image-rootfs\.sh /rootfs /out/usr/sbin/kubemasq\b", build_runs)
    users = [arg for ins, arg in runtime if ins == "USER"]
    assert users, "the runtime stage sets no USER: it would run as root"
    user = users[-1].split(":")[0]
    assert user.isdigit() and user != "0", \
        "a numeric non-root USER, so that Kubernetes' runAsNonRoot can check it"


def dockerfile_labels(stage):
    """LABEL key="value" ... pairs, and ARG defaults substituted into them."""
    args = dict(re.findall(r"^(\w+)=(\S+)$", " ".join(a for i, a in stage if i == "ARG")))
    labels = {}
    for ins, arg in stage:
        if ins == "LABEL":
            for k, v in re.findall(r'([\w.-]+)="([^"]*)"', arg):
                labels[k] = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], v)
    return labels


def test_dockerfile_oci_labels():
    labels = dockerfile_labels(dockerfile_stages()[-1])
    version = re.search(r"version:\s*'([^']+)'", (TOP / "meson.build").read_text()).group(1)
    assert labels.get("org.opencontainers.image.title") == "kubemasq"
    assert labels.get("org.opencontainers.image.version") == version
    assert labels.get("org.opencontainers.image.description")
    # the licence the Debian copyright file names
    licence = re.search(r"^License: (\S+)", (PKG / "debian" / "copyright").read_text(),
                        re.M).group(1)
    assert labels.get("org.opencontainers.image.licenses") == licence
    assert all(k.startswith("org.opencontainers.image.") for k in labels), labels


def test_dockerfile_ports_and_entrypoint():
    runtime = dockerfile_stages()[-1]
    expose = set()
    for ins, arg in runtime:
        if ins == "EXPOSE":
            expose |= set(arg.split())
    assert {"53/udp", "53/tcp"} <= expose
    # exec form only: a shell form would need /bin/sh, which the image does not have
    entry = [json.loads(arg) for ins, arg in runtime if ins == "ENTRYPOINT"]
    assert entry and entry[-1][:3] == ["/usr/sbin/kubemasq", "--keep-in-foreground",
                                       "--log-facility=-"]
    cmd = [json.loads(arg) for ins, arg in runtime if ins == "CMD"]
    assert cmd, "a default CMD"
    metrics = [a.split("=", 1)[1] for a in cmd[-1] if a.startswith("--metrics-address=")]
    assert metrics and metrics[0].rsplit(":", 1)[1] + "/tcp" in expose, \
        "the metrics port of CMD is not EXPOSEd"
    check_args(entry[-1][1:] + cmd[-1])


def test_dockerfile_packages():
    build = apt_packages(dockerfile_stages()[0])
    # the image builds with -Dtests=disabled: everything else of dev.sh's BUILD_PKGS
    missing = dev_sh_list("BUILD_PKGS") - {"libcmocka-dev"} - build
    assert missing == set(), "build stage lacks packages of packaging/dev.sh's BUILD_PKGS"
    # image-rootfs.sh copies the CA bundle and sets the file capability
    assert {"ca-certificates", "libcap2-bin"} <= build


# -- the image's root file system, assembled by packaging/image-rootfs.sh --------------------

def image_rootfs(tmp_path, ca=None):
    if shutil.which("setcap") is None:
        missing_tool("setcap (libcap2-bin, which iproute2 pulls in) is not installed")
    root = tmp_path / "rootfs"
    r = run(PKG / "image-rootfs.sh", root, kubemasq_bin(), *([ca] if ca else []))
    assert r.returncode == 0, r.stderr
    root.chmod(0o755)   # below pytest's tmp_path, which only root may enter
    return root


def test_image_rootfs_holds_binary_libraries_and_certificates(tmp_path):
    root = image_rootfs(tmp_path)
    libs = set()
    for line in run("ldd", kubemasq_bin()).stdout.splitlines():
        m = re.search(r"(?:=> )?(/\S+) \(0x", line)
        if m:
            libs.add(m.group(1))
    assert any("ld-linux" in lib for lib in libs), "no loader in ldd's list"
    want = {"/usr/sbin/kubemasq", "/etc/ssl/certs/ca-certificates.crt", "/etc/passwd",
            "/etc/group"} | libs
    files, links = set(), {}
    for p in root.rglob("*"):
        rel = "/" + str(p.relative_to(root))
        if p.is_symlink():
            links[rel] = os.readlink(p)
        elif p.is_file():
            files.add(rel)
    assert files == want, f"extra {sorted(files - want)}, missing {sorted(want - files)}"
    assert links == {"/usr/lib/ssl/cert.pem": "/etc/ssl/certs/ca-certificates.crt",
                     "/usr/lib/ssl/certs": "/etc/ssl/certs"}
    # only one program: no shell, no package manager, no busybox under another name
    elf = [f for f in files if (root / f.lstrip("/")).read_bytes()[:4] == b"\x7fELF"]
    executables = [f for f in elf if os.access(root / f.lstrip("/"), os.X_OK)
                   and ".so" not in f.rsplit("/", 1)[-1]]
    assert executables == ["/usr/sbin/kubemasq"], executables
    assert (root / "usr/sbin/kubemasq").read_bytes() == pathlib.Path(kubemasq_bin()).read_bytes()
    r = run("getcap", root / "usr/sbin/kubemasq")
    assert re.search(r"cap_net_bind_service[=+]ep\b", r.stdout), r.stdout + r.stderr


# Run as root: a network and mount namespace of its own (unshare), /proc as a container
# runtime mounts it, then chroot, the bounding set cut to `keep` (a pod's drop ALL + add),
# uid and gid 65532 as the image's USER, and exec of the image's ENTRYPOINT.
CONTAINER_HELPER = r"""
import ctypes, os, subprocess, sys
root, keep, netns = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
argv = sys.argv[4:]
os.makedirs(root + "/proc", exist_ok=True)
subprocess.run(["mount", "-t", "proc", "proc", root + "/proc"], check=True)
if netns:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
libc = ctypes.CDLL(None, use_errno=True)
last = int(open("/proc/sys/kernel/cap_last_cap").read())
os.chroot(root)
os.chdir("/")
for cap in range(last + 1):
    if str(cap) not in keep.split(","):
        assert libc.prctl(24, cap, 0, 0, 0) == 0, cap   # PR_CAPBSET_DROP
os.setgroups([])
os.setgid(65532)
os.setuid(65532)
os.execv(argv[0], argv)
"""


def container(root, args, keep="10", netns=True, **kw):
    """The image's ENTRYPOINT + args in a stand-in for a container of root (see
    CONTAINER_HELPER); keep: the capabilities left in the bounding set (10: NET_BIND_SERVICE)."""
    if os.geteuid() != 0:
        pytest.skip("chroot, namespaces and a bounding set need root")
    for tool in ("unshare", "nsenter", "ip", "mount"):
        if shutil.which(tool) is None:
            missing_tool(f"{tool} (util-linux, iproute2, mount) is not installed")
    entry = [json.loads(a) for i, a in dockerfile_stages()[-1] if i == "ENTRYPOINT"][-1]
    ns = ["--net"] if netns else []
    return subprocess.Popen(["unshare", "--mount", "--propagation", "private", *ns, "--",
                             "/usr/bin/python3", "-c", CONTAINER_HELPER, str(root), keep,
                             "1" if netns else "0", *entry, *args], **kw)


def proc_status(pid, field):
    m = re.search(rf"^{field}:\s*(.*)$", pathlib.Path(f"/proc/{pid}/status").read_text(), re.M)
    return m.group(1)


def test_image_rootfs_serves_port_53_as_nonroot_with_only_net_bind_service(tmp_path):
    """The pod spec of kube-dns.yaml, as far as a chroot goes: uid 65532, capabilities drop ALL
    add NET_BIND_SERVICE, port 53 (of the test's own network namespace, never the host's)."""
    root = image_rootfs(tmp_path)
    log = tmp_path / "container.log"
    p = container(root, ["--port=53", "--listen-address=127.0.0.1", "--no-resolv",
                         "--address=/image.test/192.0.2.8"],
                  stdout=open(log, "w"), stderr=subprocess.STDOUT)
    probe = ("import dns.message, dns.query, sys\n"
             "for send in (dns.query.udp, dns.query.tcp):\n"
             "    r = send(dns.message.make_query('image.test', 'A'), '127.0.0.1', port=53,"
             " timeout=1)\n"
             "    print(send.__name__, *[rd.address for rr in r.answer for rd in rr])\n")

    def answered():
        if p.poll() is not None:
            raise AssertionError(f"exited with {p.returncode}: {log.read_text()}")
        r = run("nsenter", f"--net=/proc/{p.pid}/ns/net", "/usr/bin/python3", "-c", probe)
        return r.stdout if r.returncode == 0 else None
    try:
        out = wait_until(answered, 10, 0.05, "kubemasq in the image's root to answer on 53")
        assert out.split("\n")[:2] == ["udp 192.0.2.8", "tcp 192.0.2.8"]
        assert proc_status(p.pid, "Uid").split()[:2] == ["65532", "65532"]
        # the file capability, and nothing else: bit 10 is CAP_NET_BIND_SERVICE
        assert int(proc_status(p.pid, "CapEff"), 16) == 1 << 10
        assert int(proc_status(p.pid, "CapPrm"), 16) == 1 << 10
    finally:
        rc = stop_process(p)
    assert rc == 0, log.read_text()


def test_image_rootfs_needs_net_bind_service_in_the_bounding_set(tmp_path):
    """What the manifests' comments claim: with every capability dropped (no add), the kernel
    refuses to start the binary with its file capability - so every pod adds it."""
    root = image_rootfs(tmp_path)
    p = container(root, ["--version"], keep="", stdout=subprocess.PIPE,
                  stderr=subprocess.STDOUT, text=True)
    out = p.communicate(timeout=30)[0]
    assert p.returncode != 0 and "Operation not permitted" in out, out


def test_image_rootfs_ca_bundle_verifies_the_api_server(tmp_path, kubeapi):
    """Without --kube-ca-file kubemasq trusts OpenSSL's default paths; in the image those lead
    to the bundle image-rootfs.sh copied (here the test API server's throw-away CA)."""
    api = kubeapi(objects=[
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "kubernetes", "namespace": "default"},
         "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"],
                  "ports": [{"name": "https", "port": 443, "protocol": "TCP"}]}}],
        tls=True, token="image-token")
    root = image_rootfs(tmp_path, api.ca_file)
    (root / "token").write_text("image-token")
    port = free_port()
    log = tmp_path / "container.log"
    p = container(root, [f"--port={port}", "--listen-address=127.0.0.1", "--no-resolv",
                         f"--kube-api-url=https://127.0.0.1:{api.port}",
                         "--kube-token-file=/token"], netns=False,
                  stdout=open(log, "w"), stderr=subprocess.STDOUT)

    def synced():
        if p.poll() is not None:
            raise AssertionError(f"exited with {p.returncode}: {log.read_text()}")
        try:
            r = udp(query("kubernetes.default.svc.cluster.local"), port, timeout=0.3)
        except Exception:  # noqa: BLE001 - not listening yet
            return None
        return r if r.rcode() == 0 else None
    try:
        r = wait_until(synced, 15, 0.05, "the cluster zone to sync over verified TLS")
        assert [rd.address for rr in r.answer for rd in rr] == ["10.96.0.1"]
    finally:
        rc = stop_process(p)
    assert rc == 0, log.read_text()


# -- the Debian package ----------------------------------------------------------------------

def control_field(text, field):
    m = re.search(rf"^{field}:(.*(?:\n[ \t].*)*)", text, re.M)
    return m.group(1) if m else ""


def test_debian_build_depends_match_dev_sh():
    control = (PKG / "debian" / "control").read_text()
    bd = {re.split(r"[\s(<\[]", d.strip())[0]
          for d in control_field(control, "Build-Depends").split(",") if d.strip()}
    # gcc comes with build-essential, which dpkg-buildpackage takes for granted
    missing = dev_sh_list("BUILD_PKGS") - {"gcc"} - bd
    assert missing == set(), "Build-Depends lacks packages of packaging/dev.sh's BUILD_PKGS"
    assert "${shlibs:Depends}" in control_field(control, "Depends")
    assert {"debhelper", "dpkg-dev"} <= dev_sh_list("TEST_PKGS")


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    for tool in ("dpkg-buildpackage", "dh", "dpkg-deb"):
        if shutil.which(tool) is None:
            missing_tool(f"{tool} is not installed (dpkg-dev, debhelper)")
    out = tmp_path_factory.mktemp("deb")
    env = dict(os.environ, TMPDIR=str(out), DEB_BUILD_OPTIONS="nocheck parallel=2")
    t0 = time.monotonic()
    r = subprocess.run([str(PKG / "build-deb.sh"), str(out)], capture_output=True, text=True,
                       timeout=600, env=env)
    took = time.monotonic() - t0
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    print(f"dpkg-buildpackage via build-deb.sh: {took:.1f}s")
    debs = [p for p in out.glob("kubemasq_*.deb")]
    assert len(debs) == 1, sorted(p.name for p in out.iterdir())
    # the temporary source tree is gone, only the results are left
    assert not [p for p in out.iterdir() if p.is_dir()]
    return debs[0]


def test_deb_version_is_the_projects(deb):
    version = re.search(r"version:\s*'([^']+)'", (TOP / "meson.build").read_text()).group(1)
    assert run("dpkg-deb", "-f", deb, "Version").stdout.strip() == version
    assert run("dpkg-deb", "-f", deb, "Package").stdout.strip() == "kubemasq"


def test_deb_contents(deb):
    listing = run("dpkg-deb", "-c", deb).stdout
    files = {line.split()[-1].lstrip(".") for line in listing.splitlines()}
    for f in ("/usr/sbin/kubemasq", "/usr/share/man/man8/kubemasq.8.gz",
              "/lib/systemd/system/kubemasq.service", "/etc/kubemasq/kubemasq.conf",
              "/usr/lib/sysusers.d/kubemasq.conf", "/usr/share/doc/kubemasq/copyright",
              "/usr/share/doc/kubemasq/examples/kubemasq.conf"):
        assert f in files, f"{f} is not in the package"
    assert re.search(r"^-rwxr-xr-x root/root .* \./usr/sbin/kubemasq$", listing, re.M)
    # nothing from a build or test tree
    assert not [f for f in files if "/tests/" in f or "build" in f.split("/")[-1]]


def test_deb_control(deb, tmp_path):
    depends = run("dpkg-deb", "-f", deb, "Depends").stdout
    assert "libevent" in depends and "libc6" in depends, "shlibs:Depends was not expanded"
    ctrl = tmp_path / "DEBIAN"
    assert run("dpkg-deb", "-e", deb, ctrl).returncode == 0
    assert (ctrl / "conffiles").read_text().split() == ["/etc/kubemasq/kubemasq.conf"]
    postinst = (ctrl / "postinst").read_text()
    # the system user exists before the unit is started
    assert "systemd-sysusers" in postinst and "kubemasq.service" in postinst
    assert postinst.index("systemd-sysusers") < postinst.index("deb-systemd-invoke")


def test_deb_extracted_runs(deb, tmp_path):
    root = tmp_path / "root"
    assert run("dpkg", "-x", deb, root).returncode == 0
    exe = root / "usr/sbin/kubemasq"
    r = run(exe, "--version")
    assert r.returncode == 0 and r.stdout.startswith("kubemasq version "), r.stdout + r.stderr
    conf = root / "etc/kubemasq/kubemasq.conf"
    r = run(exe, "--test", f"--conf-file={conf}")
    assert r.returncode == 0, r.stderr
    # the packaged conf is the package's loopback-only one; the annotated reference is among
    # the examples; the unit is the source tree's
    assert conf.read_text() == DEB_CONF.read_text()
    example = root / "usr/share/doc/kubemasq/examples/kubemasq.conf"
    assert example.read_text() == (TOP / "conf" / "kubemasq.conf").read_text()
    assert (root / "lib/systemd/system/kubemasq.service").read_text() == UNIT.read_text()
    man = gzip.decompress((root / "usr/share/man/man8/kubemasq.8.gz").read_bytes()).decode()
    assert man == (PKG / "kubemasq.8").read_text()
    # the unit's own command lines, run against the extracted files
    s = unit_service()["Service"]
    start = [a.replace("/etc/kubemasq/kubemasq.conf", str(conf))
             for a in shlex.split(s["ExecStartPre"])[1:]]
    r = run(exe, *start)
    assert r.returncode == 0, r.stderr


def test_deb_sysusers_creates_kubemasq(deb, tmp_path):
    if shutil.which("systemd-sysusers") is None:
        missing_tool("systemd-sysusers (systemd) is not installed")
    root = tmp_path / "root"
    assert run("dpkg", "-x", deb, root).returncode == 0
    (root / "etc").mkdir(exist_ok=True)
    r = run("systemd-sysusers", f"--root={root}", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert re.search(r"Creating (user|group) '?kubemasq'?", r.stdout + r.stderr), \
        r.stdout + r.stderr


def test_deb_installs_and_starts(deb, tmp_path):
    """dpkg -i into a throw-away root (its own dpkg database; maintainer scripts run with
    DPKG_ROOT, outside a chroot: nothing on this machine changes): the postinst creates the
    kubemasq user and enables the unit there. Then the installed binary starts with the
    installed conf, as its unit would but on a free port, beside systemd-resolved's listeners
    on 127.0.0.53 and 127.0.0.54 of that port: it answers on 127.0.0.1, opens no socket beyond
    loopback, and stops cleanly."""
    if shutil.which("systemd-sysusers") is None:
        missing_tool("systemd-sysusers (systemd) is not installed")
    root = tmp_path / "root"
    for d in ("var/lib/dpkg/info", "var/lib/dpkg/updates", "etc"):
        (root / d).mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text("")
    passwd = pathlib.Path("/etc/passwd").read_text()
    r = run("dpkg", f"--root={root}", "--force-depends", "--force-script-chrootless",
            "--log=/dev/null", "-i", deb, timeout=120, env=dict(os.environ, DPKG_ROOT=str(root)))
    assert r.returncode == 0, r.stdout + r.stderr
    assert pathlib.Path("/etc/passwd").read_text() == passwd, "dpkg touched this machine"
    status = (root / "var/lib/dpkg/status").read_text()
    assert re.search(r"^Package: kubemasq\n(.+\n)*Status: install ok installed$", status, re.M)
    assert re.search(r"^kubemasq:x:\d+:\d+:", (root / "etc/passwd").read_text(), re.M)
    wants = root / "etc/systemd/system/multi-user.target.wants/kubemasq.service"
    assert wants.is_symlink(), "the unit is not enabled"
    exe, conf = root / "usr/sbin/kubemasq", root / "etc/kubemasq/kubemasq.conf"
    # systemd-resolved's stub listeners, on the port the test gives kubemasq instead of 53
    with resolved_stub() as port:
        # the installed conf as the unit runs it; only the port differs, and a local name to
        # ask for (no upstream: nothing leaves this machine)
        p = subprocess.Popen([str(exe), "--keep-in-foreground", "--log-facility=-",
                              f"--conf-file={conf}", f"--port={port}", "--no-resolv",
                              "--address=/installed.test/192.0.2.7"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            r = None
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and p.poll() is None:
                try:
                    r = udp(query("installed.test"), port, timeout=0.5)
                    break
                except Exception:  # noqa: BLE001 - not listening yet
                    time.sleep(0.05)
            assert r is not None, "the installed kubemasq did not answer on 127.0.0.1"
            assert [rd.address for rr in r.answer for rd in rr] == ["192.0.2.7"]
            socks = inet_sockets(p.pid)
        finally:
            p.terminate()
            out = p.communicate(timeout=10)[0]
    assert p.returncode == 0, out
    # it listens, on UDP and TCP, and only on loopback: nothing to answer the network with
    assert {(proto, ip, lport) for proto, ip, lport, _ in socks if lport == port} >= {
        ("udp", "127.0.0.1", port), ("tcp", "127.0.0.1", port)}, socks
    outside = [s for s in socks if not ipaddress.ip_address(s[1]).is_loopback]
    assert not outside, f"sockets open beyond loopback: {outside}"


@contextlib.contextmanager
def resolved_stub():
    """What systemd-resolved holds: UDP and a listening TCP socket on 127.0.0.53 and 127.0.0.54,
    on a free port (the test's stand-in for 53). Yields the port."""
    for _ in range(20):
        port, socks = free_port(), []
        try:
            for ip in ("127.0.0.53", "127.0.0.54"):
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    s = socket.socket(socket.AF_INET, kind)
                    socks.append(s)
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind((ip, port))
                    if kind == socket.SOCK_STREAM:
                        s.listen()
        except OSError:
            for s in socks:
                s.close()
            continue
        try:
            yield port
        finally:
            for s in socks:
                s.close()
        return
    raise RuntimeError("no port free on 127.0.0.53 and 127.0.0.54")


def inet_sockets(pid):
    """[(proto, local ip, local port, remote ip)] of the IP sockets process pid holds, from its
    file descriptors and /proc/net/{udp,tcp}{,6}."""
    inodes = set()
    for fd in pathlib.Path(f"/proc/{pid}/fd").iterdir():
        m = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(fd))
        if m:
            inodes.add(m.group(1))
    out = []
    for proto in ("udp", "tcp", "udp6", "tcp6"):
        for line in pathlib.Path(f"/proc/{pid}/net/{proto}").read_text().splitlines()[1:]:
            f = line.split()
            if f[9] in inodes:
                (lip, lport), (rip, _) = (proc_net_addr(a) for a in f[1:3])
                out.append((proto.rstrip("6"), lip, lport, rip))
    return out


def proc_net_addr(text):
    """/proc/net's "0100007F:0035" (the address in host-order 32-bit words) -> ("127.0.0.1", 53)."""
    hexip, hexport = text.split(":")
    raw = b"".join(int(hexip[i:i + 8], 16).to_bytes(4, "little") for i in range(0, len(hexip), 8))
    ip = ipaddress.ip_address(raw)
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return str(ip), int(hexport, 16)


# -- the annotated conf file (the package's example) ----------------------------------------------

def test_conf_annotations_give_the_defaults():
    """Each option's comment in conf/kubemasq.conf says `Default: X` as --help does, and where
    the default is a plain value the commented example line is that value (uncommenting it
    changes nothing)."""
    helptext = run(kubemasq_bin(), "--help").stdout
    defaults = dict(re.findall(r"^ +(?:-\S, +)?--([a-z0-9-]+)\S* .*\(default: ([^)]*)\)$",
                               helptext, re.M))
    assert len(defaults) > 20, helptext
    blocks, comment = {}, []
    for line in (TOP / "conf" / "kubemasq.conf").read_text().splitlines():
        m = re.match(r"#([a-z0-9][a-z0-9-]+)(?:=(.*))?$", line)
        if m:
            blocks.setdefault(m.group(1), (" ".join(comment), m.group(2)))
        elif line.startswith("#"):
            comment.append(line.lstrip("#").strip())
            continue
        comment = []
    for name, default in defaults.items():
        assert name in blocks, f"{name} has no line in conf/kubemasq.conf"
        text, value = blocks[name]
        assert f"Default: {default}" in text, f"{name}: the comment does not say the default"
        if re.fullmatch(r"[\w./-]+", default) and default not in ("all", "off", "none"):
            assert value == default, f"#{name}={value}: the default is {default}"
