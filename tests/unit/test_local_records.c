/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_local_records.c - unit tests for the local records table (local_records.c): option
 * parsing through ldns, hosts files, and the answers read back with dnsmsg_iter. What dnsmasq
 * itself answers is checked by tests/integration/test_local_records.py; these pin the pieces.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kubemasq/dnsmsg.h"
#include "upstream/local_records.h"

struct test_lr_reply {
	int len;
	uint8_t buf[4096];
	unsigned n; /* answer records */
	uint16_t types[32];
	uint32_t ttls[32];
	uint8_t rdata[32][512];
	uint16_t rdlen[32];
};

static int
test_lr_ask(const struct local_records *lr, const char *name, uint16_t qtype,
	    struct test_lr_reply *r)
{
	uint8_t qname[DNS_MAX_NAME];
	int qlen = dnsmsg_name_from_text(name, qname, sizeof(qname));
	struct dnsmsg_question q = {.qname = qname, .qtype = qtype, .qclass = DNS_CLASS_IN};
	struct dnsmsg_iter it;
	struct dnsmsg_rr rr;

	assert_true(qlen > 0);
	q.qname_len = (uint16_t)qlen;
	memset(r, 0, sizeof(*r));
	r->len = local_records_answer(lr, &q, true, false, r->buf, sizeof(r->buf));
	if (r->len < 0)
		return r->len;
	assert_int_equal(r->buf[2] & 0x04, 0x04); /* AA */
	assert_int_equal(r->buf[3] & 0x0f, DNS_RCODE_NOERROR);
	assert_int_equal(dnsmsg_iter_init(&it, r->buf, (size_t)r->len), 0);
	while (dnsmsg_iter_next(&it, &rr) == 0) {
		if (rr.section != DNS_SECTION_ANSWER)
			continue;
		assert_true(r->n < 32 && rr.rdlen <= 512);
		r->types[r->n] = rr.type;
		r->ttls[r->n] = rr.ttl;
		r->rdlen[r->n] = rr.rdlen;
		memcpy(r->rdata[r->n], r->buf + rr.rdata_off, rr.rdlen);
		r->n++;
	}
	return r->len;
}

static void
test_lr_add(struct local_records *lr, const char *opt, const char *value)
{
	char err[256];

	if (local_records_add_option(lr, opt, value, err, sizeof(err)) != 0)
		fail_msg("--%s=%s: %s", opt, value, err);
}

static void
test_local_records_host_record(void **state)
{
	struct local_records *lr = local_records_new(0, NULL, false);
	struct test_lr_reply r;
	static const uint8_t a[4] = {192, 0, 2, 1};
	static const uint8_t h1[] = "\002h1\007example";

	(void)state;
	test_lr_add(lr, "host-record", "h1.example,H1,192.0.2.1,2001:db8::1,300");
	test_lr_add(lr, "host-record", "h1.example,192.0.2.1"); /* the same A once */
	local_records_finish(lr);
	/* names are matched lower-cased (the router hands them so); options keep no case */
	assert_true(test_lr_ask(lr, "h1.example", DNS_TYPE_A, &r) > 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.ttls[0], 300);
	assert_memory_equal(r.rdata[0], a, 4);
	assert_true(test_lr_ask(lr, "h1", DNS_TYPE_AAAA, &r) > 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.types[0], DNS_TYPE_AAAA);
	assert_true(test_lr_ask(lr, "h1.example", DNS_TYPE_ANY, &r) > 0);
	assert_int_equal(r.n, 2);
	/* the PTR names the first name, lower-cased */
	assert_true(test_lr_ask(lr, "1.2.0.192.in-addr.arpa", DNS_TYPE_PTR, &r) > 0);
	assert_int_equal(r.n, 1);
	assert_memory_equal(r.rdata[0], h1, sizeof(h1));
	/* other types: upstream decides (-ENODATA); below the name and the PTR name for A: not
	 * ours at all; the parent of a local name: NODATA-able */
	assert_int_equal(test_lr_ask(lr, "h1.example", DNS_TYPE_MX, &r), -ENODATA);
	assert_int_equal(test_lr_ask(lr, "example", DNS_TYPE_A, &r), -ENODATA);
	assert_int_equal(test_lr_ask(lr, "sub.h1.example", DNS_TYPE_A, &r), -ENOENT);
	assert_int_equal(test_lr_ask(lr, "1.2.0.192.in-addr.arpa", DNS_TYPE_A, &r), -ENOENT);
	assert_int_equal(test_lr_ask(lr, "2.0.192.in-addr.arpa", DNS_TYPE_A, &r), -ENOENT);
	assert_int_equal(test_lr_ask(lr, "other", DNS_TYPE_A, &r), -ENOENT);
	local_records_free(lr);
}

