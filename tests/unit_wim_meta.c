/*
 * wim_meta against wimlib: parsing real metadata resources and writing them
 * back unchanged gives the same bytes; every dentry's facts from the walk
 * equal wimlib_iterate_dir_tree's; re-encoding each dentry from its facts
 * gives its bytes; each change, written and parsed again, gives the tree a
 * model predicts while untouched bytes stay where they were; bad inputs are
 * -EINVAL.
 *
 *   unit_wim_meta                 all of it on a WIM wimlib captures here
 *   unit_wim_meta WIM...          all of it on each WIM's first image
 *   unit_wim_meta --patch WIM OUT writes WIM's metadata after the model's
 *                                 changes to OUT (for tests/wim-meta.sh)
 *   unit_wim_meta --same NEW.wim META [IMAGE]
 *                                 wimlib's view of NEW.wim (its image IMAGE,
 *                                 default 1) equals the walk of the metadata
 *                                 bytes in META
 *   unit_wim_meta --append WIM META
 *                                 appends to WIM with src/wim_append.c an
 *                                 image whose metadata is image 1's after
 *                                 the model's changes (written to META too)
 *   unit_wim_meta --bench WIM [N] figures for bench/wim-meta (best of N)
 */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "unit.h"
#include "wim_meta_read.h"
#include "wtgfs/hash.h"
#include "wtgfs/le.h"
#include "wtgfs/wim_append.h"
#include "wtgfs/wim_meta.h"

#define REPARSE 0x400u
/* snprintf into an array, checked */
#define FMT(buf, ...) CHECK(snprintf(buf, sizeof(buf), __VA_ARGS__) < (int)sizeof(buf))
#define DIRECTORY 0x10u

/* ---- one line of facts per dentry, the same from both sides ---- */

struct fact {
	char *path;
	char *line;	/* everything but the link group */
	uint64_t group; /* 0: none */
};

struct facts {
	struct fact *v;
	size_t n, cap;
};

static void facts_add(struct facts *f, const char *path, const char *line, uint64_t group)
{
	if (f->n == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 1024;
		f->v = realloc(f->v, f->cap * sizeof(*f->v));
	}
	f->v[f->n++] = (struct fact){strdup(path), strdup(line), group};
}

static void facts_free(struct facts *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->v[i].path);
		free(f->v[i].line);
	}
	free(f->v);
	memset(f, 0, sizeof(*f));
}

static int fact_cmp(const void *a, const void *b)
{
	const struct fact *x = a, *y = b;
	return strcmp(x->path, y->path);
}

static int group_cmp(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;
	return x[0] != y[0] ? (x[0] < y[0] ? -1 : 1) : (x[1] < y[1] ? -1 : x[1] > y[1]);
}

/* Sorted lines "path|line|link=first path of the group" (groups of one
 * name have no link: wimlib numbers those its own way). */
static char **facts_final(struct facts *f)
{
	qsort(f->v, f->n, sizeof(*f->v), fact_cmp);
	/* (group, index) pairs sorted: a group's first index is its first path */
	uint64_t(*g)[2] = calloc(f->n + 1, sizeof(*g));
	const char **first = calloc(f->n + 1, sizeof(*first));
	size_t ng = 0;
	for (size_t i = 0; i < f->n; i++)
		if (f->v[i].group) {
			g[ng][0] = f->v[i].group;
			g[ng++][1] = i;
		}
	qsort(g, ng, sizeof(*g), group_cmp);
	for (size_t i = 0; i < ng;) {
		size_t j = i;
		while (j < ng && g[j][0] == g[i][0])
			j++;
		for (size_t k = i; k < j && j - i > 1; k++)
			first[g[k][1]] = f->v[g[i][1]].path;
		i = j;
	}
	char **out = calloc(f->n + 1, sizeof(*out));
	for (size_t i = 0; i < f->n; i++) {
		size_t len = strlen(f->v[i].path) + strlen(f->v[i].line) +
			     (first[i] ? strlen(first[i]) : 0) + 16;
		out[i] = malloc(len);
		snprintf(out[i], len, "%s|%s|link=%s", f->v[i].path, f->v[i].line,
			 first[i] ? first[i] : "-");
	}
	free(g);
	free(first);
	return out;
}

static bool same_facts(struct facts *a, struct facts *b, const char *what)
{
	bool same = a->n == b->n;
	char **x = facts_final(a), **y = facts_final(b);
	size_t shown = 0;

	if (!same)
		fprintf(stderr, "%s: %zu entries against %zu\n", what, a->n, b->n);
	for (size_t i = 0; i < a->n && i < b->n; i++)
		if (strcmp(x[i], y[i])) {
			same = false;
			if (shown++ < 5)
				fprintf(stderr, "%s:\n  %s\n  %s\n", what, x[i], y[i]);
		}
	for (size_t i = 0; i < a->n; i++)
		free(x[i]);
	for (size_t i = 0; i < b->n; i++)
		free(y[i]);
	free(x);
	free(y);
	return same;
}

struct line {
	char *buf;
	size_t len, cap;
};

static void addf(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void addf(struct line *l, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(l->buf + l->len, l->cap - l->len, fmt, ap);
		va_end(ap);
		if ((size_t)n < l->cap - l->len) {
			l->len += (size_t)n;
			return;
		}
		l->cap = l->cap * 2 + (size_t)n + 64;
		l->buf = realloc(l->buf, l->cap);
	}
}

/* The common part: attributes, SD, times, reparse tag, DOS name, object id
 * (64 bytes as wimlib gives it), UNIX data, the unnamed stream and the
 * named ones. */
static void common_line(struct line *l, uint32_t attr, const void *sd, size_t sdlen,
			const uint64_t t[3], uint32_t tag, const char *dos, const uint8_t oid[64],
			const char *unix_data, const uint8_t *unnamed)
{
	char h[41], o[129];
	uint8_t sha[20];

	l->len = 0;
	addf(l, "attr=%x", attr);
	if (sd && sdlen) {
		CHECK(wtg_sha1(sd, sdlen, sha) == 0);
		wtg_hex(sha, 20, h);
		addf(l, " sd=%s", h);
	} else {
		addf(l, " sd=-");
	}
	addf(l, " t=%" PRIu64 ",%" PRIu64 ",%" PRIu64, t[0], t[1], t[2]);
	if (attr & REPARSE)
		addf(l, " tag=%x", tag);
	addf(l, " dos=%s", dos && *dos ? dos : "-");
	wtg_hex(oid, 64, o);
	addf(l, " oid=%s", o);
	addf(l, " unix=%s", unix_data);
	wtg_hex(unnamed, 20, h);
	addf(l, " s=%s", h);
}

/* ---- wimlib's side ---- */

static uint64_t nt_time(const struct wimlib_timespec *ts, int32_t high)
{
	int64_t sec = (int64_t)((uint64_t)(uint32_t)high << 32 | (uint32_t)ts->tv_sec);
	if (sizeof(ts->tv_sec) >= 8)
		sec = (int64_t)ts->tv_sec;
	return (uint64_t)(sec + 11644473600ll) * 10000000u + (uint64_t)ts->tv_nsec / 100;
}

static int wimlib_fact(const struct wimlib_dir_entry *de, void *arg)
{
	struct facts *f = arg;
	struct line l = {0};
	uint64_t t[3] = {nt_time(&de->creation_time, de->creation_time_high),
			 nt_time(&de->last_write_time, de->last_write_time_high),
			 nt_time(&de->last_access_time, de->last_access_time_high)};
	char unix_data[64] = "-";
	const char *path = de->full_path;

	if (de->unix_mode)
		FMT(unix_data, "%u:%u:%o:%u", de->unix_uid, de->unix_gid, de->unix_mode,
		    de->unix_rdev);
	common_line(&l, de->attributes, de->security_descriptor, de->security_descriptor_size, t,
		    de->reparse_tag, de->dos_name, (const uint8_t *)&de->object_id, unix_data,
		    de->streams[0].resource.sha1_hash);
	for (uint32_t i = 1; i <= de->num_named_streams; i++) {
		char h[41];
		wtg_hex(de->streams[i].resource.sha1_hash, 20, h);
		addf(&l, " %s=%s", de->streams[i].stream_name, h);
	}
	while (*path == '/')
		path++;
	facts_add(f, path, l.buf, de->num_links > 1 ? de->hard_link_group_id + 1 : 0);
	free(l.buf);
	return 0;
}

