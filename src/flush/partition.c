/*
 * The partition table of a flush, through libfdisk (the only user of its
 * headers).  The table is built in memory first, so that the layout (offsets,
 * fresh random GUIDs, the disk's GUID or MBR signature) is known to the file
 * systems and the BCD, and written to the disk last of all: an interrupted
 * flush leaves a disk without a table, which nothing boots.
 *
 * GPT: ESP (FAT32, 260 MiB, attribute bit 63 so hosts give it no drive
 * letter), MSR (16 MiB), Windows (basic data, the rest).  MBR: Microsoft's
 * Windows To Go layout, an active FAT32 (0x0c) system partition of 350 MB
 * and NTFS (0x07).  Every partition starts and ends on a 1 MiB boundary.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libfdisk/libfdisk.h>

#include "flush_int.h"
#include "wtgfs/log.h"

#define MiB (1ull << 20)
#define GUID_ESP "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
#define GUID_MSR "E3C9E316-0B5C-4DB8-817D-F92DF00215AE"
#define GUID_BASIC "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
#define GPT_ATTR_NO_DRIVE_LETTER (1ull << 63)

struct flush_table {
	struct fdisk_context *cxt;
	struct wtg_flush_target *t;
};

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
					     : c >= 'A' && c <= 'F' ? c - 'A' + 10
								    : -1;
}

/* "AABBCCDD-EEFF-GGHH-..." to the on-disk (mixed-endian) bytes. */
static int guid_parse(const char *s, uint8_t out[16], char text[37])
{
	static const int order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
	uint8_t b[16];
	int n = 0;

	if (!s || strlen(s) != 36)
		return -EINVAL;
	for (const char *p = s; *p && n < 16;) {
		if (*p == '-') {
			p++;
			continue;
		}
		int hi = hexval(p[0]), lo = hexval(p[1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		b[n++] = (uint8_t)(hi << 4 | lo);
		p += 2;
	}
	if (n != 16)
		return -EINVAL;
	for (int i = 0; i < 16; i++)
		out[order[i]] = b[i];
	for (int i = 0; i < 36; i++)
		text[i] = (char)(s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 'a' : s[i]);
	text[36] = '\0';
	return 0;
}

static int fail(struct flush_table *tb, const char *what, int ret)
{
	if (ret >= 0)
		ret = -EIO;
	wtg_error("cannot lay out the partitions of '%s': %s: %s", tb->t->path, what,
		  strerror(-ret));
	return ret;
}

static int add(struct flush_table *tb, size_t partno, uint64_t start, uint64_t size,
	       const char *type, const char *name, struct wtg_flush_part *out)
{
	struct fdisk_context *cxt = tb->cxt;
	struct fdisk_label *lb = fdisk_get_label(cxt, NULL);
	unsigned long ss = fdisk_get_sector_size(cxt);
	/* MBR types are codes ("0c"), GPT types GUIDs */
	struct fdisk_parttype *pt =
	    fdisk_is_label(cxt, GPT) ? fdisk_label_get_parttype_from_string(lb, type)
				     : fdisk_label_get_parttype_from_code(lb, (unsigned)strtoul(type, NULL, 16));
	struct fdisk_partition *pa = fdisk_new_partition();
	int ret;

	if (!pt || !pa) {
		fdisk_unref_partition(pa);
		return fail(tb, "partition type", -ENOMEM);
	}
	fdisk_partition_set_partno(pa, partno);
	fdisk_partition_set_start(pa, start / ss);
	fdisk_partition_set_size(pa, size / ss);
	fdisk_partition_set_type(pa, pt);
	if (name && fdisk_is_label(cxt, GPT))
		fdisk_partition_set_name(pa, name);
	ret = fdisk_add_partition(cxt, pa, NULL);
	fdisk_unref_partition(pa);
	fdisk_unref_parttype(pt);
	if (ret < 0)
		return fail(tb, "adding a partition", ret);
	out->number = (uint32_t)partno + 1;
	out->offset = start;
	out->size = size;
	if (fdisk_is_label(cxt, GPT)) {
		struct fdisk_partition *got = NULL;
		if ((ret = fdisk_get_partition(cxt, partno, &got)) < 0)
			return fail(tb, "reading a partition back", ret);
		ret = guid_parse(fdisk_partition_get_uuid(got), out->guid, out->guid_str);
		fdisk_unref_partition(got);
		if (ret)
			return fail(tb, "the partition's GUID", ret);
	}
	return 0;
}

int flush_table_plan(struct wtg_flush_target *t, const struct wtg_flush_options *opt,
		     struct flush_table **table_ret, struct wtg_flush_layout *layout)
{
	struct flush_table *tb = calloc(1, sizeof(*tb));
	char *id = NULL;
	int ret;

	if (!tb)
		return -ENOMEM;
	tb->t = t;
	memset(layout, 0, sizeof(*layout));
	tb->cxt = fdisk_new_context();
	if (!tb->cxt) {
		free(tb);
		return -ENOMEM;
	}
	fdisk_disable_dialogs(tb->cxt, 1);
	ret = fdisk_assign_device_by_fd(tb->cxt, t->fd, t->path, 0);
	if (ret < 0) {
		ret = fail(tb, "libfdisk cannot use the disk", ret);
		goto out_free;
	}
	bool gpt = opt->scheme == WTG_FLUSH_GPT;
	ret = fdisk_create_disklabel(tb->cxt, gpt ? "gpt" : "dos");
	if (ret < 0) {
		ret = fail(tb, "a new partition table", ret);
		goto out_free;
	}
	unsigned long ss = fdisk_get_sector_size(tb->cxt);
	layout->scheme = opt->scheme;
	layout->sector_size = (uint32_t)ss;
	layout->disk_size = t->size;
	/* the last usable byte, on a MiB boundary (GPT keeps its backup after) */
	uint64_t end = (uint64_t)(fdisk_get_last_lba(tb->cxt) + 1) * ss;
	end &= ~(MiB - 1);
	uint64_t esp = opt->esp_size ? opt->esp_size : gpt ? WTG_FLUSH_ESP_SIZE_GPT
							   : WTG_FLUSH_ESP_SIZE_MBR;
	esp = (esp + MiB - 1) & ~(MiB - 1);
	uint64_t pos = MiB;
	if ((ret = add(tb, 0, pos, esp, gpt ? GUID_ESP : "0c",
		       gpt ? "EFI system partition" : NULL, &layout->esp)))
		goto out_free;
	pos += esp;
	if (gpt) {
		if ((ret = add(tb, 1, pos, WTG_FLUSH_MSR_SIZE, GUID_MSR,
			       "Microsoft reserved partition", &layout->msr)))
			goto out_free;
		pos += WTG_FLUSH_MSR_SIZE;
	}
	if (end <= pos + 64 * MiB) {
		ret = fail(tb, "no room for the Windows partition", -ENOSPC);
		goto out_free;
	}
	if ((ret = add(tb, gpt ? 2 : 1, pos, end - pos, gpt ? GUID_BASIC : "07",
		       gpt ? "Basic data partition" : NULL, &layout->windows)))
		goto out_free;
	if (gpt) {
		ret = fdisk_gpt_set_partition_attrs(tb->cxt, 0, GPT_ATTR_NO_DRIVE_LETTER);
		if (ret < 0) {
			ret = fail(tb, "the ESP's attributes", ret);
			goto out_free;
		}
	} else {
		ret = fdisk_toggle_partition_flag(tb->cxt, 0, DOS_FLAG_ACTIVE);
		if (ret < 0) {
			ret = fail(tb, "the active flag", ret);
			goto out_free;
		}
	}
	ret = fdisk_get_disklabel_id(tb->cxt, &id);
	if (ret < 0 || !id) {
		ret = fail(tb, "the disk's identifier", ret < 0 ? ret : -EIO);
		goto out_free;
	}
	if (gpt) {
		ret = guid_parse(id, layout->disk_guid, layout->disk_guid_str);
	} else {
		char *endp;
		unsigned long sig = strtoul(id, &endp, 16);
		ret = *endp || !sig ? -EINVAL : 0;
		layout->mbr_signature = (uint32_t)sig;
	}
	free(id);
	if (ret) {
		ret = fail(tb, "the disk's identifier", ret);
		goto out_free;
	}
	*table_ret = tb;
	return 0;
out_free:
	flush_table_free(tb);
	return ret;
}

int flush_table_write(struct flush_table *tb)
{
	int ret = fdisk_write_disklabel(tb->cxt);

	if (ret < 0)
		return fail(tb, "writing the table", ret);
	if (tb->t->device)
		fdisk_reread_partition_table(tb->cxt); /* best effort: the kernel may be busy */
	return 0;
}

void flush_table_free(struct flush_table *tb)
{
	if (!tb)
		return;
	if (tb->cxt) {
		/* the descriptor is the target's: libfdisk does not close it */
		fdisk_deassign_device(tb->cxt, 1);
		fdisk_unref_context(tb->cxt);
	}
	free(tb);
}
