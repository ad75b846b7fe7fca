/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * snapshot_impl.h - what the snapshot's two files share and nothing outside them sees: the
 * state of one load, a List item classified and keyed, and the functions snapshot_obj.c (one
 * object into the store) offers snapshot.c (the List document and the file). The public
 * interface is snapshot.h.
 */
#pragma once

#include <stddef.h>

#include <jansson.h>

#include "kubemasq/defs.h"
#include "kube/store.h"
#include "kube/source/snapshot.h"

#define SNAPSHOT_KINDS 4 /* enum kube_kind: namespaces, services, slices, pods */
#define SNAPSHOT_WHY_MAX 160

/* One item of the List that is one of our four kinds, with its key for duplicate detection. */
struct snapshot_entry {
	json_t *item; /* borrowed from the parsed document */
	enum kube_kind kind;
	const char *ns, *name; /* NULL when missing or wrong-typed (why says) */
	const char *why;       /* set: the item is skipped for this reason */
	size_t idx;	       /* position in items, for file order */
};

/* One load: where results and the first skip reason go. */
struct snapshot {
	struct kube_store *s;
	struct kube_snapshot_result *res;
	char why[SNAPSHOT_WHY_MAX]; /* reason of the object being parsed */
};

/* --- snapshot_obj.c --- */

/* The `kind` of each enum kube_kind, as in JSON and in skip reasons ("Service"). */
extern const char *const snapshot_obj_kind_names[SNAPSHOT_KINDS];

/* Formats the reason into sn->why; returns -EINVAL. */
int snapshot_obj_why(struct snapshot *sn, const char *fmt, ...) PRINTF_LIKE(2, 3);

/*
 * An optional string member: 0 with *out NULL when absent or JSON null, 0 with *out set (a
 * borrowed pointer into obj) for a string, -EINVAL for any other type.
 */
int snapshot_obj_opt_str(const json_t *obj, const char *key, const char **out);

/* metadata.namespace and metadata.name of e->item into e->ns and e->name (borrowed from the
 * item); sets e->why when unusable. */
void snapshot_obj_entry_key(struct snapshot_entry *e);

/* One entry into sn->s, counted in sn->res: an entry with a why, or that does not convert, or
 * that the store refuses is counted as skipped (the first one named), never fatal. */
void snapshot_obj_apply_entry(struct snapshot *sn, const struct snapshot_entry *e);
