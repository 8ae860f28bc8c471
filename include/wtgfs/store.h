/*
 * The delta file: one SQLite file that holds every change made on top of a
 * read-only base image, as a stack of layers.
 *
 * A layer records only what changed: inode metadata (whole records), names
 * and whiteouts, stream sizes, and stream extents (64 KiB chunk slots that
 * point at content-addressed chunks or say "hole").  The working layer (HEAD)
 * takes the writes; a snapshot seals it and opens a new one on top.  Lookups
 * walk the layer stack from the top layer down through its sealed ancestors
 * and answer WTG_STORE_BASE when no layer says anything: the caller then asks
 * the base image.
 *
 * Inode numbers are the base tree's (root 1, dense, in load order: the base
 * identity pins the image, so the numbering is stable); inodes created in the
 * delta take numbers above both the base's and wtg_store_max_ino().
 *
 * Writes go into a batch, one SQLite transaction, opened by the first write
 * and made durable by wtg_store_commit(): only then may fsync() return.  The
 * caller commits on fsync, on close and at least every second
 * (wtg_store_batch_age_ms() tells how old the open batch is).
 *
 * Every call is serialised by one lock inside the store, so any thread may
 * call anything.  A writable open holds an exclusive lock on the file for
 * its lifetime: a second writer gets -EBUSY; read-only opens (log, diff,
 * verify) may run alongside.  Open a delta once per process: the writer's
 * lock file descriptor would otherwise drop SQLite's POSIX locks of another
 * handle on close.  All calls return 0 or -errno; failures are logged as one
 * line naming the file.
 */
#ifndef WTGFS_STORE_H
#define WTGFS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wtgfs/hash.h"

/* PRAGMA user_version this build writes and reads (2: inodes keep their
 * $EA; 3: DOS names on name records; 4: an index of the base's metadata;
 * 5: the journal of small fsynced writes; 6: journal rows keyed by their
 * order alone, carrying the inode's times).  An older delta opens: its
 * first writable open upgrades it in place. */
#define WTG_STORE_FORMAT 6
#define WTG_STORE_CHUNK_SIZE 65536
#define WTG_STORE_HASH_LEN WTG_SHA256_LEN

struct wtg_store;

/* What identifies the base a delta is bound to. */
struct wtg_store_base {
	char path[4096]; /* as given to 'wtgfs init' (absolute); not compared */
	uint64_t size;	 /* of the image file or device */
	char guid[40];	 /* WIM GUID, VHDX identifier or disk id; "" if none */
	uint32_t index;	 /* image index or partition number */
	uint8_t meta_hash[WTG_STORE_HASH_LEN]; /* hash of the image's metadata */
};

struct wtg_store_options {
	bool read_only;
	const char *at; /* read-only view of this snapshot; NULL: HEAD */
	/* read_only of HEAD: one read transaction from open to close, so all
	 * reads see the delta as one commit left it */
	bool consistent;
	/* the caller is 'wtgfs verify': the lines that tell of damage do not
	 * send the user to it */
	bool verifying;
};

/* Creates a new delta at @path bound to @base, atomically (written under a
 * temporary name, then renamed): -EEXIST when @path exists. */
int wtg_store_create(const char *path, const struct wtg_store_base *base);

/* True when @path starts like a delta file (cheap; opening checks more). */
bool wtg_store_is_delta(const char *path);

/* Opens a delta.  Refuses, with one line each, a file that is empty, not a
 * delta, truncated, damaged (-EIO), from a newer format (-EPROTO), in use by
 * a writer (-EBUSY), or a snapshot @at that does not exist (-ENOENT). */
int wtg_store_open(const char *path, const struct wtg_store_options *opt,
		   struct wtg_store **store_ret);
/* In the child of a fork() (a daemon): replaces the SQLite connection,
 * which must not cross a fork, keeping the writer's lock.  Commits first. */
int wtg_store_after_fork(struct wtg_store *store);
/* For a long-lived writer (a mount's daemon, after any fork): checkpoints
 * from now on run on a thread of their own, beside the commits, instead of
 * in the commit that fills the log.  0 on a read-only store; never fails
 * (without the thread, commits checkpoint as before). */
int wtg_store_start(struct wtg_store *store);
/* Waits until no writer holds the delta @path (a daemon finishing its last
 * commit after an unmount): 0, or -ETIMEDOUT after @timeout_ms. */
