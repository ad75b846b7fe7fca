/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * store.c - the kube resolver's in-memory cluster (store.h). Tables keyed by SipHash under one
 * random key: namespaces, services, slices and pods by lower-case "ns\0name" (uthash), every
 * (namespace, pod IP) for --kube-pods=verified (uthash), and the PTR index, every ClusterIP and
 * ready endpoint IP -> its (service, label) pairs (open addressing: it has an entry per
 * endpoint, and a uthash handle would double each). A service's endpoints are merged
 * from its slices into one array sorted by label, so a label lookup is a binary search; the
 * merge runs for that service alone whenever one of its slices changes. Slices may arrive
 * before their service: the service then exists as a placeholder (not visible to lookups)
 * that holds the slice list until the Service itself is stored. Every change is compared
 * with the stored state first, so re-stating an unchanged object (a snapshot re-read, an API
 * re-list) costs one comparison and reports nothing. Pure: no I/O, no clock, no logging.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* A failed allocation must not exit the daemon: uthash then leaves the item out of the table
 * (hh.tbl == NULL), which we check after every add. */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

#include "kube/store.h"
#include "kubemasq/hash.h"

#define STORE_LABEL_MAX 63
#define STORE_NAME_MAX 253			/* Kubernetes object names (DNS subdomains) */
#define STORE_KEY_MAX (STORE_LABEL_MAX + 1 + STORE_NAME_MAX)
#define STORE_PROTO_MAX 15
#define STORE_NKINDS 4

struct kube_store_ns {
	UT_hash_handle hh;
	uint32_t gen;
	uint8_t len;
	char name[];
};

/* What a Service says of itself, in one allocation: this header, then ports, ips, strings. */
struct kube_store_desc {
	enum kube_service_kind kind;
	const char *external_name;
	struct kube_port *ports;
	size_t n_ports;
	struct kube_ip *ips;
	size_t n_ips;
};

/* One endpoint of a slice: its IPs are data->ips[ip_idx .. ip_idx + n_ips). */
struct kube_store_sep {
	const char *label;
	uint32_t ip_idx;
	uint8_t n_ips;
	bool ready;
};

/* What a slice holds, in one allocation: this header, then eps, ports, ips, strings. */
struct kube_store_sdata {
	struct kube_store_sep *eps;
	size_t n_eps;
	struct kube_port *ports;
	size_t n_ports;
	struct kube_ip *ips;
	size_t n_ips;
};

struct kube_store_slice {
	UT_hash_handle hh;
	struct kube_store_sdata *data;
	struct kube_service *svc;
	struct kube_store_slice *svc_next;	/* the service's slice list */
	uint32_t gen;
	uint16_t key_len;
	char key[];				/* "ns\0name" */
};

struct kube_service {
	UT_hash_handle hh;
	struct kube_store_desc *desc;		/* NULL while a placeholder */
	struct kube_store_slice *slices;
	struct kube_endpoint *eps;		/* merged, sorted by label then first IP */
	size_t n_eps;
	struct kube_ip *pool;			/* IPs of endpoints that lost some to dedup */
	struct kube_port *uports;		/* union of the slices' named ports */
	size_t n_uports;
	const char *name;			/* inside key */
	uint32_t gen;
	uint16_t key_len;
	char key[];				/* "ns\0name" */
};

/* PTR index entry: every (service, label) that an address belongs to. The index holds one
 * per ClusterIP and endpoint address, so it is an open-addressing table of pointers rather
 * than a uthash (whose 56-byte handle would double the entry). */
struct kube_store_ptrent {
	struct kube_ptr *more;			/* refs after the first: n - 1 of them */
	uint32_t n;
	struct kube_ptr first;
	struct kube_ip ip;			/* key */
};

struct kube_store_pod {
	UT_hash_handle hh;
	struct kube_ip *ips;			/* after key, same allocation */
	uint32_t gen;
	uint16_t key_len;
	uint8_t n_ips;
	char key[];
};

/* --kube-pods=verified index: (ip, lower-case namespace) -> how many pods have it. */
struct kube_store_podip {
	UT_hash_handle hh;
	uint32_t count;
	uint16_t key_len;
	uint8_t key[];
};

struct kube_store {
	struct kube_store_ns *nss;
	struct kube_service *svcs;
	struct kube_store_slice *slices;
	struct kube_store_pod *pods;
	struct kube_store_podip *podips;
	struct kube_store_ptrent **ptab;	/* linear probing, at most 3/4 full */
	size_t ptab_mask, ptab_used;
	kube_store_change_fn *changed;
	void *ctx;
	bool pod_names;
	uint64_t key[2];
	size_t n_nss, n_svcs, n_slices, n_eps, n_pods;
	uint32_t serial;
	uint32_t gen[STORE_NKINDS];
	uint8_t zone_len;
	uint8_t zone[255];			/* lower-case wire, without the root label */
};

/* A PTR pair of one service, for diffing a service's reverse names across a change. */
struct kube_store_pair {
	struct kube_ip ip;
	const char *label;
};

/* A service's merged state, built aside so a failed allocation leaves the old one intact. */
struct kube_store_merge {
	struct kube_endpoint *eps;
	size_t n_eps;
	struct kube_ip *pool;
	struct kube_port *uports;
	size_t n_uports;
};

/* ---- small helpers ------------------------------------------------------------------------ */

static unsigned
kube_store_hash(const struct kube_store *s, const void *data, size_t len)
{
	uint64_t m = hash_siphash13(s->key, data, len);

	return (unsigned)(m ^ (m >> 32));
}

static char
kube_store_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool
kube_store_alnum(char c, bool upper_ok)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       (upper_ok && c >= 'A' && c <= 'Z');
}

/* An RFC 1123 label: 1..63 of [a-z0-9-], alphanumeric at both ends. */
static bool
kube_store_label_ok(const char *p, size_t len, bool upper_ok)
{
	if (!p || len == 0 || len > STORE_LABEL_MAX)
		return false;
	if (!kube_store_alnum(p[0], upper_ok) || !kube_store_alnum(p[len - 1], upper_ok))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!kube_store_alnum(p[i], upper_ok) && p[i] != '-')
			return false;
	return true;
}

static bool
kube_store_cstr_label_ok(const char *p, bool upper_ok)
{
	return p && kube_store_label_ok(p, strnlen(p, STORE_LABEL_MAX + 1), upper_ok);
}

/* Object names that DNS never shows (slices, pods): 1..253 printable bytes. */
static bool
kube_store_objname_ok(const char *p)
{
	size_t len;

	if (!p)
		return false;
	len = strnlen(p, STORE_NAME_MAX + 1);
	if (len == 0 || len > STORE_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)p[i] <= ' ' || (unsigned char)p[i] >= 0x7f)
			return false;
	return true;
}

/* "ns\0name", lower-cased, into buf (STORE_KEY_MAX + 1 bytes); returns the length. */
static size_t
kube_store_mkkey(char *buf, const char *ns, size_t ns_len, const char *name, size_t name_len)
{
	for (size_t i = 0; i < ns_len; i++)
		buf[i] = kube_store_lower(ns[i]);
	buf[ns_len] = '\0';
	for (size_t i = 0; i < name_len; i++)
		buf[ns_len + 1 + i] = kube_store_lower(name[i]);
	return ns_len + 1 + name_len;
}

/* The address with the bytes its family does not use zeroed: usable as a hash key. */
static bool
kube_store_ip_norm(struct kube_ip *out, const struct kube_ip *in)
{
	memset(out, 0, sizeof(*out));
	out->family = in->family;
	if (in->family == AF_INET)
		memcpy(out->addr, in->addr, 4);
	else if (in->family == AF_INET6)
		memcpy(out->addr, in->addr, 16);
	else
		return false;
	return true;
}

static int
kube_store_ip_cmp(const struct kube_ip *a, const struct kube_ip *b)
{
	return memcmp(a, b, sizeof(*a));
}

static bool
kube_store_ips_ok(const struct kube_ip *ips, size_t n, int family)
{
	if (n > KUBE_MAX_IPS || (n && !ips))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((ips[i].family != AF_INET && ips[i].family != AF_INET6) ||
		    (family && ips[i].family != family))
			return false;
	return true;
}

static bool
kube_store_port_eq(const struct kube_port *a, const struct kube_port *b)
{
	return a->port == b->port && strcasecmp(a->name, b->name) == 0 &&
	       strcasecmp(a->protocol, b->protocol) == 0;
}

static bool
kube_store_ports_eq(const struct kube_port *a, size_t na, const struct kube_port *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (!kube_store_port_eq(&a[i], &b[i]))
			return false;
	return true;
}

