/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * store.c - the kube resolver's in-memory cluster (store.h): the store's tables and life
 * cycle, what every kind shares (validation, keys, change reports), and the small kinds,
 * Namespaces and Pods. Tables are keyed by SipHash under one random key: namespaces,
 * services, slices and pods by lower-case "ns\0name" (uthash), and every (namespace, pod IP)
 * for --kube-pods=verified (uthash). Services live in store_svc.c, EndpointSlices and the
 * merge of a service's slices in store_slice.c, the PTR index in store_ptr.c; store_impl.h
 * is what they share. Every change is compared with the stored state first, so re-stating an
 * unchanged object (a snapshot re-read, an API re-list) costs one comparison and reports
 * nothing. Pure: no I/O, no clock, no logging.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "kube/store_impl.h"

/* ---- small helpers ------------------------------------------------------------------------ */

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

bool
kube_store_cstr_label_ok(const char *p, bool upper_ok)
{
	return p && kube_store_label_ok(p, strnlen(p, STORE_LABEL_MAX + 1), upper_ok);
}

/* Object names that DNS never shows (slices, pods): 1..253 printable bytes. */
bool
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

size_t
kube_store_mkkey(char *buf, const char *ns, size_t ns_len, const char *name, size_t name_len)
{
	for (size_t i = 0; i < ns_len; i++)
		buf[i] = kube_store_lower(ns[i]);
	buf[ns_len] = '\0';
	for (size_t i = 0; i < name_len; i++)
		buf[ns_len + 1 + i] = kube_store_lower(name[i]);
	return ns_len + 1 + name_len;
}

size_t
kube_store_delkey(char *buf, const char *ns, const char *name, size_t name_max)
{
	size_t nl = ns ? strnlen(ns, STORE_LABEL_MAX + 1) : 0;
	size_t ml = name ? strnlen(name, name_max + 1) : 0;

	if (!nl || nl > STORE_LABEL_MAX || !ml || ml > name_max)
		return 0;
	return kube_store_mkkey(buf, ns, nl, name, ml);
}

bool
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

bool
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

bool
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

bool
kube_store_ports_ok(const struct kube_port *ports, size_t n)
{
	if (n > KUBE_MAX_PORTS || (n && !ports))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!kube_store_port_ok(&ports[i]))
			return false;
	return true;
}

bool
kube_store_port_keep(const struct kube_port *p, const struct kube_port *kept, size_t n_kept)
{
	struct kube_port q = {.name = p->name, .protocol = kube_store_proto(p), .port = p->port};

	if (!p->name || !p->name[0] || !p->port)
		return false;
	for (size_t i = 0; i < n_kept; i++)
		if (kube_store_port_eq(&kept[i], &q))
			return false;
	return true;
}

size_t
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

size_t
kube_store_ports_strlen(const struct kube_port *p, size_t n)
{
	size_t len = 0;

	for (size_t i = 0; i < n; i++)
		if (p[i].name && p[i].name[0])
			len += strlen(p[i].name) + 1 + strlen(kube_store_proto(&p[i])) + 1;
	return len;
}

size_t
kube_store_total(const struct kube_store *s)
{
	return s->n_nss + s->n_svcs + s->n_slices + s->n_pods;
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

void
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
		return; /* no such name can be asked: nothing cached under it */
	memcpy(w + off, s->zone, s->zone_len);
	w[off + s->zone_len] = 0;
	s->changed(s->ctx, w, off + s->zone_len + 1);
}

void
kube_store_report_svc(struct kube_store *s, const struct kube_service *svc)
{
	kube_store_report3(s, svc->name, svc->key, "svc");
}

void
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

