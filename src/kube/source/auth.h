/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * auth.h - where the API server is and how to prove who we are. Three ways, chosen by the
 * options (config.h): --kube-api-url with --kube-token-file/--kube-ca-file; --kubeconfig's
 * current context (server, certificate-authority[-data], token[-file],
 * client-certificate[-data] + client-key[-data], insecure-skip-tls-verify); or, by default,
 * in cluster: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT with the service
 * account's token and CA. The result is an SSL_CTX that verifies the server against the CA
 * (hostname or IP included) and a bearer token re-read every minute and after a 401, since
 * projected service-account tokens rotate.
 *
 * No network I/O here: files and the environment only. The API client (api.c) asks for a
 * fresh SSL per connection and for the Authorization header per request.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/ssl.h>

#define KUBE_AUTH_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define KUBE_AUTH_TOKEN_REREAD_S 60
#define KUBE_AUTH_MAX_FILE (1u << 20) /* tokens, PEM files and kubeconfigs larger are refused */

struct kube_auth;

struct kube_auth_config {
	const char *api_url;	/* --kube-api-url, or NULL */
	const char *token_file; /* --kube-token-file, or NULL */
	const char *ca_file;	/* --kube-ca-file, or NULL (then the system's CA store) */
	const char *kubeconfig; /* --kubeconfig, or NULL */
	const char *sa_dir;	/* in-cluster files; NULL = KUBE_AUTH_SA_DIR (tests change it) */
};

/*
 * Work out the server and the credentials. Neither api_url nor kubeconfig: in cluster, which
 * needs KUBERNETES_SERVICE_HOST (else -ENOENT, "not in a cluster: ..."). Returns 0 or a
 * negative errno with one line in err that an operator can act on: an unreadable file (named),
 * a URL that is not http(s)://HOST[:PORT][/PATH], a kubeconfig without a current context,
 * an exec or auth-provider plugin (-ENOTSUP, pointing to `kubectl proxy` and --kube-api-url),
 * a CA, certificate or key that OpenSSL refuses (-EINVAL, with OpenSSL's reason).
 */
int kube_auth_new(struct kube_auth **out, const struct kube_auth_config *cfg, char *err,
		  size_t errlen);
void kube_auth_free(struct kube_auth *a); /* NULL-safe */

/* The server. host is what the URL says (a name, an IPv4 address, or an IPv6 address without
 * brackets); prefix is the URL's path without a trailing slash ("" for none), to put before
 * /api/v1/... (proxies such as Rancher serve the API below a path). */
bool kube_auth_tls(const struct kube_auth *a);
const char *kube_auth_host(const struct kube_auth *a);
uint16_t kube_auth_port(const struct kube_auth *a);
const char *kube_auth_prefix(const struct kube_auth *a);
/* For logs: "https://10.96.0.1:443 (in-cluster service account)". */
const char *kube_auth_describe(const struct kube_auth *a);

/* A new SSL for one connection, with SNI (for names) and verification of the server's
 * certificate against the CA and the host (name or IP) set, unless the kubeconfig says
 * insecure-skip-tls-verify. NULL for http:// or on failure (-ENOMEM). The caller owns it. */
SSL *kube_auth_ssl_new(struct kube_auth *a);

/* "Bearer TOKEN" for the Authorization header, or NULL when there is no token (client
 * certificate, or kubectl proxy). `now` is a monotonic second count: the token file is read
 * again when KUBE_AUTH_TOKEN_REREAD_S have passed since the last read. A read that fails
 * keeps the previous token and is logged (rate-limited). */
const char *kube_auth_header(struct kube_auth *a, time_t now);

/* The server said 401: read the token file again now. Returns true when the token changed
 * (retry at once), false when it did not (back off). */
bool kube_auth_unauthorized(struct kube_auth *a);
