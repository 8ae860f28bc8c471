/*
 * The WIM source: image metadata through wimlib (the only reader of
 * wimlib.h besides the chunk reader in wim_resource.c), file data through
 * our own random-access reader, and SHA-1 checks of streams read to their
 * end.
 *
 * wimlib is used only while loading: wimlib_iterate_dir_tree() fills the
 * tree, then the WIMStruct is freed (it is not thread-safe, and nothing
 * later needs it).  Data reads go straight to the file with pread().
 */
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wimlib.h>

#include "wtgfs/chunk_cache.h"
#include "wtgfs/hash.h"
#include "wtgfs/log.h"
#include "wtgfs/names.h"
#include "wtgfs/ntfs.h"
#include "wtgfs/source.h"
#include "wtgfs/tree.h"
#include "wtgfs/wim.h"
#include "wtgfs/wim_append.h"
#include "wtgfs/wim_resource.h"
#include "wtgfs/workpool.h"

/* The default chunk cache: the solid resources' decoded bytes, plus this
 * for the partial chunks of ordinary ones, within a quarter of the free
 * memory and never below the floor (two 64 MiB solid chunks: a read and
 * its read-ahead). */
#define CACHE_EXTRA_BYTES (256ull << 20)
#define CACHE_FLOOR_BYTES (128u << 20)
#define MAX_REPARSE_DATA 16384
/* A read that skips at most this much of a blob still gets it checked: the
 * skipped bytes are read (from the chunk cache, usually) and hashed. */
#define HASH_GAP_MAX (1u << 20)

enum { BLOB_UNCHECKED, BLOB_GOOD, BLOB_BAD };

struct wtg_blob {
	struct wim_resource *res;
	uint64_t offset; /* in the uncompressed resource */
	uint64_t size;
	uint8_t sha1[WTG_SHA1_LEN];
	bool missing;
	char *first_path; /* for messages */
	struct wtg_blob *next;

	pthread_mutex_t lock;
	int state;
	uint64_t hashed_to;
	struct wtg_sha1 *ctx;
};

struct resource_node {
	struct wim_resource res;
	struct resource_node *next;
};

struct wim_source {
	struct wtg_source base;
	struct wim_file file;
	int image;
	int ctype;
	uint32_t chunk_size;
	pthread_mutex_t pool_lock;
	bool pool_started;

	struct wtg_blob **blobs; /* hash on SHA-1 */
	size_t nblob_buckets;
	struct resource_node **resources; /* hash on file offset */
	size_t nres_buckets;

	/* while loading */
	WIMStruct *wim;
	struct wtg_tree *tree;
	struct wtg_inode **dirstack;
	size_t dirstack_cap;
	struct link_group **groups;
	size_t ngroup_buckets;
	int load_err;
	uint64_t skipped;
};

struct link_group {
	uint64_t id;
	struct wtg_inode *inode;
	struct link_group *next;
};

static const char *ctype_name(int ctype)
{
	switch (ctype) {
	case WIMLIB_COMPRESSION_TYPE_NONE:
		return "none";
	case WIMLIB_COMPRESSION_TYPE_XPRESS:
		return "XPRESS";
	case WIMLIB_COMPRESSION_TYPE_LZX:
		return "LZX";
	case WIMLIB_COMPRESSION_TYPE_LZMS:
		return "LZMS";
	}
	return "unknown";
}

/* wimlib's error codes as -errno, with the message said once here. */
static int wimlib_failure(const char *path, const char *doing, int code)
{
	const char *hint = "";

	switch (code) {
	case WIMLIB_ERR_NOT_A_WIM_FILE:
	case WIMLIB_ERR_UNKNOWN_VERSION:
		hint = " (try 'wtgfs info')";
		break;
	case WIMLIB_ERR_UNEXPECTED_END_OF_FILE:
		hint = " (the file is truncated)";
		break;
	case WIMLIB_ERR_OPEN:
	case WIMLIB_ERR_STAT:
		wtg_error("cannot open '%s': %s", path, strerror(errno ? errno : ENOENT));
		return -(errno ? errno : ENOENT);
	}
	wtg_error("cannot %s '%s': %s%s", doing, path, wimlib_get_error_string(code), hint);
	switch (code) {
	case WIMLIB_ERR_NOMEM:
		return -ENOMEM;
	case WIMLIB_ERR_NOT_A_WIM_FILE:
	case WIMLIB_ERR_UNKNOWN_VERSION:
	case WIMLIB_ERR_INVALID_PARAM:
		return -EINVAL;
	default:
		return -EIO;
	}
}

static void wimlib_init_once(void)
{
	wimlib_global_init(0);
	wimlib_set_print_errors(false);
}

void wtg_wimlib_setup(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, wimlib_init_once);
	wim_append_quiet_xml();
}

/* The parts of the on-disk WIM header we check before wimlib sees it. */
struct wim_reshdr_disk {
	uint8_t stored_size[7]; /* 0x00 le56 */
	uint8_t flags;		/* 0x07 */
	uint64_t offset;	/* 0x08 le64 */
	uint64_t size;		/* 0x10 le64: uncompressed */
} __attribute__((packed));
_Static_assert(sizeof(struct wim_reshdr_disk) == 24, "resource header is 24 bytes");

