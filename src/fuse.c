/*
 * libfuse3 low-level adapter over a view: a bare image, a snapshot of a
 * delta (both read-only: the view answers EROFS) or a delta's working tree.
 * It speaks to the view alone, the same way for all three.
 *
 * fuse_ino_t is the tree's inode number (the root is 1 on both sides), or
 * for a symlink with names in several directories an alias per directory
 * (see ALIAS_NODE).  Every entry given to the kernel counts as a reference
 * of the view's inode, and forget gives them back: a deleted inode goes
 * once the kernel lets go.  A read-only mount never changes, so the kernel
 * may cache entries, attributes and data for as long as it likes; a
 * writable one changes through the kernel, which keeps its caches itself
 * (names differ from lookups in case, so entries age quickly), and
 * through a rollback, after which the kernel is told what to drop.  Reads
 * hold the view's shared lock while they use an inode (but not while they
 * decode the base's bytes), changes go through the view's calls, and every
 * request is answered exactly once, never under a lock.
 *
 * A file handle (fi->fh) carries the view's generation when it was opened
 * (rollbacks so far) and whether it was opened for writing; reads and
 * writes through a handle from before a rollback answer ESTALE (a read
 * already under way when the rollback came ends with the bytes it began
 * with).
 *
 * Snapshot and rollback requests arrive over the control channel
 * (wtgfs/control.h) and are served on its thread.
 *
 * NTFS metadata goes out under ntfs-3g's extended attribute names, named
 * streams as user.NAME, so tools that already speak ntfs-3g work unchanged.
 */
#define FUSE_USE_VERSION 314

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "wtgfs/control.h"
#include "wtgfs/ea.h"
#include "wtgfs/fuse_mount.h"
#include "wtgfs/log.h"
#include "wtgfs/mountinfo.h"
#include "wtgfs/ntfs.h"
#include "wtgfs/tree.h"
#include "wtgfs/view.h"

/*
 * A symlink's target depends on the directory of the name it is read
 * through (a relative target climbs from there; an absolute one is shown
 * relative to it), and FUSE asks readlink per node.  So a link with names
 * in several directories gets a node of its own for each (inode,
 * directory): an alias, ALIAS_NODE + its index.  stat shows the inode's
 * number through every node, so its names stay one file's hard links.
 * The inode's own number, given out while its names share the first
 * name's directory, reads from there.  Once a name of the inode was
 * removed (a rename removes one, and the kernel's entry moves to another
 * directory with its node), a node made before reads the target that stays
 * inside the mount from every name, until the kernel looks the name up
 * again (the entries of a link's names are dropped whenever one goes) and
 * gets the node of its directory.
 */
#define ALIAS_NODE (1ull << 63)

struct alias {
	uint64_t ino, dir;
	uint32_t unlinks; /* the inode's when the alias was made */
};

/* Reads of up to 1 MiB per request (the kernel derives its max_pages from
 * max_write), so one request decodes many chunks. */
#define MAX_REQUEST (1u << 20)
/* Kernel read-ahead for the mount: asked for generously; the kernel caps
 * it at one request (1 MiB), eight times its FUSE default. */
#define READ_AHEAD_KB 4096

/* The image never changes under a read-only mount. */
#define CACHE_TIMEOUT 86400.0
/* A writable mount: an entry found through another case of its name goes
 * stale when the name changes through the stored case. */
#define RW_TIMEOUT 1.0

/* A kernel entry to drop: a name changed through another case of it, so the
 * kernel's entry under the stored case still shows what was there. */
struct stale {
	fuse_ino_t parent;
	char *name;
	struct stale *next;
};

