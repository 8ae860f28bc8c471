/*
 * The store's dealings with SQLite at the lowest level: result codes
 * become -errno here (and nowhere else), the prepared statements of the read
 * and write paths, and small helpers for binding and stepping.
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

const char *const store_query_sql[Q_COUNT] = {
    [Q_CHUNK_HAS] = "SELECT 1 FROM chunks WHERE hash = ?1",
    [Q_CHUNK_PUT] = "INSERT INTO chunks(hash, size, codec, data) VALUES(?1, ?2, ?3, ?4)",
    [Q_CHUNK_GET] = "SELECT size, codec, data FROM chunks WHERE hash = ?1",
    [Q_SD_PUT] = "INSERT OR IGNORE INTO sds(hash, data) VALUES(?1, ?2)",
    [Q_SD_GET] = "SELECT data FROM sds WHERE hash = ?1",
    /* an upsert, not a REPLACE: changing a record in place leaves the
     * layer index alone (REPLACE deletes the row and its index entries and
     * inserts them again: one more page in every commit of an fsync) */
    [Q_INODE_SET] = "INSERT INTO inodes(ino, layer, deleted, attributes, sd, crtime,"
		    " mtime, atime, ctime, reparse, object_id, dos_name, ea)"
		    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
		    " ON CONFLICT(ino, layer) DO UPDATE SET deleted = excluded.deleted,"
		    " attributes = excluded.attributes, sd = excluded.sd, crtime = excluded.crtime,"
		    " mtime = excluded.mtime, atime = excluded.atime, ctime = excluded.ctime,"
		    " reparse = excluded.reparse, object_id = excluded.object_id,"
		    " dos_name = excluded.dos_name, ea = excluded.ea",
    [Q_INODE_GET] = "SELECT layer, deleted, attributes, sd, crtime, mtime, atime, ctime, reparse,"
		    " object_id, dos_name, ea FROM inodes WHERE ino = ?1 ORDER BY layer DESC",
    [Q_INODE_DEL_EXTENTS] = "DELETE FROM extents WHERE ino = ?1 AND layer = ?2",
    [Q_INODE_DEL_STREAMS] = "DELETE FROM streams WHERE ino = ?1 AND layer = ?2",
    [Q_NAME_SET] = "INSERT OR REPLACE INTO names(dir, name, layer, ino, dos_name)"
		   " VALUES(?1, ?2, ?3, ?4, ?5)",
    [Q_NAME_GET] = "SELECT layer, ino, dos_name FROM names WHERE dir = ?1 AND name = ?2"
		   " ORDER BY layer DESC",
    [Q_NAME_LIST] = "SELECT name, layer, ino FROM names WHERE dir = ?1 ORDER BY name, layer DESC",
    [Q_STREAM_GET] = "SELECT layer, size, deleted, keep FROM streams WHERE ino = ?1 AND name = ?2"
		     " ORDER BY layer DESC",
    [Q_STREAM_SET] = "INSERT INTO streams(ino, name, layer, size, deleted, keep)"
		     " VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(ino, name, layer) DO UPDATE"
		     " SET size = excluded.size, deleted = excluded.deleted, keep = excluded.keep",
    [Q_STREAM_LIST] = "SELECT name, layer, size, deleted FROM streams WHERE ino = ?1"
		      " ORDER BY name, layer DESC",
    [Q_EXTENT_GET] = "SELECT layer, chunk FROM extents WHERE ino = ?1 AND stream = ?2"
		     " AND idx = ?3 ORDER BY layer DESC",
    [Q_EXTENT_SET] = "INSERT OR REPLACE INTO extents(ino, stream, idx, layer, chunk)"
		     " VALUES(?1, ?2, ?3, ?4, ?5)",
    [Q_EXTENT_DEL] = "DELETE FROM extents WHERE ino = ?1 AND stream = ?2 AND idx = ?3"
		     " AND layer = ?4",
    [Q_EXTENT_CUT] = "DELETE FROM extents WHERE ino = ?1 AND stream = ?2 AND layer = ?3"
		     " AND idx >= ?4",
    [Q_EXTENT_TOP] = "SELECT chunk FROM extents WHERE ino = ?1 AND stream = ?2 AND idx = ?3"
		     " AND layer = ?4",
    [Q_SUM_PUT] = "INSERT OR REPLACE INTO stream_sums(fingerprint, sha1, layer, ino, stream, size)"
		  " VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [Q_SUM_LIST] = "SELECT fingerprint, sha1, layer, ino, stream, size FROM stream_sums",
    [Q_SUM_GET] = "SELECT sha1 FROM stream_sums WHERE fingerprint = ?1",
    [Q_CHUNK_USED] = "SELECT 1 FROM extents WHERE chunk = ?1 LIMIT 1",
    [Q_CHUNK_DEL] = "DELETE FROM chunks WHERE hash = ?1",
    [Q_EXTENT_ALL] = "SELECT idx, layer, chunk FROM extents WHERE ino = ?1 AND stream = ?2"
		     " ORDER BY idx, layer DESC",
    /* before the working layer's rows of an inode (or of a stream from a
     * slot on) go: their chunks that no other row names */
    [Q_CHUNK_FREE_INODE] = "DELETE FROM chunks WHERE hash IN (SELECT chunk FROM extents"
			   " WHERE ino = ?1 AND layer = ?2 AND length(chunk) > 0)"
			   " AND NOT EXISTS (SELECT 1 FROM extents e WHERE e.chunk = chunks.hash"
			   " AND (e.ino != ?1 OR e.layer != ?2))",
    [Q_CHUNK_FREE_CUT] = "DELETE FROM chunks WHERE hash IN (SELECT chunk FROM extents"
			 " WHERE ino = ?1 AND stream = ?2 AND layer = ?3 AND idx >= ?4"
			 " AND length(chunk) > 0) AND NOT EXISTS (SELECT 1 FROM extents e"
			 " WHERE e.chunk = chunks.hash AND NOT (e.ino = ?1 AND e.stream = ?2"
			 " AND e.layer = ?3 AND e.idx >= ?4))",
    /* the layers that hold an inode's records (its own, its streams', the
     * names in it), from the top */
    [Q_INODE_BELOW] = "SELECT layer FROM inodes WHERE ino = ?1 UNION"
		      " SELECT layer FROM streams WHERE ino = ?1 UNION"
		      " SELECT layer FROM names WHERE dir = ?1 ORDER BY 1 DESC",
    [Q_INODE_FORGET] = "DELETE FROM inodes WHERE ino = ?1 AND layer = ?2",
    [Q_NAME_BELOW] = "SELECT layer, ino FROM names WHERE dir = ?1 AND name = ?2 AND layer != ?3"
		     " ORDER BY layer DESC",
    [Q_NAME_DEL] = "DELETE FROM names WHERE dir = ?1 AND name = ?2 AND layer = ?3",
    [Q_NAME_DEL_DIR] = "DELETE FROM names WHERE dir = ?1 AND layer = ?2",
    [Q_BASE_INODE_PUT] = "INSERT OR REPLACE INTO base_inodes(ino, data) VALUES(?1, ?2)",
    [Q_BASE_INODE_GET] = "SELECT data FROM base_inodes WHERE ino = ?1",
    [Q_BASE_NAME_PUT] = "INSERT OR REPLACE INTO base_names(dir, name, ino) VALUES(?1, ?2, ?3)",
    [Q_BASE_NAME_GET] = "SELECT ino FROM base_names WHERE dir = ?1 AND name = ?2",
    [Q_BASE_SD_PUT] = "INSERT OR REPLACE INTO base_sds(id, data) VALUES(?1, ?2)",
    [Q_BASE_SD_GET] = "SELECT data FROM base_sds WHERE id = ?1",
    [Q_NAMES_OF_INO] = "SELECT dir, name, layer FROM names WHERE ino = ?1",
    /* the rowid (seq) is SQLite's: one past the last, at the b-tree's edge */
    [Q_JOURNAL_PUT] = "INSERT INTO journal(layer, ino, stream, idx, off, mtime, ctime, data)"
		      " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [Q_JOURNAL_DEL] = "DELETE FROM journal WHERE seq = ?1",
    [Q_JOURNAL_UNTIME] = "UPDATE journal SET mtime = NULL, ctime = NULL WHERE seq = ?1",
    /* Q_STREAM_LIST in reverse name order: the primary key's order read
     * backwards, without the sort that layer DESC after name ASC needs */
    [Q_STREAM_LIST_AT] = "SELECT name, layer, size, deleted FROM streams WHERE ino = ?1"
			 " ORDER BY name DESC, layer DESC",
    /* a batch's ends, prepared once: every fsync runs both */
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
};

