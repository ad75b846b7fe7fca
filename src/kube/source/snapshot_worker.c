/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * snapshot_worker.c - a snapshot re-read off the event loop (snapshot_worker.h). One thread,
 * started with the first read (after the daemon forked: threads do not survive a fork) and
 * joined when the worker is freed, takes two kinds of work from the loop under a mutex: a read
 * to run, and a store swapped out that is to be freed (tens of milliseconds for a big one,
 * which the loop would otherwise spend not answering). It writes one byte to a pipe when a
 * read's result is ready; the loop's event on the pipe picks the result up. Nothing here
 * enables libevent's locking, which would cost every event operation on the loop. The thread
 * blocks every signal, so they keep going to the loop's handlers; it logs nothing (log.c is
 * the loop's), and everything it calls is pure apart from reading the file.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "kubemasq/log.h"
#include "lib/clock.h"
#include "kube/source/snapshot_worker.h"

struct kube_snapshot_worker {
	struct kube_snapshot_worker_config cfg; /* cfg.path is ours */
	struct event *ev;			/* the pipe's read end: a result is ready */
	int pipe[2];
	pthread_t thread;
	bool started;	  /* the thread runs (until kube_snapshot_worker_free()) */
	bool reading;	  /* the loop's: a read was asked for and done() not called yet */
	atomic_bool stop; /* ends a parse early: the worker is being freed */

	pthread_mutex_t mu; /* guards what follows, between the loop and the thread */
	pthread_cond_t cv;  /* the thread waits on it for work */
	bool quit;
	bool want_read;
	const struct kube_store *old; /* the read's: borrowed until its result is taken */
	struct kube_store *garbage;   /* a store to free */
	bool result;		      /* `out` holds a finished read the loop has not taken */
	struct kube_snapshot_read out;
};

/* In the thread: parse, copy the old store, apply the file to the copy. */
static void
kube_snapshot_worker_read(struct kube_snapshot_worker *w, const struct kube_store *old,
			  struct kube_snapshot_read *r)
{
	struct kube_snapshot_doc *doc = NULL;
	msec_t t0 = clock_now_ms();

	r->rc = kube_snapshot_parse(w->cfg.path, &w->stop, &doc, r->err, sizeof(r->err));
	if (r->rc == 0 && atomic_load(&w->stop))
		r->rc = -ECANCELED; /* the copy and the apply would only be thrown away */
	if (r->rc == 0) {
		r->rc = kube_store_clone(old, w->cfg.changed, w->cfg.moved, w->cfg.ctx, &r->store);
		if (r->rc < 0)
			log_errbuf(r->err, sizeof(r->err), "%s: out of memory", w->cfg.path);
	}
	if (r->rc == 0)
		r->rc = kube_snapshot_apply(r->store, doc, &r->res, r->err, sizeof(r->err));
	if (r->rc < 0) {
		kube_store_free(r->store);
		r->store = NULL;
	}
	/* The parse tree (about ten times the file) is freed here, off the loop too, and its
	 * pages given back: glibc would keep them below the new store's objects otherwise. */
	kube_snapshot_doc_free(doc);
	malloc_trim(0);
	r->ms = clock_now_ms() - t0;
}

static void *
kube_snapshot_worker_main(void *arg)
{
	struct kube_snapshot_worker *w = arg;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		struct kube_snapshot_read r = {0};
		struct kube_store *g = w->garbage;
		const struct kube_store *old;
		ssize_t n;

		if (g) {
			w->garbage = NULL;
			pthread_mutex_unlock(&w->mu);
			kube_store_free(g);
			malloc_trim(0);
			pthread_mutex_lock(&w->mu);
			continue;
		}
		if (w->quit)
			break;
		if (!w->want_read) {
			pthread_cond_wait(&w->cv, &w->mu);
			continue;
		}
		w->want_read = false;
		old = w->old;
		pthread_mutex_unlock(&w->mu);
		kube_snapshot_worker_read(w, old, &r);
		pthread_mutex_lock(&w->mu);
		w->out = r;
		w->result = true;
		do
			n = write(w->pipe[1], "", 1);
		while (n < 0 && errno == EINTR);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* On the loop: a result is ready. */
static void
kube_snapshot_worker_ready(evutil_socket_t fd, short what UNUSED, void *arg)
{
	struct kube_snapshot_worker *w = arg;
	struct kube_snapshot_read r;
	char buf[16];
	bool have;

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&w->mu);
	have = w->result;
	if (have) {
		r = w->out;
		w->result = false;
		w->old = NULL;
	}
	pthread_mutex_unlock(&w->mu);
	if (!have)
		return;
	w->reading = false; /* done() may start the next read */
	w->cfg.done(w->cfg.ctx, &r);
	kube_snapshot_worker_retire(w, r.store);
}

int
kube_snapshot_worker_new(struct kube_snapshot_worker **out,
			 const struct kube_snapshot_worker_config *cfg)
{
	struct kube_snapshot_worker *w = calloc(1, sizeof(*w));
	int e = -ENOMEM;

	*out = NULL;
	if (!w)
		return -ENOMEM;
	w->cfg = *cfg;
	w->pipe[0] = w->pipe[1] = -1;
	atomic_init(&w->stop, false);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (!(w->cfg.path = strdup(cfg->path)))
		goto fail;
	if (pipe2(w->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		e = -errno;
		goto fail;
	}
	w->ev = event_new(cfg->base, w->pipe[0], EV_READ | EV_PERSIST, kube_snapshot_worker_ready,
			  w);
	if (!w->ev || event_add(w->ev, NULL) < 0)
		goto fail;
	*out = w;
	return 0;
fail:
	kube_snapshot_worker_free(w);
	return e;
}

/* The thread, with every signal blocked (it inherits the mask it is created with). */
static int
kube_snapshot_worker_spawn(struct kube_snapshot_worker *w)
{
	sigset_t all, saved;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &saved);
	rc = pthread_create(&w->thread, NULL, kube_snapshot_worker_main, w);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	if (rc != 0)
		return -rc;
	w->started = true;
	return 0;
}

int
kube_snapshot_worker_start(struct kube_snapshot_worker *w, const struct kube_store *old)
{
	int rc;

	if (w->reading)
		return -EBUSY;
	if (!w->started && (rc = kube_snapshot_worker_spawn(w)) < 0)
		return rc;
	pthread_mutex_lock(&w->mu);
	w->old = old;
	w->want_read = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	w->reading = true;
	return 0;
}

bool
kube_snapshot_worker_busy(const struct kube_snapshot_worker *w)
{
	return w->reading;
}

void
kube_snapshot_worker_retire(struct kube_snapshot_worker *w, struct kube_store *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&w->mu);
	if (w->started && !w->garbage) {
		w->garbage = s;
		s = NULL;
		pthread_cond_signal(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	kube_store_free(s); /* no thread, or it has not freed the last one yet: here */
}

void
kube_snapshot_worker_free(struct kube_snapshot_worker *w)
{
	if (!w)
		return;
	if (w->started) {
		atomic_store(&w->stop, true);
		pthread_mutex_lock(&w->mu);
		w->quit = true;
		pthread_cond_signal(&w->cv);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->thread, NULL); /* it frees its garbage before it quits */
		if (w->result)
			kube_store_free(w->out.store);
	}
	if (w->ev)
		event_free(w->ev);
	for (int i = 0; i < 2; i++)
		if (w->pipe[i] >= 0)
			close(w->pipe[i]);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free((char *)w->cfg.path);
	free(w);
}