struct fs {
	struct wtg_view *view;
	struct fuse_session *se;
	/* stale entries go from a thread of their own: the kernel holds the
	 * directory's lock while the request that made them runs */
	pthread_t stale_thread;
	pthread_mutex_t stale_lock;
	pthread_cond_t stale_cond;
	struct stale *stale;
	bool stale_running, stopping;
	bool writable; /* fixed for the mount: modes, timeouts, "ro" */
	double timeout;
	const char *delta_dir; /* statfs of a writable mount: its free space */
	/* nodes of symlinks with names in several directories (node_of) */
	pthread_mutex_t alias_lock;
	struct alias *aliases;
	uint64_t naliases, alias_cap;
	uint64_t *alias_hash; /* index + 1; 0: empty */
	uint64_t alias_buckets;
	bool no_open, no_opendir; /* the kernel can open without asking */
	uid_t uid; /* every file's owner and group, as ntfs-3g shows them */
	gid_t gid;
	mode_t fmask, dmask; /* permission bits files and directories lack */
	bool posix; /* -o posix: owners and modes in WSL's $LXUID/$LXGID/$LXMOD */
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

/* The permission bits of @in: all, less the write bits when the mount is
 * read-only or the file has the read-only attribute, less the mount's mask
 * (ntfs-3g's umask, fmask and dmask: 022 by default, so only the owner
 * writes). */
static mode_t perm_of(const struct fs *fs, const struct wtg_inode *in, unsigned type)
{
	mode_t perm = 0777;

	if (!fs->writable)
		perm = type == S_IFDIR ? 0555 : 0444;
	else if (in->attributes & NTFS_ATTR_READONLY)
		perm = 0555;
	return perm & ~(type == S_IFDIR ? fs->dmask : fs->fmask);
}

/* -o posix: what WSL's EAs say of @in's owner, group and permission bits
 * (those it has; the others left as they are). */
static void posix_of(const struct fs *fs, const struct wtg_inode *in, struct stat *st)
{
	uint32_t x;

	if (!fs->posix || !in->ea)
		return;
	if (!wtg_ea_wsl_u32(in->ea, in->ea_len, "$LXUID", &x))
		st->st_uid = x;
	if (!wtg_ea_wsl_u32(in->ea, in->ea_len, "$LXGID", &x))
		st->st_gid = x;
	if (!S_ISLNK(st->st_mode) && !wtg_ea_wsl_u32(in->ea, in->ea_len, "$LXMOD", &x)) {
		mode_t perm = x & 07777;
		if (!fs->writable)
			perm &= ~(mode_t)0222;
		st->st_mode = (st->st_mode & S_IFMT) | perm;
	}
}

static uint64_t alias_slot(uint64_t ino, uint64_t dir, uint32_t unlinks, uint64_t buckets)
{
	uint64_t h = (ino * 0x9E3779B97F4A7C15ull) ^ (dir * 0xC2B2AE3D27D4EB4Full) ^ unlinks;
	return (h ^ h >> 29) & (buckets - 1);
}

static bool alias_grow(struct fs *fs)
{
	uint64_t nb = fs->alias_buckets ? fs->alias_buckets * 2 : 64;
	uint64_t *h = calloc(nb, sizeof(*h));
	struct alias *v = realloc(fs->aliases, nb / 2 * sizeof(*v));

	if (!h || !v) {
		free(h);
		if (v)
			fs->aliases = v;
		return false;
	}
	fs->aliases = v;
	fs->alias_cap = nb / 2;
	for (uint64_t i = 0; i < fs->naliases; i++) {
		const struct alias *a = &v[i];
		uint64_t b = alias_slot(a->ino, a->dir, a->unlinks, nb);
		while (h[b])
			b = (b + 1) & (nb - 1);
		h[b] = i + 1;
	}
	free(fs->alias_hash);
	fs->alias_hash = h;
	fs->alias_buckets = nb;
	return true;
}

/* The node of @in as reached through its name in @dir (under the shared
 * lock): its own number, or an alias when its names lie in several
 * directories and it is a link; 0 (a negative entry, or in readdirplus
 * none) when there is no memory for the alias. */
static fuse_ino_t node_of(struct fs *fs, const struct wtg_inode *in, const struct wtg_inode *dir)
{
	fuse_ino_t node = 0; /* no memory for an alias: no node for the kernel */

	if (!dir || !wtg_inode_is_link(in) || wtg_inode_names_in_one_dir(in))
		return in->ino;
	pthread_mutex_lock(&fs->alias_lock);
	if (fs->naliases < fs->alias_cap || alias_grow(fs)) {
		uint64_t b = alias_slot(in->ino, dir->ino, in->unlinks, fs->alias_buckets);
		for (;; b = (b + 1) & (fs->alias_buckets - 1)) {
			uint64_t i = fs->alias_hash[b];
			if (!i) {
				fs->aliases[fs->naliases] = (struct alias){
				    .ino = in->ino, .dir = dir->ino, .unlinks = in->unlinks};
				fs->alias_hash[b] = ++fs->naliases;
				node = ALIAS_NODE | (fs->naliases - 1);
				break;
			}
			const struct alias *a = &fs->aliases[i - 1];
			if (a->ino == in->ino && a->dir == dir->ino && a->unlinks == in->unlinks) {
				node = ALIAS_NODE | (i - 1);
				break;
			}
		}
	}
	pthread_mutex_unlock(&fs->alias_lock);
	return node;
}

/* The inode number behind a node; 0 for an alias never made. */
static uint64_t real_ino(struct fs *fs, fuse_ino_t node)
{
	if (!(node & ALIAS_NODE))
		return node;
	pthread_mutex_lock(&fs->alias_lock);
	uint64_t i = node & ~ALIAS_NODE, ino = i < fs->naliases ? fs->aliases[i].ino : 0;
	pthread_mutex_unlock(&fs->alias_lock);
	return ino;
}

/* The directory a link is read from through @node (under the shared
 * lock); NULL: not known, so the target that stays inside from every name. */
static const struct wtg_inode *node_dir(struct fs *fs, fuse_ino_t node, const struct wtg_inode *in)
{
	/* its own number: given out while its names shared the first
	 * name's directory; only a removal can have moved an entry since */
	if (!(node & ALIAS_NODE))
		return in->unlinks ? NULL : in->parent;
	pthread_mutex_lock(&fs->alias_lock);
	uint64_t i = node & ~ALIAS_NODE;
	struct alias a = i < fs->naliases ? fs->aliases[i] : (struct alias){0};
	pthread_mutex_unlock(&fs->alias_lock);
	return a.ino == in->ino && a.unlinks == in->unlinks ? wtg_view_inode(fs->view, a.dir) : NULL;
}

/* @node: the node the kernel asks about (an alias of a link, or @in's own
 * number). */
static void fill_stat(struct fs *fs, const struct wtg_inode *in, fuse_ino_t node, struct stat *st)
{
	uint32_t major, minor;
	unsigned type = wtg_inode_posix_type(in, &major, &minor);

	memset(st, 0, sizeof(*st));
	st->st_ino = in->ino;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	/* writable: tools like cp size their buffers by it, and a 1 MiB write is
	 * one request where 128 KiB writes are eight */
	st->st_blksize = fs->writable ? MAX_REQUEST : 4096;
	st->st_nlink = ntfs_link_count(in);
	if (type == S_IFLNK) {
		char target[4096];
		long n = wtg_view_readlink(fs->view, in, node_dir(fs, node, in), target,
					   sizeof(target));
		st->st_mode = S_IFLNK | 0777;
		st->st_size = n > 0 ? n : 0;
	} else if (type == S_IFDIR) {
		st->st_mode = S_IFDIR | perm_of(fs, in, type);
		/* removed while open: no links, as on any Linux file system */
		st->st_nlink = in->nlink || in->ino == WTG_ROOT_INO ? 2 + in->nsubdirs : 0;
		st->st_size = 4096;
	} else {
		const struct wtg_stream *data = wtg_inode_data(in);
		st->st_mode = type | perm_of(fs, in, type);
		st->st_size = type == S_IFREG && data ? (off_t)data->size : 0;
		st->st_rdev = makedev(major, minor);
	}
	/* what takes space, not the size: a sparse file is small in du, and
	 * a file of 2^63 - 1 bytes does not overflow */
	uint64_t used = S_ISREG(st->st_mode) ? wtg_view_allocated(fs->view, in, wtg_inode_data(in))
					     : (uint64_t)st->st_size;
	st->st_blocks = (blkcnt_t)(used / 512 + (used % 512 != 0));
	st->st_atim = ntfs_time_to_timespec(in->atime);
	st->st_mtim = ntfs_time_to_timespec(in->mtime);
	st->st_ctim = ntfs_time_to_timespec(in->ctime);
	posix_of(fs, in, st);
}

/*
 * A DOS name is a name's, but the kernel asks for extended attributes by
 * inode: system.ntfs_dos_name answers for the name the file was looked up
 * by last (wtg_inode_note_name).  So that every path walk to a file whose
 * names differ there says which name it took, the kernel keeps no entry
 * for its names and looks each up again; on a writable mount that holds
 * for every file with several names, which a DOS name may be set on.
 */
static bool per_name(const struct fs *fs, const struct wtg_inode *in)
{
	return in->nlink > 1 && !in->dir && (fs->writable || wtg_inode_dos_names_vary(in));
}

/* The entry of @in as reached through its name in @dir. */
static void fill_entry(struct fs *fs, const struct wtg_inode *in, const struct wtg_inode *dir,
		       struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = node_of(fs, in, dir);
	if (!e->ino) /* not even a negative entry to keep */
		return;
	e->generation = 1;
	e->attr_timeout = fs->timeout;
	e->entry_timeout = per_name(fs, in) ? 0 : fs->timeout;
	fill_stat(fs, in, e->ino, &e->attr);
}

/* Under the shared lock (lock_shared). */
static struct wtg_inode *inode_of(fuse_req_t req, fuse_ino_t ino)
{
	return wtg_view_inode(fs_of(req)->view, real_ino(fs_of(req), ino));
}

static void lock_shared(fuse_req_t req)
{
	wtg_view_lock_shared(fs_of(req)->view);
}

static void unlock(fuse_req_t req)
{
	wtg_view_unlock(fs_of(req)->view);
}

/* Replies with the entry of @in as named in directory @parent, or the error. */
static void reply_entry(fuse_req_t req, struct wtg_inode *in, fuse_ino_t parent, int err)
{
	struct fuse_entry_param e;

	if (err)
		return (void)fuse_reply_err(req, -err);
	lock_shared(req);
	fill_entry(fs_of(req), in, inode_of(req, parent), &e);
	wtg_view_ref(fs_of(req)->view, in);
	unlock(req);
	fuse_reply_entry(req, &e);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fs *fs = userdata;

	/* Opens carry no state here: where the kernel allows it, the first
	 * open answers ENOSYS and the kernel stops sending open and release
	 * (two of the three round trips of reading a small file). */
	fs->no_open = !fs->writable && conn->capable & FUSE_CAP_NO_OPEN_SUPPORT;
	fs->no_opendir = !fs->writable && conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT;
	conn->max_write = MAX_REQUEST;
	conn->max_readahead = MAX_REQUEST;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	/* Entries never change: no need for the adaptive heuristic. */
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	/* O_TRUNC comes as a size change: one path for both */
	conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
	/* the kernel takes the umask off a new file's mode */
	conn->want &= ~FUSE_CAP_DONT_MASK;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fs_of(req);
	struct fuse_entry_param e;
	int err = 0;

	lock_shared(req);
	struct wtg_inode *dir = inode_of(req, parent);
	struct wtg_dentry *de = NULL;
	if (!dir)
		err = ESTALE;
	else if (!wtg_inode_is_dir(dir))
		err = ENOTDIR;
	else if (!(de = wtg_view_lookup(fs->view, dir, name)))
		err = ENOENT;
	else {
		fill_entry(fs, de->inode, dir, &e);
		wtg_view_ref(fs->view, de->inode);
	}
	if (de)
		wtg_inode_note_name(de);
	/* another case of a stored name: the kernel must not keep it, or it
	 * outlives a change made through the stored case */
	if (de && strcmp(de->name, name))
		e.entry_timeout = 0;
	unlock(req);
	if (err)
		return (void)fuse_reply_err(req, err);
	fuse_reply_entry(req, &e);
}

/* The attributes of FUSE node @node into @st; false when its inode is gone. */
static bool stat_of(fuse_req_t req, fuse_ino_t node, struct stat *st)
{
	lock_shared(req);
	struct wtg_inode *in = inode_of(req, node);
	if (in)
		fill_stat(fs_of(req), in, node, st);
	unlock(req);
	return in != NULL;
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	if (!stat_of(req, ino, &st))
		return (void)fuse_reply_err(req, ESTALE);
	fuse_reply_attr(req, &st, fs_of(req)->timeout);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char target[4096];

	lock_shared(req);
	struct wtg_inode *in = inode_of(req, ino);
	long n = in ? wtg_view_readlink(fs_of(req)->view, in, node_dir(fs_of(req), ino, in), target,
					sizeof(target))
		    : -ESTALE;
	unlock(req);
	if (n < 0)
		return (void)fuse_reply_err(req, (int)-n);
	fuse_reply_readlink(req, target);
}

/* fh: the generation at open, and 1 for a handle opened for writing */
static uint64_t handle(struct fs *fs, bool writer)
{
	return wtg_view_generation(fs->view) << 1 | writer;
}

static bool handle_stale(struct fs *fs, const struct fuse_file_info *fi)
{
	return fi->fh >> 1 != wtg_view_generation(fs->view);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	bool writer = (fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC);

	lock_shared(req);
	struct wtg_inode *in = inode_of(req, ino);
	int err = !in ? ESTALE : wtg_inode_is_dir(in) ? EISDIR : 0;
	unlock(req);
	if (err)
		return (void)fuse_reply_err(req, err);
	if (writer && !fs->writable)
		return (void)fuse_reply_err(req, EROFS);
	if (fs->no_open)
		return (void)fuse_reply_err(req, ENOSYS);
	int ret = wtg_view_open(fs->view, ino);
	if (ret)
		return (void)fuse_reply_err(req, -ret);
	fi->fh = handle(fs, writer);
	fi->keep_cache = 1;
	if (fuse_reply_open(req, fi) != 0)
		wtg_view_release(fs->view, ino); /* the open was interrupted */
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
	struct fs *fs = fs_of(req);
	long n = 0;

	if (off < 0)
		return (void)fuse_reply_buf(req, NULL, 0);
	void *buf = read_buf(size), *big = NULL;
	if (!buf && !(buf = big = malloc(size)))
		return (void)fuse_reply_err(req, ENOMEM);
	if (handle_stale(fs, fi))
		n = -ESTALE;
	else /* takes the view's lock itself */
		n = wtg_view_read_data(fs->view, ino, buf, size, (uint64_t)off);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(big);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);

