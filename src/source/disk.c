/*
 * The partition-table parser for disk images: finds the MBR in sector 0,
 * tells a partition table from a bare file system's boot sector, follows a
 * protective MBR to the GPT (primary header at LBA 1, backup at the last
 * LBA, either sector size), and follows extended partitions through their
 * chain of EBRs.  Every field is checked against the disk's size and its
 * neighbours before it is used; see include/wtgfs/disk.h for the contract.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "wtgfs/disk.h"
#include "wtgfs/log.h"

/* ---- on-disk structures ---- */

struct mbr_entry {
	uint8_t status;	      /* 0x00: 0x80 active, 0x00 not */
	uint8_t chs_first[3]; /* 0x01 */
	uint8_t type;	      /* 0x04 */
	uint8_t chs_last[3];  /* 0x05 */
	uint32_t lba;	      /* 0x08 le32: first sector */
	uint32_t sectors;     /* 0x0C le32 */
} __attribute__((packed));
_Static_assert(sizeof(struct mbr_entry) == 16, "MBR entry is 16 bytes");

struct mbr {
	uint8_t code[440];	   /* 0x000 */
	uint32_t signature;	   /* 0x1B8 le32: disk signature */
	uint16_t reserved;	   /* 0x1BC */
	struct mbr_entry entry[4]; /* 0x1BE */
	uint8_t boot_signature[2]; /* 0x1FE: 55 AA */
} __attribute__((packed));
_Static_assert(sizeof(struct mbr) == 512, "MBR is 512 bytes");

struct gpt_header {
	char signature[8];	/* 0x00: "EFI PART" */
	uint32_t revision;	/* 0x08 le32 */
	uint32_t header_size;	/* 0x0C le32 */
	uint32_t header_crc;	/* 0x10 le32: CRC32 of header_size bytes, this field 0 */
	uint32_t reserved;	/* 0x14 */
	uint64_t my_lba;	/* 0x18 le64 */
	uint64_t alternate_lba; /* 0x20 le64 */
	uint64_t first_usable;	/* 0x28 le64 */
	uint64_t last_usable;	/* 0x30 le64 */
	uint8_t disk_guid[16];	/* 0x38 */
	uint64_t entries_lba;	/* 0x48 le64 */
	uint32_t num_entries;	/* 0x50 le32 */
	uint32_t entry_size;	/* 0x54 le32 */
	uint32_t entries_crc;	/* 0x58 le32: CRC32 of num_entries * entry_size bytes */
} __attribute__((packed));
_Static_assert(sizeof(struct gpt_header) == 92, "GPT header is 92 bytes");

struct gpt_entry {
	uint8_t type_guid[16]; /* 0x00: all zero for an unused entry */
	uint8_t part_guid[16]; /* 0x10 */
	uint64_t first_lba;    /* 0x20 le64 */
	uint64_t last_lba;     /* 0x28 le64: inclusive */
	uint64_t attrs;	       /* 0x30 le64 */
	uint16_t name[36];     /* 0x38 le16: UTF-16, NUL-padded */
} __attribute__((packed));
_Static_assert(sizeof(struct gpt_entry) == 128, "GPT entry is 128 bytes");

#define MBR_TYPE_PROTECTIVE 0xEE
/* Larger partition arrays are not seen in the wild (128 entries is 16 KiB). */
#define GPT_MAX_ARRAY (1u << 20)
/* Empty EBRs are legal; bound the chain anyway. */
#define MAX_EBRS (2 * WTG_DISK_MAX_LOGICAL)

/* ---- CRC32 ---- */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

uint32_t wtg_crc32(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	pthread_once(&crc_once, crc_table_init);
	crc = ~crc;
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
	return ~crc;
}

/* ---- helpers ---- */

struct ctx {
	wtg_disk_read_fn read;
	void *rctx;
	uint64_t size;
	const char *what;
	struct wtg_disk *disk;
	int cap; /* of disk->parts */
};

/* Reads @n bytes at @off, which the caller has checked lie on the disk. */
static int read_at(struct ctx *c, void *buf, size_t n, uint64_t off)
{
	int ret = c->read(c->rctx, buf, n, off);

	if (ret < 0)
		wtg_error("'%s': cannot read the partition table: %s", c->what, strerror(-ret));
	return ret;
}

static struct wtg_partition *add_part(struct ctx *c)
{
	struct wtg_disk *d = c->disk;

