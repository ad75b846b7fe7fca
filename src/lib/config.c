/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * config.c - fills struct config from argv, conf files and conf dirs, all through the one table
 * of config_opts.h: getopt_long's tables, the conf-file keywords and --help are generated from
 * it, and each option's value goes through one parser. Here: the table, the value parsers,
 * the defaults, the checks across options and the getopt loop; conf files, conf dirs and resolv
 * files are config_file.c's, getopt's tables and --help config_cli.c's (config_impl.h). Pure
 * apart from reading the files it is told to: it never logs and never exits; every error
 * becomes one line of text (with FILE:LINE for conf files) and a negative errno for main() to
 * report.
 */
#include <assert.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "kubemasq/defs.h"
#include "lib/config.h"
#include "lib/config_impl.h"
#include "lib/config_opts.h"

#define CONFIG_DOMAIN_MAX 253
#define CONFIG_LABEL_MAX 63
#define CONFIG_KUBE_NS_MAX 4096		/* --kube-namespaces, all lines together */
#define CONFIG_LOCAL_RECORDS_MAX 100000 /* record options, all kinds together */
#define CONFIG_ADDN_HOSTS_MAX 1024

/* Defaults that are strings: static so config_init() cannot fail; config_str_free() knows them. */
static char config_default_resolv[] = "/etc/resolv.conf";
static char config_default_user[] = "nobody";
static char config_default_kube_domain[] = "cluster.local";

/* clang-format off */
#define X(n, s, a, m, p, f, lo, hi, d, h) static config_opts_parse_fn config_opt_##p;
CONFIG_OPTS_TABLE(X)
#undef X

