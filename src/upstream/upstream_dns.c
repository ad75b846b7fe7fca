/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * upstream_dns.c - the network forwarder (dnsmasq's --server). Each query goes out over UDP with
 * a random ID from a randomly chosen socket of a pool whose sockets sit on random ports and are
 * retired after a few uses (RFC 5452); a reply counts only if it comes from the address and port
 * the try went to, with the try's ID and the same question. A try that stays unanswered for
 * retry_ms hands over to the next server (its late reply still counts) until timeout_ms ends
 * the query; SERVFAIL/REFUSED move on as well, TC=1 repeats the query over TCP, and servers that
 * keep timing out are backed off. Completion is always delivered from the event loop.
 * This file holds the ops, the pending table of tries and each query's state machine; the
 * servers and the socket pool are upstream_dns_server.c's, TCP is upstream_dns_tcp.c's
 * (upstream_dns_impl.h says what they share).
 */
#include <assert.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "kubemasq/defs.h"
#include "kubemasq/dnsmsg.h"
#include "kubemasq/hash.h"
#include "kubemasq/log.h"
#include "lib/config.h"
#include "upstream/upstream_dns.h"

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

/* Only this file hashes the pending table: the HASH_FUNCTION above must come first. */
#include "lib/clock.h"
#include "upstream/upstream_dns_impl.h"

/* One UDP try of a query, in the pending table while it may still be answered. */
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

uint32_t
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
uint32_t
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
	upstream_dns_server_sock_unref(t->sock);
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
void
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

void
upstream_dns_arm(struct upstream_dns_query *q, bool retry)
{
	msec_t now = clock_now_ms();

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
	log_info("%sforwarded %s to %s", q->req->log_prefix ? q->req->log_prefix : "", name,
		 s->log_name);
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
	sock = upstream_dns_server_sock_pick(up, s->ss.ss_family, &slot, &err);
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
	t->sent_at = clock_now_ms();
	t->next = q->tries;
	q->tries = t;
	HASH_ADD(hh, up->pending, key, sizeof(t->key), t);
	up->n_pending++;
	sock->refs++;
	upstream_dns_server_sock_used(up, sock, s->ss.ss_family, slot);
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
void
upstream_dns_step_or_finish(struct upstream_dns_query *q)
{
	if (clock_now_ms() < q->deadline && upstream_dns_step(q) == 0) {
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
	msec_t now = clock_now_ms();

	/* libevent's clock is CLOCK_MONOTONIC_COARSE (main.c sets no precise timer), a tick
	 * behind ours, so timers can fire a few ms early by clock_now_ms(): wait the rest. */
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

	upstream_dns_server_answered(&up->servers[si], clock_now_ms() - t->sent_at, rcode);
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

void
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
	if (!t || !upstream_dns_server_sa_equal(from, &up->servers[t->server].ss)) {
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
	up->base.source = METRICS_SOURCE_FORWARD;
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
	/* Queries still pending end now, each with its done() (upstream.h, the rule of free()):
	 * a retired forwarder freed before its late replies came must not leave their clients
	 * unanswered, or their requests pointing at freed memory. A SERVFAIL already held is the
	 * better answer where there is one. */
	while (up->queries)
		upstream_dns_finish_held(up->queries, -ECANCELED);
	upstream_dns_server_pools_close(up);
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
	if (up->n_looping == n)
		return -ELOOP;
	if (up->n_pending >= UPSTREAM_DNS_MAX_TRIES)
		return -EBUSY;
	q = calloc(1, sizeof(*q) + n * sizeof(unsigned) + n);
	if (!q)
		return -ENOMEM;
	q->up = up;
	q->req = req;
	q->order = (unsigned *)(q + 1);
	q->bad = (uint8_t *)(q->order + n);
	q->deadline = clock_now_ms() + up->timeout_ms;
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
	upstream_dns_server_plan(up, q);
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

/* --- loop detection --- */

int
upstream_dns_server_addr(struct upstream *u, size_t i, struct sockaddr_storage *ss, socklen_t *len)
{
	struct upstream_dns *up = (struct upstream_dns *)u;

	assert(u->ops == &upstream_dns_ops);
	if (i >= up->n_servers)
		return -ENOENT;
	*ss = up->servers[i].ss;
	*len = up->servers[i].len;
	return 0;
}

/* Server `si` has just been found looping: a query that was waiting on it alone moves on now,
 * from its timer (never from here: completing a query may call into its owner, and we may be
 * inside a loop over the router's upstreams). */
static void
upstream_dns_leave_server(struct upstream_dns *up, unsigned si)
{
	msec_t now = clock_now_ms();

	for (struct upstream_dns_query *q = up->queries; q; q = q->next) {
		struct upstream_dns_try *t, *next;
		bool moved = false;

		/* no reply can come that is not the loop's: forget the tries, so that a query left
		 * without any ends now rather than at its deadline */
		for (t = q->tries; t; t = next) {
			next = t->next;
			if (t->server == si) {
				upstream_dns_try_free(up, t);
				moved = true;
			}
		}
		if (q->tcp && q->tcp->server == si) {
			upstream_dns_tcp_free(q->tcp);
			q->tcp = NULL;
			moved = true;
		}
		if (!moved)
			continue;
		q->bad[si] = 1;
		if (upstream_dns_query_live(q))
			continue; /* other servers are being asked: their timer stands */
		q->timer_at = now;
		q->at_deadline = false;
		upstream_dns_timer_add(q, now);
	}
}

size_t
upstream_dns_set_looping(struct upstream *u, const struct sockaddr_storage *ss, bool looping,
			 bool *all_loop)
{
	struct upstream_dns *up = (struct upstream_dns *)u;
	size_t matched = 0;

	assert(u->ops == &upstream_dns_ops);
	for (unsigned i = 0; i < up->n_servers; i++) {
		struct upstream_dns_server *s = &up->servers[i];

		if (!upstream_dns_server_sa_equal(ss, &s->ss))
			continue;
		matched++;
		if (s->looping == looping)
			continue;
		s->looping = looping;
		if (looping) {
			up->n_looping++;
			upstream_dns_leave_server(up, i);
		} else {
			up->n_looping--;
		}
	}
	if (all_loop)
		*all_loop = up->n_servers && up->n_looping == up->n_servers;
	return matched;
}

const struct upstream_ops upstream_dns_ops = {
	.name = "dns",
	.create = upstream_dns_create,
	.free = upstream_dns_free,
	.resolve = upstream_dns_resolve,
	.cancel = upstream_dns_cancel,
	.stats = upstream_dns_server_stats,
	.metrics = upstream_dns_server_metrics,
	.server_addr = upstream_dns_server_addr,
	.set_looping = upstream_dns_set_looping,
};
