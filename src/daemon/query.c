/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * query.c - one query's life: parse -> cache -> coalesce -> route -> answer exactly once.
 *
 * A miss becomes a `query_miss` in the in-flight table, keyed like the cache (lower-cased name,
 * type, class, DO, CD), so identical misses share one upstream request; each client waiting on
 * it is a `query_waiter` that remembers its own ID, spelling of the name, EDNS size and origin.
 * When the upstream completes, the reply (OPT stripped) goes into the cache and out to every
 * waiter, rewritten for each. This file owns misses and waiters: upstreams only borrow them.
 *
 * Serve-stale and prefetch (--use-stale-cache, --prefetch) refresh a cached entry through the
 * same table: a refresh is a miss without waiters, started only when none for the key is in
 * flight, so a client miss and a refresh of the same key are one upstream request. The cache
 * reports a stale entry (-ESTALE) or a prefetch-due hit (CACHE_KIND_REFRESH) off the fast
 * path; without the options neither ever happens.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "kubemasq/dnsmsg.h"
#include "kubemasq/hash.h"
#include "kubemasq/log.h"
#include "kubemasq/upstream.h"
#include "lib/cache.h"
#include "lib/chaos.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/router.h"
#include "lib/stats.h"
#include "daemon/loop_detect.h"
#include "daemon/query.h"
#include "daemon/query_log.h"

/* uthash with a keyed hash (HOUSE_STYLE: the default one is unkeyed), so a client cannot choose
 * names that pile into one bucket: SipHash-1-3 under a per-process random key. */
static uint64_t query_hash_key[2];
#define HASH_FUNCTION(keyptr, keylen, hashv)                                                       \
	((hashv) = (unsigned)hash_siphash13(query_hash_key, (keyptr), (keylen)))
#include <uthash.h>

/* Caps on what clients can make us hold (HOUSE_STYLE: every resource a peer grows is capped). */
#define QUERY_MAX_WAITERS_PER_MISS 512
#define QUERY_MAX_WAITERS_TOTAL 65536
#define QUERY_KEY_MAX (5 + DNS_MAX_NAME)
#define QUERY_BUF_SIZE (65535 + 64)
/* query_cache_hit(): the query waits on a miss (--stale-mode=verify), nothing to send now */
#define QUERY_WAITING SIZE_MAX
/* --log-queries=extra's "SERIAL ADDR/PORT " (dnsmasq's): 10 + 1 + 45 + 1 + 5 + 1 + NUL */
#define QUERY_LOG_PREFIX 72

struct query_waiter {
	struct query_waiter *next;
	struct query_origin origin;
	struct dnsmsg_query dq;	     /* dq.q.qname points at qname below */
	uint64_t arrived_us;	     /* for the latency histogram (clock_now_us) */
	uint8_t qname[DNS_MAX_NAME]; /* the client's spelling */
};

struct query_miss {
	UT_hash_handle hh;
	/* Invalidated while in flight: out of the table (new queries start afresh) and on the
	 * engine's detached list instead; its reply goes to its waiters but not into the cache. */
	bool detached;
	struct query_miss *dprev, *dnext;
	struct query_engine *qe;
	struct upstream_req req; /* req.q.qname points at lname below */
	struct query_waiter *waiters;
	unsigned n_waiters;
	/* --stale-mode=verify: when it fires, waiters with a stale entry get it (query_stale_arm) */
	struct event *stale_ev;
	char log_prefix[QUERY_LOG_PREFIX]; /* the first query's, for its reply lines */
	msec_t started;
	uint16_t key_len;
	uint8_t key[QUERY_KEY_MAX];
	uint8_t lname[DNS_MAX_NAME];
};

struct query_engine {
	struct event_base *base;
	const struct config *cfg;
	struct router *router;
	struct cache *cache;
	struct stats *stats;
	struct query_miss *inflight; /* uthash head */
	struct query_miss *detached; /* in flight but invalidated (query_engine_invalidate) */
	size_t n_inflight;	     /* both of the above */
	struct log_ratelimit rl_forward_max;
	struct log_ratelimit rl_waiters;
	struct upstream_hooks hooks;	   /* what upstreams call back: invalidation */
	struct loop_detect *loop;	   /* --dns-loop-detect, or NULL */
	uint32_t log_serial;		   /* --log-queries=extra: the last query's serial */
	char log_prefix[QUERY_LOG_PREFIX]; /* the query being handled's, "" unless extra */
	uint8_t buf[QUERY_BUF_SIZE];	   /* the upstream reply, OPT stripped */
	uint8_t out[QUERY_BUF_SIZE];	   /* one client's rewritten copy */
};

