# SPDX-License-Identifier: GPL-2.0-or-later
"""Tests of the test Kubernetes API server itself (tests/kubeapi/kubeapi.py): paging with
continue, bearer tokens and their rotation, TLS with the throw-away CA and client certificates,
watch framing (objects split across chunks, several events per chunk), bookmarks, the 410
variants, dropped, stalled and paused connections, stop/start on the same port, injected faults
and the CLI. The protocol is pinned against the real client: kubectl must list what the server
holds and print a watch event (packaging/dev.sh installs kubectl where none is: Debian's
kubernetes-client).
"""

import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest

from conftest import TOP, missing_tool, wait_until

sys.path.insert(0, str(TOP / "tests" / "kubeapi"))
from kubeapi import TRIGGER_TIME  # noqa: E402

KUBEAPI_PY = TOP / "tests" / "kubeapi" / "kubeapi.py"
SAMPLES = TOP.parent / "shared" / "k8s-samples"


def svc(name, ns="default", ip="10.0.0.1"):
    return {"kind": "Service", "apiVersion": "v1", "metadata": {"name": name, "namespace": ns},
            "spec": {"clusterIP": ip, "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}


def namespace(name):
    return {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": name}}


def slice_obj(name, ns="default", ips=("10.1.0.1",)):
    return {"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
            "metadata": {"name": name, "namespace": ns,
                         "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips],
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}


def cluster(n=7):
    objs = [namespace("default"), namespace("apps")]
    objs += [svc(f"svc-{i:02d}", "apps" if i % 2 else "default", f"10.0.0.{i + 1}")
             for i in range(n)]
    objs += [slice_obj(f"svc-{i:02d}", "apps" if i % 2 else "default", (f"10.1.0.{i + 1}",))
             for i in range(n)]
    return objs


def ssl_ctx(api, cert=None):
    ctx = ssl.create_default_context(cafile=api.ca_file)
    if cert:
        ctx.load_cert_chain(*cert)
    return ctx


def request(api, path, token=None, ctx=None, timeout=5, host="127.0.0.1"):
    """GET path with http.client; returns (status, headers, body bytes)."""
    if api.url.startswith("https"):
        c = http.client.HTTPSConnection(host, api.port, timeout=timeout,
                                        context=ctx or ssl_ctx(api))
    else:
        c = http.client.HTTPConnection(host, api.port, timeout=timeout)
    try:
        hdrs = {"Authorization": f"Bearer {token}"} if token else {}
        c.request("GET", path, headers=hdrs)
        r = c.getresponse()
        return r.status, r.headers, r.read()
    finally:
        c.close()


def get_json(api, path, token=None, **kw):
    st, _, body = request(api, path, token, **kw)
    return st, json.loads(body)


class RawWatch:
    """A watch read over a raw socket so the chunk boundaries stay visible: chunks lists the
    chunk payloads, events() frames the concatenated payload by JSON object."""

    def __init__(self, api, path, token=None, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", api.port), timeout=timeout)
        if api.url.startswith("https"):
            self.sock = ssl_ctx(api).wrap_socket(self.sock, server_hostname="127.0.0.1")
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}"
                          "Accept: application/json\r\n\r\n".encode())
        self.buf = b""
        self.chunks = []
        self.ended = False      # terminating chunk seen
        self.closed = False     # connection closed
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}

    def _fill(self):
        d = self.sock.recv(65536)
        if not d:
            self.closed = True
            raise EOFError("connection closed")
        self.buf += d

    def read_chunk(self):
        """One chunk's payload; b"" for the terminating chunk; EOFError on an abrupt close."""
        while b"\r\n" not in self.buf:
            self._fill()
        size_line, self.buf = self.buf.split(b"\r\n", 1)
        size = int(size_line.split(b";")[0], 16)
        while len(self.buf) < size + 2:
            self._fill()
        data, self.buf = self.buf[:size], self.buf[size + 2:]
        if size == 0:
            self.ended = True
        else:
            self.chunks.append(data)
        return data

    def events(self):
        dec = json.JSONDecoder()
        text, pos, out = b"".join(self.chunks).decode(), 0, []
        while True:
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos >= len(text):
                return out
            try:
                obj, pos = dec.raw_decode(text, pos)
            except ValueError:
                return out      # an incomplete object at the end
            out.append(obj)

    def wait_events(self, n, timeout=5.0):
        deadline = time.monotonic() + timeout
        while len(self.events()) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {n} events; got {self.events()}")
            if self.read_chunk() == b"":
                break
        return self.events()

    def read_to_end(self, timeout=5.0):
        """Read until the terminating chunk or a close; returns 'ended' or 'closed'."""
        deadline = time.monotonic() + timeout
        try:
            while self.read_chunk() != b"":
                assert time.monotonic() < deadline, "stream did not end"
        except (EOFError, ConnectionResetError):
            return "closed"
        return "ended"

    def close(self):
        self.sock.close()


@pytest.fixture
def watches():
    made = []

    def make(*a, **kw):
        w = RawWatch(*a, **kw)
        made.append(w)
        return w
    yield make
    for w in made:
        w.close()


def list_rv(api, path, token=None):
    st, body = get_json(api, path, token)
    assert st == 200, body
    return body["metadata"]["resourceVersion"]


# -- lists ------------------------------------------------------------------------------------

def test_list_shapes(kubeapi):
    api = kubeapi(objects=cluster(3))
    for path, kind, n in [("/api/v1/services", "ServiceList", 3),
                          ("/api/v1/namespaces", "NamespaceList", 2),
                          ("/apis/discovery.k8s.io/v1/endpointslices", "EndpointSliceList", 3),
                          ("/api/v1/namespaces/apps/services", "ServiceList", 1),
                          ("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
                           "EndpointSliceList", 2),
                          ("/api/v1/pods", "PodList", 0)]:
        st, hdrs, body = request(api, path)
        assert st == 200 and hdrs["Content-Type"] == "application/json", (path, st)
        doc = json.loads(body)
        assert doc["kind"] == kind and doc["metadata"]["resourceVersion"].isdigit(), doc
        assert "continue" not in doc["metadata"]
        assert len(doc["items"]) == n, (path, doc)
        for it in doc["items"]:
            assert it["metadata"]["resourceVersion"].isdigit() and it["metadata"]["uid"]
    st, one = get_json(api, "/api/v1/namespaces/apps/services/svc-01")
    assert st == 200 and one["kind"] == "Service" and one["spec"]["clusterIP"] == "10.0.0.2"
    st, nf = get_json(api, "/api/v1/namespaces/apps/services/nope")
    assert st == 404 and nf["kind"] == "Status" and nf["reason"] == "NotFound"
    st, nf = get_json(api, "/api/v1/nothing")
    assert st == 404 and nf["code"] == 404
    assert api.stats["unknown_paths"] == 1


def test_paging_with_continue(kubeapi):
    api = kubeapi(objects=cluster(7), page_size=3)
    names, pages, cont, rvs = [], 0, None, set()
    while True:
        path = "/api/v1/services?limit=2" + (f"&continue={cont}" if cont else "")
        st, doc = get_json(api, path)
        assert st == 200, doc
        pages += 1
        assert len(doc["items"]) <= 2
        names += [(it["metadata"]["namespace"], it["metadata"]["name"]) for it in doc["items"]]
        rvs.add(doc["metadata"]["resourceVersion"])
        cont = doc["metadata"].get("continue")
        if pages == 1:
            # a change after the first page does not show up in the rest of this list
            api.apply(svc("svc-99"))
        if not cont:
            break
    assert pages == 4 and names == sorted(names) and len(names) == 7, names
    assert ("default", "svc-99") not in names and len(rvs) == 1
    # the server's page_size caps a larger limit
    st, doc = get_json(api, "/api/v1/services?limit=100")
    assert len(doc["items"]) == 3 and doc["metadata"]["continue"]
    assert api.stats["lists"] == 2 and api.stats["list_pages"] == 5


def test_continue_after_expire_is_410(kubeapi):
    api = kubeapi(objects=cluster(5), page_size=2)
    st, doc = get_json(api, "/api/v1/services?limit=2")
    cont = doc["metadata"]["continue"]
    api.expire()
    st, doc = get_json(api, f"/api/v1/services?limit=2&continue={cont}")
    assert st == 410 and doc["kind"] == "Status" and doc["code"] == 410
    assert doc["reason"] == "Expired"
    st, doc = get_json(api, "/api/v1/services?limit=2&continue=bogus")
    assert st == 410


# -- auth ---------------------------------------------------------------------------------------

def test_token_and_rotation(kubeapi):
    api = kubeapi(objects=cluster(2), token="s3cret")
    assert api.token == "s3cret"
    for tok in (None, "wrong"):
        st, doc = get_json(api, "/api/v1/services", tok)
        assert st == 401 and doc["kind"] == "Status" and doc["reason"] == "Unauthorized"
        assert doc["code"] == 401
    assert get_json(api, "/api/v1/services", "s3cret")[0] == 200
    api.set_token("rotated")
    assert api.token == "rotated"
    assert get_json(api, "/api/v1/services", "s3cret")[0] == 401
    assert get_json(api, "/api/v1/services", "rotated")[0] == 200
    assert api.stats["unauthorized"] == 3


# -- watches --------------------------------------------------------------------------------

def test_watch_framing_splits_objects(kubeapi, watches):
    api = kubeapi(objects=cluster(2), token="t")
    rv = list_rv(api, "/api/v1/services", "t")
    w = watches(api, f"/api/v1/services?watch=1&resourceVersion={rv}&timeoutSeconds=30", "t")
    assert w.status == 200 and w.headers["transfer-encoding"] == "chunked"
    assert w.headers["content-type"] == "application/json"
    for i in range(20):
        api.apply(svc(f"new-{i:02d}", ip=f"10.9.0.{i + 1}"))
    api.delete("Service", "default", "new-00")
    evs = w.wait_events(21)
    assert [e["type"] for e in evs] == ["ADDED"] * 20 + ["DELETED"]
    assert [e["object"]["metadata"]["name"] for e in evs[:20]] == [f"new-{i:02d}"
                                                                    for i in range(20)]
    assert all(e["object"]["kind"] == "Service" and e["object"]["apiVersion"] == "v1"
               for e in evs)
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in evs]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)
    # the client side saw a chunk that does not hold whole events: a boundary inside an object
    dec = json.JSONDecoder()

    def whole(c):
        text = c.decode(errors="replace").strip()
        try:
            pos = 0
            while pos < len(text):
                _, pos = dec.raw_decode(text, pos)
                while pos < len(text) and text[pos].isspace():
                    pos += 1
            return True
        except ValueError:
            return False
    assert any(not whole(c) for c in w.chunks), w.chunks
    assert api.stats["split_objects"] > 0 and api.stats["watch_events_sent"] >= 21


