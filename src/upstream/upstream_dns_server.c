/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * upstream_dns_server.c - the forwarder's servers and sockets: per server the smoothed RTT,
 * the back-off of a server that keeps failing, the counters behind SIGUSR1's lines and
 * /metrics, and the order in which a query asks the servers; and the pool of UDP sockets on
 * random ports (RFC 5452) that tries go out on, with the read callback that hands each datagram
 * to upstream_dns.c. See upstream_dns_impl.h for what the forwarder's files share.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <event2/event.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kubemasq/defs.h"
#include "kubemasq/dnsmsg.h"
#include "kubemasq/log.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "upstream/upstream_dns_impl.h"

/* --- servers --- */

static uint16_t
upstream_dns_server_sa_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

bool
upstream_dns_server_sa_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family ||
	    upstream_dns_server_sa_port(a) != upstream_dns_server_sa_port(b))
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->ss_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			      &((const struct sockaddr_in6 *)b)->sin6_addr,
			      sizeof(struct in6_addr)) == 0;
	return false;
}

int
upstream_dns_server_init(struct upstream_dns_server *s, const struct config_sockaddr *ca)
{
	char addr[INET6_ADDRSTRLEN];
	const void *ip;
	uint16_t port;

	if (ca->ss.ss_family == AF_INET)
		ip = &((const struct sockaddr_in *)&ca->ss)->sin_addr;
	else if (ca->ss.ss_family == AF_INET6)
		ip = &((const struct sockaddr_in6 *)&ca->ss)->sin6_addr;
	else
		return -EAFNOSUPPORT;
	if (!inet_ntop(ca->ss.ss_family, ip, addr, sizeof(addr)))
		return -errno;
	memset(s, 0, sizeof(*s));
	s->ss = ca->ss;
	s->len = ca->ss.ss_family == AF_INET ? sizeof(struct sockaddr_in)
					     : sizeof(struct sockaddr_in6);
	port = upstream_dns_server_sa_port(&s->ss);
	snprintf(s->stats_name, sizeof(s->stats_name), "%s#%u", addr, port);
	if (port == 53)
		snprintf(s->log_name, sizeof(s->log_name), "%s", addr);
	else
		snprintf(s->log_name, sizeof(s->log_name), "%s#%u", addr, port);
	return 0;
}

void
upstream_dns_server_answered(struct upstream_dns_server *s, msec_t rtt, unsigned rcode)
{
	if (rtt > UPSTREAM_DNS_SRTT_MAX_MS)
		rtt = UPSTREAM_DNS_SRTT_MAX_MS;
	s->answered++;
	s->latency_sum += rtt;
	metrics_hist_observe(&s->latency, rtt * 1000); /* the tries are timed in ms */
	if (rcode == DNS_RCODE_NXDOMAIN)
		s->nxdomain++;
	/* unbound-style EWMA with weight 1/8: srtt8 holds 8 * srtt */
	if (!s->measured)
		s->srtt8 = (unsigned)rtt * 8;
	else
		s->srtt8 = s->srtt8 - s->srtt8 / 8 + (unsigned)rtt;
	s->measured = true;
	s->fails = 0;
	s->backoff_ms = 0;
	s->backoff_until = 0;
}

void
upstream_dns_server_failed(struct upstream_dns *up, struct upstream_dns_server *s)
{
	static struct log_ratelimit rl = LOG_RATELIMIT_INIT(10000, 5);
	msec_t now = clock_now_ms();

	s->failed++;
	s->fails++;
	/* a timeout says the server is at least as slow as the retry interval */
	s->srtt8 = MIN(MAX(s->srtt8 * 2, up->retry_ms * 8), UPSTREAM_DNS_SRTT_MAX_MS * 8);
	s->measured = true;
	/* Tries sent before the current back-off began keep failing while it runs; only a failure
	 * after it ended may extend it, or one burst would push it to the maximum at once. */
	if (s->fails < UPSTREAM_DNS_FAIL_THRESHOLD || now < s->backoff_until)
		return;
	s->backoff_ms = s->backoff_ms ? MIN(s->backoff_ms * 2, UPSTREAM_DNS_BACKOFF_MAX_MS)
				      : UPSTREAM_DNS_BACKOFF_MIN_MS;
	s->backoff_until = now + s->backoff_ms;
	log_ratelimited(&rl, LOG_WARNING, "server %s not responding, backing off for %llu ms",
			s->log_name, (unsigned long long)s->backoff_ms);
}

