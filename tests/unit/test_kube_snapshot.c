/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_kube_snapshot.c - unit tests of the snapshot source against the real store: fixtures in
 * tests/unit/data/ shaped as kubectl prints them (the shared k8s samples wrapped into Lists, a
 * hand-built cluster and its successor, broken files, one bad object per file), the demo cluster
 * of conf/, and small inline documents for kubectl's nulls. Checks the counts, the first skip
 * named, parse errors with their position, that a broken file leaves the previous state and
 * that a good one replaces it, that a re-read applied to a copy of the store (upstream_kube.c's worker
 * thread) reports what one in place does, the worker thread itself on a real event loop, and
 * that an oversize file is refused unread.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "kube/store.h"
#include "kube/source/snapshot.h"
#include "kube/source/snapshot_worker.h"

/* Fixtures sit next to this file; meson compiles it from the build directory and runs the test
 * there, so a relative __FILE__ resolves too. */
static void
t_path(char *buf, size_t len, const char *rel)
{
	const char *slash = strrchr(__FILE__, '/');
	int dir = slash ? (int)(slash - __FILE__) : 1;

	snprintf(buf, len, "%.*s/%s", dir, slash ? __FILE__ : ".", rel);
}

static struct kube_store *
t_store(void)
{
	struct kube_store_config cfg = {.zone = "cluster.local"};
	struct kube_store *s = kube_store_new(&cfg);

	assert_non_null(s);
	return s;
}

static int
t_load(struct kube_store *s, const char *rel, struct kube_snapshot_result *res, char *err,
       size_t errlen)
{
	char path[PATH_MAX];

	t_path(path, sizeof(path), rel);
	return kube_snapshot_load(s, path, res, err, errlen);
}

/* Load a fixture that must succeed. */
static void
t_load_ok(struct kube_store *s, const char *rel, struct kube_snapshot_result *res)
{
	char err[512] = "";
	int r = t_load(s, rel, res, err, sizeof(err));

	if (r != 0)
		fail_msg("%s: %d %s", rel, r, err);
}

static const struct kube_service *
t_svc(const struct kube_store *s, const char *ns, const char *name)
{
	return kube_store_service(s, ns, strlen(ns), name, strlen(name));
}

static struct kube_ip
t_ip(const char *str)
{
	struct kube_ip ip = {0};

	if (inet_pton(AF_INET, str, ip.addr) == 1)
		ip.family = AF_INET;
	else if (inet_pton(AF_INET6, str, ip.addr) == 1)
		ip.family = AF_INET6;
	else
		fail_msg("bad test IP %s", str);
	return ip;
}

static bool
t_ip_eq(const struct kube_ip *a, const char *str)
{
	struct kube_ip b = t_ip(str);

	return a->family == b.family && memcmp(a->addr, b.addr, a->family == AF_INET ? 4 : 16) == 0;
}

/* Does the service have a (named) port name/protocol/port? */
static bool
t_has_port(const struct kube_service *svc, const char *name, const char *proto, unsigned port)
{
	const struct kube_port *p;
	size_t n = kube_service_ports(svc, &p);

	for (size_t i = 0; i < n; i++)
		if (!strcmp(p[i].name, name) && !strcasecmp(p[i].protocol, proto) &&
		    p[i].port == port)
			return true;
	return false;
}

/* Ready endpoint IPs of one family. */
static size_t
t_ready_ips(const struct kube_service *svc, int family)
{
	const struct kube_endpoint *e;
	size_t n = kube_service_endpoints(svc, &e), k = 0;

	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; e[i].ready && j < e[i].n_ips; j++)
			k += e[i].ips[j].family == family;
	return k;
}

