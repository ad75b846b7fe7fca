/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * auth.c - where the API server is and how we prove who we are (see auth.h). The three sources
 * (in cluster, --kube-api-url, --kubeconfig) are reduced to one shape: a URL split into
 * scheme/host/port/prefix, a CA (PEM bytes, or the system store), an optional client
 * certificate and key, and an optional bearer token that is either fixed (kubeconfig `token`)
 * or read from a file and re-read, because projected service-account tokens rotate about every
 * hour and the kubelet replaces the file under us. --kube-token-file and --kube-ca-file (and
 * --kube-api-url with a kubeconfig) override what the other sources say, as kubectl's --token,
 * --certificate-authority and --server do. One SSL_CTX is built at start; each connection gets
 * its own SSL with the host (name or IP) to verify.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "kubemasq/defs.h"
#include "kubemasq/log.h"
#include "kube/source/auth.h"
#include "kube/source/kubeconfig.h"

#define AUTH_HOST_MAX 253
#define AUTH_PREFIX_MAX 1024
#define AUTH_DESCRIBE_MAX 1400

struct kube_auth {
	bool tls;
	bool host_is_ip;
	bool insecure;
	char *host;
	uint16_t port;
	char *prefix;
	char *server_name; /* tls-server-name: verify and send this name instead of host */
	char describe[AUTH_DESCRIBE_MAX];
	SSL_CTX *ctx;

	char *token_file; /* NULL: the token (if any) is fixed */
	char *token;	  /* current token, NULL for none */
	char *header;	  /* "Bearer <token>" */
	bool token_read_once;
	time_t token_read_at;
	struct log_ratelimit rl_token;
};

/* Everything kube_auth_new gathers before it builds the SSL_CTX; strings are borrowed. */
struct auth_creds {
	const char *ca_file;
	const char *ca_data;
	size_t ca_data_len;
	const char *cert_file;
	const char *cert_data;
	size_t cert_data_len;
	const char *key_file;
	const char *key_data;
	size_t key_data_len;
};

/* OpenSSL's reason for the last failure, and an empty queue for the next caller. */
static const char *
auth_ssl_reason(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();

	if (!e)
		snprintf(buf, len, "unknown OpenSSL error");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

/* A DNS name as far as a URL and certificate check go: LDH labels, dots, no empty label. */
static bool
auth_host_name_ok(const char *h, size_t len)
{
	size_t label = 0;

	if (len == 0 || len > AUTH_HOST_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)h[i];

		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (isalnum(c) || c == '-' || c == '_') {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return true;
}

static bool
auth_is_ip(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* Host part of an authority: "[v6]", "v4" or "name"; *rest points after it. */
static int
auth_parse_host(struct kube_auth *a, const char *p, const char **rest)
{
	unsigned char buf[sizeof(struct in6_addr)];
	const char *end;
	size_t len;

	if (*p == '[') {
		end = strchr(p, ']');
		if (!end || (size_t)(end - p - 1) >= INET6_ADDRSTRLEN)
			return -EINVAL;
		a->host = strndup(p + 1, (size_t)(end - p - 1));
		if (!a->host)
			return -ENOMEM;
		if (inet_pton(AF_INET6, a->host, buf) != 1)
			return -EINVAL;
		*rest = end + 1;
		return 0;
	}
	len = strcspn(p, ":/");
	if (!auth_host_name_ok(p, len))
		return -EINVAL;
	a->host = strndup(p, len);
	if (!a->host)
		return -ENOMEM;
	*rest = p + len;
	return 0;
}

static int
auth_parse_port(const char *p, size_t len, uint16_t *port)
{
	unsigned long v = 0;

	if (len == 0 || len > 5)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)p[i]))
			return -EINVAL;
		v = v * 10 + (unsigned long)(p[i] - '0');
	}
	if (v == 0 || v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

/* The path prefix: printable, no query or fragment, trailing slashes dropped. */
static int
auth_parse_prefix(struct kube_auth *a, const char *p)
{
	size_t len = strlen(p);

	if (len > AUTH_PREFIX_MAX)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c <= ' ' || c >= 0x7f || c == '?' || c == '#' || c == '\\')
			return -EINVAL;
	}
	while (len > 0 && p[len - 1] == '/')
		len--;
	a->prefix = strndup(p, len);
	return a->prefix ? 0 : -ENOMEM;
}