def test_watch_several_events_per_chunk(kubeapi, watches):
    api = kubeapi(objects=cluster(1))
    rv = list_rv(api, "/api/v1/services")
    for i in range(30):
        api.apply(svc(f"burst-{i:02d}"))
    # the events are retained, so the watch replays them at once: they share chunks
    w = watches(api, f"/api/v1/services?watch=true&resourceVersion={rv}")
    evs = w.wait_events(30)
    assert [e["object"]["metadata"]["name"] for e in evs] == [f"burst-{i:02d}" for i in range(30)]
    assert any(c.count(b"}\n{") >= 1 for c in w.chunks), w.chunks
    assert api.stats["multi_event_chunks"] >= 1


def test_watch_namespaced_and_from_zero(kubeapi, watches):
    api = kubeapi(objects=cluster(4))
    w = watches(api, "/api/v1/namespaces/apps/services?watch=1&resourceVersion=0")
    evs = w.wait_events(2)
    assert {e["object"]["metadata"]["name"] for e in evs} == {"svc-01", "svc-03"}
    assert all(e["type"] == "ADDED" for e in evs)
    api.apply(svc("other", ns="default"))
    api.apply(svc("mine", ns="apps"))
    evs = w.wait_events(3)
    assert evs[2]["object"]["metadata"]["name"] == "mine" and len(w.events()) == 3


