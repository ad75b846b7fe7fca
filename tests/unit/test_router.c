/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_router.c - unit tests for the zone router (router.c) and the local-answer upstream
 * (upstream_local.c). The router is driven with a scripted test double, a third
 * `struct upstream_ops` that records every offer; upstream_local runs on a real event_base
 * (no sockets), and its replies are read back with dnsmsg_iter.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "kubemasq/defs.h"
#include "kubemasq/dnsmsg.h"
#include "kubemasq/log.h"
#include "kubemasq/upstream.h"
#include "lib/config.h"
#include "lib/router.h"
#include "upstream/upstream_local.h"

/* ---- the test double ---------------------------------------------------------------------- */

struct test_router_dbl {
	struct upstream base;
	int code; /* what resolve() returns */
	unsigned calls;
};

#define TEST_ROUTER_LOG_MAX 64
static struct upstream *test_router_log[TEST_ROUTER_LOG_MAX];
static unsigned test_router_nlog;
static unsigned test_router_frees;

static const struct upstream_ops test_router_dbl_ops;

static int
test_router_dbl_create(struct upstream **out, struct event_base *base UNUSED, const void *args)
{
	struct test_router_dbl *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	d->base.ops = &test_router_dbl_ops;
	d->code = *(const int *)args;
	*out = &d->base;
	return 0;
}

static void
test_router_dbl_free(struct upstream *u)
{
	test_router_frees++;
	free(u);
}

static int
test_router_dbl_resolve(struct upstream *u, struct upstream_req *req UNUSED)
{
	struct test_router_dbl *d = container_of(u, struct test_router_dbl, base);

	d->calls++;
	if (test_router_nlog < TEST_ROUTER_LOG_MAX)
		test_router_log[test_router_nlog++] = u;
	return d->code;
}

static void
test_router_dbl_cancel(struct upstream *u UNUSED, struct upstream_req *req UNUSED)
{
}

static const struct upstream_ops test_router_dbl_ops = {
	.name = "double",
	.create = test_router_dbl_create,
	.free = test_router_dbl_free,
	.resolve = test_router_dbl_resolve,
	.cancel = test_router_dbl_cancel,
};

static struct upstream *
test_router_dbl_new(int code)
{
	struct upstream *u = NULL;

	assert_int_equal(test_router_dbl_ops.create(&u, NULL, &code), 0);
	return u;
}

static unsigned
test_router_calls(struct upstream *u)
{
	return container_of(u, struct test_router_dbl, base)->calls;
}

static int
test_router_setup(void **state UNUSED)
{
	test_router_nlog = 0;
	test_router_frees = 0;
	return 0;
}

/* A double with the synchronous `answer` operation: answers names under "now." with a
 * 12-byte header whose ID is 0x4242, declines the rest (-EAGAIN). */
static int
test_router_dbl_answer(struct upstream *u UNUSED, const struct upstream_req *req, uint8_t *out,
		       size_t cap)
{
	static const uint8_t now[] = "\3now";

	if (cap < DNS_HDR_LEN || req->q.qname_len < sizeof(now) ||
	    memcmp(req->q.qname + req->q.qname_len - sizeof(now), now, sizeof(now)) != 0)
		return -EAGAIN;
	memset(out, 0, DNS_HDR_LEN);
	dnsmsg_put16(out, 0x4242);
	return DNS_HDR_LEN;
}

static const struct upstream_ops test_router_sync_ops = {
	.name = "sync",
	.create = test_router_dbl_create,
	.free = test_router_dbl_free,
	.resolve = test_router_dbl_resolve,
	.answer = test_router_dbl_answer,
	.cancel = test_router_dbl_cancel,
};

/* ---- requests ---------------------------------------------------------------------------- */

struct test_router_q {
	uint8_t name[DNS_MAX_NAME];
	struct upstream_req req;
	unsigned done_calls;
	int status;
	uint8_t reply[512];
	size_t reply_len;
};

static void
test_router_done(struct upstream_req *req, int status, const uint8_t *reply, size_t len)
{
	struct test_router_q *q = container_of(req, struct test_router_q, req);

	q->done_calls++;
	q->status = status;
	q->reply_len = 0;
	if (status == 0) {
		assert_true(len <= sizeof(q->reply));
		memcpy(q->reply, reply, len);
		q->reply_len = len;
	}
}

/* A request as query.c hands it over: name lower-cased. */
static void
test_router_q_init(struct test_router_q *q, const char *text, uint16_t qtype)
{
	uint8_t wire[DNS_MAX_NAME];
	int len = dnsmsg_name_from_text(text, wire, sizeof(wire));

	assert_true(len > 0);
	memset(q, 0, sizeof(*q));
	dnsmsg_name_lower(q->name, wire, (size_t)len);
	q->req.q.qname = q->name;
	q->req.q.qname_len = (uint16_t)len;
	q->req.q.qtype = qtype;
	q->req.q.qclass = DNS_CLASS_IN;
	q->req.done = test_router_done;
}

/* Route `text` and return the router's answer; *owner gets req->owner. */
static int
test_router_route(struct router *r, const char *text, struct upstream **owner)
{
	struct test_router_q q;
	int rc;

	test_router_q_init(&q, text, DNS_TYPE_A);
	q.req.owner = (struct upstream *)&q; /* must be reset on failure */
	rc = router_resolve(r, &q.req);
	if (owner)
		*owner = q.req.owner;
	return rc;
}

/* ---- router ------------------------------------------------------------------------------ */

