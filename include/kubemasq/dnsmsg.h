/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dnsmsg.h - pure DNS wire helpers shared by the front end, the cache and the upstreams:
 * query validation, reply rewriting (ID, question spelling, EDNS, truncation), a bounded
 * RR iterator, TTL scanning for the cache, and a small answer builder.
 *
 * Nothing here allocates, does I/O, reads the clock or calls ldns: these run on the hot path.
 * Every function is bounded by the packet length; malformed input returns -EPROTO/-EBADMSG and
 * never reads past `len`. Offsets are size_t into the packet; names are uncompressed wire
 * format unless said otherwise.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_HDR_LEN 12
#define DNS_MAX_NAME 255 /* wire length, root label included */
#define DNS_MAX_UDP 65535

enum dns_rcode {
	DNS_RCODE_NOERROR = 0,
	DNS_RCODE_FORMERR = 1,
	DNS_RCODE_SERVFAIL = 2,
	DNS_RCODE_NXDOMAIN = 3,
	DNS_RCODE_NOTIMP = 4,
	DNS_RCODE_REFUSED = 5,
	DNS_RCODE_BADVERS = 16, /* extended: low 4 bits in the header, high 8 bits in OPT */
};

enum dns_type {
	DNS_TYPE_A = 1,
	DNS_TYPE_NS = 2,
	DNS_TYPE_CNAME = 5,
	DNS_TYPE_SOA = 6,
	DNS_TYPE_PTR = 12,
	DNS_TYPE_MX = 15,
	DNS_TYPE_TXT = 16,
	DNS_TYPE_AAAA = 28,
	DNS_TYPE_SRV = 33,
	DNS_TYPE_OPT = 41,
	DNS_TYPE_ANY = 255,
};

#define DNS_CLASS_IN 1
#define DNS_CLASS_CH 3

enum dns_section { DNS_SECTION_ANSWER = 0, DNS_SECTION_AUTHORITY = 1, DNS_SECTION_ADDITIONAL = 2 };

/* Header accessors; the caller guarantees len >= DNS_HDR_LEN. */
static inline uint16_t
dnsmsg_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline void
dnsmsg_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline uint32_t
dnsmsg_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void
dnsmsg_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

#define dnsmsg_id(p) dnsmsg_get16(p)
#define dnsmsg_qr(p) (((p)[2] & 0x80) != 0)
#define dnsmsg_opcode(p) (((p)[2] >> 3) & 0x0f)
#define dnsmsg_aa(p) (((p)[2] & 0x04) != 0)
#define dnsmsg_tc(p) (((p)[2] & 0x02) != 0)
#define dnsmsg_rd(p) (((p)[2] & 0x01) != 0)
#define dnsmsg_ra(p) (((p)[3] & 0x80) != 0)
#define dnsmsg_cd(p) (((p)[3] & 0x10) != 0)
#define dnsmsg_rcode(p) ((p)[3] & 0x0f)
#define dnsmsg_qdcount(p) dnsmsg_get16((p) + 4)
#define dnsmsg_ancount(p) dnsmsg_get16((p) + 6)
#define dnsmsg_nscount(p) dnsmsg_get16((p) + 8)
#define dnsmsg_arcount(p) dnsmsg_get16((p) + 10)

/* A question: the name points into some buffer (a packet, or a lower-cased copy). */
struct dnsmsg_question {
	const uint8_t *qname; /* uncompressed wire name; NULL when the query had none readable */
	uint16_t qname_len;   /* bytes including the root label, 1..255 */
	uint16_t qtype;
	uint16_t qclass;
};

/* A client's query, as dnsmsg_parse_query() found it. */
struct dnsmsg_query {
	uint16_t id;
	uint8_t opcode;
	bool rd, cd;
	struct dnsmsg_question q; /* q.qname points into the packet */
	size_t question_end;	  /* offset just past the question (== DNS_HDR_LEN if none) */
	bool edns;		  /* an OPT RR was present */
	uint8_t edns_version;
	bool do_bit;
	uint16_t udp_size; /* the client's limit: max(512, OPT size), 512 without EDNS */
};

