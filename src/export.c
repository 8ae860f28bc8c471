/*
 * Export: a tree or a WIM image written as an image of a WIM file.  See
 * include/wtgfs/export.h for what is promised; this is the one file that
 * writes WIMs through wimlib.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <wimlib.h>

#include "export_plan.h"
#include "wtgfs/export.h"
#include "wtgfs/fileio.h"
#include "wtgfs/log.h"
#include "wtgfs/source.h"
#include "wtgfs/store.h"
#include "wtgfs/tree.h"
#include "wtgfs/ntfs_write.h"
#include "wtgfs/view.h"
#include "wtgfs/wim.h"

/* Paths that exist only while an export runs, for the signal handler. */
static char tmp_paths[2][PATH_MAX];
static volatile sig_atomic_t tmp_used[2];
enum { TMP_NTFS, TMP_WIM };

void wtg_export_interrupted(void)
{
	for (int i = 0; i < 2; i++)
		if (tmp_used[i])
			unlink(tmp_paths[i]);
}

static void drop_tmp(int slot)
{
	if (tmp_used[slot]) {
		tmp_used[slot] = 0;
		unlink(tmp_paths[slot]);
	}
}

static int failure(const char *doing, const char *path, int code)
{
	wtg_error("cannot %s '%s': %s", doing, path, wimlib_get_error_string(code));
	switch (code) {
	case WIMLIB_ERR_NOMEM:
		return -ENOMEM;
	case WIMLIB_ERR_OPEN:
		return -ENOENT;
	case WIMLIB_ERR_WRITE:
		return -EIO;
	case WIMLIB_ERR_IMAGE_NAME_COLLISION:
		return -EEXIST;
	case WIMLIB_ERR_ALREADY_LOCKED:
		return -EBUSY;
	default:
		return -EIO;
	}
}

bool wtg_export_parse_compress(const char *s, enum wtg_export_compress *ret)
{
	static const struct {
		const char *name;
		enum wtg_export_compress c;
	} t[] = {{"none", WTG_EXPORT_COMPRESS_NONE},
		 {"xpress", WTG_EXPORT_COMPRESS_XPRESS},
		 {"lzx", WTG_EXPORT_COMPRESS_LZX},
		 {"lzms", WTG_EXPORT_COMPRESS_LZMS}};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (!strcmp(s, t[i].name)) {
			*ret = t[i].c;
			return true;
		}
	return false;
}

bool wtg_export_is_wim(const char *path)
{
	char magic[8];
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	ssize_t n = pread(fd, magic, sizeof(magic), 0);
	close(fd);
	return n == 8 && (!memcmp(magic, "MSWIM\0\0\0", 8) || !memcmp(magic, "WLPWM\0\0\0", 8));
}

static enum wimlib_compression_type ctype_of(enum wtg_export_compress c)
{
	switch (c) {
	case WTG_EXPORT_COMPRESS_NONE:
		return WIMLIB_COMPRESSION_TYPE_NONE;
	case WTG_EXPORT_COMPRESS_XPRESS:
		return WIMLIB_COMPRESSION_TYPE_XPRESS;
	case WTG_EXPORT_COMPRESS_LZMS:
		return WIMLIB_COMPRESSION_TYPE_LZMS;
	default:
		return WIMLIB_COMPRESSION_TYPE_LZX;
	}
}

static uint64_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) ? 0 : (uint64_t)st.st_size;
}

/* ---- progress ---- */

struct run {
	const struct wtg_export_options *opt;
	struct wtg_progress p;
	/* an append's target as it was when wimlib read it */
	struct stat target;
	bool have_target;
};

static void report(struct run *r, const char *phase)
{
	bool starting = r->p.phase != phase;

	r->p.phase = phase;
	wtg_progress_test_kill(&r->p, starting);
	if (r->opt->progress)
		r->opt->progress(r->opt->ctx, &r->p);
}

static enum wimlib_progress_status wim_progress(enum wimlib_progress_msg msg,
						union wimlib_progress_info *info, void *ctx)
{
	struct run *r = ctx;

