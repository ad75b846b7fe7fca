/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * defs.h - small macros shared by every module: array sizes, container_of,
 * branch hints, min/max. Nothing here allocates or does I/O.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#define UNUSED __attribute__((unused))
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))

/* Monotonic time in milliseconds. Pure modules take it as a parameter; only the event-loop
 * side (main, server, query, upstreams) reads the clock, through clock_now_ms() (clock.h). */
typedef uint64_t msec_t;