/* http(s)://HOST[:PORT][/PATH]; `what` names the option or file for the message. */
static int
auth_parse_url(struct kube_auth *a, const char *url, const char *what, char *err, size_t errlen)
{
	const char *p, *rest;
	int r;

	if (strncasecmp(url, "https://", 8) == 0) {
		a->tls = true;
		a->port = 443;
		p = url + 8;
	} else if (strncasecmp(url, "http://", 7) == 0) {
		a->tls = false;
		a->port = 80;
		p = url + 7;
	} else {
		log_errbuf(err, errlen, "%s: \"%s\" is not an http:// or https:// URL", what, url);
		return -EINVAL;
	}
	r = auth_parse_host(a, p, &rest);
	if (r == 0 && *rest == ':') {
		size_t len = strcspn(rest + 1, "/");

		r = auth_parse_port(rest + 1, len, &a->port);
		rest += 1 + len;
	}
	if (r == 0 && *rest && *rest != '/')
		r = -EINVAL;
	if (r == 0)
		r = auth_parse_prefix(a, rest);
	if (r == -EINVAL)
		log_errbuf(err, errlen,
			   "%s: \"%s\" is not a URL of the form http(s)://HOST[:PORT][/PATH]", what,
			   url);
	else if (r)
		log_errbuf(err, errlen, "%s: %s", what, strerror(-r));
	if (r == 0)
		a->host_is_ip = auth_is_ip(a->host);
	return r;
}

/* https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, the host possibly IPv6. */
static int
auth_in_cluster_url(struct kube_auth *a, char *err, size_t errlen)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	const char *rest;
	char hostbuf[INET6_ADDRSTRLEN + 2];
	int r;

	if (!host || !*host) {
		log_errbuf(err, errlen,
			   "not in a cluster: KUBERNETES_SERVICE_HOST is not set; use "
			   "--kube-api-url, --kubeconfig or --kube-snapshot");
		return -ENOENT;
	}
	a->tls = true;
	a->port = 443;
	if (strchr(host, ':') && strlen(host) < INET6_ADDRSTRLEN) {
		snprintf(hostbuf, sizeof(hostbuf), "[%s]", host);
		host = hostbuf;
	}
	r = auth_parse_host(a, host, &rest);
	if (r == 0 && *rest)
		r = -EINVAL;
	if (r == 0 && port && *port)
		r = auth_parse_port(port, strlen(port), &a->port);
	if (r == 0)
		r = auth_parse_prefix(a, "");
	if (r == -EINVAL)
		log_errbuf(err, errlen,
			   "KUBERNETES_SERVICE_HOST=%s KUBERNETES_SERVICE_PORT=%s: not a "
			   "host and port",
			   getenv("KUBERNETES_SERVICE_HOST"), port ? port : "");
	else if (r)
		log_errbuf(err, errlen, "in-cluster configuration: %s", strerror(-r));
	if (r == 0)
		a->host_is_ip = auth_is_ip(a->host);
	return r;
}

/* Strip surrounding whitespace in place; refuse what cannot go in a header. */
static int
auth_token_clean(char *buf, size_t *len)
{
	size_t start = 0, n = *len;

	while (n > 0 && isspace((unsigned char)buf[n - 1]))
		n--;
	while (start < n && isspace((unsigned char)buf[start]))
		start++;
	for (size_t i = start; i < n; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (c < 0x21 || c > 0x7e)
			return -EBADMSG;
	}
	memmove(buf, buf + start, n - start);
	buf[n - start] = '\0';
	*len = n - start;
	return n > start ? 0 : -ENODATA;
}

/* Make `token` (taken over) the current one; true when it differs from the last. */
static int
auth_token_set(struct kube_auth *a, char *token, bool *changed)
{
	size_t len = strlen(token);
	char *h = malloc(len + sizeof("Bearer "));

	if (!h) {
		free(token);
		return -ENOMEM;
	}
	memcpy(h, "Bearer ", 7);
	memcpy(h + 7, token, len + 1);
	*changed = !a->token || strcmp(a->token, token) != 0;
	free(a->token);
	free(a->header);
	a->token = token;
	a->header = h;
	return 0;
}

