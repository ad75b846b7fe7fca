/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * upstream_kube.c - the kube resolver as an upstream: the cluster zone and the cluster's PTRs
 * answered from a kube_store (store.h) by kube_answer() (answer.h), the store fed either from a
 * snapshot file (snapshot.h) read at start, on SIGHUP and when a once-a-second stat poll sees it
 * change, or from the API server by list and watch (api.h, with the credentials of auth.h).
 * Until a first full sync the cluster zone answers SERVFAIL, never NXDOMAIN, which clients and
 * downstream caches would keep; a read that fails later, or an API server that goes away,
 * leaves the previous state serving.
 * Store changes drop the cached answers they affect through upstream_invalidate(); during a
 * file read or a LIST page they are collected first, so one page costs at most a few cache
 * walks, while a watch event's changes are dropped at once.
 * A snapshot re-read runs in a worker thread (snapshot_worker.h) so that DNS keeps answering
 * from the old store meanwhile: the thread copies the store, applies the file to the copy and
 * collects the copy's changes; the loop then swaps the copy in and drops those changes from
 * the cache in one step. One read at a time; a SIGHUP during a read asks for one more after it.
 * The first read at start stays on the main thread, before the daemon listens.
 * Answers are delivered from the event loop (the upstream contract forbids completing inside
 * resolve()) through upstream_defer.c, as upstream_local.c does. An ExternalName
 * whose target lies outside the zone takes a second stage: the target is asked through the
 * router (the forwarders), and its answer records are appended after the CNAME (kube_merge.c).
 */
#include <assert.h>
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>

#include "kubemasq/defs.h"
#include "kubemasq/dnsmsg.h"
#include "kubemasq/log.h"
#include "kubemasq/upstream.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/filestat.h"
#include "lib/router.h"
#include "kube/answer.h"
#include "kube/kube_merge.h"
#include "kube/kube_status.h"
#include "kube/store.h"
#include "kube/source/api.h"
#include "kube/source/auth.h"
#include "kube/source/snapshot.h"
#include "kube/source/snapshot_worker.h"
#include "upstream/upstream_defer.h"
#include "upstream/upstream_kube.h"

#define KUBE_POLL_MS 1000
#define KUBE_MAX_PENDING 4096 /* accepted and not yet completed, both stages */
#define KUBE_SMALL_BUF 4096   /* first try of kube_answer(); 65535 after -ENOSPC */
#define KUBE_CHANGES_MAX 64   /* names collected during one read; more: drop the whole zones */

/* One accepted request, on the defer queue (answer waiting for the loop) or `waiting`
 * (stage 2). d.reply is the answer, or stage 1's CNAME reply. */
struct kube_pending {
	struct upstream_defer_item d;
	TAILQ_ENTRY(kube_pending) link; /* on `waiting` */
	struct kube_upstream *k;
	bool sub_active;	 /* on `waiting`: `sub` is with another upstream */
	struct upstream_req sub; /* stage 2: the ExternalName target */
	uint8_t target[DNS_MAX_NAME];
};

TAILQ_HEAD(kube_queue, kube_pending);

struct kube_change {
	uint8_t len;
	uint8_t name[DNS_MAX_NAME];
};

/* Names whose cached answers a batch of store changes made stale, dropped together after it. */
struct kube_changes {
	bool overflow; /* more than KUBE_CHANGES_MAX: drop the whole zones */
	size_t n;
	struct kube_change v[KUBE_CHANGES_MAX];
};

struct kube_upstream {
	struct upstream base;
	struct router *router;
	struct kube_store *store;
	struct kube_answer_config acfg;
	uint8_t zone[DNS_MAX_NAME];
	char *zone_text;
	char **namespaces;
	size_t n_namespaces;
	char *path;		/* --kube-snapshot, or NULL for the API source */
	struct kube_auth *auth; /* the API source */
	struct kube_api *api;

	struct upstream_defer defer; /* answers waiting for the loop */
	struct event *poll_ev;
	struct event *startup_ev; /* --kube-startup-timeout */
	unsigned startup_timeout; /* its seconds */
	bool startup_passed;	  /* it passed before the first sync: ready anyway */
	struct kube_queue waiting;
	unsigned n_pending; /* accepted: on the defer queue or `waiting` */

