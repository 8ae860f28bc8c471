/*
 * The raw WIM appender (see include/wtgfs/wim_append.h): the WIM's header,
 * blob table and XML read and checked, new resources written after the old
 * end with the stored chunks of equal base chunks reused, then the new blob
 * table, XML and header.  The one user of libxml2; wimlib only compresses
 * and decompresses chunks here.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <wimlib.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlsave.h>

#include "wtgfs/fileio.h"
#include "wtgfs/hash.h"
#include "wtgfs/le.h"
#include "wtgfs/log.h"
#include "wtgfs/mem.h"
#include "wtgfs/names.h"
#include "wtgfs/progress.h"
#include "wtgfs/wim_append.h"

/* ---- on-disk structures ---- */

struct wim_reshdr_disk {
	uint8_t stored_size[7]; /* 0x00 le56 */
	uint8_t flags;		/* 0x07 RESHDR_* */
	uint64_t offset;	/* 0x08 le64 */
	uint64_t size;		/* 0x10 le64: uncompressed */
} __attribute__((packed));
_Static_assert(sizeof(struct wim_reshdr_disk) == 24, "a resource header is 24 bytes");

struct wim_header_disk {
	char magic[8];		 /* 0x00 "MSWIM\0\0\0" */
	uint32_t hdr_size;	 /* 0x08 le32: 208 */
	uint32_t version;	 /* 0x0C le32 */
	uint32_t flags;		 /* 0x10 le32 HDR_* */
	uint32_t chunk_size;	 /* 0x14 le32 */
	uint8_t guid[16];	 /* 0x18 */
	uint16_t part_number;	 /* 0x28 le16 */
	uint16_t total_parts;	 /* 0x2A le16 */
	uint32_t image_count;	 /* 0x2C le32 */
	struct wim_reshdr_disk blob_table; /* 0x30 */
	struct wim_reshdr_disk xml;	   /* 0x48 */
	struct wim_reshdr_disk boot_metadata; /* 0x60 */
	uint32_t boot_index;		      /* 0x78 le32 */
	struct wim_reshdr_disk integrity;     /* 0x7C */
	uint8_t unused[60];		      /* 0x94 */
} __attribute__((packed));
_Static_assert(sizeof(struct wim_header_disk) == 208, "the WIM header is 208 bytes");

struct wim_blob_disk {
	struct wim_reshdr_disk r; /* 0x00 */
	uint16_t part_number;	  /* 0x18 le16 */
	uint32_t refcnt;	  /* 0x1A le32 */
	uint8_t sha1[20];	  /* 0x1E */
} __attribute__((packed));
_Static_assert(sizeof(struct wim_blob_disk) == 50, "a blob table entry is 50 bytes");

#define WIM_HEADER_SIZE 208
#define WIM_VERSION_DEFAULT 0x10d00u
#define WIM_VERSION_SOLID 0xe00u

enum {
	HDR_RESERVED = 0x1,
	HDR_COMPRESSION = 0x2,
	HDR_READONLY = 0x4,
	HDR_SPANNED = 0x8,
	HDR_RESOURCE_ONLY = 0x10,
	HDR_METADATA_ONLY = 0x20,
	HDR_WRITE_IN_PROGRESS = 0x40,
	HDR_RP_FIX = 0x80,
	HDR_XPRESS = 0x20000,
	HDR_LZX = 0x40000,
	HDR_LZMS = 0x80000,
	HDR_XPRESS2 = 0x200000,
};

enum {
	RESHDR_FREE = 0x01,
	RESHDR_METADATA = 0x02,
	RESHDR_COMPRESSED = 0x04,
	RESHDR_SPANNED = 0x08,
	RESHDR_SOLID = 0x10,
};

/* Bounds on what is read into memory. */
#define MAX_BLOB_TABLE (1ull << 30)
#define MAX_XML (256ull << 20)
#define MAX_METADATA (1ull << 31)
#define MAX_IMAGES 65535u

/* ---- in memory ---- */

struct reshdr {
	uint64_t stored_size, offset, size;
	uint8_t flags;
};

struct blob {
	struct reshdr r;
	uint16_t part;
	uint32_t refcnt;
	uint8_t sha1[20];
};

struct wim_append {
	int fd;
	char *path;
	bool writable, locked, committed;
	struct wim_header_disk hdr;
	uint32_t chunk_size;
	int ctype;
	uint64_t old_size; /* the file's size when opened */
	uint64_t pos;	   /* where the next resource goes */
	const char *unsupported;

	struct blob *blobs; /* the old table's entries, then the added blobs */
	void *table_buf;    /* the old table as read, kept for the new one's bytes */
	size_t nblobs, cap, nold;
	uint32_t *index; /* open addressing: blob index + 1 of non-metadata blobs */
	size_t index_size;
	struct blob *meta; /* each image's metadata entry (a copy: wa->blobs moves) */
	size_t nmeta;
	size_t meta_end; /* the old table's entries up to its last metadata entry */
	bool have_new_meta;
	struct blob new_meta;

	xmlDocPtr xml;
	xmlNodePtr *images; /* the IMAGE elements by index - 1 */

	/* write_resource's, one per thread: for blobs, for metadata */
	struct wimlib_compressor *comps[WIM_APPEND_MAX_THREADS], *meta_comps[WIM_APPEND_MAX_THREADS];
	unsigned threads;
	struct wimlib_decompressor *decomp;
	uint8_t *ubuf, *cbuf, *bbuf; /* chunk_size each */
	uint8_t *meta_cache; /* the last metadata resource read, and its SHA-1 */
	size_t meta_cache_len;
	uint8_t meta_cache_sha1[20];
	struct meta_check {
		pthread_t tid;
		bool running;
		int ret;
		void (*also)(void *ctx);
		void *ctx;
	} check; /* meta_cache's SHA-1 checked on a thread of its own */
	struct wim_append_stats st;
	/* reused stored chunks side by side, copied at once by the one writer
	 * (the queue's, or write_resource after a queue_flush) */
	struct {
		uint64_t from, to, len;
	} run;
	struct queue *q; /* the write queue, from the first resource queued */
	/* the integrity table: the WIM has one (an append keeps one), and the
	 * SHA-1s of the old one when it is well formed, for the chunks of the
	 * bytes it checks [208, integ_old_end), which an append leaves alone */
	bool integrity;
	uint8_t *integ_old;
	uint32_t integ_old_n, integ_chunk;
	uint64_t integ_old_end;
	void (*progress)(void *ctx, uint64_t done, uint64_t total);
	void *progress_ctx;
};

static void queue_free(struct wim_append *wa);
static bool queue_used(const struct wim_append *wa);

