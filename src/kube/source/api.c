/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * api.c - list and watch against the Kubernetes API server, on libevent's HTTP client (over
 * libevent_openssl for https). Each collection runs its own loop: a paged LIST applied page by
 * page inside kube_store_replace_begin/end, so a re-list never holds two copies of the cluster
 * and the old objects keep answering between pages; then a WATCH from the list's
 * resourceVersion whose chunked body is framed by JSON object. A normal end of the stream
 * watches again from the last resourceVersion; 410 (HTTP or an ERROR event on a watch, or an
 * expired continue token on a LIST page) lists again from the first page, at once unless it
 * keeps happening; 401 re-reads the token; anything else (refused, 5xx, TLS, timeouts, garbage)
 * backs off 0.8 s doubling to 30 s with jitter. libevent callbacks only record what happened
 * and schedule the collection's step event: connections are freed and requests made from
 * there, never from inside libevent's own callbacks. The watch body's events are api_watch.c's.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "kubemasq/defs.h"
#include "kubemasq/log.h"
#include "kubemasq/metrics.h"
#include "lib/clock.h"
#include "kube/kube_status.h"
#include "kube/store.h"
#include "kube/source/api_impl.h"
#include "kube/source/auth.h"
#include "kube/source/snapshot.h"

/* ---------------------------------------------------------------- small helpers */

static const char *const api_paths[4][2] = {
	[KUBE_KIND_NAMESPACE] = {"namespaces", "/api/v1/namespaces"},
	[KUBE_KIND_SERVICE] = {"services", "/api/v1/services"},
	[KUBE_KIND_SLICE] = {"endpointslices", "/apis/discovery.k8s.io/v1/endpointslices"},
	[KUBE_KIND_POD] = {"pods", "/api/v1/pods"},
};

static uint32_t
api_rand(uint32_t lo, uint32_t hi)
{
	uint32_t r;

	evutil_secure_rng_get_bytes(&r, sizeof(r));
	return lo + r % (hi - lo + 1);
}

/* 0.8 s doubling to 30 s, then jitter in [0.5, 1.0] of it so collections and replicas that
 * failed together do not come back together. */
msec_t
api_backoff_ms(unsigned attempt)
{
	msec_t d = API_BACKOFF_FIRST_MS;

	for (unsigned i = 1; i < attempt && d < API_BACKOFF_MAX_MS; i++)
		d *= 2;
	if (d > API_BACKOFF_MAX_MS)
		d = API_BACKOFF_MAX_MS;
	return d / 2 + api_rand(0, (uint32_t)(d / 2));
}

static void
api_timer(struct event *ev, msec_t ms)
{
	struct timeval tv = {.tv_sec = (time_t)(ms / 1000),
			     .tv_usec = (suseconds_t)(ms % 1000) * 1000};

	event_add(ev, &tv);
}

static bool
api_all(const struct kube_api *a, bool synced)
{
	for (size_t i = 0; i < a->n_coll; i++)
		if (!(synced ? a->coll[i].synced : a->coll[i].ok))
			return false;
	return true;
}

/* ---------------------------------------------------------------- link state */

/* A response came back as it should: the collection is healthy again. */
static void
api_success(struct api_coll *c)
{
	struct kube_api *a = c->api;

	c->ok = true;
	c->attempt = 0;
	if (a->link_up || !api_all(a, false))
		return;
	a->link_up = true;
	a->reason[0] = '\0';
	log_info("kube: API server %s is back after %.1f s", kube_auth_describe(a->cfg.auth),
		 (double)(clock_now_ms() - a->down_since) / 1000.0);
}

/* Close the current request (from the loop) and run `next` after `delay` ms. */
void
api_schedule(struct api_coll *c, enum api_next next, msec_t delay)
{
	c->aborted = true;
	c->next = next;
	event_del(c->guard);
	api_timer(c->step, delay);
	if (delay)
		api_timer(c->closer, 0);
}

/* A failure: log it (the first one of an outage as "lost", the others rate-limited), back off
 * and then do `next`. */
