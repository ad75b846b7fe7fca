/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hash.c - keys for the keyed hash of kubemasq/hash.h. A table's key must not be guessable by
 * the peers who choose its keys, so it comes from getrandom(); the fallback (for a kernel
 * without the syscall or an entropy pool not yet ready at early boot) mixes the clock with
 * stack and code addresses, which ASLR varies per process.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/random.h>
#include <time.h>

#include "kubemasq/hash.h"

void
hash_random_key(uint64_t key[2])
{
	struct timespec ts = {0};
	uint64_t mix[2];
	ssize_t n;

	do
		n = getrandom(key, 2 * sizeof(key[0]), GRND_NONBLOCK);
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)(2 * sizeof(key[0])))
		return;
	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	mix[0] = (uint64_t)(uintptr_t)&ts ^ ((uint64_t)ts.tv_nsec << 32) ^ 0x9e3779b97f4a7c15ULL;
	mix[1] = (uint64_t)(uintptr_t)&hash_random_key ^ (uint64_t)ts.tv_sec;
	mix[1] ^= 0xc2b2ae3d27d4eb4fULL;
	key[0] = hash_siphash13(mix, &ts, sizeof(ts));
	key[1] = hash_siphash13(mix, key, sizeof(key[0]));
}