static void
test_cluster_counts(void **state)
{
	struct kube_store *s = t_store();
	struct kube_snapshot_result res;
	struct kube_store_counts c;
	const struct kube_service *svc;
	const struct kube_ip *ips;
	const struct kube_endpoint *e;
	struct kube_ip ip;

	(void)state;
	t_load_ok(s, "data/cluster.json", &res);
	assert_int_equal(res.namespaces, 3);
	assert_int_equal(res.services, 4);
	assert_int_equal(res.slices, 3);
	assert_int_equal(res.pods, 2);
	assert_int_equal(res.skipped, 0);
	assert_int_equal(res.ignored, 2); /* a ConfigMap, a discovery.k8s.io/v1beta1 slice */
	assert_string_equal(res.first_skip, "");
	kube_store_counts(s, &c);
	assert_int_equal(c.namespaces, 3);
	assert_int_equal(c.services, 4);
	assert_int_equal(c.slices, 3);
	assert_int_equal(c.pods, 2);
	assert_true(kube_store_has_namespace(s, "apps", 4));

	svc = t_svc(s, "apps", "api");
	assert_non_null(svc);
	assert_int_equal(kube_service_kind(svc), KUBE_SERVICE_CLUSTER_IP);
	assert_int_equal(kube_service_ips(svc, &ips), 1);
	assert_true(t_ip_eq(&ips[0], "10.96.40.7"));
	assert_true(t_has_port(svc, "http", "TCP", 80));
	assert_int_equal(t_ready_ips(svc, AF_INET), 2);

	svc = t_svc(s, "apps", "db");
	assert_non_null(svc);
	assert_int_equal(kube_service_kind(svc), KUBE_SERVICE_HEADLESS);
	assert_int_equal(kube_service_endpoints_by_label(svc, "db-1", 4, &e), 1);
	assert_false(e->ready);
	assert_true(t_ip_eq(&e->ips[0], "10.244.3.6"));

	svc = t_svc(s, "apps", "ext");
	assert_non_null(svc);
	assert_int_equal(kube_service_kind(svc), KUBE_SERVICE_EXTERNAL_NAME);
	assert_string_equal(kube_service_external_name(svc), "svc.example.net");

	ip = t_ip("fd00:10:244:3::6");
	assert_true(kube_store_pod_ip(s, "apps", 4, &ip));
	ip = t_ip("10.244.3.99"); /* only in the ignored v1beta1 slice */
	assert_false(kube_store_pod_ip(s, "apps", 4, &ip));
	kube_store_free(s);
}

static void
test_second_file_replaces(void **state)
{
	struct kube_store *s = t_store();
	struct kube_snapshot_result res;
	struct kube_store_counts c;
	struct kube_ip ip = t_ip("10.244.3.6");

	(void)state;
	t_load_ok(s, "data/cluster.json", &res);
	assert_non_null(t_svc(s, "apps", "api"));
	assert_true(kube_store_pod_ip(s, "apps", 4, &ip));

	t_load_ok(s, "data/cluster-v2.json", &res);
	assert_int_equal(res.services, 4);
	assert_int_equal(res.slices, 2);
	assert_int_equal(res.pods, 1);
	assert_int_equal(res.ignored, 0);
	assert_null(t_svc(s, "apps", "api"));
	assert_non_null(t_svc(s, "apps", "fresh"));
	assert_non_null(t_svc(s, "default", "kubernetes"));
	assert_false(kube_store_pod_ip(s, "apps", 4, &ip));
	kube_store_counts(s, &c);
	assert_int_equal(c.services, 4);
	assert_int_equal(c.slices, 2);
	assert_int_equal(c.pods, 1);
	kube_store_free(s);
}

/* ---- a re-read applied to a copy (upstream_kube.c's worker thread) ---- */

#define T_MAX_REPORTS 512

struct t_reports {
	size_t n, moved;
	char names[T_MAX_REPORTS][256];
};

static void
t_report(void *ctx, const uint8_t *name, size_t len)
{
	struct t_reports *r = ctx;

	assert_true(r->n < T_MAX_REPORTS && len < 256);
	memcpy(r->names[r->n], name, len);
	memset(r->names[r->n] + len, 0, 256 - len);
	r->n++;
}

static void
t_moved(void *ctx)
{
	((struct t_reports *)ctx)->moved++;
}

static int
t_name_cmp(const void *a, const void *b)
{
	return memcmp(a, b, 256);
}

/* Sorted, duplicates gone: the set of names reported. */
static void
t_reports_set(struct t_reports *r)
{
	size_t k = 0;

	qsort(r->names, r->n, 256, t_name_cmp);
	for (size_t i = 0; i < r->n; i++)
		if (!k || memcmp(r->names[k - 1], r->names[i], 256))
			memmove(r->names[k++], r->names[i], 256);
	r->n = k;
}

