/*
 * Layers and snapshots: a snapshot seals the working layer and opens a new
 * one in one durable transaction; a rollback keeps the working layer under a
 * name of its own (so that it can come back) and opens a new one on the
 * snapshot; squash merges a run of layers into one; the keys a set of layers
 * is about (what a rollback must show anew); the list of layers for 'wtgfs
 * log'.
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
	if (!r) /* rows of the working layer would end up in another */
		r = store_journal_empty(st, "change the layers of");
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
	store_journal_forget(st); /* the working layer may be another */
	return r;
}


/* Names: printable, no '/', not a word the commands give a meaning. */
bool wtg_store_name_ok(const char *name)
{
	size_t len = name ? strlen(name) : 0;

	if (len == 0 || len > 255 || name[0] == '-' || strstr(name, "..") ||
	    !strcmp(name, "base") || !strcmp(name, "HEAD"))
		return false;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p < 0x20 || *p == 0x7f || *p == '/')
			return false;
	return true;
}

const char *wtg_store_name_shown(const char *name, char out[WTG_STORE_NAME_SHOWN])
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)(name ? name : ""); *p && n < 255; p++)
		out[n++] = *p < 0x20 || *p == 0x7f ? '?' : (char)*p;
	strcpy(out + n, name && strlen(name) > n ? "..." : "");
	return out;
}

static int bad_name(struct wtg_store *st, const char *name)
{
	char shown[WTG_STORE_NAME_SHOWN];
	wtg_error("'%s': '%s' cannot name a snapshot (" WTG_STORE_NAME_RULE ")", st->path,
		  wtg_store_name_shown(name, shown));
	return -EINVAL;
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

	if (!wtg_store_name_ok(name))
		return bad_name(st, name);
	pthread_mutex_lock(&st->lock);
	int r = store_transaction(st, snapshot_fn, &a);
	pthread_mutex_unlock(&st->lock);
	return r;
}

/* Whether layer @id holds any record. */
static int layer_empty(struct wtg_store *st, int64_t id, bool *empty)
{
	int64_t any = 0;
	int r = store_int_query(st,
				"SELECT EXISTS(SELECT 1 FROM inodes WHERE layer = ?1) OR"
				" EXISTS(SELECT 1 FROM names WHERE layer = ?1) OR"
				" EXISTS(SELECT 1 FROM streams WHERE layer = ?1) OR"
				" EXISTS(SELECT 1 FROM extents WHERE layer = ?1)",
				id, &any);
	*empty = !any;
	return r;
}

static int run_int2(struct wtg_store *st, const char *sql, int64_t a, int64_t b)
{
	sqlite3_stmt *s;
	int r = store_prepare(st, sql, &s);

	if (r)
		return r;
	sqlite3_bind_int64(s, 1, a);
	sqlite3_bind_int64(s, 2, b);
	r = store_run(st, s);
	sqlite3_finalize(s);
	return r;
}

/* Seals HEAD as "abandoned-ID" (or a free variant), noting what it left. */
static int keep_head(struct wtg_store *st, const char *target, char **kept_ret)
{
	int64_t head = store_top(st), n = 1, taken = 1;
	char name[64], msg[320];
	int r = 0;

	snprintf(name, sizeof(name), "abandoned-%" PRId64, head);
	while (!r && taken) {
		sqlite3_stmt *s;
		r = store_prepare(st, "SELECT 1 FROM snapshots WHERE name = ?1", &s);
		if (r)
			return r;
		sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
		r = store_step(st, s);
		sqlite3_finalize(s);
		taken = r == 1;
		r = r < 0 ? r : 0;
		if (taken)
			snprintf(name, sizeof(name), "abandoned-%" PRId64 ".%" PRId64, head, ++n);
	}
	if (r)
		return r;
	snprintf(msg, sizeof(msg), "the working layer a rollback to '%.255s' left", target);
	sqlite3_stmt *s;
	r = store_prepare(st,
			  "INSERT INTO snapshots(name, layer, message, created, abandoned)"
			  " VALUES(?1, ?2, ?3, ?4, ?4)",
			  &s);
	if (r)
		return r;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, head);
	sqlite3_bind_text(s, 3, msg, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, store_now());
	r = store_run(st, s);
	sqlite3_finalize(s);
	if (!r)
		r = run_int2(st, "UPDATE layers SET sealed = ?1 WHERE id = ?2", store_now(), head);
	if (!r && kept_ret && !(*kept_ret = strdup(name)))
		r = -ENOMEM;
	return r;
}

