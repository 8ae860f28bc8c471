/*
 * The merged view without FUSE: a small base tree (its bytes from a source
 * that computes them), a delta, changes, and the same state after the delta
 * is applied again to a fresh base, as the next mount does.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "wtgfs/source.h"
#include "wtgfs/store.h"
#include "wtgfs/tree.h"
#include "wtgfs/view.h"

/* While set, a read of the base waits in the source until it is cleared
 * (a decoder that takes long). */
static pthread_mutex_t hold_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_cond = PTHREAD_COND_INITIALIZER;
static bool hold_reads, read_held;

/* The base's bytes: byte i of a blob is (i * 7 + 3) & 0xff. */
static int computed_read(struct wtg_source *src, struct wtg_blob *blob, void *buf, size_t size,
			 uint64_t off)
{
	pthread_mutex_lock(&hold_lock);
	while (hold_reads) {
		read_held = true;
		pthread_cond_broadcast(&hold_cond);
		pthread_cond_wait(&hold_cond, &hold_lock);
	}
	pthread_mutex_unlock(&hold_lock);
	for (size_t i = 0; i < size; i++)
		((uint8_t *)buf)[i] = (uint8_t)((off + i) * 7 + 3);
	return 0;
}

static int computed_load(struct wtg_source *src, struct wtg_tree *tree)
{
	return -ENOSYS;
}

static void computed_free(struct wtg_source *src)
{
	free(src);
}

static const struct wtg_source_ops computed_ops = {
    .name = "computed",
    .load = computed_load,
    .read = computed_read,
    .free = computed_free,
};

static uint8_t base_byte(uint64_t i)
{
	return (uint8_t)(i * 7 + 3);
}

#define BIG_SIZE (3 * 65536 + 1000)

/* root 1; Windows 2; Windows/big.bin 3 (BIG_SIZE base bytes); a.txt 4 */
static void base_tree(struct wtg_tree *t)
{
	struct wtg_source *src = calloc(1, sizeof(*src));
	src->ops = &computed_ops;
	wtg_tree_init(t, src);
	struct wtg_inode *root = wtg_tree_new_inode(t, true);
	struct wtg_inode *win = wtg_tree_new_inode(t, true);
	struct wtg_inode *big = wtg_tree_new_inode(t, false);
	struct wtg_inode *a = wtg_tree_new_inode(t, false);
	wtg_inode_add_stream(big, NULL, BIG_SIZE, (struct wtg_blob *)1);
	wtg_inode_add_stream(a, NULL, 0, NULL);
	CHECK(wtg_tree_link(t, root, "Windows", 7, win) == 0);
	CHECK(wtg_tree_link(t, win, "big.bin", 7, big) == 0);
	CHECK(wtg_tree_link(t, root, "a.txt", 5, a) == 0);
}

static char path[64];

static struct wtg_view *open_view(bool create)
{
	struct wtg_store_base b = {.size = 1};
	struct wtg_store *st;
	struct wtg_tree t;
	struct wtg_view *v = NULL;

	if (create)
		CHECK(wtg_store_create(path, &b) == 0);
	CHECK(wtg_store_open(path, NULL, &st) == 0);
	base_tree(&t);
	CHECK(wtg_view_open_tree(st, &t, &v) == 0);
	return v;
}

static long read_all(struct wtg_view *v, uint64_t ino, uint8_t *buf, size_t size)
{
	struct wtg_inode *in = wtg_view_inode(v, ino);
	struct wtg_stream *s = in ? wtg_inode_data(in) : NULL;
	return s ? wtg_view_read(v, in, s, buf, size, 0) : -ENOENT;
}

static struct wtg_inode *lookup(struct wtg_view *v, uint64_t dir, const char *name)
{
	struct wtg_dentry *de = wtg_tree_lookup(wtg_view_tree(v), wtg_view_inode(v, dir), name,
						strlen(name));
	return de ? de->inode : NULL;
}

static uint64_t chunks(const char *delta)
{
	struct wtg_store *st;
	struct wtg_store_report rep = {0};
	struct wtg_store_options o = {.read_only = true};

	CHECK(wtg_store_open(delta, &o, &st) == 0);
	CHECK(wtg_store_verify(st, &rep) == 0);
	wtg_store_close(st);
	return rep.chunks;
}

