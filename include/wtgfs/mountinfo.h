/*
 * What /proc/self/mountinfo says about a mount point, read without touching
 * the mount itself (a FUSE mount that is not served yet would block a stat).
 */
#ifndef WTGFS_MOUNTINFO_H
#define WTGFS_MOUNTINFO_H

#include <stdbool.h>
#include <stddef.h>

struct wtg_mountinfo {
	unsigned major, minor; /* st_dev of the mounted file system */
	char fstype[64];
	char source[4096]; /* what was mounted: the fsname */
	char options[1024]; /* the file system's own ("rw,user_id=0,...") */
};

/* True when the canonical path @path is a mount point; the topmost mount's
 * facts in *info. */
bool wtg_mountinfo_find(const char *path, struct wtg_mountinfo *info);

/* The mount point (canonical) of the topmost mount of type @fstype whose
 * source is @source, in @mnt; false when none. */
bool wtg_mountinfo_find_source(const char *fstype, const char *source, char *mnt, size_t size);

#endif
