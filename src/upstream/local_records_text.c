/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * local_records_text.c - dnsmasq's text for local records (local_records.h): the record options
 * (--host-record, --cname, --txt-record, --srv-host, --mx-host, --ptr-record), their fields split
 * and defaulted as dnsmasq 2.90 does, and hosts files, each turned into presentation-format
 * records that ldns reads into the table (local_records.c).
 */
#include <arpa/inet.h>
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
#include "kubemasq/log.h"
#include "upstream/local_records.h"
#include "upstream/local_records_impl.h"

/* Longest hosts line read; longer ones are skipped as bad. */
#define LOCAL_RECORDS_LINE_MAX 4096
/* Presentation text of one record: owner, TTL, type and up to 64K of escaped TXT. */
#define LOCAL_RECORDS_TEXT_MAX (300 * 1024)

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
		int rc;

		local_records_abs(f[i], abs, sizeof(abs));
		if (!(alias = ldns_rdf_new_frm_str(LDNS_RDF_TYPE_DNAME, abs))) {
			ldns_rdf_deep_free(target);
			return local_records_bad(err, errlen, "bad name", f[i]);
		}
		rc = local_records_set_cname(lr, ldns_rdf_data(alias), ldns_rdf_size(alias),
					     ldns_rdf_data(target), ldns_rdf_size(target), ttl);
		ldns_rdf_deep_free(alias);
		if (rc == -EEXIST) {
			ldns_rdf_deep_free(target);
			return local_records_bad(err, errlen, "duplicate CNAME", f[i]);
		}
		if (rc < 0) {
			ldns_rdf_deep_free(target);
			return rc;
		}
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
		if (local_records_count(lr) >= LOCAL_RECORDS_MAX) {
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