int wtg_store_wait_writer(const char *path, int timeout_ms);
/* Commits an open batch and closes; returns the commit's result. */
int wtg_store_close(struct wtg_store *store);

const char *wtg_store_path(const struct wtg_store *store);
/* False for a read-only open. */
bool wtg_store_writable(const struct wtg_store *store);

/* The base identity recorded at creation. */
void wtg_store_get_base(const struct wtg_store *store, struct wtg_store_base *base_ret);
/* 0 when @actual is the recorded base (all but the path compared), else
 * -ESTALE with a line naming what differs. */
int wtg_store_check_base(const struct wtg_store *store, const struct wtg_store_base *actual);
/* Records a new path for the base (after --base PATH). */
int wtg_store_set_base_path(struct wtg_store *store, const char *path);

/* ---- batches ---- */

/* Starts a batch when none is open (writes start one themselves);
 * the lost batch's error after one was lost. */
int wtg_store_begin(struct wtg_store *store);
/* Commits the open batch durably (a no-op without one).  On failure the
 * batch is rolled back and lost (wtg_store_lost): -ENOSPC when the disk is
 * full, the delta unchanged. */
int wtg_store_commit(struct wtg_store *store);
/* Commits the open batch without waiting for the disk: it survives a crash
 * of this process, and the next wtg_store_commit() makes it durable. */
int wtg_store_commit_nosync(struct wtg_store *store);
/* Drops the open batch. */
void wtg_store_rollback_batch(struct wtg_store *store);
/* The error of a lost batch: SQLite rolled the open batch back by itself
 * (a full disk while it spilled its cache), or a commit failed.  From then
 * on every write and commit answers it, so the delta stays at the last good
 * commit until it is opened again.  0 when no batch was lost. */
int wtg_store_lost(struct wtg_store *store);
/* Milliseconds since the open batch began, -1 without one. */
long wtg_store_batch_age_ms(struct wtg_store *store);

/* ---- chunks ---- */

/* Stores @size (at most WTG_STORE_CHUNK_SIZE) bytes once, zstd-compressed
 * (raw when that does not pay), under their SHA-256: content already there
 * costs nothing.  Part of the open batch. */
int wtg_store_put_chunk(struct wtg_store *store, const void *data, size_t size,
			uint8_t hash_ret[WTG_STORE_HASH_LEN]);
/* A chunk made ready for the delta away from the store's lock, so that
 * another thread can hash and compress the next chunks while the writer
 * stores these: its key and its stored form, which wtg_store_put_encoded()
 * then stores as wtg_store_put_chunk() would have. */
struct wtg_store_encoded {
	uint8_t hash[WTG_STORE_HASH_LEN];
	size_t size; /* the chunk's bytes */
	int codec;
	size_t len;    /* stored bytes in @data */
	uint8_t *data; /* WTG_STORE_ENCODED_MAX bytes, the caller's */
};
#define WTG_STORE_ENCODED_MAX (WTG_STORE_CHUNK_SIZE + WTG_STORE_CHUNK_SIZE / 128 + 1024)
/* Hashes and encodes @size bytes into @enc (its @data set by the caller),
 * on any thread, without the store's lock: 0 or -errno. */
int wtg_store_encode_chunk(struct wtg_store *store, const void *data, size_t size,
			   struct wtg_store_encoded *enc);
/* Stores a chunk wtg_store_encode_chunk() made, in the open batch; sets
 * nothing (the key is @enc's). */
int wtg_store_put_encoded(struct wtg_store *store, const struct wtg_store_encoded *enc);
/* Reads the chunk @hash into @buf (WTG_STORE_CHUNK_SIZE bytes); sets its
 * size.  -ENOENT when absent, -EIO when damaged. */
int wtg_store_get_chunk(struct wtg_store *store, const uint8_t hash[WTG_STORE_HASH_LEN], void *buf,
			size_t *size_ret);

