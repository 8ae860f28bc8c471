/*
 * For the wim_meta tests: the uncompressed metadata resource of an image of
 * a real WIM, found through wimlib's blob table (the image-th metadata entry
 * is the image's) and read with our own chunk reader.
 */
#ifndef WTGFS_TESTS_WIM_META_READ_H
#define WTGFS_TESTS_WIM_META_READ_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wimlib.h>

#include "wtgfs/chunk_cache.h"
#include "wtgfs/wim_resource.h"

struct meta_find {
	int want, seen;
	struct wimlib_resource_entry re;
};

static int meta_find_cb(const struct wimlib_resource_entry *re, void *arg)
{
	struct meta_find *f = arg;

	if (re->is_metadata && ++f->seen == f->want)
		f->re = *re;
	return 0;
}

/* 0 and a malloc'd copy of image @image's metadata resource, or -errno. */
static int read_wim_metadata(const char *path, int image, uint8_t **buf_ret, size_t *len_ret)
{
	WIMStruct *wim;
	struct wimlib_wim_info info;
	struct meta_find f = {.want = image};
	int ret = -EIO;

	if (wimlib_open_wim(path, 0, &wim))
		return -ENOENT;
	wimlib_get_wim_info(wim, &info);
	wimlib_iterate_lookup_table(wim, 0, meta_find_cb, &f);
	wimlib_free(wim);
	if (f.seen < image)
		return -ENOENT;

	struct wim_file wf = {.path = path, .cache = wtg_chunk_cache_new(1 << 24)};
	struct wim_resource res;
	struct stat st;

	wf.fd = open(path, O_RDONLY | O_CLOEXEC);
	if (wf.fd < 0 || fstat(wf.fd, &st) < 0)
		goto out;
	wf.size = (uint64_t)st.st_size;
	wim_resource_init(&res);
	res.offset = f.re.offset;
	res.stored_size = f.re.compressed_size;
	res.size = f.re.uncompressed_size;
	res.compressed = f.re.is_compressed;
	res.ctype = (int)info.compression_type;
	res.chunk_size = info.chunk_size;
	uint8_t *buf = malloc(res.size ? res.size : 1);
	if (buf && wim_resource_read(&wf, &res, buf, res.size, 0, "metadata") == 0) {
		*buf_ret = buf;
		*len_ret = res.size;
		ret = 0;
	} else {
		free(buf);
	}
	wim_resource_release(&res);
out:
	if (wf.fd >= 0)
		close(wf.fd);
	wtg_chunk_cache_free(wf.cache);
	return ret;
}

#endif