struct wim_header_disk {
	char magic[8];				/* 0x00 "MSWIM\0\0\0" or "WLPWM\0\0\0" */
	uint32_t header_size;			/* 0x08 */
	uint32_t version;			/* 0x0C */
	uint32_t flags;				/* 0x10 */
	uint32_t chunk_size;			/* 0x14 */
	uint8_t guid[16];			/* 0x18 */
	uint16_t part_number;			/* 0x28 */
	uint16_t total_parts;			/* 0x2A */
	uint32_t image_count;			/* 0x2C */
	struct wim_reshdr_disk blob_table;	/* 0x30 */
	struct wim_reshdr_disk xml_data;	/* 0x48 */
	struct wim_reshdr_disk boot_metadata;	/* 0x60 */
	uint32_t boot_index;			/* 0x78 */
	struct wim_reshdr_disk integrity_table; /* 0x7C */
	uint8_t unused[60];			/* 0x94 */
} __attribute__((packed));
_Static_assert(sizeof(struct wim_header_disk) == 208, "WIM header is 208 bytes");

/* A WIM header starts with this, or with WLPWM for a pipable WIM. */
static bool wim_magic(const char magic[8])
{
	return !memcmp(magic, "MSWIM\0\0\0", 8) || !memcmp(magic, "WLPWM\0\0\0", 8);
}

bool wtg_source_is_wim(const char *path)
{
	char magic[8];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool wim = false;

	if (fd >= 0) {
		wim = pread(fd, magic, sizeof(magic), 0) == (ssize_t)sizeof(magic) &&
		      wim_magic(magic);
		close(fd);
	}
	return wim;
}

/* Says "not a WIM" where wimlib would say "truncated", and refuses headers
 * whose tables claim more bytes than the file holds: wimlib allocates
 * those tables whole, as sized here, before it checks them. */
/* The counts and table sizes of header @h that wimlib sizes its buffers
 * from, against a file of @size bytes. */
static int check_counts(const char *path, const struct wim_header_disk *h, uint64_t size)
{
	const struct wim_reshdr_disk *tables[] = {&h->blob_table, &h->xml_data,
						  &h->integrity_table};
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		if (le64toh(tables[i]->size) > size) {
			wtg_error("cannot open '%s': its header claims tables larger than the file "
				  "(corrupt or truncated WIM)",
				  path);
			return -EIO;
		}
	}
	/* every image has a 50-byte blob table entry for its metadata */
	if ((uint64_t)le32toh(h->image_count) * 50 > le64toh(h->blob_table.size)) {
		wtg_error("cannot open '%s': its header claims %u images, more than its blob table "
			  "holds (corrupt WIM)",
			  path, le32toh(h->image_count));
		return -EIO;
	}
	return 0;
}

static int check_header(const char *path)
{
	struct wim_header_disk h, end;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0) {
		int err = errno;
		wtg_error("cannot open '%s': %s", path, strerror(err));
		if (fd >= 0)
			close(fd);
		return -err;
	}
	ssize_t n = pread(fd, &h, sizeof(h), 0), n_end = -1;
	/* a pipable WIM's header at the start has no tables: wimlib reads the
	 * copy at the end (and we refuse to mount pipable WIMs once it has) */
	bool pipable = n >= 8 && !memcmp(h.magic, "WLPWM\0\0\0", 8);
	if (pipable && st.st_size >= (off_t)sizeof(end))
		n_end = pread(fd, &end, sizeof(end), st.st_size - (off_t)sizeof(end));
	close(fd);
	if (n < 8 || !wim_magic(h.magic)) {
		wtg_error("cannot open '%s': not a WIM file", path);
		return -EINVAL;
	}
	if (n != sizeof(h) || (pipable && n_end != sizeof(end))) {
		wtg_error("cannot open '%s': the WIM header is cut short (the file is truncated)",
			  path);
		return -EIO;
	}
	if (!pipable)
		return check_counts(path, &h, (uint64_t)st.st_size);
	/* wimlib sizes its list of images from the first header's count
	 * before it reads the copy */
	if ((uint64_t)le32toh(h.image_count) * 50 > (uint64_t)st.st_size) {
		wtg_error("cannot open '%s': its header claims %u images, more than the file can "
			  "hold (corrupt WIM)",
			  path, le32toh(h.image_count));
		return -EIO;
	}
	return check_counts(path, &end, (uint64_t)st.st_size);
}

/* Opens @path with wimlib and refuses what we cannot read at random. */
static int open_wim(const char *path, WIMStruct **wim_ret, struct wimlib_wim_info *info)
{
	WIMStruct *wim;
	int code, ret;

	wtg_wimlib_setup();
	ret = check_header(path);
	if (ret < 0)
		return ret;
	errno = 0;
	code = wimlib_open_wim(path, 0, &wim);
	if (code)
		return wimlib_failure(path, "open", code);
	wimlib_get_wim_info(wim, info);
	*wim_ret = wim;
	return 0;
}

/* wimlib allocates a metadata resource whole, sized as the blob table says,
 * before it checks anything; a real image's metadata is tens of MiB. */
#define MAX_METADATA_SIZE (1ull << 30)

