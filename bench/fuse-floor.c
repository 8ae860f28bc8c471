/*
 * bench/fuse-floor: the SQLite floor of bench/sqlite-floor behind FUSE, so
 * that bench/write can say what any FUSE file system pays per write +
 * fsync before it does anything of its own.
 *
 * Serves one file, MNT/file, of --size bytes (zeros at first) from memory,
 * with the FUSE settings wtgfs uses (the low-level API, up to 10 worker
 * threads, default_permissions, cached pages).  A write copies the bytes
 * into memory and notes the range; an fsync makes the ranges noted since
 * the last one durable as bench/sqlite-floor does a write: BEGIN
 * IMMEDIATE, one INSERT OR REPLACE of each range's bytes, COMMIT, then
 * fdatasync() of the WAL, in a fresh database in DIR set up as a delta is.
 * Answers every other request the least it can (no extended attributes,
 * nothing else to look up).  Runs in the foreground until MNT is
 * unmounted, then removes the database.
 *
 * This file is part of wtgfs, licensed under the GNU GPL version 3 or later.
 */
#define FUSE_USE_VERSION 314
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_INO 2
#define MAX_RANGES 64

struct range {
	off_t off;
	size_t len;
};

static struct {
	pthread_mutex_t lock;
	unsigned char *data;
	size_t size;
	struct range ranges[MAX_RANGES];
	size_t nranges;
	sqlite3 *db;
	sqlite3_stmt *begin, *put, *commit;
	char wal[PATH_MAX + 8];
	int walfd;
} ff = {.lock = PTHREAD_MUTEX_INITIALIZER, .walfd = -1};

static void usage(FILE *f)
{
	fprintf(f, "usage: fuse-floor [--size BYTES] DIR MNT\n"
		   "\n"
		   "Serves MNT/file from memory; each fsync() stores the ranges written since\n"
		   "the last one in one durable SQLite transaction, in a fresh database in DIR\n"
		   "set up as a wtgfs delta is.  Runs until MNT is unmounted.\n"
		   "\n"
		   "  -s, --size B    bytes of MNT/file (default: 67108864)\n"
		   "  -h, --help      show this help\n");
}

static void fill_attr(fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = getuid();
	st->st_gid = getgid();
	if (ino == FILE_INO) {
		st->st_mode = S_IFREG | 0644;
		st->st_nlink = 1;
		st->st_size = (off_t)ff.size;
		st->st_blocks = (blkcnt_t)(ff.size / 512);
	} else {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
	}
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	conn->max_write = 1u << 20;
	conn->max_readahead = 1u << 20;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e = {.ino = FILE_INO, .attr_timeout = 1, .entry_timeout = 1};

	if (parent != FUSE_ROOT_ID || strcmp(name, "file"))
		return (void)fuse_reply_err(req, ENOENT);
	fill_attr(FILE_INO, &e.attr);
	fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	fill_attr(ino, &st);
	fuse_reply_attr(req, &st, 1);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	(void)attr;
	if (to_set & FUSE_SET_ATTR_SIZE)
		return (void)fuse_reply_err(req, EPERM); /* the file keeps its size */
	op_getattr(req, ino, fi);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != FILE_INO)
		return (void)fuse_reply_err(req, EISDIR);
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	if ((size_t)off >= ff.size)
		return (void)fuse_reply_buf(req, NULL, 0);
	if (size > ff.size - (size_t)off)
		size = ff.size - (size_t)off;
	pthread_mutex_lock(&ff.lock);
	fuse_reply_buf(req, (const char *)ff.data + off, size);
	pthread_mutex_unlock(&ff.lock);
}

