/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * metrics_http.c - the HTTP endpoint: evhttp on the daemon's own event loop, so a scrape reads the
 * counters without locks and costs the DNS path nothing between scrapes. Only GET and HEAD of
 * /metrics, /health and /ready are served; everything a client can grow is capped (connections,
 * header and body sizes, an idle timeout). libevent 2.1 has no evhttp_set_max_connections, so we
 * make each connection's bufferevent ourselves and count it (metrics_new_bev); over the cap a new
 * one is shut down at once. What /metrics says is written by metrics_text.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "kubemasq/defs.h"
#include "kubemasq/log.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "daemon/metrics_http.h"

/* Probes and one or two scrapers: a handful of connections is plenty, and each costs buffers. */
#define METRICS_MAX_CONNECTIONS 16
/* clang-format off */
#define METRICS_MAX_HEADERS	8192
#define METRICS_MAX_BODY	1024
#define METRICS_TIMEOUT_S	10
#define METRICS_DEADLINE_MS	30000	/* a connection's whole life: evhttp's timeout is per read,
					 * so a client trickling header lines would keep its slot */
/* clang-format on */

struct metrics {
	struct event_base *base;
	struct evhttp *http;
	struct metrics_sources src;
	struct event *sweep; /* gives back freed connections while any is held */
	struct bufferevent *conns[METRICS_MAX_CONNECTIONS]; /* held references */
	msec_t born[METRICS_MAX_CONNECTIONS];		    /* when each was accepted */
	unsigned n_conns;
	uint64_t refused_conns;
	struct log_ratelimit rl_refused;
	double start_time; /* metrics_process_start_time(), read once */
};

/* --- address --- */

static int
metrics_parse_port(const char *p, uint16_t *port)
{
	char *end;
	unsigned long v;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	v = strtoul(p, &end, 10);
	if (*end || v == 0 || v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

int
metrics_parse_address(const char *text, struct sockaddr_storage *ss, socklen_t *len, char *err,
		      size_t errlen)
{
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon, *hb = text;
	size_t hl;
	uint16_t port;

	memset(ss, 0, sizeof(*ss));
	colon = text ? strrchr(text, ':') : NULL;
	if (!colon)
		goto bad;
	hl = (size_t)(colon - text);
	if (text[0] == '[') {
		if (hl < 2 || text[hl - 1] != ']')
			goto bad;
		hb = text + 1;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof(host) || metrics_parse_port(colon + 1, &port) < 0)
		goto bad;
	memcpy(host, hb, hl);
	host[hl] = '\0';
	if (text[0] != '[' && inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons(port);
		*len = sizeof(*v4);
		return 0;
	}
	if (text[0] == '[' && inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons(port);
		*len = sizeof(*v6);
		return 0;
	}
bad:
	snprintf(err, errlen,
		 "bad --metrics-address '%s': expected IPv4:PORT or [IPv6]:PORT (a literal "
		 "address and a port 1-65535)",
		 text ? text : "");
	return -EINVAL;
}

/* --- HTTP --- */

/* Send and free `b` (may be NULL). libevent 2.1 would send the body on HEAD too: a HEAD reply
 * gets the headers, Content-Length included, and nothing after them. */
static void
metrics_send(struct evhttp_request *req, int code, const char *reason, struct evbuffer *b)
{
	char len[24];

	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
		snprintf(len, sizeof(len), "%zu", b ? evbuffer_get_length(b) : (size_t)0);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Length", len);
		evhttp_send_reply(req, code, reason, NULL);
	} else {
		evhttp_send_reply(req, code, reason, b);
	}
	if (b)
		evbuffer_free(b);
}

static void
metrics_reply_text(struct evhttp_request *req, int code, const char *reason, const char *text)
{
	struct evbuffer *b = evbuffer_new();

	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "text/plain; charset=utf-8");
	if (b)
		evbuffer_add_printf(b, "%s\n", text);
	metrics_send(req, code, reason, b);
}

