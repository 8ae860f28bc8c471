/*
 * The delta file on SQLite (the one user of sqlite3.h): the schema, opening
 * with cheap header checks before SQLite sees the file, batches as
 * transactions in WAL mode (a commit is durable when it returns: the WAL is
 * fsynced; a quick commit survives a crash of the process but waits for the
 * next durable one to reach the disk), the layer stack and its lookups, and
 * verify / gc.  SQLite result codes become -errno here and nowhere else.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "wtgfs/chunk_codec.h"
#include "wtgfs/hash.h"
#include "wtgfs/log.h"
#include "wtgfs/store.h"

/* PRAGMA application_id: "WTGD" */
#define WTG_APP_ID 0x57544744

/* The SQLite file header (offsets as in sqlite.org/fileformat.html). */
#define HDR_MAGIC "SQLite format 3"
#define HDR_PAGE_SIZE 16      /* be16, 1 means 65536 */
#define HDR_CHANGE_COUNTER 24 /* be32 */
#define HDR_PAGE_COUNT 28     /* be32, valid when VALID_FOR equals CHANGE_COUNTER */
#define HDR_USER_VERSION 60   /* be32 */
#define HDR_APP_ID 68	      /* be32 */
#define HDR_VALID_FOR 92      /* be32 */
#define HDR_SIZE 100

