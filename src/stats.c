/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * stats.c - the SIGUSR1 report: dnsmasq's lines first, in dnsmasq's wording so existing log
 * parsers keep working (cache size and re-used insertions, queries forwarded and answered
 * locally, one line per upstream server), then kubemasq's own totals.
 */
#include <inttypes.h>
#include <time.h>

#include "kubemasq/log.h"
#include "kubemasq/upstream.h"
#include "cache.h"
#include "router.h"
#include "stats.h"

static void
stats_line(void *ctx UNUSED, const char *line)
{
	log_info("%s", line);
}

static void
stats_upstream(struct upstream *u, void *ctx)
{
	if (u->ops->stats)
		u->ops->stats(u, stats_line, ctx);
}

void
stats_report(const struct stats *s, const struct cache *cache, unsigned cache_size,
	     struct router *router)
{
	struct cache_stats cs = { 0 };

	if (cache)
		cache_get_stats(cache, &cs);
	log_info("time %lu", (unsigned long)time(NULL));
	log_info("cache size %u, %" PRIu64 "/%" PRIu64
		 " cache insertions re-used unexpired cache entries.",
		 cache ? cache_size : 0, cs.evictions, cs.insertions);
	log_info("queries forwarded %" PRIu64 ", queries answered locally %" PRIu64, s->forwarded,
		 s->answered_locally + s->cache_hits);
	if (router)
		router_foreach(router, stats_upstream, NULL);
	log_info("kubemasq cache: %" PRIu64 " bytes used of %" PRIu64 ", entries %" PRIu64
		 ", hits %" PRIu64 ", misses %" PRIu64 ", evictions %" PRIu64
		 ", expired %" PRIu64 ", negative entries %" PRIu64,
		 cs.bytes, cs.max_bytes, cs.entries, cs.hits, cs.misses, cs.evictions, cs.expired,
		 cs.negative_entries);
	log_info("kubemasq queries: udp %" PRIu64 ", tcp %" PRIu64 ", coalesced %" PRIu64
		 ", refused over dns-forward-max %" PRIu64 ", servfail %" PRIu64
		 ", truncated %" PRIu64,
		 s->queries_udp, s->queries_tcp, s->coalesced, s->refused_forward_max, s->servfail,
		 s->truncated);
	log_info("kubemasq errors: formerr %" PRIu64 ", notimp %" PRIu64 ", badvers %" PRIu64
		 ", dropped %" PRIu64 ", send errors %" PRIu64 ", tcp refused %" PRIu64
		 ", tcp idle closed %" PRIu64,
		 s->formerr, s->notimp, s->badvers, s->dropped, s->send_errors, s->tcp_refused,
		 s->tcp_idle_closed);
}