static uint8_t buf[BIG_SIZE + 65536], want[BIG_SIZE + 65536];

/* Truncation inside a chunk, extension, a write past the end: zeros where
 * nothing was written, before and after a reload. */
TEST(truncate_and_extend)
{
	struct wtg_view *v = open_view(true);
	CHECK(wtg_view_truncate(v, 3, NULL, 70000) == 0);
	CHECK(wtg_view_truncate(v, 3, NULL, BIG_SIZE) == 0);
	CHECK(wtg_view_write(v, 3, NULL, "xyz", 3, BIG_SIZE + 100) == 3);
	for (uint64_t i = 0; i < BIG_SIZE + 103; i++)
		want[i] = i < 70000 ? base_byte(i) : 0;
	memcpy(want + BIG_SIZE + 100, "xyz", 3);
	for (int round = 0; round < 2; round++) {
		CHECK(read_all(v, 3, buf, sizeof(buf)) == BIG_SIZE + 103);
		CHECK(!memcmp(buf, want, BIG_SIZE + 103));
		CHECK(wtg_view_close(v) == 0);
		v = open_view(false);
	}
	CHECK(wtg_view_close(v) == 0);
	unlink(path);
}

/* A file rewritten with what the base holds stores no chunk, even after it
 * was truncated to nothing first (as hivex saves a hive). */
TEST(rewrite_as_base_costs_nothing)
{
	struct wtg_view *v = open_view(true);
	for (uint64_t i = 0; i < BIG_SIZE; i++)
		want[i] = base_byte(i);
	want[100000] ^= 0xff; /* one byte differs: one chunk */
	CHECK(wtg_view_truncate(v, 3, NULL, 0) == 0);
	for (uint64_t off = 0; off < BIG_SIZE; off += 4096) {
		size_t n = BIG_SIZE - off < 4096 ? BIG_SIZE - off : 4096;
		CHECK(wtg_view_write(v, 3, NULL, want + off, n, off) == (long)n);
	}
	CHECK(wtg_view_close(v) == 0);
	CHECK(chunks(path) == 1);
	v = open_view(false);
	CHECK(read_all(v, 3, buf, sizeof(buf)) == BIG_SIZE);
	CHECK(!memcmp(buf, want, BIG_SIZE));
	CHECK(wtg_view_close(v) == 0);
	unlink(path);
}

/* The sum the view kept at its close for stream "" of @ino (@size bytes):
 * 0 with it in @sha1, or -ENOENT. */
static int kept_sum(uint64_t ino, uint64_t size, uint8_t sha1[WTG_SHA1_LEN])
{
	struct wtg_store_options o = {.read_only = true};
	uint8_t fp[WTG_STORE_HASH_LEN];
	struct wtg_store *st;

	CHECK(wtg_store_open(path, &o, &st) == 0);
	CHECK(wtg_store_stream_fingerprint(st, NULL, ino, "", size, fp) == 0);
	int r = wtg_store_get_sum(st, fp, sha1);
	wtg_store_close(st);
	return r;
}

/* A stream written whole in order has its SHA-1 kept at close; one written
 * out of order, or partly, has none; changed later, it no longer fits. */
