/*
 * The incremental append's plan: what the layers changed (wtg_diff from
 * the base to the snapshot) turned into wimlib update commands and the
 * few inodes a small NTFS volume must hold.  See src/export_plan.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export_plan.h"
#include "wtgfs/diff.h"
#include "wtgfs/log.h"
#include "wtgfs/mem.h"
#include "wtgfs/ntfs.h"
#include "wtgfs/source.h"
#include "wtgfs/tree.h"
#include "wtgfs/view.h"

#define ATTR_DIRECTORY 0x10u
#define ATTR_REPARSE 0x400u

/* Marks, by inode number */
enum {
	M_FILE = 1,	/* a file (or junction) the volume holds, with all its names */
	M_REFRESH = 2,	/* an existing directory added anew */
	M_NEW = 4,	/* a new directory: the volume holds all it holds */
	M_HELD = 8,	/* a directory the volume holds */
	M_QUEUED = 16,
};

struct planner {
	struct wtg_view *view;
	struct wtg_tree *tree;
	struct wtg_export_plan *plan;
	struct wtg_export_change *ents;
	size_t nents, ents_cap;
	uint8_t *mark;
	char **oldloc; /* refreshed directories: where their old copy lies */
	struct wtg_export_op *dels, *renames;
	size_t ndels, dels_cap, nrenames, renames_cap;
	struct wtg_inode **queue;
	size_t nqueue, queue_cap;
};

static int refuse(struct planner *p, const char *fmt, const char *what)
{
	snprintf(p->plan->reason, sizeof(p->plan->reason), fmt, what);
	return -EAGAIN;
}

/* "/" + @rel (+ "/" + @name) */
static char *wim_path(const char *rel, const char *name)
{
	size_t a = strlen(rel), b = name ? strlen(name) : 0;
	char *s = malloc(a + b + 3);

	if (!s)
		return NULL;
	s[0] = '/';
	memcpy(s + 1, rel, a);
	size_t o = 1 + a;
	if (name) {
		if (a)
			s[o++] = '/';
		memcpy(s + o, name, b);
		o += b;
	}
	s[o] = '\0';
	return s;
}

static int push_op(struct wtg_export_op **v, size_t *n, size_t *cap, enum wtg_export_op_kind kind,
		   char *from, char *to, bool recursive)
{
	if ((kind != WTG_EXPORT_ADD && !from) || (kind == WTG_EXPORT_RENAME && !to) ||
	    wtg_grow((void **)v, cap, *n, sizeof(**v))) {
		free(from);
		free(to);
		return -ENOMEM;
	}
	(*v)[(*n)++] = (struct wtg_export_op){.kind = kind, .from = from, .to = to,
					      .recursive = recursive};
	return 0;
}

/* ---- the diff's entries ---- */

bool wtg_export_facts_changed(const struct wtg_diff_entry *e)
{
	const unsigned facts = WTG_DIFF_ATTRIBUTES | WTG_DIFF_SECURITY | WTG_DIFF_STREAMS |
			       WTG_DIFF_REPARSE | WTG_DIFF_DOS_NAME | WTG_DIFF_OBJECT_ID |
			       WTG_DIFF_EA;

	/* a WIM keeps creation, write and access times, not the change time */
	return (e->changed & facts) || e->old.crtime != e->new.crtime ||
	       e->old.mtime != e->new.mtime || e->old.atime != e->new.atime;
}

static int collect(void *arg, const struct wtg_diff_entry *e)
{
	struct planner *p = arg;

	if (wtg_grow((void **)&p->ents, &p->ents_cap, p->nents, sizeof(*p->ents)))
		return -ENOMEM;
	return wtg_export_change_take(&p->ents[p->nents++], e);
}

int wtg_export_change_take(struct wtg_export_change *c, const struct wtg_diff_entry *e)
{
	memset(c, 0, sizeof(*c));
	c->status = e->status;
	c->replaced = e->replaced;
	c->meta = wtg_export_facts_changed(e);
	c->old_exists = e->old.exists;
	c->old_dir = (e->old.attributes & ATTR_DIRECTORY) && !(e->old.attributes & ATTR_REPARSE);
	c->new_exists = e->new.exists;
	c->path = strdup(e->path);
	c->old_path = e->old_path ? strdup(e->old_path) : NULL;
	if (!c->path || (e->old_path && !c->old_path))
		return -ENOMEM;
	return e->old.exists ? wtg_export_copy_links(&e->old, &c->old_links, &c->nold) : 0;
}

