/*
 * VHD and VHDX disks (fixed, dynamic, differencing) through libvhdi, the
 * only file that includes libvhdi.h.
 *
 * libvhdi reads one handle at a time, so each disk has one mutex, taken by
 * the disk the caller holds: a parent is reached only through its child's
 * handle, under the child's lock.  libvhdi does not replay the VHDX log, so
 * before it sees a VHDX we read the two headers ourselves and refuse one
 * whose log still holds writes.  A differencing disk's parent is the file
 * named on the command line, or the one of the name the child records in
 * the child's own folder (never the path it records: that may name any host
 * file), checked to look like a VHD or VHDX before libvhdi reads it, and
 * bound only if its identifier is the one the child was made from.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <libgen.h>
#include <libvhdi.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wtgfs/block.h"
#include "wtgfs/log.h"

#define VHDX_HEADER_SIZE 4096
#define VHDX_HEADER1_OFFSET (64u << 10)
#define VHDX_HEADER2_OFFSET (128u << 10)
#define VHD_FOOTER_SIZE 512
#define GUID_LEN 16

struct vhdx_header_disk {
	char signature[4];	     /* 0x000 "head" */
	uint32_t checksum;	     /* 0x004 le32 CRC-32C, this field zero */
	uint64_t sequence_number;    /* 0x008 le64 */
	uint8_t file_write_guid[16]; /* 0x010 */
	uint8_t data_write_guid[16]; /* 0x020 */
	uint8_t log_guid[16];	     /* 0x030: non-zero while the log is live */
	uint16_t log_version;	     /* 0x040 le16 */
	uint16_t version;	     /* 0x042 le16: 1 */
	uint32_t log_length;	     /* 0x044 le32 */
	uint64_t log_offset;	     /* 0x048 le64 */
	uint8_t reserved[4016];	     /* 0x050 */
} __attribute__((packed));
_Static_assert(sizeof(struct vhdx_header_disk) == VHDX_HEADER_SIZE, "VHDX header is 4 KiB");

struct vhd_dev {
	struct wtg_block_dev base;
	libvhdi_file_t *file;
	struct vhd_dev *parent; /* read through @file, under our lock */
	uint8_t id[GUID_LEN];	/* what a child records as its parent's */
	pthread_mutex_t lock;
	atomic_bool eio_logged;
};

/* Where a chain of differencing disks has been, to refuse loops. */
struct chain {
	struct {
		dev_t dev;
		ino_t ino;
	} seen[WTG_BLOCK_MAX_DEPTH + 1];
	unsigned depth;
};

static const struct wtg_block_ops vhd_ops, vhdx_ops;

static uint32_t crc32c_table[256];

static void crc32c_make_table(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc32c_table[i] = c;
	}
}

/* CRC-32C (Castagnoli, reflected), as VHDX checksums its structures. */
static uint32_t crc32c(const void *data, size_t size)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	const uint8_t *p = data;
	uint32_t crc = 0xFFFFFFFFu;

	pthread_once(&once, crc32c_make_table);
	while (size--)
		crc = crc32c_table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
	return ~crc;
}

static bool guid_is_zero(const uint8_t *g)
{
	for (int i = 0; i < GUID_LEN; i++)
		if (g[i])
			return false;
	return true;
}

/* A GUID as libvhdi gives it (big-endian fields) in the usual text form. */
static void guid_format(char *out, size_t outsz, const uint8_t *g)
{
	snprintf(out, outsz, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10], g[11], g[12],
		 g[13], g[14], g[15]);
}

/*
 * libvhdi's error as one line: the root cause (the first line of its
 * backtrace) without the function name and the final full stop.  When that
 * cause is a read past the end of @path, it says the file is truncated.
 */
static void vhdi_message(libvhdi_error_t **err, const char *path, char *out, size_t outsz)
{
	char raw[4096] = "";
	const char *at;
	struct stat st;

	if (err && *err) {
		libvhdi_error_backtrace_sprint(*err, raw, sizeof(raw));
		libvhdi_error_free(err);
	}
	raw[strcspn(raw, "\r\n")] = '\0';
	char *s = raw, *colon = strstr(raw, ": ");
	if (colon && !memchr(raw, ' ', (size_t)(colon - raw)))
		s = colon + 2;
	size_t n = strlen(s);
	while (n && (s[n - 1] == '.' || s[n - 1] == ' '))
		s[--n] = '\0';
	at = strstr(s, "at offset: ");
	if (at && path && stat(path, &st) == 0) {
		unsigned long long need = strtoull(at + 11, NULL, 10);
		if (need >= (unsigned long long)st.st_size) {
			snprintf(out, outsz,
				 "the file is truncated (data at byte %llu, the file has %llu)",
				 need, (unsigned long long)st.st_size);
			return;
		}
	}
	snprintf(out, outsz, "%s", n ? s : "unknown libvhdi error");
}

