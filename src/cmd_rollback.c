/*
 * wtgfs rollback DELTA|MNT SNAP: makes the working tree that of a snapshot,
 * keeping the working layer it leaves; through the daemon when mounted.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "wtgfs/control.h"
#include "wtgfs/store.h"

static const char usage[] =
    "usage: wtgfs rollback DELTA|MNT SNAP\n"
    "\n"
    "Makes the working tree of a delta that of snapshot SNAP.  Nothing is\n"
    "lost: the working layer it leaves is kept under a new name (printed,\n"
    "and listed by 'wtgfs log --all'), and 'wtgfs rollback DELTA THAT-NAME'\n"
    "brings it back as it was, until 'wtgfs gc' expires it.  On a mounted\n"
    "delta (give the mount point or the delta) the daemon rolls back and the\n"
    "mount shows the snapshot at once; files open across the rollback answer\n"
    "ESTALE to reads and writes until opened again.  Only the user who\n"
    "mounted it, or root, may roll a mount back.\n";

static const struct option options[] = {
    CLI_OPTIONS_END,
};

static const struct cli_command cmd = {"rollback", usage, "", options};

int cmd_rollback(int argc, char **argv)
{
	struct wtg_store *store;
	char mnt[PATH_MAX], kept[1024] = "";
	int c = cli_getopt(&cmd, argc, argv), ret;

	if (c != -1)
		return cli_getopt_exit(c);
	if (argc - optind != 2)
		return cli_usage_error(&cmd, "DELTA (or MNT) and SNAP are needed");
	const char *target = argv[optind], *name = argv[optind + 1];
	if (strlen(name) >= WTG_CONTROL_ARG_MAX)
		return cli_usage_error(&cmd, "no snapshot has so long a name");
	if (cli_delta_target(target, &store, mnt, sizeof(mnt)) < 0)
		return EXIT_ERROR;
	if (mnt[0]) {
		ret = wtg_control_call(mnt, "rollback", name, "", kept, sizeof(kept));
	} else {
		char *k = NULL;
		ret = wtg_store_rollback(store, name, &k);
		if (k)
			snprintf(kept, sizeof(kept), "%s", k);
		free(k);
		int r2 = wtg_store_close(store);
		if (!ret)
			ret = r2;
	}
	if (ret < 0)
		return EXIT_ERROR;
	if (kept[0])
		printf("rolled back to '%s'; the working layer is kept as '%s' ('wtgfs rollback "
		       "%s %s' brings it back)\n",
		       name, kept, target, kept);
	else
		printf("rolled back to '%s'\n", name);
	return 0;
}
