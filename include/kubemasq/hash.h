/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hash.h - the one keyed hash of the code base: SipHash (Aumasson and Bernstein) under a
 * per-process or per-table random key, for every table whose keys a peer can choose (the
 * cache index, the in-flight table, the router's zones, the forwarder's pending queries).
 * SipHash-1-3 is the variant used everywhere (as Python, Rust and Ruby do for their tables):
 * short DNS keys, one hash per query on the cache hit path. The core is inline so the hit
 * path pays no call and the round counts fold into constants.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t
hash_rotl(uint64_t x, unsigned b)
{
	return (x << b) | (x >> (64 - b));
}

/* Little-endian 64-bit load, as the SipHash definition reads its input. */
static inline uint64_t
hash_le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

static inline void
hash_sipround(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = hash_rotl(v[1], 13);
	v[1] ^= v[0];
	v[0] = hash_rotl(v[0], 32);
	v[2] += v[3];
	v[3] = hash_rotl(v[3], 16);
	v[3] ^= v[2];
	v[0] += v[3];
	v[3] = hash_rotl(v[3], 21);
	v[3] ^= v[0];
	v[2] += v[1];
	v[1] = hash_rotl(v[1], 17);
	v[1] ^= v[2];
	v[2] = hash_rotl(v[2], 32);
}

/* SipHash-c-d of data[0..len) under the 128-bit key (key[0] = bytes 0..7 little-endian).
 * Callers pass constant c and d so the loops unroll. */
static inline uint64_t
hash_siphash_cd(const uint64_t key[2], const void *data, size_t len, unsigned c, unsigned d)
{
	const uint8_t *p = data;
	uint64_t v[4] = {
		key[0] ^ 0x736f6d6570736575ULL,
		key[1] ^ 0x646f72616e646f6dULL,
		key[0] ^ 0x6c7967656e657261ULL,
		key[1] ^ 0x7465646279746573ULL,
	};
	uint64_t m, last = (uint64_t)len << 56;
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		m = hash_le64(p + i);
		v[3] ^= m;
		for (unsigned r = 0; r < c; r++)
			hash_sipround(v);
		v[0] ^= m;
	}
	for (size_t j = 0; i + j < len; j++)
		last |= (uint64_t)p[i + j] << (8 * j);
	v[3] ^= last;
	for (unsigned r = 0; r < c; r++)
		hash_sipround(v);
	v[0] ^= last;
	v[2] ^= 0xff;
	for (unsigned r = 0; r < d; r++)
		hash_sipround(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

static inline uint64_t
hash_siphash13(const uint64_t key[2], const void *data, size_t len)
{
	return hash_siphash_cd(key, data, len, 1, 3);
}

/* SipHash-2-4, the published reference variant: the unit test checks the shared core against
 * its test vectors. */
static inline uint64_t
hash_siphash24(const uint64_t key[2], const void *data, size_t len)
{
	return hash_siphash_cd(key, data, len, 2, 4);
}

/* Fill key with random bits from getrandom(); when the kernel has none to give (no syscall,
 * pool not ready), a mix of the clock and addresses (ASLR) - weaker, but still not chosen by
 * a peer. Never fails. */
void hash_random_key(uint64_t key[2]);
