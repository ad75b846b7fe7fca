/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dnsmsg.c - pure DNS wire helpers: query validation, error replies, upstream queries, reply
 * checks, OPT stripping and appending, truncation, a bounded RR iterator, TTL scanning for the
 * cache and a small answer builder (names and their text: dnsmsg_name.c). Everything here runs on the hot path, so
 * nothing allocates, logs, reads the clock or calls ldns; every read is bounded by the packet
 * length, compression pointers are followed at most DNSMSG_MAX_JUMPS times, labels over 63 and
 * names over 255 bytes are refused.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kubemasq/defs.h"
#include "kubemasq/dnsmsg.h"
#include "lib/dnsmsg_impl.h"

/* A legitimate name needs at most one pointer per label; anything longer is a loop or abuse. */
#define DNSMSG_MAX_JUMPS 127
#define DNSMSG_RR_FIXED 10 /* type, class, TTL, rdlength */
#define DNSMSG_OPT_LEN 11  /* root owner + fixed part, no options */
#define DNSMSG_MIN_UDP 512

int
dnsmsg_name_scan(const uint8_t *pkt, size_t len, size_t off, size_t *end, uint8_t *wire,
		 size_t *wire_len)
{
	size_t pos = off, total = 0;
	unsigned jumps = 0;
	bool jumped = false;

	for (;;) {
		if (pos >= len)
			return -EPROTO;
		uint8_t c = pkt[pos];
		if ((c & 0xc0) == 0xc0) {
			if (pos + 1 >= len || ++jumps > DNSMSG_MAX_JUMPS)
				return -EPROTO;
			if (!jumped)
				*end = pos + 2;
			jumped = true;
			pos = (size_t)(c & 0x3f) << 8 | pkt[pos + 1];
			continue;
		}
		/* 0x40 and 0x80 are the obsolete extended label types */
		if (c > DNSMSG_MAX_LABEL || total + 1 + c > DNS_MAX_NAME || pos + 1 + c > len)
			return -EPROTO;
		if (wire)
			memcpy(wire + total, pkt + pos, 1 + (size_t)c);
		total += 1 + (size_t)c;
		pos += 1 + (size_t)c;
		if (c == 0)
			break;
	}
	if (!jumped)
		*end = pos;
	if (wire_len)
		*wire_len = total;
	return 0;
}

static int
dnsmsg_name_skip(const uint8_t *pkt, size_t len, size_t off, size_t *end)
{
	return dnsmsg_name_scan(pkt, len, off, end, NULL, NULL);
}

/* Length of the uncompressed name at `off`, or -EPROTO (pointers included: queries have none). */
static int
dnsmsg_plain_name_len(const uint8_t *pkt, size_t len, size_t off)
{
	size_t pos = off;

	for (;;) {
		if (pos >= len || pkt[pos] > DNSMSG_MAX_LABEL)
			return -EPROTO;
		uint8_t c = pkt[pos];
		pos += 1 + (size_t)c;
		if (pos - off > DNS_MAX_NAME || pos > len)
			return -EPROTO;
		if (c == 0)
			return (int)(pos - off);
	}
}

/* Offset just past `count` questions starting at the header's end, or -EPROTO. */
static int
dnsmsg_skip_questions(const uint8_t *pkt, size_t len, unsigned count, size_t *end)
{
	size_t pos = DNS_HDR_LEN;

	for (unsigned i = 0; i < count; i++) {
		if (dnsmsg_name_skip(pkt, len, pos, &pos) < 0 || pos + 4 > len)
			return -EPROTO;
		pos += 4;
	}
	*end = pos;
	return 0;
}

