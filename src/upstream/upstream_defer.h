/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * upstream_defer.h - deferred completion for upstreams that know their answer inside resolve():
 * the upstream contract forbids calling done() before resolve() returns, so the ready answer
 * waits on a queue that one libevent event drains in arrival order. Shared by the --address
 * upstream (upstream_local.c) and the kube resolver (upstream_kube.c).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

struct event;
struct event_base;
struct upstream_req;

/* Embedded by the upstream in its own per-request record. */
struct upstream_defer_item {
	TAILQ_ENTRY(upstream_defer_item) link;
	struct upstream_req *req; /* the client's; borrowed until done() or the item is dropped */
	uint8_t *reply;		  /* malloc'd, owned by the item; NULL: done() gets -EIO */
	size_t len;
	bool queued; /* on the queue, waiting for the loop */
};

/* Frees the record that embeds `item` (item->reply is already taken or freed and NULL). Called
 * once per item the queue completes, cancels or drops. */
typedef void upstream_defer_release_fn(void *ctx, struct upstream_defer_item *item);

struct upstream_defer {
	TAILQ_HEAD(upstream_defer_queue, upstream_defer_item) queue;
	struct event *ev; /* drains `queue` */
	unsigned n;	  /* items on `queue`; the owner caps it before pushing */
	bool draining;	  /* inside the drain: it re-arms itself when done */
	upstream_defer_release_fn *release;
	void *ctx;
};

/* Set up d (embedded, may be zeroed) on `base`. Returns 0, -EINVAL without a base, -ENOMEM. */
int upstream_defer_init(struct upstream_defer *d, struct event_base *base,
			upstream_defer_release_fn *release, void *ctx);

/* Queue `item` (item->req set, item->reply the answer or NULL) for completion from the loop,
 * after what is queued already; never calls done() itself. The owner points item->req->priv at
 * its record; the queue clears it when the item completes or is dropped. */
void upstream_defer_push(struct upstream_defer *d, struct upstream_defer_item *item);

/* Complete `item` now (not queued; for an owner called back from the loop): clears
 * item->req->priv, releases the item, then calls done() with the reply and frees the reply. */
void upstream_defer_complete(struct upstream_defer *d, struct upstream_defer_item *item);

/* Complete `item` now with the error `status` (< 0; e.g. -ECANCELED when the owner is freed),
 * queued or not: unqueues it, frees its reply, clears item->req->priv, releases the item, then
 * calls done(status). Never from inside the owner's resolve(). */
void upstream_defer_fail(struct upstream_defer *d, struct upstream_defer_item *item, int status);

/* Forget `item` without done(): unqueue it if queued, clear item->req->priv, free the reply
 * and release the item. For upstream_ops.cancel only: the requester withdrew it. */
void upstream_defer_cancel(struct upstream_defer *d, struct upstream_defer_item *item);

/* For the owner's free(): complete every queued item with done(-ECANCELED) as
 * upstream_defer_fail() does (the rule of free() in upstream.h: nothing accepted is forgotten),
 * including items pushed by those done() calls, then free the event. NULL-safe and safe on a
 * zeroed, never initialized d. */
void upstream_defer_done(struct upstream_defer *d);