static const char schema_sql[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
    "CREATE TABLE layers(id INTEGER PRIMARY KEY, parent INTEGER, created INTEGER NOT NULL,"
    " sealed INTEGER);"
    "CREATE TABLE snapshots(name TEXT PRIMARY KEY, layer INTEGER NOT NULL UNIQUE, message TEXT,"
    " created INTEGER NOT NULL);"
    /* rowid tables: rows of up to 64 KiB do not belong in a WITHOUT ROWID b-tree */
    "CREATE TABLE chunks(hash BLOB PRIMARY KEY, size INTEGER NOT NULL, codec INTEGER NOT NULL,"
    " data BLOB NOT NULL);"
    "CREATE TABLE sds(hash BLOB PRIMARY KEY, data BLOB NOT NULL);"
    "CREATE TABLE inodes(ino INTEGER, layer INTEGER, deleted INTEGER NOT NULL,"
    " attributes INTEGER, sd BLOB, crtime INTEGER, mtime INTEGER, atime INTEGER, ctime INTEGER,"
    " reparse BLOB, object_id BLOB, dos_name TEXT, PRIMARY KEY(ino, layer)) WITHOUT ROWID;"
    "CREATE TABLE names(dir INTEGER, name TEXT, layer INTEGER, ino INTEGER,"
    " PRIMARY KEY(dir, name, layer)) WITHOUT ROWID;"
    "CREATE TABLE streams(ino INTEGER, name TEXT, layer INTEGER, size INTEGER NOT NULL,"
    " deleted INTEGER NOT NULL, keep INTEGER, PRIMARY KEY(ino, name, layer)) WITHOUT ROWID;"
    "CREATE TABLE extents(ino INTEGER, stream TEXT, idx INTEGER, layer INTEGER, chunk BLOB,"
    " PRIMARY KEY(ino, stream, idx, layer)) WITHOUT ROWID;"
    "CREATE INDEX inodes_layer ON inodes(layer);"
    "CREATE INDEX names_layer ON names(layer);"
    "CREATE INDEX streams_layer ON streams(layer);"
    "CREATE INDEX extents_layer ON extents(layer, chunk);"
    "CREATE INDEX extents_chunk ON extents(chunk);";

/* Statements of the read and write paths, prepared once. */
enum {
	Q_CHUNK_HAS,
	Q_CHUNK_PUT,
	Q_CHUNK_GET,
	Q_SD_PUT,
	Q_SD_GET,
	Q_INODE_SET,
	Q_INODE_GET,
	Q_INODE_DEL_EXTENTS,
	Q_INODE_DEL_STREAMS,
	Q_NAME_SET,
	Q_NAME_GET,
	Q_NAME_LIST,
	Q_STREAM_GET,
	Q_STREAM_SET,
	Q_STREAM_LIST,
	Q_EXTENT_GET,
	Q_EXTENT_SET,
	Q_EXTENT_DEL,
	Q_EXTENT_CUT,
	Q_EXTENT_TOP,
	Q_CHUNK_USED,
	Q_CHUNK_DEL,
	Q_COUNT
};

static const char *const query_sql[Q_COUNT] = {
    [Q_CHUNK_HAS] = "SELECT 1 FROM chunks WHERE hash = ?1",
    [Q_CHUNK_PUT] = "INSERT INTO chunks(hash, size, codec, data) VALUES(?1, ?2, ?3, ?4)",
    [Q_CHUNK_GET] = "SELECT size, codec, data FROM chunks WHERE hash = ?1",
    [Q_SD_PUT] = "INSERT OR IGNORE INTO sds(hash, data) VALUES(?1, ?2)",
    [Q_SD_GET] = "SELECT data FROM sds WHERE hash = ?1",
    [Q_INODE_SET] = "INSERT OR REPLACE INTO inodes(ino, layer, deleted, attributes, sd, crtime,"
		    " mtime, atime, ctime, reparse, object_id, dos_name)"
		    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    [Q_INODE_GET] = "SELECT layer, deleted, attributes, sd, crtime, mtime, atime, ctime, reparse,"
		    " object_id, dos_name FROM inodes WHERE ino = ?1 ORDER BY layer DESC",
    [Q_INODE_DEL_EXTENTS] = "DELETE FROM extents WHERE ino = ?1 AND layer = ?2",
    [Q_INODE_DEL_STREAMS] = "DELETE FROM streams WHERE ino = ?1 AND layer = ?2",
    [Q_NAME_SET] = "INSERT OR REPLACE INTO names(dir, name, layer, ino) VALUES(?1, ?2, ?3, ?4)",
    [Q_NAME_GET] = "SELECT layer, ino FROM names WHERE dir = ?1 AND name = ?2"
		   " ORDER BY layer DESC",
    [Q_NAME_LIST] = "SELECT name, layer, ino FROM names WHERE dir = ?1 ORDER BY name, layer DESC",
    [Q_STREAM_GET] = "SELECT layer, size, deleted, keep FROM streams WHERE ino = ?1 AND name = ?2"
		     " ORDER BY layer DESC",
    [Q_STREAM_SET] = "INSERT OR REPLACE INTO streams(ino, name, layer, size, deleted, keep)"
		     " VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
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
    [Q_CHUNK_USED] = "SELECT 1 FROM extents WHERE chunk = ?1 LIMIT 1",
    [Q_CHUNK_DEL] = "DELETE FROM chunks WHERE hash = ?1",
};

struct wtg_store {
	char *path;
	sqlite3 *db;
	int fd; /* holds the writer's flock; closed after SQLite */
	bool read_only;
	pthread_mutex_t lock;
	struct wtg_chunk_codec *codec;
	uint8_t *zbuf;
	sqlite3_stmt *q[Q_COUNT];
	struct wtg_store_base base;
	int64_t *stack; /* layer ids from the top down (ids fall along ancestry) */
	size_t nstack;
	bool in_batch;
	bool unsynced; /* commits since the WAL was last synced */
	int batch_lost; /* -errno: SQLite rolled the open batch back */
	struct timespec batch_start;
};

/* ---- errors ---- */

static int sql_error(struct wtg_store *st, int rc)
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
		wtg_error("'%s': the delta is damaged: %s (run 'wtgfs verify')", st->path,
			  sqlite3_errmsg(st->db));
		return -EIO;
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
static int write_failed(struct wtg_store *st, int err)
{
	if (st->in_batch && sqlite3_get_autocommit(st->db)) {
		st->in_batch = false;
		st->batch_lost = err;
	}
	return err;
}

static int damaged(struct wtg_store *st, const char *what)
{
	wtg_error("'%s': the delta is damaged: %s (run 'wtgfs verify')", st->path, what);
	return -EIO;
}

/* ---- statements ---- */

static int exec(struct wtg_store *st, const char *sql)
{
	int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : sql_error(st, rc);
}

/* The cached statement @id, reset and unbound. */
static int query(struct wtg_store *st, int id, sqlite3_stmt **ret)
{
	if (!st->q[id]) {
		int rc = sqlite3_prepare_v3(st->db, query_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
					    &st->q[id], NULL);
		if (rc != SQLITE_OK)
			return sql_error(st, rc);
	}
	sqlite3_reset(st->q[id]);
	sqlite3_clear_bindings(st->q[id]);
	*ret = st->q[id];
	return 0;
}

/* Runs a statement that returns no rows. */
static int run(struct wtg_store *st, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sql_error(st, rc);
}

/* sqlite3_step: 1 for a row, 0 when done, or -errno. */
static int step(struct wtg_store *st, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return sql_error(st, rc);
}

static int prepare(struct wtg_store *st, const char *sql, sqlite3_stmt **ret)
{
	int rc = sqlite3_prepare_v2(st->db, sql, -1, ret, NULL);
	return rc == SQLITE_OK ? 0 : sql_error(st, rc);
}

static int int_query(struct wtg_store *st, const char *sql, int64_t arg, int64_t *ret)
{
	sqlite3_stmt *s;
	int r = prepare(st, sql, &s);

	if (r)
		return r;
	sqlite3_bind_int64(s, 1, arg);
	r = step(st, s);
	*ret = r == 1 ? sqlite3_column_int64(s, 0) : 0;
	sqlite3_finalize(s);
	return r < 0 ? r : 0;
}

static int bind_hash(sqlite3_stmt *s, int col, const uint8_t *hash)
{
	return sqlite3_bind_blob(s, col, hash, WTG_STORE_HASH_LEN, SQLITE_STATIC);
}

static bool column_hash(sqlite3_stmt *s, int col, uint8_t out[WTG_STORE_HASH_LEN])
{
	if (sqlite3_column_bytes(s, col) != WTG_STORE_HASH_LEN)
		return false;
	memcpy(out, sqlite3_column_blob(s, col), WTG_STORE_HASH_LEN);
	return true;
}

static int64_t now(void)
{
	return (int64_t)time(NULL);
}

static int64_t top(const struct wtg_store *st)
{
	return st->stack[0];
}

static bool in_stack(const struct wtg_store *st, int64_t layer)
{
	size_t lo = 0, hi = st->nstack;

	while (lo < hi) { /* descending */
		size_t mid = (lo + hi) / 2;
		if (st->stack[mid] == layer)
			return true;
		if (st->stack[mid] > layer)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* ---- opening ---- */

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

bool wtg_store_is_delta(const char *path)
{
	uint8_t h[HDR_SIZE];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool yes = false;

	if (fd >= 0) {
		yes = pread(fd, h, sizeof(h), 0) == (ssize_t)sizeof(h) &&
		      !memcmp(h, HDR_MAGIC, sizeof(HDR_MAGIC)) &&
		      be32(h + HDR_APP_ID) == WTG_APP_ID;
		close(fd);
	}
	return yes;
}

/* Refuses what is plainly not a delta before SQLite reads (or writes) it. */
static int check_header(const char *path, int fd)
{
	uint8_t h[HDR_SIZE];
	struct stat sb;
	char wal[PATH_MAX];

	if (fstat(fd, &sb) < 0)
		return -errno;
	if (!S_ISREG(sb.st_mode)) {
		wtg_error("cannot open '%s': not a wtgfs delta (not a regular file)", path);
		return -EINVAL;
	}
	if (sb.st_size == 0) {
		wtg_error("cannot open '%s': empty file, not a wtgfs delta (make one with "
			  "'wtgfs init')",
			  path);
		return -EINVAL;
	}
	ssize_t n = pread(fd, h, sizeof(h), 0);
	if (n < 0)
		return -errno;
	if ((size_t)n < sizeof(h) || memcmp(h, HDR_MAGIC, sizeof(HDR_MAGIC))) {
		wtg_error("cannot open '%s': not a wtgfs delta (make one with 'wtgfs init')", path);
		return -EINVAL;
	}
	if (be32(h + HDR_APP_ID) != WTG_APP_ID) {
		wtg_error("cannot open '%s': an SQLite database, but not a wtgfs delta", path);
		return -EINVAL;
	}
	if (be32(h + HDR_USER_VERSION) > WTG_STORE_FORMAT) {
		wtg_error("cannot open '%s': made by a newer wtgfs (delta format %" PRIu32
			  ", this one reads up to %d; upgrade wtgfs)",
			  path, be32(h + HDR_USER_VERSION), WTG_STORE_FORMAT);
		return -EPROTO;
	}
	/* Without a WAL to replay, the file must be as long as its header says. */
	uint32_t psize = (uint32_t)h[HDR_PAGE_SIZE] << 8 | h[HDR_PAGE_SIZE + 1];
	if (psize == 1)
		psize = 65536;
	snprintf(wal, sizeof(wal), "%s-wal", path);
	if (be32(h + HDR_VALID_FOR) == be32(h + HDR_CHANGE_COUNTER) && access(wal, F_OK) != 0 &&
	    (uint64_t)sb.st_size < (uint64_t)psize * be32(h + HDR_PAGE_COUNT)) {
		wtg_error("cannot open '%s': truncated (%" PRIu64 " of %" PRIu64
			  " bytes; restore it from a backup)",
			  path, (uint64_t)sb.st_size, (uint64_t)psize * be32(h + HDR_PAGE_COUNT));
		return -EIO;
	}
	return 0;
}

static int check_format(struct wtg_store *st)
{
	int64_t app, ver;
	int r = int_query(st, "PRAGMA application_id", 0, &app);

	if (!r)
		r = int_query(st, "PRAGMA user_version", 0, &ver);
	if (r)
		return r;
	if (app != WTG_APP_ID) {
		wtg_error("cannot open '%s': an SQLite database, but not a wtgfs delta", st->path);
		return -EINVAL;
	}
	if (ver > WTG_STORE_FORMAT) {
		wtg_error("cannot open '%s': made by a newer wtgfs (delta format %" PRId64
			  ", this one reads up to %d; upgrade wtgfs)",
			  st->path, ver, WTG_STORE_FORMAT);
		return -EPROTO;
	}
	if (ver < 1)
		return damaged(st, "no format version");
	return 0;
}

static int load_meta(struct wtg_store *st, int64_t *head_ret)
{
	sqlite3_stmt *s;
	unsigned seen = 0;
	int r = prepare(st, "SELECT key, value FROM meta", &s);

	if (r)
		return r;
	*head_ret = 0;
	while ((r = step(st, s)) == 1) {
		const char *key = (const char *)sqlite3_column_text(s, 0);
		const char *text = (const char *)sqlite3_column_text(s, 1);
		if (!key)
			continue;
		if (!strcmp(key, "base_path") && text) {
			snprintf(st->base.path, sizeof(st->base.path), "%s", text);
			seen |= 1;
		} else if (!strcmp(key, "base_size")) {
			st->base.size = (uint64_t)sqlite3_column_int64(s, 1);
			seen |= 2;
		} else if (!strcmp(key, "base_guid") && text) {
			snprintf(st->base.guid, sizeof(st->base.guid), "%s", text);
			seen |= 4;
		} else if (!strcmp(key, "base_index")) {
			st->base.index = (uint32_t)sqlite3_column_int64(s, 1);
			seen |= 8;
		} else if (!strcmp(key, "base_meta_hash") &&
			   column_hash(s, 1, st->base.meta_hash)) {
			seen |= 16;
		} else if (!strcmp(key, "head")) {
			*head_ret = sqlite3_column_int64(s, 1);
			seen |= 32;
		}
	}
	sqlite3_finalize(s);
	if (r < 0)
		return r;
	if (seen != 63)
		return damaged(st, "its record of the base or of HEAD is missing");
	return 0;
}

/* The stack from @layer down to the first layer. */
static int load_stack(struct wtg_store *st, int64_t layer)
{
	sqlite3_stmt *s;
	int r = prepare(st, "SELECT parent FROM layers WHERE id = ?1", &s);

	if (r)
		return r;
	st->nstack = 0;
	while (layer > 0) {
		if (st->nstack && layer >= st->stack[st->nstack - 1]) {
			r = damaged(st, "the layers form a loop");
			break;
		}
		int64_t *p = realloc(st->stack, (st->nstack + 1) * sizeof(*p));
		if (!p) {
			r = -ENOMEM;
			break;
		}
		st->stack = p;
		st->stack[st->nstack++] = layer;
		sqlite3_reset(s);
		sqlite3_bind_int64(s, 1, layer);
		r = step(st, s);
		if (r <= 0) {
			if (r == 0)
				r = damaged(st, "a layer of the stack is missing");
			break;
		}
		layer = sqlite3_column_type(s, 0) == SQLITE_NULL ? 0 : sqlite3_column_int64(s, 0);
		r = 0;
	}
	sqlite3_finalize(s);
	if (!r && !st->nstack)
		r = damaged(st, "no working layer");
	return r;
}

static int layer_of_snapshot(struct wtg_store *st, const char *name, int64_t *layer_ret)
{
	sqlite3_stmt *s;
	int r = prepare(st, "SELECT layer FROM snapshots WHERE name = ?1", &s);

	if (r)
		return r;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	r = step(st, s);
	if (r == 1)
		*layer_ret = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	if (r == 0) {
		wtg_error("'%s': no snapshot '%s' (see 'wtgfs log')", st->path, name);
		return -ENOENT;
	}
	return r < 0 ? r : 0;
}

static void store_free(struct wtg_store *st)
{
	for (int i = 0; i < Q_COUNT; i++)
		sqlite3_finalize(st->q[i]);
	if (st->db)
		sqlite3_close(st->db);
	if (st->fd >= 0)
		close(st->fd);
	wtg_chunk_codec_free(st->codec);
	pthread_mutex_destroy(&st->lock);
	free(st->zbuf);
	free(st->stack);
	free(st->path);
	free(st);
}

static int commit_locked(struct wtg_store *st, bool durable);

/* Opens the SQLite connection with the settings every handle uses. */
static int connect_db(struct wtg_store *st, int flags)
{
	int rc = sqlite3_open_v2(st->path, &st->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
	int r;

	if (rc != SQLITE_OK) {
		r = st->db ? sql_error(st, rc) : -ENOMEM;
		sqlite3_close(st->db);
		st->db = NULL;
		return r;
	}
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_timeout(st->db, 5000);
	sqlite3_db_config(st->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(st->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	/* a 64 MiB page cache: a commit's chunk rows stay hot, and readers do
	 * not go back to the file for the b-tree pages every lookup needs */
	r = exec(st, "PRAGMA cell_size_check = ON; PRAGMA cache_size = -65536");
	if (!r && !st->read_only)
		/* NORMAL: SQLite syncs the WAL only at checkpoints (order kept,
		 * so the file is always consistent); durable commits fdatasync
		 * the WAL themselves */
		r = exec(st, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL");
	if (!r && !st->read_only) /* deltas made before it had this index */
		r = exec(st, "CREATE INDEX IF NOT EXISTS extents_chunk ON extents(chunk)");
	return r;
}

int wtg_store_after_fork(struct wtg_store *st)
{
	pthread_mutex_lock(&st->lock);
	int r = commit_locked(st, true);
	for (int i = 0; i < Q_COUNT; i++) {
		sqlite3_finalize(st->q[i]);
		st->q[i] = NULL;
	}
	sqlite3_close(st->db);
	st->db = NULL;
	if (!r)
		r = connect_db(st, st->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int wtg_store_open(const char *path, const struct wtg_store_options *opt,
		   struct wtg_store **store_ret)
{
	static const struct wtg_store_options defaults;
	struct wtg_store *st;
	int64_t head, layer;
	int r;

	if (!opt)
		opt = &defaults;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	pthread_mutex_init(&st->lock, NULL);
	st->read_only = opt->read_only || opt->at;
	st->path = strdup(path);
	st->codec = wtg_chunk_codec_new();
	st->zbuf = malloc(wtg_chunk_encode_bound(WTG_STORE_CHUNK_SIZE));
	st->fd = open(path, (st->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (!st->path || !st->codec || !st->zbuf) {
		r = -ENOMEM;
		goto out_free;
	}
	if (st->fd < 0) {
		r = -errno;
		wtg_error("cannot open '%s': %s", path, strerror(errno));
		goto out_free;
	}
	r = check_header(path, st->fd);
	if (r)
		goto out_free;
	/* flock, not fcntl: SQLite's own POSIX locks stay untouched */
	if (!st->read_only && flock(st->fd, LOCK_EX | LOCK_NB) < 0) {
		r = errno == EWOULDBLOCK ? -EBUSY : -errno;
		wtg_error("cannot open '%s': in use by another wtgfs (unmount it first)", path);
		goto out_free;
	}
	/* A reader alone with the file opens it writable (without writing)
	 * so that closing checkpoints and removes the -wal and -shm files:
	 * a delta at rest stays one file.  Beside a writer it reads only. */
	bool alone = st->read_only && flock(st->fd, LOCK_EX | LOCK_NB) == 0;
	r = connect_db(st, (st->read_only && !alone ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE));
	if (r && alone)
		r = connect_db(st, SQLITE_OPEN_READONLY);
	if (!r)
		r = check_format(st);
	if (!r)
		r = load_meta(st, &head);
	if (r)
		goto out_free;
	layer = head;
	if (opt->at) {
		r = layer_of_snapshot(st, opt->at, &layer);
		if (r)
			goto out_free;
	}
	r = load_stack(st, layer);
	if (r)
		goto out_free;
	*store_ret = st;
	return 0;

out_free:
	store_free(st);
	return r;
}

int wtg_store_close(struct wtg_store *st)
{
	if (!st)
		return 0;
	int r = wtg_store_commit(st);
	store_free(st);
	return r;
}

int wtg_store_wait_writer(const char *path, int timeout_ms)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	int r = -ETIMEDOUT;
	for (int waited = 0; waited <= timeout_ms; waited += 20) {
		if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
			r = 0;
			break;
		}
		if (errno != EWOULDBLOCK) {
			r = -errno;
			break;
		}
		usleep(20000);
	}
	close(fd);
	return r;
}

const char *wtg_store_path(const struct wtg_store *st)
{
	return st->path;
}

/* ---- creating ---- */

static int put_meta(struct wtg_store *st, const char *key, int type, int64_t i, const void *p,
		    int len)
{
	sqlite3_stmt *s;
	int r = prepare(st, "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)", &s);

	if (r)
		return r;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	if (type == SQLITE_INTEGER)
		sqlite3_bind_int64(s, 2, i);
	else if (type == SQLITE_TEXT)
		sqlite3_bind_text(s, 2, p, len, SQLITE_STATIC);
	else
		sqlite3_bind_blob(s, 2, p, len, SQLITE_STATIC);
	r = run(st, s);
	sqlite3_finalize(s);
	return r;
}

static int fsync_path(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);
	int r = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

int wtg_store_create(const char *path, const struct wtg_store_base *base)
{
	struct wtg_store st = {.fd = -1};
	char tmp[PATH_MAX], dir[PATH_MAX];
	char sql[128];
	int r, rc;

	if (access(path, F_OK) == 0) {
		wtg_error("cannot create '%s': it exists (choose another name or remove it)", path);
		return -EEXIST;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.tmp-%d", path, (int)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	unlink(tmp);
	/* a log left by a delta of this name that was removed after a crash
	 * would be replayed into the new one */
	for (const char *suffix = "-wal"; suffix; suffix = suffix[1] == 'w' ? "-shm" : NULL) {
		char side[PATH_MAX + 8];
		snprintf(side, sizeof(side), "%s%s", path, suffix);
		unlink(side);
	}
	st.path = (char *)path;
	rc = sqlite3_open_v2(tmp, &st.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK) {
		if (!st.db)
			return -ENOMEM;
		wtg_error("cannot create '%s': %s", path, sqlite3_errmsg(st.db));
		r = -(sqlite3_system_errno(st.db) ? sqlite3_system_errno(st.db) : EIO);
		goto out_close;
	}
	sqlite3_extended_result_codes(st.db, 1);
	/* auto_vacuum before the first table: gc can give space back */
	snprintf(sql, sizeof(sql),
		 "PRAGMA auto_vacuum = INCREMENTAL; PRAGMA application_id = %d;"
		 " PRAGMA user_version = %d",
		 WTG_APP_ID, WTG_STORE_FORMAT);
	r = exec(&st, sql);
	if (!r)
		r = exec(&st, "BEGIN");
	if (!r)
		r = exec(&st, schema_sql);
	if (!r)
		r = exec(&st, "INSERT INTO layers(id, parent, created, sealed) VALUES(1, NULL,"
			      " strftime('%s', 'now'), NULL)");
	if (!r)
		r = put_meta(&st, "head", SQLITE_INTEGER, 1, NULL, 0);
	if (!r)
		r = put_meta(&st, "created", SQLITE_INTEGER, now(), NULL, 0);
	if (!r)
		r = put_meta(&st, "base_path", SQLITE_TEXT, 0, base->path, -1);
	if (!r)
		r = put_meta(&st, "base_size", SQLITE_INTEGER, (int64_t)base->size, NULL, 0);
	if (!r)
		r = put_meta(&st, "base_guid", SQLITE_TEXT, 0, base->guid, -1);
	if (!r)
		r = put_meta(&st, "base_index", SQLITE_INTEGER, base->index, NULL, 0);
	if (!r)
		r = put_meta(&st, "base_meta_hash", SQLITE_BLOB, 0, base->meta_hash,
			     WTG_STORE_HASH_LEN);
	if (!r)
		r = exec(&st, "COMMIT");
	/* the journal mode is recorded in the file: every later open is WAL */
	if (!r)
		r = exec(&st, "PRAGMA journal_mode = WAL");
out_close:
	rc = sqlite3_close(st.db);
	if (!r && rc != SQLITE_OK)
		r = -EIO;
	if (!r)
		r = fsync_path(tmp, O_RDONLY);
	if (!r && renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) < 0) {
		r = -errno;
		wtg_error("cannot create '%s': %s", path, strerror(errno));
	}
	if (r) {
		unlink(tmp);
		return r;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	return fsync_path(slash ? dir : ".", O_RDONLY | O_DIRECTORY);
}

/* ---- the base ---- */

void wtg_store_get_base(const struct wtg_store *st, struct wtg_store_base *base_ret)
{
	*base_ret = st->base;
}

int wtg_store_check_base(const struct wtg_store *st, const struct wtg_store_base *actual)
{
	const struct wtg_store_base *b = &st->base;
	const char *what = NULL;

	if (strcmp(b->guid, actual->guid))
		what = "its GUID";
	else if (b->index != actual->index)
		what = "the image index";
	else if (b->size != actual->size)
		what = "its size";
	else if (memcmp(b->meta_hash, actual->meta_hash, WTG_STORE_HASH_LEN))
		what = "its metadata";
	if (!what)
		return 0;
	wtg_error("'%s': bound to another base: '%s' differs in %s from '%s' image %" PRIu32
		  " (give the right one with --base)",
		  st->path, actual->path, what, b->path, b->index);
	return -ESTALE;
}

/* ---- batches ---- */

static int writable(struct wtg_store *st)
{
	if (st->read_only)
		return -EROFS;
	if (st->in_batch)
		return 0;
	int r = exec(st, "BEGIN IMMEDIATE");
	if (r)
		return r;
	st->in_batch = true;
	clock_gettime(CLOCK_MONOTONIC, &st->batch_start);
	return 0;
}

/* Makes every committed transaction durable: they are all in the WAL. */
static int sync_wal(struct wtg_store *st)
{
	char path[PATH_MAX + 8];

	if (!st->unsynced)
		return 0;
	snprintf(path, sizeof(path), "%s-wal", st->path);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : write_failed(st, -errno);
	int r = fdatasync(fd) < 0 ? -errno : 0;
	close(fd);
	if (r) {
		wtg_error("'%s': cannot sync its log: %s", st->path, strerror(-r));
		return r;
	}
	st->unsynced = false;
	return 0;
}

static int commit_locked(struct wtg_store *st, bool durable)
{
	int r = st->batch_lost;

	st->batch_lost = 0;
	if (st->in_batch) {
		st->in_batch = false;
		int rc = sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
		if (rc != SQLITE_OK) {
			r = sql_error(st, rc);
			if (!sqlite3_get_autocommit(st->db))
				sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
			return r;
		}
		st->unsynced = true;
	}
	if (!r && durable)
		r = sync_wal(st);
	return r;
}

int wtg_store_set_base_path(struct wtg_store *st, const char *path)
{
	pthread_mutex_lock(&st->lock);
	int r = writable(st);
	if (!r)
		r = put_meta(st, "base_path", SQLITE_TEXT, 0, path, -1);
	if (!r)
		r = commit_locked(st, true);
	if (!r)
		snprintf(st->base.path, sizeof(st->base.path), "%s", path);
	pthread_mutex_unlock(&st->lock);
	return r ? write_failed(st, r) : 0;
}

int wtg_store_begin(struct wtg_store *st)
{
	pthread_mutex_lock(&st->lock);
	int r = writable(st);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int wtg_store_commit(struct wtg_store *st)
{
	pthread_mutex_lock(&st->lock);
	int r = commit_locked(st, true);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int wtg_store_commit_nosync(struct wtg_store *st)
{
	pthread_mutex_lock(&st->lock);
	int r = commit_locked(st, false);
	pthread_mutex_unlock(&st->lock);
	return r;
}

void wtg_store_rollback_batch(struct wtg_store *st)
{
	pthread_mutex_lock(&st->lock);
	if (st->in_batch)
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	st->in_batch = false;
	st->batch_lost = 0;
	pthread_mutex_unlock(&st->lock);
}

long wtg_store_batch_age_ms(struct wtg_store *st)
{
	struct timespec t;
	long age = -1;

	pthread_mutex_lock(&st->lock);
	if (st->in_batch) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		age = (t.tv_sec - st->batch_start.tv_sec) * 1000 +
		      (t.tv_nsec - st->batch_start.tv_nsec) / 1000000;
	}
	pthread_mutex_unlock(&st->lock);
	return age;
}

/* ---- chunks and security descriptors ---- */

int wtg_store_put_chunk(struct wtg_store *st, const void *data, size_t size,
			uint8_t hash_ret[WTG_STORE_HASH_LEN])
{
	sqlite3_stmt *s;
	int codec, r;
	size_t zlen;

	if (size > WTG_STORE_CHUNK_SIZE)
		return -EINVAL;
	wtg_sha256(data, size, hash_ret);
	pthread_mutex_lock(&st->lock);
	r = writable(st);
	if (!r)
		r = query(st, Q_CHUNK_HAS, &s);
	if (r)
		goto out;
	bind_hash(s, 1, hash_ret);
	r = step(st, s);
	sqlite3_reset(s);
	if (r != 0) /* there already, or an error */
		goto out;
	r = wtg_chunk_encode(st->codec, data, size, st->zbuf, &codec, &zlen);
	if (!r)
		r = query(st, Q_CHUNK_PUT, &s);
	if (r)
		goto out;
	bind_hash(s, 1, hash_ret);
	sqlite3_bind_int64(s, 2, (int64_t)size);
	sqlite3_bind_int(s, 3, codec);
	sqlite3_bind_blob(s, 4, st->zbuf, (int)zlen, SQLITE_STATIC);
	r = run(st, s);
out:
	r = r > 0 ? 0 : r;
	if (r)
		write_failed(st, r);
	pthread_mutex_unlock(&st->lock);
	return r;
}

/* Reads and decodes a chunk at the current row of @s (size, codec, data). */
static int decode_row(struct wtg_store *st, sqlite3_stmt *s, int col, void *buf, size_t *size_ret)
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

static void hex_short(const uint8_t *hash, char out[17])
{
	wtg_hex(hash, 8, out);
}

int wtg_store_get_chunk(struct wtg_store *st, const uint8_t hash[WTG_STORE_HASH_LEN], void *buf,
			size_t *size_ret)
{
	sqlite3_stmt *s;
	char hex[17];

	pthread_mutex_lock(&st->lock);
	int r = query(st, Q_CHUNK_GET, &s);
	if (r)
		goto out;
	bind_hash(s, 1, hash);
	r = step(st, s);
	if (r == 0) {
		r = -ENOENT;
	} else if (r == 1) {
		r = decode_row(st, s, 0, buf, size_ret);
		if (r == -EIO) {
			hex_short(hash, hex);
			wtg_error("'%s': chunk %s cannot be decoded (the delta is damaged; run "
				  "'wtgfs verify')",
				  st->path, hex);
		}
	}
	sqlite3_reset(s);
out:
	pthread_mutex_unlock(&st->lock);
	return r;
}

int wtg_store_put_sd(struct wtg_store *st, const void *data, size_t len,
		     uint8_t hash_ret[WTG_STORE_HASH_LEN])
{
	sqlite3_stmt *s;

	if (len > INT_MAX)
		return -EINVAL;
	wtg_sha256(data, len, hash_ret);
	pthread_mutex_lock(&st->lock);
	int r = writable(st);
	if (!r)
		r = query(st, Q_SD_PUT, &s);
	if (!r) {
		bind_hash(s, 1, hash_ret);
		sqlite3_bind_blob(s, 2, data, (int)len, SQLITE_STATIC);
		r = write_failed(st, run(st, s));
	}
	pthread_mutex_unlock(&st->lock);
	return r;
}

int wtg_store_get_sd(struct wtg_store *st, const uint8_t hash[WTG_STORE_HASH_LEN],
		     uint8_t **data_ret, size_t *len_ret)
{
	sqlite3_stmt *s;

	pthread_mutex_lock(&st->lock);
	int r = query(st, Q_SD_GET, &s);
	if (r)
		goto out;
	bind_hash(s, 1, hash);
	r = step(st, s);
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
out:
	pthread_mutex_unlock(&st->lock);
	return r;
}

/* ---- inodes ---- */

void wtg_store_inode_release(struct wtg_store_inode *inode)
{
	free(inode->reparse);
	free(inode->object_id);
	free(inode->dos_name);
	inode->reparse = inode->object_id = NULL;
	inode->dos_name = NULL;
}

static int set_inode(struct wtg_store *st, uint64_t ino, const struct wtg_store_inode *in)
{
	static const uint8_t no_sd[WTG_STORE_HASH_LEN];
	sqlite3_stmt *s;
	int r = writable(st);

	if (!r)
		r = query(st, Q_INODE_SET, &s);
	if (r)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_int64(s, 2, top(st));
	sqlite3_bind_int(s, 3, !in);
	if (in) {
		sqlite3_bind_int64(s, 4, in->attributes);
		if (memcmp(in->sd_hash, no_sd, sizeof(no_sd)))
			bind_hash(s, 5, in->sd_hash);
		sqlite3_bind_int64(s, 6, in->crtime);
		sqlite3_bind_int64(s, 7, in->mtime);
		sqlite3_bind_int64(s, 8, in->atime);
		sqlite3_bind_int64(s, 9, in->ctime);
		if (in->reparse)
			sqlite3_bind_blob(s, 10, in->reparse, (int)in->reparse_len, SQLITE_STATIC);
		if (in->object_id)
			sqlite3_bind_blob(s, 11, in->object_id, (int)in->object_id_len,
					  SQLITE_STATIC);
		if (in->dos_name)
			sqlite3_bind_text(s, 12, in->dos_name, -1, SQLITE_STATIC);
	}
	return run(st, s);
}

int wtg_store_set_inode(struct wtg_store *st, uint64_t ino, const struct wtg_store_inode *inode)
{
	pthread_mutex_lock(&st->lock);
	int r = write_failed(st, set_inode(st, ino, inode));
	pthread_mutex_unlock(&st->lock);
	return r;
}

int wtg_store_delete_inode(struct wtg_store *st, uint64_t ino)
{
	sqlite3_stmt *s;

	pthread_mutex_lock(&st->lock);
	int r = set_inode(st, ino, NULL);
	/* what this layer held for it is garbage now */
	for (int q = Q_INODE_DEL_EXTENTS; !r && q <= Q_INODE_DEL_STREAMS; q++) {
		r = query(st, q, &s);
		if (!r) {
			sqlite3_bind_int64(s, 1, (int64_t)ino);
			sqlite3_bind_int64(s, 2, top(st));
			r = run(st, s);
		}
	}
	r = write_failed(st, r);
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
	if (sqlite3_column_type(s, c + 2) != SQLITE_NULL && !column_hash(s, c + 2, in->sd_hash))
		return damaged(st, "a security descriptor reference is not a hash");
	in->crtime = sqlite3_column_int64(s, c + 3);
	in->mtime = sqlite3_column_int64(s, c + 4);
	in->atime = sqlite3_column_int64(s, c + 5);
	in->ctime = sqlite3_column_int64(s, c + 6);
	r = copy_blob(s, c + 7, &in->reparse, &in->reparse_len);
	if (!r)
		r = copy_blob(s, c + 8, &in->object_id, &in->object_id_len);
	if (!r && sqlite3_column_type(s, c + 9) != SQLITE_NULL) {
		in->dos_name = strdup((const char *)sqlite3_column_text(s, c + 9));
		r = in->dos_name ? 0 : -ENOMEM;
	}
	if (r)
		wtg_store_inode_release(in);
	return r;
}

int wtg_store_get_inode(struct wtg_store *st, uint64_t ino, enum wtg_store_state *state_ret,
			struct wtg_store_inode *in)
{
	sqlite3_stmt *s;

	*state_ret = WTG_STORE_BASE;
	pthread_mutex_lock(&st->lock);
	int r = query(st, Q_INODE_GET, &s);
	if (r)
		goto out;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	while ((r = step(st, s)) == 1) {
		if (!in_stack(st, sqlite3_column_int64(s, 0)))
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
out:
	pthread_mutex_unlock(&st->lock);
	return r;
}

int wtg_store_max_ino(struct wtg_store *st, uint64_t *ino_ret)
{
	int64_t v;

	pthread_mutex_lock(&st->lock);
	int r = int_query(st,
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
			 " atime, ctime, reparse, object_id, dos_name FROM inodes"
			 " ORDER BY ino, layer DESC",
    [WTG_STORE_NAMES] = "SELECT dir, name, layer, ino FROM names ORDER BY dir, name, layer DESC",
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
	int r = prepare(st, each_sql[table], &s);
	while (!r && (r = step(st, s)) == 1) {
		r = 0;
		int64_t key = sqlite3_column_int64(s, 0);
		const char *name = (const char *)sqlite3_column_text(s, 1);
		if (!in_stack(st, sqlite3_column_int64(s, 2)))
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
	sqlite3_stmt *s;

	pthread_mutex_lock(&st->lock);
	int r = writable(st);
	if (!r)
		r = query(st, Q_NAME_SET, &s);
	if (!r) {
		sqlite3_bind_int64(s, 1, (int64_t)dir);
		sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, top(st));
		if (ino)
			sqlite3_bind_int64(s, 4, (int64_t)ino);
		r = run(st, s);
	}
	r = write_failed(st, r);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int wtg_store_get_name(struct wtg_store *st, uint64_t dir, const char *name,
		       enum wtg_store_state *state_ret, uint64_t *ino_ret)
{
	sqlite3_stmt *s;

	*state_ret = WTG_STORE_BASE;
	*ino_ret = 0;
	pthread_mutex_lock(&st->lock);
	int r = query(st, Q_NAME_GET, &s);
	if (r)
		goto out;
	sqlite3_bind_int64(s, 1, (int64_t)dir);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	while ((r = step(st, s)) == 1) {
		if (!in_stack(st, sqlite3_column_int64(s, 0)))
			continue;
		*ino_ret = (uint64_t)sqlite3_column_int64(s, 1);
		*state_ret = *ino_ret ? WTG_STORE_PRESENT : WTG_STORE_DELETED;
		r = 0;
		break;
	}
	sqlite3_reset(s);
out:
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

static int collect(struct wtg_store *st, int q, uint64_t key, bool streams,
		   struct list_row **rows_ret, size_t *count_ret)
{
	struct list_row *rows = NULL;
	size_t n = 0;
	char *last = NULL;
	sqlite3_stmt *s;
	int r = query(st, q, &s);

	if (r)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)key);
	while ((r = step(st, s)) == 1) {
		const char *name = (const char *)sqlite3_column_text(s, 0);
		r = 0;
		if (!name || !in_stack(st, sqlite3_column_int64(s, 1)) ||
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

static int list(struct wtg_store *st, int q, uint64_t key, bool streams, wtg_store_name_fn name_fn,
		wtg_store_stream_fn stream_fn, void *arg)
{
	struct list_row *rows = NULL;
	size_t n = 0;

	pthread_mutex_lock(&st->lock);
	int r = collect(st, q, key, streams, &rows, &n);
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
	return list(st, Q_NAME_LIST, dir, false, fn, NULL, arg);
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
	int r = query(st, Q_STREAM_GET, &s);

	*found = *deleted = false;
	*keep = INT64_MAX;
	if (r)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	r = step(st, s);
	if (r == 1 && sqlite3_column_int64(s, 0) == top(st)) {
		*found = true;
		*deleted = sqlite3_column_int(s, 2) != 0;
		if (sqlite3_column_type(s, 3) != SQLITE_NULL)
			*keep = sqlite3_column_int64(s, 3);
	}
	sqlite3_reset(s);
	return r < 0 ? r : 0;
}

static int put_stream(struct wtg_store *st, uint64_t ino, const char *name, uint64_t size,
		      bool deleted, int64_t keep)
{
	sqlite3_stmt *s;
	int r = query(st, Q_STREAM_SET, &s);

	if (r)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, top(st));
	sqlite3_bind_int64(s, 4, (int64_t)size);
	sqlite3_bind_int(s, 5, deleted);
	if (keep != INT64_MAX)
		sqlite3_bind_int64(s, 6, keep);
	r = run(st, s);
	if (r)
		return r;
	r = query(st, Q_EXTENT_CUT, &s);
	if (r)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, top(st));
	sqlite3_bind_int64(s, 4, deleted ? 0 : chunks_for(size));
	return run(st, s);
}

int wtg_store_set_stream(struct wtg_store *st, uint64_t ino, const char *name, uint64_t size,
			 bool fresh)
{
	bool found, deleted;
	int64_t keep;

	if (size > INT64_MAX)
		return -EFBIG;
	pthread_mutex_lock(&st->lock);
	int r = writable(st);
	if (!r)
		r = top_stream(st, ino, name, &found, &deleted, &keep);
	if (!r) {
		if (fresh || deleted)
			keep = 0;
		if (chunks_for(size) < keep)
			keep = chunks_for(size);
		r = put_stream(st, ino, name, size, false, keep);
	}
	r = write_failed(st, r);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int wtg_store_delete_stream(struct wtg_store *st, uint64_t ino, const char *name)
{
	pthread_mutex_lock(&st->lock);
	int r = writable(st);
	if (!r)
		r = write_failed(st, put_stream(st, ino, name, 0, true, 0));
	pthread_mutex_unlock(&st->lock);
	return r;
}

int wtg_store_get_stream(struct wtg_store *st, uint64_t ino, const char *name,
			 enum wtg_store_state *state_ret, uint64_t *size_ret)
{
	sqlite3_stmt *s;

	*state_ret = WTG_STORE_BASE;
	*size_ret = 0;
	pthread_mutex_lock(&st->lock);
	int r = query(st, Q_STREAM_GET, &s);
	if (r)
		goto out;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	while ((r = step(st, s)) == 1) {
		if (!in_stack(st, sqlite3_column_int64(s, 0)))
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
out:
	pthread_mutex_unlock(&st->lock);
	return r;
}

int wtg_store_list_streams(struct wtg_store *st, uint64_t ino, wtg_store_stream_fn fn, void *arg)
{
	return list(st, Q_STREAM_LIST, ino, true, NULL, fn, arg);
}

/*
 * What slot @index resolves to: the topmost extent row in the stack, unless
 * a stream row above it hides what lies below (deleted, or truncated to
 * fewer chunks than @index + 1).  @below: ignore the working layer's extent
 * (what the slot would be without it) but not its stream row.
 */
static int resolve(struct wtg_store *st, uint64_t ino, const char *stream, uint64_t index,
		   bool below, enum wtg_store_state *state_ret, uint8_t hash[WTG_STORE_HASH_LEN])
{
	enum wtg_store_state state = WTG_STORE_BASE;
	int64_t found = 0;
	sqlite3_stmt *s;
	int r = query(st, Q_EXTENT_GET, &s);

	if (r)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_text(s, 2, stream, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, (int64_t)index);
	while ((r = step(st, s)) == 1) {
		int64_t layer = sqlite3_column_int64(s, 0);
		r = 0;
		if ((below && layer == top(st)) || !in_stack(st, layer))
			continue;
		found = layer;
		if (sqlite3_column_type(s, 1) == SQLITE_NULL) {
			state = WTG_STORE_DELETED;
		} else if (sqlite3_column_bytes(s, 1) == 0) {
			/* the base again, below a truncation that hid it */
			state = WTG_STORE_BASE;
			break;
		} else if (column_hash(s, 1, hash)) {
			state = WTG_STORE_PRESENT;
		} else {
			r = damaged(st, "an extent does not name a chunk");
		}
		break;
	}
	sqlite3_reset(s);
	if (r)
		return r;
	r = query(st, Q_STREAM_GET, &s);
	if (r)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_text(s, 2, stream, -1, SQLITE_STATIC);
	while ((r = step(st, s)) == 1) {
		int64_t layer = sqlite3_column_int64(s, 0);
		r = 0;
		if (layer <= found)
			break;
		if (!in_stack(st, layer))
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

int wtg_store_get_extent(struct wtg_store *st, uint64_t ino, const char *stream, uint64_t index,
			 enum wtg_store_state *state_ret, uint8_t hash_ret[WTG_STORE_HASH_LEN])
{
	pthread_mutex_lock(&st->lock);
	int r = resolve(st, ino, stream, index, false, state_ret, hash_ret);
	pthread_mutex_unlock(&st->lock);
	return r;
}


/* The chunk the working layer's row for the slot names: *found. */
static int top_extent(struct wtg_store *st, uint64_t ino, const char *stream, uint64_t index,
		      bool *found, uint8_t hash[WTG_STORE_HASH_LEN])
{
	sqlite3_stmt *s;
	int r = query(st, Q_EXTENT_TOP, &s);

	*found = false;
	if (r)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_text(s, 2, stream, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, (int64_t)index);
	sqlite3_bind_int64(s, 4, top(st));
	r = step(st, s);
	if (r == 1)
		*found = column_hash(s, 0, hash);
	sqlite3_reset(s);
	return r < 0 ? r : 0;
}

/* A chunk the working layer stopped using goes at once when nothing else
 * uses it: a block rewritten a thousand times is stored once, not a
 * thousand times until the next gc. */
static int release_chunk(struct wtg_store *st, const uint8_t hash[WTG_STORE_HASH_LEN])
{
	sqlite3_stmt *s;
	int r = query(st, Q_CHUNK_USED, &s);

	if (r)
		return r;
	bind_hash(s, 1, hash);
	r = step(st, s);
	sqlite3_reset(s);
	if (r != 0)
		return r < 0 ? r : 0;
	r = query(st, Q_CHUNK_DEL, &s);
	if (r)
		return r;
	bind_hash(s, 1, hash);
	return run(st, s);
}

/* Drops the working layer's row for the slot, and its chunk if unused. */
static int drop_extent(struct wtg_store *st, uint64_t ino, const char *stream, uint64_t index)
{
	uint8_t old[WTG_STORE_HASH_LEN];
	bool had;
	sqlite3_stmt *s;
	int r = top_extent(st, ino, stream, index, &had, old);

	if (!r)
		r = query(st, Q_EXTENT_DEL, &s);
	if (r)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_text(s, 2, stream, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, (int64_t)index);
	sqlite3_bind_int64(s, 4, top(st));
	r = run(st, s);
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
	int r = writable(st);
	if (!r)
		r = resolve(st, ino, stream, index, true, &below, below_hash);
	if (r)
		goto out;
	if (base ? below == WTG_STORE_BASE
		 : (!hash && below == WTG_STORE_DELETED) ||
		       (hash && below == WTG_STORE_PRESENT &&
			!memcmp(hash, below_hash, sizeof(below_hash)))) {
		r = drop_extent(st, ino, stream, index);
	} else if (!(r = top_extent(st, ino, stream, index, &had, old))) {
		r = query(st, Q_EXTENT_SET, &s);
		if (r)
			goto out;
		sqlite3_bind_int64(s, 1, (int64_t)ino);
		sqlite3_bind_text(s, 2, stream, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, (int64_t)index);
		sqlite3_bind_int64(s, 4, top(st));
		if (base)
			sqlite3_bind_zeroblob(s, 5, 0); /* empty, not NULL: "the base" */
		else if (hash)
			bind_hash(s, 5, hash);
		r = run(st, s);
	}
	if (!r && had && (!hash || memcmp(old, hash, sizeof(old))))
		r = release_chunk(st, old);
out:
	r = write_failed(st, r);
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

/* ---- layers and snapshots ---- */

/* Opens a new working layer on @parent and makes it HEAD, inside the open
 * transaction. */
static int new_head(struct wtg_store *st, int64_t parent, int64_t *id_ret)
{
	sqlite3_stmt *s;
	int r = prepare(st, "INSERT INTO layers(parent, created, sealed) VALUES(?1, ?2, NULL)", &s);

	if (r)
		return r;
	sqlite3_bind_int64(s, 1, parent);
	sqlite3_bind_int64(s, 2, now());
	r = run(st, s);
	sqlite3_finalize(s);
	if (r)
		return r;
	*id_ret = sqlite3_last_insert_rowid(st->db);
	return put_meta(st, "head", SQLITE_INTEGER, *id_ret, NULL, 0);
}

/* Runs @fn in its own transaction after committing the open batch. */
static int transaction(struct wtg_store *st, int (*fn)(struct wtg_store *, const void *, int64_t *),
		       const void *arg)
{
	int64_t new_top;
	int r;

	if (st->read_only)
		return -EROFS;
	r = commit_locked(st, true);
	if (!r)
		r = writable(st);
	if (r)
		return r;
	r = fn(st, arg, &new_top);
	if (r) {
		if (st->in_batch)
			sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		st->in_batch = false;
		return r;
	}
	r = commit_locked(st, true);
	if (!r)
		r = load_stack(st, new_top);
	return r;
}

struct snap_args {
	const char *name, *message;
};

static int snapshot_fn(struct wtg_store *st, const void *arg, int64_t *top_ret)
{
	const struct snap_args *a = arg;
	sqlite3_stmt *s;
	int r = prepare(st,
			"INSERT INTO snapshots(name, layer, message, created)"
			" VALUES(?1, ?2, ?3, ?4)",
			&s);

	if (r)
		return r;
	sqlite3_bind_text(s, 1, a->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, top(st));
	if (a->message)
		sqlite3_bind_text(s, 3, a->message, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, now());
	r = run(st, s);
	sqlite3_finalize(s);
	if (r == -EEXIST) {
		wtg_error("'%s': there is a snapshot '%s' already (choose another name)", st->path,
			  a->name);
		return r;
	}
	if (r)
		return r;
	r = prepare(st, "UPDATE layers SET sealed = ?1 WHERE id = ?2", &s);
	if (r)
		return r;
	sqlite3_bind_int64(s, 1, now());
	sqlite3_bind_int64(s, 2, top(st));
	r = run(st, s);
	sqlite3_finalize(s);
	return r ? r : new_head(st, top(st), top_ret);
}

int wtg_store_snapshot(struct wtg_store *st, const char *name, const char *message)
{
	struct snap_args a = {name, message};

	if (!name || !*name)
		return -EINVAL;
	pthread_mutex_lock(&st->lock);
	int r = transaction(st, snapshot_fn, &a);
	pthread_mutex_unlock(&st->lock);
	return r;
}

static int rollback_fn(struct wtg_store *st, const void *arg, int64_t *top_ret)
{
	int64_t layer;
	int r = layer_of_snapshot(st, arg, &layer);
	return r ? r : new_head(st, layer, top_ret);
}

int wtg_store_rollback(struct wtg_store *st, const char *name)
{
	pthread_mutex_lock(&st->lock);
	int r = transaction(st, rollback_fn, name);
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
	r = step(st, s);
	if (r <= 0)
		return r ? r : damaged(st, "a layer of the stack is missing");
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
		r = int_query(st, "SELECT value FROM meta WHERE key = 'head'", 0, &head);
	if (!r)
		r = prepare(st,
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

/* ---- verify and gc ---- */

/* Runs @sql; each row it returns is a problem, described by its columns. */
static int problems(struct wtg_store *st, const char *sql, const char *what, uint64_t *count)
{
	sqlite3_stmt *s;
	int r = prepare(st, sql, &s);

	if (r)
		return r;
	while ((r = step(st, s)) == 1) {
		const char *detail = (const char *)sqlite3_column_text(s, 0);
		if (++*count <= 20)
			wtg_error("'%s': %s%s%s", st->path, what, detail ? ": " : "",
				  detail ? detail : "");
	}
	sqlite3_finalize(s);
	return r < 0 ? r : 0;
}

static int verify_chunks(struct wtg_store *st, struct wtg_store_report *rep, uint8_t *buf)
{
	sqlite3_stmt *s;
	int r = prepare(st, "SELECT hash, size, codec, data FROM chunks", &s);

	if (r)
		return r;
	while ((r = step(st, s)) == 1) {
		uint8_t key[WTG_STORE_HASH_LEN], sum[WTG_STORE_HASH_LEN];
		char hex[2 * WTG_STORE_HASH_LEN + 1] = "?";
		size_t size;
		const char *bad = NULL;

		rep->chunks++;
		rep->stored_bytes += (uint64_t)sqlite3_column_bytes(s, 3);
		if (!column_hash(s, 0, key)) {
			bad = "a chunk's key is not a hash";
		} else if (decode_row(st, s, 1, buf, &size)) {
			bad = "cannot be decoded";
		} else {
			rep->chunk_bytes += size;
			wtg_sha256(buf, size, sum);
			if (memcmp(sum, key, sizeof(key)))
				bad = "its bytes do not hash to its key";
		}
		if (bad) {
			if (sqlite3_column_bytes(s, 0) == WTG_STORE_HASH_LEN)
				hex_short(key, hex);
			if (++rep->problems <= 20)
				wtg_error("'%s': chunk %s: %s", st->path, hex, bad);
		}
	}
	sqlite3_finalize(s);
	return r < 0 ? r : 0;
}

int wtg_store_verify(struct wtg_store *st, struct wtg_store_report *report)
{
	struct wtg_store_report rep = {0};
	uint8_t *buf = malloc(WTG_STORE_CHUNK_SIZE);
	sqlite3_stmt *s = NULL;
	int64_t v = 0;
	int r;

	if (!buf)
		return -ENOMEM;
	pthread_mutex_lock(&st->lock);
	r = prepare(st, "PRAGMA integrity_check(20)", &s);
	while (!r && (r = step(st, s)) == 1) {
		const char *msg = (const char *)sqlite3_column_text(s, 0);
		r = 0;
		if (msg && strcmp(msg, "ok")) {
			/* one line per problem: SQLite joins several with newlines */
			char line[512];
			snprintf(line, sizeof(line), "%s", msg);
			for (char *c = line; *c; c++)
				if (*c == '\n')
					*c = ' ';
			rep.problems++;
			wtg_error("'%s': the SQLite structure is damaged: %s", st->path, line);
		}
	}
	sqlite3_finalize(s);
	r = r < 0 ? r : 0;
	if (!r && rep.problems)
		goto out; /* the rest would only read damage */
	if (!r)
		r = int_query(st, "SELECT count(*) FROM layers", 0, &v);
	rep.layers = (uint64_t)v;
	if (!r)
		r = problems(st,
			     "SELECT 'layer ' || id FROM layers WHERE parent IS NOT NULL AND"
			     " (parent >= id OR parent NOT IN (SELECT id FROM layers))",
			     "a layer's parent is missing or younger", &rep.problems);
	if (!r)
		r = problems(st,
			     "SELECT value FROM meta WHERE key = 'head' AND value NOT IN"
			     " (SELECT id FROM layers WHERE sealed IS NULL)",
			     "HEAD is not an open layer", &rep.problems);
	if (!r)
		r = problems(st,
			     "SELECT quote(name) FROM snapshots WHERE layer NOT IN"
			     " (SELECT id FROM layers WHERE sealed IS NOT NULL)",
			     "a snapshot's layer is missing or open", &rep.problems);
	if (!r)
		r = problems(st,
			     "SELECT 'inode ' || ino || ' stream ' || quote(stream) || ' chunk ' ||"
			     " idx || ' in layer ' || layer FROM extents e WHERE length(chunk) > 0"
			     " AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.hash = e.chunk)",
			     "an extent refers to a missing chunk", &rep.problems);
	if (!r)
		r = problems(st,
			     "SELECT 'inode ' || ino || ' in layer ' || layer FROM inodes i"
			     " WHERE sd IS NOT NULL AND NOT EXISTS"
			     " (SELECT 1 FROM sds WHERE sds.hash = i.sd)",
			     "an inode refers to a missing security descriptor", &rep.problems);
	if (!r)
		r = problems(
		    st,
		    "SELECT 'layer ' || layer FROM (SELECT layer FROM inodes UNION"
		    " SELECT layer FROM names UNION SELECT layer FROM streams UNION"
		    " SELECT layer FROM extents) WHERE layer NOT IN (SELECT id FROM layers)",
		    "records of a missing layer", &rep.problems);
	if (!r)
		r = problems(st, "SELECT quote(hash) FROM sds WHERE length(hash) != 32",
			     "a security descriptor's key is not a hash", &rep.problems);
	if (!r)
		r = int_query(st, "SELECT count(*) FROM extents", 0, &v);
	rep.extents = (uint64_t)v;
	if (!r)
		r = verify_chunks(st, &rep, buf);
out:
	pthread_mutex_unlock(&st->lock);
	free(buf);
	if (report)
		*report = rep;
	if (r)
		return r;
	return rep.problems ? -EIO : 0;
}

static int gc_fn(struct wtg_store *st, const void *arg, int64_t *top_ret)
{
	uint64_t *freed = (uint64_t *)arg;
	int r =
	    exec(st, "CREATE TEMP TABLE live AS WITH RECURSIVE up(id) AS ("
		     " SELECT value FROM meta WHERE key = 'head' UNION SELECT layer FROM snapshots"
		     " UNION SELECT parent FROM layers JOIN up ON layers.id = up.id"
		     "  WHERE parent IS NOT NULL) SELECT id FROM up;"
		     "DELETE FROM inodes WHERE layer NOT IN live;"
		     "DELETE FROM names WHERE layer NOT IN live;"
		     "DELETE FROM streams WHERE layer NOT IN live;"
		     "DELETE FROM extents WHERE layer NOT IN live;"
		     "DELETE FROM layers WHERE id NOT IN live;"
		     "DROP TABLE live;"
		     "DELETE FROM sds WHERE hash NOT IN"
		     " (SELECT sd FROM inodes WHERE sd IS NOT NULL);");
	if (r)
		return r;
	r = exec(st, "DELETE FROM chunks WHERE hash NOT IN"
		     " (SELECT chunk FROM extents WHERE chunk IS NOT NULL)");
	*freed = (uint64_t)sqlite3_changes(st->db);
	*top_ret = top(st);
	return r;
}

int wtg_store_gc(struct wtg_store *st, uint64_t *freed_ret)
{
	uint64_t freed = 0;

	pthread_mutex_lock(&st->lock);
	int r = transaction(st, gc_fn, &freed);
	if (!r)
		r = exec(st, "PRAGMA incremental_vacuum");
	pthread_mutex_unlock(&st->lock);
	if (freed_ret)
		*freed_ret = freed;
	return r;
}
