/*
 * wtgfs umount MNT.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "wtgfs/log.h"
#include "wtgfs/mountinfo.h"
#include "wtgfs/store.h"

static const char usage[] = "usage: wtgfs umount MNT\n"
			    "\n"
			    "Unmounts a wtgfs mount.  The daemon serving it exits; for a\n"
			    "delta, once its last changes are committed, durably.\n";

static const struct option options[] = {
    CLI_OPTIONS_END,
};

static const struct cli_command cmd = {"umount", usage, "", options};

/* A delta's daemon commits after the kernel lets go: wait for it, so that
 * what was written is in the delta when umount returns. */
static int wait_for_delta(const char *mnt, const char *delta)
{
	if (!delta[0] || !wtg_store_is_delta(delta))
		return 0;
	int r = wtg_store_wait_writer(delta, 600 * 1000);
	if (r == -ETIMEDOUT) {
		wtg_error("unmounted '%s', but its daemon still holds '%s' after 10 minutes", mnt,
			  delta);
		return EXIT_ERROR;
	}
	return 0;
}

int cmd_umount(int argc, char **argv)
{
	char canon[PATH_MAX];
	struct wtg_mountinfo mi;

	int c = cli_getopt(&cmd, argc, argv);
	if (c != -1)
		return cli_getopt_exit(c);
	if (argc - optind != 1)
		return cli_usage_error(&cmd, "one MNT is needed");
	const char *mnt = argv[optind];
	if (!realpath(mnt, canon)) {
		wtg_error("cannot unmount '%s': %s", mnt, strerror(errno));
		return EXIT_ERROR;
	}
	if (!wtg_mountinfo_find(canon, &mi) || strcmp(mi.fstype, "fuse.wtgfs")) {
		wtg_error("cannot unmount '%s': not a wtgfs mount", mnt);
		return EXIT_ERROR;
	}
	/* the last references of a process that just closed or exited can
	 * linger a moment on a loaded machine: give them two seconds */
	int ret;
	for (int tries = 0; (ret = umount2(canon, 0)) != 0 && errno == EBUSY && tries < 40; tries++)
		usleep(50000);
	if (ret == 0)
		return wait_for_delta(mnt, mi.source);
	if (errno == EBUSY) {
		wtg_error(
		    "cannot unmount '%s': busy (a process has a file or directory open in it)",
		    mnt);
		return EXIT_ERROR;
	}
	if (errno != EPERM) {
		wtg_error("cannot unmount '%s': %s", mnt, strerror(errno));
		return EXIT_ERROR;
	}
	/* Not root: the setuid helper may unmount what this user mounted. */
	pid_t pid = fork();
	if (pid == 0) {
		execlp("fusermount3", "fusermount3", "-u", "--", canon, (char *)NULL);
		_exit(127);
	}
	int status;
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		wtg_error("cannot unmount '%s': fusermount3 failed", mnt);
		return EXIT_ERROR;
	}
	return wait_for_delta(mnt, mi.source);
}