static uint64_t le56(const uint8_t b[7])
{
	uint64_t v = 0;

	for (int i = 6; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

static void reshdr_get(const struct wim_reshdr_disk *d, struct reshdr *r)
{
	r->stored_size = le56(d->stored_size);
	r->flags = d->flags;
	r->offset = le64toh(d->offset);
	r->size = le64toh(d->size);
}

static void reshdr_put(const struct reshdr *r, struct wim_reshdr_disk *d)
{
	for (int i = 0; i < 7; i++)
		d->stored_size[i] = (uint8_t)(r->stored_size >> (8 * i));
	d->flags = r->flags;
	d->offset = htole64(r->offset);
	d->size = htole64(r->size);
}

static int corrupt(const struct wim_append *wa, const char *what)
{
	wtg_error("cannot append to '%s': corrupt WIM (%s)", wa->path, what);
	return -EINVAL;
}

static int pread_full(const struct wim_append *wa, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = pread(wa->fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno;
			wtg_error("cannot read '%s': %s", wa->path, strerror(err));
			return -err;
		}
		if (n == 0)
			return corrupt(wa, "a resource runs past the end of the file");
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int pwrite_full(struct wim_append *wa, const void *buf, size_t len, uint64_t off)
{
	int ret = wtg_pwrite_all(wa->fd, buf, len, off);

	if (ret)
		wtg_error("cannot write '%s': %s", wa->path, strerror(-ret));
	return ret;
}

/* Copies @len bytes of the file from @from to @to (ranges apart) in the
 * kernel, with no trip through a buffer; read and written where the file
 * system cannot. */
static int copy_within(struct wim_append *wa, uint64_t from, uint64_t to, uint64_t len)
{
	while (len) {
		loff_t in = (loff_t)from, out = (loff_t)to;
		ssize_t n = copy_file_range(wa->fd, &in, wa->fd, &out, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		from += (uint64_t)n;
		to += (uint64_t)n;
		len -= (uint64_t)n;
	}
	if (!len)
		return 0;
	size_t size = len < (1u << 20) ? (size_t)len : 1u << 20;
	uint8_t *buf = malloc(size);
	int ret = buf ? 0 : -ENOMEM;
	while (len && !ret) {
		size_t n = len < size ? (size_t)len : size;
		if (!(ret = pread_full(wa, buf, n, from)))
			ret = pwrite_full(wa, buf, n, to);
		from += n;
		to += n;
		len -= n;
	}
	free(buf);
	return ret;
}

/* Copies the run of reused chunks held. */
static int run_flush(struct wim_append *wa)
{
	int ret = wa->run.len ? copy_within(wa, wa->run.from, wa->run.to, wa->run.len) : 0;

	wa->run.len = 0;
	return ret;
}

/* A reused chunk's @len stored bytes at @from, to be at @to: joins the run
 * held when it follows it in both places, else starts one. */
static int run_add(struct wim_append *wa, uint64_t from, uint64_t to, uint64_t len)
{
	int ret;

	if (wa->run.len && (wa->run.from + wa->run.len != from || wa->run.to + wa->run.len != to) &&
	    (ret = run_flush(wa)))
		return ret;
	if (!wa->run.len) {
		wa->run.from = from;
		wa->run.to = to;
	}
	wa->run.len += len;
	return 0;
}

/* ---- the blob index ---- */

static bool is_solid_resource(const struct reshdr *r);

static size_t hash_of(const uint8_t sha1[20], size_t mask)
{
	uint64_t h;

	memcpy(&h, sha1, sizeof(h));
	return (size_t)h & mask;
}

static int index_build(struct wim_append *wa, size_t want)
{
	size_t size = 64;

	while (size < want * 2)
		size *= 2;
	uint32_t *idx = calloc(size, sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	free(wa->index);
	wa->index = idx;
	wa->index_size = size;
	for (size_t i = 0; i < wa->nblobs; i++) {
		const struct blob *b = &wa->blobs[i];
		if ((b->r.flags & RESHDR_METADATA) || is_solid_resource(&b->r))
			continue;
		size_t h = hash_of(b->sha1, size - 1);
		for (; idx[h]; h = (h + 1) & (size - 1))
			if (!memcmp(wa->blobs[idx[h] - 1].sha1, b->sha1, 20))
				break;
		if (!idx[h]) /* a duplicate entry: the first one counts, as in wimlib */
			idx[h] = (uint32_t)(i + 1);
	}
	return 0;
}

static struct blob *find_blob(const struct wim_append *wa, const uint8_t sha1[20])
{
	if (!wa->index_size)
		return NULL;
	for (size_t h = hash_of(sha1, wa->index_size - 1); wa->index[h];
	     h = (h + 1) & (wa->index_size - 1))
		if (!memcmp(wa->blobs[wa->index[h] - 1].sha1, sha1, 20))
			return &wa->blobs[wa->index[h] - 1];
	return NULL;
}

static int push_blob(struct wim_append *wa, const struct blob *b)
{
	if (wa->nblobs == wa->cap) {
		size_t cap = wa->cap ? wa->cap * 2 : 256;
		struct blob *v = realloc(wa->blobs, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		wa->blobs = v;
		wa->cap = cap;
	}
	wa->blobs[wa->nblobs++] = *b;
	if (wa->nblobs * 2 > wa->index_size)
		return index_build(wa, wa->nblobs * 2);
	if (!(b->r.flags & RESHDR_METADATA)) {
		size_t h = hash_of(b->sha1, wa->index_size - 1);
		while (wa->index[h])
			h = (h + 1) & (wa->index_size - 1);
		wa->index[h] = (uint32_t)wa->nblobs;
	}
	return 0;
}

/* ---- reading the file ---- */

static int ctype_of_flags(uint32_t flags, int *ctype)
{
	uint32_t c = flags & (HDR_XPRESS | HDR_LZX | HDR_LZMS | HDR_XPRESS2);

	if (!(flags & HDR_COMPRESSION)) {
		*ctype = WIMLIB_COMPRESSION_TYPE_NONE;
		return c ? -EINVAL : 0;
	}
	switch (c) {
	case HDR_XPRESS:
		*ctype = WIMLIB_COMPRESSION_TYPE_XPRESS;
		return 0;
	case HDR_LZX:
		*ctype = WIMLIB_COMPRESSION_TYPE_LZX;
		return 0;
	case HDR_LZMS:
		*ctype = WIMLIB_COMPRESSION_TYPE_LZMS;
		return 0;
	default:
		return -EINVAL;
	}
}

static bool within(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

/* ---- the integrity table ---- */

/* The chunk wimlib and WIMGAPI hash, and the old chunk sizes an append
 * keeps (as wimlib does; another is hashed afresh in 10 MiB chunks). */
#define INTEGRITY_CHUNK (10u << 20)
#define INTEGRITY_CHUNK_MIN 4096u
#define INTEGRITY_CHUNK_MAX (128u << 20)
#define INTEGRITY_HEAD 12 /* le32 size, le32 entries, le32 chunk size */

/*
 * The WIM's integrity table (@integ), which covers [208, @checked_end):
 * the WIM keeps one.  Its SHA-1s are kept when the table is well formed
 * for those bytes; else the append hashes every chunk again, as wimlib
 * does with a bad old table (a warning, not an error: the table is the
 * only thing it would be wrong about).
 */
static int read_integrity(struct wim_append *wa, const struct reshdr *integ, uint64_t checked_end)
{
	uint8_t head[INTEGRITY_HEAD];
	int ret;

	wa->integrity = true;
	if ((integ->flags & RESHDR_COMPRESSED) || integ->stored_size != integ->size ||
	    integ->size < INTEGRITY_HEAD || integ->offset < WIM_HEADER_SIZE ||
	    !within(integ->offset, integ->size, wa->old_size) || checked_end <= WIM_HEADER_SIZE)
		goto bad;
	if ((ret = pread_full(wa, head, sizeof(head), integ->offset)))
		return ret;
	uint32_t size = wtg_get_le32(head), n = wtg_get_le32(head + 4),
		 cs = wtg_get_le32(head + 8);
	if (size != integ->size || (uint64_t)n * 20 + INTEGRITY_HEAD != size ||
	    cs < INTEGRITY_CHUNK_MIN || cs > INTEGRITY_CHUNK_MAX ||
	    n != (checked_end - WIM_HEADER_SIZE + cs - 1) / cs)
		goto bad;
	if (!(wa->integ_old = malloc((size_t)n * 20)))
		return -ENOMEM;
	if ((ret = pread_full(wa, wa->integ_old, (size_t)n * 20, integ->offset + INTEGRITY_HEAD))) {
		free(wa->integ_old);
		wa->integ_old = NULL;
		return ret;
	}
	wa->integ_old_n = n;
	wa->integ_chunk = cs;
	wa->integ_old_end = checked_end;
	return 0;
bad:
	wtg_warning("'%s': its integrity table is not valid: an append writes it afresh", wa->path);
	return 0;
}

/*
 * The integrity table of the WIM whose checked bytes [208, @end) are all
 * written: the old table's SHA-1 for each chunk the append left alone, the
 * others read back and hashed.
 */
static int build_integrity(struct wim_append *wa, uint64_t end, uint8_t **table_ret,
			   size_t *len_ret)
{
	enum { PIECE = 1u << 20 };
	uint32_t cs = wa->integ_old ? wa->integ_chunk : INTEGRITY_CHUNK;
	uint64_t n = (end - WIM_HEADER_SIZE + cs - 1) / cs;
	int ret = 0;

	if (end <= WIM_HEADER_SIZE || n * 20 + INTEGRITY_HEAD > UINT32_MAX)
		return -EFBIG;
	size_t len = (size_t)(n * 20 + INTEGRITY_HEAD);
	uint8_t *t = malloc(len), *buf = malloc(PIECE);
	if (!t || !buf) {
		ret = -ENOMEM;
		goto out;
	}
	wtg_put_le32(t, (uint32_t)len);
	wtg_put_le32(t + 4, (uint32_t)n);
	wtg_put_le32(t + 8, cs);
	/* (chunk i's SHA-1 is kept when the old table has it for the same
	 * bytes: all of them before its end) */
	uint64_t kept = wa->integ_old ? wa->integ_old_end - WIM_HEADER_SIZE : 0;
	kept = kept / cs < wa->integ_old_n ? kept / cs : wa->integ_old_n;
	uint64_t total = end - WIM_HEADER_SIZE - kept * cs, done = 0;
	for (uint64_t i = 0; i < n && !ret; i++) {
		uint64_t off = WIM_HEADER_SIZE + i * cs, left = end - off < cs ? end - off : cs;
		uint8_t *sha1 = t + INTEGRITY_HEAD + i * 20;
		if (i < kept) {
			memcpy(sha1, wa->integ_old + i * 20, 20);
			wa->st.integrity_reused++;
			continue;
		}
		struct wtg_sha1 *ctx = wtg_sha1_new();
		if (!ctx) {
			ret = -ENOMEM;
			break;
		}
		while (left && !ret) {
			size_t piece = left < PIECE ? (size_t)left : PIECE;
			if (!(ret = pread_full(wa, buf, piece, off)))
				wtg_sha1_update(ctx, buf, piece);
			off += piece;
			left -= piece;
			done += piece;
			if (wa->progress)
				wa->progress(wa->progress_ctx, done, total);
		}
		wtg_sha1_final(ctx, sha1);
		wa->st.integrity_hashed++;
	}
out:
	free(buf);
	if (ret) {
		free(t);
		return ret;
	}
	*table_ret = t;
	*len_ret = len;
	return 0;
}

void wim_append_set_progress(struct wim_append *wa,
			     void (*fn)(void *ctx, uint64_t done, uint64_t total), void *ctx)
{
	wa->progress = fn;
	wa->progress_ctx = ctx;
}

static int read_header(struct wim_append *wa)
{
	struct wim_header_disk *h = &wa->hdr;
	int ret;

	if (wa->old_size < WIM_HEADER_SIZE)
		return corrupt(wa, "shorter than a WIM header");
	if ((ret = pread_full(wa, h, sizeof(*h), 0)))
		return ret;
	if (!memcmp(h->magic, "WLPWM\0\0\0", 8)) {
		wa->unsupported = "it is a pipable WIM";
		return 0;
	}
	if (memcmp(h->magic, "MSWIM\0\0\0", 8))
		return corrupt(wa, "no WIM magic");
	if (le32toh(h->hdr_size) != WIM_HEADER_SIZE)
		return corrupt(wa, "a header size other than 208");
	uint32_t version = le32toh(h->version), flags = le32toh(h->flags);
	if (version != WIM_VERSION_DEFAULT && version != WIM_VERSION_SOLID)
		return corrupt(wa, "an unknown version");
	if (ctype_of_flags(flags, &wa->ctype))
		return corrupt(wa, "contradictory compression flags");
	if (flags & HDR_XPRESS2)
		wa->unsupported = "it uses XPRESS2";
	wa->chunk_size = le32toh(h->chunk_size);
	if (wa->ctype != WIMLIB_COMPRESSION_TYPE_NONE) {
		uint32_t cs = wa->chunk_size;
		if (cs < 4096 || cs > (1u << 26) || (cs & (cs - 1)))
			return corrupt(wa, "a bad chunk size");
	} else {
		/* an uncompressed WIM's field means nothing (wimlib writes 0):
		 * its resources are read and written in 32 KiB pieces */
		wa->chunk_size = 32768;
	}
	if (le16toh(h->total_parts) != 1 || le16toh(h->part_number) != 1 ||
	    (flags & (HDR_SPANNED | HDR_RESOURCE_ONLY | HDR_METADATA_ONLY)))
		wa->unsupported = "it is a part of a split WIM";
	if (flags & HDR_READONLY)
		wa->unsupported = "it is marked read-only";
	if (flags & HDR_WRITE_IN_PROGRESS)
		wa->unsupported = "its header says a write is in progress";
	uint32_t images = le32toh(h->image_count);
	if (images > MAX_IMAGES)
		return corrupt(wa, "too many images");
	if (le32toh(h->boot_index) > images)
		return corrupt(wa, "a boot index past the last image");

	struct reshdr bt, xml, integ;
	reshdr_get(&h->blob_table, &bt);
	reshdr_get(&h->xml, &xml);
	reshdr_get(&h->integrity, &integ);
	if ((bt.flags & RESHDR_COMPRESSED) || bt.stored_size != bt.size || bt.size % 50 ||
	    bt.size > MAX_BLOB_TABLE || !within(bt.offset, bt.size, wa->old_size))
		return corrupt(wa, "a bad blob table header");
	if (bt.size && bt.offset < WIM_HEADER_SIZE)
		return corrupt(wa, "the blob table overlaps the header");
	if ((xml.flags & RESHDR_COMPRESSED) || xml.stored_size != xml.size || xml.size % 2 ||
	    xml.size < 2 || xml.size > MAX_XML || xml.offset < WIM_HEADER_SIZE ||
	    !within(xml.offset, xml.size, wa->old_size))
		return corrupt(wa, "a bad XML header");
	if (bt.size && bt.offset + bt.size > xml.offset)
		wa->unsupported = "its blob table is not before its XML";
	wa->pos = wa->old_size;
	if (integ.offset || integ.stored_size)
		return read_integrity(wa, &integ, bt.offset + bt.size);
	return 0;
}

/*
 * Solid resources (an ESD's, WIM version 3584), as wimlib and WIMGAPI read
 * them: a run of consecutive entries with the SOLID flag holds entries of
 * resources (uncompressed size 2^32, their own size, chunk size and
 * compression in a header at the resource's start) and entries of the
 * blobs in them (offset and size within the run's resources one after the
 * other, a blob in one resource).  Any other entry ends a run.  The
 * appender never reads a solid blob (a changed file's old bytes come from
 * the base's source) and never reuses its chunks; it keeps every entry as
 * it was, in its place (put_table), its references counted.
 */
#define SOLID_RESOURCE_MAGIC (1ull << 32)

/* More resources than this in one run are left to wimlib (whose own search
 * of them is linear); the largest ESDs hold a few dozen. */
#define MAX_SOLID_RUN 65536u

struct solid_run {
	bool open;
	/* where each resource's uncompressed bytes start in the run, and
	 * (last) where the run ends: nres + 1 entries */
	uint64_t *start;
	size_t nres, cap;
};

static bool is_solid_resource(const struct reshdr *r)
{
	return (r->flags & RESHDR_SOLID) && r->size == SOLID_RESOURCE_MAGIC;
}

/* A blob's uncompressed size: a solid blob's is its entry's size field. */
static uint64_t blob_usize(const struct blob *b)
{
	return (b->r.flags & RESHDR_SOLID) ? b->r.stored_size : b->r.size;
}

/* The run starting at entry @i of @d (@n entries): its resources' headers
 * read. */
static int solid_run_begin(struct wim_append *wa, struct solid_run *run,
			   const struct wim_blob_disk *d, size_t n, size_t i)
{
	struct reshdr r;

	run->open = true;
	run->nres = 0;
	if (!run->cap) {
		if (!(run->start = malloc(9 * sizeof(*run->start))))
			return -ENOMEM;
		run->cap = 8;
	}
	run->start[0] = 0;
	for (; i < n; i++) {
		reshdr_get(&d[i].r, &r);
		if (!(r.flags & RESHDR_SOLID))
			break;
		if (!is_solid_resource(&r))
			continue;
		uint8_t h[16];
		int ret;
		if (!within(r.offset, r.stored_size, wa->old_size) || r.offset < WIM_HEADER_SIZE ||
		    r.stored_size < sizeof(h))
			return corrupt(wa, "a solid resource outside the file");
		if ((ret = pread_full(wa, h, sizeof(h), r.offset)))
			return ret;
		uint32_t cs = wtg_get_le32(h + 8), ctype = wtg_get_le32(h + 12);
		if (ctype > WIMLIB_COMPRESSION_TYPE_LZMS || !cs || (cs & (cs - 1)))
			return corrupt(wa, "a bad solid resource header");
		if (run->nres == MAX_SOLID_RUN) {
			wa->unsupported = "it holds over 65536 solid resources in one run";
			return 0;
		}
		if (run->nres == run->cap) {
			size_t cap = run->cap * 2;
			uint64_t *v = realloc(run->start, (cap + 1) * sizeof(*v));
			if (!v)
				return -ENOMEM;
			run->start = v;
			run->cap = cap;
		}
		uint64_t usize = wtg_get_le64(h), at = run->start[run->nres];
		if (usize > UINT64_MAX - at)
			return corrupt(wa, "solid resources larger than 2^64 bytes");
		run->start[++run->nres] = at + usize;
	}
	return 0;
}

/* Entry @i of @d, in a solid run: a resource's is checked when the run
 * begins; a blob lies in one of the run's resources. */
static int solid_entry(struct wim_append *wa, struct solid_run *run, const struct wim_blob_disk *d,
		       size_t n, size_t i)
{
	const struct blob *b = &wa->blobs[i];
	int ret;

	if (wa->unsupported) /* (nothing will be written: wimlib judges it) */
		return 0;
	if (!run->open) {
		if ((ret = solid_run_begin(wa, run, d, n, i)) || wa->unsupported)
			return ret;
	}
	if (b->r.flags & (RESHDR_FREE | RESHDR_SPANNED)) {
		wa->unsupported = "its blob table holds free or spanned solid entries";
		return 0;
	}
	if (is_solid_resource(&b->r))
		return 0;
	if (b->part != 1) {
		wa->unsupported = "its blob table names other parts";
		return 0;
	}
	/* (wimlib's rule: the first resource the blob's end falls in holds it
	 * all) */
	uint64_t off = b->r.offset, size = b->r.stored_size;
	if (!run->nres || size > UINT64_MAX - off || off + size > run->start[run->nres])
		return corrupt(wa, "a solid blob outside its resources");
	size_t lo = 0, hi = run->nres - 1;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (run->start[mid + 1] >= off + size)
			hi = mid;
		else
			lo = mid + 1;
	}
	if (off < run->start[lo])
		return corrupt(wa, "a solid blob outside its resources");
	return 0;
}

static int read_blob_table(struct wim_append *wa)
{
	struct reshdr bt;
	uint32_t images = le32toh(wa->hdr.image_count);
	int ret;

	reshdr_get(&wa->hdr.blob_table, &bt);
	size_t n = (size_t)(bt.size / 50);
	struct wim_blob_disk *d = n ? malloc(n * sizeof(*d)) : NULL;
	if (n && !d)
		return -ENOMEM;
	if (n && (ret = pread_full(wa, d, n * sizeof(*d), bt.offset))) {
		free(d);
		return ret;
	}
	wa->blobs = malloc((n + 64) * sizeof(*wa->blobs));
	wa->meta = malloc((images + 1) * sizeof(*wa->meta));
	if (!wa->blobs || !wa->meta) {
		free(d);
		return -ENOMEM;
	}
	wa->cap = n + 64;
	ret = 0;
	bool solid_ok = le32toh(wa->hdr.version) == WIM_VERSION_SOLID;
	struct solid_run run = {0};
	for (size_t i = 0; i < n && !ret; i++) {
		struct blob *b = &wa->blobs[i];
		reshdr_get(&d[i].r, &b->r);
		b->part = le16toh(d[i].part_number);
		b->refcnt = le32toh(d[i].refcnt);
		memcpy(b->sha1, d[i].sha1, 20);
		if (!(b->r.flags & RESHDR_SOLID))
			run.open = false;
		if (b->r.flags & ~(RESHDR_FREE | RESHDR_METADATA | RESHDR_COMPRESSED |
				   RESHDR_SPANNED | RESHDR_SOLID))
			ret = corrupt(wa, "unknown resource flags in the blob table");
		else if ((b->r.flags & RESHDR_SOLID) && !solid_ok)
			wa->unsupported = "it holds solid resources in a WIM of version 1.13";
		else if ((b->r.flags & (RESHDR_SOLID | RESHDR_METADATA)) ==
			 (RESHDR_SOLID | RESHDR_METADATA))
			wa->unsupported = "it holds an image's metadata in a solid resource";
		else if (b->r.flags & RESHDR_SOLID)
			ret = solid_entry(wa, &run, d, n, i);
		else if (b->r.flags & (RESHDR_FREE | RESHDR_SPANNED))
			wa->unsupported = "its blob table holds free or spanned entries";
		if (ret || (b->r.flags & RESHDR_SOLID))
			continue;
		if (b->part != 1)
			wa->unsupported = "its blob table names other parts";
		else if (!within(b->r.offset, b->r.stored_size, wa->old_size) ||
			 b->r.offset < WIM_HEADER_SIZE)
			ret = corrupt(wa, "a blob outside the file");
		else if (!(b->r.flags & RESHDR_COMPRESSED) && b->r.stored_size != b->r.size)
			ret = corrupt(wa, "an uncompressed blob of two sizes");
		else if ((b->r.flags & RESHDR_COMPRESSED) && (!b->r.size || !b->r.stored_size))
			ret = corrupt(wa, "an empty compressed blob");
		if (!ret && (b->r.flags & RESHDR_METADATA)) {
			if (wa->nmeta == images)
				ret = corrupt(wa, "more metadata resources than images");
			else
				wa->meta[wa->nmeta++] = *b;
			wa->meta_end = i + 1;
		}
	}
	free(run.start);
	if (ret) {
		free(d);
		return ret;
	}
	/* (the new table is written into the same pages: fresh ones are dear) */
	wa->table_buf = d;
	wa->nblobs = wa->nold = n;
	if (wa->nmeta != images && !wa->unsupported)
		return corrupt(wa, "fewer metadata resources than images");
	return index_build(wa, n + 64);
}

/* UTF-8 (as libxml2 writes it: valid) to UTF-16LE with a BOM. */
static uint8_t *utf8_to_utf16(const unsigned char *in, size_t len, size_t *out_len)
{
	uint8_t *out = malloc(len * 2 + 2);
	size_t o = 0;

	if (!out)
		return NULL;
	out[o++] = 0xFF;
	out[o++] = 0xFE;
	for (size_t i = 0; i < len;) {
		uint32_t c = in[i];
		size_t k = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
		if (i + k > len)
			goto bad;
		if (k == 2)
			c = (c & 0x1F) << 6 | (in[i + 1] & 0x3F);
		else if (k == 3)
			c = (c & 0x0F) << 12 | (uint32_t)(in[i + 1] & 0x3F) << 6 | (in[i + 2] & 0x3F);
		else if (k == 4)
			c = (c & 0x07) << 18 | (uint32_t)(in[i + 1] & 0x3F) << 12 |
			    (uint32_t)(in[i + 2] & 0x3F) << 6 | (in[i + 3] & 0x3F);
		i += k;
		if (c >= 0x10000) {
			c -= 0x10000;
			uint32_t hi = 0xD800 + (c >> 10), lo = 0xDC00 + (c & 0x3FF);
			out[o++] = (uint8_t)hi;
			out[o++] = (uint8_t)(hi >> 8);
			out[o++] = (uint8_t)lo;
			out[o++] = (uint8_t)(lo >> 8);
		} else {
			out[o++] = (uint8_t)c;
			out[o++] = (uint8_t)(c >> 8);
		}
	}
	*out_len = o;
	return out;
bad:
	free(out);
	return NULL;
}

static bool is_element(xmlNodePtr n, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE && !xmlStrcmp(n->name, (const xmlChar *)name);
}

static xmlNodePtr child(xmlNodePtr n, const char *name)
{
	for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next)
		if (is_element(c, name))
			return c;
	return NULL;
}

static void xml_quiet(void *ctx, const char *fmt, ...)
{
	(void)ctx;
	(void)fmt;
}

void wim_append_quiet_xml(void)
{
	xmlSetGenericErrorFunc(NULL, xml_quiet);
}

static int read_xml(struct wim_append *wa)
{
	struct reshdr xr;
	uint32_t images = le32toh(wa->hdr.image_count);
	int ret;

	reshdr_get(&wa->hdr.xml, &xr);
	uint8_t *raw = malloc(xr.size);
	if (!raw)
		return -ENOMEM;
	if ((ret = pread_full(wa, raw, xr.size, xr.offset))) {
		free(raw);
		return ret;
	}
	/* UTF-16LE, with or without a BOM, handed to libxml2 as UTF-8 (a lone
	 * surrogate comes out as WTF-8 and a NUL as itself: libxml2 refuses
	 * both) */
	size_t skip = xr.size >= 2 && raw[0] == 0xFF && raw[1] == 0xFE, units = xr.size / 2 - skip;
	char *text = malloc(units * 3 + 1);
	long len = text ? wtg_utf16le_to_utf8(raw + 2 * skip, units, text, units * 3 + 1) : -ENOMEM;
	free(raw);
	if (len < 0) {
		free(text);
		return len == -ENOMEM ? (int)len : corrupt(wa, "the XML is not UTF-16LE");
	}
	wim_append_quiet_xml();
	wa->xml = xmlReadMemory(text, (int)len, NULL, "UTF-8",
				XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	free(text);
	if (!wa->xml)
		return corrupt(wa, "the XML does not parse");
	xmlNodePtr root = xmlDocGetRootElement(wa->xml);
	if (!is_element(root, "WIM"))
		return corrupt(wa, "the XML has no WIM element");
	wa->images = calloc(images + 1, sizeof(*wa->images));
	if (!wa->images)
		return -ENOMEM;
	uint32_t seen = 0;
	for (xmlNodePtr c = root->children; c; c = c->next) {
		if (!is_element(c, "IMAGE"))
			continue;
		xmlChar *idx = xmlGetProp(c, (const xmlChar *)"INDEX");
		char *end = NULL;
		unsigned long v = idx ? strtoul((const char *)idx, &end, 10) : 0;
		bool good = idx && end && !*end && v == seen + 1 && seen < images;
		xmlFree(idx);
		if (!good) {
			if (!wa->unsupported)
				wa->unsupported = "its XML does not list its images in order";
			return 0;
		}
		wa->images[seen++] = c;
	}
	if (seen != images && !wa->unsupported)
		wa->unsupported = "its XML does not list every image";
	return 0;
}

static int open_common(int fd, const char *what, bool writable, struct wim_append **wa_ret)
{
	struct wim_append *wa = calloc(1, sizeof(*wa));
	struct stat st;
	int ret;

	if (!wa)
		return -ENOMEM;
	wa->fd = fd;
	wa->writable = writable;
	wa->threads = 1;
	if (!(wa->path = strdup(what))) {
		free(wa);
		return -ENOMEM;
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		wtg_error("cannot stat '%s': %s", what, strerror(-ret));
		goto fail;
	}
	wa->old_size = (uint64_t)st.st_size;
	if (writable) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			wa->locked = true;
		} else if (errno == EWOULDBLOCK) {
			wtg_error("cannot append to '%s': another program is writing it (wait for it "
				  "to finish)",
				  what);
			ret = -EBUSY;
			goto fail;
		}
		/* (no locks on this file system: as wimlib, go on) */
	}
	if ((ret = read_header(wa)))
		goto fail;
	if (wa->unsupported && !strcmp(wa->unsupported, "it is a pipable WIM")) {
		*wa_ret = wa;
		return 0;
	}
	if ((ret = read_blob_table(wa)) || (ret = read_xml(wa)))
		goto fail;
	*wa_ret = wa;
	return 0;
fail:
	wa->committed = true; /* nothing written: nothing to truncate */
	wim_append_free(wa);
	return ret;
}

int wim_append_open(const char *path, struct wim_append **wa_ret)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		int err = errno;
		wtg_error("cannot open '%s': %s", path, strerror(err));
		return -err;
	}
	return open_common(fd, path, true, wa_ret);
}

int wim_append_open_fd(int fd, const char *what, struct wim_append **wa_ret)
{
	int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);

	if (dup_fd < 0)
		return -errno;
	return open_common(dup_fd, what, false, wa_ret);
}

void wim_append_free(struct wim_append *wa)
{
	if (!wa)
		return;
	wim_append_metadata_check(wa);
	/* (the queue's threads stopped first: what they wrote goes too) */
	bool queued = queue_used(wa);
	queue_free(wa);
	if (wa->writable && !wa->committed && (wa->pos > wa->old_size || queued)) {
		if (ftruncate(wa->fd, (off_t)wa->old_size) < 0)
			wtg_warning("cannot truncate '%s' back to %" PRIu64 " bytes: %s", wa->path,
				    wa->old_size, strerror(errno));
	}
	if (wa->locked)
		flock(wa->fd, LOCK_UN);
	close(wa->fd);
	for (unsigned t = 0; t < WIM_APPEND_MAX_THREADS; t++) {
		if (wa->comps[t])
			wimlib_free_compressor(wa->comps[t]);
		if (wa->meta_comps[t])
			wimlib_free_compressor(wa->meta_comps[t]);
	}
	if (wa->decomp)
		wimlib_free_decompressor(wa->decomp);
	if (wa->xml)
		xmlFreeDoc(wa->xml);
	free(wa->images);
	free(wa->ubuf);
	free(wa->cbuf);
	free(wa->bbuf);
	free(wa->meta_cache);
	free(wa->integ_old);
	free(wa->blobs);
	free(wa->table_buf);
	free(wa->index);
	free(wa->meta);
	free(wa->path);
	free(wa);
}

void wim_append_get_info(const struct wim_append *wa, struct wim_append_info *info)
{
	memset(info, 0, sizeof(*info));
	info->image_count = le32toh(wa->hdr.image_count);
	info->boot_index = le32toh(wa->hdr.boot_index);
	info->chunk_size = wa->chunk_size;
	info->ctype = wa->ctype;
	memcpy(info->guid, wa->hdr.guid, sizeof(info->guid));
	info->file_size = wa->old_size;
	info->blobs = wa->nold;
	info->integrity = wa->integrity;
	info->rp_fix = (le32toh(wa->hdr.flags) & HDR_RP_FIX) != 0;
}

const char *wim_append_unsupported(const struct wim_append *wa)
{
	return wa->unsupported;
}

void wim_append_get_stats(const struct wim_append *wa, struct wim_append_stats *st)
{
	*st = wa->st;
}

uint64_t wim_append_nt_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 10000000u + (uint64_t)ts.tv_nsec / 100 + 116444736000000000ull;
}

