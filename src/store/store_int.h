/*
 * The delta store's insides, shared by the files of src/store/ and seen by
 * nothing else: the handle, the prepared statements, and the helpers every
 * file uses.  The store is split by concern: sql.c (errors, statements),
 * open.c (schema, creating, opening, the base identity), batch.c
 * (transactions and durability), base.c (the index of the base's
 * metadata), records.c (inodes, names, security
 * descriptors, the whole stack at once), data.c (chunks, streams and their
 * extents, stream sums), changes.c (versions, the keys between them,
 * stream fingerprints), journal.c (small fsynced writes not in their chunk
 * yet), layers.c (snapshots, rollback, the layer list) and maintain.c
 * (verify, gc).  Every function here expects the store's lock held unless
 * it says otherwise.
 */
#ifndef WTGFS_STORE_INT_H
#define WTGFS_STORE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "wtgfs/chunk_codec.h"
#include "wtgfs/store.h"

/* PRAGMA application_id: "WTGD" */
#define WTG_APP_ID 0x57544744

/* SQLite's auto-checkpoint, in pages, where no thread checkpoints. */
#define STORE_AUTOCHECKPOINT 4096

/* Codecs kept for threads that encode chunks (wtg_store_encode_chunk). */
#define STORE_SPARE_CODECS 4

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
	Q_EXTENT_ALL,
	Q_CHUNK_FREE_INODE,
	Q_CHUNK_FREE_CUT,
	Q_INODE_BELOW,
	Q_INODE_FORGET,
	Q_NAME_BELOW,
	Q_NAME_DEL,
	Q_NAME_DEL_DIR,
	Q_BASE_INODE_PUT,
	Q_BASE_INODE_GET,
	Q_BASE_NAME_PUT,
	Q_BASE_NAME_GET,
	Q_BASE_SD_PUT,
	Q_BASE_SD_GET,
	Q_NAMES_OF_INO,
	Q_JOURNAL_PUT,
	Q_JOURNAL_DEL,
	Q_JOURNAL_UNTIME,
	Q_STREAM_LIST_AT,
	Q_SUM_PUT,
	Q_SUM_GET,
	Q_SUM_LIST,
	Q_BEGIN,
	Q_COMMIT,
	Q_COUNT
};

extern const char *const store_query_sql[Q_COUNT];

struct wtg_store {
	char *path;
	sqlite3 *db;
	int fd; /* holds the writer's flock; closed after SQLite */
	int wal_fd; /* the WAL, for durable commits: -1 until the first */
	bool read_only;
	bool verifying; /* wtg_store_options.verifying */
	pthread_mutex_t lock;
	struct wtg_chunk_codec *codec;
	uint8_t *zbuf;
	/* codecs of the threads that encode chunks beside the writer */
	pthread_mutex_t spare_lock;
	struct wtg_chunk_codec *spare[STORE_SPARE_CODECS];
	int nspare;
	sqlite3_stmt *q[Q_COUNT];
	struct wtg_store_base base;
	int64_t *stack; /* layer ids from the top down (ids fall along ancestry) */
	size_t nstack;
	bool in_batch;
	bool unsynced;	/* commits since the WAL was last synced */
	/* -errno: SQLite rolled a batch back by itself, or a commit failed;
	 * nothing is written or committed after it until the delta is opened
	 * again, so the file stays at the last good commit */
	int batch_lost;
	struct timespec batch_start;
	bool base_indexed; /* the base index is complete (base.c) */
	uint8_t told_damaged[WTG_STORE_HASH_LEN]; /* the key store_damaged_at last told of */
	/* the working layer's journal rows by slot (journal.c), read from the
	 * file at first use (jloaded) */
	struct jslot **jslots;
	size_t jbuckets, njslots;
	uint64_t jtimed; /* rows that carry an inode's times */
	bool jloaded;
	/* checkpoints on a thread of their own (checkpoint.c) */
	sqlite3 *ckpt_db;
	pthread_t ckpt_thread;
	pthread_mutex_t ckpt_lock;
	pthread_cond_t ckpt_cond;
	bool ckpt_running, ckpt_wanted, ckpt_stop;
	bool ckpt_busy;	/* the thread is checkpointing */
	bool ckpt_hold;	/* the writer's: none until the log starts again */
	int ckpt_step, ckpt_chase, ckpt_limit; /* in frames (pages) */
	int ckpt_woken; /* the log's frames when the thread was last woken */
	int ckpt_log;	/* the log's frames at the last commit (atomic) */
	bool commit_durable; /* the commit under way will sync the log */
};