	struct filestat fs; /* the file when last read */
	bool synced;	    /* a read has succeeded */
	time_t last_sync;
	struct kube_snapshot_result last;
	char reason[512];	   /* why not synced, or why the last re-read failed */
	char source[600];	   /* kube_status_op(): the status' source */
	struct kube_status status; /* kube_status_op(): the last report */
	char not_ready[600];	   /* kube_status_op(): why not ready */
	bool last_failed;

	bool loading; /* inside kube_snapshot_load() or a LIST page: collect changes */
	struct kube_changes changes;

	struct kube_snapshot_worker *worker; /* re-reads of the snapshot */
	bool reread;			     /* SIGHUP during a re-read: one more after it */
	/* The worker thread's during a re-read (the new store's reports), the loop's after it. */
	struct kube_changes read_changes;
	bool read_moved;

	struct log_ratelimit rl_skip;
	struct log_ratelimit rl_err;
	uint8_t buf[KUBE_SMALL_BUF];

	/* upstream_ops.watched: the zones of our change reports (kube_watched) */
	struct upstream_watch watch[5];
	uint8_t watch_sub[2][DNS_MAX_NAME]; /* svc.ZONE, pod.ZONE */
};

static const uint8_t kube_in_addr_arpa[] = "\7in-addr\4arpa"; /* with its NUL: 14 bytes */
static const uint8_t kube_ip6_arpa[] = "\3ip6\4arpa";	      /* 10 bytes */

static struct kube_upstream *
kube_from(struct upstream *u)
{
	assert(u && u->ops == &kube_upstream_ops);
	return container_of(u, struct kube_upstream, base);
}

/* A first full sync happened: the snapshot read, or every collection's first LIST. */
static bool
kube_synced(const struct kube_upstream *k)
{
	return k->api ? kube_api_synced(k->api) : k->synced;
}

/* --- cache coherence --- */

static void
kube_changes_add(struct kube_changes *cs, const uint8_t *name, size_t len)
{
	struct kube_change *c;

	if (cs->overflow || len > DNS_MAX_NAME)
		return;
	for (size_t i = 0; i < cs->n; i++)
		if (dnsmsg_name_equal(cs->v[i].name, cs->v[i].len, name, len))
			return;
	if (cs->n == KUBE_CHANGES_MAX) {
		cs->overflow = true; /* one walk per zone beats a walk per name */
		return;
	}
	c = &cs->v[cs->n++];
	c->len = (uint8_t)len;
	memcpy(c->name, name, len);
}

static void
kube_changed(void *ctx, const uint8_t *name, size_t len)
{
	struct kube_upstream *k = ctx;

	if (!k->loading) {
		upstream_invalidate(&k->base, name, len);
		return;
	}
	kube_changes_add(&k->changes, name, len);
}

/* Any change: cached answers from before it are no longer renewed (upstream.h, `changed`). */
static void
kube_moved(void *ctx)
{
	struct kube_upstream *k = ctx;

	upstream_changed(&k->base);
}

static void
kube_flush(struct kube_upstream *k, struct kube_changes *cs)
{
	if (cs->overflow) {
		upstream_invalidate(&k->base, k->acfg.zone, k->acfg.zone_len);
		upstream_invalidate(&k->base, kube_in_addr_arpa, sizeof(kube_in_addr_arpa));
		upstream_invalidate(&k->base, kube_ip6_arpa, sizeof(kube_ip6_arpa));
	} else {
		for (size_t i = 0; i < cs->n; i++)
			upstream_invalidate(&k->base, cs->v[i].name, cs->v[i].len);
	}
	cs->n = 0;
	cs->overflow = false;
}

static void
kube_flush_changes(struct kube_upstream *k)
{
	kube_flush(k, &k->changes);
}

/* The API source brackets each LIST page: its changes are collected and dropped together. */
static void
kube_batch(void *ctx, bool begin)
{
	struct kube_upstream *k = ctx;

	k->loading = begin;
	if (!begin)
		kube_flush_changes(k);
}

/* --- the snapshot --- */

