/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * upstream_dns_tcp.c - the forwarder's TCP retry: when a server's UDP reply comes truncated
 * (TC=1), the query is asked again over one non-blocking TCP connection to that server, with a
 * fresh random ID; the reply is checked like a UDP one before it completes the query, and a
 * failed connection counts against the server and moves the query on. See upstream_dns_impl.h
 * for what the forwarder's files share.
 */
#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kubemasq/defs.h"
#include "kubemasq/dnsmsg.h"
#include "kubemasq/log.h"
#include "lib/clock.h"
#include "upstream/upstream_dns_impl.h"

static void upstream_dns_tcp_cb(evutil_socket_t fd, short what, void *arg);

void
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

int
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
	t->started = clock_now_ms();
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
	upstream_dns_server_answered(s, clock_now_ms() - t->started, dnsmsg_rcode(pkt));
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
