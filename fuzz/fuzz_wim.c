/*
 * Fuzz target: a whole WIM file through the WIM source — header, blob table
 * and metadata through wimlib, then every stream of the loaded tree through
 * our reader and SHA-1 checks, every reparse buffer, and every symlink
 * through readlink.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "wtgfs/log.h"
#include "wtgfs/source.h"
#include "wtgfs/tree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	struct wtg_tree tree;
	struct wtg_source_options opt = {.cache_bytes = 16 << 20};
	char buf[65536];

	if (!path[0])
		snprintf(path, sizeof(path), "/tmp/wtgfs-fuzz-%d.wim", (int)getpid());
	FILE *f = fopen(path, "wb");
	if (!f)
		return 0;
	fwrite(data, 1, size, f);
	fclose(f);
	if (wtg_tree_open_image(path, &opt, &tree) == 0) {
		for (uint64_t ino = 1; ino <= tree.ninodes; ino++) {
			struct wtg_inode *in = wtg_tree_inode(&tree, ino);
			for (uint32_t s = 0; s < in->nstreams; s++) {
				uint64_t off = 0;
				long n;
				while ((n = wtg_tree_read(&tree, &in->streams[s], buf, sizeof(buf),
							  off)) > 0)
					off += (uint64_t)n;
			}
			uint32_t rlen;
			wtg_inode_reparse(&tree, in, &rlen);
			if (wtg_inode_is_link(in))
				wtg_tree_readlink(&tree, in, NULL, buf, sizeof(buf));
		}
		wtg_tree_release(&tree);
	}
	unlink(path);
	return 0;
}
