/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_cache.c - unit tests of the answer cache: hits (ID, spelling, TTL aging), expiry,
 * TTL clamps, RFC 2308 negative caching, what is never cached, LRU and expired-first
 * eviction, the byte budget to the byte (the layout formula of cache.c), invalidation (by
 * walking, and by owner group in watched zones, checked against a plain model under random
 * puts, drops, moves and evictions), clearing, the client TTL cap (--max-ttl), and printed
 * figures: bytes per entry, hit throughput, invalidation cost at a million entries. Time is the
 * `now` argument (a fake clock).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kubemasq/dnsmsg.h"
#include "lib/cache.h"

/* The layout formula documented at the top of cache.c. */
#define T_REC_HDR 28
#define T_CHUNK_HDR 4
#define T_CHUNK 65536 /* chunk target for budgets of 16 MiB and more */
#define T_MIN_BUCKETS 64
#define T_MIN_IDS 8
#define T_MIN_OWNERS 64		     /* the owner table once a zone is watched */
#define T_ARENA (2u << 20)	     /* budgets from 256 MiB: chunks in 2 MiB arenas of 32 */
#define T_MALLOC_BUDGET (128u << 20) /* 64 KiB chunks, each its own malloc */

#define T0 1000000 /* an arbitrary start of the fake clock, in ms */

struct t_name {
	uint8_t wire[DNS_MAX_NAME];
	uint16_t len;
	uint8_t lower[DNS_MAX_NAME];
};

static void
t_name(struct t_name *n, const char *text)
{
	int r = dnsmsg_name_from_text(text, n->wire, sizeof(n->wire));

	assert_true(r > 0);
	n->len = (uint16_t)r;
	dnsmsg_name_lower(n->lower, n->wire, n->len);
}

static struct cache_key
t_key(const struct t_name *n, uint16_t qtype, uint8_t flags)
{
	return (struct cache_key){.qname = n->lower,
				  .qname_len = n->len,
				  .qtype = qtype,
				  .qclass = DNS_CLASS_IN,
				  .flags = flags};
}

/* What a test reply holds. */
struct t_reply {
	const char *qname;
	uint16_t qtype;
	unsigned rcode;
	unsigned n_a; /* A records in the answer */
	uint32_t a_ttl;
	uint8_t a_last; /* last octet of the first address */
	bool soa;
	uint32_t soa_ttl, soa_min;
	bool ns; /* an NS in authority and an A in additional */
	uint32_t ns_ttl;
	bool tc;
};

static int
t_build(uint8_t *buf, size_t cap, const struct t_reply *t)
{
	struct t_name n;
	struct dnsmsg_builder b;

	t_name(&n, t->qname);
	struct dnsmsg_question q = {.qname = n.wire,
				    .qname_len = n.len,
				    .qtype = t->qtype ? t->qtype : DNS_TYPE_A,
				    .qclass = DNS_CLASS_IN};
	dnsmsg_builder_init(&b, buf, cap, 42, &q, true, false, false, t->rcode);
	for (unsigned i = 0; i < t->n_a; i++) {
		uint8_t a[4] = {10, 0, (uint8_t)(i >> 8), (uint8_t)(t->a_last + i)};
		dnsmsg_builder_rr(&b, DNS_SECTION_ANSWER, NULL, 0, DNS_TYPE_A, DNS_CLASS_IN,
				  t->a_ttl, a, 4);
	}
	if (t->soa) {
		uint8_t soa[22] = {0, 0};
		dnsmsg_put32(soa + 2 + 16, t->soa_min);
		dnsmsg_builder_rr(&b, DNS_SECTION_AUTHORITY, (const uint8_t *)"\0", 1, DNS_TYPE_SOA,
				  DNS_CLASS_IN, t->soa_ttl, soa, sizeof(soa));
	}
	if (t->ns) {
		static const uint8_t ns[] = "\2ns\0";
		uint8_t a[4] = {192, 0, 2, 1};
		dnsmsg_builder_rr(&b, DNS_SECTION_AUTHORITY, (const uint8_t *)"\0", 1, DNS_TYPE_NS,
				  DNS_CLASS_IN, t->ns_ttl, ns, 4);
		dnsmsg_builder_rr(&b, DNS_SECTION_ADDITIONAL, ns, 4, DNS_TYPE_A, DNS_CLASS_IN,
				  t->ns_ttl, a, 4);
	}
	int len = dnsmsg_builder_finish(&b);
	assert_true(len > 0);
	if (t->tc)
		buf[2] |= 0x02;
	return len;
}

static struct cache_limits t_lim = {.max_bytes = 1 << 30};

static struct cache *
t_cache(const struct cache_limits *lim)
{
	struct cache *c = cache_new(lim ? lim : &t_lim);

	assert_non_null(c);
	return c;
}

/* Build and store a reply for t->qname (type from t) with flags; returns cache_put()'s code. */
static int
t_put(struct cache *c, const struct t_reply *t, uint8_t flags, msec_t now)
{
	uint8_t buf[4096];
	struct t_name n;
	int len = t_build(buf, sizeof(buf), t);

	t_name(&n, t->qname);
	struct cache_key k = t_key(&n, t->qtype ? t->qtype : DNS_TYPE_A, flags);
	return cache_put(c, &k, buf, (size_t)len, now);
}

static int
t_get(struct cache *c, const char *qname, uint16_t qtype, uint8_t flags, msec_t now, uint8_t *out,
      size_t cap)
{
	struct t_name n;

	t_name(&n, qname);
	struct cache_key k = t_key(&n, qtype, flags);
	return cache_get(c, &k, now, 7, n.wire, out, cap);
}

static bool
t_hit(struct cache *c, const char *qname, msec_t now)
{
	uint8_t out[4096];

	return t_get(c, qname, DNS_TYPE_A, 0, now, out, sizeof(out)) > 0;
}

/* Every TTL of a reply, in order. */
static unsigned
t_ttls(const uint8_t *pkt, size_t len, uint32_t *ttls, unsigned max)
{
	struct dnsmsg_iter it;
	struct dnsmsg_rr rr;
	unsigned n = 0;

	assert_int_equal(dnsmsg_iter_init(&it, pkt, len), 0);
	while (dnsmsg_iter_next(&it, &rr) == 0 && n < max)
		ttls[n++] = rr.ttl;
	return n;
}

static void
t_assert_ttls(const uint8_t *pkt, int len, unsigned want_n, uint32_t want)
{
	uint32_t ttls[16];

	assert_true(len > 0);
	assert_int_equal(t_ttls(pkt, (size_t)len, ttls, 16), want_n);
	for (unsigned i = 0; i < want_n; i++)
		assert_int_equal(ttls[i], want);
}

static struct cache_stats
t_stats(const struct cache *c)
{
	struct cache_stats s;

	cache_get_stats(c, &s);
	return s;
}

/* ---- hits ------------------------------------------------------------------------------ */

static void
test_hit_id_and_spelling(void **state)
{
	(void)state;
	struct cache *c = t_cache(NULL);
	struct t_reply t = {.qname = "WWW.Example.COM", .n_a = 2, .a_ttl = 300};
	uint8_t reply[512], out[512];
	int len = t_build(reply, sizeof(reply), &t);

	assert_int_equal(t_put(c, &t, 0, T0), 0);
	int r = t_get(c, "wWw.eXample.com", DNS_TYPE_A, 0, T0, out, sizeof(out));
	assert_int_equal(r, len);
	assert_int_equal(dnsmsg_id(out), 7);
	struct t_name n;
	t_name(&n, "wWw.eXample.com");
	assert_memory_equal(out + DNS_HDR_LEN, n.wire, n.len);
	/* everything else is the reply as it came */
	assert_memory_equal(out + 2, reply + 2, DNS_HDR_LEN - 2);
	assert_memory_equal(out + DNS_HDR_LEN + n.len, reply + DNS_HDR_LEN + n.len,
			    (size_t)len - DNS_HDR_LEN - n.len);
	struct cache_stats s = t_stats(c);
	assert_int_equal(s.hits, 1);
	assert_int_equal(s.entries, 1);
	assert_int_equal(s.insertions, 1);
	assert_false(t_hit(c, "other.example.com", T0));
	assert_int_equal(t_stats(c).misses, 1);
	cache_free(c);
}

static void
test_ttl_aging(void **state)
{
	(void)state;
	struct cache *c = t_cache(NULL);
	struct t_reply t = {
		.qname = "example.com", .n_a = 2, .a_ttl = 300, .ns = true, .ns_ttl = 300};
	uint8_t out[512];

	assert_int_equal(t_put(c, &t, 0, T0), 0);
	t_assert_ttls(out, t_get(c, "example.com", DNS_TYPE_A, 0, T0 + 10000, out, sizeof(out)), 4,
		      290);
	/* 10.999 s is still 10 whole seconds */
	t_assert_ttls(out, t_get(c, "example.com", DNS_TYPE_A, 0, T0 + 10999, out, sizeof(out)), 4,
		      290);
	/* longer TTLs in authority/additional are capped to the entry's remaining life */
	t.ns_ttl = 86400;
	assert_int_equal(t_put(c, &t, 0, T0), 0);
	t_assert_ttls(out, t_get(c, "example.com", DNS_TYPE_A, 0, T0 + 100000, out, sizeof(out)), 4,
		      200);
	cache_free(c);
}

static void
test_expiry_exact(void **state)
{
	(void)state;
	struct cache *c = t_cache(NULL);
	struct t_reply t = {.qname = "example.com", .n_a = 1, .a_ttl = 300};
	uint8_t out[512];

	assert_int_equal(t_put(c, &t, 0, T0 + 500), 0);
	t_assert_ttls(out,
		      t_get(c, "example.com", DNS_TYPE_A, 0, T0 + 500 + 299999, out, sizeof(out)),
		      1, 1);
	assert_int_equal(
		t_get(c, "example.com", DNS_TYPE_A, 0, T0 + 500 + 300000, out, sizeof(out)),
		-ENOENT);
	struct cache_stats s = t_stats(c);
	assert_int_equal(s.expired, 1);
	assert_int_equal(s.entries, 0);
	assert_int_equal(s.misses, 1);
	cache_free(c);
}

/* cache_put_renewable: the reply of a source that reports its changes (the kube store). */
static int
t_put_renewable(struct cache *c, const struct t_reply *t, msec_t now)
{
	uint8_t buf[4096];
	struct t_name n;
	int len = t_build(buf, sizeof(buf), t);

	t_name(&n, t->qname);
	struct cache_key k = t_key(&n, t->qtype ? t->qtype : DNS_TYPE_A, 0);
	return cache_put_renewable(c, &k, buf, (size_t)len, now);
}

