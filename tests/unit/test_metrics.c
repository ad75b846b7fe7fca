/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_metrics.c - unit tests for the Prometheus endpoint's pure parts (metrics_text.c): the
 * --metrics-address parser, label escaping, and the text formatter run on hand-made counters
 * (no router, no cache: no sockets), its output checked line by line - HELP and TYPE before
 * each family, cumulative histogram buckets ending at +Inf equal to _count, _sum in seconds.
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
#include <time.h>

#include <event2/buffer.h>

#include "kubemasq/defs.h"
#include "kubemasq/metrics.h"
#include "lib/stats.h"
#include "daemon/metrics_http.h"

static void
test_metrics_address_ok(void **state UNUSED)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char err[256];
	const struct sockaddr_in *v4 = (const void *)&ss;
	const struct sockaddr_in6 *v6 = (const void *)&ss;
	struct in6_addr lo6 = IN6ADDR_LOOPBACK_INIT;

	assert_int_equal(metrics_parse_address("127.0.0.1:9153", &ss, &len, err, sizeof(err)), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(v4->sin_port), 9153);
	assert_int_equal(len, sizeof(*v4));
	assert_int_equal(ntohl(v4->sin_addr.s_addr), INADDR_LOOPBACK);
	assert_int_equal(metrics_parse_address("[::1]:1", &ss, &len, err, sizeof(err)), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(ntohs(v6->sin6_port), 1);
	assert_memory_equal(&v6->sin6_addr, &lo6, sizeof(lo6));
	assert_int_equal(metrics_parse_address("0.0.0.0:65535", &ss, &len, err, sizeof(err)), 0);
	assert_int_equal(metrics_parse_address("[::]:8080", &ss, &len, err, sizeof(err)), 0);
}

static void
test_metrics_address_bad(void **state UNUSED)
{
	static const char *const bad[] = {
		"",
		"127.0.0.1",
		"127.0.0.1:",
		"127.0.0.1:0",
		"127.0.0.1:65536",
		":9153",
		"::1:9153",
		"[::1]",
		"[::1]:",
		"[127.0.0.1]:80",
		"[::1:80",
		"::1]:80",
		"localhost:80",
		"1.2.3:80",
		"127.0.0.1:80x",
		"127.0.0.1:-1",
		"[]:80",
		"127.0.0.1: 80",
	};
	struct sockaddr_storage ss;
	socklen_t len;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(metrics_parse_address(bad[i], &ss, &len, err, sizeof(err)),
				 -EINVAL);
		assert_non_null(strstr(err, "--metrics-address"));
	}
	assert_int_equal(metrics_parse_address(NULL, &ss, &len, err, sizeof(err)), -EINVAL);
}

static void
test_metrics_escape(void **state UNUSED)
{
	char buf[64];

	assert_string_equal(metrics_escape_label("10.0.0.1#53", buf, sizeof(buf)), "10.0.0.1#53");
	assert_string_equal(metrics_escape_label("a\"b\\c\nd", buf, sizeof(buf)),
			    "a\\\"b\\\\c\\nd");
	/* never an escape cut in half, always terminated */
	assert_string_equal(metrics_escape_label("\"\"\"\"", buf, 6), "\\\"\\\"");
	assert_string_equal(metrics_escape_label("abcdef", buf, 1), "");
}

/* The formatter's output as a string (freed by the caller). */
static char *
format(const struct stats *s)
{
	struct metrics_sources src = {.stats = s};
	struct evbuffer *b = evbuffer_new();
	size_t n;
	char *text;

	assert_non_null(b);
	assert_int_equal(metrics_format(&src, b), 0);
	n = evbuffer_get_length(b);
	text = malloc(n + 1);
	assert_non_null(text);
	evbuffer_remove(b, text, n);
	text[n] = '\0';
	evbuffer_free(b);
	return text;
}

static void
assert_line(const char *text, const char *line)
{
	char want[512];

	snprintf(want, sizeof(want), "\n%s\n", line);
	if (!strstr(text, want))
		fail_msg("line missing: %s", line);
}

