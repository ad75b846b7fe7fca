/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * config_file.c - the files behind the options (config_impl.h): conf-file lines
 * (`name[=value]` with dnsmasq's quoting and comments) handed to the option table's parsers,
 * conf-dir's sorted and filtered directory listing, the nesting cap shared by both, and the
 * nameserver lines of a resolv-file. Like config.c it never logs and never exits: every error
 * becomes one line (FILE:LINE: inside a conf file) and a negative errno.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/config.h"
#include "lib/config_impl.h"
#include "lib/config_opts.h"

#define CONFIG_FILE_MAX_DEPTH 8	       /* nested conf-file / conf-dir levels */
#define CONFIG_FILE_LINE_MAX 4096      /* longest conf-file line */
#define CONFIG_FILE_DIR_MAX_FILES 4096 /* files read from one conf-dir */
#define CONFIG_FILE_DIR_MAX_EXTS 16    /* suffixes in one conf-dir value */
#define CONFIG_FILE_RESOLV_MAX 64      /* nameservers taken from one resolv-file */

/*
 * Removes dnsmasq's quoting from a conf-file line in place: "..." anywhere (with \" \\ \t \n
 * escapes inside), and a '#' at the start or after whitespace outside quotes starts a comment.
 * Returns 0 or -EINVAL for an unterminated quote.
 */
static int
config_file_unquote(char *s)
{
	char *w = s;
	bool white = true;

	for (const char *r = s; *r; r++) {
		if (*r == '"') {
			for (r++; *r && *r != '"'; r++) {
				if (r[0] == '\\' && r[1] && strchr("\"\\tn", r[1])) {
					r++;
					*w++ = *r == 't' ? '\t' : *r == 'n' ? '\n' : *r;
				} else {
					*w++ = *r;
				}
			}
			if (!*r)
				return -EINVAL;
			white = false;
			continue;
		}
		if (isspace((unsigned char)*r)) {
			white = true;
		} else if (white && *r == '#') {
			break;
		} else {
			white = false;
		}
		*w++ = *r;
	}
	*w = '\0';
	return 0;
}

static char *
config_file_trim(char *s)
{
	size_t len;

	while (isspace((unsigned char)*s))
		s++;
	len = strlen(s);
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		s[--len] = '\0';
	return s;
}

static const struct config_opts_entry *
config_file_lookup_name(const char *name)
{
	for (size_t i = 0; i < config_opts_count; i++)
		if (strcmp(config_opts_table[i].name, name) == 0)
			return &config_opts_table[i];
	return NULL;
}

/* One conf-file line: `name[=value]`, blank, or a comment. */
static int
config_file_line(struct config_ctx *ctx, char *line)
{
	const struct config_opts_entry *e;
	char *name, *value = NULL, *eq;

	if (config_file_unquote(line) < 0)
		return config_error(ctx, -EINVAL, "missing closing \"");
	name = config_file_trim(line);
	if (!*name)
		return 0;
	if ((eq = strchr(name, '='))) {
		*eq = '\0';
		value = config_file_trim(eq + 1);
		name = config_file_trim(name);
	}
	if (!(e = config_file_lookup_name(name)))
		return config_error(ctx, -EINVAL, "unknown option \"%s\"", name);
	if (e->arg == CONFIG_OPTS_NONE && value)
		return config_error(ctx, -EINVAL, "option --%s takes no value (\"%s\")", e->name,
				    value);
	if (e->arg == CONFIG_OPTS_REQUIRED && !value)
		return config_error(ctx, -EINVAL, "option --%s needs a value", e->name);
	return e->parse(ctx, e, value);
}

/*
 * One line of `f` into buf (NUL-terminated, its newline kept), reading no more than fits: a
 * file with no newline (a device such as /dev/zero, a runaway generator) costs neither memory
 * nor an endless read. Returns the line's length, -E2BIG for a line of cap - 1 bytes or more
 * (read only up to there: the caller stops reading the file), -ENOENT at the end of the
 * file; *nul says whether the line held a NUL byte.
 */
static ssize_t
config_file_getline(FILE *f, char *buf, size_t cap, bool *nul)
{
	size_t n = 0;
	int c;

	*nul = false;
	while (n < cap - 1 && (c = getc(f)) != EOF) {
		if (c == '\0')
			*nul = true;
		buf[n++] = (char)c;
		if (c == '\n')
			break;
	}
	buf[n] = '\0';
	if (n == cap - 1 && buf[n - 1] != '\n')
		return -E2BIG;
	return n ? (ssize_t)n : -ENOENT;
}

static int
config_file_read_lines(struct config_ctx *ctx, FILE *f)
{
	char line[CONFIG_FILE_LINE_MAX + 2]; /* the longest line, and one byte to tell */
	ssize_t len;
	bool nul;
	int rc = 0;

	while (rc == 0 && (len = config_file_getline(f, line, sizeof(line), &nul)) != -ENOENT) {
		ctx->line++;
		if (len == -E2BIG) {
			rc = config_error(ctx, -EINVAL, "line longer than %d",
					  CONFIG_FILE_LINE_MAX);
			break;
		}
		if (nul) {
			rc = config_error(ctx, -EINVAL, "NUL byte in line");
			break;
		}
		rc = config_file_line(ctx, line);
	}
	if (rc == 0 && ferror(f))
		rc = config_error(ctx, -EIO, "read error");
	return rc;
}

int
config_file_read(struct config_ctx *ctx, const char *path)
{
	const char *outer_file = ctx->file;
	unsigned outer_line = ctx->line;
	FILE *f;
	int rc;

	if (ctx->depth >= CONFIG_FILE_MAX_DEPTH)
		return config_error(ctx, -EINVAL, "conf-file \"%s\": nested deeper than %d", path,
				    CONFIG_FILE_MAX_DEPTH);
	if (!(f = fopen(path, "re"))) {
		rc = -errno;
		return config_error(ctx, rc, "cannot read conf-file \"%s\": %s", path,
				    strerror(-rc));
	}
	ctx->file = path;
	ctx->line = 0;
	ctx->depth++;
	rc = config_file_read_lines(ctx, f);
	ctx->depth--;
	ctx->file = outer_file;
	ctx->line = outer_line;
	fclose(f);
	return rc;
}

/* conf-dir's suffix rules: "*.ext" entries keep only those suffixes, ".ext" entries skip. */
struct config_file_dir_filter {
	const char *keep[CONFIG_FILE_DIR_MAX_EXTS];
	size_t n_keep;
	const char *skip[CONFIG_FILE_DIR_MAX_EXTS];
	size_t n_skip;
};

static bool
config_file_ends_with(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);

	return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

static bool
config_file_dir_wanted(const struct config_file_dir_filter *flt, const char *name)
{
	size_t len = strlen(name), i;

	if (name[0] == '.' || name[len - 1] == '~' || (name[0] == '#' && name[len - 1] == '#'))
		return false;
	for (i = 0; i < flt->n_skip; i++)
		if (config_file_ends_with(name, flt->skip[i]))
			return false;
	for (i = 0; i < flt->n_keep; i++)
		if (config_file_ends_with(name, flt->keep[i]))
			return true;
	return flt->n_keep == 0;
}

static int
config_file_strcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names of the wanted files of `dir`, sorted. */
static int
config_file_dir_list(struct config_ctx *ctx, const char *dir,
		     const struct config_file_dir_filter *flt, char ***names, size_t *n)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int rc = 0;

	if (!d) {
		rc = -errno;
		return config_error(ctx, rc, "cannot read conf-dir \"%s\": %s", dir, strerror(-rc));
	}
	while (rc == 0 && (de = readdir(d))) {
		char **slot;

		if (!config_file_dir_wanted(flt, de->d_name))
			continue;
		if (*n >= CONFIG_FILE_DIR_MAX_FILES) {
			rc = config_error(ctx, -EINVAL, "conf-dir \"%s\": more than %d files", dir,
					  CONFIG_FILE_DIR_MAX_FILES);
		} else if (!(slot = config_append((void **)names, n, sizeof(*slot))) ||
			   !(*slot = strdup(de->d_name))) {
			*n -= slot ? 1 : 0;
			rc = config_error(ctx, -ENOMEM, "out of memory");
		}
	}
	closedir(d);
	if (rc == 0 && *n > 1)
		qsort(*names, *n, sizeof(**names), config_file_strcmp);
	return rc;
}

