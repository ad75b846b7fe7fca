/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kubeconfig.c - reads the current context of a kubeconfig file (see kubeconfig.h). The file is
 * scanned twice with libyaml: once as events, to refuse aliases (which libyaml would share
 * between nodes, so a small file could stand for an exponential tree) and nesting deeper than a
 * kubeconfig ever needs, then loaded as a document and walked. Credentials that need a program
 * (exec and auth-provider plugins) or that Kubernetes no longer accepts (basic auth) are refused
 * with a message that says what to do instead, rather than silently connecting anonymously.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <yaml.h>

#include "kubemasq/defs.h"
#include "kube/source/auth.h"
#include "kube/source/kubeconfig.h"

#define KUBECONFIG_MAX_DEPTH 32	     /* a kubeconfig nests 4 deep; exec args maybe 6 */
#define KUBECONFIG_MAX_EVENTS 200000 /* generous for 1 MiB of real kubeconfig */
#define KUBECONFIG_READ_CHUNK 4096

/* One load: the document, where relative paths start, and where the message goes. */
struct kubeconfig_parse {
	yaml_document_t doc;
	struct kubeconfig *kc;
	const char *path;
	char *dir;
	char *err;
	size_t errlen;
};

/* The message, prefixed with the file; returns r for `return kubeconfig_err(p, -EINVAL, ...)`. */
PRINTF_LIKE(3, 4)
static int
kubeconfig_err(struct kubeconfig_parse *p, int r, const char *fmt, ...)
{
	size_t n;
	va_list ap;

	if (!p->err || !p->errlen)
		return r;
	n = (size_t)snprintf(p->err, p->errlen, "kubeconfig %s: ", p->path);
	if (n >= p->errlen)
		return r;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - n, fmt, ap);
	va_end(ap);
	return r;
}

static int
kubeconfig_read_fd(int fd, size_t max, size_t hint, char **out, size_t *len)
{
	size_t cap = MIN(hint, max) + 1, got = 0;
	char *buf = malloc(cap + 1), *nb;

	if (!buf)
		return -ENOMEM;
	/* read up to one byte past the cap to tell "exactly max" from "more" */
	for (;;) {
		ssize_t n;

		if (got == cap) {
			if (cap > max)
				break;
			cap = MIN(cap * 2, max + 1);
			nb = realloc(buf, cap + 1);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
		}
		n = read(fd, buf + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			return -errno;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got > max) {
		free(buf);
		return -EFBIG;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return 0;
}

int
kubeconfig_read_file(const char *path, size_t max, char **out, size_t *len)
{
	struct stat st;
	size_t hint;
	int fd, r;

	*out = NULL;
	*len = 0;
	/* O_NONBLOCK: a FIFO in place of a token must not hang the daemon in open() */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
	} else if (S_ISDIR(st.st_mode)) {
		r = -EISDIR;
	} else if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
	} else {
		/* st_size is only a hint: /proc-like files say 0, and files change under us */
		hint = st.st_size > 0 ? (size_t)st.st_size : KUBECONFIG_READ_CHUNK;
		r = kubeconfig_read_fd(fd, max, hint, out, len);
	}
	close(fd);
	return r;
}

const char *
kubeconfig_file_strerror(int r)
{
	if (r == -EFBIG)
		return "larger than 1 MiB";
	if (r == -EINVAL)
		return "not a regular file";
	return strerror(-r);
}

