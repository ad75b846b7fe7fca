/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_upstream_dns.c - the network forwarder against scripted upstreams: plain UDP (and TCP)
 * sockets on 127.0.0.1 random ports that this file reads and answers by hand, so every kind of
 * misbehaviour (wrong ID, wrong source, wrong question, garbage, silence, SERVFAIL, TC=1) can be
 * produced exactly. A real libevent loop runs everything; the tests wait on conditions with a
 * deadline timer in the same loop, never with sleeps.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kubemasq/dnsmsg.h"
#include "kubemasq/log.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "upstream/upstream_dns.h"

#define TEST_RX_MAX 512
#define TEST_PKT_MAX 1500
#define TEST_WAIT_MS 3000

struct test_dgram {
	uint8_t pkt[TEST_PKT_MAX];
	size_t len;
	struct sockaddr_storage from;
	socklen_t fromlen;
	msec_t at;
};

/* One scripted upstream: a UDP socket, optionally a TCP listener on the same port. */
struct test_srv {
	int fd, lfd, cfd;
	struct event *ev, *lev, *cev;
	struct config_sockaddr addr;
	uint16_t port;
	struct test_dgram *rx;
	unsigned n_rx;
	uint8_t tcp_buf[2 + 65535];
	size_t tcp_len;
	unsigned n_tcp; /* complete TCP queries received */
};

struct test_env {
	struct event_base *base;
	struct test_srv srv[2];
	unsigned n_srv;
	struct config_sockaddr addrs[2];
	struct upstream_dns_args args;
	struct upstream *up;
};

struct test_req {
	struct upstream_req req;
	uint8_t qname[DNS_MAX_NAME];
	unsigned calls;
	int status;
	uint8_t *reply;
	size_t len;
	msec_t done_at;
};

/* --- the scripted upstream --- */

static void
test_srv_on_udp(evutil_socket_t fd, short what, void *arg)
{
	struct test_srv *s = arg;
	(void)what;

	while (s->n_rx < TEST_RX_MAX) {
		struct test_dgram *d = &s->rx[s->n_rx];
		ssize_t n;

		d->fromlen = sizeof(d->from);
		n = recvfrom(fd, d->pkt, sizeof(d->pkt), MSG_DONTWAIT, (struct sockaddr *)&d->from,
			     &d->fromlen);
		if (n < 0)
			break;
		d->len = (size_t)n;
		d->at = clock_now_ms();
		s->n_rx++;
	}
}

static void
test_srv_on_conn(evutil_socket_t fd, short what, void *arg)
{
	struct test_srv *s = arg;
	ssize_t n;
	(void)what;

	n = recv(fd, s->tcp_buf + s->tcp_len, sizeof(s->tcp_buf) - s->tcp_len, MSG_DONTWAIT);
	if (n <= 0) {
		event_del(s->cev);
		return;
	}
	s->tcp_len += (size_t)n;
	if (s->tcp_len >= 2 && s->tcp_len == 2 + (size_t)dnsmsg_get16(s->tcp_buf))
		s->n_tcp++;
}

static void
test_srv_on_accept(evutil_socket_t fd, short what, void *arg)
{
	struct test_srv *s = arg;
	int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	(void)what;

	if (c < 0)
		return;
	if (s->cfd >= 0) { /* one connection per test is enough */
		close(c);
		return;
	}
	s->cfd = c;
	s->tcp_len = 0;
	s->cev = event_new(event_get_base(s->lev), c, EV_READ | EV_PERSIST, test_srv_on_conn, s);
	assert_non_null(s->cev);
	event_add(s->cev, NULL);
}

static int
test_socket_bound(int family, int type, uint16_t port, struct config_sockaddr *out)
{
	int fd = socket(family, type | SOCK_CLOEXEC, 0);
	struct sockaddr_storage ss = {.ss_family = (sa_family_t)family};
	socklen_t len;

	if (fd < 0)
		return -errno;
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sin->sin_port = htons(port);
		len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		sin6->sin6_addr = in6addr_loopback;
		sin6->sin6_port = htons(port);
		len = sizeof(*sin6);
	}
	if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	if (out) {
		out->len = sizeof(out->ss);
		getsockname(fd, (struct sockaddr *)&out->ss, &out->len);
	}
	return fd;
}

static uint16_t
test_port_of(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

/* A UDP socket on a random port, and a TCP listener on the same port if `tcp`. Returns false
 * if the family is unavailable. */
static bool
test_srv_open(struct test_srv *s, struct event_base *base, int family, bool tcp)
{
	memset(s, 0, sizeof(*s));
	s->fd = s->lfd = s->cfd = -1;
	s->rx = calloc(TEST_RX_MAX, sizeof(*s->rx));
	assert_non_null(s->rx);
	for (int attempt = 0; attempt < 20; attempt++) {
		s->fd = test_socket_bound(family, SOCK_DGRAM, 0, &s->addr);
		if (s->fd < 0)
			return false;
		s->port = test_port_of(&s->addr.ss);
		if (!tcp)
			break;
		s->lfd = test_socket_bound(family, SOCK_STREAM | SOCK_NONBLOCK, s->port, NULL);
		if (s->lfd >= 0 && listen(s->lfd, 4) == 0)
			break;
		close(s->fd);
		if (s->lfd >= 0)
			close(s->lfd);
		s->fd = s->lfd = -1;
	}
	assert_true(s->fd >= 0);
	s->ev = event_new(base, s->fd, EV_READ | EV_PERSIST, test_srv_on_udp, s);
	event_add(s->ev, NULL);
	if (s->lfd >= 0) {
		s->lev = event_new(base, s->lfd, EV_READ | EV_PERSIST, test_srv_on_accept, s);
		event_add(s->lev, NULL);
	}
	return true;
}

static void
test_srv_close(struct test_srv *s)
{
	if (s->cev)
		event_free(s->cev);
	if (s->lev)
		event_free(s->lev);
	if (s->ev)
		event_free(s->ev);
	if (s->cfd >= 0)
		close(s->cfd);
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->fd >= 0)
		close(s->fd);
	free(s->rx);
}

/* --- DNS messages made by hand (independent of dnsmsg.c's builders) --- */

static size_t
test_question_end(const uint8_t *pkt, size_t len)
{
	size_t off = DNS_HDR_LEN;

	while (off < len && pkt[off] != 0)
		off += 1 + pkt[off];
	assert_true(off + 5 <= len);
	return off + 5;
}

/* A reply to `query`: header and question copied, QR/RA set, `n_a` A records 192.0.2.`tag`. */
static size_t
test_reply(const uint8_t *query, size_t qlen, uint8_t *out, size_t cap, unsigned rcode, bool tc,
	   unsigned n_a, uint8_t tag)
{
	size_t qend = test_question_end(query, qlen), len = qend;

	assert_true(qend + n_a * 16 <= cap);
	memcpy(out, query, qend);
	out[2] = (uint8_t)(0x80 | (query[2] & 0x79) | (tc ? 0x02 : 0));
	out[3] = (uint8_t)(0x80 | rcode);
	dnsmsg_put16(out + 6, (uint16_t)n_a);
	dnsmsg_put16(out + 8, 0);
	dnsmsg_put16(out + 10, 0);
	for (unsigned i = 0; i < n_a; i++) {
		static const uint8_t rr[] = {0xc0, 0x0c, 0, 1, 0,   1, 0, 0,
					     0x0e, 0x10, 0, 4, 192, 0, 2};
		memcpy(out + len, rr, sizeof(rr));
		out[len + sizeof(rr)] = (uint8_t)(tag + i);
		len += 16;
	}
	return len;
}

