/*
 * wtgfs diff DELTA [FROM [TO]] [-- PATH...]: prints what the diff engine
 * (src/diff.c) finds, as lines (git's --name-status, a status column as
 * snapper's, what changed in words), NUL-separated fields (-z), a summary
 * per directory (--stat) or JSON Lines (--json, through json-c); --hives
 * adds the registry changes of every changed hive (src/hive_diff.c).
 * Exit 0: equal, 1: different, 2: error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "wtgfs/diff.h"
#include "wtgfs/ea.h"
#include "wtgfs/hive_diff.h"
#include "wtgfs/sd.h"

#define EXIT_DIFFERENT 1
#define HIVE_MAX (1ull << 30)

static const char usage[] =
    "usage: wtgfs diff [options] DELTA [FROM [TO]] [-- PATH...]\n"
    "\n"
    "Shows what changed between two versions of a delta's tree: FROM and TO\n"
    "are snapshots, 'HEAD' (the working layer) or 'base' (the image itself);\n"
    "by default the last snapshot below HEAD, and HEAD.  PATHs narrow the diff\n"
    "to themselves and what lies below them.  One line per changed path:\n"
    "A added, D deleted, M modified, R renamed (old and new path), T type\n"
    "changed, then what changed.  Exit status: 0 equal, 1 different, 2 error.\n"
    "\n"
    "  --name-status   only the code and the path(s)\n"
    "  --status        a column per kind of metadata: c data, s size,\n"
    "                  a attributes, p security descriptor, n named streams,\n"
    "                  r reparse data, d DOS name, l links, o object id,\n"
    "                  e extended attributes\n"
    "                  (t times with --times); '.' for unchanged\n"
    "  -z              fields end with NUL, not tab and newline\n"
    "  --stat          a summary per directory, with a bar\n"
    "  --json          JSON Lines: a header, then one object per path\n"
    "  --hives         also the keys and values of every changed registry hive\n"
    "  --times         compare creation, write, access and change times too\n"
    "  -q, --quiet     print nothing; only the exit status\n"
    "  --base PATH     where the base image lies, when it moved\n"
    "  -h, --help      show this help\n"
    "\n"
    "See 'man wtgfs-diff' for the formats.\n";

enum mode { MODE_TEXT, MODE_NAME_STATUS, MODE_STATUS, MODE_STAT, MODE_JSON, MODE_QUIET };

struct dir_stat {
	char *dir;
	unsigned added, deleted, modified;
	uint64_t bytes;
};

struct out {
	struct wtg_diff *diff;
	enum mode mode;
	bool nul, hives, times;
	size_t count;
	unsigned counts[128];
	uint64_t bytes;
	struct dir_stat *dirs;
	size_t ndirs;
	int err;
};

/* ---- strings ---- */

/* A JSON string for text or a name (U+FFFD for bytes that are not UTF-8;
 * paths also get their exact bytes in "KEY_raw", through cli_json_add_name). */
static json_object *jstr(const char *s)
{
	return s ? cli_json_name(s, NULL) : NULL;
}

static char *hex(const uint8_t *p, size_t n)
{
	char *s = malloc(n * 2 + 1);

	if (!s)
		return NULL;
	for (size_t i = 0; i < n; i++)
		sprintf(s + 2 * i, "%02x", p[i]);
	s[2 * n] = 0;
	return s;
}

static json_object *jhex(const uint8_t *p, size_t n)
{
	if (!p)
		return NULL;
	char *s = hex(p, n);
	json_object *j = s ? json_object_new_string(s) : NULL;
	free(s);
	return j;
}

/* NTFS time (100 ns since 1601) as ISO 8601 UTC. */
static void ntfs_time_text(int64_t t, char *buf, size_t size)
{
	int64_t secs = t / 10000000 - 11644473600LL;
	long frac = (long)(t % 10000000);
	time_t tt = (time_t)secs;
	struct tm tm;

	if (frac < 0)
		frac = -frac;
	if (!gmtime_r(&tt, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm)) {
		snprintf(buf, size, "%" PRId64, t);
		return;
	}
	size_t n = strlen(buf);
	snprintf(buf + n, size - n, ".%07ldZ", frac);
}

/* A growing line of text. */
struct line {
	char *s;
	size_t len, cap;
	bool any; /* a part was added: the next one is separated */
};

