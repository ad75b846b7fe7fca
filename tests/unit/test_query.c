/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_query.c - unit tests of the query engine's cache side (query.c): the invalidation hook
 * (cached answers dropped; a miss in flight for an invalidated name is answered but not cached,
 * and a new identical query starts a fresh upstream request), coalescing of identical misses
 * with each waiter's own ID and spelling, --max-ttl on fresh answers and on hits, and the
 * waiter cap checked before any upstream work. The upstream is a test double that holds
 * requests until the test completes them; answers are captured by the origin's send function.
 * No sockets, no event loop run.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "kubemasq/dnsmsg.h"
#include "kubemasq/log.h"
#include "kubemasq/upstream.h"
#include "lib/cache.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/router.h"
#include "lib/stats.h"
#include "daemon/query.h"

#define T_MAX_REQS 256

/* The double: every accepted request waits in reqs[] until t_complete(). */
struct t_up {
	struct upstream base;
	struct upstream_req *reqs[T_MAX_REQS];
	unsigned n_reqs, total, cancelled;
};

static int
t_up_resolve(struct upstream *u, struct upstream_req *req)
{
	struct t_up *t = (struct t_up *)u;

	assert_true(t->n_reqs < T_MAX_REQS);
	t->reqs[t->n_reqs++] = req;
	t->total++;
	return 0;
}

static void
t_up_forget(struct t_up *t, struct upstream_req *req)
{
	for (unsigned i = 0; i < t->n_reqs; i++)
		if (t->reqs[i] == req) {
			t->reqs[i] = t->reqs[--t->n_reqs];
			return;
		}
	fail_msg("unknown request");
}

static void
t_up_cancel(struct upstream *u, struct upstream_req *req)
{
	t_up_forget((struct t_up *)u, req);
	((struct t_up *)u)->cancelled++;
}

static void
t_up_free(struct upstream *u)
{
	free(u);
}

static const struct upstream_ops t_up_ops = {
	.name = "test",
	.resolve = t_up_resolve,
	.cancel = t_up_cancel,
	.free = t_up_free,
};

/* Answers sent late, through the origin: the last one, and every one's ID and question. */
struct t_sent {
	uint8_t pkt[4096];
	size_t len;
	unsigned n;
	uint8_t head[8][DNS_HDR_LEN + DNS_MAX_NAME];
};

static struct t_sent t_sent;

static int
t_send(const struct query_origin *o, const uint8_t *pkt, size_t len)
{
	(void)o;
	assert_true(len <= sizeof(t_sent.pkt));
	memcpy(t_sent.pkt, pkt, len);
	t_sent.len = len;
	if (t_sent.n < 8)
		memcpy(t_sent.head[t_sent.n], pkt, MIN(len, sizeof(t_sent.head[0])));
	t_sent.n++;
	return 0;
}

struct t_env {
	struct config cfg;
	struct event_base *base;
	struct router *router;
	struct t_up *up;
	struct cache *cache;
	struct stats stats;
	struct query_engine *qe;
	struct query_origin origin;
};

static void t_env_init_lim(struct t_env *e, const struct cache_limits *lim);

static void
t_env_init(struct t_env *e, uint32_t max_ttl)
{
	struct cache_limits lim = {.max_bytes = 1 << 20, .max_client_ttl = max_ttl};

	t_env_init_lim(e, &lim);
}

/* An engine whose cache has these limits (and cfg.max_ttl their max_client_ttl). */
static void
t_env_init_lim(struct t_env *e, const struct cache_limits *lim)
{
	uint32_t max_ttl = lim->max_client_ttl;

	memset(e, 0, sizeof(*e));
	memset(&t_sent, 0, sizeof(t_sent));
	config_init(&e->cfg);
	e->cfg.max_ttl = max_ttl;
	e->base = event_base_new();
	e->router = router_new();
	e->up = calloc(1, sizeof(*e->up));
	e->cache = cache_new(lim);
	assert_non_null(e->base);
	assert_non_null(e->router);
	assert_non_null(e->up);
	assert_non_null(e->cache);
	e->up->base.ops = &t_up_ops;
	assert_int_equal(router_own(e->router, &e->up->base), 0);
	assert_int_equal(router_bind(e->router, ".", &e->up->base), 0);
	e->qe = query_engine_new(e->base, &e->cfg, e->router, e->cache, &e->stats);
	assert_non_null(e->qe);
	e->up->base.hooks = query_engine_hooks(e->qe); /* as setup does for real upstreams */
	e->origin = (struct query_origin){.send = t_send};
}

