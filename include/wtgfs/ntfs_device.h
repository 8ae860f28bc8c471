/*
 * The one libntfs-3g device of wtgfs: a byte range behind a read function
 * (and a write function, for a volume being written), so the NTFS source
 * reads a volume inside a VHDX, a raw disk or a block device the same way,
 * and the NTFS writer (flush, export) writes a partition of a target at
 * its offset.  Only src/source/ntfs.c and src/ntfs_write.c use it: they
 * are the ones that speak libntfs-3g.
 */
#ifndef WTGFS_NTFS_DEVICE_H
#define WTGFS_NTFS_DEVICE_H

#include <stddef.h>
#include <stdint.h>

struct ntfs_device;

/* Reads or writes exactly @size bytes at @off of the range: 0 or -errno. */
typedef int (*wtg_volume_read_fn)(void *ctx, void *buf, size_t size, uint64_t off);
typedef int (*wtg_volume_write_fn)(void *ctx, const void *buf, size_t size, uint64_t off);

/* The caller owns it and keeps it alive as long as the device. */
struct wtg_ntfs_range {
	wtg_volume_read_fn read;
	wtg_volume_write_fn write; /* NULL: the device is read-only */
	void *ctx;
	uint64_t size;
	int64_t pos; /* the device's own: start at 0 */
};

/* A device over @r named @what (libntfs-3g frees it with the volume), or
 * NULL with errno set.  Also turns libntfs-3g's own logging off, once
 * (WTGFS_NTFS_DEBUG=1 in the environment sends it all to stderr instead). */
struct ntfs_device *wtg_ntfs_device_new(struct wtg_ntfs_range *r, const char *what);

#endif