	lock_shared(req);
	struct wtg_inode *in = inode_of(req, ino);
	int err = !in ? ESTALE : !wtg_inode_is_dir(in) ? ENOTDIR : 0;
	unlock(req);
	if (err)
		return (void)fuse_reply_err(req, err);
	if (fs->no_opendir)
		return (void)fuse_reply_err(req, ENOSYS);
	/* an open directory outlives its name, as an open file does */
	if ((err = wtg_view_open(fs->view, ino)))
		return (void)fuse_reply_err(req, -err);
	/* a writable directory changes: no cached listing */
	fi->cache_readdir = !fs->writable;
	fi->keep_cache = !fs->writable;
	if (fuse_reply_open(req, fi) != 0)
		wtg_view_release(fs->view, ino);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	wtg_view_release(fs_of(req)->view, ino);
	fuse_reply_err(req, 0);
}

/* Offsets: 0 ".", 1 "..", 2 + pos the entry at position pos: positions
 * stay put when names come and go, so a listing goes on where it was. */
static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	struct fs *fs = fs_of(req);
	char *buf = malloc(size);
	size_t used = 0;

	if (!buf)
		return (void)fuse_reply_err(req, ENOMEM);
	lock_shared(req);
	struct wtg_inode *dir = inode_of(req, ino);
	if (!dir || !dir->dir) {
		unlock(req);
		free(buf);
		return (void)fuse_reply_err(req, ENOTDIR);
	}
	if (dir->nlink == 0 && dir->ino != WTG_ROOT_INO) {
		unlock(req); /* removed while open: nothing, not even "." */
		free(buf);
		return (void)fuse_reply_buf(req, NULL, 0);
	}
	uint32_t i = off < 2 ? 0 : wtg_dir_seek(dir->dir, (uint64_t)off - 2);
	for (off_t o = off < 2 ? off : 2; i < dir->dir->count || o < 2;) {
		struct wtg_inode *child;
		const char *name;
		off_t next;
		if (o == 0) {
			child = dir;
			name = ".";
			next = 1;
		} else if (o == 1) {
			child = dir->parent ? dir->parent : dir;
			name = "..";
			next = 2;
		} else {
			child = dir->dir->entries[i]->inode;
			name = dir->dir->entries[i]->name;
			next = (off_t)dir->dir->entries[i]->pos + 3;
		}
		size_t n;
		if (plus) {
			struct fuse_entry_param e;
			fill_entry(fs, child, dir, &e);
			n = fuse_add_direntry_plus(req, buf + used, size - used, name, &e, next);
			/* the kernel takes a reference of each entry but "." and ".." */
			if (n <= size - used && o >= 2)
				wtg_view_ref(fs->view, child);
		} else {
			struct stat st;
			fill_stat(fs, child, child->ino, &st);
			n = fuse_add_direntry(req, buf + used, size - used, name, &st, next);
		}
		if (n > size - used)
			break;
		used += n;
		if (o < 2)
			o++;
		else
			i++;
	}
	unlock(req);
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
	struct fs *fs = fs_of(req);
	struct statvfs host;
	uint64_t data_bytes, inodes;

	wtg_view_counts(fs->view, &data_bytes, &inodes);
	struct statvfs sv = {
	    .f_bsize = 4096,
	    .f_frsize = 4096,
	    .f_blocks = data_bytes / 4096 + inodes,
	    .f_files = inodes,
	    .f_namemax = 255,
	};

	/* a writable mount has the room left where its delta lies */
	if (fs->writable && statvfs(fs->delta_dir, &host) == 0) {
		uint64_t scale = host.f_frsize / 4096 ? host.f_frsize / 4096 : 1;
		sv.f_bfree = sv.f_bavail = host.f_bavail * scale;
		sv.f_blocks += sv.f_bfree;
		sv.f_ffree = sv.f_favail = sv.f_bfree;
		sv.f_files += sv.f_ffree;
	}
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

