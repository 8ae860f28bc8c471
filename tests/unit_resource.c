/*
 * The WIM resource reader against resources built here with wimlib's own
 * compressors: chunk tables with 4- and 8-byte entries, raw chunks, solid
 * resources, and damaged tables and files.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wimlib.h>

#include "unit.h"
#include "wtgfs/chunk_cache.h"
#include "wtgfs/wim_append.h"
#include "wtgfs/wim_resource.h"
#include "wtgfs/workpool.h"

static int tmpfd(void)
{
	char path[] = "/tmp/wtgfs-unit-XXXXXX";
	int fd = mkstemp(path);
	unlink(path);
	return fd;
}

static void put(int fd, const void *p, size_t n, off_t off)
{
	CHECK(pwrite(fd, p, n, off) == (ssize_t)n);
}

/* Compresses @data into chunk @csize pieces; returns stored chunks and
 * their sizes (raw when compression does not help). */
static uint8_t *compress_chunks(int ctype, const uint8_t *data, uint64_t size, uint32_t csize,
				uint64_t *nchunks_ret, uint32_t **sizes_ret, size_t *total_ret)
{
	struct wimlib_compressor *c;
	uint64_t n = (size + csize - 1) / csize;
	uint8_t *out = malloc(size + 16), *tmp = malloc(csize);
	uint32_t *sizes = calloc(n, sizeof(*sizes));
	size_t total = 0;

	CHECK(wimlib_create_compressor((enum wimlib_compression_type)ctype, csize, 0, &c) == 0);
	for (uint64_t i = 0; i < n; i++) {
		size_t usize = i + 1 == n ? size - i * csize : csize;
		size_t got = wimlib_compress(data + i * csize, usize, tmp, usize - 1, c);
		if (got == 0) {
			memcpy(out + total, data + i * csize, usize);
			got = usize;
		} else {
			memcpy(out + total, tmp, got);
		}
		sizes[i] = (uint32_t)got;
		total += got;
	}
	wimlib_free_compressor(c);
	free(tmp);
	*nchunks_ret = n;
	*sizes_ret = sizes;
	*total_ret = total;
	return out;
}

static uint8_t *test_data(uint64_t size)
{
	uint8_t *d = malloc(size);
	uint32_t x = 12345;
	for (uint64_t i = 0; i < size; i++) {
		x = x * 1103515245 + 12345;
		/* half text-like, half noise, so some chunks stay raw */
		d[i] = (i / 40000) % 2 ? (uint8_t)(x >> 16) : (uint8_t)("windows "[i % 8]);
	}
	return d;
}

/* Writes a non-solid resource at @at; fills @res. */
static void write_plain(int fd, uint64_t at, int ctype, const uint8_t *data, uint64_t size,
			struct wim_resource *res)
{
	uint64_t n;
	uint32_t *sizes;
	size_t total;
	uint8_t *chunks = compress_chunks(ctype, data, size, 32768, &n, &sizes, &total);
	unsigned esize = size > UINT32_MAX ? 8 : 4;
	uint8_t *table = calloc(n, 8);
	uint64_t rel = 0;

	for (uint64_t i = 1; i < n; i++) {
		rel += sizes[i - 1];
		if (esize == 4) {
			uint32_t v = (uint32_t)rel;
			memcpy(table + (i - 1) * 4, &v, 4);
		} else {
			memcpy(table + (i - 1) * 8, &rel, 8);
		}
	}
	put(fd, table, (n - 1) * esize, (off_t)at);
	put(fd, chunks, total, (off_t)(at + (n - 1) * esize));
	wim_resource_init(res);
	res->offset = at;
	res->stored_size = (n - 1) * esize + total;
	res->size = size;
	res->compressed = true;
	res->ctype = ctype;
	res->chunk_size = 32768;
	free(chunks);
	free(sizes);
	free(table);
}

static struct wim_file open_file(int fd)
{
	struct wim_file wf = {.fd = fd, .path = "unit", .cache = wtg_chunk_cache_new(1 << 22)};
	wf.size = (uint64_t)lseek(fd, 0, SEEK_END);
	return wf;
}

static int read_matches(struct wim_file *wf, struct wim_resource *res, const uint8_t *data,
			uint64_t off, size_t len)
{
	uint8_t *buf = malloc(len ? len : 1);
	int ok =
	    wim_resource_read(wf, res, buf, len, off, "test") == 0 && !memcmp(buf, data + off, len);
	free(buf);
	return ok;
}