/*
 * Validate a query from a client and describe it in *out.
 * Returns 0 for a well-formed QUERY (the caller still checks out->edns_version for BADVERS);
 * -EBADMSG when there is no readable header or QR is set (drop silently: never answer a
 * response); -EOPNOTSUPP for an opcode other than QUERY (answer NOTIMP); -EPROTO when the
 * header is readable but the rest is not (answer FORMERR): QDCOUNT != 1, a name that runs past
 * the end or uses compression, ANCOUNT/NSCOUNT != 0, more than one OPT, an OPT not at the root,
 * trailing garbage. On -EPROTO/-EOPNOTSUPP out->id, opcode, rd, cd are valid and out->q.qname
 * is NULL unless the question itself parsed.
 */
int dnsmsg_parse_query(const uint8_t *pkt, size_t len, struct dnsmsg_query *out);

/*
 * Write a reply with `rcode` to the query described by `q` (from dnsmsg_parse_query, possibly
 * partial): ID, opcode, RD and CD copied, QR=1, RA=1, the question if q->q.qname is set, and an
 * OPT with `edns_size` if the client sent one (carrying the high bits of an extended rcode such
 * as BADVERS). Returns the length, or -ENOSPC if `cap` is too small.
 */
int dnsmsg_reply_error(uint8_t *out, size_t cap, const struct dnsmsg_query *q, unsigned rcode,
		       uint16_t edns_size);

/*
 * Write a query for question `q` to an upstream: ID `id`, RD=1, CD as given, the name lower-cased,
 * and an OPT with `edns_size` and the DO bit when `edns_size` != 0. Returns the length or -ENOSPC.
 */
int dnsmsg_build_query(uint8_t *out, size_t cap, uint16_t id, const struct dnsmsg_question *q,
		       bool cd, bool do_bit, uint16_t edns_size);

/*
 * Is `pkt` a reply to our query `id` for question `q`? Checks QR=1, the ID, QDCOUNT=1 and the
 * question (name compared case-insensitively, type and class exactly). Returns 0 if so,
 * -EBADMSG if it is not a readable DNS response or its question name is compressed (a pointer:
 * whoever takes the reply rewrites the question in place, so the name must be right there),
 * -ESRCH for another ID, -EPROTO for another question.
 */
int dnsmsg_check_reply(const uint8_t *pkt, size_t len, uint16_t id,
		       const struct dnsmsg_question *q);

/*
 * Remove the OPT RR (if any) and any bytes after the last record from a reply in place, fixing
 * ARCOUNT. Returns the new length, or -EPROTO if the message cannot be walked (or a name
 * runs into the bytes after the last record), or if a name reads, through a compression
 * pointer, bytes that answering rewrites (header, TTLs). The cache and query.c keep replies
 * without OPT and add the client's own with dnsmsg_append_opt().
 */
int dnsmsg_strip_opt(uint8_t *pkt, size_t len);

/* Append an OPT RR (root name, `udp_size`, DO bit, extended rcode high bits `ext_rcode`, no
 * options) and bump ARCOUNT. Returns the new length or -ENOSPC. */
int dnsmsg_append_opt(uint8_t *pkt, size_t len, size_t cap, uint16_t udp_size, bool do_bit,
		      uint8_t ext_rcode);

/* Cut a reply down to header + question, set TC=1 and zero AN/NS/AR counts. `question_end` is
 * the offset just past the question. Returns the new length. */
size_t dnsmsg_truncate(uint8_t *pkt, size_t question_end);

/* Offset just past the (single) question of a message, or -EPROTO. */
int dnsmsg_question_end(const uint8_t *pkt, size_t len);

/* Copy `len` bytes of wire name `src` to `dst` with ASCII letters lower-cased. */
void dnsmsg_name_lower(uint8_t *dst, const uint8_t *src, size_t len);

/* Case-insensitive equality of two uncompressed wire names. */
bool dnsmsg_name_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

/* Is wire name `name` equal to or below `zone` (both uncompressed, any case)? */
bool dnsmsg_name_in_zone(const uint8_t *name, size_t name_len, const uint8_t *zone,
			 size_t zone_len);

/* Number of labels in an uncompressed wire name, root not counted ("." -> 0). */
unsigned dnsmsg_name_labels(const uint8_t *name, size_t len);

/*
 * Text <-> wire names. dnsmsg_name_from_text() accepts "example.com", "example.com." and "."
 * (or ""), escapes "\." and "\DDD"; returns the wire length or -EINVAL (empty label, label over
 * 63, name over 255). dnsmsg_name_to_text() writes the presentation form without the trailing
 * dot ("." for the root), escaping dots, backslashes and non-printables as dnsmasq/dig do;
 * `off` may point at a compressed name inside `pkt` (pointers followed, loops refused).
 * Returns the text length or -EPROTO/-ENOSPC.
 */
