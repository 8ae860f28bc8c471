/*
 * The merged view: a base image's tree with a delta's layer stack applied,
 * and the operations that change it.
 *
 * Opening a delta loads the base tree, checks that the base is the one the
 * delta was made on, and applies every record of the layer stack to the tree
 * in memory.  From then on the tree is the truth the mount serves, and each
 * change is written through to the delta's open batch: names at once, inode
 * records and stream sizes at commit, file data in 64 KiB chunks that are
 * stored when a write fills them, and at commit.  A commit happens at
 * fsync (durable when it returns), at close (safe from a crash of the
 * daemon, durable with the next fsync or within a second), and at least
 * once a second from the view's own thread.
 *
 * Locking: one reader-writer lock that prefers writers, so readers that
 * keep coming cannot starve a change; a thread must not take it shared
 * twice.  Readers (lookups, attributes, reads) share it through
 * wtg_view_lock_shared(); every change takes it alone inside the call.
 * A deleted inode is marked gone, and freed only once the kernel forgets it
 * (wtg_view_forget): until then an inode pointer stays valid, and for a
 * caller that gives no references, as long as the view.
 *
 * A view without a delta (wtg_view_open_image) is read-only: changes answer
 * -EROFS.  All calls return 0 or -errno.
 */
#ifndef WTGFS_VIEW_H
#define WTGFS_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "wtgfs/tree.h"

struct wtg_source;
struct wtg_source_options;
struct wtg_store;
struct wtg_store_base;

struct wtg_view;

/* A read-only view of a bare image. */
int wtg_view_open_image(const char *spec, const struct wtg_source_options *opt,
			struct wtg_view **view_ret);
/* A writable view of the delta @path over its base: the recorded path, or
 * @base_path (then recorded) when the base moved.  Refuses a base whose
 * identity differs (-ESTALE), with one line. */
int wtg_view_open_delta(const char *path, const char *base_path,
			const struct wtg_source_options *opt, struct wtg_view **view_ret);
/* Opens the base of the open delta @store without loading its tree: the
 * recorded path, or @base_path (recorded when the store is writable).
 * Refuses a base whose identity differs (-ESTALE), with one line. */
int wtg_view_open_base(struct wtg_store *store, const char *base_path,
		       const struct wtg_source_options *opt, struct wtg_source **src_ret);
/* Opens the base as wtg_view_open_base() does and loads it into
 * @tree_ret.  A writable @store without an index of its base (a delta
 * older than format 4) gets one (wtg_base_index_build). */
int wtg_view_load_base(struct wtg_store *store, const char *base_path,
		       const struct wtg_source_options *opt, struct wtg_tree *tree_ret);
/* A read-only view of snapshot @snapshot of the delta @path (beside a
 * writable mount of it, or alone), over its base (@base_path as above, not
 * recorded): changes answer -EROFS.  @snapshot NULL: HEAD, as it stood at
 * the last commit before this call, however long the view is read (one read
 * transaction from open to close, so a mount writing meanwhile changes
 * nothing it sees; the mount's WAL grows until it closes). */
int wtg_view_open_at(const char *path, const char *base_path, const char *snapshot,
		     const struct wtg_source_options *opt, struct wtg_view **view_ret);
/* A writable view of an open delta over a loaded tree, without checking
 * that the tree is the delta's base (tests and fuzzing).  Takes over both,
 * also when it fails. */
int wtg_view_open_tree(struct wtg_store *store, struct wtg_tree *tree,
		       struct wtg_view **view_ret);
/* Starts the commit thread and reopens the delta when the process forked
 * since the open (a daemon): call once the serving process is final. */
int wtg_view_start(struct wtg_view *view);
/* Commits what is pending and closes; returns the commit's result. */
int wtg_view_close(struct wtg_view *view);

struct wtg_tree *wtg_view_tree(struct wtg_view *view);
/* False for an image, or a snapshot: every change answers -EROFS. */
bool wtg_view_writable(const struct wtg_view *view);
/* Rises with each rollback: a handle opened before is stale. */
uint64_t wtg_view_generation(const struct wtg_view *view);
/* Where the base image lies (for /proc/mounts). */
const char *wtg_view_base_path(const struct wtg_view *view);

/* The base as a delta records it: path, size, and the hashed identity. */
int wtg_view_describe_base(const char *spec, const struct wtg_source *src,
			   struct wtg_store_base *base_ret);

void wtg_view_lock_shared(struct wtg_view *view);
void wtg_view_unlock(struct wtg_view *view);

/* ---- reading (under wtg_view_lock_shared) ---- */

struct wtg_inode *wtg_view_inode(struct wtg_view *view, uint64_t ino);
/* The bytes of @stream that take space: what the delta stores (chunks,
 * not holes) and the base's bytes it shows, at most the stream's size. */
uint64_t wtg_view_allocated(struct wtg_view *view, const struct wtg_inode *inode,
			    struct wtg_stream *stream);
/* The name @name in @dir (an exact match first, then one equal ignoring
 * case), NULL when none or @dir is not a directory. */
