/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * chaos.h - dnsmasq's statistics over DNS: TXT queries in class CHAOS for hits.bind,
 * misses.bind, insertions.bind, evictions.bind, cachesize.bind, servers.bind (and
 * version.bind), answered as dnsmasq 2.90 answers them, so kube-dns's metrics sidecar and
 * existing dashboards keep working against kubemasq.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct dnsmsg_query;
struct cache;
struct router;
struct stats;

/* What the answers read; all borrowed. cache may be NULL (--cache-size=0). cache_size is the
 * --cache-size value (0: unset). */
struct chaos_sources {
	const struct stats *stats;
	const struct cache *cache;
	unsigned cache_size;
	struct router *router;
};

/*
 * Answer the CHAOS query `dq` (its lower-cased name in `lname`) into out[0..cap), without OPT:
 *   - a known name, type TXT or ANY: NOERROR, AA, one TXT record, class CH, TTL 0;
 *     hits.bind is the answers given locally (cache hits included), misses.bind the queries
 *     forwarded, servers.bind one string "IP#PORT QUERIES FAILURES" per forwarder server;
 *   - any other name under bind. or server., or another type: NOTIMP, no AA (as dnsmasq);
 * and return the length. -ENOENT: not ours (another class, or a CHAOS name outside bind. and
 * server., which dnsmasq forwards). -ENOSPC: cap too small.
 */
int chaos_answer(const struct chaos_sources *src, const struct dnsmsg_query *dq,
		 const uint8_t *lname, uint8_t *out, size_t cap);