static int64_t get_le64(const uint8_t *p, bool be)
{
	uint64_t x;
	memcpy(&x, p, 8);
	return (int64_t)(be ? be64toh(x) : x);
}

/* The value of xattr @name of @in (under the shared lock): copied to
 * *value_ret (malloc'd).  Returns its length or -errno. */
static long xattr_value(struct fs *fs, struct wtg_inode *in, const char *name, uint8_t **value_ret)
{
	uint8_t small[32];
	const void *src = NULL;
	long len = 0;

	if (!strncmp(name, "user.", 5)) {
		struct wtg_stream *s = wtg_inode_named_stream(in, name + 5);
		if (!s)
			return -ENODATA;
		if (s->size > 1u << 26)
			return -E2BIG;
		uint8_t *buf = malloc(s->size ? (size_t)s->size : 1);
		if (!buf)
			return -ENOMEM;
		long n = wtg_view_read(fs->view, in, s, buf, (size_t)s->size, 0);
		if (n < 0)
			free(buf);
		else
			*value_ret = buf;
		return n;
	}
	if (!strcmp(name, "system.ntfs_acl")) {
		const struct wtg_sd *sd = wtg_view_sd(fs->view, in);
		if (!sd)
			return -ENODATA;
		src = sd->data;
		len = sd->len;
	} else if (!strcmp(name, "system.ntfs_attrib") || !strcmp(name, "system.ntfs_attrib_be")) {
		uint32_t a = in->attributes;
		/* as ntfs-3g and Windows: a file with no attribute set reads
		 * as FILE_ATTRIBUTE_NORMAL */
		if (!a)
			a = 0x80;
		if (name[18])
			a = htobe32(a);
		memcpy(small, &a, 4);
		src = small;
		len = 4;
	} else if (!strcmp(name, "system.ntfs_reparse_data")) {
		uint32_t rlen;
		if (!(src = wtg_view_reparse(fs->view, in, &rlen)))
			return -ENODATA;
		len = rlen;
	} else if (!strcmp(name, "system.ntfs_dos_name")) {
		/* As ntfs-3g: the root has no directory to hold a DOS name.
		 * Another name of the file than the one that owns it has none. */
		const struct wtg_dentry *de = wtg_inode_current_name(in);
		if (in->ino == WTG_ROOT_INO)
			return -EPERM;
		if (!de || !(src = wtg_dentry_dos_name(de)))
			return -ENODATA;
		len = (long)strlen(src);
	} else if (!strcmp(name, "system.ntfs_object_id")) {
		if (!(src = in->object_id))
			return -ENODATA;
		len = in->object_id_len;
	} else if (!strcmp(name, "system.ntfs_ea")) {
		uint32_t elen;
		if (!(src = wtg_inode_ea(in, &elen)))
			return -ENODATA;
		len = elen;
	} else if (!strcmp(name, "system.ntfs_times") || !strcmp(name, "system.ntfs_times_be")) {
		bool be = name[17] != '\0';
		put_le64(small, in->crtime, be);
		put_le64(small + 8, in->mtime, be);
		put_le64(small + 16, in->atime, be);
		put_le64(small + 24, in->ctime, be);
		src = small;
		len = 32;
	} else if (!strcmp(name, "system.ntfs_crtime") || !strcmp(name, "system.ntfs_crtime_be")) {
		put_le64(small, in->crtime, name[18] != '\0');
		src = small;
		len = 8;
	} else {
		return -ENODATA;
	}
	if (!(*value_ret = malloc(len ? (size_t)len : 1)))
		return -ENOMEM;
	memcpy(*value_ret, src, (size_t)len);
	return len;
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	uint8_t *value = NULL;
	long len;

	lock_shared(req);
	struct wtg_inode *in = inode_of(req, ino);
	len = in ? xattr_value(fs_of(req), in, name, &value) : -ESTALE;
	unlock(req);
	if (len < 0)
		return (void)fuse_reply_err(req, (int)-len);
	reply_value(req, size, value, (size_t)len);
	free(value);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	size_t len = 0;
	char *buf = NULL;

	lock_shared(req);
	struct wtg_inode *in = inode_of(req, ino);
	if (in) {
		for (uint32_t i = 0; i < in->nstreams; i++)
			if (in->streams[i].name)
				len += 5 + strlen(in->streams[i].name) + 1;
		if (size && len <= size && (buf = malloc(len ? len : 1))) {
			char *p = buf;
			for (uint32_t i = 0; i < in->nstreams; i++)
				if (in->streams[i].name)
					p += sprintf(p, "user.%s", in->streams[i].name) + 1;
		}
	}
	unlock(req);
	if (!in)
		fuse_reply_err(req, ESTALE);
	else if (size == 0)
		fuse_reply_xattr(req, len);
	else if (len > size)
		fuse_reply_err(req, ERANGE);
	else if (!buf)
		fuse_reply_err(req, ENOMEM);
	else
		fuse_reply_buf(req, buf, len);
	free(buf);
}

