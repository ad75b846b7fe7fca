/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cache_arena.c - 2 MiB huge-page arenas of 64 KiB slots for the cache's chunks (see
 * cache_arena.h for why). Slots are found by scanning the arenas' bitmaps: a chunk is taken or
 * given back once per several hundred records, and a 2 GiB budget has at most 1024 arenas.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "lib/cache_arena.h"

#define CACHE_ARENA_ALL UINT32_MAX /* every slot in use */
#ifdef MADV_COLLAPSE
#define CACHE_ARENA_MADV_COLLAPSE MADV_COLLAPSE
#else
#define CACHE_ARENA_MADV_COLLAPSE 25 /* Linux UAPI; glibc 2.36's headers lack it */
#endif
_Static_assert(CACHE_ARENA_SLOTS == 32, "one bit per slot in a uint32_t");

void
cache_arenas_init(struct cache_arenas *a, uint32_t max)
{
	*a = (struct cache_arenas){.max = max};
}

void
cache_arenas_release(struct cache_arenas *a)
{
	for (uint32_t i = 0; i < a->n; i++)
		munmap(a->v[i].base, CACHE_ARENA_SIZE);
	free(a->v);
	cache_arenas_init(a, a->max);
}

/* CACHE_ARENA_SIZE bytes aligned to their size (what a huge page needs), or NULL. */
static uint8_t *
cache_arena_map(void)
{
	size_t span = 2 * (size_t)CACHE_ARENA_SIZE;
	uint8_t *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	uintptr_t at = ((uintptr_t)p + CACHE_ARENA_SIZE - 1) & ~(uintptr_t)(CACHE_ARENA_SIZE - 1);
	uint8_t *base = (uint8_t *)at;
	if (base > p)
		munmap(p, (size_t)(base - p));
	if (base + CACHE_ARENA_SIZE < p + span)
		munmap(base + CACHE_ARENA_SIZE, (size_t)(p + span - (base + CACHE_ARENA_SIZE)));
	return base;
}

/*
 * An arena whose slots are all in use becomes one huge page, once (Linux 6.1's MADV_COLLAPSE,
 * once per ~25,000 single-A answers; its cost: tests/bench/README.md, "Collapsing an arena").
 * Not earlier: a huge page faulted in at the first touch would make the last, partly used arena
 * resident in full, 10 bytes per entry at 200,000 entries. Refused (an older kernel, THP off,
 * no free huge page): 4 KiB pages, which work the same, only slower at scale.
 */
static void
cache_arena_collapse(struct cache_arena *ar)
{
	ar->collapsed = true;
	(void)madvise(ar->base, CACHE_ARENA_SIZE, CACHE_ARENA_MADV_COLLAPSE);
}

static long
cache_arena_add(struct cache_arenas *a)
{
	if (a->n == a->max)
		return -ENOSPC;
	if (a->n == a->cap) {
		uint32_t cap = a->cap ? a->cap * 2 : 8;
		struct cache_arena *v = realloc(a->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		a->v = v;
		a->cap = cap;
	}
	uint8_t *base = cache_arena_map();
	if (!base)
		return -ENOMEM;
	a->v[a->n++] = (struct cache_arena){.base = base};
	a->free_slots += CACHE_ARENA_SLOTS;
	return CACHE_ARENA_SIZE;
}

long
cache_arena_take(struct cache_arenas *a, uint8_t **slot)
{
	long grew = 0;

	if (!a->free_slots && (grew = cache_arena_add(a)) < 0)
		return grew;
	for (uint32_t i = 0; i < a->n; i++) {
		struct cache_arena *ar = &a->v[i];
		if (ar->used == CACHE_ARENA_ALL)
			continue;
		unsigned s = (unsigned)__builtin_ctz(~ar->used);
		ar->used |= 1u << s;
		a->free_slots--;
		*slot = ar->base + (size_t)s * CACHE_ARENA_SLOT;
		if (ar->used == CACHE_ARENA_ALL && !ar->collapsed)
			cache_arena_collapse(ar);
		return grew;
	}
	return -ENOMEM; /* free_slots said otherwise: cannot happen */
}

size_t
cache_arena_give(struct cache_arenas *a, uint8_t *slot)
{
	uint8_t *base = (uint8_t *)((uintptr_t)slot & ~(uintptr_t)(CACHE_ARENA_SIZE - 1));

	for (uint32_t i = 0; i < a->n; i++) {
		struct cache_arena *ar = &a->v[i];
		if (ar->base != base)
			continue;
		ar->used &= ~(1u << ((size_t)(slot - base) / CACHE_ARENA_SLOT));
		a->free_slots++;
		if (ar->used != 0)
			return 0;
		munmap(base, CACHE_ARENA_SIZE);
		a->free_slots -= CACHE_ARENA_SLOTS;
		*ar = a->v[--a->n];
		return CACHE_ARENA_SIZE;
	}
	assert(!"a slot from no arena");
	return 0;
}
