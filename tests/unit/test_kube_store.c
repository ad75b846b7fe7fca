/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_kube_store.c - unit tests for the kube resolver's in-memory cluster (src/kube/store.c):
 * add, modify and delete of every kind; slices merged into their service with duplicate
 * addresses removed; slices stored before their service; labels; the PTR index; the change
 * callback (names compared as wire bytes, calls counted); copies; replace passes; caps and invalid
 * input; and, as a measurement only, the memory a 10,000-service, 100,000-endpoint store takes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "kube/store.h"

/* ---- fixtures ----------------------------------------------------------------------------- */

#define TEST_KS_MAX_NAMES 256

struct test_ks_log {
	unsigned calls;
	unsigned moved; /* kube_store_moved_fn calls */
	size_t lens[TEST_KS_MAX_NAMES];
	uint8_t names[TEST_KS_MAX_NAMES][256];
};

static void
test_ks_changed(void *ctx, const uint8_t *name, size_t len)
{
	struct test_ks_log *log = ctx;

	assert_true(len > 0 && len <= 255);
	assert_int_equal(name[len - 1], 0);
	if (log->calls < TEST_KS_MAX_NAMES) {
		memcpy(log->names[log->calls], name, len);
		log->lens[log->calls] = len;
	}
	log->calls++;
}

static void
test_ks_moved(void *ctx)
{
	struct test_ks_log *log = ctx;

	log->moved++;
}

/* "a.b.c." -> wire; returns the length. */
static size_t
test_ks_wire(const char *text, uint8_t *out)
{
	size_t off = 0;

	while (*text) {
		size_t len = strcspn(text, ".");

		out[off] = (uint8_t)len;
		memcpy(out + off + 1, text, len);
		off += 1 + len;
		text += len;
		if (*text == '.')
			text++;
	}
	out[off] = 0;
	return off + 1;
}

static bool
test_ks_reported(const struct test_ks_log *log, const char *text)
{
	uint8_t w[256];
	size_t len = test_ks_wire(text, w);

	for (unsigned i = 0; i < log->calls && i < TEST_KS_MAX_NAMES; i++)
		if (log->lens[i] == len && memcmp(log->names[i], w, len) == 0)
			return true;
	return false;
}

static struct kube_ip
test_ks_ip(const char *text)
{
	struct kube_ip ip;

	memset(&ip, 0xa5, sizeof(ip)); /* unused bytes must not matter */
	if (inet_pton(AF_INET, text, ip.addr) == 1) {
		ip.family = AF_INET;
	} else {
		assert_int_equal(inet_pton(AF_INET6, text, ip.addr), 1);
		ip.family = AF_INET6;
	}
	return ip;
}

static struct test_ks_log test_ks_log;

/* 64 characters; + 1 is the longest label, 63 */
static const char test_ks_label64[] =
	"a123456789012345678901234567890123456789012345678901234567890123";

static struct kube_store *
test_ks_new(bool pod_names)
{
	struct kube_store_config cfg = {.zone = "cluster.local",
					.endpoint_pod_names = pod_names,
					.changed = test_ks_changed,
					.moved = test_ks_moved,
					.ctx = &test_ks_log};
	struct kube_store *s = kube_store_new(&cfg);

	assert_non_null(s);
	memset(&test_ks_log, 0, sizeof(test_ks_log));
	return s;
}

static void
test_ks_reset(void)
{
	memset(&test_ks_log, 0, sizeof(test_ks_log));
}

static const struct kube_port test_ks_ports[] = {
	{.name = "http", .protocol = "TCP", .port = 80},
	{.name = "", .protocol = "TCP", .port = 8080}, /* unnamed: no SRV */
	{.name = "dns", .protocol = "UDP", .port = 53},
};

static int
test_ks_add_svc(struct kube_store *s, const char *ns, const char *name, const char *ip)
{
	struct kube_ip ips[1];
	struct kube_service_obj o = {.ns = ns, .name = name, .ports = test_ks_ports, .n_ports = 3};

	if (ip) {
		ips[0] = test_ks_ip(ip);
		o.ips = ips;
		o.n_ips = 1;
		o.kind = KUBE_SERVICE_CLUSTER_IP;
	} else {
		o.kind = KUBE_SERVICE_HEADLESS;
	}
	return kube_store_upsert_service(s, &o);
}

/* A slice of single-address endpoints: ips[i], hostnames[i] (NULL or ""), all ready unless
 * `unready` names one. */
static int
test_ks_add_slice(struct kube_store *s, const char *ns, const char *name, const char *svc,
		  const char *const *ips, const char *const *hostnames, size_t n, int unready)
{
	struct kube_ip addr[8];
	struct kube_endpoint_obj eps[8];
	struct kube_slice_obj o = {.ns = ns,
				   .name = name,
				   .service = svc,
				   .endpoints = eps,
				   .n_endpoints = n,
				   .ports = test_ks_ports,
				   .n_ports = 3};

	assert_true(n <= 8);
	memset(eps, 0, sizeof(eps));
	for (size_t i = 0; i < n; i++) {
		addr[i] = test_ks_ip(ips[i]);
		o.family = addr[i].family;
		eps[i] = (struct kube_endpoint_obj){.ips = &addr[i],
						    .n_ips = 1,
						    .ready = (int)i != unready,
						    .hostname = hostnames ? hostnames[i] : NULL};
	}
	if (!n)
		o.family = AF_INET;
	return kube_store_upsert_slice(s, &o);
}

static const struct kube_service *
test_ks_svc(const struct kube_store *s, const char *ns, const char *name)
{
	return kube_store_service(s, ns, strlen(ns), name, strlen(name));
}

static size_t
test_ks_ptr(const struct kube_store *s, const char *ip, struct kube_ptr *out, size_t max)
{
	struct kube_ip a = test_ks_ip(ip);

	return kube_store_ptr(s, &a, out, max);
}

/* ---- namespaces --------------------------------------------------------------------------- */

static void
test_ks_namespace(void **state)
{
	struct kube_store *s = test_ks_new(false);
	struct kube_store_counts c;
	uint32_t serial = kube_store_serial(s);

	(void)state;
	assert_false(kube_store_has_namespace(s, "default", 7));
	assert_int_equal(kube_store_upsert_namespace(s, "default"), 0);
	assert_true(kube_store_has_namespace(s, "DeFault", 7));
	assert_false(kube_store_has_namespace(s, "defaul", 6));
	assert_int_equal(test_ks_log.calls, 2);
	assert_true(test_ks_reported(&test_ks_log, "default.svc.cluster.local."));
	assert_true(test_ks_reported(&test_ks_log, "default.pod.cluster.local."));
	assert_int_not_equal(kube_store_serial(s), serial);

	/* unchanged: nothing reported, serial kept */
	test_ks_reset();
	serial = kube_store_serial(s);
	assert_int_equal(kube_store_upsert_namespace(s, "default"), 0);
	assert_int_equal(test_ks_log.calls, 0);
	assert_int_equal(kube_store_serial(s), serial);

	kube_store_counts(s, &c);
	assert_int_equal(c.namespaces, 1);
	assert_int_equal(kube_store_delete_namespace(s, "default"), 0);
	assert_int_equal(test_ks_log.calls, 2);
	assert_false(kube_store_has_namespace(s, "default", 7));
	assert_int_equal(kube_store_delete_namespace(s, "default"), -ENOENT);
	kube_store_counts(s, &c);
	assert_int_equal(c.namespaces, 0);

	/* not RFC 1123 labels */
	assert_int_equal(kube_store_upsert_namespace(s, ""), -EINVAL);
	assert_int_equal(kube_store_upsert_namespace(s, NULL), -EINVAL);
	assert_int_equal(kube_store_upsert_namespace(s, "Default"), -EINVAL);
	assert_int_equal(kube_store_upsert_namespace(s, "-a"), -EINVAL);
	assert_int_equal(kube_store_upsert_namespace(s, "a.b"), -EINVAL);
	assert_int_equal(kube_store_upsert_namespace(s, test_ks_label64), -EINVAL);
	assert_int_equal(kube_store_upsert_namespace(s, test_ks_label64 + 1), 0);
	kube_store_free(s);
}

