/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * shutdown.h - the stop on SIGTERM/SIGINT. Without --shutdown-delay the daemon leaves its event
 * loop at once, as dnsmasq does. With it (CoreDNS's lameduck): /ready turns 503 at once so that
 * Kubernetes takes the pod out of its Services, DNS keeps being answered for the delay, then
 * the listeners close and the queries still in flight are finished - at most --upstream-timeout
 * plus half a second, by which time the forwarder has ended every query it accepted - and the
 * loop ends. A second stop signal during all this ends the loop at once.
 */
#pragma once

#include <stdbool.h>

struct event_base;
struct config;
struct server;
struct query_engine;

struct shutdown;

/* Everything borrowed; it outlives the shutdown. NULL on ENOMEM. */
struct shutdown *shutdown_new(struct event_base *base, const struct config *cfg,
			      struct server *server, const struct query_engine *qe);

/* A stop signal arrived (`name`: "SIGTERM" or "SIGINT", for the log): begin the stop, or end
 * the loop now when there is no delay or a stop is already under way. */
void shutdown_begin(struct shutdown *s, const char *name);

/* A stop has begun (/ready answers 503). NULL-safe: false. */
bool shutdown_stopping(const struct shutdown *s);

/* NULL-safe. */
void shutdown_free(struct shutdown *s);
