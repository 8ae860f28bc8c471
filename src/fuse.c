/*
 * libfuse3 low-level adapter over the tree.
 *
 * fuse_ino_t is the tree's inode number (the root is 1 on both sides).  The
 * tree of a read-only mount never changes, so the kernel may cache entries,
 * attributes and data for as long as it likes, lookups need no counting and
 * forget has nothing to release.  Every request is answered exactly once.
 *
 * NTFS metadata goes out under ntfs-3g's extended attribute names, named
 * streams as user.NAME, so tools that already speak ntfs-3g work unchanged.
 */
#define FUSE_USE_VERSION 314

#include <endian.h>
#include <errno.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wtgfs/fuse_mount.h"
#include "wtgfs/log.h"
#include "wtgfs/mountinfo.h"
#include "wtgfs/ntfs.h"
#include "wtgfs/tree.h"

/* Reads of up to 1 MiB per request (the kernel derives its max_pages from
 * max_write), so one request decodes many chunks. */
#define MAX_REQUEST (1u << 20)
/* Kernel read-ahead for the mount: asked for generously; the kernel caps
 * it at one request (1 MiB), eight times its FUSE default. */
#define READ_AHEAD_KB 4096

/* The image never changes under a read-only mount. */
#define CACHE_TIMEOUT 86400.0

struct fs {
	struct wtg_tree *tree;
	bool no_open, no_opendir; /* the kernel can open without asking */
	uid_t uid;
	gid_t gid;
};

static struct fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* NTFS's own link count, as ntfs-3g shows it: a DOS name is a name of its
 * own (a second $FILE_NAME) beside the long name that owns it. */
static nlink_t ntfs_link_count(const struct wtg_inode *in)
{
	return in->nlink + in->nlink_extra;
}

static void fill_stat(const struct fs *fs, const struct wtg_inode *in, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = in->ino;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_blksize = 4096;
	if (wtg_inode_is_link(in)) {
		char target[4096];
		long n = wtg_tree_readlink(fs->tree, in, target, sizeof(target));
		st->st_mode = S_IFLNK | 0777;
		st->st_size = n > 0 ? n : 0;
		st->st_nlink = ntfs_link_count(in);
	} else if (wtg_inode_is_dir(in)) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2 + in->nsubdirs;
		st->st_size = 4096;
	} else {
		const struct wtg_stream *data = wtg_inode_data(in);
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = ntfs_link_count(in);
		st->st_size = data ? (off_t)data->size : 0;
	}
	st->st_blocks = (st->st_size + 511) / 512;
	st->st_atim = ntfs_time_to_timespec(in->atime);
	st->st_mtim = ntfs_time_to_timespec(in->mtime);
	st->st_ctim = ntfs_time_to_timespec(in->ctime);
}

static void fill_entry(const struct fs *fs, const struct wtg_inode *in, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = in->ino;
	e->generation = 1;
	e->attr_timeout = CACHE_TIMEOUT;
	e->entry_timeout = CACHE_TIMEOUT;
	fill_stat(fs, in, &e->attr);
}

static struct wtg_inode *inode_of(fuse_req_t req, fuse_ino_t ino)
{
	return wtg_tree_inode(fs_of(req)->tree, ino);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fs *fs = userdata;

	/* Opens carry no state here: where the kernel allows it, the first
	 * open answers ENOSYS and the kernel stops sending open and release
	 * (two of the three round trips of reading a small file). */
	fs->no_open = conn->capable & FUSE_CAP_NO_OPEN_SUPPORT;
	fs->no_opendir = conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT;
	conn->max_write = MAX_REQUEST;
	conn->max_readahead = MAX_REQUEST;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	/* Entries never change: no need for the adaptive heuristic. */
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fs_of(req);
	struct wtg_inode *dir = inode_of(req, parent);
	struct fuse_entry_param e;

	if (!dir)
		return (void)fuse_reply_err(req, ESTALE);
	if (!wtg_inode_is_dir(dir))
		return (void)fuse_reply_err(req, ENOTDIR);
	struct wtg_dentry *de = wtg_tree_lookup(fs->tree, dir, name, strlen(name));
	if (!de)
		return (void)fuse_reply_err(req, ENOENT);
	fill_entry(fs, de->inode, &e);
	fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct wtg_inode *in = inode_of(req, ino);
	struct stat st;

