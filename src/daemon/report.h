/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * report.h - the SIGUSR1 report: dnsmasq's cache and forwarding lines in dnsmasq's wording,
 * each upstream's lines (its `stats` operation), kubemasq's totals, and with --log-queries a
 * dump of the cache (format in report.c). It reads the counters (stats.h) and writes lines
 * through a callback: main.c sends them to the log.
 */
#pragma once

#include <stdbool.h>

struct cache;
struct router;
struct stats;

/* What the report reads; all borrowed. cache may be NULL (--cache-size=0), router NULL. */
struct report_sources {
	const struct stats *stats;
	const struct cache *cache;
	unsigned cache_size; /* --cache-size (0: unset): dnsmasq's "cache size" figure */
	bool dump_cache;     /* --log-queries: the cache dump after the totals */
	struct router *router;
};

/* One line, without a trailing newline; borrowed for the call. The shape of upstream_stats_fn,
 * so upstreams' lines pass straight through. */
typedef void report_line_fn(void *ctx, const char *line);

/* Write the report, one call of `line` per line. */
void report_write(const struct report_sources *src, report_line_fn *line, void *ctx);