static int wimlib_facts_of(const char *wim_path, int image, struct facts *f)
{
	WIMStruct *wim;
	int code = wimlib_open_wim(wim_path, 0, &wim);
	if (code)
		return -EIO;
	code = wimlib_iterate_dir_tree(wim, image, "", WIMLIB_ITERATE_DIR_TREE_FLAG_RECURSIVE,
				       wimlib_fact, f);
	wimlib_free(wim);
	return code ? -EIO : 0;
}

static int wimlib_facts(const char *wim_path, struct facts *f)
{
	return wimlib_facts_of(wim_path, 1, f);
}

/* ---- ours ---- */

static void entry_line(const struct wim_meta *m, const struct wim_meta_entry *e, struct line *l)
{
	const void *sd = NULL;
	size_t sdlen = 0;
	uint8_t oid[64] = {0};
	char unix_data[64] = "-";
	uint64_t t[3] = {e->creation_time, e->last_write_time, e->last_access_time};

	if (e->security_id >= 0)
		CHECK(wim_meta_sd_get(m, (uint32_t)e->security_id, &sd, &sdlen) == 0);
	if (e->object_id)
		memcpy(oid, e->object_id, e->object_id_len < 64 ? e->object_id_len : 64);
	for (size_t off = 0; off + 8 <= e->tagged_len;) {
		uint32_t tag, len;
		memcpy(&tag, e->tagged + off, 4);
		memcpy(&len, e->tagged + off + 4, 4);
		if (tag == 0x337DD873 && len >= 16) {
			uint32_t u[4];
			memcpy(u, e->tagged + off + 8, 16);
			FMT(unix_data, "%u:%u:%o:%u", u[0], u[1], u[2], u[3]);
			break;
		}
		off += 8 + ((len + 7) & ~7u);
	}
	common_line(l, e->attributes, sd, sdlen, t, e->reparse_tag, e->dos_name, oid, unix_data,
		    (e->attributes & REPARSE) ? e->reparse_hash : e->hash);
	for (size_t i = 0; i < e->nstreams; i++) {
		char h[41];
		wtg_hex(e->streams[i].hash, 20, h);
		addf(l, " %s=%s", e->streams[i].name, h);
	}
}

struct walk_arg {
	const struct wim_meta *m;
	struct facts *f;
};

static int our_fact(void *arg, const char *path, const struct wim_meta_entry *e)
{
	struct walk_arg *w = arg;
	struct line l = {0};

	entry_line(w->m, e, &l);
	facts_add(w->f, path, l.buf, (e->attributes & REPARSE) ? 0 : e->hard_link_group_id);
	free(l.buf);
	return 0;
}

static void our_facts(struct wim_meta *m, struct facts *f)
{
	struct walk_arg w = {m, f};
	CHECK(wim_meta_walk(m, our_fact, &w) == 0);
}

/* ---- sibling order: wimlib's collation (upper case first), checked on
 * ASCII names ---- */

struct order {
	char *last[64];
	size_t pairs, bad;
};

static bool ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

static int collate_ascii(const char *a, const char *b)
{
	for (size_t i = 0;; i++) {
		int x = toupper((unsigned char)a[i]), y = toupper((unsigned char)b[i]);
		if (x != y || !x)
			return x - y ? x - y : strcmp(a, b);
	}
}

static int order_cb(void *arg, const char *path, const struct wim_meta_entry *e)
{
	struct order *o = arg;
	size_t depth = 0;

	if (!*path)
		return 0;
	for (const char *p = path; *p; p++)
		depth += *p == '/';
	if (depth >= 63)
		return 0;
	if (o->last[depth] && ascii(o->last[depth]) && ascii(e->name)) {
		o->pairs++;
		if (collate_ascii(o->last[depth], e->name) >= 0 && o->bad++ < 3)
			fprintf(stderr, "out of order: '%s' before '%s'\n", o->last[depth],
				e->name);
	}
	free(o->last[depth]);
	o->last[depth] = strdup(e->name);
	for (size_t d = depth + 1; d < 64 && o->last[d]; d++) {
		free(o->last[d]);
		o->last[d] = NULL;
	}
	return 0;
}

static void check_order(struct wim_meta *m)
{
	struct order o = {0};

	CHECK(wim_meta_walk(m, order_cb, &o) == 0);
	CHECK(o.pairs > 0 && o.bad == 0);
	for (size_t d = 0; d < 64; d++)
		free(o.last[d]);
}

/* ---- re-encoding: a dentry set with its own facts keeps its bytes ---- */

struct all_paths {
	char **v;
	struct wim_meta_entry *e;
	size_t n, cap;
};

static int collect(void *arg, const char *path, const struct wim_meta_entry *e)
{
	struct all_paths *a = arg;
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 1024;
		a->v = realloc(a->v, a->cap * sizeof(*a->v));
		a->e = realloc(a->e, a->cap * sizeof(*a->e));
	}
	a->e[a->n] = *e;
	a->v[a->n++] = strdup(path);
	return 0;
}

static void paths_free(struct all_paths *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	free(a->e);
	memset(a, 0, sizeof(*a));
}

static void check_reencode(const uint8_t *buf, size_t len)
{
	struct wim_meta *m;
	struct all_paths a = {0};
	void *out;
	size_t olen;

	CHECK(wim_meta_parse(buf, len, &m) == 0);
	CHECK(wim_meta_walk(m, collect, &a) == 0);
	for (size_t i = 0; i < a.n; i++) {
		struct wim_meta_entry e = a.e[i];
		CHECK(wim_meta_set(m, a.v[i], &e) == 0);
	}
	CHECK(wim_meta_write(m, &out, &olen) == 0);
	CHECK(olen == len && !memcmp(out, buf, len));
	if (olen == len) {
		size_t diff = 0;
		for (size_t i = 0; i < len; i++)
			diff += ((const uint8_t *)out)[i] != buf[i];
		if (diff)
			fprintf(stderr, "re-encoded: %zu bytes differ\n", diff);
	} else {
		fprintf(stderr, "re-encoded: %zu bytes, not %zu\n", olen, len);
	}
	free(out);
	paths_free(&a);
	wim_meta_free(m);
}

/* ---- the model of changes ---- */

static void model_set(const struct wim_meta *m, struct facts *f, const char *path,
		      const struct wim_meta_entry *e)
{
	struct line l = {0};
	entry_line(m, e, &l);
	for (size_t i = 0; i < f->n; i++)
		if (!strcmp(f->v[i].path, path)) {
			free(f->v[i].line);
			f->v[i].line = strdup(l.buf);
			f->v[i].group = (e->attributes & REPARSE) ? 0 : e->hard_link_group_id;
		}
	free(l.buf);
}

static void model_add(const struct wim_meta *m, struct facts *f, const char *dir,
		      const struct wim_meta_entry *e)
{
	struct line l = {0};
	char path[4096];
	FMT(path, "%s%s%s", dir, *dir ? "/" : "", e->name);
	entry_line(m, e, &l);
	facts_add(f, path, l.buf, (e->attributes & REPARSE) ? 0 : e->hard_link_group_id);
	free(l.buf);
}

static bool under(const char *path, const char *top)
{
	size_t n = strlen(top);
	return !strcmp(path, top) || (!strncmp(path, top, n) && path[n] == '/');
}

static void model_remove(struct facts *f, const char *top)
{
	size_t o = 0;
	for (size_t i = 0; i < f->n; i++) {
		if (under(f->v[i].path, top)) {
			free(f->v[i].path);
			free(f->v[i].line);
		} else {
			f->v[o++] = f->v[i];
		}
	}
	f->n = o;
}

