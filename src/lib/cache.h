/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cache.h - the answer cache: whole DNS replies keyed by (lower-cased qname, qtype, qclass,
 * DO, CD), under a byte budget that counts everything the cache holds, with LRU eviction,
 * TTL aging and RFC 2308 negative caching.
 *
 * Pure: no I/O, no clock (time is a parameter), no logging above debug. Replies are stored
 * without their OPT record (query.c strips it and adds the client's own). A hit copies the
 * stored image, writes the client's ID and spelling of the question, and ages every TTL; it
 * does not allocate and does not call ldns.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kubemasq/defs.h"

struct cache;

struct cache_limits {
	uint64_t max_bytes;	 /* the budget, overhead included; never exceeded */
	unsigned max_entries;	 /* 0 = no entry cap (only the byte budget) */
	uint32_t min_ttl;	 /* --min-cache-ttl */
	uint32_t max_ttl;	 /* --max-cache-ttl, 0 = no cap */
	uint32_t neg_ttl;	 /* --neg-ttl: negatives without SOA, 0 = not cached */
	uint32_t max_neg_ttl;	 /* --max-neg-ttl */
	bool no_negcache;	 /* --no-negcache */
	uint32_t max_client_ttl; /* --max-ttl: caps the TTLs a hit shows, 0 = no cap; the
					 * entry itself lives its full lifetime (as dnsmasq) */
	bool stale;		 /* --use-stale-cache: keep expired entries servable */
	uint32_t stale_max;	 /* for this many seconds past expiry, 0 = no limit */
	uint32_t stale_ttl;	 /* --stale-ttl: the TTL every stale answer shows */
	bool refresh;		 /* --prefetch: flag hits in an entry's last tenth */
};

/* Key flags. */
#define CACHE_F_DO 0x1
#define CACHE_F_CD 0x2

struct cache_key {
	const uint8_t *qname; /* lower-cased wire name */
	uint16_t qname_len;
	uint16_t qtype;
	uint16_t qclass;
	uint8_t flags; /* CACHE_F_* */
};

/* NULL on allocation failure; nothing is preallocated beyond a small table. */
struct cache *cache_new(const struct cache_limits *lim);
void cache_free(struct cache *c); /* NULL-safe */

/*
 * Look up `key` at time `now`. On a hit, writes the reply into out[0..cap): ID `id`, the
 * question name spelled as `client_qname` (same length as key->qname), every TTL reduced by the
 * seconds since insertion and capped by max_client_ttl, and returns its length; the entry
 * becomes most recently used.
 * -ENOENT on a miss or an expired entry (which is then freed, unless cache_put_renewable()
 * stored it and it is renewed), -ESTALE (with limits.stale) for an expired entry still within
 * its stale limit: kept, not copied, counted as a miss (cache_get_stale() serves it), -ENOSPC
 * when cap is too small.
 * Allocates nothing.
 */
int cache_get(struct cache *c, const struct cache_key *key, msec_t now, uint16_t id,
	      const uint8_t *client_qname, uint8_t *out, size_t cap);

/*
 * The index hash of `key` (0 for a key cache_get() would refuse), for cache_prefetch() and
 * cache_get_hashed(): a caller with a batch of lookups hashes them all first.
 */
uint32_t cache_key_hash(const struct cache *c, const struct cache_key *key);

/*
 * Start loading what a lookup of a key with this hash will read, so that a batch of lookups
 * waits for memory once rather than once per lookup: stage 0 the index bucket; stage 1, once
 * the bucket has had time to arrive, the first record of its chain. A hint only: it changes
 * nothing, and any hash is safe.
 */
void cache_prefetch(const struct cache *c, uint32_t hash, unsigned stage);

/* cache_get() with the key's hash from cache_key_hash(). */
int cache_get_hashed(struct cache *c, const struct cache_key *key, uint32_t hash, msec_t now,
		     uint16_t id, const uint8_t *client_qname, uint8_t *out, size_t cap);

/*
 * Tags: a number 0..CACHE_TAGS-1 the caller stores with an entry (cache_put_tagged) and gets
 * back with each hit, for what the cache need not understand (query.c keeps where an answer
 * came from, for the metrics). It costs the entry nothing: it lives in spare flag bits.
 */
#define CACHE_TAGS 4

/*
 * cache_get_hashed() that also reports, on a hit, the entry's kind in *kind: its tag times 2,
 * plus 1 (CACHE_KIND_NEGATIVE) for an NXDOMAIN or NODATA entry. One number, so that the caller
 * can count the hit in a table of CACHE_TAGS * 2 counters with one increment.
 */
int cache_get_tagged(struct cache *c, const struct cache_key *key, uint32_t hash, msec_t now,
		     uint16_t id, const uint8_t *client_qname, uint8_t *out, size_t cap,
		     unsigned *kind);
#define CACHE_KIND_NEGATIVE 1u
#define CACHE_KIND_TAG(kind) (((kind) & ~CACHE_KIND_REFRESH) >> 1)
/* Also set in *kind (limits.refresh only) when the hit fell in the last tenth of the entry's
 * lifetime (unbound's prefetch rule): the caller may refresh it; mask it off before indexing. */
#define CACHE_KIND_REFRESH 0x100u

/*
 * The stale answer for `key`: an expired entry within its stale limit (limits.stale; never one
 * stored renewable), written as cache_get() writes a hit but with every TTL limits.stale_ttl.
 * Returns its length, -ENOENT when there is no such entry (absent, fresh, too old), -ENOSPC.
 * For the slow paths only (a -ESTALE lookup, a failed upstream): allocates nothing, changes
 * nothing but the entry's recency.
 */
int cache_get_stale(struct cache *c, const struct cache_key *key, msec_t now, uint16_t id,
		    const uint8_t *client_qname, uint8_t *out, size_t cap);

/*
 * Store `reply` (without OPT) for `key`, replacing an older entry. The cache decides
 * cacheability: positive answers for min(TTL) clamped by min/max; NXDOMAIN and NODATA per
 * RFC 2308 (or neg_ttl without SOA); never SERVFAIL, REFUSED, FORMERR, NOTIMP, TC=1, TTL 0.
 * Returns 0 when stored, -ENOENT when not cacheable, -E2BIG when larger than the budget,
 * -EPROTO for a malformed reply, -ENOMEM.
 */
int cache_put(struct cache *c, const struct cache_key *key, const uint8_t *reply, size_t len,
	      msec_t now);

/*
 * cache_put() for a reply from a source that reports every change of its data through
 * cache_note_change() (the kube store, through the upstream `changed` hook): when such an entry
 * has expired and nothing changed since it was stored, the next lookup renews it in place - a
 * hit, its TTLs counting down again from the stored ones, exactly what the source would answer
 * anew - instead of dropping it. Entries stored before the last change expire as usual (the
 * source's invalidations drop the affected ones at once anyway). Same returns as cache_put().
 */
int cache_put_renewable(struct cache *c, const struct cache_key *key, const uint8_t *reply,
			size_t len, msec_t now);
/* cache_put(), or cache_put_renewable() when `renewable`, storing `tag` (< CACHE_TAGS, else
 * -EINVAL) with the entry; the untagged functions store 0. Same returns as cache_put(). */
int cache_put_tagged(struct cache *c, const struct cache_key *key, const uint8_t *reply, size_t len,
		     msec_t now, unsigned tag, bool renewable);
/* A renewable source changed at `now`: its entries stored until then are no longer renewed. */
void cache_note_change(struct cache *c, msec_t now);
/*
 * Drop every entry whose name is `name` or below it (uncompressed wire name, any case).
 * Returns the number dropped. The cost depends on where the name lies (see cache_watch):
 * at or below the owner depth of a watched zone, one owner group is read - in proportion to
 * what it drops; above it (a namespace, a whole watched zone) every indexed entry is read, and
 * nothing else; outside every watched zone every entry is read, O(entries): milliseconds per
 * million against microseconds for a service's group beside a million external names
 * (test_cache's test_invalidate_1m and test_invalidate_1m_watched print them; figures:
 * tests/bench/README.md, "Invalidation: a walk against an owner group").
 */
size_t cache_invalidate(struct cache *c, const uint8_t *name, size_t name_len);

/*
 * Index the entries under `zone` (uncompressed wire name, any case), for an upstream that
 * reports its changes there (upstream_ops.watched): from now on every entry whose name lies in
 * the zone, whoever answered it, takes 8 more bytes (rounded to 4) and joins the group of its
 * owner, the name's ancestor `depth` labels below the deepest watched zone holding it (the name
 * itself when not that deep), so that cache_invalidate() of a name at least that deep reads
 * only that group. Pick the depth of the names the upstream reports. Entries already under the
 * zone are dropped. Correctness does not depend on the depth, only the cost.
 * Returns 0, -EINVAL (malformed name, depth over 127), -EEXIST (watched already), -ENOSPC
 * (8 zones watched already), -ENOMEM. A zone not watched costs a full walk per invalidation.
 */
int cache_watch(struct cache *c, const uint8_t *zone, size_t zone_len, unsigned depth);

/* Drop everything (SIGHUP) and reset the insertion counters. */
void cache_clear(struct cache *c);

struct cache_stats {
	uint64_t bytes; /* everything counted against the budget */
	uint64_t max_bytes;
	uint64_t entries;
	uint64_t negative_entries;
	uint64_t hits;
	uint64_t misses;
	uint64_t insertions;
	uint64_t evictions;	   /* unexpired entries evicted for room ("re-used") */
	uint64_t expired;	   /* entries dropped because their TTL ran out */
	uint64_t renewed;	   /* expired renewable entries renewed on a hit */
	uint64_t stale_served;	   /* answers from cache_get_stale() */
	uint64_t indexed;	   /* entries in watched zones (cache_watch) */
	uint64_t invalidate_reads; /* entries read by cache_invalidate() (and cache_watch()) */
};

void cache_get_stats(const struct cache *c, struct cache_stats *out);

/* Call fn for every entry (SIGUSR1 dump with --log-queries): name, type, seconds left,
 * negative or not, and its reply image. */
void cache_foreach(const struct cache *c, msec_t now,
		   void (*fn)(void *ctx, const struct cache_key *key, uint32_t ttl_left,
			      const uint8_t *reply, size_t len),
		   void *ctx);
