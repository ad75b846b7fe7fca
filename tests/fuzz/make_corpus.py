#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Write the seed corpora (tests/fuzz/corpus/TARGET/) and conf.dict from the project's own test
data: DNS packets made with dnspython, the demo cluster and the unit tests' snapshots, the
Kubernetes samples in shared/ when they are there, the kubeconfig forms the auth tests use, and
conf/kubemasq.conf. Run it again after changing it; it replaces the generated seeds and leaves
the regression inputs (regress-*) alone.

    /usr/bin/python3 tests/fuzz/make_corpus.py
"""
import json
import os
import re
import struct
import sys

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rrset

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SAMPLES = os.path.join(os.path.dirname(ROOT), 'shared', 'k8s-samples')
if not os.path.isdir(SAMPLES):
    SAMPLES = '/work/shared/k8s-samples'


def out(target, name, data):
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


def clean():
    for target in os.listdir(os.path.join(HERE, 'corpus')):
        d = os.path.join(HERE, 'corpus', target)
        for f in os.listdir(d):
            if not f.startswith('regress-'):
                os.unlink(os.path.join(d, f))


# ---- DNS: queries, replies, TCP streams ----

def query(name, qtype, qid=4660, **kw):
    q = dns.message.make_query(name, qtype, **kw)
    q.id = qid
    return q


QUERIES = {
    'a': query('www.example.com', 'A'),
    'a-mixed-case': query('WwW.ExAmPlE.CoM', 'A'),
    'aaaa-edns': query('example.org', 'AAAA', use_edns=0, payload=1232),
    'srv-do': query('_http._tcp.web.default.svc.cluster.local', 'SRV', use_edns=0,
                    want_dnssec=True, payload=4096),
    'ptr': query('10.0.96.10.in-addr.arpa', 'PTR'),
    'any': query('example.com', 'ANY'),
    'txt-big-edns': query('big.example', 'TXT', use_edns=0, payload=65535),
    'edns1': query('example.com', 'A', use_edns=1),
    'cd': query('example.com', 'A'),
    'chaos': query('version.bind', 'TXT', rdclass='CH'),
    'chaos-id': query('id.server', 'TXT', rdclass='CH'),
    'root': query('.', 'NS'),
    'cluster': query('kubernetes.default.svc.cluster.local', 'A'),
    'pod': query('10-0-0-1.default.pod.cluster.local', 'A'),
    'soa-type63': query('example.com', 63),
}
QUERIES['cd'].flags |= dns.flags.CD
QUERIES['notify'] = query('example.com', 'SOA')
QUERIES['notify'].set_opcode(dns.opcode.NOTIFY)


def wire(q):
    return q.to_wire()


def reply(q, *sections, rcode=0, tc=False, edns=False):
    r = dns.message.make_response(q)
    r.set_rcode(rcode)
    if tc:
        r.flags |= dns.flags.TC
    for where, text in sections:
        name, ttl, rdclass, rdtype, rdata = text.split(None, 4)
        rrset = dns.rrset.from_text(name, int(ttl), rdclass, rdtype, rdata)
        (r.answer if where == 'an' else r.authority if where == 'ns' else r.additional).append(rrset)
    if edns:
        r.use_edns(0, payload=1232)
    return r


def dns_corpora():
    for name, q in QUERIES.items():
        out('query', name, wire(q))
    bad = {
        'short': b'\x12\x34\x01',
        'qr-set': b'\x12\x34\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01',
        'compressed': b'\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01',
        'two-questions': wire(QUERIES['a'])[:5] + b'\x02' + wire(QUERIES['a'])[6:] + wire(QUERIES['a'])[12:],
        'trailing': wire(QUERIES['a']) + b'\x00',
    }
    for name, data in bad.items():
        out('query', name, data)

    q = QUERIES['a']
    qa = QUERIES['aaaa-edns']
    qs = QUERIES['srv-do']
    replies = {
        'a': (q, reply(q, ('an', 'www.example.com. 300 IN A 192.0.2.1'))),
        'cname': (q, reply(q, ('an', 'www.example.com. 60 IN CNAME web.example.net.'),
                           ('an', 'web.example.net. 30 IN A 192.0.2.2'))),
        'nxdomain-soa': (q, reply(q, ('ns', 'example.com. 3600 IN SOA ns.example.com. '
                                           'host.example.com. 1 7200 900 1209600 300'),
                                  rcode=dns.rcode.NXDOMAIN)),
        'nodata-nosoa': (qa, reply(qa, edns=True)),
        'servfail': (q, reply(q, rcode=dns.rcode.SERVFAIL)),
        'tc': (q, reply(q, tc=True)),
        'ttl0': (q, reply(q, ('an', 'www.example.com. 0 IN A 192.0.2.1'))),
        'ttl-huge': (q, reply(q, ('an', 'www.example.com. 4294967295 IN A 192.0.2.1'))),
        'srv-glue': (qs, reply(qs, ('an', '_http._tcp.web.default.svc.cluster.local. 5 IN SRV '
                                          '0 100 80 web.default.svc.cluster.local.'),
                               ('ar', 'web.default.svc.cluster.local. 5 IN A 10.0.0.7'),
                               edns=True)),
        'many-a': (q, reply(q, *[('an', 'www.example.com. 120 IN A 192.0.2.%d' % i)
                                 for i in range(1, 60)])),
    }
    for name, (qq, r) in replies.items():
        qw = wire(qq)
        out('reply', name, struct.pack('!H', len(qw)) + qw + r.to_wire())
    # no usable query: the target's default one (www.example.com A) is asked
    out('reply', 'default-query', b'\x00\x00' + replies['a'][1].to_wire())
    # the question spelled with a pointer to a later copy of the name (issue 12, item 5)
    rw = bytearray(replies['a'][1].to_wire())
    # the root name as a pointer into the header (QDCOUNT's high byte is a zero: the root)
    qr = QUERIES['root']
    rr = bytearray(reply(qr, ('an', '. 300 IN NS a.root.example.')).to_wire())
    out('reply', 'regress-compressed-question-root', struct.pack('!H', len(wire(qr))) + wire(qr) +
        bytes(rr[:12]) + b'\xc0\x04' + bytes(rr[13:]))
    out('reply', 'regress-compressed-question',
        b'\x00\x00' + bytes(rw[:12]) + b'\xc0\x22\x00\x01\x00\x01' +
        b'\xc0\x22\x00\x01\x00\x01\x00\x00\x01\x2c\x00\x04\xc0\x00\x02\x01' +
        b'\x03www\x07example\x03com\x00')

    def frame(m):
        return struct.pack('!H', len(m)) + m
    out('tcp', 'one', frame(wire(q)))
    out('tcp', 'pipelined', b''.join(frame(wire(x)) for x in QUERIES.values()))
    out('tcp', 'partial', frame(wire(q)) + frame(wire(qa))[:9])
    out('tcp', 'empty-frame', b'\x00\x00' + frame(wire(q)))
    out('tcp', 'short-frame', frame(b'\x12\x34\x01') + frame(wire(q)))
    out('tcp', 'same-name-x8', b''.join(frame(wire(query('www.example.com', 'A', qid=i)))
                                        for i in range(8)))


# ---- Kubernetes JSON: watch streams, snapshots ----

KINDS = {'Namespace': 0, 'Service': 1, 'EndpointSlice': 2, 'Pod': 3}


def read(path):
    with open(path, 'rb') as f:
        return f.read()


def kube_corpora():
    snapshots = [os.path.join(ROOT, 'conf', 'demo-cluster.json')]
    udata = os.path.join(ROOT, 'tests', 'unit', 'data')
    snapshots += [os.path.join(udata, f) for f in sorted(os.listdir(udata))]
    if os.path.isdir(SAMPLES):
        snapshots += [os.path.join(SAMPLES, f) for f in sorted(os.listdir(SAMPLES))
                      if f.endswith('.json')]
    for p in snapshots:
        out('snapshot', os.path.basename(p), read(p))

    by_kind = {}
    for p in (os.path.join(ROOT, 'conf', 'demo-cluster.json'), os.path.join(udata, 'cluster.json')):
        for item in json.loads(read(p))['items']:
            by_kind.setdefault(item.get('kind'), []).append(item)
    rv = 100
    for kind, sel in KINDS.items():
        items = by_kind.get(kind, [])[:6]
        events = []
        for i, item in enumerate(items):
            rv += 1
            item = json.loads(json.dumps(item))
            item.setdefault('metadata', {})['resourceVersion'] = str(rv)
            if kind == 'EndpointSlice':
                item['metadata'].setdefault('annotations', {})[
                    'endpoints.kubernetes.io/last-change-trigger-time'] = '2024-05-01T10:00:0%dZ' % i
            events.append({'type': 'ADDED', 'object': item})
        if items:
            gone = json.loads(json.dumps(items[0]))
            gone['metadata']['resourceVersion'] = str(rv + 1)
            events.append({'type': 'DELETED', 'object': gone})
            events.append({'type': 'BOOKMARK', 'object': {'kind': kind, 'metadata':
                                                          {'resourceVersion': str(rv + 2)}}})
        body = ''.join(json.dumps(e) + '\n' for e in events)
        # api_watch: the first byte picks the collection (low two bits) and the chunking
        for chunking in (0, 1):
            out('api_watch', '%s-%d' % (kind.lower(), chunking),
                bytes([sel | chunking << 2]) + body.encode())
        out('api_framer', kind.lower(), b'\x05' + body.encode())
    if os.path.isdir(SAMPLES):
        for f in sorted(os.listdir(SAMPLES)):
            if f.startswith('watch'):
                data = read(os.path.join(SAMPLES, f))
                out('api_watch', f, bytes([3]) + data)
                out('api_framer', f, b'\x01' + data)
    err = b'{"type":"ERROR","object":{"kind":"Status","code":500,"message":"boom"}}'
    out('api_watch', 'error-500', b'\x01' + err)
    out('api_framer', 'strings', b'\x03{"a":"}{\\"\\\\","b":[1,{"c":"]"}]} \n\t{}{"x":[]}')
    out('api_framer', 'garbage', b'\x02{} x {}')


# ---- kubeconfig ----

CA = 'LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJ4VENDQVd1Z0F3SUJBZ0lVCi0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K'

KUBECONFIGS = {
    'token': """apiVersion: v1