static void
test_renewal(void **state)
{
	(void)state;
	struct cache *c = t_cache(NULL);
	struct t_reply kube = {.qname = "web.default.svc.cluster.local", .n_a = 1, .a_ttl = 5};
	struct t_reply plain = {.qname = "example.com", .n_a = 1, .a_ttl = 5};
	uint8_t out[512];

	cache_note_change(c, T0);
	assert_int_equal(t_put_renewable(c, &kube, T0 + 1), 0);
	assert_int_equal(t_put(c, &plain, 0, T0 + 1), 0);
	/* expired, nothing changed since: renewed, TTL counting down from 5 again */
	t_assert_ttls(out,
		      t_get(c, "web.default.svc.cluster.local", DNS_TYPE_A, 0, T0 + 5001, out,
			    sizeof(out)),
		      1, 5);
	t_assert_ttls(out,
		      t_get(c, "web.default.svc.cluster.local", DNS_TYPE_A, 0, T0 + 7001, out,
			    sizeof(out)),
		      1, 3);
	/* an ordinary entry expires as ever */
	assert_int_equal(t_get(c, "example.com", DNS_TYPE_A, 0, T0 + 5001, out, sizeof(out)),
			 -ENOENT);
	struct cache_stats s = t_stats(c);
	assert_int_equal(s.renewed, 1);
	assert_int_equal(s.expired, 1);
	assert_int_equal(s.hits, 2);
	/* a change after the renewal (stamped T0 + 5001): unexpired, it is still served... */
	cache_note_change(c, T0 + 6000);
	t_assert_ttls(out,
		      t_get(c, "web.default.svc.cluster.local", DNS_TYPE_A, 0, T0 + 9001, out,
			    sizeof(out)),
		      1, 1);
	/* ...but once expired it goes: the source may answer differently now */
	assert_int_equal(t_get(c, "web.default.svc.cluster.local", DNS_TYPE_A, 0, T0 + 10001, out,
			       sizeof(out)),
			 -ENOENT);
	s = t_stats(c);
	assert_int_equal(s.renewed, 1);
	assert_int_equal(s.expired, 2);
	assert_int_equal(s.entries, 0);
	/* a change in the very millisecond of the store counts as later */
	assert_int_equal(t_put_renewable(c, &kube, T0 + 20000), 0);
	cache_note_change(c, T0 + 20000);
	assert_int_equal(t_get(c, "web.default.svc.cluster.local", DNS_TYPE_A, 0, T0 + 25000, out,
			       sizeof(out)),
			 -ENOENT);
	/* a change noted with an older clock reading does not move the mark back */
	assert_int_equal(t_put_renewable(c, &kube, T0 + 30000), 0);
	cache_note_change(c, T0 + 100);
	t_assert_ttls(out,
		      t_get(c, "web.default.svc.cluster.local", DNS_TYPE_A, 0, T0 + 35000, out,
			    sizeof(out)),
		      1, 5);
	/* negative answers of such a source renew as well */
	struct t_reply nx = {.qname = "nope.default.svc.cluster.local",
			     .rcode = DNS_RCODE_NXDOMAIN,
			     .soa = true,
			     .soa_ttl = 5,
			     .soa_min = 5};
	assert_int_equal(t_put_renewable(c, &nx, T0 + 40000), 0);
	assert_true(t_get(c, "nope.default.svc.cluster.local", DNS_TYPE_A, 0, T0 + 45000, out,
			  sizeof(out)) > 0);
	assert_int_equal(t_stats(c).renewed, 3);
	cache_free(c);
}

static void
test_ttl_clamps(void **state)
{
	(void)state;
	struct cache_limits lim = {.max_bytes = 1 << 30, .min_ttl = 60, .max_ttl = 100};
	struct cache *c = t_cache(&lim);
	struct t_reply t = {.qname = "short.test", .n_a = 1, .a_ttl = 10};
	uint8_t out[512];

	/* min: lives 60 s and, as in dnsmasq, shows clients 60 counting down, not its own 10 */
	assert_int_equal(t_put(c, &t, 0, T0), 0);
	t_assert_ttls(out, t_get(c, "short.test", DNS_TYPE_A, 0, T0, out, sizeof(out)), 1, 60);
	t_assert_ttls(out, t_get(c, "short.test", DNS_TYPE_A, 0, T0 + 5000, out, sizeof(out)), 1,
		      55);
	t_assert_ttls(out, t_get(c, "short.test", DNS_TYPE_A, 0, T0 + 59999, out, sizeof(out)), 1,
		      1);
	assert_false(t_hit(c, "short.test", T0 + 60000));
	/* max: a TTL of 300 is shown and kept as 100 */
	t.qname = "long.test";
	t.a_ttl = 300;
	assert_int_equal(t_put(c, &t, 0, T0), 0);
	t_assert_ttls(out, t_get(c, "long.test", DNS_TYPE_A, 0, T0, out, sizeof(out)), 1, 100);
	t_assert_ttls(out, t_get(c, "long.test", DNS_TYPE_A, 0, T0 + 99999, out, sizeof(out)), 1,
		      1);
	assert_false(t_hit(c, "long.test", T0 + 100000));
	/* TTL 0 raised by min-cache-ttl is cached */
	t.qname = "zero.test";
	t.a_ttl = 0;
	assert_int_equal(t_put(c, &t, 0, T0), 0);
	assert_true(t_hit(c, "zero.test", T0 + 59000));
	cache_free(c);
}

/* ---- negative caching ------------------------------------------------------------------ */

/* Store a negative answer and return how many seconds it lives (probing the fake clock). */
static int
t_neg_life(struct cache *c, struct t_reply *t)
{
	int r = t_put(c, t, 0, T0);

	if (r < 0)
		return r;
	for (int s = 0; s < 100000; s++)
		if (!t_hit(c, t->qname, T0 + (msec_t)s * 1000))
			return s;
	return -1;
}

static void
test_negative_soa(void **state)
{
	(void)state;
	struct cache_limits lim = {.max_bytes = 1 << 30, .max_neg_ttl = 3600};
	struct cache *c = t_cache(&lim);
	struct t_reply nx = {.qname = "nx.test",
			     .rcode = DNS_RCODE_NXDOMAIN,
			     .soa = true,
			     .soa_ttl = 100,
			     .soa_min = 50};
	uint8_t out[512];

	assert_int_equal(t_neg_life(c, &nx), 50);
	nx.soa_ttl = 30;
	nx.soa_min = 900;
	assert_int_equal(t_neg_life(c, &nx), 30);
	/* NODATA: NOERROR with an empty answer */
	struct t_reply nodata = {
		.qname = "nodata.test", .soa = true, .soa_ttl = 100, .soa_min = 40};
	assert_int_equal(t_neg_life(c, &nodata), 40);
	assert_int_equal(t_put(c, &nodata, 0, T0), 0);
	assert_int_equal(t_stats(c).negative_entries, 1);
	/* the SOA's TTL counts down with the entry */
	t_assert_ttls(out, t_get(c, "nodata.test", DNS_TYPE_A, 0, T0 + 15000, out, sizeof(out)), 1,
		      25);
	/* max-neg-ttl caps */
	nx.soa_ttl = nx.soa_min = 7200;
	assert_int_equal(t_neg_life(c, &nx), 3600);
	cache_free(c);
}

static void
test_negative_no_soa(void **state)
{
	(void)state;
	struct cache_limits lim = {.max_bytes = 1 << 30};
	struct cache *c = t_cache(&lim);
	struct t_reply nx = {.qname = "nx.test", .rcode = DNS_RCODE_NXDOMAIN};
	struct t_reply nodata = {.qname = "nodata.test"};

	assert_int_equal(t_put(c, &nx, 0, T0), -ENOENT);
	assert_int_equal(t_put(c, &nodata, 0, T0), -ENOENT);
	cache_free(c);
	lim.neg_ttl = 40;
	c = t_cache(&lim);
	assert_int_equal(t_neg_life(c, &nx), 40);
	assert_int_equal(t_neg_life(c, &nodata), 40);
	cache_free(c);
	lim.max_neg_ttl = 20;
	c = t_cache(&lim);
	assert_int_equal(t_neg_life(c, &nx), 20);
	cache_free(c);
}

static void
test_no_negcache(void **state)
{
	(void)state;
	struct cache_limits lim = {.max_bytes = 1 << 30, .no_negcache = true, .neg_ttl = 40};
	struct cache *c = t_cache(&lim);
	struct t_reply nx = {.qname = "nx.test",
			     .rcode = DNS_RCODE_NXDOMAIN,
			     .soa = true,
			     .soa_ttl = 100,
			     .soa_min = 100};
	struct t_reply pos = {.qname = "pos.test", .n_a = 1, .a_ttl = 100};

	assert_int_equal(t_put(c, &nx, 0, T0), -ENOENT);
	nx.rcode = DNS_RCODE_NOERROR;
	assert_int_equal(t_put(c, &nx, 0, T0), -ENOENT);
	assert_int_equal(t_put(c, &pos, 0, T0), 0);
	assert_int_equal(t_stats(c).entries, 1);
	cache_free(c);
}

static void
test_not_cached(void **state)
{
	(void)state;
	struct cache_limits lim = {.max_bytes = 1 << 30, .neg_ttl = 60};
	struct cache *c = t_cache(&lim);
	const unsigned rcodes[] = {
		DNS_RCODE_SERVFAIL, DNS_RCODE_REFUSED, DNS_RCODE_FORMERR, DNS_RCODE_NOTIMP, 6, 9};

	for (size_t i = 0; i < sizeof(rcodes) / sizeof(rcodes[0]); i++) {
		struct t_reply t = {.qname = "x.test",
				    .rcode = rcodes[i],
				    .n_a = 1,
				    .a_ttl = 60,
				    .soa = true,
				    .soa_ttl = 60,
				    .soa_min = 60};
		assert_int_equal(t_put(c, &t, 0, T0), -ENOENT);
	}
	struct t_reply tc = {.qname = "x.test", .n_a = 1, .a_ttl = 60, .tc = true};
	assert_int_equal(t_put(c, &tc, 0, T0), -ENOENT);
	struct t_reply zero = {.qname = "x.test", .n_a = 2, .a_ttl = 0};
	assert_int_equal(t_put(c, &zero, 0, T0), -ENOENT);
	struct t_reply negzero = {.qname = "x.test",
				  .rcode = DNS_RCODE_NXDOMAIN,
				  .soa = true,
				  .soa_ttl = 0,
				  .soa_min = 60};
	assert_int_equal(t_put(c, &negzero, 0, T0), -ENOENT);
	assert_int_equal(t_stats(c).entries, 0);
	assert_int_equal(t_stats(c).insertions, 0);
	cache_free(c);
}

/* The batch path (cache_key_hash, cache_prefetch, cache_get_hashed) answers as cache_get does,
 * across a table that doubles several times; prefetching any hash is harmless. */
static void
test_hashed_lookup(void **state)
{
	(void)state;
	struct cache *c = t_cache(NULL);
	struct t_reply t = {.n_a = 1, .a_ttl = 300};
	uint8_t out1[512], out2[512];
	char name[64];
	enum { N = 5000 };

	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "h%d.Batch.test", i);
		t.qname = name;
		assert_int_equal(t_put(c, &t, 0, T0), 0);
	}
	for (int i = 0; i < N + 100; i++) { /* the last 100 are misses */
		struct t_name n;
		snprintf(name, sizeof(name), "H%d.batch.TEST", i);
		t_name(&n, name);
		struct cache_key k = t_key(&n, DNS_TYPE_A, 0);
		uint32_t hash = cache_key_hash(c, &k);
		cache_prefetch(c, hash, 0);
		cache_prefetch(c, hash, 1);
		cache_prefetch(c, (uint32_t)i * 2654435761u, 1);
		int r1 = cache_get_hashed(c, &k, hash, T0 + 5000, 9, n.wire, out1, sizeof(out1));
		int r2 = cache_get(c, &k, T0 + 5000, 9, n.wire, out2, sizeof(out2));
		assert_int_equal(r1, i < N ? r2 : -ENOENT);
		assert_int_equal(r2, i < N ? r2 : -ENOENT);
		if (i < N) {
			assert_true(r1 > 0);
			assert_memory_equal(out1, out2, (size_t)r1);
			t_assert_ttls(out1, r1, 1, 295);
		}
	}
	/* a key cache_get refuses hashes to 0 and misses either way */
	struct cache_key bad = {.qname = NULL};
	assert_int_equal(cache_key_hash(c, &bad), 0);
	assert_int_equal(cache_get_hashed(c, &bad, 0, T0, 1, NULL, out1, sizeof(out1)), -ENOENT);
	assert_int_equal(t_stats(c).hits, 2 * N);
	assert_int_equal(t_stats(c).misses, 2 * 100 + 1);
	cache_free(c);
}

/* ---- eviction -------------------------------------------------------------------------- */

