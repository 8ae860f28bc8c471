/*
 * The libntfs-3g device over a byte range: see include/wtgfs/ntfs_device.h.
 * libntfs-3g calls these with its volume lock held by the caller (the
 * source's mutex, the writer's single thread), so the position needs no
 * lock of its own.
 */
#include <errno.h>
#include <stdarg.h> /* before ntfs-3g/logging.h, which needs va_list */
#include <fcntl.h>
#include <stdbool.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <ntfs-3g/types.h>
#include <ntfs-3g/device.h>
#include <ntfs-3g/logging.h>

#include "wtgfs/ntfs_device.h"

static int dev_open(struct ntfs_device *dev, int flags)
{
	struct wtg_ntfs_range *r = dev->d_private;
	bool rdonly = (flags & O_ACCMODE) == O_RDONLY;

	if (!rdonly && !r->write) {
		errno = EROFS;
		return -1;
	}
	NDevSetOpen(dev);
	if (rdonly)
		NDevSetReadOnly(dev);
	return 0;
}

static int dev_close(struct ntfs_device *dev)
{
	NDevClearOpen(dev);
	return 0;
}

static s64 dev_seek(struct ntfs_device *dev, s64 offset, int whence)
{
	struct wtg_ntfs_range *r = dev->d_private;
	int64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? r->pos : (int64_t)r->size;

	if (base + offset < 0) {
		errno = EINVAL;
		return -1;
	}
	r->pos = base + offset;
	return r->pos;
}

/* @count cut to the range's end; -1 (EINVAL) for a negative request. */
static s64 clamp(const struct wtg_ntfs_range *r, s64 count, s64 offset)
{
	if (offset < 0 || count < 0) {
		errno = EINVAL;
		return -1;
	}
	if ((uint64_t)offset >= r->size)
		return 0;
	if ((uint64_t)count > r->size - (uint64_t)offset)
		count = (s64)(r->size - (uint64_t)offset);
	return count;
}

static s64 dev_pread(struct ntfs_device *dev, void *buf, s64 count, s64 offset)
{
	struct wtg_ntfs_range *r = dev->d_private;
	s64 n = clamp(r, count, offset);
	int ret = n > 0 ? r->read(r->ctx, buf, (size_t)n, (uint64_t)offset) : 0;

	if (ret < 0) {
		errno = -ret;
		return -1;
	}
	return n;
}

static s64 dev_pwrite(struct ntfs_device *dev, const void *buf, s64 count, s64 offset)
{
	struct wtg_ntfs_range *r = dev->d_private;

	if (!r->write) {
		errno = EROFS;
		return -1;
	}
	s64 n = clamp(r, count, offset);
	if (n <= 0)
		return n < 0 ? -1 : (count ? (errno = ENOSPC, -1) : 0);
	int ret = r->write(r->ctx, buf, (size_t)n, (uint64_t)offset);
	if (ret < 0) {
		errno = -ret;
		return -1;
	}
	NDevSetDirty(dev);
	return n;
}

static s64 dev_read(struct ntfs_device *dev, void *buf, s64 count)
{
	struct wtg_ntfs_range *r = dev->d_private;
	s64 n = dev_pread(dev, buf, count, r->pos);

	if (n > 0)
		r->pos += n;
	return n;
}

static s64 dev_write(struct ntfs_device *dev, const void *buf, s64 count)
{
	struct wtg_ntfs_range *r = dev->d_private;
	s64 n = dev_pwrite(dev, buf, count, r->pos);

	if (n > 0)
		r->pos += n;
	return n;
}

/* Whoever writes syncs the whole target once, at the end. */
static int dev_sync(struct ntfs_device *dev)
{
	NDevClearDirty(dev);
	return 0;
}

static int dev_stat(struct ntfs_device *dev, struct stat *st)
{
	struct wtg_ntfs_range *r = dev->d_private;

	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFREG | (r->write ? 0644 : 0444);
	st->st_size = (off_t)r->size;
	return 0;
}

static int dev_ioctl(struct ntfs_device *dev, unsigned long request, void *argp)
{
	struct wtg_ntfs_range *r = dev->d_private;

	switch (request) {
	case BLKGETSIZE64:
		*(uint64_t *)argp = r->size;
		return 0;
	case BLKGETSIZE:
		*(unsigned long *)argp = (unsigned long)(r->size / 512);
		return 0;
	case BLKSSZGET:
		*(int *)argp = 512;
		return 0;
	}
	errno = ENOTTY;
	return -1;
}

static struct ntfs_device_operations range_ops = {
    .open = dev_open,
    .close = dev_close,
    .seek = dev_seek,
    .read = dev_read,
    .write = dev_write,
    .pread = dev_pread,
    .pwrite = dev_pwrite,
    .sync = dev_sync,
    .stat = dev_stat,
    .ioctl = dev_ioctl,
};

/* libntfs-3g prints to stderr by default; its findings come back as errno
 * and we say them once, in our words. */
static void quiet_logging(void)
{
	if (getenv("WTGFS_NTFS_DEBUG")) {
		ntfs_log_set_handler(ntfs_log_handler_stderr);
		ntfs_log_set_levels(NTFS_LOG_LEVEL_DEBUG | NTFS_LOG_LEVEL_TRACE |
				    NTFS_LOG_LEVEL_VERBOSE | NTFS_LOG_LEVEL_INFO |
				    NTFS_LOG_LEVEL_PERROR | NTFS_LOG_LEVEL_ERROR);
	} else
		ntfs_log_set_handler(ntfs_log_handler_null);
}

struct ntfs_device *wtg_ntfs_device_new(struct wtg_ntfs_range *r, const char *what)
{
	static pthread_once_t quiet = PTHREAD_ONCE_INIT;

	pthread_once(&quiet, quiet_logging);
	r->pos = 0;
	return ntfs_device_alloc(what, 0, &range_ops, r);
}