TEST(sums_kept_for_whole_writes)
{
	uint8_t sha1[WTG_SHA1_LEN], got[WTG_SHA1_LEN];
	struct wtg_view *v = open_view(true);

	for (uint64_t i = 0; i < BIG_SIZE; i++)
		want[i] = base_byte(i);
	memcpy(want + 100000, "changed", 7);
	CHECK(wtg_view_truncate(v, 3, NULL, 0) == 0);
	for (uint64_t off = 0; off < BIG_SIZE; off += 5000) {
		size_t n = BIG_SIZE - off < 5000 ? BIG_SIZE - off : 5000;
		CHECK(wtg_view_write(v, 3, NULL, want + off, n, off) == (long)n);
	}
	/* a.txt: two blocks, the second first */
	CHECK(wtg_view_write(v, 4, NULL, want + 4096, 4096, 4096) == 4096);
	CHECK(wtg_view_write(v, 4, NULL, want, 4096, 0) == 4096);
	CHECK(wtg_view_close(v) == 0);
	CHECK(wtg_sha1(want, BIG_SIZE, sha1) == 0);
	CHECK(kept_sum(3, BIG_SIZE, got) == 0 && !memcmp(got, sha1, sizeof(sha1)));
	CHECK(kept_sum(4, 8192, got) == -ENOENT);

	/* a byte changed in the chunk that changed before: the slots are the
	 * same, their chunk is not */
	v = open_view(false);
	CHECK(wtg_view_write(v, 3, NULL, "X", 1, 100010) == 1);
	CHECK(wtg_view_close(v) == 0);
	CHECK(kept_sum(3, BIG_SIZE, got) == -ENOENT);

	/* other bytes written whole, a truncation below the summed bytes
	 * between (the same bytes as before would find the first sum: it is
	 * right for them) */
	memcpy(want + 150000, "again", 5);
	CHECK(wtg_sha1(want, BIG_SIZE, sha1) == 0);
	v = open_view(false);
	CHECK(wtg_view_write(v, 3, NULL, want, 70000, 0) == 70000);
	CHECK(wtg_view_truncate(v, 3, NULL, 60000) == 0); /* (zeros from 60000) */
	CHECK(wtg_view_write(v, 3, NULL, want + 70000, BIG_SIZE - 70000, 70000) ==
	      (long)(BIG_SIZE - 70000));
	CHECK(wtg_view_close(v) == 0);
	CHECK(kept_sum(3, BIG_SIZE, got) == -ENOENT);
	v = open_view(false);
	CHECK(wtg_view_write(v, 3, NULL, want, BIG_SIZE, 0) == (long)BIG_SIZE);
	CHECK(wtg_view_close(v) == 0);
	CHECK(kept_sum(3, BIG_SIZE, got) == 0 && !memcmp(got, sha1, sizeof(sha1)));
	unlink(path);
}

/* Names: create, rename over, exchange, unlink of an open file, link. */
TEST(names_survive_reload)
{
	struct wtg_view *v = open_view(true);
	struct wtg_inode *f, *d;
	CHECK(wtg_view_create(v, 1, "new.txt", WTG_VIEW_FILE, NULL, &f) == 0);
	CHECK(wtg_view_write(v, f->ino, NULL, "hello", 5, 0) == 5);
	CHECK(wtg_view_create(v, 1, "NEW.TXT", WTG_VIEW_FILE, NULL, &d) == -EEXIST);
	CHECK(wtg_view_create(v, 1, "bad:name", WTG_VIEW_FILE, NULL, &d) == -EINVAL);
	CHECK(wtg_view_create(v, 1, "Dir", WTG_VIEW_DIR, NULL, &d) == 0);
	CHECK(wtg_view_rename(v, 1, "new.txt", d->ino, "moved.txt", 0) == 0);
	CHECK(wtg_view_rename(v, 1, "a.txt", d->ino, "MOVED.TXT", WTG_VIEW_NOREPLACE) == -EEXIST);
	CHECK(wtg_view_rename(v, 1, "a.txt", d->ino, "moved.txt", WTG_VIEW_EXCHANGE) == 0);
	CHECK(wtg_view_rename(v, 1, "Dir", d->ino, "inside", 0) == -EINVAL);
	CHECK(wtg_view_link(v, 2, 1, "link", &d) == -EPERM); /* a directory */
	CHECK(wtg_view_link(v, 3, 1, "big-link", &d) == 0);
	CHECK(wtg_view_open(v, f->ino) == 0);
	uint64_t fino = f->ino;
	CHECK(wtg_view_remove(v, 1, "a.txt", false) == 0); /* a.txt is new.txt now */
	CHECK(read_all(v, fino, buf, sizeof(buf)) == 5 && !memcmp(buf, "hello", 5));
	CHECK(wtg_view_release(v, fino) == 0);
	CHECK(wtg_view_inode(v, fino) == NULL);
	CHECK(wtg_view_remove(v, 1, "dir", true) == -ENOTEMPTY);
	CHECK(wtg_view_close(v) == 0);

	v = open_view(false);
	struct wtg_inode *dir = lookup(v, 1, "Dir");
	CHECK(dir && dir->dir);
	CHECK(lookup(v, 1, "a.txt") == NULL && lookup(v, 1, "new.txt") == NULL);
	CHECK(dir && lookup(v, dir->ino, "moved.txt") && lookup(v, dir->ino, "moved.txt")->ino == 4);
	struct wtg_inode *big = lookup(v, 1, "big-link");
	CHECK(big && big->ino == 3 && big->nlink == 2);
	CHECK(wtg_view_inode(v, fino) == NULL);
	CHECK(wtg_view_close(v) == 0);
	unlink(path);
}