bool wim_append_has_blob(const struct wim_append *wa, const uint8_t sha1[20])
{
	return find_blob(wa, sha1) != NULL;
}

int wim_append_blob_size(const struct wim_append *wa, const uint8_t sha1[20], uint64_t *size_ret)
{
	const struct blob *b = find_blob(wa, sha1);

	if (!b)
		return -ENOENT;
	*size_ret = blob_usize(b);
	return 0;
}

/* @n more references to @b (NULL: none in the table). */
static int add_refs(struct blob *b, uint32_t n, uint64_t *size_ret)
{
	if (!b)
		return -ENOENT;
	if (b->refcnt > UINT32_MAX - n)
		return -EOVERFLOW;
	b->refcnt += n;
	if (size_ret)
		*size_ret = blob_usize(b);
	return 0;
}

int wim_append_ref_size(struct wim_append *wa, const uint8_t sha1[20], uint32_t n,
			uint64_t *size_ret)
{
	return add_refs(find_blob(wa, sha1), n, size_ret);
}

int wim_append_ref(struct wim_append *wa, const uint8_t sha1[20], uint32_t n)
{
	return wim_append_ref_size(wa, sha1, n, NULL);
}

int wim_append_ref_at(struct wim_append *wa, uint32_t at, const uint8_t sha1[20], uint32_t n)
{
	struct blob *b = at < wa->nblobs && !(wa->blobs[at].r.flags & RESHDR_METADATA) &&
				 !memcmp(wa->blobs[at].sha1, sha1, 20)
			     ? &wa->blobs[at]
			     : find_blob(wa, sha1);

	return add_refs(b, n, NULL);
}

int wim_append_unref(struct wim_append *wa, const uint8_t sha1[20], uint32_t n)
{
	struct blob *b = find_blob(wa, sha1);

	if (!b)
		return -ENOENT;
	if (b->refcnt < n)
		return -EINVAL;
	b->refcnt -= n;
	return 0;
}