static void
test_lru_order(void **state)
{
	(void)state;
	struct cache_limits lim = {.max_bytes = 1 << 30, .max_entries = 3};
	struct cache *c = t_cache(&lim);
	struct t_reply t = {.n_a = 1, .a_ttl = 300};
	const char *names[] = {"a.test", "b.test", "c.test", "d.test", "e.test"};

	for (int i = 0; i < 3; i++) {
		t.qname = names[i];
		assert_int_equal(t_put(c, &t, 0, T0), 0);
	}
	assert_true(t_hit(c, "a.test", T0)); /* a is now the most recent: b is the LRU */
	t.qname = "d.test";
	assert_int_equal(t_put(c, &t, 0, T0), 0);
	assert_int_equal(t_stats(c).evictions, 1);
	assert_int_equal(t_stats(c).entries, 3);
	assert_false(t_hit(c, "b.test", T0));
	assert_true(t_hit(c, "c.test", T0)); /* order now: c d a -> a is the LRU */
	t.qname = "e.test";
	assert_int_equal(t_put(c, &t, 0, T0), 0);
	assert_false(t_hit(c, "a.test", T0));
	assert_true(t_hit(c, "c.test", T0));
	assert_true(t_hit(c, "d.test", T0));
	assert_true(t_hit(c, "e.test", T0));
	assert_int_equal(t_stats(c).evictions, 2);
	cache_free(c);
}

/* Every entry hit: eviction still takes one entry after at most 8 second chances (O(1)), and
 * those 8 oldest, moved to the head, survive the next evictions too. */
static void
test_second_chance_bounded(void **state)
{
	(void)state;
	struct cache_limits lim = {.max_bytes = 1 << 30, .max_entries = 20};
	struct cache *c = t_cache(&lim);
	struct t_reply t = {.n_a = 1, .a_ttl = 300};
	char name[32];

	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "n%d.test", i);
		t.qname = name;
		assert_int_equal(t_put(c, &t, 0, T0), 0);
	}
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "n%d.test", i);
		assert_true(t_hit(c, name, T0));
	}
	t.qname = "new.test";
	assert_int_equal(t_put(c, &t, 0, T0), 0);
	assert_int_equal(t_stats(c).evictions, 1);
	assert_int_equal(t_stats(c).entries, 20);
	assert_false(t_hit(c, "n8.test", T0)); /* n0..n7 had their second chance */
	for (int i = 0; i < 8; i++) {
		snprintf(name, sizeof(name), "n%d.test", i);
		assert_true(t_hit(c, name, T0));
	}
	cache_free(c);
}

static void
test_expired_first(void **state)
{
	(void)state;
	struct cache_limits lim = {.max_bytes = 1 << 30, .max_entries = 2};
	struct cache *c = t_cache(&lim);
	struct t_reply lru = {.qname = "old.test", .n_a = 1, .a_ttl = 300};
	struct t_reply shortlived = {.qname = "short.test", .n_a = 1, .a_ttl = 10};
	struct t_reply t = {.qname = "new.test", .n_a = 1, .a_ttl = 300};

	assert_int_equal(t_put(c, &lru, 0, T0), 0);
	assert_int_equal(t_put(c, &shortlived, 0, T0), 0); /* most recent, expires first */
	assert_int_equal(t_put(c, &t, 0, T0 + 20000), 0);
	struct cache_stats s = t_stats(c);
	assert_int_equal(s.expired, 1);
	assert_int_equal(s.evictions, 0);
	assert_true(t_hit(c, "old.test", T0 + 20000));
	assert_true(t_hit(c, "new.test", T0 + 20000));
	cache_free(c);
}

/* cache_get_stale() for qname's A entry at `now`. */
static int
t_get_stale(struct cache *c, const char *qname, msec_t now, uint8_t *out, size_t cap)
{
	struct t_name n;

	t_name(&n, qname);
	struct cache_key k = t_key(&n, DNS_TYPE_A, 0);
	return cache_get_stale(c, &k, now, 9, n.wire, out, cap);
}

/* --use-stale-cache: an expired entry is kept and reported (-ESTALE), served with the stale
 * TTL until its limit, then dropped; a fresh one is not stale; renewable ones never are. */
static void
test_stale(void **state)
{
	(void)state;
	struct cache_limits lim = {
		.max_bytes = 1 << 30, .stale = true, .stale_max = 60, .stale_ttl = 30};
	struct cache *c = t_cache(&lim);
	struct t_reply t = {
		.qname = "example.com", .n_a = 2, .a_ttl = 10, .ns = true, .ns_ttl = 300};
	struct t_reply kube = {.qname = "web.default.svc.cluster.local", .n_a = 1, .a_ttl = 5};
	uint8_t out[512];

	assert_int_equal(t_put(c, &t, 0, T0), 0);
	assert_int_equal(t_get_stale(c, "example.com", T0 + 9999, out, sizeof(out)), -ENOENT);
	assert_int_equal(t_get(c, "example.com", DNS_TYPE_A, 0, T0 + 10000, out, sizeof(out)),
			 -ESTALE);
	int r = t_get_stale(c, "EXAMPLE.com", T0 + 10000, out, sizeof(out));
	t_assert_ttls(out, r, 4, 30);
	assert_int_equal(dnsmsg_id(out), 9);
	assert_memory_equal(out + DNS_HDR_LEN, "EXAMPLEcom", 12); /* client's spelling */
	assert_int_equal(t_get_stale(c, "example.com", T0 + 10000, out, 10), -ENOSPC);
	/* still servable one second before the limit (10 s + 60 s), gone at it */
	assert_true(t_get_stale(c, "example.com", T0 + 69999, out, sizeof(out)) > 0);
	assert_int_equal(t_get(c, "example.com", DNS_TYPE_A, 0, T0 + 69999, out, sizeof(out)),
			 -ESTALE);
	assert_int_equal(t_get_stale(c, "example.com", T0 + 70000, out, sizeof(out)), -ENOENT);
	assert_int_equal(t_get(c, "example.com", DNS_TYPE_A, 0, T0 + 70000, out, sizeof(out)),
			 -ENOENT);
	struct cache_stats s = t_stats(c);
	assert_int_equal(s.stale_served, 2);
	assert_int_equal(s.expired, 1);
	assert_int_equal(s.entries, 0);
	assert_int_equal(s.misses, 3);
	/* a refresh replaces the entry: fresh again */
	assert_int_equal(t_put(c, &t, 0, T0 + 100000), 0);
	assert_int_equal(t_get(c, "example.com", DNS_TYPE_A, 0, T0 + 110000, out, sizeof(out)),
			 -ESTALE);
	assert_int_equal(t_put(c, &t, 0, T0 + 110500), 0);
	t_assert_ttls(out, t_get(c, "example.com", DNS_TYPE_A, 0, T0 + 111000, out, sizeof(out)), 4,
		      10);
	/* the kube store's answers are renewed or dropped, never served stale */
	cache_note_change(c, T0 + 200000);
	assert_int_equal(t_put_renewable(c, &kube, T0 + 199000), 0);
	assert_int_equal(
		t_get_stale(c, "web.default.svc.cluster.local", T0 + 205000, out, sizeof(out)),
		-ENOENT);
	assert_int_equal(t_get(c, "web.default.svc.cluster.local", DNS_TYPE_A, 0, T0 + 205000, out,
			       sizeof(out)),
			 -ENOENT);
	cache_free(c);

	/* stale_max 0: no limit; --max-ttl caps the stale TTL too */
	lim.stale_max = 0;
	lim.max_client_ttl = 20;
	c = t_cache(&lim);
	assert_int_equal(t_put(c, &t, 0, T0), 0);
	t_assert_ttls(out, t_get_stale(c, "example.com", T0 + 1000000000, out, sizeof(out)), 4, 20);
	cache_free(c);

	/* without the option an expired entry goes, and nothing is stale */
	c = t_cache(NULL);
	assert_int_equal(t_put(c, &t, 0, T0), 0);
	assert_int_equal(t_get_stale(c, "example.com", T0 + 10000, out, sizeof(out)), -ENOENT);
	assert_int_equal(t_get(c, "example.com", DNS_TYPE_A, 0, T0 + 10000, out, sizeof(out)),
			 -ENOENT);
	assert_int_equal(t_stats(c).entries, 0);
	cache_free(c);
}

/* Stale entries stay evictable: after the dead ones (past their limit), before live ones. */
static void
test_stale_evictable(void **state)
{
	(void)state;
	struct cache_limits lim = {.max_bytes = 1 << 30,
				   .max_entries = 3,
				   .stale = true,
				   .stale_max = 100,
				   .stale_ttl = 30};
	struct cache *c = t_cache(&lim);
	struct t_reply live = {.qname = "live.test", .n_a = 1, .a_ttl = 1000};
	struct t_reply dead = {.qname = "dead.test", .n_a = 1, .a_ttl = 1};
	struct t_reply stale = {.qname = "stale.test", .n_a = 1, .a_ttl = 100};
	struct t_reply t = {.qname = "new.test", .n_a = 1, .a_ttl = 300};
	uint8_t out[512];

	assert_int_equal(t_put(c, &live, 0, T0), 0); /* least recently used */
	assert_int_equal(t_put(c, &stale, 0, T0), 0);
	assert_int_equal(t_put(c, &dead, 0, T0), 0);
	/* at 150 s: stale.test 50 s past expiry (servable), dead.test 149 s (past its limit) */
	assert_int_equal(t_put(c, &t, 0, T0 + 150000), 0);
	assert_int_equal(t_get_stale(c, "dead.test", T0 + 150000, out, sizeof(out)), -ENOENT);
	assert_true(t_get_stale(c, "stale.test", T0 + 150000, out, sizeof(out)) > 0);
	assert_true(t_hit(c, "live.test", T0 + 150000));
	/* the next one takes the stale entry's place, not the live LRU one */
	t.qname = "new2.test";
	assert_int_equal(t_put(c, &t, 0, T0 + 150000), 0);
	assert_int_equal(t_get_stale(c, "stale.test", T0 + 150000, out, sizeof(out)), -ENOENT);
	assert_true(t_hit(c, "live.test", T0 + 150000));
	struct cache_stats s = t_stats(c);
	assert_int_equal(s.expired, 2);
	assert_int_equal(s.evictions, 0);
	cache_free(c);
}

/* --prefetch: a hit in the last tenth of the entry's lifetime carries CACHE_KIND_REFRESH. */
static void
test_refresh_due(void **state)
{
	(void)state;
	struct cache_limits lim = {.max_bytes = 1 << 30, .refresh = true};
	struct cache *c = t_cache(&lim);
	struct t_reply t = {.qname = "example.com", .n_a = 1, .a_ttl = 10};
	struct t_reply kube = {.qname = "web.default.svc.cluster.local", .n_a = 1, .a_ttl = 10};
	struct t_name n;
	uint8_t out[512];
	unsigned kind;

	t_name(&n, "example.com");
	struct cache_key k = t_key(&n, DNS_TYPE_A, 0);
	uint32_t h = cache_key_hash(c, &k);
	assert_int_equal(t_put(c, &t, 0, T0), 0);
	assert_true(cache_get_tagged(c, &k, h, T0 + 8999, 1, NULL, out, sizeof(out), &kind) > 0);
	assert_int_equal(kind, 0);
	assert_true(cache_get_tagged(c, &k, h, T0 + 9000, 1, NULL, out, sizeof(out), &kind) > 0);
	assert_int_equal(kind, CACHE_KIND_REFRESH);
	assert_int_equal(CACHE_KIND_TAG(kind), 0);
	assert_true(cache_get_tagged(c, &k, h, T0 + 9999, 1, NULL, out, sizeof(out), &kind) > 0);
	assert_int_equal(kind, CACHE_KIND_REFRESH);
	/* renewable entries are renewed at expiry instead */
	assert_int_equal(t_put_renewable(c, &kube, T0), 0);
	t_name(&n, "web.default.svc.cluster.local");
	k = t_key(&n, DNS_TYPE_A, 0);
	h = cache_key_hash(c, &k);
	assert_true(cache_get_tagged(c, &k, h, T0 + 9500, 1, NULL, out, sizeof(out), &kind) > 0);
	assert_int_equal(kind, 0);
	cache_free(c);

	/* without the option, never */
	c = t_cache(NULL);
	t_name(&n, "example.com");
	k = t_key(&n, DNS_TYPE_A, 0);
	h = cache_key_hash(c, &k);
	assert_int_equal(t_put(c, &t, 0, T0), 0);
	assert_true(cache_get_tagged(c, &k, h, T0 + 9500, 1, NULL, out, sizeof(out), &kind) > 0);
	assert_int_equal(kind, 0);
	cache_free(c);
}

