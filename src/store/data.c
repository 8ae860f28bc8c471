/*
 * File data: content-addressed chunks (stored once under their SHA-256,
 * zstd through chunks.c), streams and their 64 KiB chunk slots (extents),
 * and what a slot resolves to through the stack.  A chunk no extent names
 * goes as soon as the working layer stops naming it.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wtgfs/hash.h"
#include "wtgfs/log.h"
#include "wtgfs/mem.h"

#include "store_int.h"

/* ---- chunks and security descriptors ---- */

/* Inserts the chunk @hash unless it is there (the lock held, a batch open). */
static int insert_chunk(struct wtg_store *st, const uint8_t *hash, size_t size, int codec,
			const void *data, size_t len)
{
	sqlite3_stmt *s;
	int r = store_query(st, Q_CHUNK_PUT, &s);

	if (r)
		return r;
	store_bind_hash(s, 1, hash);
	sqlite3_bind_int64(s, 2, (int64_t)size);
	sqlite3_bind_int(s, 3, codec);
	sqlite3_bind_blob(s, 4, data, (int)len, SQLITE_STATIC);
	return store_run(st, s);
}

/* Query @q of one chunk @hash: 1 when it has a row, 0 when not, or -errno
 * (the lock held). */
static int chunk_has_row(struct wtg_store *st, int q, const uint8_t *hash)
{
	sqlite3_stmt *s;
	int r = store_query(st, q, &s);

	if (r)
		return r;
	store_bind_hash(s, 1, hash);
	r = store_step(st, s);
	sqlite3_reset(s);
	return r;
}

/* 1 when the chunk @hash is there, 0 when not, or -errno (the lock held). */
static int have_chunk(struct wtg_store *st, const uint8_t *hash)
{
	return chunk_has_row(st, Q_CHUNK_HAS, hash);
}

int wtg_store_put_chunk(struct wtg_store *st, const void *data, size_t size,
			uint8_t hash_ret[WTG_STORE_HASH_LEN])
{
	int codec, r;
	size_t zlen;

	if (size > WTG_STORE_CHUNK_SIZE)
		return -EINVAL;
	wtg_sha256(data, size, hash_ret);
	pthread_mutex_lock(&st->lock);
	r = store_writable(st);
	if (!r)
		r = have_chunk(st, hash_ret);
	if (r != 0) /* there already, or an error */
		goto out;
	r = wtg_chunk_encode(st->codec, data, size, st->zbuf, &codec, &zlen);
	if (!r)
		r = insert_chunk(st, hash_ret, size, codec, st->zbuf, zlen);
out:
	r = r > 0 ? 0 : r;
	if (r)
		store_write_failed(st, r);
	pthread_mutex_unlock(&st->lock);
	return r;
}

/* The codecs of encoding threads, kept for the next chunk: making a zstd
 * context costs more than compressing 64 KiB with it. */
static struct wtg_chunk_codec *take_codec(struct wtg_store *st)
{
	struct wtg_chunk_codec *c = NULL;

	pthread_mutex_lock(&st->spare_lock);
	if (st->nspare)
		c = st->spare[--st->nspare];
	pthread_mutex_unlock(&st->spare_lock);
	return c ? c : wtg_chunk_codec_new();
}