int wim_append_blob_at(const struct wim_append *wa, const uint8_t sha1[20], uint32_t *at,
		       uint64_t *size_ret)
{
	const struct blob *b = find_blob(wa, sha1);

	if (!b)
		return -ENOENT;
	*at = (uint32_t)(b - wa->blobs);
	*size_ret = blob_usize(b);
	return 0;
}

size_t wim_append_blob_count(const struct wim_append *wa)
{
	return wa->nblobs;
}

const uint8_t *wim_append_blob_hash(const struct wim_append *wa, size_t at)
{
	if (at >= wa->nblobs || (wa->blobs[at].r.flags & RESHDR_METADATA))
		return NULL;
	return wa->blobs[at].sha1;
}

bool wim_append_name_in_use(const struct wim_append *wa, const char *name)
{
	uint32_t images = le32toh(wa->hdr.image_count);

	for (uint32_t i = 0; wa->images && i < images && wa->images[i]; i++) {
		xmlChar *s = xmlNodeGetContent(child(wa->images[i], "NAME"));
		bool same = s && !strcmp((const char *)s, name);
		xmlFree(s);
		if (same)
			return true;
	}
	return false;
}

/* ---- chunks ---- */

static int need_codecs(struct wim_append *wa)
{
	if (!wa->ubuf && (!(wa->ubuf = malloc(wa->chunk_size)) ||
			  !(wa->cbuf = malloc(wa->chunk_size)) ||
			  !(wa->bbuf = malloc(wa->chunk_size))))
		return -ENOMEM;
	if (wa->ctype == WIMLIB_COMPRESSION_TYPE_NONE)
		return 0;
	if (!wa->decomp && wimlib_create_decompressor((enum wimlib_compression_type)wa->ctype,
						      wa->chunk_size, &wa->decomp))
		return -ENOMEM;
	return 0;
}

/* Where each chunk of a stored resource lies: @start[i] .. @start[i + 1]. */
struct chunks {
	uint64_t n;
	uint64_t *start; /* n + 1 absolute offsets */
	bool raw;	 /* an uncompressed resource */
};

static uint64_t chunk_count(uint64_t size, uint32_t cs)
{
	return size / cs + (size % cs != 0);
}

static uint32_t chunk_usize(uint64_t size, uint32_t cs, uint64_t i)
{
	uint64_t left = size - i * cs;
	return left < cs ? (uint32_t)left : cs;
}

/* Starts writing [@off, @off + @len) out, not waiting: the commit's
 * fdatasync then waits for what is left, not for every byte the append
 * wrote (the kernel would otherwise hold them dirty until then). */
static void start_writeback(const struct wim_append *wa, uint64_t off, uint64_t len)
{
	if (len)
		sync_file_range(wa->fd, (off_t)off, (off_t)len, SYNC_FILE_RANGE_WRITE);
}

/* Less than this is left to the kernel's own read-ahead. */
#define PREFETCH_MIN (256u << 10)

/* Asks the kernel to read [@off, @off + @len) of the file ahead, at once:
 * on a cold cache a resource's chunks come in one large read, not chunk by
 * chunk as the decoders and writers get to them. */
static void prefetch(const struct wim_append *wa, uint64_t off, uint64_t len)
{
	if (len >= PREFETCH_MIN)
		posix_fadvise(wa->fd, (off_t)off, (off_t)len, POSIX_FADV_WILLNEED);
}

/* Chunks @first to @last (inclusive) of loaded chunks @c read ahead. */
static void prefetch_chunks(const struct wim_append *wa, const struct chunks *c, uint64_t first,
			    uint64_t last)
{
	if (c->n && first <= last && last < c->n)
		prefetch(wa, c->start[first], c->start[last + 1] - c->start[first]);
}

static int load_chunks(struct wim_append *wa, const struct blob *b, struct chunks *c)
{
	uint32_t cs = wa->chunk_size;
	uint64_t n = chunk_count(b->r.size, cs);
	int ret;

	memset(c, 0, sizeof(*c));
	if (!n)
		return 0;
	/* the table is checked against the stored bytes before anything is
	 * allocated: a size field alone never makes a large allocation */
	unsigned es = b->r.size > UINT32_MAX ? 8 : 4;
	uint64_t tlen = (n - 1) * es;
	bool raw = !(b->r.flags & RESHDR_COMPRESSED);
	if (!raw && (n > (1ull << 32) || tlen >= b->r.stored_size))
		return corrupt(wa, "a chunk table larger than its resource");
	if (!(c->start = malloc((n + 1) * sizeof(*c->start))))
		return -ENOMEM;
	c->n = n;
	if (raw) {
		c->raw = true;
		for (uint64_t i = 0; i <= n; i++)
			c->start[i] = b->r.offset + (i < n ? i * cs : b->r.size);
		return 0;
	}
	uint8_t *t = tlen ? malloc(tlen) : NULL;
	if (tlen && !t)
		ret = -ENOMEM;
	else if (tlen)
		ret = pread_full(wa, t, tlen, b->r.offset);
	else
		ret = 0;
	uint64_t data = b->r.offset + tlen, dlen = b->r.stored_size - tlen, prev = 0;
	c->start[0] = data;
	for (uint64_t i = 1; i <= n && !ret; i++) {
		uint64_t off;
		if (i == n) {
			off = dlen;
		} else {
			off = es == 4 ? wtg_get_le32(t + (i - 1) * 4) : wtg_get_le64(t + (i - 1) * 8);
		}
		if (off <= prev || off > dlen || off - prev > chunk_usize(b->r.size, cs, i - 1))
			ret = corrupt(wa, "a bad chunk table");
		c->start[i] = data + off;
		prev = off;
	}
	free(t);
	if (ret) {
		/* (@c as if nothing were loaded: callers free c->start) */
		free(c->start);
		memset(c, 0, sizeof(*c));
	}
	return ret;
}

/* Reads chunk @i of a resource of @size bytes (its stored chunks @c)
 * uncompressed into @out, with @cbuf (chunk_size) and @decomp. */
static int read_chunk_with(const struct wim_append *wa, uint64_t size, const struct chunks *c,
			   uint64_t i, uint8_t *out, uint8_t *cbuf,
			   struct wimlib_decompressor *decomp)
{
	uint32_t usize = chunk_usize(size, wa->chunk_size, i);
	uint64_t slen = c->start[i + 1] - c->start[i];
	int ret;

	if (slen == usize)
		return pread_full(wa, out, usize, c->start[i]);
	if ((ret = pread_full(wa, cbuf, slen, c->start[i])))
		return ret;
	if (!decomp || wimlib_decompress(cbuf, slen, out, usize, decomp))
		return corrupt(wa, "a chunk does not decompress");
	return 0;
}

/* Reads chunk @i of @b (its stored bytes @c) uncompressed into @out. */
static int read_chunk(struct wim_append *wa, const struct blob *b, const struct chunks *c,
		      uint64_t i, uint8_t *out)
{
	return read_chunk_with(wa, b->r.size, c, i, out, wa->cbuf, wa->decomp);
}

/* The source of a new resource's bytes. */
struct source {
	uint64_t size;
	wim_append_read_fn read;
	void *ctx;
};

/*
 * Writes a resource of @src at wa->pos, reusing @base's stored chunks
 * (NULL: none) that equal the new ones; fills @r (offset, sizes, the
 * COMPRESSED flag) and @sha1.  wa->pos is not moved.
 */
/* True when no range of @h (sorted) meets [@off, @off + @len). */
static bool outside(const struct wim_append_range *h, size_t n, uint64_t off, uint64_t len)
{
	for (size_t i = 0; i < n; i++) {
		if (h[i].offset >= off + len)
			return true;
		if (h[i].offset + h[i].length > off)
			return false;
	}
	return true;
}

/*
 * Whether no LZ coder can shrink @n bytes: their bytes are spread almost
 * evenly (order-0 entropy within 0.03 bit of random bytes', so Huffman
 * codes save less than their own trees cost) and hardly a 4-byte sequence
 * comes twice (so there is nothing to match).  Already-compressed data
 * (random payloads, .cab, .zip, images) is like that: LZX spends 0.7 ms on
 * such a 32 KiB chunk to find it does not shrink, this test 30 us.  A chunk
 * it lets through is compressed as before.
 */
bool wim_append_incompressible(const void *bytes, size_t n)
{
	enum { HASH_BITS = 12 };
	const uint8_t *p = bytes;
	uint32_t count[4][256] = {{0}};
	uint32_t seen[1u << HASH_BITS] = {0};

	if (n < 4096 || n > (256u << 10))
		return false;
	size_t i = 0;
	for (; i + 4 <= n; i += 4) {
		count[0][p[i]]++;
		count[1][p[i + 1]]++;
		count[2][p[i + 2]]++;
		count[3][p[i + 3]]++;
	}
	for (; i < n; i++)
		count[0][p[i]]++;
	double bits = 0;
	for (unsigned c = 0; c < 256; c++) {
		uint32_t k = count[0][c] + count[1][c] + count[2][c] + count[3][c];
		if (k)
			bits -= k * log2((double)k / (double)n);
	}
	/* (n random bytes fall short of 8 bits a byte by about 255 / (2 n ln 2)) */
	if (bits < (7.97 - 184.0 / (double)n) * (double)n)
		return false;
	/* Random bytes repeat a 4-byte sequence about n^2 / 2^33 times (0.1 in
	 * 32 KiB); matchable data far more often than n / 1024.  The table
	 * keeps the last sequence of each hash: a repeat it forgets, or a 0 it
	 * takes for one, only sends the chunk to the compressor. */
	size_t repeats = 0;
	for (i = 0; i + 4 <= n; i++) {
		uint32_t v;
		memcpy(&v, p + i, 4);
		uint32_t h = (v * 2654435761u) >> (32 - HASH_BITS);
		repeats += seen[h] == v;
		seen[h] = v;
	}
	return repeats <= n / 1024;
}

/* Compresses a chunk into @out (room for @usize - 1 bytes): its length, or
 * 0 when it does not shrink and is stored raw. */
static size_t compress_chunk(struct wimlib_compressor *comp, const uint8_t *in, uint32_t usize,
			     uint8_t *out)
{
	if (wim_append_incompressible(in, usize))
		return 0;
	return wimlib_compress(in, usize, out, usize - 1, comp);
}

/* Chunks handled at a time: read, compared, then compressed on up to
 * wa->threads threads, then written in order. */
#define BATCH 16

/* How a chunk of a new resource is handled (reuse_mode says how it starts);
 * write_resource's batches hold the first three, the queue all of them. */
enum {
	C_COPY,	       /* uncompressed WIM: as it is */
	C_REUSED,      /* the base's stored chunk copied */
	C_COMPRESS,    /* compressed (stored raw when it does not shrink) */
	C_KNOWN,       /* compare with the base's bytes at hand, then reuse or compress */
	C_COMPARE,     /* decompress the base's chunk to compare, then the same */
	C_RAW,	       /* compressed, it did not shrink: stored raw */
	C_HASH,	       /* the resource's SHA-1 (the metadata's: nothing waits for it) */
};

/*
 * The LZX and LZMS level of the new metadata's changed chunks (wimlib's
 * default, 50, for blobs).  Every append writes a metadata resource, and
 * its few changed chunks (the security table's, patched dentries', the
 * appended lists') are on the path to the commit.  LZX: wimlib's level 30
 * (its lazy parser) compresses a 32 KiB chunk of metadata in 0.6 ms against
 * 5.4 ms at 50, 2% larger (10,662 against 10,450 bytes: the large test
 * image's, averaged over 40 chunks).  LZMS (an ESD's 128 KiB chunks): 24 ms
 * against 81 ms at 50, 1.7% larger (41,190 against 40,489 bytes, 30 chunks
 * of the large test ESD's metadata).
 */
#define META_LEVEL 30

/* *@comp made when it is not yet: a compressor for metadata (@meta) or for
 * blobs. */
static int compressor(const struct wim_append *wa, bool meta, struct wimlib_compressor **comp)
{
	unsigned level = meta && (wa->ctype == WIMLIB_COMPRESSION_TYPE_LZX ||
				  wa->ctype == WIMLIB_COMPRESSION_TYPE_LZMS)
			     ? META_LEVEL
			     : 0;

	if (*comp)
		return 0;
	return wimlib_create_compressor((enum wimlib_compression_type)wa->ctype, wa->chunk_size,
					level, comp)
		   ? -ENOMEM
		   : 0;
}

/*
 * How chunk @i (@usize bytes) of a new resource is first handled, the base's
 * chunk @o being the one it may equal (@bc, of a base of @base_size bytes;
 * none: n 0): C_REUSED when the caller's @hint says the bytes are the
 * base's, C_KNOWN when the base's bytes are at hand (@known_len of them),
 * C_COMPARE when its chunk must be read to tell, C_COMPRESS when no chunk
 * of the base can equal it.
 */
static int reuse_mode(const struct chunks *bc, uint64_t base_size, uint32_t cs, uint64_t i,
		      uint64_t o, uint32_t usize, const struct wim_append_range *hint, size_t nhint,
		      uint64_t known_len)
{
	if (o >= bc->n || chunk_usize(base_size, cs, o) != usize)
		return C_COMPRESS;
	if (hint && o == i && outside(hint, nhint, i * cs, usize))
		return C_REUSED;
	if (o * cs + usize <= known_len)
		return C_KNOWN;
	return C_COMPARE;
}

struct batch {
	struct wim_append *wa;
	uint8_t *in, *out; /* BATCH chunks each */
	uint32_t usize[BATCH];
	size_t plen[BATCH];
	int mode[BATCH];
	unsigned k;
	bool meta; /* of the metadata resource */
};