static void model_rename(struct facts *f, const char *from, const char *to)
{
	for (size_t i = 0; i < f->n; i++)
		if (under(f->v[i].path, from)) {
			char *p = malloc(strlen(to) + strlen(f->v[i].path) + 1);
			sprintf(p, "%s%s", to, f->v[i].path + strlen(from));
			free(f->v[i].path);
			f->v[i].path = p;
		}
}

/* Picks targets from the tree: two files in one directory, one in another,
 * a directory below the root. */
struct pick {
	char dir1[4096], dir2[4096], file1[4096], file2[4096], file3[4096], subdir[4096];
	struct wim_meta_entry fe;
	struct all_paths files, dirs;
};

static int pick_cb(void *arg, const char *path, const struct wim_meta_entry *e)
{
	struct pick *p = arg;
	bool dir = (e->attributes & (DIRECTORY | REPARSE)) == DIRECTORY;

	if (!*path)
		return 0;
	if (dir && strchr(path, '/'))
		return collect(&p->dirs, path, e);
	if (dir || (e->attributes & REPARSE) || e->nstreams || e->hard_link_group_id)
		return 0;
	return collect(&p->files, path, e);
}

static size_t dir_len(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? (size_t)(slash - path) : 0;
}

static void pick(struct wim_meta *m, struct pick *p)
{
	struct all_paths *f = &p->files;

	CHECK(wim_meta_walk(m, pick_cb, p) == 0);
	for (size_t i = 0; i + 1 < f->n && !p->file1[0]; i++)
		for (size_t j = i + 1; j < f->n; j++)
			if (dir_len(f->v[i]) == dir_len(f->v[j]) &&
			    !strncmp(f->v[i], f->v[j], dir_len(f->v[i]))) {
				FMT(p->file1, "%s", f->v[i]);
				FMT(p->file2, "%s", f->v[j]);
				FMT(p->dir1, "%.*s", (int)dir_len(f->v[i]), f->v[i]);
				p->fe = f->e[i];
				break;
			}
	for (size_t i = 0; i < f->n && p->file1[0]; i++)
		if (dir_len(f->v[i]) != strlen(p->dir1) ||
		    strncmp(f->v[i], p->dir1, strlen(p->dir1))) {
			FMT(p->file3, "%s", f->v[i]);
			FMT(p->dir2, "%.*s", (int)dir_len(f->v[i]), f->v[i]);
			break;
		}
	/* a directory to rename and remove that holds none of the others */
	for (size_t i = 0; i < p->dirs.n && p->file3[0]; i++)
		if (!under(p->dir1, p->dirs.v[i]) && !under(p->dir2, p->dirs.v[i])) {
			FMT(p->subdir, "%s", p->dirs.v[i]);
			break;
		}
	paths_free(&p->dirs);
}

static size_t bytes_differing(const uint8_t *a, const uint8_t *b, size_t n)
{
	size_t d = 0;
	for (size_t i = 0; i < n; i++)
		d += a[i] != b[i];
	return d;
}

/* Writes @m, parses the result again and compares its walk with @model. */
static struct wim_meta *rewrite(struct wim_meta *m, struct facts *model, const char *what,
				void **out, size_t *olen)
{
	struct wim_meta *m2 = NULL;
	struct facts got = {0};

	CHECK(wim_meta_write(m, out, olen) == 0);
	CHECK(wim_meta_parse(*out, *olen, &m2) == 0);
	if (!m2)
		return NULL;
	our_facts(m2, &got);
	CHECK(same_facts(model, &got, what));
	check_order(m2);
	facts_free(&got);
	return m2;
}

/* The changes: each kind once, on targets picked from the tree.  Returns
 * the final bytes in *out (for --patch). */
