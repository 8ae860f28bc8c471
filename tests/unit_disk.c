/*
 * The partition-table parser against tables built here byte by byte: GPT
 * with 512- and 4096-byte sectors, the backup header when the primary is
 * damaged, every header field out of range, MBR with extended and logical
 * partitions, EBR loops and overlong chains, bare file systems, and a
 * reader that fails.  No read may leave the disk.
 */
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "wtgfs/disk.h"
#include "wtgfs/le.h"
#include "wtgfs/log.h"

/* ---- an in-memory disk ---- */

struct img {
	uint8_t *b;
	uint64_t size;
	int fail; /* when set, reads fail with -EIO */
};

static int reads_outside;

static int mem_read(void *ctx, void *buf, size_t n, uint64_t off)
{
	struct img *im = ctx;

	if (off > im->size || n > im->size - off) {
		reads_outside++;
		return -EIO;
	}
	if (im->fail)
		return -EIO;
	memcpy(buf, im->b + off, n);
	return 0;
}

static struct img img_new(uint64_t size)
{
	return (struct img){.b = calloc(1, size), .size = size};
}

static int parse(struct img *im, uint32_t ss, struct wtg_disk *d)
{
	return wtg_disk_read(mem_read, im, im->size, ss, "test.img", d);
}

/* "EBD0A0A2-B9E5-..." to on-disk bytes */
static void guid(const char *s, uint8_t g[16])
{
	static const int order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
	int i = 0;

	for (; *s && i < 16; s++) {
		if (*s == '-')
			continue;
		unsigned v;
		sscanf(s, "%2x", &v);
		g[order[i++]] = (uint8_t)v;
		s++;
	}
}

#define T_EFI "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
#define T_MSR "E3C9E316-0B5C-4DB8-817D-F92DF00215AE"
#define T_BASIC "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"

/* ---- MBR ---- */

static void mbr_entry(uint8_t *sector, int slot, uint8_t status, uint8_t type, uint32_t lba,
		      uint32_t n)
{
	uint8_t *e = sector + 0x1BE + 16 * slot;

	e[0] = status;
	e[4] = type;
	wtg_put_le32(e + 8, lba);
	wtg_put_le32(e + 12, n);
	sector[0x1FE] = 0x55;
	sector[0x1FF] = 0xAA;
}

/* ---- GPT ---- */

struct gpt_part {
	int index;
	const char *type;
	uint64_t first, last;
	uint64_t attrs;
	const uint16_t *name; /* NULL: none */
};

struct gpt_layout {
	uint32_t ss;
	uint32_t nent, esize;
	uint64_t first_usable, last_usable, array_sectors;
};

/* Writes the header at @lba for the array at @alba and fixes its CRC. */
static void gpt_header(struct img *im, const struct gpt_layout *l, uint64_t lba, uint64_t alt,
		       uint64_t alba, uint32_t array_crc)
{
	uint8_t *h = im->b + lba * l->ss;

	memset(h, 0, l->ss);
	memcpy(h, "EFI PART", 8);
	wtg_put_le32(h + 0x08, 0x00010000);
	wtg_put_le32(h + 0x0C, 92);
	wtg_put_le64(h + 0x18, lba);
	wtg_put_le64(h + 0x20, alt);
	wtg_put_le64(h + 0x28, l->first_usable);
	wtg_put_le64(h + 0x30, l->last_usable);
	for (int i = 0; i < 16; i++)
		h[0x38 + i] = (uint8_t)(0xA0 + i);
	wtg_put_le64(h + 0x48, alba);
	wtg_put_le32(h + 0x50, l->nent);
	wtg_put_le32(h + 0x54, l->esize);
	wtg_put_le32(h + 0x58, array_crc);
	wtg_put_le32(h + 0x10, wtg_crc32(0, h, 92));
}

static void gpt_fix_crc(struct img *im, uint32_t ss, uint64_t lba)
{
	uint8_t *h = im->b + lba * ss;
	uint32_t hsize;

	memcpy(&hsize, h + 0x0C, 4);
	hsize = le32toh(hsize);
	if (hsize > ss)
		hsize = ss; /* a size the parser must refuse: stay in the buffer */

	wtg_put_le32(h + 0x10, 0);
	wtg_put_le32(h + 0x10, wtg_crc32(0, h, hsize));
}

