/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * store_slice.c - the kube store's EndpointSlices (store.h, store_impl.h) and the merge of a
 * service's slices into its endpoints. A slice keeps its endpoints (DNS label, addresses,
 * readiness) and ports in one allocation and sits on its service's slice list. A service's
 * endpoints are merged from its slices into one array sorted by label, so a label lookup is
 * a binary search; the merge runs for that service alone whenever one of its slices changes,
 * and is built aside so that a failed allocation leaves the old state serving. Slices may
 * arrive before their Service: the service then exists as a placeholder (store_svc.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "kube/store_impl.h"

/* ---- slice contents ----------------------------------------------------------------------- */

/* The endpoint's DNS label into buf (64 bytes), lower-cased: its hostname; else, with
 * --kube-endpoint-pod-names, its pod name when that is a label; else its first IP with '.'
 * and ':' turned into '-' (CoreDNS endpointHostname: "10-0-0-1", "fd00--1"). */
static size_t
kube_store_slice_ep_label(const struct kube_store *s, const struct kube_endpoint_obj *e, char *buf)
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
kube_store_slice_ep_ok(const struct kube_endpoint_obj *e, int family)
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
	if (!kube_store_ports_ok(o->ports, o->n_ports))
		return false;
	for (size_t i = 0; i < o->n_endpoints; i++)
		if (!kube_store_slice_ep_ok(&o->endpoints[i], o->family))
			return false;
	return true;
}

/* Endpoints without addresses make no record and are not kept. */
static int
kube_store_slice_data_build(const struct kube_store *s, const struct kube_slice_obj *o,
			    struct kube_store_slice_data **out)
{
	size_t n_eps = 0, n_ips = 0, strl = kube_store_ports_strlen(o->ports, o->n_ports);
	struct kube_store_slice_data *d;
	char lbl[64], *str;

