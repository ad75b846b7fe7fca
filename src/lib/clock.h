/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * clock.h - the monotonic clock (CLOCK_MONOTONIC) every timer, deadline, TTL and latency is
 * measured with: in milliseconds for deadlines and cache ages, in microseconds for the latency
 * histograms. Read where an event happens and passed down: pure modules take `now` as an
 * argument rather than read the clock themselves (cache_get(..., now, ...)).
 */
#pragma once

#include <stdint.h>

#include "kubemasq/defs.h"

msec_t clock_now_ms(void);
uint64_t clock_now_us(void);
