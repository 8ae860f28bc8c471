/*
 * wtgfs: Windows To Go images editable like a filesystem.  The command
 * table; each command lives in its own cmd_*.c.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "wtgfs/export.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
    {"info", cmd_info, "list the images in a WIM or the partitions of a disk"},
    {"mount", cmd_mount, "mount an image (read-only) or a delta (read-write) as a live NTFS tree"},
    {"umount", cmd_umount, "unmount a wtgfs mount"},
    {"init", cmd_init, "create a delta file bound to a base image"},
    {"log", cmd_log, "show a delta's base, layers and snapshots"},
    {"snapshot", cmd_snapshot, "seal a delta's working layer as a snapshot"},
    {"rollback", cmd_rollback, "make a delta's working tree that of a snapshot"},
    {"squash", cmd_squash, "merge a run of a delta's layers into one"},
    {"gc", cmd_gc, "drop what nothing keeps and shrink the delta"},
    {"verify", cmd_verify, "check a delta file end to end"},
    {"diff", cmd_diff, "show what changed between two versions of a delta"},
    {"export", cmd_export, "write a tree or an image as an image of a WIM file"},
    {"flush", cmd_flush, "write a tree to a drive as a bootable Windows To Go disk"},
};

static void usage(FILE *f)
{
	fputs("usage: wtgfs COMMAND [ARGS]\n\ncommands:\n", f);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
	fputs("\n'wtgfs COMMAND --help' and 'man wtgfs-COMMAND' tell more.\n", f);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_ERROR;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		if (argc > 2 && strcmp(argv[1], "help") == 0) {
			char *help_argv[] = {argv[2], "--help", NULL};
			for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
				if (!strcmp(commands[i].name, argv[2]))
					return commands[i].run(2, help_argv);
		}
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], WTG_EXPORT_GUARD_ARG))
		return wtg_export_guard_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("wtgfs %s\n", PACKAGE_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(commands[i].name, argv[1]))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "wtgfs: '%s' is not a command (see 'wtgfs --help')\n", argv[1]);
	return EXIT_ERROR;
}
