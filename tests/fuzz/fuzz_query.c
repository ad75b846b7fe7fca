/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_query.c - libFuzzer target: what the front end does with a client's packet. The input is
 * one datagram, handed to query_handle() as server.c does: first over UDP (a miss: the upstream
 * double holds it and then answers with records of the question's type, as many as the qtype's
 * low six bits, so large answers get truncated), again over UDP (now a cache hit, or a second
 * miss for an uncacheable answer), then over TCP. Every answer, at once or late, must be a
 * walkable response carrying the client's ID, and a UDP one must fit the client's size.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "fuzz_upstream.h"
#include "fuzz_util.h"

static struct event_base *fuzz_base;
static struct dnsmsg_query fuzz_dq; /* the input as the parser sees it */
static int fuzz_status;		    /* dnsmsg_parse_query()'s return for it */

static void
fuzz_query_check(const uint8_t *pkt, size_t len, bool tcp, const char *what)
{
	fuzz_check_answer(pkt, len, what);
	if (dnsmsg_id(pkt) != fuzz_dq.id)
		fuzz_fail("%s: ID %u for a query with ID %u", what, dnsmsg_id(pkt), fuzz_dq.id);
	if (!tcp && fuzz_status == 0 && len > fuzz_dq.udp_size)
		fuzz_fail("%s: %zu bytes over UDP to a client that takes %u", what, len,
			  fuzz_dq.udp_size);
}

static int
fuzz_query_send(const struct query_origin *o, const uint8_t *pkt, size_t len)
{
	fuzz_query_check(pkt, len, o->tcp, "late answer");
	return 0;
}

static void
fuzz_query_ask(struct fuzz_env *e, const uint8_t *data, size_t size, bool tcp)
{
	static uint8_t out[65535];
	struct query_origin o = {.send = fuzz_query_send, .tcp = tcp, .fd = -1};
	size_t n;

	n = query_handle(e->qe, data, size, &o, out, tcp ? sizeof(out) : 65535);
	if (n)
		fuzz_query_check(out, n, tcp, tcp ? "TCP answer" : "UDP answer");
	else if (fuzz_status == 0 && !e->up->n)
		fuzz_fail("a well-formed query got no answer and nothing waits upstream");
	while (e->up->n)
		fuzz_up_answer(e->up, fuzz_dq.q.qtype & 0x3f, 300);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet();
	fuzz_base = event_base_new();
	if (!fuzz_base)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_env e;

	memset(&fuzz_dq, 0, sizeof(fuzz_dq));
	fuzz_status = dnsmsg_parse_query(data, size, &fuzz_dq);
	fuzz_env_init(&e, fuzz_base, true, NULL);
	fuzz_query_ask(&e, data, size, false);
	fuzz_query_ask(&e, data, size, false);
	fuzz_query_ask(&e, data, size, true);
	fuzz_env_done(&e);
	return 0;
}
