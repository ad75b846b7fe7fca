/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * query_log.c - the lines of --log-queries (query_log.h), in dnsmasq's wording: "query[A] NAME
 * from ADDR", "reply NAME is VALUE" (with `extra`, the answer records in zone-file form through
 * ldns, rrtext.h), "cached", the rcode or NODATA; and with `extra` the serial number and
 * address/port prefix that ties a query's lines together. Never on the hit path unless
 * --log-queries is on.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "kubemasq/defs.h"
#include "kubemasq/dnsmsg.h"
#include "kubemasq/log.h"
#include "lib/config.h"
#include "daemon/query_log.h"
#include "daemon/rrtext.h"

/* The client's address without the port, as dnsmasq logs it. */
static const char *
query_log_addr(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
	const struct sockaddr_in6 *v6 = (const void *)ss;
	const struct sockaddr_in *v4 = (const void *)ss;
	const void *a = ss->ss_family == AF_INET6 ? (const void *)&v6->sin6_addr
						  : (const void *)&v4->sin_addr;

	if (!inet_ntop(ss->ss_family, a, buf, (socklen_t)cap))
		snprintf(buf, cap, "?");
	return buf;
}

void
query_log_prefix(char *buf, size_t cap, uint32_t serial, const struct sockaddr_storage *peer)
{
	char addr[INET6_ADDRSTRLEN];
	const struct sockaddr_in *v4 = (const void *)peer;
	const struct sockaddr_in6 *v6 = (const void *)peer;

	snprintf(buf, cap, "%" PRIu32 " %s/%u ", serial, query_log_addr(peer, addr, sizeof(addr)),
		 ntohs(peer->ss_family == AF_INET6 ? v6->sin6_port : v4->sin_port));
}

void
query_log_query(const char *prefix, const struct dnsmsg_query *dq,
		const struct sockaddr_storage *peer)
{
	char name[1024], type[16], addr[INET6_ADDRSTRLEN];

	if (dnsmsg_name_to_text(dq->q.qname, dq->q.qname_len, 0, name, sizeof(name)) < 0)
		return;
	log_info("%squery[%s] %s from %s", prefix,
		 dnsmsg_type_name(dq->q.qtype, type, sizeof(type)), name,
		 query_log_addr(peer, addr, sizeof(addr)));
}

static const char *
query_rcode_name(unsigned rcode)
{
	static const char *const names[] = {"NOERROR",	"FORMERR", "SERVFAIL",
					    "NXDOMAIN", "NOTIMP",  "REFUSED"};

	return rcode < ARRAY_SIZE(names) ? names[rcode] : "error";
}

struct query_log_rr {
	const char *prefix, *what;
};

static void
query_log_rr(void *ctx, const char *rr)
{
	const struct query_log_rr *l = ctx;

	log_info("%s%s %s", l->prefix, l->what, rr);
}

/* --log-queries=extra: the answer records in zone-file form through ldns ("reply NAME TTL IN
 * TYPE RDATA"), at most this many per answer. */
#define QUERY_LOG_RRS 64

void
query_log_reply(const struct config *cfg, const char *prefix, const char *what, const uint8_t *pkt,
		size_t len, uint16_t qtype)
{
	struct query_log_rr l = {.prefix = prefix, .what = what};
	struct dnsmsg_iter it;
	struct dnsmsg_rr rr;
	char name[1024], val[1024];
	unsigned n = 0;
	int r;

	if (dnsmsg_name_to_text(pkt, len, DNS_HDR_LEN, name, sizeof(name)) < 0 ||
	    dnsmsg_iter_init(&it, pkt, len) < 0)
		return;
	if (cfg->log_queries_extra) {
		r = rrtext_foreach(pkt, len, RRTEXT_ANSWER, UINT32_MAX, QUERY_LOG_RRS, query_log_rr,
				   &l);
		if (r > QUERY_LOG_RRS)
			log_info("%s%s %s is %d more records", prefix, what, name,
				 r - QUERY_LOG_RRS);
		if (r > 0)
			return;
		if (r < 0) /* ldns refused what dnsmsg accepted: dnsmasq's lines then */
			log_debug("ldns cannot read the answer for %s: %s", name, strerror(-r));
	}
	while (dnsmsg_iter_next(&it, &rr) == 0 && rr.section == DNS_SECTION_ANSWER) {
		n++;
		log_info("%s%s %s is %s", prefix, what, name,
			 dnsmsg_rdata_text(pkt, len, &rr, false, val, sizeof(val)));
	}
	if (n)
		return;
	if (dnsmsg_rcode(pkt) == DNS_RCODE_NXDOMAIN)
		log_info("%s%s %s is NXDOMAIN", prefix, what, name);
	else if (dnsmsg_rcode(pkt) != DNS_RCODE_NOERROR)
		log_info("%s%s %s is %s", prefix, what, name, query_rcode_name(dnsmsg_rcode(pkt)));
	else
		log_info("%s%s %s is %s", prefix, what, name,
			 qtype == DNS_TYPE_A	  ? "NODATA-IPv4"
			 : qtype == DNS_TYPE_AAAA ? "NODATA-IPv6"
						  : "NODATA");
}