static void
test_local_records_cname_chain(void **state)
{
	struct local_records *lr = local_records_new(7, NULL, false);
	struct test_lr_reply r;

	(void)state;
	test_lr_add(lr, "host-record", "target.example,192.0.2.1");
	test_lr_add(lr, "cname", "c1,target.example");
	test_lr_add(lr, "cname", "c2,c1,99");
	test_lr_add(lr, "cname", "dangling,nowhere.example");
	local_records_finish(lr);
	assert_true(test_lr_ask(lr, "c2", DNS_TYPE_A, &r) > 0);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.types[0], DNS_TYPE_CNAME);
	assert_int_equal(r.ttls[0], 99);
	assert_int_equal(r.types[1], DNS_TYPE_CNAME);
	assert_int_equal(r.ttls[1], 7);
	assert_int_equal(r.types[2], DNS_TYPE_A);
	assert_true(test_lr_ask(lr, "c2", DNS_TYPE_CNAME, &r) > 0);
	assert_int_equal(r.n, 1);
	assert_true(test_lr_ask(lr, "c1", DNS_TYPE_TXT, &r) > 0); /* the CNAME alone */
	assert_int_equal(r.n, 1);
	assert_true(test_lr_ask(lr, "dangling", DNS_TYPE_A, &r) > 0);
	assert_int_equal(r.n, 1);
	local_records_free(lr);
}

static void
test_local_records_defaults(void **state)
{
	struct local_records *lr = local_records_new(0, NULL, false);
	struct test_lr_reply r;
	char host[256], want[300];
	uint8_t wire[DNS_MAX_NAME];
	int wlen;
	static const uint8_t srv[] = {0, 0, 0, 0, 0, 1, 0}; /* 0 0 1 . */
	static const uint8_t mx[] = {0, 5, 1, 'm', 0};

	(void)state;
	test_lr_add(lr, "srv-host", "_x._tcp.example");
	test_lr_add(lr, "mx-host", "m.example");
	test_lr_add(lr, "mx-host", "m2.example,M,5");
	test_lr_add(lr, "txt-record", "t0.example");
	test_lr_add(lr, "ptr-record", "p.example");
	local_records_finish(lr);
	assert_true(test_lr_ask(lr, "_x._tcp.example", DNS_TYPE_SRV, &r) > 0);
	assert_int_equal(r.rdlen[0], sizeof(srv));
	assert_memory_equal(r.rdata[0], srv, sizeof(srv));
	assert_true(test_lr_ask(lr, "m2.example", DNS_TYPE_MX, &r) > 0);
	assert_memory_equal(r.rdata[0], mx, sizeof(mx));
	/* no target: this host's name, preference 1 */
	assert_int_equal(gethostname(host, sizeof(host)), 0);
	snprintf(want, sizeof(want), "%s", host);
	for (char *p = want; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	wlen = dnsmsg_name_from_text(want, wire, sizeof(wire));
	assert_true(wlen > 0);
	assert_true(test_lr_ask(lr, "m.example", DNS_TYPE_MX, &r) > 0);
	assert_int_equal(r.rdata[0][1], 1);
	assert_memory_equal(r.rdata[0] + 2, wire, (size_t)wlen);
	assert_true(test_lr_ask(lr, "t0.example", DNS_TYPE_TXT, &r) > 0);
	assert_int_equal(r.rdlen[0], 1); /* one empty string */
	assert_true(test_lr_ask(lr, "p.example", DNS_TYPE_PTR, &r) > 0);
	assert_int_equal(r.rdlen[0], 1); /* "." */
	local_records_free(lr);
}

static void
test_local_records_txt(void **state)
{
	struct local_records *lr = local_records_new(0, NULL, false);
	struct test_lr_reply r;
	char value[400];

	(void)state;
	memset(value, 'x', sizeof(value));
	memcpy(value, "t.example,a\"b\\c,", 16);
	value[sizeof(value) - 1] = '\0';
	test_lr_add(lr, "txt-record", value);
	local_records_finish(lr);
	assert_true(test_lr_ask(lr, "t.example", DNS_TYPE_TXT, &r) > 0);
	/* "a\"b\\c" as 5 bytes, then 383 x's as 255 + 128 */
	assert_int_equal(r.rdlen[0], 1 + 5 + 1 + 255 + 1 + 128);
	assert_memory_equal(r.rdata[0], "\005a\"b\\c", 6);
	assert_int_equal(r.rdata[0][6], 255);
	assert_int_equal(r.rdata[0][6 + 256], 128);
	local_records_free(lr);
}

static void
test_local_records_ptr_record_wins(void **state)
{
	struct local_records *lr = local_records_new(0, NULL, false);
	struct test_lr_reply r;
	static const uint8_t other[] = "\005other";

	(void)state;
	test_lr_add(lr, "host-record", "a,192.0.2.1");
	test_lr_add(lr, "ptr-record", "1.2.0.192.in-addr.arpa,other");
	test_lr_add(lr, "host-record", "b,192.0.2.1");
	local_records_finish(lr);
	assert_true(test_lr_ask(lr, "1.2.0.192.in-addr.arpa", DNS_TYPE_PTR, &r) > 0);
	assert_int_equal(r.n, 1);
	assert_memory_equal(r.rdata[0], other, sizeof(other));
	/* an explicit PTR name is a local name: other types NODATA-able, and its parents */
	assert_int_equal(test_lr_ask(lr, "1.2.0.192.in-addr.arpa", DNS_TYPE_A, &r), -ENODATA);
	assert_int_equal(test_lr_ask(lr, "in-addr.arpa", DNS_TYPE_PTR, &r), -ENODATA);
	local_records_free(lr);
}

static void
test_local_records_bad_options(void **state)
{
	static const char *const bad[][2] = {
		{"host-record", "bad!name,192.0.2.1"},
		{"host-record", "onlyname"},
		{"host-record", "192.0.2.1"},
		{"cname", "alone"},
		{"cname", "a,b c"},
		{"mx-host", "m.example,t.example,x"},
		{"mx-host", "m.example,t.example,70000"},
		{"mx-host", "m.example,t,1,extra"},
		{"srv-host", "_a._tcp.x,t,99999"},
		{"srv-host", "_a._tcp.x,t,1,2,3,4"},
		{"ptr-record", "p.example,a,b"},
		{"ptr-record", "p..example"},
		{"txt-record", ""},
		{"no-such", "x"},
	};
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct local_records *lr = local_records_new(0, NULL, false);

		err[0] = '\0';
		assert_int_equal(
			local_records_add_option(lr, bad[i][0], bad[i][1], err, sizeof(err)),
			-EINVAL);
		assert_true(err[0] != '\0');
		local_records_free(lr);
	}
}

