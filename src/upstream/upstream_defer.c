/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * upstream_defer.c - the queue of answers ready inside resolve() and delivered from the event
 * loop, because the upstream contract forbids completing a request before resolve() returns.
 * One event drains the queue in arrival order; what done() queues meanwhile waits for the next
 * loop iteration, so a client that keeps asking cannot starve the sockets. Dropping the queue
 * completes what is still on it with an error: an accepted request is never forgotten.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/time.h>

#include <event2/event.h>

#include "kubemasq/defs.h"
#include "kubemasq/upstream.h"
#include "upstream/upstream_defer.h"

static void upstream_defer_drain(evutil_socket_t fd, short what, void *arg);

int
upstream_defer_init(struct upstream_defer *d, struct event_base *base,
		    upstream_defer_release_fn *release, void *ctx)
{
	assert(d && release);
	TAILQ_INIT(&d->queue);
	d->n = 0;
	d->draining = false;
	d->release = release;
	d->ctx = ctx;
	if (!base)
		return -EINVAL;
	d->ev = event_new(base, -1, 0, upstream_defer_drain, d);
	return d->ev ? 0 : -ENOMEM;
}

void
upstream_defer_push(struct upstream_defer *d, struct upstream_defer_item *item)
{
	assert(d->ev && item->req && !item->queued);
	TAILQ_INSERT_TAIL(&d->queue, item, link);
	item->queued = true;
	d->n++;
	if (!d->draining)
		event_active(d->ev, EV_TIMEOUT, 0);
}

static void
upstream_defer_unlink(struct upstream_defer *d, struct upstream_defer_item *item)
{
	if (!item->queued)
		return;
	TAILQ_REMOVE(&d->queue, item, link);
	item->queued = false;
	d->n--;
}

/* The request may be freed by done(), so done() is its last use; the item is released first so
 * that the owner's counts are right should done() ask again. */
static void
upstream_defer_finish(struct upstream_defer *d, struct upstream_defer_item *item, int status)
{
	struct upstream_req *req = item->req;
	uint8_t *reply = status == 0 ? item->reply : NULL;
	size_t len = item->len;

	if (status < 0)
		free(item->reply);
	item->reply = NULL;
	req->priv = NULL;
	d->release(d->ctx, item);
	if (reply)
		req->done(req, 0, reply, len);
	else
		req->done(req, status < 0 ? status : -EIO, NULL, 0);
	free(reply);
}

void
upstream_defer_complete(struct upstream_defer *d, struct upstream_defer_item *item)
{
	assert(!item->queued);
	upstream_defer_finish(d, item, 0);
}

void
upstream_defer_fail(struct upstream_defer *d, struct upstream_defer_item *item, int status)
{
	assert(status < 0);
	upstream_defer_unlink(d, item);
	upstream_defer_finish(d, item, status);
}

void
upstream_defer_cancel(struct upstream_defer *d, struct upstream_defer_item *item)
{
	upstream_defer_unlink(d, item);
	item->req->priv = NULL;
	free(item->reply);
	item->reply = NULL;
	d->release(d->ctx, item);
}

/* Answer what was queued before this run; the rest waits for a zero timeout. */
static void
upstream_defer_drain(evutil_socket_t fd UNUSED, short what UNUSED, void *arg)
{
	static const struct timeval now = {0, 0};
	struct upstream_defer *d = arg;
	unsigned n = d->n;
	struct upstream_defer_item *item;

	d->draining = true;
	while (n-- > 0 && (item = TAILQ_FIRST(&d->queue))) {
		upstream_defer_unlink(d, item);
		upstream_defer_complete(d, item);
	}
	d->draining = false;
	if (!TAILQ_EMPTY(&d->queue) && event_add(d->ev, &now) < 0)
		event_active(d->ev, EV_TIMEOUT, 0); /* sooner beats never */
}

void
upstream_defer_done(struct upstream_defer *d)
{
	struct upstream_defer_item *item;

	if (!d)
		return;
	/* A zeroed head reads as empty: TAILQ_FIRST is NULL. Queued items are accepted requests:
	 * they end with an error rather than be forgotten (upstream.h, the rule of free()). */
	while ((item = TAILQ_FIRST(&d->queue)))
		upstream_defer_fail(d, item, -ECANCELED);
	if (d->ev)
		event_free(d->ev);
	d->ev = NULL;
}