/* A rename that changes only the case of a name keeps the file, its data
 * and the delta sound; so does the direct way (respell). */
TEST(case_only_rename)
{
	struct wtg_view *v = open_view(true);
	struct wtg_inode *f;
	uint64_t dir;
	char *old;
	CHECK(wtg_view_create(v, 1, "foo.txt", WTG_VIEW_FILE, NULL, &f) == 0);
	uint64_t fino = f->ino;
	CHECK(wtg_view_write(v, fino, NULL, "hello", 5, 0) == 5);
	CHECK(wtg_view_sync(v, true) == 0);
	CHECK(wtg_view_rename(v, 1, "foo.txt", 1, "FOO.txt", 0) == 0);
	CHECK(lookup(v, 1, "FOO.txt") && !strcmp(wtg_view_inode(v, fino)->first_name->name, "FOO.txt"));
	CHECK(read_all(v, fino, buf, sizeof(buf)) == 5 && !memcmp(buf, "hello", 5));
	/* a base file, by rename and by respell */
	CHECK(wtg_view_rename(v, 2, "big.bin", 2, "Big.bin", 0) == 0);
	CHECK(wtg_view_respell(v, 3, "BIG.BIN", &dir, &old) == 0);
	CHECK(dir == 2 && old && !strcmp(old, "Big.bin"));
	free(old);
	CHECK(wtg_view_respell(v, 3, "other.bin", &dir, &old) == -EINVAL && !old);
	CHECK(wtg_view_respell(v, 4, "A.TXT", &dir, &old) == 0 && dir == 1);
	free(old);
	CHECK(wtg_view_close(v) == 0);

	v = open_view(false);
	struct wtg_inode *in = lookup(v, 1, "foo.txt");
	CHECK(in && in->ino == fino && !strcmp(in->first_name->name, "FOO.txt"));
	CHECK(read_all(v, fino, buf, sizeof(buf)) == 5 && !memcmp(buf, "hello", 5));
	in = lookup(v, 2, "big.bin");
	CHECK(in && in->ino == 3 && !strcmp(in->first_name->name, "BIG.BIN") && in->nlink == 1);
	CHECK(read_all(v, 3, buf, sizeof(buf)) == BIG_SIZE && buf[1000] == base_byte(1000));
	in = lookup(v, 1, "a.txt");
	CHECK(in && in->ino == 4 && !strcmp(in->first_name->name, "A.TXT"));
	CHECK(wtg_view_close(v) == 0);
	unlink(path);
}

/* A view over a delta that refuses every write (opened read-only): a name
 * change the delta does not take leaves the tree as it was. */