/* `from` then `to` read in place, against `to` parsed, applied to a copy of the store holding
 * `from`: the same names reported, the same counts, the same SOA serial. */
static void
t_reread_on_copy(const char *from, const char *to)
{
	static struct t_reports in_place, on_copy;
	struct kube_store_config cfg = {
		.zone = "cluster.local", .changed = t_report, .moved = t_moved, .ctx = &in_place};
	struct kube_store *s = kube_store_new(&cfg), *c = NULL;
	struct kube_snapshot_result res, res2;
	struct kube_snapshot_doc *doc = NULL;
	struct kube_store_counts a, b;
	char path[PATH_MAX], err[512] = "";

	assert_non_null(s);
	t_load_ok(s, from, &res);
	memset(&in_place, 0, sizeof(in_place));
	memset(&on_copy, 0, sizeof(on_copy));
	assert_int_equal(kube_store_clone(s, t_report, t_moved, &on_copy, &c), 0);
	t_path(path, sizeof(path), to);
	assert_int_equal(kube_snapshot_parse(path, NULL, &doc, err, sizeof(err)), 0);
	assert_int_equal(kube_snapshot_apply(c, doc, &res2, err, sizeof(err)), 0);
	kube_snapshot_doc_free(doc);
	t_load_ok(s, to, &res);
	assert_memory_equal(&res, &res2, sizeof(res));
	t_reports_set(&in_place);
	t_reports_set(&on_copy);
	assert_int_equal(in_place.n != 0, strcmp(from, to) != 0); /* the same file: no change */
	assert_int_equal(in_place.n, on_copy.n);
	assert_memory_equal(in_place.names, on_copy.names, in_place.n * 256);
	assert_int_equal(in_place.moved != 0, on_copy.moved != 0);
	assert_int_equal(kube_store_serial(s), kube_store_serial(c));
	kube_store_counts(s, &a);
	kube_store_counts(c, &b);
	assert_memory_equal(&a, &b, sizeof(a));
	kube_store_free(c);
	kube_store_free(s);
}

static void
test_reread_on_copy(void **state)
{
	(void)state;
	t_reread_on_copy("data/cluster.json", "data/cluster-v2.json");
	t_reread_on_copy("data/cluster-v2.json", "data/cluster.json");
	t_reread_on_copy("data/cluster.json", "data/cluster.json");
	t_reread_on_copy("data/sample-endpointslice-default.json", "data/cluster.json");
}

/* A parse asked to stop ends with -ECANCELED and gives nothing back. */
static void
test_parse_stopped(void **state)
{
	atomic_bool stop;
	struct kube_snapshot_doc *doc = (struct kube_snapshot_doc *)&stop;
	char path[PATH_MAX], err[512] = "";

	(void)state;
	atomic_init(&stop, true);
	t_path(path, sizeof(path), "data/cluster.json");
	assert_int_equal(kube_snapshot_parse(path, &stop, &doc, err, sizeof(err)), -ECANCELED);
	assert_null(doc);
	atomic_store(&stop, false);
	assert_int_equal(kube_snapshot_parse(path, &stop, &doc, err, sizeof(err)), 0);
	assert_non_null(doc);
	kube_snapshot_doc_free(doc);
}

/* ---- the worker thread (snapshot_worker.h), on a real event loop ---- */

/* The config's one ctx goes to the reports and to done(): `reports` comes first. */
struct t_worker {
	struct t_reports reports;
	struct event_base *base;
	unsigned done;
	int rc;
	char err[512];
	struct kube_snapshot_result res;
	struct kube_store *store;
};

static void
t_worker_done(void *ctx, struct kube_snapshot_read *r)
{
	struct t_worker *t = ctx;

	t->done++;
	t->rc = r->rc;
	memcpy(t->err, r->err, sizeof(t->err));
	t->res = r->res;
	t->store = r->store;
	r->store = NULL;
	event_base_loopbreak(t->base);
}

/* A worker reading `rel` (its reports into t->reports); the loop runs until done() or 60 s. */
static struct kube_snapshot_worker *
t_worker_new(struct t_worker *t, const char *rel)
{
	char path[PATH_MAX];
	struct kube_snapshot_worker *w = NULL;

	t_path(path, sizeof(path), rel);
	assert_int_equal(kube_snapshot_worker_new(
				 &w, &(struct kube_snapshot_worker_config){.base = t->base,
									   .path = path,
									   .changed = t_report,
									   .moved = t_moved,
									   .done = t_worker_done,
									   .ctx = t}),
			 0);
	return w;
}

