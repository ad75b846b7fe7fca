/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cache.c - the answer cache: whole replies keyed by (lower-cased qname, qtype, qclass, DO, CD)
 * under a byte budget that counts every byte the cache holds from malloc, with LRU (CLOCK)
 * eviction (expired entries first), TTL aging on hits and RFC 2308 negative caching.
 *
 * Layout (chosen for <= 100 bytes of RSS per single-A entry):
 *
 * - One record per entry, no per-entry malloc: a 28-byte header (struct cache_rec), the TTL
 *   field offsets as uint16_t, then the reply image. The key is not stored apart: qname,
 *   qtype and qclass are the question inside the image (kept lower-cased; a hit writes the
 *   client's spelling into its copy), DO/CD live in the header flags.
 * - Records live in slab chunks, one size class per record size rounded up (4-byte steps to
 *   256 bytes, then 8 steps per power of two). A chunk is a 4-byte header (the id of the
 *   class's previous chunk) and `per` slots, per = (chunk_target - 4) / size (at least 1).
 *   Each class is kept dense: freeing a record moves the class's last record into the hole
 *   and fixes the three links that named it (LRU neighbours and hash chain predecessor), so
 *   a class never holds more than one partly used chunk and nothing fragments.
 * - Records are named by 32-bit handles: chunk id (18 bits) << 14 | byte offset / 4. LRU links
 *   and hash chains are handles, the chunk table maps ids to memory. 2^18 chunks of more than
 *   chunk_target/2 bytes bound the budget to 8 GiB (larger budgets are clamped).
 * - The index is chained hashing over a power-of-two array of uint32_t heads, keyed SipHash-1-3
 *   (kubemasq/hash.h) under a random key. The hash is not stored (4 bytes per entry saved): it is
 *   recomputed when the table doubles or halves (load factor 1 .. 1/4) and when a record moves.
 *   A batch caller hashes its keys first and prefetches buckets, then records (cache_prefetch):
 *   at a million entries a lookup is two cache misses (bucket, record), and overlapping them
 *   across a batch is what keeps hit throughput from falling with the cache's size.
 *
 * Accounting: bytes = sizeof(struct cache) + 4 * buckets + 8 * chunk table capacity
 *                   + 4 * owner buckets (once a zone is watched)
 *                   + sum over chunks of (4 + per * class size).
 * A single-A reply for "h12345.bench.test" (51-byte image, 1 TTL) is 28 + 2 + 51 = 81 -> an
 * 84-byte slot, plus 4..8 bytes of bucket array: ~89 bytes per entry at 200,000 entries.
 * With a budget of 256 MiB or more (the default is 1 GiB) chunks of up to 64 KiB take slots of
 * 2 MiB arenas that become huge pages when full (cache_arena.h says why), and each arena held
 * counts 2 MiB in place of its chunks' sizes.
 *
 * Time: the insert time is kept to the millisecond (seconds since the cache's epoch plus a
 * millisecond part) and the lifetime in seconds, so an entry expires exactly `lifetime`
 * seconds after it was stored. A TTL shown on a hit is min(TTL - elapsed, lifetime - elapsed),
 * never below 0: no client sees a TTL beyond the entry's expiry (--max-cache-ttl); with
 * --min-cache-ttl the records' TTLs are raised to it when stored, as dnsmasq shows them.
 *
 * Recency is LRU with a second chance (CLOCK): a hit sets a bit in its record instead of moving
 * it to the head, because the move writes the two neighbours - two more cache misses per hit
 * among a million entries. A marked record that reaches the tail moves to the head once.
 *
 * Renewal: an entry from a source that reports its changes (the kube store) is not dropped when
 * it expires if the source has not changed since it was stored: the source would build the same
 * reply, so the entry is stamped anew and served (cache_put_renewable). One timestamp per cache
 * (the last change) decides it, so it costs no bytes per entry and nothing on an unexpired hit.
 *
 * Serve-stale (limits.stale, --use-stale-cache): an expired entry within stale_max seconds past
 * its expiry is kept rather than dropped on lookup, reported as -ESTALE, and served by
 * cache_get_stale() with TTL stale_ttl; entries from a renewable source never are (the kube
 * store's answers are renewed or invalidated). The check sits on the expired branch only, so
 * the hit path is unchanged; kept entries stay evictable (after the dead ones).
 *
 * Prefetch (limits.refresh): a hit in the last tenth of its entry's lifetime sets
 * CACHE_KIND_REFRESH, from the insert time and lifetime the record holds anyway.
 *
 * Eviction: expired entries first (past their stale limit before still servable ones), then
 * the LRU tail. Finding every expired entry would need a
 * second ordering (8 bytes per entry), so the search is bounded: the CACHE_SWEEP least recently
 * used entries, then the chains of CACHE_SWEEP buckets at a rotating cursor; an unexpired LRU
 * victim is taken only when neither holds an expired entry. Small caches are searched whole;
 * in large ones the cursor walks the whole table over time, and expired entries that nobody
 * asks for drift to the LRU end anyway.
 *
 * Invalidation (cache_invalidate) costs what it drops, not what the cache holds. An upstream
 * that reports its changes (the kube resolver) declares the zones it reports them in
 * (cache_watch): the cluster zone, its svc and pod subtrees, in-addr.arpa, ip6.arpa. Every entry
 * whose name lies in a watched zone - whoever answered it - is "indexed": it lives in a second
 * set of size classes whose records carry 8 more bytes after the image, the handles of the
 * previous and next member of its owner group. The owner of a name is its ancestor `depth`
 * labels below the deepest watched zone that holds it (the name itself when it is not that
 * deep): svc.ns.svc.ZONE for everything about a service, ns.pod.ZONE for a namespace's pods, the
 * full reverse name of an address. Groups hang off a second chained table (uint32_t heads,
 * load 1 .. 1/4, keyed SipHash of the owner name; collisions share a list). Dropping a name at
 * or below the owner depth reads one group; a shallower name (a namespace, a whole zone) walks
 * the indexed classes only; a name outside every watched zone walks everything, as before.
 * Ordinary forwarded entries keep their layout and size: nothing is added to them, nor to the
 * hit path. Moving a record (cache_drop keeps classes dense) fixes its group neighbours as it
 * fixes the LRU and hash links; the head of a group is found by hashing the owner again.
 * Accounting adds 4 * owner buckets; an indexed record's size is its plain size rounded up to 4,
 * plus 8. Forwarded answers in a watched zone are indexed too (a PTR of an address the cluster
 * did not know, answered by a forwarder, must go when a Service takes that address: the kube
 * resolver answers it from then on).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kubemasq/dnsmsg.h"
#include "kubemasq/hash.h"
#include "lib/cache.h"
#include "lib/cache_arena.h"

#define CACHE_NIL UINT32_MAX
#define CACHE_OFF_BITS 14
#define CACHE_OFF_MASK ((1u << CACHE_OFF_BITS) - 1)
#define CACHE_MAX_CHUNKS ((1u << (32 - CACHE_OFF_BITS)) - 1) /* the all-ones id is NIL's */
#define CACHE_CHUNK_HDR 4u
#define CACHE_CHUNK_MAX 65536u /* offsets must fit CACHE_OFF_BITS in 4-byte units */
#define CACHE_CHUNK_MIN 1024u
#define CACHE_MIN_BUCKETS 64u
#define CACHE_MIN_CHUNK_IDS 8u
#define CACHE_NCLASSES 137 /* up to 81920 bytes: 28 + 2 * 5958 + 65535 fits */
#define CACHE_SWEEP 8
#define CACHE_SECOND_CHANCES 8 /* marked records moved to the head per eviction, at most */
#define CACHE_HUGE_PAGE (2u << 20)
#define CACHE_MAX_BUDGET ((uint64_t)CACHE_MAX_CHUNKS * (CACHE_CHUNK_MAX / 2))
#define CACHE_MAX_OFFS (DNS_MAX_UDP / 11 + 1) /* the smallest RR is 11 bytes */
#define CACHE_ARENA_MIN_BUDGET (256u << 20)   /* below, one arena's 2 MiB is too coarse a step */
#define CACHE_MAX_WATCH 8		      /* watched zones (the kube resolver declares 5) */
#define CACHE_MIN_OWNERS 64u
#define CACHE_MAX_LABELS 128 /* a 255-byte name has at most 127 labels */

#define CACHE_TAG_SHIFT 6 /* flags bits 6-7: the caller's tag (cache_put_tagged) */
_Static_assert(CACHE_TAGS << CACHE_TAG_SHIFT == 0x100, "the tag takes the flags' top bits");

#define CACHE_F_NEG 0x4
#define CACHE_F_REF 0x8	     /* hit since it last reached the LRU tail: a second chance */
#define CACHE_F_RENEW 0x10   /* from a source that reports its changes (cache_put_renewable) */
#define CACHE_F_INDEXED 0x20 /* in a watched zone: in an indexed class, in an owner group */

struct cache_rec {
	uint32_t lru_prev, lru_next; /* handles; NIL at the ends */
	uint32_t hnext;		     /* next in the hash chain */
	uint32_t t_insert;	     /* seconds since c->epoch */
	uint32_t lifetime;	     /* seconds */
	uint16_t t_insert_ms;	     /* 0..999 */
	uint16_t len;		     /* image length */
	uint16_t n_offs;	     /* TTL offsets */
	uint8_t qname_len;
	uint8_t flags;	 /* CACHE_F_DO, CACHE_F_CD, CACHE_F_NEG, ... */
	uint16_t offs[]; /* then the image */
};
_Static_assert(sizeof(struct cache_rec) == 28, "record header layout");

union cache_chunk {
	uint8_t *mem;	    /* in use */
	uint32_t next_free; /* on the free id list */
};

struct cache_class {
	uint32_t last;	 /* chunk id holding the class's last records, or NIL */
	uint32_t n_last; /* slots used in it */
};

/* A zone whose entries are indexed by owner (cache_watch). */
struct cache_watch {
	uint8_t zone[DNS_MAX_NAME]; /* lower-cased wire name */
	uint8_t len;
	uint8_t labels; /* the zone's, root not counted */
	uint8_t depth;	/* owner: the ancestor this many labels below the zone */
};

struct cache {
	struct cache_limits lim;
	uint64_t bytes;
	uint64_t chunk_bytes; /* the part of bytes held in chunks */
	uint64_t key[2];      /* SipHash key (kubemasq/hash.h) */
	msec_t epoch;
	bool have_epoch;
	msec_t changed_at; /* the last cache_note_change() */
	uint32_t *buckets;
	uint32_t mask;
	union cache_chunk *chunks;
	uint32_t chunks_cap, chunks_used, free_id;
	uint32_t chunk_target;
	bool use_arenas; /* chunks of up to a slot live in huge-page arenas */
	struct cache_arenas arenas;
	uint32_t lru_head, lru_tail;
	uint32_t sweep;
	uint64_t entries, negative, hits, misses, insertions, evictions, expired, renewed;
	uint64_t stale_served;
	/* Classes 0 .. CACHE_NCLASSES-1 hold plain records, the next CACHE_NCLASSES the indexed
	 * ones (CACHE_F_INDEXED: 8 bytes of group links after the image). */
	struct cache_class cls[2 * CACHE_NCLASSES];
	/* The owner groups of the indexed records: heads of doubly linked lists, or NULL while no
	 * zone is watched. */
	uint32_t *owners;
	uint32_t owner_mask;
	uint64_t indexed;     /* records in the indexed classes */
	uint64_t inval_reads; /* records read by invalidations */
	unsigned n_watch;
	struct cache_watch watch[CACHE_MAX_WATCH];
};

/* The hash of a key: name, then type, class and flags as they appear after it. */
static uint32_t
cache_hash(const struct cache *c, const uint8_t *qname, size_t qname_len, const uint8_t *tc,
	   uint8_t flags)
{
	uint8_t buf[DNS_MAX_NAME + 5];

	memcpy(buf, qname, qname_len);
	memcpy(buf + qname_len, tc, 4);
	buf[qname_len + 4] = flags;
	return (uint32_t)hash_siphash13(c->key, buf, qname_len + 5);
}

/* ---- records, classes, chunks ---------------------------------------------------------- */

static inline struct cache_rec *
cache_rec(const struct cache *c, uint32_t h)
{
	return (struct cache_rec *)(void *)(c->chunks[h >> CACHE_OFF_BITS].mem +
					    ((size_t)(h & CACHE_OFF_MASK) << 2));
}

static inline uint8_t *
cache_image(struct cache_rec *r)
{
	return (uint8_t *)(r->offs + r->n_offs);
}

/* Header, TTL offsets and image: a plain record's size. */
static inline size_t
cache_rec_base(const struct cache_rec *r)
{
	return sizeof(*r) + 2u * r->n_offs + r->len;
}

/* An indexed record's group links follow its image, 4-aligned: [0] previous, [1] next. */
static inline size_t
cache_indexed_size(size_t base)
{
	return (base + 3) / 4 * 4 + 8;
}

static inline size_t
cache_rec_size(const struct cache_rec *r)
{
	size_t base = cache_rec_base(r);

	return (r->flags & CACHE_F_INDEXED) ? cache_indexed_size(base) : base;
}

static inline uint32_t *
cache_ilinks(struct cache_rec *r)
{
	return (uint32_t *)(void *)((uint8_t *)r + (cache_rec_base(r) + 3) / 4 * 4);
}

static inline uint32_t
cache_rec_hash(const struct cache *c, struct cache_rec *r)
{
	const uint8_t *img = cache_image(r);

	return cache_hash(c, img + DNS_HDR_LEN, r->qname_len, img + DNS_HDR_LEN + r->qname_len,
			  r->flags & (CACHE_F_DO | CACHE_F_CD));
}

/* Size classes: 4-byte steps up to 256, then 8 steps per power of two (<= 12.5% waste). */
static unsigned
cache_class_of(size_t size)
{
	if (size <= 256)
		return (unsigned)((size + 3) / 4);
	unsigned e = 63 - (unsigned)__builtin_clzll(size - 1);
	unsigned q = (unsigned)((size - 1) >> (e - 3));
	return 64 + (e - 8) * 8 + (q - 8) + 1;
}

/* The slot size of class idx (an indexed class, idx >= CACHE_NCLASSES, as its plain twin). */
static size_t
cache_class_size(unsigned idx)
{
	if (idx >= CACHE_NCLASSES)
		idx -= CACHE_NCLASSES;
	if (idx <= 64)
		return (size_t)idx * 4;
	unsigned k = idx - 65, e = 8 + k / 8, q = 8 + k % 8;
	return (size_t)(q + 1) << (e - 3);
}

static uint32_t
cache_class_per(const struct cache *c, unsigned idx)
{
	size_t size = cache_class_size(idx);

	if (size + CACHE_CHUNK_HDR > c->chunk_target)
		return 1;
	return (uint32_t)((c->chunk_target - CACHE_CHUNK_HDR) / size);
}

static size_t
cache_chunk_size(const struct cache *c, unsigned idx)
{
	return CACHE_CHUNK_HDR + cache_class_per(c, idx) * cache_class_size(idx);
}

static inline uint32_t
cache_handle(uint32_t id, size_t off)
{
	return id << CACHE_OFF_BITS | (uint32_t)(off >> 2);
}

static inline uint32_t
cache_slot(unsigned idx, uint32_t id, uint32_t slot)
{
	return cache_handle(id, CACHE_CHUNK_HDR + (size_t)slot * cache_class_size(idx));
}

static inline uint32_t
cache_chunk_prev(const struct cache *c, uint32_t id)
{
	uint32_t prev;

	memcpy(&prev, c->chunks[id].mem, 4);
	return prev;
}

/* The class of record r. */
static inline unsigned
cache_rec_class(const struct cache_rec *r)
{
	unsigned idx = cache_class_of(cache_rec_size(r));

	return (r->flags & CACHE_F_INDEXED) ? idx + CACHE_NCLASSES : idx;
}

/* Does a chunk of class idx take an arena slot (or its own malloc)? */
static inline bool
cache_in_arena(const struct cache *c, unsigned idx)
{
	return c->use_arenas && cache_chunk_size(c, idx) <= CACHE_ARENA_SLOT;
}

/* Bytes a new record of class idx needs beyond what is held: 0 if its class has a free slot. */
static uint64_t
cache_need(const struct cache *c, unsigned idx)
{
	const struct cache_class *k = &c->cls[idx];
	uint64_t need;

	if (k->last != CACHE_NIL && k->n_last < cache_class_per(c, idx))
		return 0;
	if (cache_in_arena(c, idx))
		need = cache_arena_has_free(&c->arenas) ? 0 : CACHE_ARENA_SIZE;
	else
		need = cache_chunk_size(c, idx);
	if (c->free_id == CACHE_NIL && c->chunks_used == c->chunks_cap)
		need += (uint64_t)c->chunks_cap * sizeof(*c->chunks);
	return need;
}

static int
cache_chunk_id(struct cache *c, uint32_t *id)
{
	if (c->free_id != CACHE_NIL) {
		*id = c->free_id;
		c->free_id = c->chunks[*id].next_free;
		return 0;
	}
	if (c->chunks_used == c->chunks_cap) {
		uint32_t cap = c->chunks_cap * 2;
		if (cap > CACHE_MAX_CHUNKS)
			cap = CACHE_MAX_CHUNKS;
		if (cap == c->chunks_cap)
			return -ENOMEM;
		union cache_chunk *t = realloc(c->chunks, cap * sizeof(*t));
		if (t == NULL)
			return -ENOMEM;
		c->bytes += (uint64_t)(cap - c->chunks_cap) * sizeof(*t);
		c->chunks = t;
		c->chunks_cap = cap;
	}
	*id = c->chunks_used++;
	return 0;
}

/* Memory for a chunk of class idx, counted; returns the bytes it added or a negative errno. */
static long
cache_chunk_get(struct cache *c, unsigned idx, uint8_t **mem)
{
	long held;

	if (cache_in_arena(c, idx)) {
		held = cache_arena_take(&c->arenas, mem);
	} else {
		held = (long)cache_chunk_size(c, idx);
		if ((*mem = malloc((size_t)held)) == NULL)
			held = -ENOMEM;
	}
	if (held > 0) {
		c->bytes += (uint64_t)held;
		c->chunk_bytes += (uint64_t)held;
	}
	return held;
}

/* Give a chunk's memory back, uncounting what is no longer held. */
static void
cache_chunk_put(struct cache *c, unsigned idx, uint8_t *mem)
{
	size_t freed;

	if (cache_in_arena(c, idx)) {
		freed = cache_arena_give(&c->arenas, mem);
	} else {
		free(mem);
		freed = cache_chunk_size(c, idx);
	}
	c->bytes -= freed;
	c->chunk_bytes -= freed;
}

/* A slot for a record of class idx; the caller made room with cache_need(). */
static int
cache_alloc(struct cache *c, unsigned idx, uint32_t *h)
{
	struct cache_class *k = &c->cls[idx];

	if (k->last == CACHE_NIL || k->n_last == cache_class_per(c, idx)) {
		uint8_t *mem;
		uint32_t id;
		long held = cache_chunk_get(c, idx, &mem);
		if (held < 0)
			return -ENOMEM;
		if (cache_chunk_id(c, &id) < 0) {
			cache_chunk_put(c, idx, mem);
			return -ENOMEM;
		}
		memcpy(mem, &k->last, 4);
		c->chunks[id].mem = mem;
		k->last = id;
		k->n_last = 0;
	}
	*h = cache_slot(idx, k->last, k->n_last++);
	return 0;
}

/* Give back the class's last slot, and its chunk once empty. */
static void
cache_release_last(struct cache *c, unsigned idx)
{
	struct cache_class *k = &c->cls[idx];
	uint32_t id = k->last;

	if (--k->n_last != 0)
		return;
	k->last = cache_chunk_prev(c, id);
	k->n_last = k->last == CACHE_NIL ? 0 : cache_class_per(c, idx);
	cache_chunk_put(c, idx, c->chunks[id].mem);
	c->chunks[id].next_free = c->free_id;
	c->free_id = id;
}

/* ---- hash chains and LRU --------------------------------------------------------------- */

/* The link that holds handle h in its hash chain. */
static uint32_t *
cache_link_of(struct cache *c, uint32_t h, uint32_t hash)
{
	uint32_t *link = &c->buckets[hash & c->mask];

	while (*link != h) {
		if (*link == CACHE_NIL)
			return NULL;
		link = &cache_rec(c, *link)->hnext;
	}
	return link;
}

static void
cache_lru_unlink(struct cache *c, struct cache_rec *r)
{
	if (r->lru_prev == CACHE_NIL)
		c->lru_head = r->lru_next;
	else
		cache_rec(c, r->lru_prev)->lru_next = r->lru_next;
	if (r->lru_next == CACHE_NIL)
		c->lru_tail = r->lru_prev;
	else
		cache_rec(c, r->lru_next)->lru_prev = r->lru_prev;
}

static void
cache_lru_push(struct cache *c, uint32_t h, struct cache_rec *r)
{
	r->lru_prev = CACHE_NIL;
	r->lru_next = c->lru_head;
	if (c->lru_head == CACHE_NIL)
		c->lru_tail = h;
	else
		cache_rec(c, c->lru_head)->lru_prev = h;
	c->lru_head = h;
}

/* ---- owner groups ---------------------------------------------------------------------- */

/*
 * The deepest watched zone that holds `name` (lower-cased, uncompressed), or NULL: none does, or
 * the name is malformed. starts[] gets the offsets of the name's labels, *n their number.
 */
static const struct cache_watch *
cache_watch_of(const struct cache *c, const uint8_t *name, size_t len, uint8_t *starts, unsigned *n)
{
	const struct cache_watch *best = NULL;
	size_t pos = 0;

	*n = 0;
	if (c->n_watch == 0)
		return NULL;
	while (pos < len && name[pos] != 0) {
		if (*n == CACHE_MAX_LABELS)
			return NULL;
		starts[(*n)++] = (uint8_t)pos;
		pos += 1 + (size_t)name[pos];
	}
	if (pos + 1 != len)
		return NULL;
	for (unsigned i = 0; i < c->n_watch; i++) {
		const struct cache_watch *w = &c->watch[i];
		if (w->labels > *n || (best && best->labels >= w->labels))
			continue;
		size_t at = w->labels < *n ? starts[*n - w->labels] : w->labels == 0 ? pos : 0;
		if (len - at == w->len && memcmp(name + at, w->zone, w->len) == 0)
			best = w;
	}
	return best;
}

/* The offset of the owner in a name of n labels (starts[]) in watched zone w: its ancestor
 * w->depth labels below the zone, or the name itself when it is not that deep. */
static size_t
cache_owner_off(const struct cache_watch *w, const uint8_t *starts, unsigned n)
{
	unsigned rel = n - w->labels;

	return rel > w->depth ? starts[rel - w->depth] : 0;
}

static uint32_t *
cache_owner_head(struct cache *c, const uint8_t *owner, size_t len)
{
	return &c->owners[(uint32_t)hash_siphash13(c->key, owner, len) & c->owner_mask];
}

/* The head of the group of indexed record r: its owner hashed again. */
static uint32_t *
cache_rec_owner_head(struct cache *c, struct cache_rec *r)
{
	const uint8_t *q = cache_image(r) + DNS_HDR_LEN;
	uint8_t starts[CACHE_MAX_LABELS];
	unsigned n;
	const struct cache_watch *w = cache_watch_of(c, q, r->qname_len, starts, &n);
	size_t off = w ? cache_owner_off(w, starts, n) : 0; /* w: indexed records are watched */

	return cache_owner_head(c, q + off, r->qname_len - off);
}

static void
cache_group_push(struct cache *c, uint32_t *head, uint32_t h, struct cache_rec *r)
{
	uint32_t *l = cache_ilinks(r);

	l[0] = CACHE_NIL;
	l[1] = *head;
	if (*head != CACHE_NIL)
		cache_ilinks(cache_rec(c, *head))[0] = h;
	*head = h;
}

static void
cache_group_unlink(struct cache *c, struct cache_rec *r)
{
	uint32_t *l = cache_ilinks(r);

	if (l[0] == CACHE_NIL)
		*cache_rec_owner_head(c, r) = l[1];
	else
		cache_ilinks(cache_rec(c, l[0]))[1] = l[1];
	if (l[1] != CACHE_NIL)
		cache_ilinks(cache_rec(c, l[1]))[0] = l[0];
}

/* Point the group links that name indexed record r (moved) at `to`, where it now lives. */
static void
cache_group_relink(struct cache *c, uint32_t to, struct cache_rec *r)
{
	uint32_t *l = cache_ilinks(r);

	if (l[0] == CACHE_NIL)
		*cache_rec_owner_head(c, r) = to;
	else
		cache_ilinks(cache_rec(c, l[0]))[1] = to;
	if (l[1] != CACHE_NIL)
		cache_ilinks(cache_rec(c, l[1]))[0] = to;
}

/* Point the links that name record `from` at `to`, where it now lives: LRU neighbours, hash
 * chain predecessor and, for an indexed record, its group neighbours. */
static void
cache_relink(struct cache *c, uint32_t from, uint32_t to, struct cache_rec *r)
{
	if (r->lru_prev == CACHE_NIL)
		c->lru_head = to;
	else
		cache_rec(c, r->lru_prev)->lru_next = to;
	if (r->lru_next == CACHE_NIL)
		c->lru_tail = to;
	else
		cache_rec(c, r->lru_next)->lru_prev = to;
	uint32_t *link = cache_link_of(c, from, cache_rec_hash(c, r));
	if (link != NULL)
		*link = to;
	if (r->flags & CACHE_F_INDEXED)
		cache_group_relink(c, to, r);
}

/* Drop record h: unlink it, then keep its class dense by moving the class's last record in.
 * Returns the handle that record had (h when h was the last). */
static uint32_t
cache_drop(struct cache *c, uint32_t h)
{
	struct cache_rec *r = cache_rec(c, h);
	unsigned idx = cache_rec_class(r);
	struct cache_class *k = &c->cls[idx];
	uint32_t last = cache_slot(idx, k->last, k->n_last - 1);

	uint32_t *link = cache_link_of(c, h, cache_rec_hash(c, r));
	if (link != NULL)
		*link = r->hnext;
	cache_lru_unlink(c, r);
	if (r->flags & CACHE_F_INDEXED) {
		cache_group_unlink(c, r);
		c->indexed--;
	}
	c->entries--;
	if (r->flags & CACHE_F_NEG)
		c->negative--;
	if (last != h) {
		struct cache_rec *lr = cache_rec(c, last);
		memcpy(r, lr, cache_rec_size(lr));
		cache_relink(c, last, h, r);
	}
	cache_release_last(c, idx);
	return last;
}

/* ---- time ------------------------------------------------------------------------------ */

static inline msec_t
cache_stored_at(const struct cache *c, const struct cache_rec *r)
{
	return c->epoch + (msec_t)r->t_insert * 1000 + r->t_insert_ms;
}

/* Record r stored (or renewed) now. */
static void
cache_stamp(struct cache *c, struct cache_rec *r, msec_t now)
{
	if (!c->have_epoch) {
		c->epoch = now;
		c->have_epoch = true;
	}
	msec_t rel = now > c->epoch ? now - c->epoch : 0;
	r->t_insert = rel / 1000 > UINT32_MAX ? UINT32_MAX : (uint32_t)(rel / 1000);
	r->t_insert_ms = (uint16_t)(rel % 1000);
}

/* Whole seconds since record r was stored. */
static uint32_t
cache_elapsed(const struct cache *c, const struct cache_rec *r, msec_t now)
{
	msec_t at = cache_stored_at(c, r);

	if (now <= at)
		return 0;
	msec_t s = (now - at) / 1000;
	return s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

static bool
cache_expired(const struct cache *c, const struct cache_rec *r, msec_t now)
{
	return cache_elapsed(c, r, now) >= r->lifetime;
}

/* May an expired record be renewed rather than dropped? Only one whose source reports its
 * changes, stored after the last change it reported (a change in the same millisecond counts
 * as later: the reply may predate it). */
static bool
cache_renewable(const struct cache *c, const struct cache_rec *r)
{
	return (r->flags & CACHE_F_RENEW) && cache_stored_at(c, r) > c->changed_at;
}

/* May an expired record still be served stale (limits.stale)? Within stale_max seconds past its
 * expiry (0: any time), and never one a renewable source stored. */
static bool
cache_stale_ok(const struct cache *c, const struct cache_rec *r, msec_t now)
{
	if (!c->lim.stale || (r->flags & CACHE_F_RENEW))
		return false;
	return c->lim.stale_max == 0 ||
	       cache_elapsed(c, r, now) < (uint64_t)r->lifetime + c->lim.stale_max;
}

/* In the last tenth of its lifetime (unbound's prefetch rule), to the millisecond. */
static bool
cache_refresh_due(const struct cache *c, const struct cache_rec *r, msec_t now)
{
	msec_t at = cache_stored_at(c, r);

	return !(r->flags & CACHE_F_RENEW) && now > at &&
	       (now - at) * 10 >= (msec_t)r->lifetime * 9000;
}

/* ---- table size ------------------------------------------------------------------------ */

/*
 * A bucket array. From 2 MiB on it is aligned to and advised into transparent huge pages where
 * the system allows them (madvise mode): every lookup's first load lands in a random place of
 * the array, and with 4 KiB pages that is a TLB miss as well as a cache miss (the kernel
 * flushes the TLB on every syscall on hosts without PCID). The memory is the same either way.
 */
static uint32_t *
cache_buckets_alloc(uint32_t n)
{
	size_t size = (size_t)n * sizeof(uint32_t);
	void *t;

	if (size < CACHE_HUGE_PAGE)
		return malloc(size);
	if (posix_memalign(&t, CACHE_HUGE_PAGE, size) != 0)
		return NULL;
#ifdef MADV_HUGEPAGE
	(void)madvise(t, size, MADV_HUGEPAGE); /* a hint: refused or not, the array works */
#endif
	return t;
}

static int
cache_rehash(struct cache *c, uint32_t n)
{
	uint32_t *t = cache_buckets_alloc(n), old_n = c->mask + 1;

	if (t == NULL)
		return -ENOMEM;
	memset(t, 0xff, (size_t)n * sizeof(*t));
	for (uint32_t b = 0; b < old_n; b++) {
		uint32_t h = c->buckets[b];
		while (h != CACHE_NIL) {
			struct cache_rec *r = cache_rec(c, h);
			uint32_t next = r->hnext, *head = &t[cache_rec_hash(c, r) & (n - 1)];
			r->hnext = *head;
			*head = h;
			h = next;
		}
	}
	free(c->buckets);
	c->buckets = t;
	c->mask = n - 1;
	c->bytes = c->bytes - (uint64_t)old_n * sizeof(*t) + (uint64_t)n * sizeof(*t);
	return 0;
}

/* The owner groups in a table of n heads: every indexed record pushed again. */
static int
cache_owner_rehash(struct cache *c, uint32_t n)
{
	uint32_t *t = malloc((size_t)n * sizeof(*t)), old_n = c->owner_mask + 1;

	if (t == NULL)
		return -ENOMEM;
	memset(t, 0xff, (size_t)n * sizeof(*t));
	free(c->owners);
	c->owners = t;
	c->owner_mask = n - 1;
	for (unsigned idx = CACHE_NCLASSES; idx < 2 * CACHE_NCLASSES; idx++) {
		if (c->cls[idx].last == CACHE_NIL)
			continue; /* class 0 (size 0) has no slots to count */
		uint32_t per = cache_class_per(c, idx), used = c->cls[idx].n_last;
		for (uint32_t id = c->cls[idx].last; id != CACHE_NIL;
		     id = cache_chunk_prev(c, id)) {
			for (uint32_t s = 0; s < used; s++) {
				uint32_t h = cache_slot(idx, id, s);
				struct cache_rec *r = cache_rec(c, h);
				cache_group_push(c, cache_rec_owner_head(c, r), h, r);
			}
			used = per;
		}
	}
	c->bytes = c->bytes - (uint64_t)old_n * sizeof(*t) + (uint64_t)n * sizeof(*t);
	return 0;
}

/* Keep the load factor in 1/4..1, when the budget holds both arrays during the move; the same
 * for the owner table and the indexed records. */
static void
cache_resize(struct cache *c)
{
	uint64_t n = (uint64_t)c->mask + 1;

	if (c->entries > n && n < (1u << 31) &&
	    c->bytes + 2 * n * sizeof(*c->buckets) <= c->lim.max_bytes)
		(void)cache_rehash(c, (uint32_t)(2 * n));
	else if (c->entries < n / 4 && n > CACHE_MIN_BUCKETS &&
		 c->bytes + n / 2 * sizeof(*c->buckets) <= c->lim.max_bytes)
		(void)cache_rehash(c, (uint32_t)(n / 2));
	if (c->owners == NULL)
		return;
	n = (uint64_t)c->owner_mask + 1;
	if (c->indexed > n && n < (1u << 31) &&
	    c->bytes + 2 * n * sizeof(*c->owners) <= c->lim.max_bytes)
		(void)cache_owner_rehash(c, (uint32_t)(2 * n));
	else if (c->indexed < n / 4 && n > CACHE_MIN_OWNERS &&
		 c->bytes + n / 2 * sizeof(*c->owners) <= c->lim.max_bytes)
		(void)cache_owner_rehash(c, (uint32_t)(n / 2));
}

/* ---- eviction -------------------------------------------------------------------------- */

/* An expired record among the CACHE_SWEEP least recently used, or in the chains of the next
 * CACHE_SWEEP buckets at the rotating cursor; NIL if none. One past its stale limit goes
 * before one still servable stale (the first such is the fallback). */
static uint32_t
cache_find_expired(struct cache *c, msec_t now)
{
	uint32_t h = c->lru_tail, stale = CACHE_NIL;

	for (int i = 0; i < CACHE_SWEEP && h != CACHE_NIL; i++) {
		struct cache_rec *r = cache_rec(c, h);
		if (cache_expired(c, r, now)) {
			if (!cache_stale_ok(c, r, now))
				return h;
			if (stale == CACHE_NIL)
				stale = h;
		}
		h = r->lru_prev;
	}
	for (int i = 0; i < CACHE_SWEEP; i++) {
		h = c->buckets[c->sweep++ & c->mask];
		for (; h != CACHE_NIL; h = cache_rec(c, h)->hnext) {
			struct cache_rec *r = cache_rec(c, h);
			if (!cache_expired(c, r, now))
				continue;
			if (!cache_stale_ok(c, r, now))
				return h;
			if (stale == CACHE_NIL)
				stale = h;
		}
	}
	return stale;
}

/*
 * The least recently used entry, with a second chance (CLOCK): a hit only marks its record, and
 * a marked record reaching the tail moves to the head instead of going. At most
 * CACHE_SECOND_CHANCES moves per eviction keep it O(1); the tail goes after them regardless.
 */
static uint32_t
cache_lru_victim(struct cache *c)
{
	for (int i = 0; i < CACHE_SECOND_CHANCES; i++) {
		uint32_t h = c->lru_tail;
		struct cache_rec *r = cache_rec(c, h);

		if (!(r->flags & CACHE_F_REF) || c->lru_head == h)
			break;
		r->flags &= (uint8_t)~CACHE_F_REF;
		cache_lru_unlink(c, r);
		cache_lru_push(c, h, r);
	}
	return c->lru_tail;
}

/* Drop one entry to make room: an expired one if the bounded search finds it, else the LRU. */
static void
cache_evict_one(struct cache *c, msec_t now)
{
	uint32_t h = cache_find_expired(c, now);

	if (h != CACHE_NIL) {
		c->expired++;
	} else {
		h = cache_lru_victim(c);
		c->evictions++;
	}
	cache_drop(c, h);
}

/* ---- lookup ---------------------------------------------------------------------------- */

static uint32_t
cache_find(struct cache *c, const struct cache_key *key, uint32_t hash)
{
	uint8_t tc[4];

	dnsmsg_put16(tc, key->qtype);
	dnsmsg_put16(tc + 2, key->qclass);
	for (uint32_t h = c->buckets[hash & c->mask]; h != CACHE_NIL;) {
		struct cache_rec *r = cache_rec(c, h);
		const uint8_t *q = cache_image(r) + DNS_HDR_LEN;
		if (r->qname_len == key->qname_len &&
		    (r->flags & (CACHE_F_DO | CACHE_F_CD)) == key->flags &&
		    memcmp(q + r->qname_len, tc, 4) == 0 &&
		    memcmp(q, key->qname, r->qname_len) == 0)
			return h;
		h = r->hnext;
	}
	return CACHE_NIL;
}

static bool
cache_key_ok(const struct cache_key *key)
{
	return key->qname != NULL && key->qname_len >= 1 && key->qname_len <= DNS_MAX_NAME &&
	       (key->flags & ~(CACHE_F_DO | CACHE_F_CD)) == 0;
}

uint32_t
cache_key_hash(const struct cache *c, const struct cache_key *key)
{
	uint8_t tc[4];

	if (!cache_key_ok(key))
		return 0;
	dnsmsg_put16(tc, key->qtype);
	dnsmsg_put16(tc + 2, key->qclass);
	return cache_hash(c, key->qname, key->qname_len, tc, key->flags);
}

/* A record spans at most two cache lines up to its question: the lines cache_find reads. */
void
cache_prefetch(const struct cache *c, uint32_t hash, unsigned stage)
{
	const uint32_t *bucket = &c->buckets[hash & c->mask];

	if (stage == 0) {
		__builtin_prefetch(bucket);
		return;
	}
	if (*bucket == CACHE_NIL)
		return;
	const char *r = (const char *)cache_rec(c, *bucket);
	__builtin_prefetch(r);
	__builtin_prefetch(r + 64);
}

/* Copy the image, then write the client's ID and spelling and age every TTL. */
static void
cache_copy_out(const struct cache *c, struct cache_rec *r, msec_t now, uint16_t id,
	       const uint8_t *client_qname, uint8_t *out)
{
	uint32_t elapsed = cache_elapsed(c, r, now), left = r->lifetime - elapsed;

	if (c->lim.max_client_ttl != 0)
		left = MIN(left, c->lim.max_client_ttl); /* --max-ttl, in the same pass */
	memcpy(out, cache_image(r), r->len);
	dnsmsg_put16(out, id);
	memcpy(out + DNS_HDR_LEN, client_qname, r->qname_len);
	for (unsigned i = 0; i < r->n_offs; i++) {
		uint8_t *p = out + r->offs[i];
		uint32_t ttl = dnsmsg_get32(p);
		ttl = (ttl & 0x80000000u) || ttl < elapsed ? 0 : ttl - elapsed;
		dnsmsg_put32(p, MIN(ttl, left));
	}
}

int
cache_get(struct cache *c, const struct cache_key *key, msec_t now, uint16_t id,
	  const uint8_t *client_qname, uint8_t *out, size_t cap)
{
	return cache_get_hashed(c, key, cache_key_hash(c, key), now, id, client_qname, out, cap);
}

int
cache_get_hashed(struct cache *c, const struct cache_key *key, uint32_t hash, msec_t now,
		 uint16_t id, const uint8_t *client_qname, uint8_t *out, size_t cap)
{
	unsigned kind;

	return cache_get_tagged(c, key, hash, now, id, client_qname, out, cap, &kind);
}

_Static_assert(CACHE_F_NEG >> 2 == CACHE_KIND_NEGATIVE, "the kind's negative bit");

int
cache_get_tagged(struct cache *c, const struct cache_key *key, uint32_t hash, msec_t now,
		 uint16_t id, const uint8_t *client_qname, uint8_t *out, size_t cap, unsigned *kind)
{
	uint32_t h;

	if (!cache_key_ok(key) || (h = cache_find(c, key, hash)) == CACHE_NIL) {
		c->misses++;
		return -ENOENT;
	}
	struct cache_rec *r = cache_rec(c, h);
	if (unlikely(cache_expired(c, r, now))) {
		if (!cache_renewable(c, r)) {
			if (cache_stale_ok(c, r, now)) {
				c->misses++; /* kept for cache_get_stale() and a refresh */
				return -ESTALE;
			}
			cache_drop(c, h);
			c->expired++;
			c->misses++;
			return -ENOENT;
		}
		/* The source would build this very reply again: keep it, counting down anew. */
		cache_stamp(c, r, now);
		c->renewed++;
	}
	if (cap < r->len)
		return -ENOSPC;
	cache_copy_out(c, r, now, id, client_qname ? client_qname : key->qname, out);
	/* Mark, don't move: unlinking would touch two more records, each a likely cache miss
	 * among a million entries (cache_lru_victim gives marked records their second chance). */
	r->flags |= CACHE_F_REF;
	c->hits++;
	*kind = (unsigned)(r->flags >> CACHE_TAG_SHIFT) << 1 | (r->flags & CACHE_F_NEG) >> 2;
	if (unlikely(c->lim.refresh) && cache_refresh_due(c, r, now))
		*kind |= CACHE_KIND_REFRESH;
	return r->len;
}

int
cache_get_stale(struct cache *c, const struct cache_key *key, msec_t now, uint16_t id,
		const uint8_t *client_qname, uint8_t *out, size_t cap)
{
	uint32_t h;

	if (!cache_key_ok(key) || (h = cache_find(c, key, cache_key_hash(c, key))) == CACHE_NIL)
		return -ENOENT;
	struct cache_rec *r = cache_rec(c, h);
	if (!cache_expired(c, r, now) || !cache_stale_ok(c, r, now))
		return -ENOENT;
	if (cap < r->len)
		return -ENOSPC;
	memcpy(out, cache_image(r), r->len);
	dnsmsg_put16(out, id);
	memcpy(out + DNS_HDR_LEN, client_qname ? client_qname : key->qname, r->qname_len);
	uint32_t ttl = c->lim.stale_ttl;
	if (c->lim.max_client_ttl != 0)
		ttl = MIN(ttl, c->lim.max_client_ttl);
	for (unsigned i = 0; i < r->n_offs; i++)
		dnsmsg_put32(out + r->offs[i], ttl);
	r->flags |= CACHE_F_REF;
	c->stale_served++;
	return r->len;
}

/* ---- insertion ------------------------------------------------------------------------- */

/* A reply the cache can key: a response whose only question is the key's. */
static int
cache_check_reply(const struct cache_key *key, const uint8_t *reply, size_t len)
{
	if (len < DNS_HDR_LEN || len > DNS_MAX_UDP || !dnsmsg_qr(reply) ||
	    dnsmsg_qdcount(reply) != 1 || DNS_HDR_LEN + (size_t)key->qname_len + 4 > len)
		return -EPROTO;
	const uint8_t *q = reply + DNS_HDR_LEN;
	for (size_t i = 0; i < key->qname_len; i++) {
		uint8_t ch = q[i] >= 'A' && q[i] <= 'Z' ? (uint8_t)(q[i] + 32) : q[i];
		if (ch != key->qname[i])
			return -EPROTO;
	}
	q += key->qname_len;
	if (dnsmsg_get16(q) != key->qtype || dnsmsg_get16(q + 2) != key->qclass)
		return -EPROTO;
	return 0;
}

/* How long the reply may be cached, per the limits; -ENOENT when not at all. */
static int
cache_lifetime(const struct cache *c, const uint8_t *reply, const struct dnsmsg_ttl_info *info,
	       uint32_t *lifetime, bool *negative)
{
	const struct cache_limits *lim = &c->lim;
	unsigned rcode = dnsmsg_rcode(reply);
	uint32_t ttl;

	if (dnsmsg_tc(reply) || (rcode != DNS_RCODE_NOERROR && rcode != DNS_RCODE_NXDOMAIN))
		return -ENOENT;
	*negative = rcode == DNS_RCODE_NXDOMAIN || dnsmsg_ancount(reply) == 0;
	if (!*negative) {
		ttl = MAX(info->min_ttl, lim->min_ttl);
		if (lim->max_ttl != 0)
			ttl = MIN(ttl, lim->max_ttl);
	} else {
		if (lim->no_negcache)
			return -ENOENT;
		ttl = info->has_soa ? info->neg_ttl : lim->neg_ttl;
		if (dnsmsg_ancount(reply) != 0) /* NXDOMAIN after a CNAME chain */
			ttl = MIN(ttl, info->min_ttl);
		if (lim->max_neg_ttl != 0)
			ttl = MIN(ttl, lim->max_neg_ttl);
	}
	if (ttl == 0)
		return -ENOENT;
	*lifetime = ttl;
	return 0;
}

/* Evict until a record of class idx fits under both caps. */
static int
cache_make_room(struct cache *c, unsigned idx, msec_t now)
{
	if (c->bytes - c->chunk_bytes + cache_need(c, idx) > c->lim.max_bytes)
		return -E2BIG;
	while (c->lim.max_entries != 0 && c->entries >= c->lim.max_entries)
		cache_evict_one(c, now);
	while (c->entries != 0 && c->bytes + cache_need(c, idx) > c->lim.max_bytes)
		cache_evict_one(c, now);
	return c->bytes + cache_need(c, idx) > c->lim.max_bytes ? -E2BIG : 0;
}

static void
cache_fill(struct cache *c, struct cache_rec *r, const struct cache_key *key, const uint8_t *reply,
	   size_t len, const uint16_t *offs, unsigned n_offs, msec_t now)
{
	cache_stamp(c, r, now);
	r->len = (uint16_t)len;
	r->n_offs = (uint16_t)n_offs;
	r->qname_len = (uint8_t)key->qname_len;
	memcpy(r->offs, offs, n_offs * sizeof(*offs));
	uint8_t *img = cache_image(r);
	memcpy(img, reply, len);
	memcpy(img + DNS_HDR_LEN, key->qname, key->qname_len); /* the lower-cased spelling */
}

/* --min-cache-ttl as dnsmasq applies it: a positive answer is kept, and shown to clients, with
 * every TTL at least that long, counting down from there. */
static void
cache_raise_ttls(struct cache_rec *r, uint32_t min)
{
	uint8_t *img = cache_image(r);

	for (unsigned i = 0; i < r->n_offs; i++) {
		uint8_t *p = img + r->offs[i];
		uint32_t ttl = dnsmsg_get32(p);

		if (ttl < min || (ttl & 0x80000000u)) /* RFC 2181: "negative" TTLs mean 0 */
			dnsmsg_put32(p, min);
	}
}

static int
cache_store(struct cache *c, const struct cache_key *key, const uint8_t *reply, size_t len,
	    msec_t now, uint8_t rec_flags)
{
	uint16_t offs[CACHE_MAX_OFFS]; /* 12 KiB: every TTL a 64 KiB message can hold */
	uint8_t starts[CACHE_MAX_LABELS];
	struct dnsmsg_ttl_info info;
	uint32_t lifetime, h;
	unsigned n_labels;
	bool negative;
	int r;

	if (!cache_key_ok(key) || (r = cache_check_reply(key, reply, len)) < 0)
		return -EPROTO;
	if (dnsmsg_scan_ttls(reply, len, offs, CACHE_MAX_OFFS, &info) < 0)
		return -EPROTO;
	if ((r = cache_lifetime(c, reply, &info, &lifetime, &negative)) < 0)
		return r;
	uint32_t hash = cache_key_hash(c, key);
	if ((h = cache_find(c, key, hash)) != CACHE_NIL)
		cache_drop(c, h);
	size_t size = sizeof(struct cache_rec) + 2 * info.n_offs + len;
	const struct cache_watch *w =
		cache_watch_of(c, key->qname, key->qname_len, starts, &n_labels);
	unsigned idx = w ? cache_class_of(cache_indexed_size(size)) + CACHE_NCLASSES
			 : cache_class_of(size);
	if ((r = cache_make_room(c, idx, now)) < 0 || (r = cache_alloc(c, idx, &h)) < 0)
		return r;
	struct cache_rec *rec = cache_rec(c, h);
	cache_fill(c, rec, key, reply, len, offs, info.n_offs, now);
	if (!negative && c->lim.min_ttl != 0)
		cache_raise_ttls(rec, c->lim.min_ttl);
	rec->flags =
		key->flags | rec_flags | (negative ? CACHE_F_NEG : 0) | (w ? CACHE_F_INDEXED : 0);
	rec->lifetime = lifetime;
	uint32_t *head = &c->buckets[hash & c->mask];
	rec->hnext = *head;
	*head = h;
	if (w) {
		size_t off = cache_owner_off(w, starts, n_labels);
		cache_group_push(c, cache_owner_head(c, key->qname + off, key->qname_len - off), h,
				 rec);
		c->indexed++;
	}
	cache_lru_push(c, h, rec);
	c->entries++;
	c->negative += negative;
	c->insertions++;
	cache_resize(c);
	return 0;
}

int
cache_put(struct cache *c, const struct cache_key *key, const uint8_t *reply, size_t len,
	  msec_t now)
{
	return cache_store(c, key, reply, len, now, 0);
}

int
cache_put_renewable(struct cache *c, const struct cache_key *key, const uint8_t *reply, size_t len,
		    msec_t now)
{
	return cache_store(c, key, reply, len, now, CACHE_F_RENEW);
}

int
cache_put_tagged(struct cache *c, const struct cache_key *key, const uint8_t *reply, size_t len,
		 msec_t now, unsigned tag, bool renewable)
{
	if (tag >= CACHE_TAGS)
		return -EINVAL;
	return cache_store(c, key, reply, len, now,
			   (uint8_t)(tag << CACHE_TAG_SHIFT | (renewable ? CACHE_F_RENEW : 0)));
}

void
cache_note_change(struct cache *c, msec_t now)
{
	if (now > c->changed_at)
		c->changed_at = now;
}

/* ---- whole-cache operations ------------------------------------------------------------ */

struct cache *
cache_new(const struct cache_limits *lim)
{
	struct cache *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->lim = *lim;
	c->lim.max_bytes = MIN(lim->max_bytes, CACHE_MAX_BUDGET);
	/* The key keeps chain lengths out of a remote peer's hands. */
	hash_random_key(c->key);
	c->chunk_target = CACHE_CHUNK_MAX;
	while (c->chunk_target > CACHE_CHUNK_MIN && c->chunk_target > c->lim.max_bytes / 256)
		c->chunk_target /= 2;
	c->use_arenas =
		c->chunk_target == CACHE_ARENA_SLOT && c->lim.max_bytes >= CACHE_ARENA_MIN_BUDGET;
	cache_arenas_init(&c->arenas, (uint32_t)(c->lim.max_bytes / CACHE_ARENA_SIZE));
	c->buckets = malloc(CACHE_MIN_BUCKETS * sizeof(*c->buckets));
	c->chunks = malloc(CACHE_MIN_CHUNK_IDS * sizeof(*c->chunks));
	if (c->buckets == NULL || c->chunks == NULL) {
		cache_free(c);
		return NULL;
	}
	memset(c->buckets, 0xff, CACHE_MIN_BUCKETS * sizeof(*c->buckets));
	c->mask = CACHE_MIN_BUCKETS - 1;
	c->chunks_cap = CACHE_MIN_CHUNK_IDS;
	c->free_id = c->lru_head = c->lru_tail = CACHE_NIL;
	for (unsigned i = 0; i < 2 * CACHE_NCLASSES; i++)
		c->cls[i].last = CACHE_NIL;
	c->bytes = sizeof(*c) + CACHE_MIN_BUCKETS * sizeof(*c->buckets) +
		   CACHE_MIN_CHUNK_IDS * sizeof(*c->chunks);
	return c;
}

static void
cache_free_chunks(struct cache *c)
{
	for (unsigned i = 0; i < 2 * CACHE_NCLASSES; i++) {
		uint32_t id = c->cls[i].last;
		while (id != CACHE_NIL) {
			uint32_t prev = cache_chunk_prev(c, id);
			if (!cache_in_arena(c, i))
				free(c->chunks[id].mem);
			id = prev;
		}
		c->cls[i].last = CACHE_NIL;
		c->cls[i].n_last = 0;
	}
	cache_arenas_release(&c->arenas); /* the arena chunks, all at once */
}

void
cache_free(struct cache *c)
{
	if (c == NULL)
		return;
	if (c->chunks != NULL)
		cache_free_chunks(c);
	free(c->chunks);
	free(c->buckets);
	free(c->owners);
	free(c);
}

void
cache_clear(struct cache *c)
{
	cache_free_chunks(c);
	c->bytes -= c->chunk_bytes;
	c->chunk_bytes = 0;
	c->chunks_used = 0;
	c->free_id = c->lru_head = c->lru_tail = CACHE_NIL;
	memset(c->buckets, 0xff, ((size_t)c->mask + 1) * sizeof(*c->buckets));
	c->entries = c->negative = c->indexed = 0;
	c->insertions = c->evictions = 0;
	if (c->mask + 1 > CACHE_MIN_BUCKETS)
		(void)cache_rehash(c, CACHE_MIN_BUCKETS);
	if (c->owners != NULL) {
		memset(c->owners, 0xff, ((size_t)c->owner_mask + 1) * sizeof(*c->owners));
		if (c->owner_mask + 1 > CACHE_MIN_OWNERS)
			(void)cache_owner_rehash(c, CACHE_MIN_OWNERS);
	}
}

/* Drop the matching records of one class, walking its chunks from the last slot down so a
 * record moved into a hole has already been looked at. */
static size_t
cache_invalidate_class(struct cache *c, unsigned idx, const uint8_t *name, size_t name_len)
{
	uint32_t id = c->cls[idx].last, n = c->cls[idx].n_last, per;
	size_t dropped = 0;

	if (id == CACHE_NIL)
		return 0;
	per = cache_class_per(c, idx);
	while (id != CACHE_NIL) {
		uint32_t prev = cache_chunk_prev(c, id);
		for (uint32_t s = n; s-- > 0;) {
			uint32_t h = cache_slot(idx, id, s);
			struct cache_rec *r = cache_rec(c, h);
			c->inval_reads++;
			if (dnsmsg_name_in_zone(cache_image(r) + DNS_HDR_LEN, r->qname_len, name,
						name_len)) {
				cache_drop(c, h);
				dropped++;
			}
		}
		id = prev;
		n = per;
	}
	return dropped;
}

/* Drop the members of the group of `owner` that are at or below `name`. */
static size_t
cache_invalidate_group(struct cache *c, const uint8_t *owner, size_t owner_len, const uint8_t *name,
		       size_t name_len)
{
	uint32_t h = *cache_owner_head(c, owner, owner_len);
	size_t dropped = 0;

	while (h != CACHE_NIL) {
		struct cache_rec *r = cache_rec(c, h);
		uint32_t next = cache_ilinks(r)[1];

		c->inval_reads++;
		if (dnsmsg_name_in_zone(cache_image(r) + DNS_HDR_LEN, r->qname_len, name,
					name_len)) {
			/* the class's last record moves into h: if that was the next, it is at h */
			if (cache_drop(c, h) == next)
				next = h;
			dropped++;
		}
		h = next;
	}
	return dropped;
}

/* Are all the entries at or below `name` (n labels, in watched zone w) in one owner group? Not
 * when the name is above the owner depth, nor when another watched zone lies below it. */
static bool
cache_one_group(const struct cache *c, const struct cache_watch *w, unsigned n, const uint8_t *name,
		size_t len)
{
	if (n - w->labels < w->depth)
		return false;
	for (unsigned i = 0; i < c->n_watch; i++) {
		const struct cache_watch *v = &c->watch[i];
		if (v != w && v->labels > n && dnsmsg_name_in_zone(v->zone, v->len, name, len))
			return false;
	}
	return true;
}

size_t
cache_invalidate(struct cache *c, const uint8_t *name, size_t name_len)
{
	uint8_t lname[DNS_MAX_NAME], starts[CACHE_MAX_LABELS];
	const struct cache_watch *w;
	size_t dropped = 0;
	unsigned n;

	if (name_len == 0 || name_len > DNS_MAX_NAME)
		return 0; /* nothing can be at or below it */
	dnsmsg_name_lower(lname, name, name_len);
	w = cache_watch_of(c, lname, name_len, starts, &n);
	if (w && cache_one_group(c, w, n, lname, name_len)) {
		size_t off = cache_owner_off(w, starts, n);
		dropped = cache_invalidate_group(c, lname + off, name_len - off, lname, name_len);
	} else {
		/* In a watched zone everything at or below the name is indexed: walk only those. */
		for (unsigned i = w ? CACHE_NCLASSES : 0; i < 2 * CACHE_NCLASSES; i++)
			dropped += cache_invalidate_class(c, i, lname, name_len);
	}
	/* A put shrinks the tables a step at a time; after a mass drop, shrink all the way now. */
	for (uint32_t b = 0, o = 0; b != c->mask || o != c->owner_mask;) {
		b = c->mask;
		o = c->owner_mask;
		cache_resize(c);
	}
	return dropped;
}

int
cache_watch(struct cache *c, const uint8_t *zone, size_t zone_len, unsigned depth)
{
	uint8_t lz[DNS_MAX_NAME];
	unsigned labels = 0;
	size_t pos = 0;

	if (zone == NULL || zone_len == 0 || zone_len > DNS_MAX_NAME || depth >= CACHE_MAX_LABELS)
		return -EINVAL;
	for (; pos < zone_len && zone[pos] != 0; pos += 1 + (size_t)zone[pos])
		labels++;
	if (pos + 1 != zone_len)
		return -EINVAL;
	dnsmsg_name_lower(lz, zone, zone_len);
	for (unsigned i = 0; i < c->n_watch; i++)
		if (c->watch[i].len == zone_len && memcmp(c->watch[i].zone, lz, zone_len) == 0)
			return -EEXIST;
	if (c->n_watch == CACHE_MAX_WATCH)
		return -ENOSPC;
	if (c->owners == NULL) {
		if ((c->owners = malloc(CACHE_MIN_OWNERS * sizeof(*c->owners))) == NULL)
			return -ENOMEM;
		memset(c->owners, 0xff, CACHE_MIN_OWNERS * sizeof(*c->owners));
		c->owner_mask = CACHE_MIN_OWNERS - 1;
		c->bytes += CACHE_MIN_OWNERS * sizeof(*c->owners);
	}
	/* Entries under the zone were filed by the rules before it: drop them (the groups they
	 * are in are found by those rules), so that every entry in it is filed by the new ones. */
	for (unsigned i = 0; i < 2 * CACHE_NCLASSES; i++)
		(void)cache_invalidate_class(c, i, lz, zone_len);
	struct cache_watch *w = &c->watch[c->n_watch++];
	memcpy(w->zone, lz, zone_len);
	w->len = (uint8_t)zone_len;
	w->labels = (uint8_t)labels;
	w->depth = (uint8_t)depth;
	return 0;
}

void
cache_get_stats(const struct cache *c, struct cache_stats *out)
{
	*out = (struct cache_stats){
		.bytes = c->bytes,
		.max_bytes = c->lim.max_bytes,
		.entries = c->entries,
		.negative_entries = c->negative,
		.hits = c->hits,
		.misses = c->misses,
		.insertions = c->insertions,
		.evictions = c->evictions,
		.expired = c->expired,
		.renewed = c->renewed,
		.stale_served = c->stale_served,
		.indexed = c->indexed,
		.invalidate_reads = c->inval_reads,
	};
}

void
cache_foreach(const struct cache *c, msec_t now,
	      void (*fn)(void *ctx, const struct cache_key *key, uint32_t ttl_left,
			 const uint8_t *reply, size_t len),
	      void *ctx)
{
	for (uint32_t h = c->lru_head; h != CACHE_NIL;) {
		struct cache_rec *r = cache_rec(c, h);
		uint32_t elapsed = cache_elapsed(c, r, now);
		h = r->lru_next;
		if (elapsed >= r->lifetime)
			continue;
		const uint8_t *img = cache_image(r);
		struct cache_key key = {
			.qname = img + DNS_HDR_LEN,
			.qname_len = r->qname_len,
			.qtype = dnsmsg_get16(img + DNS_HDR_LEN + r->qname_len),
			.qclass = dnsmsg_get16(img + DNS_HDR_LEN + r->qname_len + 2),
			.flags = r->flags & (CACHE_F_DO | CACHE_F_CD),
		};
		fn(ctx, &key, r->lifetime - elapsed, img, r->len);
	}
}
