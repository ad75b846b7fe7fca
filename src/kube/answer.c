/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * answer.c - the kube resolver's answers: a question about the cluster zone or a reverse zone,
 * looked up in the store and written as a whole DNS reply per the two tables of KUBE_DNS.md
 * (PTR, ExternalName CNAMEs chased inside the zone, pods in three modes, dns-version, the apex
 * SOA and NS, and NXDOMAIN vs NODATA with the zone's SOA in Authority), with the address and
 * SOA records the answers share. The names under `svc.<zone>` (services, headless endpoints,
 * SRV with Additional records) are answer_svc.c's. Where the spec is silent it does what
 * CoreDNS's kubernetes plugin does. Pure: no I/O, no clock, no allocation, no logging.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "kubemasq/defs.h"
#include "kubemasq/dnsmsg.h"
#include "kube/answer.h"
#include "kube/answer_impl.h"
#include "kube/store.h"

#define KUBE_ANSWER_MAX_CHAIN 8 /* ExternalName CNAMEs followed inside the zone */
#define KUBE_ANSWER_VERSION_TTL 28800
#define KUBE_ANSWER_MAX_PTR 128 /* services one address can name in a reply */
#define KUBE_ANSWER_SOA_REFRESH 7200
#define KUBE_ANSWER_SOA_RETRY 1800
#define KUBE_ANSWER_SOA_EXPIRE 86400

/* Split literals: a hex escape would swallow the letters a-f that follow it. */
/* clang-format off */
static const uint8_t kube_answer_in_addr[] = "\x07" "in-addr" "\x04" "arpa";
static const uint8_t kube_answer_ip6[] = "\x03" "ip6" "\x04" "arpa";
/* clang-format on */

/* ---- small helpers ------------------------------------------------------------------------ */

static bool
kube_answer_label_is(const struct kube_answer_labels *l, unsigned i, const char *s)
{
	return l->len[i] == strlen(s) && strncasecmp(l->p[i], s, l->len[i]) == 0;
}

bool
kube_answer_ns_exposed(const struct kube_answer_config *cfg, const char *ns, size_t len)
{
	if (cfg->n_namespaces == 0)
		return true;
	for (size_t i = 0; i < cfg->n_namespaces; i++) {
		if (strlen(cfg->namespaces[i]) == len &&
		    strncasecmp(cfg->namespaces[i], ns, len) == 0)
			return true;
	}
	return false;
}

/* Does `qtype` ask for addresses of this family? */
static bool
kube_answer_wants(uint16_t qtype, int family)
{
	if (qtype == DNS_TYPE_ANY)
		return true;
	return (qtype == DNS_TYPE_A && family == AF_INET) ||
	       (qtype == DNS_TYPE_AAAA && family == AF_INET6);
}

/* Split `name` (valid uncompressed wire, in the zone) into its labels below the zone. */
static void
kube_answer_split(const struct kube_answer_ctx *c, const uint8_t *name, size_t len,
		  struct kube_answer_labels *l)
{
	unsigned total = dnsmsg_name_labels(name, len);
	size_t pos = 0;

	l->n = total - c->zone_labels;
	if (l->n > KUBE_ANSWER_MAX_REL)
		return;
	for (unsigned i = 0; i < l->n; i++) {
		unsigned r = l->n - 1 - i;

		l->p[r] = (const char *)name + pos + 1;
		l->len[r] = name[pos];
		pos += (size_t)name[pos] + 1;
	}
}

static size_t
kube_answer_put_label(uint8_t *out, size_t pos, const char *s, size_t n)
{
	out[pos] = (uint8_t)n;
	memcpy(out + pos + 1, s, n);
	return pos + 1 + n;
}

/*
 * Write `[label.]<svc>.<ns>.svc.<zone>` to out (DNS_MAX_NAME bytes), ending with a pointer to
 * the question's zone suffix when `compress` and the question has one. Returns the length, or
 * 0 when the name cannot exist (an empty or long label, over 255 bytes).
 */
size_t
kube_answer_service_name(const struct kube_answer_ctx *c, uint8_t *out, const char *label,
			 const struct kube_service *svc, bool compress)
{
	const char *parts[4] = {label, kube_service_name(svc), kube_service_namespace(svc), "svc"};
	size_t pos = 0, full = c->cfg->zone_len;

	for (unsigned i = label ? 0 : 1; i < ARRAY_SIZE(parts); i++) {
		size_t n = parts[i] ? strlen(parts[i]) : 0;

		full += n + 1;
		if (n == 0 || n > 63 || full > DNS_MAX_NAME)
			return 0;
		pos = kube_answer_put_label(out, pos, parts[i], n);
	}
	if (compress && c->zone_off) {
		dnsmsg_put16(out + pos, (uint16_t)(0xc000 | c->zone_off));
		return pos + 2;
	}
	memcpy(out + pos, c->cfg->zone, c->cfg->zone_len);
	return pos + c->cfg->zone_len;
}

/* `<zone>` itself, as a pointer into the question when possible. */
static size_t
kube_answer_zone_name(const struct kube_answer_ctx *c, uint8_t *out, const char *prefix)
{
	size_t pos = 0;

	for (const char *p = prefix; p && *p;) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);

		pos = kube_answer_put_label(out, pos, p, n);
		p += n + (dot != NULL);
	}
	if (c->zone_off) {
		dnsmsg_put16(out + pos, (uint16_t)(0xc000 | c->zone_off));
		return pos + 2;
	}
	memcpy(out + pos, c->cfg->zone, c->cfg->zone_len);
	return pos + c->cfg->zone_len;
}