def test_watch_timeout_ends_cleanly(kubeapi, watches):
    api = kubeapi(objects=cluster(1))
    rv = list_rv(api, "/api/v1/services")
    t0 = time.monotonic()
    w = watches(api, f"/api/v1/services?watch=1&resourceVersion={rv}&timeoutSeconds=1")
    assert w.read_to_end(timeout=5) == "ended"
    assert 0.9 <= time.monotonic() - t0 < 4
    wait_until(lambda: api.stats["watches_open"] == 0, 3, what="watch to close")


def test_bookmark(kubeapi, watches):
    api = kubeapi(objects=cluster(2))
    rv = list_rv(api, "/apis/discovery.k8s.io/v1/endpointslices")
    wb = watches(api, "/apis/discovery.k8s.io/v1/endpointslices?watch=1&allowWatchBookmarks=true"
                 f"&resourceVersion={rv}")
    wn = watches(api, f"/apis/discovery.k8s.io/v1/endpointslices?watch=1&resourceVersion={rv}")
    wait_until(lambda: api.stats["watches_open"] == 2, 3, what="two watches")
    api.apply(svc("unrelated"))     # bumps the global resourceVersion
    api.bookmark()
    api.apply(slice_obj("after"))
    evs = wb.wait_events(2)
    assert evs[0]["type"] == "BOOKMARK"
    assert evs[0]["object"]["kind"] == "EndpointSlice"
    assert int(evs[0]["object"]["metadata"]["resourceVersion"]) == int(rv) + 1
    assert evs[1]["type"] == "ADDED"
    evs = wn.wait_events(1)
    assert [e["type"] for e in evs] == ["ADDED"]


