/*
 * Fuzz target: a whole WIM file through the raw appender
 * (src/wim_append.c): header, blob table and XML read and checked, each
 * image's metadata resource read through its chunk table and SHA-1
 * checked, then (in memory, on a memfd) the append of a copy of image 1
 * with a blob edited from the first one the table holds (an integrity
 * table kept, or asked for), and the result read back by the appender.
 * Any crash or sanitizer report is a bug.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "wtgfs/wim_append.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct src {
	const uint8_t *p;
	size_t len;
};

static int read_src(void *ctx, void *buf, size_t len, uint64_t off)
{
	const struct src *s = ctx;

	for (size_t i = 0; i < len; i++)
		((uint8_t *)buf)[i] = s->len ? s->p[(off + i) % s->len] : 0;
	return 0;
}

static void try_append(int fd, const uint8_t *data, size_t size)
{
	char path[64];
	struct wim_append *wa;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (wim_append_open(path, &wa))
		return;
	struct wim_append_info info;
	wim_append_get_info(wa, &info);
	if (!wim_append_unsupported(wa) && info.image_count >= 1) {
		void *meta;
		size_t len;
		uint8_t sha1[20];
		struct src s = {.p = data, .len = size};
		if (!wim_append_metadata_sha1(wa, 1, sha1) &&
		    !wim_append_add_blob(wa, size % 100000 + 1, read_src, &s, sha1, 1, sha1) &&
		    !wim_append_read_metadata(wa, 1, &meta, &len)) {
			struct wim_append_image img = {.name = "fuzz", .copy_of = 1, .boot = size & 1,
						       .integrity = size & 2};
			if (!wim_append_set_metadata(wa, meta, len, 1))
				wim_append_commit(wa, &img);
			free(meta);
		}
	}
	wim_append_free(wa);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wim_append *wa;

	int fd = memfd_create("fuzz-wim", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	if (wim_append_open_fd(fd, "fuzz.wim", &wa) == 0) {
		struct wim_append_info info;
		wim_append_get_info(wa, &info);
		wim_append_name_in_use(wa, "Windows");
		for (uint32_t i = 1; i <= info.image_count && i <= 4; i++) {
			void *meta;
			size_t len;
			if (!wim_append_read_metadata(wa, (int)i, &meta, &len))
				free(meta);
		}
		wim_append_free(wa);
		try_append(fd, data, size);
		/* what the append wrote reads back */
		if (wim_append_open_fd(fd, "fuzz.wim", &wa) == 0)
			wim_append_free(wa);
	}
	close(fd);
	return 0;
}
