/*
 * The diff engine: which paths changed between two versions of a delta's
 * tree, and how, computed from the records of the layers between them.
 *
 * 1. Keys: every key a layer on the path FROM -> common ancestor -> TO
 *    records (wtg_store_changes), sorted and made unique per table.
 * 2. Inodes: those the keys name, plus the inode each changed name points
 *    at in either version.  Nothing else can differ.
 * 3. Per inode, in each version: does it exist, its names (the base tree's
 *    still standing, plus the names layers gave it), their paths (directory
 *    paths cached per version), and only when the path filter keeps it, its
 *    metadata and streams; the data comparison looks at the changed chunk
 *    slots alone (a changed stream record widens it to the stream's slots).
 * 4. Entries: A/D per name, M/R/T per inode; a D and an A of one path merge.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wtgfs/base_index.h"
#include "wtgfs/diff.h"
#include "wtgfs/log.h"
#include "wtgfs/mem.h"
#include "wtgfs/names.h"
#include "wtgfs/ntfs.h"
#include "wtgfs/reparse.h"
#include "wtgfs/store.h"
#include "wtgfs/tree.h"

#define CHUNK WTG_STORE_CHUNK_SIZE

struct name_key {
	uint64_t dir;
	char *name;
};

struct stream_key {
	uint64_t ino;
	char *name;
	uint64_t index; /* extents only */
};

/* Paths of directories in one version, by inode: open addressing. */
struct path_map {
	uint64_t *keys;
	char **paths;
	size_t cap, count;
};

/* The names of inodes in one version, by inode: open addressing. */
struct names;
static void names_release(struct names *ns);
struct names_map {
	uint64_t *keys;
	struct names **vals;
	size_t cap, count;
};

static void names_map_release(struct names_map *m);

struct version {
	struct wtg_store_version v;
	struct path_map dirs;
	struct names_map names; /* each inode's names are looked up once */
	/* the last inode record looked up: whether it exists, then its side */
	uint64_t last_ino;
	enum wtg_store_state last_state;
	struct wtg_store_inode last;
};

struct wtg_diff {
	struct wtg_store *store;
	struct wtg_base *base; /* the delta's index of its base, or the image loaded */
	struct version from, to;
	char *from_name, *to_name;
	char **paths;
	size_t npaths;
	bool times;
	uint64_t *inode_keys;
	size_t ninode_keys, inode_keys_cap;
	struct name_key *names;
	size_t nnames, names_cap;
	struct stream_key *streams, *extents;
	size_t nstreams, streams_cap, nextents, extents_cap;
	int err; /* from the collecting callback */
	uint8_t *chunk;
	int (*base_read)(void *ctx, const uint8_t *key, size_t key_len, void *buf, size_t len,
			 uint64_t off);
	void *base_read_ctx;
};

/* ---- small containers ---- */

static int push(void **arr, size_t *n, size_t *cap, size_t size, const void *item)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		void *p = realloc(*arr, nc * size);
		if (!p)
			return -ENOMEM;
		*arr = p;
		*cap = nc;
	}
	memcpy((char *)*arr + *n * size, item, size);
	(*n)++;
	return 0;
}

