/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_kube_api.c - unit tests of the watch-stream framer (api_framer.h): a stream of events
 * cut at every byte position and in one-byte pieces gives the same objects as the whole; several
 * objects per piece; strings holding braces, brackets and escaped quotes and backslashes do not
 * fool it; whitespace between objects is skipped and other bytes refused; an object over the cap
 * is refused whether it arrives in one piece or carried over; a callback's non-zero return stops
 * the feed; the framer is usable again after a reset. Also the one-object conversion the
 * watch uses (snapshot.h): list items without kind, upsert, delete, and refusals with a reason.
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

#include <jansson.h>

#include "kube/store.h"
#include "kube/source/api_framer.h"
#include "kube/source/api_impl.h"
#include "kube/source/snapshot.h"

#define T_MAX_OBJS 16

struct t_sink {
	size_t n;
	char *obj[T_MAX_OBJS];
	int stop_at; /* return 7 from this object's callback (1-based); 0 = never */
};

static int
t_collect(void *ctx, const char *obj, size_t len)
{
	struct t_sink *s = ctx;

	assert_true(s->n < T_MAX_OBJS);
	s->obj[s->n] = strndup(obj, len);
	assert_non_null(s->obj[s->n]);
	s->n++;
	return s->stop_at && (int)s->n == s->stop_at ? 7 : 0;
}

static void
t_sink_free(struct t_sink *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->obj[i]);
	memset(s, 0, sizeof(*s));
}

/* Three events as the API server writes them, with the traps a line or brace counter falls in. */
static const char *const t_events[] = {
	"{\"type\":\"ADDED\",\"object\":{\"kind\":\"Service\",\"metadata\":{\"name\":\"a\","
	"\"resourceVersion\":\"1\"},\"spec\":{\"ports\":[{\"port\":53}]}}}",
	"{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"b}{\\\"]\","
	"\"annotations\":{\"x\":\"line\\nbreak {not a brace} \\\\\"}}}}",
	"{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"\\\\\\\"}\"}}}",
};

static char *
t_stream(const char *sep)
{
	size_t len = 1;
	char *s;

	for (size_t i = 0; i < 3; i++)
		len += strlen(t_events[i]) + strlen(sep);
	s = calloc(1, len);
	assert_non_null(s);
	for (size_t i = 0; i < 3; i++) {
		strcat(s, t_events[i]);
		strcat(s, sep);
	}
	return s;
}

static void
t_check_events(const struct t_sink *s)
{
	assert_int_equal(s->n, 3);
	for (size_t i = 0; i < 3; i++)
		assert_string_equal(s->obj[i], t_events[i]);
}

/* The back-off: 0.8 s doubling to 30 s, with jitter (here [half, whole] of it). */
static void
test_backoff(void **state)
{
	(void)state;
	for (unsigned attempt = 1; attempt <= 12; attempt++) {
		msec_t d = MIN((msec_t)API_BACKOFF_FIRST_MS << (attempt - 1), API_BACKOFF_MAX_MS);
		msec_t lo = UINT64_MAX, hi = 0;

		for (int i = 0; i < 200; i++) {
			msec_t b = api_backoff_ms(attempt);

			lo = MIN(lo, b);
			hi = MAX(hi, b);
		}
		assert_true(lo >= d / 2 && hi <= d);
		assert_true(hi - lo >= d / 8); /* jitter: 200 draws spread over the range */
	}
	assert_int_equal(API_BACKOFF_FIRST_MS, 800);
	assert_int_equal(API_BACKOFF_MAX_MS, 30000);
}

static void
test_whole_and_separators(void **state)
{
	static const char *const seps[] = {"", "\n", "\r\n", " \t\n"};
	struct kube_api_framer f;

	(void)state;
	for (size_t k = 0; k < 4; k++) {
		struct t_sink s = {0};
		char *stream = t_stream(seps[k]);

		kube_api_framer_init(&f, 4096);
		assert_int_equal(kube_api_framer_feed(&f, stream, strlen(stream), t_collect, &s),
				 0);
		t_check_events(&s);
		assert_int_equal(f.len, 0);
		kube_api_framer_done(&f);
		t_sink_free(&s);
		free(stream);
	}
}

