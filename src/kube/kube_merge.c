/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kube_merge.c - the second stage of an ExternalName answer whose target lies outside the
 * cluster zone: the CNAME reply the kube resolver built and the target's reply from the
 * forwarders become one message. Records are copied with their names uncompressed, so they stay
 * valid in a message laid out differently; only types whose rdata names we know are copied.
 * Pure: no I/O, no clock.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kubemasq/dnsmsg.h"
#include "kubemasq/upstream.h"
#include "kube/kube_merge.h"

#define KUBE_MERGE_MAX_JUMPS 64 /* compression pointers followed in one name */

/* Expand the (possibly compressed) name at pkt[off] into out; *next is the offset just past it
 * where it was written. Returns the wire length or -EPROTO. */
static int
kube_merge_name_expand(const uint8_t *pkt, size_t len, size_t off, uint8_t *out, size_t *next)
{
	unsigned jumps = 0;
	bool jumped = false;
	size_t n = 0;

	for (;;) {
		uint8_t c;

		if (off >= len)
			return -EPROTO;
		c = pkt[off];
		if ((c & 0xc0) == 0xc0) {
			if (off + 1 >= len || ++jumps > KUBE_MERGE_MAX_JUMPS)
				return -EPROTO;
			if (!jumped)
				*next = off + 2;
			jumped = true;
			off = (size_t)(c & 0x3f) << 8 | pkt[off + 1];
			continue;
		}
		if ((c & 0xc0) || off + 1 + c > len || n + 1 + c > DNS_MAX_NAME)
			return -EPROTO;
		memcpy(out + n, pkt + off, 1u + c);
		n += 1u + c;
		off += 1u + c;
		if (c == 0) {
			if (!jumped)
				*next = off;
			return (int)n;
		}
	}
}

/* How the rdata of `type` holds names: `fixed` bytes first, then `names` names, then the rest
 * copied as is. Returns false for types whose names we do not know how to find. */
static bool
kube_merge_rdata_shape(uint16_t type, size_t *fixed, unsigned *names)
{
	switch (type) {
	case DNS_TYPE_CNAME:
	case DNS_TYPE_PTR:
	case DNS_TYPE_NS:
		*fixed = 0;
		*names = 1;
		return true;
	case DNS_TYPE_MX:
		*fixed = 2;
		*names = 1;
		return true;
	case DNS_TYPE_SRV:
		*fixed = 6;
		*names = 1;
		return true;
	case DNS_TYPE_SOA:
		*fixed = 0;
		*names = 2;
		return true;
	case DNS_TYPE_A:
	case DNS_TYPE_AAAA:
	case DNS_TYPE_TXT:
		*fixed = 0;
		*names = 0;
		return true;
	}
	return false;
}

/* Copy one record of pkt into the builder with its names uncompressed, so it stays valid in a
 * message laid out differently. The owner equal to the question becomes a pointer to it (the
 * client's spelling). Records of other types are skipped: their rdata might hold pointers. */
static int
kube_merge_copy_rr(struct dnsmsg_builder *b, enum dns_section sec, const uint8_t *pkt, size_t len,
		   const struct dnsmsg_rr *rr, const struct dnsmsg_question *q)
{
	uint8_t owner[DNS_MAX_NAME], rdata[2 * DNS_MAX_NAME + 64];
	size_t fixed, next, pos = rr->rdata_off, end = rr->rdata_off + rr->rdlen, n = 0;
	const uint8_t *oname = owner;
	unsigned names;
	int olen, l;

	if (!kube_merge_rdata_shape(rr->type, &fixed, &names))
		return 0;
	if ((olen = kube_merge_name_expand(pkt, len, rr->name_off, owner, &next)) < 0)
		return olen;
	if (dnsmsg_name_equal(owner, (size_t)olen, q->qname, q->qname_len))
		oname = NULL;
	if (names == 0) {
		dnsmsg_builder_rr(b, sec, oname, (size_t)olen, rr->type, rr->rclass, rr->ttl,
				  pkt + pos, rr->rdlen);
		return 0;
	}
	if (fixed > rr->rdlen)
		return -EPROTO;
	memcpy(rdata, pkt + pos, fixed);
	n = fixed;
	pos += fixed;
	for (unsigned i = 0; i < names; i++) {
		if ((l = kube_merge_name_expand(pkt, end, pos, rdata + n, &next)) < 0)
			return l;
		n += (size_t)l;
		pos = next;
	}
	if (end - pos > sizeof(rdata) - n)
		return -EPROTO;
	memcpy(rdata + n, pkt + pos, end - pos);
	n += end - pos;
	dnsmsg_builder_rr(b, sec, oname, (size_t)olen, rr->type, rr->rclass, rr->ttl, rdata, n);
	return 0;
}

/* Copy the records of `sec` (only the SOAs when soa_only). */
static int
kube_merge_copy_section(struct dnsmsg_builder *b, enum dns_section sec, const uint8_t *pkt,
			size_t len, const struct dnsmsg_question *q, bool soa_only)
{
	struct dnsmsg_iter it;
	struct dnsmsg_rr rr;
	int rc;

	if ((rc = dnsmsg_iter_init(&it, pkt, len)) < 0)
		return rc;
	while ((rc = dnsmsg_iter_next(&it, &rr)) == 0) {
		if (rr.section != sec || rr.type == DNS_TYPE_OPT ||
		    (soa_only && rr.type != DNS_TYPE_SOA))
			continue;
		if ((rc = kube_merge_copy_rr(b, sec, pkt, len, &rr, q)) < 0)
			return rc;
	}
	return rc == -ENOENT ? 0 : rc;
}

/* The CNAME reply of stage 1 + the target's answer records (or its SOA for a negative answer)
 * into a new reply: rcode the target's for NOERROR and NXDOMAIN, SERVFAIL otherwise. */
int
kube_merge(const struct upstream_req *req, const uint8_t *cname, size_t clen, int status,
	   const uint8_t *tr, size_t tlen, uint8_t **out, size_t *outlen)
{
	unsigned rcode = DNS_RCODE_SERVFAIL;
	struct dnsmsg_builder b;
	uint8_t *buf = malloc(DNS_MAX_UDP);
	int rc;

	if (!buf)
		return -ENOMEM;
	if (status == 0 && tlen >= DNS_HDR_LEN &&
	    (dnsmsg_rcode(tr) == DNS_RCODE_NOERROR || dnsmsg_rcode(tr) == DNS_RCODE_NXDOMAIN))
		rcode = dnsmsg_rcode(tr);
	dnsmsg_builder_init(&b, buf, DNS_MAX_UDP, 0, &req->q, true, req->cd, true, rcode);
	rc = kube_merge_copy_section(&b, DNS_SECTION_ANSWER, cname, clen, &req->q, false);
	if (rc == 0 && rcode != DNS_RCODE_SERVFAIL) {
		rc = kube_merge_copy_section(&b, DNS_SECTION_ANSWER, tr, tlen, &req->q, false);
		if (rc == 0 && dnsmsg_ancount(tr) == 0)
			rc = kube_merge_copy_section(&b, DNS_SECTION_AUTHORITY, tr, tlen, &req->q,
						     true);
	}
	if (rc < 0 && rcode != DNS_RCODE_SERVFAIL) {
		/* the target's reply does not walk: the CNAME alone, SERVFAIL */
		free(buf);
		return kube_merge(req, cname, clen, -EPROTO, NULL, 0, out, outlen);
	}
	if (rc == 0)
		rc = dnsmsg_builder_finish(&b);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	*out = buf;
	*outlen = (size_t)rc;
	return 0;
}
