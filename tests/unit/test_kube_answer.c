/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_kube_answer.c - unit tests for the kube resolver's answers (src/kube/answer.c): one
 * fixture cluster built through the store's public API, and one test per row of both tables of
 * KUBE_DNS.md (named after the row), plus dual-stack, SRV weights and duplicates, Additional
 * records, ExternalName chains, the three pod modes, --kube-namespaces,
 * --kube-ignore-empty-service, PTR fall-through, the SOA of every negative answer and replies
 * that do not fit. Every reply is read back with dnsmsg_iter and rendered as text to compare.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "kubemasq/defs.h"
#include "kubemasq/dnsmsg.h"
#include "kube/answer.h"
#include "kube/answer_impl.h"
#include "kube/store.h"

#define TEST_TTL 5

/* ---- fixture ------------------------------------------------------------------------------ */

static struct kube_ip
test_ip(const char *text)
{
	struct kube_ip ip;

	memset(&ip, 0, sizeof(ip));
	ip.family = strchr(text, ':') ? AF_INET6 : AF_INET;
	assert_int_equal(inet_pton(ip.family, text, ip.addr), 1);
	return ip;
}

static void
test_service(struct kube_store *s, const char *ns, const char *name, enum kube_service_kind kind,
	     const char *ip1, const char *ip2, const struct kube_port *ports, size_t n_ports,
	     const char *external)
{
	struct kube_ip ips[2];
	size_t n = 0;

	if (ip1)
		ips[n++] = test_ip(ip1);
	if (ip2)
		ips[n++] = test_ip(ip2);
	struct kube_service_obj o = {
		.ns = ns,
		.name = name,
		.kind = kind,
		.ips = ips,
		.n_ips = n,
		.ports = ports,
		.n_ports = n_ports,
		.external_name = external,
	};
	assert_int_equal(kube_store_upsert_service(s, &o), 0);
}

/* An endpoint description: one address, readiness, hostname (or NULL). */
struct test_ep {
	const char *ip;
	bool ready;
	const char *hostname;
};

static void
test_slice(struct kube_store *s, const char *ns, const char *name, const char *service, int family,
	   const struct test_ep *eps, size_t n, const struct kube_port *ports, size_t n_ports)
{
	struct kube_endpoint_obj *objs = calloc(n ? n : 1, sizeof(*objs));
	struct kube_ip *ips = calloc(n ? n : 1, sizeof(*ips));

	assert_non_null(objs);
	assert_non_null(ips);
	for (size_t i = 0; i < n; i++) {
		ips[i] = test_ip(eps[i].ip);
		objs[i].ips = &ips[i];
		objs[i].n_ips = 1;
		objs[i].ready = eps[i].ready;
		objs[i].hostname = eps[i].hostname;
	}
	struct kube_slice_obj o = {
		.ns = ns,
		.name = name,
		.service = service,
		.family = family,
		.endpoints = objs,
		.n_endpoints = n,
		.ports = ports,
		.n_ports = n_ports,
	};
	assert_int_equal(kube_store_upsert_slice(s, &o), 0);
	free(objs);
	free(ips);
}

static const struct kube_port test_web_ports[] = {
	{.name = "http", .protocol = "TCP", .port = 80},
	{.name = "https", .protocol = "TCP", .port = 443},
	{.name = "Metrics", .protocol = "TCP", .port = 9090},
	{.name = "", .protocol = "TCP", .port = 8080},
};
static const struct kube_port test_dns_ports[] = {
	{.name = "dns", .protocol = "UDP", .port = 53},
	{.name = "dns-tcp", .protocol = "TCP", .port = 53},
};
static const struct kube_port test_pg_ports[] = {
	{.name = "pg", .protocol = "TCP", .port = 5432},
	{.name = "", .protocol = "TCP", .port = 9187},
};
static const struct kube_port test_two_ports[] = {
	{.name = "pg", .protocol = "TCP", .port = 5432},
	{.name = "repl", .protocol = "TCP", .port = 5433},
};

/* The cluster most tests ask about. */
static void
test_cluster(struct kube_store *s)
{
	static const struct test_ep web[] = {
		{"10.1.0.1", true, NULL},
		{"10.1.0.2", false, NULL},
	};
	static const struct test_ep db4[] = {
		{"10.2.0.1", true, "db-0"},   {"10.2.0.2", true, "db-1"},
		{"10.2.0.3", false, "db-2"},  {"10.2.0.4", true, NULL},
		{"10.2.0.5", true, "shared"}, {"10.2.0.6", true, "shared"},
	};
	static const struct test_ep db6[] = {
		{"fd00::2:1", true, "db-0"},
		{"fd00::2:2", true, NULL},
	};
	static const struct test_ep db4b[] = {
		{"10.2.0.1", true, "db-0"}, /* the same endpoint in a second slice */
	};
	static const struct test_ep notready[] = {{"10.5.0.1", false, "x"}};
	static const struct test_ep shared[] = {{"10.3.0.1", true, NULL}};
	static const struct test_ep other[] = {{"10.6.0.1", true, NULL}};

	for (const char *const *ns =
		     (const char *const[]){"default", "kube-system", "empty", "other", NULL};
	     *ns; ns++)
		assert_int_equal(kube_store_upsert_namespace(s, *ns), 0);
	test_service(s, "default", "web", KUBE_SERVICE_CLUSTER_IP, "10.0.0.10", "fd00::10",
		     test_web_ports, ARRAY_SIZE(test_web_ports), NULL);
	test_slice(s, "default", "web-abc", "web", AF_INET, web, ARRAY_SIZE(web), test_web_ports,
		   ARRAY_SIZE(test_web_ports));
	test_service(s, "kube-system", "kube-dns", KUBE_SERVICE_CLUSTER_IP, "10.0.0.53", NULL,
		     test_dns_ports, ARRAY_SIZE(test_dns_ports), NULL);
	test_service(s, "default", "db", KUBE_SERVICE_HEADLESS, NULL, NULL, NULL, 0, NULL);
	test_slice(s, "default", "db-4", "db", AF_INET, db4, ARRAY_SIZE(db4), test_pg_ports,
		   ARRAY_SIZE(test_pg_ports));
	test_slice(s, "default", "db-6", "db", AF_INET6, db6, ARRAY_SIZE(db6), test_pg_ports,
		   ARRAY_SIZE(test_pg_ports));
	test_slice(s, "default", "db-4b", "db", AF_INET, db4b, ARRAY_SIZE(db4b), test_pg_ports,
		   ARRAY_SIZE(test_pg_ports));
	test_service(s, "default", "empty-hl", KUBE_SERVICE_HEADLESS, NULL, NULL, NULL, 0, NULL);
	test_service(s, "default", "notready", KUBE_SERVICE_HEADLESS, NULL, NULL, NULL, 0, NULL);
	test_slice(s, "default", "notready-1", "notready", AF_INET, notready, 1, test_pg_ports, 1);
	test_service(s, "default", "ext", KUBE_SERVICE_EXTERNAL_NAME, NULL, NULL, NULL, 0,
		     "Example.COM");
	test_service(s, "default", "ext-in", KUBE_SERVICE_EXTERNAL_NAME, NULL, NULL, NULL, 0,
		     "web.default.svc.cluster.local");
	test_service(s, "default", "ext-ext", KUBE_SERVICE_EXTERNAL_NAME, NULL, NULL, NULL, 0,
		     "ext.default.svc.cluster.local.");
	test_service(s, "default", "ext-nx", KUBE_SERVICE_EXTERNAL_NAME, NULL, NULL, NULL, 0,
		     "nope.default.svc.cluster.local");
	test_service(s, "default", "ext-loop", KUBE_SERVICE_EXTERNAL_NAME, NULL, NULL, NULL, 0,
		     "ext-loop.default.svc.cluster.local");
	test_service(s, "default", "a1", KUBE_SERVICE_HEADLESS, NULL, NULL, NULL, 0, NULL);
	test_service(s, "default", "a2", KUBE_SERVICE_HEADLESS, NULL, NULL, NULL, 0, NULL);
	test_slice(s, "default", "a1-x", "a1", AF_INET, shared, 1, NULL, 0);
	test_slice(s, "default", "a2-x", "a2", AF_INET, shared, 1, NULL, 0);
	test_service(s, "other", "svc", KUBE_SERVICE_CLUSTER_IP, "10.0.0.99", NULL, NULL, 0, NULL);
	test_slice(s, "other", "svc-1", "svc", AF_INET, other, 1, NULL, 0);

	struct kube_ip pip = test_ip("10.4.0.1");
	struct kube_pod_obj pod = {.ns = "default", .name = "pod-a", .ips = &pip, .n_ips = 1};
	assert_int_equal(kube_store_upsert_pod(s, &pod), 0);
}