static void
test_budget_eviction(void **state)
{
	(void)state;
	/* a 64 KiB budget: 1 KiB chunks of 12 single-A slots */
	struct cache_limits lim = {.max_bytes = 64 * 1024};
	struct cache *c = t_cache(&lim);
	struct t_reply t = {.n_a = 1, .a_ttl = 300};
	char name[48];
	int n;

	for (n = 0; t_stats(c).evictions == 0; n++) {
		snprintf(name, sizeof(name), "h%05d.bench.test", n);
		t.qname = name;
		assert_int_equal(t_put(c, &t, 0, T0), 0);
		assert_true(t_stats(c).bytes <= lim.max_bytes);
	}
	uint64_t kept = t_stats(c).entries;
	assert_true(kept > 100 && kept < (uint64_t)n);
	/* the oldest went, the newest stayed */
	assert_false(t_hit(c, "h00000.bench.test", T0));
	snprintf(name, sizeof(name), "h%05d.bench.test", n - 1);
	assert_true(t_hit(c, name, T0));
	/* an entry larger than the whole budget is refused without evicting */
	struct t_reply big = {.qname = "big.test", .n_a = 4000, .a_ttl = 300};
	uint8_t *buf = malloc(65535);
	assert_non_null(buf);
	int len = t_build(buf, 65535, &big);
	struct t_name bn;
	t_name(&bn, "big.test");
	struct cache_key k = t_key(&bn, DNS_TYPE_A, 0);
	uint64_t before = t_stats(c).entries;
	assert_int_equal(cache_put(c, &k, buf, (size_t)len, T0), -E2BIG);
	assert_int_equal(t_stats(c).entries, before);
	free(buf);
	cache_free(c);
}

/* ---- byte accounting ------------------------------------------------------------------- */

static uint64_t
t_slot(size_t rec)
{
	assert_true(rec <= 256); /* the tests use the 4-byte-step classes */
	return (rec + 3) / 4 * 4;
}

static uint64_t
t_chunk(uint64_t slot)
{
	return T_CHUNK_HDR + (T_CHUNK - T_CHUNK_HDR) / slot * slot;
}

static uint64_t
t_pow2_at_least(uint64_t n, uint64_t min)
{
	while (min < n)
		min *= 2;
	return min;
}

/* bytes for `n` records of one slot size, in a cache whose empty size was `base`: chunks each
 * malloc'd (budgets under 256 MiB) or whole arenas of 32 chunk slots */
static uint64_t
t_expected_in(bool arenas, uint64_t base, uint64_t n, uint64_t slot, uint64_t buckets)
{
	uint64_t per = (T_CHUNK - T_CHUNK_HDR) / slot, chunks = (n + per - 1) / per;
	uint64_t held = arenas ? (chunks + 31) / 32 * T_ARENA : chunks * t_chunk(slot);

	return base + held + (buckets - T_MIN_BUCKETS) * 4 +
	       (t_pow2_at_least(chunks, T_MIN_IDS) - T_MIN_IDS) * 8;
}

static uint64_t
t_expected(uint64_t base, uint64_t n, uint64_t slot, uint64_t buckets)
{
	return t_expected_in(false, base, n, slot, buckets);
}

static void
test_bytes_exact(void **state)
{
	(void)state;
	struct cache_limits lim = {.max_bytes = T_MALLOC_BUDGET};
	struct cache *c = t_cache(&lim);
	struct t_reply t = {.n_a = 1, .a_ttl = 300};
	uint8_t buf[512];
	char name[48];
	uint64_t base = t_stats(c).bytes;

	t.qname = "h00000.bench.test";
	int len = t_build(buf, sizeof(buf), &t);
	assert_int_equal(len, 51);
	uint64_t slot = t_slot(T_REC_HDR + 2 + 51);
	assert_int_equal(slot, 84);
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "h%05d.bench.test", i);
		t.qname = name;
		assert_int_equal(t_put(c, &t, 0, T0), 0);
		uint64_t buckets = i + 1 > 64 ? 128 : 64;
		assert_int_equal(t_stats(c).bytes, t_expected(base, i + 1, slot, buckets));
	}
	/* a second size class: two A records -> 28 + 4 + 67 = 99 -> 100 */
	struct t_reply two = {.qname = "two.test", .n_a = 2, .a_ttl = 300};
	assert_int_equal(t_build(buf, sizeof(buf), &two), 12 + 14 + 32);
	assert_int_equal(t_put(c, &two, 0, T0), 0);
	uint64_t slot2 = t_slot(T_REC_HDR + 4 + 58);
	assert_int_equal(t_stats(c).bytes, t_expected(base, 100, slot, 128) + t_chunk(slot2));
	/* invalidating the big class down to 10 entries shrinks the table to 64 buckets;
	 * dropping the last record of a class returns its chunk */
	struct t_name bench;
	t_name(&bench, "bench.test");
	assert_int_equal(cache_invalidate(c, bench.lower, bench.len), 100);
	assert_int_equal(t_stats(c).bytes, base + t_chunk(slot2));
	struct t_name tw;
	t_name(&tw, "two.test");
	assert_int_equal(cache_invalidate(c, tw.lower, tw.len), 1);
	assert_int_equal(t_stats(c).bytes, base);
	assert_int_equal(t_stats(c).entries, 0);
	cache_free(c);
}

static long
t_huge_kib(void)
{
	FILE *f = fopen("/proc/self/smaps_rollup", "r");
	char line[128];
	long kib = -1;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "AnonHugePages: %ld kB", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib;
}

/* Budgets from 256 MiB: chunks take slots of 2 MiB arenas, counted whole, mapped on demand and
 * unmapped with their last chunk. */
static void
test_bytes_exact_arenas(void **state)
{
	(void)state;
	struct cache *c = t_cache(NULL); /* 1 GiB */
	struct t_reply t = {.n_a = 1, .a_ttl = 300};
	uint64_t slot = t_slot(T_REC_HDR + 2 + 51), per = (T_CHUNK - T_CHUNK_HDR) / slot;
	uint64_t base = t_stats(c).bytes, n = per * 32 + 1; /* 33 chunks: a second arena */
	char name[48];

	for (uint64_t i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "h%05llu.bench.test", (unsigned long long)i);
		t.qname = name;
		assert_int_equal(t_put(c, &t, 0, T0), 0);
		if (i == 0)
			assert_int_equal(t_stats(c).bytes, base + T_ARENA);
	}
	uint64_t buckets = t_pow2_at_least(n, T_MIN_BUCKETS);
	assert_int_equal(t_stats(c).bytes, t_expected_in(true, base, n, slot, buckets));
	/* the full arena became a huge page, where the system has them (a figure, not a test:
	 * THP may be off, or no huge page free) */
	print_message("cache: one full arena: %ld KiB of huge pages\n", t_huge_kib());
	assert_int_equal(t_stats(c).bytes - base - (buckets - T_MIN_BUCKETS) * 4 -
				 (64 - T_MIN_IDS) * 8,
			 2 * T_ARENA);
	/* another class takes a free slot of an arena held already: nothing more is held */
	struct t_reply two = {.qname = "two.test", .n_a = 2, .a_ttl = 300};
	uint64_t before = t_stats(c).bytes;
	assert_int_equal(t_put(c, &two, 0, T0), 0);
	assert_int_equal(t_stats(c).bytes, before);
	/* everything gone: every arena is unmapped (only the bigger tables stay counted) */
	struct t_name zone;
	t_name(&zone, "bench.test");
	assert_int_equal(cache_invalidate(c, zone.lower, zone.len), n);
	t_name(&zone, "two.test");
	assert_int_equal(cache_invalidate(c, zone.lower, zone.len), 1);
	assert_int_equal(t_stats(c).bytes, base + (64 - T_MIN_IDS) * 8);
	assert_int_equal(t_stats(c).entries, 0);
	/* and mapped again on demand */
	t.qname = "again.test";
	assert_int_equal(t_put(c, &t, 0, T0), 0);
	assert_int_equal(t_stats(c).bytes, base + (64 - T_MIN_IDS) * 8 + T_ARENA);
	assert_true(t_hit(c, "again.test", T0));
	cache_clear(c);
	assert_int_equal(t_stats(c).bytes, base + (64 - T_MIN_IDS) * 8);
	cache_free(c);
}

/* The smallest budget with arenas, filled with 3 KiB answers until it evicts: never over it. */
static void
test_arena_budget(void **state)
{
	(void)state;
	struct cache_limits lim = {.max_bytes = 256u << 20};
	struct cache *c = t_cache(&lim);
	struct t_reply t = {.n_a = 200, .a_ttl = 300};
	uint8_t out[4096];
	char name[48];
	int n;

	for (n = 0; t_stats(c).evictions < 1000; n++) {
		snprintf(name, sizeof(name), "b%06d.arena.test", n);
		t.qname = name;
		assert_int_equal(t_put(c, &t, 0, T0), 0);
		assert_true(t_stats(c).bytes <= lim.max_bytes);
	}
	struct cache_stats s = t_stats(c);
	assert_true(s.bytes > lim.max_bytes - 4 * T_ARENA); /* it did fill up */
	assert_true(s.entries > 60000 && s.entries < (uint64_t)n);
	snprintf(name, sizeof(name), "b%06d.arena.test", n - 1);
	assert_true(t_get(c, name, DNS_TYPE_A, 0, T0, out, sizeof(out)) > 3000);
	assert_false(t_hit(c, "b000000.arena.test", T0));
	cache_free(c);
}

static uint32_t t_rng = 12345;

static uint32_t
t_rand(void)
{
	t_rng = t_rng * 1103515245u + 12345u;
	return t_rng >> 8;
}

static void
t_count(void *ctx, const struct cache_key *key, uint32_t ttl_left, const uint8_t *reply, size_t len)
{
	uint64_t *n = ctx;

	assert_true(ttl_left > 0);
	assert_true(len >= DNS_HDR_LEN + (size_t)key->qname_len + 4);
	assert_memory_equal(reply + DNS_HDR_LEN, key->qname, key->qname_len);
	(*n)++;
}

static void
test_stress_budget(void **state)
{
	(void)state;
	struct cache_limits lim = {.max_bytes = 96 * 1024, .max_entries = 700, .neg_ttl = 5};
	struct cache *c = t_cache(&lim);
	char name[64];
	uint8_t out[4096];

	for (int i = 0; i < 100000; i++) {
		msec_t now = T0 + (msec_t)i * 10;
		snprintf(name, sizeof(name), "%.*sn%u.stress.test", (int)(t_rand() % 20),
			 "abcdefghijklmnopqrstuvwxyz", t_rand() % 3000);
		struct t_reply t = {.qname = name,
				    .n_a = t_rand() % 6,
				    .a_ttl = 1 + t_rand() % 600,
				    .rcode = t_rand() % 8 == 0 ? DNS_RCODE_NXDOMAIN : 0};
		int r = t_put(c, &t, (uint8_t)(t_rand() % 4), now);
		assert_true(r == 0 || r == -ENOENT);
		struct cache_stats s = t_stats(c);
		assert_true(s.bytes <= lim.max_bytes);
		assert_true(s.entries <= lim.max_entries);
		if (i % 3 == 0)
			(void)t_get(c, name, DNS_TYPE_A, (uint8_t)(t_rand() % 4), now, out,
				    sizeof(out));
		if (i % 5000 == 0) {
			struct t_name z;
			t_name(&z, "a.stress.test");
			(void)cache_invalidate(c, z.lower, z.len);
		}
	}
	struct cache_stats s = t_stats(c);
	assert_true(s.evictions + s.expired > 0);
	uint64_t live = 0;
	cache_foreach(c, T0 + 100000 * 10, t_count, &live);
	assert_true(live <= s.entries);
	/* every entry is under stress.test: invalidation must find each one exactly once */
	struct t_name zone;
	t_name(&zone, "stress.test");
	assert_int_equal(cache_invalidate(c, zone.lower, zone.len), s.entries);
	assert_int_equal(t_stats(c).entries, 0);
	assert_int_equal(t_stats(c).negative_entries, 0);
	cache_clear(c);
	s = t_stats(c);
	assert_int_equal(s.entries, 0);
	assert_int_equal(s.negative_entries, 0);
	cache_free(c);
}