def test_periodic_bookmarks(kubeapi, watches):
    api = kubeapi(objects=cluster(1), bookmark_interval=0.3)
    rv = list_rv(api, "/api/v1/services")
    w = watches(api, f"/api/v1/services?watch=1&allowWatchBookmarks=1&resourceVersion={rv}")
    evs = w.wait_events(2, timeout=5)
    assert [e["type"] for e in evs] == ["BOOKMARK", "BOOKMARK"]
    assert evs[1]["object"]["metadata"]["resourceVersion"] == rv


def test_endpointslice_trigger_time(kubeapi):
    api = kubeapi()
    before = time.time()
    got = api.apply(slice_obj("s"))
    stamp = got["metadata"]["annotations"][TRIGGER_TIME]
    import datetime
    t = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")
    t = t.replace(tzinfo=datetime.timezone.utc).timestamp()
    assert before - 1 <= t <= time.time() + 1 and "." in stamp
    obj = slice_obj("k")
    obj["metadata"]["annotations"] = {TRIGGER_TIME: "2020-01-01T00:00:00.5Z"}
    got = api.apply(obj)
    assert got["metadata"]["annotations"][TRIGGER_TIME] == "2020-01-01T00:00:00.5Z"


# -- 410 -----------------------------------------------------------------------------------------

def test_expire_open_watch_gets_error_event(kubeapi, watches):
    api = kubeapi(objects=cluster(2))
    rv = list_rv(api, "/api/v1/services")
    w = watches(api, f"/api/v1/services?watch=1&resourceVersion={rv}")
    wait_until(lambda: api.stats["watches_open"] == 1, 3, what="watch open")
    api.expire()
    evs = w.wait_events(1)
    assert evs[0]["type"] == "ERROR" and evs[0]["object"]["code"] == 410
    assert evs[0]["object"]["kind"] == "Status" and evs[0]["object"]["reason"] == "Expired"
    assert w.read_to_end() == "ended"


