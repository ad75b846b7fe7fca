# SPDX-License-Identifier: GPL-2.0-or-later
"""The resolv-file as dnsmasq treats it: read at start, re-read on SIGHUP and when it changes
on disk. resolv.conf has no port, so these servers are never queried (tests never send to
port 53): the proof is in the log and the SIGUSR1 server lines."""

import os
import re
import signal

from conftest import query, rdatas


def server_line(ip):
    return "server " + re.escape(ip) + r"#53: queries sent 0"


def write(path, ips):
    tmp = path.with_suffix(".new")
    tmp.write_text("".join(f"nameserver {ip}\n" for ip in ips) + "options ndots:5\n")
    os.replace(tmp, path)	# atomic, as resolvconf and kubelet write it


def test_resolv_file_read_at_start_and_on_change(knotd, kubemasq, public_dir):
    resolv = public_dir / "resolv.conf"
    write(resolv, ["127.0.0.7"])
    k = kubemasq([f"--resolv-file={resolv}", f"--server=/test/127.0.0.1#{knotd.port}"],
                 no_resolv=False)
    k.wait_log(r"using nameserver 127\.0\.0\.7#53$")
    start = k.log_size()
    write(resolv, ["127.0.0.8", "::2"])
    k.wait_log(r"using nameserver 127\.0\.0\.8#53$", start=start)
    k.wait_log(r"using nameserver ::2#53$", start=start)
    # the zone's own server is untouched and keeps answering
    assert rdatas(k.udp(query("www.test.", "A"))) == ["192.0.2.10"]
    start = k.log_size()
    k.signal(signal.SIGUSR1)
    k.wait_log(server_line("127.0.0.8"), start=start)
    assert "127.0.0.7#53" not in k.log_text()[start:], "the old server is still listed"


def test_sighup_rereads_resolv_file_and_clears_cache(knotd, kubemasq, public_dir):
    resolv = public_dir / "resolv.conf"
    write(resolv, ["127.0.0.7"])
    k = kubemasq([f"--resolv-file={resolv}", f"--server=/test/127.0.0.1#{knotd.port}"],
                 no_resolv=False)
    k.wait_log(r"using nameserver 127\.0\.0\.7#53$")
    # SIGHUP re-reads at once, whether or not the once-a-second check has seen the change.
    resolv.write_text("nameserver 127.0.0.9\n")
    start = k.log_size()
    k.signal(signal.SIGHUP)
    k.wait_log(r"reading .*resolv\.conf", start=start)
    k.wait_log(r"cleared cache", start=start)
    k.wait_log(r"using nameserver 127\.0\.0\.9#53$", start=start)


def test_unchanged_resolv_file_keeps_the_forwarder(knotd, kubemasq, public_dir):
    """A SIGHUP that changes nothing must not replace the servers (their RTT history stays)."""
    resolv = public_dir / "resolv.conf"
    write(resolv, ["127.0.0.7"])
    k = kubemasq([f"--resolv-file={resolv}", f"--server=/test/127.0.0.1#{knotd.port}"],
                 no_resolv=False)
    k.wait_log(r"using nameserver 127\.0\.0\.7#53$")
    start = k.log_size()
    k.signal(signal.SIGHUP)
    k.wait_log(r"cleared cache", start=start)
    assert "using nameserver" not in k.log_text()[start:]
