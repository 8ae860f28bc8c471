/*
 * The base as diff asks about it (wtgfs/base_index.h): records of the base
 * tree's inodes packed into the delta's index at init, read back one at a
 * time; or, for a delta without an index, the same records made from the
 * loaded tree.  Both paths make a record with one function (from_tree), so
 * they cannot disagree; the index only adds packing.
 *
 * A record, packed (varints are LEB128, times le64):
 *   u8 version (1); varint flags (1 directory, 2 reparse, 4 object id,
 *   8 $EA); varint attributes; varint sd id + 1 (0: none); 4 x le64 times;
 *   varint nlink_extra; [varint length, bytes] for each of reparse, object
 *   id, $EA that the flags say; varint names, each {varint dir, varint
 *   length, bytes, varint DOS length + 1 (0: none), bytes}; varint streams,
 *   each {varint name length + 1 (0: the unnamed one), bytes, varint size,
 *   varint base size, varint key length, key bytes}.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wtgfs/base_index.h"
#include "wtgfs/log.h"
#include "wtgfs/ntfs.h"
#include "wtgfs/source.h"
#include "wtgfs/store.h"
#include "wtgfs/tree.h"
#include "wtgfs/view.h"

#define RECORD_VERSION 1
enum { F_DIR = 1, F_REPARSE = 2, F_OBJECT_ID = 4, F_EA = 8 };

struct wtg_base {
	struct wtg_store *store;
	bool indexed;
	struct wtg_tree tree; /* no index: the image, loaded */
	bool loaded;
	struct wtg_source *src; /* an index: the image, opened on the first read */
	int src_err;
	char *base_path;
	struct wtg_source_options opt;
	char *parent;
	/* records by inode number, open addressing; NULL values: none */
	uint64_t *keys;
	struct wtg_base_inode **vals;
	size_t cap, count;
	/* security descriptors by id (index only) */
	uint8_t **sds;
	uint32_t *sd_lens;
	uint32_t nsds;
	struct wtg_base_counts counts;
};

/* ---- records ---- */

void wtg_base_record_free(struct wtg_base_inode *in)
{
	if (!in)
		return;
	free(in->reparse);
	free(in->object_id);
	free(in->ea);
	for (uint32_t i = 0; i < in->nnames; i++) {
		free(in->names[i].name);
		free(in->names[i].dos);
	}
	free(in->names);
	for (uint32_t i = 0; i < in->nstreams; i++) {
		free(in->streams[i].name);
		free(in->streams[i].key);
	}
	free(in->streams);
	free(in);
}

static int dup_bytes(uint8_t **out, uint32_t *out_len, const uint8_t *p, uint32_t len)
{
	*out = NULL;
	*out_len = 0;
	if (!p)
		return 0;
	if (!(*out = malloc(len ? len : 1)))
		return -ENOMEM;
	memcpy(*out, p, len);
	*out_len = len;
	return 0;
}

/* The record of tree inode @t; with @keys, each stream's key too. */
static int from_tree(const struct wtg_tree *tree, const struct wtg_inode *t, bool keys,
		     struct wtg_base_inode **ret)
{
	struct wtg_base_inode *in = calloc(1, sizeof(*in));
	int r = 0;

