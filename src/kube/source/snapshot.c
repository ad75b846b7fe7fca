/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * snapshot.c - the cluster from a file: reads the List that
 * `kubectl get namespaces,services,endpointslices[,pods] -A -o json` prints (or one typed list:
 * ServiceList, EndpointSliceList, ... as the API server returns them), turns each item into the
 * store's object description (snapshot_obj.c, through snapshot_impl.h) and replaces the store's
 * four kinds with them. The whole document
 * is parsed and checked to be a List before the store is touched, so a broken file changes
 * nothing; an item that is wrong alone (missing or wrong-typed fields, bad IPs, over a cap, a
 * duplicate) is skipped and counted, and the first one is named for the caller's log line.
 * Duplicate keys inside one JSON object are accepted, the last one winning, as Go's
 * encoding/json (and so kubectl and the API server) reads them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <jansson.h>

#include "kubemasq/defs.h"
#include "kubemasq/log.h"
#include "kube/store.h"
#include "kube/source/snapshot.h"
#include "kube/source/snapshot_impl.h"

#define SNAPSHOT_READ_BUF (64 << 10) /* stdio buffer for the file */

/* The apiVersion each kind must carry; other versions (discovery.k8s.io/v1beta1) are ignored. */
static const char *const snapshot_kind_versions[SNAPSHOT_KINDS] = {
	[KUBE_KIND_NAMESPACE] = "v1",
	[KUBE_KIND_SERVICE] = "v1",
	[KUBE_KIND_SLICE] = "discovery.k8s.io/v1",
	[KUBE_KIND_POD] = "v1",
};

/* An item we cannot even classify: no kind, not an object. */
static void
snapshot_skip_item(struct snapshot *sn, size_t idx, const char *why)
{
	if (sn->res->skipped++)
		return;
	snprintf(sn->res->first_skip, sizeof(sn->res->first_skip), "item %zu: %s", idx, why);
}

/* ---- classification and duplicates: no store access ---- */

/*
 * What an item is: 0 with *kind for one of ours, -ENOENT for another kind or apiVersion
 * (ignored), -EINVAL when it cannot be told (sn->why). Items of a typed list (ServiceList)
 * carry no kind of their own: the list's kind and apiVersion are theirs.
 */
static int
snapshot_classify(struct snapshot *sn, const json_t *item, const char *def_kind,
		  const char *def_version, enum kube_kind *kind)
{
	const char *k, *v;

	if (!json_is_object(item))
		return snapshot_obj_why(sn, "not an object");
	if (snapshot_obj_opt_str(item, "kind", &k) || snapshot_obj_opt_str(item, "apiVersion", &v))
		return snapshot_obj_why(sn, "kind or apiVersion not a string");
	if (!k)
		k = def_kind;
	if (!v)
		v = def_version;
	if (!k)
		return snapshot_obj_why(sn, "no kind");
	for (int i = 0; i < SNAPSHOT_KINDS; i++) {
		if (strcmp(k, snapshot_obj_kind_names[i]) != 0)
			continue;
		if (!v || strcmp(v, snapshot_kind_versions[i]) != 0)
			return -ENOENT;
		*kind = (enum kube_kind)i;
		return 0;
	}
	return -ENOENT;
}