	if (!in)
		return (void)fuse_reply_err(req, ESTALE);
	fill_stat(fs_of(req), in, &st);
	fuse_reply_attr(req, &st, CACHE_TIMEOUT);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct wtg_inode *in = inode_of(req, ino);
	char target[4096];

	if (!in)
		return (void)fuse_reply_err(req, ESTALE);
	long n = wtg_tree_readlink(fs_of(req)->tree, in, target, sizeof(target));
	if (n < 0)
		return (void)fuse_reply_err(req, (int)-n);
	fuse_reply_readlink(req, target);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct wtg_inode *in = inode_of(req, ino);

	if (!in)
		return (void)fuse_reply_err(req, ESTALE);
	if (wtg_inode_is_dir(in))
		return (void)fuse_reply_err(req, EISDIR);
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
		return (void)fuse_reply_err(req, EROFS);
	if (fs_of(req)->no_open)
		return (void)fuse_reply_err(req, ENOSYS);
	fi->fh = (uintptr_t)wtg_inode_data(in);
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

/* One reply buffer per worker thread: a fresh 1 MiB malloc per read is an
 * mmap, page faults and an munmap each time. */
static pthread_key_t read_buf_key;
static pthread_once_t read_buf_once = PTHREAD_ONCE_INIT;

static void read_buf_key_init(void)
{
	pthread_key_create(&read_buf_key, free);
}

static void *read_buf(size_t size)
{
	pthread_once(&read_buf_once, read_buf_key_init);
	void *buf = pthread_getspecific(read_buf_key);
	if (!buf && size <= MAX_REQUEST) {
		buf = malloc(MAX_REQUEST);
		pthread_setspecific(read_buf_key, buf);
	}
	return size <= MAX_REQUEST ? buf : NULL;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	const struct wtg_stream *stream = (const struct wtg_stream *)(uintptr_t)fi->fh;

	if (!stream) { /* opened by the kernel alone */
		struct wtg_inode *in = inode_of(req, ino);
		stream = in ? wtg_inode_data(in) : NULL;
	}
	if (!stream || off < 0)
		return (void)fuse_reply_buf(req, NULL, 0);
	void *buf = read_buf(size), *big = NULL;
	if (!buf && !(buf = big = malloc(size)))
		return (void)fuse_reply_err(req, ENOMEM);
	long n = wtg_tree_read(fs_of(req)->tree, stream, buf, size, (uint64_t)off);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(big);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct wtg_inode *in = inode_of(req, ino);

	if (!in)
		return (void)fuse_reply_err(req, ESTALE);
	if (!wtg_inode_is_dir(in))
		return (void)fuse_reply_err(req, ENOTDIR);
	if (fs_of(req)->no_opendir)
		return (void)fuse_reply_err(req, ENOSYS);
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

/* Offsets: 0 ".", 1 "..", 2 + i the directory's i-th entry. */
static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	struct fs *fs = fs_of(req);
	struct wtg_inode *dir = inode_of(req, ino);

	if (!dir || !dir->dir)
		return (void)fuse_reply_err(req, ENOTDIR);
	char *buf = malloc(size);
	if (!buf)
		return (void)fuse_reply_err(req, ENOMEM);
	size_t used = 0;
	for (off_t i = off; i < (off_t)dir->dir->count + 2; i++) {
		const struct wtg_inode *child;
		const char *name;
		if (i == 0) {
			child = dir;
			name = ".";
		} else if (i == 1) {
			child = dir->parent ? dir->parent : dir;
			name = "..";
		} else {
			child = dir->dir->entries[i - 2]->inode;
			name = dir->dir->entries[i - 2]->name;
		}
		size_t n;
		if (plus) {
			struct fuse_entry_param e;
			fill_entry(fs, child, &e);
			n = fuse_add_direntry_plus(req, buf + used, size - used, name, &e, i + 1);
		} else {
			struct stat st = {.st_ino = child->ino};
			fill_stat(fs, child, &st);
			n = fuse_add_direntry(req, buf + used, size - used, name, &st, i + 1);
		}
		if (n > size - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, true);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	const struct wtg_tree *t = fs_of(req)->tree;
	struct statvfs sv = {
	    .f_bsize = 4096,
	    .f_frsize = 4096,
	    .f_blocks = t->data_bytes / 4096 + t->ninodes,
	    .f_files = t->ninodes,
	    .f_namemax = 255,
	};
	fuse_reply_statfs(req, &sv);
}

/* ---- extended attributes ---- */

static void reply_value(fuse_req_t req, size_t size, const void *value, size_t len)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, value, len);
}

