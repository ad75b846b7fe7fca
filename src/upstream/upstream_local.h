/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * upstream_local.h - answers made without asking anybody: dnsmasq's --address=/dom/IP
 * (A/AAAA for the domain and below, NODATA for other types, TTL --local-ttl) and the
 * local-only forms (--address=/dom/ and --server=/dom/: NXDOMAIN).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kubemasq/upstream.h"

struct config_address;

struct upstream_local_args {
	const struct config_address *const *addresses; /* for this zone; borrowed */
	size_t n_addresses;			       /* 0 = local only: NXDOMAIN */
	uint32_t ttl;
	bool log_queries;
};

/* resolve(): -ENXIO for NXDOMAIN zones (the caller answers NXDOMAIN at once); otherwise 0, and
 * the answer is delivered from the event loop right after. */
extern const struct upstream_ops upstream_local_ops;

/* Report one "local" server line of `queries` taken and `failures` refused to `each`: every
 * source of kubemasq's own answers (--address zones, local records) is this one line. */
void upstream_local_report(upstream_metrics_fn *each, void *ctx, uint64_t queries,
			   uint64_t failures);
