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

/* Build the router. Returns NULL with one line in err on failure. Logs the dnsmasq-style
 * "using nameserver ..." lines. */
struct router *setup_router(struct event_base *base, const struct config *cfg, char *err,
			    size_t errlen);
