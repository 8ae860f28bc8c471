/*
 * wtgfs squash DELTA FROM..TO: merges a run of layers into one.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "wtgfs/store.h"

static const char usage[] =
    "usage: wtgfs squash DELTA FROM..TO\n"
    "\n"
    "Merges the layers above snapshot FROM up to and including TO (a snapshot\n"
    "or HEAD) into one layer that keeps TO's name.  FROM may be 'base': from\n"
    "the first layer.  Every snapshot outside the range keeps its content\n"
    "exactly; the snapshots inside it (after FROM, before TO) go, which is\n"
    "what squash is for.  Refused when another branch (a snapshot, HEAD or a\n"
    "layer a rollback kept) grows from inside the range.  The delta must not\n"
    "be mounted.  Chunks only the merged-away layers used are freed; 'wtgfs\n"
    "gc' gives the space back to the file system.\n";

static const struct option options[] = {
    CLI_OPTIONS_END,
};

static const struct cli_command cmd = {"squash", usage, "", options};

int cmd_squash(int argc, char **argv)
{
	struct wtg_store *store;
	int c = cli_getopt(&cmd, argc, argv);

	if (c != -1)
		return cli_getopt_exit(c);
	if (argc - optind != 2)
		return cli_usage_error(&cmd, "DELTA and FROM..TO are needed");
	const char *path = argv[optind], *range = argv[optind + 1];
	const char *dots = strstr(range, "..");
	if (!dots || dots == range || !dots[2] || strstr(dots + 2, ".."))
		return cli_usage_error(&cmd, "'%s' is not a range FROM..TO", range);
	char *from = strndup(range, (size_t)(dots - range));
	const char *to = dots + 2;
	if (!from)
		return EXIT_ERROR;
	int ret = wtg_store_open(path, NULL, &store);
	uint64_t merged = 0;
	if (!ret) {
		ret = wtg_store_squash(store, from, to, &merged);
		int r2 = wtg_store_close(store);
		if (!ret)
			ret = r2;
	}
	if (!ret)
		printf("squashed %s..%s: %" PRIu64 " layer%s merged into '%s'\n", from, to, merged,
		       merged == 1 ? "" : "s", to);
	free(from);
	return ret < 0 ? EXIT_ERROR : 0;
}