static int
snapshot_entry_cmp_key(const void *a, const void *b)
{
	const struct snapshot_entry *x = a, *y = b;
	int c;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	/* The store's keys are case-insensitive: so is a duplicate. */
	c = strcasecmp(x->ns ? x->ns : "", y->ns ? y->ns : "");
	if (!c)
		c = strcasecmp(x->name ? x->name : "", y->name ? y->name : "");
	if (c)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int
snapshot_entry_cmp_order(const void *a, const void *b)
{
	const struct snapshot_entry *x = a, *y = b;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Same kind and a usable key equal to the other's (case-insensitively, as the store keys). */
static bool
snapshot_same_key(const struct snapshot_entry *a, const struct snapshot_entry *b)
{
	if (a->kind != b->kind || !a->name || !b->name)
		return false;
	if (a->kind != KUBE_KIND_NAMESPACE && (!a->ns || !b->ns || strcasecmp(a->ns, b->ns) != 0))
		return false;
	return strcasecmp(a->name, b->name) == 0;
}

/* The second and later items with one key are skipped: the first one in the file wins. */
static void
snapshot_mark_duplicates(struct snapshot_entry *v, size_t n)
{
	qsort(v, n, sizeof(*v), snapshot_entry_cmp_key);
	for (size_t i = 1; i < n; i++)
		if (snapshot_same_key(&v[i], &v[i - 1]))
			v[i].why = "duplicate of an earlier item";
	qsort(v, n, sizeof(*v), snapshot_entry_cmp_order);
}

/*
 * The items of ours, classified, keyed and de-duplicated, in (kind, file) order; unclassifiable
 * items are counted as skipped and others as ignored. Returns 0 or -ENOMEM.
 */
static int
snapshot_collect(struct snapshot *sn, const json_t *items, const char *def_kind,
		 const char *def_version, struct snapshot_entry **out, size_t *n_out)
{
	size_t n = json_array_size(items), k = 0;
	struct snapshot_entry *v = calloc(n ? n : 1, sizeof(*v));
	enum kube_kind kind = KUBE_KIND_NAMESPACE;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		json_t *item = json_array_get(items, i);
		int r = snapshot_classify(sn, item, def_kind, def_version, &kind);

		if (r == -ENOENT) {
			sn->res->ignored++;
			continue;
		}
		if (r < 0) {
			snapshot_skip_item(sn, i, sn->why);
			continue;
		}
		v[k] = (struct snapshot_entry){.item = item, .kind = kind, .idx = i};
		snapshot_obj_entry_key(&v[k]);
		k++;
	}
	snapshot_mark_duplicates(v, k);
	*out = v;
	*n_out = k;
	return 0;
}

/* ---- the document ---- */

/* The List check: 0 with its items and the kind/apiVersion its items default to, or -EPROTO. */
static int
snapshot_list(const json_t *root, const char *name, json_t **items, const char **def_kind,
	      const char **def_version, char *err, size_t errlen)
{
	static const char *const typed[][2] = {
		{"NamespaceList", "Namespace"},
		{"ServiceList", "Service"},
		{"EndpointSliceList", "EndpointSlice"},
		{"PodList", "Pod"},
	};
	const char *kind = json_string_value(json_object_get(root, "kind"));

	*def_kind = NULL;
	*def_version = NULL;
	if (!json_is_object(root) || !kind) {
		log_errbuf(err, errlen, "%s: not a Kubernetes List (no kind)", name);
		return -EPROTO;
	}
	for (size_t i = 0; i < ARRAY_SIZE(typed); i++) {
		if (strcmp(kind, typed[i][0]) == 0) {
			*def_kind = typed[i][1];
			*def_version = json_string_value(json_object_get(root, "apiVersion"));
		}
	}
	if (!*def_kind && strcmp(kind, "List") != 0) {
		log_errbuf(err, errlen, "%s: kind \"%.64s\" is not a List", name, kind);
		return -EPROTO;
	}
	*items = json_object_get(root, "items");
	/* kubectl prints "items": [] for nothing; Go's encoder writes a nil list as null. */
	if (json_is_null(*items)) {
		*items = NULL;
		return 0;
	}
	if (!json_is_array(*items)) {
		log_errbuf(err, errlen, "%s: items is not an array", name);
		return -EPROTO;
	}
	return 0;
}

/* A parsed document into the store: the store is touched only once it is known to be a List. */
static int
snapshot_apply(struct kube_store *s, const json_t *root, const char *name,
	       struct kube_snapshot_result *res, char *err, size_t errlen)
{
	struct snapshot sn = {.s = s, .res = res};
	struct snapshot_entry *v;
	const char *def_kind, *def_version;
	json_t *items;
	size_t n;
	int r;

	r = snapshot_list(root, name, &items, &def_kind, &def_version, err, errlen);
	if (r < 0)
		return r;
	r = snapshot_collect(&sn, items, def_kind, def_version, &v, &n);
	if (r < 0) {
		memset(res, 0, sizeof(*res));
		log_errbuf(err, errlen, "%s: out of memory", name);
		return r;
	}
	for (int k = 0; k < SNAPSHOT_KINDS; k++)
		kube_store_replace_begin(s, (enum kube_kind)k);
	for (size_t i = 0; i < n; i++)
		snapshot_obj_apply_entry(&sn, &v[i]);
	for (int k = 0; k < SNAPSHOT_KINDS; k++)
		kube_store_replace_end(s, (enum kube_kind)k);
	free(v);
	return 0;
}

/* A jansson error as "NAME:LINE:COLUMN: text". */
static int
snapshot_parse_error(const json_error_t *je, const char *name, char *err, size_t errlen)
{
	if (je->line > 0)
		log_errbuf(err, errlen, "%s:%d:%d: %s", name, je->line, je->column, je->text);
	else
		log_errbuf(err, errlen, "%s: %s", name, je->text);
	return -EPROTO;
}

int
kube_snapshot_load_buffer(struct kube_store *s, const char *buf, size_t len, const char *name,
			  struct kube_snapshot_result *res, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root;
	int r;

	memset(res, 0, sizeof(*res));
	if (!name)
		name = "snapshot";
	if (len > KUBE_SNAPSHOT_MAX_BYTES) {
		log_errbuf(err, errlen, "%s: larger than %u bytes", name, KUBE_SNAPSHOT_MAX_BYTES);
		return -EFBIG;
	}
	root = json_loadb(buf, len, 0, &je);
	if (!root)
		return snapshot_parse_error(&je, name, err, errlen);
	r = snapshot_apply(s, root, name, res, err, errlen);
	json_decref(root);
	return r;
}

/* Reading the file for jansson, counting bytes: a file that grows past the cap is refused, and
 * a read asked to stop ends at the next block. */
struct snapshot_reader {
	FILE *f;
	const atomic_bool *stop;
	size_t total;
	int err;
};

static size_t
snapshot_read(void *buf, size_t buflen, void *data)
{
	struct snapshot_reader *rd = data;
	size_t n;

	if (rd->stop && atomic_load_explicit(rd->stop, memory_order_relaxed)) {
		rd->err = -ECANCELED;
		return (size_t)-1;
	}
	n = fread(buf, 1, buflen, rd->f);
	if (n == 0 && ferror(rd->f)) {
		rd->err = errno ? -errno : -EIO;
		return (size_t)-1;
	}
	rd->total += n;
	if (rd->total > KUBE_SNAPSHOT_MAX_BYTES) {
		rd->err = -EFBIG;
		return (size_t)-1;
	}
	return n;
}

/* Open `path` for reading: a regular file no larger than the cap. */
static int
snapshot_open(const char *path, FILE **out, char *err, size_t errlen)
{
	struct stat st;
	int fd, e;

	/* O_NONBLOCK: opening a FIFO must not hang the daemon before fstat refuses it. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		e = errno;
		log_errbuf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	if (fstat(fd, &st) < 0) {
		e = errno;
		log_errbuf(err, errlen, "%s: %s", path, strerror(e));
		close(fd);
		return -e;
	}
	if (!S_ISREG(st.st_mode)) {
		log_errbuf(err, errlen, "%s: not a regular file", path);
		close(fd);
		return -EINVAL;
	}
	if ((unsigned long long)st.st_size > KUBE_SNAPSHOT_MAX_BYTES) {
		log_errbuf(err, errlen, "%s: %lld bytes, larger than %u", path,
			   (long long)st.st_size, KUBE_SNAPSHOT_MAX_BYTES);
		close(fd);
		return -EFBIG;
	}
	*out = fdopen(fd, "r");
	if (!*out) {
		close(fd);
		log_errbuf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	setvbuf(*out, NULL, _IOFBF, SNAPSHOT_READ_BUF);
	return 0;
}

struct kube_snapshot_doc {
	json_t *root;
	char path[];
};

int
kube_snapshot_parse(const char *path, const atomic_bool *stop, struct kube_snapshot_doc **out,
		    char *err, size_t errlen)
{
	struct snapshot_reader rd = {.stop = stop};
	struct kube_snapshot_doc *doc;
	json_error_t je;
	json_t *root;
	int r;

	*out = NULL;
	r = snapshot_open(path, &rd.f, err, errlen);
	if (r < 0)
		return r;
	root = json_load_callback(snapshot_read, &rd, 0, &je);
	fclose(rd.f);
	if (!root && rd.err == -EFBIG) {
		log_errbuf(err, errlen, "%s: grew larger than %u bytes", path,
			   KUBE_SNAPSHOT_MAX_BYTES);
		return -EFBIG;
	}
	if (!root && rd.err) {
		log_errbuf(err, errlen, "%s: %s", path, strerror(-rd.err));
		return rd.err;
	}
	if (!root)
		return snapshot_parse_error(&je, path, err, errlen);
	doc = malloc(sizeof(*doc) + strlen(path) + 1);
	if (!doc) {
		json_decref(root);
		log_errbuf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	doc->root = root;
	strcpy(doc->path, path);
	*out = doc;
	return 0;
}

int
kube_snapshot_apply(struct kube_store *s, const struct kube_snapshot_doc *doc,
		    struct kube_snapshot_result *res, char *err, size_t errlen)
{
	memset(res, 0, sizeof(*res));
	return snapshot_apply(s, doc->root, doc->path, res, err, errlen);
}

void
kube_snapshot_doc_free(struct kube_snapshot_doc *doc)
{
	if (!doc)
		return;
	json_decref(doc->root);
	free(doc);
}

int
kube_snapshot_load(struct kube_store *s, const char *path, struct kube_snapshot_result *res,
		   char *err, size_t errlen)
{
	struct kube_snapshot_doc *doc;
	int r;

	memset(res, 0, sizeof(*res));
	r = kube_snapshot_parse(path, NULL, &doc, err, errlen);
	if (r < 0)
		return r;
	r = kube_snapshot_apply(s, doc, res, err, errlen);
	kube_snapshot_doc_free(doc);
	return r;
}
