/*
 * Read-only base images behind one small ops struct.
 *
 * A source fills a tree with the image's inodes and names (load) and then
 * serves stream data by blob (read).  A blob is the source's own handle on
 * stored bytes; the tree keeps it opaque.  Every backend defines its ops
 * table at the bottom of its file; callers use the wrappers below.
 */
#ifndef WTGFS_SOURCE_H
#define WTGFS_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <errno.h>
#include <stdint.h>
#include <sys/types.h>

struct wtg_tree;
struct wtg_inode;
struct wtg_blob;

struct wtg_source_options {
	size_t cache_bytes; /* decompressed-chunk cache; 0 picks the default */
	const char *parent; /* a differencing disk's parent (NULL: beside it) */
};

struct wtg_source;

struct wtg_source_ops {
	const char *name;
	/* Fills @tree (initialised, empty) with the image. 0 or -errno. */
	int (*load)(struct wtg_source *src, struct wtg_tree *tree);
	/* Reads @size bytes at @off of @blob (the caller clamps to the blob's
	 * size).  Thread-safe.  Returns 0 or -errno (-EIO: bad data, logged). */
	int (*read)(struct wtg_source *src, struct wtg_blob *blob, void *buf, size_t size,
		    uint64_t off);
	/* Optional: reads @inode's reparse data from inode->reparse_blob into
	 * inode->reparse (publishing the pointer last).  0 or -errno. */
	int (*load_reparse)(struct wtg_source *src, struct wtg_inode *inode);
	/* Optional, with find_blob: a key that finds @blob again in another
	 * open of the same image, written to @key (WTG_BLOB_KEY_MAX bytes).
	 * Returns its length or -errno. */
	int (*blob_key)(struct wtg_source *src, const struct wtg_blob *blob, uint8_t *key);
	/* The blob of a key blob_key gave, found without loading the tree (a
	 * source opened only to read a few streams); owned by the source.
	 * @path names it in messages.  -ENOENT (logged) when the image has
	 * none. */
	int (*find_blob)(struct wtg_source *src, const uint8_t *key, size_t len, const char *path,
			 struct wtg_blob **blob_ret);
	void (*free)(struct wtg_source *src);
};

/* The longest key blob_key writes: 8 + 1 bytes + an NTFS stream name. */
#define WTG_BLOB_KEY_MAX 528

/*
 * What a delta binds to: the content of the base, not where it lies.  WIM:
 * "wim:GUID:INDEX:SHA1" (the image's metadata resource hash).  NTFS:
 * "ntfs:SERIAL" plus the disk's own identity when it has one
 * ("vhdx:GUID:PART"), so a copied or moved base still matches and another
 * image never does.
 */
#define WTG_IDENTITY_MAX 192

/* The identity of image @image of a WIM whose header holds @guid and whose
 * image's metadata resource has the SHA-1 @sha1, in lower-case hex: what
 * the WIM source names it and a delta made on it records. */
void wtg_wim_identity(const uint8_t guid[16], int image, const uint8_t sha1[20],
		      char out[WTG_IDENTITY_MAX]);

struct wtg_source {
	const struct wtg_source_ops *ops;
	char *path;
	char identity[WTG_IDENTITY_MAX];
};

/*
 * Opens "IMAGE[:INDEX|:NAME]": a file whose whole name exists is taken as
 * is; otherwise the text after the last ':' selects the image.  Returns 0 or
 * -errno with the reason logged.
 */
int wtg_source_open(const char *spec, const struct wtg_source_options *opt,
		    struct wtg_source **src_ret);

static inline int wtg_source_load(struct wtg_source *src, struct wtg_tree *tree)
{
	return src->ops->load(src, tree);
}

static inline int wtg_source_read(struct wtg_source *src, struct wtg_blob *blob, void *buf,
				  size_t size, uint64_t off)
{
	return src->ops->read(src, blob, buf, size, off);
}

/* -ENOTSUP for a source that cannot find its blobs again. */
static inline int wtg_source_blob_key(struct wtg_source *src, const struct wtg_blob *blob,
				      uint8_t *key)
{
	return src->ops->blob_key ? src->ops->blob_key(src, blob, key) : -ENOTSUP;
}

static inline int wtg_source_find_blob(struct wtg_source *src, const uint8_t *key, size_t len,
				       const char *path, struct wtg_blob **blob_ret)
{
	return src->ops->find_blob ? src->ops->find_blob(src, key, len, path, blob_ret) : -ENOTSUP;
}

void wtg_source_free(struct wtg_source *src);

/* True when @path starts like a WIM (normal or pipable). */
bool wtg_source_is_wim(const char *path);

/* Splits "IMAGE[:SEL]" into the path and the selector (NULL when none). */
int wtg_source_split_spec(const char *spec, char **path_ret, char **sel_ret);

/* The WIM backend, for info and tests. */
int wtg_wim_source_open(const char *path, const char *image_sel,
			const struct wtg_source_options *opt, struct wtg_source **src_ret);

#endif