/* Read the token file; on failure the previous token stays. */
static int
auth_token_read(struct kube_auth *a, bool *changed)
{
	char *buf = NULL;
	size_t len = 0;
	int r;

	*changed = false;
	r = kubeconfig_read_file(a->token_file, KUBE_AUTH_MAX_FILE, &buf, &len);
	if (r == 0)
		r = auth_token_clean(buf, &len);
	if (r) {
		free(buf);
		return r;
	}
	return auth_token_set(a, buf, changed);
}

static const char *
auth_token_strerror(int r)
{
	if (r == -ENODATA)
		return "the file is empty";
	if (r == -EBADMSG)
		return "the token has characters a header cannot carry";
	return kubeconfig_file_strerror(r);
}

static void
auth_token_refresh(struct kube_auth *a, time_t now)
{
	bool changed;
	int r = auth_token_read(a, &changed);

	a->token_read_once = true;
	a->token_read_at = now;
	if (r)
		log_ratelimited(&a->rl_token, LOG_WARNING,
				"kube: cannot read token file %s (%s), keeping the previous token",
				a->token_file, auth_token_strerror(r));
	else if (changed)
		log_info("kube: token from %s changed", a->token_file);
}

/* An encrypted key must fail, not make OpenSSL ask for a passphrase on the terminal. */
static int
auth_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* PEM certificates from memory into the verify store; at least one is required. */
static int
auth_load_ca(SSL_CTX *ctx, const char *pem, size_t len, const char *what, char *err, size_t errlen)
{
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	STACK_OF(X509_INFO) * infos;
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	char reason[256];
	int n = 0;

	if (!bio)
		return -ENOMEM;
	infos = PEM_X509_INFO_read_bio(bio, NULL, auth_no_passphrase, NULL);
	BIO_free(bio);
	for (int i = 0; infos && i < sk_X509_INFO_num(infos); i++) {
		X509_INFO *info = sk_X509_INFO_value(infos, i);

		if (info->x509 && X509_STORE_add_cert(store, info->x509) == 1)
			n++;
	}
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	if (n == 0) {
		log_errbuf(err, errlen, "CA %s: no usable certificate (%s)", what,
			   auth_ssl_reason(reason, sizeof(reason)));
		return -EINVAL;
	}
	ERR_clear_error();
	return 0;
}

/* `data` if given, else the contents of `file` (capped); *owned is what to free. */
static int
auth_pem_get(const char *file, const char *data, size_t data_len, const char **pem, size_t *len,
	     char **owned, char *err, size_t errlen)
{
	int r;

	*owned = NULL;
	if (data) {
		*pem = data;
		*len = data_len;
		return 0;
	}
	r = kubeconfig_read_file(file, KUBE_AUTH_MAX_FILE, owned, len);
	if (r) {
		log_errbuf(err, errlen, "cannot read %s: %s", file, kubeconfig_file_strerror(r));
		return r;
	}
	*pem = *owned;
	return 0;
}

/* The client certificate, plus any chain that follows it in the same PEM. */
static int
auth_load_client_cert(SSL_CTX *ctx, const struct auth_creds *c, const char *what, char *err,
		      size_t errlen)
{
	char *owned = NULL, reason[256];
	const char *pem;
	size_t len;
	BIO *bio;
	X509 *x = NULL;
	int r;

	r = auth_pem_get(c->cert_file, c->cert_data, c->cert_data_len, &pem, &len, &owned, err,
			 errlen);
	if (r)
		return r;
	bio = BIO_new_mem_buf(pem, (int)len);
	x = bio ? PEM_read_bio_X509(bio, NULL, auth_no_passphrase, NULL) : NULL;
	if (!x || SSL_CTX_use_certificate(ctx, x) != 1) {
		log_errbuf(err, errlen, "client certificate %s: %s", what,
			   auth_ssl_reason(reason, sizeof(reason)));
		r = -EINVAL;
	} else {
		for (X509 *ch; (ch = PEM_read_bio_X509(bio, NULL, auth_no_passphrase, NULL));)
			if (SSL_CTX_add0_chain_cert(ctx, ch) != 1)
				X509_free(ch);
		ERR_clear_error(); /* the end of the PEM reads as an error */
	}
	X509_free(x);
	BIO_free(bio);
	free(owned);
	return r;
}