static uint64_t last_lba(struct img *im, uint32_t ss)
{
	return im->size / ss - 1;
}

/* A disk of @size bytes with a protective MBR, both GPT headers and arrays
 * of 128 entries holding @parts. */
static struct img gpt_disk(uint32_t ss, uint64_t size, const struct gpt_part *parts, int n,
			   struct gpt_layout *l)
{
	struct img im = img_new(size);
	uint64_t last = size / ss - 1;

	l->ss = ss;
	l->nent = 128;
	l->esize = 128;
	l->array_sectors = (128 * 128 + ss - 1) / ss;
	l->first_usable = 2 + l->array_sectors;
	l->last_usable = last - 1 - l->array_sectors;
	mbr_entry(im.b, 0, 0, 0xEE, 1, (uint32_t)(last < 0xFFFFFFFF ? last : 0xFFFFFFFF));
	wtg_put_le32(im.b + 0x1B8, 0xDEADBEEF);

	uint8_t *array = calloc(l->nent, l->esize);
	for (int i = 0; i < n; i++) {
		uint8_t *e = array + parts[i].index * l->esize;
		guid(parts[i].type, e);
		for (int k = 0; k < 16; k++)
			e[0x10 + k] = (uint8_t)(i * 16 + k + 1);
		wtg_put_le64(e + 0x20, parts[i].first);
		wtg_put_le64(e + 0x28, parts[i].last);
		wtg_put_le64(e + 0x30, parts[i].attrs);
		for (int k = 0; parts[i].name && parts[i].name[k] && k < 36; k++)
			wtg_put_le16(e + 0x38 + 2 * k, parts[i].name[k]);
	}
	uint32_t crc = wtg_crc32(0, array, (size_t)l->nent * l->esize);
	memcpy(im.b + 2 * ss, array, (size_t)l->nent * l->esize);
	memcpy(im.b + (l->last_usable + 1) * ss, array, (size_t)l->nent * l->esize);
	gpt_header(&im, l, 1, last, 2, crc);
	gpt_header(&im, l, last, 1, l->last_usable + 1, crc);
	free(array);
	return im;
}

static const uint16_t name_efi[] = {'E', 'F', 'I', ' ', 's', 'y', 's', 't', 'e', 'm', 0};
static const uint16_t name_data[] = {'d', 0xE9, 0x20AC, 0xD83D, 0xDE00, 'x', 0xD800, 'y', 0};

/* 5 MiB: partitions 1, 2 and 4 (entry 3 unused) of 1 MiB each from 1 MiB */
static struct img gpt_std(uint32_t ss, struct gpt_layout *l)
{
	uint64_t m = (1 << 20) / ss; /* sectors per MiB */
	const struct gpt_part parts[] = {
	    {0, T_EFI, m, 2 * m - 1, 0, name_efi},
	    {1, T_MSR, 2 * m, 3 * m - 1, 1ull << 63, NULL},
	    {3, T_BASIC, 3 * m, 4 * m - 1, 0, name_data},
	};
	return gpt_disk(ss, 5 << 20, parts, 3, l);
}

/* ---- tests ---- */

TEST(crc32)
{
	CHECK(wtg_crc32(0, "123456789", 9) == 0xCBF43926);
	CHECK(wtg_crc32(wtg_crc32(0, "1234", 4), "56789", 5) == 0xCBF43926);
	CHECK(wtg_crc32(0, "", 0) == 0);
}

TEST(guid_string)
{
	uint8_t g[16];
	char s[37];

	guid(T_BASIC, g);
	CHECK(g[0] == 0xA2 && g[3] == 0xEB && g[4] == 0xE5 && g[8] == 0x87 && g[15] == 0xC7);
	wtg_guid_to_string(g, s);
	CHECK(!strcmp(s, T_BASIC));
}

