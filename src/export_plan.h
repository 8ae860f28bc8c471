/*
 * The incremental append's plan (src/export_plan.c, used by src/export.c):
 * the update of the base image, copied as a new image, that makes it the
 * tree of a delta's snapshot, from what the layers changed (wtg_diff), not
 * from a walk of the tree.
 *
 * The update is wimlib_update_image's commands, in order:
 *  1. deletes of the base's paths that went (each name of a changed file,
 *     deleted directories with what they held);
 *  2. renames of renamed directories (shallowest first);
 *  3. renames of the refreshed directories out of the way, to
 *     "/wtgfs:old:N" (a name no NTFS volume can hold);
 *  4. one add, at "/", of a small NTFS volume holding plan.inodes: every
 *     changed or new file with all its names, the refreshed and new
 *     directories, and the directories that hold them with their real
 *     facts;
 *  5. renames that move back into each refreshed directory the entries of
 *     it that the volume does not hold;
 *  6. deletes of the "/wtgfs:old:N" leftovers.
 * wimlib's add overlays a directory on an existing one and keeps the
 * existing one's facts: so a directory whose own facts changed (times, a
 * security descriptor...) is "refreshed": moved away, added anew, and its
 * unchanged entries moved back.  A rename drops the DOS name of what it
 * moves: an unchanged entry with a DOS name is added from the volume
 * instead (a directory refreshed in turn; a file copied, unless it has
 * other names: then no plan).
 *
 * Inode pointers are the view's: valid while the view is open.
 */
#ifndef WTGFS_EXPORT_PLAN_H
#define WTGFS_EXPORT_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wtg_view;
struct wtg_inode;

enum wtg_export_op_kind { WTG_EXPORT_DELETE, WTG_EXPORT_RENAME, WTG_EXPORT_ADD };

struct wtg_export_op {
	enum wtg_export_op_kind kind;
	char *from; /* "/a/b": the path deleted or renamed */
	char *to;   /* renames: where to */
	bool recursive;
};

struct wtg_export_plan {
	struct wtg_export_op *ops;
	size_t nops, ops_cap;
	struct wtg_inode **inodes; /* what the NTFS volume holds */
	size_t ninodes, inodes_cap;
	uint64_t changes;   /* diff entries */
	uint64_t bytes;	    /* stream bytes of the inodes */
	uint64_t refreshed; /* directories added anew */
	uint64_t moved;	    /* entries moved back into them */
	char reason[512];   /* -EAGAIN: why there is no plan */
};

/*
 * Plans the update from the base image of the delta @delta to its snapshot
 * @at (NULL: HEAD), whose tree @view shows.  -EAGAIN (plan->reason says
 * why) when a full capture must do: a change too large, or one the plan
 * does not handle; other -errno on errors (logged).
 */
/* Shared by both incremental ways (export_plan.c, export_append.c). */
struct wtg_diff_entry;
struct wtg_diff_side;
/* Facts a WIM keeps changed, not only data: attributes, SD, streams,
 * reparse data, DOS name, object id, EAs, creation/write/access times. */
bool wtg_export_facts_changed(const struct wtg_diff_entry *e);
/* A directory the image holds entries in (not a junction). */
bool wtg_export_dirlike(const struct wtg_inode *in);
/* How many '/' are in @path. */
size_t wtg_export_depth(const char *path);
/* Copies of the names of @side (malloc'd; -ENOMEM). */
int wtg_export_copy_links(const struct wtg_diff_side *side, char ***links, size_t *n);
/* What both ways keep of one diff entry. */
struct wtg_export_change {
	char status;
	bool replaced, meta; /* meta: wtg_export_facts_changed */
	bool old_exists, old_dir, new_exists;
	char *path, *old_path;
	char **old_links; /* every name it had */
	size_t nold;
};
/* @c (zeroed first) from @e; -ENOMEM.  Release frees what it holds. */
int wtg_export_change_take(struct wtg_export_change *c, const struct wtg_diff_entry *e);
void wtg_export_change_release(struct wtg_export_change *c);

int wtg_export_plan_make(struct wtg_view *view, const char *delta, const char *at,
			 struct wtg_export_plan *plan);
void wtg_export_plan_release(struct wtg_export_plan *plan);

/* ---- shared with src/export_append.c (the raw append) ---- */

struct wtg_export_options;
struct wtg_export_result;

/*
 * The incremental append by the raw appender: the base image's metadata
 * patched with the change (wtg_diff), the changed data as new blobs, the
 * rest shared, without wimlib.  -EAGAIN, with res->raw_reason, before
 * anything is written when it cannot (the caller goes the wimlib way);
 * other -errno on errors (logged).  WTGFS_EXPORT_RAW=0 in the environment
 * skips it (the tests' way to force the wimlib path); WTGFS_EXPORT_RAW=tree
 * skips wtg_export_delta_append, the way without the view.
 */
int wtg_export_raw_append(struct wtg_view *view, const char *out,
			  const struct wtg_export_options *opt, struct wtg_export_result *res);

/* src/export.c's: the same file (device and inode); HEAD still as the view
 * shows it (-EAGAIN, res->full_reason, when not); the guard process that
 * puts back OUT's old header and size unless told the append finished. */
bool wtg_export_same_file(const char *a, const char *b);
int wtg_export_head_still(const struct wtg_export_options *opt, struct wtg_export_result *res);
struct wtg_export_guard {
	int pid;
	int pipe;
};
int wtg_export_guard_start(const char *out, struct wtg_export_guard *g);
void wtg_export_guard_end(struct wtg_export_guard *g, bool keep);

#endif