	switch (msg) {
	case WIMLIB_PROGRESS_MSG_SCAN_BEGIN:
		r->p.bytes_done = 0;
		r->p.files_done = 0;
		report(r, "scan");
		break;
	case WIMLIB_PROGRESS_MSG_SCAN_DENTRY:
		if (info->scan.status == WIMLIB_SCAN_DENTRY_OK) {
			r->p.files_done = info->scan.num_dirs_scanned + info->scan.num_nondirs_scanned;
			r->p.bytes_done = info->scan.num_bytes_scanned;
			if ((r->p.files_done & 1023) == 0)
				report(r, "scan");
		}
		break;
	case WIMLIB_PROGRESS_MSG_WRITE_STREAMS:
		r->p.bytes_done = info->write_streams.completed_bytes;
		r->p.bytes_total = info->write_streams.total_bytes;
		r->p.files_done = info->write_streams.completed_streams;
		r->p.files_total = info->write_streams.total_streams;
		report(r, "write");
		break;
	case WIMLIB_PROGRESS_MSG_WRITE_METADATA_BEGIN:
		report(r, "finish");
		break;
	default:
		break;
	}
	return WIMLIB_PROGRESS_STATUS_CONTINUE;
}

static void tree_progress(void *ctx, const struct wtg_ntfs_write_stats *done,
			  const struct wtg_ntfs_write_stats *total)
{
	struct run *r = ctx;

	wtg_progress_of_tree(&r->p, done, total);
	report(r, "tree");
}

/* ---- the temporary NTFS volume ---- */

/* Where the temporary NTFS image of @need bytes goes: $TMPDIR, else (unset,
 * read-only or without the room) the directory of @out.  False, said in one
 * line, when neither will do. */
static bool tmp_dir_for(const char *out, uint64_t need, char *dir, size_t size)
{
	const char *t = getenv("TMPDIR");
	char *copy = strdup(out), why[2][PATH_MAX + 128];
	const char *cand[2] = {t && *t ? t : NULL, copy ? dirname(copy) : "."};
	int n = 0;

	for (int i = 0; i < 2; i++) {
		struct statvfs vfs;
		const char *d = cand[i];
		if (!d)
			continue;
		if (strlen(d) >= size - 32 || strlen(d) > PATH_MAX - 32)
			snprintf(why[n++], sizeof(why[0]), "'%.*s...' has too long a name", 64, d);
		else if (statvfs(d, &vfs) < 0 || access(d, W_OK | X_OK) < 0)
			snprintf(why[n++], sizeof(why[0]), "'%s': %s", d, strerror(errno));
		else if (vfs.f_flag & ST_RDONLY)
			snprintf(why[n++], sizeof(why[0]), "'%s' is read-only", d);
		else if ((uint64_t)vfs.f_bavail * vfs.f_frsize < need)
			snprintf(why[n++], sizeof(why[0]), "'%s' has %" PRIu64 " MiB free", d,
				 (uint64_t)vfs.f_bavail * vfs.f_frsize >> 20);
		else {
			snprintf(dir, size, "%s", d);
			free(copy);
			return true;
		}
	}
	wtg_error("cannot make the temporary NTFS image (about %" PRIu64 " MiB): %s%s%s (set "
		  "TMPDIR to a writable directory with the room)",
		  need >> 20, why[0], n > 1 ? "; " : "", n > 1 ? why[1] : "");
	free(copy);
	return false;
}

/*
 * Writes the tree of @view into a new sparse NTFS image where tmp_dir_for
 * puts the one for @out; returns an open descriptor of the (already
 * unlinked) image.  The volume is sized so that the tree fits with room for
 * its MFT and indexes; only what is written takes space.
 */
