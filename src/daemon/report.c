/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * report.c - the SIGUSR1 report: dnsmasq's lines first, in dnsmasq's wording so existing log
 * parsers keep working (cache size and re-used insertions, queries forwarded and answered
 * locally, one line per upstream server), then kubemasq's own totals, and with --log-queries
 * a dump of the cache, as dnsmasq does. dnsmasq dumps a table (Host, Address, Flags, Expires);
 * ours is one self-describing line per entry, most recently used first:
 *
 *     cache NAME TYPE TTL VALUE [+N more] [DO] [CD]
 *
 * NAME and TYPE are the question (the key), TTL the seconds the entry has left, VALUE the
 * first answer record's data (address, target name, or <TYPE> for other types), or NXDOMAIN /
 * NODATA for a negative entry, "+N more" the other answer records, DO and CD the key's flags.
 * e.g. "cache www.example.com. A 293 192.0.2.10 +1 more". Each entry line is followed by the
 * entry's records in zone-file form, formatted by ldns (rrtext.c), with the TTLs a hit would
 * give now: the answer records, or for a negative entry the authority's SOA:
 *
 *     record www.example.com. 293 IN A 192.0.2.10
 *     record www.example.com. 293 IN A 192.0.2.11
 *
 * At most REPORT_DUMP_RRS record lines per entry ("record N more not shown" after them) and
 * REPORT_DUMP_MAX entries: a last line tells how many entries were left out, so that a million
 * entries do not write a gigabyte of log while the event loop waits.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "kubemasq/defs.h"
#include "kubemasq/dnsmsg.h"
#include "kubemasq/upstream.h"
#include "lib/cache.h"
#include "lib/clock.h"
#include "lib/router.h"
#include "lib/stats.h"
#include "daemon/report.h"
#include "daemon/rrtext.h"

/* Where the lines go: the caller's callback. */
struct report_out {
	report_line_fn *line;
	void *ctx;
};

static void report_printf(struct report_out *o, const char *fmt, ...) PRINTF_LIKE(2, 3);

static void
report_printf(struct report_out *o, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	o->line(o->ctx, buf);
}

static void
report_upstream(struct upstream *u, void *ctx)
{
	struct report_out *o = ctx;

	if (u->ops->stats)
		u->ops->stats(u, o->line, o->ctx);
}

/* Logging a line per entry holds the event loop: a dump of a large cache stops here. */
#define REPORT_DUMP_MAX 10000

/* Record lines per entry: an entry can hold hundreds (a 64 KiB answer). */
#define REPORT_DUMP_RRS 8

struct report_dump {
	struct report_out *o;
	uint64_t shown, left_out;
};

static void
report_dump_rr(void *ctx, const char *rr)
{
	report_printf(ctx, "record %s", rr);
}

static void
report_dump_entry(void *ctx, const struct cache_key *key, uint32_t ttl_left, const uint8_t *reply,
		  size_t len)
{
	struct report_dump *d = ctx;
	char name[1024], type[16], val[1024] = "", more[32] = "";
	struct dnsmsg_iter it;
	struct dnsmsg_rr rr;
	unsigned n = 0;
	int r;

	if (d->shown >= REPORT_DUMP_MAX) {
		d->left_out++;
		return;
	}
	d->shown++;
	if (dnsmsg_name_to_text(key->qname, key->qname_len, 0, name, sizeof(name)) < 0)
		snprintf(name, sizeof(name), "?");
	if (dnsmsg_iter_init(&it, reply, len) == 0)
		while (dnsmsg_iter_next(&it, &rr) == 0 && rr.section == DNS_SECTION_ANSWER)
			if (n++ == 0)
				dnsmsg_rdata_text(reply, len, &rr, true, val, sizeof(val));
	if (n == 0)
		snprintf(val, sizeof(val), "%s",
			 dnsmsg_rcode(reply) == DNS_RCODE_NXDOMAIN ? "NXDOMAIN" : "NODATA");
	else if (n > 1)
		snprintf(more, sizeof(more), " +%u more", n - 1);
	report_printf(d->o, "cache %s %s %" PRIu32 " %s%s%s%s", name,
		      dnsmsg_type_name(key->qtype, type, sizeof(type)), ttl_left, val, more,
		      key->flags & CACHE_F_DO ? " DO" : "", key->flags & CACHE_F_CD ? " CD" : "");
	/* a hit shows min(TTL - elapsed, left): every TTL not below the entry's lifetime as left */
	r = rrtext_foreach(reply, len, n ? RRTEXT_ANSWER : RRTEXT_AUTHORITY, ttl_left,
			   REPORT_DUMP_RRS, report_dump_rr, d->o);
	if (r > REPORT_DUMP_RRS)
		report_printf(d->o, "record %d more not shown", r - REPORT_DUMP_RRS);
}