static void
t_env_done(struct t_env *e)
{
	query_engine_free(e->qe);
	cache_free(e->cache);
	router_free(e->router);
	event_base_free(e->base);
	config_done(&e->cfg);
}

/* Ask `name` (A, ID id, RD, spelled as given) with 512 bytes of room; returns what
 * query_handle() returns. */
static size_t
t_ask(struct t_env *e, const char *name, uint16_t id, uint8_t *out)
{
	uint8_t pkt[512] = {0};
	int n = dnsmsg_name_from_text(name, pkt + DNS_HDR_LEN, DNS_MAX_NAME);

	assert_true(n > 0);
	dnsmsg_put16(pkt, id);
	pkt[2] = 0x01; /* RD */
	dnsmsg_put16(pkt + 4, 1);
	dnsmsg_put16(pkt + DNS_HDR_LEN + n, DNS_TYPE_A);
	dnsmsg_put16(pkt + DNS_HDR_LEN + n + 2, DNS_CLASS_IN);
	return query_handle(e->qe, pkt, DNS_HDR_LEN + (size_t)n + 4, &e->origin, out, 512);
}

/* Complete the upstream's oldest-held request i with one A record of TTL ttl. */
static void
t_complete(struct t_env *e, unsigned i, uint32_t ttl)
{
	struct upstream_req *req = e->up->reqs[i];
	struct dnsmsg_builder b;
	uint8_t buf[512], a[4] = {192, 0, 2, 7};

	dnsmsg_builder_init(&b, buf, sizeof(buf), 999, &req->q, true, false, false,
			    DNS_RCODE_NOERROR);
	dnsmsg_builder_rr(&b, DNS_SECTION_ANSWER, NULL, 0, DNS_TYPE_A, DNS_CLASS_IN, ttl, a, 4);
	int len = dnsmsg_builder_finish(&b);
	assert_true(len > 0);
	t_up_forget(e->up, req);
	req->done(req, 0, buf, (size_t)len);
}

static uint32_t
t_first_ttl(const uint8_t *pkt, size_t len)
{
	struct dnsmsg_iter it;
	struct dnsmsg_rr rr;

	assert_int_equal(dnsmsg_iter_init(&it, pkt, len), 0);
	assert_int_equal(dnsmsg_iter_next(&it, &rr), 0);
	return rr.ttl;
}

static void
t_invalidate(struct t_env *e, const char *zone)
{
	uint8_t wire[DNS_MAX_NAME];
	int n = dnsmsg_name_from_text(zone, wire, sizeof(wire));

	assert_true(n > 0);
	upstream_invalidate(&e->up->base, wire, (size_t)n);
}

static void
test_invalidate_cached(void **state)
{
	struct t_env e;
	uint8_t out[512];

	(void)state;
	t_env_init(&e, 0);
	assert_int_equal(t_ask(&e, "a.ns1.cluster.local", 1, out), 0);
	assert_int_equal(t_ask(&e, "b.ns2.cluster.local", 2, out), 0);
	t_complete(&e, 1, 300);
	t_complete(&e, 0, 300);
	assert_int_equal(t_sent.n, 2);
	assert_true(t_ask(&e, "a.ns1.cluster.local", 3, out) > 0); /* hits */
	assert_true(t_ask(&e, "b.ns2.cluster.local", 4, out) > 0);
	t_invalidate(&e, "NS1.cluster.local");
	assert_int_equal(t_ask(&e, "a.ns1.cluster.local", 5, out), 0); /* a miss again */
	assert_true(t_ask(&e, "b.ns2.cluster.local", 6, out) > 0);     /* untouched */
	assert_int_equal(e.up->total, 3);
	t_complete(&e, 0, 300);
	t_env_done(&e);
}

