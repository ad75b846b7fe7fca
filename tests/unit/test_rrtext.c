/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_rrtext.c - unit tests for the zone-file text of records (rrtext.c, through ldns): the
 * answer records of a hand-built message as ldns prints them with single spaces, TTLs lowered
 * to the cap given, the authority section on request, the per-call maximum (the count still
 * tells how many there were) and a message ldns cannot read refused with -EPROTO.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "daemon/rrtext.h"

/* "a.test." A? answered with A 192.0.2.1 (TTL 300) and TXT "hi there" (TTL 30), a SOA in the
 * authority section (TTL 3600). */
/* clang-format off */
static const uint8_t test_rrtext_msg[] = {
	0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 1, 0, 0,
	1, 'a', 4, 't', 'e', 's', 't', 0, 0, 1, 0, 1,
	0xc0, 12, 0, 1, 0, 1, 0, 0, 0x01, 0x2c, 0, 4, 192, 0, 2, 1,
	0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 30, 0, 9, 8, 'h', 'i', ' ', 't', 'h', 'e', 'r', 'e',
	0xc0, 14, 0, 6, 0, 1, 0, 0, 0x0e, 0x10, 0, 29,
	2, 'n', 's', 0xc0, 14, 1, 'h', 0xc0, 14, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3,
	0, 0, 0, 60,
};
/* clang-format on */

struct test_rrtext_out {
	unsigned n;
	char lines[4][256];
};

static void
test_rrtext_collect(void *ctx, const char *rr)
{
	struct test_rrtext_out *o = ctx;

	if (o->n < 4)
		snprintf(o->lines[o->n], sizeof(o->lines[0]), "%s", rr);
	o->n++;
}

static void
test_rrtext_answer(void **state)
{
	struct test_rrtext_out o = {0};

	(void)state;
	assert_int_equal(rrtext_foreach(test_rrtext_msg, sizeof(test_rrtext_msg), RRTEXT_ANSWER,
					UINT32_MAX, 10, test_rrtext_collect, &o),
			 2);
	assert_int_equal(o.n, 2);
	assert_string_equal(o.lines[0], "a.test. 300 IN A 192.0.2.1");
	assert_string_equal(o.lines[1], "a.test. 30 IN TXT \"hi there\"");
}

static void
test_rrtext_ttl_cap_and_authority(void **state)
{
	struct test_rrtext_out o = {0};

	(void)state;
	assert_int_equal(rrtext_foreach(test_rrtext_msg, sizeof(test_rrtext_msg),
					RRTEXT_ANSWER | RRTEXT_AUTHORITY, 100, 10,
					test_rrtext_collect, &o),
			 3);
	assert_string_equal(o.lines[0], "a.test. 100 IN A 192.0.2.1");
	assert_string_equal(o.lines[1], "a.test. 30 IN TXT \"hi there\"");
	assert_string_equal(o.lines[2], "test. 100 IN SOA ns.test. h.test. 7 1 2 3 60");
}

static void
test_rrtext_max(void **state)
{
	struct test_rrtext_out o = {0};

	(void)state;
	assert_int_equal(rrtext_foreach(test_rrtext_msg, sizeof(test_rrtext_msg),
					RRTEXT_ANSWER | RRTEXT_AUTHORITY, UINT32_MAX, 1,
					test_rrtext_collect, &o),
			 3);
	assert_int_equal(o.n, 1);
	assert_int_equal(rrtext_foreach(test_rrtext_msg, sizeof(test_rrtext_msg), RRTEXT_ANSWER,
					UINT32_MAX, 0, test_rrtext_collect, &o),
			 2);
	assert_int_equal(o.n, 1);
}

static void
test_rrtext_garbage(void **state)
{
	struct test_rrtext_out o = {0};

	(void)state;
	/* cut inside the first answer record */
	assert_int_equal(rrtext_foreach(test_rrtext_msg, 30, RRTEXT_ANSWER, UINT32_MAX, 10,
					test_rrtext_collect, &o),
			 -EPROTO);
	assert_int_equal(rrtext_foreach(test_rrtext_msg, 5, RRTEXT_ANSWER, UINT32_MAX, 10,
					test_rrtext_collect, &o),
			 -EPROTO);
	assert_int_equal(o.n, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rrtext_answer),
		cmocka_unit_test(test_rrtext_ttl_cap_and_authority),
		cmocka_unit_test(test_rrtext_max),
		cmocka_unit_test(test_rrtext_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
