# SPDX-License-Identifier: GPL-2.0-or-later
"""The command line and conf files as a user meets them: an unknown option or a bad value is
exit code 1 with one line naming it; a bad conf-file line says FILE:LINE; --test checks a
good configuration and exits 0 without serving."""

import os
import subprocess

import pytest

from conftest import free_port, kubemasq_bin, query

BASE = ["-k", "--listen-address=127.0.0.1", "--no-resolv", "--log-facility=-"]


def run(args, timeout=5):
    """Run the daemon to its exit; one that is still running at the deadline (it accepted
    what it should have refused and started serving) fails the test."""
    exe = kubemasq_bin()
    if not os.access(exe, os.X_OK):
        pytest.fail(f"kubemasq binary {exe} not found (build it or set KUBEMASQ_BIN)")
    try:
        return subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{args}: still running after {timeout}s instead of exiting; "
                    f"stderr {e.stderr!r}")


def error_lines(r):
    return [line for line in r.stderr.splitlines() if line.strip()]


@pytest.mark.parametrize("bad,named", [
    (["--no-such-option"], "no-such-option"),
    (["--no-such-option=3"], "no-such-option"),
    (["--port=notaport"], "port"),
    (["--port=70000"], "port"),
    (["--cache-size=lots"], "cache-size"),
    (["--server=not-an-address"], "server"),
    (["--upstream-timeout=-5"], "upstream-timeout"),
    (["--tcp-max-connections=x"], "tcp-max-connections"),
    (["--edns-packet-max=abc"], "edns-packet-max"),
])
def test_bad_option_exits_1_naming_it(bad, named):
    port = [] if bad[0].startswith("--port=") else [f"--port={free_port()}"]
    r = run(BASE + port + ["--server=127.0.0.1#5399"] + bad)
    assert r.returncode == 1, f"{bad}: exit {r.returncode}; stderr {r.stderr!r}"
    lines = error_lines(r)
    assert len(lines) == 1, f"{bad}: expected one line on stderr, got {lines!r}"
    assert named in lines[0], f"{bad}: the line does not name {named}: {lines[0]!r}"


@pytest.mark.parametrize("content,bad_line,named", [
    ("no-resolv\nserver=127.0.0.1#5399\nbogus-option=1\ncache-size=10\n", 3, "bogus-option"),
    ("# a comment\n\nport=notaport\n", 3, "port"),
    ("server=127.0.0.1#5399\ncache-size=many\n", 2, "cache-size"),
])
def test_bad_conf_file_line_names_file_and_line(tmp_path, content, bad_line, named):
    conf = tmp_path / "bad.conf"
    conf.write_text(content)
    # a port on the command line would clash with the conf file's port= line
    port = [] if "port=" in content else [f"--port={free_port()}"]
    for extra in ([], ["--test"]):
        r = run(BASE + port + [f"--conf-file={conf}"] + extra)
        assert r.returncode == 1, f"exit {r.returncode}; stderr {r.stderr!r}"
        lines = error_lines(r)
        assert len(lines) == 1, f"expected one line on stderr, got {lines!r}"
        assert f"{conf}:{bad_line}" in lines[0], f"no {conf}:{bad_line} in {lines[0]!r}"
        assert named in lines[0], f"the line does not name {named}: {lines[0]!r}"


def test_test_flag_accepts_good_config(tmp_path):
    conf = tmp_path / "good.conf"
    conf.write_text("# kubemasq test configuration\n"
                    "no-resolv\n"
                    "server=127.0.0.1#5399\n"
                    "server=/slow.test/127.0.0.1#5398\n"
                    "server=/local.test/\n"
                    "address=/blocked.test/1.2.3.4\n"
                    "cache-size=100\n"
                    "strict-order\n"
                    "log-queries\n")
    port = free_port()
    r = run(BASE + [f"--port={port}", f"--conf-file={conf}", "--test"])
    assert r.returncode == 0, f"exit {r.returncode}; stderr {r.stderr!r}"
    r = run(BASE + [f"--port={port}", "--server=127.0.0.1#5399", "--upstream-timeout=1500",
                    "--upstream-retry=500", "--edns-packet-max=1232",
                    "--tcp-max-connections=10", "--tcp-idle-timeout=5", "--all-servers",
                    "--test"])
    assert r.returncode == 0, f"exit {r.returncode}; stderr {r.stderr!r}"


def test_missing_conf_file_is_an_error(tmp_path):
    r = run(BASE + [f"--port={free_port()}", f"--conf-file={tmp_path}/nonexistent.conf",
                    "--test"])
    assert r.returncode == 1, f"exit {r.returncode}; stderr {r.stderr!r}"
    lines = error_lines(r)
    assert len(lines) == 1 and "nonexistent.conf" in lines[0], lines


def test_help_and_version_exit_0():
    r = run(["--help"])
    assert r.returncode == 0 and "--server" in r.stdout, r.stdout + r.stderr
    r = run(["--version"])
    assert r.returncode == 0 and r.stdout.strip(), r.stdout + r.stderr


def test_conf_file_without_newlines_is_refused_at_once():
    """A file that never ends a line (/dev/zero) is read no further than the longest line:
    one error line at once, no unbounded read into memory."""
    r = run(BASE + [f"--port={free_port()}", "--conf-file=/dev/zero", "--test"])
    assert r.returncode == 1, r.stderr
    assert error_lines(r) == ["kubemasq: /dev/zero:1: line longer than 4096"]


def test_resolv_file_without_newlines_is_not_read_further(kubemasq, knotd):
    """--resolv-file=/dev/zero: the daemon starts (the file names no server) and answers through
    --server, instead of reading the device into memory for ever."""
    k = kubemasq([f"--server=127.0.0.1#{knotd.port}", "--resolv-file=/dev/zero"], no_resolv=False)
    assert k.udp(query("www.test.", "A")).rcode() == 0
