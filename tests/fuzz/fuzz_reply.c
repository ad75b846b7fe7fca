/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_reply.c - libFuzzer target: an upstream's reply, from the check that lets it in to the
 * cache that keeps it. The input is a client query and the upstream's reply:
 *   [2 bytes: query length N, big-endian][N bytes: query][the rest: the reply]
 * (a query that does not parse is replaced by "www.example.com A"). The query goes through the
 * engine to the upstream double; the reply goes through dnsmsg_check_reply() as the forwarder
 * does it (with the reply's own ID: the ID match is not what is being fuzzed) and, if let in,
 * completes the request: query.c strips its OPT, caches it and answers the client. Then the
 * same query again (a cache hit, or a new miss answered SERVFAIL), and the stripped reply alone
 * through the cache with a fake clock: put at t0, got at t0, half-way, at expiry and past it,
 * listed, invalidated.
 * Oracles: every answer to the client is a walkable response with the client's ID and a
 * question that matches its own; a cache hit never shows a TTL above the one stored.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "fuzz_upstream.h"
#include "fuzz_util.h"

static struct event_base *fuzz_base;
static struct dnsmsg_query fuzz_dq;
static uint8_t fuzz_lname[DNS_MAX_NAME];

/* The answer must be for the client's question, spelled as the client spelled it. */
static void
fuzz_reply_check(const uint8_t *pkt, size_t len, const char *what)
{
	int r;

	fuzz_check_answer(pkt, len, what);
	if (dnsmsg_id(pkt) != fuzz_dq.id)
		fuzz_fail("%s: ID %u for a query with ID %u", what, dnsmsg_id(pkt), fuzz_dq.id);
	if (dnsmsg_qdcount(pkt) == 1 &&
	    (r = dnsmsg_check_reply(pkt, len, fuzz_dq.id, &fuzz_dq.q)) < 0)
		fuzz_fail("%s: the question is not the client's (%d)", what, r);
}

static int
fuzz_reply_send(const struct query_origin *o, const uint8_t *pkt, size_t len)
{
	(void)o;
	fuzz_reply_check(pkt, len, "late answer");
	return 0;
}

/* The highest TTL of any record but OPT, or 0. */
static uint32_t
fuzz_reply_max_ttl(const uint8_t *pkt, size_t len)
{
	struct dnsmsg_iter it;
	struct dnsmsg_rr rr;
	uint32_t max = 0;

	if (dnsmsg_iter_init(&it, pkt, len) < 0)
		return 0;
	while (dnsmsg_iter_next(&it, &rr) == 0)
		if (rr.type != DNS_TYPE_OPT && rr.ttl > max)
			max = rr.ttl;
	return max;
}

static void
fuzz_reply_foreach(void *ctx, const struct cache_key *key, uint32_t ttl_left, const uint8_t *reply,
		   size_t len)
{
	(void)ctx;
	(void)key;
	(void)ttl_left;
	fuzz_check_answer(reply, len, "cache_foreach image");
}

/* The stripped reply through a cache of its own, with time as a parameter. */
static void
fuzz_reply_cache(const uint8_t *reply, size_t len)
{
	static uint8_t img[65535], out[65535];
	struct cache_limits lim = {.max_bytes = 1 << 20, .neg_ttl = 60, .max_ttl = 86400};
	struct cache_key key = {
		.qname = fuzz_lname,
		.qname_len = fuzz_dq.q.qname_len,
		.qtype = fuzz_dq.q.qtype,
		.qclass = fuzz_dq.q.qclass,
	};
	const msec_t t0 = 1000000;
	msec_t at[] = {t0, t0 + 1000, 0, 0, 0};
	struct cache *c;
	uint32_t ttl, life;
	int n;

	memcpy(img, reply, len);
	n = dnsmsg_strip_opt(img, len);
	if (n <= 0)
		return;
	ttl = fuzz_reply_max_ttl(img, (size_t)n);
	life = ttl < lim.max_ttl ? ttl : lim.max_ttl;
	at[2] = t0 + (msec_t)life * 500;
	at[3] = t0 + (msec_t)life * 1000;
	at[4] = t0 + (msec_t)life * 1000 + 1000;
	if (!(c = cache_new(&lim)))
		fuzz_fail("cache_new failed");
	if (cache_put(c, &key, img, (size_t)n, t0) == 0) {
		for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
			int r = cache_get(c, &key, at[i], fuzz_dq.id, fuzz_dq.q.qname, out,
					  sizeof(out));

			if (r > 0) {
				fuzz_reply_check(out, (size_t)r, "cache_get");
				if (fuzz_reply_max_ttl(out, (size_t)r) > ttl)
					fuzz_fail("cache_get: a TTL above the stored %u", ttl);
			}
		}
		cache_foreach(c, t0, fuzz_reply_foreach, NULL);
		cache_invalidate(c, fuzz_dq.q.qname, fuzz_dq.q.qname_len);
		if (cache_get(c, &key, t0, fuzz_dq.id, fuzz_dq.q.qname, out, sizeof(out)) !=
		    -ENOENT)
			fuzz_fail("cache_get: a hit after its name was invalidated");
	}
	cache_free(c);
}

static void
fuzz_reply_ask(struct fuzz_env *e, const uint8_t *q, size_t qlen, const uint8_t *reply, size_t len)
{
	static uint8_t out[65535];
	struct query_origin o = {.send = fuzz_reply_send, .fd = -1};
	size_t n = query_handle(e->qe, q, qlen, &o, out, sizeof(out));

	if (n)
		fuzz_reply_check(out, n, "answer");
	while (e->up->n) {
		const struct upstream_req *req = e->up->reqs[0];

		if (len >= DNS_HDR_LEN &&
		    dnsmsg_check_reply(reply, len, dnsmsg_id(reply), &req->q) == 0)
			fuzz_up_complete(e->up, 0, reply, len);
		else
			fuzz_up_complete(e->up, -EIO, NULL, 0);
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet();
	fuzz_base = event_base_new();
	if (!fuzz_base)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* www.example.com A IN, ID 0x1234, RD */
	/* clang-format off */
	static const uint8_t def[] = { 0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
				       3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e',
				       3, 'c', 'o', 'm', 0, 0, 1, 0, 1 };
	/* clang-format on */
	const uint8_t *q = def, *reply;
	size_t qlen = sizeof(def), len;
	struct fuzz_env e;

	if (size < 2 || (size_t)dnsmsg_get16(data) > size - 2)
		return -1;
	if (dnsmsg_parse_query(data + 2, dnsmsg_get16(data), &fuzz_dq) == 0) {
		q = data + 2;
		qlen = dnsmsg_get16(data);
	} else if (dnsmsg_parse_query(def, sizeof(def), &fuzz_dq) != 0) {
		fuzz_fail("the default query does not parse");
	}
	reply = data + 2 + dnsmsg_get16(data);
	len = size - 2 - dnsmsg_get16(data);
	dnsmsg_name_lower(fuzz_lname, fuzz_dq.q.qname, fuzz_dq.q.qname_len);

	fuzz_env_init(&e, fuzz_base, true, NULL);
	fuzz_reply_ask(&e, q, qlen, reply, len);
	fuzz_reply_ask(&e, q, qlen, reply, len);
	fuzz_env_done(&e);
	if (len >= DNS_HDR_LEN && dnsmsg_check_reply(reply, len, dnsmsg_id(reply), &fuzz_dq.q) == 0)
		fuzz_reply_cache(reply, len);
	return 0;
}