static void line_add(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line_add(struct line *l, const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	int n = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (l->len + (size_t)n + 1 > l->cap) {
		size_t cap = (l->len + (size_t)n + 1) * 2;
		char *q = realloc(l->s, cap);
		if (!q) {
			free(p);
			return;
		}
		l->s = q;
		l->cap = cap;
	}
	memcpy(l->s + l->len, p, (size_t)n + 1);
	l->len += (size_t)n;
	free(p);
}

static void line_part(struct line *l, const char *what)
{
	line_add(l, "%s%s", l->any ? "; " : "", what);
	l->any = true;
}

/* The names of an $EA's entries, "name,name" ("(none)" when it has none;
 * its size in bytes when it does not parse). */
static void ea_text(const struct wtg_diff_side *s, struct line *l)
{
	if (!s->ea) {
		line_add(l, "(none)");
		return;
	}
	if (!wtg_ea_valid(s->ea, s->ea_len)) {
		line_add(l, "(%" PRIu32 " bytes)", s->ea_len);
		return;
	}
	for (uint32_t off = 0, first = 1; off + 8 <= s->ea_len; first = 0) {
		const uint8_t *e = s->ea + off;
		uint32_t next = (uint32_t)e[0] | (uint32_t)e[1] << 8 | (uint32_t)e[2] << 16 |
				(uint32_t)e[3] << 24;
		line_add(l, "%s%.*s", first ? "" : ",", e[5], (const char *)e + 8);
		if (!next || next > s->ea_len - off)
			break;
		off += next;
	}
}

/* ---- the pieces of an entry ---- */

static void attributes_delta(uint32_t o, uint32_t n, struct line *l, json_object *added,
			     json_object *removed)
{
	for (int i = 0; i < 32; i++) {
		uint32_t bit = 1u << i;
		if (!((o ^ n) & bit))
			continue;
		const char *name = wtg_diff_attribute_name(bit);
		char buf[16];
		if (!name) {
			snprintf(buf, sizeof(buf), "0x%x", bit);
			name = buf;
		}
		if (l)
			line_add(l, " %c%s", n & bit ? '+' : '-', name);
		if (n & bit && added)
			json_object_array_add(added, json_object_new_string(name));
		if (o & bit && removed)
			json_object_array_add(removed, json_object_new_string(name));
	}
}

/* Entries of @a that @b lacks, counting repeats. */
static void acl_minus(char **a, size_t na, char **b, size_t nb, struct line *l, char sign,
		      json_object *arr)
{
	bool *used = calloc(nb ? nb : 1, 1);

	if (!used)
		return;
	for (size_t i = 0; i < na; i++) {
		bool found = false;
		for (size_t j = 0; j < nb && !found; j++)
			if (!used[j] && !strcmp(a[i], b[j]))
				found = used[j] = true;
		if (found)
			continue;
		if (l)
			line_add(l, " %c%s", sign, a[i]);
		if (arr)
			json_object_array_add(arr, json_object_new_string(a[i]));
	}
	free(used);
}

static void security_delta(const struct wtg_diff_side *o, const struct wtg_diff_side *n,
			   struct line *l, json_object *j)
{
	struct wtg_sd_text a = {0}, b = {0};
	bool ha = o->sd && !wtg_sd_describe(o->sd, o->sd_len, &a);
	bool hb = n->sd && !wtg_sd_describe(n->sd, n->sd_len, &b);

	if (l)
		line_add(l, "security");
	if (strcmp(a.owner, b.owner)) {
		if (l)
			line_add(l, " owner %s->%s", ha ? a.owner : "(none)", hb ? b.owner : "(none)");
		if (j) {
			json_object *x = json_object_new_object();
			json_object_object_add(x, "old", ha ? json_object_new_string(a.owner) : NULL);
			json_object_object_add(x, "new", hb ? json_object_new_string(b.owner) : NULL);
			json_object_object_add(j, "owner", x);
		}
	}
	if (strcmp(a.group, b.group)) {
		if (l)
			line_add(l, " group %s->%s", ha ? a.group : "(none)", hb ? b.group : "(none)");
		if (j) {
			json_object *x = json_object_new_object();
			json_object_object_add(x, "old", ha ? json_object_new_string(a.group) : NULL);
			json_object_object_add(x, "new", hb ? json_object_new_string(b.group) : NULL);
			json_object_object_add(j, "group", x);
		}
	}
	if (a.control != b.control) {
		if (l)
			line_add(l, " control 0x%04x->0x%04x", a.control, b.control);
		if (j) {
			json_object *x = json_object_new_object();
			json_object_object_add(x, "old", json_object_new_int(a.control));
			json_object_object_add(x, "new", json_object_new_int(b.control));
			json_object_object_add(j, "control", x);
		}
	}
	json_object *da = j ? json_object_new_array() : NULL, *dr = j ? json_object_new_array() : NULL;
	json_object *sa = j ? json_object_new_array() : NULL, *sr = j ? json_object_new_array() : NULL;
	acl_minus(b.dacl, b.ndacl, a.dacl, a.ndacl, l, '+', da);
	acl_minus(a.dacl, a.ndacl, b.dacl, b.ndacl, l, '-', dr);
	acl_minus(b.sacl, b.nsacl, a.sacl, a.nsacl, l, '+', sa);
	acl_minus(a.sacl, a.nsacl, b.sacl, b.nsacl, l, '-', sr);
	if (j) {
		json_object_object_add(j, "dacl_added", da);
		json_object_object_add(j, "dacl_removed", dr);
		json_object_object_add(j, "sacl_added", sa);
		json_object_object_add(j, "sacl_removed", sr);
		json_object_object_add(j, "old", jhex(o->sd, o->sd_len));
		json_object_object_add(j, "new", jhex(n->sd, n->sd_len));
	}
	wtg_sd_text_release(&a);
	wtg_sd_text_release(&b);
}

static void reparse_text(const struct wtg_diff_side *s, struct line *l)
{
	if (!s->reparse) {
		line_add(l, "(none)");
		return;
	}
	if (s->type == WTG_DIFF_SYMLINK || s->type == WTG_DIFF_JUNCTION)
		line_add(l, "%s:%s", wtg_diff_type_name(s->type),
			 s->reparse_target ? s->reparse_target : "?");
	else
		line_add(l, "0x%08x", s->reparse_tag);
}

static json_object *reparse_json(const struct wtg_diff_side *s)
{
	if (!s->exists || !s->reparse)
		return NULL;
	json_object *j = json_object_new_object();
	json_object_object_add(j, "tag", json_object_new_int64(s->reparse_tag));
	json_object_object_add(j, "target", jstr(s->reparse_target));
	json_object_object_add(j, "data", jhex(s->reparse, s->reparse_len));
	return j;
}

static json_object *old_new_str(const char *o, const char *n)
{
	json_object *j = json_object_new_object();
	json_object_object_add(j, "old", jstr(o));
	json_object_object_add(j, "new", jstr(n));
	return j;
}

static json_object *old_new_u64(uint64_t o, uint64_t n)
{
	json_object *j = json_object_new_object();
	json_object_object_add(j, "old", json_object_new_uint64(o));
	json_object_object_add(j, "new", json_object_new_uint64(n));
	return j;
}

static json_object *str_array(char **v, size_t n)
{
	json_object *a = json_object_new_array();
	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, jstr(v[i]));
	return a;
}