/* The stream cut in two at every position, and also in three around each cut. */
static void
test_split_everywhere(void **state)
{
	char *stream = t_stream("\n");
	size_t len = strlen(stream);
	struct kube_api_framer f;

	(void)state;
	for (size_t cut = 0; cut <= len; cut++) {
		struct t_sink s = {0};

		kube_api_framer_init(&f, 4096);
		assert_int_equal(kube_api_framer_feed(&f, stream, cut, t_collect, &s), 0);
		if (cut > 2) {
			assert_int_equal(kube_api_framer_feed(&f, stream + cut, 0, t_collect, &s),
					 0);
		}
		assert_int_equal(kube_api_framer_feed(&f, stream + cut, len - cut, t_collect, &s),
				 0);
		t_check_events(&s);
		kube_api_framer_done(&f);
		t_sink_free(&s);
	}
	free(stream);
}

static void
test_byte_by_byte(void **state)
{
	char *stream = t_stream("");
	struct kube_api_framer f;
	struct t_sink s = {0};

	(void)state;
	kube_api_framer_init(&f, 4096);
	for (size_t i = 0; stream[i]; i++)
		assert_int_equal(kube_api_framer_feed(&f, stream + i, 1, t_collect, &s), 0);
	t_check_events(&s);
	kube_api_framer_done(&f);
	t_sink_free(&s);
	free(stream);
}

static void
test_garbage_refused(void **state)
{
	struct kube_api_framer f;
	struct t_sink s = {0};
	const char *bad = "{\"a\":1}\nnot json {\"b\":2}";

	(void)state;
	kube_api_framer_init(&f, 4096);
	assert_int_equal(kube_api_framer_feed(&f, bad, strlen(bad), t_collect, &s), -EPROTO);
	assert_int_equal(s.n, 1); /* the object before the garbage was delivered */
	assert_string_equal(s.obj[0], "{\"a\":1}");
	kube_api_framer_reset(&f);
	assert_int_equal(kube_api_framer_feed(&f, "{\"c\":3}", 7, t_collect, &s), 0);
	assert_int_equal(s.n, 2);
	/* an array at the top level is not an event either */
	assert_int_equal(kube_api_framer_feed(&f, "[1]", 3, t_collect, &s), -EPROTO);
	kube_api_framer_done(&f);
	t_sink_free(&s);
}

