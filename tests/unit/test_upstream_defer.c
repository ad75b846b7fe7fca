/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_upstream_defer.c - unit tests for the deferred-completion queue (upstream_defer.c) that
 * the --address and kube upstreams share: on a real event_base (no sockets), pushed items
 * complete from the loop in arrival order and never inside push, a cancelled item never
 * completes, what done() pushes waits for the next loop iteration, and dropping the queue
 * completes what is still on it with an error (ASan checks the replies are freed).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "kubemasq/defs.h"
#include "kubemasq/upstream.h"
#include "upstream/upstream_defer.h"

#define TEST_DEFER_MAX 8

/* What the owner embeds: the queue's item and an id to follow it by. */
struct test_defer_item {
	struct upstream_defer_item d;
	int id;
};

struct test_defer {
	struct event_base *base;
	struct upstream_defer q;
	struct upstream_req reqs[TEST_DEFER_MAX];
	bool in_push;		   /* done() must never run while this is set */
	int order[TEST_DEFER_MAX]; /* ids in the order done() saw them */
	int status[TEST_DEFER_MAX];
	unsigned n_done;
	unsigned n_released;
	int push_from_done; /* done() for this id pushes reqs[push_from_done_req] */
	unsigned push_from_done_req;
};

static struct test_defer *test_defer_cur;

static void
test_defer_release(void *ctx, struct upstream_defer_item *item)
{
	struct test_defer *t = ctx;

	assert_ptr_equal(t, test_defer_cur);
	free(container_of(item, struct test_defer_item, d));
	t->n_released++;
}

static void test_defer_push_id(struct test_defer *t, unsigned slot, int id, bool with_reply);

static void
test_defer_done(struct upstream_req *req, int status, const uint8_t *reply, size_t len)
{
	struct test_defer *t = test_defer_cur;
	int id = (int)(req - t->reqs) + 1;

	assert_false(t->in_push);
	assert_null(req->priv);
	assert_true(t->n_done < TEST_DEFER_MAX);
	if (status == 0) {
		/* The reply is the id, so a mixed-up reply cannot pass. */
		assert_int_equal(len, 1);
		assert_int_equal(reply[0], id);
	} else {
		assert_null(reply);
	}
	t->order[t->n_done] = id;
	t->status[t->n_done++] = status;
	if (id == t->push_from_done)
		test_defer_push_id(t, t->push_from_done_req, (int)t->push_from_done_req + 1, true);
}

/* Queue reqs[slot] with an item whose reply is the byte `id` (or no reply). */
static void
test_defer_push_id(struct test_defer *t, unsigned slot, int id, bool with_reply)
{
	struct test_defer_item *it = calloc(1, sizeof(*it));

	assert_non_null(it);
	it->id = id;
	t->reqs[slot] = (struct upstream_req){.done = test_defer_done};
	it->d.req = &t->reqs[slot];
	if (with_reply) {
		it->d.reply = malloc(1);
		assert_non_null(it->d.reply);
		it->d.reply[0] = (uint8_t)id;
		it->d.len = 1;
	}
	t->reqs[slot].priv = it;
	upstream_defer_push(&t->q, &it->d);
}

static void
test_defer_push(struct test_defer *t, unsigned slot, bool with_reply)
{
	t->in_push = true;
	test_defer_push_id(t, slot, (int)slot + 1, with_reply);
	t->in_push = false;
}

static int
test_defer_setup(void **state)
{
	struct test_defer *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	t->base = event_base_new();
	assert_non_null(t->base);
	assert_int_equal(upstream_defer_init(&t->q, t->base, test_defer_release, t), 0);
	test_defer_cur = t;
	*state = t;
	return 0;
}

static int
test_defer_teardown(void **state)
{
	struct test_defer *t = *state;

	upstream_defer_done(&t->q);
	event_base_free(t->base);
	free(t);
	test_defer_cur = NULL;
	return 0;
}

/* Three pushes: nothing inside push, then done() in push order from the loop. */
static void
test_defer_order(void **state)
{
	struct test_defer *t = *state;

	for (unsigned i = 0; i < 3; i++)
		test_defer_push(t, i, i != 1);
	assert_int_equal(t->n_done, 0);
	assert_int_equal(t->q.n, 3);
	assert_true(event_base_dispatch(t->base) >= 0);
	assert_int_equal(t->n_done, 3);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(t->order[i], (int)i + 1);
	assert_int_equal(t->status[0], 0);
	assert_int_equal(t->status[1], -EIO); /* no reply: SERVFAIL for the caller */
	assert_int_equal(t->status[2], 0);
	assert_int_equal(t->n_released, 3);
	assert_int_equal(t->q.n, 0);
}

