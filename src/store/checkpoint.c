/*
 * Checkpoints off the writer's path.  In WAL mode every page a commit
 * writes goes into the -wal file first, and a checkpoint copies the log
 * back into the database; with SQLite's own auto-checkpoint the commit
 * that crosses the limit makes that copy, and its two syncs, while the
 * writer waits.  A started store (a mount's daemon) instead has a thread
 * of its own, with a connection of its own, make passive checkpoints: they
 * copy what is committed without taking the writer's lock, so the writer
 * goes on committing meanwhile.  The thread starts one when the log has
 * grown by CKPT_STEP since the last, and goes again at once when it grew by
 * CKPT_CHASE while it copied, so that it stays close behind the writer.
 * The log starts again from its beginning only when a transaction begins
 * with all of it copied; the writer makes sure of that itself once the
 * log holds CKPT_LIMIT, with a checkpoint of what the thread has not copied
 * yet (little: a short stop, where SQLite's copied all of it).  Durable
 * commits keep SQLite's way (see wal_hook).  The
 * checkpoint is SQLite's, with the same syncs in the same order, whichever
 * connection runs it: crash safety does not depend on it.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "wtgfs/log.h"

#include "store_int.h"

#define CKPT_STEP (4 << 20)
#define CKPT_CHASE (1 << 20)
#define CKPT_LIMIT (64 << 20)

static void *checkpoint_thread(void *arg)
{
	struct wtg_store *st = arg;

	pthread_mutex_lock(&st->ckpt_lock);
	for (;;) {
		while ((!st->ckpt_wanted || st->ckpt_hold) && !st->ckpt_stop)
			pthread_cond_wait(&st->ckpt_cond, &st->ckpt_lock);
		if (st->ckpt_stop)
			break;
		st->ckpt_wanted = false;
		st->ckpt_busy = true;
		pthread_mutex_unlock(&st->ckpt_lock);
		int log = 0, done = 0;
		int rc = sqlite3_wal_checkpoint_v2(st->ckpt_db, NULL, SQLITE_CHECKPOINT_PASSIVE,
						   &log, &done);
		if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
			/* the writer's own checkpoint at CKPT_LIMIT tries again */
			wtg_debug("'%s': background checkpoint: %s", st->path,
				  sqlite3_errstr(rc));
		pthread_mutex_lock(&st->ckpt_lock);
		st->ckpt_busy = false;
		pthread_cond_broadcast(&st->ckpt_cond);
		/* the log grew by much while it copied: again, at once */
		int now = __atomic_load_n(&st->ckpt_log, __ATOMIC_RELAXED);
		if (rc == SQLITE_OK && now >= log && now - log >= st->ckpt_chase)
			st->ckpt_wanted = true;
	}
	pthread_mutex_unlock(&st->ckpt_lock);
	return NULL;
}

/* After every commit of the writer's connection (SQLite calls it with the
 * frames in the log), in place of SQLite's auto-checkpoint. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct wtg_store *st = arg;

	__atomic_store_n(&st->ckpt_log, frames, __ATOMIC_RELAXED);
	if (frames < st->ckpt_woken)
		st->ckpt_woken = 0; /* the log started again */
	/* durable commits (fsync) sync the log themselves, one by one: they
	 * checkpoint as SQLite's auto-checkpoint does, in the commit, with
	 * the thread out of the way, so that no sync of theirs waits behind
	 * the thread's copy and its syncs */
	int limit = st->commit_durable ? STORE_AUTOCHECKPOINT : st->ckpt_limit;
	if (frames >= limit) {
		/* the thread stays out of the way until the log starts again:
		 * a checkpoint of its own beside this one, or beside the next
		 * transaction's start, would keep the log from restarting */
		pthread_mutex_lock(&st->ckpt_lock);
		st->ckpt_hold = true;
		while (st->ckpt_busy)
			pthread_cond_wait(&st->ckpt_cond, &st->ckpt_lock);
		pthread_mutex_unlock(&st->ckpt_lock);
		int log = 0, done = 0;
		sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
		st->ckpt_woken = 0;
		return SQLITE_OK;
	}
	if (st->ckpt_hold) { /* the log started again */
		pthread_mutex_lock(&st->ckpt_lock);
		st->ckpt_hold = false;
		pthread_cond_broadcast(&st->ckpt_cond);
		pthread_mutex_unlock(&st->ckpt_lock);
	}
	if (!st->commit_durable && frames - st->ckpt_woken >= st->ckpt_step) {
		st->ckpt_woken = frames;
		pthread_mutex_lock(&st->ckpt_lock);
		st->ckpt_wanted = true;
		pthread_cond_signal(&st->ckpt_cond);
		pthread_mutex_unlock(&st->ckpt_lock);
	}
	return SQLITE_OK;
}

int wtg_store_start(struct wtg_store *st)
{
	if (st->read_only || st->ckpt_running)
		return 0;
	int rc = sqlite3_open_v2(st->path, &st->ckpt_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
				 NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(st->ckpt_db,
				  "PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0", NULL,
				  NULL, NULL);
	if (rc != SQLITE_OK) {
		/* SQLite's auto-checkpoint stays: slower, as safe */
		wtg_debug("'%s': no background checkpoints: %s", st->path, sqlite3_errstr(rc));
		sqlite3_close(st->ckpt_db);
		st->ckpt_db = NULL;
		return 0;
	}
	int64_t page = 4096;
	store_int_query(st, "PRAGMA page_size", 0, &page);
	if (page < 512)
		page = 4096;
	st->ckpt_step = (int)(CKPT_STEP / page);
	st->ckpt_chase = (int)(CKPT_CHASE / page);
	st->ckpt_limit = (int)(CKPT_LIMIT / page);
	st->ckpt_stop = st->ckpt_wanted = st->ckpt_busy = st->ckpt_hold = false;
	st->ckpt_woken = st->ckpt_log = 0;
	if (pthread_create(&st->ckpt_thread, NULL, checkpoint_thread, st) != 0) {
		sqlite3_close(st->ckpt_db);
		st->ckpt_db = NULL;
		return 0;
	}
	st->ckpt_running = true;
	pthread_mutex_lock(&st->lock);
	sqlite3_wal_hook(st->db, wal_hook, st);
	pthread_mutex_unlock(&st->lock);
	return 0;
}

void store_stop_checkpoints(struct wtg_store *st)
{
	if (!st->ckpt_running)
		return;
	sqlite3_wal_autocheckpoint(st->db, STORE_AUTOCHECKPOINT); /* SQLite's hook again */
	pthread_mutex_lock(&st->ckpt_lock);
	st->ckpt_stop = true;
	pthread_cond_broadcast(&st->ckpt_cond);
	pthread_mutex_unlock(&st->ckpt_lock);
	pthread_join(st->ckpt_thread, NULL);
	st->ckpt_running = false;
	/* before the writer's connection: the last to close checkpoints and
	 * removes the log */
	sqlite3_close(st->ckpt_db);
	st->ckpt_db = NULL;
}
