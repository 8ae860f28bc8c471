/*
 * Partition tables of disk images (raw, VHD, VHDX): MBR with extended and
 * logical partitions, and GPT, with 512- or 4096-byte logical sectors.  The
 * disk is read through the caller's reader, so the same parser serves a
 * plain file, a libvhdi handle or a fuzzer's buffer.
 *
 * Contract: no byte of the disk is trusted.  Every size, count, LBA and
 * CRC32 is checked before use; a table that cannot be right gives -EINVAL
 * and exactly one logged line naming the disk and what is wrong, never a
 * crash or a read outside the disk.  Partitions are numbered as Linux
 * numbers them (GPT: entry index + 1; MBR: 1-4 primary, 5 and up logical).
 * wtg_disk_read() is reentrant: it keeps no state outside @disk, so many
 * threads may read many disks at once.
 */
#ifndef WTGFS_DISK_H
#define WTGFS_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A reader of the disk: @ctx's own pread of exactly @size bytes at @off;
 * 0 or -errno.  Must be thread-safe.  Never asked for bytes past the end. */
typedef int (*wtg_disk_read_fn)(void *ctx, void *buf, size_t size, uint64_t off);

enum wtg_disk_scheme { WTG_DISK_NONE, WTG_DISK_MBR, WTG_DISK_GPT };

/* The most logical partitions an MBR disk may have (Linux's limit too). */
#define WTG_DISK_MAX_LOGICAL 128

struct wtg_partition {
	int number;	      /* 1-based, as Linux numbers them */
	uint64_t start, size; /* bytes */
	bool gpt;
	uint8_t type_guid[16], part_guid[16]; /* GPT, on-disk (Windows mixed-endian) order */
	uint64_t gpt_attrs;		      /* GPT attribute bits */
	uint8_t mbr_type;		      /* MBR */
	bool bootable;			      /* MBR active flag */
	bool extended;			      /* MBR extended container (0x05, 0x0f, 0x85) */
	char name[144];			      /* GPT name, UTF-8 */
};

struct wtg_disk {
	enum wtg_disk_scheme scheme;
	uint32_t sector_size;  /* logical */
	uint64_t size;	       /* bytes */
	uint8_t disk_guid[16]; /* GPT */
	uint32_t mbr_signature;
	struct wtg_partition *parts; /* by number; an extended container is listed too */
	int nparts;
};

/* Reads the partition table of a disk of @size bytes.  @sector_size 0
 * means detect (GPT at LBA 1 with 512, then 4096; MBR-only disks: 512
 * unless told); else a power of two from 512 to 65536.  Returns 0 (scheme
 * NONE when there is no table: a bare file system or blank disk), -EINVAL
 * with one logged line naming @what and what is wrong (bad CRCs on both GPT
 * headers, a protective MBR without a GPT, a partition past the end of the
 * disk, overlapping partitions, a loop in the extended-partition chain, more
 * than 128 logical partitions...), -ENOMEM, or the reader's -errno.  When
 * the primary GPT header is bad and the backup good, the backup is used and
 * a warning logged.  @disk need not be initialised; on error it is left
 * empty (nothing to release). */
int wtg_disk_read(wtg_disk_read_fn read, void *ctx, uint64_t size, uint32_t sector_size,
		  const char *what, struct wtg_disk *disk);
void wtg_disk_release(struct wtg_disk *disk);

/* The GUID as Windows prints it, upper case: "EBD0A0A2-B9E5-4433-87C0-
 * 68B6B72699C7" for the on-disk bytes A2 A0 D0 EB E5 B9 33 44 87 C0 ... */
void wtg_guid_to_string(const uint8_t guid[16], char out[37]);

/* The well-known name of @p's type ("Microsoft basic data", "EFI System",
 * "Microsoft reserved", "Linux filesystem", MBR 0x07 "NTFS/exFAT", 0x0c
 * "FAT32 LBA", 0xef "EFI", 0xee "GPT protective"...), or NULL when the type
 * is not one we know. */
const char *wtg_partition_type_name(const struct wtg_partition *p);

/* CRC32 (IEEE 802.3, reflected, the one GPT and zlib use) of @len bytes,
 * continuing from @crc (0 to start). */
uint32_t wtg_crc32(uint32_t crc, const void *buf, size_t len);

#endif