/* ---- errors ---- */

int store_sql_error(struct wtg_store *st, int rc)
{
	int sys = sqlite3_system_errno(st->db);

	switch (rc & 0xff) {
	case SQLITE_FULL:
		wtg_error("'%s': the disk is full (free some space; the delta keeps what was "
			  "committed)",
			  st->path);
		return -ENOSPC;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
	case SQLITE_FORMAT:
		return store_damaged(st, sqlite3_errmsg(st->db));
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		wtg_error("'%s': in use by another wtgfs (unmount it or wait for it to finish)",
			  st->path);
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_READONLY:
		wtg_error("'%s': cannot write: %s", st->path, sqlite3_errmsg(st->db));
		return -EROFS;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_IOERR:
		if (sys == ENOSPC || sys == EDQUOT || sys == EFBIG) {
			wtg_error("'%s': the disk is full (free some space; the delta keeps what "
				  "was committed)",
				  st->path);
			return -ENOSPC;
		}
		/* fall through */
	default:
		wtg_error("'%s': %s%s%s", st->path, sqlite3_errmsg(st->db), sys ? ": " : "",
			  sys ? strerror(sys) : "");
		return -EIO;
	}
}

/* After a failed statement inside a batch: SQLite may have rolled the whole
 * transaction back (disk full, I/O error), which the next commit reports. */