TEST(plain_lzx_and_xpress)
{
	int ctypes[] = {WIM_CTYPE_LZX, WIM_CTYPE_XPRESS};
	for (int k = 0; k < 2; k++) {
		int fd = tmpfd();
		uint64_t size = 300000;
		uint8_t *data = test_data(size);
		struct wim_resource res;
		put(fd, "junk", 4, 0);
		write_plain(fd, 1000, ctypes[k], data, size, &res);
		struct wim_file wf = open_file(fd);
		CHECK(read_matches(&wf, &res, data, 0, size));
		/* with decode workers: large reads split across threads */
		wf.pool = wtg_workpool_new(2);
		for (int i = 0; i < 50; i++) {
			uint64_t off = (uint64_t)(rand() % 4) * 32768;
			CHECK(read_matches(&wf, &res, data, off,
					   size - off - (size_t)(rand() % 1000)));
		}
		wtg_workpool_free(wf.pool);
		wf.pool = NULL;
		CHECK(read_matches(&wf, &res, data, 32767, 2));
		CHECK(read_matches(&wf, &res, data, size - 1, 1));
		CHECK(read_matches(&wf, &res, data, 100000, 0));
		for (int i = 0; i < 200; i++) {
			uint64_t off = (uint64_t)rand() % size;
			size_t len = (size_t)rand() % (size - off);
			CHECK(read_matches(&wf, &res, data, off, len % 70000));
		}
		uint8_t b;
		CHECK(wim_resource_read(&wf, &res, &b, 2, size - 1, "test") == -EIO);
		wim_resource_release(&res);
		wtg_chunk_cache_free(wf.cache);
		free(data);
		close(fd);
	}
}

TEST(eight_byte_chunk_table)
{
	/* Over 4 GiB of zeros: chunk table entries are 8 bytes. */
	uint64_t size = (4ull << 30) + 40000;
	int fd = tmpfd();
	struct wimlib_compressor *c;
	uint8_t zero[32768] = {0}, z[32768];
	CHECK(wimlib_create_compressor(WIMLIB_COMPRESSION_TYPE_LZX, 32768, 0, &c) == 0);
	size_t zlen = wimlib_compress(zero, sizeof(zero), z, sizeof(z) - 1, c);
	wimlib_free_compressor(c);
	CHECK(zlen > 0);
	uint64_t n = (size + 32767) / 32768;
	uint64_t *table = malloc((n - 1) * 8);
	for (uint64_t i = 1; i < n; i++)
		table[i - 1] = i * zlen;
	put(fd, table, (n - 1) * 8, 0);
	uint8_t *chunks = malloc((n - 1) * zlen + 32768);
	for (uint64_t i = 0; i + 1 < n; i++)
		memcpy(chunks + i * zlen, z, zlen);
	/* the last chunk (40000 - 32768 bytes of zeros) stored raw */
	size_t last = (size_t)(size - (n - 1) * 32768);
	memset(chunks + (n - 1) * zlen, 0, last);
	put(fd, chunks, (n - 1) * zlen + last, (off_t)((n - 1) * 8));
	struct wim_resource res;
	wim_resource_init(&res);
	res.offset = 0;
	res.stored_size = (n - 1) * 8 + (n - 1) * zlen + last;
	res.size = size;
	res.compressed = true;
	res.ctype = WIM_CTYPE_LZX;
	res.chunk_size = 32768;
	struct wim_file wf = open_file(fd);
	uint8_t buf[70000];
	memset(buf, 1, sizeof(buf));
	CHECK(wim_resource_read(&wf, &res, buf, sizeof(buf), size - sizeof(buf), "test") == 0);
	size_t nonzero = 0;
	for (size_t i = 0; i < sizeof(buf); i++)
		nonzero += buf[i] != 0;
	CHECK(nonzero == 0);
	wim_resource_release(&res);
	wtg_chunk_cache_free(wf.cache);
	free(table);
	free(chunks);
	close(fd);
}

