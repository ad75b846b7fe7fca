/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * router.h - longest-suffix zone routing over the configured upstreams.
 *
 * Zones are bound to upstreams; a query is offered first to the upstreams bound to the longest
 * zone containing its name, in binding order, then to those of shorter zones (fall-through when
 * an upstream declines with -ENOENT), ending at the root zone ".". Lookup costs one hash probe
 * per suffix of the query name no deeper than the deepest bound zone. Pure: no I/O, no clock.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct router;
struct upstream;
struct upstream_req;

/* NULL on allocation failure. */
struct router *router_new(void);

/* Frees the router and every upstream it owns (router_own()). NULL-safe. */
void router_free(struct router *r);

/* Hand an upstream to the router for freeing with it (one upstream may serve many zones). */
int router_own(struct router *r, struct upstream *u);

/* Bind `u` (borrowed; see router_own) to zone `zone`, text form ("example.com", "." or "" for the
 * root). Several upstreams may share a zone: they are tried in binding order.
 * Returns 0, -EINVAL for a bad name, -ENOMEM. */
int router_bind(struct router *r, const char *zone, struct upstream *u);

/*
 * Offer `req` (req->q.qname lower-cased) to the upstreams, longest zone first. Returns 0 when
 * one accepted (req->owner is set to it), -ENOENT when every candidate declined or no zone
 * matched, or the first other negative errno an upstream returned.
 */
int router_resolve(struct router *r, struct upstream_req *req);

/*
 * The synchronous path: the first upstream of the longest zone matching req->q.qname answers
 * into out[0..cap) if it can (its `answer` operation). Returns the reply's length, with
 * req->owner set to the upstream that answered, or -EAGAIN when the request must go through
 * router_resolve() (no such operation, or it declined).
 */
int router_answer(struct router *r, struct upstream_req *req, uint8_t *out, size_t cap);

/*
 * Put `new` wherever `old` is bound (or, when old is NULL, bind it to the root) and own it.
 * `old` is no longer owned: the caller frees it once nothing it accepted can still be pending.
 * Returns 0 or -ENOMEM.
 */
int router_replace(struct router *r, struct upstream *old, struct upstream *new);

/* Call fn for every owned upstream (statistics). */
void router_foreach(struct router *r, void (*fn)(struct upstream *u, void *ctx), void *ctx);