/* ---- records ------------------------------------------------------------------------------ */

/* Start a new RRset: the list is emptied; the table gets a new generation if it is needed. */
void
kube_answer_set_reset(struct kube_answer_set *set)
{
	set->n = 0;
}

/* Is the rdata of the record at reply offset `off` rdata[0..rdlen)? */
static bool
kube_answer_set_same(const struct kube_answer_ctx *c, uint16_t off, const uint8_t *rdata,
		     size_t rdlen)
{
	const uint8_t *seen = c->b.buf + off;

	return dnsmsg_get16(seen - 2) == rdlen && memcmp(seen, rdata, rdlen) == 0;
}

/* The table's half of kube_answer_set_seen(). */
static bool
kube_answer_set_hashed(struct kube_answer_ctx *c, const uint8_t *rdata, size_t rdlen, size_t off)
{
	struct kube_answer_set *set = &c->set;
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < rdlen; i++)
		h = (h ^ rdata[i]) * 16777619u;
	for (unsigned probe = 0; probe < KUBE_ANSWER_SET_SLOTS; probe++) {
		unsigned i = (h + probe) & (KUBE_ANSWER_SET_SLOTS - 1);

		if (set->slot_gen[i] != set->gen) {
			set->slot_gen[i] = set->gen;
			set->slot_off[i] = (uint16_t)off;
			return false;
		}
		if (kube_answer_set_same(c, set->slot_off[i], rdata, rdlen))
			return true;
	}
	return false; /* a full table cannot happen: a reply holds fewer records */
}

/* The RRset outgrew the list: move it into a fresh generation of the table. The records the
 * list names were all written (a record that does not fit stops every later one). */
static void
kube_answer_set_spill(struct kube_answer_ctx *c)
{
	struct kube_answer_set *set = &c->set;

	if (set->gen == 0 || set->gen == UINT16_MAX) {
		memset(set->slot_gen, 0, sizeof(set->slot_gen));
		set->gen = 1;
	} else {
		set->gen++;
	}
	for (unsigned i = 0; i < KUBE_ANSWER_SET_LIST; i++) {
		const uint8_t *rdata = c->b.buf + set->list[i];

		kube_answer_set_hashed(c, rdata, dnsmsg_get16(rdata - 2), set->list[i]);
	}
	set->n = KUBE_ANSWER_SET_LIST + 1;
}

/* Has this RRset (since the last reset) already got an address record with this rdata? If not,
 * remember the one about to be written at reply offset `off`. */
static bool
kube_answer_set_seen(struct kube_answer_ctx *c, const uint8_t *rdata, size_t rdlen, size_t off)
{
	struct kube_answer_set *set = &c->set;

	if (set->n <= KUBE_ANSWER_SET_LIST) {
		for (unsigned i = 0; i < set->n; i++)
			if (kube_answer_set_same(c, set->list[i], rdata, rdlen))
				return true;
		if (set->n < KUBE_ANSWER_SET_LIST) {
			set->list[set->n++] = (uint16_t)off;
			return false;
		}
		kube_answer_set_spill(c);
	}
	return kube_answer_set_hashed(c, rdata, rdlen, off);
}