static const char *
kube_store_proto(const struct kube_port *p)
{
	return p->protocol ? p->protocol : "TCP";
}

/* Port entries are checked even when skipped, so bad input is refused consistently. */
static bool
kube_store_port_ok(const struct kube_port *p)
{
	const char *proto = kube_store_proto(p);
	size_t len = strnlen(proto, STORE_PROTO_MAX + 1);

	if (len == 0 || len > STORE_PROTO_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((proto[i] >= 'a' && proto[i] <= 'z') || (proto[i] >= 'A' && proto[i] <= 'Z')))
			return false;
	return !p->name || !p->name[0] || kube_store_cstr_label_ok(p->name, true);
}

/* Only named ports with a number make SRV records; duplicates collapse onto the first. */
static bool
kube_store_port_keep(const struct kube_port *p, const struct kube_port *kept, size_t n_kept)
{
	struct kube_port q = { .name = p->name, .protocol = kube_store_proto(p), .port = p->port };

	if (!p->name || !p->name[0] || !p->port)
		return false;
	for (size_t i = 0; i < n_kept; i++)
		if (kube_store_port_eq(&kept[i], &q))
			return false;
	return true;
}

/* Copy the kept ports of src into dst, strings at *strp; returns how many. */
static size_t
kube_store_ports_copy(struct kube_port *dst, const struct kube_port *src, size_t n, char **strp)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		const char *proto = kube_store_proto(&src[i]);
		size_t nl, pl;

		if (!kube_store_port_keep(&src[i], dst, k))
			continue;
		nl = strlen(src[i].name) + 1;
		pl = strlen(proto) + 1;
		dst[k].name = memcpy(*strp, src[i].name, nl);
		dst[k].protocol = memcpy(*strp + nl, proto, pl);
		dst[k].port = src[i].port;
		*strp += nl + pl;
		k++;
	}
	return k;
}

static size_t
kube_store_ports_strlen(const struct kube_port *p, size_t n)
{
	size_t len = 0;

	for (size_t i = 0; i < n; i++)
		if (p[i].name && p[i].name[0])
			len += strlen(p[i].name) + 1 + strlen(kube_store_proto(&p[i])) + 1;
	return len;
}

/* ---- change reports ----------------------------------------------------------------------- */

static size_t
kube_store_wire_label(uint8_t *w, size_t off, const char *l, size_t len)
{
	w[off] = (uint8_t)len;
	for (size_t i = 0; i < len; i++)
		w[off + 1 + i] = (uint8_t)kube_store_lower(l[i]);
	return off + 1 + len;
}

/* Report "<l1>.<l2>.<l3>.<zone>." (l1 may be NULL). */
static void
kube_store_report3(struct kube_store *s, const char *l1, const char *l2, const char *l3)
{
	uint8_t w[255 + 64];
	size_t off = 0;

	if (!s->changed)
		return;
	if (l1)
		off = kube_store_wire_label(w, off, l1, strlen(l1));
	off = kube_store_wire_label(w, off, l2, strlen(l2));
	off = kube_store_wire_label(w, off, l3, strlen(l3));
	if (off + s->zone_len + 1 > 255)
		return;		/* no such name can be asked: nothing cached under it */
	memcpy(w + off, s->zone, s->zone_len);
	w[off + s->zone_len] = 0;
	s->changed(s->ctx, w, off + s->zone_len + 1);
}

static void
kube_store_report_svc(struct kube_store *s, const struct kube_service *svc)
{
	kube_store_report3(s, svc->name, svc->key, "svc");
}

/* d.c.b.a.in-addr.arpa. or the 32 nibbles of ip6.arpa. */
static void
kube_store_report_ip(struct kube_store *s, const struct kube_ip *ip)
{
	static const char hex[] = "0123456789abcdef";
	static const uint8_t v4[] = "\7in-addr\4arpa";
	static const uint8_t v6[] = "\3ip6\4arpa";
	uint8_t w[128];
	size_t off = 0;

	if (!s->changed)
		return;
	if (ip->family == AF_INET) {
		for (int i = 3; i >= 0; i--) {
			char d[4];
			size_t n = 0;
			unsigned v = ip->addr[i];

			if (v >= 100)
				d[n++] = (char)('0' + v / 100);
			if (v >= 10)
				d[n++] = (char)('0' + v / 10 % 10);
			d[n++] = (char)('0' + v % 10);
			off = kube_store_wire_label(w, off, d, n);
		}
		memcpy(w + off, v4, sizeof(v4));
		s->changed(s->ctx, w, off + sizeof(v4));
		return;
	}
	for (int i = 15; i >= 0; i--) {
		off = kube_store_wire_label(w, off, &hex[ip->addr[i] & 0xf], 1);
		off = kube_store_wire_label(w, off, &hex[ip->addr[i] >> 4], 1);
	}
	memcpy(w + off, v6, sizeof(v6));
	s->changed(s->ctx, w, off + sizeof(v6));
}

static void
kube_store_bump(struct kube_store *s)
{
	s->serial++;
}

/* ---- the PTR index ------------------------------------------------------------------------ */

static size_t
kube_store_ptr_home(const struct kube_store *s, const struct kube_ip *ip)
{
	return kube_store_hash(s, ip, sizeof(*ip)) & s->ptab_mask;
}

/* The slot holding ip, or the empty slot where it would go. The table is never full. */
static size_t
kube_store_ptr_slot(const struct kube_store *s, const struct kube_ip *ip)
{
	size_t i = kube_store_ptr_home(s, ip);

	while (s->ptab[i] && kube_store_ip_cmp(&s->ptab[i]->ip, ip) != 0)
		i = (i + 1) & s->ptab_mask;
	return i;
}

static struct kube_store_ptrent *
kube_store_ptr_find(const struct kube_store *s, const struct kube_ip *ip)
{
	return s->ptab ? s->ptab[kube_store_ptr_slot(s, ip)] : NULL;
}

static int
kube_store_ptr_grow(struct kube_store *s)
{
	size_t cap = s->ptab ? 2 * (s->ptab_mask + 1) : 64, old = s->ptab ? s->ptab_mask + 1 : 0;
	struct kube_store_ptrent **t = calloc(cap, sizeof(*t)), **ot = s->ptab;

	if (!t)
		return -ENOMEM;
	s->ptab = t;
	s->ptab_mask = cap - 1;
	for (size_t i = 0; i < old; i++)
		if (ot[i])
			t[kube_store_ptr_slot(s, &ot[i]->ip)] = ot[i];
	free(ot);
	return 0;
}

/* Backward-shift deletion: no tombstones, so probe chains never outgrow the live entries. */
static void
kube_store_ptr_unslot(struct kube_store *s, size_t i)
{
	size_t j = i;

	for (;;) {
		size_t k;

		j = (j + 1) & s->ptab_mask;
		if (!s->ptab[j])
			break;
		k = kube_store_ptr_home(s, &s->ptab[j]->ip);
		/* ptab[j] may fill the hole at i unless its home lies cyclically in (i, j] */
		if (j > i ? (k <= i || k > j) : (k <= i && k > j)) {
			s->ptab[i] = s->ptab[j];
			i = j;
		}
	}
	s->ptab[i] = NULL;
	s->ptab_used--;
}

static struct kube_ptr *
kube_store_ptr_ref(struct kube_store_ptrent *e, uint32_t i)
{
	return i == 0 ? &e->first : &e->more[i - 1];
}

static int
kube_store_ptr_add(struct kube_store *s, const struct kube_ip *ip, const struct kube_service *svc,
		   const char *label)
{
	struct kube_store_ptrent *e = kube_store_ptr_find(s, ip);
	struct kube_ptr *more;

	if (!e) {
		if (!s->ptab || (s->ptab_used + 1) * 4 > (s->ptab_mask + 1) * 3)
			if (kube_store_ptr_grow(s) < 0)
				return -ENOMEM;
		e = calloc(1, sizeof(*e));
		if (!e)
			return -ENOMEM;
		e->ip = *ip;
		e->n = 1;
		e->first = (struct kube_ptr){ .svc = svc, .label = label };
		s->ptab[kube_store_ptr_slot(s, ip)] = e;
		s->ptab_used++;
		return 0;
	}
	more = realloc(e->more, e->n * sizeof(*more));
	if (!more)
		return -ENOMEM;
	e->more = more;
	more[e->n - 1] = (struct kube_ptr){ .svc = svc, .label = label };
	e->n++;
	return 0;
}