void
api_fail(struct api_coll *c, enum api_next next, const char *fmt, ...)
{
	struct kube_api *a = c->api;
	char why[400];
	msec_t delay;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	c->ok = false;
	c->attempt++;
	delay = api_backoff_ms(c->attempt);
	snprintf(a->reason, sizeof(a->reason), "%s: %s", c->name, why);
	if (a->link_up) {
		a->link_up = false;
		a->down_since = clock_now_ms();
		log_warn("kube: lost the API server %s: %s; %s", kube_auth_describe(a->cfg.auth),
			 a->reason,
			 api_all(a, true)
				 ? "serving the last known state"
				 : "the cluster zone answers SERVFAIL until the first sync");
	} else {
		log_ratelimited(&a->rl_fail, LOG_WARNING,
				"kube: %s (attempt %u, retrying in %.1f s)", a->reason, c->attempt,
				(double)delay / 1000.0);
	}
	api_schedule(c, next, delay);
}

/*
 * A 410 is the protocol, not an outage: list again from the first page at once, with no
 * back-off and no "lost" line. But a server that answers 410 again right after every re-list
 * (or a LIST whose continue token always expires) would have us re-list in a loop, so past
 * API_EXPIRED_AT_ONCE in a row each further one waits the back-off, growing; api_watch.c resets
 * the count once a watch is under way. The link state is left alone: the server answers.
 */
void
api_expired(struct api_coll *c, const char *what)
{
	struct kube_api *a = c->api;
	msec_t delay;

	c->rv[0] = '\0';
	c->expired++;
	if (c->expired <= API_EXPIRED_AT_ONCE) {
		log_info("kube: %s: %s; listing again from the first page", c->name, what);
		api_schedule(c, API_NEXT_LIST, 0);
		return;
	}
	delay = api_backoff_ms(c->expired - API_EXPIRED_AT_ONCE);
	snprintf(a->reason, sizeof(a->reason), "%s: 410 Gone %u times in a row", c->name,
		 c->expired);
	log_ratelimited(&a->rl_fail, LOG_WARNING,
			"kube: %s: %s; 410 Gone %u times in a row without a watch getting under "
			"way: backing off, listing again in %.1f s",
			c->name, what, c->expired, (double)delay / 1000.0);
	api_schedule(c, API_NEXT_LIST, delay);
}

void
api_bad(struct api_coll *c, bool fatal, const char *fmt, ...)
{
	struct kube_api *a = c->api;
	char why[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	a->bad_events++;
	log_ratelimited(&a->rl_bad, LOG_WARNING, "kube: %s: bad input: %s%s", c->name, why,
			fatal ? "; resetting the connection" : "; skipped");
}

/* ---------------------------------------------------------------- requests */

static void api_headers_guard(evutil_socket_t fd, short what, void *arg);
static void api_done(struct evhttp_request *req, void *arg);
static int api_headers(struct evhttp_request *req, void *arg);
static void api_error(enum evhttp_request_error err, void *arg);

static void
api_close(struct api_coll *c)
{
	event_del(c->guard);
	if (c->conn)
		evhttp_connection_free(c->conn); /* frees a pending request without callbacks */
	c->conn = NULL;
	c->ssl = NULL;
	c->aborted = false;
	c->streaming = false;
	c->err = EVREQ_HTTP_REQUEST_CANCEL; /* none yet */
	kube_api_framer_reset(&c->framer);
}

static bool
api_host_is_ip(const char *host)
{
	struct in6_addr a6;

	return evutil_inet_pton(AF_INET, host, &a6) == 1 ||
	       evutil_inet_pton(AF_INET6, host, &a6) == 1;
}

/* A new connection to the server (TLS when the URL says https). */
static int
api_connect(struct api_coll *c, unsigned timeout_s)
{
	struct kube_api *a = c->api;
	struct event_base *base = a->cfg.base;
	struct bufferevent *bev;

	if (kube_auth_tls(a->cfg.auth)) {
		SSL *ssl = kube_auth_ssl_new(a->cfg.auth);

		if (!ssl)
			return -ENOMEM;
		bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
						     BEV_OPT_CLOSE_ON_FREE);
		if (!bev) {
			SSL_free(ssl);
			return -ENOMEM;
		}
		/* API servers and proxies often close without close_notify */
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
		c->ssl = ssl;
	} else if (!(bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE))) {
		return -ENOMEM;
	}
	c->conn = evhttp_connection_base_bufferevent_new(
		base, a->dns, bev, kube_auth_host(a->cfg.auth), kube_auth_port(a->cfg.auth));
	if (!c->conn) {
		bufferevent_free(bev);
		c->ssl = NULL;
		return -ENOMEM;
	}
	evhttp_connection_set_retries(c->conn, 0);
	evhttp_connection_set_timeout(c->conn, (int)timeout_s);
	evhttp_connection_set_max_headers_size(c->conn, API_MAX_HEADERS);
	evhttp_connection_set_max_body_size(c->conn, c->state == API_WATCHING ? API_MAX_WATCH_BODY
									      : API_MAX_LIST_BODY);
	return 0;
}