static void put_le64(uint8_t *p, int64_t v, bool be)
{
	uint64_t x = be ? htobe64((uint64_t)v) : (uint64_t)v;
	memcpy(p, &x, 8);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct fs *fs = fs_of(req);
	struct wtg_inode *in = inode_of(req, ino);
	uint8_t small[32];

	if (!in)
		return (void)fuse_reply_err(req, ESTALE);
	if (!strncmp(name, "user.", 5)) {
		const struct wtg_stream *s = wtg_inode_named_stream(in, name + 5);
		if (!s)
			return (void)fuse_reply_err(req, ENODATA);
		if (size == 0)
			return (void)fuse_reply_xattr(req, (size_t)s->size);
		if (s->size > size)
			return (void)fuse_reply_err(req, ERANGE);
		void *buf = malloc(s->size ? (size_t)s->size : 1);
		if (!buf)
			return (void)fuse_reply_err(req, ENOMEM);
		long n = wtg_tree_read(fs->tree, s, buf, (size_t)s->size, 0);
		if (n < 0)
			fuse_reply_err(req, (int)-n);
		else
			fuse_reply_buf(req, buf, (size_t)n);
		free(buf);
		return;
	}
	if (!strcmp(name, "system.ntfs_acl")) {
		const struct wtg_sd *sd = wtg_tree_sd(fs->tree, in->sd);
		if (!sd)
			return (void)fuse_reply_err(req, ENODATA);
		return reply_value(req, size, sd->data, sd->len);
	}
	if (!strcmp(name, "system.ntfs_attrib") || !strcmp(name, "system.ntfs_attrib_be")) {
		uint32_t a = in->attributes;
		if (name[18])
			a = htobe32(a);
		return reply_value(req, size, &a, 4);
	}
	if (!strcmp(name, "system.ntfs_reparse_data")) {
		uint32_t len;
		const uint8_t *rp = wtg_inode_reparse(fs->tree, in, &len);
		if (!rp)
			return (void)fuse_reply_err(req, ENODATA);
		return reply_value(req, size, rp, len);
	}
	if (!strcmp(name, "system.ntfs_dos_name")) {
		/* As ntfs-3g: the root has no directory to hold a DOS name. */
		if (in->ino == WTG_ROOT_INO)
			return (void)fuse_reply_err(req, EPERM);
		if (!in->dos_name)
			return (void)fuse_reply_err(req, ENODATA);
		return reply_value(req, size, in->dos_name, strlen(in->dos_name));
	}
	if (!strcmp(name, "system.ntfs_object_id")) {
		if (!in->object_id)
			return (void)fuse_reply_err(req, ENODATA);
		return reply_value(req, size, in->object_id, in->object_id_len);
	}
	if (!strcmp(name, "system.ntfs_times") || !strcmp(name, "system.ntfs_times_be")) {
		bool be = name[17] != '\0';
		put_le64(small, in->crtime, be);
		put_le64(small + 8, in->mtime, be);
		put_le64(small + 16, in->atime, be);
		put_le64(small + 24, in->ctime, be);
		return reply_value(req, size, small, 32);
	}
	if (!strcmp(name, "system.ntfs_crtime") || !strcmp(name, "system.ntfs_crtime_be")) {
		put_le64(small, in->crtime, name[18] != '\0');
		return reply_value(req, size, small, 8);
	}
	fuse_reply_err(req, ENODATA);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct wtg_inode *in = inode_of(req, ino);
	size_t len = 0;

	if (!in)
		return (void)fuse_reply_err(req, ESTALE);
	for (uint32_t i = 0; i < in->nstreams; i++)
		if (in->streams[i].name)
			len += 5 + strlen(in->streams[i].name) + 1;
	if (size == 0)
		return (void)fuse_reply_xattr(req, len);
	if (len > size)
		return (void)fuse_reply_err(req, ERANGE);
	char *buf = malloc(len ? len : 1), *p = buf;
	if (!buf)
		return (void)fuse_reply_err(req, ENOMEM);
	for (uint32_t i = 0; i < in->nstreams; i++) {
		if (!in->streams[i].name)
			continue;
		p += sprintf(p, "user.%s", in->streams[i].name) + 1;
	}
	fuse_reply_buf(req, buf, len);
	free(buf);
}

