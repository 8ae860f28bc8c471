/*
 * A bounded cache of decompressed chunks, shared by all FUSE threads.
 *
 * Keys are (owner, index): the owner is whatever object the chunk belongs to
 * (a WIM resource).  A miss is filled by the caller's function outside the
 * cache lock; other threads that want the same chunk meanwhile wait for that
 * one fill instead of decompressing it again (a solid LZMS chunk is 64 MiB).
 * Entries in use are pinned; the least recently used unpinned ones are
 * evicted when the total passes the limit.  A read-ahead fills a chunk
 * before anyone asks for it, through the same one-fill-per-chunk rule.
 *
 * A cache may follow the machine's memory (wtg_chunk_cache_follow_memory):
 * then it gives memory back when the machine runs short, and takes it again
 * up to its limit when memory returns.
 */
#ifndef WTGFS_CHUNK_CACHE_H
#define WTGFS_CHUNK_CACHE_H

#include <stdbool.h>
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
	uint64_t effective; /* the limit now: below @limit while memory is short */
	uint64_t ahead;	    /* chunks filled by wtg_chunk_cache_fill_ahead */
	uint64_t ahead_skipped; /* read-aheads not made: cached, being filled, or no room */
};

enum { WTG_CHUNK_ABSENT, WTG_CHUNK_LOADING, WTG_CHUNK_READY };

/* The machine's memory in bytes: what it can spare now (MemAvailable) and
 * what it has (MemTotal). */
struct wtg_memory {
	uint64_t available, total;
};
typedef int (*wtg_memory_fn)(struct wtg_memory *mem_ret);
/* Reads /proc/meminfo: 0, or -errno when it cannot tell. */
int wtg_memory_read(struct wtg_memory *mem_ret);

/* The default limit of a cache that @want bytes would fill: @want, but no
 * more than a quarter of the available memory, and never below @floor. */
size_t wtg_chunk_cache_pick_limit(uint64_t want, size_t floor, const struct wtg_memory *mem);

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

/* Fills the chunk (@owner, @index) before it is asked for, and leaves it
 * unpinned, most recently used.  Skipped (returns 0) when the chunk is
 * cached or being filled already, or when it does not fit: with @may_evict
 * false it must fit in room no chunk uses; with @may_evict true it may push
 * out the least recently used chunks, but only when it is at most a third
 * of the limit (the chunk in use and two ahead fit).  Returns 1 when
 * filled, or the fill's -errno. */
int wtg_chunk_cache_fill_ahead(struct wtg_chunk_cache *cache, const void *owner, uint64_t index,
			       size_t size, bool may_evict, wtg_chunk_fill_fn fill, void *arg);

/* WTG_CHUNK_ABSENT, _LOADING (a fill runs) or _READY, as of now. */
int wtg_chunk_cache_state(struct wtg_chunk_cache *cache, const void *owner, uint64_t index);
/* Bytes below the effective limit that no chunk uses, as of now. */
size_t wtg_chunk_cache_room(struct wtg_chunk_cache *cache);

/* Makes @cache follow memory: at most once a second, a miss compares the
 * available memory with a reserve (a sixteenth of the total, at least
 * 256 MiB) and lowers the effective limit by the shortfall, never below
 * @floor; with memory to spare again, the limit climbs back.  @probe NULL
 * reads /proc/meminfo (tests pass their own). */
void wtg_chunk_cache_follow_memory(struct wtg_chunk_cache *cache, size_t floor,
				   wtg_memory_fn probe);
/* Checks memory now (what a miss does once a second). */
void wtg_chunk_cache_check_memory(struct wtg_chunk_cache *cache);

void wtg_chunk_cache_get_stats(struct wtg_chunk_cache *cache, struct wtg_chunk_cache_stats *st);

#endif
