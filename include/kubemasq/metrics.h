/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * metrics.h - what modules expose to the Prometheus endpoint (src/daemon/metrics_text.c):
 * fixed-bucket latency and size histograms any module can keep without allocating, the source an
 * answer is labelled with, and the per-server figures an upstream reports through its optional
 * `metrics` operation. Modules only count; metrics_text.c formats (families grouped, `_total`,
 * `_seconds`, `_bytes`), so no module knows the text format.
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
	METRICS_SOURCE_FORWARD, /* "forward": a network server; the default (zero) */
	METRICS_SOURCE_CLUSTER, /* "cluster": the kube resolver's store */
	METRICS_SOURCE_LOCAL,	/* "local": kubemasq itself (--address, CHAOS, own errors) */
	METRICS_SOURCES
};

/* Upper bounds in microseconds of the finite buckets; the last bucket (+Inf) is implicit. The
 * lowest buckets separate cache hits and in-process answers from network round trips. */
/* clang-format off */
#define METRICS_HIST_BOUNDS_US                                                                  \
	{ 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,     \
	  1000000, 2500000, 5000000 }
/* clang-format on */
#define METRICS_HIST_BUCKETS 16 /* finite ones; must match METRICS_HIST_BOUNDS_US */

struct metrics_hist {
	uint64_t bucket[METRICS_HIST_BUCKETS + 1]; /* not cumulative; [BUCKETS] is +Inf */
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
/* clang-format off */
#define METRICS_SIZE_BOUNDS                                                                     \
	{ 0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16000, 32000, 48000, 64000 }
/* clang-format on */
#define METRICS_SIZE_BUCKETS 14 /* finite ones; must match METRICS_SIZE_BOUNDS */
#define METRICS_SIZE_EXACT 512	/* sizes below: counted one by one (all within bound 511) */

/*
 * Every query and answer is counted here, the cache hits too, so the common case costs one
 * increment: a message under 512 bytes (nearly every DNS message) is counted by its exact
 * size, and metrics_size_fold() puts those into the buckets on a scrape. 4 KiB a histogram,
 * of which the sizes in use touch a few cache lines.
 */
struct metrics_size_hist {
	uint64_t exact[METRICS_SIZE_EXACT];	   /* messages of each size under 512 */
	uint64_t bucket[METRICS_SIZE_BUCKETS + 1]; /* the larger ones; [BUCKETS] is +Inf */
	uint64_t large_sum;			   /* bytes of the larger ones */
};

/* Count one message of `n` bytes. */
static inline void
metrics_size_observe(struct metrics_size_hist *h, size_t n)
{
	static const uint32_t bounds[METRICS_SIZE_BUCKETS] = METRICS_SIZE_BOUNDS;
	size_t i;

	if (likely(n < METRICS_SIZE_EXACT)) {
		h->exact[n]++;
		return;
	}
	for (i = 6; i < METRICS_SIZE_BUCKETS && n > bounds[i]; i++)
		;
	h->bucket[i]++;
	h->large_sum += n;
}

/* The histogram in its buckets: bucket[0..METRICS_SIZE_BUCKETS] (not cumulative; the last is
 * +Inf) and the sum of the sizes. O(METRICS_SIZE_EXACT): for a scrape, not a query. */
static inline void
metrics_size_fold(const struct metrics_size_hist *h, uint64_t *bucket, uint64_t *sum)
{
	*sum = h->large_sum;
	for (size_t i = 0; i <= METRICS_SIZE_BUCKETS; i++)
		bucket[i] = h->bucket[i];
	for (size_t n = 0; n < METRICS_SIZE_EXACT; n++) {
		/* bounds 0, 100, 200, 300, 400, then 511 for the rest */
		bucket[n <= 400 ? (n + 99) / 100 : 5] += h->exact[n];
		*sum += n * h->exact[n];
	}
}

/* One server of an upstream (a forwarder's address, or the upstream itself). */
struct upstream_server_metrics {
	const char *upstream;		    /* the module: "dns", "local", "kube" */
	const char *server;		    /* "10.0.0.10#53", or the module name */
	uint64_t queries;		    /* requests sent (retries included) */
	uint64_t failures;		    /* timeouts, errors, SERVFAIL/REFUSED replies */
	const struct metrics_hist *latency; /* first send to reply; NULL if not kept */
};

typedef void upstream_metrics_fn(void *ctx, const struct upstream_server_metrics *m);