/* Read one RR at *pos (bounded by len) into *rr and advance *pos. */
static int
dnsmsg_read_rr(const uint8_t *pkt, size_t len, size_t *pos, struct dnsmsg_rr *rr)
{
	size_t p;

	if (dnsmsg_name_skip(pkt, len, *pos, &p) < 0 || p + DNSMSG_RR_FIXED > len)
		return -EPROTO;
	rr->name_off = *pos;
	rr->type = dnsmsg_get16(pkt + p);
	rr->rclass = dnsmsg_get16(pkt + p + 2);
	rr->ttl_off = p + 4;
	rr->ttl = dnsmsg_get32(pkt + p + 4);
	rr->rdlen = dnsmsg_get16(pkt + p + 8);
	rr->rdata_off = p + DNSMSG_RR_FIXED;
	if (rr->rdata_off + rr->rdlen > len)
		return -EPROTO;
	*pos = rr->rdata_off + rr->rdlen;
	return 0;
}

/* ---- queries ---------------------------------------------------------------------------- */

/* The options of an OPT RR must tile its rdata exactly. */
static int
dnsmsg_check_opt_options(const uint8_t *pkt, size_t off, size_t rdlen)
{
	size_t pos = 0;

	while (pos < rdlen) {
		if (rdlen - pos < 4)
			return -EPROTO;
		size_t olen = dnsmsg_get16(pkt + off + pos + 2);
		if (rdlen - pos - 4 < olen)
			return -EPROTO;
		pos += 4 + olen;
	}
	return 0;
}

/* Record the EDNS parameters of the OPT RR `rr` after checking its owner and options. */
static int
dnsmsg_parse_opt(const uint8_t *pkt, size_t len, const struct dnsmsg_rr *rr,
		 struct dnsmsg_query *out)
{
	uint8_t wire[DNS_MAX_NAME];
	size_t end, wire_len;

	if (out->edns)
		return -EPROTO;
	if (dnsmsg_name_scan(pkt, len, rr->name_off, &end, wire, &wire_len) < 0 || wire_len != 1)
		return -EPROTO;
	if (dnsmsg_check_opt_options(pkt, rr->rdata_off, rr->rdlen) < 0)
		return -EPROTO;
	out->edns = true;
	out->edns_version = (uint8_t)(rr->ttl >> 16);
	out->do_bit = (rr->ttl & 0x8000) != 0;
	out->udp_size = MAX(rr->rclass, DNSMSG_MIN_UDP);
	return 0;
}

/* Walk the additional section of a query: other records (TSIG, ...) are skipped over. */
static int
dnsmsg_parse_additional(const uint8_t *pkt, size_t len, size_t pos, struct dnsmsg_query *out)
{
	unsigned arcount = dnsmsg_arcount(pkt);
	struct dnsmsg_rr rr;

	for (unsigned i = 0; i < arcount; i++) {
		if (dnsmsg_read_rr(pkt, len, &pos, &rr) < 0)
			return -EPROTO;
		if (rr.type == DNS_TYPE_OPT && dnsmsg_parse_opt(pkt, len, &rr, out) < 0)
			return -EPROTO;
	}
	return pos == len ? 0 : -EPROTO;
}

/* Parse the single uncompressed question at the header's end into out->q. */
static int
dnsmsg_parse_question(const uint8_t *pkt, size_t len, struct dnsmsg_query *out)
{
	int nlen = dnsmsg_plain_name_len(pkt, len, DNS_HDR_LEN);

	if (nlen < 0 || DNS_HDR_LEN + (size_t)nlen + 4 > len)
		return -EPROTO;
	out->q.qname = pkt + DNS_HDR_LEN;
	out->q.qname_len = (uint16_t)nlen;
	out->q.qtype = dnsmsg_get16(pkt + DNS_HDR_LEN + nlen);
	out->q.qclass = dnsmsg_get16(pkt + DNS_HDR_LEN + nlen + 2);
	out->question_end = DNS_HDR_LEN + (size_t)nlen + 4;
	return 0;
}

