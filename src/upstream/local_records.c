/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * local_records.c - dnsmasq's local records (local_records.h): parsed through ldns at load time
 * into wire records kept per owner name, answered without ldns.
 *
 * What dnsmasq 2.90 does, and this file copies (tests/integration/test_local_records.py compares
 * the two daemons): option fields are split at every comma (no quoting on the command line);
 * --host-record takes names, addresses and a trailing TTL in any order; a hosts line is an
 * address and names, '#' starts a comment; the first name given for an address gets its PTR
 * ("first one trumps", --host-record before hosts files) unless a --ptr-record names the same
 * reverse name; --expand-hosts adds --domain to hosts names without a dot and the PTR points at
 * the expanded name; --mx-host without a target points at this host's name, with preference 1;
 * --srv-host without target is "0 0 1 ."; --ptr-record without target is "."; --txt-record
 * without text is one empty string, strings over 255 bytes are split.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ldns/ldns.h>

#include "kubemasq/defs.h"
#include "kubemasq/hash.h"
#include "kubemasq/log.h"
#include "lib/config.h"
#include "lib/router.h"
#include "upstream/local_records.h"
#include "upstream/upstream_defer.h"
#include "upstream/upstream_local.h"

static uint64_t local_records_key[2];
#define HASH_FUNCTION(keyptr, keylen, hashv)                                                       \
	((hashv) = (unsigned)hash_siphash13(local_records_key, (keyptr), (keylen)))
#include <uthash.h>

#define LOCAL_RECORDS_HOSTS "/etc/hosts"
/* Longest hosts line read; longer ones are skipped as bad. */
#define LOCAL_RECORDS_LINE_MAX 4096
/* CNAMEs followed for one answer (dnsmasq stops at 10 as well). */
#define LOCAL_RECORDS_CNAME_DEPTH 10
/* Presentation text of one record: owner, TTL, type and up to 64K of escaped TXT. */
#define LOCAL_RECORDS_TEXT_MAX (300 * 1024)

struct local_rr {
	uint16_t type;
	bool auto_ptr; /* made from an address, not a --ptr-record */
	uint32_t ttl;
	uint16_t rdlen;
	uint8_t *rdata; /* uncompressed wire */
};

struct local_name {
	UT_hash_handle hh;
	uint8_t name[DNS_MAX_NAME]; /* lower-cased wire name, the key */
	uint8_t len;
	uint8_t *cname; /* wire target (case as given), NULL: no CNAME */
	uint8_t cname_len;
	uint32_t cname_ttl;
	bool local; /* has data of its own, or is an ancestor of such a name */
	struct local_rr *rrs;
	unsigned n_rrs, cap_rrs;
};

struct local_records {
	struct local_name *names;
	size_t n_rrs;
	uint32_t ttl;
	char *domain;
	bool expand;
	ldns_buffer *buf; /* scratch for rdata wire */
};

static bool local_records_keyed;

struct local_records *
local_records_new(uint32_t local_ttl, const char *domain, bool expand_hosts)
{
	struct local_records *lr = calloc(1, sizeof(*lr));

	if (!lr)
		return NULL;
	if (!local_records_keyed) {
		hash_random_key(local_records_key);
		local_records_keyed = true;
	}
	lr->ttl = local_ttl;
	lr->expand = expand_hosts && domain && *domain;
	if ((domain && !(lr->domain = strdup(domain))) || !(lr->buf = ldns_buffer_new(1024))) {
		local_records_free(lr);
		return NULL;
	}
	return lr;
}

void
local_records_free(struct local_records *lr)
{
	struct local_name *n, *tmp;

	if (!lr)
		return;
	HASH_ITER(hh, lr->names, n, tmp) {
		HASH_DEL(lr->names, n);
		for (unsigned i = 0; i < n->n_rrs; i++)
			free(n->rrs[i].rdata);
		free(n->rrs);
		free(n->cname);
		free(n);
	}
	if (lr->buf)
		ldns_buffer_free(lr->buf);
	free(lr->domain);
	free(lr);
}

size_t
local_records_count(const struct local_records *lr)
{
	return lr ? lr->n_rrs : 0;
}

/* A name as dnsmasq takes it: letters, digits, '-', '_', '.', at most 253, no empty label; a
 * trailing dot is allowed. Also what keeps the presentation text built from it unambiguous. */
static bool
local_records_name_ok(const char *s)
{
	size_t len = strlen(s);

	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0 || len > 253 || s[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.' && s[i + 1] == '.')
			return false;
		if (!isalnum(c) && c != '-' && c != '_' && c != '.')
			return false;
	}
	return true;
}

/* `s` as an absolute presentation name ("." added), lower-cased as dnsmasq keeps names. */
static void
local_records_abs(const char *s, char *out, size_t cap)
{
	size_t len = strlen(s);

	snprintf(out, cap, "%s%s", s, len && s[len - 1] == '.' ? "" : ".");
	for (char *p = out; *p; p++)
		*p = (char)tolower((unsigned char)*p);
}