static uint8_t test_zone[DNS_MAX_NAME];
static struct kube_answer_config test_cfg;
static const char *test_only_default[] = {"default"};

static int
test_setup(void **state)
{
	struct kube_store_config sc = {.zone = "cluster.local"};
	struct kube_store *s = kube_store_new(&sc);
	int n = dnsmsg_name_from_text("cluster.local", test_zone, sizeof(test_zone));

	assert_non_null(s);
	assert_true(n > 0);
	test_cluster(s);
	memset(&test_cfg, 0, sizeof(test_cfg));
	test_cfg.zone = test_zone;
	test_cfg.zone_len = (size_t)n;
	test_cfg.ttl = TEST_TTL;
	test_cfg.pods = KUBE_PODS_INSECURE;
	*state = s;
	return 0;
}

static int
test_teardown(void **state)
{
	kube_store_free(*state);
	return 0;
}

/* ---- asking and reading replies ----------------------------------------------------------- */

#define TEST_MAX_RRS 512

struct test_rr {
	enum dns_section section;
	uint16_t type;
	uint32_t ttl;
	size_t name_off;
	char owner[300];
	char data[800];
};

struct test_reply {
	int r;
	struct kube_answer_result res;
	uint8_t pkt[DNS_MAX_UDP];
	size_t len;
	unsigned rcode;
	unsigned n;
	struct test_rr rrs[TEST_MAX_RRS];
};

static void
test_name(const uint8_t *pkt, size_t len, size_t off, char *out, size_t cap)
{
	assert_true(dnsmsg_name_to_text(pkt, len, off, out, cap) >= 0);
}

/* Size of the (possibly compressed) name at off. */
static size_t
test_name_end(const uint8_t *pkt, size_t off)
{
	while (pkt[off] && (pkt[off] & 0xc0) != 0xc0)
		off += pkt[off] + 1u;
	return pkt[off] ? off + 2 : off + 1;
}

static void
test_render(const uint8_t *pkt, size_t len, const struct dnsmsg_rr *rr, char *out, size_t cap)
{
	const uint8_t *d = pkt + rr->rdata_off;
	char a[300], b[300];
	size_t off;

	switch (rr->type) {
	case DNS_TYPE_A:
		assert_int_equal(rr->rdlen, 4);
		inet_ntop(AF_INET, d, out, (socklen_t)cap);
		break;
	case DNS_TYPE_AAAA:
		assert_int_equal(rr->rdlen, 16);
		inet_ntop(AF_INET6, d, out, (socklen_t)cap);
		break;
	case DNS_TYPE_CNAME:
	case DNS_TYPE_PTR:
	case DNS_TYPE_NS:
		test_name(pkt, len, rr->rdata_off, out, cap);
		break;
	case DNS_TYPE_SRV:
		/* RFC 2782: no compression in the target. */
		assert_int_equal(test_name_end(pkt, rr->rdata_off + 6), rr->rdata_off + rr->rdlen);
		assert_true(pkt[rr->rdata_off + rr->rdlen - 1] == 0);
		test_name(pkt, len, rr->rdata_off + 6, a, sizeof(a));
		snprintf(out, cap, "%u %u %u %s", dnsmsg_get16(d), dnsmsg_get16(d + 2),
			 dnsmsg_get16(d + 4), a);
		break;
	case DNS_TYPE_SOA:
		test_name(pkt, len, rr->rdata_off, a, sizeof(a));
		off = test_name_end(pkt, rr->rdata_off);
		test_name(pkt, len, off, b, sizeof(b));
		off = test_name_end(pkt, off);
		assert_int_equal(off + 20, rr->rdata_off + rr->rdlen);
		snprintf(out, cap, "%s %s %u %u %u %u %u", a, b, dnsmsg_get32(pkt + off),
			 dnsmsg_get32(pkt + off + 4), dnsmsg_get32(pkt + off + 8),
			 dnsmsg_get32(pkt + off + 12), dnsmsg_get32(pkt + off + 16));
		break;
	case DNS_TYPE_TXT:
		assert_int_equal(d[0] + 1, rr->rdlen);
		snprintf(out, cap, "\"%.*s\"", d[0], (const char *)d + 1);
		break;
	default:
		fail_msg("unexpected type %u", rr->type);
	}
}

static void
test_parse(struct test_reply *rep)
{
	struct dnsmsg_iter it;
	struct dnsmsg_rr rr;
	int r;

	assert_true(rep->len >= DNS_HDR_LEN);
	assert_true(dnsmsg_qr(rep->pkt));
	assert_true(dnsmsg_aa(rep->pkt));
	assert_true(dnsmsg_ra(rep->pkt));
	assert_int_equal(dnsmsg_id(rep->pkt), 0x4242);
	assert_int_equal(dnsmsg_qdcount(rep->pkt), 1);
	rep->rcode = dnsmsg_rcode(rep->pkt);
	assert_int_equal(dnsmsg_iter_init(&it, rep->pkt, rep->len), 0);
	while ((r = dnsmsg_iter_next(&it, &rr)) == 0) {
		assert_true(rep->n < TEST_MAX_RRS);
		struct test_rr *t = &rep->rrs[rep->n++];
		t->section = rr.section;
		t->type = rr.type;
		t->ttl = rr.ttl;
		t->name_off = rr.name_off;
		assert_int_equal(rr.rclass, DNS_CLASS_IN);
		test_name(rep->pkt, rep->len, rr.name_off, t->owner, sizeof(t->owner));
		test_render(rep->pkt, rep->len, &rr, t->data, sizeof(t->data));
	}
	assert_int_equal(r, -ENOENT);
	/* Nothing after the last record. */
	assert_int_equal(it.pos, rep->len);
}

static int
test_ask_cfg(const struct kube_store *s, const struct kube_answer_config *cfg, const char *name,
	     uint16_t qtype, size_t cap, struct test_reply *rep)
{
	uint8_t raw[DNS_MAX_NAME], lower[DNS_MAX_NAME];
	int n = dnsmsg_name_from_text(name, raw, sizeof(raw));

	assert_true(n > 0);
	dnsmsg_name_lower(lower, raw, (size_t)n);
	struct dnsmsg_question q = {lower, (uint16_t)n, qtype, DNS_CLASS_IN};
	memset(rep, 0, sizeof(*rep));
	rep->r = kube_answer(s, cfg, &q, 0x4242, rep->pkt, cap, &rep->res);
	if (rep->r == 0 && rep->res.status != KUBE_ANSWER_DECLINE) {
		rep->len = rep->res.len;
		assert_true(rep->len <= cap);
		test_parse(rep);
	}
	return rep->r;
}

/* Ask with the default config and a TCP-sized buffer; the answer must be produced. */
static struct test_reply *
test_ask(void **state, const char *name, uint16_t qtype)
{
	static struct test_reply rep;

	assert_int_equal(test_ask_cfg(*state, &test_cfg, name, qtype, DNS_MAX_UDP, &rep), 0);
	return &rep;
}

static unsigned
test_count(const struct test_reply *rep, enum dns_section section, uint16_t type)
{
	unsigned n = 0;

	for (unsigned i = 0; i < rep->n; i++)
		n += rep->rrs[i].section == section && (type == 0 || rep->rrs[i].type == type);
	return n;
}

static bool
test_has(const struct test_reply *rep, enum dns_section section, uint16_t type, const char *owner,
	 const char *data)
{
	for (unsigned i = 0; i < rep->n; i++) {
		const struct test_rr *t = &rep->rrs[i];

		if (t->section == section && t->type == type && strcmp(t->owner, owner) == 0 &&
		    strcmp(t->data, data) == 0)
			return true;
	}
	return false;
}

static void
test_dump(const struct test_reply *rep)
{
	for (unsigned i = 0; i < rep->n; i++)
		print_message("  [%d] %s %u %u %s\n", rep->rrs[i].section, rep->rrs[i].owner,
			      rep->rrs[i].ttl, rep->rrs[i].type, rep->rrs[i].data);
}

#define assert_has(rep, sec, type, owner, data)                                                    \
	do {                                                                                       \
		if (!test_has(rep, sec, type, owner, data)) {                                      \
			test_dump(rep);                                                            \
			fail_msg("missing %s %s", owner, data);                                    \
		}                                                                                  \
	} while (0)