int
dnsmsg_parse_query(const uint8_t *pkt, size_t len, struct dnsmsg_query *out)
{
	memset(out, 0, sizeof(*out));
	out->question_end = DNS_HDR_LEN;
	out->udp_size = DNSMSG_MIN_UDP;
	if (len < DNS_HDR_LEN || dnsmsg_qr(pkt))
		return -EBADMSG;
	out->id = dnsmsg_id(pkt);
	out->opcode = (uint8_t)dnsmsg_opcode(pkt);
	out->rd = dnsmsg_rd(pkt);
	out->cd = dnsmsg_cd(pkt);
	/* Parsed even for other opcodes, so that NOTIMP can echo the question. */
	bool have_q = len <= DNS_MAX_UDP && dnsmsg_qdcount(pkt) == 1 &&
		      dnsmsg_parse_question(pkt, len, out) == 0;
	if (out->opcode != 0)
		return -EOPNOTSUPP;
	if (!have_q || dnsmsg_ancount(pkt) != 0 || dnsmsg_nscount(pkt) != 0)
		return -EPROTO;
	return dnsmsg_parse_additional(pkt, len, out->question_end, out);
}

/* Write an OPT RR with no options at `p` (DNSMSG_OPT_LEN bytes). */
static void
dnsmsg_write_opt(uint8_t *p, uint16_t udp_size, bool do_bit, uint8_t ext_rcode)
{
	p[0] = 0;
	dnsmsg_put16(p + 1, DNS_TYPE_OPT);
	dnsmsg_put16(p + 3, udp_size);
	dnsmsg_put32(p + 5, (uint32_t)ext_rcode << 24 | (do_bit ? 0x8000u : 0));
	dnsmsg_put16(p + 9, 0);
}

/* Write a question at `p`, optionally lower-casing the name; returns the bytes written. */
static size_t
dnsmsg_write_question(uint8_t *p, const struct dnsmsg_question *q, bool lower)
{
	if (lower)
		dnsmsg_name_lower(p, q->qname, q->qname_len);
	else
		memmove(p, q->qname, q->qname_len);
	dnsmsg_put16(p + q->qname_len, q->qtype);
	dnsmsg_put16(p + q->qname_len + 2, q->qclass);
	return (size_t)q->qname_len + 4;
}

int
dnsmsg_reply_error(uint8_t *out, size_t cap, const struct dnsmsg_query *q, unsigned rcode,
		   uint16_t edns_size)
{
	bool has_q = q->q.qname != NULL;
	size_t need = DNS_HDR_LEN + (has_q ? (size_t)q->q.qname_len + 4 : 0) +
		      (q->edns ? DNSMSG_OPT_LEN : 0);
	size_t len = DNS_HDR_LEN;

	if (cap < need)
		return -ENOSPC;
	/* The question is written first: it may already sit at offset 12 of `out`. */
	if (has_q)
		len += dnsmsg_write_question(out + len, &q->q, false);
	dnsmsg_put16(out, q->id);
	out[2] = (uint8_t)(0x80 | (q->opcode & 0x0f) << 3 | (q->rd ? 0x01 : 0));
	out[3] = (uint8_t)(0x80 | (q->cd ? 0x10 : 0) | (rcode & 0x0f));
	dnsmsg_put16(out + 4, has_q ? 1 : 0);
	dnsmsg_put16(out + 6, 0);
	dnsmsg_put16(out + 8, 0);
	dnsmsg_put16(out + 10, q->edns ? 1 : 0);
	if (q->edns) {
		dnsmsg_write_opt(out + len, edns_size, q->do_bit, (uint8_t)(rcode >> 4));
		len += DNSMSG_OPT_LEN;
	}
	return (int)len;
}

int
dnsmsg_build_query(uint8_t *out, size_t cap, uint16_t id, const struct dnsmsg_question *q, bool cd,
		   bool do_bit, uint16_t edns_size)
{
	size_t need = DNS_HDR_LEN + (size_t)q->qname_len + 4 + (edns_size ? DNSMSG_OPT_LEN : 0);
	size_t len = DNS_HDR_LEN;

	assert(q->qname != NULL);
	if (cap < need)
		return -ENOSPC;
	dnsmsg_put16(out, id);
	out[2] = 0x01;
	out[3] = cd ? 0x10 : 0;
	dnsmsg_put16(out + 4, 1);
	dnsmsg_put16(out + 6, 0);
	dnsmsg_put16(out + 8, 0);
	dnsmsg_put16(out + 10, edns_size ? 1 : 0);
	len += dnsmsg_write_question(out + len, q, true);
	if (edns_size) {
		dnsmsg_write_opt(out + len, edns_size, do_bit, 0);
		len += DNSMSG_OPT_LEN;
	}
	return (int)len;
}