	if (d->nparts == c->cap) {
		int cap = c->cap ? c->cap * 2 : 8;
		struct wtg_partition *p = realloc(d->parts, (size_t)cap * sizeof(*p));
		if (!p)
			return NULL;
		d->parts = p;
		c->cap = cap;
	}
	memset(&d->parts[d->nparts], 0, sizeof(d->parts[0]));
	return &d->parts[d->nparts++];
}

/* A run of sectors that nothing else may share: a data partition, or (with
 * number 0) an extended boot record. */
struct span {
	uint64_t start, end; /* sectors, end exclusive */
	int number;
};

static int span_cmp(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->end < y->end ? -1 : x->end > y->end;
}

static int check_overlaps(struct ctx *c, struct span *s, size_t n)
{
	qsort(s, n, sizeof(*s), span_cmp);
	for (size_t i = 1; i < n; i++) {
		if (s[i].start >= s[i - 1].end)
			continue;
		if (!s[i - 1].number || !s[i].number)
			wtg_error("'%s': partition %d overlaps an extended boot record", c->what,
				  s[i - 1].number ? s[i - 1].number : s[i].number);
		else
			wtg_error("'%s': partitions %d and %d overlap", c->what,
				  s[i - 1].number < s[i].number ? s[i - 1].number : s[i].number,
				  s[i - 1].number < s[i].number ? s[i].number : s[i - 1].number);
		return -EINVAL;
	}
	return 0;
}

static bool mbr_is_extended(uint8_t type)
{
	return type == 0x05 || type == 0x0F || type == 0x85;
}

static bool has_boot_signature(const struct mbr *m)
{
	return m->boot_signature[0] == 0x55 && m->boot_signature[1] == 0xAA;
}

/* A file system's boot sector also ends in 55 AA; its OEM name or BPB tells
 * it from an MBR. */
static bool is_fs_boot_sector(const uint8_t *b)
{
	if (!memcmp(b + 3, "NTFS    ", 8) || !memcmp(b + 3, "EXFAT   ", 8) ||
	    !memcmp(b + 3, "ReFS\0\0\0\0", 8))
		return true;
	if (b[0] != 0xEB && b[0] != 0xE9)
		return false;
	return !memcmp(b + 0x36, "FAT", 3) || !memcmp(b + 0x52, "FAT32   ", 8);
}

/* ---- MBR ---- */

/* What the EBR chains of all extended partitions have found so far. */
struct chains {
	uint64_t seen[MAX_EBRS]; /* EBR sectors, for loop detection */
	int nseen;
	int nlogical;
	struct span spans[4 + 2 * MAX_EBRS]; /* primaries; per EBR, itself and its data */
	size_t nspans;
};

/* Follows the chain of EBRs of the extended partition in sectors
 * [ext_start, ext_end), adding its logical partitions. */
static int read_ebr_chain(struct ctx *c, uint64_t ext_start, uint64_t ext_end, struct chains *ch)
{
	uint32_t ss = c->disk->sector_size;
	uint64_t ebr = ext_start;
	struct mbr m;
	int ret;

	for (;;) {
		for (int i = 0; i < ch->nseen; i++) {
			if (ch->seen[i] == ebr) {
				wtg_error("'%s': loop in the extended-partition chain", c->what);
				return -EINVAL;
			}
		}
		if (ch->nseen == MAX_EBRS) {
			wtg_error("'%s': extended-partition chain is longer than %d records",
				  c->what, MAX_EBRS);
			return -EINVAL;
		}
		ch->seen[ch->nseen++] = ebr;
		/* ebr < ext_end <= size / ss: no overflow, and on the disk */
		ret = read_at(c, &m, sizeof(m), ebr * ss);
		if (ret < 0)
			return ret;
		/* Linux ends the chain quietly here too: a fresh extended partition
		 * holds a blank sector. */
		if (!has_boot_signature(&m))
			return 0;
		ch->spans[ch->nspans++] = (struct span){ebr, ebr + 1, 0};

		const struct mbr_entry *data = NULL, *link = NULL;
		for (int i = 0; i < 4; i++) {
			const struct mbr_entry *e = &m.entry[i];
			if (!e->type || !le32toh(e->sectors))
				continue;
			if (mbr_is_extended(e->type)) {
				if (!link)
					link = e;
			} else if (!data) {
				data = e;
			}
		}
		if (data) {
			uint64_t rel = le32toh(data->lba), n = le32toh(data->sectors);
			int number = 5 + ch->nlogical;

			if (ch->nlogical == WTG_DISK_MAX_LOGICAL) {
				wtg_error("'%s': more than %d logical partitions", c->what,
					  WTG_DISK_MAX_LOGICAL);
				return -EINVAL;
			}
			if (!rel || ebr + rel + n > ext_end) {
				wtg_error("'%s': logical partition %d lies outside its extended "
					  "partition",
					  c->what, number);
				return -EINVAL;
			}
			struct wtg_partition *p = add_part(c);
			if (!p)
				return -ENOMEM;
			p->number = number;
			p->start = (ebr + rel) * ss;
			p->size = n * ss;
			p->mbr_type = data->type;
			p->bootable = data->status == 0x80;
			ch->spans[ch->nspans++] = (struct span){ebr + rel, ebr + rel + n, number};
			ch->nlogical++;
		}
		if (!link)
			return 0;
		uint64_t next = ext_start + le32toh(link->lba);
		if (next >= ext_end) {
			wtg_error("'%s': extended-partition chain leaves its extended partition",
				  c->what);
			return -EINVAL;
		}
		ebr = next;
	}
}

