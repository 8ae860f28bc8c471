/*
 * Creating and opening a delta: the schema, cheap checks of the file's
 * header before SQLite sees it, the connection's settings, the writer's
 * lock, the record of the base a delta is bound to.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wtgfs/log.h"

#include "store_int.h"

/* The SQLite file header (offsets as in sqlite.org/fileformat.html). */
#define HDR_MAGIC "SQLite format 3"
#define HDR_PAGE_SIZE 16      /* be16, 1 means 65536 */
#define HDR_CHANGE_COUNTER 24 /* be32 */
#define HDR_PAGE_COUNT 28     /* be32, valid when VALID_FOR equals CHANGE_COUNTER */
#define HDR_USER_VERSION 60   /* be32 */
#define HDR_APP_ID 68	      /* be32 */
#define HDR_VALID_FOR 92      /* be32 */
#define HDR_SIZE 100

/* The index of the base's metadata (format 4, base.c): one packed row per
 * inode, names by (directory, exact name), security descriptors by id. */
#define BASE_INDEX_SQL                                                                     \
	"CREATE TABLE IF NOT EXISTS base_inodes(ino INTEGER PRIMARY KEY, data BLOB NOT NULL);" \
	"CREATE TABLE IF NOT EXISTS base_names(dir INTEGER, name TEXT, ino INTEGER NOT NULL,"  \
	" PRIMARY KEY(dir, name)) WITHOUT ROWID;"                                            \
	"CREATE TABLE IF NOT EXISTS base_sds(id INTEGER PRIMARY KEY, data BLOB NOT NULL);"

/* The base image's metadata resource, decoded, in parts stored as chunks
 * are (base.c): optional, no format of its own; a writer adds the table. */
#define BASE_METADATA_SQL                                                                          \
	"CREATE TABLE IF NOT EXISTS base_metadata(part INTEGER PRIMARY KEY,"                       \
	" size INTEGER NOT NULL, codec INTEGER NOT NULL, data BLOB NOT NULL);"                     \
	"CREATE TABLE IF NOT EXISTS base_census(id INTEGER PRIMARY KEY, data BLOB NOT NULL);"

/* Small fsynced writes not yet folded into their chunk (see wtgfs/store.h
 * and journal.c): since format 6 keyed by their sequence number alone, so
 * that a row goes at the b-tree's right edge; the inode's times a row may
 * carry come before its data, in the part of the row its leaf holds.
 * Format 5 keyed them by (layer, ino, stream, idx, seq), without rowid. */
#define JOURNAL_COLUMNS                                                                       \
	"(seq INTEGER PRIMARY KEY, layer INTEGER NOT NULL, ino INTEGER NOT NULL,"             \
	" stream TEXT NOT NULL, idx INTEGER NOT NULL, off INTEGER NOT NULL, mtime INTEGER,"  \
	" ctime INTEGER, data BLOB NOT NULL)"
#define JOURNAL_SQL "CREATE TABLE journal" JOURNAL_COLUMNS ";"

/* The SHA-1 a mount saw a stream written with, under the fingerprint of
 * the slots it was stored in (wtgfs/store.h): an export names the blob
 * without reading the stream's bytes again.  Optional (no format of its
 * own): an older delta gets it on its first writable open, and a read-only
 * open of one sees an empty table of its own. */
#define SUMS_COLUMNS                                                                        \
	"(fingerprint BLOB PRIMARY KEY, sha1 BLOB NOT NULL, layer INTEGER NOT NULL,"         \
	" ino INTEGER NOT NULL, stream TEXT NOT NULL, size INTEGER NOT NULL)"
#define SUMS_SQL "CREATE TABLE IF NOT EXISTS stream_sums" SUMS_COLUMNS ";"

