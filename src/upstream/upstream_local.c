/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * upstream_local.c - the upstream that answers without asking anybody: dnsmasq's
 * --address=/dom/IP (A and AAAA records for the zone and below, NODATA for the other types and
 * for a family with no address, TTL --local-ttl, AA set) and the NXDOMAIN forms (--address=/dom/
 * and local-only --server=/dom/), which resolve() refuses with -ENXIO so the caller answers at
 * once. Accepted queries are answered in resolve() and delivered from the event loop by
 * upstream_defer.c, because the upstream contract forbids completing a request before resolve()
 * returns.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "kubemasq/defs.h"
#include "kubemasq/dnsmsg.h"
#include "kubemasq/log.h"
#include "kubemasq/upstream.h"
#include "lib/config.h"
#include "upstream/upstream_defer.h"
#include "upstream/upstream_local.h"

/* A reply is built in UPSTREAM_LOCAL_BUF bytes: header and the longest question take 271, which
 * leaves room for 8 AAAA records of 28 bytes (owner as a pointer). 8 A records fit as well. */
#define UPSTREAM_LOCAL_MAX_PER_FAMILY 8
#define UPSTREAM_LOCAL_BUF 512
/* Local answers cost nothing to make, but each accepted query holds an item until the loop runs. */
#define UPSTREAM_LOCAL_MAX_PENDING 4096

struct upstream_local {
	struct upstream base;
	struct upstream_defer defer; /* zeroed for NXDOMAIN zones, which never queue */
	uint32_t ttl;
	bool log_queries;
	bool nxdomain;
	uint64_t queries, failures; /* for /metrics: requests taken, refused (-EBUSY/-ENOMEM) */
	unsigned n4, n6;
	uint8_t ip4[UPSTREAM_LOCAL_MAX_PER_FAMILY][4];
	uint8_t ip6[UPSTREAM_LOCAL_MAX_PER_FAMILY][16];
};

static struct upstream_local *
upstream_local_from(struct upstream *u)
{
	assert(u && u->ops == &upstream_local_ops);
	return container_of(u, struct upstream_local, base);
}

/* Add one address to its family's list, once. */
static int
upstream_local_add_ip(struct upstream_local *l, int family, const uint8_t *ip)
{
	bool v4 = family == AF_INET;
	size_t size = v4 ? 4 : 16;
	unsigned *n = v4 ? &l->n4 : &l->n6;

	for (unsigned i = 0; i < *n; i++)
		if (memcmp(v4 ? l->ip4[i] : l->ip6[i], ip, size) == 0)
			return 0;
	if (*n >= UPSTREAM_LOCAL_MAX_PER_FAMILY)
		return -E2BIG;
	memcpy(v4 ? l->ip4[*n] : l->ip6[*n], ip, size);
	(*n)++;
	return 0;
}

static int
upstream_local_add(struct upstream_local *l, const struct config_address *a, bool *saw_nx)
{
	static const uint8_t any[16];
	int rc;

	switch (a->kind) {
	case CONFIG_ADDRESS_IP:
		if (a->family != AF_INET && a->family != AF_INET6)
			return -EINVAL;
		return upstream_local_add_ip(l, a->family, a->ip);
	case CONFIG_ADDRESS_UNSPEC:
		rc = upstream_local_add_ip(l, AF_INET, any);
		return rc < 0 ? rc : upstream_local_add_ip(l, AF_INET6, any);
	case CONFIG_ADDRESS_NXDOMAIN:
		*saw_nx = true;
		return 0;
	}
	return -EINVAL;
}

/* The queue's items are bare upstream_defer_items, malloc'd by resolve(). */
static void
upstream_local_release(void *ctx UNUSED, struct upstream_defer_item *item)
{
	free(item);
}

/* -EINVAL for a bad address or a missing event base, -E2BIG for more than
 * UPSTREAM_LOCAL_MAX_PER_FAMILY addresses of one family, -ENOMEM. */
static int
upstream_local_create(struct upstream **out, struct event_base *base, const void *args)
{
	const struct upstream_local_args *a = args;
	struct upstream_local *l;
	bool saw_nx = false;
	int rc = 0;

	assert(out && a);
	if (a->n_addresses > 0 && !a->addresses)
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->base.ops = &upstream_local_ops;
	l->base.source = METRICS_SOURCE_LOCAL;
	l->ttl = a->ttl;
	l->log_queries = a->log_queries;
	for (size_t i = 0; i < a->n_addresses && rc == 0; i++)
		rc = upstream_local_add(l, a->addresses[i], &saw_nx);
	l->nxdomain = l->n4 == 0 && l->n6 == 0 && (a->n_addresses == 0 || saw_nx);
	if (rc == 0 && !l->nxdomain)
		rc = upstream_defer_init(&l->defer, base, upstream_local_release, l);
	if (rc < 0) {
		free(l);
		return rc;
	}
	*out = &l->base;
	return 0;
}