/* router_answer(): only the longest zone's first upstream is asked, and only if it can. */
static void
test_router_answer_now(void **state UNUSED)
{
	struct router *r = router_new();
	struct upstream *plain = test_router_dbl_new(0), *sync = test_router_dbl_new(0);
	struct test_router_q q;
	uint8_t out[64];

	sync->ops = &test_router_sync_ops;
	assert_non_null(r);
	assert_int_equal(router_own(r, plain), 0);
	assert_int_equal(router_bind(r, ".", plain), 0);
	test_router_q_init(&q, "a.now", DNS_TYPE_A);
	/* nothing bound can answer yet: no walk at all */
	assert_int_equal(router_answer(r, &q.req, out, sizeof(out)), -EAGAIN);
	assert_int_equal(router_own(r, sync), 0);
	assert_int_equal(router_bind(r, "now", sync), 0);
	assert_int_equal(router_answer(r, &q.req, out, sizeof(out)), DNS_HDR_LEN);
	assert_int_equal(dnsmsg_get16(out), 0x4242);
	assert_ptr_equal(q.req.owner, sync);	       /* who answered: the metrics' source */
	test_router_q_init(&q, "a.later", DNS_TYPE_A); /* the root's upstream has no answer op */
	assert_int_equal(router_answer(r, &q.req, out, sizeof(out)), -EAGAIN);
	assert_int_equal(router_bind(r, "b.now", plain), 0); /* a longer zone, no answer op */
	test_router_q_init(&q, "x.b.now", DNS_TYPE_A);
	assert_int_equal(router_answer(r, &q.req, out, sizeof(out)), -EAGAIN);
	assert_int_equal(router_answer(r, &q.req, out, 4), -EAGAIN);
	/* answer() never counts as an offer: resolve() was not called */
	assert_int_equal(test_router_calls(plain) + test_router_calls(sync), 0);
	router_free(r);
}

static void
test_router_longest_match(void **state UNUSED)
{
	struct router *r = router_new();
	struct upstream *u1 = test_router_dbl_new(0), *u2 = test_router_dbl_new(0), *owner;

	assert_non_null(r);
	assert_int_equal(router_own(r, u1), 0);
	assert_int_equal(router_own(r, u2), 0);
	/* bound shortest first, so binding order cannot explain the result */
	assert_int_equal(router_bind(r, "example.com", u1), 0);
	assert_int_equal(router_bind(r, "b.example.com", u2), 0);

	assert_int_equal(test_router_route(r, "a.b.example.com", &owner), 0);
	assert_ptr_equal(owner, u2);
	assert_int_equal(test_router_calls(u1), 0);
	assert_int_equal(test_router_route(r, "b.example.com", &owner), 0);
	assert_ptr_equal(owner, u2);
	assert_int_equal(test_router_route(r, "c.example.com", &owner), 0);
	assert_ptr_equal(owner, u1);
	assert_int_equal(test_router_route(r, "example.com", &owner), 0);
	assert_ptr_equal(owner, u1);
	assert_int_equal(test_router_route(r, "x.a.b.example.com", &owner), 0);
	assert_ptr_equal(owner, u2);
	assert_int_equal(test_router_calls(u1), 2);
	assert_int_equal(test_router_calls(u2), 3);
	router_free(r);
	assert_int_equal(test_router_frees, 2);
}

static void
test_router_root_catches_all(void **state UNUSED)
{
	struct router *r = router_new();
	struct upstream *root = test_router_dbl_new(0), *ex = test_router_dbl_new(0), *owner;

	assert_int_equal(router_own(r, root), 0);
	assert_int_equal(router_own(r, ex), 0);
	assert_int_equal(router_bind(r, ".", root), 0);
	assert_int_equal(router_bind(r, "example.com", ex), 0);
	assert_int_equal(test_router_route(r, "www.example.org", &owner), 0);
	assert_ptr_equal(owner, root);
	assert_int_equal(test_router_route(r, "com", &owner), 0);
	assert_ptr_equal(owner, root);
	assert_int_equal(test_router_route(r, ".", &owner), 0);
	assert_ptr_equal(owner, root);
	assert_int_equal(test_router_route(r, "www.example.com", &owner), 0);
	assert_ptr_equal(owner, ex);
	router_free(r);
}

static void
test_router_root_empty_text(void **state UNUSED)
{
	struct router *r = router_new();
	struct upstream *root = test_router_dbl_new(0), *owner;

	assert_int_equal(router_own(r, root), 0);
	assert_int_equal(router_bind(r, "", root), 0);
	assert_int_equal(test_router_route(r, "anything.test", &owner), 0);
	assert_ptr_equal(owner, root);
	router_free(r);
}

static void
test_router_case_insensitive(void **state UNUSED)
{
	struct router *r = router_new();
	struct upstream *u = test_router_dbl_new(0), *owner;

	assert_int_equal(router_own(r, u), 0);
	assert_int_equal(router_bind(r, "ExAmPle.COM.", u), 0);
	assert_int_equal(test_router_route(r, "WWW.Example.Com", &owner), 0);
	assert_ptr_equal(owner, u);
	assert_int_equal(test_router_route(r, "example.com", &owner), 0);
	assert_ptr_equal(owner, u);
	router_free(r);
}

