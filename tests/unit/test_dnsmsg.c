/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_dnsmsg.c - unit tests for the pure DNS wire helpers: query validation (every return
 * code, every truncation), error replies, upstream queries, reply checks, OPT stripping and
 * appending, truncation, the RR iterator on good and malformed input, TTL scanning for the
 * cache, name conversions and zone tests, the answer builder, and a mutation loop that feeds
 * damaged replies to every parser (meant to run under ASan/UBSan, on exact-size heap copies).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kubemasq/defs.h"
#include "kubemasq/dnsmsg.h"

/* www.example.com A IN, RD, with an OPT: 4096 bytes, DO, version 0. */
/* clang-format off */
static const uint8_t query_edns[] = {
	0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1,
	3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0,
	0, 1, 0, 1,
	0, 0, 41, 0x10, 0x00, 0, 0, 0x80, 0, 0, 0,
};
/* clang-format on */
#define QUERY_QEND 33

static const uint8_t www_example_com[] = {
	3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0,
};

static size_t
wire(const char *text, uint8_t *out)
{
	int n = dnsmsg_name_from_text(text, out, DNS_MAX_NAME);

	assert_true(n > 0);
	return (size_t)n;
}

/* A copy of `src` in a heap block of exactly `len` bytes, so ASan sees any over-read. */
static uint8_t *
exact_copy(const uint8_t *src, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);

	assert_non_null(p);
	if (len)
		memcpy(p, src, len);
	return p;
}

static int
parse(const uint8_t *pkt, size_t len, struct dnsmsg_query *q)
{
	uint8_t *copy = exact_copy(pkt, len);
	int r = dnsmsg_parse_query(copy, len, q);

	/* the question pointer must not outlive the copy: redirect it into `pkt` */
	if (q->q.qname)
		q->q.qname = pkt + (q->q.qname - copy);
	free(copy);
	return r;
}

/* ---- parse_query ---------------------------------------------------------------------- */

static void
test_parse_query_ok(void **state)
{
	struct dnsmsg_query q;
	(void)state;

	assert_int_equal(parse(query_edns, sizeof(query_edns), &q), 0);
	assert_int_equal(q.id, 0x1234);
	assert_int_equal(q.opcode, 0);
	assert_true(q.rd);
	assert_false(q.cd);
	assert_non_null(q.q.qname);
	assert_int_equal(q.q.qname_len, sizeof(www_example_com));
	assert_memory_equal(q.q.qname, www_example_com, sizeof(www_example_com));
	assert_int_equal(q.q.qtype, DNS_TYPE_A);
	assert_int_equal(q.q.qclass, DNS_CLASS_IN);
	assert_int_equal(q.question_end, QUERY_QEND);
	assert_true(q.edns);
	assert_int_equal(q.edns_version, 0);
	assert_true(q.do_bit);
	assert_int_equal(q.udp_size, 4096);
}

static void
test_parse_query_no_edns(void **state)
{
	uint8_t pkt[QUERY_QEND];
	struct dnsmsg_query q;
	(void)state;

	memcpy(pkt, query_edns, sizeof(pkt));
	pkt[11] = 0;
	pkt[3] = 0x10; /* CD */
	assert_int_equal(parse(pkt, sizeof(pkt), &q), 0);
	assert_false(q.edns);
	assert_false(q.do_bit);
	assert_true(q.cd);
	assert_int_equal(q.udp_size, 512);
}

static void
test_parse_query_edns_fields(void **state)
{
	uint8_t pkt[sizeof(query_edns)];
	struct dnsmsg_query q;
	(void)state;

	memcpy(pkt, query_edns, sizeof(pkt));
	pkt[QUERY_QEND + 3] = 0; /* udp size 100: raised to 512 */
	pkt[QUERY_QEND + 4] = 100;
	pkt[QUERY_QEND + 6] = 1; /* version 1 */
	pkt[QUERY_QEND + 7] = 0; /* DO clear */
	assert_int_equal(parse(pkt, sizeof(pkt), &q), 0);
	assert_true(q.edns);
	assert_int_equal(q.edns_version, 1);
	assert_false(q.do_bit);
	assert_int_equal(q.udp_size, 512);
}

static void
test_parse_query_header_errors(void **state)
{
	uint8_t pkt[sizeof(query_edns)];
	struct dnsmsg_query q;
	(void)state;

	assert_int_equal(parse(query_edns, 11, &q), -EBADMSG);
	assert_int_equal(parse(query_edns, 0, &q), -EBADMSG);

	memcpy(pkt, query_edns, sizeof(pkt));
	pkt[2] |= 0x80;
	assert_int_equal(parse(pkt, sizeof(pkt), &q), -EBADMSG);

	/* NOTIFY: NOTIMP, with the header and the question still described */
	memcpy(pkt, query_edns, sizeof(pkt));
	pkt[2] = 4 << 3 | 1;
	assert_int_equal(parse(pkt, sizeof(pkt), &q), -EOPNOTSUPP);
	assert_int_equal(q.id, 0x1234);
	assert_int_equal(q.opcode, 4);
	assert_true(q.rd);
	assert_non_null(q.q.qname);

	/* an unknown opcode with no question at all is still NOTIMP */
	pkt[5] = 0;
	assert_int_equal(parse(pkt, DNS_HDR_LEN, &q), -EOPNOTSUPP);
	assert_null(q.q.qname);
}

/* Set one byte of the EDNS query and expect `code`. */
static void
expect_with(size_t off, uint8_t val, int code)
{
	uint8_t pkt[sizeof(query_edns)];
	struct dnsmsg_query q;

	memcpy(pkt, query_edns, sizeof(pkt));
	pkt[off] = val;
	assert_int_equal(parse(pkt, sizeof(pkt), &q), code);
	assert_int_equal(q.id, 0x1234);
}

static void
test_parse_query_proto_errors(void **state)
{
	struct dnsmsg_query q;
	(void)state;

	expect_with(5, 0, -EPROTO);	     /* QDCOUNT 0 */
	expect_with(5, 2, -EPROTO);	     /* QDCOUNT 2 */
	expect_with(7, 1, -EPROTO);	     /* ANCOUNT 1 */
	expect_with(9, 1, -EPROTO);	     /* NSCOUNT 1 */
	expect_with(11, 0, -EPROTO);	     /* ARCOUNT 0: the OPT becomes trailing garbage */
	expect_with(11, 2, -EPROTO);	     /* ARCOUNT 2: a record missing */
	expect_with(12, 64, -EPROTO);	     /* label length 64 */
	expect_with(12, 0x40, -EPROTO);	     /* extended label type */
	expect_with(QUERY_QEND, 1, -EPROTO); /* OPT owner not the root (and then garbage) */

	/* the question is described even when a later part is bad */
	uint8_t pkt[sizeof(query_edns)];
	memcpy(pkt, query_edns, sizeof(pkt));
	pkt[7] = 1;
	assert_int_equal(parse(pkt, sizeof(pkt), &q), -EPROTO);
	assert_non_null(q.q.qname);
	assert_int_equal(q.question_end, QUERY_QEND);
	pkt[7] = 0;
	pkt[5] = 0;
	assert_int_equal(parse(pkt, sizeof(pkt), &q), -EPROTO);
	assert_null(q.q.qname);
	assert_int_equal(q.question_end, DNS_HDR_LEN);
}

static void
test_parse_query_compressed_qname(void **state)
{
	/* www + pointer to offset 16 would be a loop anyway; queries must not compress at all */
	/* clang-format off */
	static const uint8_t pkt[] = {
		0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0,
		3, 'w', 'w', 'w', 0xc0, 12, 0, 1, 0, 1,
	};
	/* clang-format on */
	struct dnsmsg_query q;
	(void)state;

	assert_int_equal(parse(pkt, sizeof(pkt), &q), -EPROTO);
	assert_null(q.q.qname);
}

static void
test_parse_query_long_name(void **state)
{
	uint8_t pkt[DNS_HDR_LEN + 300 + 4];
	struct dnsmsg_query q;
	size_t pos = DNS_HDR_LEN;
	(void)state;

	memset(pkt, 0, sizeof(pkt));
	pkt[5] = 1;
	/* 4 labels of 63 = 256 bytes + root: 257 > 255 */
	for (int i = 0; i < 4; i++) {
		pkt[pos] = 63;
		memset(pkt + pos + 1, 'a', 63);
		pos += 64;
	}
	pkt[pos++] = 0;
	pkt[pos + 1] = 1;
	pkt[pos + 3] = 1;
	pos += 4;
	assert_int_equal(parse(pkt, pos, &q), -EPROTO);

	/* 3 x 63 + 61 + root = 255: the longest legal name */
	pos = DNS_HDR_LEN + 3 * 64;
	pkt[pos] = 61;
	memset(pkt + pos + 1, 'b', 61);
	pos += 62;
	pkt[pos++] = 0;
	memcpy(pkt + pos, "\0\1\0\1", 4);
	pos += 4;
	assert_int_equal(parse(pkt, pos, &q), 0);
	assert_int_equal(q.q.qname_len, 255);
}

