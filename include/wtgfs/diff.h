/*
 * Diff: what changed between two versions of a delta's tree (a snapshot,
 * HEAD, or the base image itself), path by path, in NTFS terms.
 *
 * The engine reads records, not trees: the keys that can differ are those
 * the layers between the two versions record (FROM -> common ancestor ->
 * TO, wtg_store_changes), and each is resolved in both versions; the base
 * image's tree answers for what no layer says.  Paths come from name
 * records and the base tree's names, with each directory's path computed
 * once per version.  Nothing walks the tree, and no file data is read
 * except for hives (wtg_diff_read_stream).  Usable without a mount: the
 * delta is opened read-only, beside a running mount.
 *
 * Codes as git's: A added, D deleted, M modified, R renamed (the inode kept
 * none of its names and got others), T type changed (file, directory,
 * symlink or junction).  An inode is one entry: a new hard link of a file
 * is M with links added; an entry for every name only for A and D.  A name
 * deleted and made again as another inode is one M (or T) entry, marked
 * replaced.  A renamed directory is one R line; what lies below it is not
 * listed again.
 *
 * All calls return 0 or -errno (the reason logged).
 */
#ifndef WTGFS_DIFF_H
#define WTGFS_DIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wtg_diff;
struct wtg_source_options;

struct wtg_diff_options {
	const char *from, *to;	   /* NULL: the last snapshot below HEAD, and HEAD */
	const char *const *paths; /* narrow to these paths and what lies below them */
	size_t npaths;
	bool times;		   /* compare the four times too */
	const char *base_path;	   /* where the base image lies when it moved */
	const struct wtg_source_options *source;
	/* Optional: reads @len bytes at @off of the bytes the base holds for
	 * a stream, found by their key (wtg_source_blob_key), in place of the
	 * base's source (which a caller holding the image open already need
	 * not open again): 0, or -ENOENT to have the source read them. */
	int (*base_read)(void *ctx, const uint8_t *key, size_t key_len, void *buf, size_t len,
			 uint64_t off);
	void *base_read_ctx;
};

/* What changed, one bit per kind (the status column's order). */
enum {
	WTG_DIFF_DATA = 1u << 0,      /* bytes of the unnamed stream */
	WTG_DIFF_SIZE = 1u << 1,      /* its size */
	WTG_DIFF_ATTRIBUTES = 1u << 2, /* FILE_ATTRIBUTE_* flags */
	WTG_DIFF_SECURITY = 1u << 3,  /* the security descriptor */
	WTG_DIFF_STREAMS = 1u << 4,   /* named streams */
	WTG_DIFF_REPARSE = 1u << 5,   /* reparse data */
	WTG_DIFF_DOS_NAME = 1u << 6,  /* the 8.3 name */
	WTG_DIFF_LINKS = 1u << 7,     /* hard links: names of the inode */
	WTG_DIFF_OBJECT_ID = 1u << 8,
	WTG_DIFF_EA = 1u << 9,	  /* NTFS extended attributes ($EA) */
	WTG_DIFF_TIMES = 1u << 10, /* only with wtg_diff_options.times; the last */
	WTG_DIFF_KINDS = 11
};

enum wtg_diff_type { WTG_DIFF_FILE, WTG_DIFF_DIR, WTG_DIFF_SYMLINK, WTG_DIFF_JUNCTION };

struct wtg_diff_stream {
	char *name; /* "" for the unnamed stream */
	uint64_t size;
};

/* One version of an entry's inode. */
struct wtg_diff_side {
	bool exists;
	uint64_t ino;
	enum wtg_diff_type type;
	uint32_t attributes;
	uint64_t size; /* of the unnamed stream */
	uint8_t *sd;   /* self-relative security descriptor, NULL when none */
	uint32_t sd_len;
	uint8_t *reparse; /* full reparse buffer, NULL when none */
	uint32_t reparse_len;
	uint32_t reparse_tag;
	char *reparse_target; /* symlinks and junctions: where they point */
	char *dos_name;
	uint8_t *object_id;
	uint32_t object_id_len;
	uint8_t *ea; /* the $EA value as system.ntfs_ea shows it, NULL when none */
	uint32_t ea_len;
	int64_t crtime, mtime, atime, ctime; /* 100 ns units since 1601 */
	struct wtg_diff_stream *streams;      /* named streams, by name */
	size_t nstreams;
	char **links; /* the paths of all its names, sorted */
	size_t nlinks;
};

