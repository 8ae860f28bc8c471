/*
 * Flush: the merged tree of a view written to a block device or an image
 * file as a bootable Windows To Go drive (UEFI).
 *
 * The core (src/flush/flush.c, target.c, partition.c, and the NTFS writer)
 * checks and opens the target, wipes it, lays out the partitions, makes and
 * fills the NTFS volume, and writes the partition entries last.  The boot
 * side (src/flush/esp.c, bcd.c, hive.c) builds the ESP and the BCD and edits
 * the offline SYSTEM hive.  They meet in the layout below.
 *
 * Order on the target, so that an interrupted flush never leaves a drive
 * that looks bootable: wipe every old signature; write the Windows
 * partition's NTFS; copy the ESP (built in a temporary file) into place;
 * write the partition table last.  File systems are made in temporary
 * sparse files of the partition's size and copied in (mkntfs and mkfs.fat
 * cannot write at an offset, and a block device stays opened O_EXCL by us).
 *
 * All calls return 0 or -errno with one line logged.
 */
#ifndef WTGFS_FLUSH_H
#define WTGFS_FLUSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wtgfs/progress.h"

struct wtg_view;

enum wtg_flush_scheme { WTG_FLUSH_GPT, WTG_FLUSH_MBR };

struct wtg_flush_part {
	uint32_t number; /* 1-based entry in the partition table; 0: absent */
	uint64_t offset; /* bytes from the start of the disk (1 MiB aligned) */
	uint64_t size;	 /* bytes */
	/* GPT unique partition GUID in on-disk (mixed-endian) order, as the
	 * BCD's device elements hold it; zero for MBR */
	uint8_t guid[16];
	char guid_str[37]; /* the same GUID as text, lowercase; "" for MBR */
};

struct wtg_flush_layout {
	enum wtg_flush_scheme scheme;
	uint32_t sector_size; /* logical: 512 or 4096 */
	uint64_t disk_size;   /* bytes */
	uint8_t disk_guid[16]; /* GPT disk GUID, on-disk order; zero for MBR */
	char disk_guid_str[37];
	uint32_t mbr_signature; /* MBR disk signature; 0 for GPT */
	struct wtg_flush_part esp; /* GPT: the ESP; MBR: the active FAT32 system partition */
	struct wtg_flush_part msr; /* GPT only (number 0 for MBR) */
	struct wtg_flush_part windows;
};

#define WTG_FLUSH_ESP_SIZE_GPT (260ull << 20)
#define WTG_FLUSH_ESP_SIZE_MBR (350ull * 1000 * 1000)
#define WTG_FLUSH_MSR_SIZE (16ull << 20)

struct wtg_flush_options {
	enum wtg_flush_scheme scheme;
	uint64_t esp_size; /* 0: the scheme's default */
	uint64_t size;	   /* image file: create or grow to this size; 0: as it is */
	const char *label; /* NTFS volume label; NULL: "Windows" */
	const char *unattend; /* a file to place as Windows\Panther\unattend.xml */
	bool no_wtg_tweaks;
	bool verify;
};

/* What a flush changed beyond copying the tree: one line per change
 * ("SYSTEM: ControlSet001\Services\partmgr\Parameters SanPolicy = 4"). */
struct wtg_flush_report {
	char **changes;
	size_t nchanges, cap;
};

int wtg_flush_report_add(struct wtg_flush_report *rep, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void wtg_flush_report_release(struct wtg_flush_report *rep);

/* ---- the boot side (src/flush/esp.c, bcd.c, hive.c) ---- */

/* Refuses (-ENOENT, one line) a view without Windows\Boot\EFI\bootmgfw.efi,
 * before anything is written. */
int wtg_flush_check_boot(struct wtg_view *view);

/*
 * Builds the ESP in @esp_path, a file of exactly layout->esp.size bytes
 * (sparse, made by the caller): FAT32 without a label (hidden sectors =
 * layout->esp.offset / sector size), Windows\Boot\EFI to \EFI\Microsoft\Boot
 * (bootmgfw.efi also as \EFI\Boot\bootx64.efi), the fonts and language
 * folders, and the BCD whose device elements point at layout->esp and
 * layout->windows (recovery off unless @opt->no_wtg_tweaks).  The caller
 * copies the file into place.  Changes are noted in @rep.
 */
int wtg_flush_build_esp(struct wtg_view *view, const struct wtg_flush_layout *layout,
			const struct wtg_flush_options *opt, const char *esp_path,
			struct wtg_flush_report *rep);

/* -EINVAL (one line: the least size that works) when an ESP of @size bytes
 * cannot be FAT32 with @sector_size-byte sectors (a FAT32 needs 65525
 * clusters: 260 MiB with 4096-byte sectors).  Call it before writing. */
int wtg_flush_check_esp_size(uint64_t size, uint32_t sector_size);

/* The WTG settings in an offline SYSTEM hive, the file @hive_path (a copy of
 * the image's Windows\System32\config\SYSTEM that the caller writes back to
 * the new volume): SanPolicy 4.  Each change noted in @rep. */
int wtg_flush_tweak_system_hive(const char *hive_path, struct wtg_flush_report *rep);

/* ---- the whole flush (src/flush/flush.c) ---- */


struct wtg_flush_target;

/*
 * Checks @path as a target for @view (see target.c: mounted, the running
 * system, the base or the delta on it, too small) and opens it (a block
 * device O_EXCL; an image file created or grown to opt->size).  @sources
 * (NULL-terminated) are the files the view reads, which must not lie on it.
 */
int wtg_flush_target_open(const char *path, struct wtg_view *view,
			  const struct wtg_flush_options *opt, const char *const *sources,
			  struct wtg_flush_target **target_ret);
/* What to show before asking: model, size, serial, current partitions. */
int wtg_flush_target_describe(const struct wtg_flush_target *t, char *buf, size_t size);
bool wtg_flush_target_is_device(const struct wtg_flush_target *t);
void wtg_flush_target_close(struct wtg_flush_target *t);

/* Writes @view to the open target @t.  @layout_ret (may be NULL) gets the
 * layout written.  @progress (may be NULL) hears of phases "wipe", "ntfs",
 * "tree" (bytes: the tree's stream data), "esp", "table", "sync", "verify",
 * from the flush's thread, at the start of each and often within "tree". */
int wtg_flush_run(struct wtg_view *view, struct wtg_flush_target *t,
		  const struct wtg_flush_options *opt, wtg_progress_fn progress, void *ctx,
		  struct wtg_flush_layout *layout_ret, struct wtg_flush_report *rep);

/* Removes the flush's temporary files: async-signal-safe, for a handler
 * of SIGINT or SIGTERM that then exits. */
void wtg_flush_interrupted(void);

#endif