static void list_text(struct line *l, char sign, char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		line_add(l, " %c%s", sign, v[i]);
}

static void size_text(struct line *l, uint64_t n)
{
	line_add(l, "%" PRIu64, n);
}

/* What changed, in words. */
static void details_text(const struct out *o, const struct wtg_diff_entry *e, struct line *l)
{
	const struct wtg_diff_side *a = &e->old, *b = &e->new;
	unsigned c = e->changed;

	if (e->status == 'A' || e->status == 'D') {
		const struct wtg_diff_side *s = e->status == 'A' ? b : a;
		line_part(l, wtg_diff_type_name(s->type));
		if (s->type == WTG_DIFF_FILE) {
			line_add(l, " ");
			size_text(l, s->size);
			line_add(l, " bytes");
		}
		if (s->reparse_target)
			line_add(l, " -> %s", s->reparse_target);
		if (s->nlinks > 1)
			line_add(l, ", %zu links", s->nlinks);
		return;
	}
	if (e->replaced)
		line_part(l, "replaced");
	if (e->status == 'T') {
		line_part(l, "");
		line_add(l, "%s->%s", wtg_diff_type_name(a->type), wtg_diff_type_name(b->type));
	}
	if (c & WTG_DIFF_DATA) {
		line_part(l, "data");
		for (size_t i = 0; i < e->nranges && i < 8; i++)
			line_add(l, "%s%" PRIu64 "-%" PRIu64, i ? "," : " ", e->ranges[i].offset,
				 e->ranges[i].offset + e->ranges[i].length - 1);
		if (e->nranges > 8)
			line_add(l, ",...");
		line_add(l, " (%" PRIu64 " bytes)", e->changed_bytes);
	}
	if (c & WTG_DIFF_SIZE) {
		line_part(l, "size ");
		size_text(l, a->size);
		line_add(l, "->");
		size_text(l, b->size);
	}
	if (c & WTG_DIFF_ATTRIBUTES) {
		line_part(l, "attributes");
		attributes_delta(a->attributes, b->attributes, l, NULL, NULL);
	}
	if (c & WTG_DIFF_SECURITY) {
		line_part(l, "");
		security_delta(a, b, l, NULL);
	}
	if (c & WTG_DIFF_STREAMS) {
		line_part(l, "streams");
		list_text(l, '+', e->streams_added, e->nstreams_added);
		list_text(l, '-', e->streams_removed, e->nstreams_removed);
		list_text(l, '~', e->streams_changed, e->nstreams_changed);
	}
	if (c & WTG_DIFF_REPARSE) {
		line_part(l, "reparse ");
		reparse_text(a, l);
		line_add(l, "->");
		reparse_text(b, l);
	}
	if (c & WTG_DIFF_DOS_NAME) {
		line_part(l, "");
		line_add(l, "dos name %s->%s", a->dos_name ? a->dos_name : "(none)",
			 b->dos_name ? b->dos_name : "(none)");
	}
	if (c & WTG_DIFF_LINKS) {
		line_part(l, "links");
		list_text(l, '+', e->links_added, e->nlinks_added);
		list_text(l, '-', e->links_removed, e->nlinks_removed);
	}
	if (c & WTG_DIFF_OBJECT_ID) {
		char *x = a->object_id ? hex(a->object_id, a->object_id_len) : NULL;
		char *y = b->object_id ? hex(b->object_id, b->object_id_len) : NULL;
		line_part(l, "");
		line_add(l, "object id %s->%s", x ? x : "(none)", y ? y : "(none)");
		free(x);
		free(y);
	}
	if (c & WTG_DIFF_EA) {
		line_part(l, "ea ");
		ea_text(a, l);
		line_add(l, "->");
		ea_text(b, l);
	}
	if (c & WTG_DIFF_TIMES) {
		static const char *const names[] = {"crtime", "mtime", "atime", "ctime"};
		const int64_t ta[] = {a->crtime, a->mtime, a->atime, a->ctime};
		const int64_t tb[] = {b->crtime, b->mtime, b->atime, b->ctime};
		line_part(l, "times");
		for (int i = 0; i < 4; i++) {
			char x[48], y[48];
			if (ta[i] == tb[i])
				continue;
			ntfs_time_text(ta[i], x, sizeof(x));
			ntfs_time_text(tb[i], y, sizeof(y));
			line_add(l, " %s %s->%s", names[i], x, y);
		}
	}
	(void)o;
}