/*
 * Reads both VHDX headers and refuses the file unless one is valid and the
 * current one (the valid one with the higher sequence number) has no live
 * log.  @fd is open on @path.  Gives that header's DataWriteGuid in the
 * byte order libvhdi uses for identifiers (big-endian fields): libvhdi takes
 * the header with the higher sequence number even when it is damaged.
 */
static int vhdx_check_headers(const char *path, int fd, uint8_t data_write_guid[GUID_LEN])
{
	struct vhdx_header_disk *h = malloc(2 * sizeof(*h)), *cur = NULL;
	static const uint64_t offs[2] = {VHDX_HEADER1_OFFSET, VHDX_HEADER2_OFFSET};
	bool short_read = false;
	int ret = 0;

	if (!h)
		return -ENOMEM;
	for (int i = 0; i < 2; i++) {
		ssize_t n = pread(fd, &h[i], sizeof(h[i]), (off_t)offs[i]);
		if (n < 0) {
			ret = -errno;
			wtg_error("cannot read '%s': %s", path, strerror(errno));
			goto out;
		}
		if ((size_t)n < sizeof(h[i])) {
			short_read = true;
			continue;
		}
		uint32_t sum = le32toh(h[i].checksum);
		h[i].checksum = 0;
		if (memcmp(h[i].signature, "head", 4) || crc32c(&h[i], sizeof(h[i])) != sum ||
		    le16toh(h[i].version) != 1)
			continue;
		if (!cur || le64toh(h[i].sequence_number) > le64toh(cur->sequence_number))
			cur = &h[i];
	}
	if (!cur) {
		ret = -EINVAL;
		if (short_read)
			wtg_error("cannot open '%s': truncated VHDX file (its headers are missing)",
				  path);
		else
			wtg_error("cannot open '%s': neither VHDX header is valid (the file is "
				  "damaged)",
				  path);
		goto out;
	}
	/* GUIDs on disk have little-endian first three fields */
	static const int order[GUID_LEN] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
	for (int i = 0; i < GUID_LEN; i++)
		data_write_guid[i] = cur->data_write_guid[order[i]];
	if (!guid_is_zero(cur->log_guid)) {
		ret = -EINVAL;
		wtg_error("'%s': its log holds unreplayed writes (open it once in Windows or "
			  "Hyper-V, or run 'qemu-img check -r all')",
			  path);
	}
out:
	free(h);
	return ret;
}

static int vhdi_fail(const char *path, const char *what, libvhdi_error_t **err, int code)
{
	char msg[512];

	vhdi_message(err, path, msg, sizeof(msg));
	wtg_error("%s '%s': %s", what, path, msg);
	return code;
}

static void vhd_release(struct vhd_dev *vd)
{
	if (vd->file) {
		libvhdi_file_close(vd->file, NULL);
		libvhdi_file_free(&vd->file, NULL);
	}
	if (vd->parent)
		vhd_release(vd->parent);
	pthread_mutex_destroy(&vd->lock);
	free(vd->base.path);
	free(vd);
}

static void vhd_free(struct wtg_block_dev *dev)
{
	vhd_release((struct vhd_dev *)dev);
}

static int vhd_pread(struct wtg_block_dev *dev, void *buf, size_t size, uint64_t off)
{
	struct vhd_dev *vd = (struct vhd_dev *)dev;
	libvhdi_error_t *err = NULL;
	size_t done = 0;
	int ret = 0;

	if (off > dev->size || size > dev->size - off)
		return -EINVAL;
	pthread_mutex_lock(&vd->lock);
	while (done < size) {
		ssize_t n = libvhdi_file_read_buffer_at_offset(
		    vd->file, (char *)buf + done, size - done, (off64_t)(off + done), &err);
		if (n <= 0) {
			char msg[512];
			vhdi_message(&err, dev->path, msg, sizeof(msg));
			if (n == 0)
				snprintf(msg, sizeof(msg), "no data (the file is truncated)");
			if (!atomic_exchange(&vd->eio_logged, true))
				wtg_error("cannot read '%s' at %llu: %s", dev->path,
					  (unsigned long long)(off + done), msg);
			ret = -EIO;
			break;
		}
		done += (size_t)n;
	}
	pthread_mutex_unlock(&vd->lock);
	return ret;
}

