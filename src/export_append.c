/*
 * The raw incremental append (see src/export_plan.h): a delta's change
 * written into the base WIM as a new image at the cost of the change, with
 * the raw appender (wtgfs/wim_append.h) and the metadata patcher
 * (wtgfs/wim_meta.h), not wimlib.  The base image's metadata resource is
 * patched with what the layers changed (wtg_diff), each changed inode's
 * facts taken from the view as wimlib's NTFS-3G capture would store them;
 * changed streams are written as new blobs (chunks equal to the base
 * blob's reused), unchanged ones shared.  -EAGAIN, with the reason, for
 * what it does not handle, the WIM as it was (what was written after its
 * end cut off): the caller then goes the wimlib way.
 *
 * The work overlaps: the base image's metadata is read and parsed on a
 * thread while the change is read from the delta (a new file needs none of
 * it: its descriptor gets its id once the metadata is in, in the entries'
 * order), and the new blobs are compressed on the appender's threads while
 * the next ones are read.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "export_plan.h"
#include "wtgfs/census.h"
#include "wtgfs/diff.h"
#include "wtgfs/export.h"
#include "wtgfs/hash.h"
#include "wtgfs/log.h"
#include "wtgfs/mem.h"
#include "wtgfs/ntfs.h"
#include "wtgfs/source.h"
#include "wtgfs/store.h"
#include "wtgfs/tree.h"
#include "wtgfs/view.h"
#include "wtgfs/wim_append.h"
#include "wtgfs/wim_meta.h"

#define ATTR_DIRECTORY 0x10u
#define ATTR_REPARSE 0x400u

/* Marks, by inode number */
enum {
	M_DONE = 1,	/* its names are in the image */
	M_SUBTREE = 2,	/* a directory added with all it holds */
	M_IN_PLACE = 4, /* a file whose one name is set where it is */
};

struct ent {
	struct wtg_export_change c;
	char *tmp; /* a renamed directory moved aside: where it lies */
	/* the diff way: the new side's facts, as the image stores them */
	bool new_dir, in_place, has_facts;
	bool other_name; /* another entry of the same file adds all its names */
	uint64_t ino;	 /* in the new tree */
	char **links; /* all its names */
	size_t nlinks;
	struct wim_meta_entry fe;
	struct wim_meta_stream *fstreams;
	char *dos_name;
	uint8_t *object_id;
	uint8_t *sd; /* its security descriptor, given an id once the metadata is in */
	uint32_t sd_len;
	uint8_t *data; /* its changed data, read before its base's metadata is in */
	size_t data_len;
};

struct raw {
	struct wtg_view *view;
	struct wtg_tree *tree;
	struct wim_append *wa;
	struct wim_meta *m;
	const struct wtg_export_options *opt;
	struct wtg_export_result *res;
	struct wtg_progress p;
	struct ent *ents;
	size_t nents, ents_cap;
	uint8_t *mark;
	uint64_t *group; /* a hard-linked inode's link group id, 0: none yet */
	uint64_t next_group;
	uint64_t tmp_n;
	struct wim_append_info info;
	struct wtg_export_guard guard;
	bool guarded;
	struct wtg_diff *diff; /* the diff way: read while its entries come */
	/* the base image's metadata, read and parsed on a thread of its own
	 * while the change is read (need_meta waits for it) */
	pthread_t meta_tid;
	bool meta_running;
	int meta_image, meta_ret;
	const char *meta_why; /* why the raw append cannot go on, NULL: it can */
	const void *meta_bytes; /* the base's, and the copy the new one is written into */
	size_t meta_len, copy_cap;
	void *copy;
	/* the delta's own copy of the base metadata (wtg_store_base_metadata),
	 * decoded, checked and parsed on the meta thread from the start, while
	 * the WIM is opened; kept_bytes until r->wa takes them */
	struct wtg_store *kept_store; /* the delta, read and closed by load_kept */
	uint8_t kept_sha1[20];
	uint8_t *kept_bytes;
	pthread_t kept_tid;
	bool kept_running, from_kept, kept_ok, kept_quiet;
	int kept_check;
	/* the copy decoded part by part, checked and copied as it comes */
	struct kept_feed {
		pthread_mutex_t lock;
		pthread_cond_t more;
		size_t done; /* bytes decoded from the start */
		bool ended;  /* no more will come */
	} feed;
	/* the walk of the new image */
	uint64_t dirs, files, total, hardlink;
	struct seen_link {
		uint64_t id, size; /* a link group and its first name's bytes */
		uint8_t hash[20];  /* its unnamed data */
		uint32_t names;
	} * seen_links;
	size_t nseen, seen_cap;
	bool link_sizes_differ; /* a file whose names' bytes differ */
	/* the base image's counts kept in the delta (wtgfs/census.h): with
	 * them its metadata is parsed lazily and the new image counted as the
	 * base's counts and the change */
	struct wtg_census census;
	bool census_ok;
	uint32_t *take; /* taking a census: references by blob index */
	size_t ntake;
	struct timespec t0; /* when the append began, for -v's timeline */
};

static int need_meta(struct raw *r);

static int refuse(struct raw *r, const char *fmt, const char *what)
{
	snprintf(r->res->raw_reason, sizeof(r->res->raw_reason), fmt, what);
	return -EAGAIN;
}