/* ---- services ----------------------------------------------------------------------------- */

static void
test_ks_service_crud(void **state)
{
	struct kube_store *s = test_ks_new(false);
	const struct kube_service *svc;
	const struct kube_ip *ips;
	const struct kube_port *ports;
	struct kube_ip want = test_ks_ip("10.96.0.10");
	struct kube_ptr ptr[4];
	struct kube_store_counts c;
	uint32_t serial;

	(void)state;
	assert_int_equal(test_ks_add_svc(s, "kube-system", "kube-dns", "10.96.0.10"), 0);
	svc = test_ks_svc(s, "KUBE-system", "Kube-DNS");
	assert_non_null(svc);
	assert_int_equal(kube_service_kind(svc), KUBE_SERVICE_CLUSTER_IP);
	assert_string_equal(kube_service_name(svc), "kube-dns");
	assert_string_equal(kube_service_namespace(svc), "kube-system");
	assert_int_equal(kube_service_ips(svc, &ips), 1);
	assert_int_equal(ips[0].family, AF_INET);
	assert_memory_equal(ips[0].addr, want.addr, 4);
	/* named ports only */
	assert_int_equal(kube_service_ports(svc, &ports), 2);
	assert_string_equal(ports[0].name, "http");
	assert_int_equal(ports[0].port, 80);
	assert_string_equal(ports[1].name, "dns");
	assert_string_equal(ports[1].protocol, "UDP");
	assert_null(test_ks_svc(s, "kube-system", "kube-dn"));
	assert_null(test_ks_svc(s, "default", "kube-dns"));

	/* its name and its ClusterIP's reverse name, exactly */
	assert_int_equal(test_ks_log.calls, 2);
	assert_true(test_ks_reported(&test_ks_log, "kube-dns.kube-system.svc.cluster.local."));
	assert_true(test_ks_reported(&test_ks_log, "10.0.96.10.in-addr.arpa."));
	assert_int_equal(test_ks_ptr(s, "10.96.0.10", ptr, 4), 1);
	assert_ptr_equal(ptr[0].svc, svc);
	assert_null(ptr[0].label);

	/* unchanged re-statement: silent */
	test_ks_reset();
	serial = kube_store_serial(s);
	assert_int_equal(test_ks_add_svc(s, "kube-system", "kube-dns", "10.96.0.10"), 0);
	assert_int_equal(test_ks_log.calls, 0);
	assert_int_equal(kube_store_serial(s), serial);

	/* new ClusterIP: name, old and new reverse names */
	assert_int_equal(test_ks_add_svc(s, "kube-system", "kube-dns", "10.96.0.11"), 0);
	assert_int_equal(test_ks_log.calls, 3);
	assert_true(test_ks_reported(&test_ks_log, "10.0.96.10.in-addr.arpa."));
	assert_true(test_ks_reported(&test_ks_log, "11.0.96.10.in-addr.arpa."));
	assert_int_equal(test_ks_ptr(s, "10.96.0.10", ptr, 4), 0);
	assert_int_equal(test_ks_ptr(s, "10.96.0.11", ptr, 4), 1);
	assert_int_not_equal(kube_store_serial(s), serial);

	kube_store_counts(s, &c);
	assert_int_equal(c.services, 1);
	test_ks_reset();
	assert_int_equal(kube_store_delete_service(s, "kube-system", "kube-dns"), 0);
	assert_int_equal(test_ks_log.calls, 2);
	assert_null(test_ks_svc(s, "kube-system", "kube-dns"));
	assert_int_equal(test_ks_ptr(s, "10.96.0.11", ptr, 4), 0);
	assert_int_equal(kube_store_delete_service(s, "kube-system", "kube-dns"), -ENOENT);
	kube_store_counts(s, &c);
	assert_int_equal(c.services, 0);
	kube_store_free(s);
}

static void
test_ks_service_kinds(void **state)
{
	struct kube_store *s = test_ks_new(false);
	struct kube_ip dual[2] = {test_ks_ip("10.0.0.1"), test_ks_ip("fd00::1")};
	struct kube_service_obj ext = {.ns = "default",
				       .name = "ext",
				       .kind = KUBE_SERVICE_EXTERNAL_NAME,
				       .external_name = "my.database.example.com"};
	struct kube_service_obj ds = {.ns = "default", .name = "ds", .ips = dual, .n_ips = 2};
	const struct kube_service *svc;
	const struct kube_ip *ips;
	struct kube_ptr ptr[2];

	(void)state;
	assert_int_equal(kube_store_upsert_service(s, &ext), 0);
	svc = test_ks_svc(s, "default", "ext");
	assert_int_equal(kube_service_kind(svc), KUBE_SERVICE_EXTERNAL_NAME);
	assert_string_equal(kube_service_external_name(svc), "my.database.example.com");
	assert_int_equal(kube_service_ips(svc, &ips), 0);
	ext.external_name = "bad..name";
	assert_int_equal(kube_store_upsert_service(s, &ext), -EINVAL);
	ext.external_name = NULL;
	assert_int_equal(kube_store_upsert_service(s, &ext), -EINVAL);
	assert_string_equal(kube_service_external_name(test_ks_svc(s, "default", "ext")),
			    "my.database.example.com");

	/* dual-stack: both families, both reverse names */
	test_ks_reset();
	assert_int_equal(kube_store_upsert_service(s, &ds), 0);
	assert_int_equal(kube_service_ips(test_ks_svc(s, "default", "ds"), &ips), 2);
	assert_true(test_ks_reported(&test_ks_log, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
						   "0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa."));
	assert_true(test_ks_reported(&test_ks_log, "1.0.0.10.in-addr.arpa."));
	assert_int_equal(test_ks_ptr(s, "fd00::1", ptr, 2), 1);

	/* headless: no ClusterIP kept */
	assert_int_equal(test_ks_add_svc(s, "default", "hl", NULL), 0);
	assert_int_equal(kube_service_kind(test_ks_svc(s, "default", "hl")), KUBE_SERVICE_HEADLESS);
	kube_store_free(s);
}

/* ---- slices ------------------------------------------------------------------------------- */