/* A negative answer: rcode, nothing in Answer/Additional, exactly the zone's SOA in
 * Authority with the store's serial and MINIMUM = TTL = --kube-ttl. */
static void
test_assert_negative(void **state, const struct test_reply *rep, unsigned rcode)
{
	char soa[300];

	assert_int_equal(rep->res.status, KUBE_ANSWER_DONE);
	assert_int_equal(rep->rcode, rcode);
	assert_int_equal(test_count(rep, DNS_SECTION_ANSWER, 0), 0);
	assert_int_equal(test_count(rep, DNS_SECTION_ADDITIONAL, 0), 0);
	assert_int_equal(test_count(rep, DNS_SECTION_AUTHORITY, 0), 1);
	snprintf(soa, sizeof(soa),
		 "ns.dns.cluster.local hostmaster.cluster.local %u 7200 1800 86400 %u",
		 kube_store_serial(*state), test_cfg.ttl);
	assert_has(rep, DNS_SECTION_AUTHORITY, DNS_TYPE_SOA, "cluster.local", soa);
	assert_int_equal(rep->rrs[0].ttl, test_cfg.ttl);
}

static void
test_nx(void **state, const char *name, uint16_t qtype)
{
	test_assert_negative(state, test_ask(state, name, qtype), DNS_RCODE_NXDOMAIN);
}

static void
test_nodata(void **state, const char *name, uint16_t qtype)
{
	test_assert_negative(state, test_ask(state, name, qtype), DNS_RCODE_NOERROR);
}

/* A positive answer with `n` answer records, all with TTL `ttl`, and no authority. */
static void
test_assert_positive(const struct test_reply *rep, unsigned n, uint32_t ttl)
{
	assert_int_equal(rep->res.status, KUBE_ANSWER_DONE);
	assert_int_equal(rep->rcode, DNS_RCODE_NOERROR);
	if (test_count(rep, DNS_SECTION_ANSWER, 0) != n)
		test_dump(rep);
	assert_int_equal(test_count(rep, DNS_SECTION_ANSWER, 0), n);
	assert_int_equal(test_count(rep, DNS_SECTION_AUTHORITY, 0), 0);
	for (unsigned i = 0; i < rep->n; i++)
		assert_int_equal(rep->rrs[i].ttl, ttl);
}

/* ---- table 1: records --------------------------------------------------------------------- */

static void
test_row01_dns_version_txt(void **state)
{
	struct test_reply *rep = test_ask(state, "dns-version.cluster.local", DNS_TYPE_TXT);

	test_assert_positive(rep, 1, 28800);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_TXT, "dns-version.cluster.local", "\"1.1.0\"");
	/* The owner is a pointer to the question. */
	assert_int_equal(dnsmsg_get16(rep->pkt + rep->len - 10 - 6 - 2), 0xc00c);
	test_nodata(state, "dns-version.cluster.local", DNS_TYPE_A);
}

static void
test_row02_clusterip_a_aaaa_dual_stack(void **state)
{
	struct test_reply *rep = test_ask(state, "web.default.svc.cluster.local", DNS_TYPE_A);

	test_assert_positive(rep, 1, TEST_TTL);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_A, "web.default.svc.cluster.local",
		   "10.0.0.10");
	rep = test_ask(state, "web.default.svc.cluster.local", DNS_TYPE_AAAA);
	test_assert_positive(rep, 1, TEST_TTL);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_AAAA, "web.default.svc.cluster.local",
		   "fd00::10");
	/* kube-dns has no endpoints at all and still answers. */
	rep = test_ask(state, "kube-dns.kube-system.svc.cluster.local", DNS_TYPE_A);
	test_assert_positive(rep, 1, TEST_TTL);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_A, "kube-dns.kube-system.svc.cluster.local",
		   "10.0.0.53");
	/* Case-insensitive match; the reply's question is written as given (lower-case here). */
	rep = test_ask(state, "WEB.Default.SVC.cluster.LOCAL", DNS_TYPE_A);
	test_assert_positive(rep, 1, TEST_TTL);
}

static void
test_row03_srv_named_port(void **state)
{
	struct test_reply *rep =
		test_ask(state, "_http._tcp.web.default.svc.cluster.local", DNS_TYPE_SRV);

	test_assert_positive(rep, 1, TEST_TTL);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_SRV,
		   "_http._tcp.web.default.svc.cluster.local",
		   "0 100 80 web.default.svc.cluster.local");
	/* The target's A and AAAA in Additional. */
	assert_int_equal(test_count(rep, DNS_SECTION_ADDITIONAL, 0), 2);
	assert_has(rep, DNS_SECTION_ADDITIONAL, DNS_TYPE_A, "web.default.svc.cluster.local",
		   "10.0.0.10");
	assert_has(rep, DNS_SECTION_ADDITIONAL, DNS_TYPE_AAAA, "web.default.svc.cluster.local",
		   "fd00::10");
	/* Additional owners name the zone with a pointer into the question (12 + 27). */
	const uint8_t *owner = rep->pkt + rep->rrs[2].name_off;
	assert_memory_equal(owner,
			    "\x03web\x07"
			    "default\x03svc\xc0\x27",
			    18);
	/* Port names match case-insensitively, protocols lower-cased. */
	rep = test_ask(state, "_metrics._tcp.web.default.svc.cluster.local", DNS_TYPE_SRV);
	test_assert_positive(rep, 1, TEST_TTL);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_SRV,
		   "_metrics._tcp.web.default.svc.cluster.local",
		   "0 100 9090 web.default.svc.cluster.local");
	rep = test_ask(state, "_dns._udp.kube-dns.kube-system.svc.cluster.local", DNS_TYPE_SRV);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_SRV,
		   "_dns._udp.kube-dns.kube-system.svc.cluster.local",
		   "0 100 53 kube-dns.kube-system.svc.cluster.local");
	/* The wrong protocol, an unknown port, a missing underscore: no such name. */
	test_nx(state, "_dns._tcp.kube-dns.kube-system.svc.cluster.local", DNS_TYPE_SRV);
	test_nx(state, "_gopher._tcp.web.default.svc.cluster.local", DNS_TYPE_SRV);
	test_nx(state, "http._tcp.web.default.svc.cluster.local", DNS_TYPE_SRV);
	/* The name exists; other types have no data. */
	test_nodata(state, "_http._tcp.web.default.svc.cluster.local", DNS_TYPE_A);
}

static void
test_row04_srv_bare_service(void **state)
{
	struct test_reply *rep = test_ask(state, "web.default.svc.cluster.local", DNS_TYPE_SRV);

	/* Three named ports (the unnamed 8080 gives none): weight floor(100 / 3). */
	test_assert_positive(rep, 3, TEST_TTL);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_SRV, "web.default.svc.cluster.local",
		   "0 33 80 web.default.svc.cluster.local");
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_SRV, "web.default.svc.cluster.local",
		   "0 33 443 web.default.svc.cluster.local");
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_SRV, "web.default.svc.cluster.local",
		   "0 33 9090 web.default.svc.cluster.local");
	assert_int_equal(test_count(rep, DNS_SECTION_ADDITIONAL, 0), 2);
	assert_has(rep, DNS_SECTION_ADDITIONAL, DNS_TYPE_A, "web.default.svc.cluster.local",
		   "10.0.0.10");
	assert_has(rep, DNS_SECTION_ADDITIONAL, DNS_TYPE_AAAA, "web.default.svc.cluster.local",
		   "fd00::10");
	/* dns/UDP and dns-tcp/TCP are both port 53 to the same target: one record. */
	rep = test_ask(state, "kube-dns.kube-system.svc.cluster.local", DNS_TYPE_SRV);
	test_assert_positive(rep, 1, TEST_TTL);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_SRV, "kube-dns.kube-system.svc.cluster.local",
		   "0 100 53 kube-dns.kube-system.svc.cluster.local");
	/* No named port at all: the name exists, no SRV. */
	test_nodata(state, "svc.other.svc.cluster.local", DNS_TYPE_SRV);
}

