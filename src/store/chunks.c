/*
 * Chunk encoding for the delta through zstd, level 1: chunks are compressed
 * on the write path, while a writer waits (an fsync of a 4 KiB write stores
 * its whole chunk), and level 3 cost 13% more time per fsync there for a few
 * percent of ratio on 64 KiB.  A chunk
 * that zstd cannot shrink by 1/32 is stored raw: incompressible data costs
 * its size plus nothing, and reads skip the decoder.  Errors from zstd
 * become -EIO (damaged input) or -ENOMEM here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "wtgfs/chunk_codec.h"

#define ZSTD_LEVEL 1

struct wtg_chunk_codec {
	ZSTD_CCtx *cctx;
	ZSTD_DCtx *dctx;
};

struct wtg_chunk_codec *wtg_chunk_codec_new(void)
{
	struct wtg_chunk_codec *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->cctx = ZSTD_createCCtx();
	c->dctx = ZSTD_createDCtx();
	if (!c->cctx || !c->dctx) {
		wtg_chunk_codec_free(c);
		return NULL;
	}
	return c;
}

void wtg_chunk_codec_free(struct wtg_chunk_codec *c)
{
	if (!c)
		return;
	ZSTD_freeCCtx(c->cctx);
	ZSTD_freeDCtx(c->dctx);
	free(c);
}

size_t wtg_chunk_encode_bound(size_t size)
{
	return ZSTD_compressBound(size);
}

int wtg_chunk_encode(struct wtg_chunk_codec *c, const void *data, size_t size, void *out,
		     int *codec_ret, size_t *len_ret)
{
	size_t n =
	    ZSTD_compressCCtx(c->cctx, out, ZSTD_compressBound(size), data, size, ZSTD_LEVEL);

	if (ZSTD_isError(n))
		return ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation ? -ENOMEM : -EIO;
	if (n + size / 32 >= size) {
		memcpy(out, data, size);
		*codec_ret = WTG_CODEC_RAW;
		*len_ret = size;
		return 0;
	}
	*codec_ret = WTG_CODEC_ZSTD;
	*len_ret = n;
	return 0;
}

int wtg_chunk_decode(struct wtg_chunk_codec *c, int id, const void *in, size_t len, void *out,
		     size_t size)
{
	switch (id) {
	case WTG_CODEC_RAW:
		if (len != size)
			return -EIO;
		if (size)
			memcpy(out, in, size);
		return 0;
	case WTG_CODEC_ZSTD: {
		if (ZSTD_getFrameContentSize(in, len) != size)
			return -EIO;
		size_t n = ZSTD_decompressDCtx(c->dctx, out, size, in, len);
		if (ZSTD_isError(n))
			return ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation ? -ENOMEM
										    : -EIO;
		return n == size ? 0 : -EIO;
	}
	default:
		return -EIO;
	}
}
