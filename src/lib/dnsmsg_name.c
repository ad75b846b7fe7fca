/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dnsmsg_name.c - DNS names (kubemasq/dnsmsg.h): lower-casing and comparing wire names, zone
 * membership, label counts, text <-> wire with dnsmasq's escapes, type names, and a record's
 * data as the short text of log lines. Pure and bounded, like dnsmsg.c: names over 255 bytes and
 * labels over 63 are refused.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kubemasq/defs.h"
#include "kubemasq/dnsmsg.h"
#include "lib/dnsmsg_impl.h"

static inline uint8_t
dnsmsg_lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + ('a' - 'A')) : c;
}

/* Label length bytes are <= 63, below 'A', so lower-casing every byte leaves them alone. */
void
dnsmsg_name_lower(uint8_t *dst, const uint8_t *src, size_t len)
{
	for (size_t i = 0; i < len; i++)
		dst[i] = dnsmsg_lower(src[i]);
}

bool
dnsmsg_name_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++)
		if (dnsmsg_lower(a[i]) != dnsmsg_lower(b[i]))
			return false;
	return true;
}

bool
dnsmsg_name_in_zone(const uint8_t *name, size_t name_len, const uint8_t *zone, size_t zone_len)
{
	size_t pos = 0;

	if (zone_len == 0 || zone_len > name_len)
		return false;
	/* Only a label boundary of `name` may start the zone ("xexample.com" is not below it). */
	while (name_len - pos > zone_len) {
		if (name[pos] == 0)
			return false;
		pos += 1 + (size_t)name[pos];
		if (pos >= name_len)
			return false;
	}
	return name_len - pos == zone_len &&
	       dnsmsg_name_equal(name + pos, zone_len, zone, zone_len);
}

unsigned
dnsmsg_name_labels(const uint8_t *name, size_t len)
{
	unsigned n = 0;

	for (size_t pos = 0; pos < len && name[pos] != 0; pos += 1 + (size_t)name[pos])
		n++;
	return n;
}

/* Parse the escape after a backslash at text[*i]; *i is left on its last character. */
static int
dnsmsg_text_escape(const char *text, size_t *i, uint8_t *byte)
{
	const char *p = text + *i;

	if (p[0] >= '0' && p[0] <= '9') {
		if (!(p[1] >= '0' && p[1] <= '9') || !(p[2] >= '0' && p[2] <= '9'))
			return -EINVAL;
		unsigned v = (unsigned)(p[0] - '0') * 100 + (unsigned)(p[1] - '0') * 10 +
			     (unsigned)(p[2] - '0');
		if (v > 255)
			return -EINVAL;
		*byte = (uint8_t)v;
		*i += 2;
		return 0;
	}
	if (p[0] == '\0')
		return -EINVAL;
	*byte = (uint8_t)p[0];
	return 0;
}

int
dnsmsg_name_from_text(const char *text, uint8_t *out, size_t cap)
{
	uint8_t wire[DNS_MAX_NAME];
	size_t pos = 0, llen = 0; /* the current label's length byte, its length */

	if (strcmp(text, ".") == 0)
		text = "";
	for (size_t i = 0; text[i] != '\0'; i++) {
		uint8_t c = (uint8_t)text[i];
		if (c == '.') {
			if (llen == 0)
				return -EINVAL;
			wire[pos] = (uint8_t)llen;
			pos += 1 + llen;
			llen = 0;
			continue;
		}
		if (c == '\\' && (i++, dnsmsg_text_escape(text, &i, &c) < 0))
			return -EINVAL;
		/* this byte lands at pos + 1 + llen; the root label must still fit after it */
		if (llen == DNSMSG_MAX_LABEL || pos + 1 + llen + 2 > DNS_MAX_NAME)
			return -EINVAL;
		wire[pos + 1 + llen++] = c;
	}
	if (llen != 0) {
		wire[pos] = (uint8_t)llen;
		pos += 1 + llen;
	}
	wire[pos++] = 0;
	if (pos > cap)
		return -ENOSPC;
	memcpy(out, wire, pos);
	return (int)pos;
}

