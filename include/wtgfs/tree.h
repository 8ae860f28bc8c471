/*
 * The tree: NTFS inodes and the names that reach them, as one image shows
 * them (the layer stack of a delta will sit on top of this).
 *
 * An inode carries what NTFS carries: attributes, a security descriptor
 * (interned: many inodes share one), 100 ns times, streams (unnamed and
 * named), reparse data and an object id.  A hard-linked file is one inode
 * under several names.  A DOS (8.3) name belongs to one name, not to the
 * inode: NTFS keeps it as a FILE_NAME of its own beside the Win32 name it
 * shortens, in that name's directory, so of a hard-linked file's names at
 * most the ones that have a short name carry it (wtg_dentry_dos_name()).  Lookups are
 * case-insensitive and case-preserving: an exact match wins, then the first name equal ignoring
 * case.
 *
 * Contract: a loaded tree is immutable, so any number of threads may read it
 * without locks.  Inode numbers are dense: the root is 1.
 */
#ifndef WTGFS_TREE_H
#define WTGFS_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wtgfs/hash.h"

struct wtg_source;
struct wtg_source_options;
struct wtg_blob;

#define WTG_ROOT_INO 1
#define WTG_NO_SD UINT32_MAX

/* A writable view's running SHA-1 of a stream written in order (see
 * view.c): running while the stream is open (ctx), its digest once the last
 * handle closed with every byte summed. */
struct wtg_stream_sum {
	struct wtg_sha1 *ctx; /* NULL: @sha1 is the digest */
	uint8_t sha1[WTG_SHA1_LEN];
};

struct wtg_stream {
	char *name; /* NULL: the unnamed data stream */
	uint64_t size;
	struct wtg_blob *blob; /* the base's bytes; NULL when none */
	uint64_t base_size;    /* of @blob */
	bool delta;	       /* a delta holds some of it: read through the view */
	uint64_t stored_size;  /* the size the delta has for it (delta streams) */
	uint64_t usage;	       /* a writable view's cache: 1 + slots holding data, 0 unknown */
	/* a writable view's: the SHA-1 of bytes [0, summed) as they were
	 * written in order since a write at 0 (NULL: none; see view.c) */
	struct wtg_stream_sum *sum;
	uint64_t summed;
};

struct wtg_inode;

struct wtg_dentry {
	char *name;
	uint32_t name_len;
	uint32_t hash;
	uint64_t pos; /* readdir position: rises with each name a directory gets */
	struct wtg_inode *inode;
	struct wtg_inode *parent; /* the directory holding this name */
	struct wtg_dentry *bucket_next;
	struct wtg_dentry *alias_next; /* the inode's next name */
	char *dos_name; /* the 8.3 name that shortens this one: wtg_dentry_dos_name() */
	/* a writable view's: the base does not hold this exact name, so its
	 * removal needs no whiteout for the base's sake */
	bool fresh;
};

struct wtg_dir {
	struct wtg_dentry **entries; /* in position order */
	uint32_t count, cap;
	struct wtg_dentry **buckets;
	uint32_t nbuckets;
	uint64_t next_pos;
};

struct wtg_inode {
	uint64_t ino;
	struct wtg_inode *parent;      /* the directory of the first name */
	struct wtg_dentry *first_name; /* heads the list of its names */
	struct wtg_dir *dir;	       /* directories only */
	uint32_t attributes;
	uint32_t reparse_tag;
	uint32_t nlink;	      /* names in the tree */
	uint32_t unlinks;     /* names removed since it was loaded (a rename is one) */
	uint32_t nlink_extra; /* NTFS's count beyond those: separate DOS names */
	uint32_t nsubdirs;
	uint32_t sd;
	int64_t crtime, mtime, atime, ctime;
	uint8_t *reparse; /* full buffer, header included: wtg_inode_reparse() */
	uint32_t reparse_len;
	struct wtg_blob *reparse_blob; /* not read yet: the source reads it on first use */
	uint32_t reparse_blob_len;
	/* the reparse data is the delta's (made through wtgfs), not the image's:
	 * a POSIX link then reads back as it was made, wherever it leads */
	bool reparse_made_here;
	uint32_t object_id_len;
	uint8_t *object_id;
	uint8_t *ea; /* the $EA value (wtgfs/ea.h), NULL when none */
	uint32_t ea_len;
	/* the name FUSE reached it by last: wtg_inode_note_name() */
	struct wtg_dentry *last_name;
	struct wtg_stream *streams; /* the unnamed stream first when present */
	uint32_t nstreams;
	/* kept by a writable view */
	uint32_t opens;	  /* open file and directory handles */
	uint64_t nlookup; /* the kernel's references (atomic under a shared lock) */
	bool dirty;	  /* metadata or stream sizes not in the delta yet */
	bool times_only;  /* dirty in its mtime and ctime alone (a write) */
	bool gone;	  /* no name and no handle: deleted */
	bool traceless;	  /* gone, and the delta keeps no record of it */
};

