/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * snapshot_obj.c - one Kubernetes object into the store (snapshot_impl.h): the converters from
 * a Namespace, Service, EndpointSlice or Pod as JSON to the store's object descriptions, with
 * the checks that skip an object wrong alone (missing or wrong-typed fields, bad IPs, over a
 * cap) and name the first one skipped. snapshot.c feeds them the items of a List; the API
 * source feeds them its LIST pages and watch events through kube_snapshot_apply_object().
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kubemasq/defs.h"
#include "kubemasq/log.h"
#include "kube/store.h"
#include "kube/source/snapshot.h"
#include "kube/source/snapshot_impl.h"

#define SNAPSHOT_OBJ_SERVICE_LABEL "kubernetes.io/service-name"

const char *const snapshot_obj_kind_names[SNAPSHOT_KINDS] = {
	[KUBE_KIND_NAMESPACE] = "Namespace",
	[KUBE_KIND_SERVICE] = "Service",
	[KUBE_KIND_SLICE] = "EndpointSlice",
	[KUBE_KIND_POD] = "Pod",
};

int
snapshot_obj_why(struct snapshot *sn, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sn->why, sizeof(sn->why), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Count a skipped object; the first one is named in res->first_skip. */
static void
snapshot_obj_skip(struct snapshot *sn, enum kube_kind kind, const char *ns, const char *name,
		  const char *why)
{
	struct kube_snapshot_result *res = sn->res;

	if (res->skipped++)
		return;
	if (kind == KUBE_KIND_NAMESPACE)
		snprintf(res->first_skip, sizeof(res->first_skip), "%s %s: %s",
			 snapshot_obj_kind_names[kind], name ? name : "?", why);
	else
		snprintf(res->first_skip, sizeof(res->first_skip), "%s %s/%s: %s",
			 snapshot_obj_kind_names[kind], ns ? ns : "?", name ? name : "?", why);
}

/*
 * An optional string member: 0 with *out NULL when absent or JSON null, 0 with *out set for a
 * string, -EINVAL for any other type.
 */
int
snapshot_obj_opt_str(const json_t *obj, const char *key, const char **out)
{
	const json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return -EINVAL;
	*out = json_string_value(v);
	return 0;
}

/* An optional object or array member: NULL when absent or null, -EINVAL on another type. */
static int
snapshot_obj_opt_type(const json_t *obj, const char *key, json_type type, json_t **out)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (json_typeof(v) != type)
		return -EINVAL;
	*out = v;
	return 0;
}

/* A textual IP into a kube_ip; family 0 accepts either. */
static int
snapshot_obj_ip(const char *str, int family, struct kube_ip *out)
{
	memset(out, 0, sizeof(*out));
	if ((family == 0 || family == AF_INET) && inet_pton(AF_INET, str, out->addr) == 1) {
		out->family = AF_INET;
		return 0;
	}
	if ((family == 0 || family == AF_INET6) && inet_pton(AF_INET6, str, out->addr) == 1) {
		out->family = AF_INET6;
		return 0;
	}
	return -EINVAL;
}

/* metadata.namespace and metadata.name of an entry; sets e->why when unusable. */
void
snapshot_obj_entry_key(struct snapshot_entry *e)
{
	const json_t *meta = json_object_get(e->item, "metadata");

	if (!json_is_object(meta)) {
		e->why = "no metadata";
		return;
	}
	if (snapshot_obj_opt_str(meta, "name", &e->name) || !e->name || !*e->name) {
		e->name = NULL;
		e->why = "no metadata.name";
		return;
	}
	if (e->kind == KUBE_KIND_NAMESPACE)
		return;
	if (snapshot_obj_opt_str(meta, "namespace", &e->ns) || !e->ns || !*e->ns) {
		e->ns = NULL;
		e->why = "no metadata.namespace";
	}
}

/* ---- item parsers: JSON -> store descriptions ---- */

/* One port of spec.ports[] or ports[]; 0, -ENOENT for a slice port without a number (it means
 * "all ports": nothing for SRV), -EINVAL. */