/* -v: how far into the append it came (a timeline of its phases) */
static void timeline(const struct raw *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void timeline(const struct raw *r, const char *fmt, ...)
{
	struct timespec now;
	char what[256];
	va_list ap;

	clock_gettime(CLOCK_MONOTONIC, &now);
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	wtg_debug("export: %.1f ms: %s",
		  (double)(now.tv_sec - r->t0.tv_sec) * 1e3 + (double)(now.tv_nsec - r->t0.tv_nsec) / 1e6,
		  what);
}

static void report(struct raw *r, const char *phase)
{
	bool starting = r->p.phase != phase;

	r->p.phase = phase;
	wtg_progress_test_kill(&r->p, starting);
	if (r->opt->progress)
		r->opt->progress(r->opt->ctx, &r->p);
}

/* ---- the diff ---- */

static int collect(void *arg, const struct wtg_diff_entry *e)
{
	struct raw *r = arg;

	if (wtg_grow((void **)&r->ents, &r->ents_cap, r->nents, sizeof(*r->ents)))
		return -ENOMEM;
	struct ent *n = &r->ents[r->nents++];
	memset(n, 0, sizeof(*n));
	return wtg_export_change_take(&n->c, e);
}

static void free_ents(struct raw *r)
{
	for (size_t i = 0; i < r->nents; i++) {
		wtg_export_change_release(&r->ents[i].c);
		free(r->ents[i].tmp);
		for (size_t k = 0; k < r->ents[i].nlinks; k++)
			free(r->ents[i].links[k]);
		free(r->ents[i].links);
		for (size_t k = 0; k < r->ents[i].fe.nstreams; k++)
			free((char *)r->ents[i].fstreams[k].name);
		free(r->ents[i].fstreams);
		free(r->ents[i].dos_name);
		free(r->ents[i].object_id);
		free(r->ents[i].sd);
		free(r->ents[i].data);
	}
	free(r->ents);
}

/* ---- the view ---- */

static struct wtg_dentry *resolve(struct raw *r, const char *rel)
{
	return wtg_view_lookup_path(r->view, rel);
}

/* The path of directory @in ("" for the root), in the image's terms. */
static int dir_path(struct raw *r, const struct wtg_inode *in, char *buf, size_t size)
{
	if (in->ino == WTG_ROOT_INO) {
		buf[0] = '\0';
		return 0;
	}
	return wtg_tree_path(r->tree, in, buf, size) < 0 ? -ENAMETOOLONG : 0;
}

struct view_src {
	struct raw *r;
	struct wtg_inode *in;
	struct wtg_stream *s;
};

static int read_view(void *ctx, void *buf, size_t len, uint64_t off)
{
	struct view_src *v = ctx;

	while (len) {
		long n = wtg_view_read(v->r->view, v->in, v->s, buf, len, off);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return -EIO;
		buf = (uint8_t *)buf + n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

struct mem_src {
	const uint8_t *p;
};

static int read_mem(void *ctx, void *buf, size_t len, uint64_t off)
{
	memcpy(buf, ((struct mem_src *)ctx)->p + off, len);
	return 0;
}

/* The SHA-1 of stream @s of @in: the base blob's when unchanged, else the
 * bytes written as a new blob (the base blob's chunks reused). */
static int stream_hash(struct raw *r, struct wtg_inode *in, struct wtg_stream *s, uint8_t hash[20])
{
	uint8_t key[WTG_BLOB_KEY_MAX];
	const uint8_t *base = NULL;

	memset(hash, 0, 20);
	if (!s->size)
		return 0;
	if (s->blob && wtg_source_blob_key(r->tree->source, s->blob, key) == 20) {
		if (!s->delta && s->size == s->base_size) {
			memcpy(hash, key, 20);
			return wim_append_has_blob(r->wa, hash)
				   ? 0
				   : refuse(r, "%s", "a blob of the base image is not in the WIM");
		}
		base = key;
	}
	struct view_src v = {.r = r, .in = in, .s = s};
	int ret = wim_append_add_blob(r->wa, s->size, read_view, &v, base, 0, hash);
	if (!ret) {
		r->p.files_done++;
		r->p.bytes_done += s->size;
		report(r, "write");
	}
	return ret;
}

/*
 * The rp_flags wimlib gives reparse data it captures from an NTFS volume
 * (the temporary one of wimlib's way): WIM_RP_FLAG_NOT_FIXED, except on a
 * symbolic link or junction when fixups are on, which they are for an add
 * to a WIM whose header says earlier images had them.  In NTFS-3G mode the
 * fixup changes nothing but that flag (wimlib captures whole volumes).
 */
static uint16_t rp_flags_for(const struct raw *r, uint32_t tag)
{
	bool link = tag == NTFS_REPARSE_TAG_SYMLINK || tag == NTFS_REPARSE_TAG_MOUNT_POINT;

	return link && r->info.rp_fix ? 0 : WIM_META_RP_NOT_FIXED;
}

/* What an inode's dentries hold, but the names. */
struct facts {
	struct wim_meta_entry e;
	struct wim_meta_stream *streams;
	char **names;
};

static void facts_release(struct facts *f)
{
	free(f->streams);
	free(f->names);
}

static int facts_of(struct raw *r, struct wtg_inode *in, struct facts *f)
{
	int ret;

	memset(f, 0, sizeof(*f));
	wim_meta_entry_init(&f->e);
	/* (an $EA is left out, as wimlib 1.13's NTFS-3G capture leaves it out:
	 * the image is the one a full export gives) */
	f->e.attributes = in->attributes;
	if (in->dir && !(in->attributes & ATTR_REPARSE))
		f->e.attributes |= ATTR_DIRECTORY;
	const struct wtg_sd *sd = wtg_view_sd(r->view, in);
	if (sd) {
		int id = wim_meta_sd_add(r->m, sd->data, sd->len); /* (an old one's id, or new) */
		if (id < 0)
			return id;
		f->e.security_id = id;
	}
	f->e.creation_time = (uint64_t)in->crtime;
	f->e.last_access_time = (uint64_t)in->atime;
	f->e.last_write_time = (uint64_t)in->mtime;
	if (in->attributes & ATTR_REPARSE) {
		uint32_t len;
		const uint8_t *rp = wtg_view_reparse(r->view, in, &len);
		if (!rp || len < 8)
			return refuse(r, "%s", "a changed reparse point has no reparse data");
		if (in->nlink > 1)
			return refuse(r, "%s", "a hard-linked reparse point changed");
		f->e.reparse_tag = (uint32_t)rp[0] | (uint32_t)rp[1] << 8 | (uint32_t)rp[2] << 16 |
				   (uint32_t)rp[3] << 24;
		f->e.rp_reserved = (uint16_t)(rp[6] | rp[7] << 8);
		if (len > 8) {
			struct mem_src ms = {.p = rp + 8};
			if ((ret = wim_append_add_blob(r->wa, len - 8, read_mem, &ms, NULL, 0,
						       f->e.reparse_hash)))
				return ret;
		}
		f->e.rp_flags = rp_flags_for(r, f->e.reparse_tag);
	} else if (in->nlink > 1) {
		if (!r->group[in->ino])
			r->group[in->ino] = ++r->next_group;
		f->e.hard_link_group_id = r->group[in->ino];
	}
	size_t named = 0;
	for (uint32_t i = 0; i < in->nstreams; i++)
		named += in->streams[i].name != NULL;
	if (named && !(f->streams = calloc(named, sizeof(*f->streams))))
		return -ENOMEM;
	for (uint32_t i = 0; i < in->nstreams; i++) {
		struct wtg_stream *s = &in->streams[i];
		if (!s->name) {
			if ((ret = stream_hash(r, in, s, f->e.hash)))
				return ret;
			continue;
		}
		struct wim_meta_stream *ms = &f->streams[f->e.nstreams++];
		ms->name = s->name;
		if ((ret = stream_hash(r, in, s, ms->hash)))
			return ret;
	}
	f->e.streams = f->streams;
	if (in->object_id_len) {
		f->e.object_id = in->object_id;
		f->e.object_id_len = in->object_id_len;
	}
	return 0;
}

static int meta_fail(struct raw *r, const char *doing, const char *path, int ret)
{
	if (ret == -ENOMEM)
		return ret;
	snprintf(r->res->raw_reason, sizeof(r->res->raw_reason),
		 "cannot %s '%s' in the image's metadata: %s", doing, path, strerror(-ret));
	return -EAGAIN;
}

/* Adds the name @de of @in (facts @f) in its directory. */
static int add_name(struct raw *r, const struct wtg_dentry *de, struct facts *f)
{
	char dir[8192];
	int ret;

	if ((ret = dir_path(r, de->parent, dir, sizeof(dir))))
		return ret;
	f->e.name = de->name;
	f->e.dos_name = wtg_dentry_dos_name(de);
	ret = wim_meta_add(r->m, dir, &f->e);
	return ret ? meta_fail(r, "add", de->name, ret) : 0;
}

/* A new directory @de, with all it holds, from the view. */
static int add_subtree(struct raw *r, struct wtg_dentry *de)
{
	struct wtg_inode *in = de->inode;
	struct facts f;
	int ret;

	if ((ret = facts_of(r, in, &f)))
		goto out;
	if ((ret = add_name(r, de, &f)))
		goto out;
	r->mark[in->ino] |= M_DONE | M_SUBTREE;
	for (uint32_t i = 0; i < in->dir->count && !ret; i++) {
		struct wtg_dentry *c = in->dir->entries[i];
		if (c->inode->gone)
			continue;
		if (wtg_export_dirlike(c->inode)) {
			ret = add_subtree(r, c);
		} else {
			struct facts cf;
			if (!(ret = facts_of(r, c->inode, &cf)))
				ret = add_name(r, c, &cf);
			facts_release(&cf);
		}
	}
out:
	facts_release(&f);
	return ret;
}

/* ---- the change, into the metadata ---- */

static int cmp_old_deepest(const void *a, const void *b)
{
	const struct ent *x = *(struct ent *const *)a, *y = *(struct ent *const *)b;
	size_t dx = wtg_export_depth(x->c.old_path), dy = wtg_export_depth(y->c.old_path);
	return dx < dy ? 1 : dx > dy ? -1 : 0;
}

static int cmp_new_shallowest(const void *a, const void *b)
{
	const struct ent *x = *(struct ent *const *)a, *y = *(struct ent *const *)b;
	size_t dx = wtg_export_depth(x->c.path), dy = wtg_export_depth(y->c.path);
	return dx < dy ? -1 : dx > dy;
}

static bool is_root(const char *path)
{
	return !*path || !strcmp(path, ".");
}

/* @path with the renamed directory it lies in (moved aside) replaced by
 * where it lies now; malloc'd. */
static char *now_at(struct raw *r, const char *path)
{
	const struct ent *best = NULL;
	size_t blen = 0;

	for (size_t i = 0; i < r->nents; i++) {
		const struct ent *e = &r->ents[i];
		if (!e->tmp)
			continue;
		size_t n = strlen(e->c.old_path);
		if (n > blen && !strncmp(path, e->c.old_path, n) && (path[n] == '/' || !path[n])) {
			best = e;
			blen = n;
		}
	}
	if (!best)
		return strdup(path);
	char *s = malloc(strlen(best->tmp) + strlen(path + blen) + 1);
	if (s)
		sprintf(s, "%s%s", best->tmp, path + blen);
	return s;
}

/* Step 1 for a file: every name it had (some may have gone already). */
static int remove_old_names(struct raw *r, const struct ent *e)
{
	for (size_t k = 0; k < e->c.nold; k++) {
		int x = wim_meta_remove(r->m, e->c.old_links[k]);
		if (x && x != -ENOENT)
			return meta_fail(r, "remove", e->c.old_links[k], x);
	}
	return 0;
}

/* Step 2: renamed directories moved aside, deepest first (@v: room for
 * every entry); step 3: directories that went, removed where they lie now. */
static int move_and_remove_dirs(struct raw *r, struct ent **v)
{
	size_t nv = 0;
	int ret = 0;

	for (size_t i = 0; i < r->nents; i++)
		if (r->ents[i].c.old_exists && r->ents[i].c.old_dir && r->ents[i].c.status == 'R' &&
		    !r->ents[i].c.replaced && r->ents[i].c.old_path)
			v[nv++] = &r->ents[i];
	if (nv)
		qsort(v, nv, sizeof(*v), cmp_old_deepest);
	for (size_t i = 0; i < nv && !ret; i++) {
		char name[64];
		snprintf(name, sizeof(name), "wtgfs:tmp:%" PRIu64, ++r->tmp_n);
		int x = wim_meta_rename(r->m, v[i]->c.old_path, name);
		if (x)
			ret = meta_fail(r, "move", v[i]->c.old_path, x);
		else if (!(v[i]->tmp = strdup(name)))
			ret = -ENOMEM;
	}
	for (size_t i = 0; i < r->nents && !ret; i++) {
		struct ent *e = &r->ents[i];
		bool fresh = e->c.status == 'A' || e->c.status == 'T' || e->c.replaced;
		if (!e->c.old_exists || !e->c.old_dir || !(e->c.status == 'D' || fresh))
			continue;
		if (is_root(e->c.path))
			return refuse(r, "%s", "the root directory was replaced");
		char *at = now_at(r, e->c.path);
		if (!at)
			return -ENOMEM;
		int x = wim_meta_remove(r->m, at);
		if (x && x != -ENOENT)
			ret = meta_fail(r, "remove", at, x);
		free(at);
	}
	return ret;
}

/* Step 4 for a renamed directory moved aside: back, at where it is now. */
static int move_back(struct raw *r, struct ent *e)
{
	if (!e->tmp)
		return 0;
	int x = wim_meta_rename(r->m, e->tmp, e->c.path);
	if (x)
		return meta_fail(r, "move back", e->c.path, x);
	free(e->tmp);
	e->tmp = NULL;
	return 0;
}

/* The renamed directories still moved aside once every entry is placed.
 * From the tree (@from_tree), each lies under a directory added whole from
 * the tree, which brought its content: the copy aside goes.  From the diff
 * alone nothing else brings it: the plan is wrong, so this way is refused. */
static int drop_aside(struct raw *r, bool from_tree)
{
	for (size_t i = 0; i < r->nents; i++) {
		struct ent *e = &r->ents[i];
		if (!e->tmp)
			continue;
		if (!from_tree)
			return refuse(r, "renamed directory '%s' has no place from the diff alone",
				      e->c.path);
		int x = wim_meta_remove(r->m, e->tmp);
		if (x)
			return meta_fail(r, "remove", e->tmp, x);
		free(e->tmp);
		e->tmp = NULL;
	}
	return 0;
}

static int apply_change(struct raw *r)
{
	int ret = need_meta(r);

	if (ret)
		return ret;
	struct ent **v = calloc(r->nents + 1, sizeof(*v));
	size_t nv = 0;

	if (!v)
		return -ENOMEM;
	/* 1. files: every old name out, but a file changed where it is */
	for (size_t i = 0; i < r->nents && !ret; i++) {
		struct ent *e = &r->ents[i];
		if (!e->c.old_exists || e->c.old_dir)
			continue;
		struct wtg_dentry *de = e->c.new_exists && !e->c.replaced ? resolve(r, e->c.path) : NULL;
		if (de && !wtg_export_dirlike(de->inode) && e->c.nold > 0) {
			/* the base's link group of a hard-linked file */
			struct wim_meta_entry old;
			if (!wim_meta_get(r->m, e->c.old_links[0], &old) && old.hard_link_group_id &&
			    de->inode->nlink > 1)
				r->group[de->inode->ino] = old.hard_link_group_id;
		}
		if (de && e->c.status == 'M' && e->c.nold == 1 && de->inode->nlink == 1 &&
		    !wtg_export_dirlike(de->inode) && !strcmp(e->c.old_links[0], e->c.path)) {
			r->mark[de->inode->ino] |= M_IN_PLACE;
			continue;
		}
		ret = remove_old_names(r, e);
	}
	if (!ret)
		ret = move_and_remove_dirs(r, v);
	/* 4. directories that are, parents first */
	nv = 0;
	for (size_t i = 0; i < r->nents; i++)
		if (r->ents[i].c.new_exists)
			v[nv++] = &r->ents[i];
	if (nv)
		qsort(v, nv, sizeof(*v), cmp_new_shallowest);
	for (size_t i = 0; i < nv && !ret; i++) {
		struct ent *e = v[i];
		bool root = is_root(e->c.path);
		struct wtg_dentry *de = root ? NULL : resolve(r, e->c.path);
		struct wtg_inode *in = root ? wtg_view_inode(r->view, WTG_ROOT_INO) : de ? de->inode : NULL;
		if (!in) {
			ret = refuse(r, "'%s' is not in the tree the diff names", e->c.path);
			break;
		}
		if (!wtg_export_dirlike(in) || (r->mark[in->ino] & M_DONE))
			continue;
		if (!root && (r->mark[de->parent->ino] & M_SUBTREE)) {
			r->mark[in->ino] |= M_DONE;
			continue;
		}
		bool fresh = e->c.status == 'A' || e->c.status == 'T' || e->c.replaced ||
			     (e->c.old_exists && !e->c.old_dir);
		if (fresh) {
			ret = add_subtree(r, de);
			continue;
		}
		if ((ret = move_back(r, e)))
			break;
		struct facts f;
		if (!(ret = facts_of(r, in, &f))) {
			f.e.name = root ? "" : de->name;
			f.e.dos_name = root ? NULL : wtg_dentry_dos_name(de);
			int x = wim_meta_set(r->m, root ? "" : e->c.path, &f.e);
			if (x)
				ret = meta_fail(r, "update", e->c.path, x);
		}
		facts_release(&f);
		r->mark[in->ino] |= M_DONE;
	}
	/* 5. files, with every name */
	for (size_t i = 0; i < nv && !ret; i++) {
		struct ent *e = v[i];
		if (is_root(e->c.path))
			continue;
		struct wtg_dentry *de = resolve(r, e->c.path);
		if (!de) {
			ret = refuse(r, "'%s' is not in the tree the diff names", e->c.path);
			break;
		}
		struct wtg_inode *in = de->inode;
		if (wtg_export_dirlike(in) || (r->mark[in->ino] & M_DONE))
			continue;
		struct facts f;
		if ((ret = facts_of(r, in, &f))) {
			facts_release(&f);
			break;
		}
		if (r->mark[in->ino] & M_IN_PLACE) {
			f.e.name = de->name;
			f.e.dos_name = wtg_dentry_dos_name(de);
			int x = wim_meta_set(r->m, e->c.path, &f.e);
			if (x)
				ret = meta_fail(r, "update", e->c.path, x);
		} else {
			for (const struct wtg_dentry *n = in->first_name; n && !ret; n = n->alias_next)
				if (!(r->mark[n->parent->ino] & M_SUBTREE))
					ret = add_name(r, n, &f);
		}
		facts_release(&f);
		r->mark[in->ino] |= M_DONE;
	}
	if (!ret)
		ret = drop_aside(r, true);
	free(v);
	return ret;
}

/* ---- the new image's counts and references ---- */

/* The SHA-1s of @e's blobs, i < entry_nhashes(@e): the unnamed data, the
 * reparse data, then each named stream's; all zero where there is none. */
static size_t entry_nhashes(const struct wim_meta_entry *e)
{
	return 2 + e->nstreams;
}

static const uint8_t *entry_hash(const struct wim_meta_entry *e, size_t i)
{
	return i == 0 ? e->hash : i == 1 ? e->reparse_hash : e->streams[i - 2].hash;
}

static bool no_blob(const uint8_t hash[20])
{
	static const uint8_t zero[20];

	return !memcmp(hash, zero, 20);
}

static int ref_one(struct raw *r, const uint8_t hash[20], uint64_t *size)
{
	uint64_t n;

	if (no_blob(hash))
		return 0;
	if (r->take) {
		uint32_t at;
		if (wim_append_blob_at(r->wa, hash, &at, &n) || at >= r->ntake)
			return refuse(r, "%s", "the image references a blob the WIM does not hold");
		if (r->take[at] == UINT32_MAX)
			return -EOVERFLOW;
		r->take[at]++;
	} else if (wim_append_ref_size(r->wa, hash, 1, &n)) {
		return refuse(r, "%s", "the image references a blob the WIM does not hold");
	}
	*size += n;
	return 0;
}

/* The bytes of @e's streams (each blob the WIM holds): 0 or -ENOENT. */
static int entry_bytes(struct raw *r, const struct wim_meta_entry *e, uint64_t *size)
{
	uint64_t n;

	*size = 0;
	for (size_t i = 0; i < entry_nhashes(e); i++) {
		const uint8_t *hash = entry_hash(e, i);
		if (no_blob(hash))
			continue;
		if (wim_append_blob_size(r->wa, hash, &n))
			return -ENOENT;
		*size += n;
	}
	return 0;
}

/* A link (a group id and the unnamed data's hash: the names of a group link
 * only where those agree) seen first now (false) or again (true, @first
 * its first name's bytes): a set of them (open addressing, under half
 * full). */
static size_t link_slot(uint64_t id, size_t mask)
{
	return (size_t)(id * 0x9E3779B97F4A7C15ull) & mask;
}

static int seen_link(struct raw *r, const struct wim_meta_entry *e, uint64_t size, bool *again,
		     uint64_t *first)
{
	uint64_t id = e->hard_link_group_id;
	size_t mask;

	if (r->nseen * 2 >= r->seen_cap) {
		size_t cap = r->seen_cap ? r->seen_cap * 2 : 1024;
		struct seen_link *v = calloc(cap, sizeof(*v));
		if (!v)
			return -ENOMEM;
		for (size_t i = 0; i < r->seen_cap; i++)
			if (r->seen_links[i].id) {
				size_t h = link_slot(r->seen_links[i].id, cap - 1);
				while (v[h].id)
					h = (h + 1) & (cap - 1);
				v[h] = r->seen_links[i];
			}
		free(r->seen_links);
		r->seen_links = v;
		r->seen_cap = cap;
	}
	mask = r->seen_cap - 1;
	size_t h = link_slot(id, mask);
	for (; r->seen_links[h].id; h = (h + 1) & mask)
		if (r->seen_links[h].id == id && !memcmp(r->seen_links[h].hash, e->hash, 20)) {
			*again = true;
			*first = r->seen_links[h].size;
			r->seen_links[h].names++;
			return 0;
		}
	r->seen_links[h].id = id;
	r->seen_links[h].size = size;
	r->seen_links[h].names = 1;
	memcpy(r->seen_links[h].hash, e->hash, 20);
	r->nseen++;
	*again = false;
	return 0;
}

/* Whether @e may be a further name of a file (wimlib's rule, and DISM's:
 * a group id names one file only where the names' unnamed data agree, and
 * never a directory; a reparse point's dentry holds no group id). */
static bool may_link(const struct wim_meta_entry *e)
{
	return e->hard_link_group_id && !(e->attributes & (ATTR_DIRECTORY | ATTR_REPARSE));
}

/*
 * One dentry of the new image counted (the XML's counts) and its blobs
 * referenced, in the nodes' order (wim_meta_each: no paths built).  As
 * wimlib counts: each name of a file adds the file's bytes to the total,
 * and every name but the first (in the tree's order) to the hard-link
 * bytes, the file's bytes being its first name's streams.  In any order
 * that is the same sum when a file's names hold the same bytes, as they
 * do; should they differ, the bytes are counted again in the tree's order
 * (bytes_in_order).
 */
static int count(void *arg, const struct wim_meta_entry *e)
{
	struct raw *r = arg;
	uint64_t size = 0, first;
	bool again;
	int ret;

	if ((e->attributes & ATTR_DIRECTORY) && !(e->attributes & ATTR_REPARSE))
		r->dirs++;
	else
		r->files++;
	for (size_t i = 0; i < entry_nhashes(e); i++)
		if ((ret = ref_one(r, entry_hash(e, i), &size)))
			return ret;
	r->total += size;
	if (may_link(e)) {
		if ((ret = seen_link(r, e, size, &again, &first)))
			return ret;
		if (again) {
			r->hardlink += size;
			r->link_sizes_differ |= first != size;
		}
	}
	return 0;
}

static int bytes_in_order(void *arg, const char *path, const struct wim_meta_entry *e)
{
	struct raw *r = arg;
	uint64_t size, first;
	bool again = false;
	int ret;

	(void)path;
	if (entry_bytes(r, e, &size))
		return refuse(r, "%s", "the image references a blob the WIM does not hold");
	if (may_link(e) && (ret = seen_link(r, e, size, &again, &first)))
		return ret;
	r->total += again ? first : size;
	r->hardlink += again ? first : 0;
	return 0;
}

/* ---- the count as the base's and the change ---- */

/* One dentry the change took (-1) or gave (+1). */
struct touched {
	int sign;
	uint64_t id, size; /* a name of a link group (may_link), its bytes */
	uint8_t hash[20];
};

struct change_count {
	struct raw *r;
	int64_t files, dirs, total;
	struct touched *links;
	size_t nlinks, links_cap;
	struct blob_change {
		uint8_t hash[20];
		int sign;
	} * blobs;
	size_t nblobs, blobs_cap;
};

static int change_blob(struct change_count *cc, const uint8_t hash[20], int sign, uint64_t *size)
{
	uint64_t n;
	int ret;

	if (no_blob(hash))
		return 0;
	if (wim_append_blob_size(cc->r->wa, hash, &n))
		return refuse(cc->r, "%s", "the image references a blob the WIM does not hold");
	*size += n;
	if ((ret = wtg_grow((void **)&cc->blobs, &cc->blobs_cap, cc->nblobs, sizeof(*cc->blobs))))
		return ret;
	memcpy(cc->blobs[cc->nblobs].hash, hash, 20);
	cc->blobs[cc->nblobs++].sign = sign;
	return 0;
}

static int count_change(void *arg, const struct wim_meta_entry *e, int sign)
{
	struct change_count *cc = arg;
	uint64_t size = 0;
	int ret;

	if ((e->attributes & ATTR_DIRECTORY) && !(e->attributes & ATTR_REPARSE))
		cc->dirs += sign;
	else
		cc->files += sign;
	for (size_t i = 0; i < entry_nhashes(e); i++)
		if ((ret = change_blob(cc, entry_hash(e, i), sign, &size)))
			return ret;
	cc->total += sign * (int64_t)size;
	if (may_link(e)) {
		if ((ret = wtg_grow((void **)&cc->links, &cc->links_cap, cc->nlinks,
				    sizeof(*cc->links))))
			return ret;
		struct touched *t = &cc->links[cc->nlinks++];
		*t = (struct touched){.sign = sign, .id = e->hard_link_group_id, .size = size};
		memcpy(t->hash, e->hash, 20);
	}
	return 0;
}

static int cmp_touched(const void *a, const void *b)
{
	const struct touched *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	int k = memcmp(x->hash, y->hash, 20);
	return k ? k : x->sign - y->sign; /* (what went first) */
}

/* count_from_census's answer when the whole image must be counted */
#define COUNT_WHOLE 1

/* The hard link bytes the touched groups change: COUNT_WHOLE where a
 * group's names would hold different bytes (the tree's order decides
 * then) or where the change and the census disagree. */
static int change_hardlink(struct change_count *cc, int64_t *delta)
{
	const struct wtg_census *c = &cc->r->census;

	if (cc->nlinks)
		qsort(cc->links, cc->nlinks, sizeof(*cc->links), cmp_touched);
	*delta = 0;
	for (size_t i = 0, j; i < cc->nlinks; i = j) {
		const struct touched *t = &cc->links[i];
		const struct wtg_census_group *g = wtg_census_group(c, t->id, t->hash);
		int64_t names = g ? g->names : 0, left = names;
		uint64_t size = g ? g->size : 0, now = size;
		/* (the names that went sort first) */
		for (j = i; j < cc->nlinks && cc->links[j].id == t->id &&
			    !memcmp(cc->links[j].hash, t->hash, 20);
		     j++) {
			const struct touched *u = &cc->links[j];
			if (u->sign < 0) {
				if (u->size != size || --left < 0)
					return COUNT_WHOLE;
				continue;
			}
			if (!left)
				now = u->size; /* the first name of what is left */
			else if (u->size != now)
				return COUNT_WHOLE;
			left++;
		}
		/* the bytes of every name but one */
		*delta += (left > 1 ? (left - 1) * (int64_t)now : 0) -
			  (names > 1 ? (names - 1) * (int64_t)size : 0);
	}
	return 0;
}

/* The new image counted from the base's census and the change: 0, an
 * error (a refusal), or COUNT_WHOLE before anything is referenced. */
static int count_from_census(struct raw *r)
{
	const struct wtg_census *c = &r->census;
	struct change_count cc = {.r = r};
	int64_t hardlink = 0;
	int ret = wim_meta_each_change(r->m, count_change, &cc);

	if (!ret)
		ret = change_hardlink(&cc, &hardlink);
	int64_t files = (int64_t)c->files + cc.files, dirs = (int64_t)c->dirs + cc.dirs;
	int64_t total = (int64_t)c->total + cc.total, hl = (int64_t)c->hardlink + hardlink;
	if (!ret && (files < 0 || dirs < 1 || total < 0 || hl < 0 || hl > total))
		ret = COUNT_WHOLE;
	/* the references: the base's, then what the change took and gave */
	for (size_t i = 0; !ret && i < c->nrefs; i++)
		if (wim_append_ref_at(r->wa, c->refs[i].at, c->refs[i].sha1, c->refs[i].count))
			ret = refuse(r, "%s", "the image references a blob the WIM does not hold");
	for (size_t i = 0; !ret && i < cc.nblobs; i++)
		if (cc.blobs[i].sign > 0 ? wim_append_ref(r->wa, cc.blobs[i].hash, 1)
					 : wim_append_unref(r->wa, cc.blobs[i].hash, 1))
			ret = refuse(r, "%s", "the base's counts do not hold for the WIM");
	if (!ret) {
		r->files = (uint64_t)files;
		r->dirs = (uint64_t)dirs;
		r->total = (uint64_t)total;
		r->hardlink = (uint64_t)hl;
	}
	free(cc.links);
	free(cc.blobs);
	return ret;
}

/* The new image counted and its blobs referenced. */
static int count_image(struct raw *r)
{
	if (r->census_ok) {
		int ret = count_from_census(r);
		if (!ret)
			wtg_debug("export: counted as the base's counts and the change");
		if (ret != COUNT_WHOLE)
			return ret;
		wtg_debug("export: the base's counts do not serve this change: all is counted");
		r->census_ok = false;
	}
	int ret = wim_meta_each(r->m, count, r);

	if (ret || !r->link_sizes_differ)
		return ret;
	r->total = r->hardlink = 0;
	r->nseen = 0;
	memset(r->seen_links, 0, r->seen_cap * sizeof(*r->seen_links));
	return wim_meta_walk(r->m, bytes_in_order, r);
}

/* ---- the whole ---- */

static int check_identity(struct raw *r, const char *identity, int *image_ret)
{
	struct wim_append_info info;
	char id[WTG_IDENTITY_MAX];
	uint8_t sha1[20];

	wim_append_get_info(r->wa, &info);
	const char *idx = strchr(identity + 4, ':');
	int image = idx ? atoi(idx + 1) : 0;
	if (image < 1 || (uint32_t)image > info.image_count ||
	    wim_append_metadata_sha1(r->wa, image, sha1))
		return refuse(r, "%s", "the WIM does not hold the delta's base image");
	wtg_wim_identity(info.guid, image, sha1, id);
	if (strcasecmp(id, identity))
		return refuse(r, "%s", "image of the WIM is not the delta's base any more");
	*image_ret = image;
	return 0;
}

static int raw_begin(struct raw *r, const char *out, const char *identity, int *image_ret);
static int raw_finish(struct raw *r, const char *out, int image);
static int raw_end(struct raw *r, int ret);

/* (on the thread that checks the base metadata's SHA-1, while it is
 * parsed: the buffer the new metadata is written into, a copy of the old
 * with room to grow) */
static bool new_copy(struct raw *r)
{
	size_t cap = r->meta_len + r->meta_len / 4 + 65536;

	r->copy = wtg_malloc_large(cap);
	r->copy_cap = r->copy ? cap : 0;
	return r->copy;
}

static void copy_meta(void *arg)
{
	struct raw *r = arg;

	if (new_copy(r))
		memcpy(r->copy, r->meta_bytes, r->meta_len);
}

/* The base image's metadata read and parsed (its bytes kept by r->wa), its
 * link groups noted. */
static void *load_meta(void *arg)
{
	struct raw *r = arg;
	int ret = wim_append_metadata_bytes_checking(r->wa, r->meta_image, &r->meta_bytes,
						     &r->meta_len, copy_meta, r);

	timeline(r, "base metadata decoded");
	if (!ret && (ret = wim_meta_parse_shared(r->meta_bytes, r->meta_len, &r->m))) {
		if (ret != -ENOMEM)
			r->meta_why = "the base image's metadata does not parse here";
	} else if (!ret) {
		r->next_group = wim_meta_max_link_group(r->m);
	}
	timeline(r, "base metadata parsed");
	/* (the parse's bytes were what the WIM holds) */
	int check = wim_append_metadata_check(r->wa);
	timeline(r, "base metadata checked");
	if (check == -EINVAL || (ret == -EINVAL && !r->meta_why))
		r->meta_why = "the base image's metadata is corrupt";
	else if (check && !ret)
		ret = check;
	if (!ret && !r->meta_why) {
		wim_meta_give_copy(r->m, r->copy, r->copy_cap);
		r->copy = NULL;
	}
	free(r->copy);
	r->copy = NULL;
	r->meta_ret = r->meta_why ? -EAGAIN : ret;
	return NULL;
}

/* (from load_kept's decode) so many bytes of the copy are decoded */
static void kept_fed(void *ctx, size_t done)
{
	struct kept_feed *f = ctx;

	pthread_mutex_lock(&f->lock);
	f->done = done;
	pthread_cond_signal(&f->more);
	pthread_mutex_unlock(&f->lock);
}

static void kept_fed_end(struct kept_feed *f)
{
	pthread_mutex_lock(&f->lock);
	f->ended = true;
	pthread_cond_signal(&f->more);
	pthread_mutex_unlock(&f->lock);
}

/* (beside load_kept's decode, part by part as it comes) the delta's copy
 * checked against the SHA-1 it was kept under, and copied for the new
 * metadata */
static void *check_kept(void *arg)
{
	struct raw *r = arg;
	struct kept_feed *f = &r->feed;
	struct wtg_sha1 *h = wtg_sha1_new();
	size_t at = 0, done;
	uint8_t sha1[20];
	bool ended;

	new_copy(r);
	do {
		pthread_mutex_lock(&f->lock);
		while (f->done == at && !f->ended)
			pthread_cond_wait(&f->more, &f->lock);
		done = f->done;
		ended = f->ended;
		pthread_mutex_unlock(&f->lock);
		if (h)
			wtg_sha1_update(h, r->kept_bytes + at, done - at);
		if (r->copy)
			memcpy((uint8_t *)r->copy + at, r->kept_bytes + at, done - at);
		at = done;
	} while (!ended);
	r->kept_check = h && r->copy ? 0 : -ENOMEM;
	if (h)
		wtg_sha1_final(h, sha1); /* (and frees it) */
	if (!r->kept_check && (at != r->meta_len || memcmp(sha1, r->kept_sha1, 20)))
		r->kept_check = -EINVAL;
	return NULL;
}

/* The parse of the delta's copy given up (it did not decode, match or
 * parse): the WIM's own is read then. */
static void drop_kept(struct raw *r)
{
	wim_meta_free(r->m);
	r->m = NULL;
	free(r->kept_bytes);
	r->kept_bytes = NULL;
	free(r->copy);
	r->copy = NULL;
	r->meta_bytes = NULL;
	r->meta_len = 0;
	r->kept_ok = false;
	wtg_census_free(&r->census);
	r->census_ok = false;
}

/* The delta's counts of the base image (r->census_ok when they serve):
 * none, or damaged, and the whole new image is counted. */
static void load_census(struct raw *r, const uint8_t sha1[20])
{
	const char *use = getenv("WTGFS_EXPORT_CENSUS");
	uint8_t *bytes;
	size_t len;

	if (use && !strcmp(use, "0"))
		return;
	int ret = wtg_store_base_census_get(r->kept_store, &bytes, &len);
	if (ret) {
		if (ret != -ENOENT)
			wtg_debug("export: the delta's counts of the base image cannot be read");
		return;
	}
	ret = wtg_census_decode(bytes, len, &r->census);
	free(bytes);
	if (!ret && memcmp(r->census.meta_sha1, sha1, 20))
		ret = -EINVAL;
	if (ret) {
		wtg_debug("export: the delta's counts of the base image are %s: all is counted",
			  ret == -EINVAL ? "damaged" : "too large");
		wtg_census_free(&r->census);
		return;
	}
	r->census_ok = true;
}

/* load_meta on the delta's copy of the base metadata (no WIM needed):
 * r->kept_ok when the delta has one that decoded, matched the SHA-1 it was
 * kept under (r->kept_sha1) and parsed. */
static void *load_kept(void *arg)
{
	struct raw *r = arg;
	struct wtg_store_base_metadata kept;
	pthread_t tid;
	int ret = wtg_store_base_metadata_get(r->kept_store, &kept);

	if (!ret)
		load_census(r, kept.sha1);
	timeline(r, "kept copy read");
	wtg_store_close(r->kept_store);
	r->kept_store = NULL;
	if (ret) {
		drop_kept(r);
		r->kept_quiet = ret == -ENOENT; /* (none: nothing to say) */
		return NULL;
	}
	memcpy(r->kept_sha1, kept.sha1, 20);
	/* (no larger than a WIM's metadata may be: see wim_append.c) */
	if (!kept.size || kept.size > (1ull << 31) || !(r->kept_bytes = wtg_malloc_large(kept.size)))
		ret = -ENOMEM;
	r->meta_len = (size_t)kept.size;
	/* decoded here, checked and copied on a thread as the parts come */
	r->feed = (struct kept_feed){.done = 0};
	pthread_mutex_init(&r->feed.lock, NULL);
	pthread_cond_init(&r->feed.more, NULL);
	bool checking = !ret && !pthread_create(&tid, NULL, check_kept, r);
	if (!ret)
		ret = wtg_store_base_metadata_decode_each(&kept, r->kept_bytes, kept_fed, &r->feed);
	kept_fed_end(&r->feed);
	wtg_store_base_metadata_free(&kept);
	timeline(r, "base metadata decoded from the delta");
	if (!ret && !checking)
		check_kept(r); /* (no thread: all of it now) */
	if (!ret) {
		r->meta_bytes = r->kept_bytes;
		/* (with the base's counts, only what the change reaches is read) */
		ret = r->census_ok ? wim_meta_parse_lazy(r->meta_bytes, r->meta_len, &r->m)
				   : wim_meta_parse_shared(r->meta_bytes, r->meta_len, &r->m);
		if (!ret)
			r->next_group =
				r->census_ok ? r->census.max_link : wim_meta_max_link_group(r->m);
		timeline(r, "base metadata parsed");
	}
	if (checking)
		pthread_join(tid, NULL);
	pthread_mutex_destroy(&r->feed.lock);
	pthread_cond_destroy(&r->feed.more);
	timeline(r, "base metadata checked");
	if (ret || r->kept_check || !r->copy) {
		drop_kept(r);
		return NULL;
	}
	wim_meta_give_copy(r->m, r->copy, r->copy_cap);
	r->copy = NULL;
	r->kept_ok = true;
	return NULL;
}

/* Waits for load_meta: 0, or why the raw append cannot go on. */
static int need_meta(struct raw *r)
{
	if (r->meta_running) {
		pthread_join(r->meta_tid, NULL);
		r->meta_running = false;
		if (r->from_kept) {
			r->from_kept = false;
			/* the WIM takes the copy's bytes, as if it had read them */
			uint8_t sha1[20];
			if (r->kept_ok && (wim_append_metadata_sha1(r->wa, r->meta_image, sha1) ||
					   memcmp(sha1, r->kept_sha1, 20))) {
				wtg_debug("export: the delta's copy of the base metadata is not the "
					  "image's: the WIM's is read");
				drop_kept(r);
				r->kept_quiet = true;
			}
			if (r->kept_ok) {
				void *bytes = r->kept_bytes;
				r->kept_bytes = NULL; /* (taken, or freed) */
				if (wim_append_keep_metadata(r->wa, r->meta_image, bytes, r->meta_len))
					drop_kept(r);
			}
			if (!r->kept_ok) {
				if (!r->kept_quiet)
					wtg_debug("export: the delta's copy of the base metadata did "
						  "not serve: the WIM's is read");
				load_meta(r);
			}
		}
		if (r->meta_why)
			refuse(r, "%s", r->meta_why);
	}
	return r->meta_ret;
}

/* ---- the diff way: no view, no tree of the base ---- */

static bool in_list(char **v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], s))
			return true;
	return false;
}