/* ---- the journal: small writes made durable without their chunk ----
 *
 * An fsync of a few KiB written into a 64 KiB slot stores the bytes that
 * changed, not the whole chunk (hashed, compressed, and its old version
 * freed): a row that says "these bytes go over what slot @index of the
 * stream holds in the working layer".  The writer folds a slot's rows into
 * a chunk later (when the file is closed, at a snapshot, at unmount) and
 * deletes them in the same batch.  Rows a crash leaves are folded in by the
 * next writable view (wtg_view_open_delta); until then a view applies them
 * in memory.  Rows only ever belong to the working layer: operations that
 * change the layers refuse (-EBUSY, logged) while the file holds any.
 *
 * A row may carry the inode's mtime and ctime, for a write that changed
 * nothing else of the inode: then the inode's record need not be written
 * with it.  The newest row that carries them gives the inode's times until
 * wtg_store_set_inode() records the inode again, which clears the times of
 * every row of it (the record is newer); the rows' times go with them, so
 * the caller records the inode when it drops rows that carry its times. */

struct wtg_store_journal_row {
	uint64_t ino;
	char *stream; /* "" for the unnamed one */
	uint64_t index;
	uint32_t off, len; /* off + len <= WTG_STORE_CHUNK_SIZE */
	uint8_t *data;
	int64_t seq; /* the order the rows were added in, across slots */
	bool timed;  /* carries the inode's times: */
	int64_t mtime, ctime;
};

/* Adds a row for slot @index of the stream in the working layer (part of
 * the open batch); rows of one slot apply in the order they were added.
 * @times: the inode's mtime and ctime, or NULL. */
int wtg_store_journal_put(struct wtg_store *store, uint64_t ino, const char *stream,
			  uint64_t index, uint32_t off, const void *data, uint32_t len,
			  const int64_t *times);
/* Drops the working layer's rows of the slot (its chunk now holds them). */
int wtg_store_journal_drop(struct wtg_store *store, uint64_t ino, const char *stream,
			   uint64_t index);
/* Drops every row of the working layer. */
int wtg_store_journal_clear(struct wtg_store *store);
/* The working layer's rows, by stream and slot, in order (malloc'd; free
 * with wtg_store_journal_free). */
int wtg_store_journal_read(struct wtg_store *store, struct wtg_store_journal_row **rows_ret,
			   size_t *count_ret);
void wtg_store_journal_free(struct wtg_store_journal_row *rows, size_t count);
/* Rows in the file, of any layer. */
int wtg_store_journal_count(struct wtg_store *store, uint64_t *count_ret);

/* ---- what layers say ---- */

enum wtg_store_state {
	WTG_STORE_BASE,	   /* no layer in the stack says anything: ask the base */
	WTG_STORE_PRESENT, /* the record is set */
	WTG_STORE_DELETED, /* removed (inode or stream) / whiteout (name) / hole (extent) */
};

struct wtg_store_inode {
	uint32_t attributes;
	uint8_t sd_hash[WTG_STORE_HASH_LEN]; /* all zero: none */
	int64_t crtime, mtime, atime, ctime; /* 100 ns units since 1601 */
	uint8_t *reparse;		     /* full reparse buffer; malloc'd on lookup */
	uint32_t reparse_len;
	uint8_t *object_id; /* malloc'd on lookup */
	uint32_t object_id_len;
	/* Format 1 kept a DOS name per inode: what such a record said ("" for
	 * none), for the view to carry over to a name; NULL in every record
	 * written since (a DOS name is a name's: wtg_store_set_name_dos()).
	 * malloc'd on lookup. */
	char *legacy_dos_name;
	uint8_t *ea; /* the $EA value (wtgfs/ea.h); malloc'd on lookup, NULL: none */
	uint32_t ea_len;
};
void wtg_store_inode_release(struct wtg_store_inode *inode);

/* Records the whole metadata of @ino in the working layer. */
int wtg_store_set_inode(struct wtg_store *store, uint64_t ino, const struct wtg_store_inode *inode);
/* Records that @ino is gone (its last name and handle are).  What the
 * working layer held for its data goes, and so do the chunks nothing else
 * names. */
int wtg_store_delete_inode(struct wtg_store *store, uint64_t ino);
/* The same for an inode the base does not have: when no layer below the
 * working one in the stack holds a record of it (it was born in the
 * working layer), every record of it goes and none says it is gone;
 * *traceless_ret tells that no layer of the file, in the stack or not,
 * keeps any record of it (its number may then be used again). */
int wtg_store_delete_new_inode(struct wtg_store *store, uint64_t ino, bool *traceless_ret);
/* Fills *inode_ret (to release) when the state is PRESENT. */
int wtg_store_get_inode(struct wtg_store *store, uint64_t ino, enum wtg_store_state *state_ret,
			struct wtg_store_inode *inode_ret);
