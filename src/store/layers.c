/*
 * Layers and snapshots: a snapshot seals the working layer and opens a new
 * one in one durable transaction; a rollback opens a new working layer on a
 * snapshot; the list of layers for 'wtgfs log'.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wtgfs/log.h"

#include "store_int.h"

/* ---- layers and snapshots ---- */

/* Opens a new working layer on @parent and makes it HEAD, inside the open
 * transaction. */
static int new_head(struct wtg_store *st, int64_t parent, int64_t *id_ret)
{
	sqlite3_stmt *s;
	int r = store_prepare(
	    st, "INSERT INTO layers(parent, created, sealed) VALUES(?1, ?2, NULL)", &s);

	if (r)
		return r;
	sqlite3_bind_int64(s, 1, parent);
	sqlite3_bind_int64(s, 2, store_now());
	r = store_run(st, s);
	sqlite3_finalize(s);
	if (r)
		return r;
	*id_ret = sqlite3_last_insert_rowid(st->db);
	return store_put_meta(st, "head", SQLITE_INTEGER, *id_ret, NULL, 0);
}

/* Runs @fn in its own transaction after committing the open batch. */
int store_transaction(struct wtg_store *st, int (*fn)(struct wtg_store *, const void *, int64_t *),
		      const void *arg)
{
	int64_t new_top;
	int r;

	if (st->read_only)
		return -EROFS;
	r = store_commit_locked(st, true);
	if (!r)
		r = store_writable(st);
	if (r)
		return r;
	r = fn(st, arg, &new_top);
	if (r) {
		if (st->in_batch)
			sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		st->in_batch = false;
		return r;
	}
	r = store_commit_locked(st, true);
	if (!r)
		r = store_load_stack(st, new_top);
	return r;
}

struct snap_args {
	const char *name, *message;
};

static int snapshot_fn(struct wtg_store *st, const void *arg, int64_t *top_ret)
{
	const struct snap_args *a = arg;
	sqlite3_stmt *s;
	int r = store_prepare(st,
			      "INSERT INTO snapshots(name, layer, message, created)"
			      " VALUES(?1, ?2, ?3, ?4)",
			      &s);

	if (r)
		return r;
	sqlite3_bind_text(s, 1, a->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, store_top(st));
	if (a->message)
		sqlite3_bind_text(s, 3, a->message, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, store_now());
	r = store_run(st, s);
	sqlite3_finalize(s);
	if (r == -EEXIST) {
		wtg_error("'%s': there is a snapshot '%s' already (choose another name)", st->path,
			  a->name);
		return r;
	}
	if (r)
		return r;
	r = store_prepare(st, "UPDATE layers SET sealed = ?1 WHERE id = ?2", &s);
	if (r)
		return r;
	sqlite3_bind_int64(s, 1, store_now());
	sqlite3_bind_int64(s, 2, store_top(st));
	r = store_run(st, s);
	sqlite3_finalize(s);
	return r ? r : new_head(st, store_top(st), top_ret);
}

int wtg_store_snapshot(struct wtg_store *st, const char *name, const char *message)
{
	struct snap_args a = {name, message};

	if (!name || !*name)
		return -EINVAL;
	pthread_mutex_lock(&st->lock);
	int r = store_transaction(st, snapshot_fn, &a);
	pthread_mutex_unlock(&st->lock);
	return r;
}

static int rollback_fn(struct wtg_store *st, const void *arg, int64_t *top_ret)
{
	int64_t layer;
	int r = store_layer_of_snapshot(st, arg, &layer);
	return r ? r : new_head(st, layer, top_ret);
}

int wtg_store_rollback(struct wtg_store *st, const char *name)
{
	pthread_mutex_lock(&st->lock);
	int r = store_transaction(st, rollback_fn, name);
	pthread_mutex_unlock(&st->lock);
	return r;
}

void wtg_store_layers_free(struct wtg_store_layer *layers, size_t count)
{
	for (size_t i = 0; layers && i < count; i++) {
		free(layers[i].snapshot);
		free(layers[i].message);
	}
	free(layers);
}

static int describe_layer(struct wtg_store *st, sqlite3_stmt *s, struct wtg_store_layer *l)
{
	int r;

	sqlite3_reset(s);
	sqlite3_bind_int64(s, 1, l->id);
	r = store_step(st, s);
	if (r <= 0)
		return r ? r : store_damaged(st, "a layer of the stack is missing");
	l->parent = sqlite3_column_int64(s, 0);
	l->created = sqlite3_column_int64(s, 1);
	l->sealed = sqlite3_column_int64(s, 2);
	l->inodes = (uint64_t)sqlite3_column_int64(s, 3);
	l->names = (uint64_t)sqlite3_column_int64(s, 4);
	l->extents = (uint64_t)sqlite3_column_int64(s, 5);
	l->chunk_bytes = (uint64_t)sqlite3_column_int64(s, 6);
	if (sqlite3_column_type(s, 7) != SQLITE_NULL &&
	    !(l->snapshot = strdup((const char *)sqlite3_column_text(s, 7))))
		return -ENOMEM;
	if (sqlite3_column_type(s, 8) != SQLITE_NULL &&
	    !(l->message = strdup((const char *)sqlite3_column_text(s, 8))))
		return -ENOMEM;
	return 0;
}

int wtg_store_list_layers(struct wtg_store *st, struct wtg_store_layer **layers_ret,
			  size_t *count_ret)
{
	struct wtg_store_layer *l;
	sqlite3_stmt *s = NULL;
	int64_t head = 0;
	int r;

	pthread_mutex_lock(&st->lock);
	l = calloc(st->nstack, sizeof(*l));
	r = l ? 0 : -ENOMEM;
	if (!r)
		r = store_int_query(st, "SELECT value FROM meta WHERE key = 'head'", 0, &head);
	if (!r)
		r = store_prepare(
		    st,
		    "SELECT coalesce(parent, 0), created, coalesce(sealed, 0),"
		    " (SELECT count(*) FROM inodes WHERE layer = ?1),"
		    " (SELECT count(*) FROM names WHERE layer = ?1),"
		    " (SELECT count(*) FROM extents WHERE layer = ?1),"
		    " (SELECT coalesce(sum(length(data)), 0) FROM chunks WHERE hash IN"
		    "  (SELECT chunk FROM extents WHERE layer = ?1)),"
		    " (SELECT name FROM snapshots WHERE layer = ?1),"
		    " (SELECT message FROM snapshots WHERE layer = ?1)"
		    " FROM layers WHERE id = ?1",
		    &s);
	for (size_t i = 0; !r && i < st->nstack; i++) {
		l[i].id = st->stack[i];
		l[i].head = l[i].id == head;
		r = describe_layer(st, s, &l[i]);
	}
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->lock);
	if (r) {
		wtg_store_layers_free(l, st->nstack);
		return r;
	}
	*layers_ret = l;
	*count_ret = st->nstack;
	return 0;
}