static void
test_row05_ptr_clusterip(void **state)
{
	struct test_reply *rep = test_ask(state, "10.0.0.10.in-addr.arpa", DNS_TYPE_PTR);

	test_assert_positive(rep, 1, TEST_TTL);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_PTR, "10.0.0.10.in-addr.arpa",
		   "web.default.svc.cluster.local");
	rep = test_ask(state,
		       "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa",
		       DNS_TYPE_PTR);
	test_assert_positive(rep, 1, TEST_TTL);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_PTR,
		   "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa",
		   "web.default.svc.cluster.local");
	/* Upper-case hex nibbles are the same name. */
	rep = test_ask(state,
		       "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.D.F.ip6.arpa",
		       DNS_TYPE_PTR);
	test_assert_positive(rep, 1, TEST_TTL);
}

static void
test_row06_headless_a_aaaa(void **state)
{
	struct test_reply *rep = test_ask(state, "db.default.svc.cluster.local", DNS_TYPE_A);

	/* Ready IPv4 endpoints only; 10.2.0.1 is in two slices but answered once. */
	test_assert_positive(rep, 5, TEST_TTL);
	for (const char *const *ip = (const char *const[]){"10.2.0.1", "10.2.0.2", "10.2.0.4",
							   "10.2.0.5", "10.2.0.6", NULL};
	     *ip; ip++)
		assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_A, "db.default.svc.cluster.local",
			   *ip);
	assert_false(test_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_A, "db.default.svc.cluster.local",
			      "10.2.0.3"));
	rep = test_ask(state, "db.default.svc.cluster.local", DNS_TYPE_AAAA);
	test_assert_positive(rep, 2, TEST_TTL);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_AAAA, "db.default.svc.cluster.local",
		   "fd00::2:1");
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_AAAA, "db.default.svc.cluster.local",
		   "fd00::2:2");
}

static void
test_row07_headless_no_ready_endpoints(void **state)
{
	static const uint16_t types[] = {DNS_TYPE_A, DNS_TYPE_AAAA, DNS_TYPE_SRV, DNS_TYPE_TXT};

	for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
		test_nx(state, "empty-hl.default.svc.cluster.local", types[i]);
		test_nx(state, "notready.default.svc.cluster.local", types[i]);
	}
	test_nx(state, "x.notready.default.svc.cluster.local", DNS_TYPE_A);
	test_nx(state, "_pg._tcp.notready.default.svc.cluster.local", DNS_TYPE_SRV);
}

static void
test_row08_endpoint_hostname(void **state)
{
	struct test_reply *rep = test_ask(state, "db-0.db.default.svc.cluster.local", DNS_TYPE_A);

	test_assert_positive(rep, 1, TEST_TTL);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_A, "db-0.db.default.svc.cluster.local",
		   "10.2.0.1");
	rep = test_ask(state, "db-0.db.default.svc.cluster.local", DNS_TYPE_AAAA);
	test_assert_positive(rep, 1, TEST_TTL);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_AAAA, "db-0.db.default.svc.cluster.local",
		   "fd00::2:1");
	/* Two endpoints share a hostname: one record per IP. */
	rep = test_ask(state, "shared.db.default.svc.cluster.local", DNS_TYPE_A);
	test_assert_positive(rep, 2, TEST_TTL);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_A, "shared.db.default.svc.cluster.local",
		   "10.2.0.5");
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_A, "shared.db.default.svc.cluster.local",
		   "10.2.0.6");
	/* db-1 has no IPv6 address: NODATA; db-2 is not ready: no such name. */
	test_nodata(state, "db-1.db.default.svc.cluster.local", DNS_TYPE_AAAA);
	test_nx(state, "db-2.db.default.svc.cluster.local", DNS_TYPE_A);
	test_nx(state, "db-9.db.default.svc.cluster.local", DNS_TYPE_A);
}

static void
test_row09_endpoint_without_hostname(void **state)
{
	struct test_reply *rep =
		test_ask(state, "10-2-0-4.db.default.svc.cluster.local", DNS_TYPE_A);

	test_assert_positive(rep, 1, TEST_TTL);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_A, "10-2-0-4.db.default.svc.cluster.local",
		   "10.2.0.4");
	rep = test_ask(state, "fd00--2-2.db.default.svc.cluster.local", DNS_TYPE_AAAA);
	test_assert_positive(rep, 1, TEST_TTL);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_AAAA, "fd00--2-2.db.default.svc.cluster.local",
		   "fd00::2:2");
}

static void
test_row09_endpoint_pod_names(void **state UNUSED)
{
	struct kube_store_config sc = {.zone = "cluster.local", .endpoint_pod_names = true};
	struct kube_store *s = kube_store_new(&sc);
	struct kube_ip ip = test_ip("10.7.0.1");
	struct kube_endpoint_obj ep = {
		.ips = &ip, .n_ips = 1, .ready = true, .pod_name = "api-7f9c"};
	struct kube_slice_obj sl = {.ns = "default",
				    .name = "api-1",
				    .service = "api",
				    .family = AF_INET,
				    .endpoints = &ep,
				    .n_endpoints = 1};
	struct test_reply *rep = malloc(sizeof(*rep));

	assert_non_null(s);
	assert_non_null(rep);
	test_service(s, "default", "api", KUBE_SERVICE_HEADLESS, NULL, NULL, NULL, 0, NULL);
	assert_int_equal(kube_store_upsert_slice(s, &sl), 0);
	assert_int_equal(test_ask_cfg(s, &test_cfg, "api-7f9c.api.default.svc.cluster.local",
				      DNS_TYPE_A, DNS_MAX_UDP, rep),
			 0);
	test_assert_positive(rep, 1, TEST_TTL);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_A, "api-7f9c.api.default.svc.cluster.local",
		   "10.7.0.1");
	free(rep);
	kube_store_free(s);
}

static void
test_row10_endpoint_under_clusterip(void **state)
{
	struct test_reply *rep =
		test_ask(state, "10-1-0-1.web.default.svc.cluster.local", DNS_TYPE_A);

	test_assert_positive(rep, 1, TEST_TTL);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_A, "10-1-0-1.web.default.svc.cluster.local",
		   "10.1.0.1");
	/* Not ready: not served (CoreDNS without publishNotReadyAddresses). */
	test_nx(state, "10-1-0-2.web.default.svc.cluster.local", DNS_TYPE_A);
}

static void
test_row11_headless_srv(void **state)
{
	struct test_reply *rep =
		test_ask(state, "_pg._tcp.db.default.svc.cluster.local", DNS_TYPE_SRV);
	const char *owner = "_pg._tcp.db.default.svc.cluster.local";

	/* Ready labels db-0 (in three slices), db-1, 10-2-0-4, shared (two endpoints),
	 * fd00--2-2: five records, weight 20; db-2 is not ready. */
	test_assert_positive(rep, 5, TEST_TTL);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_SRV, owner,
		   "0 20 5432 db-0.db.default.svc.cluster.local");
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_SRV, owner,
		   "0 20 5432 db-1.db.default.svc.cluster.local");
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_SRV, owner,
		   "0 20 5432 10-2-0-4.db.default.svc.cluster.local");
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_SRV, owner,
		   "0 20 5432 shared.db.default.svc.cluster.local");
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_SRV, owner,
		   "0 20 5432 fd00--2-2.db.default.svc.cluster.local");
	/* Each target's addresses in Additional: db-0 has two (v4 + v6), shared two. */
	assert_int_equal(test_count(rep, DNS_SECTION_ADDITIONAL, 0), 7);
	assert_has(rep, DNS_SECTION_ADDITIONAL, DNS_TYPE_A, "db-0.db.default.svc.cluster.local",
		   "10.2.0.1");
	assert_has(rep, DNS_SECTION_ADDITIONAL, DNS_TYPE_AAAA, "db-0.db.default.svc.cluster.local",
		   "fd00::2:1");
	assert_has(rep, DNS_SECTION_ADDITIONAL, DNS_TYPE_A, "db-1.db.default.svc.cluster.local",
		   "10.2.0.2");
	assert_has(rep, DNS_SECTION_ADDITIONAL, DNS_TYPE_A, "10-2-0-4.db.default.svc.cluster.local",
		   "10.2.0.4");
	assert_has(rep, DNS_SECTION_ADDITIONAL, DNS_TYPE_A, "shared.db.default.svc.cluster.local",
		   "10.2.0.5");
	assert_has(rep, DNS_SECTION_ADDITIONAL, DNS_TYPE_A, "shared.db.default.svc.cluster.local",
		   "10.2.0.6");
	assert_has(rep, DNS_SECTION_ADDITIONAL, DNS_TYPE_AAAA,
		   "fd00--2-2.db.default.svc.cluster.local", "fd00::2:2");
	/* Bare name: one per named port (the unnamed 9187 gives none). */
	rep = test_ask(state, "db.default.svc.cluster.local", DNS_TYPE_SRV);
	test_assert_positive(rep, 5, TEST_TTL);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_SRV, "db.default.svc.cluster.local",
		   "0 20 5432 db-0.db.default.svc.cluster.local");
	assert_int_equal(test_count(rep, DNS_SECTION_ADDITIONAL, 0), 7);
	test_nx(state, "_pg._udp.db.default.svc.cluster.local", DNS_TYPE_SRV);
}

