/* The chunk cache: hits, eviction, failed fills, one fill under contention,
 * read-ahead fills, the default size and giving memory back when the
 * machine runs short. */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "wtgfs/chunk_cache.h"

static int fills;
static pthread_mutex_t fills_lock = PTHREAD_MUTEX_INITIALIZER;

static int fill_index(void *arg, void *buf, size_t size)
{
	pthread_mutex_lock(&fills_lock);
	fills++;
	pthread_mutex_unlock(&fills_lock);
	usleep(2000); /* let other threads pile up on the same key */
	memset(buf, (int)(uintptr_t)arg, size);
	return 0;
}

static int fill_fail(void *arg, void *buf, size_t size)
{
	return -EIO;
}

TEST(hit_and_evict)
{
	struct wtg_chunk_cache *c = wtg_chunk_cache_new(3 * 1024);
	struct wtg_chunk_ref r;
	struct wtg_chunk_cache_stats st;
	int owner;

	fills = 0;
	for (uintptr_t i = 0; i < 3; i++) {
		CHECK(wtg_chunk_cache_get(c, &owner, i, 1024, fill_index, (void *)i, &r) == 0);
		CHECK(r.size == 1024 && r.data[0] == i && r.data[1023] == i);
		wtg_chunk_cache_put(c, &r);
	}
	CHECK(wtg_chunk_cache_get(c, &owner, 0, 1024, fill_index, (void *)9, &r) == 0);
	CHECK(r.data[0] == 0); /* a hit: not refilled */
	wtg_chunk_cache_put(c, &r);
	CHECK(fills == 3);
	/* a fourth chunk evicts the least recently used: index 1 */
	CHECK(wtg_chunk_cache_get(c, &owner, 3, 1024, fill_index, (void *)3, &r) == 0);
	wtg_chunk_cache_put(c, &r);
	CHECK(wtg_chunk_cache_get(c, &owner, 0, 1024, fill_index, (void *)9, &r) == 0);
	CHECK(r.data[0] == 0);
	wtg_chunk_cache_put(c, &r);
	CHECK(wtg_chunk_cache_get(c, &owner, 1, 1024, fill_index, (void *)7, &r) == 0);
	CHECK(r.data[0] == 7);
	wtg_chunk_cache_put(c, &r);
	wtg_chunk_cache_get_stats(c, &st);
	CHECK(st.bytes <= 3 * 1024);
	CHECK(st.evictions >= 2);
	wtg_chunk_cache_free(c);
}

TEST(pinned_survive_and_failures_not_cached)
{
	struct wtg_chunk_cache *c = wtg_chunk_cache_new(1024);
	struct wtg_chunk_ref a, b;
	int owner;

	CHECK(wtg_chunk_cache_get(c, &owner, 0, 1024, fill_index, (void *)1, &a) == 0);
	/* over the limit while the first is pinned: both stay valid */
	CHECK(wtg_chunk_cache_get(c, &owner, 1, 1024, fill_index, (void *)2, &b) == 0);
	CHECK(a.data[100] == 1 && b.data[100] == 2);
	wtg_chunk_cache_put(c, &a);
	wtg_chunk_cache_put(c, &b);
	CHECK(wtg_chunk_cache_get(c, &owner, 5, 64, fill_fail, NULL, &a) == -EIO);
	CHECK(wtg_chunk_cache_get(c, &owner, 5, 64, fill_index, (void *)5, &a) == 0);
	CHECK(a.data[0] == 5);
	wtg_chunk_cache_put(c, &a);
	wtg_chunk_cache_free(c);
}

static struct wtg_chunk_cache *shared;
static int shared_owner;

static void *reader(void *arg)
{
	for (uintptr_t i = 0; i < 64; i++) {
		struct wtg_chunk_ref r;
		if (wtg_chunk_cache_get(shared, &shared_owner, i % 8, 4096, fill_index,
					(void *)(i % 8), &r) != 0)
			return (void *)1;
		for (size_t k = 0; k < 4096; k++)
			if (r.data[k] != i % 8)
				return (void *)1;
		wtg_chunk_cache_put(shared, &r);
	}
	return NULL;
}

TEST(one_fill_per_chunk_under_contention)
{
	pthread_t th[8];
	shared = wtg_chunk_cache_new(1 << 20);
	fills = 0;
	for (int i = 0; i < 8; i++)
		pthread_create(&th[i], NULL, reader, NULL);
	for (int i = 0; i < 8; i++) {
		void *ret;
		pthread_join(th[i], &ret);
		CHECK(ret == NULL);
	}
	CHECK(fills == 8);
	wtg_chunk_cache_free(shared);
}

/* N readers miss on one chunk at once: the first fills it, and its fill
 * does not end before every other reader has come to wait for it, so a
 * cache that let a second reader fill too would count more than one. */