static void
kube_store_ptr_del(struct kube_store *s, const struct kube_ip *ip, const struct kube_service *svc,
		   const char *label)
{
	size_t slot = s->ptab ? kube_store_ptr_slot(s, ip) : 0;
	struct kube_store_ptrent *e = s->ptab ? s->ptab[slot] : NULL;
	uint32_t i;

	if (!e)
		return;
	for (i = 0; i < e->n; i++) {
		struct kube_ptr *r = kube_store_ptr_ref(e, i);

		if (r->svc == svc && r->label == label)
			break;
	}
	if (i == e->n)
		return;
	*kube_store_ptr_ref(e, i) = *kube_store_ptr_ref(e, e->n - 1);
	if (--e->n == 0) {
		kube_store_ptr_unslot(s, slot);
		free(e->more);
		free(e);
	} else if (e->n == 1) {
		free(e->more);
		e->more = NULL;
	}
}

static int
kube_store_pair_cmp(const void *a, const void *b)
{
	const struct kube_store_pair *x = a, *y = b;
	int c = kube_store_ip_cmp(&x->ip, &y->ip);

	if (c || x->label == y->label)
		return c;
	if (!x->label || !y->label)
		return x->label ? 1 : -1;
	return strcmp(x->label, y->label);
}

/* ---- descriptions ------------------------------------------------------------------------- */

static int
kube_store_desc_build(const struct kube_service_obj *o, struct kube_store_desc **out)
{
	size_t n_ips = o->kind == KUBE_SERVICE_CLUSTER_IP ? o->n_ips : 0;
	size_t strl = kube_store_ports_strlen(o->ports, o->n_ports);
	size_t ext = o->kind == KUBE_SERVICE_EXTERNAL_NAME ? strlen(o->external_name) + 1 : 0;
	struct kube_store_desc *d;
	char *str;

	d = calloc(1, sizeof(*d) + o->n_ports * sizeof(struct kube_port) +
			      n_ips * sizeof(struct kube_ip) + strl + ext);
	if (!d)
		return -ENOMEM;
	d->kind = o->kind;
	d->ports = (struct kube_port *)(d + 1);
	d->ips = (struct kube_ip *)(d->ports + o->n_ports);
	str = (char *)(d->ips + n_ips);
	d->n_ports = kube_store_ports_copy(d->ports, o->ports, o->n_ports, &str);
	for (size_t i = 0; i < n_ips; i++)
		kube_store_ip_norm(&d->ips[d->n_ips++], &o->ips[i]);
	if (ext)
		d->external_name = memcpy(str, o->external_name, ext);
	*out = d;
	return 0;
}

static bool
kube_store_desc_eq(const struct kube_store_desc *a, const struct kube_store_desc *b)
{
	if (a->kind != b->kind || a->n_ips != b->n_ips ||
	    (a->n_ips && memcmp(a->ips, b->ips, a->n_ips * sizeof(*a->ips)) != 0))
		return false;
	if (!a->external_name != !b->external_name ||
	    (a->external_name && strcmp(a->external_name, b->external_name) != 0))
		return false;
	return kube_store_ports_eq(a->ports, a->n_ports, b->ports, b->n_ports);
}

/* A DNS name of labels of 1..63 printable bytes, at most 253 in all, a final dot allowed. */
static bool
kube_store_dname_ok(const char *p)
{
	size_t len, lab = 0;

	if (!p)
		return false;
	len = strnlen(p, STORE_NAME_MAX + 2);
	if (len && p[len - 1] == '.')
		len--;
	if (len == 0 || len > STORE_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)p[i] <= ' ' || (unsigned char)p[i] >= 0x7f)
			return false;
		if (p[i] != '.' && ++lab <= STORE_LABEL_MAX)
			continue;
		if (p[i] != '.' || lab == 0)
			return false;
		lab = 0;
	}
	return lab > 0;
}

static bool
kube_store_svc_obj_ok(const struct kube_service_obj *o)
{
	if (!o || !kube_store_cstr_label_ok(o->ns, false) ||
	    !kube_store_cstr_label_ok(o->name, false))
		return false;
	if (o->kind != KUBE_SERVICE_CLUSTER_IP && o->kind != KUBE_SERVICE_HEADLESS &&
	    o->kind != KUBE_SERVICE_EXTERNAL_NAME)
		return false;
	if (o->kind == KUBE_SERVICE_EXTERNAL_NAME && !kube_store_dname_ok(o->external_name))
		return false;
	if (!kube_store_ips_ok(o->ips, o->n_ips, 0))
		return false;
	if (o->n_ports > KUBE_MAX_PORTS || (o->n_ports && !o->ports))
		return false;
	for (size_t i = 0; i < o->n_ports; i++)
		if (!kube_store_port_ok(&o->ports[i]))
			return false;
	return true;
}

/* ---- slice contents ----------------------------------------------------------------------- */

/* The endpoint's DNS label into buf (64 bytes), lower-cased: its hostname; else, with
 * --kube-endpoint-pod-names, its pod name when that is a label; else its first IP with '.'
 * and ':' turned into '-' (CoreDNS endpointHostname: "10-0-0-1", "fd00--1"). */
static size_t
kube_store_ep_label(const struct kube_store *s, const struct kube_endpoint_obj *e, char *buf)
{
	const char *src = NULL;
	size_t len;

	if (e->hostname && e->hostname[0])
		src = e->hostname;
	else if (s->pod_names && kube_store_cstr_label_ok(e->pod_name, true))
		src = e->pod_name;
	if (src) {
		len = strlen(src);
		for (size_t i = 0; i <= len; i++)
			buf[i] = kube_store_lower(src[i]);
		return len;
	}
	if (!inet_ntop(e->ips[0].family, e->ips[0].addr, buf, 64))
		buf[0] = '\0';
	for (len = 0; buf[len]; len++)
		if (buf[len] == '.' || buf[len] == ':')
			buf[len] = '-';
	return len;
}

static bool
kube_store_ep_obj_ok(const struct kube_endpoint_obj *e, int family)
{
	if (!kube_store_ips_ok(e->ips, e->n_ips, family) || (family == 0 && e->n_ips))
		return false;
	return !e->hostname || !e->hostname[0] || kube_store_cstr_label_ok(e->hostname, true);
}

static bool
kube_store_slice_obj_ok(const struct kube_slice_obj *o)
{
	if (!o || !kube_store_cstr_label_ok(o->ns, false) || !kube_store_objname_ok(o->name) ||
	    !kube_store_cstr_label_ok(o->service, false))
		return false;
	if (o->family != 0 && o->family != AF_INET && o->family != AF_INET6)
		return false;
	if (o->n_endpoints > KUBE_MAX_ENDPOINTS || (o->n_endpoints && !o->endpoints))
		return false;
	if (o->n_ports > KUBE_MAX_PORTS || (o->n_ports && !o->ports))
		return false;
	for (size_t i = 0; i < o->n_ports; i++)
		if (!kube_store_port_ok(&o->ports[i]))
			return false;
	for (size_t i = 0; i < o->n_endpoints; i++)
		if (!kube_store_ep_obj_ok(&o->endpoints[i], o->family))
			return false;
	return true;
}

/* Endpoints without addresses make no record and are not kept. */
static int
kube_store_sdata_build(const struct kube_store *s, const struct kube_slice_obj *o,
		       struct kube_store_sdata **out)
{
	size_t n_eps = 0, n_ips = 0, strl = kube_store_ports_strlen(o->ports, o->n_ports);
	struct kube_store_sdata *d;
	char lbl[64], *str;

	for (size_t i = 0; i < o->n_endpoints; i++) {
		if (!o->endpoints[i].n_ips)
			continue;
		n_eps++;
		n_ips += o->endpoints[i].n_ips;
		strl += kube_store_ep_label(s, &o->endpoints[i], lbl) + 1;
	}
	d = calloc(1, sizeof(*d) + n_eps * sizeof(*d->eps) + o->n_ports * sizeof(*d->ports) +
			      n_ips * sizeof(*d->ips) + strl);
	if (!d)
		return -ENOMEM;
	d->eps = (struct kube_store_sep *)(d + 1);
	d->ports = (struct kube_port *)(d->eps + n_eps);
	d->ips = (struct kube_ip *)(d->ports + o->n_ports);
	str = (char *)(d->ips + n_ips);
	d->n_ports = kube_store_ports_copy(d->ports, o->ports, o->n_ports, &str);
	for (size_t i = 0; i < o->n_endpoints; i++) {
		const struct kube_endpoint_obj *e = &o->endpoints[i];
		struct kube_store_sep *sep;
		size_t len;

		if (!e->n_ips)
			continue;
		sep = &d->eps[d->n_eps++];
		len = kube_store_ep_label(s, e, lbl);
		sep->label = memcpy(str, lbl, len + 1);
		str += len + 1;
		sep->ip_idx = (uint32_t)d->n_ips;
		sep->n_ips = (uint8_t)e->n_ips;
		sep->ready = e->ready;
		for (size_t j = 0; j < e->n_ips; j++)
			kube_store_ip_norm(&d->ips[d->n_ips++], &e->ips[j]);
	}
	*out = d;
	return 0;
}