static void
test_metrics_format_counters(void **state UNUSED)
{
	static struct stats s;
	char *text;

	memset(&s, 0, sizeof(s));
	s.queries_udp = 7;
	s.queries_tcp = 2;
	s.qtype[0][stats_qtype_slot(1)] = 5;
	s.qtype[1][stats_qtype_slot(1)] = 2;
	s.qtype[0][stats_qtype_slot(35)] = 1; /* NAPTR: other */
	s.do_requests = 6;
	s.rcode[METRICS_SOURCE_FORWARD][3] = 4;
	s.rcode[METRICS_SOURCE_CLUSTER][2] = 3;
	s.rcode[METRICS_SOURCE_LOCAL][16] = 1;
	s.cache_hits_by[METRICS_SOURCE_CLUSTER * 2 + 1] = 9; /* negative */
	s.refused_forward_max = 3;
	text = format(&s);
	assert_line(text, "# HELP kubemasq_requests_total DNS requests received, by transport "
			  "protocol.\n# TYPE kubemasq_requests_total counter");
	assert_line(text, "kubemasq_requests_total{protocol=\"udp\"} 7");
	assert_line(text, "kubemasq_requests_total{protocol=\"tcp\"} 2");
	assert_line(text, "kubemasq_requests_by_type_total{protocol=\"udp\",type=\"A\"} 5");
	assert_line(text, "kubemasq_requests_by_type_total{protocol=\"tcp\",type=\"A\"} 2");
	assert_line(text, "kubemasq_requests_by_type_total{protocol=\"udp\",type=\"other\"} 1");
	assert_line(text, "kubemasq_requests_by_type_total{protocol=\"tcp\",type=\"other\"} 0");
	assert_line(text, "kubemasq_do_requests_total 6");
	assert_line(text, "kubemasq_responses_total{source=\"forward\",rcode=\"NXDOMAIN\"} 4");
	assert_line(text, "kubemasq_responses_total{source=\"cluster\",rcode=\"SERVFAIL\"} 3");
	assert_line(text, "kubemasq_responses_total{source=\"forward\",rcode=\"SERVFAIL\"} 0");
	assert_line(text, "kubemasq_responses_total{source=\"local\",rcode=\"BADVERS\"} 1");
	assert_line(text, "kubemasq_responses_total{source=\"local\",rcode=\"NOERROR\"} 0");
	/* rare codes only once seen, and only for the source that saw them */
	assert_null(strstr(text, "rcode=\"NOTZONE\""));
	assert_null(strstr(text, "source=\"forward\",rcode=\"BADVERS\""));
#define H "kubemasq_cache_hits_by_source_total"
	assert_line(text, H "{source=\"cluster\",type=\"denial\"} 9");
	assert_line(text, H "{source=\"forward\",type=\"success\"} 0");
#undef H
	assert_line(text, "kubemasq_forward_rejections_total 3");
	assert_line(text, "kubemasq_cache_budget_bytes 0"); /* no cache */
	assert_line(text, "# TYPE kubemasq_upstream_queries_total counter");
	assert_null(strstr(text, "kubemasq_kube_")); /* no kube resolver */
	assert_int_equal(text[strlen(text) - 1], '\n');
	free(text);
}

static void
test_metrics_format_histogram(void **state UNUSED)
{
	static struct stats s;
	static const uint64_t obs[] = {0, 0, 0, 70, 300, 300, 999999, 7000000};
	char *text;
	uint64_t sum = 0;

	memset(&s, 0, sizeof(s));
	for (size_t i = 0; i < sizeof(obs) / sizeof(obs[0]); i++) {
		metrics_hist_observe(&s.latency[METRICS_SOURCE_FORWARD], obs[i]);
		sum += obs[i];
	}
	metrics_hist_observe(&s.latency[METRICS_SOURCE_CLUSTER], 0);
	assert_int_equal(s.latency[METRICS_SOURCE_FORWARD].count, 8);
	assert_int_equal(s.latency[METRICS_SOURCE_FORWARD].sum_us, sum);
	text = format(&s);
#define H "kubemasq_request_duration_seconds"
	assert_line(text, "# TYPE " H " histogram");
	assert_line(text, H "_bucket{source=\"forward\",le=\"5e-05\"} 3");
	assert_line(text, H "_bucket{source=\"forward\",le=\"0.0001\"} 4");
	assert_line(text, H "_bucket{source=\"forward\",le=\"0.00025\"} 4");
	assert_line(text, H "_bucket{source=\"forward\",le=\"0.0005\"} 6");
	assert_line(text, H "_bucket{source=\"forward\",le=\"1\"} 7");
	assert_line(text, H "_bucket{source=\"forward\",le=\"5\"} 7");
	assert_line(text, H "_bucket{source=\"forward\",le=\"+Inf\"} 8");
	assert_line(text, H "_count{source=\"forward\"} 8");
	assert_line(text, H "_sum{source=\"forward\"} 8.000669");
	assert_line(text, H "_bucket{source=\"cluster\",le=\"5e-05\"} 1");
	assert_line(text, H "_count{source=\"cluster\"} 1");
	assert_line(text, H "_count{source=\"local\"} 0");
#undef H
	free(text);
}

/* CoreDNS's size buckets, the sizes under 512 counted exactly and folded into them on a
 * scrape: each edge on both sides. */