TEST(refused_names_leave_the_tree)
{
	struct wtg_store_base b = {.size = 1};
	struct wtg_store_options ro = {.read_only = true};
	struct wtg_store *st;
	struct wtg_tree t;
	struct wtg_view *v = NULL;
	struct wtg_inode *in;

	CHECK(wtg_store_create(path, &b) == 0);
	CHECK(wtg_store_open(path, &ro, &st) == 0);
	base_tree(&t);
	CHECK(wtg_view_open_tree(st, &t, &v) == 0);
	if (!v)
		return;
	CHECK(wtg_view_create(v, 1, "new.txt", WTG_VIEW_FILE, NULL, &in) == -EROFS);
	CHECK(lookup(v, 1, "new.txt") == NULL);
	CHECK(wtg_view_create(v, 1, "newdir", WTG_VIEW_DIR, NULL, &in) == -EROFS);
	CHECK(lookup(v, 1, "newdir") == NULL);
	CHECK(wtg_view_link(v, 3, 1, "link.bin", &in) == -EROFS);
	CHECK(lookup(v, 1, "link.bin") == NULL && wtg_view_inode(v, 3)->nlink == 1);
	CHECK(wtg_view_rename(v, 1, "a.txt", 2, "moved.txt", 0) == -EROFS);
	CHECK(lookup(v, 1, "a.txt") && lookup(v, 1, "a.txt")->ino == 4);
	CHECK(lookup(v, 2, "moved.txt") == NULL);
	CHECK(wtg_view_rename(v, 1, "a.txt", 2, "big.bin", 0) == -EROFS);
	CHECK(lookup(v, 2, "big.bin") && lookup(v, 2, "big.bin")->ino == 3);
	CHECK(wtg_view_rename(v, 1, "a.txt", 2, "big.bin", WTG_VIEW_EXCHANGE) == -EROFS);
	CHECK(lookup(v, 1, "a.txt")->ino == 4 && lookup(v, 2, "big.bin")->ino == 3);
	CHECK(wtg_view_rename(v, 1, "a.txt", 1, "A.TXT", 0) == -EROFS);
	CHECK(!strcmp(wtg_view_inode(v, 4)->first_name->name, "a.txt"));
	CHECK(wtg_view_remove(v, 1, "a.txt", false) == -EROFS);
	CHECK(lookup(v, 1, "a.txt") != NULL);
	wtg_view_close(v);
	unlink(path);
}

static struct wtg_view *lock_view;
static atomic_bool writer_done, reader_first;
/* the size of inode 4 before the writer of writer_not_starved appends */
static uint64_t size_before;

static uint64_t size_of_4(void)
{
	return wtg_view_inode(lock_view, 4)->streams[0].size;
}

static void *writer(void *arg)
{
	CHECK(wtg_view_write(lock_view, 4, NULL, "w", 1, size_before) == 1);
	return NULL;
}

/* Went first when the file has not grown yet: what the reader sees under
 * the lock, not a flag the writer sets after its call (it may be
 * preempted between releasing the lock and setting it). */
static void *late_reader(void *arg)
{
	wtg_view_lock_shared(lock_view);
	atomic_store(&reader_first, size_of_4() == size_before);
	wtg_view_unlock(lock_view);
	return NULL;
}

static void pause_ms(long ms)
{
	struct timespec ts = {ms / 1000, ms % 1000 * 1000000};
	nanosleep(&ts, NULL);
}

/* A change waiting for the lock goes before readers that come after it:
 * readers that keep coming must not starve it.  The pauses only give the
 * writer time to queue; a slow machine gets more tries. */
TEST(writer_not_starved)
{
	static const long pauses[] = {50, 200, 1000};
	bool writer_first = false;
	lock_view = open_view(true);
	for (size_t i = 0; i < sizeof(pauses) / sizeof(pauses[0]) && !writer_first; i++) {
		pthread_t w, r;
		wtg_view_lock_shared(lock_view); /* a reader decoding a long read */
		size_before = size_of_4();
		pthread_create(&w, NULL, writer, NULL);
		pause_ms(pauses[i]);
		pthread_create(&r, NULL, late_reader, NULL);
		pause_ms(pauses[i]);
		wtg_view_unlock(lock_view);
		pthread_join(r, NULL);
		pthread_join(w, NULL);
		writer_first = !atomic_load(&reader_first);
	}
	CHECK(writer_first);
	CHECK(wtg_view_close(lock_view) == 0);
	unlink(path);
}

static void *slow_reader(void *arg)
{
	static uint8_t b[4096];
	CHECK(wtg_view_read_data(lock_view, 3, b, sizeof(b), 0) == sizeof(b));
	CHECK(b[10] == base_byte(10));
	return NULL;
}

static void *quick_writer(void *arg)
{
	CHECK(wtg_view_write(lock_view, 4, NULL, "q", 1, 0) == 1);
	pthread_mutex_lock(&hold_lock);
	atomic_store(&writer_done, true);
	pthread_cond_broadcast(&hold_cond);
	pthread_mutex_unlock(&hold_lock);
	return NULL;
}

/* A change does not wait for a read that decodes bytes of the base: the
 * read holds no lock while the source works. */
