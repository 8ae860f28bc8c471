/*
 * The NTFS writer: a view's tree into a fresh NTFS volume through
 * libntfs-3g (the only writer of it; src/source/ntfs.c reads).
 *
 * The calls go in the order known to work with libntfs-3g: every directory
 * first; then per file (grouped by the directory of the name that owns its
 * DOS name) that name, the DOS name (ntfs_set_ntfs_dos_name closes both
 * inodes and touches the directory's times), the other hard links, object
 * id, attributes, security descriptor, data, times, reparse data last; then
 * per directory its named streams, times and reparse data, once nothing
 * more is created in it.
 *
 * Data comes from worker threads that read the view ahead of the writer,
 * in the writer's order, into a ring of 1 MiB slots (a bounded queue): the
 * writer only waits when a piece is not decoded yet.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ntfs-3g/types.h>
#include <ntfs-3g/attrib.h>
#include <ntfs-3g/cache.h>
#include <ntfs-3g/device.h>
#include <ntfs-3g/dir.h>
#include <ntfs-3g/ea.h>
#include <ntfs-3g/inode.h>
#include <ntfs-3g/layout.h>
#include <ntfs-3g/logging.h>
#include <ntfs-3g/object_id.h>
#include <ntfs-3g/reparse.h>
#include <ntfs-3g/security.h>
#include <ntfs-3g/volume.h>

#include "wtgfs/ea.h"
#include "wtgfs/fileio.h"
#include "wtgfs/log.h"
#include "wtgfs/mem.h"
#include "wtgfs/names.h"
#include "wtgfs/ntfs.h"
#include "wtgfs/ntfs_device.h"
#include "wtgfs/ntfs_write.h"
#include "wtgfs/sd.h"
#include "wtgfs/tree.h"
#include "wtgfs/view.h"

#define PIECE (1u << 20) /* the unit of reading and of writing */
#define NSLOTS 48	 /* pieces decoded ahead of the writer at most */

/* ---- the device: a byte range of a file descriptor ---- */

struct fd_range {
	struct wtg_ntfs_range range;
	int fd;
	uint64_t offset;
};

/* A sparse target reads zeros past its end. */
static int fd_read(void *ctx, void *buf, size_t size, uint64_t off)
{
	struct fd_range *r = ctx;

	return wtg_pread_or_zero(r->fd, buf, size, r->offset + off);
}

static int fd_write(void *ctx, const void *buf, size_t size, uint64_t off)
{
	struct fd_range *r = ctx;

	return wtg_pwrite_all(r->fd, buf, size, r->offset + off);
}

int wtg_ntfs_mount_fd(int fd, uint64_t offset, uint64_t size, const char *what,
		      ntfs_volume **vol_ret)
{
	struct fd_range *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	*r = (struct fd_range){.fd = fd, .offset = offset};
	r->range = (struct wtg_ntfs_range){.read = fd_read, .write = fd_write, .ctx = r, .size = size};
	struct ntfs_device *dev = wtg_ntfs_device_new(&r->range, what);
	if (!dev) {
		free(r);
		return -ENOMEM;
	}
	ntfs_volume *vol = ntfs_device_mount(dev, 0);
	if (!vol) {
		int err = errno ? errno : EIO;
		wtg_error("cannot mount the new NTFS volume on '%s': %s", what, strerror(err));
		ntfs_device_free(dev);
		free(r);
		return -err;
	}
	if (NVolReadOnly(vol)) {
		wtg_error("cannot write the new NTFS volume on '%s': libntfs-3g mounts it read-only",
			  what);
		ntfs_umount(vol, FALSE);
		free(r);
		return -EROFS;
	}
	/* as ntfs_mount() does: without its caches, lookups by name fail */
	ntfs_create_lru_caches(vol);
	*vol_ret = vol;
	return 0;
}

int wtg_ntfs_umount(ntfs_volume *vol)
{
	struct wtg_ntfs_range *range = vol->dev->d_private;
	struct fd_range *r = range->ctx;
	int ret = ntfs_umount(vol, FALSE) ? -(errno ? errno : EIO) : 0;

	if (ret)
		wtg_error("cannot close the new NTFS volume: %s", strerror(-ret));
	free(r);
	return ret;
}

/* ---- mkntfs ---- */