void
kube_store_bump(struct kube_store *s)
{
	s->serial++;
	if (s->moved)
		s->moved(s->ctx);
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
	KUBE_STORE_FIND(s, s->nss, buf, len, n);
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

#define STORE_PODIP_KEY_MAX (sizeof(struct kube_ip) + STORE_LABEL_MAX)

/* The index entry of (ip, ns), or NULL; its key is left in key[0..*len). */
static struct kube_store_podip *
kube_store_podip_find(const struct kube_store *s, const struct kube_ip *ip, const char *ns,
		      size_t ns_len, uint8_t *key, size_t *len)
{
	struct kube_store_podip *p;

	memcpy(key, ip, sizeof(*ip));
	for (size_t i = 0; i < ns_len; i++)
		key[sizeof(*ip) + i] = (uint8_t)kube_store_lower(ns[i]);
	*len = sizeof(*ip) + ns_len;
	KUBE_STORE_FIND(s, s->podips, key, *len, p);
	return p;
}

static int
kube_store_podip_add(struct kube_store *s, const struct kube_ip *ip, const char *ns)
{
	uint8_t key[STORE_PODIP_KEY_MAX];
	size_t len;
	struct kube_store_podip *p = kube_store_podip_find(s, ip, ns, strlen(ns), key, &len);

	if (!p)
		KUBE_STORE_NEW(s, s->podips, p, key, len);
	if (!p)
		return -ENOMEM;
	p->count++;
	return 0;
}

static void
kube_store_podip_del(struct kube_store *s, const struct kube_ip *ip, const char *ns)
{
	uint8_t key[STORE_PODIP_KEY_MAX];
	size_t len;
	struct kube_store_podip *p = kube_store_podip_find(s, ip, ns, strlen(ns), key, &len);

	if (p && --p->count == 0) {
		HASH_DELETE(hh, s->podips, p);
		free(p);
	}
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

/* The pod's addresses, normalised, in a new array (NULL for none) or -ENOMEM. */
static int
kube_store_pod_ips(const struct kube_pod_obj *o, struct kube_ip **out)
{
	*out = NULL;
	if (o->n_ips && !(*out = malloc(o->n_ips * sizeof(**out))))
		return -ENOMEM;
	for (size_t i = 0; i < o->n_ips; i++)
		kube_store_ip_norm(&(*out)[i], &o->ips[i]);
	return 0;
}

int
kube_store_upsert_pod(struct kube_store *s, const struct kube_pod_obj *o)
{
	char key[STORE_KEY_MAX + 1];
	struct kube_store_pod *p;
	struct kube_ip *ips;
	bool created;
	size_t len;
	int err;

	if (!o || !kube_store_cstr_label_ok(o->ns, false) || !kube_store_objname_ok(o->name) ||
	    !kube_store_ips_ok(o->ips, o->n_ips, 0))
		return -EINVAL;
	len = kube_store_mkkey(key, o->ns, strlen(o->ns), o->name, strlen(o->name));
	KUBE_STORE_FIND(s, s->pods, key, len, p);
	if (!p && kube_store_total(s) >= KUBE_STORE_MAX_OBJECTS)
		return -ENOSPC;
	if (kube_store_pod_ips(o, &ips) < 0)
		return -ENOMEM;
	if (p && p->n_ips == o->n_ips &&
	    (!o->n_ips || memcmp(p->ips, ips, o->n_ips * sizeof(*ips)) == 0)) {
		p->gen = s->gen[KUBE_KIND_POD];
		free(ips);
		return 0;
	}
	created = !p;
	if (created)
		KUBE_STORE_NEW(s, s->pods, p, key, len);
	if (!p) {
		free(ips);
		return -ENOMEM;
	}
	s->n_pods += created;
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
kube_store_pod_free(struct kube_store_pod *p)
{
	free(p->ips);
	free(p);
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
	kube_store_pod_free(p);
	kube_store_bump(s);
}

int
kube_store_delete_pod(struct kube_store *s, const char *ns, const char *name)
{
	struct kube_store_pod *p;

	KUBE_STORE_FIND_NAMED(s, s->pods, ns, name, STORE_NAME_MAX, p);
	if (!p)
		return -ENOENT;
	kube_store_pod_remove(s, p);
	return 0;
}

bool
kube_store_pod_ip(const struct kube_store *s, const char *ns, size_t ns_len,
		  const struct kube_ip *ip)
{
	uint8_t key[STORE_PODIP_KEY_MAX];
	struct kube_ip n;
	size_t len;

	if (!ns_len || ns_len > STORE_LABEL_MAX || !ip || !kube_store_ip_norm(&n, ip))
		return false;
	return kube_store_podip_find(s, &n, ns, ns_len, key, &len) != NULL;
}

void
kube_store_counts(const struct kube_store *s, struct kube_store_counts *out)
{
	*out = (struct kube_store_counts){.namespaces = s->n_nss,
					  .services = s->n_svcs,
					  .slices = s->n_slices,
					  .endpoints = s->n_eps,
					  .pods = s->n_pods};
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
	s->moved = cfg->moved;
	s->ctx = cfg->ctx;
	s->pod_names = cfg->endpoint_pod_names;
	/* pure module: the SOA serial starts from a constant, not the clock */
	s->serial = 1;
	hash_random_key(s->key);
	return s;
}

void
kube_store_set_reports(struct kube_store *s, kube_store_change_fn *changed,
		       kube_store_moved_fn *moved, void *ctx)
{
	s->changed = changed;
	s->moved = moved;
	s->ctx = ctx;
}

void
kube_store_free(struct kube_store *s)
{
	if (!s)
		return;
	KUBE_STORE_FREE_ALL(s->nss, free);
	KUBE_STORE_FREE_ALL(s->slices, kube_store_slice_free); /* before the services */
	KUBE_STORE_FREE_ALL(s->svcs, kube_store_svc_free);
	KUBE_STORE_FREE_ALL(s->pods, kube_store_pod_free);
	KUBE_STORE_FREE_ALL(s->podips, free);
	for (size_t i = 0; s->ptab && i <= s->ptab_mask; i++) {
		if (s->ptab[i])
			free(s->ptab[i]->more);
		free(s->ptab[i]);
	}
	free(s->ptab);
	free(s);
}