static void
test_router_label_boundary(void **state UNUSED)
{
	struct router *r = router_new();
	struct upstream *u = test_router_dbl_new(0), *owner;

	assert_int_equal(router_own(r, u), 0);
	assert_int_equal(router_bind(r, "example.com", u), 0);
	assert_int_equal(test_router_route(r, "xexample.com", &owner), -ENOENT);
	assert_null(owner);
	assert_int_equal(test_router_route(r, "www.xexample.com", NULL), -ENOENT);
	assert_int_equal(test_router_route(r, "example.com.evil.org", NULL), -ENOENT);
	assert_int_equal(test_router_route(r, "com", NULL), -ENOENT);
	assert_int_equal(test_router_calls(u), 0);
	router_free(r);
}

static void
test_router_fall_through(void **state UNUSED)
{
	struct router *r = router_new();
	struct upstream *b1 = test_router_dbl_new(-ENOENT), *b2 = test_router_dbl_new(-ENOENT);
	struct upstream *ex = test_router_dbl_new(-ENOENT), *root = test_router_dbl_new(0);
	struct upstream *owner;

	assert_int_equal(router_own(r, b1), 0);
	assert_int_equal(router_own(r, b2), 0);
	assert_int_equal(router_own(r, ex), 0);
	assert_int_equal(router_own(r, root), 0);
	assert_int_equal(router_bind(r, ".", root), 0);
	assert_int_equal(router_bind(r, "example.com", ex), 0);
	assert_int_equal(router_bind(r, "b.example.com", b1), 0);
	assert_int_equal(router_bind(r, "b.example.com", b2), 0);

	assert_int_equal(test_router_route(r, "a.b.example.com", &owner), 0);
	assert_ptr_equal(owner, root);
	assert_int_equal(test_router_nlog, 4);
	assert_ptr_equal(test_router_log[0], b1);
	assert_ptr_equal(test_router_log[1], b2);
	assert_ptr_equal(test_router_log[2], ex);
	assert_ptr_equal(test_router_log[3], root);

	/* the second upstream of a zone accepts: the shorter zones are not asked */
	container_of(b2, struct test_router_dbl, base)->code = 0;
	test_router_nlog = 0;
	assert_int_equal(test_router_route(r, "a.b.example.com", &owner), 0);
	assert_ptr_equal(owner, b2);
	assert_int_equal(test_router_nlog, 2);
	assert_ptr_equal(test_router_log[0], b1);
	router_free(r);
}

static void
test_router_error_stops(void **state UNUSED)
{
	struct router *r = router_new();
	struct upstream *b1 = test_router_dbl_new(-ENOENT), *b2 = test_router_dbl_new(-EBUSY);
	struct upstream *b3 = test_router_dbl_new(0), *root = test_router_dbl_new(0);
	struct upstream *owner;

	assert_int_equal(router_own(r, b1), 0);
	assert_int_equal(router_own(r, b2), 0);
	assert_int_equal(router_own(r, b3), 0);
	assert_int_equal(router_own(r, root), 0);
	assert_int_equal(router_bind(r, "b.example.com", b1), 0);
	assert_int_equal(router_bind(r, "b.example.com", b2), 0);
	assert_int_equal(router_bind(r, "b.example.com", b3), 0);
	assert_int_equal(router_bind(r, ".", root), 0);
	assert_int_equal(test_router_route(r, "a.b.example.com", &owner), -EBUSY);
	assert_null(owner);
	assert_int_equal(test_router_calls(b3), 0);
	assert_int_equal(test_router_calls(root), 0);

	container_of(b2, struct test_router_dbl, base)->code = -ENXIO;
	assert_int_equal(test_router_route(r, "b.example.com", NULL), -ENXIO);
	assert_int_equal(test_router_calls(root), 0);
	router_free(r);
}

static void
test_router_no_root(void **state UNUSED)
{
	struct router *r = router_new();
	struct upstream *u = test_router_dbl_new(-ENOENT), *owner;

	assert_int_equal(test_router_route(r, "www.example.com", &owner), -ENOENT);
	assert_null(owner);
	assert_int_equal(router_own(r, u), 0);
	assert_int_equal(router_bind(r, "example.com", u), 0);
	assert_int_equal(test_router_route(r, "other.org", NULL), -ENOENT);
	assert_int_equal(test_router_route(r, "www.example.com", &owner), -ENOENT);
	assert_null(owner);
	assert_int_equal(test_router_calls(u), 1);
	router_free(r);
}

static void
test_router_count_fn(struct upstream *u, void *ctx)
{
	struct upstream **seen = ctx;

	for (unsigned i = 0; i < 4; i++) {
		if (!seen[i]) {
			seen[i] = u;
			return;
		}
	}
	fail_msg("router_foreach visited too many upstreams");
}

static void
test_router_freed_once(void **state UNUSED)
{
	struct router *r = router_new();
	struct upstream *u = test_router_dbl_new(-ENOENT), *v = test_router_dbl_new(0);
	struct upstream *seen[4] = {NULL}, *owner;

	assert_int_equal(router_bind(r, "example.com", u), 0);
	assert_int_equal(router_bind(r, "example.org", u), 0);
	assert_int_equal(router_bind(r, "10.in-addr.arpa", u), 0);
	assert_int_equal(router_bind(r, ".", u), 0);
	assert_int_equal(router_bind(r, ".", v), 0);
	assert_int_equal(router_own(r, u), 0);
	assert_int_equal(router_own(r, v), 0);
	assert_int_equal(router_own(r, u), 0); /* idempotent */

	/* a zone that falls through to the root offers u again there, then v */
	assert_int_equal(test_router_route(r, "www.example.org", &owner), 0);
	assert_ptr_equal(owner, v);
	assert_int_equal(test_router_calls(u), 2);

	router_foreach(r, test_router_count_fn, seen);
	assert_ptr_equal(seen[0], u);
	assert_ptr_equal(seen[1], v);
	assert_null(seen[2]);

	router_free(r);
	assert_int_equal(test_router_frees, 2);
	router_free(NULL);
}

