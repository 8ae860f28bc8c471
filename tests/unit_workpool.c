/* The work pool: work runs once, waits return after it ran, busy pools
 * hand work back, a waiting thread can run queued work, detached work is
 * freed either way. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "unit.h"
#include "wtgfs/workpool.h"

struct counted {
	struct wtg_work work;
	atomic_int *counter;
	int sleep_us;
};

static void count_fn(struct wtg_work *w)
{
	struct counted *c = (struct counted *)w;
	if (c->sleep_us)
		usleep((useconds_t)c->sleep_us);
	atomic_fetch_add(c->counter, 1);
}

static void count_and_free_fn(struct wtg_work *w)
{
	count_fn(w);
	free(w);
}

TEST(submit_and_wait)
{
	struct wtg_workpool *pool = wtg_workpool_new(2);
	atomic_int n = 0;
	struct counted c[40];

	CHECK(pool != NULL);
	for (int i = 0; i < 40; i++) {
		c[i] = (struct counted){.work.fn = count_fn, .counter = &n, .sleep_us = 200};
		CHECK(wtg_workpool_submit(pool, &c[i].work));
	}
	for (int i = 39; i >= 0; i--) /* waiting out of order: some run here */
		wtg_workpool_wait(pool, &c[i].work);
	CHECK(atomic_load(&n) == 40);
	wtg_workpool_free(pool);
}

TEST(full_queue_refuses)
{
	struct wtg_workpool *pool = wtg_workpool_new(1);
	atomic_int n = 0;
	static struct counted c[200];
	int accepted = 0;

	for (int i = 0; i < 200; i++) {
		c[i] = (struct counted){.work.fn = count_fn, .counter = &n, .sleep_us = 1000};
		if (wtg_workpool_submit(pool, &c[i].work))
			accepted++;
		else
			break;
	}
	CHECK(accepted < 200);
	for (int i = 0; i < accepted; i++)
		wtg_workpool_wait(pool, &c[i].work);
	CHECK(atomic_load(&n) == accepted);
	wtg_workpool_free(pool);
}

TEST(detached_work_freed)
{
	struct wtg_workpool *pool = wtg_workpool_new(1);
	atomic_int n = 0;
	for (int i = 0; i < 20; i++) {
		struct counted *c = calloc(1, sizeof(*c));
		*c = (struct counted){.work.fn = count_and_free_fn,
				      .work.detached = true,
				      .counter = &n,
				      .sleep_us = 500};
		if (!wtg_workpool_submit(pool, &c->work))
			free(c);
	}
	/* freeing with work still queued: LeakSanitizer checks nothing leaks */
	wtg_workpool_free(pool);
	CHECK(atomic_load(&n) <= 20);
}

/* Holds the pool's one worker until released. */
struct blocker {
	struct wtg_work work;
	atomic_int started, release;
};

static void block_fn(struct wtg_work *w)
{
	struct blocker *b = (struct blocker *)w;
	atomic_store(&b->started, 1);
	while (!atomic_load(&b->release))
		usleep(100);
}

struct where {
	struct wtg_work work;
	pthread_t thread;
	atomic_int ran;
};

static void where_fn(struct wtg_work *w)
{
	struct where *x = (struct where *)w;
	x->thread = pthread_self();
	atomic_fetch_add(&x->ran, 1);
}

TEST(help_runs_queued_work_here)
{
	struct wtg_workpool *pool = wtg_workpool_new(1);
	struct blocker b = {.work.fn = block_fn};
	struct where w1 = {.work.fn = where_fn}, w2 = {.work.fn = where_fn};

	CHECK(!wtg_workpool_help(NULL));
	CHECK(wtg_workpool_submit(pool, &b.work));
	while (!atomic_load(&b.started))
		usleep(100);
	CHECK(!wtg_workpool_help(pool)); /* nothing queued: the worker has it */
	CHECK(wtg_workpool_submit(pool, &w1.work));
	CHECK(wtg_workpool_submit(pool, &w2.work));
	CHECK(wtg_workpool_help(pool)); /* the oldest: w1, run by this thread */
	CHECK(atomic_load(&w1.ran) == 1 && pthread_equal(w1.thread, pthread_self()));
	CHECK(atomic_load(&w2.ran) == 0);
	wtg_workpool_wait(pool, &w1.work); /* done already: returns at once */
	atomic_store(&b.release, 1);
	wtg_workpool_wait(pool, &w2.work);
	wtg_workpool_wait(pool, &b.work);
	CHECK(atomic_load(&w1.ran) == 1 && atomic_load(&w2.ran) == 1);
	wtg_workpool_free(pool);
}

TEST(no_pool_means_no_threads)
{
	struct counted c = {.work.fn = count_fn};
	CHECK(wtg_workpool_new(0) == NULL);
	CHECK(!wtg_workpool_submit(NULL, &c.work));
}

/* Cancelled work that no worker started never runs; work a worker runs is
 * waited for: either way it is done with when cancel returns. */
static atomic_int gate, gate_started;

static void gate_fn(struct wtg_work *w)
{
	atomic_store(&gate_started, 1);
	while (!atomic_load(&gate))
		usleep(100);
	count_fn(w);
}

TEST(cancel_takes_queued_work_back)
{
	struct wtg_workpool *pool = wtg_workpool_new(1);
	atomic_int n = 0;
	struct counted c[10];
	int cancelled = 0;

	for (int i = 0; i < 10; i++) {
		c[i] = (struct counted){.work.fn = i ? count_fn : gate_fn, .counter = &n};
		CHECK(wtg_workpool_submit(pool, &c[i].work));
	}
	while (!atomic_load(&gate_started)) /* the one worker waits in the first */
		usleep(100);
	for (int i = 9; i >= 1; i--)
		cancelled += wtg_workpool_cancel(pool, &c[i].work);
	CHECK(cancelled == 9);
	CHECK(atomic_load(&n) == 0);
	atomic_store(&gate, 1);
	CHECK(!wtg_workpool_cancel(pool, &c[0].work)); /* started: waited for */
	CHECK(atomic_load(&n) == 1);
	wtg_workpool_free(pool);
}

int main(void)
{
	RUN(submit_and_wait);
	RUN(cancel_takes_queued_work_back);
	RUN(full_queue_refuses);
	RUN(detached_work_freed);
	RUN(help_runs_queued_work_here);
	RUN(no_pool_means_no_threads);
	UNIT_EXIT();
}
