/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * config_cli.c - the command line's side of the option table (config_impl.h): getopt_long's
 * long and short option tables generated from it, the option a getopt value stands for,
 * getopt's complaints turned into one error line, and --help and --version. config_parse()
 * (config.c) runs the getopt loop with them.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "lib/config.h"
#include "lib/config_impl.h"
#include "lib/config_opts.h"

#ifndef KUBEMASQ_VERSION
#define KUBEMASQ_VERSION "unknown"
#endif

const struct config_opts_entry *
config_cli_lookup_val(int val)
{
	for (size_t i = 0; i < config_opts_count; i++) {
		const struct config_opts_entry *e = &config_opts_table[i];

		if (val == (e->short_name ? e->short_name : CONFIG_OPTS_LONG_BASE + (int)i))
			return e;
	}
	return NULL;
}

/* getopt_long's tables from ours. */
void
config_cli_getopt_tables(struct option *longopts, char *shortopts)
{
	static const int has_arg[] = {
		[CONFIG_OPTS_NONE] = no_argument,
		[CONFIG_OPTS_REQUIRED] = required_argument,
		[CONFIG_OPTS_OPTIONAL] = optional_argument,
	};
	char *s = shortopts;

	/* '-': non-options come back in order (as 1) so they can be refused; ':': report a
	 * missing value as ':' rather than '?'. */
	*s++ = '-';
	*s++ = ':';
	for (size_t i = 0; i < config_opts_count; i++) {
		const struct config_opts_entry *e = &config_opts_table[i];
		int val = e->short_name ? e->short_name : CONFIG_OPTS_LONG_BASE + (int)i;

		longopts[i] = (struct option){e->name, has_arg[e->arg], NULL, val};
		if (!e->short_name)
			continue;
		*s++ = (char)e->short_name;
		if (e->arg != CONFIG_OPTS_NONE)
			*s++ = ':';
		if (e->arg == CONFIG_OPTS_OPTIONAL)
			*s++ = ':';
	}
	longopts[config_opts_count] = (struct option){0};
	*s = '\0';
}

/* Turns getopt's '?' and ':' into one error line. */
int
config_cli_getopt_error(struct config_ctx *ctx, int c, char **argv)
{
	const struct config_opts_entry *e = optopt ? config_cli_lookup_val(optopt) : NULL;
	const char *arg = argv[optind - 1];

	if (c == ':' && e)
		return config_error(ctx, -EINVAL, "option --%s needs a value", e->name);
	if (e && e->arg == CONFIG_OPTS_NONE && strncmp(arg, "--", 2) == 0 && strchr(arg, '='))
		return config_error(ctx, -EINVAL, "option --%s takes no value (\"%s\")", e->name,
				    strchr(arg, '=') + 1);
	if (optopt && optopt < CONFIG_OPTS_LONG_BASE && !e)
		return config_error(ctx, -EINVAL, "unknown option \"-%c\"", optopt);
	return config_error(ctx, -EINVAL, "unknown or ambiguous option \"%s\"", arg);
}

/* "-p, --port=PORT" and the like, the left column of --help. */
static void
config_cli_help_left(const struct config_opts_entry *e, char *buf, size_t len)
{
	int n;

	if (e->short_name)
		n = snprintf(buf, len, "  -%c, --%s", e->short_name, e->name);
	else
		n = snprintf(buf, len, "      --%s", e->name);
	if (n < 0 || (size_t)n >= len || !e->metavar)
		return;
	snprintf(buf + n, len - (size_t)n, e->arg == CONFIG_OPTS_OPTIONAL ? "[=%s]" : "=%s",
		 e->metavar);
}

void
config_print_help(FILE *out)
{
	char left[96];

	fprintf(out, "Usage: kubemasq [OPTION]...\n"
		     "A caching DNS forwarder for Kubernetes that takes dnsmasq's options.\n"
		     "Conf files hold the same options by long name: name[=value].\n\n");
	for (size_t i = 0; i < config_opts_count; i++) {
		const struct config_opts_entry *e = &config_opts_table[i];

		config_cli_help_left(e, left, sizeof(left));
		fprintf(out, "%-42s %s", left, e->help);
		if (e->def)
			fprintf(out, " (default: %s)", e->def);
		fputc('\n', out);
	}
}

void
config_print_version(FILE *out)
{
	fprintf(out, "kubemasq version %s\n", KUBEMASQ_VERSION);
	fprintf(out, "Compile time options: IPv6 GNU-getopt "
#ifdef KUBEMASQ_WITH_KUBE
		     "kube"
#else
		     "no-kube"
#endif
		     "\n");
}