struct rollback_args {
	const char *name;
	char **kept;
};

static int rollback_fn(struct wtg_store *st, const void *arg, int64_t *top_ret)
{
	const struct rollback_args *a = arg;
	int64_t layer, abandoned = 0, children = 0, head = store_top(st);
	bool empty;
	int r = store_layer_of_snapshot(st, a->name, &layer);

	if (!r)
		r = store_int_query(st, "SELECT coalesce(abandoned, 0) FROM snapshots WHERE layer = ?1",
				    layer, &abandoned);
	if (!r)
		r = store_int_query(st, "SELECT count(*) FROM layers WHERE parent = ?1", layer,
				    &children);
	if (!r)
		r = layer_empty(st, head, &empty);
	if (r)
		return r;
	if (empty)
		r = run_int2(st, "DELETE FROM layers WHERE id = ?1 AND ?2", head, 1);
	else
		r = keep_head(st, a->name, a->kept);
	if (r)
		return r;
	if (abandoned && !children) {
		/* back as it was: the layer takes writes again */
		r = run_int2(st, "DELETE FROM snapshots WHERE layer = ?1 AND ?2", layer, 1);
		if (!r)
			r = run_int2(st, "UPDATE layers SET sealed = NULL WHERE id = ?1 AND ?2", layer,
				     1);
		if (!r)
			r = store_put_meta(st, "head", SQLITE_INTEGER, layer, NULL, 0);
		*top_ret = layer;
		return r;
	}
	return new_head(st, layer, top_ret);
}

int wtg_store_rollback(struct wtg_store *st, const char *name, char **kept_ret)
{
	struct rollback_args a = {name, kept_ret};

	if (kept_ret)
		*kept_ret = NULL;
	pthread_mutex_lock(&st->lock);
	int r = store_transaction(st, rollback_fn, &a);
	pthread_mutex_unlock(&st->lock);
	if (r && kept_ret) {
		free(*kept_ret);
		*kept_ret = NULL;
	}
	return r;
}

int wtg_store_stack(struct wtg_store *st, int64_t **layers_ret, size_t *count_ret)
{
	pthread_mutex_lock(&st->lock);
	int64_t *l = malloc((st->nstack ? st->nstack : 1) * sizeof(*l));
	if (l) {
		memcpy(l, st->stack, st->nstack * sizeof(*l));
		*count_ret = st->nstack;
	}
	pthread_mutex_unlock(&st->lock);
	*layers_ret = l;
	return l ? 0 : -ENOMEM;
}

/* ---- the keys of a set of layers ---- */

struct key {
	uint64_t ino;
	char *name;
};

int wtg_store_each_key(struct wtg_store *st, const int64_t *layers, size_t nlayers,
		       enum wtg_store_key_table table, wtg_store_key_fn fn, void *arg)
{
	static const char *const sql[] = {
	    [WTG_STORE_KEY_INODES] = "SELECT DISTINCT ino, NULL FROM inodes WHERE layer IN (%s)",
	    [WTG_STORE_KEY_NAMES] = "SELECT DISTINCT dir, name FROM names WHERE layer IN (%s)",
	    [WTG_STORE_KEY_STREAMS] = "SELECT DISTINCT ino, name FROM streams WHERE layer IN (%s)",
	    [WTG_STORE_KEY_EXTENTS] = "SELECT DISTINCT ino, stream FROM extents WHERE layer IN (%s)",
	};
	struct key *keys = NULL;
	size_t nkeys = 0, cap = 0;
	sqlite3_stmt *s = NULL;
	int r = 0;

	if (!nlayers)
		return 0;
	size_t size = nlayers * 22 + 1;
	char *list = malloc(size), *q = NULL;
	if (!list)
		return -ENOMEM;
	size_t used = 0;
	for (size_t i = 0; i < nlayers; i++)
		used += (size_t)snprintf(list + used, size - used, "%s%" PRId64, i ? "," : "",
					 layers[i]);
	if (asprintf(&q, sql[table], list) < 0) {
		free(list);
		return -ENOMEM;
	}
	free(list);
	pthread_mutex_lock(&st->lock);
	r = store_prepare(st, q, &s);
	while (!r && (r = store_step(st, s)) == 1) {
		r = 0;
		if (nkeys == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			struct key *k = realloc(keys, ncap * sizeof(*k));
			if (!k) {
				r = -ENOMEM;
				break;
			}
			keys = k;
			cap = ncap;
		}
		const char *name = (const char *)sqlite3_column_text(s, 1);
		keys[nkeys].ino = (uint64_t)sqlite3_column_int64(s, 0);
		keys[nkeys].name = NULL;
		if (name && !(keys[nkeys].name = strdup(name))) {
			r = -ENOMEM;
			break;
		}
		nkeys++;
	}
	if (s)
		sqlite3_finalize(s);
	pthread_mutex_unlock(&st->lock);
	free(q);
	for (size_t i = 0; !r && i < nkeys; i++)
		r = fn(arg, keys[i].ino,
		       keys[i].name ? keys[i].name : (table == WTG_STORE_KEY_INODES ? NULL : ""));
	for (size_t i = 0; i < nkeys; i++)
		free(keys[i].name);
	free(keys);
	return r;
}