static void
test_ks_slices_union(void **state)
{
	struct kube_store *s = test_ks_new(false);
	static const char *const a[] = {"10.1.0.1", "10.1.0.2"};
	static const char *const b[] = {"10.1.0.3", "10.1.0.2"}; /* .2 in both */
	const struct kube_endpoint *eps;
	const struct kube_service *svc;
	struct kube_store_counts c;
	struct kube_ptr ptr[4];

	(void)state;
	assert_int_equal(test_ks_add_svc(s, "default", "web", "10.96.1.1"), 0);
	assert_int_equal(test_ks_add_slice(s, "default", "web-aaaa", "web", a, NULL, 2, -1), 0);
	assert_int_equal(test_ks_add_slice(s, "default", "web-bbbb", "web", b, NULL, 2, -1), 0);
	svc = test_ks_svc(s, "default", "web");
	assert_int_equal(kube_service_endpoints(svc, &eps), 3);
	/* sorted by label */
	assert_string_equal(eps[0].label, "10-1-0-1");
	assert_string_equal(eps[1].label, "10-1-0-2");
	assert_string_equal(eps[2].label, "10-1-0-3");
	assert_int_equal(eps[1].n_ips, 1);
	assert_true(eps[1].ready);
	assert_int_equal(test_ks_ptr(s, "10.1.0.2", ptr, 4), 1);
	kube_store_counts(s, &c);
	assert_int_equal(c.slices, 2);
	assert_int_equal(c.endpoints, 4);

	/* deleting one slice keeps the address the other still has */
	test_ks_reset();
	assert_int_equal(kube_store_delete_slice(s, "default", "web-aaaa"), 0);
	assert_int_equal(kube_service_endpoints(svc, &eps), 2);
	assert_int_equal(test_ks_ptr(s, "10.1.0.1", ptr, 4), 0);
	assert_int_equal(test_ks_ptr(s, "10.1.0.2", ptr, 4), 1);
	assert_true(test_ks_reported(&test_ks_log, "1.0.1.10.in-addr.arpa."));
	assert_false(test_ks_reported(&test_ks_log, "2.0.1.10.in-addr.arpa."));
	assert_true(test_ks_reported(&test_ks_log, "web.default.svc.cluster.local."));
	assert_int_equal(test_ks_log.calls, 2);
	assert_int_equal(kube_store_delete_slice(s, "default", "web-aaaa"), -ENOENT);

	/* deleting the last removes every endpoint and PTR */
	assert_int_equal(kube_store_delete_slice(s, "default", "web-bbbb"), 0);
	assert_int_equal(kube_service_endpoints(svc, &eps), 0);
	assert_int_equal(test_ks_ptr(s, "10.1.0.2", ptr, 4), 0);
	assert_int_equal(test_ks_ptr(s, "10.1.0.3", ptr, 4), 0);
	assert_int_equal(test_ks_ptr(s, "10.96.1.1", ptr, 4), 1);
	kube_store_counts(s, &c);
	assert_int_equal(c.slices, 0);
	assert_int_equal(c.endpoints, 0);
	kube_store_free(s);
}

static void
test_ks_slice_modify(void **state)
{
	struct kube_store *s = test_ks_new(false);
	static const char *const a[] = {"10.1.0.1", "10.1.0.2"};
	static const char *const a2[] = {"10.1.0.1", "10.1.0.4"};
	const struct kube_endpoint *eps;
	struct kube_ptr ptr[4];
	uint32_t serial;

	(void)state;
	assert_int_equal(test_ks_add_svc(s, "default", "web", "10.96.1.1"), 0);
	assert_int_equal(test_ks_add_slice(s, "default", "web-a", "web", a, NULL, 2, -1), 0);
	test_ks_reset();
	serial = kube_store_serial(s);
	assert_int_equal(test_ks_add_slice(s, "default", "web-a", "web", a, NULL, 2, -1), 0);
	assert_int_equal(test_ks_log.calls, 0);
	assert_int_equal(kube_store_serial(s), serial);

	/* .2 replaced by .4: the service name and exactly those two reverse names */
	assert_int_equal(test_ks_add_slice(s, "default", "web-a", "web", a2, NULL, 2, -1), 0);
	assert_int_equal(test_ks_log.calls, 3);
	assert_true(test_ks_reported(&test_ks_log, "web.default.svc.cluster.local."));
	assert_true(test_ks_reported(&test_ks_log, "2.0.1.10.in-addr.arpa."));
	assert_true(test_ks_reported(&test_ks_log, "4.0.1.10.in-addr.arpa."));
	assert_int_equal(test_ks_ptr(s, "10.1.0.2", ptr, 4), 0);
	assert_int_equal(test_ks_ptr(s, "10.1.0.4", ptr, 4), 1);
	assert_string_equal(ptr[0].label, "10-1-0-4");

	/* readiness kept per endpoint; a not-ready address has no PTR */
	test_ks_reset();
	assert_int_equal(test_ks_add_slice(s, "default", "web-a", "web", a2, NULL, 2, 1), 0);
	assert_int_equal(kube_service_endpoints(test_ks_svc(s, "default", "web"), &eps), 2);
	assert_true(eps[0].ready);
	assert_false(eps[1].ready);
	assert_int_equal(test_ks_ptr(s, "10.1.0.4", ptr, 4), 0);
	assert_true(test_ks_reported(&test_ks_log, "4.0.1.10.in-addr.arpa."));
	assert_true(test_ks_reported(&test_ks_log, "web.default.svc.cluster.local."));
	assert_int_equal(test_ks_log.calls, 2);

	/* a slice moving to another service leaves the first */
	assert_int_equal(test_ks_add_svc(s, "default", "api", "10.96.1.2"), 0);
	assert_int_equal(test_ks_add_slice(s, "default", "web-a", "api", a2, NULL, 2, -1), 0);
	assert_int_equal(kube_service_endpoints(test_ks_svc(s, "default", "web"), &eps), 0);
	assert_int_equal(kube_service_endpoints(test_ks_svc(s, "default", "api"), &eps), 2);
	kube_store_free(s);
}

static void
test_ks_slice_before_service(void **state)
{
	struct kube_store *s = test_ks_new(false);
	static const char *const a[] = {"10.2.0.1"};
	struct kube_slice_obj none = {.ns = "default", .name = "orphan", .family = AF_INET};
	const struct kube_endpoint *eps;
	struct kube_store_counts c;
	struct kube_ptr ptr[4];

	(void)state;
	assert_int_equal(test_ks_add_slice(s, "default", "db-x", "db", a, NULL, 1, -1), 0);
	assert_null(test_ks_svc(s, "default", "db"));
	assert_int_equal(test_ks_ptr(s, "10.2.0.1", ptr, 4), 0);
	kube_store_counts(s, &c);
	assert_int_equal(c.services, 0);
	assert_int_equal(c.slices, 1);

	test_ks_reset();
	assert_int_equal(test_ks_add_svc(s, "default", "db", NULL), 0);
	assert_int_equal(kube_service_endpoints(test_ks_svc(s, "default", "db"), &eps), 1);
	assert_string_equal(eps[0].label, "10-2-0-1");
	assert_int_equal(test_ks_ptr(s, "10.2.0.1", ptr, 4), 1);
	assert_true(test_ks_reported(&test_ks_log, "db.default.svc.cluster.local."));
	assert_true(test_ks_reported(&test_ks_log, "1.0.2.10.in-addr.arpa."));

	/* the service goes, its slice stays and joins it again */
	assert_int_equal(kube_store_delete_service(s, "default", "db"), 0);
	assert_int_equal(test_ks_ptr(s, "10.2.0.1", ptr, 4), 0);
	assert_int_equal(test_ks_add_svc(s, "default", "db", NULL), 0);
	assert_int_equal(test_ks_ptr(s, "10.2.0.1", ptr, 4), 1);

	/* a slice naming no service is refused */
	assert_int_equal(kube_store_upsert_slice(s, &none), -EINVAL);
	kube_store_free(s);
}

static void
test_ks_two_services_two_ptrs(void **state)
{
	struct kube_store *s = test_ks_new(false);
	static const char *const a[] = {"10.3.0.7"};
	static const char *const host[] = {"web-0"};
	struct kube_ptr ptr[4];
	const struct kube_service *x, *y;

	(void)state;
	assert_int_equal(test_ks_add_svc(s, "default", "x", NULL), 0);
	assert_int_equal(test_ks_add_svc(s, "default", "y", "10.96.3.1"), 0);
	assert_int_equal(test_ks_add_slice(s, "default", "x-1", "x", a, host, 1, -1), 0);
	assert_int_equal(test_ks_add_slice(s, "default", "y-1", "y", a, NULL, 1, -1), 0);
	x = test_ks_svc(s, "default", "x");
	y = test_ks_svc(s, "default", "y");
	assert_int_equal(test_ks_ptr(s, "10.3.0.7", ptr, 4), 2);
	if (ptr[0].svc != x) {
		struct kube_ptr t = ptr[0];

		ptr[0] = ptr[1];
		ptr[1] = t;
	}
	assert_ptr_equal(ptr[0].svc, x);
	assert_string_equal(ptr[0].label, "web-0");
	assert_ptr_equal(ptr[1].svc, y);
	assert_string_equal(ptr[1].label, "10-3-0-7");
	assert_int_equal(test_ks_ptr(s, "10.3.0.7", ptr, 1), 1); /* max respected */
	/* ClusterIP pairs come first */
	assert_int_equal(test_ks_ptr(s, "10.96.3.1", ptr, 4), 1);
	assert_null(ptr[0].label);
	assert_int_equal(kube_store_delete_service(s, "default", "x"), 0);
	assert_int_equal(test_ks_ptr(s, "10.3.0.7", ptr, 4), 1);
	assert_ptr_equal(ptr[0].svc, y);
	kube_store_free(s);
}