/* ---- keys ------------------------------------------------------------------------------ */

static void
test_keys(void **state)
{
	(void)state;
	struct cache *c = t_cache(NULL);
	struct t_reply t = {.qname = "MiXeD.Example.ORG", .n_a = 1, .a_ttl = 300};
	uint8_t out[512];

	assert_int_equal(t_put(c, &t, 0, T0), 0);
	assert_true(t_hit(c, "mixed.example.org", T0));
	assert_true(t_hit(c, "MIXED.EXAMPLE.ORG", T0));
	assert_int_equal(t_get(c, "mixed.example.org", DNS_TYPE_AAAA, 0, T0, out, sizeof(out)),
			 -ENOENT);
	/* DO and CD are part of the key */
	assert_int_equal(
		t_get(c, "mixed.example.org", DNS_TYPE_A, CACHE_F_DO, T0, out, sizeof(out)),
		-ENOENT);
	t.a_last = 9;
	assert_int_equal(t_put(c, &t, CACHE_F_DO, T0), 0);
	assert_int_equal(t_put(c, &t, CACHE_F_CD, T0), 0);
	assert_int_equal(t_put(c, &t, CACHE_F_DO | CACHE_F_CD, T0), 0);
	assert_int_equal(t_stats(c).entries, 4);
	int len = t_get(c, "mixed.example.org", DNS_TYPE_A, 0, T0, out, sizeof(out));
	assert_true(len > 0);
	assert_int_equal(out[len - 1], 0); /* the plain entry still has its own answer */
	len = t_get(c, "mixed.example.org", DNS_TYPE_A, CACHE_F_CD, T0, out, sizeof(out));
	assert_int_equal(out[len - 1], 9);
	/* a reply for another question than the key is refused */
	struct t_name n;
	uint8_t buf[512];
	t_name(&n, "other.example.org");
	struct cache_key k = t_key(&n, DNS_TYPE_A, 0);
	len = t_build(buf, sizeof(buf), &t);
	assert_int_equal(cache_put(c, &k, buf, (size_t)len, T0), -EPROTO);
	cache_free(c);
}

static void
test_replace(void **state)
{
	(void)state;
	struct cache *c = t_cache(NULL);
	struct t_reply t = {.qname = "r.test", .n_a = 1, .a_ttl = 300, .a_last = 1};
	uint8_t out[512];

	assert_int_equal(t_put(c, &t, 0, T0), 0);
	uint64_t bytes = t_stats(c).bytes;
	t.a_last = 2;
	t.a_ttl = 100;
	assert_int_equal(t_put(c, &t, 0, T0 + 5000), 0);
	assert_int_equal(t_stats(c).entries, 1);
	assert_int_equal(t_stats(c).bytes, bytes);
	int len = t_get(c, "r.test", DNS_TYPE_A, 0, T0 + 5000, out, sizeof(out));
	assert_true(len > 0);
	assert_int_equal(out[len - 1], 2);
	t_assert_ttls(out, len, 1, 100);
	/* a reply the cache declines leaves the old entry alone */
	struct t_reply sf = {.qname = "r.test", .rcode = DNS_RCODE_SERVFAIL};
	assert_int_equal(t_put(c, &sf, 0, T0 + 5000), -ENOENT);
	assert_true(t_hit(c, "r.test", T0 + 5000));
	cache_free(c);
}

/* ---- invalidation, clearing, errors ---------------------------------------------------- */

static void
test_invalidate(void **state)
{
	(void)state;
	struct cache *c = t_cache(NULL);
	const char *drop[] = {"example.com", "www.example.com", "a.b.example.com"};
	const char *keep[] = {"com", "xexample.com", "www.xexample.com", "other.org",
			      "example.com.evil.org"};
	struct t_reply t = {.n_a = 1, .a_ttl = 300};
	struct t_name n;

	for (size_t i = 0; i < 3; i++) {
		t.qname = drop[i];
		assert_int_equal(t_put(c, &t, 0, T0), 0);
		t.qtype = DNS_TYPE_AAAA;
		assert_int_equal(t_put(c, &t, CACHE_F_DO, T0), 0);
		t.qtype = 0;
	}
	for (size_t i = 0; i < 5; i++) {
		t.qname = keep[i];
		assert_int_equal(t_put(c, &t, 0, T0), 0);
	}
	t_name(&n, "Example.COM");
	assert_int_equal(cache_invalidate(c, n.lower, n.len), 6);
	assert_int_equal(t_stats(c).entries, 5);
	for (size_t i = 0; i < 3; i++)
		assert_false(t_hit(c, drop[i], T0));
	for (size_t i = 0; i < 5; i++)
		assert_true(t_hit(c, keep[i], T0));
	t_name(&n, "nothing.here");
	assert_int_equal(cache_invalidate(c, n.lower, n.len), 0);
	/* the root holds everything */
	assert_int_equal(cache_invalidate(c, (const uint8_t *)"", 1), 5);
	assert_int_equal(t_stats(c).entries, 0);
	cache_free(c);
}

static void
test_clear(void **state)
{
	(void)state;
	struct cache_limits lim = {.max_bytes = 1 << 30, .max_entries = 2};
	struct cache *c = t_cache(&lim);
	struct t_reply t = {.n_a = 1, .a_ttl = 300};
	uint64_t base = t_stats(c).bytes;
	char name[48];

	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "c%d.test", i);
		t.qname = name;
		assert_int_equal(t_put(c, &t, 0, T0), 0);
	}
	assert_true(t_hit(c, "c4.test", T0));
	struct cache_stats s = t_stats(c);
	assert_int_equal(s.insertions, 5);
	assert_int_equal(s.evictions, 3);
	cache_clear(c);
	s = t_stats(c);
	assert_int_equal(s.insertions, 0);
	assert_int_equal(s.evictions, 0);
	assert_int_equal(s.entries, 0);
	assert_int_equal(s.hits, 1);
	assert_int_equal(s.bytes, base);
	assert_false(t_hit(c, "c4.test", T0));
	t.qname = "again.test";
	assert_int_equal(t_put(c, &t, 0, T0), 0);
	assert_true(t_hit(c, "again.test", T0));
	cache_free(c);
	cache_free(NULL);
}

static void
test_errors(void **state)
{
	(void)state;
	struct cache *c = t_cache(NULL);
	struct t_reply t = {.qname = "e.test", .n_a = 3, .a_ttl = 300};
	uint8_t buf[512], out[512];
	int len = t_build(buf, sizeof(buf), &t);
	struct t_name n;

	t_name(&n, "e.test");
	struct cache_key k = t_key(&n, DNS_TYPE_A, 0);
	/* malformed: cut inside the answer, a question count of 0, rdlength past the end */
	assert_int_equal(cache_put(c, &k, buf, (size_t)len - 3, T0), -EPROTO);
	assert_int_equal(cache_put(c, &k, buf, 5, T0), -EPROTO);
	uint8_t bad[512];
	memcpy(bad, buf, (size_t)len);
	dnsmsg_put16(bad + 4, 0);
	assert_int_equal(cache_put(c, &k, bad, (size_t)len, T0), -EPROTO);
	memcpy(bad, buf, (size_t)len);
	dnsmsg_put16(bad + len - 6, 200);
	assert_int_equal(cache_put(c, &k, bad, (size_t)len, T0), -EPROTO);
	assert_int_equal(t_stats(c).entries, 0);
	/* too small an output buffer leaves the entry in place */
	assert_int_equal(cache_put(c, &k, buf, (size_t)len, T0), 0);
	assert_int_equal(cache_get(c, &k, T0, 1, n.wire, out, (size_t)len - 1), -ENOSPC);
	assert_int_equal(cache_get(c, &k, T0, 1, n.wire, out, (size_t)len), len);
	cache_free(c);
}

/* ---- memory per entry ------------------------------------------------------------------ */

static long
t_rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = 0, rss = 0;

	if (f == NULL)
		return 0;
	if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
		rss = 0;
	fclose(f);
	return rss * 4;
}

static void
test_bytes_per_entry(void **state)
{
	(void)state;
	const char *env = getenv("CACHE_BENCH_ENTRIES");
	uint64_t n = env ? strtoull(env, NULL, 10) : 200000;
	struct cache *c = t_cache(NULL);
	uint64_t base = t_stats(c).bytes;
	long rss0 = t_rss_kib();
	struct t_reply t = {.n_a = 1, .a_ttl = 300};
	uint8_t buf[512];
	char name[48];

	assert_true(n <= 9999999);
	for (uint64_t i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "h%07llu.bench.test", (unsigned long long)i);
		t.qname = name;
		int len = t_build(buf, sizeof(buf), &t);
		struct t_name nm;
		t_name(&nm, name);
		struct cache_key k = t_key(&nm, DNS_TYPE_A, 0);
		assert_int_equal(cache_put(c, &k, buf, (size_t)len, T0), 0);
	}
	struct cache_stats s = t_stats(c);
	/* "h0012345.bench.test" is two bytes longer than "h12345.bench.test": 53-byte image */
	uint64_t slot = t_slot(T_REC_HDR + 2 + 53);
	assert_int_equal(s.entries, n);
	assert_int_equal(s.bytes,
			 t_expected_in(true, base, n, slot, t_pow2_at_least(n, T_MIN_BUCKETS)));
	print_message("cache: %llu single-A entries: %.1f bytes/entry accounted, "
		      "%.1f bytes/entry RSS growth\n",
		      (unsigned long long)n, (double)s.bytes / (double)n,
		      (double)(t_rss_kib() - rss0) * 1024.0 / (double)n);
	cache_free(c);
}

/* --max-ttl caps what a hit shows, in the aging pass, while the entry lives its full TTL. */
static void
test_max_client_ttl(void **state)
{
	(void)state;
	struct cache_limits lim = {.max_bytes = 1 << 30, .max_client_ttl = 60};
	struct cache *c = t_cache(&lim);
	struct t_reply t = {.qname = "cap.test", .n_a = 2, .a_ttl = 300, .ns = true, .ns_ttl = 30};
	struct t_reply neg = {.qname = "nx.cap.test",
			      .rcode = DNS_RCODE_NXDOMAIN,
			      .soa = true,
			      .soa_ttl = 900,
			      .soa_min = 900};
	uint8_t out[512];
	uint32_t ttls[8];
	int r;

	assert_int_equal(t_put(c, &t, 0, T0), 0);
	r = t_get(c, "cap.test", DNS_TYPE_A, 0, T0, out, sizeof(out));
	assert_int_equal(t_ttls(out, (size_t)r, ttls, 8), 4);
	assert_int_equal(ttls[0], 60);
	assert_int_equal(ttls[1], 60);
	assert_int_equal(ttls[2], 30); /* below the cap: untouched */
	assert_int_equal(ttls[3], 30);
	/* 250 s on: min(300 - 250, 60) = 50 for the answer; the NS has run out */
	r = t_get(c, "cap.test", DNS_TYPE_A, 0, T0 + 250000, out, sizeof(out));
	assert_int_equal(t_ttls(out, (size_t)r, ttls, 8), 4);
	assert_int_equal(ttls[0], 50);
	assert_int_equal(ttls[2], 0);
	/* the true TTL stays in the cache: alive at 299 s, gone at 300 s */
	assert_true(t_get(c, "cap.test", DNS_TYPE_A, 0, T0 + 299000, out, sizeof(out)) > 0);
	assert_int_equal(t_get(c, "cap.test", DNS_TYPE_A, 0, T0 + 300000, out, sizeof(out)),
			 -ENOENT);
	/* negative entries too: the SOA shows the cap, the entry lives 900 s */
	assert_int_equal(t_put(c, &neg, 0, T0), 0);
	t_assert_ttls(out, t_get(c, "nx.cap.test", DNS_TYPE_A, 0, T0 + 1000, out, sizeof(out)), 1,
		      60);
	t_assert_ttls(out, t_get(c, "nx.cap.test", DNS_TYPE_A, 0, T0 + 850000, out, sizeof(out)), 1,
		      50);
	cache_free(c);
}