static const char schema_sql[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
    "CREATE TABLE layers(id INTEGER PRIMARY KEY, parent INTEGER, created INTEGER NOT NULL,"
    " sealed INTEGER);"
    /* abandoned: when a rollback left the layer (NULL: a snapshot) */
    "CREATE TABLE snapshots(name TEXT PRIMARY KEY, layer INTEGER NOT NULL UNIQUE, message TEXT,"
    " created INTEGER NOT NULL, abandoned INTEGER);"
    /* rowid tables: rows of up to 64 KiB do not belong in a WITHOUT ROWID b-tree */
    "CREATE TABLE chunks(hash BLOB PRIMARY KEY, size INTEGER NOT NULL, codec INTEGER NOT NULL,"
    " data BLOB NOT NULL);"
    "CREATE TABLE sds(hash BLOB PRIMARY KEY, data BLOB NOT NULL);"
    "CREATE TABLE inodes(ino INTEGER, layer INTEGER, deleted INTEGER NOT NULL,"
    " attributes INTEGER, sd BLOB, crtime INTEGER, mtime INTEGER, atime INTEGER, ctime INTEGER,"
    " reparse BLOB, object_id BLOB, dos_name TEXT, ea BLOB, PRIMARY KEY(ino, layer))"
    " WITHOUT ROWID;"
    /* inodes.dos_name: what format 1 and 2 said (see upgrade_dos_names) */
    "CREATE TABLE names(dir INTEGER, name TEXT, layer INTEGER, ino INTEGER, dos_name TEXT,"
    " PRIMARY KEY(dir, name, layer)) WITHOUT ROWID;"
    "CREATE TABLE streams(ino INTEGER, name TEXT, layer INTEGER, size INTEGER NOT NULL,"
    " deleted INTEGER NOT NULL, keep INTEGER, PRIMARY KEY(ino, name, layer)) WITHOUT ROWID;"
    "CREATE TABLE extents(ino INTEGER, stream TEXT, idx INTEGER, layer INTEGER, chunk BLOB,"
    " PRIMARY KEY(ino, stream, idx, layer)) WITHOUT ROWID;"
    "CREATE INDEX inodes_layer ON inodes(layer);"
    "CREATE INDEX names_layer ON names(layer);"
    "CREATE INDEX streams_layer ON streams(layer);"
    "CREATE INDEX extents_layer ON extents(layer, chunk);"
    "CREATE INDEX extents_chunk ON extents(chunk);"
    "CREATE INDEX names_ino ON names(ino);"
    BASE_INDEX_SQL
    BASE_METADATA_SQL
    SUMS_SQL
    JOURNAL_SQL;

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
	int r = store_int_query(st, "PRAGMA application_id", 0, &app);

	if (!r)
		r = store_int_query(st, "PRAGMA user_version", 0, &ver);
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
		return store_damaged(st, "no format version");
	return 0;
}

/* One byte far past the bytes SQLite locks (around 1 GiB), locked with
 * open file description locks: they belong to this handle's descriptor,
 * so they conflict with another handle's in this process too. */
#define VIEWS_LOCK_BYTE 0x7ffffffffff00000LL

static int views_fcntl(int fd, short type)
{
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = VIEWS_LOCK_BYTE,
			   .l_len = 1};
	return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

int store_views_lock(struct wtg_store *st, bool exclusive, const char *what)
{
	int r = views_fcntl(st->fd, exclusive ? F_WRLCK : F_RDLCK);

	if (r == -EAGAIN || r == -EACCES) {
		if (exclusive)
			wtg_error("cannot %s '%s': a snapshot of it is mounted with --at (unmount "
				  "that first)",
				  what, st->path);
		else
			wtg_error("cannot open '%s': %s (try again when it is done)", st->path, what);
		return -EBUSY;
	}
	return r;
}

void store_views_unlock(struct wtg_store *st)
{
	views_fcntl(st->fd, F_UNLCK);
}

/* True when table @table has column @column. */
static int has_column(struct wtg_store *st, const char *table, const char *column, bool *yes)
{
	sqlite3_stmt *s;
	int r = store_prepare(st, "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2", &s);

	if (r)
		return r;
	sqlite3_bind_text(s, 1, table, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, column, -1, SQLITE_STATIC);
	r = store_step(st, s);
	sqlite3_finalize(s);
	*yes = r == 1;
	return r < 0 ? r : 0;
}

/*
 * Brings a delta of an older format up to this one.  Format 2 added the
 * inodes' $EA (inodes.ea): a writer adds the column and records the new
 * format, so an older wtgfs, which would drop EAs it does not know when it
 * rewrites an inode, refuses the file; a reader leaves the file alone and
 * sees the old table through a temporary view with the column empty.
 */
