/*
 * Fuzz target: the WIM resource reader.  The input's first 16 bytes choose
 * the resource's parameters (kind, compression, sizes, where to read); the
 * rest is the file the resource lives in.
 */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "wtgfs/chunk_cache.h"
#include "wtgfs/log.h"
#include "wtgfs/wim_resource.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct wtg_chunk_cache *cache;
	static int fd = -1;
	uint8_t p[16] = {0};
	uint8_t out[4096];

	if (!cache) {
		cache = wtg_chunk_cache_new(8 << 20);
		fd = memfd_create("fuzz", 0);
		wtg_log_to_syslog(false);
	}
	memcpy(p, data, size < 16 ? size : 16);
	data += size < 16 ? size : 16;
	size -= size < 16 ? size : 16;
	if (ftruncate(fd, 0) < 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
		return 0;

	struct wim_file wf = {.fd = fd, .size = size, .path = "fuzz", .cache = cache};
	struct wim_resource res;
	wim_resource_init(&res);
	res.solid = p[0] & 1;
	res.compressed = (p[0] >> 1) & 1;
	res.ctype = p[1] % 4;
	res.chunk_size = 4096u << (p[2] % 5);
	res.offset = p[3] % 64;
	res.stored_size = size > res.offset ? size - res.offset : 0;
	uint32_t usize;
	memcpy(&usize, p + 4, 4);
	res.size = usize % (1u << 20);
	if (p[0] & 4)
		res.stored_size += p[8]; /* claim more than the file holds */
	uint32_t off;
	memcpy(&off, p + 12, 4);
	uint64_t o = res.size ? off % res.size : 0;
	size_t n = (size_t)(res.size - o) < sizeof(out) ? (size_t)(res.size - o) : sizeof(out);
	wim_resource_read(&wf, &res, out, n, o, "fuzz");
	wim_resource_read(&wf, &res, out, n, 0, "fuzz");
	wim_resource_release(&res);
	/* entries keyed by this resource's address must not outlive it */
	wtg_chunk_cache_free(cache);
	cache = wtg_chunk_cache_new(8 << 20);
	return 0;
}
