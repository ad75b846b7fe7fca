/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * store_ptr.c - the kube store's PTR index (store.h, store_impl.h): every ClusterIP and ready
 * endpoint address -> the (service, label) pairs it belongs to, and the bracket that keeps it
 * in step with a service change. The index has an entry per endpoint, so it is an
 * open-addressing table of pointers (linear probing, backward-shift deletion) rather than a
 * uthash, whose 56-byte handle would double each entry. A change to a service takes its
 * pairs out (kube_store_ptr_begin), lets the caller change the service, puts the new pairs
 * in (kube_store_ptr_end) and reports the reverse names whose pairs differ, found by
 * diffing the two sorted lists.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "kube/store_impl.h"

/* A PTR pair of one service, for diffing a service's reverse names across a change. */
struct kube_store_ptr_pair {
	struct kube_ip ip;
	const char *label;
};

/* ---- the PTR index ------------------------------------------------------------------------ */

static size_t
kube_store_ptr_home(const struct kube_store *s, const struct kube_ip *ip)
{
	return kube_store_hash(s, ip, sizeof(*ip)) & s->ptab_mask;
}

/* The slot holding ip, or the empty slot where it would go. The table is never full. */
static size_t
kube_store_ptr_slot(const struct kube_store *s, const struct kube_ip *ip)
{
	size_t i = kube_store_ptr_home(s, ip);

	while (s->ptab[i] && kube_store_ip_cmp(&s->ptab[i]->ip, ip) != 0)
		i = (i + 1) & s->ptab_mask;
	return i;
}

static struct kube_store_ptr_ent *
kube_store_ptr_find(const struct kube_store *s, const struct kube_ip *ip)
{
	return s->ptab ? s->ptab[kube_store_ptr_slot(s, ip)] : NULL;
}

static int
kube_store_ptr_grow(struct kube_store *s)
{
	size_t cap = s->ptab ? 2 * (s->ptab_mask + 1) : 64, old = s->ptab ? s->ptab_mask + 1 : 0;
	struct kube_store_ptr_ent **t = calloc(cap, sizeof(*t)), **ot = s->ptab;

	if (!t)
		return -ENOMEM;
	s->ptab = t;
	s->ptab_mask = cap - 1;
	for (size_t i = 0; i < old; i++)
		if (ot[i])
			t[kube_store_ptr_slot(s, &ot[i]->ip)] = ot[i];
	free(ot);
	return 0;
}

/* Backward-shift deletion: no tombstones, so probe chains never outgrow the live entries. */
static void
kube_store_ptr_unslot(struct kube_store *s, size_t i)
{
	size_t j = i;

	for (;;) {
		size_t k;

		j = (j + 1) & s->ptab_mask;
		if (!s->ptab[j])
			break;
		k = kube_store_ptr_home(s, &s->ptab[j]->ip);
		/* ptab[j] may fill the hole at i unless its home lies cyclically in (i, j] */
		if (j > i ? (k <= i || k > j) : (k <= i && k > j)) {
			s->ptab[i] = s->ptab[j];
			i = j;
		}
	}
	s->ptab[i] = NULL;
	s->ptab_used--;
}

static struct kube_ptr *
kube_store_ptr_ref(struct kube_store_ptr_ent *e, uint32_t i)
{
	return i == 0 ? &e->first : &e->more[i - 1];
}

static int
kube_store_ptr_add(struct kube_store *s, const struct kube_ip *ip, const struct kube_service *svc,
		   const char *label)
{
	struct kube_store_ptr_ent *e = kube_store_ptr_find(s, ip);
	struct kube_ptr *more;

	if (!e) {
		if (!s->ptab || (s->ptab_used + 1) * 4 > (s->ptab_mask + 1) * 3)
			if (kube_store_ptr_grow(s) < 0)
				return -ENOMEM;
		e = calloc(1, sizeof(*e));
		if (!e)
			return -ENOMEM;
		e->ip = *ip;
		e->n = 1;
		e->first = (struct kube_ptr){.svc = svc, .label = label};
		s->ptab[kube_store_ptr_slot(s, ip)] = e;
		s->ptab_used++;
		return 0;
	}
	more = realloc(e->more, e->n * sizeof(*more));
	if (!more)
		return -ENOMEM;
	e->more = more;
	more[e->n - 1] = (struct kube_ptr){.svc = svc, .label = label};
	e->n++;
	return 0;
}