static void give_codec(struct wtg_store *st, struct wtg_chunk_codec *c)
{
	pthread_mutex_lock(&st->spare_lock);
	if (st->nspare < STORE_SPARE_CODECS) {
		st->spare[st->nspare++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&st->spare_lock);
	wtg_chunk_codec_free(c);
}

int wtg_store_encode_chunk(struct wtg_store *st, const void *data, size_t size,
			   struct wtg_store_encoded *enc)
{
	if (size > WTG_STORE_CHUNK_SIZE || wtg_chunk_encode_bound(size) > WTG_STORE_ENCODED_MAX)
		return -EINVAL;
	struct wtg_chunk_codec *c = take_codec(st);
	if (!c)
		return -ENOMEM;
	wtg_sha256(data, size, enc->hash);
	enc->size = size;
	int r = wtg_chunk_encode(c, data, size, enc->data, &enc->codec, &enc->len);
	give_codec(st, c);
	return r;
}

int wtg_store_put_encoded(struct wtg_store *st, const struct wtg_store_encoded *enc)
{
	pthread_mutex_lock(&st->lock);
	int r = store_writable(st);
	if (!r)
		r = have_chunk(st, enc->hash);
	if (r == 0)
		r = insert_chunk(st, enc->hash, enc->size, enc->codec, enc->data, enc->len);
	r = r > 0 ? 0 : r;
	if (r)
		store_write_failed(st, r);
	pthread_mutex_unlock(&st->lock);
	return r;
}

/* Reads and decodes a chunk at the current row of @s (size, codec, data). */
int store_decode_row(struct wtg_store *st, sqlite3_stmt *s, int col, void *buf, size_t *size_ret)
{
	int64_t size = sqlite3_column_int64(s, col);
	const void *data = sqlite3_column_blob(s, col + 2);
	int len = sqlite3_column_bytes(s, col + 2);

	if (size < 0 || size > WTG_STORE_CHUNK_SIZE)
		return -EIO;
	*size_ret = (size_t)size;
	return wtg_chunk_decode(st->codec, sqlite3_column_int(s, col + 1), data, (size_t)len, buf,
				(size_t)size);
}

void store_hex_short(const uint8_t *hash, char out[17])
{
	wtg_hex(hash, 8, out);
}

bool store_key_matches(const uint8_t key[WTG_STORE_HASH_LEN], const void *data, size_t len)
{
	uint8_t sum[WTG_STORE_HASH_LEN];

	wtg_sha256(data, len, sum);
	return !memcmp(sum, key, sizeof(sum));
}

int store_damaged_at(struct wtg_store *st, const char *kind, const uint8_t *key, const char *what)
{
	char hex[17], line[200];

	pthread_mutex_lock(&st->lock);
	bool told = !memcmp(st->told_damaged, key, WTG_STORE_HASH_LEN);
	memcpy(st->told_damaged, key, WTG_STORE_HASH_LEN);
	pthread_mutex_unlock(&st->lock);
	if (told)
		return -EIO;
	store_hex_short(key, hex);
	snprintf(line, sizeof(line), "%s %s: %s", kind, hex, what);
	return store_damaged(st, line);
}

/* A chunk's bytes are checked against its key on every read: a flipped bit
 * in the file is EIO, never wrong bytes in a file, a WIM or a drive. */
int wtg_store_get_chunk(struct wtg_store *st, const uint8_t hash[WTG_STORE_HASH_LEN], void *buf,
			size_t *size_ret)
{
	sqlite3_stmt *s;

	pthread_mutex_lock(&st->lock);
	int r = store_query(st, Q_CHUNK_GET, &s);
	if (r)
		goto out;
	store_bind_hash(s, 1, hash);
	r = store_step(st, s);
	if (r == 0)
		r = -ENOENT;
	else if (r == 1)
		r = store_decode_row(st, s, 0, buf, size_ret);
	sqlite3_reset(s);
out:
	pthread_mutex_unlock(&st->lock);
	if (r == -EIO)
		return store_damaged_at(st, "chunk", hash, "cannot be decoded");
	/* hashed outside the lock: other readers go on meanwhile */
	if (!r && !store_key_matches(hash, buf, *size_ret))
		return store_damaged_at(st, "chunk", hash, "its bytes do not hash to its key");
	return r;
}

/* ---- streams and extents ---- */

static int64_t chunks_for(uint64_t size)
{
	uint64_t n = size / WTG_STORE_CHUNK_SIZE + (size % WTG_STORE_CHUNK_SIZE != 0);
	return n > INT64_MAX ? INT64_MAX : (int64_t)n;
}

/* This layer's stream row: *found, and its keep (INT64_MAX when none). */
static int top_stream(struct wtg_store *st, uint64_t ino, const char *name, bool *found,
		      bool *deleted, int64_t *keep)
{
	sqlite3_stmt *s;
	int r = store_query(st, Q_STREAM_GET, &s);

	*found = *deleted = false;
	*keep = INT64_MAX;
	if (r)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	/* rows by layer from the newest: the working layer need not be the
	 * newest (a layer a rollback kept can be HEAD again) */
	while ((r = store_step(st, s)) == 1) {
		int64_t layer = sqlite3_column_int64(s, 0);
		if (layer < store_top(st))
			break;
		if (layer > store_top(st))
			continue;
		*found = true;
		*deleted = sqlite3_column_int(s, 2) != 0;
		if (sqlite3_column_type(s, 3) != SQLITE_NULL)
			*keep = sqlite3_column_int64(s, 3);
		break;
	}
	sqlite3_reset(s);
	return r < 0 ? r : 0;
}

/* Runs @q (Q_CHUNK_FREE_CUT, Q_EXTENT_CUT) on the working layer's slots of
 * the stream from @from on. */
static int cut_slots(struct wtg_store *st, int q, uint64_t ino, const char *name, int64_t from)
{
	sqlite3_stmt *s;
	int r = store_query(st, q, &s);

	if (r)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, store_top(st));
	sqlite3_bind_int64(s, 4, from);
	return store_run(st, s);
}