static int
snapshot_obj_port(struct snapshot *sn, const json_t *p, bool need_port, struct kube_port *out)
{
	const json_t *num;
	json_int_t v;

	if (!json_is_object(p))
		return snapshot_obj_why(sn, "port not an object");
	if (snapshot_obj_opt_str(p, "name", &out->name) ||
	    snapshot_obj_opt_str(p, "protocol", &out->protocol))
		return snapshot_obj_why(sn, "port name or protocol not a string");
	if (!out->name)
		out->name = "";
	if (!out->protocol)
		out->protocol = "TCP";
	if (strcmp(out->protocol, "TCP") && strcmp(out->protocol, "UDP") &&
	    strcmp(out->protocol, "SCTP"))
		return snapshot_obj_why(sn, "unknown protocol \"%.32s\"", out->protocol);
	num = json_object_get(p, "port");
	if ((!num || json_is_null(num)) && !need_port)
		return -ENOENT;
	if (!json_is_integer(num))
		return snapshot_obj_why(sn, "port number missing or not an integer");
	v = json_integer_value(num);
	if (v < 1 || v > 65535)
		return snapshot_obj_why(sn, "port %lld out of range", (long long)v);
	out->port = (uint16_t)v;
	return 0;
}

/* The ports array `key` of obj into out[KUBE_MAX_PORTS]. */
static int
snapshot_obj_ports(struct snapshot *sn, const json_t *obj, const char *key, bool need_port,
		   struct kube_port *out, size_t *n_out)
{
	json_t *arr, *p;
	size_t i, n = 0;
	int r;

	if (snapshot_obj_opt_type(obj, key, JSON_ARRAY, &arr))
		return snapshot_obj_why(sn, "%s not an array", key);
	*n_out = 0;
	if (!arr)
		return 0;
	if (json_array_size(arr) > KUBE_MAX_PORTS)
		return snapshot_obj_why(sn, "more than %d ports", KUBE_MAX_PORTS);
	json_array_foreach(arr, i, p) {
		r = snapshot_obj_port(sn, p, need_port, &out[n]);
		if (r == -ENOENT)
			continue;
		if (r < 0)
			return r;
		n++;
	}
	*n_out = n;
	return 0;
}

/* One clusterIP string: 0 added, -ENOENT for "None"/"" (nothing to add), -EINVAL. */
static int
snapshot_obj_cluster_ip(struct snapshot *sn, const json_t *v, struct kube_ip *ips, size_t *n)
{
	const char *str = json_string_value(v);

	if (!str)
		return snapshot_obj_why(sn, "clusterIPs entry not a string");
	if (!*str || strcmp(str, "None") == 0)
		return -ENOENT;
	if (*n >= KUBE_MAX_IPS)
		return snapshot_obj_why(sn, "more than %d clusterIPs", KUBE_MAX_IPS);
	if (snapshot_obj_ip(str, 0, &ips[*n]))
		return snapshot_obj_why(sn, "invalid clusterIP \"%.64s\"", str);
	(*n)++;
	return 0;
}

/* spec.clusterIP / spec.clusterIPs of a non-ExternalName service into o. */
static int
snapshot_obj_cluster_ips(struct snapshot *sn, const json_t *spec, struct kube_service_obj *o,
			 struct kube_ip *ips)
{
	const char *cip;
	json_t *arr, *v;
	size_t i, n = 0;
	int r;

	if (snapshot_obj_opt_str(spec, "clusterIP", &cip) ||
	    snapshot_obj_opt_type(spec, "clusterIPs", JSON_ARRAY, &arr))
		return snapshot_obj_why(sn, "clusterIP or clusterIPs of the wrong type");
	if (!cip && arr)
		cip = json_string_value(json_array_get(arr, 0));
	if (cip && strcmp(cip, "None") == 0) {
		o->kind = KUBE_SERVICE_HEADLESS;
		return 0;
	}
	o->kind = KUBE_SERVICE_CLUSTER_IP;
	if (arr) {
		json_array_foreach(arr, i, v) {
			r = snapshot_obj_cluster_ip(sn, v, ips, &n);
			if (r == -EINVAL)
				return r;
		}
	} else if (cip) {
		r = snapshot_obj_cluster_ip(sn, json_object_get(spec, "clusterIP"), ips, &n);
		if (r == -EINVAL)
			return r;
	}
	o->ips = ips;
	o->n_ips = n;
	return 0;
}