int
dnsmsg_check_reply(const uint8_t *pkt, size_t len, uint16_t id, const struct dnsmsg_question *q)
{
	uint8_t wire[DNS_MAX_NAME];
	size_t end, wire_len;

	if (len < DNS_HDR_LEN || !dnsmsg_qr(pkt))
		return -EBADMSG;
	if (dnsmsg_id(pkt) != id)
		return -ESRCH;
	if (dnsmsg_qdcount(pkt) != 1)
		return -EPROTO;
	if (dnsmsg_name_scan(pkt, len, DNS_HDR_LEN, &end, wire, &wire_len) < 0 || end + 4 > len)
		return -EBADMSG;
	/* The question is copied and rewritten in place as the client's name (query.c, cache.c):
	 * a pointer in it would leave the name's bytes somewhere else and the copy malformed. */
	if (dnsmsg_plain_name_len(pkt, len, DNS_HDR_LEN) < 0)
		return -EBADMSG;
	if (!dnsmsg_name_equal(wire, wire_len, q->qname, q->qname_len) ||
	    dnsmsg_get16(pkt + end) != q->qtype || dnsmsg_get16(pkt + end + 2) != q->qclass)
		return -EPROTO;
	return 0;
}

/* ---- OPT stripping ------------------------------------------------------------------------ */

/*
 * Where the names sit in the rdata of the types whose names may be compressed (RFC 3597 s4):
 * `skip` bytes, then `count` names.
 */
static bool
dnsmsg_rdata_names(uint16_t type, size_t *skip, unsigned *count)
{
	switch (type) {
	case DNS_TYPE_NS:
	case 3:
	case 4:
	case DNS_TYPE_CNAME:
	case 7:
	case 8:
	case 9:
	case DNS_TYPE_PTR:
		*skip = 0, *count = 1;
		return true;
	case DNS_TYPE_SOA:
	case 14:
	case 17: /* SOA, MINFO, RP */
		*skip = 0, *count = 2;
		return true;
	case DNS_TYPE_MX:
	case 18:
	case 21: /* MX, AFSDB, RT */
		*skip = 2, *count = 1;
		return true;
	case DNS_TYPE_SRV:
		*skip = 6, *count = 1;
		return true;
	default:
		return false;
	}
}

/*
 * Skip the name at *off in place, without following pointers, and move the pointer ending it
 * (if any) to account for the `gap` bytes removed at `start`; only checks when !apply. The
 * walk never follows pointers, so rewriting some of them cannot change what a later pass sees.
 * A pointer into the removed bytes makes the removal impossible: -EPROTO.
 */
static int
dnsmsg_fix_name(uint8_t *pkt, size_t limit, size_t *off, size_t start, size_t gap, bool apply)
{
	size_t pos = *off;

	while (pos < limit) {
		uint8_t c = pkt[pos];
		if ((c & 0xc0) == 0xc0) {
			if (pos + 1 >= limit)
				return -EPROTO;
			size_t t = (size_t)(c & 0x3f) << 8 | pkt[pos + 1];
			if (t >= start && t < start + gap)
				return -EPROTO;
			if (apply && t >= start + gap)
				dnsmsg_put16(pkt + pos, (uint16_t)(0xc000 | (t - gap)));
			*off = pos + 2;
			return 0;
		}
		if (c > DNSMSG_MAX_LABEL)
			return -EPROTO;
		pos += 1 + (size_t)c;
		if (c == 0) {
			*off = pos;
			return 0;
		}
	}
	return -EPROTO;
}