/* The zones an upstream reports its changes in are indexed by the cache, so that its
 * invalidations read what they drop (upstream_ops.watched). Without, they still work: slower. */
static void
query_watch_upstream(struct upstream *u, void *ctx)
{
	const struct upstream_watch *w = NULL;
	size_t n = u->ops->watched ? u->ops->watched(u, &w) : 0;

	for (size_t i = 0; i < n; i++) {
		int r = cache_watch(ctx, w[i].zone, w[i].zone_len, w[i].owner_labels);
		if (r < 0 && r != -EEXIST)
			log_warn("%s: cannot index a zone's cached answers: %s", u->ops->name,
				 strerror(-r));
	}
}

struct query_engine *
query_engine_new(struct event_base *base, const struct config *cfg, struct router *router,
		 struct cache *cache, struct stats *stats)
{
	struct query_engine *qe = calloc(1, sizeof(*qe));

	if (!qe)
		return NULL;
	if (!query_hash_key[0] && !query_hash_key[1])
		hash_random_key(query_hash_key);
	qe->base = base;
	qe->cfg = cfg;
	qe->router = router;
	qe->cache = cache;
	qe->stats = stats;
	qe->rl_forward_max = (struct log_ratelimit)LOG_RATELIMIT_INIT(10000, 1);
	qe->rl_waiters = (struct log_ratelimit)LOG_RATELIMIT_INIT(10000, 1);
	qe->hooks = (struct upstream_hooks){
		.invalidate = query_engine_invalidate,
		.changed = query_engine_changed,
		.ctx = qe,
	};
	if (cache)
		router_foreach(router, query_watch_upstream, cache);
	return qe;
}

static void
query_waiters_free(struct query_engine *qe, struct query_miss *m)
{
	struct query_waiter *w, *next;

	for (w = m->waiters; w; w = next) {
		next = w->next;
		if (w->origin.release)
			w->origin.release(&w->origin);
		free(w);
		qe->stats->waiting--;
	}
	m->waiters = NULL;
}

/* Free a miss whose waiters are gone, with its timer. */
static void
query_miss_free(struct query_miss *m)
{
	if (m->stale_ev)
		event_free(m->stale_ev);
	free(m);
}

static void
query_miss_abandon(struct query_engine *qe, struct query_miss *m)
{
	if (m->req.owner)
		upstream_cancel(m->req.owner, &m->req);
	query_waiters_free(qe, m);
	query_miss_free(m);
}

void
query_engine_free(struct query_engine *qe)
{
	struct query_miss *m, *tmp;

	if (!qe)
		return;
	HASH_ITER(hh, qe->inflight, m, tmp) {
		HASH_DEL(qe->inflight, m);
		query_miss_abandon(qe, m);
	}
	for (m = qe->detached; m; m = tmp) {
		tmp = m->dnext;
		query_miss_abandon(qe, m);
	}
	free(qe);
}

/* Take an in-flight miss out of the table or off the detached list. */
static void
query_miss_unlink(struct query_engine *qe, struct query_miss *m)
{
	if (!m->detached) {
		HASH_DEL(qe->inflight, m);
	} else {
		if (m->dprev)
			m->dprev->dnext = m->dnext;
		else
			qe->detached = m->dnext;
		if (m->dnext)
			m->dnext->dprev = m->dprev;
	}
	qe->n_inflight--;
}

void
query_engine_invalidate(void *ctx, const uint8_t *name, size_t len)
{
	struct query_engine *qe = ctx;
	struct query_miss *m, *tmp;
	size_t dropped = 0;

	if (!qe)
		return;
	if (qe->cache)
		dropped = cache_invalidate(qe->cache, name, len);
	/* A reply on its way was fetched before the change: let its waiters have it, but keep it
	 * out of the cache, and let queries from now on start a fresh miss. At most
	 * --dns-forward-max misses to look at. */
	HASH_ITER(hh, qe->inflight, m, tmp) {
		if (!dnsmsg_name_in_zone(m->lname, m->req.q.qname_len, name, len))
			continue;
		HASH_DEL(qe->inflight, m);
		m->detached = true;
		m->dprev = NULL;
		m->dnext = qe->detached;
		if (qe->detached)
			qe->detached->dprev = m;
		qe->detached = m;
	}
	if (dropped)
		log_debug("invalidated %zu cached answers", dropped);
}

void
query_engine_changed(void *ctx)
{
	struct query_engine *qe = ctx;

	if (qe && qe->cache)
		cache_note_change(qe->cache, clock_now_ms());
}

const struct upstream_hooks *
query_engine_hooks(struct query_engine *qe)
{
	return &qe->hooks;
}

size_t
query_engine_pending(const struct query_engine *qe)
{
	return qe->stats->waiting;
}