static void
test_row11_headless_srv_labels_by_ports(void **state UNUSED)
{
	static const struct test_ep eps[] = {
		{"10.8.0.1", true, "m-0"},
		{"10.8.0.2", true, "m-1"},
	};
	struct kube_store_config sc = {.zone = "cluster.local"};
	struct kube_store *s = kube_store_new(&sc);
	struct test_reply *rep = malloc(sizeof(*rep));

	assert_non_null(s);
	assert_non_null(rep);
	test_service(s, "default", "m", KUBE_SERVICE_HEADLESS, NULL, NULL, NULL, 0, NULL);
	test_slice(s, "default", "m-a", "m", AF_INET, eps, 2, test_two_ports, 2);
	test_slice(s, "default", "m-b", "m", AF_INET, eps, 2, test_two_ports, 2);
	assert_int_equal(test_ask_cfg(s, &test_cfg, "m.default.svc.cluster.local", DNS_TYPE_SRV,
				      DNS_MAX_UDP, rep),
			 0);
	/* 2 labels x 2 ports, the second slice's copies collapsed: weight 25. */
	test_assert_positive(rep, 4, TEST_TTL);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_SRV, "m.default.svc.cluster.local",
		   "0 25 5432 m-0.m.default.svc.cluster.local");
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_SRV, "m.default.svc.cluster.local",
		   "0 25 5433 m-0.m.default.svc.cluster.local");
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_SRV, "m.default.svc.cluster.local",
		   "0 25 5432 m-1.m.default.svc.cluster.local");
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_SRV, "m.default.svc.cluster.local",
		   "0 25 5433 m-1.m.default.svc.cluster.local");
	assert_int_equal(test_count(rep, DNS_SECTION_ADDITIONAL, 0), 2);
	free(rep);
	kube_store_free(s);
}

static void
test_row12_ptr_endpoint(void **state)
{
	struct test_reply *rep = test_ask(state, "1.0.2.10.in-addr.arpa", DNS_TYPE_PTR);

	test_assert_positive(rep, 1, TEST_TTL);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_PTR, "1.0.2.10.in-addr.arpa",
		   "db-0.db.default.svc.cluster.local");
	rep = test_ask(state, "4.0.2.10.in-addr.arpa", DNS_TYPE_PTR);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_PTR, "4.0.2.10.in-addr.arpa",
		   "10-2-0-4.db.default.svc.cluster.local");
	/* An endpoint of a ClusterIP service. */
	rep = test_ask(state, "1.0.1.10.in-addr.arpa", DNS_TYPE_PTR);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_PTR, "1.0.1.10.in-addr.arpa",
		   "10-1-0-1.web.default.svc.cluster.local");
	/* Two services select one address: two PTRs. */
	rep = test_ask(state, "1.0.3.10.in-addr.arpa", DNS_TYPE_PTR);
	test_assert_positive(rep, 2, TEST_TTL);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_PTR, "1.0.3.10.in-addr.arpa",
		   "10-3-0-1.a1.default.svc.cluster.local");
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_PTR, "1.0.3.10.in-addr.arpa",
		   "10-3-0-1.a2.default.svc.cluster.local");
	/* IPv6 endpoint. */
	rep = test_ask(state,
		       "1.0.0.0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa",
		       DNS_TYPE_PTR);
	test_assert_positive(rep, 1, TEST_TTL);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_PTR,
		   "1.0.0.0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa",
		   "db-0.db.default.svc.cluster.local");
}

static void
test_row12_ptr_not_ours_declines(void **state)
{
	struct test_reply *rep = test_ask(state, "9.9.9.9.in-addr.arpa", DNS_TYPE_PTR);

	assert_int_equal(rep->res.status, KUBE_ANSWER_DECLINE);
	rep = test_ask(state,
		       "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa",
		       DNS_TYPE_PTR);
	assert_int_equal(rep->res.status, KUBE_ANSWER_DECLINE);
	/* Not-ready endpoint addresses are unknown too. */
	rep = test_ask(state, "3.0.2.10.in-addr.arpa", DNS_TYPE_PTR);
	assert_int_equal(rep->res.status, KUBE_ANSWER_DECLINE);
	/* Partial names, other types, malformed labels: fall through as CoreDNS does. */
	for (const char *const *n =
		     (const char *const[]){"0.10.in-addr.arpa", "in-addr.arpa",
					   "10.0.0.10.10.in-addr.arpa", "010.0.0.10.in-addr.arpa",
					   "256.0.0.10.in-addr.arpa", "d.f.ip6.arpa", NULL};
	     *n; n++) {
		rep = test_ask(state, *n, DNS_TYPE_PTR);
		assert_int_equal(rep->res.status, KUBE_ANSWER_DECLINE);
	}
	rep = test_ask(state, "10.0.0.10.in-addr.arpa", DNS_TYPE_A);
	assert_int_equal(rep->res.status, KUBE_ANSWER_DECLINE);
	rep = test_ask(state, "10.0.0.10.in-addr.arpa", DNS_TYPE_TXT);
	assert_int_equal(rep->res.status, KUBE_ANSWER_DECLINE);
}

static void
test_row13_externalname_out_of_zone(void **state)
{
	static const uint8_t example[] = "\x07"
					 "example"
					 "\x03"
					 "com";
	static const uint16_t types[] = {DNS_TYPE_A, DNS_TYPE_AAAA, DNS_TYPE_ANY, DNS_TYPE_MX};
	struct test_reply *rep;

	for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
		rep = test_ask(state, "ext.default.svc.cluster.local", types[i]);
		assert_int_equal(rep->res.status, KUBE_ANSWER_EXTERNAL);
		assert_int_equal(rep->rcode, DNS_RCODE_NOERROR);
		assert_int_equal(rep->n, 1);
		assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_CNAME, "ext.default.svc.cluster.local",
			   "example.com");
		assert_int_equal(rep->rrs[0].ttl, TEST_TTL);
		assert_int_equal(rep->res.target_len, sizeof(example));
		assert_memory_equal(rep->res.target, example, sizeof(example));
	}
	/* A CNAME query: just the CNAME. */
	rep = test_ask(state, "ext.default.svc.cluster.local", DNS_TYPE_CNAME);
	assert_int_equal(rep->res.status, KUBE_ANSWER_DONE);
	test_assert_positive(rep, 1, TEST_TTL);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_CNAME, "ext.default.svc.cluster.local",
		   "example.com");
	/* Any label under an ExternalName does not exist. */
	test_nx(state, "x.ext.default.svc.cluster.local", DNS_TYPE_A);
	test_nx(state, "_http._tcp.ext.default.svc.cluster.local", DNS_TYPE_SRV);
}

