/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * store_impl.h - what the kube store's files share and nothing outside them sees: the stored
 * objects and the store itself, the keyed-table macros, and the functions one file of the
 * store offers the others. store.c holds the tables, validation, change reports, namespaces,
 * pods and the life cycle; store_svc.c the Services; store_slice.c the EndpointSlices and the
 * merge of a service's slices into its endpoints; store_ptr.c the PTR index and the reverse
 * names a service change reports. The public interface is store.h.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A failed allocation must not exit the daemon: uthash then leaves the item out of the table
 * (hh.tbl == NULL), which we check after every add. */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

#include "kubemasq/hash.h"
#include "kube/store.h"

#define STORE_LABEL_MAX 63
#define STORE_NAME_MAX 253 /* Kubernetes object names (DNS subdomains) */
#define STORE_KEY_MAX (STORE_LABEL_MAX + 1 + STORE_NAME_MAX)
#define STORE_PROTO_MAX 15
#define STORE_NKINDS 4

struct kube_store_ns {
	UT_hash_handle hh;
	uint32_t gen;
	uint8_t len;
	char name[];
};

/* What a Service says of itself, in one allocation: this header, then ports, ips, strings. */
struct kube_store_svc_desc {
	enum kube_service_kind kind;
	const char *external_name;
	struct kube_port *ports;
	size_t n_ports;
	struct kube_ip *ips;
	size_t n_ips;
};

/* One endpoint of a slice: its IPs are data->ips[ip_idx .. ip_idx + n_ips). */
struct kube_store_slice_ep {
	const char *label;
	uint32_t ip_idx;
	uint8_t n_ips;
	bool ready;
};

/* What a slice holds, in one allocation: this header, then eps, ports, ips, strings. */
struct kube_store_slice_data {
	struct kube_store_slice_ep *eps;
	size_t n_eps;
	struct kube_port *ports;
	size_t n_ports;
	struct kube_ip *ips;
	size_t n_ips;
};

struct kube_store_slice {
	UT_hash_handle hh;
	struct kube_store_slice_data *data;
	struct kube_service *svc;
	struct kube_store_slice *svc_next; /* the service's slice list */
	uint32_t gen;
	uint16_t key_len;
	char key[]; /* "ns\0name" */
};

struct kube_service {
	UT_hash_handle hh;
	struct kube_store_svc_desc *desc; /* NULL while a placeholder */
	struct kube_store_slice *slices;
	struct kube_endpoint *eps; /* merged, sorted by label then first IP */
	struct kube_ip *pool;	   /* IPs of endpoints that lost some to dedup */
	struct kube_port *uports;  /* union of the slices' named ports */
	const char *name;	   /* inside key */
	uint32_t n_eps;		   /* the merge refuses more */
	uint32_t n_uports;	   /* <= KUBE_MAX_PORTS */
	uint32_t gen;
	uint16_t key_len;
	char key[]; /* "ns\0name" */
};

/* PTR index entry: every (service, label) that an address belongs to. The index holds one
 * per ClusterIP and endpoint address, so it is an open-addressing table of pointers rather
 * than a uthash (whose 56-byte handle would double the entry). */
struct kube_store_ptr_ent {
	struct kube_ptr *more; /* refs after the first: n - 1 of them */
	uint32_t n;
	struct kube_ptr first;
	struct kube_ip ip; /* key */
};

struct kube_store_pod {
	UT_hash_handle hh;
	struct kube_ip *ips; /* an allocation of its own */
	uint32_t gen;
	uint16_t key_len;
	uint8_t n_ips;
	char key[];
};

/* --kube-pods=verified index: (ip, lower-case namespace) -> how many pods have it. */
struct kube_store_podip {
	UT_hash_handle hh;
	uint32_t count;
	uint16_t key_len;
	uint8_t key[];
};