static void
metrics_serve_metrics(struct metrics *m, struct evhttp_request *req)
{
	struct evbuffer *b = evbuffer_new();
	struct metrics_process proc;
	int err = -ENOMEM;

	if (b && (err = metrics_format(&m->src, b)) == 0) /* then this port's own figure */
		err = metrics_format_endpoint(m->refused_conns, b);
	if (err == 0) { /* and the process's, read now */
		metrics_process_read(&proc, m->start_time);
		err = metrics_format_process(&proc, b);
	}
	if (err < 0) {
		if (b) /* evbuffer_free(NULL) is not safe */
			evbuffer_free(b);
		metrics_reply_text(req, 500, "Internal Server Error", "out of memory");
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "text/plain; version=0.0.4; charset=utf-8");
	metrics_send(req, 200, "OK", b);
}

static void
metrics_on_request(struct evhttp_request *req, void *arg)
{
	struct metrics *m = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	const char *why;
	char buf[512];

	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
		metrics_reply_text(req, 405, "Method Not Allowed", "method not allowed");
	} else if (!path)
		metrics_reply_text(req, 400, "Bad Request", "bad request");
	else if (strcmp(path, "/metrics") == 0)
		metrics_serve_metrics(m, req);
	else if (strcmp(path, "/health") == 0)
		metrics_reply_text(req, 200, "OK", "ok");
	else if (strcmp(path, "/ready") != 0)
		metrics_reply_text(req, 404, "Not Found", "not found");
	else if ((why = metrics_not_ready(&m->src, buf, sizeof(buf))))
		metrics_reply_text(req, 503, "Service Unavailable", why);
	else
		metrics_reply_text(req, 200, "OK", "ready");
}

/* Give back the connections evhttp has let go. evhttp always keeps an event callback on the
 * bufferevent of a live connection and bufferevent_free() clears it, so a held bufferevent
 * without one is a connection evhttp freed: dropping our reference finalizes it (and closes
 * its socket). */
static void
metrics_sweep(struct metrics *m)
{
	bufferevent_event_cb eventcb;

	msec_t now = clock_now_ms();

	for (size_t i = 0; i < METRICS_MAX_CONNECTIONS; i++) {
		if (!m->conns[i])
			continue;
		bufferevent_getcb(m->conns[i], NULL, NULL, &eventcb, NULL);
		if (eventcb) {
			evutil_socket_t fd = bufferevent_getfd(m->conns[i]);

			/* past its deadline: evhttp sees the end and frees it; a later sweep
			 * drops our reference */
			if (now - m->born[i] > METRICS_DEADLINE_MS && fd >= 0)
				shutdown(fd, SHUT_RDWR);
			continue;
		}
		bufferevent_decref(m->conns[i]);
		m->conns[i] = NULL;
		m->n_conns--;
	}
}

static void
metrics_on_sweep(evutil_socket_t unused UNUSED, short what UNUSED, void *arg)
{
	static const struct timeval second = {1, 0};
	struct metrics *m = arg;

	metrics_sweep(m);
	if (m->n_conns)
		evtimer_add(m->sweep, &second);
}

/* A connection over the cap, on the loop turn after its accept (evhttp has given it its socket
 * by then): shut the socket down, so evhttp reads EOF and frees the connection at once. The
 * reference taken in metrics_new_bev keeps the bufferevent (and its socket) valid until here. */
static void
metrics_refuse(evutil_socket_t unused UNUSED, short what UNUSED, void *arg)
{
	struct bufferevent *bev = arg;
	evutil_socket_t fd = bufferevent_getfd(bev);

	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
	bufferevent_decref(bev);
}

/*
 * evhttp asks for each accepted connection's bufferevent, before it has a socket. libevent 2.1
 * has no evhttp_set_max_connections and tells nobody when a connection goes, so we hold a
 * reference on each one (metrics_sweep gives it back). Returning NULL would not refuse anything
 * (evhttp would make its own), so one over the cap is shut down on the next loop turn.
 */