/* Reads the regular files among `names` (directories and the like are skipped, as dnsmasq). */
static int
config_file_dir_read(struct config_ctx *ctx, const char *dir, char **names, size_t n)
{
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++) {
		struct stat st;
		char *path;

		if (asprintf(&path, "%s/%s", dir, names[i]) < 0)
			return config_error(ctx, -ENOMEM, "out of memory");
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
			rc = config_file_read(ctx, path);
		free(path);
	}
	return rc;
}

int
config_file_conf_dir(struct config_ctx *ctx, const struct config_opts_entry *e, const char *value)
{
	struct config_file_dir_filter flt = {0};
	char *copy, *dir, *ext, *save = NULL, **names = NULL;
	size_t n = 0;
	int rc = 0;

	if (!value || !*value || value[0] == ',' || value[strlen(value) - 1] == ',' ||
	    strstr(value, ",,"))
		return config_bad(ctx, e, value, "empty directory or extension");
	if (!(copy = strdup(value)))
		return config_error(ctx, -ENOMEM, "out of memory");
	dir = strtok_r(copy, ",", &save);
	while (rc == 0 && (ext = strtok_r(NULL, ",", &save))) {
		if (flt.n_keep + flt.n_skip >= CONFIG_FILE_DIR_MAX_EXTS)
			rc = config_bad(ctx, e, value, "too many extensions");
		else if (ext[0] == '*')
			flt.keep[flt.n_keep++] = ext + 1;
		else
			flt.skip[flt.n_skip++] = ext;
	}
	if (rc == 0 && ctx->depth >= CONFIG_FILE_MAX_DEPTH)
		rc = config_error(ctx, -EINVAL, "conf-dir \"%s\": nested deeper than %d", dir,
				  CONFIG_FILE_MAX_DEPTH);
	if (rc == 0)
		rc = config_file_dir_list(ctx, dir, &flt, &names, &n);
	if (rc == 0)
		rc = config_file_dir_read(ctx, dir, names, n);
	config_strv_free(names, n);
	free(copy);
	return rc;
}

