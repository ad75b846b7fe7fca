/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * upstream_dns.c - the network forwarder (dnsmasq's --server). Each query goes out over UDP with
 * a random ID from a randomly chosen socket of a pool whose sockets sit on random ports and are
 * retired after a few uses (RFC 5452); a reply counts only if it comes from the address and port
 * the try went to, with the try's ID and the same question. A try that stays unanswered for
 * retry_ms hands over to the next server (its late reply still counts) until timeout_ms ends
 * the query; SERVFAIL/REFUSED move on as well, TC=1 repeats the query over TCP, and servers that
 * keep timing out are backed off. Completion is always delivered from the event loop.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "kubemasq/defs.h"
#include "kubemasq/dnsmsg.h"
#include "kubemasq/hash.h"
#include "kubemasq/log.h"
#include "upstream_dns.h"

/*
 * The pending table's key is (socket serial << 16 | ID), chosen by us, so nobody can aim
 * collisions at it; still, house style wants a seeded hash for uthash: the shared keyed
 * SipHash-1-3 (five rounds for an 8-byte key: cheap next to a sendto()).
 */
static uint64_t upstream_dns_seed[2];

static inline unsigned
upstream_dns_hash(const void *key, size_t len)
{
	return (unsigned)hash_siphash13(upstream_dns_seed, key, len);
}

#define HASH_FUNCTION(keyptr, keylen, hashv) ((hashv) = upstream_dns_hash((keyptr), (keylen)))
#include <uthash.h>

/* Sockets per address family. Each query picks one at random, so together with the random port
 * of each socket an attacker must guess among ~7 bits of socket choice on top of the 16-bit ID,
 * while the port range itself keeps moving (see UPSTREAM_DNS_SOCK_USES). 128 stays far below
 * any fd limit and is what dnsmasq's default --dns-forward-max spreads over in practice. */
#define UPSTREAM_DNS_POOL_SIZE 128
/* Queries one socket carries before it is retired and replaced by a fresh random port. */
#define UPSTREAM_DNS_SOCK_USES 64
/* bind() attempts on random ports before falling back to the kernel's own (random) choice. */
#define UPSTREAM_DNS_BIND_TRIES 16
/* Tries waiting for a reply, per instance (memory cap; query.c's --dns-forward-max sits above). */
#define UPSTREAM_DNS_MAX_TRIES 16384
/* Tries per query, counting every retransmission and every server of --all-servers. */
#define UPSTREAM_DNS_QUERY_MAX_TRIES 32
/* Datagrams per recvmmsg() call, and calls per readable event (fairness between sockets). */
#define UPSTREAM_DNS_RECV_BATCH	 16
#define UPSTREAM_DNS_RECV_ROUNDS 4
/* Back-off: after this many consecutive failures, skip a server for 1 s, doubling up to 60 s. */
#define UPSTREAM_DNS_FAIL_THRESHOLD 3
#define UPSTREAM_DNS_BACKOFF_MIN_MS 1000
#define UPSTREAM_DNS_BACKOFF_MAX_MS 60000
/* With order FASTEST, one query in this many goes first to another server, so that a server
 * that got slow once (or recovered) gets measured again. */
#define UPSTREAM_DNS_EXPLORE 20
/* Smoothed RTTs are kept in 1/8 ms and never exceed this many ms. */
#define UPSTREAM_DNS_SRTT_MAX_MS 120000
/* Query size: header, name, question tail, OPT. */
#define UPSTREAM_DNS_QUERY_MAX		(DNS_HDR_LEN + DNS_MAX_NAME + 4 + 11)
#define UPSTREAM_DNS_DEFAULT_TIMEOUT_MS 10000
#define UPSTREAM_DNS_DEFAULT_RETRY_MS	1000

struct upstream_dns;
struct upstream_dns_query;

struct upstream_dns_server {
	struct sockaddr_storage ss;
	socklen_t len;
	char log_name[INET6_ADDRSTRLEN + 8];   /* dnsmasq's: "#port" only when not 53 */
	char stats_name[INET6_ADDRSTRLEN + 8]; /* always "addr#port" */
	bool measured;
	unsigned srtt8; /* smoothed RTT, 1/8 ms */
	unsigned fails; /* consecutive timeouts/errors */
	msec_t backoff_ms, backoff_until;
	unsigned long sent, retried, failed, nxdomain, answered;
	unsigned long long latency_sum;
	struct metrics_hist latency; /* first send of a try to its reply, for /metrics */
};

struct upstream_dns_sock {
	struct upstream_dns *up;
	struct event *ev;
	int fd;
	uint32_t serial;
	unsigned uses;
	unsigned refs; /* tries that wait on this socket */
	bool retired;  /* out of the pool: closed when refs drops to 0 */
	bool busy;     /* inside its read callback: not closed before it returns */
};

struct upstream_dns_try {
	UT_hash_handle hh;
	uint64_t key; /* sock->serial << 16 | id */
	struct upstream_dns_query *query;
	struct upstream_dns_sock *sock;
	struct upstream_dns_try *next;
	unsigned server;
	uint16_t id;
	msec_t sent_at;
	bool over; /* timed out or failed, already counted */
};

struct upstream_dns_tcp {
	struct upstream_dns_query *query;
	struct event *ev;
	int fd;
	unsigned server;
	uint16_t id;
	bool connected, writing_done;
	msec_t started;
	size_t out_len, out_off;
	uint8_t out[2 + UPSTREAM_DNS_QUERY_MAX];
	uint8_t hdr[2];
	size_t in_need, in_off; /* in_need 0: still reading the length */
	uint8_t *in;
};

struct upstream_dns_query {
	struct upstream_dns *up;
	struct upstream_req *req;
	struct upstream_dns_query *prev, *next;
	struct event *timer;
	struct upstream_dns_try *tries;
	struct upstream_dns_tcp *tcp;
	msec_t deadline;
	msec_t timer_at; /* when the timer is due, by time_now_ms() */
	unsigned n_tries;
	unsigned next_idx; /* position in order[] of the next server to try */
	unsigned n_order;
	unsigned *order; /* servers to try, best first (wraps around) */
	uint8_t *bad;	 /* per server: answered SERVFAIL/REFUSED, do not ask again */
	uint8_t *held;	 /* the last SERVFAIL/REFUSED reply, passed on if nothing better */
	size_t held_len;
	bool at_deadline; /* the timer is armed for the deadline, not for a retry */
};

struct upstream_dns_pool {
	struct upstream_dns_sock *slot[UPSTREAM_DNS_POOL_SIZE];
	unsigned n_slots;
};

struct upstream_dns {
	struct upstream base;
	struct event_base *evb;
	struct upstream_dns_server *servers;
	size_t n_servers;
	enum upstream_dns_order order;
	uint16_t edns_size;
	uint16_t query_port, min_port, max_port;
	unsigned timeout_ms, retry_ms;
	bool log_queries, bogus_priv, domain_needed;
	struct upstream_dns_pool pool4, pool6;
	struct upstream_dns_try *pending; /* uthash by key */
	unsigned n_pending;
	struct upstream_dns_query *queries;
	uint32_t next_serial;
	uint8_t rnd[256];
	size_t rnd_off;
	uint8_t *rbuf;
	size_t rbuf_size;
	unsigned long bogus, garbage;
};

static void upstream_dns_step_or_finish(struct upstream_dns_query *q);

/* --- randomness --- */

static void
upstream_dns_rand_fill(void *buf, size_t len)
{
	static struct log_ratelimit rl = LOG_RATELIMIT_INIT(10000, 1);
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);
		if (n < 0) {
			/* Only EINTR is possible once the pool is initialised (Linux >= 3.17). */
			if (errno == EINTR)
				continue;
			log_ratelimited(&rl, LOG_ERR, "getrandom: %s", strerror(errno));
			return;
		}
		p += n;
		len -= (size_t)n;
	}
}

