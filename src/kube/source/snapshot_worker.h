/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * snapshot_worker.h - a snapshot re-read in a thread of its own, so that the event loop keeps
 * answering while a big file is parsed and its store built (seconds for a 195 MB file). One
 * read at a time: the thread parses the file (snapshot.h), copies the loop's store
 * (kube_store_clone) and applies the file to the copy, whose change reports go to the
 * caller's callbacks in that thread; the finished copy is then handed to `done` on the loop,
 * which swaps it in and gives the old store back to be freed in the thread too. The loop is
 * told through a pipe it watches, so libevent needs no locks.
 */
#pragma once

#include <stdbool.h>

#include "kubemasq/defs.h"
#include "kube/store.h"
#include "kube/source/snapshot.h"

struct event_base;
struct kube_snapshot_worker;

/* One finished read, as `done` receives it. */
struct kube_snapshot_read {
	int rc;				 /* 0, or the negative errno of the parse or the apply */
	char err[512];			 /* rc < 0: one line for the log (may be empty) */
	struct kube_snapshot_result res; /* rc == 0 */
	struct kube_store *store;	 /* rc == 0: the new state; done() takes it by setting
					  * this NULL, else it is retired after done() returns */
	msec_t ms;			 /* how long the read took */
};

typedef void kube_snapshot_worker_done_fn(void *ctx, struct kube_snapshot_read *r);

struct kube_snapshot_worker_config {
	struct event_base *base;
	const char *path; /* the snapshot file; copied */
	/* The new store's reports while the file is applied to it: called in the worker thread,
	 * so they may touch only what the loop leaves alone until `done`. */
	kube_store_change_fn *changed;
	kube_store_moved_fn *moved;
	kube_snapshot_worker_done_fn *done; /* on the loop, once per read started */
	void *ctx;
};

/* Returns 0, -ENOMEM, or the negative errno of pipe2(). */
int kube_snapshot_worker_new(struct kube_snapshot_worker **out,
			     const struct kube_snapshot_worker_config *cfg);

/*
 * Start a read whose result replaces `old`. `old` is borrowed until `done` is called: the
 * thread reads it, so nobody may change or free it meanwhile (reading it is fine).
 * Returns 0, -EBUSY while a read runs, or the negative errno of pthread_create().
 */
int kube_snapshot_worker_start(struct kube_snapshot_worker *w, const struct kube_store *old);

/* Free `s` (NULL: nothing) in the worker's thread, where it costs the loop nothing: a store
 * just swapped out, tens of milliseconds of free() for a big cluster. Takes ownership. */
void kube_snapshot_worker_retire(struct kube_snapshot_worker *w, struct kube_store *s);

/* A read was started and its `done` has not been called yet. */
bool kube_snapshot_worker_busy(const struct kube_snapshot_worker *w);

/* Ends a read in progress without calling `done` (its parse stops at the next block it reads,
 * and no copy is made after it; a copy or an apply under way runs to its end), waits for the
 * thread, which frees what it holds, and frees what it built. NULL-safe. */
void kube_snapshot_worker_free(struct kube_snapshot_worker *w);