void wtg_export_change_release(struct wtg_export_change *c)
{
	free(c->path);
	free(c->old_path);
	for (size_t k = 0; k < c->nold; k++)
		free(c->old_links[k]);
	free(c->old_links);
}

int wtg_export_copy_links(const struct wtg_diff_side *side, char ***links, size_t *n)
{
	*n = 0;
	if (!side->nlinks)
		return 0;
	if (!(*links = calloc(side->nlinks, sizeof(char *))))
		return -ENOMEM;
	for (size_t i = 0; i < side->nlinks; i++, (*n)++)
		if (!((*links)[i] = strdup(side->links[i])))
			return -ENOMEM;
	return 0;
}

/* ---- the tree (under the view's shared lock) ---- */

bool wtg_export_dirlike(const struct wtg_inode *in)
{
	return in->dir && !(in->attributes & ATTR_REPARSE);
}

/* The name @rel ("a/b/c") in the view, NULL when none. */
static struct wtg_dentry *resolve(struct planner *p, const char *rel)
{
	return wtg_view_lookup_path(p->view, rel);
}

static char *path_of(struct planner *p, const struct wtg_inode *in)
{
	char buf[8192];

	if (wtg_tree_path(p->tree, in, buf, sizeof(buf)) < 0)
		return NULL;
	return wim_path(buf, NULL);
}

static void hold(struct planner *p, const struct wtg_inode *in)
{
	for (; in && !(p->mark[in->ino] & M_HELD); in = in->parent)
		p->mark[in->ino] |= M_HELD;
}

static int add_inode(struct planner *p, struct wtg_inode *in)
{
	if (wtg_grow((void **)&p->plan->inodes, &p->plan->inodes_cap, p->plan->ninodes,
		 sizeof(*p->plan->inodes)))
		return -ENOMEM;
	p->plan->inodes[p->plan->ninodes++] = in;
	return 0;
}

static void take_file(struct planner *p, struct wtg_inode *in)
{
	p->mark[in->ino] |= M_FILE;
}

static int enqueue(struct planner *p, struct wtg_inode *in)
{
	if (p->mark[in->ino] & M_QUEUED)
		return 0;
	p->mark[in->ino] |= M_QUEUED;
	if (wtg_grow((void **)&p->queue, &p->queue_cap, p->nqueue, sizeof(*p->queue)))
		return -ENOMEM;
	p->queue[p->nqueue++] = in;
	return 0;
}

static int cmp_op_from(const void *a, const void *b)
{
	return strcmp(((const struct wtg_export_op *)a)->from, ((const struct wtg_export_op *)b)->from);
}

size_t wtg_export_depth(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '/';
	return n;
}

static int cmp_op_depth(const void *a, const void *b)
{
	size_t x = wtg_export_depth(((const struct wtg_export_op *)a)->from),
	       y = wtg_export_depth(((const struct wtg_export_op *)b)->from);
	return x < y ? -1 : x > y;
}

/* True when @path is @anc or lies below it. */
static bool under(const char *path, const char *anc)
{
	size_t n = strlen(anc);

	return !strncmp(path, anc, n) && (path[n] == '\0' || path[n] == '/' || n == 1);
}

/* Step 1: the entries' own marks, deletes and renames. */
static int read_entries(struct planner *p)
{
	int ret;

	for (size_t i = 0; i < p->nents; i++) {
		struct wtg_export_change *e = &p->ents[i];
		bool fresh = e->status == 'A' || e->status == 'T' || e->replaced;
		if (e->old_exists) {
			if (!e->old_dir) {
				for (size_t k = 0; k < e->nold; k++)
					if ((ret = push_op(&p->dels, &p->ndels, &p->dels_cap,
							   WTG_EXPORT_DELETE,
							   wim_path(e->old_links[k], NULL), NULL,
							   false)))
						return ret;
			} else if (e->status == 'D' || fresh) {
				if ((ret = push_op(&p->dels, &p->ndels, &p->dels_cap,
						   WTG_EXPORT_DELETE, wim_path(e->path, NULL),
						   NULL, true)))
					return ret;
			} else if (e->status == 'R') {
				if ((ret = push_op(&p->renames, &p->nrenames, &p->renames_cap,
						   WTG_EXPORT_RENAME, wim_path(e->old_path, NULL),
						   wim_path(e->path, NULL), true)))
					return ret;
			}
		}
		if (!e->new_exists)
			continue;
		if (!strcmp(e->path, ".") || !*e->path) {
			/* wimlib keeps the image's root: its facts cannot change */
			if (e->meta)
				return refuse(p, "%s", "the root directory's own facts changed");
			continue;
		}
		struct wtg_dentry *de = resolve(p, e->path);
		if (!de)
			return refuse(p, "'%s' is not in the tree the diff names", e->path);
		struct wtg_inode *in = de->inode;
		if (!wtg_export_dirlike(in))
			take_file(p, in);
		else if (fresh || (e->old_exists && !e->old_dir))
			p->mark[in->ino] |= M_NEW;
		else if (e->meta || (e->status == 'R' && wtg_dentry_dos_name(de)))
			p->mark[in->ino] |= M_REFRESH;
	}
	return 0;
}