static uint32_t
upstream_dns_rand32(struct upstream_dns *up)
{
	uint32_t v;

	if (up->rnd_off + sizeof(v) > sizeof(up->rnd)) {
		upstream_dns_rand_fill(up->rnd, sizeof(up->rnd));
		up->rnd_off = 0;
	}
	memcpy(&v, up->rnd + up->rnd_off, sizeof(v));
	up->rnd_off += sizeof(v);
	return v;
}

/* Uniform in [0, n) without modulo bias. */
static uint32_t
upstream_dns_rand_below(struct upstream_dns *up, uint32_t n)
{
	uint32_t limit, v;

	if (n <= 1)
		return 0;
	limit = UINT32_MAX - UINT32_MAX % n;
	do
		v = upstream_dns_rand32(up);
	while (v >= limit);
	return v % n;
}

/* --- servers --- */

static uint16_t
upstream_dns_sa_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

static bool
upstream_dns_sa_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family || upstream_dns_sa_port(a) != upstream_dns_sa_port(b))
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

static int
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
	port = upstream_dns_sa_port(&s->ss);
	snprintf(s->stats_name, sizeof(s->stats_name), "%s#%u", addr, port);
	if (port == 53)
		snprintf(s->log_name, sizeof(s->log_name), "%s", addr);
	else
		snprintf(s->log_name, sizeof(s->log_name), "%s#%u", addr, port);
	return 0;
}

static void
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