static struct bufferevent *
metrics_new_bev(struct event_base *base, void *arg)
{
	static const struct timeval now = {0, 0}, second = {1, 0};
	struct metrics *m = arg;
	struct bufferevent *bev;
	size_t i;

	metrics_sweep(m);
	bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!bev)
		return NULL;
	bufferevent_incref(bev);
	if (m->n_conns < METRICS_MAX_CONNECTIONS) {
		for (i = 0; m->conns[i]; i++)
			;
		m->conns[i] = bev;
		m->born[i] = clock_now_ms();
		m->n_conns++;
		evtimer_add(m->sweep, &second);
		return bev;
	}
	m->refused_conns++;
	log_ratelimited(&m->rl_refused, LOG_WARNING, "metrics: too many HTTP connections (max: %d)",
			METRICS_MAX_CONNECTIONS);
	if (event_base_once(base, -1, EV_TIMEOUT, metrics_refuse, bev, &now) < 0)
		bufferevent_decref(bev); /* cannot refuse it: serve it, uncounted */
	return bev;
}

/* Our own socket, so that a bad address or a port in use gets a clear message. */
static int
metrics_listen(const struct sockaddr_storage *ss, socklen_t len, const char *text, char *err,
	       size_t errlen)
{
	int one = 1, e;
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		e = errno;
		snprintf(err, errlen, "--metrics-address %s: socket: %s", text, strerror(e));
		return -e;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)ss, len) < 0 || listen(fd, 64) < 0) {
		e = errno;
		snprintf(err, errlen, "--metrics-address %s: cannot listen: %s", text, strerror(e));
		close(fd);
		return -e;
	}
	return fd;
}

struct metrics *
metrics_new(struct event_base *base, const struct metrics_sources *src, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct metrics *m;
	int fd;

	if (metrics_parse_address(src->cfg->metrics_address, &ss, &len, err, errlen) < 0)
		return NULL;
	m = calloc(1, sizeof(*m));
	if (!m || !(m->http = evhttp_new(base))) {
		free(m);
		snprintf(err, errlen, "metrics: out of memory");
		return NULL;
	}
	m->base = base;
	m->src = *src;
	m->sweep = evtimer_new(base, metrics_on_sweep, m);
	if (!m->sweep) {
		metrics_free(m);
		snprintf(err, errlen, "metrics: out of memory");
		return NULL;
	}
	m->rl_refused = (struct log_ratelimit)LOG_RATELIMIT_INIT(10000, 1);
	m->start_time = metrics_process_start_time();
	/* every method reaches metrics_on_request, which answers 405 (evhttp's own refusal of a
	 * method it was told to disallow is a 501) */
	evhttp_set_allowed_methods(m->http, 0xffff);
	evhttp_set_max_headers_size(m->http, METRICS_MAX_HEADERS);
	evhttp_set_max_body_size(m->http, METRICS_MAX_BODY);
	evhttp_set_timeout(m->http, METRICS_TIMEOUT_S);
	evhttp_set_bevcb(m->http, metrics_new_bev, m);
	evhttp_set_gencb(m->http, metrics_on_request, m);
	fd = metrics_listen(&ss, len, src->cfg->metrics_address, err, errlen);
	if (fd < 0 || !evhttp_accept_socket_with_handle(m->http, fd)) {
		if (fd >= 0) {
			close(fd);
			snprintf(err, errlen, "--metrics-address %s: cannot serve",
				 src->cfg->metrics_address);
		}
		metrics_free(m);
		return NULL;
	}
	log_info("metrics: serving /metrics, /health and /ready on %s", src->cfg->metrics_address);
	return m;
}

void
metrics_free(struct metrics *m)
{
	if (!m)
		return;
	evhttp_free(m->http); /* frees every connection; then our references go */
	for (size_t i = 0; i < METRICS_MAX_CONNECTIONS; i++)
		if (m->conns[i])
			bufferevent_decref(m->conns[i]);
	if (m->sweep)
		event_free(m->sweep);
	free(m);
}
