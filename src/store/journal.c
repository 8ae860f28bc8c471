/*
 * The journal of small fsynced writes not yet folded into their slot's
 * chunk (see wtgfs/store.h).  Since format 6 its rows are keyed by their
 * sequence number alone (the table's rowid): a row goes at the right edge
 * of the b-tree, into the page the last one went to, instead of into the
 * page of its slot somewhere in the middle (a page split every few rows,
 * parents rewritten, cells moved with their overflow pages' pointer-map
 * entries: 7.2 pages written per fsync of a 4 KiB write, now about 4).
 * What finds a slot's rows is a map in memory, kept by the writer: filled
 * from the table at its first use, changed with each statement, and
 * thrown away (to be read again) whenever a batch is rolled back, so that
 * it never names a row the file lacks or misses one the file holds.
 *
 * A row may carry the inode's mtime and ctime as they were when it was
 * put: a write that changed nothing else of the inode then costs no
 * rewrite of its record.  The newest such row of an inode gives its times
 * at replay; recording the inode (wtg_store_set_inode) clears the times of
 * its rows, which that record has made stale.
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

/* One row of a slot, in the map. */
struct jrow {
	int64_t seq;
	bool timed; /* carries the inode's times */
};

/* The working layer's rows of one slot, in the order they were put. */
struct jslot {
	uint64_t ino;
	char *stream;
	uint64_t idx;
	struct jrow *rows;
	uint32_t n, cap;
	struct jslot *next; /* in its bucket */
};

