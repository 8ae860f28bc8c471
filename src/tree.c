/*
 * The tree: inodes, per-directory hash tables of names folded for
 * case-insensitive lookup, interned security descriptors, and the POSIX
 * view of symlinks and junctions.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "wtgfs/ea.h"
#include "wtgfs/hash.h"
#include "wtgfs/names.h"
#include "wtgfs/ntfs.h"
#include "wtgfs/reparse.h"
#include "wtgfs/source.h"
#include "wtgfs/tree.h"

void wtg_tree_init(struct wtg_tree *tree, struct wtg_source *source)
{
	memset(tree, 0, sizeof(*tree));
	tree->source = source;
}

static void dir_free(struct wtg_dir *dir)
{
	if (!dir)
		return;
	for (uint32_t i = 0; i < dir->count; i++) {
		free(dir->entries[i]->name);
		free(dir->entries[i]->dos_name);
		free(dir->entries[i]);
	}
	free(dir->entries);
	free(dir->buckets);
	free(dir);
}

void wtg_stream_sum_free(struct wtg_stream_sum *sum)
{
	if (sum)
		wtg_sha1_free(sum->ctx);
	free(sum);
}

static void inode_free(struct wtg_inode *inode)
{
	dir_free(inode->dir);
	for (uint32_t i = 0; i < inode->nstreams; i++) {
		free(inode->streams[i].name);
		wtg_stream_sum_free(inode->streams[i].sum);
	}
	free(inode->streams);
	free(inode->reparse);
	free(inode->ea);
	free(inode->object_id);
	free(inode);
}

void wtg_tree_release(struct wtg_tree *tree)
{
	for (uint64_t i = 0; i < tree->ninodes; i++)
		if (tree->inodes[i])
			inode_free(tree->inodes[i]);
	free(tree->inodes);
	for (uint32_t i = 0; i < tree->nsds; i++)
		free(tree->sds[i].data);
	free(tree->sds);
	free(tree->sd_buckets);
	if (tree->source)
		wtg_source_free(tree->source);
	memset(tree, 0, sizeof(*tree));
}

int wtg_tree_open_image(const char *spec, const struct wtg_source_options *opt,
			struct wtg_tree *tree_ret)
{
	struct wtg_source *src;
	int ret = wtg_source_open(spec, opt, &src);

	if (ret < 0)
		return ret;
	wtg_tree_init(tree_ret, src);
	ret = wtg_source_load(src, tree_ret);
	if (ret < 0)
		wtg_tree_release(tree_ret);
	return ret;
}

static struct wtg_inode *inode_alloc(bool is_dir)
{
	struct wtg_inode *inode = calloc(1, sizeof(*inode));

	if (!inode)
		return NULL;
	if (is_dir) {
		inode->dir = calloc(1, sizeof(*inode->dir));
		if (!inode->dir) {
			free(inode);
			return NULL;
		}
		inode->attributes = NTFS_ATTR_DIRECTORY;
	}
	inode->sd = WTG_NO_SD;
	return inode;
}

struct wtg_inode *wtg_tree_new_inode(struct wtg_tree *tree, bool is_dir)
{
	struct wtg_inode *inode;

	if (tree->ninodes == tree->cap) {
		uint64_t cap = tree->cap ? tree->cap * 2 : 1024;
		struct wtg_inode **v = realloc(tree->inodes, cap * sizeof(*v));
		if (!v)
			return NULL;
		tree->inodes = v;
		tree->cap = cap;
	}
	if (!(inode = inode_alloc(is_dir)))
		return NULL;
	tree->inodes[tree->ninodes++] = inode;
	inode->ino = tree->ninodes;
	return inode;
}

void wtg_tree_free_inode(struct wtg_tree *tree, struct wtg_inode *inode)
{
	if (inode->ino >= 1 && inode->ino <= tree->ninodes && tree->inodes[inode->ino - 1] == inode)
		tree->inodes[inode->ino - 1] = NULL;
	inode_free(inode);
}

struct wtg_inode *wtg_tree_new_inode_at(struct wtg_tree *tree, uint64_t ino, bool is_dir)
{
	if (ino == 0)
		return NULL;
	if (ino <= tree->ninodes) {
		struct wtg_inode *inode = tree->inodes[ino - 1] ? NULL : inode_alloc(is_dir);
		if (inode) {
			inode->ino = ino;
			tree->inodes[ino - 1] = inode;
		}
		return inode;
	}
	if (ino > tree->cap) {
		uint64_t cap = tree->cap ? tree->cap : 1024;
		while (cap < ino)
			cap *= 2;
		struct wtg_inode **v = realloc(tree->inodes, cap * sizeof(*v));
		if (!v)
			return NULL;
		tree->inodes = v;
		tree->cap = cap;
	}
	while (tree->ninodes < ino - 1)
		tree->inodes[tree->ninodes++] = NULL;
	return wtg_tree_new_inode(tree, is_dir);
}

static int dir_grow_buckets(struct wtg_dir *dir)
{
	uint32_t nb = dir->nbuckets ? dir->nbuckets * 2 : 8;
	struct wtg_dentry **b = calloc(nb, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (uint32_t i = 0; i < dir->count; i++) {
		struct wtg_dentry *d = dir->entries[i];
		d->bucket_next = b[d->hash & (nb - 1)];
		b[d->hash & (nb - 1)] = d;
	}
	free(dir->buckets);
	dir->buckets = b;
	dir->nbuckets = nb;
	return 0;
}

int wtg_tree_link(struct wtg_tree *tree, struct wtg_inode *dir, const char *name, size_t len,
		  struct wtg_inode *child)
{
	struct wtg_dir *d = dir->dir;
	struct wtg_dentry *de;

	if (!d)
		return -ENOTDIR;
	if (!wtg_name_posix_ok(name, len) || len > UINT32_MAX)
		return -EINVAL;
	uint32_t hash = wtg_name_hash(name, len);
	if (d->nbuckets) {
		for (de = d->buckets[hash & (d->nbuckets - 1)]; de; de = de->bucket_next)
			if (de->name_len == len && !memcmp(de->name, name, len))
				return -EEXIST;
	}
	if (d->count == d->cap) {
		uint32_t cap = d->cap ? d->cap * 2 : 4;
		struct wtg_dentry **v = realloc(d->entries, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		d->entries = v;
		d->cap = cap;
	}
	if (d->count >= d->nbuckets && dir_grow_buckets(d) < 0)
		return -ENOMEM;
	de = calloc(1, sizeof(*de));
	if (!de || !(de->name = malloc(len + 1))) {
		free(de);
		return -ENOMEM;
	}
	memcpy(de->name, name, len);
	de->name[len] = '\0';
	de->name_len = (uint32_t)len;
	de->hash = hash;
	de->pos = d->next_pos++;
	de->inode = child;
	de->parent = dir;
	/* Older names first in each chain: the first of equal-ignoring-case
	 * names is the one a case-insensitive lookup finds. */
	struct wtg_dentry **tail = &d->buckets[hash & (d->nbuckets - 1)];
	while (*tail)
		tail = &(*tail)->bucket_next;
	*tail = de;
	d->entries[d->count++] = de;

	child->nlink++;
	if (!child->first_name) {
		child->first_name = de;
		child->parent = dir;
	} else {
		struct wtg_dentry *a = child->first_name;
		while (a->alias_next)
			a = a->alias_next;
		a->alias_next = de;
	}
	if (child->dir)
		dir->nsubdirs++;
	(void)tree;
	return 0;
}

