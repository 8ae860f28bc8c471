/*
 * wtgfs verify DELTA [--base [PATH]]: checks a delta file end to end, and
 * with --base what it takes from its base.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "wtgfs/store.h"
#include "wtgfs/view.h"

static const char usage[] =
    "usage: wtgfs verify DELTA [--base[=PATH]]\n"
    "\n"
    "Checks the delta file: its SQLite structure and format, the layer graph\n"
    "(every parent there and older, HEAD open with nothing on top, every name\n"
    "on a sealed layer), that every chunk decodes to bytes that hash to its\n"
    "key, and that every record refers to what exists.  Prints one line per\n"
    "problem, then a summary.  Exit status 0 when clean, 2 when anything is\n"
    "wrong.\n"
    "\n"
    "  -b, --base[=PATH]  also check the base (where the delta recorded it, or\n"
    "                     at PATH): that it is the image the delta was made\n"
    "                     on, that every base file a record of any layer names\n"
    "                     is there, that every base stream a layer builds\n"
    "                     on reads back whole (a WIM's against its SHA-1),\n"
    "                     and that each SHA-1 a mount kept for an export is\n"
    "                     the SHA-1 of the bytes it names\n";

static const struct option options[] = {
    {"base", optional_argument, NULL, 'b'},
    CLI_OPTIONS_END,
};

static const struct cli_command cmd = {"verify", usage, "b", options};

int cmd_verify(int argc, char **argv)
{
	struct wtg_store *store;
	struct wtg_store_options opt = {.read_only = true, .verifying = true};
	struct wtg_store_report r = {0};

	bool base = false;
	const char *base_path = NULL;
	int c;
	while ((c = cli_getopt(&cmd, argc, argv)) != -1) {
		switch (c) {
		case 'b':
			base = true;
			base_path = optarg;
			break;
		default:
			return cli_getopt_exit(c);
		}
	}
	if (argc - optind != 1)
		return cli_usage_error(&cmd, "one DELTA is needed");
	const char *path = argv[optind];
	int ret = wtg_store_open(path, &opt, &store);
	if (ret == -EIO)
		printf("%s: DAMAGED: it cannot be opened as a delta\n", path);
	if (ret < 0)
		return EXIT_ERROR;
	ret = wtg_store_verify(store, &r);
	printf("%s: %s: %" PRIu64 " layers, %" PRIu64 " chunks (%" PRIu64 " bytes, %" PRIu64
	       " stored), %" PRIu64 " extents, %" PRIu64 " problems\n",
	       path, ret == 0 ? "clean" : "DAMAGED", r.layers, r.chunks, r.chunk_bytes,
	       r.stored_bytes, r.extents, r.problems);
	if (ret == 0 && r.journal)
		printf("%s: %" PRIu64 " small write(s) fsynced before a crash wait in the journal"
		       " (the next read-write mount folds them in)\n",
		       path, r.journal);
	wtg_store_close(store);
	if (base && ret == 0) {
		uint64_t streams, sums, problems;
		ret = wtg_view_verify_base(path, base_path, NULL, &streams, &sums, &problems);
		if (ret == 0 || ret == -EIO)
			printf("%s: base %s: %" PRIu64 " base streams the layers build on read back "
			       "whole, %" PRIu64 " kept sums checked against their bytes, %" PRIu64
			       " problems\n",
			       path, ret == 0 ? "clean" : "DAMAGED", streams, sums, problems);
	}
	return ret == 0 ? 0 : EXIT_ERROR;
}