static int vhd_open_chain(const char *path, const char *parent, struct chain *chain,
			  struct vhd_dev **vd_ret);

/* A parent candidate as far as we look before libvhdi reads it: a regular
 * file that starts like a VHDX or ends like a VHD.  Silent: whatever is
 * wrong, the caller says one thing, so an image cannot learn through us
 * whether a path exists. */
static bool looks_like_vhd(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return false;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return false;
	bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
		  strcmp(wtg_block_probe(fd, (uint64_t)st.st_size), "raw") != 0;
	close(fd);
	return ok;
}

/* The last component of a recorded parent path ('\' or '/' separated),
 * with anything unprintable as '?'; NULL when there is none. */
static char *recorded_name(const char *recorded)
{
	const char *base = recorded;

	for (const char *p = recorded; *p; p++)
		if (*p == '\\' || *p == '/')
			base = p + 1;
	if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
		return NULL;
	char *name = strdup(base);
	for (char *p = name; p && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7F)
			*p = '?';
	return name;
}

/*
 * Opens and attaches the parent of the differencing disk @vd: the file
 * @parent when given (the command line's --parent), else the file of the
 * recorded name in the child's own folder, nowhere else: the path a child
 * records is the image's word, and may name any host file.
 */
static int attach_parent(struct vhd_dev *vd, const char *parent, struct chain *chain)
{
	const char *path = vd->base.path;
	libvhdi_error_t *err = NULL;
	uint8_t want[GUID_LEN];
	char *recorded = NULL, *name = NULL, *cand = NULL;
	char want_s[40], have_s[40];
	size_t len = 0;
	int ret;

	if (chain->depth >= WTG_BLOCK_MAX_DEPTH) {
		wtg_error("cannot open '%s': more than %d differencing disks stand on one another",
			  path, WTG_BLOCK_MAX_DEPTH);
		return -ELOOP;
	}
	if (libvhdi_file_get_parent_identifier(vd->file, want, sizeof(want), &err) != 1)
		return vhdi_fail(path, "cannot open", &err, -EINVAL);
	guid_format(want_s, sizeof(want_s), want);
	if (!parent) {
		if (libvhdi_file_get_utf8_parent_filename_size(vd->file, &len, &err) != 1 ||
		    len < 2 || len > 65536) {
			libvhdi_error_free(&err);
			wtg_error("cannot open '%s': differencing disk without a parent path (name "
				  "its parent with --parent PATH)",
				  path);
			return -EINVAL;
		}
		recorded = malloc(len);
		if (!recorded)
			return -ENOMEM;
		if (libvhdi_file_get_utf8_parent_filename(vd->file, (uint8_t *)recorded, len,
							  &err) != 1) {
			ret = vhdi_fail(path, "cannot open", &err, -EINVAL);
			goto out;
		}
		recorded[len - 1] = '\0';
		char *cdir = strdup(path);
		name = recorded_name(recorded);
		ret = -ENOMEM;
		if (!cdir || (name && asprintf(&cand, "%s/%s", dirname(cdir), name) < 0))
			cand = NULL;
		free(cdir);
		if (name && !cand)
			goto out;
	} else if (!(cand = strdup(parent))) {
		ret = -ENOMEM;
		goto out;
	}
	if (!cand || !looks_like_vhd(cand)) {
		if (parent)
			wtg_error("cannot open '%s': its parent '%s' is not a VHD or VHDX file", path,
				  parent);
		else
			wtg_error("cannot open '%s': its parent '%s' is not a VHD or VHDX file in its "
				  "folder (put the parent there, or name it with --parent PATH)",
				  path, name ? name : "");
		ret = -ENOENT;
		goto out;
	}
	struct vhd_dev *pd;
	ret = vhd_open_chain(cand, NULL, chain, &pd);
	if (ret < 0)
		goto out; /* said why */
	if (memcmp(pd->id, want, GUID_LEN)) {
		guid_format(have_s, sizeof(have_s), pd->id);
		wtg_error("cannot open '%s': '%s' is not its parent (identifier %s, the disk was "
			  "made from %s)",
			  path, cand, have_s, want_s);
		vhd_release(pd);
		ret = -ESTALE;
		goto out;
	}
	if (libvhdi_file_set_parent_file(vd->file, pd->file, &err) != 1) {
		ret = vhdi_fail(path, "cannot attach the parent of", &err, -EINVAL);
		vhd_release(pd);
		goto out;
	}
	vd->parent = pd;
	ret = 0;
out:
	free(cand);
	free(name);
	free(recorded);
	return ret;
}