static void
test_ks_labels(void **state)
{
	struct kube_store *s = test_ks_new(true);
	struct kube_ip ip4 = test_ks_ip("10.4.0.1"), ip4b = test_ks_ip("10.4.0.2");
	struct kube_ip ip4c = test_ks_ip("10.4.0.3"), ip4d = test_ks_ip("10.4.0.4");
	struct kube_ip ip6 = test_ks_ip("fd00::1"), ip6b = test_ks_ip("fd00::2");
	struct kube_endpoint_obj eps4[] = {
		{.ips = &ip4, .n_ips = 1, .ready = true, .hostname = "Web-0", .pod_name = "p1"},
		{.ips = &ip4b, .n_ips = 1, .ready = true, .pod_name = "web-7d9f-abcde"},
		{.ips = &ip4c, .n_ips = 1, .ready = true, .pod_name = test_ks_label64},
		{.ips = &ip4d, .n_ips = 1, .ready = true, .hostname = "web-0"},
	};
	struct kube_endpoint_obj eps6[] = {
		{.ips = &ip6, .n_ips = 1, .ready = true},
		{.ips = &ip6b, .n_ips = 1, .ready = true, .hostname = ""},
	};
	struct kube_slice_obj s4 = {.ns = "default",
				    .name = "w4",
				    .service = "web",
				    .family = AF_INET,
				    .endpoints = eps4,
				    .n_endpoints = 4};
	struct kube_slice_obj s6 = {.ns = "default",
				    .name = "w6",
				    .service = "web",
				    .family = AF_INET6,
				    .endpoints = eps6,
				    .n_endpoints = 2};
	const struct kube_service *svc;
	const struct kube_endpoint *eps;

	(void)state;
	assert_int_equal(test_ks_add_svc(s, "default", "web", NULL), 0);
	assert_int_equal(kube_store_upsert_slice(s, &s4), 0);
	assert_int_equal(kube_store_upsert_slice(s, &s6), 0);
	svc = test_ks_svc(s, "default", "web");
	assert_int_equal(kube_service_endpoints_by_label(svc, "WEB-0", 5, &eps), 2);
	assert_string_equal(eps[0].label, "web-0");
	assert_string_equal(eps[1].label, "web-0");
	assert_int_equal(kube_service_endpoints_by_label(svc, "web-7d9f-abcde", 14, &eps), 1);
	assert_memory_equal(eps[0].ips[0].addr, ip4b.addr, 4);
	/* a pod name over 63 characters falls back to the dashed IP */
	assert_int_equal(kube_service_endpoints_by_label(svc, "10-4-0-3", 8, &eps), 1);
	assert_int_equal(kube_service_endpoints_by_label(svc, "fd00--1", 7, &eps), 1);
	assert_int_equal(eps[0].ips[0].family, AF_INET6);
	assert_int_equal(kube_service_endpoints_by_label(svc, "FD00--2", 7, &eps), 1);
	assert_int_equal(kube_service_endpoints_by_label(svc, "web-1", 5, &eps), 0);
	assert_null(eps);
	assert_int_equal(kube_service_endpoints_by_label(svc, "10-4-0-2", 8, &eps), 0);
	kube_store_free(s);

	/* without the option, pod names are not labels */
	s = test_ks_new(false);
	assert_int_equal(test_ks_add_svc(s, "default", "web", NULL), 0);
	assert_int_equal(kube_store_upsert_slice(s, &s4), 0);
	svc = test_ks_svc(s, "default", "web");
	assert_int_equal(kube_service_endpoints_by_label(svc, "10-4-0-2", 8, &eps), 1);
	assert_int_equal(kube_service_endpoints_by_label(svc, "web-7d9f-abcde", 14, &eps), 0);
	kube_store_free(s);
}

/* Several addresses on one endpoint, one of them also in another slice: the endpoint keeps
 * the rest, a not-ready copy loses to a ready one. */
static void
test_ks_dedup_partial(void **state)
{
	struct kube_store *s = test_ks_new(false);
	struct kube_ip two[2] = {test_ks_ip("10.5.0.1"), test_ks_ip("10.5.0.2")};
	struct kube_ip one = test_ks_ip("10.5.0.2");
	struct kube_endpoint_obj ea = {.ips = two, .n_ips = 2, .ready = false, .hostname = "a"};
	struct kube_endpoint_obj eb = {.ips = &one, .n_ips = 1, .ready = true, .hostname = "b"};
	struct kube_slice_obj sa = {.ns = "default",
				    .name = "s-a",
				    .service = "m",
				    .family = AF_INET,
				    .endpoints = &ea,
				    .n_endpoints = 1};
	struct kube_slice_obj sb = {.ns = "default",
				    .name = "s-b",
				    .service = "m",
				    .family = AF_INET,
				    .endpoints = &eb,
				    .n_endpoints = 1};
	const struct kube_endpoint *eps;
	const struct kube_service *svc;

	(void)state;
	assert_int_equal(kube_store_upsert_slice(s, &sa), 0);
	assert_int_equal(kube_store_upsert_slice(s, &sb), 0);
	assert_int_equal(test_ks_add_svc(s, "default", "m", NULL), 0);
	svc = test_ks_svc(s, "default", "m");
	assert_int_equal(kube_service_endpoints(svc, &eps), 2);
	assert_string_equal(eps[0].label, "a");
	assert_int_equal(eps[0].n_ips, 1);
	assert_memory_equal(eps[0].ips[0].addr, two[0].addr, 4);
	assert_false(eps[0].ready);
	assert_string_equal(eps[1].label, "b");
	assert_true(eps[1].ready);
	kube_store_free(s);
}

static void
test_ks_headless_ports(void **state)
{
	struct kube_store *s = test_ks_new(false);
	static const char *const a[] = {"10.6.0.1"};
	static const char *const b[] = {"10.6.0.2"};
	const struct kube_port *ports;

	(void)state;
	assert_int_equal(test_ks_add_svc(s, "default", "hl", NULL), 0);
	assert_int_equal(kube_service_ports(test_ks_svc(s, "default", "hl"), &ports), 0);
	assert_int_equal(test_ks_add_slice(s, "default", "hl-1", "hl", a, NULL, 1, -1), 0);
	assert_int_equal(test_ks_add_slice(s, "default", "hl-2", "hl", b, NULL, 1, -1), 0);
	/* same ports in both slices collapse */
	assert_int_equal(kube_service_ports(test_ks_svc(s, "default", "hl"), &ports), 2);
	assert_string_equal(ports[0].name, "http");
	assert_string_equal(ports[1].name, "dns");
	kube_store_free(s);
}

/* ---- pods --------------------------------------------------------------------------------- */

