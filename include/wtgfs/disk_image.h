/*
 * A disk image as a base: a block source (raw image, block device, VHD,
 * VHDX), its partition table, and the NTFS volume chosen in it.  Also the
 * listing 'wtgfs info' shows for disks.
 */
#ifndef WTGFS_DISK_IMAGE_H
#define WTGFS_DISK_IMAGE_H

#include <stdbool.h>
#include <stdint.h>

struct wtg_source;

/*
 * Opens the NTFS volume of partition @sel ("2"; NULL: the one NTFS
 * partition that holds \Windows) of the disk image at @path, or the whole
 * image when it has no partition table; @parent: a differencing disk's
 * parent (NULL: found beside it; see wtg_block_open).  0 or -errno with one
 * logged line (no such partition, not NTFS, several candidates: each
 * listed).
 */
int wtg_disk_image_open(const char *path, const char *sel, const char *parent,
			struct wtg_source **src_ret);

struct wtg_volume_report {
	int number;	      /* 0: the whole disk (no partition table) */
	uint64_t start, size; /* bytes */
	char type[48];	      /* the partition type's name */
	char fs[16];	      /* "NTFS", "FAT32", "exFAT", "ext4", "" */
	char label[128];
	bool has_windows; /* NTFS with a \Windows directory */
};

struct wtg_disk_report {
	const char *format; /* "raw", "device", "vhd", "vhdx" */
	const char *scheme; /* "gpt", "mbr", "none" */
	uint64_t size;
	uint32_t sector_size;
	char identity[64];
	char disk_id[40]; /* GPT disk GUID or MBR signature */
	struct wtg_volume_report *vols;
	int nvols;
};

int wtg_disk_image_report(const char *path, const char *parent, struct wtg_disk_report *r);
void wtg_disk_report_release(struct wtg_disk_report *r);

#endif
