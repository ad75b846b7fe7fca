/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * setup.h - turn the configuration's --server and --address lines into upstream instances
 * bound to their zones in a router: the default forwarder at ".", one forwarder per domain
 * server list, local answers for --address and local-only domains.
 */
#pragma once

#include <stddef.h>

struct event_base;
struct config;
struct router;
struct upstream;
struct upstream_hooks;

/* Build the router. Returns NULL with one line in err on failure. Logs the dnsmasq-style
 * "using nameserver ..." lines. *defaults_out is the forwarder bound to the root (owned by the
 * router), or NULL when there are no default servers. */
struct router *setup_router(struct event_base *base, const struct config *cfg,
			    struct upstream **defaults_out, char *err, size_t errlen);

/* Give every upstream the router owns the daemon's hooks (cache invalidation); borrowed, they
 * must outlive the router. Upstreams created later (a resolv-file change) get none. */
void setup_hooks(struct router *r, const struct upstream_hooks *hooks);

/* A forwarder for the default servers (--server=IP lines and the resolv-file's), not bound
 * anywhere; the caller owns it. NULL with err[0] == 0 when there are no default servers,
 * NULL with err set on failure. */
struct upstream *setup_default_forwarder(struct event_base *base, const struct config *cfg,
					 char *err, size_t errlen);
