/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_config.c - config.c through its public calls: defaults, every option of the table from
 * argv and from a conf file, dnsmasq's short forms, every error path with its message (option
 * name, FILE:LINE), conf-dir order and suffix filters, the nesting limit, --help against the
 * table itself, --port reaching earlier --listen-address, and resolv-file parsing. Files live in
 * a mkdtemp directory removed at the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kubemasq/defs.h"
#include "lib/config.h"
#include "lib/config_opts.h"

#define TEST_ERRLEN 512

static char test_dir[] = "/tmp/test_config.XXXXXX";

/* Every option that sets a field, with a non-default value, as a conf-file line; argv gets
 * "--" in front. conf-file, conf-dir, help and version have tests of their own. */
static const char *const test_full[] = {
	"port=5353",
	"listen-address=127.0.0.1,::1",
	"interface=lo",
	"bind-interfaces",
	"tcp-max-connections=100",
	"tcp-idle-timeout=30",
	"server=/Example.COM./10.0.0.1#5353",
	"no-resolv",
	"resolv-file=/tmp/resolv.test",
	"strict-order",
	"all-servers",
	"dns-forward-max=500",
	"edns-packet-max=4096",
	"query-port=5000",
	"min-port=2000",
	"max-port=3000",
	"upstream-timeout=2000",
	"upstream-retry=500",
	"dns-loop-detect",
	"address=/ads.example/0.0.0.1",
	"domain-needed",
	"bogus-priv",
	"host-record=h.example,192.0.2.1",
	"cname=c.example,h.example",
	"txt-record=t.example,text",
	"srv-host=_s._tcp.example,h.example,80",
	"mx-host=example,h.example,10",
	"ptr-record=p.example,h.example",
	"addn-hosts=/nonexistent/hosts",
	"no-hosts",
	"expand-hosts",
	"domain=Lan.",
	"cache-bytes=128M",
	"cache-size=1000",
	"min-cache-ttl=5",
	"max-cache-ttl=600",
	"max-ttl=300",
	"local-ttl=60",
	"neg-ttl=30",
	"max-neg-ttl=900",
	"no-negcache",
	"use-stale-cache=600",
	"stale-mode=verify",
	"stale-answer-timeout=500",
	"stale-ttl=10",
	"prefetch",
	"kube-domain=Cluster.Example.",
	"kube-namespaces=default,Kube-System",
	"kube-pods=verified",
	"kube-ttl=30",
	"kube-endpoint-pod-names",
	"kube-ignore-empty-service",
	"kube",
	"kube-api-url=https://10.96.0.1:443/k8s",
	"kube-token-file=/run/token",
	"kube-ca-file=/run/ca.crt",
	"kube-startup-timeout=7",
	"metrics-address=127.0.0.1:9153",
	"shutdown-delay=9",
	"log-queries",
	"log-facility=local0",
	"keep-in-foreground",
	"no-daemon",
	"pid-file=/run/kubemasq.pid",
	"user=dns",
	"group=dnsgrp",
	"test",
};

static int
test_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
test_setup(void **state)
{
	(void)state;
	return mkdtemp(test_dir) ? 0 : -1;
}

