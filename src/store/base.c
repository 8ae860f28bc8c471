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
