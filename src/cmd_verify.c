/*
 * wtgfs verify DELTA: checks a delta file end to end.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "wtgfs/store.h"

static const char usage[] =
    "usage: wtgfs verify DELTA\n"
    "\n"
    "Checks the delta file: its SQLite structure and format, the layer graph,\n"
    "that every chunk decodes to bytes that hash to its key, and that every\n"
    "record refers to what exists.  Prints one line per problem, then a\n"
    "summary.  Exit status 0 when clean, 2 when anything is wrong.\n";

static const struct option options[] = {
    CLI_OPTIONS_END,
};

static const struct cli_command cmd = {"verify", usage, "", options};

int cmd_verify(int argc, char **argv)
{
	struct wtg_store *store;
	struct wtg_store_options opt = {.read_only = true};
	struct wtg_store_report r = {0};

	int c = cli_getopt(&cmd, argc, argv);
	if (c != -1)
		return cli_getopt_exit(c);
	if (argc - optind != 1)
		return cli_usage_error(&cmd, "one DELTA is needed");
	const char *path = argv[optind];
	if (wtg_store_open(path, &opt, &store) < 0)
		return EXIT_ERROR;
	int ret = wtg_store_verify(store, &r);
	printf("%s: %s: %" PRIu64 " layers, %" PRIu64 " chunks (%" PRIu64 " bytes, %" PRIu64
	       " stored), %" PRIu64 " extents, %" PRIu64 " problems\n",
	       path, ret == 0 ? "clean" : "DAMAGED", r.layers, r.chunks, r.chunk_bytes,
	       r.stored_bytes, r.extents, r.problems);
	wtg_store_close(store);
	return ret == 0 ? 0 : EXIT_ERROR;
}