static int
test_teardown(void **state)
{
	(void)state;
	return nftw(test_dir, test_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes test_dir/name (malloc'd path returned). */
static char *
test_write(const char *name, const char *text)
{
	char *path;
	FILE *f;

	assert_true(asprintf(&path, "%s/%s", test_dir, name) > 0);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	return path;
}

static char *
test_mkdir(const char *name)
{
	char *path;

	assert_true(asprintf(&path, "%s/%s", test_dir, name) > 0);
	assert_int_equal(mkdir(path, 0700), 0);
	return path;
}

/* config_parse() over an argv of `n` strings (argv[0] added); `out` may be NULL. */
static int
test_parse_v(struct config *cfg, char *err, FILE *out, size_t n, const char *const *args)
{
	char **argv = calloc(n + 2, sizeof(*argv));
	int rc;

	assert_non_null(argv);
	argv[0] = strdup("kubemasq");
	for (size_t i = 0; i < n; i++)
		argv[i + 1] = strdup(args[i]);
	rc = config_parse(cfg, (int)n + 1, argv, NULL, out, err, TEST_ERRLEN);
	for (size_t i = 0; i <= n; i++)
		free(argv[i]);
	free(argv);
	return rc;
}

#define test_parse(cfg, err, ...)                                                                  \
	test_parse_v((cfg), (err), NULL, ARRAY_SIZE(((const char *[]){__VA_ARGS__})),              \
		     (const char *[]){__VA_ARGS__})

static uint16_t
test_port(const struct config_sockaddr *sa)
{
	if (sa->ss.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&sa->ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)&sa->ss)->sin6_port);
}

static void
test_addr_is(const struct config_sockaddr *sa, const char *ip, uint16_t port)
{
	char buf[INET6_ADDRSTRLEN];
	const void *a;

	if (sa->ss.ss_family == AF_INET) {
		a = &((const struct sockaddr_in *)&sa->ss)->sin_addr;
		assert_int_equal(sa->len, sizeof(struct sockaddr_in));
	} else {
		assert_int_equal(sa->ss.ss_family, AF_INET6);
		a = &((const struct sockaddr_in6 *)&sa->ss)->sin6_addr;
		assert_int_equal(sa->len, sizeof(struct sockaddr_in6));
	}
	assert_non_null(inet_ntop(sa->ss.ss_family, a, buf, sizeof(buf)));
	assert_string_equal(buf, ip);
	assert_int_equal(test_port(sa), port);
}

static void
test_defaults(void **state)
{
	struct config cfg;
	char err[TEST_ERRLEN];

	(void)state;
	assert_int_equal(test_parse_v(&cfg, err, NULL, 0, NULL), 0);
	assert_string_equal(err, "");
	assert_int_equal(cfg.port, 53);
	assert_int_equal(cfg.n_listen, 0);
	assert_int_equal(cfg.n_interfaces, 0);
	assert_false(cfg.bind_interfaces);
	assert_int_equal(cfg.tcp_max_connections, 256);
	assert_int_equal(cfg.tcp_idle_timeout, 10);
	assert_int_equal(cfg.n_servers, 0);
	assert_false(cfg.no_resolv);
	assert_string_equal(cfg.resolv_file, "/etc/resolv.conf");
	assert_false(cfg.strict_order || cfg.all_servers);
	assert_int_equal(cfg.dns_forward_max, 1000);
	assert_int_equal(cfg.edns_packet_max, 1232);
	assert_int_equal(cfg.query_port, 0);
	assert_int_equal(cfg.min_port, 1024);
	assert_int_equal(cfg.max_port, 65535);
	assert_int_equal(cfg.upstream_timeout_ms, 4000);
	assert_int_equal(cfg.upstream_retry_ms, 1000);
	assert_false(cfg.dns_loop_detect);
	assert_int_equal(cfg.kube_startup_timeout, 0);
	assert_int_equal(cfg.shutdown_delay, 0);
	assert_int_equal(cfg.n_addresses, 0);
	assert_false(cfg.domain_needed || cfg.bogus_priv);
	assert_true(cfg.cache_bytes == 1ULL << 30);
	assert_int_equal(cfg.cache_size, 0);
	assert_false(cfg.cache_size_set);
	assert_false(cfg.cache_size_set);
	assert_int_equal(cfg.min_cache_ttl + cfg.max_cache_ttl + cfg.max_ttl, 0);
	assert_int_equal(cfg.local_ttl + cfg.neg_ttl, 0);
	assert_int_equal(cfg.max_neg_ttl, 3600);
	assert_false(cfg.no_negcache || cfg.log_queries);
	assert_false(cfg.use_stale_cache || cfg.stale_verify || cfg.prefetch);
	assert_int_equal(cfg.stale_cache_max, 86400);
	assert_int_equal(cfg.stale_answer_timeout, 1800);
	assert_int_equal(cfg.stale_ttl, 30);
	assert_string_equal(cfg.kube_domain, "cluster.local");
	assert_int_equal(cfg.n_kube_namespaces, 0);
	assert_int_equal(cfg.kube_pods, CONFIG_KUBE_PODS_INSECURE);
	assert_int_equal(cfg.kube_ttl, 5);
	assert_false(cfg.kube_endpoint_pod_names || cfg.kube_ignore_empty_service);
	assert_null(cfg.kube_snapshot);
	assert_null(cfg.log_facility);
	assert_false(cfg.keep_in_foreground || cfg.no_daemon || cfg.test_only);
	assert_null(cfg.pid_file);
	assert_string_equal(cfg.user, "nobody");
	assert_null(cfg.group);
	config_done(&cfg);
	config_done(&cfg); /* idempotent */
	config_done(NULL); /* NULL-safe */

	/* config_init() alone gives the same, and config_done() copes with it. */
	config_init(&cfg);
	assert_int_equal(cfg.port, 53);
	assert_string_equal(cfg.user, "nobody");
	config_done(&cfg);
}

/* The values of test_full[]. */
static void
test_check_full(const struct config *cfg)
{
	assert_int_equal(cfg->port, 5353);
	assert_int_equal(cfg->n_listen, 2);
	test_addr_is(&cfg->listen[0], "127.0.0.1", 5353);
	test_addr_is(&cfg->listen[1], "::1", 5353);
	assert_int_equal(cfg->n_interfaces, 1);
	assert_string_equal(cfg->interfaces[0], "lo");
	assert_true(cfg->bind_interfaces);
	assert_int_equal(cfg->tcp_max_connections, 100);
	assert_int_equal(cfg->tcp_idle_timeout, 30);
	assert_int_equal(cfg->n_servers, 1);
	assert_int_equal(cfg->servers[0].kind, CONFIG_SERVER_ADDR);
	assert_int_equal(cfg->servers[0].n_domains, 1);
	assert_string_equal(cfg->servers[0].domains[0], "example.com");
	test_addr_is(&cfg->servers[0].addr, "10.0.0.1", 5353);
	assert_false(cfg->servers[0].from_resolv);
	assert_true(cfg->no_resolv);
	assert_string_equal(cfg->resolv_file, "/tmp/resolv.test");
	assert_true(cfg->strict_order && cfg->all_servers);
	assert_int_equal(cfg->dns_forward_max, 500);
	assert_int_equal(cfg->edns_packet_max, 4096);
	assert_int_equal(cfg->query_port, 5000);
	assert_int_equal(cfg->min_port, 2000);
	assert_int_equal(cfg->max_port, 3000);
	assert_int_equal(cfg->upstream_timeout_ms, 2000);
	assert_int_equal(cfg->upstream_retry_ms, 500);
	assert_true(cfg->dns_loop_detect);
	assert_int_equal(cfg->n_addresses, 1);
	assert_int_equal(cfg->addresses[0].kind, CONFIG_ADDRESS_IP);
	assert_int_equal(cfg->addresses[0].family, AF_INET);
	assert_memory_equal(cfg->addresses[0].ip, "\0\0\0\1", 4);
	assert_string_equal(cfg->addresses[0].domains[0], "ads.example");
	assert_true(cfg->domain_needed && cfg->bogus_priv);
	assert_int_equal(cfg->n_local_records, 6);
	assert_string_equal(cfg->local_records[0].option, "host-record");
	assert_string_equal(cfg->local_records[0].value, "h.example,192.0.2.1");
	assert_string_equal(cfg->local_records[5].option, "ptr-record");
	assert_int_equal(cfg->n_addn_hosts, 1);
	assert_string_equal(cfg->addn_hosts[0], "/nonexistent/hosts");
	assert_true(cfg->no_hosts && cfg->expand_hosts);
	assert_string_equal(cfg->domain, "lan");
	assert_true(cfg->cache_bytes == 128ULL << 20);
	assert_int_equal(cfg->cache_size, 1000);
	assert_true(cfg->cache_size_set);
	assert_int_equal(cfg->min_cache_ttl, 5);
	assert_int_equal(cfg->max_cache_ttl, 600);
	assert_int_equal(cfg->max_ttl, 300);
	assert_int_equal(cfg->local_ttl, 60);
	assert_int_equal(cfg->neg_ttl, 30);
	assert_int_equal(cfg->max_neg_ttl, 900);
	assert_true(cfg->no_negcache && cfg->log_queries);
	assert_true(cfg->use_stale_cache && cfg->stale_verify && cfg->prefetch);
	assert_int_equal(cfg->stale_cache_max, 600);
	assert_int_equal(cfg->stale_answer_timeout, 500);
	assert_int_equal(cfg->stale_ttl, 10);
	assert_string_equal(cfg->kube_domain, "cluster.example");
	assert_int_equal(cfg->n_kube_namespaces, 2);
	assert_string_equal(cfg->kube_namespaces[0], "default");
	assert_string_equal(cfg->kube_namespaces[1], "kube-system");
	assert_int_equal(cfg->kube_pods, CONFIG_KUBE_PODS_VERIFIED);
	assert_int_equal(cfg->kube_ttl, 30);
	assert_true(cfg->kube_endpoint_pod_names && cfg->kube_ignore_empty_service);
	assert_true(cfg->kube);
	assert_string_equal(cfg->kube_api_url, "https://10.96.0.1:443/k8s");
	assert_string_equal(cfg->kube_token_file, "/run/token");
	assert_string_equal(cfg->kube_ca_file, "/run/ca.crt");
	assert_null(cfg->kube_snapshot);
	assert_int_equal(cfg->kube_startup_timeout, 7);
	assert_string_equal(cfg->metrics_address, "127.0.0.1:9153");
	assert_int_equal(cfg->shutdown_delay, 9);
	assert_string_equal(cfg->log_facility, "local0");
	assert_true(cfg->keep_in_foreground && cfg->no_daemon);
	assert_string_equal(cfg->pid_file, "/run/kubemasq.pid");
	assert_string_equal(cfg->user, "dns");
	assert_string_equal(cfg->group, "dnsgrp");
	assert_true(cfg->test_only);
}

/* test_full[] must name every option of the table but the six tested on their own (the other
 * two cluster sources exclude --kube-api-url: test_kube_sources). */
static void
test_full_covers_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < config_opts_count; i++) {
		const char *name = config_opts_table[i].name;
		size_t len = strlen(name);
		bool found = false;

		if (!strcmp(name, "conf-file") || !strcmp(name, "conf-dir") ||
		    !strcmp(name, "help") || !strcmp(name, "version") ||
		    !strcmp(name, "kube-snapshot") || !strcmp(name, "kubeconfig"))
			continue;
		for (size_t j = 0; j < ARRAY_SIZE(test_full) && !found; j++)
			found = !strncmp(test_full[j], name, len) &&
				(test_full[j][len] == '=' || test_full[j][len] == '\0');
		if (!found)
			fail_msg("option --%s is missing from test_full[]", name);
	}
}