struct squeeze {
	struct batch *b;
	struct wimlib_compressor *comp;
	unsigned t, nt;
	pthread_t tid;
};

static void *squeeze_fn(void *arg)
{
	struct squeeze *q = arg;
	struct batch *b = q->b;
	uint32_t cs = b->wa->chunk_size;
	unsigned seen = 0;

	for (unsigned j = 0; j < b->k; j++) {
		if (b->mode[j] != C_COMPRESS || seen++ % q->nt != q->t)
			continue;
		b->plen[j] = compress_chunk(q->comp, b->in + (size_t)j * cs, b->usize[j],
					    b->out + (size_t)j * cs);
	}
	return NULL;
}

/* Compresses the batch's C_COMPRESS chunks, on several threads when there
 * are several. */
static int squeeze(struct batch *b)
{
	struct wim_append *wa = b->wa;
	unsigned todo = 0;

	for (unsigned j = 0; j < b->k; j++)
		todo += b->mode[j] == C_COMPRESS;
	unsigned nt = todo < wa->threads ? todo : wa->threads;
	if (nt < 1)
		return 0;
	struct wimlib_compressor **comps = b->meta ? wa->meta_comps : wa->comps;
	int ret;
	for (unsigned t = 0; t < nt; t++)
		if ((ret = compressor(wa, b->meta, &comps[t])))
			return ret;
	struct squeeze q[WIM_APPEND_MAX_THREADS];
	unsigned started = 1;
	for (unsigned t = 0; t < nt; t++)
		q[t] = (struct squeeze){.b = b, .comp = comps[t], .t = t, .nt = nt};
	for (unsigned t = 1; t < nt; t++) {
		if (pthread_create(&q[t].tid, NULL, squeeze_fn, &q[t]))
			break;
		started++;
	}
	if (started < nt) {
		/* no thread to be had: the rest here */
		for (unsigned t = 1; t < started; t++)
			pthread_join(q[t].tid, NULL);
		q[0].nt = 1;
		squeeze_fn(&q[0]);
		return 0;
	}
	squeeze_fn(&q[0]);
	for (unsigned t = 1; t < nt; t++)
		pthread_join(q[t].tid, NULL);
	return 0;
}

static int write_resource(struct wim_append *wa, const struct source *src, const struct blob *base,
			  struct reshdr *r, uint8_t sha1[20], bool meta,
			  const struct wim_append_range *hint, size_t nhint, const uint32_t *from,
			  size_t nfrom, const uint8_t *known_sha1)
{
	/* the base metadata's bytes, when wim_append_read_metadata read them */
	const uint8_t *known = meta && base && wa->meta_cache &&
				       !memcmp(wa->meta_cache_sha1, base->sha1, 20)
				   ? wa->meta_cache
				   : NULL;
	uint64_t known_len = known ? wa->meta_cache_len : 0;
	uint32_t cs = wa->chunk_size;
	uint64_t n = chunk_count(src->size, cs);
	bool compress = wa->ctype != WIMLIB_COMPRESSION_TYPE_NONE;
	unsigned es = src->size > UINT32_MAX ? 8 : 4;
	uint64_t tlen = compress ? (n - 1) * es : 0;
	struct chunks bc = {0};
	uint8_t *table = NULL;
	struct batch b = {.wa = wa, .meta = meta};
	uint64_t *src_at = NULL; /* each batch chunk's base chunk, when reused */
	int ret;

	if ((ret = need_codecs(wa)))
		return ret;
	if (compress && base && !(base->r.flags & RESHDR_SOLID) && (ret = load_chunks(wa, base, &bc)))
		return ret;
	unsigned per = n < BATCH ? (unsigned)n : BATCH;
	b.in = malloc((size_t)per * cs);
	b.out = malloc((size_t)per * cs);
	src_at = malloc(per * sizeof(*src_at));
	if ((tlen && !(table = malloc(tlen))) || !b.in || !b.out || !src_at) {
		ret = -ENOMEM;
		goto out;
	}
	/* (none when the SHA-1 is known) */
	struct wtg_sha1 *h = known_sha1 ? NULL : wtg_sha1_new();
	if (!known_sha1 && !h) {
		ret = -ENOMEM;
		goto out;
	}
	uint64_t out = wa->pos + tlen, stored = 0;
	for (uint64_t first = 0; first < n && !ret; first += per) {
		b.k = n - first < per ? (unsigned)(n - first) : per;
		for (unsigned j = 0; j < b.k && !ret; j++) {
			uint64_t i = first + j;
			uint32_t usize = chunk_usize(src->size, cs, i);
			uint8_t *in = b.in + (size_t)j * cs;
			b.usize[j] = usize;
			b.mode[j] = compress ? C_COMPRESS : C_COPY;
			b.plen[j] = usize;
			uint64_t o = from && i < nfrom ? from[i] : i;
			int mode = compress ? reuse_mode(&bc, bc.n ? base->r.size : 0, cs, i, o, usize,
							 hint, nhint, known_len)
					    : C_COPY;
			/* (with the SHA-1 known, a reused chunk's bytes are not read) */
			if (!(known_sha1 && mode == C_REUSED)) {
				if ((ret = src->read(src->ctx, in, usize, i * cs)))
					break;
				if (!known_sha1)
					wtg_sha1_update(h, in, usize);
			}
			if (!compress)
				continue;
			bool same = mode == C_REUSED;
			if (mode == C_KNOWN) {
				same = !memcmp(known + o * cs, in, usize);
			} else if (mode == C_COMPARE) {
				if ((ret = read_chunk(wa, base, &bc, o, wa->bbuf)))
					break;
				same = !memcmp(wa->bbuf, in, usize);
			}
			/* the stored bytes themselves (copied in the kernel below) */
			if (same) {
				b.mode[j] = C_REUSED;
				b.plen[j] = bc.start[o + 1] - bc.start[o];
				src_at[j] = bc.start[o];
			}
		}
		if (ret || (ret = squeeze(&b)))
			break;
		for (unsigned j = 0; j < b.k && !ret; j++) {
			uint64_t i = first + j;
			const uint8_t *put = b.out + (size_t)j * cs;
			if (compress && i && es == 4) {
				uint32_t v = htole32((uint32_t)stored);
				memcpy(table + (i - 1) * 4, &v, 4);
			} else if (compress && i) {
				uint64_t v = htole64(stored);
				memcpy(table + (i - 1) * 8, &v, 8);
			}
			if (b.mode[j] == C_REUSED) {
				wa->st.chunks_reused++;
				wa->st.bytes_reused += b.plen[j];
			} else if (b.mode[j] == C_COMPRESS && b.plen[j]) {
				wa->st.chunks_compressed++;
			} else {
				if (b.mode[j] == C_COMPRESS)
					wa->st.chunks_raw++;
				put = b.in + (size_t)j * cs;
				b.plen[j] = b.usize[j];
			}
			if (meta) {
				wa->st.meta_chunks++;
				wa->st.meta_chunks_reused += b.mode[j] == C_REUSED;
			}
			if (b.mode[j] == C_REUSED)
				ret = run_add(wa, src_at[j], out + stored, b.plen[j]);
			else if (!(ret = run_flush(wa)))
				ret = pwrite_full(wa, put, b.plen[j], out + stored);
			stored += b.plen[j];
		}
	}
	if (!ret)
		ret = run_flush(wa);
	if (ret) {
		wtg_sha1_free(h);
		goto out;
	}
	if (known_sha1)
		memcpy(sha1, known_sha1, 20);
	else
		wtg_sha1_final(h, sha1);
	r->offset = wa->pos;
	r->size = src->size;
	if (!compress) {
		r->stored_size = src->size;
		r->flags = 0;
	} else if (tlen + stored >= src->size && known_sha1) {
		/* (wim_append_can_add_known's bound rules it out) */
		ret = corrupt(wa, "a blob of a kept SHA-1 that did not shrink");
	} else if (tlen + stored >= src->size) {
		/* it did not shrink: stored whole, uncompressed, as wimlib does */
		r->stored_size = src->size;
		r->flags = 0;
		for (uint64_t i = 0; i < n && !ret; i++) {
			uint32_t usize = chunk_usize(src->size, cs, i);
			if (!(ret = src->read(src->ctx, wa->ubuf, usize, i * cs)))
				ret = pwrite_full(wa, wa->ubuf, usize, wa->pos + i * cs);
		}
	} else {
		r->stored_size = tlen + stored;
		r->flags = RESHDR_COMPRESSED;
		if (tlen)
			ret = pwrite_full(wa, table, tlen, wa->pos);
	}
out:
	free(b.in);
	free(b.out);
	free(src_at);
	free(table);
	free(bc.start);
	return ret;
}

/* ---- the write queue ----
 *
 * A resource of up to QUEUE_RES_MAX bytes is read and hashed by the calling
 * thread, which gets its SHA-1 at once; its bytes are kept while its chunks
 * are compared with the base's and compressed by worker threads (the export's
 * threads), and written in order by whichever thread finishes the chunk at
 * the head of the queue.  So the caller reads the next blob (or decompresses
 * the base's data for a hash) while earlier blobs are compressed.  The bytes
 * written are exactly those write_resource writes: only when they are
 * computed differs.  Where a queued resource lies is known once it is
 * written: queue_flush (before anything reads offsets, and before a resource
 * that does not go through the queue) waits for every queued chunk, helping,
 * and puts each resource's header in the blob table.
 */

/* Larger resources are written at once by write_resource. */
#define QUEUE_RES_MAX (64ull << 20)
/* Bytes of queued resources kept at most (one larger resource alone). */
#define QUEUE_BYTES_MAX (128ull << 20)
/* Chunks queued at most. */
#define QUEUE_CHUNKS 4096

struct qres {
	uint64_t size, n, tlen;
	uint8_t *data; /* its bytes, kept until it is written */
	uint8_t *table;
	struct chunks bc; /* the base's stored chunks (n 0: none) */
	uint64_t base_size;
	const uint8_t *known; /* the base's bytes (metadata), NULL: none */
	uint64_t known_len;
	bool meta;
	size_t slot; /* its entry in wa->blobs; SIZE_MAX: the new metadata */
	uint8_t sha1[20]; /* C_HASH's */
	/* the writer's */
	uint64_t pos, stored;
	struct reshdr r;
};

struct qjob {
	struct qres *res;
	uint64_t i, from; /* the new chunk, the base's chunk it may equal */
	int mode;
	uint8_t *out;
	size_t plen;
	uint64_t src; /* C_REUSED: where the stored bytes lie */
	bool done;
};

struct qworker {
	struct wimlib_compressor *comp, *meta_comp; /* for blobs, for metadata */
	struct wimlib_decompressor *decomp;
	uint8_t *cbuf, *bbuf;
};

struct queue {
	pthread_mutex_t lock;
	pthread_cond_t work, done;
	struct qjob jobs[QUEUE_CHUNKS]; /* a ring: [head, tail) queued */
	uint64_t head, take, tail;	/* written < head <= take (taken) <= tail */
	bool writing, stop, used;
	int err;
	uint64_t bytes; /* of the resources not yet written */
	uint64_t wpos;	/* where the next resource goes */
	struct qres **res; /* every resource queued since the last flush */
	size_t nres, res_cap;
	pthread_t tids[WIM_APPEND_MAX_THREADS];
	unsigned nthreads;
	struct qworker w[WIM_APPEND_MAX_THREADS]; /* the threads' (the caller's: w[0] when none) */
};

static void qres_free(struct qres *res)
{
	if (!res)
		return;
	free(res->data);
	free(res->table);
	free(res->bc.start);
	free(res);
}

/* Compares, reads or compresses chunk @j->i: 0 or -errno. */
static int job_run(struct wim_append *wa, struct qjob *j, struct qworker *w)
{
	struct qres *res = j->res;
	uint32_t cs = wa->chunk_size, usize = chunk_usize(res->size, cs, j->i);
	const uint8_t *in = res->data + j->i * cs;
	int ret;

	if (j->mode == C_HASH)
		return wtg_sha1(res->data, res->size, res->sha1);
	if (j->mode == C_KNOWN) {
		j->mode = memcmp(res->known + j->from * cs, in, usize) ? C_COMPRESS : C_REUSED;
	} else if (j->mode == C_COMPARE) {
		if (!w->cbuf && (!(w->cbuf = malloc(cs)) || !(w->bbuf = malloc(cs))))
			return -ENOMEM;
		if (!w->decomp && wimlib_create_decompressor((enum wimlib_compression_type)wa->ctype,
							     cs, &w->decomp))
			return -ENOMEM;
		if ((ret = read_chunk_with(wa, res->base_size, &res->bc, j->from, w->bbuf, w->cbuf,
					   w->decomp)))
			return ret;
		j->mode = memcmp(w->bbuf, in, usize) ? C_COMPRESS : C_REUSED;
	}
	if (j->mode == C_REUSED) {
		/* the stored bytes themselves, copied by the writer */
		j->src = res->bc.start[j->from];
		j->plen = (size_t)(res->bc.start[j->from + 1] - res->bc.start[j->from]);
		return 0;
	}
	if (j->mode == C_COMPRESS) {
		struct wimlib_compressor **comp = res->meta ? &w->meta_comp : &w->comp;
		if ((ret = compressor(wa, res->meta, comp)))
			return ret;
		if (!(j->out = malloc(usize)))
			return -ENOMEM;
		j->plen = compress_chunk(*comp, in, usize, j->out);
		if (!j->plen) {
			j->mode = C_RAW;
			free(j->out);
			j->out = NULL;
		}
	}
	if (j->mode == C_COPY || j->mode == C_RAW)
		j->plen = usize;
	return 0;
}

