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
#include "wtgfs/fileio.h"
#include "wtgfs/le.h"
#include "wtgfs/log.h"
#include "wtgfs/wim_resource.h"
#include "wtgfs/workpool.h"

/* ---- per-thread decompressors ---- */

#define DECOMPRESSOR_SLOTS 4

/* Chunks up to this size are decoded straight into a read that covers them. */
#define DIRECT_CHUNK_MAX (1u << 20)
/* A read covering at least this many whole chunks shares them with a worker. */
#define PARALLEL_MIN_CHUNKS 4

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

/* This thread's decompressor for @ctype and chunks up to @max_block bytes:
 * 0, -ENOMEM, or -EINVAL when wimlib refuses the pair (XPRESS and LZX
 * chunks are at most 64 KiB and 2 MiB; a header may claim anything). */
static int get_decompressor(int ctype, size_t max_block, struct wimlib_decompressor **d_ret)
{
	struct decompressors *ds;
	int victim = 0;

	pthread_once(&decompressor_once, decompressor_key_init);
	ds = pthread_getspecific(decompressor_key);
	if (!ds) {
		ds = calloc(1, sizeof(*ds));
		if (!ds)
			return -ENOMEM;
		pthread_setspecific(decompressor_key, ds);
	}
	for (int i = 0; i < DECOMPRESSOR_SLOTS; i++) {
		if (ds->slot[i].d && ds->slot[i].ctype == ctype &&
		    ds->slot[i].max_block == max_block) {
			*d_ret = ds->slot[i].d;
			return 0;
		}
		if (!ds->slot[i].d)
			victim = i;
	}
	if (ds->slot[victim].d)
		wimlib_free_decompressor(ds->slot[victim].d);
	ds->slot[victim].d = NULL;
	int code = wimlib_create_decompressor((enum wimlib_compression_type)ctype, max_block,
					      &ds->slot[victim].d);
	if (code != 0)
		return code == WIMLIB_ERR_NOMEM ? -ENOMEM : -EINVAL;
	ds->slot[victim].ctype = ctype;
	ds->slot[victim].max_block = max_block;
	*d_ret = ds->slot[victim].d;
	return 0;
}

/* ---- resources ---- */

void wim_resource_init(struct wim_resource *res)
{
	memset(res, 0, sizeof(*res));
	pthread_mutex_init(&res->lock, NULL);
}

void wim_resource_release(struct wim_resource *res)
{
	free(res->chunk_start);
	res->chunk_start = NULL;
	pthread_mutex_destroy(&res->lock);
}

static int pread_full(struct wim_file *wf, void *buf, size_t size, uint64_t off)
{
	if (off > wf->size || size > wf->size - off)
		return -EIO;
	return wtg_pread_all(wf->fd, buf, size, off) ? -EIO : 0;
}

static bool ctype_ok(uint32_t ctype)
{
	return ctype == WIM_CTYPE_XPRESS || ctype == WIM_CTYPE_LZX || ctype == WIM_CTYPE_LZMS;
}

static bool chunk_size_ok(uint32_t cs)
{
	return cs >= 4096 && cs <= WIM_MAX_CHUNK_SIZE && (cs & (cs - 1)) == 0;
}

/* How many chunks of @cs bytes hold @size bytes: (size + cs - 1) / cs
 * wraps to almost nothing for a size near 2^64. */
static uint64_t chunk_count(uint64_t size, uint32_t cs)
{
	return size / cs + (size % cs != 0);
}

/* The stored bytes lie inside the file: every offset computed from them
 * below stays under the file size, far from wrapping. */
static bool within_file(const struct wim_file *wf, const struct wim_resource *res)
{
	return res->offset <= wf->size && res->stored_size <= wf->size - res->offset;
}

/* Reads and checks the chunk table of a non-solid compressed resource. */
static int load_table(struct wim_file *wf, struct wim_resource *res, const char *what)
{
	uint64_t n = chunk_count(res->size, res->chunk_size);
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
		uint64_t rel = esize == 4 ? wtg_get_le32(raw + (i - 1) * 4)
					  : wtg_get_le64(raw + (i - 1) * 8);
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
	/* n chunks of cs bytes cover the size exactly (the last one short),
	 * and their table fits the resource */
	uint64_t n = chunk_count(usize, cs);
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
		if (!within_file(wf, res)) {
			wtg_error("'%s' in '%s': its resource lies past the end of the file "
				  "(truncated WIM?)",
				  what, wf->path);
			ret = -EIO;
		} else if (res->solid)
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
		if (cf->what)
			wtg_error("'%s' in '%s': chunk %" PRIu64 " has a bad stored size", cf->what,
				  cf->wf->path, cf->index);
		return -EIO;
	}
	void *in = malloc(ssize);
	if (!in)
		return -ENOMEM;
	ret = pread_full(cf->wf, in, ssize, start);
	if (ret < 0) {
		if (cf->what)
			wtg_error("'%s' in '%s': cannot read chunk %" PRIu64 " (truncated WIM?)",
				  cf->what, cf->wf->path, cf->index);
		goto out;
	}
	struct wimlib_decompressor *d;
	ret = get_decompressor(res->ctype, res->chunk_size, &d);
	if (ret == -EINVAL) {
		if (cf->what)
			wtg_error("'%s' in '%s': compression %d has no %u-byte chunks", cf->what,
				  cf->wf->path, res->ctype, res->chunk_size);
		ret = -EIO;
	}
	if (ret < 0)
		goto out;
	if (wimlib_decompress(in, ssize, buf, usize, d) != 0) {
		if (cf->what)
			wtg_error("'%s' in '%s': chunk %" PRIu64 " does not decompress", cf->what,
				  cf->wf->path, cf->index);
		ret = -EIO;
	}