static void
test_oversize_refused(void **state)
{
	char big[200];
	struct kube_api_framer f;
	struct t_sink s = {0};

	(void)state;
	/* {"k":"xxxx...x"} of 100 bytes against a cap of 64: in one piece and carried over */
	memset(big, 'x', sizeof(big));
	memcpy(big, "{\"k\":\"", 6);
	memcpy(big + 97, "\"}", 2);
	kube_api_framer_init(&f, 64);
	assert_int_equal(kube_api_framer_feed(&f, big, 99, t_collect, &s), -EMSGSIZE);
	kube_api_framer_reset(&f);
	assert_int_equal(kube_api_framer_feed(&f, big, 40, t_collect, &s), 0);
	assert_int_equal(kube_api_framer_feed(&f, big + 40, 59, t_collect, &s), -EMSGSIZE);
	assert_int_equal(s.n, 0);
	assert_true(f.cap <= 64); /* never buffered past the cap */
	/* an object that never closes cannot grow the buffer past the cap either */
	kube_api_framer_reset(&f);
	assert_int_equal(kube_api_framer_feed(&f, "{\"k\":\"", 6, t_collect, &s), 0);
	for (int i = 0; i < 100; i++) {
		int rc = kube_api_framer_feed(&f, "xxxxxxxxxx", 10, t_collect, &s);

		if (rc) {
			assert_int_equal(rc, -EMSGSIZE);
			break;
		}
		assert_true(i < 10);
	}
	assert_true(f.cap <= 64);
	/* exactly at the cap is fine */
	kube_api_framer_reset(&f);
	memcpy(big + 62, "\"}", 2);
	assert_int_equal(kube_api_framer_feed(&f, big, 30, t_collect, &s), 0);
	assert_int_equal(kube_api_framer_feed(&f, big + 30, 34, t_collect, &s), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(strlen(s.obj[0]), 64);
	kube_api_framer_done(&f);
	t_sink_free(&s);
}

static void
test_callback_stops(void **state)
{
	char *stream = t_stream("\n");
	struct kube_api_framer f;
	struct t_sink s = {.stop_at = 2};

	(void)state;
	kube_api_framer_init(&f, 4096);
	assert_int_equal(kube_api_framer_feed(&f, stream, strlen(stream), t_collect, &s), 7);
	assert_int_equal(s.n, 2);
	kube_api_framer_done(&f);
	kube_api_framer_done(NULL);
	t_sink_free(&s);
	free(stream);
}

static json_t *
t_json(const char *text)
{
	json_error_t je;
	json_t *j = json_loads(text, 0, &je);

	assert_non_null(j);
	return j;
}

static void
test_object_apply_delete(void **state)
{
	struct kube_store_config cfg = {.zone = "cluster.local"};
	struct kube_store *s = kube_store_new(&cfg);
	struct kube_store_counts c;
	char why[256];
	json_t *svc = t_json("{\"metadata\":{\"name\":\"a\",\"namespace\":\"ns\"},"
			     "\"spec\":{\"clusterIP\":\"10.0.0.1\",\"ports\":[]}}");
	json_t *bad = t_json("{\"metadata\":{\"name\":\"b\",\"namespace\":\"ns\"},"
			     "\"spec\":{\"clusterIP\":\"300.0.0.1\"}}");
	json_t *nometa = t_json("{\"spec\":{}}");

	(void)state;
	assert_non_null(s);
	assert_int_equal(kube_snapshot_apply_object(s, KUBE_KIND_SERVICE, svc, why, sizeof(why)),
			 0);
	assert_non_null(kube_store_service(s, "ns", 2, "a", 1));
	assert_int_equal(kube_snapshot_apply_object(s, KUBE_KIND_SERVICE, bad, why, sizeof(why)),
			 -EINVAL);
	assert_non_null(strstr(why, "invalid clusterIP"));
	assert_int_equal(kube_snapshot_apply_object(s, KUBE_KIND_SERVICE, nometa, why, sizeof(why)),
			 -EINVAL);
	assert_string_equal(why, "no metadata");
	assert_int_equal(
		kube_snapshot_delete_object(s, KUBE_KIND_SERVICE, nometa, why, sizeof(why)),
		-EINVAL);
	assert_int_equal(kube_snapshot_delete_object(s, KUBE_KIND_SERVICE, svc, why, sizeof(why)),
			 0);
	assert_null(kube_store_service(s, "ns", 2, "a", 1));
	assert_int_equal(kube_snapshot_delete_object(s, KUBE_KIND_SERVICE, svc, why, sizeof(why)),
			 -ENOENT);
	kube_store_counts(s, &c);
	assert_int_equal(c.services, 0);
	json_decref(svc);
	json_decref(bad);
	json_decref(nometa);
	kube_store_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_whole_and_separators),
		cmocka_unit_test(test_split_everywhere),
		cmocka_unit_test(test_byte_by_byte),
		cmocka_unit_test(test_garbage_refused),
		cmocka_unit_test(test_oversize_refused),
		cmocka_unit_test(test_callback_stops),
		cmocka_unit_test(test_object_apply_delete),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