static void
test_ks_pods(void **state)
{
	struct kube_store *s = test_ks_new(false);
	struct kube_ip ip = test_ks_ip("10.7.0.1"), ip2 = test_ks_ip("10.7.0.2");
	struct kube_pod_obj p = {.ns = "default", .name = "pod-a", .ips = &ip, .n_ips = 1};
	struct kube_pod_obj q = {.ns = "default", .name = "pod-b", .ips = &ip, .n_ips = 1};
	struct kube_store_counts c;

	(void)state;
	assert_int_equal(kube_store_upsert_pod(s, &p), 0);
	assert_true(kube_store_pod_ip(s, "Default", 7, &ip));
	assert_false(kube_store_pod_ip(s, "other", 5, &ip));
	assert_false(kube_store_pod_ip(s, "default", 7, &ip2));
	assert_true(test_ks_reported(&test_ks_log, "default.pod.cluster.local."));
	/* two pods sharing an address (host network): one leaving keeps it */
	assert_int_equal(kube_store_upsert_pod(s, &q), 0);
	assert_int_equal(kube_store_delete_pod(s, "default", "pod-a"), 0);
	assert_true(kube_store_pod_ip(s, "default", 7, &ip));
	test_ks_reset();
	assert_int_equal(kube_store_upsert_pod(s, &q), 0);
	assert_int_equal(test_ks_log.calls, 0);
	q.ips = &ip2;
	assert_int_equal(kube_store_upsert_pod(s, &q), 0);
	assert_int_equal(test_ks_log.calls, 1);
	assert_false(kube_store_pod_ip(s, "default", 7, &ip));
	assert_true(kube_store_pod_ip(s, "default", 7, &ip2));
	kube_store_counts(s, &c);
	assert_int_equal(c.pods, 1);
	assert_int_equal(kube_store_delete_pod(s, "default", "pod-b"), 0);
	assert_int_equal(kube_store_delete_pod(s, "default", "pod-b"), -ENOENT);
	assert_false(kube_store_pod_ip(s, "default", 7, &ip2));
	kube_store_free(s);
}

/* Every change of any kind reports the serial moving (the cache stops renewing answers from
 * before it); a write that changes nothing does not. */
static void
test_ks_moved_on_every_change(void **state)
{
	struct kube_store *s = test_ks_new(false);
	struct kube_ip ip = test_ks_ip("10.7.0.1");
	struct kube_pod_obj p = {.ns = "default", .name = "pod-a", .ips = &ip, .n_ips = 1};
	const char *const ips[] = {"10.1.0.1"};
	uint32_t serial = kube_store_serial(s);
	unsigned moved = 0;

	(void)state;
#define TEST_KS_MOVES(call, n)                                                                     \
	do {                                                                                       \
		assert_int_equal((call), 0);                                                       \
		moved += (n);                                                                      \
		assert_int_equal(test_ks_log.moved, moved);                                        \
		assert_true((n) == 0 ? kube_store_serial(s) == serial                              \
				     : kube_store_serial(s) != serial);                            \
		serial = kube_store_serial(s);                                                     \
	} while (0)
	TEST_KS_MOVES(kube_store_upsert_namespace(s, "default"), 1);
	TEST_KS_MOVES(kube_store_upsert_namespace(s, "default"), 0);
	TEST_KS_MOVES(test_ks_add_svc(s, "default", "web", "10.96.0.5"), 1);
	TEST_KS_MOVES(test_ks_add_svc(s, "default", "web", "10.96.0.5"), 0);
	TEST_KS_MOVES(test_ks_add_svc(s, "default", "web", "10.96.0.6"), 1);
	TEST_KS_MOVES(test_ks_add_slice(s, "default", "web-1", "web", ips, NULL, 1, -1), 1);
	TEST_KS_MOVES(test_ks_add_slice(s, "default", "web-1", "web", ips, NULL, 1, 0), 1);
	TEST_KS_MOVES(kube_store_upsert_pod(s, &p), 1);
	TEST_KS_MOVES(kube_store_delete_pod(s, "default", "pod-a"), 1);
	TEST_KS_MOVES(kube_store_delete_slice(s, "default", "web-1"), 1);
	TEST_KS_MOVES(kube_store_delete_service(s, "default", "web"), 1);
	TEST_KS_MOVES(kube_store_delete_namespace(s, "default"), 1);
#undef TEST_KS_MOVES
	kube_store_free(s);
}

/* ---- copies ------------------------------------------------------------------------------ */

/* One of every shape a copy must keep: a headless service whose endpoints are labelled by
 * hostname, by pod name (--kube-endpoint-pod-names) and by IPs that make no valid hostname
 * ("--1" for ::1, "fd00--" for fd00::), an address in two slices of one service under two
 * labels, slices of a service not stored (a placeholder), an ExternalName, a pod. */
static void
test_ks_clone_fill(struct kube_store *s)
{
	static const char *const hosts[] = {"web-0", NULL, "dup"};
	static const char *const v4[] = {"10.9.0.1", "10.9.0.2", "10.9.0.3"};
	static const char *const v4b[] = {"10.9.0.3", "10.9.0.4"};
	static const char *const v6[] = {"::1", "fd00::", "fd00::1:2"};
	static const char *const orphan[] = {"10.9.9.9"};
	struct kube_ip pod_ip = test_ks_ip("10.9.1.1"), v6ip = test_ks_ip("fd00::7");
	struct kube_endpoint_obj pod_ep = {
		.ips = &pod_ip, .n_ips = 1, .ready = true, .pod_name = "Pod-A"};
	struct kube_slice_obj pods_slice = {.ns = "default",
					    .name = "web-pods",
					    .service = "web",
					    .family = AF_INET,
					    .endpoints = &pod_ep,
					    .n_endpoints = 1};
	struct kube_service_obj ext = {.ns = "default",
				       .name = "ext",
				       .kind = KUBE_SERVICE_EXTERNAL_NAME,
				       .external_name = "example.com."};
	struct kube_pod_obj pod = {.ns = "default", .name = "pod-a", .ips = &v6ip, .n_ips = 1};

	assert_int_equal(kube_store_upsert_namespace(s, "default"), 0);
	assert_int_equal(kube_store_upsert_namespace(s, "other"), 0);
	assert_int_equal(test_ks_add_svc(s, "default", "api", "10.96.9.1"), 0);
	assert_int_equal(test_ks_add_svc(s, "default", "web", NULL), 0);
	assert_int_equal(test_ks_add_slice(s, "default", "web-1", "web", v4, hosts, 3, 1), 0);
	assert_int_equal(test_ks_add_slice(s, "default", "web-2", "web", v4b, NULL, 2, -1), 0);
	assert_int_equal(test_ks_add_slice(s, "default", "web-6", "web", v6, NULL, 3, -1), 0);
	assert_int_equal(kube_store_upsert_slice(s, &pods_slice), 0);
	assert_int_equal(test_ks_add_slice(s, "other", "lost-1", "lost", orphan, NULL, 1, -1), 0);
	assert_int_equal(kube_store_upsert_service(s, &ext), 0);
	assert_int_equal(kube_store_upsert_pod(s, &pod), 0);
}

/* Two services' endpoints are the same: labels, addresses, readiness, in order. */
static void
test_ks_same_endpoints(const struct kube_service *a, const struct kube_service *b)
{
	const struct kube_endpoint *ea, *eb;
	size_t n = kube_service_endpoints(a, &ea);

	assert_int_equal(kube_service_endpoints(b, &eb), n);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(ea[i].label, eb[i].label);
		assert_int_equal(ea[i].ready, eb[i].ready);
		assert_int_equal(ea[i].n_ips, eb[i].n_ips);
		assert_memory_equal(ea[i].ips, eb[i].ips, ea[i].n_ips * sizeof(*ea[i].ips));
	}
}

