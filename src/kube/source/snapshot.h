/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * snapshot.h - the cluster from a file: exactly what
 * `kubectl get namespaces,services,endpointslices -A -o json` prints (a v1 List; Pod items too
 * for --kube-pods=verified). Parsing is pure apart from reading the file: JSON -> the store's
 * object descriptions -> a full replacement of each kind. A file that does not parse changes
 * nothing and reports its position; objects that are wrong alone are skipped and counted.
 */
#pragma once

#include <stdatomic.h>
#include <stddef.h>

#include "kube/store.h"

#define KUBE_SNAPSHOT_MAX_BYTES (512u << 20) /* a bigger file is refused, not read */

struct kube_snapshot_result {
	size_t namespaces, services, slices, pods; /* stored */
	size_t skipped;				   /* objects refused (bad fields, caps) */
	size_t ignored;				   /* items of other kinds */
	char first_skip[256];			   /* "Service default/x: why", for the log */
};

/*
 * Parse `path` and replace the store's namespaces, services, endpointslices and pods with its
 * items. Returns 0 (even with skipped objects; see *res), or a negative errno with one line in
 * err: "-ENOENT/-EACCES" for an unreadable file, -EFBIG over KUBE_SNAPSHOT_MAX_BYTES, -EPROTO
 * for JSON that does not parse ("FILE:LINE:COLUMN: message") or is not a List; the store is
 * then untouched.
 */
int kube_snapshot_load(struct kube_store *s, const char *path, struct kube_snapshot_result *res,
		       char *err, size_t errlen);

/*
 * The same in two steps, so that a re-read can run in a worker thread (upstream_kube.c) and be stopped:
 * parse `path` into *out (owned by the caller, kube_snapshot_doc_free()), then apply it to a
 * store. The parse polls `stop` (NULL: never stops) at every block it reads and ends with
 * -ECANCELED once it holds true; its other errors are those of kube_snapshot_load(). Neither
 * step logs or touches global state, so two threads may each run one on their own objects.
 */
struct kube_snapshot_doc;
int kube_snapshot_parse(const char *path, const atomic_bool *stop, struct kube_snapshot_doc **out,
			char *err, size_t errlen);
int kube_snapshot_apply(struct kube_store *s, const struct kube_snapshot_doc *doc,
			struct kube_snapshot_result *res, char *err, size_t errlen);
void kube_snapshot_doc_free(struct kube_snapshot_doc *doc); /* NULL-safe */

/* The same from a buffer (tests, and the API source's LIST bodies). `name` is used in errors. */
int kube_snapshot_load_buffer(struct kube_store *s, const char *buf, size_t len, const char *name,
			      struct kube_snapshot_result *res, char *err, size_t errlen);

/* --- one object at a time, for the API source's LIST pages and watch events --- */

struct json_t;

/*
 * Upsert one object of `kind` (an item of a typed list or a watch event's object: its own kind
 * and apiVersion fields are not needed) through the same conversion as a snapshot item.
 * Returns 0, -EINVAL when it cannot be stored (why: "no metadata.name", "invalid clusterIP
 * ...", a store refusal), -ENOSPC, -ENOMEM. `obj` is borrowed.
 */
int kube_snapshot_apply_object(struct kube_store *s, enum kube_kind kind, const struct json_t *obj,
			       char *why, size_t whylen);

/* Delete the object of `kind` named by obj's metadata. Returns 0, -ENOENT when the store does
 * not hold it, -EINVAL without metadata.name (or .namespace for namespaced kinds; why says). */
int kube_snapshot_delete_object(struct kube_store *s, enum kube_kind kind, const struct json_t *obj,
				char *why, size_t whylen);
