/*
 * The WIM source's own random-access reader: chunk tables (4- and 8-byte
 * entries), raw chunks, solid resources with their own header and chunk
 * size, wimlib's decompressors (one per thread and type: a decompressor is
 * not thread-safe) and the shared decompressed-chunk cache.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wimlib.h>

#include "wtgfs/chunk_cache.h"
#include "wtgfs/log.h"
#include "wtgfs/wim_resource.h"

/* ---- per-thread decompressors ---- */

#define DECOMPRESSOR_SLOTS 4

/* Chunks up to this size are decoded straight into a read that covers them. */
#define DIRECT_CHUNK_MAX (1u << 20)

struct decompressors {
	struct {
		int ctype;
		size_t max_block;
		struct wimlib_decompressor *d;
	} slot[DECOMPRESSOR_SLOTS];
};

static pthread_key_t decompressor_key;
static pthread_once_t decompressor_once = PTHREAD_ONCE_INIT;

static void decompressors_free(void *p)
{
	struct decompressors *ds = p;

	for (int i = 0; i < DECOMPRESSOR_SLOTS; i++)
		if (ds->slot[i].d)
			wimlib_free_decompressor(ds->slot[i].d);
	free(ds);
}

static void decompressor_key_init(void)
{
	pthread_key_create(&decompressor_key, decompressors_free);
}

static struct wimlib_decompressor *get_decompressor(int ctype, size_t max_block)
{
	struct decompressors *ds;
	int victim = 0;

	pthread_once(&decompressor_once, decompressor_key_init);
	ds = pthread_getspecific(decompressor_key);
	if (!ds) {
		ds = calloc(1, sizeof(*ds));
		if (!ds)
			return NULL;
		pthread_setspecific(decompressor_key, ds);
	}
	for (int i = 0; i < DECOMPRESSOR_SLOTS; i++) {
		if (ds->slot[i].d && ds->slot[i].ctype == ctype &&
		    ds->slot[i].max_block == max_block)
			return ds->slot[i].d;
		if (!ds->slot[i].d)
			victim = i;
	}
	if (ds->slot[victim].d)
		wimlib_free_decompressor(ds->slot[victim].d);
	ds->slot[victim].d = NULL;
	if (wimlib_create_decompressor((enum wimlib_compression_type)ctype, max_block,
				       &ds->slot[victim].d) != 0)
		return NULL;
	ds->slot[victim].ctype = ctype;
	ds->slot[victim].max_block = max_block;
	return ds->slot[victim].d;
}

/* ---- resources ---- */

void wim_resource_init(struct wim_resource *res)
{
	pthread_mutex_init(&res->lock, NULL);
	res->table_state = 0;
	res->chunk_start = NULL;
	res->nchunks = 0;
}

void wim_resource_release(struct wim_resource *res)
{
	free(res->chunk_start);
	res->chunk_start = NULL;
	pthread_mutex_destroy(&res->lock);
}