static void
test_every_option_argv(void **state)
{
	const char *args[ARRAY_SIZE(test_full)];
	char *owned[ARRAY_SIZE(test_full)];
	char err[TEST_ERRLEN];
	struct config cfg;
	FILE *out;
	char *text = NULL;
	size_t len = 0;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(test_full); i++) {
		assert_true(asprintf(&owned[i], "--%s", test_full[i]) > 0);
		args[i] = owned[i];
	}
	out = open_memstream(&text, &len);
	assert_non_null(out);
	assert_int_equal(test_parse_v(&cfg, err, out, ARRAY_SIZE(args), args), 0);
	fclose(out);
	assert_int_equal(len, 0); /* --test prints nothing */
	test_check_full(&cfg);
	config_done(&cfg);
	free(text);
	for (size_t i = 0; i < ARRAY_SIZE(test_full); i++)
		free(owned[i]);
}

static void
test_every_option_conf(void **state)
{
	char err[TEST_ERRLEN], *text = NULL, *path, *arg;
	size_t len = 0;
	struct config cfg;
	FILE *f = open_memstream(&text, &len);

	(void)state;
	assert_non_null(f);
	fputs("# every option\n\n", f);
	for (size_t i = 0; i < ARRAY_SIZE(test_full); i++)
		fprintf(f, "%s\n", test_full[i]);
	fclose(f);
	path = test_write("full.conf", text);
	assert_true(asprintf(&arg, "--conf-file=%s", path) > 0);
	assert_int_equal(test_parse(&cfg, err, arg), 0);
	test_check_full(&cfg);
	config_done(&cfg);
	/* and -C FILE, dnsmasq's short form */
	assert_int_equal(test_parse(&cfg, err, "-C", path), 0);
	test_check_full(&cfg);
	config_done(&cfg);
	unlink(path);
	free(arg);
	free(path);
	free(text);
}

static void
test_short_forms(void **state)
{
	char err[TEST_ERRLEN];
	struct config cfg;

	(void)state;
	assert_int_equal(test_parse(&cfg, err, "-p", "5353", "-a", "127.0.0.1", "-i", "eth0", "-z",
				    "-S", "1.1.1.1", "-R", "-r", "/r", "-o", "-0", "10", "-P1400",
				    "-Q", "5000", "-A", "/a/1.2.3.4", "-D", "-b", "-q", "-8", "-",
				    "-kd", "-x/run/p", "-uuser", "-ggrp", "-c", "10", "-N"),
			 0);
	assert_int_equal(cfg.port, 5353);
	test_addr_is(&cfg.listen[0], "127.0.0.1", 5353);
	assert_string_equal(cfg.interfaces[0], "eth0");
	assert_true(cfg.bind_interfaces && cfg.no_resolv && cfg.strict_order);
	test_addr_is(&cfg.servers[0].addr, "1.1.1.1", 53);
	assert_null(cfg.servers[0].domains);
	assert_string_equal(cfg.resolv_file, "/r");
	assert_int_equal(cfg.dns_forward_max, 10);
	assert_int_equal(cfg.edns_packet_max, 1400);
	assert_int_equal(cfg.query_port, 5000);
	assert_int_equal(cfg.n_addresses, 1);
	assert_true(cfg.domain_needed && cfg.bogus_priv && cfg.log_queries);
	assert_string_equal(cfg.log_facility, "-");
	assert_true(cfg.keep_in_foreground && cfg.no_daemon);
	assert_string_equal(cfg.pid_file, "/run/p");
	assert_string_equal(cfg.user, "user");
	assert_string_equal(cfg.group, "grp");
	assert_int_equal(cfg.cache_size, 10);
	assert_true(cfg.cache_size_set && cfg.no_negcache);
	config_done(&cfg);

	/* "-p53" glued, "--port 53" separate, a later value wins */
	assert_int_equal(test_parse(&cfg, err, "-p53", "--port", "54", "--port=55", "-p", "56"), 0);
	assert_int_equal(cfg.port, 56);
	config_done(&cfg);

	/* GNU getopt_long, like dnsmasq's: an unambiguous prefix names its option */
	assert_int_equal(test_parse(&cfg, err, "--strict", "--cache-s=7"), 0);
	assert_true(cfg.strict_order);
	assert_int_equal(cfg.cache_size, 7);
	config_done(&cfg);

	/* optional values: none given means "none" */
	assert_int_equal(test_parse(&cfg, err, "--pid-file=/p", "--pid-file", "-u", "--group"), 0);
	assert_null(cfg.pid_file);
	assert_null(cfg.user);
	assert_null(cfg.group);
	config_done(&cfg);
}

