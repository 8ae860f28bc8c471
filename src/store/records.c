/*
 * The records of inodes, names and security descriptors, looked up through
 * the layer stack (the topmost record wins), and the whole stack at once for
 * loading a mount.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wtgfs/hash.h"

#include "store_int.h"

int wtg_store_put_sd(struct wtg_store *st, const void *data, size_t len,
		     uint8_t hash_ret[WTG_STORE_HASH_LEN])
{
	sqlite3_stmt *s;

	if (len > INT_MAX)
		return -EINVAL;
	wtg_sha256(data, len, hash_ret);
	pthread_mutex_lock(&st->lock);
	int r = store_writable(st);
	if (!r)
		r = store_query(st, Q_SD_PUT, &s);
	if (!r) {
		store_bind_hash(s, 1, hash_ret);
		sqlite3_bind_blob(s, 2, data, (int)len, SQLITE_STATIC);
		r = store_write_failed(st, store_run(st, s));
	}
	pthread_mutex_unlock(&st->lock);
	return r;
}

int wtg_store_get_sd(struct wtg_store *st, const uint8_t hash[WTG_STORE_HASH_LEN],
		     uint8_t **data_ret, size_t *len_ret)
{
	sqlite3_stmt *s;

	pthread_mutex_lock(&st->lock);
	int r = store_query(st, Q_SD_GET, &s);
	if (r)
		goto out;
	store_bind_hash(s, 1, hash);
	r = store_step_blob(st, s, data_ret, len_ret);
out:
	pthread_mutex_unlock(&st->lock);
	if (!r && !store_key_matches(hash, *data_ret, *len_ret)) {
		free(*data_ret);
		*data_ret = NULL;
		r = store_damaged_at(st, "security descriptor", hash,
				     "its bytes do not hash to its key");
	}
	return r;
}

/* ---- inodes ---- */

void wtg_store_inode_release(struct wtg_store_inode *inode)
{
	free(inode->reparse);
	free(inode->object_id);
	free(inode->legacy_dos_name);
	free(inode->ea);
	inode->reparse = inode->object_id = inode->ea = NULL;
	inode->legacy_dos_name = NULL;
}

static int set_inode(struct wtg_store *st, uint64_t ino, const struct wtg_store_inode *in)
{
	static const uint8_t no_sd[WTG_STORE_HASH_LEN];
	sqlite3_stmt *s;
	int r = store_writable(st);

	if (!r)
		r = store_query(st, Q_INODE_SET, &s);
	if (r)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_int64(s, 2, store_top(st));
	sqlite3_bind_int(s, 3, !in);
	if (in) {
		sqlite3_bind_int64(s, 4, in->attributes);
		if (memcmp(in->sd_hash, no_sd, sizeof(no_sd)))
			store_bind_hash(s, 5, in->sd_hash);
		sqlite3_bind_int64(s, 6, in->crtime);
		sqlite3_bind_int64(s, 7, in->mtime);
		sqlite3_bind_int64(s, 8, in->atime);
		sqlite3_bind_int64(s, 9, in->ctime);
		if (in->reparse)
			sqlite3_bind_blob(s, 10, in->reparse, (int)in->reparse_len, SQLITE_STATIC);
		if (in->object_id)
			sqlite3_bind_blob(s, 11, in->object_id, (int)in->object_id_len,
					  SQLITE_STATIC);
		if (in->legacy_dos_name)
			sqlite3_bind_text(s, 12, in->legacy_dos_name, -1, SQLITE_STATIC);
		if (in->ea)
			sqlite3_bind_blob(s, 13, in->ea, (int)in->ea_len, SQLITE_STATIC);
	}
	r = store_run(st, s);
	if (!r && in) /* the times its journal rows carry are older */
		r = store_journal_untime(st, ino);
	return r;
}

int wtg_store_set_inode(struct wtg_store *st, uint64_t ino, const struct wtg_store_inode *inode)
{
	pthread_mutex_lock(&st->lock);
	int r = store_write_failed(st, set_inode(st, ino, inode));
	pthread_mutex_unlock(&st->lock);
	return r;
}