static int upgrade_format(struct wtg_store *st)
{
	bool has_ea;
	int r = has_column(st, "inodes", "ea", &has_ea);

	if (r || has_ea)
		return r;
	if (st->read_only)
		return store_exec(st, "CREATE TEMP VIEW inodes AS SELECT *, NULL AS ea FROM"
				      " main.inodes");
	r = store_exec(st, "BEGIN IMMEDIATE; ALTER TABLE inodes ADD COLUMN ea BLOB;"
			   " PRAGMA user_version = 2; COMMIT");
	if (r && !sqlite3_get_autocommit(st->db))
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

/*
 * Formats 1 and 2 kept a DOS name on the inode record, format 3 keeps it on
 * the name record (names.dos_name), as NTFS does.  The inodes column stays,
 * and says what the older format said for the view to carry over to a
 * name: "" for none, since NULL there means "nothing" in the records
 * written since.  A writer upgrades the file in place; a reader sees it so
 * through temporary views (which hide the file's tables).
 */
static int upgrade_dos_names(struct wtg_store *st)
{
	bool has_dos, has_ea;
	char sql[512];
	int64_t ver;
	int r = has_column(st, "names", "dos_name", &has_dos);

	if (!r)
		r = store_int_query(st, "PRAGMA user_version", 0, &ver);
	if (!r && has_dos && ver < 3 && !st->read_only)
		r = store_exec(st, "PRAGMA user_version = 3");
	if (r || has_dos)
		return r;
	if (!st->read_only) {
		r = store_exec(st, "BEGIN IMMEDIATE; ALTER TABLE names ADD COLUMN dos_name TEXT;"
				   " UPDATE inodes SET dos_name = '' WHERE dos_name IS NULL"
				   " AND deleted = 0; PRAGMA user_version = 3; COMMIT");
		if (r && !sqlite3_get_autocommit(st->db))
			sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		return r;
	}
	/* the file's own table, under the view upgrade_format may have made */
	int64_t n;
	r = store_int_query(st,
			    "SELECT count(*) FROM pragma_table_info('inodes', 'main')"
			    " WHERE name = 'ea'",
			    0, &n);
	has_ea = n > 0;
	if (!r)
		r = store_exec(st, "DROP VIEW IF EXISTS temp.inodes");
	snprintf(sql, sizeof(sql),
		 "CREATE TEMP VIEW names AS SELECT dir, name, layer, ino, NULL AS dos_name"
		 " FROM main.names;"
		 " CREATE TEMP VIEW inodes AS SELECT ino, layer, deleted, attributes, sd, crtime,"
		 " mtime, atime, ctime, reparse, object_id, coalesce(dos_name, '') AS dos_name,"
		 " %s AS ea FROM main.inodes",
		 has_ea ? "ea" : "NULL");
	if (!r)
		r = store_exec(st, sql);
	return r;
}

/* Format 4 keeps an index of the base's metadata (base.c).  A writer adds
 * its tables to an older delta, empty: the index is built by whoever loads
 * the base next with the delta open for writing (wtgfs/base_index.h).  A
 * reader of an older delta has no index and loads the base instead. */
static int upgrade_base_index(struct wtg_store *st)
{
	int64_t ver;
	int r = store_int_query(st, "PRAGMA user_version", 0, &ver);

	if (r || ver >= 4 || st->read_only)
		return r;
	/* a mark of an index from before (a file made by hand) names none */
	r = store_exec(st, "BEGIN IMMEDIATE; " BASE_INDEX_SQL " DELETE FROM meta WHERE key ="
			   " 'base_indexed'; PRAGMA user_version = 4; COMMIT");
	if (r && !sqlite3_get_autocommit(st->db))
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

/* Deltas made before rollbacks kept what they left lack the column that
 * marks such layers (any format): a writer adds it, a reader sees it as
 * NULL through a view of its own (temporary names hide the file's). */
static int upgrade_snapshots(struct wtg_store *st)
{
	bool has;
	int r = has_column(st, "snapshots", "abandoned", &has);

	if (r || has)
		return r;
	if (!st->read_only)
		return store_exec(st, "ALTER TABLE snapshots ADD COLUMN abandoned INTEGER");
	return store_exec(st, "CREATE TEMP VIEW snapshots AS SELECT name, layer, message, created,"
			      " NULL AS abandoned FROM main.snapshots");
}

/* A reader of a delta older than the stream sums (a writer made the table
 * on connecting) sees an empty table of its own.  A table of a first form
 * without the stream each sum was put for (never in a release) is a
 * cache: a writer makes it anew, a reader sees an empty one. */
static int upgrade_sums(struct wtg_store *st)
{
	int64_t n;
	bool full = false;
	int r = store_int_query(st, "SELECT count(*) FROM main.sqlite_master WHERE type = 'table'"
				    " AND name = 'stream_sums'", 0, &n);

	if (!r && n)
		r = has_column(st, "stream_sums", "ino", &full);
	if (r || full)
		return r;
	if (!st->read_only)
		return store_exec(st, "DROP TABLE IF EXISTS stream_sums; " SUMS_SQL);
	return store_exec(st, "CREATE TEMP TABLE stream_sums" SUMS_COLUMNS);
}

/*
 * Format 5 added the journal, format 6 keyed it by sequence alone and let
 * rows carry the inode's times.  A writer adds the table, or moves the rows
 * of a format 5 one (a crash may have left some) into the new one in their
 * order, and records the format: an older wtgfs, which would miss rows or
 * the times they carry, refuses the file.  A reader of an older delta sees
 * an empty journal, or the format 5 one through a view of its own.
 */
static int upgrade_journal(struct wtg_store *st)
{
	int64_t n;
	bool has_times = false;
	int r = store_int_query(st,
				"SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND"
				" name = 'journal'",
				0, &n);

	if (!r && n)
		r = has_column(st, "journal", "mtime", &has_times);
	if (r || has_times)
		return r;
	if (st->read_only)
		return store_exec(st, n ? "CREATE TEMP VIEW journal AS SELECT seq, layer, ino, stream,"
					  " idx, off, NULL AS mtime, NULL AS ctime, data FROM"
					  " main.journal"
					: "CREATE TEMP TABLE journal" JOURNAL_COLUMNS);
	if (!n)
		r = store_exec(st, "BEGIN IMMEDIATE; " JOURNAL_SQL " PRAGMA user_version = 6; COMMIT");
	else
		r = store_exec(st, "BEGIN IMMEDIATE; ALTER TABLE journal RENAME TO journal_5; "
				   JOURNAL_SQL
				   " INSERT INTO journal(layer, ino, stream, idx, off, data)"
				   " SELECT layer, ino, stream, idx, off, data FROM journal_5"
				   " ORDER BY layer, ino, stream, idx, seq;"
				   " DROP TABLE journal_5; PRAGMA user_version = 6; COMMIT");
	if (r && !sqlite3_get_autocommit(st->db))
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

static int load_meta(struct wtg_store *st, int64_t *head_ret)
{
	sqlite3_stmt *s;
	unsigned seen = 0;
	int r = store_prepare(st, "SELECT key, value FROM meta", &s);

	if (r)
		return r;
	*head_ret = 0;
	while ((r = store_step(st, s)) == 1) {
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
			   store_column_hash(s, 1, st->base.meta_hash)) {
			seen |= 16;
		} else if (!strcmp(key, "base_indexed")) {
			st->base_indexed = true;
		} else if (!strcmp(key, "head")) {
			*head_ret = sqlite3_column_int64(s, 1);
			seen |= 32;
		}
	}
	sqlite3_finalize(s);
	if (r < 0)
		return r;
	if (seen != 63)
		return store_damaged(st, "its record of the base or of HEAD is missing");
	return 0;
}

int store_read_stack(struct wtg_store *st, int64_t layer, int64_t **stack_ret, size_t *count_ret)
{
	int64_t *stack = NULL;
	size_t n = 0;
	sqlite3_stmt *s;
	int r = store_prepare(st, "SELECT parent FROM layers WHERE id = ?1", &s);

	if (r)
		return r;
	while (layer > 0) {
		if (n && layer >= stack[n - 1]) {
			r = store_damaged(st, "the layers form a loop");
			break;
		}
		int64_t *p = realloc(stack, (n + 1) * sizeof(*p));
		if (!p) {
			r = -ENOMEM;
			break;
		}
		stack = p;
		stack[n++] = layer;
		sqlite3_reset(s);
		sqlite3_bind_int64(s, 1, layer);
		r = store_step(st, s);
		if (r <= 0) {
			if (r == 0)
				r = store_damaged(st, "a layer of the stack is missing");
			break;
		}
		layer = sqlite3_column_type(s, 0) == SQLITE_NULL ? 0 : sqlite3_column_int64(s, 0);
		r = 0;
	}
	sqlite3_finalize(s);
	if (r) {
		free(stack);
		return r;
	}
	*stack_ret = stack;
	*count_ret = n;
	return 0;
}

int store_load_stack(struct wtg_store *st, int64_t layer)
{
	int64_t *stack;
	size_t n;
	int r = store_read_stack(st, layer, &stack, &n);

	if (r)
		return r;
	if (!n) {
		free(stack);
		return store_damaged(st, "no working layer");
	}
	free(st->stack);
	st->stack = stack;
	st->nstack = n;
	return 0;
}

int store_layer_of_snapshot(struct wtg_store *st, const char *name, int64_t *layer_ret)
{
	sqlite3_stmt *s;
	int r = store_prepare(st, "SELECT layer FROM snapshots WHERE name = ?1", &s);

	if (r)
		return r;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	r = store_step(st, s);
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
	store_stop_checkpoints(st);
	store_journal_forget(st);
	for (int i = 0; i < Q_COUNT; i++)
		sqlite3_finalize(st->q[i]);
	if (st->wal_fd >= 0)
		close(st->wal_fd);
	if (st->db)
		sqlite3_close(st->db);
	if (st->fd >= 0)
		close(st->fd);
	wtg_chunk_codec_free(st->codec);
	pthread_mutex_destroy(&st->lock);
	pthread_mutex_destroy(&st->ckpt_lock);
	while (st->nspare)
		wtg_chunk_codec_free(st->spare[--st->nspare]);
	pthread_mutex_destroy(&st->spare_lock);
	pthread_cond_destroy(&st->ckpt_cond);
	free(st->zbuf);
	free(st->stack);
	free(st->path);
	free(st);
}

/* Opens the SQLite connection with the settings every handle uses. */
static int connect_db(struct wtg_store *st, int flags)
{
	int rc = sqlite3_open_v2(st->path, &st->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
	int r;

	if (rc != SQLITE_OK) {
		r = st->db ? store_sql_error(st, rc) : -ENOMEM;
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
	r = store_exec(st, "PRAGMA cell_size_check = ON; PRAGMA cache_size = -65536");
	if (!r && !st->read_only)
		/* NORMAL: SQLite syncs the WAL only at checkpoints (order kept,
		 * so the file is always consistent); durable commits fdatasync
		 * the WAL themselves. */
		r = store_exec(st, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
	if (!r && !st->read_only)
		/* until wtg_store_start() gives checkpoints a thread: every
		 * 16 MiB of WAL, not 4 (each syncs the WAL and the database, and
		 * a copy in of 1 GiB paid for 165 of them) */
		sqlite3_wal_autocheckpoint(st->db, STORE_AUTOCHECKPOINT);
	if (!r && !st->read_only) /* deltas made before it had this index */
		r = store_exec(st, "CREATE INDEX IF NOT EXISTS extents_chunk ON extents(chunk);"
				   "CREATE INDEX IF NOT EXISTS names_ino ON names(ino);" SUMS_SQL
				   BASE_METADATA_SQL);
	if (r) { /* a caller may try again read-only: no connection left open */
		sqlite3_close(st->db);
		st->db = NULL;
	}
	return r;
}

/* Every upgrade of an older format, in order, on the open connection. */
static int upgrade(struct wtg_store *st)
{
	int r = upgrade_format(st);

	if (!r)
		r = upgrade_dos_names(st);
	if (!r)
		r = upgrade_snapshots(st);
	if (!r)
		r = upgrade_base_index(st);
	if (!r) /* after the base index: it sets the format to 4 */
		r = upgrade_journal(st);
	if (!r)
		r = upgrade_sums(st);
	return r;
}

int wtg_store_after_fork(struct wtg_store *st)
{
	store_stop_checkpoints(st); /* started in this process only */
	pthread_mutex_lock(&st->lock);
	int r = store_commit_locked(st, true);
	for (int i = 0; i < Q_COUNT; i++) {
		sqlite3_finalize(st->q[i]);
		st->q[i] = NULL;
	}
	sqlite3_close(st->db);
	st->db = NULL;
	if (st->wal_fd >= 0) /* the next connection's log may be another file */
		close(st->wal_fd);
	st->wal_fd = -1;
	if (!r)
		r = connect_db(st, st->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE);
	if (!r) /* a reader's view of an old table is per connection */
		r = upgrade(st);
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
	pthread_mutex_init(&st->ckpt_lock, NULL);
	pthread_mutex_init(&st->spare_lock, NULL);
	pthread_cond_init(&st->ckpt_cond, NULL);
	st->wal_fd = -1;
	st->read_only = opt->read_only || opt->at;
	st->verifying = opt->verifying;
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
	r = connect_db(st,
		       (st->read_only && !alone ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE));
	if (r && r != -EIO && alone) /* a read-only file; damage stays damage */
		r = connect_db(st, SQLITE_OPEN_READONLY);
	if (!r)
		r = check_format(st);
	if (!r)
		r = upgrade(st);
	if (!r && st->read_only && opt->consistent && !opt->at)
		r = store_exec(st, "BEGIN"); /* the snapshot starts with load_meta's read */
	if (!r)
		r = load_meta(st, &head);
	if (!r && st->base_indexed) {
		/* the mark without its tables (a file made by hand) is no index */
		int64_t n;
		r = store_int_query(st,
				    "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND"
				    " name IN ('base_inodes', 'base_names', 'base_sds')",
				    0, &n);
		st->base_indexed = !r && n == 3;
	}
	if (r)
		goto out_free;
	layer = head;
	if (opt->at) {
		r = store_layer_of_snapshot(st, opt->at, &layer);
		if (r)
			goto out_free;
		/* a view of a snapshot lives long: a writer may come meanwhile,
		 * but not a squash or gc that would drop what it reads */
		if (alone)
			flock(st->fd, LOCK_UN);
		r = store_views_lock(st, false, "it is being squashed or collected");
		if (r)
			goto out_free;
	}
	r = store_load_stack(st, layer);
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
	if (st->read_only && st->db && !sqlite3_get_autocommit(st->db))
		sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL); /* a consistent read's */
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

bool wtg_store_writable(const struct wtg_store *st)
{
	return !st->read_only;
}

/* ---- creating ---- */

int store_put_meta(struct wtg_store *st, const char *key, int type, int64_t i, const void *p,
		   int len)
{
	sqlite3_stmt *s;
	int r = store_prepare(st, "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)", &s);

	if (r)
		return r;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	if (type == SQLITE_INTEGER)
		sqlite3_bind_int64(s, 2, i);
	else if (type == SQLITE_TEXT)
		sqlite3_bind_text(s, 2, p, len, SQLITE_STATIC);
	else
		sqlite3_bind_blob(s, 2, p, len, SQLITE_STATIC);
	r = store_run(st, s);
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
	r = store_exec(&st, sql);
	if (!r)
		r = store_exec(&st, "BEGIN");
	if (!r)
		r = store_exec(&st, schema_sql);
	if (!r)
		r = store_exec(&st,
			       "INSERT INTO layers(id, parent, created, sealed) VALUES(1, NULL,"
			       " strftime('%s', 'now'), NULL)");
	if (!r)
		r = store_put_meta(&st, "head", SQLITE_INTEGER, 1, NULL, 0);
	if (!r)
		r = store_put_meta(&st, "created", SQLITE_INTEGER, store_now(), NULL, 0);
	if (!r)
		r = store_put_meta(&st, "base_path", SQLITE_TEXT, 0, base->path, -1);
	if (!r)
		r = store_put_meta(&st, "base_size", SQLITE_INTEGER, (int64_t)base->size, NULL, 0);
	if (!r)
		r = store_put_meta(&st, "base_guid", SQLITE_TEXT, 0, base->guid, -1);
	if (!r)
		r = store_put_meta(&st, "base_index", SQLITE_INTEGER, base->index, NULL, 0);
	if (!r)
		r = store_put_meta(&st, "base_meta_hash", SQLITE_BLOB, 0, base->meta_hash,
				   WTG_STORE_HASH_LEN);
	if (!r)
		r = store_exec(&st, "COMMIT");
	/* the journal mode is recorded in the file: every later open is WAL */
	if (!r)
		r = store_exec(&st, "PRAGMA journal_mode = WAL");
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

int wtg_store_set_base_path(struct wtg_store *st, const char *path)
{
	pthread_mutex_lock(&st->lock);
	int r = store_writable(st);
	if (!r)
		r = store_put_meta(st, "base_path", SQLITE_TEXT, 0, path, -1);
	if (!r)
		r = store_commit_locked(st, true);
	if (!r)
		snprintf(st->base.path, sizeof(st->base.path), "%s", path);
	pthread_mutex_unlock(&st->lock);
	return r ? store_write_failed(st, r) : 0;
}