int wtg_ntfs_mkfs(const char *path, const struct wtg_ntfs_geometry *geo)
{
	char ssz[16], hidden[32], log[] = "/tmp/wtgfs-mkntfs.XXXXXX", *argv[24];
	int argc = 0, ret = 0, logfd;

	snprintf(ssz, sizeof(ssz), "%u", geo->sector_size);
	snprintf(hidden, sizeof(hidden), "%" PRIu64, geo->hidden_sectors);
	argv[argc++] = "mkntfs";
	argv[argc++] = "-Q";
	argv[argc++] = "-q";
	argv[argc++] = "-F";
	argv[argc++] = "-c";
	argv[argc++] = "4096";
	argv[argc++] = "-s";
	argv[argc++] = ssz;
	argv[argc++] = "-p";
	argv[argc++] = hidden;
	argv[argc++] = "-H";
	argv[argc++] = "255";
	argv[argc++] = "-S";
	argv[argc++] = "63";
	if (geo->label) {
		argv[argc++] = "-L";
		argv[argc++] = (char *)geo->label;
	}
	argv[argc++] = (char *)path;
	argv[argc] = NULL;
	/* mkntfs talks on stderr even when all is well: keep it for a failure */
	logfd = mkstemp(log);
	if (logfd >= 0)
		unlink(log);
	pid_t pid = fork();
	if (pid < 0) {
		ret = -errno;
		goto out;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);
		if (devnull >= 0)
			dup2(devnull, STDOUT_FILENO);
		if (logfd >= 0)
			dup2(logfd, STDERR_FILENO);
		execvp("mkntfs", argv);
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			ret = -errno;
			goto out;
		}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char msg[512] = "";
		if (logfd >= 0) {
			ssize_t n = pread(logfd, msg, sizeof(msg) - 1, 0);
			msg[n > 0 ? n : 0] = '\0';
			msg[strcspn(msg, "\n")] = '\0';
		}
		if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
			wtg_error("cannot run 'mkntfs' (install ntfs-3g)");
		else
			wtg_error("mkntfs failed on '%s'%s%s", path, msg[0] ? ": " : "", msg);
		ret = -EIO;
	}
out:
	if (logfd >= 0)
		close(logfd);
	return ret;
}

/* ---- what the tree holds ---- */

const struct wtg_dentry *wtg_ntfs_dos_owner(const struct wtg_inode *inode, const char **dos_ret)
{
	for (const struct wtg_dentry *de = inode->first_name; de; de = de->alias_next)
		if ((*dos_ret = wtg_dentry_dos_name(de)))
			return de;
	*dos_ret = NULL;
	return inode->first_name;
}

/* A piece of stream data, in the order the writer asks. */
struct job {
	struct wtg_inode *inode;
	struct wtg_stream *stream;
	uint64_t off;
	uint32_t len;
};

struct slot {
	uint8_t *buf;
	int64_t job; /* the job this slot holds, -1 when none */
	int ret;
};

struct writer {
	struct wtg_view *view;
	struct wtg_tree *tree;
	ntfs_volume *vol;
	const struct wtg_ntfs_write_options *opt;
	struct SECURITY_CONTEXT scx;
	uint64_t *mft; /* by tree inode number - 1 */
	struct wtg_inode **files; /* the writer's order */
	size_t nfiles;
	struct wtg_inode **dirs; /* pre-order, the root first */
	size_t ndirs;
	uint8_t *mark; /* a subset (opt->only): by inode number, nonzero when written */

	struct job *jobs;
	size_t njobs, jobs_cap;
	struct slot slots[NSLOTS];
	pthread_mutex_t lock;
	pthread_cond_t work, done;
	size_t next;	 /* the next job a reader takes */
	size_t consumed; /* jobs the writer is finished with */
	bool stop;
	pthread_t *threads;
	unsigned nthreads;

	struct wtg_ntfs_write_stats stats, total;
	struct timespec last_progress;
	size_t job_at; /* the writer's next job */
};

static int push_job(struct writer *w, struct wtg_inode *in, struct wtg_stream *s)
{
	for (uint64_t off = 0; off < s->size; off += PIECE) {
		if (wtg_grow((void **)&w->jobs, &w->jobs_cap, w->njobs, sizeof(*w->jobs)))
			return -ENOMEM;
		uint64_t left = s->size - off;
		w->jobs[w->njobs++] = (struct job){
		    .inode = in, .stream = s, .off = off, .len = left < PIECE ? (uint32_t)left : PIECE};
	}
	return 0;
}

static int push(struct wtg_inode ***v, size_t *n, size_t *cap, struct wtg_inode *in)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 256;
		struct wtg_inode **p = realloc(*v, c * sizeof(*p));
		if (!p)
			return -ENOMEM;
		*v = p;
		*cap = c;
	}
	(*v)[(*n)++] = in;
	return 0;
}

/* A subset: marks the inodes asked for and every directory that holds one
 * of their names, up to the root. */