/* The base image's entry of the old side of @e (NULL: none). */
static bool old_entry(struct raw *r, const struct ent *n, struct wim_meta_entry *old)
{
	const char *path = n->c.old_dir ? (n->c.old_path ? n->c.old_path : n->c.path)
		      : n->c.nold ? n->c.old_links[0]
				: NULL;
	return n->c.old_exists && !n->c.replaced && path && !wim_meta_get(r->m, path, old);
}

/* Reads stream @name ("" unnamed) of the new side. */
static int side_read(struct raw *r, const struct wtg_diff_entry *e, const char *name, uint8_t **buf,
		     size_t *len)
{
	int ret = *name ? wtg_diff_read_named_stream(r->diff, e, true, name, 1ull << 30, buf, len)
			: wtg_diff_read_stream(r->diff, e, true, 1ull << 30, UINT64_MAX, buf, len);

	return ret == -EFBIG ? refuse(r, "%s", "a changed stream over 1 GiB") : ret;
}

/* The diff's reads of the base's bytes, from the WIM the append holds open
 * (the base's source, which loads the WIM's blob table through wimlib,
 * is not opened). */
static int read_base(void *ctx, const uint8_t *key, size_t key_len, void *buf, size_t len,
		     uint64_t off)
{
	struct raw *r = ctx;
	uint64_t size;

	if (key_len != 20 || wim_append_blob_size(r->wa, key, &size) || off > size ||
	    len > size - off)
		return -ENOENT;
	return wim_append_read_blob(r->wa, key, buf, len, off);
}