/* A cancelled item is released at once and never completes; the others still do, in order. */
static void
test_defer_cancel(void **state)
{
	struct test_defer *t = *state;
	struct test_defer_item *it;

	for (unsigned i = 0; i < 3; i++)
		test_defer_push(t, i, true);
	it = t->reqs[1].priv;
	assert_int_equal(it->id, 2);
	upstream_defer_cancel(&t->q, &it->d);
	assert_null(t->reqs[1].priv);
	assert_int_equal(t->n_released, 1);
	assert_int_equal(t->q.n, 2);
	assert_true(event_base_dispatch(t->base) >= 0);
	assert_int_equal(t->n_done, 2);
	assert_int_equal(t->order[0], 1);
	assert_int_equal(t->order[1], 3);
	assert_int_equal(t->n_released, 3);
}

/* What done() pushes waits for the next loop iteration, then completes too. */
static void
test_defer_push_from_done(void **state)
{
	struct test_defer *t = *state;

	t->push_from_done = 1;
	t->push_from_done_req = 2;
	test_defer_push(t, 0, true);
	test_defer_push(t, 1, true);
	assert_int_equal(event_base_loop(t->base, EVLOOP_ONCE), 0);
	assert_int_equal(t->n_done, 2);
	assert_int_equal(t->q.n, 1);
	assert_true(event_base_dispatch(t->base) >= 0);
	assert_int_equal(t->n_done, 3);
	assert_int_equal(t->order[2], 3);
	assert_int_equal(t->n_released, 3);
}

/* Dropping the queue (the owner's free()) with items on it completes each, in order, with
 * -ECANCELED and no reply, releases them and frees their replies (ASan): an accepted request is
 * never forgotten (upstream.h, the rule of free()). Nothing is left for the loop. */
static void
test_defer_free_pending(void **state)
{
	struct test_defer *t = *state;

	test_defer_push(t, 0, true);
	test_defer_push(t, 1, false);
	upstream_defer_done(&t->q);
	assert_int_equal(t->n_done, 2);
	assert_int_equal(t->order[0], 1);
	assert_int_equal(t->order[1], 2);
	assert_int_equal(t->status[0], -ECANCELED);
	assert_int_equal(t->status[1], -ECANCELED);
	assert_int_equal(t->n_released, 2);
	assert_null(t->reqs[0].priv);
	assert_null(t->reqs[1].priv);
	assert_null(t->q.ev);
	assert_int_equal(event_base_dispatch(t->base), 1); /* no events left */
	assert_int_equal(t->n_done, 2);
}

/* upstream_defer_fail() ends one item at once with the given error, queued or not; the rest
 * still complete from the loop with their replies. */
static void
test_defer_fail(void **state)
{
	struct test_defer *t = *state;
	struct test_defer_item *it;

	for (unsigned i = 0; i < 3; i++)
		test_defer_push(t, i, true);
	it = t->reqs[1].priv;
	upstream_defer_fail(&t->q, &it->d, -ECANCELED);
	assert_int_equal(t->n_done, 1);
	assert_int_equal(t->order[0], 2);
	assert_int_equal(t->status[0], -ECANCELED);
	assert_null(t->reqs[1].priv);
	assert_int_equal(t->n_released, 1);
	assert_int_equal(t->q.n, 2);
	assert_true(event_base_dispatch(t->base) >= 0);
	assert_int_equal(t->n_done, 3);
	assert_int_equal(t->order[1], 1);
	assert_int_equal(t->order[2], 3);
	assert_int_equal(t->status[1], 0);
	assert_int_equal(t->status[2], 0);
	assert_int_equal(t->n_released, 3);
}

/* No base: -EINVAL; a zeroed, never initialized queue is safe to drop, and so is NULL. */
static void
test_defer_init_errors(void **state UNUSED)
{
	struct upstream_defer d;

	memset(&d, 0, sizeof(d));
	upstream_defer_done(&d);
	upstream_defer_done(NULL);
	assert_int_equal(upstream_defer_init(&d, NULL, test_defer_release, NULL), -EINVAL);
	assert_null(d.ev);
	upstream_defer_done(&d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defer_order, test_defer_setup,
						test_defer_teardown),
		cmocka_unit_test_setup_teardown(test_defer_cancel, test_defer_setup,
						test_defer_teardown),
		cmocka_unit_test_setup_teardown(test_defer_push_from_done, test_defer_setup,
						test_defer_teardown),
		cmocka_unit_test_setup_teardown(test_defer_free_pending, test_defer_setup,
						test_defer_teardown),
		cmocka_unit_test_setup_teardown(test_defer_fail, test_defer_setup,
						test_defer_teardown),
		cmocka_unit_test(test_defer_init_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