struct wtg_dentry *wtg_view_lookup(struct wtg_view *view, struct wtg_inode *dir, const char *name);
/* The name at @rel ("a/b/c", from the root, each part as wtg_view_lookup
 * finds it), NULL when none (or it is gone). */
struct wtg_dentry *wtg_view_lookup_path(struct wtg_view *view, const char *rel);
/* The POSIX target of a symlink or junction (wtg_tree_readlink). */
long wtg_view_readlink(struct wtg_view *view, const struct wtg_inode *inode,
		       const struct wtg_inode *dir, char *buf, size_t size);
/* The security descriptor of @inode, NULL when none. */
const struct wtg_sd *wtg_view_sd(struct wtg_view *view, const struct wtg_inode *inode);
/* The full reparse buffer of @inode, NULL when none. */
const uint8_t *wtg_view_reparse(struct wtg_view *view, const struct wtg_inode *inode,
				uint32_t *len_ret);
/* For statfs: bytes of unnamed streams, inode numbers in use. */
void wtg_view_counts(struct wtg_view *view, uint64_t *data_bytes_ret, uint64_t *inodes_ret);
/* Reads @stream of @inode (named streams too); short only at its end. */
long wtg_view_read(struct wtg_view *view, struct wtg_inode *inode, struct wtg_stream *stream,
		   void *buf, size_t size, uint64_t off);

/* Reads the unnamed data stream of @ino, taking the shared lock itself and
 * dropping it while it decodes bytes of the base; 0 bytes when the inode is
 * gone. */
long wtg_view_read_data(struct wtg_view *view, uint64_t ino, void *buf, size_t size,
			uint64_t off);

/* ---- changing (each takes the lock itself) ---- */

enum wtg_view_kind { WTG_VIEW_FILE, WTG_VIEW_DIR, WTG_VIEW_SYMLINK };

/* A new file, directory or symlink (@target) named @name in @dir, with the
 * security descriptor its parent passes on and the archive attribute.
 * -EINVAL for a name Windows cannot hold (-ENAMETOOLONG past 255 UTF-16
 * units), -EEXIST when a name equal ignoring case is there. */
int wtg_view_create(struct wtg_view *view, uint64_t dir, const char *name, enum wtg_view_kind kind,
		    const char *target, struct wtg_inode **inode_ret);
/* A special file as WSL stores it: @mode's type (S_IFIFO, S_IFSOCK,
 * S_IFCHR, S_IFBLK; else -EINVAL) makes an empty reparse point of tag
 * LX_FIFO, AF_UNIX, LX_CHR or LX_BLK, and the EA $LXMOD keeps @mode,
 * $LXDEV the device number (@major, @minor) of a device. */
int wtg_view_mknod(struct wtg_view *view, uint64_t dir, const char *name, uint32_t mode,
		   uint32_t major, uint32_t minor, struct wtg_inode **inode_ret);
int wtg_view_link(struct wtg_view *view, uint64_t ino, uint64_t dir, const char *name,
		  struct wtg_inode **inode_ret);
/* unlink (@want_dir false) or rmdir (true). */
int wtg_view_remove(struct wtg_view *view, uint64_t dir, const char *name, bool want_dir);
#define WTG_VIEW_NOREPLACE 1u
#define WTG_VIEW_EXCHANGE 2u
int wtg_view_rename(struct wtg_view *view, uint64_t dir, const char *name, uint64_t newdir,
		    const char *newname, unsigned flags);

/* Changes only the case of a name of @ino: the name equal to @name ignoring
 * case is spelled @name from now on (-EINVAL when none is).  A rename the
 * kernel never sends: a lookup of either spelling finds the same file, so
 * rename(2) sees one file and does nothing.  *dir_ret and *old_ret
 * (malloc'd) say which name changed. */
int wtg_view_respell(struct wtg_view *view, uint64_t ino, const char *name, uint64_t *dir_ret,
		     char **old_ret);

/* The kernel's references: one more for each entry it is given (under the
 * shared lock), @n fewer when it forgets them.  A gone inode is freed once
 * it has no handle and no reference left. */
void wtg_view_ref(struct wtg_view *view, struct wtg_inode *inode);
void wtg_view_forget(struct wtg_view *view, uint64_t ino, uint64_t n);

/* Counts open handles: an inode without names lives until the last one. */
int wtg_view_open(struct wtg_view *view, uint64_t ino);
/* A close() of @ino: what is pending commits, without waiting for the disk,
 * so a closed file survives a crash of the daemon (fsync: of the machine);
 * @ino's data goes into chunks, not the journal. */
int wtg_view_flush(struct wtg_view *view, uint64_t ino);
/* The last close of a handle: its data joins the open batch. */
int wtg_view_release(struct wtg_view *view, uint64_t ino);

/* @stream NULL: the unnamed data stream. */
long wtg_view_write(struct wtg_view *view, uint64_t ino, const char *stream, const void *buf,
		    size_t size, uint64_t off);
