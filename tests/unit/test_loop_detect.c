/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_loop_detect.c - the probe names of --dns-loop-detect: dnsmasq's "<hex>.test" form with
 * 16 hex digits, written and recognised (the daemon side is tests/integration/test_loop_detect.py).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "kubemasq/dnsmsg.h"
#include "daemon/loop_detect.h"

static void
test_name_round_trip(void **state)
{
	static const uint64_t uids[] = {0, 1, 0x0123456789abcdefULL, UINT64_MAX};
	uint8_t name[LOOP_DETECT_NAME_LEN];
	char text[64];
	uint64_t back;
	(void)state;

	loop_detect_name(0x0123456789abcdefULL, name);
	assert_true(dnsmsg_name_to_text(name, sizeof(name), 0, text, sizeof(text)) >= 0);
	assert_string_equal(text, "0123456789abcdef.test");
	for (size_t i = 0; i < sizeof(uids) / sizeof(uids[0]); i++) {
		loop_detect_name(uids[i], name);
		assert_true(loop_detect_parse(name, sizeof(name), &back));
		assert_true(back == uids[i]);
	}
}

static void
test_other_names_are_not_probes(void **state)
{
	uint8_t name[LOOP_DETECT_NAME_LEN + 8];
	uint64_t uid = 7;
	(void)state;

	loop_detect_name(42, name);
	assert_false(loop_detect_parse(name, LOOP_DETECT_NAME_LEN - 1, &uid));
	name[5] = 'g'; /* not a hex digit */
	assert_false(loop_detect_parse(name, LOOP_DETECT_NAME_LEN, &uid));
	loop_detect_name(42, name);
	name[5] = 'A'; /* names arrive lower-cased: an upper-case digit is someone else's */
	assert_false(loop_detect_parse(name, LOOP_DETECT_NAME_LEN, &uid));
	loop_detect_name(42, name);
	name[18] = 'b'; /* "best" */
	assert_false(loop_detect_parse(name, LOOP_DETECT_NAME_LEN, &uid));
	/* dnsmasq's own probes have 8 digits */
	memcpy(name,
	       "\x08"
	       "0000002a"
	       "\x04"
	       "test",
	       14);
	assert_false(loop_detect_parse(name, 15, &uid));
	assert_true(uid == 7);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_round_trip),
		cmocka_unit_test(test_other_names_are_not_probes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