static int note_huge_metadata(const struct wimlib_resource_entry *re, void *arg)
{
	if (re->is_metadata && re->uncompressed_size > MAX_METADATA_SIZE)
		*(uint64_t *)arg = re->uncompressed_size;
	return 0;
}

static int check_random_access(WIMStruct *wim, const char *path, const struct wimlib_wim_info *info)
{
	uint64_t huge = 0;

	wimlib_iterate_lookup_table(wim, 0, note_huge_metadata, &huge);
	if (huge) {
		wtg_error("cannot mount '%s': a metadata resource claims %" PRIu64
			  " bytes (corrupt WIM?)",
			  path, huge);
		return -EIO;
	}
	if (info->total_parts > 1) {
		wtg_error("cannot mount '%s': part %u of a split WIM of %u parts (join them first "
			  "with 'wimjoin')",
			  path, info->part_number, info->total_parts);
		return -EOPNOTSUPP;
	}
	if (info->pipable) {
		wtg_error("cannot mount '%s': a pipable WIM has no random access (convert it with "
			  "'wimexport %s all NEW.wim')",
			  path, path);
		return -EOPNOTSUPP;
	}
	return 0;
}

static int resolve_image(const char *path, WIMStruct *wim, const struct wimlib_wim_info *info,
			 const char *sel)
{
	if (!sel || !*sel) {
		if (info->image_count == 1)
			return 1;
		if (info->image_count == 0) {
			wtg_error("'%s' holds no image", path);
			return -ENOENT;
		}
		if (info->boot_index)
			return (int)info->boot_index;
		wtg_error("'%s' holds %u images: choose one with '%s:INDEX' (see 'wtgfs info %s')",
			  path, info->image_count, path, path);
		return -EINVAL;
	}
	int image = wimlib_resolve_image(wim, sel);
	if (image < 1 || image > (int)info->image_count) {
		wtg_error("'%s' has no image '%s' (it holds %u; see 'wtgfs info %s')", path, sel,
			  info->image_count, path);
		return -ENOENT;
	}
	return image;
}

/* The image-th metadata resource, in blob table order, is the image's. */
struct metadata_scan {
	int want, seen;
	uint8_t sha1[WTG_SHA1_LEN];
	bool found;
};

static int note_metadata(const struct wimlib_resource_entry *re, void *arg)
{
	struct metadata_scan *m = arg;

	if (re->is_metadata && ++m->seen == m->want) {
		memcpy(m->sha1, re->sha1_hash, WTG_SHA1_LEN);
		m->found = true;
	}
	return 0;
}

static int set_identity(struct wim_source *ws, const struct wimlib_wim_info *info)
{
	struct metadata_scan m = {.want = ws->image};

	wimlib_iterate_lookup_table(ws->wim, 0, note_metadata, &m);
	if (!m.found) {
		wtg_error("'%s': image %d has no metadata resource (corrupt WIM?)", ws->base.path,
			  ws->image);
		return -EIO;
	}
	wtg_wim_identity(info->guid, ws->image, m.sha1, ws->base.identity);
	return 0;
}

void wtg_wim_identity(const uint8_t guid[16], int image, const uint8_t sha1[20],
		      char out[WTG_IDENTITY_MAX])
{
	char g[2 * 16 + 1], sha[2 * WTG_SHA1_LEN + 1];

	wtg_hex(guid, 16, g);
	wtg_hex(sha1, WTG_SHA1_LEN, sha);
	snprintf(out, WTG_IDENTITY_MAX, "wim:%s:%d:%s", g, image, sha);
}

/* ---- 'wtgfs info' ---- */

static uint64_t image_number(WIMStruct *wim, int image, const char *prop)
{
	const char *v = wimlib_get_image_property(wim, image, prop);
	return v ? strtoull(v, NULL, 10) : 0;
}

struct solid_scan {
	bool solid;
};

static int note_solid(const struct wimlib_resource_entry *re, void *arg)
{
	if (re->packed)
		((struct solid_scan *)arg)->solid = true;
	return 0;
}

int wtg_wim_read_info(const char *path, struct wtg_wim_info *info)
{
	struct wimlib_wim_info wi;
	WIMStruct *wim;
	struct stat st;
	struct solid_scan scan = {false};
	int ret = open_wim(path, &wim, &wi);

	if (ret < 0)
		return ret;
	memset(info, 0, sizeof(*info));
	wtg_hex(wi.guid, WIMLIB_GUID_LEN, info->guid);
	info->image_count = (int)wi.image_count;
	info->boot_index = (int)wi.boot_index;
	info->chunk_size = wi.chunk_size;
	info->compression = ctype_name(wi.compression_type);
	info->part_number = wi.part_number;
	info->total_parts = wi.total_parts;
	info->pipable = wi.pipable;
	info->integrity = wi.has_integrity_table;
	info->file_size = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
	wimlib_iterate_lookup_table(wim, 0, note_solid, &scan);
	info->images = calloc(wi.image_count + 1, sizeof(*info->images));
	if (!info->images) {
		wimlib_free(wim);
		return -ENOMEM;
	}
	for (int i = 1; i <= (int)wi.image_count; i++) {
		struct wtg_wim_image_info *im = &info->images[i - 1];
		const char *name = wimlib_get_image_name(wim, i);
		const char *desc = wimlib_get_image_description(wim, i);
		im->index = i;
		im->name = strdup(name ? name : "");
		im->description = desc ? strdup(desc) : NULL;
		im->files = image_number(wim, i, "FILECOUNT");
		im->directories = image_number(wim, i, "DIRCOUNT");
		im->total_bytes = image_number(wim, i, "TOTALBYTES");
		im->compression = scan.solid ? "LZMS" : info->compression;
		im->solid = scan.solid;
	}
	wimlib_free(wim);
	return 0;
}