/* The query string: the LIST page or the WATCH, values escaped (resourceVersions and continue
 * tokens are opaque). */
static int
api_path(struct api_coll *c, unsigned watch_s, char *out, size_t outlen)
{
	const char *prefix = kube_auth_prefix(c->api->cfg.auth);
	char *esc = NULL;
	int n;

	if (c->state == API_WATCHING) {
		if (!(esc = evhttp_uriencode(c->rv, -1, 0)))
			return -ENOMEM;
		n = snprintf(out, outlen,
			     "%s%s?watch=1&resourceVersion=%s&allowWatchBookmarks=true"
			     "&timeoutSeconds=%u",
			     prefix, c->path, esc, watch_s);
	} else if (c->cont[0]) {
		if (!(esc = evhttp_uriencode(c->cont, -1, 0)))
			return -ENOMEM;
		n = snprintf(out, outlen, "%s%s?limit=%d&continue=%s", prefix, c->path,
			     API_PAGE_LIMIT, esc);
	} else {
		n = snprintf(out, outlen, "%s%s?limit=%d", prefix, c->path, API_PAGE_LIMIT);
	}
	free(esc);
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

static int
api_add_headers(struct api_coll *c, struct evhttp_request *req)
{
	struct kube_api *a = c->api;
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	const char *host = kube_auth_host(a->cfg.auth), *auth;
	char hostport[300];
	bool v6 = strchr(host, ':') != NULL;

	snprintf(hostport, sizeof(hostport), "%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "",
		 kube_auth_port(a->cfg.auth));
	auth = kube_auth_header(a->cfg.auth, (time_t)(clock_now_ms() / 1000));
	if (evhttp_add_header(h, "Host", hostport) ||
	    evhttp_add_header(h, "Accept", "application/json") ||
	    evhttp_add_header(h, "User-Agent", "kubemasq/" KUBEMASQ_VERSION) ||
	    (auth && evhttp_add_header(h, "Authorization", auth)))
		return -ENOMEM;
	return 0;
}

/* Start the LIST page or the WATCH that c->state says. */
static int
api_request(struct api_coll *c)
{
	bool watch = c->state == API_WATCHING;
	unsigned watch_s = api_rand(API_WATCH_MIN_S, API_WATCH_MAX_S);
	char path[API_PATH_MAX];
	struct evhttp_request *req;
	int rc;

	if ((rc = api_path(c, watch_s, path, sizeof(path))) < 0)
		return rc;
	if ((rc = api_connect(c, watch ? watch_s + API_WATCH_STALL_S : API_LIST_TIMEOUT_S)) < 0)
		return rc;
	if (!(req = evhttp_request_new(api_done, c)))
		return -ENOMEM;
	evhttp_request_set_header_cb(req, api_headers);
	evhttp_request_set_error_cb(req, api_error);
	if (watch)
		evhttp_request_set_chunked_cb(req, api_watch_chunk);
	if ((rc = api_add_headers(c, req)) < 0) {
		evhttp_request_free(req);
		return rc;
	}
	c->watch_started = time(NULL);
	if (evhttp_make_request(c->conn, req, EVHTTP_REQ_GET, path) < 0)
		return -EIO; /* libevent has disposed of req */
	/* api_done may already have run inside evhttp_make_request (a failed connect), which
	 * scheduled the next step; the guard is then deleted by that step's closer */
	api_timer(c->guard, API_HEADER_TIMEOUT_S * 1000);
	return 0;
}

/* The collection's step: close what is open and do what the last outcome asked for. */
static void
api_step(evutil_socket_t fd UNUSED, short what UNUSED, void *arg)
{
	struct api_coll *c = arg;
	struct kube_api *a = c->api;
	int rc;

	api_close(c);
	if (c->attempt)
		a->reconnects++;
	switch (c->next) {
	case API_NEXT_LIST:
		if (c->synced)
			a->relists++;
		c->cont[0] = '\0';
		/* fall through */
	case API_NEXT_MORE:
		c->state = API_LISTING;
		break;
	case API_NEXT_WATCH:
		c->state = API_WATCHING;
		break;
	}
	if ((rc = api_request(c)) < 0) {
		api_close(c);
		api_fail(c, c->state == API_WATCHING ? API_NEXT_WATCH : API_NEXT_LIST,
			 "cannot start a request: %s", strerror(-rc));
	}
}

/* An abandoned request's connection goes now, not when the back-off ends: a peer streaming
 * garbage must not keep us reading it meanwhile. */
static void
api_closer(evutil_socket_t fd UNUSED, short what UNUSED, void *arg)
{
	api_close(arg);
}

static void
api_headers_guard(evutil_socket_t fd UNUSED, short what UNUSED, void *arg)
{
	struct api_coll *c = arg;

	if (c->aborted)
		return;
	api_fail(c, c->state == API_WATCHING && c->rv[0] ? API_NEXT_WATCH : API_NEXT_LIST,
		 "no response within %d s", API_HEADER_TIMEOUT_S);
}

/* ---------------------------------------------------------------- responses */

static void
api_error(enum evhttp_request_error err, void *arg)
{
	struct api_coll *c = arg;

	c->err = err;
}

static int
api_headers(struct evhttp_request *req, void *arg)
{
	struct api_coll *c = arg;

	if (c->aborted)
		return -1;
	event_del(c->guard);
	if (evhttp_request_get_response_code(req) == 200) {
		c->streaming = true;
		/* a LIST succeeds when its page is applied: a 200 whose body is refused (not a
		 * list, no items) must count as a failure, back-off growing, not bring the link
		 * "back" for a moment each time */
		if (c->state == API_WATCHING)
			api_success(c);
	}
	return 0;
}

/* Why a request failed without a response, TLS verification named as OpenSSL names it. */
static void
api_conn_error(struct api_coll *c, char *out, size_t outlen)
{
	struct bufferevent *bev = c->conn ? evhttp_connection_get_bufferevent(c->conn) : NULL;
	unsigned long e = bev && c->ssl ? bufferevent_get_openssl_error(bev) : 0;
	long v = c->ssl ? SSL_get_verify_result(c->ssl) : X509_V_OK;
	char ebuf[256];

	if (v != X509_V_OK) {
		snprintf(out, outlen, "TLS: certificate verify failed: %s",
			 X509_verify_cert_error_string(v));
		return;
	}
	if (e) {
		ERR_error_string_n(e, ebuf, sizeof(ebuf));
		snprintf(out, outlen, "TLS: %s", ebuf);
		return;
	}
	switch (c->err) {
	case EVREQ_HTTP_TIMEOUT:
		snprintf(out, outlen, "timed out");
		break;
	case EVREQ_HTTP_DATA_TOO_LONG:
		snprintf(out, outlen, "response body over the cap");
		break;
	case EVREQ_HTTP_INVALID_HEADER:
		snprintf(out, outlen, "malformed HTTP response");
		break;
	default:
		snprintf(out, outlen, "connection failed or closed");
		break;
	}
}

/* A Status body's message, for the log ("" when there is none). */
static void
api_status_message(struct evhttp_request *req, char *out, size_t outlen)
{
	struct evbuffer *b = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(b);
	json_t *root;

	out[0] = '\0';
	if (!len || len > 65536)
		return;
	root = json_loadb((const char *)evbuffer_pullup(b, -1), len, 0, NULL);
	if (json_is_string(json_object_get(root, "message")))
		snprintf(out, outlen, ": %s", json_string_value(json_object_get(root, "message")));
	json_decref(root);
}

/* A response other than 200: 410 on a watch or on a LIST page with a continue token lists
 * again, 401 re-reads the token, the rest backs off. (A 410 on a first page would answer the
 * same again: that backs off too.) */
static void
api_http_failure(struct api_coll *c, struct evhttp_request *req, int code)
{
	enum api_next next = c->state == API_WATCHING ? API_NEXT_WATCH : API_NEXT_LIST;
	char msg[300], what[API_RV_MAX + sizeof(msg) + 64];

	if (code == 410 && (c->state == API_WATCHING || c->cont[0])) {
		if (c->state == API_WATCHING) {
			snprintf(what, sizeof(what), "watch from resourceVersion %s expired (410)",
				 c->rv);
		} else {
			api_status_message(req, msg, sizeof(msg));
			snprintf(what, sizeof(what), "LIST continue token expired (410%s)", msg);
		}
		api_expired(c, what);
		return;
	}
	if (code == 401 && kube_auth_unauthorized(c->api->cfg.auth) && c->attempt < 3) {
		c->attempt++;
		log_info("kube: %s: 401 Unauthorized; retrying with the re-read token", c->name);
		api_schedule(c, next, 0);
		return;
	}
	api_status_message(req, msg, sizeof(msg));
	api_fail(c, next, "HTTP %d %s%s", code, evhttp_request_get_response_code_line(req), msg);
}

/* The collection's first LIST completed: say so once when every collection has one. */
static void
api_list_complete(struct api_coll *c)
{
	struct kube_api *a = c->api;
	bool was = api_all(a, true);

	c->synced = true;
	a->last_sync = time(NULL);
	if (!was && api_all(a, true))
		log_info("kube: synced %s from the API server %s", a->cfg.zone_text,
			 kube_auth_describe(a->cfg.auth));
	else
		log_debug("kube: %s listed at resourceVersion %s", c->name, c->rv);
}

/* The items of one page into the store; refused objects are counted, not fatal. */
static void
api_list_items(struct api_coll *c, const json_t *items)
{
	char why[256] = "";
	json_t *item;
	size_t i;

	json_array_foreach(items, i, item) {
		if (kube_snapshot_apply_object(c->api->cfg.store, c->kind, item, why, sizeof(why)) <
		    0)
			api_bad(c, false, "%s", why);
	}
}

/* Whether a 200 LIST body can be applied; if not, `why` says what is wrong with it. A 200 that
 * is no list (a misrouted proxy, a login page) must not touch the store. */
static bool
api_list_usable(const json_t *root, const json_error_t *je, char *why, size_t whylen)
{
	const json_t *meta = json_object_get(root, "metadata");
	const char *cont = json_string_value(json_object_get(meta, "continue"));
	const char *rv = json_string_value(json_object_get(meta, "resourceVersion"));
	bool last = !(cont && *cont);

	if (!root)
		snprintf(why, whylen, "not JSON: %s", je->text);
	else if (!json_is_object(meta))
		snprintf(why, whylen, "no \"metadata\" object");
	else if (!json_is_array(json_object_get(root, "items")))
		/* the API server always sends one, [] when empty: without it, applying the
		 * page would empty the collection */
		snprintf(why, whylen, "no \"items\" array");
	else if (last && !(rv && *rv))
		snprintf(why, whylen, "no metadata.resourceVersion");
	else if (last && strlen(rv) >= API_RV_MAX)
		snprintf(why, whylen, "metadata.resourceVersion over %d bytes", API_RV_MAX - 1);
	else if (!last && strlen(cont) >= API_CONTINUE_MAX)
		snprintf(why, whylen, "metadata.continue over %d bytes", API_CONTINUE_MAX - 1);
	else
		return true;
	return false;
}

/*
 * One LIST page: applied inside the replacement and freed before the next page is asked.
 * A pass that is abandoned (a 410 on its continue token, a failure) is never ended: the next
 * pass starts from the first page with a new replace_begin, which makes every object stale
 * again, those the abandoned pass applied included. So the new pass's end removes exactly what
 * it did not see (an object deleted meanwhile does not linger), and nothing goes before that
 * end (what the new pass has not reached yet keeps answering).
 */
static void
api_list_page(struct api_coll *c, struct evhttp_request *req)
{
	struct kube_api *a = c->api;
	struct evbuffer *b = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(b);
	json_error_t je;
	json_t *root = json_loadb((const char *)evbuffer_pullup(b, -1), len, 0, &je);
	json_t *meta = json_object_get(root, "metadata"), *items = json_object_get(root, "items");
	const char *cont = json_string_value(json_object_get(meta, "continue"));
	const char *rv = json_string_value(json_object_get(meta, "resourceVersion"));
	bool first = !c->cont[0];
	char why[JSON_ERROR_TEXT_LENGTH + 32];

	evbuffer_drain(b, len);
	if (!api_list_usable(root, &je, why, sizeof(why))) {
		a->bad_events++;
		api_fail(c, API_NEXT_LIST, "LIST %s: not a usable list: %s; not applied",
			 first ? "page" : "continued page", why);
		json_decref(root);
		return;
	}
	api_success(c);
	if (a->cfg.batch)
		a->cfg.batch(a->cfg.ctx, true);
	if (first)
		kube_store_replace_begin(a->cfg.store, c->kind);
	api_list_items(c, items);
	if (cont && *cont) {
		snprintf(c->cont, sizeof(c->cont), "%s", cont);
		api_schedule(c, API_NEXT_MORE, 0);
	} else {
		kube_store_replace_end(a->cfg.store, c->kind);
		snprintf(c->rv, sizeof(c->rv), "%s", rv);
		c->cont[0] = '\0';
		api_list_complete(c);
		api_schedule(c, API_NEXT_WATCH, 0);
	}
	if (a->cfg.batch)
		a->cfg.batch(a->cfg.ctx, false);
	json_decref(root);
}

/*
 * Watch again from the last resourceVersion: after a normal end, a drop between events (a
 * proxy's idle timeout, a restarting server), or a stream past API_MAX_WATCH_BODY. None of them
 * is a failure, so no back-off; but a watch that lived under a second waits one first, so a
 * server or proxy that answers and hangs up at once cannot make us reconnect in a loop.
 */
static void
api_watch_resume(struct api_coll *c, const char *why)
{
	time_t lived = time(NULL) - c->watch_started;
	bool brief = lived < 1;

	if (lived >= API_WATCH_SETTLED_S)
		c->expired = 0; /* a quiet watch that ran: in sync, though it saw no event */

	c->api->watch_restarts++;
	log_debug("kube: %s: %s; watching again from %s", c->name, why, c->rv);
	api_schedule(c, API_NEXT_WATCH, brief ? 1000 : 0);
}

/* The watch ended with a 200. */
static void
api_watch_end(struct api_coll *c)
{
	if (c->framer.len) {
		api_bad(c, true, "watch stream ended inside an object");
		api_fail(c, API_NEXT_WATCH, "truncated watch event");
		return;
	}
	api_watch_resume(c, "watch ended");
}

static void
api_done(struct evhttp_request *req, void *arg)
{
	struct api_coll *c = arg;
	char why[300];
	int code;

	if (c->aborted)
		return;
	event_del(c->guard);
	code = req ? evhttp_request_get_response_code(req) : 0;
	if (code == 0 && c->state == API_WATCHING && c->streaming && !c->framer.len) {
		/* cut between events; if the server is really gone, the next attempt fails and
		 * backs off */
		api_watch_resume(c, c->err == EVREQ_HTTP_DATA_TOO_LONG ? "watch stream at its cap"
								       : "watch dropped");
		return;
	}
	if (code == 0 && c->state == API_WATCHING && c->framer.len) {
		api_bad(c, true, "watch stream ended inside an event");
		api_fail(c, API_NEXT_WATCH, "truncated watch stream");
		return;
	}
	if (code == 0) {
		api_conn_error(c, why, sizeof(why));
		api_fail(c, c->state == API_WATCHING ? API_NEXT_WATCH : API_NEXT_LIST, "%s", why);
		return;
	}
	if (code != 200) {
		api_http_failure(c, req, code);
		return;
	}
	if (c->state == API_LISTING)
		api_list_page(c, req);
	else
		api_watch_end(c);
}

/* ---------------------------------------------------------------- life */

void
kube_api_free(struct kube_api *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n_coll; i++) {
		struct api_coll *c = &a->coll[i];

		if (c->conn)
			evhttp_connection_free(c->conn);
		if (c->step)
			event_free(c->step);
		if (c->guard)
			event_free(c->guard);
		if (c->closer)
			event_free(c->closer);
		kube_api_framer_done(&c->framer);
	}
	if (a->dns) /* after the connections that use it */
		evdns_base_free(a->dns, 0);
	free(a);
}

