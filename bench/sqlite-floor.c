/*
 * bench/sqlite-floor: what SQLite itself must spend on one durable
 * transaction per write, measured on the disk of a directory, for
 * bench/write to print beside wtgfs's random writes + fsync.
 *
 * The database is set up as a delta is (4 KiB pages, auto_vacuum
 * INCREMENTAL, WAL, synchronous NORMAL, a 64 MiB page cache) and each
 * transaction is what a write + fsync needs at the least: BEGIN IMMEDIATE,
 * one INSERT OR REPLACE of a --size-byte blob under one of --keys keys
 * (random, so that rows are replaced as a rewritten slot is), COMMIT, then
 * fdatasync() of the WAL, which is how a delta's durable commit syncs.
 * SQLite checkpoints as it does for a delta (every 1000 pages).
 *
 * Prints one line: "N transactions of B bytes: S s, U us each".
 *
 * This file is part of wtgfs, licensed under the GNU GPL version 3 or later.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f)
{
	fprintf(f, "usage: sqlite-floor [--count N] [--size BYTES] [--keys N] DIR\n"
		   "\n"
		   "Times N durable SQLite transactions, each replacing one BYTES-byte blob,\n"
		   "in a fresh database in DIR set up as a wtgfs delta is; removes it after.\n"
		   "\n"
		   "  -n, --count N   transactions (default: 10000)\n"
		   "  -s, --size B    bytes of each blob (default: 4096)\n"
		   "  -k, --keys N    distinct keys the blobs go under (default: 16384)\n"
		   "  -h, --help      show this help\n");
}

static int fail(sqlite3 *db, const char *what)
{
	fprintf(stderr, "sqlite-floor: %s: %s\n", what, db ? sqlite3_errmsg(db) : "out of memory");
	return 2;
}

static int exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : fail(db, sql);
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
	if (errno || *end || v < 1 || v > INT_MAX)
		return -1;
	*ret = v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"count", required_argument, NULL, 'n'},
					     {"size", required_argument, NULL, 's'},
					     {"keys", required_argument, NULL, 'k'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	long count = 10000, size = 4096, keys = 16384;
	int c;

	while ((c = getopt_long(argc, argv, "n:s:k:h", opts, NULL)) != -1) {
		long *p = c == 'n' ? &count : c == 's' ? &size : c == 'k' ? &keys : NULL;
		if (c == 'h') {
			usage(stdout);
			return 0;
		}
		if (!p || parse(optarg, p)) {
			if (p)
				fprintf(stderr, "sqlite-floor: '%s' is not a whole number above 0\n",
					optarg);
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	char path[PATH_MAX], wal[PATH_MAX + 8];
	if (snprintf(path, sizeof(path), "%s/sqlite-floor-%d.db", argv[optind], (int)getpid()) >=
	    (int)sizeof(path)) {
		fprintf(stderr, "sqlite-floor: '%s': path too long\n", argv[optind]);
		return 2;
	}
	snprintf(wal, sizeof(wal), "%s-wal", path);

	sqlite3 *db = NULL;
	sqlite3_stmt *put = NULL;
	/* the bytes come from a pool filled before the clock starts */
	size_t pool_len = (size_t)size + (1 << 20);
	unsigned char *pool = malloc(pool_len);
	int rc = 2, walfd = -1;
	if (!pool)
		return fail(NULL, "memory");
	srandom(20261201);
	for (size_t j = 0; j < pool_len; j++)
		pool[j] = (unsigned char)random();
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
	    SQLITE_OK) {
		fail(db, path);
		goto out;
	}
	if (exec(db, "PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL;"
		     " PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536;"
		     " CREATE TABLE t(k INTEGER PRIMARY KEY, data BLOB NOT NULL)") ||
	    sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO t(k, data) VALUES(?1, ?2)", -1, &put,
			       NULL) != SQLITE_OK) {
		fail(db, "setting up");
		goto out;
	}
	double t0 = now();
	for (long i = 0; i < count; i++) {
		const unsigned char *blob = pool + (size_t)random() % (1 << 20);
		if (exec(db, "BEGIN IMMEDIATE"))
			goto out;
		sqlite3_bind_int64(put, 1, random() % keys);
		sqlite3_bind_blob(put, 2, blob, (int)size, SQLITE_STATIC);
		if (sqlite3_step(put) != SQLITE_DONE) {
			fail(db, "insert");
			goto out;
		}
		sqlite3_reset(put);
		if (exec(db, "COMMIT"))
			goto out;
		if (walfd < 0 && (walfd = open(wal, O_RDONLY | O_CLOEXEC)) < 0) {
			fprintf(stderr, "sqlite-floor: cannot open '%s': %s\n", wal, strerror(errno));
			goto out;
		}
		if (fdatasync(walfd) < 0) {
			fprintf(stderr, "sqlite-floor: cannot sync '%s': %s\n", wal, strerror(errno));
			goto out;
		}
	}
	double t = now() - t0;
	printf("%ld transactions of %ld bytes: %.3f s, %.1f us each\n", count, size, t,
	       t / (double)count * 1e6);
	rc = 0;
out:
	if (walfd >= 0)
		close(walfd);
	sqlite3_finalize(put);
	sqlite3_close(db);
	free(pool);
	unlink(wal);
	snprintf(wal, sizeof(wal), "%s-shm", path);
	unlink(wal);
	unlink(path);
	return rc;
}