/* Writes done chunk @j after the ones before it (a reused chunk joins the
 * run of them before it); the resource's last chunk also writes its chunk
 * table (or the whole resource raw) and places it. */
static int job_write(struct wim_append *wa, struct queue *q, const struct qjob *j)
{
	struct qres *res = j->res;
	uint32_t cs = wa->chunk_size;
	bool compress = wa->ctype != WIMLIB_COMPRESSION_TYPE_NONE;
	const uint8_t *put = j->out ? j->out : res->data + j->i * cs;
	int ret;

	if (j->i == 0)
		res->pos = q->wpos;
	if (compress && j->i) {
		if (res->size > UINT32_MAX)
			wtg_put_le64(res->table + (j->i - 1) * 8, res->stored);
		else
			wtg_put_le32(res->table + (j->i - 1) * 4, (uint32_t)res->stored);
	}
	if (j->mode == C_REUSED) {
		wa->st.chunks_reused++;
		wa->st.bytes_reused += j->plen;
	} else if (j->mode == C_COMPRESS) {
		wa->st.chunks_compressed++;
	} else if (j->mode == C_RAW) {
		wa->st.chunks_raw++;
	}
	if (res->meta) {
		wa->st.meta_chunks++;
		wa->st.meta_chunks_reused += j->mode == C_REUSED;
	}
	uint64_t to = res->pos + res->tlen + res->stored;
	if (j->mode == C_REUSED)
		ret = run_add(wa, j->src, to, j->plen);
	else if (!(ret = run_flush(wa)))
		ret = pwrite_full(wa, put, j->plen, to);
	if (ret)
		return ret;
	res->stored += j->plen;
	if (j->i + 1 < res->n)
		return 0;
	if ((ret = run_flush(wa)))
		return ret;
	res->r.offset = res->pos;
	res->r.size = res->size;
	if (!compress || res->tlen + res->stored >= res->size) {
		/* (compressed, it did not shrink: stored whole, uncompressed, as
		 * wimlib does) */
		res->r.stored_size = res->size;
		res->r.flags = 0;
		if (compress)
			ret = pwrite_full(wa, res->data, res->size, res->pos);
	} else {
		res->r.stored_size = res->tlen + res->stored;
		res->r.flags = RESHDR_COMPRESSED;
		if (res->tlen)
			ret = pwrite_full(wa, res->table, res->tlen, res->pos);
	}
	q->wpos = res->pos + res->r.stored_size;
	wa->st.bytes_written += res->r.stored_size;
	if (!ret)
		start_writeback(wa, res->pos, res->r.stored_size);
	return ret;
}

/* Writes the done chunks at the head of the queue (lock held). */
static void queue_write(struct wim_append *wa, struct queue *q)
{
	if (q->writing)
		return;
	q->writing = true;
	while (q->head < q->take && q->jobs[q->head % QUEUE_CHUNKS].done) {
		struct qjob *j = &q->jobs[q->head % QUEUE_CHUNKS];
		int ret = 0;
		bool skip = q->err != 0 || j->mode == C_HASH; /* (nothing to write) */
		pthread_mutex_unlock(&q->lock);
		if (!skip)
			ret = job_write(wa, q, j);
		bool last = j->mode != C_HASH && j->i + 1 == j->res->n;
		free(j->out);
		j->out = NULL;
		if (last) {
			/* its bytes are no longer needed */
			free(j->res->data);
			j->res->data = NULL;
		}
		pthread_mutex_lock(&q->lock);
		if (ret && !q->err)
			q->err = ret;
		if (last)
			q->bytes -= j->res->size;
		q->head++;
		pthread_cond_broadcast(&q->done);
	}
	q->writing = false;
}

/* Takes the next queued chunk, runs it and writes what can be written
 * (lock held; false when none is waiting). */
static bool queue_run_one(struct wim_append *wa, struct queue *q, struct qworker *w)
{
	if (q->take == q->tail)
		return false;
	struct qjob *j = &q->jobs[q->take++ % QUEUE_CHUNKS];
	bool skip = q->err != 0;
	pthread_mutex_unlock(&q->lock);
	int ret = skip ? 0 : job_run(wa, j, w);
	pthread_mutex_lock(&q->lock);
	if (ret && !q->err)
		q->err = ret;
	j->done = true;
	queue_write(wa, q);
	return true;
}

/* The caller's thread, waiting, runs a chunk only when no worker started:
 * with workers it would only compete with them for the cores (lock held). */
static bool queue_help(struct wim_append *wa, struct queue *q)
{
	return !q->nthreads && queue_run_one(wa, q, &q->w[0]);
}

struct qthread {
	struct wim_append *wa;
	unsigned t;
};

static void *queue_thread(void *arg)
{
	struct wim_append *wa = ((struct qthread *)arg)->wa;
	struct queue *q = wa->q;
	struct qworker *w = &q->w[((struct qthread *)arg)->t];

	free(arg);
	pthread_mutex_lock(&q->lock);
	for (;;) {
		if (queue_run_one(wa, q, w))
			continue;
		if (q->stop)
			break;
		pthread_cond_wait(&q->work, &q->lock);
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

static int queue_start(struct wim_append *wa)
{
	struct queue *q;

	if (wa->q)
		return 0;
	if (!(q = calloc(1, sizeof(*q))))
		return -ENOMEM;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->work, NULL);
	pthread_cond_init(&q->done, NULL);
	wa->q = q;
	/* (no thread to be had: the caller does it all while it waits) */
	for (unsigned t = 0; t < wa->threads; t++) {
		struct qthread *a = malloc(sizeof(*a));
		if (!a)
			break;
		*a = (struct qthread){.wa = wa, .t = t};
		if (pthread_create(&q->tids[t], NULL, queue_thread, a)) {
			free(a);
			break;
		}
		q->nthreads++;
	}
	return 0;
}

/* Waits for every queued chunk (helping), then puts each queued resource's
 * header where it belongs: 0 or the first error. */
static int queue_flush(struct wim_append *wa)
{
	struct queue *q = wa->q;

	if (!q)
		return 0;
	pthread_mutex_lock(&q->lock);
	while (q->head < q->tail) {
		if (!queue_help(wa, q))
			pthread_cond_wait(&q->done, &q->lock);
	}
	int ret = q->err;
	pthread_mutex_unlock(&q->lock);
	for (size_t i = 0; i < q->nres; i++) {
		struct qres *res = q->res[i];
		if (!ret && res->slot == SIZE_MAX) {
			wa->new_meta.r = (struct reshdr){.offset = res->r.offset,
							 .size = res->r.size,
							 .stored_size = res->r.stored_size,
							 .flags = res->r.flags | RESHDR_METADATA};
			memcpy(wa->new_meta.sha1, res->sha1, 20);
		}
		else if (!ret)
			wa->blobs[res->slot].r = res->r;
		qres_free(res);
	}
	if (!ret && q->nres)
		wa->pos = q->wpos;
	q->nres = 0;
	return ret; /* (an error stays: nothing is written after it) */
}

static bool queue_used(const struct wim_append *wa)
{
	return wa->q && wa->q->used;
}

/* Stops the threads (the queue drained first) and frees it all. */
static void queue_free(struct wim_append *wa)
{
	struct queue *q = wa->q;

	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->err = q->err ? q->err : -ECANCELED; /* what is left is not written */
	pthread_mutex_unlock(&q->lock);
	queue_flush(wa);
	pthread_mutex_lock(&q->lock);
	q->stop = true;
	pthread_cond_broadcast(&q->work);
	pthread_mutex_unlock(&q->lock);
	for (unsigned t = 0; t < q->nthreads; t++)
		pthread_join(q->tids[t], NULL);
	for (unsigned t = 0; t < WIM_APPEND_MAX_THREADS; t++) {
		if (q->w[t].comp)
			wimlib_free_compressor(q->w[t].comp);
		if (q->w[t].meta_comp)
			wimlib_free_compressor(q->w[t].meta_comp);
		if (q->w[t].decomp)
			wimlib_free_decompressor(q->w[t].decomp);
		free(q->w[t].cbuf);
		free(q->w[t].bbuf);
	}
	free(q->res);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->work);
	pthread_cond_destroy(&q->done);
	free(q);
	wa->q = NULL;
}


/*
 * A resource of @src (at most QUEUE_RES_MAX bytes) to be queued: its bytes
 * read (@data: taken instead, NULL: none) and its SHA-1 in @sha1 (@sha1
 * NULL: the metadata's, hashed by a worker, in place at the flush).
 */
static int queue_prepare(struct wim_append *wa, const struct source *src, uint8_t *data, bool meta,
			 uint8_t sha1[20], struct qres **res_ret)
{
	bool compress = wa->ctype != WIMLIB_COMPRESSION_TYPE_NONE;
	struct qres *res = calloc(1, sizeof(*res));
	int ret;

	*res_ret = NULL;
	if (!res) {
		free(data);
		return -ENOMEM;
	}
	res->size = src->size;
	res->n = chunk_count(src->size, wa->chunk_size);
	res->tlen = compress ? (res->n - 1) * (src->size > UINT32_MAX ? 8 : 4) : 0;
	res->meta = meta;
	res->slot = SIZE_MAX;
	res->data = data;
	if (!res->data && !(res->data = malloc(src->size)))
		ret = -ENOMEM;
	else if (!data)
		ret = src->read(src->ctx, res->data, src->size, 0);
	else
		ret = 0;
	if (!ret && sha1)
		ret = wtg_sha1(res->data, src->size, sha1);
	if (!ret && res->tlen && !(res->table = malloc(res->tlen)))
		ret = -ENOMEM;
	if (ret) {
		qres_free(res);
		return ret;
	}
	*res_ret = res;
	return 0;
}

/*
 * Queues @res (taken) to be written as write_resource writes it, reusing
 * @base's stored chunks (NULL: none) that equal the new ones; @hint as
 * write_resource's.
 */
static int queue_submit(struct wim_append *wa, struct qres *res, const struct blob *base,
			const struct wim_append_range *hint, size_t nhint, const uint32_t *from,
			size_t nfrom)
{
	uint32_t cs = wa->chunk_size;
	bool compress = wa->ctype != WIMLIB_COMPRESSION_TYPE_NONE;
	int ret;

	if (compress && base && !(base->r.flags & RESHDR_SOLID)) {
		if ((ret = load_chunks(wa, base, &res->bc)))
			goto fail;
		if (res->bc.n)
			prefetch_chunks(wa, &res->bc, 0, res->bc.n - 1);
		res->base_size = base->r.size;
		/* the base metadata's bytes, when wim_append_read_metadata read them */
		if (res->meta && wa->meta_cache && !memcmp(wa->meta_cache_sha1, base->sha1, 20)) {
			res->known = wa->meta_cache;
			res->known_len = wa->meta_cache_len;
		}
	}
	if ((ret = queue_start(wa)))
		goto fail;
	struct queue *q = wa->q;
	if (q->nres == q->res_cap) {
		size_t cap = q->res_cap ? q->res_cap * 2 : 64;
		struct qres **v = realloc(q->res, cap * sizeof(*v));
		if (!v) {
			ret = -ENOMEM;
			goto fail;
		}
		q->res = v;
		q->res_cap = cap;
	}
	pthread_mutex_lock(&q->lock);
	/* room for its bytes */
	while (q->bytes && q->bytes + res->size > QUEUE_BYTES_MAX && !q->err)
		if (!queue_help(wa, q))
			pthread_cond_wait(&q->done, &q->lock);
	if ((ret = q->err)) {
		pthread_mutex_unlock(&q->lock);
		goto fail;
	}
	if (!q->nres)
		q->wpos = wa->pos;
	q->res[q->nres++] = res;
	q->used = true;
	q->bytes += res->size;
	for (uint64_t i = 0; i < res->n; i++) {
		if (!i && res->slot == SIZE_MAX) {
			/* first: a worker hashes while others compare */
			while (q->tail - q->head == QUEUE_CHUNKS)
				if (!queue_help(wa, q))
					pthread_cond_wait(&q->done, &q->lock);
			q->jobs[q->tail++ % QUEUE_CHUNKS] = (struct qjob){.res = res, .mode = C_HASH};
			pthread_cond_signal(&q->work);
		}
		uint32_t usize = chunk_usize(res->size, cs, i);
		uint64_t o = from && i < nfrom ? from[i] : i;
		int mode = compress ? reuse_mode(&res->bc, res->base_size, cs, i, o, usize, hint,
						 nhint, res->known ? res->known_len : 0)
				    : C_COPY;
		while (q->tail - q->head == QUEUE_CHUNKS)
			if (!queue_help(wa, q))
				pthread_cond_wait(&q->done, &q->lock);
		q->jobs[q->tail++ % QUEUE_CHUNKS] =
			(struct qjob){.res = res, .i = i, .from = o, .mode = mode};
		pthread_cond_signal(&q->work);
	}
	pthread_mutex_unlock(&q->lock);
	return 0;
fail:
	qres_free(res);
	return ret;
}

void wim_append_set_threads(struct wim_append *wa, unsigned n)
{
	wa->threads = n < 1 ? 1 : n > WIM_APPEND_MAX_THREADS ? WIM_APPEND_MAX_THREADS : n;
}

int wim_append_add_blob(struct wim_append *wa, uint64_t size, wim_append_read_fn read, void *ctx,
			const uint8_t *base_sha1, uint32_t refs, uint8_t sha1_ret[20])
{
	return wim_append_add_blob_ranges(wa, size, read, ctx, base_sha1, NULL, 0, refs, sha1_ret);
}