static struct local_name *
local_records_find(const struct local_records *lr, const uint8_t *name, size_t len)
{
	struct local_name *n = NULL;

	HASH_FIND(hh, lr->names, name, len, n);
	return n;
}

/* The entry for wire name `name` (any case), made if missing. */
static struct local_name *
local_records_get(struct local_records *lr, const uint8_t *name, size_t len)
{
	struct local_name *n;

	if (len == 0 || len > DNS_MAX_NAME)
		return NULL;
	{
		uint8_t low[DNS_MAX_NAME];

		for (size_t i = 0; i < len; i++)
			low[i] = (uint8_t)tolower(name[i]);
		if ((n = local_records_find(lr, low, len)))
			return n;
		if (!(n = calloc(1, sizeof(*n))))
			return NULL;
		memcpy(n->name, low, len);
	}
	n->len = (uint8_t)len;
	HASH_ADD(hh, lr->names, name, n->len, n);
	return n;
}

static bool
local_records_has_type(const struct local_name *n, uint16_t type)
{
	for (unsigned i = 0; i < n->n_rrs; i++)
		if (n->rrs[i].type == type)
			return true;
	return false;
}

/* Append one record to n; identical records (type and rdata) are kept once. */
static int
local_records_push(struct local_records *lr, struct local_name *n, uint16_t type, uint32_t ttl,
		   const uint8_t *rdata, size_t rdlen, bool auto_ptr)
{
	struct local_rr *rr;

	for (unsigned i = 0; i < n->n_rrs; i++)
		if (n->rrs[i].type == type && n->rrs[i].rdlen == rdlen &&
		    memcmp(n->rrs[i].rdata, rdata, rdlen) == 0)
			return 0;
	if (lr->n_rrs >= LOCAL_RECORDS_MAX || n->n_rrs >= LOCAL_RECORDS_MAX_PER_NAME)
		return -E2BIG;
	if (n->n_rrs == n->cap_rrs) {
		unsigned cap = n->cap_rrs ? n->cap_rrs * 2 : 2;
		struct local_rr *v = realloc(n->rrs, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		n->rrs = v;
		n->cap_rrs = cap;
	}
	rr = &n->rrs[n->n_rrs];
	if (!(rr->rdata = malloc(rdlen ? rdlen : 1)))
		return -ENOMEM;
	memcpy(rr->rdata, rdata, rdlen);
	rr->rdlen = (uint16_t)rdlen;
	rr->type = type;
	rr->ttl = ttl;
	rr->auto_ptr = auto_ptr;
	n->n_rrs++;
	lr->n_rrs++;
	return 0;
}

/*
 * One record from presentation text ("OWNER TTL IN TYPE RDATA") through ldns into the table.
 * An explicit PTR drops the PTRs made from addresses on that name; an address PTR is added
 * only while the name has no PTR at all (the first one trumps).
 */
static int
local_records_add_text(struct local_records *lr, const char *text, bool auto_ptr, char *err,
		       size_t errlen)
{
	ldns_rr *rr = NULL;
	ldns_status st = ldns_rr_new_frm_str(&rr, text, 0, NULL, NULL);
	const ldns_rdf *owner;
	struct local_name *n;
	uint16_t type;
	int rc;

	if (st != LDNS_STATUS_OK) {
		snprintf(err, errlen, "%s", ldns_get_errorstr_by_id(st));
		return -EINVAL;
	}
	owner = ldns_rr_owner(rr);
	type = (uint16_t)ldns_rr_get_type(rr);
	ldns_buffer_clear(lr->buf);
	if (ldns_rr_rdata2buffer_wire(lr->buf, rr) != LDNS_STATUS_OK ||
	    ldns_buffer_position(lr->buf) > 65535) {
		ldns_rr_free(rr);
		snprintf(err, errlen, "record too long");
		return -EINVAL;
	}
	n = local_records_get(lr, ldns_rdf_data(owner), ldns_rdf_size(owner));
	if (!n) {
		ldns_rr_free(rr);
		return -ENOMEM;
	}
	if (!auto_ptr)
		n->local = true;
	if (type == DNS_TYPE_PTR && auto_ptr && local_records_has_type(n, DNS_TYPE_PTR)) {
		ldns_rr_free(rr);
		return 0;
	}
	if (type == DNS_TYPE_PTR && !auto_ptr) {
		unsigned k = 0;

		for (unsigned i = 0; i < n->n_rrs; i++) {
			if (n->rrs[i].type == DNS_TYPE_PTR && n->rrs[i].auto_ptr) {
				free(n->rrs[i].rdata);
				lr->n_rrs--;
			} else {
				n->rrs[k++] = n->rrs[i];
			}
		}
		n->n_rrs = k;
	}
	rc = local_records_push(lr, n, type, ldns_rr_ttl(rr), ldns_buffer_begin(lr->buf),
				ldns_buffer_position(lr->buf), auto_ptr);
	ldns_rr_free(rr);
	if (rc == -E2BIG)
		snprintf(err, errlen, "too many records (at most %u on one name, %u in all)",
			 LOCAL_RECORDS_MAX_PER_NAME, LOCAL_RECORDS_MAX);
	else if (rc == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	return rc;
}

/* An A or AAAA record for `name` and, the first one trumping, the PTR of its address. */
static int
local_records_add_addr(struct local_records *lr, const char *name, const char *ptr_name, int family,
		       const void *ip, uint32_t ttl, char *err, size_t errlen)
{
	char text[600], owner[300], target[300], addr[INET6_ADDRSTRLEN];
	ldns_rdf *rev, *a;
	int rc;

	local_records_abs(name, owner, sizeof(owner));
	inet_ntop(family, ip, addr, sizeof(addr));
	snprintf(text, sizeof(text), "%s %u IN %s %s", owner, ttl, family == AF_INET ? "A" : "AAAA",
		 addr);
	if ((rc = local_records_add_text(lr, text, false, err, errlen)) < 0)
		return rc;
	a = ldns_rdf_new_frm_str(family == AF_INET ? LDNS_RDF_TYPE_A : LDNS_RDF_TYPE_AAAA, addr);
	rev = a ? ldns_rdf_address_reverse(a) : NULL;
	ldns_rdf_deep_free(a);
	if (!rev)
		return -ENOMEM;
	{
		char *rtext = ldns_rdf2str(rev);

		ldns_rdf_deep_free(rev);
		if (!rtext)
			return -ENOMEM;
		local_records_abs(ptr_name, target, sizeof(target));
		snprintf(text, sizeof(text), "%s %u IN PTR %s", rtext, ttl, target);
		free(rtext);
	}
	return local_records_add_text(lr, text, true, err, errlen);
}

/* dnsmasq's atoi_check16 / atoi_check: digits only, in range. */
static bool
local_records_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	if (!*s || !isdigit((unsigned char)*s))
		return false;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return !*end && errno == 0 && *out <= max;
}

/* Split a copy of value at every comma: fields in f[0..*n). */
static char *
local_records_split(const char *value, char **f, size_t max, size_t *n)
{
	char *copy = strdup(value), *p;

	*n = 0;
	if (!copy)
		return NULL;
	for (p = copy; *n < max;) {
		f[(*n)++] = p;
		if (!(p = strchr(p, ',')))
			break;
		*p++ = '\0';
	}
	return copy;
}

#define LOCAL_RECORDS_FIELDS_MAX 64

static int
local_records_bad(char *err, size_t errlen, const char *why, const char *what)
{
	snprintf(err, errlen, "%s \"%s\"", why, what);
	return -EINVAL;
}

/* --host-record=NAME[,NAME...],[IPv4],[IPv6][,TTL] */
static int
local_records_host_record(struct local_records *lr, char **f, size_t n, char *err, size_t errlen)
{
	const char *names[LOCAL_RECORDS_FIELDS_MAX];
	uint8_t ip[LOCAL_RECORDS_FIELDS_MAX][16];
	int fam[LOCAL_RECORDS_FIELDS_MAX];
	size_t nn = 0, na = 0;
	uint32_t ttl = lr->ttl;
	unsigned long v;
	int rc;

	for (size_t i = 0; i < n; i++) {
		if (inet_pton(AF_INET, f[i], ip[na]) == 1) {
			fam[na++] = AF_INET;
		} else if (inet_pton(AF_INET6, f[i], ip[na]) == 1) {
			fam[na++] = AF_INET6;
		} else if (i == n - 1 && i > 0 && local_records_uint(f[i], 2147483647, &v)) {
			ttl = (uint32_t)v;
		} else if (local_records_name_ok(f[i])) {
			names[nn++] = f[i];
		} else if (*f[i]) {
			return local_records_bad(err, errlen, "bad name or address", f[i]);
		}
	}
	if (nn == 0 || na == 0)
		return local_records_bad(err, errlen, "needs a name and an address", "");
	for (size_t a = 0; a < na; a++)
		for (size_t k = 0; k < nn; k++)
			if ((rc = local_records_add_addr(lr, names[k], names[0], fam[a], ip[a], ttl,
							 err, errlen)) < 0)
				return rc;
	return 0;
}

/* --cname=ALIAS[,ALIAS...],TARGET[,TTL] */
static int
local_records_cname(struct local_records *lr, char **f, size_t n, char *err, size_t errlen)
{
	uint32_t ttl = lr->ttl;
	unsigned long v;
	char abs[300];
	ldns_rdf *target;

	if (n >= 3 && local_records_uint(f[n - 1], 2147483647, &v)) {
		ttl = (uint32_t)v;
		n--;
	}
	if (n < 2)
		return local_records_bad(err, errlen, "needs an alias and a target", "");
	for (size_t i = 0; i < n; i++)
		if (!local_records_name_ok(f[i]))
			return local_records_bad(err, errlen, "bad name", f[i]);
	local_records_abs(f[n - 1], abs, sizeof(abs));
	if (!(target = ldns_rdf_new_frm_str(LDNS_RDF_TYPE_DNAME, abs)))
		return local_records_bad(err, errlen, "bad name", f[n - 1]);
	for (size_t i = 0; i + 1 < n; i++) {
		ldns_rdf *alias;
		struct local_name *a;

		local_records_abs(f[i], abs, sizeof(abs));
		if (!(alias = ldns_rdf_new_frm_str(LDNS_RDF_TYPE_DNAME, abs))) {
			ldns_rdf_deep_free(target);
			return local_records_bad(err, errlen, "bad name", f[i]);
		}
		a = local_records_get(lr, ldns_rdf_data(alias), ldns_rdf_size(alias));
		ldns_rdf_deep_free(alias);
		if (!a || (!a->cname && !(a->cname = malloc(ldns_rdf_size(target))))) {
			ldns_rdf_deep_free(target);
			return -ENOMEM;
		}
		if (a->cname_len) {
			ldns_rdf_deep_free(target);
			return local_records_bad(err, errlen, "duplicate CNAME", f[i]);
		}
		memcpy(a->cname, ldns_rdf_data(target), ldns_rdf_size(target));
		a->cname_len = (uint8_t)ldns_rdf_size(target);
		a->cname_ttl = ttl;
		a->local = true;
	}
	ldns_rdf_deep_free(target);
	return 0;
}

/* One TXT string in presentation form, escaped, appended at *p (bounded by end). */
static void
local_records_txt_string(char **p, char *end, const char *s, size_t len)
{
	*p += snprintf(*p, (size_t)(end - *p), " \"");
	for (size_t i = 0; i < len && *p < end - 5; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			*p += snprintf(*p, (size_t)(end - *p), "\\%c", c);
		else if (c < 32 || c > 126)
			*p += snprintf(*p, (size_t)(end - *p), "\\%03u", c);
		else
			*(*p)++ = (char)c;
	}
	*p += snprintf(*p, (size_t)(end - *p), "\"");
}

static int
local_records_simple(struct local_records *lr, const char *option, char **f, size_t n, char *err,
		     size_t errlen)
{
	char owner[300], target[300], host[256];
	char *text = malloc(LOCAL_RECORDS_TEXT_MAX), *p, *end;
	unsigned long port = 1, prio = 0, weight = 0, pref = 1;
	int rc = -EINVAL;

	if (!text)
		return -ENOMEM;
	p = text;
	end = text + LOCAL_RECORDS_TEXT_MAX;
	if (!local_records_name_ok(f[0])) {
		rc = local_records_bad(err, errlen, "bad name", f[0]);
		goto out;
	}
	local_records_abs(f[0], owner, sizeof(owner));
	if (n > 1 && strcmp(option, "txt-record") != 0 && !local_records_name_ok(f[1])) {
		rc = local_records_bad(err, errlen, "bad target", f[1]);
		goto out;
	}
	if (n > 1)
		local_records_abs(f[1], target, sizeof(target));
	else
		strcpy(target, ".");
	if (strcmp(option, "txt-record") == 0) {
		p += snprintf(p, (size_t)(end - p), "%s %u IN TXT", owner, lr->ttl);
		if (n == 1)
			local_records_txt_string(&p, end, "", 0);
		for (size_t i = 1; i < n; i++) {
			size_t len = strlen(f[i]);

			if (len == 0)
				local_records_txt_string(&p, end, "", 0);
			for (size_t o = 0; o < len; o += 255)
				local_records_txt_string(&p, end, f[i] + o, MIN(len - o, 255));
		}
		if (p >= end - 5) {
			rc = local_records_bad(err, errlen, "text too long", f[0]);
			goto out;
		}
	} else if (strcmp(option, "srv-host") == 0) {
		if (n > 5 || (n > 2 && !local_records_uint(f[2], 65535, &port)) ||
		    (n > 3 && !local_records_uint(f[3], 65535, &prio)) ||
		    (n > 4 && !local_records_uint(f[4], 65535, &weight))) {
			rc = local_records_bad(err, errlen, "bad port, priority or weight", f[0]);
			goto out;
		}
		snprintf(text, LOCAL_RECORDS_TEXT_MAX, "%s %u IN SRV %lu %lu %lu %s", owner,
			 lr->ttl, prio, weight, port, target);
	} else if (strcmp(option, "mx-host") == 0) {
		if (n > 3 || (n > 2 && !local_records_uint(f[2], 65535, &pref))) {
			rc = local_records_bad(err, errlen, "bad MX preference", f[n - 1]);
			goto out;
		}
		if (n == 1) {
			if (gethostname(host, sizeof(host) - 1) < 0 || !local_records_name_ok(host))
				strcpy(host, "localhost");
			host[sizeof(host) - 1] = '\0';
			local_records_abs(host, target, sizeof(target));
		}
		snprintf(text, LOCAL_RECORDS_TEXT_MAX, "%s %u IN MX %lu %s", owner, lr->ttl, pref,
			 target);
	} else { /* ptr-record */
		if (n > 2) {
			rc = local_records_bad(err, errlen, "too many fields", f[0]);
			goto out;
		}
		snprintf(text, LOCAL_RECORDS_TEXT_MAX, "%s %u IN PTR %s", owner, lr->ttl, target);
	}
	rc = local_records_add_text(lr, text, false, err, errlen);
out:
	free(text);
	return rc;
}

int
local_records_add_option(struct local_records *lr, const char *option, const char *value, char *err,
			 size_t errlen)
{
	char *f[LOCAL_RECORDS_FIELDS_MAX];
	size_t n;
	char *copy;
	int rc;

	assert(lr && option && value);
	err[0] = '\0';
	if (!(copy = local_records_split(value, f, ARRAY_SIZE(f), &n)))
		return -ENOMEM;
	if (n == ARRAY_SIZE(f) && strchr(f[n - 1], ','))
		rc = local_records_bad(err, errlen, "too many fields", "");
	else if (strcmp(option, "host-record") == 0)
		rc = local_records_host_record(lr, f, n, err, errlen);
	else if (strcmp(option, "cname") == 0)
		rc = local_records_cname(lr, f, n, err, errlen);
	else if (strcmp(option, "txt-record") == 0 || strcmp(option, "srv-host") == 0 ||
		 strcmp(option, "mx-host") == 0 || strcmp(option, "ptr-record") == 0)
		rc = local_records_simple(lr, option, f, n, err, errlen);
	else
		rc = local_records_bad(err, errlen, "not a record option", option);
	free(copy);
	return rc;
}

int
local_records_check_option(const char *option, const char *value, uint32_t local_ttl, char *err,
			   size_t errlen)
{
	struct local_records *lr = local_records_new(local_ttl, NULL, false);
	int rc;

	if (!lr)
		return -ENOMEM;
	rc = local_records_add_option(lr, option, value, err, errlen);
	local_records_free(lr);
	return rc;
}

/* One hosts line (comment already cut): address then names. Returns names added, or -1 for a
 * bad address (logged). */
static int
local_records_hosts_line(struct local_records *lr, char *line, const char *path, unsigned lineno)
{
	char *save = NULL, *tok = strtok_r(line, " \t\r\n\v\f", &save);
	char err[200], full[600], ptr[600];
	uint8_t ip[16];
	int family, added = 0;

	if (!tok)
		return 0;
	if (inet_pton(AF_INET, tok, ip) == 1) {
		family = AF_INET;
	} else if (inet_pton(AF_INET6, tok, ip) == 1) {
		family = AF_INET6;
	} else {
		log_warn("%s:%u: bad address \"%.64s\", line skipped", path, lineno, tok);
		return -1;
	}
	ptr[0] = '\0';
	while ((tok = strtok_r(NULL, " \t\r\n\v\f", &save))) {
		bool expand = lr->expand && !strchr(tok, '.');
		int rc;

		if (expand)
			snprintf(full, sizeof(full), "%s.%s", tok, lr->domain);
		if (!local_records_name_ok(tok) || (expand && !local_records_name_ok(full))) {
			log_warn("%s:%u: bad name \"%.64s\", skipped", path, lineno, tok);
			continue;
		}
		/* The PTR goes to the line's first name, expanded when it is a simple one. */
		if (!ptr[0])
			snprintf(ptr, sizeof(ptr), "%s", expand ? full : tok);
		rc = local_records_add_addr(lr, tok, ptr, family, ip, lr->ttl, err, sizeof(err));
		if (rc == 0 && expand)
			rc = local_records_add_addr(lr, full, ptr, family, ip, lr->ttl, err,
						    sizeof(err));
		if (rc < 0) {
			log_warn("%s:%u: %s", path, lineno, err);
			if (rc != -EINVAL)
				return added;
			continue;
		}
		added++;
	}
	return added;
}

static int
local_records_hosts_file(struct local_records *lr, const char *path)
{
	char line[LOCAL_RECORDS_LINE_MAX];
	unsigned lineno = 0;
	int names = 0;
	FILE *f = fopen(path, "re");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		size_t len = strlen(line);
		char *hash;
		int rc;

		lineno++;
		if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
			int c;

			while ((c = getc(f)) != EOF && c != '\n')
				;
			log_warn("%s:%u: line longer than %d bytes, skipped", path, lineno,
				 LOCAL_RECORDS_LINE_MAX - 2);
			continue;
		}
		if ((hash = strchr(line, '#')))
			*hash = '\0';
		rc = local_records_hosts_line(lr, line, path, lineno);
		if (rc > 0)
			names += rc;
		if (lr->n_rrs >= LOCAL_RECORDS_MAX) {
			log_warn("%s:%u: more than %u records, the rest is not read", path, lineno,
				 LOCAL_RECORDS_MAX);
			break;
		}
	}
	fclose(f);
	log_info("read %s - %d names", path, names);
	return names;
}