static void
test_srv_send(struct test_srv *s, const struct test_dgram *to, const uint8_t *pkt, size_t len)
{
	ssize_t n = sendto(s->fd, pkt, len, 0, (const struct sockaddr *)&to->from, to->fromlen);
	assert_int_equal(n, (ssize_t)len);
}

/* Answer datagram `d` received by `s` with one A record 192.0.2.`tag`. */
static void
test_answer(struct test_srv *s, const struct test_dgram *d, unsigned rcode, uint8_t tag)
{
	uint8_t out[TEST_PKT_MAX];
	size_t len = test_reply(d->pkt, d->len, out, sizeof(out), rcode, false,
				rcode == DNS_RCODE_NOERROR, tag);
	test_srv_send(s, d, out, len);
}

/* --- requests --- */

static void
test_done(struct upstream_req *req, int status, const uint8_t *reply, size_t len)
{
	struct test_req *r = container_of(req, struct test_req, req);

	r->calls++;
	r->status = status;
	r->done_at = clock_now_ms();
	free(r->reply);
	r->reply = NULL;
	r->len = len;
	if (reply) {
		r->reply = malloc(len);
		assert_non_null(r->reply);
		memcpy(r->reply, reply, len);
	}
}

static void
test_req_init(struct test_req *r, const char *name, uint16_t qtype)
{
	int n;

	memset(r, 0, sizeof(*r));
	n = dnsmsg_name_from_text(name, r->qname, sizeof(r->qname));
	assert_true(n > 0);
	dnsmsg_name_lower(r->qname, r->qname, (size_t)n);
	r->req.q.qname = r->qname;
	r->req.q.qname_len = (uint16_t)n;
	r->req.q.qtype = qtype;
	r->req.q.qclass = DNS_CLASS_IN;
	r->req.done = test_done;
}

static void
test_req_done(struct test_req *r)
{
	free(r->reply);
	r->reply = NULL;
}

/* --- the loop --- */

static void
test_expire(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(bool *)arg = true;
}

/* Run the loop until *v >= want or max_ms pass; returns whether the condition holds. */
static bool
test_wait(struct test_env *env, const unsigned *v, unsigned want, unsigned max_ms)
{
	bool expired = false;
	struct event *t = evtimer_new(env->base, test_expire, &expired);
	struct timeval tv = {.tv_sec = max_ms / 1000, .tv_usec = (max_ms % 1000) * 1000};

	evtimer_add(t, &tv);
	while (*v < want && !expired)
		event_base_loop(env->base, EVLOOP_ONCE);
	event_free(t);
	return *v >= want;
}

struct test_lines {
	char line[8][256];
	unsigned n;
};

static void
test_stats_line(void *ctx, const char *line)
{
	struct test_lines *l = ctx;

	assert_true(l->n < 8);
	snprintf(l->line[l->n++], sizeof(l->line[0]), "%s", line);
}

static void
test_counters(struct test_env *env, unsigned long *bogus, unsigned long *garbage)
{
	struct test_lines l = {.n = 0};

	env->up->ops->stats(env->up, test_stats_line, &l);
	assert_int_equal(l.n, env->n_srv + 1);
	assert_int_equal(sscanf(l.line[env->n_srv],
				"forwarder: bogus replies %lu, garbage replies %lu", bogus,
				garbage),
			 2);
}

/* Run the loop until the bogus (or garbage) counter reaches `want`. */
static bool
test_wait_counter(struct test_env *env, bool garbage, unsigned long want)
{
	msec_t end = clock_now_ms() + TEST_WAIT_MS;
	unsigned never = 0;

	for (;;) {
		unsigned long b, g;
		test_counters(env, &b, &g);
		if ((garbage ? g : b) >= want)
			return true;
		if (clock_now_ms() >= end)
			return false;
		test_wait(env, &never, 1, 5);
	}
}

/* --- environment --- */

static struct test_env *
test_env_new(unsigned n_srv, int family, bool tcp)
{
	struct test_env *env = calloc(1, sizeof(*env));

	assert_non_null(env);
	env->base = event_base_new();
	assert_non_null(env->base);
	env->n_srv = n_srv;
	for (unsigned i = 0; i < n_srv; i++) {
		if (!test_srv_open(&env->srv[i], env->base, family, tcp)) {
			for (unsigned j = 0; j <= i; j++)
				test_srv_close(&env->srv[j]);
			event_base_free(env->base);
			free(env);
			return NULL;
		}
		env->addrs[i] = env->srv[i].addr;
	}
	env->args = (struct upstream_dns_args){
		.servers = env->addrs,
		.n_servers = n_srv,
		.order = UPSTREAM_DNS_STRICT,
		.edns_packet_max = 1232,
		.min_port = 1024,
		.max_port = 65535,
		.timeout_ms = 5000,
		.retry_ms = 2000,
	};
	return env;
}

static void
test_env_start(struct test_env *env)
{
	assert_int_equal(upstream_dns_ops.create(&env->up, env->base, &env->args), 0);
	assert_non_null(env->up);
	assert_ptr_equal(env->up->ops, &upstream_dns_ops);
}

static void
test_env_free(struct test_env *env)
{
	upstream_free(env->up);
	for (unsigned i = 0; i < env->n_srv; i++)
		test_srv_close(&env->srv[i]);
	event_base_free(env->base);
	free(env);
}

/* resolve() and wait for the query to reach server `si`; returns that datagram. */
static struct test_dgram *
test_send_query(struct test_env *env, struct test_req *r, unsigned si)
{
	unsigned before = env->srv[si].n_rx;

	assert_int_equal(upstream_resolve(env->up, &r->req), 0);
	assert_int_equal(r->calls, 0); /* never completed inside resolve() */
	assert_true(test_wait(env, &env->srv[si].n_rx, before + 1, TEST_WAIT_MS));
	return &env->srv[si].rx[before];
}

static const uint8_t *
test_question_of(const struct test_dgram *d)
{
	return d->pkt + DNS_HDR_LEN;
}

/* --- tests --- */