struct kube_store {
	struct kube_store_ns *nss;
	struct kube_service *svcs;
	struct kube_store_slice *slices;
	struct kube_store_pod *pods;
	struct kube_store_podip *podips;
	struct kube_store_ptr_ent **ptab; /* linear probing, at most 3/4 full */
	size_t ptab_mask, ptab_used;
	kube_store_change_fn *changed;
	kube_store_moved_fn *moved;
	void *ctx;
	bool pod_names;
	uint64_t key[2];
	size_t n_nss, n_svcs, n_slices, n_eps, n_pods;
	uint32_t serial;
	uint32_t gen[STORE_NKINDS];
	uint8_t zone_len;
	uint8_t zone[255]; /* lower-case wire, without the root label */
};

/* A service's merged state, built aside so a failed allocation leaves the old one intact. */
struct kube_store_slice_merged {
	struct kube_endpoint *eps;
	size_t n_eps;
	struct kube_ip *pool;
	struct kube_port *uports;
	size_t n_uports;
};

struct kube_store_ptr_pair;

/* A service's PTR pairs before a change (kube_store_ptr_begin); `failed`: they could not be
 * listed, so every reverse name was reported at capture time instead of diffed. */
struct kube_store_ptr_before {
	struct kube_store_ptr_pair *pairs;
	size_t n;
	bool failed;
};

/* ---- keyed tables (uthash is generic by macro, so these are macros too) ------------------- */

/* Hot on every lookup and every PTR probe: inline here rather than a call into store.c. */
static inline unsigned
kube_store_hash(const struct kube_store *s, const void *data, size_t len)
{
	uint64_t m = hash_siphash13(s->key, data, len);

	return (unsigned)(m ^ (m >> 32));
}

static inline char
kube_store_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static inline int
kube_store_ip_cmp(const struct kube_ip *a, const struct kube_ip *b)
{
	return memcmp(a, b, sizeof(*a));
}

/* out = the object of table `head` keyed by key[0..len), or NULL. */
#define KUBE_STORE_FIND(s, head, key, len, out)                                                    \
	HASH_FIND_BYHASHVALUE(hh, head, key, len, kube_store_hash(s, key, len), out)

/* obj = a new zeroed object whose flexible `key` holds key[0..len) and a NUL, added to table
 * `head`; NULL when out of memory (nothing added then). The key starts in the struct's tail
 * padding rather than after it: with a key per object, those bytes add up. */
#define KUBE_STORE_NEW(s, head, obj, key, len)                                                     \
	do {                                                                                       \
		size_t sz_ = offsetof(__typeof__(*(obj)), key) + (len) + 1;                        \
                                                                                                   \
		(obj) = calloc(1, sz_ > sizeof(*(obj)) ? sz_ : sizeof(*(obj)));                    \
		if (!(obj))                                                                        \
			break;                                                                     \
		memcpy((obj)->key, key, len);                                                      \
		(obj)->key_len = (uint16_t)(len);                                                  \
		HASH_ADD_KEYPTR_BYHASHVALUE(hh, head, (obj)->key, len,                             \
					    kube_store_hash(s, key, len), obj);                    \
		if (!(obj)->hh.tbl) {                                                              \
			free(obj);                                                                 \
			(obj) = NULL;                                                              \
		}                                                                                  \
	} while (0)

/* out = the object of table `head` named ns/name as a delete names it (NUL-terminated; name of
 * at most name_max bytes), or NULL. */
#define KUBE_STORE_FIND_NAMED(s, head, ns, name, name_max, out)                                    \
	do {                                                                                       \
		char k_[STORE_KEY_MAX + 1];                                                        \
		size_t l_ = kube_store_delkey(k_, ns, name, name_max);                             \
                                                                                                   \
		(out) = NULL;                                                                      \
		if (l_)                                                                            \
			KUBE_STORE_FIND(s, head, k_, l_, out);                                     \
	} while (0)

/* Empty table `head`, handing each object to free_fn. */
#define KUBE_STORE_FREE_ALL(head, free_fn)                                                         \
	do {                                                                                       \
		__typeof__(head) o_, t_;                                                           \
                                                                                                   \
		HASH_ITER(hh, head, o_, t_) {                                                      \
			HASH_DELETE(hh, head, o_);                                                 \
			free_fn(o_);                                                               \
		}                                                                                  \
	} while (0)

/* ---- store.c: validation and keys --------------------------------------------------------- */