static bool
kube_store_sdata_eq(const struct kube_store_sdata *a, const struct kube_store_sdata *b)
{
	if (a->n_eps != b->n_eps || a->n_ips != b->n_ips ||
	    !kube_store_ports_eq(a->ports, a->n_ports, b->ports, b->n_ports))
		return false;
	if (a->n_ips && memcmp(a->ips, b->ips, a->n_ips * sizeof(*a->ips)) != 0)
		return false;
	for (size_t i = 0; i < a->n_eps; i++)
		if (a->eps[i].ip_idx != b->eps[i].ip_idx || a->eps[i].n_ips != b->eps[i].n_ips ||
		    a->eps[i].ready != b->eps[i].ready || strcmp(a->eps[i].label, b->eps[i].label))
			return false;
	return true;
}

/* ---- merging a service's slices ----------------------------------------------------------- */

struct kube_store_mep {
	const struct kube_store_sdata *d;
	const struct kube_store_sep *e;
};

struct kube_store_mref {
	const struct kube_ip *ip;
	size_t pos;
};

static int
kube_store_mref_cmp(const void *a, const void *b)
{
	const struct kube_store_mref *x = a, *y = b;
	int c = kube_store_ip_cmp(x->ip, y->ip);

	return c ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

static int
kube_store_ep_cmp(const void *a, const void *b)
{
	const struct kube_endpoint *x = a, *y = b;
	int c = strcmp(x->label, y->label);

	return c ? c : kube_store_ip_cmp(&x->ips[0], &y->ips[0]);
}

static void
kube_store_merge_free(struct kube_store_merge *m)
{
	free(m->eps);
	free(m->pool);
	free(m->uports);
	memset(m, 0, sizeof(*m));
}

static int
kube_store_merge_ports(const struct kube_service *svc, struct kube_store_merge *m)
{
	size_t n = 0;

	for (const struct kube_store_slice *sl = svc->slices; sl; sl = sl->svc_next)
		n += sl->data->n_ports;
	n = n < KUBE_MAX_PORTS ? n : KUBE_MAX_PORTS;
	if (!n)
		return 0;
	m->uports = malloc(n * sizeof(*m->uports));
	if (!m->uports)
		return -ENOMEM;
	for (const struct kube_store_slice *sl = svc->slices; sl; sl = sl->svc_next)
		for (size_t i = 0; i < sl->data->n_ports && m->n_uports < n; i++)
			if (kube_store_port_keep(&sl->data->ports[i], m->uports, m->n_uports))
				m->uports[m->n_uports++] = sl->data->ports[i];
	return 0;
}

/* keep[pos] = this address (in `order`, flattened) is its first occurrence. Ready endpoints
 * come first in `order`, so when an address is in two slices the ready copy wins. */
static void
kube_store_merge_dedup(const struct kube_store_mep *order, size_t n_eps,
		       struct kube_store_mref *refs, size_t n_ips, uint8_t *keep)
{
	size_t pos = 0;

	for (size_t k = 0; k < n_eps; k++)
		for (size_t j = 0; j < order[k].e->n_ips; j++, pos++)
			refs[pos] = (struct kube_store_mref){
				.ip = &order[k].d->ips[order[k].e->ip_idx + j], .pos = pos };
	qsort(refs, n_ips, sizeof(*refs), kube_store_mref_cmp);
	for (size_t i = 0; i < n_ips; i++)
		keep[refs[i].pos] = i == 0 || kube_store_ip_cmp(refs[i - 1].ip, refs[i].ip) != 0;
}

/* Build the endpoint array from the kept addresses: an endpoint keeps pointing at its slice's
 * addresses unless dedup took some of them, then the rest are copied to the pool. */
static int
kube_store_merge_fill(const struct kube_store_mep *order, size_t n_eps, const uint8_t *keep,
		      struct kube_store_merge *m)
{
	size_t pos = 0, n_kept = 0, n_pool = 0, np = 0;

	for (size_t k = 0; k < n_eps; pos += order[k++].e->n_ips) {
		size_t c = 0, n = order[k].e->n_ips;

		for (size_t j = 0; j < n; j++)
			c += keep[pos + j];
		n_kept += c > 0;
		n_pool += c < n ? c : 0;
	}
	m->eps = malloc(n_kept * sizeof(*m->eps));
	m->pool = n_pool ? malloc(n_pool * sizeof(*m->pool)) : NULL;
	if (!m->eps || (n_pool && !m->pool))
		return -ENOMEM;
	pos = 0;
	for (size_t k = 0; k < n_eps; pos += order[k++].e->n_ips) {
		const struct kube_store_sep *e = order[k].e;
		const struct kube_ip *ips = &order[k].d->ips[e->ip_idx];
		struct kube_endpoint *x;
		size_t c = 0;

		for (size_t j = 0; j < e->n_ips; j++)
			c += keep[pos + j];
		if (!c)
			continue;
		x = &m->eps[m->n_eps++];
		*x = (struct kube_endpoint){ .label = e->label, .ips = ips, .n_ips = c,
					     .ready = e->ready };
		if (c == e->n_ips)
			continue;
		x->ips = &m->pool[np];
		for (size_t j = 0; j < e->n_ips; j++)
			if (keep[pos + j])
				m->pool[np++] = ips[j];
	}
	qsort(m->eps, m->n_eps, sizeof(*m->eps), kube_store_ep_cmp);
	return 0;
}

/* The union of svc's slices, duplicate addresses removed, sorted by label (so the endpoints
 * sharing a label are consecutive and a label lookup is a binary search). Costs
 * O(n log n) in the service's own endpoints; touches nothing of svc. */
static int
kube_store_merge(const struct kube_service *svc, struct kube_store_merge *m)
{
	size_t n_eps = 0, n_ips = 0, k = 0;
	struct kube_store_mep *order = NULL;
	struct kube_store_mref *refs = NULL;
	uint8_t *keep = NULL;
	int err = -ENOMEM;

	memset(m, 0, sizeof(*m));
	for (const struct kube_store_slice *sl = svc->slices; sl; sl = sl->svc_next) {
		n_eps += sl->data->n_eps;
		n_ips += sl->data->n_ips;
	}
	if (kube_store_merge_ports(svc, m) < 0)
		return -ENOMEM;
	if (!n_eps)
		return 0;
	order = malloc(n_eps * sizeof(*order));
	refs = malloc(n_ips * sizeof(*refs));
	keep = malloc(n_ips);
	if (!order || !refs || !keep)
		goto out;
	for (int pass = 0; pass < 2; pass++)
		for (const struct kube_store_slice *sl = svc->slices; sl; sl = sl->svc_next)
			for (size_t i = 0; i < sl->data->n_eps; i++)
				if (sl->data->eps[i].ready == (pass == 0))
					order[k++] = (struct kube_store_mep){ sl->data,
									      &sl->data->eps[i] };
	kube_store_merge_dedup(order, n_eps, refs, n_ips, keep);
	err = kube_store_merge_fill(order, n_eps, keep, m);
out:
	free(order);
	free(refs);
	free(keep);
	if (err)
		kube_store_merge_free(m);
	return err;
}

static bool
kube_store_eps_eq(const struct kube_endpoint *a, size_t na, const struct kube_endpoint *b,
		  size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (a[i].ready != b[i].ready || a[i].n_ips != b[i].n_ips ||
		    strcmp(a[i].label, b[i].label) != 0 ||
		    memcmp(a[i].ips, b[i].ips, a[i].n_ips * sizeof(*a[i].ips)) != 0)
			return false;
	return true;
}

static void
kube_store_merge_install(struct kube_service *svc, struct kube_store_merge *m)
{
	free(svc->eps);
	free(svc->pool);
	free(svc->uports);
	svc->eps = m->eps;
	svc->n_eps = m->n_eps;
	svc->pool = m->pool;
	svc->uports = m->uports;
	svc->n_uports = m->n_uports;
	memset(m, 0, sizeof(*m));
}

/* ---- publishing a service: PTR entries and change reports --------------------------------- */

/* A service's PTR pairs before a change; `failed`: they could not be listed, so every
 * reverse name was reported at capture time instead of diffed. */
struct kube_store_before {
	struct kube_store_pair *pairs;
	size_t n;
	bool failed;
};

/* Every ClusterIP (label NULL) and every ready endpoint address (CoreDNS indexes only ready
 * addresses) of a visible service, through fn; returns the first error fn gave. */
static int
kube_store_svc_walk(struct kube_store *s, const struct kube_service *svc,
		    int (*fn)(struct kube_store *, const struct kube_ip *,
			      const struct kube_service *, const char *))
{
	const struct kube_store_desc *d = svc->desc;
	int err = 0;

	if (!d)
		return 0;
	for (size_t i = 0; d->kind == KUBE_SERVICE_CLUSTER_IP && i < d->n_ips; i++)
		if (fn(s, &d->ips[i], svc, NULL) < 0)
			err = -ENOMEM;
	for (size_t i = 0; i < svc->n_eps; i++)
		for (size_t j = 0; svc->eps[i].ready && j < svc->eps[i].n_ips; j++)
			if (fn(s, &svc->eps[i].ips[j], svc, svc->eps[i].label) < 0)
				err = -ENOMEM;
	return err;
}

static int
kube_store_walk_del(struct kube_store *s, const struct kube_ip *ip, const struct kube_service *svc,
		    const char *label)
{
	kube_store_ptr_del(s, ip, svc, label);
	return 0;
}

static int
kube_store_walk_report(struct kube_store *s, const struct kube_ip *ip,
		       const struct kube_service *svc, const char *label)
{
	(void)svc;
	(void)label;
	kube_store_report_ip(s, ip);
	return 0;
}

static int
kube_store_svc_pairs(const struct kube_service *svc, struct kube_store_pair **out, size_t *n_out)
{
	const struct kube_store_desc *d = svc->desc;
	struct kube_store_pair *p;
	size_t n;

	*out = NULL;
	*n_out = 0;
	if (!d)
		return 0;
	n = d->kind == KUBE_SERVICE_CLUSTER_IP ? d->n_ips : 0;
	for (size_t i = 0; i < svc->n_eps; i++)
		n += svc->eps[i].ready ? svc->eps[i].n_ips : 0;
	if (!n)
		return 0;
	p = malloc(n * sizeof(*p));
	if (!p)
		return -ENOMEM;
	n = 0;
	for (size_t i = 0; d->kind == KUBE_SERVICE_CLUSTER_IP && i < d->n_ips; i++)
		p[n++] = (struct kube_store_pair){ .ip = d->ips[i], .label = NULL };
	for (size_t i = 0; i < svc->n_eps; i++)
		for (size_t j = 0; svc->eps[i].ready && j < svc->eps[i].n_ips; j++)
			p[n++] = (struct kube_store_pair){ .ip = svc->eps[i].ips[j],
							   .label = svc->eps[i].label };
	qsort(p, n, sizeof(*p), kube_store_pair_cmp);
	*out = p;
	*n_out = n;
	return 0;
}

/* Before changing svc: remember its PTR pairs and take them out of the index (with the old
 * labels, which stay readable until kube_store_svc_end()). Never fails. */
static void
kube_store_svc_begin(struct kube_store *s, struct kube_service *svc, struct kube_store_before *b)
{
	memset(b, 0, sizeof(*b));
	if (!svc)
		return;
	if (kube_store_svc_pairs(svc, &b->pairs, &b->n) < 0) {
		b->failed = true;
		kube_store_svc_walk(s, svc, kube_store_walk_report);
	}
	kube_store_svc_walk(s, svc, kube_store_walk_del);
}

/* After changing svc: put its PTR pairs back, report the reverse names whose pairs changed,
 * and the service's own name when `changed`. -ENOMEM: some PTR entries are missing. */
static int
kube_store_svc_end(struct kube_store *s, struct kube_service *svc, struct kube_store_before *b,
		   bool changed)
{
	const struct kube_ip *last = NULL;
	struct kube_store_pair *n = NULL;
	size_t nn = 0, i = 0, j = 0;
	int err;

	if (!svc)
		return 0;
	err = kube_store_svc_walk(s, svc, kube_store_ptr_add);
	if (kube_store_svc_pairs(svc, &n, &nn) < 0 || b->failed) {
		/* cannot diff: report every name on both sides */
		kube_store_svc_walk(s, svc, kube_store_walk_report);
		for (i = 0; i < b->n; i++)
			kube_store_report_ip(s, &b->pairs[i].ip);
		i = b->n;
		j = nn;
	}
	while (i < b->n || j < nn) {
		const struct kube_store_pair *o = b->pairs;
		int c = i == b->n ? 1 : j == nn ? -1 : kube_store_pair_cmp(&o[i], &n[j]);
		const struct kube_ip *ip;

		if (c == 0) {
			i++;
			j++;
			continue;
		}
		ip = c < 0 ? &o[i++].ip : &n[j++].ip;
		if (!last || kube_store_ip_cmp(last, ip) != 0)
			kube_store_report_ip(s, ip);
		last = ip;
	}
	if (changed)
		kube_store_report_svc(s, svc);
	free(n);
	free(b->pairs);
	memset(b, 0, sizeof(*b));
	return err;
}

/* ---- services ----------------------------------------------------------------------------- */

static size_t
kube_store_total(const struct kube_store *s)
{
	return s->n_nss + s->n_svcs + s->n_slices + s->n_pods;
}

static struct kube_service *
kube_store_svc_find(const struct kube_store *s, const char *key, size_t len)
{
	struct kube_service *svc;

	HASH_FIND_BYHASHVALUE(hh, s->svcs, key, len, kube_store_hash(s, key, len), svc);
	return svc;
}

/* The service entry for key, created as a placeholder when absent. */
static struct kube_service *
kube_store_svc_get(struct kube_store *s, const char *key, size_t len)
{
	struct kube_service *svc = kube_store_svc_find(s, key, len);

	if (svc)
		return svc;
	svc = calloc(1, sizeof(*svc) + len + 1);
	if (!svc)
		return NULL;
	memcpy(svc->key, key, len);
	svc->key_len = (uint16_t)len;
	svc->name = svc->key + strlen(svc->key) + 1;
	HASH_ADD_KEYPTR_BYHASHVALUE(hh, s->svcs, svc->key, len, kube_store_hash(s, key, len), svc);
	if (!svc->hh.tbl) {
		free(svc);
		return NULL;
	}
	return svc;
}

/* Free a placeholder nothing refers to any more. */
static void
kube_store_svc_gc(struct kube_store *s, struct kube_service *svc)
{
	if (!svc || svc->desc || svc->slices)
		return;
	HASH_DELETE(hh, s->svcs, svc);
	free(svc->eps);
	free(svc->pool);
	free(svc->uports);
	free(svc);
}

int
kube_store_upsert_service(struct kube_store *s, const struct kube_service_obj *o)
{
	char key[STORE_KEY_MAX + 1];
	struct kube_store_desc *d, *od;
	struct kube_store_before b;
	struct kube_service *svc;
	size_t len;
	int err;

	if (!kube_store_svc_obj_ok(o))
		return -EINVAL;
	len = kube_store_mkkey(key, o->ns, strlen(o->ns), o->name, strlen(o->name));
	svc = kube_store_svc_find(s, key, len);
	if ((!svc || !svc->desc) && kube_store_total(s) >= KUBE_STORE_MAX_OBJECTS)
		return -ENOSPC;
	err = kube_store_desc_build(o, &d);
	if (err)
		return err;
	if (svc && svc->desc && kube_store_desc_eq(svc->desc, d)) {
		svc->gen = s->gen[KUBE_KIND_SERVICE];
		free(d);
		return 0;
	}
	if (!svc && !(svc = kube_store_svc_get(s, key, len))) {
		free(d);
		return -ENOMEM;
	}
	kube_store_svc_begin(s, svc, &b);
	od = svc->desc;
	svc->desc = d;
	svc->gen = s->gen[KUBE_KIND_SERVICE];
	s->n_svcs += !od;
	err = kube_store_svc_end(s, svc, &b, true);
	free(od);
	kube_store_bump(s);
	return err;
}

static int
kube_store_svc_remove(struct kube_store *s, struct kube_service *svc)
{
	struct kube_store_before b;
	int err;

	kube_store_svc_begin(s, svc, &b);
	free(svc->desc);
	svc->desc = NULL;
	s->n_svcs--;
	err = kube_store_svc_end(s, svc, &b, true);
	kube_store_svc_gc(s, svc);
	kube_store_bump(s);
	return err;
}

int
kube_store_delete_service(struct kube_store *s, const char *ns, const char *name)
{
	char key[STORE_KEY_MAX + 1];
	struct kube_service *svc = NULL;
	size_t nl, ml;

	nl = ns ? strnlen(ns, STORE_LABEL_MAX + 1) : 0;
	ml = name ? strnlen(name, STORE_LABEL_MAX + 1) : 0;
	if (nl && nl <= STORE_LABEL_MAX && ml && ml <= STORE_LABEL_MAX)
		svc = kube_store_svc_find(s, key, kube_store_mkkey(key, ns, nl, name, ml));
	if (!svc || !svc->desc)
		return -ENOENT;
	return kube_store_svc_remove(s, svc);
}

/* ---- slices ------------------------------------------------------------------------------- */

static struct kube_store_slice *
kube_store_slice_find(const struct kube_store *s, const char *key, size_t len)
{
	struct kube_store_slice *sl;

	HASH_FIND_BYHASHVALUE(hh, s->slices, key, len, kube_store_hash(s, key, len), sl);
	return sl;
}

/* Move sl to svc's list (NULL: to none) with data d. */
static void
kube_store_slice_link(struct kube_store_slice *sl, struct kube_service *svc,
		      struct kube_store_sdata *d)
{
	if (sl->svc != svc) {
		if (sl->svc) {
			struct kube_store_slice **pp = &sl->svc->slices;

			while (*pp != sl)
				pp = &(*pp)->svc_next;
			*pp = sl->svc_next;
		}
		sl->svc_next = svc ? svc->slices : NULL;
		if (svc)
			svc->slices = sl;
		sl->svc = svc;
	}
	sl->data = d;
}

static int
kube_store_slice_merge(struct kube_service *a, struct kube_store_merge *ma,
		       struct kube_service *b, struct kube_store_merge *mb)
{
	memset(mb, 0, sizeof(*mb));
	if (a && kube_store_merge(a, ma) < 0)
		return -ENOMEM;
	if (b && b != a && kube_store_merge(b, mb) < 0) {
		kube_store_merge_free(ma);
		return -ENOMEM;
	}
	return 0;
}

static bool
kube_store_svc_install(struct kube_service *svc, struct kube_store_merge *m)
{
	bool changed = svc->desc && (!kube_store_eps_eq(svc->eps, svc->n_eps, m->eps, m->n_eps) ||
				     !kube_store_ports_eq(svc->uports, svc->n_uports, m->uports,
							  m->n_uports));

	kube_store_merge_install(svc, m);
	return changed;
}

/* Give sl the data nd under service nsvc (both NULL: detach it before deletion) and re-merge
 * the services it leaves and joins. On -ENOMEM an upsert is undone; a detach still happens,
 * leaving its service without endpoints until its next change rather than with dangling ones. */
static int
kube_store_slice_set(struct kube_store *s, struct kube_store_slice *sl, struct kube_service *nsvc,
		     struct kube_store_sdata *nd)
{
	struct kube_service *osvc = sl->svc;
	struct kube_store_sdata *od = sl->data;
	struct kube_store_merge mo = { 0 }, mn;
	struct kube_store_before bo, bn = { 0 };
	int err;

	kube_store_svc_begin(s, osvc, &bo);
	if (nsvc != osvc)
		kube_store_svc_begin(s, nsvc, &bn);
	kube_store_slice_link(sl, nsvc, nd);
	err = kube_store_slice_merge(osvc, &mo, nsvc, &mn);
	if (err && nd) {
		kube_store_slice_link(sl, osvc, od);
		kube_store_svc_end(s, osvc, &bo, false);
		kube_store_svc_end(s, nsvc != osvc ? nsvc : NULL, &bn, false);
		return err;
	}
	s->n_eps = s->n_eps - (od ? od->n_eps : 0) + (nd ? nd->n_eps : 0);
	if (osvc && kube_store_svc_end(s, osvc, &bo, kube_store_svc_install(osvc, &mo)) < 0)
		err = -ENOMEM;
	if (nsvc && nsvc != osvc &&
	    kube_store_svc_end(s, nsvc, &bn, kube_store_svc_install(nsvc, &mn)) < 0)
		err = -ENOMEM;
	free(od);
	kube_store_bump(s);
	return err;
}

static struct kube_store_slice *
kube_store_slice_new(struct kube_store *s, const char *key, size_t len)
{
	struct kube_store_slice *sl = calloc(1, sizeof(*sl) + len + 1);

	if (!sl)
		return NULL;
	memcpy(sl->key, key, len);
	sl->key_len = (uint16_t)len;
	HASH_ADD_KEYPTR_BYHASHVALUE(hh, s->slices, sl->key, len, kube_store_hash(s, key, len), sl);
	if (!sl->hh.tbl) {
		free(sl);
		return NULL;
	}
	s->n_slices++;
	return sl;
}

static void
kube_store_slice_remove(struct kube_store *s, struct kube_store_slice *sl)
{
	struct kube_service *svc = sl->svc;

	/* a failed re-merge leaves the service without endpoints, never with dangling ones */
	(void)kube_store_slice_set(s, sl, NULL, NULL);
	HASH_DELETE(hh, s->slices, sl);
	s->n_slices--;
	free(sl);
	kube_store_svc_gc(s, svc);
}

int
kube_store_upsert_slice(struct kube_store *s, const struct kube_slice_obj *o)
{
	char key[STORE_KEY_MAX + 1], skey[STORE_KEY_MAX + 1];
	struct kube_store_slice *sl;
	struct kube_store_sdata *d;
	struct kube_service *svc, *osvc;
	size_t len, slen;
	int err;

	if (!kube_store_slice_obj_ok(o))
		return -EINVAL;
	len = kube_store_mkkey(key, o->ns, strlen(o->ns), o->name, strlen(o->name));
	slen = kube_store_mkkey(skey, o->ns, strlen(o->ns), o->service, strlen(o->service));
	sl = kube_store_slice_find(s, key, len);
	if (!sl && kube_store_total(s) >= KUBE_STORE_MAX_OBJECTS)
		return -ENOSPC;
	err = kube_store_sdata_build(s, o, &d);
	if (err)
		return err;
	if (sl && sl->svc->key_len == slen && memcmp(sl->svc->key, skey, slen) == 0 &&
	    kube_store_sdata_eq(sl->data, d)) {
		sl->gen = s->gen[KUBE_KIND_SLICE];
		free(d);
		return 0;
	}
	svc = kube_store_svc_get(s, skey, slen);
	if (!sl && svc)
		sl = kube_store_slice_new(s, key, len);
	if (!svc || !sl) {
		kube_store_svc_gc(s, svc);
		free(d);
		return -ENOMEM;
	}
	osvc = sl->svc;
	err = kube_store_slice_set(s, sl, svc, d);
	if (err && sl->data != d) {
		free(d);
		if (!sl->data) {
			/* a new slice whose merge failed: take it out again */
			HASH_DELETE(hh, s->slices, sl);
			s->n_slices--;
			free(sl);
			sl = NULL;
		}
	}
	if (sl)
		sl->gen = s->gen[KUBE_KIND_SLICE];
	if (osvc != svc)
		kube_store_svc_gc(s, osvc);
	kube_store_svc_gc(s, svc);
	return err;
}

int
kube_store_delete_slice(struct kube_store *s, const char *ns, const char *name)
{
	char key[STORE_KEY_MAX + 1];
	struct kube_store_slice *sl = NULL;
	size_t nl, ml;

	nl = ns ? strnlen(ns, STORE_LABEL_MAX + 1) : 0;
	ml = name ? strnlen(name, STORE_NAME_MAX + 1) : 0;
	if (nl && nl <= STORE_LABEL_MAX && ml && ml <= STORE_NAME_MAX)
		sl = kube_store_slice_find(s, key, kube_store_mkkey(key, ns, nl, name, ml));
	if (!sl)
		return -ENOENT;
	kube_store_slice_remove(s, sl);
	return 0;
}

/* ---- namespaces --------------------------------------------------------------------------- */

static struct kube_store_ns *
kube_store_ns_find(const struct kube_store *s, const char *name, size_t len)
{
	char buf[STORE_LABEL_MAX];
	struct kube_store_ns *n;

	if (!len || len > STORE_LABEL_MAX)
		return NULL;
	for (size_t i = 0; i < len; i++)
		buf[i] = kube_store_lower(name[i]);
	HASH_FIND_BYHASHVALUE(hh, s->nss, buf, len, kube_store_hash(s, buf, len), n);
	return n;
}

/* A namespace's existence decides NODATA vs NXDOMAIN for its svc and pod subtrees. */
static void
kube_store_report_ns(struct kube_store *s, const char *ns)
{
	kube_store_report3(s, NULL, ns, "svc");
	kube_store_report3(s, NULL, ns, "pod");
}

int
kube_store_upsert_namespace(struct kube_store *s, const char *name)
{
	struct kube_store_ns *n;
	size_t len;

	if (!kube_store_cstr_label_ok(name, false))
		return -EINVAL;
	len = strlen(name);
	n = kube_store_ns_find(s, name, len);
	if (n) {
		n->gen = s->gen[KUBE_KIND_NAMESPACE];
		return 0;
	}
	if (kube_store_total(s) >= KUBE_STORE_MAX_OBJECTS)
		return -ENOSPC;
	n = calloc(1, sizeof(*n) + len + 1);
	if (!n)
		return -ENOMEM;
	memcpy(n->name, name, len);
	n->len = (uint8_t)len;
	n->gen = s->gen[KUBE_KIND_NAMESPACE];
	HASH_ADD_KEYPTR_BYHASHVALUE(hh, s->nss, n->name, len, kube_store_hash(s, name, len), n);
	if (!n->hh.tbl) {
		free(n);
		return -ENOMEM;
	}
	s->n_nss++;
	kube_store_report_ns(s, n->name);
	kube_store_bump(s);
	return 0;
}

static void
kube_store_ns_remove(struct kube_store *s, struct kube_store_ns *n)
{
	HASH_DELETE(hh, s->nss, n);
	s->n_nss--;
	kube_store_report_ns(s, n->name);
	free(n);
	kube_store_bump(s);
}

int
kube_store_delete_namespace(struct kube_store *s, const char *name)
{
	struct kube_store_ns *n = NULL;

	if (name)
		n = kube_store_ns_find(s, name, strnlen(name, STORE_LABEL_MAX + 1));
	if (!n)
		return -ENOENT;
	kube_store_ns_remove(s, n);
	return 0;
}

bool
kube_store_has_namespace(const struct kube_store *s, const char *ns, size_t ns_len)
{
	return kube_store_ns_find(s, ns, ns_len) != NULL;
}

/* ---- pods --------------------------------------------------------------------------------- */

static size_t
kube_store_podip_key(uint8_t *buf, const struct kube_ip *ip, const char *ns, size_t ns_len)
{
	memcpy(buf, ip, sizeof(*ip));
	for (size_t i = 0; i < ns_len; i++)
		buf[sizeof(*ip) + i] = (uint8_t)kube_store_lower(ns[i]);
	return sizeof(*ip) + ns_len;
}

static struct kube_store_podip *
kube_store_podip_find(const struct kube_store *s, const uint8_t *key, size_t len)
{
	struct kube_store_podip *p;

	HASH_FIND_BYHASHVALUE(hh, s->podips, key, len, kube_store_hash(s, key, len), p);
	return p;
}

static int
kube_store_podip_add(struct kube_store *s, const struct kube_ip *ip, const char *ns)
{
	uint8_t key[sizeof(struct kube_ip) + STORE_LABEL_MAX];
	size_t len = kube_store_podip_key(key, ip, ns, strlen(ns));
	struct kube_store_podip *p = kube_store_podip_find(s, key, len);

	if (p) {
		p->count++;
		return 0;
	}
	p = calloc(1, sizeof(*p) + len);
	if (!p)
		return -ENOMEM;
	memcpy(p->key, key, len);
	p->key_len = (uint16_t)len;
	p->count = 1;
	HASH_ADD_KEYPTR_BYHASHVALUE(hh, s->podips, p->key, len, kube_store_hash(s, key, len), p);
	if (!p->hh.tbl) {
		free(p);
		return -ENOMEM;
	}
	return 0;
}

static void
kube_store_podip_del(struct kube_store *s, const struct kube_ip *ip, const char *ns)
{
	uint8_t key[sizeof(struct kube_ip) + STORE_LABEL_MAX];
	size_t len = kube_store_podip_key(key, ip, ns, strlen(ns));
	struct kube_store_podip *p = kube_store_podip_find(s, key, len);

	if (p && --p->count == 0) {
		HASH_DELETE(hh, s->podips, p);
		free(p);
	}
}

static struct kube_store_pod *
kube_store_pod_find(const struct kube_store *s, const char *key, size_t len)
{
	struct kube_store_pod *p;

	HASH_FIND_BYHASHVALUE(hh, s->pods, key, len, kube_store_hash(s, key, len), p);
	return p;
}

static struct kube_store_pod *
kube_store_pod_new(struct kube_store *s, const char *key, size_t len)
{
	struct kube_store_pod *p = calloc(1, sizeof(*p) + len + 1);

	if (!p)
		return NULL;
	memcpy(p->key, key, len);
	p->key_len = (uint16_t)len;
	HASH_ADD_KEYPTR_BYHASHVALUE(hh, s->pods, p->key, len, kube_store_hash(s, key, len), p);
	if (!p->hh.tbl) {
		free(p);
		return NULL;
	}
	s->n_pods++;
	return p;
}

/* Give pod p the addresses ips (taking ownership), moving its index entries. */
static int
kube_store_pod_set(struct kube_store *s, struct kube_store_pod *p, struct kube_ip *ips, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (kube_store_podip_add(s, &ips[i], p->key) == 0)
			continue;
		while (i--)
			kube_store_podip_del(s, &ips[i], p->key);
		free(ips);
		return -ENOMEM;
	}
	for (size_t i = 0; i < p->n_ips; i++)
		kube_store_podip_del(s, &p->ips[i], p->key);
	free(p->ips);
	p->ips = ips;
	p->n_ips = (uint8_t)n;
	kube_store_report3(s, NULL, p->key, "pod");
	kube_store_bump(s);
	return 0;
}

