# SPDX-License-Identifier: GPL-2.0-or-later
"""dnsmasq's local records (--host-record, --cname, --txt-record, --srv-host, --mx-host,
--ptr-record, hosts files, --expand-hosts): kubemasq and the real dnsmasq 2.90 get the same
options and the same questions, each forwarding to a scripted upstream of its own that answers
NXDOMAIN for everything, and must give the same answers: rcode, AA, and the answer records
(name, type, TTL, rdata) as sets, and forward the same questions upstream."""

import signal
import subprocess

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from conftest import Dnsmasq, query, wait_until
from scripted_upstream import ScriptedAnswer, make_answer

LONG = "x" * 300        # split into 255 + 45 byte strings

HOSTS = """# a comment line
10.0.0.1   web web.lan www      # several names, a trailing comment
10.0.0.2   db
fd00::2    db                   # IPv6
10.0.0.300 broken               # a bad address: skipped
fd00::5    v6only
10.0.0.9   multi
10.0.0.10  multi
10.0.0.1   second-for-web       # the PTR stays with web
192.0.2.1  hh                   # --host-record has this address's PTR
10.0.0.11  MixedCase
"""

DIR_A = "10.0.1.1 a-file\n"
DIR_B = "10.0.1.2 b-file\n10.0.1.1 b-other\n"

OPTIONS = [
    "--host-record=h1,h1.example,192.0.2.1,2001:db8::1",
    "--host-record=h2.example,192.0.2.2,300",
    "--host-record=h1,192.0.2.9",
    "--cname=c1,c2.example,h1.example",
    "--cname=c3,c1",
    "--cname=cx,nowhere.example",
    "--cname=ct.example,h2.example,77",
    "--cname=cw,web",
    '--txt-record=t.example,one,two words,"quoted"',
    "--txt-record=t0.example",
    f"--txt-record=tl.example,{LONG}",
    "--txt-record=h2.example,on a host",
    "--srv-host=_ldap._tcp.example,ldap.example,389,1,2",
    "--srv-host=_ldap._tcp.example,ldap2.example,636",
    "--srv-host=_x._tcp.example",
    "--srv-host=_y._udp.example,y.example",
    "--mx-host=m.example,mail.example,5",
    "--mx-host=m.example,mail2.example",
    "--mx-host=m2.example",
    "--ptr-record=p.example,target.example",
    "--ptr-record=1.2.0.192.in-addr.arpa,other.example",
    "--ptr-record=p0.example",
]

QUESTIONS = [(n, t) for n in ["h1.", "h1.example.", "h2.example.", "H1.Example."]
             for t in ["A", "AAAA", "ANY", "MX", "TXT"]]
QUESTIONS += [
    ("sub.h1.example.", "A"), ("example.", "A"), ("nosuch.example.", "A"),
    ("1.2.0.192.in-addr.arpa.", "PTR"), ("9.2.0.192.in-addr.arpa.", "PTR"),
    ("2.2.0.192.in-addr.arpa.", "PTR"), ("1.2.0.192.in-addr.arpa.", "A"),
    ("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", "PTR"),
    ("c1.", "A"), ("c1.", "AAAA"), ("c1.", "TXT"), ("c1.", "CNAME"), ("c1.", "ANY"),
    ("c2.example.", "A"), ("c3.", "A"), ("c3.", "CNAME"), ("cx.", "A"), ("ct.example.", "A"),
    ("ct.example.", "AAAA"), ("ct.example.", "TXT"), ("cw.", "A"),
    ("t.example.", "TXT"), ("t.example.", "A"), ("t.example.", "ANY"), ("t0.example.", "TXT"),
    ("tl.example.", "TXT"),
    ("_ldap._tcp.example.", "SRV"), ("_ldap._tcp.example.", "A"), ("_x._tcp.example.", "SRV"),
    ("_y._udp.example.", "SRV"),
    ("m.example.", "MX"), ("m.example.", "A"), ("m2.example.", "MX"),
    ("p.example.", "PTR"), ("p.example.", "A"), ("p0.example.", "PTR"),
    ("web.", "A"), ("www.", "A"), ("web.lan.", "A"), ("www.", "AAAA"), ("second-for-web.", "A"),
    ("1.0.0.10.in-addr.arpa.", "PTR"), ("db.", "A"), ("db.", "AAAA"), ("db.", "ANY"),
    ("2.0.0.10.in-addr.arpa.", "PTR"),
    ("2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", "PTR"),
    ("v6only.", "A"), ("v6only.", "AAAA"), ("multi.", "A"), ("9.0.0.10.in-addr.arpa.", "PTR"),
    ("10.0.0.10.in-addr.arpa.", "PTR"), ("99.0.0.10.in-addr.arpa.", "PTR"), ("broken.", "A"),
    ("hh.", "A"), ("mixedcase.", "A"), ("11.0.0.10.in-addr.arpa.", "PTR"),
    ("a-file.", "A"), ("b-file.", "A"), ("b-other.", "A"), ("1.1.0.10.in-addr.arpa.", "PTR"),
    ("web.lan.lan.", "A"), ("web.lan.", "A"), ("db.lan.", "A"), ("db.lan.", "AAAA"),
    ("h1.lan.", "A"), ("multi.lan.", "A"), ("a-file.lan.", "A"),
]