static size_t jbucket(const struct wtg_store *st, uint64_t ino, const char *stream, uint64_t idx)
{
	uint64_t h = ino * 0x9E3779B97F4A7C15ull ^ idx * 0xC2B2AE3D27D4EB4Full;
	for (const char *p = stream; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001B3ull;
	return (size_t)(h ^ (h >> 29)) & (st->jbuckets - 1);
}

static void jslot_free(struct jslot *js)
{
	free(js->stream);
	free(js->rows);
	free(js);
}

void store_journal_forget(struct wtg_store *st)
{
	for (size_t b = 0; b < st->jbuckets; b++)
		for (struct jslot *js = st->jslots[b], *n; js; js = n) {
			n = js->next;
			jslot_free(js);
		}
	free(st->jslots);
	st->jslots = NULL;
	st->jbuckets = st->njslots = 0;
	st->jtimed = 0;
	st->jloaded = false;
}

static struct jslot *jslot_find(const struct wtg_store *st, uint64_t ino, const char *stream,
				uint64_t idx)
{
	if (!st->jbuckets)
		return NULL;
	for (struct jslot *js = st->jslots[jbucket(st, ino, stream, idx)]; js; js = js->next)
		if (js->ino == ino && js->idx == idx && !strcmp(js->stream, stream))
			return js;
	return NULL;
}

static int jgrow(struct wtg_store *st)
{
	size_t nb = st->jbuckets ? st->jbuckets * 2 : 64;
	struct jslot **b = calloc(nb, sizeof(*b));

	if (!b)
		return -ENOMEM;
	struct jslot **old = st->jslots;
	size_t oldn = st->jbuckets;
	st->jslots = b;
	st->jbuckets = nb;
	for (size_t i = 0; i < oldn; i++)
		for (struct jslot *js = old[i], *n; js; js = n) {
			n = js->next;
			size_t h = jbucket(st, js->ino, js->stream, js->idx);
			js->next = b[h];
			b[h] = js;
		}
	free(old);
	return 0;
}

/* Notes row @seq of the slot in the map. */
static int jnote(struct wtg_store *st, uint64_t ino, const char *stream, uint64_t idx,
		 int64_t seq, bool timed)
{
	struct jslot *js = jslot_find(st, ino, stream, idx);

	if (!js) {
		if (st->njslots >= st->jbuckets && jgrow(st))
			return -ENOMEM;
		js = calloc(1, sizeof(*js));
		if (!js || !(js->stream = strdup(stream))) {
			free(js);
			return -ENOMEM;
		}
		js->ino = ino;
		js->idx = idx;
		size_t h = jbucket(st, ino, stream, idx);
		js->next = st->jslots[h];
		st->jslots[h] = js;
		st->njslots++;
	}
	if (js->n == js->cap) {
		uint32_t nc = js->cap ? js->cap * 2 : 4;
		struct jrow *p = realloc(js->rows, nc * sizeof(*p));
		if (!p)
			return -ENOMEM;
		js->rows = p;
		js->cap = nc;
	}
	js->rows[js->n++] = (struct jrow){seq, timed};
	st->jtimed += timed;
	return 0;
}

/* Fills the map from the table, once per connection state. */
static int jload(struct wtg_store *st)
{
	sqlite3_stmt *s;

	if (st->jloaded)
		return 0;
	store_journal_forget(st);
	int r = store_prepare(st,
			      "SELECT seq, ino, stream, idx, mtime IS NOT NULL FROM journal"
			      " WHERE layer = ?1 ORDER BY seq",
			      &s);
	if (r)
		return r;
	sqlite3_bind_int64(s, 1, store_top(st));
	while ((r = store_step(st, s)) == 1) {
		const char *stream = (const char *)sqlite3_column_text(s, 2);
		r = jnote(st, (uint64_t)sqlite3_column_int64(s, 1), stream ? stream : "",
			  (uint64_t)sqlite3_column_int64(s, 3), sqlite3_column_int64(s, 0),
			  sqlite3_column_int(s, 4));
		if (r)
			break;
	}
	sqlite3_finalize(s);
	if (r < 0) {
		store_journal_forget(st);
		return r;
	}
	st->jloaded = true;
	return 0;
}

/* Deletes the rows of the slot @js (in the map) from the table and the map. */
static int jdelete(struct wtg_store *st, struct jslot *js)
{
	sqlite3_stmt *s;
	int r = store_query(st, Q_JOURNAL_DEL, &s);

	for (uint32_t i = 0; !r && i < js->n; i++) {
		sqlite3_bind_int64(s, 1, js->rows[i].seq);
		r = store_run(st, s);
	}
	if (r)
		return r;
	struct jslot **p = &st->jslots[jbucket(st, js->ino, js->stream, js->idx)];
	while (*p != js)
		p = &(*p)->next;
	*p = js->next;
	st->njslots--;
	for (uint32_t i = 0; i < js->n; i++)
		st->jtimed -= js->rows[i].timed;
	jslot_free(js);
	return 0;
}

/* Deletes the rows of every slot @match picks. */
static int jdelete_where(struct wtg_store *st, bool (*match)(const struct jslot *, const void *),
			 const void *arg)
{
	int r = jload(st);

	for (size_t b = 0; !r && b < st->jbuckets; b++)
		for (struct jslot *js = st->jslots[b], *n; !r && js; js = n) {
			n = js->next;
			if (match(js, arg))
				r = jdelete(st, js);
		}
	return r;
}

int wtg_store_journal_put(struct wtg_store *st, uint64_t ino, const char *stream,
			  uint64_t index, uint32_t off, const void *data, uint32_t len,
			  const int64_t *times)
{
	sqlite3_stmt *s;

	if (index > INT64_MAX || ino > INT64_MAX || off > WTG_STORE_CHUNK_SIZE ||
	    len > WTG_STORE_CHUNK_SIZE - off)
		return -EINVAL;
	pthread_mutex_lock(&st->lock);
	int r = store_writable(st);
	if (!r)
		r = jload(st);
	if (!r)
		r = store_query(st, Q_JOURNAL_PUT, &s);
	if (!r) {
		sqlite3_bind_int64(s, 1, store_top(st));
		sqlite3_bind_int64(s, 2, (int64_t)ino);
		sqlite3_bind_text(s, 3, stream, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 4, (int64_t)index);
		sqlite3_bind_int64(s, 5, off);
		if (times) {
			sqlite3_bind_int64(s, 6, times[0]);
			sqlite3_bind_int64(s, 7, times[1]);
		}
		sqlite3_bind_blob(s, 8, data, (int)len, SQLITE_STATIC);
		r = store_run(st, s);
	}
	if (!r && (r = jnote(st, ino, stream, index, sqlite3_last_insert_rowid(st->db),
			    times != NULL))) {
		/* a row the map does not know of: the batch cannot go on */
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		st->in_batch = false;
		if (!st->batch_lost)
			st->batch_lost = r;
		store_journal_forget(st);
	}
	r = store_write_failed(st, r);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int wtg_store_journal_drop(struct wtg_store *st, uint64_t ino, const char *stream,
			   uint64_t index)
{
	pthread_mutex_lock(&st->lock);
	int r = store_writable(st);
	if (!r)
		r = jload(st);
	struct jslot *js = r ? NULL : jslot_find(st, ino, stream, index);
	if (js)
		r = jdelete(st, js);
	r = store_write_failed(st, r);
	pthread_mutex_unlock(&st->lock);
	return r;
}

struct cut_arg {
	uint64_t ino;
	const char *stream; /* NULL: every stream */
	uint64_t from;
};

static bool cut_match(const struct jslot *js, const void *arg)
{
	const struct cut_arg *a = arg;
	return js->ino == a->ino && (!a->stream || !strcmp(js->stream, a->stream)) &&
	       js->idx >= a->from;
}

int store_journal_cut(struct wtg_store *st, uint64_t ino, const char *stream, uint64_t from)
{
	struct cut_arg a = {ino, stream, from};
	return jdelete_where(st, cut_match, &a);
}

int store_journal_untime(struct wtg_store *st, uint64_t ino)
{
	sqlite3_stmt *s = NULL;
	int r = jload(st);

	for (size_t b = 0; !r && st->jtimed && b < st->jbuckets; b++)
		for (struct jslot *js = st->jslots[b]; !r && js; js = js->next) {
			if (js->ino != ino)
				continue;
			for (uint32_t i = 0; !r && i < js->n; i++) {
				if (!js->rows[i].timed)
					continue;
				if (!s && (r = store_query(st, Q_JOURNAL_UNTIME, &s)))
					break;
				sqlite3_bind_int64(s, 1, js->rows[i].seq);
				r = store_run(st, s);
				if (!r) {
					js->rows[i].timed = false;
					st->jtimed--;
				}
			}
		}
	return r;
}

int wtg_store_journal_clear(struct wtg_store *st)
{
	sqlite3_stmt *s;

	pthread_mutex_lock(&st->lock);
	int r = store_writable(st);
	if (!r)
		r = store_prepare(st, "DELETE FROM journal WHERE layer = ?1", &s);
	if (!r) {
		sqlite3_bind_int64(s, 1, store_top(st));
		r = store_run(st, s);
		sqlite3_finalize(s);
	}
	if (!r) { /* empty now, as the map */
		store_journal_forget(st);
		st->jloaded = true;
	}
	r = store_write_failed(st, r);
	pthread_mutex_unlock(&st->lock);
	return r;
}

void wtg_store_journal_free(struct wtg_store_journal_row *rows, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(rows[i].stream);
		free(rows[i].data);
	}
	free(rows);
}

int wtg_store_journal_read(struct wtg_store *st, struct wtg_store_journal_row **rows_ret,
			   size_t *count_ret)
{
	struct wtg_store_journal_row *rows = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *s;

	*rows_ret = NULL;
	*count_ret = 0;
	pthread_mutex_lock(&st->lock);
	int r = store_prepare(st,
			      "SELECT ino, stream, idx, off, data, seq, mtime, ctime FROM journal"
			      " WHERE layer = ?1 ORDER BY ino, stream, idx, seq",
			      &s);
	if (r)
		goto out;
	sqlite3_bind_int64(s, 1, store_top(st));
	while ((r = store_step(st, s)) == 1) {
		int64_t ino = sqlite3_column_int64(s, 0), idx = sqlite3_column_int64(s, 2);
		int64_t off = sqlite3_column_int64(s, 3);
		const char *stream = (const char *)sqlite3_column_text(s, 1);
		int len = sqlite3_column_bytes(s, 4);
		const void *data = sqlite3_column_blob(s, 4);
		if (ino < 0 || idx < 0 || !stream || off < 0 || off > WTG_STORE_CHUNK_SIZE ||
		    len > WTG_STORE_CHUNK_SIZE - off) {
			r = store_damaged(st, "a journal row does not fit its chunk slot");
			break;
		}
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct wtg_store_journal_row *p = realloc(rows, nc * sizeof(*p));
			if (!p) {
				r = -ENOMEM;
				break;
			}
			rows = p;
			cap = nc;
		}
		struct wtg_store_journal_row *row = &rows[n];
		bool timed = sqlite3_column_type(s, 6) != SQLITE_NULL &&
			     sqlite3_column_type(s, 7) != SQLITE_NULL;
		*row = (struct wtg_store_journal_row){.ino = (uint64_t)ino, .index = (uint64_t)idx,
						      .off = (uint32_t)off, .len = (uint32_t)len,
						      .seq = sqlite3_column_int64(s, 5),
						      .timed = timed,
						      .mtime = timed ? sqlite3_column_int64(s, 6) : 0,
						      .ctime = timed ? sqlite3_column_int64(s, 7) : 0};
		row->stream = strdup(stream);
		row->data = malloc(len ? (size_t)len : 1);
		if (!row->stream || !row->data) {
			free(row->stream);
			free(row->data);
			r = -ENOMEM;
			break;
		}
		if (len)
			memcpy(row->data, data, (size_t)len);
		n++;
	}
	sqlite3_finalize(s);
out:
	pthread_mutex_unlock(&st->lock);
	if (r < 0) {
		wtg_store_journal_free(rows, n);
		return r;
	}
	*rows_ret = rows;
	*count_ret = n;
	return 0;
}

int wtg_store_journal_count(struct wtg_store *st, uint64_t *count_ret)
{
	int64_t n = 0;

	pthread_mutex_lock(&st->lock);
	int r = store_int_query(st, "SELECT count(*) FROM journal", 0, &n);
	pthread_mutex_unlock(&st->lock);
	*count_ret = (uint64_t)n;
	return r;
}

int store_journal_empty(struct wtg_store *st, const char *what)
{
	int64_t any;
	int r = store_int_query(st, "SELECT EXISTS (SELECT 1 FROM journal)", 0, &any);

	if (r || !any)
		return r;
	wtg_error("cannot %s '%s': it holds writes fsynced before a crash that are not folded in "
		  "yet (mount it read-write once and unmount it)",
		  what, st->path);
	return -EBUSY;
}
