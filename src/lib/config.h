/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * config.h - the daemon's configuration, filled from the command line, --conf-file and
 * --conf-dir by one option table (config_opts.h). config.c is pure: it parses, validates and
 * reports errors as text; main() prints them and exits. Nothing here touches sockets.
 */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

/* An address with its length, IPv4 or IPv6, port in network order inside `ss`. */
struct config_sockaddr {
	struct sockaddr_storage ss;
	socklen_t len;
};

/*
 * One --server line (or one server of the resolv-file). dnsmasq's forms:
 *   IP[#port]                      a default server (domains == NULL)
 *   /dom/[dom/...]IP[#port]        servers for those domains (and below)
 *   /dom/                          local only: never forwarded (NXDOMAIN unless --address)
 *   /dom/#                         those domains use the default servers
 * Domain names are stored lower-case, without the trailing dot; "" is dnsmasq's "//" (unqualified names).
 */
struct config_server {
	char **domains;
	size_t n_domains;
	enum { CONFIG_SERVER_ADDR, CONFIG_SERVER_LOCAL, CONFIG_SERVER_DEFAULT } kind;
	struct config_sockaddr addr; /* kind == ADDR; port defaults to 53 */
	bool from_resolv;	     /* read from the resolv-file, not the configuration */
};

/* One --address=/dom/[dom/...][IP] line: A or AAAA for the domains and below. No IP means
 * NXDOMAIN; "#" means the unspecified address (0.0.0.0 and ::). */
struct config_address {
	char **domains;
	size_t n_domains;
	enum { CONFIG_ADDRESS_IP, CONFIG_ADDRESS_NXDOMAIN, CONFIG_ADDRESS_UNSPEC } kind;
	int family; /* AF_INET / AF_INET6 when kind == IP */
	uint8_t ip[16];
};

/* --host-record, --cname, --txt-record, --srv-host, --mx-host, --ptr-record: checked when given
 * (local_records.c), built into records when the daemon starts and on SIGHUP. */
struct config_local_record {
	const char *option; /* the option's long name (static) */
	char *value;
};

/* --kube-pods: what a-b-c-d.NS.pod.ZONE answers. */
enum config_kube_pods {
	CONFIG_KUBE_PODS_INSECURE = 0, /* synthesized from the name, as the stock cluster config */
	CONFIG_KUBE_PODS_VERIFIED,     /* only when a watched Pod in NS has that IP */
	CONFIG_KUBE_PODS_DISABLED,     /* NXDOMAIN */
};

struct config {
	/* listening */
	uint16_t port;			/* -p, default 53; 0 disables DNS */
	struct config_sockaddr *listen; /* -a, repeatable; ports filled with `port` */
	size_t n_listen;
	char **interfaces; /* -i, repeatable */
	size_t n_interfaces;
	bool bind_interfaces;	      /* -z */
	unsigned tcp_max_connections; /* --tcp-max-connections, default 256 */
	unsigned tcp_idle_timeout;    /* --tcp-idle-timeout seconds, default 10 */

	/* upstreams */
	struct config_server *servers; /* -S, in order given */
	size_t n_servers;
	bool no_resolv;		      /* -R */
	char *resolv_file;	      /* -r, default /etc/resolv.conf */
	bool strict_order;	      /* -o */
	bool all_servers;	      /* --all-servers */
	unsigned dns_forward_max;     /* -0, default 1000 */
	unsigned edns_packet_max;     /* -P, default 1232 */
	uint16_t query_port;	      /* -Q, 0 = random per query */
	uint16_t min_port;	      /* --min-port, default 1024 */
	uint16_t max_port;	      /* --max-port, default 65535 */
	unsigned upstream_timeout_ms; /* --upstream-timeout, whole query, default 4000 */
	unsigned upstream_retry_ms;   /* --upstream-retry, one try, default 1000 */
	bool dns_loop_detect;	      /* --dns-loop-detect (loop_detect.h) */

	/* local answers and filters */
	struct config_address *addresses; /* -A */
	size_t n_addresses;
	bool domain_needed; /* -D */
	bool bogus_priv;    /* -b */

	/* local records and hosts files (local_records.c) */
	struct config_local_record *local_records; /* in the order given */
	size_t n_local_records;
	char **addn_hosts; /* -H, repeatable: files or directories */
	size_t n_addn_hosts;
	bool no_hosts;	   /* -h: do not read /etc/hosts */
	bool expand_hosts; /* -E: add --domain to simple hosts names */
	char *domain;	   /* -s, NULL = none; no trailing dot */