	if (!in)
		return -ENOMEM;
	in->ino = t->ino;
	in->is_dir = wtg_inode_is_dir(t);
	in->attributes = t->attributes;
	in->nlink_extra = t->nlink_extra;
	in->crtime = t->crtime;
	in->mtime = t->mtime;
	in->atime = t->atime;
	in->ctime = t->ctime;
	const struct wtg_sd *sd = t->sd != WTG_NO_SD ? wtg_tree_sd(tree, t->sd) : NULL;
	in->sd_id = sd ? t->sd : WTG_NO_SD;
	in->sd = sd ? sd->data : NULL;
	in->sd_len = sd ? sd->len : 0;
	if (t->attributes & NTFS_ATTR_REPARSE_POINT) {
		uint32_t len = 0;
		const uint8_t *p = wtg_inode_reparse(tree, t, &len);
		r = dup_bytes(&in->reparse, &in->reparse_len, p, len);
	}
	if (!r)
		r = dup_bytes(&in->object_id, &in->object_id_len, t->object_id, t->object_id_len);
	uint32_t elen = 0;
	const uint8_t *ea = wtg_inode_ea(t, &elen);
	if (!r)
		r = dup_bytes(&in->ea, &in->ea_len, ea, elen);
	uint32_t n = 0;
	for (const struct wtg_dentry *de = t->first_name; de; de = de->alias_next)
		n++;
	if (!r && n && !(in->names = calloc(n, sizeof(*in->names))))
		r = -ENOMEM;
	for (const struct wtg_dentry *de = t->first_name; !r && de; de = de->alias_next) {
		struct wtg_base_name *bn = &in->names[in->nnames++];
		const char *dos = wtg_dentry_dos_name(de);
		bn->dir = de->parent->ino;
		if (!(bn->name = strndup(de->name, de->name_len)) ||
		    (dos && !(bn->dos = strdup(dos))))
			r = -ENOMEM;
	}
	if (!r && t->nstreams && !(in->streams = calloc(t->nstreams, sizeof(*in->streams))))
		r = -ENOMEM;
	for (uint32_t i = 0; !r && i < t->nstreams; i++) {
		const struct wtg_stream *ts = &t->streams[i];
		struct wtg_base_stream *s = &in->streams[in->nstreams++];
		if (!(s->name = strdup(ts->name ? ts->name : ""))) {
			r = -ENOMEM;
			break;
		}
		s->size = ts->size;
		s->base_size = ts->blob ? ts->base_size : 0;
		s->blob = ts->blob;
		if (!keys || !ts->blob)
			continue;
		uint8_t key[WTG_BLOB_KEY_MAX];
		int len = wtg_source_blob_key(tree->source, ts->blob, key);
		if (len < 0) {
			r = len;
			break;
		}
		r = dup_bytes(&s->key, &s->key_len, key, (uint32_t)len);
	}
	if (r) {
		wtg_base_record_free(in);
		return r;
	}
	*ret = in;
	return 0;
}

/* ---- packing ---- */

struct buf {
	uint8_t *p;
	size_t len, cap;
	int err;
};

static void put_bytes(struct buf *b, const void *p, size_t n)
{
	if (b->err)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n)
			cap *= 2;
		uint8_t *q = realloc(b->p, cap);
		if (!q) {
			b->err = -ENOMEM;
			return;
		}
		b->p = q;
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void put_varint(struct buf *b, uint64_t v)
{
	uint8_t tmp[10];
	size_t n = 0;

	do {
		tmp[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			tmp[n] |= 0x80;
		n++;
	} while (v);
	put_bytes(b, tmp, n);
}

static void put_le64(struct buf *b, int64_t v)
{
	uint8_t tmp[8];
	uint64_t u = (uint64_t)v;

	for (int i = 0; i < 8; i++)
		tmp[i] = (uint8_t)(u >> (8 * i));
	put_bytes(b, tmp, 8);
}

static void put_counted(struct buf *b, const void *p, size_t n)
{
	put_varint(b, n);
	put_bytes(b, p, n);
}

static int pack(const struct wtg_base_inode *in, struct buf *b)
{
	uint8_t version = RECORD_VERSION;
	unsigned flags = (in->is_dir ? F_DIR : 0) | (in->reparse ? F_REPARSE : 0) |
			 (in->object_id ? F_OBJECT_ID : 0) | (in->ea ? F_EA : 0);

	b->len = 0;
	put_bytes(b, &version, 1);
	put_varint(b, flags);
	put_varint(b, in->attributes);
	put_varint(b, in->sd_id == WTG_NO_SD ? 0 : (uint64_t)in->sd_id + 1);
	put_le64(b, in->crtime);
	put_le64(b, in->mtime);
	put_le64(b, in->atime);
	put_le64(b, in->ctime);
	put_varint(b, in->nlink_extra);
	if (in->reparse)
		put_counted(b, in->reparse, in->reparse_len);
	if (in->object_id)
		put_counted(b, in->object_id, in->object_id_len);
	if (in->ea)
		put_counted(b, in->ea, in->ea_len);
	put_varint(b, in->nnames);
	for (uint32_t i = 0; i < in->nnames; i++) {
		const struct wtg_base_name *n = &in->names[i];
		put_varint(b, n->dir);
		put_counted(b, n->name, strlen(n->name));
		put_varint(b, n->dos ? strlen(n->dos) + 1 : 0);
		if (n->dos)
			put_bytes(b, n->dos, strlen(n->dos));
	}
	put_varint(b, in->nstreams);
	for (uint32_t i = 0; i < in->nstreams; i++) {
		const struct wtg_base_stream *s = &in->streams[i];
		size_t nl = strlen(s->name);
		put_varint(b, nl ? nl + 1 : 0);
		put_bytes(b, s->name, nl);
		put_varint(b, s->size);
		put_varint(b, s->base_size);
		put_counted(b, s->key, s->key ? s->key_len : 0);
	}
	return b->err;
}

struct reader {
	const uint8_t *p, *end;
	bool bad;
};

static uint64_t get_varint(struct reader *rd)
{
	uint64_t v = 0;

	for (int shift = 0; shift < 64; shift += 7) {
		if (rd->p >= rd->end) {
			rd->bad = true;
			return 0;
		}
		uint8_t c = *rd->p++;
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80))
			return v;
	}
	rd->bad = true;
	return 0;
}