static void
test_normal_reply(void **state)
{
	struct test_env *env = test_env_new(1, AF_INET, false);
	struct test_req r;
	struct test_dgram *d;
	(void)state;

	test_env_start(env);
	test_req_init(&r, "www.Example.com", DNS_TYPE_A);
	d = test_send_query(env, &r, 0);
	assert_true(d->len > DNS_HDR_LEN);
	assert_false(dnsmsg_qr(d->pkt));
	assert_true(dnsmsg_rd(d->pkt));
	assert_int_equal(dnsmsg_qdcount(d->pkt), 1);
	assert_int_equal(dnsmsg_arcount(d->pkt), 1); /* OPT, edns_packet_max != 0 */
	assert_memory_equal(test_question_of(d), "\3www\7example\3com\0\0\1\0\1", 21);
	test_answer(&env->srv[0], d, DNS_RCODE_NOERROR, 7);
	assert_true(test_wait(env, &r.calls, 1, TEST_WAIT_MS));
	assert_int_equal(r.status, 0);
	assert_non_null(r.reply);
	assert_int_equal(dnsmsg_id(r.reply), dnsmsg_id(d->pkt));
	assert_int_equal(dnsmsg_ancount(r.reply), 1);
	assert_int_equal(r.reply[r.len - 1], 7);
	test_req_done(&r);
	test_env_free(env);
}

static void
test_wrong_id_ignored(void **state)
{
	struct test_env *env = test_env_new(1, AF_INET, false);
	struct test_req r;
	struct test_dgram *d, fake;
	(void)state;

	test_env_start(env);
	test_req_init(&r, "example.com", DNS_TYPE_A);
	d = test_send_query(env, &r, 0);
	fake = *d;
	dnsmsg_put16(fake.pkt, (uint16_t)(dnsmsg_id(d->pkt) ^ 0x5a5a));
	test_answer(&env->srv[0], &fake, DNS_RCODE_NOERROR, 66);
	assert_true(test_wait_counter(env, false, 1));
	assert_int_equal(r.calls, 0);
	test_answer(&env->srv[0], d, DNS_RCODE_NOERROR, 1);
	assert_true(test_wait(env, &r.calls, 1, TEST_WAIT_MS));
	assert_int_equal(r.status, 0);
	assert_int_equal(r.reply[r.len - 1], 1);
	test_req_done(&r);
	test_env_free(env);
}

static void
test_wrong_source_port_ignored(void **state)
{
	struct test_env *env = test_env_new(1, AF_INET, false);
	struct test_req r;
	struct test_dgram *d;
	uint8_t out[TEST_PKT_MAX];
	size_t len;
	int evil = test_socket_bound(AF_INET, SOCK_DGRAM, 0, NULL);
	(void)state;

	assert_true(evil >= 0);
	test_env_start(env);
	test_req_init(&r, "example.com", DNS_TYPE_A);
	d = test_send_query(env, &r, 0);
	/* same address, same ID, same question, another port */
	len = test_reply(d->pkt, d->len, out, sizeof(out), 0, false, 1, 66);
	assert_int_equal(sendto(evil, out, len, 0, (struct sockaddr *)&d->from, d->fromlen),
			 (ssize_t)len);
	assert_true(test_wait_counter(env, false, 1));
	assert_int_equal(r.calls, 0);
	test_answer(&env->srv[0], d, DNS_RCODE_NOERROR, 1);
	assert_true(test_wait(env, &r.calls, 1, TEST_WAIT_MS));
	assert_int_equal(r.status, 0);
	assert_int_equal(r.reply[r.len - 1], 1);
	close(evil);
	test_req_done(&r);
	test_env_free(env);
}

static void
test_wrong_question_ignored(void **state)
{
	struct test_env *env = test_env_new(1, AF_INET, false);
	struct test_req r;
	struct test_dgram *d, fake;
	(void)state;

	test_env_start(env);
	test_req_init(&r, "www.example.com", DNS_TYPE_A);
	d = test_send_query(env, &r, 0);
	fake = *d;
	fake.pkt[DNS_HDR_LEN + 1] = 'x'; /* xww.example.com */
	test_answer(&env->srv[0], &fake, DNS_RCODE_NOERROR, 66);
	fake = *d;
	fake.pkt[test_question_end(d->pkt, d->len) - 3] = DNS_TYPE_AAAA; /* another type */
	test_answer(&env->srv[0], &fake, DNS_RCODE_NOERROR, 66);
	assert_true(test_wait_counter(env, false, 2));
	assert_int_equal(r.calls, 0);
	/* the genuine reply, with the name in another case, is accepted */
	fake = *d;
	fake.pkt[DNS_HDR_LEN + 1] = 'W';
	test_answer(&env->srv[0], &fake, DNS_RCODE_NOERROR, 1);
	assert_true(test_wait(env, &r.calls, 1, TEST_WAIT_MS));
	assert_int_equal(r.status, 0);
	assert_int_equal(r.reply[r.len - 1], 1);
	test_req_done(&r);
	test_env_free(env);
}

static void
test_garbage_counted(void **state)
{
	struct test_env *env = test_env_new(1, AF_INET, false);
	struct test_req r;
	struct test_dgram *d;
	uint8_t query_echo[TEST_PKT_MAX];
	unsigned long bogus, garbage;
	(void)state;

	test_env_start(env);
	test_req_init(&r, "example.com", DNS_TYPE_A);
	d = test_send_query(env, &r, 0);
	test_srv_send(&env->srv[0], d, (const uint8_t *)"hello", 5);
	/* right ID and source, but QR=0: not a response */
	memcpy(query_echo, d->pkt, d->len);
	test_srv_send(&env->srv[0], d, query_echo, d->len);
	assert_true(test_wait_counter(env, true, 2));
	test_counters(env, &bogus, &garbage);
	assert_int_equal(garbage, 2);
	assert_int_equal(bogus, 0);
	assert_int_equal(r.calls, 0);
	test_answer(&env->srv[0], d, DNS_RCODE_NOERROR, 1);
	assert_true(test_wait(env, &r.calls, 1, TEST_WAIT_MS));
	assert_int_equal(r.status, 0);
	test_req_done(&r);
	test_env_free(env);
}

/* A reply whose question name is a pointer (to the answer's owner, written out after it) reads
 * as the right question, but its name is not where the daemon copies the client's spelling
 * to: counted as garbage and dropped, and the genuine reply that follows is taken. */
static void
test_compressed_question_dropped(void **state)
{
	struct test_env *env = test_env_new(1, AF_INET, false);
	struct test_req r;
	struct test_dgram *d;
	uint8_t out[TEST_PKT_MAX];
	size_t qend, name_len, len;
	unsigned long bogus, garbage;
	static const uint8_t rr[] = {0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 66};
	(void)state;

	test_env_start(env);
	test_req_init(&r, "www.example.com", DNS_TYPE_A);
	d = test_send_query(env, &r, 0);
	qend = test_question_end(d->pkt, d->len);
	name_len = qend - 4 - DNS_HDR_LEN;
	memcpy(out, d->pkt, DNS_HDR_LEN);
	out[2] = (uint8_t)(0x80 | (d->pkt[2] & 0x79));
	out[3] = 0x80;
	dnsmsg_put16(out + 6, 1);
	dnsmsg_put16(out + 10, 0);
	len = DNS_HDR_LEN;
	out[len++] = 0xc0; /* the question: a pointer to the answer's owner at 18 */
	out[len++] = DNS_HDR_LEN + 6;
	memcpy(out + len, d->pkt + qend - 4, 4);
	len += 4;
	memcpy(out + len, d->pkt + DNS_HDR_LEN, name_len);
	len += name_len;
	memcpy(out + len, rr, sizeof(rr));
	len += sizeof(rr);
	test_srv_send(&env->srv[0], d, out, len);
	assert_true(test_wait_counter(env, true, 1));
	test_counters(env, &bogus, &garbage);
	assert_int_equal(garbage, 1);
	assert_int_equal(bogus, 0);
	assert_int_equal(r.calls, 0);
	test_answer(&env->srv[0], d, DNS_RCODE_NOERROR, 1);
	assert_true(test_wait(env, &r.calls, 1, TEST_WAIT_MS));
	assert_int_equal(r.status, 0);
	assert_int_equal(r.reply[r.len - 1], 1);
	assert_int_equal(r.reply[DNS_HDR_LEN], 3); /* the name itself, in place */
	test_req_done(&r);
	test_env_free(env);
}

