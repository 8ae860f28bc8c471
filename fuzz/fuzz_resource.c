/*
 * Fuzz target: the WIM resource reader.  The input's first 32 bytes choose
 * the resource's parameters (kind, compression, where it lies, its size and
 * where to read, each up to 2^64 as a hostile blob table or solid header
 * can claim); the rest is the file the resource lives in.  A read must
 * return (0 or -EIO), never run past a table or loop for ever.
 *
 *   0      flags: 1 solid, 2 compressed, 4 claim more stored bytes than the
 *          file holds, 8 offset as is (else modulo the file size + 1);
 *          bits 4-5 how the size is read, bits 6-7 how the read offset is
 *   1      compression type (modulo 4)
 *   2      chunk size: 4096 << (value modulo 5)
 *   3      read length: value * 257 + 1 bytes (up to 64 KiB + 1)
 *   4-11   le64 offset of the resource in the file
 *   12-19  le64 size: 0 modulo 2^20, 1 as is, 2 2^64 - 1 - value modulo
 *          2^20, 3 (value modulo 2^20) << 20
 *   20-27  le64 read offset: 0 modulo the size, 1 as is, 2 from the end,
 *          3 a chunk boundary
 *   28-31  le32: with flag 4 bytes claimed beyond the file, else when not 0
 *          the stored size itself
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "wtgfs/chunk_cache.h"
#include "wtgfs/le.h"
#include "wtgfs/log.h"
#include "wtgfs/wim_resource.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PARAMS 32
#define OUT_MAX (65536 + 1)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct wtg_chunk_cache *cache;
	static uint8_t *out;
	static int fd = -1;
	uint8_t p[PARAMS] = {0};

	if (!cache) {
		cache = wtg_chunk_cache_new(8 << 20);
		out = malloc(OUT_MAX);
		fd = memfd_create("fuzz", 0);
		wtg_log_to_syslog(false);
	}
	size_t np = size < PARAMS ? size : PARAMS;
	memcpy(p, data, np);
	data += np;
	size -= np;
	if (ftruncate(fd, 0) < 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
		return 0;

	struct wim_file wf = {.fd = fd, .size = size, .path = "fuzz", .cache = cache};
	struct wim_resource res;
	wim_resource_init(&res);
	res.solid = p[0] & 1;
	res.compressed = (p[0] >> 1) & 1;
	res.ctype = p[1] % 4;
	res.chunk_size = 4096u << (p[2] % 5);
	uint64_t at = wtg_get_le64(p + 4);
	res.offset = p[0] & 8 ? at : at % ((uint64_t)size + 1);
	res.stored_size = res.offset <= size ? size - res.offset : 0;
	uint64_t claim = (uint64_t)p[28] | (uint64_t)p[29] << 8 | (uint64_t)p[30] << 16 |
			 (uint64_t)p[31] << 24;
	if (p[0] & 4) /* claim more than the file holds */
		res.stored_size += claim;
	else if (claim)
		res.stored_size = claim;
	uint64_t v = wtg_get_le64(p + 12);
	switch ((p[0] >> 4) & 3) {
	case 0:
		res.size = v % (1u << 20);
		break;
	case 1:
		res.size = v;
		break;
	case 2:
		res.size = UINT64_MAX - v % (1u << 20);
		break;
	default:
		res.size = (v % (1u << 20)) << 20;
		break;
	}
	v = wtg_get_le64(p + 20);
	uint64_t o;
	switch (p[0] >> 6) {
	case 0:
		o = res.size ? v % res.size : 0;
		break;
	case 1:
		o = v;
		break;
	case 2:
		o = res.size - (res.size < 65536 ? res.size : v % 65536);
		break;
	default:
		o = res.size ? (v % res.size) & ~(uint64_t)(res.chunk_size - 1) : 0;
		break;
	}
	size_t n = (size_t)p[3] * 257 + 1;
	if (o <= res.size && n > res.size - o)
		n = (size_t)(res.size - o);
	wim_resource_read(&wf, &res, out, n, o, "fuzz");
	wim_resource_read(&wf, &res, out, n < 4096 ? n : 4096, 0, "fuzz");
	wim_resource_release(&res);
	/* entries keyed by this resource's address must not outlive it */
	wtg_chunk_cache_free(cache);
	cache = wtg_chunk_cache_new(8 << 20);
	return 0;
}
