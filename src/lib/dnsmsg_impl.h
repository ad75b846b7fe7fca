/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dnsmsg_impl.h - what the wire helpers' two files share (dnsmsg.c, dnsmsg_name.c) and nothing
 * outside them sees.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define DNSMSG_MAX_LABEL 63

/*
 * Walk the possibly compressed name at `off`: *end gets the offset just past it in place and,
 * if `wire` is set, the uncompressed name (at most DNS_MAX_NAME bytes) is copied there with its
 * length in *wire_len. Returns 0 or -EPROTO.
 */
int dnsmsg_name_scan(const uint8_t *pkt, size_t len, size_t off, size_t *end, uint8_t *wire,
		     size_t *wire_len);