/* Runs the cached statement @q with ?1 = @a and ?2 = @b. */
static int run_2(struct wtg_store *st, int q, int64_t a, int64_t b)
{
	sqlite3_stmt *s;
	int r = store_query(st, q, &s);

	if (r)
		return r;
	sqlite3_bind_int64(s, 1, a);
	sqlite3_bind_int64(s, 2, b);
	return store_run(st, s);
}

/* Drops what the working layer holds for @ino's data (its chunks that
 * nothing else names go too): garbage once the inode is gone. */
static int drop_data(struct wtg_store *st, uint64_t ino)
{
	int64_t top = store_top(st);
	int r = run_2(st, Q_CHUNK_FREE_INODE, (int64_t)ino, top);

	if (!r)
		r = run_2(st, Q_INODE_DEL_EXTENTS, (int64_t)ino, top);
	if (!r)
		r = run_2(st, Q_INODE_DEL_STREAMS, (int64_t)ino, top);
	if (!r)
		r = store_journal_cut(st, ino, NULL, 0);
	return r;
}

int wtg_store_delete_inode(struct wtg_store *st, uint64_t ino)
{
	pthread_mutex_lock(&st->lock);
	int r = set_inode(st, ino, NULL);
	if (!r)
		r = drop_data(st, ino);
	r = store_write_failed(st, r);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int wtg_store_delete_new_inode(struct wtg_store *st, uint64_t ino, bool *traceless_ret)
{
	sqlite3_stmt *s;
	bool below = false, elsewhere = false;

	*traceless_ret = false;
	pthread_mutex_lock(&st->lock);
	int r = store_writable(st);
	if (!r)
		r = store_query(st, Q_INODE_BELOW, &s);
	if (!r) {
		/* below: a layer of the stack knows it; elsewhere: any other
		 * layer (one a rollback left), whose number must not be reused */
		sqlite3_bind_int64(s, 1, (int64_t)ino);
		while ((r = store_step(st, s)) == 1) {
			int64_t layer = sqlite3_column_int64(s, 0);
			r = 0;
			if (layer != store_top(st)) {
				elsewhere = true;
				if ((below = store_in_stack(st, layer)))
					break;
			}
		}
		sqlite3_reset(s);
	}
	if (!r && below) {
		r = set_inode(st, ino, NULL);
	} else if (!r) {
		/* born in the working layer: nothing below knows it, so nothing
		 * needs to say it is gone */
		r = run_2(st, Q_INODE_FORGET, (int64_t)ino, store_top(st));
		if (!r)
			r = run_2(st, Q_NAME_DEL_DIR, (int64_t)ino, store_top(st));
	}
	if (!r)
		r = drop_data(st, ino);
	if (!r)
		*traceless_ret = !elsewhere;
	r = store_write_failed(st, r);
	pthread_mutex_unlock(&st->lock);
	return r;
}

static int copy_blob(sqlite3_stmt *s, int col, uint8_t **out, uint32_t *len)
{
	int n = sqlite3_column_bytes(s, col);

	*out = NULL;
	*len = 0;
	if (sqlite3_column_type(s, col) == SQLITE_NULL)
		return 0;
	*out = malloc(n ? (size_t)n : 1);
	if (!*out)
		return -ENOMEM;
	if (n)
		memcpy(*out, sqlite3_column_blob(s, col), (size_t)n);
	*len = (uint32_t)n;
	return 0;
}

/* Fills @in from an inode row whose 'deleted' column is @c (the others
 * follow it in table order). */
static int inode_row(struct wtg_store *st, sqlite3_stmt *s, int c, struct wtg_store_inode *in)
{
	int r = 0;

	memset(in, 0, sizeof(*in));
	in->attributes = (uint32_t)sqlite3_column_int64(s, c + 1);
	if (sqlite3_column_type(s, c + 2) != SQLITE_NULL &&
	    !store_column_hash(s, c + 2, in->sd_hash))
		return store_damaged(st, "a security descriptor reference is not a hash");
	in->crtime = sqlite3_column_int64(s, c + 3);
	in->mtime = sqlite3_column_int64(s, c + 4);
	in->atime = sqlite3_column_int64(s, c + 5);
	in->ctime = sqlite3_column_int64(s, c + 6);
	r = copy_blob(s, c + 7, &in->reparse, &in->reparse_len);
	if (!r)
		r = copy_blob(s, c + 8, &in->object_id, &in->object_id_len);
	if (!r && sqlite3_column_type(s, c + 9) != SQLITE_NULL) {
		in->legacy_dos_name = strdup((const char *)sqlite3_column_text(s, c + 9));
		r = in->legacy_dos_name ? 0 : -ENOMEM;
	}
	if (!r)
		r = copy_blob(s, c + 10, &in->ea, &in->ea_len);
	if (r)
		wtg_store_inode_release(in);
	return r;
}

int store_get_inode(struct wtg_store *st, const struct store_stack *stk, uint64_t ino,
		    enum wtg_store_state *state_ret, struct wtg_store_inode *in)
{
	sqlite3_stmt *s;

	*state_ret = WTG_STORE_BASE;
	int r = store_query(st, Q_INODE_GET, &s);
	if (r)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	while ((r = store_step(st, s)) == 1) {
		if (!store_stack_has(stk, sqlite3_column_int64(s, 0)))
			continue;
		r = 0;
		if (sqlite3_column_int(s, 1)) {
			*state_ret = WTG_STORE_DELETED;
			break;
		}
		*state_ret = WTG_STORE_PRESENT;
		r = inode_row(st, s, 1, in);
		break;
	}
	sqlite3_reset(s);
	return r;
}

int wtg_store_get_inode(struct wtg_store *st, uint64_t ino, enum wtg_store_state *state_ret,
			struct wtg_store_inode *in)
{
	pthread_mutex_lock(&st->lock);
	struct store_stack stk = store_stack_of(st);
	int r = store_get_inode(st, &stk, ino, state_ret, in);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int wtg_store_max_ino(struct wtg_store *st, uint64_t *ino_ret)
{
	int64_t v;

	pthread_mutex_lock(&st->lock);
	int r = store_int_query(st,
				"SELECT max(coalesce((SELECT max(ino) FROM inodes), 0),"
				" coalesce((SELECT max(ino) FROM names), 0),"
				" coalesce((SELECT max(dir) FROM names), 0), ?1)",
				0, &v);
	*ino_ret = (uint64_t)v;
	pthread_mutex_unlock(&st->lock);
	return r;
}

/* ---- the whole stack at once ---- */

static const char *const each_sql[] = {
    [WTG_STORE_INODES] = "SELECT ino, NULL, layer, deleted, attributes, sd, crtime, mtime,"
			 " atime, ctime, reparse, object_id, dos_name, ea FROM inodes"
			 " ORDER BY ino, layer DESC",
    [WTG_STORE_NAMES] = "SELECT dir, name, layer, ino, dos_name FROM names"
			" ORDER BY dir, name, layer DESC",
    [WTG_STORE_STREAMS] = "SELECT ino, name, layer, size, deleted FROM streams"
			  " ORDER BY ino, name, layer DESC",
};

int wtg_store_each(struct wtg_store *st, enum wtg_store_table table, wtg_store_record_fn fn,
		   void *arg)
{
	struct wtg_store_inode in;
	sqlite3_stmt *s = NULL;
	int64_t last_key = -1;
	char *last_name = NULL;

	pthread_mutex_lock(&st->lock);
	int r = store_prepare(st, each_sql[table], &s);
	while (!r && (r = store_step(st, s)) == 1) {
		r = 0;
		int64_t key = sqlite3_column_int64(s, 0);
		const char *name = (const char *)sqlite3_column_text(s, 1);
		if (!store_in_stack(st, sqlite3_column_int64(s, 2)))
			continue;
		/* the first row of a key in the stack is its record */
		if (key == last_key && (!name || (last_name && !strcmp(name, last_name))))
			continue;
		last_key = key;
		free(last_name);
		last_name = NULL;
		if (name && !(last_name = strdup(name))) {
			r = -ENOMEM;
			break;
		}
		struct wtg_store_record rec = {.ino = (uint64_t)key, .name = name};
		if (table == WTG_STORE_INODES) {
			rec.deleted = sqlite3_column_int(s, 3) != 0;
			if (!rec.deleted) {
				if ((r = inode_row(st, s, 3, &in)))
					break;
				rec.inode = &in;
			}
			r = fn(arg, &rec);
			if (rec.inode)
				wtg_store_inode_release(&in);
		} else {
			rec.value = (uint64_t)sqlite3_column_int64(s, 3);
			rec.deleted = table == WTG_STORE_NAMES ? rec.value == 0
							       : sqlite3_column_int(s, 4) != 0;
			if (table == WTG_STORE_NAMES && !rec.deleted)
				rec.dos_name = (const char *)sqlite3_column_text(s, 4);
			r = fn(arg, &rec);
		}
	}
	free(last_name);
	if (s)
		sqlite3_finalize(s);
	pthread_mutex_unlock(&st->lock);
	return r;
}

/* ---- names ---- */

int wtg_store_set_name(struct wtg_store *st, uint64_t dir, const char *name, uint64_t ino)
{
	return wtg_store_set_name_dos(st, dir, name, ino, NULL);
}

int wtg_store_set_name_dos(struct wtg_store *st, uint64_t dir, const char *name, uint64_t ino,
			   const char *dos)
{
	sqlite3_stmt *s;

	pthread_mutex_lock(&st->lock);
	int r = store_writable(st);
	if (!r)
		r = store_query(st, Q_NAME_SET, &s);
	if (!r) {
		sqlite3_bind_int64(s, 1, (int64_t)dir);
		sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, store_top(st));
		if (ino)
			sqlite3_bind_int64(s, 4, (int64_t)ino);
		if (ino && dos)
			sqlite3_bind_text(s, 5, dos, -1, SQLITE_STATIC);
		r = store_run(st, s);
	}
	r = store_write_failed(st, r);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int wtg_store_remove_name(struct wtg_store *st, uint64_t dir, const char *name, bool base_has)
{
	sqlite3_stmt *s;
	bool below = base_has;

	pthread_mutex_lock(&st->lock);
	int r = store_writable(st);
	if (!r && !(r = store_query(st, Q_NAME_BELOW, &s))) {
		/* the record below the working layer decides: a name needs a
		 * whiteout, a whiteout already hides what lies under it */
		sqlite3_bind_int64(s, 1, (int64_t)dir);
		sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, store_top(st));
		while ((r = store_step(st, s)) == 1) {
			r = 0;
			if (store_in_stack(st, sqlite3_column_int64(s, 0))) {
				below = sqlite3_column_type(s, 1) != SQLITE_NULL &&
					sqlite3_column_int64(s, 1) != 0;
				break;
			}
		}
		sqlite3_reset(s);
	}
	if (!r)
		r = store_query(st, below ? Q_NAME_SET : Q_NAME_DEL, &s);
	if (!r) {
		/* a whiteout when something below holds the name, else the
		 * working layer forgets it had one */
		sqlite3_bind_int64(s, 1, (int64_t)dir);
		sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, store_top(st));
		r = store_run(st, s);
	}
	r = store_write_failed(st, r);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int store_get_name(struct wtg_store *st, const struct store_stack *stk, uint64_t dir,
		   const char *name, enum wtg_store_state *state_ret, uint64_t *ino_ret,
		   char **dos_ret)
{
	sqlite3_stmt *s;

	*state_ret = WTG_STORE_BASE;
	*ino_ret = 0;
	if (dos_ret)
		*dos_ret = NULL;
	int r = store_query(st, Q_NAME_GET, &s);
	if (r)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)dir);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	while ((r = store_step(st, s)) == 1) {
		if (!store_stack_has(stk, sqlite3_column_int64(s, 0)))
			continue;
		*ino_ret = (uint64_t)sqlite3_column_int64(s, 1);
		*state_ret = *ino_ret ? WTG_STORE_PRESENT : WTG_STORE_DELETED;
		r = 0;
		if (dos_ret && *ino_ret && sqlite3_column_type(s, 2) != SQLITE_NULL &&
		    !(*dos_ret = strdup((const char *)sqlite3_column_text(s, 2))))
			r = -ENOMEM;
		break;
	}
	sqlite3_reset(s);
	return r;
}

