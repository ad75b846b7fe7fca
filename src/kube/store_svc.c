/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * store_svc.c - the kube store's Services (store.h, store_impl.h): what a Service says of
 * itself (kind, ClusterIPs, ports, ExternalName target) kept in one allocation, its entry in
 * the services table, and the accessors answer.c reads a service through. A service entry
 * also exists as a placeholder (desc NULL, invisible to lookups) while slices name a Service
 * not stored yet: it holds their list and merged endpoints (store_slice.c) until the Service
 * arrives, and is freed when neither is left. A change re-publishes the service's PTR pairs
 * through store_ptr.c and reports its name.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kube/store_impl.h"

/* ---- descriptions ------------------------------------------------------------------------- */

static int
kube_store_svc_desc_build(const struct kube_service_obj *o, struct kube_store_svc_desc **out)
{
	size_t n_ips = o->kind == KUBE_SERVICE_CLUSTER_IP ? o->n_ips : 0;
	size_t strl = kube_store_ports_strlen(o->ports, o->n_ports);
	size_t ext = o->kind == KUBE_SERVICE_EXTERNAL_NAME ? strlen(o->external_name) + 1 : 0;
	struct kube_store_svc_desc *d;
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
kube_store_svc_desc_eq(const struct kube_store_svc_desc *a, const struct kube_store_svc_desc *b)
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
kube_store_svc_dname_ok(const char *p)
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
	if (o->kind == KUBE_SERVICE_EXTERNAL_NAME && !kube_store_svc_dname_ok(o->external_name))
		return false;
	if (!kube_store_ips_ok(o->ips, o->n_ips, 0))
		return false;
	return kube_store_ports_ok(o->ports, o->n_ports);
}

/* ---- services ----------------------------------------------------------------------------- */

struct kube_service *
kube_store_svc_find(const struct kube_store *s, const char *key, size_t len)
{
	struct kube_service *svc;

	KUBE_STORE_FIND(s, s->svcs, key, len, svc);
	return svc;
}

/* Every cluster query looks a service up, and a lookup costs a cache miss per item it walks in
 * the bucket's chain. uthash adds buckets only once some chain reaches ten (two or three items
 * per bucket on average), so this table adds them as soon as it holds more items than buckets:
 * 16 bytes a bucket. A failed expansion only leaves longer chains. */
static void
kube_store_svc_spread(struct kube_store *s)
{
	UT_hash_table *t = s->svcs->hh.tbl;
	int oomed = 0;

	if (t->num_items > t->num_buckets)
		HASH_EXPAND_BUCKETS(hh, t, oomed);
	(void)oomed;
}

struct kube_service *
kube_store_svc_get(struct kube_store *s, const char *key, size_t len)
{
	struct kube_service *svc = kube_store_svc_find(s, key, len);

	if (svc)
		return svc;
	KUBE_STORE_NEW(s, s->svcs, svc, key, len);
	if (!svc)
		return NULL;
	svc->name = svc->key + strlen(svc->key) + 1;
	kube_store_svc_spread(s);
	return svc;
}

void
kube_store_svc_free(struct kube_service *svc)
{
	kube_store_slice_merged_install(svc, &(struct kube_store_slice_merged){0});
	free(svc->desc);
	free(svc);
}

void
kube_store_svc_gc(struct kube_store *s, struct kube_service *svc)
{
	if (!svc || svc->desc || svc->slices)
		return;
	HASH_DELETE(hh, s->svcs, svc);
	kube_store_svc_free(svc);
}

int
kube_store_upsert_service(struct kube_store *s, const struct kube_service_obj *o)
{
	char key[STORE_KEY_MAX + 1];
	struct kube_store_svc_desc *d, *od;
	struct kube_store_ptr_before b;
	struct kube_service *svc;
	size_t len;
	int err;

	if (!kube_store_svc_obj_ok(o))
		return -EINVAL;
	len = kube_store_mkkey(key, o->ns, strlen(o->ns), o->name, strlen(o->name));
	svc = kube_store_svc_find(s, key, len);
	if ((!svc || !svc->desc) && kube_store_total(s) >= KUBE_STORE_MAX_OBJECTS)
		return -ENOSPC;
	err = kube_store_svc_desc_build(o, &d);
	if (err)
		return err;
	if (svc && svc->desc && kube_store_svc_desc_eq(svc->desc, d)) {
		svc->gen = s->gen[KUBE_KIND_SERVICE];
		free(d);
		return 0;
	}
	if (!svc && !(svc = kube_store_svc_get(s, key, len))) {
		free(d);
		return -ENOMEM;
	}
	kube_store_ptr_begin(s, svc, &b);
	od = svc->desc;
	svc->desc = d;
	svc->gen = s->gen[KUBE_KIND_SERVICE];
	s->n_svcs += !od;
	err = kube_store_ptr_end(s, svc, &b, true);
	free(od);
	kube_store_bump(s);
	return err;
}

int
kube_store_svc_remove(struct kube_store *s, struct kube_service *svc)
{
	struct kube_store_ptr_before b;
	int err;

	kube_store_ptr_begin(s, svc, &b);
	free(svc->desc);
	svc->desc = NULL;
	s->n_svcs--;
	err = kube_store_ptr_end(s, svc, &b, true);
	kube_store_svc_gc(s, svc);
	kube_store_bump(s);
	return err;
}

int
kube_store_delete_service(struct kube_store *s, const char *ns, const char *name)
{
	struct kube_service *svc;

	KUBE_STORE_FIND_NAMED(s, s->svcs, ns, name, STORE_LABEL_MAX, svc);
	if (!svc || !svc->desc)
		return -ENOENT;
	return kube_store_svc_remove(s, svc);
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
kube_service_endpoints_by_label(const struct kube_service *svc, const char *label, size_t label_len,
				const struct kube_endpoint **out)
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
