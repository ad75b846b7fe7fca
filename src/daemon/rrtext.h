/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rrtext.h - DNS records of a wire message as presentation-format (zone-file) text, formatted by
 * ldns, for the lines an operator reads: --log-queries=extra and the SIGUSR1 cache dump. Never
 * on the answering path (it parses the whole message and allocates): only where logging is on.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Which sections rrtext_foreach() walks. */
#define RRTEXT_ANSWER 0x1u
#define RRTEXT_AUTHORITY 0x2u

/* One record as text: "NAME TTL CLASS TYPE RDATA", single spaces, no newline. Borrowed for
 * the call. */
typedef void rrtext_fn(void *ctx, const char *rr);

/*
 * Call fn for each record of `sections` (RRTEXT_*) of the message pkt[0..len), at most `max` of
 * them, each with its TTL lowered to `ttl_max` if above it (the seconds a cached answer has
 * left). Returns the number of records in those sections (shown or not), -EPROTO when ldns
 * cannot parse the message, -ENOMEM.
 */
int rrtext_foreach(const uint8_t *pkt, size_t len, unsigned sections, uint32_t ttl_max,
		   unsigned max, rrtext_fn *fn, void *ctx);