/* What the deletes take away that still stands in the snapshot comes back
 * from the volume: a file, with every name; a directory only when new. */
static int check_deletes(struct planner *p)
{
	for (size_t i = 0; i < p->ndels; i++) {
		struct wtg_dentry *de = resolve(p, p->dels[i].from + 1);
		if (!de)
			continue;
		struct wtg_inode *in = de->inode;
		if (!wtg_export_dirlike(in))
			take_file(p, in);
		else if (!(p->mark[in->ino] & M_NEW))
			return refuse(p, "'%s' is deleted, and an unchanged directory stands there",
				      p->dels[i].from);
	}
	return 0;
}

/* Step 2: a new directory brings all it holds (a directory renamed into
 * one too: its rename becomes a delete). */
static int close_new(struct planner *p)
{
	int ret;

	p->nqueue = 0;
	for (uint64_t ino = 1; ino <= p->tree->ninodes; ino++)
		if (p->mark[ino] & M_NEW)
			if ((ret = enqueue(p, wtg_tree_inode(p->tree, ino))))
				return ret;
	for (size_t q = 0; q < p->nqueue; q++) {
		struct wtg_dir *dir = p->queue[q]->dir;
		for (uint32_t i = 0; i < dir->count; i++) {
			struct wtg_inode *in = dir->entries[i]->inode;
			if (in->gone)
				continue;
			if (!wtg_export_dirlike(in)) {
				take_file(p, in);
				continue;
			}
			p->mark[in->ino] = (uint8_t)((p->mark[in->ino] & ~M_REFRESH) | M_NEW);
			if ((ret = enqueue(p, in)))
				return ret;
		}
	}
	for (size_t i = 0; i < p->nrenames; i++) {
		struct wtg_dentry *de = resolve(p, p->renames[i].to + 1);
		if (de && (p->mark[de->inode->ino] & M_NEW)) {
			struct wtg_export_op op = p->renames[i];
			free(op.to);
			p->renames[i--] = p->renames[--p->nrenames];
			if ((ret = push_op(&p->dels, &p->ndels, &p->dels_cap, WTG_EXPORT_DELETE,
					   op.from, NULL, true)))
				return ret;
		}
	}
	return 0;
}

/* Step 3: the refreshed directories, closed over what they hold that the
 * volume holds too (or that a rename would lose the DOS name of). */
static int close_refresh(struct planner *p)
{
	int ret;

	for (uint64_t ino = 1; ino <= p->tree->ninodes; ino++) {
		struct wtg_inode *in = wtg_tree_inode(p->tree, ino);
		if (!in || in->gone || !p->mark[ino])
			continue;
		if (p->mark[ino] & M_FILE)
			for (const struct wtg_dentry *de = in->first_name; de; de = de->alias_next)
				hold(p, de->parent);
		else
			hold(p, in);
	}
	p->nqueue = 0;
	for (uint64_t ino = 1; ino <= p->tree->ninodes; ino++)
		if (p->mark[ino] & M_REFRESH) {
			if (ino == WTG_ROOT_INO)
				return refuse(p, "%s", "the root directory's own facts changed");
			p->mark[ino] &= (uint8_t)~M_QUEUED;
			if ((ret = enqueue(p, wtg_tree_inode(p->tree, ino))))
				return ret;
		}
	for (size_t q = 0; q < p->nqueue; q++) {
		struct wtg_dir *dir = p->queue[q]->dir;
		for (uint32_t i = 0; i < dir->count; i++) {
			struct wtg_dentry *de = dir->entries[i];
			struct wtg_inode *in = de->inode;
			uint8_t m = p->mark[in->ino];
			if (in->gone)
				continue;
			if (wtg_export_dirlike(in)) {
				if (m & (M_REFRESH | M_NEW))
					continue;
				if ((m & M_HELD) || wtg_dentry_dos_name(de)) {
					p->mark[in->ino] |= M_REFRESH | M_HELD;
					if ((ret = enqueue(p, in)))
						return ret;
				}
			} else if (!(m & M_FILE) && wtg_dentry_dos_name(de)) {
				if (in->nlink > 1)
					return refuse(p, "'%s' has a DOS name and other names in a "
						      "directory whose own facts changed",
						      de->name);
				take_file(p, in);
			}
		}
	}
	return 0;
}