TEST(solid_resource)
{
	int fd = tmpfd();
	uint64_t size = 500000;
	uint8_t *data = test_data(size);
	uint64_t n;
	uint32_t *sizes;
	size_t total;
	uint8_t *chunks =
	    compress_chunks(WIMLIB_COMPRESSION_TYPE_LZMS, data, size, 65536, &n, &sizes, &total);
	struct wim_solid_header hdr = {.size = size, .chunk_size = 65536, .ctype = WIM_CTYPE_LZMS};
	put(fd, &hdr, sizeof(hdr), 64);
	put(fd, sizes, n * 4, 64 + 16);
	put(fd, chunks, total, (off_t)(64 + 16 + n * 4));
	struct wim_resource res;
	wim_resource_init(&res);
	res.offset = 64;
	res.stored_size = 16 + n * 4 + total;
	res.size = size;
	res.solid = true;
	res.ctype = WIM_CTYPE_LZX; /* the header's type wins */
	res.chunk_size = 32768;	   /* the header's size wins */
	struct wim_file wf = open_file(fd);
	wf.pool = wtg_workpool_new(1); /* solid read-ahead */
	CHECK(read_matches(&wf, &res, data, 0, size));
	CHECK(read_matches(&wf, &res, data, 65535, 3));
	CHECK(read_matches(&wf, &res, data, size - 10, 10));
	CHECK(res.chunk_size == 65536);

	/* a header that disagrees with the blob table is refused */
	struct wim_resource bad;
	wim_resource_init(&bad);
	bad.offset = 64;
	bad.stored_size = res.stored_size;
	bad.size = size + 1;
	bad.solid = true;
	uint8_t b;
	CHECK(wim_resource_read(&wf, &bad, &b, 1, 0, "test") == -EIO);
	wim_resource_release(&bad);
	wtg_workpool_free(wf.pool);
	wim_resource_release(&res);
	wtg_chunk_cache_free(wf.cache);
	free(chunks);
	free(sizes);
	free(data);
	close(fd);
}

/* Waits (bounded: a broken read-ahead fails the check, never hangs) for a
 * worker to have decoded chunk @index. */
static bool becomes_ready(struct wtg_chunk_cache *cache, struct wim_resource *res,
			  uint64_t index)
{
	for (int i = 0; i < 20000; i++) {
		if (wtg_chunk_cache_state(cache, res, index) == WTG_CHUNK_READY)
			return true;
		usleep(500);
	}
	return false;
}

static void write_solid(int fd, const uint8_t *data, uint64_t size, uint32_t csize,
			struct wim_resource *res)
{
	uint64_t n;
	uint32_t *sizes;
	size_t total;
	uint8_t *chunks =
	    compress_chunks(WIMLIB_COMPRESSION_TYPE_LZMS, data, size, csize, &n, &sizes, &total);
	struct wim_solid_header hdr = {.size = size, .chunk_size = csize, .ctype = WIM_CTYPE_LZMS};
	put(fd, &hdr, sizeof(hdr), 0);
	put(fd, sizes, n * 4, 16);
	put(fd, chunks, total, (off_t)(16 + n * 4));
	wim_resource_init(res);
	res->stored_size = 16 + n * 4 + total;
	res->size = size;
	res->solid = true;
	free(chunks);
	free(sizes);
}

/* A miss has the idle worker decode the next chunk; a sequential read has it
 * decode the next two; every chunk is decoded once in all. */
TEST(solid_read_ahead)
{
	int fd = tmpfd();
	const uint32_t cs = 65536;
	uint64_t size = 6 * cs;
	uint8_t *data = test_data(size);
	struct wim_resource res;
	struct wtg_chunk_cache_stats st;

	write_solid(fd, data, size, cs, &res);
	struct wim_file wf = open_file(fd);
	wf.pool = wtg_workpool_new(1);
	/* chunk 0 misses: the worker takes chunk 1 */
	CHECK(read_matches(&wf, &res, data, 0, 100));
	CHECK(becomes_ready(wf.cache, &res, 1));
	CHECK(wtg_chunk_cache_state(wf.cache, &res, 2) == WTG_CHUNK_ABSENT);
	/* the next read follows on: chunk 2 is read ahead as well */
	CHECK(read_matches(&wf, &res, data, 100, 100));
	CHECK(becomes_ready(wf.cache, &res, 2));
	for (uint64_t off = 200; off < size; off += 16384)
		CHECK(read_matches(&wf, &res, data, off, off + 16384 < size ? 16384 : size - off));
	wtg_workpool_free(wf.pool); /* waits for read-aheads still running */
	wtg_chunk_cache_get_stats(wf.cache, &st);
	CHECK(st.ahead >= 2);
	CHECK(st.misses + st.ahead == 6);
	CHECK(st.evictions == 0);
	wtg_chunk_cache_free(wf.cache);
	wim_resource_release(&res);

	/* random reads into a cache with no room left: nothing read ahead, and
	 * the reads stay right */
	write_solid(fd, data, size, cs, &res);
	wf = open_file(fd);
	wtg_chunk_cache_free(wf.cache);
	wf.cache = wtg_chunk_cache_new(cs);
	wf.pool = wtg_workpool_new(1);
	for (uint64_t i = 0; i < 6; i++)
		CHECK(read_matches(&wf, &res, data, ((i * 5) % 6) * cs + 1000, 3000));
	wtg_workpool_free(wf.pool);
	wtg_chunk_cache_get_stats(wf.cache, &st);
	CHECK(st.ahead == 0 && st.misses == 6);
	wtg_chunk_cache_free(wf.cache);
	wim_resource_release(&res);
	free(data);
	close(fd);
}

