/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * api_framer.h - a byte stream of concatenated JSON objects (a watch body) cut into one object
 * at a time, whatever the chunk boundaries. Pure: no I/O, no clock.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define KUBE_API_MAX_OBJECT (16u << 20) /* one watch event; larger resets the watch */

struct kube_api_framer {
	char *buf; /* the incomplete object carried over from earlier data */
	size_t len, cap;
	size_t max;	  /* an object longer than this is refused */
	unsigned depth;	  /* of {} and [] nesting in the current object */
	bool in_str, esc; /* inside a string / right after a backslash in it */
};

/* Called with each complete object (not NUL-terminated; valid for the call). A non-zero return
 * stops kube_api_framer_feed(), which returns it. */
typedef int kube_api_framer_fn(void *ctx, const char *obj, size_t len);

void kube_api_framer_init(struct kube_api_framer *f, size_t max);
void kube_api_framer_done(struct kube_api_framer *f);  /* frees the carry-over; NULL-safe */
void kube_api_framer_reset(struct kube_api_framer *f); /* forget a partial object */

/*
 * Scan `len` bytes; call fn for every object they complete. Whitespace between objects is
 * skipped. Returns 0, fn's non-zero return, -EPROTO for bytes outside an object that are not
 * whitespace or an object closed by ']' (the stream is not a sequence of objects), -EMSGSIZE for an object over max, or
 * -ENOMEM. After an error the framer must be reset before it is fed again. Only the incomplete
 * tail is copied, so memory stays under max whatever the size of `data`.
 */
int kube_api_framer_feed(struct kube_api_framer *f, const char *data, size_t len,
			 kube_api_framer_fn *fn, void *ctx);