/* First pass: events only, refusing aliases and deep nesting before anything is built. */
static int
kubeconfig_scan(struct kubeconfig_parse *p, const char *buf, size_t len)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	int depth = 0, r = 0;
	size_t events = 0;

	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	for (bool done = false; !done && r == 0;) {
		if (!yaml_parser_parse(&parser, &ev)) {
			r = kubeconfig_err(p, -EINVAL, "not YAML: %s at line %zu",
					   parser.problem ? parser.problem : "parse error",
					   parser.problem_mark.line + 1);
			break;
		}
		if (ev.type == YAML_ALIAS_EVENT) {
			r = kubeconfig_err(p, -EINVAL, "YAML aliases (*%s) are not supported",
					   (const char *)ev.data.alias.anchor);
		} else if (ev.type == YAML_MAPPING_START_EVENT ||
			   ev.type == YAML_SEQUENCE_START_EVENT) {
			if (++depth > KUBECONFIG_MAX_DEPTH) {
				r = kubeconfig_err(p, -EINVAL, "nested deeper than %d levels",
						   KUBECONFIG_MAX_DEPTH);
			}
		} else if (ev.type == YAML_MAPPING_END_EVENT ||
			   ev.type == YAML_SEQUENCE_END_EVENT) {
			depth--;
		} else if (ev.type == YAML_DOCUMENT_END_EVENT || ev.type == YAML_STREAM_END_EVENT) {
			/* only the first document counts, as for kubectl */
			done = true;
		}
		if (r == 0 && ++events > KUBECONFIG_MAX_EVENTS) {
			r = kubeconfig_err(p, -EINVAL, "more than %d YAML events",
					   KUBECONFIG_MAX_EVENTS);
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	return r;
}

/* A scalar's text; NULL for a non-scalar, or one with a NUL inside. */
static const char *
kubeconfig_scalar(yaml_node_t *n)
{
	if (!n || n->type != YAML_SCALAR_NODE)
		return NULL;
	if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length)
		return NULL;
	return (const char *)n->data.scalar.value;
}

/* The value under `key` in a mapping node, NULL when absent (or `map` is not a mapping). */
static yaml_node_t *
kubeconfig_get(struct kubeconfig_parse *p, yaml_node_t *map, const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
	     pr++) {
		const char *k = kubeconfig_scalar(yaml_document_get_node(&p->doc, pr->key));

		if (k && strcmp(k, key) == 0)
			return yaml_document_get_node(&p->doc, pr->value);
	}
	return NULL;
}

/* A set value: a non-empty scalar other than YAML's null. */
static const char *
kubeconfig_get_str(struct kubeconfig_parse *p, yaml_node_t *map, const char *key)
{
	yaml_node_t *n = kubeconfig_get(p, map, key);
	const char *s = kubeconfig_scalar(n);

	if (!s || !*s)
		return NULL;
	if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	    (strcmp(s, "~") == 0 || strcasecmp(s, "null") == 0))
		return NULL;
	return s;
}

/* In the sequence `list_key` of the root, the item named `name`, and in it `inner`. */
static yaml_node_t *
kubeconfig_named(struct kubeconfig_parse *p, const char *list_key, const char *name,
		 const char *inner)
{
	yaml_node_t *root = yaml_document_get_root_node(&p->doc);
	yaml_node_t *seq = kubeconfig_get(p, root, list_key);

	if (!seq || seq->type != YAML_SEQUENCE_NODE)
		return NULL;
	for (yaml_node_item_t *it = seq->data.sequence.items.start;
	     it < seq->data.sequence.items.top; it++) {
		yaml_node_t *item = yaml_document_get_node(&p->doc, *it);
		const char *n = kubeconfig_get_str(p, item, "name");

		if (n && strcmp(n, name) == 0)
			return kubeconfig_get(p, item, inner);
	}
	return NULL;
}

static int
kubeconfig_dup(const char *s, char **dst)
{
	if (!s)
		return 0;
	*dst = strdup(s);
	return *dst ? 0 : -ENOMEM;
}

