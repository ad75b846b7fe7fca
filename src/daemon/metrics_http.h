/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * metrics_http.h - the HTTP endpoint on --metrics-address: Prometheus `/metrics` (text exposition
 * format 0.0.4), `/health` and `/ready`, served by libevent's evhttp from the daemon's event loop.
 * Modules keep their own counters (struct stats, struct cache_stats, each upstream's `metrics`
 * operation, the `status` operation); this module only reads and formats them on a scrape.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "kubemasq/metrics.h"

struct event_base;
struct evbuffer;
struct cache;
struct config;
struct router;
struct stats;
struct shutdown;
struct metrics;

/* What a scrape reads; every pointer borrowed, outliving the endpoint. cache may be NULL. */
struct metrics_sources {
	const struct config *cfg;
	const struct stats *stats;
	const struct cache *cache;
	struct router *router;
	const struct shutdown *shutdown; /* may be NULL: /ready 503 once it is stopping */
};

/*
 * Parse --metrics-address: "IPv4:PORT" or "[IPv6]:PORT", a literal address (no names) and a
 * port 1-65535. Returns 0 and *ss / *len, or -EINVAL with a message naming the option in err.
 */
int metrics_parse_address(const char *text, struct sockaddr_storage *ss, socklen_t *len, char *err,
			  size_t errlen);

/*
 * Listen on cfg->metrics_address (the caller checks it is set) and serve from `base`.
 * Returns NULL with a one-line message in err (bad address, cannot bind, no memory).
 */
struct metrics *metrics_new(struct event_base *base, const struct metrics_sources *src, char *err,
			    size_t errlen);

/* Stop listening and close every HTTP connection. NULL-safe. */
void metrics_free(struct metrics *m);

/*
 * The /metrics body: every family in the text format 0.0.4, appended to `out`. Pure except
 * for what the sources report; no I/O. Returns 0 or -ENOMEM.
 */
int metrics_format(const struct metrics_sources *src, struct evbuffer *out);

/* The endpoint's own family (connections refused over its cap), appended to `out`. Returns 0
 * or -ENOMEM. */
int metrics_format_endpoint(uint64_t refused_conns, struct evbuffer *out);

/* Why the daemon is not ready, or NULL when it is (/ready): written into buf. */
const char *metrics_not_ready(const struct metrics_sources *src, char *buf, size_t cap);

/*
 * The standard process_* families of the Prometheus clients, so that dashboards and alerts
 * written for any exporter read ours: CPU seconds, resident and virtual memory, start time,
 * open and maximum file descriptors. Linux: /proc/self, getrusage(), getrlimit().
 */
struct metrics_process {
	double cpu_seconds;	 /* user + system, getrusage() */
	double start_time;	 /* seconds since the epoch; 0 when unknown */
	uint64_t resident_bytes; /* /proc/self/stat, when has_stat */
	uint64_t virtual_bytes;
	uint64_t open_fds; /* entries of /proc/self/fd, when has_fds */
	uint64_t max_fds;  /* the soft RLIMIT_NOFILE */
	bool has_stat, has_fds;
};

/*
 * Parse the text of /proc/PID/stat (its second field, the command, may hold spaces and
 * parentheses: the fields are counted from the last ')'): the resident set (pages, times
 * page_size) and virtual size into *out (has_stat set), the start time in clock ticks after
 * boot into *start_ticks (may be NULL). Pure. Returns 0, or -EINVAL for a text too short.
 */
int metrics_process_parse_stat(const char *text, uint64_t page_size, uint64_t *start_ticks,
			       struct metrics_process *out);

/* When this process started, in seconds since the epoch (/proc/self/stat and the boot time in
 * /proc/stat); 0 when they cannot be read. Constant: read once. */
double metrics_process_start_time(void);

/* This process's figures now; start_time is the caller's (metrics_process_start_time). A
 * figure that cannot be read is left out (has_stat, has_fds false). */
void metrics_process_read(struct metrics_process *out, double start_time);

/* The process_* families for `p`, appended to `out`. Returns 0 or -ENOMEM. */
int metrics_format_process(const struct metrics_process *p, struct evbuffer *out);

/* Escape a label value for the text format (\\, \", \n) into buf; returns buf. */
const char *metrics_escape_label(const char *value, char *buf, size_t cap);
