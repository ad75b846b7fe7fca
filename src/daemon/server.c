/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * server.c - the DNS front end over UDP and TCP.
 *
 * UDP: each readable event drains up to SERVER_UDP_ROUNDS batches with recvmmsg; every query
 * answered at once (cache hits, errors) is sent back in the same batch with one sendmmsg, from
 * a second socket on the same address (server_udp_sender). While nothing else is in progress a
 * wakeup may wait in recvmmsg for the next batch (server_udp_may_wait).
 * Wildcard sockets carry IP_PKTINFO/IPV6_PKTINFO so answers leave from the address the query
 * came to. Late answers (upstream completions) go out one by one with sendmsg. A batch is
 * parsed whole before any of it is answered, so that its cache lookups wait for memory together
 * (query_prepare, query_prefetch); the clock is read once per batch.
 * TCP connections are server_tcp.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/filter.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "kubemasq/dnsmsg.h"
#include "kubemasq/log.h"
#include "kubemasq/netaddr.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/stats.h"
#include "daemon/query.h"
#include "daemon/server.h"
#include "daemon/server_impl.h"

#define SERVER_UDP_BATCH 32
#define SERVER_UDP_ROUNDS 8	/* batches per wakeup before yielding to other events */
#define SERVER_UDP_WAIT_US 1000 /* how long a wakeup may go on waiting for queries */
#define SERVER_UDP_IN 4096	/* larger queries are malformed for our purposes */
#define SERVER_UDP_HEAD 512	/* what nearly every query fits in: received packed */
#define SERVER_UDP_OUT 65536
#define SERVER_TCP_BACKLOG 128
#define SERVER_CMSG_SPACE                                                                          \
	(CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(struct in_pktinfo)))

/*
 * Batch buffers shared by every UDP socket: the loop is single-threaded. Static so nothing is
 * allocated per datagram; untouched pages cost no RSS.
 *
 * A datagram is received into two pieces: its first SERVER_UDP_HEAD bytes into `in`, packed
 * eight to a page, the rest (a rare query over 512 bytes) into its slot of `tail`; such a query
 * is joined in `whole` before parsing. With one 4 KiB slot per datagram, every query touched a
 * page of its own, and on a host without PCID each syscall flushes the TLB: a page walk per
 * query in the kernel's copy and another in the parse. The small arrays come first, the big
 * rarely touched ones last.
 */
static struct {
	struct mmsghdr rmsg[SERVER_UDP_BATCH], smsg[SERVER_UDP_BATCH];
	struct iovec riov[SERVER_UDP_BATCH][2], siov[SERVER_UDP_BATCH];
	struct sockaddr_storage peer[SERVER_UDP_BATCH];
	uint8_t rctl[SERVER_UDP_BATCH][SERVER_CMSG_SPACE];
	uint8_t sctl[SERVER_UDP_BATCH][SERVER_CMSG_SPACE];
	bool ready;    /* rmsg set up */
	unsigned used; /* rmsg entries the last recvmmsg may have written */
	struct query_prep prep[SERVER_UDP_BATCH];
	uint8_t in[SERVER_UDP_BATCH][SERVER_UDP_HEAD];
	uint8_t out[SERVER_UDP_BATCH * SERVER_UDP_OUT]; /* answers back to back, see below */
	uint8_t tail[SERVER_UDP_BATCH][SERVER_UDP_IN - SERVER_UDP_HEAD];
	uint8_t whole[SERVER_UDP_BATCH][SERVER_UDP_IN];
} server_batch;

static void
server_pktinfo_parse(struct msghdr *mh, struct query_origin *o)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			memcpy(&o->local4, CMSG_DATA(c), sizeof(o->local4));
			o->has_local = true;
		} else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
			memcpy(&o->local6, CMSG_DATA(c), sizeof(o->local6));
			o->has_local = true;
		}
	}
}

/* Control data that makes an answer leave from the address its query came to. */
static socklen_t
server_pktinfo_build(const struct query_origin *o, uint8_t *buf)
{
	struct msghdr mh = {.msg_control = buf, .msg_controllen = SERVER_CMSG_SPACE};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

	memset(buf, 0, SERVER_CMSG_SPACE);
	if (o->peer.ss_family == AF_INET) {
		struct in_pktinfo pi = {.ipi_spec_dst = o->local4.ipi_addr};
		c->cmsg_level = IPPROTO_IP;
		c->cmsg_type = IP_PKTINFO;
		c->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(c), &pi, sizeof(pi));
		return CMSG_SPACE(sizeof(pi));
	}
	c->cmsg_level = IPPROTO_IPV6;
	c->cmsg_type = IPV6_PKTINFO;
	c->cmsg_len = CMSG_LEN(sizeof(o->local6));
	memcpy(CMSG_DATA(c), &o->local6, sizeof(o->local6));
	return CMSG_SPACE(sizeof(o->local6));
}

