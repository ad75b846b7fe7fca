/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_kube_auth.c - unit tests of the API server connection settings (auth.c, kubeconfig.c):
 * URL forms accepted and refused, in-cluster settings from a temporary service-account
 * directory and the environment, kubeconfig variants written to a temporary directory (token,
 * tokenFile, CA file relative to the kubeconfig, CA and client certificate data, insecure,
 * plugins and basic auth refused with their message, missing context, aliases, over-size),
 * the token re-read on the caller's clock and after a 401, and real TLS verification without a
 * network: a throw-away PKI made with OpenSSL's API at setup, and the client SSL from
 * kube_auth_ssl_new() shaking hands with an in-memory server SSL over a BIO pair, which must
 * succeed with the right CA and host and fail with a wrong CA, a wrong name or a wrong IP.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "kube/source/auth.h"

static char t_dir[] = "/tmp/test_kube_auth.XXXXXX";

/* ---- files ---- */

/* t_dir/name; the buffers rotate so a few paths can be alive at once. */
static const char *
t_path(const char *name)
{
	static char bufs[8][PATH_MAX];
	static unsigned n;
	char *b = bufs[n++ % 8];

	snprintf(b, PATH_MAX, "%s/%s", t_dir, name);
	return b;
}

static const char *
t_write(const char *name, const char *text)
{
	const char *path = t_path(name);
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	return path;
}

static char *
t_read(const char *name)
{
	FILE *f = fopen(t_path(name), "r");
	static char buf[16384];
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* base64 of a file in the temp dir, on one line as kubectl writes it (caller frees). */
static char *
t_b64(const char *name)
{
	const char *pem = t_read(name);
	size_t len = strlen(pem);
	char *out = malloc(len / 3 * 4 + 8);

	assert_non_null(out);
	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)pem, (int)len);
	return out;
}

/* ---- a throw-away PKI ---- */

static void
t_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

/* A certificate for `key`, signed by issuer (NULL: self-signed CA); san NULL for a CA. */
static X509 *
t_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *ikey, const char *san)
{
	static long serial = 1;
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, name);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
	X509_NAME_free(name);
	X509_set_pubkey(x, key);
	if (san) {
		t_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE");
		t_ext(x, issuer, NID_subject_alt_name, san);
	} else {
		t_ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE");
		t_ext(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
	}
	assert_int_not_equal(X509_sign(x, ikey ? ikey : key, EVP_sha256()), 0);
	return x;
}

