#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A test Kubernetes API server that speaks the real list/watch protocol, for the integration
tests and benchmarks of kubemasq's live-cluster source. It serves namespaces, services, pods,
endpoints and discovery.k8s.io/v1 endpointslices over HTTP or HTTPS (throw-away CA made with the
openssl CLI), checks a bearer token (or a client certificate), pages lists with opaque
`continue` tokens, and streams chunked watches whose JSON objects are deliberately split across
chunk boundaries. Tests drive it from Python (apply/delete/expire/bookmark/drop/stall/inject)
or, when run as a CLI, through POST /_test/... endpoints (see README.md next to this file).

Only the standard library; run with /usr/bin/python3. Thread-safe: one thread per connection,
one lock around the store and the list of open watches.
"""

import argparse
import base64
import collections
import datetime
import http.server
import json
import os
import queue
import random
import shutil
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

# plural -> (groupVersion, kind, namespaced, shortNames)
RESOURCES = {
    "namespaces": ("v1", "Namespace", False, ["ns"]),
    "services": ("v1", "Service", True, ["svc"]),
    "pods": ("v1", "Pod", True, ["po"]),
    "endpoints": ("v1", "Endpoints", True, ["ep"]),
    "endpointslices": ("discovery.k8s.io/v1", "EndpointSlice", True, []),
}
KIND_TO_RESOURCE = {v[1]: k for k, v in RESOURCES.items()}
TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"
HUGE_SIZE = 2 * 1024 * 1024 * 1024
SNAPSHOT_CAP = 64          # continue tokens kept alive at once (each a list of references)
LOG_CAP = 200000           # watch events retained for replay; older ones are compacted away
REQUEST_LOG_CAP = 10000    # requests remembered for api.requests()
INJECTIONS = ("garbage", "truncated", "huge", "unknown-event", "no-metadata", "error-500",
              "reset", "expired", "no-items")
# What kube-apiserver (storage/etcd3) answers a continue token older than the last compaction:
# HTTP 410, reason Expired, this message. Newer servers append "..., or use the continue
# token in this response to retrieve the remainder of the results" and put such an
# (inconsistent) token in the Status's metadata; this server offers none, so it keeps the
# older wording, which promises none.
CONTINUE_EXPIRED_MSG = ("The provided continue parameter is too old to display a consistent "
                        "list result. You can start a new list without the continue "
                        "parameter.")


def now_rfc3339(frac=True):
    t = datetime.datetime.now(datetime.timezone.utc)
    if frac:
        return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def status_json(code, reason, message):
    """The metav1.Status body the real server sends for errors (and inside ERROR events)."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def dumps(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def resource_of(kind_or_plural):
    """Accept "services", "Service" or "svc" and return the plural resource name."""
    if kind_or_plural in RESOURCES:
        return kind_or_plural
    if kind_or_plural in KIND_TO_RESOURCE:
        return KIND_TO_RESOURCE[kind_or_plural]
    for plural, (_, kind, _, short) in RESOURCES.items():
        if kind_or_plural.lower() in (kind.lower(), *short):
            return plural
    raise KeyError(f"unknown resource or kind {kind_or_plural!r}")


class _Entry:
    """One stored object: its list-item JSON (no kind/apiVersion, like the real server's list
    items) and its full JSON (with them, as in GET and watch events). Serialised once."""
    __slots__ = ("item", "full")

    def __init__(self, item, gv, kind):
        self.item = item
        prefix = b'{"kind":"%s","apiVersion":"%s"' % (kind.encode(), gv.encode())
        self.full = prefix + (b"," + item[1:] if item != b"{}" else b"}")


class _Watch:
    """An open watch: its filter, its queue of things for its handler thread to send."""

    def __init__(self, resource, namespace, bookmarks, sock):
        self.resource = resource
        self.namespace = namespace
        self.bookmarks = bookmarks
        self.sock = sock
        self.q = queue.Queue()
        self.rng = random.Random()
        self.batches = 0
        self.last_bookmark = time.monotonic()
        self.start_rv = 0


def _event_line(etype, full):
    return b'{"type":"%s","object":' % etype.encode() + full + b"}\n"