static void
test_row13_externalname_in_zone(void **state)
{
	struct test_reply *rep = test_ask(state, "ext-in.default.svc.cluster.local", DNS_TYPE_A);

	test_assert_positive(rep, 2, TEST_TTL);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_CNAME, "ext-in.default.svc.cluster.local",
		   "web.default.svc.cluster.local");
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_A, "web.default.svc.cluster.local",
		   "10.0.0.10");
	assert_int_equal(rep->rrs[0].type, DNS_TYPE_CNAME);
	/* SRV through the chain, with the target's Additional records. */
	rep = test_ask(state, "ext-in.default.svc.cluster.local", DNS_TYPE_SRV);
	test_assert_positive(rep, 4, TEST_TTL);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_SRV, "web.default.svc.cluster.local",
		   "0 33 80 web.default.svc.cluster.local");
	assert_int_equal(test_count(rep, DNS_SECTION_ADDITIONAL, 0), 2);
	/* In-zone chain ending out of zone: both CNAMEs, the last target for the caller. */
	rep = test_ask(state, "ext-ext.default.svc.cluster.local", DNS_TYPE_AAAA);
	assert_int_equal(rep->res.status, KUBE_ANSWER_EXTERNAL);
	assert_int_equal(rep->n, 2);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_CNAME, "ext.default.svc.cluster.local",
		   "example.com");
	assert_int_equal(rep->res.target_len, 13);
	/* A chain to a name that does not exist: NXDOMAIN (RFC 6604), CNAME kept, SOA. */
	rep = test_ask(state, "ext-nx.default.svc.cluster.local", DNS_TYPE_A);
	assert_int_equal(rep->rcode, DNS_RCODE_NXDOMAIN);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_CNAME, "ext-nx.default.svc.cluster.local",
		   "nope.default.svc.cluster.local");
	assert_int_equal(test_count(rep, DNS_SECTION_AUTHORITY, DNS_TYPE_SOA), 1);
	/* Chain to a name without that type: NODATA with the CNAME. */
	rep = test_ask(state, "ext-in.default.svc.cluster.local", DNS_TYPE_TXT);
	assert_int_equal(rep->rcode, DNS_RCODE_NOERROR);
	assert_int_equal(test_count(rep, DNS_SECTION_ANSWER, 0), 1);
	assert_int_equal(test_count(rep, DNS_SECTION_AUTHORITY, DNS_TYPE_SOA), 1);
	/* A loop stops after 8 CNAMEs. */
	rep = test_ask(state, "ext-loop.default.svc.cluster.local", DNS_TYPE_A);
	assert_int_equal(rep->res.status, KUBE_ANSWER_DONE);
	assert_int_equal(test_count(rep, DNS_SECTION_ANSWER, DNS_TYPE_CNAME), 8);
}

static void
test_pods(void **state, enum kube_pods_mode mode, struct test_reply *rep)
{
	struct kube_answer_config cfg = test_cfg;

	cfg.pods = mode;
	assert_int_equal(test_ask_cfg(*state, &cfg, "10-4-0-1.default.pod.cluster.local",
				      DNS_TYPE_A, DNS_MAX_UDP, rep),
			 0);
}

static void
test_row14_pods_insecure(void **state)
{
	struct test_reply *rep = test_ask(state, "10-9-8-7.default.pod.cluster.local", DNS_TYPE_A);

	test_assert_positive(rep, 1, TEST_TTL);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_A, "10-9-8-7.default.pod.cluster.local",
		   "10.9.8.7");
	rep = test_ask(state, "fd00--1.default.pod.cluster.local", DNS_TYPE_AAAA);
	test_assert_positive(rep, 1, TEST_TTL);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_AAAA, "fd00--1.default.pod.cluster.local",
		   "fd00::1");
	rep = test_ask(state, "2001-db8-0-0-0-0-0-1.default.pod.cluster.local", DNS_TYPE_AAAA);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_AAAA,
		   "2001-db8-0-0-0-0-0-1.default.pod.cluster.local", "2001:db8::1");
	test_nodata(state, "10-9-8-7.default.pod.cluster.local", DNS_TYPE_AAAA);
	test_nodata(state, "default.pod.cluster.local", DNS_TYPE_A);
	test_nx(state, "10-9-8-300.default.pod.cluster.local", DNS_TYPE_A);
	test_nx(state, "10-9-8.default.pod.cluster.local", DNS_TYPE_A);
	test_nx(state, "web.default.pod.cluster.local", DNS_TYPE_A);
	test_nx(state, "x.10-9-8-7.default.pod.cluster.local", DNS_TYPE_A);
}

static void
test_row14_pods_verified(void **state)
{
	struct kube_answer_config cfg = test_cfg;
	struct test_reply *rep = malloc(sizeof(*rep));

	assert_non_null(rep);
	test_pods(state, KUBE_PODS_VERIFIED, rep);
	test_assert_positive(rep, 1, TEST_TTL);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_A, "10-4-0-1.default.pod.cluster.local",
		   "10.4.0.1");
	cfg.pods = KUBE_PODS_VERIFIED;
	/* No such pod, or not in that namespace. */
	assert_int_equal(test_ask_cfg(*state, &cfg, "10-4-0-2.default.pod.cluster.local",
				      DNS_TYPE_A, DNS_MAX_UDP, rep),
			 0);
	test_assert_negative(state, rep, DNS_RCODE_NXDOMAIN);
	assert_int_equal(test_ask_cfg(*state, &cfg, "10-4-0-1.other.pod.cluster.local", DNS_TYPE_A,
				      DNS_MAX_UDP, rep),
			 0);
	test_assert_negative(state, rep, DNS_RCODE_NXDOMAIN);
	free(rep);
}

/* `<ns>.pod.<zone>` with verified pods: NODATA (an empty non-terminal) only for a namespace
 * that exists, NXDOMAIN for one that does not (CoreDNS; as `<ns>.svc.<zone>`), for any type. */
static void
test_row14_pods_verified_namespace(void **state)
{
	struct kube_answer_config cfg = test_cfg;
	struct test_reply *rep = malloc(sizeof(*rep));
	static const uint16_t types[] = {DNS_TYPE_A, DNS_TYPE_AAAA, DNS_TYPE_TXT};

	assert_non_null(rep);
	cfg.pods = KUBE_PODS_VERIFIED;
	for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
		assert_int_equal(test_ask_cfg(*state, &cfg, "nosuchns.pod.cluster.local", types[i],
					      DNS_MAX_UDP, rep),
				 0);
		test_assert_negative(state, rep, DNS_RCODE_NXDOMAIN);
		/* the namespace-level service name agrees */
		assert_int_equal(test_ask_cfg(*state, &cfg, "nosuchns.svc.cluster.local", types[i],
					      DNS_MAX_UDP, rep),
				 0);
		test_assert_negative(state, rep, DNS_RCODE_NXDOMAIN);
		assert_int_equal(test_ask_cfg(*state, &cfg, "Default.pod.cluster.local", types[i],
					      DNS_MAX_UDP, rep),
				 0);
		test_assert_negative(state, rep, DNS_RCODE_NOERROR);
		/* a namespace with no pod in it exists all the same */
		assert_int_equal(test_ask_cfg(*state, &cfg, "empty.pod.cluster.local", types[i],
					      DNS_MAX_UDP, rep),
				 0);
		test_assert_negative(state, rep, DNS_RCODE_NOERROR);
	}
	/* the other modes are unchanged: insecure synthesizes, so every namespace level exists */
	cfg.pods = KUBE_PODS_INSECURE;
	assert_int_equal(test_ask_cfg(*state, &cfg, "nosuchns.pod.cluster.local", DNS_TYPE_A,
				      DNS_MAX_UDP, rep),
			 0);
	test_assert_negative(state, rep, DNS_RCODE_NOERROR);
	free(rep);
}

static void
test_row14_pods_disabled(void **state)
{
	struct kube_answer_config cfg = test_cfg;
	struct test_reply *rep = malloc(sizeof(*rep));

	assert_non_null(rep);
	test_pods(state, KUBE_PODS_DISABLED, rep);
	test_assert_negative(state, rep, DNS_RCODE_NXDOMAIN);
	cfg.pods = KUBE_PODS_DISABLED;
	assert_int_equal(test_ask_cfg(*state, &cfg, "default.pod.cluster.local", DNS_TYPE_A,
				      DNS_MAX_UDP, rep),
			 0);
	test_assert_negative(state, rep, DNS_RCODE_NXDOMAIN);
	free(rep);
}

static void
test_row15_apex_soa_ns(void **state)
{
	struct test_reply *rep = test_ask(state, "cluster.local", DNS_TYPE_SOA);
	char soa[200];

	snprintf(soa, sizeof(soa),
		 "ns.dns.cluster.local hostmaster.cluster.local %u 7200 1800 86400 %u",
		 kube_store_serial(*state), TEST_TTL);
	test_assert_positive(rep, 1, TEST_TTL);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_SOA, "cluster.local", soa);
	rep = test_ask(state, "cluster.local", DNS_TYPE_NS);
	test_assert_positive(rep, 1, TEST_TTL);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_NS, "cluster.local", "ns.dns.cluster.local");
	test_nodata(state, "cluster.local", DNS_TYPE_A);
	test_nodata(state, "cluster.local", DNS_TYPE_TXT);
}

/* ---- table 2: negative answers ------------------------------------------------------------ */

static void
test_neg_nodata_name_exists(void **state)
{
	test_nodata(state, "kube-dns.kube-system.svc.cluster.local", DNS_TYPE_AAAA);
	test_nodata(state, "web.default.svc.cluster.local", DNS_TYPE_TXT);
	test_nodata(state, "web.default.svc.cluster.local", DNS_TYPE_SOA);
	test_nodata(state, "web.default.svc.cluster.local", DNS_TYPE_CNAME);
	test_nodata(state, "db.default.svc.cluster.local", DNS_TYPE_MX);
}