void
query_engine_set_loop_detect(struct query_engine *qe, struct loop_detect *ld)
{
	qe->loop = ld;
}

/*
 * With --log-queries=extra, the prefix of every line about the query now being handled
 * (query_log_prefix). The lines logged while the query is handled synchronously use
 * qe->log_prefix; a miss keeps a copy for its forwarded and reply lines.
 */
static void
query_log_begin(struct query_engine *qe, const struct query_origin *o)
{
	if (qe->cfg->log_queries_extra)
		query_log_prefix(qe->log_prefix, sizeof(qe->log_prefix), ++qe->log_serial,
				 &o->peer);
}

/* The size limit for this answer: TCP's, or the client's EDNS size capped by ours
 * (--edns-packet-max), so that a spoofed query asking for 65000 bytes cannot make us a
 * 100-fold amplifier. */
static size_t
query_max_len(const struct query_engine *qe, const struct dnsmsg_query *dq,
	      const struct query_origin *o)
{
	return o->tcp ? 65535 : MIN(dq->udp_size, MAX(512u, qe->cfg->edns_packet_max));
}

/*
 * Make `out` (holding `len` bytes: a reply image without OPT, question already in the client's
 * spelling and ID) fit the client: RD echoed, truncated with TC=1 if too big for its transport,
 * and the client's OPT appended when it sent one. Returns the final length.
 */
static size_t
query_fit(struct query_engine *qe, const struct dnsmsg_query *dq, const struct query_origin *o,
	  uint8_t *out, size_t len, size_t cap)
{
	size_t opt = dq->edns ? 11 : 0;
	int r;

	out[2] = (uint8_t)((out[2] & ~0x01) | (dq->rd ? 0x01 : 0));
	if (len + opt > query_max_len(qe, dq, o)) {
		len = dnsmsg_truncate(out, dq->question_end);
		qe->stats->truncated++;
	}
	if (dq->edns) {
		r = dnsmsg_append_opt(out, len, cap, (uint16_t)qe->cfg->edns_packet_max, dq->do_bit,
				      0);
		if (r > 0)
			len = (size_t)r;
	}
	return len;
}

static size_t
query_reply_rcode(struct query_engine *qe, const struct dnsmsg_query *dq, unsigned rcode,
		  uint8_t *out, size_t cap)
{
	int r = dnsmsg_reply_error(out, cap, dq, rcode, (uint16_t)qe->cfg->edns_packet_max);

	stats_answered(qe->stats, METRICS_SOURCE_LOCAL, rcode, 0);
	if (qe->cfg->log_queries && dq->q.qname)
		query_log_reply(qe->cfg, qe->log_prefix, "reply", out, r > 0 ? (size_t)r : 0,
				dq->q.qtype);
	return r > 0 ? (size_t)r : 0;
}

static uint8_t
query_flags(const struct dnsmsg_query *dq)
{
	return (uint8_t)((dq->do_bit ? CACHE_F_DO : 0) | (dq->cd ? CACHE_F_CD : 0));
}

/* The in-flight key: flags, type, class, lower-cased name - the cache's key in one buffer. */
static uint16_t
query_key(const struct dnsmsg_query *dq, const uint8_t *lname, uint8_t *key)
{
	key[0] = query_flags(dq);
	dnsmsg_put16(key + 1, dq->q.qtype);
	dnsmsg_put16(key + 3, dq->q.qclass);
	memcpy(key + 5, lname, dq->q.qname_len);
	return (uint16_t)(5 + dq->q.qname_len);
}

static struct cache_key
query_cache_key(const struct dnsmsg_query *dq, const uint8_t *lname)
{
	return (struct cache_key){
		.qname = lname,
		.qname_len = dq->q.qname_len,
		.qtype = dq->q.qtype,
		.qclass = dq->q.qclass,
		.flags = query_flags(dq),
	};
}

static bool query_refresh(struct query_engine *qe, const struct dnsmsg_query *dq,
			  const uint8_t *lname);
static size_t query_stale(struct query_engine *qe, const struct dnsmsg_query *dq,
			  const uint8_t *lname, msec_t now, const struct query_origin *o,
			  uint8_t *out, size_t cap);