static void check_std(struct img *im, uint32_t ss, uint32_t told)
{
	struct wtg_disk d;
	char s[37];

	CHECK(parse(im, told, &d) == 0);
	CHECK(d.scheme == WTG_DISK_GPT);
	CHECK(d.sector_size == ss);
	CHECK(d.size == im->size);
	CHECK(d.disk_guid[0] == 0xA0 && d.disk_guid[15] == 0xAF);
	CHECK(d.mbr_signature == 0xDEADBEEF);
	CHECK(d.nparts == 3);
	if (d.nparts != 3)
		return;
	CHECK(d.parts[0].number == 1 && d.parts[1].number == 2 && d.parts[2].number == 4);
	CHECK(d.parts[0].start == 1 << 20 && d.parts[0].size == 1 << 20);
	CHECK(d.parts[1].start == 2 << 20 && d.parts[1].size == 1 << 20);
	CHECK(d.parts[2].start == 3 << 20 && d.parts[2].size == 1 << 20);
	CHECK(d.parts[0].gpt && !d.parts[0].bootable);
	CHECK(!strcmp(wtg_partition_type_name(&d.parts[0]), "EFI System"));
	CHECK(!strcmp(wtg_partition_type_name(&d.parts[1]), "Microsoft reserved"));
	CHECK(!strcmp(wtg_partition_type_name(&d.parts[2]), "Microsoft basic data"));
	CHECK(d.parts[1].gpt_attrs == 1ull << 63);
	wtg_guid_to_string(d.parts[2].part_guid, s);
	CHECK(!strcmp(s, "24232221-2625-2827-292A-2B2C2D2E2F30"));
	CHECK(!strcmp(d.parts[0].name, "EFI system"));
	CHECK(!strcmp(d.parts[1].name, ""));
	CHECK(!strcmp(d.parts[2].name, "d\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80x\xEF\xBF\xBDy"));
	wtg_disk_release(&d);
	CHECK(d.parts == NULL && d.nparts == 0);
}

TEST(gpt_512)
{
	struct gpt_layout l;
	struct img im = gpt_std(512, &l);

	check_std(&im, 512, 0);
	check_std(&im, 512, 512);
	free(im.b);
}

TEST(gpt_4096)
{
	struct gpt_layout l;
	struct img im = gpt_std(4096, &l);
	struct wtg_disk d;

	check_std(&im, 4096, 0);
	check_std(&im, 4096, 4096);
	/* told the wrong size, no header is where it looks */
	CHECK(parse(&im, 512, &d) == -EINVAL);
	CHECK(d.parts == NULL && d.nparts == 0);
	free(im.b);
}

TEST(gpt_backup)
{
	for (uint32_t ss = 512; ss <= 4096; ss *= 8) {
		struct gpt_layout l;
		struct img im = gpt_std(ss, &l);

		im.b[ss + 0x10] ^= 1; /* primary header CRC */
		check_std(&im, ss, 0);
		im.b[ss + 0x10] ^= 1;
		im.b[2 * ss + 0x30] ^= 1; /* primary array */
		check_std(&im, ss, 0);
		im.b[2 * ss + 0x30] ^= 1;
		memset(im.b + ss, 0, 8); /* primary signature: found by the backup */
		check_std(&im, ss, 0);
		free(im.b);
	}
}

TEST(gpt_both_bad)
{
	struct gpt_layout l;
	struct img im = gpt_std(512, &l);
	struct wtg_disk d;

	im.b[512 + 0x40] ^= 1;
	im.b[last_lba(&im, 512) * 512 + 0x40] ^= 1;
	CHECK(parse(&im, 0, &d) == -EINVAL);
	CHECK(d.parts == NULL && d.nparts == 0 && d.scheme == WTG_DISK_NONE);
	free(im.b);
}