static json_object *side_json(const struct wtg_diff_side *s)
{
	if (!s->exists)
		return NULL;
	json_object *j = json_object_new_object();
	json_object_object_add(j, "ino", json_object_new_uint64(s->ino));
	json_object_object_add(j, "type", json_object_new_string(wtg_diff_type_name(s->type)));
	json_object_object_add(j, "size", json_object_new_uint64(s->size));
	json_object_object_add(j, "attributes", json_object_new_int64(s->attributes));
	json_object_object_add(j, "links", str_array(s->links, s->nlinks));
	json_object *st = json_object_new_array();
	for (size_t i = 0; i < s->nstreams; i++) {
		json_object *x = json_object_new_object();
		json_object_object_add(x, "name", jstr(s->streams[i].name));
		json_object_object_add(x, "size", json_object_new_uint64(s->streams[i].size));
		json_object_array_add(st, x);
	}
	json_object_object_add(j, "streams", st);
	return j;
}

static const char *const kind_names[WTG_DIFF_KINDS] = {
    "data", "size", "attributes", "security", "streams", "reparse", "dos_name", "links",
    "object_id", "ea", "times"};

static json_object *entry_json(const struct out *o, const struct wtg_diff_entry *e)
{
	const struct wtg_diff_side *a = &e->old, *b = &e->new;
	unsigned c = e->changed;
	char st[2] = {e->status, 0};
	json_object *j = json_object_new_object();

	json_object_object_add(j, "type", json_object_new_string("change"));
	json_object_object_add(j, "status", json_object_new_string(st));
	cli_json_add_name(j, "path", e->path);
	if (e->old_path)
		cli_json_add_name(j, "old_path", e->old_path);
	else
		json_object_object_add(j, "old_path", NULL);
	json_object_object_add(j, "replaced", json_object_new_boolean(e->replaced));
	json_object *kinds = json_object_new_array();
	for (int i = 0; i < WTG_DIFF_KINDS; i++)
		if (c & (1u << i))
			json_object_array_add(kinds, json_object_new_string(kind_names[i]));
	json_object_object_add(j, "changed", kinds);
	json_object_object_add(j, "old", side_json(a));
	json_object_object_add(j, "new", side_json(b));
	if (c & (WTG_DIFF_DATA | WTG_DIFF_SIZE)) {
		json_object *d = json_object_new_object(), *r = json_object_new_array();
		for (size_t i = 0; i < e->nranges; i++) {
			json_object *x = json_object_new_object();
			json_object_object_add(x, "offset", json_object_new_uint64(e->ranges[i].offset));
			json_object_object_add(x, "length", json_object_new_uint64(e->ranges[i].length));
			json_object_array_add(r, x);
		}
		json_object_object_add(d, "ranges", r);
		json_object_object_add(d, "bytes", json_object_new_uint64(e->changed_bytes));
		json_object_object_add(j, "data", d);
		json_object_object_add(j, "size", old_new_u64(a->size, b->size));
	}
	if (c & WTG_DIFF_ATTRIBUTES) {
		json_object *x = json_object_new_object();
		json_object *ad = json_object_new_array(), *rm = json_object_new_array();
		json_object_object_add(x, "old", a->exists ? json_object_new_int64(a->attributes) : NULL);
		json_object_object_add(x, "new", b->exists ? json_object_new_int64(b->attributes) : NULL);
		attributes_delta(a->attributes, b->attributes, NULL, ad, rm);
		json_object_object_add(x, "added", ad);
		json_object_object_add(x, "removed", rm);
		json_object_object_add(j, "attributes", x);
	}
	if (c & WTG_DIFF_SECURITY) {
		json_object *x = json_object_new_object();
		security_delta(a, b, NULL, x);
		json_object_object_add(j, "security", x);
	}
	if (c & WTG_DIFF_STREAMS) {
		json_object *x = json_object_new_object();
		json_object_object_add(x, "added", str_array(e->streams_added, e->nstreams_added));
		json_object_object_add(x, "removed", str_array(e->streams_removed, e->nstreams_removed));
		json_object_object_add(x, "changed", str_array(e->streams_changed, e->nstreams_changed));
		json_object_object_add(j, "streams", x);
	}
	if (c & WTG_DIFF_REPARSE) {
		json_object *x = json_object_new_object();
		json_object_object_add(x, "old", reparse_json(a));
		json_object_object_add(x, "new", reparse_json(b));
		json_object_object_add(j, "reparse", x);
	}
	if (c & WTG_DIFF_DOS_NAME)
		json_object_object_add(j, "dos_name", old_new_str(a->dos_name, b->dos_name));
	if (c & WTG_DIFF_LINKS) {
		json_object *x = json_object_new_object();
		json_object_object_add(x, "added", str_array(e->links_added, e->nlinks_added));
		json_object_object_add(x, "removed", str_array(e->links_removed, e->nlinks_removed));
		json_object_object_add(j, "links", x);
	}
	if (c & WTG_DIFF_OBJECT_ID) {
		json_object *x = json_object_new_object();
		json_object_object_add(x, "old", jhex(a->object_id, a->object_id_len));
		json_object_object_add(x, "new", jhex(b->object_id, b->object_id_len));
		json_object_object_add(j, "object_id", x);
	}
	if (c & WTG_DIFF_EA) {
		json_object *x = json_object_new_object();
		json_object_object_add(x, "old", jhex(a->ea, a->ea_len));
		json_object_object_add(x, "new", jhex(b->ea, b->ea_len));
		json_object_object_add(j, "ea", x);
	}
	if (c & WTG_DIFF_TIMES) {
		json_object *x = json_object_new_object();
		static const char *const names[] = {"crtime", "mtime", "atime", "ctime"};
		const int64_t ta[] = {a->crtime, a->mtime, a->atime, a->ctime};
		const int64_t tb[] = {b->crtime, b->mtime, b->atime, b->ctime};
		for (int i = 0; i < 4; i++) {
			json_object *y = json_object_new_object();
			json_object_object_add(y, "old", a->exists ? json_object_new_int64(ta[i]) : NULL);
			json_object_object_add(y, "new", b->exists ? json_object_new_int64(tb[i]) : NULL);
			json_object_object_add(x, names[i], y);
		}
		json_object_object_add(j, "times", x);
	}
	(void)o;
	return j;
}