/* ---- the list of layers ---- */

void wtg_store_layers_free(struct wtg_store_layer *layers, size_t count)
{
	for (size_t i = 0; layers && i < count; i++) {
		free(layers[i].snapshot);
		free(layers[i].message);
	}
	free(layers);
}

static int describe_layer(sqlite3_stmt *s, struct wtg_store_layer *l)
{
	l->id = sqlite3_column_int64(s, 0);
	l->parent = sqlite3_column_int64(s, 1);
	l->created = sqlite3_column_int64(s, 2);
	l->sealed = sqlite3_column_int64(s, 3);
	l->inodes = (uint64_t)sqlite3_column_int64(s, 4);
	l->names = (uint64_t)sqlite3_column_int64(s, 5);
	l->extents = (uint64_t)sqlite3_column_int64(s, 6);
	l->files = (uint64_t)sqlite3_column_int64(s, 7);
	l->chunk_bytes = (uint64_t)sqlite3_column_int64(s, 8);
	if (sqlite3_column_type(s, 9) != SQLITE_NULL &&
	    !(l->snapshot = strdup((const char *)sqlite3_column_text(s, 9))))
		return -ENOMEM;
	if (sqlite3_column_type(s, 10) != SQLITE_NULL &&
	    !(l->message = strdup((const char *)sqlite3_column_text(s, 10))))
		return -ENOMEM;
	l->abandoned = sqlite3_column_int64(s, 11);
	return 0;
}

int wtg_store_list_layers(struct wtg_store *st, struct wtg_store_layer **layers_ret,
			  size_t *count_ret)
{
	struct wtg_store_layer *l = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *s = NULL;
	int64_t head = 0;
	int r;

	pthread_mutex_lock(&st->lock);
	r = store_int_query(st, "SELECT value FROM meta WHERE key = 'head'", 0, &head);
	if (!r)
		r = store_prepare(
		    st,
		    "SELECT l.id, coalesce(l.parent, 0), l.created, coalesce(l.sealed, 0),"
		    " (SELECT count(*) FROM inodes WHERE layer = l.id),"
		    " (SELECT count(*) FROM names WHERE layer = l.id),"
		    " (SELECT count(*) FROM extents WHERE layer = l.id),"
		    " (SELECT count(*) FROM (SELECT ino FROM inodes WHERE layer = l.id"
		    "  UNION SELECT ino FROM streams WHERE layer = l.id"
		    "  UNION SELECT ino FROM extents WHERE layer = l.id"
		    "  UNION SELECT CASE WHEN ino != 0 THEN ino ELSE dir END FROM names"
		    "   WHERE layer = l.id)),"
		    " (SELECT coalesce(sum(length(data)), 0) FROM chunks WHERE hash IN"
		    "  (SELECT chunk FROM extents WHERE layer = l.id)),"
		    " s.name, s.message, coalesce(s.abandoned, 0)"
		    " FROM layers l LEFT JOIN snapshots s ON s.layer = l.id ORDER BY l.id",
		    &s);
	while (!r && (r = store_step(st, s)) == 1) {
		r = 0;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct wtg_store_layer *p = realloc(l, ncap * sizeof(*p));
			if (!p) {
				r = -ENOMEM;
				break;
			}
			l = p;
			cap = ncap;
		}
		memset(&l[n], 0, sizeof(l[n]));
		r = describe_layer(s, &l[n]);
		l[n].head = l[n].id == head;
		l[n].in_stack = store_in_stack(st, l[n].id);
		n++;
	}
	if (s)
		sqlite3_finalize(s);
	pthread_mutex_unlock(&st->lock);
	if (r) {
		wtg_store_layers_free(l, n);
		return r;
	}
	*layers_ret = l;
	*count_ret = n;
	return 0;
}