static void
test_parse_query_opt_errors(void **state)
{
	/* two OPTs */
	uint8_t two[sizeof(query_edns) + 11];
	struct dnsmsg_query q;
	(void)state;

	memcpy(two, query_edns, sizeof(query_edns));
	memcpy(two + sizeof(query_edns), query_edns + QUERY_QEND, 11);
	two[11] = 2;
	assert_int_equal(parse(two, sizeof(two), &q), -EPROTO);

	/* OPT owned by "a." */
	/* clang-format off */
	static const uint8_t nonroot[] = {
		0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1,
		1, 'a', 0, 0, 1, 0, 1,
		1, 'a', 0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0,
	};
	/* clang-format on */
	assert_int_equal(parse(nonroot, sizeof(nonroot), &q), -EPROTO);

	/* an option running past the OPT's rdata */
	/* clang-format off */
	static const uint8_t badopt[] = {
		0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1,
		0, 0, 1, 0, 1,
		0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 6, 0, 10, 0, 8, 1, 2,
	};
	/* clang-format on */
	assert_int_equal(parse(badopt, sizeof(badopt), &q), -EPROTO);
	uint8_t goodopt[sizeof(badopt)];
	memcpy(goodopt, badopt, sizeof(badopt));
	goodopt[sizeof(badopt) - 3] = 2; /* option length 2: exactly fills the rdata */
	assert_int_equal(parse(goodopt, sizeof(goodopt), &q), 0);
	assert_true(q.edns);

	/* trailing garbage after a complete query */
	uint8_t trail[sizeof(query_edns) + 1];
	memcpy(trail, query_edns, sizeof(query_edns));
	trail[sizeof(query_edns)] = 0;
	assert_int_equal(parse(trail, sizeof(trail), &q), -EPROTO);
}

static void
test_parse_query_tsig_skipped(void **state)
{
	/* OPT then a TSIG-like record with a compressed owner: skipped over, not an error */
	uint8_t pkt[sizeof(query_edns) + 2 + 10 + 3];
	struct dnsmsg_query q;
	size_t pos = sizeof(query_edns);
	(void)state;

	memcpy(pkt, query_edns, sizeof(query_edns));
	pkt[11] = 2;
	const uint8_t tsig[] = {0xc0, 12, 0, 250, 0, 255, 0, 0, 0, 0, 0, 3, 1, 2, 3};
	memcpy(pkt + pos, tsig, sizeof(tsig));
	assert_int_equal(parse(pkt, sizeof(pkt), &q), 0);
	assert_true(q.edns);
	assert_int_equal(q.udp_size, 4096);
}

static void
test_parse_query_every_prefix(void **state)
{
	struct dnsmsg_query q;
	(void)state;

	for (size_t n = 0; n < sizeof(query_edns); n++) {
		int r = parse(query_edns, n, &q);
		if (n < DNS_HDR_LEN) {
			assert_int_equal(r, -EBADMSG);
			continue;
		}
		assert_int_equal(r, -EPROTO);
		assert_int_equal(q.id, 0x1234);
		if (n < QUERY_QEND)
			assert_null(q.q.qname);
		else
			assert_non_null(q.q.qname);
	}
	assert_int_equal(parse(query_edns, sizeof(query_edns), &q), 0);
}

/* ---- reply_error, build_query ------------------------------------------------------------ */

static void
test_reply_error_plain(void **state)
{
	uint8_t pkt[QUERY_QEND], out[512];
	struct dnsmsg_query q;
	(void)state;

	memcpy(pkt, query_edns, sizeof(pkt));
	pkt[11] = 0;
	pkt[3] = 0x10;
	assert_int_equal(dnsmsg_parse_query(pkt, sizeof(pkt), &q), 0);
	int n = dnsmsg_reply_error(out, sizeof(out), &q, DNS_RCODE_SERVFAIL, 1232);
	assert_int_equal(n, QUERY_QEND);
	assert_int_equal(dnsmsg_id(out), 0x1234);
	assert_true(dnsmsg_qr(out));
	assert_true(dnsmsg_ra(out));
	assert_true(dnsmsg_rd(out));
	assert_true(dnsmsg_cd(out));
	assert_false(dnsmsg_aa(out));
	assert_false(dnsmsg_tc(out));
	assert_int_equal(dnsmsg_opcode(out), 0);
	assert_int_equal(dnsmsg_rcode(out), DNS_RCODE_SERVFAIL);
	assert_int_equal(dnsmsg_qdcount(out), 1);
	assert_int_equal(dnsmsg_ancount(out) + dnsmsg_nscount(out) + dnsmsg_arcount(out), 0);
	assert_memory_equal(out + DNS_HDR_LEN, pkt + DNS_HDR_LEN, QUERY_QEND - DNS_HDR_LEN);

	assert_int_equal(dnsmsg_reply_error(out, QUERY_QEND - 1, &q, 2, 0), -ENOSPC);

	/* in place, over the query itself */
	n = dnsmsg_reply_error(pkt, sizeof(pkt), &q, DNS_RCODE_REFUSED, 0);
	assert_int_equal(n, QUERY_QEND);
	assert_memory_equal(pkt + DNS_HDR_LEN, query_edns + DNS_HDR_LEN, QUERY_QEND - DNS_HDR_LEN);
	assert_int_equal(dnsmsg_rcode(pkt), DNS_RCODE_REFUSED);
}

static void
test_reply_error_edns(void **state)
{
	uint8_t pkt[sizeof(query_edns)], out[512];
	struct dnsmsg_query q;
	(void)state;

	memcpy(pkt, query_edns, sizeof(pkt));
	pkt[QUERY_QEND + 6] = 1; /* EDNS version 1 */
	assert_int_equal(dnsmsg_parse_query(pkt, sizeof(pkt), &q), 0);
	assert_int_equal(q.edns_version, 1);
	int n = dnsmsg_reply_error(out, sizeof(out), &q, DNS_RCODE_BADVERS, 1232);
	assert_int_equal(n, QUERY_QEND + 11);
	assert_int_equal(dnsmsg_rcode(out), DNS_RCODE_BADVERS & 15);
	assert_int_equal(dnsmsg_arcount(out), 1);
	const uint8_t *opt = out + QUERY_QEND;
	assert_int_equal(opt[0], 0);
	assert_int_equal(dnsmsg_get16(opt + 1), DNS_TYPE_OPT);
	assert_int_equal(dnsmsg_get16(opt + 3), 1232);
	assert_int_equal(opt[5], 1);			 /* extended rcode: BADVERS >> 4 */
	assert_int_equal(opt[6], 0);			 /* our version */
	assert_int_equal(dnsmsg_get16(opt + 7), 0x8000); /* DO echoed */
	assert_int_equal(dnsmsg_get16(opt + 9), 0);
	assert_int_equal(dnsmsg_reply_error(out, QUERY_QEND + 10, &q, 16, 1232), -ENOSPC);

	/* plain rcode with EDNS: extended bits zero */
	n = dnsmsg_reply_error(out, sizeof(out), &q, DNS_RCODE_FORMERR, 512);
	assert_int_equal(n, QUERY_QEND + 11);
	assert_int_equal(dnsmsg_rcode(out), DNS_RCODE_FORMERR);
	assert_int_equal(out[QUERY_QEND + 5], 0);
}

static void
test_reply_error_no_question(void **state)
{
	uint8_t pkt[DNS_HDR_LEN], out[64];
	struct dnsmsg_query q;
	(void)state;

	memcpy(pkt, query_edns, sizeof(pkt));
	pkt[5] = 0;
	pkt[11] = 0;
	pkt[2] = 5 << 3; /* UPDATE */
	assert_int_equal(dnsmsg_parse_query(pkt, sizeof(pkt), &q), -EOPNOTSUPP);
	int n = dnsmsg_reply_error(out, sizeof(out), &q, DNS_RCODE_NOTIMP, 1232);
	assert_int_equal(n, DNS_HDR_LEN);
	assert_int_equal(dnsmsg_qdcount(out), 0);
	assert_int_equal(dnsmsg_opcode(out), 5);
	assert_false(dnsmsg_rd(out));
	assert_int_equal(dnsmsg_rcode(out), DNS_RCODE_NOTIMP);
	assert_int_equal(dnsmsg_reply_error(out, DNS_HDR_LEN - 1, &q, 4, 0), -ENOSPC);
}