static void
test_servers(void **state)
{
	char err[TEST_ERRLEN];
	struct config cfg;
	const struct config_server *s;

	(void)state;
	assert_int_equal(test_parse(&cfg, err, "--server=1.2.3.4", "-S/a.com/B.org/10.0.0.1#5353",
				    "--server=/local/", "--server=/def/#", "--server=//192.168.0.1",
				    "--server=::1#5353", "--server=2001:db8::1", "--server=//#"),
			 0);
	assert_int_equal(cfg.n_servers, 8);
	s = cfg.servers;
	assert_int_equal(s[0].kind, CONFIG_SERVER_ADDR);
	assert_null(s[0].domains);
	assert_int_equal(s[0].n_domains, 0);
	test_addr_is(&s[0].addr, "1.2.3.4", 53);
	assert_int_equal(s[1].n_domains, 2);
	assert_string_equal(s[1].domains[0], "a.com");
	assert_string_equal(s[1].domains[1], "b.org");
	test_addr_is(&s[1].addr, "10.0.0.1", 5353);
	assert_int_equal(s[2].kind, CONFIG_SERVER_LOCAL);
	assert_string_equal(s[2].domains[0], "local");
	assert_int_equal(s[3].kind, CONFIG_SERVER_DEFAULT);
	assert_string_equal(s[3].domains[0], "def");
	assert_int_equal(s[4].n_domains, 1);
	assert_string_equal(s[4].domains[0], "");
	test_addr_is(&s[4].addr, "192.168.0.1", 53);
	test_addr_is(&s[5].addr, "::1", 5353);
	test_addr_is(&s[6].addr, "2001:db8::1", 53);
	assert_int_equal(s[7].kind, CONFIG_SERVER_DEFAULT);
	assert_string_equal(s[7].domains[0], "");
	config_done(&cfg);
}

static void
test_addresses(void **state)
{
	char err[TEST_ERRLEN];
	struct config cfg;
	const struct config_address *a;

	(void)state;
	assert_int_equal(test_parse(&cfg, err, "--address=/a/1.2.3.4", "-A/b/C/::1", "-A/nx/",
				    "--address=/un/#"),
			 0);
	assert_int_equal(cfg.n_addresses, 4);
	a = cfg.addresses;
	assert_int_equal(a[0].kind, CONFIG_ADDRESS_IP);
	assert_int_equal(a[0].family, AF_INET);
	assert_memory_equal(a[0].ip, "\1\2\3\4", 4);
	assert_int_equal(a[1].n_domains, 2);
	assert_string_equal(a[1].domains[1], "c");
	assert_int_equal(a[1].family, AF_INET6);
	assert_int_equal(a[1].ip[15], 1);
	assert_int_equal(a[2].kind, CONFIG_ADDRESS_NXDOMAIN);
	assert_string_equal(a[2].domains[0], "nx");
	assert_int_equal(a[3].kind, CONFIG_ADDRESS_UNSPEC);
	config_done(&cfg);
}

struct test_bad {
	const char *arg;
	int rc;
	const char *msg; /* substring of the error line */
};

static const struct test_bad test_bad_args[] = {
	{"--port=70000", -EINVAL, "bad value for --port: \"70000\" (0..65535)"},
	{"--port=53x", -EINVAL, "bad value for --port: \"53x\""},
	{"--port=-1", -EINVAL, "bad value for --port: \"-1\""},
	{"--port=", -EINVAL, "bad value for --port: \"\""},
	{"--port= 53", -EINVAL, "bad value for --port: \" 53\""},
	{"-p99999", -EINVAL, "bad value for --port"},
	{"--port", -EINVAL, "option --port needs a value"},
	{"-p", -EINVAL, "option --port needs a value"},
	{"--min-port", -EINVAL, "option --min-port needs a value"},
	{"--bogusx", -EINVAL, "unknown or ambiguous option \"--bogusx\""},
	{"--max", -EINVAL, "unknown or ambiguous option \"--max\""}, /* max-port, max-ttl, ... */
	{"-y", -EINVAL, "unknown option \"-y\""},
	{"--no-resolv=yes", -EINVAL, "option --no-resolv takes no value (\"yes\")"},
	{"--all-servers=1", -EINVAL, "option --all-servers takes no value"},
	{"stray", -EINVAL, "unexpected argument \"stray\""},
	{"--tcp-max-connections=0", -EINVAL, "--tcp-max-connections: \"0\" (1..65535)"},
	{"--tcp-idle-timeout=3601", -EINVAL, "--tcp-idle-timeout: \"3601\" (1..3600)"},
	{"--dns-forward-max=0", -EINVAL, "--dns-forward-max: \"0\""},
	{"--edns-packet-max=511", -EINVAL, "--edns-packet-max: \"511\" (512..65535)"},
	{"--query-port=65536", -EINVAL, "--query-port: \"65536\""},
	{"--upstream-timeout=99", -EINVAL, "--upstream-timeout: \"99\" (100..60000)"},
	{"--upstream-retry=49", -EINVAL, "--upstream-retry: \"49\" (50..60000)"},
	{"--upstream-retry=5000", -EINVAL, "--upstream-retry 5000 is greater than"},
	{"--cache-size=10000001", -EINVAL, "--cache-size: \"10000001\" (0..10000000)"},
	{"--min-cache-ttl=3601", -EINVAL, "--min-cache-ttl: \"3601\" (0..3600)"},
	{"--max-cache-ttl=2147483648", -EINVAL, "--max-cache-ttl: \"2147483648\""},
	{"--neg-ttl=1e3", -EINVAL, "--neg-ttl: \"1e3\""},
	{"--cache-bytes=10K", -EINVAL, "bad value for --cache-bytes: \"10K\" (SIZE[K|M|G]"},
	{"--cache-bytes=1X", -EINVAL, "--cache-bytes: \"1X\""},
	{"--cache-bytes=1MB", -EINVAL, "--cache-bytes: \"1MB\""},
	{"--cache-bytes=99999999999999999999", -EINVAL, "--cache-bytes"},
	{"--cache-bytes=17179869184G", -EINVAL, "--cache-bytes"},
	{"--listen-address=1.2.3", -EINVAL, "--listen-address: \"1.2.3\" (not an IPv4"},
	{"--listen-address=127.0.0.1,", -EINVAL, "--listen-address: \"127.0.0.1,\" (empty"},
	{"--listen-address=fe80::1%lo", -EINVAL, "--listen-address"},
	{"--interface=", -EINVAL, "--interface"},
	{"--interface=averyveryverylongname", -EINVAL, "--interface"},
	{"--interface=eth0 eth1", -EINVAL, "--interface: \"eth0 eth1\" (not an interface name)"},
	{"--resolv-file=", -EINVAL, "--resolv-file: \"\" (empty)"},
	{"--log-facility=", -EINVAL, "--log-facility"},
	{"--server=", -EINVAL, "--server: \"\" (missing address)"},
	{"--server=nothere", -EINVAL, "--server: \"nothere\" (not an IPv4"},
	{"--server=1.2.3.4#x", -EINVAL, "--server: \"1.2.3.4#x\" (bad port after '#'"},
	{"--server=1.2.3.4#", -EINVAL, "bad port after '#'"},
	{"--server=1.2.3.4#0", -EINVAL, "bad port after '#'"},
	{"--server=1.2.3.4#65536", -EINVAL, "bad port after '#'"},
	{"--server=1.2.3.4#53x", -EINVAL, "bad port after '#'"},
	{"--server=1.2.3.4@eth0", -EINVAL, "IP@source is not supported"},
	{"--server=1.2.3.4#53@10.0.0.1", -EINVAL, "IP@source is not supported"},
	{"--server=#", -EINVAL, "--server: \"#\" (missing address)"},
	{"--server=/a//1.2.3.4", -EINVAL, "(empty domain)"},
	{"--server=///1.2.3.4", -EINVAL, "(empty domain)"},
	{"--server=/./1.2.3.4", -EINVAL, "(empty domain)"},
	{"--server=/a..b/1.2.3.4", -EINVAL, "(empty label in domain)"},
	{"--server=/a b/1.2.3.4", -EINVAL, "(bad character in domain)"},
	{"--server=/a", -EINVAL, "(expected /DOMAIN/)"},
	{"--server=/a/1.2.3.4#5353x", -EINVAL, "bad port"},
	{"--address=1.2.3.4", -EINVAL, "--address: \"1.2.3.4\" (expected /DOMAIN/)"},
	{"--address=/a/1.2.3", -EINVAL, "--address: \"/a/1.2.3\" (not an IPv4"},
	{"--address=/a//1.2.3.4", -EINVAL, "(empty domain)"},
	{"--address=", -EINVAL, "--address"},
	{"--conf-file=", -EINVAL, "--conf-file"},
	{"--conf-file=/nonexistent/kubemasq.conf", -ENOENT,
	 "cannot read conf-file \"/nonexistent/kubemasq.conf\""},
	{"--conf-dir=/nonexistent/conf.d", -ENOENT, "cannot read conf-dir \"/nonexistent/conf.d\""},
	{"--conf-dir=/tmp,", -EINVAL, "--conf-dir"},
	{"--kube-pods=yes", -EINVAL, "--kube-pods: \"yes\" (disabled, insecure or verified)"},
	{"--stale-mode=lazy", -EINVAL, "--stale-mode: \"lazy\" (immediate or verify)"},
	{"--stale-mode=", -EINVAL, "--stale-mode"},
	{"--use-stale-cache=1d", -EINVAL, "bad value for --use-stale-cache: \"1d\""},
	{"--stale-ttl=0", -EINVAL, "bad value for --stale-ttl: \"0\" (1..3600)"},
	{"--stale-answer-timeout=0", -EINVAL, "--stale-answer-timeout"},
	{"--kube-pods=", -EINVAL, "--kube-pods"},
	{"--kube-pods=Insecure", -EINVAL, "--kube-pods"},
	{"--kube-ttl=3601", -EINVAL, "--kube-ttl: \"3601\" (0..3600)"},
	{"--kube-ttl=-1", -EINVAL, "--kube-ttl"},
	{"--kube-domain=", -EINVAL, "--kube-domain: \"\" (empty domain)"},
	{"--kube-domain=.", -EINVAL, "(empty domain)"},
	{"--kube-domain=cluster..local", -EINVAL, "(empty label in domain)"},
	{"--kube-domain=clu ster.local", -EINVAL, "(bad character in domain)"},
	{"--kube-namespaces=default,,x", -EINVAL, "--kube-namespaces: \"default,,x\" (empty item)"},
	{"--kube-namespaces=-ns", -EINVAL, "(namespace starting or ending with '-')"},
	{"--kube-namespaces=ns-", -EINVAL, "(namespace starting or ending with '-')"},
	{"--kube-namespaces=a.b", -EINVAL,
	 "--kube-namespaces: \"a.b\" (bad character in namespace)"},
	{"--kube-namespaces=a_b", -EINVAL, "(bad character in namespace)"},
	{"--kube-namespaces=0123456789012345678901234567890123456789012345678901234567890123",
	 -EINVAL, "(namespace longer than 63)"},
	{"--kube-snapshot=", -EINVAL, "--kube-snapshot: \"\" (empty)"},
	{"--kube-endpoint-pod-names=1", -EINVAL, "option --kube-endpoint-pod-names takes no value"},
};