/* The diff's ranges of the unnamed stream of @e (the rest is the base's):
 * 0 with *changed_ret NULL when it has none, or -ENOMEM. */
static int changed_ranges(const struct wtg_diff_entry *e, struct wim_append_range **changed_ret)
{
	struct wim_append_range *changed = NULL;

	if (e->nranges && !(changed = calloc(e->nranges, sizeof(*changed))))
		return -ENOMEM;
	for (size_t i = 0; i < e->nranges; i++)
		changed[i] = (struct wim_append_range){e->ranges[i].offset, e->ranges[i].length};
	*changed_ret = changed;
	return 0;
}

/*
 * The unnamed stream of the new side written as a blob when a mount kept
 * its SHA-1 (@sum): only the WIM chunks that touch the diff's ranges are
 * read, every other is the base blob @base's stored one.  1 when it cannot
 * be written so (the caller reads it all), else 0 or -errno.
 */
static int known_blob(struct raw *r, const struct wtg_diff_entry *e, const uint8_t *base,
		      const uint8_t sum[20], uint8_t hash[20])
{
	uint64_t cs = r->info.chunk_size;
	struct wim_append_range *changed;
	int ret = changed_ranges(e, &changed);

	if (ret)
		return ret;
	if (!wim_append_can_add_known(r->wa, e->new.size, base, changed, e->nranges)) {
		free(changed);
		return 1;
	}
	/* the ranges out to the chunks they touch */
	struct wtg_diff_range *want = calloc(e->nranges, sizeof(*want));
	uint8_t *buf = NULL;
	size_t len = 0;
	if (!want)
		ret = -ENOMEM;
	for (size_t i = 0; !ret && i < e->nranges; i++) {
		uint64_t lo = e->ranges[i].offset / cs * cs;
		uint64_t hi = e->ranges[i].offset + e->ranges[i].length;
		hi = hi % cs ? hi - hi % cs + cs : hi;
		want[i] = (struct wtg_diff_range){lo, hi - lo};
	}
	if (!ret)
		ret = wtg_diff_read_stream_parts(r->diff, e, want, e->nranges, 1ull << 30, &buf, &len);
	free(want);
	if (!ret && len != e->new.size)
		ret = -EIO;
	if (!ret) {
		memcpy(hash, sum, 20);
		ret = wim_append_add_known(r->wa, buf, len, base, changed, e->nranges, sum, 0);
		buf = NULL; /* (taken) */
		r->res->sums_used++;
		r->p.files_done++;
		r->p.bytes_done += len;
		if (len >= 1 << 20)
			timeline(r, "%zu bytes of %s: its kept SHA-1, the changed chunks read", len,
				 e->new.links ? e->new.links[0] : "?");
		if (!ret)
			report(r, "write");
	}
	free(buf);
	free(changed);
	return ret;
}