static void
kube_load_failed(struct kube_upstream *k, int rc, const char *err)
{
	char why[sizeof(k->reason)];

	if (err[0])
		snprintf(why, sizeof(why), "%s", err);
	else
		snprintf(why, sizeof(why), "%s: %s", k->path, strerror(-rc));
	snprintf(k->reason, sizeof(k->reason), "%s", why);
	k->last_failed = true;
	if (k->synced)
		log_ratelimited(&k->rl_err, LOG_ERR, "kube: %s; keeping the previous state", why);
	else
		log_ratelimited(&k->rl_err, LOG_ERR,
				"kube: %s; %s answers SERVFAIL until the snapshot reads", why,
				k->zone_text);
}

/* A read succeeded: bookkeeping and its log line. */
static void
kube_loaded(struct kube_upstream *k, const struct kube_snapshot_result *res, msec_t ms)
{
	k->synced = true;
	k->last_failed = false;
	k->last_sync = time(NULL);
	k->last = *res;
	log_info("kube: read %s: %zu namespaces, %zu services, %zu endpointslices, %zu pods in "
		 "%llu ms",
		 k->path, res->namespaces, res->services, res->slices, res->pods,
		 (unsigned long long)ms);
	if (res->skipped)
		log_ratelimited(&k->rl_skip, LOG_WARNING,
				"kube: %s: skipped %zu objects, first: %s", k->path, res->skipped,
				res->first_skip);
}

/* The first read, at start (nothing is served yet), or a re-read when no thread can start. */
static void
kube_load(struct kube_upstream *k)
{
	struct kube_snapshot_result res;
	msec_t t0 = clock_now_ms();
	char err[512] = "";
	int rc;

	/* stat before reading: a change made during the read is seen by the next poll */
	filestat_take(&k->fs, k->path);
	memset(&res, 0, sizeof(res));
	k->loading = true;
	rc = kube_snapshot_load(k->store, k->path, &res, err, sizeof(err));
	k->loading = false;
	kube_flush_changes(k);
	/* The parse tree of a big file, several times its size, was freed below the store's new
	 * objects, where glibc keeps it until trimmed (measured: tests/bench/README.md, "Trimming
	 * after a snapshot load"). */
	malloc_trim(0);
	if (rc < 0)
		kube_load_failed(k, rc, err);
	else
		kube_loaded(k, &res, clock_now_ms() - t0);
}

/* The new store's reports during a re-read, in the worker thread: only read_changes and
 * read_moved are touched, which the loop leaves alone until kube_read_done(). */
static void
kube_read_changed(void *ctx, const uint8_t *name, size_t len)
{
	struct kube_upstream *k = ctx;

	kube_changes_add(&k->read_changes, name, len);
}

static void
kube_read_moved(void *ctx)
{
	struct kube_upstream *k = ctx;

	k->read_moved = true;
}

static void kube_read_start(struct kube_upstream *k);

/* On the loop: swap the new store in and drop what changed from the cache, in one step, so no
 * query sees the new store with a stale cached answer or the other way round. */
static void
kube_read_done(void *ctx, struct kube_snapshot_read *r)
{
	struct kube_upstream *k = ctx;
	struct kube_store *old = k->store;

	if (r->rc < 0) {
		kube_load_failed(k, r->rc, r->err);
	} else {
		kube_store_set_reports(r->store, kube_changed, kube_moved, k);
		k->store = r->store;
		r->store = NULL;
		if (k->read_moved)
			upstream_changed(&k->base);
		kube_flush(k, &k->read_changes);
		kube_snapshot_worker_retire(k->worker, old);
		kube_loaded(k, &r->res, r->ms);
	}
	k->read_changes = (struct kube_changes){0};
	k->read_moved = false;
	if (k->reread) {
		k->reread = false;
		kube_read_start(k);
	}
}

static void
kube_read_start(struct kube_upstream *k)
{
	int rc;

	/* stat before reading: a change made during the read is seen by the next poll */
	filestat_take(&k->fs, k->path);
	log_info("kube: reading %s", k->path);
	rc = kube_snapshot_worker_start(k->worker, k->store);
	if (rc < 0) {
		log_ratelimited(
			&k->rl_err, LOG_WARNING,
			"kube: cannot start a thread to read %s (%s): reading it on the loop",
			k->path, strerror(-rc));
		kube_load(k);
	}
}