static int
snapshot_obj_service(struct snapshot *sn, const struct snapshot_entry *e)
{
	struct kube_ip ips[KUBE_MAX_IPS];
	struct kube_port ports[KUBE_MAX_PORTS];
	struct kube_service_obj o = {.ns = e->ns, .name = e->name};
	const json_t *spec = json_object_get(e->item, "spec");
	const char *type;
	int r;

	if (!json_is_object(spec))
		return snapshot_obj_why(sn, "no spec");
	if (snapshot_obj_opt_str(spec, "type", &type))
		return snapshot_obj_why(sn, "spec.type not a string");
	if (type && strcmp(type, "ExternalName") == 0) {
		o.kind = KUBE_SERVICE_EXTERNAL_NAME;
		if (snapshot_obj_opt_str(spec, "externalName", &o.external_name) ||
		    !o.external_name || !*o.external_name)
			return snapshot_obj_why(sn, "ExternalName without spec.externalName");
	} else {
		r = snapshot_obj_cluster_ips(sn, spec, &o, ips);
		if (r < 0)
			return r;
	}
	r = snapshot_obj_ports(sn, spec, "ports", true, ports, &o.n_ports);
	if (r < 0)
		return r;
	o.ports = ports;
	r = kube_store_upsert_service(sn->s, &o);
	if (r == 0)
		sn->res->services++;
	return r;
}

/* endpoints[i].conditions.ready: absent or null means ready. */
static int
snapshot_obj_ready(struct snapshot *sn, const json_t *ep, bool *ready)
{
	json_t *cond, *v;

	*ready = true;
	if (snapshot_obj_opt_type(ep, "conditions", JSON_OBJECT, &cond))
		return snapshot_obj_why(sn, "conditions not an object");
	v = cond ? json_object_get(cond, "ready") : NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return snapshot_obj_why(sn, "conditions.ready not a boolean");
	*ready = json_is_true(v);
	return 0;
}

/* hostname, readiness and targetRef of one endpoint (addresses are done by the caller). */
static int
snapshot_obj_endpoint_meta(struct snapshot *sn, const json_t *ep, struct kube_endpoint_obj *o)
{
	json_t *ref;
	const char *kind, *name;

	if (snapshot_obj_ready(sn, ep, &o->ready) < 0)
		return -EINVAL;
	if (snapshot_obj_opt_str(ep, "hostname", &o->hostname))
		return snapshot_obj_why(sn, "hostname not a string");
	if (snapshot_obj_opt_type(ep, "targetRef", JSON_OBJECT, &ref))
		return snapshot_obj_why(sn, "targetRef not an object");
	o->pod_name = NULL;
	if (!ref)
		return 0;
	if (snapshot_obj_opt_str(ref, "kind", &kind) || snapshot_obj_opt_str(ref, "name", &name))
		return snapshot_obj_why(sn, "targetRef kind or name not a string");
	if (kind && name && strcmp(kind, "Pod") == 0)
		o->pod_name = name;
	return 0;
}

/* endpoints[i].addresses into ips (room for KUBE_MAX_IPS); FQDN slices (family 0) keep none. */
static int
snapshot_obj_addresses(struct snapshot *sn, const json_t *ep, int family, struct kube_ip *ips,
		       size_t *n_out)
{
	json_t *arr, *a;
	size_t i;

	*n_out = 0;
	if (snapshot_obj_opt_type(ep, "addresses", JSON_ARRAY, &arr))
		return snapshot_obj_why(sn, "addresses not an array");
	if (!arr)
		return 0;
	if (json_array_size(arr) > KUBE_MAX_IPS)
		return snapshot_obj_why(sn, "endpoint with more than %d addresses", KUBE_MAX_IPS);
	json_array_foreach(arr, i, a) {
		const char *str = json_string_value(a);

		if (!str)
			return snapshot_obj_why(sn, "address not a string");
		if (family == 0)
			continue;
		if (snapshot_obj_ip(str, family, &ips[*n_out]))
			return snapshot_obj_why(sn, "invalid %s address \"%.64s\"",
						family == AF_INET ? "IPv4" : "IPv6", str);
		(*n_out)++;
	}
	return 0;
}

/* The endpoints array of a slice into eps/ips (sized by the caller to its length). */
static int
snapshot_obj_endpoints(struct snapshot *sn, const json_t *arr, int family,
		       struct kube_endpoint_obj *eps, struct kube_ip *ips)
{
	json_t *ep;
	size_t i;

