/*
 * The raw WIM appender: a new image added to an existing WIM file at the
 * cost of what it adds, without wimlib loading, rebuilding and recompressing
 * the image (src/wim_append.c; src/export.c uses it for `export --append`).
 *
 * It reads the header (208 bytes), the blob table (uncompressed, 50-byte
 * entries) and the XML (UTF-16LE, through libxml2) of the file, every field
 * checked; writes new blobs and the new image's metadata resource after the
 * old end of the file, each compressed in the WIM's chunk size, reusing the
 * stored bytes of a chunk of a base blob (or base metadata resource) that
 * equals the new chunk at the same index, storing raw a chunk that does not
 * shrink; then the new blob table (metadata entries first, in image order,
 * then the blobs by offset, as wimlib writes it), the new XML (the base
 * image's element copied, its counts, times, name and description set;
 * TOTALBYTES the XML's offset), fsync, and the new header in one 208-byte
 * write, fsync.  Until that header write the file reads exactly as before
 * (only bytes after its old end differ); any error, and a free without a
 * commit, truncates it back to its old size.
 *
 * The file is locked the way wimlib locks it for an in-place append
 * (flock LOCK_EX|LOCK_NB on the open file), so that the two never write it
 * at once: -EBUSY when another program holds it.
 *
 * What this does not handle (wim_append_unsupported() says why; the caller
 * falls back to wimlib): solid (ESD) resources, an integrity table, split
 * and pipable WIMs, a blob table or XML that is not where an append can
 * follow them, an XML whose images do not match the header.
 *
 * A blob (or metadata resource) of up to 64 MiB is compressed and written
 * in the background on the append's threads: an add returns once its bytes
 * are read and hashed, and an error writing it shows at a later add or at
 * the commit.  The bytes written are the same either way.
 *
 * All calls return 0 or -errno, logging one line for errors of the file.
 * Outside bytes are never trusted: a bad header, table, chunk table or XML
 * is -EINVAL ("corrupt"), never an out-of-bounds access.
 */
#ifndef WTGFS_WIM_APPEND_H
#define WTGFS_WIM_APPEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WIM_APPEND_SHA1_LEN 20

struct wim_append;

struct wim_append_info {
	uint32_t image_count, boot_index, chunk_size;
	int ctype; /* enum wimlib_compression_type */
	uint8_t guid[16];
	uint64_t file_size; /* when opened */
	uint64_t blobs;	    /* entries in the blob table */
	bool integrity;	    /* it has an integrity table (an append keeps one) */
	bool rp_fix;	    /* its header says reparse-point fixups were done */
};

/* What an append wrote, for messages and the tests. */
struct wim_append_stats {
	uint64_t blobs_new, blobs_shared;	   /* add_blob: written, already there */
	uint64_t chunks_compressed, chunks_raw;	   /* new chunks (raw: did not shrink) */
	uint64_t chunks_reused, bytes_reused;	   /* stored chunks copied from a base */
	uint64_t meta_chunks, meta_chunks_reused;  /* of the metadata resource */
	uint64_t bytes_written;			   /* after the old end, all told */
	uint64_t integrity_hashed, integrity_reused; /* integrity table chunks */
};

/*
 * Opens @path for an append: read-write, locked, header, blob table and
 * XML read and checked.  -EBUSY when another program holds the lock.
 */
int wim_append_open(const char *path, struct wim_append **wa_ret);
/* The same on an open descriptor, read only, without the lock (the fuzz
 * target; nothing can be written). */
int wim_append_open_fd(int fd, const char *what, struct wim_append **wa_ret);
/* Without a commit: truncates the file back to its size when opened. */
void wim_append_free(struct wim_append *wa);
/* libxml2 prints its parse errors to stderr, in the thread that parses,
 * unless told otherwise; wimlib parses a WIM's XML with the same libxml2.
 * Silences them in the calling thread: the caller says in one line what
 * it could not read. */
void wim_append_quiet_xml(void);

void wim_append_get_info(const struct wim_append *wa, struct wim_append_info *info);

/* Chunks of a new blob are compressed on up to @n threads (default 1). */
#define WIM_APPEND_MAX_THREADS 16
void wim_append_set_threads(struct wim_append *wa, unsigned n);
/* NULL when the raw append can write this WIM, else why not. */
const char *wim_append_unsupported(const struct wim_append *wa);

/* Image @image's (1-based) metadata resource: its SHA-1, and its whole
 * uncompressed bytes (malloc'd, SHA-1 checked). */
int wim_append_metadata_sha1(const struct wim_append *wa, int image,
			     uint8_t sha1_ret[WIM_APPEND_SHA1_LEN]);
