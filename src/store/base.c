/*
 * The index of the base's metadata: what diff needs to know of the base
 * image's inodes, names and security descriptors, kept in the delta so that
 * a diff reads the few records a change names instead of loading the whole
 * image (wtgfs/base_index.h packs and reads the records; this file only
 * stores them).  Three tables, written once per delta (at init, or on the
 * first writable open of a delta older than format 4) and never changed
 * after: base_inodes (one packed row per inode), base_names ((directory,
 * exact name) -> inode, the one lookup by name) and base_sds (the security
 * descriptors by the tree's id, each stored once).  The meta key
 * "base_indexed" marks the index complete; without it the index is as good
 * as absent.
 */
#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "wtgfs/le.h"

bool wtg_store_base_indexed(struct wtg_store *st)
{
	pthread_mutex_lock(&st->lock);
	bool yes = st->base_indexed;
	pthread_mutex_unlock(&st->lock);
	return yes;
}

int wtg_store_base_index_begin(struct wtg_store *st)
{
	pthread_mutex_lock(&st->lock);
	int r = store_writable(st);
	if (!r)
		r = store_exec(st, "DELETE FROM meta WHERE key = 'base_indexed';"
				   " DELETE FROM base_inodes; DELETE FROM base_names;"
				   " DELETE FROM base_sds");
	if (!r)
		st->base_indexed = false;
	pthread_mutex_unlock(&st->lock);
	return r ? store_write_failed(st, r) : 0;
}

/* Binds @blob (@len bytes) and @key, runs statement @q in the open batch. */
static int put(struct wtg_store *st, int q, uint64_t key, const char *text, int text_len,
	       const void *blob, size_t len, uint64_t value)
{
	sqlite3_stmt *s;

	if (len > INT_MAX)
		return -EINVAL;
	pthread_mutex_lock(&st->lock);
	int r = store_writable(st);
	if (!r)
		r = store_query(st, q, &s);
	if (!r) {
		sqlite3_bind_int64(s, 1, (int64_t)key);
		if (text) {
			sqlite3_bind_text(s, 2, text, text_len, SQLITE_STATIC);
			sqlite3_bind_int64(s, 3, (int64_t)value);
		} else {
			sqlite3_bind_blob(s, 2, len ? blob : "", (int)len, SQLITE_STATIC);
		}
		r = store_write_failed(st, store_run(st, s));
	}
	pthread_mutex_unlock(&st->lock);
	return r;
}

int wtg_store_base_index_put_sd(struct wtg_store *st, uint32_t id, const void *data, size_t len)
{
	return put(st, Q_BASE_SD_PUT, id, NULL, 0, data, len, 0);
}

int wtg_store_base_index_put_inode(struct wtg_store *st, uint64_t ino, const void *data, size_t len)
{
	return put(st, Q_BASE_INODE_PUT, ino, NULL, 0, data, len, 0);
}

int wtg_store_base_index_put_name(struct wtg_store *st, uint64_t dir, const char *name, size_t len,
				  uint64_t ino)
{
	if (len > INT_MAX)
		return -EINVAL;
	return put(st, Q_BASE_NAME_PUT, dir, name, (int)len, NULL, 0, ino);
}

int wtg_store_base_index_end(struct wtg_store *st, uint64_t ninodes)
{
	pthread_mutex_lock(&st->lock);
	int r = store_writable(st);
	if (!r)
		r = store_put_meta(st, "base_indexed", SQLITE_INTEGER, (int64_t)ninodes, NULL, 0);
	if (!r)
		r = store_commit_locked(st, true);
	if (!r)
		st->base_indexed = true;
	pthread_mutex_unlock(&st->lock);
	return r ? store_write_failed(st, r) : 0;
}

/* The blob of the one row statement @q finds for @key: -ENOENT when none. */
static int get_blob(struct wtg_store *st, int q, uint64_t key, uint8_t **data_ret, size_t *len_ret)
{
	sqlite3_stmt *s;

	*data_ret = NULL;
	*len_ret = 0;
	pthread_mutex_lock(&st->lock);
	int r = st->base_indexed ? store_query(st, q, &s) : -ENOENT;
	if (r)
		goto out;
	sqlite3_bind_int64(s, 1, (int64_t)key);
	r = store_step_blob(st, s, data_ret, len_ret);
out:
	pthread_mutex_unlock(&st->lock);
	return r;
}