static void check_changes(const uint8_t *buf, size_t len, void **final, size_t *final_len)
{
	struct wim_meta *m;
	struct facts model = {0};
	struct pick p = {0};
	void *out;
	size_t olen;
	char path[8192];

	CHECK(wim_meta_parse(buf, len, &m) == 0);
	our_facts(m, &model);
	pick(m, &p);
	CHECK(p.file1[0] && p.file2[0] && p.file3[0] && p.subdir[0]);
	if (!p.file1[0] || !p.file2[0] || !p.file3[0] || !p.subdir[0])
		fprintf(stderr, "picked '%s' '%s' '%s' '%s'\n", p.file1, p.file2, p.file3,
			p.subdir);
	if (!p.file1[0] || !p.file2[0] || !p.file3[0] || !p.subdir[0])
		goto out;

	/* 1. same length: in place, nothing else moves */
	struct wim_meta_entry e;
	CHECK(wim_meta_get(m, p.file1, &e) == 0);
	e.last_write_time += 12345;
	e.attributes ^= 0x1; /* READONLY */
	CHECK(wim_meta_set(m, p.file1, &e) == 0);
	model_set(m, &model, p.file1, &e);
	struct wim_meta *m2 = rewrite(m, &model, "set in place", &out, &olen);
	CHECK(olen == len);
	CHECK(olen != len || bytes_differing(out, buf, len) <= 16);
	CHECK(olen != len || bytes_differing(out, buf, len) > 0);
	free(out);
	wim_meta_free(m2);

	/* 2. a longer DOS name and a new named stream: the list moves */
	CHECK(wim_meta_get(m, p.file2, &e) == 0);
	/* the data of blobs the WIM has, so that wimlib can apply the result */
	struct wim_meta_stream s[2] = {{"extra:stream", {0}}, {"Zone.Identifier", {0}}};
	memcpy(s[0].hash, p.fe.hash, 20);
	e.streams = s;
	e.nstreams = 2;
	e.dos_name = "LONGERDO.SNM";
	CHECK(wim_meta_set(m, p.file2, &e) == 0);
	model_set(m, &model, p.file2, &e);
	m2 = rewrite(m, &model, "set longer", &out, &olen);
	CHECK(olen > len);
	CHECK(olen < len || bytes_differing(out, buf, len) < 4096);
	free(out);
	wim_meta_free(m2);

	/* 3. a new file, with a name that is not valid UTF-16 (an unpaired
	 * surrogate), an object id, a link group (the DOS name goes on a file
	 * of one name below: ntfs-3g shows none on a file of several) */
	struct wim_meta_entry n;
	static const uint8_t oid[64] = {0xAB, 0xCD, 1,	2,  3,	4,  5,	6, 7,
					8,    9,    10, 11, 12, 13, 14, 15};
	wim_meta_entry_init(&n);
	n.name = "new \xed\xa0\x80 file.txt";
	n.attributes = 0x20;
	n.security_id = p.fe.security_id;
	n.creation_time = n.last_access_time = n.last_write_time = 132000000000000000ull;
	memcpy(n.hash, p.fe.hash, 20);
	n.object_id = oid;
	n.object_id_len = 64;
	n.hard_link_group_id = wim_meta_max_link_group(m) + 1;
	CHECK(wim_meta_add(m, p.dir1, &n) == 0);
	model_add(m, &model, p.dir1, &n);
	CHECK(wim_meta_add(m, p.dir1, &n) == -EEXIST);
	/* a second name of it */
	n.name = "new link.txt";
	CHECK(wim_meta_add(m, p.dir2, &n) == 0);
	model_add(m, &model, p.dir2, &n);
	CHECK(wim_meta_max_link_group(m) == n.hard_link_group_id);

	/* 4. a new directory with children, one of them a directory */
	struct wim_meta_entry d;
	wim_meta_entry_init(&d);
	d.name = "New Dir";
	d.dos_name = "NEWDIR~1";
	d.attributes = DIRECTORY;
	d.security_id = p.fe.security_id;
	d.creation_time = 1;
	CHECK(wim_meta_add(m, p.dir2, &d) == 0);
	model_add(m, &model, p.dir2, &d);
	FMT(path, "%s%sNew Dir", p.dir2, *p.dir2 ? "/" : "");
	d.name = "sub";
	d.dos_name = NULL;
	CHECK(wim_meta_add(m, path, &d) == 0);
	model_add(m, &model, path, &d);
	wim_meta_entry_init(&n);
	n.name = "child.bin";
	n.dos_name = "CHILD~1.BIN";
	n.security_id = p.fe.security_id;
	n.attributes = 0x80;
	memcpy(n.hash, p.fe.hash, 20);
	CHECK(wim_meta_add(m, path, &n) == 0);
	model_add(m, &model, path, &n);
	CHECK(wim_meta_add(m, p.file3, &n) == -ENOTDIR);
	CHECK(wim_meta_add(m, "no/such/dir", &n) == -ENOENT);
	n.name = "bad/name";
	CHECK(wim_meta_add(m, path, &n) == -EINVAL);
	n.name = "..";
	CHECK(wim_meta_add(m, path, &n) == -EINVAL);
	m2 = rewrite(m, &model, "add", &out, &olen);
	free(out);
	wim_meta_free(m2);

	/* 5. rename across directories, a directory too; remove a file and a
	 * subtree */
	char to[8192];
	const char *base = strrchr(p.file3, '/') ? strrchr(p.file3, '/') + 1 : p.file3;
	FMT(to, "%s/moved %s", path, base);
	CHECK(wim_meta_rename(m, p.file3, to) == 0);
	model_rename(&model, p.file3, to);
	CHECK(wim_meta_rename(m, p.dir2, path) == -EINVAL || !*p.dir2);
	CHECK(wim_meta_rename(m, p.file1, p.file2) == -EEXIST);
	FMT(to, "%s renamed", p.subdir);
	CHECK(wim_meta_rename(m, p.subdir, to) == 0);
	model_rename(&model, p.subdir, to);
	CHECK(wim_meta_remove(m, p.file1) == 0);
	model_remove(&model, p.file1);
	CHECK(wim_meta_remove(m, to) == 0);
	model_remove(&model, to);
	CHECK(wim_meta_remove(m, to) == -ENOENT);
	CHECK(wim_meta_remove(m, "") == -EINVAL);
	m2 = rewrite(m, &model, "rename and remove", &out, &olen);
	free(out);
	wim_meta_free(m2);

	/* 6. a new security descriptor: the table grows, the root moves */
	const void *sd;
	size_t sdlen;
	uint32_t nsd = wim_meta_sd_count(m);
	/* a minimal self-relative descriptor (a NULL DACL) when there is none */
	static const uint8_t null_dacl[20] = {1, 0, 0x04, 0x80};
	sd = null_dacl;
	sdlen = sizeof(null_dacl);
	if (nsd)
		CHECK(wim_meta_sd_get(m, 0, &sd, &sdlen) == 0);
	/* a new one that stays valid for libntfs-3g: other control flags
	 * (auto-inherited, protected) */
	uint8_t *sd2 = malloc(sdlen);
	memcpy(sd2, sd, sdlen);
	if (nsd) {
		CHECK(wim_meta_sd_find(m, sd2, sdlen) == 0);
		CHECK(wim_meta_sd_add(m, sd2, sdlen) == 0);
	}
	for (int flip = 0; flip < 3 && wim_meta_sd_find(m, sd2, sdlen) >= 0; flip++) {
		sd2[3] ^= (uint8_t)(flip & 1 ? 0x10 : 0x04);
		CHECK(sdlen >= 4);
	}
	CHECK(wim_meta_sd_find(m, sd2, sdlen) == -ENOENT);
	int id = wim_meta_sd_add(m, sd2, sdlen);
	CHECK(id == (int)nsd);
	CHECK(wim_meta_sd_count(m) == nsd + 1);
	CHECK(wim_meta_sd_add(m, sd2, sdlen) == id);
	CHECK(wim_meta_sd_add(m, sd2, 0) == -EINVAL);
	CHECK(wim_meta_get(m, p.file2, &e) == 0);
	e.security_id = id;
	CHECK(wim_meta_set(m, p.file2, &e) == 0);
	model_set(m, &model, p.file2, &e);
	CHECK(wim_meta_get(m, "", &e) == 0);
	e.security_id = id;
	CHECK(wim_meta_set(m, "", &e) == 0);
	model_set(m, &model, "", &e);
	uint8_t *sd2_copy = sd2; /* freed after step 7 */
	e.security_id = (int32_t)wim_meta_sd_count(m);
	CHECK(wim_meta_set(m, p.file2, &e) == -EINVAL);
	m2 = rewrite(m, &model, "new SD", &out, &olen);
	free(out);
	wim_meta_free(m2);

	/* 7. many new descriptors (the last byte of a SID varied): the table
	 * grows over the first lists, which all move out of its way */
	uint8_t *sd3 = malloc(sdlen);
	memcpy(sd3, sd2_copy, sdlen);
	int last = -1;
	for (int i = 0; i < 256; i++) {
		sd3[sdlen - 1] = (uint8_t)i;
		int x = wim_meta_sd_add(m, sd3, sdlen);
		CHECK(x >= 0);
		if (x > last)
			last = x;
	}
	free(sd3);
	free(sd2_copy);
	CHECK(wim_meta_get(m, p.file2, &e) == 0);
	e.security_id = last;
	CHECK(wim_meta_set(m, p.file2, &e) == 0);
	model_set(m, &model, p.file2, &e);
	m2 = rewrite(m, &model, "many new SDs", &out, &olen);
	/* writing twice gives the same */
	void *again;
	size_t alen;
	CHECK(wim_meta_write(m, &again, &alen) == 0);
	CHECK(alen == olen && !memcmp(again, out, olen));
	free(again);
	/* the second generation patches the first */
	if (m2) {
		CHECK(wim_meta_get(m2, p.file2, &e) == 0);
		e.last_access_time++;
		CHECK(wim_meta_set(m2, p.file2, &e) == 0);
		model_set(m2, &model, p.file2, &e);
		void *out2;
		size_t olen2;
		struct wim_meta *m3 = rewrite(m2, &model, "second generation", &out2, &olen2);
		CHECK(olen2 == olen && bytes_differing(out2, out, olen) <= 8);
		wim_meta_free(m3);
		free(out2);
		wim_meta_free(m2);
	}
	if (final) {
		*final = out;
		*final_len = olen;
	} else {
		free(out);
	}
out:
	paths_free(&p.files);
	facts_free(&model);
	wim_meta_free(m);
}

/* ---- bad input ---- */

static int parse_copy(const uint8_t *buf, size_t len)
{
	/* an exact copy so that ASan sees a read past the end */
	uint8_t *c = malloc(len ? len : 1);
	struct wim_meta *m = NULL;
	memcpy(c, buf, len);
	int ret = wim_meta_parse(c, len, &m);
	CHECK((ret == 0) == (m != NULL));
	wim_meta_free(m);
	free(c);
	return ret;
}

/* The offset of the first directory with children (@dir) or the first
 * file in the list at @off; 0 when there is none. */
static uint64_t first_in_list(const uint8_t *buf, size_t len, uint64_t off, bool dir)
{
	while (off + 0x66 <= len) {
		uint64_t l = (wtg_get_le64(buf + off) + 7) & ~7ull;
		uint32_t attr;
		uint16_t ns;
		if (l <= 8)
			break;
		memcpy(&attr, buf + off + 8, 4);
		uint64_t sub = wtg_get_le64(buf + off + 0x10);
		if (dir ? (attr & (DIRECTORY | REPARSE)) == DIRECTORY && sub && sub + 8 <= len &&
			      wtg_get_le64(buf + sub) > 8
			: !(attr & DIRECTORY))
			return off;
		memcpy(&ns, buf + off + 0x60, 2);
		off += l;
		for (unsigned i = 0; i < ns && off + 8 <= len; i++)
			off += (wtg_get_le64(buf + off) + 7) & ~7ull;
	}
	return 0;
}