int wim_append_read_metadata(struct wim_append *wa, int image, void **bytes_ret, size_t *len_ret);
/* The same bytes without a copy: kept by @wa (valid until the next read of
 * another image's metadata, or wim_append_free).  The first such read of
 * an append may run on another thread while this one adds blobs. */
int wim_append_metadata_bytes(struct wim_append *wa, int image, const void **bytes_ret,
			      size_t *len_ret);
/* @bytes (@len, taken: freed with @wa, or at once on an error) as image
 * @image's metadata resource decoded, as if wim_append_metadata_bytes had
 * read them: for bytes the caller had from elsewhere and checked against
 * the image's SHA-1 (wim_append_metadata_sha1).  -EINVAL when @len is not
 * the resource's size or metadata bytes are kept already. */
int wim_append_keep_metadata(struct wim_append *wa, int image, void *bytes, size_t len);
/* wim_append_metadata_bytes with the SHA-1 check on a thread of its own,
 * so that the caller parses while it runs; then @also (NULL: none) runs on
 * that thread, given @ctx, when the bytes matched.  Nothing may rely on the
 * bytes before wim_append_metadata_check returns 0 (-EINVAL, logged: they
 * do not match, and they are dropped); every other use of the metadata
 * waits for it too. */
int wim_append_metadata_bytes_checking(struct wim_append *wa, int image, const void **bytes_ret,
				       size_t *len_ret, void (*also)(void *ctx), void *ctx);
int wim_append_metadata_check(struct wim_append *wa);

/* Reads @len bytes at @off of a new blob's data into @buf: 0 or -errno. */
typedef int (*wim_append_read_fn)(void *ctx, void *buf, size_t len, uint64_t off);

/*
 * Adds a blob of @size (> 0) bytes that @read gives, and @refs references
 * to it; its SHA-1 in @sha1_ret.  A blob the WIM holds already is not
 * written again.  @base_sha1 (NULL: none) names a blob of the WIM whose
 * stored chunks are copied for each chunk of the new data equal to it.
 */
int wim_append_add_blob(struct wim_append *wa, uint64_t size, wim_append_read_fn read, void *ctx,
			const uint8_t *base_sha1, uint32_t refs,
			uint8_t sha1_ret[WIM_APPEND_SHA1_LEN]);

/* A byte range of a new blob that may differ from its base blob. */
struct wim_append_range {
	uint64_t offset, length;
};
/* The same, told where the data may differ from @base_sha1's (@changed,
 * sorted, not overlapping): a chunk outside every range is the base's, its
 * stored bytes copied without decompressing them to compare. */
int wim_append_add_blob_ranges(struct wim_append *wa, uint64_t size, wim_append_read_fn read,
			       void *ctx, const uint8_t *base_sha1,
			       const struct wim_append_range *changed, size_t nchanged,
			       uint32_t refs, uint8_t sha1_ret[WIM_APPEND_SHA1_LEN]);

/* The same with @bytes (malloc'd, @size of them) taken: freed by @wa, even
 * on an error, without a copy. */
int wim_append_add_buffer(struct wim_append *wa, void *bytes, size_t size, const uint8_t *base_sha1,
			  const struct wim_append_range *changed, size_t nchanged, uint32_t refs,
			  uint8_t sha1_ret[WIM_APPEND_SHA1_LEN]);

/*
 * When the SHA-1 of the new data is known already (@sha1, a delta's
 * stream sum): whether wim_append_add_known can write it from the bytes
 * of the chunks that touch @changed alone, every other chunk being
 * @base_sha1's stored one (a compressed, not solid base this WIM held
 * before the append, of the same chunk sizes there), and
 * the new resource is sure to shrink (one that does not is stored whole,
 * uncompressed, from bytes the caller does not have).
 */
bool wim_append_can_add_known(struct wim_append *wa, uint64_t size, const uint8_t *base_sha1,
			      const struct wim_append_range *changed, size_t nchanged);
/* wim_append_add_buffer for such data, @sha1 its SHA-1 (not checked):
 * @bytes need hold only the chunks that touch @changed (taken, as there).
 * -EINVAL when wim_append_can_add_known says no. */
int wim_append_add_known(struct wim_append *wa, void *bytes, size_t size, const uint8_t *base_sha1,
			 const struct wim_append_range *changed, size_t nchanged,
			 const uint8_t sha1[WIM_APPEND_SHA1_LEN], uint32_t refs);

/* Reads @len bytes at @off of the uncompressed data of blob @sha1, one the
 * WIM held when opened (-ENOENT for another), a long read decoded on two
 * threads.  (As the chunks an append copies, the bytes are not checked
 * against the blob's SHA-1.) */
int wim_append_read_blob(struct wim_append *wa, const uint8_t sha1[WIM_APPEND_SHA1_LEN], void *buf,
			 size_t len, uint64_t off);

