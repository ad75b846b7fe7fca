/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * metrics.h - what modules expose to the Prometheus endpoint (src/metrics.c): fixed-bucket
 * latency and size histograms any module can keep without allocating, the source an answer is
 * labelled with, and the per-server figures an upstream reports through its optional `metrics`
 * operation. Modules only count; metrics.c formats (families grouped, `_total`, `_seconds`,
 * `_bytes`), so no module knows the text format.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "kubemasq/defs.h"

/*
 * Where an answer came from: the `source` label of the response and latency families, so that
 * cluster-zone failures are told from forwarded ones. Each upstream says which it is
 * (struct upstream.source); a cached answer keeps the source it was stored from. The set is
 * fixed, whatever clients ask.
 */
enum metrics_source {
	METRICS_SOURCE_FORWARD,	/* "forward": a network server (the forwarder); the default */
	METRICS_SOURCE_CLUSTER,	/* "cluster": the kube resolver's store */
	METRICS_SOURCE_LOCAL,	/* "local": kubemasq itself (--address, CHAOS, its own errors) */
	METRICS_SOURCES
};

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

/* Upper bounds in bytes of the finite buckets of the message size histograms: CoreDNS's, so
 * that its dashboards' size panels read ours alike. */
#define METRICS_SIZE_BOUNDS                                                                     \
	{ 0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16000, 32000, 48000, 64000 }
#define METRICS_SIZE_BUCKETS 14	/* finite ones; must match METRICS_SIZE_BOUNDS */

struct metrics_size_hist {
	uint64_t bucket[METRICS_SIZE_BUCKETS + 1];	/* not cumulative; [BUCKETS] is +Inf */
	uint64_t sum;					/* bytes; the count is the buckets' sum */
};

/* Count one message of `n` bytes. Every query and answer passes here, the cache hits too: the
 * sizes up to 511 bytes (nearly all DNS messages) find their bucket by arithmetic. */
static inline void
metrics_size_observe(struct metrics_size_hist *h, size_t n)
{
	static const uint32_t bounds[METRICS_SIZE_BUCKETS] = METRICS_SIZE_BOUNDS;
	size_t i;

	if (likely(n <= 400))
		i = (n + 99) / 100;	/* 0; 1-100; 101-200; 201-300; 301-400 */
	else if (n <= 511)
		i = 5;
	else
		for (i = 6; i < METRICS_SIZE_BUCKETS && n > bounds[i]; i++)
			;
	h->bucket[i]++;
	h->sum += n;
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