	json_array_foreach(arr, i, ep) {
		struct kube_ip *mine = ips + i * KUBE_MAX_IPS;

		if (!json_is_object(ep))
			return snapshot_obj_why(sn, "endpoint not an object");
		if (snapshot_obj_addresses(sn, ep, family, mine, &eps[i].n_ips) < 0 ||
		    snapshot_obj_endpoint_meta(sn, ep, &eps[i]) < 0)
			return -EINVAL;
		eps[i].ips = mine;
	}
	return 0;
}

/* addressType and the service-name label of a slice into o. */
static int
snapshot_obj_slice_head(struct snapshot *sn, const json_t *item, struct kube_slice_obj *o)
{
	const json_t *labels = json_object_get(json_object_get(item, "metadata"), "labels");
	const char *type;

	if (snapshot_obj_opt_str(item, "addressType", &type) || !type)
		return snapshot_obj_why(sn, "addressType missing or not a string");
	if (strcmp(type, "IPv4") == 0)
		o->family = AF_INET;
	else if (strcmp(type, "IPv6") == 0)
		o->family = AF_INET6;
	else if (strcmp(type, "FQDN") == 0)
		o->family = 0;
	else
		return snapshot_obj_why(sn, "unknown addressType \"%.32s\"", type);
	if (labels && !json_is_object(labels))
		return snapshot_obj_why(sn, "metadata.labels not an object");
	if (!labels || snapshot_obj_opt_str(labels, SNAPSHOT_OBJ_SERVICE_LABEL, &o->service) ||
	    !o->service || !*o->service)
		return snapshot_obj_why(sn, "no label " SNAPSHOT_OBJ_SERVICE_LABEL);
	return 0;
}

static int
snapshot_obj_slice(struct snapshot *sn, const struct snapshot_entry *e)
{
	struct kube_port ports[KUBE_MAX_PORTS];
	struct kube_slice_obj o = {.ns = e->ns, .name = e->name};
	struct kube_endpoint_obj *eps = NULL;
	struct kube_ip *ips = NULL;
	json_t *arr;
	size_t n;
	int r;

	r = snapshot_obj_slice_head(sn, e->item, &o);
	if (r < 0)
		return r;
	r = snapshot_obj_ports(sn, e->item, "ports", false, ports, &o.n_ports);
	if (r < 0)
		return r;
	o.ports = ports;
	if (snapshot_obj_opt_type(e->item, "endpoints", JSON_ARRAY, &arr))
		return snapshot_obj_why(sn, "endpoints not an array");
	n = json_array_size(arr);
	if (n > KUBE_MAX_ENDPOINTS)
		return snapshot_obj_why(sn, "more than %d endpoints", KUBE_MAX_ENDPOINTS);
	if (n) {
		eps = calloc(n, sizeof(*eps));
		ips = calloc(n * KUBE_MAX_IPS, sizeof(*ips));
		r = eps && ips ? snapshot_obj_endpoints(sn, arr, o.family, eps, ips) : -ENOMEM;
	}
	/* An FQDN slice has no addresses DNS can use: it is stored without endpoints. */
	o.endpoints = eps;
	o.n_endpoints = o.family ? n : 0;
	if (r == 0)
		r = kube_store_upsert_slice(sn->s, &o);
	if (r == 0)
		sn->res->slices++;
	free(eps);
	free(ips);
	return r;
}

/* status.podIPs[].ip, else status.podIP; a pod not yet scheduled has none. */
static int
snapshot_obj_pod(struct snapshot *sn, const struct snapshot_entry *e)
{
	struct kube_ip ips[KUBE_MAX_IPS];
	struct kube_pod_obj o = {.ns = e->ns, .name = e->name, .ips = ips};
	json_t *status, *arr = NULL, *v;
	const char *ip = NULL;
	size_t i;
	int r;

	if (snapshot_obj_opt_type(e->item, "status", JSON_OBJECT, &status) ||
	    (status && snapshot_obj_opt_type(status, "podIPs", JSON_ARRAY, &arr)) ||
	    (status && snapshot_obj_opt_str(status, "podIP", &ip)))
		return snapshot_obj_why(sn, "status, podIPs or podIP of the wrong type");
	if (json_array_size(arr) > KUBE_MAX_IPS)
		return snapshot_obj_why(sn, "more than %d podIPs", KUBE_MAX_IPS);
	json_array_foreach(arr, i, v) {
		const char *str = json_string_value(json_object_get(v, "ip"));

		if (!str || snapshot_obj_ip(str, 0, &ips[o.n_ips]))
			return snapshot_obj_why(sn, "invalid podIPs entry");
		o.n_ips++;
	}
	if (!o.n_ips && ip && *ip) {
		if (snapshot_obj_ip(ip, 0, &ips[0]))
			return snapshot_obj_why(sn, "invalid podIP \"%.64s\"", ip);
		o.n_ips = 1;
	}
	r = kube_store_upsert_pod(sn->s, &o);
	if (r == 0)
		sn->res->pods++;
	return r;
}