/* ---- squash ---- */

struct squash_args {
	const char *from, *to;
	uint64_t merged;
};

/* What names layer @id for a message: its snapshot, HEAD, or its number. */
static void layer_label(struct wtg_store *st, int64_t id, char *buf, size_t size)
{
	sqlite3_stmt *s;
	int64_t head = 0;

	snprintf(buf, size, "layer %" PRId64, id);
	if (!store_int_query(st, "SELECT value FROM meta WHERE key = 'head'", 0, &head) &&
	    head == id) {
		snprintf(buf, size, "HEAD");
		return;
	}
	if (store_prepare(st, "SELECT name FROM snapshots WHERE layer = ?1", &s))
		return;
	sqlite3_bind_int64(s, 1, id);
	if (store_step(st, s) == 1)
		snprintf(buf, size, "'%s'", (const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
}

static const char squash_sql[] =
    /* extents: the topmost of each slot, unless a stream row above it in
     * the range hides it (deleted, or cut below the slot) */
    "CREATE TEMP TABLE sq_chunks AS SELECT DISTINCT chunk FROM extents e"
    " WHERE e.layer IN sq AND length(e.chunk) > 0;"
    "DELETE FROM extents WHERE layer IN sq AND layer != ?1 AND ("
    " EXISTS (SELECT 1 FROM extents e2 WHERE e2.ino = extents.ino"
    "  AND e2.stream = extents.stream AND e2.idx = extents.idx AND e2.layer IN sq"
    "  AND e2.layer > extents.layer) OR"
    " EXISTS (SELECT 1 FROM streams s WHERE s.ino = extents.ino AND s.name = extents.stream"
    "  AND s.layer IN sq AND s.layer > extents.layer"
    "  AND (s.deleted OR (s.keep IS NOT NULL AND extents.idx >= s.keep))));"
    /* streams: the topmost row, cutting what lies below as the lowest cut
     * of the range did */
    "UPDATE streams SET keep = (SELECT CASE WHEN min(CASE WHEN s2.deleted THEN 0"
    "  ELSE coalesce(s2.keep, 9223372036854775807) END) = 9223372036854775807 THEN NULL"
    "  ELSE min(CASE WHEN s2.deleted THEN 0 ELSE coalesce(s2.keep, 9223372036854775807) END)"
    "  END FROM streams s2 WHERE s2.ino = streams.ino AND s2.name = streams.name"
    "  AND s2.layer IN sq)"
    " WHERE layer IN sq AND NOT EXISTS (SELECT 1 FROM streams s3 WHERE s3.ino = streams.ino"
    "  AND s3.name = streams.name AND s3.layer IN sq AND s3.layer > streams.layer);"
    "DELETE FROM streams WHERE layer IN sq AND EXISTS (SELECT 1 FROM streams s3"
    " WHERE s3.ino = streams.ino AND s3.name = streams.name AND s3.layer IN sq"
    " AND s3.layer > streams.layer);"
    "DELETE FROM inodes WHERE layer IN sq AND EXISTS (SELECT 1 FROM inodes i2"
    " WHERE i2.ino = inodes.ino AND i2.layer IN sq AND i2.layer > inodes.layer);"
    "DELETE FROM names WHERE layer IN sq AND EXISTS (SELECT 1 FROM names n2"
    " WHERE n2.dir = names.dir AND n2.name = names.name AND n2.layer IN sq"
    " AND n2.layer > names.layer);"
    "UPDATE extents SET layer = ?1 WHERE layer IN sq AND layer != ?1;"
    "UPDATE streams SET layer = ?1 WHERE layer IN sq AND layer != ?1;"
    "UPDATE inodes SET layer = ?1 WHERE layer IN sq AND layer != ?1;"
    "UPDATE names SET layer = ?1 WHERE layer IN sq AND layer != ?1;"
    /* (a sum is right in any layer: kept with the layer that stays) */
    "UPDATE stream_sums SET layer = ?1 WHERE layer IN sq AND layer != ?1;"
    /* what a deleted inode had below is nobody's now */
    "DELETE FROM extents WHERE layer = ?1 AND ino IN"
    " (SELECT ino FROM inodes WHERE layer = ?1 AND deleted);"
    "DELETE FROM streams WHERE layer = ?1 AND ino IN"
    " (SELECT ino FROM inodes WHERE layer = ?1 AND deleted);"
    "UPDATE layers SET parent = nullif(?2, 0), created = (SELECT min(created) FROM layers WHERE id IN sq)"
    " WHERE id = ?1;"
    "DELETE FROM snapshots WHERE layer IN sq AND layer != ?1;"
    "DELETE FROM layers WHERE id IN sq AND id != ?1;"
    "DELETE FROM chunks WHERE hash IN (SELECT chunk FROM sq_chunks) AND NOT EXISTS"
    " (SELECT 1 FROM extents WHERE extents.chunk = chunks.hash);"
    "DROP TABLE sq_chunks;";

/* Runs the statements of @sql in turn, ?1 = @a and ?2 = @b in each. */
static int run_script(struct wtg_store *st, const char *sql, int64_t a, int64_t b)
{
	const char *tail = sql;
	int r = 0;

	while (!r && tail && *tail) {
		sqlite3_stmt *s = NULL;
		int rc = sqlite3_prepare_v2(st->db, tail, -1, &s, &tail);
		if (rc != SQLITE_OK)
			return store_sql_error(st, rc);
		if (!s)
			break;
		if (sqlite3_bind_parameter_count(s) >= 1)
			sqlite3_bind_int64(s, 1, a);
		if (sqlite3_bind_parameter_count(s) >= 2)
			sqlite3_bind_int64(s, 2, b);
		r = store_run(st, s);
		sqlite3_finalize(s);
	}
	return r;
}

static int squash_fn(struct wtg_store *st, const void *arg, int64_t *top_ret)
{
	struct squash_args *a = (struct squash_args *)arg;
	int64_t from = 0, to, head = store_top(st), bottom_parent = 0;
	int64_t *range = NULL;
	size_t n = 0;
	char label[300];
	int r = 0;

	*top_ret = head;
	if (!strcmp(a->to, "HEAD"))
		to = head;
	else if ((r = store_layer_of_snapshot(st, a->to, &to)))
		return r;
	if (strcmp(a->from, "base") && (r = store_layer_of_snapshot(st, a->from, &from)))
		return r;
	/* the range: from @to down to the layer just above @from */
	for (int64_t l = to; l != from;) {
		if (l == 0) {
			wtg_error("'%s': '%s' is not below '%s' (see 'wtgfs log --all')", st->path,
				  a->from, a->to);
			free(range);
			return -EINVAL;
		}
		int64_t *p = realloc(range, (n + 1) * sizeof(*p));
		if (!p) {
			free(range);
			return -ENOMEM;
		}
		range = p;
		range[n++] = l;
		if ((r = store_int_query(st, "SELECT coalesce(parent, 0) FROM layers WHERE id = ?1",
					 l, &l))) {
			free(range);
			return r;
		}
		bottom_parent = l;
	}
	if (n < 2) {
		free(range);
		return 0; /* one layer: nothing to merge */
	}
	r = store_exec(st, "CREATE TEMP TABLE sq(id INTEGER PRIMARY KEY)");
	for (size_t i = 0; !r && i < n; i++)
		r = run_int2(st, "INSERT INTO sq(id) VALUES(?1 + 0 * ?2)", range[i], 0);
	/* a branch growing from inside the range would lose its ground */
	for (size_t i = 1; !r && i < n; i++) {
		int64_t other = 0;
		r = store_int_query(st,
				    "SELECT coalesce(max(id), 0) FROM layers WHERE parent = ?1"
				    " AND id NOT IN sq",
				    range[i], &other);
		if (!r && other) {
			char at[300];
			layer_label(st, other, label, sizeof(label));
			layer_label(st, range[i], at, sizeof(at));
			wtg_error("'%s': cannot squash %s..%s: %s grows from %s inside the range "
				  "(squash a smaller range, or gc what a rollback left)",
				  st->path, a->from, a->to, label, at);
			r = -EBUSY;
		}
	}
	if (!r)
		r = run_script(st, squash_sql, to, bottom_parent);
	if (!r)
		r = store_exec(st, "DROP TABLE sq");
	if (!r)
		a->merged = n - 1;
	free(range);
	return r;
}

int wtg_store_squash(struct wtg_store *st, const char *from, const char *to, uint64_t *merged_ret)
{
	struct squash_args a = {from, to, 0};

	pthread_mutex_lock(&st->lock);
	int r = store_views_lock(st, true, "squash");
	if (!r) {
		r = store_transaction(st, squash_fn, &a);
		store_views_unlock(st);
	}
	pthread_mutex_unlock(&st->lock);
	if (merged_ret)
		*merged_ret = a.merged;
	return r;
}
