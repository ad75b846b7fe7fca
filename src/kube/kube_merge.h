/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kube_merge.h - an ExternalName answer in two stages: the CNAME the kube resolver made plus
 * the target's answer from the forwarders, merged into one reply (pure; see kube_merge.c).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct upstream_req;

/*
 * The CNAME reply of stage 1 (cname, clen) + the target's answer records (or its SOA for a
 * negative answer) into a new reply for req's question: rcode the target's for NOERROR and
 * NXDOMAIN, SERVFAIL otherwise (status < 0, or another rcode; tr may then be NULL). A target
 * reply that does not walk gives the CNAME alone with SERVFAIL. Returns 0 with *out malloc'd
 * (the caller frees) and *outlen, -ENOMEM, or -EPROTO when the CNAME reply does not walk.
 */
int kube_merge(const struct upstream_req *req, const uint8_t *cname, size_t clen, int status,
	       const uint8_t *tr, size_t tlen, uint8_t **out, size_t *outlen);