/* nameserver lines into servers; unparsable lines are skipped, as resolvers do. */
static int
config_file_resolv_lines(FILE *f, struct config_server **out, size_t *n)
{
	char line[CONFIG_FILE_LINE_MAX + 2];
	ssize_t len;
	bool nul;
	int rc = 0;

	while (rc == 0 && *n < CONFIG_FILE_RESOLV_MAX &&
	       (len = config_file_getline(f, line, sizeof(line), &nul)) != -ENOENT) {
		char *save = NULL, *key = strtok_r(line, " \t\r\n", &save);
		char *addr = key ? strtok_r(NULL, " \t\r\n", &save) : NULL;
		struct config_server *slot;
		struct config_sockaddr sa;

		if (len < 0)
			break; /* a line this long: not a resolv.conf, read no further */
		if (!addr || strcmp(key, "nameserver") != 0 || config_parse_ip(addr, 53, &sa) < 0)
			continue;
		if (!(slot = config_append((void **)out, n, sizeof(*slot)))) {
			rc = -ENOMEM;
			break;
		}
		slot->kind = CONFIG_SERVER_ADDR;
		slot->addr = sa;
		slot->from_resolv = true;
	}
	if (rc == 0 && ferror(f))
		rc = -EIO;
	return rc;
}

int
config_read_resolv(struct config *cfg, const char *path, char *err, size_t errlen)
{
	struct config_ctx ctx = {.cfg = cfg, .err = err, .errlen = errlen};
	struct config_server *fresh = NULL, *merged;
	size_t n_fresh = 0, n = 0;
	FILE *f = fopen(path, "re");
	int rc;

	if (!f) {
		rc = -errno;
		return config_error(&ctx, rc, "cannot read resolv-file \"%s\": %s", path,
				    strerror(-rc));
	}
	rc = config_file_resolv_lines(f, &fresh, &n_fresh);
	fclose(f);
	if (rc < 0) {
		free(fresh);
		return config_error(&ctx, rc, "cannot read resolv-file \"%s\": %s", path,
				    strerror(-rc));
	}
	/* Keep the configured servers in order, drop the old resolv ones, append the new. */
	merged = malloc((cfg->n_servers + n_fresh + 1) * sizeof(*merged));
	if (!merged) {
		free(fresh);
		return config_error(&ctx, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < cfg->n_servers; i++) {
		if (cfg->servers[i].from_resolv)
			config_strv_free(cfg->servers[i].domains, cfg->servers[i].n_domains);
		else
			merged[n++] = cfg->servers[i];
	}
	if (n_fresh)
		memcpy(merged + n, fresh, n_fresh * sizeof(*fresh));
	free(fresh);
	free(cfg->servers);
	cfg->servers = merged;
	cfg->n_servers = n + n_fresh;
	return (int)n_fresh;
}