static void
test_ks_clone(void **state)
{
	struct kube_store *s = test_ks_new(true), *c = NULL;
	struct kube_store_counts cs, cc;
	struct test_ks_log clog = {0};
	struct kube_ptr p[4];
	const struct kube_endpoint *e;
	struct kube_ip pod_ip;

	(void)state;
	test_ks_clone_fill(s);
	test_ks_reset();
	assert_int_equal(kube_store_clone(s, test_ks_changed, test_ks_moved, &clog, &c), 0);
	assert_int_equal(clog.calls + clog.moved + test_ks_log.calls, 0); /* copying is silent */
	assert_int_equal(kube_store_serial(c), kube_store_serial(s));
	kube_store_counts(s, &cs);
	kube_store_counts(c, &cc);
	assert_memory_equal(&cs, &cc, sizeof(cs));
	assert_int_equal(cs.slices, 5);
	test_ks_same_endpoints(test_ks_svc(s, "default", "web"), test_ks_svc(c, "default", "web"));
	assert_int_equal(
		kube_service_endpoints_by_label(test_ks_svc(c, "default", "web"), "--1", 3, &e), 1);
	assert_int_equal(
		kube_service_endpoints_by_label(test_ks_svc(c, "default", "web"), "pod-a", 5, &e),
		1);
	assert_string_equal(kube_service_external_name(test_ks_svc(c, "default", "ext")),
			    "example.com.");
	assert_int_equal(test_ks_ptr(c, "10.96.9.1", p, 4), 1);
	assert_int_equal(test_ks_ptr(c, "10.9.9.9", p, 4), 0); /* placeholders publish nothing */
	pod_ip = test_ks_ip("fd00::7");
	assert_true(kube_store_pod_ip(c, "default", 7, &pod_ip));

	/* The copy compares equal to the objects it came from: stating them all again reports
	 * nothing and keeps the serial, as on the original. */
	for (int k = KUBE_KIND_NAMESPACE; k <= KUBE_KIND_POD; k++)
		kube_store_replace_begin(c, k);
	test_ks_clone_fill(c);
	for (int k = KUBE_KIND_NAMESPACE; k <= KUBE_KIND_POD; k++)
		kube_store_replace_end(c, k);
	assert_int_equal(clog.calls + clog.moved, 0);
	assert_int_equal(kube_store_serial(c), kube_store_serial(s));

	/* and reports go where the copy was told from then on; the original is unchanged */
	assert_int_equal(kube_store_delete_service(c, "default", "api"), 0);
	assert_true(clog.calls > 0 && clog.moved == 1);
	assert_int_equal(test_ks_log.calls + test_ks_log.moved, 0);
	assert_non_null(test_ks_svc(s, "default", "api"));
	kube_store_free(c);
	kube_store_free(s);
}

/* ---- replace passes ----------------------------------------------------------------------- */

static void
test_ks_replace(void **state)
{
	struct kube_store *s = test_ks_new(false);
	static const char *const a[] = {"10.8.0.1"};
	static const char *const b[] = {"10.8.0.2"};
	struct kube_store_counts c;
	uint32_t serial;

	(void)state;
	assert_int_equal(kube_store_upsert_namespace(s, "default"), 0);
	assert_int_equal(kube_store_upsert_namespace(s, "gone"), 0);
	assert_int_equal(test_ks_add_svc(s, "default", "keep", "10.96.8.1"), 0);
	assert_int_equal(test_ks_add_svc(s, "default", "stale", "10.96.8.2"), 0);
	assert_int_equal(test_ks_add_slice(s, "default", "keep-1", "keep", a, NULL, 1, -1), 0);
	assert_int_equal(test_ks_add_slice(s, "default", "stale-1", "stale", b, NULL, 1, -1), 0);

	/* the same state again: nothing reported, serial kept */
	test_ks_reset();
	serial = kube_store_serial(s);
	for (int k = KUBE_KIND_NAMESPACE; k <= KUBE_KIND_POD; k++)
		kube_store_replace_begin(s, k);
	assert_int_equal(kube_store_upsert_namespace(s, "default"), 0);
	assert_int_equal(kube_store_upsert_namespace(s, "gone"), 0);
	assert_int_equal(test_ks_add_svc(s, "default", "keep", "10.96.8.1"), 0);
	assert_int_equal(test_ks_add_svc(s, "default", "stale", "10.96.8.2"), 0);
	assert_int_equal(test_ks_add_slice(s, "default", "keep-1", "keep", a, NULL, 1, -1), 0);
	assert_int_equal(test_ks_add_slice(s, "default", "stale-1", "stale", b, NULL, 1, -1), 0);
	for (int k = KUBE_KIND_NAMESPACE; k <= KUBE_KIND_POD; k++)
		kube_store_replace_end(s, k);
	assert_int_equal(test_ks_log.calls, 0);
	assert_int_equal(kube_store_serial(s), serial);

	/* one object of each kind left out: only those reported */
	for (int k = KUBE_KIND_NAMESPACE; k <= KUBE_KIND_POD; k++)
		kube_store_replace_begin(s, k);
	assert_int_equal(kube_store_upsert_namespace(s, "default"), 0);
	assert_int_equal(test_ks_add_svc(s, "default", "keep", "10.96.8.1"), 0);
	assert_int_equal(test_ks_add_slice(s, "default", "keep-1", "keep", a, NULL, 1, -1), 0);
	assert_int_equal(test_ks_log.calls, 0);
	for (int k = KUBE_KIND_NAMESPACE; k <= KUBE_KIND_POD; k++)
		kube_store_replace_end(s, k);
	assert_true(test_ks_reported(&test_ks_log, "gone.svc.cluster.local."));
	assert_true(test_ks_reported(&test_ks_log, "gone.pod.cluster.local."));
	assert_true(test_ks_reported(&test_ks_log, "stale.default.svc.cluster.local."));
	assert_true(test_ks_reported(&test_ks_log, "2.8.96.10.in-addr.arpa."));
	assert_true(test_ks_reported(&test_ks_log, "2.0.8.10.in-addr.arpa."));
	assert_false(test_ks_reported(&test_ks_log, "keep.default.svc.cluster.local."));
	assert_int_equal(test_ks_log.calls, 5);
	assert_int_not_equal(kube_store_serial(s), serial);
	kube_store_counts(s, &c);
	assert_int_equal(c.namespaces, 1);
	assert_int_equal(c.services, 1);
	assert_int_equal(c.slices, 1);
	assert_int_equal(c.endpoints, 1);
	assert_null(test_ks_svc(s, "default", "stale"));
	assert_non_null(test_ks_svc(s, "default", "keep"));
	kube_store_free(s);
}

/* ---- invalid input ------------------------------------------------------------------------ */

