/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_api_framer.c - libFuzzer target: the watch-stream framer (api_framer.h) alone. The first
 * byte of the input picks the piece size the stream arrives in (as the network cuts it); the
 * rest is the stream. It is framed twice, whole and in pieces, with a small object cap so the
 * over-the-cap paths run too.
 * Oracles: the two runs give the same objects and the same result ("whatever the chunk
 * boundaries"); every object starts with '{', ends with '}' and is within the cap; nothing the
 * framer keeps outlives kube_api_framer_done().
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kube/source/api_framer.h"
#include "fuzz_util.h"

#define FUZZ_FRAMER_MAX 1024
#define FUZZ_FRAMER_OBJS 64

struct fuzz_sink {
	size_t n;
	size_t len[FUZZ_FRAMER_OBJS];
	uint64_t sum[FUZZ_FRAMER_OBJS]; /* a cheap digest of each object's bytes */
};

static int
fuzz_framer_collect(void *ctx, const char *obj, size_t len)
{
	struct fuzz_sink *s = ctx;
	uint64_t h = 1469598103934665603ull;

	if (len < 2 || obj[0] != '{' || obj[len - 1] != '}')
		fuzz_fail("an object of %zu bytes that is not {...}", len);
	if (len > FUZZ_FRAMER_MAX)
		fuzz_fail("an object of %zu bytes over the cap of %u", len, FUZZ_FRAMER_MAX);
	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)obj[i]) * 1099511628211ull;
	if (s->n < FUZZ_FRAMER_OBJS) {
		s->len[s->n] = len;
		s->sum[s->n] = h;
	}
	s->n++;
	return 0;
}

/* Frame data[0..size) in pieces of `piece` bytes (0: whole); returns the feed's result. */
static int
fuzz_framer_run(const uint8_t *data, size_t size, size_t piece, struct fuzz_sink *s)
{
	struct kube_api_framer f;
	size_t off = 0;
	int rc = 0;

	kube_api_framer_init(&f, FUZZ_FRAMER_MAX);
	if (!piece)
		piece = size;
	while (rc == 0 && off < size) {
		size_t n = size - off < piece ? size - off : piece;

		rc = kube_api_framer_feed(&f, (const char *)data + off, n, fuzz_framer_collect, s);
		off += n;
	}
	if (f.len > FUZZ_FRAMER_MAX)
		fuzz_fail("%zu bytes carried over, over the cap of %u", f.len, FUZZ_FRAMER_MAX);
	kube_api_framer_done(&f);
	return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t pieces[8] = {1, 2, 3, 7, 16, 61, 512, 4096};
	struct fuzz_sink whole = {0}, cut = {0};
	size_t piece;
	int a, b;

	if (size < 1)
		return -1;
	piece = pieces[data[0] & 7];
	a = fuzz_framer_run(data + 1, size - 1, 0, &whole);
	b = fuzz_framer_run(data + 1, size - 1, piece, &cut);
	if (a != b)
		fuzz_fail("whole: %d, in pieces of %zu: %d", a, piece, b);
	if (whole.n != cut.n)
		fuzz_fail("whole: %zu objects, in pieces of %zu: %zu", whole.n, piece, cut.n);
	for (size_t i = 0; i < whole.n && i < FUZZ_FRAMER_OBJS; i++)
		if (whole.len[i] != cut.len[i] || whole.sum[i] != cut.sum[i])
			fuzz_fail("object %zu differs in pieces of %zu", i, piece);
	return 0;
}
