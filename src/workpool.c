/*
 * Worker threads with a FIFO queue under one mutex.
 */
#include <pthread.h>
#include <stdlib.h>

#include "wtgfs/workpool.h"

enum { WORK_QUEUED, WORK_RUNNING, WORK_DONE };

#define MAX_QUEUED 64
#define MAX_THREADS 16

struct wtg_workpool {
	pthread_mutex_t lock;
	pthread_cond_t wake, done;
	struct wtg_work *head, *tail;
	unsigned queued;
	bool stopping;
	unsigned nthreads;
	pthread_t threads[MAX_THREADS];
};

static void run(struct wtg_workpool *pool, struct wtg_work *work)
{
	bool detached = work->detached;

	work->fn(work); /* a detached work may be freed by now */
	if (!detached) {
		pthread_mutex_lock(&pool->lock);
		work->state = WORK_DONE;
		pthread_cond_broadcast(&pool->done);
		pthread_mutex_unlock(&pool->lock);
	}
}

/* The first queued work, out of the queue and running (the lock held). */
static struct wtg_work *take(struct wtg_workpool *pool)
{
	struct wtg_work *w = pool->head;

	pool->head = w->next;
	if (!pool->head)
		pool->tail = NULL;
	pool->queued--;
	w->state = WORK_RUNNING;
	return w;
}

static void *worker(void *arg)
{
	struct wtg_workpool *pool = arg;

	pthread_mutex_lock(&pool->lock);
	for (;;) {
		while (!pool->head && !pool->stopping)
			pthread_cond_wait(&pool->wake, &pool->lock);
		if (pool->stopping)
			break;
		struct wtg_work *w = take(pool);
		pthread_mutex_unlock(&pool->lock);
		run(pool, w);
		pthread_mutex_lock(&pool->lock);
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

struct wtg_workpool *wtg_workpool_new(unsigned nthreads)
{
	struct wtg_workpool *pool;

	if (nthreads == 0)
		return NULL;
	if (nthreads > MAX_THREADS)
		nthreads = MAX_THREADS;
	pool = calloc(1, sizeof(*pool));
	if (!pool)
		return NULL;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->wake, NULL);
	pthread_cond_init(&pool->done, NULL);
	for (; pool->nthreads < nthreads; pool->nthreads++)
		if (pthread_create(&pool->threads[pool->nthreads], NULL, worker, pool) != 0)
			break;
	if (pool->nthreads == 0) {
		wtg_workpool_free(pool);
		return NULL;
	}
	return pool;
}

void wtg_workpool_free(struct wtg_workpool *pool)
{
	if (!pool)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->stopping = true;
	pthread_cond_broadcast(&pool->wake);
	pthread_mutex_unlock(&pool->lock);
	for (unsigned i = 0; i < pool->nthreads; i++)
		pthread_join(pool->threads[i], NULL);
	/* only detached work can still be queued: nobody waits for it */
	for (struct wtg_work *w = pool->head, *next; w; w = next) {
		next = w->next;
		w->state = WORK_DONE;
		w->fn = NULL;
		free(w);
	}
	pthread_cond_destroy(&pool->done);
	pthread_cond_destroy(&pool->wake);
	pthread_mutex_destroy(&pool->lock);
	free(pool);
}

bool wtg_workpool_submit(struct wtg_workpool *pool, struct wtg_work *work)
{
	if (!pool)
		return false;
	pthread_mutex_lock(&pool->lock);
	if (pool->queued >= MAX_QUEUED || pool->stopping) {
		pthread_mutex_unlock(&pool->lock);
		return false;
	}
	work->state = WORK_QUEUED;
	work->next = NULL;
	if (pool->tail)
		pool->tail->next = work;
	else
		pool->head = work;
	pool->tail = work;
	pool->queued++;
	pthread_cond_signal(&pool->wake);
	pthread_mutex_unlock(&pool->lock);
	return true;
}

bool wtg_workpool_help(struct wtg_workpool *pool)
{
	if (!pool)
		return false;
	pthread_mutex_lock(&pool->lock);
	struct wtg_work *w = pool->head ? take(pool) : NULL;
	pthread_mutex_unlock(&pool->lock);
	if (w)
		run(pool, w);
	return w != NULL;
}

/* Takes queued @work out of the queue (the lock held). */
static void unqueue(struct wtg_workpool *pool, struct wtg_work *work)
{
	struct wtg_work **p = &pool->head, *prev = NULL;

	while (*p != work) {
		prev = *p;
		p = &(*p)->next;
	}
	*p = work->next;
	if (pool->tail == work)
		pool->tail = prev;
	pool->queued--;
}

void wtg_workpool_wait(struct wtg_workpool *pool, struct wtg_work *work)
{
	pthread_mutex_lock(&pool->lock);
	if (work->state == WORK_QUEUED) {
		/* not started: take it back and run it here */
		unqueue(pool, work);
		work->state = WORK_RUNNING;
		pthread_mutex_unlock(&pool->lock);
		work->fn(work);
		work->state = WORK_DONE;
		return;
	}
	while (work->state != WORK_DONE)
		pthread_cond_wait(&pool->done, &pool->lock);
	pthread_mutex_unlock(&pool->lock);
}

bool wtg_workpool_cancel(struct wtg_workpool *pool, struct wtg_work *work)
{
	pthread_mutex_lock(&pool->lock);
	bool queued = work->state == WORK_QUEUED;
	if (queued) {
		unqueue(pool, work);
		work->state = WORK_DONE;
	}
	while (work->state != WORK_DONE)
		pthread_cond_wait(&pool->done, &pool->lock);
	pthread_mutex_unlock(&pool->lock);
	return queued;
}