/* The highest inode number any layer of the file mentions, 0 if none. */
int wtg_store_max_ino(struct wtg_store *store, uint64_t *ino_ret);

/* Security descriptors, stored once by SHA-256. */
int wtg_store_put_sd(struct wtg_store *store, const void *data, size_t len,
		     uint8_t hash_ret[WTG_STORE_HASH_LEN]);
/* *data_ret is malloc'd. */
int wtg_store_get_sd(struct wtg_store *store, const uint8_t hash[WTG_STORE_HASH_LEN],
		     uint8_t **data_ret, size_t *len_ret);

/* Names are exact (case-sensitive) strings: case-insensitive matching is
 * the tree's, over the merged view.  @ino 0 records a whiteout.  A name
 * record holds the name's DOS name too: set_name records it without one. */
int wtg_store_set_name(struct wtg_store *store, uint64_t dir, const char *name, uint64_t ino);
/* Records @name -> @ino with the DOS (8.3) name @dos (NULL: none). */
int wtg_store_set_name_dos(struct wtg_store *store, uint64_t dir, const char *name, uint64_t ino,
			   const char *dos);
int wtg_store_get_name(struct wtg_store *store, uint64_t dir, const char *name,
		       enum wtg_store_state *state_ret, uint64_t *ino_ret);
/* Removes the name: a whiteout when the base holds it (@base_has) or a
 * layer below the working one does, else the working layer's record goes
 * and nothing is left (a name only the working layer ever had). */
int wtg_store_remove_name(struct wtg_store *store, uint64_t dir, const char *name, bool base_has);
/* Calls @fn once per name of @dir that a layer mentions, topmost record
 * only: ino 0 for a whiteout.  A non-zero return from @fn stops and is
 * returned. */
typedef int (*wtg_store_name_fn)(void *arg, const char *name, uint64_t ino);
int wtg_store_list_names(struct wtg_store *store, uint64_t dir, wtg_store_name_fn fn, void *arg);

/* Streams: @name "" is the unnamed data stream.  Setting a size smaller
 * than the stream had drops extents past it (this layer's rows, and lower
 * layers' and the base's from the first whole chunk past it: reads there see
 * a hole).  A truncation inside a chunk keeps that chunk: the caller
 * rewrites it with zeros past the new size.  @fresh: the stream starts
 * empty here (created, or re-created after deletion), nothing below shows. */
int wtg_store_set_stream(struct wtg_store *store, uint64_t ino, const char *name, uint64_t size,
			 bool fresh);
int wtg_store_delete_stream(struct wtg_store *store, uint64_t ino, const char *name);
int wtg_store_get_stream(struct wtg_store *store, uint64_t ino, const char *name,
			 enum wtg_store_state *state_ret, uint64_t *size_ret);
/* Calls @fn for each stream of @ino that a layer mentions (topmost record),
 * deleted ones with @deleted set. */
typedef int (*wtg_store_stream_fn)(void *arg, const char *name, uint64_t size, bool deleted);
int wtg_store_list_streams(struct wtg_store *store, uint64_t ino, wtg_store_stream_fn fn,
			   void *arg);

/* Points chunk slot @index of the stream at the chunk @hash (put just
 * before: a chunk no extent names goes as soon as a slot of the working
 * layer stops naming it), or at a hole when @hash is NULL.  When the layers below already resolve
 * the slot to the same thing, the working layer keeps no row: a chunk
 * rewritten with what it held costs nothing. */
int wtg_store_set_extent(struct wtg_store *store, uint64_t ino, const char *stream, uint64_t index,
			 const uint8_t *hash);
/* Points the slot at the base's bytes again, also where a truncation or a
 * re-creation of the stream hid them (the caller found the data equal to
 * the base's): a file rewritten as it was costs a row per chunk, no data. */
int wtg_store_set_extent_base(struct wtg_store *store, uint64_t ino, const char *stream,
			      uint64_t index);
/* How many chunk slots of the stream hold data (a chunk, or bytes of the
 * base, which has @base_slots of them), through the stack: holes and what
 * a truncation or deletion hides do not count. */
int wtg_store_stream_usage(struct wtg_store *store, uint64_t ino, const char *stream,
			   uint64_t base_slots, uint64_t *slots_ret);
/* PRESENT with *hash_ret set, DELETED for a hole, BASE. */
int wtg_store_get_extent(struct wtg_store *store, uint64_t ino, const char *stream, uint64_t index,
			 enum wtg_store_state *state_ret, uint8_t hash_ret[WTG_STORE_HASH_LEN]);