static void
upstream_dns_server_failed(struct upstream_dns *up, struct upstream_dns_server *s)
{
	static struct log_ratelimit rl = LOG_RATELIMIT_INIT(10000, 5);
	msec_t now = time_now_ms();

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

/* --- socket pool --- */

static int
upstream_dns_bind(struct upstream_dns *up, int fd, int family)
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

static void upstream_dns_on_read(evutil_socket_t fd, short what, void *arg);

static struct upstream_dns_sock *
upstream_dns_sock_open(struct upstream_dns *up, int family, int *err)
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
	*err = upstream_dns_bind(up, sock->fd, family);
	if (*err == 0) {
		sock->ev = event_new(up->evb, sock->fd, EV_READ | EV_PERSIST, upstream_dns_on_read,
				     sock);
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
upstream_dns_sock_close(struct upstream_dns_sock *sock)
{
	if (!sock)
		return;
	event_free(sock->ev);
	close(sock->fd);
	free(sock);
}

static void
upstream_dns_sock_unref(struct upstream_dns_sock *sock)
{
	assert(sock->refs > 0);
	sock->refs--;
	if (sock->retired && sock->refs == 0 && !sock->busy)
		upstream_dns_sock_close(sock);
}

static struct upstream_dns_sock *
upstream_dns_sock_pick(struct upstream_dns *up, int family, unsigned *slot, int *err)
{
	struct upstream_dns_pool *pool = family == AF_INET6 ? &up->pool6 : &up->pool4;
	unsigned i = upstream_dns_rand_below(up, pool->n_slots);

	*slot = i;
	if (!pool->slot[i])
		pool->slot[i] = upstream_dns_sock_open(up, family, err);
	return pool->slot[i];
}

/* The socket carried another query: retire it when it has carried enough. */
static void
upstream_dns_sock_used(struct upstream_dns *up, struct upstream_dns_sock *sock, int family,
		       unsigned slot)
{
	struct upstream_dns_pool *pool = family == AF_INET6 ? &up->pool6 : &up->pool4;

	sock->uses++;
	if (up->query_port || sock->uses < UPSTREAM_DNS_SOCK_USES)
		return;
	pool->slot[slot] = NULL;
	sock->retired = true;
	if (sock->refs == 0 && !sock->busy)
		upstream_dns_sock_close(sock);
}

/* --- tries and queries --- */

static void
upstream_dns_try_free(struct upstream_dns *up, struct upstream_dns_try *t)
{
	struct upstream_dns_query *q = t->query;

	for (struct upstream_dns_try **pp = &q->tries; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	}
	HASH_DEL(up->pending, t);
	up->n_pending--;
	upstream_dns_sock_unref(t->sock);
	free(t);
}

static void
upstream_dns_tcp_free(struct upstream_dns_tcp *t)
{
	if (!t)
		return;
	if (t->ev)
		event_free(t->ev);
	if (t->fd >= 0)
		close(t->fd);
	free(t->in);
	free(t);
}

/* Forget everything about a query; done() is not called. */
static void
upstream_dns_query_free(struct upstream_dns_query *q)
{
	struct upstream_dns *up = q->up;

	while (q->tries)
		upstream_dns_try_free(up, q->tries);
	upstream_dns_tcp_free(q->tcp);
	if (q->timer)
		event_free(q->timer);
	if (q->prev)
		q->prev->next = q->next;
	else
		up->queries = q->next;
	if (q->next)
		q->next->prev = q->prev;
	q->req->priv = NULL;
	free(q->held);
	free(q);
}

/* Complete the query: free it, then call done() exactly once. `to_free` (may be NULL, may be
 * `reply`) is freed after done() returns. */
static void
upstream_dns_finish(struct upstream_dns_query *q, int status, const uint8_t *reply, size_t len,
		    void *to_free)
{
	struct upstream_req *req = q->req;

	if (reply == q->held)
		q->held = NULL; /* to_free owns it now */
	upstream_dns_query_free(q);
	req->done(req, status, reply, len);
	free(to_free);
}

static void
upstream_dns_finish_held(struct upstream_dns_query *q, int status)
{
	uint8_t *held = q->held;

	if (held)
		upstream_dns_finish(q, 0, held, q->held_len, held);
	else
		upstream_dns_finish(q, status, NULL, 0, NULL);
}

static bool
upstream_dns_query_live(const struct upstream_dns_query *q)
{
	for (const struct upstream_dns_try *t = q->tries; t; t = t->next)
		if (!t->over)
			return true;
	return q->tcp != NULL;
}

static void
upstream_dns_timer_add(struct upstream_dns_query *q, msec_t now)
{
	msec_t ms = q->timer_at > now ? q->timer_at - now : 0;
	struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (long)(ms % 1000) * 1000};

	/* Inside a callback libevent measures timeouts from the loop's cached time, which may lag
	 * behind `now`: refresh it. */
	event_base_update_cache_time(q->up->evb);
	evtimer_add(q->timer, &tv);
}

static void
upstream_dns_arm(struct upstream_dns_query *q, bool retry)
{
	msec_t now = time_now_ms();

	q->timer_at = retry && !q->tcp ? MIN(now + q->up->retry_ms, q->deadline) : q->deadline;
	q->at_deadline = q->timer_at == q->deadline;
	upstream_dns_timer_add(q, now);
}

static void
upstream_dns_log_forward(struct upstream_dns *up, const struct upstream_dns_query *q,
			 const struct upstream_dns_server *s)
{
	char name[DNS_MAX_NAME * 4 + 1];
	const struct dnsmsg_question *dq = &q->req->q;

	if (!up->log_queries)
		return;
	if (dnsmsg_name_to_text(dq->qname, dq->qname_len, 0, name, sizeof(name)) < 0)
		snprintf(name, sizeof(name), "?");
	log_info("forwarded %s to %s", name, s->log_name);
}

static uint16_t
upstream_dns_new_id(struct upstream_dns *up, const struct upstream_dns_sock *sock, uint64_t *key)
{
	struct upstream_dns_try *found;
	uint16_t id;

	/* at most a few dozen IDs of 65536 are in use on one socket: a free one comes quickly */
	do {
		id = (uint16_t)upstream_dns_rand32(up);
		*key = (uint64_t)sock->serial << 16 | id;
		HASH_FIND(hh, up->pending, key, sizeof(*key), found);
	} while (found);
	return id;
}

/* Send one try of `q` to server `si`. Returns 0 or a negative errno (nothing kept). */
static int
upstream_dns_send(struct upstream_dns_query *q, unsigned si)
{
	struct upstream_dns *up = q->up;
	struct upstream_dns_server *s = &up->servers[si];
	struct upstream_dns_sock *sock;
	struct upstream_dns_try *t;
	uint8_t pkt[UPSTREAM_DNS_QUERY_MAX];
	unsigned slot;
	int err = 0, len;

	if (up->n_pending >= UPSTREAM_DNS_MAX_TRIES || q->n_tries >= UPSTREAM_DNS_QUERY_MAX_TRIES)
		return -EBUSY;
	sock = upstream_dns_sock_pick(up, s->ss.ss_family, &slot, &err);
	if (!sock)
		return err;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->id = upstream_dns_new_id(up, sock, &t->key);
	len = dnsmsg_build_query(pkt, sizeof(pkt), t->id, &q->req->q, q->req->cd, q->req->do_bit,
				 up->edns_size);
	if (len < 0 ||
	    sendto(sock->fd, pkt, (size_t)len, 0, (struct sockaddr *)&s->ss, s->len) < 0) {
		err = len < 0 ? len : -errno;
		free(t);
		return err;
	}
	t->query = q;
	t->sock = sock;
	t->server = si;
	t->sent_at = time_now_ms();
	t->next = q->tries;
	q->tries = t;
	HASH_ADD(hh, up->pending, key, sizeof(t->key), t);
	up->n_pending++;
	sock->refs++;
	upstream_dns_sock_used(up, sock, s->ss.ss_family, slot);
	s->sent++;
	if (q->n_tries++ > 0)
		s->retried++;
	upstream_dns_log_forward(up, q, s);
	return 0;
}

/*
 * Send the next try(s): the next usable server in order (wrapping around, so a single server
 * gets retransmissions), or with --all-servers every usable server. Servers that fail to send
 * count as failed and are skipped. Returns 0 if anything went out, else the last error.
 */
static int
upstream_dns_step(struct upstream_dns_query *q)
{
	struct upstream_dns *up = q->up;
	bool all = up->order == UPSTREAM_DNS_ALL;
	int err = -EIO;
	bool sent = false;

	for (unsigned n = 0; n < q->n_order; n++) {
		unsigned si = q->order[q->next_idx++ % q->n_order];
		int rc;

		if (q->bad[si])
			continue;
		rc = upstream_dns_send(q, si);
		if (rc == -EBUSY || rc == -ENOMEM || rc == -EMFILE || rc == -ENFILE)
			return sent ? 0 : rc; /* our own limits, not the server's fault */
		if (rc < 0) {
			upstream_dns_server_failed(up, &up->servers[si]);
			err = rc;
			continue;
		}
		sent = true;
		if (!all)
			break;
	}
	return sent ? 0 : err;
}

/* Move on after a failure or a SERVFAIL: send the next try, or wait for what is already out,
 * or finish with what we have. */
static void
upstream_dns_step_or_finish(struct upstream_dns_query *q)
{
	if (time_now_ms() < q->deadline && upstream_dns_step(q) == 0) {
		upstream_dns_arm(q, true);
		return;
	}
	if (q->held) {
		upstream_dns_finish_held(q, 0);
		return;
	}
	if (q->tries || q->tcp) {
		/* late replies to earlier tries still count until the deadline */
		upstream_dns_arm(q, false);
		return;
	}
	upstream_dns_finish(q, -EIO, NULL, 0, NULL);
}

static void
upstream_dns_on_timer(evutil_socket_t fd UNUSED, short what UNUSED, void *arg)
{
	struct upstream_dns_query *q = arg;
	struct upstream_dns *up = q->up;
	msec_t now = time_now_ms();

	/* libevent's clock is CLOCK_MONOTONIC_COARSE (main.c sets no precise timer), a tick
	 * behind ours, so timers can fire a few ms early by time_now_ms(): wait the rest. */
	if (now < q->timer_at) {
		upstream_dns_timer_add(q, now);
		return;
	}
	for (struct upstream_dns_try *t = q->tries; t; t = t->next) {
		if (t->over)
			continue;
		t->over = true;
		upstream_dns_server_failed(up, &up->servers[t->server]);
	}
	if (q->at_deadline || now >= q->deadline) {
		if (q->tcp)
			upstream_dns_server_failed(up, &up->servers[q->tcp->server]);
		upstream_dns_finish_held(q, -ETIMEDOUT);
		return;
	}
	upstream_dns_step_or_finish(q);
}

/* --- TCP after TC=1 --- */

static void upstream_dns_tcp_cb(evutil_socket_t fd, short what, void *arg);

static int
upstream_dns_tcp_start(struct upstream_dns_query *q, unsigned si)
{
	struct upstream_dns *up = q->up;
	struct upstream_dns_server *s = &up->servers[si];
	struct upstream_dns_tcp *t = calloc(1, sizeof(*t));
	int len, err;

	if (!t)
		return -ENOMEM;
	t->query = q;
	t->server = si;
	t->started = time_now_ms();
	t->id = (uint16_t)upstream_dns_rand32(up);
	len = dnsmsg_build_query(t->out + 2, sizeof(t->out) - 2, t->id, &q->req->q, q->req->cd,
				 q->req->do_bit, up->edns_size);
	t->fd = socket(s->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (len < 0 || t->fd < 0) {
		err = len < 0 ? len : -errno;
		goto fail;
	}
	dnsmsg_put16(t->out, (uint16_t)len);
	t->out_len = (size_t)len + 2;
	if (connect(t->fd, (struct sockaddr *)&s->ss, s->len) < 0 && errno != EINPROGRESS) {
		err = -errno;
		goto fail;
	}
	t->ev = event_new(up->evb, t->fd, EV_WRITE | EV_PERSIST, upstream_dns_tcp_cb, t);
	if (!t->ev || event_add(t->ev, NULL) < 0) {
		err = -ENOMEM;
		goto fail;
	}
	q->tcp = t;
	s->sent++;
	s->retried++;
	upstream_dns_arm(q, false);
	return 0;
fail:
	upstream_dns_tcp_free(t);
	return err;
}

static void
upstream_dns_tcp_failed(struct upstream_dns_query *q)
{
	struct upstream_dns *up = q->up;
	struct upstream_dns_tcp *t = q->tcp;

	q->tcp = NULL;
	upstream_dns_server_failed(up, &up->servers[t->server]);
	upstream_dns_tcp_free(t);
	upstream_dns_step_or_finish(q);
}

/* Non-blocking I/O: 1 when the part is complete, 0 to wait, -errno on failure or EOF. */
static int
upstream_dns_tcp_write(struct upstream_dns_tcp *t)
{
	while (t->out_off < t->out_len) {
		ssize_t n = send(t->fd, t->out + t->out_off, t->out_len - t->out_off, MSG_NOSIGNAL);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		t->out_off += (size_t)n;
	}
	return 1;
}

static int
upstream_dns_tcp_read(struct upstream_dns_tcp *t)
{
	for (;;) {
		uint8_t *dst = t->in_need ? t->in + t->in_off : t->hdr + t->in_off;
		size_t want = (t->in_need ? t->in_need : sizeof(t->hdr)) - t->in_off;
		ssize_t n = recv(t->fd, dst, want, 0);

		if (n == 0)
			return -ECONNRESET;
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		t->in_off += (size_t)n;
		if (t->in_need && t->in_off == t->in_need)
			return 1;
		if (!t->in_need && t->in_off == sizeof(t->hdr)) {
			/* the 16-bit length caps the reply at 65535 bytes */
			t->in_need = dnsmsg_get16(t->hdr);
			t->in_off = 0;
			if (t->in_need < DNS_HDR_LEN)
				return -EPROTO;
			t->in = malloc(t->in_need);
			if (!t->in)
				return -ENOMEM;
		}
	}
}

static void
upstream_dns_tcp_done(struct upstream_dns_query *q)
{
	struct upstream_dns *up = q->up;
	struct upstream_dns_tcp *t = q->tcp;
	unsigned si = t->server;
	struct upstream_dns_server *s = &up->servers[si];
	uint8_t *pkt = t->in;
	size_t len = t->in_need;
	int rc = dnsmsg_check_reply(pkt, len, t->id, &q->req->q);

	if (rc < 0) {
		if (rc == -EBADMSG)
			up->garbage++;
		else
			up->bogus++;
		upstream_dns_tcp_failed(q);
		return;
	}
	t->in = NULL;
	q->tcp = NULL;
	upstream_dns_server_answered(s, time_now_ms() - t->started, dnsmsg_rcode(pkt));
	upstream_dns_tcp_free(t);
	if (dnsmsg_rcode(pkt) == DNS_RCODE_SERVFAIL || dnsmsg_rcode(pkt) == DNS_RCODE_REFUSED) {
		q->bad[si] = 1;
		free(q->held);
		q->held = pkt;
		q->held_len = len;
		s->failed++;
		upstream_dns_step_or_finish(q);
		return;
	}
	upstream_dns_finish(q, 0, pkt, len, pkt);
}

static void
upstream_dns_tcp_cb(evutil_socket_t fd, short what UNUSED, void *arg)
{
	struct upstream_dns_tcp *t = arg;
	struct upstream_dns_query *q = t->query;
	int rc, soerr = 0;
	socklen_t sl = sizeof(soerr);

	if (!t->connected) {
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
			upstream_dns_tcp_failed(q);
			return;
		}
		t->connected = true;
	}
	if (!t->writing_done) {
		rc = upstream_dns_tcp_write(t);
		if (rc <= 0) {
			if (rc < 0)
				upstream_dns_tcp_failed(q);
			return;
		}
		t->writing_done = true;
		event_free(t->ev);
		t->ev = event_new(q->up->evb, t->fd, EV_READ | EV_PERSIST, upstream_dns_tcp_cb, t);
		if (!t->ev || event_add(t->ev, NULL) < 0)
			upstream_dns_tcp_failed(q);
		return;
	}
	rc = upstream_dns_tcp_read(t);
	if (rc < 0)
		upstream_dns_tcp_failed(q);
	else if (rc > 0)
		upstream_dns_tcp_done(q);
}

/* --- UDP replies --- */

static void
upstream_dns_bad_rcode(struct upstream_dns_query *q, unsigned si, const uint8_t *pkt, size_t len)
{
	uint8_t *copy = malloc(len);

	q->bad[si] = 1;
	q->up->servers[si].failed++;
	if (!copy) {
		upstream_dns_finish(q, 0, pkt, len, NULL);
		return;
	}
	memcpy(copy, pkt, len);
	free(q->held);
	q->held = copy;
	q->held_len = len;
	/* with --all-servers the others are asked already: wait for them */
	if (q->up->order == UPSTREAM_DNS_ALL && upstream_dns_query_live(q))
		return;
	upstream_dns_step_or_finish(q);
}

/* A reply that passed every check, for try `t`. */
static void
upstream_dns_on_reply(struct upstream_dns_try *t, const uint8_t *pkt, size_t len, bool trunc)
{
	struct upstream_dns_query *q = t->query;
	struct upstream_dns *up = q->up;
	unsigned si = t->server;
	unsigned rcode = dnsmsg_rcode(pkt);

	upstream_dns_server_answered(&up->servers[si], time_now_ms() - t->sent_at, rcode);
	upstream_dns_try_free(up, t);
	if (trunc || dnsmsg_tc(pkt)) {
		/* one TCP connection per query; other truncated replies wait for its outcome */
		if (q->tcp)
			return;
		if (upstream_dns_tcp_start(q, si) < 0) {
			upstream_dns_server_failed(up, &up->servers[si]);
			upstream_dns_step_or_finish(q);
		}
		return;
	}
	if (rcode == DNS_RCODE_SERVFAIL || rcode == DNS_RCODE_REFUSED) {
		upstream_dns_bad_rcode(q, si, pkt, len);
		return;
	}
	upstream_dns_finish(q, 0, pkt, len, NULL);
}

static void
upstream_dns_on_dgram(struct upstream_dns *up, struct upstream_dns_sock *sock, const uint8_t *pkt,
		      size_t len, const struct sockaddr_storage *from, bool trunc)
{
	struct upstream_dns_try *t;
	uint64_t key;
	int rc;

	if (len < DNS_HDR_LEN) {
		up->garbage++;
		return;
	}
	key = (uint64_t)sock->serial << 16 | dnsmsg_id(pkt);
	HASH_FIND(hh, up->pending, &key, sizeof(key), t);
	if (!t || !upstream_dns_sa_equal(from, &up->servers[t->server].ss)) {
		up->bogus++;
		return;
	}
	rc = dnsmsg_check_reply(pkt, len, t->id, &t->query->req->q);
	if (rc == -EBADMSG) {
		up->garbage++;
		return;
	}
	if (rc < 0) {
		up->bogus++;
		return;
	}
	upstream_dns_on_reply(t, pkt, len, trunc);
}

static void
upstream_dns_on_read(evutil_socket_t fd, short what UNUSED, void *arg)
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
		upstream_dns_sock_close(sock);
}

