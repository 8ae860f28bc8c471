/*
 * wim_meta_dump WIM IMAGE OUT: writes image IMAGE's uncompressed metadata
 * resource to OUT (fuzz seeds, and the tests' look at real metadata).
 */
#include <stdio.h>

#include "wim_meta_read.h"

int main(int argc, char **argv)
{
	uint8_t *buf;
	size_t len;

	if (argc != 4) {
		fprintf(stderr, "usage: wim_meta_dump WIM IMAGE OUT\n");
		return 2;
	}
	if (read_wim_metadata(argv[1], atoi(argv[2]), &buf, &len) < 0) {
		fprintf(stderr, "wim_meta_dump: cannot read the metadata of '%s' image %s\n",
			argv[1], argv[2]);
		return 1;
	}
	FILE *f = fopen(argv[3], "wb");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f)) {
		fprintf(stderr, "wim_meta_dump: cannot write '%s'\n", argv[3]);
		return 1;
	}
	free(buf);
	return 0;
}