static void
test_router_duplicate_bind(void **state UNUSED)
{
	struct router *r = router_new();
	struct upstream *u = test_router_dbl_new(-ENOENT);

	assert_int_equal(router_own(r, u), 0);
	assert_int_equal(router_bind(r, "example.com", u), 0);
	assert_int_equal(router_bind(r, "EXAMPLE.com", u), 0);
	assert_int_equal(test_router_route(r, "example.com", NULL), -ENOENT);
	assert_int_equal(test_router_calls(u), 1);
	router_free(r);
}

static void
test_router_invalid_zone(void **state UNUSED)
{
	struct router *r = router_new();
	struct upstream *u = test_router_dbl_new(0);
	char label64[80], longname[300];

	memset(label64, 'a', 64);
	strcpy(label64 + 64, ".com");
	for (size_t i = 0; i < 128; i++)
		memcpy(longname + 2 * i, "a.", 2);
	strcpy(longname + 256, "com");

	assert_int_equal(router_own(r, u), 0);
	assert_int_equal(router_bind(r, "a..b", u), -EINVAL);
	assert_int_equal(router_bind(r, ".example.com", u), -EINVAL);
	assert_int_equal(router_bind(r, label64, u), -EINVAL);
	assert_int_equal(router_bind(r, longname, u), -EINVAL);
	assert_int_equal(router_bind(r, NULL, u), -EINVAL);
	/* nothing half-bound: not even the root */
	assert_int_equal(test_router_route(r, "b", NULL), -ENOENT);
	assert_int_equal(test_router_route(r, "a.b", NULL), -ENOENT);
	assert_int_equal(test_router_calls(u), 0);
	router_free(r);
}

/* A name that runs past its length: refused, never read beyond. */
static void
test_router_bad_qname(void **state UNUSED)
{
	struct router *r = router_new();
	struct upstream *u = test_router_dbl_new(0);
	uint8_t *name = malloc(5);
	struct upstream_req req = {0};

	memcpy(name,
	       "\x07"
	       "exam",
	       5);
	assert_int_equal(router_own(r, u), 0);
	assert_int_equal(router_bind(r, "example", u), 0);
	req.q.qname = name;
	req.q.qname_len = 5;
	assert_int_equal(router_resolve(r, &req), -EINVAL);
	req.q.qname = NULL;
	assert_int_equal(router_resolve(r, &req), -EINVAL);
	assert_int_equal(test_router_calls(u), 0);
	free(name);
	router_free(r);
}

/* Suffixes deeper than every zone are skipped: a long name still finds its zone, a name deeper
 * than every zone falls to the right shorter one, and a deeper zone bound later is found. */
static void
test_router_deep_names(void **state UNUSED)
{
	struct router *r = router_new();
	struct upstream *root = test_router_dbl_new(0), *cl = test_router_dbl_new(0),
			*arpa = test_router_dbl_new(0), *deep = test_router_dbl_new(-ENOENT),
			*owner;
	char text[DNS_MAX_NAME * 2];
	size_t pos = 0;

	assert_non_null(r);
	assert_int_equal(router_own(r, root), 0);
	assert_int_equal(router_own(r, cl), 0);
	assert_int_equal(router_own(r, arpa), 0);
	assert_int_equal(router_own(r, deep), 0);
	assert_int_equal(router_bind(r, ".", root), 0);
	assert_int_equal(router_bind(r, "cluster.local", cl), 0);
	assert_int_equal(router_bind(r, "in-addr.arpa", arpa), 0);
	assert_int_equal(test_router_route(r, "_http._tcp.web.ns.svc.cluster.local", &owner), 0);
	assert_ptr_equal(owner, cl);
	assert_int_equal(test_router_route(r, "4.3.2.10.in-addr.arpa", &owner), 0);
	assert_ptr_equal(owner, arpa);
	assert_int_equal(test_router_route(r, "a.b.c.d.e.f.example.org", &owner), 0);
	assert_ptr_equal(owner, root);
	/* 122 labels, 255 bytes: the longest name there is */
	for (unsigned i = 0; i < 120; i++)
		pos += (size_t)snprintf(text + pos, sizeof(text) - pos, "x.");
	snprintf(text + pos, sizeof(text) - pos, "cluster.local");
	assert_int_equal(test_router_route(r, text, &owner), 0);
	assert_ptr_equal(owner, cl);
	text[pos - 1] = 'y'; /* now ends x.xycluster.local: not in the zone */
	assert_int_equal(test_router_route(r, text, &owner), 0);
	assert_ptr_equal(owner, root);

	/* a zone deeper than any before: its names reach it, its declines fall through */
	assert_int_equal(router_bind(r, "d.c.b.a.cluster.local", deep), 0);
	assert_int_equal(test_router_route(r, "h.g.f.e.d.c.b.a.cluster.local", &owner), 0);
	assert_ptr_equal(owner, cl);
	assert_int_equal(test_router_calls(deep), 1);
	assert_int_equal(test_router_route(r, "h.g.f.e.x.c.b.a.cluster.local", &owner), 0);
	assert_ptr_equal(owner, cl);
	assert_int_equal(test_router_calls(deep), 1);
	router_free(r);
	assert_int_equal(test_router_frees, 4);
}