static int
local_records_hosts_filter(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

int
local_records_add_hosts(struct local_records *lr, const char *path)
{
	struct dirent **list;
	struct stat st;
	int n, total = 0;

	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return local_records_hosts_file(lr, path);
	if ((n = scandir(path, &list, local_records_hosts_filter, alphasort)) < 0)
		return -errno;
	for (int i = 0; i < n; i++) {
		char sub[4096];
		struct stat sst;

		snprintf(sub, sizeof(sub), "%s/%s", path, list[i]->d_name);
		if (stat(sub, &sst) == 0 && S_ISREG(sst.st_mode)) {
			int rc = local_records_hosts_file(lr, sub);

			if (rc < 0)
				log_warn("cannot read %s: %s", sub, strerror(-rc));
			else
				total += rc;
		}
		free(list[i]);
	}
	free(list);
	return total;
}

/* The records of n for qtype (all for ANY) into the answer, owner `owner` (NULL: the
 * question's name). */
static unsigned
local_records_put(struct dnsmsg_builder *b, const struct local_name *n, uint16_t qtype,
		  const uint8_t *owner, size_t owner_len)
{
	unsigned added = 0;

	for (unsigned i = 0; i < n->n_rrs; i++) {
		const struct local_rr *rr = &n->rrs[i];

		if (qtype != DNS_TYPE_ANY && rr->type != qtype)
			continue;
		dnsmsg_builder_rr(b, DNS_SECTION_ANSWER, owner, owner_len, rr->type, DNS_CLASS_IN,
				  rr->ttl, rr->rdata, rr->rdlen);
		added++;
	}
	return added;
}

int
local_records_answer(const struct local_records *lr, const struct dnsmsg_question *q, bool rd,
		     bool cd, uint8_t *out, size_t cap)
{
	const struct local_name *n;
	struct dnsmsg_builder b;

	if (!lr || q->qclass != DNS_CLASS_IN ||
	    !(n = local_records_find(lr, q->qname, q->qname_len)))
		return -ENOENT;
	/* No record of the type: dnsmasq asks upstream, and turns an NXDOMAIN into NODATA when
	 * the name has local data or some lies below it (check_for_local_domain()); the reverse
	 * names of the addresses' PTRs alone do not count. */
	if (!n->cname &&
	    (q->qtype == DNS_TYPE_ANY ? n->n_rrs == 0 : !local_records_has_type(n, q->qtype)))
		return n->local ? -ENODATA : -ENOENT;
	dnsmsg_builder_init(&b, out, cap, 0, q, rd, cd, true, DNS_RCODE_NOERROR);
	if (!n->cname) {
		local_records_put(&b, n, q->qtype, NULL, 0);
	} else {
		const uint8_t *owner = NULL;
		size_t owner_len = 0;

		for (unsigned depth = 0; n && n->cname; depth++) {
			uint8_t low[DNS_MAX_NAME];

			dnsmsg_builder_rr(&b, DNS_SECTION_ANSWER, owner, owner_len, DNS_TYPE_CNAME,
					  DNS_CLASS_IN, n->cname_ttl, n->cname, n->cname_len);
			if (q->qtype == DNS_TYPE_CNAME || depth >= LOCAL_RECORDS_CNAME_DEPTH)
				return dnsmsg_builder_finish(&b);
			owner = n->cname;
			owner_len = n->cname_len;
			for (size_t i = 0; i < owner_len; i++)
				low[i] = (uint8_t)tolower(owner[i]);
			n = local_records_find(lr, low, owner_len);
		}
		if (n)
			local_records_put(&b, n, q->qtype, owner, owner_len);
	}
	return dnsmsg_builder_finish(&b);
}

void
local_records_finish(struct local_records *lr)
{
	struct local_name *n, *tmp;

	/* uthash iterates in insertion order: the ancestors added here are visited too, and
	 * find themselves done at once. */
	HASH_ITER(hh, lr->names, n, tmp) {
		size_t off = 0;

		if (!n->local)
			continue;
		while (n->name[off] != 0) {
			struct local_name *a;

			off += 1u + n->name[off];
			if (n->name[off] == 0)
				break; /* the root is never answered here */
			a = local_records_get(lr, n->name + off, n->len - off);
			if (!a) {
				log_err("out of memory for the local names' parents");
				return;
			}
			if (a->local)
				break; /* its own parents are done */
			a->local = true;
		}
	}
}

int
local_records_foreach_name(const struct local_records *lr,
			   int (*fn)(void *ctx, const uint8_t *name, size_t len), void *ctx)
{
	const struct local_name *n, *tmp;
	int rc;

	HASH_ITER(hh, lr->names, n, tmp)
		if ((rc = fn(ctx, n->name, n->len)) < 0)
			return rc;
	return 0;
}

/* The record options, in the order given, as config.c keeps them. */
static const char *const local_records_options[] = {
	"host-record", "cname", "txt-record", "srv-host", "mx-host", "ptr-record",
};

bool
local_records_wanted(const struct config *cfg)
{
	return cfg->n_local_records > 0 || cfg->n_addn_hosts > 0 || !cfg->no_hosts;
}

struct local_records *
local_records_from_config(const struct config *cfg, char *err, size_t errlen)
{
	struct local_records *lr =
		local_records_new(cfg->local_ttl, cfg->domain, cfg->expand_hosts);
	char why[256];
	int rc;

	if (!lr) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	/* --host-record before the rest, as dnsmasq reads them ("considered to be read before
	 * host-files"), so their addresses get the PTRs; then the others in the order given. */
	for (size_t pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < cfg->n_local_records; i++) {
			const struct config_local_record *c = &cfg->local_records[i];
			bool host = strcmp(c->option, local_records_options[0]) == 0;

			if (host != (pass == 0))
				continue;
			rc = local_records_add_option(lr, c->option, c->value, why, sizeof(why));
			if (rc < 0) {
				snprintf(err, errlen, "bad value for --%s: \"%s\" (%s)", c->option,
					 c->value, why[0] ? why : strerror(-rc));
				local_records_free(lr);
				return NULL;
			}
		}
	}
	for (size_t i = 0; i <= cfg->n_addn_hosts; i++) {
		const char *path = i == 0 ? LOCAL_RECORDS_HOSTS : cfg->addn_hosts[i - 1];

		if (i == 0 && cfg->no_hosts)
			continue;
		rc = local_records_add_hosts(lr, path);
		if (rc < 0)
			log_warn("failed to load names from %s: %s", path, strerror(-rc));
	}
	local_records_finish(lr);
	return lr;
}

