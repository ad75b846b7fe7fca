/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * config_impl.h - what config.c (the option table, its value parsers, the getopt loop),
 * config_cli.c (getopt's tables and errors, --help) and config_file.c (conf files, conf dirs,
 * resolv files) share and nothing outside them sees: the parsing context that error lines are
 * written through, and the helpers they offer each other. The public interface is config.h
 * and config_opts.h.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kubemasq/defs.h"
#include "lib/config.h"

struct config_opts_entry;
struct option;

/* Parsing state: where the current value comes from, for error lines. */
struct config_ctx {
	struct config *cfg;
	const struct config_hooks *hooks; /* may be NULL */
	FILE *out;
	char *err;
	size_t errlen;
	const char *file; /* NULL on the command line */
	unsigned line;
	unsigned depth; /* conf files being read, innermost included */
};

/* --- config.c --- */

/* Writes one error line into ctx->err, prefixed FILE:LINE: inside a conf file; returns rc. */
int config_error(struct config_ctx *ctx, int rc, const char *fmt, ...) PRINTF_LIKE(3, 4);

/* The common "bad value for --NAME" line (or the out-of-memory one); returns -EINVAL/-ENOMEM. */
int config_bad(struct config_ctx *ctx, const struct config_opts_entry *e, const char *value,
	       const char *why);

/* Appends one zeroed element of `size` bytes to the array *arr of *n (both updated); returns
 * the new element, or NULL out of memory (*arr and *n then unchanged). */
void *config_append(void **arr, size_t *n, size_t size);

/* Frees n strings and the array; NULL-safe. */
void config_strv_free(char **v, size_t n);

/* An IPv4 or IPv6 literal into *sa with `port` (host order). Returns 0 or -EINVAL. */
int config_parse_ip(const char *s, uint16_t port, struct config_sockaddr *sa);

/* --- config_cli.c --- */

/* The option getopt_long() returns as `val` (its letter, or CONFIG_OPTS_LONG_BASE + its index
 * in the table), or NULL. */
const struct config_opts_entry *config_cli_lookup_val(int val);

/* Fills getopt_long's tables from the option table: longopts has room for config_opts_count + 1
 * entries (the last one zeroed), shortopts for 3 * config_opts_count + 3 characters. */
void config_cli_getopt_tables(struct option *longopts, char *shortopts);

/* Turns getopt_long's '?' or ':' return `c`, with optopt and optind as it left them, into one
 * error line; returns -EINVAL. */
int config_cli_getopt_error(struct config_ctx *ctx, int c, char **argv);

/* --- config_file.c --- */

/* Reads the conf file `path` (borrowed) line by line through the option table, nested inside
 * the current one. Returns 0 or a negative errno after writing the error line. */
int config_file_read(struct config_ctx *ctx, const char *path);

/* The value of --conf-dir, "DIR[,.ext|*.ext...]": reads DIR's wanted regular files in name
 * order. Returns 0 or a negative errno after writing the error line. */
int config_file_conf_dir(struct config_ctx *ctx, const struct config_opts_entry *e,
			 const char *value);