struct wtg_diff_range {
	uint64_t offset, length;
};

struct wtg_diff_entry {
	char status;	/* 'A', 'D', 'M', 'R', 'T' */
	char *path;	/* where it is in TO (in FROM for D) */
	char *old_path; /* R: where it was in FROM; else NULL */
	bool replaced;	/* the name now holds another inode */
	unsigned changed; /* WTG_DIFF_* bits; for A and D every kind the side has */
	struct wtg_diff_side old, new;
	/* the bytes of the unnamed stream that differ, in order, merged; a
	 * size change counts the bytes between the two sizes */
	struct wtg_diff_range *ranges;
	size_t nranges;
	uint64_t changed_bytes; /* the sum of the ranges */
	/* named streams: those only in FROM, only in TO, in both but changed */
	char **streams_removed, **streams_added, **streams_changed;
	size_t nstreams_removed, nstreams_added, nstreams_changed;
	/* hard links (paths) the inode lost and gained */
	char **links_removed, **links_added;
	size_t nlinks_removed, nlinks_added;
	bool hive; /* a registry hive (by place or by its regf signature) */
};

/* Opens the delta @delta read-only, loads its base and resolves the two
 * versions: -ENOENT (logged) for a version that does not exist. */
int wtg_diff_open(const char *delta, const struct wtg_diff_options *opt, struct wtg_diff **diff_ret);
void wtg_diff_free(struct wtg_diff *diff);
/* The names of the versions compared ("base", "HEAD" or a snapshot). */
const char *wtg_diff_from(const struct wtg_diff *diff);
const char *wtg_diff_to(const struct wtg_diff *diff);

/* Calls @fn once per changed path, in path order (bytewise).  A non-zero
 * return from @fn stops and is returned. */
typedef int (*wtg_diff_fn)(void *arg, const struct wtg_diff_entry *entry);
int wtg_diff_run(struct wtg_diff *diff, wtg_diff_fn fn, void *arg);

/* Reads the first @prefix bytes (all when it is larger) of the unnamed
 * stream of an entry of @diff, in FROM or (@new_side) in TO, into *buf_ret
 * (malloc'd).  Refuses to read more than @max bytes (-EFBIG); -ENOENT when
 * that side does not exist. */
int wtg_diff_read_stream(struct wtg_diff *diff, const struct wtg_diff_entry *entry, bool new_side,
			 uint64_t max, uint64_t prefix, uint8_t **buf_ret, size_t *len_ret);

/* The unnamed stream of the TO side as wtg_diff_read_stream reads it
 * whole, but with only the slots that touch @want (sorted, not
 * overlapping) read: the rest are zeros. */
int wtg_diff_read_stream_parts(struct wtg_diff *diff, const struct wtg_diff_entry *entry,
			       const struct wtg_diff_range *want, size_t nwant, uint64_t max,
			       uint8_t **buf_ret, size_t *len_ret);

/* The SHA-1 of the unnamed stream of the TO side, as a mount kept it when
 * it saw the stream written whole (wtg_store_get_sum): 0, -ENOENT when it
 * kept none for these bytes, or -errno. */
int wtg_diff_stream_sum(struct wtg_diff *diff, const struct wtg_diff_entry *entry,
			uint8_t sha1_ret[20]);

/* The whole named stream @name of an entry of @diff, as wtg_diff_read_stream
 * reads the unnamed one; -ENOENT when that side has no such stream. */
int wtg_diff_read_named_stream(struct wtg_diff *diff, const struct wtg_diff_entry *entry,
			       bool new_side, const char *name, uint64_t max, uint8_t **buf_ret,
			       size_t *len_ret);

/* The name of a FILE_ATTRIBUTE_* bit ("readonly", "hidden" ...), NULL for
 * a bit without one. */
const char *wtg_diff_attribute_name(uint32_t bit);
/* "file", "directory", "symlink", "junction". */
const char *wtg_diff_type_name(enum wtg_diff_type type);
/* The status column: one letter per kind of WTG_DIFF_KINDS, '.' when that
 * kind did not change (the letters: c data, s size, a attributes, p
 * security, n streams, r reparse, d DOS name, l links, o object id, e
 * extended attributes, t times); @buf holds WTG_DIFF_KINDS + 1 bytes. */
void wtg_diff_status_column(unsigned changed, bool times, char *buf);

#endif