/* wim_append_add_blob_ranges with @own (NULL: none) the same bytes as
 * @read gives, taken. */
static int add_blob(struct wim_append *wa, uint64_t size, wim_append_read_fn read, void *ctx,
		    void *own, const uint8_t *base_sha1, const struct wim_append_range *changed,
		    size_t nchanged, const uint8_t *known, uint32_t refs, uint8_t sha1_ret[20])
{
	struct source src = {.size = size, .read = read, .ctx = ctx};
	struct blob b = {.part = 1, .refcnt = refs};
	int ret;

	if (!wa->writable || wa->committed || wa->unsupported || !size) {
		free(own);
		return -EINVAL;
	}
	const struct blob *base = base_sha1 ? find_blob(wa, base_sha1) : NULL;
	struct blob base_copy;
	/* a base this append wrote: where it lies is known once it is out */
	if (base && (size_t)(base - wa->blobs) >= wa->nold) {
		if ((ret = queue_flush(wa))) {
			free(own);
			return ret;
		}
		base = find_blob(wa, base_sha1);
	}
	if (base) {
		base_copy = *base; /* push_blob may move the table */
		base = &base_copy;
	}
	if (size <= QUEUE_RES_MAX) {
		struct qres *res;
		if ((ret = queue_prepare(wa, &src, own, false, known ? NULL : b.sha1, &res)))
			return ret;
		if (known)
			memcpy(b.sha1, known, 20);
		memcpy(sha1_ret, b.sha1, 20);
		if (find_blob(wa, b.sha1)) {
			qres_free(res);
			wa->st.blobs_shared++;
			return wim_append_ref(wa, b.sha1, refs);
		}
		b.r.size = size;
		res->slot = wa->nblobs;
		if ((ret = push_blob(wa, &b))) {
			qres_free(res);
			return ret;
		}
		wa->st.blobs_new++;
		return queue_submit(wa, res, base, base ? changed : NULL, nchanged, NULL, 0);
	}
	ret = queue_flush(wa);
	if (!ret)
		ret = write_resource(wa, &src, base, &b.r, b.sha1, false, base ? changed : NULL,
				     nchanged, NULL, 0, known);
	free(own);
	if (ret)
		return ret;
	memcpy(sha1_ret, b.sha1, 20);
	if (find_blob(wa, b.sha1)) {
		wa->st.blobs_shared++;
		return wim_append_ref(wa, b.sha1, refs);
	}
	if ((ret = push_blob(wa, &b)))
		return ret;
	wa->pos += b.r.stored_size;
	wa->st.blobs_new++;
	wa->st.bytes_written += b.r.stored_size;
	return 0;
}

int wim_append_add_blob_ranges(struct wim_append *wa, uint64_t size, wim_append_read_fn read,
			       void *ctx, const uint8_t *base_sha1,
			       const struct wim_append_range *changed, size_t nchanged,
			       uint32_t refs, uint8_t sha1_ret[20])
{
	return add_blob(wa, size, read, ctx, NULL, base_sha1, changed, nchanged, NULL, refs,
			sha1_ret);
}

struct membuf {
	const uint8_t *p;
	size_t len;
};

static int read_mem(void *ctx, void *buf, size_t len, uint64_t off)
{
	const struct membuf *m = ctx;

	if (off > m->len || len > m->len - off)
		return -EIO;
	memcpy(buf, m->p + off, len);
	return 0;
}

int wim_append_add_buffer(struct wim_append *wa, void *bytes, size_t size, const uint8_t *base_sha1,
			  const struct wim_append_range *changed, size_t nchanged, uint32_t refs,
			  uint8_t sha1_ret[20])
{
	struct membuf m = {.p = bytes, .len = size};

	return add_blob(wa, size, read_mem, &m, bytes, base_sha1, changed, nchanged, NULL, refs,
			sha1_ret);
}

bool wim_append_can_add_known(struct wim_append *wa, uint64_t size, const uint8_t *base_sha1,
			      const struct wim_append_range *changed, size_t nchanged)
{
	const struct blob *base = base_sha1 ? find_blob(wa, base_sha1) : NULL;
	uint32_t cs = wa->chunk_size;

	if (!wa->writable || wa->committed || wa->unsupported || !size ||
	    wa->ctype == WIMLIB_COMPRESSION_TYPE_NONE || !base || (base->r.flags & RESHDR_SOLID) ||
	    (size_t)(base - wa->blobs) >= wa->nold)
		return false;
	struct chunks bc;
	if (load_chunks(wa, base, &bc))
		return false;
	/* each chunk outside the ranges is one queue_submit reuses (reuse_mode),
	 * and the resource shrinks whatever its changed chunks give: one that
	 * does not is stored whole, from bytes this caller does not have (its
	 * stored size at most the table, the reused chunks' stored bytes and
	 * every other chunk raw) */
	uint64_t n = chunk_count(size, cs), worst = (n - 1) * (size > UINT32_MAX ? 8 : 4);
	bool fits = true;
	for (uint64_t i = 0; i < n && fits; i++) {
		uint32_t usize = chunk_usize(size, cs, i);
		if (!outside(changed, nchanged, i * cs, usize))
			worst += usize;
		else if (i < bc.n && chunk_usize(base->r.size, cs, i) == usize)
			worst += bc.start[i + 1] - bc.start[i];
		else
			fits = false;
	}
	free(bc.start);
	return fits && worst < size;
}

int wim_append_add_known(struct wim_append *wa, void *bytes, size_t size, const uint8_t *base_sha1,
			 const struct wim_append_range *changed, size_t nchanged,
			 const uint8_t sha1[WIM_APPEND_SHA1_LEN], uint32_t refs)
{
	struct membuf m = {.p = bytes, .len = size};
	uint8_t out[20];

	if (!wim_append_can_add_known(wa, size, base_sha1, changed, nchanged)) {
		free(bytes);
		return -EINVAL;
	}
	return add_blob(wa, size, read_mem, &m, bytes, base_sha1, changed, nchanged, sha1, refs,
			out);
}

static const struct blob *image_meta(const struct wim_append *wa, int image)
{
	if (image < 1 || (size_t)image > wa->nmeta)
		return NULL;
	return &wa->meta[image - 1];
}

int wim_append_metadata_sha1(const struct wim_append *wa, int image, uint8_t sha1_ret[20])
{
	const struct blob *b = image_meta(wa, image);

	if (!b)
		return -ENOENT;
	memcpy(sha1_ret, b->sha1, 20);
	return 0;
}

/* Chunks [first, last) of a resource of @size bytes (stored chunks @c)
 * decoded into @out, with codecs of their own (for a thread of its own, or
 * a caller that may run beside the appender's). */
struct decode_run {
	struct wim_append *wa;
	uint64_t size;
	const struct chunks *c;
	uint64_t first, last;
	uint8_t *out;
	int ret;
	pthread_t tid;
};

static void *decode_run_fn(void *arg)
{
	struct decode_run *d = arg;
	struct wim_append *wa = d->wa;
	struct wimlib_decompressor *decomp = NULL;
	uint8_t *cbuf = malloc(wa->chunk_size);

	d->ret = 0;
	if (!cbuf || (wa->ctype != WIMLIB_COMPRESSION_TYPE_NONE &&
		      wimlib_create_decompressor((enum wimlib_compression_type)wa->ctype,
						 wa->chunk_size, &decomp)))
		d->ret = -ENOMEM;
	for (uint64_t i = d->first; i < d->last && !d->ret; i++)
		d->ret = read_chunk_with(wa, d->size, d->c, i,
					 d->out + (i - d->first) * wa->chunk_size, cbuf, decomp);
	free(cbuf);
	if (decomp)
		wimlib_free_decompressor(decomp);
	return NULL;
}

/* A read of at least this many whole chunks is shared with a thread. */
#define READ_SPLIT_CHUNKS 8

/* Chunks [first, last) decoded into @out, the second half by a thread of
 * its own when the appender has threads and the run is long enough; the
 * first half with the appender's codecs (@own_codecs false) or codecs of
 * its own (for a caller that may run beside the appender's). */
static int decode_split(struct wim_append *wa, uint64_t size, const struct chunks *c,
			uint64_t first, uint64_t last, uint8_t *out, bool own_codecs)
{
	uint32_t cs = wa->chunk_size;
	struct decode_run half = {.wa = wa, .size = size, .c = c};
	bool split = false;
	uint64_t mid = last;
	int ret = 0;

	if (wa->threads > 1 && last - first >= READ_SPLIT_CHUNKS) {
		mid = first + (last - first) / 2;
		half.first = mid;
		half.last = last;
		half.out = out + (mid - first) * cs;
		split = !pthread_create(&half.tid, NULL, decode_run_fn, &half);
		if (!split)
			mid = last;
	}
	if (own_codecs) {
		struct decode_run d = {.wa = wa, .size = size, .c = c, .first = first, .last = mid,
				       .out = out};
		decode_run_fn(&d);
		ret = d.ret;
	} else {
		for (uint64_t i = first; i < mid && !ret; i++)
			ret = read_chunk_with(wa, size, c, i, out + (i - first) * cs, wa->cbuf,
					      wa->decomp);
	}
	if (split) {
		pthread_join(half.tid, NULL);
		if (!ret)
			ret = half.ret;
	}
	return ret;
}

int wim_append_read_blob(struct wim_append *wa, const uint8_t sha1[20], void *buf, size_t len,
			 uint64_t off)
{
	const struct blob *f = find_blob(wa, sha1);
	uint32_t cs = wa->chunk_size;
	struct chunks c;
	int ret;

	if (!f || (size_t)(f - wa->blobs) >= wa->nold || (f->r.flags & RESHDR_SOLID))
		return -ENOENT;
	struct blob b = *f;
	if (off > b.r.size || len > b.r.size - off)
		return -EINVAL;
	if (!len)
		return 0;
	if ((ret = need_codecs(wa)) || (ret = load_chunks(wa, &b, &c)))
		return ret;
	uint64_t end = off + len, first = off / cs, last = (end - 1) / cs;
	prefetch_chunks(wa, &c, first, last);
	/* the whole chunks in the middle: [wfirst, wlast) */
	uint64_t wfirst = off % cs ? first + 1 : first;
	uint64_t wlast = end % cs && end != b.r.size ? last : last + 1;
	if (wlast < wfirst)
		wlast = wfirst;
	/* the partial chunks at either end */
	for (uint64_t i = first; i <= last && !ret; i++) {
		if (i == wfirst && wlast > wfirst) {
			i = wlast - 1;
			continue;
		}
		uint64_t start = i * cs, usize = chunk_usize(b.r.size, cs, i);
		uint64_t from = off > start ? off : start, to = end < start + usize ? end : start + usize;
		if (!(ret = read_chunk(wa, &b, &c, i, wa->ubuf)))
			memcpy((uint8_t *)buf + (from - off), wa->ubuf + (from - start), to - from);
	}
	if (!ret && wlast > wfirst)
		ret = decode_split(wa, b.r.size, &c, wfirst, wlast, (uint8_t *)buf + (wfirst * cs - off),
				   true);
	free(c.start);
	return ret;
}

static void *check_fn(void *arg)
{
	struct wim_append *wa = arg;
	uint8_t sha1[20];

	wa->check.ret = wtg_sha1(wa->meta_cache, wa->meta_cache_len, sha1);
	if (!wa->check.ret && memcmp(sha1, wa->meta_cache_sha1, 20))
		wa->check.ret = -EINVAL;
	if (!wa->check.ret && wa->check.also)
		wa->check.also(wa->check.ctx);
	return NULL;
}

/* What check_fn found: 0, or the bytes dropped and an error. */
static int check_result(struct wim_append *wa)
{
	int ret = wa->check.ret;
	if (ret) {
		/* (bytes that nothing may compare with; a parse may still point
		 * into them) */
		memset(wa->meta_cache_sha1, 0, 20);
		if (ret == -EINVAL)
			corrupt(wa, "a metadata resource does not match its SHA-1");
	}
	return ret;
}

int wim_append_metadata_check(struct wim_append *wa)
{
	if (!wa->check.running)
		return 0;
	pthread_join(wa->check.tid, NULL);
	wa->check.running = false;
	return check_result(wa);
}

int wim_append_keep_metadata(struct wim_append *wa, int image, void *bytes, size_t len)
{
	const struct blob *b = image_meta(wa, image);

	if (!b || len != b->r.size || wa->meta_cache || wa->check.running) {
		free(bytes);
		return -EINVAL;
	}
	wa->meta_cache = bytes;
	wa->meta_cache_len = len;
	memcpy(wa->meta_cache_sha1, b->sha1, 20);
	return 0;
}

