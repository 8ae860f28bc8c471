/*
 * Batches: one SQLite transaction each, in WAL mode.  A durable commit
 * returns when the WAL is fdatasync'ed; a quick commit survives a crash of
 * the process and reaches the disk with the next durable one.  When SQLite
 * rolls a batch back by itself, or a commit fails, the batch is lost and
 * stays lost: every later write and commit answers its error, so nothing
 * done after it can be committed on top of a state that lacks it.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <unistd.h>

#include "wtgfs/log.h"

#include "store_int.h"

/* ---- batches ---- */

/* Runs the prepared BEGIN or COMMIT: an SQLite result code. */
static int run_end(struct wtg_store *st, int id)
{
	if (!st->q[id]) {
		int rc = sqlite3_prepare_v3(st->db, store_query_sql[id], -1,
					    SQLITE_PREPARE_PERSISTENT, &st->q[id], NULL);
		if (rc != SQLITE_OK)
			return rc;
	}
	int rc = sqlite3_step(st->q[id]);
	sqlite3_reset(st->q[id]);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int store_writable(struct wtg_store *st)
{
	if (st->read_only)
		return -EROFS;
	if (st->batch_lost)
		return st->batch_lost;
	if (st->in_batch)
		return 0;
	int r = run_end(st, Q_BEGIN);
	if (r)
		return store_sql_error(st, r);
	st->in_batch = true;
	clock_gettime(CLOCK_MONOTONIC, &st->batch_start);
	return 0;
}

/* Makes every committed transaction durable: they are all in the WAL.  Its
 * descriptor stays open while the connection is (SQLite removes the file
 * only when the last connection closes). */
static int sync_wal(struct wtg_store *st)
{
	if (!st->unsynced)
		return 0;
	if (st->wal_fd < 0) {
		char path[PATH_MAX + 8];
		snprintf(path, sizeof(path), "%s-wal", st->path);
		st->wal_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (st->wal_fd < 0)
			return errno == ENOENT ? 0 : store_write_failed(st, -errno);
	}
	if (fdatasync(st->wal_fd) < 0) {
		int r = -errno;
		wtg_error("'%s': cannot sync its log: %s", st->path, strerror(-r));
		return r;
	}
	st->unsynced = false;
	return 0;
}

int store_commit_locked(struct wtg_store *st, bool durable)
{
	int r = st->batch_lost;

	if (r)
		return r;
	if (st->in_batch) {
		st->in_batch = false;
		st->commit_durable = durable; /* for the WAL hook (checkpoint.c) */
		int rc = run_end(st, Q_COMMIT);
		if (rc != SQLITE_OK) {
			r = store_sql_error(st, rc);
			if (!sqlite3_get_autocommit(st->db))
				sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
			store_journal_forget(st);
			st->batch_lost = r;
			return r;
		}
		st->unsynced = true;
	}
	if (!r && durable)
		r = sync_wal(st);
	return r;
}

int wtg_store_begin(struct wtg_store *st)
{
	pthread_mutex_lock(&st->lock);
	int r = store_writable(st);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int wtg_store_commit(struct wtg_store *st)
{
	pthread_mutex_lock(&st->lock);
	int r = store_commit_locked(st, true);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int wtg_store_commit_nosync(struct wtg_store *st)
{
	pthread_mutex_lock(&st->lock);
	int r = store_commit_locked(st, false);
	pthread_mutex_unlock(&st->lock);
	return r;
}

void wtg_store_rollback_batch(struct wtg_store *st)
{
	pthread_mutex_lock(&st->lock);
	if (st->in_batch) {
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		store_journal_forget(st);
	}
	st->in_batch = false;
	pthread_mutex_unlock(&st->lock);
}

int wtg_store_lost(struct wtg_store *st)
{
	pthread_mutex_lock(&st->lock);
	int r = st->batch_lost;
	pthread_mutex_unlock(&st->lock);
	return r;
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