/* The client key, which must be the certificate's. */
static int
auth_load_client_key(SSL_CTX *ctx, const struct auth_creds *c, const char *what_c, char *err,
		     size_t errlen)
{
	const char *what = c->key_file ? c->key_file : "client-key-data";
	char *owned = NULL, reason[256];
	const char *pem;
	size_t len;
	BIO *bio;
	EVP_PKEY *key;
	int r;

	r = auth_pem_get(c->key_file, c->key_data, c->key_data_len, &pem, &len, &owned, err,
			 errlen);
	if (r)
		return r;
	bio = BIO_new_mem_buf(pem, (int)len);
	key = bio ? PEM_read_bio_PrivateKey(bio, NULL, auth_no_passphrase, NULL) : NULL;
	if (!key) {
		log_errbuf(err, errlen, "client key %s: %s", what,
			   auth_ssl_reason(reason, sizeof(reason)));
		r = -EINVAL;
	} else if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		/* use_PrivateKey already refuses a key of another certificate */
		log_errbuf(err, errlen, "client key %s does not match certificate %s: %s", what,
			   what_c, auth_ssl_reason(reason, sizeof(reason)));
		r = -EINVAL;
	}
	EVP_PKEY_free(key);
	BIO_free(bio);
	free(owned);
	return r;
}

static int
auth_load_client(SSL_CTX *ctx, const struct auth_creds *c, char *err, size_t errlen)
{
	const char *what = c->cert_file ? c->cert_file : "client-certificate-data";
	int r = auth_load_client_cert(ctx, c, what, err, errlen);

	return r ? r : auth_load_client_key(ctx, c, what, err, errlen);
}

