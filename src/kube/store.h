/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * store.h - the kube resolver's in-memory cluster: Namespaces, Services, EndpointSlices and
 * (for --kube-pods=verified) Pods, keeping only the fields DNS needs, indexed so that every
 * answer is a hash lookup: services by (namespace, name), a service's endpoints by label,
 * and every ClusterIP and endpoint IP by address (for PTR).
 *
 * Pure: no I/O, no clock, no logging above debug. Sources (the snapshot file, the API watch)
 * turn JSON into the `kube_*_obj` descriptions below and call upsert/delete; the store copies
 * what it keeps. Changing one object costs time in proportion to that object (and to the
 * service it belongs to), not to the cluster. Every change reports the DNS names it affects
 * through the change callback, so the cache can drop what was derived from the old state.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Caps on what a peer (the API server, a file) can make us hold. */
#define KUBE_STORE_MAX_OBJECTS 2000000 /* all kinds together */
#define KUBE_MAX_IPS 16		       /* per service (clusterIPs) or per endpoint (addresses) */
#define KUBE_MAX_PORTS 256	       /* per service or per slice */
#define KUBE_MAX_ENDPOINTS 10000       /* per slice */

enum kube_service_kind {
	KUBE_SERVICE_CLUSTER_IP = 0, /* spec.clusterIPs set (ClusterIP, NodePort, LoadBalancer) */
	KUBE_SERVICE_HEADLESS,	     /* spec.clusterIP "None" */
	KUBE_SERVICE_EXTERNAL_NAME,  /* spec.type ExternalName */
};

/* An IP address: family AF_INET (4 bytes used) or AF_INET6. */
struct kube_ip {
	uint8_t family;
	uint8_t addr[16];
};

struct kube_port {
	const char *name;     /* "" when unnamed (no SRV record) */
	const char *protocol; /* "TCP", "UDP", "SCTP" (SRV uses it lower-cased: _tcp) */
	uint16_t port;
};

/* Descriptions handed to the store by sources; all strings borrowed for the call. */
struct kube_service_obj {
	const char *ns, *name;
	enum kube_service_kind kind;
	const struct kube_ip *ips; /* ClusterIPs (both families for dual-stack) */
	size_t n_ips;
	const struct kube_port *ports;
	size_t n_ports;
	const char *external_name; /* ExternalName only */
};

struct kube_endpoint_obj {
	const struct kube_ip *ips; /* endpoints[].addresses (one family per slice) */
	size_t n_ips;
	bool ready;	      /* conditions.ready true or absent */
	const char *hostname; /* endpoints[].hostname, or NULL */
	const char *pod_name; /* targetRef.name when targetRef.kind == Pod, or NULL */
};

struct kube_slice_obj {
	const char *ns, *name;
	const char *service; /* label kubernetes.io/service-name; NULL: slice ignored */
	int family;	     /* addressType IPv4 -> AF_INET, IPv6 -> AF_INET6, FQDN -> 0 */
	const struct kube_endpoint_obj *endpoints;
	size_t n_endpoints;
	const struct kube_port *ports;
	size_t n_ports;
};

struct kube_pod_obj {
	const char *ns, *name;
	const struct kube_ip *ips; /* status.podIPs */
	size_t n_ips;
};

struct kube_store;

/* Called for every DNS name (lower-case wire format, absolute, under the cluster zone or a
 * reverse zone) whose answers may have changed. */
typedef void kube_store_change_fn(void *ctx, const uint8_t *name, size_t len);
/* Called after every change of the store at all (the SOA serial moved), named or not. */
typedef void kube_store_moved_fn(void *ctx);

struct kube_store_config {
	const char *zone;	       /* "cluster.local" */
	bool endpoint_pod_names;       /* --kube-endpoint-pod-names: labels from targetRef */
	kube_store_change_fn *changed; /* may be NULL */
	kube_store_moved_fn *moved;    /* may be NULL */
	void *ctx;
};

struct kube_store *kube_store_new(const struct kube_store_config *cfg);
void kube_store_free(struct kube_store *s); /* NULL-safe */

/* Where the store's reports go from now on (cfg's changed, moved and ctx at creation). */
void kube_store_set_reports(struct kube_store *s, kube_store_change_fn *changed,
			    kube_store_moved_fn *moved, void *ctx);