/* Sets a header field in both headers, fixes their CRCs, expects -EINVAL. */
static void bad_field(size_t off, int width, uint64_t v)
{
	struct gpt_layout l;
	struct img im = gpt_std(512, &l);
	struct wtg_disk d;
	uint64_t lbas[2] = {1, last_lba(&im, 512)};

	for (int i = 0; i < 2; i++) {
		uint8_t *h = im.b + lbas[i] * 512;
		if (width == 4)
			wtg_put_le32(h + off, (uint32_t)v);
		else
			wtg_put_le64(h + off, v);
		gpt_fix_crc(&im, 512, lbas[i]);
	}
	int ret = parse(&im, 0, &d);
	CHECK(ret == -EINVAL);
	if (ret != -EINVAL)
		fprintf(stderr, "  field 0x%zx = %llu accepted\n", off, (unsigned long long)v);
	wtg_disk_release(&d);
	free(im.b);
}

TEST(gpt_bad_fields)
{
	bad_field(0x0C, 4, 91);			/* header size */
	bad_field(0x0C, 4, 513);		/* header size past the sector */
	bad_field(0x18, 8, 7);			/* my LBA */
	bad_field(0x28, 8, 1);			/* first usable over the header */
	bad_field(0x28, 8, 20000);		/* first usable > last usable */
	bad_field(0x50, 4, 0xFFFFFFFF);		/* entries */
	bad_field(0x50, 4, 100000);		/* entries: 12 MB array */
	bad_field(0x54, 4, 0);			/* entry size */
	bad_field(0x54, 4, 127);		/* entry size */
	bad_field(0x54, 4, 132);		/* entry size not a multiple of 8 */
	bad_field(0x54, 4, 0x80000000);		/* entry size */
	bad_field(0x48, 8, 0);			/* array over the MBR */
	bad_field(0x48, 8, 40);			/* array inside the usable area */
	bad_field(0x48, 8, 0xFFFFFFFFFFFFFFFF); /* array past the end */
	bad_field(0x58, 4, 0x12345678);		/* array CRC */
}

static int gpt_one(uint64_t first, uint64_t last, uint64_t first2, uint64_t last2)
{
	struct gpt_layout l;
	const struct gpt_part parts[] = {
	    {0, T_BASIC, first, last, 0, NULL},
	    {5, T_BASIC, first2, last2, 0, NULL},
	};
	struct img im = gpt_disk(512, 1 << 20, parts, 2, &l);
	struct wtg_disk d;
	int ret = parse(&im, 0, &d);

	wtg_disk_release(&d);
	free(im.b);
	return ret;
}

TEST(gpt_partitions)
{
	/* 1 MiB: 2048 sectors, usable 34..2014 */
	CHECK(gpt_one(34, 100, 101, 2014) == 0);
	CHECK(gpt_one(34, 100, 101, 2048) == -EINVAL);	     /* past the end */
	CHECK(gpt_one(34, 100, 101, 1ull << 62) == -EINVAL); /* far past */
	CHECK(gpt_one(34, 100, 101, 2020) == -EINVAL);	     /* over the backup array */
	CHECK(gpt_one(33, 100, 101, 200) == -EINVAL);	     /* over the primary array */
	CHECK(gpt_one(34, 100, 100, 200) == -EINVAL);	     /* overlap by one sector */
	CHECK(gpt_one(50, 60, 34, 2000) == -EINVAL);	     /* one inside the other */
	CHECK(gpt_one(34, 100, 300, 200) == -EINVAL);	     /* ends before it starts */
	CHECK(gpt_one(34, 34, 35, 35) == 0);		     /* one sector each */
}

TEST(gpt_truncated)
{
	/* a disk cut short: the backup is gone and the primary's partitions
	 * run past the end */
	struct gpt_layout l;
	struct img im = gpt_std(512, &l);
	struct wtg_disk d;

	im.size = (3 << 20) + 4096;
	CHECK(parse(&im, 0, &d) == -EINVAL);
	free(im.b);
}