/* Writes stream @name ("" unnamed) of the new side as a blob, the old
 * side's blob @base (NULL: none) giving chunks to reuse; its bytes @buf
 * (taken) when side_read read them already, NULL: read here. */
static int side_blob(struct raw *r, const struct wtg_diff_entry *e, const char *name,
		     const uint8_t *base, uint8_t *buf, size_t len, uint8_t hash[20])
{
	struct wim_append_range *changed = NULL;
	int ret = *name ? 0 : changed_ranges(e, &changed);

	if (!ret && !buf)
		ret = side_read(r, e, name, &buf, &len);
	if (ret) {
		free(changed);
		return ret;
	}
	if (len >= 1 << 20)
		timeline(r, "%zu bytes of %s read", len, e->new.links ? e->new.links[0] : "?");
	memset(hash, 0, 20);
	if (len) {
		bool has_base = base && !no_blob(base);
		ret = wim_append_add_buffer(r->wa, buf, len, has_base ? base : NULL, changed,
					    *name ? 0 : e->nranges, 0, hash);
		r->p.files_done++;
		r->p.bytes_done += len;
		if (len >= 1 << 20)
			timeline(r, "... hashed and queued");
		if (!ret)
			report(r, "write");
	} else {
		free(buf);
	}
	free(changed);
	return ret;
}