static void
test_neg_empty_non_terminals(void **state)
{
	static const uint16_t types[] = {DNS_TYPE_A, DNS_TYPE_SRV, DNS_TYPE_TXT};

	for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
		test_nodata(state, "svc.cluster.local", types[i]);
		test_nodata(state, "pod.cluster.local", types[i]);
		test_nodata(state, "default.svc.cluster.local", types[i]);
		test_nodata(state, "empty.svc.cluster.local", types[i]);
	}
}

static void
test_neg_nxdomain_unknown(void **state)
{
	test_nx(state, "nope.svc.cluster.local", DNS_TYPE_A);
	test_nx(state, "web.nope.svc.cluster.local", DNS_TYPE_A);
	test_nx(state, "nope.default.svc.cluster.local", DNS_TYPE_A);
	test_nx(state, "nope.db.default.svc.cluster.local", DNS_TYPE_A);
	test_nx(state, "x.ext.default.svc.cluster.local", DNS_TYPE_CNAME);
	test_nx(state, "a.b._http._tcp.web.default.svc.cluster.local", DNS_TYPE_SRV);
	test_nx(state, "nope.cluster.local", DNS_TYPE_A);
}

static void
test_neg_second_label_not_svc_or_pod(void **state)
{
	test_nx(state, "web.default.foo.cluster.local", DNS_TYPE_A);
	test_nx(state, "default.foo.cluster.local", DNS_TYPE_A);
	test_nx(state, "ns.dns.cluster.local", DNS_TYPE_A);
}

static void
test_neg_namespace_filter(void **state)
{
	struct kube_answer_config cfg = test_cfg;
	struct test_reply *rep = malloc(sizeof(*rep));

	assert_non_null(rep);
	cfg.namespaces = test_only_default;
	cfg.n_namespaces = 1;
	assert_int_equal(test_ask_cfg(*state, &cfg, "svc.other.svc.cluster.local", DNS_TYPE_A,
				      DNS_MAX_UDP, rep),
			 0);
	test_assert_negative(state, rep, DNS_RCODE_NXDOMAIN);
	assert_int_equal(
		test_ask_cfg(*state, &cfg, "other.svc.cluster.local", DNS_TYPE_A, DNS_MAX_UDP, rep),
		0);
	test_assert_negative(state, rep, DNS_RCODE_NXDOMAIN);
	assert_int_equal(test_ask_cfg(*state, &cfg, "10-1-2-3.other.pod.cluster.local", DNS_TYPE_A,
				      DNS_MAX_UDP, rep),
			 0);
	test_assert_negative(state, rep, DNS_RCODE_NXDOMAIN);
	/* The filtered namespace's addresses are not ours either. */
	assert_int_equal(test_ask_cfg(*state, &cfg, "99.0.0.10.in-addr.arpa", DNS_TYPE_PTR,
				      DNS_MAX_UDP, rep),
			 0);
	assert_int_equal(rep->res.status, KUBE_ANSWER_DECLINE);
	/* Listed namespaces answer as before. */
	assert_int_equal(test_ask_cfg(*state, &cfg, "web.default.svc.cluster.local", DNS_TYPE_A,
				      DNS_MAX_UDP, rep),
			 0);
	test_assert_positive(rep, 1, TEST_TTL);
	/* Without the filter the other namespace answers. */
	test_assert_positive(test_ask(state, "svc.other.svc.cluster.local", DNS_TYPE_A), 1,
			     TEST_TTL);
	free(rep);
}

static void
test_neg_ignore_empty_service(void **state)
{
	struct kube_answer_config cfg = test_cfg;
	struct test_reply *rep = malloc(sizeof(*rep));

	assert_non_null(rep);
	cfg.ignore_empty_service = true;
	assert_int_equal(test_ask_cfg(*state, &cfg, "kube-dns.kube-system.svc.cluster.local",
				      DNS_TYPE_A, DNS_MAX_UDP, rep),
			 0);
	test_assert_negative(state, rep, DNS_RCODE_NXDOMAIN);
	assert_int_equal(test_ask_cfg(*state, &cfg,
				      "_dns._udp.kube-dns.kube-system.svc.cluster.local",
				      DNS_TYPE_SRV, DNS_MAX_UDP, rep),
			 0);
	test_assert_negative(state, rep, DNS_RCODE_NXDOMAIN);
	/* web has a ready endpoint. */
	assert_int_equal(test_ask_cfg(*state, &cfg, "web.default.svc.cluster.local", DNS_TYPE_A,
				      DNS_MAX_UDP, rep),
			 0);
	test_assert_positive(rep, 1, TEST_TTL);
	free(rep);
}

/* ---- contract edges ----------------------------------------------------------------------- */

static void
test_outside_zones_einval(void **state)
{
	struct test_reply *rep = malloc(sizeof(*rep));

	assert_non_null(rep);
	assert_int_equal(
		test_ask_cfg(*state, &test_cfg, "example.com", DNS_TYPE_A, DNS_MAX_UDP, rep),
		-EINVAL);
	assert_int_equal(test_ask_cfg(*state, &test_cfg, "local", DNS_TYPE_A, DNS_MAX_UDP, rep),
			 -EINVAL);
	free(rep);
}

static void
test_big_headless_enospc(void **state UNUSED)
{
	enum { N = 200 };
	struct test_ep eps[N];
	char ips[N][16];
	struct kube_store_config sc = {.zone = "cluster.local"};
	struct kube_store *s = kube_store_new(&sc);
	struct test_reply *rep = malloc(sizeof(*rep));

	assert_non_null(s);
	assert_non_null(rep);
	for (int i = 0; i < N; i++) {
		snprintf(ips[i], sizeof(ips[i]), "10.9.%d.%d", i / 250, i % 250 + 1);
		eps[i] = (struct test_ep){ips[i], true, NULL};
	}
	test_service(s, "default", "big", KUBE_SERVICE_HEADLESS, NULL, NULL, NULL, 0, NULL);
	test_slice(s, "default", "big-1", "big", AF_INET, eps, N, test_pg_ports, 1);
	assert_int_equal(
		test_ask_cfg(s, &test_cfg, "big.default.svc.cluster.local", DNS_TYPE_A, 512, rep),
		-ENOSPC);
	assert_int_equal(test_ask_cfg(s, &test_cfg, "big.default.svc.cluster.local", DNS_TYPE_A,
				      DNS_MAX_UDP, rep),
			 0);
	assert_int_equal(rep->len, DNS_HDR_LEN + 31 + 4 + N * 16);
	assert_int_equal(dnsmsg_ancount(rep->pkt), N);
	/* SRV: 200 records, weight floor(100/200) = 0 raised to CoreDNS's minimum of 1. */
	assert_int_equal(
		test_ask_cfg(s, &test_cfg, "big.default.svc.cluster.local", DNS_TYPE_SRV, 512, rep),
		-ENOSPC);
	memset(rep, 0, sizeof(*rep));
	uint8_t name[DNS_MAX_NAME];
	int n = dnsmsg_name_from_text("big.default.svc.cluster.local", name, sizeof(name));
	struct dnsmsg_question q = {name, (uint16_t)n, DNS_TYPE_SRV, DNS_CLASS_IN};
	assert_int_equal(kube_answer(s, &test_cfg, &q, 1, rep->pkt, DNS_MAX_UDP, &rep->res), 0);
	assert_int_equal(dnsmsg_ancount(rep->pkt), N);
	assert_int_equal(dnsmsg_arcount(rep->pkt), N);
	struct dnsmsg_iter it;
	struct dnsmsg_rr rr;
	assert_int_equal(dnsmsg_iter_init(&it, rep->pkt, rep->res.len), 0);
	assert_int_equal(dnsmsg_iter_next(&it, &rr), 0);
	assert_int_equal(rr.type, DNS_TYPE_SRV);
	assert_int_equal(dnsmsg_get16(rep->pkt + rr.rdata_off + 2), 1);
	free(rep);
	kube_store_free(s);
}

