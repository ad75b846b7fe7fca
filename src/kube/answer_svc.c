/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * answer_svc.c - the kube resolver's answers for the names under `svc.<zone>` per KUBE_DNS.md:
 * a ClusterIP service's addresses, a headless service's ready endpoints (all of them, or those
 * of one label), SRV records for its named ports (to the service name, or one per ready
 * endpoint label, weighted as CoreDNS does) with their targets' addresses in Additional, and
 * an ExternalName's CNAME. answer.c dispatches the question here and writes the negative
 * answers. Pure: no I/O, no clock, no allocation, no logging.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "kubemasq/defs.h"
#include "kubemasq/dnsmsg.h"
#include "kube/answer.h"
#include "kube/answer_impl.h"
#include "kube/store.h"

/* The ready endpoints' addresses of one group (all endpoints, or those of one label). */
static unsigned
kube_answer_svc_ep_addrs(struct kube_answer_ctx *c, enum dns_section section, const uint8_t *owner,
			 size_t owner_len, const struct kube_endpoint *eps, size_t n)
{
	unsigned count = 0;

	for (size_t i = 0; i < n && !c->b.overflow; i++) {
		if (kube_answer_ep_ready(&eps[i]))
			count += kube_answer_addrs(c, section, owner, owner_len, eps[i].ips,
						   eps[i].n_ips);
	}
	return count;
}

static void
kube_answer_svc_srv_rr(struct kube_answer_ctx *c, uint16_t weight, uint16_t port,
		       const uint8_t *target, size_t target_len)
{
	uint8_t rdata[6 + DNS_MAX_NAME];

	dnsmsg_put16(rdata, 0);
	dnsmsg_put16(rdata + 2, weight);
	dnsmsg_put16(rdata + 4, port);
	/* RFC 2782: the target is never compressed. */
	memcpy(rdata + 6, target, target_len);
	dnsmsg_builder_rr(&c->b, DNS_SECTION_ANSWER, c->owner, c->owner_len, DNS_TYPE_SRV,
			  DNS_CLASS_IN, c->cfg->ttl, rdata, 6 + target_len);
}

/* ---- services ----------------------------------------------------------------------------- */

static bool
kube_answer_svc_has_ready(const struct kube_service *svc)
{
	const struct kube_endpoint *eps;
	size_t n = kube_service_endpoints(svc, &eps);

	for (size_t i = 0; i < n; i++) {
		if (kube_answer_ep_ready(&eps[i]))
			return true;
	}
	return false;
}

/* Does the service answer at all? Headless ones need a ready endpoint (spec), ClusterIP ones
 * too with --kube-ignore-empty-service. */
static bool
kube_answer_svc_live(const struct kube_answer_ctx *c, const struct kube_service *svc)
{
	if (kube_service_kind(svc) == KUBE_SERVICE_HEADLESS)
		return kube_answer_svc_has_ready(svc);
	if (c->cfg->ignore_empty_service)
		return kube_answer_svc_has_ready(svc);
	return true;
}

/* Endpoints eps[i..) sharing eps[i]'s label (the store keeps them consecutive): their count,
 * and in *ready whether one of them is ready. */
static size_t
kube_answer_svc_label_group(const struct kube_endpoint *eps, size_t n, size_t i, bool *ready)
{
	size_t j = i;

	*ready = false;
	while (j < n && strcasecmp(eps[j].label, eps[i].label) == 0) {
		*ready = *ready || kube_answer_ep_ready(&eps[j]);
		j++;
	}
	return j - i;
}

static size_t
kube_answer_svc_ready_labels(const struct kube_service *svc)
{
	const struct kube_endpoint *eps;
	size_t n = kube_service_endpoints(svc, &eps), labels = 0, g;
	bool ready;

	for (size_t i = 0; i < n; i += g) {
		g = kube_answer_svc_label_group(eps, n, i, &ready);
		labels += ready;
	}
	return labels;
}

/* Distinct port numbers of the named ports matching `_port._proto` (NULL: every named port). */
static size_t
kube_answer_svc_ports(const struct kube_service *svc, const char *port, size_t port_len,
		      const char *proto, size_t proto_len, uint16_t *out)
{
	const struct kube_port *ports;
	size_t n = kube_service_ports(svc, &ports), k = 0;

	for (size_t i = 0; i < n; i++) {
		const struct kube_port *p = &ports[i];
		size_t j;

		if (!p->name || !p->name[0])
			continue;
		if (port && (strlen(p->name) != port_len || strncasecmp(p->name, port, port_len) ||
			     !p->protocol || strlen(p->protocol) != proto_len ||
			     strncasecmp(p->protocol, proto, proto_len)))
			continue;
		for (j = 0; j < k && out[j] != p->port; j++)
			;
		if (j == k)
			out[k++] = p->port;
	}
	return k;
}