static int side_facts(struct raw *r, const struct wtg_diff_entry *e, struct ent *n)
{
	const struct wtg_diff_side *s = &e->new;
	struct wim_meta_entry *fe = &n->fe, old;
	int ret;

	wim_meta_entry_init(fe);
	/* (an $EA is left out, as wimlib 1.13's NTFS-3G capture leaves it out:
	 * the image is the one a full export gives) */
	n->new_dir = s->type == WTG_DIFF_DIR;
	fe->attributes = s->attributes | (n->new_dir ? ATTR_DIRECTORY : 0);
	/* (its id once the metadata is in: add_sds, in the entries' order) */
	if (s->sd) {
		if (!(n->sd = malloc(s->sd_len ? s->sd_len : 1)))
			return -ENOMEM;
		memcpy(n->sd, s->sd, s->sd_len);
		n->sd_len = s->sd_len;
	}
	fe->creation_time = (uint64_t)s->crtime;
	fe->last_access_time = (uint64_t)s->atime;
	fe->last_write_time = (uint64_t)s->mtime;
	/* what needs the base's metadata (its old entry's hashes, a link
	 * group, reparse fixups) waits for it; a new file, or a directory
	 * without named streams, does not */
	bool needs = (n->c.old_exists && !n->c.replaced && ((!n->new_dir && s->size) || s->nstreams)) ||
		     (s->attributes & ATTR_REPARSE) || (s->nlinks > 1 && !n->new_dir);
	/* a changed file a mount saw written whole: its SHA-1 kept, only
	 * its changed chunks are read (known_blob) */
	uint8_t sum[20];
	bool data_changed = !n->new_dir && s->size && (e->changed & (WTG_DIFF_DATA | WTG_DIFF_SIZE));
	bool has_sum = data_changed && e->nranges && n->c.old_exists && !n->c.replaced &&
		       wtg_diff_stream_sum(r->diff, e, sum) == 0;
	/* (other changed data is read first: its base's metadata may still
	 * be on its way) */
	if (data_changed && !has_sum && (ret = side_read(r, e, "", &n->data, &n->data_len)))
		return ret;
	if (needs && (ret = need_meta(r)))
		return ret;
	bool have_old = needs && old_entry(r, n, &old);
	if (wtg_export_copy_links(s, &n->links, &n->nlinks))
		return -ENOMEM;
	if (s->dos_name) {
		if (s->nlinks > 1)
			return refuse(r, "%s", "a hard-linked file with a DOS name changed");
		if (!(n->dos_name = strdup(s->dos_name)))
			return -ENOMEM;
		fe->dos_name = n->dos_name;
	}
	if (s->attributes & ATTR_REPARSE) {
		if (!s->reparse || s->reparse_len < 8)
			return refuse(r, "%s", "a changed reparse point has no reparse data");
		if (s->nlinks > 1)
			return refuse(r, "%s", "a hard-linked reparse point changed");
		const uint8_t *rp = s->reparse;
		fe->reparse_tag = (uint32_t)rp[0] | (uint32_t)rp[1] << 8 | (uint32_t)rp[2] << 16 |
				  (uint32_t)rp[3] << 24;
		fe->rp_reserved = (uint16_t)(rp[6] | rp[7] << 8);
		if (s->reparse_len > 8) {
			struct mem_src ms = {.p = rp + 8};
			if ((ret = wim_append_add_blob(r->wa, s->reparse_len - 8, read_mem, &ms, NULL,
						       0, fe->reparse_hash)))
				return ret;
		}
		fe->rp_flags = rp_flags_for(r, fe->reparse_tag);
	} else if (s->nlinks > 1 && !n->new_dir) {
		fe->hard_link_group_id = have_old && old.hard_link_group_id ? old.hard_link_group_id
									    : ++r->next_group;
	}
	if (s->object_id_len) {
		if (!(n->object_id = malloc(s->object_id_len)))
			return -ENOMEM;
		memcpy(n->object_id, s->object_id, s->object_id_len);
		fe->object_id = n->object_id;
		fe->object_id_len = s->object_id_len;
	}
	/* the unnamed stream: the base's blob when the bytes did not change */
	if (!n->new_dir && s->size) {
		bool old_file = have_old && !(old.attributes & ATTR_DIRECTORY);
		if (old_file && !(e->changed & (WTG_DIFF_DATA | WTG_DIFF_SIZE))) {
			memcpy(fe->hash, old.hash, 20);
		} else if (has_sum && wim_append_has_blob(r->wa, sum)) {
			memcpy(fe->hash, sum, 20); /* (bytes the WIM holds) */
			r->res->sums_used++;
		} else {
			ret = has_sum && old_file ? known_blob(r, e, old.hash, sum, fe->hash) : 1;
			if (ret > 0) { /* read whole (or read already) */
				uint8_t *data = n->data;
				n->data = NULL; /* (taken) */
				ret = side_blob(r, e, "", have_old ? old.hash : NULL, data, n->data_len,
						fe->hash);
			}
			if (ret)
				return ret;
		}
	}
	if (s->nstreams && !(n->fstreams = calloc(s->nstreams, sizeof(*n->fstreams))))
		return -ENOMEM;
	for (size_t i = 0; i < s->nstreams; i++) {
		const struct wtg_diff_stream *ds = &s->streams[i];
		struct wim_meta_stream *ms = &n->fstreams[fe->nstreams];
		if (!*ds->name)
			continue;
		if (!(ms->name = strdup(ds->name)))
			return -ENOMEM;
		fe->nstreams++;
		const uint8_t *base = NULL;
		if (have_old)
			for (size_t k = 0; k < old.nstreams; k++)
				if (!strcmp(old.streams[k].name, ds->name))
					base = old.streams[k].hash;
		bool changed = in_list(e->streams_added, e->nstreams_added, ds->name) ||
			       in_list(e->streams_changed, e->nstreams_changed, ds->name);
		if (!ds->size)
			continue;
		if (base && !changed)
			memcpy(ms->hash, base, 20);
		else if ((ret = side_blob(r, e, ds->name, base, NULL, 0, ms->hash)))
			return ret;
	}
	fe->streams = n->fstreams;
	n->ino = e->new.ino;
	n->has_facts = true;
	return 0;
}

static int cmp_ino(const void *a, const void *b)
{
	const struct ent *x = *(struct ent *const *)a, *y = *(struct ent *const *)b;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* A file of several names changed at more than one of them has an entry
 * per name, each listing every name: the first adds them, the others
 * are marked.  (@v, @nv: the entries with facts; their order changes.) */
static void mark_other_names(struct ent **v, size_t nv)
{
	qsort(v, nv, sizeof(*v), cmp_ino);
	for (size_t i = 1; i < nv; i++)
		if (!v[i]->new_dir && !v[i - 1]->new_dir && v[i]->ino && v[i]->nlinks > 1 &&
		    v[i]->ino == v[i - 1]->ino)
			v[i]->other_name = true;
}

static int collect_side(void *arg, const struct wtg_diff_entry *e)
{
	struct raw *r = arg;
	int ret = collect(arg, e);

	if (ret || !e->new.exists)
		return ret;
	return side_facts(r, e, &r->ents[r->nents - 1]);
}

/* The security ids of the entries' descriptors, in the entries' order (the
 * order of the descriptors a new one adds). */
static int add_sds(struct raw *r)
{
	for (size_t i = 0; i < r->nents; i++) {
		struct ent *n = &r->ents[i];
		if (!n->has_facts || !n->sd)
			continue;
		int id = wim_meta_sd_add(r->m, n->sd, n->sd_len); /* (an old one's id, or new) */
		if (id < 0)
			return id;
		n->fe.security_id = id;
	}
	return 0;
}

/* "a/b/c" -> "a/b" and "c" (in @buf). */
static const char *split(const char *path, char *dir, size_t size)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;

	if (n >= size)
		n = size - 1;
	memcpy(dir, path, n);
	dir[n] = '\0';
	return slash ? slash + 1 : path;
}