/* -- the upstream ------------------------------------------------------------------------- */

/* Answers a query at most this long; a bigger one is not made here (it goes on upstream). */
#define LOCAL_RECORDS_REPLY_MAX 65535
#define LOCAL_RECORDS_MAX_PENDING 4096

struct local_records_up {
	struct upstream base;
	struct upstream_defer defer;
	const struct config *cfg;
	struct router *router;
	struct local_records *lr;
	struct local_name *bound; /* names bound in the router so far (keys only) */
	unsigned pending;	  /* questions passed on (struct local_records_child) */
	uint64_t queries, failures;
};

static struct local_records_up *
local_records_up_from(struct upstream *u)
{
	assert(u && u->ops == &local_records_ops);
	return container_of(u, struct local_records_up, base);
}

struct local_records_child;

static void local_records_release(void *ctx, struct upstream_defer_item *item);

/* Bind one owner name to the router, once per upstream. */
static int
local_records_bind_one(void *ctx, const uint8_t *name, size_t len)
{
	struct local_records_up *l = ctx;
	struct local_name *b = NULL;
	char text[DNS_MAX_NAME * 4 + 1];
	int rc;

	HASH_FIND(hh, l->bound, name, len, b);
	if (b)
		return 0;
	if (dnsmsg_name_to_text(name, len, 0, text, sizeof(text)) < 0)
		return -EINVAL;
	if (!(b = calloc(1, sizeof(*b))))
		return -ENOMEM;
	memcpy(b->name, name, len);
	b->len = (uint8_t)len;
	if ((rc = router_bind(l->router, text, &l->base)) < 0) {
		free(b);
		return rc;
	}
	HASH_ADD(hh, l->bound, name, b->len, b);
	return 0;
}

