/*
 * The flush's partition layout: planned in memory with libfdisk, written,
 * and read back with our own parser.  The layout is what the BCD's device
 * elements are made from, so its GUID bytes (on-disk, mixed-endian order)
 * must be exactly the table's, its text the same GUID, every partition on
 * a MiB boundary, and nothing may reach the disk before the table is
 * written.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/flush/flush_int.h"
#include "unit.h"
#include "wtgfs/disk.h"

#define MiB (1ull << 20)

static int fd_read(void *ctx, void *buf, size_t size, uint64_t off)
{
	int fd = *(int *)ctx;
	return pread(fd, buf, size, (off_t)off) == (ssize_t)size ? 0 : -EIO;
}

static struct wtg_flush_target *new_target(uint64_t size)
{
	static char path[] = "/tmp/wtgfs-unit-flush.XXXXXX";
	char *p = strdup(path);
	struct wtg_flush_target *t = calloc(1, sizeof(*t));

	t->fd = mkstemp(p);
	unlink(p);
	t->path = p;
	t->size = size;
	t->sector_size = 512;
	if (ftruncate(t->fd, (off_t)size) < 0)
		abort();
	return t;
}

static bool all_zero_file(int fd, uint64_t size)
{
	off_t data = lseek(fd, 0, SEEK_DATA);
	return data < 0 || (uint64_t)data >= size;
}

static void text_matches(const struct wtg_flush_part *p)
{
	char s[37];

	wtg_guid_to_string(p->guid, s);
	for (char *c = s; *c; c++)
		if (*c >= 'A' && *c <= 'F')
			*c = (char)(*c - 'A' + 'a');
	CHECK(!strcmp(s, p->guid_str));
}

TEST(gpt_layout)
{
	struct wtg_flush_target *t = new_target(2048 * MiB);
	struct wtg_flush_options opt = {.scheme = WTG_FLUSH_GPT};
	struct wtg_flush_layout l;
	struct flush_table *tb;
	struct wtg_disk disk;

	CHECK(flush_table_plan(t, &opt, &tb, &l) == 0);
	CHECK(all_zero_file(t->fd, t->size)); /* planned, not written */
	CHECK(l.sector_size == 512);
	CHECK(l.esp.number == 1 && l.esp.offset == MiB && l.esp.size == 260 * MiB);
	CHECK(l.msr.number == 2 && l.msr.offset == 261 * MiB && l.msr.size == 16 * MiB);
	CHECK(l.windows.number == 3 && l.windows.offset == 277 * MiB);
	CHECK(l.windows.size % MiB == 0 && l.windows.offset + l.windows.size <= t->size - 33 * 512);
	CHECK(l.windows.offset + l.windows.size > t->size - 2 * MiB);
	text_matches(&l.esp);
	text_matches(&l.windows);
	CHECK(memcmp(l.esp.guid, l.windows.guid, 16) && memcmp(l.esp.guid, l.msr.guid, 16));
	CHECK(flush_table_write(tb) == 0);
	flush_table_free(tb);
	CHECK(wtg_disk_read(fd_read, &t->fd, t->size, 0, "unit", &disk) == 0);
	CHECK(disk.scheme == WTG_DISK_GPT && disk.nparts == 3);
	CHECK(!memcmp(disk.disk_guid, l.disk_guid, 16));
	if (disk.nparts == 3) {
		CHECK(!memcmp(disk.parts[0].part_guid, l.esp.guid, 16));
		CHECK(!memcmp(disk.parts[1].part_guid, l.msr.guid, 16));
		CHECK(!memcmp(disk.parts[2].part_guid, l.windows.guid, 16));
		CHECK(disk.parts[2].start == l.windows.offset && disk.parts[2].size == l.windows.size);
		CHECK(disk.parts[0].gpt_attrs == 1ull << 63 && disk.parts[2].gpt_attrs == 0);
	}
	wtg_disk_release(&disk);
	close(t->fd);
	free(t->path);
	free(t);
}

TEST(mbr_layout)
{
	struct wtg_flush_target *t = new_target(1024 * MiB);
	struct wtg_flush_options opt = {.scheme = WTG_FLUSH_MBR};
	struct wtg_flush_layout l;
	struct flush_table *tb;
	struct wtg_disk disk;

	CHECK(flush_table_plan(t, &opt, &tb, &l) == 0);
	CHECK(l.mbr_signature != 0 && l.msr.number == 0 && !l.esp.guid_str[0]);
	CHECK(l.esp.offset == MiB && l.esp.size >= WTG_FLUSH_ESP_SIZE_MBR && l.esp.size % MiB == 0);
	CHECK(l.windows.number == 2 && l.windows.offset == l.esp.offset + l.esp.size);
	CHECK(flush_table_write(tb) == 0);
	flush_table_free(tb);
	CHECK(wtg_disk_read(fd_read, &t->fd, t->size, 0, "unit", &disk) == 0);
	CHECK(disk.scheme == WTG_DISK_MBR && disk.mbr_signature == l.mbr_signature);
	if (disk.nparts == 2) {
		CHECK(disk.parts[0].mbr_type == 0x0c && disk.parts[0].bootable);
		CHECK(disk.parts[1].mbr_type == 0x07 && !disk.parts[1].bootable);
		CHECK(disk.parts[1].start == l.windows.offset);
	}
	wtg_disk_release(&disk);
	close(t->fd);
	free(t->path);
	free(t);
}

TEST(wipe)
{
	struct wtg_flush_target *t = new_target(1024 * MiB);
	struct wtg_flush_options opt = {.scheme = WTG_FLUSH_GPT};
	struct wtg_flush_layout l;
	struct flush_table *tb;
	uint8_t magic[8] = "NTFS    ", back[8];

	CHECK(flush_table_plan(t, &opt, &tb, &l) == 0);
	CHECK(flush_table_write(tb) == 0);
	flush_table_free(tb);
	/* a file system's magic at a partition's start and its backup at the end */
	CHECK(pwrite(t->fd, magic, 8, (off_t)(l.windows.offset + 3)) == 8);
	CHECK(pwrite(t->fd, magic, 8, (off_t)(l.windows.offset + l.windows.size - 512 + 3)) == 8);
	CHECK(flush_wipe(t) == 0);
	CHECK(all_zero_file(t->fd, t->size) ||
	      (pread(t->fd, back, 8, (off_t)(l.windows.offset + 3)) == 8 && !memcmp(back, "\0\0\0\0\0\0\0", 8)));
	CHECK(pread(t->fd, back, 8, (off_t)(l.windows.offset + l.windows.size - 512 + 3)) == 8 &&
	      memcmp(back, magic, 8));
	struct wtg_disk disk;
	CHECK(wtg_disk_read(fd_read, &t->fd, t->size, 0, "unit", &disk) == 0);
	CHECK(disk.scheme == WTG_DISK_NONE);
	wtg_disk_release(&disk);
	close(t->fd);
	free(t->path);
	free(t);
}

int main(void)
{
	RUN(gpt_layout);
	RUN(mbr_layout);
	RUN(wipe);
	UNIT_EXIT();
}
