/*
 * bench/store-floor: what the delta store itself spends on one durable
 * small write, without FUSE or the view, for bench/write to print beside
 * bench/sqlite-floor (what SQLite alone must spend on such a transaction).
 *
 * Does in a fresh delta, through wtgfs/store.h, what a mount's daemon does
 * for a 4 KiB pwrite() + fsync() at a random 4 KiB-aligned offset of a
 * --size-byte file: one journal row of the write's bytes, carrying the
 * file's new mtime and ctime, then a durable commit (the first write also
 * records the inode, as the view does when a write changes more than the
 * times); and, as the view does, a slot whose journal holds
 * JOURNAL_MAX_ROWS rows goes into a chunk (put, extent, its rows dropped,
 * the inode recorded) instead of another row.
 * The store runs as a mount's does (wtg_store_start: checkpoints on a
 * thread of their own).
 *
 * Prints one line: "N durable writes of B bytes: S s, U us each".
 *
 * This file is part of wtgfs, licensed under the GNU GPL version 3 or later.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wtgfs/store.h"

#define INO 100
#define BLOCK 4096
/* as src/view.c's JOURNAL_MAX_ROWS */
#define MAX_ROWS 16

static void usage(FILE *f)
{
	fprintf(f, "usage: store-floor [--count N] [--size BYTES] DIR\n"
		   "\n"
		   "Times N durable 4 KiB writes at random offsets of a BYTES-byte file, made\n"
		   "through the delta store alone (a journal row, the inode, a durable commit)\n"
		   "in a fresh delta in DIR; removes it after.\n"
		   "\n"
		   "  -n, --count N   writes (default: 10000)\n"
		   "  -s, --size B    bytes of the file (default: 67108864)\n"
		   "  -h, --help      show this help\n");
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int parse(const char *s, long *ret)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || v < 1)
		return -1;
	*ret = v;
	return 0;
}

static int fail(const char *what, int r)
{
	fprintf(stderr, "store-floor: %s: %s\n", what, strerror(-r));
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"count", required_argument, NULL, 'n'},
					     {"size", required_argument, NULL, 's'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	long count = 10000, size = 64L << 20;
	int c;

	while ((c = getopt_long(argc, argv, "n:s:h", opts, NULL)) != -1) {
		long *p = c == 'n' ? &count : c == 's' ? &size : NULL;
		if (c == 'h') {
			usage(stdout);
			return 0;
		}
		if (!p || parse(optarg, p)) {
			if (p)
				fprintf(stderr, "store-floor: '%s' is not a whole number above 0\n",
					optarg);
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	if (size < WTG_STORE_CHUNK_SIZE || size % WTG_STORE_CHUNK_SIZE) {
		fprintf(stderr, "store-floor: --size must be a whole number of 64 KiB chunks\n");
		return 2;
	}
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/store-floor-%d.delta", argv[optind], (int)getpid()) >=
	    (int)sizeof(path)) {
		fprintf(stderr, "store-floor: '%s': path too long\n", argv[optind]);
		return 2;
	}

	struct wtg_store_base base = {.size = 1, .index = 1};
	snprintf(base.path, sizeof(base.path), "/store-floor");
	size_t slots = (size_t)(size / WTG_STORE_CHUNK_SIZE);
	unsigned char *rows = calloc(slots, 1);
	/* the bytes come from a pool filled before the clock starts */
	size_t pool_len = WTG_STORE_CHUNK_SIZE + (1 << 20);
	unsigned char *pool = malloc(pool_len);
	struct wtg_store *st = NULL;
	int rc = 2, r;
	if (!pool || !rows)
		return fail("memory", -ENOMEM);
	srandom(20261201);
	for (size_t j = 0; j < pool_len; j++)
		pool[j] = (unsigned char)random();
	r = wtg_store_create(path, &base);
	if (r)
		return fail(path, r);
	r = wtg_store_open(path, NULL, &st);
	if (r) {
		fail(path, r);
		goto out;
	}
	wtg_store_start(st);
	struct wtg_store_inode in = {.attributes = 0x20, .crtime = 1, .mtime = 1, .atime = 1,
				     .ctime = 1};
	r = wtg_store_set_inode(st, INO, &in);
	if (!r)
		r = wtg_store_set_stream(st, INO, "", (uint64_t)size, false);
	if (!r)
		r = wtg_store_commit(st);
	if (r) {
		fail("setting up", r);
		goto out;
	}
	double t0 = now();
	for (long i = 0; i < count; i++) {
		long block = random() % (size / BLOCK);
		uint64_t slot = (uint64_t)block * BLOCK / WTG_STORE_CHUNK_SIZE;
		uint32_t off = (uint32_t)(block * BLOCK % WTG_STORE_CHUNK_SIZE);
		const unsigned char *data = pool + (size_t)random() % (1 << 20);
		int64_t times[2] = {2 + i, 2 + i};
		in.mtime = in.ctime = times[0];
		if (rows[slot] >= MAX_ROWS) {
			uint8_t hash[WTG_STORE_HASH_LEN];
			r = wtg_store_journal_drop(st, INO, "", slot);
			if (!r)
				r = wtg_store_put_chunk(st, data, WTG_STORE_CHUNK_SIZE, hash);
			if (!r)
				r = wtg_store_set_extent(st, INO, "", slot, hash);
			if (!r)
				r = wtg_store_set_inode(st, INO, &in);
			rows[slot] = 0;
		} else {
			r = wtg_store_journal_put(st, INO, "", slot, off, data, BLOCK, i ? times : NULL);
			if (!r && !i)
				r = wtg_store_set_inode(st, INO, &in);
			rows[slot]++;
		}
		if (!r)
			r = wtg_store_commit(st);
		if (r) {
			fail("a write", r);
			goto out;
		}
	}
	double t = now() - t0;
	printf("%ld durable writes of %d bytes: %.3f s, %.1f us each\n", count, BLOCK, t,
	       t / (double)count * 1e6);
	rc = 0;
out:
	if (st && (r = wtg_store_close(st)) && !rc)
		rc = fail("closing", r);
	free(pool);
	free(rows);
	unlink(path);
	for (const char *sfx = "-wal"; sfx; sfx = sfx[1] == 'w' ? "-shm" : NULL) {
		char side[PATH_MAX + 8];
		snprintf(side, sizeof(side), "%s%s", path, sfx);
		unlink(side);
	}
	return rc;
}