static void
test_invalidate_in_flight(void **state)
{
	struct t_env e;
	uint8_t out[512];

	(void)state;
	t_env_init(&e, 0);
	assert_int_equal(t_ask(&e, "x.ns1.cluster.local", 10, out), 0);
	assert_int_equal(e.up->total, 1);
	t_invalidate(&e, "ns1.cluster.local");
	/* the same question after the change does not join the stale request */
	assert_int_equal(t_ask(&e, "X.NS1.cluster.local", 11, out), 0);
	assert_int_equal(e.up->total, 2);
	/* the stale reply lands: its waiter gets it, the cache does not */
	t_complete(&e, 0, 300);
	assert_int_equal(t_sent.n, 1);
	assert_int_equal(dnsmsg_id(t_sent.pkt), 10);
	/* a third query joins the fresh request, which is still in flight */
	assert_int_equal(t_ask(&e, "x.ns1.cluster.local", 12, out), 0);
	assert_int_equal(e.up->total, 2);
	assert_int_equal(e.stats.coalesced, 1);
	t_complete(&e, 0, 300);
	assert_int_equal(t_sent.n, 3); /* IDs 11 and 12 */
	/* the fresh reply was cached */
	assert_true(t_ask(&e, "x.ns1.cluster.local", 13, out) > 0);
	assert_int_equal(dnsmsg_id(out), 13);
	assert_int_equal(e.up->total, 2);
	/* a detached request still pending at shutdown is cancelled, not leaked */
	assert_int_equal(t_ask(&e, "y.ns1.cluster.local", 14, out), 0);
	t_invalidate(&e, "cluster.local");
	assert_int_equal(query_engine_pending(e.qe), 1);
	query_engine_free(e.qe);
	e.qe = NULL;
	assert_int_equal(e.up->cancelled, 1);
	t_env_done(&e);
}

/* Waiters of one miss each get their own ID and spelling. */
static void
test_coalesce_spelling(void **state)
{
	struct t_env e;
	uint8_t out[512], wire[DNS_MAX_NAME];
	const char *names[] = {"www.Example.test", "WWW.EXAMPLE.TEST", "wWw.eXaMpLe.TeSt"};

	(void)state;
	t_env_init(&e, 0);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(t_ask(&e, names[i], (uint16_t)(100 + i), out), 0);
	assert_int_equal(e.up->total, 1);
	assert_int_equal(e.stats.coalesced, 2);
	t_complete(&e, 0, 300);
	assert_int_equal(t_sent.n, 3);
	for (unsigned i = 0; i < 3; i++) {
		const uint8_t *h = NULL;
		for (unsigned j = 0; j < 3; j++)
			if (dnsmsg_id(t_sent.head[j]) == 100 + i)
				h = t_sent.head[j];
		assert_non_null(h);
		int n = dnsmsg_name_from_text(names[i], wire, sizeof(wire));
		assert_memory_equal(h + DNS_HDR_LEN, wire, (size_t)n);
	}
	t_env_done(&e);
}

static void
test_max_ttl(void **state)
{
	struct t_env e;
	uint8_t out[512];
	size_t n;

	(void)state;
	t_env_init(&e, 10);
	assert_int_equal(t_ask(&e, "capped.test", 1, out), 0);
	t_complete(&e, 0, 300);
	assert_int_equal(t_first_ttl(t_sent.pkt, t_sent.len), 10); /* fresh */
	n = t_ask(&e, "capped.test", 2, out);
	assert_true(n > 0);
	assert_int_equal(t_first_ttl(out, n), 10); /* hit */
	/* below the cap: untouched */
	assert_int_equal(t_ask(&e, "short.test", 3, out), 0);
	t_complete(&e, 0, 5);
	assert_int_equal(t_first_ttl(t_sent.pkt, t_sent.len), 5);
	t_env_done(&e);
}

static unsigned t_held;

static void
t_hold(const struct query_origin *o)
{
	(void)o;
	t_held++;
}

static void
t_release(const struct query_origin *o)
{
	(void)o;
	assert_true(t_held > 0);
	t_held--;
}

/*
 * The total-waiter cap is checked before any upstream work: once as many clients wait as the
 * engine holds, a query for a new name is answered SERVFAIL at once without reaching the
 * upstream (no resolve() and cancel() pair, which for a forwarder is a send), and one for a
 * name in flight does not join it; neither holds its origin (a TCP connection) meanwhile.
 */