/* The next dentry after the one at @off (with its stream entries). */
static uint64_t next_in_list(const uint8_t *buf, size_t len, uint64_t off)
{
	uint16_t ns;

	memcpy(&ns, buf + off + 0x60, 2);
	off += (wtg_get_le64(buf + off) + 7) & ~7ull;
	for (unsigned i = 0; i < ns && off + 8 <= len; i++)
		off += (wtg_get_le64(buf + off) + 7) & ~7ull;
	return off;
}

/* Two names in one list made the same (siblings whose names have one
 * length): the parse takes it (it indexes no names), a lookup in that
 * directory is refused. */
static void check_same_names(const uint8_t *buf, size_t len, uint64_t list)
{
	for (uint64_t a = list; a + 0x66 <= len && wtg_get_le64(buf + a) > 8;
	     a = next_in_list(buf, len, a)) {
		uint64_t b = next_in_list(buf, len, a);
		if (b + 0x66 > len || wtg_get_le64(buf + b) <= 8)
			return;
		uint16_t an = wtg_get_le16(buf + a + 0x64), bn = wtg_get_le16(buf + b + 0x64);
		if (an != bn || !an || an > 2 * 64 || memcmp(buf + a + 0x62, buf + b + 0x62, 2))
			continue;
		char name[65];
		bool ascii = true;
		for (unsigned i = 0; i < an / 2u; i++) {
			uint16_t u = wtg_get_le16(buf + a + 0x66 + 2 * i);
			ascii &= u > 0x20 && u < 0x7F;
			name[i] = (char)u;
		}
		name[an / 2] = 0;
		if (!ascii)
			continue;
		uint8_t *c = malloc(len);
		struct wim_meta *m;
		struct wim_meta_entry e;
		CHECK(c);
		memcpy(c, buf, len);
		memcpy(c + b + 0x66, buf + a + 0x66, an);
		CHECK(wim_meta_parse(c, len, &m) == 0);
		if (m) {
			CHECK(wim_meta_get(m, name, &e) == -EINVAL);
			wim_meta_free(m);
		}
		free(c);
		return;
	}
	CHECK(!"no two names of one length side by side in the root's list");
}

static void check_bad(const uint8_t *buf, size_t len)
{
	uint8_t *b = malloc(len);
	uint64_t root = ((uint64_t)(uint32_t)wtg_get_le64(buf) + 7) & ~7ull;
	/* truncated anywhere */
	for (size_t k = 0; k < len; k += (k < 512 ? 1 : len / 97 + 1))
		CHECK(parse_copy(buf, k) == -EINVAL);
	CHECK(parse_copy(buf, len - 8) == -EINVAL);
	CHECK(parse_copy(buf, len - 1) == -EINVAL);

#define MUTATE(stmt)                                                                               \
	do {                                                                                       \
		memcpy(b, buf, len);                                                               \
		stmt;                                                                              \
		CHECK(parse_copy(b, len) == -EINVAL);                                              \
	} while (0)
	/* a security table longer than the resource, absurd counts and sizes */
	MUTATE(wtg_put_le32(b, (uint32_t)len + 8));
	MUTATE(wtg_put_le32(b + 4, 0xFFFFFFFF));
	MUTATE(wtg_put_le32(b + 4, (uint32_t)(root / 8)));
	MUTATE(wtg_put_le64(b + 8, 0xFFFFFFFFFFull));
	MUTATE(wtg_put_le64(b + 8, root));
	/* the root: a length past the end, unaligned and out of range lists */
	MUTATE(wtg_put_le64(b + root, len));
	MUTATE(wtg_put_le64(b + root, 1ull << 63));
	MUTATE(wtg_put_le64(b + root + 0x10, len));
	MUTATE(wtg_put_le64(b + root + 0x10, wtg_get_le64(buf + root + 0x10) + 4));
	MUTATE(wtg_put_le64(b + root + 0x10, 0xFFFFFFFFFFFFFFF8ull));
	MUTATE(wtg_put_le32(b + root + 0x08, 0x20)); /* the root is no directory */
	/* the root's list pointing at the root itself, or at the table */
	MUTATE(wtg_put_le64(b + root + 0x10, root));
	MUTATE(wtg_put_le64(b + root + 0x10, 8));
	uint64_t first = wtg_get_le64(buf + root + 0x10);
	/* the first child: odd name lengths, absurd stream counts, a bad id */
	MUTATE(wtg_put_le16(b + first + 0x64, (uint16_t)(*(uint16_t *)(buf + first + 0x64) | 1)));
	MUTATE(wtg_put_le16(b + first + 0x62, 1));
	MUTATE(wtg_put_le16(b + first + 0x62, 0xFFFE));
	MUTATE(wtg_put_le16(b + first + 0x60, 0xFFFF));
	MUTATE(wtg_put_le32(b + first + 0x0C, 0x7FFFFFFF));
	MUTATE(wtg_put_le64(b + first, 0x60));
	MUTATE(wtg_put_le16(b + first + 0x66, 0)); /* an embedded NUL */
	/* a directory's list looping back: to the root's list, into itself */
	uint64_t dir = first_in_list(buf, len, first, true);
	CHECK(dir);
	if (dir) {
		MUTATE(wtg_put_le64(b + dir + 0x10, first));
		MUTATE(wtg_put_le64(b + dir + 0x10, dir));
	}
	/* a file with children */
	uint64_t file = 0;
	for (uint64_t list = first; !file && list;) {
		file = first_in_list(buf, len, list, false);
		uint64_t d = first_in_list(buf, len, list, true);
		list = d ? wtg_get_le64(buf + d + 0x10) : 0;
	}
	CHECK(file);
	if (file)
		MUTATE(wtg_put_le64(b + file + 0x10, first));
#undef MUTATE
	check_same_names(buf, len, first);
	free(b);
}

/* ---- one WIM ---- */

/* A name added near the end of a directory of 1,200 files, written for an
 * appender of 32 KiB chunks: the list goes where its kept entries fall at
 * their old offsets within a chunk, so the chunks they fill equal old ones
 * (the map says which), and the tree is the model's. */
static void check_chunked(const uint8_t *buf, size_t len)
{
	const uint32_t cs = 32768;
	struct wim_meta *m, *m1 = NULL, *m2 = NULL;
	struct facts model = {0}, got = {0};
	struct wim_meta_entry d, n;
	void *b1 = NULL, *b2 = NULL;
	size_t l1, l2, nfrom = 0;
	uint32_t *from = NULL;
	char name[64];

	CHECK(wim_meta_parse(buf, len, &m) == 0);
	if (!m)
		return;
	/* unchanged: the parsed bytes, every chunk its own */
	CHECK(wim_meta_write_chunked(m, cs, &b1, &l1, &from, &nfrom) == 0);
	CHECK(l1 == len && !memcmp(b1, buf, len) && nfrom == (len + cs - 1) / cs);
	for (size_t k = 0; k < nfrom; k++)
		CHECK(from[k] == k);
	free(b1);
	free(from);
	CHECK(wim_meta_write_chunked(m, 0, &b1, &l1, &from, &nfrom) == -EINVAL);
	wim_meta_entry_init(&d);
	d.name = "Big";
	d.attributes = DIRECTORY;
	CHECK(wim_meta_add(m, "", &d) == 0);
	wim_meta_entry_init(&n);
	n.attributes = 0x20;
	n.creation_time = n.last_access_time = n.last_write_time = 132000000000000000ull;
	memset(n.hash, 0x5a, 20);
	for (int i = 0; i < 1200; i++) {
		FMT(name, "chunked-%04d.bin", i);
		n.name = name;
		CHECK(wim_meta_add(m, "Big", &n) == 0);
	}
	CHECK(wim_meta_write(m, &b1, &l1) == 0);
	CHECK(wim_meta_parse(b1, l1, &m1) == 0);
	if (!m1)
		goto out;
	our_facts(m1, &model);
	n.name = "chunked-1150x.bin";
	CHECK(wim_meta_add(m1, "Big", &n) == 0);
	model_add(m1, &model, "Big", &n);
	CHECK(wim_meta_write_chunked(m1, cs, &b2, &l2, &from, &nfrom) == 0);
	CHECK(from && nfrom == (l2 + cs - 1) / cs);
	CHECK(wim_meta_parse(b2, l2, &m2) == 0);
	if (!m2 || !from)
		goto out;
	our_facts(m2, &got);
	CHECK(same_facts(&model, &got, "chunked write"));
	check_order(m2);
	size_t moved = 0, equal = 0;
	for (size_t k = 0; k < nfrom; k++) {
		CHECK(from[k] < (l1 + cs - 1) / cs);
		if (from[k] == k)
			continue;
		moved++;
		if ((k + 1) * cs <= l2 && (from[k] + 1) * (size_t)cs <= l1 &&
		    !memcmp((uint8_t *)b2 + k * cs, (uint8_t *)b1 + (size_t)from[k] * cs, cs))
			equal++;
	}
	/* (1,150 entries of 136 bytes kept: 4 whole chunks at least; then the
	 * chunks from the new name on) */
	printf("chunked: %zu of %zu chunks moved, %zu equal to old ones\n", moved, nfrom, equal);
	CHECK(equal >= 4 && moved <= equal + 2);
	/* the plain write of the same change moves nothing */
	void *b3;
	size_t l3;
	CHECK(wim_meta_write(m1, &b3, &l3) == 0);
	CHECK(l3 < l2);
	free(b3);
out:
	facts_free(&model);
	facts_free(&got);
	wim_meta_free(m);
	wim_meta_free(m1);
	wim_meta_free(m2);
	free(b1);
	free(b2);
	free(from);
}

