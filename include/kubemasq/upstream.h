/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * upstream.h - the module interface behind the cache: whatever answers a cache miss.
 *
 * An upstream is a `const struct upstream_ops` (designated initializers) plus an instance that
 * embeds `struct upstream` as its first member. The network forwarder (upstream_dns.c), local
 * answers (upstream_local.c: --address, local-only zones) and the kube resolver (src/kube/) are
 * implementations; the unit tests add a double. The router (router.h) binds instances to zones
 * and offers each query to the longest matching zone first.
 *
 * The contract of resolve():
 *   - return 0: the upstream accepted the request and will call req->done() exactly once,
 *     later, from the event loop - never before resolve() returns - unless cancel() comes first;
 *   - return -ENOENT: declined (not ours, e.g. a PTR the kube store does not know); the router
 *     offers the request to the next upstream. Nothing was kept.
 *   - any other negative errno: accepted nothing and failed at once (e.g. -EBUSY: over
 *     --dns-forward-max); the caller answers accordingly.
 * cancel() withdraws an accepted request: done() is then never called and the upstream forgets
 * every pointer into req. Upstreams never free requests: query.c owns them.
 *
 * The rule of free(): no accepted request is ever forgotten. free() is called either when
 * nothing is pending, or it completes every request still pending with done(-ECANCELED) (the
 * client gets SERVFAIL) before it returns: a request forgotten would never be answered, would
 * stay in query.c's in-flight table, and would later be cancelled through freed memory. So
 * free() may call done(): whoever calls free() must be ready for that (query.c cancels its own
 * requests before freeing upstreams at shutdown, so done() finds nothing then), must not call
 * it from inside one of the upstream's own calls (resolve(), cancel(), or a done() it is
 * making), and a done() made by free() must not hand the dying upstream new requests. Since
 * free() is never called inside resolve(), completion stays out of resolve() too.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "kubemasq/dnsmsg.h"
#include "kubemasq/metrics.h"

struct event_base;
struct kube_status;
struct upstream;
struct upstream_req;

/*
 * Completion. status 0: `reply` is a DNS response (any rcode) whose question matches req->q
 * case-insensitively; its ID and OPT are arbitrary (query.c rewrites both). status < 0: no
 * answer could be had (-ETIMEDOUT: nobody answered in time; -EIO: every server failed;
 * -ECANCELED: the upstream was freed first); query.c answers SERVFAIL. `reply` is borrowed for
 * the duration of the call.
 */
typedef void upstream_done_fn(struct upstream_req *req, int status, const uint8_t *reply,
			      size_t len);

struct upstream_req {
	/* Set by the caller before resolve(); borrowed by the upstream until done() or cancel(). */
	struct dnsmsg_question q; /* q.qname lower-cased */
	bool cd;		  /* the client's CD bit */
	bool do_bit;		  /* the client's DO bit */
	const char *log_prefix;	  /* --log-queries=extra: "SERIAL ADDR/PORT " for the
					 * upstream's log lines; NULL: none */
	upstream_done_fn *done;

	/* Owned by the upstream that accepted the request, from resolve() to done()/cancel(). */
	struct upstream *owner; /* set by the router to the upstream that accepted */
	void *priv;
};

/*
 * A zone in which an upstream reports every change through upstream_invalidate(), with the
 * depth of the names it reports there: the cache indexes the answers under the zone by their
 * ancestor `owner_labels` below it, so that an invalidation of a name that deep costs what it
 * drops instead of a walk of the whole cache (cache_watch in src/lib/cache.h). Shallower names
 * still work, at the cost of a walk over the zone's answers. The deepest zone holding a name
 * decides its depth: the kube resolver declares ZONE (1), svc.ZONE (services: 2), pod.ZONE
 * (namespaces of pods: 1), in-addr.arpa (4) and ip6.arpa (32).
 */
struct upstream_watch {
	const uint8_t *zone; /* uncompressed wire name; valid while the upstream lives */
	size_t zone_len;
	unsigned owner_labels;
};

/* One line of statistics, written without a trailing newline (SIGUSR1 and friends). */
typedef void upstream_stats_fn(void *ctx, const char *line);

/* What an upstream says of its readiness and of the cluster behind it (the `status`
 * operation): for /ready, and the kubemasq_kube_* families of /metrics. */
struct upstream_status {
	bool ready;	    /* false: /ready answers 503 with `reason` */
	const char *reason; /* why not ready; valid until the next call into the upstream */
	/* The kube resolver's figures (src/kube/kube_status.h), NULL from other upstreams;
	 * valid until the next call into the upstream. */
	const struct kube_status *cluster;
};

struct upstream_ops {
	const char *name; /* "dns", "local", "kube": for logs */

	/* Make an instance from `args` (module-specific, borrowed: copy what you keep).
	 * Returns 0 and *out, or a negative errno; the caller reports it. */
	int (*create)(struct upstream **out, struct event_base *base, const void *args);

	/* Free an instance. Requests still pending are completed with done(-ECANCELED) first,
	 * never forgotten (see "The rule of free()" above). NULL-safe. */
	void (*free)(struct upstream *u);

	int (*resolve)(struct upstream *u, struct upstream_req *req);

