/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * clock.c - the monotonic clock (clock.h).
 */
#include <time.h>

#include "lib/clock.h"

msec_t
clock_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (msec_t)ts.tv_sec * 1000 + (msec_t)ts.tv_nsec / 1000000;
}

uint64_t
clock_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}