int
kube_api_new(struct kube_api **out, const struct kube_api_config *cfg)
{
	static const enum kube_kind kinds[] = {KUBE_KIND_NAMESPACE, KUBE_KIND_SERVICE,
					       KUBE_KIND_SLICE, KUBE_KIND_POD};
	struct kube_api *a = calloc(1, sizeof(*a));

	if (!a)
		return -ENOMEM;
	a->cfg = *cfg;
	a->link_up = true;
	a->rl_bad = (struct log_ratelimit)LOG_RATELIMIT_INIT(1000, 5);
	a->rl_fail = (struct log_ratelimit)LOG_RATELIMIT_INIT(5000, 3);
	a->n_coll = cfg->pods ? 4 : 3;
	if (!api_host_is_ip(kube_auth_host(cfg->auth)) &&
	    !(a->dns = evdns_base_new(cfg->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
							 EVDNS_BASE_DISABLE_WHEN_INACTIVE)))
		log_warn("kube: cannot set up an asynchronous resolver for %s; its lookups will "
			 "block",
			 kube_auth_host(cfg->auth));
	for (size_t i = 0; i < a->n_coll; i++) {
		struct api_coll *c = &a->coll[i];

		c->api = a;
		c->kind = kinds[i];
		c->name = api_paths[c->kind][0];
		c->path = api_paths[c->kind][1];
		c->ok = true;
		c->next = API_NEXT_LIST;
		kube_api_framer_init(&c->framer, KUBE_API_MAX_OBJECT);
		c->step = evtimer_new(cfg->base, api_step, c);
		c->guard = evtimer_new(cfg->base, api_headers_guard, c);
		c->closer = evtimer_new(cfg->base, api_closer, c);
		if (!c->step || !c->guard || !c->closer) {
			kube_api_free(a);
			return -ENOMEM;
		}
		/* the first LIST from the loop, so create() returns before any I/O */
		api_timer(c->step, 0);
	}
	*out = a;
	return 0;
}

