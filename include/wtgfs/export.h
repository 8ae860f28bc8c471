/*
 * Export: a view's merged tree (a delta's working layer, a snapshot, or a
 * bare VHDX/raw NTFS volume) or a bare WIM/ESD image, written as an image of
 * a WIM file: a new standalone WIM, or a new image appended to an existing
 * one whose blobs it shares.  src/export.c is the one file that writes WIMs
 * through wimlib (source/wim.c only reads).
 *
 * A tree goes through the flush's NTFS writer into a sparse temporary NTFS
 * image (mkntfs on a sparse file in $TMPDIR, else beside OUT.wim; unlinked
 * as soon as it is open, so nothing is left behind even by SIGKILL), which
 * wimlib captures in NTFS-3G mode: every NTFS fact the tree holds (security
 * descriptors, attributes, named streams, reparse points, DOS names, object
 * ids, hard links, times, sparse files) reaches the WIM.  A bare WIM image
 * goes through wimlib_export_image (ESD -> WIM, another compression).
 *
 * Safety: a new WIM is written to an unnamed file in OUT's directory and
 * linked as OUT only when complete (refused when OUT exists); an append is
 * wimlib's in-place append, which writes the new data after the old and
 * the header last.  A guard process forked before it keeps OUT's old
 * header and size and puts them back unless the append finished, so an
 * append that fails or is killed (SIGKILL too) leaves OUT byte for byte as
 * it was.  The delta and (unless it is the append target) the base are
 * only read.  A delta stays bound to a base WIM that grew by appended
 * images (a WIM image is its GUID, index and metadata, not the file's
 * size).
 *
 * All calls return 0 or -errno with one line logged.
 */
#ifndef WTGFS_EXPORT_H
#define WTGFS_EXPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "wtgfs/progress.h"
#include "wtgfs/wim_append.h"

struct wtg_view;
struct wtg_export_stamp;

enum wtg_export_compress {
	WTG_EXPORT_COMPRESS_DEFAULT, /* new WIM: LZX (LZMS solid); append: the WIM's */
	WTG_EXPORT_COMPRESS_NONE,
	WTG_EXPORT_COMPRESS_XPRESS,
	WTG_EXPORT_COMPRESS_LZX,
	WTG_EXPORT_COMPRESS_LZMS,
};


struct wtg_export_options {
	bool append;
	const char *name;	 /* NULL: the caller's default */
	const char *description; /* NULL: none */
	enum wtg_export_compress compress;
	bool solid, boot, check;
	unsigned threads; /* 0: one per CPU */
	/* phases: "tree" (the temporary NTFS volume), "scan" (wimlib reading
	 * it), "write" (the WIM's data), "finish" */
	wtg_progress_fn progress;
	void *ctx;
	/* the delta and snapshot (NULL: HEAD) the view shows: the export of a
	 * delta on a WIM base is then incremental, unless @full; for HEAD only
	 * with @stamp, the delta's as it was before the view was opened (a
	 * commit since, by a mount, and the capture is whole) */
	const char *delta, *at;
	const char *base_path; /* where the delta's base lies now (NULL: where init saw it) */
	bool full;
	const struct wtg_export_stamp *stamp;
};

/* What a delta file and its write-ahead log look like on disk: equal
 * stamps mean no commit came in between. */
struct wtg_export_stamp {
	int64_t v[6];
};
void wtg_export_stamp_delta(const char *delta, struct wtg_export_stamp *stamp_ret);

struct wtg_export_result {
	int image;		     /* the new image's index in OUT */
	char name[256];		     /* its name */
	int images;		     /* images OUT holds now */
	uint64_t size_before, size_after; /* OUT's size (0 before a new WIM) */
	uint64_t files, dirs, bytes; /* what went through the temporary NTFS image */
	char tmp_dir[4096];	     /* where the temporary NTFS image was ("" for none) */
	uint64_t tmp_bytes;	     /* the space it took at most */
	bool incremental;	     /* the base image updated with the change alone */
	bool raw;		     /* ... by the raw appender (wtgfs/wim_append.h) */
	char raw_reason[512];	     /* an incremental append that is not raw: why */
	struct wim_append_stats raw_stats;
	char tree_reason[512];	     /* an append that loaded the base's tree: why */
	uint64_t changes;	     /* incremental: the changed paths */
	uint64_t sums_used;	     /* raw: changed files named by the SHA-1 a mount kept */
	char full_reason[512];	     /* a delta captured whole: why */
};

/* Parses "lzx", "xpress", "lzms", "none": false when unknown. */
bool wtg_export_parse_compress(const char *s, enum wtg_export_compress *ret);

/* True when @path starts like a WIM or ESD file. */
bool wtg_export_is_wim(const char *path);

/* Exports the merged tree of @view (read under its shared lock) to @out. */
int wtg_export_view(struct wtg_view *view, const char *out, const struct wtg_export_options *opt,
		    struct wtg_export_result *res);

/*
 * The incremental --append of the delta @opt->delta (@opt->at) to its own
 * base WIM @out, without a view: every fact of the change from the diff's
 * entries and stream reads, nothing of the base's tree loaded, so that the
 * cost does not grow with the image (src/export_append.c).  -EAGAIN, with
 * res->raw_reason and nothing written, for what it does not handle: the
 * caller then opens the view for wtg_export_view.
 */
int wtg_export_delta_append(const char *out, const struct wtg_export_options *opt,
			    struct wtg_export_result *res);

/* At init: image @image of the base WIM @wim's metadata resource, read
 * and checked with wtgfs's own reader, kept in the delta @store for
 * wtg_export_delta_append (which then need not decode it).  0 also when
 * the WIM's metadata cannot be read that way (said at -v): the append
 * decodes it then; -errno when the store cannot take it. */
struct wtg_store;
int wtg_export_keep_base_metadata(struct wtg_store *store, const char *wim, int image);

/* Exports image @sel ("1", an image name; NULL: the only image) of the WIM
 * or ESD file @wim to @out through wimlib_export_image.  The name defaults
 * to the image's own. */
int wtg_export_wim_image(const char *wim, const char *sel, const char *out,
			 const struct wtg_export_options *opt, struct wtg_export_result *res);

/* Called from a signal handler: removes what a running export made that
 * is not yet in place (async-signal-safe). */
void wtg_export_interrupted(void);

/* The guard process of an append (src/export.c says what it does): the
 * program runs it when its first argument is WTG_EXPORT_GUARD_ARG, which
 * is no command of its own. */
#define WTG_EXPORT_GUARD_ARG "--export-guard"
int wtg_export_guard_main(int argc, char **argv);

#endif
