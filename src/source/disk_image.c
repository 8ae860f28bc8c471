/*
 * Disk images: block source -> partition table -> the NTFS volume that a
 * mount or a delta uses, chosen by number or by holding \Windows.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wtgfs/block.h"
#include "wtgfs/disk.h"
#include "wtgfs/disk_image.h"
#include "wtgfs/log.h"
#include "wtgfs/ntfs_source.h"
#include "wtgfs/source.h"

/* A partition: a byte range of a block source. */
struct part_range {
	struct wtg_block_dev *dev;
	uint64_t start, size;
	bool owns_dev;
};

static int part_read(void *ctx, void *buf, size_t size, uint64_t off)
{
	struct part_range *p = ctx;

	if (off > p->size || size > p->size - off)
		return -EIO;
	return wtg_block_pread(p->dev, buf, size, p->start + off);
}

static void part_release(void *ctx)
{
	struct part_range *p = ctx;

	if (p->owns_dev)
		wtg_block_free(p->dev);
	free(p);
}

static int open_disk(const char *path, const char *parent, struct wtg_block_dev **dev_ret,
		     struct wtg_disk *disk)
{
	int ret = wtg_block_open(path, parent, dev_ret);

	if (ret < 0)
		return ret;
	/* raw images do not say their sector size: let the table tell */
	uint32_t ss = strcmp((*dev_ret)->ops->name, "raw") ? (*dev_ret)->sector_size : 0;
	struct part_range whole = {.dev = *dev_ret, .size = (*dev_ret)->size};
	ret = wtg_disk_read(part_read, &whole, (*dev_ret)->size, ss, path, disk);
	if (ret < 0) {
		wtg_block_free(*dev_ret);
		*dev_ret = NULL;
	}
	return ret;
}

static void probe_fs(struct wtg_block_dev *dev, uint64_t start, uint64_t size, char *fs,
		     size_t fs_size)
{
	uint8_t b[2048];

	fs[0] = '\0';
	if (size < sizeof(b) || wtg_block_pread(dev, b, sizeof(b), start) < 0)
		return;
	if (!memcmp(b + 3, "NTFS    ", 8))
		snprintf(fs, fs_size, "NTFS");
	else if (!memcmp(b + 3, "EXFAT   ", 8))
		snprintf(fs, fs_size, "exFAT");
	else if (!memcmp(b + 82, "FAT32   ", 8))
		snprintf(fs, fs_size, "FAT32");
	else if (!memcmp(b + 54, "FAT1", 4))
		snprintf(fs, fs_size, "FAT");
	else if (b[1080] == 0x53 && b[1081] == 0xEF)
		snprintf(fs, fs_size, "ext");
}

/* A file with no partition table that is not NTFS either. */
static int not_a_base(struct wtg_block_dev *dev, const char *path)
{
	if (!strcmp(dev->ops->name, "raw") || !strcmp(dev->ops->name, "device"))
		wtg_error("cannot open '%s': not a WIM file, a partitioned disk or an NTFS volume",
			  path);
	else
		wtg_error("cannot open '%s': the disk holds no partition table and no NTFS volume",
			  path);
	return -EINVAL;
}

static bool usable(const struct wtg_partition *p)
{
	return !p->extended && p->size > 0 && !(!p->gpt && p->mbr_type == 0xEE);
}

int wtg_disk_image_open(const char *path, const char *sel, const char *parent,
			struct wtg_source **src_ret)
{
	struct wtg_block_dev *dev;
	struct wtg_disk disk;
	const struct wtg_partition *chosen = NULL;
	char what[4096];
	int ret = open_disk(path, parent, &dev, &disk);

	if (ret < 0)
		return ret;
	struct part_range *pr = calloc(1, sizeof(*pr));
	if (!pr) {
		ret = -ENOMEM;
		goto fail;
	}
	pr->dev = dev;
	pr->owns_dev = true;
	if (disk.scheme == WTG_DISK_NONE) {
		if (sel && *sel) {
			wtg_error("'%s' has no partition table: mount it without ':%s'", path, sel);
			ret = -ENOENT;
			goto fail;
		}
		pr->size = dev->size;
		if (!wtg_ntfs_probe(part_read, pr)) {
			ret = not_a_base(dev, path);
			goto fail;
		}
		snprintf(what, sizeof(what), "%s", path);
	} else if (sel && *sel) {
		char *end;
		long n = strtol(sel, &end, 10);
		for (int i = 0; i < disk.nparts && !*end; i++)
			if (disk.parts[i].number == n && usable(&disk.parts[i]))
				chosen = &disk.parts[i];
		if (!chosen) {
			wtg_error("'%s' has no partition '%s' (see 'wtgfs info %s')", path, sel,
				  path);
			ret = -ENOENT;
			goto fail;
		}
	} else {
		/* the NTFS partition that holds \Windows */
		char list[1024] = "";
		int found = 0;
		for (int i = 0; i < disk.nparts; i++) {
			const struct wtg_partition *p = &disk.parts[i];
			struct part_range probe = {.dev = dev, .start = p->start, .size = p->size};
			struct wtg_ntfs_volume_info vi;
			if (!usable(p) || !wtg_ntfs_probe(part_read, &probe))
				continue;
			snprintf(what, sizeof(what), "%s:%d", path, p->number);
			if (wtg_ntfs_volume_info(part_read, &probe, p->size, what, &vi) < 0 ||
			    !vi.has_windows)
				continue;
			found++;
			chosen = p;
			size_t l = strlen(list);
			snprintf(list + l, sizeof(list) - l, "%s%d", l ? ", " : "", p->number);
		}
		if (found != 1) {
			if (found)
				wtg_error(
				    "'%s': partitions %s each hold \\Windows: choose one with "
				    "'%s:N'",
				    path, list, path);
			else
				wtg_error(
				    "'%s': no NTFS partition holds \\Windows: choose one with "
				    "'%s:N' (see 'wtgfs info %s')",
				    path, path, path);
			ret = -ENOENT;
			goto fail;
		}
	}
	if (chosen) {
		pr->start = chosen->start;
		pr->size = chosen->size;
		snprintf(what, sizeof(what), "%s:%d", path, chosen->number);
	}
	char disk_id[96] = "";
	if (dev->identity[0])
		snprintf(disk_id, sizeof(disk_id), "%s:%s:%d", dev->ops->name, dev->identity,
			 chosen ? chosen->number : 0);
	wtg_disk_release(&disk); /* chosen points into it */
	ret = wtg_ntfs_source_open(part_read, pr, part_release, pr->size, what, src_ret);
	if (ret == 0 && disk_id[0]) {
		size_t l = strlen((*src_ret)->identity);
		snprintf((*src_ret)->identity + l, sizeof((*src_ret)->identity) - l, ":%s",
			 disk_id);
	}
	return ret;
fail:
	free(pr);
	wtg_disk_release(&disk);
	wtg_block_free(dev);
	return ret;
}