/* --- server order --- */

static int
upstream_dns_cmp_srtt(const void *a, const void *b, void *arg)
{
	const struct upstream_dns_server *servers = arg;
	unsigned x = servers[*(const unsigned *)a].srtt8, y = servers[*(const unsigned *)b].srtt8;

	return x < y ? -1 : x > y;
}

/* Fill q->order: servers not backed off, in configuration order or fastest first; if all are
 * backed off, the one whose back-off ends soonest (we never fail without trying). */
static void
upstream_dns_plan(struct upstream_dns *up, struct upstream_dns_query *q)
{
	msec_t now = time_now_ms();
	unsigned n = 0, soonest = 0;

	for (unsigned i = 0; i < up->n_servers; i++) {
		if (up->servers[i].backoff_until <= now)
			q->order[n++] = i;
		if (up->servers[i].backoff_until < up->servers[soonest].backoff_until)
			soonest = i;
	}
	if (n == 0)
		q->order[n++] = soonest;
	if (up->order == UPSTREAM_DNS_FASTEST && n > 1) {
		qsort_r(q->order, n, sizeof(q->order[0]), upstream_dns_cmp_srtt, up->servers);
		if (upstream_dns_rand_below(up, UPSTREAM_DNS_EXPLORE) == 0) {
			unsigned j = 1 + upstream_dns_rand_below(up, n - 1), tmp = q->order[0];
			q->order[0] = q->order[j];
			q->order[j] = tmp;
		}
	}
	q->n_order = n;
}

