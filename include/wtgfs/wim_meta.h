/*
 * One WIM image's metadata resource (its uncompressed bytes: the security
 * table, then the dentry tree), parsed from outside bytes and patched into a
 * new resource that keeps every untouched byte AT THE SAME OFFSET, so that an
 * appender can reuse the old resource's compressed chunks for every chunk
 * that did not change.
 *
 * The format (learnt from wimlib 1.13, which reads only what offsets lead
 * to): the security table {le32 total_length, le32 count, le64 size[count],
 * the descriptors} padded to 8; the root dentry at that aligned length,
 * followed by an 8-byte zero end mark; every directory's children are one
 * list of dentries at its subdir_offset, each dentry followed by its extra
 * stream entries, the list ended by 8 zero bytes.
 *
 * How a change is written:
 * - a dentry whose new encoding has the same length is rewritten in place;
 * - a directory whose child list changes (a child added, removed, renamed in
 *   or out, or a child whose encoding changes length) gets its whole new list
 *   appended at the end and its subdir_offset patched in place; the old
 *   list's bytes stay as unreferenced bytes;
 * - a new security descriptor grows the table at the start: the bytes it
 *   covers (the root dentry and the first entries of whatever lists lie
 *   there) are relocated the same way, the root dentry is rewritten right
 *   after the table, and nothing else moves.
 * So offsets never shift; only the chunks that hold patched bytes and the
 * appended tail differ from the old resource.  For an appender, a long
 * appended list is placed so that its entries that did not move fall where
 * they fell within a chunk (wim_meta_write_chunked): those chunks of the
 * tail equal old ones too.
 *
 * New dentries are encoded as wimlib 1.13 encodes them (so a parsed dentry
 * set with its own facts is the same bytes): names UTF-16LE with a NUL, the
 * DOS name after the long name, tagged items (object id first, then the
 * others as they were), padded to 8; stream entries: none when only the
 * unnamed data stream exists (its hash in the dentry), else, with a zero
 * hash in the dentry, the reparse stream (reparse points), the unnamed data
 * stream, then the named streams.
 *
 * Every offset, length and count of the input is checked: a bad resource is
 * -EINVAL (the caller says "corrupt WIM metadata"), never an out-of-bounds
 * read, a loop (a list reached twice) or unbounded recursion.  Names are
 * UTF-16LE on disk and UTF-8 here, unpaired surrogates as WTF-8, exactly as
 * include/wtgfs/names.h converts them, so every name round-trips.
 * Fuzzed by fuzz/fuzz_wim_meta.
 *
 * Not thread-safe: one struct wim_meta per thread, or a lock.
 */
#ifndef WTGFS_WIM_META_H
#define WTGFS_WIM_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wim_meta;

#define WIM_META_HASH_LEN 20
#define WIM_META_TAG_OBJECT_ID 0x00000001u

/* A named data stream. */
struct wim_meta_stream {
	const char *name;		 /* UTF-8/WTF-8, never empty */
	uint8_t hash[WIM_META_HASH_LEN]; /* SHA-1 of the data; all zero: empty */
};

/* rp_flags: the target of a symlink or junction was stored as it was, not
 * fixed up to the image's root (wimlib's WIM_RP_FLAG_NOT_FIXED) */
#define WIM_META_RP_NOT_FIXED 0x0001u

/* The facts one dentry (one name of an inode) holds. */
struct wim_meta_entry {
	const char *name;     /* long name, UTF-8/WTF-8; "" for the root */
	const char *dos_name; /* 8.3 name on this name, NULL: none */
	uint32_t attributes;  /* FILE_ATTRIBUTE_*; DIRECTORY makes a directory */
	int32_t security_id;  /* -1: none, else an index into the security table */
	uint64_t creation_time, last_access_time, last_write_time; /* NT 100 ns */
	/* With FILE_ATTRIBUTE_REPARSE_POINT (which then has no link group): */
	uint32_t reparse_tag;
	uint16_t rp_reserved; /* the reparse header's reserved field */
	uint16_t rp_flags;    /* wimlib's: WIM_META_RP_NOT_FIXED or 0 */
	/* Without it: 0 when the inode has one name; equal ids = one inode. */
	uint64_t hard_link_group_id;
	uint32_t unknown_0x54; /* kept as read; 0 for new dentries */
	/* The unnamed data stream (an EFS file: its raw encrypted stream);
	 * directories have none (zero). */
	uint8_t hash[WIM_META_HASH_LEN];
	/* The reparse stream: the reparse data without its 8-byte header. */
	uint8_t reparse_hash[WIM_META_HASH_LEN];
	const struct wim_meta_stream *streams; /* named data streams */
	size_t nstreams;
	/* The object id (TAG_OBJECT_ID's data, 16 or 64 bytes), NULL: none. */
	const uint8_t *object_id;
	size_t object_id_len;
	/* Every other tagged item (EAs, wimlib's UNIX data...), raw as stored:
	 * {le32 tag, le32 len, data padded to 8} each; NULL/0: none. */
	const uint8_t *tagged;
	size_t tagged_len;
};

/* A zeroed entry with security_id -1. */
void wim_meta_entry_init(struct wim_meta_entry *e);

/* Parses a copy of @len bytes (@bytes may be freed after).  0, -EINVAL for
 * a bad resource, -ENOMEM. */
int wim_meta_parse(const void *bytes, size_t len, struct wim_meta **ret);
/* The same without the copy: @bytes stay as they are until wim_meta_free. */
int wim_meta_parse_shared(const void *bytes, size_t len, struct wim_meta **ret);
/* The same, lazily: the security table and the root now, each directory's
 * list when a call first reaches it (a path through it, a removal or a
 * rename of its subtree), with the same checks; the whole tree for
 * wim_meta_walk, wim_meta_each and wim_meta_max_link_group.  So a change
 * to a few directories of a large image reads those alone.  A bad list
 * found later is that call's -EINVAL, and every call's after it. */