	/* Answer at once, with no I/O and nothing left pending, into out[0..cap): the reply's
	 * length, or -EAGAIN when resolve() must take the request (it may still decline it
	 * there). Lets an in-process source (the kube store) answer on the batched path of cache
	 * hits. req->done is not called. May be NULL.
	 * An upstream with answer() calls upstream_changed() whenever what it answers may have
	 * changed: until then the cache renews these replies when they expire instead of asking
	 * again (cache_put_renewable). */
	int (*answer)(struct upstream *u, const struct upstream_req *req, uint8_t *out, size_t cap);
	void (*cancel)(struct upstream *u, struct upstream_req *req);

	/* dnsmasq-style statistics lines for SIGUSR1, one call of `line` per line. May be NULL. */
	void (*stats)(struct upstream *u, upstream_stats_fn *line, void *ctx);

	/* Prometheus figures (kubemasq/metrics.h): one call of `each` per server, the pointers
	 * valid during the call only. May be NULL. */
	void (*metrics)(struct upstream *u, upstream_metrics_fn *each, void *ctx);

	/* The zones this upstream reports changes in (struct upstream_watch): their number, the
	 * array in *out, valid while the upstream lives. Read once, when the query engine is
	 * made. May be NULL: no zones. */
	size_t (*watched)(struct upstream *u, const struct upstream_watch **out);

	/* SIGHUP: re-read what the upstream reads from files (the kube snapshot). May be NULL. */
	void (*reload)(struct upstream *u);

	/* Readiness and cluster figures (struct upstream_status) into *out. May be NULL: always
	 * ready, nothing to add. */
	void (*status)(struct upstream *u, struct upstream_status *out);

	/* The network servers an upstream sends to, for --dns-loop-detect (loop_detect.h); both
	 * NULL for upstreams that answer in-process.
	 * server_addr: the address of server `i` into *ss and *len; -ENOENT past the last.
	 * set_looping: take every server at address `ss` out of service (looping) or put it back.
	 * Queries waiting on a server taken out move on to the next server at once (from the
	 * event loop), or end with SERVFAIL when none is left; new queries never go to it, and
	 * resolve() returns -ELOOP while every server loops. Returns how many servers have that
	 * address; *all_loop (may be NULL) says whether every server loops now. */
	int (*server_addr)(struct upstream *u, size_t i, struct sockaddr_storage *ss,
			   socklen_t *len);
	size_t (*set_looping)(struct upstream *u, const struct sockaddr_storage *ss, bool looping,
			      bool *all_loop);
};

/*
 * What an upstream may ask of the daemon around it. Set by whoever creates the upstream (it
 * may stay NULL: no hooks, e.g. in unit tests); borrowed, it outlives the upstream.
 *   invalidate: every cached answer for `name` (uncompressed wire name, any case) or a name
 *   below it is dropped, and a reply for such a name that is in flight right now is sent to
 *   its waiters but not cached (the kube resolver calls it when the cluster changes). Cheap
 *   for names in the zones the upstream declares (upstream_ops.watched): it reads the cached
 *   answers at or below the name; elsewhere it walks the whole cache.
 *   changed: what answer() returns may differ from now on (any change at all, whether or not
 *   invalidate() names it); cached replies of answer() from before stop being renewed. Cheap:
 *   it notes the time.
 */
struct upstream_hooks {
	void (*invalidate)(void *ctx, const uint8_t *name, size_t len);
	void (*changed)(void *ctx);
	void *ctx;
};

/* The base every instance embeds as its first member. */
struct upstream {
	const struct upstream_ops *ops;
	const struct upstream_hooks *hooks; /* may be NULL */
	/* What the metrics call this instance's answers (`source` label), set by create();
	 * zero (calloc) is METRICS_SOURCE_FORWARD. */
	enum metrics_source source;
};

static inline int
upstream_resolve(struct upstream *u, struct upstream_req *req)
{
	return u->ops->resolve(u, req);
}

static inline void
upstream_cancel(struct upstream *u, struct upstream_req *req)
{
	u->ops->cancel(u, req);
}

static inline void
upstream_free(struct upstream *u)
{
	if (u)
		u->ops->free(u);
}

/* The operations that may be NULL, asked through these: a missing one is the documented
 * default. */
static inline void
upstream_reload(struct upstream *u)
{
	if (u->ops->reload)
		u->ops->reload(u);
}

static inline void
upstream_status(struct upstream *u, struct upstream_status *out)
{
	*out = (struct upstream_status){.ready = true, .reason = ""};
	if (u->ops->status)
		u->ops->status(u, out);
}

static inline int
upstream_server_addr(struct upstream *u, size_t i, struct sockaddr_storage *ss, socklen_t *len)
{
	return u->ops->server_addr ? u->ops->server_addr(u, i, ss, len) : -ENOENT;
}

static inline size_t
upstream_set_looping(struct upstream *u, const struct sockaddr_storage *ss, bool looping,
		     bool *all_loop)
{
	if (!u->ops->set_looping) {
		if (all_loop)
			*all_loop = false;
		return 0;
	}
	return u->ops->set_looping(u, ss, looping, all_loop);
}

/* Drop cached answers at or below `name` (see struct upstream_hooks); a no-op without hooks. */
static inline void
upstream_invalidate(struct upstream *u, const uint8_t *name, size_t len)
{
	if (u->hooks && u->hooks->invalidate)
		u->hooks->invalidate(u->hooks->ctx, name, len);
}

/* Report a change of what answer() returns (see struct upstream_hooks); a no-op without hooks. */
static inline void
upstream_changed(struct upstream *u)
{
	if (u->hooks && u->hooks->changed)
		u->hooks->changed(u->hooks->ctx);
}