struct wtg_sd {
	uint8_t *data;
	uint32_t len;
	uint32_t hash;
	uint32_t bucket_next;
};

struct wtg_tree {
	struct wtg_inode **inodes; /* inodes[ino - 1] */
	uint64_t ninodes, cap;
	struct wtg_sd *sds;
	uint32_t nsds, sds_cap;
	uint32_t *sd_buckets;
	uint32_t sd_nbuckets;
	uint64_t data_bytes; /* sum of unnamed stream sizes, for statfs */
	struct wtg_source *source;
};

void wtg_tree_init(struct wtg_tree *tree, struct wtg_source *source);
void wtg_tree_release(struct wtg_tree *tree);

/* Opens @spec and loads it: the whole read-only path in one call. */
int wtg_tree_open_image(const char *spec, const struct wtg_source_options *opt,
			struct wtg_tree *tree_ret);

/* ---- building (sources only) ---- */

/* A new inode with the next inode number; directories get an empty dir. */
struct wtg_inode *wtg_tree_new_inode(struct wtg_tree *tree, bool is_dir);

/* Adds the name @name -> @child in directory @dir.  -EINVAL when the name
 * cannot appear in POSIX, -EEXIST when @dir has exactly that name already,
 * -ENOTDIR, -ENOMEM.  Counts links and subdirectories. */
int wtg_tree_link(struct wtg_tree *tree, struct wtg_inode *dir, const char *name, size_t len,
		  struct wtg_inode *child);

/* An inode with the number @ino (above every number in the tree, or one
 * that is free), for inodes a delta created; the numbers between stay
 * empty.  NULL when @ino is taken. */
struct wtg_inode *wtg_tree_new_inode_at(struct wtg_tree *tree, uint64_t ino, bool is_dir);
/* Frees @inode, which has no names left; its number becomes free. */
void wtg_tree_free_inode(struct wtg_tree *tree, struct wtg_inode *inode);

/* A copy of @src that shares its base bytes (blobs) but no memory, and has
 * no source: what the base looked like, kept while @src changes.  Inode
 * numbers, security descriptor ids and readdir positions are the same. */
int wtg_tree_clone(const struct wtg_tree *src, struct wtg_tree *dst);

/* Removes the name @de from @dir (the inode stays: the caller decides when
 * it is gone).  Counts links and subdirectories down. */
void wtg_tree_unlink(struct wtg_tree *tree, struct wtg_inode *dir, struct wtg_dentry *de);

/* The index of the first entry of @dir at position @pos or later. */
uint32_t wtg_dir_seek(const struct wtg_dir *dir, uint64_t pos);

/* Gives the name @de the DOS name @dos (copied; NULL drops it), as NTFS
 * keeps it: a separate FILE_NAME beside @de in @de's directory, which the
 * inode's nlink_extra counts.  Removing a name drops its DOS name.  Checks
 * nothing about @dos (the view checks what people set).  -ENOMEM. */
int wtg_dentry_set_dos_name(struct wtg_dentry *de, const char *dos);

/* Removes the stream @name (NULL: the unnamed one) of @inode. */
void wtg_inode_remove_stream(struct wtg_inode *inode, const char *name);

/* The id of a security descriptor equal to @data, stored once. */
uint32_t wtg_tree_intern_sd(struct wtg_tree *tree, const void *data, size_t len);

/* Frees a stream's sum (NULL: none). */
void wtg_stream_sum_free(struct wtg_stream_sum *sum);

/* Adds a stream to @inode; the unnamed one is kept first. */
struct wtg_stream *wtg_inode_add_stream(struct wtg_inode *inode, const char *name, uint64_t size,
					struct wtg_blob *blob);

/* ---- reading ---- */

struct wtg_inode *wtg_tree_inode(const struct wtg_tree *tree, uint64_t ino);
struct wtg_dentry *wtg_tree_lookup(const struct wtg_tree *tree, const struct wtg_inode *dir,
				   const char *name, size_t len);
const struct wtg_sd *wtg_tree_sd(const struct wtg_tree *tree, uint32_t id);