/* Append one label's presentation form to out; false if it does not fit. */
static bool
dnsmsg_label_to_text(const uint8_t *label, size_t llen, char *out, size_t cap, size_t *pos)
{
	for (size_t i = 0; i < llen; i++) {
		uint8_t c = label[i];
		int n;
		if (c == '.' || c == '\\')
			n = snprintf(out + *pos, cap - *pos, "\\%c", c);
		else if (c < 0x21 || c > 0x7e)
			n = snprintf(out + *pos, cap - *pos, "\\%03u", c);
		else
			n = snprintf(out + *pos, cap - *pos, "%c", c);
		if (n < 0 || (size_t)n >= cap - *pos)
			return false;
		*pos += (size_t)n;
	}
	return true;
}

int
dnsmsg_name_to_text(const uint8_t *pkt, size_t len, size_t off, char *out, size_t cap)
{
	uint8_t wire[DNS_MAX_NAME];
	size_t end, wire_len, pos = 0;

	if (dnsmsg_name_scan(pkt, len, off, &end, wire, &wire_len) < 0)
		return -EPROTO;
	if (cap < 2)
		return -ENOSPC;
	if (wire_len == 1) {
		strcpy(out, ".");
		return 1;
	}
	for (size_t w = 0; wire[w] != 0; w += 1 + (size_t)wire[w]) {
		if (w != 0) {
			if (cap - pos < 2) /* the dot and the final NUL */
				return -ENOSPC;
			out[pos++] = '.';
		}
		if (!dnsmsg_label_to_text(wire + w + 1, wire[w], out, cap, &pos))
			return -ENOSPC;
	}
	out[pos] = '\0';
	return (int)pos;
}

const char *
dnsmsg_type_name(uint16_t type, char *buf, size_t cap)
{
	static const struct {
		uint16_t type;
		const char *name;
	} names[] = {
		/* clang-format off */
		{ DNS_TYPE_A, "A" },	     { DNS_TYPE_NS, "NS" },	{ DNS_TYPE_CNAME, "CNAME" },
		{ DNS_TYPE_SOA, "SOA" },     { DNS_TYPE_PTR, "PTR" },	{ DNS_TYPE_MX, "MX" },
		{ DNS_TYPE_TXT, "TXT" },     { DNS_TYPE_AAAA, "AAAA" }, { DNS_TYPE_SRV, "SRV" },
		{ 35, "NAPTR" },	     { 39, "DNAME" },		{ DNS_TYPE_OPT, "OPT" },
		{ 43, "DS" },		     { 46, "RRSIG" },		{ 47, "NSEC" },
		{ 48, "DNSKEY" },	     { 50, "NSEC3" },		{ 51, "NSEC3PARAM" },
		{ 64, "SVCB" },		     { 65, "HTTPS" },		{ 250, "TSIG" },
		{ 251, "IXFR" },	     { 252, "AXFR" },		{ DNS_TYPE_ANY, "ANY" },
		{ 257, "CAA" },
		/* clang-format on */
	};

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (names[i].type == type) {
			snprintf(buf, cap, "%s", names[i].name);
			return buf;
		}
	}
	snprintf(buf, cap, "TYPE%u", type);
	return buf;
}

const char *
dnsmsg_rdata_text(const uint8_t *pkt, size_t len, const struct dnsmsg_rr *rr, bool targets,
		  char *out, size_t cap)
{
	bool named = rr->type == DNS_TYPE_PTR ||
		     (targets && (rr->type == DNS_TYPE_CNAME || rr->type == DNS_TYPE_NS));
	char t[16];

	if (rr->type == DNS_TYPE_A && rr->rdlen == 4)
		inet_ntop(AF_INET, pkt + rr->rdata_off, out, (socklen_t)cap);
	else if (rr->type == DNS_TYPE_AAAA && rr->rdlen == 16)
		inet_ntop(AF_INET6, pkt + rr->rdata_off, out, (socklen_t)cap);
	else if (!named || dnsmsg_name_to_text(pkt, len, rr->rdata_off, out, cap) < 0)
		snprintf(out, cap, "<%s>", dnsmsg_type_name(rr->type, t, sizeof(t)));
	return out;
}