kind: Config
current-context: dev
contexts:
- name: dev
  context: {cluster: c1, user: u1, namespace: default}
clusters:
- name: c1
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: %s
    tls-server-name: kubernetes.default
users:
- name: u1
  user:
    token: abc.def
""" % CA,
    'files': """apiVersion: v1
kind: Config
current-context: f
contexts:
- context:
    cluster: c
    user: u
  name: f
clusters:
- cluster:
    certificate-authority: ca.crt
    server: https://kubernetes.example:6443
  name: c
users:
- name: u
  user:
    client-certificate: client.crt
    client-key: /abs/client.key
    tokenFile: token
""",
    'cert-data': """current-context: x
contexts: [{name: x, context: {cluster: c, user: u}}]
clusters: [{name: c, cluster: {server: 'http://127.0.0.1:8001', insecure-skip-tls-verify: true}}]
users: [{name: u, user: {client-certificate-data: %s, client-key-data: %s}}]
""" % (CA, CA),
    'json': json.dumps({'apiVersion': 'v1', 'kind': 'Config', 'current-context': 'j',
                        'contexts': [{'name': 'j', 'context': {'cluster': 'jc', 'user': 'ju'}}],
                        'clusters': [{'name': 'jc', 'cluster': {'server': 'https://[::1]:6443',
                                                                'certificate-authority-data': CA}}],
                        'users': [{'name': 'ju', 'user': {'token-file': '/var/run/token'}}]}),
    'exec-plugin': """current-context: a