static void
t_worker_run(struct t_worker *t)
{
	struct timeval limit = {.tv_sec = 60};

	event_base_loopexit(t->base, &limit);
	event_base_dispatch(t->base);
}

static void
test_worker(void **state)
{
	static struct t_worker t;
	struct kube_snapshot_worker *w, *bad;
	struct kube_store *old = t_store(), *v2;
	struct kube_snapshot_result res;
	struct kube_store_counts c;

	(void)state;
	memset(&t, 0, sizeof(t));
	assert_non_null(t.base = event_base_new());
	t_load_ok(old, "data/cluster.json", &res);
	w = t_worker_new(&t, "data/cluster-v2.json");
	assert_int_equal(kube_snapshot_worker_start(w, old), 0);
	assert_true(kube_snapshot_worker_busy(w));
	assert_int_equal(kube_snapshot_worker_start(w, old), -EBUSY);
	t_worker_run(&t);
	assert_int_equal(t.done, 1);
	assert_false(kube_snapshot_worker_busy(w));
	assert_int_equal(t.rc, 0);
	assert_non_null(t.store);
	assert_int_equal(t.res.services, 4);
	kube_store_counts(t.store, &c);
	assert_int_equal(c.services, 4);
	assert_null(t_svc(t.store, "apps", "api")); /* gone in v2 */
	assert_non_null(t_svc(old, "apps", "api")); /* the old store was only read */
	assert_true(t.reports.n > 0 && t.reports.moved > 0);
	kube_snapshot_worker_retire(w, old); /* freed in the thread */
	v2 = t.store;

	/* a file that does not parse: an error with its position, no store */
	bad = t_worker_new(&t, "data/truncated.json");
	assert_int_equal(kube_snapshot_worker_start(bad, v2), 0);
	t_worker_run(&t);
	assert_int_equal(t.done, 2);
	assert_int_equal(t.rc, -EPROTO);
	assert_null(t.store);
	assert_non_null(strstr(t.err, "truncated.json:"));
	kube_snapshot_worker_free(bad);
	kube_store_free(v2);

	/* freed with a read under way: done() is never called, nothing leaks */
	old = t_store();
	assert_int_equal(kube_snapshot_worker_start(w, old), 0);
	kube_snapshot_worker_free(w);
	assert_int_equal(t.done, 2);
	kube_store_free(old);
	event_base_free(t.base);
}

/* A broken file after a good one: an error, and the good state keeps serving. */
static void
t_broken_keeps_state(const char *rel, const char *want)
{
	struct kube_store *s = t_store();
	struct kube_snapshot_result res;
	struct kube_store_counts before, after;
	char err[512] = "";

	t_load_ok(s, "data/cluster.json", &res);
	kube_store_counts(s, &before);
	assert_int_equal(t_load(s, rel, &res, err, sizeof(err)), -EPROTO);
	if (!strstr(err, want))
		fail_msg("%s: \"%s\" lacks \"%s\"", rel, err, want);
	assert_int_equal(res.services + res.skipped + res.ignored, 0);
	kube_store_counts(s, &after);
	assert_memory_equal(&before, &after, sizeof(before));
	assert_non_null(t_svc(s, "apps", "api"));
	assert_non_null(t_svc(s, "default", "kubernetes"));
	kube_store_free(s);
}

static void
test_truncated_has_position(void **state)
{
	char path[PATH_MAX], want[PATH_MAX + 16];

	(void)state;
	/* The file stops inside line 61 (10 characters into it). */
	t_path(path, sizeof(path), "data/truncated.json");
	snprintf(want, sizeof(want), "%s:61:", path);
	t_broken_keeps_state("data/truncated.json", want);
}

/* The position is LINE:COLUMN, both from jansson, after the file name. */
static void
test_truncated_column(void **state)
{
	struct kube_store *s = t_store();
	struct kube_snapshot_result res;
	char path[PATH_MAX], err[512] = "";
	int line = 0, col = 0;

	(void)state;
	t_path(path, sizeof(path), "data/truncated.json");
	assert_int_equal(kube_snapshot_load(s, path, &res, err, sizeof(err)), -EPROTO);
	assert_memory_equal(err, path, strlen(path));
	assert_int_equal(sscanf(err + strlen(path), ":%d:%d: ", &line, &col), 2);
	assert_int_equal(line, 61);
	assert_int_equal(col, 10);
	kube_store_free(s);
}