static int
server_udp_send(const struct query_origin *o, const uint8_t *pkt, size_t len)
{
	uint8_t ctl[SERVER_CMSG_SPACE];
	struct iovec iov = {.iov_base = (void *)pkt, .iov_len = len};
	struct msghdr mh = {
		.msg_name = (void *)&o->peer,
		.msg_namelen = o->peer_len,
		.msg_iov = &iov,
		.msg_iovlen = 1,
	};

	if (o->has_local) {
		mh.msg_control = ctl;
		mh.msg_controllen = server_pktinfo_build(o, ctl);
	}
	return sendmsg(o->fd, &mh, MSG_DONTWAIT) < 0 ? -errno : 0;
}

/* Receive headers: set up once; afterwards only reset what recvmmsg wrote into those it used. */
static void
server_udp_prepare(void)
{
	if (server_batch.ready) {
		for (unsigned i = 0; i < server_batch.used; i++) {
			server_batch.rmsg[i].msg_hdr.msg_namelen = sizeof(server_batch.peer[i]);
			server_batch.rmsg[i].msg_hdr.msg_controllen = SERVER_CMSG_SPACE;
		}
		return;
	}
	server_batch.ready = true;
	for (unsigned i = 0; i < SERVER_UDP_BATCH; i++) {
		server_batch.riov[i][0] = (struct iovec){server_batch.in[i], SERVER_UDP_HEAD};
		server_batch.riov[i][1] =
			(struct iovec){server_batch.tail[i], SERVER_UDP_IN - SERVER_UDP_HEAD};
		server_batch.rmsg[i].msg_hdr = (struct msghdr){
			.msg_name = &server_batch.peer[i],
			.msg_namelen = sizeof(server_batch.peer[i]),
			.msg_iov = server_batch.riov[i],
			.msg_iovlen = 2,
			.msg_control = server_batch.rctl[i],
			.msg_controllen = SERVER_CMSG_SPACE,
		};
	}
}

/*
 * Parse the whole batch before answering any of it, in two prefetch passes (cache buckets, then
 * records): with a large cache nearly every lookup misses the CPU caches, and this way the
 * batch waits for memory about twice instead of twice per query. The clock is read once.
 */
static void
server_udp_prepare_batch(struct server *s, int n)
{
	msec_t now = clock_now_ms();

	for (int i = 0; i < n; i++) {
		const uint8_t *pkt = server_batch.in[i];
		size_t len = server_batch.rmsg[i].msg_len;

		if (unlikely(len > SERVER_UDP_HEAD)) { /* MSG_TRUNC ones are dropped later */
			memcpy(server_batch.whole[i], server_batch.in[i], SERVER_UDP_HEAD);
			memcpy(server_batch.whole[i] + SERVER_UDP_HEAD, server_batch.tail[i],
			       MIN(len, SERVER_UDP_IN) - SERVER_UDP_HEAD);
			pkt = server_batch.whole[i];
			len = MIN(len, SERVER_UDP_IN);
		}
		query_prepare(s->qe, pkt, len, now, &server_batch.prep[i]);
	}
	for (int i = 0; i < n; i++)
		query_prefetch(s->qe, &server_batch.prep[i]);
}