int
kube_store_upsert_pod(struct kube_store *s, const struct kube_pod_obj *o)
{
	char key[STORE_KEY_MAX + 1];
	struct kube_store_pod *p;
	struct kube_ip *ips = NULL;
	bool created;
	size_t len;
	int err;

	if (!o || !kube_store_cstr_label_ok(o->ns, false) || !kube_store_objname_ok(o->name) ||
	    !kube_store_ips_ok(o->ips, o->n_ips, 0))
		return -EINVAL;
	len = kube_store_mkkey(key, o->ns, strlen(o->ns), o->name, strlen(o->name));
	p = kube_store_pod_find(s, key, len);
	if (!p && kube_store_total(s) >= KUBE_STORE_MAX_OBJECTS)
		return -ENOSPC;
	if (o->n_ips && !(ips = malloc(o->n_ips * sizeof(*ips))))
		return -ENOMEM;
	for (size_t i = 0; i < o->n_ips; i++)
		kube_store_ip_norm(&ips[i], &o->ips[i]);
	if (p && p->n_ips == o->n_ips &&
	    (!o->n_ips || memcmp(p->ips, ips, o->n_ips * sizeof(*ips)) == 0)) {
		p->gen = s->gen[KUBE_KIND_POD];
		free(ips);
		return 0;
	}
	created = !p;
	if (!p && !(p = kube_store_pod_new(s, key, len))) {
		free(ips);
		return -ENOMEM;
	}
	p->gen = s->gen[KUBE_KIND_POD];
	err = kube_store_pod_set(s, p, ips, o->n_ips);
	if (err && created) {
		HASH_DELETE(hh, s->pods, p);
		s->n_pods--;
		free(p);
	}
	return err;
}