static void
test_ks_invalid(void **state)
{
	struct kube_store *s = test_ks_new(false);
	struct kube_ip v4 = test_ks_ip("10.9.0.1"), v6 = test_ks_ip("fd00::9");
	struct kube_ip many[KUBE_MAX_IPS + 1];
	struct kube_endpoint_obj ep = {.ips = &v6, .n_ips = 1, .ready = true};
	struct kube_slice_obj sl = {.ns = "default",
				    .name = "bad",
				    .service = "web",
				    .family = AF_INET,
				    .endpoints = &ep,
				    .n_endpoints = 1};
	struct kube_service_obj so = {
		.ns = "default", .name = "web", .ips = many, .n_ips = KUBE_MAX_IPS + 1};
	struct kube_port bad_port = {.name = "http", .protocol = "T C P", .port = 80};
	struct kube_store_counts c;
	uint32_t serial = kube_store_serial(s);

	(void)state;
	for (size_t i = 0; i < KUBE_MAX_IPS + 1; i++)
		many[i] = v4;
	/* family mismatch */
	assert_int_equal(kube_store_upsert_slice(s, &sl), -EINVAL);
	/* FQDN slices carry no addresses */
	sl.family = 0;
	assert_int_equal(kube_store_upsert_slice(s, &sl), -EINVAL);
	sl.family = AF_INET6;
	ep.hostname = test_ks_label64;
	assert_int_equal(kube_store_upsert_slice(s, &sl), -EINVAL);
	ep.hostname = "bad_host";
	assert_int_equal(kube_store_upsert_slice(s, &sl), -EINVAL);
	ep.hostname = NULL;
	sl.service = "Web";
	assert_int_equal(kube_store_upsert_slice(s, &sl), -EINVAL);
	sl.service = "web";
	sl.n_endpoints = KUBE_MAX_ENDPOINTS + 1;
	assert_int_equal(kube_store_upsert_slice(s, &sl), -EINVAL);
	sl.n_endpoints = 1;
	ep.n_ips = KUBE_MAX_IPS + 1;
	assert_int_equal(kube_store_upsert_slice(s, &sl), -EINVAL);
	ep.n_ips = 1;
	sl.name = "";
	assert_int_equal(kube_store_upsert_slice(s, &sl), -EINVAL);
	sl.name = "bad";
	sl.ports = &bad_port;
	sl.n_ports = 1;
	assert_int_equal(kube_store_upsert_slice(s, &sl), -EINVAL);
	sl.n_ports = KUBE_MAX_PORTS + 1;
	assert_int_equal(kube_store_upsert_slice(s, &sl), -EINVAL);

	/* too many ClusterIPs, bad names, bad family */
	assert_int_equal(kube_store_upsert_service(s, &so), -EINVAL);
	so.n_ips = 1;
	so.name = "web.x";
	assert_int_equal(kube_store_upsert_service(s, &so), -EINVAL);
	so.name = NULL;
	assert_int_equal(kube_store_upsert_service(s, &so), -EINVAL);
	so.name = "web";
	so.ns = "";
	assert_int_equal(kube_store_upsert_service(s, &so), -EINVAL);
	so.ns = "default";
	many[0].family = 99;
	assert_int_equal(kube_store_upsert_service(s, &so), -EINVAL);
	so.n_ports = KUBE_MAX_PORTS + 1;
	so.ports = &bad_port;
	many[0] = v4;
	assert_int_equal(kube_store_upsert_service(s, &so), -EINVAL);
	assert_int_equal(kube_store_upsert_pod(s, &(struct kube_pod_obj){.ns = "default"}),
			 -EINVAL);

	/* nothing stored, nothing reported */
	kube_store_counts(s, &c);
	assert_int_equal(c.services + c.slices + c.pods + c.namespaces + c.endpoints, 0);
	assert_int_equal(test_ks_log.calls, 0);
	assert_int_equal(kube_store_serial(s), serial);
	assert_int_equal(kube_store_delete_service(s, NULL, NULL), -ENOENT);
	assert_int_equal(kube_store_delete_slice(s, "default", NULL), -ENOENT);
	assert_null(kube_store_service(s, "", 0, "web", 3));
	kube_store_free(s);
	kube_store_free(NULL);
}

/* ---- randomized: the PTR index and the change reports against a brute-force model ---------- */

#define TEST_KS_R_SVCS 4
#define TEST_KS_R_SLICES 6
#define TEST_KS_R_IPS 8
#define TEST_KS_R_SNAP 512

struct test_ks_rslice {
	bool present;
	int svc;
	size_t n;
	int ip[4];
	bool ready[4];
	int host[4]; /* 0: none, else "h1", "h2" */
};

struct test_ks_model {
	bool svc_present[TEST_KS_R_SVCS];
	int svc_cip[TEST_KS_R_SVCS]; /* -1: headless */
	struct test_ks_rslice sl[TEST_KS_R_SLICES];
};

static const char *const test_ks_rsvc[TEST_KS_R_SVCS] = {"s0", "s1", "s2", "s3"};
static const char *const test_ks_rsl[TEST_KS_R_SLICES] = {"l0", "l1", "l2", "l3", "l4", "l5"};
static const char *const test_ks_rhost[3] = {NULL, "h1", "h2"};

static struct kube_ip
test_ks_rip(int i)
{
	struct kube_ip ip = {.family = AF_INET, .addr = {10, 0, 0, (uint8_t)(1 + i)}};

	return ip;
}

/* What a lookup shows of an address (its PTR pairs) or of a service, as text: a change of
 * that text must come with a report of the name. */
static void
test_ks_snap_ip(const struct kube_store *s, int i, char *out)
{
	struct kube_ip ip = test_ks_rip(i);
	struct kube_ptr ptr[16];
	size_t n = kube_store_ptr(s, &ip, ptr, 16);
	char parts[16][160];

	for (size_t k = 0; k < n; k++)
		snprintf(parts[k], sizeof(parts[k]), "%s/%s;", kube_service_name(ptr[k].svc),
			 ptr[k].label ? ptr[k].label : "-");
	qsort(parts, n, sizeof(parts[0]), (int (*)(const void *, const void *))strcmp);
	out[0] = '\0';
	for (size_t k = 0; k < n; k++)
		strcat(out, parts[k]);
}

static void
test_ks_snap_svc(const struct kube_store *s, int i, char *out)
{
	const struct kube_service *svc = test_ks_svc(s, "default", test_ks_rsvc[i]);
	const struct kube_endpoint *eps;
	size_t n, off = 0;

	out[0] = '\0';
	if (!svc)
		return;
	n = kube_service_endpoints(svc, &eps);
	off += (size_t)snprintf(out, TEST_KS_R_SNAP, "k%d:", kube_service_kind(svc));
	for (size_t k = 0; k < n && off < TEST_KS_R_SNAP - 40; k++)
		off += (size_t)snprintf(out + off, TEST_KS_R_SNAP - off, "%s=%u%c,", eps[k].label,
					eps[k].ips[0].addr[3], eps[k].ready ? 'r' : 'n');
}

static int
test_ks_rapply_slice(struct kube_store *s, const struct test_ks_rslice *m, int idx)
{
	struct kube_ip ips[4];
	struct kube_endpoint_obj eps[4];
	struct kube_slice_obj o = {.ns = "default",
				   .name = test_ks_rsl[idx],
				   .service = test_ks_rsvc[m->svc],
				   .family = AF_INET,
				   .endpoints = eps,
				   .n_endpoints = m->n};

	for (size_t k = 0; k < m->n; k++) {
		ips[k] = test_ks_rip(m->ip[k]);
		eps[k] = (struct kube_endpoint_obj){.ips = &ips[k],
						    .n_ips = 1,
						    .ready = m->ready[k],
						    .hostname = test_ks_rhost[m->host[k]]};
	}
	return kube_store_upsert_slice(s, &o);
}

static void
test_ks_rstep(struct kube_store *s, struct test_ks_model *m, unsigned *seed)
{
	int r = rand_r(seed) % 4, i = rand_r(seed) % TEST_KS_R_SVCS;
	int j = rand_r(seed) % TEST_KS_R_SLICES;

	if (r == 0) {
		m->svc_present[i] = true;
		m->svc_cip[i] = rand_r(seed) % 3 == 0 ? -1 : rand_r(seed) % TEST_KS_R_IPS;
		if (m->svc_cip[i] < 0) {
			assert_int_equal(test_ks_add_svc(s, "default", test_ks_rsvc[i], NULL), 0);
		} else {
			char text[16];

			snprintf(text, sizeof(text), "10.0.0.%d", 1 + m->svc_cip[i]);
			assert_int_equal(test_ks_add_svc(s, "default", test_ks_rsvc[i], text), 0);
		}
	} else if (r == 1) {
		assert_int_equal(kube_store_delete_service(s, "default", test_ks_rsvc[i]),
				 m->svc_present[i] ? 0 : -ENOENT);
		m->svc_present[i] = false;
	} else if (r == 2) {
		struct test_ks_rslice *sl = &m->sl[j];

		sl->present = true;
		sl->svc = i;
		sl->n = (size_t)(rand_r(seed) % 5);
		for (size_t k = 0; k < sl->n; k++) {
			sl->ip[k] = rand_r(seed) % TEST_KS_R_IPS;
			sl->ready[k] = rand_r(seed) % 3 != 0;
			sl->host[k] = rand_r(seed) % 3;
		}
		assert_int_equal(test_ks_rapply_slice(s, sl, j), 0);
	} else {
		assert_int_equal(kube_store_delete_slice(s, "default", test_ks_rsl[j]),
				 m->sl[j].present ? 0 : -ENOENT);
		m->sl[j].present = false;
	}
}