int wtg_store_get_name(struct wtg_store *st, uint64_t dir, const char *name,
		       enum wtg_store_state *state_ret, uint64_t *ino_ret)
{
	pthread_mutex_lock(&st->lock);
	struct store_stack stk = store_stack_of(st);
	int r = store_get_name(st, &stk, dir, name, state_ret, ino_ret, NULL);
	pthread_mutex_unlock(&st->lock);
	return r;
}

/* Rows come ordered by name, then layer from the top: the first row of each
 * name that lies in the stack is that name's record.  Callbacks run on a
 * copy of the rows, unlocked, so they may call back into the store. */
struct list_row {
	char *name;
	uint64_t value;
	bool deleted;
};

static int collect(struct wtg_store *st, const struct store_stack *stk, int q, uint64_t key,
		   bool streams, struct list_row **rows_ret, size_t *count_ret)
{
	struct list_row *rows = NULL;
	size_t n = 0;
	char *last = NULL;
	sqlite3_stmt *s;
	int r = store_query(st, q, &s);

	if (r)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)key);
	while ((r = store_step(st, s)) == 1) {
		const char *name = (const char *)sqlite3_column_text(s, 0);
		r = 0;
		if (!name || !store_stack_has(stk, sqlite3_column_int64(s, 1)) ||
		    (last && !strcmp(last, name)))
			continue;
		struct list_row *p = realloc(rows, (n + 1) * sizeof(*p));
		if (!p) {
			r = -ENOMEM;
			break;
		}
		rows = p;
		if (!(last = strdup(name))) {
			r = -ENOMEM;
			break;
		}
		rows[n].name = last;
		rows[n].value = (uint64_t)sqlite3_column_int64(s, 2);
		rows[n].deleted = streams ? sqlite3_column_int(s, 3) != 0 : !rows[n].value;
		n++;
	}
	sqlite3_reset(s);
	if (r < 0) {
		for (size_t i = 0; i < n; i++)
			free(rows[i].name);
		free(rows);
		return r;
	}
	*rows_ret = rows;
	*count_ret = n;
	return 0;
}

int store_list(struct wtg_store *st, const struct store_stack *stk, int q, uint64_t key,
	       bool streams, wtg_store_name_fn name_fn, wtg_store_stream_fn stream_fn, void *arg)
{
	struct list_row *rows = NULL;
	size_t n = 0;

	pthread_mutex_lock(&st->lock);
	struct store_stack own = store_stack_of(st);
	int r = collect(st, stk ? stk : &own, q, key, streams, &rows, &n);
	pthread_mutex_unlock(&st->lock);
	for (size_t i = 0; i < n; i++) {
		if (!r)
			r = streams ? stream_fn(arg, rows[i].name, rows[i].value, rows[i].deleted)
				    : name_fn(arg, rows[i].name, rows[i].value);
		free(rows[i].name);
	}
	free(rows);
	return r;
}

int wtg_store_list_names(struct wtg_store *st, uint64_t dir, wtg_store_name_fn fn, void *arg)
{
	return store_list(st, NULL, Q_NAME_LIST, dir, false, fn, NULL, arg);
}