def test_expire_new_watch_from_old_rv(kubeapi, watches):
    api = kubeapi(objects=cluster(2))
    old = list_rv(api, "/api/v1/services")
    api.expire()
    w = watches(api, f"/api/v1/services?watch=1&resourceVersion={old}")
    assert w.status == 200
    evs = w.wait_events(1)
    assert evs[0]["type"] == "ERROR" and evs[0]["object"]["code"] == 410
    assert w.read_to_end() == "ended"
    # a re-list gives a resourceVersion that can be watched again
    new = list_rv(api, "/api/v1/services")
    assert new != old
    w2 = watches(api, f"/api/v1/services?watch=1&resourceVersion={new}")
    api.apply(svc("fresh"))
    evs = w2.wait_events(1)
    assert evs[0]["type"] == "ADDED" and evs[0]["object"]["metadata"]["name"] == "fresh"


def test_expire_as_http_status(kubeapi):
    api = kubeapi(objects=cluster(2))
    old = list_rv(api, "/api/v1/services")
    api.expire(as_status=True)
    st, doc = get_json(api, f"/api/v1/services?watch=1&resourceVersion={old}")
    assert st == 410 and doc["kind"] == "Status" and doc["code"] == 410
    assert api.stats["expired_410"] == 1


def test_watch_replays_retained_events(kubeapi, watches):
    api = kubeapi(objects=cluster(2))
    rv = list_rv(api, "/api/v1/services")
    api.apply(svc("a"))
    mid = api.resource_version
    api.apply(svc("b"))
    api.delete("Service", "default", "a")
    w = watches(api, f"/api/v1/services?watch=1&resourceVersion={mid}")
    evs = w.wait_events(2)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in evs] == [
        ("ADDED", "b"), ("DELETED", "a")]
    assert int(evs[1]["object"]["metadata"]["resourceVersion"]) > int(rv)


# -- connection faults -----------------------------------------------------------------------

def test_drop_watches_closes_abruptly(kubeapi, watches):
    api = kubeapi(objects=cluster(2))
    rv = list_rv(api, "/api/v1/services")
    w = watches(api, f"/api/v1/services?watch=1&resourceVersion={rv}")
    wait_until(lambda: api.stats["watches_open"] == 1, 3, what="watch open")
    api.drop_watches()
    assert w.read_to_end() == "closed" and not w.ended


def test_stop_start_same_port(kubeapi, watches):
    api = kubeapi(objects=cluster(2))
    port, url = api.port, api.url
    rv = list_rv(api, "/api/v1/services")
    w = watches(api, f"/api/v1/services?watch=1&resourceVersion={rv}")
    wait_until(lambda: api.stats["watches_open"] == 1, 3, what="watch open")
    api.stop()
    assert w.read_to_end() == "closed"
    with pytest.raises(OSError):
        request(api, "/api/v1/services", timeout=2)
    api.apply(svc("while-down"))
    api.start()
    assert api.port == port and api.url == url
    st, doc = get_json(api, "/api/v1/services")
    assert st == 200 and "while-down" in [i["metadata"]["name"] for i in doc["items"]]


def test_stall_and_pause(kubeapi):
    api = kubeapi(objects=cluster(1))
    api.stall(0.6)
    t0 = time.monotonic()
    assert request(api, "/api/v1/services")[0] == 200
    assert time.monotonic() - t0 >= 0.5
    api.stall(0.8, count=1)
    t0 = time.monotonic()
    request(api, "/api/v1/services")
    assert time.monotonic() - t0 >= 0.75
    t0 = time.monotonic()
    request(api, "/api/v1/services")
    assert time.monotonic() - t0 < 0.75
    api.pause()
    with pytest.raises(socket.timeout):
        request(api, "/api/v1/services", timeout=0.5)
    result = {}
    th = threading.Thread(target=lambda: result.update(r=request(api, "/api/v1/services")))
    th.start()
    api.resume()
    th.join(5)
    assert result["r"][0] == 200


def test_slow(kubeapi):
    api = kubeapi(objects=cluster(40))
    size = len(request(api, "/api/v1/services")[2])
    api.slow(size / 0.8)
    t0 = time.monotonic()
    st, _, body = request(api, "/api/v1/services")
    assert st == 200 and len(body) == size and time.monotonic() - t0 >= 0.7
    api.slow(None)
    t0 = time.monotonic()
    request(api, "/api/v1/services")
    assert time.monotonic() - t0 < 0.7


