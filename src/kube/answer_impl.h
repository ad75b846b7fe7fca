/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * answer_impl.h - what the kube resolver's answer files share and nothing outside them sees:
 * the answer context, the dispositions, and the functions one file offers the other. answer.c
 * parses a question, dispatches it (the apex, dns-version, pods, the reverse zones), writes the
 * address and SOA records and the negative answers; answer_svc.c answers the names under
 * `svc.<zone>` (services, headless endpoints, named ports as SRV with their Additional
 * records, ExternalName CNAMEs). The public interface is answer.h.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kubemasq/dnsmsg.h"
#include "kube/answer.h"

struct kube_ip;
struct kube_endpoint;
struct kube_service;

#define KUBE_ANSWER_MAX_REL 5 /* deepest cluster name: _port._proto.svc.ns.svc */
/* Most RRsets hold a few records: they are compared in a list, without touching the table. */
#define KUBE_ANSWER_SET_LIST 16
/* Open addressing over the records of one RRset: a 64 KiB message holds at most 4096 A/AAAA
 * records, so twice that keeps probes short. */
#define KUBE_ANSWER_SET_SLOTS 8192
/* A zone name with a prefix such as `hostmaster.` (bounded by the config, not by us). */
#define KUBE_ANSWER_NAME_BUF (DNS_MAX_NAME + 16)

/* What a name turned out to be, once its answer records (if any) are written. */
enum kube_answer_disp {
	KUBE_ANSWER_POSITIVE,
	KUBE_ANSWER_NODATA,
	KUBE_ANSWER_NXDOMAIN,
	KUBE_ANSWER_CNAME, /* a CNAME was written; target in kube_answer_ctx.next */
};

/* The Additional section an SRV answer asks for. */
enum kube_answer_extra {
	KUBE_ANSWER_EXTRA_NONE,
	KUBE_ANSWER_EXTRA_CLUSTER,
	KUBE_ANSWER_EXTRA_HEADLESS
};

/* The labels of a cluster name below the zone, counted from the zone: rel[0] is `svc`/`pod`. */
struct kube_answer_labels {
	unsigned n; /* may exceed KUBE_ANSWER_MAX_REL; then only n is meaningful */
	const char *p[KUBE_ANSWER_MAX_REL];
	size_t len[KUBE_ANSWER_MAX_REL];
};

/* Duplicate detection among the A/AAAA records of one RRset, by their offset in the reply: the
 * first KUBE_ANSWER_SET_LIST in `list`, then all of them in the table, whose 16 KiB of
 * generations are cleared only by the first RRset of an answer that outgrows the list. */
struct kube_answer_set {
	unsigned n;   /* records in `list`; KUBE_ANSWER_SET_LIST + 1: in the table */
	uint16_t gen; /* of the table's live slots; 0: not cleared in this answer */
	uint16_t list[KUBE_ANSWER_SET_LIST];
	uint16_t slot_gen[KUBE_ANSWER_SET_SLOTS];
	uint16_t slot_off[KUBE_ANSWER_SET_SLOTS];
};

/* One kube_answer() call: everything borrowed from its arguments, on its stack. */
struct kube_answer_ctx {
	const struct kube_store *s;
	const struct kube_answer_config *cfg;
	uint16_t qtype;
	unsigned zone_labels;
	uint16_t zone_off; /* the zone suffix of the question, for compression; 0: none */
	struct dnsmsg_builder b;
	const uint8_t *owner; /* the name being answered; NULL: the question */
	size_t owner_len;
	uint8_t names[2][DNS_MAX_NAME]; /* CNAME targets: the current owner and the next */
	const uint8_t *next;		/* KUBE_ANSWER_CNAME: the target */
	size_t next_len;
	enum kube_answer_extra extra;
	const struct kube_service *extra_svc;
	struct kube_answer_set set;
};

/* answer.c */

/* Is namespace ns[0..len) served (--kube-namespaces)? */
bool kube_answer_ns_exposed(const struct kube_answer_config *cfg, const char *ns, size_t len);
/* `[label.]<svc>.<ns>.svc.<zone>` into out (DNS_MAX_NAME bytes), compressed against the
 * question's zone when `compress`; returns its length, or 0 when no such name can exist. */
size_t kube_answer_service_name(const struct kube_answer_ctx *c, uint8_t *out, const char *label,
				const struct kube_service *svc, bool compress);
/* Start a new RRset for duplicate detection among address records. */
void kube_answer_set_reset(struct kube_answer_set *set);
/* Address records for the ips[0..n) the question asks for (all of them in Additional);
 * returns how many count as new records. */
unsigned kube_answer_addrs(struct kube_answer_ctx *c, enum dns_section section,
			   const uint8_t *owner, size_t owner_len, const struct kube_ip *ips,
			   size_t n);
/* A ready endpoint with an address. */
bool kube_answer_ep_ready(const struct kube_endpoint *ep);
/* POSITIVE when records were written, else NODATA. */
enum kube_answer_disp kube_answer_positive(unsigned records);

/* answer_svc.c */

/* Names under `svc.<zone>`: l->n is 2..5 and l->p[0] is `svc`. Writes the answer records. */
enum kube_answer_disp kube_answer_svc_tree(struct kube_answer_ctx *c,
					   const struct kube_answer_labels *l);
/* The Additional section an SRV answer asked for (c->extra), after a positive answer. */
void kube_answer_svc_extra(struct kube_answer_ctx *c);
