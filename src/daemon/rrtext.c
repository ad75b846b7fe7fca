/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rrtext.c - records as zone-file text through ldns (ldns_wire2pkt, ldns_rr2str): every type
 * ldns knows gets its presentation form (SRV, TXT, HTTPS, ...), the rest RFC 3597's \# form, so
 * the logs show what a client was answered without a formatter of our own per type. ldns writes
 * tabs between the fields; they become single spaces because syslog escapes tabs (#011).
 * One ldns_buffer serves every record of a call: ldns_rr2str() starts a 64 KiB buffer per
 * record, which main.c's mmap threshold turns into an mmap and munmap each, and a large cache
 * dump held the event loop on them (measured: tests/bench/README.md, "Records as text").
 */
#include <errno.h>
#include <string.h>

#include <ldns/ldns.h>

#include "daemon/rrtext.h"

/* Most records fit in this; below main.c's mmap threshold. */
#define RRTEXT_BUF 512

/* ldns's text with its tabs as spaces and without its newline, in place. */
static void
rrtext_tidy(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	for (char *p = s; *p; p++)
		if (*p == '\t' || *p == '\n')
			*p = ' ';
}

/* The records of one section, written through `buf`; returns how many it holds or -ENOMEM. */
static int
rrtext_list(ldns_buffer *buf, ldns_rr_list *list, uint32_t ttl_max, unsigned *left, rrtext_fn *fn,
	    void *ctx)
{
	size_t n = ldns_rr_list_rr_count(list);

	for (size_t i = 0; i < n && *left; i++, (*left)--) {
		ldns_rr *rr = ldns_rr_list_rr(list, i);

		if (ldns_rr_ttl(rr) > ttl_max)
			ldns_rr_set_ttl(rr, ttl_max);
		ldns_buffer_clear(buf);
		if (ldns_rr2buffer_str(buf, rr) != LDNS_STATUS_OK || !ldns_buffer_reserve(buf, 1))
			return -ENOMEM;
		ldns_buffer_write_u8(buf, 0);
		rrtext_tidy((char *)ldns_buffer_begin(buf));
		fn(ctx, (const char *)ldns_buffer_begin(buf));
	}
	return n > INT32_MAX ? INT32_MAX : (int)n;
}

int
rrtext_foreach(const uint8_t *pkt, size_t len, unsigned sections, uint32_t ttl_max, unsigned max,
	       rrtext_fn *fn, void *ctx)
{
	ldns_pkt *p = NULL;
	ldns_buffer *buf;
	unsigned left = max;
	int total = 0, r = 0;

	if (ldns_wire2pkt(&p, pkt, len) != LDNS_STATUS_OK)
		return -EPROTO;
	buf = ldns_buffer_new(RRTEXT_BUF); /* grows for a longer record */
	if (!buf) {
		ldns_pkt_free(p);
		return -ENOMEM;
	}
	if (sections & RRTEXT_ANSWER)
		r = rrtext_list(buf, ldns_pkt_answer(p), ttl_max, &left, fn, ctx);
	if (r >= 0) {
		total = r;
		if (sections & RRTEXT_AUTHORITY) {
			r = rrtext_list(buf, ldns_pkt_authority(p), ttl_max, &left, fn, ctx);
			total += r >= 0 ? r : 0;
		}
	}
	ldns_buffer_free(buf);
	ldns_pkt_free(p);
	return r < 0 ? r : total;
}
