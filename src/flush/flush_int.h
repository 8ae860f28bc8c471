/*
 * What the flush's own files share (src/flush/): the open target, the
 * partition table kept in memory until the end, and the wipe.
 */
#ifndef WTGFS_FLUSH_INT_H
#define WTGFS_FLUSH_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "wtgfs/flush.h"

struct wtg_flush_target {
	char *path;
	int fd;
	bool device;
	bool created; /* an image file this flush made */
	dev_t rdev;   /* block devices */
	uint64_t size;
	uint32_t sector_size;
	char name[64]; /* the kernel's name of a block device ("sdb", "loop0") */
};

/* The size the tree needs on a disk laid out as @opt says, in bytes. */
uint64_t flush_needed_size(struct wtg_view *view, const struct wtg_flush_options *opt);

/* 0 when @t is still the device or file that was opened and confirmed
 * (same major:minor and size), else -ESTALE with a line. */
int flush_target_recheck(const struct wtg_flush_target *t);

/* Erases every signature a partition table or file system leaves where
 * tools look for one: the first and last MiB of the disk (MBR, both GPT
 * headers and tables, a whole-disk file system and its backup boot sector)
 * and the first and last MiB of every partition the old table lists. */
int flush_wipe(struct wtg_flush_target *t);

/* The partition table, built in memory (libfdisk) and written last. */
struct flush_table;
int flush_table_plan(struct wtg_flush_target *t, const struct wtg_flush_options *opt,
		     struct flush_table **table_ret, struct wtg_flush_layout *layout);
int flush_table_write(struct flush_table *table);
void flush_table_free(struct flush_table *table);

/* Reads the Windows partition back and compares it with @view; paths in
 * @changed (NULL-terminated, '/'-separated) were changed on purpose.
 * -EIO after one line per difference (at most 20). */
int flush_verify(struct wtg_view *view, struct wtg_flush_target *t,
		 const struct wtg_flush_layout *layout, const char *const *changed);


#endif
