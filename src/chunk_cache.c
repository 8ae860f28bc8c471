/*
 * Decompressed-chunk cache: hash table + LRU list under one mutex.  Fills run
 * unlocked; a LOADING entry makes later readers of the same key wait on the
 * condition variable rather than decode the chunk a second time.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "wtgfs/chunk_cache.h"

enum { ENTRY_LOADING, ENTRY_READY };

struct wtg_chunk_entry {
	const void *owner;
	uint64_t index;
	uint8_t *data;
	size_t size;
	int state;
	unsigned pins;
	struct wtg_chunk_entry *hash_next;
	struct wtg_chunk_entry *lru_prev, *lru_next; /* only while unpinned */
};

struct wtg_chunk_cache {
	pthread_mutex_t lock;
	pthread_cond_t filled;
	struct wtg_chunk_entry **buckets;
	size_t nbuckets;
	struct wtg_chunk_entry lru; /* sentinel: next is most recent */
	size_t bytes, limit;
	struct wtg_chunk_cache_stats stats;
};

static size_t bucket_of(const struct wtg_chunk_cache *c, const void *owner, uint64_t index)
{
	uint64_t h =
	    (uint64_t)(uintptr_t)owner * 0x9E3779B97F4A7C15ull ^ (index * 0xC2B2AE3D27D4EB4Full);
	return (size_t)(h ^ (h >> 29)) & (c->nbuckets - 1);
}

struct wtg_chunk_cache *wtg_chunk_cache_new(size_t limit_bytes)
{
	struct wtg_chunk_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->nbuckets = 4096;
	c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
	if (!c->buckets) {
		free(c);
		return NULL;
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->filled, NULL);
	c->lru.lru_next = c->lru.lru_prev = &c->lru;
	c->limit = limit_bytes;
	return c;
}

void wtg_chunk_cache_free(struct wtg_chunk_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nbuckets; i++) {
		struct wtg_chunk_entry *e = c->buckets[i], *next;
		for (; e; e = next) {
			next = e->hash_next;
			free(e->data);
			free(e);
		}
	}
	free(c->buckets);
	pthread_cond_destroy(&c->filled);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static void lru_unlink(struct wtg_chunk_entry *e)
{
	e->lru_prev->lru_next = e->lru_next;
	e->lru_next->lru_prev = e->lru_prev;
	e->lru_prev = e->lru_next = NULL;
}

static void lru_push_front(struct wtg_chunk_cache *c, struct wtg_chunk_entry *e)
{
	e->lru_next = c->lru.lru_next;
	e->lru_prev = &c->lru;
	c->lru.lru_next->lru_prev = e;
	c->lru.lru_next = e;
}

static void hash_remove(struct wtg_chunk_cache *c, struct wtg_chunk_entry *e)
{
	struct wtg_chunk_entry **p = &c->buckets[bucket_of(c, e->owner, e->index)];

	while (*p != e)
		p = &(*p)->hash_next;
	*p = e->hash_next;
}

/* Drops unpinned entries from the cold end until the cache fits. */
static void evict(struct wtg_chunk_cache *c)
{
	while (c->bytes > c->limit && c->lru.lru_prev != &c->lru) {
		struct wtg_chunk_entry *e = c->lru.lru_prev;
		lru_unlink(e);
		hash_remove(c, e);
		c->bytes -= e->size;
		c->stats.evictions++;
		free(e->data);
		free(e);
	}
}

static void pin(struct wtg_chunk_entry *e)
{
	if (e->pins++ == 0 && e->lru_next)
		lru_unlink(e);
}

int wtg_chunk_cache_get(struct wtg_chunk_cache *c, const void *owner, uint64_t index, size_t size,
			wtg_chunk_fill_fn fill, void *arg, struct wtg_chunk_ref *ref_ret)
{
	struct wtg_chunk_entry *e;
	int ret;

	pthread_mutex_lock(&c->lock);
again:
	for (e = c->buckets[bucket_of(c, owner, index)]; e; e = e->hash_next)
		if (e->owner == owner && e->index == index)
			break;
	if (e) {
		if (e->state == ENTRY_LOADING) {
			c->stats.waits++;
			pthread_cond_wait(&c->filled, &c->lock);
			goto again; /* the fill may have failed and removed it */
		}
		c->stats.hits++;
		pin(e);
		pthread_mutex_unlock(&c->lock);
		*ref_ret = (struct wtg_chunk_ref){.entry = e, .data = e->data, .size = e->size};
		return 0;
	}

	c->stats.misses++;
	e = calloc(1, sizeof(*e));
	if (e)
		e->data = malloc(size ? size : 1);
	if (!e || !e->data) {
		free(e);
		pthread_mutex_unlock(&c->lock);
		return -ENOMEM;
	}
	e->owner = owner;
	e->index = index;
	e->size = size;
	e->state = ENTRY_LOADING;
	e->pins = 1;
	size_t b = bucket_of(c, owner, index);
	e->hash_next = c->buckets[b];
	c->buckets[b] = e;
	c->bytes += size;
	evict(c);
	pthread_mutex_unlock(&c->lock);

	ret = fill(arg, e->data, size);

	pthread_mutex_lock(&c->lock);
	if (ret < 0) {
		hash_remove(c, e);
		c->bytes -= size;
		free(e->data);
		free(e);
	} else {
		e->state = ENTRY_READY;
		*ref_ret = (struct wtg_chunk_ref){.entry = e, .data = e->data, .size = e->size};
	}
	pthread_cond_broadcast(&c->filled);
	pthread_mutex_unlock(&c->lock);
	return ret < 0 ? ret : 0;
}

void wtg_chunk_cache_put(struct wtg_chunk_cache *c, struct wtg_chunk_ref *ref)
{
	struct wtg_chunk_entry *e = ref->entry;

	if (!e)
		return;
	pthread_mutex_lock(&c->lock);
	if (--e->pins == 0) {
		lru_push_front(c, e);
		evict(c);
	}
	pthread_mutex_unlock(&c->lock);
	ref->entry = NULL;
	ref->data = NULL;
}

void wtg_chunk_cache_get_stats(struct wtg_chunk_cache *c, struct wtg_chunk_cache_stats *st)
{
	pthread_mutex_lock(&c->lock);
	*st = c->stats;
	st->bytes = c->bytes;
	st->limit = c->limit;
	pthread_mutex_unlock(&c->lock);
}