/* Makes the noted ranges durable: 0 or -errno. */
static int store_ranges(void)
{
	int rc = sqlite3_step(ff.begin);

	sqlite3_reset(ff.begin);
	for (size_t i = 0; rc == SQLITE_DONE && i < ff.nranges; i++) {
		sqlite3_bind_int64(ff.put, 1, ff.ranges[i].off);
		sqlite3_bind_blob(ff.put, 2, ff.data + ff.ranges[i].off, (int)ff.ranges[i].len,
				  SQLITE_STATIC);
		rc = sqlite3_step(ff.put);
		sqlite3_reset(ff.put);
	}
	if (rc == SQLITE_DONE) {
		rc = sqlite3_step(ff.commit);
		sqlite3_reset(ff.commit);
	}
	if (rc != SQLITE_DONE) {
		fprintf(stderr, "fuse-floor: cannot store: %s\n", sqlite3_errmsg(ff.db));
		if (!sqlite3_get_autocommit(ff.db))
			sqlite3_exec(ff.db, "ROLLBACK", NULL, NULL, NULL);
		return -EIO;
	}
	ff.nranges = 0;
	if (ff.walfd < 0 && (ff.walfd = open(ff.wal, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	return fdatasync(ff.walfd) < 0 ? -errno : 0;
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	int r = 0;

	(void)ino;
	(void)fi;
	if (off < 0 || (size_t)off > ff.size || size > ff.size - (size_t)off)
		return (void)fuse_reply_err(req, EFBIG);
	pthread_mutex_lock(&ff.lock);
	memcpy(ff.data + off, buf, size);
	if (ff.nranges == MAX_RANGES)
		r = store_ranges(); /* never for one write between fsyncs */
	if (!r)
		ff.ranges[ff.nranges++] = (struct range){off, size};
	pthread_mutex_unlock(&ff.lock);
	if (r)
		fuse_reply_err(req, -r);
	else
		fuse_reply_write(req, size);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	pthread_mutex_lock(&ff.lock);
	int r = ff.nranges ? store_ranges() : 0;
	pthread_mutex_unlock(&ff.lock);
	fuse_reply_err(req, -r);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	(void)ino;
	(void)name;
	(void)size;
	fuse_reply_err(req, ENODATA);
}

static void op_ok(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static const struct fuse_lowlevel_ops ops = {
    .init = op_init,
    .lookup = op_lookup,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .open = op_open,
    .read = op_read,
    .write = op_write,
    .flush = op_ok,
    .release = op_ok,
    .fsync = op_fsync,
    .getxattr = op_getxattr,
};

static int open_db(const char *path)
{
	if (sqlite3_open_v2(path, &ff.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
						  SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK ||
	    sqlite3_exec(ff.db,
			 "PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL;"
			 " PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536;"
			 " CREATE TABLE t(k INTEGER PRIMARY KEY, data BLOB NOT NULL)",
			 NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(ff.db, "BEGIN IMMEDIATE", -1, &ff.begin, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(ff.db, "INSERT OR REPLACE INTO t(k, data) VALUES(?1, ?2)", -1,
			       &ff.put, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(ff.db, "COMMIT", -1, &ff.commit, NULL) != SQLITE_OK) {
		fprintf(stderr, "fuse-floor: cannot set up '%s': %s\n", path,
			ff.db ? sqlite3_errmsg(ff.db) : "out of memory");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"size", required_argument, NULL, 's'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	long long size = 64ll << 20;
	int c, rc = 2;

	while ((c = getopt_long(argc, argv, "s:h", opts, NULL)) != -1) {
		char *end;
		if (c == 'h') {
			usage(stdout);
			return 0;
		}
		if (c != 's' || (errno = 0, size = strtoll(optarg, &end, 10), errno || *end) ||
		    size < 4096 || size > (1ll << 32)) {
			if (c == 's')
				fprintf(stderr, "fuse-floor: '%s' is not a size from 4096 to 4 GiB\n",
					optarg);
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 2) {
		usage(stderr);
		return 2;
	}
	char path[PATH_MAX], other[PATH_MAX + 8];
	if (snprintf(path, sizeof(path), "%s/fuse-floor-%d.db", argv[optind], (int)getpid()) >=
	    (int)sizeof(path)) {
		fprintf(stderr, "fuse-floor: '%s': path too long\n", argv[optind]);
		return 2;
	}
	snprintf(ff.wal, sizeof(ff.wal), "%s-wal", path);
	ff.size = (size_t)size;
	if (!(ff.data = calloc(1, ff.size))) {
		fprintf(stderr, "fuse-floor: out of memory\n");
		return 2;
	}
	if (open_db(path) == 0) {
		char *fargv[] = {argv[0], "-o", "default_permissions,subtype=fuse-floor", NULL};
		struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
		struct fuse_session *se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
		if (se && fuse_set_signal_handlers(se) == 0) {
			if (fuse_session_mount(se, argv[optind + 1]) == 0) {
				struct fuse_loop_config *cfg = fuse_loop_cfg_create();
				if (cfg) {
					fuse_loop_cfg_set_clone_fd(cfg, 0);
					fuse_loop_cfg_set_idle_threads(cfg, 10);
					rc = fuse_session_loop_mt(se, cfg) < 0 ? 1 : 0;
					fuse_loop_cfg_destroy(cfg);
				}
				fuse_session_unmount(se);
			}
			fuse_remove_signal_handlers(se);
		} else {
			fprintf(stderr, "fuse-floor: cannot start a FUSE session\n");
		}
		if (se)
			fuse_session_destroy(se);
	}
	if (ff.walfd >= 0)
		close(ff.walfd);
	sqlite3_finalize(ff.begin);
	sqlite3_finalize(ff.put);
	sqlite3_finalize(ff.commit);
	sqlite3_close(ff.db);
	free(ff.data);
	unlink(ff.wal);
	snprintf(other, sizeof(other), "%s-shm", path);
	unlink(other);
	unlink(path);
	return rc;
}