static void
test_not_a_list(void **state)
{
	(void)state;
	t_broken_keeps_state("data/not-a-list.json", "kind \"Service\" is not a List");
}

static void
test_items_not_array(void **state)
{
	(void)state;
	t_broken_keeps_state("data/items-not-array.json", "items is not an array");
}

/* A fixture with good objects and bad ones: expected counts and the start of first_skip. */
static void
t_bad(const char *rel, size_t services, size_t slices, size_t skipped, const char *first)
{
	struct kube_store *s = t_store();
	struct kube_snapshot_result res;

	t_load_ok(s, rel, &res);
	assert_int_equal(res.services, services);
	assert_int_equal(res.slices, slices);
	assert_int_equal(res.skipped, skipped);
	if (strncmp(res.first_skip, first, strlen(first)) != 0)
		fail_msg("%s: first_skip \"%s\", want \"%s...\"", rel, res.first_skip, first);
	assert_non_null(t_svc(s, "default", "good"));
	kube_store_free(s);
}

static void
test_port_as_string(void **state)
{
	(void)state;
	t_bad("data/bad-port-string.json", 1, 0, 1,
	      "Service default/port-string: port number missing or not an integer");
}

static void
test_addresses_as_object(void **state)
{
	(void)state;
	t_bad("data/bad-addresses-object.json", 1, 0, 1,
	      "EndpointSlice default/good-abcde: addresses not an array");
}

static void
test_invalid_ips(void **state)
{
	(void)state;
	t_bad("data/bad-ips.json", 1, 0, 2, "Service default/bad-ip: invalid clusterIP");
}

/* The store refuses labels over 63 characters: a service name, an endpoint hostname. */
static void
test_long_label(void **state)
{
	(void)state;
	t_bad("data/long-label.json", 1, 0, 2,
	      "Service default/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa: ");
}

/* The first of two items with one key wins; the second is skipped, not silently merged. */
static void
test_duplicates(void **state)
{
	struct kube_store *s = t_store();
	struct kube_snapshot_result res;
	const struct kube_ip *ips;
	const struct kube_service *svc;

	(void)state;
	t_load_ok(s, "data/duplicates.json", &res);
	assert_int_equal(res.namespaces, 1);
	assert_int_equal(res.services, 2);
	assert_int_equal(res.skipped, 2);
	assert_string_equal(res.first_skip, "Namespace default: duplicate of an earlier item");
	svc = t_svc(s, "default", "dup");
	assert_non_null(svc);
	assert_int_equal(kube_service_ips(svc, &ips), 1);
	assert_true(t_ip_eq(&ips[0], "10.96.1.1"));
	kube_store_free(s);
}

/* No service-name label: skipped. A label naming an absent service: stored, answers nothing. */
static void
test_slice_without_service(void **state)
{
	(void)state;
	t_bad("data/slice-no-service.json", 1, 1, 1,
	      "EndpointSlice default/orphan-nolabel: no label kubernetes.io/service-name");
}

/* The shared samples: a typed ServiceList (items without kind), and the EndpointSlice. */
static void
test_samples(void **state)
{
	struct kube_store *s = t_store();
	struct kube_snapshot_result res;
	const struct kube_service *svc;
	const struct kube_ip *ips;
	const struct kube_endpoint *e;

	(void)state;
	t_load_ok(s, "data/sample-servicelist-kube-dns.json", &res);
	assert_int_equal(res.services, 1);
	assert_int_equal(res.skipped + res.ignored, 0);
	svc = t_svc(s, "kube-system", "kube-dns");
	assert_non_null(svc);
	assert_int_equal(kube_service_ips(svc, &ips), 1);
	assert_true(t_ip_eq(&ips[0], "10.96.0.10"));
	assert_true(t_has_port(svc, "dns", "UDP", 53));
	assert_true(t_has_port(svc, "dns-tcp", "TCP", 53));
	assert_true(t_has_port(svc, "metrics", "TCP", 9153));

	/* Verbatim, the slice has no namespace (it comes from a YAML example): skipped. */
	t_load_ok(s, "data/sample-endpointslice-verbatim.json", &res);
	assert_int_equal(res.slices, 0);
	assert_int_equal(res.skipped, 1);
	assert_string_equal(res.first_skip, "EndpointSlice ?/myservice: no metadata.namespace");
	assert_null(t_svc(s, "kube-system", "kube-dns")); /* replaced by a file without it */

	t_load_ok(s, "data/sample-endpointslice-default.json", &res);
	assert_int_equal(res.slices, 1);
	svc = t_svc(s, "default", "myservice");
	assert_non_null(svc);
	assert_int_equal(kube_service_endpoints(svc, &e), 4);
	assert_int_equal(t_ready_ips(svc, AF_INET), 3);
	kube_store_free(s);
}

