/*
 * The FUSE front end: serves a view (read-only image, or a delta over its
 * base) through libfuse3's low-level API with a multithreaded loop.  The
 * only file that includes FUSE headers.
 */
#ifndef WTGFS_FUSE_MOUNT_H
#define WTGFS_FUSE_MOUNT_H

#include <stdbool.h>

struct wtg_view;

struct wtg_mount_options {
	const char *mountpoint;
	const char *fsname; /* shown in /proc/mounts */
	bool foreground;
	bool debug;
	bool allow_other;
	/* What every file shows (ntfs-3g's options of the same names): owner
	 * and group (default: the mounting user's), and the permission bits
	 * files and directories lack (default 022: only the owner writes). */
	bool uid_set, gid_set;
	unsigned uid, gid;
	unsigned fmask, dmask;
	/* owners, groups and modes per file in WSL's EAs ($LXUID, $LXGID,
	 * $LXMOD), as DrvFs "metadata" keeps them; files without them show
	 * the above */
	bool posix;
	unsigned threads;      /* 0: libfuse's default */
	const char *delta_dir; /* writable: where the delta lies (statfs) */
};

/* Mounts, daemonises unless foreground, and serves until unmounted.
 * Returns 0 or -errno (logged). */
int wtg_fuse_run(struct wtg_view *view, const struct wtg_mount_options *opt);

#endif