TEST(base_reads_hold_no_lock)
{
	pthread_t r, w;
	struct timespec until;
	lock_view = open_view(true);
	atomic_store(&writer_done, false);
	hold_reads = true;
	pthread_create(&r, NULL, slow_reader, NULL);
	pthread_mutex_lock(&hold_lock);
	while (!read_held)
		pthread_cond_wait(&hold_cond, &hold_lock);
	pthread_mutex_unlock(&hold_lock);
	pthread_create(&w, NULL, quick_writer, NULL);
	/* a generous bound, only so that a failure ends */
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 20;
	pthread_mutex_lock(&hold_lock);
	while (!atomic_load(&writer_done) &&
	       pthread_cond_timedwait(&hold_cond, &hold_lock, &until) == 0)
		;
	bool done = atomic_load(&writer_done);
	hold_reads = false;
	pthread_cond_broadcast(&hold_cond);
	pthread_mutex_unlock(&hold_lock);
	CHECK(done);
	pthread_join(r, NULL);
	pthread_join(w, NULL);
	CHECK(wtg_view_close(lock_view) == 0);
	unlink(path);
}

/* Whole chunks go to a worker to be hashed and compressed while the writer
 * goes on (a started view): a chunk changed, truncated into, cut off,
 * zeroed or made equal to another while it is at work reads back as
 * written, and the delta stores what the file holds, nothing more. */
TEST(chunks_encoded_beside_the_writer)
{
	enum { N = 8, C = 65536 };
	static uint8_t data[N * C], model[N * C], got[N * C];
	uint64_t seed = 14;
	struct wtg_view *v = open_view(true);

	CHECK(wtg_view_start(v) == 0);
	for (size_t i = 0; i < sizeof(data); i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		data[i] = (uint8_t)(seed >> 56);
	}
	for (int k = 0; k < N; k++)
		CHECK(wtg_view_write(v, 3, NULL, data + k * C, C, (uint64_t)k * C) == C);
	memcpy(model, data, sizeof(data));
	/* at once, while the chunks may be at work */
	CHECK(wtg_view_write(v, 3, NULL, "changed", 7, 2 * C + 100) == 7);
	memcpy(model + 2 * C + 100, "changed", 7);
	memset(model + C, 0, C);
	CHECK(wtg_view_write(v, 3, NULL, model + C, C, C) == C);
	CHECK(wtg_view_write(v, 3, NULL, data, C, 3 * C) == C);
	memcpy(model + 3 * C, data, C);
	CHECK(wtg_view_truncate(v, 3, NULL, 5 * C + 100) == 0);
	uint64_t size = 5 * C + 100;
	for (int round = 0; round < 3; round++) {
		CHECK(read_all(v, 3, got, sizeof(got)) == (long)size);
		CHECK(!memcmp(got, model, size));
		if (round == 0)
			CHECK(wtg_view_sync(v, true) == 0);
		else if (round == 1) {
			CHECK(wtg_view_close(v) == 0);
			v = open_view(false);
		}
	}
	CHECK(wtg_view_close(v) == 0);
	struct wtg_store *st;
	struct wtg_store_report rep = {0};
	struct wtg_store_options o = {.read_only = true};
	CHECK(wtg_store_open(path, &o, &st) == 0);
	CHECK(wtg_store_verify(st, &rep) == 0);
	wtg_store_close(st);
	/* chunks 0 (and 3, the same), 2 and 4, the 100 bytes of 5; 1 a hole */
	CHECK(rep.chunks == 4);
	CHECK(rep.problems == 0);
	unlink(path);
}

int main(void)
{
	snprintf(path, sizeof(path), "/tmp/wtgfs-unit-view-%d.delta", (int)getpid());
	unlink(path);
	RUN(truncate_and_extend);
	RUN(rewrite_as_base_costs_nothing);
	RUN(sums_kept_for_whole_writes);
	RUN(names_survive_reload);
	RUN(case_only_rename);
	RUN(writer_not_starved);
	RUN(refused_names_leave_the_tree);
	RUN(base_reads_hold_no_lock);
	RUN(chunks_encoded_beside_the_writer);
	UNIT_EXIT();
}
