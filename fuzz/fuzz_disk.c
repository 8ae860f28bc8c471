/*
 * Fuzz target: the partition-table parser.  The input's first two bytes are
 * parameters: the sector size the caller names (detect, 512, 4096, or a bad
 * one), whether GPT CRCs are fixed up before parsing (so that mutations
 * reach the checks behind them), whether reads past the bytes given fail or
 * read zeros, and how many MiB the disk claims beyond those bytes.  The rest
 * is the disk.
 */
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wtgfs/disk.h"
#include "wtgfs/le.h"
#include "wtgfs/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct image {
	uint8_t *data;
	size_t size;
	uint64_t disk_size;
	bool zeros; /* past the data: zeros, or EIO */
};

static int image_read(void *ctx, void *buf, size_t size, uint64_t off)
{
	const struct image *im = ctx;

	/* the parser must never ask for bytes past the disk's end */
	if (off > im->disk_size || size > im->disk_size - off)
		__builtin_trap();
	if (off + size > im->size && !im->zeros)
		return -EIO;
	memset(buf, 0, size);
	if (off < im->size)
		memcpy(buf, im->data + off, size < im->size - off ? size : im->size - off);
	return 0;
}

/* Makes the CRCs of a GPT header at @lba, and of its array, right. */
static void fix_gpt(struct image *im, uint32_t ss, uint64_t lba)
{
	if (lba > im->size / ss || (lba + 1) * ss > im->size)
		return;
	uint8_t *h = im->data + lba * ss;
	if (memcmp(h, "EFI PART", 8))
		return;
	uint64_t alba = wtg_get_le64(h + 0x48);
	uint64_t bytes = (uint64_t)wtg_get_le32(h + 0x50) * wtg_get_le32(h + 0x54);
	if (alba < im->size / ss && bytes <= im->size - alba * ss)
		wtg_put_le32(h + 0x58, wtg_crc32(0, im->data + alba * ss, bytes));
	uint32_t hsize = wtg_get_le32(h + 0x0C);
	if (hsize < 92 || hsize > ss)
		return;
	wtg_put_le32(h + 0x10, 0);
	wtg_put_le32(h + 0x10, wtg_crc32(0, h, hsize));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t sector_sizes[] = {0, 512, 4096, 0, 1024, 0, 512, 777};
	static bool init;
	struct wtg_disk disk;
	char guid[37];

	if (!init) {
		wtg_log_to_syslog(false);
		init = true;
	}
	if (size < 2)
		return 0;
	uint8_t p = data[0], extra_mib = data[1];
	struct image im = {.size = size - 2, .zeros = p & 0x10};
	im.data = malloc(im.size ? im.size : 1);
	if (!im.data)
		return 0;
	memcpy(im.data, data + 2, im.size);
	im.disk_size = im.size + ((uint64_t)extra_mib << 20);
	if (p & 0x08) {
		for (uint32_t ss = 512; ss <= 4096; ss *= 8) {
			fix_gpt(&im, ss, 1);
			fix_gpt(&im, ss, im.disk_size / ss - 1);
		}
	}
	if (wtg_disk_read(image_read, &im, im.disk_size, sector_sizes[p & 7], "fuzz", &disk) < 0)
		goto out;
	for (int i = 0; i < disk.nparts; i++) {
		const struct wtg_partition *part = &disk.parts[i];
		if (part->start + part->size > disk.size || part->number < 1 ||
		    strnlen(part->name, sizeof(part->name)) == sizeof(part->name))
			__builtin_trap();
		wtg_guid_to_string(part->type_guid, guid);
		wtg_partition_type_name(part);
	}
	wtg_disk_release(&disk);
out:
	free(im.data);
	return 0;
}