static void
test_metrics_size_histogram(void **state UNUSED)
{
	static struct stats s;
	static const size_t obs[] = {
		0,   1,	  100,	101,  200,  201,  300,	 301,	400,   401,
		511, 512, 1023, 1024, 8291, 8292, 16000, 64000, 64001, 65535,
	};
	/* the bucket index each lands in; 14 is +Inf */
	static const size_t want[] = {0, 1, 1, 2, 2, 3,	 3,  4,	 4,  5,
				      5, 6, 6, 7, 9, 10, 10, 13, 14, 14};
	uint64_t sum = 0;
	char *text;

	memset(&s, 0, sizeof(s));
	for (size_t i = 0; i < ARRAY_SIZE(obs); i++) {
		static struct metrics_size_hist h;
		uint64_t bucket[METRICS_SIZE_BUCKETS + 1], one;

		memset(&h, 0, sizeof(h));
		metrics_size_observe(&h, obs[i]);
		metrics_size_fold(&h, bucket, &one);
		for (size_t b = 0; b <= METRICS_SIZE_BUCKETS; b++)
			assert_int_equal(bucket[b], b == want[i]);
		assert_int_equal(one, obs[i]);
		metrics_size_observe(&s.response_size[1], obs[i]);
		sum += obs[i];
	}
	metrics_size_observe(&s.request_size[0], 40);
	text = format(&s);
#define H "kubemasq_response_size_bytes"
	assert_line(text, "# TYPE " H " histogram");
	assert_line(text, H "_bucket{protocol=\"tcp\",le=\"0\"} 1");
	assert_line(text, H "_bucket{protocol=\"tcp\",le=\"100\"} 3");
	assert_line(text, H "_bucket{protocol=\"tcp\",le=\"511\"} 11");
	assert_line(text, H "_bucket{protocol=\"tcp\",le=\"8291\"} 15");
	assert_line(text, H "_bucket{protocol=\"tcp\",le=\"64000\"} 18");
	assert_line(text, H "_bucket{protocol=\"tcp\",le=\"+Inf\"} 20");
	assert_line(text, H "_count{protocol=\"tcp\"} 20");
	assert_line(text, H "_count{protocol=\"udp\"} 0");
#undef H
	assert_line(text, "kubemasq_request_size_bytes_bucket{protocol=\"udp\",le=\"100\"} 1");
	assert_line(text, "kubemasq_request_size_bytes_sum{protocol=\"udp\"} 40");
	{
		char line[128];

		snprintf(line, sizeof(line),
			 "kubemasq_response_size_bytes_sum{protocol=\"tcp\"} %llu",
			 (unsigned long long)sum);
		assert_line(text, line);
	}
	free(text);
}

/* /proc/PID/stat: fields counted from the last ')', whatever the command holds. */
static void
test_metrics_process_stat(void **state UNUSED)
{
	static const char *const stat =
		"4242 (kube masq) (x)) S 1 4242 4242 0 -1 4194560 1369 0 0 0 12 34 0 0 20 0 1 "
		"0 987654 11427840 1073 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 "
		"0 0 0 0\n";
	struct metrics_process p = {0};
	uint64_t ticks = 0;

	assert_int_equal(metrics_process_parse_stat(stat, 4096, &ticks, &p), 0);
	assert_true(p.has_stat);
	assert_int_equal(ticks, 987654);
	assert_int_equal(p.virtual_bytes, 11427840);
	assert_int_equal(p.resident_bytes, 1073 * 4096);
	memset(&p, 0, sizeof(p));
	assert_int_equal(metrics_process_parse_stat("4242 (short) S 1 2 3\n", 4096, NULL, &p),
			 -EINVAL);
	assert_false(p.has_stat);
	assert_int_equal(metrics_process_parse_stat("no parenthesis", 4096, NULL, &p), -EINVAL);
	assert_int_equal(metrics_process_parse_stat("1 (x) S x", 4096, NULL, &p), -EINVAL);
}

/* This very process, read and formatted: every family present, figures plausible. */
static void
test_metrics_process_read(void **state UNUSED)
{
	struct metrics_process p;
	struct evbuffer *b = evbuffer_new();
	double start = metrics_process_start_time();
	time_t now = time(NULL);
	char *text;
	size_t n;

	assert_non_null(b);
	assert_true(start > (double)now - 600 && start <= (double)now + 1);
	metrics_process_read(&p, start);
	assert_true(p.has_stat && p.has_fds);
	assert_true(p.resident_bytes > 100000 && p.virtual_bytes >= p.resident_bytes);
	assert_true(p.open_fds >= 3 && p.open_fds <= p.max_fds);
	assert_int_equal(metrics_format_process(&p, b), 0);
	n = evbuffer_get_length(b);
	text = calloc(1, n + 2);
	assert_non_null(text);
	text[0] = '\n'; /* assert_line looks for whole lines */
	evbuffer_remove(b, text + 1, n);
	assert_line(text, "# TYPE process_cpu_seconds_total counter");
	assert_line(text, "# TYPE process_start_time_seconds gauge");
	assert_line(text, "# TYPE process_resident_memory_bytes gauge");
	assert_line(text, "# TYPE process_virtual_memory_bytes gauge");
	assert_line(text, "# TYPE process_open_fds gauge");
	assert_line(text, "# TYPE process_max_fds gauge");
	free(text);
	evbuffer_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_metrics_address_ok),
		cmocka_unit_test(test_metrics_address_bad),
		cmocka_unit_test(test_metrics_escape),
		cmocka_unit_test(test_metrics_format_counters),
		cmocka_unit_test(test_metrics_format_histogram),
		cmocka_unit_test(test_metrics_size_histogram),
		cmocka_unit_test(test_metrics_process_stat),
		cmocka_unit_test(test_metrics_process_read),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