int dnsmsg_name_from_text(const char *text, uint8_t *out, size_t cap);
int dnsmsg_name_to_text(const uint8_t *pkt, size_t len, size_t off, char *out, size_t cap);

/* "A", "AAAA", "MX", ..., or "TYPE123" written into buf (at least 12 bytes). */
const char *dnsmsg_type_name(uint16_t type, char *buf, size_t cap);

struct dnsmsg_rr;

/* The data of record `rr` of `pkt` as the short text of dnsmasq's log lines: an A or AAAA
 * address, the target name of a PTR (with `targets`, of a CNAME or NS too), else "<TYPE>".
 * Returns out. */
const char *dnsmsg_rdata_text(const uint8_t *pkt, size_t len, const struct dnsmsg_rr *rr,
			      bool targets, char *out, size_t cap);

/* One resource record, as the iterator found it; all offsets into the packet. */
struct dnsmsg_rr {
	enum dns_section section;
	size_t name_off; /* owner name (possibly compressed) */
	uint16_t type;
	uint16_t rclass;
	uint32_t ttl;
	size_t ttl_off; /* offset of the 32-bit TTL field */
	size_t rdata_off;
	uint16_t rdlen;
};

struct dnsmsg_iter {
	const uint8_t *pkt;
	size_t len;
	size_t pos;
	unsigned left[3]; /* records left in each section */
	enum dns_section section;
};

/* Start iterating over the answer, authority and additional records (the question skipped).
 * Returns 0 or -EPROTO. */
int dnsmsg_iter_init(struct dnsmsg_iter *it, const uint8_t *pkt, size_t len);

/* The next record: 0 with *rr filled, -ENOENT after the last one, -EPROTO if malformed. */
int dnsmsg_iter_next(struct dnsmsg_iter *it, struct dnsmsg_rr *rr);

/*
 * What the cache needs of a reply (OPT already stripped or skipped): the offsets of every TTL
 * field (OPT excluded) into offs[0..*n_offs), the smallest TTL of the answer section (or of
 * all records when the answer section is empty), and for negative answers the SOA from the
 * authority section: has_soa and neg_ttl = min(SOA TTL, SOA MINIMUM) per RFC 2308.
 * Returns 0; -EPROTO for a malformed message; -E2BIG if there are more than max_offs records.
 */
struct dnsmsg_ttl_info {
	uint32_t min_ttl; /* UINT32_MAX when there are no records */
	bool has_soa;
	uint32_t neg_ttl;
	unsigned n_offs;
};
int dnsmsg_scan_ttls(const uint8_t *pkt, size_t len, uint16_t *offs, unsigned max_offs,
		     struct dnsmsg_ttl_info *info);

/*
 * A small answer builder for replies made locally (--address, local-only zones, CHAOS, the kube
 * resolver). It never writes past `cap`; once something does not fit, `overflow` is set, later
 * calls do nothing and dnsmsg_builder_finish() returns -ENOSPC.
 */
struct dnsmsg_builder {
	uint8_t *buf;
	size_t cap;
	size_t len;
	size_t question_end;
	uint16_t counts[3];
	enum dns_section section; /* sections must be added in order */
	bool overflow;
};

/* Header (ID, RD, CD from q; QR=1, AA=aa, RA=1, rcode) and the question, spelled as in q.
 * The question's name is at offset 12, so records may name it with a pointer (0xc00c). */
void dnsmsg_builder_init(struct dnsmsg_builder *b, uint8_t *buf, size_t cap, uint16_t id,
			 const struct dnsmsg_question *q, bool rd, bool cd, bool aa,
			 unsigned rcode);

/* Append a record. `name` is wire format (may end with a compression pointer); pass NULL to
 * use a pointer to the question name. Records must come in section order. */
void dnsmsg_builder_rr(struct dnsmsg_builder *b, enum dns_section section, const uint8_t *name,
		       size_t name_len, uint16_t type, uint16_t rclass, uint32_t ttl,
		       const uint8_t *rdata, size_t rdlen);

/* Write the counts; returns the length or -ENOSPC. */
int dnsmsg_builder_finish(struct dnsmsg_builder *b);
