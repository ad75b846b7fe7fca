/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cache_arena.h - 2 MiB arenas of 64 KiB slots for the answer cache's record chunks, each made
 * a transparent huge page once all its slots are in use.
 *
 * Why: a million cached answers spread over 84 MB of 4 KiB pages make every lookup a TLB miss
 * whose page walk itself misses the CPU caches (the page tables alone are 168 KB), and a host
 * without PCID flushes the TLB at every syscall. In 2 MiB pages the same records need 42 TLB
 * entries and a page table that stays cached, and hits at a million names get faster
 * (measured: tests/bench/README.md, "Huge-page arenas"). A malloc'd 64 KiB chunk also took
 * 68 KiB (its own mmap and header); a slot takes 64 KiB exactly.
 *
 * Arenas are mapped when a slot is wanted and none is free, and unmapped as soon as their last
 * slot is given back. The caller counts CACHE_ARENA_SIZE per arena held (cache_arena_take/give
 * say when that changes): an upper bound of what is resident, since a slot given back stays
 * resident until its whole arena goes. Only for large budgets (the cache decides), where one
 * arena is a small step.
 * Not thread-safe; no logging.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CACHE_ARENA_SIZE (2u << 20)
#define CACHE_ARENA_SLOT 65536u
#define CACHE_ARENA_SLOTS (CACHE_ARENA_SIZE / CACHE_ARENA_SLOT) /* 32: one bit each */

struct cache_arena {
	uint8_t *base;	/* CACHE_ARENA_SIZE-aligned */
	uint32_t used;	/* bit i: slot i in use */
	bool collapsed; /* made a huge page (when it was first full) */
};

struct cache_arenas {
	struct cache_arena *v; /* in no order */
	uint32_t n, cap;
	uint32_t free_slots; /* over all arenas */
	uint32_t max;	     /* arenas at most: the budget's worth */
};

/* Empty set allowing at most `max` arenas. */
void cache_arenas_init(struct cache_arenas *a, uint32_t max);
/* Unmap every arena and free the set's table; it is empty afterwards. */
void cache_arenas_release(struct cache_arenas *a);

/* Is there a free slot, or would cache_arena_take() have to map an arena? */
static inline bool
cache_arena_has_free(const struct cache_arenas *a)
{
	return a->free_slots != 0;
}

/*
 * A free slot into *slot (CACHE_ARENA_SLOT bytes, contents undefined), mapping a new arena when
 * none is free. Returns the bytes newly held (0 or CACHE_ARENA_SIZE), -ENOSPC at `max` arenas,
 * -ENOMEM when the system refuses.
 */
long cache_arena_take(struct cache_arenas *a, uint8_t **slot);

/* Give back a slot from cache_arena_take(); returns the bytes no longer held (its arena's, when
 * that was its last slot in use, else 0). */
size_t cache_arena_give(struct cache_arenas *a, uint8_t *slot);