/* True when the caller is in group @gid. */
static bool in_group(fuse_req_t req, gid_t gid)
{
	gid_t groups[64];

	if (fuse_req_ctx(req)->gid == gid)
		return true;
	int n = fuse_req_getgroups(req, 64, groups);
	for (int i = 0; i < n && i < 64; i++)
		if (groups[i] == gid)
			return true;
	return false;
}

/* Whether the caller may change @ino's extended attributes: the kernel
 * checks user.* against the mode itself, but leaves system.* to us.  As
 * for a chmod: root and the owner; others where the mode lets them
 * write.  0 or an errno. */
static int may_change(fuse_req_t req, fuse_ino_t ino)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct fs *fs = fs_of(req);

	if (ctx->uid == 0 || ctx->uid == fs->uid)
		return 0;
	lock_shared(req);
	struct wtg_inode *in = inode_of(req, ino);
	mode_t perm = in ? perm_of(fs, in, wtg_inode_posix_type(in, NULL, NULL)) : 0;
	unlock(req);
	if (!in)
		return ESTALE;
	return perm & (in_group(req, fs->gid) ? 0020 : 0002) ? 0 : EACCES;
}

static bool stream_name_ok(const char *name)
{
	return name[0] && !strchr(name, ':') && strlen(name) <= 255;
}

static void drop_stale(struct fs *fs, fuse_ino_t parent, char *name, bool ok);

/* Sets (@dos NULL: removes) the DOS name of the name @ino was looked up by
 * last: the one a path walk just took (see per_name). */
static int set_dos_name(fuse_req_t req, fuse_ino_t ino, const char *dos)
{
	struct fs *fs = fs_of(req);
	uint64_t dir = 0;
	char *name = NULL;
	int ret = 0;

	lock_shared(req);
	struct wtg_inode *in = inode_of(req, ino);
	const struct wtg_dentry *de = in ? wtg_inode_current_name(in) : NULL;
	if (!in)
		ret = -ESTALE;
	else if (in->ino == WTG_ROOT_INO)
		ret = -EPERM; /* as ntfs-3g: no directory holds the root's name */
	else if (!de)
		ret = -ENOENT;
	else if (!(name = strdup(de->name)))
		ret = -ENOMEM;
	else
		dir = de->parent->ino;
	unlock(req);
	if (!ret)
		ret = wtg_view_set_dos_name(fs->view, dir, name, dos);
	free(name);
	return ret;
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	struct fs *fs = fs_of(req);
	struct wtg_view *v = fs->view;
	int ret;

	ino = real_ino(fs, ino);
	if ((ret = may_change(req, ino)))
		return (void)fuse_reply_err(req, ret);
	if (!strncmp(name, "user.", 5)) {
		if (!stream_name_ok(name + 5))
			return (void)fuse_reply_err(req, EINVAL);
		int mode = flags & XATTR_CREATE ? 1 : flags & XATTR_REPLACE ? 2 : 0;
		ret = wtg_view_set_stream(v, ino, name + 5, value, size, mode);
	} else if (!strcmp(name, "system.ntfs_acl")) {
		ret = wtg_view_set_sd(v, ino, value, size);
	} else if (!strcmp(name, "system.ntfs_attrib") || !strcmp(name, "system.ntfs_attrib_be")) {
		uint32_t a;
		if (size != 4)
			return (void)fuse_reply_err(req, EINVAL);
		memcpy(&a, value, 4);
		ret = wtg_view_set_attributes(v, ino, name[18] ? be32toh(a) : a);
	} else if (!strcmp(name, "system.ntfs_reparse_data")) {
		ret = wtg_view_set_reparse(v, ino, value, size);
	} else if (!strcmp(name, "system.wtgfs_name")) {
		/* a change of case only, which rename(2) cannot ask for */
		char *spelling, *old;
		uint64_t dir;
		if (!size || memchr(value, 0, size))
			return (void)fuse_reply_err(req, EINVAL);
		if (!(spelling = strndup(value, size)))
			return (void)fuse_reply_err(req, ENOMEM);
		ret = wtg_view_respell(v, ino, spelling, &dir, &old);
		free(spelling);
		drop_stale(fs, dir, old, ret == 0);
	} else if (!strcmp(name, "system.ntfs_dos_name")) {
		char dos[16];
		if (size == 0 || size >= sizeof(dos))
			return (void)fuse_reply_err(req, EINVAL);
		memcpy(dos, value, size);
		dos[size] = '\0';
		ret = set_dos_name(req, ino, dos);
	} else if (!strcmp(name, "system.ntfs_object_id")) {
		ret = wtg_view_set_object_id(v, ino, value, size);
	} else if (!strcmp(name, "system.ntfs_ea")) {
		/* as ntfs-3g: XATTR_REPLACE wants one there; the value is the
		 * whole $EA, checked as ntfs-3g checks it */
		lock_shared(req);
		struct wtg_inode *in = inode_of(req, ino);
		bool has = in && in->ea;
		unlock(req);
		if (flags & XATTR_REPLACE && !has)
			ret = -ENODATA;
		else if (flags & XATTR_CREATE && has)
			ret = -EEXIST;
		else
			ret = wtg_view_set_ea(v, ino, value, size);
	} else if (!strcmp(name, "system.ntfs_times") || !strcmp(name, "system.ntfs_times_be") ||
		   !strcmp(name, "system.ntfs_crtime") || !strcmp(name, "system.ntfs_crtime_be")) {
		/* as ntfs-3g: 8, 16, 24 or 32 bytes set crtime, mtime, atime, ctime */
		bool be = name[strlen(name) - 1] == 'e' && name[strlen(name) - 2] == 'b';
		bool crtime_only = !strncmp(name, "system.ntfs_crtime", 18);
		int64_t t[4] = {-1, -1, -1, -1};
		if (size == 0 || size % 8 || size > (crtime_only ? 8 : 32))
			return (void)fuse_reply_err(req, EINVAL);
		for (size_t i = 0; i < size / 8; i++)
			t[i] = get_le64((const uint8_t *)value + 8 * i, be);
		ret = wtg_view_set_times(v, ino, t[0], t[1], t[2], t[3]);
	} else {
		ret = -EOPNOTSUPP;
	}
	fuse_reply_err(req, -ret);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct fs *fs = fs_of(req);
	int ret;

	ino = real_ino(fs, ino);
	if ((ret = may_change(req, ino)))
		return (void)fuse_reply_err(req, ret);
	if (!strncmp(name, "user.", 5))
		ret = wtg_view_remove_stream(fs->view, ino, name + 5);
	else if (!strcmp(name, "system.ntfs_reparse_data"))
		ret = wtg_view_set_reparse(fs->view, ino, NULL, 0);
	else if (!strcmp(name, "system.ntfs_dos_name"))
		ret = set_dos_name(req, ino, NULL);
	else if (!strcmp(name, "system.ntfs_object_id"))
		ret = wtg_view_set_object_id(fs->view, ino, NULL, 0);
	else if (!strcmp(name, "system.ntfs_ea"))
		ret = wtg_view_set_ea(fs->view, ino, NULL, 0);
	else if (!strncmp(name, "system.ntfs_", 12))
		ret = -EPERM; /* an NTFS file always has these */
	else
		ret = -ENODATA;
	fuse_reply_err(req, -ret);
}