static int read_mbr(struct ctx *c, const struct mbr *m)
{
	struct wtg_disk *d = c->disk;
	uint64_t sectors = c->size / d->sector_size;
	struct chains *ch;
	int ret = 0;

	d->scheme = WTG_DISK_MBR;
	ch = calloc(1, sizeof(*ch));
	if (!ch)
		return -ENOMEM;
	for (int i = 0; i < 4; i++) {
		const struct mbr_entry *e = &m->entry[i];
		uint64_t start = le32toh(e->lba), n = le32toh(e->sectors);

		if (!e->type || !n)
			continue;
		if (!start) {
			wtg_error("'%s': partition %d starts at sector 0, over the partition table",
				  c->what, i + 1);
			ret = -EINVAL;
			goto out;
		}
		if (start + n > sectors) {
			wtg_error("'%s': partition %d runs past the end of the disk", c->what,
				  i + 1);
			ret = -EINVAL;
			goto out;
		}
		for (int j = 0; j < i; j++) {
			const struct mbr_entry *o = &m->entry[j];
			uint64_t os = le32toh(o->lba), on = le32toh(o->sectors);
			if (o->type && on && start < os + on && os < start + n) {
				wtg_error("'%s': partitions %d and %d overlap", c->what, j + 1,
					  i + 1);
				ret = -EINVAL;
				goto out;
			}
		}
		struct wtg_partition *p = add_part(c);
		if (!p) {
			ret = -ENOMEM;
			goto out;
		}
		p->number = i + 1;
		p->start = start * d->sector_size;
		p->size = n * d->sector_size;
		p->mbr_type = e->type;
		p->bootable = e->status == 0x80;
		p->extended = mbr_is_extended(e->type);
		if (!p->extended)
			ch->spans[ch->nspans++] = (struct span){start, start + n, i + 1};
	}
	for (int i = 0; i < 4; i++) {
		const struct mbr_entry *e = &m->entry[i];
		uint64_t start = le32toh(e->lba), n = le32toh(e->sectors);

		if (!e->type || !n || !mbr_is_extended(e->type))
			continue;
		ret = read_ebr_chain(c, start, start + n, ch);
		if (ret < 0)
			goto out;
	}
	ret = check_overlaps(c, ch->spans, ch->nspans);
out:
	free(ch);
	return ret;
}

/* ---- GPT ---- */

static void utf16_name(const struct gpt_entry *e, char *out, size_t cap)
{
	size_t o = 0;

	for (int i = 0; i < 36; i++) {
		uint32_t u = le16toh(e->name[i]);

		if (!u)
			break;
		if (u >= 0xD800 && u < 0xDC00 && i + 1 < 36) {
			uint32_t lo = le16toh(e->name[i + 1]);
			if (lo >= 0xDC00 && lo < 0xE000) {
				u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
				i++;
			}
		}
		if (u >= 0xD800 && u < 0xE000)
			u = 0xFFFD; /* an unpaired surrogate */
		if (o + 5 > cap)
			break;
		if (u < 0x80) {
			out[o++] = (char)u;
		} else if (u < 0x800) {
			out[o++] = (char)(0xC0 | u >> 6);
			out[o++] = (char)(0x80 | (u & 0x3F));
		} else if (u < 0x10000) {
			out[o++] = (char)(0xE0 | u >> 12);
			out[o++] = (char)(0x80 | ((u >> 6) & 0x3F));
			out[o++] = (char)(0x80 | (u & 0x3F));
		} else {
			out[o++] = (char)(0xF0 | u >> 18);
			out[o++] = (char)(0x80 | ((u >> 12) & 0x3F));
			out[o++] = (char)(0x80 | ((u >> 6) & 0x3F));
			out[o++] = (char)(0x80 | (u & 0x3F));
		}
	}
	out[o] = '\0';
}