static void
kube_poll(evutil_socket_t fd UNUSED, short what UNUSED, void *arg)
{
	struct kube_upstream *k = arg;
	struct filestat now;

	if (kube_snapshot_worker_busy(k->worker))
		return; /* k->fs is from before this read: the next poll after it compares */
	filestat_take(&now, k->path);
	if (filestat_changed(&k->fs, &now))
		kube_read_start(k);
}

static void
kube_reload(struct upstream *u)
{
	struct kube_upstream *k = kube_from(u);

	if (!k->path) {
		log_info("kube: nothing to re-read for the API source (the token is re-read every "
			 "minute and on 401)");
		return;
	}
	if (kube_snapshot_worker_busy(k->worker)) {
		log_info("kube: SIGHUP during the read of %s: it is read again after this read",
			 k->path);
		k->reread = true;
		return;
	}
	kube_read_start(k);
}

/* --- delivery --- */

/* upstream_defer's release: the item is done with, completed or dropped. */
static void
kube_item_release(void *ctx, struct upstream_defer_item *item)
{
	struct kube_upstream *k = ctx;

	free(container_of(item, struct kube_pending, d));
	k->n_pending--;
}

/* --- stage 2: an ExternalName target through the router --- */

/* Replace it->d.reply (the CNAME) with the merged answer; on failure leave NULL: SERVFAIL. */
static void
kube_external_finish(struct kube_pending *it, int status, const uint8_t *reply, size_t len)
{
	uint8_t *merged = NULL;
	size_t mlen = 0;

	if (kube_merge(it->d.req, it->d.reply, it->d.len, status, reply, len, &merged, &mlen) < 0)
		merged = NULL;
	free(it->d.reply);
	it->d.reply = merged;
	it->d.len = mlen;
}

static void
kube_sub_done(struct upstream_req *sub, int status, const uint8_t *reply, size_t len)
{
	struct kube_pending *it = container_of(sub, struct kube_pending, sub);
	struct kube_upstream *k = it->k;

	TAILQ_REMOVE(&k->waiting, it, link);
	it->sub_active = false;
	kube_external_finish(it, status, reply, len);
	/* from the loop: the client's resolve() returned long ago */
	upstream_defer_complete(&k->defer, &it->d);
}

static void
kube_external_start(struct kube_upstream *k, struct kube_pending *it,
		    const struct kube_answer_result *res)
{
	int rc = -ENOENT;

	memcpy(it->target, res->target, res->target_len);
	it->sub = (struct upstream_req){
		.q = {.qname = it->target,
		      .qname_len = (uint16_t)res->target_len,
		      .qtype = it->d.req->q.qtype,
		      .qclass = it->d.req->q.qclass},
		.cd = it->d.req->cd,
		.do_bit = it->d.req->do_bit,
		.done = kube_sub_done,
	};
	TAILQ_INSERT_TAIL(&k->waiting, it, link);
	it->sub_active = true;
	if (k->router)
		rc = router_resolve(k->router, &it->sub);
	if (rc == 0)
		return;
	/* Nobody takes the target: the CNAME alone with SERVFAIL, delivered from the loop. */
	TAILQ_REMOVE(&k->waiting, it, link);
	it->sub_active = false;
	kube_external_finish(it, -EIO, NULL, 0);
	upstream_defer_push(&k->defer, &it->d);
}

/* --- resolve --- */

/* SERVFAIL until the first good read. */
static int
kube_servfail(const struct upstream_req *req, uint8_t **out, size_t *len)
{
	uint8_t buf[DNS_HDR_LEN + DNS_MAX_NAME + 4];
	struct dnsmsg_builder b;
	int rc;

	dnsmsg_builder_init(&b, buf, sizeof(buf), 0, &req->q, true, req->cd, false,
			    DNS_RCODE_SERVFAIL);
	if ((rc = dnsmsg_builder_finish(&b)) < 0)
		return rc;
	if (!(*out = malloc((size_t)rc)))
		return -ENOMEM;
	memcpy(*out, buf, (size_t)rc);
	*len = (size_t)rc;
	return 0;
}

/* kube_answer() into a malloc'd copy: the small buffer first, 65535 bytes when it is short. */
static int
kube_answer_copy(struct kube_upstream *k, const struct upstream_req *req,
		 struct kube_answer_result *res, uint8_t **out, size_t *len)
{
	uint8_t *big, *shrunk;
	int rc = kube_answer(k->store, &k->acfg, &req->q, 0, k->buf, sizeof(k->buf), res);