static void
kube_store_ptr_del(struct kube_store *s, const struct kube_ip *ip, const struct kube_service *svc,
		   const char *label)
{
	size_t slot = s->ptab ? kube_store_ptr_slot(s, ip) : 0;
	struct kube_store_ptr_ent *e = s->ptab ? s->ptab[slot] : NULL;
	uint32_t i;

	if (!e)
		return;
	for (i = 0; i < e->n; i++) {
		struct kube_ptr *r = kube_store_ptr_ref(e, i);

		if (r->svc == svc && r->label == label)
			break;
	}
	if (i == e->n)
		return;
	*kube_store_ptr_ref(e, i) = *kube_store_ptr_ref(e, e->n - 1);
	if (--e->n == 0) {
		kube_store_ptr_unslot(s, slot);
		free(e->more);
		free(e);
	} else if (e->n == 1) {
		free(e->more);
		e->more = NULL;
	}
}

static int
kube_store_ptr_pair_cmp(const void *a, const void *b)
{
	const struct kube_store_ptr_pair *x = a, *y = b;
	int c = kube_store_ip_cmp(&x->ip, &y->ip);

	if (c || x->label == y->label)
		return c;
	if (!x->label || !y->label)
		return x->label ? 1 : -1;
	return strcmp(x->label, y->label);
}

/* ---- publishing a service: PTR entries and change reports --------------------------------- */

/* Called for one PTR pair of a service; ctx is the walk's. */
typedef int kube_store_ptr_walk_fn(struct kube_store *s, void *ctx, const struct kube_ip *ip,
				   const struct kube_service *svc, const char *label);

/* Every ClusterIP (label NULL) and every ready endpoint address (CoreDNS indexes only ready
 * addresses) of a visible service, through fn; -ENOMEM if fn failed for any. */
static int
kube_store_ptr_walk(struct kube_store *s, const struct kube_service *svc,
		    kube_store_ptr_walk_fn *fn, void *ctx)
{
	const struct kube_store_svc_desc *d = svc->desc;
	int err = 0;

	if (!d)
		return 0;
	for (size_t i = 0; d->kind == KUBE_SERVICE_CLUSTER_IP && i < d->n_ips; i++)
		if (fn(s, ctx, &d->ips[i], svc, NULL) < 0)
			err = -ENOMEM;
	for (size_t i = 0; i < svc->n_eps; i++)
		for (size_t j = 0; svc->eps[i].ready && j < svc->eps[i].n_ips; j++)
			if (fn(s, ctx, &svc->eps[i].ips[j], svc, svc->eps[i].label) < 0)
				err = -ENOMEM;
	return err;
}

static int
kube_store_ptr_walk_add(struct kube_store *s, void *ctx, const struct kube_ip *ip,
			const struct kube_service *svc, const char *label)
{
	(void)ctx;
	return kube_store_ptr_add(s, ip, svc, label);
}

static int
kube_store_ptr_walk_del(struct kube_store *s, void *ctx, const struct kube_ip *ip,
			const struct kube_service *svc, const char *label)
{
	(void)ctx;
	kube_store_ptr_del(s, ip, svc, label);
	return 0;
}

static int
kube_store_ptr_walk_report(struct kube_store *s, void *ctx, const struct kube_ip *ip,
			   const struct kube_service *svc, const char *label)
{
	(void)ctx;
	(void)svc;
	(void)label;
	kube_store_report_ip(s, ip);
	return 0;
}

/* Collecting pairs: counts them while p is NULL, then fills p. */
struct kube_store_ptr_list {
	struct kube_store_ptr_pair *p;
	size_t n;
};