static void
test_build_query(void **state)
{
	uint8_t name[DNS_MAX_NAME], out[512];
	struct dnsmsg_question qu = {name, 0, DNS_TYPE_AAAA, DNS_CLASS_IN};
	struct dnsmsg_query q;
	(void)state;

	qu.qname_len = (uint16_t)wire("WwW.ExAmPlE.CoM", name);
	int n = dnsmsg_build_query(out, sizeof(out), 0xbeef, &qu, true, true, 1232);
	assert_int_equal(n, QUERY_QEND + 11);
	assert_int_equal(dnsmsg_parse_query(out, (size_t)n, &q), 0);
	assert_int_equal(q.id, 0xbeef);
	assert_true(q.rd);
	assert_true(q.cd);
	assert_true(q.edns);
	assert_true(q.do_bit);
	assert_int_equal(q.udp_size, 1232);
	assert_int_equal(q.q.qtype, DNS_TYPE_AAAA);
	assert_memory_equal(q.q.qname, www_example_com, sizeof(www_example_com));
	assert_int_equal(out[3] & 0x0f, 0);

	n = dnsmsg_build_query(out, sizeof(out), 1, &qu, false, true, 0);
	assert_int_equal(n, QUERY_QEND);
	assert_int_equal(dnsmsg_parse_query(out, (size_t)n, &q), 0);
	assert_false(q.edns);
	assert_false(q.cd);

	assert_int_equal(dnsmsg_build_query(out, QUERY_QEND + 10, 1, &qu, false, false, 512),
			 -ENOSPC);
	assert_int_equal(dnsmsg_build_query(out, QUERY_QEND - 1, 1, &qu, false, false, 0), -ENOSPC);
}

/* ---- replies made with the builder ---------------------------------------------------------- */

#define R_CNAME_RDATA 45 /* offset of "web" + pointer in the CNAME rdata */
#define R_NS_NAME 79	 /* offset of the NS target / SOA MNAME */

/*
 * www.example.com A: answer CNAME web.example.com (300) + web A (60); authority either
 * example.com NS ns1.example.com (3600) or a SOA (soa_ttl, minimum); additional ns1 A (10);
 * then an OPT. Names compressed the way servers do.
 */
static size_t
make_reply(uint8_t *buf, size_t cap, bool soa, uint32_t soa_ttl, uint32_t minimum)
{
	static const uint8_t cname[] = {3, 'w', 'e', 'b', 0xc0, 16};
	static const uint8_t web[] = {0xc0, R_CNAME_RDATA};
	static const uint8_t ex[] = {0xc0, 16};
	static const uint8_t ns1[] = {0xc0, R_NS_NAME};
	static const uint8_t addr[] = {192, 0, 2, 1};
	static const uint8_t mname_rname[] = {3,   'n', 's', '1', 0xc0, 16, 4,
					      'h', 'o', 's', 't', 0xc0, 16};
	uint8_t soa_rdata[6 + 7 + 20] = {0};
	struct dnsmsg_question q = {www_example_com, sizeof(www_example_com), DNS_TYPE_A,
				    DNS_CLASS_IN};
	struct dnsmsg_builder b;

	memcpy(soa_rdata, mname_rname, sizeof(mname_rname));
	dnsmsg_put32(soa_rdata + 13, 2024010101);
	dnsmsg_put32(soa_rdata + 29, minimum);
	dnsmsg_builder_init(&b, buf, cap, 0x1234, &q, true, false, false, DNS_RCODE_NOERROR);
	dnsmsg_builder_rr(&b, DNS_SECTION_ANSWER, NULL, 0, DNS_TYPE_CNAME, DNS_CLASS_IN, 300, cname,
			  sizeof(cname));
	dnsmsg_builder_rr(&b, DNS_SECTION_ANSWER, web, 2, DNS_TYPE_A, DNS_CLASS_IN, 60, addr, 4);
	if (soa)
		dnsmsg_builder_rr(&b, DNS_SECTION_AUTHORITY, ex, 2, DNS_TYPE_SOA, DNS_CLASS_IN,
				  soa_ttl, soa_rdata, sizeof(soa_rdata));
	else
		dnsmsg_builder_rr(&b, DNS_SECTION_AUTHORITY, ex, 2, DNS_TYPE_NS, DNS_CLASS_IN, 3600,
				  soa_rdata, 6);
	dnsmsg_builder_rr(&b, DNS_SECTION_ADDITIONAL, ns1, 2, DNS_TYPE_A, DNS_CLASS_IN, 10, addr,
			  4);
	int n = dnsmsg_builder_finish(&b);
	assert_true(n > 0);
	n = dnsmsg_append_opt(buf, (size_t)n, cap, 1232, true, 0);
	assert_true(n > 0);
	return (size_t)n;
}

static void
test_builder_layout(void **state)
{
	uint8_t buf[512];
	char text[256];
	size_t len = make_reply(buf, sizeof(buf), false, 0, 0);
	(void)state;

	assert_int_equal(len, 112);
	assert_true(dnsmsg_qr(buf));
	assert_true(dnsmsg_ra(buf));
	assert_true(dnsmsg_rd(buf));
	assert_false(dnsmsg_aa(buf));
	assert_int_equal(dnsmsg_qdcount(buf), 1);
	assert_int_equal(dnsmsg_ancount(buf), 2);
	assert_int_equal(dnsmsg_nscount(buf), 1);
	assert_int_equal(dnsmsg_arcount(buf), 2);
	assert_int_equal(buf[33], 0xc0);
	assert_int_equal(buf[34], 0x0c);
	assert_int_equal(dnsmsg_name_to_text(buf, len, R_CNAME_RDATA, text, sizeof(text)), 15);
	assert_string_equal(text, "web.example.com");
	assert_int_equal(dnsmsg_name_to_text(buf, len, R_NS_NAME, text, sizeof(text)), 15);
	assert_string_equal(text, "ns1.example.com");
	assert_int_equal(dnsmsg_question_end(buf, len), QUERY_QEND);
}

/* The short text of log lines: the records of make_reply() (CNAME, A; NS in the authority,
 * the OPT at the end) as dnsmasq shows them. */
static void
test_rdata_text(void **state)
{
	uint8_t buf[512];
	char text[256];
	size_t len = make_reply(buf, sizeof(buf), false, 0, 0);
	const char *want_plain[] = {"<CNAME>", "192.0.2.1", "<NS>", "192.0.2.1", "<OPT>"};
	const char *want_targets[] = {"web.example.com", "192.0.2.1", "ns1.example.com",
				      "192.0.2.1", "<OPT>"};
	struct dnsmsg_iter it;
	struct dnsmsg_rr rr;
	size_t n = 0;
	(void)state;

	assert_int_equal(dnsmsg_iter_init(&it, buf, len), 0);
	while (dnsmsg_iter_next(&it, &rr) == 0) {
		assert_true(n < ARRAY_SIZE(want_plain));
		assert_string_equal(dnsmsg_rdata_text(buf, len, &rr, false, text, sizeof(text)),
				    want_plain[n]);
		assert_string_equal(dnsmsg_rdata_text(buf, len, &rr, true, text, sizeof(text)),
				    want_targets[n]);
		n++;
	}
	assert_int_equal(n, ARRAY_SIZE(want_plain));
}

static void
test_builder_overflow(void **state)
{
	struct dnsmsg_question q = {www_example_com, sizeof(www_example_com), DNS_TYPE_A,
				    DNS_CLASS_IN};
	uint8_t buf[64 + 16];
	struct dnsmsg_builder b;
	uint8_t addr[4] = {1, 2, 3, 4};
	(void)state;

	/* 33 + 2 x 16 = 65 bytes needed, 64 given: the canary after them stays intact */
	memset(buf, 0xa5, sizeof(buf));
	dnsmsg_builder_init(&b, buf, 64, 7, &q, false, true, true, DNS_RCODE_NXDOMAIN);
	dnsmsg_builder_rr(&b, DNS_SECTION_ANSWER, NULL, 0, DNS_TYPE_A, DNS_CLASS_IN, 1, addr, 4);
	assert_false(b.overflow);
	dnsmsg_builder_rr(&b, DNS_SECTION_ANSWER, NULL, 0, DNS_TYPE_A, DNS_CLASS_IN, 1, addr, 4);
	assert_true(b.overflow);
	dnsmsg_builder_rr(&b, DNS_SECTION_ANSWER, NULL, 0, DNS_TYPE_A, DNS_CLASS_IN, 1, addr, 0);
	assert_int_equal(dnsmsg_builder_finish(&b), -ENOSPC);
	for (size_t i = 49; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0xa5);
	assert_true(dnsmsg_aa(buf));
	assert_true(dnsmsg_cd(buf));
	assert_int_equal(dnsmsg_rcode(buf), DNS_RCODE_NXDOMAIN);

	/* too small for the header or the question */
	dnsmsg_builder_init(&b, buf, 11, 7, &q, false, false, false, 0);
	assert_int_equal(dnsmsg_builder_finish(&b), -ENOSPC);
	dnsmsg_builder_init(&b, buf, 32, 7, &q, false, false, false, 0);
	assert_int_equal(dnsmsg_builder_finish(&b), -ENOSPC);
	dnsmsg_builder_init(&b, buf, 33, 7, &q, false, false, false, 0);
	assert_int_equal(dnsmsg_builder_finish(&b), 33);
}

