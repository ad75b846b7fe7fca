/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * server_tcp.c - the DNS front end's TCP connections (the listeners are server.c's).
 *
 * One bufferevent per connection; messages are 2-byte framed, several may be in flight
 * (pipelining) and are answered as they complete, not in order. Caps: connections
 * (--tcp-max-connections), queries in flight per connection, unsent output per connection.
 * A connection at either of its caps stops reading queries (flow control: the client's sends
 * block in its kernel) and resumes when a query completes or the output drains below the low
 * mark. A connection that neither sends nor reads anything for --tcp-idle-timeout is closed,
 * paused or not. After the client's EOF (a half-close) the pending queries are still answered
 * and the connection closes once they are written (RFC 7766 6.2.4). A connection object
 * outlives its socket while queries on it are still pending (they drop their answers).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "kubemasq/defs.h"
#include "kubemasq/dnsmsg.h"
#include "kubemasq/log.h"
#include "lib/config.h"
#include "lib/stats.h"
#include "daemon/query.h"
#include "daemon/server_impl.h"

#define SERVER_TCP_MAX_PENDING 64 /* queries in flight per connection before reads pause */
#define SERVER_TCP_OUTPUT_HIGH (256 * 1024) /* unsent bytes per connection before reads pause */
#define SERVER_TCP_OUTPUT_LOW (64 * 1024)   /* ... and when they resume */
#define SERVER_TCP_OUT 65536

struct server_tcp_conn {
	struct server *srv;
	struct bufferevent *bev; /* NULL once closed */
	struct event *idle;	 /* closes the connection; progress puts it off */
	struct evbuffer_cb_entry *in_cb, *out_cb;
	struct server_tcp_conn *prev, *next;
	unsigned pending; /* queries waiting on upstreams */
	bool full;	  /* output passed the high mark and has not drained yet */
	bool eof;	  /* half-closed: answer what is pending, then close */
	struct sockaddr_storage peer;
	socklen_t peer_len;
};

static void
server_tcp_conn_unlink(struct server_tcp_conn *c)
{
	struct server *s = c->srv;

	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	s->n_conns--;
}

/* Close the socket; the object itself goes when no query on it is pending. */
static void
server_tcp_close(struct server_tcp_conn *c)
{
	if (c->bev) {
		/* ours first, so that nothing libevent does to the buffers on the way reaches us */
		evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->in_cb);
		evbuffer_remove_cb_entry(bufferevent_get_output(c->bev), c->out_cb);
		event_free(c->idle);
		c->idle = NULL;
		bufferevent_free(c->bev);
		c->bev = NULL;
		server_tcp_conn_unlink(c);
	}
	if (!c->pending)
		free(c);
}

static int
server_tcp_write(struct server_tcp_conn *c, const uint8_t *pkt, size_t len)
{
	uint8_t hdr[2];

	if (!c->bev)
		return -ENOTCONN; /* the client left before its answer came */
	dnsmsg_put16(hdr, (uint16_t)len);
	if (bufferevent_write(c->bev, hdr, 2) < 0 || bufferevent_write(c->bev, pkt, len) < 0)
		return -ENOMEM;
	return 0;
}

static int
server_tcp_send(const struct query_origin *o, const uint8_t *pkt, size_t len)
{
	return server_tcp_write(o->conn, pkt, len);
}

static void
server_tcp_hold(const struct query_origin *o)
{
	struct server_tcp_conn *c = o->conn;

	c->pending++;
}

static void
server_tcp_release(const struct query_origin *o)
{
	struct server_tcp_conn *c = o->conn;

	c->pending--;
	if (!c->bev) {
		if (!c->pending)
			free(c);
		return;
	}
	/* Reads may have paused at the pending cap, and a half-closed connection may now be done:
	 * server_tcp_serve() decides, from the loop (never from inside the engine calling us). */
	bufferevent_trigger(c->bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

/*
 * Whether to stop taking this client's queries: the engine holds as many of them as it may,
 * or the client has not read what we sent. Output over the high mark pauses until it drains
 * to the low mark (server_tcp_drained), so a slow reader is served in long runs rather than
 * one query per write.
 */
static bool
server_tcp_busy(struct server_tcp_conn *c)
{
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) >= SERVER_TCP_OUTPUT_HIGH)
		c->full = true;
	return c->full || c->pending >= SERVER_TCP_MAX_PENDING;
}

/*
 * Answer every complete message in the input buffer while the connection is under its caps,
 * then say what happens next: reading from the socket pauses while busy and resumes when not
 * (after a drain or a release); after the client's EOF, the connection closes once nothing is
 * pending and everything is written. Reading from the socket stays on only while no complete
 * message waits in the input buffer, so that buffer holds at most one message and one read
 * (libevent reads 16 KiB at a time): a client that floods without reading fills its kernel
 * buffers, not ours.
 */
