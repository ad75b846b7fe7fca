/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_kube.h - a kube store for the Kubernetes targets that remembers the names it reports
 * changed (the cache invalidations the daemon would make), and asks the kube answer code about
 * each afterwards: every record type the answer code knows, with room to spare and with
 * only 512 bytes, in the pod modes insecure and verified. Whatever the fuzzed objects put in the
 * store, each answer must be a walkable response.
 */
#pragma once

#include <stdint.h>
#include <string.h>

#include "kube/answer.h"
#include "kube/store.h"
#include "fuzz_util.h"

#define FUZZ_KUBE_NAMES 16

struct fuzz_kube {
	struct kube_store *store;
	uint8_t names[FUZZ_KUBE_NAMES][DNS_MAX_NAME];
	size_t lens[FUZZ_KUBE_NAMES];
	size_t n;
	uint64_t changes;
};

static inline void
fuzz_kube_changed(void *ctx, const uint8_t *name, size_t len)
{
	struct fuzz_kube *k = ctx;

	k->changes++;
	if (len == 0 || len > DNS_MAX_NAME || name[len - 1] != 0)
		fuzz_fail("the store reported a change of a name of %zu bytes", len);
	for (size_t i = 0; i < k->n; i++)
		if (k->lens[i] == len && memcmp(k->names[i], name, len) == 0)
			return;
	if (k->n < FUZZ_KUBE_NAMES) {
		memcpy(k->names[k->n], name, len);
		k->lens[k->n++] = len;
	}
}

static inline void
fuzz_kube_init(struct fuzz_kube *k)
{
	struct kube_store_config cfg = {.zone = "cluster.local", .changed = fuzz_kube_changed};

	memset(k, 0, sizeof(*k));
	cfg.ctx = k;
	if (!(k->store = kube_store_new(&cfg)))
		fuzz_fail("kube_store_new failed");
}

static inline void
fuzz_kube_ask(struct fuzz_kube *k, const uint8_t *name, size_t len)
{
	static const uint8_t zone[] = "\7cluster\5local";
	static const uint16_t types[] = {DNS_TYPE_A,   DNS_TYPE_AAAA, DNS_TYPE_SRV, DNS_TYPE_PTR,
					 DNS_TYPE_TXT, DNS_TYPE_ANY,  DNS_TYPE_SOA, DNS_TYPE_NS};
	static uint8_t out[65535];
	struct kube_answer_config acfg = {.zone = zone, .zone_len = sizeof(zone), .ttl = 5};
	struct kube_answer_result res;

	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		struct dnsmsg_question q = {.qname = name,
					    .qname_len = (uint16_t)len,
					    .qtype = types[t],
					    .qclass = DNS_CLASS_IN};

		for (unsigned mode = 0; mode < 2; mode++) {
			size_t cap = mode ? 512 : sizeof(out);

			acfg.pods = mode ? KUBE_PODS_VERIFIED : KUBE_PODS_INSECURE;
			if (kube_answer(k->store, &acfg, &q, 7, out, cap, &res) == 0 &&
			    res.status != KUBE_ANSWER_DECLINE) {
				if (res.len > cap)
					fuzz_fail("a kube answer of %zu bytes in %zu", res.len,
						  cap);
				fuzz_check_answer(out, res.len, "kube answer");
			}
		}
	}
}

/* Ask about every name the store reported, and about the name with its first label dropped
 * (a namespace, a service's parent, a reverse zone). */
static inline void
fuzz_kube_ask_changed(struct fuzz_kube *k)
{
	for (size_t i = 0; i < k->n; i++) {
		fuzz_kube_ask(k, k->names[i], k->lens[i]);
		if (k->lens[i] > 1u + k->names[i][0])
			fuzz_kube_ask(k, k->names[i] + 1 + k->names[i][0],
				      k->lens[i] - 1 - k->names[i][0]);
	}
}

static inline void
fuzz_kube_done(struct fuzz_kube *k)
{
	kube_store_free(k->store);
}