TEST(damaged_tables_and_files)
{
	int fd = tmpfd();
	uint64_t size = 200000;
	uint8_t *data = test_data(size), b[16];
	struct wim_resource res;
	write_plain(fd, 0, WIM_CTYPE_LZX, data, size, &res);
	struct wim_file wf = open_file(fd);

	/* an out-of-order table entry */
	uint32_t v = 0xFFFFFF;
	put(fd, &v, 4, 4);
	CHECK(wim_resource_read(&wf, &res, b, 1, 0, "test") == -EIO);
	/* the verdict sticks: no re-reading a bad table */
	CHECK(wim_resource_read(&wf, &res, b, 1, 0, "test") == -EIO);
	wim_resource_release(&res);

	/* a truncated file */
	write_plain(fd, 0, WIM_CTYPE_LZX, data, size, &res);
	wf.size = res.stored_size / 2;
	CHECK(wim_resource_read(&wf, &res, b, 16, size - 16, "test") == -EIO);
	wim_resource_release(&res);

	/* an uncompressed resource whose sizes disagree */
	wim_resource_init(&res);
	res.size = 100;
	res.stored_size = 99;
	CHECK(wim_resource_read(&wf, &res, b, 1, 0, "test") == -EIO);
	wim_resource_release(&res);

	/* bad chunk size and compression type */
	wim_resource_init(&res);
	res.size = 100;
	res.stored_size = 50;
	res.compressed = true;
	res.ctype = 9;
	res.chunk_size = 32768;
	CHECK(wim_resource_read(&wf, &res, b, 1, 0, "test") == -EIO);
	wim_resource_release(&res);
	wtg_chunk_cache_free(wf.cache);
	free(data);
	close(fd);
}

/* Sizes and offsets from a hostile file, up to 2^64: each read is refused
 * (never a read past the chunk table, never a loop that stops advancing). */
TEST(sizes_near_two_to_the_64)
{
	int fd = tmpfd();
	uint64_t size = 100000;
	uint8_t *data = test_data(size), *buf = malloc(65536);
	uint64_t n;
	uint32_t *sizes;
	size_t total;
	uint8_t *chunks =
	    compress_chunks(WIMLIB_COMPRESSION_TYPE_LZMS, data, size, 32768, &n, &sizes, &total);
	put(fd, sizes, n * 4, 16);
	put(fd, chunks, total, (off_t)(16 + n * 4));
	struct wim_file wf = open_file(fd);
	wf.pool = wtg_workpool_new(1);
	/* (usize + cs - 1) / cs wraps to 0 for these, to 1 for the last */
	const uint64_t usizes[] = {UINT64_MAX, UINT64_MAX - 32766, UINT64_MAX - 32767,
				   UINT64_MAX - 65535, 1ull << 63, (1ull << 40) + 32768};
	for (size_t k = 0; k < sizeof(usizes) / sizeof(usizes[0]); k++) {
		struct wim_solid_header hdr = {
		    .size = usizes[k], .chunk_size = 32768, .ctype = WIM_CTYPE_LZMS};
		put(fd, &hdr, sizeof(hdr), 0);
		const uint64_t offs[] = {0, 1ull << 40, usizes[k] - 65536, 40000};
		for (size_t o = 0; o < sizeof(offs) / sizeof(offs[0]); o++) {
			struct wim_resource res;
			wim_resource_init(&res);
			res.stored_size = 16 + n * 4 + total;
			res.size = usizes[k];
			res.solid = true;
			/* a whole chunk (decoded straight into the buffer) and a part */
			CHECK(wim_resource_read(&wf, &res, buf, 32768, offs[o], "test") == -EIO);
			CHECK(wim_resource_read(&wf, &res, buf, 100, offs[o] + 1, "test") == -EIO);
			wim_resource_release(&res);
		}
	}
	/* a non-solid table for such a size cannot fit its resource */
	struct wim_resource res;
	write_plain(fd, 0, WIM_CTYPE_LZX, data, size, &res);
	res.size = UINT64_MAX;
	CHECK(wim_resource_read(&wf, &res, buf, 32768, 1ull << 40, "test") == -EIO);
	wim_resource_release(&res);
	/* stored bytes that would start past 2^64 - the read's offset: the
	 * sum wraps to the start of the file */
	wim_resource_init(&res);
	res.offset = UINT64_MAX - 10;
	res.size = res.stored_size = 100;
	CHECK(wim_resource_read(&wf, &res, buf, 20, 15, "test") == -EIO);
	wim_resource_release(&res);
	write_plain(fd, 0, WIM_CTYPE_LZX, data, size, &res);
	res.offset = UINT64_MAX - 10;
	CHECK(wim_resource_read(&wf, &res, buf, 20, 15, "test") == -EIO);
	wim_resource_release(&res);
	wtg_workpool_free(wf.pool);
	wtg_chunk_cache_free(wf.cache);
	free(chunks);
	free(sizes);
	free(data);
	free(buf);
	close(fd);
}