static void
local_records_up_free(struct upstream *u)
{
	struct local_records_up *l;
	struct local_name *n, *tmp;

	if (!u)
		return;
	l = local_records_up_from(u);
	upstream_defer_done(&l->defer);
	HASH_ITER(hh, l->bound, n, tmp) {
		HASH_DEL(l->bound, n);
		free(n);
	}
	local_records_free(l->lr);
	free(l);
}

static int
local_records_up_create(struct upstream **out, struct event_base *base, const void *args)
{
	const struct local_records_args *a = args;
	struct local_records_up *l;
	char err[512];
	int rc;

	assert(out && a && a->cfg && a->router);
	if (!(l = calloc(1, sizeof(*l))))
		return -ENOMEM;
	l->base.ops = &local_records_ops;
	l->base.source = METRICS_SOURCE_LOCAL;
	l->cfg = a->cfg;
	l->router = a->router;
	if (!(l->lr = local_records_from_config(a->cfg, err, sizeof(err)))) {
		log_err("%s", err);
		free(l);
		return -EINVAL;
	}
	if ((rc = upstream_defer_init(&l->defer, base, local_records_release, l)) < 0) {
		local_records_free(l->lr);
		free(l);
		return rc;
	}
	*out = &l->base;
	return 0;
}

static int
local_records_up_answer(struct upstream *u, const struct upstream_req *req, uint8_t *out,
			size_t cap)
{
	struct local_records_up *l = local_records_up_from(u);
	int len = local_records_answer(l->lr, &req->q, true, req->cd, out, cap);

	if (len < 0)
		return -EAGAIN;
	l->queries++;
	return len;
}