/* Enough zones to make the table grow; each still routes to its own upstream. */
static void
test_router_many_zones(void **state UNUSED)
{
	enum { N = 500 };
	struct router *r = router_new();
	struct upstream *ups[N], *owner;
	char text[64];

	for (unsigned i = 0; i < N; i++) {
		ups[i] = test_router_dbl_new(0);
		assert_int_equal(router_own(r, ups[i]), 0);
		snprintf(text, sizeof(text), "zone%u.example", i);
		assert_int_equal(router_bind(r, text, ups[i]), 0);
	}
	for (unsigned i = 0; i < N; i++) {
		snprintf(text, sizeof(text), "host.zone%u.example", i);
		assert_int_equal(test_router_route(r, text, &owner), 0);
		assert_ptr_equal(owner, ups[i]);
	}
	assert_int_equal(test_router_route(r, "host.zone500.example", NULL), -ENOENT);
	router_free(r);
	assert_int_equal(test_router_frees, N);
}

/* ---- upstream_local ---------------------------------------------------------------------- */

struct test_router_local {
	struct event_base *base;
	struct config_address addrs[4];
	const struct config_address *ptrs[4];
	struct upstream_local_args args;
};

static struct test_router_local *
test_router_local_new(void)
{
	struct test_router_local *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	t->base = event_base_new();
	assert_non_null(t->base);
	for (unsigned i = 0; i < ARRAY_SIZE(t->ptrs); i++)
		t->ptrs[i] = &t->addrs[i];
	t->args.addresses = t->ptrs;
	t->args.ttl = 300;
	return t;
}

static void
test_router_local_free(struct test_router_local *t)
{
	event_base_free(t->base);
	free(t);
}

static void
test_router_local_ip(struct test_router_local *t, const char *ip)
{
	struct config_address *a = &t->addrs[t->args.n_addresses++];

	a->kind = CONFIG_ADDRESS_IP;
	a->family = strchr(ip, ':') ? AF_INET6 : AF_INET;
	assert_int_equal(inet_pton(a->family, ip, a->ip), 1);
}

static void
test_router_local_kind(struct test_router_local *t, int kind)
{
	t->addrs[t->args.n_addresses++].kind = kind;
}

static struct upstream *
test_router_local_up(struct test_router_local *t)
{
	struct upstream *u = NULL;

	assert_int_equal(upstream_local_ops.create(&u, t->base, &t->args), 0);
	assert_non_null(u);
	return u;
}

/* One event loop iteration that cannot block (NONBLOCK alone would go on while anything is
 * active or due). */
static void
test_router_loop(struct test_router_local *t)
{
	assert_true(event_base_loop(t->base, EVLOOP_ONCE | EVLOOP_NONBLOCK) >= 0);
}

/* Check the reply header: our question, AA, NOERROR, `an` answers; the iterator is left at the
 * first record. */
static void
test_router_check_reply(struct test_router_q *q, unsigned an, struct dnsmsg_iter *it)
{
	assert_int_equal(q->done_calls, 1);
	assert_int_equal(q->status, 0);
	assert_true(q->reply_len >= DNS_HDR_LEN);
	assert_true(dnsmsg_qr(q->reply));
	assert_true(dnsmsg_aa(q->reply));
	assert_int_equal(dnsmsg_rcode(q->reply), DNS_RCODE_NOERROR);
	assert_int_equal(dnsmsg_check_reply(q->reply, q->reply_len, dnsmsg_id(q->reply), &q->req.q),
			 0);
	assert_int_equal(dnsmsg_ancount(q->reply), an);
	assert_int_equal(dnsmsg_nscount(q->reply), 0);
	assert_int_equal(dnsmsg_iter_init(it, q->reply, q->reply_len), 0);
}

/* The next record is an answer for the question with this rdata and the configured TTL. */
static void
test_router_check_rr(struct test_router_q *q, struct dnsmsg_iter *it, uint16_t type, const char *ip)
{
	struct dnsmsg_rr rr;
	uint8_t want[16];
	char owner[DNS_MAX_NAME * 4 + 1], qname[DNS_MAX_NAME * 4 + 1];

	assert_int_equal(dnsmsg_iter_next(it, &rr), 0);
	assert_int_equal(rr.section, DNS_SECTION_ANSWER);
	assert_int_equal(rr.type, type);
	assert_int_equal(rr.rclass, DNS_CLASS_IN);
	assert_int_equal(rr.ttl, 300);
	assert_int_equal(rr.rdlen, type == DNS_TYPE_A ? 4 : 16);
	assert_int_equal(inet_pton(type == DNS_TYPE_A ? AF_INET : AF_INET6, ip, want), 1);
	assert_memory_equal(q->reply + rr.rdata_off, want, rr.rdlen);
	assert_true(dnsmsg_name_to_text(q->reply, q->reply_len, rr.name_off, owner, sizeof(owner)) >
		    0);
	assert_true(dnsmsg_name_to_text(q->req.q.qname, q->req.q.qname_len, 0, qname,
					sizeof(qname)) > 0);
	assert_string_equal(owner, qname);
}

