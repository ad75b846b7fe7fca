/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * resolv.h - keep the default servers in step with the resolv-file, as dnsmasq does: re-read
 * it on SIGHUP and when it changes on disk (checked once a second), and when the list of
 * nameservers changed, swap in a new default forwarder. The old one keeps completing what it
 * accepted and is freed once --upstream-timeout has passed.
 */
#pragma once

struct event_base;
struct config;
struct router;
struct upstream;
struct resolv_watch;

/* Watch cfg->resolv_file unless --no-resolv (then returns a watch that does nothing).
 * `current` is the default forwarder in the router now (may be NULL). NULL on ENOMEM. */
struct resolv_watch *resolv_watch_new(struct event_base *base, struct config *cfg,
				      struct router *router, struct upstream *current);

/* Re-read now (SIGHUP). */
void resolv_watch_reload(struct resolv_watch *w);

/* Call fn(ctx) each time a new default forwarder has taken over (the servers changed): the
 * loop detector probes them (loop_detect.h). One callback; NULL removes it. */
void resolv_watch_on_swap(struct resolv_watch *w, void (*fn)(void *ctx), void *ctx);

/* Frees retired forwarders too; queries still pending on them are completed with an error
 * (upstream.h, the rule of free()), so query.c must still be there. NULL-safe. */
void resolv_watch_free(struct resolv_watch *w);