/* An SQLite result code as -errno, logged as one line naming the file. */
int store_sql_error(struct wtg_store *st, int rc);
/* After a failed statement inside a batch: notes when SQLite rolled the
 * whole transaction back (disk full, I/O error), which the next commit reports. */
int store_write_failed(struct wtg_store *st, int err);
/* Logs that the delta is damaged (@what) and returns -EIO. */
int store_damaged(struct wtg_store *st, const char *what);
/* Runs SQL text (no rows). */
int store_exec(struct wtg_store *st, const char *sql);
/* The cached statement @id (Q_*), reset and unbound. */
int store_query(struct wtg_store *st, int id, sqlite3_stmt **ret);
/* Runs a statement that returns no rows, and resets it. */
int store_run(struct wtg_store *st, sqlite3_stmt *s);
/* sqlite3_step: 1 for a row, 0 when done, or -errno. */
int store_step(struct wtg_store *st, sqlite3_stmt *s);
/* Steps the bound @s to its row and copies the blob of its first column
 * into *data_ret (malloc'd, never NULL on success); resets @s.  0, -ENOENT
 * without a row, or -errno. */
int store_step_blob(struct wtg_store *st, sqlite3_stmt *s, uint8_t **data_ret, size_t *len_ret);
/* A one-off statement (finalize it). */
int store_prepare(struct wtg_store *st, const char *sql, sqlite3_stmt **ret);
/* The first column of the first row of @sql with ?1 = @arg, 0 when none. */
int store_int_query(struct wtg_store *st, const char *sql, int64_t arg, int64_t *ret);
/* Binds a WTG_STORE_HASH_LEN-byte key. */
int store_bind_hash(sqlite3_stmt *s, int col, const uint8_t *hash);
/* Copies a key column; false when it is not a hash. */
bool store_column_hash(sqlite3_stmt *s, int col, uint8_t out[WTG_STORE_HASH_LEN]);
/* Unix seconds. */
int64_t store_now(void);
/* The top layer of the stack (the working layer of a writable store). */
int64_t store_top(const struct wtg_store *st);
/* True when @layer is in the stack of this store. */
bool store_in_stack(const struct wtg_store *st, int64_t layer);

/* A layer stack, ids from the top down (they fall along ancestry): the
 * store's own, or another version's (diff).  Empty: the base alone. */
struct store_stack {
	const int64_t *ids;
	size_t n;
};
struct store_stack store_stack_of(const struct wtg_store *st);
bool store_stack_has(const struct store_stack *stk, int64_t layer);
/* The lookups of records.c and data.c through the stack @stk. */
int store_get_inode(struct wtg_store *st, const struct store_stack *stk, uint64_t ino,
		    enum wtg_store_state *state_ret, struct wtg_store_inode *inode_ret);
int store_get_name(struct wtg_store *st, const struct store_stack *stk, uint64_t dir,
		   const char *name, enum wtg_store_state *state_ret, uint64_t *ino_ret,
		   char **dos_ret);
int store_get_stream(struct wtg_store *st, const struct store_stack *stk, uint64_t ino,
		     const char *name, enum wtg_store_state *state_ret, uint64_t *size_ret);
/* What slot @index resolves to through @stk; @below: without the extent of
 * the stack's top layer (but with its stream row). */
