/*
 * The NTFS source: a read-only NTFS volume, read through libntfs-3g from
 * any byte range (a partition inside a disk image or device), filling the
 * same tree model as the WIM source.
 */
#ifndef WTGFS_NTFS_SOURCE_H
#define WTGFS_NTFS_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wtgfs/ntfs_device.h"

struct wtg_source;

/* The volume's bytes come from a wtg_volume_read_fn (0 is its first byte),
 * which must be safe to call from any thread. */

struct wtg_ntfs_volume_info {
	char label[128];
	uint64_t size;
	bool has_windows; /* a \Windows directory at the root */
};

/*
 * Opens the NTFS volume of @size bytes read by @read.  @what names it in
 * messages ("disk.vhdx:2").  @release (may be NULL) is called on @ctx when
 * the source is freed.  Returns 0 or -errno with one logged line
 * (-EINVAL: not NTFS).
 */
int wtg_ntfs_source_open(wtg_volume_read_fn read, void *ctx, void (*release)(void *ctx),
			 uint64_t size, const char *what, struct wtg_source **src_ret);

/* True when the first sector at @read looks like an NTFS boot sector. */
bool wtg_ntfs_probe(wtg_volume_read_fn read, void *ctx);

/* Mounts just long enough to read the label and look for \Windows. */
int wtg_ntfs_volume_info(wtg_volume_read_fn read, void *ctx, uint64_t size, const char *what,
			 struct wtg_ntfs_volume_info *info);

#endif