static unsigned
test_distinct(const unsigned *v, unsigned n)
{
	unsigned d = 0;

	for (unsigned i = 0; i < n; i++) {
		unsigned j;
		for (j = 0; j < i && v[j] != v[i]; j++)
			;
		d += j == i;
	}
	return d;
}

#define TEST_N_RANDOM 300

static void
test_ids_and_ports_random(void **state)
{
	struct test_env *env = test_env_new(1, AF_INET, false);
	struct test_req *r = calloc(TEST_N_RANDOM, sizeof(*r));
	unsigned ports[TEST_N_RANDOM], ids[TEST_N_RANDOM];
	(void)state;

	assert_non_null(r);
	env->args.min_port = 30000;
	env->args.max_port = 40000;
	env->args.retry_ms = 5000;
	test_env_start(env);
	/* in batches, so that the test socket's receive buffer never overflows */
	for (unsigned i = 0; i < TEST_N_RANDOM; i++) {
		test_req_init(&r[i], "example.com", DNS_TYPE_A);
		assert_int_equal(upstream_resolve(env->up, &r[i].req), 0);
		if ((i + 1) % 50 == 0)
			assert_true(test_wait(env, &env->srv[0].n_rx, i + 1, TEST_WAIT_MS));
	}
	assert_int_equal(env->srv[0].n_rx, TEST_N_RANDOM); /* no retransmissions among them */
	for (unsigned i = 0; i < TEST_N_RANDOM; i++) {
		ports[i] = test_port_of(&env->srv[0].rx[i].from);
		ids[i] = dnsmsg_id(env->srv[0].rx[i].pkt);
		assert_in_range(ports[i], 30000, 40000);
	}
	/* 300 draws from a pool of up to 128 sockets, and 16-bit IDs */
	assert_true(test_distinct(ports, TEST_N_RANDOM) >= 50);
	assert_true(test_distinct(ids, TEST_N_RANDOM) >= 280);
	for (unsigned i = 0; i < TEST_N_RANDOM; i++)
		upstream_cancel(env->up, &r[i].req);
	for (unsigned i = 0; i < TEST_N_RANDOM; i++)
		assert_int_equal(r[i].calls, 0);
	free(r);
	test_env_free(env);
}

static void
test_query_port_fixed(void **state)
{
	struct test_env *env = test_env_new(1, AF_INET, false);
	struct config_sockaddr a;
	struct test_req r[10];
	int probe = test_socket_bound(AF_INET, SOCK_DGRAM, 0, &a);
	uint16_t port = test_port_of(&a.ss);
	(void)state;

	/* a port that was free a moment ago */
	assert_true(probe >= 0);
	close(probe);
	env->args.query_port = port;
	test_env_start(env);
	for (unsigned i = 0; i < ARRAY_SIZE(r); i++) {
		test_req_init(&r[i], "example.com", DNS_TYPE_A);
		assert_int_equal(upstream_resolve(env->up, &r[i].req), 0);
	}
	assert_true(test_wait(env, &env->srv[0].n_rx, ARRAY_SIZE(r), TEST_WAIT_MS));
	for (unsigned i = 0; i < ARRAY_SIZE(r); i++)
		assert_int_equal(test_port_of(&env->srv[0].rx[i].from), port);
	for (unsigned i = 0; i < ARRAY_SIZE(r); i++)
		upstream_cancel(env->up, &r[i].req);
	test_env_free(env);
}

static void
test_retry_next_server(void **state)
{
	struct test_env *env = test_env_new(2, AF_INET, false);
	struct test_req r;
	struct test_dgram *d0, *d1;
	msec_t t0;
	(void)state;

	env->args.retry_ms = 100;
	test_env_start(env);
	test_req_init(&r, "example.com", DNS_TYPE_A);
	t0 = clock_now_ms();
	d0 = test_send_query(env, &r, 0);
	assert_int_equal(env->srv[1].n_rx, 0);
	assert_true(test_wait(env, &env->srv[1].n_rx, 1, TEST_WAIT_MS));
	d1 = &env->srv[1].rx[0];
	assert_true(d1->at - t0 >= 100);
	assert_true(d0->at - t0 < 100);
	assert_int_equal(r.calls, 0);
	test_answer(&env->srv[1], d1, DNS_RCODE_NOERROR, 2);
	assert_true(test_wait(env, &r.calls, 1, TEST_WAIT_MS));
	assert_int_equal(r.status, 0);
	assert_int_equal(r.reply[r.len - 1], 2);
	test_req_done(&r);
	test_env_free(env);
}

static void
test_late_reply_accepted(void **state)
{
	struct test_env *env = test_env_new(2, AF_INET, false);
	struct test_req r;
	struct test_dgram *d0;
	(void)state;

	env->args.retry_ms = 50;
	test_env_start(env);
	test_req_init(&r, "example.com", DNS_TYPE_A);
	d0 = test_send_query(env, &r, 0);
	assert_true(test_wait(env, &env->srv[1].n_rx, 1, TEST_WAIT_MS));
	/* the first server answers after the second was asked: still valid */
	test_answer(&env->srv[0], d0, DNS_RCODE_NOERROR, 1);
	assert_true(test_wait(env, &r.calls, 1, TEST_WAIT_MS));
	assert_int_equal(r.status, 0);
	assert_int_equal(r.reply[r.len - 1], 1);
	test_req_done(&r);
	test_env_free(env);
}

static void
test_all_silent_timeout(void **state)
{
	struct test_env *env = test_env_new(2, AF_INET, false);
	struct test_req r;
	msec_t t0;
	(void)state;

	env->args.retry_ms = 100;
	env->args.timeout_ms = 350;
	test_env_start(env);
	test_req_init(&r, "example.com", DNS_TYPE_A);
	t0 = clock_now_ms();
	assert_int_equal(upstream_resolve(env->up, &r.req), 0);
	assert_true(test_wait(env, &r.calls, 1, TEST_WAIT_MS));
	assert_int_equal(r.status, -ETIMEDOUT);
	assert_null(r.reply);
	assert_true(r.done_at - t0 >= 350);
	/* both servers were asked, retries wrapped around to the first one */
	assert_true(env->srv[0].n_rx >= 2);
	assert_true(env->srv[1].n_rx >= 1);
	/* done() exactly once */
	assert_false(test_wait(env, &r.calls, 2, 300));
	assert_int_equal(r.calls, 1);
	test_req_done(&r);
	test_env_free(env);
}

