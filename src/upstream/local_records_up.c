/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * local_records_up.c - the upstream that answers from the local records (local_records.h):
 * every owner name bound in the router ahead of the other upstreams; a name's records answered
 * in-process (the `answer` operation); a question on a local name that has no record of its
 * type passed on to the upstreams after this one, as dnsmasq forwards it; SIGHUP re-reads the
 * table and binds the new names.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kubemasq/defs.h"
#include "kubemasq/dnsmsg.h"
#include "kubemasq/hash.h"
#include "kubemasq/log.h"
#include "lib/config.h"
#include "lib/router.h"
#include "upstream/local_records.h"
#include "upstream/upstream_defer.h"
#include "upstream/upstream_local.h"

static uint64_t local_records_up_key[2];
static bool local_records_up_keyed;
#define HASH_FUNCTION(keyptr, keylen, hashv)                                                       \
	((hashv) = (unsigned)hash_siphash13(local_records_up_key, (keyptr), (keylen)))
#include <uthash.h>

/* A name bound in the router by this upstream (the key only). */
struct local_records_bound {
	UT_hash_handle hh;
	uint8_t name[DNS_MAX_NAME];
	uint8_t len;
};

/* Answers a query at most this long; a bigger one is not made here (it goes on upstream). */
#define LOCAL_RECORDS_REPLY_MAX 65535
#define LOCAL_RECORDS_MAX_PENDING 4096

struct local_records_up {
	struct upstream base;
	struct upstream_defer defer;
	const struct config *cfg;
	struct router *router;
	struct local_records *lr;
	struct local_records_bound *bound; /* names bound in the router so far */
	unsigned pending;		   /* questions passed on (struct local_records_child) */
	uint64_t queries, failures;
};

static struct local_records_up *
local_records_up_from(struct upstream *u)
{
	assert(u && u->ops == &local_records_ops);
	return container_of(u, struct local_records_up, base);
}

struct local_records_child;

static void local_records_release(void *ctx, struct upstream_defer_item *item);

/* Bind one owner name to the router, once per upstream. */
static int
local_records_bind_one(void *ctx, const uint8_t *name, size_t len)
{
	struct local_records_up *l = ctx;
	struct local_records_bound *b = NULL;
	char text[DNS_MAX_NAME * 4 + 1];
	int rc;

	HASH_FIND(hh, l->bound, name, len, b);
	if (b)
		return 0;
	if (dnsmsg_name_to_text(name, len, 0, text, sizeof(text)) < 0)
		return -EINVAL;
	if (!(b = calloc(1, sizeof(*b))))
		return -ENOMEM;
	memcpy(b->name, name, len);
	b->len = (uint8_t)len;
	if ((rc = router_bind(l->router, text, &l->base)) < 0) {
		free(b);
		return rc;
	}
	HASH_ADD(hh, l->bound, name, b->len, b);
	return 0;
}

static void
local_records_up_free(struct upstream *u)
{
	struct local_records_up *l;
	struct local_records_bound *n, *tmp;

	if (!u)
		return;
	l = local_records_up_from(u);
	upstream_defer_done(&l->defer);
	HASH_ITER(hh, l->bound, n, tmp) {
		HASH_DEL(l->bound, n);
		free(n);
	}
	local_records_free(l->lr);
	free(l);
}

static int
local_records_up_create(struct upstream **out, struct event_base *base, const void *args)
{
	const struct local_records_args *a = args;
	struct local_records_up *l;
	char err[512];
	int rc;

	assert(out && a && a->cfg && a->router);
	if (!local_records_up_keyed) {
		hash_random_key(local_records_up_key);
		local_records_up_keyed = true;
	}
	if (!(l = calloc(1, sizeof(*l))))
		return -ENOMEM;
	l->base.ops = &local_records_ops;
	l->base.source = METRICS_SOURCE_LOCAL;
	l->cfg = a->cfg;
	l->router = a->router;
	if (!(l->lr = local_records_from_config(a->cfg, err, sizeof(err)))) {
		log_err("%s", err);
		free(l);
		return -EINVAL;
	}
	if ((rc = upstream_defer_init(&l->defer, base, local_records_release, l)) < 0) {
		local_records_free(l->lr);
		free(l);
		return rc;
	}
	*out = &l->base;
	return 0;
}

static int
local_records_up_answer(struct upstream *u, const struct upstream_req *req, uint8_t *out,
			size_t cap)
{
	struct local_records_up *l = local_records_up_from(u);
	int len = local_records_answer(l->lr, &req->q, true, req->cd, out, cap);

	if (len < 0)
		return -EAGAIN;
	l->queries++;
	return len;
}

/* A question on a local name that has no record of its type, passed on to the upstreams after
 * this one (the router offers the child to every upstream of the name, and this one declines
 * its own children); the answer comes back through local_records_child_done(). */
struct local_records_child {
	struct upstream_defer_item item; /* an answer made here, waiting for the loop */
	bool passed;			 /* or a question passed on, in req: */
	struct upstream_req req;	 /* q borrowed from the parent's */
	struct upstream_req *parent;
	struct local_records_up *l;
};

