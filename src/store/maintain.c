/*
 * Checking and cleaning a delta: verify (SQLite's structure, the layer
 * graph, every record's references, every chunk hashed again) and gc
 * (layers nothing reaches, then what no record names, then the file
 * shrinks).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "wtgfs/hash.h"
#include "wtgfs/log.h"

#include "store_int.h"

/* ---- verify and gc ---- */

/* Runs @sql; each row it returns is a problem, described by its columns. */
static int problems(struct wtg_store *st, const char *sql, const char *what, uint64_t *count)
{
	sqlite3_stmt *s;
	int r = store_prepare(st, sql, &s);

	if (r)
		return r;
	while ((r = store_step(st, s)) == 1) {
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
	int r = store_prepare(st, "SELECT hash, size, codec, data FROM chunks", &s);

	if (r)
		return r;
	while ((r = store_step(st, s)) == 1) {
		uint8_t key[WTG_STORE_HASH_LEN];
		char hex[2 * WTG_STORE_HASH_LEN + 1] = "?";
		size_t size;
		const char *bad = NULL;

		rep->chunks++;
		rep->stored_bytes += (uint64_t)sqlite3_column_bytes(s, 3);
		if (!store_column_hash(s, 0, key)) {
			bad = "a chunk's key is not a hash";
		} else if (store_decode_row(st, s, 1, buf, &size)) {
			bad = "cannot be decoded";
		} else {
			rep->chunk_bytes += size;
			if (!store_key_matches(key, buf, size))
				bad = "its bytes do not hash to its key";
		}
		if (bad) {
			if (sqlite3_column_bytes(s, 0) == WTG_STORE_HASH_LEN)
				store_hex_short(key, hex);
			if (++rep->problems <= 20)
				wtg_error("'%s': chunk %s: %s", st->path, hex, bad);
		}
	}
	sqlite3_finalize(s);
	return r < 0 ? r : 0;
}

/* Each security descriptor's bytes against its key. */
static int verify_sds(struct wtg_store *st, struct wtg_store_report *rep)
{
	sqlite3_stmt *s;
	int r = store_prepare(st, "SELECT hash, data FROM sds WHERE length(hash) = 32", &s);

	if (r)
		return r;
	while ((r = store_step(st, s)) == 1) {
		uint8_t key[WTG_STORE_HASH_LEN];
		char hex[17];

		if (store_column_hash(s, 0, key) &&
		    store_key_matches(key, sqlite3_column_blob(s, 1),
				      (size_t)sqlite3_column_bytes(s, 1)))
			continue;
		store_hex_short(key, hex);
		if (++rep->problems <= 20)
			wtg_error("'%s': security descriptor %s: its bytes do not hash to its key",
				  st->path, hex);
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
	r = store_prepare(st, "PRAGMA integrity_check(20)", &s);
	while (!r && (r = store_step(st, s)) == 1) {
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
		r = store_int_query(st, "SELECT count(*) FROM layers", 0, &v);
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
			     "SELECT 'layer ' || id FROM layers WHERE parent ="
			     " (SELECT value FROM meta WHERE key = 'head')",
			     "HEAD has a layer on top of it", &rep.problems);
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
			     "SELECT 'chunk ' || lower(hex(substr(hash, 1, 8))) FROM chunks c"
			     " WHERE NOT EXISTS (SELECT 1 FROM extents e WHERE e.chunk = c.hash)",
			     "a chunk that nothing names takes space (run 'wtgfs gc')",
			     &rep.problems);
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
	/* the index of the base (base.c): as many records as it says, and no
	 * name of an inode it lacks */
	if (!r && st->base_indexed)
		r = problems(st,
			     "SELECT m.value || ' inodes recorded, ' || (SELECT count(*) FROM"
			     " base_inodes) || ' there' FROM meta m WHERE m.key = 'base_indexed'"
			     " AND m.value != (SELECT count(*) FROM base_inodes)",
			     "the index of the base is incomplete", &rep.problems);
	if (!r && st->base_indexed)
		r = problems(st,
			     "SELECT quote(name) || ' in directory ' || dir FROM base_names n"
			     " WHERE NOT EXISTS (SELECT 1 FROM base_inodes i WHERE i.ino = n.ino)",
			     "the index of the base names a missing inode", &rep.problems);
	if (!r)
		r = problems(st,
			     "SELECT 'inode ' || ino || ' stream ' || quote(stream) || ' chunk ' ||"
			     " idx || ' in layer ' || layer FROM journal WHERE layer !="
			     " (SELECT value FROM meta WHERE key = 'head') OR off < 0 OR idx < 0"
			     " OR off + length(data) > 65536",
			     "a journal row is not of HEAD or does not fit its chunk slot",
			     &rep.problems);
	if (!r)
		r = store_int_query(st, "SELECT count(*) FROM journal", 0, &v);
	rep.journal = (uint64_t)v;
	if (!r)
		r = store_int_query(st, "SELECT count(*) FROM extents", 0, &v);
	rep.extents = (uint64_t)v;
	if (!r)
		r = verify_chunks(st, &rep, buf);
	if (!r)
		r = verify_sds(st, &rep);
out:
	pthread_mutex_unlock(&st->lock);
	free(buf);
	if (report)
		*report = rep;
	if (r)
		return r;
	return rep.problems ? -EIO : 0;
}

struct gc_args {
	int64_t expire;
	struct wtg_store_gc_report *rep;
};

static int changes(struct wtg_store *st, const char *sql, uint64_t *count)
{
	int r = store_exec(st, sql);
	if (!r)
		*count += (uint64_t)sqlite3_changes(st->db);
	return r;
}

static int gc_fn(struct wtg_store *st, const void *arg, int64_t *top_ret)
{
	const struct gc_args *a = arg;
	struct wtg_store_gc_report *rep = a->rep;
	uint64_t dropped = 0, sums = 0;
	int64_t v = 0;
	sqlite3_stmt *s;
	int r = store_prepare(
	    st,
	    "CREATE TEMP TABLE live AS WITH RECURSIVE up(id) AS ("
	    " SELECT value FROM meta WHERE key = 'head'"
	    " UNION SELECT layer FROM snapshots WHERE abandoned IS NULL OR abandoned >= ?1"
	    " UNION SELECT parent FROM layers JOIN up ON layers.id = up.id"
	    "  WHERE parent IS NOT NULL) SELECT id FROM up",
	    &s);

	*top_ret = store_top(st);
	if (r)
		return r;
	sqlite3_bind_int64(s, 1, a->expire);
	r = store_run(st, s);
	sqlite3_finalize(s);
	if (!r)
		r = store_int_query(st,
				    "SELECT count(*) FROM snapshots WHERE layer NOT IN live AND"
				    " abandoned IS NOT NULL",
				    0, &v);
	rep->abandoned = (uint64_t)v;
	if (!r)
		r = changes(st, "DELETE FROM inodes WHERE layer NOT IN live", &rep->records);
	if (!r)
		r = changes(st, "DELETE FROM names WHERE layer NOT IN live", &rep->records);
	if (!r)
		r = changes(st, "DELETE FROM streams WHERE layer NOT IN live", &rep->records);
	if (!r)
		r = changes(st, "DELETE FROM extents WHERE layer NOT IN live", &rep->records);
	if (!r) /* (a sum is right in any layer: one of a layer that went is
		  * dropped only to keep the table small) */
		r = changes(st, "DELETE FROM stream_sums WHERE layer NOT IN live", &sums);
	if (!r)
		r = changes(st, "DELETE FROM snapshots WHERE layer NOT IN live", &dropped);
	if (!r)
		r = changes(st, "DELETE FROM layers WHERE id NOT IN live", &rep->layers);
	if (!r)
		r = store_exec(st, "DROP TABLE live;"
				   "DELETE FROM sds WHERE hash NOT IN"
				   " (SELECT sd FROM inodes WHERE sd IS NOT NULL);"
				   "CREATE TEMP TABLE dead AS SELECT rowid AS id FROM chunks"
				   " WHERE NOT EXISTS (SELECT 1 FROM extents"
				   "  WHERE extents.chunk = chunks.hash)");
	if (!r)
		r = store_int_query(st, "SELECT coalesce(sum(length(data)), 0) FROM chunks"
					" WHERE rowid IN dead", 0, &v);
	rep->chunk_bytes = (uint64_t)v;
	if (!r)
		r = changes(st, "DELETE FROM chunks WHERE rowid IN dead", &rep->chunks);
	if (!r)
		r = store_exec(st, "DROP TABLE dead");
	return r;
}

/* The bytes of the delta and its log. */
static uint64_t file_bytes(const char *path)
{
	char wal[PATH_MAX + 8];
	struct stat sb;
	uint64_t n = 0;

	if (stat(path, &sb) == 0)
		n += (uint64_t)sb.st_size;
	snprintf(wal, sizeof(wal), "%s-wal", path);
	if (stat(wal, &sb) == 0)
		n += (uint64_t)sb.st_size;
	return n;
}

int wtg_store_gc(struct wtg_store *st, int64_t expire, struct wtg_store_gc_report *report)
{
	struct wtg_store_gc_report rep = {0};
	struct gc_args a = {expire, &rep};

	pthread_mutex_lock(&st->lock);
	rep.file_before = file_bytes(st->path);
	int r = store_views_lock(st, true, "collect");
	if (r) {
		pthread_mutex_unlock(&st->lock);
		return r;
	}
	r = store_transaction(st, gc_fn, &a);
	store_views_unlock(st);
	/* the free pages go back to the file system, then the log is emptied
	 * so the file is as small as it says */
	if (!r)
		r = store_exec(st, "PRAGMA incremental_vacuum");
	if (!r)
		r = store_exec(st, "PRAGMA wal_checkpoint(TRUNCATE)");
	rep.file_after = file_bytes(st->path);
	pthread_mutex_unlock(&st->lock);
	if (report)
		*report = rep;
	return r;
}