static void *dup_bytes(const void *p, size_t len)
{
	void *q = malloc(len ? len : 1);
	if (q && len)
		memcpy(q, p, len);
	return q;
}

/* Copies what describes @src itself (not its names) into a new inode of
 * @dst at the same number. */
static struct wtg_inode *clone_inode(struct wtg_tree *dst, const struct wtg_inode *src)
{
	struct wtg_inode *in = wtg_tree_new_inode_at(dst, src->ino, src->dir != NULL);

	if (!in)
		return NULL;
	in->attributes = src->attributes;
	in->reparse_tag = src->reparse_tag;
	in->nlink_extra = src->nlink_extra;
	in->sd = src->sd;
	in->crtime = src->crtime;
	in->mtime = src->mtime;
	in->atime = src->atime;
	in->ctime = src->ctime;
	in->reparse_blob = src->reparse_blob;
	in->reparse_blob_len = src->reparse_blob_len;
	in->reparse_made_here = src->reparse_made_here;
	if ((src->reparse && !(in->reparse = dup_bytes(src->reparse, src->reparse_len))) ||
	    (src->object_id && !(in->object_id = dup_bytes(src->object_id, src->object_id_len))) ||
	    (src->ea && !(in->ea = dup_bytes(src->ea, src->ea_len))))
		return NULL;
	in->ea_len = src->ea_len;
	in->reparse_len = src->reparse_len;
	in->object_id_len = src->object_id_len;
	for (uint32_t i = 0; i < src->nstreams; i++) {
		const struct wtg_stream *s = &src->streams[i];
		struct wtg_stream *c = wtg_inode_add_stream(in, s->name, s->size, s->blob);
		if (!c)
			return NULL;
		*c = (struct wtg_stream){.name = c->name,
					 .size = s->size,
					 .blob = s->blob,
					 .base_size = s->base_size,
					 .delta = s->delta,
					 .stored_size = s->stored_size};
	}
	return in;
}