TEST(gpt_needs_protective_mbr)
{
	struct gpt_layout l;
	struct img im = gpt_std(512, &l);
	struct wtg_disk d;

	/* hybrid: GPT wins */
	mbr_entry(im.b, 1, 0x80, 0x07, 2048, 2048);
	CHECK(parse(&im, 0, &d) == 0 && d.scheme == WTG_DISK_GPT && d.nparts == 3);
	wtg_disk_release(&d);
	/* no 0xEE: the MBR is the table */
	mbr_entry(im.b, 0, 0, 0x00, 0, 0);
	CHECK(parse(&im, 0, &d) == 0 && d.scheme == WTG_DISK_MBR && d.nparts == 1);
	CHECK(d.nparts == 1 && d.parts[0].number == 2 && d.parts[0].bootable);
	wtg_disk_release(&d);
	/* no MBR at all */
	memset(im.b, 0, 512);
	CHECK(parse(&im, 0, &d) == 0 && d.scheme == WTG_DISK_NONE && d.nparts == 0);
	wtg_disk_release(&d);
	/* protective MBR, no GPT */
	mbr_entry(im.b, 0, 0, 0xEE, 1, 8191);
	memset(im.b + 512, 0, 512);
	memset(im.b + last_lba(&im, 512) * 512, 0, 512);
	CHECK(parse(&im, 0, &d) == -EINVAL);
	free(im.b);
}

/* 64 MiB MBR disk: 1 active NTFS, 2 FAT32 LBA, 3 extended with logical 5,
 * 6, 7, 4 Linux. */
static struct img mbr_std(uint32_t ss)
{
	uint64_t m = (1 << 20) / ss; /* sectors per MiB */
	struct img im = img_new(64 * m * ss);

	wtg_put_le32(im.b + 0x1B8, 0x12AB34CD);
	mbr_entry(im.b, 0, 0x80, 0x07, (uint32_t)m, (uint32_t)(8 * m));
	mbr_entry(im.b, 1, 0x00, 0x0C, (uint32_t)(9 * m), (uint32_t)(8 * m));
	mbr_entry(im.b, 2, 0x00, 0x0F, (uint32_t)(17 * m), (uint32_t)(40 * m));
	mbr_entry(im.b, 3, 0x00, 0x83, (uint32_t)(57 * m), (uint32_t)(7 * m));
	for (int i = 0; i < 3; i++) {
		uint64_t ebr = 17 * m + i * 10 * m;
		uint8_t *s = im.b + ebr * ss;
		mbr_entry(s, 0, 0, i == 1 ? 0x82 : 0x83, (uint32_t)m, (uint32_t)(4 * m));
		if (i < 2)
			mbr_entry(s, 1, 0, 0x05, (uint32_t)((i + 1) * 10 * m), (uint32_t)(10 * m));
	}
	return im;
}

TEST(mbr)
{
	for (uint32_t ss = 512; ss <= 4096; ss *= 8) {
		struct img im = mbr_std(ss);
		struct wtg_disk d;

		CHECK(parse(&im, ss == 512 ? 0 : ss, &d) == 0);
		CHECK(d.scheme == WTG_DISK_MBR && d.sector_size == ss);
		CHECK(d.mbr_signature == 0x12AB34CD);
		CHECK(d.nparts == 7);
		if (d.nparts == 7) {
			static const int numbers[] = {1, 2, 3, 4, 5, 6, 7};
			static const uint64_t starts[] = {1, 9, 17, 57, 18, 28, 38};
			for (int i = 0; i < 7; i++) {
				CHECK(d.parts[i].number == numbers[i]);
				CHECK(d.parts[i].start == starts[i] << 20);
				CHECK(!d.parts[i].gpt);
			}
			CHECK(d.parts[0].bootable && !d.parts[1].bootable);
			CHECK(d.parts[2].extended && d.parts[2].size == 40 << 20);
			CHECK(d.parts[4].size == 4 << 20 && !d.parts[4].extended);
			CHECK(!strcmp(wtg_partition_type_name(&d.parts[0]), "NTFS/exFAT"));
			CHECK(!strcmp(wtg_partition_type_name(&d.parts[1]), "FAT32 LBA"));
			CHECK(!strcmp(wtg_partition_type_name(&d.parts[2]), "Extended LBA"));
			CHECK(!strcmp(wtg_partition_type_name(&d.parts[5]), "Linux swap"));
		}
		wtg_disk_release(&d);
		free(im.b);
	}
}

static int mbr_modified(void (*change)(struct img *im))
{
	struct img im = mbr_std(512);
	struct wtg_disk d;

	change(&im);
	int ret = parse(&im, 0, &d);
	wtg_disk_release(&d);
	free(im.b);
	return ret;
}