/* ---- the whole stack at once (loading a mount) ---- */

enum wtg_store_table { WTG_STORE_INODES, WTG_STORE_NAMES, WTG_STORE_STREAMS };

/* One record, the topmost in the stack for its key. */
struct wtg_store_record {
	uint64_t ino;	  /* inodes, streams: the inode; names: the directory */
	const char *name; /* names: the name; streams: the stream ("" unnamed) */
	uint64_t value;	  /* names: the inode (0: whiteout); streams: the size */
	bool deleted;	  /* inodes, streams: removed; names: a whiteout */
	const struct wtg_store_inode *inode; /* inodes not deleted */
	/* names: the name's DOS name, NULL when none */
	const char *dos_name;
};
/* Calls @fn for every key of @table that a layer of the stack mentions, in
 * key order.  @fn runs under the store's lock: it must not call the store.
 * A non-zero return from @fn stops and is returned. */
typedef int (*wtg_store_record_fn)(void *arg, const struct wtg_store_record *rec);
int wtg_store_each(struct wtg_store *store, enum wtg_store_table table, wtg_store_record_fn fn,
		   void *arg);

/* ---- layers and snapshots ---- */

/*
 * Layers form a tree: each has a parent (0: the base).  HEAD, the working
 * layer, takes the writes and has no children.  A snapshot names a sealed
 * layer.  A rollback seals HEAD too and keeps it under a name of its own
 * ("abandoned-N"), listed apart from snapshots, so that rolling back to that
 * name brings it back as it was; gc drops such layers once they are older
 * than its expiry and nothing else reaches them.  Names (snapshots and
 * abandoned layers share one namespace) are 1 to 255 bytes of printable
 * UTF-8 without '/', not "base" or "HEAD", not starting with '-' and not
 * holding "..".
 */

/* True when @name may name a snapshot (the rules above, said to users as
 * WTG_STORE_NAME_RULE). */
bool wtg_store_name_ok(const char *name);
#define WTG_STORE_NAME_RULE                                                                   \
	"1-255 printable bytes, no '/' or '..', not 'base' or 'HEAD', not starting with '-'"
/* @name as a refusal shows it, in @out: control bytes as '?' (a line break
 * would split the one-line error), cut at 255 bytes */
#define WTG_STORE_NAME_SHOWN 260
const char *wtg_store_name_shown(const char *name, char out[WTG_STORE_NAME_SHOWN]);

/* Seals the working layer as snapshot @name (-EEXIST when taken, -EINVAL
 * for a bad name) and opens a new working layer on it, in one durable
 * transaction (commits the open batch first). */
int wtg_store_snapshot(struct wtg_store *store, const char *name, const char *message);
/* Makes the working tree that of @name: a snapshot (a new working layer on
 * it), or a layer an earlier rollback abandoned (HEAD again, as it was).
 * The working layer is kept, sealed, under a new name returned in *kept_ret
 * (malloc'd; NULL @kept_ret: not wanted), unless it holds no record: then
 * it goes and *kept_ret is NULL.  One durable transaction. */
int wtg_store_rollback(struct wtg_store *store, const char *name, char **kept_ret);

/* The stack from the top layer down, copied (*layers_ret malloc'd). */
int wtg_store_stack(struct wtg_store *store, int64_t **layers_ret, size_t *count_ret);

/* What records of @layers (a set of layer ids) are about: calls @fn once
 * per distinct key of @table, @name NULL for inodes; WTG_STORE_EXTENTS gives
 * (ino, stream) pairs.  The keys whose state can differ between two stacks
 * are those of the layers in one and not the other.  @fn runs without the
 * store's lock, after the query: it may call the store. */
enum wtg_store_key_table {
	WTG_STORE_KEY_INODES,
	WTG_STORE_KEY_NAMES,
	WTG_STORE_KEY_STREAMS,
	WTG_STORE_KEY_EXTENTS
};
typedef int (*wtg_store_key_fn)(void *arg, uint64_t ino, const char *name);
int wtg_store_each_key(struct wtg_store *store, const int64_t *layers, size_t nlayers,
		       enum wtg_store_key_table table, wtg_store_key_fn fn, void *arg);

