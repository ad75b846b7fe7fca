/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * api.h - the cluster from the Kubernetes API server: for each collection (namespaces,
 * services, discovery.k8s.io/v1 endpointslices, and pods for --kube-pods=verified) a paged LIST
 * applied to the store page by page as a full replacement of that kind, then a WATCH from the
 * list's resourceVersion, resumed from the last event's resourceVersion when it ends, re-listed
 * from the first page on 410 (an expired watch or LIST continue token: at once, but with the
 * back-off after three in a row before a watch gets under way), retried with jittered back-off
 * (0.8 s doubling to 30 s) on every other failure. The store keeps serving the last state
 * meanwhile. Watch bodies are framed by api_framer.h.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct kube_auth;
struct kube_store;
struct kube_status;

/* --- the source --- */

struct kube_api;

struct kube_api_config {
	struct event_base *base;
	struct kube_store *store; /* borrowed; outlives the source */
	struct kube_auth *auth;	  /* borrowed; outlives the source */
	bool pods;		  /* watch pods too (--kube-pods=verified) */
	const char *zone_text;	  /* for log lines: "cluster.local" */
	/* Called with true before a LIST page is applied and with false after it, so the caller
	 * can batch the cache invalidations of a page; watch events come outside such brackets
	 * and should invalidate at once. May be NULL. */
	void (*batch)(void *ctx, bool begin);
	void *ctx;
};

/* Start listing at once (from the event loop). Returns 0, -ENOMEM. */
int kube_api_new(struct kube_api **out, const struct kube_api_config *cfg);
void kube_api_free(struct kube_api *a); /* cancels every request; NULL-safe */

/* Every collection has completed its first LIST. */
bool kube_api_synced(const struct kube_api *a);

/* Fill the source's part of the status: synced, connected, source, reason, last_sync, the
 * counters and the programming-latency histogram (store counts are the caller's). */
void kube_api_status(struct kube_api *a, struct kube_status *out);

/* SIGUSR1: a few "kube: ..." lines about the link. */
void kube_api_stats(struct kube_api *a, void (*line)(void *ctx, const char *text), void *ctx);