	/* cache (issue 3 fills the behaviour; the options parse here) */
	uint64_t cache_bytes;	/* --cache-bytes, K/M/G, default 1G */
	unsigned cache_size;	/* --cache-size entries; 0 = off when set */
	bool cache_size_set;	/* given (else no entry cap: the byte budget alone) */
	unsigned min_cache_ttl; /* --min-cache-ttl, <= 3600 */
	unsigned max_cache_ttl; /* --max-cache-ttl, 0 = no cap */
	unsigned max_ttl;	/* --max-ttl, 0 = no cap */
	unsigned local_ttl;	/* --local-ttl, default 0 */
	unsigned neg_ttl;	/* --neg-ttl, 0 = unset */
	unsigned max_neg_ttl;	/* --max-neg-ttl, default 3600 */
	bool no_negcache;	/* -N */

	/* serve-stale and prefetch (issue 14) */
	bool use_stale_cache;	       /* --use-stale-cache */
	unsigned stale_cache_max;      /* its MAX-SECONDS past expiry, 0 = no limit;
						 * default 86400 (dnsmasq's) */
	bool stale_verify;	       /* --stale-mode=verify (else immediate) */
	unsigned stale_answer_timeout; /* --stale-answer-timeout, ms, default 1800 */
	unsigned stale_ttl;	       /* --stale-ttl, default 30 (RFC 8767) */
	bool prefetch;		       /* --prefetch */

	/* kube resolver (KUBE_DNS.md) */
	char *kube_domain;	/* --kube-domain, lower-case, no trailing dot;
						 * default "cluster.local" */
	char **kube_namespaces; /* --kube-namespaces, repeatable; none = all */
	size_t n_kube_namespaces;
	enum config_kube_pods kube_pods; /* --kube-pods, default insecure */
	unsigned kube_ttl;		 /* --kube-ttl, 0..3600, default 5 */
	bool kube_endpoint_pod_names;	 /* --kube-endpoint-pod-names */
	bool kube_ignore_empty_service;	 /* --kube-ignore-empty-service */
	char *kube_snapshot;		 /* --kube-snapshot, NULL = none */
	bool kube;			 /* --kube, or implied by a source option */
	char *kube_api_url;		 /* --kube-api-url, NULL = none */
	char *kube_token_file;		 /* --kube-token-file, NULL = none */
	char *kube_ca_file;		 /* --kube-ca-file, NULL = none */
	char *kubeconfig;		 /* --kubeconfig, NULL = none */
	unsigned kube_startup_timeout;	 /* --kube-startup-timeout seconds: /ready before
						 * the first sync after this; 0 = never */

	/* operations */
	char *metrics_address;	 /* --metrics-address, NULL = off */
	unsigned shutdown_delay; /* --shutdown-delay seconds of answering after
						 * SIGTERM, /ready 503 meanwhile; 0 = exit at once */

	/* logging and process */
	bool log_queries;	 /* -q */
	bool log_queries_extra;	 /* -q extra: serial, client, records as text */
	char *log_facility;	 /* -8, NULL = syslog daemon */
	bool keep_in_foreground; /* -k */
	bool no_daemon;		 /* -d (also debug: logs to stderr) */
	char *pid_file;		 /* -x, NULL = none */
	char *user;		 /* -u, default "nobody" (only used when started as root) */
	char *group;		 /* -g, default NULL = the user's primary group */
	bool test_only;		 /* --test */
};

/*
 * What the parser asks of the daemon around it. The pure library (src/lib) cannot build a
 * record from text: that takes ldns, in src/upstream/local_records.c. NULL, or a NULL member:
 * not asked.
 *   check_record: check one local-record option (--host-record, --cname, --txt-record,
 *   --srv-host, --mx-host, --ptr-record) as it is parsed, so that a bad one stops the daemon
 *   naming its option, file and line. `ttl` is --local-ttl. Returns 0, -ENOMEM, or another
 *   negative errno with the reason in why[0..whylen).
 */
struct config_hooks {
	int (*check_record)(const char *option, const char *value, uint32_t ttl, char *why,
			    size_t whylen);
};

/*
 * Parse argv (and every --conf-file/--conf-dir it names, recursively up to a depth limit) into
 * *cfg, after filling defaults; `hooks` may be NULL (struct config_hooks). On error returns a negative errno and writes one line into
 * err (size errlen) naming the option and, for a conf file, "file:line". Returns 1 when
 * --help or --version printed their text to `out` (the caller exits 0).
 */
int config_parse(struct config *cfg, int argc, char **argv, const struct config_hooks *hooks,
		 FILE *out, char *err, size_t errlen);

/* Defaults only (what config_parse() starts from). */
void config_init(struct config *cfg);

/* Read nameserver lines of a resolv.conf into cfg->servers (from_resolv = true, replacing the
 * previous resolv servers). Returns the number of servers read, or a negative errno. */
int config_read_resolv(struct config *cfg, const char *path, char *err, size_t errlen);

/* Free everything config_parse() allocated. NULL-safe. */
void config_done(struct config *cfg);

/* --help text and --version text. */
void config_print_help(FILE *out);
void config_print_version(FILE *out);
