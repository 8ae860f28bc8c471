/*
 * A few worker threads that take work off a request thread: the second half
 * of a large read's chunks, and read-ahead of solid chunks.
 *
 * Work submitted and then waited for is never stuck behind a busy pool: if
 * no worker has started it when the submitter waits, the submitter runs it
 * itself.  Detached work (fire and forget) is malloc()ed with struct
 * wtg_work first, frees itself in its function, and is freed without
 * running when the pool is freed first.
 */
#ifndef WTGFS_WORKPOOL_H
#define WTGFS_WORKPOOL_H

#include <stdbool.h>

struct wtg_work {
	void (*fn)(struct wtg_work *work);
	bool detached;
	int state; /* the pool's */
	struct wtg_work *next;
};

struct wtg_workpool;

/* NULL when @nthreads is 0 or threads cannot start: callers then run all
 * work themselves. */
struct wtg_workpool *wtg_workpool_new(unsigned nthreads);
void wtg_workpool_free(struct wtg_workpool *pool);

/* False when the pool has too much queued already (the caller should run
 * the work itself, or skip read-ahead). */
bool wtg_workpool_submit(struct wtg_workpool *pool, struct wtg_work *work);
/* Runs the oldest queued work in this thread, as a worker would: for a
 * thread about to wait on work a worker has started, so that both cores
 * stay busy.  False when nothing is queued. */
bool wtg_workpool_help(struct wtg_workpool *pool);
/* Returns once @work (not detached) has run, here or on a worker. */
void wtg_workpool_wait(struct wtg_workpool *pool, struct wtg_work *work);
/* For work no longer wanted: takes @work (not detached) back when no worker
 * has started it (true: it never runs), else returns once it has run. */
bool wtg_workpool_cancel(struct wtg_workpool *pool, struct wtg_work *work);

#endif
