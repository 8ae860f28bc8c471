/*
 * Random access into WIM resources, the part of the WIM format wimlib keeps
 * private: chunk tables, raw chunks, solid (ESD) resources.
 *
 * A resource is a run of stored bytes in the WIM file that decompresses to
 * `size` bytes.  Non-solid compressed resources begin with a table of n-1
 * chunk offsets (4 bytes each when size fits in 32 bits, else 8), relative to
 * the end of the table; chunk 0 has no entry.  Solid resources begin with a
 * 16-byte header and one le32 stored size per chunk.  A chunk whose stored
 * size equals its uncompressed size is stored raw.  The chunk table is read
 * and checked once, on first use; chunks go through the shared chunk cache.
 *
 * Read-ahead (with a work pool, for solid resources and chunks over 1 MiB,
 * which take long to decode): a read that continues the previous one in its
 * resource has a worker decode the next two chunks, evicting older ones if
 * need be; a read that is about to decode a chunk itself has the idle worker
 * decode the next chunk not cached (wrapping around the resource), but only
 * into free room in the cache.
 * Each chunk is decoded once at a time, whoever asks first.
 *
 * Contract: every function is safe to call from many threads at once; bytes
 * from the file are never trusted (a bad table or chunk gives -EIO and a
 * logged error, never a crash).
 */
#ifndef WTGFS_WIM_RESOURCE_H
#define WTGFS_WIM_RESOURCE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct wtg_chunk_cache;
struct wtg_workpool;

/* Values of enum wimlib_compression_type, which the WIM header and the solid
 * resource header both use. */
enum wim_ctype { WIM_CTYPE_NONE = 0, WIM_CTYPE_XPRESS = 1, WIM_CTYPE_LZX = 2, WIM_CTYPE_LZMS = 3 };

/* On-disk header of a solid resource. */
struct wim_solid_header {
	uint64_t size;	     /* 0x00 le64: uncompressed size of the resource */
	uint32_t chunk_size; /* 0x08 le32 */
	uint32_t ctype;	     /* 0x0C le32: enum wim_ctype */
} __attribute__((packed));
_Static_assert(sizeof(struct wim_solid_header) == 16, "solid header is 16 bytes");

#define WIM_MAX_CHUNK_SIZE (1u << 26)

struct wim_file {
	int fd;
	uint64_t size;
	const char *path; /* for messages */
	struct wtg_chunk_cache *cache;
	struct wtg_workpool *pool; /* NULL: every chunk decoded by the reader */
	unsigned ahead;		   /* read-aheads queued or running (atomic) */
};

struct wim_resource {
	uint64_t offset; /* of the stored bytes in the file */
	uint64_t stored_size;
	uint64_t size; /* uncompressed */
	bool compressed;
	bool solid;
	int ctype;	     /* the WIM's type; a solid header names its own */
	uint32_t chunk_size; /* the WIM's; a solid header names its own */

	pthread_mutex_t lock;
	int table_state; /* 0 not read, 1 good, -EIO bad */
	uint64_t nchunks;
	uint64_t *chunk_start; /* nchunks + 1 absolute file offsets */
	uint64_t last_end;     /* where the last read through the cache ended */
};

/* Zeroes @res; the caller then fills in where and what it is. */
void wim_resource_init(struct wim_resource *res);
void wim_resource_release(struct wim_resource *res);

/* Reads @size bytes at @off of the uncompressed resource into @buf.
 * Returns 0, or -EIO when the range is outside the resource or the stored
 * bytes are bad (already logged, naming @what). */
int wim_resource_read(struct wim_file *wf, struct wim_resource *res, void *buf, size_t size,
		      uint64_t off, const char *what);

#endif