/* A write through a handle opened at @generation (wtg_view_generation):
 * -ESTALE when a rollback came since. */
long wtg_view_write_handle(struct wtg_view *view, uint64_t generation, uint64_t ino,
			   const char *stream, const void *buf, size_t size, uint64_t off);
int wtg_view_truncate(struct wtg_view *view, uint64_t ino, const char *stream, uint64_t size);
/* Replaces the whole named stream @name (a user.* xattr): @flags 1 create
 * only (-EEXIST), 2 replace only (-ENODATA). */
int wtg_view_set_stream(struct wtg_view *view, uint64_t ino, const char *name, const void *data,
			size_t size, int flags);
int wtg_view_remove_stream(struct wtg_view *view, uint64_t ino, const char *name);

/* Times in NTFS units; a negative value leaves that time alone. */
int wtg_view_set_times(struct wtg_view *view, uint64_t ino, int64_t crtime, int64_t mtime,
		       int64_t atime, int64_t ctime);
/* The FILE_ATTRIBUTE_* flags a person may set (directory and reparse-point
 * bits follow the inode). */
int wtg_view_set_attributes(struct wtg_view *view, uint64_t ino, uint32_t attributes);
int wtg_view_set_sd(struct wtg_view *view, uint64_t ino, const void *sd, size_t len);
/* @data NULL removes the reparse point. */
int wtg_view_set_reparse(struct wtg_view *view, uint64_t ino, const void *data, size_t len);
/* Gives the name @name of @dir the DOS (8.3) name @dos; @dos NULL removes
 * it (-ENODATA when it has none).  A DOS name is a name's, not the inode's:
 * the file's other names keep theirs, and a rename or removal of @name
 * drops it.  -EINVAL for what is not an upper-case 8.3 name, -EEXIST when
 * another name of @dir is @dos, long or short. */
int wtg_view_set_dos_name(struct wtg_view *view, uint64_t dir, const char *name, const char *dos);
int wtg_view_set_object_id(struct wtg_view *view, uint64_t ino, const void *data, size_t len);
/* Replaces the whole $EA (system.ntfs_ea): -EINVAL unless wtg_ea_valid();
 * @data NULL removes it (-ENODATA when there is none). */
int wtg_view_set_ea(struct wtg_view *view, uint64_t ino, const void *data, size_t len);
/* Sets le32 entries of the $EA (WSL's $LXUID, $LXGID, $LXMOD), the others
 * kept: wtg_ea_put_u32() under the lock. */
int wtg_view_put_ea_u32(struct wtg_view *view, uint64_t ino, const char *const *names,
			const uint32_t *values, size_t n);

/* Commits everything pending: durable when @durable (fsync), else safe
 * from a crash of this process only.  Small changes to chunk buffers go to
 * the delta's journal (see wtgfs/store.h), the buffers stay. */
int wtg_view_sync(struct wtg_view *view, bool durable);

/* Checks what the delta @path takes from its base (found as for
 * wtg_view_open_delta, @base_path not recorded): that it is the base the
 * delta was made on, that every base inode a record of any layer names is
 * there, and that every base stream a layer builds on (records of its size
 * or its chunks) reads back whole, which for a WIM checks its SHA-1, and
 * that each stream sum a mount kept (wtg_store_put_sum) whose fingerprint
 * still fits its layer is the SHA-1 of the bytes it names.  One line per
 * problem; -EIO when there is any.  *streams_ret: base streams read,
 * *sums_ret: sums checked. */
int wtg_view_verify_base(const char *path, const char *base_path,
			 const struct wtg_source_options *opt, uint64_t *streams_ret,
			 uint64_t *sums_ret, uint64_t *problems_ret);

/* ---- layers (writable views of a delta) ---- */

/* Seals what the mount shows as snapshot @name: every change that returned
 * before the call is in it, none that began after it returned, and each
 * change (a write request, a rename...) wholly in or out.  Durable. */
int wtg_view_snapshot(struct wtg_view *view, const char *name, const char *message);

/* What a rollback changed, for the caller to tell the kernel's caches. */
struct wtg_view_entry {
	uint64_t dir;
	char *name;
};
struct wtg_view_changes {
	uint64_t *inodes; /* sorted: attributes, data or names changed */
	size_t ninodes;
	struct wtg_view_entry *entries; /* names added, removed or repointed */
	size_t nentries;
};
void wtg_view_changes_release(struct wtg_view_changes *changes);

/* Makes the view show snapshot @name (or a layer a rollback left), at once:
 * commits what is pending, rolls the delta back (wtg_store_rollback, which
 * keeps the working layer as *kept_ret), then brings every inode, name and
 * stream the layers in between mention to its new state, in time that grows
 * with those layers, not with the image.  Handles opened before are stale
 * (wtg_view_generation).  *changes_ret (release it) lists what changed. */
int wtg_view_rollback(struct wtg_view *view, const char *name, char **kept_ret,
		      struct wtg_view_changes *changes_ret);

#endif