static int pread_full(struct wim_file *wf, void *buf, size_t size, uint64_t off)
{
	uint8_t *p = buf;

	if (off > wf->size || size > wf->size - off)
		return -EIO;
	while (size) {
		ssize_t n = pread(wf->fd, p, size, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EIO;
		p += n;
		size -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static bool ctype_ok(uint32_t ctype)
{
	return ctype == WIM_CTYPE_XPRESS || ctype == WIM_CTYPE_LZX || ctype == WIM_CTYPE_LZMS;
}

static bool chunk_size_ok(uint32_t cs)
{
	return cs >= 4096 && cs <= WIM_MAX_CHUNK_SIZE && (cs & (cs - 1)) == 0;
}

/* Reads and checks the chunk table of a non-solid compressed resource. */
static int load_table(struct wim_file *wf, struct wim_resource *res, const char *what)
{
	uint64_t n = (res->size + res->chunk_size - 1) / res->chunk_size;
	unsigned esize = res->size > UINT32_MAX ? 8 : 4;
	uint64_t tsize = (n - 1) * esize;
	uint8_t *raw = NULL;
	int ret = -EIO;

	if (tsize > res->stored_size) {
		wtg_error("'%s' in '%s': chunk table larger than its resource", what, wf->path);
		return -EIO;
	}
	res->chunk_start = malloc((n + 1) * sizeof(uint64_t));
	raw = malloc(tsize ? tsize : 1);
	if (!res->chunk_start || !raw) {
		ret = -ENOMEM;
		goto out;
	}
	if (pread_full(wf, raw, tsize, res->offset) < 0) {
		wtg_error("'%s' in '%s': cannot read chunk table (truncated WIM?)", what, wf->path);
		goto out;
	}
	uint64_t data = res->offset + tsize, data_size = res->stored_size - tsize;
	res->chunk_start[0] = data;
	for (uint64_t i = 1; i < n; i++) {
		uint64_t rel;
		if (esize == 4) {
			uint32_t v;
			memcpy(&v, raw + (i - 1) * 4, 4);
			rel = le32toh(v);
		} else {
			uint64_t v;
			memcpy(&v, raw + (i - 1) * 8, 8);
			rel = le64toh(v);
		}
		if (rel > data_size || data + rel < res->chunk_start[i - 1]) {
			wtg_error("'%s' in '%s': chunk table entry %" PRIu64 " is out of order",
				  what, wf->path, i);
			goto out;
		}
		res->chunk_start[i] = data + rel;
	}
	res->chunk_start[n] = data + data_size;
	res->nchunks = n;
	ret = 0;
out:
	free(raw);
	if (ret < 0) {
		free(res->chunk_start);
		res->chunk_start = NULL;
	}
	return ret;
}

/* Reads and checks the header and chunk sizes of a solid resource. */
static int load_solid_table(struct wim_file *wf, struct wim_resource *res, const char *what)
{
	struct wim_solid_header hdr;
	uint8_t *raw = NULL;
	int ret = -EIO;

	if (res->stored_size < sizeof(hdr) || pread_full(wf, &hdr, sizeof(hdr), res->offset) < 0) {
		wtg_error("'%s' in '%s': cannot read solid resource header", what, wf->path);
		return -EIO;
	}
	uint64_t usize = le64toh(hdr.size);
	uint32_t cs = le32toh(hdr.chunk_size), ctype = le32toh(hdr.ctype);
	if (usize != res->size || !chunk_size_ok(cs) || !ctype_ok(ctype)) {
		wtg_error("'%s' in '%s': bad solid resource header (size %" PRIu64
			  ", chunk size %u, compression %u)",
			  what, wf->path, usize, cs, ctype);
		return -EIO;
	}
	uint64_t n = (usize + cs - 1) / cs;
	if (n > (res->stored_size - sizeof(hdr)) / 4) {
		wtg_error("'%s' in '%s': solid chunk table larger than its resource", what,
			  wf->path);
		return -EIO;
	}
	res->chunk_start = malloc((n + 1) * sizeof(uint64_t));
	raw = malloc(n ? n * 4 : 1);
	if (!res->chunk_start || !raw) {
		ret = -ENOMEM;
		goto out;
	}
	if (pread_full(wf, raw, n * 4, res->offset + sizeof(hdr)) < 0) {
		wtg_error("'%s' in '%s': cannot read solid chunk table (truncated WIM?)", what,
			  wf->path);
		goto out;
	}
	uint64_t pos = res->offset + sizeof(hdr) + n * 4, end = res->offset + res->stored_size;
	for (uint64_t i = 0; i < n; i++) {
		uint32_t v;
		memcpy(&v, raw + i * 4, 4);
		v = le32toh(v);
		res->chunk_start[i] = pos;
		if (v > end - pos) {
			wtg_error("'%s' in '%s': solid chunk %" PRIu64 " runs past its resource",
				  what, wf->path, i);
			goto out;
		}
		pos += v;
	}
	res->chunk_start[n] = pos;
	res->nchunks = n;
	res->chunk_size = cs;
	res->ctype = (int)ctype;
	ret = 0;
out:
	free(raw);
	if (ret < 0) {
		free(res->chunk_start);
		res->chunk_start = NULL;
	}
	return ret;
}

static int ensure_table(struct wim_file *wf, struct wim_resource *res, const char *what)
{
	int ret;

	pthread_mutex_lock(&res->lock);
	if (res->table_state == 0) {
		if (res->solid)
			ret = load_solid_table(wf, res, what);
		else if (!chunk_size_ok(res->chunk_size) || !ctype_ok((uint32_t)res->ctype) ||
			 res->size == 0) {
			wtg_error("'%s' in '%s': bad compressed resource", what, wf->path);
			ret = -EIO;
		} else
			ret = load_table(wf, res, what);
		res->table_state = ret < 0 ? ret : 1;
	}
	ret = res->table_state < 0 ? res->table_state : 0;
	pthread_mutex_unlock(&res->lock);
	return ret;
}

struct chunk_fill {
	struct wim_file *wf;
	struct wim_resource *res;
	uint64_t index;
	const char *what;
};

static int fill_chunk(void *arg, void *buf, size_t usize)
{
	struct chunk_fill *cf = arg;
	struct wim_resource *res = cf->res;
	uint64_t start = res->chunk_start[cf->index];
	uint64_t ssize = res->chunk_start[cf->index + 1] - start;
	int ret;

	if (ssize == usize)
		return pread_full(cf->wf, buf, usize, start) < 0 ? -EIO : 0;
	if (ssize == 0 || ssize > usize) {
		wtg_error("'%s' in '%s': chunk %" PRIu64 " has a bad stored size", cf->what,
			  cf->wf->path, cf->index);
		return -EIO;
	}
	void *in = malloc(ssize);
	if (!in)
		return -ENOMEM;
	ret = pread_full(cf->wf, in, ssize, start);
	if (ret < 0) {
		wtg_error("'%s' in '%s': cannot read chunk %" PRIu64 " (truncated WIM?)", cf->what,
			  cf->wf->path, cf->index);
		goto out;
	}
	struct wimlib_decompressor *d = get_decompressor(res->ctype, res->chunk_size);
	if (!d) {
		ret = -ENOMEM;
		goto out;
	}
	if (wimlib_decompress(in, ssize, buf, usize, d) != 0) {
		wtg_error("'%s' in '%s': chunk %" PRIu64 " does not decompress", cf->what,
			  cf->wf->path, cf->index);
		ret = -EIO;
	}
out:
	free(in);
	return ret;
}

int wim_resource_read(struct wim_file *wf, struct wim_resource *res, void *buf, size_t size,
		      uint64_t off, const char *what)
{
	uint8_t *out = buf;
	int ret;

	if (off > res->size || size > res->size - off)
		return -EIO;
	if (size == 0)
		return 0;
	if (!res->compressed && !res->solid) {
		if (res->size != res->stored_size ||
		    pread_full(wf, buf, size, res->offset + off) < 0) {
			wtg_error("'%s' in '%s': cannot read data (truncated WIM?)", what,
				  wf->path);
			return -EIO;
		}
		return 0;
	}
	ret = ensure_table(wf, res, what);
	if (ret < 0)
		return ret;

	while (size) {
		uint64_t index = off / res->chunk_size;
		uint64_t cstart = index * res->chunk_size;
		size_t csize = (size_t)(index + 1 == res->nchunks ? res->size - cstart : res->chunk_size);
		size_t in_chunk = (size_t)(off - cstart);
		size_t n = csize - in_chunk < size ? csize - in_chunk : size;
		struct chunk_fill cf = {.wf = wf, .res = res, .index = index, .what = what};
		struct wtg_chunk_ref ref;

		/* A whole small chunk goes straight to the caller: the kernel's
		 * page cache keeps what was read, so caching it here too would
		 * only cost memory and a copy.  Partial chunks, and the large
		 * chunks of solid resources, go through the cache. */
		if (n == csize && csize <= DIRECT_CHUNK_MAX) {
			ret = fill_chunk(&cf, out, csize);
		} else {
			ret = wtg_chunk_cache_get(wf->cache, res, index, csize, fill_chunk, &cf, &ref);
			if (ret == 0) {
				memcpy(out, ref.data + in_chunk, n);
				wtg_chunk_cache_put(wf->cache, &ref);
			}
		}
		if (ret < 0)
			return ret;
		out += n;
		off += n;
		size -= n;
	}
	return 0;
}