static int make_volume(struct wtg_view *view, struct run *r, const char *out,
		       const struct wtg_export_plan *plan, struct wtg_export_result *res)
{
	struct wtg_ntfs_write_stats total;
	char *path = tmp_paths[TMP_NTFS];
	struct wtg_ntfs_write_options wo = {.threads = r->opt->threads,
					    .progress = tree_progress,
					    .ctx = r,
					    .interval_ms = 200,
					    .only = plan ? plan->inodes : NULL,
					    .nonly = plan ? plan->ninodes : 0};

	wtg_ntfs_write_totals(view, &wo, &total);
	uint64_t files = total.files + total.dirs + total.links;
	uint64_t need = total.bytes + files * 8192 + (64ull << 20);
	uint64_t size = need + need / 8 + (256ull << 20);
	size = (size + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1);
	res->tmp_bytes = need;
	r->p.bytes_total = total.bytes;
	r->p.files_total = total.files + total.dirs;

	char dir[PATH_MAX];
	if (!tmp_dir_for(out, need, dir, sizeof(dir)))
		return -ENOSPC;
	snprintf(res->tmp_dir, sizeof(res->tmp_dir), "%s", dir);
	memcpy(path, dir, strlen(dir));
	memcpy(path + strlen(dir), "/wtgfs-export.XXXXXX", sizeof("/wtgfs-export.XXXXXX"));
	int fd = mkstemp(path);
	if (fd < 0) {
		int err = errno;
		wtg_error("cannot make a temporary file in '%s': %s (set TMPDIR to a writable "
			  "directory)",
			  dir, strerror(err));
		return -err;
	}
	tmp_used[TMP_NTFS] = 1;
	int ret = 0;
	if (ftruncate(fd, (off_t)size) < 0) {
		ret = -errno;
		wtg_error("cannot size the temporary NTFS image '%s': %s", path, strerror(-ret));
	}
	struct wtg_ntfs_geometry geo = {.sector_size = 512, .hidden_sectors = 0, .label = NULL};
	if (!ret)
		ret = wtg_ntfs_mkfs(path, &geo);
	drop_tmp(TMP_NTFS); /* the descriptor keeps it */
	struct _ntfs_volume *vol = NULL;
	if (!ret)
		ret = wtg_ntfs_mount_fd(fd, 0, size, "the temporary NTFS image", &vol);
	if (!ret) {
		report(r, "tree");
		struct wtg_ntfs_write_stats st;
		ret = wtg_ntfs_write_tree(view, vol, &wo, &st);
		int uret = wtg_ntfs_umount(vol);
		if (!ret)
			ret = uret;
		if (!ret) {
			res->files = st.files;
			res->dirs = st.dirs;
			res->bytes = st.bytes;
		}
	}
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

/* ---- writing the WIM ---- */

static int write_flags(const struct wtg_export_options *opt)
{
	int f = WIMLIB_WRITE_FLAG_FSYNC;

	if (opt->check)
		f |= WIMLIB_WRITE_FLAG_CHECK_INTEGRITY;
	if (opt->solid)
		f |= WIMLIB_WRITE_FLAG_SOLID;
	return f;
}

/* A new WIMStruct for a new OUT, or OUT opened for an append; refuses
 * what cannot be done before any work. */
static int open_target(const char *out, const struct wtg_export_options *opt, struct run *r,
		       WIMStruct **wim_ret)
{
	int code;

	wtg_wimlib_setup();
	if (!opt->append) {
		if (access(out, F_OK) == 0) {
			wtg_error("'%s' exists (give --append to add an image to it, or another name)",
				  out);
			return -EEXIST;
		}
		enum wimlib_compression_type ct =
		    opt->compress == WTG_EXPORT_COMPRESS_DEFAULT && opt->solid
			? WIMLIB_COMPRESSION_TYPE_LZMS
			: ctype_of(opt->compress);
		if ((code = wimlib_create_new_wim(ct, wim_ret)))
			return failure("make a new WIM for", out, code);
		if (opt->solid && opt->compress != WTG_EXPORT_COMPRESS_DEFAULT)
			wimlib_set_output_pack_compression_type(*wim_ret, ct);
		return 0;
	}
	if (access(out, F_OK) != 0) {
		wtg_error("cannot append to '%s': %s (drop --append to make a new WIM)", out,
			  strerror(errno));
		return -ENOENT;
	}
	r->have_target = !stat(out, &r->target);
	if ((code = wimlib_open_wim(out, WIMLIB_OPEN_FLAG_WRITE_ACCESS |
					     WIMLIB_OPEN_FLAG_ERROR_IF_SPLIT,
				    wim_ret)))
		return failure("open for appending", out, code);
	struct wimlib_wim_info wi;
	wimlib_get_wim_info(*wim_ret, &wi);
	if (opt->compress != WTG_EXPORT_COMPRESS_DEFAULT &&
	    (int)ctype_of(opt->compress) != wi.compression_type) {
		wtg_error("cannot append to '%s' with --compress %s: it is a %s WIM (an append keeps "
			  "the WIM's compression)",
			  out, wimlib_get_compression_type_string(ctype_of(opt->compress)),
			  wimlib_get_compression_type_string(wi.compression_type));
		wimlib_free(*wim_ret);
		return -EINVAL;
	}
	if (opt->name && wimlib_image_name_in_use(*wim_ret, opt->name)) {
		wtg_error("'%s' already has an image named '%s' (give another --name)", out,
			  opt->name);
		wimlib_free(*wim_ret);
		return -EEXIST;
	}
	return 0;
}

/* Writes a new OUT: to an unnamed file in OUT's directory, linked as OUT
 * once complete, so that OUT never exists half written. */
static int write_new(WIMStruct *wim, const char *out, const struct wtg_export_options *opt)
{
	char *copy = strdup(out), *dir;
	int fd, ret = 0, code;
	bool named = false;

	if (!copy)
		return -ENOMEM;
	dir = dirname(copy);
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0644);
	if (fd < 0) {
		/* no O_TMPFILE here: a named temporary file, removed on failure */
		snprintf(tmp_paths[TMP_WIM], PATH_MAX, "%s.wtgfs-XXXXXX", out);
		fd = mkstemp(tmp_paths[TMP_WIM]);
		if (fd < 0) {
			ret = -errno;
			wtg_error("cannot write in '%s': %s", dir, strerror(-ret));
			free(copy);
			return ret;
		}
		tmp_used[TMP_WIM] = 1;
		named = true;
		fchmod(fd, 0644);
	}
	if ((code = wimlib_write_to_fd(wim, fd, WIMLIB_ALL_IMAGES, write_flags(opt), opt->threads)))
		ret = failure("write", out, code);
	if (!ret) {
		if (named) {
			if (link(tmp_paths[TMP_WIM], out) < 0)
				ret = -errno;
		} else {
			char proc[64];
			snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
			if (linkat(AT_FDCWD, proc, AT_FDCWD, out, AT_SYMLINK_FOLLOW) < 0)
				ret = -errno;
		}
		if (ret == -EEXIST)
			wtg_error("cannot write '%s': it appeared meanwhile (nothing was changed)",
				  out);
		else if (ret)
			wtg_error("cannot name the new WIM '%s': %s", out, strerror(-ret));
	}
	if (named)
		drop_tmp(TMP_WIM);
	close(fd);
	free(copy);
	return ret;
}

