/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * router.c - longest-suffix zone routing. Zones are kept as lower-case wire names in a uthash
 * table whose hash is SipHash-1-3 under a per-router random key; a query name is walked from the
 * full name towards the root, one probe per suffix, and each zone found offers the request to
 * its upstreams in binding order until one accepts or fails (an -ENOENT decline falls through,
 * also to shorter zones). Suffixes longer than the deepest bound zone are not probed. The
 * router also owns upstreams for freeing, each exactly once however many zones it serves.
 * Pure: no I/O, no clock, no logging.
 */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* A failed allocation must not exit the daemon: uthash then leaves the item out of the table
 * (hh.tbl == NULL), which we check after every add. */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

#include "kubemasq/defs.h"
#include "kubemasq/dnsmsg.h"
#include "kubemasq/hash.h"
#include "kubemasq/upstream.h"
#include "lib/router.h"

struct router_zone {
	UT_hash_handle hh;
	struct upstream **ups; /* tried in binding order; borrowed */
	size_t n_ups;
	size_t cap_ups;
	uint16_t name_len;
	uint8_t name[]; /* lower-case wire name: the hash key */
};

struct router_owned {
	/* uthash keeps insertion order: router_foreach() visits in router_own() order */
	UT_hash_handle hh;
	struct upstream *u; /* the key is the pointer value itself */
};

struct router {
	struct router_zone *zones;
	struct router_owned *owned;
	uint64_t key[2];
	unsigned max_labels; /* of the deepest bound zone: longer suffixes cannot match */
	bool answers; /* an upstream with an `answer` operation is bound: router_answer walks */
};

/* SipHash-1-3 (kubemasq/hash.h): the table's contents come from the configuration, but the
 * names probed come from peers; a keyed hash keeps probe chains out of their control. */
static unsigned
router_hash(const struct router *r, const void *data, size_t len)
{
	uint64_t m = hash_siphash13(r->key, data, len);

	return (unsigned)(m ^ (m >> 32));
}

struct router *
router_new(void)
{
	struct router *r = calloc(1, sizeof(*r));

	if (r)
		hash_random_key(r->key);
	return r;
}

void
router_free(struct router *r)
{
	struct router_zone *z, *ztmp;
	struct router_owned *o, *otmp;

	if (!r)
		return;
	HASH_ITER(hh, r->zones, z, ztmp) {
		HASH_DEL(r->zones, z);
		free(z->ups);
		free(z);
	}
	HASH_ITER(hh, r->owned, o, otmp) {
		HASH_DEL(r->owned, o);
		upstream_free(o->u);
		free(o);
	}
	free(r);
}

static struct router_owned *
router_owned_find(const struct router *r, const struct upstream *u)
{
	struct router_owned *o;
	unsigned h = router_hash(r, &u, sizeof(u));

	HASH_FIND_BYHASHVALUE(hh, r->owned, &u, sizeof(u), h, o);
	return o;
}

/* Idempotent: owning the same upstream twice still frees it once. */
int
router_own(struct router *r, struct upstream *u)
{
	struct router_owned *o;

	assert(r && u);
	if (router_owned_find(r, u))
		return 0;
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->u = u;
	HASH_ADD_KEYPTR_BYHASHVALUE(hh, r->owned, &o->u, sizeof(o->u),
				    router_hash(r, &o->u, sizeof(o->u)), o);
	if (!o->hh.tbl) {
		free(o);
		return -ENOMEM;
	}
	return 0;
}

static struct router_zone *
router_zone_find(const struct router *r, const uint8_t *name, size_t len)
{
	struct router_zone *z;
	unsigned h = router_hash(r, name, len);

	HASH_FIND_BYHASHVALUE(hh, r->zones, name, len, h, z);
	return z;
}

static struct router_zone *
router_zone_add(struct router *r, const uint8_t *name, size_t len)
{
	struct router_zone *z = calloc(1, sizeof(*z) + len);

	if (!z)
		return NULL;
	memcpy(z->name, name, len);
	z->name_len = (uint16_t)len;
	HASH_ADD_KEYPTR_BYHASHVALUE(hh, r->zones, z->name, len, router_hash(r, name, len), z);
	if (!z->hh.tbl) {
		free(z);
		return NULL;
	}
	/* Zones only go when a bind fails; a stale maximum then merely costs a probe or two. */
	if (dnsmsg_name_labels(name, len) > r->max_labels)
		r->max_labels = dnsmsg_name_labels(name, len);
	return z;
}

/*
 * Where the suffix walk starts: a suffix with more labels than the deepest zone cannot be a
 * zone, so its probe (a SipHash and a table lookup per label) is skipped. Only labels that lie
 * inside `len` are counted and skipped, so a malformed name still ends the walk as before.
 */
static size_t
router_walk_start(const struct router *r, const uint8_t *name, size_t len)
{
	unsigned n = dnsmsg_name_labels(name, len);
	size_t off = 0;

	for (unsigned skip = n > r->max_labels ? n - r->max_labels : 0; skip > 0; skip--)
		off += (size_t)name[off] + 1;
	return off;
}