/* --- bogus-priv --- */

/* Is label `l` (length-prefixed) the decimal number in [lo, hi]? */
static bool
upstream_dns_label_num(const uint8_t *l, unsigned lo, unsigned hi)
{
	unsigned v = 0;

	if (l[0] == 0 || l[0] > 3)
		return false;
	for (unsigned i = 1; i <= l[0]; i++) {
		if (l[i] < '0' || l[i] > '9')
			return false;
		v = v * 10 + (l[i] - '0');
	}
	return v >= lo && v <= hi;
}

static bool
upstream_dns_label_is(const uint8_t *l, const char *s)
{
	size_t n = strlen(s);

	return l[0] == n && strncasecmp((const char *)l + 1, s, n) == 0;
}

/* A PTR for the reverse zones of private, loopback and link-local ranges (dnsmasq's
 * --bogus-priv). `lab` holds the labels from the right: lab[0] is the TLD. */
static bool
upstream_dns_private_reverse(const uint8_t *const *lab, unsigned n)
{
	if (n >= 3 && upstream_dns_label_is(lab[0], "arpa") &&
	    upstream_dns_label_is(lab[1], "in-addr")) {
		const uint8_t *a = lab[2], *b = n >= 4 ? lab[3] : NULL;
		if (upstream_dns_label_num(a, 127, 127) || upstream_dns_label_num(a, 10, 10))
			return true;
		return b && ((upstream_dns_label_num(a, 172, 172) &&
			      upstream_dns_label_num(b, 16, 31)) ||
			     (upstream_dns_label_num(a, 192, 192) &&
			      upstream_dns_label_num(b, 168, 168)) ||
			     (upstream_dns_label_num(a, 169, 169) &&
			      upstream_dns_label_num(b, 254, 254)) ||
			     (upstream_dns_label_num(a, 100, 100) &&
			      upstream_dns_label_num(b, 64, 127)));
	}
	if (n < 4 || !upstream_dns_label_is(lab[0], "arpa") ||
	    !upstream_dns_label_is(lab[1], "ip6"))
		return false;
	if (upstream_dns_label_is(lab[2], "f") && upstream_dns_label_is(lab[3], "d"))
		return true; /* fd00::/8 */
	if (n >= 5 && upstream_dns_label_is(lab[2], "f") && upstream_dns_label_is(lab[3], "e") &&
	    (upstream_dns_label_is(lab[4], "8") || upstream_dns_label_is(lab[4], "9") ||
	     upstream_dns_label_is(lab[4], "a") || upstream_dns_label_is(lab[4], "b")))
		return true; /* fe80::/10 */
	if (n != 34 || !upstream_dns_label_is(lab[33], "1"))
		return false; /* ::1 is the only exact name */
	for (unsigned i = 2; i < 33; i++)
		if (!upstream_dns_label_is(lab[i], "0"))
			return false;
	return true;
}

