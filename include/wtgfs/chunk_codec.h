/*
 * How the delta stores one chunk's bytes (the one user of zstd): zstd when
 * that saves something, the raw bytes otherwise.  The store keeps the codec
 * number next to the stored bytes; decoding checks the exact size, so
 * damaged data is -EIO and never a short or overlong chunk.
 */
#ifndef WTGFS_CHUNK_CODEC_H
#define WTGFS_CHUNK_CODEC_H

#include <stddef.h>

enum wtg_chunk_codec_id {
	WTG_CODEC_RAW = 0,
	WTG_CODEC_ZSTD = 1,
};

struct wtg_chunk_codec;

/* NULL when out of memory.  One codec per thread (the store's lock). */
struct wtg_chunk_codec *wtg_chunk_codec_new(void);
void wtg_chunk_codec_free(struct wtg_chunk_codec *codec);

/* The output space encoding @size bytes may need. */
size_t wtg_chunk_encode_bound(size_t size);

/* Encodes @size bytes into @out (wtg_chunk_encode_bound(@size) bytes).
 * Sets the codec and the stored length; 0 or -errno. */
int wtg_chunk_encode(struct wtg_chunk_codec *codec, const void *data, size_t size, void *out,
		     int *codec_ret, size_t *len_ret);

/* Decodes exactly @size bytes into @out: -EIO when @in is not that. */
int wtg_chunk_decode(struct wtg_chunk_codec *codec, int id, const void *in, size_t len, void *out,
		     size_t size);

#endif