static void
test_router_local_a_aaaa(void **state UNUSED)
{
	struct test_router_local *t = test_router_local_new();
	struct test_router_q qa, qaaaa;
	struct dnsmsg_iter it;
	struct dnsmsg_rr rr;
	struct upstream *u;

	test_router_local_ip(t, "192.0.2.1");
	test_router_local_ip(t, "2001:db8::1");
	test_router_local_ip(t, "192.0.2.2");
	u = test_router_local_up(t);
	assert_string_equal(u->ops->name, "local");

	test_router_q_init(&qa, "www.example.com", DNS_TYPE_A);
	test_router_q_init(&qaaaa, "example.com", DNS_TYPE_AAAA);
	assert_int_equal(upstream_resolve(u, &qa.req), 0);
	assert_int_equal(upstream_resolve(u, &qaaaa.req), 0);
	assert_int_equal(qa.done_calls, 0);
	assert_int_equal(qaaaa.done_calls, 0);
	test_router_loop(t);

	test_router_check_reply(&qa, 2, &it);
	test_router_check_rr(&qa, &it, DNS_TYPE_A, "192.0.2.1");
	test_router_check_rr(&qa, &it, DNS_TYPE_A, "192.0.2.2");
	assert_int_equal(dnsmsg_iter_next(&it, &rr), -ENOENT);

	test_router_check_reply(&qaaaa, 1, &it);
	test_router_check_rr(&qaaaa, &it, DNS_TYPE_AAAA, "2001:db8::1");
	assert_int_equal(dnsmsg_iter_next(&it, &rr), -ENOENT);

	/* nothing left to deliver twice */
	test_router_loop(t);
	assert_int_equal(qa.done_calls, 1);
	assert_int_equal(qaaaa.done_calls, 1);
	upstream_free(u);
	test_router_local_free(t);
}

static void
test_router_local_nodata(void **state UNUSED)
{
	struct test_router_local *t = test_router_local_new();
	struct test_router_q mx, aaaa, chaos;
	struct dnsmsg_iter it;
	struct dnsmsg_rr rr;
	struct upstream *u;

	test_router_local_ip(t, "192.0.2.1");
	u = test_router_local_up(t);
	test_router_q_init(&mx, "example.com", DNS_TYPE_MX);
	test_router_q_init(&aaaa, "example.com", DNS_TYPE_AAAA); /* no IPv6 configured */
	test_router_q_init(&chaos, "example.com", DNS_TYPE_A);
	chaos.req.q.qclass = DNS_CLASS_CH;
	assert_int_equal(upstream_resolve(u, &mx.req), 0);
	assert_int_equal(upstream_resolve(u, &aaaa.req), 0);
	assert_int_equal(upstream_resolve(u, &chaos.req), 0);
	test_router_loop(t);
	test_router_check_reply(&mx, 0, &it);
	assert_int_equal(dnsmsg_iter_next(&it, &rr), -ENOENT);
	test_router_check_reply(&aaaa, 0, &it);
	test_router_check_reply(&chaos, 0, &it);
	upstream_free(u);
	test_router_local_free(t);
}

static void
test_router_local_unspec(void **state UNUSED)
{
	struct test_router_local *t = test_router_local_new();
	struct test_router_q a, aaaa;
	struct dnsmsg_iter it;
	struct upstream *u;

	test_router_local_kind(t, CONFIG_ADDRESS_UNSPEC);
	u = test_router_local_up(t);
	test_router_q_init(&a, "ads.example", DNS_TYPE_A);
	test_router_q_init(&aaaa, "ads.example", DNS_TYPE_AAAA);
	assert_int_equal(upstream_resolve(u, &a.req), 0);
	assert_int_equal(upstream_resolve(u, &aaaa.req), 0);
	test_router_loop(t);
	test_router_check_reply(&a, 1, &it);
	test_router_check_rr(&a, &it, DNS_TYPE_A, "0.0.0.0");
	test_router_check_reply(&aaaa, 1, &it);
	test_router_check_rr(&aaaa, &it, DNS_TYPE_AAAA, "::");
	upstream_free(u);
	test_router_local_free(t);
}

static void
test_router_local_nxdomain(void **state UNUSED)
{
	struct test_router_local *t = test_router_local_new();
	struct test_router_q q;
	struct upstream *none, *nx, *mixed;

	none = test_router_local_up(t); /* local-only zone: no addresses at all */
	test_router_local_kind(t, CONFIG_ADDRESS_NXDOMAIN);
	nx = test_router_local_up(t);
	test_router_local_ip(t, "192.0.2.7");
	mixed = test_router_local_up(t); /* an IP wins over the NXDOMAIN form */

	test_router_q_init(&q, "blocked.example", DNS_TYPE_A);
	assert_int_equal(upstream_resolve(none, &q.req), -ENXIO);
	assert_int_equal(upstream_resolve(nx, &q.req), -ENXIO);
	test_router_q_init(&q, "blocked.example", DNS_TYPE_AAAA);
	assert_int_equal(upstream_resolve(nx, &q.req), -ENXIO);
	test_router_loop(t);
	assert_int_equal(q.done_calls, 0);

	test_router_q_init(&q, "blocked.example", DNS_TYPE_AAAA);
	assert_int_equal(upstream_resolve(mixed, &q.req), 0);
	test_router_loop(t);
	assert_int_equal(q.done_calls, 1);
	assert_int_equal(dnsmsg_rcode(q.reply), DNS_RCODE_NOERROR);
	assert_int_equal(dnsmsg_ancount(q.reply), 0);

	upstream_free(none);
	upstream_free(nx);
	upstream_free(mixed);
	test_router_local_free(t);
}