/* Reads @len bytes at @off of the uncompressed data of blob @sha1, one the
 * WIM held when opened (-ENOENT for another), a long read decoded on two
 * threads.  (As the chunks an append copies, the bytes are not checked
 * against the blob's SHA-1.) */
int wim_append_read_blob(struct wim_append *wa, const uint8_t sha1[WIM_APPEND_SHA1_LEN], void *buf,
			 size_t len, uint64_t off);

/* True when the blob table holds @sha1 (an old blob or one added). */
bool wim_append_has_blob(const struct wim_append *wa, const uint8_t sha1[WIM_APPEND_SHA1_LEN]);
/* The uncompressed size of a blob the table holds: -ENOENT when none. */
int wim_append_blob_size(const struct wim_append *wa, const uint8_t sha1[WIM_APPEND_SHA1_LEN],
			 uint64_t *size_ret);
/* @n more references to a blob the table holds: -ENOENT when none. */
int wim_append_ref(struct wim_append *wa, const uint8_t sha1[WIM_APPEND_SHA1_LEN], uint32_t n);
/* The same with where the blob was in a table read before (@at: its index
 * then, a hint: found by its SHA-1 when it moved). */
int wim_append_ref_at(struct wim_append *wa, uint32_t at, const uint8_t sha1[WIM_APPEND_SHA1_LEN],
		      uint32_t n);
/* @n references fewer (a change took them from the image it counted from):
 * -ENOENT, or -EINVAL when the blob has not that many. */
int wim_append_unref(struct wim_append *wa, const uint8_t sha1[WIM_APPEND_SHA1_LEN], uint32_t n);
/* The blob's index in the table and its size: 0 or -ENOENT. */
int wim_append_blob_at(const struct wim_append *wa, const uint8_t sha1[WIM_APPEND_SHA1_LEN],
		       uint32_t *at, uint64_t *size_ret);
/* How many blobs the table holds (an index bound for wim_append_blob_at),
 * and the SHA-1 of the one at @at (NULL: none, or a metadata entry). */
size_t wim_append_blob_count(const struct wim_append *wa);
const uint8_t *wim_append_blob_hash(const struct wim_append *wa, size_t at);
/* The same, and the blob's uncompressed size in @size_ret (one look-up). */
int wim_append_ref_size(struct wim_append *wa, const uint8_t sha1[WIM_APPEND_SHA1_LEN], uint32_t n,
			uint64_t *size_ret);

/*
 * The new image's metadata resource (@len uncompressed bytes), its chunks
 * reused from image @base_image's (0: none) where they are equal.
 */
int wim_append_set_metadata(struct wim_append *wa, const void *bytes, size_t len, int base_image);
/* The same with malloc'd @bytes, taken (freed by @wa, even on an error);
 * @from (NULL: none; @nfrom entries, read before this returns) names for
 * each new chunk the base's chunk it may equal, as wim_meta_write_chunked
 * gives them: chunk i is compared with base chunk i without it. */
int wim_append_set_metadata_take(struct wim_append *wa, void *bytes, size_t len, int base_image,
				 const uint32_t *from, size_t nfrom);

/* The new image's XML element. */
struct wim_append_image {
	const char *name;	 /* required, not in use in the WIM */
	const char *description; /* NULL: none (as wimlib_export_image) */
	int copy_of;		 /* the image whose element is copied (0: none) */
	uint64_t dir_count, file_count, total_bytes, hard_link_bytes;
	uint64_t creation_time, last_modification_time; /* NT 100 ns */
	bool boot;					/* make it the boot image */
	bool integrity; /* write an integrity table (kept anyway when the WIM has one) */
};

/* True when an image of the WIM has the name @name. */
bool wim_append_name_in_use(const struct wim_append *wa, const char *name);

/* @fn (NULL: none) is told, while the commit hashes chunks of the WIM for
 * its integrity table, how many bytes of how many it has hashed. */
void wim_append_set_progress(struct wim_append *wa,
			     void (*fn)(void *ctx, uint64_t done, uint64_t total), void *ctx);

/*
 * Writes the blob table, XML, integrity table (when the WIM has one or
 * @img asks for one) and header: after it the WIM holds one image more
 * (its index: image_count + 1).  Nothing may be added after.
 */
int wim_append_commit(struct wim_append *wa, const struct wim_append_image *img);

void wim_append_get_stats(const struct wim_append *wa, struct wim_append_stats *st);

/* NT time now (100 ns since 1601). */
uint64_t wim_append_nt_now(void);
/* Whether no LZ coder can shrink these @n bytes (then a chunk is stored raw
 * without trying): almost evenly spread bytes that hardly repeat. */
bool wim_append_incompressible(const void *p, size_t n);

#endif