/* The cache's answer, 0 for a miss, or QUERY_WAITING (a stale entry being verified). */
static size_t
query_cache_hit(struct query_engine *qe, const struct dnsmsg_query *dq, const uint8_t *lname,
		const struct query_prep *p, const struct query_origin *o, uint8_t *out, size_t cap)
{
	struct cache_key key = query_cache_key(dq, lname);
	unsigned kind;
	int r;

	if (!qe->cache)
		return 0;
	r = cache_get_tagged(qe->cache, &key, p->hash, p->now, dq->id, dq->q.qname, out, cap,
			     &kind);
	if (r <= 0)
		return unlikely(r == -ESTALE) ? query_stale(qe, dq, lname, p->now, o, out, cap) : 0;
	if (unlikely(kind & CACHE_KIND_REFRESH)) {
		kind &= ~CACHE_KIND_REFRESH;
		qe->stats->prefetches += query_refresh(qe, dq, lname);
	}
	/* the tag is the source the answer was stored from (query_cache_put) */
	qe->stats->cache_hits++;
	qe->stats->cache_hits_by[kind]++;
	stats_answered(qe->stats, CACHE_KIND_TAG(kind), out[3] & 0x0f, 0);
	if (unlikely(qe->cfg->log_queries))
		query_log_reply(qe->cfg, qe->log_prefix, "cached", out, (size_t)r, dq->q.qtype);
	return query_fit(qe, dq, o, out, (size_t)r, cap);
}

/* The CHAOS statistics names (chaos.c), answered before the cache as dnsmasq does. */
static size_t
query_chaos(struct query_engine *qe, const struct dnsmsg_query *dq, const uint8_t *lname,
	    const struct query_origin *o, uint8_t *out, size_t cap)
{
	struct chaos_sources src = {.stats = qe->stats,
				    .cache = qe->cache,
				    .cache_size = qe->cfg->cache_size,
				    .router = qe->router};
	int r = chaos_answer(&src, dq, lname, out, cap);

	if (r == -ENOENT || r == 0)
		return 0; /* not a statistics name: forwarded, as dnsmasq does */
	if (r < 0)	  /* ours, but the answer could not be built: not forwarded either */
		return query_reply_rcode(qe, dq, DNS_RCODE_SERVFAIL, out, cap);
	qe->stats->answered_locally++; /* counted after the answer, as dnsmasq's hits.bind */
	qe->stats->chaos++;
	stats_answered(qe->stats, METRICS_SOURCE_LOCAL, out[3] & 0x0f, 0);
	return query_fit(qe, dq, o, out, (size_t)r, cap);
}

/* A waiter for this client, not yet counted nor holding its origin (query_waiter_add). */
static struct query_waiter *
query_waiter_new(const struct dnsmsg_query *dq, const struct query_origin *o)
{
	struct query_waiter *w = malloc(sizeof(*w));

	if (!w)
		return NULL;
	w->next = NULL;
	w->origin = *o;
	w->dq = *dq;
	memcpy(w->qname, dq->q.qname, dq->q.qname_len);
	w->dq.q.qname = w->qname;
	w->arrived_us = clock_now_us();
	return w;
}

/* The waiter starts waiting on m: counted, its origin held until query_waiters_free(). */
static void
query_waiter_add(struct query_engine *qe, struct query_miss *m, struct query_waiter *w)
{
	qe->stats->waiting++;
	if (w->origin.hold)
		w->origin.hold(&w->origin);
	w->next = m->waiters;
	m->waiters = w;
	m->n_waiters++;
}

static void upstream_done(struct upstream_req *req, int status, const uint8_t *reply, size_t len);

/* A miss taken by upstream `u`, counted as dnsmasq counts it: answers from our own
 * configuration (--address, local records: source "local") are answered locally, the rest
 * (the network, the cluster: kube-dns's dnsmasq forwarded those to kubedns) forwarded. */
static void
query_count_upstream(struct query_engine *qe, const struct upstream *u)
{
	if (u->source == METRICS_SOURCE_LOCAL)
		qe->stats->answered_locally++;
	else
		qe->stats->forwarded++;
}

/* A new miss, offered to the router. Returns the miss (now in flight), or NULL with *rcode set
 * to what the client should get at once. */