/* Handle one received batch; answers made at once are queued into the send batch. */
static unsigned
server_udp_batch(struct server_udp *u, int n)
{
	struct server *s = u->srv;
	unsigned out = 0;
	size_t at = 0;

	server_udp_prepare_batch(s, n);

	for (int i = 0; i < n; i++) {
		struct msghdr *rh = &server_batch.rmsg[i].msg_hdr;
		struct query_origin o = {
			.send = server_udp_send,
			.fd = u->send_fd,
			.peer_len = rh->msg_namelen,
		};
		size_t len;

		if (unlikely(rh->msg_flags & MSG_TRUNC)) { /* longer than any query we take */
			s->stats->dropped++;
			continue;
		}
		memcpy(&o.peer, &server_batch.peer[i], rh->msg_namelen);
		if (u->wildcard)
			server_pktinfo_parse(rh, &o);
		/* Each answer may take SERVER_UDP_OUT bytes, and the arena holds that many per
		 * datagram; answers go back to back so a batch of small ones shares a few pages. */
		len = query_handle_prepared(s->qe, &server_batch.prep[i], &o, server_batch.out + at,
					    SERVER_UDP_OUT);
		if (!len)
			continue;
		server_batch.siov[out] = (struct iovec){server_batch.out + at, len};
		at += (len + 63) & ~(size_t)63;
		server_batch.smsg[out].msg_hdr = (struct msghdr){
			.msg_name = &server_batch.peer[i],
			.msg_namelen = rh->msg_namelen,
			.msg_iov = &server_batch.siov[out],
			.msg_iovlen = 1,
		};
		if (o.has_local) {
			server_batch.smsg[out].msg_hdr.msg_control = server_batch.sctl[out];
			server_batch.smsg[out].msg_hdr.msg_controllen =
				server_pktinfo_build(&o, server_batch.sctl[out]);
		}
		out++;
	}
	return out;
}

/*
 * Whether to wait in recvmmsg for the next query rather than go back to the event loop. A
 * zero-work server blocks in recvmmsg; an event loop asks epoll_wait first, and under load it
 * mostly answers "readable" at once: one syscall more per batch, a share of a cache hit's cost
 * that perf sees (measured: tests/bench/README.md, "Waiting in recvmmsg"). So while queries
 * keep coming, a wakeup waits for the next ones itself, but only while nothing else can need
 * the loop sooner: a single UDP socket (another would go unread), no TCP connection, no query
 * waiting on an upstream, and for at most SERVER_UDP_WAIT_US of the wakeup. Whatever else
 * arrives meanwhile (a TCP connection, an API watch event, a timer) waits at most that plus the
 * receive timeout, which the kernel rounds up to a clock tick (4 ms at HZ=250): about 5 ms per
 * wakeup, and only when the queries stop or trickle in. A signal ends the wait (socket calls
 * with a timeout are not restarted).
 */
static bool
server_udp_may_wait(const struct server_udp *u, uint64_t *since)
{
	const struct server *s = u->srv;
	uint64_t now;

	if (!u->can_wait || s->n_udp != 1 || s->n_conns || query_engine_pending(s->qe))
		return false;
	now = clock_now_us();
	if (!*since)
		*since = now;
	return now - *since < SERVER_UDP_WAIT_US;
}

static void
server_udp_read(evutil_socket_t fd, short what UNUSED, void *arg)
{
	struct server_udp *u = arg;
	uint64_t since = 0;
	int flags = MSG_DONTWAIT;

	for (unsigned round = 0; round < SERVER_UDP_ROUNDS; round++) {
		int n, sent = 0;
		unsigned out;

		server_udp_prepare();
		n = recvmmsg(fd, server_batch.rmsg, SERVER_UDP_BATCH, flags, NULL);
		server_batch.used = n > 0 ? (unsigned)n : 1;
		if (n <= 0)
			return;
		out = server_udp_batch(u, n);
		while ((unsigned)sent < out) {
			int r = sendmmsg(u->send_fd, server_batch.smsg + sent, out - (unsigned)sent,
					 MSG_DONTWAIT);
			if (r <= 0) { /* the first one failed (full buffer, bad peer): skip it */
				u->srv->stats->send_errors++;
				r = 1;
			}
			sent += r;
		}
		if (n == SERVER_UDP_BATCH)
			flags = MSG_DONTWAIT; /* more are likely queued */
		else if (server_udp_may_wait(u, &since))
			flags = MSG_WAITFORONE; /* block for the first, then take what is queued */
		else
			return;
	}
}

/*
 * A UDP listener is two sockets on one address: the one the event loop watches receives every
 * query, the other only sends. The kernel releases each sent datagram (at once on loopback)
 * through sock_wfree(), which wakes whoever waits on the sending socket for write space, and
 * epoll's entry on a watched socket always waits: every answer sent from it took the socket's
 * wait-queue lock and ran epoll's callback. With a socket that only sends, sock_wfree() and
 * what it calls drop to the zero-work floor's share of a cache hit's CPU samples (measured:
 * tests/bench/README.md, "A UDP socket that only sends"). Nobody waits on that socket.
 *
 * Both sockets join one SO_REUSEPORT group. A one-instruction program, "return 0", steers every
 * datagram to member 0, the receiving socket, which created the group; as the sending socket's
 * ordinary filter the same program drops whatever still reaches it (broadcasts). A second
 * daemon on the port cannot take queries away: the program picks member 0 whoever joins, and
 * its TCP listener fails as before. Where SO_REUSEPORT is refused (old kernel, seccomp) the
 * listener is one socket doing both, as before.
 */
