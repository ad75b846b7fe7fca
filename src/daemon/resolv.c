/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * resolv.c - the resolv-file as a live source of default servers. A forwarder's server list
 * is fixed for its life (tries in flight refer to servers by index), so a change replaces the
 * whole default forwarder in the router; the old one is retired, still completing what it
 * accepted, and freed after --upstream-timeout, by which time it has completed everything.
 * A file that changes faster than that fills the retired slots (each forwarder holds sockets),
 * and the oldest is freed early: its free() answers what it still holds with SERVFAIL
 * (upstream.h, the rule of free()), so no client is left waiting on a forwarder that is gone.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "kubemasq/log.h"
#include "kubemasq/upstream.h"
#include "lib/config.h"
#include "lib/filestat.h"
#include "lib/router.h"
#include "daemon/resolv.h"
#include "daemon/setup.h"

#define RESOLV_POLL_MS 1000
#define RESOLV_MAX_RETIRED 16 /* a file flapping faster than the timeout: free the oldest */

struct resolv_retired {
	struct upstream *u;
	struct event *ev;
	struct resolv_watch *w;
	unsigned long serial; /* order of retirement: the lowest is the oldest */
};

struct resolv_watch {
	struct event_base *base;
	struct config *cfg;
	struct router *router;
	struct upstream *current;
	struct event *poll;
	struct filestat seen;	    /* what the file looked like when last read */
	void (*on_swap)(void *ctx); /* resolv_watch_on_swap() */
	void *on_swap_ctx;
	unsigned long n_retired; /* forwarders retired so far: the next serial */
	struct resolv_retired retired[RESOLV_MAX_RETIRED];
};

static void
resolv_retired_free(struct resolv_retired *r)
{
	if (r->ev)
		event_free(r->ev);
	upstream_free(r->u);
	memset(r, 0, sizeof(*r));
}

static void
resolv_retired_expire(evutil_socket_t fd UNUSED, short what UNUSED, void *arg)
{
	resolv_retired_free(arg);
}

static void
resolv_retire(struct resolv_watch *w, struct upstream *u)
{
	struct timeval tv = {.tv_sec = (w->cfg->upstream_timeout_ms + 1000) / 1000};
	struct resolv_retired *slot = &w->retired[0];

	for (size_t i = 0; i < RESOLV_MAX_RETIRED && slot->u; i++)
		if (!w->retired[i].u || w->retired[i].serial < slot->serial)
			slot = &w->retired[i];
	if (slot->u) /* all taken: the oldest ends what it still holds, with SERVFAIL */
		resolv_retired_free(slot);
	slot->u = u;
	slot->w = w;
	slot->serial = w->n_retired++;
	slot->ev = evtimer_new(w->base, resolv_retired_expire, slot);
	if (!slot->ev || evtimer_add(slot->ev, &tv) < 0)
		resolv_retired_free(slot); /* cannot wait: SERVFAIL now is the lesser harm */
}

/* The default servers as one comparable array (malloc'd; *n set). */
static struct config_sockaddr *
resolv_defaults(const struct config *cfg, size_t *n)
{
	struct config_sockaddr *list = calloc(cfg->n_servers + 1, sizeof(*list));

	*n = 0;
	for (size_t i = 0; list && i < cfg->n_servers; i++)
		if (cfg->servers[i].kind == CONFIG_SERVER_ADDR && !cfg->servers[i].n_domains)
			list[(*n)++] = cfg->servers[i].addr;
	return list;
}

static void
resolv_swap(struct resolv_watch *w)
{
	char err[256];
	struct upstream *u = setup_default_forwarder(w->base, w->cfg, err, sizeof(err));

	if (!u && err[0]) {
		log_err("%s: keeping the previous servers", err);
		return;
	}
	if (!u) { /* no servers left: keep the old ones rather than answer nothing */
		log_warn("no servers found in %s, keeping the previous ones", w->cfg->resolv_file);
		return;
	}
	if (router_replace(w->router, w->current, u) < 0) {
		log_err("out of memory: keeping the previous servers");
		upstream_free(u);
		return;
	}
	if (w->current)
		resolv_retire(w, w->current);
	w->current = u;
	if (w->on_swap)
		w->on_swap(w->on_swap_ctx);
}

void
resolv_watch_on_swap(struct resolv_watch *w, void (*fn)(void *ctx), void *ctx)
{
	w->on_swap = fn;
	w->on_swap_ctx = ctx;
}

void
resolv_watch_reload(struct resolv_watch *w)
{
	char err[512];
	size_t n_old, n_new;
	struct config_sockaddr *old, *new;

	if (!w || w->cfg->no_resolv)
		return;
	filestat_take(&w->seen, w->cfg->resolv_file);
	old = resolv_defaults(w->cfg, &n_old);
	log_info("reading %s", w->cfg->resolv_file);
	if (config_read_resolv(w->cfg, w->cfg->resolv_file, err, sizeof(err)) < 0) {
		log_warn("%s", err);
		free(old);
		return;
	}
	new = resolv_defaults(w->cfg, &n_new);
	if (old && new && (n_old != n_new || memcmp(old, new, n_new * sizeof(*new)) != 0))
		resolv_swap(w);
	free(old);
	free(new);
}

static void
resolv_poll(evutil_socket_t fd UNUSED, short what UNUSED, void *arg)
{
	struct resolv_watch *w = arg;
	struct filestat now;

	filestat_take(&now, w->cfg->resolv_file);
	if (filestat_changed(&w->seen, &now))
		resolv_watch_reload(w);
}

struct resolv_watch *
resolv_watch_new(struct event_base *base, struct config *cfg, struct router *router,
		 struct upstream *current)
{
	struct timeval tv = {.tv_sec = RESOLV_POLL_MS / 1000};
	struct resolv_watch *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->base = base;
	w->cfg = cfg;
	w->router = router;
	w->current = current;
	if (cfg->no_resolv)
		return w;
	filestat_take(&w->seen, cfg->resolv_file);
	w->poll = event_new(base, -1, EV_PERSIST, resolv_poll, w);
	if (!w->poll || event_add(w->poll, &tv) < 0) {
		resolv_watch_free(w);
		return NULL;
	}
	return w;
}

void
resolv_watch_free(struct resolv_watch *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < RESOLV_MAX_RETIRED; i++)
		if (w->retired[i].u)
			resolv_retired_free(&w->retired[i]);
	if (w->poll)
		event_free(w->poll);
	free(w);
}