/* ---- a lazy parse: the same result as a whole one ---- */

struct change_lines {
	char **v;
	size_t n, cap;
	const struct wim_meta *m;
};

static int str_cmp(const void *a, const void *b);

static void lines_push(struct change_lines *c, char *s)
{
	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 256;
		c->v = realloc(c->v, c->cap * sizeof(*c->v));
	}
	c->v[c->n++] = s;
}

static void lines_add(struct change_lines *c, int sign, const struct wim_meta_entry *e)
{
	struct line l = {0};
	entry_line(c->m, e, &l);
	addf(&l, " name=%s", e->name);
	char *s = malloc(l.len + 3);
	sprintf(s, "%c %s", sign < 0 ? '-' : '+', l.buf);
	lines_push(c, s);
	free(l.buf);
}

static int change_cb(void *arg, const struct wim_meta_entry *e, int sign)
{
	lines_add(arg, sign, e);
	return 0;
}

static int all_cb(void *arg, const char *path, const struct wim_meta_entry *e)
{
	(void)path;
	lines_add(arg, 1, e);
	return 0;
}

static void lines_sort(struct change_lines *c)
{
	qsort(c->v, c->n, sizeof(*c->v), str_cmp);
}

static void lines_free(struct change_lines *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i]);
	free(c->v);
}

/* The same changes as check_changes (without a new descriptor unless
 * @sd), on any model. */
static void lazy_ops(struct wim_meta *m, const struct pick *p, bool sd)
{
	struct wim_meta_entry e, n, d;
	char path[8192], to[8192];

	CHECK(wim_meta_get(m, p->file1, &e) == 0);
	e.last_write_time += 12345;
	CHECK(wim_meta_set(m, p->file1, &e) == 0);
	CHECK(wim_meta_get(m, p->file2, &e) == 0);
	e.dos_name = "LONGERDO.SNM";
	CHECK(wim_meta_set(m, p->file2, &e) == 0);
	wim_meta_entry_init(&n);
	n.name = "new file.txt";
	n.attributes = 0x20;
	n.security_id = p->fe.security_id;
	memcpy(n.hash, p->fe.hash, 20);
	CHECK(wim_meta_add(m, p->dir1, &n) == 0);
	wim_meta_entry_init(&d);
	d.name = "New Dir";
	d.attributes = DIRECTORY;
	d.security_id = p->fe.security_id;
	CHECK(wim_meta_add(m, p->dir2, &d) == 0);
	FMT(path, "%s%sNew Dir", p->dir2, *p->dir2 ? "/" : "");
	CHECK(wim_meta_add(m, path, &n) == 0);
	const char *base = strrchr(p->file3, '/') ? strrchr(p->file3, '/') + 1 : p->file3;
	FMT(to, "%s/moved %s", path, base);
	CHECK(wim_meta_rename(m, p->file3, to) == 0);
	CHECK(wim_meta_remove(m, p->subdir) == 0);
	CHECK(wim_meta_remove(m, p->file1) == 0);
	if (sd) {
		static const uint8_t null_dacl[20] = {1, 0, 0x04, 0x80, 0, 0, 0, 0, 0, 0,
						      0, 0, 0,	  0,	0, 0, 0, 0, 0, 0x5A};
		int id = wim_meta_sd_add(m, null_dacl, sizeof(null_dacl));
		CHECK(id >= 0);
		CHECK(wim_meta_get(m, p->file2, &e) == 0);
		e.security_id = id;
		CHECK(wim_meta_set(m, p->file2, &e) == 0);
	}
}

static void check_lazy(const uint8_t *buf, size_t len)
{
	struct wim_meta *m0, *mf, *ml;
	struct pick p = {0};

	CHECK(wim_meta_parse(buf, len, &m0) == 0);
	if (!m0)
		return;
	pick(m0, &p);
	if (!p.file1[0] || !p.file2[0] || !p.file3[0] || !p.subdir[0])
		goto out;
	for (int sd = 0; sd < 2; sd++) {
		CHECK(wim_meta_parse(buf, len, &mf) == 0);
		CHECK(wim_meta_parse_lazy(buf, len, &ml) == 0);
		if (!mf || !ml)
			break;
		CHECK(wim_meta_is_lazy(ml));
		lazy_ops(mf, &p, sd);
		lazy_ops(ml, &p, sd);
		/* what changed: the same either way */
		struct change_lines cf = {.m = mf}, cl = {.m = ml};
		CHECK(wim_meta_each_change(mf, change_cb, &cf) == 0);
		CHECK(wim_meta_each_change(ml, change_cb, &cl) == 0);
		lines_sort(&cf);
		lines_sort(&cl);
		CHECK(cf.n == cl.n);
		for (size_t i = 0; i < cf.n && i < cl.n; i++)
			CHECK(!strcmp(cf.v[i], cl.v[i]));
		void *of, *ol;
		size_t nf, nl;
		CHECK(wim_meta_write(mf, &of, &nf) == 0);
		CHECK(wim_meta_write(ml, &ol, &nl) == 0);
		/* a change to a few directories reads only those */
		if (!sd)
			CHECK(wim_meta_is_lazy(ml));
		/* the same tree written */
		struct wim_meta *a, *b;
		struct facts fa = {0}, fb = {0};
		CHECK(wim_meta_parse(of, nf, &a) == 0);
		CHECK(wim_meta_parse(ol, nl, &b) == 0);
		if (a && b) {
			our_facts(a, &fa);
			our_facts(b, &fb);
			CHECK(same_facts(&fa, &fb, sd ? "lazy, new SD" : "lazy"));
			/* each_change names all: before - gone + new = after, so
			 * before + new = after + gone */
			struct change_lines before = {.m = m0}, after = {.m = b};
			CHECK(wim_meta_walk(m0, all_cb, &before) == 0);
			CHECK(wim_meta_walk(b, all_cb, &after) == 0);
			for (size_t i = 0; i < cl.n; i++) {
				char *line = strdup(cl.v[i]);
				bool gone = line[0] == '-';
				line[0] = '+';
				lines_push(gone ? &after : &before, line);
			}
			lines_sort(&before);
			lines_sort(&after);
			CHECK(before.n == after.n);
			for (size_t i = 0; i < before.n && i < after.n; i++)
				if (strcmp(before.v[i], after.v[i])) {
					CHECK(!"each_change names what changed");
					fprintf(stderr, "%s\n  against %s\n", before.v[i],
						after.v[i]);
					break;
				}
			lines_free(&before);
			lines_free(&after);
		}
		facts_free(&fa);
		facts_free(&fb);
		wim_meta_free(a);
		wim_meta_free(b);
		free(of);
		free(ol);
		lines_free(&cf);
		lines_free(&cl);
		wim_meta_free(mf);
		wim_meta_free(ml);
	}
out:
	paths_free(&p.files);
	wim_meta_free(m0);
}

