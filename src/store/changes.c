/*
 * What changed between two versions, for diff: a version is a layer stack
 * (a snapshot, HEAD, or the base alone); the keys that can differ between
 * two versions are the keys recorded by the layers on the path from one to
 * their common ancestor and on to the other, which the per-layer indexes of
 * every table hand out without touching any other record.  Each such key is
 * then resolved in both versions through the lookups of records.c and
 * data.c, given the version's stack instead of the open one.
 */
#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "wtgfs/hash.h"
#include "wtgfs/log.h"

#include "store_int.h"

static struct store_stack stack_of_version(const struct wtg_store_version *v)
{
	return (struct store_stack){v->stack, v->nstack};
}

void wtg_store_version_release(struct wtg_store_version *v)
{
	free(v->stack);
	memset(v, 0, sizeof(*v));
}

/* The stack from @layer down to the first layer (ids fall along ancestry). */
static int version_of_layer(struct wtg_store *st, int64_t layer, struct wtg_store_version *v)
{
	memset(v, 0, sizeof(*v));
	v->layer = layer;
	return store_read_stack(st, layer, &v->stack, &v->nstack);
}

int wtg_store_version_of_layer(struct wtg_store *st, int64_t layer, struct wtg_store_version *v)
{
	pthread_mutex_lock(&st->lock);
	int r = version_of_layer(st, layer, v);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int wtg_store_version_open(struct wtg_store *st, const char *name, struct wtg_store_version *v)
{
	int64_t layer = 0;
	int r = 0;

	memset(v, 0, sizeof(*v));
	pthread_mutex_lock(&st->lock);
	if (!strcmp(name, "HEAD"))
		layer = store_top(st);
	else if (strcmp(name, "base"))
		r = store_layer_of_snapshot(st, name, &layer);
	if (!r)
		r = version_of_layer(st, layer, v);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int wtg_store_last_snapshot(struct wtg_store *st, char **name_ret)
{
	sqlite3_stmt *s = NULL;
	char *name = NULL;

	pthread_mutex_lock(&st->lock);
	int r = store_prepare(st, "SELECT name FROM snapshots WHERE layer = ?1", &s);
	for (size_t i = 0; !r && !name && i < st->nstack; i++) {
		sqlite3_reset(s);
		sqlite3_bind_int64(s, 1, st->stack[i]);
		r = store_step(st, s);
		if (r == 1 && !(name = strdup((const char *)sqlite3_column_text(s, 0))))
			r = -ENOMEM;
		if (r > 0)
			r = 0;
	}
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->lock);
	if (!r && !name && !(name = strdup("base")))
		r = -ENOMEM;
	*name_ret = name;
	return r;
}

/* ---- one consistent read ---- */

int wtg_store_read_begin(struct wtg_store *st)
{
	if (!st->read_only)
		return -EINVAL;
	pthread_mutex_lock(&st->lock);
	int r = store_exec(st, "BEGIN");
	pthread_mutex_unlock(&st->lock);
	return r;
}

void wtg_store_read_end(struct wtg_store *st)
{
	pthread_mutex_lock(&st->lock);
	if (!sqlite3_get_autocommit(st->db))
		sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
	pthread_mutex_unlock(&st->lock);
}

/* ---- the keys between two versions ---- */

static const char *const changed_sql[] = {
    [WTG_STORE_KEY_INODE] = "SELECT ino, NULL, 0 FROM inodes WHERE layer = ?1",
    [WTG_STORE_KEY_NAME] = "SELECT dir, name, 0 FROM names WHERE layer = ?1",
    [WTG_STORE_KEY_STREAM] = "SELECT ino, name, 0 FROM streams WHERE layer = ?1",
    [WTG_STORE_KEY_EXTENT] = "SELECT ino, stream, idx FROM extents WHERE layer = ?1",
};

static int layer_keys(struct wtg_store *st, int64_t layer, wtg_store_change_fn fn, void *arg)
{
	int r = 0;

	for (int k = WTG_STORE_KEY_INODE; !r && k <= WTG_STORE_KEY_EXTENT; k++) {
		sqlite3_stmt *s;
		if ((r = store_prepare(st, changed_sql[k], &s)))
			break;
		sqlite3_bind_int64(s, 1, layer);
		while ((r = store_step(st, s)) == 1) {
			struct wtg_store_change c = {
			    .kind = (enum wtg_store_key)k,
			    .ino = (uint64_t)sqlite3_column_int64(s, 0),
			    .name = (const char *)sqlite3_column_text(s, 1),
			    .index = (uint64_t)sqlite3_column_int64(s, 2),
			};
			if (k != WTG_STORE_KEY_INODE && !c.name) {
				r = store_damaged(st, "a record has no name");
				break;
			}
			if ((r = fn(arg, &c)))
				break;
		}
		sqlite3_finalize(s);
	}
	return r;
}

int wtg_store_changes(struct wtg_store *st, const struct wtg_store_version *a,
		      const struct wtg_store_version *b, wtg_store_change_fn fn, void *arg)
{
	struct store_stack sa = stack_of_version(a), sb = stack_of_version(b);
	int r = 0;

	pthread_mutex_lock(&st->lock);
	for (size_t i = 0; !r && i < a->nstack; i++)
		if (!store_stack_has(&sb, a->stack[i]))
			r = layer_keys(st, a->stack[i], fn, arg);
	for (size_t i = 0; !r && i < b->nstack; i++)
		if (!store_stack_has(&sa, b->stack[i]))
			r = layer_keys(st, b->stack[i], fn, arg);
	pthread_mutex_unlock(&st->lock);
	return r;
}

/* ---- lookups in a version ---- */

int wtg_store_get_inode_at(struct wtg_store *st, const struct wtg_store_version *v, uint64_t ino,
			   enum wtg_store_state *state_ret, struct wtg_store_inode *inode_ret)
{
	struct store_stack stk = stack_of_version(v);

	pthread_mutex_lock(&st->lock);
	int r = store_get_inode(st, &stk, ino, state_ret, inode_ret);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int wtg_store_get_name_at(struct wtg_store *st, const struct wtg_store_version *v, uint64_t dir,
			  const char *name, enum wtg_store_state *state_ret, uint64_t *ino_ret)
{
	return wtg_store_get_name_dos_at(st, v, dir, name, state_ret, ino_ret, NULL);
}

int wtg_store_get_name_dos_at(struct wtg_store *st, const struct wtg_store_version *v,
			      uint64_t dir, const char *name, enum wtg_store_state *state_ret,
			      uint64_t *ino_ret, char **dos_ret)
{
	struct store_stack stk = stack_of_version(v);

	pthread_mutex_lock(&st->lock);
	int r = store_get_name(st, &stk, dir, name, state_ret, ino_ret, dos_ret);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int wtg_store_get_stream_at(struct wtg_store *st, const struct wtg_store_version *v,
			    uint64_t ino, const char *name, enum wtg_store_state *state_ret,
			    uint64_t *size_ret)
{
	struct store_stack stk = stack_of_version(v);

	pthread_mutex_lock(&st->lock);
	int r = store_get_stream(st, &stk, ino, name, state_ret, size_ret);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int wtg_store_get_extent_at(struct wtg_store *st, const struct wtg_store_version *v,
			    uint64_t ino, const char *stream, uint64_t index,
			    enum wtg_store_state *state_ret, uint8_t hash_ret[WTG_STORE_HASH_LEN])
{
	struct store_stack stk = stack_of_version(v);

	if (index > INT64_MAX)
		return -EFBIG;
	pthread_mutex_lock(&st->lock);
	int r = store_resolve(st, &stk, ino, stream, index, false, state_ret, hash_ret);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int wtg_store_stream_fingerprint(struct wtg_store *st, const struct wtg_store_version *v,
				 uint64_t ino, const char *stream, uint64_t size,
				 uint8_t fp_ret[WTG_STORE_HASH_LEN])
{
	enum { SLOT = 1 + WTG_STORE_HASH_LEN };
	uint64_t nslots = size / WTG_STORE_CHUNK_SIZE + (size % WTG_STORE_CHUNK_SIZE != 0);
	size_t head = 8 + strlen(stream) + 1 + 8;

	if (nslots > (SIZE_MAX - head) / SLOT)
		return -EFBIG;
	uint8_t *buf = malloc(head + nslots * SLOT);
	if (!buf)
		return -ENOMEM;
	/* le64 ino, the name and its NUL, le64 size; then each slot's state
	 * and (a chunk) its hash, or zeros */
	for (int i = 0; i < 8; i++) {
		buf[i] = (uint8_t)(ino >> (8 * i));
		buf[head - 8 + i] = (uint8_t)(size >> (8 * i));
	}
	memcpy(buf + 8, stream, strlen(stream) + 1);
	pthread_mutex_lock(&st->lock);
	struct store_stack stk = v ? stack_of_version(v) : store_stack_of(st);
	int r = 0;
	for (uint64_t i = 0; !r && i < nslots; i++) {
		uint8_t *p = buf + head + i * SLOT;
		enum wtg_store_state state = WTG_STORE_BASE;
		r = store_resolve(st, &stk, ino, stream, i, false, &state, p + 1);
		p[0] = (uint8_t)(state + 1);
		if (state != WTG_STORE_PRESENT)
			memset(p + 1, 0, WTG_STORE_HASH_LEN);
	}
	pthread_mutex_unlock(&st->lock);
	if (!r)
		wtg_sha256(buf, head + nslots * SLOT, fp_ret);
	free(buf);
	return r;
}

int wtg_store_list_streams_at(struct wtg_store *st, const struct wtg_store_version *v,
			      uint64_t ino, wtg_store_stream_fn fn, void *arg)
{
	struct store_stack stk = stack_of_version(v);

	return store_list(st, &stk, Q_STREAM_LIST_AT, ino, true, NULL, fn, arg);
}

struct link_row {
	uint64_t dir;
	char *name;
};

/* The name rows of @ino in the stack whose key's topmost record is @ino. */
static int collect_links(struct wtg_store *st, const struct store_stack *stk, uint64_t ino,
			 struct link_row **rows_ret, size_t *count_ret)
{
	struct link_row *rows = NULL;
	size_t n = 0;
	sqlite3_stmt *s;
	int r = store_query(st, Q_NAMES_OF_INO, &s);

	if (r)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	while ((r = store_step(st, s)) == 1) {
		uint64_t dir = (uint64_t)sqlite3_column_int64(s, 0);
		const char *name = (const char *)sqlite3_column_text(s, 1);
		r = 0;
		if (!name || !store_stack_has(stk, sqlite3_column_int64(s, 2)))
			continue;
		bool dup = false;
		for (size_t i = 0; i < n && !dup; i++)
			dup = rows[i].dir == dir && !strcmp(rows[i].name, name);
		if (dup)
			continue;
		struct link_row *p = realloc(rows, (n + 1) * sizeof(*p));
		if (!p) {
			r = -ENOMEM;
			break;
		}
		rows = p;
		if (!(rows[n].name = strdup(name))) {
			r = -ENOMEM;
			break;
		}
		rows[n++].dir = dir;
	}
	sqlite3_reset(s);
	/* keep the names whose topmost record in the stack is still @ino */
	size_t kept = 0;
	for (size_t i = 0; i < n; i++) {
		enum wtg_store_state state = WTG_STORE_BASE;
		uint64_t now = 0;
		if (r >= 0)
			r = store_get_name(st, stk, rows[i].dir, rows[i].name, &state, &now, NULL);
		if (r >= 0 && state == WTG_STORE_PRESENT && now == ino)
			rows[kept++] = rows[i];
		else
			free(rows[i].name);
	}
	if (r < 0) {
		for (size_t i = 0; i < kept; i++)
			free(rows[i].name);
		free(rows);
		return r;
	}
	*rows_ret = rows;
	*count_ret = kept;
	return 0;
}

int wtg_store_names_of_at(struct wtg_store *st, const struct wtg_store_version *v, uint64_t ino,
			  wtg_store_link_fn fn, void *arg)
{
	struct store_stack stk = stack_of_version(v);
	struct link_row *rows = NULL;
	size_t n = 0;

	pthread_mutex_lock(&st->lock);
	int r = collect_links(st, &stk, ino, &rows, &n);
	pthread_mutex_unlock(&st->lock);
	for (size_t i = 0; i < n; i++) {
		if (!r)
			r = fn(arg, rows[i].dir, rows[i].name);
		free(rows[i].name);
	}
	free(rows);
	return r;
}
