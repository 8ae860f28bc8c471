/*
 * Progress reports: see include/wtgfs/progress.h.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "wtgfs/ntfs_write.h"
#include "wtgfs/progress.h"

void wtg_progress_of_tree(struct wtg_progress *p, const struct wtg_ntfs_write_stats *done,
			  const struct wtg_ntfs_write_stats *total)
{
	p->bytes_done = done->bytes;
	p->bytes_total = total->bytes;
	p->files_done = done->files + done->dirs;
	p->files_total = total->files + total->dirs;
}

void wtg_progress_test_kill(const struct wtg_progress *p, bool starting)
{
	const char *at = getenv("WTGFS_TEST_KILL_AT");
	const char *stop = getenv("WTGFS_TEST_STOP_AT");
	size_t n = strlen(p->phase);

	if (starting && stop && !strcmp(stop, p->phase))
		raise(SIGSTOP);
	if (!at || strncmp(at, p->phase, n))
		return;
	if (at[n] == '\0' ? starting
			  : at[n] == '@' && p->files_done &&
				p->files_done >= strtoull(at + n + 1, NULL, 10))
		raise(SIGKILL);
}
