/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * chaos.c - the CHAOS-class statistics names dnsmasq answers. What each one counts follows
 * dnsmasq's cache_make_stat(): hits.bind is the queries answered locally (cache hits, local
 * answers and these CHAOS answers themselves, counted after the answer is made), misses.bind
 * the queries forwarded, insertions.bind and evictions.bind the cache's insertions and the
 * unexpired entries it evicted for room, cachesize.bind the --cache-size given (the entries
 * held when only the byte budget limits the cache, as the SIGUSR1 line), servers.bind one
 * string per forwarder server with the requests sent to it and its failures.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kubemasq/dnsmsg.h"
#include "lib/cache.h"
#include "lib/chaos.h"
#include "lib/stats.h"

enum chaos_name {
	CHAOS_HITS,
	CHAOS_MISSES,
	CHAOS_INSERTIONS,
	CHAOS_EVICTIONS,
	CHAOS_CACHESIZE,
	CHAOS_SERVERS,
	CHAOS_VERSION,
	CHAOS_COUNT
};

/* The first label of each name under "bind.", as wire labels. */
static const char *const chaos_labels[CHAOS_COUNT] = {
	[CHAOS_HITS] = "\4hits",
	[CHAOS_MISSES] = "\6misses",
	[CHAOS_INSERTIONS] = "\12insertions",
	[CHAOS_EVICTIONS] = "\11evictions",
	[CHAOS_CACHESIZE] = "\11cachesize",
	[CHAOS_SERVERS] = "\7servers",
	[CHAOS_VERSION] = "\7version",
};

/* Up to this much TXT data for servers.bind: a few dozen servers; the rest are left out. */
#define CHAOS_TXT_MAX 4096
#define CHAOS_TXT_MORE 48 /* room kept for "(N more servers not listed)" */

static bool
chaos_under(const uint8_t *lname, size_t len, const char *zone, size_t zlen)
{
	return dnsmsg_name_in_zone(lname, len, (const uint8_t *)zone, zlen);
}

static int
chaos_lookup(const uint8_t *lname, size_t len)
{
	for (int i = 0; i < CHAOS_COUNT; i++) {
		size_t l = strlen(chaos_labels[i]);

		if (len == l + 6 && memcmp(lname, chaos_labels[i], l) == 0 &&
		    memcmp(lname + l, "\4bind", 6) == 0)
			return i;
	}
	return -ENOENT;
}

/* Append one <character-string> to rdata; false when it does not fit. */
static bool
chaos_txt_string(uint8_t *rdata, size_t *len, const char *s)
{
	size_t n = strlen(s);

	if (n > 255 || *len + 1 + n > CHAOS_TXT_MAX)
		return false;
	rdata[(*len)++] = (uint8_t)n;
	memcpy(rdata + *len, s, n);
	*len += n;
	return true;
}

static size_t
chaos_servers(struct router *router, uint8_t *rdata)
{
	struct stats_server_sum *sums = calloc(STATS_MAX_SERVERS, sizeof(*sums));
	size_t n, len = 0, unlisted = 0;
	bool full = false;
	char line[128];

	if (!sums)
		return 0;
	/* dnsmasq lists its --server addresses only */
	n = stats_collect_servers(router, "dns", sums, STATS_MAX_SERVERS, &unlisted);
	for (size_t i = 0; i < n; i++) {
		snprintf(line, sizeof(line), "%s %" PRIu64 " %" PRIu64, sums[i].server,
			 sums[i].queries, sums[i].failures);
		/* keep room to say how many did not fit */
		full = full || len + 1 + strlen(line) > CHAOS_TXT_MAX - CHAOS_TXT_MORE;
		if (full)
			unlisted++;
		else
			chaos_txt_string(rdata, &len, line);
	}
	free(sums);
	if (unlisted) {
		snprintf(line, sizeof(line), "(%zu more servers not listed)", unlisted);
		chaos_txt_string(rdata, &len, line);
	}
	return len;
}

/* The TXT data of `which`; returns its length. */
static size_t
chaos_rdata(const struct chaos_sources *src, int which, uint8_t *rdata)
{
	struct cache_stats cs = {0};
	const struct stats *s = src->stats;
	uint64_t v = 0;
	char num[32];
	size_t len = 0;

	if (which == CHAOS_SERVERS)
		return chaos_servers(src->router, rdata);
	if (which == CHAOS_VERSION) {
		chaos_txt_string(rdata, &len, "kubemasq-" KUBEMASQ_VERSION);
		return len;
	}
	if (src->cache)
		cache_get_stats(src->cache, &cs);
	if (which == CHAOS_HITS)
		v = s->answered_locally + s->cache_hits;
	else if (which == CHAOS_MISSES)
		v = s->forwarded;
	else if (which == CHAOS_INSERTIONS)
		v = cs.insertions;
	else if (which == CHAOS_EVICTIONS)
		v = cs.evictions;
	else
		v = stats_cache_size(src->cache, src->cache_size);
	snprintf(num, sizeof(num), "%" PRIu64, v);
	chaos_txt_string(rdata, &len, num);
	return len;
}

int
chaos_answer(const struct chaos_sources *src, const struct dnsmsg_query *dq, const uint8_t *lname,
	     uint8_t *out, size_t cap)
{
	struct dnsmsg_builder b;
	uint8_t *rdata;
	size_t rdlen;
	int which, r;

	if (dq->q.qclass != DNS_CLASS_CH)
		return -ENOENT;
	if (!chaos_under(lname, dq->q.qname_len, "\4bind", 6) &&
	    !chaos_under(lname, dq->q.qname_len, "\6server", 8))
		return -ENOENT;
	which = chaos_lookup(lname, dq->q.qname_len);
	if (which < 0 || (dq->q.qtype != DNS_TYPE_TXT && dq->q.qtype != DNS_TYPE_ANY)) {
		dnsmsg_builder_init(&b, out, cap, dq->id, &dq->q, dq->rd, dq->cd, false,
				    DNS_RCODE_NOTIMP);
		return dnsmsg_builder_finish(&b);
	}
	rdata = malloc(CHAOS_TXT_MAX);
	if (!rdata)
		return -ENOMEM;
	rdlen = chaos_rdata(src, which, rdata);
	dnsmsg_builder_init(&b, out, cap, dq->id, &dq->q, dq->rd, dq->cd, true, DNS_RCODE_NOERROR);
	dnsmsg_builder_rr(&b, DNS_SECTION_ANSWER, NULL, 0, DNS_TYPE_TXT, DNS_CLASS_CH, 0, rdata,
			  rdlen);
	free(rdata);
	r = dnsmsg_builder_finish(&b);
	return r;
}