/* dnsmsg_fix_name() over the names of one record's rdata [pos, end), when its type has any. */
static int
dnsmsg_fix_rdata(uint8_t *pkt, uint16_t type, size_t pos, size_t end, size_t start, size_t gap,
		 bool apply)
{
	size_t skip;
	unsigned count;

	if (!dnsmsg_rdata_names(type, &skip, &count))
		return 0;
	if (end - pos < skip)
		return -EPROTO;
	pos += skip;
	for (unsigned i = 0; i < count; i++)
		if (dnsmsg_fix_name(pkt, end, &pos, start, gap, apply) < 0)
			return -EPROTO;
	return 0;
}

/* Check (apply == false) or rewrite every name of the message for the removal of the OPT. */
static int
dnsmsg_fix_pointers(uint8_t *pkt, size_t len, size_t start, size_t gap, bool apply)
{
	unsigned nrr = (unsigned)dnsmsg_ancount(pkt) + dnsmsg_nscount(pkt) + dnsmsg_arcount(pkt);
	size_t pos = DNS_HDR_LEN;

	for (unsigned i = 0; i < dnsmsg_qdcount(pkt); i++) {
		if (dnsmsg_fix_name(pkt, len, &pos, start, gap, apply) < 0 || len - pos < 4)
			return -EPROTO;
		pos += 4;
	}
	for (unsigned i = 0; i < nrr; i++) {
		if (dnsmsg_fix_name(pkt, len, &pos, start, gap, apply) < 0 ||
		    len - pos < DNSMSG_RR_FIXED)
			return -EPROTO;
		uint16_t type = dnsmsg_get16(pkt + pos);
		size_t rdata = pos + DNSMSG_RR_FIXED, end = rdata + dnsmsg_get16(pkt + pos + 8);
		if (end > len || dnsmsg_fix_rdata(pkt, type, rdata, end, start, gap, apply) < 0)
			return -EPROTO;
		pos = end;
	}
	return 0;
}

/* Find the one OPT RR: *start and *end bracket it, *start == 0 when there is none; *last is
 * the offset just past the last record. */
static int
dnsmsg_find_opt(const uint8_t *pkt, size_t len, size_t *start, size_t *end, size_t *last)
{
	struct dnsmsg_iter it;
	struct dnsmsg_rr rr;
	int r;

	*start = *end = 0;
	if (dnsmsg_iter_init(&it, pkt, len) < 0)
		return -EPROTO;
	while ((r = dnsmsg_iter_next(&it, &rr)) == 0) {
		if (rr.type != DNS_TYPE_OPT)
			continue;
		/* RFC 6891: one OPT, in the additional section */
		if (*start != 0 || rr.section != DNS_SECTION_ADDITIONAL)
			return -EPROTO;
		*start = rr.name_off;
		*end = rr.rdata_off + rr.rdlen;
	}
	*last = it.pos;
	return r == -ENOENT ? 0 : -EPROTO;
}

#define DNSMSG_MARKED(map, i) (((map)[(i) >> 3] >> ((i)&7)) & 1)

/* Does the name at `off` read, following its pointers, a byte marked in `map`? */
static bool
dnsmsg_name_reads(const uint8_t *pkt, size_t len, size_t off, const uint8_t *map)
{
	for (unsigned jumps = 0; off < len && jumps <= DNSMSG_MAX_JUMPS;) {
		uint8_t c = pkt[off];
		size_t n = (c & 0xc0) == 0xc0 ? 2 : 1 + (size_t)c;

		if (n > len - off)
			return true;
		for (size_t i = off; i < off + n; i++)
			if (DNSMSG_MARKED(map, i))
				return true;
		if ((c & 0xc0) == 0xc0) {
			off = (size_t)(c & 0x3f) << 8 | pkt[off + 1];
			jumps++;
		} else if (c == 0) {
			return false;
		} else {
			off += n;
		}
	}
	return true;
}

/*
 * Answering a reply rewrites its header (ID, flags, counts) and, on a cache hit or with
 * --max-ttl, its TTLs in place: a name that reads any of those bytes through a pointer would
 * change with them, and the answer with it. No server writes that; such a reply is refused
 * (-EPROTO), as is one whose names cannot be walked.
 */