/*
 * The append's guard: wimlib's in-place append marks the header "write in
 * progress" and writes after the old end; killed midway (even by SIGKILL)
 * it would leave that mark and the bytes written so far.  A guard process
 * started before the append keeps the old header and size, and puts them
 * back unless told the append succeeded: OUT.wim is then byte for byte as
 * it was.
 *
 * The guard is this program again (posix_spawn of /proc/self/exe with
 * WTG_EXPORT_GUARD_ARG), not a fork: a forked child would share every page
 * of the export's address space copy-on-write, and each later write of the
 * export to one of them (the metadata, the caches) would copy it.  It gets
 * the WIM's descriptor as fd 3 and a pipe as fd 0, on which the export
 * writes at once the old size and header (they stay in the pipe if the
 * export dies), and later 'k' (keep) or 'r' (restore); end of file without
 * 'k' is a restore.  SIGINT, SIGTERM and SIGHUP are blocked from the spawn
 * on and ignored by the guard: a ^C to the group stops the export, not its
 * guard.
 */
#define GUARD_HEADER 4096

struct guard_msg {
	uint64_t size;
	uint64_t len;
	char header[GUARD_HEADER];
};

int wtg_export_guard_main(int argc, char **argv)
{
	static struct guard_msg m;
	sigset_t set;
	char c = 0;

	(void)argc;
	(void)argv;
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	sigemptyset(&set);
	sigprocmask(SIG_SETMASK, &set, NULL);
	size_t head = offsetof(struct guard_msg, header);
	if (wtg_read_all(0, &m, head) || m.len == 0 || m.len > GUARD_HEADER ||
	    wtg_read_all(0, m.header, m.len))
		return 1; /* (nothing to put back: the export stopped before writing) */
	wtg_read_all(0, &c, 1); /* (the end of the pipe: the export died) */
	if (c == 'k')
		return 0;
	/* the append did not finish: the file as it was */
	if (ftruncate(3, (off_t)m.size) == 0 && !wtg_pwrite_all(3, m.header, m.len, 0))
		fsync(3);
	return 0;
}

/* A descriptor of @fd numbered 10 or more, close-on-exec; @fd closed. */
static int fd_high(int fd)
{
	int hi = fcntl(fd, F_DUPFD_CLOEXEC, 10);
	int err = errno;
	close(fd);
	errno = err;
	return hi;
}