#define EBR(im, i) ((im)->b + ((17 + (uint64_t)(i)*10) << 20))

static void loop_to_first(struct img *im)
{
	mbr_entry(EBR(im, 2), 1, 0, 0x05, 0, 10 * 2048);
}

static void self_loop(struct img *im)
{
	mbr_entry(EBR(im, 1), 1, 0, 0x05, 10 * 2048, 10 * 2048);
}

static void link_outside(struct img *im)
{
	mbr_entry(EBR(im, 2), 1, 0, 0x05, 40 * 2048, 2048);
}

static void logical_outside(struct img *im)
{
	mbr_entry(EBR(im, 2), 0, 0, 0x83, 2048, 30 * 2048);
}

static void logical_at_ebr(struct img *im)
{
	mbr_entry(EBR(im, 2), 0, 0, 0x83, 0, 2048);
}

static void logical_over_ebr(struct img *im)
{
	mbr_entry(EBR(im, 0), 0, 0, 0x83, 2048, 12 * 2048);
}

static void primary_past_end(struct img *im)
{
	mbr_entry(im->b, 3, 0, 0x83, 57 * 2048, 7 * 2048 + 1);
}

static void primary_huge(struct img *im)
{
	mbr_entry(im->b, 3, 0, 0x83, 0xFFFFFFFF, 0xFFFFFFFF);
}

static void primary_at_zero(struct img *im)
{
	mbr_entry(im->b, 3, 0, 0x83, 0, 2048);
}

static void primaries_overlap(struct img *im)
{
	mbr_entry(im->b, 3, 0, 0x83, 8 * 2048, 2048);
}

static void primary_in_extended(struct img *im)
{
	mbr_entry(im->b, 3, 0, 0x83, 50 * 2048, 2048);
}

static void blank_first_ebr(struct img *im)
{
	memset(EBR(im, 0), 0, 512);
}

static void empty_slot(struct img *im)
{
	/* a zero type or zero size leaves a slot empty */
	mbr_entry(im->b, 1, 0, 0x00, 9 * 2048, 8 * 2048);
	mbr_entry(im->b, 3, 0, 0x83, 0, 0);
}

TEST(mbr_chain)
{
	CHECK(mbr_modified(loop_to_first) == -EINVAL);
	CHECK(mbr_modified(self_loop) == -EINVAL);
	CHECK(mbr_modified(link_outside) == -EINVAL);
	CHECK(mbr_modified(logical_outside) == -EINVAL);
	CHECK(mbr_modified(logical_at_ebr) == -EINVAL);
	CHECK(mbr_modified(logical_over_ebr) == -EINVAL);
	CHECK(mbr_modified(primary_past_end) == -EINVAL);
	CHECK(mbr_modified(primary_huge) == -EINVAL);
	CHECK(mbr_modified(primary_at_zero) == -EINVAL);
	CHECK(mbr_modified(primaries_overlap) == -EINVAL);
	CHECK(mbr_modified(primary_in_extended) == -EINVAL);
	CHECK(mbr_modified(blank_first_ebr) == 0);
	CHECK(mbr_modified(empty_slot) == 0);
}

/* An extended partition holding @n logical partitions of one sector. */
static int logicals(int n)
{
	struct img im = img_new(1 << 20);
	struct wtg_disk d;

	mbr_entry(im.b, 0, 0, 0x05, 2, 2 * (uint32_t)n + 2);
	for (int i = 0; i < n; i++) {
		uint8_t *s = im.b + (2 + 2 * (uint64_t)i) * 512;
		mbr_entry(s, 0, 0, 0x83, 1, 1);
		if (i + 1 < n)
			mbr_entry(s, 1, 0, 0x05, 2 * (uint32_t)(i + 1), 2);
	}
	int ret = parse(&im, 0, &d);
	if (ret == 0) {
		CHECK(d.nparts == n + 1);
		CHECK(d.parts[d.nparts - 1].number == 4 + n);
		CHECK(d.parts[d.nparts - 1].start == (3 + 2 * (uint64_t)(n - 1)) * 512);
	}
	wtg_disk_release(&d);
	free(im.b);
	return ret;
}

