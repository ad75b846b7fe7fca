/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * metrics_text.c - what /metrics says (metrics_http.h), in the Prometheus text format 0.0.4:
 * each family once, its # HELP and # TYPE lines first, counters ending in _total, histograms in
 * seconds with cumulative `le` buckets, +Inf, _sum and _count. Label values are escaped, and
 * every label set is bounded (protocols, query types, rcodes, configured servers, object
 * kinds): nothing a client sends becomes a label. Also why the daemon is not ready (/ready),
 * and the process_* figures read from /proc. It reads the counters (lib/stats.h) and the
 * upstreams' operations; no I/O but /proc.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "kubemasq/defs.h"
#include "kubemasq/upstream.h"
#include "lib/cache.h"
#include "lib/config.h"
#include "lib/router.h"
#include "lib/stats.h"
#include "kube/kube_status.h"
#include "daemon/metrics_http.h"
#include "daemon/shutdown.h"

/* --- the text format --- */

struct metrics_out {
	struct evbuffer *b;
	int err;
};

static void metrics_printf(struct metrics_out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
metrics_printf(struct metrics_out *o, const char *fmt, ...)
{
	va_list ap;

	if (o->err)
		return;
	va_start(ap, fmt);
	if (evbuffer_add_vprintf(o->b, fmt, ap) < 0)
		o->err = -ENOMEM;
	va_end(ap);
}

const char *
metrics_escape_label(const char *value, char *buf, size_t cap)
{
	size_t n = 0;

	assert(cap > 0);
	for (const char *p = value; *p && n + 3 < cap; p++) {
		if (*p == '\\' || *p == '"') {
			buf[n++] = '\\';
			buf[n++] = *p;
		} else if (*p == '\n') {
			buf[n++] = '\\';
			buf[n++] = 'n';
		} else {
			buf[n++] = *p;
		}
	}
	buf[n] = '\0';
	return buf;
}

static void
metrics_family(struct metrics_out *o, const char *name, const char *type, const char *help)
{
	metrics_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A family with one unlabelled sample. */
static void
metrics_single(struct metrics_out *o, const char *name, const char *type, const char *help,
	       uint64_t v)
{
	metrics_family(o, name, type, help);
	metrics_printf(o, "%s %" PRIu64 "\n", name, v);
}

/* The samples of one histogram: bucket[0..n] (not cumulative; [n] is +Inf) under the finite
 * upper bounds le[0..n), and `sum` with `prec` decimals. `labels` is "" or `a="b",` (with the
 * trailing comma). */
static void
metrics_buckets(struct metrics_out *o, const char *name, const char *labels, const uint64_t *bucket,
		const double *le, size_t n, double sum, int prec)
{
	uint64_t cum = 0;
	size_t ll = strlen(labels);

	for (size_t i = 0; i < n; i++) {
		cum += bucket[i];
		metrics_printf(o, "%s_bucket{%sle=\"%g\"} %" PRIu64 "\n", name, labels, le[i], cum);
	}
	cum += bucket[n];
	metrics_printf(o, "%s_bucket{%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, cum);
	/* _sum and _count take the labels without the trailing comma */
	if (ll)
		metrics_printf(o, "%s_sum{%.*s} %.*f\n%s_count{%.*s} %" PRIu64 "\n", name,
			       (int)(ll - 1), labels, prec, sum, name, (int)(ll - 1), labels, cum);
	else
		metrics_printf(o, "%s_sum %.*f\n%s_count %" PRIu64 "\n", name, prec, sum, name,
			       cum);
}

/* A latency histogram (kubemasq/metrics.h) in seconds. */
static void
metrics_hist_samples(struct metrics_out *o, const char *name, const char *labels,
		     const struct metrics_hist *h)
{
	static const uint64_t bounds[METRICS_HIST_BUCKETS] = METRICS_HIST_BOUNDS_US;
	static const struct metrics_hist empty;
	double le[METRICS_HIST_BUCKETS];

	if (!h)
		h = &empty;
	for (size_t i = 0; i < METRICS_HIST_BUCKETS; i++)
		le[i] = (double)bounds[i] / 1e6;
	metrics_buckets(o, name, labels, h->bucket, le, METRICS_HIST_BUCKETS,
			(double)h->sum_us / 1e6, 6);
}

/* A message size histogram in bytes. */
static void
metrics_size_samples(struct metrics_out *o, const char *name, const char *labels,
		     const struct metrics_size_hist *h)
{
	static const uint32_t bounds[METRICS_SIZE_BUCKETS] = METRICS_SIZE_BOUNDS;
	uint64_t bucket[METRICS_SIZE_BUCKETS + 1], sum;
	double le[METRICS_SIZE_BUCKETS];

	for (size_t i = 0; i < METRICS_SIZE_BUCKETS; i++)
		le[i] = bounds[i];
	metrics_size_fold(h, bucket, &sum);
	metrics_buckets(o, name, labels, bucket, le, METRICS_SIZE_BUCKETS, (double)sum, 0);
}

static const char *const metrics_protocols[2] = {"udp", "tcp"}; /* stats' [tcp] index */

/* A size histogram family by transport: h[0] UDP, h[1] TCP (struct stats). */
static void
metrics_size_family(struct metrics_out *o, const char *name, const char *help,
		    const struct metrics_size_hist h[2])
{
	metrics_family(o, name, "histogram", help);
	metrics_size_samples(o, name, "protocol=\"udp\",", &h[0]);
	metrics_size_samples(o, name, "protocol=\"tcp\",", &h[1]);
}

static void
metrics_format_queries(struct metrics_out *o, const struct stats *s, size_t inflight)
{
	metrics_family(o, "kubemasq_requests_total", "counter",
		       "DNS requests received, by transport protocol.");
	metrics_printf(o, "kubemasq_requests_total{protocol=\"udp\"} %" PRIu64 "\n",
		       s->queries_udp);
	metrics_printf(o, "kubemasq_requests_total{protocol=\"tcp\"} %" PRIu64 "\n",
		       s->queries_tcp);
	metrics_family(o, "kubemasq_requests_by_type_total", "counter",
		       "Well-formed DNS requests by transport protocol and query type (other: "
		       "every type not listed).");
	for (int p = 0; p < 2; p++)
		for (int i = 0; i < STATS_QTYPE_COUNT; i++)
			metrics_printf(o, "%s{protocol=\"%s\",type=\"%s\"} %" PRIu64 "\n",
				       "kubemasq_requests_by_type_total", metrics_protocols[p],
				       stats_qtype_label((enum stats_qtype)i), s->qtype[p][i]);
	metrics_single(o, "kubemasq_do_requests_total", "counter",
		       "Well-formed DNS requests with the DO (DNSSEC OK) bit.", s->do_requests);
	metrics_family(o, "kubemasq_responses_total", "counter",
		       "DNS responses by source (cluster: the kube resolver, forward: a server, "
		       "local: kubemasq itself; a cache hit counts for the source it was stored "
		       "from) and rcode.");
	for (unsigned src = 0; src < METRICS_SOURCES; src++)
		for (unsigned i = 0; i < STATS_RCODES; i++)
			if (i <= DNS_RCODE_REFUSED || s->rcode[src][i])
				metrics_printf(o, "%s{source=\"%s\",rcode=\"%s\"} %" PRIu64 "\n",
					       "kubemasq_responses_total", stats_source_label(src),
					       stats_rcode_label(i), s->rcode[src][i]);
	metrics_family(o, "kubemasq_request_duration_seconds", "histogram",
		       "Arrival to answer, by source; answers made at once (cache hits, the kube "
		       "store, local) count as 0.");
	for (unsigned src = 0; src < METRICS_SOURCES; src++) {
		char labels[32];

		snprintf(labels, sizeof(labels), "source=\"%s\",", stats_source_label(src));
		metrics_hist_samples(o, "kubemasq_request_duration_seconds", labels,
				     &s->latency[src]);
	}
	metrics_size_family(o, "kubemasq_request_size_bytes",
			    "Sizes of the DNS requests received, by transport protocol.",
			    s->request_size);
	metrics_size_family(o, "kubemasq_response_size_bytes",
			    "Sizes of the DNS responses sent, by transport protocol.",
			    s->response_size);
	metrics_single(o, "kubemasq_forwarded_total", "counter",
		       "Cache misses sent to an upstream (coalesced ones not counted).",
		       s->forwarded);
	metrics_single(o, "kubemasq_answered_locally_total", "counter",
		       "Requests answered from kubemasq's own configuration (--address, local "
		       "records, CHAOS, ...).",
		       s->answered_locally);
	metrics_single(o, "kubemasq_coalesced_total", "counter",
		       "Cache misses that joined an identical request in flight.", s->coalesced);
	metrics_single(o, "kubemasq_inflight_queries", "gauge",
		       "Client requests waiting on an upstream now.", inflight);
	metrics_single(o, "kubemasq_forward_rejections_total", "counter",
		       "Requests refused over --dns-forward-max.", s->refused_forward_max);
	metrics_single(o, "kubemasq_dropped_total", "counter",
		       "Datagrams dropped unanswered (no readable header, or a response).",
		       s->dropped);
	metrics_single(o, "kubemasq_truncated_total", "counter",
		       "Answers sent truncated (TC=1) for the client's size limit.", s->truncated);
	metrics_single(o, "kubemasq_send_errors_total", "counter",
		       "Answers that could not be sent.", s->send_errors);
	metrics_single(o, "kubemasq_tcp_refused_total", "counter",
		       "TCP connections closed at --tcp-max-connections.", s->tcp_refused);
	metrics_single(o, "kubemasq_chaos_queries_total", "counter",
		       "CHAOS statistics queries answered (hits.bind, servers.bind, ...).",
		       s->chaos);
}

static void
metrics_format_cache(struct metrics_out *o, const struct cache *cache, const struct stats *s)
{
	static const char *const types[2] = {"success", "denial"};
	struct cache_stats cs = {0};

	if (cache)
		cache_get_stats(cache, &cs);
	metrics_single(o, "kubemasq_cache_hits_total", "counter", "Cache lookups answered.",
		       cs.hits);
	metrics_family(o, "kubemasq_cache_hits_by_source_total", "counter",
		       "Cache hits by the source of the cached answer and its type (success: "
		       "records, denial: NXDOMAIN or NODATA).");
	for (unsigned src = 0; src < METRICS_SOURCES; src++)
		for (int neg = 0; neg < 2; neg++)
			metrics_printf(o, "%s{source=\"%s\",type=\"%s\"} %" PRIu64 "\n",
				       "kubemasq_cache_hits_by_source_total",
				       stats_source_label(src), types[neg],
				       s->cache_hits_by[src * 2 + (unsigned)neg]);
	metrics_single(o, "kubemasq_cache_misses_total", "counter",
		       "Cache lookups not answered (absent or expired).", cs.misses);
	metrics_single(o, "kubemasq_cache_inserts_total", "counter", "Answers stored in the cache.",
		       cs.insertions);
	metrics_single(o, "kubemasq_cache_evictions_total", "counter",
		       "Unexpired entries evicted to make room.", cs.evictions);
	metrics_single(o, "kubemasq_cache_expired_total", "counter",
		       "Entries dropped because their TTL ran out.", cs.expired);
	metrics_single(o, "kubemasq_cache_renewed_total", "counter",
		       "Expired kube answers served again because the cluster had not changed.",
		       cs.renewed);
	metrics_single(o, "kubemasq_cache_stale_served_total", "counter",
		       "Expired answers served stale (--use-stale-cache).", cs.stale_served);
	metrics_single(o, "kubemasq_cache_prefetches_total", "counter",
		       "Background refreshes started by hits near expiry (--prefetch).",
		       s->prefetches);
	metrics_single(o, "kubemasq_cache_entries", "gauge", "Entries in the cache.", cs.entries);
	metrics_single(o, "kubemasq_cache_negative_entries", "gauge",
		       "NXDOMAIN and NODATA entries in the cache.", cs.negative_entries);
	metrics_single(o, "kubemasq_cache_bytes", "gauge",
		       "Bytes the cache holds, overhead included.", cs.bytes);
	metrics_single(o, "kubemasq_cache_budget_bytes", "gauge",
		       "The cache's byte budget (--cache-bytes); 0 when caching is off.",
		       cs.max_bytes);
}

/* --- upstream servers --- */

/* One counter family over every upstream server; `queries` picks the field. */
static void
metrics_upstream_counter(struct metrics_out *o, const struct stats_server_sum *sums, size_t n,
			 const char *name, const char *help, bool queries)
{
	char up[64], srv[160];

	metrics_family(o, name, "counter", help);
	for (size_t i = 0; i < n; i++)
		metrics_printf(o, "%s{upstream=\"%s\",server=\"%s\"} %" PRIu64 "\n", name,
			       metrics_escape_label(sums[i].upstream, up, sizeof(up)),
			       metrics_escape_label(sums[i].server, srv, sizeof(srv)),
			       queries ? sums[i].queries : sums[i].failures);
}

static void
metrics_format_upstreams(struct metrics_out *o, struct router *router)
{
	struct stats_server_sum *sums = calloc(STATS_MAX_SERVERS, sizeof(*sums));
	char up[64], srv[160], labels[256];
	size_t n, unlisted;

	if (!sums) {
		o->err = -ENOMEM;
		return;
	}
	n = stats_collect_servers(router, NULL, sums, STATS_MAX_SERVERS, &unlisted);
	metrics_single(o, "kubemasq_upstream_servers_unlisted", "gauge",
		       "Upstream server reports (one per upstream and server) over the cap of the "
		       "per-server families, left out of them.",
		       unlisted);
	metrics_upstream_counter(o, sums, n, "kubemasq_upstream_queries_total",
				 "Requests sent to each upstream server, retries included.", true);
	metrics_upstream_counter(o, sums, n, "kubemasq_upstream_failures_total",
				 "Timeouts, errors and SERVFAIL/REFUSED replies of each upstream "
				 "server.",
				 false);
	metrics_family(o, "kubemasq_upstream_duration_seconds", "histogram",
		       "Send to reply of each upstream server (millisecond resolution).");
	for (size_t i = 0; i < n; i++) {
		if (!sums[i].has_latency)
			continue;
		snprintf(labels, sizeof(labels), "upstream=\"%s\",server=\"%s\",",
			 metrics_escape_label(sums[i].upstream, up, sizeof(up)),
			 metrics_escape_label(sums[i].server, srv, sizeof(srv)));
		metrics_hist_samples(o, "kubemasq_upstream_duration_seconds", labels,
				     &sums[i].latency);
	}
	free(sums);
}

/* --- kube --- */

/* The first upstream whose status (the `status` operation) `want` picks. What the status points
 * to stays valid: the search calls into no upstream after the one it found. */
struct metrics_find {
	bool (*want)(const struct upstream_status *st);
	struct upstream_status st;
	bool found;
};

static void
metrics_find_one(struct upstream *u, void *ctx)
{
	struct metrics_find *f = ctx;

	if (f->found)
		return;
	upstream_status(u, &f->st);
	f->found = f->want(&f->st);
}

static bool
metrics_find(struct router *router, bool (*want)(const struct upstream_status *),
	     struct upstream_status *out)
{
	struct metrics_find f = {.want = want, .found = false};

	if (router)
		router_foreach(router, metrics_find_one, &f);
	*out = f.st;
	return f.found;
}

/* the kube resolver: it reports cluster figures */
static bool
metrics_is_cluster(const struct upstream_status *st)
{
	return st->cluster != NULL;
}

static bool
metrics_is_unready(const struct upstream_status *st)
{
	return !st->ready;
}

static void
metrics_format_kube(struct metrics_out *o, const struct kube_status *st)
{
	static const char *const fam = "kubemasq_kube_programming_duration_seconds";

	metrics_family(o, "kubemasq_kube_objects", "gauge",
		       "Objects in the kube resolver's store, by kind.");
	metrics_printf(o,
		       "kubemasq_kube_objects{kind=\"namespace\"} %zu\n"
		       "kubemasq_kube_objects{kind=\"service\"} %zu\n"
		       "kubemasq_kube_objects{kind=\"endpointslice\"} %zu\n"
		       "kubemasq_kube_objects{kind=\"endpoint\"} %zu\n"
		       "kubemasq_kube_objects{kind=\"pod\"} %zu\n",
		       st->namespaces, st->services, st->slices, st->endpoints, st->pods);
	metrics_single(o, "kubemasq_kube_synced", "gauge",
		       "1 once the first full sync of the cluster source has happened.",
		       st->synced ? 1 : 0);
	metrics_single(o, "kubemasq_kube_connected", "gauge",
		       "1 while watching the API (or the last snapshot read succeeded).",
		       st->connected ? 1 : 0);
	metrics_single(o, "kubemasq_kube_last_sync_timestamp_seconds", "gauge",
		       "Wall clock of the last complete sync, 0 = never.",
		       st->last_sync > 0 ? (uint64_t)st->last_sync : 0);
	metrics_single(o, "kubemasq_kube_watch_restarts_total", "counter",
		       "Watches started again after a normal end or a drop.", st->watch_restarts);
	metrics_single(o, "kubemasq_kube_relists_total", "counter",
		       "LISTs after the first one (410 Gone, errors).", st->relists);
	metrics_single(o, "kubemasq_kube_reconnects_total", "counter",
		       "Connection attempts to the API server that followed a failure.",
		       st->reconnects);
	metrics_single(o, "kubemasq_kube_events_total", "counter", "Watch events applied.",
		       st->events);
	metrics_single(o, "kubemasq_kube_bad_events_total", "counter",
		       "Watch events or objects refused.", st->bad_events);
	metrics_family(o, fam, "histogram",
		       "EndpointSlice change (last-change-trigger-time) to applied in DNS.");
	metrics_hist_samples(o, fam, "", st->programming);
}

int
metrics_format(const struct metrics_sources *src, struct evbuffer *out)
{
	struct metrics_out o = {.b = out};
	struct upstream_status st;

	metrics_family(&o, "kubemasq_build_info", "gauge", "Always 1; the version as a label.");
	metrics_printf(&o, "kubemasq_build_info{version=\"%s\"} 1\n", KUBEMASQ_VERSION);
	metrics_format_queries(&o, src->stats, src->stats->waiting);
	metrics_format_cache(&o, src->cache, src->stats);
	metrics_format_upstreams(&o, src->router);
	metrics_single(&o, "kubemasq_upstream_servers_looping", "gauge",
		       "Server addresses out of service because our probe to them came back "
		       "(--dns-loop-detect).",
		       src->stats->servers_looping);
	metrics_single(&o, "kubemasq_upstream_loops_detected_total", "counter",
		       "Loop probes (--dns-loop-detect) that came back to kubemasq's own "
		       "listener, each dropped.",
		       src->stats->loop_probes_back);
	if (metrics_find(src->router, metrics_is_cluster, &st))
		metrics_format_kube(&o, st.cluster);
	return o.err;
}

int
metrics_format_endpoint(uint64_t refused_conns, struct evbuffer *out)
{
	struct metrics_out o = {.b = out};

	metrics_single(&o, "kubemasq_metrics_connections_refused_total", "counter",
		       "Connections to this port refused over its connection cap.", refused_conns);
	return o.err;
}

const char *
metrics_not_ready(const struct metrics_sources *src, char *buf, size_t cap)
{
	struct upstream_status st;

	if (shutdown_stopping(src->shutdown)) {
		snprintf(buf, cap, "shutting down");
		return buf;
	}
	/* We exist only once the DNS listeners are bound (main.c), so "listening" holds. */
	if (!metrics_find(src->router, metrics_is_unready, &st))
		return NULL;
	snprintf(buf, cap, "%s", st.reason && *st.reason ? st.reason : "not ready");
	return buf;
}

/* --- process --- */

int
metrics_process_parse_stat(const char *text, uint64_t page_size, uint64_t *start_ticks,
			   struct metrics_process *out)
{
	/* after the command: state is field 3; starttime 22, vsize 23, rss 24 (proc(5)) */
	enum { STARTTIME = 22 - 3, VSIZE = 23 - 3, RSS = 24 - 3 };
	uint64_t v[RSS + 1];
	const char *p = strrchr(text, ')');
	char *end;

	if (!p)
		return -EINVAL;
	p++;
	for (int i = 0; i <= RSS; i++) {
		while (*p == ' ')
			p++;
		if (i == 0) { /* the state: a letter */
			if (!*p || *p == '\n')
				return -EINVAL;
			p++;
			v[0] = 0;
			continue;
		}
		if (*p == '-') /* some fields are signed; none of ours is negative */
			p++;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v[i] = strtoull(p, &end, 10);
		p = end;
	}
	if (start_ticks)
		*start_ticks = v[STARTTIME];
	out->virtual_bytes = v[VSIZE];
	out->resident_bytes = v[RSS] * page_size;
	out->has_stat = true;
	return 0;
}

/* The text of a /proc file into buf (at most cap - 1 bytes, terminated); -errno on failure. */
static ssize_t
metrics_read_file(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, cap - 1);
	if (n < 0)
		n = -errno;
	else
		buf[n] = '\0';
	close(fd);
	return n;
}

double
metrics_process_start_time(void)
{
	struct metrics_process unused;
	char buf[1024], line[256];
	uint64_t ticks, btime = 0;
	long hz = sysconf(_SC_CLK_TCK);
	FILE *f;

	if (hz <= 0 || metrics_read_file("/proc/self/stat", buf, sizeof(buf)) <= 0 ||
	    metrics_process_parse_stat(buf, 1, &ticks, &unused) < 0)
		return 0;
	/* /proc/stat: a line per CPU and long interrupt lines, read in pieces; btime is short */
	f = fopen("/proc/stat", "re");
	if (!f)
		return 0;
	while (!btime && fgets(line, sizeof(line), f))
		if (strncmp(line, "btime ", 6) == 0)
			btime = strtoull(line + 6, NULL, 10);
	fclose(f);
	return btime ? (double)btime + (double)ticks / (double)hz : 0;
}

/* Entries of /proc/self/fd but . and ..: the descriptor reading it included, as the clients'
 * figure does. */
static int
metrics_count_fds(uint64_t *n)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	if (!d)
		return -errno;
	*n = 0;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			(*n)++;
	closedir(d);
	return 0;
}

void
metrics_process_read(struct metrics_process *out, double start_time)
{
	struct rusage ru;
	struct rlimit rl;
	char buf[1024];
	long page = sysconf(_SC_PAGESIZE);

	memset(out, 0, sizeof(*out));
	out->start_time = start_time;
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		out->cpu_seconds = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
				   (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		out->max_fds = rl.rlim_cur;
	if (page > 0 && metrics_read_file("/proc/self/stat", buf, sizeof(buf)) > 0)
		metrics_process_parse_stat(buf, (uint64_t)page, NULL, out);
	out->has_fds = metrics_count_fds(&out->open_fds) == 0;
}

int
metrics_format_process(const struct metrics_process *p, struct evbuffer *out)
{
	struct metrics_out o = {.b = out};

	metrics_family(&o, "process_cpu_seconds_total", "counter",
		       "User and system CPU time spent, in seconds.");
	metrics_printf(&o, "process_cpu_seconds_total %.6f\n", p->cpu_seconds);
	if (p->start_time > 0) {
		metrics_family(&o, "process_start_time_seconds", "gauge",
			       "Start time of the process since the Unix epoch, in seconds.");
		metrics_printf(&o, "process_start_time_seconds %.2f\n", p->start_time);
	}
	if (p->has_stat) {
		metrics_single(&o, "process_resident_memory_bytes", "gauge",
			       "Resident memory size in bytes.", p->resident_bytes);
		metrics_single(&o, "process_virtual_memory_bytes", "gauge",
			       "Virtual memory size in bytes.", p->virtual_bytes);
	}
	if (p->has_fds)
		metrics_single(&o, "process_open_fds", "gauge", "Open file descriptors.",
			       p->open_fds);
	metrics_single(&o, "process_max_fds", "gauge",
		       "Maximum number of open file descriptors (the soft RLIMIT_NOFILE).",
		       p->max_fds);
	return o.err;
}
