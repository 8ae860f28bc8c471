/*
 * Fuzz target: a disk image through wtg_block_open, once named .vhdx and
 * once .vhd (formats go by content, not by name; both are tried so that
 * never changes unnoticed), then reads from its start, its end and a few
 * places between.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "wtgfs/block.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_some(struct wtg_block_dev *dev)
{
	static char buf[1 << 16];
	uint64_t offs[6] = {0,
			    dev->size / 3,
			    dev->size / 2,
			    dev->size - dev->size / 4,
			    dev->size > sizeof(buf) ? dev->size - sizeof(buf) : 0,
			    4096};

	for (int i = 0; i < 6; i++) {
		uint64_t off = offs[i];
		if (off >= dev->size)
			continue;
		size_t n = dev->size - off < sizeof(buf) ? (size_t)(dev->size - off) : sizeof(buf);
		if (wtg_block_pread(dev, buf, n, off) < 0)
			return;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char paths[2][64];
	struct wtg_block_dev *dev;

	if (!paths[0][0]) {
		snprintf(paths[0], sizeof(paths[0]), "/tmp/wtgfs-fuzz-%d.vhdx", (int)getpid());
		snprintf(paths[1], sizeof(paths[1]), "/tmp/wtgfs-fuzz-%d.vhd", (int)getpid());
	}
	FILE *f = fopen(paths[0], "wb");
	if (!f)
		return 0;
	fwrite(data, 1, size, f);
	fclose(f);
	/* the same bytes under the other name: a link, not a second copy */
	unlink(paths[1]);
	if (link(paths[0], paths[1]) < 0)
		paths[1][0] = '\0';
	for (int i = 0; i < 2; i++) {
		if (paths[i][0] && wtg_block_open(paths[i], NULL, &dev) == 0) {
			read_some(dev);
			wtg_block_free(dev);
		}
	}
	unlink(paths[0]);
	if (paths[1][0])
		unlink(paths[1]);
	else
		paths[0][0] = '\0'; /* make both names again next time */
	return 0;
}
