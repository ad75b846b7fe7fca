/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * stats.h - the daemon's counters: plain integers bumped on the single event-loop thread by
 * the modules that see the events (server, query, loop detection), and the figures summed from
 * the upstreams' `metrics` operation. Pure: three readers format them, none calling another -
 * the CHAOS answers (chaos.c), the SIGUSR1 report (src/daemon/report.c) and /metrics
 * (src/daemon/metrics_text.c).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kubemasq/metrics.h"

struct router;
struct cache;

/* Query types counted one by one; every other type falls into the last slot ("other"), so the
 * label set of kubemasq_requests_by_type_total stays bounded whatever clients send. */
enum stats_qtype {
	STATS_QTYPE_A,
	STATS_QTYPE_AAAA,
	STATS_QTYPE_CNAME,
	STATS_QTYPE_PTR,
	STATS_QTYPE_SRV,
	STATS_QTYPE_TXT,
	STATS_QTYPE_MX,
	STATS_QTYPE_NS,
	STATS_QTYPE_SOA,
	STATS_QTYPE_HTTPS,
	STATS_QTYPE_SVCB,
	STATS_QTYPE_CAA,
	STATS_QTYPE_DS,
	STATS_QTYPE_DNSKEY,
	STATS_QTYPE_ANY,
	STATS_QTYPE_OTHER,
	STATS_QTYPE_COUNT
};

/* Response codes 0-16 (16: BADVERS) are counted by code; anything else in the last slot. */
#define STATS_RCODES 18

struct stats {
	uint64_t queries_udp; /* queries received, by transport */
	uint64_t queries_tcp;
	uint64_t forwarded;	   /* misses sent upstream (coalesced waiters not counted) */
	uint64_t answered_locally; /* --address, local-only, bogus-priv, domain-needed */
	uint64_t cache_hits;
	uint64_t coalesced;	      /* misses that joined an identical query in flight */
	uint64_t waiting;	      /* clients waiting for an upstream's answer now (a
					 * gauge: query.c keeps it) */
	uint64_t prefetches;	      /* --prefetch refreshes started */
	uint64_t refused_forward_max; /* over --dns-forward-max */
	uint64_t formerr;
	uint64_t notimp;
	uint64_t badvers;
	uint64_t dropped;     /* datagrams without a readable header, or responses */
	uint64_t servfail;    /* answered SERVFAIL because no upstream answered */
	uint64_t truncated;   /* answers sent with TC=1 for size */
	uint64_t tcp_refused; /* connections closed at --tcp-max-connections */
	uint64_t tcp_idle_closed;
	uint64_t send_errors;
	/* parsed queries by transport (0 UDP, 1 TCP) and type (enum stats_qtype) */
	uint64_t qtype[2][STATS_QTYPE_COUNT];
	uint64_t do_requests; /* parsed queries with the DO bit */
	/* Answers sent or handed to the front end, by where they came from (enum metrics_source:
	 * a cached answer counts for the source it was stored from) and rcode. Every figure
	 * kept per source is only kept per source: the totals are sums, made on a scrape. */
	uint64_t rcode[METRICS_SOURCES][STATS_RCODES];
	/* cache hits by the source of the cached answer and whether it is negative: indexed by
	 * the kind cache_get_tagged() reports, source * 2 + negative (query.c tags entries with
	 * their source) */
	uint64_t cache_hits_by[METRICS_SOURCES * 2];
	uint64_t chaos;		   /* CHAOS statistics queries answered (chaos.c) */
	uint64_t loop_probes_back; /* --dns-loop-detect probes that came back to us
						 * (each dropped): loop_detect.c */
	uint64_t servers_looping;  /* server addresses out of service now for that */
	/* Arrival to answer, by source. Answers made at once (cache hits, errors, CHAOS) count
	 * as 0 so that the hit path reads no extra clock; misses are measured per waiting
	 * client. */
	struct metrics_hist latency[METRICS_SOURCES];
	/* Sizes of the queries received (every one counted in queries_udp/tcp) and of the
	 * answers sent, by transport (0 UDP, 1 TCP). */
	struct metrics_size_hist request_size[2];
	struct metrics_size_hist response_size[2];
};

/* The slot of query type `t` (a switch: no table to miss in the cache). */
static inline enum stats_qtype
stats_qtype_slot(uint16_t t)
{
	/* clang-format off */
	switch (t) {
	case 1: return STATS_QTYPE_A;
	case 28: return STATS_QTYPE_AAAA;
	case 5: return STATS_QTYPE_CNAME;
	case 12: return STATS_QTYPE_PTR;
	case 33: return STATS_QTYPE_SRV;
	case 16: return STATS_QTYPE_TXT;
	case 15: return STATS_QTYPE_MX;
	case 2: return STATS_QTYPE_NS;
	case 6: return STATS_QTYPE_SOA;
	case 65: return STATS_QTYPE_HTTPS;
	case 64: return STATS_QTYPE_SVCB;
	case 257: return STATS_QTYPE_CAA;
	case 43: return STATS_QTYPE_DS;
	case 48: return STATS_QTYPE_DNSKEY;
	case 255: return STATS_QTYPE_ANY;
	default: return STATS_QTYPE_OTHER;
	}
	/* clang-format on */
}

/* Count one answer from `src` (enum metrics_source) with `rcode` (the full, extended code)
 * that took `us` microseconds. */
static inline void
stats_answered(struct stats *s, unsigned src, unsigned rcode, uint64_t us)
{
	s->rcode[src][rcode < STATS_RCODES - 1 ? rcode : STATS_RCODES - 1]++;
	metrics_hist_observe(&s->latency[src], us);
}

/* The label of a source (enum metrics_source): "forward", "cluster", "local". */
const char *stats_source_label(unsigned src);

/* The label of a query type slot ("A", "AAAA", ..., "other"), and of a response code slot
 * ("NOERROR", ..., "BADVERS", "RCODE11", "other"): static strings. */
const char *stats_qtype_label(enum stats_qtype slot);
const char *stats_rcode_label(unsigned slot);

/* dnsmasq's "cache size" figure (SIGUSR1, cachesize.bind): the --cache-size given, or without
 * an entry cap the entries held; 0 when caching is off (cache NULL). */
uint64_t stats_cache_size(const struct cache *cache, unsigned cache_size);

/* One server's figures summed over every upstream instance that names it (a forwarder address
 * bound to several zones is one server, as in dnsmasq's servers.bind). */
struct stats_server_sum {
	char upstream[16];
	char server[64];
	uint64_t queries, failures;
	bool has_latency;
	struct metrics_hist latency;
};

/* At most this many distinct servers are listed; more are folded into nothing (counted). */
#define STATS_MAX_SERVERS 256

/*
 * Collect the servers of every upstream (the `metrics` operation), or only of the upstreams
 * named `only` ("dns"; NULL: all), into out[0..cap), merging duplicates. Returns how many
 * entries were filled; *dropped (may be NULL) gets how many server reports did not fit.
 */
size_t stats_collect_servers(struct router *router, const char *only, struct stats_server_sum *out,
			     size_t cap, size_t *dropped);