static struct query_miss *
query_miss_start(struct query_engine *qe, const struct dnsmsg_query *dq, const uint8_t *key,
		 uint16_t key_len, unsigned *rcode)
{
	struct query_miss *m;
	int r;

	if (qe->n_inflight >= qe->cfg->dns_forward_max) {
		qe->stats->refused_forward_max++;
		log_ratelimited(&qe->rl_forward_max, LOG_WARNING,
				"maximum number of concurrent DNS queries reached (max: %u)",
				qe->cfg->dns_forward_max);
		*rcode = DNS_RCODE_REFUSED;
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		*rcode = DNS_RCODE_SERVFAIL;
		return NULL;
	}
	m->qe = qe;
	m->key_len = key_len;
	memcpy(m->key, key, key_len);
	memcpy(m->lname, key + 5, dq->q.qname_len);
	m->req.q = (struct dnsmsg_question){.qname = m->lname,
					    .qname_len = dq->q.qname_len,
					    .qtype = dq->q.qtype,
					    .qclass = dq->q.qclass};
	m->req.cd = dq->cd;
	m->req.do_bit = dq->do_bit;
	m->req.done = upstream_done;
	if (unlikely(qe->cfg->log_queries_extra)) {
		memcpy(m->log_prefix, qe->log_prefix, sizeof(m->log_prefix));
		m->req.log_prefix = m->log_prefix;
	}
	m->started = clock_now_ms();
	r = router_resolve(qe->router, &m->req);
	if (r == 0) {
		HASH_ADD(hh, qe->inflight, key, m->key_len, m);
		qe->n_inflight++;
		query_count_upstream(qe, m->req.owner);
		return m;
	}
	free(m);
	if (r == -ENXIO) { /* local-only zone, bogus-priv, domain-needed */
		qe->stats->answered_locally++;
		*rcode = DNS_RCODE_NXDOMAIN;
	} else if (r == -ENOENT) { /* no upstream for this name, as dnsmasq without servers */
		*rcode = DNS_RCODE_REFUSED;
	} else if (r == -ELOOP) { /* every server loops (loop_detect.h): none, as above */
		*rcode = DNS_RCODE_REFUSED;
	} else {
		qe->stats->servfail++;
		*rcode = DNS_RCODE_SERVFAIL;
	}
	return NULL;
}

/* Cap every TTL of `pkt` (no OPT) at max: one walk, only with --max-ttl. */
static void
query_cap_ttls(uint8_t *pkt, size_t len, uint32_t max)
{
	struct dnsmsg_iter it;
	struct dnsmsg_rr rr;

	if (dnsmsg_iter_init(&it, pkt, len) < 0)
		return;
	while (dnsmsg_iter_next(&it, &rr) == 0)
		if (rr.ttl > max)
			dnsmsg_put32(pkt + rr.ttl_off, max);
}

/*
 * A miss that an in-process upstream (the kube store) answers at once (router_answer): cached,
 * then written into `out` for this client as a cache hit is, so it leaves in the same sendmmsg
 * batch. Returns 0 when the query must take the asynchronous path instead.
 */
static size_t
query_answer_now(struct query_engine *qe, const struct dnsmsg_query *dq, const uint8_t *lname,
		 const struct query_origin *o, uint8_t *out, size_t cap)
{
	struct upstream_req req = {
		.q = {.qname = lname,
		      .qname_len = dq->q.qname_len,
		      .qtype = dq->q.qtype,
		      .qclass = dq->q.qclass},
		.cd = dq->cd,
		.do_bit = dq->do_bit,
	};
	struct cache_key key = query_cache_key(dq, lname);
	int r = router_answer(qe->router, &req, qe->buf, sizeof(qe->buf));

	if (r < DNS_HDR_LEN || (size_t)r + 11 > cap)
		return 0;
	if (qe->cache)
		cache_put_tagged(qe->cache, &key, qe->buf, (size_t)r, clock_now_ms(),
				 req.owner->source, true);
	if (unlikely(qe->cfg->max_ttl != 0))
		query_cap_ttls(qe->buf, (size_t)r, qe->cfg->max_ttl);
	memcpy(out, qe->buf, (size_t)r);
	dnsmsg_put16(out, dq->id);
	memcpy(out + DNS_HDR_LEN, dq->q.qname, dq->q.qname_len);
	query_count_upstream(qe, req.owner);
	stats_answered(qe->stats, req.owner->source, out[3] & 0x0f, 0);
	if (unlikely(qe->cfg->log_queries))
		query_log_reply(qe->cfg, qe->log_prefix, "reply", out, (size_t)r, dq->q.qtype);
	return query_fit(qe, dq, o, out, (size_t)r, cap);
}

/* A query that passed the cache: join an identical miss in flight or start one. When it
 * waits, *joined (if not NULL) is the miss it waits on. */
