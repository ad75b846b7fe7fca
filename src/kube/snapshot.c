/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * snapshot.c - the cluster from a file: reads the List that
 * `kubectl get namespaces,services,endpointslices[,pods] -A -o json` prints (or one typed list:
 * ServiceList, EndpointSliceList, ... as the API server returns them), turns each item into the
 * store's object description and replaces the store's four kinds with them. The whole document
 * is parsed and checked to be a List before the store is touched, so a broken file changes
 * nothing; an item that is wrong alone (missing or wrong-typed fields, bad IPs, over a cap, a
 * duplicate) is skipped and counted, and the first one is named for the caller's log line.
 * Duplicate keys inside one JSON object are accepted, the last one winning, as Go's
 * encoding/json (and so kubectl and the API server) reads them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <jansson.h>

#include "kubemasq/defs.h"
#include "kubemasq/log.h"
#include "kube/snapshot.h"
#include "kube/store.h"

#define SNAPSHOT_KINDS	       4	  /* enum kube_kind: namespaces, services, slices, pods */
#define SNAPSHOT_READ_BUF      (64 << 10) /* stdio buffer for the file */
#define SNAPSHOT_WHY_MAX       160
#define SNAPSHOT_SERVICE_LABEL "kubernetes.io/service-name"

/* One item of the List that is one of our four kinds, with its key for duplicate detection. */
struct snapshot_entry {
	json_t *item; /* borrowed from the parsed document */
	enum kube_kind kind;
	const char *ns, *name; /* NULL when missing or wrong-typed (why says) */
	const char *why;       /* set: the item is skipped for this reason */
	size_t idx;	       /* position in items, for file order */
};

/* One load: where results and the first skip reason go. */
struct snapshot {
	struct kube_store *s;
	struct kube_snapshot_result *res;
	char why[SNAPSHOT_WHY_MAX]; /* reason of the object being parsed */
};

static const char *const snapshot_kind_names[SNAPSHOT_KINDS] = {
	[KUBE_KIND_NAMESPACE] = "Namespace",
	[KUBE_KIND_SERVICE] = "Service",
	[KUBE_KIND_SLICE] = "EndpointSlice",
	[KUBE_KIND_POD] = "Pod",
};

/* The apiVersion each kind must carry; other versions (discovery.k8s.io/v1beta1) are ignored. */
static const char *const snapshot_kind_versions[SNAPSHOT_KINDS] = {
	[KUBE_KIND_NAMESPACE] = "v1",
	[KUBE_KIND_SERVICE] = "v1",
	[KUBE_KIND_SLICE] = "discovery.k8s.io/v1",
	[KUBE_KIND_POD] = "v1",
};