static int64_t get_le64(struct reader *rd)
{
	uint64_t u = 0;

	if (rd->end - rd->p < 8) {
		rd->bad = true;
		return 0;
	}
	for (int i = 0; i < 8; i++)
		u |= (uint64_t)rd->p[i] << (8 * i);
	rd->p += 8;
	return (int64_t)u;
}

/* @n bytes as a malloc'd copy (NUL terminated, for names); NULL when the
 * record is short or memory is. */
static uint8_t *get_bytes(struct reader *rd, uint64_t n, int *err)
{
	if (rd->bad || n > (uint64_t)(rd->end - rd->p) || n > UINT32_MAX) {
		rd->bad = true;
		return NULL;
	}
	uint8_t *q = malloc((size_t)n + 1);
	if (!q) {
		*err = -ENOMEM;
		return NULL;
	}
	memcpy(q, rd->p, (size_t)n);
	q[n] = 0;
	rd->p += n;
	return q;
}

int wtg_base_record_unpack(const uint8_t *p, size_t len, uint64_t ino, struct wtg_base_inode **ret)
{
	struct reader rd = {p, p + len, false};
	struct wtg_base_inode *in = calloc(1, sizeof(*in));
	int err = 0;

	if (!in)
		return -ENOMEM;
	in->ino = ino;
	if (!len || p[0] != RECORD_VERSION)
		rd.bad = true;
	else
		rd.p++;
	unsigned flags = (unsigned)get_varint(&rd);
	in->is_dir = flags & F_DIR;
	in->attributes = (uint32_t)get_varint(&rd);
	uint64_t sd = get_varint(&rd);
	in->sd_id = sd ? (uint32_t)(sd - 1) : WTG_NO_SD;
	in->crtime = get_le64(&rd);
	in->mtime = get_le64(&rd);
	in->atime = get_le64(&rd);
	in->ctime = get_le64(&rd);
	in->nlink_extra = (uint32_t)get_varint(&rd);
	if (flags & F_REPARSE) {
		uint64_t n = get_varint(&rd);
		in->reparse = get_bytes(&rd, n, &err);
		in->reparse_len = (uint32_t)n;
	}
	if (flags & F_OBJECT_ID) {
		uint64_t n = get_varint(&rd);
		in->object_id = get_bytes(&rd, n, &err);
		in->object_id_len = (uint32_t)n;
	}
	if (flags & F_EA) {
		uint64_t n = get_varint(&rd);
		in->ea = get_bytes(&rd, n, &err);
		in->ea_len = (uint32_t)n;
	}
	uint64_t nn = get_varint(&rd);
	if (!rd.bad && !err && nn > (uint64_t)(rd.end - rd.p))
		rd.bad = true;
	if (!rd.bad && nn && !(in->names = calloc((size_t)nn, sizeof(*in->names))))
		err = -ENOMEM;
	for (uint64_t i = 0; !rd.bad && !err && i < nn; i++) {
		struct wtg_base_name *n = &in->names[in->nnames++];
		n->dir = get_varint(&rd);
		n->name = (char *)get_bytes(&rd, get_varint(&rd), &err);
		uint64_t dl = get_varint(&rd);
		if (dl)
			n->dos = (char *)get_bytes(&rd, dl - 1, &err);
	}
	uint64_t ns = rd.bad || err ? 0 : get_varint(&rd);
	if (!rd.bad && ns > (uint64_t)(rd.end - rd.p))
		rd.bad = true;
	if (!rd.bad && !err && ns && !(in->streams = calloc((size_t)ns, sizeof(*in->streams))))
		err = -ENOMEM;
	for (uint64_t i = 0; !rd.bad && !err && i < ns; i++) {
		struct wtg_base_stream *s = &in->streams[in->nstreams++];
		uint64_t nl = get_varint(&rd);
		s->name = (char *)get_bytes(&rd, nl ? nl - 1 : 0, &err);
		s->size = get_varint(&rd);
		s->base_size = get_varint(&rd);
		uint64_t kl = get_varint(&rd);
		if (kl) {
			s->key = get_bytes(&rd, kl, &err);
			s->key_len = (uint32_t)kl;
		}
	}
	if (!rd.bad && rd.p != rd.end)
		rd.bad = true;
	if (rd.bad || err) {
		wtg_base_record_free(in);
		return err ? err : -EIO;
	}
	*ret = in;
	return 0;
}