static int
router_zone_append(struct router_zone *z, struct upstream *u)
{
	for (size_t i = 0; i < z->n_ups; i++)
		if (z->ups[i] == u)
			return 0; /* offering a query twice to one upstream gains nothing */
	if (z->n_ups == z->cap_ups) {
		size_t cap = z->cap_ups ? z->cap_ups * 2 : 2;
		struct upstream **ups;

		if (cap > SIZE_MAX / sizeof(*ups))
			return -ENOMEM;
		ups = realloc(z->ups, cap * sizeof(*ups));
		if (!ups)
			return -ENOMEM;
		z->ups = ups;
		z->cap_ups = cap;
	}
	z->ups[z->n_ups++] = u;
	return 0;
}

int
router_bind(struct router *r, const char *zone, struct upstream *u)
{
	uint8_t wire[DNS_MAX_NAME], lower[DNS_MAX_NAME];
	struct router_zone *z;
	int len, rc;

	assert(r && u);
	if (!zone)
		return -EINVAL;
	len = dnsmsg_name_from_text(zone, wire, sizeof(wire));
	if (len < 0)
		return -EINVAL;
	dnsmsg_name_lower(lower, wire, (size_t)len);
	z = router_zone_find(r, lower, (size_t)len);
	if (!z) {
		z = router_zone_add(r, lower, (size_t)len);
		if (!z)
			return -ENOMEM;
	}
	rc = router_zone_append(z, u);
	if (rc == 0 && u->ops->answer)
		r->answers = true;
	if (rc < 0 && z->n_ups == 0) {
		HASH_DEL(r->zones, z);
		free(z);
	}
	return rc;
}

/* Offer to one zone's upstreams: 0 accepted, -ENOENT all declined, else the failure. */
static int
router_offer(const struct router_zone *z, struct upstream_req *req)
{
	for (size_t i = 0; i < z->n_ups; i++) {
		int rc = upstream_resolve(z->ups[i], req);

		if (rc == 0) {
			req->owner = z->ups[i];
			return 0;
		}
		if (rc != -ENOENT)
			return rc;
	}
	return -ENOENT;
}

/* A name the parser let through never fails the bounds checks; -EINVAL if one does anyway. */
int
router_resolve(struct router *r, struct upstream_req *req)
{
	const uint8_t *name = req->q.qname;
	size_t len = req->q.qname_len, off;

	assert(r);
	req->owner = NULL;
	if (!name || len == 0 || len > DNS_MAX_NAME)
		return -EINVAL;
	for (off = router_walk_start(r, name, len);;) {
		struct router_zone *z = router_zone_find(r, name + off, len - off);

		if (z) {
			int rc = router_offer(z, req);

			if (rc != -ENOENT)
				return rc;
		}
		if (name[off] == 0)
			return -ENOENT; /* the root was the last suffix */
		off += (size_t)name[off] + 1;
		if (off >= len)
			return -EINVAL;
	}
}

int
router_answer(struct router *r, struct upstream_req *req, uint8_t *out, size_t cap)
{
	const uint8_t *name = req->q.qname;
	size_t len = req->q.qname_len, off;

	assert(r);
	if (!r->answers || !name || len == 0 || len > DNS_MAX_NAME)
		return -EAGAIN;
	for (off = router_walk_start(r, name, len);;) {
		const struct router_zone *z = router_zone_find(r, name + off, len - off);

		if (z && z->n_ups) {
			struct upstream *u = z->ups[0];
			int rc = u->ops->answer ? u->ops->answer(u, req, out, cap) : -EAGAIN;

			if (rc >= 0)
				req->owner = u; /* whose answer it is: the metrics' source */
			return rc;
		}
		if (name[off] == 0)
			return -EAGAIN;
		off += (size_t)name[off] + 1;
		if (off >= len)
			return -EAGAIN;
	}
}

void
router_foreach(struct router *r, void (*fn)(struct upstream *u, void *ctx), void *ctx)
{
	struct router_owned *o, *tmp;

	if (!r)
		return;
	HASH_ITER(hh, r->owned, o, tmp) {
		fn(o->u, ctx);
	}
}

int
router_replace(struct router *r, struct upstream *old, struct upstream *new)
{
	struct router_zone *z, *tmp;
	struct router_owned *o;
	int rc;

	assert(r && new);
	rc = router_own(r, new);
	if (rc < 0)
		return rc;
	if (!old)
		return router_bind(r, ".", new);
	if (new->ops->answer)
		r->answers = true;
	HASH_ITER(hh, r->zones, z, tmp) {
		for (size_t i = 0; i < z->n_ups; i++)
			if (z->ups[i] == old)
				z->ups[i] = new;
	}
	o = router_owned_find(r, old);
	if (o) {
		HASH_DEL(r->owned, o);
		free(o);
	}
	return 0;
}