static void
kube_store_pod_remove(struct kube_store *s, struct kube_store_pod *p)
{
	for (size_t i = 0; i < p->n_ips; i++)
		kube_store_podip_del(s, &p->ips[i], p->key);
	HASH_DELETE(hh, s->pods, p);
	s->n_pods--;
	if (p->n_ips)
		kube_store_report3(s, NULL, p->key, "pod");
	free(p->ips);
	free(p);
	kube_store_bump(s);
}

int
kube_store_delete_pod(struct kube_store *s, const char *ns, const char *name)
{
	char key[STORE_KEY_MAX + 1];
	struct kube_store_pod *p = NULL;
	size_t nl, ml;

	nl = ns ? strnlen(ns, STORE_LABEL_MAX + 1) : 0;
	ml = name ? strnlen(name, STORE_NAME_MAX + 1) : 0;
	if (nl && nl <= STORE_LABEL_MAX && ml && ml <= STORE_NAME_MAX)
		p = kube_store_pod_find(s, key, kube_store_mkkey(key, ns, nl, name, ml));
	if (!p)
		return -ENOENT;
	kube_store_pod_remove(s, p);
	return 0;
}

bool
kube_store_pod_ip(const struct kube_store *s, const char *ns, size_t ns_len,
		  const struct kube_ip *ip)
{
	uint8_t key[sizeof(struct kube_ip) + STORE_LABEL_MAX];
	struct kube_ip n;

	if (!ns_len || ns_len > STORE_LABEL_MAX || !ip || !kube_store_ip_norm(&n, ip))
		return false;
	return kube_store_podip_find(s, key, kube_store_podip_key(key, &n, ns, ns_len)) != NULL;
}