int wtg_base_record_pack(const struct wtg_base_inode *in, uint8_t **buf_ret, size_t *len_ret)
{
	struct buf b = {0};
	int r = pack(in, &b);

	if (r) {
		free(b.p);
		return r;
	}
	*buf_ret = b.p;
	*len_ret = b.len;
	return 0;
}

/* ---- building ---- */

int wtg_base_index_build(struct wtg_store *store, const struct wtg_tree *tree)
{
	struct buf b = {0};
	uint64_t n = 0;
	int r = wtg_store_base_index_begin(store);

	for (uint32_t id = 0; !r && id < tree->nsds; id++)
		r = wtg_store_base_index_put_sd(store, id, tree->sds[id].data, tree->sds[id].len);
	for (uint64_t ino = 1; !r && ino <= tree->ninodes; ino++) {
		const struct wtg_inode *t = wtg_tree_inode(tree, ino);
		struct wtg_base_inode *in;
		if (!t)
			continue;
		r = from_tree(tree, t, true, &in);
		if (r)
			break;
		r = pack(in, &b);
		if (!r)
			r = wtg_store_base_index_put_inode(store, ino, b.p, b.len);
		for (const struct wtg_dentry *de = t->first_name; !r && de; de = de->alias_next)
			r = wtg_store_base_index_put_name(store, de->parent->ino, de->name,
							  de->name_len, ino);
		wtg_base_record_free(in);
		n++;
	}
	if (!r)
		r = wtg_store_base_index_end(store, n);
	else
		wtg_store_rollback_batch(store);
	free(b.p);
	if (r)
		wtg_error("'%s': cannot index its base (%s)", wtg_store_path(store), strerror(-r));
	return r;
}

/* ---- opening ---- */

int wtg_base_open(struct wtg_store *store, const char *base_path,
		  const struct wtg_source_options *opt, struct wtg_base **base_ret)
{
	struct wtg_base *b = calloc(1, sizeof(*b));
	int r = 0;

	if (!b)
		return -ENOMEM;
	b->store = store;
	b->indexed = wtg_store_base_indexed(store);
	if (opt) {
		b->opt = *opt;
		if (opt->parent && !(b->parent = strdup(opt->parent)))
			r = -ENOMEM;
		b->opt.parent = b->parent;
	}
	if (!r && base_path && !(b->base_path = strdup(base_path)))
		r = -ENOMEM;
	if (!r && !b->indexed) {
		r = wtg_view_load_base(store, base_path, opt, &b->tree);
		b->loaded = r == 0;
		b->counts.image_opened = true;
	}
	if (r) {
		wtg_base_free(b);
		return r;
	}
	*base_ret = b;
	return 0;
}