void wtg_wim_info_release(struct wtg_wim_info *info)
{
	for (int i = 0; info->images && i < info->image_count; i++) {
		free(info->images[i].name);
		free(info->images[i].description);
	}
	free(info->images);
	info->images = NULL;
}

/* ---- blobs and resources ---- */

static struct wim_resource *get_resource(struct wim_source *ws,
					 const struct wimlib_resource_entry *re)
{
	uint64_t off = re->packed ? re->raw_resource_offset_in_wim : re->offset;
	size_t b = (size_t)(off * 0x9E3779B97F4A7C15ull >> 40) & (ws->nres_buckets - 1);
	struct resource_node *n;

	for (n = ws->resources[b]; n; n = n->next)
		if (n->res.offset == off)
			return &n->res;
	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	wim_resource_init(&n->res);
	n->res.offset = off;
	if (re->packed) {
		n->res.solid = true;
		n->res.stored_size = re->raw_resource_compressed_size;
		n->res.size = re->raw_resource_uncompressed_size;
	} else {
		n->res.compressed = re->is_compressed;
		n->res.stored_size = re->compressed_size;
		n->res.size = re->uncompressed_size;
	}
	n->res.ctype = ws->ctype;
	n->res.chunk_size = ws->chunk_size;
	n->next = ws->resources[b];
	ws->resources[b] = n;
	return &n->res;
}

static struct wtg_blob *get_blob(struct wim_source *ws, const struct wimlib_resource_entry *re,
				 const char *path)
{
	size_t b;
	struct wtg_blob *blob;

	memcpy(&b, re->sha1_hash, sizeof(b));
	b &= ws->nblob_buckets - 1;
	for (blob = ws->blobs[b]; blob; blob = blob->next)
		if (!memcmp(blob->sha1, re->sha1_hash, WTG_SHA1_LEN))
			return blob;
	blob = calloc(1, sizeof(*blob));
	if (!blob || !(blob->first_path = strdup(path))) {
		free(blob);
		return NULL;
	}
	memcpy(blob->sha1, re->sha1_hash, WTG_SHA1_LEN);
	blob->size = re->uncompressed_size;
	blob->missing = re->is_missing;
	if (!blob->missing) {
		blob->res = get_resource(ws, re);
		if (!blob->res) {
			free(blob->first_path);
			free(blob);
			return NULL;
		}
		blob->offset = re->packed ? re->offset : 0;
		if (blob->offset > blob->res->size || blob->size > blob->res->size - blob->offset ||
		    blob->res->offset > ws->file.size ||
		    blob->res->stored_size > ws->file.size - blob->res->offset)
			blob->missing = true;
	}
	pthread_mutex_init(&blob->lock, NULL);
	blob->next = ws->blobs[b];
	ws->blobs[b] = blob;
	return blob;
}

static void blob_mark_bad(struct wtg_blob *blob, const char *why)
{
	pthread_mutex_lock(&blob->lock);
	if (blob->state != BLOB_BAD) {
		blob->state = BLOB_BAD;
		if (why)
			wtg_error("'%s': %s", blob->first_path, why);
		wtg_sha1_free(blob->ctx);
		blob->ctx = NULL;
	}
	pthread_mutex_unlock(&blob->lock);
}

static int read_blob(struct wim_source *ws, struct wtg_blob *blob, void *buf, size_t size,
		     uint64_t off)
{
	int ret;

	if (blob->missing) {
		blob_mark_bad(blob,
			      "data not found in the WIM (missing resource or truncated file)");
		return -EIO;
	}
	if (blob->state == BLOB_BAD)
		return -EIO;
	ret = wim_resource_read(&ws->file, blob->res, buf, size, blob->offset + off,
				blob->first_path);
	if (ret == -EIO)
		blob_mark_bad(blob, NULL);
	return ret;
}

/* Feeds the bytes of [off, off + size) that extend the hashed prefix; once
 * the whole blob is hashed, compares with its SHA-1.  Returns -EIO when the
 * data does not match. */