int wim_meta_parse_lazy(const void *bytes, size_t len, struct wim_meta **ret);
/* Whether lists remain unread (a lazy parse that has not read them all). */
bool wim_meta_is_lazy(const struct wim_meta *m);
void wim_meta_free(struct wim_meta *m);

/* ---- security table ---- */

uint32_t wim_meta_sd_count(const struct wim_meta *m);
/* 0 and the descriptor's bytes (pointing into @m), or -ENOENT. */
int wim_meta_sd_get(const struct wim_meta *m, uint32_t id, const void **sd, size_t *len);
/* The id of a descriptor with exactly these bytes, or -ENOENT. */
int wim_meta_sd_find(const struct wim_meta *m, const void *sd, size_t len);
/* The id of these bytes, appended when new (see the top for what moves);
 * -EINVAL for an empty one or one over 4 GiB, -ENOMEM. */
int wim_meta_sd_add(struct wim_meta *m, const void *sd, size_t len);

/* ---- the tree ----
 * Paths are exact names (case-sensitive, as wimlib keeps at most one name per
 * case-sensitive spelling) joined by '/'; "" is the root; no leading or
 * trailing '/'.  Errors: -ENOENT (no such name), -ENOTDIR (a component is
 * not a directory), -EEXIST, -EINVAL (bad name or entry, or a directory on
 * the way that holds one name twice: found at its first lookup, since a
 * parse indexes no names), -ENOMEM.
 * The entry handed out points into @m and stays valid until the next
 * change or wim_meta_free. */

int wim_meta_get(struct wim_meta *m, const char *path, struct wim_meta_entry *out);

/* An inode's facts live in each of its names (dentries): set them on every
 * name.  wimlib takes a group's facts from its first name and links names
 * only when their unnamed data hashes agree and none is a directory.
 *
 * Replaces every fact of the dentry at @path with @e's (@e->name must be
 * NULL or its current name: renames go through wim_meta_rename).  A
 * directory with children stays one (-EISDIR when @e drops DIRECTORY); a
 * file does not become a directory (-ENOTDIR).  @e's strings and arrays are
 * copied. */
int wim_meta_set(struct wim_meta *m, const char *path, const struct wim_meta_entry *e);

/* Adds a new dentry named @e->name in the directory @dir; a new directory
 * starts empty (add its children after it). */
int wim_meta_add(struct wim_meta *m, const char *dir, const struct wim_meta_entry *e);

/* Removes the dentry at @path and its whole subtree (not the root). */
int wim_meta_remove(struct wim_meta *m, const char *path);

/* Moves the dentry at @from, with its subtree and every fact (the DOS name
 * too: set it after if it changes), to @to, whose parent must exist and
 * which must not (-EEXIST); -EINVAL when @to lies inside @from. */
int wim_meta_rename(struct wim_meta *m, const char *from, const char *to);

/* The highest hard link group id in the tree (0: none): new groups take
 * ids above it. */
uint64_t wim_meta_max_link_group(struct wim_meta *m); /* UINT64_MAX: a bad list */

/* Calls @fn for every dentry of the (patched) tree, parents before their
 * children, siblings in the order they are stored; stops at and returns the
 * first non-zero value @fn returns.  @path as for wim_meta_get. */
int wim_meta_walk(struct wim_meta *m,
		  int (*fn)(void *arg, const char *path, const struct wim_meta_entry *e),
		  void *arg);
/* The same without paths or order: every dentry of the tree once, in the
 * order they are held in memory (cheaper: for what does not depend on the
 * order). */
int wim_meta_each(struct wim_meta *m, int (*fn)(void *arg, const struct wim_meta_entry *e),
		  void *arg);
/* What changed since the parse, each dentry once or twice: as it was
 * parsed (@sign -1) when it is gone or its facts changed, and as it is now
 * (@sign +1) when it is new or its facts changed (a rename too); what a
 * removal took is named in full.  Stops at @fn's first non-zero value.
 * Looks only at the dentries held, so it is cheap after a lazy parse. */
int wim_meta_each_change(const struct wim_meta *m,
			 int (*fn)(void *arg, const struct wim_meta_entry *e, int sign), void *arg);

/* The new resource's bytes (malloc'd, the caller frees): the old bytes with
 * the changes patched in, the relocated lists at the end.  Without a change
 * it is the parsed bytes exactly.  @m stays usable. */
int wim_meta_write(struct wim_meta *m, void **bytes, size_t *len);
/* The same for an appender that reuses the old resource's stored chunks of
 * @chunk_size bytes: a relocated list whose leading entries keep their
 * bytes (up to the first added, removed or resized one) goes where they fall
 * at their old offsets within a chunk, when they fill one at least, the old
 * bytes before the list in its first chunk copied in front of it; so each
 * chunk of them equals an old chunk, and appending a name to a directory of
 * thousands costs the chunks from the name on, not the whole list again.
 * *@from_ret (malloc'd, *@nfrom_ret entries, one per new chunk) names the
 * old chunk each new chunk may equal: its own index where nothing moved.
 * (Only a guess: the appender compares the bytes.) */
int wim_meta_write_chunked(struct wim_meta *m, uint32_t chunk_size, void **bytes, size_t *len,
			   uint32_t **from_ret, size_t *nfrom_ret);
/* Gives @m a malloc'd copy of the parsed bytes in @cap bytes (taken; freed
 * when @cap is short of them), which the next wim_meta_write writes into
 * instead of copying them then: the copy made on another thread, while the
 * parse runs. */
void wim_meta_give_copy(struct wim_meta *m, void *copy, size_t cap);

#endif