static int metadata_bytes(struct wim_append *wa, int image, const void **bytes_ret,
			  size_t *len_ret, bool later, void (*also)(void *ctx), void *ctx)
{
	const struct blob *b = image_meta(wa, image);
	uint8_t *buf = NULL;
	struct chunks c = {0};
	uint8_t sha1[20];
	int ret;

	if (!b)
		return -ENOENT;
	if ((ret = wim_append_metadata_check(wa)))
		return ret;
	if (wa->meta_cache && !memcmp(wa->meta_cache_sha1, b->sha1, 20)) {
		*bytes_ret = wa->meta_cache;
		*len_ret = wa->meta_cache_len;
		return 0;
	}
	if (b->r.size > MAX_METADATA)
		return corrupt(wa, "a metadata resource too large");
	/* (the bytes kept go: a queued metadata resource may compare with them) */
	if (wa->meta_cache && (ret = queue_flush(wa)))
		return ret;
	/* (the chunk table checked before the size it claims is allocated) */
	if (!(ret = load_chunks(wa, b, &c)) && !(buf = wtg_malloc_large(b->r.size)))
		ret = -ENOMEM;
	/* (codecs of its own: this may run beside add_blob) */
	if (!ret) {
		prefetch_chunks(wa, &c, 0, c.n - 1);
		ret = decode_split(wa, b->r.size, &c, 0, c.n, buf, true);
	}
	if (!ret && !later && !(ret = wtg_sha1(buf, b->r.size, sha1)) && memcmp(sha1, b->sha1, 20))
		ret = corrupt(wa, "a metadata resource does not match its SHA-1");
	free(c.start);
	if (ret) {
		free(buf);
		return ret;
	}
	/* kept for wim_append_set_metadata's comparisons */
	free(wa->meta_cache);
	wa->meta_cache = buf;
	wa->meta_cache_len = b->r.size;
	memcpy(wa->meta_cache_sha1, b->sha1, 20);
	*bytes_ret = buf;
	*len_ret = b->r.size;
	if (later) {
		wa->check = (struct meta_check){.also = also, .ctx = ctx};
		if (!pthread_create(&wa->check.tid, NULL, check_fn, wa))
			wa->check.running = true;
		else {
			check_fn(wa); /* (no thread: at once) */
			if ((ret = check_result(wa)))
				return ret;
		}
	}
	return 0;
}

int wim_append_metadata_bytes(struct wim_append *wa, int image, const void **bytes_ret,
			      size_t *len_ret)
{
	return metadata_bytes(wa, image, bytes_ret, len_ret, false, NULL, NULL);
}

int wim_append_metadata_bytes_checking(struct wim_append *wa, int image, const void **bytes_ret,
				       size_t *len_ret, void (*also)(void *ctx), void *ctx)
{
	return metadata_bytes(wa, image, bytes_ret, len_ret, true, also, ctx);
}

int wim_append_read_metadata(struct wim_append *wa, int image, void **bytes_ret, size_t *len_ret)
{
	const void *p;
	size_t len;
	int ret = wim_append_metadata_bytes(wa, image, &p, &len);

	if (ret)
		return ret;
	if (!(*bytes_ret = malloc(len ? len : 1)))
		return -ENOMEM;
	memcpy(*bytes_ret, p, len);
	*len_ret = len;
	return 0;
}

/* wim_append_set_metadata with @own (NULL: none) the same bytes, taken. */
static int set_metadata(struct wim_append *wa, const void *bytes, void *own, size_t len,
			int base_image, const uint32_t *from, size_t nfrom)
{
	struct membuf m = {.p = bytes, .len = len};
	struct source src = {.size = len, .read = read_mem, .ctx = &m};
	struct blob b = {.part = 1, .refcnt = 1};
	int ret;

	if (!wa->writable || wa->committed || wa->unsupported || wa->have_new_meta || !len ||
	    (ret = wim_append_metadata_check(wa))) {
		free(own);
		return -EINVAL;
	}
	const struct blob *base = base_image ? image_meta(wa, base_image) : NULL;
	if (len <= QUEUE_RES_MAX) {
		struct qres *res;
		if ((ret = queue_prepare(wa, &src, own, true, NULL, &res)))
			return ret;
		wa->new_meta = b;
		wa->have_new_meta = true;
		return queue_submit(wa, res, base, NULL, 0, from, nfrom);
	}
	ret = queue_flush(wa);
	if (!ret)
		ret = write_resource(wa, &src, base, &b.r, b.sha1, true, NULL, 0, from, nfrom, NULL);
	free(own);
	if (ret)
		return ret;
	b.r.flags |= RESHDR_METADATA;
	wa->new_meta = b;
	wa->have_new_meta = true;
	wa->pos += b.r.stored_size;
	wa->st.bytes_written += b.r.stored_size;
	return 0;
}

int wim_append_set_metadata(struct wim_append *wa, const void *bytes, size_t len, int base_image)
{
	return set_metadata(wa, bytes, NULL, len, base_image, NULL, 0);
}

int wim_append_set_metadata_take(struct wim_append *wa, void *bytes, size_t len, int base_image,
				 const uint32_t *from, size_t nfrom)
{
	return set_metadata(wa, bytes, bytes, len, base_image, from, nfrom);
}

/* ---- the commit ---- */

static int set_text(xmlNodePtr parent, const char *name, const char *text)
{
	xmlNodePtr n = child(parent, name);

	if (!n && !(n = xmlNewChild(parent, NULL, (const xmlChar *)name, NULL)))
		return -ENOMEM;
	xmlNodeSetContent(n, NULL);
	xmlNodeAddContent(n, (const xmlChar *)text);
	return 0;
}

static int set_number(xmlNodePtr parent, const char *name, uint64_t v)
{
	char s[32];

	snprintf(s, sizeof(s), "%" PRIu64, v);
	return set_text(parent, name, s);
}

static int set_time(xmlNodePtr parent, const char *name, uint64_t t)
{
	char hi[16], lo[16];
	xmlNodePtr n = child(parent, name);

	if (n) {
		/* in place, where the copied element had it */
		while (n->children) {
			xmlNodePtr c = n->children;
			xmlUnlinkNode(c);
			xmlFreeNode(c);
		}
	} else if (!(n = xmlNewChild(parent, NULL, (const xmlChar *)name, NULL))) {
		return -ENOMEM;
	}
	snprintf(hi, sizeof(hi), "0x%08" PRIX32, (uint32_t)(t >> 32));
	snprintf(lo, sizeof(lo), "0x%08" PRIX32, (uint32_t)t);
	if (set_text(n, "HIGHPART", hi) || set_text(n, "LOWPART", lo))
		return -ENOMEM;
	return 0;
}

/* The new XML document's bytes (UTF-16LE with a BOM), TOTALBYTES @total. */
static int build_xml(struct wim_append *wa, const struct wim_append_image *img, uint64_t total,
		     uint8_t **out, size_t *out_len)
{
	uint32_t images = le32toh(wa->hdr.image_count);
	xmlDocPtr doc = xmlCopyDoc(wa->xml, 1);
	int ret = -ENOMEM;

	if (!doc)
		return -ENOMEM;
	xmlNodePtr root = xmlDocGetRootElement(doc), last = NULL, node = NULL;
	for (xmlNodePtr c = root->children; c; c = c->next)
		if (is_element(c, "IMAGE")) {
			last = c;
			if (img->copy_of >= 1 && (uint32_t)img->copy_of <= images) {
				xmlChar *idx = xmlGetProp(c, (const xmlChar *)"INDEX");
				if (idx && strtoul((const char *)idx, NULL, 10) ==
					       (unsigned long)img->copy_of)
					node = c;
				xmlFree(idx);
			}
		}
	node = node ? xmlCopyNode(node, 1) : xmlNewNode(NULL, (const xmlChar *)"IMAGE");
	if (!node)
		goto out;
	if (last ? !xmlAddNextSibling(last, node) : !xmlAddChild(root, node)) {
		xmlFreeNode(node);
		goto out;
	}
	char idx[16];
	snprintf(idx, sizeof(idx), "%" PRIu32, images + 1);
	if (!xmlSetProp(node, (const xmlChar *)"INDEX", (const xmlChar *)idx))
		goto out;
	if (set_number(node, "DIRCOUNT", img->dir_count) ||
	    set_number(node, "FILECOUNT", img->file_count) ||
	    set_number(node, "TOTALBYTES", img->total_bytes) ||
	    set_number(node, "HARDLINKBYTES", img->hard_link_bytes) ||
	    set_time(node, "CREATIONTIME", img->creation_time) ||
	    set_time(node, "LASTMODIFICATIONTIME", img->last_modification_time) ||
	    set_text(node, "NAME", img->name) ||
	    (img->description && set_text(node, "DESCRIPTION", img->description)))
		goto out;
	xmlNodePtr desc = img->description ? NULL : child(node, "DESCRIPTION");
	if (desc) {
		xmlUnlinkNode(desc);
		xmlFreeNode(desc);
	}
	/* TOTALBYTES last, as wimlib writes it */
	xmlNodePtr tb = child(root, "TOTALBYTES");
	if (tb) {
		xmlUnlinkNode(tb);
		xmlFreeNode(tb);
	}
	if (!(tb = xmlNewChild(root, NULL, (const xmlChar *)"TOTALBYTES", NULL)))
		goto out;
	char s[32];
	snprintf(s, sizeof(s), "%" PRIu64, total);
	xmlNodeSetContent(tb, NULL);
	xmlNodeAddContent(tb, (const xmlChar *)s);

	xmlBufferPtr buf = xmlBufferCreate();
	if (!buf)
		goto out;
	xmlSaveCtxtPtr save = xmlSaveToBuffer(buf, "UTF-8", XML_SAVE_NO_DECL);
	if (!save) {
		xmlBufferFree(buf);
		goto out;
	}
	xmlSaveDoc(save, doc);
	xmlSaveClose(save);
	const xmlChar *text = xmlBufferContent(buf);
	size_t len = (size_t)xmlBufferLength(buf);
	while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		len--;
	*out = utf8_to_utf16(text, len, out_len);
	xmlBufferFree(buf);
	ret = *out ? 0 : -ENOMEM;
out:
	xmlFreeDoc(doc);
	return ret;
}

/* One entry of the new table: a metadata entry's part is 1 and its
 * references 1, as wimlib writes them. */
static void put_entry(struct wim_blob_disk *d, const struct blob *b)
{
	bool meta = b->r.flags & RESHDR_METADATA;

	reshdr_put(&b->r, &d->r);
	d->part_number = htole16(meta ? 1 : b->part);
	d->refcnt = htole32(meta ? 1 : b->refcnt);
	memcpy(d->sha1, b->sha1, 20);
}

static int put_table(struct wim_append *wa, uint8_t **out, size_t *out_len)
{
	size_t n = wa->nblobs + 1, o = 0;
	/* (every byte of each entry is written below) */
	struct wim_blob_disk *d = realloc(wa->table_buf, n * sizeof(*d));

	if (!d)
		return -ENOMEM;
	wa->table_buf = NULL;
	/* the old entries in their order (wimlib's: the metadata first, the
	 * rest by offset; an ESD's solid runs as they were), the new image's
	 * metadata right after the old last one (images are in the order of
	 * their metadata entries), then the new blobs as written */
	for (size_t i = 0; i <= wa->nblobs; i++) {
		if (i == wa->meta_end)
			put_entry(&d[o++], &wa->new_meta);
		if (i < wa->nblobs)
			put_entry(&d[o++], &wa->blobs[i]);
	}
	*out = (uint8_t *)d;
	*out_len = o * sizeof(*d);
	return 0;
}

int wim_append_commit(struct wim_append *wa, const struct wim_append_image *img)
{
	uint8_t *table = NULL, *xml = NULL, *integ = NULL;
	size_t tlen, xlen, ilen = 0;
	int ret;

	if (!wa->writable || wa->committed || wa->unsupported || !wa->have_new_meta || !img->name)
		return -EINVAL;
	if ((ret = queue_flush(wa)) || (ret = put_table(wa, &table, &tlen)))
		return ret;
	uint64_t toff = wa->pos, xoff = toff + tlen, ioff;
	if ((ret = pwrite_full(wa, table, tlen, toff)) ||
	    (ret = build_xml(wa, img, xoff, &xml, &xlen)) ||
	    (ret = pwrite_full(wa, xml, xlen, xoff)))
		goto out;
	wa->pos = ioff = xoff + xlen;
	wa->st.bytes_written += tlen + xlen;
	/* the integrity table last, over the bytes up to the blob table's end
	 * (as wimlib places and reads it) */
	if (img->integrity || wa->integrity) {
		if ((ret = build_integrity(wa, toff + tlen, &integ, &ilen)) ||
		    (ret = pwrite_full(wa, integ, ilen, ioff)))
			goto out;
		wa->pos += ilen;
		wa->st.bytes_written += ilen;
	}
	if (ftruncate(wa->fd, (off_t)wa->pos) < 0 || fdatasync(wa->fd) < 0) {
		ret = -errno;
		wtg_error("cannot write '%s': %s", wa->path, strerror(-ret));
		goto out;
	}
	struct wim_header_disk h = wa->hdr;
	struct reshdr r = {.stored_size = tlen, .size = tlen, .offset = toff, .flags = RESHDR_METADATA};
	reshdr_put(&r, &h.blob_table);
	r = (struct reshdr){.stored_size = xlen, .size = xlen, .offset = xoff,
			    .flags = RESHDR_METADATA};
	reshdr_put(&r, &h.xml);
	h.image_count = htole32(le32toh(wa->hdr.image_count) + 1);
	if (img->boot) {
		h.boot_index = h.image_count;
		reshdr_put(&wa->new_meta.r, &h.boot_metadata);
	}
	h.flags = htole32(le32toh(h.flags) & ~(uint32_t)HDR_WRITE_IN_PROGRESS);
	memset(&h.integrity, 0, sizeof(h.integrity));
	if (integ) {
		r = (struct reshdr){.stored_size = ilen, .size = ilen, .offset = ioff};
		reshdr_put(&r, &h.integrity);
	}
	/* the tests' kill between the data and the header */
	struct wtg_progress kill_point = {.phase = "append-header"};
	wtg_progress_test_kill(&kill_point, true);
	if ((ret = pwrite_full(wa, &h, sizeof(h), 0)))
		goto out;
	wa->committed = true; /* the header is out: no truncation from here */
	if (fsync(wa->fd) < 0) {
		ret = -errno;
		wtg_error("cannot sync '%s': %s", wa->path, strerror(-ret));
	}
out:
	free(table);
	free(xml);
	free(integ);
	return ret;
}
