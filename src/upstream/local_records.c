/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * local_records.c - dnsmasq's local records (local_records.h): the table of wire records kept
 * per owner name, built at load time through ldns and answered without it. The text it is
 * built from (record options, hosts files) is read in local_records_text.c; the upstream that
 * answers from it is local_records_up.c.
 *
 * What dnsmasq 2.90 does, and these files copy (tests/integration/test_local_records.py compares
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
#include "upstream/local_records.h"
#include "upstream/local_records_impl.h"

static uint64_t local_records_key[2];
#define HASH_FUNCTION(keyptr, keylen, hashv)                                                       \
	((hashv) = (unsigned)hash_siphash13(local_records_key, (keyptr), (keylen)))
#include <uthash.h>

#define LOCAL_RECORDS_HOSTS "/etc/hosts"
/* CNAMEs followed for one answer (dnsmasq stops at 10 as well). */
#define LOCAL_RECORDS_CNAME_DEPTH 10

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
bool
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
void
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
int
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
int
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

int
local_records_set_cname(struct local_records *lr, const uint8_t *alias, size_t alias_len,
			const uint8_t *target, size_t target_len, uint32_t ttl)
{
	struct local_name *a = local_records_get(lr, alias, alias_len);

	if (!a || (!a->cname && !(a->cname = malloc(target_len))))
		return -ENOMEM;
	if (a->cname_len)
		return -EEXIST;
	memcpy(a->cname, target, target_len);
	a->cname_len = (uint8_t)target_len;
	a->cname_ttl = ttl;
	a->local = true;
	return 0;
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
