/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * local_records_impl.h - what the local records' table (local_records.c) and its text reader
 * (local_records_text.c) share and nothing outside them sees: the table's head and the calls
 * that add to it. The records themselves (struct local_name) stay inside local_records.c.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ldns/ldns.h>

struct local_name;

struct local_records {
	struct local_name *names;
	size_t n_rrs;
	uint32_t ttl;
	char *domain;
	bool expand;
	ldns_buffer *buf; /* scratch for rdata wire */
};

/* A name as dnsmasq takes it: letters, digits, '-', '_', '.', at most 253, no empty label; a
 * trailing dot is allowed. Also what keeps the presentation text built from it unambiguous. */
bool local_records_name_ok(const char *s);

/* `s` as an absolute presentation name ("." added), lower-cased as dnsmasq keeps names. */
void local_records_abs(const char *s, char *out, size_t cap);

/* One record in presentation form ("owner TTL IN TYPE RDATA") read by ldns into the table;
 * auto_ptr marks a PTR made from an address (the first one trumps). Returns 0, -EINVAL with
 * the reason in err, -E2BIG (a cap), -ENOMEM. */
int local_records_add_text(struct local_records *lr, const char *text, bool auto_ptr, char *err,
			   size_t errlen);

/* An A or AAAA record for `name` and, the first one trumping, the PTR of its address to
 * `ptr_name`. Returns as local_records_add_text(). */
int local_records_add_addr(struct local_records *lr, const char *name, const char *ptr_name,
			   int family, const void *ip, uint32_t ttl, char *err, size_t errlen);

/* The CNAME of `alias` (wire) to `target` (wire, case as given). Returns 0, -EEXIST when the
 * alias has one already, -ENOMEM. */
int local_records_set_cname(struct local_records *lr, const uint8_t *alias, size_t alias_len,
			    const uint8_t *target, size_t target_len, uint32_t ttl);
