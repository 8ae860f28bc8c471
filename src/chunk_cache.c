/*
 * Decompressed-chunk cache: hash table + LRU list under one mutex.  Fills run
 * unlocked; a LOADING entry makes later readers of the same key wait on the
 * condition variable rather than decode the chunk a second time.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
	size_t effective; /* limit, or less while memory is short */
	wtg_memory_fn probe; /* NULL: the limit is fixed */
	size_t floor;
	time_t checked; /* CLOCK_MONOTONIC seconds of the last memory check */
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
	c->limit = c->effective = limit_bytes;
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
	while (c->bytes > c->effective && c->lru.lru_prev != &c->lru) {
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

/* Moves the effective limit by what the machine can spare beyond a reserve:
 * down by a shortfall, up (to the limit) by a surplus. */
static void check_memory_locked(struct wtg_chunk_cache *c)
{
	struct wtg_memory mem;

	if (c->probe(&mem) < 0 || !mem.total)
		return;
	uint64_t reserve = mem.total / 16 > (256u << 20) ? mem.total / 16 : (256u << 20);
	uint64_t target;
	if (mem.available < reserve) {
		uint64_t short_by = reserve - mem.available;
		target = c->bytes > short_by ? c->bytes - short_by : 0;
	} else {
		target = (uint64_t)c->effective + (mem.available - reserve);
	}
	if (target > c->limit)
		target = c->limit;
	if (target < c->floor)
		target = c->floor < c->limit ? c->floor : c->limit;
	c->effective = (size_t)target;
	evict(c);
}

static struct wtg_chunk_entry *lookup(struct wtg_chunk_cache *c, const void *owner,
				      uint64_t index)
{
	struct wtg_chunk_entry *e;

	for (e = c->buckets[bucket_of(c, owner, index)]; e; e = e->hash_next)
		if (e->owner == owner && e->index == index)
			return e;
	return NULL;
}

/* Adds a pinned LOADING entry for a miss; NULL when out of memory. */
static struct wtg_chunk_entry *insert_loading(struct wtg_chunk_cache *c, const void *owner,
					      uint64_t index, size_t size)
{
	struct wtg_chunk_entry *e = calloc(1, sizeof(*e));

	if (e)
		e->data = malloc(size ? size : 1);
	if (!e || !e->data) {
		free(e);
		return NULL;
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
	return e;
}

/* Runs @fill into @e outside the lock and wakes its waiters; a failed fill
 * leaves nothing behind.  Called and returns with the lock held. */
static int fill_entry(struct wtg_chunk_cache *c, struct wtg_chunk_entry *e,
		      wtg_chunk_fill_fn fill, void *arg)
{
	pthread_mutex_unlock(&c->lock);
	int ret = fill(arg, e->data, e->size);
	pthread_mutex_lock(&c->lock);
	if (ret < 0) {
		hash_remove(c, e);
		c->bytes -= e->size;
		free(e->data);
		free(e);
	} else {
		e->state = ENTRY_READY;
	}
	pthread_cond_broadcast(&c->filled);
	return ret < 0 ? ret : 0;
}

static void check_memory_now(struct wtg_chunk_cache *c)
{
	struct timespec now;

	if (!c->probe)
		return;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
	if (now.tv_sec != c->checked) {
		c->checked = now.tv_sec;
		check_memory_locked(c);
	}
}

int wtg_chunk_cache_get(struct wtg_chunk_cache *c, const void *owner, uint64_t index, size_t size,
			wtg_chunk_fill_fn fill, void *arg, struct wtg_chunk_ref *ref_ret)
{
	struct wtg_chunk_entry *e;
	int ret;

	pthread_mutex_lock(&c->lock);
	while ((e = lookup(c, owner, index)) && e->state == ENTRY_LOADING) {
		c->stats.waits++;
		pthread_cond_wait(&c->filled, &c->lock);
		/* look again: the fill may have failed and removed it */
	}
	if (e) {
		c->stats.hits++;
		pin(e);
		pthread_mutex_unlock(&c->lock);
		*ref_ret = (struct wtg_chunk_ref){.entry = e, .data = e->data, .size = e->size};
		return 0;
	}

	c->stats.misses++;
	check_memory_now(c);
	e = insert_loading(c, owner, index, size);
	if (!e) {
		pthread_mutex_unlock(&c->lock);
		return -ENOMEM;
	}
	ret = fill_entry(c, e, fill, arg);
	pthread_mutex_unlock(&c->lock);
	if (ret == 0)
		*ref_ret = (struct wtg_chunk_ref){.entry = e, .data = e->data, .size = e->size};
	return ret;
}

int wtg_chunk_cache_fill_ahead(struct wtg_chunk_cache *c, const void *owner, uint64_t index,
			       size_t size, bool may_evict, wtg_chunk_fill_fn fill, void *arg)
{
	struct wtg_chunk_entry *e;
	int ret = 0;

	pthread_mutex_lock(&c->lock);
	check_memory_now(c);
	bool fits = may_evict ? size <= c->effective / 3
			      : c->bytes <= c->effective && size <= c->effective - c->bytes;
	if (lookup(c, owner, index) || !fits) {
		c->stats.ahead_skipped++;
		goto out;
	}
	e = insert_loading(c, owner, index, size);
	if (!e) {
		ret = -ENOMEM;
		goto out;
	}
	ret = fill_entry(c, e, fill, arg);
	if (ret == 0) {
		c->stats.ahead++;
		if (--e->pins == 0) {
			lru_push_front(c, e);
			evict(c);
		}
		ret = 1;
	}
out:
	pthread_mutex_unlock(&c->lock);
	return ret;
}

int wtg_chunk_cache_state(struct wtg_chunk_cache *c, const void *owner, uint64_t index)
{
	pthread_mutex_lock(&c->lock);
	struct wtg_chunk_entry *e = lookup(c, owner, index);
	int state = !e ? WTG_CHUNK_ABSENT
		       : e->state == ENTRY_LOADING ? WTG_CHUNK_LOADING : WTG_CHUNK_READY;
	pthread_mutex_unlock(&c->lock);
	return state;
}

size_t wtg_chunk_cache_room(struct wtg_chunk_cache *c)
{
	pthread_mutex_lock(&c->lock);
	size_t room = c->bytes < c->effective ? c->effective - c->bytes : 0;
	pthread_mutex_unlock(&c->lock);
	return room;
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
	st->effective = c->effective;
	pthread_mutex_unlock(&c->lock);
}

void wtg_chunk_cache_follow_memory(struct wtg_chunk_cache *c, size_t floor, wtg_memory_fn probe)
{
	pthread_mutex_lock(&c->lock);
	c->probe = probe ? probe : wtg_memory_read;
	c->floor = floor;
	pthread_mutex_unlock(&c->lock);
}

void wtg_chunk_cache_check_memory(struct wtg_chunk_cache *c)
{
	pthread_mutex_lock(&c->lock);
	if (c->probe)
		check_memory_locked(c);
	pthread_mutex_unlock(&c->lock);
}

int wtg_memory_read(struct wtg_memory *mem)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[128];
	unsigned seen = 0;

	if (!f)
		return -errno;
	memset(mem, 0, sizeof(*mem));
	while (seen != 3 && fgets(line, sizeof(line), f)) {
		uint64_t kib;
		if (sscanf(line, "MemAvailable: %" SCNu64, &kib) == 1) {
			mem->available = kib << 10;
			seen |= 1;
		} else if (sscanf(line, "MemTotal: %" SCNu64, &kib) == 1) {
			mem->total = kib << 10;
			seen |= 2;
		}
	}
	fclose(f);
	return seen == 3 ? 0 : -ENODATA;
}

size_t wtg_chunk_cache_pick_limit(uint64_t want, size_t floor, const struct wtg_memory *mem)
{
	uint64_t limit = want;

	if (mem && mem->available && limit > mem->available / 4)
		limit = mem->available / 4;
	if (limit < floor)
		limit = floor;
	return limit > SIZE_MAX ? SIZE_MAX : (size_t)limit;
}