int store_resolve(struct wtg_store *st, const struct store_stack *stk, uint64_t ino,
		  const char *stream, uint64_t index, bool below, enum wtg_store_state *state_ret,
		  uint8_t hash[WTG_STORE_HASH_LEN]);
/* Opens a batch when none is open: -EROFS on a read-only store. */
int store_writable(struct wtg_store *st);
/* Commits the open batch (and syncs the WAL when @durable). */
int store_commit_locked(struct wtg_store *st, bool durable);
/* Stops the checkpoint thread and closes its connection (before the
 * writer's own closes). */
void store_stop_checkpoints(struct wtg_store *st);
/* Sets a key of the meta table to an integer, text or blob. */
int store_put_meta(struct wtg_store *st, const char *key, int type, int64_t i, const void *p,
		   int len);
/* Views of a snapshot (opened with @at) hold a lock shared that squash and
 * gc take alone, so neither drops what a --at mount reads: -EBUSY (logged,
 * naming @what) when a view is open.  @exclusive false on an @at open;
 * store_views_unlock() after the work. */
int store_views_lock(struct wtg_store *st, bool exclusive, const char *what);
void store_views_unlock(struct wtg_store *st);
/* The layer ids from @layer down to the first layer (ids fall along
 * ancestry), malloc'd; -EIO (logged) for a loop or a missing layer. */
int store_read_stack(struct wtg_store *st, int64_t layer, int64_t **stack_ret, size_t *count_ret);
/* Makes the stack from @layer down the store's own; an empty one is damage. */
int store_load_stack(struct wtg_store *st, int64_t layer);
/* The layer snapshot @name seals: -ENOENT (logged) when none. */
int store_layer_of_snapshot(struct wtg_store *st, const char *name, int64_t *layer_ret);
/* -EBUSY (logged, naming @what) when the journal holds rows: what changes
 * the layers needs them folded into their chunks first. */
int store_journal_empty(struct wtg_store *st, const char *what);
/* Drops the working layer's journal rows of slots @from on of the stream
 * (@stream NULL: of every stream of @ino). */
int store_journal_cut(struct wtg_store *st, uint64_t ino, const char *stream, uint64_t from);
/* Clears the times the journal rows of @ino carry: its record, just
 * written, is newer. */
int store_journal_untime(struct wtg_store *st, uint64_t ino);
/* Forgets what the map of journal rows holds, to be read again from the
 * file (after a rollback, and when the store is freed). */
void store_journal_forget(struct wtg_store *st);
/* Runs @fn in a transaction of its own after committing the open batch;
 * reloads the stack from the top layer @fn returns. */
int store_transaction(struct wtg_store *st, int (*fn)(struct wtg_store *, const void *, int64_t *),
		      const void *arg);
/* Decodes the chunk at the current row of @s (columns size, codec, data
 * from @col) into @buf. */
int store_decode_row(struct wtg_store *st, sqlite3_stmt *s, int col, void *buf, size_t *size_ret);
/* The first 8 bytes of a key in hex, for messages. */
void store_hex_short(const uint8_t *hash, char out[17]);
/* true when @data hashes to @key (SHA-256, the store's content keys) */
bool store_key_matches(const uint8_t key[WTG_STORE_HASH_LEN], const void *data, size_t len);
/* store_damaged() for the record @kind ("chunk") under @key, which @what
 * is wrong with; said once while the same key keeps failing (a reader's
 * retries), -EIO; takes the lock. */
int store_damaged_at(struct wtg_store *st, const char *kind, const uint8_t *key, const char *what);
/* Calls @name_fn (names) or @stream_fn (@streams) once per key of @key that
 * the stack @stk (NULL: the store's own) mentions, through statement @q;
 * takes the lock itself and calls back without it, so the callbacks may use
 * the store. */
int store_list(struct wtg_store *st, const struct store_stack *stk, int q, uint64_t key,
	       bool streams, wtg_store_name_fn name_fn, wtg_store_stream_fn stream_fn, void *arg);

#endif