static uint64_t get_be(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/*
 * libvhdi 20210425 takes a sector of a differencing VHD from the child when
 * any earlier bit of the same sector-bitmap byte is set (it shifts the byte
 * without masking the bit), so a sector whose bit is clear after a set
 * one reads from the wrong file.  Windows writes whole 4 KiB groups, so
 * bitmap bytes are 0x00 or 0xFF in practice; a byte libvhdi would misread
 * is refused rather than read wrongly.  The footer is at the end; the dynamic header (big-endian)
 * has the block table at 0x10, its length at 0x1C and the block size at 0x20.
 */
static int vhd_check_bitmaps(const char *path)
{
	uint8_t footer[VHD_FOOTER_SIZE], dyn[1024], bitmap[4096];
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;

	if (fd < 0 || fstat(fd, &st) < 0) {
		ret = -errno;
		goto out;
	}
	uint64_t fsize = (uint64_t)st.st_size;
	if (pread(fd, footer, sizeof(footer), (off_t)(fsize - sizeof(footer))) !=
	    (ssize_t)sizeof(footer))
		goto bad;
	uint64_t dyn_off = get_be(footer + 0x10, 8);
	if (dyn_off > fsize ||
	    pread(fd, dyn, sizeof(dyn), (off_t)dyn_off) != (ssize_t)sizeof(dyn) ||
	    memcmp(dyn, "cxsparse", 8))
		goto bad;
	uint64_t table = get_be(dyn + 0x10, 8), entries = get_be(dyn + 0x1C, 4);
	uint64_t block = get_be(dyn + 0x20, 4);
	size_t bitmap_len = (size_t)(block / 512 / 8);
	if (block < 4096 || block > (256u << 20) || (block & (block - 1)) || table > fsize ||
	    entries > (fsize - table) / 4 || bitmap_len > sizeof(bitmap))
		goto bad;
	for (uint64_t i = 0; i < entries; i++) {
		uint8_t e[4];
		if (pread(fd, e, 4, (off_t)(table + 4 * i)) != 4)
			goto bad;
		uint64_t sector = get_be(e, 4);
		if (sector == 0xFFFFFFFFu)
			continue;
		if (sector * 512 > fsize - bitmap_len ||
		    pread(fd, bitmap, bitmap_len, (off_t)(sector * 512)) != (ssize_t)bitmap_len)
			goto bad;
		for (size_t b = 0; b < bitmap_len; b++) {
			/* right only when no set bit precedes a clear one:
			 * 0x00, 0x01, 0x03, ..., 0x7F, 0xFF */
			if (bitmap[b] & (uint8_t)(bitmap[b] + 1)) {
				wtg_error(
				    "cannot open '%s': block %" PRIu64 " has sectors written in a "
				    "pattern libvhdi reads wrongly, so it is refused rather than "
				    "misread (merge it into its parent in Windows first)",
				    path, i);
				ret = -EOPNOTSUPP;
				goto out;
			}
		}
	}
	goto out;
bad:
	wtg_error("cannot open '%s': damaged differencing VHD (bad header or block table)", path);
	ret = -EINVAL;
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

static int vhd_open_chain(const char *path, const char *parent, struct chain *chain,
			  struct vhd_dev **vd_ret)
{
	struct vhd_dev *vd;
	libvhdi_error_t *err = NULL;
	char sig[8];
	struct stat st;
	size64_t media_size = 0;
	uint32_t sector_size = 512, disk_type = 0;
	uint8_t vhdx_id[GUID_LEN];
	bool vhdx = false;
	int file_type = 0, fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		ret = -errno;
		wtg_error("cannot open '%s': %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return ret;
	}
	for (unsigned i = 0; i < chain->depth; i++) {
		if (chain->seen[i].dev == st.st_dev && chain->seen[i].ino == st.st_ino) {
			close(fd);
			wtg_error("cannot open '%s': its differencing disks form a loop", path);
			return -ELOOP;
		}
	}
	chain->seen[chain->depth].dev = st.st_dev;
	chain->seen[chain->depth].ino = st.st_ino;
	chain->depth++;
	ret = 0;
	if (pread(fd, sig, sizeof(sig), 0) == (ssize_t)sizeof(sig) && !memcmp(sig, "vhdxfile", 8)) {
		vhdx = true;
		ret = vhdx_check_headers(path, fd, vhdx_id);
	} else if (st.st_size < VHD_FOOTER_SIZE ||
		   pread(fd, sig, sizeof(sig), st.st_size - VHD_FOOTER_SIZE) !=
		       (ssize_t)sizeof(sig) ||
		   memcmp(sig, "conectix", 8)) {
		/* a dynamic VHD's copy of its footer at the start brought us here */
		wtg_error("cannot open '%s': truncated VHD file (its footer is missing)", path);
		ret = -EINVAL;
	}
	close(fd);
	if (ret < 0)
		return ret;

	vd = calloc(1, sizeof(*vd));
	if (!vd)
		return -ENOMEM;
	pthread_mutex_init(&vd->lock, NULL);
	vd->base.path = strdup(path);
	if (!vd->base.path) {
		ret = -ENOMEM;
		goto fail;
	}
	if (libvhdi_file_initialize(&vd->file, &err) != 1) {
		ret = vhdi_fail(path, "cannot open", &err, -ENOMEM);
		goto fail;
	}
	if (libvhdi_file_open(vd->file, path, LIBVHDI_OPEN_READ, &err) != 1) {
		ret = vhdi_fail(path, "cannot open", &err, -EINVAL);
		libvhdi_file_free(&vd->file, NULL);
		goto fail;
	}
	if (libvhdi_file_get_file_type(vd->file, &file_type, &err) != 1 ||
	    libvhdi_file_get_disk_type(vd->file, &disk_type, &err) != 1 ||
	    libvhdi_file_get_media_size(vd->file, &media_size, &err) != 1 ||
	    libvhdi_file_get_bytes_per_sector(vd->file, &sector_size, &err) != 1 ||
	    libvhdi_file_get_identifier(vd->file, vd->id, sizeof(vd->id), &err) != 1) {
		ret = vhdi_fail(path, "cannot open", &err, -EINVAL);
		goto fail;
	}
	if (sector_size != 512 && sector_size != 4096) {
		wtg_error("cannot open '%s': unsupported sector size %u", path, sector_size);
		ret = -EINVAL;
		goto fail;
	}
	vd->base.ops = file_type == LIBVHDI_FILE_TYPE_VHDX ? &vhdx_ops : &vhd_ops;
	vd->base.size = media_size;
	vd->base.sector_size = sector_size;
	if (vhdx)
		memcpy(vd->id, vhdx_id, GUID_LEN);
	guid_format(vd->base.identity, sizeof(vd->base.identity), vd->id);
	if (disk_type == LIBVHDI_DISK_TYPE_DIFFERENTIAL && !vhdx) {
		ret = vhd_check_bitmaps(path);
		if (ret < 0)
			goto fail;
	}
	if (disk_type == LIBVHDI_DISK_TYPE_DIFFERENTIAL) {
		ret = attach_parent(vd, parent, chain);
		if (ret < 0)
			goto fail;
	} else if (parent) {
		wtg_error("cannot open '%s' with the parent '%s': it is not a differencing disk",
			  path, parent);
		ret = -EINVAL;
		goto fail;
	}
	*vd_ret = vd;
	return 0;
fail:
	vhd_release(vd);
	return ret;
}

int wtg_vhd_open(const char *path, const char *parent, struct wtg_block_dev **dev_ret)
{
	struct chain chain = {.depth = 0};
	struct vhd_dev *vd;
	int ret = vhd_open_chain(path, parent, &chain, &vd);

	if (ret == 0)
		*dev_ret = &vd->base;
	return ret;
}

static const struct wtg_block_ops vhd_ops = {
    .name = "vhd",
    .pread = vhd_pread,
    .free = vhd_free,
};

static const struct wtg_block_ops vhdx_ops = {
    .name = "vhdx",
    .pread = vhd_pread,
    .free = vhd_free,
};