/* --- server order --- */

static int
upstream_dns_server_cmp_srtt(const void *a, const void *b, void *arg)
{
	const struct upstream_dns_server *servers = arg;
	unsigned x = servers[*(const unsigned *)a].srtt8, y = servers[*(const unsigned *)b].srtt8;

	return x < y ? -1 : x > y;
}

/* Fill q->order: servers not backed off, in configuration order or fastest first; if all are
 * backed off, the one whose back-off ends soonest (we never fail without trying). */
void
upstream_dns_server_plan(struct upstream_dns *up, struct upstream_dns_query *q)
{
	msec_t now = clock_now_ms();
	unsigned n = 0, soonest = UINT_MAX;

	for (unsigned i = 0; i < up->n_servers; i++) {
		if (up->servers[i].looping)
			continue;
		if (up->servers[i].backoff_until <= now)
			q->order[n++] = i;
		if (soonest == UINT_MAX ||
		    up->servers[i].backoff_until < up->servers[soonest].backoff_until)
			soonest = i;
	}
	if (n == 0 && soonest != UINT_MAX)
		q->order[n++] = soonest;
	if (up->order == UPSTREAM_DNS_FASTEST && n > 1) {
		qsort_r(q->order, n, sizeof(q->order[0]), upstream_dns_server_cmp_srtt,
			up->servers);
		if (upstream_dns_rand_below(up, UPSTREAM_DNS_EXPLORE) == 0) {
			unsigned j = 1 + upstream_dns_rand_below(up, n - 1), tmp = q->order[0];
			q->order[0] = q->order[j];
			q->order[j] = tmp;
		}
	}
	q->n_order = n;
}

/* --- socket pool --- */

static int
upstream_dns_server_bind(struct upstream_dns *up, int fd, int family)
{
	struct sockaddr_storage ss = {.ss_family = (sa_family_t)family};
	socklen_t len =
		family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	unsigned span = (unsigned)up->max_port - up->min_port + 1;

	for (int i = 0; i <= UPSTREAM_DNS_BIND_TRIES; i++) {
		uint16_t port;

		if (up->query_port)
			port = up->query_port;
		else if (i < UPSTREAM_DNS_BIND_TRIES)
			port = (uint16_t)(up->min_port + upstream_dns_rand_below(up, span));
		else
			port = 0; /* range exhausted: the kernel randomises ephemeral ports too */
		if (family == AF_INET)
			sin->sin_port = htons(port);
		else
			sin6->sin6_port = htons(port);
		if (bind(fd, (struct sockaddr *)&ss, len) == 0)
			return 0;
		if (up->query_port || (errno != EADDRINUSE && errno != EACCES))
			return -errno;
	}
	return -EADDRINUSE;
}

static void upstream_dns_server_on_read(evutil_socket_t fd, short what, void *arg);