static void
test_router_local_cancel(void **state UNUSED)
{
	struct test_router_local *t = test_router_local_new();
	struct test_router_q q1, q2;
	struct upstream *u;

	test_router_local_ip(t, "192.0.2.1");
	u = test_router_local_up(t);
	test_router_q_init(&q1, "a.example", DNS_TYPE_A);
	test_router_q_init(&q2, "b.example", DNS_TYPE_A);
	assert_int_equal(upstream_resolve(u, &q1.req), 0);
	assert_int_equal(upstream_resolve(u, &q2.req), 0);
	upstream_cancel(u, &q1.req);
	test_router_loop(t);
	assert_int_equal(q1.done_calls, 0);
	assert_int_equal(q2.done_calls, 1);

	/* cancelling the only pending request leaves nothing to run */
	test_router_q_init(&q1, "a.example", DNS_TYPE_A);
	assert_int_equal(upstream_resolve(u, &q1.req), 0);
	upstream_cancel(u, &q1.req);
	test_router_loop(t);
	assert_int_equal(q1.done_calls, 0);
	upstream_free(u);
	test_router_local_free(t);
}

/* A done() that asks again: the new request is still answered only after its resolve() returned
 * and on a later loop iteration. */
struct test_router_again {
	struct test_router_q first, second;
	struct upstream *u;
	int rc;
};

static void
test_router_again_done(struct upstream_req *req, int status, const uint8_t *reply, size_t len)
{
	struct test_router_again *a = container_of(req, struct test_router_again, first.req);

	test_router_done(req, status, reply, len);
	a->rc = upstream_resolve(a->u, &a->second.req);
	assert_int_equal(a->second.done_calls, 0);
}

static void
test_router_local_reentrant(void **state UNUSED)
{
	struct test_router_local *t = test_router_local_new();
	struct test_router_again a;

	test_router_local_ip(t, "192.0.2.1");
	a.u = test_router_local_up(t);
	test_router_q_init(&a.first, "a.example", DNS_TYPE_A);
	test_router_q_init(&a.second, "b.example", DNS_TYPE_A);
	a.first.req.done = test_router_again_done;
	assert_int_equal(upstream_resolve(a.u, &a.first.req), 0);
	test_router_loop(t);
	assert_int_equal(a.first.done_calls, 1);
	assert_int_equal(a.rc, 0);
	assert_int_equal(a.second.done_calls, 0);
	test_router_loop(t);
	assert_int_equal(a.second.done_calls, 1);
	upstream_free(a.u);
	test_router_local_free(t);
}

static void
test_router_local_caps(void **state UNUSED)
{
	enum { PENDING_CAP = 4096 };
	struct test_router_local *t = test_router_local_new();
	struct test_router_q *qs = calloc(PENDING_CAP + 1, sizeof(*qs));
	struct config_address many[9];
	const struct config_address *ptrs[9];
	struct upstream *u = NULL;

	assert_non_null(qs);
	/* nine IPv4 addresses would not fit the reply buffer with a long name */
	for (unsigned i = 0; i < 9; i++) {
		many[i] = (struct config_address){.kind = CONFIG_ADDRESS_IP,
						  .family = AF_INET,
						  .ip = {192, 0, 2, (uint8_t)(i + 1)}};
		ptrs[i] = &many[i];
	}
	t->args.addresses = ptrs;
	t->args.n_addresses = 9;
	assert_int_equal(upstream_local_ops.create(&u, t->base, &t->args), -E2BIG);
	t->args.n_addresses = 8;
	u = test_router_local_up(t);

	for (unsigned i = 0; i <= PENDING_CAP; i++)
		test_router_q_init(&qs[i], "example.com", DNS_TYPE_A);
	for (unsigned i = 0; i < PENDING_CAP; i++)
		assert_int_equal(upstream_resolve(u, &qs[i].req), 0);
	assert_int_equal(upstream_resolve(u, &qs[PENDING_CAP].req), -EBUSY);
	test_router_loop(t);
	for (unsigned i = 0; i < PENDING_CAP; i++)
		assert_int_equal(qs[i].done_calls, 1);
	assert_int_equal(dnsmsg_ancount(qs[0].reply), 8);
	assert_int_equal(qs[PENDING_CAP].done_calls, 0);
	/* drained: room again */
	assert_int_equal(upstream_resolve(u, &qs[PENDING_CAP].req), 0);
	test_router_loop(t);
	assert_int_equal(qs[PENDING_CAP].done_calls, 1);
	upstream_free(u);
	free(qs);
	test_router_local_free(t);
}

/* A maximal name with 8 AAAA records still fits the reply buffer. */
static void
test_router_local_long_name(void **state UNUSED)
{
	struct test_router_local *t = test_router_local_new();
	struct config_address many[8];
	const struct config_address *ptrs[8];
	struct test_router_q q;
	char name[300];
	struct upstream *u;

	for (unsigned i = 0; i < 8; i++) {
		many[i] = (struct config_address){
			.kind = CONFIG_ADDRESS_IP,
			.family = AF_INET6,
			.ip = {0x20, 0x01, 0x0d, 0xb8, [15] = (uint8_t)i},
		};
		ptrs[i] = &many[i];
	}
	t->args.addresses = ptrs;
	t->args.n_addresses = 8;
	u = test_router_local_up(t);
	/* 63 + 63 + 63 + 61 characters in four labels: 255 bytes in wire form */
	memset(name, 'a', sizeof(name));
	name[63] = name[127] = name[191] = '.';
	name[253] = '\0';
	test_router_q_init(&q, name, DNS_TYPE_AAAA);
	assert_int_equal(q.req.q.qname_len, 255);
	assert_int_equal(upstream_resolve(u, &q.req), 0);
	test_router_loop(t);
	assert_int_equal(q.done_calls, 1);
	assert_int_equal(q.status, 0);
	assert_int_equal(dnsmsg_ancount(q.reply), 8);
	upstream_free(u);
	test_router_local_free(t);
}