static void
server_tcp_serve(struct server_tcp_conn *c)
{
	struct bufferevent *bev = c->bev;
	struct evbuffer *in = bufferevent_get_input(bev);
	static uint8_t out[SERVER_TCP_OUT];
	uint8_t hdr[2];

	for (;;) {
		struct query_origin o = {
			.send = server_tcp_send,
			.hold = server_tcp_hold,
			.release = server_tcp_release,
			.tcp = true,
			.fd = -1,
			.peer = c->peer,
			.peer_len = c->peer_len,
			.conn = c,
		};
		size_t msglen, len;
		uint8_t *msg;

		if (server_tcp_busy(c)) {
			bufferevent_disable(bev, EV_READ);
			return;
		}
		if (evbuffer_copyout(in, hdr, 2) < 2)
			break;
		msglen = dnsmsg_get16(hdr);
		if (evbuffer_get_length(in) < 2 + msglen)
			break;
		msg = evbuffer_pullup(in, (ev_ssize_t)(2 + msglen));
		len = query_handle(c->srv->qe, msg + 2, msglen, &o, out, sizeof(out));
		evbuffer_drain(in, 2 + msglen);
		if (len)
			server_tcp_write(c, out, len);
	}
	if (!c->eof) {
		if (!(bufferevent_get_enabled(bev) & EV_READ))
			bufferevent_enable(bev, EV_READ);
	} else if (!c->pending && !evbuffer_get_length(bufferevent_get_output(bev))) {
		server_tcp_close(c); /* every answer is written (a partial message is dropped) */
	}
}

/* libevent read from the socket, or server_tcp_release() asks for another look. */
static void
server_tcp_read(struct bufferevent *bev UNUSED, void *arg)
{
	server_tcp_serve(arg);
}

/* A write left at most SERVER_TCP_OUTPUT_LOW bytes unsent (the write watermark). */
static void
server_tcp_drained(struct bufferevent *bev UNUSED, void *arg)
{
	struct server_tcp_conn *c = arg;

	c->full = false;
	server_tcp_serve(c);
}

/*
 * Progress, which puts the idle deadline off: bytes read from the client (the input grows) or
 * written to it (the output shrinks). What we take from the input or add to the output is not
 * progress: a client that sends nothing and reads nothing is idle whatever we still hold for it.
 */
static void
server_tcp_progress_in(struct evbuffer *b UNUSED, const struct evbuffer_cb_info *info, void *arg)
{
	struct server_tcp_conn *c = arg;

	if (info->n_added)
		event_add(c->idle, c->srv->tcp_idle);
}

static void
server_tcp_progress_out(struct evbuffer *b UNUSED, const struct evbuffer_cb_info *info, void *arg)
{
	struct server_tcp_conn *c = arg;

	if (info->n_deleted)
		event_add(c->idle, c->srv->tcp_idle);
}

static void
server_tcp_idle(evutil_socket_t fd UNUSED, short what UNUSED, void *arg)
{
	struct server_tcp_conn *c = arg;

	c->srv->stats->tcp_idle_closed++;
	server_tcp_close(c);
}

static void
server_tcp_event(struct bufferevent *bev UNUSED, short what, void *arg)
{
	struct server_tcp_conn *c = arg;

	if (what == (BEV_EVENT_READING | BEV_EVENT_EOF)) {
		/* A half-close (RFC 7766 6.2.4): libevent has stopped reading; answer what was
		 * asked, then close. A client that is gone altogether fails our next write. */
		c->eof = true;
		server_tcp_serve(c);
		return;
	}
	server_tcp_close(c); /* a reset, or a write that failed */
}

/* A connection on `fd` (closed on failure), with its idle deadline running; not yet linked. */
static struct server_tcp_conn *
server_tcp_conn_new(struct server *s, evutil_socket_t fd)
{
	struct server_tcp_conn *c = calloc(1, sizeof(*c));

	if (!c) {
		close(fd);
		return NULL;
	}
	c->srv = s;
	c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->idle = evtimer_new(s->base, server_tcp_idle, c);
	if (c->bev) {
		c->in_cb =
			evbuffer_add_cb(bufferevent_get_input(c->bev), server_tcp_progress_in, c);
		c->out_cb =
			evbuffer_add_cb(bufferevent_get_output(c->bev), server_tcp_progress_out, c);
	}
	if (!c->bev || !c->idle || !c->in_cb || !c->out_cb || event_add(c->idle, s->tcp_idle) < 0) {
		if (c->idle)
			event_free(c->idle);
		if (c->bev)
			bufferevent_free(c->bev); /* closes fd */
		else
			close(fd);
		free(c);
		return NULL;
	}
	bufferevent_setcb(c->bev, server_tcp_read, server_tcp_drained, server_tcp_event, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, SERVER_TCP_OUTPUT_LOW, 0);
	return c;
}

void
server_tcp_accept(struct evconnlistener *l UNUSED, evutil_socket_t fd, struct sockaddr *sa,
		  int salen, void *arg)
{
	struct server *s = arg;
	struct server_tcp_conn *c;

	if (s->n_conns >= s->cfg->tcp_max_connections) {
		s->stats->tcp_refused++;
		log_ratelimited(
			&s->rl_tcp_cap, LOG_WARNING,
			"TCP connection refused: %u connections open (--tcp-max-connections)",
			s->n_conns);
		close(fd);
		return;
	}
	c = server_tcp_conn_new(s, fd);
	if (!c)
		return;
	memcpy(&c->peer, sa, MIN((size_t)salen, sizeof(c->peer)));
	c->peer_len = (socklen_t)salen;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->n_conns++;
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

void
server_tcp_init(struct server *s)
{
	s->rl_tcp_cap = (struct log_ratelimit)LOG_RATELIMIT_INIT(10000, 1);
	/* Every connection's deadline has this one duration, and moves on every read or write: as
	 * a common timeout, moving it is a list operation instead of a heap one. */
	s->tcp_idle_tv = (struct timeval){.tv_sec = s->cfg->tcp_idle_timeout};
	s->tcp_idle = event_base_init_common_timeout(s->base, &s->tcp_idle_tv);
	if (!s->tcp_idle)
		s->tcp_idle = &s->tcp_idle_tv;
}

void
server_tcp_close_all(struct server *s)
{
	while (s->conns)
		server_tcp_close(s->conns);
}
