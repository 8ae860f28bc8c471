/*
 * Where a long job stands (flush, export): the one progress report the
 * library hands its caller, and the test hook that interrupts a job at a
 * known point.  Drawing it (a bar on a terminal, JSON Lines for scripts)
 * is the command line's: see cli_progress in src/cli.h.
 */
#ifndef WTGFS_PROGRESS_H
#define WTGFS_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

struct wtg_ntfs_write_stats;

struct wtg_progress {
	const char *phase; /* a word: "tree", "write", "verify", ... */
	uint64_t bytes_done, bytes_total; /* 0 total: a phase without a measure */
	uint64_t files_done, files_total;
};
typedef void (*wtg_progress_fn)(void *ctx, const struct wtg_progress *p);

/* The NTFS writer's counts into @p (directories count as files); the
 * phase stays as it is. */
void wtg_progress_of_tree(struct wtg_progress *p, const struct wtg_ntfs_write_stats *done,
			  const struct wtg_ntfs_write_stats *total);

/*
 * For tests: WTGFS_TEST_KILL_AT=PHASE kills the process (SIGKILL) as PHASE
 * begins (@starting), PHASE@N once PHASE has done N files (N > 0), so a
 * test interrupts a job where it wants to; WTGFS_TEST_STOP_AT=PHASE stops
 * it (SIGSTOP) as PHASE begins, for a test that does something meanwhile
 * and then sends SIGCONT.  Nothing happens without them.
 */
void wtg_progress_test_kill(const struct wtg_progress *p, bool starting);

#endif