static void
test_truncated_retries_tcp(void **state)
{
	struct test_env *env = test_env_new(1, AF_INET, true);
	struct test_srv *s = &env->srv[0];
	struct test_req r;
	struct test_dgram *d;
	uint8_t out[2 + 4096];
	size_t len;
	(void)state;

	test_env_start(env);
	test_req_init(&r, "big.example.com", DNS_TYPE_A);
	d = test_send_query(env, &r, 0);
	len = test_reply(d->pkt, d->len, out, sizeof(out), 0, true, 0, 0);
	test_srv_send(s, d, out, len);
	assert_true(test_wait(env, &s->n_tcp, 1, TEST_WAIT_MS));
	assert_int_equal(r.calls, 0);
	/* the same question arrives over TCP */
	assert_true(s->tcp_len > 2 + DNS_HDR_LEN);
	assert_false(dnsmsg_qr(s->tcp_buf + 2));
	assert_memory_equal(s->tcp_buf + 2 + DNS_HDR_LEN, test_question_of(d),
			    test_question_end(d->pkt, d->len) - DNS_HDR_LEN);
	/* 100 records: far more than 512 bytes */
	len = test_reply(s->tcp_buf + 2, s->tcp_len - 2, out + 2, sizeof(out) - 2, 0, false, 100,
			 0);
	dnsmsg_put16(out, (uint16_t)len);
	assert_int_equal(send(s->cfd, out, len + 2, 0), (ssize_t)(len + 2));
	assert_true(test_wait(env, &r.calls, 1, TEST_WAIT_MS));
	assert_int_equal(r.status, 0);
	assert_int_equal(r.len, len);
	assert_int_equal(dnsmsg_ancount(r.reply), 100);
	assert_false(dnsmsg_tc(r.reply));
	test_req_done(&r);
	test_env_free(env);
}

static void
test_tcp_failure_next_server(void **state)
{
	/* no TCP listener: the connection is refused and the next server is asked */
	struct test_env *env = test_env_new(2, AF_INET, false);
	struct test_req r;
	struct test_dgram *d;
	uint8_t out[TEST_PKT_MAX];
	size_t len;
	(void)state;

	test_env_start(env);
	test_req_init(&r, "big.example.com", DNS_TYPE_A);
	d = test_send_query(env, &r, 0);
	len = test_reply(d->pkt, d->len, out, sizeof(out), 0, true, 0, 0);
	test_srv_send(&env->srv[0], d, out, len);
	assert_true(test_wait(env, &env->srv[1].n_rx, 1, 1000)); /* before retry_ms */
	test_answer(&env->srv[1], &env->srv[1].rx[0], DNS_RCODE_NOERROR, 2);
	assert_true(test_wait(env, &r.calls, 1, TEST_WAIT_MS));
	assert_int_equal(r.status, 0);
	assert_int_equal(r.reply[r.len - 1], 2);
	test_req_done(&r);
	test_env_free(env);
}

static void
test_cancel_never_done(void **state)
{
	struct test_env *env = test_env_new(1, AF_INET, false);
	struct test_req r;
	struct test_dgram *d;
	(void)state;

	env->args.retry_ms = 50;
	env->args.timeout_ms = 150;
	test_env_start(env);
	test_req_init(&r, "example.com", DNS_TYPE_A);
	d = test_send_query(env, &r, 0);
	upstream_cancel(env->up, &r.req);
	assert_null(r.req.priv);
	test_answer(&env->srv[0], d, DNS_RCODE_NOERROR, 1);
	assert_true(test_wait_counter(env, false, 1));	/* the reply was seen, and dropped */
	assert_false(test_wait(env, &r.calls, 1, 300)); /* past the timeout, too */
	assert_int_equal(r.calls, 0);
	test_env_free(env);
}

static void
test_strict_order(void **state)
{
	struct test_env *env = test_env_new(2, AF_INET, false);
	struct test_req r;
	(void)state;

	test_env_start(env);
	for (unsigned i = 0; i < 20; i++) {
		struct test_dgram *d;
		test_req_init(&r, "example.com", DNS_TYPE_A);
		d = test_send_query(env, &r, 0);
		test_answer(&env->srv[0], d, DNS_RCODE_NOERROR, 1);
		assert_true(test_wait(env, &r.calls, 1, TEST_WAIT_MS));
		assert_int_equal(r.status, 0);
		test_req_done(&r);
	}
	assert_int_equal(env->srv[0].n_rx, 20);
	assert_int_equal(env->srv[1].n_rx, 0);
	test_env_free(env);
}

static void
test_all_servers(void **state)
{
	struct test_env *env = test_env_new(2, AF_INET, false);
	struct test_req r;
	(void)state;

	env->args.order = UPSTREAM_DNS_ALL;
	test_env_start(env);
	test_req_init(&r, "example.com", DNS_TYPE_A);
	assert_int_equal(upstream_resolve(env->up, &r.req), 0);
	assert_true(test_wait(env, &env->srv[0].n_rx, 1, 1000));
	assert_true(test_wait(env, &env->srv[1].n_rx, 1, 1000)); /* before retry_ms */
	test_answer(&env->srv[1], &env->srv[1].rx[0], DNS_RCODE_NOERROR, 2);
	assert_true(test_wait(env, &r.calls, 1, TEST_WAIT_MS));
	assert_int_equal(r.status, 0);
	assert_int_equal(r.reply[r.len - 1], 2);
	/* the loser's answer comes too late and is dropped */
	test_answer(&env->srv[0], &env->srv[0].rx[0], DNS_RCODE_NOERROR, 1);
	assert_true(test_wait_counter(env, false, 1));
	assert_int_equal(r.calls, 1);
	test_req_done(&r);
	test_env_free(env);
}

static void
test_servfail_next_server(void **state)
{
	struct test_env *env = test_env_new(2, AF_INET, false);
	struct test_req r;
	struct test_dgram *d;
	(void)state;

	test_env_start(env);
	test_req_init(&r, "example.com", DNS_TYPE_A);
	d = test_send_query(env, &r, 0);
	test_answer(&env->srv[0], d, DNS_RCODE_SERVFAIL, 0);
	assert_true(test_wait(env, &env->srv[1].n_rx, 1, 1000)); /* before retry_ms */
	assert_int_equal(r.calls, 0);
	test_answer(&env->srv[1], &env->srv[1].rx[0], DNS_RCODE_NOERROR, 2);
	assert_true(test_wait(env, &r.calls, 1, TEST_WAIT_MS));
	assert_int_equal(r.status, 0);
	assert_int_equal(dnsmsg_rcode(r.reply), DNS_RCODE_NOERROR);
	test_req_done(&r);
	test_env_free(env);
}