/* ---- changes (writable mounts) ---- */

static void *stale_thread(void *arg)
{
	struct fs *fs = arg;

	pthread_mutex_lock(&fs->stale_lock);
	for (;;) {
		while (!fs->stale && !fs->stopping)
			pthread_cond_wait(&fs->stale_cond, &fs->stale_lock);
		if (!fs->stale)
			break;
		struct stale *st = fs->stale;
		fs->stale = st->next;
		pthread_mutex_unlock(&fs->stale_lock);
		fuse_lowlevel_notify_inval_entry(fs->se, st->parent, st->name, strlen(st->name));
		free(st->name);
		free(st);
		pthread_mutex_lock(&fs->stale_lock);
	}
	pthread_mutex_unlock(&fs->stale_lock);
	return NULL;
}

/* The stored spelling of @name in @parent when it differs (malloc'd), else
 * NULL: the entry to drop once a change through @name succeeded. */
static char *other_case(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	char *stored = NULL;

	lock_shared(req);
	struct wtg_inode *dir = inode_of(req, parent);
	struct wtg_dentry *de = dir ? wtg_view_lookup(fs_of(req)->view, dir, name) : NULL;
	if (de && strcmp(de->name, name))
		stored = strdup(de->name);
	unlock(req);
	return stored;
}

/* Queues @name (taken over; NULL: nothing) of @parent to drop, when @ok. */
static void drop_stale(struct fs *fs, fuse_ino_t parent, char *name, bool ok)
{
	struct stale *st = ok && name && fs->stale_running ? malloc(sizeof(*st)) : NULL;

	if (!st) {
		free(name);
		return;
	}
	st->parent = parent;
	st->name = name;
	pthread_mutex_lock(&fs->stale_lock);
	st->next = fs->stale;
	fs->stale = st;
	pthread_cond_signal(&fs->stale_cond);
	pthread_mutex_unlock(&fs->stale_lock);
}

/* After a name of link @ino came or went: the kernel drops the entries of
 * all its names, and looks each up again for the node of its directory. */
static void drop_link_names(fuse_req_t req, uint64_t ino)
{
	struct fs *fs = fs_of(req);

	lock_shared(req);
	struct wtg_inode *in = ino ? wtg_view_inode(fs->view, ino) : NULL;
	if (in && wtg_inode_is_link(in) && !wtg_inode_names_in_one_dir(in))
		for (const struct wtg_dentry *de = in->first_name; de; de = de->alias_next)
			drop_stale(fs, de->parent->ino, strdup(de->name), true);
	unlock(req);
}

/* The inode named @name in @parent; 0: none. */
static uint64_t named_ino(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	lock_shared(req);
	struct wtg_inode *dir = inode_of(req, parent);
	struct wtg_dentry *de = dir ? wtg_view_lookup(fs_of(req)->view, dir, name) : NULL;
	uint64_t ino = de ? de->inode->ino : 0;
	unlock(req);
	return ino;
}

/*
 * -o posix: a new file's owner is the caller, its group the caller's or,
 * in a set-group-ID directory, the directory's (which a new directory
 * inherits the bit of), its mode @mode (the kernel took the umask off).
 * @mode 0: no $LXMOD (symlinks).
 */
static int posix_new(fuse_req_t req, uint64_t parent, struct wtg_inode *in, mode_t mode)
{
	struct fs *fs = fs_of(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	static const char *const names[] = {"$LXUID", "$LXGID", "$LXMOD"};
	uint32_t values[3] = {ctx->uid, ctx->gid, mode};
	struct stat pst;

	if (!fs->posix)
		return 0;
	lock_shared(req);
	struct wtg_inode *dir = inode_of(req, parent);
	if (dir)
		fill_stat(fs, dir, parent, &pst);
	unlock(req);
	if (dir && pst.st_mode & S_ISGID) {
		values[1] = pst.st_gid;
		if (S_ISDIR(mode))
			values[2] |= S_ISGID;
	}
	return wtg_view_put_ea_u32(fs->view, in->ino, names, values, mode ? 3 : 2);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct wtg_inode *in;
	struct fuse_entry_param e;

	int ret = wtg_view_create(fs->view, parent, name, WTG_VIEW_FILE, NULL, &in);
	if (!ret && !(mode & 0200))
		ret = wtg_view_set_attributes(fs->view, in->ino, in->attributes | NTFS_ATTR_READONLY);
	if (!ret)
		ret = posix_new(req, parent, in, S_IFREG | (mode & 07777));
	if (!ret)
		ret = wtg_view_open(fs->view, in->ino);
	if (ret)
		return (void)fuse_reply_err(req, -ret);
	lock_shared(req);
	fill_entry(fs, in, NULL, &e);
	wtg_view_ref(fs->view, in);
	unlock(req);
	fi->fh = handle(fs, true);
	if (fuse_reply_create(req, &e, fi) != 0)
		wtg_view_release(fs->view, e.ino);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct wtg_inode *in = NULL;

	struct wtg_view *v = fs_of(req)->view;
	int ret;
	if (S_ISREG(mode)) {
		ret = wtg_view_create(v, parent, name, WTG_VIEW_FILE, NULL, &in);
		if (!ret && !(mode & 0200))
			ret = wtg_view_set_attributes(v, in->ino, in->attributes | NTFS_ATTR_READONLY);
	} else {
		/* fifos, sockets and devices as WSL stores them */
		ret = wtg_view_mknod(v, parent, name, (uint32_t)mode, major(rdev), minor(rdev), &in);
	}
	if (!ret)
		ret = posix_new(req, parent, in, mode);
	reply_entry(req, in, parent, ret);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct wtg_inode *in = NULL;

	int ret = wtg_view_create(fs_of(req)->view, parent, name, WTG_VIEW_DIR, NULL, &in);
	if (!ret)
		ret = posix_new(req, parent, in, S_IFDIR | (mode & 07777));
	reply_entry(req, in, parent, ret);
}

static void op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name)
{
	struct wtg_inode *in = NULL;

	int ret = wtg_view_create(fs_of(req)->view, parent, name, WTG_VIEW_SYMLINK, target, &in);
	if (!ret)
		ret = posix_new(req, parent, in, 0);
	reply_entry(req, in, parent, ret);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char *name)
{
	struct wtg_inode *in = NULL;

	int ret = wtg_view_link(fs_of(req)->view, real_ino(fs_of(req), ino), parent, name, &in);
	if (!ret)
		drop_link_names(req, in->ino);
	reply_entry(req, in, parent, ret);
}