/* The model's PTR pairs of an address: which services (by index) have it. */
static void
test_ks_rcheck_ip(const struct kube_store *s, const struct test_ks_model *m, int ip)
{
	struct kube_ip a = test_ks_rip(ip);
	struct kube_ptr ptr[16];
	size_t n = kube_store_ptr(s, &a, ptr, 16), want = 0;

	for (int i = 0; i < TEST_KS_R_SVCS; i++) {
		bool ep = false;

		if (!m->svc_present[i])
			continue;
		want += m->svc_cip[i] == ip;
		for (int j = 0; j < TEST_KS_R_SLICES; j++)
			for (size_t k = 0; m->sl[j].present && m->sl[j].svc == i && k < m->sl[j].n;
			     k++)
				ep |= m->sl[j].ip[k] == ip && m->sl[j].ready[k];
		want += ep;
	}
	assert_int_equal(n, want);
}

static void
test_ks_random(void **state)
{
	static char before[TEST_KS_R_IPS + TEST_KS_R_SVCS][TEST_KS_R_SNAP];
	char after[TEST_KS_R_SNAP], name[80];
	struct kube_store *s = test_ks_new(false);
	struct test_ks_model m = {0};
	unsigned seed = 12345;

	(void)state;
	for (int step = 0; step < 3000; step++) {
		for (int i = 0; i < TEST_KS_R_IPS; i++)
			test_ks_snap_ip(s, i, before[i]);
		for (int i = 0; i < TEST_KS_R_SVCS; i++)
			test_ks_snap_svc(s, i, before[TEST_KS_R_IPS + i]);
		test_ks_reset();
		test_ks_rstep(s, &m, &seed);
		for (int i = 0; i < TEST_KS_R_IPS; i++) {
			test_ks_rcheck_ip(s, &m, i);
			test_ks_snap_ip(s, i, after);
			snprintf(name, sizeof(name), "%d.0.0.10.in-addr.arpa.", i + 1);
			if (strcmp(before[i], after) != 0 && !test_ks_reported(&test_ks_log, name))
				fail_msg("step %d: %s changed unreported: %s -> %s", step, name,
					 before[i], after);
		}
		for (int i = 0; i < TEST_KS_R_SVCS; i++) {
			test_ks_snap_svc(s, i, after);
			snprintf(name, sizeof(name), "%s.default.svc.cluster.local.",
				 test_ks_rsvc[i]);
			if (strcmp(before[TEST_KS_R_IPS + i], after) != 0 &&
			    !test_ks_reported(&test_ks_log, name))
				fail_msg("step %d: %s changed unreported", step, name);
		}
	}
	/* re-stating everything is silent */
	test_ks_reset();
	for (int j = 0; j < TEST_KS_R_SLICES; j++)
		if (m.sl[j].present)
			assert_int_equal(test_ks_rapply_slice(s, &m.sl[j], j), 0);
	assert_int_equal(test_ks_log.calls, 0);
	kube_store_free(s);
}

/* Many addresses in and out of the PTR index (its table grows and deletes shift entries
 * back): every lookup still finds exactly what is there. */
static void
test_ks_ptr_churn(void **state)
{
	struct kube_store *s = test_ks_new(false);
	struct kube_ptr ptr[2];
	char name[32], ip[32];
	const unsigned n = 3000;

	(void)state;
	for (unsigned i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "s%u", i);
		snprintf(ip, sizeof(ip), "10.%u.%u.1", i >> 8, i & 0xff);
		assert_int_equal(test_ks_add_svc(s, "default", name, ip), 0);
	}
	/* delete two thirds in a scrambled order */
	for (unsigned k = 0; k < n; k++) {
		unsigned i = (k * 7919) % n;

		if (i % 3 == 0)
			continue;
		snprintf(name, sizeof(name), "s%u", i);
		assert_int_equal(kube_store_delete_service(s, "default", name), 0);
	}
	for (unsigned i = 0; i < n; i++) {
		snprintf(ip, sizeof(ip), "10.%u.%u.1", i >> 8, i & 0xff);
		assert_int_equal(test_ks_ptr(s, ip, ptr, 2), i % 3 == 0);
		if (i % 3 == 0) {
			snprintf(name, sizeof(name), "s%u", i);
			assert_string_equal(kube_service_name(ptr[0].svc), name);
		}
	}
	kube_store_free(s);
}

/* ---- a cluster-sized store (measures, never asserts a size) ------------------------------- */

static void
test_ks_big(void **state)
{
	struct mallinfo2 before = mallinfo2(), after;
	struct kube_store_config cfg = {.zone = "cluster.local"};
	struct kube_store *s = kube_store_new(&cfg);
	struct kube_store_counts c;
	const struct kube_service *svc;
	char name[32];

	(void)state;
	for (unsigned i = 0; i < 10000; i++) {
		struct kube_ip cip = {.family = AF_INET,
				      .addr = {10, 96, (uint8_t)(i >> 8), (uint8_t)i}};
		struct kube_ip ips[10];
		struct kube_endpoint_obj eps[10];
		struct kube_service_obj so = {.ns = "default",
					      .name = name,
					      .ips = &cip,
					      .n_ips = 1,
					      .ports = test_ks_ports,
					      .n_ports = 3};
		struct kube_slice_obj sl = {.ns = "default",
					    .name = name,
					    .service = name,
					    .family = AF_INET,
					    .endpoints = eps,
					    .n_endpoints = 10,
					    .ports = test_ks_ports,
					    .n_ports = 3};

		snprintf(name, sizeof(name), "svc-%u", i);
		for (unsigned j = 0; j < 10; j++) {
			uint32_t n = i * 10 + j;

			ips[j] = (struct kube_ip){.family = AF_INET};
			ips[j].addr[0] = 10;
			ips[j].addr[1] = (uint8_t)(n >> 16);
			ips[j].addr[2] = (uint8_t)(n >> 8);
			ips[j].addr[3] = (uint8_t)n;
			eps[j] = (struct kube_endpoint_obj){
				.ips = &ips[j], .n_ips = 1, .ready = true};
		}
		assert_int_equal(kube_store_upsert_service(s, &so), 0);
		assert_int_equal(kube_store_upsert_slice(s, &sl), 0);
	}
	after = mallinfo2();
	kube_store_counts(s, &c);
	assert_int_equal(c.services, 10000);
	assert_int_equal(c.endpoints, 100000);
	svc = test_ks_svc(s, "default", "svc-9999");
	assert_non_null(svc);
	print_message("kube store: 10000 services, 100000 endpoints: %zu bytes malloc'd, "
		      "%.1f bytes per endpoint\n",
		      after.uordblks - before.uordblks,
		      (double)(after.uordblks - before.uordblks) / 100000.0);
	kube_store_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ks_namespace),
		cmocka_unit_test(test_ks_service_crud),
		cmocka_unit_test(test_ks_service_kinds),
		cmocka_unit_test(test_ks_slices_union),
		cmocka_unit_test(test_ks_slice_modify),
		cmocka_unit_test(test_ks_slice_before_service),
		cmocka_unit_test(test_ks_two_services_two_ptrs),
		cmocka_unit_test(test_ks_labels),
		cmocka_unit_test(test_ks_dedup_partial),
		cmocka_unit_test(test_ks_headless_ports),
		cmocka_unit_test(test_ks_pods),
		cmocka_unit_test(test_ks_moved_on_every_change),
		cmocka_unit_test(test_ks_clone),
		cmocka_unit_test(test_ks_replace),
		cmocka_unit_test(test_ks_invalid),
		cmocka_unit_test(test_ks_random),
		cmocka_unit_test(test_ks_ptr_churn),
		cmocka_unit_test(test_ks_big),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