static void
test_duplicate_addresses_collapse(void **state)
{
	struct kube_store *s = *state;
	struct kube_ip ips[2] = {test_ip("10.0.0.77"), test_ip("10.0.0.77")};
	struct kube_endpoint_obj ep = {.ips = ips, .n_ips = 2, .ready = true, .hostname = "h"};
	struct kube_slice_obj sl = {.ns = "default",
				    .name = "dup-1",
				    .service = "dup",
				    .family = AF_INET,
				    .endpoints = &ep,
				    .n_endpoints = 1};
	struct test_reply *rep;

	/* Whether or not the store keeps such duplicates, the answer holds each address once. */
	test_service(s, "default", "dup", KUBE_SERVICE_CLUSTER_IP, "10.0.0.78", "10.0.0.78", NULL,
		     0, NULL);
	assert_int_equal(kube_store_upsert_slice(s, &sl), 0);
	rep = test_ask(state, "dup.default.svc.cluster.local", DNS_TYPE_A);
	test_assert_positive(rep, 1, TEST_TTL);
	rep = test_ask(state, "h.dup.default.svc.cluster.local", DNS_TYPE_A);
	test_assert_positive(rep, 1, TEST_TTL);
	assert_has(rep, DNS_SECTION_ANSWER, DNS_TYPE_A, "h.dup.default.svc.cluster.local",
		   "10.0.0.77");
}

/* Write one RRset of ips[seq[0..n)] through kube_answer_addrs() (reset first); returns the
 * records it counted. */
static unsigned
test_set_rrset(struct kube_answer_ctx *c, enum dns_section section, const struct kube_ip *ips,
	       const unsigned *seq, size_t n)
{
	unsigned count = 0;

	kube_answer_set_reset(&c->set);
	for (size_t i = 0; i < n; i++)
		count += kube_answer_addrs(c, section, NULL, 0, &ips[seq[i]], 1);
	return count;
}

/* Read back the next `n` records: their rdata must be ips[want[0..n)] in that order. */
static void
test_set_expect(struct dnsmsg_iter *it, const struct kube_ip *ips, const unsigned *want, size_t n)
{
	struct dnsmsg_rr rr;

	for (size_t i = 0; i < n; i++) {
		const struct kube_ip *ip = &ips[want[i]];
		size_t len = ip->family == AF_INET ? 4 : 16;

		assert_int_equal(dnsmsg_iter_next(it, &rr), 0);
		assert_int_equal(rr.rdlen, len);
		assert_memory_equal(it->pkt + rr.rdata_off, ip->addr, len);
	}
}

/* An RRset past KUBE_ANSWER_SET_LIST records moves to the hash table: duplicates found before
 * the move, after it (of records first listed, then of records only hashed), across address
 * families, and a fresh RRset after a big one counts every address again. */
static void
test_answer_set_list_then_table(void **state UNUSED)
{
	enum { N = 3 * KUBE_ANSWER_SET_LIST, V6 = N };
	struct kube_answer_ctx *c = malloc(sizeof(*c));
	uint8_t *pkt = malloc(DNS_MAX_UDP), name[DNS_MAX_NAME];
	struct kube_ip ips[N + 2];
	unsigned seq[2 * N + 8], want[N + 2], n = 0, w = 0;
	char text[64];
	int qlen = dnsmsg_name_from_text("big.default.svc.cluster.local", name, sizeof(name));
	struct dnsmsg_question q = {name, (uint16_t)qlen, DNS_TYPE_A, DNS_CLASS_IN};
	struct dnsmsg_iter it;

	assert_non_null(c);
	assert_non_null(pkt);
	assert_true(qlen > 0);
	for (unsigned i = 0; i < N; i++) {
		snprintf(text, sizeof(text), "10.1.%u.%u", i / 200, i % 200 + 1);
		ips[i] = test_ip(text);
	}
	ips[V6] = test_ip("fd00::1");
	ips[V6 + 1] = test_ip("fd00::1:0:0:0");
	/* Distinct 0..N-1 in order, with duplicates between them: one while the list holds the
	 * RRset, then ones of a listed and of a hashed address once the table holds it. */
	for (unsigned i = 0; i < N; i++) {
		seq[n++] = i;
		want[w++] = i;
		if (i == KUBE_ANSWER_SET_LIST / 2)
			seq[n++] = 1;
		if (i == KUBE_ANSWER_SET_LIST + 4) {
			seq[n++] = 2;
			seq[n++] = KUBE_ANSWER_SET_LIST + 2;
		}
	}
	seq[n++] = N - 1;
	seq[n++] = KUBE_ANSWER_SET_LIST;
	seq[n++] = 0;

	memset(c, 0x5a, sizeof(*c)); /* a dirty stack: the table must be cleared before use */
	c->cfg = &test_cfg;
	c->qtype = DNS_TYPE_A;
	c->set.n = 0;
	c->set.gen = 0;
	dnsmsg_builder_init(&c->b, pkt, DNS_MAX_UDP, 1, &q, true, false, true, DNS_RCODE_NOERROR);
	assert_int_equal(test_set_rrset(c, DNS_SECTION_ANSWER, ips, seq, n), N);
	/* The same again in Additional (a new generation of the table), with AAAA duplicates. */
	seq[n++] = V6;
	seq[n++] = V6 + 1;
	seq[n++] = V6;
	want[w++] = V6;
	want[w++] = V6 + 1;
	assert_int_equal(test_set_rrset(c, DNS_SECTION_ADDITIONAL, ips, seq, n), N + 2);
	/* A small RRset after big ones: back in the list, nothing remembered from before. */
	assert_int_equal(
		test_set_rrset(c, DNS_SECTION_ADDITIONAL, ips, (const unsigned[]){5, 5, 6}, 3), 2);
	assert_false(c->b.overflow);
	assert_true(dnsmsg_builder_finish(&c->b) > 0);
	assert_int_equal(dnsmsg_ancount(pkt), N);
	assert_int_equal(dnsmsg_arcount(pkt), N + 2 + 2);
	assert_int_equal(dnsmsg_iter_init(&it, pkt, c->b.len), 0);
	test_set_expect(&it, ips, want, N);
	test_set_expect(&it, ips, want, N + 2);
	test_set_expect(&it, ips, (const unsigned[]){5, 6}, 2);
	free(pkt);
	free(c);
}

static void
test_soa_serial_follows_store(void **state)
{
	struct kube_store *s = *state;
	uint32_t before = kube_store_serial(s);

	assert_int_equal(kube_store_upsert_namespace(s, "fresh"), 0);
	assert_true(kube_store_serial(s) != before);
	/* test_nx checks the SOA against the store's current serial. */
	test_nx(state, "nope.fresh.svc.cluster.local", DNS_TYPE_A);
	test_nodata(state, "fresh.svc.cluster.local", DNS_TYPE_A);
}

static void
test_compression_points_into_question(void **state)
{
	struct test_reply *rep = test_ask(state, "nope.cluster.local", DNS_TYPE_A);
	/* Authority SOA owner: a pointer to "cluster.local" inside the question (offset 12+5). */
	size_t qend = DNS_HDR_LEN + 20 + 4;

	assert_int_equal(dnsmsg_get16(rep->pkt + qend), 0xc000 | (DNS_HDR_LEN + 5));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, test_setup, test_teardown)
		T(test_row01_dns_version_txt),
		T(test_row02_clusterip_a_aaaa_dual_stack),
		T(test_row03_srv_named_port),
		T(test_row04_srv_bare_service),
		T(test_row05_ptr_clusterip),
		T(test_row06_headless_a_aaaa),
		T(test_row07_headless_no_ready_endpoints),
		T(test_row08_endpoint_hostname),
		T(test_row09_endpoint_without_hostname),
		T(test_row09_endpoint_pod_names),
		T(test_row10_endpoint_under_clusterip),
		T(test_row11_headless_srv),
		T(test_row11_headless_srv_labels_by_ports),
		T(test_row12_ptr_endpoint),
		T(test_row12_ptr_not_ours_declines),
		T(test_row13_externalname_out_of_zone),
		T(test_row13_externalname_in_zone),
		T(test_row14_pods_insecure),
		T(test_row14_pods_verified),
		T(test_row14_pods_verified_namespace),
		T(test_row14_pods_disabled),
		T(test_row15_apex_soa_ns),
		T(test_neg_nodata_name_exists),
		T(test_neg_empty_non_terminals),
		T(test_neg_nxdomain_unknown),
		T(test_neg_second_label_not_svc_or_pod),
		T(test_neg_namespace_filter),
		T(test_neg_ignore_empty_service),
		T(test_outside_zones_einval),
		T(test_big_headless_enospc),
		T(test_duplicate_addresses_collapse),
		T(test_answer_set_list_then_table),
		T(test_soa_serial_follows_store),
		T(test_compression_points_into_question),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