static int mark_subset(struct writer *w)
{
	if (!w->opt || !w->opt->only)
		return 0;
	if (!(w->mark = calloc(w->tree->ninodes + 2, 1)))
		return -ENOMEM;
	w->mark[WTG_ROOT_INO] = 1;
	for (size_t i = 0; i < w->opt->nonly; i++) {
		const struct wtg_inode *in = w->opt->only[i];
		if (!in || in->ino > w->tree->ninodes)
			return -EINVAL;
		w->mark[in->ino] = 1;
		for (const struct wtg_dentry *de = in->first_name; de; de = de->alias_next)
			for (const struct wtg_inode *p = de->parent; p && !w->mark[p->ino];
			     p = p->parent)
				w->mark[p->ino] = 1;
	}
	return 0;
}

/* The directories in pre-order and the files in the order they are made:
 * by the directory of the name that owns the DOS name (else the first). */
static int plan(struct writer *w)
{
	size_t dcap = 0, fcap = 0;
	struct wtg_inode *root = wtg_tree_inode(w->tree, WTG_ROOT_INO);
	int ret;

	if (!root || !root->dir)
		return -EIO;
	if ((ret = mark_subset(w)))
		return ret;
	if ((ret = push(&w->dirs, &w->ndirs, &dcap, root)))
		return ret;
	for (size_t d = 0; d < w->ndirs; d++) {
		struct wtg_dir *dir = w->dirs[d]->dir;
		for (uint32_t i = 0; i < dir->count; i++) {
			struct wtg_dentry *de = dir->entries[i];
			struct wtg_inode *in = de->inode;
			const char *dos;
			if (in->gone || (w->mark && !w->mark[in->ino]))
				continue;
			if (in->dir) {
				if ((ret = push(&w->dirs, &w->ndirs, &dcap, in)))
					return ret;
				w->total.dirs++;
				continue;
			}
			w->total.links++;
			if (wtg_ntfs_dos_owner(in, &dos) != de)
				continue;
			if ((ret = push(&w->files, &w->nfiles, &fcap, in)))
				return ret;
			w->total.files++;
		}
	}
	/* Jobs in the order the writer asks: files, then directories' streams */
	for (size_t f = 0; f < w->nfiles; f++)
		for (uint32_t i = 0; i < w->files[f]->nstreams; i++) {
			struct wtg_stream *s = &w->files[f]->streams[i];
			w->total.streams++;
			w->total.bytes += s->size;
			if ((ret = push_job(w, w->files[f], s)))
				return ret;
		}
	for (size_t d = 0; d < w->ndirs; d++)
		for (uint32_t i = 0; i < w->dirs[d]->nstreams; i++) {
			struct wtg_stream *s = &w->dirs[d]->streams[i];
			w->total.streams++;
			w->total.bytes += s->size;
			if ((ret = push_job(w, w->dirs[d], s)))
				return ret;
		}
	return 0;
}

/* ---- the readers ---- */

static void *reader(void *arg)
{
	struct writer *w = arg;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->stop && w->next < w->njobs && w->next >= w->consumed + NSLOTS)
			pthread_cond_wait(&w->work, &w->lock);
		if (w->stop || w->next >= w->njobs)
			break;
		size_t j = w->next++;
		struct slot *sl = &w->slots[j % NSLOTS];
		pthread_mutex_unlock(&w->lock);

		const struct job *jb = &w->jobs[j];
		wtg_view_lock_shared(w->view);
		long n = wtg_view_read(w->view, jb->inode, jb->stream, sl->buf, jb->len, jb->off);
		wtg_view_unlock(w->view);
		int ret = n < 0 ? (int)n : (size_t)n != jb->len ? -EIO : 0;

		pthread_mutex_lock(&w->lock);
		sl->ret = ret;
		sl->job = (int64_t)j;
		pthread_cond_broadcast(&w->done);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static int start_readers(struct writer *w)
{
	unsigned n = w->opt && w->opt->threads ? w->opt->threads : 0;

	if (!n) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		n = cpus < 1 ? 1 : cpus > 4 ? 4 : (unsigned)cpus;
	}
	for (int i = 0; i < NSLOTS; i++) {
		w->slots[i].job = -1;
		if (!(w->slots[i].buf = malloc(PIECE)))
			return -ENOMEM;
	}
	w->threads = calloc(n, sizeof(*w->threads));
	if (!w->threads)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		if (pthread_create(&w->threads[i], NULL, reader, w))
			break;
		w->nthreads++;
	}
	return w->nthreads ? 0 : -EAGAIN;
}

static void stop_readers(struct writer *w)
{
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_broadcast(&w->work);
	pthread_mutex_unlock(&w->lock);
	for (unsigned i = 0; i < w->nthreads; i++)
		pthread_join(w->threads[i], NULL);
	free(w->threads);
	for (int i = 0; i < NSLOTS; i++)
		free(w->slots[i].buf);
}