/* A question on a local name that has no record of its type, passed on to the upstreams after
 * this one (the router offers the child to every upstream of the name, and this one declines
 * its own children); the answer comes back through local_records_child_done(). */
struct local_records_child {
	struct upstream_defer_item item; /* an answer made here, waiting for the loop */
	bool passed;			 /* or a question passed on, in req: */
	struct upstream_req req;	 /* q borrowed from the parent's */
	struct upstream_req *parent;
	struct local_records_up *l;
};

static void
local_records_child_done(struct upstream_req *req, int status, const uint8_t *reply, size_t len)
{
	struct local_records_child *c = container_of(req, struct local_records_child, req);
	struct upstream_req *parent = c->parent;
	uint8_t *copy = NULL;

	c->l->pending--;
	/* An NXDOMAIN for a name that exists here is NODATA, with AA, as dnsmasq makes it. */
	if (status == 0 && len >= DNS_HDR_LEN && (reply[3] & 0x0f) == DNS_RCODE_NXDOMAIN &&
	    (copy = malloc(len))) {
		memcpy(copy, reply, len);
		copy[3] = (uint8_t)(copy[3] & 0xf0); /* NOERROR */
		copy[2] |= 0x04;		     /* AA */
		reply = copy;
	}
	free(c);
	parent->done(parent, status, reply, len);
	free(copy);
}

