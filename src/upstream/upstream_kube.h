/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * upstream_kube.h - the embedded kube resolver as an upstream (struct upstream_ops "kube"): it
 * answers the cluster zone (--kube-domain) and the PTRs of the cluster's addresses from a
 * kube_store fed by a snapshot file (--kube-snapshot) or the API server (list + watch), declines
 * unknown PTRs so they go on to the forwarders, and resolves out-of-zone ExternalName targets
 * through the router.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "kubemasq/upstream.h"

struct config;
struct router;

struct kube_upstream_args {
	const struct config *cfg; /* the --kube-* options; borrowed, copied by create() */
	struct router *router;	  /* ExternalName targets outside the zone are asked
				   * through it; borrowed: it outlives the upstream */
	char *err;		  /* create() failing writes one line here for the operator
				   * (the API credentials' problem); may be NULL */
	size_t errlen;
};

/*
 * Sources: --kube-snapshot (a file), else the API server (api.h) with the credentials of
 * --kube-api-url/--kube-token-file/--kube-ca-file, --kubeconfig, or in cluster (auth.h).
 * API source: SERVFAIL for the cluster zone until every collection has completed its first
 * LIST; afterwards the last state keeps serving while the API server is away; watch events
 * drop the cached answers they affect at once.
 * create(): -EINVAL with a zone that is not a domain, the negative errno of kube_auth_new()
 * (with its message in args->err) when the API credentials cannot be set up, -ENOMEM.
 * A snapshot that cannot be read at start is not an error: it is logged, and the cluster zone
 * answers SERVFAIL (never NXDOMAIN) until a read succeeds; PTR queries are declined meanwhile.
 * The file is polled once a second and re-read when it changed; a read that fails keeps the
 * previous state serving. Changes drop the cached answers they affect (upstream_invalidate).
 * resolve(): 0 (accepted; done() comes from the event loop), -ENOENT (not ours: a PTR the store
 * does not know, or a name outside every kube zone), -EBUSY (too many pending), -ENOMEM.
 */
extern const struct upstream_ops kube_upstream_ops;

/* SIGHUP re-reads the snapshot (the `reload` operation; nothing to re-read for the API source,
 * whose token is re-read every minute and on 401). The `status` operation reports the cluster
 * source (struct kube_status, kube/kube_status.h) for /ready and /metrics: ready once synced,
 * or once --kube-startup-timeout has passed. */