static const struct sock_filter server_return0[] = {BPF_STMT(BPF_RET | BPF_K, 0)};

static void
server_udp_group(int fd)
{
	struct sock_fprog prog = {.len = 1, .filter = (struct sock_filter *)server_return0};
	int one = 1;

	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == 0)
		setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog));
}

/* The sending socket of a bound receiving socket `fd`, or `fd` itself if there can be none. */
static int
server_udp_sender(int fd)
{
	struct sock_fprog prog = {.len = 1, .filter = (struct sock_filter *)server_return0};
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss), optlen = sizeof(int);
	int one = 1, v6only = 1, out;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return fd;
	out = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (out < 0)
		return fd;
	if (ss.ss_family == AF_INET6 &&
	    (getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &optlen) < 0 ||
	     setsockopt(out, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)) < 0))
		goto fail;
	if (setsockopt(out, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(out, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    setsockopt(out, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0 ||
	    bind(out, (struct sockaddr *)&ss, len) < 0)
		goto fail;
	return out;
fail:
	close(out);
	return fd;
}

/* Make a receiving socket blocking with a receive timeout, for server_udp_may_wait(); every
 * other call on it passes MSG_DONTWAIT. False (and left non-blocking) if that cannot be done. */
static bool
server_udp_waitable(int fd)
{
	struct timeval tv = {.tv_sec = 0, .tv_usec = SERVER_UDP_WAIT_US};
	int fl = fcntl(fd, F_GETFL);

	return fl >= 0 && setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0 &&
	       fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == 0;
}

static int
server_socket(const struct config_sockaddr *a, int type, bool wildcard)
{
	int one = 1;
	int fd = socket(a->ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (type == SOCK_DGRAM)
		server_udp_group(fd);
	if (a->ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (wildcard && type == SOCK_DGRAM) {
		if (a->ss.ss_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
		else
			setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
	}
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

/* UDP and TCP listeners on one address. */
static int
server_listen(struct server *s, const struct config_sockaddr *a, bool wildcard, char *err,
	      size_t errlen)
{
	char text[NETADDR_TEXT_MAX];
	struct server_udp *u;
	int fd;

	if (s->n_udp >= SERVER_MAX_LISTENERS) {
		snprintf(err, errlen, "too many listen addresses (max %d)", SERVER_MAX_LISTENERS);
		return -E2BIG;
	}
	fd = server_socket(a, SOCK_DGRAM, wildcard);
	if (fd < 0)
		goto fail;
	u = &s->udp[s->n_udp++];
	*u = (struct server_udp){.srv = s,
				 .fd = fd,
				 .send_fd = server_udp_sender(fd),
				 .wildcard = wildcard,
				 .can_wait = server_udp_waitable(fd)};
	u->ev = event_new(s->base, fd, EV_READ | EV_PERSIST, server_udp_read, u);
	if (!u->ev || event_add(u->ev, NULL) < 0) {
		snprintf(err, errlen, "cannot watch UDP socket on %s",
			 netaddr_text(&a->ss, NETADDR_PORT, text, sizeof(text)));
		return -ENOMEM;
	}
	fd = server_socket(a, SOCK_STREAM, wildcard);
	if (fd < 0)
		goto fail;
	s->tcp[s->n_tcp] = evconnlistener_new(s->base, server_tcp_accept, s, LEV_OPT_CLOSE_ON_FREE,
					      SERVER_TCP_BACKLOG, fd);
	if (!s->tcp[s->n_tcp]) {
		close(fd);
		snprintf(err, errlen, "cannot listen on TCP %s",
			 netaddr_text(&a->ss, NETADDR_PORT, text, sizeof(text)));
		return -EIO;
	}
	s->n_tcp++;
	return 0;
fail:
	snprintf(err, errlen, "failed to create listening socket for %s: %s",
		 netaddr_text(&a->ss, NETADDR_PORT, text, sizeof(text)), strerror(-fd));
	return fd;
}

static void
server_sockaddr(struct config_sockaddr *a, int family, const void *ip, uint16_t port)
{
	memset(a, 0, sizeof(*a));
	if (family == AF_INET6) {
		struct sockaddr_in6 *v6 = (void *)&a->ss;
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons(port);
		if (ip)
			memcpy(&v6->sin6_addr, ip, 16);
		a->len = sizeof(*v6);
	} else {
		struct sockaddr_in *v4 = (void *)&a->ss;
		v4->sin_family = AF_INET;
		v4->sin_port = htons(port);
		if (ip)
			memcpy(&v4->sin_addr, ip, 4);
		a->len = sizeof(*v4);
	}
}

/* -i NAME: every address the interface has now (dnsmasq's --bind-interfaces behaviour). */
static int
server_listen_interfaces(struct server *s, char *err, size_t errlen)
{
	struct ifaddrs *ifs, *i;
	int r = 0;

	if (getifaddrs(&ifs) < 0) {
		snprintf(err, errlen, "cannot list interfaces: %s", strerror(errno));
		return -errno;
	}
	for (size_t n = 0; n < s->cfg->n_interfaces && r == 0; n++) {
		size_t found = 0;
		for (i = ifs; i && r == 0; i = i->ifa_next) {
			struct config_sockaddr a;
			int fam = i->ifa_addr ? i->ifa_addr->sa_family : AF_UNSPEC;
			if (strcmp(i->ifa_name, s->cfg->interfaces[n]) != 0 ||
			    (fam != AF_INET && fam != AF_INET6))
				continue;
			server_sockaddr(
				&a, fam,
				fam == AF_INET ? (const void *)&((struct sockaddr_in *)i->ifa_addr)
							 ->sin_addr
					       : (const void *)&((struct sockaddr_in6 *)i->ifa_addr)
							 ->sin6_addr,
				s->cfg->port);
			if (fam == AF_INET6)
				((struct sockaddr_in6 *)&a.ss)->sin6_scope_id =
					((struct sockaddr_in6 *)i->ifa_addr)->sin6_scope_id;
			r = server_listen(s, &a, false, err, errlen);
			found++;
		}
		if (!found && r == 0) {
			snprintf(err, errlen, "unknown interface %s (or it has no address)",
				 s->cfg->interfaces[n]);
			r = -ENODEV;
		}
	}
	freeifaddrs(ifs);
	return r;
}

static int
server_listen_all(struct server *s, char *err, size_t errlen)
{
	struct config_sockaddr a;
	int r;

	if (s->cfg->port == 0) /* -p 0: DNS off, as in dnsmasq */
		return 0;
	for (size_t i = 0; i < s->cfg->n_listen; i++) {
		r = server_listen(s, &s->cfg->listen[i], false, err, errlen);
		if (r < 0)
			return r;
	}
	if (s->cfg->n_interfaces)
		return server_listen_interfaces(s, err, errlen);
	if (s->cfg->n_listen)
		return 0;
	server_sockaddr(&a, AF_INET, NULL, s->cfg->port);
	r = server_listen(s, &a, true, err, errlen);
	if (r < 0)
		return r;
	server_sockaddr(&a, AF_INET6, NULL, s->cfg->port);
	if (server_listen(s, &a, true, err, errlen) < 0) /* a host without IPv6 */
		log_warn("%s; serving IPv4 only", err);
	return 0;
}

struct server *
server_new(struct event_base *base, const struct config *cfg, struct query_engine *qe,
	   struct stats *stats, char *err, size_t errlen)
{
	struct server *s = calloc(1, sizeof(*s));

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->base = base;
	s->cfg = cfg;
	s->qe = qe;
	s->stats = stats;
	s->rl_send = (struct log_ratelimit)LOG_RATELIMIT_INIT(10000, 1);
	server_tcp_init(s);
	if (server_listen_all(s, err, errlen) < 0) {
		server_free(s);
		return NULL;
	}
	return s;
}

void
server_stop_listening(struct server *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_udp; i++) {
		struct server_udp *u = &s->udp[i];

		if (u->ev) {
			event_free(u->ev);
			u->ev = NULL;
		}
		if (u->send_fd != u->fd) {
			close(u->fd);
			u->fd = u->send_fd; /* late answers still leave from it */
		}
	}
	for (size_t i = 0; i < s->n_tcp; i++)
		evconnlistener_free(s->tcp[i]);
	s->n_tcp = 0;
}

void
server_free(struct server *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_udp; i++) {
		if (s->udp[i].ev)
			event_free(s->udp[i].ev);
		if (s->udp[i].send_fd != s->udp[i].fd)
			close(s->udp[i].send_fd);
		close(s->udp[i].fd);
	}
	for (size_t i = 0; i < s->n_tcp; i++)
		evconnlistener_free(s->tcp[i]);
	/* The engine was freed first (main.c) and released every pending query. */
	server_tcp_close_all(s);
	free(s);
}