static void
test_waiter_cap_before_upstream(void **state)
{
	struct t_env e;
	uint8_t out[512];
	char name[64];
	unsigned i, total, held;
	size_t n = 0;

	(void)state;
	t_env_init(&e, 0);
	e.origin.hold = t_hold;
	e.origin.release = t_release;
	t_held = 0;
	/* 500 clients per name (coalesced, under the per-miss cap) until one is refused */
	for (i = 0; i < 200000 && n == 0; i++) {
		snprintf(name, sizeof(name), "n%u.cap.test", i / 500);
		n = t_ask(&e, name, (uint16_t)i, out);
	}
	assert_true(n > 0);
	assert_int_equal(dnsmsg_rcode(out), DNS_RCODE_SERVFAIL);
	assert_true(i > 1000);
	assert_int_equal(query_engine_pending(e.qe), i - 1);
	assert_int_equal(t_held, i - 1);
	total = e.up->total;
	held = t_held;
	assert_int_equal(e.up->cancelled, 0);
	/* over the cap: a new name, and a name in flight */
	assert_true(t_ask(&e, "fresh.cap.test", 1, out) > 0);
	assert_int_equal(dnsmsg_rcode(out), DNS_RCODE_SERVFAIL);
	assert_true(t_ask(&e, "n0.cap.test", 2, out) > 0);
	assert_int_equal(dnsmsg_rcode(out), DNS_RCODE_SERVFAIL);
	assert_int_equal(e.up->total, total);
	assert_int_equal(e.up->cancelled, 0);
	assert_int_equal(t_held, held);
	assert_int_equal(query_engine_pending(e.qe), i - 1);
	/* one miss answered: its 500 waiters leave, and a new name is taken again */
	t_complete(&e, 0, 300);
	assert_int_equal(t_held, held - 500);
	assert_int_equal(t_ask(&e, "fresh.cap.test", 3, out), 0);
	assert_int_equal(e.up->total, total + 1);
	t_env_done(&e);
	assert_int_equal(t_held, 0);
}

/* Every answer is counted for its source: the upstream's while it answers, and the source it
 * was stored from when a hit answers it (the cache keeps it), whatever the upstream is now;
 * kubemasq's own answers count as local. Sizes of queries and answers by transport. */
static void
test_source_counted(void **state)
{
	struct t_env e;
	uint8_t out[512];
	size_t n;

	(void)state;
	t_env_init(&e, 0);
	e.up->base.source = METRICS_SOURCE_CLUSTER;
	assert_int_equal(t_ask(&e, "svc.ns.cluster.local", 1, out), 0); /* 38 bytes */
	t_complete(&e, 0, 300);
	assert_int_equal(e.stats.rcode[METRICS_SOURCE_CLUSTER][DNS_RCODE_NOERROR], 1);
	assert_int_equal(e.stats.latency[METRICS_SOURCE_CLUSTER].count, 1);
	e.up->base.source = METRICS_SOURCE_FORWARD;
	assert_int_equal(t_ask(&e, "www.example.test", 2, out), 0); /* 34 bytes */
	t_complete(&e, 0, 300);
	assert_int_equal(e.stats.rcode[METRICS_SOURCE_FORWARD][DNS_RCODE_NOERROR], 1);
	/* hits: each for the source its answer came from */
	n = t_ask(&e, "svc.ns.cluster.local", 3, out);
	assert_true(n > 0);
	assert_int_equal(e.stats.cache_hits_by[METRICS_SOURCE_CLUSTER * 2], 1);
	assert_int_equal(e.stats.rcode[METRICS_SOURCE_CLUSTER][DNS_RCODE_NOERROR], 2);
	assert_int_equal(e.stats.latency[METRICS_SOURCE_CLUSTER].count, 2);
	assert_true(t_ask(&e, "www.example.test", 4, out) > 0);
	assert_int_equal(e.stats.cache_hits_by[METRICS_SOURCE_FORWARD * 2], 1);
	assert_int_equal(e.stats.rcode[METRICS_SOURCE_FORWARD][DNS_RCODE_NOERROR], 2);
	assert_int_equal(e.stats.rcode[METRICS_SOURCE_LOCAL][DNS_RCODE_NOERROR], 0);
	/* a query with two questions: kubemasq's own FORMERR */
	{
		uint8_t bad[DNS_HDR_LEN] = {0, 9, 0x01, 0, 0, 2};

		assert_true(query_handle(e.qe, bad, sizeof(bad), &e.origin, out, 512) > 0);
	}
	assert_int_equal(e.stats.rcode[METRICS_SOURCE_LOCAL][DNS_RCODE_FORMERR], 1);
	/* 5 queries, 2 of 38 bytes, 2 of 34 and one of 12; 5 answers (the two late ones counted
	 * when sent), each in its bucket, none over 100 bytes */
	{
		uint64_t b[METRICS_SIZE_BUCKETS + 1], sum, tcp;

		metrics_size_fold(&e.stats.request_size[0], b, &sum);
		assert_int_equal(sum, 2 * 38 + 2 * 34 + 12);
		assert_int_equal(b[1], 5);
		metrics_size_fold(&e.stats.response_size[0], b, &sum);
		assert_int_equal(b[1], 5);
		/* the FORMERR: a bare header */
		assert_int_equal(e.stats.response_size[0].exact[DNS_HDR_LEN], 1);
		metrics_size_fold(&e.stats.request_size[1], b, &tcp);
		metrics_size_fold(&e.stats.response_size[1], b, &sum);
		assert_int_equal(tcp + sum, 0);
	}
	assert_int_equal(e.stats.qtype[0][STATS_QTYPE_A], 4);
	t_env_done(&e);
}