int wtg_tree_clone(const struct wtg_tree *src, struct wtg_tree *dst)
{
	wtg_tree_init(dst, NULL);
	for (uint64_t i = 0; i < src->ninodes; i++)
		if (src->inodes[i] && !clone_inode(dst, src->inodes[i]))
			goto fail;
	for (uint32_t i = 0; i < src->nsds; i++)
		if (wtg_tree_intern_sd(dst, src->sds[i].data, src->sds[i].len) != i)
			goto fail;
	for (uint64_t i = 0; i < src->ninodes; i++) {
		const struct wtg_inode *d = src->inodes[i];
		if (!d || !d->dir)
			continue;
		struct wtg_inode *cd = dst->inodes[i];
		for (uint32_t e = 0; e < d->dir->count; e++) {
			const struct wtg_dentry *de = d->dir->entries[e];
			if (wtg_tree_link(dst, cd, de->name, de->name_len,
					  dst->inodes[de->inode->ino - 1]) < 0)
				goto fail;
			struct wtg_dentry *nd = cd->dir->entries[cd->dir->count - 1];
			nd->pos = de->pos;
			/* counted already: nlink_extra is copied */
			if (de->dos_name && !(nd->dos_name = strdup(de->dos_name)))
				goto fail;
		}
		cd->dir->next_pos = d->dir->next_pos;
	}
	dst->data_bytes = src->data_bytes;
	return 0;
fail:
	wtg_tree_release(dst);
	return -ENOMEM;
}