/* One A/AAAA record for `ip` in `section`; returns 1 if it counts as a new record. */
static unsigned
kube_answer_addr(struct kube_answer_ctx *c, enum dns_section section, const uint8_t *owner,
		 size_t owner_len, const struct kube_ip *ip)
{
	size_t rdlen = ip->family == AF_INET ? 4 : 16;
	uint16_t type = ip->family == AF_INET ? DNS_TYPE_A : DNS_TYPE_AAAA;
	size_t nlen = owner ? owner_len : 2;

	if (ip->family != AF_INET && ip->family != AF_INET6)
		return 0;
	if (c->b.overflow)
		return 1;
	/* Where the rdata will land if the record fits. */
	if (kube_answer_set_seen(c, ip->addr, rdlen, c->b.len + nlen + 10))
		return 0;
	dnsmsg_builder_rr(&c->b, section, owner, owner_len, type, DNS_CLASS_IN, c->cfg->ttl,
			  ip->addr, rdlen);
	return 1;
}

/* The addresses of `ips` that the question's type asks for (all of them in Additional). */
unsigned
kube_answer_addrs(struct kube_answer_ctx *c, enum dns_section section, const uint8_t *owner,
		  size_t owner_len, const struct kube_ip *ips, size_t n)
{
	unsigned count = 0;

	for (size_t i = 0; i < n && !c->b.overflow; i++) {
		if (section == DNS_SECTION_ADDITIONAL || kube_answer_wants(c->qtype, ips[i].family))
			count += kube_answer_addr(c, section, owner, owner_len, &ips[i]);
	}
	return count;
}

bool
kube_answer_ep_ready(const struct kube_endpoint *ep)
{
	return ep->ready && ep->n_ips > 0;
}

/* The SOA of the zone, in the answer (apex query) or the authority section (negative). */
static void
kube_answer_soa(struct kube_answer_ctx *c, enum dns_section section, const uint8_t *owner,
		size_t owner_len)
{
	uint8_t rdata[2 * KUBE_ANSWER_NAME_BUF + 20];
	size_t pos = kube_answer_zone_name(c, rdata, "ns.dns");
	const uint32_t nums[5] = {kube_store_serial(c->s), KUBE_ANSWER_SOA_REFRESH,
				  KUBE_ANSWER_SOA_RETRY, KUBE_ANSWER_SOA_EXPIRE, c->cfg->ttl};

	pos += kube_answer_zone_name(c, rdata + pos, "hostmaster");
	for (unsigned i = 0; i < ARRAY_SIZE(nums); i++, pos += 4)
		dnsmsg_put32(rdata + pos, nums[i]);
	dnsmsg_builder_rr(&c->b, section, owner, owner_len, DNS_TYPE_SOA, DNS_CLASS_IN, c->cfg->ttl,
			  rdata, pos);
}

static void
kube_answer_soa_authority(struct kube_answer_ctx *c)
{
	uint8_t zone[KUBE_ANSWER_NAME_BUF];
	size_t len = kube_answer_zone_name(c, zone, NULL);

	kube_answer_soa(c, DNS_SECTION_AUTHORITY, zone, len);
}

enum kube_answer_disp
kube_answer_positive(unsigned records)
{
	return records ? KUBE_ANSWER_POSITIVE : KUBE_ANSWER_NODATA;
}

/* ---- pods --------------------------------------------------------------------------------- */

/* `a-b-c-d` or an IPv6 address with `-` for `:` (CoreDNS's rule: three dashes and no `--` is
 * IPv4). Returns 0 or -EINVAL. */
static int
kube_answer_pod_ip(const char *label, size_t len, struct kube_ip *ip)
{
	char text[64];
	unsigned dashes = 0;
	bool v4;

	if (len == 0 || len >= sizeof(text))
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		char ch = label[i];

		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
		      (ch >= 'A' && ch <= 'F') || ch == '-'))
			return -EINVAL;
		dashes += ch == '-';
	}
	memcpy(text, label, len);
	text[len] = '\0';
	v4 = dashes == 3 && !memmem(label, len, "--", 2);
	for (size_t i = 0; i < len; i++) {
		if (text[i] == '-')
			text[i] = v4 ? '.' : ':';
	}
	memset(ip, 0, sizeof(*ip));
	ip->family = v4 ? AF_INET : AF_INET6;
	return inet_pton(ip->family, text, ip->addr) == 1 ? 0 : -EINVAL;
}