static void
test_bad_values(void **state)
{
	char err[TEST_ERRLEN];
	struct config cfg;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(test_bad_args); i++) {
		const struct test_bad *t = &test_bad_args[i];
		int rc = test_parse(&cfg, err, t->arg);

		if (rc != t->rc || !strstr(err, t->msg) || strchr(err, '\n'))
			fail_msg("%s: rc %d, error \"%s\"; wanted %d, \"%s\"", t->arg, rc, err,
				 t->rc, t->msg);
		/* the failed parse freed what it had built */
		assert_null(cfg.listen);
		assert_null(cfg.servers);
		assert_null(cfg.resolv_file);
		config_done(&cfg);
	}
}

static void
test_long_domains(void **state)
{
	char err[TEST_ERRLEN], arg[400], label[70];
	struct config cfg;

	(void)state;
	/* a 64-character label */
	memset(label, 'a', 64);
	label[64] = '\0';
	snprintf(arg, sizeof(arg), "--server=/%s.com/1.2.3.4", label);
	assert_int_equal(test_parse(&cfg, err, arg), -EINVAL);
	assert_non_null(strstr(err, "label longer than 63"));
	config_done(&cfg);
	label[63] = '\0';
	snprintf(arg, sizeof(arg), "--server=/%s.com/1.2.3.4", label);
	assert_int_equal(test_parse(&cfg, err, arg), 0);
	config_done(&cfg);

	/* 4 x 63 + 3 dots = 255 > 253; then 253 exactly */
	snprintf(arg, sizeof(arg), "--address=/%s.%s.%s.%s/", label, label, label, label);
	assert_int_equal(test_parse(&cfg, err, arg), -EINVAL);
	assert_non_null(strstr(err, "--address"));
	assert_non_null(strstr(err, "longer than 253"));
	config_done(&cfg);
	snprintf(arg, sizeof(arg), "--address=/%s.%s.%s.%.61s/", label, label, label, label);
	assert_int_equal(test_parse(&cfg, err, arg), 0);
	assert_int_equal(strlen(cfg.addresses[0].domains[0]), 253);
	config_done(&cfg);
}