/* Invalidation across size classes, several chunks per class, DO/CD variants and negative
 * entries; the structures stay whole afterwards (every survivor hits, accounting returns to
 * the empty figure, LRU eviction still works). */
static void
test_invalidate_details(void **state)
{
	(void)state;
	struct cache_limits lim = {.max_bytes = 4 << 20}; /* 16 KiB chunks: many of them */
	struct cache *c = t_cache(&lim);
	uint64_t base = t_stats(c).bytes;
	struct t_reply t = {.a_ttl = 300};
	char name[64];
	size_t in_zone = 0, out_zone = 0;

	for (int i = 0; i < 3000; i++) {
		bool drop = i % 3 == 0;
		snprintf(name, sizeof(name), "n%d.%s", i,
			 drop	      ? "Ns1.Svc.Cluster.Local"
			 : i % 3 == 1 ? "ns2.svc.cluster.local"
				      : "svc.cluster.local.other");
		t.qname = name;
		t.n_a = 1 + (unsigned)(i % 7) * 3; /* several size classes */
		t.rcode = i % 11 == 0 ? DNS_RCODE_NXDOMAIN : DNS_RCODE_NOERROR;
		t.soa = t.rcode != DNS_RCODE_NOERROR;
		t.soa_ttl = t.soa_min = 60;
		if (t.soa)
			t.n_a = 0;
		assert_int_equal(t_put(c, &t, (uint8_t)(i % 4), T0), 0);
		if (drop)
			in_zone++;
		else
			out_zone++;
	}
	struct cache_stats s0 = t_stats(c);
	assert_int_equal(s0.entries, 3000);
	struct t_name z;
	t_name(&z, "NS1.svc.cluster.local");
	assert_int_equal(cache_invalidate(c, z.wire, z.len), in_zone);
	struct cache_stats s1 = t_stats(c);
	assert_int_equal(s1.entries, out_zone);
	assert_true(s1.bytes < s0.bytes);
	uint64_t negatives = 0;
	for (int i = 0; i < 3000; i++) {
		bool drop = i % 3 == 0;
		uint8_t out[1024];
		snprintf(name, sizeof(name), "n%d.%s", i,
			 drop	      ? "ns1.svc.cluster.local"
			 : i % 3 == 1 ? "ns2.svc.cluster.local"
				      : "svc.cluster.local.other");
		int r = t_get(c, name, DNS_TYPE_A, (uint8_t)(i % 4), T0, out, sizeof(out));
		assert_int_equal(r > 0, !drop);
		if (!drop && i % 11 == 0)
			negatives++;
	}
	assert_int_equal(t_stats(c).negative_entries, negatives);
	/* LRU links survived the moves: filling up to an entry cap evicts in order */
	t_name(&z, "cluster.local");
	assert_int_equal(cache_invalidate(c, z.wire, z.len), out_zone / 2);
	t_name(&z, "other");
	assert_int_equal(cache_invalidate(c, z.wire, z.len), out_zone - out_zone / 2);
	assert_int_equal(t_stats(c).entries, 0);
	assert_int_equal(t_stats(c).negative_entries, 0);
	/* empty again: the bucket array back at its minimum, no chunk held; only the chunk id
	 * table keeps its capacity (a power of two, 8 bytes an id) */
	uint64_t ids = (t_stats(c).bytes - base) / 8 + T_MIN_IDS;
	assert_int_equal(t_stats(c).bytes, base + (ids - T_MIN_IDS) * 8);
	assert_true(ids > T_MIN_IDS && (ids & (ids - 1)) == 0);
	t.n_a = 1;
	t.rcode = 0;
	t.soa = false;
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "after%d.test", i);
		t.qname = name;
		assert_int_equal(t_put(c, &t, 0, T0), 0);
	}
	assert_true(t_hit(c, "after0.test", T0));
	assert_true(t_hit(c, "after99.test", T0));
	cache_free(c);
}

static double
t_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Fill with n single-A entries h<i>.<zone of i % 1000>.bench.test. */
static void
t_fill(struct cache *c, uint64_t n)
{
	struct t_reply t = {.n_a = 1, .a_ttl = 300};
	uint8_t buf[512];
	char name[64];

	for (uint64_t i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "h%07llu.z%03u.bench.test", (unsigned long long)i,
			 (unsigned)(i % 1000));
		t.qname = name;
		int len = t_build(buf, sizeof(buf), &t);
		struct t_name nm;
		t_name(&nm, name);
		struct cache_key k = t_key(&nm, DNS_TYPE_A, 0);
		assert_int_equal(cache_put(c, &k, buf, (size_t)len, T0), 0);
	}
}

/* The cost of an invalidation (a whole-cache walk) at a million entries: printed, not
 * asserted (CACHE_INVALIDATE_ENTRIES overrides the size). */
static void
test_invalidate_1m(void **state)
{
	(void)state;
	const char *env = getenv("CACHE_INVALIDATE_ENTRIES");
	uint64_t n = env ? strtoull(env, NULL, 10) : 1000000;
	struct cache *c = t_cache(NULL);
	struct t_name z;
	double t0, t1, t2;

	t_fill(c, n);
	assert_int_equal(t_stats(c).entries, n);
	t_name(&z, "z042.bench.test");
	t0 = t_now_s();
	size_t dropped = cache_invalidate(c, z.wire, z.len);
	t1 = t_now_s();
	t_name(&z, "nothing.test");
	assert_int_equal(cache_invalidate(c, z.wire, z.len), 0);
	t2 = t_now_s();
	assert_int_equal(dropped, n / 1000 + (n % 1000 > 42));
	assert_int_equal(t_stats(c).entries, n - dropped);
	print_message("cache: invalidate at %llu entries: %.2f ms dropping %zu, %.2f ms dropping "
		      "none\n",
		      (unsigned long long)n, (t1 - t0) * 1e3, dropped, (t2 - t1) * 1e3);
	cache_free(c);
}

/* ---- watched zones: invalidation by owner ---------------------------------------------- */

/* What one group read may cost beyond its own members: other owners in its bucket (the table
 * has about one owner per bucket, keyed at random: a few, never dozens). */
#define T_GROUP_READS 60

/* The zones the kube resolver declares (upstream_kube.c, kube_watched), with their owner depths. */
static const struct {
	const char *zone;
	unsigned depth;
} t_kube_zones[] = {
	{"cluster.local", 1}, {"svc.cluster.local", 2}, {"pod.cluster.local", 1},
	{"in-addr.arpa", 4},  {"ip6.arpa", 32},
};

static void
t_watch_kube(struct cache *c)
{
	for (size_t i = 0; i < ARRAY_SIZE(t_kube_zones); i++) {
		struct t_name z;
		t_name(&z, t_kube_zones[i].zone);
		assert_int_equal(cache_watch(c, z.wire, z.len, t_kube_zones[i].depth), 0);
	}
}

static bool
t_watched(const struct t_name *n)
{
	for (size_t i = 0; i < ARRAY_SIZE(t_kube_zones); i++) {
		struct t_name z;
		t_name(&z, t_kube_zones[i].zone);
		if (dnsmsg_name_in_zone(n->lower, n->len, z.lower, z.len))
			return true;
	}
	return false;
}

static void
t_put_name(struct cache *c, const char *name, uint16_t qtype, uint8_t flags)
{
	struct t_reply t = {.qname = name, .qtype = qtype, .n_a = 1, .a_ttl = 300};

	assert_int_equal(t_put(c, &t, flags, T0), 0);
}

static bool
t_hit_key(struct cache *c, const char *name, uint16_t qtype, uint8_t flags)
{
	uint8_t out[4096];

	return t_get(c, name, qtype, flags, T0, out, sizeof(out)) > 0;
}

/* Invalidate `name`; returns what it dropped, *reads the entries it read. */
static size_t
t_inval(struct cache *c, const char *name, uint64_t *reads)
{
	struct t_name n;
	uint64_t r0 = t_stats(c).invalidate_reads;

	t_name(&n, name);
	size_t dropped = cache_invalidate(c, n.wire, n.len); /* any case: the wire spelling */
	*reads = t_stats(c).invalidate_reads - r0;
	return dropped;
}

static void
test_watch_errors(void **state)
{
	(void)state;
	struct cache *c = t_cache(NULL);
	struct t_name z;

	t_name(&z, "Cluster.Local");
	assert_int_equal(cache_watch(c, z.wire, z.len, 3), 0);
	t_name(&z, "cluster.local");
	assert_int_equal(cache_watch(c, z.wire, z.len, 2), -EEXIST);
	assert_int_equal(cache_watch(c, z.wire, z.len - 1, 2), -EINVAL); /* no root label */
	assert_int_equal(cache_watch(c, z.wire, 0, 2), -EINVAL);
	assert_int_equal(cache_watch(c, z.wire, z.len, 128), -EINVAL);
	char name[32];
	for (int i = 1; i < 8; i++) {
		snprintf(name, sizeof(name), "z%d.test", i);
		t_name(&z, name);
		assert_int_equal(cache_watch(c, z.wire, z.len, 1), 0);
	}
	t_name(&z, "z8.test");
	assert_int_equal(cache_watch(c, z.wire, z.len, 1), -ENOSPC);
	cache_free(c);
	/* entries cached under a zone before it is watched are dropped (filed by the old rules),
	 * and so are those of a zone that a deeper watched zone takes over */
	c = t_cache(NULL);
	t_put_name(c, "a.b.zone.test", DNS_TYPE_A, 0);
	t_put_name(c, "other.test", DNS_TYPE_A, 0);
	t_name(&z, "zone.test");
	assert_int_equal(cache_watch(c, z.wire, z.len, 1), 0);
	assert_int_equal(t_stats(c).entries, 1);
	assert_true(t_hit(c, "other.test", T0));
	t_put_name(c, "a.b.zone.test", DNS_TYPE_A, 0);
	assert_int_equal(t_stats(c).indexed, 1);
	t_name(&z, "b.zone.test");
	assert_int_equal(cache_watch(c, z.wire, z.len, 1), 0);
	assert_int_equal(t_stats(c).entries, 1);
	assert_int_equal(t_stats(c).indexed, 0);
	cache_free(c);
}

/*
 * A cluster change drops exactly what is at or below its name, found through the owner groups:
 * a service's names (itself, its SRV and endpoint names) read one group; a name deeper than a
 * service its own part of it; a namespace or a zone only the indexed entries; the thousands of
 * external names are never read unless a name outside the watched zones is invalidated.
 */