static int check_blob(struct wim_source *ws, struct wtg_blob *blob, const uint8_t *buf, size_t size,
		      uint64_t off)
{
	int ret = 0;

	pthread_mutex_lock(&blob->lock);
	if (blob->state != BLOB_UNCHECKED)
		goto out;
	if (off > blob->hashed_to && off - blob->hashed_to <= HASH_GAP_MAX) {
		uint8_t gap[65536];
		while (blob->hashed_to < off) {
			size_t n = off - blob->hashed_to < sizeof(gap) ? off - blob->hashed_to
								       : sizeof(gap);
			if (wim_resource_read(&ws->file, blob->res, gap, n,
					      blob->offset + blob->hashed_to, blob->first_path) < 0)
				goto out;
			if (!blob->ctx && !(blob->ctx = wtg_sha1_new()))
				goto out;
			wtg_sha1_update(blob->ctx, gap, n);
			blob->hashed_to += n;
		}
	}
	if (off <= blob->hashed_to && off + size > blob->hashed_to) {
		if (!blob->ctx && !(blob->ctx = wtg_sha1_new()))
			goto out;
		wtg_sha1_update(blob->ctx, buf + (blob->hashed_to - off),
				(size_t)(off + size - blob->hashed_to));
		blob->hashed_to = off + size;
	}
	if (blob->hashed_to == blob->size) {
		uint8_t got[WTG_SHA1_LEN];
		wtg_sha1_final(blob->ctx, got);
		blob->ctx = NULL;
		if (memcmp(got, blob->sha1, WTG_SHA1_LEN)) {
			char want_hex[41], got_hex[41];
			wtg_hex(blob->sha1, WTG_SHA1_LEN, want_hex);
			wtg_hex(got, WTG_SHA1_LEN, got_hex);
			wtg_error("'%s': data does not match its SHA-1 (%s, read %s): the WIM is "
				  "corrupt",
				  blob->first_path, want_hex, got_hex);
			blob->state = BLOB_BAD;
			ret = -EIO;
		} else {
			blob->state = BLOB_GOOD;
		}
	}
out:
	pthread_mutex_unlock(&blob->lock);
	return ret;
}

/* Decode workers start with the first read, not at open: a mount opens the
 * image before it daemonises, and threads do not survive fork(). */
static void start_workers(struct wim_source *ws)
{
	pthread_mutex_lock(&ws->pool_lock);
	if (!ws->pool_started) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		ws->file.pool = wtg_workpool_new(cpus > 1 ? (unsigned)(cpus - 1) : 1);
		__atomic_store_n(&ws->pool_started, true, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&ws->pool_lock);
}

static int wim_read(struct wtg_source *src, struct wtg_blob *blob, void *buf, size_t size,
		    uint64_t off)
{
	struct wim_source *ws = (struct wim_source *)src;

	if (!__atomic_load_n(&ws->pool_started, __ATOMIC_ACQUIRE))
		start_workers(ws);
	int ret = read_blob(ws, blob, buf, size, off);

	if (ret < 0)
		return ret;
	if (blob->state == BLOB_UNCHECKED)
		ret = check_blob(ws, blob, buf, size, off);
	return ret;
}

/* ---- loading the tree ---- */

/* A path as messages show it: from the image root, without the leading '/'. */
static const char *image_path(const struct wimlib_dir_entry *de)
{
	return de->full_path + (de->full_path[0] == '/');
}

static int64_t wim_time(const struct wimlib_timespec *ts, int32_t high)
{
	int64_t sec = (int64_t)((uint64_t)(uint32_t)high << 32 | (uint32_t)ts->tv_sec);

	if (sizeof(ts->tv_sec) >= 8)
		sec = (int64_t)ts->tv_sec;
	return ntfs_time_from_unix(sec, (uint32_t)ts->tv_nsec);
}

static struct link_group **group_slot(struct wim_source *ws, uint64_t id)
{
	size_t b = (size_t)(id * 0x9E3779B97F4A7C15ull >> 32) & (ws->ngroup_buckets - 1);
	struct link_group **p = &ws->groups[b];

