/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kube_status.h - what the kube resolver reports of its cluster source (the `status` operation
 * of kube_upstream_ops, struct upstream_status.cluster): filled by the source (the API client
 * or the snapshot reader) and the store, read by /ready, /metrics and SIGUSR1.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "kubemasq/metrics.h"

struct kube_status {
	bool synced;	     /* a first full sync (snapshot read, or every LIST) has happened */
	bool connected;	     /* API: watching now; snapshot: the last read succeeded */
	bool startup_passed; /* not synced, but --kube-startup-timeout has passed: ready */
	const char *source;  /* "snapshot /path" or the API server URL; valid until the next
				 * call into the upstream */
	const char *reason;  /* why not synced, or the last failure; "" if none */
	time_t last_sync;    /* wall clock of the last complete sync, 0 = never */
	size_t namespaces, services, slices, endpoints, pods;
	uint64_t watch_restarts; /* watches started again after a normal end or a drop */
	uint64_t relists;	 /* LISTs after the first (410, errors) */
	uint64_t reconnects;	 /* connection attempts that followed a failure */
	uint64_t events;	 /* watch events applied */
	uint64_t bad_events;	 /* watch events or objects refused (counted drops) */
	/* EndpointSlice change (its endpoints.kubernetes.io/last-change-trigger-time) to applied,
	 * as CoreDNS's programming latency; NULL for the snapshot source. */
	const struct metrics_hist *programming;
};
