/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * setup.c - from configuration lines to routed upstreams. dnsmasq groups --server lines by
 * domain: every domain gets the list of servers named for it, in order; "/dom/" makes it
 * local-only, "/dom/#" sends it to the default servers. --address lines for a domain become
 * one local upstream, tried before any server of the same domain.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kubemasq/log.h"
#include "kubemasq/netaddr.h"
#include "kubemasq/upstream.h"
#include "lib/config.h"
#include "lib/router.h"
#include "upstream/local_records.h"
#include "upstream/upstream_dns.h"
#include "upstream/upstream_kube.h"
#include "upstream/upstream_local.h"
#include "daemon/setup.h"

static struct upstream *
setup_forwarder(struct event_base *base, const struct config *cfg,
		const struct config_sockaddr *servers, size_t n, bool is_default)
{
	struct upstream_dns_args args = {
		.servers = servers,
		.n_servers = n,
		.order = cfg->all_servers    ? UPSTREAM_DNS_ALL
			 : cfg->strict_order ? UPSTREAM_DNS_STRICT
					     : UPSTREAM_DNS_FASTEST,
		.edns_packet_max = cfg->edns_packet_max,
		.query_port = cfg->query_port,
		.min_port = cfg->min_port,
		.max_port = cfg->max_port,
		.timeout_ms = cfg->upstream_timeout_ms,
		.retry_ms = cfg->upstream_retry_ms,
		.log_queries = cfg->log_queries,
		.bogus_priv = is_default && cfg->bogus_priv,
		.domain_needed = is_default && cfg->domain_needed,
	};
	struct upstream *u = NULL;

	if (upstream_dns_ops.create(&u, base, &args) < 0)
		return NULL;
	return u;
}

/* Own and bind; on failure the upstream is freed here. */
static int
setup_bind(struct router *r, const char *zone, struct upstream *u, bool own, char *err,
	   size_t errlen)
{
	int e = own ? router_own(r, u) : 0;

	if (e < 0) {
		upstream_free(u);
	} else {
		e = router_bind(r, zone, u);
	}
	if (e < 0)
		snprintf(err, errlen, "cannot route domain %s: %s", zone, strerror(-e));
	return e;
}

struct upstream *
setup_default_forwarder(struct event_base *base, const struct config *cfg, char *err, size_t errlen)
{
	struct config_sockaddr *list = calloc(cfg->n_servers + 1, sizeof(*list));
	struct upstream *u = NULL;
	char text[NETADDR_TEXT_MAX];
	size_t n = 0;

	err[0] = '\0';
	if (!list) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < cfg->n_servers; i++) {
		const struct config_server *s = &cfg->servers[i];
		if (s->kind != CONFIG_SERVER_ADDR || s->n_domains)
			continue;
		list[n++] = s->addr;
		log_info("using nameserver %s",
			 netaddr_text(&s->addr.ss, NETADDR_PORT, text, sizeof(text)));
	}
	if (n == 0)
		log_warn("no upstream servers configured: names outside local domains get REFUSED");
	else if (!(u = setup_forwarder(base, cfg, list, n, true)))
		snprintf(err, errlen, "cannot create the forwarder for the default servers");
	free(list);
	return u;
}

static bool
setup_has_domain(const char *const *domains, size_t n, const char *d)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(domains[i], d) == 0)
			return true;
	return false;
}

/* The local records (options and hosts files) as one upstream, bound to each of its names ahead
 * of anything else bound there: a name with local data answers locally, as in dnsmasq. */
static int
setup_local_records(struct router *r, struct event_base *base, const struct config *cfg, char *err,
		    size_t errlen)
{
	struct local_records_args args = {.cfg = cfg, .router = r};
	struct upstream *u = NULL;
	int e;

	if (!local_records_wanted(cfg))
		return 0;
	if ((e = local_records_ops.create(&u, base, &args)) < 0) {
		snprintf(err, errlen, "local records: %s",
			 e == -EINVAL ? "bad configuration" : strerror(-e));
		return e;
	}
	if ((e = router_own(r, u)) < 0) {
		upstream_free(u);
		snprintf(err, errlen, "out of memory");
		return e;
	}
	if ((e = local_records_bind(u)) < 0)
		snprintf(err, errlen, "local records: %s", strerror(-e));
	return e;
}

/* --address lines naming `domain` become one local upstream. */
static int
setup_addresses(struct router *r, struct event_base *base, const struct config *cfg,
		const char *domain, char *err, size_t errlen)
{
	const struct config_address **mine = calloc(cfg->n_addresses + 1, sizeof(*mine));
	struct upstream_local_args args = {.ttl = cfg->local_ttl, .log_queries = cfg->log_queries};
	struct upstream *u = NULL;
	int e = 0;

	if (!mine)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_addresses; i++)
		if (setup_has_domain((const char *const *)cfg->addresses[i].domains,
				     cfg->addresses[i].n_domains, domain))
			mine[args.n_addresses++] = &cfg->addresses[i];
	args.addresses = mine;
	if (args.n_addresses) {
		e = upstream_local_ops.create(&u, base, &args);
		if (e < 0)
			snprintf(err, errlen, "--address for %s: %s", domain, strerror(-e));
		else
			e = setup_bind(r, domain, u, true, err, errlen);
	}
	free(mine);
	return e;
}