static void
upstream_local_free(struct upstream *u)
{
	struct upstream_local *l;

	if (!u)
		return;
	l = upstream_local_from(u);
	/* Answers still queued end with an error, never forgotten (upstream.h: the rule of
	 * free()). */
	upstream_defer_done(&l->defer);
	free(l);
}

static void
upstream_local_log(const struct upstream_req *req, const char *what)
{
	char name[DNS_MAX_NAME * 4 + 1];

	if (dnsmsg_name_to_text(req->q.qname, req->q.qname_len, 0, name, sizeof(name)) < 0)
		strcpy(name, "?");
	log_info("%sconfig %s is %s", req->log_prefix ? req->log_prefix : "", name, what);
}

/* One line per address given, as dnsmasq logs them; NODATA lines say which family was missing. */
static void
upstream_local_log_answer(const struct upstream_local *l, const struct upstream_req *req, bool v4)
{
	char ip[INET6_ADDRSTRLEN];
	unsigned n = v4 ? l->n4 : l->n6;

	if (n == 0)
		upstream_local_log(req, v4 ? "NODATA-IPv4" : "NODATA-IPv6");
	for (unsigned i = 0; i < n; i++) {
		inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? (const void *)l->ip4[i] : l->ip6[i], ip,
			  sizeof(ip));
		upstream_local_log(req, ip);
	}
}

/* The answer for req, as a malloc'd copy in *out; *out stays NULL when it cannot be written
 * (done() then gets -EIO). Returns 0 or -ENOMEM. */
static int
upstream_local_answer(const struct upstream_local *l, const struct upstream_req *req, uint8_t **out,
		      size_t *out_len)
{
	uint8_t buf[UPSTREAM_LOCAL_BUF];
	struct dnsmsg_builder b;
	bool in = req->q.qclass == DNS_CLASS_IN;
	bool a = in && req->q.qtype == DNS_TYPE_A, aaaa = in && req->q.qtype == DNS_TYPE_AAAA;
	int len;

	dnsmsg_builder_init(&b, buf, sizeof(buf), 0, &req->q, true, req->cd, true,
			    DNS_RCODE_NOERROR);
	for (unsigned i = 0; a && i < l->n4; i++)
		dnsmsg_builder_rr(&b, DNS_SECTION_ANSWER, NULL, 0, DNS_TYPE_A, DNS_CLASS_IN, l->ttl,
				  l->ip4[i], 4);
	for (unsigned i = 0; aaaa && i < l->n6; i++)
		dnsmsg_builder_rr(&b, DNS_SECTION_ANSWER, NULL, 0, DNS_TYPE_AAAA, DNS_CLASS_IN,
				  l->ttl, l->ip6[i], 16);
	len = dnsmsg_builder_finish(&b);
	if (l->log_queries) {
		if (a || aaaa)
			upstream_local_log_answer(l, req, a);
		else
			upstream_local_log(req, "NODATA");
	}
	*out = NULL;
	*out_len = 0;
	if (len < 0)
		return 0;
	if (!(*out = malloc((size_t)len)))
		return -ENOMEM;
	memcpy(*out, buf, (size_t)len);
	*out_len = (size_t)len;
	return 0;
}

static int
upstream_local_resolve(struct upstream *u, struct upstream_req *req)
{
	struct upstream_local *l = upstream_local_from(u);
	struct upstream_defer_item *it;

	l->queries++;
	if (l->nxdomain) {
		if (l->log_queries)
			upstream_local_log(req, "NXDOMAIN");
		return -ENXIO;
	}
	if (l->defer.n >= UPSTREAM_LOCAL_MAX_PENDING) {
		l->failures++;
		return -EBUSY;
	}
	it = calloc(1, sizeof(*it));
	if (!it || upstream_local_answer(l, req, &it->reply, &it->len) < 0) {
		free(it);
		l->failures++;
		return -ENOMEM;
	}
	it->req = req;
	req->priv = it;
	upstream_defer_push(&l->defer, it);
	return 0;
}

static void
upstream_local_cancel(struct upstream *u, struct upstream_req *req)
{
	struct upstream_local *l = upstream_local_from(u);
	struct upstream_defer_item *it = req->priv;

	if (!it)
		return;
	assert(it->req == req);
	upstream_defer_cancel(&l->defer, it);
}

/* Every --address zone is an instance of its own; /metrics sums them into one "local" line. */
void
upstream_local_report(upstream_metrics_fn *each, void *ctx, uint64_t queries, uint64_t failures)
{
	struct upstream_server_metrics m = {
		.upstream = "local",
		.server = "local",
		.queries = queries,
		.failures = failures,
	};

	each(ctx, &m);
}

static void
upstream_local_metrics(struct upstream *u, upstream_metrics_fn *each, void *ctx)
{
	struct upstream_local *l = upstream_local_from(u);

	upstream_local_report(each, ctx, l->queries, l->failures);
}

const struct upstream_ops upstream_local_ops = {
	.name = "local",
	.create = upstream_local_create,
	.free = upstream_local_free,
	.resolve = upstream_local_resolve,
	.cancel = upstream_local_cancel,
	.stats = NULL,
	.metrics = upstream_local_metrics,
};