/* Why the store refused an object, for first_skip. */
static const char *
snapshot_obj_store_why(int r)
{
	if (r == -EINVAL)
		return "refused by the store (name, label or cap)";
	if (r == -ENOSPC)
		return "store full";
	return strerror(-r);
}

/* One entry into the store; refusals are counted, never fatal. */
void
snapshot_obj_apply_entry(struct snapshot *sn, const struct snapshot_entry *e)
{
	int r = -EINVAL;

	sn->why[0] = '\0';
	if (e->why) {
		snapshot_obj_skip(sn, e->kind, e->ns, e->name, e->why);
		return;
	}
	switch (e->kind) {
	case KUBE_KIND_NAMESPACE:
		r = kube_store_upsert_namespace(sn->s, e->name);
		if (r == 0)
			sn->res->namespaces++;
		break;
	case KUBE_KIND_SERVICE:
		r = snapshot_obj_service(sn, e);
		break;
	case KUBE_KIND_SLICE:
		r = snapshot_obj_slice(sn, e);
		break;
	case KUBE_KIND_POD:
		r = snapshot_obj_pod(sn, e);
		break;
	}
	if (r == 0)
		return;
	if (!sn->why[0])
		snapshot_obj_why(sn, "%s", snapshot_obj_store_why(r));
	snapshot_obj_skip(sn, e->kind, e->ns, e->name, sn->why);
}

/* ---- one object at a time (the API source) ---- */

/* The entry for a typed object; 0, or -EINVAL with why when it has no usable key. */
static int
snapshot_obj_typed_entry(struct snapshot_entry *e, enum kube_kind kind, const json_t *obj,
			 char *why, size_t whylen)
{
	*e = (struct snapshot_entry){.item = (json_t *)obj, .kind = kind};
	if (!json_is_object(obj)) {
		log_errbuf(why, whylen, "not an object");
		return -EINVAL;
	}
	snapshot_obj_entry_key(e);
	if (e->why) {
		log_errbuf(why, whylen, "%s", e->why);
		return -EINVAL;
	}
	return 0;
}

int
kube_snapshot_apply_object(struct kube_store *s, enum kube_kind kind, const json_t *obj, char *why,
			   size_t whylen)
{
	struct kube_snapshot_result res = {0};
	struct snapshot sn = {.s = s, .res = &res};
	struct snapshot_entry e;
	int r = snapshot_obj_typed_entry(&e, kind, obj, why, whylen);

	if (r < 0)
		return r;
	snapshot_obj_apply_entry(&sn, &e);
	if (!res.skipped)
		return 0;
	log_errbuf(why, whylen, "%s", res.first_skip);
	return strstr(res.first_skip, "store full") ? -ENOSPC : -EINVAL;
}

int
kube_snapshot_delete_object(struct kube_store *s, enum kube_kind kind, const json_t *obj, char *why,
			    size_t whylen)
{
	struct snapshot_entry e;
	int r = snapshot_obj_typed_entry(&e, kind, obj, why, whylen);

	if (r < 0)
		return r;
	switch (kind) {
	case KUBE_KIND_NAMESPACE:
		return kube_store_delete_namespace(s, e.name);
	case KUBE_KIND_SERVICE:
		return kube_store_delete_service(s, e.ns, e.name);
	case KUBE_KIND_SLICE:
		return kube_store_delete_slice(s, e.ns, e.name);
	case KUBE_KIND_POD:
		return kube_store_delete_pod(s, e.ns, e.name);
	}
	return -EINVAL;
}