static bool
upstream_dns_bogus_priv(const struct dnsmsg_question *dq)
{
	const uint8_t *fwd[DNS_MAX_NAME / 2 + 1], *lab[DNS_MAX_NAME / 2 + 1];
	unsigned n = 0;
	size_t off = 0;

	if (dq->qtype != DNS_TYPE_PTR || !dq->qname)
		return false;
	while (off < dq->qname_len && dq->qname[off] != 0 && n < ARRAY_SIZE(fwd)) {
		if (dq->qname[off] > 63 || off + 1 + dq->qname[off] >= dq->qname_len)
			return false;
		fwd[n++] = dq->qname + off;
		off += 1 + dq->qname[off];
	}
	for (unsigned i = 0; i < n; i++)
		lab[i] = fwd[n - 1 - i];
	return upstream_dns_private_reverse(lab, n);
}

/* --- ops --- */

static int
upstream_dns_create(struct upstream **out, struct event_base *base, const void *vargs)
{
	const struct upstream_dns_args *args = vargs;
	struct upstream_dns *up;
	int rc = -ENOMEM;

	if (!args || !base || (args->n_servers && !args->servers))
		return -EINVAL;
	if (!upstream_dns_seed[0] && !upstream_dns_seed[1])
		hash_random_key(upstream_dns_seed);
	up = calloc(1, sizeof(*up));
	if (!up)
		return -ENOMEM;
	up->base.ops = &upstream_dns_ops;
	up->evb = base;
	up->order = args->order;
	up->edns_size = (uint16_t)MIN(args->edns_packet_max, DNS_MAX_UDP);
	up->query_port = args->query_port;
	up->min_port = args->min_port ? args->min_port : 1024;
	up->max_port = args->max_port >= up->min_port ? args->max_port : 65535;
	up->timeout_ms = args->timeout_ms ? args->timeout_ms : UPSTREAM_DNS_DEFAULT_TIMEOUT_MS;
	up->retry_ms = args->retry_ms ? MIN(args->retry_ms, up->timeout_ms)
				      : MIN(UPSTREAM_DNS_DEFAULT_RETRY_MS, up->timeout_ms);
	up->log_queries = args->log_queries;
	up->bogus_priv = args->bogus_priv;
	up->domain_needed = args->domain_needed;
	up->pool4.n_slots = up->pool6.n_slots = up->query_port ? 1 : UPSTREAM_DNS_POOL_SIZE;
	up->rnd_off = sizeof(up->rnd);
	up->rbuf_size = MAX(up->edns_size, 512);
	up->rbuf = malloc(up->rbuf_size * UPSTREAM_DNS_RECV_BATCH);
	up->servers = calloc(args->n_servers ? args->n_servers : 1, sizeof(*up->servers));
	if (!up->rbuf || !up->servers)
		goto fail;
	for (size_t i = 0; i < args->n_servers; i++) {
		rc = upstream_dns_server_init(&up->servers[i], &args->servers[i]);
		if (rc < 0)
			goto fail;
	}
	up->n_servers = args->n_servers;
	*out = &up->base;
	return 0;
fail:
	free(up->rbuf);
	free(up->servers);
	free(up);
	return rc;
}