static void
test_router_local_bad_args(void **state UNUSED)
{
	struct test_router_local *t = test_router_local_new();
	struct upstream *u = NULL;

	test_router_local_ip(t, "192.0.2.1");
	t->addrs[0].family = AF_UNIX;
	assert_int_equal(upstream_local_ops.create(&u, t->base, &t->args), -EINVAL);
	t->addrs[0].family = AF_INET;
	assert_int_equal(upstream_local_ops.create(&u, NULL, &t->args), -EINVAL);
	assert_null(u);
	upstream_free(NULL);
	test_router_local_free(t);
}

/* The log lines use dnsmasq's wording. */
static void
test_router_local_log(void **state UNUSED)
{
	struct test_router_local *t = test_router_local_new();
	char path[] = "/tmp/test_router_log.XXXXXX", text[4096];
	struct upstream *u, *nx;
	struct test_router_q q;
	int fd = mkstemp(path);
	FILE *f;
	size_t n;

	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(log_open(path, false), 0);
	t->args.log_queries = true;
	nx = test_router_local_up(t);
	test_router_local_ip(t, "192.0.2.1");
	u = test_router_local_up(t);

	test_router_q_init(&q, "www.example.com", DNS_TYPE_A);
	assert_int_equal(upstream_resolve(nx, &q.req), -ENXIO);
	assert_int_equal(upstream_resolve(u, &q.req), 0);
	test_router_loop(t);
	test_router_q_init(&q, "www.example.com", DNS_TYPE_AAAA);
	assert_int_equal(upstream_resolve(u, &q.req), 0);
	test_router_loop(t);
	log_close();

	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	fclose(f);
	unlink(path);
	assert_non_null(strstr(text, "config www.example.com is NXDOMAIN\n"));
	assert_non_null(strstr(text, "config www.example.com is 192.0.2.1\n"));
	assert_non_null(strstr(text, "config www.example.com is NODATA-IPv6\n"));
	upstream_free(u);
	upstream_free(nx);
	test_router_local_free(t);
}

/* The router hands a local zone's NXDOMAIN back to the caller and accepts its answers. */
static void
test_router_with_local(void **state UNUSED)
{
	struct test_router_local *t = test_router_local_new();
	struct router *r = router_new();
	struct upstream *nx, *ip, *root = test_router_dbl_new(0);
	struct test_router_q q;

	nx = test_router_local_up(t);
	test_router_local_ip(t, "192.0.2.1");
	ip = test_router_local_up(t);
	assert_int_equal(router_own(r, nx), 0);
	assert_int_equal(router_own(r, ip), 0);
	assert_int_equal(router_own(r, root), 0);
	assert_int_equal(router_bind(r, "blocked.example", nx), 0);
	assert_int_equal(router_bind(r, "local.example", ip), 0);
	assert_int_equal(router_bind(r, ".", root), 0);

	test_router_q_init(&q, "ads.blocked.example", DNS_TYPE_A);
	assert_int_equal(router_resolve(r, &q.req), -ENXIO);
	assert_int_equal(test_router_calls(root), 0);
	test_router_q_init(&q, "www.local.example", DNS_TYPE_A);
	assert_int_equal(router_resolve(r, &q.req), 0);
	assert_ptr_equal(q.req.owner, ip);
	test_router_loop(t);
	assert_int_equal(q.done_calls, 1);
	assert_int_equal(dnsmsg_ancount(q.reply), 1);
	router_free(r);
	test_router_local_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_router_answer_now, test_router_setup),
		cmocka_unit_test_setup(test_router_longest_match, test_router_setup),
		cmocka_unit_test_setup(test_router_root_catches_all, test_router_setup),
		cmocka_unit_test_setup(test_router_deep_names, test_router_setup),
		cmocka_unit_test_setup(test_router_root_empty_text, test_router_setup),
		cmocka_unit_test_setup(test_router_case_insensitive, test_router_setup),
		cmocka_unit_test_setup(test_router_label_boundary, test_router_setup),
		cmocka_unit_test_setup(test_router_fall_through, test_router_setup),
		cmocka_unit_test_setup(test_router_error_stops, test_router_setup),
		cmocka_unit_test_setup(test_router_no_root, test_router_setup),
		cmocka_unit_test_setup(test_router_freed_once, test_router_setup),
		cmocka_unit_test_setup(test_router_duplicate_bind, test_router_setup),
		cmocka_unit_test_setup(test_router_invalid_zone, test_router_setup),
		cmocka_unit_test_setup(test_router_bad_qname, test_router_setup),
		cmocka_unit_test_setup(test_router_many_zones, test_router_setup),
		cmocka_unit_test(test_router_local_a_aaaa),
		cmocka_unit_test(test_router_local_nodata),
		cmocka_unit_test(test_router_local_unspec),
		cmocka_unit_test(test_router_local_nxdomain),
		cmocka_unit_test(test_router_local_cancel),
		cmocka_unit_test(test_router_local_reentrant),
		cmocka_unit_test(test_router_local_caps),
		cmocka_unit_test(test_router_local_long_name),
		cmocka_unit_test(test_router_local_bad_args),
		cmocka_unit_test(test_router_local_log),
		cmocka_unit_test_setup(test_router_with_local, test_router_setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