static size_t
query_miss(struct query_engine *qe, const struct dnsmsg_query *dq, const uint8_t *lname,
	   const struct query_origin *o, uint8_t *out, size_t cap, struct query_miss **joined)
{
	uint8_t key[QUERY_KEY_MAX];
	uint16_t key_len = query_key(dq, lname, key);
	struct query_miss *m;
	struct query_waiter *w;
	unsigned rcode = DNS_RCODE_SERVFAIL;
	size_t n;

	/* our loop probe, come back: answering would send it round again (dnsmasq drops it too) */
	if (unlikely(qe->loop != NULL) && dq->q.qtype == DNS_TYPE_TXT &&
	    loop_detect_seen(qe->loop, lname, dq->q.qname_len))
		return 0;
	HASH_FIND(hh, qe->inflight, key, key_len, m);
	if (!m && (n = query_answer_now(qe, dq, lname, o, out, cap)) != 0)
		return n;
	/* Every cap is checked, and the waiter made, before any upstream work starts: a query
	 * refused under overload must not cost an upstream send (and a cancel) first. */
	if (qe->stats->waiting >= QUERY_MAX_WAITERS_TOTAL) {
		log_ratelimited(&qe->rl_waiters, LOG_WARNING, "too many queries waiting (max: %u)",
				QUERY_MAX_WAITERS_TOTAL);
		return query_reply_rcode(qe, dq, DNS_RCODE_SERVFAIL, out, cap);
	}
	if (!(w = query_waiter_new(dq, o)))
		return query_reply_rcode(qe, dq, DNS_RCODE_SERVFAIL, out, cap);
	if (m && m->n_waiters >= QUERY_MAX_WAITERS_PER_MISS)
		m = NULL; /* a pathological herd: let it take a miss of its own */
	if (m) {
		qe->stats->coalesced++;
	} else if (!(m = query_miss_start(qe, dq, key, key_len, &rcode))) {
		free(w);
		return query_reply_rcode(qe, dq, rcode, out, cap);
	}
	query_waiter_add(qe, m, w);
	if (joined)
		*joined = m;
	return 0;
}

/* Refresh a cached entry in the background (serve-stale, prefetch): a miss without waiters, not
 * started when one for the key is in flight already (it refreshes the entry). Returns whether
 * one was started. */
static bool
query_refresh(struct query_engine *qe, const struct dnsmsg_query *dq, const uint8_t *lname)
{
	uint8_t key[QUERY_KEY_MAX];
	uint16_t key_len = query_key(dq, lname, key);
	struct query_miss *m;
	unsigned rcode;

	HASH_FIND(hh, qe->inflight, key, key_len, m);
	return !m && query_miss_start(qe, dq, key, key_len, &rcode) != NULL;
}

/* Take one waiter off m and free it, releasing its origin. */
static void
query_waiter_remove(struct query_engine *qe, struct query_miss *m, struct query_waiter **link)
{
	struct query_waiter *w = *link;

	*link = w->next;
	m->n_waiters--;
	qe->stats->waiting--;
	if (w->origin.release)
		w->origin.release(&w->origin);
	free(w);
}

static bool query_answer_stale(struct query_engine *qe, const struct query_miss *m,
			       struct query_waiter *w);

/* --stale-mode=verify's timer ran out: whoever waits on m and has a stale entry gets it now;
 * the request goes on and refreshes the entry if a server answers after all. */
static void
query_stale_timer(evutil_socket_t fd, short what, void *arg)
{
	struct query_miss *m = arg;
	struct query_waiter **link = &m->waiters;

	(void)fd;
	(void)what;
	while (*link) {
		if (query_answer_stale(m->qe, m, *link))
			query_waiter_remove(m->qe, m, link);
		else
			link = &(*link)->next;
	}
}

/* Start m's verify timer, --stale-answer-timeout from now, unless it runs already. */
static void
query_stale_arm(struct query_engine *qe, struct query_miss *m)
{
	unsigned ms = qe->cfg->stale_answer_timeout;
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

	if (!m->stale_ev && !(m->stale_ev = evtimer_new(qe->base, query_stale_timer, m)))
		return; /* without a timer the stale answer still comes if the upstream fails */
	if (!evtimer_pending(m->stale_ev, NULL))
		evtimer_add(m->stale_ev, &tv);
}

/*
 * An expired entry within its stale limit (cache_get_tagged said -ESTALE). Immediate mode: the
 * stale answer now, and a refresh in the background. Verify mode: the query waits on the
 * upstream like a miss, and gets the stale answer if the timer runs out or the upstream fails.
 */
static size_t
query_stale(struct query_engine *qe, const struct dnsmsg_query *dq, const uint8_t *lname,
	    msec_t now, const struct query_origin *o, uint8_t *out, size_t cap)
{
	struct cache_key key = query_cache_key(dq, lname);
	struct query_miss *m = NULL;
	size_t n;
	int r;

	if (qe->cfg->stale_verify) {
		if ((n = query_miss(qe, dq, lname, o, out, cap, &m)) != 0)
			return n;
		if (m)
			query_stale_arm(qe, m);
		return QUERY_WAITING;
	}
	r = cache_get_stale(qe->cache, &key, now, dq->id, dq->q.qname, out, cap);
	if (r <= 0)
		return 0; /* gone meanwhile: an ordinary miss */
	(void)query_refresh(qe, dq, lname);
	stats_answered(qe->stats, METRICS_SOURCE_FORWARD, out[3] & 0x0f, 0);
	if (unlikely(qe->cfg->log_queries))
		query_log_reply(qe->cfg, qe->log_prefix, "cached-stale", out, (size_t)r,
				dq->q.qtype);
	return query_fit(qe, dq, o, out, (size_t)r, cap);
}