static void
local_records_child_done(struct upstream_req *req, int status, const uint8_t *reply, size_t len)
{
	struct local_records_child *c = container_of(req, struct local_records_child, req);
	struct upstream_req *parent = c->parent;
	uint8_t *copy = NULL;

	c->l->pending--;
	/* An NXDOMAIN for a name that exists here is NODATA, with AA, as dnsmasq makes it. */
	if (status == 0 && len >= DNS_HDR_LEN && (reply[3] & 0x0f) == DNS_RCODE_NXDOMAIN &&
	    (copy = malloc(len))) {
		memcpy(copy, reply, len);
		copy[3] = (uint8_t)(copy[3] & 0xf0); /* NOERROR */
		copy[2] |= 0x04;		     /* AA */
		reply = copy;
	}
	free(c);
	parent->done(parent, status, reply, len);
	free(copy);
}

static void
local_records_release(void *ctx UNUSED, struct upstream_defer_item *item)
{
	free(container_of(item, struct local_records_child, item));
}

static int
local_records_pass_on(struct local_records_up *l, struct upstream_req *req)
{
	struct local_records_child *c;
	int rc;

	if (l->pending >= LOCAL_RECORDS_MAX_PENDING || !(c = calloc(1, sizeof(*c)))) {
		l->failures++;
		return -EBUSY;
	}
	c->passed = true;
	c->req.q = req->q;
	c->req.cd = req->cd;
	c->req.do_bit = req->do_bit;
	c->req.done = local_records_child_done;
	c->parent = req;
	c->l = l;
	rc = router_resolve(l->router, &c->req);
	if (rc < 0) {
		free(c);
		return rc; /* -ENOENT: no server at all (REFUSED, as dnsmasq); -ENXIO... */
	}
	l->pending++;
	req->priv = c;
	return 0;
}

static int
local_records_up_resolve(struct upstream *u, struct upstream_req *req)
{
	struct local_records_up *l = local_records_up_from(u);
	struct local_records_child *c;
	uint8_t *buf;
	int len;

	if (req->done == local_records_child_done)
		return -ENOENT; /* our own question, passed on: for the next upstream */
	if (!(buf = malloc(LOCAL_RECORDS_REPLY_MAX)))
		return -ENOMEM;
	len = local_records_answer(l->lr, &req->q, true, req->cd, buf, LOCAL_RECORDS_REPLY_MAX);
	if (len < 0) {
		free(buf);
		if (len == -ENODATA)
			return local_records_pass_on(l, req);
		return -ENOENT; /* not ours: the router tries the next upstream */
	}
	l->queries++;
	if (l->defer.n >= LOCAL_RECORDS_MAX_PENDING || !(c = calloc(1, sizeof(*c)))) {
		free(buf);
		l->failures++;
		return -EBUSY;
	}
	c->item.reply = buf;
	c->item.len = (size_t)len;
	c->item.req = req;
	req->priv = c;
	upstream_defer_push(&l->defer, &c->item);
	return 0;
}

static void
local_records_up_cancel(struct upstream *u, struct upstream_req *req)
{
	struct local_records_up *l = local_records_up_from(u);
	struct local_records_child *c = req->priv;

	if (!c)
		return;
	if (c->passed) {
		upstream_cancel(c->req.owner, &c->req);
		l->pending--;
		free(c);
		return;
	}
	upstream_defer_cancel(&l->defer, &c->item);
}

static void
local_records_up_metrics(struct upstream *u, upstream_metrics_fn *each, void *ctx)
{
	struct local_records_up *l = local_records_up_from(u);

	upstream_local_report(each, ctx, l->queries, l->failures); /* one "local" line */
}

const struct upstream_ops local_records_ops = {
	.name = "local-records",
	.create = local_records_up_create,
	.free = local_records_up_free,
	.resolve = local_records_up_resolve,
	.answer = local_records_up_answer,
	.cancel = local_records_up_cancel,
	.stats = NULL,
	.metrics = local_records_up_metrics,
};

int
local_records_bind(struct upstream *u)
{
	struct local_records_up *l = local_records_up_from(u);

	return local_records_foreach_name(l->lr, local_records_bind_one, l);
}

static void
local_records_find_up(struct upstream *u, void *ctx)
{
	if (u->ops == &local_records_ops)
		*(struct upstream **)ctx = u;
}

void
local_records_reload(struct router *r)
{
	struct upstream *u = NULL;
	struct local_records_up *l;
	struct local_records *lr;
	char err[512];

	router_foreach(r, local_records_find_up, &u);
	if (!u)
		return;
	l = local_records_up_from(u);
	if (!(lr = local_records_from_config(l->cfg, err, sizeof(err)))) {
		log_err("%s; keeping the local records read before", err);
		return;
	}
	local_records_free(l->lr);
	l->lr = lr;
	if (local_records_foreach_name(lr, local_records_bind_one, l) < 0)
		log_err("cannot route every local name: out of memory");
	upstream_changed(u);
}