static void report_volume(struct wtg_block_dev *dev, const struct wtg_partition *p,
			  const char *path, struct wtg_volume_report *v)
{
	char what[4096];
	struct part_range pr = {
	    .dev = dev, .start = p ? p->start : 0, .size = p ? p->size : dev->size};

	memset(v, 0, sizeof(*v));
	v->number = p ? p->number : 0;
	v->start = pr.start;
	v->size = pr.size;
	const char *type = p ? wtg_partition_type_name(p) : NULL;
	if (type) {
		snprintf(v->type, sizeof(v->type), "%s", type);
	} else if (p && p->gpt) {
		wtg_guid_to_string(p->type_guid, v->type);
	} else if (p) {
		snprintf(v->type, sizeof(v->type), "0x%02x", p->mbr_type);
	}
	probe_fs(dev, pr.start, pr.size, v->fs, sizeof(v->fs));
	if (!strcmp(v->fs, "NTFS")) {
		struct wtg_ntfs_volume_info vi;
		snprintf(what, sizeof(what), p ? "%s:%d" : "%s", path, p ? p->number : 0);
		if (wtg_ntfs_volume_info(part_read, &pr, pr.size, what, &vi) == 0) {
			snprintf(v->label, sizeof(v->label), "%s", vi.label);
			v->has_windows = vi.has_windows;
		}
	} else if (!strcmp(v->fs, "FAT32") || !strcmp(v->fs, "FAT")) {
		uint8_t b[512];
		if (wtg_block_pread(dev, b, sizeof(b), pr.start) == 0) {
			const uint8_t *l = b + (!strcmp(v->fs, "FAT32") ? 71 : 43);
			int n = 11;
			while (n && l[n - 1] == ' ')
				n--;
			if (n && memcmp(l, "NO NAME    ", 11))
				snprintf(v->label, sizeof(v->label), "%.*s", n, (const char *)l);
		}
	}
}

int wtg_disk_image_report(const char *path, const char *parent, struct wtg_disk_report *r)
{
	struct wtg_block_dev *dev;
	struct wtg_disk disk;
	int ret = open_disk(path, parent, &dev, &disk);

	if (ret < 0)
		return ret;
	memset(r, 0, sizeof(*r));
	r->format = dev->ops->name;
	r->scheme = disk.scheme == WTG_DISK_GPT	  ? "gpt"
		    : disk.scheme == WTG_DISK_MBR ? "mbr"
						  : "none";
	r->size = dev->size;
	r->sector_size = disk.sector_size ? disk.sector_size : dev->sector_size;
	snprintf(r->identity, sizeof(r->identity), "%s", dev->identity);
	if (disk.scheme == WTG_DISK_GPT)
		wtg_guid_to_string(disk.disk_guid, r->disk_id);
	else if (disk.scheme == WTG_DISK_MBR)
		snprintf(r->disk_id, sizeof(r->disk_id), "%08" PRIx32, disk.mbr_signature);
	r->vols = calloc((size_t)disk.nparts + 1, sizeof(*r->vols));
	if (!r->vols) {
		ret = -ENOMEM;
		goto out;
	}
	if (disk.scheme == WTG_DISK_NONE) {
		report_volume(dev, NULL, path, &r->vols[r->nvols++]);
		if (!r->vols[0].fs[0]) {
			ret = not_a_base(dev, path);
			wtg_disk_report_release(r);
		}
	} else {
		for (int i = 0; i < disk.nparts; i++)
			if (!disk.parts[i].extended)
				report_volume(dev, &disk.parts[i], path, &r->vols[r->nvols++]);
	}
out:
	wtg_disk_release(&disk);
	wtg_block_free(dev);
	return ret;
}

void wtg_disk_report_release(struct wtg_disk_report *r)
{
	free(r->vols);
	r->vols = NULL;
}
