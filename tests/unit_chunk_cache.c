/* The chunk cache: hits, eviction, failed fills, one fill under contention,
 * the default size and giving memory back when the machine runs short. */
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
	UNIT_EXIT();
}