#define SAME_READERS 6

static struct wtg_chunk_cache *same;
static pthread_barrier_t same_start;
static int same_fills;

static int fill_when_all_wait(void *arg, void *buf, size_t size)
{
	struct wtg_chunk_cache_stats st;

	__atomic_add_fetch(&same_fills, 1, __ATOMIC_RELAXED);
	/* bounded, so that a broken cache fails the checks instead of hanging */
	for (int i = 0; i < 20000; i++) {
		wtg_chunk_cache_get_stats(same, &st);
		if (st.waits >= SAME_READERS - 1)
			break;
		usleep(500);
	}
	memset(buf, 0x5a, size);
	return 0;
}

static void *same_reader(void *arg)
{
	struct wtg_chunk_ref r;

	pthread_barrier_wait(&same_start);
	if (wtg_chunk_cache_get(same, &shared_owner, 42, 65536, fill_when_all_wait, NULL, &r) != 0)
		return (void *)1;
	void *bad = r.data[0] == 0x5a && r.data[65535] == 0x5a ? NULL : (void *)1;
	wtg_chunk_cache_put(same, &r);
	return bad;
}

TEST(one_decode_of_a_chunk_for_n_readers)
{
	pthread_t th[SAME_READERS];
	struct wtg_chunk_cache_stats st;

	same = wtg_chunk_cache_new(1 << 20);
	same_fills = 0;
	pthread_barrier_init(&same_start, NULL, SAME_READERS);
	for (int i = 0; i < SAME_READERS; i++)
		pthread_create(&th[i], NULL, same_reader, NULL);
	for (int i = 0; i < SAME_READERS; i++) {
		void *ret;
		pthread_join(th[i], &ret);
		CHECK(ret == NULL);
	}
	wtg_chunk_cache_get_stats(same, &st);
	CHECK(same_fills == 1);
	CHECK(st.misses == 1 && st.hits == SAME_READERS - 1);
	CHECK(st.waits >= SAME_READERS - 1);
	pthread_barrier_destroy(&same_start);
	wtg_chunk_cache_free(same);
}

/* A read-ahead and a reader of the same chunk: one fill between them. */
static void *ahead_filler(void *arg)
{
	pthread_barrier_wait(&same_start);
	return (void *)(intptr_t)wtg_chunk_cache_fill_ahead(same, &shared_owner, 7, 4096, false,
							    fill_index, (void *)7);
}

TEST(fill_ahead)
{
	struct wtg_chunk_cache *c = wtg_chunk_cache_new(4 * 1024);
	struct wtg_chunk_cache_stats st;
	struct wtg_chunk_ref r;
	int owner;

	fills = 0;
	/* filled ahead, unpinned: the next get is a hit */
	CHECK(wtg_chunk_cache_fill_ahead(c, &owner, 0, 1024, false, fill_index, (void *)3) == 1);
	CHECK(wtg_chunk_cache_state(c, &owner, 0) == WTG_CHUNK_READY);
	CHECK(wtg_chunk_cache_get(c, &owner, 0, 1024, fill_index, (void *)9, &r) == 0);
	CHECK(r.data[0] == 3 && fills == 1);
	/* cached already: skipped */
	CHECK(wtg_chunk_cache_fill_ahead(c, &owner, 0, 1024, false, fill_index, (void *)9) == 0);
	wtg_chunk_cache_put(c, &r);
	CHECK(wtg_chunk_cache_room(c) == 3 * 1024);
	/* only into free room: nothing is pushed out */
	CHECK(wtg_chunk_cache_fill_ahead(c, &owner, 1, 2048, false, fill_index, (void *)1) == 1);
	CHECK(wtg_chunk_cache_fill_ahead(c, &owner, 2, 2048, false, fill_index, (void *)2) == 0);
	CHECK(wtg_chunk_cache_state(c, &owner, 2) == WTG_CHUNK_ABSENT);
	CHECK(wtg_chunk_cache_state(c, &owner, 0) == WTG_CHUNK_READY);
	/* allowed to evict, but only a chunk of at most a third of the limit */
	CHECK(wtg_chunk_cache_fill_ahead(c, &owner, 2, 2048, true, fill_index, (void *)2) == 0);
	CHECK(wtg_chunk_cache_fill_ahead(c, &owner, 3, 1024, true, fill_index, (void *)4) == 1);
	CHECK(wtg_chunk_cache_fill_ahead(c, &owner, 4, 1024, true, fill_index, (void *)4) == 1);
	CHECK(wtg_chunk_cache_state(c, &owner, 0) == WTG_CHUNK_ABSENT); /* the oldest went */
	/* a failed fill leaves nothing */
	CHECK(wtg_chunk_cache_fill_ahead(c, &owner, 5, 64, true, fill_fail, NULL) == -EIO);
	CHECK(wtg_chunk_cache_state(c, &owner, 5) == WTG_CHUNK_ABSENT);
	wtg_chunk_cache_get_stats(c, &st);
	CHECK(st.ahead == 4 && st.ahead_skipped == 3);
	CHECK(st.bytes <= 4 * 1024);
	wtg_chunk_cache_free(c);

	/* a read-ahead racing a reader for one chunk: filled once */
	for (int round = 0; round < 20; round++) {
		pthread_t th;
		void *ahead_ret;
		same = wtg_chunk_cache_new(1 << 20);
		fills = 0;
		pthread_barrier_init(&same_start, NULL, 2);
		pthread_create(&th, NULL, ahead_filler, NULL);
		pthread_barrier_wait(&same_start);
		CHECK(wtg_chunk_cache_get(same, &shared_owner, 7, 4096, fill_index, (void *)7, &r) ==
		      0);
		CHECK(r.data[4095] == 7);
		wtg_chunk_cache_put(same, &r);
		pthread_join(th, &ahead_ret);
		CHECK(fills == 1);
		CHECK((intptr_t)ahead_ret == 0 || (intptr_t)ahead_ret == 1);
		pthread_barrier_destroy(&same_start);
		wtg_chunk_cache_free(same);
	}
}