struct wtg_store_layer {
	int64_t id, parent;		 /* parent 0: the base */
	int64_t created;		 /* Unix seconds */
	int64_t sealed;			 /* Unix seconds, 0 for the working layer */
	char *snapshot;			 /* its name (snapshot or abandoned), or NULL */
	char *message;			 /* NULL when none */
	int64_t abandoned;		 /* Unix seconds a rollback left it, 0 if not */
	uint64_t inodes, names, extents; /* records in the layer */
	uint64_t files;			 /* inodes a record of the layer is about */
	uint64_t chunk_bytes;		 /* stored bytes of the chunks its extents use */
	bool head;			 /* the working layer */
	bool in_stack;			 /* HEAD or one of its ancestors */
};
/* Every layer of the file, parents before children (by id). */
int wtg_store_list_layers(struct wtg_store *store, struct wtg_store_layer **layers_ret,
			  size_t *count_ret);
void wtg_store_layers_free(struct wtg_store_layer *layers, size_t count);

/* Merges the layers above @from (a snapshot, or "base" for the first
 * layer) up to and including @to (a snapshot or "HEAD") into one, which
 * keeps @to's id and name: every snapshot outside the range keeps its
 * content; snapshots inside it go.  Refuses (-EBUSY, one line) when a
 * layer inside the range has a branch growing from it, and -EINVAL when
 * @from is not below @to. *merged_ret: layers merged away. */
int wtg_store_squash(struct wtg_store *store, const char *from, const char *to,
		     uint64_t *merged_ret);

/* ---- maintenance ---- */

struct wtg_store_report {
	uint64_t layers, chunks, chunk_bytes, stored_bytes, extents, problems;
	uint64_t journal; /* rows of the journal (writes a crash left unfolded) */
};
/* Checks the SQLite structure, the format, the layer graph (parents exist
 * and are older, no loops, HEAD open and childless, names on sealed
 * layers), that every chunk decodes to bytes that hash to its key, and that
 * every record refers to what exists.  Each problem is one line; returns 0
 * when clean, -EIO when not (report filled either way when @report is not
 * NULL). */
int wtg_store_verify(struct wtg_store *store, struct wtg_store_report *report);

struct wtg_store_gc_report {
	uint64_t layers;     /* layers dropped */
	uint64_t abandoned;  /* of them, layers a rollback had kept */
	uint64_t records;    /* inode, name, stream and extent rows dropped */
	uint64_t chunks;     /* chunks dropped */
	uint64_t chunk_bytes; /* their stored bytes */
	uint64_t file_before, file_after; /* bytes of the delta (with its log) */
};
/* Drops layers a rollback abandoned before @expire (Unix seconds) that no
 * snapshot or HEAD reaches, and layers nothing reaches at all, then chunks
 * and security descriptors nothing refers to, and gives the space back to
 * the file system (incremental vacuum, log truncated). */
int wtg_store_gc(struct wtg_store *store, int64_t expire, struct wtg_store_gc_report *report);

/* ---- the index of the base's metadata ---- */

/*
 * What diff needs of the base image, kept in the delta so that it never
 * loads the image: packed inode records by inode number, names by
 * (directory, exact name), security descriptors by id.  The records are
 * opaque here (wtgfs/base_index.h packs and reads them).  Written once, as
 * one batch: begin clears the index, the puts fill it, end marks it
 * complete and commits durably.  Until end, and in a delta older than
 * format 4 that no writer has opened since, there is no index: lookups
 * answer -ENOENT and the caller loads the image.
 */
bool wtg_store_base_indexed(struct wtg_store *store);
int wtg_store_base_index_begin(struct wtg_store *store);
int wtg_store_base_index_put_sd(struct wtg_store *store, uint32_t id, const void *data,
				size_t len);
int wtg_store_base_index_put_inode(struct wtg_store *store, uint64_t ino, const void *data,
				   size_t len);
int wtg_store_base_index_put_name(struct wtg_store *store, uint64_t dir, const char *name,
				  size_t len, uint64_t ino);
int wtg_store_base_index_end(struct wtg_store *store, uint64_t ninodes);
/* The record of base inode @ino (*data_ret malloc'd): -ENOENT when none. */
int wtg_store_base_index_inode(struct wtg_store *store, uint64_t ino, uint8_t **data_ret,
			       size_t *len_ret);
/* The base's security descriptor @id (*data_ret malloc'd): -ENOENT when none. */
int wtg_store_base_index_sd(struct wtg_store *store, uint32_t id, uint8_t **data_ret,
			    size_t *len_ret);