/* ---- lookups ------------------------------------------------------------------------------ */

const struct kube_service *
kube_store_service(const struct kube_store *s, const char *ns, size_t ns_len, const char *name,
		   size_t name_len)
{
	char key[STORE_KEY_MAX + 1];
	struct kube_service *svc;

	if (!ns_len || ns_len > STORE_LABEL_MAX || !name_len || name_len > STORE_LABEL_MAX)
		return NULL;
	svc = kube_store_svc_find(s, key, kube_store_mkkey(key, ns, ns_len, name, name_len));
	return svc && svc->desc ? svc : NULL;
}

enum kube_service_kind
kube_service_kind(const struct kube_service *svc)
{
	return svc->desc->kind;
}

const char *
kube_service_name(const struct kube_service *svc)
{
	return svc->name;
}

const char *
kube_service_namespace(const struct kube_service *svc)
{
	return svc->key;
}

const char *
kube_service_external_name(const struct kube_service *svc)
{
	return svc->desc->external_name;
}

size_t
kube_service_ips(const struct kube_service *svc, const struct kube_ip **out)
{
	*out = svc->desc->ips;
	return svc->desc->n_ips;
}

/* A ClusterIP service's SRV ports are its own; a headless one's are its endpoints' (the
 * slices carry the target ports, as CoreDNS answers). */