static void
test_builder_order(void **state)
{
	struct dnsmsg_question q = {www_example_com, sizeof(www_example_com), DNS_TYPE_A,
				    DNS_CLASS_IN};
	uint8_t buf[256], before[256];
	struct dnsmsg_builder b;
	(void)state;

	dnsmsg_builder_init(&b, buf, sizeof(buf), 7, &q, true, false, false, 0);
	dnsmsg_builder_rr(&b, DNS_SECTION_AUTHORITY, NULL, 0, DNS_TYPE_NS, DNS_CLASS_IN, 1,
			  (const uint8_t *)"\0", 1);
	size_t len = b.len;
	memcpy(before, buf, sizeof(buf));
	dnsmsg_builder_rr(&b, DNS_SECTION_ANSWER, NULL, 0, DNS_TYPE_A, DNS_CLASS_IN, 1,
			  (const uint8_t *)"abcd", 4);
	assert_true(b.overflow);
	assert_int_equal(b.len, len);
	assert_memory_equal(buf, before, sizeof(buf));
	assert_int_equal(dnsmsg_builder_finish(&b), -ENOSPC);

	/* a question-less reply cannot point at the question */
	dnsmsg_builder_init(&b, buf, sizeof(buf), 7, NULL, true, false, false, 0);
	dnsmsg_builder_rr(&b, DNS_SECTION_ANSWER, NULL, 0, DNS_TYPE_A, DNS_CLASS_IN, 1,
			  (const uint8_t *)"abcd", 4);
	assert_int_equal(dnsmsg_builder_finish(&b), -ENOSPC);
	dnsmsg_builder_init(&b, buf, sizeof(buf), 7, NULL, true, false, false, 0);
	assert_int_equal(dnsmsg_builder_finish(&b), DNS_HDR_LEN);
	assert_int_equal(dnsmsg_qdcount(buf), 0);
}

/* ---- check_reply ------------------------------------------------------------------------- */

static void
test_check_reply(void **state)
{
	uint8_t buf[512], name[DNS_MAX_NAME];
	size_t len = make_reply(buf, sizeof(buf), false, 0, 0);
	struct dnsmsg_question q = {name, 0, DNS_TYPE_A, DNS_CLASS_IN};
	(void)state;

	q.qname_len = (uint16_t)wire("www.example.com", name);
	assert_int_equal(dnsmsg_check_reply(buf, len, 0x1234, &q), 0);
	assert_int_equal(dnsmsg_check_reply(buf, len, 0x1235, &q), -ESRCH);

	q.qname_len = (uint16_t)wire("WWW.Example.COM", name); /* 0x20 mixed case */
	assert_int_equal(dnsmsg_check_reply(buf, len, 0x1234, &q), 0);
	q.qname_len = (uint16_t)wire("www.example.net", name);
	assert_int_equal(dnsmsg_check_reply(buf, len, 0x1234, &q), -EPROTO);
	q.qname_len = (uint16_t)wire("www.example.com.au", name);
	assert_int_equal(dnsmsg_check_reply(buf, len, 0x1234, &q), -EPROTO);
	q.qname_len = (uint16_t)wire("www.example.com", name);
	q.qtype = DNS_TYPE_AAAA;
	assert_int_equal(dnsmsg_check_reply(buf, len, 0x1234, &q), -EPROTO);
	q.qtype = DNS_TYPE_A;
	q.qclass = DNS_CLASS_CH;
	assert_int_equal(dnsmsg_check_reply(buf, len, 0x1234, &q), -EPROTO);
	q.qclass = DNS_CLASS_IN;

	buf[2] &= 0x7f; /* QR=0: a query, not a reply */
	assert_int_equal(dnsmsg_check_reply(buf, len, 0x1234, &q), -EBADMSG);
	buf[2] |= 0x80;
	assert_int_equal(dnsmsg_check_reply(buf, 11, 0x1234, &q), -EBADMSG);
	assert_int_equal(dnsmsg_check_reply(buf, 20, 0x1234, &q), -EBADMSG);
	buf[5] = 0;
	assert_int_equal(dnsmsg_check_reply(buf, len, 0x1234, &q), -EPROTO);
}

/* A reply to www.example.com A (ID 0x1234) whose question name is a pointer to the answer's
 * owner, written out after it; or one label and a pointer to the rest of that owner. Either
 * reads as the right question, but the name is not where whoever copies it expects it. */
static void
test_check_reply_compressed_question(void **state)
{
	/* clang-format off */
	static const uint8_t whole[] = {
		0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0,
		0xc0, 18, 0, 1, 0, 1,					/* question at 12 */
		3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0,
		0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1};		/* answer at 18 */
	static const uint8_t partly[] = {
		0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0,
		3, 'w', 'w', 'w', 0xc0, 26, 0, 1, 0, 1,			/* question at 12 */
		3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0,
		0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1};		/* answer at 22 */
	static const uint8_t plain[] = {
		0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0,
		3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0,
		0, 1, 0, 1,
		0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1};
	/* clang-format on */
	uint8_t name[DNS_MAX_NAME];
	struct dnsmsg_question q = {name, 0, DNS_TYPE_A, DNS_CLASS_IN};
	(void)state;

	q.qname_len = (uint16_t)wire("www.example.com", name);
	/* the answer's owner compressed, as usual: fine */
	assert_int_equal(dnsmsg_check_reply(plain, sizeof(plain), 0x1234, &q), 0);
	/* a pointer in the question: refused as unreadable, like garbage */
	assert_int_equal(dnsmsg_check_reply(whole, sizeof(whole), 0x1234, &q), -EBADMSG);
	assert_int_equal(dnsmsg_check_reply(partly, sizeof(partly), 0x1234, &q), -EBADMSG);
}

/* ---- strip_opt, append_opt, truncate, question_end ------------------------------------- */

static void
test_strip_opt_last(void **state)
{
	uint8_t buf[512], plain[512];
	size_t len = make_reply(buf, sizeof(buf), false, 0, 0);
	(void)state;

	memcpy(plain, buf, len);
	assert_int_equal(dnsmsg_strip_opt(buf, len), (int)len - 11);
	assert_int_equal(dnsmsg_arcount(buf), 1);
	plain[11] = 1;
	assert_memory_equal(buf, plain, len - 11);
	/* nothing left to strip */
	assert_int_equal(dnsmsg_strip_opt(buf, len - 11), (int)len - 11);
	assert_memory_equal(buf, plain, len - 11);
}

/* Additional: [OPT], ns1.example.com A, then AAAA owned by a pointer to the A's owner. */
static size_t
make_opt_middle(uint8_t *buf, size_t cap, bool with_opt)
{
	static const uint8_t ns1[] = {3, 'n', 's', '1', 0xc0, 16};
	static const uint8_t root[] = {0};
	static const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8};
	static const uint8_t v4[4] = {192, 0, 2, 53};
	struct dnsmsg_question q = {www_example_com, sizeof(www_example_com), DNS_TYPE_A,
				    DNS_CLASS_IN};
	struct dnsmsg_builder b;

	dnsmsg_builder_init(&b, buf, cap, 0x1234, &q, true, false, false, 0);
	dnsmsg_builder_rr(&b, DNS_SECTION_ANSWER, NULL, 0, DNS_TYPE_A, DNS_CLASS_IN, 5, v4, 4);
	dnsmsg_builder_rr(&b, DNS_SECTION_AUTHORITY, NULL, 0, DNS_TYPE_NS, DNS_CLASS_IN, 5, ns1,
			  sizeof(ns1));
	if (with_opt)
		dnsmsg_builder_rr(&b, DNS_SECTION_ADDITIONAL, root, 1, DNS_TYPE_OPT, 4096, 0x8000,
				  NULL, 0);
	size_t a_owner = b.len;
	dnsmsg_builder_rr(&b, DNS_SECTION_ADDITIONAL, ns1, sizeof(ns1), DNS_TYPE_A, DNS_CLASS_IN, 5,
			  v4, 4);
	uint8_t ptr[2] = {0xc0, (uint8_t)a_owner};
	dnsmsg_builder_rr(&b, DNS_SECTION_ADDITIONAL, ptr, 2, DNS_TYPE_AAAA, DNS_CLASS_IN, 5, v6,
			  16);
	/* rdata names are moved too: an MX and an SRV whose targets are that same owner */
	uint8_t mx[4] = {0, 10, 0xc0, (uint8_t)a_owner};
	dnsmsg_builder_rr(&b, DNS_SECTION_ADDITIONAL, NULL, 0, DNS_TYPE_MX, DNS_CLASS_IN, 5, mx, 4);
	uint8_t srv[8] = {0, 1, 0, 2, 0, 53, 0xc0, (uint8_t)a_owner};
	dnsmsg_builder_rr(&b, DNS_SECTION_ADDITIONAL, NULL, 0, DNS_TYPE_SRV, DNS_CLASS_IN, 5, srv,
			  8);
	int n = dnsmsg_builder_finish(&b);
	assert_true(n > 0);
	return (size_t)n;
}