static void
local_records_release(void *ctx UNUSED, struct upstream_defer_item *item)
{
	free(container_of(item, struct local_records_child, item));
}

static int
local_records_pass_on(struct local_records_up *l, struct upstream_req *req)
{
	struct local_records_child *c;
	int rc;

	if (l->pending >= LOCAL_RECORDS_MAX_PENDING || !(c = calloc(1, sizeof(*c)))) {
		l->failures++;
		return -EBUSY;
	}
	c->passed = true;
	c->req.q = req->q;
	c->req.cd = req->cd;
	c->req.do_bit = req->do_bit;
	c->req.done = local_records_child_done;
	c->parent = req;
	c->l = l;
	rc = router_resolve(l->router, &c->req);
	if (rc < 0) {
		free(c);
		return rc; /* -ENOENT: no server at all (REFUSED, as dnsmasq); -ENXIO... */
	}
	l->pending++;
	req->priv = c;
	return 0;
}

static int
local_records_up_resolve(struct upstream *u, struct upstream_req *req)
{
	struct local_records_up *l = local_records_up_from(u);
	struct local_records_child *c;
	uint8_t *buf;
	int len;

	if (req->done == local_records_child_done)
		return -ENOENT; /* our own question, passed on: for the next upstream */
	if (!(buf = malloc(LOCAL_RECORDS_REPLY_MAX)))
		return -ENOMEM;
	len = local_records_answer(l->lr, &req->q, true, req->cd, buf, LOCAL_RECORDS_REPLY_MAX);
	if (len < 0) {
		free(buf);
		if (len == -ENODATA)
			return local_records_pass_on(l, req);
		return -ENOENT; /* not ours: the router tries the next upstream */
	}
	l->queries++;
	if (l->defer.n >= LOCAL_RECORDS_MAX_PENDING || !(c = calloc(1, sizeof(*c)))) {
		free(buf);
		l->failures++;
		return -EBUSY;
	}
	c->item.reply = buf;
	c->item.len = (size_t)len;
	c->item.req = req;
	req->priv = c;
	upstream_defer_push(&l->defer, &c->item);
	return 0;
}

