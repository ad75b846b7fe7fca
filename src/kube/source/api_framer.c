/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * api_framer.c - a watch body is a stream of JSON objects with no framing of its own: chunk
 * boundaries fall anywhere, several events share a chunk, and lines are not promised. The
 * framer tracks nesting depth and strings (with their escapes) to find where each object ends,
 * hands complete objects to the caller straight from the data when they lie in one piece, and
 * copies only an incomplete tail, refusing one that grows past the cap.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kube/source/api_framer.h"

void
kube_api_framer_init(struct kube_api_framer *f, size_t max)
{
	*f = (struct kube_api_framer){.max = max};
}

void
kube_api_framer_done(struct kube_api_framer *f)
{
	if (!f)
		return;
	free(f->buf);
	kube_api_framer_init(f, f->max);
}

void
kube_api_framer_reset(struct kube_api_framer *f)
{
	f->len = 0;
	f->depth = 0;
	f->in_str = f->esc = false;
}

/* Carry `n` bytes of an incomplete object over to the next feed. */
static int
kube_api_framer_keep(struct kube_api_framer *f, const char *p, size_t n)
{
	char *nb;
	size_t cap;

	if (n > f->max - f->len)
		return -EMSGSIZE;
	if (f->len + n > f->cap) {
		cap = f->cap ? f->cap : 4096;
		while (cap < f->len + n)
			cap *= 2;
		if (cap > f->max)
			cap = f->max;
		if (!(nb = realloc(f->buf, cap)))
			return -ENOMEM;
		f->buf = nb;
		f->cap = cap;
	}
	memcpy(f->buf + f->len, p, n);
	f->len += n;
	return 0;
}

/* Advance the scanner over p[0..n); returns how many bytes end the object (its closing brace
 * included), or n when it is still open. */
static size_t
kube_api_framer_scan(struct kube_api_framer *f, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = p[i];

		if (f->in_str) {
			if (f->esc)
				f->esc = false;
			else if (c == '\\')
				f->esc = true;
			else if (c == '"')
				f->in_str = false;
			continue;
		}
		if (c == '"')
			f->in_str = true;
		else if (c == '{' || c == '[')
			f->depth++;
		else if ((c == '}' || c == ']') && --f->depth == 0)
			return i + 1;
	}
	return n;
}

int
kube_api_framer_feed(struct kube_api_framer *f, const char *data, size_t len,
		     kube_api_framer_fn *fn, void *ctx)
{
	size_t i = 0;
	int rc;

	while (i < len) {
		size_t start = i, used, total;
		const char *obj;

		if (f->depth == 0) {
			/* between objects */
			char c = data[i];

			if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
				i++;
				continue;
			}
			if (c != '{')
				return -EPROTO;
		}
		used = kube_api_framer_scan(f, data + i, len - i);
		i += used;
		if (f->depth != 0) {
			/* open at the end of the data */
			return kube_api_framer_keep(f, data + start, len - start);
		}
		if (f->len == 0) {
			if (used > f->max)
				return -EMSGSIZE;
			obj = data + start;
			total = used;
		} else {
			if ((rc = kube_api_framer_keep(f, data + start, used)) < 0)
				return rc;
			obj = f->buf;
			total = f->len;
			f->len = 0;
		}
		/* the scanner counts brackets of both kinds: "{...]" closes it, but is no object */
		if (obj[total - 1] != '}')
			return -EPROTO;
		rc = fn(ctx, obj, total);
		if (rc)
			return rc;
	}
	return 0;
}
