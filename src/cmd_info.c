/*
 * wtgfs info [--json] IMAGE: the images in a WIM, the partitions of a disk.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "wtgfs/store.h"
#include "wtgfs/disk_image.h"
#include "wtgfs/log.h"
#include "wtgfs/source.h"
#include "wtgfs/wim.h"

static const char usage[] = "usage: wtgfs info [--json] [--parent PATH] IMAGE\n"
			    "\n"
			    "Lists the images in a WIM or ESD file: index, name, file and\n"
			    "directory counts, total bytes, compression and whether it is solid.\n"
			    "For a disk image (VHDX, VHD, raw) or a block device: its partitions,\n"
			    "with type, start, size, file system, label and whether it holds\n"
			    "\\Windows.\n"
			    "\n"
			    "  --json          one JSON object on one line, for scripts\n"
			    "  --parent PATH   the parent of a differencing VHD/VHDX (default:\n"
			    "                  the file of the name it records, in its own folder)\n";

static const struct option options[] = {
    {"json", no_argument, NULL, 'j'},
    {"parent", required_argument, NULL, 'p'},
    CLI_OPTIONS_END,
};

static const struct cli_command cmd = {"info", usage, "", options};

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
	if (info->integrity)
		printf(", integrity table");
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
	struct json_object *o = json_object_new_object(), *images = json_object_new_array();

	cli_json_add_name(o, "path", path);
	cli_json_add_string(o, "format", "wim");
	cli_json_add_string(o, "guid", info->guid);
	cli_json_add_i64(o, "image_count", info->image_count);
	cli_json_add_i64(o, "boot_index", info->boot_index);
	cli_json_add_u64(o, "chunk_size", info->chunk_size);
	cli_json_add_string(o, "compression", info->compression);
	cli_json_add_i64(o, "part_number", info->part_number);
	cli_json_add_i64(o, "total_parts", info->total_parts);
	cli_json_add_bool(o, "pipable", info->pipable);
	cli_json_add_bool(o, "integrity_table", info->integrity);
	cli_json_add_u64(o, "file_size", info->file_size);
	for (int i = 0; i < info->image_count; i++) {
		const struct wtg_wim_image_info *im = &info->images[i];
		struct json_object *j = json_object_new_object();
		cli_json_add_i64(j, "index", im->index);
		cli_json_add_name(j, "name", im->name);
		if (im->description)
			cli_json_add_name(j, "description", im->description);
		cli_json_add_u64(j, "files", im->files);
		cli_json_add_u64(j, "directories", im->directories);
		cli_json_add_u64(j, "total_bytes", im->total_bytes);
		cli_json_add_string(j, "compression", im->compression);
		cli_json_add_bool(j, "solid", im->solid);
		json_object_array_add(images, j);
	}
	json_object_object_add(o, "images", images);
	cli_json_print(o, CLI_JSON_LINE);
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
	struct json_object *o = json_object_new_object(), *parts = json_object_new_array();

	cli_json_add_name(o, "path", path);
	cli_json_add_string(o, "format", r->format);
	cli_json_add_u64(o, "size", r->size);
	cli_json_add_u64(o, "sector_size", r->sector_size);
	cli_json_add_string(o, "scheme", r->scheme);
	cli_json_add_string(o, "disk_id", r->disk_id);
	cli_json_add_string(o, "identity", r->identity);
	for (int i = 0; i < r->nvols; i++) {
		const struct wtg_volume_report *v = &r->vols[i];
		struct json_object *j = json_object_new_object();
		cli_json_add_i64(j, "number", v->number);
		cli_json_add_string(j, "type", v->type);
		cli_json_add_u64(j, "start", v->start);
		cli_json_add_u64(j, "size", v->size);
		cli_json_add_string(j, "fs", v->fs);
		cli_json_add_name(j, "label", v->label);
		cli_json_add_bool(j, "windows", v->has_windows);
		json_object_array_add(parts, j);
	}
	json_object_object_add(o, "partitions", parts);
	cli_json_print(o, CLI_JSON_LINE);
}

static int info_disk(const char *path, const char *parent, bool json)
{
	struct wtg_disk_report r;

	if (wtg_disk_image_report(path, parent, &r) < 0)
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
	const char *path = NULL, *parent = NULL;
	bool json = false;
	struct wtg_wim_info info;

	int c;
	while ((c = cli_getopt(&cmd, argc, argv)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'p':
			parent = optarg;
			break;
		default:
			return cli_getopt_exit(c);
		}
	}
	if (optind == argc)
		return cli_usage_error(&cmd, "IMAGE is missing");
	if (argc - optind > 1)
		return cli_usage_error(&cmd, "one IMAGE at a time");
	path = argv[optind];
	if (wtg_store_is_delta(path)) {
		wtg_error("'%s' is a delta file, not an image: 'wtgfs log' lists its snapshots, "
			  "'wtgfs verify' checks it",
			  path);
		return EXIT_ERROR;
	}
	if (!wtg_source_is_wim(path) && access(path, F_OK) == 0)
		return info_disk(path, parent, json);
	if (parent)
		return cli_usage_error(&cmd, "--parent goes with a differencing disk, and '%s' is "
					     "not one",
				       path);
	if (wtg_wim_read_info(path, &info) < 0)
		return EXIT_ERROR;
	if (json)
		print_json(path, &info);
	else
		print_text(path, &info);
	wtg_wim_info_release(&info);
	return 0;
}
