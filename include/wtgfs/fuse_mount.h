/*
 * The FUSE front end: serves a loaded tree through libfuse3's low-level API
 * with a multithreaded loop.  The only file that includes FUSE headers.
 */
#ifndef WTGFS_FUSE_MOUNT_H
#define WTGFS_FUSE_MOUNT_H

#include <stdbool.h>

struct wtg_tree;

struct wtg_mount_options {
	const char *mountpoint;
	const char *fsname; /* shown in /proc/mounts */
	bool foreground;
	bool debug;
	bool allow_other;
	unsigned threads; /* 0: libfuse's default */
};

/* Mounts, daemonises unless foreground, and serves until unmounted.
 * Returns 0 or -errno (logged). */
int wtg_fuse_run(struct wtg_tree *tree, const struct wtg_mount_options *opt);

#endif