static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
		p[i] = (uint8_t)(seed >> 24);
	}
}

/* LZX's length for @n bytes, 0 when they do not shrink. */
static size_t lzx_len(const uint8_t *p, size_t n)
{
	struct wimlib_compressor *c;
	uint8_t *out = malloc(n);

	CHECK(out && !wimlib_create_compressor(WIMLIB_COMPRESSION_TYPE_LZX, 32768, 0, &c));
	size_t len = wimlib_compress(p, n, out, n - 1, c);
	wimlib_free_compressor(c);
	free(out);
	return len;
}

/* The shortcut that stores a chunk raw without compressing it: taken only
 * where LZX would not have shrunk it either. */
TEST(incompressible_chunks)
{
	enum { CS = 32768 };
	uint8_t *p = malloc(CS);

	CHECK(p);
	for (uint64_t seed = 1; seed <= 8; seed++) {
		fill_random(p, CS, seed * 0x9E3779B97F4A7C15ull);
		CHECK(wim_append_incompressible(p, CS));
		CHECK(lzx_len(p, CS) == 0);
	}
	/* a tail chunk, and one too short to judge */
	CHECK(wim_append_incompressible(p, 5000));
	CHECK(!wim_append_incompressible(p, 1000));
	/* random 8 KiB repeated: even bytes, but matches */
	fill_random(p, 8192, 7);
	for (size_t i = 8192; i < CS; i++)
		p[i] = p[i - 8192];
	CHECK(!wim_append_incompressible(p, CS));
	CHECK(lzx_len(p, CS) > 0 && lzx_len(p, CS) < CS / 2);
	/* a few runs of 64 bytes copied inside random data */
	fill_random(p, CS, 11);
	for (size_t k = 0; k < 48; k++)
		memcpy(p + 1000 + k * 600, p + 300 + k * 7, 64);
	CHECK(!wim_append_incompressible(p, CS));
	CHECK(lzx_len(p, CS) > 0);
	/* random, but of 128 byte values: 7 bits a byte, Huffman shrinks it */
	fill_random(p, CS, 3);
	for (size_t i = 0; i < CS; i++)
		p[i] &= 0x7F;
	CHECK(!wim_append_incompressible(p, CS));
	CHECK(lzx_len(p, CS) > 0);
	/* text */
	for (size_t i = 0; i < CS; i++)
		p[i] = "the quick brown fox jumps over the lazy dog "[i % 44];
	CHECK(!wim_append_incompressible(p, CS));
	free(p);
}

int main(void)
{
	alarm(300); /* a read that never returns fails the test, not the suite */
	RUN(plain_lzx_and_xpress);
	RUN(eight_byte_chunk_table);
	RUN(solid_resource);
	RUN(solid_read_ahead);
	RUN(damaged_tables_and_files);
	RUN(sizes_near_two_to_the_64);
	RUN(incompressible_chunks);
	UNIT_EXIT();
}