contexts: [{name: a, context: {cluster: c, user: u}}]
clusters: [{name: c, cluster: {server: 'https://h'}}]
users:
- name: u
  user:
    exec: {command: aws, apiVersion: client.authentication.k8s.io/v1beta1}
""",
    'alias': "clusters: &c\n- name: x\ncurrent-context: a\nmore: *c\n",
    'deep': "a: " + "[" * 60 + "]" * 60 + "\n",
    'anchors-and-tags': "current-context: !!str a\ncontexts: !!seq [{name: a}]\n",
}


# ---- conf files ----

CONFS = {
    'servers': """# servers and zones
server=192.0.2.53
server=/corp.example/10.0.0.53#5353
server=/local.example/
server=/use.default/#
address=/blocked.example/
address=/any.example/#
address=/v6.example/2001:db8::1
local=/lan/
""",
    'kube': """kube-domain=cluster.local
kube-snapshot=/etc/kubemasq/cluster.json
kube-pods=verified
kube-ttl=5
kube-namespaces=default,kube-system
kube-endpoint-pod-names
kube-ignore-empty-service
""",
    'quoting': 'server="/a b/192.0.2.1" # comment\n  cache-size = 150 \n"log-facility"=-\n'
               'domain-needed\nbogus-priv\n# "unterminated\n',
    'limits': 'port=0\ncache-size=0\nneg-ttl=4294967296\nmax-cache-ttl=-1\nedns-packet-max=99999\n'
              'tcp-max-connections=1\ntcp-idle-timeout=0\ndns-forward-max=1\n',
    'unknown': 'no-such-option\n=value\nport\n',
}


def conf_dict():
    names = re.findall(r'X\("([a-z0-9-]+)"', read(os.path.join(ROOT, 'src', 'lib', 'config_opts.h')).decode())
    with open(os.path.join(HERE, 'conf.dict'), 'w') as f:
        f.write('# generated by make_corpus.py from src/lib/config_opts.h: every option name\n')
        for n in names:
            f.write('"%s="\n' % n)
        for tok in ['#', '"', '\\"', '=', '/', '#53', '127.0.0.1', '::1', '\\n', 'yes']:
            f.write('"%s"\n' % tok.replace('\\', '\\\\').replace('"', '\\"'))


def main():
    os.makedirs(os.path.join(HERE, 'corpus'), exist_ok=True)
    clean()
    dns_corpora()
    kube_corpora()
    for name, text in KUBECONFIGS.items():
        out('kubeconfig', name, text)
    out('conf', 'kubemasq.conf', read(os.path.join(ROOT, 'conf', 'kubemasq.conf')))
    for name, text in CONFS.items():
        out('conf', name, text)
    conf_dict()
    return 0


if __name__ == '__main__':
    sys.exit(main())
