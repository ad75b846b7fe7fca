# SPDX-License-Identifier: GPL-2.0-or-later
"""A small scripted DNS upstream, UDP and TCP on one loopback port, for the misbehaviour that
ldns-testns cannot script: replies with a wrong ID, from another source port or for another
question before the genuine one; total silence; answers after a delay (for TCP pipelining);
and a count of every query it receives, by lower-cased name, type and transport.

The behaviour is chosen per query by a `script` callable: script(query, transport) returns a
ScriptedAnswer (or None for silence). The server runs in daemon threads and stops on close().
"""

import select
import socket
import struct
import threading
import time
from collections import Counter

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset


class ScriptedAnswer:
    """What to send for one query: `decoys` first (list of (kind, wire)) then the genuine
    wire answer after `delay` seconds. kind is "udp" (same socket) or "other-port"."""

    def __init__(self, wire=None, delay=0.0, decoys=None, decoy_gap=0.05):
        self.wire = wire
        self.delay = delay
        self.decoys = decoys or []
        self.decoy_gap = decoy_gap


def make_answer(query, addrs, ttl=300, rcode=dns.rcode.NOERROR, qname=None, qid=None):
    """A response to `query` with A records `addrs` for its (or another) question."""
    resp = dns.message.make_response(query)
    resp.flags |= dns.flags.RA
    resp.set_rcode(rcode)
    if qname is not None:
        q = query.question[0]
        resp.question = [dns.rrset.RRset(dns.name.from_text(qname), q.rdclass, q.rdtype)]
    name = resp.question[0].name
    if addrs:
        rrset = dns.rrset.from_text_list(name, ttl, "IN", "A", addrs)
        resp.answer.append(rrset)
    if qid is not None:
        resp.id = qid
    return resp.to_wire(max_size=65535)


def answer_all(addrs=("192.0.2.1",), delay=0.0):
    """A script answering every query with the given A records."""
    def script(query, transport):
        return ScriptedAnswer(make_answer(query, list(addrs)), delay=delay)
    return script


def silent(query, transport):
    return None


def by_prefix(query, transport):
    """SERVFAIL for names starting "fail.", NXDOMAIN for "nx.", else one A record."""
    name = query.question[0].name.to_text().lower()
    if name.startswith("fail."):
        return ScriptedAnswer(make_answer(query, [], rcode=dns.rcode.SERVFAIL))
    if name.startswith("nx."):
        return ScriptedAnswer(make_answer(query, [], rcode=dns.rcode.NXDOMAIN))
    return ScriptedAnswer(make_answer(query, ["192.0.2.1"]))


class ScriptedUpstream:
    def __init__(self, script, host="127.0.0.1", family=socket.AF_INET):
        self.script = script
        self.host = host
        self.counts = Counter()		# (qname, qtype name, transport) -> n
        self.log = []			# (time, qname, qtype, transport, id, client port)
        self.lock = threading.Lock()
        self.stopping = False
        self.udp, self.tcp, self.port = self._bind(family)
        self.other = socket.socket(family, socket.SOCK_DGRAM)
        self.other.bind((host, 0))
        self.threads = [threading.Thread(target=self._serve_udp, daemon=True),
                        threading.Thread(target=self._serve_tcp, daemon=True)]
        for t in self.threads:
            t.start()

    def _bind(self, family):
        """UDP and TCP on one random free port; retry when the TCP side is taken."""
        for _ in range(50):
            udp = socket.socket(family, socket.SOCK_DGRAM)
            udp.bind((self.host, 0))
            port = udp.getsockname()[1]
            tcp = socket.socket(family, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind((self.host, port))
            except OSError:
                udp.close()
                tcp.close()
                continue
            tcp.listen(64)
            return udp, tcp, port
        raise RuntimeError("no free port for the scripted upstream")

    # -- counting ------------------------------------------------------------------------
    def _record(self, query, transport, peer):
        q = query.question[0] if query.question else None
        if q is None:
            key = ("", "", transport)
        else:
            key = (q.name.to_text().lower(), dns.rdatatype.to_text(q.rdtype), transport)
        with self.lock:
            self.counts[key] += 1
            self.log.append((time.monotonic(), key[0], key[1], transport, query.id, peer[1]))

    def count(self, qname=None, qtype=None, transport=None):
        """Queries received, filtered by name (case-insensitive, trailing dot optional), type
        and transport ("udp"/"tcp")."""
        if qname is not None:
            qname = qname.lower()
            if not qname.endswith("."):
                qname += "."
        with self.lock:
            return sum(n for (name, t, tr), n in self.counts.items()
                       if (qname is None or name == qname) and (qtype is None or t == qtype)
                       and (transport is None or tr == transport))

    def total(self):
        with self.lock:
            return sum(self.counts.values())

    # -- serving -------------------------------------------------------------------------
    def _serve_udp(self):
        while not self.stopping:
            r, _, _ = select.select([self.udp], [], [], 0.1)
            if not r:
                continue
            try:
                data, peer = self.udp.recvfrom(65535)
            except OSError:
                return
            try:
                query = dns.message.from_wire(data)
            except Exception:
                continue
            self._record(query, "udp", peer)
            ans = self.script(query, "udp")
            if ans is None:
                continue
            threading.Thread(target=self._send_udp, args=(ans, peer), daemon=True).start()

    def _send_udp(self, ans, peer):
        for kind, wire in ans.decoys:
            sock = self.other if kind == "other-port" else self.udp
            try:
                sock.sendto(wire, peer)
            except OSError:
                pass
            time.sleep(ans.decoy_gap)
        if ans.delay:
            time.sleep(ans.delay)
        if ans.wire is not None and not self.stopping:
            try:
                self.udp.sendto(ans.wire, peer)
            except OSError:
                pass

    def _serve_tcp(self):
        while not self.stopping:
            r, _, _ = select.select([self.tcp], [], [], 0.1)
            if not r:
                continue
            try:
                conn, peer = self.tcp.accept()
            except OSError:
                return
            threading.Thread(target=self._serve_conn, args=(conn, peer), daemon=True).start()

    def _serve_conn(self, conn, peer):
        """Each query on a connection is answered from its own thread, so a slow answer does
        not hold back a later fast one (out-of-order, as RFC 7766 allows)."""
        wlock = threading.Lock()
        conn.settimeout(0.2)
        buf = b""
        try:
            while not self.stopping:
                try:
                    chunk = conn.recv(65535)
                except socket.timeout:
                    continue
                if not chunk:
                    return
                buf += chunk
                while len(buf) >= 2:
                    n = struct.unpack("!H", buf[:2])[0]
                    if len(buf) < 2 + n:
                        break
                    data, buf = buf[2:2 + n], buf[2 + n:]
                    try:
                        query = dns.message.from_wire(data)
                    except Exception:
                        continue
                    self._record(query, "tcp", peer)
                    ans = self.script(query, "tcp")
                    if ans is not None:
                        threading.Thread(target=self._send_tcp, args=(conn, wlock, ans),
                                         daemon=True).start()
        except OSError:
            pass
        finally:
            # answers still sleeping get an error when they write; they ignore it
            conn.close()

    def _send_tcp(self, conn, wlock, ans):
        if ans.delay:
            time.sleep(ans.delay)
        if ans.wire is None or self.stopping:
            return
        with wlock:
            try:
                conn.sendall(struct.pack("!H", len(ans.wire)) + ans.wire)
            except OSError:
                pass

    def close(self):
        self.stopping = True
        for t in self.threads:
            t.join(timeout=2)
        for s in (self.udp, self.tcp, self.other):
            s.close()
