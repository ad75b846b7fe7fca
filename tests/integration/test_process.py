# SPDX-License-Identifier: GPL-2.0-or-later
"""The daemon as a process: dnsmasq's SIGUSR1 statistics, SIGTERM with the pid file, the
--log-queries lines, and listening on ::1."""

import os
import re
import signal
import socket

import dns.rcode
import pytest

from conftest import query, rdatas, wait_until

FORWARDED = r"queries forwarded (\d+), queries answered locally (\d+)"


def server_line(port):
    return (rf"server 127\.0\.0\.1#{port}: queries sent (\d+), retried (\d+), failed (\d+), "
            r"nxdomain replies (\d+), avg\. latency (\d+)ms")


def test_sigusr1_statistics(knotd, kubemasq):
    k = kubemasq([f"--server=127.0.0.1#{knotd.port}", "--address=/blocked.test/1.2.3.4"])
    assert rdatas(k.udp(query("www.test.", "A"))) == ["192.0.2.10"]
    assert rdatas(k.tcp(query("mail.test.", "A"))) == ["192.0.2.25"]
    assert k.udp(query("nope.test.", "A")).rcode() == dns.rcode.NXDOMAIN
    assert rdatas(k.udp(query("blocked.test.", "A"))) == ["1.2.3.4"]
    start = k.log_size()
    k.signal(signal.SIGUSR1)
    m = k.wait_log(FORWARDED, start=start)
    forwarded, local = int(m.group(1)), int(m.group(2))
    assert forwarded >= 3, f"www, mail and nope were forwarded: {m.group(0)}"
    assert local >= 1, f"blocked.test was answered locally: {m.group(0)}"
    s = k.wait_log(server_line(knotd.port), start=start)
    sent, retried, failed, nxdomain, latency = map(int, s.groups())
    assert sent >= forwarded, f"{s.group(0)} but {m.group(0)}"
    assert failed == 0 and nxdomain >= 1, s.group(0)
    assert latency < 1000, s.group(0)
    assert k.alive(), "SIGUSR1 must not stop the daemon"
    # it keeps counting
    assert rdatas(k.udp(query("sip.test.", "A"))) == ["192.0.2.50"]
    start = k.log_size()
    k.signal(signal.SIGUSR1)
    m2 = k.wait_log(FORWARDED, start=start)
    assert int(m2.group(1)) == forwarded + 1, f"before: {m.group(0)}; after: {m2.group(0)}"


def test_sigterm_exits_0_and_removes_pid_file(knotd, kubemasq, public_dir):
    # As packaged (/run/kubemasq owned by the service user): when we run as root the daemon
    # drops to `nobody`, who must be able to remove the pid file.
    run_dir = public_dir
    pid_file = run_dir / "kubemasq.pid"
    k = kubemasq([f"--server=127.0.0.1#{knotd.port}", f"--pid-file={pid_file}"])
    wait_until(pid_file.exists, 5, what="the pid file")
    assert pid_file.read_text().strip() == str(k.proc.pid)
    assert rdatas(k.udp(query("www.test.", "A"))) == ["192.0.2.10"]
    k.signal(signal.SIGTERM)
    rc = k.proc.wait(timeout=5)
    assert rc == 0, f"exit code {rc}; log:\n{k.log_text()[-2000:]}"
    assert not pid_file.exists(), "the pid file outlived the daemon"


def test_sigterm_removes_pid_file_without_privilege_drop(knotd, kubemasq, tmp_path):
    """The same with --user=root: tells a daemon that never removes its pid file from one
    that cannot after dropping root (to `nobody`, who may not write the pid file's folder)."""
    pid_file = tmp_path / "kubemasq.pid"
    k = kubemasq([f"--server=127.0.0.1#{knotd.port}", f"--pid-file={pid_file}", "--user=root"])
    wait_until(pid_file.exists, 5, what="the pid file")
    k.signal(signal.SIGTERM)
    assert k.proc.wait(timeout=5) == 0
    assert not pid_file.exists(), f"the pid file outlived the daemon: {k.log_text()[-1000:]}"


def test_sigint_exits_0(knotd, kubemasq):
    k = kubemasq([f"--server=127.0.0.1#{knotd.port}"])
    k.signal(signal.SIGINT)
    assert k.proc.wait(timeout=5) == 0


def test_log_queries_lines(knotd, kubemasq):
    k = kubemasq([f"--server=127.0.0.1#{knotd.port}", "--log-queries"])
    assert rdatas(k.udp(query("www.test.", "A"))) == ["192.0.2.10"]
    k.wait_log(r"query\[A\] www\.test from 127\.0\.0\.1\b")
    k.wait_log(rf"forwarded www\.test to 127\.0\.0\.1#{knotd.port}\b")
    k.wait_log(r"reply www\.test is 192\.0\.2\.10\b")
    assert len(rdatas(k.udp(query("multi.test.", "A")))) == 5
    k.wait_log(r"query\[A\] multi\.test from 127\.0\.0\.1\b")
    for i in range(1, 6):
        k.wait_log(rf"reply multi\.test is 192\.0\.2\.{100 + i}\b")
    k.udp(query("www.test.", "AAAA"))
    k.wait_log(r"query\[AAAA\] www\.test from 127\.0\.0\.1\b")
    k.wait_log(r"reply www\.test is 2001:db8::10\b")


def test_no_query_lines_without_log_queries(knotd, kubemasq):
    k = kubemasq([f"--server=127.0.0.1#{knotd.port}"])
    assert rdatas(k.udp(query("www.test.", "A"))) == ["192.0.2.10"]
    # a SIGUSR1 dump is a line we can wait for; query lines would have come before it
    k.signal(signal.SIGUSR1)
    k.wait_log(FORWARDED)
    assert not re.search(r"query\[A\] www\.test", k.log_text())


def ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(not ipv6_loopback(), reason="no ::1 on this machine")
def test_listen_on_ipv6_loopback(knotd, kubemasq):
    k = kubemasq([f"--server=127.0.0.1#{knotd.port}"], host="::1")
    r = k.udp(query("www.test.", "AAAA"))
    assert rdatas(r, "AAAA") == ["2001:db8::10"]
    r = k.tcp(query("www.test.", "A"))
    assert rdatas(r) == ["192.0.2.10"]
    # and only there: nothing on 127.0.0.1 at that port
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.5)
    s.sendto(query("www.test.", "A").to_wire(), ("127.0.0.1", k.port))
    try:
        data = s.recv(65535)
    except (socket.timeout, ConnectionRefusedError):
        data = None
    s.close()
    assert data is None, "--listen-address=::1 also answered on 127.0.0.1"
