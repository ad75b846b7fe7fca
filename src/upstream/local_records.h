/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * local_records.h - dnsmasq's local records: --host-record, --cname, --txt-record, --srv-host,
 * --mx-host, --ptr-record and hosts files (/etc/hosts, --addn-hosts, --expand-hosts with
 * --domain), answered as dnsmasq 2.90 answers them.
 *
 * Options and hosts lines are parsed once, through ldns (presentation text in, wire records
 * out), into a table of wire-format records keyed by lower-cased owner name; answering is a
 * hash probe and a copy, with no ldns call. A name with local data answers the types it has
 * (ANY: all of them; a CNAME: the CNAME, then the target's records, followed through local
 * CNAMEs), with AA set; every other type on it, and every other name, is not answered here and
 * goes on to the forwarders, as dnsmasq does.
 *
 * The upstream (local_records_ops) is bound by setup.c to every owner name in the table, ahead
 * of the other upstreams, and declines (-ENOENT) what the table does not answer, so the router
 * falls through to the next upstream.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kubemasq/dnsmsg.h"
#include "kubemasq/upstream.h"

struct config;
struct router;

/* Caps: records in one table (options and hosts files together), records on one name. */
#define LOCAL_RECORDS_MAX 4000000
#define LOCAL_RECORDS_MAX_PER_NAME 256

/* One table; owned by its creator (the upstream below owns the one it answers from). */
struct local_records;

/* A table for records with TTL `local_ttl` unless one is given; `domain` (NULL: none) expands
 * simple hosts-file names when `expand_hosts`. NULL on allocation failure. */
struct local_records *local_records_new(uint32_t local_ttl, const char *domain, bool expand_hosts);
void local_records_free(struct local_records *lr);

/*
 * Add what one option gives: `option` is its long name ("host-record", "cname", "txt-record",
 * "srv-host", "mx-host", "ptr-record"), `value` its text as dnsmasq takes it. Returns 0, or
 * -EINVAL with the reason in err, or -E2BIG (a cap), -ENOMEM.
 */
int local_records_add_option(struct local_records *lr, const char *option, const char *value,
			     char *err, size_t errlen);

/* Check one option by adding it to a table of its own (struct config_hooks.check_record: the
 * parser asks it, so a bad record stops the daemon naming its file and line). Returns what
 * local_records_add_option() returns. */
int local_records_check_option(const char *option, const char *value, uint32_t local_ttl, char *err,
			       size_t errlen);

/*
 * Read a hosts file, or every file of a directory in alphabetical order. A bad line is logged
 * as "FILE:LINE: ..." and skipped, as dnsmasq does. Returns the number of names read, or a
 * negative errno when the file cannot be read (the caller warns: dnsmasq carries on).
 */
int local_records_add_hosts(struct local_records *lr, const char *path);

/* After the last add: mark the ancestors of every name with local data (they answer NODATA,
 * as dnsmasq does). */
void local_records_finish(struct local_records *lr);

/* Answer q (qname lower-cased) into out[0..cap): the reply's length (header with `rd`, `cd`,
 * AA, NOERROR), or -ENOENT when the table has nothing for it, -ENOSPC when it does not fit. */
int local_records_answer(const struct local_records *lr, const struct dnsmsg_question *q, bool rd,
			 bool cd, uint8_t *out, size_t cap);

/* Call fn with every owner name in the table (wire, lower-cased). Stops at, and returns, the
 * first negative return of fn; 0 otherwise. */
int local_records_foreach_name(const struct local_records *lr,
			       int (*fn)(void *ctx, const uint8_t *name, size_t len), void *ctx);

/* Number of records in the table. */
size_t local_records_count(const struct local_records *lr);

/* Build the table a configuration asks for: the record options in the order given, then
 * /etc/hosts (unless --no-hosts), then each --addn-hosts. NULL with err set when an option is
 * bad (the configuration check has normally caught it) or memory runs out. */
struct local_records *local_records_from_config(const struct config *cfg, char *err, size_t errlen);

/* Whether the configuration asks for any local record or hosts file at all. */
bool local_records_wanted(const struct config *cfg);

struct local_records_args {
	const struct config *cfg; /* borrowed; outlives the upstream (re-read on reload) */
	struct router *router;	  /* where the owner names are bound */
};

/* create() builds the table and binds its names; -EINVAL with the reason logged. */
extern const struct upstream_ops local_records_ops;

/* Bind every owner name of the upstream's table to the router given to create(), once each:
 * setup.c calls it before binding the other upstreams, so these names come first. */
int local_records_bind(struct upstream *u);

/* SIGHUP: re-read the hosts files (and the options) of every local_records upstream that `r`
 * owns, bind any new names, and report the change. Keeps the old table when the new one
 * cannot be built. */
void local_records_reload(struct router *r);