def _hard_shutdown(sock):
    """Shut a (possibly TLS) socket down under its handler thread's feet, without touching the
    SSL object another thread may be using."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


# -- certificates ---------------------------------------------------------------------------

def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _make_ca(d, name="ca", cn="kubeapi-test-ca"):
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "3",
             "-subj", f"/CN={cn}", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    return os.path.join(d, f"{name}.crt"), os.path.join(d, f"{name}.key")


def _make_leaf(d, name, subj, ext, ca_crt, ca_key):
    """A key and a certificate signed by the CA, with the extensions in `ext` (lines)."""
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write("\n".join(ext) + "\n")
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subj, cwd=d)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", ca_crt, "-CAkey", ca_key,
             "-set_serial", "0x%x" % random.getrandbits(63), "-days", "3",
             "-out", f"{name}.crt", "-extfile", f"{name}.ext", cwd=d)
    return os.path.join(d, f"{name}.crt"), os.path.join(d, f"{name}.key")


# -- HTTP -------------------------------------------------------------------------------------

class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def server_bind(self):
        # HTTPServer.server_bind calls getfqdn(), a DNS lookup that may leave the machine.
        socketserver.TCPServer.server_bind(self)
        self.server_name = self.server_address[0]
        self.server_port = self.server_address[1]

    def handle_error(self, request, client_address):
        self.api._count("handler_errors")
        if self.api.verbose:
            super().handle_error(request, client_address)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kubeapi-test/1"

    def version_string(self):
        return self.server_version

    def setup(self):
        self.api = self.server.api
        self.peer_cn = None
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.api._track(self.request, True)
        if self.api._ssl_ctx is not None:
            raw = self.request
            raw.settimeout(10)
            try:
                self.request = self.api._ssl_ctx.wrap_socket(raw, server_side=True)
            except (ssl.SSLError, OSError):
                self.api._count("tls_handshake_failures")
                self.api._track(raw, False)
                raise
            self.request.settimeout(None)
            self.api._track(raw, False)
            self.api._track(self.request, True)
            cert = self.request.getpeercert()
            if cert:
                for rdn in cert.get("subject", ()):
                    for k, v in rdn:
                        if k == "commonName":
                            self.peer_cn = v
        super().setup()

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass
        self.api._track(self.request, False)

    def log_message(self, fmt, *args):
        if self.api.verbose:
            sys.stderr.write("kubeapi: %s %s\n" % (self.address_string(), fmt % args))

    # -- responses --

    def send_response(self, code, message=None):
        if getattr(self, "req_entry", None) is not None:
            self.req_entry["code"] = code
        super().send_response(code, message)

    def send_body(self, code, body, ctype="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.out(body)

    def send_json(self, code, obj):
        self.send_body(code, dumps(obj))

    def send_status(self, code, reason, message):
        self.send_json(code, status_json(code, reason, message))

    def start_chunked(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()

    def chunk(self, data):
        self.out(b"%x\r\n" % len(data) + data + b"\r\n")

    def end_chunked(self):
        self.out(b"0\r\n\r\n")

    def out(self, data):
        """Write, at the throttled rate when api.slow() is on (a slow server or network)."""
        bps = self.api._slow_bps
        if not bps:
            self.wfile.write(data)
            return
        step = max(1, int(bps / 20))
        for i in range(0, len(data), step):
            self.wfile.write(data[i:i + step])
            time.sleep(len(data[i:i + step]) / bps)

    def drop(self):
        """Close the connection abruptly: no terminating chunk, no more requests."""
        self.close_connection = True
        _hard_shutdown(self.request)

    # -- dispatch --

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def dispatch(self, method):
        url = urllib.parse.urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        q = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        if path.startswith("/_test/"):
            return self.api._control(self, method, path, q)
        self.req_entry = self.api._log_request(method, path, q)
        self.api._count_path(path)
        self.api._wait_request_gate()
        if not self.api._authorized(self):
            self.api._count("unauthorized")
            return self.send_status(401, "Unauthorized", "Unauthorized")
        if method != "GET":
            self.close_connection = True    # the request body, if any, stays unread
            return self.send_status(405, "MethodNotAllowed",
                                    "the server does not allow this method on the requested "
                                    "resource")
        doc = self.api._discovery(path)
        if doc is not None:
            return self.send_json(200, doc)
        route = _route(path)
        if route is None:
            self.api._count("unknown_paths")
            if self.api.verbose:
                sys.stderr.write(f"kubeapi: unknown path {self.path}\n")
            return self.send_status(404, "NotFound",
                                    "the server could not find the requested resource")
        resource, namespace, name = route
        if name is not None:
            return self.api._get_one(self, resource, namespace, name)
        if q.get("watch", "") in ("1", "true", "True"):
            return self.api._watch(self, resource, namespace, q)
        return self.api._list(self, resource, namespace, q)


def _route(path):
    """Map a collection or object path to (resource, namespace or None, name or None)."""
    parts = path.strip("/").split("/")
    if len(parts) >= 2 and parts[0] == "api" and parts[1] == "v1":
        gv, rest = "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        gv, rest = parts[1] + "/" + parts[2], parts[3:]
    else:
        return None
    ns = name = None
    if len(rest) == 2 and rest[0] == "namespaces":
        res, name = "namespaces", rest[1]
    elif len(rest) in (3, 4) and rest[0] == "namespaces":
        ns, res = rest[1], rest[2]
        name = rest[3] if len(rest) == 4 else None
    elif len(rest) in (1, 2):
        res = rest[0]
        name = rest[1] if len(rest) == 2 else None
    else:
        return None
    info = RESOURCES.get(res)
    if info is None or info[0] != gv or (ns is not None and not info[2]):
        return None
    if name is not None and info[2] and ns is None:
        return None
    return res, ns, name


# -- the API server ----------------------------------------------------------------------------

class KubeAPI:
    """A fake kube-apiserver on a random free loopback port, serving in background threads.

    objects: initial objects (dicts with kind/metadata); tls: serve HTTPS with a throw-away CA;
    token: required bearer token (None: no auth); page_size: most items per list page when the
    client sends `limit` (the real server also may return fewer than asked);
    host: "127.0.0.1" or "::1"; port: 0 for a random free one; verbose: log requests and
    unknown paths to stderr; split_chunks: cut watch chunks inside objects (default on);
    bookmark_interval: seconds between automatic BOOKMARKs (the real server sends one about
    every minute), None for only those asked with bookmark().
    """

    def __init__(self, objects=(), tls=False, token=None, page_size=500, host="127.0.0.1",
                 port=0, verbose=False, split_chunks=True, bookmark_interval=None):
        self.host = host
        self.port = port
        self.page_size = page_size
        self.verbose = verbose
        self.split_chunks = split_chunks
        self.bookmark_interval = bookmark_interval
        self._slow_bps = None
        self.huge_size = HUGE_SIZE
        self._token = token
        self._lock = threading.RLock()
        self._rv = 1
        self._compacted = 1
        self._expire_as_status = False
        self._tables = {r: {} for r in RESOURCES}
        self._log = collections.deque()
        self._snapshots = collections.OrderedDict()
        self._watches = []
        self._injections = []
        self._requests = collections.deque(maxlen=REQUEST_LOG_CAP)
        self._conns = set()
        self._stats = collections.Counter()
        self._by_path = collections.Counter()
        self._gate = threading.Event()
        self._gate.set()
        self._stall_until = 0.0
        self._stall_count = 0
        self._stall_seconds = 0.0
        self._server = None
        self._thread = None
        self._dir = tempfile.mkdtemp(prefix="kubeapi-")
        self.ca_file = self.ca_key_file = None
        self._ssl_ctx = None
        if tls:
            self._setup_tls()
        for obj in objects:
            self.apply(obj)
        with self._lock:
            # A fresh server's watch cache starts now: no replay of the initial load.
            self._log.clear()
            self._compacted = self._rv
        self.start()

    # -- lifecycle --

    def _setup_tls(self):
        self.ca_file, self.ca_key_file = _make_ca(self._dir)
        self.server_cert, self.server_key = _make_leaf(
            self._dir, "server", "/CN=kube-apiserver",
            ["subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost",
             "basicConstraints=CA:FALSE",
             "keyUsage=critical,digitalSignature,keyEncipherment",
             "extendedKeyUsage=serverAuth"], self.ca_file, self.ca_key_file)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.server_cert, self.server_key)
        ctx.load_verify_locations(self.ca_file)
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.set_alpn_protocols(["http/1.1"])
        self._ssl_ctx = ctx

    def make_client_cert(self, cn, ca=None, org=None):
        """Mint a client certificate (signed by the server's CA, or by ca=(crt, key)).
        Returns (cert_path, key_path)."""
        assert self.ca_file, "make_client_cert needs tls=True"
        crt, key = ca or (self.ca_file, self.ca_key_file)
        safe = "".join(c if c.isalnum() else "_" for c in cn)
        name = f"client-{safe}-{random.getrandbits(32):08x}"
        subj = f"/CN={cn}" + (f"/O={org}" if org else "")
        return _make_leaf(self._dir, name, subj,
                          ["basicConstraints=CA:FALSE",
                           "keyUsage=critical,digitalSignature,keyEncipherment",
                           "extendedKeyUsage=clientAuth"], crt, key)

    def make_other_ca(self):
        """A second, unrelated CA (crt, key): for 'wrong CA' tests."""
        return _make_ca(self._dir, f"other-ca-{random.getrandbits(32):08x}", "other-test-ca")

    def client_ca_required(self, required=True):
        """Require (or make optional again) a client certificate in the TLS handshake."""
        assert self._ssl_ctx is not None, "client_ca_required needs tls=True"
        self._ssl_ctx.verify_mode = ssl.CERT_REQUIRED if required else ssl.CERT_OPTIONAL

    def start(self):
        """(Re)open the listening socket, on the same port after a stop()."""
        if self._server is not None:
            return
        cls = _Server6 if ":" in self.host else _Server
        srv = None
        deadline = time.monotonic() + 5
        while srv is None:
            try:
                srv = cls((self.host, self.port), _Handler, bind_and_activate=False)
                srv.api = self
                srv.server_bind()
                srv.server_activate()
            except OSError:
                srv.server_close()
                srv = None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.port = srv.server_address[1]
        self._server = srv
        self._thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="kubeapi-accept", daemon=True)
        self._thread.start()

    def stop(self):
        """Close the listening socket and every connection (open watches end abruptly)."""
        srv, self._server = self._server, None
        if srv is None:
            return
        srv.shutdown()
        srv.server_close()
        self._thread.join(5)
        self.drop_watches()
        with self._lock:
            conns = list(self._conns)
        for s in conns:
            _hard_shutdown(s)

    def close(self):
        self._gate.set()
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def url(self):
        h = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self._ssl_ctx else 'http'}://{h}:{self.port}"

    # -- auth --

    @property
    def token(self):
        return self._token

    def set_token(self, token):
        """Rotate the bearer token: requests with the old one get 401 from now on."""
        self._token = token

    def _authorized(self, handler):
        if self._token is None or handler.peer_cn is not None:
            return True
        return handler.headers.get("Authorization", "") == "Bearer " + self._token

    # -- bookkeeping --

    def _count(self, key, n=1):
        with self._lock:
            self._stats[key] += n

    def _count_path(self, path):
        with self._lock:
            self._stats["requests"] += 1
            self._by_path[path] += 1

    @property
    def stats(self):
        with self._lock:
            d = {k: 0 for k in ("requests", "lists", "list_pages", "watches",
                                "watch_events_sent", "unauthorized", "split_objects",
                                "multi_event_chunks", "expired_410", "injected",
                                "unknown_paths", "tls_handshake_failures")}
            d.update(self._stats)
            d["by_path"] = dict(self._by_path)
            d["watches_open"] = len(self._watches)
            d["resource_version"] = str(self._rv)
            return d

    def _log_request(self, method, path, q):
        """Remember a request (arrival time, method, path, query); its response code is filled
        in when the response starts (None: none sent, e.g. dropped)."""
        entry = {"t": time.monotonic(), "method": method, "path": path, "query": dict(q),
                 "code": None}
        with self._lock:
            self._requests.append(entry)
        return entry

    def requests(self, path=None):
        """The last REQUEST_LOG_CAP API requests (control endpoints excluded), oldest first,
        optionally only those for `path`: dicts with t (time.monotonic() at arrival), method,
        path, query (dict) and code (the response status, None if none was sent)."""
        with self._lock:
            return [dict(e, query=dict(e["query"])) for e in self._requests
                    if path is None or e["path"] == path]

    def _track(self, sock, add):
        with self._lock:
            if add:
                self._conns.add(sock)
            else:
                self._conns.discard(sock)

    @property
    def resource_version(self):
        return str(self._rv)

    # -- the store --

    def apply(self, obj):
        """Create or replace an object (by kind/namespace/name); returns the stored copy."""
        kind = obj["kind"]
        resource = resource_of(kind)
        gv, kind, namespaced, _ = RESOURCES[resource]
        item = {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}
        meta = dict(item.get("metadata") or {})
        item["metadata"] = meta
        name = meta["name"]
        if namespaced:
            ns = meta.setdefault("namespace", "default")
        else:
            meta.pop("namespace", None)
            ns = None
        if kind == "EndpointSlice":
            ann = dict(meta.get("annotations") or {})
            ann.setdefault(TRIGGER_TIME, now_rfc3339())
            meta["annotations"] = ann
        with self._lock:
            table = self._tables[resource]
            old = table.get((ns, name))
            if old is not None:
                prev = json.loads(old.item)["metadata"]
                meta.setdefault("uid", prev.get("uid"))
                meta.setdefault("creationTimestamp", prev.get("creationTimestamp"))
            else:
                meta.setdefault("uid", str(uuid.uuid4()))
                meta.setdefault("creationTimestamp", now_rfc3339(frac=False))
            self._rv += 1
            meta["resourceVersion"] = str(self._rv)
            entry = _Entry(dumps(item), gv, kind)
            table[(ns, name)] = entry
            self._emit(resource, ns, "MODIFIED" if old else "ADDED", entry.full)
            return json.loads(entry.full)

    def delete(self, kind, namespace, name):
        """Delete an object; watchers get DELETED with its last state. Returns False if absent."""
        resource = resource_of(kind)
        gv, kind, namespaced, _ = RESOURCES[resource]
        ns = (namespace or "default") if namespaced else None
        with self._lock:
            entry = self._tables[resource].pop((ns, name), None)
            if entry is None:
                return False
            self._rv += 1
            last = json.loads(entry.full)
            last["metadata"]["resourceVersion"] = str(self._rv)
            self._emit(resource, ns, "DELETED", dumps(last))
            return True

    def get(self, kind, namespace, name):
        resource = resource_of(kind)
        ns = (namespace or "default") if RESOURCES[resource][2] else None
        with self._lock:
            entry = self._tables[resource].get((ns, name))
            return json.loads(entry.full) if entry else None

    def _emit(self, resource, ns, etype, full):
        """Under the lock: log the event for replays and queue it to matching watches."""
        line = _event_line(etype, full)
        self._log.append((self._rv, resource, ns, line))
        if len(self._log) > LOG_CAP:
            for _ in range(LOG_CAP // 2):
                self._compacted = self._log.popleft()[0]
        for w in self._watches:
            if w.resource == resource and (w.namespace is None or w.namespace == ns):
                w.q.put(("ev", line))

    def expire(self, as_status=False):
        """Compaction: every resourceVersion up to now becomes too old. Open watches get an
        ERROR 410 event and end; later watches from an older RV get 410 (an ERROR event, or an
        HTTP 410 response if as_status); outstanding continue tokens get HTTP 410."""
        with self._lock:
            self._rv += 1
            self._compacted = self._rv
            self._expire_as_status = as_status
            self._log.clear()
            self._snapshots.clear()
            for w in self._watches:
                msg = f"too old resource version: {w.start_rv} ({self._rv})"
                ev = dumps({"type": "ERROR", "object": status_json(410, "Expired", msg)})
                w.q.put(("end", ev + b"\n"))

    def bookmark(self):
        """Send a BOOKMARK at the current resourceVersion to every watch that allows them."""
        with self._lock:
            for w in self._watches:
                if w.bookmarks:
                    self._queue_bookmark(w)

    def _queue_bookmark(self, w):
        """Under the lock, so the bookmark follows every event it covers in w's queue."""
        gv, kind, _, _ = RESOURCES[w.resource]
        obj = {"kind": kind, "apiVersion": gv,
               "metadata": {"resourceVersion": str(self._rv), "creationTimestamp": None}}
        w.q.put(("ev", _event_line("BOOKMARK", dumps(obj))))
        w.last_bookmark = time.monotonic()

    def drop_watches(self):
        """Close every open watch connection abruptly (no terminating chunk)."""
        with self._lock:
            watches = list(self._watches)
        for w in watches:
            w.q.put(("drop", None))
            _hard_shutdown(w.sock)

    # -- faults --

    def stall(self, seconds, count=None):
        """Hang like a hung server: with count=None every request (and every watch write) until
        `seconds` from now waits until then; with count=N the next N requests each wait
        `seconds` before being answered."""
        with self._lock:
            if count is None:
                self._stall_until = time.monotonic() + seconds
            else:
                self._stall_count = count
                self._stall_seconds = seconds

    def slow(self, bytes_per_second=None):
        """Send every response (watch streams included) at about this rate; None: full speed."""
        self._slow_bps = bytes_per_second

    def pause(self):
        """Stop answering entirely (connections are accepted, nothing is sent) until resume()."""
        self._gate.clear()

    def resume(self):
        self._gate.set()

    def _wait_gate(self):
        self._gate.wait()
        delay = self._stall_until - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def _wait_request_gate(self):
        with self._lock:
            delay = 0.0
            if self._stall_count > 0:
                self._stall_count -= 1
                delay = self._stall_seconds
        if delay:
            time.sleep(delay)
        self._wait_gate()

    def inject(self, kind, how, target="next", count=1, on_fire=None):
        """Make the next response(s) for a collection bad. how: garbage, truncated, huge,
        unknown-event, no-metadata, error-500, reset (close without answering), no-items (a
        200 list without "items", as from a misrouted proxy), expired (a list page asked with
        a continue token gets HTTP 410 Expired, as after a compaction; a watch gets an ERROR
        event with a 410 Status and ends; first pages are left alone).
        target: "next" (next list or watch request), "list", "watch", or "open" (now, into
        the currently open watches of that collection). on_fire: called (no arguments, from
        the serving thread, before the response) each time one of them is served."""
        resource = resource_of(kind)
        if how not in INJECTIONS:
            raise ValueError(f"unknown injection {how!r}")
        if how == "unknown-event" and target == "next":
            target = "watch"
        if how == "no-items" and target == "next":
            target = "list"
        with self._lock:
            if target == "open":
                for w in self._watches:
                    if w.resource == resource:
                        w.q.put(("inject", how))
                return
            for _ in range(count):
                self._injections.append((resource, how, target, on_fire))

    def clear_injections(self):
        """Forget the injections not served yet; returns how many there were."""
        with self._lock:
            n = len(self._injections)
            self._injections.clear()
            return n

    def _take_injection(self, resource, is_watch, is_continue=False):
        fire = None
        with self._lock:
            for i, (res, how, target, on_fire) in enumerate(self._injections):
                if res != resource or target not in ("next", "watch" if is_watch else "list"):
                    continue
                if how == "expired" and not is_watch and not is_continue:
                    continue
                del self._injections[i]
                self._stats["injected"] += 1
                fire = on_fire
                break
            else:
                return None
        if fire is not None:
            fire()
        return how

    # -- requests --

    def _discovery(self, path):
        if path == "/version":
            return {"major": "1", "minor": "32", "gitVersion": "v1.32.0-kubeapi-test",
                    "gitCommit": "0" * 40, "gitTreeState": "clean",
                    "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23",
                    "compiler": "gc", "platform": "linux/amd64"}
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                    "serverAddress": f"{self.host}:{self.port}"}]}
        if path == "/apis":
            groups = sorted({gv for gv, _, _, _ in RESOURCES.values() if "/" in gv})
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": gv.split("/")[0],
                 "versions": [{"groupVersion": gv, "version": gv.split("/")[1]}],
                 "preferredVersion": {"groupVersion": gv, "version": gv.split("/")[1]}}
                for gv in groups]}
        gv = "v1" if path == "/api/v1" else path[len("/apis/"):] if path.startswith("/apis/") \
            else None
        if gv is None or not any(v[0] == gv for v in RESOURCES.values()):
            return None
        res = []
        for plural, (g, kind, namespaced, short) in RESOURCES.items():
            if g == gv:
                r = {"name": plural, "singularName": kind.lower(), "namespaced": namespaced,
                     "kind": kind, "verbs": ["get", "list", "watch"]}
                if short:
                    r["shortNames"] = short
                res.append(r)
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                "resources": res}

    def _get_one(self, h, resource, ns, name):
        with self._lock:
            entry = self._tables[resource].get((ns, name))
        if entry is None:
            st = status_json(404, "NotFound", f'{resource} "{name}" not found')
            st["details"] = {"name": name, "kind": resource}
            return h.send_json(404, st)
        h.send_body(200, entry.full)

    def _list(self, h, resource, ns, q):
        gv, kind, _, _ = RESOURCES[resource]
        cont = q.get("continue", "")
        limit = q.get("limit", "")
        try:
            limit = int(limit) if limit else 0
        except ValueError:
            return h.send_status(400, "BadRequest", f"invalid limit {limit!r}")
        how = self._take_injection(resource, False, bool(cont))
        if how is not None and self._serve_bad_list(h, how, gv, kind):
            return
        with self._lock:
            self._stats["list_pages"] += 1
            if cont:
                snap = self._resume_snapshot(cont)
                if snap is None:
                    self._stats["expired_410"] += 1
                    h.send_status(410, "Expired", CONTINUE_EXPIRED_MSG)
                    return
                sid, rv, items, off = snap
            else:
                self._stats["lists"] += 1
                table = self._tables[resource]
                items = [table[k].item for k in sorted(table, key=lambda k: (k[0] or "", k[1]))
                         if ns is None or k[0] == ns]
                rv, off, sid = self._rv, 0, None
            n = len(items) - off
            if limit > 0:
                n = min(n, limit, self.page_size)
            page = items[off:off + n]
            meta = {"resourceVersion": str(rv)}
            if off + n < len(items):
                if sid is None:
                    sid = uuid.uuid4().hex
                    self._snapshots[sid] = (rv, items)
                    while len(self._snapshots) > SNAPSHOT_CAP:
                        self._snapshots.popitem(last=False)
                tok = dumps({"v": "kubeapi/1", "rv": rv, "id": sid, "off": off + n})
                # Like the real server: unpadded URL-safe base64 (RawURLEncoding).
                meta["continue"] = base64.urlsafe_b64encode(tok).decode().rstrip("=")
                meta["remainingItemCount"] = len(items) - off - n
        head = b'{"kind":"%sList","apiVersion":"%s","metadata":' % (kind.encode(), gv.encode())
        h.send_body(200, head + dumps(meta) + b',"items":[' + b",".join(page) + b"]}")

    def _resume_snapshot(self, cont):
        try:
            tok = json.loads(base64.urlsafe_b64decode(cont.encode() + b"=" * (-len(cont) % 4)))
            sid, rv, off = tok["id"], int(tok["rv"]), int(tok["off"])
        except (ValueError, KeyError, TypeError):
            return None
        snap = self._snapshots.get(sid)
        if snap is None or snap[0] != rv or rv < self._compacted:
            return None
        return sid, rv, snap[1], off

    def _serve_bad_list(self, h, how, gv, kind):
        """Serve an injected fault on a list; False if `how` does not apply to lists."""
        head = b'{"kind":"%sList","apiVersion":"%s","metadata":{"resourceVersion":"%s"},' \
               b'"items":[' % (kind.encode(), gv.encode(), str(self._rv).encode())
        if how == "error-500":
            h.send_status(500, "InternalError", "Internal error occurred: injected")
        elif how == "reset":
            h.drop()
        elif how == "garbage":
            h.send_body(200, b"<html>\x00this is not JSON }{ ][\n")
        elif how == "truncated":
            body = head + b'{"metadata":{"name":"cut","namespace":"default"},"spec":{"cl'
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body) + 1000))
            h.end_headers()
            h.out(body)
            h.drop()
        elif how == "huge":
            h.start_chunked()
            h.chunk(head)
            self._stream_filler(h, b'{"metadata":{"name":"x","namespace":"default"}},')
            h.drop()
        elif how == "no-metadata":
            h.send_body(200, head + b'{"spec":{"clusterIP":"10.0.0.1"}}]}')
        elif how == "no-items":
            h.send_body(200, b'{"kind":"%sList","apiVersion":"%s","metadata":'
                        b'{"resourceVersion":"%s"}}' % (kind.encode(), gv.encode(),
                                                        str(self._rv).encode()))
        elif how == "expired":
            self._count("expired_410")
            h.send_status(410, "Expired", CONTINUE_EXPIRED_MSG)
        else:
            return False
        return True

    def _stream_filler(self, h, unit):
        """Write about huge_size bytes lazily, until done or the client goes away."""
        block = unit * max(1, (1 << 20) // len(unit))
        sent = 0
        try:
            while sent < self.huge_size:
                h.chunk(block)
                sent += len(block)
        except OSError:
            pass

    # -- watch --

    def _open_watch(self, w, rv_param):
        """Register w and pre-fill its queue with the replay, atomically with respect to
        apply/delete. Returns None, or the too-old message."""
        with self._lock:
            if rv_param in ("", "0"):
                w.start_rv = self._rv
                gv, kind, _, _ = RESOURCES[w.resource]
                table = self._tables[w.resource]
                for k in sorted(table, key=lambda k: (k[0] or "", k[1])):
                    if w.namespace is None or k[0] == w.namespace:
                        w.q.put(("ev", _event_line("ADDED", table[k].full)))
            else:
                start = int(rv_param)
                w.start_rv = start
                if start < self._compacted:
                    self._stats["expired_410"] += 1
                    return f"too old resource version: {start} ({self._compacted})"
                for rv, res, ns, line in self._log:
                    if rv > start and res == w.resource and \
                            (w.namespace is None or w.namespace == ns):
                        w.q.put(("ev", line))
            self._watches.append(w)
            self._stats["watches"] += 1
            return None

    def _close_watch(self, w):
        with self._lock:
            if w in self._watches:
                self._watches.remove(w)

    def _watch(self, h, resource, ns, q):
        rv_param = q.get("resourceVersion", "")
        try:
            timeout = float(q.get("timeoutSeconds") or 1800)
            if rv_param not in ("", "0"):
                int(rv_param)
        except ValueError:
            return h.send_status(400, "BadRequest", f"invalid resourceVersion {rv_param!r}")
        bookmarks = q.get("allowWatchBookmarks", "") in ("1", "true", "True")
        how = self._take_injection(resource, True)
        if how in ("error-500", "reset"):
            return self._serve_bad_list(h, how, "", "")
        if how == "expired":
            return self._watch_expired(h, resource, rv_param)
        w = _Watch(resource, ns, bookmarks, h.request)
        too_old = self._open_watch(w, rv_param)
        if too_old and self._expire_as_status:
            return h.send_status(410, "Expired", too_old)
        try:
            h.start_chunked()
            if too_old:
                ev = {"type": "ERROR", "object": status_json(410, "Expired", too_old)}
                self._send_events(h, w, [dumps(ev) + b"\n"])
                h.end_chunked()
                return
            if how is not None:
                w.q.put(("inject", how))
            self._watch_loop(h, w, time.monotonic() + timeout)
        except OSError:
            h.close_connection = True
        finally:
            self._close_watch(w)

    def _watch_expired(self, h, resource, rv_param):
        """An injected 410 on a watch: the ERROR event the real server sends when the
        resourceVersion has been compacted away, then a clean end."""
        w = _Watch(resource, None, False, h.request)
        with self._lock:
            self._stats["expired_410"] += 1
            msg = f"too old resource version: {rv_param or 0} ({self._rv})"
        ev = {"type": "ERROR", "object": status_json(410, "Expired", msg)}
        try:
            h.start_chunked()
            self._send_events(h, w, [dumps(ev) + b"\n"])
            h.end_chunked()
        except OSError:
            h.close_connection = True

    def _watch_loop(self, h, w, deadline):
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                h.end_chunked()
                return
            if w.bookmarks and self.bookmark_interval and \
                    time.monotonic() - w.last_bookmark >= self.bookmark_interval:
                with self._lock:
                    self._queue_bookmark(w)
            try:
                item = w.q.get(timeout=min(left, 0.2))
            except queue.Empty:
                continue
            batch, size = [], 0
            while item is not None and item[0] == "ev" and size < 256 * 1024:
                batch.append(item[1])
                size += len(item[1])
                try:
                    item = w.q.get_nowait()
                except queue.Empty:
                    item = None
            if batch:
                self._wait_gate()
                self._send_events(h, w, batch)
            if item is None:
                continue
            kind, arg = item
            if kind == "ev":
                self._send_events(h, w, [arg])
            elif kind == "end":
                self._wait_gate()
                self._send_events(h, w, [arg])
                h.end_chunked()
                return
            elif kind == "drop":
                h.drop()
                return
            elif kind == "inject":
                if self._watch_inject(h, w, arg):
                    return

    def _send_events(self, h, w, blobs):
        """Write events as chunks, deliberately cut inside objects (and several per chunk)."""
        data = b"".join(blobs)
        bounds, pos = set(), 0
        for b in blobs:
            pos += len(b)
            bounds.add(pos)
        cuts = []
        # The first write of every watch is always cut, so any client meets it at once.
        w.batches += 1
        if self.split_chunks and len(data) > 8 and (w.batches == 1 or w.rng.random() < 0.8):
            cuts = sorted(set(w.rng.randrange(1, len(data)) for _ in range(w.rng.randint(1, 3))))
        # Count before writing: a client that has read the events may look at the stats at once.
        with self._lock:
            self._stats["watch_events_sent"] += len(blobs)
            self._stats["split_objects"] += sum(1 for c in cuts if c not in bounds)
            if len(blobs) > 1:
                self._stats["multi_event_chunks"] += 1
        prev = 0
        for c in cuts + [len(data)]:
            h.chunk(data[prev:c])
            prev = c

    def _watch_inject(self, h, w, how):
        """An injected fault inside a watch stream; True if the stream ended."""
        gv, kind, _, _ = RESOURCES[w.resource]
        rv = str(self._rv).encode()
        if how == "garbage":
            h.chunk(b"\x00<html>}}not json{{ ]\n")
        elif how == "truncated":
            h.chunk(b'{"type":"ADDED","object":{"kind":"%s","apiVersion":"%s","metadata":'
                    b'{"name":"cut","resourceVersion":"%s","na' % (kind.encode(), gv.encode(), rv))
            h.drop()
            return True
        elif how == "huge":
            h.chunk(b'{"type":"ADDED","object":{"kind":"%s","apiVersion":"%s","metadata":'
                    b'{"name":"huge","namespace":"default","resourceVersion":"%s"},"data":"'
                    % (kind.encode(), gv.encode(), rv))
            self._stream_filler(h, b"x" * 4096)
            h.drop()
            return True
        elif how == "unknown-event":
            obj = {"kind": kind, "apiVersion": gv,
                   "metadata": {"name": "foo", "namespace": "default",
                                "resourceVersion": rv.decode()}}
            h.chunk(dumps({"type": "FOO", "object": obj}) + b"\n")
        elif how == "no-metadata":
            obj = {"kind": kind, "apiVersion": gv, "spec": {}}
            h.chunk(dumps({"type": "ADDED", "object": obj}) + b"\n")
        elif how in ("error-500", "reset"):
            h.drop()
            return True
        return False

    # -- control endpoints (for the CLI) --

    def _control(self, h, method, path, q):
        try:
            body = b""
            n = int(h.headers.get("Content-Length") or 0)
            if n:
                body = h.rfile.read(n)
            result = self._control_op(path[len("/_test/"):], q, body)
        except (ValueError, KeyError, TypeError) as e:
            return h.send_json(400, {"error": str(e)})
        if result is None:
            return h.send_json(404, {"error": f"no control endpoint {path}"})
        h.send_json(200, result)

    def _control_op(self, op, q, body):
        if op == "apply":
            data = json.loads(body)
            objs = data.get("items", []) if isinstance(data, dict) and "items" in data \
                else data if isinstance(data, list) else [data]
            rvs = [self.apply(o)["metadata"]["resourceVersion"] for o in objs]
            return {"applied": len(rvs), "resourceVersions": rvs, "resourceVersion": str(self._rv)}
        if op == "delete":
            data = json.loads(body) if body else q
            items = data if isinstance(data, list) else [data]
            n = sum(bool(self.delete(d["kind"], d.get("namespace"), d["name"])) for d in items)
            return {"deleted": n, "resourceVersion": str(self._rv)}
        if op == "expire":
            self.expire(as_status=q.get("as_status", "") in ("1", "true"))
        elif op == "bookmark":
            self.bookmark()
        elif op == "drop_watches":
            self.drop_watches()
        elif op == "stall":
            c = q.get("count")
            self.stall(float(q["seconds"]), int(c) if c else None)
        elif op == "slow":
            bps = q.get("bytes_per_second")
            self.slow(float(bps) if bps else None)
        elif op == "pause":
            self.pause()
        elif op == "resume":
            self.resume()
        elif op == "token":
            self.set_token(q.get("token") or None)
        elif op == "inject":
            self.inject(q["kind"], q["how"], q.get("target", "next"), int(q.get("count", 1)))
        elif op == "clear_injections":
            return {"ok": True, "cleared": self.clear_injections()}
        elif op == "requests":
            return {"requests": self.requests(q.get("path"))}
        elif op == "restart":
            secs = float(q.get("seconds", 0))

            def bounce():
                self.stop()
                time.sleep(secs)
                self.start()
            threading.Thread(target=bounce, daemon=True).start()
        elif op == "stats":
            return self.stats
        else:
            return None
        return {"ok": True, "resourceVersion": str(self._rv)}


def load_objects(path):
    """A kubectl-style List, a JSON array of objects, or YAML documents (List or objects)."""
    with open(path) as f:
        text = f.read()
    try:
        docs = [json.loads(text)]
    except ValueError:
        import yaml
        docs = [d for d in yaml.safe_load_all(text) if d]
    out = []
    for d in docs:
        if isinstance(d, list):
            out.extend(d)
        elif isinstance(d, dict) and "items" in d:
            out.extend(d["items"])
        elif isinstance(d, dict):
            out.append(d)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description="test Kubernetes API server (see README.md)")
    p.add_argument("--objects", help="kubectl-style List or JSON array of objects")
    p.add_argument("--tls", action="store_true")
    p.add_argument("--token")
    p.add_argument("--page-size", type=int, default=500)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--verbose", action="store_true")
    a = p.parse_args(argv)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    objs = load_objects(a.objects) if a.objects else []
    api = KubeAPI(objects=objs, tls=a.tls, token=a.token, page_size=a.page_size, host=a.host,
                  port=a.port, verbose=a.verbose)
    print(f"READY {api.url} {api.ca_file or '-'}", flush=True)
    while not done.wait(1):
        pass
    api.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