static int
dnsmsg_check_rewritable(uint8_t *pkt, size_t len)
{
	uint8_t map[DNS_MAX_UDP / 8 + 1];
	struct dnsmsg_iter it;
	struct dnsmsg_rr rr;
	int r;

	memset(map, 0, (len + 7) / 8);
	map[0] = 0xff;
	map[1] |= 0x0f; /* bytes 0..11 */
	if (dnsmsg_iter_init(&it, pkt, len) < 0)
		return -EPROTO;
	while ((r = dnsmsg_iter_next(&it, &rr)) == 0)
		for (size_t i = rr.ttl_off; i < rr.ttl_off + 4; i++)
			map[i >> 3] |= (uint8_t)(1u << (i & 7));
	if (r != -ENOENT || (dnsmsg_qdcount(pkt) && dnsmsg_name_reads(pkt, len, DNS_HDR_LEN, map)))
		return -EPROTO;
	dnsmsg_iter_init(&it, pkt, len);
	while (dnsmsg_iter_next(&it, &rr) == 0) {
		size_t skip, pos = rr.rdata_off, end = rr.rdata_off + rr.rdlen;
		unsigned count;

		if (dnsmsg_name_reads(pkt, len, rr.name_off, map))
			return -EPROTO;
		if (!dnsmsg_rdata_names(rr.type, &skip, &count))
			continue;
		if (end - pos < skip)
			return -EPROTO;
		pos += skip;
		for (unsigned i = 0; i < count; i++)
			if (dnsmsg_name_reads(pkt, len, pos, map) ||
			    dnsmsg_fix_name(pkt, end, &pos, 0, 0, false) < 0)
				return -EPROTO;
	}
	return 0;
}

int
dnsmsg_strip_opt(uint8_t *pkt, size_t len)
{
	size_t start, end, last;

	if (dnsmsg_find_opt(pkt, len, &start, &end, &last) < 0)
		return -EPROTO;
	/* Bytes after the last record go too, as the client's OPT is appended after them, if the
	 * message reads the same without them (a name may point or run into them). */
	if (last < len) {
		if (dnsmsg_find_opt(pkt, last, &start, &end, &len) < 0)
			return -EPROTO;
	}
	if (start == 0)
		return dnsmsg_check_rewritable(pkt, len) < 0 ? -EPROTO : (int)len;
	/* Names after the OPT may point at names after it too; check all before changing any. */
	if (dnsmsg_fix_pointers(pkt, len, start, end - start, false) < 0)
		return -EPROTO;
	if (end < len) {
		/* the same walk as the check above, which passed: it cannot fail now */
		int r = dnsmsg_fix_pointers(pkt, len, start, end - start, true);
		assert(r == 0);
		(void)r;
		memmove(pkt + start, pkt + end, len - end);
	}
	dnsmsg_put16(pkt + 10, (uint16_t)(dnsmsg_arcount(pkt) - 1));
	len -= end - start;
	return dnsmsg_check_rewritable(pkt, len) < 0 ? -EPROTO : (int)len;
}

int
dnsmsg_append_opt(uint8_t *pkt, size_t len, size_t cap, uint16_t udp_size, bool do_bit,
		  uint8_t ext_rcode)
{
	assert(len >= DNS_HDR_LEN);
	if (cap < len || cap - len < DNSMSG_OPT_LEN || len + DNSMSG_OPT_LEN > DNS_MAX_UDP ||
	    dnsmsg_arcount(pkt) == UINT16_MAX)
		return -ENOSPC;
	dnsmsg_write_opt(pkt + len, udp_size, do_bit, ext_rcode);
	dnsmsg_put16(pkt + 10, (uint16_t)(dnsmsg_arcount(pkt) + 1));
	return (int)(len + DNSMSG_OPT_LEN);
}

size_t
dnsmsg_truncate(uint8_t *pkt, size_t question_end)
{
	assert(question_end >= DNS_HDR_LEN);
	pkt[2] |= 0x02;
	memset(pkt + 6, 0, 6);
	return question_end;
}

