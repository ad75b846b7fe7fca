/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * answer.h - the kube resolver's answers: store + question -> a DNS reply per the tables of
 * KUBE_DNS.md (the Kubernetes DNS specification 1.1.0 and CoreDNS's behaviour where it is
 * silent). Pure: no I/O, no clock, no logging above debug.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kubemasq/dnsmsg.h"

struct kube_store;

enum kube_pods_mode { KUBE_PODS_INSECURE = 0, KUBE_PODS_VERIFIED, KUBE_PODS_DISABLED };

struct kube_answer_config {
	const uint8_t *zone; /* lower-case wire name of --kube-domain */
	size_t zone_len;
	uint32_t ttl; /* --kube-ttl */
	enum kube_pods_mode pods;
	bool ignore_empty_service;     /* --kube-ignore-empty-service */
	const char *const *namespaces; /* --kube-namespaces; n_namespaces == 0: all */
	size_t n_namespaces;
};

enum kube_answer_status {
	KUBE_ANSWER_DONE = 0, /* out holds the whole reply */
	KUBE_ANSWER_DECLINE,  /* not ours (a PTR we do not know): next upstream */
	KUBE_ANSWER_EXTERNAL, /* out holds NOERROR + the CNAME to an out-of-zone target;
					 * the caller resolves `target` (same qtype) and appends its
					 * answer records, or its rcode when it has none */
};

struct kube_answer_result {
	enum kube_answer_status status;
	size_t len;		      /* bytes of the reply in out */
	uint8_t target[DNS_MAX_NAME]; /* KUBE_ANSWER_EXTERNAL: lower-case wire name */
	size_t target_len;
};

/*
 * Answer question `q` (q->qname lower-cased wire; the reply's question is written as given and
 * records about the question name point at it) from the store. `serial` is the SOA serial.
 * Returns 0 with *res filled, -ENOSPC when cap is too small (the caller retries with 65535 or
 * sets TC), -EINVAL for a question outside the zone and the reverse zones.
 * Every negative answer (NXDOMAIN, NODATA) carries the zone's SOA in the authority section;
 * AA is set on every answer.
 */
int kube_answer(const struct kube_store *s, const struct kube_answer_config *cfg,
		const struct dnsmsg_question *q, uint16_t id, uint8_t *out, size_t cap,
		struct kube_answer_result *res);
