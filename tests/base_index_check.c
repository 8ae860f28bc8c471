/*
 * base_index_check DELTA IMAGE: the index of the base that DELTA keeps
 * (made by 'wtgfs init DELTA IMAGE') against IMAGE's tree, loaded: for
 * every inode every field, for every name the lookup by (directory, name)
 * and its DOS name, and for every stream with bytes its first and last
 * bytes read through the index (the image opened without loading it)
 * against the tree's.  Also what the index must not answer: inode numbers
 * past the tree, a name spelled in another case.  Prints what it compared;
 * exits 1 on any difference.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "wtgfs/base_index.h"
#include "wtgfs/ntfs.h"
#include "wtgfs/store.h"
#include "wtgfs/tree.h"

static bool same_bytes(const uint8_t *a, uint32_t alen, const uint8_t *b, uint32_t blen)
{
	if (!a || !b)
		return !a == !b;
	return alen == blen && !memcmp(a, b, alen);
}

static bool same_str(const char *a, const char *b)
{
	if (!a || !b)
		return !a == !b;
	return !strcmp(a, b);
}

static uint64_t streams_read, names_checked;

static void check_stream(struct wtg_base *base, const struct wtg_tree *tree, uint64_t ino,
			 const struct wtg_stream *ts)
{
	static uint8_t a[65536], b[65536];
	uint64_t offs[2] = {0, ts->base_size > sizeof(a) ? ts->base_size - sizeof(a) : 0};

	for (int k = 0; k < 2; k++) {
		size_t want = ts->base_size - offs[k] < sizeof(a)
				  ? (size_t)(ts->base_size - offs[k])
				  : sizeof(a);
		long n1 = wtg_tree_read(tree, ts, a, want, offs[k]);
		long n2 = wtg_base_read(base, ino, ts->name ? ts->name : "", b, want, offs[k]);
		CHECK(n1 == (long)want && n2 == n1);
		if (n1 > 0 && n2 == n1 && memcmp(a, b, (size_t)n1)) {
			fprintf(stderr, "inode %llu stream '%s': bytes differ at %llu\n",
				(unsigned long long)ino, ts->name ? ts->name : "",
				(unsigned long long)offs[k]);
			unit_failures++;
		}
		if (!offs[1])
			break;
	}
	streams_read++;
}

static void check_inode(struct wtg_base *base, const struct wtg_tree *tree,
			const struct wtg_inode *t)
{
	const struct wtg_base_inode *in;
	int before = unit_failures;

	CHECK(wtg_base_inode(base, t->ino, &in) == 0 && in);
	if (!in)
		return;
	CHECK(in->ino == t->ino);
	CHECK(in->is_dir == wtg_inode_is_dir(t));
	CHECK(in->attributes == t->attributes);
	CHECK(in->nlink_extra == t->nlink_extra);
	CHECK(in->crtime == t->crtime && in->mtime == t->mtime && in->atime == t->atime &&
	      in->ctime == t->ctime);
	const struct wtg_sd *sd = t->sd != WTG_NO_SD ? wtg_tree_sd(tree, t->sd) : NULL;
	CHECK(same_bytes(in->sd, in->sd_len, sd ? sd->data : NULL, sd ? sd->len : 0));
	uint32_t rlen = 0;
	const uint8_t *rp = wtg_inode_reparse(tree, t, &rlen);
	if (t->attributes & NTFS_ATTR_REPARSE_POINT)
		CHECK(same_bytes(in->reparse, in->reparse_len, rp, rlen));
	else
		CHECK(!in->reparse);
	CHECK(same_bytes(in->object_id, in->object_id_len, t->object_id, t->object_id_len));
	uint32_t elen = 0;
	const uint8_t *ea = wtg_inode_ea(t, &elen);
	CHECK(same_bytes(in->ea, in->ea_len, ea, elen));
	/* names, in the tree's order, each found again by (directory, name) */
	uint32_t n = 0;
	for (const struct wtg_dentry *de = t->first_name; de; de = de->alias_next, n++) {
		if (n >= in->nnames)
			continue;
		const struct wtg_base_name *bn = &in->names[n];
		CHECK(bn->dir == de->parent->ino);
		CHECK(strlen(bn->name) == de->name_len &&
		      !memcmp(bn->name, de->name, de->name_len));
		CHECK(same_str(bn->dos, wtg_dentry_dos_name(de)));
		uint64_t got;
		const char *dos;
		CHECK(wtg_base_lookup(base, de->parent->ino, de->name, &got, &dos) == 0);
		CHECK(got == t->ino);
		CHECK(same_str(dos, wtg_dentry_dos_name(de)));
		/* the same name in another case is not this name (lookups are exact) */
		char other[1024];
		snprintf(other, sizeof(other), "%s", de->name);
		bool changed = false;
		for (char *c = other; *c; c++)
			if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')) {
				*c ^= 0x20;
				changed = true;
			}
		if (changed) {
			struct wtg_dentry *exact = NULL;
			const struct wtg_inode *dir = de->parent;
			for (uint32_t k = 0; k < dir->dir->count; k++)
				if (!strcmp(dir->dir->entries[k]->name, other))
					exact = dir->dir->entries[k];
			CHECK(wtg_base_lookup(base, dir->ino, other, &got, NULL) == 0);
			CHECK(got == (exact ? exact->inode->ino : 0));
		}
		names_checked++;
	}
	CHECK(n == in->nnames);
	CHECK(in->nstreams == t->nstreams);
	for (uint32_t i = 0; i < t->nstreams && i < in->nstreams; i++) {
		const struct wtg_stream *ts = &t->streams[i];
		const struct wtg_base_stream *bs = &in->streams[i];
		CHECK(!strcmp(bs->name, ts->name ? ts->name : ""));
		CHECK(bs->size == ts->size);
		CHECK(bs->base_size == (ts->blob ? ts->base_size : 0));
		CHECK(!bs->key == !ts->blob);
		if (ts->blob && ts->base_size)
			check_stream(base, tree, t->ino, ts);
	}
	if (unit_failures != before)
		fprintf(stderr, "inode %llu differs\n", (unsigned long long)t->ino);
}