/* CoreDNS: every record weighs 100 / count, at least 1. */
static uint16_t
kube_answer_svc_weight(size_t records)
{
	size_t w = records ? 100 / records : 100;

	return (uint16_t)(w ? w : 1);
}

/* SRV records for the ports in ports[0..n): to the service name, or per ready endpoint label. */
static unsigned
kube_answer_svc_srv(struct kube_answer_ctx *c, const struct kube_service *svc,
		    const uint16_t *ports, size_t nports)
{
	uint8_t target[DNS_MAX_NAME];
	const struct kube_endpoint *eps;
	size_t tlen, n, g;
	bool ready;

	c->extra_svc = svc;
	if (kube_service_kind(svc) != KUBE_SERVICE_HEADLESS) {
		c->extra = KUBE_ANSWER_EXTRA_CLUSTER;
		tlen = kube_answer_service_name(c, target, NULL, svc, false);
		for (size_t p = 0; tlen && p < nports; p++)
			kube_answer_svc_srv_rr(c, kube_answer_svc_weight(nports), ports[p], target,
					       tlen);
		return tlen ? (unsigned)nports : 0;
	}
	c->extra = KUBE_ANSWER_EXTRA_HEADLESS;
	uint16_t weight = kube_answer_svc_weight(kube_answer_svc_ready_labels(svc) * nports);
	unsigned count = 0;

	n = kube_service_endpoints(svc, &eps);
	for (size_t i = 0; i < n && !c->b.overflow; i += g) {
		g = kube_answer_svc_label_group(eps, n, i, &ready);
		tlen = kube_answer_service_name(c, target, eps[i].label, svc, false);
		for (size_t p = 0; ready && tlen && p < nports; p++, count++)
			kube_answer_svc_srv_rr(c, weight, ports[p], target, tlen);
	}
	return count;
}

/* The Additional section of an SRV answer: every target's addresses. */
void
kube_answer_svc_extra(struct kube_answer_ctx *c)
{
	const struct kube_service *svc = c->extra_svc;
	uint8_t owner[DNS_MAX_NAME];
	const struct kube_endpoint *eps;
	const struct kube_ip *ips;
	size_t len, n, g;
	bool ready;

	if (c->extra == KUBE_ANSWER_EXTRA_CLUSTER) {
		len = kube_answer_service_name(c, owner, NULL, svc, true);
		n = kube_service_ips(svc, &ips);
		kube_answer_set_reset(&c->set);
		if (len)
			kube_answer_addrs(c, DNS_SECTION_ADDITIONAL, owner, len, ips, n);
		return;
	}
	if (c->extra != KUBE_ANSWER_EXTRA_HEADLESS)
		return;
	n = kube_service_endpoints(svc, &eps);
	for (size_t i = 0; i < n && !c->b.overflow; i += g) {
		g = kube_answer_svc_label_group(eps, n, i, &ready);
		len = kube_answer_service_name(c, owner, eps[i].label, svc, true);
		kube_answer_set_reset(&c->set);
		if (ready && len)
			kube_answer_svc_ep_addrs(c, DNS_SECTION_ADDITIONAL, owner, len, eps + i, g);
	}
}

/* `<svc>.<ns>.svc.<zone>` of a ClusterIP or headless service. */
static enum kube_answer_disp
kube_answer_svc_service(struct kube_answer_ctx *c, const struct kube_service *svc)
{
	uint16_t ports[KUBE_MAX_PORTS];
	const struct kube_endpoint *eps;
	const struct kube_ip *ips;
	size_t n;

	if (c->qtype == DNS_TYPE_SRV) {
		n = kube_answer_svc_ports(svc, NULL, 0, NULL, 0, ports);
		return kube_answer_positive(kube_answer_svc_srv(c, svc, ports, n));
	}
	kube_answer_set_reset(&c->set);
	if (kube_service_kind(svc) == KUBE_SERVICE_HEADLESS) {
		n = kube_service_endpoints(svc, &eps);
		return kube_answer_positive(kube_answer_svc_ep_addrs(
			c, DNS_SECTION_ANSWER, c->owner, c->owner_len, eps, n));
	}
	n = kube_service_ips(svc, &ips);
	return kube_answer_positive(
		kube_answer_addrs(c, DNS_SECTION_ANSWER, c->owner, c->owner_len, ips, n));
}