PRINTF_LIKE(2, 3)
static int
snapshot_why(struct snapshot *sn, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sn->why, sizeof(sn->why), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Count a skipped object; the first one is named in res->first_skip. */
static void
snapshot_skip(struct snapshot *sn, enum kube_kind kind, const char *ns, const char *name,
	      const char *why)
{
	struct kube_snapshot_result *res = sn->res;

	if (res->skipped++)
		return;
	if (kind == KUBE_KIND_NAMESPACE)
		snprintf(res->first_skip, sizeof(res->first_skip), "%s %s: %s",
			 snapshot_kind_names[kind], name ? name : "?", why);
	else
		snprintf(res->first_skip, sizeof(res->first_skip), "%s %s/%s: %s",
			 snapshot_kind_names[kind], ns ? ns : "?", name ? name : "?", why);
}

/* An item we cannot even classify: no kind, not an object. */
static void
snapshot_skip_item(struct snapshot *sn, size_t idx, const char *why)
{
	if (sn->res->skipped++)
		return;
	snprintf(sn->res->first_skip, sizeof(sn->res->first_skip), "item %zu: %s", idx, why);
}

/*
 * An optional string member: 0 with *out NULL when absent or JSON null, 0 with *out set for a
 * string, -EINVAL for any other type.
 */
static int
snapshot_opt_str(const json_t *obj, const char *key, const char **out)
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
snapshot_opt_type(const json_t *obj, const char *key, json_type type, json_t **out)
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
snapshot_ip(const char *str, int family, struct kube_ip *out)
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

/* ---- classification and duplicates: no store access ---- */

/*
 * What an item is: 0 with *kind for one of ours, -ENOENT for another kind or apiVersion
 * (ignored), -EINVAL when it cannot be told (sn->why). Items of a typed list (ServiceList)
 * carry no kind of their own: the list's kind and apiVersion are theirs.
 */
static int
snapshot_classify(struct snapshot *sn, const json_t *item, const char *def_kind,
		  const char *def_version, enum kube_kind *kind)
{
	const char *k, *v;

	if (!json_is_object(item))
		return snapshot_why(sn, "not an object");
	if (snapshot_opt_str(item, "kind", &k) || snapshot_opt_str(item, "apiVersion", &v))
		return snapshot_why(sn, "kind or apiVersion not a string");
	if (!k)
		k = def_kind;
	if (!v)
		v = def_version;
	if (!k)
		return snapshot_why(sn, "no kind");
	for (int i = 0; i < SNAPSHOT_KINDS; i++) {
		if (strcmp(k, snapshot_kind_names[i]) != 0)
			continue;
		if (!v || strcmp(v, snapshot_kind_versions[i]) != 0)
			return -ENOENT;
		*kind = (enum kube_kind)i;
		return 0;
	}
	return -ENOENT;
}

/* metadata.namespace and metadata.name of an entry; sets e->why when unusable. */
static void
snapshot_entry_key(struct snapshot_entry *e)
{
	const json_t *meta = json_object_get(e->item, "metadata");

	if (!json_is_object(meta)) {
		e->why = "no metadata";
		return;
	}
	if (snapshot_opt_str(meta, "name", &e->name) || !e->name || !*e->name) {
		e->name = NULL;
		e->why = "no metadata.name";
		return;
	}
	if (e->kind == KUBE_KIND_NAMESPACE)
		return;
	if (snapshot_opt_str(meta, "namespace", &e->ns) || !e->ns || !*e->ns) {
		e->ns = NULL;
		e->why = "no metadata.namespace";
	}
}

static int
snapshot_entry_cmp_key(const void *a, const void *b)
{
	const struct snapshot_entry *x = a, *y = b;
	int c;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	/* The store's keys are case-insensitive: so is a duplicate. */
	c = strcasecmp(x->ns ? x->ns : "", y->ns ? y->ns : "");
	if (!c)
		c = strcasecmp(x->name ? x->name : "", y->name ? y->name : "");
	if (c)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int
snapshot_entry_cmp_order(const void *a, const void *b)
{
	const struct snapshot_entry *x = a, *y = b;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Same kind and a usable key equal to the other's (case-insensitively, as the store keys). */
static bool
snapshot_same_key(const struct snapshot_entry *a, const struct snapshot_entry *b)
{
	if (a->kind != b->kind || !a->name || !b->name)
		return false;
	if (a->kind != KUBE_KIND_NAMESPACE && (!a->ns || !b->ns || strcasecmp(a->ns, b->ns) != 0))
		return false;
	return strcasecmp(a->name, b->name) == 0;
}

/* The second and later items with one key are skipped: the first one in the file wins. */
static void
snapshot_mark_duplicates(struct snapshot_entry *v, size_t n)
{
	qsort(v, n, sizeof(*v), snapshot_entry_cmp_key);
	for (size_t i = 1; i < n; i++)
		if (snapshot_same_key(&v[i], &v[i - 1]))
			v[i].why = "duplicate of an earlier item";
	qsort(v, n, sizeof(*v), snapshot_entry_cmp_order);
}

/*
 * The items of ours, classified, keyed and de-duplicated, in (kind, file) order; unclassifiable
 * items are counted as skipped and others as ignored. Returns 0 or -ENOMEM.
 */
static int
snapshot_collect(struct snapshot *sn, const json_t *items, const char *def_kind,
		 const char *def_version, struct snapshot_entry **out, size_t *n_out)
{
	size_t n = json_array_size(items), k = 0;
	struct snapshot_entry *v = calloc(n ? n : 1, sizeof(*v));
	enum kube_kind kind = KUBE_KIND_NAMESPACE;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		json_t *item = json_array_get(items, i);
		int r = snapshot_classify(sn, item, def_kind, def_version, &kind);

		if (r == -ENOENT) {
			sn->res->ignored++;
			continue;
		}
		if (r < 0) {
			snapshot_skip_item(sn, i, sn->why);
			continue;
		}
		v[k] = (struct snapshot_entry){.item = item, .kind = kind, .idx = i};
		snapshot_entry_key(&v[k]);
		k++;
	}
	snapshot_mark_duplicates(v, k);
	*out = v;
	*n_out = k;
	return 0;
}

/* ---- item parsers: JSON -> store descriptions ---- */

/* One port of spec.ports[] or ports[]; 0, -ENOENT for a slice port without a number (it means
 * "all ports": nothing for SRV), -EINVAL. */
static int
snapshot_port(struct snapshot *sn, const json_t *p, bool need_port, struct kube_port *out)
{
	const json_t *num;
	json_int_t v;

	if (!json_is_object(p))
		return snapshot_why(sn, "port not an object");
	if (snapshot_opt_str(p, "name", &out->name) ||
	    snapshot_opt_str(p, "protocol", &out->protocol))
		return snapshot_why(sn, "port name or protocol not a string");
	if (!out->name)
		out->name = "";
	if (!out->protocol)
		out->protocol = "TCP";
	if (strcmp(out->protocol, "TCP") && strcmp(out->protocol, "UDP") &&
	    strcmp(out->protocol, "SCTP"))
		return snapshot_why(sn, "unknown protocol \"%.32s\"", out->protocol);
	num = json_object_get(p, "port");
	if ((!num || json_is_null(num)) && !need_port)
		return -ENOENT;
	if (!json_is_integer(num))
		return snapshot_why(sn, "port number missing or not an integer");
	v = json_integer_value(num);
	if (v < 1 || v > 65535)
		return snapshot_why(sn, "port %lld out of range", (long long)v);
	out->port = (uint16_t)v;
	return 0;
}

/* The ports array `key` of obj into out[KUBE_MAX_PORTS]. */
static int
snapshot_ports(struct snapshot *sn, const json_t *obj, const char *key, bool need_port,
	       struct kube_port *out, size_t *n_out)
{
	json_t *arr, *p;
	size_t i, n = 0;
	int r;

	if (snapshot_opt_type(obj, key, JSON_ARRAY, &arr))
		return snapshot_why(sn, "%s not an array", key);
	*n_out = 0;
	if (!arr)
		return 0;
	if (json_array_size(arr) > KUBE_MAX_PORTS)
		return snapshot_why(sn, "more than %d ports", KUBE_MAX_PORTS);
	json_array_foreach(arr, i, p) {
		r = snapshot_port(sn, p, need_port, &out[n]);
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
snapshot_cluster_ip(struct snapshot *sn, const json_t *v, struct kube_ip *ips, size_t *n)
{
	const char *str = json_string_value(v);

	if (!str)
		return snapshot_why(sn, "clusterIPs entry not a string");
	if (!*str || strcmp(str, "None") == 0)
		return -ENOENT;
	if (*n >= KUBE_MAX_IPS)
		return snapshot_why(sn, "more than %d clusterIPs", KUBE_MAX_IPS);
	if (snapshot_ip(str, 0, &ips[*n]))
		return snapshot_why(sn, "invalid clusterIP \"%.64s\"", str);
	(*n)++;
	return 0;
}

/* spec.clusterIP / spec.clusterIPs of a non-ExternalName service into o. */
static int
snapshot_cluster_ips(struct snapshot *sn, const json_t *spec, struct kube_service_obj *o,
		     struct kube_ip *ips)
{
	const char *cip;
	json_t *arr, *v;
	size_t i, n = 0;
	int r;

	if (snapshot_opt_str(spec, "clusterIP", &cip) ||
	    snapshot_opt_type(spec, "clusterIPs", JSON_ARRAY, &arr))
		return snapshot_why(sn, "clusterIP or clusterIPs of the wrong type");
	if (!cip && arr)
		cip = json_string_value(json_array_get(arr, 0));
	if (cip && strcmp(cip, "None") == 0) {
		o->kind = KUBE_SERVICE_HEADLESS;
		return 0;
	}
	o->kind = KUBE_SERVICE_CLUSTER_IP;
	if (arr) {
		json_array_foreach(arr, i, v) {
			r = snapshot_cluster_ip(sn, v, ips, &n);
			if (r == -EINVAL)
				return r;
		}
	} else if (cip) {
		r = snapshot_cluster_ip(sn, json_object_get(spec, "clusterIP"), ips, &n);
		if (r == -EINVAL)
			return r;
	}
	o->ips = ips;
	o->n_ips = n;
	return 0;
}

static int
snapshot_service(struct snapshot *sn, const struct snapshot_entry *e)
{
	struct kube_ip ips[KUBE_MAX_IPS];
	struct kube_port ports[KUBE_MAX_PORTS];
	struct kube_service_obj o = {.ns = e->ns, .name = e->name};
	const json_t *spec = json_object_get(e->item, "spec");
	const char *type;
	int r;

	if (!json_is_object(spec))
		return snapshot_why(sn, "no spec");
	if (snapshot_opt_str(spec, "type", &type))
		return snapshot_why(sn, "spec.type not a string");
	if (type && strcmp(type, "ExternalName") == 0) {
		o.kind = KUBE_SERVICE_EXTERNAL_NAME;
		if (snapshot_opt_str(spec, "externalName", &o.external_name) || !o.external_name ||
		    !*o.external_name)
			return snapshot_why(sn, "ExternalName without spec.externalName");
	} else {
		r = snapshot_cluster_ips(sn, spec, &o, ips);
		if (r < 0)
			return r;
	}
	r = snapshot_ports(sn, spec, "ports", true, ports, &o.n_ports);
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
snapshot_ready(struct snapshot *sn, const json_t *ep, bool *ready)
{
	json_t *cond, *v;

	*ready = true;
	if (snapshot_opt_type(ep, "conditions", JSON_OBJECT, &cond))
		return snapshot_why(sn, "conditions not an object");
	v = cond ? json_object_get(cond, "ready") : NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return snapshot_why(sn, "conditions.ready not a boolean");
	*ready = json_is_true(v);
	return 0;
}

/* hostname, readiness and targetRef of one endpoint (addresses are done by the caller). */
static int
snapshot_endpoint_meta(struct snapshot *sn, const json_t *ep, struct kube_endpoint_obj *o)
{
	json_t *ref;
	const char *kind, *name;

	if (snapshot_ready(sn, ep, &o->ready) < 0)
		return -EINVAL;
	if (snapshot_opt_str(ep, "hostname", &o->hostname))
		return snapshot_why(sn, "hostname not a string");
	if (snapshot_opt_type(ep, "targetRef", JSON_OBJECT, &ref))
		return snapshot_why(sn, "targetRef not an object");
	o->pod_name = NULL;
	if (!ref)
		return 0;
	if (snapshot_opt_str(ref, "kind", &kind) || snapshot_opt_str(ref, "name", &name))
		return snapshot_why(sn, "targetRef kind or name not a string");
	if (kind && name && strcmp(kind, "Pod") == 0)
		o->pod_name = name;
	return 0;
}

/* endpoints[i].addresses into ips (room for KUBE_MAX_IPS); FQDN slices (family 0) keep none. */
static int
snapshot_addresses(struct snapshot *sn, const json_t *ep, int family, struct kube_ip *ips,
		   size_t *n_out)
{
	json_t *arr, *a;
	size_t i;

	*n_out = 0;
	if (snapshot_opt_type(ep, "addresses", JSON_ARRAY, &arr))
		return snapshot_why(sn, "addresses not an array");
	if (!arr)
		return 0;
	if (json_array_size(arr) > KUBE_MAX_IPS)
		return snapshot_why(sn, "endpoint with more than %d addresses", KUBE_MAX_IPS);
	json_array_foreach(arr, i, a) {
		const char *str = json_string_value(a);

		if (!str)
			return snapshot_why(sn, "address not a string");
		if (family == 0)
			continue;
		if (snapshot_ip(str, family, &ips[*n_out]))
			return snapshot_why(sn, "invalid %s address \"%.64s\"",
					    family == AF_INET ? "IPv4" : "IPv6", str);
		(*n_out)++;
	}
	return 0;
}

/* The endpoints array of a slice into eps/ips (sized by the caller to its length). */
static int
snapshot_endpoints(struct snapshot *sn, const json_t *arr, int family,
		   struct kube_endpoint_obj *eps, struct kube_ip *ips)
{
	json_t *ep;
	size_t i;

	json_array_foreach(arr, i, ep) {
		struct kube_ip *mine = ips + i * KUBE_MAX_IPS;

		if (!json_is_object(ep))
			return snapshot_why(sn, "endpoint not an object");
		if (snapshot_addresses(sn, ep, family, mine, &eps[i].n_ips) < 0 ||
		    snapshot_endpoint_meta(sn, ep, &eps[i]) < 0)
			return -EINVAL;
		eps[i].ips = mine;
	}
	return 0;
}

/* addressType and the service-name label of a slice into o. */
static int
snapshot_slice_head(struct snapshot *sn, const json_t *item, struct kube_slice_obj *o)
{
	const json_t *labels = json_object_get(json_object_get(item, "metadata"), "labels");
	const char *type;

	if (snapshot_opt_str(item, "addressType", &type) || !type)
		return snapshot_why(sn, "addressType missing or not a string");
	if (strcmp(type, "IPv4") == 0)
		o->family = AF_INET;
	else if (strcmp(type, "IPv6") == 0)
		o->family = AF_INET6;
	else if (strcmp(type, "FQDN") == 0)
		o->family = 0;
	else
		return snapshot_why(sn, "unknown addressType \"%.32s\"", type);
	if (labels && !json_is_object(labels))
		return snapshot_why(sn, "metadata.labels not an object");
	if (!labels || snapshot_opt_str(labels, SNAPSHOT_SERVICE_LABEL, &o->service) ||
	    !o->service || !*o->service)
		return snapshot_why(sn, "no label " SNAPSHOT_SERVICE_LABEL);
	return 0;
}

static int
snapshot_slice(struct snapshot *sn, const struct snapshot_entry *e)
{
	struct kube_port ports[KUBE_MAX_PORTS];
	struct kube_slice_obj o = {.ns = e->ns, .name = e->name};
	struct kube_endpoint_obj *eps = NULL;
	struct kube_ip *ips = NULL;
	json_t *arr;
	size_t n;
	int r;

	r = snapshot_slice_head(sn, e->item, &o);
	if (r < 0)
		return r;
	r = snapshot_ports(sn, e->item, "ports", false, ports, &o.n_ports);
	if (r < 0)
		return r;
	o.ports = ports;
	if (snapshot_opt_type(e->item, "endpoints", JSON_ARRAY, &arr))
		return snapshot_why(sn, "endpoints not an array");
	n = json_array_size(arr);
	if (n > KUBE_MAX_ENDPOINTS)
		return snapshot_why(sn, "more than %d endpoints", KUBE_MAX_ENDPOINTS);
	if (n) {
		eps = calloc(n, sizeof(*eps));
		ips = calloc(n * KUBE_MAX_IPS, sizeof(*ips));
		r = eps && ips ? snapshot_endpoints(sn, arr, o.family, eps, ips) : -ENOMEM;
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
snapshot_pod(struct snapshot *sn, const struct snapshot_entry *e)
{
	struct kube_ip ips[KUBE_MAX_IPS];
	struct kube_pod_obj o = {.ns = e->ns, .name = e->name, .ips = ips};
	json_t *status, *arr = NULL, *v;
	const char *ip = NULL;
	size_t i;
	int r;

	if (snapshot_opt_type(e->item, "status", JSON_OBJECT, &status) ||
	    (status && snapshot_opt_type(status, "podIPs", JSON_ARRAY, &arr)) ||
	    (status && snapshot_opt_str(status, "podIP", &ip)))
		return snapshot_why(sn, "status, podIPs or podIP of the wrong type");
	if (json_array_size(arr) > KUBE_MAX_IPS)
		return snapshot_why(sn, "more than %d podIPs", KUBE_MAX_IPS);
	json_array_foreach(arr, i, v) {
		const char *str = json_string_value(json_object_get(v, "ip"));

		if (!str || snapshot_ip(str, 0, &ips[o.n_ips]))
			return snapshot_why(sn, "invalid podIPs entry");
		o.n_ips++;
	}
	if (!o.n_ips && ip && *ip) {
		if (snapshot_ip(ip, 0, &ips[0]))
			return snapshot_why(sn, "invalid podIP \"%.64s\"", ip);
		o.n_ips = 1;
	}
	r = kube_store_upsert_pod(sn->s, &o);
	if (r == 0)
		sn->res->pods++;
	return r;
}

/* Why the store refused an object, for first_skip. */
static const char *
snapshot_store_why(int r)
{
	if (r == -EINVAL)
		return "refused by the store (name, label or cap)";
	if (r == -ENOSPC)
		return "store full";
	return strerror(-r);
}

/* One entry into the store; refusals are counted, never fatal. */
static void
snapshot_apply_entry(struct snapshot *sn, const struct snapshot_entry *e)
{
	int r = -EINVAL;

	sn->why[0] = '\0';
	if (e->why) {
		snapshot_skip(sn, e->kind, e->ns, e->name, e->why);
		return;
	}
	switch (e->kind) {
	case KUBE_KIND_NAMESPACE:
		r = kube_store_upsert_namespace(sn->s, e->name);
		if (r == 0)
			sn->res->namespaces++;
		break;
	case KUBE_KIND_SERVICE:
		r = snapshot_service(sn, e);
		break;
	case KUBE_KIND_SLICE:
		r = snapshot_slice(sn, e);
		break;
	case KUBE_KIND_POD:
		r = snapshot_pod(sn, e);
		break;
	}
	if (r == 0)
		return;
	if (!sn->why[0])
		snapshot_why(sn, "%s", snapshot_store_why(r));
	snapshot_skip(sn, e->kind, e->ns, e->name, sn->why);
}

/* ---- the document ---- */

/* The List check: 0 with its items and the kind/apiVersion its items default to, or -EPROTO. */
static int
snapshot_list(const json_t *root, const char *name, json_t **items, const char **def_kind,
	      const char **def_version, char *err, size_t errlen)
{
	static const char *const typed[][2] = {
		{"NamespaceList", "Namespace"},
		{"ServiceList", "Service"},
		{"EndpointSliceList", "EndpointSlice"},
		{"PodList", "Pod"},
	};
	const char *kind = json_string_value(json_object_get(root, "kind"));

	*def_kind = NULL;
	*def_version = NULL;
	if (!json_is_object(root) || !kind) {
		log_errbuf(err, errlen, "%s: not a Kubernetes List (no kind)", name);
		return -EPROTO;
	}
	for (size_t i = 0; i < ARRAY_SIZE(typed); i++) {
		if (strcmp(kind, typed[i][0]) == 0) {
			*def_kind = typed[i][1];
			*def_version = json_string_value(json_object_get(root, "apiVersion"));
		}
	}
	if (!*def_kind && strcmp(kind, "List") != 0) {
		log_errbuf(err, errlen, "%s: kind \"%.64s\" is not a List", name, kind);
		return -EPROTO;
	}
	*items = json_object_get(root, "items");
	/* kubectl prints "items": [] for nothing; Go's encoder writes a nil list as null. */
	if (json_is_null(*items)) {
		*items = NULL;
		return 0;
	}
	if (!json_is_array(*items)) {
		log_errbuf(err, errlen, "%s: items is not an array", name);
		return -EPROTO;
	}
	return 0;
}

/* A parsed document into the store: the store is touched only once it is known to be a List. */
static int
snapshot_apply(struct kube_store *s, const json_t *root, const char *name,
	       struct kube_snapshot_result *res, char *err, size_t errlen)
{
	struct snapshot sn = {.s = s, .res = res};
	struct snapshot_entry *v;
	const char *def_kind, *def_version;
	json_t *items;
	size_t n;
	int r;

	r = snapshot_list(root, name, &items, &def_kind, &def_version, err, errlen);
	if (r < 0)
		return r;
	r = snapshot_collect(&sn, items, def_kind, def_version, &v, &n);
	if (r < 0) {
		memset(res, 0, sizeof(*res));
		log_errbuf(err, errlen, "%s: out of memory", name);
		return r;
	}
	for (int k = 0; k < SNAPSHOT_KINDS; k++)
		kube_store_replace_begin(s, (enum kube_kind)k);
	for (size_t i = 0; i < n; i++)
		snapshot_apply_entry(&sn, &v[i]);
	for (int k = 0; k < SNAPSHOT_KINDS; k++)
		kube_store_replace_end(s, (enum kube_kind)k);
	free(v);
	return 0;
}

/* A jansson error as "NAME:LINE:COLUMN: text". */
static int
snapshot_parse_error(const json_error_t *je, const char *name, char *err, size_t errlen)
{
	if (je->line > 0)
		log_errbuf(err, errlen, "%s:%d:%d: %s", name, je->line, je->column, je->text);
	else
		log_errbuf(err, errlen, "%s: %s", name, je->text);
	return -EPROTO;
}

int
kube_snapshot_load_buffer(struct kube_store *s, const char *buf, size_t len, const char *name,
			  struct kube_snapshot_result *res, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root;
	int r;

	memset(res, 0, sizeof(*res));
	if (!name)
		name = "snapshot";
	if (len > KUBE_SNAPSHOT_MAX_BYTES) {
		log_errbuf(err, errlen, "%s: larger than %u bytes", name,
			     KUBE_SNAPSHOT_MAX_BYTES);
		return -EFBIG;
	}
	root = json_loadb(buf, len, 0, &je);
	if (!root)
		return snapshot_parse_error(&je, name, err, errlen);
	r = snapshot_apply(s, root, name, res, err, errlen);
	json_decref(root);
	return r;
}

/* Reading the file for jansson, counting bytes: a file that grows past the cap is refused. */
struct snapshot_reader {
	FILE *f;
	size_t total;
	int err;
};

static size_t
snapshot_read(void *buf, size_t buflen, void *data)
{
	struct snapshot_reader *rd = data;
	size_t n = fread(buf, 1, buflen, rd->f);

	if (n == 0 && ferror(rd->f)) {
		rd->err = errno ? -errno : -EIO;
		return (size_t)-1;
	}
	rd->total += n;
	if (rd->total > KUBE_SNAPSHOT_MAX_BYTES) {
		rd->err = -EFBIG;
		return (size_t)-1;
	}
	return n;
}

/* Open `path` for reading: a regular file no larger than the cap. */
static int
snapshot_open(const char *path, FILE **out, char *err, size_t errlen)
{
	struct stat st;
	int fd, e;

	/* O_NONBLOCK: opening a FIFO must not hang the daemon before fstat refuses it. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		e = errno;
		log_errbuf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	if (fstat(fd, &st) < 0) {
		e = errno;
		log_errbuf(err, errlen, "%s: %s", path, strerror(e));
		close(fd);
		return -e;
	}
	if (!S_ISREG(st.st_mode)) {
		log_errbuf(err, errlen, "%s: not a regular file", path);
		close(fd);
		return -EINVAL;
	}
	if ((unsigned long long)st.st_size > KUBE_SNAPSHOT_MAX_BYTES) {
		log_errbuf(err, errlen, "%s: %lld bytes, larger than %u", path,
			     (long long)st.st_size, KUBE_SNAPSHOT_MAX_BYTES);
		close(fd);
		return -EFBIG;
	}
	*out = fdopen(fd, "r");
	if (!*out) {
		close(fd);
		log_errbuf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	setvbuf(*out, NULL, _IOFBF, SNAPSHOT_READ_BUF);
	return 0;
}

int
kube_snapshot_load(struct kube_store *s, const char *path, struct kube_snapshot_result *res,
		   char *err, size_t errlen)
{
	struct snapshot_reader rd = {0};
	json_error_t je;
	json_t *root;
	int r;

	memset(res, 0, sizeof(*res));
	r = snapshot_open(path, &rd.f, err, errlen);
	if (r < 0)
		return r;
	root = json_load_callback(snapshot_read, &rd, 0, &je);
	fclose(rd.f);
	if (!root && rd.err == -EFBIG) {
		log_errbuf(err, errlen, "%s: grew larger than %u bytes", path,
			     KUBE_SNAPSHOT_MAX_BYTES);
		return -EFBIG;
	}
	if (!root && rd.err) {
		log_errbuf(err, errlen, "%s: %s", path, strerror(-rd.err));
		return rd.err;
	}
	if (!root)
		return snapshot_parse_error(&je, path, err, errlen);
	r = snapshot_apply(s, root, path, res, err, errlen);
	json_decref(root);
	return r;
}

/* ---- one object at a time (the API source) ---- */

/* The entry for a typed object; 0, or -EINVAL with why when it has no usable key. */
static int
snapshot_object_entry(struct snapshot_entry *e, enum kube_kind kind, const json_t *obj,
		      char *why, size_t whylen)
{
	*e = (struct snapshot_entry){.item = (json_t *)obj, .kind = kind};
	if (!json_is_object(obj)) {
		log_errbuf(why, whylen, "not an object");
		return -EINVAL;
	}
	snapshot_entry_key(e);
	if (e->why) {
		log_errbuf(why, whylen, "%s", e->why);
		return -EINVAL;
	}
	return 0;
}

int
kube_snapshot_apply_object(struct kube_store *s, enum kube_kind kind, const json_t *obj,
			   char *why, size_t whylen)
{
	struct kube_snapshot_result res = {0};
	struct snapshot sn = {.s = s, .res = &res};
	struct snapshot_entry e;
	int r = snapshot_object_entry(&e, kind, obj, why, whylen);

	if (r < 0)
		return r;
	snapshot_apply_entry(&sn, &e);
	if (!res.skipped)
		return 0;
	log_errbuf(why, whylen, "%s", res.first_skip);
	return strstr(res.first_skip, "store full") ? -ENOSPC : -EINVAL;
}

int
kube_snapshot_delete_object(struct kube_store *s, enum kube_kind kind, const json_t *obj,
			    char *why, size_t whylen)
{
	struct snapshot_entry e;
	int r = snapshot_object_entry(&e, kind, obj, why, whylen);

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