/* ---- hives ---- */

struct hive_out {
	struct out *o;
	json_object *arr; /* --json */
};

static json_object *hive_value_json(const struct wtg_hive_value *v)
{
	json_object *j = json_object_new_object();
	const char *t = wtg_hive_type_name(v->type);
	char *text = wtg_hive_value_text(v->type, v->data, v->len);

	json_object_object_add(j, "type", json_object_new_int64(v->type));
	json_object_object_add(j, "type_name", t ? json_object_new_string(t) : NULL);
	json_object_object_add(j, "data", jhex(v->data ? v->data : (const uint8_t *)"", v->len));
	json_object_object_add(j, "text", jstr(text));
	free(text);
	return j;
}

static void hive_value_text(FILE *f, const struct wtg_hive_value *v)
{
	const char *t = wtg_hive_type_name(v->type);
	char *text = wtg_hive_value_text(v->type, v->data, v->len);

	if (t)
		fprintf(f, "%s", t);
	else
		fprintf(f, "type 0x%x", v->type);
	fprintf(f, " %s", text ? text : "?");
	free(text);
}

static int hive_item(void *arg, const struct wtg_hive_item *it)
{
	static const char *const names[] = {
	    [WTG_HIVE_KEY_ADDED] = "key_added",	      [WTG_HIVE_KEY_REMOVED] = "key_removed",
	    [WTG_HIVE_VALUE_ADDED] = "value_added",   [WTG_HIVE_VALUE_REMOVED] = "value_removed",
	    [WTG_HIVE_VALUE_CHANGED] = "value_changed"};
	struct hive_out *h = arg;
	bool has_old = it->change == WTG_HIVE_VALUE_REMOVED || it->change == WTG_HIVE_VALUE_CHANGED;
	bool has_new = it->change == WTG_HIVE_VALUE_ADDED || it->change == WTG_HIVE_VALUE_CHANGED;

	if (h->arr) {
		json_object *j = json_object_new_object();
		json_object_object_add(j, "change", json_object_new_string(names[it->change]));
		json_object_object_add(j, "key", jstr(it->key));
		json_object_object_add(j, "value", jstr(it->value));
		json_object_object_add(j, "old", has_old ? hive_value_json(&it->old) : NULL);
		json_object_object_add(j, "new", has_new ? hive_value_json(&it->new) : NULL);
		json_object_array_add(h->arr, j);
		return 0;
	}
	static const char *const words[] = {
	    [WTG_HIVE_KEY_ADDED] = "+key",	[WTG_HIVE_KEY_REMOVED] = "-key",
	    [WTG_HIVE_VALUE_ADDED] = "+value", [WTG_HIVE_VALUE_REMOVED] = "-value",
	    [WTG_HIVE_VALUE_CHANGED] = "~value"};
	printf("    %s \\%s", words[it->change], it->key);
	if (it->value) {
		printf("%s%s", *it->key ? "\\" : "", *it->value ? it->value : "(default)");
		printf(": ");
		if (has_old)
			hive_value_text(stdout, &it->old);
		if (has_old && has_new)
			printf(" -> ");
		if (has_new)
			hive_value_text(stdout, &it->new);
	}
	putchar('\n');
	return 0;
}

