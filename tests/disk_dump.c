/*
 * disk_dump IMAGE [SECTOR_SIZE]: prints the partition table wtg_disk_read()
 * finds in a plain file as JSON lines, one for the disk and one per
 * partition, for tests/disk-tables.sh to compare with `sfdisk --json`.
 * Exits 0, or 1 after the parser's one-line error.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wtgfs/disk.h"
#include "wtgfs/fileio.h"
#include "wtgfs/log.h"

static int file_read(void *ctx, void *buf, size_t size, uint64_t off)
{
	return wtg_pread_all(*(int *)ctx, buf, size, off);
}

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

int main(int argc, char **argv)
{
	struct wtg_disk disk;
	struct stat st;
	char guid[37];
	int fd;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: disk_dump IMAGE [SECTOR_SIZE]\n");
		return 2;
	}
	fd = open(argv[1], O_RDONLY);
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "disk_dump: cannot open '%s': %s\n", argv[1], strerror(errno));
		return 2;
	}
	wtg_log_to_syslog(false);
	uint32_t ss = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 0) : 0;
	if (wtg_disk_read(file_read, &fd, (uint64_t)st.st_size, ss, argv[1], &disk) < 0)
		return 1;

	static const char *const schemes[] = {"none", "mbr", "gpt"};
	printf("{\"scheme\":\"%s\",\"sector_size\":%" PRIu32 ",\"size\":%" PRIu64,
	       schemes[disk.scheme], disk.sector_size, disk.size);
	if (disk.scheme == WTG_DISK_GPT) {
		wtg_guid_to_string(disk.disk_guid, guid);
		printf(",\"id\":\"%s\"", guid);
	} else if (disk.scheme == WTG_DISK_MBR) {
		printf(",\"id\":\"0x%08" PRIx32 "\"", disk.mbr_signature);
	}
	printf("}\n");
	for (int i = 0; i < disk.nparts; i++) {
		const struct wtg_partition *p = &disk.parts[i];
		const char *tname = wtg_partition_type_name(p);

		printf("{\"number\":%d,\"start\":%" PRIu64 ",\"size\":%" PRIu64, p->number,
		       p->start, p->size);
		if (p->gpt) {
			wtg_guid_to_string(p->type_guid, guid);
			printf(",\"type\":\"%s\"", guid);
			wtg_guid_to_string(p->part_guid, guid);
			printf(",\"uuid\":\"%s\",\"name\":", guid);
			json_string(p->name);
			printf(",\"attrs\":%" PRIu64, p->gpt_attrs);
		} else {
			/* as sfdisk prints it: hex without leading zeros */
			printf(",\"type\":\"%x\"", p->mbr_type);
		}
		printf(",\"bootable\":%s,\"type_name\":", p->bootable ? "true" : "false");
		if (tname)
			json_string(tname);
		else
			printf("null");
		printf("}\n");
	}
	wtg_disk_release(&disk);
	close(fd);
	return 0;
}