	while (*p && (*p)->id != id)
		p = &(*p)->next;
	return p;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* Reparse data is read when first used (readlink, the xattr): reading it
 * at mount would decode a 64 MiB solid chunk before the mount is up. */
static int defer_reparse(struct wim_source *ws, struct wtg_inode *inode,
			 const struct wimlib_dir_entry *de)
{
	const struct wimlib_resource_entry *re = &de->streams[0].resource;
	uint64_t size = re->uncompressed_size;
	size_t guid = (de->reparse_tag & 0x80000000u) ? 0 : 16;

	inode->reparse_tag = de->reparse_tag;
	if (size > MAX_REPARSE_DATA || size < guid) {
		wtg_warning("'%s': reparse data of %" PRIu64 " bytes ignored", image_path(de),
			    size);
		return 0;
	}
	if (size == 0) {
		inode->reparse = calloc(1, 8);
		if (!inode->reparse)
			return -ENOMEM;
		uint32_t tag = htole32(de->reparse_tag);
		memcpy(inode->reparse, &tag, 4);
		inode->reparse_len = 8;
		return 0;
	}
	inode->reparse_blob = get_blob(ws, re, image_path(de));
	if (!inode->reparse_blob)
		return -ENOMEM;
	inode->reparse_blob_len = (uint32_t)size;
	return 0;
}

/* Rebuilds the full reparse buffer: WIMs store it without its 8-byte
 * header; for non-Microsoft tags the data starts with a GUID that the
 * header's length does not count. */
static int wim_load_reparse(struct wtg_source *src, struct wtg_inode *inode)
{
	struct wim_source *ws = (struct wim_source *)src;
	struct wtg_blob *blob = inode->reparse_blob;
	size_t size = inode->reparse_blob_len;
	size_t guid = (inode->reparse_tag & 0x80000000u) ? 0 : 16;
	uint8_t *buf = calloc(1, 8 + size);

	if (!buf)
		return -ENOMEM;
	uint32_t tag = htole32(inode->reparse_tag);
	uint16_t len = htole16((uint16_t)(size - guid));
	memcpy(buf, &tag, 4);
	memcpy(buf + 4, &len, 2);
	if (read_blob(ws, blob, buf + 8, size, 0) < 0 ||
	    check_blob(ws, blob, buf + 8, size, 0) < 0) {
		wtg_warning("'%s': unreadable reparse data ignored", blob->first_path);
		free(buf);
		return -EIO;
	}
	inode->reparse_len = 8 + (uint32_t)size;
	__atomic_store_n(&inode->reparse, buf, __ATOMIC_RELEASE);
	return 0;
}

static int fill_inode(struct wim_source *ws, struct wtg_inode *inode,
		      const struct wimlib_dir_entry *de)
{
	int ret;

	inode->attributes = de->attributes;
	inode->crtime = wim_time(&de->creation_time, de->creation_time_high);
	inode->mtime = wim_time(&de->last_write_time, de->last_write_time_high);
	inode->atime = wim_time(&de->last_access_time, de->last_access_time_high);
	inode->ctime = inode->mtime; /* WIMs keep no change time */
	if (de->security_descriptor) {
		inode->sd = wtg_tree_intern_sd(ws->tree, de->security_descriptor,
					       de->security_descriptor_size);
		if (inode->sd == WTG_NO_SD)
			return -ENOMEM;
	}
	/* The whole 64-byte $OBJECT_ID value (birth volume, birth object and
	 * domain ids zero when absent), as NTFS and ntfs-3g hold it. */
	const struct wimlib_object_id *oid = &de->object_id;
	if (!all_zero(oid->object_id, sizeof(oid->object_id))) {
		inode->object_id = malloc(sizeof(*oid));
		if (!inode->object_id)
			return -ENOMEM;
		memcpy(inode->object_id, oid, sizeof(*oid));
		inode->object_id_len = sizeof(*oid);
	}
	for (uint32_t i = 0; i <= de->num_named_streams; i++) {
		const struct wimlib_stream_entry *s = &de->streams[i];
		if (i == 0 && (de->attributes & WIMLIB_FILE_ATTRIBUTE_REPARSE_POINT)) {
			ret = defer_reparse(ws, inode, de);
			if (ret < 0)
				return ret;
			continue;
		}
		if (i == 0 && inode->dir)
			continue;
		struct wtg_blob *blob = NULL;
		if (s->resource.uncompressed_size) {
			blob = get_blob(ws, &s->resource, image_path(de));
			if (!blob)
				return -ENOMEM;
		}
		if (i > 0 && (!s->stream_name || !*s->stream_name))
			continue;
		if (!wtg_inode_add_stream(inode, i ? s->stream_name : NULL,
					  s->resource.uncompressed_size, blob))
			return -ENOMEM;
	}
	if (!wtg_inode_data(inode) && !inode->dir && !(inode->attributes & NTFS_ATTR_REPARSE_POINT))
		if (!wtg_inode_add_stream(inode, NULL, 0, NULL))
			return -ENOMEM;
	return 0;
}

static int add_dentry(const struct wimlib_dir_entry *de, void *arg)
{
	struct wim_source *ws = arg;
	bool is_dir = de->attributes & WIMLIB_FILE_ATTRIBUTE_DIRECTORY;
	struct wtg_inode *inode = NULL, *parent;
	struct link_group **slot = NULL;
	size_t depth = de->depth;
	int ret;

	if (depth >= ws->dirstack_cap) {
		size_t cap = ws->dirstack_cap * 2 + 64;
		struct wtg_inode **v = realloc(ws->dirstack, cap * sizeof(*v));
		if (!v)
			return ws->load_err = -ENOMEM, 1;
		ws->dirstack = v;
		ws->dirstack_cap = cap;
	}
	if (depth == 0) {
		inode = wtg_tree_new_inode(ws->tree, true);
		if (!inode || (ret = fill_inode(ws, inode, de)) < 0)
			return ws->load_err = -ENOMEM, 1;
		inode->parent = inode;
		ws->dirstack[0] = inode;
		return 0;
	}
	parent = ws->dirstack[depth - 1];
	ws->dirstack[depth] = NULL;
	if (!parent)
		return 0; /* inside a directory we could not show */

	const char *name = de->filename ? de->filename : "";
	if (!wtg_name_posix_ok(name, strlen(name))) {
		wtg_warning("'%s': name cannot appear on Linux (contains '/' or is '.' or '..'); "
			    "not shown",
			    image_path(de));
		ws->skipped++;
		return 0;
	}

	/* Directories are never merged by link group: that is what keeps the
	 * tree a tree whatever the image claims. */
	if (!is_dir && de->num_links > 1 && de->hard_link_group_id) {
		slot = group_slot(ws, de->hard_link_group_id);
		if (*slot)
			inode = (*slot)->inode;
	}
	bool fresh = !inode;
	if (fresh) {
		inode = wtg_tree_new_inode(ws->tree, is_dir);
		if (!inode || fill_inode(ws, inode, de) < 0)
			return ws->load_err = -ENOMEM, 1;
		if (slot) {
			struct link_group *g = calloc(1, sizeof(*g));
			if (!g)
				return ws->load_err = -ENOMEM, 1;
			g->id = de->hard_link_group_id;
			g->inode = inode;
			*slot = g;
		}
	}
	ret = wtg_tree_link(ws->tree, parent, name, strlen(name), inode);
	if (ret == -EEXIST) {
		wtg_warning("'%s': a second file of the same name in one directory; not shown",
			    image_path(de));
		ws->skipped++;
		return 0;
	} else if (ret < 0) {
		return ws->load_err = ret, 1;
	}
	/* wimlib keeps a short name on the dentry of the long name it
	 * shortens: of a link group's names, only that one carries it */
	if (de->dos_name && *de->dos_name) {
		struct wtg_dentry *d = wtg_tree_lookup(ws->tree, parent, name, strlen(name));
		if (d && wtg_dentry_set_dos_name(d, de->dos_name) < 0)
			return ws->load_err = -ENOMEM, 1;
	}
	if (is_dir)
		ws->dirstack[depth] = inode;
	if (fresh && inode->streams && !inode->dir && inode->streams[0].name == NULL)
		ws->tree->data_bytes += inode->streams[0].size;
	return 0;
}

static int wim_load(struct wtg_source *src, struct wtg_tree *tree)
{
	struct wim_source *ws = (struct wim_source *)src;
	int code;

	ws->tree = tree;
	ws->ngroup_buckets = 4096;
	ws->groups = calloc(ws->ngroup_buckets, sizeof(*ws->groups));
	if (!ws->groups)
		return -ENOMEM;
	code = wimlib_iterate_dir_tree(ws->wim, ws->image, "",
				       WIMLIB_ITERATE_DIR_TREE_FLAG_RECURSIVE, add_dentry, ws);
	for (size_t i = 0; i < ws->ngroup_buckets; i++) {
		struct link_group *g = ws->groups[i], *next;
		for (; g; g = next) {
			next = g->next;
			free(g);
		}
	}
	free(ws->groups);
	ws->groups = NULL;
	free(ws->dirstack);
	ws->dirstack = NULL;
	wimlib_free(ws->wim);
	ws->wim = NULL;
	if (ws->load_err)
		return ws->load_err;
	if (code)
		return wimlib_failure(ws->base.path, "read the image in", code);
	if (!wtg_tree_inode(tree, WTG_ROOT_INO)) {
		wtg_error("'%s': image %d has no root directory", ws->base.path, ws->image);
		return -EIO;
	}
	if (ws->skipped)
		wtg_warning("'%s': %" PRIu64 " names could not be shown", ws->base.path,
			    ws->skipped);
	return 0;
}

static void wim_free(struct wtg_source *src)
{
	struct wim_source *ws = (struct wim_source *)src;

	/* workers may hold chunks and resources: stop them first */
	wtg_workpool_free(ws->file.pool);
	if (ws->wim)
		wimlib_free(ws->wim);
	for (size_t i = 0; ws->blobs && i < ws->nblob_buckets; i++) {
		struct wtg_blob *b = ws->blobs[i], *next;
		for (; b; b = next) {
			next = b->next;
			wtg_sha1_free(b->ctx);
			pthread_mutex_destroy(&b->lock);
			free(b->first_path);
			free(b);
		}
	}
	free(ws->blobs);
	for (size_t i = 0; ws->resources && i < ws->nres_buckets; i++) {
		struct resource_node *r = ws->resources[i], *next;
		for (; r; r = next) {
			next = r->next;
			wim_resource_release(&r->res);
			free(r);
		}
	}
	free(ws->resources);
	wtg_chunk_cache_free(ws->file.cache);
	if (ws->file.fd >= 0)
		close(ws->file.fd);
	pthread_mutex_destroy(&ws->pool_lock);
	free(ws->base.path);
	free(ws);
}
/* Sums the decoded sizes of the solid resources (each once: every blob of
 * one names the same resource). */
struct solid_sizes {
	uint64_t *offsets;
	size_t count, cap;
	uint64_t bytes;
};

static int sum_solid(const struct wimlib_resource_entry *re, void *arg)
{
	struct solid_sizes *s = arg;

	if (!re->packed)
		return 0;
	for (size_t i = s->count; i-- > 0;) /* blobs of a resource come together */
		if (s->offsets[i] == re->raw_resource_offset_in_wim)
			return 0;
	if (s->count == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16;
		uint64_t *p = realloc(s->offsets, cap * sizeof(*p));
		if (!p)
			return WIMLIB_ERR_NOMEM;
		s->offsets = p;
		s->cap = cap;
	}
	s->offsets[s->count++] = re->raw_resource_offset_in_wim;
	s->bytes += re->raw_resource_uncompressed_size;
	return 0;
}

/* The chunk cache: -o cache= as given, else sized to the image's solid data
 * and the machine's memory, and following memory while mounted. */
static int open_cache(struct wim_source *ws, const struct wtg_source_options *opt)
{
	struct solid_sizes solid = {0};
	struct wtg_memory mem = {0};

	if (opt && opt->cache_bytes) {
		ws->file.cache = wtg_chunk_cache_new(opt->cache_bytes);
		return ws->file.cache ? 0 : -ENOMEM;
	}
	int ret = wimlib_iterate_lookup_table(ws->wim, 0, sum_solid, &solid);
	free(solid.offsets);
	if (ret)
		return -ENOMEM;
	wtg_memory_read(&mem);
	size_t limit =
	    wtg_chunk_cache_pick_limit(solid.bytes + CACHE_EXTRA_BYTES, CACHE_FLOOR_BYTES, &mem);
	ws->file.cache = wtg_chunk_cache_new(limit);
	if (!ws->file.cache)
		return -ENOMEM;
	wtg_chunk_cache_follow_memory(ws->file.cache, CACHE_FLOOR_BYTES, NULL);
	wtg_debug("'%s': chunk cache of %zu MiB (%" PRIu64 " MiB of solid data)", ws->base.path,
		  limit >> 20, solid.bytes >> 20);
	return 0;
}

/* ---- blobs by key (a source that never loads its tree) ---- */

/* A blob's key is its SHA-1: the lookup table finds it again. */
static int wim_blob_key(struct wtg_source *src, const struct wtg_blob *blob, uint8_t *key)
{
	memcpy(key, blob->sha1, WTG_SHA1_LEN);
	return WTG_SHA1_LEN;
}

struct blob_search {
	struct wim_source *ws;
	const uint8_t *sha1;
	const char *path;
	struct wtg_blob *blob;
};

static int find_sha1(const struct wimlib_resource_entry *re, void *arg)
{
	struct blob_search *bs = arg;

	if (re->is_metadata || memcmp(re->sha1_hash, bs->sha1, WTG_SHA1_LEN))
		return 0;
	bs->blob = get_blob(bs->ws, re, bs->path);
	return bs->blob ? 1 : WIMLIB_ERR_NOMEM;
}

static int wim_find_blob(struct wtg_source *src, const uint8_t *key, size_t len, const char *path,
			 struct wtg_blob **blob_ret)
{
	struct wim_source *ws = (struct wim_source *)src;
	struct blob_search bs = {.ws = ws, .sha1 = key, .path = path};
	size_t b;