void
query_prepare(struct query_engine *qe, const uint8_t *pkt, size_t len, msec_t now,
	      struct query_prep *p)
{
	p->now = now;
	p->hash = 0;
	p->len = len;
	p->status = dnsmsg_parse_query(pkt, len, &p->dq);
	if (p->status < 0)
		return;
	dnsmsg_name_lower(p->lname, p->dq.q.qname, p->dq.q.qname_len);
	if (qe->cache) {
		struct cache_key key = query_cache_key(&p->dq, p->lname);
		p->hash = cache_key_hash(qe->cache, &key);
		cache_prefetch(qe->cache, p->hash, 0);
	}
}

void
query_prefetch(struct query_engine *qe, const struct query_prep *p)
{
	if (p->status == 0 && qe->cache)
		cache_prefetch(qe->cache, p->hash, 1);
}

size_t
query_handle(struct query_engine *qe, const uint8_t *pkt, size_t len, const struct query_origin *o,
	     uint8_t *out, size_t cap)
{
	struct query_prep p;

	query_prepare(qe, pkt, len, clock_now_ms(), &p);
	return query_handle_prepared(qe, &p, o, out, cap);
}

/* query_handle_prepared() but for the sizes. */
static size_t
query_answer_prepared(struct query_engine *qe, const struct query_prep *p,
		      const struct query_origin *o, uint8_t *out, size_t cap)
{
	struct dnsmsg_query dq = p->dq;
	const uint8_t *lname = p->lname;
	size_t n;
	int r = p->status;

	if (unlikely(qe->cfg->log_queries))
		query_log_begin(qe, o);
	if (o->tcp)
		qe->stats->queries_tcp++;
	else
		qe->stats->queries_udp++;
	if (unlikely(r < 0)) {
		if (r == -EBADMSG) {
			qe->stats->dropped++;
			return 0;
		}
		if (r == -EOPNOTSUPP) {
			qe->stats->notimp++;
			return query_reply_rcode(qe, &dq, DNS_RCODE_NOTIMP, out, cap);
		}
		qe->stats->formerr++;
		return query_reply_rcode(qe, &dq, DNS_RCODE_FORMERR, out, cap);
	}
	qe->stats->qtype[o->tcp][stats_qtype_slot(dq.q.qtype)]++;
	qe->stats->do_requests += dq.do_bit;
	if (unlikely(qe->cfg->log_queries))
		query_log_query(qe->log_prefix, &dq, &o->peer);
	if (unlikely(dq.edns && dq.edns_version > 0)) {
		qe->stats->badvers++;
		return query_reply_rcode(qe, &dq, DNS_RCODE_BADVERS, out, cap);
	}
	if (unlikely(dq.q.qclass == DNS_CLASS_CH) && (n = query_chaos(qe, &dq, lname, o, out, cap)))
		return n;
	n = query_cache_hit(qe, &dq, lname, p, o, out, cap);
	if (n)
		return n != QUERY_WAITING ? n : 0;
	return query_miss(qe, &dq, lname, o, out, cap, NULL);
}

size_t
query_handle_prepared(struct query_engine *qe, const struct query_prep *p,
		      const struct query_origin *o, uint8_t *out, size_t cap)
{
	size_t n = query_answer_prepared(qe, p, o, out, cap);

	/* every query counted in queries_udp/tcp; the answers sent now here, the late ones in
	 * query_answer_waiter */
	metrics_size_observe(&qe->stats->request_size[o->tcp], p->len);
	if (n)
		metrics_size_observe(&qe->stats->response_size[o->tcp], n);
	return n;
}

/* Send the n bytes in qe->out to one waiter, counted for `src` (enum metrics_source). */
static void
query_send_waiter(struct query_engine *qe, struct query_waiter *w, unsigned src, size_t n)
{
	stats_answered(qe->stats, src, qe->out[3] & 0x0f, clock_now_us() - w->arrived_us);
	metrics_size_observe(&qe->stats->response_size[w->origin.tcp], n);
	if (w->origin.send(&w->origin, qe->out, n) < 0)
		qe->stats->send_errors++;
}

/* Send `img` (a reply without OPT, or NULL for SERVFAIL) from `src` (enum metrics_source) to
 * one waiter, rewritten for it. */