# -- injected faults ---------------------------------------------------------------------------

def test_inject_list_faults(kubeapi):
    api = kubeapi(objects=cluster(2))
    api.inject("services", "error-500")
    st, doc = get_json(api, "/api/v1/services")
    assert st == 500 and doc["code"] == 500
    api.inject("Service", "garbage")
    st, _, body = request(api, "/api/v1/services")
    with pytest.raises(ValueError):
        json.loads(body)
    api.inject("svc", "no-metadata")
    st, doc = get_json(api, "/api/v1/services")
    assert any("metadata" not in it for it in doc["items"])
    api.inject("services", "truncated")
    with pytest.raises(http.client.IncompleteRead):
        request(api, "/api/v1/services")
    api.inject("services", "reset")
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        request(api, "/api/v1/services")
    # injections are per collection and one-shot
    api.inject("namespaces", "error-500")
    assert get_json(api, "/api/v1/services")[0] == 200
    assert get_json(api, "/api/v1/namespaces")[0] == 500
    assert get_json(api, "/api/v1/namespaces")[0] == 200
    assert api.stats["injected"] == 6


def test_inject_watch_faults(kubeapi, watches):
    api = kubeapi(objects=cluster(2))
    rv = list_rv(api, "/api/v1/services")
    path = f"/api/v1/services?watch=1&resourceVersion={rv}"
    api.inject("services", "unknown-event")
    assert list_rv(api, "/api/v1/services")     # a list does not consume a watch injection
    w = watches(api, path)
    assert w.wait_events(1)[0]["type"] == "FOO"
    api.inject("services", "no-metadata", target="open")
    ev = w.wait_events(2)[1]
    assert ev["type"] == "ADDED" and "metadata" not in ev["object"]
    api.inject("services", "garbage", target="watch")
    wg = watches(api, path)
    wg.read_chunk()
    with pytest.raises(ValueError):
        json.loads(b"".join(wg.chunks))
    api.inject("services", "truncated", target="watch")
    wt = watches(api, path)
    assert wt.read_to_end() == "closed" and wt.events() == [] and wt.chunks


def test_inject_huge_is_streamed_lazily(kubeapi, watches):
    api = kubeapi(objects=cluster(1))
    rv = list_rv(api, "/api/v1/services")
    api.inject("services", "huge", target="watch")
    w = watches(api, f"/api/v1/services?watch=1&resourceVersion={rv}")
    got = 0
    while got < 32 << 20:
        got += len(w.read_chunk())
    w.close()
    api.inject("services", "huge", target="list")
    c = http.client.HTTPConnection("127.0.0.1", api.port, timeout=5)
    c.request("GET", "/api/v1/services")
    r = c.getresponse()
    assert r.status == 200 and r.headers["Transfer-Encoding"] == "chunked"
    assert r.read(16 << 20).startswith(b'{"kind":"ServiceList"')
    c.close()
    # the server keeps serving (its writer threads notice the clients left)
    assert get_json(api, "/api/v1/services")[0] == 200


# -- TLS -------------------------------------------------------------------------------------

def test_tls_ca_hostnames_and_client_certs(kubeapi):
    api = kubeapi(objects=cluster(2), tls=True, token="tok")
    assert api.url.startswith("https://127.0.0.1:") and os.path.exists(api.ca_file)
    for host in ("127.0.0.1", "localhost"):
        assert request(api, "/api/v1/services", "tok", host=host)[0] == 200
    other_crt, other_key = api.make_other_ca()
    with pytest.raises(ssl.SSLCertVerificationError):
        request(api, "/api/v1/services", "tok", ctx=ssl.create_default_context(cafile=other_crt))
    # a client certificate signed by the CA authenticates without a token
    cert = api.make_client_cert("kubemasq")
    assert request(api, "/api/v1/services", ctx=ssl_ctx(api, cert))[0] == 200
    assert request(api, "/api/v1/services")[0] == 401
    # ...one from another CA is refused in the handshake
    bad = api.make_client_cert("intruder", ca=(other_crt, other_key))
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        request(api, "/api/v1/services", ctx=ssl_ctx(api, bad))
    api.client_ca_required(True)
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        request(api, "/api/v1/services", "tok")
    assert request(api, "/api/v1/services", ctx=ssl_ctx(api, cert))[0] == 200
    api.client_ca_required(False)
    assert request(api, "/api/v1/services", "tok")[0] == 200