static int add_at(struct raw *r, struct ent *n, const char *path)
{
	char dir[8192];

	n->fe.name = split(path, dir, sizeof(dir));
	int x = wim_meta_add(r->m, dir, &n->fe);
	return x ? meta_fail(r, "add", path, x) : 0;
}

static int apply_diff(struct raw *r)
{
	int ret = need_meta(r);

	if (ret || (ret = add_sds(r)))
		return ret;
	struct ent **v = calloc(r->nents + 1, sizeof(*v));
	size_t nv = 0;

	if (!v)
		return -ENOMEM;
	/* 1. files: every old name out, but a file changed where it is */
	for (size_t i = 0; i < r->nents && !ret; i++) {
		struct ent *e = &r->ents[i];
		if (!e->c.old_exists || e->c.old_dir)
			continue;
		if (e->c.new_exists && !e->new_dir && !e->c.replaced && e->c.status == 'M' &&
		    e->c.nold == 1 && e->nlinks == 1 && !strcmp(e->c.old_links[0], e->c.path) &&
		    !strcmp(e->links[0], e->c.path)) {
			e->in_place = true;
			continue;
		}
		ret = remove_old_names(r, e);
	}
	if (!ret)
		ret = move_and_remove_dirs(r, v);
	/* 4. directories that are, parents first; then files, every name */
	nv = 0;
	for (size_t i = 0; i < r->nents; i++)
		if (r->ents[i].c.new_exists && r->ents[i].has_facts)
			v[nv++] = &r->ents[i];
	if (nv) {
		mark_other_names(v, nv);
		qsort(v, nv, sizeof(*v), cmp_new_shallowest);
	}
	for (int pass = 0; pass < 2 && !ret; pass++)
		for (size_t i = 0; i < nv && !ret; i++) {
			struct ent *e = v[i];
			if (e->new_dir != (pass == 0))
				continue;
			if (is_root(e->c.path)) {
				e->fe.name = "";
				e->fe.dos_name = NULL;
				int x = wim_meta_set(r->m, "", &e->fe);
				if (x)
					ret = meta_fail(r, "update", "/", x);
				continue;
			}
			if (!e->new_dir && !e->in_place) {
				for (size_t k = 0; k < e->nlinks && !ret && !e->other_name; k++)
					ret = add_at(r, e, e->links[k]);
				continue;
			}
			bool fresh = e->new_dir && (e->c.status == 'A' || e->c.status == 'T' ||
						    e->c.replaced || (e->c.old_exists && !e->c.old_dir));
			if (fresh) {
				ret = add_at(r, e, e->c.path);
				continue;
			}
			if ((ret = move_back(r, e)))
				break;
			char dir[8192];
			e->fe.name = split(e->c.path, dir, sizeof(dir));
			int x = wim_meta_set(r->m, e->c.path, &e->fe);
			if (x)
				ret = meta_fail(r, "update", e->c.path, x);
		}
	if (!ret)
		ret = drop_aside(r, false);
	free(v);
	return ret;
}

/* What the raw append refuses before it opens the WIM. */
static int raw_options(struct raw *r)
{
	const struct wtg_export_options *opt = r->opt;
	const char *force = getenv("WTGFS_EXPORT_RAW");

	if (force && !strcmp(force, "0"))
		return refuse(r, "%s", "WTGFS_EXPORT_RAW=0");
	if (opt->solid)
		return refuse(r, "%s", "--solid");
	return 0;
}

/* @out opened for the append (once). */
static int raw_open(struct raw *r, const char *out)
{
	int ret;

	if (r->wa)
		return 0;
	/* (what the appender cannot read goes wimlib's way, which says what
	 * it cannot read itself: the appender's words then only with -v) */
	char held[1024];
	wtg_log_hold(held, sizeof(held));
	ret = wim_append_open(out, &r->wa);
	wtg_log_hold(NULL, 0);
	wtg_log_release(held, !ret || ret == -EBUSY);
	if (ret)
		return ret == -EBUSY ? ret : refuse(r, "%s", "the WIM cannot be read here");
	return 0;
}

/* The identity string ("wim:GUID:INDEX:SHA1", as source/wim.c makes it)
 * of the image of @out the delta @base recorded, checked against its hash. */
static int raw_begin_identity(struct raw *r, const char *out, const struct wtg_store_base *base,
			      char id[WTG_IDENTITY_MAX])
{
	struct wim_append_info info;
	uint8_t sha1[20], hash[WTG_SHA256_LEN];
	int ret;

	if ((ret = raw_options(r)) || (ret = raw_open(r, out)))
		return ret;
	timeline(r, "WIM opened");
	wim_append_get_info(r->wa, &info);
	ret = base->index < 1 || base->index > info.image_count ||
	      wim_append_metadata_sha1(r->wa, (int)base->index, sha1);
	if (ret)
		return refuse(r, "%s", "the WIM does not hold the delta's base image");
	wtg_wim_identity(info.guid, (int)base->index, sha1, id);
	wtg_sha256(id, strlen(id), hash);
	if (memcmp(hash, base->meta_hash, sizeof(hash)))
		return refuse(r, "%s", "image of the WIM is not the delta's base any more");
	return 0;
}

int wtg_export_delta_append(const char *out, const struct wtg_export_options *opt,
			    struct wtg_export_result *res)
{
	struct raw r = {.opt = opt, .res = res, .guard = {.pid = -1, .pipe = -1}};
	struct wtg_store_options so = {.read_only = true};
	struct wtg_store_base base;
	struct wtg_store *st;
	char identity[WTG_IDENTITY_MAX];
	int ret, image = 0;

	clock_gettime(CLOCK_MONOTONIC, &r.t0);

	memset(res, 0, sizeof(*res));
	if (!opt->append || !opt->delta || opt->full || !opt->name || !*opt->name)
		return refuse(&r, "%s", "not an incremental append");
	const char *force = getenv("WTGFS_EXPORT_RAW");
	if (force && !strcmp(force, "tree"))
		return refuse(&r, "%s", "WTGFS_EXPORT_RAW=tree");
	/* the delta's pages asked for at once, not one by one as the diff
	 * comes to them (the cost of a cold cache) */
	int dfd = open(opt->delta, O_RDONLY | O_CLOEXEC);
	if (dfd >= 0) {
		posix_fadvise(dfd, 0, 0, POSIX_FADV_WILLNEED);
		close(dfd);
	}
	if ((ret = wtg_store_open(opt->delta, &so, &st)))
		return ret;
	wtg_store_get_base(st, &base);
	if (opt->base_path)
		snprintf(base.path, sizeof(base.path), "%s", opt->base_path);
	timeline(&r, "delta opened");
	if (!wtg_export_same_file(out, base.path)) {
		wtg_store_close(st);
		return refuse(&r, "%s", "not an append to the delta's base WIM");
	}
	/* the delta's copy of the base metadata read and parsed while the WIM
	 * opens (the thread closes the store) */
	r.kept_store = st;
	if (raw_options(&r) || pthread_create(&r.kept_tid, NULL, load_kept, &r)) {
		wtg_store_close(st);
		r.kept_store = NULL;
	} else {
		r.kept_running = true;
	}
	/* the image the delta recorded: its identity's hash and index */
	if ((ret = raw_begin_identity(&r, out, &base, identity)))
		return raw_end(&r, ret);
	if ((ret = raw_begin(&r, out, identity, &image)))
		return raw_end(&r, ret);
	struct wtg_diff_options dopt = {.from = "base", .to = opt->at ? opt->at : "HEAD",
					.times = true, .base_path = base.path,
					.base_read = read_base, .base_read_ctx = &r};
	if ((ret = wtg_diff_open(opt->delta, &dopt, &r.diff)))
		return raw_end(&r, ret);
	timeline(&r, "diff opened");
	ret = wtg_diff_run(r.diff, collect_side, &r);
	wtg_diff_free(r.diff);
	r.diff = NULL;
	timeline(&r, "change read");
	if (!ret)
		ret = apply_diff(&r);
	timeline(&r, "change applied");
	if (!ret)
		ret = raw_finish(&r, out, image);
	timeline(&r, "done");
	return raw_end(&r, ret);
}

/* The WIM opened, checked and its base image's metadata parsed: -EAGAIN
 * (raw_reason) when the raw append cannot write it. */
static int raw_begin(struct raw *r, const char *out, const char *identity, int *image_ret)
{
	const struct wtg_export_options *opt = r->opt;
	int ret;

	if ((ret = raw_options(r)) || (ret = raw_open(r, out)))
		return ret;
	if (wim_append_unsupported(r->wa))
		return refuse(r, "%s", wim_append_unsupported(r->wa));
	wim_append_get_info(r->wa, &r->info);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	wim_append_set_threads(r->wa, opt->threads ? opt->threads : cpus > 0 ? (unsigned)cpus : 1);
	if (opt->compress != WTG_EXPORT_COMPRESS_DEFAULT) {
		static const int ct[] = {[WTG_EXPORT_COMPRESS_NONE] = 0,
					 [WTG_EXPORT_COMPRESS_XPRESS] = 1,
					 [WTG_EXPORT_COMPRESS_LZX] = 2,
					 [WTG_EXPORT_COMPRESS_LZMS] = 3};
		if (ct[opt->compress] != r->info.ctype)
			return refuse(r, "%s", "another --compress (wimlib says why not)");
	}
	if (wim_append_name_in_use(r->wa, opt->name)) {
		wtg_error("'%s' already has an image named '%s' (give another --name)", out,
			  opt->name);
		return -EEXIST;
	}
	if ((ret = check_identity(r, identity, image_ret)))
		return ret;
	/* (the base metadata read from here: it reads, the guard is for
	 * writes) */
	r->meta_image = *image_ret;
	if (r->kept_running) { /* (need_meta checks it is this image's) */
		r->kept_running = false;
		r->meta_tid = r->kept_tid;
		r->meta_running = r->from_kept = true;
	}
	if (!r->meta_running && pthread_create(&r->meta_tid, NULL, load_meta, r))
		load_meta(r);
	else
		r->meta_running = true;
	if ((ret = wtg_export_head_still(opt, r->res))) {
		if (ret == -EAGAIN)
			snprintf(r->res->raw_reason, sizeof(r->res->raw_reason), "%s",
				 r->res->full_reason);
		return ret;
	}
	/* from the first byte written: killed, even by SIGKILL, the WIM is put
	 * back as it was (a process spawned, not forked: threads may run) */
	if ((ret = wtg_export_guard_start(out, &r->guard)))
		return ret;
	r->guarded = true;
	report(r, "tree");
	return 0;
}

