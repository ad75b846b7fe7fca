/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * config_opts.h - the one option table. Every option kubemasq knows is one line of
 * CONFIG_OPTS_TABLE below, and that line alone drives the getopt_long parsing of argv, the
 * `name[=value]` lines of conf files, --help, the tests (which expand the same table) and, by
 * a test that compares them, the man page. Adding an option means adding a line here, a field
 * in struct config (config.h) and, if no generic parser fits, one parser in config.c.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/config.h"

struct config_ctx;

/* Whether an option takes a value: getopt's no_argument / required_argument / optional_argument.
 * In a conf file, NONE forbids `=value`, REQUIRED demands it, OPTIONAL allows both. */
enum config_opts_arg {
	CONFIG_OPTS_NONE,
	CONFIG_OPTS_REQUIRED,
	CONFIG_OPTS_OPTIONAL,
};

struct config_opts_entry;

/* A value parser: `value` is NULL when an OPTIONAL option came without one. Returns 0, 1 when
 * the option printed text and parsing should stop (--help, --version), or a negative errno
 * after writing the error line through the context. */
typedef int config_opts_parse_fn(struct config_ctx *ctx, const struct config_opts_entry *e,
				 const char *value);

struct config_opts_entry {
	const char *name; /* long name, also the conf-file keyword */
	int short_name;	  /* dnsmasq's letter, 0 for long only */
	enum config_opts_arg arg;
	const char *metavar; /* shown in --help: --port=PORT */
	config_opts_parse_fn *parse;
	size_t offset;	   /* field in struct config, for the generic parsers */
	size_t size;	   /* its size: 1 (bool), 2, 4, 8 (integers), pointer */
	uint64_t min, max; /* range of integer values */
	const char *def;   /* default shown in --help, NULL: none to show */
	const char *help;
};

/* For the table's `field` column: the struct config member an option fills, or none. */
#define CONFIG_OPTS_FIELD(f)                                                                       \
	.offset = offsetof(struct config, f), .size = sizeof(((struct config *)0)->f)
#define CONFIG_OPTS_NOFIELD .offset = 0, .size = 0

/* Long-only options get getopt values above any character. */
#define CONFIG_OPTS_LONG_BASE 256

/* The largest TTL of RFC 2181 (2^31 - 1). */
#define CONFIG_OPTS_TTL_MAX 2147483647

/*
 * X(name, short, arg, metavar, parser, field, min, max, default, help)
 *   arg:    NONE, REQUIRED or OPTIONAL (CONFIG_OPTS_ prefix added by the expansion)
 *   parser: suffix of a config_opt_<parser>() function in config.c
 * Order is the order of --help, the man page and conf/kubemasq.conf.
 */