const struct config_opts_entry config_opts_table[] = {
#define X(n, s, a, m, p, f, lo, hi, d, h)                                                          \
	{.name = (n), .short_name = (s), .arg = CONFIG_OPTS_##a, .metavar = (m),                   \
	 .parse = config_opt_##p, f, .min = (lo), .max = (hi), .def = (d), .help = (h)},
	CONFIG_OPTS_TABLE(X)
#undef X
};
/* clang-format on */

const size_t config_opts_count = ARRAY_SIZE(config_opts_table);

int
config_error(struct config_ctx *ctx, int rc, const char *fmt, ...)
{
	va_list ap;
	size_t n = 0;

	if (!ctx->err || ctx->errlen == 0)
		return rc;
	ctx->err[0] = '\0';
	if (ctx->file)
		n = (size_t)snprintf(ctx->err, ctx->errlen, "%s:%u: ", ctx->file, ctx->line);
	if (n < ctx->errlen) {
		va_start(ap, fmt);
		vsnprintf(ctx->err + n, ctx->errlen - n, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* The `why` of helpers that fail for want of memory rather than for a bad value. */
static const char config_oom[] = "out of memory";

/* The common "bad value" line: names the option, the value and why. */
int
config_bad(struct config_ctx *ctx, const struct config_opts_entry *e, const char *value,
	   const char *why)
{
	if (why == config_oom)
		return config_error(ctx, -ENOMEM, "out of memory");
	return config_error(ctx, -EINVAL, "bad value for --%s: \"%s\" (%s)", e->name,
			    value ? value : "", why);
}

static void *
config_field(struct config *cfg, const struct config_opts_entry *e)
{
	return (char *)cfg + e->offset;
}

static void
config_str_free(char *s)
{
	if (s != config_default_resolv && s != config_default_user &&
	    s != config_default_kube_domain)
		free(s);
}

/* Appends one zeroed element to a growing array; returns it or NULL. */
void *
config_append(void **arr, size_t *n, size_t size)
{
	char *p = realloc(*arr, (*n + 1) * size);

	if (!p)
		return NULL;
	*arr = p;
	memset(p + *n * size, 0, size);
	return p + (*n)++ * size;
}

/* Strict unsigned decimal: digits only, no sign, no space, no trailing garbage. */
static int
config_parse_u64(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

static int
config_store_uint(struct config *cfg, const struct config_opts_entry *e, uint64_t v)
{
	void *p = config_field(cfg, e);
	uint16_t v16 = (uint16_t)v;
	uint32_t v32 = (uint32_t)v;

	switch (e->size) {
	case sizeof(v16):
		memcpy(p, &v16, sizeof(v16));
		return 0;
	case sizeof(v32):
		memcpy(p, &v32, sizeof(v32));
		return 0;
	case sizeof(v):
		memcpy(p, &v, sizeof(v));
		return 0;
	}
	assert(!"config_opts.h: integer field of unexpected size");
	return -EINVAL;
}

static int
config_opt_uint(struct config_ctx *ctx, const struct config_opts_entry *e, const char *value)
{
	char why[64];
	uint64_t v;

	if (config_parse_u64(value, &v) < 0 || v < e->min || v > e->max) {
		snprintf(why, sizeof(why), "%llu..%llu", (unsigned long long)e->min,
			 (unsigned long long)e->max);
		return config_bad(ctx, e, value, why);
	}
	return config_store_uint(ctx->cfg, e, v);
}

static int
config_opt_cache_size(struct config_ctx *ctx, const struct config_opts_entry *e, const char *value)
{
	int rc = config_opt_uint(ctx, e, value);

	if (rc == 0)
		ctx->cfg->cache_size_set = true;
	return rc;
}

/* --use-stale-cache[=MAX-SECONDS]: on, with dnsmasq's one-day limit unless given. */
static int
config_opt_stale_cache(struct config_ctx *ctx, const struct config_opts_entry *e, const char *value)
{
	int rc = value && *value ? config_opt_uint(ctx, e, value) : 0;

	if (rc == 0)
		ctx->cfg->use_stale_cache = true;
	return rc;
}

static int
config_opt_stale_mode(struct config_ctx *ctx, const struct config_opts_entry *e, const char *value)
{
	bool *verify = config_field(ctx->cfg, e);

	if (value && strcmp(value, "immediate") == 0)
		*verify = false;
	else if (value && strcmp(value, "verify") == 0)
		*verify = true;
	else
		return config_bad(ctx, e, value, "immediate or verify");
	return 0;
}

/* SIZE[K|M|G], powers of 1024. */
static int
config_opt_bytes(struct config_ctx *ctx, const struct config_opts_entry *e, const char *value)
{
	static const char why[] = "SIZE[K|M|G], at least 64K";
	static const char units[] = "KMG";
	unsigned long long v;
	unsigned shift = 0;
	const char *u;
	char *end;

	if (!value || !isdigit((unsigned char)*value))
		return config_bad(ctx, e, value, why);
	errno = 0;
	v = strtoull(value, &end, 10);
	if (errno)
		return config_bad(ctx, e, value, why);
	if (*end && (u = strchr(units, toupper((unsigned char)*end)))) {
		shift = 10 * (unsigned)(u - units + 1);
		end++;
	}
	if (*end || v > (UINT64_MAX >> shift))
		return config_bad(ctx, e, value, why);
	v <<= shift;
	if (v < e->min || v > e->max)
		return config_bad(ctx, e, value, why);
	return config_store_uint(ctx->cfg, e, v);
}

static int
config_opt_flag(struct config_ctx *ctx, const struct config_opts_entry *e, const char *value)
{
	bool on = true;

	(void)value; /* the callers refuse a value for NONE options */
	memcpy(config_field(ctx->cfg, e), &on, sizeof(on));
	return 0;
}

/* -q[=extra]: dnsmasq 2.90 reads "extra" and takes any other word as plain -q; "proto" (a later
 * dnsmasq's) and "auth" (its authoritative-query logging; kubemasq serves no auth zones) are
 * accepted as plain -q, and anything else is refused rather than silently ignored. */
static int
config_opt_log_queries(struct config_ctx *ctx, const struct config_opts_entry *e, const char *value)
{
	if (value && *value && strcmp(value, "extra") != 0 && strcmp(value, "proto") != 0 &&
	    strcmp(value, "auth") != 0)
		return config_bad(ctx, e, value, "not extra, proto or auth");
	ctx->cfg->log_queries = true;
	if (value && strcmp(value, "extra") == 0)
		ctx->cfg->log_queries_extra = true;
	return 0;
}

/* A string option. REQUIRED ones refuse "", OPTIONAL ones read no value or "" as "none". */
static int
config_opt_str(struct config_ctx *ctx, const struct config_opts_entry *e, const char *value)
{
	char **field = config_field(ctx->cfg, e);
	char *copy = NULL;

	if (!value || !*value) {
		if (e->arg == CONFIG_OPTS_REQUIRED)
			return config_bad(ctx, e, value, "empty");
	} else if (!(copy = strdup(value))) {
		return config_error(ctx, -ENOMEM, "out of memory");
	}
	config_str_free(*field);
	*field = copy;
	return 0;
}

/* An IPv4 or IPv6 literal into a sockaddr with `port` (host order). */
int
config_parse_ip(const char *s, uint16_t port, struct config_sockaddr *sa)
{
	struct sockaddr_in *in = (struct sockaddr_in *)&sa->ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&sa->ss;

	memset(sa, 0, sizeof(*sa));
	if (inet_pton(AF_INET, s, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		sa->len = sizeof(*in);
		return 0;
	}
	memset(sa, 0, sizeof(*sa));
	if (inet_pton(AF_INET6, s, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		sa->len = sizeof(*in6);
		return 0;
	}
	return -EINVAL;
}

/* Calls fn for each element of a comma-separated value; empty elements are errors. */
static int
config_each_item(struct config_ctx *ctx, const struct config_opts_entry *e, const char *value,
		 int (*fn)(struct config_ctx *, const struct config_opts_entry *, const char *,
			   const char *))
{
	char *copy, *item, *save = NULL;
	int rc = 0;

	if (!value || !*value || value[0] == ',' || value[strlen(value) - 1] == ',' ||
	    strstr(value, ",,"))
		return config_bad(ctx, e, value, "empty item");
	if (!(copy = strdup(value)))
		return config_error(ctx, -ENOMEM, "out of memory");
	for (item = strtok_r(copy, ",", &save); item && rc == 0; item = strtok_r(NULL, ",", &save))
		rc = fn(ctx, e, value, item);
	free(copy);
	return rc;
}

static int
config_listen_one(struct config_ctx *ctx, const struct config_opts_entry *e, const char *value,
		  const char *item)
{
	struct config *cfg = ctx->cfg;
	struct config_sockaddr sa, *slot;

	if (config_parse_ip(item, 0, &sa) < 0)
		return config_bad(ctx, e, value, "not an IPv4 or IPv6 address");
	slot = config_append((void **)&cfg->listen, &cfg->n_listen, sizeof(*slot));
	if (!slot)
		return config_error(ctx, -ENOMEM, "out of memory");
	*slot = sa;
	return 0;
}

static int
config_opt_listen(struct config_ctx *ctx, const struct config_opts_entry *e, const char *value)
{
	return config_each_item(ctx, e, value, config_listen_one);
}

static int
config_iface_one(struct config_ctx *ctx, const struct config_opts_entry *e, const char *value,
		 const char *item)
{
	struct config *cfg = ctx->cfg;
	char **slot;

	if (strlen(item) >= IFNAMSIZ || strpbrk(item, "/ \t\r\n\v\f"))
		return config_bad(ctx, e, value, "not an interface name");
	slot = config_append((void **)&cfg->interfaces, &cfg->n_interfaces, sizeof(*slot));
	if (!slot)
		return config_error(ctx, -ENOMEM, "out of memory");
	if (!(*slot = strdup(item))) {
		cfg->n_interfaces--;
		return config_error(ctx, -ENOMEM, "out of memory");
	}
	return 0;
}

static int
config_opt_iface(struct config_ctx *ctx, const struct config_opts_entry *e, const char *value)
{
	return config_each_item(ctx, e, value, config_iface_one);
}

void
config_strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Lower-cases `d` in place, drops one trailing dot; NULL when fine, else why not. */
static const char *
config_domain_check(char *d)
{
	size_t len = strlen(d), label = 0;

	if (len > 0 && d[len - 1] == '.')
		d[--len] = '\0';
	if (len == 0)
		return "empty domain";
	if (len > CONFIG_DOMAIN_MAX)
		return "domain longer than 253";
	for (char *p = d; *p; p++) {
		if (*p == '.') {
			if (label == 0)
				return "empty label in domain";
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
			return "bad character in domain";
		*p = (char)tolower((unsigned char)*p);
		if (++label > CONFIG_LABEL_MAX)
			return "domain label longer than 63";
	}
	return NULL;
}

/*
 * Splits dnsmasq's "/d1/d2/REST": domains between the first and the last '/', "//" alone being
 * the unqualified names (""). On success *rest points into `value` after the last '/'.
 * Returns NULL or why the value is bad (*domains is then NULL).
 */
static const char *
config_domains_parse(const char *value, char ***domains, size_t *n, const char **rest)
{
	const char *last = strrchr(value, '/'), *why = NULL;
	char *list, *d, *save = NULL;

	*domains = NULL;
	*n = 0;
	if (value[0] != '/' || last == value)
		return "expected /DOMAIN/";
	*rest = last + 1;
	if (!(list = strndup(value + 1, (size_t)(last - value - 1))))
		return config_oom;
	if (!*list) {
		*domains = calloc(1, sizeof(char *));
		if (*domains && ((*domains)[0] = strdup("")))
			*n = 1;
		else
			why = config_oom;
	} else if (list[0] == '/' || strstr(list, "//") || list[strlen(list) - 1] == '/') {
		why = "empty domain";
	}
	d = *n ? NULL : strtok_r(list, "/", &save);
	for (; d && !why; d = strtok_r(NULL, "/", &save)) {
		char **slot;

		if ((why = config_domain_check(d)))
			break;
		slot = config_append((void **)domains, n, sizeof(*slot));
		if (!slot || !(*slot = strdup(d))) {
			*n -= slot ? 1 : 0;
			why = config_oom;
		}
	}
	free(list);
	if (why) {
		config_strv_free(*domains, *n);
		*domains = NULL;
		*n = 0;
	}
	return why;
}

/* "IP[#PORT]" of a server; NULL or why not. */
static const char *
config_server_addr(const char *s, struct config_sockaddr *sa)
{
	const char *hash = strchr(s, '#');
	uint64_t port = 53;
	char ip[INET6_ADDRSTRLEN + 1];
	size_t len = hash ? (size_t)(hash - s) : strlen(s);

	if (strchr(s, '@'))
		return "IP@source is not supported";
	if (len == 0)
		return "missing address";
	if (len >= sizeof(ip))
		return "not an IPv4 or IPv6 address";
	memcpy(ip, s, len);
	ip[len] = '\0';
	if (hash && (config_parse_u64(hash + 1, &port) < 0 || port == 0 || port > 65535))
		return "bad port after '#', 1..65535";
	if (config_parse_ip(ip, (uint16_t)port, sa) < 0)
		return "not an IPv4 or IPv6 address";
	return NULL;
}

static int
config_opt_server(struct config_ctx *ctx, const struct config_opts_entry *e, const char *value)
{
	struct config *cfg = ctx->cfg;
	struct config_server srv = {0}, *slot;
	const char *rest = value, *why = NULL;

	if (!value || !*value)
		return config_bad(ctx, e, value, "missing address");
	if (value[0] == '/')
		why = config_domains_parse(value, &srv.domains, &srv.n_domains, &rest);
	if (!why && srv.domains && !*rest)
		srv.kind = CONFIG_SERVER_LOCAL;
	else if (!why && srv.domains && strcmp(rest, "#") == 0)
		srv.kind = CONFIG_SERVER_DEFAULT;
	else if (!why)
		why = config_server_addr(rest, &srv.addr);
	if (why) {
		config_strv_free(srv.domains, srv.n_domains);
		return config_bad(ctx, e, value, why);
	}
	slot = config_append((void **)&cfg->servers, &cfg->n_servers, sizeof(*slot));
	if (!slot) {
		config_strv_free(srv.domains, srv.n_domains);
		return config_error(ctx, -ENOMEM, "out of memory");
	}
	*slot = srv;
	return 0;
}

static int
config_opt_address(struct config_ctx *ctx, const struct config_opts_entry *e, const char *value)
{
	struct config *cfg = ctx->cfg;
	struct config_address a = {0}, *slot;
	const char *rest = NULL, *why;

	why = config_domains_parse(value ? value : "", &a.domains, &a.n_domains, &rest);
	if (!why && !*rest) {
		a.kind = CONFIG_ADDRESS_NXDOMAIN;
	} else if (!why && strcmp(rest, "#") == 0) {
		a.kind = CONFIG_ADDRESS_UNSPEC;
	} else if (!why) {
		a.kind = CONFIG_ADDRESS_IP;
		if (inet_pton(AF_INET, rest, a.ip) == 1)
			a.family = AF_INET;
		else if (inet_pton(AF_INET6, rest, a.ip) == 1)
			a.family = AF_INET6;
		else
			why = "not an IPv4 or IPv6 address";
	}
	if (why) {
		config_strv_free(a.domains, a.n_domains);
		return config_bad(ctx, e, value, why);
	}
	slot = config_append((void **)&cfg->addresses, &cfg->n_addresses, sizeof(*slot));
	if (!slot) {
		config_strv_free(a.domains, a.n_domains);
		return config_error(ctx, -ENOMEM, "out of memory");
	}
	*slot = a;
	return 0;
}

/* --kube-domain: a domain as --server takes them (the root is refused: not a cluster zone). */
static int
config_opt_kube_domain(struct config_ctx *ctx, const struct config_opts_entry *e, const char *value)
{
	char **field = config_field(ctx->cfg, e);
	const char *why;
	char *copy;

	if (!value)
		return config_bad(ctx, e, value, "empty domain");
	if (!(copy = strdup(value)))
		return config_error(ctx, -ENOMEM, "out of memory");
	if ((why = config_domain_check(copy))) {
		free(copy);
		return config_bad(ctx, e, value, why);
	}
	config_str_free(*field);
	*field = copy;
	return 0;
}

/* A namespace name is an RFC 1123 label: letters, digits and '-', not at either end. */
static const char *
config_kube_ns_check(char *ns)
{
	size_t len = strlen(ns);

	if (len > CONFIG_LABEL_MAX)
		return "namespace longer than 63";
	if (ns[0] == '-' || ns[len - 1] == '-')
		return "namespace starting or ending with '-'";
	for (char *p = ns; *p; p++) {
		if (!isalnum((unsigned char)*p) && *p != '-')
			return "bad character in namespace";
		*p = (char)tolower((unsigned char)*p);
	}
	return NULL;
}

static int
config_kube_ns_one(struct config_ctx *ctx, const struct config_opts_entry *e, const char *value,
		   const char *item)
{
	struct config *cfg = ctx->cfg;
	char *ns, **slot;
	const char *why;

	if (cfg->n_kube_namespaces >= CONFIG_KUBE_NS_MAX)
		return config_bad(ctx, e, value, "more than 4096 namespaces");
	if (!(ns = strdup(item)))
		return config_error(ctx, -ENOMEM, "out of memory");
	if ((why = config_kube_ns_check(ns))) {
		free(ns);
		return config_bad(ctx, e, value, why);
	}
	slot = config_append((void **)&cfg->kube_namespaces, &cfg->n_kube_namespaces,
			     sizeof(*slot));
	if (!slot) {
		free(ns);
		return config_error(ctx, -ENOMEM, "out of memory");
	}
	*slot = ns;
	return 0;
}

static int
config_opt_kube_namespaces(struct config_ctx *ctx, const struct config_opts_entry *e,
			   const char *value)
{
	return config_each_item(ctx, e, value, config_kube_ns_one);
}

static int
config_opt_kube_pods(struct config_ctx *ctx, const struct config_opts_entry *e, const char *value)
{
	static const char *const modes[] = {
		[CONFIG_KUBE_PODS_INSECURE] = "insecure",
		[CONFIG_KUBE_PODS_VERIFIED] = "verified",
		[CONFIG_KUBE_PODS_DISABLED] = "disabled",
	};
	enum config_kube_pods *field = config_field(ctx->cfg, e);

	for (size_t i = 0; value && i < ARRAY_SIZE(modes); i++) {
		if (strcmp(value, modes[i]) == 0) {
			*field = (enum config_kube_pods)i;
			return 0;
		}
	}
	return config_bad(ctx, e, value, "disabled, insecure or verified");
}

static int
config_opt_help(struct config_ctx *ctx, const struct config_opts_entry *e, const char *value)
{
	(void)value;
	if (ctx->file)
		return config_error(ctx, -EINVAL, "--%s is not allowed in a conf file", e->name);
	config_print_help(ctx->out);
	return 1;
}

static int
config_opt_version(struct config_ctx *ctx, const struct config_opts_entry *e, const char *value)
{
	(void)value;
	if (ctx->file)
		return config_error(ctx, -EINVAL, "--%s is not allowed in a conf file", e->name);
	config_print_version(ctx->out);
	return 1;
}

static int
config_opt_conf_file(struct config_ctx *ctx, const struct config_opts_entry *e, const char *value)
{
	if (!value || !*value)
		return config_bad(ctx, e, value, "empty");
	return config_file_read(ctx, value);
}

static int
config_opt_conf_dir(struct config_ctx *ctx, const struct config_opts_entry *e, const char *value)
{
	return config_file_conf_dir(ctx, e, value);
}

/* --host-record, --cname, --txt-record, --srv-host, --mx-host, --ptr-record: checked now
 * through the caller's hook (struct config_hooks: a bad one stops the daemon with one line),
 * and kept as text for the table the daemon builds (local_records_from_config). */
static int
config_opt_local_record(struct config_ctx *ctx, const struct config_opts_entry *e,
			const char *value)
{
	struct config *cfg = ctx->cfg;
	const struct config_hooks *hooks = ctx->hooks;
	struct config_local_record *slot;
	char why[256] = "";
	int rc = 0;

	if (!value || !*value)
		return config_bad(ctx, e, value, "empty");
	if (cfg->n_local_records >= CONFIG_LOCAL_RECORDS_MAX)
		return config_bad(ctx, e, value, "more than 100000 record options");
	if (hooks && hooks->check_record)
		rc = hooks->check_record(e->name, value, cfg->local_ttl, why, sizeof(why));
	if (rc == -ENOMEM)
		return config_error(ctx, -ENOMEM, "out of memory");
	if (rc < 0)
		return config_bad(ctx, e, value, why);
	slot = config_append((void **)&cfg->local_records, &cfg->n_local_records, sizeof(*slot));
	if (!slot)
		return config_error(ctx, -ENOMEM, "out of memory");
	slot->option = e->name;
	if (!(slot->value = strdup(value))) {
		cfg->n_local_records--;
		return config_error(ctx, -ENOMEM, "out of memory");
	}
	return 0;
}

/* --addn-hosts: a path, read when the daemon starts (an unreadable one is a warning there, as
 * in dnsmasq). */
static int
config_opt_addn_hosts(struct config_ctx *ctx, const struct config_opts_entry *e, const char *value)
{
	struct config *cfg = ctx->cfg;
	char **slot;

	if (!value || !*value)
		return config_bad(ctx, e, value, "empty");
	if (cfg->n_addn_hosts >= CONFIG_ADDN_HOSTS_MAX)
		return config_bad(ctx, e, value, "more than 1024 hosts files");
	slot = config_append((void **)&cfg->addn_hosts, &cfg->n_addn_hosts, sizeof(*slot));
	if (!slot)
		return config_error(ctx, -ENOMEM, "out of memory");
	if (!(*slot = strdup(value))) {
		cfg->n_addn_hosts--;
		return config_error(ctx, -ENOMEM, "out of memory");
	}
	return 0;
}

/* --domain=DOMAIN (dnsmasq's address-range forms are not taken). */
static int
config_opt_domain(struct config_ctx *ctx, const struct config_opts_entry *e, const char *value)
{
	char **field = config_field(ctx->cfg, e);
	char *d;
	const char *why;

	if (!value || !*value)
		return config_bad(ctx, e, value, "empty");
	if (strchr(value, ','))
		return config_bad(ctx, e, value, "only --domain=DOMAIN is supported");
	if (!(d = strdup(value)))
		return config_error(ctx, -ENOMEM, "out of memory");
	if ((why = config_domain_check(d))) {
		free(d);
		return config_bad(ctx, e, value, why);
	}
	free(*field);
	*field = d;
	return 0;
}

void
config_init(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->port = 53;
	cfg->tcp_max_connections = 256;
	cfg->tcp_idle_timeout = 10;
	cfg->resolv_file = config_default_resolv;
	cfg->dns_forward_max = 1000;
	cfg->edns_packet_max = 1232;
	cfg->min_port = 1024;
	cfg->max_port = 65535;
	cfg->upstream_timeout_ms = 4000;
	cfg->upstream_retry_ms = 1000;
	cfg->cache_bytes = 1ULL << 30;
	cfg->cache_size = 0; /* no entry cap unless given: the byte budget decides */
	cfg->max_neg_ttl = 3600;
	cfg->stale_cache_max = 86400;
	cfg->stale_answer_timeout = 1800;
	cfg->stale_ttl = 30;
	cfg->user = config_default_user;
	cfg->kube_domain = config_default_kube_domain;
	cfg->kube_pods = CONFIG_KUBE_PODS_INSECURE;
	cfg->kube_ttl = 5;
}

static void
config_servers_free(struct config_server *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		config_strv_free(s[i].domains, s[i].n_domains);
	free(s);
}

void
config_done(struct config *cfg)
{
	if (!cfg)
		return;
	free(cfg->listen);
	for (size_t i = 0; i < cfg->n_interfaces; i++)
		free(cfg->interfaces[i]);
	free(cfg->interfaces);
	config_servers_free(cfg->servers, cfg->n_servers);
	for (size_t i = 0; i < cfg->n_addresses; i++)
		config_strv_free(cfg->addresses[i].domains, cfg->addresses[i].n_domains);
	free(cfg->addresses);
	for (size_t i = 0; i < cfg->n_local_records; i++)
		free(cfg->local_records[i].value);
	free(cfg->local_records);
	config_strv_free(cfg->addn_hosts, cfg->n_addn_hosts);
	free(cfg->domain);
	config_str_free(cfg->resolv_file);
	config_str_free(cfg->log_facility);
	config_str_free(cfg->pid_file);
	config_str_free(cfg->user);
	config_str_free(cfg->group);
	config_str_free(cfg->kube_domain);
	config_strv_free(cfg->kube_namespaces, cfg->n_kube_namespaces);
	config_str_free(cfg->kube_snapshot);
	config_str_free(cfg->kube_api_url);
	config_str_free(cfg->kube_token_file);
	config_str_free(cfg->kube_ca_file);
	config_str_free(cfg->kubeconfig);
	config_str_free(cfg->metrics_address);
	memset(cfg, 0, sizeof(*cfg));
}

/* One cluster source at most; a source option turns the kube resolver on. */
static int
config_finish_kube(struct config_ctx *ctx)
{
	struct config *cfg = ctx->cfg;
	int sources = !!cfg->kube_snapshot + !!cfg->kube_api_url + !!cfg->kubeconfig;

	if (sources > 1)
		return config_error(ctx, -EINVAL,
				    "--kube-snapshot, --kube-api-url and --kubeconfig are "
				    "alternatives: give one");
	/* with --kubeconfig they override its user's token and cluster's CA, as kubectl's flags */
	if ((cfg->kube_token_file || cfg->kube_ca_file) && cfg->kube_snapshot)
		return config_error(ctx, -EINVAL,
				    "--kube-token-file and --kube-ca-file are for the API server, "
				    "not with --kube-snapshot");
	if (sources)
		cfg->kube = true;
	return 0;
}

/* Checks that involve several options, and --port into every --listen-address. */
static int
config_finish(struct config_ctx *ctx)
{
	struct config *cfg = ctx->cfg;

	for (size_t i = 0; i < cfg->n_listen; i++) {
		struct sockaddr_storage *ss = &cfg->listen[i].ss;

		if (ss->ss_family == AF_INET)
			((struct sockaddr_in *)ss)->sin_port = htons(cfg->port);
		else
			((struct sockaddr_in6 *)ss)->sin6_port = htons(cfg->port);
	}
	if (cfg->min_port > cfg->max_port)
		return config_error(ctx, -EINVAL, "--min-port %u is greater than --max-port %u",
				    cfg->min_port, cfg->max_port);
	if (cfg->upstream_retry_ms > cfg->upstream_timeout_ms)
		return config_error(ctx, -EINVAL,
				    "--upstream-retry %u is greater than --upstream-timeout %u",
				    cfg->upstream_retry_ms, cfg->upstream_timeout_ms);
	if (cfg->max_cache_ttl && cfg->min_cache_ttl > cfg->max_cache_ttl)
		return config_error(ctx, -EINVAL,
				    "--min-cache-ttl %u is greater than --max-cache-ttl %u",
				    cfg->min_cache_ttl, cfg->max_cache_ttl);
	return config_finish_kube(ctx);
}

int
config_parse(struct config *cfg, int argc, char **argv, const struct config_hooks *hooks, FILE *out,
	     char *err, size_t errlen)
{
	struct config_ctx ctx = {.cfg = cfg,
				 .hooks = hooks,
				 .out = out ? out : stdout,
				 .err = err,
				 .errlen = errlen};
	struct option longopts[ARRAY_SIZE(config_opts_table) + 1];
	char shortopts[3 * ARRAY_SIZE(config_opts_table) + 3];
	int c, rc = 0;

	config_init(cfg);
	if (err && errlen)
		err[0] = '\0';
	config_cli_getopt_tables(longopts, shortopts);
	optind = 0; /* glibc: 0 re-initialises getopt completely, so we can be called again */
	opterr = 0;
	while (rc == 0 && (c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		const struct config_opts_entry *e = config_cli_lookup_val(c);

		if (c == 1)
			rc = config_error(&ctx, -EINVAL, "unexpected argument \"%s\"", optarg);
		else if (c == '?' || c == ':' || !e)
			rc = config_cli_getopt_error(&ctx, c, argv);
		else
			rc = e->parse(&ctx, e, optarg);
	}
	if (rc == 0 && optind < argc)
		rc = config_error(&ctx, -EINVAL, "unexpected argument \"%s\"", argv[optind]);
	if (rc == 0)
		rc = config_finish(&ctx);
	/* After an error (or --help) nobody wants the half-filled config: free it here so a
	 * caller that just exits leaks nothing; config_done() again is harmless. */
	if (rc != 0)
		config_done(cfg);
	return rc;
}