int store_write_failed(struct wtg_store *st, int err)
{
	if (st->in_batch && sqlite3_get_autocommit(st->db)) {
		st->in_batch = false;
		store_journal_forget(st); /* it may name rows rolled back */
		if (!st->batch_lost)
			st->batch_lost = err ? err : -EIO;
	}
	return err;
}

int store_damaged(struct wtg_store *st, const char *what)
{
	wtg_error("'%s': the delta is damaged: %s%s", st->path, what,
		  st->verifying ? "" : " (run 'wtgfs verify')");
	return -EIO;
}

/* ---- statements ---- */

int store_exec(struct wtg_store *st, const char *sql)
{
	int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : store_sql_error(st, rc);
}

/* The cached statement @id, reset and unbound. */
int store_query(struct wtg_store *st, int id, sqlite3_stmt **ret)
{
	if (!st->q[id]) {
		int rc = sqlite3_prepare_v3(st->db, store_query_sql[id], -1,
					    SQLITE_PREPARE_PERSISTENT, &st->q[id], NULL);
		if (rc != SQLITE_OK)
			return store_sql_error(st, rc);
	}
	sqlite3_reset(st->q[id]);
	sqlite3_clear_bindings(st->q[id]);
	*ret = st->q[id];
	return 0;
}

/* Runs a statement that returns no rows. */
int store_run(struct wtg_store *st, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : store_sql_error(st, rc);
}

/* sqlite3_step: 1 for a row, 0 when done, or -errno. */
int store_step(struct wtg_store *st, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return store_sql_error(st, rc);
}

int store_step_blob(struct wtg_store *st, sqlite3_stmt *s, uint8_t **data_ret, size_t *len_ret)
{
	int r = store_step(st, s);

	if (r == 0)
		r = -ENOENT;
	if (r == 1) {
		size_t n = (size_t)sqlite3_column_bytes(s, 0);
		*data_ret = malloc(n ? n : 1);
		*len_ret = n;
		r = *data_ret ? 0 : -ENOMEM;
		if (!r && n)
			memcpy(*data_ret, sqlite3_column_blob(s, 0), n);
	}
	sqlite3_reset(s);
	return r;
}

int store_prepare(struct wtg_store *st, const char *sql, sqlite3_stmt **ret)
{
	int rc = sqlite3_prepare_v2(st->db, sql, -1, ret, NULL);
	return rc == SQLITE_OK ? 0 : store_sql_error(st, rc);
}

int store_int_query(struct wtg_store *st, const char *sql, int64_t arg, int64_t *ret)
{
	sqlite3_stmt *s;
	int r = store_prepare(st, sql, &s);

	if (r)
		return r;
	sqlite3_bind_int64(s, 1, arg);
	r = store_step(st, s);
	*ret = r == 1 ? sqlite3_column_int64(s, 0) : 0;
	sqlite3_finalize(s);
	return r < 0 ? r : 0;
}

int store_bind_hash(sqlite3_stmt *s, int col, const uint8_t *hash)
{
	return sqlite3_bind_blob(s, col, hash, WTG_STORE_HASH_LEN, SQLITE_STATIC);
}

bool store_column_hash(sqlite3_stmt *s, int col, uint8_t out[WTG_STORE_HASH_LEN])
{
	if (sqlite3_column_bytes(s, col) != WTG_STORE_HASH_LEN)
		return false;
	memcpy(out, sqlite3_column_blob(s, col), WTG_STORE_HASH_LEN);
	return true;
}

int64_t store_now(void)
{
	return (int64_t)time(NULL);
}

int64_t store_top(const struct wtg_store *st)
{
	return st->stack[0];
}

bool store_stack_has(const struct store_stack *stk, int64_t layer)
{
	size_t lo = 0, hi = stk->n;

	while (lo < hi) { /* descending */
		size_t mid = (lo + hi) / 2;
		if (stk->ids[mid] == layer)
			return true;
		if (stk->ids[mid] > layer)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

struct store_stack store_stack_of(const struct wtg_store *st)
{
	return (struct store_stack){st->stack, st->nstack};
}

bool store_in_stack(const struct wtg_store *st, int64_t layer)
{
	struct store_stack stk = store_stack_of(st);

	return store_stack_has(&stk, layer);
}