/* Where the old copy of refreshed directory @in lies once step 3's renames
 * are done (its parent's, below, when the parent is refreshed too). */
static int old_location(struct planner *p, struct wtg_inode *in, uint64_t *n, char **ret)
{
	char *s;

	if (p->oldloc[in->ino]) {
		*ret = p->oldloc[in->ino];
		return 0;
	}
	if (in->parent && (p->mark[in->parent->ino] & M_REFRESH)) {
		char *up;
		int r = old_location(p, in->parent, n, &up);
		if (r)
			return r;
		s = malloc(strlen(up) + in->first_name->name_len + 2);
		if (s)
			sprintf(s, "%s/%s", up, in->first_name->name);
	} else {
		char name[64];
		snprintf(name, sizeof(name), "/wtgfs:old:%" PRIu64, ++*n);
		if (!(s = strdup(name)))
			return -ENOMEM;
		char *from = path_of(p, in), *to = strdup(s);
		int r = push_op(&p->plan->ops, &p->plan->nops, &p->plan->ops_cap,
				WTG_EXPORT_RENAME, from, to, true);
		if (r) {
			free(s);
			return r;
		}
	}
	if (!s)
		return -ENOMEM;
	*ret = p->oldloc[in->ino] = s;
	return 0;
}

static int emit(struct planner *p)
{
	struct wtg_export_plan *plan = p->plan;
	int ret;

	/* 1. deletes, none below another */
	if (p->ndels)
		qsort(p->dels, p->ndels, sizeof(*p->dels), cmp_op_from);
	const char *last = NULL;
	for (size_t i = 0; i < p->ndels; i++) {
		struct wtg_export_op *d = &p->dels[i];
		if (last && under(d->from, last)) {
			if (!strcmp(d->from, last) && d->recursive)
				plan->ops[plan->nops - 1].recursive = true;
			continue;
		}
		last = d->from;
		if ((ret = push_op(&plan->ops, &plan->nops, &plan->ops_cap, WTG_EXPORT_DELETE,
				   strdup(d->from), NULL, d->recursive)))
			return ret;
	}
	/* 2. renamed directories, shallowest first, each from where the ones
	 * before it took it */
	if (p->nrenames)
		qsort(p->renames, p->nrenames, sizeof(*p->renames), cmp_op_depth);
	for (size_t i = 0; i < p->nrenames; i++) {
		const char *from = p->renames[i].from;
		char *now = NULL;
		for (size_t k = i; k-- > 0;)
			if (under(from, p->renames[k].from)) {
				size_t n = strlen(p->renames[k].from);
				now = malloc(strlen(p->renames[k].to) + strlen(from + n) + 1);
				if (now)
					sprintf(now, "%s%s", p->renames[k].to, from + n);
				break;
			}
		if (!now)
			now = strdup(from);
		if ((ret = push_op(&plan->ops, &plan->nops, &plan->ops_cap, WTG_EXPORT_RENAME, now,
				   strdup(p->renames[i].to), true)))
			return ret;
	}
	/* 3. refreshed directories out of the way */
	uint64_t n = 0;
	for (uint64_t ino = 1; ino <= p->tree->ninodes; ino++)
		if (p->mark[ino] & M_REFRESH) {
			char *loc;
			if ((ret = old_location(p, wtg_tree_inode(p->tree, ino), &n, &loc)))
				return ret;
			plan->refreshed++;
		}
	/* 4. the volume */
	if ((ret = push_op(&plan->ops, &plan->nops, &plan->ops_cap, WTG_EXPORT_ADD, NULL, NULL,
			   false)))
		return ret;
	/* 5. what the refreshed directories held, back */
	for (uint64_t ino = 1; ino <= p->tree->ninodes; ino++) {
		if (!(p->mark[ino] & M_REFRESH))
			continue;
		struct wtg_inode *d = wtg_tree_inode(p->tree, ino);
		char *to = path_of(p, d);
		if (!to)
			return -ENOMEM;
		for (uint32_t i = 0; i < d->dir->count; i++) {
			struct wtg_dentry *de = d->dir->entries[i];
			uint8_t m = p->mark[de->inode->ino];
			if (de->inode->gone || (m & (M_FILE | M_HELD | M_REFRESH | M_NEW)))
				continue;
			if ((ret = push_op(&plan->ops, &plan->nops, &plan->ops_cap,
					   WTG_EXPORT_RENAME,
					   wim_path(p->oldloc[ino] + 1, de->name),
					   wim_path(to + 1, de->name), true))) {
				free(to);
				return ret;
			}
			plan->moved++;
		}
		free(to);
	}
	/* 6. the leftovers */
	for (uint64_t i = 1; i <= n; i++) {
		char name[64];
		snprintf(name, sizeof(name), "/wtgfs:old:%" PRIu64, i);
		if ((ret = push_op(&plan->ops, &plan->nops, &plan->ops_cap, WTG_EXPORT_DELETE,
				   strdup(name), NULL, true)))
			return ret;
	}
	/* the volume's inodes */
	for (uint64_t ino = 1; ino <= p->tree->ninodes; ino++) {
		uint8_t m = p->mark[ino];
		if (!(m & (M_FILE | M_REFRESH | M_NEW)))
			continue;
		struct wtg_inode *in = wtg_tree_inode(p->tree, ino);
		if ((ret = add_inode(p, in)))
			return ret;
		for (uint32_t s = 0; s < in->nstreams; s++)
			plan->bytes += in->streams[s].size;
	}
	return 0;
}