/* A path as kubectl reads it: relative to the kubeconfig's directory. */
static int
kubeconfig_take_path(struct kubeconfig_parse *p, yaml_node_t *map, const char *key, char **dst)
{
	const char *s = kubeconfig_get_str(p, map, key);

	if (!s)
		return 0;
	if (s[0] == '/')
		return kubeconfig_dup(s, dst);
	if (asprintf(dst, "%s/%s", p->dir, s) < 0) {
		*dst = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* A *-data field: base64 (newlines allowed) to bytes, NUL-terminated for PEM parsers. */
static int
kubeconfig_take_data(struct kubeconfig_parse *p, yaml_node_t *map, const char *key, char **dst,
		     size_t *len)
{
	const char *s = kubeconfig_get_str(p, map, key);
	EVP_ENCODE_CTX *ctx;
	size_t in;
	int n = 0, fin = 0, r = 0;
	char *out;

	if (!s)
		return 0;
	in = strlen(s);
	if (in > INT32_MAX / 2)
		return -EINVAL;
	out = malloc(in / 4 * 3 + 4);
	ctx = EVP_ENCODE_CTX_new();
	if (!out || !ctx) {
		r = -ENOMEM;
	} else {
		EVP_DecodeInit(ctx);
		if (EVP_DecodeUpdate(ctx, (unsigned char *)out, &n, (const unsigned char *)s,
				     (int)in) < 0 ||
		    EVP_DecodeFinal(ctx, (unsigned char *)out + n, &fin) != 1 || n + fin == 0) {
			r = kubeconfig_err(p, -EINVAL, "%s is not base64", key);
		}
	}
	EVP_ENCODE_CTX_free(ctx);
	if (r) {
		free(out);
		return r;
	}
	out[n + fin] = '\0';
	*dst = out;
	*len = (size_t)(n + fin);
	return 0;
}

/* YAML 1.1's true, which is what kubectl's YAML library reads. */
static bool
kubeconfig_true(const char *s)
{
	static const char *const yes[] = {"true", "True", "TRUE", "y",	"Y", "yes",
					  "Yes",  "YES",  "on",	  "On", "ON"};

	for (size_t i = 0; s && i < ARRAY_SIZE(yes); i++)
		if (strcmp(s, yes[i]) == 0)
			return true;
	return false;
}

static int
kubeconfig_cluster(struct kubeconfig_parse *p, yaml_node_t *c)
{
	struct kubeconfig *kc = p->kc;
	int r;

	r = kubeconfig_dup(kubeconfig_get_str(p, c, "server"), &kc->server);
	if (r == 0)
		r = kubeconfig_take_path(p, c, "certificate-authority", &kc->ca_file);
	if (r == 0)
		r = kubeconfig_take_data(p, c, "certificate-authority-data", &kc->ca_data,
					 &kc->ca_data_len);
	if (r == 0)
		r = kubeconfig_dup(kubeconfig_get_str(p, c, "tls-server-name"),
				   &kc->tls_server_name);
	kc->insecure = kubeconfig_true(kubeconfig_get_str(p, c, "insecure-skip-tls-verify"));
	if (r == 0 && !kc->server)
		r = kubeconfig_err(p, -EINVAL, "cluster \"%s\" has no server", kc->cluster);
	/* kubectl refuses this pair too: which one was meant is anyone's guess */
	if (r == 0 && kc->insecure && (kc->ca_file || kc->ca_data))
		r = kubeconfig_err(p, -EINVAL,
				   "cluster \"%s\" sets both "
				   "insecure-skip-tls-verify and a certificate-authority",
				   kc->cluster);
	return r;
}

/* The kinds of user entries that would need something kubemasq does not do. */
static int
kubeconfig_user_unsupported(struct kubeconfig_parse *p, yaml_node_t *u)
{
	static const char hint[] = "; run `kubectl proxy` and use "
				   "--kube-api-url=http://127.0.0.1:8001";
	yaml_node_t *n;
	const char *s;

	if ((n = kubeconfig_get(p, u, "exec")) && n->type == YAML_MAPPING_NODE) {
		s = kubeconfig_get_str(p, n, "command");
		if (s && strrchr(s, '/'))
			s = strrchr(s, '/') + 1;
		return kubeconfig_err(
			p, -ENOTSUP,
			"user \"%s\" uses an exec plugin (%s) which kubemasq does not "
			"run%s",
			p->kc->user, s ? s : "no command", hint);
	}
	if ((n = kubeconfig_get(p, u, "auth-provider")) && n->type == YAML_MAPPING_NODE) {
		s = kubeconfig_get_str(p, n, "name");
		return kubeconfig_err(
			p, -ENOTSUP,
			"user \"%s\" uses an auth-provider plugin (%s) which kubemasq "
			"does not run%s",
			p->kc->user, s ? s : "unnamed", hint);
	}
	if (kubeconfig_get_str(p, u, "username") || kubeconfig_get_str(p, u, "password")) {
		return kubeconfig_err(p, -ENOTSUP,
				      "user \"%s\" uses a username and password, but basic "
				      "authentication was removed from Kubernetes (1.19); use a "
				      "token or a client certificate",
				      p->kc->user);
	}
	return 0;
}

static int
kubeconfig_user(struct kubeconfig_parse *p, yaml_node_t *u)
{
	struct kubeconfig *kc = p->kc;
	int r;

	r = kubeconfig_user_unsupported(p, u);
	if (r == 0)
		r = kubeconfig_dup(kubeconfig_get_str(p, u, "token"), &kc->token);
	if (r == 0)
		r = kubeconfig_take_path(p, u, "tokenFile", &kc->token_file);
	if (r == 0)
		r = kubeconfig_take_path(p, u, "client-certificate", &kc->cert_file);
	if (r == 0)
		r = kubeconfig_take_data(p, u, "client-certificate-data", &kc->cert_data,
					 &kc->cert_data_len);
	if (r == 0)
		r = kubeconfig_take_path(p, u, "client-key", &kc->key_file);
	if (r == 0)
		r = kubeconfig_take_data(p, u, "client-key-data", &kc->key_data, &kc->key_data_len);
	return r;
}

/* current-context -> context -> cluster and user. */
static int
kubeconfig_walk(struct kubeconfig_parse *p)
{
	yaml_node_t *root = yaml_document_get_root_node(&p->doc), *ctx, *c, *u;
	const char *name = kubeconfig_get_str(p, root, "current-context");
	struct kubeconfig *kc = p->kc;
	int r;

	if (!root || root->type != YAML_MAPPING_NODE)
		return kubeconfig_err(p, -EINVAL, "not a kubeconfig (no mapping at the top)");
	if (!name)
		return kubeconfig_err(p, -EINVAL,
				      "no current-context (set one with `kubectl config "
				      "use-context`)");
	if (kubeconfig_dup(name, &kc->context))
		return -ENOMEM;
	ctx = kubeconfig_named(p, "contexts", name, "context");
	if (!ctx)
		return kubeconfig_err(p, -EINVAL, "current-context \"%s\" is not in contexts",
				      name);
	if (kubeconfig_dup(kubeconfig_get_str(p, ctx, "cluster"), &kc->cluster) ||
	    kubeconfig_dup(kubeconfig_get_str(p, ctx, "user"), &kc->user))
		return -ENOMEM;
	c = kc->cluster ? kubeconfig_named(p, "clusters", kc->cluster, "cluster") : NULL;
	if (!c)
		return kubeconfig_err(p, -EINVAL,
				      "context \"%s\": cluster \"%s\" is not in clusters", name,
				      kc->cluster ? kc->cluster : "");
	r = kubeconfig_cluster(p, c);
	if (r || !kc->user)
		return r; /* no user: anonymous, or credentials from the options */
	u = kubeconfig_named(p, "users", kc->user, "user");
	if (!u)
		return kubeconfig_err(p, -EINVAL, "context \"%s\": user \"%s\" is not in users",
				      name, kc->user);
	return kubeconfig_user(p, u);
}

static int
kubeconfig_parse_doc(struct kubeconfig_parse *p, const char *buf, size_t len)
{
	yaml_parser_t parser;
	int r;

	r = kubeconfig_scan(p, buf, len);
	if (r)
		return r;
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&parser, &p->doc)) {
		kubeconfig_err(p, 0, "not YAML: %s",
			       parser.problem ? parser.problem : "load error");
		yaml_parser_delete(&parser);
		return -EINVAL;
	}
	yaml_parser_delete(&parser);
	r = kubeconfig_walk(p);
	yaml_document_delete(&p->doc);
	return r;
}

