/*
 * The NTFS writer: a view's merged tree written into a fresh NTFS volume
 * through libntfs-3g, with every NTFS fact the tree holds (security
 * descriptors, attributes, named streams, reparse points, DOS names, object
 * ids, hard links, times, sparse files).  Flush and export share it.
 *
 * The volume lies at a byte offset of a file descriptor (a partition of an
 * image file or of a block device): libntfs-3g reaches it through a device
 * of our own, so no loop device or partition node is needed.
 *
 * libntfs-3g is single-threaded: one thread writes, while worker threads
 * read and decompress the data ahead of it in the order it will ask, into a
 * bounded queue of 1 MiB pieces.  Large files are allocated in one piece
 * before their data is written.
 *
 * All calls return 0 or -errno with one line logged.
 */
#ifndef WTGFS_NTFS_WRITE_H
#define WTGFS_NTFS_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wtg_view;
struct wtg_inode;
struct _ntfs_volume; /* libntfs-3g's ntfs_volume */

struct wtg_ntfs_geometry {
	uint32_t sector_size;	 /* logical: 512 or 4096 */
	uint64_t hidden_sectors; /* the partition's start, in sectors */
	const char *label;	 /* NULL: none */
};

/*
 * Makes an NTFS volume (mkntfs --quick) filling the file or device @path.
 * The boot sector holds the geometry Windows expects (hidden sectors = the
 * partition's start, 255 heads, 63 sectors per track, 4 KiB clusters).
 * (The flush runs it on a sparse temporary file of the partition's size and
 * copies the written extents into place: mkntfs cannot write at an offset.)
 */
int wtg_ntfs_mkfs(const char *path, const struct wtg_ntfs_geometry *geo);

/* Mounts the volume of @size bytes at @offset of @fd read-write (@what names
 * it in messages); -EROFS when libntfs-3g would only mount it read-only. */
int wtg_ntfs_mount_fd(int fd, uint64_t offset, uint64_t size, const char *what,
		      struct _ntfs_volume **vol_ret);
/* Unmounts, writing everything libntfs-3g still holds. */
int wtg_ntfs_umount(struct _ntfs_volume *vol);

struct wtg_ntfs_write_stats {
	uint64_t files, dirs, links, streams;
	uint64_t bytes;	   /* stream data copied */
	uint64_t written;  /* of that, bytes written (holes of sparse files skipped) */
};

/* Called by the writer between files, at most every @interval_ms. */
typedef void (*wtg_ntfs_write_progress_fn)(void *ctx, const struct wtg_ntfs_write_stats *done,
					   const struct wtg_ntfs_write_stats *total);

struct wtg_ntfs_write_options {
	unsigned threads; /* readers; 0: one per CPU, at most 4 */
	wtg_ntfs_write_progress_fn progress;
	void *ctx;
	unsigned interval_ms; /* 0: 200 */
	/* NULL: the whole tree.  Else only these inodes (files with every
	 * name they have, directories) and the directories that hold their
	 * names, up to the root, each with all its facts; a directory's other
	 * entries are left out. */
	struct wtg_inode *const *only;
	size_t nonly;
};

/* What the tree holds (what @opt's subset holds; @opt may be NULL): the
 * totals a progress display shows. */
void wtg_ntfs_write_totals(struct wtg_view *view, const struct wtg_ntfs_write_options *opt,
			   struct wtg_ntfs_write_stats *total);

/*
 * Writes the tree of @view (under its shared lock; @opt's subset of it)
 * into the empty volume @vol: directories, then each file by the name that
 * owns its DOS name, its other names, object id, attributes, security
 * descriptor, data, times, and reparse data last.  The root takes the tree's root facts.
 */
int wtg_ntfs_write_tree(struct wtg_view *view, struct _ntfs_volume *vol,
			const struct wtg_ntfs_write_options *opt,
			struct wtg_ntfs_write_stats *stats_ret);

/* The name of @inode that owns its DOS name (*dos_ret, NULL when none):
 * the first of its names that has one (wtg_dentry_dos_name()), else the
 * first name. */
struct wtg_inode;
struct wtg_dentry;
const struct wtg_dentry *wtg_ntfs_dos_owner(const struct wtg_inode *inode, const char **dos_ret);

/*
 * Writes @len bytes of @data as the unnamed stream of the file @path
 * ("Windows\Panther\unattend.xml", '\' or '/' separated) of @vol, replacing
 * what it held; a missing file (and missing directories) is created with
 * the security descriptor of its parent.  @created_ret (may be NULL) says
 * whether it was created.
 */
int wtg_ntfs_put_file(struct _ntfs_volume *vol, const char *path, const void *data, size_t len,
		      bool *created_ret);

/* Reads the whole unnamed stream of @path in @vol (NULL and -ENOENT when
 * missing); the caller frees *data_ret. */
int wtg_ntfs_get_file(struct _ntfs_volume *vol, const char *path, void **data_ret,
		      size_t *len_ret);

#endif