static void
test_watch_drops_by_owner(void **state)
{
	(void)state;
	struct cache *c = t_cache(NULL);
	enum { EXT = 20000, NS = 4, SVC = 25 };
	char name[128];
	uint64_t reads;

	t_watch_kube(c);
	t_fill(c, EXT);
	for (int ns = 0; ns < NS; ns++) {
		for (int s = 0; s < SVC; s++) {
			snprintf(name, sizeof(name), "s%d.ns%d.svc.cluster.local", s, ns);
			for (uint8_t f = 0; f < 4; f++)
				t_put_name(c, name, DNS_TYPE_A, f);
			snprintf(name, sizeof(name), "_http._tcp.s%d.ns%d.svc.cluster.local", s,
				 ns);
			t_put_name(c, name, DNS_TYPE_SRV, 0);
			snprintf(name, sizeof(name), "host.s%d.ns%d.svc.cluster.local", s, ns);
			t_put_name(c, name, DNS_TYPE_A, 0);
		}
		snprintf(name, sizeof(name), "10-0-0-%d.ns%d.pod.cluster.local", ns, ns);
		t_put_name(c, name, DNS_TYPE_A, 0);
		snprintf(name, sizeof(name), "www.example.com.ns%d.svc.cluster.local", ns);
		t_put_name(c, name, DNS_TYPE_A, 0); /* a search-path miss */
	}
	for (int i = 0; i < 16; i++) {
		snprintf(name, sizeof(name), "%d.0.96.10.in-addr.arpa", i);
		t_put_name(c, name, DNS_TYPE_PTR, 0);
	}
	t_put_name(c, "4.3.2.1.in-addr.arpa", DNS_TYPE_PTR, 0); /* from a forwarder */
	t_put_name(c, "s1.ns1.svc.cluster.local.other", DNS_TYPE_A, 0);
	uint64_t indexed = (uint64_t)NS * SVC * 6 + NS * 2 + 17;
	assert_int_equal(t_stats(c).indexed, indexed);
	assert_int_equal(t_stats(c).entries, EXT + indexed + 1);

	/* a service: its 6 entries, in its group alone (collisions aside: a handful) */
	assert_int_equal(t_inval(c, "S7.ns2.svc.cluster.LOCAL", &reads), 6);
	assert_true(reads >= 6 && reads <= T_GROUP_READS);
	assert_false(t_hit_key(c, "s7.ns2.svc.cluster.local", DNS_TYPE_A, CACHE_F_CD));
	assert_false(t_hit_key(c, "_http._tcp.s7.ns2.svc.cluster.local", DNS_TYPE_SRV, 0));
	assert_true(t_hit(c, "s7.ns1.svc.cluster.local", T0));
	assert_true(t_hit(c, "s17.ns2.svc.cluster.local", T0));
	/* deeper than the owner: that name only, from the service's group */
	assert_int_equal(t_inval(c, "host.s8.ns2.svc.cluster.local", &reads), 1);
	assert_true(reads >= 6 && reads <= T_GROUP_READS);
	assert_true(t_hit(c, "s8.ns2.svc.cluster.local", T0));
	/* a name never cached, or a service nobody asked for: nothing, at once */
	assert_int_equal(t_inval(c, "nope.ns2.svc.cluster.local", &reads), 0);
	assert_true(reads <= T_GROUP_READS);
	/* an address: the exact reverse name, whoever answered it */
	assert_int_equal(t_inval(c, "5.0.96.10.in-addr.arpa", &reads), 1);
	assert_true(reads <= T_GROUP_READS);
	assert_int_equal(t_inval(c, "4.3.2.1.in-addr.arpa", &reads), 1);
	assert_true(t_hit_key(c, "6.0.96.10.in-addr.arpa", DNS_TYPE_PTR, 0));
	/* a namespace's pods: one group */
	assert_int_equal(t_inval(c, "ns1.pod.cluster.local", &reads), 1);
	assert_true(reads <= T_GROUP_READS);
	/* a namespace's services: every indexed entry read, no external one */
	uint64_t before = t_stats(c).indexed;
	assert_int_equal(t_inval(c, "ns3.svc.cluster.local", &reads), SVC * 6 + 1);
	assert_int_equal(reads, before);
	assert_true(t_hit(c, "s3.ns0.svc.cluster.local", T0));
	/* the whole zone (a flush after too many changes): the indexed entries only */
	before = t_stats(c).indexed;
	size_t rev = 15;
	assert_int_equal(t_inval(c, "cluster.local", &reads), before - rev);
	assert_int_equal(reads, before);
	assert_int_equal(t_stats(c).indexed, rev);
	assert_int_equal(t_inval(c, "in-addr.arpa", &reads), rev);
	assert_int_equal(t_stats(c).indexed, 0);
	/* the external names were never touched; outside the watched zones it is a full walk */
	assert_int_equal(t_stats(c).entries, EXT + 1);
	assert_true(t_hit(c, "h0000000.z000.bench.test", T0));
	assert_true(t_hit(c, "s1.ns1.svc.cluster.local.other", T0));
	assert_int_equal(t_inval(c, "z007.bench.test", &reads), EXT / 1000);
	assert_int_equal(reads, EXT + 1);
	cache_free(c);
}

/*
 * The group walk survives its own moves: dropping a member moves its class's last record into
 * the hole, and when that record is the next member the walk must follow it there.
 */
static void
test_watch_group_moves(void **state)
{
	(void)state;
	struct cache *c = t_cache(NULL);
	uint64_t reads;

	t_watch_kube(c);
	/* four records of one class (names of one length) */
	t_put_name(c, "q.other.svc.cluster.local", DNS_TYPE_A, 0); /* slot 0, stays */
	t_put_name(c, "p.other.svc.cluster.local", DNS_TYPE_A, 0); /* slot 1 */
	t_put_name(c, "s.ns123.svc.cluster.local", DNS_TYPE_A, 0); /* slot 2, group: [2] */
	t_put_name(c, "s.ns123.svc.cluster.local", DNS_TYPE_A, 1); /* slot 3, group: [3, 2] */
	/* p goes: slot 3 moves to 1, so the group is [1, 2] and 2 is the class's last record */
	assert_int_equal(t_inval(c, "p.other.svc.cluster.local", &reads), 1);
	assert_int_equal(t_inval(c, "s.ns123.svc.cluster.local", &reads), 2);
	assert_int_equal(t_stats(c).entries, 1);
	assert_int_equal(t_stats(c).indexed, 1);
	assert_false(t_hit_key(c, "s.ns123.svc.cluster.local", DNS_TYPE_A, 0));
	assert_false(t_hit_key(c, "s.ns123.svc.cluster.local", DNS_TYPE_A, 1));
	assert_true(t_hit(c, "q.other.svc.cluster.local", T0));
	assert_int_equal(t_inval(c, "q.other.svc.cluster.local", &reads), 1);
	assert_int_equal(t_stats(c).entries, 0);
	cache_free(c);
}

/* A watched zone below the invalidated name has owners of its own: not one group then. */
static void
test_watch_nested(void **state)
{
	(void)state;
	struct cache *c = t_cache(NULL);
	struct t_name z;
	uint64_t reads;

	t_name(&z, "zone.test");
	assert_int_equal(cache_watch(c, z.wire, z.len, 1), 0);
	t_name(&z, "deep.b.zone.test");
	assert_int_equal(cache_watch(c, z.wire, z.len, 1), 0);
	t_put_name(c, "y.b.zone.test", DNS_TYPE_A, 0);	    /* owner b.zone.test */
	t_put_name(c, "x.deep.b.zone.test", DNS_TYPE_A, 0); /* owner x.deep.b.zone.test */
	t_put_name(c, "z.c.zone.test", DNS_TYPE_A, 0);	    /* owner c.zone.test */
	assert_int_equal(t_stats(c).indexed, 3);
	assert_int_equal(t_inval(c, "b.zone.test", &reads), 2);
	assert_true(t_hit(c, "z.c.zone.test", T0));
	cache_free(c);
}

/* Exact bytes with indexed entries: the owner table and 8 bytes more per record, rounded. */
static void
test_bytes_exact_indexed(void **state)
{
	(void)state;
	struct cache_limits lim = {.max_bytes = T_MALLOC_BUDGET};
	struct cache *c = t_cache(&lim);
	struct t_reply t = {.n_a = 1, .a_ttl = 300};
	uint8_t buf[512];
	char name[48];
	uint64_t base = t_stats(c).bytes;
	struct t_name z;

	t_name(&z, "cluster.local");
	assert_int_equal(cache_watch(c, z.wire, z.len, 1), 0);
	assert_int_equal(t_stats(c).bytes, base + T_MIN_OWNERS * 4);
	base += T_MIN_OWNERS * 4;
	t.qname = "h00000.cluster.local";
	assert_int_equal(t_build(buf, sizeof(buf), &t), 54);
	uint64_t slot = t_slot(T_REC_HDR + 2 + 54 + 8); /* 84, 4-aligned already, + links */
	assert_int_equal(slot, 92);
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "h%05d.cluster.local", i);
		t.qname = name;
		assert_int_equal(t_put(c, &t, 0, T0), 0);
		uint64_t tables = i + 1 > 64 ? 2 * 64 * 4 : 0; /* buckets and owners grew */
		assert_int_equal(t_stats(c).bytes, t_expected(base, i + 1, slot, 64) + tables);
	}
	/* an odd image length is rounded up to 4 before the links: 28 + 2 + 57 -> 88 + 8 */
	t.qname = "h0000.x-y.cluster.local";
	int len = t_build(buf, sizeof(buf), &t);
	assert_int_equal(len, 57);
	uint64_t before = t_stats(c).bytes;
	assert_int_equal(t_put(c, &t, 0, T0), 0);
	assert_int_equal(t_stats(c).bytes, before + t_chunk(96));
	/* plain entries beside them keep their plain size */
	before = t_stats(c).bytes;
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "h%05d.bench.test", i);
		t.qname = name;
		assert_int_equal(t_put(c, &t, 0, T0), 0);
	}
	assert_int_equal(t_stats(c).bytes, before + t_chunk(84));
	assert_int_equal(t_stats(c).indexed, 101);
	/* dropping them returns everything; the owner table shrinks back to its minimum */
	uint64_t reads;
	assert_int_equal(t_inval(c, "cluster.local", &reads), 101);
	assert_int_equal(t_inval(c, "bench.test", &reads), 10);
	assert_int_equal(t_stats(c).bytes, base);
	/* and cache_clear() leaves the owner table at its minimum too */
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "h%05d.cluster.local", i);
		t.qname = name;
		assert_int_equal(t_put(c, &t, 0, T0), 0);
	}
	cache_clear(c);
	uint64_t ids = (t_stats(c).bytes - base) / 8 + T_MIN_IDS;
	assert_int_equal(t_stats(c).bytes, base + (ids - T_MIN_IDS) * 8);
	cache_free(c);
}

/* ---- the randomized model: every invalidation drops exactly what a plain list would ---- */

#define T_MODEL_TYPES 3
static const uint16_t t_model_types[T_MODEL_TYPES] = {DNS_TYPE_A, DNS_TYPE_AAAA, DNS_TYPE_TXT};

struct t_model {
	struct t_name *names;
	bool *watched;
	size_t n_names;
	bool *present; /* [name][type][flags] */
	uint64_t count;
};

static size_t
t_model_key(size_t name, unsigned type, unsigned flags)
{
	return (name * T_MODEL_TYPES + type) * 4 + flags;
}