int
kubeconfig_load(struct kubeconfig *kc, const char *path, char *err, size_t errlen)
{
	struct kubeconfig_parse p = {.kc = kc, .path = path, .err = err, .errlen = errlen};
	const char *slash = strrchr(path, '/');
	char *buf = NULL;
	size_t len;
	int r;

	r = kubeconfig_read_file(path, KUBE_AUTH_MAX_FILE, &buf, &len);
	if (r) {
		kubeconfig_err(&p, 0, "%s", kubeconfig_file_strerror(r));
		return r;
	}
	p.dir = slash ? strndup(path, (size_t)(slash == path ? 1 : slash - path)) : strdup(".");
	r = p.dir ? kubeconfig_parse_doc(&p, buf, len) : -ENOMEM;
	if (r == -ENOMEM)
		kubeconfig_err(&p, 0, "out of memory");
	free(p.dir);
	free(buf);
	if (r)
		kubeconfig_done(kc);
	return r;
}

void
kubeconfig_done(struct kubeconfig *kc)
{
	if (!kc)
		return;
	free(kc->context);
	free(kc->cluster);
	free(kc->user);
	free(kc->server);
	free(kc->ca_file);
	free(kc->ca_data);
	free(kc->tls_server_name);
	free(kc->token);
	free(kc->token_file);
	free(kc->cert_file);
	free(kc->cert_data);
	free(kc->key_file);
	free(kc->key_data);
	memset(kc, 0, sizeof(*kc));
}