static void
t_save(const char *name, X509 *x, EVP_PKEY *key)
{
	char file[64];
	FILE *f;

	snprintf(file, sizeof(file), "%s.crt", name);
	f = fopen(t_path(file), "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, x), 1);
	fclose(f);
	snprintf(file, sizeof(file), "%s.key", name);
	f = fopen(t_path(file), "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
}

static void
t_save_encrypted_key(const char *name, EVP_PKEY *key)
{
	FILE *f = fopen(t_path(name), "w");

	assert_non_null(f);
	assert_int_equal(PEM_write_PrivateKey(f, key, EVP_aes_128_cbc(), NULL, 0, NULL,
					      (void *)"passphrase"),
			 1);
	fclose(f);
}

/* ca (trusted), ca2 (a stranger), and leaves signed by ca (plus one by ca2). */
static void
t_pki(void)
{
	static const struct {
		const char *name, *san;
		bool by_ca2;
	} leaves[] = {
		{"ip", "IP:127.0.0.1"},		  {"ip6", "IP:::1"},
		{"name", "DNS:localhost"},	  {"client", "DNS:kubemasq-client"},
		{"other", "DNS:localhost", true},
	};
	EVP_PKEY *ck = EVP_EC_gen("P-256"), *ck2 = EVP_EC_gen("P-256");
	X509 *ca = t_cert(ck, "test-ca", NULL, NULL, NULL);
	X509 *ca2 = t_cert(ck2, "stranger-ca", NULL, NULL, NULL);

	t_save("ca", ca, ck);
	t_save("ca2", ca2, ck2);
	for (size_t i = 0; i < sizeof(leaves) / sizeof(leaves[0]); i++) {
		EVP_PKEY *k = EVP_EC_gen("P-256");
		X509 *x = leaves[i].by_ca2 ? t_cert(k, leaves[i].name, ca2, ck2, leaves[i].san)
					   : t_cert(k, leaves[i].name, ca, ck, leaves[i].san);

		t_save(leaves[i].name, x, k);
		if (strcmp(leaves[i].name, "client") == 0)
			t_save_encrypted_key("client-enc.key", k);
		X509_free(x);
		EVP_PKEY_free(k);
	}
	X509_free(ca);
	X509_free(ca2);
	EVP_PKEY_free(ck);
	EVP_PKEY_free(ck2);
}

static int
t_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
t_setup(void **state)
{
	(void)state;
	if (!mkdtemp(t_dir))
		return -1;
	t_pki();
	return 0;
}

static int
t_teardown(void **state)
{
	(void)state;
	return nftw(t_dir, t_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- TLS over a BIO pair ---- */

/* A server presenting `leaf`.crt; with client_ca it demands a client certificate from it. */
static SSL_CTX *
t_server_ctx(const char *leaf, const char *client_ca)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char f[64];

	assert_non_null(ctx);
	snprintf(f, sizeof(f), "%s.crt", leaf);
	assert_int_equal(SSL_CTX_use_certificate_file(ctx, t_path(f), SSL_FILETYPE_PEM), 1);
	snprintf(f, sizeof(f), "%s.key", leaf);
	assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, t_path(f), SSL_FILETYPE_PEM), 1);
	if (client_ca) {
		assert_int_equal(SSL_CTX_load_verify_locations(ctx, t_path(client_ca), NULL), 1);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	}
	return ctx;
}

static bool
t_step(SSL *ssl, bool *done)
{
	int r, e;

	if (*done)
		return true;
	r = SSL_do_handshake(ssl);
	if (r == 1) {
		*done = true;
		return true;
	}
	e = SSL_get_error(ssl, r);
	return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

/* Handshake the client SSL (taken over) with a server on sctx. Returns true when both sides
 * completed; *verify gets the client's verification result, sni what the server received. */
static bool
t_handshake(SSL *client, SSL_CTX *sctx, long *verify, char *sni, size_t snilen)
{
	SSL *server = SSL_new(sctx);
	BIO *bc, *bs;
	bool cdone = false, sdone = false, ok = true;
	const char *name;

	assert_non_null(client);
	assert_non_null(server);
	assert_int_equal(BIO_new_bio_pair(&bc, 0, &bs, 0), 1);
	SSL_set_bio(client, bc, bc);
	SSL_set_bio(server, bs, bs);
	SSL_set_connect_state(client);
	SSL_set_accept_state(server);
	for (int i = 0; i < 50 && ok && !(cdone && sdone); i++)
		ok = t_step(client, &cdone) && t_step(server, &sdone);
	/* TLS 1.3: the server judges the client certificate after the client is done */
	if (cdone && sdone)
		ok = SSL_write(client, "x", 1) == 1 && SSL_read(server, (char[1]){0}, 1) == 1;
	*verify = SSL_get_verify_result(client);
	name = SSL_get_servername(server, TLSEXT_NAMETYPE_host_name);
	if (sni)
		snprintf(sni, snilen, "%s", name ? name : "");
	SSL_free(server);
	SSL_free(client);
	ERR_clear_error();
	return ok && cdone && sdone;
}

/* ---- helpers around kube_auth_new ---- */

static struct kube_auth *
t_new_ok(const struct kube_auth_config *cfg)
{
	struct kube_auth *a = NULL;
	char err[1024] = "";
	int r = kube_auth_new(&a, cfg, err, sizeof(err));

	if (r != 0)
		fail_msg("kube_auth_new: %d %s", r, err);
	assert_non_null(a);
	return a;
}

static int
t_new_err(const struct kube_auth_config *cfg, char *err, size_t errlen)
{
	struct kube_auth *a = (struct kube_auth *)&a;
	int r;

	err[0] = '\0';
	r = kube_auth_new(&a, cfg, err, errlen);
	assert_int_not_equal(r, 0);
	assert_null(a);
	assert_int_not_equal(err[0], '\0');
	return r;
}

static struct kube_auth *
t_url(const char *url, const char *ca)
{
	struct kube_auth_config cfg = {.api_url = url, .ca_file = ca ? t_path(ca) : NULL};

	return t_new_ok(&cfg);
}

/* Handshake through kube_auth against a server presenting `leaf`. */
static bool
t_tls(struct kube_auth *a, const char *leaf, const char *client_ca, long *verify, char *sni,
      size_t snilen)
{
	SSL_CTX *sctx = t_server_ctx(leaf, client_ca);
	bool ok = t_handshake(kube_auth_ssl_new(a), sctx, verify, sni, snilen);

	SSL_CTX_free(sctx);
	return ok;
}

/* ---- URL forms ---- */

static void
test_url_good(void **state)
{
	static const struct {
		const char *url, *host, *prefix;
		bool tls;
		uint16_t port;
	} cases[] = {
		{"http://127.0.0.1:8001", "127.0.0.1", "", false, 8001},
		{"https://kubernetes.default.svc", "kubernetes.default.svc", "", true, 443},
		{"http://api.example.com/", "api.example.com", "", false, 80},
		{"https://[::1]:6443/k8s/clusters/c-abc/", "::1", "/k8s/clusters/c-abc", true,
		 6443},
		{"HTTPS://Host-1.example.com:65535//", "Host-1.example.com", "", true, 65535},
		{"https://10.96.0.1:443/a/b", "10.96.0.1", "/a/b", true, 443},
		{"http://[fd00:10:96::1]", "fd00:10:96::1", "", false, 80},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kube_auth *a = t_url(cases[i].url, NULL);

		assert_string_equal(kube_auth_host(a), cases[i].host);
		assert_string_equal(kube_auth_prefix(a), cases[i].prefix);
		assert_int_equal(kube_auth_tls(a), cases[i].tls);
		assert_int_equal(kube_auth_port(a), cases[i].port);
		assert_null(kube_auth_header(a, 0));
		assert_non_null(strstr(kube_auth_describe(a), "--kube-api-url"));
		if (cases[i].tls) {
			SSL *ssl = kube_auth_ssl_new(a);

			assert_non_null(ssl);
			assert_int_equal(SSL_get_min_proto_version(ssl), TLS1_2_VERSION);
			assert_int_equal(SSL_get_verify_mode(ssl), SSL_VERIFY_PEER);
			SSL_free(ssl);
		} else {
			assert_null(kube_auth_ssl_new(a));
		}
		kube_auth_free(a);
	}
}

static void
test_url_describe(void **state)
{
	struct kube_auth *a = t_url("https://[::1]:6443/p/", NULL);

	(void)state;
	assert_string_equal(kube_auth_describe(a), "https://[::1]:6443/p (--kube-api-url)");
	kube_auth_free(a);
	kube_auth_free(NULL);
}

static void
test_url_bad(void **state)
{
	static const char *const bad[] = {
		"ftp://host",
		"host:443",
		"https://",
		"https://:443",
		"https://host:",
		"https://host:0",
		"https://host:65536",
		"https://host:12a",
		"https://host:443x/",
		"https://[::1",
		"https://[::1]x",
		"https://[nothex]:1",
		"https://[127.0.0.1]",
		"https://user@host",
		"https://host?x=1",
		"https://host/path?q=1",
		"https://host/pa th",
		"https://ho st",
		"https://host#frag",
		"https://a..b",
		"https://.a",
		"unix:///run/k8s.sock",
		"",
	};
	char err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct kube_auth_config cfg = {.api_url = bad[i]};

		if (t_new_err(&cfg, err, sizeof(err)) != -EINVAL)
			fail_msg("%s: not -EINVAL", bad[i]);
		if (!strstr(err, "--kube-api-url"))
			fail_msg("%s: message does not name the option: %s", bad[i], err);
	}
}

/* ---- in cluster ---- */

static const char *
t_sa_dir(const char *token)
{
	const char *dir = t_path("sa");

	mkdir(dir, 0700);
	t_write("sa/token", token);
	t_write("sa/ca.crt", t_read("ca.crt"));
	return dir;
}

static void
test_in_cluster(void **state)
{
	struct kube_auth_config cfg = {.sa_dir = t_sa_dir("sa-token-1\n")};
	struct kube_auth *a;
	long verify;

	(void)state;
	setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
	a = t_new_ok(&cfg);
	assert_true(kube_auth_tls(a));
	assert_string_equal(kube_auth_host(a), "127.0.0.1");
	assert_int_equal(kube_auth_port(a), 6443);
	assert_string_equal(kube_auth_prefix(a), "");
	assert_string_equal(kube_auth_describe(a),
			    "https://127.0.0.1:6443 (in-cluster service account)");
	assert_string_equal(kube_auth_header(a, 100), "Bearer sa-token-1");
	/* the SA CA verifies a server certificate for the service IP */
	assert_true(t_tls(a, "ip", NULL, &verify, NULL, 0));
	assert_int_equal(verify, X509_V_OK);
	kube_auth_free(a);

	unsetenv("KUBERNETES_SERVICE_PORT");
	a = t_new_ok(&cfg);
	assert_int_equal(kube_auth_port(a), 443);
	kube_auth_free(a);
}

static void
test_in_cluster_ipv6(void **state)
{
	struct kube_auth_config cfg = {.sa_dir = t_sa_dir("t")};
	struct kube_auth *a;
	char sni[64];
	long verify;

	(void)state;
	setenv("KUBERNETES_SERVICE_HOST", "::1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	a = t_new_ok(&cfg);
	assert_string_equal(kube_auth_host(a), "::1");
	assert_string_equal(kube_auth_describe(a),
			    "https://[::1]:443 (in-cluster service account)");
	assert_true(t_tls(a, "ip6", NULL, &verify, sni, sizeof(sni)));
	assert_string_equal(sni, ""); /* no SNI for IP literals */
	/* a certificate for 127.0.0.1 (same CA) is not one for ::1 */
	assert_false(t_tls(a, "ip", NULL, &verify, NULL, 0));
	assert_int_equal(verify, X509_V_ERR_IP_ADDRESS_MISMATCH);
	kube_auth_free(a);
}

static void
test_in_cluster_errors(void **state)
{
	struct kube_auth_config cfg = {.sa_dir = t_sa_dir("t")};
	char err[512];

	(void)state;
	unsetenv("KUBERNETES_SERVICE_HOST");
	assert_int_equal(t_new_err(&cfg, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "not in a cluster"));

	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "https", 1);
	assert_int_equal(t_new_err(&cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "KUBERNETES_SERVICE_PORT"));
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1/x", 1);
	assert_int_equal(t_new_err(&cfg, err, sizeof(err)), -EINVAL);

	/* no token: named */
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	cfg.sa_dir = t_path("no-such-dir");
	assert_int_equal(t_new_err(&cfg, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "no-such-dir/token"));

	/* an empty token is a startup error too */
	cfg.sa_dir = t_sa_dir(" \n");
	assert_int_equal(t_new_err(&cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "empty"));

	/* a CA file that is no PEM */
	cfg.sa_dir = t_sa_dir("t");
	t_write("sa/ca.crt", "not a certificate\n");
	assert_int_equal(t_new_err(&cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "sa/ca.crt"));
}

static void
test_in_cluster_overrides(void **state)
{
	struct kube_auth_config cfg = {
		.sa_dir = t_sa_dir("sa-token"),
		.token_file = t_write("override-token", "override\n"),
		.ca_file = t_path("ca2.crt"),
	};
	struct kube_auth *a;
	long verify;

	(void)state;
	setenv("KUBERNETES_SERVICE_HOST", "localhost", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	a = t_new_ok(&cfg);
	assert_string_equal(kube_auth_header(a, 0), "Bearer override");
	/* the overriding CA (ca2) is used, not the SA one (ca) */
	assert_true(t_tls(a, "other", NULL, &verify, NULL, 0));
	assert_false(t_tls(a, "name", NULL, &verify, NULL, 0));
	assert_int_not_equal(verify, X509_V_OK);
	kube_auth_free(a);
}

/* ---- token re-read ---- */

static void
test_token_reread(void **state)
{
	struct kube_auth_config cfg = {
		.api_url = "http://127.0.0.1:8001",
		.token_file = t_write("rot-token", "one\n"),
	};
	struct kube_auth *a = t_new_ok(&cfg);

	(void)state;
	assert_string_equal(kube_auth_header(a, 1000), "Bearer one");
	t_write("rot-token", "two\r\n\t ");
	assert_string_equal(kube_auth_header(a, 1059), "Bearer one");
	assert_string_equal(kube_auth_header(a, 1060), "Bearer two");
	/* empty, unreadable, over-size or not header-safe: the previous token stays */
	t_write("rot-token", "\n");
	assert_string_equal(kube_auth_header(a, 1120), "Bearer two");
	t_write("rot-token", "bad\ntoken");
	assert_string_equal(kube_auth_header(a, 1180), "Bearer two");
	unlink(t_path("rot-token"));
	assert_string_equal(kube_auth_header(a, 1240), "Bearer two");
	assert_false(kube_auth_unauthorized(a));
	/* a 401 re-reads at once, whatever the clock says */
	t_write("rot-token", "three");
	assert_true(kube_auth_unauthorized(a));
	assert_string_equal(kube_auth_header(a, 1241), "Bearer three");
	assert_false(kube_auth_unauthorized(a));
	assert_string_equal(kube_auth_header(a, 1242), "Bearer three");
	kube_auth_free(a);
}

static void
test_token_oversize(void **state)
{
	struct kube_auth_config cfg = {.api_url = "http://127.0.0.1:8001"};
	char *big = malloc(KUBE_AUTH_MAX_FILE + 2), err[512];
	struct kube_auth *a;

	(void)state;
	assert_non_null(big);
	memset(big, 'a', KUBE_AUTH_MAX_FILE + 1);
	big[KUBE_AUTH_MAX_FILE + 1] = '\0';
	cfg.token_file = t_write("big-token", big);
	assert_int_equal(t_new_err(&cfg, err, sizeof(err)), -EFBIG);
	assert_non_null(strstr(err, "big-token"));
	/* exactly at the cap is accepted */
	big[KUBE_AUTH_MAX_FILE] = '\0';
	t_write("big-token", big);
	a = t_new_ok(&cfg);
	assert_int_equal(strlen(kube_auth_header(a, 0)), 7 + KUBE_AUTH_MAX_FILE);
	/* and growing past it later keeps the old one */
	big[KUBE_AUTH_MAX_FILE] = 'b';
	t_write("big-token", big);
	assert_false(kube_auth_unauthorized(a));
	assert_int_equal(strlen(kube_auth_header(a, 0)), 7 + KUBE_AUTH_MAX_FILE);
	kube_auth_free(a);
	free(big);
}

static void
test_token_odd_files(void **state)
{
	struct kube_auth_config cfg = {.api_url = "https://localhost"};
	char err[512];

	(void)state;
	/* a FIFO would block a plain open(); it is refused at once */
	assert_int_equal(mkfifo(t_path("fifo-token"), 0600), 0);
	cfg.token_file = t_path("fifo-token");
	assert_int_equal(t_new_err(&cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a regular file"));
	cfg.token_file = t_dir;
	assert_int_equal(t_new_err(&cfg, err, sizeof(err)), -EISDIR);
	/* a token that would split the header */
	cfg.token_file = t_write("nl-token", "abc\r\nX-Evil: 1\n");
	assert_int_equal(t_new_err(&cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "header"));
	/* the CA file too */
	cfg.token_file = NULL;
	cfg.ca_file = t_path("fifo-token");
	assert_int_equal(t_new_err(&cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "fifo-token: not a regular file"));
}

/* ---- TLS verification ---- */

static void
test_tls_verify(void **state)
{
	struct kube_auth *a;
	char sni[64];
	long verify;

	(void)state;
	/* right CA, right IP */
	a = t_url("https://127.0.0.1:6443", "ca.crt");
	assert_true(t_tls(a, "ip", NULL, &verify, sni, sizeof(sni)));
	assert_int_equal(verify, X509_V_OK);
	assert_string_equal(sni, "");
	/* a name certificate does not cover the IP */
	assert_false(t_tls(a, "name", NULL, &verify, NULL, 0));
	assert_int_equal(verify, X509_V_ERR_IP_ADDRESS_MISMATCH);
	kube_auth_free(a);

	/* right CA, right name, SNI sent */
	a = t_url("https://localhost:6443", "ca.crt");
	assert_true(t_tls(a, "name", NULL, &verify, sni, sizeof(sni)));
	assert_int_equal(verify, X509_V_OK);
	assert_string_equal(sni, "localhost");
	/* wrong CA */
	assert_false(t_tls(a, "other", NULL, &verify, NULL, 0));
	assert_int_not_equal(verify, X509_V_OK);
	kube_auth_free(a);

	/* wrong name, wrong IP */
	a = t_url("https://kubernetes.example:6443", "ca.crt");
	assert_false(t_tls(a, "name", NULL, &verify, NULL, 0));
	assert_int_equal(verify, X509_V_ERR_HOSTNAME_MISMATCH);
	kube_auth_free(a);
	a = t_url("https://127.0.0.2:6443", "ca.crt");
	assert_false(t_tls(a, "ip", NULL, &verify, NULL, 0));
	assert_int_equal(verify, X509_V_ERR_IP_ADDRESS_MISMATCH);
	kube_auth_free(a);

	/* the stranger CA alone does not trust the right server */
	a = t_url("https://localhost", "ca2.crt");
	assert_false(t_tls(a, "name", NULL, &verify, NULL, 0));
	assert_int_not_equal(verify, X509_V_OK);
	kube_auth_free(a);
}

/* ---- kubeconfig ---- */

/* A kubeconfig with one context; `cluster` and `user` are YAML lines at 4 spaces. */
static const char *
t_kubeconfig(const char *file, const char *cluster, const char *user)
{
	char *doc;
	const char *path;

	assert_true(asprintf(&doc,
			     "apiVersion: v1\n"
			     "kind: Config\n"
			     "current-context: dev\n"
			     "clusters:\n"
			     "- name: other\n"
			     "  cluster:\n"
			     "    server: https://wrong.example\n"
			     "- name: c1\n"
			     "  cluster:\n"
			     "%s"
			     "contexts:\n"
			     "- name: dev\n"
			     "  context:\n"
			     "    cluster: c1\n"
			     "    user: u1\n"
			     "    namespace: kube-system\n"
			     "users:\n"
			     "- name: u1\n"
			     "  user:\n"
			     "%s",
			     cluster, user) > 0);
	path = t_write(file, doc);
	free(doc);
	return path;
}

static void
test_kubeconfig_token_ca_data(void **state)
{
	char *ca = t_b64("ca.crt"), *cluster;
	struct kube_auth_config cfg = {0};
	struct kube_auth *a;
	long verify;

	(void)state;
	assert_true(asprintf(&cluster,
			     "    server: https://127.0.0.1:6443/\n"
			     "    certificate-authority-data: %s\n",
			     ca) > 0);
	cfg.kubeconfig = t_kubeconfig("kc-token", cluster, "    token: \"kc-secret\"\n");
	a = t_new_ok(&cfg);
	assert_string_equal(kube_auth_host(a), "127.0.0.1");
	assert_int_equal(kube_auth_port(a), 6443);
	assert_string_equal(kube_auth_header(a, 0), "Bearer kc-secret");
	assert_string_equal(kube_auth_header(a, 100000), "Bearer kc-secret");
	assert_false(kube_auth_unauthorized(a));
	assert_non_null(strstr(kube_auth_describe(a), "context dev"));
	assert_true(t_tls(a, "ip", NULL, &verify, NULL, 0));
	assert_false(t_tls(a, "other", NULL, &verify, NULL, 0));
	kube_auth_free(a);

	/* --kube-api-url overrides the server, as kubectl's --server does */
	cfg.api_url = "https://localhost:7443";
	a = t_new_ok(&cfg);
	assert_string_equal(kube_auth_host(a), "localhost");
	assert_true(t_tls(a, "name", NULL, &verify, NULL, 0));
	kube_auth_free(a);
	free(cluster);
	free(ca);
}

static void
test_kubeconfig_relative_files(void **state)
{
	struct kube_auth_config cfg = {0};
	struct kube_auth *a;
	char cwd[PATH_MAX];
	long verify;

	(void)state;
	mkdir(t_path("kdir"), 0700);
	t_write("kdir/ca.pem", t_read("ca.crt"));
	t_write("kdir/tok", "from-file\n");
	cfg.kubeconfig = t_kubeconfig("kdir/config",
				      "    server: https://localhost\n"
				      "    certificate-authority: ca.pem\n",
				      "    tokenFile: tok\n");
	/* relative to the kubeconfig, not to the working directory */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir("/"), 0);
	a = t_new_ok(&cfg);
	assert_int_equal(chdir(cwd), 0);
	assert_string_equal(kube_auth_header(a, 0), "Bearer from-file");
	t_write("kdir/tok", "rotated\n");
	assert_string_equal(kube_auth_header(a, KUBE_AUTH_TOKEN_REREAD_S), "Bearer rotated");
	assert_true(t_tls(a, "name", NULL, &verify, NULL, 0));
	kube_auth_free(a);
}

static void
test_kubeconfig_client_cert(void **state)
{
	char *crt = t_b64("client.crt"), *key = t_b64("client.key"), *key2 = t_b64("ip.key");
	char *user, cluster[PATH_MAX + 64], err[1024];
	struct kube_auth_config cfg = {0};
	struct kube_auth *a;
	long verify;

	(void)state;
	snprintf(cluster, sizeof(cluster),
		 "    server: https://localhost:6443\n"
		 "    certificate-authority: %s\n",
		 t_path("ca.crt"));
	assert_true(asprintf(&user,
			     "    client-certificate-data: %s\n"
			     "    client-key-data: %s\n",
			     crt, key) > 0);
	cfg.kubeconfig = t_kubeconfig("kc-cert", cluster, user);
	a = t_new_ok(&cfg);
	assert_null(kube_auth_header(a, 0));
	/* the server demands a certificate from our CA and gets it */
	assert_true(t_tls(a, "name", "ca.crt", &verify, NULL, 0));
	/* and refuses us when it trusts another CA */
	assert_false(t_tls(a, "name", "ca2.crt", &verify, NULL, 0));
	kube_auth_free(a);
	free(user);

	/* file forms */
	assert_true(asprintf(&user,
			     "    client-certificate: client.crt\n"
			     "    client-key: %s\n",
			     t_path("client.key")) > 0);
	cfg.kubeconfig = t_kubeconfig("kc-cert-files", cluster, user);
	a = t_new_ok(&cfg);
	assert_true(t_tls(a, "name", "ca.crt", &verify, NULL, 0));
	kube_auth_free(a);
	free(user);

	/* a key that is not the certificate's */
	assert_true(asprintf(&user,
			     "    client-certificate-data: %s\n"
			     "    client-key-data: %s\n",
			     crt, key2) > 0);
	cfg.kubeconfig = t_kubeconfig("kc-cert-bad", cluster, user);
	assert_int_equal(t_new_err(&cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "does not match"));
	free(user);

	/* an encrypted key fails at once instead of asking for a passphrase */
	assert_true(asprintf(&user,
			     "    client-certificate-data: %s\n"
			     "    client-key: client-enc.key\n",
			     crt) > 0);
	cfg.kubeconfig = t_kubeconfig("kc-cert-enc", cluster, user);
	assert_int_equal(t_new_err(&cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "client key"));
	assert_non_null(strstr(err, "client-enc.key"));
	assert_null(strstr(err, "does not match"));
	free(user);

	/* a certificate without its key */
	assert_true(asprintf(&user, "    client-certificate-data: %s\n", crt) > 0);
	cfg.kubeconfig = t_kubeconfig("kc-cert-nokey", cluster, user);
	assert_int_equal(t_new_err(&cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "key"));
	free(user);
	free(crt);
	free(key);
	free(key2);
}

/* kubectl reads JSON kubeconfigs too (JSON is YAML) */
static void
test_kubeconfig_json(void **state)
{
	struct kube_auth_config cfg = {0};
	struct kube_auth *a;
	char *doc, *ca = t_b64("ca.crt");
	long verify;

	(void)state;
	assert_true(asprintf(&doc,
			     "{\"apiVersion\": \"v1\", \"kind\": \"Config\", "
			     "\"current-context\": \"j\", "
			     "\"contexts\": [{\"name\": \"j\", \"context\": "
			     "{\"cluster\": \"jc\", \"user\": \"ju\"}}], "
			     "\"clusters\": [{\"name\": \"jc\", \"cluster\": {\"server\": "
			     "\"https://[::1]:6443\", \"certificate-authority-data\": \"%s\"}}], "
			     "\"users\": [{\"name\": \"ju\", \"user\": {\"token\": \"jt\"}}]}\n",
			     ca) > 0);
	cfg.kubeconfig = t_write("kc-json", doc);
	a = t_new_ok(&cfg);
	assert_string_equal(kube_auth_host(a), "::1");
	assert_string_equal(kube_auth_header(a, 0), "Bearer jt");
	assert_true(t_tls(a, "ip6", NULL, &verify, NULL, 0));
	kube_auth_free(a);
	free(doc);
	free(ca);
}

static void
test_kubeconfig_insecure(void **state)
{
	struct kube_auth_config cfg = {0};
	struct kube_auth *a;
	long verify;

	(void)state;
	cfg.kubeconfig = t_kubeconfig("kc-insecure",
				      "    server: https://127.0.0.1:6443\n"
				      "    insecure-skip-tls-verify: true\n",
				      "    token: t\n");
	a = t_new_ok(&cfg);
	{
		SSL *ssl = kube_auth_ssl_new(a);

		assert_int_equal(SSL_get_verify_mode(ssl), SSL_VERIFY_NONE);
		SSL_free(ssl);
	}
	/* a certificate from an unknown CA, for another name: accepted */
	assert_true(t_tls(a, "other", NULL, &verify, NULL, 0));
	kube_auth_free(a);
}

static void
test_kubeconfig_tls_server_name(void **state)
{
	struct kube_auth_config cfg = {.ca_file = t_path("ca.crt")};
	struct kube_auth *a;
	char sni[64];
	long verify;

	(void)state;
	cfg.kubeconfig = t_kubeconfig("kc-sni",
				      "    server: https://127.0.0.1:6443\n"
				      "    tls-server-name: localhost\n",
				      "    token: t\n");
	a = t_new_ok(&cfg);
	assert_true(t_tls(a, "name", NULL, &verify, sni, sizeof(sni)));
	assert_string_equal(sni, "localhost");
	assert_false(t_tls(a, "ip", NULL, &verify, NULL, 0));
	kube_auth_free(a);
}

static void
test_kubeconfig_unsupported(void **state)
{
	static const struct {
		const char *user, *want;
	} cases[] = {
		{"    exec:\n"
		 "      apiVersion: client.authentication.k8s.io/v1beta1\n"
		 "      command: /usr/local/bin/aws\n"
		 "      args: [eks, get-token, --cluster-name, x]\n",
		 "user \"u1\" uses an exec plugin (aws) which kubemasq does not run; run `kubectl "
		 "proxy` and use --kube-api-url=http://127.0.0.1:8001"},
		{"    auth-provider:\n"
		 "      name: gcp\n",
		 "auth-provider plugin (gcp)"},
		{"    username: admin\n"
		 "    password: secret\n",
		 "basic authentication"},
	};
	struct kube_auth_config cfg = {0};
	char err[1024];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cfg.kubeconfig =
			t_kubeconfig("kc-plugin", "    server: https://localhost\n", cases[i].user);
		assert_int_equal(t_new_err(&cfg, err, sizeof(err)), -ENOTSUP);
		if (!strstr(err, cases[i].want))
			fail_msg("case %zu: %s", i, err);
		assert_non_null(strstr(err, "kc-plugin"));
	}
}

static void
test_kubeconfig_bad(void **state)
{
	static const struct {
		const char *doc, *want;
		int r;
	} cases[] = {
		{"apiVersion: v1\nclusters: []\n", "no current-context", -EINVAL},
		{"current-context: nope\ncontexts: []\n", "\"nope\" is not in contexts", -EINVAL},
		{"current-context: a\ncontexts:\n- name: a\n  context: {cluster: x, user: y}\n",
		 "cluster \"x\" is not in clusters", -EINVAL},
		{"current-context: a\ncontexts:\n- name: a\n  context: {cluster: x, user: y}\n"
		 "clusters:\n- name: x\n  cluster: {server: 'https://h'}\n",
		 "user \"y\" is not in users", -EINVAL},
		{"current-context: a\ncontexts:\n- name: a\n  context: {cluster: x}\n"
		 "clusters:\n- name: x\n  cluster: {insecure-skip-tls-verify: true}\n",
		 "has no server", -EINVAL},
		{"current-context: a\ncontexts:\n- name: a\n  context: {cluster: x}\n"
		 "clusters:\n- name: x\n  cluster: {server: 'https://h', "
		 "certificate-authority-data: '!!!notbase64'}\n",
		 "not base64", -EINVAL},
		{"current-context: a\ncontexts:\n- name: a\n  context: {cluster: x}\n"
		 "clusters:\n- name: x\n  cluster: {server: 'ftp://h'}\n",
		 "not an http:// or https:// URL", -EINVAL},
		{"current-context: a\ncontexts:\n- name: a\n  context: {cluster: x}\n"
		 "clusters:\n- name: x\n  cluster: {server: 'https://h', "
		 "insecure-skip-tls-verify: yes, certificate-authority: /ca.crt}\n",
		 "both insecure-skip-tls-verify and a certificate-authority", -EINVAL},
		{"clusters: &c\n- name: x\ncurrent-context: a\nmore: *c\n", "aliases", -EINVAL},
		{"a: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]"
		 "]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
		 "nested deeper", -EINVAL},
		{"current-context: [unclosed\n", "not YAML", -EINVAL},
		{"- just\n- a list\n", "not a kubeconfig", -EINVAL},
		{"", "not a kubeconfig", -EINVAL},
	};
	struct kube_auth_config cfg = {0};
	char err[1024];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cfg.kubeconfig = t_write("kc-bad", cases[i].doc);
		assert_int_equal(t_new_err(&cfg, err, sizeof(err)), cases[i].r);
		if (!strstr(err, cases[i].want) || !strstr(err, "kc-bad"))
			fail_msg("case %zu: %s", i, err);
	}
	cfg.kubeconfig = t_path("kc-missing");
	assert_int_equal(t_new_err(&cfg, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "kc-missing"));
}

static void
test_kubeconfig_oversize(void **state)
{
	struct kube_auth_config cfg = {0};
	char *big = malloc(KUBE_AUTH_MAX_FILE + 2), err[512];

	(void)state;
	assert_non_null(big);
	memset(big, '#', KUBE_AUTH_MAX_FILE + 1);
	big[KUBE_AUTH_MAX_FILE + 1] = '\0';
	cfg.kubeconfig = t_write("kc-big", big);
	assert_int_equal(t_new_err(&cfg, err, sizeof(err)), -EFBIG);
	assert_non_null(strstr(err, "kc-big"));
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_good),
		cmocka_unit_test(test_url_describe),
		cmocka_unit_test(test_url_bad),
		cmocka_unit_test(test_in_cluster),
		cmocka_unit_test(test_in_cluster_ipv6),
		cmocka_unit_test(test_in_cluster_errors),
		cmocka_unit_test(test_in_cluster_overrides),
		cmocka_unit_test(test_token_reread),
		cmocka_unit_test(test_token_oversize),
		cmocka_unit_test(test_token_odd_files),
		cmocka_unit_test(test_tls_verify),
		cmocka_unit_test(test_kubeconfig_token_ca_data),
		cmocka_unit_test(test_kubeconfig_relative_files),
		cmocka_unit_test(test_kubeconfig_client_cert),
		cmocka_unit_test(test_kubeconfig_json),
		cmocka_unit_test(test_kubeconfig_insecure),
		cmocka_unit_test(test_kubeconfig_tls_server_name),
		cmocka_unit_test(test_kubeconfig_unsupported),
		cmocka_unit_test(test_kubeconfig_bad),
		cmocka_unit_test(test_kubeconfig_oversize),
	};

	return cmocka_run_group_tests(tests, t_setup, t_teardown);
}