static void do_remove(fuse_req_t req, fuse_ino_t parent, const char *name, bool dir)
{
	char *stored = other_case(req, parent, name);
	uint64_t ino = named_ino(req, parent, name);
	int ret = wtg_view_remove(fs_of(req)->view, parent, name, dir);
	drop_stale(fs_of(req), parent, stored, ret == 0);
	if (!ret)
		drop_link_names(req, ino);
	fuse_reply_err(req, -ret);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	do_remove(req, parent, name, false);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	do_remove(req, parent, name, true);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	unsigned f = 0;

	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return (void)fuse_reply_err(req, EINVAL); /* RENAME_WHITEOUT */
	if (flags & RENAME_NOREPLACE)
		f |= WTG_VIEW_NOREPLACE;
	if (flags & RENAME_EXCHANGE)
		f |= WTG_VIEW_EXCHANGE;
	char *stored = other_case(req, parent, name), *newstored = other_case(req, newparent, newname);
	uint64_t ino = named_ino(req, parent, name), other = named_ino(req, newparent, newname);
	int ret = wtg_view_rename(fs_of(req)->view, parent, name, newparent, newname, f);
	drop_stale(fs_of(req), parent, stored, ret == 0);
	drop_stale(fs_of(req), newparent, newstored, ret == 0);
	if (!ret) {
		drop_link_names(req, ino);
		drop_link_names(req, other);
	}
	fuse_reply_err(req, -ret);
}

static int64_t ntfs_time(const struct timespec *ts)
{
	return ntfs_time_from_unix(ts->tv_sec, (uint32_t)ts->tv_nsec);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct stat st;
	int ret = 0;

	fuse_ino_t node = ino;
	ino = real_ino(fs, ino);
	/* A chown or chgrp succeeds and changes nothing: NTFS keeps no POSIX
	 * owner, and ntfs-3g does the same by default ("silent"); the kernel
	 * has refused it already where POSIX would (default_permissions).
	 * With -o posix, the owner, group and mode go to WSL's EAs. */
	if (fs->posix && to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID | FUSE_SET_ATTR_MODE)) {
		const char *names[3];
		uint32_t values[3];
		size_t n = 0;
		if (to_set & FUSE_SET_ATTR_UID) {
			names[n] = "$LXUID";
			values[n++] = attr->st_uid;
		}
		if (to_set & FUSE_SET_ATTR_GID) {
			names[n] = "$LXGID";
			values[n++] = attr->st_gid;
		}
		if (to_set & FUSE_SET_ATTR_MODE) {
			if (!stat_of(req, node, &st))
				return (void)fuse_reply_err(req, ESTALE);
			names[n] = "$LXMOD";
			values[n++] = (st.st_mode & S_IFMT) | (attr->st_mode & 07777);
		}
		ret = wtg_view_put_ea_u32(fs->view, ino, names, values, n);
	}
	if (!ret && to_set & FUSE_SET_ATTR_MODE) {
		/* the owner's write bit is the read-only attribute; the other
		 * bits are not kept */
		lock_shared(req);
		struct wtg_inode *in = inode_of(req, ino);
		uint32_t a = in ? in->attributes : 0;
		unlock(req);
		if (!in)
			return (void)fuse_reply_err(req, ESTALE);
		/* (read-only is another attribute: FILE_ATTRIBUTE_NORMAL, "none
		 * other", goes, as it does when a write sets the archive bit) */
		a = attr->st_mode & 0200 ? a & ~NTFS_ATTR_READONLY
					 : (a & ~NTFS_ATTR_NORMAL) | NTFS_ATTR_READONLY;
		ret = wtg_view_set_attributes(fs->view, ino, a);
	}
	if (!ret && to_set & FUSE_SET_ATTR_SIZE)
		ret = wtg_view_truncate(fs->view, ino, NULL, (uint64_t)attr->st_size);
	if (!ret && to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		int64_t at = -1, mt = -1;
		if (to_set & FUSE_SET_ATTR_ATIME)
			at = ntfs_time(to_set & FUSE_SET_ATTR_ATIME_NOW ? &now : &attr->st_atim);
		if (to_set & FUSE_SET_ATTR_MTIME)
			mt = ntfs_time(to_set & FUSE_SET_ATTR_MTIME_NOW ? &now : &attr->st_mtim);
		ret = wtg_view_set_times(fs->view, ino, -1, mt, at, -1);
	}
	if (ret)
		return (void)fuse_reply_err(req, -ret);
	if (!stat_of(req, node, &st))
		return (void)fuse_reply_err(req, ESTALE);
	fuse_reply_attr(req, &st, fs->timeout);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	if (off < 0)
		return (void)fuse_reply_err(req, EINVAL);
	long n = wtg_view_write_handle(fs_of(req)->view, fi->fh >> 1, ino, NULL, buf, size,
				       (uint64_t)off);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	int ret = 0;

	if (off < 0 || len <= 0)
		return (void)fuse_reply_err(req, EINVAL);
	if (mode & ~FALLOC_FL_KEEP_SIZE)
		return (void)fuse_reply_err(req, EOPNOTSUPP);
	if (mode & FALLOC_FL_KEEP_SIZE)
		return (void)fuse_reply_err(req, 0); /* space comes when written */
	lock_shared(req);
	struct wtg_inode *in = inode_of(req, ino);
	struct wtg_stream *s = in ? wtg_inode_data(in) : NULL;
	uint64_t size = s ? s->size : 0;
	bool dir = in && in->dir;
	unlock(req);
	if (!in || dir)
		return (void)fuse_reply_err(req, !in ? ESTALE : EISDIR);
	if ((uint64_t)off + (uint64_t)len > size)
		ret = wtg_view_truncate(fs->view, ino, NULL, (uint64_t)off + (uint64_t)len);
	fuse_reply_err(req, -ret);
}