/* The inode the base's name @name (exactly so spelled) in @dir holds, 0
 * when none. */
int wtg_store_base_index_name(struct wtg_store *store, uint64_t dir, const char *name,
			      uint64_t *ino_ret);

/*
 * The base image's metadata resource itself, decoded (a WIM base): an
 * append to the base WIM parses these bytes instead of decoding the WIM's,
 * and checks them against the WIM's SHA-1 of the resource as it would its
 * own.  Kept under that SHA-1 and the size, in parts of 1 MiB stored as
 * chunks are.  Put once, at init (replacing any before, committed
 * durably); get answers -ENOENT when the delta has none (older deltas, a
 * base that is not a WIM) and -EIO (logged) when the rows disagree with
 * each other.  A part that does not decode is -EIO from decode.
 */
struct wtg_store_base_metadata_part {
	int codec;
	size_t size; /* decoded */
	uint8_t *data;
	size_t len;
};
struct wtg_store_base_metadata {
	uint8_t sha1[20];
	uint64_t size; /* the sum of the parts' sizes */
	struct wtg_store_base_metadata_part *parts;
	size_t nparts;
};
int wtg_store_base_metadata_put(struct wtg_store *store, const uint8_t sha1[20],
				const void *bytes, size_t len);
int wtg_store_base_metadata_get(struct wtg_store *store, struct wtg_store_base_metadata *m);
/* All of @m decoded into @out (@m->size bytes); safe on any thread. */
int wtg_store_base_metadata_decode(const struct wtg_store_base_metadata *m, void *out);
/* The same, with @fed told after each part how many bytes from the start
 * are decoded (so that another thread may read them as they come). */
int wtg_store_base_metadata_decode_each(const struct wtg_store_base_metadata *m, void *out,
					void (*fed)(void *ctx, size_t done), void *ctx);
void wtg_store_base_metadata_free(struct wtg_store_base_metadata *m);
/* The base image's counts (wtgfs/census.h), kept beside its metadata: put
 * after it at init (a new metadata drops them), get -ENOENT when there are
 * none; the bytes are checked by wtg_census_decode. */
int wtg_store_base_census_put(struct wtg_store *store, const void *bytes, size_t len);
int wtg_store_base_census_get(struct wtg_store *store, uint8_t **bytes, size_t *len);

/* ---- versions and what changed between them (diff) ---- */

/* A version of the tree: the layer stack from @layer down.  Layer 0 is the
 * base image alone (an empty stack). */
struct wtg_store_version {
	int64_t layer;
	int64_t *stack; /* ids from the top down */
	size_t nstack;
};

/* The version @name names: "base", "HEAD" (the top layer of this open), or
 * a snapshot; -ENOENT (logged) when there is none of that name. */
int wtg_store_version_open(struct wtg_store *store, const char *name,
			   struct wtg_store_version *ver_ret);
void wtg_store_version_release(struct wtg_store_version *ver);
/* The name of the nearest snapshot below HEAD, "base" when there is none
 * (malloc'd): what 'wtgfs diff' compares HEAD with by default. */
int wtg_store_last_snapshot(struct wtg_store *store, char **name_ret);

/* On a read-only open: every lookup until wtg_store_read_end() sees the
 * delta as it was at the first one (one SQLite read transaction), also
 * while a mount commits beside it.  -EINVAL on a writable open. */
int wtg_store_read_begin(struct wtg_store *store);
void wtg_store_read_end(struct wtg_store *store);

enum wtg_store_key { WTG_STORE_KEY_INODE, WTG_STORE_KEY_NAME, WTG_STORE_KEY_STREAM,
		     WTG_STORE_KEY_EXTENT };
/* A key a record mentions. */
struct wtg_store_change {
	enum wtg_store_key kind;
	uint64_t ino;	  /* inodes, streams, extents: the inode; names: the directory */
	const char *name; /* names: the name; streams, extents: the stream ("" unnamed) */
	uint64_t index;	  /* extents: the chunk slot */
};
typedef int (*wtg_store_change_fn)(void *arg, const struct wtg_store_change *change);
/* Calls @fn for every key that a record of a layer in one of the two stacks
 * but not in both mentions: the layers on the path @a -> common ancestor ->
 * @b, read through each table's layer index, so the cost follows the size
 * of the change, not of the delta or the image.  A key that several of
 * those layers record comes once per layer.  Only these keys can resolve
 * differently in @a and @b.  @fn runs under the store's lock: it must not
 * call the store.  A non-zero return from @fn stops and is returned. */