bool kube_store_cstr_label_ok(const char *p, bool upper_ok);
bool kube_store_objname_ok(const char *p);
/* "ns\0name", lower-cased, into buf (STORE_KEY_MAX + 1 bytes); returns the length. */
size_t kube_store_mkkey(char *buf, const char *ns, size_t ns_len, const char *name,
			size_t name_len);
/* The same from NUL-terminated strings as a delete names them: 0 unless ns is a label and
 * name 1..name_max bytes. */
size_t kube_store_delkey(char *buf, const char *ns, const char *name, size_t name_max);
/* The address with the bytes its family does not use zeroed: usable as a hash key. */
bool kube_store_ip_norm(struct kube_ip *out, const struct kube_ip *in);
bool kube_store_ips_ok(const struct kube_ip *ips, size_t n, int family);
bool kube_store_ports_eq(const struct kube_port *a, size_t na, const struct kube_port *b,
			 size_t nb);
/* At most KUBE_MAX_PORTS, each with a valid protocol and an empty or label name. */
bool kube_store_ports_ok(const struct kube_port *ports, size_t n);
/* Only named ports with a number make SRV records; duplicates collapse onto the first. */
bool kube_store_port_keep(const struct kube_port *p, const struct kube_port *kept, size_t n_kept);
/* Copy the kept ports of src into dst, strings at *strp (room: kube_store_ports_strlen());
 * returns how many. */
size_t kube_store_ports_copy(struct kube_port *dst, const struct kube_port *src, size_t n,
			     char **strp);
size_t kube_store_ports_strlen(const struct kube_port *p, size_t n);
/* Objects of all kinds, against KUBE_STORE_MAX_OBJECTS. */
size_t kube_store_total(const struct kube_store *s);

/* ---- store.c: change reports -------------------------------------------------------------- */

/* Report "<l1>.<l2>.<l3>.<zone>." (l1 may be NULL). */
void kube_store_report3(struct kube_store *s, const char *l1, const char *l2, const char *l3);
void kube_store_report_svc(struct kube_store *s, const struct kube_service *svc);
/* d.c.b.a.in-addr.arpa. or the 32 nibbles of ip6.arpa. */
void kube_store_report_ip(struct kube_store *s, const struct kube_ip *ip);
/* The SOA serial moves with every change. */
void kube_store_bump(struct kube_store *s);

/* ---- store_svc.c -------------------------------------------------------------------------- */

struct kube_service *kube_store_svc_find(const struct kube_store *s, const char *key, size_t len);
/* The service entry for key, created as a placeholder when absent; NULL: -ENOMEM. */
struct kube_service *kube_store_svc_get(struct kube_store *s, const char *key, size_t len);
/* Free an entry already out of the table. */
void kube_store_svc_free(struct kube_service *svc);
/* Free a placeholder nothing refers to any more (svc may be NULL or still in use: no-op). */
void kube_store_svc_gc(struct kube_store *s, struct kube_service *svc);
/* Take a stored Service out (the entry stays a placeholder while slices name it). */
int kube_store_svc_remove(struct kube_store *s, struct kube_service *svc);

/* ---- store_slice.c ------------------------------------------------------------------------ */

/* Free a slice already out of the table. */
void kube_store_slice_free(struct kube_store_slice *sl);
/* Take slice sl out of the store, re-merging its service. */
void kube_store_slice_remove(struct kube_store *s, struct kube_store_slice *sl);
/* Replace svc's merged state by m's (m is left empty; an empty m frees svc's). */
void kube_store_slice_merged_install(struct kube_service *svc, struct kube_store_slice_merged *m);

/* ---- store_ptr.c -------------------------------------------------------------------------- */

/* Before changing svc (NULL: nothing): remember its PTR pairs and take them out of the index
 * (with the old labels, which stay readable until kube_store_ptr_end()). Never fails. */
void kube_store_ptr_begin(struct kube_store *s, struct kube_service *svc,
			  struct kube_store_ptr_before *b);
/* After changing svc: put its PTR pairs back, report the reverse names whose pairs changed,
 * and the service's own name when `changed`. -ENOMEM: some PTR entries are missing. */
int kube_store_ptr_end(struct kube_store *s, struct kube_service *svc,
		       struct kube_store_ptr_before *b, bool changed);