static void
test_strip_opt_middle(void **state)
{
	uint8_t buf[512], expect[512];
	char text[256];
	size_t len = make_opt_middle(buf, sizeof(buf), true);
	size_t elen = make_opt_middle(expect, sizeof(expect), false);
	struct dnsmsg_iter it;
	struct dnsmsg_rr rr;
	(void)state;

	assert_int_equal(elen, len - 11);
	assert_int_equal(dnsmsg_strip_opt(buf, len), (int)elen);
	assert_memory_equal(buf, expect, elen);
	assert_int_equal(dnsmsg_arcount(buf), 4);
	assert_int_equal(dnsmsg_iter_init(&it, buf, elen), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(dnsmsg_iter_next(&it, &rr), 0);
	assert_int_equal(rr.type, DNS_TYPE_AAAA);
	assert_int_equal(dnsmsg_name_to_text(buf, elen, rr.name_off, text, sizeof(text)), 15);
	assert_string_equal(text, "ns1.example.com");
	assert_int_equal(dnsmsg_iter_next(&it, &rr), 0);
	assert_int_equal(rr.type, DNS_TYPE_MX);
	assert_int_equal(dnsmsg_name_to_text(buf, elen, rr.rdata_off + 2, text, sizeof(text)), 15);
	assert_string_equal(text, "ns1.example.com");
	assert_int_equal(dnsmsg_iter_next(&it, &rr), 0);
	assert_int_equal(rr.type, DNS_TYPE_SRV);
	assert_int_equal(dnsmsg_name_to_text(buf, elen, rr.rdata_off + 6, text, sizeof(text)), 15);
	assert_string_equal(text, "ns1.example.com");
	assert_int_equal(dnsmsg_iter_next(&it, &rr), -ENOENT);
}

static void
test_strip_opt_errors(void **state)
{
	uint8_t buf[512], copy[512];
	size_t len = make_reply(buf, sizeof(buf), false, 0, 0);
	(void)state;

	/* two OPTs */
	size_t len2 = (size_t)dnsmsg_append_opt(buf, len, sizeof(buf), 512, false, 0);
	memcpy(copy, buf, len2);
	assert_int_equal(dnsmsg_strip_opt(buf, len2), -EPROTO);
	assert_memory_equal(buf, copy, len2);

	/* walking past the end */
	len = make_reply(buf, sizeof(buf), false, 0, 0);
	assert_int_equal(dnsmsg_strip_opt(buf, len - 1), -EPROTO);
	buf[11] = 3;
	assert_int_equal(dnsmsg_strip_opt(buf, len), -EPROTO);

	/* a name pointing into the OPT cannot survive its removal: refused, nothing changed */
	len = make_opt_middle(buf, sizeof(buf), true);
	size_t opt_off = 33 + 16 + 2 + 10 + 6;
	assert_int_equal(buf[opt_off], 0);
	assert_int_equal(dnsmsg_get16(buf + opt_off + 1), DNS_TYPE_OPT);
	size_t aaaa_owner = len - 20 - 16 - (2 + 10 + 16);
	assert_int_equal(buf[aaaa_owner], 0xc0);
	buf[aaaa_owner + 1] = (uint8_t)opt_off; /* -> the OPT's root */
	memcpy(copy, buf, len);
	assert_int_equal(dnsmsg_strip_opt(buf, len), -EPROTO);
	assert_memory_equal(buf, copy, len);

	/* the same from the SRV target, in rdata */
	len = make_opt_middle(buf, sizeof(buf), true);
	assert_int_equal(buf[len - 2], 0xc0);
	buf[len - 1] = (uint8_t)(opt_off + 3);
	memcpy(copy, buf, len);
	assert_int_equal(dnsmsg_strip_opt(buf, len), -EPROTO);
	assert_memory_equal(buf, copy, len);
}

static void
test_append_opt(void **state)
{
	uint8_t buf[512];
	size_t len = make_reply(buf, sizeof(buf), false, 0, 0);
	(void)state;

	len = (size_t)dnsmsg_strip_opt(buf, len);
	assert_int_equal(dnsmsg_append_opt(buf, len, len + 10, 1232, true, 0), -ENOSPC);
	assert_int_equal(dnsmsg_arcount(buf), 1);
	assert_int_equal(dnsmsg_append_opt(buf, len, len + 11, 1400, false, 1), (int)len + 11);
	assert_int_equal(dnsmsg_arcount(buf), 2);
	const uint8_t expect[] = {0, 0, 41, 0x05, 0x78, 1, 0, 0, 0, 0, 0};
	assert_memory_equal(buf + len, expect, sizeof(expect));
	assert_int_equal(dnsmsg_append_opt(buf, len, len + 11, 1400, true, 0), (int)len + 11);
	assert_int_equal(dnsmsg_get16(buf + len + 7), 0x8000);
	assert_int_equal(buf[len + 5], 0);
}

static void
test_truncate(void **state)
{
	uint8_t buf[512];
	size_t len = make_reply(buf, sizeof(buf), false, 0, 0);
	(void)state;

	int qend = dnsmsg_question_end(buf, len);
	assert_int_equal(qend, QUERY_QEND);
	assert_int_equal(dnsmsg_truncate(buf, (size_t)qend), QUERY_QEND);
	assert_true(dnsmsg_tc(buf));
	assert_true(dnsmsg_qr(buf));
	assert_true(dnsmsg_rd(buf));
	assert_int_equal(dnsmsg_qdcount(buf), 1);
	assert_int_equal(dnsmsg_ancount(buf) + dnsmsg_nscount(buf) + dnsmsg_arcount(buf), 0);
	assert_memory_equal(buf + DNS_HDR_LEN, www_example_com, sizeof(www_example_com));
}

static void
test_question_end(void **state)
{
	uint8_t pkt[sizeof(query_edns)];
	(void)state;

	memcpy(pkt, query_edns, sizeof(pkt));
	assert_int_equal(dnsmsg_question_end(pkt, sizeof(pkt)), QUERY_QEND);
	assert_int_equal(dnsmsg_question_end(pkt, QUERY_QEND), QUERY_QEND);
	assert_int_equal(dnsmsg_question_end(pkt, QUERY_QEND - 1), -EPROTO);
	assert_int_equal(dnsmsg_question_end(pkt, 11), -EPROTO);
	pkt[5] = 0;
	assert_int_equal(dnsmsg_question_end(pkt, sizeof(pkt)), DNS_HDR_LEN);
	pkt[5] = 2;
	assert_int_equal(dnsmsg_question_end(pkt, sizeof(pkt)), -EPROTO);
}

/* ---- iterator ------------------------------------------------------------------------------ */

static void
test_iter_walk(void **state)
{
	uint8_t buf[512];
	size_t len = make_reply(buf, sizeof(buf), false, 0, 0);
	const struct {
		enum dns_section section;
		uint16_t type;
		uint32_t ttl;
	} expect[] = {
		{DNS_SECTION_ANSWER, DNS_TYPE_CNAME, 300},
		{DNS_SECTION_ANSWER, DNS_TYPE_A, 60},
		{DNS_SECTION_AUTHORITY, DNS_TYPE_NS, 3600},
		{DNS_SECTION_ADDITIONAL, DNS_TYPE_A, 10},
		{DNS_SECTION_ADDITIONAL, DNS_TYPE_OPT, 0x8000},
	};
	struct dnsmsg_iter it;
	struct dnsmsg_rr rr;
	(void)state;

	assert_int_equal(dnsmsg_iter_init(&it, buf, len), 0);
	for (size_t i = 0; i < ARRAY_SIZE(expect); i++) {
		assert_int_equal(dnsmsg_iter_next(&it, &rr), 0);
		assert_int_equal(rr.section, expect[i].section);
		assert_int_equal(rr.type, expect[i].type);
		assert_int_equal(rr.ttl, expect[i].ttl);
		assert_int_equal(dnsmsg_get32(buf + rr.ttl_off), expect[i].ttl);
		assert_int_equal(rr.rdata_off, rr.ttl_off + 6);
		assert_true(rr.rdata_off + rr.rdlen <= len);
	}
	assert_int_equal(rr.rdata_off + rr.rdlen, len);
	assert_int_equal(dnsmsg_iter_next(&it, &rr), -ENOENT);
	assert_int_equal(dnsmsg_iter_next(&it, &rr), -ENOENT);

	/* an empty reply */
	assert_int_equal(dnsmsg_iter_init(&it, buf, DNS_HDR_LEN - 1), -EPROTO);
	uint8_t hdr[DNS_HDR_LEN] = {0};
	assert_int_equal(dnsmsg_iter_init(&it, hdr, sizeof(hdr)), 0);
	assert_int_equal(dnsmsg_iter_next(&it, &rr), -ENOENT);
}

static void
test_iter_malformed(void **state)
{
	uint8_t buf[512];
	size_t len;
	struct dnsmsg_iter it;
	struct dnsmsg_rr rr;
	char text[256];
	(void)state;

	/* the answer's owner points at itself */
	len = make_reply(buf, sizeof(buf), false, 0, 0);
	buf[34] = 33;
	assert_int_equal(dnsmsg_iter_init(&it, buf, len), 0);
	assert_int_equal(dnsmsg_iter_next(&it, &rr), -EPROTO);
	assert_int_equal(dnsmsg_iter_next(&it, &rr), -EPROTO); /* and stays failed */
	assert_int_equal(dnsmsg_name_to_text(buf, len, 33, text, sizeof(text)), -EPROTO);

	/* two pointers pointing at each other */
	len = make_reply(buf, sizeof(buf), false, 0, 0);
	buf[R_CNAME_RDATA + 5] = 51; /* CNAME's tail -> the A owner, which -> the CNAME target */
	assert_int_equal(dnsmsg_iter_init(&it, buf, len), 0);
	assert_int_equal(dnsmsg_iter_next(&it, &rr), 0);
	assert_int_equal(dnsmsg_iter_next(&it, &rr), -EPROTO);

	/* a label running round a loop: fails on the 255-byte limit */
	len = make_reply(buf, sizeof(buf), false, 0, 0);
	buf[R_CNAME_RDATA + 5] = R_CNAME_RDATA;
	assert_int_equal(dnsmsg_name_to_text(buf, len, R_CNAME_RDATA, text, sizeof(text)), -EPROTO);

	/* the question name points at itself */
	len = make_reply(buf, sizeof(buf), false, 0, 0);
	buf[12] = 0xc0;
	buf[13] = 12;
	assert_int_equal(dnsmsg_iter_init(&it, buf, len), -EPROTO);

	/* a pointer beyond the end */
	len = make_reply(buf, sizeof(buf), false, 0, 0);
	buf[34] = 0xff;
	assert_int_equal(dnsmsg_iter_init(&it, buf, len), 0);
	assert_int_equal(dnsmsg_iter_next(&it, &rr), -EPROTO);

	/* rdlength past the end */
	len = make_reply(buf, sizeof(buf), false, 0, 0);
	dnsmsg_put16(buf + len - 2, 1); /* the OPT claims one byte of rdata */
	assert_int_equal(dnsmsg_iter_init(&it, buf, len), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(dnsmsg_iter_next(&it, &rr), 0);
	assert_int_equal(dnsmsg_iter_next(&it, &rr), -EPROTO);

	/* more records counted than present */
	len = make_reply(buf, sizeof(buf), false, 0, 0);
	buf[11] = 3;
	assert_int_equal(dnsmsg_iter_init(&it, buf, len), 0);
	int r;
	while ((r = dnsmsg_iter_next(&it, &rr)) == 0)
		;
	assert_int_equal(r, -EPROTO);

	/* a label of 64 */
	len = make_reply(buf, sizeof(buf), false, 0, 0);
	buf[R_CNAME_RDATA] = 64;
	assert_int_equal(dnsmsg_name_to_text(buf, len, R_CNAME_RDATA, text, sizeof(text)), -EPROTO);
}

/* ---- scan_ttls ----------------------------------------------------------------------------- */

static void
test_scan_ttls_answer(void **state)
{
	uint8_t buf[512];
	size_t len = make_reply(buf, sizeof(buf), false, 0, 0);
	uint16_t offs[8];
	struct dnsmsg_ttl_info info;
	const uint32_t ttls[] = {300, 60, 3600, 10};
	(void)state;

	assert_int_equal(dnsmsg_scan_ttls(buf, len, offs, ARRAY_SIZE(offs), &info), 0);
	assert_int_equal(info.n_offs, 4);
	for (unsigned i = 0; i < info.n_offs; i++)
		assert_int_equal(dnsmsg_get32(buf + offs[i]), ttls[i]);
	assert_int_equal(info.min_ttl, 60); /* the additional's 10 does not count */
	assert_false(info.has_soa);

	assert_int_equal(dnsmsg_scan_ttls(buf, len, offs, 3, &info), -E2BIG);
	assert_int_equal(dnsmsg_scan_ttls(buf, len, offs, 4, &info), 0); /* OPT not counted */
	assert_int_equal(dnsmsg_scan_ttls(buf, len - 1, offs, 8, &info), -EPROTO);

	/* the header alone: no records */
	uint8_t hdr[DNS_HDR_LEN] = {0};
	assert_int_equal(dnsmsg_scan_ttls(hdr, sizeof(hdr), offs, 8, &info), 0);
	assert_int_equal(info.min_ttl, UINT32_MAX);
	assert_int_equal(info.n_offs, 0);
	assert_false(info.has_soa);

	/* RFC 2181: a TTL with the top bit set counts as zero */
	dnsmsg_put32(buf + offs[1], 0x80000001u);
	assert_int_equal(dnsmsg_scan_ttls(buf, len, offs, 8, &info), 0);
	assert_int_equal(info.min_ttl, 0);
}

/* A negative reply: only the SOA in authority (names compressed), then an OPT. */
static size_t
make_negative(uint8_t *buf, size_t cap, unsigned rcode, uint32_t soa_ttl, uint32_t minimum)
{
	uint8_t soa[6 + 7 + 20] = {3, 'n', 's', '1', 0xc0, 16, 4, 'h', 'o', 's', 't', 0xc0, 16};
	static const uint8_t ex[] = {0xc0, 16};
	struct dnsmsg_question q = {www_example_com, sizeof(www_example_com), DNS_TYPE_A,
				    DNS_CLASS_IN};
	struct dnsmsg_builder b;

	dnsmsg_put32(soa + 29, minimum);
	dnsmsg_builder_init(&b, buf, cap, 1, &q, true, false, true, rcode);
	dnsmsg_builder_rr(&b, DNS_SECTION_AUTHORITY, ex, 2, DNS_TYPE_SOA, DNS_CLASS_IN, soa_ttl,
			  soa, sizeof(soa));
	int n = dnsmsg_builder_finish(&b);
	assert_true(n > 0);
	n = dnsmsg_append_opt(buf, (size_t)n, cap, 1232, false, 0);
	assert_true(n > 0);
	return (size_t)n;
}

static void
test_scan_ttls_negative(void **state)
{
	uint8_t buf[512];
	uint16_t offs[8];
	struct dnsmsg_ttl_info info;
	size_t len;
	(void)state;

	/* NXDOMAIN, SOA TTL 900 > MINIMUM 300 */
	len = make_negative(buf, sizeof(buf), DNS_RCODE_NXDOMAIN, 900, 300);
	assert_int_equal(dnsmsg_scan_ttls(buf, len, offs, 8, &info), 0);
	assert_true(info.has_soa);
	assert_int_equal(info.neg_ttl, 300);
	assert_int_equal(info.min_ttl, 900); /* no answers: over all records */
	assert_int_equal(info.n_offs, 1);
	assert_int_equal(dnsmsg_get32(buf + offs[0]), 900);

	/* NODATA, SOA TTL 60 < MINIMUM 300 */
	len = make_negative(buf, sizeof(buf), DNS_RCODE_NOERROR, 60, 300);
	assert_int_equal(dnsmsg_scan_ttls(buf, len, offs, 8, &info), 0);
	assert_true(info.has_soa);
	assert_int_equal(info.neg_ttl, 60);
	assert_int_equal(info.min_ttl, 60);

	/* a SOA with answers too (the CNAME-to-NXDOMAIN shape) */
	len = make_reply(buf, sizeof(buf), true, 7200, 120);
	assert_int_equal(dnsmsg_scan_ttls(buf, len, offs, 8, &info), 0);
	assert_true(info.has_soa);
	assert_int_equal(info.neg_ttl, 120);
	assert_int_equal(info.min_ttl, 60);

	/* SOA rdata one byte short, or with the MNAME running out of it */
	len = make_negative(buf, sizeof(buf), DNS_RCODE_NXDOMAIN, 900, 300);
	size_t rdlen_off = DNS_HDR_LEN + sizeof(www_example_com) + 4 + 2 + 8;
	assert_int_equal(dnsmsg_get16(buf + rdlen_off), 33);
	dnsmsg_put16(buf + rdlen_off, 32);
	buf[11] = 0; /* drop the OPT count so the shortened record ends the message */
	assert_int_equal(dnsmsg_scan_ttls(buf, len - 12, offs, 8, &info), -EPROTO);
	dnsmsg_put16(buf + rdlen_off, 3);
	assert_int_equal(dnsmsg_scan_ttls(buf, rdlen_off + 2 + 3, offs, 8, &info), -EPROTO);
}

/* ---- names ----------------------------------------------------------------------------------- */

static void
test_name_from_text(void **state)
{
	uint8_t out[DNS_MAX_NAME + 8];
	char text[600];
	(void)state;

	assert_int_equal(dnsmsg_name_from_text("www.example.com", out, sizeof(out)), 17);
	assert_memory_equal(out, www_example_com, 17);
	assert_int_equal(dnsmsg_name_from_text("www.example.com.", out, sizeof(out)), 17);
	assert_memory_equal(out, www_example_com, 17);
	assert_int_equal(dnsmsg_name_from_text(".", out, sizeof(out)), 1);
	assert_int_equal(out[0], 0);
	out[0] = 9;
	assert_int_equal(dnsmsg_name_from_text("", out, sizeof(out)), 1);
	assert_int_equal(out[0], 0);

	assert_int_equal(dnsmsg_name_from_text("a..b", out, sizeof(out)), -EINVAL);
	assert_int_equal(dnsmsg_name_from_text(".a", out, sizeof(out)), -EINVAL);
	assert_int_equal(dnsmsg_name_from_text("a..", out, sizeof(out)), -EINVAL);
	assert_int_equal(dnsmsg_name_from_text("..", out, sizeof(out)), -EINVAL);
	assert_int_equal(dnsmsg_name_from_text("a\\", out, sizeof(out)), -EINVAL);
	assert_int_equal(dnsmsg_name_from_text("a\\25", out, sizeof(out)), -EINVAL);
	assert_int_equal(dnsmsg_name_from_text("a\\256", out, sizeof(out)), -EINVAL);
	assert_int_equal(dnsmsg_name_from_text("a\\2x5", out, sizeof(out)), -EINVAL);

	const uint8_t esc[] = {3, 'a', '.', 'b', 3, 'A', 0, '\\', 0};
	assert_int_equal(dnsmsg_name_from_text("a\\.b.\\065\\000\\\\", out, sizeof(out)), 9);
	assert_memory_equal(out, esc, sizeof(esc));

	/* labels: 63 fine, 64 not */
	memset(text, 'x', 63);
	strcpy(text + 63, ".com");
	assert_int_equal(dnsmsg_name_from_text(text, out, sizeof(out)), 1 + 63 + 4 + 1);
	memset(text, 'x', 64);
	strcpy(text + 64, ".com");
	assert_int_equal(dnsmsg_name_from_text(text, out, sizeof(out)), -EINVAL);

	/* names: 255 wire bytes fine (3 x 63 + 61), 256 not, with or without the final dot */
	size_t p = 0;
	for (int i = 0; i < 3; i++) {
		memset(text + p, 'y', 63);
		p += 63;
		text[p++] = '.';
	}
	memset(text + p, 'z', 61);
	p += 61;
	text[p] = '\0';
	assert_int_equal(dnsmsg_name_from_text(text, out, sizeof(out)), 255);
	assert_int_equal(dnsmsg_name_from_text(text, out, 254), -ENOSPC);
	strcpy(text + p, ".");
	assert_int_equal(dnsmsg_name_from_text(text, out, sizeof(out)), 255);
	strcpy(text + p, "z");
	assert_int_equal(dnsmsg_name_from_text(text, out, sizeof(out)), -EINVAL);
	strcpy(text + p, "\\122.");
	assert_int_equal(dnsmsg_name_from_text(text, out, sizeof(out)), -EINVAL);
	text[p - 1] = '\0'; /* 60: 254 */
	assert_int_equal(dnsmsg_name_from_text(text, out, sizeof(out)), 254);
	strcpy(text + p - 1, ".a"); /* a new label past 255 */
	assert_int_equal(dnsmsg_name_from_text(text, out, sizeof(out)), -EINVAL);
}

/* wire -> text -> wire, and text -> wire -> text when `canon` is the canonical spelling */
static void
round_trip(const uint8_t *name, size_t len, const char *expect)
{
	char text[1100];
	uint8_t back[DNS_MAX_NAME];

	assert_int_equal(dnsmsg_name_to_text(name, len, 0, text, sizeof(text)), strlen(expect));
	assert_string_equal(text, expect);
	assert_int_equal(dnsmsg_name_from_text(text, back, sizeof(back)), len);
	assert_memory_equal(back, name, len);
}

static void
test_name_text_round_trip(void **state)
{
	const uint8_t root[] = {0};
	const uint8_t odd[] = {7, 'a', '.', 'b', '\\', ' ', 0, 0xff, 3, 'c', 'O', 'm', 0};
	const uint8_t punct[] = {5, '"', '(', ';', '@', '~', 0};
	uint8_t all[DNS_MAX_NAME];
	char text[1100];
	(void)state;

	round_trip(www_example_com, sizeof(www_example_com), "www.example.com");
	round_trip(root, sizeof(root), ".");
	round_trip(odd, sizeof(odd), "a\\.b\\\\\\032\\000\\255.cOm");
	round_trip(punct, sizeof(punct), "\"(;@~");

	/* every byte value, in 4 labels of 63 plus one of 1 (4 x 64 + 2 = 258: too long), so
	 * split over two names */
	for (int half = 0; half < 2; half++) {
		size_t p = 0;
		for (int l = 0; l < 2; l++) {
			all[p++] = 63;
			for (int i = 0; i < 63; i++)
				all[p++] = (uint8_t)(half * 128 + l * 64 + i);
		}
		all[p++] = 2;
		all[p++] = (uint8_t)(half * 128 + 126);
		all[p++] = (uint8_t)(half * 128 + 127);
		all[p++] = 0;
		assert_int_equal(dnsmsg_name_to_text(all, p, 0, text, sizeof(text)) > 0, 1);
		uint8_t back[DNS_MAX_NAME];
		assert_int_equal(dnsmsg_name_from_text(text, back, sizeof(back)), p);
		assert_memory_equal(back, all, p);
	}
}

static void
test_name_to_text_bounds(void **state)
{
	char text[32];
	(void)state;

	/* "www.example.com" needs 16 bytes with its NUL */
	memset(text, 'Q', sizeof(text));
	assert_int_equal(dnsmsg_name_to_text(www_example_com, 17, 0, text, 15), -ENOSPC);
	for (size_t i = 15; i < sizeof(text); i++)
		assert_int_equal(text[i], 'Q');
	assert_int_equal(dnsmsg_name_to_text(www_example_com, 17, 0, text, 16), 15);
	assert_string_equal(text, "www.example.com");
	assert_int_equal(dnsmsg_name_to_text(www_example_com, 17, 0, text, 4), -ENOSPC);
	assert_int_equal(dnsmsg_name_to_text(www_example_com, 17, 0, text, 1), -ENOSPC);
	assert_int_equal(dnsmsg_name_to_text((const uint8_t *)"", 1, 0, text, 2), 1);
	assert_int_equal(dnsmsg_name_to_text((const uint8_t *)"", 1, 0, text, 1), -ENOSPC);
	/* an escape that does not fit whole */
	const uint8_t sp[] = {1, ' ', 0};
	assert_int_equal(dnsmsg_name_to_text(sp, sizeof(sp), 0, text, 4), -ENOSPC);
	assert_int_equal(dnsmsg_name_to_text(sp, sizeof(sp), 0, text, 5), 4);
	/* running off the end of the buffer */
	assert_int_equal(dnsmsg_name_to_text(www_example_com, 16, 0, text, sizeof(text)), -EPROTO);
	assert_int_equal(dnsmsg_name_to_text(www_example_com, 17, 17, text, sizeof(text)), -EPROTO);
}

static void
test_name_in_zone(void **state)
{
	uint8_t n[DNS_MAX_NAME], z[DNS_MAX_NAME];
	size_t nl, zl;
	(void)state;

#define IN_ZONE(name, zone)                                                                        \
	(nl = wire(name, n), zl = wire(zone, z), dnsmsg_name_in_zone(n, nl, z, zl))
	assert_true(IN_ZONE("example.com", "example.com"));
	assert_true(IN_ZONE("www.example.com", "example.com"));
	assert_true(IN_ZONE("a.b.c.example.com", "example.com"));
	assert_true(IN_ZONE("WWW.EXAMPLE.com", "Example.COM"));
	assert_false(IN_ZONE("xexample.com", "example.com"));
	assert_false(IN_ZONE("www.xexample.com", "example.com"));
	assert_false(IN_ZONE("example.com", "www.example.com"));
	assert_false(IN_ZONE("example.org", "example.com"));
	assert_false(IN_ZONE("com", "example.com"));
	/* a label that merely contains the zone's bytes */
	assert_false(IN_ZONE("a\\007example.com", "example.com"));
	assert_true(IN_ZONE("example.com", "."));
	assert_true(IN_ZONE(".", "."));
	assert_false(IN_ZONE(".", "com"));
	assert_true(IN_ZONE("10.in-addr.arpa", "in-addr.arpa"));
#undef IN_ZONE
}

static void
test_name_misc(void **state)
{
	uint8_t n[DNS_MAX_NAME], lower[DNS_MAX_NAME];
	size_t nl;
	char buf[16];
	(void)state;

	assert_int_equal(dnsmsg_name_labels((const uint8_t *)"", 1), 0);
	nl = wire("example.com", n);
	assert_int_equal(dnsmsg_name_labels(n, nl), 2);
	nl = wire("a.b.c.d.e", n);
	assert_int_equal(dnsmsg_name_labels(n, nl), 5);
	assert_int_equal(dnsmsg_name_labels(n, 4), 2); /* bounded by len */

	nl = wire("WwW.Ex-AmPlE.CoM", n);
	dnsmsg_name_lower(lower, n, nl);
	uint8_t expect[DNS_MAX_NAME];
	assert_int_equal(wire("www.ex-ample.com", expect), nl);
	assert_memory_equal(lower, expect, nl);
	assert_true(dnsmsg_name_equal(n, nl, expect, nl));
	assert_false(dnsmsg_name_equal(n, nl, expect, nl - 1));
	expect[1] = 'v';
	assert_false(dnsmsg_name_equal(n, nl, expect, nl));
	/* '@' (0x40) and '`' (0x60) are not letters: not equal, '[' vs '{' neither */
	assert_false(dnsmsg_name_equal((const uint8_t *)"\1@", 2, (const uint8_t *)"\1`", 2));
	assert_false(dnsmsg_name_equal((const uint8_t *)"\1[", 2, (const uint8_t *)"\1{", 2));

	assert_string_equal(dnsmsg_type_name(DNS_TYPE_A, buf, sizeof(buf)), "A");
	assert_string_equal(dnsmsg_type_name(DNS_TYPE_AAAA, buf, sizeof(buf)), "AAAA");
	assert_string_equal(dnsmsg_type_name(DNS_TYPE_SOA, buf, sizeof(buf)), "SOA");
	assert_string_equal(dnsmsg_type_name(DNS_TYPE_OPT, buf, sizeof(buf)), "OPT");
	assert_string_equal(dnsmsg_type_name(DNS_TYPE_ANY, buf, sizeof(buf)), "ANY");
	assert_string_equal(dnsmsg_type_name(65, buf, sizeof(buf)), "HTTPS");
	assert_string_equal(dnsmsg_type_name(257, buf, sizeof(buf)), "CAA");
	assert_string_equal(dnsmsg_type_name(65535, buf, 12), "TYPE65535");
	assert_string_equal(dnsmsg_type_name(0, buf, sizeof(buf)), "TYPE0");
}

/* ---- mutations ----------------------------------------------------------------------------- */

/* Feed one damaged message to every parser; only the invariants of a success are checked. */
static void
fuzz_one(const uint8_t *src, size_t len)
{
	uint8_t *p = exact_copy(src, len);
	struct dnsmsg_query q;
	struct dnsmsg_iter it;
	struct dnsmsg_rr rr;
	struct dnsmsg_ttl_info info;
	uint16_t offs[16];
	char text[1100];
	int r;

	r = dnsmsg_parse_query(p, len, &q);
	assert_true(r == 0 || r == -EBADMSG || r == -EPROTO || r == -EOPNOTSUPP);
	if (r == 0)
		assert_true(q.question_end <= len && q.udp_size >= 512);
	if (dnsmsg_iter_init(&it, p, len) == 0) {
		unsigned n = 0;
		while ((r = dnsmsg_iter_next(&it, &rr)) == 0 && ++n < 100000)
			assert_true(rr.rdata_off + rr.rdlen <= len && rr.ttl_off + 4 <= len);
		assert_true(r == -ENOENT || r == -EPROTO);
	}
	r = dnsmsg_scan_ttls(p, len, offs, ARRAY_SIZE(offs), &info);
	assert_true(r == 0 || r == -EPROTO || r == -E2BIG);
	for (unsigned i = 0; r == 0 && i < info.n_offs; i++)
		assert_true(offs[i] + 4u <= len);
	struct dnsmsg_question qu = {www_example_com, sizeof(www_example_com), DNS_TYPE_A,
				     DNS_CLASS_IN};
	r = dnsmsg_check_reply(p, len, 0x1234, &qu);
	assert_true(r == 0 || r == -EBADMSG || r == -ESRCH || r == -EPROTO);
	r = dnsmsg_question_end(p, len);
	assert_true(r == -EPROTO || (r >= DNS_HDR_LEN && (size_t)r <= len));
	for (size_t off = 0; off < len; off += 7)
		dnsmsg_name_to_text(p, len, off, text, sizeof(text));
	r = dnsmsg_strip_opt(p, len);
	assert_true(r == -EPROTO || (r >= DNS_HDR_LEN && (size_t)r <= len));
	if (r > 0 && dnsmsg_iter_init(&it, p, (size_t)r) == 0)
		while (dnsmsg_iter_next(&it, &rr) == 0)
			assert_true(rr.type != DNS_TYPE_OPT);
	free(p);
}

static void
fuzz_mutations(const uint8_t *src, size_t len)
{
	uint8_t m[512];

	assert_true(len <= sizeof(m));
	for (size_t i = 0; i < len; i++) {
		const uint8_t o = src[i];
		/* clang-format off */
		const uint8_t vals[] = { 0x00, 0xff, 0xc0, 0x3f, 0x40, 0x0c,
					 (uint8_t)(o ^ 1), (uint8_t)(o + 1), (uint8_t)(o - 1) };
		/* clang-format on */
		for (size_t v = 0; v < ARRAY_SIZE(vals); v++) {
			memcpy(m, src, len);
			m[i] = vals[v];
			fuzz_one(m, len);
		}
	}
	for (size_t n = 0; n <= len; n++)
		fuzz_one(src, n);
}

static void
test_fuzz_replies(void **state)
{
	uint8_t buf[512];
	size_t len;
	(void)state;

	len = make_reply(buf, sizeof(buf), true, 900, 300);
	fuzz_mutations(buf, len);
	len = make_reply(buf, sizeof(buf), false, 0, 0);
	fuzz_mutations(buf, len);
	len = make_opt_middle(buf, sizeof(buf), true);
	fuzz_mutations(buf, len);
	fuzz_mutations(query_edns, sizeof(query_edns));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_query_ok),
		cmocka_unit_test(test_parse_query_no_edns),
		cmocka_unit_test(test_parse_query_edns_fields),
		cmocka_unit_test(test_parse_query_header_errors),
		cmocka_unit_test(test_parse_query_proto_errors),
		cmocka_unit_test(test_parse_query_compressed_qname),
		cmocka_unit_test(test_parse_query_long_name),
		cmocka_unit_test(test_parse_query_opt_errors),
		cmocka_unit_test(test_parse_query_tsig_skipped),
		cmocka_unit_test(test_parse_query_every_prefix),
		cmocka_unit_test(test_reply_error_plain),
		cmocka_unit_test(test_reply_error_edns),
		cmocka_unit_test(test_reply_error_no_question),
		cmocka_unit_test(test_build_query),
		cmocka_unit_test(test_builder_layout),
		cmocka_unit_test(test_rdata_text),
		cmocka_unit_test(test_builder_overflow),
		cmocka_unit_test(test_builder_order),
		cmocka_unit_test(test_check_reply),
		cmocka_unit_test(test_check_reply_compressed_question),
		cmocka_unit_test(test_strip_opt_last),
		cmocka_unit_test(test_strip_opt_middle),
		cmocka_unit_test(test_strip_opt_errors),
		cmocka_unit_test(test_append_opt),
		cmocka_unit_test(test_truncate),
		cmocka_unit_test(test_question_end),
		cmocka_unit_test(test_iter_walk),
		cmocka_unit_test(test_iter_malformed),
		cmocka_unit_test(test_scan_ttls_answer),
		cmocka_unit_test(test_scan_ttls_negative),
		cmocka_unit_test(test_name_from_text),
		cmocka_unit_test(test_name_text_round_trip),
		cmocka_unit_test(test_name_to_text_bounds),
		cmocka_unit_test(test_name_in_zone),
		cmocka_unit_test(test_name_misc),
		cmocka_unit_test(test_fuzz_replies),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