static void op_write_refused(fuse_req_t req)
{
	fuse_reply_err(req, EROFS);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	op_write_refused(req);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	op_write_refused(req);
}

static const struct fuse_lowlevel_ops ops = {
    .init = op_init,
    .lookup = op_lookup,
    .getattr = op_getattr,
    .readlink = op_readlink,
    .open = op_open,
    .read = op_read,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .statfs = op_statfs,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .setxattr = op_setxattr,
    .removexattr = op_removexattr,
};

/* The kernel caps a FUSE mount's read-ahead at 128 KiB unless told through
 * sysfs (root only; otherwise the default stays, which only costs speed). */
static void raise_read_ahead(const char *mountpoint)
{
	struct wtg_mountinfo mi;
	char path[128];

	/* Not stat(): the mount is not served yet and would block it. */
	if (!wtg_mountinfo_find(mountpoint, &mi))
		return;
	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb", mi.major, mi.minor);
	FILE *f = fopen(path, "we");
	if (!f)
		return;
	fprintf(f, "%d\n", READ_AHEAD_KB);
	if (fclose(f) != 0)
		wtg_debug("cannot raise read-ahead through '%s'", path);
}

int wtg_fuse_run(struct wtg_tree *tree, const struct wtg_mount_options *opt)
{
	struct fs fs = {.tree = tree, .uid = getuid(), .gid = getgid()};
	char mount_opts[1024];
	char *argv[8];
	int argc = 0, ret = -EIO;

	/* fsname may hold commas: ntfs-3g and others escape them; we cut. */
	snprintf(mount_opts, sizeof(mount_opts), "ro,default_permissions,subtype=wtgfs,fsname=%s%s",
		 opt->fsname, opt->allow_other ? ",allow_other" : "");
	for (char *p = strstr(mount_opts, "fsname=") + 7; *p; p++)
		if (*p == ',' && strncmp(p, ",allow_other", 12))
			*p = '_';
	argv[argc++] = "wtgfs";
	argv[argc++] = "-o";
	argv[argc++] = mount_opts;
	if (opt->debug)
		argv[argc++] = "-d";
	argv[argc] = NULL;
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);

	struct fuse_session *se = fuse_session_new(&args, &ops, sizeof(ops), &fs);
	if (!se) {
		wtg_error("cannot start a FUSE session (is /dev/fuse there? modprobe fuse)");
		fuse_opt_free_args(&args);
		return -EIO;
	}
	if (fuse_set_signal_handlers(se) != 0)
		goto out_destroy;
	if (fuse_session_mount(se, opt->mountpoint) != 0) {
		wtg_error("cannot mount on '%s' (see the message above)", opt->mountpoint);
		goto out_signals;
	}
	raise_read_ahead(opt->mountpoint);
	if (!opt->foreground)
		wtg_log_to_syslog(true);
	if (fuse_daemonize(opt->foreground) != 0)
		goto out_unmount;

	if (opt->threads == 1) {
		ret = fuse_session_loop(se);
	} else {
		struct fuse_loop_config *cfg = fuse_loop_cfg_create();
		if (!cfg)
			goto out_unmount;
		fuse_loop_cfg_set_clone_fd(cfg, 0);
		if (opt->threads)
			fuse_loop_cfg_set_max_threads(cfg, opt->threads);
		fuse_loop_cfg_set_idle_threads(cfg, opt->threads ? opt->threads : 10);
		ret = fuse_session_loop_mt(se, cfg);
		fuse_loop_cfg_destroy(cfg);
	}
	ret = ret < 0 ? ret : 0;
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_destroy:
	fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	return ret;
}