static void
test_servfail_passed_on(void **state)
{
	struct test_env *env = test_env_new(1, AF_INET, false);
	struct test_req r;
	struct test_dgram *d;
	msec_t t0;
	(void)state;

	test_env_start(env);
	test_req_init(&r, "example.com", DNS_TYPE_A);
	t0 = clock_now_ms();
	d = test_send_query(env, &r, 0);
	test_answer(&env->srv[0], d, DNS_RCODE_REFUSED, 0);
	assert_true(test_wait(env, &r.calls, 1, TEST_WAIT_MS));
	assert_true(r.done_at - t0 < 2000); /* no other server: passed on at once */
	assert_int_equal(r.status, 0);
	assert_int_equal(dnsmsg_rcode(r.reply), DNS_RCODE_REFUSED);
	test_req_done(&r);
	test_env_free(env);
}

static void
test_backoff(void **state)
{
	struct test_env *env = test_env_new(2, AF_INET, false);
	struct test_req r;
	(void)state;

	env->args.retry_ms = 30;
	test_env_start(env);
	/* server 1 stays silent three times: each query ends up answered by server 2 */
	for (unsigned i = 0; i < 3; i++) {
		test_req_init(&r, "example.com", DNS_TYPE_A);
		test_send_query(env, &r, 1);
		test_answer(&env->srv[1], &env->srv[1].rx[i], DNS_RCODE_NOERROR, 2);
		assert_true(test_wait(env, &r.calls, 1, TEST_WAIT_MS));
		assert_int_equal(r.status, 0);
		test_req_done(&r);
	}
	assert_int_equal(env->srv[0].n_rx, 3);
	/* now it is backed off (1 s): even strict order goes to server 2 directly */
	test_req_init(&r, "example.com", DNS_TYPE_A);
	test_send_query(env, &r, 1);
	assert_int_equal(env->srv[0].n_rx, 3);
	test_answer(&env->srv[1], &env->srv[1].rx[3], DNS_RCODE_NOERROR, 2);
	assert_true(test_wait(env, &r.calls, 1, TEST_WAIT_MS));
	assert_int_equal(env->srv[0].n_rx, 3);
	test_req_done(&r);
	test_env_free(env);
}

static void
test_fastest_prefers_answering_server(void **state)
{
	struct test_env *env = test_env_new(2, AF_INET, false);
	struct test_req r;
	unsigned first_to_1 = 0;
	(void)state;

	env->args.order = UPSTREAM_DNS_FASTEST;
	env->args.retry_ms = 30;
	test_env_start(env);
	/* server 1 never answers; after it timed out once it is slower than server 2 */
	for (unsigned i = 0; i < 40; i++) {
		unsigned before0 = env->srv[0].n_rx, before1 = env->srv[1].n_rx;
		test_req_init(&r, "example.com", DNS_TYPE_A);
		assert_int_equal(upstream_resolve(env->up, &r.req), 0);
		assert_true(test_wait(env, &env->srv[1].n_rx, before1 + 1, TEST_WAIT_MS));
		if (i >= 5 && env->srv[0].n_rx == before0)
			first_to_1++;
		test_answer(&env->srv[1], &env->srv[1].rx[before1], DNS_RCODE_NOERROR, 2);
		assert_true(test_wait(env, &r.calls, 1, TEST_WAIT_MS));
		test_req_done(&r);
	}
	/* 35 queries after warm-up, 1 in 20 explores (and server 1 is backed off anyway) */
	assert_true(first_to_1 >= 30);
	test_env_free(env);
}

/* bogus-priv and domain-needed: what is refused (-ENXIO) and what is forwarded (0) */
static const struct {
	const char *name;
	uint16_t type;
	int rc;
} test_priv_cases[] = {
	{"1.0.168.192.in-addr.arpa", DNS_TYPE_PTR, -ENXIO},
	{"4.3.2.10.in-addr.arpa", DNS_TYPE_PTR, -ENXIO},
	{"1.0.20.172.in-addr.arpa", DNS_TYPE_PTR, -ENXIO},
	{"1.0.0.127.in-addr.arpa", DNS_TYPE_PTR, -ENXIO},
	{"9.9.254.169.in-addr.arpa", DNS_TYPE_PTR, -ENXIO},
	{"1.2.100.100.in-addr.arpa", DNS_TYPE_PTR, -ENXIO},
	{"1.2.3.d.f.ip6.arpa", DNS_TYPE_PTR, -ENXIO},
	{"0.0.9.e.f.ip6.arpa", DNS_TYPE_PTR, -ENXIO},
	{"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa", DNS_TYPE_PTR,
	 -ENXIO},
	{"myhost", DNS_TYPE_A, -ENXIO},
	{"MyHost", DNS_TYPE_AAAA, -ENXIO},
	/* forwarded */
	{"1.0.32.172.in-addr.arpa", DNS_TYPE_PTR, 0},
	{"1.2.128.100.in-addr.arpa", DNS_TYPE_PTR, 0},
	{"8.8.8.8.in-addr.arpa", DNS_TYPE_PTR, 0},
	{"0.0.c.e.f.ip6.arpa", DNS_TYPE_PTR, 0},
	{"2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa", DNS_TYPE_PTR,
	 0},
	{"1.0.168.192.in-addr.arpa", DNS_TYPE_A, 0},
	{"myhost.lan", DNS_TYPE_A, 0},
};

static void
test_bogus_priv_domain_needed(void **state)
{
	struct test_env *env = test_env_new(1, AF_INET, false);
	struct test_req r[ARRAY_SIZE(test_priv_cases)];
	unsigned sent = 0;
	(void)state;

	env->args.bogus_priv = true;
	env->args.domain_needed = true;
	test_env_start(env);
	for (unsigned i = 0; i < ARRAY_SIZE(test_priv_cases); i++) {
		test_req_init(&r[i], test_priv_cases[i].name, test_priv_cases[i].type);
		assert_int_equal(upstream_resolve(env->up, &r[i].req), test_priv_cases[i].rc);
		sent += test_priv_cases[i].rc == 0;
	}
	assert_true(test_wait(env, &env->srv[0].n_rx, sent, TEST_WAIT_MS));
	/* nothing went out for the refused ones: each datagram is one of the forwarded names */
	for (unsigned k = 0; k < env->srv[0].n_rx; k++) {
		const struct test_dgram *d = &env->srv[0].rx[k];
		bool match = false;
		for (unsigned i = 0; i < ARRAY_SIZE(test_priv_cases); i++)
			match |= test_priv_cases[i].rc == 0 &&
				 d->len >= DNS_HDR_LEN + (size_t)r[i].req.q.qname_len &&
				 memcmp(test_question_of(d), r[i].qname, r[i].req.q.qname_len) == 0;
		assert_true(match);
	}
	for (unsigned i = 0; i < ARRAY_SIZE(test_priv_cases); i++) {
		if (test_priv_cases[i].rc == 0)
			upstream_cancel(env->up, &r[i].req);
		assert_int_equal(r[i].calls, 0);
	}
	test_env_free(env);
}

static void
test_no_bogus_priv_by_default(void **state)
{
	struct test_env *env = test_env_new(1, AF_INET, false);
	struct test_req r;
	(void)state;

	test_env_start(env);
	test_req_init(&r, "1.0.168.192.in-addr.arpa", DNS_TYPE_PTR);
	test_send_query(env, &r, 0);
	upstream_cancel(env->up, &r.req);
	test_req_init(&r, "myhost", DNS_TYPE_A);
	test_send_query(env, &r, 0);
	upstream_cancel(env->up, &r.req);
	test_env_free(env);
}

