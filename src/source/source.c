/*
 * Opening a base image by its spec "IMAGE[:INDEX|:NAME]" and probing which
 * backend reads it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "wtgfs/log.h"
#include "wtgfs/ntfs_source.h"
#include "wtgfs/source.h"

int wtg_source_split_spec(const char *spec, char **path_ret, char **sel_ret)
{
	struct stat st;
	const char *colon = strrchr(spec, ':');

	*sel_ret = NULL;
	if (stat(spec, &st) == 0 || !colon || colon == spec) {
		*path_ret = strdup(spec);
		return *path_ret ? 0 : -ENOMEM;
	}
	*path_ret = strndup(spec, (size_t)(colon - spec));
	*sel_ret = strdup(colon + 1);
	if (!*path_ret || !*sel_ret) {
		free(*path_ret);
		free(*sel_ret);
		return -ENOMEM;
	}
	return 0;
}

struct file_range {
	int fd;
};

static int file_read(void *ctx, void *buf, size_t size, uint64_t off)
{
	struct file_range *f = ctx;
	uint8_t *p = buf;

	while (size) {
		ssize_t n = pread(f->fd, p, size, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		size -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static void file_release(void *ctx)
{
	struct file_range *f = ctx;
	close(f->fd);
	free(f);
}

static bool is_wim(const char *path)
{
	char magic[8];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool wim = false;

	if (fd >= 0) {
		wim = pread(fd, magic, sizeof(magic), 0) == (ssize_t)sizeof(magic) &&
		      (!memcmp(magic, "MSWIM\0\0\0", 8) || !memcmp(magic, "WLPWM\0\0\0", 8));
		close(fd);
	}
	return wim;
}

/* A bare NTFS volume in a file or device. */
static int open_volume(const char *path, struct wtg_source **src_ret)
{
	struct file_range *f = malloc(sizeof(*f));
	struct stat st;

	if (!f)
		return -ENOMEM;
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0 || fstat(f->fd, &st) < 0) {
		int err = errno;
		wtg_error("cannot open '%s': %s", path, strerror(err));
		if (f->fd >= 0)
			close(f->fd);
		free(f);
		return -err;
	}
	if (!wtg_ntfs_probe(file_read, f)) {
		wtg_error("cannot open '%s': not a WIM file or an NTFS volume", path);
		file_release(f);
		return -EINVAL;
	}
	return wtg_ntfs_source_open(file_read, f, file_release, (uint64_t)st.st_size, path,
				    src_ret);
}

int wtg_source_open(const char *spec, const struct wtg_source_options *opt,
		    struct wtg_source **src_ret)
{
	char *path, *sel;
	int ret = wtg_source_split_spec(spec, &path, &sel);

	if (ret < 0)
		return ret;
	if (is_wim(path) || access(path, F_OK) != 0)
		ret = wtg_wim_source_open(path, sel, opt, src_ret);
	else
		ret = open_volume(path, src_ret);
	free(path);
	free(sel);
	return ret;
}

void wtg_source_free(struct wtg_source *src)
{
	if (src)
		src->ops->free(src);
}
