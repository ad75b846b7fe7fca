/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * upstream_dns_impl.h - what the forwarder's three files share and nothing outside them sees:
 * its limits, the forwarder, its servers, sockets, queries and TCP connections, and the
 * functions one file offers the others. upstream_dns.c holds the ops, the randomness, the
 * pending table of UDP tries and each query's state machine (send, retry, timer, replies);
 * upstream_dns_server.c the per-server state (RTT, back-off, counters, order, statistics,
 * metrics) and the UDP socket pool with its read callback; upstream_dns_tcp.c the TCP retry of a
 * truncated reply. The public interface is upstream_dns.h.
 */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "kubemasq/defs.h"
#include "kubemasq/dnsmsg.h"
#include "kubemasq/metrics.h"
#include "kubemasq/upstream.h"
#include "upstream/upstream_dns.h"

struct config_sockaddr;
struct event;
struct event_base;

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
#define UPSTREAM_DNS_RECV_BATCH 16
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
#define UPSTREAM_DNS_QUERY_MAX (DNS_HDR_LEN + DNS_MAX_NAME + 4 + 11)
#define UPSTREAM_DNS_DEFAULT_TIMEOUT_MS 10000
#define UPSTREAM_DNS_DEFAULT_RETRY_MS 1000

struct upstream_dns;
struct upstream_dns_query;
struct upstream_dns_try; /* upstream_dns.c's own */

struct upstream_dns_server {
	struct sockaddr_storage ss;
	socklen_t len;
	char log_name[INET6_ADDRSTRLEN + 8];   /* dnsmasq's: "#port" only when not 53 */
	char stats_name[INET6_ADDRSTRLEN + 8]; /* always "addr#port" */
	bool measured;
	unsigned srtt8; /* smoothed RTT, 1/8 ms */
	unsigned fails; /* consecutive timeouts/errors */
	msec_t backoff_ms, backoff_until;
	bool looping; /* --dns-loop-detect saw our probe to it come back: not used */
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
	msec_t timer_at; /* when the timer is due, by clock_now_ms() */
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
	size_t n_looping; /* servers with `looping` set */
	uint32_t next_serial;
	uint8_t rnd[256];
	size_t rnd_off;
	uint8_t *rbuf;
	size_t rbuf_size;
	unsigned long bogus, garbage;
};

/* ---- upstream_dns.c ------------------------------------------------------------------------ */

/* Random numbers from the instance's getrandom() buffer; rand_below() is uniform in [0, n). */
uint32_t upstream_dns_rand32(struct upstream_dns *up);
uint32_t upstream_dns_rand_below(struct upstream_dns *up, uint32_t n);
/* Complete the query: free it, then call done() exactly once. `to_free` (may be NULL, may be
 * `reply`) is freed after done() returns. */
void upstream_dns_finish(struct upstream_dns_query *q, int status, const uint8_t *reply, size_t len,
			 void *to_free);
/* Arm the query's timer: for the next retry when `retry` and no TCP is running, else for the
 * deadline. */
void upstream_dns_arm(struct upstream_dns_query *q, bool retry);
/* Move on after a failure or a SERVFAIL: send the next try, or wait for what is already out,
 * or finish with what we have (q may be freed). */
void upstream_dns_step_or_finish(struct upstream_dns_query *q);
/* A datagram of `len` bytes (in a buffer borrowed for the call) from `from` on `sock`; counted
 * as bogus or garbage unless it answers a pending try. */
void upstream_dns_on_dgram(struct upstream_dns *up, struct upstream_dns_sock *sock,
			   const uint8_t *pkt, size_t len, const struct sockaddr_storage *from,
			   bool trunc);

/* ---- upstream_dns_server.c ----------------------------------------------------------------- */

bool upstream_dns_server_sa_equal(const struct sockaddr_storage *a,
				  const struct sockaddr_storage *b);
/* Fill *s from `ca` (borrowed). -EAFNOSUPPORT: neither IPv4 nor IPv6. */
int upstream_dns_server_init(struct upstream_dns_server *s, const struct config_sockaddr *ca);
/* A reply after `rtt` ms: feeds the smoothed RTT and ends any back-off. */
void upstream_dns_server_answered(struct upstream_dns_server *s, msec_t rtt, unsigned rcode);
/* A timeout or an error: may start or extend the server's back-off. */
void upstream_dns_server_failed(struct upstream_dns *up, struct upstream_dns_server *s);
/* A try stopped waiting on the socket: closes a retired socket when it was the last. */
void upstream_dns_server_sock_unref(struct upstream_dns_sock *sock);
/* A random socket of the family's pool (opened on first use; its slot in *slot), or NULL with
 * a negative errno in *err. The socket stays owned by the pool. */
struct upstream_dns_sock *upstream_dns_server_sock_pick(struct upstream_dns *up, int family,
							unsigned *slot, int *err);
/* The socket carried another query: retire it when it has carried enough. */
void upstream_dns_server_sock_used(struct upstream_dns *up, struct upstream_dns_sock *sock,
				   int family, unsigned slot);
/* Fill q->order: servers not backed off, in configuration order or fastest first; if all are
 * backed off, the one whose back-off ends soonest (we never fail without trying). Servers that
 * loop are never in it; the caller makes sure one does not (upstream_dns_resolve). */
void upstream_dns_server_plan(struct upstream_dns *up, struct upstream_dns_query *q);
/* Close every socket of both pools (at free(): no try waits on them any more). */
void upstream_dns_server_pools_close(struct upstream_dns *up);
/* The ops' stats() and metrics(). */
void upstream_dns_server_stats(struct upstream *u, upstream_stats_fn *line, void *ctx);
void upstream_dns_server_metrics(struct upstream *u, upstream_metrics_fn *each, void *ctx);

/* ---- upstream_dns_tcp.c -------------------------------------------------------------------- */

/* Ask server `si` again over TCP (q->tcp owns the connection). 0 or a negative errno (nothing
 * kept). */
int upstream_dns_tcp_start(struct upstream_dns_query *q, unsigned si);
/* NULL-safe. */
void upstream_dns_tcp_free(struct upstream_dns_tcp *t);