	if (len != WTG_SHA1_LEN)
		return -EINVAL;
	memcpy(&b, key, sizeof(b));
	b &= ws->nblob_buckets - 1;
	for (struct wtg_blob *blob = ws->blobs[b]; blob; blob = blob->next)
		if (!memcmp(blob->sha1, key, WTG_SHA1_LEN)) {
			*blob_ret = blob;
			return 0;
		}
	int code = ws->wim ? wimlib_iterate_lookup_table(ws->wim, 0, find_sha1, &bs) : 0;
	if (code == WIMLIB_ERR_NOMEM)
		return -ENOMEM;
	if (!bs.blob) {
		wtg_error("'%s': the data of '%s' is not in the WIM", ws->base.path, path);
		return -ENOENT;
	}
	*blob_ret = bs.blob;
	return 0;
}

static const struct wtg_source_ops wim_source_ops = {
    .name = "wim",
    .load = wim_load,
    .read = wim_read,
    .load_reparse = wim_load_reparse,
    .blob_key = wim_blob_key,
    .find_blob = wim_find_blob,
    .free = wim_free,
};

int wtg_wim_source_open(const char *path, const char *image_sel,
			const struct wtg_source_options *opt, struct wtg_source **src_ret)
{
	struct wimlib_wim_info info;
	struct wim_source *ws = calloc(1, sizeof(*ws));
	struct stat st;
	int ret;

	if (!ws)
		return -ENOMEM;
	ws->base.ops = &wim_source_ops;
	ws->file.fd = -1;
	pthread_mutex_init(&ws->pool_lock, NULL);
	ws->base.path = strdup(path);
	if (!ws->base.path) {
		ret = -ENOMEM;
		goto fail;
	}
	ws->file.path = ws->base.path;
	ret = open_wim(path, &ws->wim, &info);
	if (ret < 0)
		goto fail;
	ret = check_random_access(ws->wim, path, &info);
	if (ret < 0)
		goto fail;
	ret = resolve_image(path, ws->wim, &info, image_sel);
	if (ret < 0)
		goto fail;
	ws->image = ret;
	ret = set_identity(ws, &info);
	if (ret < 0)
		goto fail;
	ws->ctype = info.compression_type;
	ws->chunk_size = info.chunk_size;

	ws->file.fd = open(path, O_RDONLY | O_CLOEXEC);
	if (ws->file.fd < 0 || fstat(ws->file.fd, &st) < 0) {
		ret = -errno;
		wtg_error("cannot open '%s': %s", path, strerror(errno));
		goto fail;
	}
	ws->file.size = (uint64_t)st.st_size;
	ret = open_cache(ws, opt);
	if (ret < 0)
		goto fail;
	ws->nblob_buckets = 1 << 16;
	ws->blobs = calloc(ws->nblob_buckets, sizeof(*ws->blobs));
	ws->nres_buckets = 1 << 12;
	ws->resources = calloc(ws->nres_buckets, sizeof(*ws->resources));
	if (!ws->blobs || !ws->resources) {
		ret = -ENOMEM;
		goto fail;
	}
	*src_ret = &ws->base;
	return 0;
fail:
	wim_free(&ws->base);
	return ret;
}