/* Names under `pod.<zone>`: l->n is 2..5 and rel[0] is `pod`. */
static enum kube_answer_disp
kube_answer_pod_tree(struct kube_answer_ctx *c, const struct kube_answer_labels *l)
{
	struct kube_ip ip;

	if (c->cfg->pods == KUBE_PODS_DISABLED ||
	    !kube_answer_ns_exposed(c->cfg, l->p[1], l->len[1]))
		return KUBE_ANSWER_NXDOMAIN;
	/* `<ns>.pod.<zone>`: an empty non-terminal; with verified pods, as for services, only for
	 * a namespace that exists (CoreDNS: NXDOMAIN otherwise). */
	if (l->n == 2) {
		if (c->cfg->pods == KUBE_PODS_VERIFIED &&
		    !kube_store_has_namespace(c->s, l->p[1], l->len[1]))
			return KUBE_ANSWER_NXDOMAIN;
		return KUBE_ANSWER_NODATA;
	}
	if (l->n > 3 || kube_answer_pod_ip(l->p[2], l->len[2], &ip) < 0)
		return KUBE_ANSWER_NXDOMAIN;
	if (c->cfg->pods == KUBE_PODS_VERIFIED && !kube_store_pod_ip(c->s, l->p[1], l->len[1], &ip))
		return KUBE_ANSWER_NXDOMAIN;
	if (!kube_answer_wants(c->qtype, ip.family))
		return KUBE_ANSWER_NODATA;
	kube_answer_set_reset(&c->set);
	return kube_answer_positive(
		kube_answer_addr(c, DNS_SECTION_ANSWER, c->owner, c->owner_len, &ip));
}

/* ---- the zone ----------------------------------------------------------------------------- */

static enum kube_answer_disp
kube_answer_apex(struct kube_answer_ctx *c)
{
	uint8_t ns[KUBE_ANSWER_NAME_BUF];
	unsigned n = 0;

	if (c->qtype == DNS_TYPE_SOA || c->qtype == DNS_TYPE_ANY) {
		kube_answer_soa(c, DNS_SECTION_ANSWER, c->owner, c->owner_len);
		n++;
	}
	if (c->qtype == DNS_TYPE_NS || c->qtype == DNS_TYPE_ANY) {
		size_t len = kube_answer_zone_name(c, ns, "ns.dns");

		dnsmsg_builder_rr(&c->b, DNS_SECTION_ANSWER, c->owner, c->owner_len, DNS_TYPE_NS,
				  DNS_CLASS_IN, c->cfg->ttl, ns, len);
		n++;
	}
	return kube_answer_positive(n);
}

/* One label below the zone: dns-version, or the empty non-terminals svc and pod. */
static enum kube_answer_disp
kube_answer_top(struct kube_answer_ctx *c, const struct kube_answer_labels *l)
{
	static const uint8_t version[] = {5, '1', '.', '1', '.', '0'};

	if (kube_answer_label_is(l, 0, "svc") || kube_answer_label_is(l, 0, "pod"))
		return KUBE_ANSWER_NODATA;
	if (!kube_answer_label_is(l, 0, "dns-version"))
		return KUBE_ANSWER_NXDOMAIN;
	if (c->qtype != DNS_TYPE_TXT && c->qtype != DNS_TYPE_ANY)
		return KUBE_ANSWER_NODATA;
	dnsmsg_builder_rr(&c->b, DNS_SECTION_ANSWER, c->owner, c->owner_len, DNS_TYPE_TXT,
			  DNS_CLASS_IN, KUBE_ANSWER_VERSION_TTL, version, sizeof(version));
	return KUBE_ANSWER_POSITIVE;
}

/* Answer the in-zone name c->owner (NULL: the question, `name`): its answer records. */
static enum kube_answer_disp
kube_answer_node(struct kube_answer_ctx *c, const uint8_t *name, size_t len)
{
	struct kube_answer_labels l;

	kube_answer_split(c, name, len, &l);
	if (l.n == 0)
		return kube_answer_apex(c);
	if (l.n > KUBE_ANSWER_MAX_REL)
		return KUBE_ANSWER_NXDOMAIN;
	if (l.n == 1)
		return kube_answer_top(c, &l);
	if (kube_answer_label_is(&l, 0, "svc"))
		return kube_answer_svc_tree(c, &l);
	if (kube_answer_label_is(&l, 0, "pod"))
		return kube_answer_pod_tree(c, &l);
	return KUBE_ANSWER_NXDOMAIN;
}

/* The question in the cluster zone, following ExternalName CNAMEs that stay in the zone. */
static int
kube_answer_zone(struct kube_answer_ctx *c, const struct dnsmsg_question *q,
		 struct kube_answer_result *res)
{
	const uint8_t *name = q->qname;
	size_t len = q->qname_len;
	enum kube_answer_disp d;
	unsigned rcode = DNS_RCODE_NOERROR;