TEST(mbr_logical_limit)
{
	CHECK(logicals(1) == 0);
	CHECK(logicals(128) == 0);
	CHECK(logicals(129) == -EINVAL);
	CHECK(logicals(400) == -EINVAL);
}

TEST(no_table)
{
	struct img im = img_new(1 << 20);
	struct wtg_disk d;

	/* blank */
	CHECK(parse(&im, 0, &d) == 0 && d.scheme == WTG_DISK_NONE && d.sector_size == 512);
	/* NTFS boot sector */
	im.b[0] = 0xEB;
	memcpy(im.b + 3, "NTFS    ", 8);
	mbr_entry(im.b, 0, 0, 0x07, 1, 100); /* bytes that look like an entry */
	CHECK(parse(&im, 0, &d) == 0 && d.scheme == WTG_DISK_NONE);
	/* FAT32 boot sector */
	memcpy(im.b + 3, "MSDOS5.0", 8);
	memcpy(im.b + 0x52, "FAT32   ", 8);
	CHECK(parse(&im, 0, &d) == 0 && d.scheme == WTG_DISK_NONE);
	/* an entry with a status other than 0 or 0x80: not an MBR */
	memset(im.b, 0, 512);
	mbr_entry(im.b, 0, 0x12, 0x07, 1, 100);
	CHECK(parse(&im, 0, &d) == 0 && d.scheme == WTG_DISK_NONE);
	/* an MBR with no partitions */
	mbr_entry(im.b, 0, 0, 0, 0, 0);
	CHECK(parse(&im, 0, &d) == 0 && d.scheme == WTG_DISK_MBR && d.nparts == 0);
	/* smaller than a sector */
	im.size = 100;
	CHECK(parse(&im, 0, &d) == 0 && d.scheme == WTG_DISK_NONE);
	im.size = 0;
	CHECK(parse(&im, 0, &d) == 0 && d.scheme == WTG_DISK_NONE);
	free(im.b);
}

TEST(bad_arguments_and_reads)
{
	struct gpt_layout l;
	struct img im = gpt_std(512, &l);
	struct wtg_disk d;

	CHECK(parse(&im, 777, &d) == -EINVAL);
	CHECK(parse(&im, 256, &d) == -EINVAL);
	CHECK(parse(&im, 1 << 17, &d) == -EINVAL);
	im.fail = 1;
	CHECK(parse(&im, 0, &d) == -EIO);
	CHECK(d.parts == NULL);
	free(im.b);
}

TEST(type_names)
{
	struct wtg_partition p = {0};

	p.mbr_type = 0xEE;
	CHECK(!strcmp(wtg_partition_type_name(&p), "GPT protective"));
	p.mbr_type = 0xEF;
	CHECK(!strcmp(wtg_partition_type_name(&p), "EFI"));
	p.mbr_type = 0x99;
	CHECK(wtg_partition_type_name(&p) == NULL);
	p.gpt = true;
	guid("0FC63DAF-8483-4772-8E79-3D69D8477DE4", p.type_guid);
	CHECK(!strcmp(wtg_partition_type_name(&p), "Linux filesystem"));
	guid("00000000-0000-0000-0000-000000000001", p.type_guid);
	CHECK(wtg_partition_type_name(&p) == NULL);
}

int main(void)
{
	wtg_log_to_syslog(false);
	RUN(crc32);
	RUN(guid_string);
	RUN(gpt_512);
	RUN(gpt_4096);
	RUN(gpt_backup);
	RUN(gpt_both_bad);
	RUN(gpt_bad_fields);
	RUN(gpt_partitions);
	RUN(gpt_truncated);
	RUN(gpt_needs_protective_mbr);
	RUN(mbr);
	RUN(mbr_chain);
	RUN(mbr_logical_limit);
	RUN(no_table);
	RUN(bad_arguments_and_reads);
	RUN(type_names);
	CHECK(reads_outside == 0);
	UNIT_EXIT();
}