/* (the commit hashing the WIM for its integrity table) */
static void integrity_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct raw *r = ctx;

	r->p = (struct wtg_progress){.phase = r->p.phase, .bytes_done = done, .bytes_total = total};
	report(r, "integrity");
}

/* The new image's counts, metadata, blob table, XML and header. */
static int raw_finish(struct raw *r, const char *out, int image)
{
	const struct wtg_export_options *opt = r->opt;
	struct wtg_export_result *res = r->res;
	void *bytes = NULL;
	size_t len;
	int ret;

	report(r, "finish");
	/* (the metadata's chunks compared and compressed while the image is
	 * counted) */
	uint32_t *from = NULL;
	size_t nfrom = 0;
	if ((ret = wim_meta_write_chunked(r->m, r->info.chunk_size, &bytes, &len, &from, &nfrom)))
		return ret;
	timeline(r, "new metadata written%s",
		 r->census_ok && !wim_meta_is_lazy(r->m) ? " (the whole base metadata read)" : "");
	ret = wim_append_set_metadata_take(r->wa, bytes, len, image, from, nfrom);
	free(from);
	if (ret)
		return ret;
	if ((ret = count_image(r)))
		return ret;
	timeline(r, "image counted");
	uint64_t now = wim_append_nt_now();
	struct wim_append_image img = {.name = opt->name,
				       .description = opt->description,
				       .copy_of = image,
				       .dir_count = r->dirs,
				       .file_count = r->files,
				       .total_bytes = r->total,
				       .hard_link_bytes = r->hardlink,
				       .creation_time = now,
				       .last_modification_time = now,
				       .boot = opt->boot,
				       .integrity = opt->check};
	res->size_before = r->info.file_size;
	wim_append_set_progress(r->wa, integrity_progress, r);
	ret = wim_append_commit(r->wa, &img);
	timeline(r, "committed");
	wtg_export_guard_end(&r->guard, !ret);
	r->guarded = false;
	if (ret)
		return ret;
	wim_append_get_stats(r->wa, &res->raw_stats);
	res->raw = true;
	res->incremental = true;
	res->changes = r->nents;
	res->image = (int)r->info.image_count + 1;
	res->images = res->image;
	snprintf(res->name, sizeof(res->name), "%s", opt->name);
	struct stat st;
	res->size_after = stat(out, &st) ? 0 : (uint64_t)st.st_size;
	return 0;
}

static int raw_end(struct raw *r, int ret)
{
	need_meta(r);
	if (r->kept_running) {
		pthread_join(r->kept_tid, NULL);
		r->kept_running = false;
	}
	drop_kept(r);
	if (ret == -EAGAIN)
		wtg_debug("export: no raw append: %s", r->res->raw_reason);
	wim_meta_free(r->m);
	wim_append_free(r->wa); /* (truncates what an unfinished append wrote) */
	if (r->guarded)
		wtg_export_guard_end(&r->guard, false);
	free_ents(r);
	free(r->mark);
	free(r->group);
	free(r->seen_links);
	free(r->take);
	wtg_census_free(&r->census);
	return ret;
}

int wtg_export_raw_append(struct wtg_view *view, const char *out,
			  const struct wtg_export_options *opt, struct wtg_export_result *res)
{
	struct raw r = {.view = view, .tree = wtg_view_tree(view), .opt = opt, .res = res,
			.guard = {.pid = -1, .pipe = -1}};
	const char *identity = r.tree->source ? r.tree->source->identity : "";
	struct wtg_diff *diff = NULL;
	int ret, image = 0;

	if (!opt->append || strncmp(identity, "wim:", 4) ||
	    !wtg_export_same_file(out, r.tree->source->path))
		return refuse(&r, "%s", "not an append to the delta's base WIM");
	if ((ret = raw_begin(&r, out, identity, &image)))
		return raw_end(&r, ret);
	struct wtg_diff_options dopt = {.from = "base", .to = opt->at ? opt->at : "HEAD",
					.times = true, .base_path = r.tree->source->path};
	if ((ret = wtg_diff_open(opt->delta, &dopt, &diff)))
		return raw_end(&r, ret);
	ret = wtg_diff_run(diff, collect, &r);
	wtg_diff_free(diff);
	if (ret)
		return raw_end(&r, ret);
	wtg_view_lock_shared(view);
	uint64_t ninodes = r.tree->ninodes;
	r.mark = calloc(ninodes + 2, 1);
	r.group = calloc(ninodes + 2, sizeof(*r.group));
	ret = r.mark && r.group ? apply_change(&r) : -ENOMEM;
	wtg_view_unlock(view);
	if (!ret)
		ret = raw_finish(&r, out, image);
	return raw_end(&r, ret);
}

/* ---- at init ---- */

static int cmp_group(const void *a, const void *b)
{
	const struct wtg_census_group *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return memcmp(x->sha1, y->sha1, 20);
}

/* The census of the image parsed whole in r->m, of the WIM r->wa: 0, or
 * COUNT_WHOLE when its names' bytes differ (no census then). */
static int take_census(struct raw *r, const uint8_t meta_sha1[20], struct wtg_census *c)
{
	int ret;

	memset(c, 0, sizeof(*c));
	r->ntake = wim_append_blob_count(r->wa);
	if (!(r->take = calloc(r->ntake ? r->ntake : 1, sizeof(*r->take))))
		return -ENOMEM;
	if ((ret = wim_meta_each(r->m, count, r)))
		return ret;
	if (r->link_sizes_differ)
		return COUNT_WHOLE;
	size_t n = 0;
	for (size_t i = 0; i < r->ntake; i++)
		n += r->take[i] != 0;
	c->refs = malloc((n ? n : 1) * sizeof(*c->refs));
	c->groups = malloc((r->nseen ? r->nseen : 1) * sizeof(*c->groups));
	if (!c->refs || !c->groups)
		return -ENOMEM;
	for (size_t i = 0; i < r->ntake; i++) {
		const uint8_t *hash = wim_append_blob_hash(r->wa, i);
		if (!r->take[i] || !hash)
			continue;
		struct wtg_census_ref *ref = &c->refs[c->nrefs++];
		memcpy(ref->sha1, hash, 20);
		ref->count = r->take[i];
		ref->at = (uint32_t)i;
	}
	for (size_t i = 0; i < r->seen_cap; i++) {
		const struct seen_link *l = &r->seen_links[i];
		if (!l->id)
			continue;
		struct wtg_census_group *g = &c->groups[c->ngroups++];
		*g = (struct wtg_census_group){.id = l->id, .names = l->names, .size = l->size};
		memcpy(g->sha1, l->hash, 20);
	}
	qsort(c->groups, c->ngroups, sizeof(*c->groups), cmp_group);
	memcpy(c->meta_sha1, meta_sha1, 20);
	c->files = r->files;
	c->dirs = r->dirs;
	c->total = r->total;
	c->hardlink = r->hardlink;
	c->max_link = wim_meta_max_link_group(r->m);
	return 0;
}

/* The base image's census kept beside its metadata (@bytes): what cannot
 * be taken is not kept (an export then counts the whole image). */
static int keep_census(struct wtg_store *store, struct wim_append *wa, const uint8_t sha1[20],
		       const void *bytes, size_t len)
{
	struct wtg_export_result res = {0};
	struct raw r = {.wa = wa, .res = &res};
	struct wtg_census c = {0};
	uint8_t *enc = NULL;
	size_t n;
	int ret = wim_meta_parse_shared(bytes, len, &r.m);

	if (!ret)
		ret = take_census(&r, sha1, &c);
	if (!ret)
		ret = wtg_census_encode(&c, &enc, &n);
	if (!ret) {
		ret = wtg_store_base_census_put(store, enc, n);
	} else {
		wtg_debug("init: the base image's counts are not kept in the delta (%s)",
			  ret == COUNT_WHOLE ? "names of a file hold different bytes"
			  : ret == -EAGAIN   ? res.raw_reason
					     : strerror(-ret));
		ret = ret == -ENOMEM ? ret : 0;
	}
	free(enc);
	wtg_census_free(&c);
	wim_meta_free(r.m);
	free(r.take);
	free(r.seen_links);
	return ret;
}

int wtg_export_keep_base_metadata(struct wtg_store *store, const char *wim, int image)
{
	struct wim_append *wa = NULL;
	const void *bytes;
	size_t len;
	uint8_t sha1[20];
	int fd = open(wim, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0; /* (the source read it a moment ago: nothing to keep) */
	int ret = wim_append_open_fd(fd, wim, &wa);
	close(fd);
	if (!ret && wim_append_unsupported(wa))
		ret = -ENOTSUP;
	if (!ret)
		ret = wim_append_metadata_sha1(wa, image, sha1);
	if (!ret)
		ret = wim_append_metadata_bytes(wa, image, &bytes, &len);
	if (ret) {
		wtg_debug("init: the base image's metadata is not kept in the delta (%s)",
			  wa && wim_append_unsupported(wa) ? wim_append_unsupported(wa)
							   : strerror(-ret));
		if (wa)
			wim_append_free(wa);
		return ret == -ENOMEM ? ret : 0;
	}
	ret = wtg_store_base_metadata_put(store, sha1, bytes, len);
	if (!ret)
		ret = keep_census(store, wa, sha1, bytes, len);
	wim_append_free(wa);
	return ret;
}
