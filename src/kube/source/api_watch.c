/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * api_watch.c - the body of a WATCH: framed by JSON object (api_framer.h), each event applied
 * as it comes. ADDED and MODIFIED upsert through the snapshot's conversion, DELETED deletes,
 * BOOKMARK only moves the resourceVersion, an ERROR with code 410 lists again (api_expired: at
 * once, unless 410s keep coming before any watch gets under way); unknown types,
 * objects without metadata, malformed JSON or an object over the cap are counted and reset
 * the connection (the collection resumes from its last resourceVersion after a back-off).
 * EndpointSlice events also feed the programming-latency histogram from their
 * last-change-trigger-time annotation, as CoreDNS does.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <jansson.h>

#include "kube/source/api_impl.h"
#include "kube/source/snapshot.h"

/* RFC 3339 ("2024-05-01T10:00:00.123456Z", or an offset) to microseconds since the epoch. */
static int
api_watch_rfc3339_us(const char *s, int64_t *out)
{
	struct tm tm = {0};
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	int64_t frac = 0, scale = 1000000, off = 0;

	if (!p)
		return -EINVAL;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++)
			if (scale > 1) {
				scale /= 10;
				frac += (*p - '0') * scale;
			}
	}
	if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':')
		off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600 +
		      ((p[4] - '0') * 10 + (p[5] - '0')) * 60;
	else if (!(p[0] == 'Z' || p[0] == 'z') || p[1])
		return -EINVAL;
	if (*p == '+')
		off = -off;
	*out = ((int64_t)timegm(&tm) + off) * 1000000 + frac;
	return 0;
}

/* CoreDNS's programming latency: the EndpointSlice's trigger time to now. */
static void
api_watch_observe_latency(struct kube_api *a, const json_t *obj)
{
	const char *t = json_string_value(
		json_object_get(json_object_get(json_object_get(obj, "metadata"), "annotations"),
				API_TRIGGER_ANNOTATION));
	struct timespec now;
	int64_t when, d;

	if (!t || api_watch_rfc3339_us(t, &when) < 0)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	d = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000 - when;
	if (d >= 0)
		metrics_hist_observe(&a->programming, (uint64_t)d);
}

/* ADDED / MODIFIED / DELETED into the store: refusals of one object are counted, not fatal. */
static void
api_watch_apply(struct api_coll *c, const char *type, const json_t *obj)
{
	struct kube_api *a = c->api;
	char why[256] = "";
	int rc;

	if (strcmp(type, "DELETED") == 0) {
		rc = kube_snapshot_delete_object(a->cfg.store, c->kind, obj, why, sizeof(why));
		if (rc == -ENOENT)
			rc = 0;
	} else {
		rc = kube_snapshot_apply_object(a->cfg.store, c->kind, obj, why, sizeof(why));
		if (rc == 0 && c->kind == KUBE_KIND_SLICE)
			api_watch_observe_latency(a, obj);
	}
	if (rc < 0)
		api_bad(c, false, "%s %s", type, why[0] ? why : strerror(-rc));
}

/* An ERROR event: 410 lists again, anything else backs off and watches again. */
static int
api_watch_error(struct api_coll *c, const json_t *obj)
{
	json_int_t code = json_integer_value(json_object_get(obj, "code"));
	const char *msg = json_string_value(json_object_get(obj, "message"));

	if (code == 410) {
		char what[300];

		snprintf(what, sizeof(what), "watch expired (%.250s)", msg ? msg : "410");
		api_expired(c, what);
		return 1;
	}
	api_fail(c, API_NEXT_WATCH, "watch ERROR event %lld: %s", (long long)code,
		 msg ? msg : "(no message)");
	return 1;
}

/* One event of the stream; non-zero stops the stream (the collection is already scheduled). */
static int
api_watch_event(struct api_coll *c, const json_t *ev)
{
	struct kube_api *a = c->api;
	const char *type = json_string_value(json_object_get(ev, "type"));
	const json_t *obj = json_object_get(ev, "object");
	const char *rv = json_string_value(
		json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));

	if (!type || !json_is_object(obj)) {
		api_bad(c, true, "watch event without type or object");
		api_fail(c, API_NEXT_WATCH, "bad watch event");
		return 1;
	}
	if (strcmp(type, "ERROR") == 0)
		return api_watch_error(c, obj);
	if (strcmp(type, "ADDED") && strcmp(type, "MODIFIED") && strcmp(type, "DELETED") &&
	    strcmp(type, "BOOKMARK")) {
		api_bad(c, true, "unknown watch event type \"%.32s\"", type);
		api_fail(c, API_NEXT_WATCH, "bad watch event");
		return 1;
	}
	if (!json_is_object(json_object_get(obj, "metadata")) || !rv ||
	    strlen(rv) >= sizeof(c->rv)) {
		api_bad(c, true, "%s event without metadata.resourceVersion", type);
		api_fail(c, API_NEXT_WATCH, "bad watch event");
		return 1;
	}
	if (strcmp(type, "BOOKMARK") != 0) {
		api_watch_apply(c, type, obj);
		a->events++;
	}
	c->expired = 0; /* the watch is under way: the list it started from was good */
	snprintf(c->rv, sizeof(c->rv), "%s", rv);
	a->last_sync = time(NULL);
	return 0;
}

static int
api_watch_frame(void *ctx, const char *obj, size_t len)
{
	struct api_coll *c = ctx;
	json_error_t je;
	json_t *ev = json_loadb(obj, len, 0, &je);
	int rc;

	if (!ev) {
		api_bad(c, true, "malformed watch event: %s", je.text);
		api_fail(c, API_NEXT_WATCH, "malformed watch event");
		return 1;
	}
	rc = api_watch_event(c, ev);
	json_decref(ev);
	return rc;
}

void
api_watch_chunk(struct evhttp_request *req, void *arg)
{
	struct api_coll *c = arg;
	struct evbuffer *b = evhttp_request_get_input_buffer(req);
	struct evbuffer_iovec v[16];
	int n, rc = 0;

	if (c->aborted || evhttp_request_get_response_code(req) != 200) {
		evbuffer_drain(b,
			       evbuffer_get_length(b)); /* an error body: only its status counts */
		return;
	}
	while (rc == 0 && evbuffer_get_length(b)) {
		size_t used = 0;

		n = evbuffer_peek(b, -1, NULL, v, ARRAY_SIZE(v));
		if (n > (int)ARRAY_SIZE(v))
			n = ARRAY_SIZE(v);
		for (int i = 0; i < n && rc == 0; i++) {
			rc = kube_api_framer_feed(&c->framer, v[i].iov_base, v[i].iov_len,
						  api_watch_frame, c);
			used += v[i].iov_len;
		}
		evbuffer_drain(b, used);
	}
	evbuffer_drain(b, evbuffer_get_length(b));
	if (rc < 0 && !c->aborted) {
		api_bad(c, true, "%s",
			rc == -EMSGSIZE ? "watch event over the size cap"
			: rc == -EPROTO ? "watch stream is not a sequence of JSON objects"
					: strerror(-rc));
		api_fail(c, API_NEXT_WATCH, "bad watch stream");
	}
}