static void
query_answer_waiter(struct query_engine *qe, struct query_waiter *w, unsigned src,
		    const uint8_t *img, size_t len)
{
	size_t n;

	if (img && len <= sizeof(qe->out) - 11) {
		memcpy(qe->out, img, len);
		dnsmsg_put16(qe->out, w->dq.id);
		memcpy(qe->out + DNS_HDR_LEN, w->qname, w->dq.q.qname_len);
		n = query_fit(qe, &w->dq, &w->origin, qe->out, len, sizeof(qe->out));
	} else {
		n = dnsmsg_reply_error(qe->out, sizeof(qe->out), &w->dq, DNS_RCODE_SERVFAIL,
				       (uint16_t)qe->cfg->edns_packet_max);
	}
	query_send_waiter(qe, w, src, n);
}

/* The cache key of miss m (its lower-cased name and the DO/CD flags of its key). */
static struct cache_key
query_miss_key(const struct query_miss *m)
{
	return (struct cache_key){
		.qname = m->lname,
		.qname_len = m->req.q.qname_len,
		.qtype = m->req.q.qtype,
		.qclass = m->req.q.qclass,
		.flags = m->key[0],
	};
}

/* Give waiter w of m the stale answer for m's key, if the cache holds one. */
static bool
query_answer_stale(struct query_engine *qe, const struct query_miss *m, struct query_waiter *w)
{
	struct cache_key key = query_miss_key(m);
	int r;

	if (!qe->cache)
		return false;
	r = cache_get_stale(qe->cache, &key, clock_now_ms(), w->dq.id, w->qname, qe->out,
			    sizeof(qe->out) - 11);
	if (r <= 0)
		return false;
	if (unlikely(qe->cfg->log_queries))
		query_log_reply(qe->cfg, m->log_prefix, "cached-stale", qe->out, (size_t)r,
				m->req.q.qtype);
	query_send_waiter(qe, w, METRICS_SOURCE_FORWARD,
			  query_fit(qe, &w->dq, &w->origin, qe->out, (size_t)r, sizeof(qe->out)));
	return true;
}

_Static_assert(METRICS_SOURCES <= CACHE_TAGS, "a source is kept as a cache tag");

/* Where a miss's answer comes from: its upstream's metrics source. */
static unsigned
query_miss_source(const struct query_miss *m)
{
	return m->req.owner ? m->req.owner->source : METRICS_SOURCE_FORWARD;
}

static void
query_cache_put(struct query_engine *qe, const struct query_miss *m, const uint8_t *img, size_t len)
{
	struct cache_key key = query_miss_key(m);

	if (qe->cache) /* tagged with its source, for the hits' `source` label */
		cache_put_tagged(qe->cache, &key, img, len, clock_now_ms(), query_miss_source(m),
				 false);
}

/*
 * The upstream's completion: the one place a miss ends. The reply is copied and stripped of
 * its OPT (clients get their own), cached, and sent to every waiter; then the miss is freed.
 */
static void
upstream_done(struct upstream_req *req, int status, const uint8_t *reply, size_t len)
{
	struct query_miss *m = container_of(req, struct query_miss, req);
	struct query_engine *qe = m->qe;
	const uint8_t *img = NULL;
	int r;

	query_miss_unlink(qe, m);
	if (status == 0 && len >= DNS_HDR_LEN && len <= sizeof(qe->buf)) {
		memcpy(qe->buf, reply, len);
		r = dnsmsg_strip_opt(qe->buf, len);
		if (r > 0) {
			img = qe->buf;
			len = (size_t)r;
		}
	}
	if (img) {
		if (likely(!m->detached))
			query_cache_put(qe, m, img, len);
		/* --max-ttl after caching: the cache keeps the true TTLs, as dnsmasq */
		if (unlikely(qe->cfg->max_ttl != 0))
			query_cap_ttls(qe->buf, len, qe->cfg->max_ttl);
		if (unlikely(qe->cfg->log_queries))
			query_log_reply(qe->cfg, m->log_prefix, "reply", img, len, m->req.q.qtype);
	} else {
		qe->stats->servfail++;
		if (unlikely(qe->cfg->log_queries) && m->waiters) {
			r = dnsmsg_reply_error(qe->out, sizeof(qe->out), &m->waiters->dq,
					       DNS_RCODE_SERVFAIL, 0);
			if (r > 0)
				query_log_reply(qe->cfg, m->log_prefix, "reply", qe->out, (size_t)r,
						m->req.q.qtype);
		}
	}
	/* serve-stale: a server failure or silence is answered from the expired entry if any */
	bool stale = unlikely(qe->cfg->use_stale_cache) &&
		     (!img || dnsmsg_rcode(img) == DNS_RCODE_SERVFAIL);
	for (struct query_waiter *w = m->waiters; w; w = w->next)
		if (!stale || !query_answer_stale(qe, m, w))
			query_answer_waiter(qe, w, query_miss_source(m), img, len);
	query_waiters_free(qe, m);
	query_miss_free(m);
}
