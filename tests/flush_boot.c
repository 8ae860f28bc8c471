/*
 * flush_boot: drives the boot side of a flush on its own, for the shell
 * tests (tests/flush-boot.sh) to check the ESP, the BCD and the SYSTEM hive
 * with outside tools.
 *   flush_boot check IMAGE|DELTA
 *   flush_boot esp IMAGE|DELTA ESP_FILE gpt|mbr SECTOR ESP_OFFSET WIN_OFFSET
 *              DISK_ID ESP_GUID WIN_GUID [--no-wtg-tweaks]
 *       builds the ESP file for a disk laid out so (offsets in bytes; for
 *       mbr DISK_ID is the signature in hex and the GUIDs are "-"); ESP_FILE
 *       exists with the partition's size
 *   flush_boot system HIVE_FILE      SanPolicy 4 in a copy of a SYSTEM hive
 * Prints the report's changes on stdout.  Exit 0, or 1 after one line on
 * stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "wtgfs/bcd.h"
#include "wtgfs/flush.h"
#include "wtgfs/view.h"

static int open_view(const char *spec, struct wtg_view **view)
{
	size_t n = strlen(spec);
	if (n > 6 && !strcmp(spec + n - 6, ".delta"))
		return wtg_view_open_delta(spec, NULL, NULL, view);
	return wtg_view_open_image(spec, NULL, view);
}

static void print_report(struct wtg_flush_report *rep)
{
	for (size_t i = 0; i < rep->nchanges; i++)
		printf("%s\n", rep->changes[i]);
	wtg_flush_report_release(rep);
}

int main(int argc, char **argv)
{
	struct wtg_flush_report rep = {0};
	struct wtg_view *view;
	int ret;

	if (argc == 3 && !strcmp(argv[1], "system")) {
		ret = wtg_flush_tweak_system_hive(argv[2], &rep);
		print_report(&rep);
		return ret ? 1 : 0;
	}
	if (argc == 3 && !strcmp(argv[1], "check")) {
		if (open_view(argv[2], &view))
			return 1;
		ret = wtg_flush_check_boot(view);
		wtg_view_close(view);
		return ret ? 1 : 0;
	}
	if ((argc != 11 && argc != 12) || strcmp(argv[1], "esp")) {
		fprintf(stderr, "usage: see tests/flush_boot.c\n");
		return 2;
	}
	struct wtg_flush_layout l = {0};
	struct wtg_flush_options opt = {0};
	l.scheme = strcmp(argv[4], "mbr") ? WTG_FLUSH_GPT : WTG_FLUSH_MBR;
	l.sector_size = (uint32_t)strtoul(argv[5], NULL, 0);
	l.esp.offset = strtoull(argv[6], NULL, 0);
	l.windows.offset = strtoull(argv[7], NULL, 0);
	struct stat st;
	if (stat(argv[3], &st)) {
		perror(argv[3]);
		return 1;
	}
	l.esp.size = (uint64_t)st.st_size;
	if (l.scheme == WTG_FLUSH_MBR) {
		l.mbr_signature = (uint32_t)strtoul(argv[8], NULL, 16);
	} else if (wtg_bcd_parse_guid(argv[8], l.disk_guid) ||
		   wtg_bcd_parse_guid(argv[9], l.esp.guid) ||
		   wtg_bcd_parse_guid(argv[10], l.windows.guid)) {
		fprintf(stderr, "flush_boot: bad GUID\n");
		return 2;
	}
	opt.scheme = l.scheme;
	opt.no_wtg_tweaks = argc == 12 && !strcmp(argv[11], "--no-wtg-tweaks");
	if (open_view(argv[2], &view))
		return 1;
	ret = wtg_flush_check_boot(view);
	if (!ret)
		ret = wtg_flush_build_esp(view, &l, &opt, argv[3], &rep);
	wtg_view_close(view);
	print_report(&rep);
	return ret ? 1 : 0;
}