uint32_t wtg_dir_seek(const struct wtg_dir *dir, uint64_t pos)
{
	uint32_t lo = 0, hi = dir->count;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (dir->entries[mid]->pos < pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void wtg_tree_unlink(struct wtg_tree *tree, struct wtg_inode *dir, struct wtg_dentry *de)
{
	struct wtg_dir *d = dir->dir;
	struct wtg_inode *child = de->inode;

	for (struct wtg_dentry **p = &d->buckets[de->hash & (d->nbuckets - 1)]; *p;
	     p = &(*p)->bucket_next) {
		if (*p == de) {
			*p = de->bucket_next;
			break;
		}
	}
	uint32_t i = wtg_dir_seek(d, de->pos);
	if (i < d->count && d->entries[i] == de) {
		memmove(&d->entries[i], &d->entries[i + 1], (d->count - i - 1) * sizeof(de));
		d->count--;
	}
	for (struct wtg_dentry **p = &child->first_name; *p; p = &(*p)->alias_next) {
		if (*p == de) {
			*p = de->alias_next;
			break;
		}
	}
	child->parent = child->first_name ? child->first_name->parent : NULL;
	child->nlink--;
	child->unlinks++;
	if (child->dir)
		dir->nsubdirs--;
	/* the DOS name goes with the name it shortens */
	wtg_dentry_set_dos_name(de, NULL);
	if (__atomic_load_n(&child->last_name, __ATOMIC_RELAXED) == de)
		__atomic_store_n(&child->last_name, NULL, __ATOMIC_RELAXED);
	free(de->name);
	free(de);
	(void)tree;
}

int wtg_dentry_set_dos_name(struct wtg_dentry *de, const char *dos)
{
	char *copy = NULL;

	if (dos && !(copy = strdup(dos)))
		return -ENOMEM;
	if (copy && !de->dos_name)
		de->inode->nlink_extra++;
	else if (!copy && de->dos_name && de->inode->nlink_extra)
		de->inode->nlink_extra--;
	free(de->dos_name);
	de->dos_name = copy;
	return 0;
}

const char *wtg_dentry_dos_name(const struct wtg_dentry *de)
{
	return de->dos_name;
}

bool wtg_inode_dos_names_vary(const struct wtg_inode *inode)
{
	const struct wtg_dentry *first = inode->first_name;

	if (!first)
		return false;
	for (const struct wtg_dentry *de = first->alias_next; de; de = de->alias_next)
		if (!de->dos_name != !first->dos_name ||
		    (de->dos_name && strcmp(de->dos_name, first->dos_name)))
			return true;
	return false;
}

void wtg_inode_note_name(struct wtg_dentry *de)
{
	/* a store only when it changes: most lookups find it noted already */
	if (__atomic_load_n(&de->inode->last_name, __ATOMIC_RELAXED) != de)
		__atomic_store_n(&de->inode->last_name, de, __ATOMIC_RELAXED);
}

struct wtg_dentry *wtg_inode_current_name(const struct wtg_inode *inode)
{
	struct wtg_dentry *de = __atomic_load_n(&inode->last_name, __ATOMIC_RELAXED);

	return de ? de : inode->first_name;
}

void wtg_inode_remove_stream(struct wtg_inode *inode, const char *name)
{
	for (uint32_t i = 0; i < inode->nstreams; i++) {
		struct wtg_stream *s = &inode->streams[i];
		if (name ? !s->name || strcmp(s->name, name) : s->name != NULL)
			continue;
		free(s->name);
		wtg_stream_sum_free(s->sum);
		memmove(s, s + 1, (inode->nstreams - i - 1) * sizeof(*s));
		inode->nstreams--;
		return;
	}
}

static uint32_t sd_hash(const uint8_t *p, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

uint32_t wtg_tree_intern_sd(struct wtg_tree *tree, const void *data, size_t len)
{
	uint32_t h = sd_hash(data, len);

	if (tree->sd_nbuckets) {
		for (uint32_t i = tree->sd_buckets[h & (tree->sd_nbuckets - 1)]; i != WTG_NO_SD;
		     i = tree->sds[i].bucket_next)
			if (tree->sds[i].hash == h && tree->sds[i].len == len &&
			    !memcmp(tree->sds[i].data, data, len))
				return i;
	}
	if (tree->nsds == tree->sds_cap) {
		uint32_t cap = tree->sds_cap ? tree->sds_cap * 2 : 64;
		struct wtg_sd *v = realloc(tree->sds, cap * sizeof(*v));
		if (!v)
			return WTG_NO_SD;
		tree->sds = v;
		tree->sds_cap = cap;
	}
	if (tree->nsds >= tree->sd_nbuckets) {
		uint32_t nb = tree->sd_nbuckets ? tree->sd_nbuckets * 2 : 64;
		uint32_t *b = malloc(nb * sizeof(*b));
		if (!b)
			return WTG_NO_SD;
		memset(b, 0xFF, nb * sizeof(*b));
		for (uint32_t i = 0; i < tree->nsds; i++) {
			tree->sds[i].bucket_next = b[tree->sds[i].hash & (nb - 1)];
			b[tree->sds[i].hash & (nb - 1)] = i;
		}
		free(tree->sd_buckets);
		tree->sd_buckets = b;
		tree->sd_nbuckets = nb;
	}
	struct wtg_sd *sd = &tree->sds[tree->nsds];
	sd->data = malloc(len ? len : 1);
	if (!sd->data)
		return WTG_NO_SD;
	memcpy(sd->data, data, len);
	sd->len = (uint32_t)len;
	sd->hash = h;
	sd->bucket_next = tree->sd_buckets[h & (tree->sd_nbuckets - 1)];
	tree->sd_buckets[h & (tree->sd_nbuckets - 1)] = tree->nsds;
	return tree->nsds++;
}

struct wtg_stream *wtg_inode_add_stream(struct wtg_inode *inode, const char *name, uint64_t size,
					struct wtg_blob *blob)
{
	struct wtg_stream *v = realloc(inode->streams, (inode->nstreams + 1) * sizeof(*v));
	char *copy = NULL;

	if (!v)
		return NULL;
	inode->streams = v;
	if (name && !(copy = strdup(name)))
		return NULL;
	uint32_t at = inode->nstreams;
	if (!name) {
		memmove(&v[1], &v[0], inode->nstreams * sizeof(*v));
		at = 0;
	}
	v[at] = (struct wtg_stream){.name = copy, .size = size, .blob = blob, .base_size = size};
	inode->nstreams++;
	return &v[at];
}

struct wtg_inode *wtg_tree_inode(const struct wtg_tree *tree, uint64_t ino)
{
	if (ino == 0 || ino > tree->ninodes)
		return NULL;
	return tree->inodes[ino - 1];
}

struct wtg_dentry *wtg_tree_lookup(const struct wtg_tree *tree, const struct wtg_inode *dir,
				   const char *name, size_t len)
{
	const struct wtg_dir *d = dir->dir;
	struct wtg_dentry *de, *folded = NULL;

	if (!d || !d->nbuckets)
		return NULL;
	uint32_t hash = wtg_name_hash(name, len);
	for (de = d->buckets[hash & (d->nbuckets - 1)]; de; de = de->bucket_next) {
		if (de->hash != hash)
			continue;
		if (de->name_len == len && !memcmp(de->name, name, len))
			return de;
		if (!folded && wtg_name_equal_ci(de->name, de->name_len, name, len))
			folded = de;
	}
	(void)tree;
	return folded;
}

const struct wtg_sd *wtg_tree_sd(const struct wtg_tree *tree, uint32_t id)
{
	return id < tree->nsds ? &tree->sds[id] : NULL;
}

/* Lazy reparse data is the one thing a loaded tree fills in later: once,
 * under this lock, the pointer published last. */
static pthread_mutex_t reparse_lock = PTHREAD_MUTEX_INITIALIZER;

const uint8_t *wtg_inode_reparse(const struct wtg_tree *tree, const struct wtg_inode *inode,
				 uint32_t *len_ret)
{
	struct wtg_inode *in = (struct wtg_inode *)inode; /* a cache, filled once */
	uint8_t *r = __atomic_load_n(&in->reparse, __ATOMIC_ACQUIRE);

	if (!r && __atomic_load_n(&in->reparse_blob, __ATOMIC_ACQUIRE) && tree->source &&
	    tree->source->ops->load_reparse) {
		pthread_mutex_lock(&reparse_lock);
		if (!in->reparse && in->reparse_blob) {
			tree->source->ops->load_reparse(tree->source, in);
			/* a failure is logged once: do not read it again */
			__atomic_store_n(&in->reparse_blob, NULL, __ATOMIC_RELEASE);
		}
		r = in->reparse;
		pthread_mutex_unlock(&reparse_lock);
	}
	*len_ret = r ? in->reparse_len : 0;
	return r;
}

bool wtg_inode_is_dir(const struct wtg_inode *inode)
{
	return inode->dir != NULL;
}

bool wtg_inode_is_link(const struct wtg_inode *inode)
{
	return (inode->attributes & NTFS_ATTR_REPARSE_POINT) &&
	       (inode->reparse_tag == NTFS_REPARSE_TAG_SYMLINK ||
		inode->reparse_tag == NTFS_REPARSE_TAG_MOUNT_POINT ||
		inode->reparse_tag == NTFS_REPARSE_TAG_LX_SYMLINK);
}

const uint8_t *wtg_inode_ea(const struct wtg_inode *inode, uint32_t *len_ret)
{
	*len_ret = inode->ea ? inode->ea_len : 0;
	return inode->ea;
}

unsigned wtg_inode_posix_type(const struct wtg_inode *inode, uint32_t *major_ret,
			      uint32_t *minor_ret)
{
	uint32_t major = 0, minor = 0;
	unsigned type = S_IFREG;

	if (wtg_inode_is_link(inode))
		return S_IFLNK; /* junctions too, which are directories */
	if (inode->dir)
		return S_IFDIR;
	if (inode->attributes & NTFS_ATTR_REPARSE_POINT) {
		switch (inode->reparse_tag) {
		case NTFS_REPARSE_TAG_LX_FIFO:
			type = S_IFIFO;
			break;
		case NTFS_REPARSE_TAG_AF_UNIX:
			type = S_IFSOCK;
			break;
		case NTFS_REPARSE_TAG_LX_CHR:
			type = S_IFCHR;
			break;
		case NTFS_REPARSE_TAG_LX_BLK:
			type = S_IFBLK;
			break;
		}
	}
	if ((type == S_IFCHR || type == S_IFBLK) &&
	    wtg_ea_wsl_dev(inode->ea, inode->ea_len, &major, &minor) < 0)
		major = minor = 0;
	if (major_ret)
		*major_ret = major;
	if (minor_ret)
		*minor_ret = minor;
	return type;
}

struct wtg_stream *wtg_inode_data(const struct wtg_inode *inode)
{
	return inode->nstreams && !inode->streams[0].name ? &inode->streams[0] : NULL;
}

struct wtg_stream *wtg_inode_named_stream(const struct wtg_inode *inode, const char *name)
{
	for (uint32_t i = 0; i < inode->nstreams; i++)
		if (inode->streams[i].name && !strcmp(inode->streams[i].name, name))
			return &inode->streams[i];
	return NULL;
}

long wtg_tree_read(const struct wtg_tree *tree, const struct wtg_stream *stream, void *buf,
		   size_t size, uint64_t off)
{
	if (off >= stream->base_size)
		return 0;
	if (size > stream->base_size - off)
		size = (size_t)(stream->base_size - off);
	if (size == 0)
		return 0;
	if (!stream->blob)
		return -EIO;
	int ret = wtg_source_read(tree->source, stream->blob, buf, size, off);
	return ret < 0 ? ret : (long)size;
}

/* The chain root..@inode (root excluded); returns its length or -ENAMETOOLONG. */
#define MAX_DEPTH 512
static int ancestry(const struct wtg_inode *inode, const struct wtg_inode **chain)
{
	int n = 0;

	for (const struct wtg_inode *i = inode; i && i->ino != WTG_ROOT_INO; i = i->parent) {
		if (n == MAX_DEPTH)
			return -ENAMETOOLONG;
		chain[n++] = i;
	}
	for (int a = 0, b = n - 1; a < b; a++, b--) {
		const struct wtg_inode *t = chain[a];
		chain[a] = chain[b];
		chain[b] = t;
	}
	return n;
}

int wtg_tree_path(const struct wtg_tree *tree, const struct wtg_inode *inode, char *buf,
		  size_t size)
{
	const struct wtg_inode *chain[MAX_DEPTH];
	int n = ancestry(inode, chain);
	size_t o = 0;

	(void)tree;
	if (n < 0)
		return n;
	if (size == 0)
		return -ENAMETOOLONG;
	buf[0] = '\0';
	for (int i = 0; i < n; i++) {
		const struct wtg_dentry *de = chain[i]->first_name;
		if (o + de->name_len + 2 > size)
			return -ENAMETOOLONG;
		if (i)
			buf[o++] = '/';
		memcpy(buf + o, de->name, de->name_len);
		o += de->name_len;
		buf[o] = '\0';
	}
	return 0;
}

/*
 * Symlink targets.  Windows resolves a link's target lexically from the
 * directory of the name it went through and clamps '..' at the volume
 * root; the kernel resolves ours component by component.  So the text must
 * never climb above the mount and must leave no '..' after a name (a '..'
 * after a component that is itself a symlink would climb from wherever that
 * link leads): a run of '..' no longer than the directory is deep, then
 * names.  The text depends on the directory it is read from; a caller that
 * cannot say which (FUSE asks per inode) gets the one from the shallowest
 * name's directory, which stays inside from every name.
 */
struct comp {
	const struct wtg_inode *inode; /* NULL where the tree has no such name */
	const char *name;
	size_t len;
	bool pushed; /* a name of the target, not a directory above the link */
};

/* The depth of directory @dir below the root (0: the root, or no directory). */
static int depth_of(const struct wtg_inode *dir)
{
	int n = 0;

	for (const struct wtg_inode *i = dir; i && i->ino != WTG_ROOT_INO; i = i->parent)
		if (++n > MAX_DEPTH)
			return -ENAMETOOLONG;
	return n;
}

bool wtg_inode_names_in_one_dir(const struct wtg_inode *inode)
{
	for (const struct wtg_dentry *de = inode->first_name; de; de = de->alias_next)
		if (de->parent != inode->parent)
			return false;
	return true;
}

/* The directory a link's target is read from when the caller names none
 * (or one that holds no name of it): the shallowest of its names'. */
static const struct wtg_inode *link_home(const struct wtg_inode *inode,
					 const struct wtg_inode *dir)
{
	const struct wtg_inode *best = inode->parent;
	int best_depth = depth_of(best);

	for (const struct wtg_dentry *de = inode->first_name; de; de = de->alias_next) {
		if (dir && de->parent == dir)
			return dir;
		int d = depth_of(de->parent);
		if (d >= 0 && (best_depth < 0 || d < best_depth)) {
			best_depth = d;
			best = de->parent;
		}
	}
	return best;
}

static int push_name(const struct wtg_tree *tree, struct comp *st, int *n, const char *p,
		     size_t len)
{
	if (*n == MAX_DEPTH)
		return -ENAMETOOLONG;
	const struct wtg_inode *dir = *n ? st[*n - 1].inode : wtg_tree_inode(tree, WTG_ROOT_INO);
	const struct wtg_dentry *de = dir ? wtg_tree_lookup(tree, dir, p, len) : NULL;
	st[*n] = (struct comp){.inode = de ? de->inode : NULL,
			       .name = de ? de->name : p,
			       .len = de ? de->name_len : len,
			       .pushed = true};
	(*n)++;
	return 0;
}

static int emit(char *buf, size_t size, size_t *o, const char *s, size_t len)
{
	if (*o + len + 1 > size)
		return -ENAMETOOLONG;
	memcpy(buf + *o, s, len);
	*o += len;
	buf[*o] = '\0';
	return 0;
}

/* True when the relative @target is already in the form this file makes
 * (see above): a run of at most @depth '..', then names; no empty or '.'
 * component, no '..' after a name. */
static bool plain_inside(const char *target, int depth)
{
	bool names = false;

	for (const char *p = target;;) {
		size_t len = strcspn(p, "/");
		bool dotdot = len == 2 && p[0] == '.' && p[1] == '.';
		if (!len || (len == 1 && p[0] == '.') || (dotdot && (names || --depth < 0)))
			return false;
		names = names || !dotdot;
		if (!p[len])
			return true;
		p += len + 1;
	}
}

long wtg_tree_readlink(const struct wtg_tree *tree, const struct wtg_inode *inode,
		       const struct wtg_inode *dir, char *buf, size_t size)
{
	uint32_t rlen;
	const uint8_t *rp = wtg_inode_is_link(inode) ? wtg_inode_reparse(tree, inode, &rlen) : NULL;

	if (!rp)
		return -EINVAL;
	return wtg_tree_link_text(tree, link_home(inode, dir), rp, rlen, inode->reparse_made_here,
				  buf, size);
}

long wtg_tree_link_text(const struct wtg_tree *tree, const struct wtg_inode *home,
			const uint8_t *rp, uint32_t rlen, bool made_here, char *buf,
			size_t size)
{
	char target[4096];
	bool relative;
	struct comp st[MAX_DEPTH];
	int n = 0, ups = 0, first = 0, ret;
	size_t o = 0;

	ret = wtg_reparse_link_target(rp, rlen, &relative, target, sizeof(target));
	if (ret < 0)
		return ret;
	if (!target[0])
		return -EINVAL;
	int depth = depth_of(home);
	if (depth < 0)
		return depth;
	if (wtg_reparse_is_lx_symlink(rp, rlen) &&
	    (made_here || (relative && plain_inside(target, depth)))) {
		size_t len = strlen(target);
		if (len + 1 > size)
			return -ENAMETOOLONG;
		memcpy(buf, target, len + 1);
		return (long)len;
	}

	/* the chain root..home: what a relative target climbs */
	for (const struct wtg_inode *d = home; d && d->ino != WTG_ROOT_INO; d = d->parent)
		st[depth - 1 - n++] = (struct comp){.inode = d,
						    .name = d->first_name->name,
						    .len = d->first_name->name_len,
						    .pushed = false};
	if (!relative)
		n = 0; /* from the root */
	for (char *p = target; *p;) {
		char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len == 2 && p[0] == '.' && p[1] == '.') {
			if (n > 0)
				n--; /* at the root: stays there */
		} else if (len && !(len == 1 && p[0] == '.')) {
			if ((ret = push_name(tree, st, &n, p, len)) < 0)
				return ret;
		}
		p += len;
		if (*p == '/')
			p++;
	}
	if (relative) {
		/* the text as the link holds it, normalised: the directories
		 * above home it climbs, then its names */
		while (first < n && !st[first].pushed)
			first++;
	} else {
		/* what the path shares with root..home, then up and down */
		const struct wtg_inode *chain[MAX_DEPTH];
		for (int k = depth; k > 0; k--)
			chain[k - 1] = k == depth ? home : chain[k]->parent;
		while (first < n && first < depth && st[first].inode == chain[first])
			first++;
	}
	ups = depth - first;
	buf[0] = '\0';
	for (int i = 0; i < ups; i++)
		if ((ret = emit(buf, size, &o, i ? "/.." : "..", i ? 3 : 2)) < 0)
			return ret;
	for (int i = first; i < n; i++)
		if ((ret = emit(buf, size, &o, "/", o ? 1 : 0)) < 0 ||
		    (ret = emit(buf, size, &o, st[i].name, st[i].len)) < 0)
			return ret;
	if (o == 0 && (ret = emit(buf, size, &o, ".", 1)) < 0)
		return ret;
	return (long)o;
}