int main(int argc, char **argv)
{
	struct wtg_store_options ro = {.read_only = true};
	struct wtg_store *st;
	struct wtg_base *base;
	struct wtg_tree tree;

	if (argc != 3) {
		fprintf(stderr, "usage: base_index_check DELTA IMAGE\n");
		return 2;
	}
	if (wtg_tree_open_image(argv[2], NULL, &tree) || wtg_store_open(argv[1], &ro, &st))
		return 2;
	if (wtg_base_open(st, NULL, NULL, &base))
		return 2;
	CHECK(wtg_base_indexed(base));
	uint64_t inodes = 0;
	for (uint64_t ino = 1; ino <= tree.ninodes; ino++) {
		const struct wtg_inode *t = wtg_tree_inode(&tree, ino);
		if (t) {
			check_inode(base, &tree, t);
			inodes++;
		}
	}
	const struct wtg_base_inode *none;
	CHECK(wtg_base_inode(base, tree.ninodes + 1, &none) == 0 && !none);
	uint64_t ino;
	CHECK(wtg_base_lookup(base, WTG_ROOT_INO, "no such name here", &ino, NULL) == 0 && !ino);
	struct wtg_base_counts c;
	wtg_base_counts(base, &c);
	/* the image was opened for the reads alone */
	CHECK(c.image_opened == (streams_read > 0));
	printf("%llu inodes, %llu names, %llu streams read: %s\n", (unsigned long long)inodes,
	       (unsigned long long)names_checked, (unsigned long long)streams_read,
	       unit_failures ? "DIFFERENT" : "equal");
	wtg_base_free(base);
	wtg_store_close(st);
	wtg_tree_release(&tree);
	UNIT_EXIT();
}