/* Every close(): a written file is committed before close() returns. */
static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	fuse_reply_err(req, fi->fh & 1 ? -wtg_view_flush(fs->view, real_ino(fs, ino)) : 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	wtg_view_release(fs_of(req)->view, ino);
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	fuse_reply_err(req, -wtg_view_sync(fs_of(req)->view, true));
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	wtg_view_forget(fs_of(req)->view, real_ino(fs_of(req), ino), nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		wtg_view_forget(fs_of(req)->view, real_ino(fs_of(req), forgets[i].ino),
				forgets[i].nlookup);
	fuse_reply_none(req);
}

static const struct fuse_lowlevel_ops ops = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .readlink = op_readlink,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .symlink = op_symlink,
    .rename = op_rename,
    .link = op_link,
    .open = op_open,
    .read = op_read,
    .write = op_write,
    .flush = op_flush,
    .release = op_release,
    .fsync = op_fsync,
    .opendir = op_opendir,
    .releasedir = op_releasedir,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .fsyncdir = op_fsync,
    .statfs = op_statfs,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .setxattr = op_setxattr,
    .removexattr = op_removexattr,
    .create = op_create,
    .fallocate = op_fallocate,
};

/* ---- snapshot and rollback, from the control channel ---- */

/* Tells the kernel what a rollback changed: names to look up again, and
 * inodes whose attributes and cached pages are stale.  Without the view's
 * lock: dropping pages may send requests back to this daemon. */
static void invalidate(struct fs *fs, const struct wtg_view_changes *c)
{
	for (size_t i = 0; i < c->nentries; i++)
		fuse_lowlevel_notify_inval_entry(fs->se, c->entries[i].dir, c->entries[i].name,
						 strlen(c->entries[i].name));
	for (size_t i = 0; i < c->ninodes; i++)
		fuse_lowlevel_notify_inval_inode(fs->se, c->inodes[i], 0, 0);
}

static int control(void *arg, const char *op, const char *a, const char *b, char *out,
		   size_t outsize)
{
	struct fs *fs = arg;

	if (!strcmp(op, "snapshot"))
		return wtg_view_snapshot(fs->view, a, b[0] ? b : NULL);
	if (!strcmp(op, "rollback")) {
		struct wtg_view_changes c;
		char *kept = NULL;
		int ret = wtg_view_rollback(fs->view, a, &kept, &c);
		if (ret)
			return ret;
		invalidate(fs, &c);
		snprintf(out, outsize, "%s", kept ? kept : "");
		free(kept);
		wtg_view_changes_release(&c);
		return 0;
	}
	return -EOPNOTSUPP;
}

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

/* @s as the value of a -o option: libfuse (and fusermount3 after it)
 * splits options at commas and takes a backslash as "the next character
 * as is", so the fsname reaches the kernel, and /proc/self/mountinfo,
 * exactly as given.  -1 when it does not fit in @size. */
static int escape_option(const char *s, char *out, size_t size)
{
	size_t o = 0;

	for (; *s; s++) {
		if (o + 3 > size)
			return -1;
		if (*s == ',' || *s == '\\')
			out[o++] = '\\';
		out[o++] = *s;
	}
	out[o] = '\0';
	return 0;
}

int wtg_fuse_run(struct wtg_view *view, const struct wtg_mount_options *opt)
{
	struct fs fs = {
	    .view = view,
	    .writable = wtg_view_writable(view),
	    .delta_dir = opt->delta_dir,
	    .uid = opt->uid_set ? (uid_t)opt->uid : getuid(),
	    .gid = opt->gid_set ? (gid_t)opt->gid : getgid(),
	    .fmask = (mode_t)opt->fmask,
	    .dmask = (mode_t)opt->dmask,
	    .posix = opt->posix,
	};
	struct wtg_control *ctl = NULL;
	char mount_opts[2 * 4096 + 128];
	char *argv[8];
	int argc = 0, ret = -EIO;

	fs.timeout = fs.writable ? RW_TIMEOUT : CACHE_TIMEOUT;
	pthread_mutex_init(&fs.stale_lock, NULL);
	pthread_mutex_init(&fs.alias_lock, NULL);
	pthread_cond_init(&fs.stale_cond, NULL);
	char fsname[2 * 4096];
	if (escape_option(opt->fsname, fsname, sizeof(fsname)) < 0) {
		wtg_error("cannot mount '%s': the path is too long", opt->fsname);
		return -ENAMETOOLONG;
	}
	snprintf(mount_opts, sizeof(mount_opts), "%sdefault_permissions,subtype=wtgfs,fsname=%s%s",
		 fs.writable ? "" : "ro,", fsname, opt->allow_other ? ",allow_other" : "");
	argv[argc++] = "wtgfs";
	argv[argc++] = "-o";
	argv[argc++] = mount_opts;
	if (opt->debug)
		argv[argc++] = "-d";
	argv[argc] = NULL;
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);

	struct fuse_session *se = fuse_session_new(&args, &ops, sizeof(ops), &fs);
	fs.se = se;
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
	if ((ret = wtg_view_start(view)) < 0) {
		wtg_error("cannot serve the mount: %s", strerror(-ret));
		goto out_unmount;
	}
	ret = -EIO;
	if (fs.writable && pthread_create(&fs.stale_thread, NULL, stale_thread, &fs) == 0)
		fs.stale_running = true;
	struct wtg_mountinfo mi;
	if (fs.writable && wtg_mountinfo_find(opt->mountpoint, &mi))
		wtg_control_start(mi.major, mi.minor, control, &fs, &ctl);

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
	if (fs.stale_running) {
		pthread_mutex_lock(&fs.stale_lock);
		fs.stopping = true;
		pthread_cond_signal(&fs.stale_cond);
		pthread_mutex_unlock(&fs.stale_lock);
		pthread_join(fs.stale_thread, NULL);
	}
out_unmount:
	wtg_control_stop(ctl);
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_destroy:
	fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	free(fs.aliases);
	free(fs.alias_hash);
	pthread_mutex_destroy(&fs.alias_lock);
	return ret;
}