	for (size_t i = 0; i < o->n_endpoints; i++) {
		if (!o->endpoints[i].n_ips)
			continue;
		n_eps++;
		n_ips += o->endpoints[i].n_ips;
		strl += kube_store_slice_ep_label(s, &o->endpoints[i], lbl) + 1;
	}
	d = calloc(1, sizeof(*d) + n_eps * sizeof(*d->eps) + o->n_ports * sizeof(*d->ports) +
			      n_ips * sizeof(*d->ips) + strl);
	if (!d)
		return -ENOMEM;
	d->eps = (struct kube_store_slice_ep *)(d + 1);
	d->ports = (struct kube_port *)(d->eps + n_eps);
	d->ips = (struct kube_ip *)(d->ports + o->n_ports);
	str = (char *)(d->ips + n_ips);
	d->n_ports = kube_store_ports_copy(d->ports, o->ports, o->n_ports, &str);
	for (size_t i = 0; i < o->n_endpoints; i++) {
		const struct kube_endpoint_obj *e = &o->endpoints[i];
		struct kube_store_slice_ep *sep;
		size_t len;

		if (!e->n_ips)
			continue;
		sep = &d->eps[d->n_eps++];
		len = kube_store_slice_ep_label(s, e, lbl);
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
kube_store_slice_data_eq(const struct kube_store_slice_data *a,
			 const struct kube_store_slice_data *b)
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

struct kube_store_slice_mep {
	const struct kube_store_slice_data *d;
	const struct kube_store_slice_ep *e;
};

struct kube_store_slice_mref {
	const struct kube_ip *ip;
	size_t pos;
};

static int
kube_store_slice_mref_cmp(const void *a, const void *b)
{
	const struct kube_store_slice_mref *x = a, *y = b;
	int c = kube_store_ip_cmp(x->ip, y->ip);

	return c ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

static int
kube_store_slice_ep_cmp(const void *a, const void *b)
{
	const struct kube_endpoint *x = a, *y = b;
	int c = strcmp(x->label, y->label);

	return c ? c : kube_store_ip_cmp(&x->ips[0], &y->ips[0]);
}

static void
kube_store_slice_merged_free(struct kube_store_slice_merged *m)
{
	free(m->eps);
	free(m->pool);
	free(m->uports);
	memset(m, 0, sizeof(*m));
}

static int
kube_store_slice_merge_ports(const struct kube_service *svc, struct kube_store_slice_merged *m)
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
kube_store_slice_merge_dedup(const struct kube_store_slice_mep *order, size_t n_eps,
			     struct kube_store_slice_mref *refs, size_t n_ips, uint8_t *keep)
{
	size_t pos = 0;

	for (size_t k = 0; k < n_eps; k++)
		for (size_t j = 0; j < order[k].e->n_ips; j++, pos++)
			refs[pos] = (struct kube_store_slice_mref){
				.ip = &order[k].d->ips[order[k].e->ip_idx + j], .pos = pos};
	qsort(refs, n_ips, sizeof(*refs), kube_store_slice_mref_cmp);
	for (size_t i = 0; i < n_ips; i++)
		keep[refs[i].pos] = i == 0 || kube_store_ip_cmp(refs[i - 1].ip, refs[i].ip) != 0;
}

/* Build the endpoint array from the kept addresses: an endpoint keeps pointing at its slice's
 * addresses unless dedup took some of them, then the rest are copied to the pool. */
static int
kube_store_slice_merge_fill(const struct kube_store_slice_mep *order, size_t n_eps,
			    const uint8_t *keep, struct kube_store_slice_merged *m)
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
		const struct kube_store_slice_ep *e = order[k].e;
		const struct kube_ip *ips = &order[k].d->ips[e->ip_idx];
		struct kube_endpoint *x;
		size_t c = 0;

		for (size_t j = 0; j < e->n_ips; j++)
			c += keep[pos + j];
		if (!c)
			continue;
		x = &m->eps[m->n_eps++];
		*x = (struct kube_endpoint){
			.label = e->label, .ips = ips, .n_ips = c, .ready = e->ready};
		if (c == e->n_ips)
			continue;
		x->ips = &m->pool[np];
		for (size_t j = 0; j < e->n_ips; j++)
			if (keep[pos + j])
				m->pool[np++] = ips[j];
	}
	qsort(m->eps, m->n_eps, sizeof(*m->eps), kube_store_slice_ep_cmp);
	return 0;
}

/* The union of svc's slices, duplicate addresses removed, sorted by label (so the endpoints
 * sharing a label are consecutive and a label lookup is a binary search). Costs
 * O(n log n) in the service's own endpoints; touches nothing of svc. */
static int
kube_store_slice_merge(const struct kube_service *svc, struct kube_store_slice_merged *m)
{
	size_t n_eps = 0, n_ips = 0, k = 0;
	struct kube_store_slice_mep *order = NULL;
	struct kube_store_slice_mref *refs = NULL;
	uint8_t *keep = NULL;
	int err = -ENOMEM;

	memset(m, 0, sizeof(*m));
	for (const struct kube_store_slice *sl = svc->slices; sl; sl = sl->svc_next) {
		n_eps += sl->data->n_eps;
		n_ips += sl->data->n_ips;
	}
	/* kube_service counts its endpoints in 32 bits; more would not fit in memory anyway */
	if (n_eps > UINT32_MAX || kube_store_slice_merge_ports(svc, m) < 0)
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
					order[k++] = (struct kube_store_slice_mep){
						sl->data, &sl->data->eps[i]};
	kube_store_slice_merge_dedup(order, n_eps, refs, n_ips, keep);
	err = kube_store_slice_merge_fill(order, n_eps, keep, m);
out:
	free(order);
	free(refs);
	free(keep);
	if (err)
		kube_store_slice_merged_free(m);
	return err;
}

static bool
kube_store_slice_eps_eq(const struct kube_endpoint *a, size_t na, const struct kube_endpoint *b,
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

void
kube_store_slice_merged_install(struct kube_service *svc, struct kube_store_slice_merged *m)
{
	free(svc->eps);
	free(svc->pool);
	free(svc->uports);
	svc->eps = m->eps;
	svc->n_eps = (uint32_t)m->n_eps;
	svc->pool = m->pool;
	svc->uports = m->uports;
	svc->n_uports = (uint32_t)m->n_uports;
	memset(m, 0, sizeof(*m));
}

/* ---- slices ------------------------------------------------------------------------------- */

/* Move sl to svc's list (NULL: to none) with data d. */
static void
kube_store_slice_link(struct kube_store_slice *sl, struct kube_service *svc,
		      struct kube_store_slice_data *d)
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
kube_store_slice_merge_two(struct kube_service *a, struct kube_store_slice_merged *ma,
			   struct kube_service *b, struct kube_store_slice_merged *mb)
{
	memset(mb, 0, sizeof(*mb));
	if (a && kube_store_slice_merge(a, ma) < 0)
		return -ENOMEM;
	if (b && b != a && kube_store_slice_merge(b, mb) < 0) {
		kube_store_slice_merged_free(ma);
		return -ENOMEM;
	}
	return 0;
}

static bool
kube_store_slice_install(struct kube_service *svc, struct kube_store_slice_merged *m)
{
	bool changed = svc->desc &&
		       (!kube_store_slice_eps_eq(svc->eps, svc->n_eps, m->eps, m->n_eps) ||
			!kube_store_ports_eq(svc->uports, svc->n_uports, m->uports, m->n_uports));

	kube_store_slice_merged_install(svc, m);
	return changed;
}

/* Give sl the data nd under service nsvc (both NULL: detach it before deletion) and re-merge
 * the services it leaves and joins. On -ENOMEM an upsert is undone; a detach still happens,
 * leaving its service without endpoints until its next change rather than with dangling ones. */
static int
kube_store_slice_set(struct kube_store *s, struct kube_store_slice *sl, struct kube_service *nsvc,
		     struct kube_store_slice_data *nd)
{
	struct kube_service *osvc = sl->svc;
	struct kube_store_slice_data *od = sl->data;
	struct kube_store_slice_merged mo = {0}, mn;
	struct kube_store_ptr_before bo, bn = {0};
	int err;

	kube_store_ptr_begin(s, osvc, &bo);
	if (nsvc != osvc)
		kube_store_ptr_begin(s, nsvc, &bn);
	kube_store_slice_link(sl, nsvc, nd);
	err = kube_store_slice_merge_two(osvc, &mo, nsvc, &mn);
	if (err && nd) {
		kube_store_slice_link(sl, osvc, od);
		kube_store_ptr_end(s, osvc, &bo, false);
		kube_store_ptr_end(s, nsvc != osvc ? nsvc : NULL, &bn, false);
		return err;
	}
	s->n_eps = s->n_eps - (od ? od->n_eps : 0) + (nd ? nd->n_eps : 0);
	if (osvc && kube_store_ptr_end(s, osvc, &bo, kube_store_slice_install(osvc, &mo)) < 0)
		err = -ENOMEM;
	if (nsvc && nsvc != osvc &&
	    kube_store_ptr_end(s, nsvc, &bn, kube_store_slice_install(nsvc, &mn)) < 0)
		err = -ENOMEM;
	free(od);
	kube_store_bump(s);
	return err;
}

void
kube_store_slice_free(struct kube_store_slice *sl)
{
	free(sl->data);
	free(sl);
}

void
kube_store_slice_remove(struct kube_store *s, struct kube_store_slice *sl)
{
	struct kube_service *svc = sl->svc;

	/* a failed re-merge leaves the service without endpoints, never with dangling ones */
	(void)kube_store_slice_set(s, sl, NULL, NULL);
	HASH_DELETE(hh, s->slices, sl);
	s->n_slices--;
	kube_store_slice_free(sl);
	kube_store_svc_gc(s, svc);
}

int
kube_store_upsert_slice(struct kube_store *s, const struct kube_slice_obj *o)
{
	char key[STORE_KEY_MAX + 1], skey[STORE_KEY_MAX + 1];
	struct kube_store_slice *sl;
	struct kube_store_slice_data *d;
	struct kube_service *svc, *osvc;
	size_t len, slen;
	int err;

	if (!kube_store_slice_obj_ok(o))
		return -EINVAL;
	len = kube_store_mkkey(key, o->ns, strlen(o->ns), o->name, strlen(o->name));
	slen = kube_store_mkkey(skey, o->ns, strlen(o->ns), o->service, strlen(o->service));
	KUBE_STORE_FIND(s, s->slices, key, len, sl);
	if (!sl && kube_store_total(s) >= KUBE_STORE_MAX_OBJECTS)
		return -ENOSPC;
	err = kube_store_slice_data_build(s, o, &d);
	if (err)
		return err;
	if (sl && sl->svc->key_len == slen && memcmp(sl->svc->key, skey, slen) == 0 &&
	    kube_store_slice_data_eq(sl->data, d)) {
		sl->gen = s->gen[KUBE_KIND_SLICE];
		free(d);
		return 0;
	}
	svc = kube_store_svc_get(s, skey, slen);
	if (!sl && svc) {
		KUBE_STORE_NEW(s, s->slices, sl, key, len);
		s->n_slices += sl != NULL;
	}
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
			kube_store_slice_free(sl);
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
	struct kube_store_slice *sl;

	KUBE_STORE_FIND_NAMED(s, s->slices, ns, name, STORE_NAME_MAX, sl);
	if (!sl)
		return -ENOENT;
	kube_store_slice_remove(s, sl);
	return 0;
}
