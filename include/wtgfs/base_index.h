/*
 * The base as diff asks about it: "base inode N" and "base name (dir,
 * name)", answered from the index of the base's metadata that a delta keeps
 * (wtg_store_base_index_*), so that a diff reads the few records its change
 * names and never loads the image.
 *
 * The index is built from a loaded base tree, once per delta: at 'wtgfs
 * init', and on the first writable open (a mount) of a delta made before
 * format 4.  A delta without one (such an old delta opened read-only) is
 * answered from the image's tree, loaded at open, with the same answers.
 * Stream data is read from the image itself, opened on the first read only
 * (and checked to be the delta's base then), through a key per stream that
 * finds its bytes without loading the tree (wtg_source_find_blob).
 *
 * What a base inode carries is what diff compares: attributes, the security
 * descriptor, times, reparse data (full buffer), object id, $EA, its names
 * with their DOS names, NTFS's link count beyond them, and its streams with
 * their sizes.  Records are cached: a pointer stays valid until
 * wtg_base_free().  Not thread-safe.  All calls return 0 or -errno.
 */
#ifndef WTGFS_BASE_INDEX_H
#define WTGFS_BASE_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wtg_store;
struct wtg_tree;
struct wtg_blob;
struct wtg_source_options;

struct wtg_base_name {
	uint64_t dir;
	char *name;
	char *dos; /* its DOS (8.3) name, NULL when none */
};

struct wtg_base_stream {
	char *name; /* "" for the unnamed stream */
	uint64_t size;
	uint64_t base_size; /* bytes the image holds for it (0 without any) */
	uint8_t *key;	    /* finds those bytes (wtg_source_blob_key); NULL when none */
	uint32_t key_len;
	struct wtg_blob *blob; /* found on the first read */
};

struct wtg_base_inode {
	uint64_t ino;
	bool is_dir;
	uint32_t attributes;
	uint32_t nlink_extra; /* NTFS's links beyond its names: separate DOS names */
	int64_t crtime, mtime, atime, ctime;
	uint32_t sd_id; /* WTG_NO_SD when none */
	const uint8_t *sd;
	uint32_t sd_len;
	uint8_t *reparse; /* full buffer, header included; NULL when none */
	uint32_t reparse_len;
	uint8_t *object_id; /* NULL when none */
	uint32_t object_id_len;
	uint8_t *ea; /* the $EA value, NULL when none */
	uint32_t ea_len;
	struct wtg_base_name *names; /* in the tree's order */
	uint32_t nnames;
	struct wtg_base_stream *streams; /* the unnamed one first when present */
	uint32_t nstreams;
};

struct wtg_base;

/*
 * The packed form of a record, as the index stores it (the layout is at the
 * top of src/base_index.c): outside bytes when a delta is read, so unpack
 * refuses any record that is short, long or malformed (-EIO) and never
 * reads past @len; a record it accepts packs back to the same bytes.
 * *ret (its sd and sd_len unset) is freed with wtg_base_record_free.
 */
int wtg_base_record_unpack(const uint8_t *p, size_t len, uint64_t ino,
			   struct wtg_base_inode **ret);
int wtg_base_record_pack(const struct wtg_base_inode *in, uint8_t **buf_ret, size_t *len_ret);
void wtg_base_record_free(struct wtg_base_inode *in);

/* Writes the index of @tree, the delta's base as loaded, into the writable
 * @store (replacing any), in one durable batch. */
int wtg_base_index_build(struct wtg_store *store, const struct wtg_tree *tree);

/* The base of the open delta @store: its index, or without one the image
 * loaded (wtg_view_load_base: @base_path, @opt as there).  @store stays
 * the caller's and must outlive the base. */
int wtg_base_open(struct wtg_store *store, const char *base_path,
		  const struct wtg_source_options *opt, struct wtg_base **base_ret);
void wtg_base_free(struct wtg_base *base);
/* True when the answers come from the delta's index, not a loaded image. */
bool wtg_base_indexed(const struct wtg_base *base);

/* Base inode @ino into *inode_ret, NULL when the base has none. */
int wtg_base_inode(struct wtg_base *base, uint64_t ino, const struct wtg_base_inode **inode_ret);
/* The inode the base's name @name (spelled exactly so) in @dir holds (0
 * when none), and that name's DOS name (NULL when none; valid as the
 * inode's record).  @dos_ret may be NULL. */
int wtg_base_lookup(struct wtg_base *base, uint64_t dir, const char *name, uint64_t *ino_ret,
		    const char **dos_ret);
/* Reads @size bytes at @off of the base's bytes of stream @name ("" the
 * unnamed one) of base inode @ino; short only at their end.  Returns bytes
 * or -errno. */
long wtg_base_read(struct wtg_base *base, uint64_t ino, const char *name, void *buf, size_t size,
		   uint64_t off);

/* What the base was asked: records read from the index or the tree. */
struct wtg_base_counts {
	uint64_t inodes, lookups, reads;
	bool image_opened; /* the image itself was opened (data, or no index) */
};
void wtg_base_counts(const struct wtg_base *base, struct wtg_base_counts *counts_ret);

#endif
