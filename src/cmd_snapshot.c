/*
 * wtgfs snapshot DELTA|MNT NAME [-m MSG]: seals the working layer as a
 * snapshot, through the daemon when the delta is mounted.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "wtgfs/control.h"
#include "wtgfs/store.h"

static const char usage[] =
    "usage: wtgfs snapshot DELTA|MNT NAME [-m MSG]\n"
    "\n"
    "Seals the working layer of a delta as snapshot NAME and opens a new one\n"
    "on top, in one durable transaction.  On a mounted delta (give the mount\n"
    "point or the delta) the daemon does it: every write that returned before\n"
    "the command began is in the snapshot, none that began after it returned.\n"
    "Only the user who mounted it, or root, may snapshot a mount.\n"
    "\n"
    "  -m, --message MSG   a message kept with the snapshot ('wtgfs log')\n";

static const struct option options[] = {
    {"message", required_argument, NULL, 'm'},
    CLI_OPTIONS_END,
};

static const struct cli_command cmd = {"snapshot", usage, "m:", options};

int cmd_snapshot(int argc, char **argv)
{
	const char *message = NULL;
	struct wtg_store *store;
	char mnt[PATH_MAX];
	int c, ret;

	while ((c = cli_getopt(&cmd, argc, argv)) != -1) {
		switch (c) {
		case 'm':
			message = optarg;
			break;
		default:
			return cli_getopt_exit(c);
		}
	}
	if (argc - optind != 2)
		return cli_usage_error(&cmd, "DELTA (or MNT) and NAME are needed");
	const char *target = argv[optind], *name = argv[optind + 1];
	char shown[WTG_STORE_NAME_SHOWN];
	if (!wtg_store_name_ok(name))
		return cli_usage_error(&cmd, "'%s' cannot name a snapshot (" WTG_STORE_NAME_RULE ")",
				       wtg_store_name_shown(name, shown));
	if (message && strlen(message) >= WTG_CONTROL_ARG_MAX)
		return cli_usage_error(&cmd, "the message is too long (at most %d bytes)",
				       WTG_CONTROL_ARG_MAX - 1);
	if (cli_delta_target(target, &store, mnt, sizeof(mnt)) < 0)
		return EXIT_ERROR;
	if (mnt[0]) {
		ret = wtg_control_call(mnt, "snapshot", name, message ? message : "", NULL, 0);
	} else {
		ret = wtg_store_snapshot(store, name, message);
		int r2 = wtg_store_close(store);
		if (!ret)
			ret = r2;
	}
	return ret < 0 ? EXIT_ERROR : 0;
}