static void
local_records_up_cancel(struct upstream *u, struct upstream_req *req)
{
	struct local_records_up *l = local_records_up_from(u);
	struct local_records_child *c = req->priv;

	if (!c)
		return;
	if (c->passed) {
		upstream_cancel(c->req.owner, &c->req);
		l->pending--;
		free(c);
		return;
	}
	upstream_defer_cancel(&l->defer, &c->item);
}

static void
local_records_up_metrics(struct upstream *u, upstream_metrics_fn *each, void *ctx)
{
	struct local_records_up *l = local_records_up_from(u);

	upstream_local_report(each, ctx, l->queries, l->failures); /* one "local" line */
}

const struct upstream_ops local_records_ops = {
	.name = "local-records",
	.create = local_records_up_create,
	.free = local_records_up_free,
	.resolve = local_records_up_resolve,
	.answer = local_records_up_answer,
	.cancel = local_records_up_cancel,
	.stats = NULL,
	.metrics = local_records_up_metrics,
};

int
local_records_bind(struct upstream *u)
{
	struct local_records_up *l = local_records_up_from(u);

	return local_records_foreach_name(l->lr, local_records_bind_one, l);
}

static void
local_records_find_up(struct upstream *u, void *ctx)
{
	if (u->ops == &local_records_ops)
		*(struct upstream **)ctx = u;
}

void
local_records_reload(struct router *r)
{
	struct upstream *u = NULL;
	struct local_records_up *l;
	struct local_records *lr;
	char err[512];

	router_foreach(r, local_records_find_up, &u);
	if (!u)
		return;
	l = local_records_up_from(u);
	if (!(lr = local_records_from_config(l->cfg, err, sizeof(err)))) {
		log_err("%s; keeping the local records read before", err);
		return;
	}
	local_records_free(l->lr);
	l->lr = lr;
	if (local_records_foreach_name(lr, local_records_bind_one, l) < 0)
		log_err("cannot route every local name: out of memory");
	upstream_changed(u);
}
