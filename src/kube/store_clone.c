/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * store_clone.c - a copy of a kube store (store.h), for a snapshot re-read that builds the new
 * state in a worker thread while the event loop keeps answering from the old one. The copy is
 * made through the same upserts a source uses, from the stored objects turned back into their
 * descriptions, so it holds what an in-place re-read would start from; the re-read then
 * replaces each kind in the copy and its change reports are the ones an in-place re-read would
 * have made. The original is only read, never written, so the loop may read it meanwhile.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kubemasq/defs.h"
#include "kube/store_impl.h"

#define STORE_CLONE_EPS_STACK 128 /* endpoints of a slice described on the stack; more: heap */

static int
kube_store_clone_svc(struct kube_store *c, const struct kube_service *svc)
{
	const struct kube_store_svc_desc *d = svc->desc;
	struct kube_service_obj o = {
		.ns = svc->key,
		.name = svc->name,
		.kind = d->kind,
		.ips = d->ips,
		.n_ips = d->n_ips,
		.ports = d->ports,
		.n_ports = d->n_ports,
		.external_name = d->external_name,
	};

	return kube_store_upsert_service(c, &o);
}

/*
 * A stored endpoint's label came from its hostname, its pod name or its first IP; handed back
 * as the hostname it gives the same label, except for a dashed IPv6 address that is no valid
 * hostname ("--1" from ::1), which the store derives again from the IP.
 */
static int
kube_store_clone_slice(struct kube_store *c, const struct kube_store_slice *sl)
{
	const struct kube_store_slice_data *d = sl->data;
	struct kube_endpoint_obj stack[STORE_CLONE_EPS_STACK], *eps = stack;
	struct kube_slice_obj o = {
		.ns = sl->key,
		.name = sl->key + strlen(sl->key) + 1,
		.service = sl->svc->name,
		.family = d->n_ips ? d->ips[0].family : 0,
		.n_endpoints = d->n_eps,
		.ports = d->ports,
		.n_ports = d->n_ports,
	};
	int rc;

	if (d->n_eps > STORE_CLONE_EPS_STACK && !(eps = malloc(d->n_eps * sizeof(*eps))))
		return -ENOMEM;
	for (size_t i = 0; i < d->n_eps; i++) {
		const struct kube_store_slice_ep *e = &d->eps[i];

		eps[i] = (struct kube_endpoint_obj){
			.ips = &d->ips[e->ip_idx],
			.n_ips = e->n_ips,
			.ready = e->ready,
			.hostname = kube_store_cstr_label_ok(e->label, false) ? e->label : NULL,
		};
	}
	o.endpoints = eps;
	rc = kube_store_upsert_slice(c, &o);
	if (eps != stack)
		free(eps);
	return rc;
}

/* A service and then its slices, in the reverse of their list order: each one linked goes to
 * the front, so the copy's list, and with it the merge's choice among duplicate addresses,
 * comes out as the original's. */
static int
kube_store_clone_service(struct kube_store *c, const struct kube_service *svc)
{
	const struct kube_store_slice *stack[64], **v = stack;
	size_t n = 0, i = 0;
	int rc = svc->desc ? kube_store_clone_svc(c, svc) : 0;

	for (const struct kube_store_slice *sl = svc->slices; sl; sl = sl->svc_next)
		n++;
	if (rc < 0 || !n)
		return rc;
	if (n > ARRAY_SIZE(stack) && !(v = malloc(n * sizeof(*v))))
		return -ENOMEM;
	for (const struct kube_store_slice *sl = svc->slices; sl; sl = sl->svc_next)
		v[i++] = sl;
	while (rc == 0 && i--)
		rc = kube_store_clone_slice(c, v[i]);
	if (v != stack)
		free(v);
	return rc;
}

static int
kube_store_clone_pods(struct kube_store *c, const struct kube_store *s)
{
	const struct kube_store_pod *p, *tmp;
	int rc = 0;

	HASH_ITER(hh, s->pods, p, tmp) {
		struct kube_pod_obj o = {
			.ns = p->key,
			.name = p->key + strlen(p->key) + 1,
			.ips = p->ips,
			.n_ips = p->n_ips,
		};

		if ((rc = kube_store_upsert_pod(c, &o)) < 0)
			break;
	}
	return rc;
}

int
kube_store_clone(const struct kube_store *s, kube_store_change_fn *changed,
		 kube_store_moved_fn *moved, void *ctx, struct kube_store **out)
{
	const struct kube_store_ns *n, *ntmp;
	const struct kube_service *svc, *stmp;
	struct kube_store *c = calloc(1, sizeof(*c));
	int rc = 0;

	*out = NULL;
	if (!c)
		return -ENOMEM;
	memcpy(c->zone, s->zone, s->zone_len);
	c->zone_len = s->zone_len;
	c->pod_names = s->pod_names;
	hash_random_key(c->key);
	HASH_ITER(hh, s->nss, n, ntmp)
		if ((rc = kube_store_upsert_namespace(c, n->name)) < 0)
			break;
	HASH_ITER(hh, s->svcs, svc, stmp)
		if (rc == 0 && (rc = kube_store_clone_service(c, svc)) < 0)
			break;
	if (rc == 0)
		rc = kube_store_clone_pods(c, s);
	if (rc < 0) {
		kube_store_free(c);
		return rc;
	}
	/* from here on as the original: reports go to the caller, the serial moves on from s's */
	c->serial = s->serial;
	kube_store_set_reports(c, changed, moved, ctx);
	*out = c;
	return 0;
}