bool
kube_api_synced(const struct kube_api *a)
{
	return api_all(a, true);
}

static bool
api_watching(const struct kube_api *a)
{
	for (size_t i = 0; i < a->n_coll; i++)
		if (a->coll[i].state != API_WATCHING || !a->coll[i].ok)
			return false;
	return true;
}

void
kube_api_status(struct kube_api *a, struct kube_status *out)
{
	out->synced = api_all(a, true);
	out->connected = a->link_up && api_watching(a);
	out->source = kube_auth_describe(a->cfg.auth);
	out->reason = a->link_up && out->synced ? "" : a->reason[0] ? a->reason : "listing";
	out->last_sync = out->synced ? a->last_sync : 0;
	out->watch_restarts = a->watch_restarts;
	out->relists = a->relists;
	out->reconnects = a->reconnects;
	out->events = a->events;
	out->bad_events = a->bad_events;
	out->programming = &a->programming;
}

void
kube_api_stats(struct kube_api *a, void (*line)(void *ctx, const char *text), void *ctx)
{
	char buf[1024], when[32] = "never";
	unsigned attempts = 0;
	struct tm tm;

	for (size_t i = 0; i < a->n_coll; i++)
		if (a->coll[i].attempt > attempts)
			attempts = a->coll[i].attempt;
	if (a->last_sync && localtime_r(&a->last_sync, &tm))
		strftime(when, sizeof(when), "%H:%M:%S", &tm);
	snprintf(buf, sizeof(buf), "kube: API server %s, %s, last successful sync %s",
		 kube_auth_describe(a->cfg.auth), api_all(a, true) ? "synced" : "not synced", when);
	line(ctx, buf);
	if (a->link_up)
		snprintf(buf, sizeof(buf), "kube: %s", api_watching(a) ? "watching" : "listing");
	else
		snprintf(buf, sizeof(buf),
			 "kube: reconnecting (attempt %u) for %.0f s, serving the last known "
			 "state: %s",
			 attempts, (double)(clock_now_ms() - a->down_since) / 1000.0, a->reason);
	line(ctx, buf);
	snprintf(buf, sizeof(buf),
		 "kube: events %llu, bad %llu, watch restarts %llu, relists %llu, reconnects %llu",
		 (unsigned long long)a->events, (unsigned long long)a->bad_events,
		 (unsigned long long)a->watch_restarts, (unsigned long long)a->relists,
		 (unsigned long long)a->reconnects);
	line(ctx, buf);
}
