/*
 * Virtual disks read as a flat run of bytes: raw image files, block devices,
 * and VHD/VHDX files (fixed, dynamic and differencing) through libvhdi.
 * Partition tables and file systems are read on top of this.
 *
 * Every backend embeds struct wtg_block_dev first and defines its ops table
 * at the bottom of its file; callers use the wrappers below.  Contract:
 * wtg_block_pread is safe to call from many threads at once, and bytes from
 * the file are never trusted (a bad image gives -errno and one logged line,
 * never a crash).
 */
#ifndef WTGFS_BLOCK_H
#define WTGFS_BLOCK_H

#include <stddef.h>
#include <stdint.h>

struct wtg_block_dev;

struct wtg_block_ops {
	const char *name; /* "raw", "device", "vhd", "vhdx" */
	/* Reads exactly @size bytes at @off (the caller keeps inside size);
	 * thread-safe.  0 or -errno (-EIO logged once per cause). */
	int (*pread)(struct wtg_block_dev *dev, void *buf, size_t size, uint64_t off);
	void (*free)(struct wtg_block_dev *dev);
};

struct wtg_block_dev {
	const struct wtg_block_ops *ops;
	char *path;
	uint64_t size;	      /* virtual disk size in bytes */
	uint32_t sector_size; /* logical; 512 unless the format says (VHDX 4096) */
	char identity[64];    /* what identifies the disk content for a delta to bind to:
				 VHD/VHDX identifier GUID as a string, or "" for raw */
};

/*
 * Opens @path read-only: VHDX by its "vhdxfile" signature, VHD by the
 * "conectix" footer (last 512 bytes), else a raw image or a block device.
 * A differencing disk's parent is @parent when given (NULL: the file of the
 * name the child records, in the child's own folder; never where the
 * recorded path points), refused unless it is a regular file that looks
 * like a VHD or VHDX, with one message whether or not it exists; opened the
 * same way (its own parent in its folder; at most WTG_BLOCK_MAX_DEPTH
 * deep, no loops), its identifier checked against the child's recorded
 * one, and attached.  @parent for a disk that is not differencing is an
 * error.  A VHDX whose log holds writes not yet replayed is refused.  0 or
 * -errno with one line logged.
 */
int wtg_block_open(const char *path, const char *parent, struct wtg_block_dev **dev_ret);

static inline int wtg_block_pread(struct wtg_block_dev *dev, void *buf, size_t size, uint64_t off)
{
	return dev->ops->pread(dev, buf, size, off);
}

void wtg_block_free(struct wtg_block_dev *dev);

/* How many differencing disks may stand on one another. */
#define WTG_BLOCK_MAX_DEPTH 16

/* The format wtg_block_open would pick for the file open on @fd (size
 * @size): "vhdx", "vhd" or "raw".  Reads at most two small pieces. */
const char *wtg_block_probe(int fd, uint64_t size);

/* The VHD/VHDX backend (src/source/vhd.c), for wtg_block_open. */
int wtg_vhd_open(const char *path, const char *parent, struct wtg_block_dev **dev_ret);

#endif