int wtg_export_guard_start(const char *out, struct wtg_export_guard *g)
{
	static struct guard_msg m;
	int fd = open(out, O_RDWR | O_CLOEXEC), p[2] = {-1, -1}, err;
	struct stat st;

	if (fd < 0 || fstat(fd, &st) < 0) {
		err = errno;
		wtg_error("cannot open '%s': %s", out, strerror(err));
		if (fd >= 0)
			close(fd);
		return -err;
	}
	ssize_t n = pread(fd, m.header, sizeof(m.header), 0);
	if (n <= 0 || pipe2(p, O_CLOEXEC) < 0) {
		err = n < 0 ? errno : EIO;
		wtg_error("cannot read the header of '%s': %s", out, strerror(err));
		close(fd);
		return -err;
	}
	m.size = (uint64_t)st.st_size;
	m.len = (uint64_t)n;
	/* (numbered apart from 0 and 3, which the guard gets them as) */
	fd = fd_high(fd);
	p[0] = p[0] >= 0 ? fd_high(p[0]) : -1;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	char arg0[] = "wtgfs", arg1[] = WTG_EXPORT_GUARD_ARG;
	char *args[] = {arg0, arg1, NULL};
	pid_t pid = -1;
	err = fd < 0 || p[0] < 0 ? errno : 0;
	if (!err && !(err = posix_spawn_file_actions_init(&fa))) {
		if (!(err = posix_spawnattr_init(&attr))) {
			if (!(err = posix_spawn_file_actions_adddup2(&fa, p[0], 0)) &&
			    !(err = posix_spawn_file_actions_adddup2(&fa, fd, 3)) &&
			    !(err = posix_spawnattr_setsigmask(&attr, &block)) &&
			    !(err = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK)))
				err = posix_spawn(&pid, "/proc/self/exe", &fa, &attr, args, environ);
			posix_spawnattr_destroy(&attr);
		}
		posix_spawn_file_actions_destroy(&fa);
	}
	if (fd >= 0)
		close(fd);
	if (p[0] >= 0)
		close(p[0]);
	size_t len = offsetof(struct guard_msg, header) + (size_t)n;
	if (!err && write(p[1], &m, len) != (ssize_t)len)
		err = errno ? errno : EIO;
	if (err) {
		wtg_error("cannot start the guard of '%s': %s", out, strerror(err));
		if (pid > 0) {
			close(p[1]);
			while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
				;
			p[1] = -1;
		}
		if (p[1] >= 0)
			close(p[1]);
		return -err;
	}
	g->pid = pid;
	g->pipe = p[1];
	return 0;
}