static int put_stream(struct wtg_store *st, uint64_t ino, const char *name, uint64_t size,
		      bool deleted, int64_t keep)
{
	sqlite3_stmt *s;
	int r = store_query(st, Q_STREAM_SET, &s);

	if (r)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, store_top(st));
	sqlite3_bind_int64(s, 4, (int64_t)size);
	sqlite3_bind_int(s, 5, deleted);
	if (keep != INT64_MAX)
		sqlite3_bind_int64(s, 6, keep);
	r = store_run(st, s);
	/* the slots cut off go, and their chunks with them when nothing else
	 * names them */
	int64_t from = deleted ? 0 : chunks_for(size);
	if (!r)
		r = cut_slots(st, Q_CHUNK_FREE_CUT, ino, name, from);
	if (!r)
		r = cut_slots(st, Q_EXTENT_CUT, ino, name, from);
	if (!r)
		r = store_journal_cut(st, ino, name, (uint64_t)from);
	return r;
}

int wtg_store_set_stream(struct wtg_store *st, uint64_t ino, const char *name, uint64_t size,
			 bool fresh)
{
	bool found, deleted;
	int64_t keep;

	if (size > INT64_MAX)
		return -EFBIG;
	pthread_mutex_lock(&st->lock);
	int r = store_writable(st);
	if (!r)
		r = top_stream(st, ino, name, &found, &deleted, &keep);
	if (!r) {
		if (fresh || deleted)
			keep = 0;
		if (chunks_for(size) < keep)
			keep = chunks_for(size);
		r = put_stream(st, ino, name, size, false, keep);
	}
	r = store_write_failed(st, r);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int wtg_store_delete_stream(struct wtg_store *st, uint64_t ino, const char *name)
{
	pthread_mutex_lock(&st->lock);
	int r = store_writable(st);
	if (!r)
		r = store_write_failed(st, put_stream(st, ino, name, 0, true, 0));
	pthread_mutex_unlock(&st->lock);
	return r;
}

int store_get_stream(struct wtg_store *st, const struct store_stack *stk, uint64_t ino,
		     const char *name, enum wtg_store_state *state_ret, uint64_t *size_ret)
{
	sqlite3_stmt *s;

	*state_ret = WTG_STORE_BASE;
	*size_ret = 0;
	int r = store_query(st, Q_STREAM_GET, &s);
	if (r)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	while ((r = store_step(st, s)) == 1) {
		if (!store_stack_has(stk, sqlite3_column_int64(s, 0)))
			continue;
		r = 0;
		if (sqlite3_column_int(s, 2)) {
			*state_ret = WTG_STORE_DELETED;
		} else {
			*state_ret = WTG_STORE_PRESENT;
			*size_ret = (uint64_t)sqlite3_column_int64(s, 1);
		}
		break;
	}
	sqlite3_reset(s);
	return r;
}

int wtg_store_get_stream(struct wtg_store *st, uint64_t ino, const char *name,
			 enum wtg_store_state *state_ret, uint64_t *size_ret)
{
	pthread_mutex_lock(&st->lock);
	struct store_stack stk = store_stack_of(st);
	int r = store_get_stream(st, &stk, ino, name, state_ret, size_ret);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int wtg_store_list_streams(struct wtg_store *st, uint64_t ino, wtg_store_stream_fn fn, void *arg)
{
	return store_list(st, NULL, Q_STREAM_LIST, ino, true, NULL, fn, arg);
}

/*
 * What slot @index resolves to: the topmost extent row in the stack, unless
 * a stream row above it hides what lies below (deleted, or truncated to
 * fewer chunks than @index + 1).  @below: ignore the top layer's extent
 * (what the slot would be without it) but not its stream row.
 */
int store_resolve(struct wtg_store *st, const struct store_stack *stk, uint64_t ino,
		  const char *stream, uint64_t index, bool below, enum wtg_store_state *state_ret,
		  uint8_t hash[WTG_STORE_HASH_LEN])
{
	enum wtg_store_state state = WTG_STORE_BASE;
	int64_t found = 0;
	sqlite3_stmt *s;
	int r = store_query(st, Q_EXTENT_GET, &s);

	if (r)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_text(s, 2, stream, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, (int64_t)index);
	while ((r = store_step(st, s)) == 1) {
		int64_t layer = sqlite3_column_int64(s, 0);
		r = 0;
		if ((below && stk->n && layer == stk->ids[0]) || !store_stack_has(stk, layer))
			continue;
		found = layer;
		if (sqlite3_column_type(s, 1) == SQLITE_NULL) {
			state = WTG_STORE_DELETED;
		} else if (sqlite3_column_bytes(s, 1) == 0) {
			/* the base again, below a truncation that hid it */
			state = WTG_STORE_BASE;
			break;
		} else if (store_column_hash(s, 1, hash)) {
			state = WTG_STORE_PRESENT;
		} else {
			r = store_damaged(st, "an extent does not name a chunk");
		}
		break;
	}
	sqlite3_reset(s);
	if (r)
		return r;
	r = store_query(st, Q_STREAM_GET, &s);
	if (r)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_text(s, 2, stream, -1, SQLITE_STATIC);
	while ((r = store_step(st, s)) == 1) {
		int64_t layer = sqlite3_column_int64(s, 0);
		r = 0;
		if (layer <= found)
			break;
		if (!store_stack_has(stk, layer))
			continue;
		if (sqlite3_column_int(s, 2) || (sqlite3_column_type(s, 3) != SQLITE_NULL &&
						 (int64_t)index >= sqlite3_column_int64(s, 3))) {
			state = WTG_STORE_DELETED;
			break;
		}
	}
	sqlite3_reset(s);
	*state_ret = state;
	return r;
}

/* A stream row of the stack, for hiding what lies below it. */
struct stream_row {
	int64_t layer, keep; /* keep: slots from it on are hidden (0: all) */
};

int wtg_store_stream_usage(struct wtg_store *st, uint64_t ino, const char *stream,
			   uint64_t base_slots, uint64_t *slots_ret)
{
	struct stream_row rows[64];
	size_t nrows = 0;
	int64_t base_keep = INT64_MAX;
	uint64_t slots = 0, covered = 0;
	sqlite3_stmt *s;

	pthread_mutex_lock(&st->lock);
	int r = store_query(st, Q_STREAM_GET, &s);
	if (r)
		goto out;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_text(s, 2, stream, -1, SQLITE_STATIC);
	while ((r = store_step(st, s)) == 1) {
		r = 0;
		int64_t layer = sqlite3_column_int64(s, 0), keep = INT64_MAX;
		if (!store_in_stack(st, layer))
			continue;
		if (sqlite3_column_int(s, 2))
			keep = 0;
		else if (sqlite3_column_type(s, 3) != SQLITE_NULL)
			keep = sqlite3_column_int64(s, 3);
		if (keep < base_keep)
			base_keep = keep;
		if (keep != INT64_MAX && nrows < sizeof(rows) / sizeof(rows[0]))
			rows[nrows++] = (struct stream_row){layer, keep};
	}
	sqlite3_reset(s);
	if (r < 0 || (r = store_query(st, Q_EXTENT_ALL, &s)))
		goto out;
	/* the base's slots that show: those below every cut of the stack */
	uint64_t base_shown = base_keep < 0 || (uint64_t)base_keep > base_slots ? base_slots
									      : (uint64_t)base_keep;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_text(s, 2, stream, -1, SQLITE_STATIC);
	int64_t last = -1;
	while ((r = store_step(st, s)) == 1) {
		int64_t idx = sqlite3_column_int64(s, 0), layer = sqlite3_column_int64(s, 1);
		r = 0;
		if (idx == last || !store_in_stack(st, layer))
			continue;
		last = idx; /* the topmost row in the stack decides */
		if ((uint64_t)idx < base_shown)
			covered++;
		bool hidden = false;
		for (size_t i = 0; i < nrows && !hidden; i++)
			hidden = rows[i].layer > layer && idx >= rows[i].keep;
		if (hidden || sqlite3_column_type(s, 2) == SQLITE_NULL)
			continue; /* a hole */
		if (sqlite3_column_bytes(s, 2) > 0 || (uint64_t)idx < base_slots)
			slots++; /* a chunk, or the base again */
	}
	sqlite3_reset(s);
	if (r >= 0) {
		r = 0;
		*slots_ret = slots + base_shown - covered;
	}
out:
	pthread_mutex_unlock(&st->lock);
	return r < 0 ? r : 0;
}

int wtg_store_get_extent(struct wtg_store *st, uint64_t ino, const char *stream, uint64_t index,
			 enum wtg_store_state *state_ret, uint8_t hash_ret[WTG_STORE_HASH_LEN])
{
	pthread_mutex_lock(&st->lock);
	struct store_stack stk = store_stack_of(st);
	int r = store_resolve(st, &stk, ino, stream, index, false, state_ret, hash_ret);
	pthread_mutex_unlock(&st->lock);
	return r;
}

/* The chunk the working layer's row for the slot names: *found. */
static int top_extent(struct wtg_store *st, uint64_t ino, const char *stream, uint64_t index,
		      bool *found, uint8_t hash[WTG_STORE_HASH_LEN])
{
	sqlite3_stmt *s;
	int r = store_query(st, Q_EXTENT_TOP, &s);

	*found = false;
	if (r)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_text(s, 2, stream, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, (int64_t)index);
	sqlite3_bind_int64(s, 4, store_top(st));
	r = store_step(st, s);
	if (r == 1)
		*found = store_column_hash(s, 0, hash);
	sqlite3_reset(s);
	return r < 0 ? r : 0;
}

/* A chunk the working layer stopped using goes at once when nothing else
 * uses it: a block rewritten a thousand times is stored once, not a
 * thousand times until the next gc. */
static int release_chunk(struct wtg_store *st, const uint8_t hash[WTG_STORE_HASH_LEN])
{
	sqlite3_stmt *s;
	int r = chunk_has_row(st, Q_CHUNK_USED, hash);

	if (r != 0)
		return r < 0 ? r : 0;
	r = store_query(st, Q_CHUNK_DEL, &s);
	if (r)
		return r;
	store_bind_hash(s, 1, hash);
	return store_run(st, s);
}

/* Drops the working layer's row for the slot, and its chunk if unused. */
static int drop_extent(struct wtg_store *st, uint64_t ino, const char *stream, uint64_t index)
{
	uint8_t old[WTG_STORE_HASH_LEN];
	bool had;
	sqlite3_stmt *s;
	int r = top_extent(st, ino, stream, index, &had, old);

	if (!r)
		r = store_query(st, Q_EXTENT_DEL, &s);
	if (r)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_text(s, 2, stream, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, (int64_t)index);
	sqlite3_bind_int64(s, 4, store_top(st));
	r = store_run(st, s);
	if (!r && had)
		r = release_chunk(st, old);
	return r;
}

/* Points the slot at @hash, at a hole (NULL), or at the base (@base). */
static int set_extent(struct wtg_store *st, uint64_t ino, const char *stream, uint64_t index,
		      const uint8_t *hash, bool base)
{
	uint8_t old[WTG_STORE_HASH_LEN];
	bool had = false;
	enum wtg_store_state below;
	uint8_t below_hash[WTG_STORE_HASH_LEN];
	sqlite3_stmt *s;

	if (index > INT64_MAX)
		return -EFBIG;
	pthread_mutex_lock(&st->lock);
	int r = store_writable(st);
	struct store_stack stk = store_stack_of(st);
	if (!r)
		r = store_resolve(st, &stk, ino, stream, index, true, &below, below_hash);
	if (r)
		goto out;
	if (base ? below == WTG_STORE_BASE
		 : (!hash && below == WTG_STORE_DELETED) ||
		       (hash && below == WTG_STORE_PRESENT &&
			!memcmp(hash, below_hash, sizeof(below_hash)))) {
		r = drop_extent(st, ino, stream, index);
	} else if (!(r = top_extent(st, ino, stream, index, &had, old))) {
		r = store_query(st, Q_EXTENT_SET, &s);
		if (r)
			goto out;
		sqlite3_bind_int64(s, 1, (int64_t)ino);
		sqlite3_bind_text(s, 2, stream, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, (int64_t)index);
		sqlite3_bind_int64(s, 4, store_top(st));
		if (base)
			sqlite3_bind_zeroblob(s, 5, 0); /* empty, not NULL: "the base" */
		else if (hash)
			store_bind_hash(s, 5, hash);
		r = store_run(st, s);
	}
	if (!r && had && (!hash || memcmp(old, hash, sizeof(old))))
		r = release_chunk(st, old);
out:
	r = store_write_failed(st, r);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int wtg_store_set_extent(struct wtg_store *st, uint64_t ino, const char *stream, uint64_t index,
			 const uint8_t *hash)
{
	return set_extent(st, ino, stream, index, hash, false);
}

int wtg_store_set_extent_base(struct wtg_store *st, uint64_t ino, const char *stream,
			      uint64_t index)
{
	return set_extent(st, ino, stream, index, NULL, true);
}

/* ---- stream sums ---- */

int wtg_store_put_sum(struct wtg_store *st, const struct wtg_store_sum *sum)
{
	sqlite3_stmt *s;

	if (sum->ino > INT64_MAX || sum->size > INT64_MAX)
		return -EINVAL;
	pthread_mutex_lock(&st->lock);
	int r = store_writable(st);
	if (!r)
		r = store_query(st, Q_SUM_PUT, &s);
	if (!r) {
		store_bind_hash(s, 1, sum->fp);
		sqlite3_bind_blob(s, 2, sum->sha1, WTG_SHA1_LEN, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, store_top(st));
		sqlite3_bind_int64(s, 4, (int64_t)sum->ino);
		sqlite3_bind_text(s, 5, sum->stream, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 6, (int64_t)sum->size);
		r = store_run(st, s);
	}
	pthread_mutex_unlock(&st->lock);
	return r;
}

void wtg_store_sums_free(struct wtg_store_sum *sums, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(sums[i].stream);
	free(sums);
}

int wtg_store_list_sums(struct wtg_store *st, struct wtg_store_sum **sums_ret, size_t *n_ret)
{
	struct wtg_store_sum *v = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *s = NULL;

	pthread_mutex_lock(&st->lock);
	int r = store_query(st, Q_SUM_LIST, &s);
	while (!r && (r = store_step(st, s)) == 1) {
		const char *name = (const char *)sqlite3_column_text(s, 4);
		r = wtg_grow((void **)&v, &cap, n, sizeof(*v));
		if (r)
			break;
		struct wtg_store_sum *e = &v[n];
		memset(e, 0, sizeof(*e));
		if (!store_column_hash(s, 0, e->fp) || sqlite3_column_bytes(s, 1) != WTG_SHA1_LEN ||
		    sqlite3_column_int64(s, 3) < 0 || sqlite3_column_int64(s, 5) < 0 || !name) {
			r = store_damaged(st, "a stream sum's row is not one");
			break;
		}
		memcpy(e->sha1, sqlite3_column_blob(s, 1), WTG_SHA1_LEN);
		e->layer = sqlite3_column_int64(s, 2);
		e->ino = (uint64_t)sqlite3_column_int64(s, 3);
		e->size = (uint64_t)sqlite3_column_int64(s, 5);
		if (!(e->stream = strdup(name))) {
			r = -ENOMEM;
			break;
		}
		n++;
		r = 0;
	}
	if (s)
		sqlite3_reset(s);
	pthread_mutex_unlock(&st->lock);
	if (r) {
		wtg_store_sums_free(v, n);
		return r;
	}
	*sums_ret = v;
	*n_ret = n;
	return 0;
}

int wtg_store_get_sum(struct wtg_store *st, const uint8_t fp[WTG_STORE_HASH_LEN],
		      uint8_t sha1_ret[WTG_SHA1_LEN])
{
	sqlite3_stmt *s;

	pthread_mutex_lock(&st->lock);
	int r = store_query(st, Q_SUM_GET, &s);
	if (!r) {
		store_bind_hash(s, 1, fp);
		r = store_step(st, s);
		if (r == 1 && sqlite3_column_bytes(s, 0) == WTG_SHA1_LEN) {
			memcpy(sha1_ret, sqlite3_column_blob(s, 0), WTG_SHA1_LEN);
			r = 0;
		} else if (r >= 0) {
			r = r == 1 ? store_damaged(st, "a stream sum is not a SHA-1") : -ENOENT;
		}
		sqlite3_reset(s);
	}
	pthread_mutex_unlock(&st->lock);
	return r;
}