/* 1 when a GPT header's signature is at @lba, 0 when not, or -errno. */
static int gpt_signature_at(struct ctx *c, uint32_t ss, uint64_t lba)
{
	char sig[8];
	int ret;

	if (lba >= c->size / ss)
		return 0;
	ret = read_at(c, sig, sizeof(sig), lba * ss);
	if (ret < 0)
		return ret;
	return !memcmp(sig, "EFI PART", sizeof(sig));
}

/* Reads and checks the GPT header at @lba and its partition array.  Returns
 * 0 with the header in @h and the array in @array_ret, a negative errno,
 * or 1 with what is wrong in @why. */
static int gpt_load(struct ctx *c, uint32_t ss, uint64_t lba, struct gpt_header *h,
		    uint8_t **array_ret, const char **why)
{
	uint64_t last_lba = c->size / ss - 1;
	uint8_t *sector, *array = NULL;
	int ret;

	*array_ret = NULL;
	if (c->size / ss < 3 || lba > last_lba) {
		*why = "is missing";
		return 1;
	}
	sector = malloc(ss);
	if (!sector)
		return -ENOMEM;
	ret = read_at(c, sector, ss, lba * ss);
	if (ret < 0)
		goto out;
	ret = 1;
	memcpy(h, sector, sizeof(*h));
	if (memcmp(h->signature, "EFI PART", 8)) {
		*why = "is missing";
		goto out;
	}
	uint32_t hsize = le32toh(h->header_size);
	if (hsize < sizeof(*h) || hsize > ss) {
		*why = "has a bad size";
		goto out;
	}
	uint32_t crc = le32toh(h->header_crc);
	memset(sector + offsetof(struct gpt_header, header_crc), 0, 4);
	if (wtg_crc32(0, sector, hsize) != crc) {
		*why = "has a bad CRC";
		goto out;
	}
	if (le64toh(h->my_lba) != lba) {
		*why = "is not where it says it is";
		goto out;
	}
	/* last_usable may lie past a truncated disk's end: each partition is
	 * checked against the end of the disk, which names the culprit. */
	uint64_t first = le64toh(h->first_usable), last = le64toh(h->last_usable);
	if (first < 2 || first > last || (lba >= first && lba <= last)) {
		*why = "has a bad usable range";
		goto out;
	}
	uint32_t esize = le32toh(h->entry_size), nent = le32toh(h->num_entries);
	if (esize < sizeof(struct gpt_entry) || esize % 8) {
		*why = "has a bad partition-entry size";
		goto out;
	}
	uint64_t bytes = (uint64_t)nent * esize;
	if (bytes > GPT_MAX_ARRAY) {
		*why = "has too large a partition array";
		goto out;
	}
	uint64_t alba = le64toh(h->entries_lba), asectors = (bytes + ss - 1) / ss;
	if (!alba || alba > last_lba || asectors > last_lba + 1 - alba ||
	    (alba <= lba && lba < alba + asectors) || (alba + asectors > first && alba <= last)) {
		*why = "has its partition array out of place";
		goto out;
	}
	array = malloc(bytes ? bytes : 1);
	if (!array) {
		ret = -ENOMEM;
		goto out;
	}
	if (bytes) {
		int r = read_at(c, array, bytes, alba * ss);
		if (r < 0) {
			ret = r;
			goto out;
		}
	}
	if (wtg_crc32(0, array, bytes) != le32toh(h->entries_crc)) {
		*why = "has a partition array with a bad CRC";
		goto out;
	}
	*array_ret = array;
	array = NULL;
	ret = 0;
out:
	free(array);
	free(sector);
	return ret;
}