/* Whether @e is a hive to compare: both versions files that start with the
 * regf signature (the engine marks hives by place; a file there that is
 * not one is no hive).  1 yes, 0 no, -errno when a version cannot be read
 * at all (its base image gone); bad bytes of one only make it no hive. */
static int is_hive(struct out *o, const struct wtg_diff_entry *e)
{
	uint8_t *p;
	size_t n;
	int yes = 1;

	if (!e->old.exists || !e->new.exists || e->old.type != WTG_DIFF_FILE ||
	    e->new.type != WTG_DIFF_FILE || !(e->changed & (WTG_DIFF_DATA | WTG_DIFF_SIZE)))
		return 0;
	for (int side = 0; side < 2 && yes; side++) {
		int r = wtg_diff_read_stream(o->diff, e, side, HIVE_MAX, 4, &p, &n);
		if (r)
			return r == -EFBIG || r == -EINVAL || r == -EIO ? 0 : r;
		yes = wtg_hive_signature(p, n);
		free(p);
	}
	return yes;
}

static int hive_diff(struct out *o, const struct wtg_diff_entry *e, json_object *arr)
{
	struct hive_out h = {o, arr};
	uint8_t *a = NULL, *b = NULL;
	size_t na, nb;
	int r = wtg_diff_read_stream(o->diff, e, false, HIVE_MAX, UINT64_MAX, &a, &na);

	if (!r)
		r = wtg_diff_read_stream(o->diff, e, true, HIVE_MAX, UINT64_MAX, &b, &nb);
	if (!r)
		r = wtg_hive_diff(e->path, a, na, b, nb, hive_item, &h);
	free(a);
	free(b);
	/* a hive too large or that hivex cannot read is told about, not fatal */
	if (r == -EFBIG)
		fprintf(stderr, "wtgfs: '%s': a hive above 1 GiB, not compared\n", e->path);
	return r == -EFBIG || r == -EINVAL || r == -EIO ? 0 : r;
}

/* ---- printing ---- */

static void field(const struct out *o, const char *s, bool last)
{
	fputs(s, stdout);
	putchar(o->nul ? '\0' : last ? '\n' : '\t');
}

