/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * shutdown.c - the stop in phases (shutdown.h): the delay, during which everything runs as
 * before except /ready; then the listeners close (server_stop_listening) and a short timer
 * watches the queries in flight until none is left or the bound passes. Polling keeps the
 * query engine free of a shutdown hook: the stop is rare and lasts seconds, a check every
 * SHUTDOWN_POLL_MS costs nothing.
 */
#include <stdlib.h>

#include <event2/event.h>

#include "kubemasq/defs.h"
#include "kubemasq/log.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "daemon/query.h"
#include "daemon/server.h"
#include "daemon/shutdown.h"

#define SHUTDOWN_POLL_MS 10
#define SHUTDOWN_SLACK_MS 500 /* past --upstream-timeout: the last completion's answer goes out */

enum shutdown_phase {
	SHUTDOWN_RUNNING,
	SHUTDOWN_DELAY, /* answering; /ready 503 */
	SHUTDOWN_DRAIN, /* listeners closed; finishing what is in flight */
};

struct shutdown {
	struct event_base *base;
	const struct config *cfg;
	struct server *server;
	const struct query_engine *qe;
	struct event *timer;
	enum shutdown_phase phase;
	msec_t drain_until;
};

struct shutdown *
shutdown_new(struct event_base *base, const struct config *cfg, struct server *server,
	     const struct query_engine *qe)
{
	struct shutdown *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->base = base;
	s->cfg = cfg;
	s->server = server;
	s->qe = qe;
	return s;
}

void
shutdown_free(struct shutdown *s)
{
	if (!s)
		return;
	if (s->timer)
		event_free(s->timer);
	free(s);
}

bool
shutdown_stopping(const struct shutdown *s)
{
	return s && s->phase != SHUTDOWN_RUNNING;
}

static void
shutdown_arm(struct shutdown *s, msec_t ms)
{
	struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (long)(ms % 1000) * 1000};

	event_base_update_cache_time(s->base);
	evtimer_add(s->timer, &tv);
}

/* The delay is over, or a drain check is due. */
static void
shutdown_on_timer(evutil_socket_t fd UNUSED, short what UNUSED, void *arg)
{
	struct shutdown *s = arg;
	size_t pending = query_engine_pending(s->qe);
	unsigned bound = s->cfg->upstream_timeout_ms + SHUTDOWN_SLACK_MS;

	if (s->phase == SHUTDOWN_DELAY) {
		server_stop_listening(s->server);
		s->phase = SHUTDOWN_DRAIN;
		s->drain_until = clock_now_ms() + bound;
		if (pending)
			log_info("shutdown delay over: listeners closed, finishing %zu queries in "
				 "flight (at most %u ms)",
				 pending, bound);
		else
			log_info("shutdown delay over: listeners closed, no query in flight");
	}
	if (pending == 0) {
		event_base_loopbreak(s->base);
		return;
	}
	if (clock_now_ms() >= s->drain_until) {
		log_warn("%zu queries still in flight after %u ms: exiting without their answers",
			 pending, bound);
		event_base_loopbreak(s->base);
		return;
	}
	shutdown_arm(s, SHUTDOWN_POLL_MS);
}

void
shutdown_begin(struct shutdown *s, const char *name)
{
	if (s->phase != SHUTDOWN_RUNNING) {
		log_info("%s during the shutdown: exiting now", name);
		event_base_loopbreak(s->base);
		return;
	}
	if (s->cfg->shutdown_delay == 0) {
		event_base_loopbreak(s->base);
		return;
	}
	s->timer = evtimer_new(s->base, shutdown_on_timer, s);
	if (!s->timer) {
		log_err("%s: out of memory: exiting without --shutdown-delay", name);
		event_base_loopbreak(s->base);
		return;
	}
	s->phase = SHUTDOWN_DELAY;
	log_info("%s: draining for %u s (--shutdown-delay): /ready answers 503, DNS is still "
		 "answered; another SIGTERM exits at once",
		 name, s->cfg->shutdown_delay);
	shutdown_arm(s, (msec_t)s->cfg->shutdown_delay * 1000);
}