static int strv_push(char ***v, size_t *n, const char *s)
{
	char **p = realloc(*v, (*n + 1) * sizeof(*p));

	if (!p)
		return -ENOMEM;
	*v = p;
	if (!(p[*n] = strdup(s)))
		return -ENOMEM;
	(*n)++;
	return 0;
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp_name_key(const void *a, const void *b)
{
	const struct name_key *x = a, *y = b;
	if (x->dir != y->dir)
		return x->dir < y->dir ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int cmp_stream_key(const void *a, const void *b)
{
	const struct stream_key *x = a, *y = b;
	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	int c = strcmp(x->name, y->name);
	if (c)
		return c;
	return x->index < y->index ? -1 : x->index > y->index;
}

static size_t uniq_u64(uint64_t *v, size_t n)
{
	size_t k = 0;

	if (n < 2)
		return n;
	qsort(v, n, sizeof(*v), cmp_u64);
	for (size_t i = 0; i < n; i++)
		if (!k || v[k - 1] != v[i])
			v[k++] = v[i];
	return k;
}

static size_t uniq_names(struct name_key *v, size_t n)
{
	size_t k = 0;

	if (n < 2)
		return n;
	qsort(v, n, sizeof(*v), cmp_name_key);
	for (size_t i = 0; i < n; i++) {
		if (k && !cmp_name_key(&v[k - 1], &v[i]))
			free(v[i].name);
		else
			v[k++] = v[i];
	}
	return k;
}

static size_t uniq_streams(struct stream_key *v, size_t n)
{
	size_t k = 0;

	if (n < 2)
		return n;
	qsort(v, n, sizeof(*v), cmp_stream_key);
	for (size_t i = 0; i < n; i++) {
		if (k && !cmp_stream_key(&v[k - 1], &v[i]))
			free(v[i].name);
		else
			v[k++] = v[i];
	}
	return k;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

static char **path_map_find(struct path_map *m, uint64_t key)
{
	if (!m->cap)
		return NULL;
	for (size_t i = mix(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		if (!m->keys[i])
			return NULL;
		if (m->keys[i] == key)
			return &m->paths[i];
	}
}

static int path_map_put(struct path_map *m, uint64_t key, char *path)
{
	if ((m->count + 1) * 2 > m->cap) {
		struct path_map n = {.cap = m->cap ? m->cap * 2 : 256};
		n.keys = calloc(n.cap, sizeof(*n.keys));
		n.paths = calloc(n.cap, sizeof(*n.paths));
		if (!n.keys || !n.paths) {
			free(n.keys);
			free(n.paths);
			return -ENOMEM;
		}
		for (size_t i = 0; i < m->cap; i++)
			if (m->keys[i])
				path_map_put(&n, m->keys[i], m->paths[i]);
		free(m->keys);
		free(m->paths);
		*m = n;
	}
	size_t i = mix(key) & (m->cap - 1);
	while (m->keys[i])
		i = (i + 1) & (m->cap - 1);
	m->keys[i] = key;
	m->paths[i] = path;
	m->count++;
	return 0;
}

static void path_map_release(struct path_map *m)
{
	for (size_t i = 0; i < m->cap; i++)
		if (m->keys[i])
			free(m->paths[i]);
	free(m->keys);
	free(m->paths);
	memset(m, 0, sizeof(*m));
}

/* ---- opening ---- */

static int collect(void *arg, const struct wtg_store_change *c)
{
	struct wtg_diff *d = arg;
	int r = 0;

	switch (c->kind) {
	case WTG_STORE_KEY_INODE:
		r = push((void **)&d->inode_keys, &d->ninode_keys, &d->inode_keys_cap,
			 sizeof(uint64_t), &c->ino);
		break;
	case WTG_STORE_KEY_NAME: {
		struct name_key k = {c->ino, strdup(c->name)};
		r = k.name ? push((void **)&d->names, &d->nnames, &d->names_cap, sizeof(k), &k)
			   : -ENOMEM;
		if (r)
			free(k.name);
		break;
	}
	case WTG_STORE_KEY_STREAM:
	case WTG_STORE_KEY_EXTENT: {
		struct stream_key k = {c->ino, strdup(c->name),
				       c->kind == WTG_STORE_KEY_EXTENT ? c->index : 0};
		if (!k.name)
			return -ENOMEM;
		r = c->kind == WTG_STORE_KEY_STREAM
			? push((void **)&d->streams, &d->nstreams, &d->streams_cap, sizeof(k), &k)
			: push((void **)&d->extents, &d->nextents, &d->extents_cap, sizeof(k), &k);
		if (r)
			free(k.name);
		break;
	}
	}
	return r;
}

/* "\\" as "/", no leading or trailing "/": the form of the paths we print. */
static char *normalize_path(const char *p)
{
	while (*p == '/' || *p == '\\')
		p++;
	char *s = strdup(p);
	if (!s)
		return NULL;
	for (char *q = s; *q; q++)
		if (*q == '\\')
			*q = '/';
	size_t n = strlen(s);
	while (n && s[n - 1] == '/')
		s[--n] = 0;
	if (!strcmp(s, "."))
		s[0] = 0;
	return s;
}

int wtg_diff_open(const char *delta, const struct wtg_diff_options *opt, struct wtg_diff **diff_ret)
{
	struct wtg_store_options so = {.read_only = true};
	struct wtg_diff *d = calloc(1, sizeof(*d));
	int r;

	if (!d)
		return -ENOMEM;
	d->times = opt->times;
	d->base_read = opt->base_read;
	d->base_read_ctx = opt->base_read_ctx;
	if (!(d->chunk = malloc(CHUNK))) {
		free(d);
		return -ENOMEM;
	}
	r = wtg_store_open(delta, &so, &d->store);
	if (r) {
		free(d->chunk);
		free(d);
		return r;
	}
	/* rows of the journal are data HEAD holds that its records do not show
	 * yet (a crash, or a mount writing it); diff reads records */
	uint64_t rows;
	if (wtg_store_journal_count(d->store, &rows) == 0 && rows)
		wtg_warning("'%s': %" PRIu64 " small fsynced write(s) wait in its journal and do not "
			    "show in this diff (a read-write mount folds them in; unmount it, or "
			    "mount it once)",
			    delta, rows);
	if (opt->from)
		d->from_name = strdup(opt->from);
	else
		r = wtg_store_last_snapshot(d->store, &d->from_name);
	if (!r && !(d->to_name = strdup(opt->to ? opt->to : "HEAD")))
		r = -ENOMEM;
	if (!r && !d->from_name)
		r = -ENOMEM;
	if (!r)
		r = wtg_store_version_open(d->store, d->from_name, &d->from.v);
	if (!r)
		r = wtg_store_version_open(d->store, d->to_name, &d->to.v);
	for (size_t i = 0; !r && i < opt->npaths; i++) {
		char *p = normalize_path(opt->paths[i]);
		if (!p || strv_push(&d->paths, &d->npaths, p))
			r = -ENOMEM;
		free(p);
	}
	if (!r)
		r = wtg_base_open(d->store, opt->base_path, opt->source, &d->base);
	if (r) {
		wtg_diff_free(d);
		return r;
	}
	*diff_ret = d;
	return 0;
}

void wtg_diff_free(struct wtg_diff *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->nnames; i++)
		free(d->names[i].name);
	for (size_t i = 0; i < d->nstreams; i++)
		free(d->streams[i].name);
	for (size_t i = 0; i < d->nextents; i++)
		free(d->extents[i].name);
	free(d->names);
	free(d->streams);
	free(d->extents);
	free(d->inode_keys);
	path_map_release(&d->from.dirs);
	path_map_release(&d->to.dirs);
	names_map_release(&d->from.names);
	names_map_release(&d->to.names);
	for (struct version *v = &d->from; v; v = v == &d->from ? &d->to : NULL)
		if (v->last_ino && v->last_state == WTG_STORE_PRESENT)
			wtg_store_inode_release(&v->last);
	wtg_store_version_release(&d->from.v);
	wtg_store_version_release(&d->to.v);
	wtg_base_free(d->base);
	if (d->store)
		wtg_store_close(d->store);
	strv_free(d->paths, d->npaths);
	free(d->from_name);
	free(d->to_name);
	free(d->chunk);
	free(d);
}

const char *wtg_diff_from(const struct wtg_diff *d)
{
	return d->from_name;
}

const char *wtg_diff_to(const struct wtg_diff *d)
{
	return d->to_name;
}

/* ---- resolving in one version ---- */

static int base_inode(struct wtg_diff *d, uint64_t ino, const struct wtg_base_inode **in_ret)
{
	return wtg_base_inode(d->base, ino, in_ret);
}

/* The inode the name (@dir, @name) holds in @ver, 0 for none. */
static int name_at(struct wtg_diff *d, struct version *ver, uint64_t dir, const char *name,
		   uint64_t *ino_ret)
{
	enum wtg_store_state state;
	int r = wtg_store_get_name_at(d->store, &ver->v, dir, name, &state, ino_ret);

	if (r || state != WTG_STORE_BASE)
		return r;
	/* a record replaces only the name spelled exactly so */
	return wtg_base_lookup(d->base, dir, name, ino_ret, NULL);
}

/* The topmost record of inode @ino in @ver (kept until the next call). */
static int inode_at(struct wtg_diff *d, struct version *ver, uint64_t ino,
		    enum wtg_store_state *state_ret, const struct wtg_store_inode **si_ret)
{
	if (ver->last_ino != ino) {
		if (ver->last_ino && ver->last_state == WTG_STORE_PRESENT)
			wtg_store_inode_release(&ver->last);
		ver->last_ino = 0;
		int r = wtg_store_get_inode_at(d->store, &ver->v, ino, &ver->last_state, &ver->last);
		if (r)
			return r;
		ver->last_ino = ino;
	}
	*state_ret = ver->last_state;
	*si_ret = &ver->last;
	return 0;
}

static int exists_at(struct wtg_diff *d, struct version *ver, uint64_t ino, bool *exists)
{
	const struct wtg_store_inode *si;
	enum wtg_store_state state;
	int r = inode_at(d, ver, ino, &state, &si);

	if (r)
		return r;
	const struct wtg_base_inode *in = NULL;
	if (state == WTG_STORE_BASE && (r = base_inode(d, ino, &in)))
		return r;
	*exists = state == WTG_STORE_PRESENT || in;
	return 0;
}

/* A name of an inode in one version, and its DOS name when the lookup
 * that found the name told it already (@dos_known). */
struct name_entry {
	uint64_t dir;
	char *name;
	bool dos_known;
	char *dos;
};

struct names {
	struct name_entry *v;
	size_t n, cap;
};

static void names_release(struct names *ns)
{
	for (size_t i = 0; i < ns->n; i++) {
		free(ns->v[i].name);
		free(ns->v[i].dos);
	}
	free(ns->v);
	memset(ns, 0, sizeof(*ns));
}

static int names_add(struct names *ns, uint64_t dir, const char *name, bool dos_known,
		     const char *dos)
{
	for (size_t i = 0; i < ns->n; i++)
		if (ns->v[i].dir == dir && !strcmp(ns->v[i].name, name))
			return 0;
	if (ns->n == ns->cap) {
		size_t cap = ns->cap ? ns->cap * 2 : 2;
		struct name_entry *p = realloc(ns->v, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		ns->v = p;
		ns->cap = cap;
	}
	struct name_entry *e = &ns->v[ns->n];
	*e = (struct name_entry){dir, strdup(name), dos_known, dos ? strdup(dos) : NULL};
	if (!e->name || (dos && !e->dos)) {
		free(e->name);
		free(e->dos);
		return -ENOMEM;
	}
	ns->n++;
	return 0;
}

static int layer_name(void *arg, uint64_t dir, const char *name)
{
	return names_add(arg, dir, name, false, NULL);
}

/* Every name of @ino in @ver. */
static int names_compute(struct wtg_diff *d, struct version *ver, uint64_t ino, struct names *ns)
{
	const struct wtg_base_inode *in;
	int r = base_inode(d, ino, &in);

	memset(ns, 0, sizeof(*ns));
	for (uint32_t i = 0; !r && in && i < in->nnames; i++) {
		enum wtg_store_state state;
		uint64_t now = 0;
		char *dos = NULL;
		r = wtg_store_get_name_dos_at(d->store, &ver->v, in->names[i].dir,
					      in->names[i].name, &state, &now, &dos);
		/* no record: the base's own name, which holds @ino, with the
		 * base's DOS name; a record of it: the record's */
		if (!r && state == WTG_STORE_BASE)
			r = names_add(ns, in->names[i].dir, in->names[i].name, true,
				      in->names[i].dos);
		else if (!r && now == ino)
			r = names_add(ns, in->names[i].dir, in->names[i].name, true, dos);
		free(dos);
	}
	if (!r)
		r = wtg_store_names_of_at(d->store, &ver->v, ino, layer_name, ns);
	if (r)
		names_release(ns);
	return r;
}

static struct names **names_slot(struct names_map *m, uint64_t key)
{
	size_t i = mix(key) & (m->cap - 1);

	while (m->keys[i] && m->keys[i] != key)
		i = (i + 1) & (m->cap - 1);
	return &m->vals[i];
}

/* Every name of @ino in @ver, computed once per version (*ns_ret stays
 * valid as long as the diff). */
static int names_at(struct wtg_diff *d, struct version *ver, uint64_t ino,
		    const struct names **ns_ret)
{
	struct names_map *m = &ver->names;

	if (m->cap) {
		for (size_t i = mix(ino) & (m->cap - 1); m->keys[i]; i = (i + 1) & (m->cap - 1))
			if (m->keys[i] == ino) {
				*ns_ret = m->vals[i];
				return 0;
			}
	}
	if ((m->count + 1) * 2 > m->cap) {
		struct names_map n = {.cap = m->cap ? m->cap * 2 : 256};
		n.keys = calloc(n.cap, sizeof(*n.keys));
		n.vals = calloc(n.cap, sizeof(*n.vals));
		if (!n.keys || !n.vals) {
			free(n.keys);
			free(n.vals);
			return -ENOMEM;
		}
		for (size_t i = 0; i < m->cap; i++)
			if (m->keys[i]) {
				size_t j = mix(m->keys[i]) & (n.cap - 1);
				while (n.keys[j])
					j = (j + 1) & (n.cap - 1);
				n.keys[j] = m->keys[i];
				n.vals[j] = m->vals[i];
			}
		n.count = m->count;
		free(m->keys);
		free(m->vals);
		*m = n;
	}
	struct names *ns = malloc(sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	int r = names_compute(d, ver, ino, ns);
	if (r) {
		free(ns);
		return r;
	}
	struct names **slot = names_slot(m, ino);
	m->keys[slot - m->vals] = ino;
	*slot = ns;
	m->count++;
	*ns_ret = ns;
	return 0;
}

static void names_map_release(struct names_map *m)
{
	for (size_t i = 0; i < m->cap; i++)
		if (m->keys[i]) {
			names_release(m->vals[i]);
			free(m->vals[i]);
		}
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

static int dir_path(struct wtg_diff *d, struct version *ver, uint64_t dir, int depth,
		    const char **path_ret);

static int path_of(struct wtg_diff *d, struct version *ver, uint64_t dir, const char *name,
		   int depth, char **path_ret)
{
	const char *parent;
	int r = dir_path(d, ver, dir, depth + 1, &parent);

	if (r)
		return r;
	if (asprintf(path_ret, "%s%s%s", parent, *parent ? "/" : "", name) < 0)
		return -ENOMEM;
	return 0;
}

static int dir_path(struct wtg_diff *d, struct version *ver, uint64_t dir, int depth,
		    const char **path_ret)
{
	static const char root[] = "";
	const struct names *ns;
	char *path = NULL;

	if (dir == WTG_ROOT_INO) {
		*path_ret = root;
		return 0;
	}
	char **hit = path_map_find(&ver->dirs, dir);
	if (hit) {
		*path_ret = *hit;
		return 0;
	}
	int r = depth > 4096 ? -ELOOP : names_at(d, ver, dir, &ns);
	if (r)
		return r;
	if (ns->n)
		r = path_of(d, ver, ns->v[0].dir, ns->v[0].name, depth, &path);
	else if (asprintf(&path, "(directory %llu)", (unsigned long long)dir) < 0)
		r = -ENOMEM;
	if (!r && (r = path_map_put(&ver->dirs, dir, path)))
		free(path);
	if (!r)
		*path_ret = path;
	return r;
}

/* ---- one version of an inode ---- */

static void side_release(struct wtg_diff_side *s)
{
	free(s->sd);
	free(s->reparse);
	free(s->reparse_target);
	free(s->dos_name);
	free(s->object_id);
	free(s->ea);
	for (size_t i = 0; i < s->nstreams; i++)
		free(s->streams[i].name);
	free(s->streams);
	strv_free(s->links, s->nlinks);
	memset(s, 0, sizeof(*s));
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

static struct wtg_diff_stream *find_side_stream(struct wtg_diff_side *s, const char *name)
{
	for (size_t i = 0; i < s->nstreams; i++)
		if (!strcmp(s->streams[i].name, name))
			return &s->streams[i];
	return NULL;
}

static int side_set_stream(struct wtg_diff_side *s, const char *name, uint64_t size)
{
	if (!*name) {
		s->size = size;
		return 0;
	}
	struct wtg_diff_stream *st = find_side_stream(s, name);
	if (st) {
		st->size = size;
		return 0;
	}
	struct wtg_diff_stream *p = realloc(s->streams, (s->nstreams + 1) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	s->streams = p;
	if (!(p[s->nstreams].name = strdup(name)))
		return -ENOMEM;
	p[s->nstreams++].size = size;
	return 0;
}

static int side_stream_record(void *arg, const char *name, uint64_t size, bool deleted)
{
	struct wtg_diff_side *s = arg;

	if (!deleted)
		return side_set_stream(s, name, size);
	if (!*name) {
		s->size = 0;
		return 0;
	}
	struct wtg_diff_stream *st = find_side_stream(s, name);
	if (st) {
		free(st->name);
		*st = s->streams[--s->nstreams];
	}
	return 0;
}

static int cmp_stream(const void *a, const void *b)
{
	return strcmp(((const struct wtg_diff_stream *)a)->name,
		      ((const struct wtg_diff_stream *)b)->name);
}

static enum wtg_diff_type type_of(uint32_t attributes, uint32_t tag)
{
	if (attributes & NTFS_ATTR_REPARSE_POINT) {
		if (tag == NTFS_REPARSE_TAG_SYMLINK || tag == NTFS_REPARSE_TAG_LX_SYMLINK)
			return WTG_DIFF_SYMLINK;
		if (tag == NTFS_REPARSE_TAG_MOUNT_POINT)
			return WTG_DIFF_JUNCTION;
	}
	return attributes & NTFS_ATTR_DIRECTORY ? WTG_DIFF_DIR : WTG_DIFF_FILE;
}

/* The DOS names of @ino's names in @ver, in the order of its names, joined
 * by ", "; NULL when none has one.  A DOS name is a name's: the record of
 * that name says it, or else the base's name does. */
static int dos_names_at(struct wtg_diff *d, struct version *ver, uint64_t ino, char **dos_ret)
{
	const struct names *ns;
	char *out = NULL;
	int r = names_at(d, ver, ino, &ns);

	for (size_t i = 0; !r && i < ns->n; i++) {
		enum wtg_store_state state = WTG_STORE_PRESENT;
		uint64_t now;
		char *dos = NULL;
		if (ns->v[i].dos_known) {
			if (ns->v[i].dos && !(dos = strdup(ns->v[i].dos)))
				r = -ENOMEM;
		} else {
			r = wtg_store_get_name_dos_at(d->store, &ver->v, ns->v[i].dir,
						      ns->v[i].name, &state, &now, &dos);
		}
		if (!r && state == WTG_STORE_BASE) {
			/* a record replaces only the name spelled exactly so */
			const char *b = NULL;
			r = wtg_base_lookup(d->base, ns->v[i].dir, ns->v[i].name, &now, &b);
			if (!r && b && !(dos = strdup(b)))
				r = -ENOMEM;
		}
		if (!r && dos) {
			char *joined;
			if (asprintf(&joined, "%s%s%s", out ? out : "", out ? ", " : "", dos) < 0)
				r = -ENOMEM;
			else {
				free(out);
				out = joined;
			}
		}
		free(dos);
	}
	if (r) {
		free(out);
		out = NULL;
	}
	*dos_ret = out;
	return r;
}

/* The metadata and streams of @ino in @ver (which exists there). */
static int side_fill(struct wtg_diff *d, struct version *ver, uint64_t ino,
		     struct wtg_diff_side *s)
{
	const struct wtg_base_inode *in;
	const struct wtg_store_inode *si;
	enum wtg_store_state state;
	int r = base_inode(d, ino, &in);

	memset(s, 0, sizeof(*s));
	s->exists = true;
	s->ino = ino;
	if (!r)
		r = inode_at(d, ver, ino, &state, &si);
	if (r)
		return r;
	if (state == WTG_STORE_PRESENT) {
		static const uint8_t none[WTG_STORE_HASH_LEN];
		s->attributes = si->attributes;
		s->crtime = si->crtime;
		s->mtime = si->mtime;
		s->atime = si->atime;
		s->ctime = si->ctime;
		if (memcmp(si->sd_hash, none, sizeof(none))) {
			size_t len;
			r = wtg_store_get_sd(d->store, si->sd_hash, &s->sd, &len);
			s->sd_len = (uint32_t)len;
		}
		if (!r)
			r = dup_bytes(&s->reparse, &s->reparse_len, si->reparse, si->reparse_len);
		if (!r)
			r = dup_bytes(&s->object_id, &s->object_id_len, si->object_id,
				      si->object_id_len);
		if (!r)
			r = dup_bytes(&s->ea, &s->ea_len, si->ea, si->ea_len);
	} else if (in) {
		s->attributes = in->attributes;
		s->crtime = in->crtime;
		s->mtime = in->mtime;
		s->atime = in->atime;
		s->ctime = in->ctime;
		r = dup_bytes(&s->sd, &s->sd_len, in->sd, in->sd_len);
		if (!r && (in->attributes & NTFS_ATTR_REPARSE_POINT))
			r = dup_bytes(&s->reparse, &s->reparse_len, in->reparse, in->reparse_len);
		if (!r)
			r = dup_bytes(&s->object_id, &s->object_id_len, in->object_id,
				      in->object_id_len);
		if (!r)
			r = dup_bytes(&s->ea, &s->ea_len, in->ea, in->ea_len);
	}
	if (!r)
		r = dos_names_at(d, ver, ino, &s->dos_name);
	/* the base's streams, then what the layers say of them */
	for (uint32_t i = 0; !r && in && i < in->nstreams; i++)
		r = side_set_stream(s, in->streams[i].name, in->streams[i].size);
	if (!r)
		r = wtg_store_list_streams_at(d->store, &ver->v, ino, side_stream_record, s);
	if (!r && s->nstreams > 1)
		qsort(s->streams, s->nstreams, sizeof(*s->streams), cmp_stream);
	if (!r && s->reparse && s->reparse_len >= 4)
		s->reparse_tag = ntfs_get_le32(s->reparse);
	s->type = type_of(s->attributes, s->reparse_tag);
	if (!r && (s->type == WTG_DIFF_SYMLINK || s->type == WTG_DIFF_JUNCTION)) {
		char target[4096];
		bool relative;
		if (wtg_reparse_link_target(s->reparse, s->reparse_len, &relative, target,
					    sizeof(target)) == 0 &&
		    asprintf(&s->reparse_target, "%s%s", relative || target[0] == '/' ? "" : "/",
			     target) < 0)
			r = -ENOMEM;
	}
	if (r)
		side_release(s);
	return r;
}

/* ---- data: which chunk slots differ ---- */

/* What slot @index of (@ino, @stream) resolves to in @ver. */
struct slot {
	enum wtg_store_state state;
	uint8_t hash[WTG_STORE_HASH_LEN];
};

static int slot_at(struct wtg_diff *d, struct version *ver, uint64_t ino, const char *stream,
		   uint64_t index, struct slot *s)
{
	memset(s, 0, sizeof(*s));
	return wtg_store_get_extent_at(d->store, &ver->v, ino, stream, index, &s->state, s->hash);
}

static int slot_differs(struct wtg_diff *d, uint64_t ino, const char *stream, uint64_t index,
			bool *differs)
{
	struct slot a, b;
	int r = slot_at(d, &d->from, ino, stream, index, &a);

	if (!r)
		r = slot_at(d, &d->to, ino, stream, index, &b);
	if (!r)
		*differs = a.state != b.state ||
			   (a.state == WTG_STORE_PRESENT && memcmp(a.hash, b.hash, sizeof(a.hash)));
	return r;
}

/* The first key of @keys (sorted) at or after (@ino, @name, @index). */
static size_t stream_key_lower(const struct stream_key *keys, size_t n, uint64_t ino,
			       const char *name, uint64_t index)
{
	struct stream_key k = {ino, (char *)name, index};
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (cmp_stream_key(&keys[mid], &k) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool stream_key_changed(const struct wtg_diff *d, uint64_t ino, const char *name)
{
	size_t i = stream_key_lower(d->streams, d->nstreams, ino, name, 0);
	return i < d->nstreams && d->streams[i].ino == ino && !strcmp(d->streams[i].name, name);
}

static int range_add(struct wtg_diff_entry *e, uint64_t off, uint64_t len)
{
	if (!len)
		return 0;
	if (e->nranges && e->ranges[e->nranges - 1].offset + e->ranges[e->nranges - 1].length >= off) {
		struct wtg_diff_range *last = &e->ranges[e->nranges - 1];
		uint64_t end = off + len;
		if (end > last->offset + last->length)
			last->length = end - last->offset;
		return 0;
	}
	struct wtg_diff_range *p = realloc(e->ranges, (e->nranges + 1) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	e->ranges = p;
	p[e->nranges++] = (struct wtg_diff_range){off, len};
	return 0;
}

static uint64_t slots_for(uint64_t size)
{
	return size / CHUNK + (size % CHUNK != 0);
}

/*
 * Whether stream @name of one inode differs between the versions, below
 * @common bytes (the smaller size): the slots whose extents changed, or all
 * slots when the stream record itself changed (it can hide what lies below
 * it).  With @e, the ranges of the unnamed stream are added to it.
 */
static int stream_slots(struct wtg_diff *d, uint64_t ino, const char *name, uint64_t common,
			struct wtg_diff_entry *e, bool *differs)
{
	uint64_t nslots = slots_for(common);
	int r = 0;

	*differs = false;
	if (stream_key_changed(d, ino, name)) {
		for (uint64_t i = 0; !r && i < nslots; i++) {
			bool x;
			r = slot_differs(d, ino, name, i, &x);
			if (!r && x) {
				*differs = true;
				uint64_t end = (i + 1) * CHUNK < common ? (i + 1) * CHUNK : common;
				if (e)
					r = range_add(e, i * CHUNK, end - i * CHUNK);
				else
					break;
			}
		}
		return r;
	}
	for (size_t k = stream_key_lower(d->extents, d->nextents, ino, name, 0);
	     !r && k < d->nextents && d->extents[k].ino == ino && !strcmp(d->extents[k].name, name);
	     k++) {
		uint64_t i = d->extents[k].index;
		bool x;
		if (i >= nslots)
			break;
		r = slot_differs(d, ino, name, i, &x);
		if (!r && x) {
			*differs = true;
			uint64_t end = (i + 1) * CHUNK < common ? (i + 1) * CHUNK : common;
			if (e)
				r = range_add(e, i * CHUNK, end - i * CHUNK);
			else
				break;
		}
	}
	return r;
}

/* ---- comparing two sides ---- */

/* Whether the sorted @v holds @s (bsearch wants a non-NULL array). */
static bool strv_has(char *const *v, size_t n, const char *s)
{
	return n && bsearch(&s, v, n, sizeof(char *), cmp_str);
}

static bool bytes_differ(const uint8_t *a, uint32_t alen, const uint8_t *b, uint32_t blen)
{
	if (!a || !b)
		return !a != !b;
	return alen != blen || memcmp(a, b, alen);
}

static bool str_differ(const char *a, const char *b)
{
	if (!a || !b)
		return !a != !b;
	return strcmp(a, b) != 0;
}

static int compare(struct wtg_diff *d, struct wtg_diff_entry *e, bool same_inode)
{
	struct wtg_diff_side *o = &e->old, *n = &e->new;
	unsigned c = 0;
	int r = 0;

	/* the unnamed stream */
	uint64_t common = o->size < n->size ? o->size : n->size;
	if (same_inode) {
		bool x;
		r = stream_slots(d, o->ino, "", common, e, &x);
	} else if (common) {
		r = range_add(e, 0, common);
	}
	if (!r && o->size != n->size) {
		c |= WTG_DIFF_SIZE;
		r = range_add(e, common, (o->size > n->size ? o->size : n->size) - common);
	}
	if (e->nranges)
		c |= WTG_DIFF_DATA;
	/* named streams */
	for (size_t i = 0; !r && i < o->nstreams; i++) {
		struct wtg_diff_stream *ns = find_side_stream(n, o->streams[i].name);
		if (!ns) {
			r = strv_push(&e->streams_removed, &e->nstreams_removed, o->streams[i].name);
			continue;
		}
		bool x = ns->size != o->streams[i].size || !same_inode;
		if (!x) {
			r = stream_slots(d, o->ino, ns->name, ns->size, NULL, &x);
		}
		if (!r && x)
			r = strv_push(&e->streams_changed, &e->nstreams_changed, ns->name);
	}
	for (size_t i = 0; !r && i < n->nstreams; i++)
		if (!find_side_stream(o, n->streams[i].name))
			r = strv_push(&e->streams_added, &e->nstreams_added, n->streams[i].name);
	if (e->nstreams_removed || e->nstreams_added || e->nstreams_changed)
		c |= WTG_DIFF_STREAMS;
	if (o->attributes != n->attributes)
		c |= WTG_DIFF_ATTRIBUTES;
	if (bytes_differ(o->sd, o->sd_len, n->sd, n->sd_len))
		c |= WTG_DIFF_SECURITY;
	if (bytes_differ(o->reparse, o->reparse_len, n->reparse, n->reparse_len))
		c |= WTG_DIFF_REPARSE;
	if (str_differ(o->dos_name, n->dos_name))
		c |= WTG_DIFF_DOS_NAME;
	if (bytes_differ(o->object_id, o->object_id_len, n->object_id, n->object_id_len))
		c |= WTG_DIFF_OBJECT_ID;
	if (bytes_differ(o->ea, o->ea_len, n->ea, n->ea_len))
		c |= WTG_DIFF_EA;
	if (d->times && (o->crtime != n->crtime || o->mtime != n->mtime ||
			 o->atime != n->atime || o->ctime != n->ctime))
		c |= WTG_DIFF_TIMES;
	/* hard links, by path */
	for (size_t i = 0; !r && same_inode && i < o->nlinks; i++)
		if (!strv_has(n->links, n->nlinks, o->links[i]))
			r = strv_push(&e->links_removed, &e->nlinks_removed, o->links[i]);
	for (size_t i = 0; !r && same_inode && i < n->nlinks; i++)
		if (!strv_has(o->links, o->nlinks, n->links[i]))
			r = strv_push(&e->links_added, &e->nlinks_added, n->links[i]);
	if (e->nlinks_removed || e->nlinks_added)
		c |= WTG_DIFF_LINKS;
	for (size_t i = 0; i < e->nranges; i++)
		e->changed_bytes += e->ranges[i].length;
	e->changed = c;
	return r;
}

/* Every kind an added or deleted side has. */
static int whole(struct wtg_diff *d, struct wtg_diff_entry *e, const struct wtg_diff_side *s)
{
	unsigned c = WTG_DIFF_ATTRIBUTES;
	int r = 0;

	if (s->size)
		c |= WTG_DIFF_DATA | WTG_DIFF_SIZE;
	if (s->sd)
		c |= WTG_DIFF_SECURITY;
	if (s->nstreams)
		c |= WTG_DIFF_STREAMS;
	if (s->reparse)
		c |= WTG_DIFF_REPARSE;
	if (s->dos_name)
		c |= WTG_DIFF_DOS_NAME;
	if (s->nlinks > 1)
		c |= WTG_DIFF_LINKS;
	if (s->object_id)
		c |= WTG_DIFF_OBJECT_ID;
	if (s->ea)
		c |= WTG_DIFF_EA;
	if (d->times)
		c |= WTG_DIFF_TIMES;
	e->changed = c;
	r = range_add(e, 0, s->size);
	e->changed_bytes = s->size;
	for (size_t i = 0; !r && i < s->nstreams; i++)
		r = strv_push(e->status == 'A' ? &e->streams_added : &e->streams_removed,
			      e->status == 'A' ? &e->nstreams_added : &e->nstreams_removed,
			      s->streams[i].name);
	return r;
}

static void entry_release(struct wtg_diff_entry *e)
{
	free(e->path);
	free(e->old_path);
	side_release(&e->old);
	side_release(&e->new);
	free(e->ranges);
	strv_free(e->streams_removed, e->nstreams_removed);
	strv_free(e->streams_added, e->nstreams_added);
	strv_free(e->streams_changed, e->nstreams_changed);
	strv_free(e->links_removed, e->nlinks_removed);
	strv_free(e->links_added, e->nlinks_added);
	memset(e, 0, sizeof(*e));
}

/* ---- the path filter ---- */

static bool under(const char *path, const char *filter)
{
	size_t n = strlen(filter), plen = strlen(path);

	if (!n)
		return true;
	if (plen < n || !wtg_name_equal_ci(path, n, filter, n))
		return false;
	return plen == n || path[n] == '/';
}

static bool wanted(const struct wtg_diff *d, char *const *paths, size_t n)
{
	if (!d->npaths)
		return true;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < d->npaths; j++)
			if (under(paths[i], d->paths[j]))
				return true;
	return false;
}

/* Registry hives by where they live: Windows/System32/config/NAME (no
 * extension: SYSTEM, SOFTWARE, SAM, SECURITY, DEFAULT, COMPONENTS ...),
 * and every user's NTUSER.DAT and UsrClass.dat. */
static bool hive_path(const char *path)
{
	static const char cfg[] = "Windows/System32/config/";
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	if (wtg_name_equal_ci(base, strlen(base), "NTUSER.DAT", 10) ||
	    wtg_name_equal_ci(base, strlen(base), "UsrClass.dat", 12))
		return true;
	size_t n = sizeof(cfg) - 1;
	return (size_t)(base - path) == n && wtg_name_equal_ci(path, n, cfg, n) && *base &&
	       !strchr(base, '.');
}

/* ---- entries ---- */

struct entries {
	struct wtg_diff_entry *v;
	size_t n, cap;
};

/* The paths of @ns in @ver, sorted. */
static int link_paths(struct wtg_diff *d, struct version *ver, const struct names *ns,
		      char ***paths_ret, size_t *n_ret)
{
	char **v = NULL;
	size_t n = 0;
	int r = 0;

	for (size_t i = 0; !r && i < ns->n; i++) {
		char *p;
		r = path_of(d, ver, ns->v[i].dir, ns->v[i].name, 0, &p);
		if (r)
			break;
		char **q = realloc(v, (n + 1) * sizeof(*q));
		if (!q) {
			free(p);
			r = -ENOMEM;
			break;
		}
		v = q;
		v[n++] = p;
	}
	if (r) {
		strv_free(v, n);
		return r;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_str);
	*paths_ret = v;
	*n_ret = n;
	return 0;
}

static int add_entry(struct entries *es, struct wtg_diff_entry *e)
{
	int r = push((void **)&es->v, &es->n, &es->cap, sizeof(*e), e);
	if (r)
		entry_release(e);
	return r;
}

static int copy_links(struct wtg_diff_side *s, char **paths, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strv_push(&s->links, &s->nlinks, paths[i]))
			return -ENOMEM;
	return 0;
}

/* One entry per name of an inode that is only in one version. */
static int one_sided(struct wtg_diff *d, struct entries *es, uint64_t ino, bool added,
		     char **paths, size_t npaths)
{
	int r = 0;

	for (size_t i = 0; !r && i < npaths; i++) {
		struct wtg_diff_entry e = {.status = added ? 'A' : 'D'};
		struct wtg_diff_side *s = added ? &e.new : &e.old;
		r = side_fill(d, added ? &d->to : &d->from, ino, s);
		if (!r)
			r = copy_links(s, paths, npaths);
		if (!r && !(e.path = strdup(paths[i])))
			r = -ENOMEM;
		if (!r)
			r = whole(d, &e, s);
		if (r) {
			entry_release(&e);
			break;
		}
		r = add_entry(es, &e);
	}
	return r;
}

static int inode_entries(struct wtg_diff *d, struct entries *es, uint64_t ino)
{
	const struct names *fn, *tn;
	char **fp = NULL, **tp = NULL;
	size_t nfp = 0, ntp = 0;
	bool in_from, in_to;
	int r = exists_at(d, &d->from, ino, &in_from);

	if (!r)
		r = exists_at(d, &d->to, ino, &in_to);
	if (r || (!in_from && !in_to))
		return r;
	if (in_from && !(r = names_at(d, &d->from, ino, &fn)))
		r = link_paths(d, &d->from, fn, &fp, &nfp);
	if (!r && in_to && !(r = names_at(d, &d->to, ino, &tn)))
		r = link_paths(d, &d->to, tn, &tp, &ntp);
	if (r)
		goto out;
	if (ino == WTG_ROOT_INO) { /* the root has no name: "." */
		if (!(r = strv_push(&fp, &nfp, ".")))
			r = strv_push(&tp, &ntp, ".");
		if (r)
			goto out;
	}
	/* the filter, before anything is read about the inode */
	if (!wanted(d, fp, nfp) && !wanted(d, tp, ntp))
		goto out;
	if (!nfp || !ntp) { /* in one version only (an inode without names is no file) */
		r = nfp ? one_sided(d, es, ino, false, fp, nfp) : one_sided(d, es, ino, true, tp, ntp);
		goto out;
	}
	struct wtg_diff_entry e = {.status = 'M'};
	r = side_fill(d, &d->from, ino, &e.old);
	if (!r)
		r = side_fill(d, &d->to, ino, &e.new);
	if (!r)
		r = copy_links(&e.old, fp, nfp);
	if (!r)
		r = copy_links(&e.new, tp, ntp);
	if (!r)
		r = compare(d, &e, true);
	if (r) {
		entry_release(&e);
		goto out;
	}
	/* a name kept: M there; none kept: R from the first old name */
	const char *kept = NULL;
	for (size_t i = 0; i < ntp && !kept; i++)
		if (strv_has(fp, nfp, tp[i]))
			kept = tp[i];
	if (!kept) {
		e.status = 'R';
		if (!(e.old_path = strdup(fp[0])))
			r = -ENOMEM;
		if (nfp == 1 && ntp == 1) { /* a plain rename is no change of links */
			strv_free(e.links_removed, e.nlinks_removed);
			strv_free(e.links_added, e.nlinks_added);
			e.links_removed = e.links_added = NULL;
			e.nlinks_removed = e.nlinks_added = 0;
			e.changed &= ~(unsigned)WTG_DIFF_LINKS;
		}
	}
	if (e.old.type != e.new.type)
		e.status = 'T';
	if (!r && !(e.path = strdup(kept ? kept : tp[0])))
		r = -ENOMEM;
	/* names it lost or gained, in case another inode took or left them:
	 * internal 'd' and 'a' entries, kept only when they pair with an A or
	 * a D of the same path (a replaced name) */
	for (size_t i = 0; !r && i < e.nlinks_removed + e.nlinks_added; i++) {
		bool lost = i < e.nlinks_removed;
		struct wtg_diff_entry h = {.status = lost ? 'd' : 'a'};
		r = side_fill(d, lost ? &d->from : &d->to, ino, lost ? &h.old : &h.new);
		if (!r)
			r = lost ? copy_links(&h.old, fp, nfp) : copy_links(&h.new, tp, ntp);
		if (!r && !(h.path = strdup(lost ? e.links_removed[i]
						 : e.links_added[i - e.nlinks_removed])))
			r = -ENOMEM;
		if (r)
			entry_release(&h);
		else
			r = add_entry(es, &h);
	}
	if (!r && (e.changed || e.status != 'M'))
		r = add_entry(es, &e);
	else
		entry_release(&e);
out:
	strv_free(fp, nfp);
	strv_free(tp, ntp);
	return r;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct wtg_diff_entry *x = a, *y = b;
	int c = strcmp(x->path, y->path);

	if (c)
		return c;
	/* D before A of one path, so they merge */
	return (y->status == 'D' || y->status == 'd') - (x->status == 'D' || x->status == 'd');
}

/* A D and an A of one path: the name holds another inode now. */
static int merge_replaced(struct wtg_diff *d, struct wtg_diff_entry *del, struct wtg_diff_entry *add)
{
	struct wtg_diff_entry e = {.status = 'M', .replaced = true};

	e.path = del->path;
	del->path = NULL;
	e.old = del->old;
	memset(&del->old, 0, sizeof(del->old));
	e.new = add->new;
	memset(&add->new, 0, sizeof(add->new));
	entry_release(del);
	entry_release(add);
	int r = compare(d, &e, false);
	if (e.old.type != e.new.type)
		e.status = 'T';
	*del = e;
	return r;
}

int wtg_diff_run(struct wtg_diff *d, wtg_diff_fn fn, void *arg)
{
	struct entries es = {0};
	uint64_t *inos = NULL;
	size_t nino = 0, cap = 0;
	/* one read transaction: a mount committing beside the diff changes
	 * nothing it sees, and SQLite takes its shared lock once */
	int r = wtg_store_read_begin(d->store);

	if (!r)
		r = wtg_store_changes(d->store, &d->from.v, &d->to.v, collect, d);
	if (r)
		goto out;
	d->ninode_keys = uniq_u64(d->inode_keys, d->ninode_keys);
	d->nnames = uniq_names(d->names, d->nnames);
	d->nstreams = uniq_streams(d->streams, d->nstreams);
	d->nextents = uniq_streams(d->extents, d->nextents);
	/* the inodes that can differ */
	for (size_t i = 0; !r && i < d->ninode_keys; i++)
		r = push((void **)&inos, &nino, &cap, sizeof(uint64_t), &d->inode_keys[i]);
	for (size_t i = 0; !r && i < d->nstreams; i++)
		r = push((void **)&inos, &nino, &cap, sizeof(uint64_t), &d->streams[i].ino);
	for (size_t i = 0; !r && i < d->nextents; i++)
		if (!i || d->extents[i - 1].ino != d->extents[i].ino)
			r = push((void **)&inos, &nino, &cap, sizeof(uint64_t), &d->extents[i].ino);
	for (size_t i = 0; !r && i < d->nnames; i++) {
		uint64_t a, b;
		r = name_at(d, &d->from, d->names[i].dir, d->names[i].name, &a);
		if (!r)
			r = name_at(d, &d->to, d->names[i].dir, d->names[i].name, &b);
		if (!r && a)
			r = push((void **)&inos, &nino, &cap, sizeof(uint64_t), &a);
		if (!r && b && b != a)
			r = push((void **)&inos, &nino, &cap, sizeof(uint64_t), &b);
	}
	if (r)
		goto out;
	nino = uniq_u64(inos, nino);
	for (size_t i = 0; !r && i < nino; i++)
		r = inode_entries(d, &es, inos[i]);
	if (r)
		goto out;
	if (es.n > 1)
		qsort(es.v, es.n, sizeof(*es.v), cmp_entry);
	size_t k = 0;
	for (size_t i = 0; i < es.n; i++) {
		struct wtg_diff_entry *x = &es.v[i], *y = i + 1 < es.n ? &es.v[i + 1] : NULL;
		if (!r && y && (x->status == 'D' || x->status == 'd') &&
		    (y->status == 'A' || y->status == 'a') && !strcmp(x->path, y->path)) {
			r = merge_replaced(d, x, y);
			es.v[k++] = *x;
			i++;
		} else if (x->status == 'd' || x->status == 'a') {
			entry_release(x);
		} else {
			es.v[k++] = *x;
		}
	}
	es.n = k;
	for (size_t i = 0; !r && i < es.n; i++) {
		struct wtg_diff_entry *e = &es.v[i];
		e->hive = (e->old.type == WTG_DIFF_FILE || e->new.type == WTG_DIFF_FILE) &&
			  hive_path(e->path);
		r = fn(arg, e);
	}
out:
	wtg_store_read_end(d->store);
	for (size_t i = 0; i < es.n; i++)
		entry_release(&es.v[i]);
	free(es.v);
	free(inos);
	return r;
}

/* ---- reading a version of a stream (hives) ---- */

/* wtg_base_read, through the caller's reader when it has one. */
static long base_read(struct wtg_diff *d, uint64_t ino, const char *name, void *buf, size_t size,
		      uint64_t off)
{
	const struct wtg_base_inode *in = NULL;

	if (d->base_read && !wtg_base_inode(d->base, ino, &in) && in) {
		for (uint32_t i = 0; i < in->nstreams; i++) {
			const struct wtg_base_stream *s = &in->streams[i];
			if (strcmp(s->name, name) || !s->key)
				continue;
			if (off >= s->base_size)
				return 0;
			if (size > s->base_size - off)
				size = (size_t)(s->base_size - off);
			int r = d->base_read(d->base_read_ctx, s->key, s->key_len, buf, size, off);
			if (r != -ENOENT)
				return r < 0 ? r : (long)size;
			break;
		}
	}
	return wtg_base_read(d->base, ino, name, buf, size, off);
}

/* Whether slot @i touches one of @want (NULL: all do). */
static bool slot_wanted(const struct wtg_diff_range *want, size_t nwant, uint64_t i)
{
	if (!want)
		return true;
	for (size_t k = 0; k < nwant; k++)
		if (want[k].offset < (i + 1) * CHUNK && want[k].offset + want[k].length > i * CHUNK)
			return true;
	return false;
}

static int read_side_stream(struct wtg_diff *d, const struct wtg_diff_entry *e, bool new_side,
			    const char *name, uint64_t max, uint64_t prefix,
			    const struct wtg_diff_range *want, size_t nwant, uint8_t **buf_ret,
			    size_t *len_ret)
{
	const struct wtg_diff_side *s = new_side ? &e->new : &e->old;
	struct version *ver = new_side ? &d->to : &d->from;
	int r = 0;

	*buf_ret = NULL;
	*len_ret = 0;
	if (!s->exists)
		return -ENOENT;
	uint64_t full = s->size;
	if (*name) {
		const struct wtg_diff_stream *ns = NULL;
		for (size_t i = 0; i < s->nstreams && !ns; i++)
			if (!strcmp(s->streams[i].name, name))
				ns = &s->streams[i];
		if (!ns)
			return -ENOENT;
		full = ns->size;
	}
	uint64_t size = full < prefix ? full : prefix;
	if (size > max || size > SIZE_MAX)
		return -EFBIG;
	uint8_t *buf = wtg_calloc_large(size);
	if (!buf)
		return -ENOMEM;
	/* a run of slots the base holds is read at once: the source decodes
	 * a long read on more than one core */
	uint64_t nslots = slots_for(size), run = 0;
	bool in_run = false;
	for (uint64_t i = 0; !r && i <= nslots; i++) {
		struct slot sl = {.state = WTG_STORE_DELETED}; /* (past the end, or not
								* wanted: ends a run) */
		uint64_t off = i * CHUNK;
		if (i < nslots && slot_wanted(want, nwant, i) &&
		    (r = slot_at(d, ver, s->ino, name, i, &sl)))
			break;
		if (sl.state == WTG_STORE_BASE) {
			if (!in_run)
				run = i;
			in_run = true;
			continue;
		}
		if (in_run) {
			uint64_t roff = run * CHUNK, end = off < size ? off : size;
			long n = base_read(d, s->ino, name, buf + roff, (size_t)(end - roff), roff);
			if (n < 0)
				r = (int)n;
			in_run = false;
		}
		if (!r && sl.state == WTG_STORE_PRESENT) {
			size_t got, len = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
			r = wtg_store_get_chunk(d->store, sl.hash, d->chunk, &got);
			if (!r)
				memcpy(buf + off, d->chunk, got < len ? got : len);
		}
	}
	if (r) {
		free(buf);
		return r;
	}
	*buf_ret = buf;
	*len_ret = (size_t)size;
	return 0;
}

int wtg_diff_read_stream(struct wtg_diff *d, const struct wtg_diff_entry *e, bool new_side,
			 uint64_t max, uint64_t prefix, uint8_t **buf_ret, size_t *len_ret)
{
	return read_side_stream(d, e, new_side, "", max, prefix, NULL, 0, buf_ret, len_ret);
}

int wtg_diff_read_stream_parts(struct wtg_diff *d, const struct wtg_diff_entry *e,
			       const struct wtg_diff_range *want, size_t nwant, uint64_t max,
			       uint8_t **buf_ret, size_t *len_ret)
{
	return read_side_stream(d, e, true, "", max, UINT64_MAX, want, nwant, buf_ret, len_ret);
}

int wtg_diff_stream_sum(struct wtg_diff *d, const struct wtg_diff_entry *e,
			uint8_t sha1_ret[WTG_SHA1_LEN])
{
	uint8_t fp[WTG_STORE_HASH_LEN];

	if (!e->new.exists || !d->store)
		return -ENOENT;
	int r = wtg_store_stream_fingerprint(d->store, &d->to.v, e->new.ino, "", e->new.size, fp);
	return r ? r : wtg_store_get_sum(d->store, fp, sha1_ret);
}

int wtg_diff_read_named_stream(struct wtg_diff *d, const struct wtg_diff_entry *e, bool new_side,
			       const char *name, uint64_t max, uint8_t **buf_ret, size_t *len_ret)
{
	return read_side_stream(d, e, new_side, name, max, UINT64_MAX, NULL, 0, buf_ret, len_ret);
}

/* ---- names for people ---- */

const char *wtg_diff_attribute_name(uint32_t bit)
{
	switch (bit) {
	case 0x1: return "readonly";
	case 0x2: return "hidden";
	case 0x4: return "system";
	case 0x10: return "directory";
	case 0x20: return "archive";
	case 0x40: return "device";
	case 0x80: return "normal";
	case 0x100: return "temporary";
	case 0x200: return "sparse";
	case 0x400: return "reparse";
	case 0x800: return "compressed";
	case 0x1000: return "offline";
	case 0x2000: return "not-indexed";
	case 0x4000: return "encrypted";
	case 0x8000: return "integrity";
	case 0x10000: return "virtual";
	case 0x20000: return "no-scrub";
	case 0x40000: return "recall-on-open";
	case 0x80000: return "pinned";
	case 0x100000: return "unpinned";
	case 0x400000: return "recall-on-access";
	default: return NULL;
	}
}

const char *wtg_diff_type_name(enum wtg_diff_type type)
{
	switch (type) {
	case WTG_DIFF_DIR: return "directory";
	case WTG_DIFF_SYMLINK: return "symlink";
	case WTG_DIFF_JUNCTION: return "junction";
	default: return "file";
	}
}

void wtg_diff_status_column(unsigned changed, bool times, char *buf)
{
	static const char letters[WTG_DIFF_KINDS] = "csapnrdloet";
	int n = 0;

	for (int i = 0; i < WTG_DIFF_KINDS; i++) {
		if (i == WTG_DIFF_KINDS - 1 && !times)
			break;
		buf[n++] = changed & (1u << i) ? letters[i] : '.';
	}
	buf[n] = 0;
}
