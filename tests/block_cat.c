/*
 * block_cat IMAGE [OFFSET LENGTH]: writes the virtual disk's bytes (all of
 * them, or LENGTH from OFFSET) to stdout through wtg_block_open, for the
 * shell tests to compare with cmp.  "block_cat -i IMAGE" prints the format,
 * size, sector size and identity instead; "-p PARENT" names a differencing
 * disk's parent.  Exit 0, or 1 after one line on stderr.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wtgfs/block.h"

#define CHUNK (1u << 20)

int main(int argc, char **argv)
{
	struct wtg_block_dev *dev;
	const char *parent = NULL;
	bool info = false;
	char **args = argv;
	int nargs = argc;
	uint64_t off = 0, len;
	char *buf;
	int ret;

	while (nargs > 1 && (!strcmp(args[1], "-i") || (!strcmp(args[1], "-p") && nargs > 2))) {
		if (!strcmp(args[1], "-i")) {
			info = true;
			args++, nargs--;
		} else {
			parent = args[2];
			args += 2, nargs -= 2;
		}
	}
	if (nargs != 2 && nargs != 4) {
		fprintf(stderr, "usage: block_cat [-i] [-p PARENT] IMAGE [OFFSET LENGTH]\n");
		return 2;
	}
	if (wtg_block_open(args[1], parent, &dev) < 0)
		return 1;
	if (info) {
		printf("%s %" PRIu64 " %u %s\n", dev->ops->name, dev->size, dev->sector_size,
		       dev->identity[0] ? dev->identity : "-");
		wtg_block_free(dev);
		return 0;
	}
	len = dev->size;
	if (nargs == 4) {
		off = strtoull(args[2], NULL, 0);
		len = strtoull(args[3], NULL, 0);
		if (off > dev->size || len > dev->size - off) {
			fprintf(stderr,
				"block_cat: %" PRIu64 "+%" PRIu64 " is past the end (%" PRIu64
				")\n",
				off, len, dev->size);
			wtg_block_free(dev);
			return 1;
		}
	}
	buf = malloc(CHUNK);
	ret = buf ? 0 : -ENOMEM;
	while (ret == 0 && len) {
		size_t n = len < CHUNK ? (size_t)len : CHUNK;
		ret = wtg_block_pread(dev, buf, n, off);
		if (ret == 0 && fwrite(buf, 1, n, stdout) != n)
			ret = -EIO;
		off += n;
		len -= n;
	}
	free(buf);
	wtg_block_free(dev);
	if (fflush(stdout) != 0)
		ret = -EIO;
	return ret < 0 ? 1 : 0;
}
