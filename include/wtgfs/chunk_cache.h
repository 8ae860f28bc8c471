/*
 * A bounded cache of decompressed chunks, shared by all FUSE threads.
 *
 * Keys are (owner, index): the owner is whatever object the chunk belongs to
 * (a WIM resource).  A miss is filled by the caller's function outside the
 * cache lock; other threads that want the same chunk meanwhile wait for that
 * one fill instead of decompressing it again (a solid LZMS chunk is 64 MiB).
 * Entries in use are pinned; the least recently used unpinned ones are
 * evicted when the total passes the limit.
 */
#ifndef WTGFS_CHUNK_CACHE_H
#define WTGFS_CHUNK_CACHE_H

#include <stddef.h>
#include <stdint.h>

struct wtg_chunk_cache;
struct wtg_chunk_entry;

struct wtg_chunk_ref {
	struct wtg_chunk_entry *entry;
	const uint8_t *data;
	size_t size;
};

struct wtg_chunk_cache_stats {
	uint64_t hits, misses, waits, evictions, bytes, limit;
};

/* Fills @buf with @size bytes; returns 0 or -errno (not cached then). */
typedef int (*wtg_chunk_fill_fn)(void *arg, void *buf, size_t size);

struct wtg_chunk_cache *wtg_chunk_cache_new(size_t limit_bytes);
void wtg_chunk_cache_free(struct wtg_chunk_cache *cache);

/* Pins the chunk (@owner, @index) of @size bytes, filling it on a miss.
 * Returns 0 with *ref_ret set, or the fill's -errno.  Pair with _put. */
int wtg_chunk_cache_get(struct wtg_chunk_cache *cache, const void *owner, uint64_t index,
			size_t size, wtg_chunk_fill_fn fill, void *arg,
			struct wtg_chunk_ref *ref_ret);
void wtg_chunk_cache_put(struct wtg_chunk_cache *cache, struct wtg_chunk_ref *ref);

void wtg_chunk_cache_get_stats(struct wtg_chunk_cache *cache, struct wtg_chunk_cache_stats *st);

#endif
