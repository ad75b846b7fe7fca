/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_tcp.c - libFuzzer target: DNS over TCP as a client sends it, through the real front end.
 * The framing lives inside server.c's bufferevent callbacks, so the target runs the server
 * itself (server_new on 127.0.0.1, a free port, the engine with the upstream double and no
 * cache) and is its client: each input is written as it is - 2-byte lengths and messages, or
 * whatever else - on a new connection, the write side is shut, and the answers are read until
 * the server closes. The upstream double answers held queries between loop iterations, as a
 * network upstream would, so queries are pending while the client half-closes.
 * Oracles: every complete answer frame is a walkable response; there are no more answers than
 * complete query frames; the server closes the connection (no hang) and every query is done
 * by then or soon after (nothing pending once the loop settles).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <event2/event.h>

#include "lib/clock.h"
#include "daemon/server.h"
#include "fuzz_upstream.h"
#include "fuzz_util.h"

#define FUZZ_TCP_DEADLINE_MS 5000
#define FUZZ_TCP_MAX_READ (8u << 20)

static struct event_base *fuzz_base;
static struct fuzz_env fuzz_env;
static struct server *fuzz_server;
static struct sockaddr_in fuzz_addr;

/* One client connection: what is left to write, what was read. */
struct fuzz_client {
	int fd;
	struct event *ev;
	const uint8_t *data;
	size_t size, written;
	bool shut, eof;
	uint8_t *in;
	size_t in_len, in_cap;
};

static void
fuzz_tcp_client_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fuzz_client *c = arg;

	if ((what & EV_WRITE) && !c->shut) {
		ssize_t n = c->written < c->size ? send(fd, c->data + c->written,
							c->size - c->written, MSG_NOSIGNAL)
						 : 0;

		if (n > 0)
			c->written += (size_t)n;
		else if (n < 0 && errno != EAGAIN && errno != EINTR)
			c->written = c->size; /* the server has gone: stop writing */
		if (c->written == c->size) {
			shutdown(fd, SHUT_WR);
			c->shut = true;
			event_del(c->ev);
			event_assign(c->ev, fuzz_base, fd, EV_READ | EV_PERSIST, fuzz_tcp_client_cb,
				     c);
			event_add(c->ev, NULL);
		}
	}
	if (what & EV_READ) {
		for (;;) {
			ssize_t n;

			if (c->in_len == c->in_cap) {
				if (c->in_cap >= FUZZ_TCP_MAX_READ)
					fuzz_fail("over %u bytes of answers", FUZZ_TCP_MAX_READ);
				c->in_cap = c->in_cap ? c->in_cap * 2 : 65536;
				if (!(c->in = realloc(c->in, c->in_cap)))
					fuzz_fail("out of memory");
			}
			n = recv(fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
			if (n > 0) {
				c->in_len += (size_t)n;
				continue;
			}
			if (n == 0 || (errno != EAGAIN && errno != EINTR))
				c->eof = true; /* a close, or a reset for unread input */
			break;
		}
		if (c->eof)
			event_del(c->ev);
	}
}

/* Complete frames in data[0..len): how many, and whether bytes are left over. */
static size_t
fuzz_tcp_frames(const uint8_t *data, size_t len, size_t *rest)
{
	size_t n = 0, off = 0;

	while (len - off >= 2 && len - off - 2 >= dnsmsg_get16(data + off)) {
		off += 2 + (size_t)dnsmsg_get16(data + off);
		n++;
	}
	*rest = len - off;
	return n;
}

static void
fuzz_tcp_check(const struct fuzz_client *c)
{
	size_t queries, answers, rest, off = 0;

	queries = fuzz_tcp_frames(c->data, c->size, &rest);
	answers = fuzz_tcp_frames(c->in, c->in_len, &rest);
	if (answers > queries)
		fuzz_fail("%zu answers to %zu query frames", answers, queries);
	for (size_t i = 0; i < answers; i++) {
		size_t len = dnsmsg_get16(c->in + off);

		fuzz_check_answer(c->in + off + 2, len, "TCP answer");
		off += 2 + len;
	}
	/* The server answers what is pending after the client's half-close and closes only
	 * once everything is written (RFC 7766): never in the middle of a frame. */
	if (rest)
		fuzz_fail("the server closed with %zu bytes of a frame unsent", rest);
}

/* Let the loop run once, then answer what the double holds, as a network upstream would. */
static void
fuzz_tcp_step(void)
{
	event_base_loop(fuzz_base, EVLOOP_ONCE);
	while (fuzz_env.up->n)
		fuzz_up_answer(fuzz_env.up, fuzz_env.up->reqs[0]->q.qtype & 0x3f, 300);
}

/* Bind the server to a free port of 127.0.0.1: ask the kernel for one, then take it. */
static void
fuzz_tcp_start(void)
{
	char port_arg[32], err[512];
	char *argv[] = {"kubemasq", port_arg, "--listen-address=127.0.0.1", "--no-resolv", NULL};

	for (int attempt = 0; attempt < 50 && !fuzz_server; attempt++) {
		struct sockaddr_in sa = {.sin_family = AF_INET};
		socklen_t sl = sizeof(sa);
		int fd = socket(AF_INET, SOCK_STREAM, 0);

		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		    getsockname(fd, (struct sockaddr *)&sa, &sl) < 0)
			fuzz_fail("cannot find a free port: %s", strerror(errno));
		close(fd);
		snprintf(port_arg, sizeof(port_arg), "--port=%u", ntohs(sa.sin_port));
		if (attempt)
			fuzz_env_done(&fuzz_env);
		fuzz_env_init(&fuzz_env, fuzz_base, false, argv);
		fuzz_server = server_new(fuzz_base, &fuzz_env.cfg, fuzz_env.qe, &fuzz_env.stats,
					 err, sizeof(err));
		fuzz_addr = sa;
	}
	if (!fuzz_server)
		fuzz_fail("server_new: %s", err);
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
	fuzz_tcp_start();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_client c = {.data = data, .size = size};
	msec_t deadline = clock_now_ms() + FUZZ_TCP_DEADLINE_MS;

	c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c.fd < 0)
		fuzz_fail("socket: %s", strerror(errno));
	if (connect(c.fd, (struct sockaddr *)&fuzz_addr, sizeof(fuzz_addr)) < 0 &&
	    errno != EINPROGRESS)
		fuzz_fail("connect: %s", strerror(errno));
	c.ev = event_new(fuzz_base, c.fd, EV_READ | EV_WRITE | EV_PERSIST, fuzz_tcp_client_cb, &c);
	if (!c.ev || event_add(c.ev, NULL) < 0)
		fuzz_fail("cannot watch the client socket");
	while (!c.eof) {
		if (clock_now_ms() > deadline)
			fuzz_fail(
				"the server did not close the connection within %d ms (%zu of %zu "
				"bytes written, %zu read)",
				FUZZ_TCP_DEADLINE_MS, c.written, c.size, c.in_len);
		fuzz_tcp_step();
	}
	/* Queries the server still holds finish once their upstream answers. */
	while (query_engine_pending(fuzz_env.qe)) {
		if (clock_now_ms() > deadline)
			fuzz_fail("%zu queries still pending after the connection closed",
				  query_engine_pending(fuzz_env.qe));
		event_base_loop(fuzz_base, EVLOOP_NONBLOCK);
		while (fuzz_env.up->n)
			fuzz_up_answer(fuzz_env.up, 1, 300);
	}
	fuzz_tcp_check(&c);
	event_free(c.ev);
	close(c.fd);
	free(c.in);
	return 0;
}