static void
upstream_dns_free(struct upstream *u)
{
	struct upstream_dns *up = (struct upstream_dns *)u;

	if (!up)
		return;
	/* the caller should have cancelled these; forget them quietly rather than leak */
	while (up->queries)
		upstream_dns_query_free(up->queries);
	for (unsigned i = 0; i < UPSTREAM_DNS_POOL_SIZE; i++) {
		upstream_dns_sock_close(up->pool4.slot[i]);
		upstream_dns_sock_close(up->pool6.slot[i]);
	}
	free(up->rbuf);
	free(up->servers);
	free(up);
}

static int
upstream_dns_resolve(struct upstream *u, struct upstream_req *req)
{
	struct upstream_dns *up = (struct upstream_dns *)u;
	struct upstream_dns_query *q;
	size_t n = up->n_servers;
	int rc;

	if (!req->q.qname || req->q.qname_len == 0 || req->q.qname_len > DNS_MAX_NAME)
		return -EINVAL;
	if (up->bogus_priv && upstream_dns_bogus_priv(&req->q))
		return -ENXIO;
	if (up->domain_needed && dnsmsg_name_labels(req->q.qname, req->q.qname_len) == 1)
		return -ENXIO;
	if (n == 0)
		return -ENOENT;
	if (up->n_pending >= UPSTREAM_DNS_MAX_TRIES)
		return -EBUSY;
	q = calloc(1, sizeof(*q) + n * sizeof(unsigned) + n);
	if (!q)
		return -ENOMEM;
	q->up = up;
	q->req = req;
	q->order = (unsigned *)(q + 1);
	q->bad = (uint8_t *)(q->order + n);
	q->deadline = time_now_ms() + up->timeout_ms;
	q->timer = evtimer_new(up->evb, upstream_dns_on_timer, q);
	if (!q->timer) {
		free(q);
		return -ENOMEM;
	}
	q->next = up->queries;
	if (up->queries)
		up->queries->prev = q;
	up->queries = q;
	req->priv = q;
	upstream_dns_plan(up, q);
	rc = upstream_dns_step(q);
	if (rc < 0) {
		upstream_dns_query_free(q);
		return rc;
	}
	upstream_dns_arm(q, true);
	return 0;
}