static void
test_cross_checks(void **state)
{
	char err[TEST_ERRLEN];
	struct config cfg;

	(void)state;
	assert_int_equal(test_parse(&cfg, err, "--min-port=2000", "--max-port=1500"), -EINVAL);
	assert_string_equal(err, "--min-port 2000 is greater than --max-port 1500");
	config_done(&cfg);
	assert_int_equal(test_parse(&cfg, err, "--min-port=1500", "--max-port=1500"), 0);
	config_done(&cfg);
	assert_int_equal(test_parse(&cfg, err, "--upstream-timeout=500", "--upstream-retry=600"),
			 -EINVAL);
	assert_non_null(strstr(err, "--upstream-retry 600 is greater than --upstream-timeout 500"));
	config_done(&cfg);
	assert_int_equal(test_parse(&cfg, err, "--min-cache-ttl=60", "--max-cache-ttl=30"),
			 -EINVAL);
	assert_non_null(strstr(err, "--min-cache-ttl"));
	config_done(&cfg);
	assert_int_equal(test_parse(&cfg, err, "--cache-bytes=64K", "--cache-size=0"), 0);
	assert_true(cfg.cache_bytes == 65536);
	assert_int_equal(cfg.cache_size, 0);
	assert_true(cfg.cache_size_set);
	config_done(&cfg);
	assert_int_equal(test_parse(&cfg, err, "--cache-bytes=2047M"), 0);
	assert_true(cfg.cache_bytes == 2047ULL << 20);
	config_done(&cfg);
	/* the cache's index cannot address more: refused, never capped in silence */
	assert_int_equal(test_parse(&cfg, err, "--cache-bytes=2g"), -EINVAL);
	assert_non_null(strstr(err, "--cache-bytes"));
	config_done(&cfg);
}

/* One cluster source at most; each turns the kube resolver on; credentials only for the API. */
static void
test_kube_sources(void **state)
{
	char err[TEST_ERRLEN];
	struct config cfg;

	(void)state;
	assert_int_equal(test_parse(&cfg, err, "--port=5353"), 0);
	assert_false(cfg.kube);
	config_done(&cfg);
	assert_int_equal(test_parse(&cfg, err, "--kube-snapshot=/tmp/c.json"), 0);
	assert_true(cfg.kube);
	assert_string_equal(cfg.kube_snapshot, "/tmp/c.json");
	config_done(&cfg);
	assert_int_equal(test_parse(&cfg, err, "--kubeconfig=/root/.kube/config"), 0);
	assert_true(cfg.kube);
	assert_string_equal(cfg.kubeconfig, "/root/.kube/config");
	config_done(&cfg);
	assert_int_equal(test_parse(&cfg, err, "--kube-api-url=http://127.0.0.1:8001"), 0);
	assert_true(cfg.kube && !cfg.kube_token_file);
	config_done(&cfg);
	assert_int_equal(test_parse(&cfg, err, "--kube-snapshot=/a", "--kubeconfig=/b"), -EINVAL);
	assert_non_null(strstr(err, "alternatives"));
	config_done(&cfg);
	assert_int_equal(test_parse(&cfg, err, "--kube-api-url=http://x", "--kube-snapshot=/a"),
			 -EINVAL);
	config_done(&cfg);
	assert_int_equal(test_parse(&cfg, err, "--kube-snapshot=/a", "--kube-token-file=/t"),
			 -EINVAL);
	assert_non_null(strstr(err, "not with --kube-snapshot"));
	config_done(&cfg);
	/* with a kubeconfig they override it, as kubectl's --token and --certificate-authority */
	assert_int_equal(test_parse(&cfg, err, "--kubeconfig=/k", "--kube-ca-file=/c"), 0);
	assert_string_equal(cfg.kube_ca_file, "/c");
	config_done(&cfg);
}

/* A conf file with `text`, parsed; the error must start with FILE:LINE: and contain msg. */
static void
test_conf_error(const char *text, int want_rc, unsigned line, const char *msg)
{
	char err[TEST_ERRLEN], *path = test_write("bad.conf", text), *prefix;
	struct config cfg;
	int rc = test_parse(&cfg, err, "-C", path);

	assert_true(asprintf(&prefix, "%s:%u: ", path, line) > 0);
	if (rc != want_rc || strncmp(err, prefix, strlen(prefix)) || !strstr(err, msg))
		fail_msg("conf \"%s\": rc %d, error \"%s\"; wanted %d, \"%s%s\"", text, rc, err,
			 want_rc, prefix, msg);
	config_done(&cfg);
	unlink(path);
	free(prefix);
	free(path);
}

static void
test_conf_errors(void **state)
{
	(void)state;
	test_conf_error("# c\n\nport=70000\n", -EINVAL, 3, "bad value for --port: \"70000\"");
	test_conf_error("bogus=1\n", -EINVAL, 1, "unknown option \"bogus\"");
	test_conf_error("  \n--port=53\n", -EINVAL, 2, "unknown option \"--port\"");
	test_conf_error("no-resolv=yes\n", -EINVAL, 1, "option --no-resolv takes no value");
	test_conf_error("no-resolv=\n", -EINVAL, 1, "option --no-resolv takes no value");
	test_conf_error("port\n", -EINVAL, 1, "option --port needs a value");
	test_conf_error("port=\n", -EINVAL, 1, "bad value for --port");
	test_conf_error("server=1.2.3.4#x\n", -EINVAL, 1, "--server");
	test_conf_error("server=1.2.3.4@eth0\n", -EINVAL, 1, "not supported");
	test_conf_error("address=/a//1.2.3.4\n", -EINVAL, 1, "(empty domain)");
	test_conf_error("pid-file=\"/x\n", -EINVAL, 1, "missing closing \"");
	test_conf_error("help\n", -EINVAL, 1, "--help is not allowed in a conf file");
	test_conf_error("version\n", -EINVAL, 1, "--version is not allowed in a conf file");
	test_conf_error("port=53\nconf-file=/nonexistent/x.conf\n", -ENOENT, 2,
			"cannot read conf-file \"/nonexistent/x.conf\"");
	test_conf_error("conf-dir=/nonexistent/d\n", -ENOENT, 1, "cannot read conf-dir");
	test_conf_error("port=5353 junk\n", -EINVAL, 1, "--port: \"5353 junk\"");
	test_conf_error("# kube\nkube-pods=maybe\n", -EINVAL, 2, "bad value for --kube-pods");
	test_conf_error("kube-ttl=4000\n", -EINVAL, 1, "--kube-ttl: \"4000\" (0..3600)");
	test_conf_error("kube-domain=a..b\n", -EINVAL, 1, "--kube-domain");
	test_conf_error("kube-namespaces=ok\nkube-namespaces=Not_OK\n", -EINVAL, 2,
			"bad character in namespace");
	{
		char *line = malloc(5000);

		assert_non_null(line);
		memset(line, 'a', 4998);
		memcpy(line, "# ", 2);
		line[4998] = '\n';
		line[4999] = '\0';
		test_conf_error(line, -EINVAL, 1, "line longer than 4096");
		free(line);
	}
}

/* An error inside a nested file names the inner file and its line. */
static void
test_conf_nested_error(void **state)
{
	char err[TEST_ERRLEN], *inner = test_write("inner.conf", "port=1\nport=x\n");
	char *outer_text, *outer, *want;
	struct config cfg;

	(void)state;
	assert_true(asprintf(&outer_text, "log-queries\nconf-file=%s\n", inner) > 0);
	outer = test_write("outer.conf", outer_text);
	assert_int_equal(test_parse(&cfg, err, "--conf-file", outer), -EINVAL);
	assert_true(asprintf(&want, "%s:2: bad value for --port: \"x\" (0..65535)", inner) > 0);
	assert_string_equal(err, want);
	config_done(&cfg);
	unlink(inner);
	unlink(outer);
	free(want);
	free(outer_text);
	free(outer);
	free(inner);
}

