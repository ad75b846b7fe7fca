/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * query.h - one query's life: parse -> cache -> coalesce -> route -> answer exactly once.
 *
 * The front end (server.c) hands every datagram or TCP message to query_handle(). A query
 * that can be answered at once (an error, a cache hit) is written into the caller's buffer
 * so UDP can batch it with sendmmsg; the rest wait on an upstream, and their answers go out
 * later through the origin's send function. query.c owns every pending query from parse to
 * free; upstream completions never free anything.
 */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "kubemasq/defs.h"
#include "kubemasq/dnsmsg.h"

struct event_base;
struct config;
struct router;
struct cache;
struct stats;
struct query_engine;
struct query_origin;
struct upstream_hooks;
struct loop_detect;

/* Sends one late answer to where the query came from; returns 0 or a negative errno. */
typedef int query_send_fn(const struct query_origin *o, const uint8_t *pkt, size_t len);

/*
 * Where a query came from and how to answer it later. Copied into each waiting query, so it
 * must not point at anything shorter-lived than the answer - for TCP, `conn` is reference
 * counted by the server (query_send_fn on a closed connection drops the answer).
 */
struct query_origin {
	query_send_fn *send;
	/* hold() when a query from this origin starts waiting, release() when it is done (answered
	 * or abandoned): the server keeps a TCP connection object alive in between. May be NULL. */
	void (*hold)(const struct query_origin *o);
	void (*release)(const struct query_origin *o);
	bool tcp;
	int fd; /* UDP: the listening socket */
	struct sockaddr_storage peer;
	socklen_t peer_len;
	struct in6_pktinfo local6; /* UDP wildcard sockets: answer from this address */
	struct in_pktinfo local4;
	bool has_local;
	void *conn; /* TCP: the server's connection object */
};

/* `cache` may be NULL (--cache-size=0). All borrowed; they outlive the engine. */
struct query_engine *query_engine_new(struct event_base *base, const struct config *cfg,
				      struct router *router, struct cache *cache,
				      struct stats *stats);

/* Cancels every pending query (no answers are sent) and frees the engine. NULL-safe. */
void query_engine_free(struct query_engine *qe);

/*
 * Handle one query from a client. Returns the length of an answer written into out[0..cap)
 * to send now; 0 when there is nothing to send now: dropped, or waiting on an upstream, in
 * which case o->hold() was called, the answer goes out later through o->send, and
 * o->release() follows once the query is done. The size limit is the transport's: 65535 for
 * TCP, the client's EDNS size (512 without EDNS) for UDP.
 */
size_t query_handle(struct query_engine *qe, const uint8_t *pkt, size_t len,
		    const struct query_origin *o, uint8_t *out, size_t cap);

/*
 * A query parsed ahead of its handling: server.c prepares a whole UDP batch first, so the
 * cache loads of every lookup in it are in flight together rather than one after another.
 * Valid while the packet it was parsed from is unchanged (dq.q.qname points into it).
 */
struct query_prep {
	struct dnsmsg_query dq;
	int status;		     /* dnsmsg_parse_query()'s */
	uint32_t hash;		     /* cache_key_hash() of the key when status is 0 */
	size_t len;		     /* the packet's (request size metrics) */
	msec_t now;		     /* the time the query is answered at */
	uint8_t lname[DNS_MAX_NAME]; /* the lower-cased name when status is 0 */
};

/* Parse `pkt` into *p and prefetch its cache bucket; `now` is read once per batch by the
 * caller. Counts nothing: query_handle_prepared() does. */
void query_prepare(struct query_engine *qe, const uint8_t *pkt, size_t len, msec_t now,
		   struct query_prep *p);

/* The second prefetch step (the cache record), best called for every query of a batch after
 * query_prepare() has been called for each. A hint: it changes nothing. */
void query_prefetch(struct query_engine *qe, const struct query_prep *p);

/* query_handle() for a query from query_prepare(): the same answer, counters and ownership. */
size_t query_handle_prepared(struct query_engine *qe, const struct query_prep *p,
			     const struct query_origin *o, uint8_t *out, size_t cap);

/*
 * The invalidation hook of struct upstream_hooks (ctx is the engine; NULL-safe): drops every
 * cached answer for `name` (uncompressed wire name, any case) or below, and detaches misses in
 * flight for such names - their replies still reach their waiters but are not cached, and a
 * new identical query starts a fresh upstream request rather than joining the old one.
 */
void query_engine_invalidate(void *qe, const uint8_t *name, size_t len);

/* The change hook of struct upstream_hooks (ctx is the engine; NULL-safe): renewable cached
 * replies stored until now are no longer renewed (cache_note_change). */
void query_engine_changed(void *qe);

/* The hooks to give upstreams ({query_engine_invalidate, query_engine_changed, qe}); valid as
 * long as the engine. */
const struct upstream_hooks *query_engine_hooks(struct query_engine *qe);

/* Queries waiting on upstreams (for statistics and shutdown). */
size_t query_engine_pending(const struct query_engine *qe);

/* --dns-loop-detect: the detector that recognises our own probes among the misses (borrowed,
 * it outlives the engine; NULL: none, the default). */
void query_engine_set_loop_detect(struct query_engine *qe, struct loop_detect *ld);
