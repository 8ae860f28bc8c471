/*
 * wtgfs info IMAGE [--json]: the images in a WIM.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "wtgfs/disk_image.h"
#include "wtgfs/source.h"
#include "wtgfs/wim.h"

static const char usage[] = "usage: wtgfs info IMAGE [--json]\n"
			    "\n"
			    "Lists the images in a WIM or ESD file: index, name, file and\n"
			    "directory counts, total bytes, compression and whether it is solid.\n"
			    "For a disk image (VHDX, VHD, raw) or a block device: its partitions,\n"
			    "with type, start, size, file system, label and whether it holds\n"
			    "\\Windows.\n"
			    "\n"
			    "  --json   one JSON object, for scripts\n";

static void print_text(const char *path, const struct wtg_wim_info *info)
{
	printf("%s: WIM, %d image%s, %s, chunk size %u, GUID %s", path, info->image_count,
	       info->image_count == 1 ? "" : "s", info->compression, info->chunk_size, info->guid);
	if (info->boot_index)
		printf(", boot index %d", info->boot_index);
	if (info->total_parts > 1)
		printf(", part %d of %d", info->part_number, info->total_parts);
	if (info->pipable)
		printf(", pipable");
	printf("\n\n%5s  %-28s %9s %9s %15s  %-11s\n", "index", "name", "files", "dirs", "bytes",
	       "compression");
	for (int i = 0; i < info->image_count; i++) {
		const struct wtg_wim_image_info *im = &info->images[i];
		printf("%5d  %-28s %9" PRIu64 " %9" PRIu64 " %15" PRIu64 "  %s%s\n", im->index,
		       im->name, im->files, im->directories, im->total_bytes, im->compression,
		       im->solid ? " (solid)" : "");
	}
}

static void print_json(const char *path, const struct wtg_wim_info *info)
{
	printf("{\"path\":");
	cli_json_string(stdout, path);
	printf(",\"format\":\"wim\",\"guid\":\"%s\",\"image_count\":%d,\"boot_index\":%d,"
	       "\"chunk_size\":%u,\"compression\":\"%s\",\"part_number\":%d,\"total_parts\":%d,"
	       "\"pipable\":%s,\"file_size\":%" PRIu64 ",\"images\":[",
	       info->guid, info->image_count, info->boot_index, info->chunk_size, info->compression,
	       info->part_number, info->total_parts, info->pipable ? "true" : "false",
	       info->file_size);
	for (int i = 0; i < info->image_count; i++) {
		const struct wtg_wim_image_info *im = &info->images[i];
		printf("%s{\"index\":%d,\"name\":", i ? "," : "", im->index);
		cli_json_string(stdout, im->name);
		if (im->description) {
			printf(",\"description\":");
			cli_json_string(stdout, im->description);
		}
		printf(",\"files\":%" PRIu64 ",\"directories\":%" PRIu64 ",\"total_bytes\":%" PRIu64
		       ",\"compression\":\"%s\",\"solid\":%s}",
		       im->files, im->directories, im->total_bytes, im->compression,
		       im->solid ? "true" : "false");
	}
	printf("]}\n");
}

static void print_disk_text(const char *path, const struct wtg_disk_report *r)
{
	printf("%s: %s disk, %" PRIu64 " bytes, %u-byte sectors, %s", path, r->format, r->size,
	       r->sector_size,
	       !strcmp(r->scheme, "gpt")   ? "GPT"
	       : !strcmp(r->scheme, "mbr") ? "MBR"
					   : "no partition table");
	if (r->disk_id[0])
		printf(", disk id %s", r->disk_id);
	printf("\n\n%4s  %-22s %14s %15s  %-6s %-16s %s\n", "part", "type", "start", "size", "fs",
	       "label", "windows");
	for (int i = 0; i < r->nvols; i++) {
		const struct wtg_volume_report *v = &r->vols[i];
		printf("%4d  %-22s %14" PRIu64 " %15" PRIu64 "  %-6s %-16s %s\n", v->number,
		       v->type[0] ? v->type : "-", v->start, v->size, v->fs[0] ? v->fs : "-",
		       v->label[0] ? v->label : "-", v->has_windows ? "yes" : "no");
	}
}

static void print_disk_json(const char *path, const struct wtg_disk_report *r)
{
	printf("{\"path\":");
	cli_json_string(stdout, path);
	printf(",\"format\":\"%s\",\"size\":%" PRIu64 ",\"sector_size\":%u,\"scheme\":\"%s\","
	       "\"disk_id\":\"%s\",\"identity\":\"%s\",\"partitions\":[",
	       r->format, r->size, r->sector_size, r->scheme, r->disk_id, r->identity);
	for (int i = 0; i < r->nvols; i++) {
		const struct wtg_volume_report *v = &r->vols[i];
		printf("%s{\"number\":%d,\"type\":", i ? "," : "", v->number);
		cli_json_string(stdout, v->type);
		printf(",\"start\":%" PRIu64 ",\"size\":%" PRIu64 ",\"fs\":\"%s\",\"label\":",
		       v->start, v->size, v->fs);
		cli_json_string(stdout, v->label);
		printf(",\"windows\":%s}", v->has_windows ? "true" : "false");
	}
	printf("]}\n");
}

static int info_disk(const char *path, bool json)
{
	struct wtg_disk_report r;

	if (wtg_disk_image_report(path, &r) < 0)
		return EXIT_ERROR;
	if (json)
		print_disk_json(path, &r);
	else
		print_disk_text(path, &r);
	wtg_disk_report_release(&r);
	return 0;
}

int cmd_info(int argc, char **argv)
{
	const char *path = NULL;
	bool json = false;
	struct wtg_wim_info info;

	if (cli_wants_help(argc, argv, usage))
		return 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (argv[i][0] == '-' && argv[i][1])
			return cli_usage_error(usage, "unknown option '%s'", argv[i]);
		else if (path)
			return cli_usage_error(usage, "one IMAGE at a time");
		else
			path = argv[i];
	}
	if (!path)
		return cli_usage_error(usage, "IMAGE is missing");
	if (!wtg_source_is_wim(path) && access(path, F_OK) == 0)
		return info_disk(path, json);
	if (wtg_wim_read_info(path, &info) < 0)
		return EXIT_ERROR;
	if (json)
		print_json(path, &info);
	else
		print_text(path, &info);
	wtg_wim_info_release(&info);
	return 0;
}