/* Tells the guard whether the append finished (@keep) and waits for it. */
void wtg_export_guard_end(struct wtg_export_guard *g, bool keep)
{
	ssize_t w = write(g->pipe, keep ? "k" : "r", 1);
	(void)w;
	close(g->pipe);
	while (waitpid(g->pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/*
 * wimlib locks the WIM only while it writes, from what it read at open: an
 * append that another program (wtgfs's own appender, another wimlib)
 * finished in between would be written over, its image lost.  So the
 * target must be as it was when wimlib read it; once wimlib holds its lock
 * no other appender starts, and one that holds its own makes wimlib's fail
 * cleanly.
 */
static int target_unchanged(const char *out, const struct run *r)
{
	struct stat st;

	if (!r->have_target || stat(out, &st) ||
	    (st.st_dev == r->target.st_dev && st.st_ino == r->target.st_ino &&
	     st.st_size == r->target.st_size && st.st_mtim.tv_sec == r->target.st_mtim.tv_sec &&
	     st.st_mtim.tv_nsec == r->target.st_mtim.tv_nsec))
		return 0;
	wtg_error("cannot append to '%s': another program changed it while this export ran "
		  "(run the export again)",
		  out);
	return -EBUSY;
}

/* Names, describes and (--boot) marks image @image of @wim, then writes. */
static int finish(WIMStruct *wim, int image, const char *out, const struct wtg_export_options *opt,
		  struct run *r, struct wtg_export_result *res)
{
	int code;

	if (opt->description &&
	    (code = wimlib_set_image_property(wim, image, "DESCRIPTION", opt->description)))
		return failure("describe the new image of", out, code);
	if (opt->boot) {
		struct wimlib_wim_info wi = {.boot_index = (uint32_t)image};
		if ((code = wimlib_set_wim_info(wim, &wi, WIMLIB_CHANGE_BOOT_INDEX)))
			return failure("mark the boot image of", out, code);
	}
	res->image = image;
	snprintf(res->name, sizeof(res->name), "%s", opt->name ? opt->name : "");
	res->images = image;
	res->size_before = opt->append ? file_size(out) : 0;
	report(r, "write");
	int ret;
	if (opt->append) {
		struct wtg_export_guard g = {.pid = -1, .pipe = -1};
		if ((ret = target_unchanged(out, r)) || (ret = wtg_export_guard_start(out, &g)))
			return ret;
		code = wimlib_overwrite(wim, write_flags(opt), opt->threads);
		ret = code ? failure("append to", out, code) : 0;
		wtg_export_guard_end(&g, !ret);
	} else {
		ret = write_new(wim, out, opt);
	}
	res->size_after = file_size(out);
	return ret;
}

/* ---- the incremental append ---- */

void wtg_export_stamp_delta(const char *delta, struct wtg_export_stamp *stamp)
{
	char wal[PATH_MAX];
	struct stat st;

	memset(stamp, 0, sizeof(*stamp));
	snprintf(wal, sizeof(wal), "%s-wal", delta);
	/* (an empty log is none: a reader may make one) */
	for (int i = 0; i < 2; i++)
		if (!stat(i ? wal : delta, &st) && st.st_size) {
			stamp->v[3 * i] = st.st_size;
			stamp->v[3 * i + 1] = st.st_mtim.tv_sec;
			stamp->v[3 * i + 2] = st.st_mtim.tv_nsec;
		}
}


bool wtg_export_same_file(const char *a, const char *b)
{
	struct stat x, y;

	return a && b && !stat(a, &x) && !stat(b, &y) && x.st_dev == y.st_dev &&
	       x.st_ino == y.st_ino;
}

static int no_increment(struct wtg_export_result *res, const char *fmt, const char *what)
{
	snprintf(res->full_reason, sizeof(res->full_reason), fmt, what);
	return -EAGAIN;
}

struct metadata_scan {
	int want, seen;
	uint8_t sha1[20];
	bool found;
};

static int note_metadata(const struct wimlib_resource_entry *re, void *arg)
{
	struct metadata_scan *m = arg;

	if (re->is_metadata && ++m->seen == m->want) {
		memcpy(m->sha1, re->sha1_hash, sizeof(m->sha1));
		m->found = true;
	}
	return 0;
}

/* True when image @image of @wim is the one @identity ("wim:GUID:INDEX:SHA1",
 * as source/wim.c makes it) names. */
static bool is_identity(WIMStruct *wim, int image, const char *identity)
{
	struct metadata_scan m = {.want = image};
	struct wimlib_wim_info wi;
	char id[WTG_IDENTITY_MAX];

	wimlib_get_wim_info(wim, &wi);
	wimlib_iterate_lookup_table(wim, 0, note_metadata, &m);
	if (!m.found)
		return false;
	wtg_wim_identity(wi.guid, image, m.sha1, id);
	return !strcasecmp(id, identity);
}

/* HEAD as the view shows it is HEAD as the diff reads it: no commit came
 * since the view was opened, and no journal rows (which the view reads and
 * the layers' records do not show) wait to be folded in. */
int wtg_export_head_still(const struct wtg_export_options *opt, struct wtg_export_result *res)
{
	struct wtg_store_options so = {.read_only = true};
	struct wtg_export_stamp now;
	struct wtg_store *st;
	uint64_t rows = 0;

	if (opt->at)
		return 0;
	if (!opt->stamp)
		return no_increment(res, "%s", "HEAD without a stamp of the delta");
	wtg_export_stamp_delta(opt->delta, &now);
	if (memcmp(&now, opt->stamp, sizeof(now)))
		return no_increment(res, "'%s' changed while it was read (a mount writes to it)",
				    opt->delta);
	int ret = wtg_store_open(opt->delta, &so, &st);
	if (ret)
		return ret;
	ret = wtg_store_journal_count(st, &rows);
	wtg_store_close(st);
	if (ret)
		return ret;
	if (rows)
		return no_increment(res, "'%s' holds journaled writes of a mount", opt->delta);
	return 0;
}

/*
 * A delta whose base is a WIM image, at the cost of the change: the base
 * image exported into the target (an append to the base WIM shares its
 * blobs and writes none of them; a new WIM of the same compression gets
 * them copied raw, not compressed again), then updated by the plan
 * (src/export_plan.h) with a small NTFS volume of what changed.  -EAGAIN
 * (res->full_reason) when a full capture must do, with nothing written.
 */
static int export_incremental(struct wtg_view *view, const char *out,
			      const struct wtg_export_options *opt, struct run *r,
			      struct wtg_export_result *res)
{
	const struct wtg_tree *tree = wtg_view_tree(view);
	const char *identity = tree->source ? tree->source->identity : "";
	struct wtg_export_plan plan;
	WIMStruct *wim = NULL, *base = NULL;
	char src[64];
	int ret, code, image;

	if (strncmp(identity, "wim:", 4))
		return no_increment(res, "%s", "the delta's base is not a WIM image");
	if (opt->append && !wtg_export_same_file(out, tree->source->path))
		return no_increment(res, "'%s' is not the delta's base WIM", out);
	const char *idx = strchr(identity + 4, ':');
	image = idx ? atoi(idx + 1) : 0;
	if ((ret = open_target(out, opt, r, &wim)))
		return ret;
	wtg_wimlib_setup();
	if ((code = wimlib_open_wim(tree->source->path, WIMLIB_OPEN_FLAG_ERROR_IF_SPLIT, &base))) {
		ret = failure("open", tree->source->path, code);
		goto out_wim;
	}
	if (image < 1 || !is_identity(base, image, identity)) {
		ret = no_increment(res, "image %s of the WIM is not the delta's base any more",
				   idx ? idx + 1 : "?");
		goto out_base;
	}
	ret = wtg_export_plan_make(view, opt->delta, opt->at, &plan);
	if (ret == -EAGAIN)
		snprintf(res->full_reason, sizeof(res->full_reason), "%s", plan.reason);
	if (ret)
		goto out_base;
	if ((ret = wtg_export_head_still(opt, res)))
		goto out_plan;
	int fd = make_volume(view, r, out, &plan, res);
	if (fd < 0) {
		ret = fd;
		goto out_plan;
	}
	snprintf(src, sizeof(src), "/proc/self/fd/%d", fd);
	wimlib_register_progress_function(wim, wim_progress, r);
	code = wimlib_export_image(base, image, wim, opt->name, opt->description, 0);
	if (code) {
		ret = failure("copy the base image in", out, code);
		goto out_fd;
	}
	/* wimlib updates no image that two WIMStructs share: the copy keeps
	 * what it needs of the source (wimlib counts its references) */
	wimlib_free(base);
	base = NULL;
	struct wimlib_wim_info wi;
	wimlib_get_wim_info(wim, &wi);
	int new_image = (int)wi.image_count;
	struct wimlib_update_command *cmds = calloc(plan.nops, sizeof(*cmds));
	if (!cmds) {
		ret = -ENOMEM;
		goto out_fd;
	}
	for (size_t i = 0; i < plan.nops; i++) {
		const struct wtg_export_op *op = &plan.ops[i];
		switch (op->kind) {
		case WTG_EXPORT_DELETE:
			cmds[i].op = WIMLIB_UPDATE_OP_DELETE;
			cmds[i].delete_.wim_path = op->from;
			cmds[i].delete_.delete_flags = op->recursive ? WIMLIB_DELETE_FLAG_RECURSIVE : 0;
			break;
		case WTG_EXPORT_RENAME:
			cmds[i].op = WIMLIB_UPDATE_OP_RENAME;
			cmds[i].rename.wim_source_path = op->from;
			cmds[i].rename.wim_target_path = op->to;
			break;
		case WTG_EXPORT_ADD:
			cmds[i].op = WIMLIB_UPDATE_OP_ADD;
			cmds[i].add.fs_source_path = src;
			cmds[i].add.wim_target_path = (char *)"/";
			cmds[i].add.add_flags = WIMLIB_ADD_FLAG_NTFS;
			break;
		}
	}
	code = wimlib_update_image(wim, new_image, cmds, plan.nops, 0);
	free(cmds);
	if (code) {
		/* atomic: the image is as exported; nothing is written yet */
		ret = no_increment(res, "wimlib cannot update the copied image: %s",
				   wimlib_get_error_string(code));
		goto out_fd;
	}
	res->incremental = true;
	res->changes = plan.changes;
	ret = finish(wim, new_image, out, opt, r, res);
out_fd:
	close(fd);
out_plan:
	wtg_export_plan_release(&plan);
out_base:
	wimlib_free(base);
out_wim:
	wimlib_free(wim);
	return ret;
}

int wtg_export_view(struct wtg_view *view, const char *out, const struct wtg_export_options *opt,
		    struct wtg_export_result *res)
{
	struct run r = {.opt = opt};
	WIMStruct *wim;
	char src[64];
	int ret, code;

	memset(res, 0, sizeof(*res));
	if (!opt->name || !*opt->name) {
		wtg_error("the new image of '%s' needs a name", out);
		return -EINVAL;
	}
	if (opt->delta) {
		if (opt->full) {
			snprintf(res->full_reason, sizeof(res->full_reason), "--full");
		} else {
			ret = wtg_export_raw_append(view, out, opt, res);
			if (ret != -EAGAIN)
				return ret;
			char raw_why[sizeof(res->raw_reason)];
			memcpy(raw_why, res->raw_reason, sizeof(raw_why));
			memset(res, 0, sizeof(*res));
			memcpy(res->raw_reason, raw_why, sizeof(raw_why));
			ret = export_incremental(view, out, opt, &r, res);
			if (ret != -EAGAIN)
				return ret;
			char why[sizeof(res->full_reason)];
			memcpy(why, res->full_reason, sizeof(why));
			memcpy(raw_why, res->raw_reason, sizeof(raw_why));
			memset(res, 0, sizeof(*res));
			memcpy(res->full_reason, why, sizeof(why));
			memcpy(res->raw_reason, raw_why, sizeof(raw_why));
			wtg_debug("export: the whole tree is captured: %s", why);
		}
	}
	if ((ret = open_target(out, opt, &r, &wim)))
		return ret;
	int fd = make_volume(view, &r, out, NULL, res);
	if (fd < 0) {
		wimlib_free(wim);
		return fd;
	}
	snprintf(src, sizeof(src), "/proc/self/fd/%d", fd);
	wimlib_register_progress_function(wim, wim_progress, &r);
	code = wimlib_add_image(wim, src, opt->name, NULL, WIMLIB_ADD_FLAG_NTFS);
	if (code) {
		ret = failure("capture the temporary NTFS image for", out, code);
	} else {
		struct wimlib_wim_info wi;
		wimlib_get_wim_info(wim, &wi);
		ret = finish(wim, wi.image_count, out, opt, &r, res);
	}
	wimlib_free(wim);
	close(fd);
	return ret;
}

int wtg_export_wim_image(const char *path, const char *sel, const char *out,
			 const struct wtg_export_options *opt, struct wtg_export_result *res)
{
	struct run r = {.opt = opt};
	WIMStruct *src, *wim;
	int ret, code;

	memset(res, 0, sizeof(*res));
	wtg_wimlib_setup();
	if ((code = wimlib_open_wim(path, WIMLIB_OPEN_FLAG_ERROR_IF_SPLIT, &src)))
		return failure("open", path, code);
	struct wimlib_wim_info si;
	wimlib_get_wim_info(src, &si);
	int image;
	if (sel) {
		image = wimlib_resolve_image(src, sel);
		if (image == WIMLIB_NO_IMAGE || image == WIMLIB_ALL_IMAGES) {
			wtg_error("'%s' has no image '%s' (it holds %u; 'wtgfs info' lists them)", path,
				  sel, si.image_count);
			wimlib_free(src);
			return -ENOENT;
		}
	} else if (si.image_count == 1) {
		image = 1;
	} else {
		wtg_error("'%s' holds %u images: say which, as '%s:INDEX'", path, si.image_count,
			  path);
		wimlib_free(src);
		return -EINVAL;
	}
	const char *name = opt->name ? opt->name : wimlib_get_image_name(src, image);
	if (!name || !*name)
		name = "Image";
	struct wtg_export_options o = *opt;
	o.name = name;
	if ((ret = open_target(out, &o, &r, &wim))) {
		wimlib_free(src);
		return ret;
	}
	wimlib_register_progress_function(wim, wim_progress, &r);
	code = wimlib_export_image(src, image, wim, name, opt->description, 0);
	if (code) {
		ret = failure("export the image of", path, code);
	} else {
		struct wimlib_wim_info wi;
		wimlib_get_wim_info(wim, &wi);
		ret = finish(wim, wi.image_count, out, &o, &r, res);
	}
	wimlib_free(wim);
	wimlib_free(src);
	return ret;
}