out:
	free(in);
	return ret;
}

static size_t chunk_usize(const struct wim_resource *res, uint64_t index)
{
	uint64_t start = index * res->chunk_size;
	return (size_t)(index + 1 == res->nchunks ? res->size - start : res->chunk_size);
}

/* Decodes whole chunks [first, last) into @out. */
static int decode_run(struct wim_file *wf, struct wim_resource *res, uint64_t first, uint64_t last,
		      uint8_t *out, const char *what)
{
	for (uint64_t i = first; i < last; i++) {
		struct chunk_fill cf = {.wf = wf, .res = res, .index = i, .what = what};
		size_t n = chunk_usize(res, i);
		int ret = fill_chunk(&cf, out, n);
		if (ret < 0)
			return ret;
		out += n;
	}
	return 0;
}

struct run_work {
	struct wtg_work work; /* first */
	struct wim_file *wf;
	struct wim_resource *res;
	uint64_t first, last;
	uint8_t *out;
	const char *what;
	int ret;
};

static void run_work_fn(struct wtg_work *w)
{
	struct run_work *r = (struct run_work *)w;
	r->ret = decode_run(r->wf, r->res, r->first, r->last, r->out, r->what);
}

/* Whole chunks: the second half goes to a worker while this thread decodes
 * the first, so one large read uses two cores. */
static int decode_whole(struct wim_file *wf, struct wim_resource *res, uint64_t first,
			uint64_t last, uint8_t *out, const char *what)
{
	if (!wf->pool || last - first < PARALLEL_MIN_CHUNKS)
		return decode_run(wf, res, first, last, out, what);
	uint64_t mid = first + (last - first) / 2;
	struct run_work rw = {
	    .work.fn = run_work_fn,
	    .wf = wf,
	    .res = res,
	    .first = mid,
	    .last = last,
	    .out = out + (mid - first) * res->chunk_size,
	    .what = what,
	};
	if (!wtg_workpool_submit(wf->pool, &rw.work))
		return decode_run(wf, res, first, last, out, what);
	int ret = decode_run(wf, res, first, mid, out, what);
	wtg_workpool_wait(wf->pool, &rw.work);
	return ret < 0 ? ret : rw.ret;
}

/* ---- read-ahead ---- */

/* Chunks a sequential read has decoded ahead of it, and read-aheads queued
 * or running at once: for a sequential read, and for a miss. */
#define AHEAD_CHUNKS 2
#define AHEAD_SEQUENTIAL_MAX 2
#define AHEAD_MISS_MAX 1
/* How many chunks a miss looks through for one not cached. */
#define AHEAD_SEARCH_MAX 256

struct ahead_work {
	struct wtg_work work; /* first */
	struct wim_file *wf;
	struct wim_resource *res;
	uint64_t index;
	bool sequential;
};

/* A sequential read-ahead is dropped when reads in its resource have since
 * jumped elsewhere: no read ended within AHEAD_CHUNKS chunks before it. */
static bool still_wanted(struct wim_resource *res, uint64_t index)
{
	pthread_mutex_lock(&res->lock);
	uint64_t pos = res->last_end / res->chunk_size;
	pthread_mutex_unlock(&res->lock);
	return pos <= index && pos + AHEAD_CHUNKS + 1 > index;
}

static void ahead_fn(struct wtg_work *w)
{
	struct ahead_work *aw = (struct ahead_work *)w;
	struct chunk_fill cf = {.wf = aw->wf, .res = aw->res, .index = aw->index};

	if (!aw->sequential || still_wanted(aw->res, aw->index))
		wtg_chunk_cache_fill_ahead(aw->wf->cache, aw->res, aw->index,
					   chunk_usize(aw->res, aw->index), aw->sequential,
					   fill_chunk, &cf);
	__atomic_sub_fetch(&aw->wf->ahead, 1, __ATOMIC_RELAXED);
	free(aw);
}