/* clang-format off */
#define CONFIG_OPTS_TABLE(X)                                                                      \
	/* listening */                                                                           \
	X("port", 'p', REQUIRED, "PORT", uint, CONFIG_OPTS_FIELD(port), 0, 65535, "53",           \
	  "listen for DNS on this port; 0 disables DNS")                                          \
	X("listen-address", 'a', REQUIRED, "IP[,IP...]", listen, CONFIG_OPTS_NOFIELD, 0, 0, NULL, \
	  "listen on this IPv4 or IPv6 address (repeatable; port from --port)")                  \
	X("interface", 'i', REQUIRED, "NAME[,NAME...]", iface, CONFIG_OPTS_NOFIELD, 0, 0, NULL,    \
	  "listen on this interface (repeatable)")                                                \
	X("bind-interfaces", 'z', NONE, NULL, flag, CONFIG_OPTS_FIELD(bind_interfaces), 0, 0,     \
	  NULL, "bind only the addresses listened on, not the wildcard")                          \
	X("tcp-max-connections", 0, REQUIRED, "N", uint,                                          \
	  CONFIG_OPTS_FIELD(tcp_max_connections), 1, 65535, "256",                                \
	  "maximum simultaneous TCP clients")                                                     \
	X("tcp-idle-timeout", 0, REQUIRED, "SECONDS", uint, CONFIG_OPTS_FIELD(tcp_idle_timeout),  \
	  1, 3600, "10", "close a TCP client idle this long")                                     \
	/* upstreams */                                                                           \
	X("server", 'S', REQUIRED, "[/DOMAIN/...]IP[#PORT]", server, CONFIG_OPTS_NOFIELD, 0, 0,   \
	  NULL, "forward to this server (/DOMAIN/ only for those domains; /DOMAIN/ alone: local;" \
		" /DOMAIN/#: default servers)")                                                   \
	X("no-resolv", 'R', NONE, NULL, flag, CONFIG_OPTS_FIELD(no_resolv), 0, 0, NULL,           \
	  "do not read servers from the resolv-file")                                             \
	X("resolv-file", 'r', REQUIRED, "PATH", str, CONFIG_OPTS_FIELD(resolv_file), 0, 0,        \
	  "/etc/resolv.conf", "read upstream servers from this file")                             \
	X("strict-order", 'o', NONE, NULL, flag, CONFIG_OPTS_FIELD(strict_order), 0, 0, NULL,     \
	  "try servers in the order given")                                                       \
	X("all-servers", 0, NONE, NULL, flag, CONFIG_OPTS_FIELD(all_servers), 0, 0, NULL,         \
	  "send each query to all servers at once; the first answer wins")                        \
	X("dns-forward-max", '0', REQUIRED, "N", uint, CONFIG_OPTS_FIELD(dns_forward_max), 1,      \
	  65535, "1000", "maximum concurrent forwarded queries")                                  \
	X("edns-packet-max", 'P', REQUIRED, "BYTES", uint, CONFIG_OPTS_FIELD(edns_packet_max),    \
	  512, 65535, "1232", "largest EDNS UDP packet advertised to and accepted from servers")  \
	X("query-port", 'Q', REQUIRED, "PORT", uint, CONFIG_OPTS_FIELD(query_port), 0, 65535,     \
	  "0", "send queries to servers from this port; 0 = random ports from a socket pool")        \
	X("min-port", 0, REQUIRED, "PORT", uint, CONFIG_OPTS_FIELD(min_port), 0, 65535, "1024",   \
	  "lowest random source port")                                                            \
	X("max-port", 0, REQUIRED, "PORT", uint, CONFIG_OPTS_FIELD(max_port), 0, 65535, "65535",  \
	  "highest random source port")                                                           \
	X("upstream-timeout", 0, REQUIRED, "MS", uint, CONFIG_OPTS_FIELD(upstream_timeout_ms),    \
	  100, 60000, "4000", "answer SERVFAIL when no server answered within this time")         \
	X("upstream-retry", 0, REQUIRED, "MS", uint, CONFIG_OPTS_FIELD(upstream_retry_ms), 50,    \
	  60000, "1000", "try the next server after this time; at most --upstream-timeout")      \
	X("dns-loop-detect", 0, NONE, NULL, flag, CONFIG_OPTS_FIELD(dns_loop_detect), 0, 0,       \
	  NULL, "probe each server at start and on changes; one that loops back is not used")     \
	/* local answers and filters */                                                           \
	X("address", 'A', REQUIRED, "/DOMAIN/[DOMAIN/...][IP]", address, CONFIG_OPTS_NOFIELD, 0,  \
	  0, NULL, "answer IP for these domains and below; no IP: NXDOMAIN; #: 0.0.0.0 and ::")   \
	X("domain-needed", 'D', NONE, NULL, flag, CONFIG_OPTS_FIELD(domain_needed), 0, 0, NULL,   \
	  "never forward names without a dot to the default servers")                             \
	X("bogus-priv", 'b', NONE, NULL, flag, CONFIG_OPTS_FIELD(bogus_priv), 0, 0, NULL,         \
	  "never forward reverse lookups of private addresses to the default servers")            \
	/* local records (dnsmasq's; local_records.c) */                                          \
	X("host-record", 0, REQUIRED, "NAME[,NAME...],[IPv4][,IPv6][,TTL]", local_record,         \
	  CONFIG_OPTS_NOFIELD, 0, 0, NULL, "A, AAAA and PTR records for these names")              \
	X("cname", 0, REQUIRED, "ALIAS[,ALIAS...],TARGET[,TTL]", local_record,                    \
	  CONFIG_OPTS_NOFIELD, 0, 0, NULL, "a CNAME to a local name; its records follow it")       \
	X("txt-record", 'Y', REQUIRED, "NAME[,TEXT...]", local_record, CONFIG_OPTS_NOFIELD, 0, 0, \
	  NULL, "a TXT record of these strings")                                                  \
	X("srv-host", 'W', REQUIRED, "_SRV._PROTO.DOMAIN[,TARGET[,PORT[,PRIO[,WEIGHT]]]]",        \
	  local_record, CONFIG_OPTS_NOFIELD, 0, 0, NULL, "an SRV record (port 1, 0 0 by default)") \
	X("mx-host", 'm', REQUIRED, "NAME[,TARGET[,PREF]]", local_record, CONFIG_OPTS_NOFIELD, 0,  \
	  0, NULL, "an MX record (target: this host's name; preference 1)")                       \
	X("ptr-record", 0, REQUIRED, "NAME[,TARGET]", local_record, CONFIG_OPTS_NOFIELD, 0, 0,    \
	  NULL, "a PTR record")                                                                   \
	X("addn-hosts", 'H', REQUIRED, "FILE|DIR", addn_hosts, CONFIG_OPTS_NOFIELD, 0, 0, NULL,   \
	  "read this hosts file too, or every file of DIR (repeatable; re-read on SIGHUP)")       \
	X("no-hosts", 'h', NONE, NULL, flag, CONFIG_OPTS_FIELD(no_hosts), 0, 0, NULL,             \
	  "do not read /etc/hosts")                                                               \
	X("expand-hosts", 'E', NONE, NULL, flag, CONFIG_OPTS_FIELD(expand_hosts), 0, 0, NULL,     \
	  "add --domain to the hosts files' names without a dot")                                 \
	X("domain", 's', REQUIRED, "DOMAIN", domain, CONFIG_OPTS_FIELD(domain), 0, 0, NULL,       \
	  "the local domain, for --expand-hosts")                                                 \
	/* cache */                                                                               \
	X("cache-bytes", 0, REQUIRED, "SIZE[K|M|G]", bytes, CONFIG_OPTS_FIELD(cache_bytes),       \
	  65536, 2047ull << 20, "1G", "memory budget of the cache, overhead included; 64K..2047M") \
	X("cache-size", 'c', REQUIRED, "N", cache_size, CONFIG_OPTS_FIELD(cache_size), 0,         \
	  10000000, "no cap", "also cap the entries (dnsmasq's 150); 0 disables caching")         \
	X("min-cache-ttl", 0, REQUIRED, "SECONDS", uint, CONFIG_OPTS_FIELD(min_cache_ttl), 0,     \
	  3600, "0", "cache answers at least this long")                                          \
	X("max-cache-ttl", 0, REQUIRED, "SECONDS", uint, CONFIG_OPTS_FIELD(max_cache_ttl), 0,     \
	  CONFIG_OPTS_TTL_MAX, "0", "cache answers at most this long; 0 = no cap")                \
	X("max-ttl", 0, REQUIRED, "SECONDS", uint, CONFIG_OPTS_FIELD(max_ttl), 0,                 \
	  CONFIG_OPTS_TTL_MAX, "0", "cap the TTL given to clients; 0 = no cap")                   \
	X("local-ttl", 0, REQUIRED, "SECONDS", uint, CONFIG_OPTS_FIELD(local_ttl), 0,             \
	  CONFIG_OPTS_TTL_MAX, "0", "TTL of answers from --address")                              \
	X("neg-ttl", 0, REQUIRED, "SECONDS", uint, CONFIG_OPTS_FIELD(neg_ttl), 0,                 \
	  CONFIG_OPTS_TTL_MAX, "0", "cache negative answers without SOA this long; 0 = not")      \
	X("max-neg-ttl", 0, REQUIRED, "SECONDS", uint, CONFIG_OPTS_FIELD(max_neg_ttl), 0,         \
	  CONFIG_OPTS_TTL_MAX, "3600", "cache negative answers at most this long")                \
	X("no-negcache", 'N', NONE, NULL, flag, CONFIG_OPTS_FIELD(no_negcache), 0, 0, NULL,       \
	  "do not cache negative answers")                                                        \
	/* serve-stale and prefetch */                                                            \
	X("use-stale-cache", 0, OPTIONAL, "MAX-SECONDS", stale_cache,                             \
	  CONFIG_OPTS_FIELD(stale_cache_max), 0, CONFIG_OPTS_TTL_MAX, "off",                      \
	  "answer expired entries up to this long past expiry (no value: 86400), refreshing "     \
	  "them; 0 = no limit")                                                                   \
	X("stale-mode", 0, REQUIRED, "MODE", stale_mode, CONFIG_OPTS_FIELD(stale_verify), 0, 0,   \
	  "immediate", "immediate: answer stale at once; verify: ask the servers first")         \
	X("stale-answer-timeout", 0, REQUIRED, "MS", uint,                                        \
	  CONFIG_OPTS_FIELD(stale_answer_timeout), 1, 60000, "1800",                              \
	  "with --stale-mode=verify: answer stale when no server answered within this time")      \
	X("stale-ttl", 0, REQUIRED, "SECONDS", uint, CONFIG_OPTS_FIELD(stale_ttl), 1, 3600, "30", \
	  "TTL of stale answers")                                                                 \
	X("prefetch", 0, NONE, NULL, flag, CONFIG_OPTS_FIELD(prefetch), 0, 0, NULL,               \
	  "refresh an entry hit in the last tenth of its TTL in the background")                  \
	/* kube resolver */                                                                       \
	X("kube-domain", 0, REQUIRED, "ZONE", kube_domain, CONFIG_OPTS_FIELD(kube_domain), 0, 0,  \
	  "cluster.local", "the cluster zone the kube resolver answers")                          \
	X("kube-namespaces", 0, REQUIRED, "NS[,NS...]", kube_namespaces, CONFIG_OPTS_NOFIELD, 0,  \
	  0, "all", "answer only for these namespaces (repeatable); others get NXDOMAIN")         \
	X("kube-pods", 0, REQUIRED, "MODE", kube_pods, CONFIG_OPTS_FIELD(kube_pods), 0, 0,        \
	  "insecure", "pod records a-b-c-d.NS.pod.ZONE: disabled, insecure or verified")          \
	X("kube-ttl", 0, REQUIRED, "SECONDS", uint, CONFIG_OPTS_FIELD(kube_ttl), 0, 3600, "5",    \
	  "TTL of the cluster records")                                                           \
	X("kube-endpoint-pod-names", 0, NONE, NULL, flag,                                         \
	  CONFIG_OPTS_FIELD(kube_endpoint_pod_names), 0, 0, NULL,                                 \
	  "name endpoints without a hostname by their pod name, not their dashed IP")             \
	X("kube-ignore-empty-service", 0, NONE, NULL, flag,                                       \
	  CONFIG_OPTS_FIELD(kube_ignore_empty_service), 0, 0, NULL,                               \
	  "answer NXDOMAIN for a ClusterIP service without ready endpoints")                      \
	X("kube-snapshot", 0, REQUIRED, "FILE", str, CONFIG_OPTS_FIELD(kube_snapshot), 0, 0,      \
	  NULL, "serve the cluster from this kubectl ... -o json file, re-read when it changes")  \
	X("kube", 0, NONE, NULL, flag, CONFIG_OPTS_FIELD(kube), 0, 0, NULL,                       \
	  "run the kube resolver; without a source option: the in-cluster API server")           \
	X("kube-api-url", 0, REQUIRED, "URL", str, CONFIG_OPTS_FIELD(kube_api_url), 0, 0, NULL,   \
	  "list and watch this API server (http:// for kubectl proxy); implies --kube")           \
	X("kube-token-file", 0, REQUIRED, "FILE", str, CONFIG_OPTS_FIELD(kube_token_file), 0, 0,  \
	  NULL, "bearer token for the API server, re-read every minute and on 401")               \
	X("kube-ca-file", 0, REQUIRED, "FILE", str, CONFIG_OPTS_FIELD(kube_ca_file), 0, 0, NULL,  \
	  "CA certificates that verify the API server (default: the system's)")                   \
	X("kubeconfig", 0, REQUIRED, "FILE", str, CONFIG_OPTS_FIELD(kubeconfig), 0, 0, NULL,      \
	  "API server and credentials from this kubeconfig's current context; implies --kube")    \
	X("kube-startup-timeout", 0, REQUIRED, "SECONDS", uint,                                   \
	  CONFIG_OPTS_FIELD(kube_startup_timeout), 0, 3600, "0",                                  \
	  "/ready after this long even if not synced (cluster names SERVFAIL); 0 = wait")         \
	/* operations */                                                                          \
	X("metrics-address", 0, REQUIRED, "IP:PORT", str, CONFIG_OPTS_FIELD(metrics_address), 0,  \
	  0, "off", "serve /metrics, /health and /ready over HTTP here ([IPv6]:PORT)")             \
	X("shutdown-delay", 0, REQUIRED, "SECONDS", uint, CONFIG_OPTS_FIELD(shutdown_delay), 0,   \
	  3600, "0", "on SIGTERM: /ready 503 at once, DNS answered this long, then exit")          \
	/* logging and process */                                                                 \
	X("log-queries", 'q', OPTIONAL, "extra", log_queries, CONFIG_OPTS_FIELD(log_queries), 0,  \
	  0, NULL, "log every query, dump the cache on SIGUSR1; extra: serial number and client"  \
		" on each line, records in zone-file form")                                       \
	X("log-facility", '8', REQUIRED, "FACILITY", str, CONFIG_OPTS_FIELD(log_facility), 0, 0,  \
	  "daemon", "syslog facility, - for stderr, or a file path to append to")                 \
	X("keep-in-foreground", 'k', NONE, NULL, flag, CONFIG_OPTS_FIELD(keep_in_foreground), 0,  \
	  0, NULL, "do not go into the background")                                              \
	X("no-daemon", 'd', NONE, NULL, flag, CONFIG_OPTS_FIELD(no_daemon), 0, 0, NULL,           \
	  "debug mode: stay in the foreground and log to stderr too")                             \
	X("pid-file", 'x', OPTIONAL, "PATH", str, CONFIG_OPTS_FIELD(pid_file), 0, 0, "none",      \
	  "write the process id to this file; no value: none")                                    \
	X("user", 'u', OPTIONAL, "USER", str, CONFIG_OPTS_FIELD(user), 0, 0, "nobody",            \
	  "run as this user when started as root; no value: keep root")                           \
	X("group", 'g', OPTIONAL, "GROUP", str, CONFIG_OPTS_FIELD(group), 0, 0,                   \
	  "the user's group", "run as this group when started as root")                           \
	X("conf-file", 'C', REQUIRED, "FILE", conf_file, CONFIG_OPTS_NOFIELD, 0, 0, NULL,         \
	  "read options from this file (repeatable, nested up to 8 deep)")                        \
	X("conf-dir", '7', REQUIRED, "DIR[,.EXT|*.EXT...]", conf_dir, CONFIG_OPTS_NOFIELD, 0, 0,  \
	  NULL, "read every file of DIR in order; .EXT skips, *.EXT keeps only those suffixes")   \
	X("test", 0, NONE, NULL, flag, CONFIG_OPTS_FIELD(test_only), 0, 0, NULL,                  \
	  "check the configuration and exit")                                                     \
	X("help", 'w', NONE, NULL, help, CONFIG_OPTS_NOFIELD, 0, 0, NULL, "show this help")       \
	X("version", 'v', NONE, NULL, version, CONFIG_OPTS_NOFIELD, 0, 0, NULL,                   \
	  "show the version and compile-time options")
/* clang-format on */

/* The table expanded into entries (defined in config.c), in table order. */
extern const struct config_opts_entry config_opts_table[];
extern const size_t config_opts_count;