/* --server lines naming `domain`: local-only, default servers, or its own server list. */
static int
setup_servers(struct router *r, struct event_base *base, const struct config *cfg,
	      const char *domain, struct upstream *defaults, char *err, size_t errlen)
{
	struct config_sockaddr *list = calloc(cfg->n_servers + 1, sizeof(*list));
	bool local = false, use_default = false;
	struct upstream *u;
	char text[NETADDR_TEXT_MAX];
	size_t n = 0;
	int e = 0;

	if (!list)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_servers; i++) {
		const struct config_server *s = &cfg->servers[i];
		if (!setup_has_domain((const char *const *)s->domains, s->n_domains, domain))
			continue;
		if (s->kind == CONFIG_SERVER_LOCAL)
			local = true;
		else if (s->kind == CONFIG_SERVER_DEFAULT)
			use_default = true;
		else
			list[n++] = s->addr;
	}
	if (local) {
		struct upstream_local_args args = {.ttl = cfg->local_ttl};
		log_info("using only locally-known addresses for domain %s", domain);
		e = upstream_local_ops.create(&u, base, &args);
		if (e == 0)
			e = setup_bind(r, domain, u, true, err, errlen);
	}
	if (e == 0 && use_default && defaults) {
		log_info("using standard nameservers for domain %s", domain);
		e = setup_bind(r, domain, defaults, false, err, errlen);
	}
	if (e == 0 && n) {
		for (size_t i = 0; i < n; i++)
			log_info("using nameserver %s for domain %s",
				 netaddr_text(&list[i].ss, NETADDR_PORT, text, sizeof(text)),
				 domain);
		u = setup_forwarder(base, cfg, list, n, false);
		e = u ? setup_bind(r, domain, u, true, err, errlen) : -ENOMEM;
	}
	if (e < 0 && !err[0])
		snprintf(err, errlen, "--server for %s: %s", domain, strerror(-e));
	free(list);
	return e;
}

/* --kube (a snapshot or the API server): the kube resolver for the cluster zone and the
 * reverse zones. Bound before any --server for those zones, so that it answers the cluster's
 * names and declines the PTRs it does not know, which then go on to the servers of those zones
 * or to the default ones. */
static int
setup_kube(struct router *r, struct event_base *base, const struct config *cfg, char *err,
	   size_t errlen)
{
	char why[512] = "";
	struct kube_upstream_args args = {
		.cfg = cfg, .router = r, .err = why, .errlen = sizeof(why)};
	struct upstream *u = NULL;
	int e;

	if (!cfg->kube && !cfg->kube_snapshot)
		return 0;
	e = kube_upstream_ops.create(&u, base, &args);
	if (e < 0) {
		snprintf(err, errlen, "cannot start the kube resolver for %s: %s", cfg->kube_domain,
			 why[0] ? why : strerror(-e));
		return e;
	}
	e = setup_bind(r, cfg->kube_domain, u, true, err, errlen);
	if (e == 0)
		e = setup_bind(r, "in-addr.arpa", u, false, err, errlen);
	if (e == 0)
		e = setup_bind(r, "ip6.arpa", u, false, err, errlen);
	return e;
}

static void
setup_hook_one(struct upstream *u, void *hooks)
{
	u->hooks = hooks;
}

void
setup_hooks(struct router *r, const struct upstream_hooks *hooks)
{
	router_foreach(r, setup_hook_one, (void *)hooks);
}

/* Every distinct domain named by --address or --server, in order of first appearance. */
static size_t
setup_domains(const struct config *cfg, const char ***out)
{
	size_t cap = 1, n = 0;
	const char **d;

	for (size_t i = 0; i < cfg->n_addresses; i++)
		cap += cfg->addresses[i].n_domains;
	for (size_t i = 0; i < cfg->n_servers; i++)
		cap += cfg->servers[i].n_domains;
	d = calloc(cap, sizeof(*d));
	if (!d)
		return 0;
	for (size_t i = 0; i < cfg->n_addresses; i++)
		for (size_t j = 0; j < cfg->addresses[i].n_domains; j++)
			if (!setup_has_domain(d, n, cfg->addresses[i].domains[j]))
				d[n++] = cfg->addresses[i].domains[j];
	for (size_t i = 0; i < cfg->n_servers; i++)
		for (size_t j = 0; j < cfg->servers[i].n_domains; j++)
			if (!setup_has_domain(d, n, cfg->servers[i].domains[j]))
				d[n++] = cfg->servers[i].domains[j];
	*out = d;
	return n;
}

struct router *
setup_router(struct event_base *base, const struct config *cfg, struct upstream **defaults_out,
	     char *err, size_t errlen)
{
	struct router *r = router_new();
	struct upstream *defaults;
	const char **domains = NULL;
	size_t n;
	int e = 0;

	err[0] = '\0';
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	defaults = setup_default_forwarder(base, cfg, err, errlen);
	if (err[0] || (defaults && setup_bind(r, ".", defaults, true, err, errlen) < 0))
		goto fail;
	*defaults_out = defaults;
	if (setup_local_records(r, base, cfg, err, errlen) < 0)
		goto fail;
	if (setup_kube(r, base, cfg, err, errlen) < 0)
		goto fail;
	n = setup_domains(cfg, &domains);
	for (size_t i = 0; i < n && e == 0; i++) {
		if (domains[i][0] == '\0') {
			snprintf(
				err, errlen,
				"servers for unqualified names (--server=//...) are not supported");
			e = -ENOTSUP;
			break;
		}
		e = setup_addresses(r, base, cfg, domains[i], err, errlen);
		if (e == 0)
			e = setup_servers(r, base, cfg, domains[i], defaults, err, errlen);
	}
	free(domains);
	if (e == 0)
		return r;
fail:
	router_free(r);
	return NULL;
}