	if (rc == 0) {
		if (!(*out = malloc(res->len)))
			return -ENOMEM;
		memcpy(*out, k->buf, res->len);
		*len = res->len;
		return 0;
	}
	if (rc != -ENOSPC)
		return rc;
	if (!(big = malloc(DNS_MAX_UDP)))
		return -ENOMEM;
	rc = kube_answer(k->store, &k->acfg, &req->q, 0, big, DNS_MAX_UDP, res);
	if (rc < 0) {
		free(big);
		return rc;
	}
	shrunk = realloc(big, res->len ? res->len : 1);
	*out = shrunk ? shrunk : big;
	*len = res->len;
	return 0;
}

static int
kube_resolve(struct upstream *u, struct upstream_req *req)
{
	struct kube_upstream *k = kube_from(u);
	struct kube_answer_result res = {.status = KUBE_ANSWER_DONE};
	bool in_zone =
		dnsmsg_name_in_zone(req->q.qname, req->q.qname_len, k->acfg.zone, k->acfg.zone_len);
	struct kube_pending *it;
	uint8_t *reply = NULL;
	size_t len = 0;
	int rc;

	if (!kube_synced(k) && !in_zone)
		return -ENOENT; /* reverse zones: the forwarders may know */
	if (k->n_pending >= KUBE_MAX_PENDING)
		return -EBUSY;
	rc = kube_synced(k) ? kube_answer_copy(k, req, &res, &reply, &len)
			    : kube_servfail(req, &reply, &len);
	if (rc == -EINVAL || (rc == 0 && res.status == KUBE_ANSWER_DECLINE)) {
		free(reply);
		return -ENOENT;
	}
	if (rc < 0)
		return rc;
	if (!(it = calloc(1, sizeof(*it)))) {
		free(reply);
		return -ENOMEM;
	}
	it->k = k;
	it->d.req = req;
	it->d.reply = reply;
	it->d.len = len;
	req->priv = it;
	k->n_pending++;
	if (res.status == KUBE_ANSWER_EXTERNAL)
		kube_external_start(k, it, &res);
	else
		upstream_defer_push(&k->defer, &it->d);
	return 0;
}

/*
 * upstream_ops.answer: the store's answer written straight into the engine's buffer, so cluster
 * names take the batched path of cache hits: no allocation, no deferred completion, no send of
 * its own (through resolve() they were several times slower than cache hits; measured:
 * tests/bench/README.md, "Kube answers on the hit path"). ExternalNames that leave the zone,
 * PTRs the store does not know and anything before the first sync go through resolve(), which
 * handles them.
 */
static int
kube_answer_now(struct upstream *u, const struct upstream_req *req, uint8_t *out, size_t cap)
{
	struct kube_upstream *k = kube_from(u);
	struct kube_answer_result res = {.status = KUBE_ANSWER_DONE};

	if (!kube_synced(k) || kube_answer(k->store, &k->acfg, &req->q, 0, out, cap, &res) < 0 ||
	    res.status != KUBE_ANSWER_DONE || res.len > INT32_MAX)
		return -EAGAIN;
	return (int)res.len;
}

static void
kube_cancel(struct upstream *u, struct upstream_req *req)
{
	struct kube_upstream *k = kube_from(u);
	struct kube_pending *it = req->priv;

	if (!it)
		return;
	assert(it->d.req == req);
	if (it->sub_active) {
		TAILQ_REMOVE(&k->waiting, it, link);
		if (it->sub.owner)
			upstream_cancel(it->sub.owner, &it->sub);
	}
	upstream_defer_cancel(&k->defer, &it->d);
}

/* --- life --- */

