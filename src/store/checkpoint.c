/*
 * Checkpoints off the writer's path.  In WAL mode every page a commit
 * writes goes into the -wal file first, and a checkpoint copies the log
 * back into the database; with SQLite's own auto-checkpoint the commit
 * that crosses the limit makes that copy (and its two syncs) itself, while
 * the writer waits.  A started store (a mount's daemon) instead has a
 * thread of its own, with a connection of its own, make passive
 * checkpoints whenever the log has grown by CKPT_BG_FRAMES since the last:
 * they copy what is committed without taking the writer's lock, so the
 * writer goes on committing meanwhile.  The writer itself checkpoints only
 * once the log holds CKPT_FG_FRAMES: what the thread did not copy yet
 * (little) is copied then, so that the next transaction starts the log
 * again from its beginning and the -wal file stays about that size.  The
 * checkpoint itself is SQLite's, with the same syncs in the same order,
 * whichever connection runs it: crash safety does not depend on it.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "wtgfs/log.h"

#include "store_int.h"

/* 4 MiB of 4 KiB pages: the thread's step (each checkpoint syncs twice) */
#define CKPT_BG_FRAMES 1024
/* 16 MiB: the writer completes a checkpoint, and the log starts again */
#define CKPT_FG_FRAMES 4096

static void *checkpoint_thread(void *arg)
{
	struct wtg_store *st = arg;

	pthread_mutex_lock(&st->ckpt_lock);
	for (;;) {
		while (!st->ckpt_wanted && !st->ckpt_stop)
			pthread_cond_wait(&st->ckpt_cond, &st->ckpt_lock);
		if (st->ckpt_stop)
			break;
		st->ckpt_wanted = false;
		pthread_mutex_unlock(&st->ckpt_lock);
		int log = 0, done = 0;
		int rc = sqlite3_wal_checkpoint_v2(st->ckpt_db, NULL, SQLITE_CHECKPOINT_PASSIVE,
						   &log, &done);
		if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
			/* the writer's own checkpoint at CKPT_FG_FRAMES tries again */
			wtg_debug("'%s': background checkpoint: %s", st->path,
				  sqlite3_errstr(rc));
		pthread_mutex_lock(&st->ckpt_lock);
	}
	pthread_mutex_unlock(&st->ckpt_lock);
	return NULL;
}

/* After every commit of the writer's connection (SQLite calls it with the
 * frames in the log), in place of SQLite's auto-checkpoint. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct wtg_store *st = arg;

	if (frames >= CKPT_FG_FRAMES) {
		int log = 0, done = 0;
		sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
		st->ckpt_frames = 0;
		return SQLITE_OK;
	}
	if (frames < st->ckpt_frames)
		st->ckpt_frames = 0; /* the log started again */
	if (frames - st->ckpt_frames >= CKPT_BG_FRAMES) {
		st->ckpt_frames = frames;
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
	st->ckpt_stop = st->ckpt_wanted = false;
	st->ckpt_frames = 0;
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
	sqlite3_wal_autocheckpoint(st->db, CKPT_FG_FRAMES); /* SQLite's hook again */
	pthread_mutex_lock(&st->ckpt_lock);
	st->ckpt_stop = true;
	pthread_cond_signal(&st->ckpt_cond);
	pthread_mutex_unlock(&st->ckpt_lock);
	pthread_join(st->ckpt_thread, NULL);
	st->ckpt_running = false;
	/* before the writer's connection: the last to close checkpoints and
	 * removes the log */
	sqlite3_close(st->ckpt_db);
	st->ckpt_db = NULL;
}
