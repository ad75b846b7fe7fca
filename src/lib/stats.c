/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * stats.c - the counters' labels and the figures summed from the upstreams (stats.h): pure,
 * read by the CHAOS answers (chaos.c), the SIGUSR1 report (src/daemon/report.c) and /metrics
 * (src/daemon/metrics_text.c), none of which calls another.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "kubemasq/upstream.h"
#include "lib/cache.h"
#include "lib/router.h"
#include "lib/stats.h"

const char *
stats_source_label(unsigned src)
{
	static const char *const names[METRICS_SOURCES] = {
		[METRICS_SOURCE_FORWARD] = "forward",
		[METRICS_SOURCE_CLUSTER] = "cluster",
		[METRICS_SOURCE_LOCAL] = "local",
	};

	return src < METRICS_SOURCES ? names[src] : "local";
}

const char *
stats_qtype_label(enum stats_qtype slot)
{
	static const char *const names[STATS_QTYPE_COUNT] = {
		[STATS_QTYPE_A] = "A",	       [STATS_QTYPE_AAAA] = "AAAA",
		[STATS_QTYPE_CNAME] = "CNAME", [STATS_QTYPE_PTR] = "PTR",
		[STATS_QTYPE_SRV] = "SRV",     [STATS_QTYPE_TXT] = "TXT",
		[STATS_QTYPE_MX] = "MX",       [STATS_QTYPE_NS] = "NS",
		[STATS_QTYPE_SOA] = "SOA",     [STATS_QTYPE_HTTPS] = "HTTPS",
		[STATS_QTYPE_SVCB] = "SVCB",   [STATS_QTYPE_CAA] = "CAA",
		[STATS_QTYPE_DS] = "DS",       [STATS_QTYPE_DNSKEY] = "DNSKEY",
		[STATS_QTYPE_ANY] = "ANY",     [STATS_QTYPE_OTHER] = "other",
	};

	return (unsigned)slot < STATS_QTYPE_COUNT ? names[slot] : "other";
}

const char *
stats_rcode_label(unsigned slot)
{
	static const char *const names[STATS_RCODES] = {
		"NOERROR",  "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP",  "REFUSED",
		"YXDOMAIN", "YXRRSET", "NXRRSET",  "NOTAUTH",  "NOTZONE", "DSOTYPENI",
		"RCODE12",  "RCODE13", "RCODE14",  "RCODE15",  "BADVERS", "other",
	};

	return slot < STATS_RCODES ? names[slot] : "other";
}

uint64_t
stats_cache_size(const struct cache *cache, unsigned cache_size)
{
	struct cache_stats cs;

	if (!cache)
		return 0;
	if (cache_size)
		return cache_size;
	cache_get_stats(cache, &cs);
	return cs.entries;
}

struct stats_collect {
	const char *only; /* upstream name, or NULL for all */
	struct stats_server_sum *out;
	size_t cap, n, dropped;
};

static void
stats_collect_one(void *ctx, const struct upstream_server_metrics *m)
{
	struct stats_collect *c = ctx;
	struct stats_server_sum *s = NULL;

	if (c->only && strcmp(m->upstream, c->only) != 0)
		return;
	for (size_t i = 0; i < c->n && !s; i++)
		if (strcmp(c->out[i].upstream, m->upstream) == 0 &&
		    strcmp(c->out[i].server, m->server) == 0)
			s = &c->out[i];
	if (!s) {
		if (c->n == c->cap) {
			c->dropped++;
			return;
		}
		s = &c->out[c->n++];
		memset(s, 0, sizeof(*s));
		snprintf(s->upstream, sizeof(s->upstream), "%s", m->upstream);
		snprintf(s->server, sizeof(s->server), "%s", m->server);
	}
	s->queries += m->queries;
	s->failures += m->failures;
	if (m->latency) {
		s->has_latency = true;
		for (size_t i = 0; i <= METRICS_HIST_BUCKETS; i++)
			s->latency.bucket[i] += m->latency->bucket[i];
		s->latency.count += m->latency->count;
		s->latency.sum_us += m->latency->sum_us;
	}
}

static void
stats_collect_upstream(struct upstream *u, void *ctx)
{
	if (u->ops->metrics)
		u->ops->metrics(u, stats_collect_one, ctx);
}

size_t
stats_collect_servers(struct router *router, const char *only, struct stats_server_sum *out,
		      size_t cap, size_t *dropped)
{
	struct stats_collect c = {.only = only, .out = out, .cap = cap};

	if (router)
		router_foreach(router, stats_collect_upstream, &c);
	if (dropped)
		*dropped = c.dropped;
	return c.n;
}