/* The writer's next piece: waits until a reader has it. */
static struct slot *next_piece(struct writer *w, const struct job **job_ret)
{
	size_t j = w->job_at;
	struct slot *sl = &w->slots[j % NSLOTS];

	pthread_mutex_lock(&w->lock);
	while (sl->job != (int64_t)j)
		pthread_cond_wait(&w->done, &w->lock);
	pthread_mutex_unlock(&w->lock);
	*job_ret = &w->jobs[j];
	return sl;
}

static void piece_done(struct writer *w)
{
	pthread_mutex_lock(&w->lock);
	w->consumed = ++w->job_at;
	pthread_cond_broadcast(&w->work);
	pthread_mutex_unlock(&w->lock);
}

/* ---- writing ---- */

static const char *path_of(struct writer *w, const struct wtg_inode *in, char *buf, size_t size)
{
	if (wtg_tree_path(w->tree, in, buf, size) < 0)
		snprintf(buf, size, "inode %" PRIu64, in->ino);
	return buf;
}

static int fail(struct writer *w, const struct wtg_inode *in, const char *what)
{
	int err = errno ? errno : EIO;
	char path[4096];

	wtg_error("cannot %s '%s' in the new NTFS volume: %s", what,
		  path_of(w, in, path, sizeof(path)), strerror(err));
	return -err;
}

static long to_utf16(const char *name, ntfschar *out, size_t units)
{
	return wtg_utf8_to_utf16le(name, strlen(name), (uint8_t *)out, units);
}

static ntfs_inode *open_mft(struct writer *w, const struct wtg_inode *in)
{
	return ntfs_inode_open(w->vol, (MFT_REF)w->mft[in->ino - 1]);
}

static int set_attrib(struct writer *w, ntfs_inode *ni, const struct wtg_inode *in, uint32_t mask)
{
	/* sparse, reparse and directory bits follow what the inode holds;
	 * encryption cannot be reproduced without the keys */
	le32 attrib = cpu_to_le32(in->attributes & mask &
				  ~(NTFS_ATTR_SPARSE | NTFS_ATTR_ENCRYPTED | NTFS_ATTR_REPARSE_POINT));

	if (ntfs_set_ntfs_attrib(ni, (const char *)&attrib, sizeof(attrib), 0))
		return fail(w, in, "set the attributes of");
	return 0;
}

/* Object id, attributes, security descriptor: what is set before data.  A
 * directory stays uncompressed until its files exist: libntfs-3g
 * compresses what is created in a compressed directory. */
static int set_meta(struct writer *w, ntfs_inode *ni, const struct wtg_inode *in)
{
	int ret;

	if (in->object_id_len &&
	    ntfs_set_ntfs_object_id(ni, (const char *)in->object_id, in->object_id_len, 0))
		return fail(w, in, "set the object id of");
	if ((ret = set_attrib(w, ni, in, in->dir ? ~NTFS_ATTR_COMPRESSED : ~0u)))
		return ret;
	const struct wtg_sd *sd = wtg_tree_sd(w->tree, in->sd);
	if (sd && ntfs_set_ntfs_acl(&w->scx, ni, (const char *)sd->data, sd->len, 0))
		return fail(w, in, "set the security descriptor of");
	/* $EA (WSL's $LXMOD/$LXDEV, Windows' $KERNEL.PURGE.*): libntfs-3g
	 * checks it as wtg_ea_valid() does; a base's malformed one is left out */
	uint32_t ealen;
	const uint8_t *ea = wtg_inode_ea(in, &ealen);
	if (ea && !wtg_ea_valid(ea, ealen)) {
		char path[4096];
		wtg_warning("'%s': its extended attributes are malformed: left out",
			    path_of(w, in, path, sizeof(path)));
	} else if (ea && ntfs_set_ntfs_ea(ni, (const char *)ea, ealen, 0)) {
		return fail(w, in, "set the extended attributes of");
	}
	return 0;
}

/* A file with the compressed attribute is created compressed: libntfs-3g
 * does so in a compressed directory, so its directory is, for a moment. */
static ntfs_inode *create_in(struct writer *w, ntfs_inode *dir_ni, const struct wtg_inode *in,
			     ntfschar *name, u8 len)
{
	le32 was = 0, now;
	bool flip = (in->attributes & NTFS_ATTR_COMPRESSED) &&
		    ntfs_get_ntfs_attrib(dir_ni, (char *)&was, sizeof(was)) == sizeof(was) &&
		    !(le32_to_cpu(was) & NTFS_ATTR_COMPRESSED);

	if (flip) {
		now = cpu_to_le32(le32_to_cpu(was) | NTFS_ATTR_COMPRESSED);
		if (ntfs_set_ntfs_attrib(dir_ni, (const char *)&now, sizeof(now), 0))
			return NULL;
	}
	ntfs_inode *ni = ntfs_create(dir_ni, 0, name, len, S_IFREG);
	if (flip) {
		int err = errno;
		ntfs_set_ntfs_attrib(dir_ni, (const char *)&was, sizeof(was), 0);
		errno = err;
	}
	return ni;
}

