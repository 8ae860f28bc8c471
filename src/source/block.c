/*
 * Virtual disks: picks the format of a disk image by its signatures and
 * serves raw image files and block devices itself, with pread() (which
 * needs no lock).  VHD and VHDX go to vhd.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wtgfs/block.h"
#include "wtgfs/fileio.h"
#include "wtgfs/log.h"

#define VHD_FOOTER_SIZE 512

struct raw_dev {
	struct wtg_block_dev base;
	int fd;
	atomic_bool eio_logged;
};

static const struct wtg_block_ops raw_ops, device_ops;

const char *wtg_block_probe(int fd, uint64_t size)
{
	char sig[8];

	if (pread(fd, sig, sizeof(sig), 0) == (ssize_t)sizeof(sig)) {
		if (!memcmp(sig, "vhdxfile", 8))
			return "vhdx";
		/* a dynamic VHD starts with a copy of its footer */
		if (!memcmp(sig, "conectix", 8))
			return "vhd";
	}
	if (size >= VHD_FOOTER_SIZE &&
	    pread(fd, sig, sizeof(sig), (off_t)(size - VHD_FOOTER_SIZE)) == (ssize_t)sizeof(sig) &&
	    !memcmp(sig, "conectix", 8))
		return "vhd";
	return "raw";
}

static int raw_pread(struct wtg_block_dev *dev, void *buf, size_t size, uint64_t off)
{
	struct raw_dev *rd = (struct raw_dev *)dev;

	if (off > dev->size || size > dev->size - off)
		return -EINVAL;
	int ret = wtg_pread_all(rd->fd, buf, size, off);
	if (ret && !atomic_exchange(&rd->eio_logged, true))
		wtg_error("cannot read '%s' at %llu: %s", dev->path, (unsigned long long)off,
			  ret == -EIO ? "an I/O error, or the file has shrunk since it was opened"
				      : strerror(-ret));
	return ret;
}

static void raw_free(struct wtg_block_dev *dev)
{
	struct raw_dev *rd = (struct raw_dev *)dev;

	if (rd->fd >= 0)
		close(rd->fd);
	free(dev->path);
	free(rd);
}

/* Takes @fd (open on @path, described by @st) as a raw disk. */
static int raw_open(const char *path, int fd, const struct stat *st, struct wtg_block_dev **dev_ret)
{
	struct raw_dev *rd = calloc(1, sizeof(*rd));

	if (!rd)
		return -ENOMEM;
	rd->fd = fd;
	rd->base.path = strdup(path);
	if (!rd->base.path) {
		free(rd);
		return -ENOMEM;
	}
	rd->base.sector_size = 512;
	if (S_ISBLK(st->st_mode)) {
		uint64_t bytes = 0;
		int ssz = 0;
		if (ioctl(fd, BLKGETSIZE64, &bytes) < 0) {
			int ret = -errno;
			wtg_error("cannot open '%s': cannot get its size: %s", path,
				  strerror(errno));
			rd->fd = -1;
			raw_free(&rd->base);
			return ret;
		}
		if (ioctl(fd, BLKSSZGET, &ssz) == 0 && ssz >= 512)
			rd->base.sector_size = (uint32_t)ssz;
		rd->base.ops = &device_ops;
		rd->base.size = bytes;
	} else {
		rd->base.ops = &raw_ops;
		rd->base.size = (uint64_t)st->st_size;
	}
	*dev_ret = &rd->base;
	return 0;
}

int wtg_block_open(const char *path, const char *parent, struct wtg_block_dev **dev_ret)
{
	struct stat st;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		ret = -errno;
		wtg_error("cannot open '%s': %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return ret;
	}
	if (S_ISBLK(st.st_mode) && parent) {
		close(fd);
		wtg_error("cannot open '%s' with the parent '%s': it is not a differencing disk",
			  path, parent);
		return -EINVAL;
	}
	if (S_ISBLK(st.st_mode)) {
		ret = raw_open(path, fd, &st, dev_ret);
		if (ret < 0)
			close(fd);
		return ret;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		wtg_error("cannot open '%s': not a disk image or a block device", path);
		return -EINVAL;
	}
	if (st.st_size == 0) {
		close(fd);
		wtg_error("cannot open '%s': the file is empty", path);
		return -EINVAL;
	}
	if (strcmp(wtg_block_probe(fd, (uint64_t)st.st_size), "raw")) {
		close(fd);
		return wtg_vhd_open(path, parent, dev_ret);
	}
	if (parent) {
		close(fd);
		wtg_error("cannot open '%s' with the parent '%s': it is not a differencing disk",
			  path, parent);
		return -EINVAL;
	}
	ret = raw_open(path, fd, &st, dev_ret);
	if (ret < 0)
		close(fd);
	return ret;
}

void wtg_block_free(struct wtg_block_dev *dev)
{
	if (dev)
		dev->ops->free(dev);
}

static const struct wtg_block_ops raw_ops = {
    .name = "raw",
    .pread = raw_pread,
    .free = raw_free,
};

static const struct wtg_block_ops device_ops = {
    .name = "device",
    .pread = raw_pread,
    .free = raw_free,
};