def test_ipv6(kubeapi):
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    api = kubeapi(objects=cluster(1), host="::1")
    assert api.url.startswith("http://[::1]:")
    c = http.client.HTTPConnection("::1", api.port, timeout=5)
    c.request("GET", "/api/v1/services")
    assert json.loads(c.getresponse().read())["kind"] == "ServiceList"
    c.close()


# -- CLI ----------------------------------------------------------------------------------------

def test_cli_ready_control_and_sigterm(tmp_path):
    objs = tmp_path / "objs.json"
    objs.write_text(json.dumps({"kind": "List", "apiVersion": "v1", "items": cluster(2)}))
    proc = subprocess.Popen(["/usr/bin/python3", str(KUBEAPI_PY), "--objects", str(objs),
                             "--tls", "--token", "T", "--page-size", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().split()
        assert line[0] == "READY" and line[1].startswith("https://127.0.0.1:"), line
        url, ca = line[1], line[2]
        ctx = ssl.create_default_context(cafile=ca)
        port = int(url.rsplit(":", 1)[1])

        def call(method, path, body=None, token=None):
            c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
            hdrs = {"Authorization": f"Bearer {token}"} if token else {}
            c.request(method, path, body=body, headers=hdrs)
            r = c.getresponse()
            out = (r.status, json.loads(r.read()))
            c.close()
            return out
        st, doc = call("GET", "/api/v1/services?limit=10", token="T")
        assert st == 200 and len(doc["items"]) == 1 and doc["metadata"]["continue"]
        st, res = call("POST", "/_test/apply", json.dumps([svc("cli-1"), svc("cli-2")]))
        assert st == 200 and res["applied"] == 2
        st, res = call("POST", "/_test/delete",
                       json.dumps({"kind": "Service", "namespace": "default", "name": "cli-1"}))
        assert res["deleted"] == 1
        call("POST", "/_test/token?token=U")
        assert call("GET", "/api/v1/services", token="T")[0] == 401
        st, doc = call("GET", "/api/v1/services", token="U")
        names = [i["metadata"]["name"] for i in doc["items"]]
        assert "cli-2" in names and "cli-1" not in names
        st, stats = call("GET", "/_test/stats")
        assert stats["unauthorized"] == 1 and stats["lists"] == 2
        assert call("POST", "/_test/nope")[0] == 404
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert not os.path.exists(ca)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- against the real client ------------------------------------------------------------------

def kubectl_base(api, tmp_path, token=None):
    if shutil.which("kubectl") is None:
        missing_tool("kubectl is not installed (Debian's kubernetes-client has it)")
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = dict(os.environ, HOME=str(home), KUBECONFIG="/dev/null")
    args = ["kubectl", "--kubeconfig=/dev/null", f"--server={api.url}",
            f"--cache-dir={home / 'cache'}"]
    if token:
        args.append(f"--token={token}")
    if api.ca_file:
        args.append(f"--certificate-authority={api.ca_file}")
    return args, env


def names_of(items):
    return sorted((i["metadata"].get("namespace", ""), i["metadata"]["name"]) for i in items)


@pytest.mark.parametrize("tls", [True, False])
def test_kubectl_lists(kubeapi, tmp_path, tls):
    objs = cluster(7)
    # kubectl sends no bearer token over plain http: that variant is the `kubectl proxy` shape
    token = "kt" if tls else None
    api = kubeapi(objects=objs, tls=tls, token=token, page_size=3)
    base, env = kubectl_base(api, tmp_path, token)
    for res, kind in [("services", "Service"), ("namespaces", "Namespace"),
                      ("endpointslices", "EndpointSlice")]:
        r = subprocess.run(base + ["get", res, "-A", "-o", "json"], env=env,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        got = json.loads(r.stdout)["items"]
        want = [o for o in objs if o["kind"] == kind]
        assert names_of(got) == names_of(want), (res, got)
        assert all(i["kind"] == kind for i in got)
    # paging was used (page_size 3 < 7 services)
    assert api.stats["list_pages"] > api.stats["lists"]
    r = subprocess.run(base + ["get", "service", "-n", "apps", "svc-03", "-o", "json"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and json.loads(r.stdout)["spec"]["clusterIP"] == "10.0.0.4"
    # a wrong token is refused the way kubectl understands
    if not tls:
        return
    api.set_token("other")
    r = subprocess.run(base + ["get", "services", "-A", "-o", "json"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "nauthorized" in r.stderr, r.stderr


def test_kubectl_wrong_ca_refused(kubeapi, tmp_path):
    api = kubeapi(objects=cluster(1), tls=True, token="kt")
    base, env = kubectl_base(api, tmp_path, "kt")
    other, _ = api.make_other_ca()
    base = [a for a in base if not a.startswith("--certificate-authority")]
    r = subprocess.run(base + [f"--certificate-authority={other}", "get", "services", "-A",
                               "-o", "json"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "certificate" in r.stderr, r.stderr


def test_kubectl_kubeconfig_client_cert(kubeapi, tmp_path):
    api = kubeapi(objects=cluster(3), tls=True, token="unused")
    base, env = kubectl_base(api, tmp_path)
    cert, key = api.make_client_cert("kubemasq")
    kc = tmp_path / "kubeconfig"
    kc.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "t",
        "clusters": [{"name": "c", "cluster": {"server": api.url,
                                               "certificate-authority": api.ca_file}}],
        "users": [{"name": "u", "user": {"client-certificate": cert, "client-key": key}}],
        "contexts": [{"name": "t", "context": {"cluster": "c", "user": "u"}}]}))
    api.client_ca_required(True)
    r = subprocess.run(["kubectl", f"--kubeconfig={kc}",
                        f"--cache-dir={tmp_path / 'home' / 'cache'}", "get", "services", "-A",
                        "-o", "json"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["items"]) == 3


def test_kubectl_watch(kubeapi, tmp_path):
    api = kubeapi(objects=cluster(3), tls=True, token="kt")
    base, env = kubectl_base(api, tmp_path, "kt")
    proc = subprocess.Popen(base + ["get", "services", "-A", "--watch", "-o", "json"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = bytearray()

    def reader():
        for chunk in iter(lambda: proc.stdout.read1(65536), b""):
            out.extend(chunk)
    th = threading.Thread(target=reader, daemon=True)
    th.start()
    try:
        wait_until(lambda: api.stats["watches_open"] >= 1 or proc.poll() is not None, 30,
                   what="kubectl to open its watch")
        assert proc.poll() is None, proc.stderr.read().decode()
        api.apply(svc("seen-by-kubectl", ns="apps", ip="10.7.7.7"))
        api.bookmark()
        api.apply(svc("seen-by-kubectl", ns="apps", ip="10.7.7.8"))

        def objects():
            dec, text, pos, res = json.JSONDecoder(), out.decode(errors="replace"), 0, []
            while True:
                while pos < len(text) and text[pos].isspace():
                    pos += 1
                try:
                    o, pos = dec.raw_decode(text, pos)
                except ValueError:
                    return res
                res.append(o)
        got = wait_until(lambda: [o for o in objects()
                                  if o["metadata"]["name"] == "seen-by-kubectl"
                                  and o["spec"]["clusterIP"] == "10.7.7.8"], 20,
                         what="kubectl to print the applied object")
        assert got[0]["kind"] == "Service"
        assert {o["metadata"]["name"] for o in objects()} >= {"svc-00", "svc-01", "svc-02"}
        assert api.stats["split_objects"] > 0
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        th.join(5)