static int gpt_parts(struct ctx *c, const struct gpt_header *h, const uint8_t *array)
{
	struct wtg_disk *d = c->disk;
	uint32_t ss = d->sector_size;
	uint32_t esize = le32toh(h->entry_size), nent = le32toh(h->num_entries);
	uint64_t first = le64toh(h->first_usable), last = le64toh(h->last_usable);
	uint64_t sectors = c->size / ss;
	static const uint8_t zero[16];
	struct span *spans;
	size_t nspans = 0;
	int ret = 0;

	spans = calloc(nent ? nent : 1, sizeof(*spans));
	if (!spans)
		return -ENOMEM;
	for (uint32_t i = 0; i < nent; i++) {
		const struct gpt_entry *e = (const void *)(array + (size_t)i * esize);
		uint64_t s = le64toh(e->first_lba), l = le64toh(e->last_lba);
		int number = (int)i + 1;

		if (!memcmp(e->type_guid, zero, 16))
			continue;
		if (s > l) {
			wtg_error("'%s': partition %d ends before it starts", c->what, number);
			ret = -EINVAL;
			goto out;
		}
		if (l >= sectors) {
			wtg_error("'%s': partition %d runs past the end of the disk", c->what,
				  number);
			ret = -EINVAL;
			goto out;
		}
		if (s < first || l > last) {
			wtg_error("'%s': partition %d lies outside the usable area of the GPT",
				  c->what, number);
			ret = -EINVAL;
			goto out;
		}
		struct wtg_partition *p = add_part(c);
		if (!p) {
			ret = -ENOMEM;
			goto out;
		}
		p->number = number;
		p->start = s * ss;
		p->size = (l - s + 1) * ss;
		p->gpt = true;
		memcpy(p->type_guid, e->type_guid, 16);
		memcpy(p->part_guid, e->part_guid, 16);
		p->gpt_attrs = le64toh(e->attrs);
		utf16_name(e, p->name, sizeof(p->name));
		spans[nspans++] = (struct span){s, l + 1, number};
	}
	ret = check_overlaps(c, spans, nspans);
out:
	free(spans);
	return ret;
}

static int read_gpt(struct ctx *c, uint32_t sector_size)
{
	struct wtg_disk *d = c->disk;
	uint32_t sizes[2] = {sector_size ? sector_size : 512, 4096};
	int nsizes = sector_size ? 1 : 2;
	uint32_t ss = 0;
	struct gpt_header h;
	uint8_t *array;
	const char *why_primary = "", *why_backup = "";
	int ret;

	/* the sector size is the one at which a header is found, primary first */
	for (int pass = 0; pass < 2 && !ss; pass++) {
		for (int i = 0; i < nsizes && !ss; i++) {
			if (c->size / sizes[i] < 3)
				continue;
			ret = gpt_signature_at(c, sizes[i], pass ? c->size / sizes[i] - 1 : 1);
			if (ret < 0)
				return ret;
			if (ret)
				ss = sizes[i];
		}
	}
	if (!ss) {
		wtg_error("'%s': protective MBR but no GPT header", c->what);
		return -EINVAL;
	}
	d->scheme = WTG_DISK_GPT;
	d->sector_size = ss;
	ret = gpt_load(c, ss, 1, &h, &array, &why_primary);
	if (ret == 1) {
		ret = gpt_load(c, ss, c->size / ss - 1, &h, &array, &why_backup);
		if (ret == 1) {
			wtg_error("'%s': no valid GPT header: the primary %s, the backup %s",
				  c->what, why_primary, why_backup);
			return -EINVAL;
		}
		if (ret == 0)
			wtg_warning("'%s': the primary GPT header %s, using the backup", c->what,
				    why_primary);
	}
	if (ret < 0)
		return ret;
	memcpy(d->disk_guid, h.disk_guid, 16);
	ret = gpt_parts(c, &h, array);
	free(array);
	return ret;
}

/* ---- entry point ---- */

int wtg_disk_read(wtg_disk_read_fn read, void *ctx, uint64_t size, uint32_t sector_size,
		  const char *what, struct wtg_disk *disk)
{
	struct ctx c = {.read = read, .rctx = ctx, .size = size, .what = what, .disk = disk};
	struct mbr m;
	bool protective = false;
	int ret;

	memset(disk, 0, sizeof(*disk));
	disk->size = size;
	if (sector_size &&
	    (sector_size < 512 || sector_size > 65536 || (sector_size & (sector_size - 1)))) {
		wtg_error("'%s': sector size %" PRIu32 " is not supported", what, sector_size);
		return -EINVAL;
	}
	disk->sector_size = sector_size ? sector_size : 512;
	if (size < sizeof(m) || size < disk->sector_size)
		return 0;
	ret = read_at(&c, &m, sizeof(m), 0);
	if (ret < 0)
		return ret;
	if (!has_boot_signature(&m) || is_fs_boot_sector((const uint8_t *)&m))
		goto none;
	for (int i = 0; i < 4; i++) {
		if (m.entry[i].status != 0 && m.entry[i].status != 0x80)
			goto none;
		if (m.entry[i].type == MBR_TYPE_PROTECTIVE)
			protective = true;
	}
	disk->mbr_signature = le32toh(m.signature);
	if (protective)
		ret = read_gpt(&c, sector_size);
	else
		ret = read_mbr(&c, &m);
	if (ret < 0)
		goto fail;
none:
	if (!protective) {
		ret = gpt_signature_at(&c, disk->sector_size, 1);
		if (ret < 0)
			goto fail;
		if (ret)
			wtg_warning("'%s': GPT header without a protective MBR, %s", what,
				    disk->scheme == WTG_DISK_MBR ? "using the MBR" : "ignored");
	}
	return 0;
fail:
	wtg_disk_release(disk);
	disk->size = size;
	return ret;
}

