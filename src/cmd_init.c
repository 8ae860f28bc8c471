/*
 * wtgfs init DELTA IMAGE[:INDEX|:NAME|:PART]: a new delta bound to its base.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "wtgfs/base_index.h"
#include "wtgfs/export.h"
#include "wtgfs/hash.h"
#include "wtgfs/log.h"
#include "wtgfs/source.h"
#include "wtgfs/store.h"
#include "wtgfs/tree.h"
#include "wtgfs/view.h"

static const char usage[] =
    "usage: wtgfs init DELTA IMAGE[:INDEX|:NAME]\n"
    "       wtgfs init DELTA DISK[:PART] [--parent PATH]\n"
    "\n"
    "Creates the delta file DELTA bound to one base image: an image of a WIM\n"
    "or ESD file, or the NTFS volume of a VHDX, VHD or raw disk image or a\n"
    "block device (by default the partition that holds \\Windows).  The delta\n"
    "records the base's path and its identity (WIM GUID, image index and\n"
    "metadata hash; or the volume's serial number and the disk's identifier),\n"
    "so it refuses any other base later.  DELTA must not exist yet.\n"
    "\n"
    "Then 'wtgfs mount DELTA MNT' mounts the base read-write, every change\n"
    "kept in DELTA.\n"
    "\n"
    "  --parent PATH   the parent of a differencing VHD/VHDX (default: the file of\n"
    "                  the name it records, in its own folder)\n";

static const struct option options[] = {
    {"parent", required_argument, NULL, 'p'},
    CLI_OPTIONS_END,
};

static const struct cli_command cmd = {"init", usage, "", options};

/* The index of the base's metadata, that diff reads instead of the image:
 * loads the tree of @src (taken over) once, here. */
static int index_base(const char *delta, struct wtg_source *src, const struct wtg_store_base *base)
{
	struct wtg_store_options so = {0};
	struct wtg_store *st;
	struct wtg_tree tree;

	wtg_tree_init(&tree, src);
	int ret = wtg_source_load(src, &tree);
	if (!ret && !(ret = wtg_store_open(delta, &so, &st))) {
		ret = wtg_base_index_build(st, &tree);
		/* a WIM's: its metadata resource too, for export --append */
		if (!ret && !strncmp(src->identity, "wim:", 4))
			ret = wtg_export_keep_base_metadata(st, base->path, (int)base->index);
		int r = wtg_store_close(st);
		if (!ret)
			ret = r;
	}
	wtg_tree_release(&tree);
	return ret;
}

int cmd_init(int argc, char **argv)
{
	struct wtg_source *src;
	struct wtg_store_base base;

	struct wtg_source_options so = {0};
	int c;
	while ((c = cli_getopt(&cmd, argc, argv)) != -1) {
		if (c != 'p')
			return cli_getopt_exit(c);
		so.parent = optarg;
	}
	if (argc - optind != 2)
		return cli_usage_error(&cmd, "DELTA and IMAGE are needed");
	const char *delta = argv[optind], *spec = argv[optind + 1];
	if (access(delta, F_OK) == 0) {
		wtg_error("'%s' exists already: init makes a new delta (choose another name)",
			  delta);
		return EXIT_ERROR;
	}
	if (wtg_source_open(spec, &so, &src) < 0)
		return EXIT_ERROR;
	int ret = wtg_view_describe_base(spec, src, &base);
	if (ret == 0)
		ret = wtg_store_create(delta, &base);
	char identity[WTG_IDENTITY_MAX];
	snprintf(identity, sizeof(identity), "%s", src->identity);
	if (ret == 0) {
		ret = index_base(delta, src, &base);
		if (ret)
			unlink(delta); /* made here a moment ago: no half-made delta stays */
		src = NULL;
	}
	if (ret == 0)
		printf("%s: a new delta on '%s' (%s)\n", delta, spec, identity);
	wtg_source_free(src);
	return ret < 0 ? EXIT_ERROR : 0;
}