/* Store an A answer for `name` (TTL ttl) as if cached `ago_ms` ago, on the engine's clock. */
static void
t_cached(struct t_env *e, const char *name, uint32_t ttl, msec_t ago_ms)
{
	struct dnsmsg_builder b;
	uint8_t wire[DNS_MAX_NAME], lower[DNS_MAX_NAME], buf[512], a[4] = {192, 0, 2, 1};
	int n = dnsmsg_name_from_text(name, wire, sizeof(wire));

	assert_true(n > 0);
	dnsmsg_name_lower(lower, wire, (size_t)n);
	struct dnsmsg_question q = {.qname = lower,
				    .qname_len = (uint16_t)n,
				    .qtype = DNS_TYPE_A,
				    .qclass = DNS_CLASS_IN};
	struct cache_key k = {.qname = lower,
			      .qname_len = (uint16_t)n,
			      .qtype = DNS_TYPE_A,
			      .qclass = DNS_CLASS_IN};
	dnsmsg_builder_init(&b, buf, sizeof(buf), 1, &q, true, false, false, DNS_RCODE_NOERROR);
	dnsmsg_builder_rr(&b, DNS_SECTION_ANSWER, NULL, 0, DNS_TYPE_A, DNS_CLASS_IN, ttl, a, 4);
	int len = dnsmsg_builder_finish(&b);
	assert_true(len > 0);
	assert_int_equal(cache_put(e->cache, &k, buf, (size_t)len, clock_now_ms() - ago_ms), 0);
}

/* Immediate serve-stale: the stale answer at once, one refresh for any number of queries,
 * and the refresh's answer replaces the entry. */
static void
test_stale_immediate(void **state)
{
	(void)state;
	struct cache_limits lim = {
		.max_bytes = 1 << 20, .stale = true, .stale_max = 3600, .stale_ttl = 30};
	struct t_env e;
	uint8_t out[512];
	size_t n;

	t_env_init_lim(&e, &lim);
	e.cfg.use_stale_cache = true;
	t_cached(&e, "old.test", 5, 10000);
	n = t_ask(&e, "old.test", 1, out);
	assert_true(n > 0);
	assert_int_equal(t_first_ttl(out, n), 30);
	assert_int_equal(e.up->total, 1); /* the refresh */
	assert_true(t_ask(&e, "OLD.test", 2, out) > 0);
	assert_int_equal(e.up->total, 1); /* coalesced with it */
	t_complete(&e, 0, 300);
	assert_int_equal(t_sent.n, 0); /* nobody waited on it */
	n = t_ask(&e, "old.test", 3, out);
	assert_true(n > 0);
	assert_int_equal(t_first_ttl(out, n), 300);
	assert_int_equal(e.up->total, 1);
	assert_int_equal(query_engine_pending(e.qe), 0);
	t_env_done(&e);
}