	for (unsigned depth = 0;; depth++) {
		d = kube_answer_node(c, name, len);
		if (d != KUBE_ANSWER_CNAME || c->qtype == DNS_TYPE_CNAME)
			break;
		if (!dnsmsg_name_in_zone(c->next, c->next_len, c->cfg->zone, c->cfg->zone_len)) {
			res->status = KUBE_ANSWER_EXTERNAL;
			memcpy(res->target, c->next, c->next_len);
			res->target_len = c->next_len;
			break;
		}
		/* A chain longer than that is a loop: what was written stands. */
		if (depth + 1 >= KUBE_ANSWER_MAX_CHAIN)
			break;
		name = c->owner = c->next;
		len = c->owner_len = c->next_len;
	}
	if (d == KUBE_ANSWER_NXDOMAIN || d == KUBE_ANSWER_NODATA) {
		rcode = d == KUBE_ANSWER_NXDOMAIN ? DNS_RCODE_NXDOMAIN : DNS_RCODE_NOERROR;
		kube_answer_soa_authority(c);
	} else if (d == KUBE_ANSWER_POSITIVE) {
		kube_answer_svc_extra(c);
	}
	int r = dnsmsg_builder_finish(&c->b);
	if (r < 0)
		return r;
	c->b.buf[3] = (uint8_t)((c->b.buf[3] & 0xf0) | rcode);
	res->len = (size_t)r;
	return 0;
}

/* ---- reverse zones ------------------------------------------------------------------------ */

/* `d.c.b.a.in-addr.arpa` (exactly four decimal octets) -> ip. Returns 0 or -ENOENT. */
static int
kube_answer_parse_v4(const uint8_t *name, size_t len, struct kube_ip *ip)
{
	size_t pos = 0;

	if (dnsmsg_name_labels(name, len) != 6)
		return -ENOENT;
	memset(ip, 0, sizeof(*ip));
	ip->family = AF_INET;
	for (int i = 3; i >= 0; i--) {
		size_t n = name[pos];
		unsigned v = 0;

		if (n < 1 || n > 3 || (n > 1 && name[pos + 1] == '0'))
			return -ENOENT;
		for (size_t k = 1; k <= n; k++) {
			if (name[pos + k] < '0' || name[pos + k] > '9')
				return -ENOENT;
			v = v * 10 + (unsigned)(name[pos + k] - '0');
		}
		if (v > 255)
			return -ENOENT;
		ip->addr[i] = (uint8_t)v;
		pos += n + 1;
	}
	return 0;
}

static int
kube_answer_hex(uint8_t ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* 32 nibbles, least significant first, then ip6.arpa. Returns 0 or -ENOENT. */
static int
kube_answer_parse_v6(const uint8_t *name, size_t len, struct kube_ip *ip)
{
	if (dnsmsg_name_labels(name, len) != 34)
		return -ENOENT;
	memset(ip, 0, sizeof(*ip));
	ip->family = AF_INET6;
	for (unsigned i = 0; i < 32; i++) {
		int v = name[2 * i] == 1 ? kube_answer_hex(name[2 * i + 1]) : -1;
		unsigned nib = 31 - i;

		if (v < 0)
			return -ENOENT;
		ip->addr[nib / 2] |= (uint8_t)(nib % 2 ? v : v << 4);
	}
	return 0;
}

/* Is ptr (an endpoint's label, or a ClusterIP) an answer for `ip`? Only ready endpoints are
 * named, as CoreDNS does. */
static bool
kube_answer_ptr_ok(const struct kube_answer_ctx *c, const struct kube_ptr *ptr,
		   const struct kube_ip *ip)
{
	const char *ns = kube_service_namespace(ptr->svc);
	const struct kube_endpoint *eps;
	size_t n, rdlen = ip->family == AF_INET ? 4 : 16;

	if (!kube_answer_ns_exposed(c->cfg, ns, strlen(ns)))
		return false;
	if (!ptr->label)
		return true;
	n = kube_service_endpoints_by_label(ptr->svc, ptr->label, strlen(ptr->label), &eps);
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; kube_answer_ep_ready(&eps[i]) && k < eps[i].n_ips; k++) {
			if (eps[i].ips[k].family == ip->family &&
			    memcmp(eps[i].ips[k].addr, ip->addr, rdlen) == 0)
				return true;
		}
	}
	return false;
}