static void
report_dump_cache(struct report_out *o, const struct cache *cache)
{
	struct report_dump d = {.o = o};

	report_printf(
		o,
		"cache dump: name type ttl-left first-answer, then its records in zone-file form");
	cache_foreach(cache, clock_now_ms(), report_dump_entry, &d);
	if (d.left_out)
		report_printf(o, "cache dump: %" PRIu64 " more entries not shown", d.left_out);
}

void
report_write(const struct report_sources *src, report_line_fn *line, void *ctx)
{
	struct report_out out = {.line = line, .ctx = ctx}, *o = &out;
	const struct stats *s = src->stats;
	const struct cache *cache = src->cache;
	struct cache_stats cs = {0};

	if (cache)
		cache_get_stats(cache, &cs);
	report_printf(o, "time %lu", (unsigned long)time(NULL));
	report_printf(o,
		      "cache size %u, %" PRIu64 "/%" PRIu64
		      " cache insertions re-used unexpired cache entries.",
		      (unsigned)stats_cache_size(cache, src->cache_size), cs.evictions,
		      cs.insertions);
	report_printf(o, "queries forwarded %" PRIu64 ", queries answered locally %" PRIu64,
		      s->forwarded, s->answered_locally + s->cache_hits);
	if (src->router)
		router_foreach(src->router, report_upstream, o);
	report_printf(o,
		      "kubemasq cache: %" PRIu64 " bytes used of %" PRIu64 ", entries %" PRIu64
		      ", hits %" PRIu64 ", misses %" PRIu64 ", evictions %" PRIu64
		      ", expired %" PRIu64 ", negative entries %" PRIu64 ", renewed %" PRIu64
		      ", stale served %" PRIu64 ", prefetches %" PRIu64,
		      cs.bytes, cs.max_bytes, cs.entries, cs.hits, cs.misses, cs.evictions,
		      cs.expired, cs.negative_entries, cs.renewed, cs.stale_served, s->prefetches);
	report_printf(o,
		      "kubemasq queries: udp %" PRIu64 ", tcp %" PRIu64 ", coalesced %" PRIu64
		      ", refused over dns-forward-max %" PRIu64 ", servfail %" PRIu64
		      ", truncated %" PRIu64 ", chaos %" PRIu64,
		      s->queries_udp, s->queries_tcp, s->coalesced, s->refused_forward_max,
		      s->servfail, s->truncated, s->chaos);
	report_printf(o,
		      "kubemasq errors: formerr %" PRIu64 ", notimp %" PRIu64 ", badvers %" PRIu64
		      ", dropped %" PRIu64 ", send errors %" PRIu64 ", tcp refused %" PRIu64
		      ", tcp idle closed %" PRIu64,
		      s->formerr, s->notimp, s->badvers, s->dropped, s->send_errors, s->tcp_refused,
		      s->tcp_idle_closed);
	if (src->dump_cache && cache)
		report_dump_cache(o, cache);
}