static void
kube_strv_free(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

static void
kube_free(struct upstream *u)
{
	struct kube_upstream *k;
	struct kube_pending *it;

	if (!u)
		return;
	k = kube_from(u);
	/* What is still pending ends with an error, never forgotten (upstream.h, the rule of
	 * free()): first the ExternalName targets still asked elsewhere (withdrawn there), then
	 * the answers waiting for the loop. */
	while ((it = TAILQ_FIRST(&k->waiting))) {
		TAILQ_REMOVE(&k->waiting, it, link);
		it->sub_active = false;
		if (it->sub.owner)
			upstream_cancel(it->sub.owner, &it->sub);
		upstream_defer_fail(&k->defer, &it->d, -ECANCELED);
	}
	upstream_defer_done(&k->defer);
	if (k->poll_ev)
		event_free(k->poll_ev);
	if (k->startup_ev)
		event_free(k->startup_ev);
	kube_snapshot_worker_free(k->worker); /* before the store, which its thread reads */
	kube_api_free(k->api);		      /* before the store and the credentials it borrows */
	kube_auth_free(k->auth);
	kube_store_free(k->store);
	kube_strv_free(k->namespaces, k->n_namespaces);
	free(k->zone_text);
	free(k->path);
	free(k);
}

static enum kube_pods_mode
kube_pods_mode(enum config_kube_pods p)
{
	switch (p) {
	case CONFIG_KUBE_PODS_VERIFIED:
		return KUBE_PODS_VERIFIED;
	case CONFIG_KUBE_PODS_DISABLED:
		return KUBE_PODS_DISABLED;
	case CONFIG_KUBE_PODS_INSECURE:
		break;
	}
	return KUBE_PODS_INSECURE;
}

/* Copy what we keep of the configuration. */
static int
kube_configure(struct kube_upstream *k, const struct config *cfg)
{
	uint8_t zone[DNS_MAX_NAME];
	int zlen = dnsmsg_name_from_text(cfg->kube_domain, zone, sizeof(zone));

	if (zlen <= 1) /* not a name, or the root */
		return -EINVAL;
	dnsmsg_name_lower(k->zone, zone, (size_t)zlen);
	if (!(k->zone_text = strdup(cfg->kube_domain)) ||
	    (cfg->kube_snapshot && !(k->path = strdup(cfg->kube_snapshot))))
		return -ENOMEM;
	if (cfg->n_kube_namespaces &&
	    !(k->namespaces = calloc(cfg->n_kube_namespaces, sizeof(*k->namespaces))))
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_kube_namespaces; i++, k->n_namespaces++)
		if (!(k->namespaces[i] = strdup(cfg->kube_namespaces[i])))
			return -ENOMEM;
	k->acfg = (struct kube_answer_config){
		.zone = k->zone,
		.zone_len = (size_t)zlen,
		.ttl = cfg->kube_ttl,
		.pods = kube_pods_mode(cfg->kube_pods),
		.ignore_empty_service = cfg->kube_ignore_empty_service,
		.namespaces = (const char *const *)k->namespaces,
		.n_namespaces = k->n_namespaces,
	};
	return 0;
}

static int
kube_events(struct kube_upstream *k, struct event_base *base)
{
	struct timeval tv = {.tv_sec = KUBE_POLL_MS / 1000, .tv_usec = KUBE_POLL_MS % 1000 * 1000};
	int rc = upstream_defer_init(&k->defer, base, kube_item_release, k);

	if (rc < 0)
		return rc;
	if (!k->path)
		return 0;
	rc = kube_snapshot_worker_new(&k->worker, &(struct kube_snapshot_worker_config){
							  .base = base,
							  .path = k->path,
							  .changed = kube_read_changed,
							  .moved = kube_read_moved,
							  .done = kube_read_done,
							  .ctx = k,
						  });
	if (rc < 0)
		return rc;
	k->poll_ev = event_new(base, -1, EV_PERSIST, kube_poll, k);
	if (!k->poll_ev || event_add(k->poll_ev, &tv) < 0)
		return -ENOMEM;
	return 0;
}

/* --kube-startup-timeout passed: from now on the daemon is ready whether synced or not
 * (kube_status_op), as CoreDNS after its startup_timeout: a booting cluster whose API
 * server is away still gets DNS for the rest of the world, and the cluster zone keeps
 * answering SERVFAIL (kube_resolve), never NXDOMAIN, until the first sync. */
static void
kube_startup_expired(evutil_socket_t fd UNUSED, short what UNUSED, void *arg)
{
	struct kube_upstream *k = arg;

	if (kube_synced(k))
		return;
	k->startup_passed = true;
	log_warn("kube: not synced after %u s; ready anyway (--kube-startup-timeout), cluster "
		 "names answer SERVFAIL until the first sync",
		 k->startup_timeout);
}