static void
test_stats_format(void **state)
{
	struct test_env *env = test_env_new(2, AF_INET, false);
	struct test_lines l = {.n = 0};
	struct test_req r;
	struct test_dgram *d;
	char want[256];
	unsigned lat;
	(void)state;

	test_env_start(env);
	test_req_init(&r, "nx.example.com", DNS_TYPE_A);
	d = test_send_query(env, &r, 0);
	test_answer(&env->srv[0], d, DNS_RCODE_NXDOMAIN, 0);
	assert_true(test_wait(env, &r.calls, 1, TEST_WAIT_MS));
	assert_int_equal(r.status, 0);
	assert_int_equal(dnsmsg_rcode(r.reply), DNS_RCODE_NXDOMAIN);
	env->up->ops->stats(env->up, test_stats_line, &l);
	assert_int_equal(l.n, 3);
	snprintf(want, sizeof(want),
		 "server 127.0.0.1#%u: queries sent 1, retried 0, failed 0, nxdomain replies 1, "
		 "avg. latency ",
		 env->srv[0].port);
	assert_memory_equal(l.line[0], want, strlen(want));
	assert_int_equal(sscanf(l.line[0] + strlen(want), "%ums", &lat), 1);
	assert_string_equal(l.line[0] + strlen(l.line[0]) - 2, "ms");
	snprintf(want, sizeof(want),
		 "server 127.0.0.1#%u: queries sent 0, retried 0, failed 0, nxdomain replies 0, "
		 "avg. latency 0ms",
		 env->srv[1].port);
	assert_string_equal(l.line[1], want);
	assert_string_equal(l.line[2], "forwarder: bogus replies 0, garbage replies 0, pending 0");
	test_req_done(&r);
	test_env_free(env);
}

static void
test_stats_retried_failed(void **state)
{
	struct test_env *env = test_env_new(1, AF_INET, false);
	struct test_lines l = {.n = 0};
	struct test_req r;
	char want[256];
	(void)state;

	env->args.retry_ms = 40;
	test_env_start(env);
	test_req_init(&r, "example.com", DNS_TYPE_A);
	test_send_query(env, &r, 0);
	/* one server: the retry goes to it again, and the second try is answered */
	assert_true(test_wait(env, &env->srv[0].n_rx, 2, TEST_WAIT_MS));
	test_answer(&env->srv[0], &env->srv[0].rx[1], DNS_RCODE_NOERROR, 1);
	assert_true(test_wait(env, &r.calls, 1, TEST_WAIT_MS));
	env->up->ops->stats(env->up, test_stats_line, &l);
	snprintf(want, sizeof(want),
		 "server 127.0.0.1#%u: queries sent 2, retried 1, failed 1, nxdomain replies 0, "
		 "avg. latency ",
		 env->srv[0].port);
	assert_memory_equal(l.line[0], want, strlen(want));
	test_req_done(&r);
	test_env_free(env);
}

static void
test_log_queries(void **state)
{
	struct test_env *env = test_env_new(1, AF_INET, false);
	struct test_req r;
	char buf[4096], want[128];
	FILE *tmp = tmpfile();
	int saved = dup(STDERR_FILENO);
	size_t n;
	(void)state;

	assert_non_null(tmp);
	assert_true(saved >= 0);
	env->args.log_queries = true;
	test_env_start(env);
	test_req_init(&r, "Log.Example.com", DNS_TYPE_A);
	/* log.c writes to stderr until log_open() says otherwise: catch it */
	fflush(stderr);
	dup2(fileno(tmp), STDERR_FILENO);
	assert_int_equal(upstream_resolve(env->up, &r.req), 0);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	upstream_cancel(env->up, &r.req);
	rewind(tmp);
	n = fread(buf, 1, sizeof(buf) - 1, tmp);
	buf[n] = '\0';
	fclose(tmp);
	snprintf(want, sizeof(want), "forwarded log.example.com to 127.0.0.1#%u", env->srv[0].port);
	assert_non_null(strstr(buf, want));
	test_env_free(env);
}

static void
test_ipv6_server(void **state)
{
	struct test_env *env = test_env_new(1, AF_INET6, false);
	struct test_req r;
	struct test_dgram *d;
	(void)state;

	if (!env)
		skip();
	test_env_start(env);
	test_req_init(&r, "example.com", DNS_TYPE_AAAA);
	d = test_send_query(env, &r, 0);
	assert_int_equal(d->from.ss_family, AF_INET6);
	test_answer(&env->srv[0], d, DNS_RCODE_NOERROR, 1);
	assert_true(test_wait(env, &r.calls, 1, TEST_WAIT_MS));
	assert_int_equal(r.status, 0);
	test_req_done(&r);
	test_env_free(env);
}

static void
test_pending_cap(void **state)
{
	struct test_env *env = test_env_new(1, AF_INET, false);
	enum { N = 20000 };
	struct test_req *r = calloc(N, sizeof(*r));
	unsigned accepted = 0;
	int rc = 0;
	(void)state;

	assert_non_null(r);
	test_env_start(env);
	for (unsigned i = 0; i < N; i++) {
		test_req_init(&r[i], "example.com", DNS_TYPE_A);
		rc = upstream_resolve(env->up, &r[i].req);
		if (rc < 0)
			break;
		accepted++;
	}
	assert_int_equal(rc, -EBUSY);
	assert_true(accepted >= 1000 && accepted < N);
	for (unsigned i = 0; i < accepted; i++)
		upstream_cancel(env->up, &r[i].req);
	/* room again */
	assert_int_equal(upstream_resolve(env->up, &r[0].req), 0);
	upstream_cancel(env->up, &r[0].req);
	free(r);
	test_env_free(env);
}

static void
test_no_servers_declines(void **state)
{
	struct event_base *base = event_base_new();
	struct upstream_dns_args args = {.n_servers = 0, .timeout_ms = 1000, .retry_ms = 100};
	struct upstream *up = NULL;
	struct test_req r;
	(void)state;

	assert_int_equal(upstream_dns_ops.create(&up, base, &args), 0);
	test_req_init(&r, "example.com", DNS_TYPE_A);
	assert_int_equal(upstream_resolve(up, &r.req), -ENOENT);
	upstream_free(up);
	upstream_free(NULL);
	event_base_free(base);
}

/* --dns-loop-detect: a server marked looping is never asked; one that was being asked hands
 * its queries on at once; with every server looping resolve() says so (-ELOOP). */
static void
test_looping_server_skipped(void **state)
{
	struct test_env *env = test_env_new(2, AF_INET, false);
	struct test_req r;
	struct test_dgram *d;
	bool all = true;
	(void)state;

	test_env_start(env);
	assert_int_equal(upstream_dns_set_looping(env->up, &env->addrs[0].ss, true, &all), 1);
	assert_false(all);
	test_req_init(&r, "example.com", DNS_TYPE_A);
	d = test_send_query(env, &r, 1); /* strict order, yet not the first server */
	test_answer(&env->srv[1], d, DNS_RCODE_NOERROR, 1);
	assert_true(test_wait(env, &r.calls, 1, TEST_WAIT_MS));
	assert_int_equal(r.status, 0);
	assert_int_equal(env->srv[0].n_rx, 0);
	test_req_done(&r);
	test_env_free(env);
}

