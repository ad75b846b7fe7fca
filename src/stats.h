/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * stats.h - the daemon's counters and the SIGUSR1 report in dnsmasq's wording, followed by
 * kubemasq's own lines. Counters are plain integers bumped on the single event-loop thread.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct router;
struct cache;

struct stats {
	uint64_t queries_udp;		/* queries received, by transport */
	uint64_t queries_tcp;
	uint64_t forwarded;		/* misses sent upstream (coalesced waiters not counted) */
	uint64_t answered_locally;	/* --address, local-only, bogus-priv, domain-needed */
	uint64_t cache_hits;
	uint64_t coalesced;		/* misses that joined an identical query in flight */
	uint64_t refused_forward_max;	/* over --dns-forward-max */
	uint64_t formerr;
	uint64_t notimp;
	uint64_t badvers;
	uint64_t dropped;		/* datagrams without a readable header, or responses */
	uint64_t servfail;		/* answered SERVFAIL because no upstream answered */
	uint64_t truncated;		/* answers sent with TC=1 for size */
	uint64_t tcp_refused;		/* connections closed at --tcp-max-connections */
	uint64_t tcp_idle_closed;
	uint64_t send_errors;
};

/* Log the report (SIGUSR1): dnsmasq's cache and forwarding lines, each upstream's server
 * lines, then kubemasq's totals; with dump_cache (--log-queries) one line per cache entry
 * after them (format in stats.c). `cache` may be NULL. */
void stats_report(const struct stats *s, const struct cache *cache, unsigned cache_size,
		  bool dump_cache, struct router *router);