int wtg_store_base_index_inode(struct wtg_store *st, uint64_t ino, uint8_t **data_ret,
			       size_t *len_ret)
{
	return get_blob(st, Q_BASE_INODE_GET, ino, data_ret, len_ret);
}

int wtg_store_base_index_sd(struct wtg_store *st, uint32_t id, uint8_t **data_ret, size_t *len_ret)
{
	return get_blob(st, Q_BASE_SD_GET, id, data_ret, len_ret);
}

int wtg_store_base_index_name(struct wtg_store *st, uint64_t dir, const char *name,
			      uint64_t *ino_ret)
{
	sqlite3_stmt *s;

	*ino_ret = 0;
	pthread_mutex_lock(&st->lock);
	int r = st->base_indexed ? store_query(st, Q_BASE_NAME_GET, &s) : -ENOENT;
	if (r)
		goto out;
	sqlite3_bind_int64(s, 1, (int64_t)dir);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	r = store_step(st, s);
	if (r == 1) {
		*ino_ret = (uint64_t)sqlite3_column_int64(s, 0);
		r = 0;
	}
	sqlite3_reset(s);
out:
	pthread_mutex_unlock(&st->lock);
	return r;
}

/* ---- the base image's metadata resource itself ---- */

/* The parts the metadata is stored in (each a chunk to the codec). */
#define BASE_METADATA_PART (1u << 20)
/* meta "base_metadata": the resource's SHA-1 and le64 size, put last: the
 * parts are whole when it is there */
#define BASE_METADATA_KEY_LEN (20 + 8)

int wtg_store_base_metadata_put(struct wtg_store *st, const uint8_t sha1[20], const void *bytes,
				size_t len)
{
	struct wtg_chunk_codec *codec = wtg_chunk_codec_new();
	uint8_t *out = malloc(wtg_chunk_encode_bound(BASE_METADATA_PART));
	uint8_t key[BASE_METADATA_KEY_LEN];
	sqlite3_stmt *s = NULL;
	int r = codec && out ? 0 : -ENOMEM;

	memcpy(key, sha1, 20);
	wtg_put_le64(key + 20, len);
	pthread_mutex_lock(&st->lock);
	if (!r)
		r = store_writable(st);
	if (!r)
		r = store_exec(st, "DELETE FROM meta WHERE key = 'base_metadata';"
				   " DELETE FROM base_metadata; DELETE FROM base_census");
	if (!r)
		r = store_prepare(st, "INSERT INTO base_metadata(part, size, codec, data)"
				      " VALUES(?1, ?2, ?3, ?4)", &s);
	for (size_t off = 0, part = 0; !r && off < len; off += BASE_METADATA_PART, part++) {
		size_t n = len - off < BASE_METADATA_PART ? len - off : BASE_METADATA_PART, stored;
		int id;
		if ((r = wtg_chunk_encode(codec, (const uint8_t *)bytes + off, n, out, &id, &stored)))
			break;
		sqlite3_bind_int64(s, 1, (int64_t)part);
		sqlite3_bind_int64(s, 2, (int64_t)n);
		sqlite3_bind_int(s, 3, id);
		sqlite3_bind_blob(s, 4, out, (int)stored, SQLITE_STATIC);
		r = store_run(st, s);
	}
	sqlite3_finalize(s);
	if (!r)
		r = store_put_meta(st, "base_metadata", SQLITE_BLOB, 0, key, sizeof(key));
	if (!r)
		r = store_commit_locked(st, true);
	pthread_mutex_unlock(&st->lock);
	free(out);
	wtg_chunk_codec_free(codec);
	return r ? store_write_failed(st, r) : 0;
}

void wtg_store_base_metadata_free(struct wtg_store_base_metadata *m)
{
	for (size_t i = 0; i < m->nparts; i++)
		free(m->parts[i].data);
	free(m->parts);
	memset(m, 0, sizeof(*m));
}