int wtg_store_changes(struct wtg_store *store, const struct wtg_store_version *a,
		      const struct wtg_store_version *b, wtg_store_change_fn fn, void *arg);

/* The lookups above, through the stack of @ver instead of the open one. */
int wtg_store_get_inode_at(struct wtg_store *store, const struct wtg_store_version *ver,
			   uint64_t ino, enum wtg_store_state *state_ret,
			   struct wtg_store_inode *inode_ret);
int wtg_store_get_name_at(struct wtg_store *store, const struct wtg_store_version *ver,
			  uint64_t dir, const char *name, enum wtg_store_state *state_ret,
			  uint64_t *ino_ret);
/* The same, with the name's DOS name (malloc'd; NULL when it has none or
 * the state is not PRESENT). */
int wtg_store_get_name_dos_at(struct wtg_store *store, const struct wtg_store_version *ver,
			      uint64_t dir, const char *name, enum wtg_store_state *state_ret,
			      uint64_t *ino_ret, char **dos_ret);
int wtg_store_get_stream_at(struct wtg_store *store, const struct wtg_store_version *ver,
			    uint64_t ino, const char *name, enum wtg_store_state *state_ret,
			    uint64_t *size_ret);
int wtg_store_get_extent_at(struct wtg_store *store, const struct wtg_store_version *ver,
			    uint64_t ino, const char *stream, uint64_t index,
			    enum wtg_store_state *state_ret, uint8_t hash_ret[WTG_STORE_HASH_LEN]);

/*
 * Stream sums: the SHA-1 of a stream's bytes, as a mount saw them written,
 * kept under the stream's fingerprint.  The fingerprint is a SHA-256 of
 * the inode, the stream's name and @size and what each of its slots
 * resolves to (@ver's stack; NULL: this open's): the chunk's hash, the
 * base, or a hole.  Equal fingerprints mean equal bytes (chunks are named
 * by their SHA-256, the base does not change), so a sum found under one is
 * right whenever and in whichever layer it was put (journal rows, which
 * the fingerprint does not see, are for the caller to rule out).
 */
int wtg_store_stream_fingerprint(struct wtg_store *store, const struct wtg_store_version *ver,
				 uint64_t ino, const char *stream, uint64_t size,
				 uint8_t fp_ret[WTG_STORE_HASH_LEN]);
/* A kept sum, and what it was put for (in the working layer of then). */
struct wtg_store_sum {
	uint8_t fp[WTG_STORE_HASH_LEN], sha1[WTG_SHA1_LEN];
	int64_t layer;
	uint64_t ino, size;
	char *stream;
};
/* Keeps @sum (its layer: the working one), a batch open. */
int wtg_store_put_sum(struct wtg_store *store, const struct wtg_store_sum *sum);
/* Every kept sum (malloc'd, with its streams' names: wtg_store_sums_free). */
int wtg_store_list_sums(struct wtg_store *store, struct wtg_store_sum **sums_ret, size_t *n_ret);
void wtg_store_sums_free(struct wtg_store_sum *sums, size_t n);
/* The version of layer @layer (its stack from it down). */
int wtg_store_version_of_layer(struct wtg_store *store, int64_t layer,
			       struct wtg_store_version *ver_ret);
/* The sum under @fp: 0, -ENOENT when there is none, or -errno. */
int wtg_store_get_sum(struct wtg_store *store, const uint8_t fp[WTG_STORE_HASH_LEN],
		      uint8_t sha1_ret[WTG_SHA1_LEN]);

/* (in no particular order of names) */
int wtg_store_list_streams_at(struct wtg_store *store, const struct wtg_store_version *ver,
			      uint64_t ino, wtg_store_stream_fn fn, void *arg);
/* Calls @fn once per name that a layer of @ver gives @ino (the topmost
 * record of its key points at @ino), through an index by inode; the base's
 * own names are the tree's.  Calls back without the lock. */
typedef int (*wtg_store_link_fn)(void *arg, uint64_t dir, const char *name);
int wtg_store_names_of_at(struct wtg_store *store, const struct wtg_store_version *ver,
			  uint64_t ino, wtg_store_link_fn fn, void *arg);

#endif