static bool submit_ahead(struct wim_file *wf, struct wim_resource *res, uint64_t index,
			 bool sequential, unsigned max)
{
	if (__atomic_add_fetch(&wf->ahead, 1, __ATOMIC_RELAXED) > max)
		goto refused;
	struct ahead_work *aw = calloc(1, sizeof(*aw));
	if (!aw)
		goto refused;
	*aw = (struct ahead_work){.work.fn = ahead_fn,
				  .work.detached = true,
				  .wf = wf,
				  .res = res,
				  .index = index,
				  .sequential = sequential};
	if (wtg_workpool_submit(wf->pool, &aw->work))
		return true;
	free(aw);
refused:
	__atomic_sub_fetch(&wf->ahead, 1, __ATOMIC_RELAXED);
	return false;
}

/* Before chunk @index is taken from the cache: a sequential read has the
 * next AHEAD_CHUNKS chunks decoded on a worker.  A miss (this thread is
 * about to decode @index) gives the idle worker the next chunk after it
 * that is not cached, wrapping around: reads that jump about a solid
 * resource (a tar of the tree, random small files) touch most of its
 * chunks, so both cores decode; but only into free room in the cache, so
 * a guess never pushes out a chunk that was read.  A sequential reader
 * whose chunk is being decoded elsewhere runs queued work (the chunk after
 * it, most likely) while it would wait; a reader that jumped does not, as
 * what is queued may be needed much later, while it needs its chunk now. */
static void plan_ahead(struct wim_file *wf, struct wim_resource *res, uint64_t index,
		       bool sequential)
{
	struct wtg_chunk_cache *cache = wf->cache;
	int state = wtg_chunk_cache_state(cache, res, index);

	if (sequential) {
		for (uint64_t i = index + 1; i <= index + AHEAD_CHUNKS && i < res->nchunks; i++)
			if (wtg_chunk_cache_state(cache, res, i) == WTG_CHUNK_ABSENT &&
			    !submit_ahead(wf, res, i, true, AHEAD_SEQUENTIAL_MAX))
				break;
	} else if (state == WTG_CHUNK_ABSENT &&
		   __atomic_load_n(&wf->ahead, __ATOMIC_RELAXED) < AHEAD_MISS_MAX) {
		uint64_t n = res->nchunks < AHEAD_SEARCH_MAX ? res->nchunks : AHEAD_SEARCH_MAX;
		for (uint64_t k = 1; k < n; k++) {
			uint64_t i = (index + k) % res->nchunks;
			if (wtg_chunk_cache_state(cache, res, i) != WTG_CHUNK_ABSENT)
				continue;
			if (wtg_chunk_cache_room(cache) >=
			    chunk_usize(res, index) + chunk_usize(res, i))
				submit_ahead(wf, res, i, false, AHEAD_MISS_MAX);
			break;
		}
	}
	if (sequential && state == WTG_CHUNK_LOADING)
		wtg_workpool_help(wf->pool);
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
		if (res->size != res->stored_size || !within_file(wf, res) ||
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
	bool ahead = wf->pool && (res->solid || res->chunk_size > DIRECT_CHUNK_MAX);
	bool sequential = false;
	if (ahead) {
		pthread_mutex_lock(&res->lock);
		sequential = off != 0 && off == res->last_end;
		res->last_end = off + size;
		pthread_mutex_unlock(&res->lock);
	}

	while (size) {
		uint64_t index = off / res->chunk_size;
		if (index >= res->nchunks) {
			/* the table was checked to cover res->size: never here */
			wtg_error("'%s' in '%s': chunk %" PRIu64 " is past the chunk table", what,
				  wf->path, index);
			return -EIO;
		}
		size_t csize = chunk_usize(res, index);
		size_t in_chunk = (size_t)(off - index * res->chunk_size);
		size_t n = csize - in_chunk < size ? csize - in_chunk : size;

		/* Whole small chunks go straight to the caller: the kernel's
		 * page cache keeps what was read, so caching them here too
		 * would only cost memory and a copy.  Partial chunks, and the
		 * large chunks of solid resources, go through the cache. */
		if (n == csize && csize <= DIRECT_CHUNK_MAX) {
			uint64_t last = index;
			size_t bytes = 0;
			while (last < res->nchunks && bytes + chunk_usize(res, last) <= size)
				bytes += chunk_usize(res, last++);
			ret = decode_whole(wf, res, index, last, out, what);
			n = bytes;
		} else {
			struct chunk_fill cf = {.wf = wf, .res = res, .index = index, .what = what};
			struct wtg_chunk_ref ref;
			if (ahead)
				plan_ahead(wf, res, index, sequential);
			ret = wtg_chunk_cache_get(wf->cache, res, index, csize, fill_chunk, &cf,
						  &ref);
			if (ret == 0) {
				memcpy(out, ref.data + in_chunk, n);
				wtg_chunk_cache_put(wf->cache, &ref);
			}
		}
		if (ret < 0)
			return ret;
		if (n == 0) {
			/* no progress would spin forever: refuse rather than hang */
			wtg_error("'%s' in '%s': chunk %" PRIu64 " holds no data", what, wf->path,
				  index);
			return -EIO;
		}
		out += n;
		off += n;
		size -= n;
	}
	return 0;
}