/* The DOS (8.3) name of the name @de, in @de's directory; NULL when it has
 * none.  Only the name a short name shortens has it: the other names of a
 * hard-linked inode have their own or none. */
const char *wtg_dentry_dos_name(const struct wtg_dentry *de);

/* True when the names of @inode do not all answer the same DOS name (some
 * have one, some another or none): a question about it asked by inode
 * number alone, as FUSE asks for extended attributes, needs the name. */
bool wtg_inode_dos_names_vary(const struct wtg_inode *inode);
/* Notes @de as the name its inode was reached by last (a FUSE lookup).
 * The one field of a loaded tree that readers write: atomically, so any
 * number of threads may note while others read. */
void wtg_inode_note_name(struct wtg_dentry *de);
/* The name noted last for @inode while it still exists, else its first
 * name; NULL when it has none. */
struct wtg_dentry *wtg_inode_current_name(const struct wtg_inode *inode);

bool wtg_inode_is_dir(const struct wtg_inode *inode);
/* Symlinks and junctions: shown as POSIX symlinks. */
bool wtg_inode_is_link(const struct wtg_inode *inode);
struct wtg_stream *wtg_inode_data(const struct wtg_inode *inode);
struct wtg_stream *wtg_inode_named_stream(const struct wtg_inode *inode, const char *name);

/* The NTFS extended attributes of @inode: the $EA value as NTFS stores
 * it and system.ntfs_ea shows it (wtgfs/ea.h), NULL when it has none. */
const uint8_t *wtg_inode_ea(const struct wtg_inode *inode, uint32_t *len_ret);

/*
 * What @inode is to POSIX, as ntfs-3g and WSL show it: S_IFDIR, S_IFLNK
 * (symlinks and junctions), S_IFIFO, S_IFCHR, S_IFBLK or S_IFSOCK (WSL's
 * empty reparse points IO_REPARSE_TAG_LX_FIFO, _LX_CHR, _LX_BLK and
 * _AF_UNIX), else S_IFREG.  For devices *major_ret and *minor_ret get the
 * number WSL keeps in the EA $LXDEV (0, 0 without one); either may be NULL.
 */
unsigned wtg_inode_posix_type(const struct wtg_inode *inode, uint32_t *major_ret,
			      uint32_t *minor_ret);

/* The path of @inode's first name from the root ("" for the root). */
int wtg_tree_path(const struct wtg_tree *tree, const struct wtg_inode *inode, char *buf,
		  size_t size);

/* The reparse buffer (header included) of @inode, read from the source on
 * first use; NULL when it has none or it cannot be read (logged). */
const uint8_t *wtg_inode_reparse(const struct wtg_tree *tree, const struct wtg_inode *inode,
				 uint32_t *len_ret);

/* Reads the base's bytes of a stream (what @stream->blob holds, up to
 * @stream->base_size); short only at their end.  Returns bytes or -errno. */
long wtg_tree_read(const struct wtg_tree *tree, const struct wtg_stream *stream, void *buf,
		   size_t size, uint64_t off);

/* True when every name of @inode is in one directory. */
bool wtg_inode_names_in_one_dir(const struct wtg_inode *inode);

/*
 * The POSIX symlink target of a symlink, junction or WSL link, as read through its
 * name in directory @dir: where Windows would resolve it from there, as a
 * path relative to @dir that stays inside the tree.  A relative target is
 * normalised ('..' resolved lexically, as Windows does, and clamped at the
 * root); an absolute one (junctions, drive paths, targets starting with
 * '\\') leads from @dir to the same place.  Each component is spelled as
 * the tree spells it when it exists.  @dir NULL, or not holding a name of
 * @inode: from the directory of its names when they share one, else from
 * its shallowest name's, so the text leads nowhere outside from any name.
 * Returns the length written (NUL terminated) or -errno (-EINVAL: not a
 * link or bad reparse data).
 */
long wtg_tree_readlink(const struct wtg_tree *tree, const struct wtg_inode *inode,
		       const struct wtg_inode *dir, char *buf, size_t size);
/*
 * What a link with reparse data @rp would read as from directory @home (as
 * wtg_tree_readlink does).  A POSIX link (LX_SYMLINK, wtgfs/reparse.h)
 * reads as its text when it is relative and stays inside the tree, or
 * when @made_here (a link made through wtgfs, wherever it leads);
 * otherwise as above.
 */
long wtg_tree_link_text(const struct wtg_tree *tree, const struct wtg_inode *home,
			const uint8_t *rp, uint32_t rlen, bool made_here, char *buf,
			size_t size);

#endif