static void free_ops(struct wtg_export_op *ops, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(ops[i].from);
		free(ops[i].to);
	}
	free(ops);
}

int wtg_export_plan_make(struct wtg_view *view, const char *delta, const char *at,
			 struct wtg_export_plan *plan)
{
	struct planner p = {.view = view, .tree = wtg_view_tree(view), .plan = plan};
	struct wtg_diff_options dopt = {.from = "base", .to = at ? at : "HEAD", .times = true,
					.base_path = p.tree->source ? p.tree->source->path : NULL};
	struct wtg_diff *diff;
	int ret;

	memset(plan, 0, sizeof(*plan));
	if ((ret = wtg_diff_open(delta, &dopt, &diff)))
		return ret;
	ret = wtg_diff_run(diff, collect, &p);
	wtg_diff_free(diff);
	plan->changes = p.nents;
	wtg_view_lock_shared(view);
	uint64_t ninodes = p.tree->ninodes;
	if (!ret && !(p.mark = calloc(ninodes + 2, 1)))
		ret = -ENOMEM;
	if (!ret && !(p.oldloc = calloc(ninodes + 2, sizeof(char *))))
		ret = -ENOMEM;
	if (!ret && p.nents > ninodes / 4 + 64)
		ret = refuse(&p, "%s", "the change touches over a quarter of the tree");
	if (!ret)
		ret = read_entries(&p);
	if (!ret)
		ret = check_deletes(&p);
	if (!ret)
		ret = close_new(&p);
	if (!ret)
		ret = close_refresh(&p);
	if (!ret)
		ret = emit(&p);
	if (!ret) {
		uint64_t data = p.tree->data_bytes;
		if (plan->bytes > data / 4 + (64u << 20) || plan->nops > ninodes / 4 + 256)
			ret = refuse(&p, "%s", "the change is over a quarter of the tree");
	}
	wtg_view_unlock(view);
	for (size_t i = 0; i < p.nents; i++)
		wtg_export_change_release(&p.ents[i]);
	free(p.ents);
	if (p.oldloc)
		for (uint64_t i = 0; i < ninodes + 2; i++)
			free(p.oldloc[i]);
	free(p.oldloc);
	free(p.mark);
	free(p.queue);
	free_ops(p.dels, p.ndels);
	free_ops(p.renames, p.nrenames);
	if (ret)
		wtg_export_plan_release(plan);
	if (ret == -EAGAIN)
		wtg_debug("export: no incremental append: %s", plan->reason);
	return ret;
}

void wtg_export_plan_release(struct wtg_export_plan *plan)
{
	char reason[sizeof(plan->reason)];

	memcpy(reason, plan->reason, sizeof(reason));
	free_ops(plan->ops, plan->nops);
	free(plan->inodes);
	memset(plan, 0, sizeof(*plan));
	memcpy(plan->reason, reason, sizeof(reason));
}