/* `<label>.<svc>.<ns>.svc.<zone>`: the ready endpoints with that label. */
static enum kube_answer_disp
kube_answer_svc_endpoint(struct kube_answer_ctx *c, const struct kube_service *svc,
			 const char *label, size_t label_len)
{
	const struct kube_endpoint *eps;
	size_t n = kube_service_endpoints_by_label(svc, label, label_len, &eps);
	bool ready = false;

	for (size_t i = 0; i < n; i++)
		ready = ready || kube_answer_ep_ready(&eps[i]);
	if (!ready)
		return KUBE_ANSWER_NXDOMAIN;
	kube_answer_set_reset(&c->set);
	return kube_answer_positive(
		kube_answer_svc_ep_addrs(c, DNS_SECTION_ANSWER, c->owner, c->owner_len, eps, n));
}

/* `_<port>._<proto>.<svc>.<ns>.svc.<zone>`. */
static enum kube_answer_disp
kube_answer_svc_port(struct kube_answer_ctx *c, const struct kube_service *svc,
		     const struct kube_answer_labels *l)
{
	uint16_t ports[KUBE_MAX_PORTS];
	size_t n;

	if (l->len[4] < 2 || l->p[4][0] != '_' || l->len[3] < 2 || l->p[3][0] != '_')
		return KUBE_ANSWER_NXDOMAIN;
	n = kube_answer_svc_ports(svc, l->p[4] + 1, l->len[4] - 1, l->p[3] + 1, l->len[3] - 1,
				  ports);
	if (n == 0)
		return KUBE_ANSWER_NXDOMAIN;
	if (c->qtype != DNS_TYPE_SRV && c->qtype != DNS_TYPE_ANY)
		return KUBE_ANSWER_NODATA;
	return kube_answer_positive(kube_answer_svc_srv(c, svc, ports, n));
}

/* An ExternalName: the CNAME, its target kept in c->next for the caller to follow. */
static enum kube_answer_disp
kube_answer_svc_cname(struct kube_answer_ctx *c, const struct kube_service *svc)
{
	const char *ext = kube_service_external_name(svc);
	uint8_t wire[DNS_MAX_NAME];
	uint8_t *next = c->owner == c->names[0] ? c->names[1] : c->names[0];
	int len = ext ? dnsmsg_name_from_text(ext, wire, sizeof(wire)) : -EINVAL;

	/* The store should refuse such a name; a name that cannot be written has no data. */
	if (len <= 1)
		return KUBE_ANSWER_NODATA;
	dnsmsg_name_lower(next, wire, (size_t)len);
	dnsmsg_builder_rr(&c->b, DNS_SECTION_ANSWER, c->owner, c->owner_len, DNS_TYPE_CNAME,
			  DNS_CLASS_IN, c->cfg->ttl, next, (size_t)len);
	c->next = next;
	c->next_len = (size_t)len;
	return KUBE_ANSWER_CNAME;
}

/* Names under `svc.<zone>`: l->n is 2..5 and rel[0] is `svc`. */
enum kube_answer_disp
kube_answer_svc_tree(struct kube_answer_ctx *c, const struct kube_answer_labels *l)
{
	const struct kube_service *svc;

	if (!kube_answer_ns_exposed(c->cfg, l->p[1], l->len[1]))
		return KUBE_ANSWER_NXDOMAIN;
	if (l->n == 2)
		return kube_store_has_namespace(c->s, l->p[1], l->len[1]) ? KUBE_ANSWER_NODATA
									  : KUBE_ANSWER_NXDOMAIN;
	svc = kube_store_service(c->s, l->p[1], l->len[1], l->p[2], l->len[2]);
	if (!svc)
		return KUBE_ANSWER_NXDOMAIN;
	if (kube_service_kind(svc) == KUBE_SERVICE_EXTERNAL_NAME)
		return l->n == 3 ? kube_answer_svc_cname(c, svc) : KUBE_ANSWER_NXDOMAIN;
	if (!kube_answer_svc_live(c, svc))
		return KUBE_ANSWER_NXDOMAIN;
	if (l->n == 3)
		return kube_answer_svc_service(c, svc);
	if (l->n == 4)
		return kube_answer_svc_endpoint(c, svc, l->p[3], l->len[3]);
	return kube_answer_svc_port(c, svc, l);
}