static int
kube_startup_timer(struct kube_upstream *k, struct event_base *base, unsigned seconds)
{
	struct timeval tv = {.tv_sec = (time_t)seconds};

	k->startup_timeout = seconds;
	if (seconds == 0)
		return 0;
	k->startup_ev = evtimer_new(base, kube_startup_expired, k);
	if (!k->startup_ev || evtimer_add(k->startup_ev, &tv) < 0)
		return -ENOMEM;
	return 0;
}

/* The API source: credentials from the options (or in cluster), then list + watch. */
static int
kube_api_start(struct kube_upstream *k, struct event_base *base, const struct config *cfg,
	       char *err, size_t errlen)
{
	struct kube_auth_config acfg = {
		.api_url = cfg->kube_api_url,
		.token_file = cfg->kube_token_file,
		.ca_file = cfg->kube_ca_file,
		.kubeconfig = cfg->kubeconfig,
	};
	struct kube_api_config apicfg = {
		.base = base,
		.store = k->store,
		.pods = cfg->kube_pods == CONFIG_KUBE_PODS_VERIFIED,
		.zone_text = k->zone_text,
		.batch = kube_batch,
		.ctx = k,
	};
	char buf[512] = "";
	int rc;

	if ((rc = kube_auth_new(&k->auth, &acfg, buf, sizeof(buf))) < 0) {
		if (err && errlen)
			snprintf(err, errlen, "%s", buf[0] ? buf : strerror(-rc));
		return rc;
	}
	apicfg.auth = k->auth;
	snprintf(k->reason, sizeof(k->reason), "not listed yet");
	log_info("kube: serving %s from the API server %s", k->zone_text,
		 kube_auth_describe(k->auth));
	return kube_api_new(&k->api, &apicfg);
}

static int
kube_create(struct upstream **out, struct event_base *base, const void *args)
{
	const struct kube_upstream_args *a = args;
	struct kube_store_config scfg = {.changed = kube_changed, .moved = kube_moved};
	struct kube_upstream *k;
	int rc;

	assert(out && a && a->cfg);
	if (!base || !a->cfg->kube_domain)
		return -EINVAL;
	if (!(k = calloc(1, sizeof(*k))))
		return -ENOMEM;
	k->base.ops = &kube_upstream_ops;
	k->base.source = METRICS_SOURCE_CLUSTER;
	k->router = a->router;
	TAILQ_INIT(&k->waiting);
	k->rl_skip = (struct log_ratelimit)LOG_RATELIMIT_INIT(10000, 3);
	k->rl_err = (struct log_ratelimit)LOG_RATELIMIT_INIT(1000, 5);
	snprintf(k->reason, sizeof(k->reason), "no snapshot read yet");
	rc = kube_configure(k, a->cfg);
	if (rc == 0) {
		scfg.zone = k->zone_text;
		scfg.endpoint_pod_names = a->cfg->kube_endpoint_pod_names;
		scfg.ctx = k;
		k->store = kube_store_new(&scfg);
		rc = k->store ? kube_events(k, base) : -ENOMEM;
	}
	if (rc == 0)
		rc = kube_startup_timer(k, base, a->cfg->kube_startup_timeout);
	if (rc == 0 && !k->path)
		rc = kube_api_start(k, base, a->cfg, a->err, a->errlen);
	if (rc < 0) {
		kube_free(&k->base);
		return rc;
	}
	if (k->path) {
		log_info("kube: serving %s from %s", k->zone_text, k->path);
		kube_load(k);
	}
	*out = &k->base;
	return 0;
}

static void
kube_stats(struct upstream *u, upstream_stats_fn *line, void *ctx)
{
	struct kube_upstream *k = kube_from(u);
	struct kube_store_counts c;
	char buf[1024], when[16] = "?";
	struct tm tm;

	kube_store_counts(k->store, &c);
	snprintf(buf, sizeof(buf),
		 "kube: namespaces %zu, services %zu, endpointslices %zu, endpoints %zu, pods %zu",
		 c.namespaces, c.services, c.slices, c.endpoints, c.pods);
	line(ctx, buf);
	if (k->api) {
		kube_api_stats(k->api, line, ctx);
		return;
	}
	if (!k->synced) {
		snprintf(buf, sizeof(buf), "kube: not synced: %s", k->reason);
		line(ctx, buf);
		return;
	}
	if (localtime_r(&k->last_sync, &tm))
		strftime(when, sizeof(when), "%H:%M:%S", &tm);
	snprintf(buf, sizeof(buf), "kube: last sync %s from snapshot %s (%zu skipped)", when,
		 k->path, k->last.skipped);
	line(ctx, buf);
	if (k->last_failed) {
		snprintf(buf, sizeof(buf),
			 "kube: last re-read failed, serving the previous state: %s", k->reason);
		line(ctx, buf);
	}
}