static int
kube_store_ptr_walk_list(struct kube_store *s, void *ctx, const struct kube_ip *ip,
			 const struct kube_service *svc, const char *label)
{
	struct kube_store_ptr_list *l = ctx;

	(void)s;
	(void)svc;
	if (l->p)
		l->p[l->n] = (struct kube_store_ptr_pair){.ip = *ip, .label = label};
	l->n++;
	return 0;
}

/* svc's PTR pairs, sorted, in a new array (NULL when none); -ENOMEM. */
static int
kube_store_ptr_pairs(struct kube_store *s, const struct kube_service *svc,
		     struct kube_store_ptr_pair **out, size_t *n_out)
{
	struct kube_store_ptr_list l = {0};

	*out = NULL;
	*n_out = 0;
	kube_store_ptr_walk(s, svc, kube_store_ptr_walk_list, &l);
	if (!l.n)
		return 0;
	l.p = malloc(l.n * sizeof(*l.p));
	if (!l.p)
		return -ENOMEM;
	l.n = 0;
	kube_store_ptr_walk(s, svc, kube_store_ptr_walk_list, &l);
	qsort(l.p, l.n, sizeof(*l.p), kube_store_ptr_pair_cmp);
	*out = l.p;
	*n_out = l.n;
	return 0;
}

void
kube_store_ptr_begin(struct kube_store *s, struct kube_service *svc,
		     struct kube_store_ptr_before *b)
{
	memset(b, 0, sizeof(*b));
	if (!svc)
		return;
	if (kube_store_ptr_pairs(s, svc, &b->pairs, &b->n) < 0) {
		b->failed = true;
		kube_store_ptr_walk(s, svc, kube_store_ptr_walk_report, NULL);
	}
	kube_store_ptr_walk(s, svc, kube_store_ptr_walk_del, NULL);
}

int
kube_store_ptr_end(struct kube_store *s, struct kube_service *svc, struct kube_store_ptr_before *b,
		   bool changed)
{
	const struct kube_ip *last = NULL;
	struct kube_store_ptr_pair *n = NULL;
	size_t nn = 0, i = 0, j = 0;
	int err;

	if (!svc)
		return 0;
	err = kube_store_ptr_walk(s, svc, kube_store_ptr_walk_add, NULL);
	if (kube_store_ptr_pairs(s, svc, &n, &nn) < 0 || b->failed) {
		/* cannot diff: report every name on both sides */
		kube_store_ptr_walk(s, svc, kube_store_ptr_walk_report, NULL);
		for (i = 0; i < b->n; i++)
			kube_store_report_ip(s, &b->pairs[i].ip);
		i = b->n;
		j = nn;
	}
	while (i < b->n || j < nn) {
		const struct kube_store_ptr_pair *o = b->pairs;
		int c = i == b->n ? 1 : j == nn ? -1 : kube_store_ptr_pair_cmp(&o[i], &n[j]);
		const struct kube_ip *ip;

		if (c == 0) {
			i++;
			j++;
			continue;
		}
		ip = c < 0 ? &o[i++].ip : &n[j++].ip;
		if (!last || kube_store_ip_cmp(last, ip) != 0)
			kube_store_report_ip(s, ip);
		last = ip;
	}
	if (changed)
		kube_store_report_svc(s, svc);
	free(n);
	free(b->pairs);
	memset(b, 0, sizeof(*b));
	return err;
}

/* ClusterIP pairs first: CoreDNS answers a ClusterIP's PTR before looking at endpoints. */
size_t
kube_store_ptr(const struct kube_store *s, const struct kube_ip *ip, struct kube_ptr *out,
	       size_t max)
{
	struct kube_store_ptr_ent *e;
	struct kube_ip n;
	size_t k = 0;

	if (!ip || !kube_store_ip_norm(&n, ip) || !(e = kube_store_ptr_find(s, &n)))
		return 0;
	for (int pass = 0; pass < 2; pass++)
		for (uint32_t i = 0; i < e->n && k < max; i++) {
			struct kube_ptr *r = kube_store_ptr_ref(e, i);

			if ((r->label == NULL) == (pass == 0))
				out[k++] = *r;
		}
	return k;
}