int
dnsmsg_question_end(const uint8_t *pkt, size_t len)
{
	size_t end;

	if (len < DNS_HDR_LEN || len > DNS_MAX_UDP || dnsmsg_qdcount(pkt) > 1 ||
	    dnsmsg_skip_questions(pkt, len, dnsmsg_qdcount(pkt), &end) < 0)
		return -EPROTO;
	return (int)end;
}

/* ---- iterator and TTLs ----------------------------------------------------------------- */

int
dnsmsg_iter_init(struct dnsmsg_iter *it, const uint8_t *pkt, size_t len)
{
	memset(it, 0, sizeof(*it));
	if (len < DNS_HDR_LEN || len > DNS_MAX_UDP)
		return -EPROTO;
	it->pkt = pkt;
	it->len = len;
	if (dnsmsg_skip_questions(pkt, len, dnsmsg_qdcount(pkt), &it->pos) < 0)
		return -EPROTO;
	it->left[DNS_SECTION_ANSWER] = dnsmsg_ancount(pkt);
	it->left[DNS_SECTION_AUTHORITY] = dnsmsg_nscount(pkt);
	it->left[DNS_SECTION_ADDITIONAL] = dnsmsg_arcount(pkt);
	it->section = DNS_SECTION_ANSWER;
	return 0;
}

int
dnsmsg_iter_next(struct dnsmsg_iter *it, struct dnsmsg_rr *rr)
{
	while (it->section < DNS_SECTION_ADDITIONAL && it->left[it->section] == 0)
		it->section++;
	if (it->left[it->section] == 0)
		return -ENOENT;
	/* On error nothing advances, so every later call fails the same way. */
	if (dnsmsg_read_rr(it->pkt, it->len, &it->pos, rr) < 0)
		return -EPROTO;
	rr->section = it->section;
	it->left[it->section]--;
	return 0;
}

/* MINIMUM of the SOA record `rr`, whose two names must end inside its rdata. */
static int
dnsmsg_soa_minimum(const uint8_t *pkt, size_t len, const struct dnsmsg_rr *rr, uint32_t *minimum)
{
	size_t end = rr->rdata_off + rr->rdlen, pos = rr->rdata_off;

	/* pointers may lead anywhere in the packet, but the names' own bytes stay in the rdata */
	if (dnsmsg_name_skip(pkt, len, pos, &pos) < 0 || pos > end ||
	    dnsmsg_name_skip(pkt, len, pos, &pos) < 0 || pos > end || end - pos != 20)
		return -EPROTO;
	*minimum = dnsmsg_get32(pkt + pos + 16);
	return 0;
}

/* RFC 2181 s8: a TTL with the top bit set is treated as zero. */
static inline uint32_t
dnsmsg_ttl_value(uint32_t ttl)
{
	return ttl & 0x80000000u ? 0 : ttl;
}

int
dnsmsg_scan_ttls(const uint8_t *pkt, size_t len, uint16_t *offs, unsigned max_offs,
		 struct dnsmsg_ttl_info *info)
{
	uint32_t min_answer = UINT32_MAX, min_all = UINT32_MAX, minimum;
	bool answers = false;
	struct dnsmsg_iter it;
	struct dnsmsg_rr rr;
	int r;

	memset(info, 0, sizeof(*info));
	if (dnsmsg_iter_init(&it, pkt, len) < 0)
		return -EPROTO;
	while ((r = dnsmsg_iter_next(&it, &rr)) == 0) {
		if (rr.type == DNS_TYPE_OPT)
			continue;
		if (info->n_offs >= max_offs)
			return -E2BIG;
		offs[info->n_offs++] = (uint16_t)rr.ttl_off;
		uint32_t ttl = dnsmsg_ttl_value(rr.ttl);
		min_all = MIN(min_all, ttl);
		if (rr.section == DNS_SECTION_ANSWER) {
			answers = true;
			min_answer = MIN(min_answer, ttl);
		}
		if (rr.section != DNS_SECTION_AUTHORITY || rr.type != DNS_TYPE_SOA || info->has_soa)
			continue;
		if (dnsmsg_soa_minimum(pkt, len, &rr, &minimum) < 0)
			return -EPROTO;
		info->has_soa = true;
		info->neg_ttl = MIN(ttl, dnsmsg_ttl_value(minimum));
	}
	if (r != -ENOENT)
		return -EPROTO;
	info->min_ttl = answers ? min_answer : min_all;
	return 0;
}