/*
 * A new store (*out, owned by the caller) holding the objects of `s` with its zone, its
 * --kube-endpoint-pod-names setting and its SOA serial, and reporting to changed/moved/ctx
 * from then on; the copying itself reports nothing. `s` is only read: another thread may read
 * it meanwhile, none may change it. Costs about what building `s` from its objects cost.
 * Returns 0, -ENOMEM (nothing is left behind).
 */
int kube_store_clone(const struct kube_store *s, kube_store_change_fn *changed,
		     kube_store_moved_fn *moved, void *ctx, struct kube_store **out);

/* Add or replace (same ns/name). Returns 0, -EINVAL for an object that cannot be stored
 * (missing name, label over 63 characters, bad IP family, over a cap: the caller counts and
 * logs it), -ENOSPC over KUBE_STORE_MAX_OBJECTS, -ENOMEM. */
int kube_store_upsert_namespace(struct kube_store *s, const char *name);
int kube_store_upsert_service(struct kube_store *s, const struct kube_service_obj *o);
int kube_store_upsert_slice(struct kube_store *s, const struct kube_slice_obj *o);
int kube_store_upsert_pod(struct kube_store *s, const struct kube_pod_obj *o);

/* Remove; -ENOENT when absent. */
int kube_store_delete_namespace(struct kube_store *s, const char *name);
int kube_store_delete_service(struct kube_store *s, const char *ns, const char *name);
int kube_store_delete_slice(struct kube_store *s, const char *ns, const char *name);
int kube_store_delete_pod(struct kube_store *s, const char *ns, const char *name);

/* Counts by kind, for statistics. */
struct kube_store_counts {
	size_t namespaces, services, slices, endpoints, pods;
};
void kube_store_counts(const struct kube_store *s, struct kube_store_counts *out);

/* --- lookups for answer.c: all case-insensitive on names; results valid until the next change --- */

struct kube_service; /* opaque */

bool kube_store_has_namespace(const struct kube_store *s, const char *ns, size_t ns_len);
const struct kube_service *kube_store_service(const struct kube_store *s, const char *ns,
					      size_t ns_len, const char *name, size_t name_len);

enum kube_service_kind kube_service_kind(const struct kube_service *svc);
const char *kube_service_name(const struct kube_service *svc);
const char *kube_service_namespace(const struct kube_service *svc);
const char *kube_service_external_name(const struct kube_service *svc);
/* ClusterIPs */
size_t kube_service_ips(const struct kube_service *svc, const struct kube_ip **out);
/* Named ports of the service (ClusterIP) or of its slices (headless), duplicates collapsed. */
size_t kube_service_ports(const struct kube_service *svc, const struct kube_port **out);

/* The service's endpoints, the union of its slices with duplicate IPs removed. Each has a
 * label (hostname, else pod name with --kube-endpoint-pod-names, else the dashed IP), its
 * IPs and readiness. */
struct kube_endpoint {
	const char *label;
	const struct kube_ip *ips;
	size_t n_ips;
	bool ready;
};
size_t kube_service_endpoints(const struct kube_service *svc, const struct kube_endpoint **out);
/* Endpoints with this label (several may share a hostname); returns how many, first in *out
 * (they are consecutive in the array of kube_service_endpoints()). */
size_t kube_service_endpoints_by_label(const struct kube_service *svc, const char *label,
				       size_t label_len, const struct kube_endpoint **out);

/* PTR: every (service, label) an IP belongs to: label NULL for a ClusterIP. Returns how many
 * were written to out (at most max). */
struct kube_ptr {
	const struct kube_service *svc;
	const char *label;
};
size_t kube_store_ptr(const struct kube_store *s, const struct kube_ip *ip, struct kube_ptr *out,
		      size_t max);

/* --kube-pods=verified: is there a Pod in `ns` with this IP? */
bool kube_store_pod_ip(const struct kube_store *s, const char *ns, size_t ns_len,
		       const struct kube_ip *ip);

/* SOA serial: changes whenever the store does. */
uint32_t kube_store_serial(const struct kube_store *s);

enum kube_kind { KUBE_KIND_NAMESPACE, KUBE_KIND_SERVICE, KUBE_KIND_SLICE, KUBE_KIND_POD };

/* A full replacement of one kind (a snapshot re-read, an API re-list): begin marks every
 * object of that kind stale; upserts of unchanged objects un-mark them without reporting a
 * change; end deletes what is still stale, reporting those changes. Memory: no second copy of
 * the cluster is built. */
void kube_store_replace_begin(struct kube_store *s, enum kube_kind kind);
void kube_store_replace_end(struct kube_store *s, enum kube_kind kind);
