/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_upstream.h - the query engine of the DNS targets, as setup.c wires it but with an
 * upstream double: a router whose only zone "." goes to an upstream that holds every request
 * until the target completes it (fuzz_up_complete) - with a reply built here or with bytes from
 * the input. Answers sent late go through fuzz_env's send function to a check the target sets.
 * Everything is made and freed per input, so each input starts from the same state and a leak
 * shows at the end of the input that caused it.
 */
#pragma once

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "kubemasq/dnsmsg.h"
#include "kubemasq/upstream.h"
#include "lib/cache.h"
#include "lib/config.h"
#include "lib/router.h"
#include "lib/stats.h"
#include "daemon/query.h"
#include "fuzz_util.h"

#define FUZZ_UP_MAX 8

struct fuzz_up {
	struct upstream base;
	struct upstream_req *reqs[FUZZ_UP_MAX];
	unsigned n;
};

static inline int
fuzz_up_resolve(struct upstream *u, struct upstream_req *req)
{
	struct fuzz_up *f = (struct fuzz_up *)u;

	if (f->n == FUZZ_UP_MAX)
		return -EBUSY;
	f->reqs[f->n++] = req;
	return 0;
}

static inline void
fuzz_up_cancel(struct upstream *u, struct upstream_req *req)
{
	struct fuzz_up *f = (struct fuzz_up *)u;

	for (unsigned i = 0; i < f->n; i++)
		if (f->reqs[i] == req) {
			f->reqs[i] = f->reqs[--f->n];
			return;
		}
	fuzz_fail("cancel of a request the upstream does not hold");
}

static inline void
fuzz_up_free(struct upstream *u)
{
	free(u);
}

static const struct upstream_ops fuzz_up_ops = {
	.name = "fuzz",
	.resolve = fuzz_up_resolve,
	.cancel = fuzz_up_cancel,
	.free = fuzz_up_free,
};

/* The oldest held request's completion with reply[0..len) (status 0) or an error status. */
static inline void
fuzz_up_complete(struct fuzz_up *f, int status, const uint8_t *reply, size_t len)
{
	struct upstream_req *req = f->reqs[0];

	f->reqs[0] = f->reqs[--f->n];
	req->done(req, status, reply, len);
}

/*
 * A reply to the oldest held request as an upstream would send it: `n` records of the question's
 * own type (16 bytes of rdata each, TTL `ttl`), so that many of them outgrow a UDP answer.
 */
static inline void
fuzz_up_answer(struct fuzz_up *f, unsigned n, uint32_t ttl)
{
	static uint8_t buf[65535];
	static const uint8_t rdata[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
	struct upstream_req *req = f->reqs[0];
	struct dnsmsg_builder b;
	int len;

	dnsmsg_builder_init(&b, buf, sizeof(buf), 4242, &req->q, true, req->cd, false,
			    DNS_RCODE_NOERROR);
	for (unsigned i = 0; i < n; i++)
		dnsmsg_builder_rr(&b, DNS_SECTION_ANSWER, NULL, 0, req->q.qtype, req->q.qclass, ttl,
				  rdata, sizeof(rdata));
	len = dnsmsg_builder_finish(&b);
	if (len < 0)
		fuzz_fail("the double's reply does not fit: %d", len);
	fuzz_up_complete(f, 0, buf, (size_t)len);
}

struct fuzz_env {
	struct config cfg;
	struct router *router;
	struct fuzz_up *up;
	struct cache *cache;
	struct stats stats;
	struct query_engine *qe;
};

/* The engine over `base` (borrowed, outlives it); with_cache false: --cache-size=0. `argv`
 * (NULL-terminated, or NULL for the defaults) is the daemon's command line. */
static inline void
fuzz_env_init(struct fuzz_env *e, struct event_base *base, bool with_cache, char **argv)
{
	struct cache_limits lim = {.max_bytes = 1 << 20, .neg_ttl = 60};
	char err[512];
	int argc = 0;

	memset(e, 0, sizeof(*e));
	if (!argv) {
		config_init(&e->cfg);
	} else {
		while (argv[argc])
			argc++;
		if (config_parse(&e->cfg, argc, argv, NULL, stdout, err, sizeof(err)) != 0)
			fuzz_fail("the command line does not parse: %s", err);
	}
	e->router = router_new();
	e->up = calloc(1, sizeof(*e->up));
	e->cache = with_cache ? cache_new(&lim) : NULL;
	if (!e->router || !e->up || (with_cache && !e->cache))
		fuzz_fail("out of memory setting up");
	e->up->base.ops = &fuzz_up_ops;
	if (router_own(e->router, &e->up->base) < 0 ||
	    router_bind(e->router, ".", &e->up->base) < 0)
		fuzz_fail("router set-up failed");
	e->qe = query_engine_new(base, &e->cfg, e->router, e->cache, &e->stats);
	if (!e->qe)
		fuzz_fail("query_engine_new failed");
	e->up->base.hooks = query_engine_hooks(e->qe);
}

static inline void
fuzz_env_done(struct fuzz_env *e)
{
	if (e->up->n)
		fuzz_fail("%u requests still held at the end of the input", e->up->n);
	if (query_engine_pending(e->qe))
		fuzz_fail("%zu queries pending with no request held", query_engine_pending(e->qe));
	query_engine_free(e->qe);
	cache_free(e->cache);
	router_free(e->router);
	config_done(&e->cfg);
}