static void
test_local_records_per_name_cap(void **state)
{
	struct local_records *lr = local_records_new(0, NULL, false);
	char value[64], err[256];
	int rc = 0;

	(void)state;
	for (unsigned i = 0; i <= LOCAL_RECORDS_MAX_PER_NAME && rc == 0; i++) {
		snprintf(value, sizeof(value), "n.example,10.0.%u.%u", i / 256, i % 256);
		rc = local_records_add_option(lr, "host-record", value, err, sizeof(err));
	}
	assert_int_equal(rc, -E2BIG);
	assert_int_equal(local_records_count(lr) >= LOCAL_RECORDS_MAX_PER_NAME, 1);
	local_records_free(lr);
}

static void
test_local_records_hosts_file(void **state)
{
	char path[] = "/tmp/test_local_records_XXXXXX";
	int fd = mkstemp(path);
	FILE *f;
	struct local_records *lr = local_records_new(0, "lan", true);
	struct test_lr_reply r;
	static const uint8_t web_lan[] = "\003web\003lan";

	(void)state;
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs("# comment\n10.0.0.1 web www.example # trailing\n10.0.0.300 broken\n"
	      "fd00::1 six\n10.0.0.2 bad!name good\n",
	      f);
	fclose(f);
	assert_int_equal(local_records_add_hosts(lr, path), 4); /* web www six good */
	local_records_finish(lr);
	unlink(path);
	assert_true(test_lr_ask(lr, "web", DNS_TYPE_A, &r) > 0);
	assert_true(test_lr_ask(lr, "web.lan", DNS_TYPE_A, &r) > 0);
	assert_true(test_lr_ask(lr, "www.example", DNS_TYPE_A, &r) > 0);
	assert_int_equal(test_lr_ask(lr, "www.example.lan", DNS_TYPE_A, &r), -ENOENT);
	assert_true(test_lr_ask(lr, "six", DNS_TYPE_AAAA, &r) > 0);
	assert_true(test_lr_ask(lr, "good", DNS_TYPE_A, &r) > 0);
	assert_int_equal(test_lr_ask(lr, "broken", DNS_TYPE_A, &r), -ENOENT);
	/* the PTR names the first name, expanded */
	assert_true(test_lr_ask(lr, "1.0.0.10.in-addr.arpa", DNS_TYPE_PTR, &r) > 0);
	assert_memory_equal(r.rdata[0], web_lan, sizeof(web_lan));
	assert_true(local_records_add_hosts(lr, "/nonexistent/hosts") < 0);
	local_records_free(lr);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_local_records_host_record),
		cmocka_unit_test(test_local_records_cname_chain),
		cmocka_unit_test(test_local_records_defaults),
		cmocka_unit_test(test_local_records_txt),
		cmocka_unit_test(test_local_records_ptr_record_wins),
		cmocka_unit_test(test_local_records_bad_options),
		cmocka_unit_test(test_local_records_per_name_cap),
		cmocka_unit_test(test_local_records_hosts_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
