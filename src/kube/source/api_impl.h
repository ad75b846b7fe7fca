/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * api_impl.h - what the API source's two files share and nothing outside them sees: the
 * collections' state and the source itself, and the functions api.c (connections, LIST, link
 * state) offers api_watch.c (the watch stream's events). The public interface is api.h.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <event2/http.h>
#include <openssl/ssl.h>

#include "kubemasq/defs.h"
#include "kubemasq/log.h"
#include "kubemasq/metrics.h"
#include "kube/store.h"
#include "kube/source/api.h"
#include "kube/source/api_framer.h"

#define API_PAGE_LIMIT 500
#define API_MAX_LIST_BODY (64u << 20) /* one LIST page (500 items) */
#define API_MAX_HEADERS (64u << 10)
/* evhttp reads a whole chunk before handing it over, and counts the whole body against this
 * cap, chunks included: a watch that has streamed this much ends with an error and resumes from
 * its last resourceVersion (no re-list). The cost is a reconnect per 64 MiB of events; the gain
 * is that a peer cannot make us buffer a gigantic chunk. */
#define API_MAX_WATCH_BODY (64u << 20)
#define API_HEADER_TIMEOUT_S 10 /* connect + response headers */
#define API_LIST_TIMEOUT_S 30	/* no byte of a LIST body for this long */
#define API_WATCH_MIN_S 300	/* timeoutSeconds is random in [MIN, MAX] */
#define API_WATCH_MAX_S 600
#define API_WATCH_STALL_S 60 /* beyond timeoutSeconds with no byte: dropped */
#define API_BACKOFF_FIRST_MS 800
#define API_BACKOFF_MAX_MS 30000
#define API_RV_MAX 128	      /* resourceVersion */
#define API_CONTINUE_MAX 4096 /* a LIST continue token */
#define API_PATH_MAX (API_CONTINUE_MAX * 3 + 512)
#define API_TRIGGER_ANNOTATION "endpoints.kubernetes.io/last-change-trigger-time"

/* 410s (expired watch or continue token) in a row that re-list at once; past them each further
 * one waits the back-off, growing, until a watch gets under way (an event or a bookmark, or a
 * stream that lived API_WATCH_SETTLED_S) */
#define API_EXPIRED_AT_ONCE 3
#define API_WATCH_SETTLED_S 10

enum api_state { API_IDLE, API_LISTING, API_WATCHING };

/* What a finished (or aborted) request asks the step event to do next. */
enum api_next { API_NEXT_LIST, API_NEXT_MORE, API_NEXT_WATCH };

struct kube_api;

struct api_coll {
	struct kube_api *api;
	enum kube_kind kind;
	const char *name; /* "services" */
	const char *path; /* "/api/v1/services" */
	enum api_state state;
	enum api_next next;
	bool synced;		       /* first LIST done */
	bool ok;		       /* the last response was a success */
	bool aborted;		       /* the current request is abandoned: ignore its callbacks */
	bool streaming;		       /* the current request got a 200 */
	unsigned attempt;	       /* failures in a row */
	unsigned expired;	       /* 410s in a row, see API_EXPIRED_AT_ONCE */
	enum evhttp_request_error err; /* from libevent's error callback */
	time_t watch_started;
	char rv[API_RV_MAX];
	char cont[API_CONTINUE_MAX];
	struct evhttp_connection *conn;
	SSL *ssl;	      /* owned by the connection's bufferevent */
	struct event *step;   /* the next action, after a delay or at once */
	struct event *guard;  /* connect + headers deadline */
	struct event *closer; /* closes an abandoned connection at once, whatever the delay */
	struct kube_api_framer framer;
};

struct kube_api {
	struct kube_api_config cfg;
	struct api_coll coll[4];
	size_t n_coll;
	bool link_up;
	msec_t down_since;
	time_t last_sync;
	char reason[512];
	uint64_t watch_restarts, relists, reconnects, events, bad_events;
	struct metrics_hist programming;
	struct log_ratelimit rl_bad;
	struct log_ratelimit rl_fail;
	/* the server's name resolved on the loop: without it libevent calls a blocking
	 * getaddrinfo() inside evhttp_make_request, stalling every DNS answer (and waiting on
	 * ourselves when resolv.conf names this daemon); NULL for an IP literal */
	struct evdns_base *dns;
};

/* The delay before retry number `attempt` (1, 2, ...): see API_BACKOFF_*. */
msec_t api_backoff_ms(unsigned attempt);

/* Close the current request (from the loop) and run `next` after `delay` ms. */
void api_schedule(struct api_coll *c, enum api_next next, msec_t delay);

/* A failure: logged (the first of an outage as "lost", the others rate-limited); back off,
 * then `next`. */
void api_fail(struct api_coll *c, enum api_next next, const char *fmt, ...) PRINTF_LIKE(3, 4);

/* A 410 Gone: the watch's resourceVersion or the LIST's continue token is too old, `what` says
 * which (for the log). Lists again from the first page, at once for the first
 * API_EXPIRED_AT_ONCE in a row, then after the back-off; never logged as an outage. */
void api_expired(struct api_coll *c, const char *what);

/* Bad input from the server: counted and logged, rate-limited; `fatal` says the connection is
 * being reset for it (the caller does that). */
void api_bad(struct api_coll *c, bool fatal, const char *fmt, ...) PRINTF_LIKE(3, 4);

/* libevent's chunked callback of a watch request (api_watch.c). */
void api_watch_chunk(struct evhttp_request *req, void *arg);