static int stat_add(struct out *o, const struct wtg_diff_entry *e)
{
	const char *slash = strrchr(e->path, '/');
	size_t n = slash ? (size_t)(slash - e->path) : 0;
	struct dir_stat *ds = NULL;

	for (size_t i = 0; i < o->ndirs && !ds; i++)
		if (strlen(o->dirs[i].dir) == n && !strncmp(o->dirs[i].dir, e->path, n))
			ds = &o->dirs[i];
	if (!ds) {
		struct dir_stat *p = realloc(o->dirs, (o->ndirs + 1) * sizeof(*p));
		if (!p)
			return -ENOMEM;
		o->dirs = p;
		ds = &p[o->ndirs];
		memset(ds, 0, sizeof(*ds));
		if (!(ds->dir = strndup(e->path, n)))
			return -ENOMEM;
		o->ndirs++;
	}
	if (e->status == 'A')
		ds->added++;
	else if (e->status == 'D')
		ds->deleted++;
	else
		ds->modified++;
	ds->bytes += e->changed_bytes;
	return 0;
}

static int print_entry(void *arg, const struct wtg_diff_entry *e)
{
	struct out *o = arg;
	char code[2] = {e->status, 0};
	int r = 0;

	o->count++;
	o->counts[(unsigned char)e->status & 127]++;
	o->bytes += e->changed_bytes;
	switch (o->mode) {
	case MODE_QUIET:
		return 0;
	case MODE_STAT:
		return stat_add(o, e);
	case MODE_JSON: {
		json_object *j = entry_json(o, e);
		if (o->hives && (r = is_hive(o, e)) > 0) {
			json_object *arr = json_object_new_array();
			r = hive_diff(o, e, arr);
			json_object_object_add(j, "hives", arr);
		}
		int w = cli_json_print(j, CLI_JSON_LINE);
		return r ? r : w;
	}
	default:
		break;
	}
	bool details = o->mode == MODE_TEXT && !o->nul;
	struct line l = {0};
	if (details)
		details_text(o, e, &l);
	if (o->mode == MODE_STATUS) {
		char col[WTG_DIFF_KINDS + 1], buf[WTG_DIFF_KINDS + 4];
		wtg_diff_status_column(e->changed, o->times, col);
		if (e->status == 'A' || e->status == 'D')
			for (char *p = col; *p; p++)
				*p = *p == '.' ? '.' : e->status == 'A' ? '+' : '-';
		snprintf(buf, sizeof(buf), "%c %s", e->status, col);
		field(o, buf, false);
	} else {
		field(o, code, false);
	}
	if (e->old_path)
		field(o, e->old_path, false);
	field(o, e->path, !(details && l.len));
	if (details && l.len)
		field(o, l.s, true);
	free(l.s);
	if (o->hives && !o->nul && (r = is_hive(o, e)) > 0)
		r = hive_diff(o, e, NULL);
	return r;
}

static int cmp_dir(const void *a, const void *b)
{
	return strcmp(((const struct dir_stat *)a)->dir, ((const struct dir_stat *)b)->dir);
}

static void print_stat(struct out *o)
{
	unsigned most = 1;
	size_t width = 1;

	if (o->ndirs > 1)
		qsort(o->dirs, o->ndirs, sizeof(*o->dirs), cmp_dir);
	for (size_t i = 0; i < o->ndirs; i++) {
		unsigned n = o->dirs[i].added + o->dirs[i].deleted + o->dirs[i].modified;
		size_t w = strlen(o->dirs[i].dir[0] ? o->dirs[i].dir : ".");
		if (n > most)
			most = n;
		if (w > width)
			width = w < 60 ? w : 60;
	}
	for (size_t i = 0; i < o->ndirs; i++) {
		struct dir_stat *ds = &o->dirs[i];
		unsigned n = ds->added + ds->deleted + ds->modified;
		/* the bar: at most 40 columns, at least one per kind present */
		unsigned scale = most > 40 ? most : 40;
		unsigned ba = ds->added * 40 / scale, bd = ds->deleted * 40 / scale,
			 bm = ds->modified * 40 / scale;
		if (ds->added && !ba)
			ba = 1;
		if (ds->deleted && !bd)
			bd = 1;
		if (ds->modified && !bm)
			bm = 1;
		const char *name = ds->dir[0] ? ds->dir : ".";
		size_t len = strlen(name);
		if (len > width) /* as git: the end of a long path */
			printf(" ...%-*s", (int)width - 3, name + len - (width - 3));
		else
			printf(" %-*s", (int)width, name);
		printf(" | %5u %12" PRIu64 " ", n, ds->bytes);
		for (unsigned k = 0; k < ba; k++)
			putchar('+');
		for (unsigned k = 0; k < bm; k++)
			putchar('~');
		for (unsigned k = 0; k < bd; k++)
			putchar('-');
		putchar('\n');
		free(ds->dir);
	}
	printf(" %zu paths changed in %zu directories: %u added, %u deleted, %u modified, "
	       "%u renamed, %u type changed; %" PRIu64 " bytes\n",
	       o->count, o->ndirs, o->counts['A'], o->counts['D'], o->counts['M'], o->counts['R'],
	       o->counts['T'], o->bytes);
	free(o->dirs);
	o->dirs = NULL;
	o->ndirs = 0;
}