/* Keep the PTR entries worth answering, without duplicates; returns how many are left. */
static size_t
kube_answer_ptr_filter(const struct kube_answer_ctx *c, const struct kube_ip *ip,
		       struct kube_ptr *ptrs, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		size_t j;

		if (!kube_answer_ptr_ok(c, &ptrs[i], ip))
			continue;
		for (j = 0; j < k; j++) {
			if (ptrs[j].svc == ptrs[i].svc && (ptrs[j].label == ptrs[i].label ||
							   (ptrs[j].label && ptrs[i].label &&
							    !strcmp(ptrs[j].label, ptrs[i].label))))
				break;
		}
		if (j == k)
			ptrs[k++] = ptrs[i];
	}
	return k;
}

static int
kube_answer_reverse(struct kube_answer_ctx *c, const struct dnsmsg_question *q, bool v6,
		    struct kube_answer_result *res)
{
	struct kube_ptr ptrs[KUBE_ANSWER_MAX_PTR];
	uint8_t target[DNS_MAX_NAME];
	struct kube_ip ip;
	size_t n, len;
	int r;

	r = v6 ? kube_answer_parse_v6(q->qname, q->qname_len, &ip)
	       : kube_answer_parse_v4(q->qname, q->qname_len, &ip);
	/* Partial names, other types and unknown addresses fall through to the forwarders. */
	if (r < 0 || q->qtype != DNS_TYPE_PTR)
		return 0;
	n = kube_store_ptr(c->s, &ip, ptrs, ARRAY_SIZE(ptrs));
	n = kube_answer_ptr_filter(c, &ip, ptrs, MIN(n, ARRAY_SIZE(ptrs)));
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		len = kube_answer_service_name(c, target, ptrs[i].label, ptrs[i].svc, false);
		if (len)
			dnsmsg_builder_rr(&c->b, DNS_SECTION_ANSWER, NULL, 0, DNS_TYPE_PTR,
					  DNS_CLASS_IN, c->cfg->ttl, target, len);
	}
	if (c->b.counts[DNS_SECTION_ANSWER] == 0 && !c->b.overflow)
		return 0;
	r = dnsmsg_builder_finish(&c->b);
	if (r < 0)
		return r;
	res->status = KUBE_ANSWER_DONE;
	res->len = (size_t)r;
	return 0;
}

/* ---- entry -------------------------------------------------------------------------------- */

int
kube_answer(const struct kube_store *s, const struct kube_answer_config *cfg,
	    const struct dnsmsg_question *q, uint16_t id, uint8_t *out, size_t cap,
	    struct kube_answer_result *res)
{
	struct kube_answer_ctx *c, ctx;
	bool in_zone, v4, v6;

	memset(res, 0, sizeof(*res));
	if (!q || !q->qname || q->qname_len == 0 || !cfg->zone || cfg->zone_len == 0)
		return -EINVAL;
	in_zone = dnsmsg_name_in_zone(q->qname, q->qname_len, cfg->zone, cfg->zone_len);
	v4 = dnsmsg_name_in_zone(q->qname, q->qname_len, kube_answer_in_addr,
				 sizeof(kube_answer_in_addr));
	v6 = dnsmsg_name_in_zone(q->qname, q->qname_len, kube_answer_ip6, sizeof(kube_answer_ip6));
	if (!in_zone && !v4 && !v6)
		return -EINVAL;

	c = &ctx;
	c->s = s;
	c->cfg = cfg;
	c->qtype = q->qtype;
	c->zone_labels = dnsmsg_name_labels(cfg->zone, cfg->zone_len);
	c->zone_off = in_zone && cfg->zone_len > 1
			      ? (uint16_t)(DNS_HDR_LEN + q->qname_len - cfg->zone_len)
			      : 0;
	c->owner = NULL;
	c->owner_len = 0;
	c->next = NULL;
	c->next_len = 0;
	c->extra = KUBE_ANSWER_EXTRA_NONE;
	c->extra_svc = NULL;
	c->set.n = 0;
	c->set.gen = 0;
	dnsmsg_builder_init(&c->b, out, cap, id, q, true, false, true, DNS_RCODE_NOERROR);
	if (!in_zone) {
		res->status = KUBE_ANSWER_DECLINE;
		return kube_answer_reverse(c, q, v6, res);
	}
	res->status = KUBE_ANSWER_DONE;
	return kube_answer_zone(c, q, res);
}
