/*
 * Facts about a WIM file for 'wtgfs info' (the WIM source itself is reached
 * through source.h).
 */
#ifndef WTGFS_WIM_H
#define WTGFS_WIM_H

#include <stdbool.h>
#include <stdint.h>

/* wimlib set up for wtgfs (once): its own messages off, and libxml2's,
 * which wimlib's XML parse would print, off in the calling thread. */
void wtg_wimlib_setup(void);

struct wtg_wim_image_info {
	int index;
	char *name;
	char *description;
	uint64_t files, directories, total_bytes;
	const char *compression; /* "none", "XPRESS", "LZX", "LZMS" */
	bool solid;
};

struct wtg_wim_info {
	char guid[33];
	int image_count;
	int boot_index;
	uint32_t chunk_size;
	const char *compression;
	int part_number, total_parts;
	bool pipable;
	bool integrity; /* it has an integrity table */
	uint64_t file_size;
	struct wtg_wim_image_info *images;
};

/* Reads the header, blob table and XML of @path.  0 or -errno (logged). */
int wtg_wim_read_info(const char *path, struct wtg_wim_info *info);
void wtg_wim_info_release(struct wtg_wim_info *info);

#endif