static void
test_conf_syntax(void **state)
{
	char err[TEST_ERRLEN], *path;
	struct config cfg;

	(void)state;
	path = test_write("syntax.conf", "\t  port = 5353   # trailing comment\n"
					 "   # indented comment\n"
					 "\n"
					 "pid-file=\"/tmp/a b#c\"\n"
					 "log-facility=\"/var/log/\\\"q\\\".log\"\n"
					 "server=/x/#\n"
					 "address=/y/#\n"
					 "user\n"
					 "group=\n"
					 "strict-order\r\n"
					 "resolv-file=/etc/r#not-a-comment\n");
	assert_int_equal(test_parse(&cfg, err, "-C", path), 0);
	assert_int_equal(cfg.port, 5353);
	assert_string_equal(cfg.pid_file, "/tmp/a b#c");
	assert_string_equal(cfg.log_facility, "/var/log/\"q\".log");
	assert_int_equal(cfg.servers[0].kind, CONFIG_SERVER_DEFAULT);
	assert_int_equal(cfg.addresses[0].kind, CONFIG_ADDRESS_UNSPEC);
	assert_null(cfg.user);
	assert_null(cfg.group);
	assert_true(cfg.strict_order);
	assert_string_equal(cfg.resolv_file, "/etc/r#not-a-comment");
	config_done(&cfg);
	unlink(path);
	free(path);
}

/* Options apply in the order read: a conf file's values sit where its --conf-file is. */
static void
test_conf_order(void **state)
{
	char err[TEST_ERRLEN], *path = test_write("order.conf", "port=1000\nserver=10.0.0.2\n");
	struct config cfg;

	(void)state;
	assert_int_equal(test_parse(&cfg, err, "-a", "::1", "-S", "10.0.0.1", "-C", path,
				    "--port=5353", "-S", "10.0.0.3"),
			 0);
	assert_int_equal(cfg.port, 5353);
	test_addr_is(&cfg.listen[0], "::1", 5353);
	assert_int_equal(cfg.n_servers, 3);
	test_addr_is(&cfg.servers[0].addr, "10.0.0.1", 53);
	test_addr_is(&cfg.servers[1].addr, "10.0.0.2", 53);
	test_addr_is(&cfg.servers[2].addr, "10.0.0.3", 53);
	config_done(&cfg);
	assert_int_equal(test_parse(&cfg, err, "--port=5353", "-C", path), 0);
	assert_int_equal(cfg.port, 1000);
	config_done(&cfg);
	unlink(path);
	free(path);
}

/* Which interfaces a conf-dir value read, in order, as one comma-joined string. */
static void
test_dir_reads(const char *value, const char *want)
{
	char err[TEST_ERRLEN], got[256] = "";
	struct config cfg;
	int rc = test_parse(&cfg, err, "--conf-dir", value);

	if (rc != 0)
		fail_msg("--conf-dir %s: %d %s", value, rc, err);
	for (size_t i = 0; i < cfg.n_interfaces; i++) {
		if (i)
			strcat(got, ",");
		strcat(got, cfg.interfaces[i]);
	}
	if (strcmp(got, want))
		fail_msg("--conf-dir %s read \"%s\", wanted \"%s\"", value, got, want);
	config_done(&cfg);
}

static void
test_conf_dir(void **state)
{
	static const char *const files[][2] = {
		{"b.conf", "interface=b\n"},  {"a.conf", "interface=a\n"},
		{"c.txt", "interface=c\n"},   {"B.conf", "interface=B\n"},
		{".hidden", "interface=h\n"}, {"a.conf~", "interface=t\n"},
		{"#x#", "interface=x\n"},     {"d.bak", "interface=d\n"},
	};
	char *dir = test_mkdir("conf.d"), *sub, *value;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		char name[64], *p;

		snprintf(name, sizeof(name), "conf.d/%s", files[i][0]);
		p = test_write(name, files[i][1]);
		free(p);
	}
	/* a directory whose name matches is skipped, not read */
	sub = test_mkdir("conf.d/e.conf");

	test_dir_reads(dir, "B,a,b,c,d");
	assert_true(asprintf(&value, "%s,*.conf", dir) > 0);
	test_dir_reads(value, "B,a,b");
	free(value);
	assert_true(asprintf(&value, "%s,.txt,.bak", dir) > 0);
	test_dir_reads(value, "B,a,b");
	free(value);
	assert_true(asprintf(&value, "%s,*.conf,*.txt,B.conf", dir) > 0);
	test_dir_reads(value, "a,b,c");
	free(value);

	/* -7 and from a conf file */
	assert_true(asprintf(&value, "conf-dir=%s,*.txt\n", dir) > 0);
	{
		char err[TEST_ERRLEN], *path = test_write("dir.conf", value);
		struct config cfg;

		assert_int_equal(test_parse(&cfg, err, "-7", dir, "-C", path), 0);
		assert_int_equal(cfg.n_interfaces, 6);
		assert_string_equal(cfg.interfaces[5], "c");
		config_done(&cfg);
		unlink(path);
		free(path);
	}
	free(value);
	free(sub);
	free(dir);
}

/* f1 includes f2 ... includes fN: 8 levels are fine, 9 are not, nor is a file including itself. */
static void
test_conf_depth(void **state)
{
	char err[TEST_ERRLEN], name[32], text[256], *path = NULL, *top;
	struct config cfg;

	(void)state;
	for (int i = 9; i >= 1; i--) {
		snprintf(name, sizeof(name), "depth%d.conf", i);
		if (path)
			snprintf(text, sizeof(text), "cache-size=%d\nconf-file=%s\n", i, path);
		else
			snprintf(text, sizeof(text), "cache-size=%d\n", i);
		free(path);
		path = test_write(name, text);
	}
	free(path);
	/* depth2 .. depth9: 8 files */
	assert_true(asprintf(&top, "%s/depth2.conf", test_dir) > 0);
	assert_int_equal(test_parse(&cfg, err, "-C", top), 0);
	assert_int_equal(cfg.cache_size, 9);
	config_done(&cfg);
	free(top);
	assert_true(asprintf(&top, "%s/depth1.conf", test_dir) > 0);
	assert_int_equal(test_parse(&cfg, err, "-C", top), -EINVAL);
	assert_non_null(strstr(err, "depth8.conf:2: conf-file"));
	assert_non_null(strstr(err, "nested deeper than 8"));
	config_done(&cfg);
	free(top);

	assert_true(asprintf(&top, "%s/self.conf", test_dir) > 0);
	snprintf(text, sizeof(text), "log-queries\nconf-file=%s\n", top);
	free(test_write("self.conf", text));
	assert_int_equal(test_parse(&cfg, err, "-C", top), -EINVAL);
	assert_non_null(strstr(err, "nested deeper than 8"));
	config_done(&cfg);
	free(top);
}