static struct wtg_memory fake_mem;

static int fake_probe(struct wtg_memory *mem)
{
	*mem = fake_mem;
	return 0;
}

TEST(default_limit)
{
	struct wtg_memory mem = {.available = 8ull << 30, .total = 16ull << 30};

	/* what the image needs when memory allows */
	CHECK(wtg_chunk_cache_pick_limit(1500ull << 20, 128u << 20, &mem) == 1500ull << 20);
	/* a quarter of what is free at most */
	CHECK(wtg_chunk_cache_pick_limit(5ull << 30, 128u << 20, &mem) == 2ull << 30);
	/* never below the floor */
	mem.available = 100u << 20;
	CHECK(wtg_chunk_cache_pick_limit(5ull << 30, 128u << 20, &mem) == 128u << 20);
	/* unknown memory: what the image needs */
	CHECK(wtg_chunk_cache_pick_limit(3ull << 30, 128u << 20, NULL) == 3ull << 30);
}

TEST(gives_memory_back)
{
	const size_t mib = 1u << 20;
	struct wtg_chunk_cache *c = wtg_chunk_cache_new(64 * mib);
	struct wtg_chunk_cache_stats st;
	struct wtg_chunk_ref r;
	int owner;

	fake_mem = (struct wtg_memory){.available = 4096 * mib, .total = 4096 * mib};
	wtg_chunk_cache_follow_memory(c, 8 * mib, fake_probe);
	for (uintptr_t i = 0; i < 32; i++) {
		CHECK(wtg_chunk_cache_get(c, &owner, i, mib, fill_index, (void *)i, &r) == 0);
		wtg_chunk_cache_put(c, &r);
	}
	wtg_chunk_cache_get_stats(c, &st);
	CHECK(st.bytes == 32 * mib && st.effective == 64 * mib);
	/* the reserve is 256 MiB (a sixteenth of 4 GiB): 20 MiB short */
	fake_mem.available = 236 * mib;
	wtg_chunk_cache_check_memory(c);
	wtg_chunk_cache_get_stats(c, &st);
	CHECK(st.effective == 12 * mib && st.bytes <= 12 * mib);
	/* far short: down to the floor, not below */
	fake_mem.available = 10 * mib;
	wtg_chunk_cache_check_memory(c);
	wtg_chunk_cache_get_stats(c, &st);
	CHECK(st.effective == 8 * mib && st.bytes <= 8 * mib);
	/* memory back: the limit climbs again, up to the limit set */
	fake_mem.available = 4000 * mib;
	wtg_chunk_cache_check_memory(c);
	wtg_chunk_cache_get_stats(c, &st);
	CHECK(st.effective == 64 * mib);
	wtg_chunk_cache_free(c);
}

TEST(reads_meminfo)
{
	struct wtg_memory mem;

	CHECK(wtg_memory_read(&mem) == 0);
	CHECK(mem.total > 0 && mem.available <= mem.total);
}

int main(void)
{
	RUN(default_limit);
	RUN(gives_memory_back);
	RUN(reads_meminfo);
	RUN(hit_and_evict);
	RUN(pinned_survive_and_failures_not_cached);
	RUN(one_fill_per_chunk_under_contention);
	RUN(one_decode_of_a_chunk_for_n_readers);
	RUN(fill_ahead);
	UNIT_EXIT();
}