def nxdomain_all(q, transport):
    return ScriptedAnswer(make_answer(q, [], rcode=dns.rcode.NXDOMAIN))


def shape(r):
    """What must agree: rcode, AA, the answer records as a set, the authority count."""
    rrs = sorted((rrset.name.to_text().lower(), rrset.rdtype, rrset.ttl, rd.to_text())
                 for rrset in r.answer for rd in rrset)
    return dns.rcode.to_text(r.rcode()), bool(r.flags & dns.flags.AA), rrs, len(r.authority)


def ask(port, name, rdtype):
    return shape(dns.query.udp(query(name, rdtype), "127.0.0.1", port=port, timeout=3))


@pytest.fixture
def pair(kubemasq, scripted, tmp_path):
    """pair(args) -> (kubemasq, dnsmasq, kube's upstream, dnsmasq's upstream)."""
    made = []

    def make(args, kube_only=()):
        uk, ud = scripted(nxdomain_all), scripted(nxdomain_all)
        d = Dnsmasq(tmp_path, ud.port, args)
        made.append(d)
        k = kubemasq([f"--server=127.0.0.1#{uk.port}", *args, *kube_only])
        return k, d, uk, ud
    yield make
    for d in made:
        d.stop()


def hosts_files(tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text(HOSTS)
    d = tmp_path / "hosts.d"
    d.mkdir()
    (d / "b").write_text(DIR_B)
    (d / "a").write_text(DIR_A)
    return hosts, d


def compare(k, d, uk, ud, questions):
    diffs = []
    for name, rdtype in questions:
        got, want = ask(k.port, name, rdtype), ask(d.port, name, rdtype)
        if got != want:
            diffs.append((name, rdtype, "kubemasq", got, "dnsmasq", want))
    assert not diffs, "\n".join(map(str, diffs))
    # The same questions went upstream (the rest were answered locally by both).
    fwd = {who: sorted((n, t) for (n, t, _tr), c in u.counts.items() for _ in range(c)
                       if not n.startswith("ready-probe"))
           for who, u in (("kubemasq", uk), ("dnsmasq", ud))}
    assert fwd["kubemasq"] == fwd["dnsmasq"], fwd


@pytest.mark.parametrize("extra", [[], ["--local-ttl=60", "--domain=lan", "--expand-hosts"]],
                         ids=["plain", "expand-hosts"])
def test_local_records_like_dnsmasq(pair, tmp_path, extra):
    hosts, d = hosts_files(tmp_path)
    k, dm, uk, ud = pair(["--no-hosts", *OPTIONS, f"--addn-hosts={hosts}",
                          f"--addn-hosts={d}", *extra])
    compare(k, dm, uk, ud, QUESTIONS)
    # Not vacuous: local answers, forwarded names and NXDOMAINs all occurred.
    assert ask(k.port, "h1.example.", "A")[:2] == ("NOERROR", True)
    assert ask(k.port, "nosuch.example.", "A")[0] == "NXDOMAIN"
    # Other types on a local name go upstream (its NXDOMAIN becomes NODATA), as in dnsmasq.
    assert uk.count("h1.example.", "MX") == 2 and uk.count("h1.example.", "A") == 0
    assert ask(k.port, "h1.example.", "MX")[:3] == ("NOERROR", True, [])
    # TCP gets the same answers.
    for name, rdtype in [("c3.", "A"), ("db.", "ANY"), ("tl.example.", "TXT")]:
        got = shape(dns.query.tcp(query(name, rdtype), "127.0.0.1", port=k.port, timeout=3))
        assert got == ask(dm.port, name, rdtype), (name, rdtype)
    # The bad hosts line is named with file:line and skipped; the daemon carries on.
    k.wait_log(rf"{hosts}:5: bad address \"10.0.0.300\", line skipped")


def test_etc_hosts_read_by_default_like_dnsmasq(pair, tmp_path):
    names = []
    for line in open("/etc/hosts"):
        f = line.split("#")[0].split()
        names += [(n + ".", t) for n in f[1:] for t in ("A", "AAAA")]
    if not names:
        pytest.skip("/etc/hosts has no names")
    k, dm, uk, ud = pair([])
    compare(k, dm, uk, ud, names + [("1.0.0.127.in-addr.arpa.", "PTR")])
    assert ask(k.port, *names[0])[1] or ask(k.port, *names[1])[1]   # some local answer


def test_no_hosts_stops_etc_hosts(kubemasq, scripted):
    up = scripted(nxdomain_all)
    k = kubemasq([f"--server=127.0.0.1#{up.port}", "--no-hosts"])
    assert ask(k.port, "localhost.", "A")[0] == "NXDOMAIN"
    assert up.count("localhost.", "A") == 1


def test_sighup_rereads_hosts_files_like_dnsmasq(pair, tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("10.9.0.1 before\n")
    # Both keep root (when started as root) to read the test's private directory again.
    k, dm, uk, ud = pair(["--no-hosts", f"--addn-hosts={hosts}", "--host-record=opt,10.9.0.3"],
                         kube_only=["--user="])
    compare(k, dm, uk, ud, [("before.", "A"), ("after.", "A")])
    assert ask(k.port, "after.", "A")[0] == "NXDOMAIN"
    assert ask(dm.port, "after.", "A")[0] == "NXDOMAIN"
    hosts.write_text("10.9.0.2 after\n10.9.0.1 renamed\n")
    start, dstart = k.log_size(), len(dm.log.read_text())
    k.signal(signal.SIGHUP)
    dm.proc.send_signal(signal.SIGHUP)
    k.wait_log(r"read .*hosts - 2 names", start=start)
    wait_until(lambda: "hosts - 2 names" in dm.log.read_text()[dstart:], 5, 0.02,
               "dnsmasq to re-read its hosts file")
    compare(k, dm, uk, ud, [("before.", "A"), ("after.", "A"), ("renamed.", "A"),
                            ("opt.", "A"), ("1.0.9.10.in-addr.arpa.", "PTR"),
                            ("2.0.9.10.in-addr.arpa.", "PTR")])
    assert ask(k.port, "after.", "A")[2] == [("after.", 1, 0, "10.9.0.2")]


@pytest.mark.parametrize("opt", [
    "--host-record=bad!name,192.0.2.1", "--host-record=onlyname", "--cname=alone",
    "--mx-host=m.example,t.example,notanumber", "--srv-host=_a._tcp.x,t,99999",
    "--ptr-record=p.example,a,b", "--domain=bad..domain",
])
def test_bad_record_option_stops_with_one_line(opt):
    from conftest import kubemasq_bin
    r = subprocess.run([kubemasq_bin(), "--test", "--no-resolv", opt], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode != 0
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"bad value for {opt.split('=')[0]}" in lines[0], r.stderr


def test_good_record_options_pass_the_check(tmp_path):
    from conftest import kubemasq_bin
    hosts, d = hosts_files(tmp_path)
    r = subprocess.run([kubemasq_bin(), "--test", "--no-resolv", "--no-hosts", *OPTIONS,
                        f"--addn-hosts={hosts}", f"--addn-hosts={d}", "--domain=lan",
                        "--expand-hosts"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
