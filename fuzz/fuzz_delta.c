/*
 * Fuzz target: a whole delta file through wtg_store_open (our header checks,
 * then SQLite, the format and the layer stack), then, when it opens, verify,
 * the layer list, lookups of every kind and the base metadata kept for
 * export, a small write batch; then the
 * delta's layers applied to a small tree as a mount would (the view's
 * loader), a walk of the result and a few changes, and close.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wtgfs/census.h"
#include "wtgfs/hash.h"
#include "wtgfs/store.h"
#include "wtgfs/tree.h"
#include "wtgfs/view.h"

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
	/* the stream sums an export looks up, and a fingerprint of a size
	 * far past what any slot says */
	struct wtg_store_sum *sums;
	uint8_t fp[WTG_STORE_HASH_LEN], sha1[WTG_SHA1_LEN];
	if (wtg_store_list_sums(st, &sums, &n) == 0) {
		for (size_t i = 0; i < n && i < 8; i++)
			if (sums[i].size <= (1u << 24) &&
			    wtg_store_stream_fingerprint(st, NULL, sums[i].ino, sums[i].stream,
							 sums[i].size, fp) == 0)
				wtg_store_get_sum(st, fp, sha1);
		wtg_store_sums_free(sums, n);
	}
	if (wtg_store_stream_fingerprint(st, NULL, 3, "", 200000, fp) == 0)
		wtg_store_get_sum(st, fp, sha1);
	/* the base metadata an export reads: its parts checked and decoded
	 * (within what a fuzz run may allocate) */
	struct wtg_store_base_metadata bm;
	if (wtg_store_base_metadata_get(st, &bm) == 0) {
		void *out = bm.size <= (64u << 20) ? malloc(bm.size ? bm.size : 1) : NULL;
		if (out)
			wtg_store_base_metadata_decode(&bm, out);
		free(out);
		wtg_store_base_metadata_free(&bm);
	}
	/* the base image's counts: decoded as they are, then with their SHA-256
	 * made right (so that what it guards is read too); what decodes
	 * encodes to the same bytes */
	uint8_t *cb;
	size_t clen;
	if (wtg_store_base_census_get(st, &cb, &clen) == 0) {
		struct wtg_census c;
		wtg_census_decode(cb, clen, &c);
		wtg_census_free(&c);
		if (clen >= WTG_SHA256_LEN) {
			wtg_sha256(cb, clen - WTG_SHA256_LEN, cb + clen - WTG_SHA256_LEN);
			if (wtg_census_decode(cb, clen, &c) == 0) {
				uint8_t *again;
				size_t alen;
				if (c.ngroups)
					wtg_census_group(&c, c.groups[0].id, c.groups[0].sha1);
				if (wtg_census_encode(&c, &again, &alen) == 0) {
					if (alen != clen || memcmp(again, cb, clen))
						__builtin_trap();
					free(again);
				}
			}
			wtg_census_free(&c);
		}
		free(cb);
	}
	if (wtg_store_put_chunk(st, "fuzz", 4, hash) == 0)
		wtg_store_set_extent(st, 2, "", 0, hash);
	wtg_store_commit(st);
}

/* A base of a few inodes: root 1, Windows 2, Windows/a.txt 3, b.txt 4. */
static void small_tree(struct wtg_tree *t)
{
	wtg_tree_init(t, NULL);
	struct wtg_inode *root = wtg_tree_new_inode(t, true);
	struct wtg_inode *win = wtg_tree_new_inode(t, true);
	struct wtg_inode *a = wtg_tree_new_inode(t, false);
	struct wtg_inode *b = wtg_tree_new_inode(t, false);
	if (!root || !win || !a || !b)
		return;
	wtg_inode_add_stream(a, NULL, 0, NULL);
	wtg_inode_add_stream(b, NULL, 0, NULL);
	wtg_tree_link(t, root, "Windows", 7, win);
	wtg_tree_link(t, win, "a.txt", 5, a);
	wtg_tree_link(t, root, "b.txt", 5, b);
}

static void walk(struct wtg_view *v, struct wtg_inode *dir, int depth, char *buf)
{
	if (!dir || !dir->dir || depth > 16)
		return;
	for (uint32_t i = 0; i < dir->dir->count && i < 64; i++) {
		struct wtg_inode *in = dir->dir->entries[i]->inode;
		struct wtg_stream *s = wtg_inode_data(in);
		if (s)
			wtg_view_read(v, in, s, buf, WTG_STORE_CHUNK_SIZE, 0);
		if (in->dir && in != dir)
			walk(v, in, depth + 1, buf);
	}
}

static void exercise_view(struct wtg_store *st)
{
	static char buf[WTG_STORE_CHUNK_SIZE];
	struct wtg_tree t;
	struct wtg_view *v;
	struct wtg_inode *in;

	small_tree(&t);
	if (wtg_view_open_tree(st, &t, &v) != 0)
		return; /* it closed the store */
	walk(v, wtg_view_inode(v, WTG_ROOT_INO), 0, buf);
	if (wtg_view_create(v, WTG_ROOT_INO, "new.txt", WTG_VIEW_FILE, NULL, &in) == 0) {
		wtg_view_write(v, in->ino, NULL, "fuzz", 4, 70000);
		wtg_view_truncate(v, in->ino, NULL, 10);
		wtg_view_rename(v, WTG_ROOT_INO, "new.txt", 2, "moved.txt", 0);
	}
	wtg_view_write(v, 3, NULL, "x", 1, 5);
	/* written whole from 0: its sum is kept at close */
	wtg_view_truncate(v, 3, NULL, 0);
	wtg_view_write(v, 3, NULL, "whole", 5, 0);
	wtg_view_remove(v, WTG_ROOT_INO, "b.txt", false);
	wtg_view_sync(v, false);
	wtg_view_close(v);
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
		exercise_view(st);
	}
	remove_all(path);
	return 0;
}