void wtg_base_free(struct wtg_base *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->cap; i++)
		if (b->keys[i])
			wtg_base_record_free(b->vals[i]);
	free(b->keys);
	free(b->vals);
	for (uint32_t i = 0; i < b->nsds; i++)
		free(b->sds[i]);
	free(b->sds);
	free(b->sd_lens);
	if (b->loaded)
		wtg_tree_release(&b->tree);
	wtg_source_free(b->src);
	free(b->base_path);
	free(b->parent);
	free(b);
}

bool wtg_base_indexed(const struct wtg_base *b)
{
	return b->indexed;
}

void wtg_base_counts(const struct wtg_base *b, struct wtg_base_counts *counts_ret)
{
	*counts_ret = b->counts;
}

/* ---- records by inode number ---- */

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

static struct wtg_base_inode **cache_slot(struct wtg_base *b, uint64_t ino, bool *found)
{
	for (size_t i = mix(ino) & (b->cap - 1);; i = (i + 1) & (b->cap - 1)) {
		if (!b->keys[i] || b->keys[i] == ino) {
			*found = b->keys[i] == ino;
			b->keys[i] = ino;
			return &b->vals[i];
		}
	}
}

static int cache_grow(struct wtg_base *b)
{
	if ((b->count + 1) * 2 <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap * 2 : 256;
	uint64_t *keys = calloc(cap, sizeof(*keys));
	struct wtg_base_inode **vals = calloc(cap, sizeof(*vals));
	if (!keys || !vals) {
		free(keys);
		free(vals);
		return -ENOMEM;
	}
	uint64_t *ok = b->keys;
	struct wtg_base_inode **ov = b->vals;
	size_t ocap = b->cap;
	b->keys = keys;
	b->vals = vals;
	b->cap = cap;
	for (size_t i = 0; i < ocap; i++) {
		bool found;
		if (ok[i])
			*cache_slot(b, ok[i], &found) = ov[i];
	}
	free(ok);
	free(ov);
	return 0;
}

/* The security descriptor @id of the index, read once. */
static int index_sd(struct wtg_base *b, struct wtg_base_inode *in)
{
	if (in->sd_id == WTG_NO_SD)
		return 0;
	if (in->sd_id >= b->nsds) {
		uint32_t n = in->sd_id + 1;
		uint8_t **p = realloc(b->sds, n * sizeof(*p));
		if (p)
			b->sds = p;
		uint32_t *q = p ? realloc(b->sd_lens, n * sizeof(*q)) : NULL;
		if (!q)
			return -ENOMEM;
		b->sd_lens = q;
		for (uint32_t i = b->nsds; i < n; i++) {
			b->sds[i] = NULL;
			b->sd_lens[i] = 0;
		}
		b->nsds = n;
	}
	if (!b->sds[in->sd_id]) {
		size_t len;
		int r = wtg_store_base_index_sd(b->store, in->sd_id, &b->sds[in->sd_id], &len);
		if (r == -ENOENT) {
			wtg_error("'%s': its index of the base names a security descriptor it "
				  "lacks (run 'wtgfs verify')",
				  wtg_store_path(b->store));
			return -EIO;
		}
		if (r)
			return r;
		b->sd_lens[in->sd_id] = (uint32_t)len;
	}
	in->sd = b->sds[in->sd_id];
	in->sd_len = b->sd_lens[in->sd_id];
	return 0;
}

int wtg_base_inode(struct wtg_base *b, uint64_t ino, const struct wtg_base_inode **inode_ret)
{
	bool found;
	int r;

	*inode_ret = NULL;
	if (!ino)
		return 0;
	if (b->cap) {
		for (size_t i = mix(ino) & (b->cap - 1); b->keys[i]; i = (i + 1) & (b->cap - 1))
			if (b->keys[i] == ino) {
				*inode_ret = b->vals[i];
				return 0;
			}
	}
	struct wtg_base_inode *in = NULL;
	b->counts.inodes++;
	if (b->loaded) {
		const struct wtg_inode *t =
		    ino <= b->tree.ninodes ? wtg_tree_inode(&b->tree, ino) : NULL;
		r = t ? from_tree(&b->tree, t, false, &in) : 0;
	} else {
		uint8_t *data;
		size_t len;
		r = wtg_store_base_index_inode(b->store, ino, &data, &len);
		if (r == -ENOENT) {
			r = 0;
		} else if (!r) {
			r = wtg_base_record_unpack(data, len, ino, &in);
			free(data);
			if (r == -EIO)
				wtg_error(
				    "'%s': its index of the base has a damaged record of inode "
				    "%llu (run 'wtgfs verify')",
				    wtg_store_path(b->store), (unsigned long long)ino);
			if (!r && (r = index_sd(b, in))) {
				wtg_base_record_free(in);
				in = NULL;
			}
		}
	}
	if (!r)
		r = cache_grow(b);
	if (r) {
		wtg_base_record_free(in);
		return r;
	}
	*cache_slot(b, ino, &found) = in;
	b->count++;
	*inode_ret = in;
	return 0;
}

int wtg_base_lookup(struct wtg_base *b, uint64_t dir, const char *name, uint64_t *ino_ret,
		    const char **dos_ret)
{
	int r = 0;

	*ino_ret = 0;
	if (dos_ret)
		*dos_ret = NULL;
	b->counts.lookups++;
	if (b->loaded) {
		const struct wtg_inode *in =
		    dir <= b->tree.ninodes ? wtg_tree_inode(&b->tree, dir) : NULL;
		size_t len = strlen(name);
		struct wtg_dentry *de =
		    in && in->dir ? wtg_tree_lookup(&b->tree, in, name, len) : NULL;
		/* only the name spelled exactly so */
		if (de && de->name_len == len && !memcmp(de->name, name, len))
			*ino_ret = de->inode->ino;
	} else {
		/* a directory the base does not have holds none of its names */
		const struct wtg_base_inode *d;
		r = wtg_base_inode(b, dir, &d);
		if (!r && d && d->is_dir)
			r = wtg_store_base_index_name(b->store, dir, name, ino_ret);
	}
	if (r || !*ino_ret || !dos_ret)
		return r;
	const struct wtg_base_inode *in;
	r = wtg_base_inode(b, *ino_ret, &in);
	for (uint32_t i = 0; !r && in && i < in->nnames; i++)
		if (in->names[i].dir == dir && !strcmp(in->names[i].name, name))
			*dos_ret = in->names[i].dos;
	return r;
}

/* ---- data ---- */

static int open_source(struct wtg_base *b)
{
	if (b->src || b->src_err)
		return b->src_err;
	b->counts.image_opened = true;
	b->src_err = wtg_view_open_base(b->store, b->base_path, &b->opt, &b->src);
	return b->src_err;
}

long wtg_base_read(struct wtg_base *b, uint64_t ino, const char *name, void *buf, size_t size,
		   uint64_t off)
{
	const struct wtg_base_inode *in;
	struct wtg_base_stream *s = NULL;
	struct wtg_source *src = b->loaded ? b->tree.source : NULL;
	int r = wtg_base_inode(b, ino, &in);

	if (r)
		return r;
	for (uint32_t i = 0; in && i < in->nstreams && !s; i++)
		if (!strcmp(in->streams[i].name, name))
			s = &in->streams[i];
	if (!s || off >= s->base_size)
		return 0;
	if (size > s->base_size - off)
		size = (size_t)(s->base_size - off);
	b->counts.reads++;
	if (!s->blob) {
		if (!s->key)
			return 0;
		if ((r = open_source(b)))
			return r;
		src = b->src;
		char path[64];
		snprintf(path, sizeof(path), "base inode %llu", (unsigned long long)ino);
		if ((r = wtg_source_find_blob(src, s->key, s->key_len, path, &s->blob)))
			return r;
	} else if (!src) {
		src = b->src;
	}
	r = wtg_source_read(src, s->blob, buf, size, off);
	return r < 0 ? r : (long)size;
}