static void
test_loop_found_moves_waiting_query(void **state)
{
	struct test_env *env = test_env_new(2, AF_INET, false);
	struct test_req r;
	msec_t t0;
	(void)state;

	env->args.retry_ms = 2000;
	test_env_start(env);
	test_req_init(&r, "example.com", DNS_TYPE_A);
	test_send_query(env, &r, 0);
	t0 = clock_now_ms();
	upstream_dns_set_looping(env->up, &env->addrs[0].ss, true, NULL);
	assert_int_equal(r.calls, 0); /* never from inside the call */
	assert_true(test_wait(env, &env->srv[1].n_rx, 1, TEST_WAIT_MS));
	assert_true(clock_now_ms() - t0 < 1000); /* not after the 2 s retry interval */
	test_answer(&env->srv[1], &env->srv[1].rx[0], DNS_RCODE_NOERROR, 2);
	assert_true(test_wait(env, &r.calls, 1, TEST_WAIT_MS));
	assert_int_equal(r.status, 0);
	assert_int_equal(r.reply[r.len - 1], 2);
	test_req_done(&r);
	test_env_free(env);
}

/* --all-servers: the other server is being asked already; the query goes on waiting for it,
 * without a second query to it and without counting it as failed. */
static void
test_loop_found_others_asked(void **state)
{
	struct test_env *env = test_env_new(2, AF_INET, false);
	struct test_lines l = {.n = 0};
	struct test_req r;
	unsigned never = 0;
	(void)state;

	env->args.order = UPSTREAM_DNS_ALL;
	test_env_start(env);
	test_req_init(&r, "example.com", DNS_TYPE_A);
	assert_int_equal(upstream_resolve(env->up, &r.req), 0);
	assert_true(test_wait(env, &env->srv[0].n_rx, 1, 1000));
	assert_true(test_wait(env, &env->srv[1].n_rx, 1, 1000));
	upstream_dns_set_looping(env->up, &env->addrs[0].ss, true, NULL);
	test_wait(env, &never, 1, 100);
	assert_int_equal(env->srv[1].n_rx, 1);
	assert_int_equal(r.calls, 0);
	test_answer(&env->srv[1], &env->srv[1].rx[0], DNS_RCODE_NOERROR, 2);
	assert_true(test_wait(env, &r.calls, 1, TEST_WAIT_MS));
	assert_int_equal(r.status, 0);
	env->up->ops->stats(env->up, test_stats_line, &l);
	assert_non_null(strstr(l.line[1], "failed 0,"));
	assert_non_null(strstr(l.line[0], "loops back to us: not used"));
	test_req_done(&r);
	test_env_free(env);
}

static void
test_all_looping(void **state)
{
	struct test_env *env = test_env_new(1, AF_INET, false);
	struct test_req r, r2;
	bool all = false;
	msec_t t0;
	(void)state;

	test_env_start(env);
	test_req_init(&r, "example.com", DNS_TYPE_A);
	test_send_query(env, &r, 0);
	t0 = clock_now_ms();
	assert_int_equal(upstream_dns_set_looping(env->up, &env->addrs[0].ss, true, &all), 1);
	assert_true(all);
	/* the query waiting on it ends now, with an error, not at its 5 s deadline */
	assert_true(test_wait(env, &r.calls, 1, TEST_WAIT_MS));
	assert_true(r.status < 0);
	assert_true(clock_now_ms() - t0 < 1000);
	test_req_init(&r2, "example.org", DNS_TYPE_A);
	assert_int_equal(upstream_resolve(env->up, &r2.req), -ELOOP);
	/* back in service: asked again */
	assert_int_equal(upstream_dns_set_looping(env->up, &env->addrs[0].ss, false, &all), 1);
	assert_false(all);
	test_send_query(env, &r2, 0);
	upstream_cancel(env->up, &r2.req);
	test_req_done(&r);
	test_env_free(env);
}

static void
test_free_with_pending(void **state)
{
	/* The rule of free() (upstream.h): requests still pending are completed, once each, with
	 * -ECANCELED, inside free() - never forgotten (a retired forwarder freed early). */
	struct test_env *env = test_env_new(1, AF_INET, false);
	struct test_req r[2];
	struct test_dgram *d;
	unsigned never = 0;
	(void)state;

	test_env_start(env);
	test_req_init(&r[0], "example.com", DNS_TYPE_A);
	test_req_init(&r[1], "example.org", DNS_TYPE_AAAA);
	d = test_send_query(env, &r[0], 0);
	test_send_query(env, &r[1], 0);
	upstream_free(env->up);
	env->up = NULL;
	for (unsigned i = 0; i < 2; i++) {
		assert_int_equal(r[i].calls, 1);
		assert_int_equal(r[i].status, -ECANCELED);
		assert_null(r[i].reply);
		assert_null(r[i].req.priv);
	}
	/* a late reply reaches nothing: the sockets are closed, nothing fires again */
	test_answer(&env->srv[0], d, DNS_RCODE_NOERROR, 1);
	test_wait(env, &never, 1, 100);
	assert_int_equal(r[0].calls, 1);
	assert_int_equal(r[1].calls, 1);
	test_env_free(env);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normal_reply),
		cmocka_unit_test(test_wrong_id_ignored),
		cmocka_unit_test(test_wrong_source_port_ignored),
		cmocka_unit_test(test_wrong_question_ignored),
		cmocka_unit_test(test_garbage_counted),
		cmocka_unit_test(test_compressed_question_dropped),
		cmocka_unit_test(test_ids_and_ports_random),
		cmocka_unit_test(test_query_port_fixed),
		cmocka_unit_test(test_retry_next_server),
		cmocka_unit_test(test_late_reply_accepted),
		cmocka_unit_test(test_all_silent_timeout),
		cmocka_unit_test(test_truncated_retries_tcp),
		cmocka_unit_test(test_tcp_failure_next_server),
		cmocka_unit_test(test_cancel_never_done),
		cmocka_unit_test(test_strict_order),
		cmocka_unit_test(test_all_servers),
		cmocka_unit_test(test_servfail_next_server),
		cmocka_unit_test(test_servfail_passed_on),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_fastest_prefers_answering_server),
		cmocka_unit_test(test_bogus_priv_domain_needed),
		cmocka_unit_test(test_no_bogus_priv_by_default),
		cmocka_unit_test(test_stats_format),
		cmocka_unit_test(test_stats_retried_failed),
		cmocka_unit_test(test_log_queries),
		cmocka_unit_test(test_ipv6_server),
		cmocka_unit_test(test_pending_cap),
		cmocka_unit_test(test_no_servers_declines),
		cmocka_unit_test(test_free_with_pending),
		cmocka_unit_test(test_looping_server_skipped),
		cmocka_unit_test(test_loop_found_moves_waiting_query),
		cmocka_unit_test(test_loop_found_others_asked),
		cmocka_unit_test(test_all_looping),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