/*
 * upstream_ops.watched: where the store's reports (kube_store_report*) fall, so that the cache
 * finds what a report drops by owner: svc.ns.svc.ZONE (2 below svc.ZONE), ns.pod.ZONE (1 below
 * pod.ZONE), the exact reverse names of addresses; namespaces (ns.svc.ZONE) and whole zones
 * (kube_flush_changes) read every answer under the zones, and nothing else.
 */
static size_t
kube_watched(struct upstream *u, const struct upstream_watch **out)
{
	struct kube_upstream *k = kube_from(u);
	static const struct {
		uint8_t label[4];
		unsigned depth;
	} sub[] = {{{3, 's', 'v', 'c'}, 2}, {{3, 'p', 'o', 'd'}, 1}};
	size_t n = 0, zlen = k->acfg.zone_len;

	k->watch[n++] = (struct upstream_watch){k->zone, zlen, 1};
	for (size_t i = 0; i < ARRAY_SIZE(sub) && zlen + 4 <= DNS_MAX_NAME; i++) {
		memcpy(k->watch_sub[i], sub[i].label, 4);
		memcpy(k->watch_sub[i] + 4, k->zone, zlen);
		k->watch[n++] = (struct upstream_watch){k->watch_sub[i], zlen + 4, sub[i].depth};
	}
	k->watch[n++] = (struct upstream_watch){kube_in_addr_arpa, sizeof(kube_in_addr_arpa), 4};
	k->watch[n++] = (struct upstream_watch){kube_ip6_arpa, sizeof(kube_ip6_arpa), 32};
	*out = k->watch;
	return n;
}

static void
kube_status_read(struct kube_upstream *k, struct kube_status *out)
{
	struct kube_store_counts c;

	kube_store_counts(k->store, &c);
	if (k->api) {
		*out = (struct kube_status){
			.namespaces = c.namespaces,
			.services = c.services,
			.slices = c.slices,
			.endpoints = c.endpoints,
			.pods = c.pods,
		};
		kube_api_status(k->api, out);
		out->startup_passed = k->startup_passed && !out->synced;
		return;
	}
	snprintf(k->source, sizeof(k->source), "snapshot %s", k->path);
	*out = (struct kube_status){
		.synced = k->synced,
		.connected = k->synced && !k->last_failed,
		.source = k->source,
		.reason = k->synced && !k->last_failed ? "" : k->reason,
		.last_sync = k->synced ? k->last_sync : 0,
		.namespaces = c.namespaces,
		.services = c.services,
		.slices = c.slices,
		.endpoints = c.endpoints,
		.pods = c.pods,
		.bad_events = k->last.skipped,
		.startup_passed = k->startup_passed && !k->synced,
	};
}

/* The `status` operation: ready once synced, or once --kube-startup-timeout has passed. */
static void
kube_status_op(struct upstream *u, struct upstream_status *out)
{
	struct kube_upstream *k = kube_from(u);
	struct kube_status *st = &k->status;

	kube_status_read(k, st);
	out->cluster = st;
	out->ready = st->synced || st->startup_passed;
	if (!out->ready) {
		snprintf(k->not_ready, sizeof(k->not_ready), "kube: not synced: %s",
			 st->reason && *st->reason ? st->reason : "unknown");
		out->reason = k->not_ready;
	}
}

const struct upstream_ops kube_upstream_ops = {
	.name = "kube",
	.create = kube_create,
	.free = kube_free,
	.resolve = kube_resolve,
	.answer = kube_answer_now,
	.cancel = kube_cancel,
	.stats = kube_stats,
	.watched = kube_watched,
	.reload = kube_reload,
	.status = kube_status_op,
};
