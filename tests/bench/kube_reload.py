# SPDX-License-Identifier: GPL-2.0-or-later
"""How long DNS waits while kubemasq re-reads a big snapshot: a generated cluster
(gen_cluster.py) served with --kube-snapshot; after the start-up read, a SIGHUP starts a
re-read, and one client sends queries back to back (each distinct name once: cluster names
answered from the store, so the cache does not hide a stalled loop) from the "kube: reading"
line to the "kube: read" line that ends the read. Prints one line of figures; asserts nothing.

    /usr/bin/python3 tests/bench/kube_reload.py [--bin build/kubemasq] [-n 20000] [-e 200000]
        [--snapshot FILE]

kube_reload file_mb=.. startup_read_ms=.. reread_ms=.. queries=.. lost=.. p50_ms=.. p99_ms=..
    max_ms=..   (reread_ms as the daemon logs it; the latencies of the queries sent meanwhile)
"""

import argparse
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

import dns.message
import dns.query

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from gen_cluster import gen_cluster, queries, snapshot  # noqa: E402


def free_port():
    """A port free for UDP and TCP on 127.0.0.1 right now."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, \
                socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            u.bind(("127.0.0.1", 0))
            try:
                t.bind(("127.0.0.1", u.getsockname()[1]))
            except OSError:
                continue
            return u.getsockname()[1]


def wait_for(cond, timeout, what, proc, log):
    deadline = time.monotonic() + timeout
    while not cond():
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"kube_reload: no {what} (exit code {proc.poll()}); log:\n"
                     + log.read_text(errors="replace")[-2000:])
        time.sleep(0.01)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=str(HERE.parent.parent / "build" / "kubemasq"))
    ap.add_argument("-n", "--services", type=int, default=20000)
    ap.add_argument("-e", "--endpoints", type=int, default=200000)
    ap.add_argument("--snapshot", help="use this file instead of generating one")
    a = ap.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="kube-reload-", dir="/tmp"))
    os.chmod(work, 0o755)
    snap = pathlib.Path(a.snapshot) if a.snapshot else work / "cluster.json"
    items = gen_cluster(a.services, a.endpoints, seed=1)
    if not a.snapshot:
        snap.write_text(__import__("json").dumps(snapshot(items)))
        os.chmod(snap, 0o644)
    names = [line.split() for line in queries(items, per_kind=100000)]
    log = work / "kubemasq.log"
    port = free_port()
    proc = subprocess.Popen([a.bin, "-k", f"--port={port}", "--listen-address=127.0.0.1",
                             "--log-facility=-", "--no-resolv", f"--kube-snapshot={snap}",
                             ], stdin=subprocess.DEVNULL,
                            stderr=open(log, "w"))
    text = lambda: log.read_text(errors="replace")  # noqa: E731
    try:
        wait_for(lambda: "started, version" in text(), 600, "start-up read", proc, log)
        start_ms = re.search(r"kube: read .* in (\d+) ms", text())
        at = len(text())
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "kube: reading" in text()[at:], 60, "re-read", proc, log)
        lat, lost, i = [], 0, 0
        while not re.search(r"kube: read /", text()[at:]) and i < len(names):
            q = dns.message.make_query(names[i][0], names[i][1])
            i += 1
            t = time.monotonic()
            try:
                dns.query.udp(q, "127.0.0.1", port=port, timeout=10)
                lat.append(time.monotonic() - t)
            except Exception:
                lost += 1
        wait_for(lambda: re.search(r"kube: read /", text()[at:]), 600, "end of the re-read", proc,
                 log)
        reread = re.search(r"kube: read /.* in (\d+) ms", text()[at:])
        lat.sort()
        pct = lambda p: lat[min(len(lat) - 1, int(len(lat) * p))] * 1000 if lat else 0  # noqa
        print(f"kube_reload file_mb={snap.stat().st_size / 1e6:.0f} "
              f"startup_read_ms={start_ms.group(1) if start_ms else '?'} "
              f"reread_ms={reread.group(1) if reread else '?'} queries={len(lat)} lost={lost} "
              f"p50_ms={pct(0.5):.2f} p99_ms={pct(0.99):.2f} max_ms={pct(1.0):.2f}")
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        if not a.snapshot:
            snap.unlink()
        log.unlink()
        work.rmdir()


if __name__ == "__main__":
    main()