void wtg_disk_release(struct wtg_disk *disk)
{
	free(disk->parts);
	memset(disk, 0, sizeof(*disk));
}

/* ---- names ---- */

void wtg_guid_to_string(const uint8_t g[16], char out[37])
{
	static const char hex[] = "0123456789ABCDEF";
	/* the first three groups are little-endian on disk */
	static const int order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
	int o = 0;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[g[order[i]] >> 4];
		out[o++] = hex[g[order[i]] & 15];
	}
	out[o] = '\0';
}

static const struct {
	const char *guid, *name;
} gpt_types[] = {
    {"C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "EFI System"},
    {"024DEE41-33E7-11D3-9D69-0008C781F39F", "MBR partition scheme"},
    {"21686148-6449-6E6F-744E-656564454649", "BIOS boot"},
    {"E3C9E316-0B5C-4DB8-817D-F92DF00215AE", "Microsoft reserved"},
    {"EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", "Microsoft basic data"},
    {"DE94BBA4-06D1-4D40-A16A-BFD50179D6AC", "Windows recovery environment"},
    {"5808C8AA-7E8F-42E0-85D2-E1E90434CFB3", "Microsoft LDM metadata"},
    {"AF9B60A0-1431-4F62-BC68-3311714A69AD", "Microsoft LDM data"},
    {"E75CAF8F-F680-4CEE-AFA3-B001E56EFC2D", "Microsoft Storage Spaces"},
    {"0FC63DAF-8483-4772-8E79-3D69D8477DE4", "Linux filesystem"},
    {"0657FD6D-A4AB-43C4-84E5-0933C84B4F4F", "Linux swap"},
    {"E6D6D379-F507-44C2-A23C-238F2A3DF928", "Linux LVM"},
    {"A19D880F-05FC-4D3B-A006-743F0F84911E", "Linux RAID"},
    {"4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", "Linux root (x86-64)"},
    {"BC13C2FF-59E6-4262-A352-B275FD6F7172", "Linux extended boot"},
};

static const struct {
	uint8_t type;
	const char *name;
} mbr_types[] = {
    {0x01, "FAT12"},
    {0x04, "FAT16 <32M"},
    {0x05, "Extended"},
    {0x06, "FAT16"},
    {0x07, "NTFS/exFAT"},
    {0x0b, "FAT32"},
    {0x0c, "FAT32 LBA"},
    {0x0e, "FAT16 LBA"},
    {0x0f, "Extended LBA"},
    {0x17, "Hidden NTFS/exFAT"},
    {0x1b, "Hidden FAT32"},
    {0x1c, "Hidden FAT32 LBA"},
    {0x27, "Windows recovery environment"},
    {0x42, "Windows dynamic"},
    {0x82, "Linux swap"},
    {0x83, "Linux"},
    {0x85, "Linux extended"},
    {0x8e, "Linux LVM"},
    {0xee, "GPT protective"},
    {0xef, "EFI"},
    {0xfd, "Linux RAID"},
};

const char *wtg_partition_type_name(const struct wtg_partition *p)
{
	if (p->gpt) {
		char s[37];
		wtg_guid_to_string(p->type_guid, s);
		for (size_t i = 0; i < sizeof(gpt_types) / sizeof(gpt_types[0]); i++)
			if (!strcmp(s, gpt_types[i].guid))
				return gpt_types[i].name;
		return NULL;
	}
	for (size_t i = 0; i < sizeof(mbr_types) / sizeof(mbr_types[0]); i++)
		if (mbr_types[i].type == p->mbr_type)
			return mbr_types[i].name;
	return NULL;
}