/* Verify mode: the query waits; the timer gives it the stale answer, and so does a failure. */
static void
test_stale_verify(void **state)
{
	(void)state;
	struct cache_limits lim = {
		.max_bytes = 1 << 20, .stale = true, .stale_max = 3600, .stale_ttl = 30};
	struct t_env e;
	uint8_t out[512];

	t_env_init_lim(&e, &lim);
	e.cfg.use_stale_cache = true;
	e.cfg.stale_verify = true;
	e.cfg.stale_answer_timeout = 20;
	t_cached(&e, "old.test", 5, 10000);
	t_cached(&e, "fail.test", 5, 10000);
	assert_int_equal(t_ask(&e, "old.test", 1, out), 0);
	assert_int_equal(e.up->total, 1);
	assert_int_equal(t_sent.n, 0);
	while (t_sent.n == 0) /* the 20 ms timer: the loop returns once it has fired */
		assert_int_equal(event_base_loop(e.base, EVLOOP_ONCE), 0);
	assert_int_equal(t_sent.n, 1);
	assert_int_equal(dnsmsg_rcode(t_sent.pkt), DNS_RCODE_NOERROR);
	assert_int_equal(t_first_ttl(t_sent.pkt, t_sent.len), 30);
	assert_int_equal(query_engine_pending(e.qe), 0);
	t_complete(&e, 0, 300); /* late: refreshes the entry only */
	assert_int_equal(t_sent.n, 1);
	/* a failed upstream before the timer: stale at once */
	assert_int_equal(t_ask(&e, "fail.test", 2, out), 0);
	struct upstream_req *req = e.up->reqs[0];
	t_up_forget(e.up, req);
	req->done(req, -ETIMEDOUT, NULL, 0);
	assert_int_equal(t_sent.n, 2);
	assert_int_equal(dnsmsg_rcode(t_sent.pkt), DNS_RCODE_NOERROR);
	assert_int_equal(dnsmsg_id(t_sent.pkt), 2);
	assert_int_equal(t_first_ttl(t_sent.pkt, t_sent.len), 30);
	t_env_done(&e);
}

/* Prefetch: a hit in the last tenth starts one refresh, counted, shared by later hits. */
static void
test_prefetch(void **state)
{
	(void)state;
	struct cache_limits lim = {.max_bytes = 1 << 20, .refresh = true};
	struct t_env e;
	uint8_t out[512];
	size_t n;

	t_env_init_lim(&e, &lim);
	e.cfg.prefetch = true;
	t_cached(&e, "warm.test", 100, 50000);
	t_cached(&e, "hot.test", 10, 9500);
	assert_true(t_ask(&e, "warm.test", 1, out) > 0);
	assert_int_equal(e.up->total, 0);
	n = t_ask(&e, "hot.test", 2, out);
	assert_true(n > 0);
	assert_true(t_first_ttl(out, n) <= 1);
	assert_int_equal(e.up->total, 1);
	assert_true(t_ask(&e, "hot.test", 3, out) > 0);
	assert_int_equal(e.up->total, 1);
	assert_int_equal(e.stats.prefetches, 1);
	t_complete(&e, 0, 10);
	n = t_ask(&e, "hot.test", 4, out);
	assert_true(n > 0);
	assert_int_equal(t_first_ttl(out, n), 10);
	assert_int_equal(t_sent.n, 0);
	t_env_done(&e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_invalidate_cached),
		cmocka_unit_test(test_invalidate_in_flight),
		cmocka_unit_test(test_coalesce_spelling),
		cmocka_unit_test(test_max_ttl),
		cmocka_unit_test(test_waiter_cap_before_upstream),
		cmocka_unit_test(test_source_counted),
		cmocka_unit_test(test_stale_immediate),
		cmocka_unit_test(test_stale_verify),
		cmocka_unit_test(test_prefetch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