/* kubectl prints a nil list as null: "endpoints": null, "ports": null, "ready": null. */
static void
test_kubectl_nulls(void **state)
{
	static const char doc[] =
		"{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":["
		"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"s\","
		"\"namespace\":\"n\"},\"spec\":{\"clusterIP\":\"None\",\"ports\":[{\"port\":80}]}},"
		"{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",\"metadata\":"
		"{\"name\":\"s-1\",\"namespace\":\"n\",\"labels\":{\"kubernetes.io/service-name\":"
		"\"s\"}},\"addressType\":\"IPv4\",\"endpoints\":null,\"ports\":null},"
		"{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",\"metadata\":"
		"{\"name\":\"s-2\",\"namespace\":\"n\",\"labels\":{\"kubernetes.io/service-name\":"
		"\"s\"}},\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"10.1.2.3\"],"
		"\"conditions\":{\"ready\":null}},{\"addresses\":[\"10.1.2.4\"]}],"
		"\"ports\":[{\"name\":\"http\",\"port\":8080},{\"name\":\"all\",\"port\":null}]},"
		"{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",\"metadata\":"
		"{\"name\":\"s-3\",\"namespace\":\"n\",\"labels\":{\"kubernetes.io/service-name\":"
		"\"s\"}},\"addressType\":\"FQDN\",\"endpoints\":[{\"addresses\":[\"a.example\"]}],"
		"\"ports\":[]}"
		"]}";
	struct kube_store *s = t_store();
	struct kube_snapshot_result res;
	char err[256] = "";
	const struct kube_service *svc;

	(void)state;
	assert_int_equal(kube_snapshot_load_buffer(s, doc, sizeof(doc) - 1, "inline", &res, err,
						   sizeof(err)),
			 0);
	assert_int_equal(res.services, 1);
	assert_int_equal(res.slices, 3);
	assert_int_equal(res.skipped, 0);
	svc = t_svc(s, "n", "s");
	assert_non_null(svc);
	assert_int_equal(t_ready_ips(svc, AF_INET), 2);
	assert_true(t_has_port(svc, "http", "TCP", 8080));
	kube_store_free(s);
}

/* Items that cannot be classified are skipped by position; other kinds are ignored. */
static void
test_unclassifiable_items(void **state)
{
	static const char doc[] = "{\"kind\":\"List\",\"items\":[17,{\"metadata\":{}},"
				  "{\"kind\":\"Secret\",\"apiVersion\":\"v1\"}]}";
	struct kube_store *s = t_store();
	struct kube_snapshot_result res;

	(void)state;
	assert_int_equal(kube_snapshot_load_buffer(s, doc, sizeof(doc) - 1, "x", &res, NULL, 0), 0);
	assert_int_equal(res.skipped, 2);
	assert_int_equal(res.ignored, 1);
	assert_string_equal(res.first_skip, "item 0: not an object");
	kube_store_free(s);
}

/* Over the cap: refused from fstat alone. The file is all zero bytes, so reading it would have
 * been a parse error (-EPROTO) instead. */
static void
test_oversize(void **state)
{
	char path[] = "/tmp/test_kube_snapshot.XXXXXX";
	struct kube_store *s = t_store();
	struct kube_snapshot_result res;
	char err[512] = "";
	static const char small[] = "{}";
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)KUBE_SNAPSHOT_MAX_BYTES + 1), 0);
	close(fd);
	assert_int_equal(kube_snapshot_load(s, path, &res, err, sizeof(err)), -EFBIG);
	assert_non_null(strstr(err, path));
	unlink(path);
	/* The buffer form checks the length before looking at a byte. */
	assert_int_equal(kube_snapshot_load_buffer(s, small, (size_t)KUBE_SNAPSHOT_MAX_BYTES + 1,
						   "big", &res, err, sizeof(err)),
			 -EFBIG);
	kube_store_free(s);
}