static int set_times(struct writer *w, ntfs_inode *ni, const struct wtg_inode *in)
{
	le64 times[3] = {cpu_to_le64((u64)in->crtime), cpu_to_le64((u64)in->mtime),
			 cpu_to_le64((u64)in->atime)};

	if (ntfs_inode_set_times(ni, (const char *)times, sizeof(times), 0))
		return fail(w, in, "set the times of");
	return 0;
}

static int set_reparse(struct writer *w, ntfs_inode *ni, const struct wtg_inode *in)
{
	uint32_t len;
	const uint8_t *rp;

	if (!(in->attributes & NTFS_ATTR_REPARSE_POINT))
		return 0;
	rp = wtg_inode_reparse(w->tree, in, &len);
	if (!rp) {
		errno = EIO;
		return fail(w, in, "read the reparse data for");
	}
	/* WSL's special files: libntfs-3g takes their empty reparse points only
	 * on an inode marked recall-on-open, a flag system.ntfs_attrib cannot
	 * set (as ntfs-3g's own mknod, set on the inode itself) */
	if (in->attributes & NTFS_ATTR_RECALL_ON_OPEN) {
		ni->flags |= FILE_ATTRIBUTE_RECALL_ON_OPEN;
		NInoSetDirty(ni);
	}
	if (ntfs_set_ntfs_reparse_data(ni, (const char *)rp, len, 0))
		return fail(w, in, "set the reparse data of");
	return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	const uint64_t *q = (const uint64_t *)p;
	size_t i = 0;

	for (; i + 8 <= n; i += 8)
		if (*q++)
			return false;
	for (; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static void progress(struct writer *w, bool force)
{
	struct timespec now;
	unsigned ms;

	if (!w->opt || !w->opt->progress)
		return;
	ms = w->opt->interval_ms ? w->opt->interval_ms : 200;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long el = (now.tv_sec - w->last_progress.tv_sec) * 1000 +
		  (now.tv_nsec - w->last_progress.tv_nsec) / 1000000;
	if (!force && el < (long)ms)
		return;
	w->last_progress = now;
	w->opt->progress(w->opt->ctx, &w->stats, &w->total);
}

/* The streams of @in from the readers' pieces, in job order. */
static int write_streams(struct writer *w, ntfs_inode *ni, struct wtg_inode *in)
{
	bool sparse = in->attributes & NTFS_ATTR_SPARSE;

	for (uint32_t i = 0; i < in->nstreams; i++) {
		struct wtg_stream *s = &in->streams[i];
		ntfschar uname[512];
		long ulen = 0;
		if (s->name) {
			ulen = to_utf16(s->name, uname, 512);
			if (ulen < 0) {
				errno = -(int)ulen;
				return fail(w, in, "name a stream of");
			}
			if (ntfs_attr_add(ni, AT_DATA, uname, (int)ulen, NULL, 0))
				return fail(w, in, "add a named stream to");
		}
		w->stats.streams++;
		if (!s->size)
			continue;
		ntfs_attr *na = ntfs_attr_open(ni, AT_DATA, s->name ? uname : AT_UNNAMED, (u32)ulen);
		if (!na)
			return fail(w, in, "open a stream of");
		int ret = 0;
		/* a sparse file keeps its holes; any other is allocated at once */
		if (sparse ? ntfs_attr_truncate(na, (s64)s->size)
			   : ntfs_attr_truncate_solid(na, (s64)s->size)) {
			ret = fail(w, in, "allocate the data of");
			goto close;
		}
		for (uint64_t off = 0; off < s->size;) {
			const struct job *jb;
			struct slot *sl = next_piece(w, &jb);
			if (jb->stream != s || jb->off != off) {
				errno = EIO; /* the plan and the writer disagree: a bug */
				ret = fail(w, in, "order the data of");
				goto close;
			}
			if (sl->ret) {
				errno = -sl->ret;
				ret = fail(w, in, "read the data for");
				goto close;
			}
			if (!(sparse && all_zero(sl->buf, jb->len))) {
				if (ntfs_attr_pwrite(na, (s64)off, jb->len, sl->buf) != jb->len) {
					ret = fail(w, in, "write the data of");
					goto close;
				}
				w->stats.written += jb->len;
			}
			w->stats.bytes += jb->len;
			off += jb->len;
			piece_done(w);
			progress(w, false);
		}
	close:
		if (ntfs_attr_pclose(na) && !ret)
			ret = fail(w, in, "finish the data of");
		ntfs_attr_close(na);
		if (ret)
			return ret;
	}
	return 0;
}

static int create_dirs(struct writer *w)
{
	w->mft[WTG_ROOT_INO - 1] = FILE_root;
	for (size_t d = 0; d < w->ndirs; d++) {
		struct wtg_inode *parent = w->dirs[d];
		ntfs_inode *dir_ni = NULL;
		for (uint32_t i = 0; i < parent->dir->count; i++) {
			struct wtg_inode *in = parent->dir->entries[i]->inode;
			ntfschar uname[512];
			if (!in->dir || in->gone || (w->mark && !w->mark[in->ino]))
				continue;
			if (!dir_ni && !(dir_ni = open_mft(w, parent)))
				return fail(w, parent, "open");
			long ulen = to_utf16(parent->dir->entries[i]->name, uname, 512);
			if (ulen < 0) {
				errno = -(int)ulen;
				ntfs_inode_close(dir_ni);
				return fail(w, in, "name");
			}
			ntfs_inode *ni = ntfs_create(dir_ni, 0, uname, (u8)ulen, S_IFDIR);
			if (!ni) {
				int ret = fail(w, in, "create the directory");
				ntfs_inode_close(dir_ni);
				return ret;
			}
			w->mft[in->ino - 1] = ni->mft_no;
			int ret = set_meta(w, ni, in);
			if (ntfs_inode_close_in_dir(ni, dir_ni) && !ret)
				ret = fail(w, in, "close");
			if (ret) {
				ntfs_inode_close(dir_ni);
				return ret;
			}
		}
		if (dir_ni && ntfs_inode_close(dir_ni))
			return fail(w, parent, "close");
	}
	/* DOS names of directories, now that all exist */
	for (size_t d = 1; d < w->ndirs; d++) {
		struct wtg_inode *in = w->dirs[d];
		const char *dos;
		const struct wtg_dentry *owner = wtg_ntfs_dos_owner(in, &dos);
		if (!dos || !owner)
			continue;
		ntfs_inode *ni = open_mft(w, in), *dir_ni = open_mft(w, owner->parent);
		if (!ni || !dir_ni) {
			int ret = fail(w, in, "open");
			if (ni)
				ntfs_inode_close(ni);
			if (dir_ni)
				ntfs_inode_close(dir_ni);
			return ret;
		}
		if (ntfs_set_ntfs_dos_name(ni, dir_ni, dos, strlen(dos), 0))
			return fail(w, in, "set the DOS name of");
	}
	return 0;
}

static int add_link(struct writer *w, ntfs_inode *ni, struct wtg_inode *in,
		    const struct wtg_dentry *de)
{
	ntfschar uname[512];
	long ulen = to_utf16(de->name, uname, 512);

	if (ulen < 0) {
		errno = -(int)ulen;
		return fail(w, in, "name a link of");
	}
	ntfs_inode *dir_ni = open_mft(w, de->parent);
	if (!dir_ni)
		return fail(w, de->parent, "open");
	int res = ntfs_link(ni, dir_ni, uname, (u8)ulen);
	int ret = res ? fail(w, in, "link") : 0;
	if (ntfs_inode_close(dir_ni) && !ret)
		ret = fail(w, de->parent, "close");
	return ret;
}

static int create_file(struct writer *w, struct wtg_inode *in)
{
	const char *dos;
	const struct wtg_dentry *owner = wtg_ntfs_dos_owner(in, &dos);
	ntfschar uname[512];
	long ulen = to_utf16(owner->name, uname, 512);
	int ret;

	if (ulen < 0) {
		errno = -(int)ulen;
		return fail(w, in, "name");
	}
	ntfs_inode *dir_ni = open_mft(w, owner->parent);
	if (!dir_ni)
		return fail(w, owner->parent, "open");
	ntfs_inode *ni = create_in(w, dir_ni, in, uname, (u8)ulen);
	if (!ni) {
		ret = fail(w, in, "create");
		ntfs_inode_close(dir_ni);
		return ret;
	}
	w->mft[in->ino - 1] = ni->mft_no;
	if (dos) {
		/* closes both */
		if (ntfs_set_ntfs_dos_name(ni, dir_ni, dos, strlen(dos), 0))
			return fail(w, in, "set the DOS name of");
		if (!(ni = open_mft(w, in)))
			return fail(w, in, "reopen");
	} else if (ntfs_inode_close(dir_ni)) {
		ret = fail(w, owner->parent, "close");
		ntfs_inode_close(ni);
		return ret;
	}
	ret = 0;
	for (const struct wtg_dentry *de = in->first_name; de && !ret; de = de->alias_next)
		if (de != owner)
			ret = add_link(w, ni, in, de);
	if (!ret)
		ret = set_meta(w, ni, in);
	if (!ret)
		ret = write_streams(w, ni, in);
	if (!ret)
		ret = set_times(w, ni, in);
	if (!ret)
		ret = set_reparse(w, ni, in);
	if (ntfs_inode_close(ni) && !ret)
		ret = fail(w, in, "close");
	w->stats.files++;
	for (const struct wtg_dentry *de = in->first_name; de; de = de->alias_next)
		w->stats.links++;
	return ret;
}

/* Named streams, times and reparse data of directories, deepest first, so
 * nothing created later touches a time already set. */
static int finish_dirs(struct writer *w)
{
	for (size_t d = w->ndirs; d-- > 0;) {
		struct wtg_inode *in = w->dirs[d];
		ntfs_inode *ni = open_mft(w, in);
		int ret;
		if (!ni)
			return fail(w, in, "open");
		ret = d == 0 ? set_meta(w, ni, in) : 0;
		if (!ret && (in->attributes & NTFS_ATTR_COMPRESSED))
			ret = set_attrib(w, ni, in, ~0u);
		if (!ret)
			ret = write_streams(w, ni, in);
		if (!ret)
			ret = set_times(w, ni, in);
		if (!ret)
			ret = set_reparse(w, ni, in);
		if (ntfs_inode_close(ni) && !ret)
			ret = fail(w, in, "close");
		if (ret)
			return ret;
		w->stats.dirs += d > 0;
	}
	return 0;
}

void wtg_ntfs_write_totals(struct wtg_view *view, const struct wtg_ntfs_write_options *opt,
			   struct wtg_ntfs_write_stats *total)
{
	struct writer w = {.view = view, .tree = wtg_view_tree(view), .opt = opt};

	memset(total, 0, sizeof(*total));
	wtg_view_lock_shared(view);
	if (plan(&w) == 0)
		*total = w.total;
	wtg_view_unlock(view);
	free(w.mark);
	free(w.files);
	free(w.dirs);
	free(w.jobs);
}

int wtg_ntfs_write_tree(struct wtg_view *view, ntfs_volume *vol,
			const struct wtg_ntfs_write_options *opt,
			struct wtg_ntfs_write_stats *stats_ret)
{
	struct writer w = {.view = view, .tree = wtg_view_tree(view), .vol = vol, .opt = opt};
	int ret;

	w.scx.vol = vol;
	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.work, NULL);
	pthread_cond_init(&w.done, NULL);
	wtg_view_lock_shared(view);
	w.mft = calloc(w.tree->ninodes ? w.tree->ninodes : 1, sizeof(*w.mft));
	ret = w.mft ? plan(&w) : -ENOMEM;
	if (!ret)
		ret = start_readers(&w);
	if (!ret)
		ret = create_dirs(&w);
	for (size_t f = 0; !ret && f < w.nfiles; f++)
		ret = create_file(&w, w.files[f]);
	if (!ret)
		ret = finish_dirs(&w);
	progress(&w, true);
	stop_readers(&w);
	wtg_view_unlock(view);
	if (stats_ret)
		*stats_ret = w.stats;
	free(w.mft);
	free(w.mark);
	free(w.files);
	free(w.dirs);
	free(w.jobs);
	pthread_mutex_destroy(&w.lock);
	pthread_cond_destroy(&w.work);
	pthread_cond_destroy(&w.done);
	return ret;
}

/* ---- single files by path ---- */

/* Opens the directory or file @path (components separated by '\' or '/'),
 * creating missing directories when @create; NULL with errno. */
static ntfs_inode *walk_path(ntfs_volume *vol, const char *path, bool create_dirs_too,
			     ntfs_inode **parent_ret, const char **last_ret)
{
	char *copy = strdup(path);
	ntfs_inode *dir = ntfs_inode_open(vol, FILE_root);
	char *save, *tok, *next;

	if (!copy || !dir) {
		free(copy);
		if (dir)
			ntfs_inode_close(dir);
		errno = ENOMEM;
		return NULL;
	}
	for (char *p = copy; *p; p++)
		if (*p == '\\')
			*p = '/';
	tok = strtok_r(copy, "/", &save);
	while (tok) {
		next = strtok_r(NULL, "/", &save);
		if (!next) {
			/* the last component: the caller's */
			*parent_ret = dir;
			*last_ret = path + (tok - copy);
			ntfs_inode *ni = ntfs_pathname_to_inode(vol, dir, tok);
			free(copy);
			return ni;
		}
		ntfs_inode *sub = ntfs_pathname_to_inode(vol, dir, tok);
		if (!sub && create_dirs_too) {
			ntfschar uname[512];
			long ulen = to_utf16(tok, uname, 512);
			if (ulen > 0 && (sub = ntfs_create(dir, 0, uname, (u8)ulen, S_IFDIR))) {
				/* as Windows would: the parent's inheritable ACEs */
				struct SECURITY_CONTEXT scx = {.vol = vol};
				int n = ntfs_get_ntfs_acl(&scx, dir, NULL, 0);
				char *psd = n > 0 ? malloc((size_t)n) : NULL;
				uint8_t *sd;
				size_t sdlen;
				if (psd && ntfs_get_ntfs_acl(&scx, dir, psd, (size_t)n) == n &&
				    wtg_sd_inherit((const uint8_t *)psd, (size_t)n, true,
						   &sd, &sdlen) == 0) {
					ntfs_set_ntfs_acl(&scx, sub, (const char *)sd, sdlen, 0);
					free(sd);
				}
				free(psd);
			}
		}
		ntfs_inode_close(dir);
		if (!sub) {
			free(copy);
			return NULL;
		}
		dir = sub;
		tok = next;
	}
	free(copy);
	ntfs_inode_close(dir);
	errno = EINVAL;
	return NULL;
}

int wtg_ntfs_put_file(ntfs_volume *vol, const char *path, const void *data, size_t len,
		      bool *created_ret)
{
	ntfs_inode *dir = NULL, *ni;
	const char *last = NULL;
	bool created = false;
	int ret = 0;

	errno = 0;
	ni = walk_path(vol, path, true, &dir, &last);
	if (!ni && dir && errno == ENOENT) {
		ntfschar uname[512];
		long ulen = to_utf16(last, uname, 512);
		if (ulen > 0 && (ni = ntfs_create(dir, 0, uname, (u8)ulen, S_IFREG))) {
			created = true;
			struct SECURITY_CONTEXT scx = {.vol = vol};
			int n = ntfs_get_ntfs_acl(&scx, dir, NULL, 0);
			char *psd = n > 0 ? malloc((size_t)n) : NULL;
			uint8_t *sd;
			size_t sdlen;
			if (psd && ntfs_get_ntfs_acl(&scx, dir, psd, (size_t)n) == n &&
			    wtg_sd_inherit((const uint8_t *)psd, (size_t)n, false, &sd,
					   &sdlen) == 0) {
				ntfs_set_ntfs_acl(&scx, ni, (const char *)sd, sdlen, 0);
				free(sd);
			}
			free(psd);
		}
	}
	if (!ni) {
		ret = -(errno ? errno : ENOENT);
		wtg_error("cannot write '%s' in the new NTFS volume: %s", path, strerror(-ret));
		if (dir)
			ntfs_inode_close(dir);
		return ret;
	}
	ntfs_attr *na = ntfs_attr_open(ni, AT_DATA, AT_UNNAMED, 0);
	if (!na || ntfs_attr_truncate(na, 0) ||
	    (len && ntfs_attr_pwrite(na, 0, (s64)len, data) != (s64)len))
		ret = -(errno ? errno : EIO);
	if (na) {
		if (ntfs_attr_pclose(na) && !ret)
			ret = -(errno ? errno : EIO);
		ntfs_attr_close(na);
	}
	if (ntfs_inode_close_in_dir(ni, dir) && !ret)
		ret = -(errno ? errno : EIO);
	ntfs_inode_close(dir);
	if (ret)
		wtg_error("cannot write '%s' in the new NTFS volume: %s", path, strerror(-ret));
	else if (created_ret)
		*created_ret = created;
	return ret;
}

int wtg_ntfs_get_file(ntfs_volume *vol, const char *path, void **data_ret, size_t *len_ret)
{
	ntfs_inode *dir = NULL, *ni;
	const char *last;
	int ret = 0;

	*data_ret = NULL;
	*len_ret = 0;
	errno = 0;
	ni = walk_path(vol, path, false, &dir, &last);
	if (dir)
		ntfs_inode_close(dir);
	if (!ni)
		return -(errno ? errno : ENOENT);
	ntfs_attr *na = ntfs_attr_open(ni, AT_DATA, AT_UNNAMED, 0);
	if (!na) {
		ret = -(errno ? errno : EIO);
	} else {
		uint8_t *buf = malloc(na->data_size ? (size_t)na->data_size : 1);
		if (!buf)
			ret = -ENOMEM;
		else if (ntfs_attr_pread(na, 0, na->data_size, buf) != na->data_size)
			ret = -(errno ? errno : EIO);
		if (ret) {
			free(buf);
		} else {
			*data_ret = buf;
			*len_ret = (size_t)na->data_size;
		}
		ntfs_attr_close(na);
	}
	ntfs_inode_close(ni);
	return ret;
}