static void check_wim(const char *path)
{
	uint8_t *buf;
	size_t len;
	struct wim_meta *m;
	struct facts mine = {0}, theirs = {0};
	void *out;
	size_t olen;

	printf("# %s\n", path);
	CHECK(read_wim_metadata(path, 1, &buf, &len) == 0);
	if (!buf)
		return;
	CHECK(wim_meta_parse(buf, len, &m) == 0);
	if (!m) {
		free(buf);
		return;
	}
	CHECK(wim_meta_write(m, &out, &olen) == 0);
	CHECK(olen == len && !memcmp(out, buf, len));
	free(out);
	our_facts(m, &mine);
	CHECK(wimlib_facts(path, &theirs) == 0);
	CHECK(same_facts(&mine, &theirs, "walk against wimlib"));
	check_order(m);
	facts_free(&mine);
	facts_free(&theirs);
	wim_meta_free(m);
	check_reencode(buf, len);
	check_changes(buf, len, NULL, NULL);
	check_lazy(buf, len);
	check_chunked(buf, len);
	check_bad(buf, len);
	free(buf);
}

/* ---- a WIM captured here ---- */

static void put_file(const char *path, const char *data)
{
	FILE *f = fopen(path, "w");
	fputs(data, f);
	fclose(f);
}

static char *capture_here(char *tmpl)
{
	char p[4096], wim[4096];
	WIMStruct *w;

	CHECK(mkdtemp(tmpl) != NULL);
	FMT(p, "%s/src", tmpl);
	mkdir(p, 0755);
#define P(s) (snprintf(p, sizeof(p), "%s/src/%s", tmpl, s), p)
	mkdir(P("dir"), 0755);
	mkdir(P("dir/deeper"), 0755);
	mkdir(P("empty"), 0755);
	mkdir(P("other"), 0755);
	put_file(P("a.txt"), "hello\n");
	put_file(P("b.txt"), "bb\n");
	put_file(P("dir/b.txt"), "b\n");
	put_file(P("dir/c.txt"), "c\n");
	put_file(P("dir/deeper/d.txt"), "d\n");
	put_file(P("other/e.txt"), "e\n");
	put_file(P("other/Zeta.txt"), "z\n");
	put_file(P("other/alpha.txt"), "a\n");
	put_file(P("A name long enough to need many bytes in UTF-16 \xc3\xa9\xe2\x82\xac.txt"), "");
	char target[4096];
	FMT(target, "%s/src/a.txt", tmpl);
	CHECK(link(target, P("dir/link.txt")) == 0);
	CHECK(symlink("../a.txt", P("dir/sym")) == 0);
#undef P
	FMT(p, "%s/src", tmpl);
	FMT(wim, "%s/here.wim", tmpl);
	CHECK(wimlib_create_new_wim(WIMLIB_COMPRESSION_TYPE_LZX, &w) == 0);
	CHECK(wimlib_add_image(w, p, "t", NULL, WIMLIB_ADD_FLAG_UNIX_DATA) == 0);
	CHECK(wimlib_write(w, wim, WIMLIB_ALL_IMAGES, 0, 1) == 0);
	wimlib_free(w);
	return strdup(wim);
}

static int patch_mode(const char *wim, const char *out_path)
{
	uint8_t *buf;
	size_t len;
	void *out = NULL;
	size_t olen = 0;

	if (read_wim_metadata(wim, 1, &buf, &len) < 0) {
		fprintf(stderr, "unit_wim_meta: cannot read '%s'\n", wim);
		return 2;
	}
	check_changes(buf, len, &out, &olen);
	FILE *f = fopen(out_path, "wb");
	if (!out || !f || fwrite(out, 1, olen, f) != olen || fclose(f))
		return 2;
	free(out);
	free(buf);
	return unit_failures ? 1 : 0;
}

static int same_mode(const char *wim, const char *meta, int image)
{
	FILE *f = fopen(meta, "rb");
	struct stat st;
	struct wim_meta *m;
	struct facts mine = {0}, theirs = {0};

	if (!f || fstat(fileno(f), &st) < 0)
		return 2;
	uint8_t *buf = malloc((size_t)st.st_size + 1);
	if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
		return 2;
	fclose(f);
	CHECK(wim_meta_parse(buf, (size_t)st.st_size, &m) == 0);
	if (!m)
		return 1;
	our_facts(m, &mine);
	CHECK(wimlib_facts_of(wim, image, &theirs) == 0);
	CHECK(same_facts(&mine, &theirs, "patched walk against wimlib"));
	printf("%zu entries alike\n", mine.n);
	facts_free(&mine);
	facts_free(&theirs);
	wim_meta_free(m);
	free(buf);
	return unit_failures ? 1 : 0;
}

/* ---- --bench: figures for bench/wim-meta ---- */

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int count_cb(void *arg, const char *path, const struct wim_meta_entry *e)
{
	(void)path;
	(void)e;
	(*(size_t *)arg)++;
	return 0;
}

static int wimlib_count_cb(const struct wimlib_dir_entry *de, void *arg)
{
	(void)de;
	(*(size_t *)arg)++;
	return 0;
}

/* The two directories with the most files (not the root). */
struct big_dirs {
	struct all_paths files;
	char a[4096], b[4096];
};

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void find_big_dirs(struct wim_meta *m, struct big_dirs *d)
{
	struct pick p = {0};
	size_t best[2] = {0, 0};

	CHECK(wim_meta_walk(m, pick_cb, &p) == 0);
	d->files = p.files;
	char **dirs = calloc(d->files.n + 1, sizeof(*dirs));
	for (size_t i = 0; i < d->files.n; i++)
		dirs[i] = strndup(d->files.v[i], dir_len(d->files.v[i]));
	qsort(dirs, d->files.n, sizeof(*dirs), str_cmp);
	for (size_t i = 0; i < d->files.n;) {
		size_t j = i;
		while (j < d->files.n && !strcmp(dirs[j], dirs[i]))
			j++;
		if (*dirs[i] && j - i > best[0]) {
			best[1] = best[0];
			memcpy(d->b, d->a, sizeof(d->a));
			best[0] = j - i;
			FMT(d->a, "%s", dirs[i]);
		} else if (*dirs[i] && j - i > best[1]) {
			best[1] = j - i;
			FMT(d->b, "%s", dirs[i]);
		}
		i = j;
	}
	for (size_t i = 0; i < d->files.n; i++)
		free(dirs[i]);
	free(dirs);
}