int cmd_diff(int argc, char **argv)
{
	enum { OPT_NAME_STATUS = 256, OPT_STATUS, OPT_STAT, OPT_JSON, OPT_HIVES, OPT_TIMES,
	       OPT_BASE };
	static const struct option options[] = {
	    {"name-status", no_argument, NULL, OPT_NAME_STATUS},
	    {"status", no_argument, NULL, OPT_STATUS},
	    {"stat", no_argument, NULL, OPT_STAT},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"hives", no_argument, NULL, OPT_HIVES},
	    {"times", no_argument, NULL, OPT_TIMES},
	    {"quiet", no_argument, NULL, 'q'},
	    {"base", required_argument, NULL, OPT_BASE},
	    CLI_OPTIONS_END,
	};
	static const struct cli_command cmd = {"diff", usage, "zq", options};
	struct out o = {.mode = MODE_TEXT};
	struct wtg_diff_options opt = {0};
	int c, nmodes = 0;

	/* "--" ends the versions: what follows are paths, whatever they look like */
	int dashes = argc;
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--")) {
			dashes = i;
			break;
		}
	while ((c = cli_getopt(&cmd, dashes, argv)) != -1) {
		switch (c) {
		case OPT_NAME_STATUS:
			o.mode = MODE_NAME_STATUS;
			nmodes++;
			break;
		case OPT_STATUS:
			o.mode = MODE_STATUS;
			nmodes++;
			break;
		case OPT_STAT:
			o.mode = MODE_STAT;
			nmodes++;
			break;
		case OPT_JSON:
			o.mode = MODE_JSON;
			nmodes++;
			break;
		case 'q':
			o.mode = MODE_QUIET;
			nmodes++;
			break;
		case 'z':
			o.nul = true;
			break;
		case OPT_HIVES:
			o.hives = true;
			break;
		case OPT_TIMES:
			opt.times = o.times = true;
			break;
		case OPT_BASE:
			opt.base_path = optarg;
			break;
		default:
			return cli_getopt_exit(c);
		}
	}
	if (nmodes > 1)
		return cli_usage_error(&cmd, "choose one of --name-status, --status, --stat, "
					      "--json and --quiet");
	if (o.nul && (o.mode == MODE_STAT || o.mode == MODE_JSON))
		return cli_usage_error(&cmd, "-z goes with the line formats, not --stat or --json");
	int nversions = dashes - optind;
	if (nversions < 1)
		return cli_usage_error(&cmd, "DELTA is missing");
	if (nversions > 3)
		return cli_usage_error(&cmd, "too many versions: give DELTA [FROM [TO]] (paths go "
					      "after '--')");
	const char *delta = argv[optind];
	opt.from = nversions > 1 ? argv[optind + 1] : NULL;
	opt.to = nversions > 2 ? argv[optind + 2] : NULL;
	if (dashes < argc) {
		opt.paths = (const char *const *)&argv[dashes + 1];
		opt.npaths = (size_t)(argc - dashes - 1);
	}
	if (wtg_diff_open(delta, &opt, &o.diff) < 0)
		return EXIT_ERROR;
	if (o.mode == MODE_JSON) {
		json_object *h = json_object_new_object();
		json_object_object_add(h, "type", json_object_new_string("header"));
		json_object_object_add(h, "schema", json_object_new_string("wtgfs-diff"));
		json_object_object_add(h, "version", json_object_new_int(1));
		cli_json_add_name(h, "delta", delta);
		cli_json_add_string(h, "from", wtg_diff_from(o.diff));
		cli_json_add_string(h, "to", wtg_diff_to(o.diff));
		cli_json_add_bool(h, "times", o.times);
		cli_json_print(h, CLI_JSON_LINE);
	}
	int r = wtg_diff_run(o.diff, print_entry, &o);
	if (!r && o.mode == MODE_STAT)
		print_stat(&o);
	for (size_t i = 0; i < o.ndirs; i++)
		free(o.dirs[i].dir);
	free(o.dirs);
	wtg_diff_free(o.diff);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "wtgfs: cannot write the diff: %s\n", strerror(errno));
		return EXIT_ERROR;
	}
	if (r < 0)
		return EXIT_ERROR;
	return o.count ? EXIT_DIFFERENT : 0;
}