static void
test_missing_file(void **state)
{
	struct kube_store *s = t_store();
	struct kube_snapshot_result res;
	char err[512] = "";

	(void)state;
	assert_int_equal(t_load(s, "data/no-such-file.json", &res, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "no-such-file.json: "));
	assert_int_equal(kube_snapshot_load(s, "/", &res, err, sizeof(err)), -EINVAL);
	kube_store_free(s);
}

/* conf/demo-cluster.json, the README's cluster. */
static void
test_demo_cluster(void **state)
{
	struct kube_store *s = t_store();
	struct kube_snapshot_result res;
	const struct kube_service *svc;
	const struct kube_ip *ips;
	const struct kube_endpoint *e;

	(void)state;
	t_load_ok(s, "../../conf/demo-cluster.json", &res);
	assert_int_equal(res.namespaces, 4);
	assert_int_equal(res.services, 6);
	assert_int_equal(res.slices, 5);
	assert_int_equal(res.pods, 0);
	assert_int_equal(res.skipped + res.ignored, 0);

	svc = t_svc(s, "default", "kubernetes");
	assert_non_null(svc);
	assert_int_equal(kube_service_ips(svc, &ips), 1);
	assert_true(t_ip_eq(&ips[0], "10.96.0.1"));
	assert_true(t_has_port(svc, "https", "TCP", 443));

	svc = t_svc(s, "kube-system", "kube-dns");
	assert_non_null(svc);
	assert_true(t_has_port(svc, "dns", "UDP", 53));
	assert_int_equal(t_ready_ips(svc, AF_INET), 2);

	svc = t_svc(s, "shop", "web");
	assert_non_null(svc);
	assert_int_equal(kube_service_ips(svc, &ips), 2);
	assert_true(t_ip_eq(&ips[0], "10.96.12.34") || t_ip_eq(&ips[1], "10.96.12.34"));
	assert_true(t_ip_eq(&ips[0], "fd00:10:96::1234") || t_ip_eq(&ips[1], "fd00:10:96::1234"));
	assert_int_equal(t_ready_ips(svc, AF_INET), 2);
	assert_int_equal(t_ready_ips(svc, AF_INET6), 2);

	svc = t_svc(s, "data", "postgres");
	assert_non_null(svc);
	assert_int_equal(kube_service_kind(svc), KUBE_SERVICE_HEADLESS);
	assert_int_equal(kube_service_endpoints_by_label(svc, "postgres-1", 10, &e), 1);
	assert_true(t_ip_eq(&e->ips[0], "10.244.2.20"));
	assert_true(t_has_port(svc, "postgres", "TCP", 5432));

	svc = t_svc(s, "shop", "payments-api");
	assert_non_null(svc);
	assert_string_equal(kube_service_external_name(svc), "payments.example.com");
	svc = t_svc(s, "shop", "cart");
	assert_non_null(svc);
	assert_string_equal(kube_service_external_name(svc), "web.shop.svc.cluster.local");
	kube_store_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cluster_counts),
		cmocka_unit_test(test_second_file_replaces),
		cmocka_unit_test(test_reread_on_copy),
		cmocka_unit_test(test_parse_stopped),
		cmocka_unit_test(test_worker),
		cmocka_unit_test(test_truncated_has_position),
		cmocka_unit_test(test_truncated_column),
		cmocka_unit_test(test_not_a_list),
		cmocka_unit_test(test_items_not_array),
		cmocka_unit_test(test_port_as_string),
		cmocka_unit_test(test_addresses_as_object),
		cmocka_unit_test(test_invalid_ips),
		cmocka_unit_test(test_long_label),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_slice_without_service),
		cmocka_unit_test(test_samples),
		cmocka_unit_test(test_kubectl_nulls),
		cmocka_unit_test(test_unclassifiable_items),
		cmocka_unit_test(test_oversize),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_demo_cluster),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