/* ---- builder --------------------------------------------------------------------------- */

/* Room for `n` more bytes? Sets overflow otherwise; a message cannot exceed 64 KiB. */
static bool
dnsmsg_builder_room(struct dnsmsg_builder *b, size_t n)
{
	if (!b->overflow && n <= MIN(b->cap, (size_t)DNS_MAX_UDP) - b->len)
		return true;
	b->overflow = true;
	return false;
}

void
dnsmsg_builder_init(struct dnsmsg_builder *b, uint8_t *buf, size_t cap, uint16_t id,
		    const struct dnsmsg_question *q, bool rd, bool cd, bool aa, unsigned rcode)
{
	memset(b, 0, sizeof(*b));
	b->buf = buf;
	b->cap = cap;
	b->section = DNS_SECTION_ANSWER;
	if (!dnsmsg_builder_room(b, DNS_HDR_LEN))
		return;
	dnsmsg_put16(buf, id);
	buf[2] = (uint8_t)(0x80 | (aa ? 0x04 : 0) | (rd ? 0x01 : 0));
	buf[3] = (uint8_t)(0x80 | (cd ? 0x10 : 0) | (rcode & 0x0f));
	memset(buf + 4, 0, 8);
	b->len = DNS_HDR_LEN;
	if (q != NULL && q->qname != NULL) {
		if (!dnsmsg_builder_room(b, (size_t)q->qname_len + 4))
			return;
		b->len += dnsmsg_write_question(buf + b->len, q, false);
		dnsmsg_put16(buf + 4, 1);
	}
	b->question_end = b->len;
}

void
dnsmsg_builder_rr(struct dnsmsg_builder *b, enum dns_section section, const uint8_t *name,
		  size_t name_len, uint16_t type, uint16_t rclass, uint32_t ttl,
		  const uint8_t *rdata, size_t rdlen)
{
	size_t nlen = name ? name_len : 2;

	if (b->overflow)
		return;
	/* Out of order, no question to point at, or a count that would wrap: programmer errors
	 * that must still leave the buffer intact. */
	if (section < b->section || section > DNS_SECTION_ADDITIONAL || rdlen > UINT16_MAX ||
	    (name == NULL && b->question_end == DNS_HDR_LEN) || b->counts[section] == UINT16_MAX) {
		b->overflow = true;
		return;
	}
	if (!dnsmsg_builder_room(b, nlen + DNSMSG_RR_FIXED + rdlen))
		return;
	uint8_t *p = b->buf + b->len;
	if (name)
		memcpy(p, name, nlen);
	else
		dnsmsg_put16(p, 0xc000 | DNS_HDR_LEN);
	p += nlen;
	dnsmsg_put16(p, type);
	dnsmsg_put16(p + 2, rclass);
	dnsmsg_put32(p + 4, ttl);
	dnsmsg_put16(p + 8, (uint16_t)rdlen);
	if (rdlen)
		memcpy(p + DNSMSG_RR_FIXED, rdata, rdlen);
	b->len += nlen + DNSMSG_RR_FIXED + rdlen;
	b->counts[section]++;
	b->section = section;
}

int
dnsmsg_builder_finish(struct dnsmsg_builder *b)
{
	if (b->overflow)
		return -ENOSPC;
	dnsmsg_put16(b->buf + 6, b->counts[DNS_SECTION_ANSWER]);
	dnsmsg_put16(b->buf + 8, b->counts[DNS_SECTION_AUTHORITY]);
	dnsmsg_put16(b->buf + 10, b->counts[DNS_SECTION_ADDITIONAL]);
	return (int)b->len;
}
