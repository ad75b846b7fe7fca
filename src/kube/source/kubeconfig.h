/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kubeconfig.h - the parts of a kubeconfig file (kubectl's YAML) that name the API server and
 * our credentials: current-context -> context -> cluster and user. Only reads files; the TLS
 * and token handling that uses the result lives in auth.c. Relative paths in the file are made
 * relative to the file's directory, as kubectl does. Documents with aliases, deep nesting or a
 * size over KUBE_AUTH_MAX_FILE are refused rather than expanded.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* What the current context says. Every pointer is owned by the struct (kubeconfig_done) and
 * NULL when the file does not set it. *_data fields are decoded from base64 (PEM text). */
struct kubeconfig {
	char *context, *cluster, *user; /* names, for messages */
	char *server;
	char *ca_file;
	char *ca_data;
	size_t ca_data_len;
	bool insecure; /* insecure-skip-tls-verify: true */
	char *tls_server_name;
	char *token;
	char *token_file;
	char *cert_file;
	char *cert_data;
	size_t cert_data_len;
	char *key_file;
	char *key_data;
	size_t key_data_len;
};

/*
 * Read `path` into kc (which the caller zeroed). Returns 0; -ENOENT/-EACCES/... when the file
 * cannot be read; -EFBIG over KUBE_AUTH_MAX_FILE; -EINVAL for bad YAML, aliases, no
 * current-context, a context/cluster/user that is not there, bad base64, insecure together
 * with a CA; -ENOTSUP for credentials kubemasq does not support (exec and auth-provider
 * plugins, basic auth). err gets one line naming the file. On error kc holds nothing (no need to call kubeconfig_done).
 */
int kubeconfig_load(struct kubeconfig *kc, const char *path, char *err, size_t errlen);
void kubeconfig_done(struct kubeconfig *kc); /* NULL-safe, leaves kc zeroed */

/*
 * Read a whole file of at most `max` bytes into a new NUL-terminated buffer (*out, the caller
 * frees; *len without the NUL). Returns 0, -EFBIG when larger, -EISDIR for a directory,
 * -EINVAL for anything else that is not a regular file (a FIFO would block), or the negative
 * errno of open/read. Used for kubeconfigs, tokens and PEM files alike.
 */
int kubeconfig_read_file(const char *path, size_t max, char **out, size_t *len);

/* Words for kubeconfig_read_file's errors ("larger than 1 MiB", "not a regular file", ...). */
const char *kubeconfig_file_strerror(int r);