static void
upstream_dns_cancel(struct upstream *u UNUSED, struct upstream_req *req)
{
	struct upstream_dns_query *q = req->priv;

	if (!q)
		return;
	assert(q->req == req);
	upstream_dns_query_free(q);
}

static void
upstream_dns_stats(struct upstream *u, upstream_stats_fn *line, void *ctx)
{
	struct upstream_dns *up = (struct upstream_dns *)u;
	char buf[256];

	for (size_t i = 0; i < up->n_servers; i++) {
		const struct upstream_dns_server *s = &up->servers[i];
		snprintf(buf, sizeof(buf),
			 "server %s: queries sent %lu, retried %lu, failed %lu, "
			 "nxdomain replies %lu, avg. latency %llums",
			 s->stats_name, s->sent, s->retried, s->failed, s->nxdomain,
			 s->answered ? s->latency_sum / s->answered : 0ULL);
		line(ctx, buf);
	}
	snprintf(buf, sizeof(buf), "forwarder: bogus replies %lu, garbage replies %lu, pending %u",
		 up->bogus, up->garbage, up->n_pending);
	line(ctx, buf);
}

/* Per server: failures are the timeouts, errors and SERVFAIL/REFUSED replies, as in the
 * SIGUSR1 line; queries count retries, as dnsmasq's servers.bind does. */
static void
upstream_dns_metrics(struct upstream *u, upstream_metrics_fn *each, void *ctx)
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

const struct upstream_ops upstream_dns_ops = {
	.name = "dns",
	.create = upstream_dns_create,
	.free = upstream_dns_free,
	.resolve = upstream_dns_resolve,
	.cancel = upstream_dns_cancel,
	.stats = upstream_dns_stats,
	.metrics = upstream_dns_metrics,
};