static void
t_model_names(struct t_model *m)
{
	char buf[160];
	size_t cap = 1024, n = 0;

	m->names = calloc(cap, sizeof(*m->names));
	assert_non_null(m->names);
#define T_ADD(...)                                                                                 \
	do {                                                                                       \
		snprintf(buf, sizeof(buf), __VA_ARGS__);                                           \
		assert_true(n < cap);                                                              \
		t_name(&m->names[n++], buf);                                                       \
	} while (0)
	for (int ns = 0; ns < 3; ns++) {
		for (int s = 0; s < 6; s++) {
			T_ADD("s%d.n%d.svc.cluster.local", s, ns);
			T_ADD("_p._tcp.s%d.n%d.svc.cluster.local", s, ns);
			T_ADD("h%d.s%d.n%d.svc.cluster.local", s % 2, s, ns);
		}
		T_ADD("n%d.svc.cluster.local", ns);
		T_ADD("n%d.pod.cluster.local", ns);
		T_ADD("www.example.com.n%d.svc.cluster.local", ns);
		for (int p = 0; p < 3; p++)
			T_ADD("10-0-%d-%d.n%d.pod.cluster.local", ns, p, ns);
	}
	T_ADD("www.example.com.svc.cluster.local");
	T_ADD("www.example.com.cluster.local");
	T_ADD("cluster.local");
	T_ADD("svc.cluster.local");
	T_ADD("pod.cluster.local");
	for (int i = 0; i < 12; i++)
		T_ADD("%d.0.96.10.in-addr.arpa", i);
	T_ADD("x.3.0.96.10.in-addr.arpa");
	T_ADD("0.96.10.in-addr.arpa");
	T_ADD("b.a.9.8.7.6.5.4.3.2.1.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
	T_ADD("x.b.a.9.8.7.6.5.4.3.2.1.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
	for (int e = 0; e < 30; e++) {
		T_ADD("e%d.ext.test", e);
		T_ADD("a.e%d.ext.test", e);
	}
	T_ADD("cluster.local.ext.test");
	T_ADD("5.3.2.1.in-addr.arpa.ext.test");
#undef T_ADD
	m->n_names = n;
	m->watched = calloc(n, sizeof(*m->watched));
	m->present = calloc(n * T_MODEL_TYPES * 4, sizeof(*m->present));
	assert_non_null(m->watched);
	assert_non_null(m->present);
	for (size_t i = 0; i < n; i++)
		m->watched[i] = t_watched(&m->names[i]);
	m->count = 0;
}

static void
t_model_free(struct t_model *m)
{
	free(m->names);
	free(m->watched);
	free(m->present);
}

static uint64_t
t_model_indexed(const struct t_model *m)
{
	uint64_t n = 0;

	for (size_t k = 0; k < m->n_names * T_MODEL_TYPES * 4; k++)
		n += m->present[k] && m->watched[k / (T_MODEL_TYPES * 4)];
	return n;
}

/* Look every key up: a hit exactly for the keys the model holds, each with its own name. */
static void
t_model_check_all(struct cache *c, const struct t_model *m)
{
	uint8_t out[4096];

	for (size_t i = 0; i < m->n_names; i++)
		for (unsigned ty = 0; ty < T_MODEL_TYPES; ty++)
			for (unsigned f = 0; f < 4; f++) {
				struct cache_key k =
					t_key(&m->names[i], t_model_types[ty], (uint8_t)f);
				int r = cache_get(c, &k, T0, 1, m->names[i].wire, out, sizeof(out));
				assert_int_equal(r > 0, m->present[t_model_key(i, ty, f)]);
				if (r > 0)
					assert_memory_equal(out + DNS_HDR_LEN, m->names[i].wire,
							    m->names[i].len);
			}
}

/* Evictions are the cache's choice: the model drops the keys that no longer hit, and exactly
 * as many went as the cache says it evicted. */
static void
t_model_evicted(struct cache *c, struct t_model *m, uint64_t evicted)
{
	uint8_t out[4096];
	uint64_t gone = 0;

	for (size_t i = 0; i < m->n_names; i++)
		for (unsigned ty = 0; ty < T_MODEL_TYPES; ty++)
			for (unsigned f = 0; f < 4; f++) {
				size_t key = t_model_key(i, ty, f);
				if (!m->present[key])
					continue;
				struct cache_key k =
					t_key(&m->names[i], t_model_types[ty], (uint8_t)f);
				if (cache_get(c, &k, T0, 1, m->names[i].wire, out, sizeof(out)) > 0)
					continue;
				m->present[key] = false;
				m->count--;
				gone++;
			}
	assert_int_equal(gone, evicted);
}

/* `ops` random operations, `inval` in 100 of them invalidations; returns the evictions seen. */
static uint64_t
t_model_run(const struct cache_limits *lim, unsigned ops, unsigned inval, uint32_t seed)
{
	struct cache *c = t_cache(lim);
	struct t_model m;
	struct t_name extra[8];
	const char *extra_text[] = {
		"ext.test",	   "in-addr.arpa",	    "ip6.arpa", "arpa",
		"10.in-addr.arpa", "nothing.cluster.local", "test",	"local"};

	uint64_t evicted = 0;

	t_rng = seed;
	t_model_names(&m);
	t_watch_kube(c);
	uint64_t empty = t_stats(c).bytes;
	for (size_t i = 0; i < ARRAY_SIZE(extra); i++)
		t_name(&extra[i], extra_text[i]);
	for (unsigned op = 0; op < ops; op++) {
		unsigned what = t_rand() % 100;
		if (what < 97 - inval) {
			size_t i = t_rand() % m.n_names;
			unsigned ty = t_rand() % T_MODEL_TYPES, f = t_rand() % 4;
			struct t_reply t = {.qname = NULL,
					    .qtype = t_model_types[ty],
					    .n_a = t_rand() % 9,
					    .a_ttl = 300,
					    .rcode = t_rand() % 10 == 0 ? DNS_RCODE_NXDOMAIN : 0};
			uint8_t buf[4096];
			if (t.rcode)
				t.n_a = 0;
			char text[256];
			assert_true(dnsmsg_name_to_text(m.names[i].wire, m.names[i].len, 0, text,
							sizeof(text)) > 0);
			t.qname = text;
			int len = t_build(buf, sizeof(buf), &t);
			struct cache_key k = t_key(&m.names[i], t.qtype, (uint8_t)f);
			uint64_t ev0 = t_stats(c).evictions;
			assert_int_equal(cache_put(c, &k, buf, (size_t)len, T0), 0);
			size_t key = t_model_key(i, ty, f);
			if (!m.present[key])
				m.count++;
			m.present[key] = true;
			uint64_t ev = t_stats(c).evictions - ev0;
			evicted += ev;
			if (ev) { /* the new one is there: it was put after the room was made */
				m.present[key] = false;
				m.count--;
				t_model_evicted(c, &m, ev);
				m.present[key] = true;
				m.count++;
			}
		} else if (what < 97) {
			bool pick_extra = t_rand() % 5 == 0;
			const struct t_name *n = pick_extra ? &extra[t_rand() % ARRAY_SIZE(extra)]
							    : &m.names[t_rand() % m.n_names];
			uint64_t want = 0;
			for (size_t i = 0; i < m.n_names; i++) {
				if (!dnsmsg_name_in_zone(m.names[i].lower, m.names[i].len, n->lower,
							 n->len))
					continue;
				for (size_t k = t_model_key(i, 0, 0); k < t_model_key(i + 1, 0, 0);
				     k++) {
					want += m.present[k];
					m.present[k] = false;
				}
			}
			assert_int_equal(cache_invalidate(c, n->wire, n->len), want);
			m.count -= want;
		} else if (what < 98) {
			t_model_check_all(c, &m);
		} else if (t_rand() % 20 == 0) {
			cache_clear(c);
			memset(m.present, 0, m.n_names * T_MODEL_TYPES * 4);
			m.count = 0;
		}
		struct cache_stats s = t_stats(c);
		assert_int_equal(s.entries, m.count);
		assert_true(s.bytes <= lim->max_bytes);
		if (op % 64 == 0)
			assert_int_equal(s.indexed, t_model_indexed(&m));
	}
	t_model_check_all(c, &m);
	assert_int_equal(cache_invalidate(c, (const uint8_t *)"", 1), m.count);
	struct cache_stats s = t_stats(c);
	assert_int_equal(s.entries, 0);
	assert_int_equal(s.indexed, 0);
	/* empty again: both tables at their minimum, no chunk held; only the chunk id table keeps
	 * its capacity (a power of two, 8 bytes an id) */
	uint64_t ids = (s.bytes - empty) / 8 + T_MIN_IDS;
	assert_int_equal(s.bytes, empty + (ids - T_MIN_IDS) * 8);
	assert_true((ids & (ids - 1)) == 0);
	t_model_free(&m);
	cache_free(c);
	return evicted;
}

static void
test_watch_model(void **state)
{
	(void)state;
	/* no eviction: the model is exact */
	struct cache_limits big = {.max_bytes = 64 << 20, .neg_ttl = 300};
	assert_int_equal(t_model_run(&big, 30000, 30, 4242), 0);
	/* a small budget and an entry cap: evictions (and their moves) between invalidations */
	struct cache_limits small = {.max_bytes = 64 * 1024, .max_entries = 400, .neg_ttl = 300};
	uint64_t evicted = t_model_run(&small, 20000, 3, 777);
	assert_true(evicted > 1000);
}

/* The same million external names beside 1,000 services' names in a watched cluster zone: a
 * service's change reads its own group (printed, and the reads asserted, not the time). */
static void
test_invalidate_1m_watched(void **state)
{
	(void)state;
	const char *env = getenv("CACHE_INVALIDATE_ENTRIES");
	uint64_t n = env ? strtoull(env, NULL, 10) : 1000000, reads;
	struct cache *c = t_cache(NULL);
	char name[96];
	double t0, t1;

	t_watch_kube(c);
	t_fill(c, n);
	for (int s = 0; s < 1000; s++) {
		snprintf(name, sizeof(name), "s%d.ns%d.svc.cluster.local", s, s % 10);
		for (uint8_t f = 0; f < 4; f++)
			t_put_name(c, name, DNS_TYPE_A, f);
		snprintf(name, sizeof(name), "_http._tcp.s%d.ns%d.svc.cluster.local", s, s % 10);
		t_put_name(c, name, DNS_TYPE_SRV, 0);
	}
	t0 = t_now_s();
	for (int s = 0; s < 100; s++) {
		snprintf(name, sizeof(name), "s%d.ns%d.svc.cluster.local", s, s % 10);
		assert_int_equal(t_inval(c, name, &reads), 5);
		assert_true(reads <= T_GROUP_READS);
	}
	t1 = t_now_s();
	assert_int_equal(t_stats(c).entries, n + 900 * 5);
	print_message("cache: invalidate a service at %llu external entries: %.2f us each\n",
		      (unsigned long long)n, (t1 - t0) * 1e6 / 100);
	cache_free(c);
}

/* Hit throughput over 10,000 entries: printed, not asserted. */
static void
test_hit_rate(void **state)
{
	(void)state;
	enum { N = 10000, ROUNDS = 100 };
	struct cache *c = t_cache(NULL);
	static struct t_name names[N];
	uint8_t out[512];
	char name[64];
	uint64_t hits = 0;

	t_fill(c, N);
	for (unsigned i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "h%07u.z%03u.bench.test", i, i % 1000);
		t_name(&names[i], name);
	}
	double t0 = t_now_s();
	for (unsigned r = 0; r < ROUNDS; r++)
		for (unsigned i = 0; i < N; i++) {
			struct cache_key k = t_key(&names[i], DNS_TYPE_A, 0);
			hits += cache_get(c, &k, T0 + r, 7, names[i].wire, out, sizeof(out)) > 0;
		}
	double dt = t_now_s() - t0;
	assert_int_equal(hits, (uint64_t)N * ROUNDS);
	print_message("cache: %.0f ns per hit (10,000 entries)\n", dt * 1e9 / (double)hits);
	cache_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hit_id_and_spelling),
		cmocka_unit_test(test_ttl_aging),
		cmocka_unit_test(test_expiry_exact),
		cmocka_unit_test(test_renewal),
		cmocka_unit_test(test_ttl_clamps),
		cmocka_unit_test(test_negative_soa),
		cmocka_unit_test(test_negative_no_soa),
		cmocka_unit_test(test_no_negcache),
		cmocka_unit_test(test_not_cached),
		cmocka_unit_test(test_hashed_lookup),
		cmocka_unit_test(test_lru_order),
		cmocka_unit_test(test_second_chance_bounded),
		cmocka_unit_test(test_expired_first),
		cmocka_unit_test(test_stale),
		cmocka_unit_test(test_stale_evictable),
		cmocka_unit_test(test_refresh_due),
		cmocka_unit_test(test_budget_eviction),
		cmocka_unit_test(test_bytes_exact),
		cmocka_unit_test(test_bytes_exact_arenas),
		cmocka_unit_test(test_arena_budget),
		cmocka_unit_test(test_stress_budget),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_replace),
		cmocka_unit_test(test_invalidate),
		cmocka_unit_test(test_invalidate_details),
		cmocka_unit_test(test_invalidate_1m),
		cmocka_unit_test(test_invalidate_1m_watched),
		cmocka_unit_test(test_watch_errors),
		cmocka_unit_test(test_watch_drops_by_owner),
		cmocka_unit_test(test_watch_group_moves),
		cmocka_unit_test(test_watch_nested),
		cmocka_unit_test(test_bytes_exact_indexed),
		cmocka_unit_test(test_watch_model),
		cmocka_unit_test(test_max_client_ttl),
		cmocka_unit_test(test_hit_rate),
		cmocka_unit_test(test_clear),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_bytes_per_entry),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