static struct upstream_dns_sock *
upstream_dns_server_sock_open(struct upstream_dns *up, int family, int *err)
{
	struct upstream_dns_sock *sock = calloc(1, sizeof(*sock));
	int one = 1;

	if (!sock) {
		*err = -ENOMEM;
		return NULL;
	}
	sock->up = up;
	sock->fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (sock->fd < 0) {
		*err = -errno;
		free(sock);
		return NULL;
	}
	if (family == AF_INET6)
		setsockopt(sock->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	*err = upstream_dns_server_bind(up, sock->fd, family);
	if (*err == 0) {
		sock->ev = event_new(up->evb, sock->fd, EV_READ | EV_PERSIST,
				     upstream_dns_server_on_read, sock);
		if (!sock->ev || event_add(sock->ev, NULL) < 0)
			*err = -ENOMEM;
	}
	if (*err) {
		if (sock->ev)
			event_free(sock->ev);
		close(sock->fd);
		free(sock);
		return NULL;
	}
	sock->serial = ++up->next_serial;
	return sock;
}

static void
upstream_dns_server_sock_close(struct upstream_dns_sock *sock)
{
	if (!sock)
		return;
	event_free(sock->ev);
	close(sock->fd);
	free(sock);
}

void
upstream_dns_server_sock_unref(struct upstream_dns_sock *sock)
{
	assert(sock->refs > 0);
	sock->refs--;
	if (sock->retired && sock->refs == 0 && !sock->busy)
		upstream_dns_server_sock_close(sock);
}

struct upstream_dns_sock *
upstream_dns_server_sock_pick(struct upstream_dns *up, int family, unsigned *slot, int *err)
{
	struct upstream_dns_pool *pool = family == AF_INET6 ? &up->pool6 : &up->pool4;
	unsigned i = upstream_dns_rand_below(up, pool->n_slots);

	*slot = i;
	if (!pool->slot[i])
		pool->slot[i] = upstream_dns_server_sock_open(up, family, err);
	return pool->slot[i];
}

/* The socket carried another query: retire it when it has carried enough. */
void
upstream_dns_server_sock_used(struct upstream_dns *up, struct upstream_dns_sock *sock, int family,
			      unsigned slot)
{
	struct upstream_dns_pool *pool = family == AF_INET6 ? &up->pool6 : &up->pool4;

	sock->uses++;
	if (up->query_port || sock->uses < UPSTREAM_DNS_SOCK_USES)
		return;
	pool->slot[slot] = NULL;
	sock->retired = true;
	if (sock->refs == 0 && !sock->busy)
		upstream_dns_server_sock_close(sock);
}

static void
upstream_dns_server_on_read(evutil_socket_t fd, short what UNUSED, void *arg)
{
	struct upstream_dns_sock *sock = arg;
	struct upstream_dns *up = sock->up;
	struct mmsghdr msgs[UPSTREAM_DNS_RECV_BATCH];
	struct iovec iov[UPSTREAM_DNS_RECV_BATCH];
	struct sockaddr_storage from[UPSTREAM_DNS_RECV_BATCH];

	sock->busy = true;
	for (int round = 0; round < UPSTREAM_DNS_RECV_ROUNDS; round++) {
		int n;

		memset(msgs, 0, sizeof(msgs));
		for (unsigned i = 0; i < UPSTREAM_DNS_RECV_BATCH; i++) {
			iov[i].iov_base = up->rbuf + i * up->rbuf_size;
			iov[i].iov_len = up->rbuf_size;
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
			msgs[i].msg_hdr.msg_name = &from[i];
			msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
		}
		n = recvmmsg(fd, msgs, UPSTREAM_DNS_RECV_BATCH, MSG_DONTWAIT, NULL);
		for (int i = 0; i < n; i++)
			upstream_dns_on_dgram(up, sock, iov[i].iov_base, msgs[i].msg_len, &from[i],
					      (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0);
		if (n < UPSTREAM_DNS_RECV_BATCH)
			break;
	}
	sock->busy = false;
	if (sock->retired && sock->refs == 0)
		upstream_dns_server_sock_close(sock);
}

void
upstream_dns_server_pools_close(struct upstream_dns *up)
{
	for (unsigned i = 0; i < UPSTREAM_DNS_POOL_SIZE; i++) {
		upstream_dns_server_sock_close(up->pool4.slot[i]);
		upstream_dns_server_sock_close(up->pool6.slot[i]);
	}
}

/* --- statistics --- */

void
upstream_dns_server_stats(struct upstream *u, upstream_stats_fn *line, void *ctx)
{
	struct upstream_dns *up = (struct upstream_dns *)u;
	char buf[256];

	for (size_t i = 0; i < up->n_servers; i++) {
		const struct upstream_dns_server *s = &up->servers[i];
		snprintf(buf, sizeof(buf),
			 "server %s: queries sent %lu, retried %lu, failed %lu, "
			 "nxdomain replies %lu, avg. latency %llums%s",
			 s->stats_name, s->sent, s->retried, s->failed, s->nxdomain,
			 s->answered ? s->latency_sum / s->answered : 0ULL,
			 s->looping ? ", loops back to us: not used" : "");
		line(ctx, buf);
	}
	snprintf(buf, sizeof(buf), "forwarder: bogus replies %lu, garbage replies %lu, pending %u",
		 up->bogus, up->garbage, up->n_pending);
	line(ctx, buf);
}

/* Per server: failures are the timeouts, errors and SERVFAIL/REFUSED replies, as in the
 * SIGUSR1 line; queries count retries, as dnsmasq's servers.bind does. */
void
upstream_dns_server_metrics(struct upstream *u, upstream_metrics_fn *each, void *ctx)
{
	struct upstream_dns *up = (struct upstream_dns *)u;

	for (size_t i = 0; i < up->n_servers; i++) {
		const struct upstream_dns_server *s = &up->servers[i];
		struct upstream_server_metrics m = {
			.upstream = "dns",
			.server = s->stats_name,
			.queries = s->sent,
			.failures = s->failed,
			.latency = &s->latency,
		};

		each(ctx, &m);
	}
}