static int
auth_ctx_new(struct kube_auth *a, const struct auth_creds *c, char *err, size_t errlen)
{
	char reason[256], *owned = NULL;
	const char *pem;
	size_t len;
	int r = 0;

	a->ctx = SSL_CTX_new(TLS_client_method());
	if (!a->ctx || SSL_CTX_set_min_proto_version(a->ctx, TLS1_2_VERSION) != 1) {
		log_errbuf(err, errlen, "TLS setup: %s", auth_ssl_reason(reason, sizeof(reason)));
		return -ENOMEM;
	}
	SSL_CTX_set_verify(a->ctx, a->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
	if (c->ca_data || c->ca_file) {
		r = auth_pem_get(c->ca_file, c->ca_data, c->ca_data_len, &pem, &len, &owned, err,
				 errlen);
		if (r == 0)
			r = auth_load_ca(a->ctx, pem, len,
					 c->ca_file ? c->ca_file : "certificate-authority-data",
					 err, errlen);
		free(owned);
	} else if (SSL_CTX_set_default_verify_paths(a->ctx) != 1) {
		log_errbuf(err, errlen, "TLS: the system CA store: %s",
			   auth_ssl_reason(reason, sizeof(reason)));
		r = -EINVAL;
	}
	if (r == 0 && (c->cert_file || c->cert_data || c->key_file || c->key_data)) {
		if (!(c->cert_file || c->cert_data) || !(c->key_file || c->key_data)) {
			log_errbuf(err, errlen,
				   "a client certificate needs both the certificate and "
				   "the key");
			return -EINVAL;
		}
		r = auth_load_client(a->ctx, c, err, errlen);
	}
	return r;
}

/* The first read happens now, and a missing or empty file is a startup error. */
static int
auth_token_init(struct kube_auth *a, const char *file, char *err, size_t errlen)
{
	bool changed;
	int r;

	a->token_file = strdup(file);
	if (!a->token_file)
		return -ENOMEM;
	r = auth_token_read(a, &changed);
	if (r) {
		log_errbuf(err, errlen, "token file %s: %s", file, auth_token_strerror(r));
		return r == -ENODATA || r == -EBADMSG ? -EINVAL : r;
	}
	a->token_read_once = false; /* the caller's clock starts at the first header */
	return 0;
}

static int
auth_token_fixed(struct kube_auth *a, const char *token, const char *what, char *err, size_t errlen)
{
	size_t len = strlen(token);
	char *t = strdup(token);
	bool changed;
	int r;

	if (!t)
		return -ENOMEM;
	r = auth_token_clean(t, &len);
	if (r) {
		free(t);
		log_errbuf(err, errlen, "%s: %s", what,
			   r == -ENODATA ? "the token is empty" : auth_token_strerror(r));
		return -EINVAL;
	}
	return auth_token_set(a, t, &changed);
}

static void
auth_describe(struct kube_auth *a, const char *how)
{
	bool v6 = strchr(a->host, ':') != NULL;

	snprintf(a->describe, sizeof(a->describe), "%s://%s%s%s:%u%s (%s)",
		 a->tls ? "https" : "http", v6 ? "[" : "", a->host, v6 ? "]" : "", a->port,
		 a->prefix, how);
}

/* In cluster: the service account's files, unless the options name others. */
static int
auth_from_cluster(struct kube_auth *a, const struct kube_auth_config *cfg, struct auth_creds *c,
		  char *paths, size_t plen, char *err, size_t errlen)
{
	const char *dir = cfg->sa_dir ? cfg->sa_dir : KUBE_AUTH_SA_DIR;
	const char *token = cfg->token_file;
	int r;

	r = auth_in_cluster_url(a, err, errlen);
	if (r)
		return r;
	if (!token) {
		snprintf(paths, plen, "%s/token", dir);
		token = paths;
	}
	r = auth_token_init(a, token, err, errlen);
	if (r)
		return r;
	if (!cfg->ca_file) {
		snprintf(paths, plen, "%s/ca.crt", dir);
		c->ca_file = paths;
	}
	auth_describe(a, "in-cluster service account");
	return 0;
}

/* The current context, with --kube-api-url, --kube-ca-file and --kube-token-file on top. */
static int
auth_from_kubeconfig(struct kube_auth *a, const struct kube_auth_config *cfg,
		     const struct kubeconfig *kc, struct auth_creds *c, char *err, size_t errlen)
{
	char how[512];
	int r;

	if (cfg->api_url)
		r = auth_parse_url(a, cfg->api_url, "--kube-api-url", err, errlen);
	else if (!kc->server) {
		log_errbuf(err, errlen, "kubeconfig %s: cluster \"%s\" has no server",
			   cfg->kubeconfig, kc->cluster);
		return -EINVAL;
	} else
		r = auth_parse_url(a, kc->server, cfg->kubeconfig, err, errlen);
	if (r)
		return r;
	a->insecure = kc->insecure && !cfg->ca_file;
	if (kc->tls_server_name && !(a->server_name = strdup(kc->tls_server_name)))
		return -ENOMEM;
	if (!cfg->ca_file) {
		c->ca_file = kc->ca_file;
		c->ca_data = kc->ca_data;
		c->ca_data_len = kc->ca_data_len;
	}
	c->cert_file = kc->cert_file;
	c->cert_data = kc->cert_data;
	c->cert_data_len = kc->cert_data_len;
	c->key_file = kc->key_file;
	c->key_data = kc->key_data;
	c->key_data_len = kc->key_data_len;
	if (!cfg->token_file && kc->token_file)
		r = auth_token_init(a, kc->token_file, err, errlen);
	else if (!cfg->token_file && kc->token)
		r = auth_token_fixed(a, kc->token, cfg->kubeconfig, err, errlen);
	snprintf(how, sizeof(how), "kubeconfig %s, context %s", cfg->kubeconfig, kc->context);
	auth_describe(a, how);
	return r;
}

static int
auth_setup(struct kube_auth *a, const struct kube_auth_config *cfg, char *err, size_t errlen)
{
	struct kubeconfig kc = {0};
	struct auth_creds c = {.ca_file = cfg->ca_file};
	char paths[4096];
	int r;

	if (cfg->kubeconfig) {
		r = kubeconfig_load(&kc, cfg->kubeconfig, err, errlen);
		if (r == 0)
			r = auth_from_kubeconfig(a, cfg, &kc, &c, err, errlen);
	} else if (cfg->api_url) {
		r = auth_parse_url(a, cfg->api_url, "--kube-api-url", err, errlen);
		if (r == 0)
			auth_describe(a, "--kube-api-url");
	} else {
		r = auth_from_cluster(a, cfg, &c, paths, sizeof(paths), err, errlen);
	}
	if (r == 0 && cfg->token_file && !a->token_file)
		r = auth_token_init(a, cfg->token_file, err, errlen);
	if (r == 0 && a->tls)
		r = auth_ctx_new(a, &c, err, errlen);
	kubeconfig_done(&kc);
	return r;
}

int
kube_auth_new(struct kube_auth **out, const struct kube_auth_config *cfg, char *err, size_t errlen)
{
	struct kube_auth *a = calloc(1, sizeof(*a));
	int r;

	*out = NULL;
	if (!a) {
		log_errbuf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	a->rl_token = (struct log_ratelimit)LOG_RATELIMIT_INIT(60000, 1);
	r = auth_setup(a, cfg, err, errlen);
	if (r) {
		if (r == -ENOMEM)
			log_errbuf(err, errlen, "out of memory");
		kube_auth_free(a);
		return r;
	}
	if (a->tls && a->insecure)
		log_warn("kube: insecure-skip-tls-verify: the API server's certificate is NOT "
			 "verified: %s",
			 a->describe);
	if (!a->tls && a->token)
		log_warn("kube: sending a bearer token over plain http:// to %s", a->describe);
	*out = a;
	return 0;
}

void
kube_auth_free(struct kube_auth *a)
{
	if (!a)
		return;
	SSL_CTX_free(a->ctx);
	free(a->host);
	free(a->prefix);
	free(a->server_name);
	free(a->token_file);
	free(a->token);
	free(a->header);
	free(a);
}

bool
kube_auth_tls(const struct kube_auth *a)
{
	return a->tls;
}

const char *
kube_auth_host(const struct kube_auth *a)
{
	return a->host;
}

uint16_t
kube_auth_port(const struct kube_auth *a)
{
	return a->port;
}

const char *
kube_auth_prefix(const struct kube_auth *a)
{
	return a->prefix;
}

const char *
kube_auth_describe(const struct kube_auth *a)
{
	return a->describe;
}

SSL *
kube_auth_ssl_new(struct kube_auth *a)
{
	const char *name = a->server_name ? a->server_name : a->host;
	bool ip = a->server_name ? auth_is_ip(a->server_name) : a->host_is_ip;
	SSL *ssl;
	int ok = 1;

	if (!a->tls || !a->ctx)
		return NULL;
	ssl = SSL_new(a->ctx);
	if (!ssl)
		return NULL;
	/* RFC 6066 forbids IP literals in SNI */
	if (!ip)
		ok = SSL_set_tlsext_host_name(ssl, name);
	if (ok == 1 && !a->insecure) {
		if (ip)
			ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name);
		else {
			SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
			ok = SSL_set1_host(ssl, name);
		}
	}
	if (ok != 1) {
		ERR_clear_error();
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

const char *
kube_auth_header(struct kube_auth *a, time_t now)
{
	if (a->token_file &&
	    (!a->token_read_once || now - a->token_read_at >= KUBE_AUTH_TOKEN_REREAD_S)) {
		if (!a->token_read_once) {
			/* kube_auth_new has just read it: start the caller's clock */
			a->token_read_once = true;
			a->token_read_at = now;
		} else {
			auth_token_refresh(a, now);
		}
	}
	return a->header;
}

bool
kube_auth_unauthorized(struct kube_auth *a)
{
	bool changed = false;
	int r;

	if (!a->token_file)
		return false;
	r = auth_token_read(a, &changed);
	if (r)
		log_ratelimited(&a->rl_token, LOG_WARNING,
				"kube: 401 and cannot read token file %s (%s)", a->token_file,
				auth_token_strerror(r));
	else if (changed)
		log_info("kube: token from %s changed after a 401", a->token_file);
	return changed;
}