size_t
kube_service_ports(const struct kube_service *svc, const struct kube_port **out)
{
	if (svc->desc->kind == KUBE_SERVICE_HEADLESS) {
		*out = svc->uports;
		return svc->n_uports;
	}
	*out = svc->desc->ports;
	return svc->desc->n_ports;
}

size_t
kube_service_endpoints(const struct kube_service *svc, const struct kube_endpoint **out)
{
	*out = svc->eps;
	return svc->n_eps;
}

size_t
kube_service_endpoints_by_label(const struct kube_service *svc, const char *label,
				size_t label_len, const struct kube_endpoint **out)
{
	char buf[STORE_LABEL_MAX + 1];
	size_t lo = 0, hi = svc->n_eps, end;

	*out = NULL;
	if (!label_len || label_len > STORE_LABEL_MAX || memchr(label, '\0', label_len))
		return 0;
	for (size_t i = 0; i < label_len; i++)
		buf[i] = kube_store_lower(label[i]);
	buf[label_len] = '\0';
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(svc->eps[mid].label, buf) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (end = lo; end < svc->n_eps && strcmp(svc->eps[end].label, buf) == 0; end++)
		;
	if (end > lo)
		*out = &svc->eps[lo];
	return end - lo;
}

/* ClusterIP pairs first: CoreDNS answers a ClusterIP's PTR before looking at endpoints. */
size_t
kube_store_ptr(const struct kube_store *s, const struct kube_ip *ip, struct kube_ptr *out,
	       size_t max)
{
	struct kube_store_ptrent *e;
	struct kube_ip n;
	size_t k = 0;

	if (!ip || !kube_store_ip_norm(&n, ip) || !(e = kube_store_ptr_find(s, &n)))
		return 0;
	for (int pass = 0; pass < 2; pass++)
		for (uint32_t i = 0; i < e->n && k < max; i++) {
			struct kube_ptr *r = kube_store_ptr_ref(e, i);

			if ((r->label == NULL) == (pass == 0))
				out[k++] = *r;
		}
	return k;
}

void
kube_store_counts(const struct kube_store *s, struct kube_store_counts *out)
{
	*out = (struct kube_store_counts){ .namespaces = s->n_nss, .services = s->n_svcs,
					   .slices = s->n_slices, .endpoints = s->n_eps,
					   .pods = s->n_pods };
}

uint32_t
kube_store_serial(const struct kube_store *s)
{
	return s->serial;
}

/* ---- full replacement --------------------------------------------------------------------- */

void
kube_store_replace_begin(struct kube_store *s, enum kube_kind kind)
{
	assert((unsigned)kind < STORE_NKINDS);
	s->gen[kind]++;
}

void
kube_store_replace_end(struct kube_store *s, enum kube_kind kind)
{
	uint32_t gen = s->gen[kind];

	assert((unsigned)kind < STORE_NKINDS);
	if (kind == KUBE_KIND_NAMESPACE) {
		struct kube_store_ns *n, *tmp;

		HASH_ITER(hh, s->nss, n, tmp)
			if (n->gen != gen)
				kube_store_ns_remove(s, n);
	} else if (kind == KUBE_KIND_SERVICE) {
		struct kube_service *svc, *tmp;

		HASH_ITER(hh, s->svcs, svc, tmp)
			if (svc->desc && svc->gen != gen)
				(void)kube_store_svc_remove(s, svc);
	} else if (kind == KUBE_KIND_SLICE) {
		struct kube_store_slice *sl, *tmp;

		HASH_ITER(hh, s->slices, sl, tmp)
			if (sl->gen != gen)
				kube_store_slice_remove(s, sl);
	} else {
		struct kube_store_pod *p, *tmp;

		HASH_ITER(hh, s->pods, p, tmp)
			if (p->gen != gen)
				kube_store_pod_remove(s, p);
	}
}

/* ---- life cycle --------------------------------------------------------------------------- */

/* The zone as lower-case wire labels without the root; false if it is no DNS name. */
static bool
kube_store_set_zone(struct kube_store *s, const char *zone)
{
	size_t off = 0;

	while (*zone) {
		size_t len = strcspn(zone, ".");

		if (len == 0 || len > STORE_LABEL_MAX || off + 1 + len > 253)
			return false;
		off = kube_store_wire_label(s->zone, off, zone, len);
		zone += len;
		if (*zone == '.')
			zone++;
	}
	s->zone_len = (uint8_t)off;
	return off > 0;
}

struct kube_store *
kube_store_new(const struct kube_store_config *cfg)
{
	struct kube_store *s;

	assert(cfg);
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	if (!kube_store_set_zone(s, cfg->zone ? cfg->zone : "cluster.local")) {
		free(s);
		return NULL;
	}
	s->changed = cfg->changed;
	s->ctx = cfg->ctx;
	s->pod_names = cfg->endpoint_pod_names;
	/* pure module: the SOA serial starts from a constant, not the clock */
	s->serial = 1;
	hash_random_key(s->key);
	return s;
}

void
kube_store_free(struct kube_store *s)
{
	struct kube_store_ns *n, *ntmp;
	struct kube_service *svc, *stmp;
	struct kube_store_slice *sl, *sltmp;
	struct kube_store_pod *p, *ptmp;
	struct kube_store_podip *pi, *pitmp;

	if (!s)
		return;
	HASH_ITER(hh, s->nss, n, ntmp) {
		HASH_DELETE(hh, s->nss, n);
		free(n);
	}
	HASH_ITER(hh, s->slices, sl, sltmp) {
		HASH_DELETE(hh, s->slices, sl);
		free(sl->data);
		free(sl);
	}
	HASH_ITER(hh, s->svcs, svc, stmp) {
		HASH_DELETE(hh, s->svcs, svc);
		kube_store_merge_install(svc, &(struct kube_store_merge){ 0 });
		free(svc->desc);
		free(svc);
	}
	HASH_ITER(hh, s->pods, p, ptmp) {
		HASH_DELETE(hh, s->pods, p);
		free(p->ips);
		free(p);
	}
	HASH_ITER(hh, s->podips, pi, pitmp) {
		HASH_DELETE(hh, s->podips, pi);
		free(pi);
	}
	for (size_t i = 0; s->ptab && i <= s->ptab_mask; i++) {
		if (s->ptab[i])
			free(s->ptab[i]->more);
		free(s->ptab[i]);
	}
	free(s->ptab);
	free(s);
}
