# SPDX-License-Identifier: GPL-2.0-or-later
"""The daemon the way dnsmasq is run in production: forked into the background with a pid
file, dropped from root to --user, logging to a file that SIGUSR2 reopens after rotation, and
listening on an interface by name. These start the binary by hand (not through the fixture,
which always runs it in the foreground on one address)."""

import os
import signal
import socket
import subprocess

import pytest

from conftest import free_port, kubemasq_bin, query, rdatas, udp, tcp, wait_until


def answers(port, host="127.0.0.1"):
    try:
        return rdatas(udp(query("www.test.", "A"), port, host, timeout=0.3)) == ["192.0.2.10"]
    except (OSError, Exception):
        return False


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def proc_uid(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    raise AssertionError("no Uid line")


def test_daemonizes_with_pid_file(knotd, public_dir):
    port = free_port()
    pid_file = public_dir / "kubemasq.pid"
    log = public_dir / "kubemasq.log"
    r = subprocess.run([kubemasq_bin(), f"--port={port}", "--listen-address=127.0.0.1",
                        "--no-resolv", f"--server=127.0.0.1#{knotd.port}",
                        f"--pid-file={pid_file}", f"--log-facility={log}"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    assert r.returncode == 0, r.stderr
    wait_until(pid_file.exists, 5, what="the pid file")
    pid = int(pid_file.read_text())
    try:
        assert pid_alive(pid)
        # the parent we started has exited; the daemon is another process in its own session
        assert os.getsid(pid) != os.getsid(0), "still in our session: not detached"
        wait_until(lambda: answers(port), 5, what="the daemon to answer")
        if os.getuid() == 0:
            assert proc_uid(pid) == pwd_uid("nobody"), "root was not dropped to nobody"
    finally:
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not pid_alive(pid), 5, what="the daemon to exit")
    assert not pid_file.exists()
    assert "exiting on receipt of SIGTERM" in log.read_text()


def pwd_uid(name):
    import pwd
    return pwd.getpwnam(name).pw_uid


@pytest.mark.skipif(os.getuid() != 0, reason="dropping privileges needs root")
def test_user_and_group(knotd, kubemasq):
    import grp
    k = kubemasq([f"--server=127.0.0.1#{knotd.port}", "--user=nobody", "--group=nogroup"])
    with open(f"/proc/{k.proc.pid}/status") as f:
        status = f.read()
    uid = int(status.split("Uid:")[1].split()[0])
    gid = int(status.split("Gid:")[1].split()[0])
    assert uid == pwd_uid("nobody")
    assert gid == grp.getgrnam("nogroup").gr_gid
    assert rdatas(k.udp(query("www.test.", "A"))) == ["192.0.2.10"]


def test_unknown_user_is_a_startup_error(knotd):
    if os.getuid() != 0:
        pytest.skip("only root changes user")
    r = subprocess.run([kubemasq_bin(), "-k", f"--port={free_port()}",
                        "--listen-address=127.0.0.1", "--no-resolv",
                        "--user=no-such-user-kubemasq"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert "no-such-user-kubemasq" in r.stderr


def test_log_file_reopened_on_sigusr2(knotd, kubemasq, public_dir):
    log = public_dir / "kubemasq.log"
    k = kubemasq([f"--server=127.0.0.1#{knotd.port}", f"--log-facility={log}", "--log-queries"])
    assert rdatas(k.udp(query("www.test.", "A"))) == ["192.0.2.10"]
    wait_until(lambda: "query[A] www.test from 127.0.0.1" in log.read_text(), 5,
               what="the query line in the log file")
    rotated = public_dir / "kubemasq.log.1"
    os.rename(log, rotated)
    k.signal(signal.SIGUSR2)
    # until the reopen, lines still go to the renamed file; after it, to a new file
    wait_until(lambda: (k.udp(query("mail.test.", "A")) and log.exists()
                        and "query[A] mail.test" in log.read_text()), 5,
               what="a new log file with the next query")
    assert "query[A] www.test" in rotated.read_text()


def test_listen_on_interface_by_name(knotd):
    port = free_port()
    proc = subprocess.Popen([kubemasq_bin(), "-k", f"--port={port}", "--interface=lo",
                             "--no-resolv", f"--server=127.0.0.1#{knotd.port}",
                             "--log-facility=-"],
                            stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: answers(port), 5, what="an answer on 127.0.0.1")
        assert rdatas(tcp(query("www.test.", "A"), port)) == ["192.0.2.10"]
        if socket.has_ipv6 and os.path.exists("/proc/net/if_inet6") and \
                "lo" in open("/proc/net/if_inet6").read():
            assert answers(port, "::1"), "lo's IPv6 address is not served"
    finally:
        proc.terminate()
        assert proc.wait(timeout=5) == 0


def test_unknown_interface_is_a_startup_error():
    r = subprocess.run([kubemasq_bin(), "-k", f"--port={free_port()}", "--interface=nosuch0",
                        "--no-resolv"], stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 1
    assert "nosuch0" in r.stderr
