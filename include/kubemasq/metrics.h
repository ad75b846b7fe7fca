/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * metrics.h - what modules expose to the Prometheus endpoint (src/metrics.c): a fixed-bucket
 * latency histogram any module can keep without allocating, and the per-server figures an
 * upstream reports through its optional `metrics` operation. Modules only count; metrics.c
 * formats (families grouped, `_total`, `_seconds`), so no module knows the text format.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Upper bounds in microseconds of the finite buckets; the last bucket (+Inf) is implicit. The
 * lowest buckets separate cache hits and in-process answers from network round trips. */
#define METRICS_HIST_BOUNDS_US                                                                  \
	{ 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,     \
	  1000000, 2500000, 5000000 }
#define METRICS_HIST_BUCKETS 16	/* finite ones; must match METRICS_HIST_BOUNDS_US */

struct metrics_hist {
	uint64_t bucket[METRICS_HIST_BUCKETS + 1];	/* not cumulative; [BUCKETS] is +Inf */
	uint64_t count;
	uint64_t sum_us;
};

/* Count one observation of `us` microseconds. O(buckets), no allocation. */
static inline void
metrics_hist_observe(struct metrics_hist *h, uint64_t us)
{
	static const uint64_t bounds[METRICS_HIST_BUCKETS] = METRICS_HIST_BOUNDS_US;
	size_t i = 0;

	while (i < METRICS_HIST_BUCKETS && us > bounds[i])
		i++;
	h->bucket[i]++;
	h->count++;
	h->sum_us += us;
}

/* One server of an upstream (a forwarder's address, or the upstream itself). */
struct upstream_server_metrics {
	const char *upstream;		/* the module: "dns", "local", "kube" */
	const char *server;		/* "10.0.0.10#53", or the module name */
	uint64_t queries;		/* requests sent (retries included) */
	uint64_t failures;		/* timeouts, errors, SERVFAIL/REFUSED replies */
	const struct metrics_hist *latency;	/* first send to reply; NULL if not kept */
};

typedef void upstream_metrics_fn(void *ctx, const struct upstream_server_metrics *m);