/* --help lists every option of the table, with its short form, value and default. */
static void
test_help(void **state)
{
	static const char *const forms[] = {"--help", "-w"};
	char err[TEST_ERRLEN];
	struct config cfg;

	(void)state;
	for (size_t f = 0; f < ARRAY_SIZE(forms); f++) {
		char *text = NULL, want[128];
		size_t len = 0, lines = 0;
		FILE *out = open_memstream(&text, &len);

		assert_non_null(out);
		assert_int_equal(test_parse_v(&cfg, err, out, 1, &forms[f]), 1);
		fclose(out);
		for (size_t i = 0; i < config_opts_count; i++) {
			const struct config_opts_entry *e = &config_opts_table[i];

			if (e->short_name)
				snprintf(want, sizeof(want), "-%c, --%s", e->short_name, e->name);
			else
				snprintf(want, sizeof(want), "      --%s", e->name);
			if (e->metavar)
				snprintf(want + strlen(want), sizeof(want) - strlen(want),
					 e->arg == CONFIG_OPTS_OPTIONAL ? "[=%s]" : "=%s",
					 e->metavar);
			if (!strstr(text, want))
				fail_msg("--help lacks \"%s\"", want);
			assert_non_null(strstr(text, e->help));
			if (e->def) {
				snprintf(want, sizeof(want), "(default: %s)", e->def);
				assert_non_null(strstr(text, want));
			}
		}
		for (const char *p = text; (p = strstr(p, "\n  ")); p++)
			lines++;
		assert_int_equal(lines, config_opts_count); /* one line per option */
		config_done(&cfg);
		free(text);
	}
}

static void
test_version(void **state)
{
	static const char *const forms[] = {"--version", "-v"};
	char err[TEST_ERRLEN];
	struct config cfg;

	(void)state;
	for (size_t f = 0; f < ARRAY_SIZE(forms); f++) {
		char *text = NULL;
		size_t len = 0;
		FILE *out = open_memstream(&text, &len);

		assert_non_null(out);
		assert_int_equal(test_parse_v(&cfg, err, out, 1, &forms[f]), 1);
		fclose(out);
		assert_true(strncmp(text, "kubemasq version ", 17) == 0);
		assert_non_null(strstr(text, "\nCompile time options: "));
		assert_int_equal(text[len - 1], '\n');
		config_done(&cfg);
		free(text);
	}
}

static void
test_listen_port(void **state)
{
	char err[TEST_ERRLEN];
	struct config cfg;

	(void)state;
	assert_int_equal(test_parse(&cfg, err, "--listen-address=127.0.0.1", "-a", "::1,10.1.2.3",
				    "--port=5353"),
			 0);
	assert_int_equal(cfg.n_listen, 3);
	test_addr_is(&cfg.listen[0], "127.0.0.1", 5353);
	test_addr_is(&cfg.listen[1], "::1", 5353);
	test_addr_is(&cfg.listen[2], "10.1.2.3", 5353);
	config_done(&cfg);
	assert_int_equal(test_parse(&cfg, err, "-a", "127.0.0.1"), 0);
	test_addr_is(&cfg.listen[0], "127.0.0.1", 53);
	config_done(&cfg);
}

static void
test_resolv(void **state)
{
	char err[TEST_ERRLEN];
	struct config cfg;
	char *one = test_write("resolv1", "# generated\n"
					  "search example.com\n"
					  "nameserver 8.8.8.8\n"
					  "nameserver\n"
					  "nameserver bad\n"
					  "  nameserver\t::1  # trailing\n"
					  "nameserver fe80::1%eth0\n"
					  "options ndots:5\n"
					  "nameserver 10.0.0.53\n");
	char *two = test_write("resolv2", "nameserver 9.9.9.9\n");

	(void)state;
	assert_int_equal(test_parse(&cfg, err, "-S", "1.1.1.1", "-S", "/loc/"), 0);
	assert_int_equal(config_read_resolv(&cfg, one, err, sizeof(err)), 3);
	assert_int_equal(cfg.n_servers, 5);
	assert_false(cfg.servers[0].from_resolv);
	assert_false(cfg.servers[1].from_resolv);
	test_addr_is(&cfg.servers[2].addr, "8.8.8.8", 53);
	test_addr_is(&cfg.servers[3].addr, "::1", 53);
	test_addr_is(&cfg.servers[4].addr, "10.0.0.53", 53);
	for (size_t i = 2; i < 5; i++) {
		assert_true(cfg.servers[i].from_resolv);
		assert_int_equal(cfg.servers[i].kind, CONFIG_SERVER_ADDR);
		assert_null(cfg.servers[i].domains);
	}
	/* a re-read replaces the resolv servers and keeps the configured ones */
	assert_int_equal(config_read_resolv(&cfg, two, err, sizeof(err)), 1);
	assert_int_equal(cfg.n_servers, 3);
	test_addr_is(&cfg.servers[0].addr, "1.1.1.1", 53);
	assert_int_equal(cfg.servers[1].kind, CONFIG_SERVER_LOCAL);
	test_addr_is(&cfg.servers[2].addr, "9.9.9.9", 53);
	/* a missing file is an error and leaves the servers alone */
	assert_int_equal(config_read_resolv(&cfg, "/nonexistent/resolv.conf", err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/resolv.conf"));
	assert_int_equal(cfg.n_servers, 3);
	config_done(&cfg);

	/* on a bare config_init() too */
	config_init(&cfg);
	assert_int_equal(config_read_resolv(&cfg, two, err, sizeof(err)), 1);
	assert_int_equal(cfg.n_servers, 1);
	config_done(&cfg);
	unlink(one);
	unlink(two);
	free(one);
	free(two);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full_covers_table),
		cmocka_unit_test(test_every_option_argv),
		cmocka_unit_test(test_every_option_conf),
		cmocka_unit_test(test_short_forms),
		cmocka_unit_test(test_servers),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_long_domains),
		cmocka_unit_test(test_cross_checks),
		cmocka_unit_test(test_kube_sources),
		cmocka_unit_test(test_conf_errors),
		cmocka_unit_test(test_conf_nested_error),
		cmocka_unit_test(test_conf_syntax),
		cmocka_unit_test(test_conf_order),
		cmocka_unit_test(test_conf_dir),
		cmocka_unit_test(test_conf_depth),
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_listen_port),
		cmocka_unit_test(test_resolv),
	};

	return cmocka_run_group_tests(tests, test_setup, test_teardown);
}