static int bench_mode(const char *wim, int reps)
{
	uint8_t *buf;
	size_t len, n = 0, wn = 0;
	struct wim_meta *m = NULL;
	double t, parse = 1e9, walk = 1e9, write = 1e9, wl = 1e9;
	void *out;
	size_t olen;

	if (read_wim_metadata(wim, 1, &buf, &len) < 0)
		return 2;
	for (int r = 0; r < reps; r++) {
		wim_meta_free(m);
		t = now_ms();
		CHECK(wim_meta_parse(buf, len, &m) == 0);
		parse = fmin(parse, now_ms() - t);
		n = 0;
		t = now_ms();
		CHECK(wim_meta_walk(m, count_cb, &n) == 0);
		walk = fmin(walk, now_ms() - t);
		t = now_ms();
		CHECK(wim_meta_write(m, &out, &olen) == 0);
		write = fmin(write, now_ms() - t);
		CHECK(olen == len && !memcmp(out, buf, len));
		free(out);
		/* the peer: wimlib loading the same metadata and walking it */
		WIMStruct *w;
		t = now_ms();
		CHECK(wimlib_open_wim(wim, 0, &w) == 0);
		wn = 0;
		CHECK(wimlib_iterate_dir_tree(w, 1, "", WIMLIB_ITERATE_DIR_TREE_FLAG_RECURSIVE,
					      wimlib_count_cb, &wn) == 0);
		wimlib_free(w);
		wl = fmin(wl, now_ms() - t);
	}
	CHECK(n == wn);
	printf("%s: metadata %zu bytes, %zu dentries\n", wim, len, n);
	/* the checks of a test, on this image too */
	struct facts mine = {0}, theirs = {0};
	our_facts(m, &mine);
	CHECK(wimlib_facts(wim, &theirs) == 0);
	CHECK(same_facts(&mine, &theirs, "walk against wimlib"));
	facts_free(&mine);
	facts_free(&theirs);
	check_order(m);
	check_reencode(buf, len);
	printf("walk = wimlib_iterate_dir_tree, every dentry re-encodes to its bytes: %s\n",
	       unit_failures ? "NO" : "yes");
	printf("parse %.1f ms, walk %.1f ms, write unchanged %.1f ms (identical bytes)\n", parse,
	       walk, write);
	printf("wimlib open + iterate_dir_tree %.1f ms: %.1fx ours (parse + walk)\n", wl,
	       wl / (parse + walk));

	/* 100 files in two directories: 50 changed in place (new data, new
	 * times), 50 new ones (the list moves) */
	struct big_dirs d = {0};
	find_big_dirs(m, &d);
	CHECK(d.a[0] && d.b[0]);
	t = now_ms();
	size_t changed = 0, added = 0;
	for (size_t i = 0; i < d.files.n && changed < 50; i++) {
		if (dir_len(d.files.v[i]) != strlen(d.a) || strncmp(d.files.v[i], d.a, strlen(d.a)))
			continue;
		struct wim_meta_entry e;
		CHECK(wim_meta_get(m, d.files.v[i], &e) == 0);
		e.hash[0] ^= 0xFF;
		e.last_write_time += 10000000;
		CHECK(wim_meta_set(m, d.files.v[i], &e) == 0);
		changed++;
	}
	for (; added < 50; added++) {
		struct wim_meta_entry e;
		char name[64];
		wim_meta_entry_init(&e);
		FMT(name, "oem%zu.inf", added);
		e.name = name;
		e.attributes = 0x20;
		e.hash[0] = (uint8_t)added;
		CHECK(wim_meta_add(m, d.b, &e) == 0);
	}
	CHECK(wim_meta_write(m, &out, &olen) == 0);
	double patch = now_ms() - t;
	size_t chunks = len / 32768, same = 0;
	for (size_t c = 0; c < chunks; c++)
		same += !memcmp((uint8_t *)out + c * 32768, buf + c * 32768, 32768);
	printf("%zu files changed in '%s', %zu added to '%s': patch + write %.1f ms, "
	       "%zu bytes (+%zu), %zu of %zu whole 32 KiB chunks unchanged (%.1f%%)\n",
	       changed, d.a, added, d.b, patch, olen, olen - len, same, chunks,
	       chunks ? 100.0 * same / chunks : 100.0);
	/* most chunks unchanged (a tiny resource has too few to say) */
	CHECK(chunks < 64 || same * 10 >= chunks * 9);
	free(out);
	paths_free(&d.files);
	wim_meta_free(m);
	free(buf);
	return unit_failures ? 1 : 0;
}

/* ---- --append: the changed metadata appended by src/wim_append.c ---- */

struct append_refs {
	struct wim_append *wa;
	uint64_t dirs, files, bytes, missing;
};

static void ref_one(struct append_refs *r, const uint8_t *sha1)
{
	static const uint8_t zero[20];
	uint64_t size = 0;

	if (!memcmp(sha1, zero, 20))
		return;
	if (wim_append_ref(r->wa, sha1, 1) || wim_append_blob_size(r->wa, sha1, &size))
		r->missing++;
	r->bytes += size;
}

/* One reference per name and stream, as wimlib counts them. */
static int append_ref_cb(void *arg, const char *path, const struct wim_meta_entry *e)
{
	struct append_refs *r = arg;

	(void)path;
	if ((e->attributes & (DIRECTORY | REPARSE)) == DIRECTORY)
		r->dirs++;
	else
		r->files++;
	ref_one(r, e->hash);
	if (e->attributes & REPARSE)
		ref_one(r, e->reparse_hash);
	for (size_t i = 0; i < e->nstreams; i++)
		ref_one(r, e->streams[i].hash);
	return 0;
}

static int append_mode(const char *wim, const char *meta_out)
{
	struct wim_append *wa;
	void *base = NULL, *out = NULL;
	size_t blen, olen = 0;
	struct wim_meta *m = NULL;
	struct wim_append_stats st;

	if (wim_append_open(wim, &wa) || wim_append_unsupported(wa)) {
		fprintf(stderr, "unit_wim_meta: wim_append cannot append to '%s'\n", wim);
		return 2;
	}
	CHECK(wim_append_read_metadata(wa, 1, &base, &blen) == 0);
	if (base)
		check_changes(base, blen, &out, &olen);
	CHECK(out && wim_meta_parse(out, olen, &m) == 0);
	if (!m)
		goto out;
	CHECK(wim_append_set_metadata(wa, out, olen, 1) == 0);
	struct append_refs r = {.wa = wa};
	CHECK(wim_meta_walk(m, append_ref_cb, &r) == 0);
	CHECK(r.missing == 0);
	uint64_t now = wim_append_nt_now();
	struct wim_append_image img = {.name = "changed by wim_meta",
				       .copy_of = 1,
				       .dir_count = r.dirs,
				       .file_count = r.files,
				       .total_bytes = r.bytes,
				       .creation_time = now,
				       .last_modification_time = now};
	CHECK(wim_append_commit(wa, &img) == 0);
	wim_append_get_stats(wa, &st);
	printf("metadata %zu bytes, %" PRIu64 " chunks, %" PRIu64 " reused from image 1\n", olen,
	       st.meta_chunks, st.meta_chunks_reused);
	/* the old chunks the changes left alone are the base's, stored as they
	 * were: on a resource of many chunks, all but a few (the grown SD table
	 * moves the lists it covers, whose parents' dentries lie elsewhere) */
	CHECK(blen < 64 * 32768 || st.meta_chunks_reused + 8 >= blen / 32768);
	FILE *f = fopen(meta_out, "wb");
	CHECK(f && fwrite(out, 1, olen, f) == olen && !fclose(f));
out:
	wim_meta_free(m);
	wim_append_free(wa);
	free(base);
	free(out);
	return unit_failures ? 1 : 0;
}

static const char *here_wim;

TEST(here)
{
	check_wim(here_wim);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	wimlib_global_init(0);
	if (argc == 4 && !strcmp(argv[1], "--patch"))
		return patch_mode(argv[2], argv[3]);
	if ((argc == 4 || argc == 5) && !strcmp(argv[1], "--same"))
		return same_mode(argv[2], argv[3], argc == 5 ? atoi(argv[4]) : 1);
	if (argc == 4 && !strcmp(argv[1], "--append"))
		return append_mode(argv[2], argv[3]);
	if (argc >= 3 && !strcmp(argv[1], "--bench"))
		return bench_mode(argv[2], argc > 3 ? atoi(argv[3]) : 5);
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			check_wim(argv[i]);
		UNIT_EXIT();
	}
	char tmpl[] = "/tmp/unit_wim_meta-XXXXXX";
	here_wim = capture_here(tmpl);
	RUN(here);
	char cmd[4200];
	FMT(cmd, "rm -rf '%s'", tmpl);
	if (system(cmd))
		fprintf(stderr, "cannot remove %s\n", tmpl);
	free((char *)here_wim);
	UNIT_EXIT();
}