int wtg_store_base_metadata_get(struct wtg_store *st, struct wtg_store_base_metadata *m)
{
	sqlite3_stmt *s = NULL;
	uint8_t *key = NULL;
	size_t key_len = 0, cap = 0;
	uint64_t at = 0;
	int r;

	memset(m, 0, sizeof(*m));
	pthread_mutex_lock(&st->lock);
	r = store_prepare(st, "SELECT value FROM meta WHERE key = 'base_metadata'", &s);
	if (!r)
		r = store_step_blob(st, s, &key, &key_len);
	sqlite3_finalize(s);
	s = NULL;
	if (!r && key_len != BASE_METADATA_KEY_LEN)
		r = store_damaged(st, "the base metadata's key");
	if (!r) {
		memcpy(m->sha1, key, 20);
		m->size = wtg_get_le64(key + 20);
		r = store_prepare(st, "SELECT part, size, codec, data FROM base_metadata ORDER BY part",
				  &s);
	}
	while (!r && (r = store_step(st, s)) == 1) {
		int64_t part = sqlite3_column_int64(s, 0), size = sqlite3_column_int64(s, 1);
		int len = sqlite3_column_bytes(s, 3);
		const void *data = sqlite3_column_blob(s, 3);
		/* parts in order, each whole but the last, none past the size */
		if ((uint64_t)part != m->nparts || size <= 0 || size > BASE_METADATA_PART ||
		    at % BASE_METADATA_PART || (uint64_t)size > m->size - at) {
			r = store_damaged(st, "the base metadata's parts");
			break;
		}
		if (m->nparts == cap) {
			size_t ncap = cap ? 2 * cap : 16;
			void *p = realloc(m->parts, ncap * sizeof(*m->parts));
			if (!p) {
				r = -ENOMEM;
				break;
			}
			m->parts = p;
			cap = ncap;
		}
		struct wtg_store_base_metadata_part *p = &m->parts[m->nparts];
		*p = (struct wtg_store_base_metadata_part){.codec = sqlite3_column_int(s, 2),
							   .size = (size_t)size,
							   .len = (size_t)len};
		if (!(p->data = malloc(len ? (size_t)len : 1))) {
			r = -ENOMEM;
			break;
		}
		memcpy(p->data, data, (size_t)len);
		m->nparts++;
		at += (uint64_t)size;
		r = 0;
	}
	if (!r && at != m->size)
		r = store_damaged(st, "the base metadata's parts");
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->lock);
	free(key);
	if (r)
		wtg_store_base_metadata_free(m);
	return r;
}

int wtg_store_base_metadata_decode_each(const struct wtg_store_base_metadata *m, void *out,
					void (*fed)(void *ctx, size_t done), void *ctx)
{
	struct wtg_chunk_codec *codec = wtg_chunk_codec_new();
	size_t at = 0;
	int r = codec ? 0 : -ENOMEM;

	for (size_t i = 0; !r && i < m->nparts; i++) {
		const struct wtg_store_base_metadata_part *p = &m->parts[i];
		r = wtg_chunk_decode(codec, p->codec, p->data, p->len, (uint8_t *)out + at, p->size);
		at += p->size;
		if (!r && fed)
			fed(ctx, at);
	}
	wtg_chunk_codec_free(codec);
	return r;
}

int wtg_store_base_metadata_decode(const struct wtg_store_base_metadata *m, void *out)
{
	return wtg_store_base_metadata_decode_each(m, out, NULL, NULL);
}

/* ---- the base image's counts ---- */

/* table base_census: one row, its bytes as wtgfs/census.h encodes them (not
 * in meta, which every open reads whole) */
int wtg_store_base_census_put(struct wtg_store *st, const void *bytes, size_t len)
{
	sqlite3_stmt *s = NULL;
	int r;

	pthread_mutex_lock(&st->lock);
	r = store_writable(st);
	if (!r)
		r = store_prepare(st, "INSERT OR REPLACE INTO base_census(id, data) VALUES(0, ?1)",
				  &s);
	if (!r) {
		sqlite3_bind_blob(s, 1, bytes, (int)len, SQLITE_STATIC);
		r = store_run(st, s);
	}
	sqlite3_finalize(s);
	if (!r)
		r = store_commit_locked(st, true);
	pthread_mutex_unlock(&st->lock);
	return r ? store_write_failed(st, r) : 0;
}

int wtg_store_base_census_get(struct wtg_store *st, uint8_t **bytes, size_t *len)
{
	sqlite3_stmt *s = NULL;
	int64_t have = 0;
	int r;

	*bytes = NULL;
	*len = 0;
	pthread_mutex_lock(&st->lock);
	/* (deltas made before it, opened read-only, have no such table) */
	r = store_int_query(st,
			    "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
			    " AND name = 'base_census'",
			    0, &have);
	if (!r && !have)
		r = -ENOENT;
	if (!r)
		r = store_prepare(st, "SELECT data FROM base_census WHERE id = 0", &s);
	if (!r)
		r = store_step_blob(st, s, bytes, len);
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->lock);
	return r;
}
