/*
 * Fuzz target: a whole delta file through wtg_store_open (our header checks,
 * then SQLite, the format and the layer stack), then, when it opens, verify,
 * the layer list and lookups of every kind, a small write batch and close.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "wtgfs/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count_name(void *arg, const char *name, uint64_t ino)
{
	(*(int *)arg)++;
	return 0;
}

static int count_stream(void *arg, const char *name, uint64_t size, bool deleted)
{
	(*(int *)arg)++;
	return 0;
}

static void remove_all(const char *path)
{
	char side[128];

	unlink(path);
	snprintf(side, sizeof(side), "%s-wal", path);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", path);
	unlink(side);
}

static void exercise(struct wtg_store *st)
{
	struct wtg_store_layer *layers;
	struct wtg_store_inode in;
	enum wtg_store_state state;
	uint8_t hash[WTG_STORE_HASH_LEN];
	static uint8_t buf[WTG_STORE_CHUNK_SIZE];
	size_t n, size;
	uint64_t v;
	int count = 0;

	wtg_store_verify(st, NULL);
	if (wtg_store_list_layers(st, &layers, &n) == 0)
		wtg_store_layers_free(layers, n);
	for (uint64_t ino = 1; ino <= 4; ino++) {
		if (wtg_store_get_inode(st, ino, &state, &in) == 0 && state == WTG_STORE_PRESENT)
			wtg_store_inode_release(&in);
		wtg_store_get_name(st, ino, "a", &state, &v);
		wtg_store_list_names(st, ino, count_name, &count);
		wtg_store_list_streams(st, ino, count_stream, &count);
		wtg_store_get_stream(st, ino, "", &state, &v);
		for (uint64_t i = 0; i < 3; i++)
			if (wtg_store_get_extent(st, ino, "", i, &state, hash) == 0 &&
			    state == WTG_STORE_PRESENT)
				wtg_store_get_chunk(st, hash, buf, &size);
	}
	wtg_store_max_ino(st, &v);
	if (wtg_store_put_chunk(st, "fuzz", 4, hash) == 0)
		wtg_store_set_extent(st, 2, "", 0, hash);
	wtg_store_commit(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	struct wtg_store *st;

	if (!path[0])
		snprintf(path, sizeof(path), "/tmp/wtgfs-fuzz-%d.delta", (int)getpid());
	remove_all(path);
	FILE *f = fopen(path, "wb");
	if (!f)
		return 0;
	fwrite(data, 1, size, f);
	fclose(f);
	if (wtg_store_open(path, NULL, &st) == 0) {
		exercise(st);
		wtg_store_close(st);
	}
	remove_all(path);
	return 0;
}
