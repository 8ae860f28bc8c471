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
#include "wtgfs/hash.h"
#include "wtgfs/log.h"
#include "wtgfs/source.h"
#include "wtgfs/store.h"

static const char usage[] =
    "usage: wtgfs init DELTA IMAGE[:INDEX|:NAME]\n"
    "       wtgfs init DELTA DISK[:PART]\n"
    "\n"
    "Creates the delta file DELTA bound to one base image: an image of a WIM\n"
    "or ESD file, or the NTFS volume of a VHDX, VHD or raw disk image or a\n"
    "block device (by default the partition that holds \\Windows).  The delta\n"
    "records the base's path and its identity (WIM GUID, image index and\n"
    "metadata hash; or the volume's serial number and the disk's identifier),\n"
    "so it refuses any other base later.  DELTA must not exist yet.\n";

/* The base as the store records it: the identity string hashed, plus the
 * parts a person can read back ('wtgfs log'). */
static int describe_base(const char *spec, const struct wtg_source *src,
			 struct wtg_store_base *base)
{
	char *path, *sel;
	struct stat st;
	int ret = wtg_source_split_spec(spec, &path, &sel);

	if (ret < 0)
		return ret;
	memset(base, 0, sizeof(*base));
	if (!realpath(path, base->path))
		snprintf(base->path, sizeof(base->path), "%s", path);
	if (stat(base->path, &st) == 0)
		base->size = (uint64_t)st.st_size;
	/* "wim:GUID:INDEX:SHA1" or "ntfs:SERIAL[:FORMAT:ID:PART]" */
	const char *id = strchr(src->identity, ':');
	if (id) {
		size_t n = strcspn(id + 1, ":");
		snprintf(base->guid, sizeof(base->guid), "%.*s", (int)n, id + 1);
	}
	const char *last = strrchr(src->identity, ':');
	if (!strncmp(src->identity, "wim:", 4)) {
		const char *idx = strchr(src->identity + 4, ':');
		base->index = idx ? (uint32_t)strtoul(idx + 1, NULL, 10) : 0;
	} else if (last && strchr(src->identity + 5, ':')) {
		base->index = (uint32_t)strtoul(last + 1, NULL, 10);
	}
	wtg_sha256(src->identity, strlen(src->identity), base->meta_hash);
	free(path);
	free(sel);
	return 0;
}

int cmd_init(int argc, char **argv)
{
	struct wtg_source *src;
	struct wtg_store_base base;

	if (cli_wants_help(argc, argv, usage))
		return 0;
	if (argc != 3 || argv[1][0] == '-' || argv[2][0] == '-')
		return cli_usage_error(usage, "DELTA and IMAGE are needed");
	const char *delta = argv[1], *spec = argv[2];
	if (access(delta, F_OK) == 0) {
		wtg_error("'%s' exists already: init makes a new delta (choose another name)",
			  delta);
		return EXIT_ERROR;
	}
	if (wtg_source_open(spec, NULL, &src) < 0)
		return EXIT_ERROR;
	int ret = describe_base(spec, src, &base);
	if (ret == 0)
		ret = wtg_store_create(delta, &base);
	if (ret == 0)
		printf("%s: a new delta on '%s' (%s)\n", delta, spec, src->identity);
	wtg_source_free(src);
	return ret < 0 ? EXIT_ERROR : 0;
}
