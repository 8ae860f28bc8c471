/*
 * WIM metadata resources: a checked parser, a patcher that keeps untouched
 * bytes at their offsets, and the writer (see include/wtgfs/wim_meta.h for
 * the format and what moves when).
 *
 * The parsed tree is an array of nodes, one per dentry, each with its facts,
 * where its bytes lie in the parsed resource and how long they are; a name
 * hash finds a child by (parent, exact name).  Parsing marks every 8-byte
 * unit a dentry, stream entry or end mark covers: a unit covered twice is a
 * loop or two lists sharing bytes, refused, which also bounds the work by
 * the input's size.  The writer starts from the parsed bytes, re-encodes
 * changed dentries in place when their length holds, and appends every
 * changed directory list at the end (for an appender, a long one where its
 * unmoved entries keep their offsets within a chunk).
 */
#include <endian.h>
#include <errno.h>
#include <locale.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

#include "wtgfs/le.h"
#include "wtgfs/mem.h"
#include "wtgfs/names.h"
#include "wtgfs/wim_meta.h"

/* ---- on-disk structures ---- */

struct sd_header {
	uint32_t total_length; /* 0x00 le32: the table's length, padded to 8 */
	uint32_t count;	       /* 0x04 le32 */
			       /* 0x08 le64 size[count], then the descriptors */
} __attribute__((packed));
_Static_assert(sizeof(struct sd_header) == 8, "security table header is 8 bytes");

struct dentry_disk {
	uint64_t length;	   /* 0x00 le64: excludes stream entries; <= 8 ends a list */
	uint32_t attributes;	   /* 0x08 le32 */
	uint32_t security_id;	   /* 0x0C le32: 0xFFFFFFFF none */
	uint64_t subdir_offset;	   /* 0x10 le64: the children's list, 0 none */
	uint64_t unused_1;	   /* 0x18 */
	uint64_t unused_2;	   /* 0x20 */
	uint64_t creation_time;	   /* 0x28 le64 */
	uint64_t last_access_time; /* 0x30 le64 */
	uint64_t last_write_time;  /* 0x38 le64 */
	uint8_t main_hash[20];	   /* 0x40 */
	uint32_t unknown_0x54;	   /* 0x54 le32 */
	union {			   /* 0x58 */
		struct {
			uint32_t reparse_tag; /* le32 */
			uint16_t rp_reserved; /* le16 */
			uint16_t rp_flags;    /* le16 */
		} __attribute__((packed)) reparse;
		uint64_t hard_link_group_id; /* le64 */
	};
	uint16_t num_extra_streams; /* 0x60 le16 */
	uint16_t short_name_nbytes; /* 0x62 le16: without the NUL; 0 none */
	uint16_t name_nbytes;	    /* 0x64 le16: without the NUL; 0 none */
	/* 0x66: name + NUL, short name + NUL, pad, tagged items */
} __attribute__((packed));
_Static_assert(sizeof(struct dentry_disk) == 0x66, "dentry is 102 bytes");

struct stream_disk {
	uint64_t length;      /* 0x00 le64: the whole entry, padded to 8 */
	uint64_t reserved;    /* 0x08 */
	uint8_t hash[20];     /* 0x10 */
	uint16_t name_nbytes; /* 0x24 le16: without the NUL; 0 unnamed */
			      /* 0x26: name + NUL */
} __attribute__((packed));
_Static_assert(sizeof(struct stream_disk) == 0x26, "stream entry is 38 bytes");

#define ATTR_DIRECTORY 0x10u
#define ATTR_REPARSE_POINT 0x400u
#define ATTR_ENCRYPTED 0x4000u

/* wimlib refuses deeper trees */
#define MAX_DEPTH 16384
#define NONE UINT32_MAX

/* ---- helpers ---- */

static uint64_t align8(uint64_t v)
{
	return (v + 7) & ~(uint64_t)7;
}

static bool is_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* A directory in the tree's sense (wimlib's): a reparse point is not one. */
static bool attr_is_dir(uint32_t attributes)
{
	return (attributes & (ATTR_DIRECTORY | ATTR_REPARSE_POINT)) == ATTR_DIRECTORY;
}

/* ---- the model ---- */

/* Blocks of memory that never move: names and arrays the entries point to. */
struct arena_block {
	struct arena_block *next;
	size_t used, size;
	_Alignas(16) uint8_t data[];
};

enum {
	N_REMOVED = 1u << 0,  /* gone (with its subtree) */
	N_FACTS = 1u << 1,    /* facts changed: encode afresh */
	N_LIST = 1u << 2,     /* its child list changed: write a new one */
	N_NEW = 1u << 3,      /* not in the parsed bytes */
	N_INDEXED = 1u << 4,  /* its children's names are in the name index */
	N_UNLOADED = 1u << 5, /* a lazy parse has not read its list yet */
};

struct node {
	struct wim_meta_entry e;
	uint32_t parent; /* the root's is NONE */
	uint32_t first_child, last_child, next_sibling, prev_sibling;
	uint32_t flags;
	uint32_t name_len; /* of e.name */
	uint32_t len;	   /* stored bytes (dentry + stream entries); 0 when new */
	uint64_t off;	   /* of the stored bytes in the parsed resource */
	uint64_t list_off; /* parsed: the child list's offset (0 none) */
	uint64_t list_len; /* and length with its end mark */
	uint32_t before;   /* its facts as parsed: m->before[before - 1]; 0 none */
};

struct wim_meta {
	uint8_t *orig; /* the parsed bytes (never written) */
	size_t len;
	bool own; /* orig is a copy, freed with @m */
	uint64_t root_off; /* = the aligned table length */

	/* security table: parsed descriptors point into orig, added ones into
	 * the arena */
	uint32_t nsd, sd_cap;
	const uint8_t **sd;
	uint64_t *sd_len;
	bool sd_added;
	bool changed; /* since parsing */

	struct node *nodes;
	uint32_t nnodes, cap;
	struct slot {
		uint32_t hash, node; /* NONE: free, TOMB: removed */
	} * buckets;
	uint32_t nbuckets, nused, nlive;
	uint64_t max_link;
	struct arena_block *arena;
	uint8_t *spare; /* a copy of orig for wim_meta_write, NULL: none */
	size_t spare_cap;
	/* the facts a changed dentry had as parsed (wim_meta_each_change) */
	struct wim_meta_entry *before;
	size_t nbefore, before_cap;
	/* A lazy parse: directories' lists are read as they are reached, the
	 * claims of what was read kept for the next; an error while reading
	 * one leaves the model unusable (broken: every call returns it). */
	bool lazy;
	uint8_t *claim_dentry, *claim_mark;
	int broken;
};

static int load(struct wim_meta *m, uint32_t dir);
static uint32_t depth_of(const struct wim_meta *m, uint32_t i);

static void *arena_alloc(struct wim_meta *m, size_t size)
{
	struct arena_block *b = m->arena;

	size = (size + 15) & ~(size_t)15;
	if (!b || b->size - b->used < size) {
		size_t bsize = size > (1u << 20) ? size : (1u << 20);
		b = malloc(sizeof(*b) + bsize);
		if (!b)
			return NULL;
		b->next = m->arena;
		b->used = 0;
		b->size = bsize;
		m->arena = b;
	}
	void *p = b->data + b->used;
	b->used += size;
	return p;
}

static void *arena_dup(struct wim_meta *m, const void *p, size_t n)
{
	void *q = arena_alloc(m, n ? n : 1);
	if (q && n)
		memcpy(q, p, n);
	return q;
}

static char *arena_strdup(struct wim_meta *m, const char *s, size_t n)
{
	char *q = arena_alloc(m, n + 1);
	if (q) {
		memcpy(q, s, n);
		q[n] = '\0';
	}
	return q;
}

static uint32_t name_hash(uint32_t parent, const char *name, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull ^ parent;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)name[i];
		h *= 0x100000001b3ull;
	}
	return (uint32_t)(h ^ h >> 32);
}

/* The name index: open addressing on (hash, node) pairs, so that a probe
 * touches a node only when the hash matches; removed slots become
 * tombstones, counted in nused until the next growth drops them.  A
 * directory's names go in when one of them is first looked up
 * (index_dir), so a parse pays for none and a patch for the directories it
 * touches. */
#define TOMB (NONE - 1)

static int hash_resize(struct wim_meta *m, uint32_t n)
{
	struct slot *b = malloc((size_t)n * sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		b[i].node = NONE;
	for (uint32_t i = 0; i < m->nbuckets; i++) {
		struct slot s = m->buckets[i];
		if (s.node >= TOMB)
			continue;
		uint32_t j = s.hash & (n - 1);
		while (b[j].node != NONE)
			j = (j + 1) & (n - 1);
		b[j] = s;
	}
	free(m->buckets);
	m->buckets = b;
	m->nbuckets = n;
	m->nused = m->nlive;
	return 0;
}

/* Room for one more name. */
static int hash_reserve(struct wim_meta *m)
{
	if ((uint64_t)(m->nused + 1) * 2 <= m->nbuckets)
		return 0;
	uint64_t n = m->nbuckets ? m->nbuckets : 1024;
	while ((uint64_t)(m->nlive + 1) * 4 > n)
		n *= 2;
	if (n > (1u << 31))
		return -ENOMEM;
	return hash_resize(m, (uint32_t)n);
}

static void hash_insert(struct wim_meta *m, uint32_t i)
{
	struct node *nd = &m->nodes[i];
	uint32_t h = name_hash(nd->parent, nd->e.name, nd->name_len);
	uint32_t j = h & (m->nbuckets - 1);

	while (m->buckets[j].node != NONE)
		j = (j + 1) & (m->nbuckets - 1);
	m->buckets[j] = (struct slot){h, i};
	m->nused++;
	m->nlive++;
}

static uint32_t *hash_find_slot(const struct wim_meta *m, uint32_t parent, const char *name,
				size_t len)
{
	uint32_t h = name_hash(parent, name, len);

	if (!m->nbuckets)
		return NULL;
	for (uint32_t j = h & (m->nbuckets - 1); m->buckets[j].node != NONE;
	     j = (j + 1) & (m->nbuckets - 1)) {
		struct slot *s = &m->buckets[j];
		if (s->hash != h || s->node == TOMB)
			continue;
		const struct node *nd = &m->nodes[s->node];
		if (nd->parent == parent && nd->name_len == len && !memcmp(nd->e.name, name, len))
			return &s->node;
	}
	return NULL;
}

/* hash_insert of a node whose name its parent may hold already: false
 * (nothing inserted) when it does.  One probe for both: the slot where a
 * search ends is the one hash_insert takes. */
static bool hash_insert_new(struct wim_meta *m, uint32_t i)
{
	const struct node *nd = &m->nodes[i];
	uint32_t h = name_hash(nd->parent, nd->e.name, nd->name_len);
	uint32_t j = h & (m->nbuckets - 1);

	for (; m->buckets[j].node != NONE; j = (j + 1) & (m->nbuckets - 1)) {
		const struct slot *s = &m->buckets[j];
		if (s->hash != h || s->node == TOMB)
			continue;
		const struct node *o = &m->nodes[s->node];
		if (o->parent == nd->parent && o->name_len == nd->name_len &&
		    !memcmp(o->e.name, nd->e.name, nd->name_len))
			return false;
	}
	m->buckets[j] = (struct slot){h, i};
	m->nused++;
	m->nlive++;
	return true;
}

static void hash_remove(struct wim_meta *m, uint32_t i)
{
	struct node *nd = &m->nodes[i];
	if (nd->parent == NONE || !(m->nodes[nd->parent].flags & N_INDEXED))
		return;
	uint32_t *s = hash_find_slot(m, nd->parent, nd->e.name, nd->name_len);

	if (s && *s == i) {
		*s = TOMB;
		m->nlive--;
	}
}

/* Puts the names of @dir's children in the index: -EINVAL when two are the
 * same (a list wimlib would not have written). */
static int index_dir(struct wim_meta *m, uint32_t dir)
{
	int ret;

	if (m->nodes[dir].flags & N_INDEXED)
		return 0;
	if ((ret = load(m, dir)) < 0)
		return ret;
	for (uint32_t c = m->nodes[dir].first_child; c != NONE; c = m->nodes[c].next_sibling) {
		if ((ret = hash_reserve(m)) < 0)
			return ret;
		if (!hash_insert_new(m, c))
			return -EINVAL;
	}
	m->nodes[dir].flags |= N_INDEXED;
	return 0;
}

/* @parent's child named @name, NONE with *err -ENOENT when it has none. */
static uint32_t find_child(struct wim_meta *m, uint32_t parent, const char *name, size_t len,
			   int *err)
{
	if ((*err = index_dir(m, parent)) < 0)
		return NONE;
	const uint32_t *s = hash_find_slot(m, parent, name, len);
	*err = s ? 0 : -ENOENT;
	return s ? *s : NONE;
}

/* 0 when @dir has no child named @name, -EEXIST when it has, or why it
 * cannot tell. */
static int name_free(struct wim_meta *m, uint32_t dir, const char *name)
{
	int err;

	if (find_child(m, dir, name, strlen(name), &err) != NONE)
		return -EEXIST;
	return err == -ENOENT ? 0 : err;
}

static int nodes_reserve(struct wim_meta *m, uint64_t want)
{
	if (want <= m->cap)
		return 0;
	if (want > UINT32_MAX / 2)
		return -ENOMEM;
	struct node *n = wtg_realloc_large(m->nodes, (size_t)want * sizeof(*n));
	if (!n)
		return -ENOMEM;
	m->nodes = n;
	m->cap = (uint32_t)want;
	return 0;
}

/* A new node (zeroed, unlinked); NONE when out of memory. */
static uint32_t node_new(struct wim_meta *m)
{
	if (m->nnodes == m->cap) {
		uint32_t cap = m->cap ? m->cap * 2 : 1024;
		struct node *n = wtg_realloc_large(m->nodes, (size_t)cap * sizeof(*n));
		if (!n || cap <= m->cap)
			return NONE;
		m->nodes = n;
		m->cap = cap;
	}
	struct node *nd = &m->nodes[m->nnodes];
	memset(nd, 0, sizeof(*nd));
	nd->parent = nd->first_child = nd->last_child = NONE;
	nd->next_sibling = nd->prev_sibling = NONE;
	return m->nnodes++;
}

static void link_last(struct wim_meta *m, uint32_t parent, uint32_t i)
{
	struct node *p = &m->nodes[parent], *nd = &m->nodes[i];

	nd->parent = parent;
	nd->prev_sibling = p->last_child;
	nd->next_sibling = NONE;
	if (p->last_child != NONE)
		m->nodes[p->last_child].next_sibling = i;
	else
		p->first_child = i;
	p->last_child = i;
}

static void link_before(struct wim_meta *m, uint32_t parent, uint32_t next, uint32_t i)
{
	struct node *p = &m->nodes[parent], *nd = &m->nodes[i];

	if (next == NONE) {
		link_last(m, parent, i);
		return;
	}
	nd->parent = parent;
	nd->next_sibling = next;
	nd->prev_sibling = m->nodes[next].prev_sibling;
	if (nd->prev_sibling != NONE)
		m->nodes[nd->prev_sibling].next_sibling = i;
	else
		p->first_child = i;
	m->nodes[next].prev_sibling = i;
}

static void unlink_node(struct wim_meta *m, uint32_t i)
{
	struct node *nd = &m->nodes[i], *p = &m->nodes[nd->parent];

	if (nd->prev_sibling != NONE)
		m->nodes[nd->prev_sibling].next_sibling = nd->next_sibling;
	else
		p->first_child = nd->next_sibling;
	if (nd->next_sibling != NONE)
		m->nodes[nd->next_sibling].prev_sibling = nd->prev_sibling;
	else
		p->last_child = nd->prev_sibling;
	nd->next_sibling = nd->prev_sibling = NONE;
}

/* ---- names ---- */

/* UTF-16LE from the resource to a string in the arena: "" for 0 bytes;
 * NULL with *err set for an embedded NUL (-EINVAL) or no memory. */
static char *name_from_disk(struct wim_meta *m, const uint8_t *p, size_t nbytes, uint32_t *len_ret,
			    int *err)
{
	size_t units = nbytes / 2, size = units * 3 + 1, i;
	char *s;
	long n;

	s = arena_alloc(m, size);
	if (!s) {
		*err = -ENOMEM;
		return NULL;
	}
	/* (most names are ASCII: one byte a unit, as the conversion gives) */
	for (i = 0; i < units && !p[2 * i + 1] && p[2 * i] && p[2 * i] < 0x80; i++)
		s[i] = (char)p[2 * i];
	if (i == units) {
		s[i] = '\0';
		n = (long)i;
		goto done;
	}
	for (; i < units; i++)
		if (!p[2 * i] && !p[2 * i + 1]) {
			m->arena->used -= (size + 15) & ~(size_t)15;
			*err = -EINVAL;
			return NULL;
		}
	n = wtg_utf16le_to_utf8(p, units, s, size);
	if (n < 0) {
		*err = -EINVAL;
		return NULL;
	}
done:
	/* give back what the conversion did not use */
	m->arena->used -= ((size + 15) & ~(size_t)15) - (((size_t)n + 16) & ~(size_t)15);
	if (len_ret)
		*len_ret = (uint32_t)n;
	return s;
}

/* UTF-8 to UTF-16LE into @out (room for 32767 units): the byte count, or
 * -EINVAL for what no WIM name can be (not UTF-8, a NUL, too long). */
static long name_to_disk(const char *s, uint8_t *out)
{
	size_t len = strlen(s);
	long n = wtg_utf8_to_utf16le(s, len, out, 32767);

	if (n < 0)
		return -EINVAL;
	return n * 2;
}

/* Collation of sibling names as wimlib keeps them: upper-cased UTF-16 code
 * units first, then the units themselves. */
static locale_t collate_locale;
static pthread_once_t collate_once = PTHREAD_ONCE_INIT;

static void collate_init(void)
{
	collate_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

static uint16_t upcase(uint16_t u)
{
	if (u < 0x80)
		return (u >= 'a' && u <= 'z') ? (uint16_t)(u - 32) : u;
	if ((u >= 0xD800 && u <= 0xDFFF) || !collate_locale)
		return u;
	wint_t w = towupper_l((wint_t)u, collate_locale);
	return w > 0xFFFF ? u : (uint16_t)w;
}

static int collate(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	size_t n = an < bn ? an : bn;

	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < n; i += 2) {
			uint16_t x = wtg_get_le16(a + i), y = wtg_get_le16(b + i);
			if (!pass) {
				x = upcase(x);
				y = upcase(y);
			}
			if (x != y)
				return x < y ? -1 : 1;
		}
		if (an != bn)
			return an < bn ? -1 : 1;
	}
	return 0;
}

/* ---- parsing ---- */

struct parse {
	struct wim_meta *m;
	uint8_t *dentry, *mark; /* a bit per 8-byte unit */
};

/* Marks [off, off + len) (8-aligned) as a dentry's; -EINVAL when part of it
 * was read before. */
static int claim(struct parse *ps, uint64_t off, uint64_t len)
{
	/* (a byte of the bitmaps at a time) */
	for (uint64_t u = off / 8, end = (off + len) / 8; u < end;) {
		uint64_t byte = u / 8;
		unsigned lo = (unsigned)(u % 8), hi = end - byte * 8 >= 8 ? 8 : (unsigned)(end - byte * 8);
		uint8_t bits = (uint8_t)(((1u << hi) - 1) & ~((1u << lo) - 1));
		if ((ps->dentry[byte] | ps->mark[byte]) & bits)
			return -EINVAL;
		ps->dentry[byte] |= bits;
		u = byte * 8 + hi;
	}
	return 0;
}

/* An end mark at @off: lists may share one (empty directories), but no
 * dentry may hold it, or patching the dentry would change the list. */
static int claim_mark(struct parse *ps, uint64_t off)
{
	uint64_t u = off / 8;
	uint8_t bit = (uint8_t)(1u << (u % 8));

	if (ps->dentry[u / 8] & bit)
		return -EINVAL;
	ps->mark[u / 8] |= bit;
	return 0;
}

static int parse_security(struct wim_meta *m)
{
	const uint8_t *b = m->orig;
	uint64_t total, count, pos;

	if (m->len < 8)
		return -EINVAL;
	total = align8(wtg_get_le32(b));
	if (total == 0)
		total = 8;
	count = wtg_get_le32(b + 4);
	if (total > m->len || count > (total - 8) / 8)
		return -EINVAL;
	m->root_off = total;
	m->nsd = m->sd_cap = (uint32_t)count;
	m->sd = calloc(count ? count : 1, sizeof(*m->sd));
	m->sd_len = calloc(count ? count : 1, sizeof(*m->sd_len));
	if (!m->sd || !m->sd_len)
		return -ENOMEM;
	pos = 8 + 8 * count;
	for (uint64_t i = 0; i < count; i++) {
		uint64_t size = wtg_get_le64(b + 8 + 8 * i);
		if (size > UINT32_MAX || size > total - pos)
			return -EINVAL;
		m->sd[i] = b + pos;
		m->sd_len[i] = size;
		pos += size;
	}
	return 0;
}

/* Reads the tagged items in [p, end): the object id apart, the rest raw. */
static int parse_tagged(struct wim_meta *m, struct wim_meta_entry *e, const uint8_t *p,
			const uint8_t *end)
{
	const uint8_t *start = p, *oid_item = NULL;
	size_t oid_full = 0;

	while (p < end) {
		if (end - p < 8)
			return -EINVAL;
		uint32_t tag = wtg_get_le32(p), len = wtg_get_le32(p + 4);
		uint64_t full = 8 + align8(len);
		if (full > (uint64_t)(end - p))
			return -EINVAL;
		if (!oid_item && tag == WIM_META_TAG_OBJECT_ID && len >= 16) {
			oid_item = p;
			oid_full = (size_t)full;
			e->object_id = p + 8;
			e->object_id_len = len;
		}
		p += full;
	}
	size_t total = (size_t)(end - start);
	if (total == oid_full)
		return 0;
	if (!oid_item) {
		e->tagged = start;
		e->tagged_len = total;
		return 0;
	}
	/* the others, without the object id's item */
	uint8_t *t = arena_alloc(m, total - oid_full);
	if (!t)
		return -ENOMEM;
	size_t before = (size_t)(oid_item - start);
	memcpy(t, start, before);
	memcpy(t + before, oid_item + oid_full, total - before - oid_full);
	e->tagged = t;
	e->tagged_len = total - oid_full;
	return 0;
}

/* The stream entries after a dentry at [off, m->len): fills the entry's
 * streams as wimlib assigns them (unnamed: the reparse stream first for a
 * reparse point, then the data stream; the dentry's own hash counts unless
 * it is zero); returns their length, or -errno. */
static int64_t parse_streams(struct wim_meta *m, struct wim_meta_entry *e, const uint8_t *main_hash,
			     unsigned count, uint64_t off)
{
	const uint8_t *b = m->orig;
	struct wim_meta_stream *named = NULL;
	bool found_reparse = false, found_data = false;
	bool reparse = e->attributes & ATTR_REPARSE_POINT;
	bool encrypted = e->attributes & ATTR_ENCRYPTED;
	uint64_t pos = off;
	size_t nnamed = 0;
	int err = 0;

	if (count > (m->len - off) / sizeof(struct stream_disk))
		return -EINVAL;
	if (count) {
		named = arena_alloc(m, count * sizeof(*named));
		if (!named)
			return -ENOMEM;
	}
	for (unsigned i = 0; i <= count; i++) {
		const uint8_t *hash = main_hash;
		const char *name = NULL;
		if (i > 0) {
			if (m->len - pos < sizeof(struct stream_disk))
				return -EINVAL;
			const uint8_t *s = b + pos;
			uint64_t len = align8(wtg_get_le64(s));
			uint16_t nbytes = wtg_get_le16(s + 0x24);
			if (len < sizeof(struct stream_disk) || len > m->len - pos ||
			    (nbytes & 1) || sizeof(struct stream_disk) + (uint64_t)nbytes > len)
				return -EINVAL;
			hash = s + 0x10;
			if (nbytes) {
				name = name_from_disk(m, s + 0x26, nbytes, NULL, &err);
				if (!name)
					return err;
			}
			pos += len;
		}
		if (name) {
			named[nnamed].name = name;
			memcpy(named[nnamed].hash, hash, WIM_META_HASH_LEN);
			nnamed++;
		} else if (i != 0 || !is_zero(hash, WIM_META_HASH_LEN)) {
			if (encrypted) {
				if (!found_data && !is_zero(hash, WIM_META_HASH_LEN)) {
					memcpy(e->hash, hash, WIM_META_HASH_LEN);
					found_data = true;
				}
			} else if (reparse && !found_reparse) {
				memcpy(e->reparse_hash, hash, WIM_META_HASH_LEN);
				found_reparse = true;
			} else if (!found_data) {
				memcpy(e->hash, hash, WIM_META_HASH_LEN);
				found_data = true;
			}
		}
	}
	e->streams = named;
	e->nstreams = nnamed;
	return (int64_t)(pos - off);
}

/* Reads the dentry at @off into a new node: its index, NONE at an end mark
 * (*ret 0), or NONE with *ret the error. */
static uint32_t parse_dentry(struct parse *ps, uint64_t off, int *ret)
{
	struct wim_meta *m = ps->m;
	const uint8_t *b = m->orig;
	uint64_t length;
	int err = 0;

	*ret = -EINVAL;
	if (off % 8 || off > m->len || m->len - off < 8)
		return NONE;
	length = align8(wtg_get_le64(b + off));
	if (length <= 8) {
		*ret = claim_mark(ps, off);
		return NONE;
	}
	if (length < sizeof(struct dentry_disk) || length > m->len - off)
		return NONE;
	const uint8_t *d = b + off;
	uint16_t short_nbytes = wtg_get_le16(d + 0x62), name_nbytes = wtg_get_le16(d + 0x64);
	uint64_t need = sizeof(struct dentry_disk) + (name_nbytes ? name_nbytes + 2u : 0) +
			(short_nbytes ? short_nbytes + 2u : 0);
	if ((short_nbytes | name_nbytes) & 1 || length < need)
		return NONE;

	uint32_t i = node_new(m);
	if (i == NONE) {
		*ret = -ENOMEM;
		return NONE;
	}
	struct node *nd = &m->nodes[i];
	struct wim_meta_entry *e = &nd->e;
	e->attributes = wtg_get_le32(d + 0x08);
	e->security_id = (int32_t)wtg_get_le32(d + 0x0C);
	nd->list_off = wtg_get_le64(d + 0x10);
	e->creation_time = wtg_get_le64(d + 0x28);
	e->last_access_time = wtg_get_le64(d + 0x30);
	e->last_write_time = wtg_get_le64(d + 0x38);
	e->unknown_0x54 = wtg_get_le32(d + 0x54);
	if (e->attributes & ATTR_REPARSE_POINT) {
		e->reparse_tag = wtg_get_le32(d + 0x58);
		e->rp_reserved = wtg_get_le16(d + 0x5C);
		e->rp_flags = wtg_get_le16(d + 0x5E);
	} else {
		e->hard_link_group_id = wtg_get_le64(d + 0x58);
	}
	if (e->security_id < -1 || (e->security_id >= 0 && (uint32_t)e->security_id >= m->nsd))
		return NONE;

	const uint8_t *p = d + sizeof(struct dentry_disk);
	e->name = "";
	if (name_nbytes) {
		e->name = name_from_disk(m, p, name_nbytes, &nd->name_len, &err);
		if (!e->name)
			goto bad;
		p += name_nbytes + 2;
	}
	if (short_nbytes) {
		e->dos_name = name_from_disk(m, p, short_nbytes, NULL, &err);
		if (!e->dos_name)
			goto bad;
		p += short_nbytes + 2;
	}
	p = b + align8((uint64_t)(p - b));
	if (p < d + length) {
		err = parse_tagged(m, e, p, d + length);
		if (err)
			goto bad;
	}
	int64_t slen = parse_streams(m, e, d + 0x40, wtg_get_le16(d + 0x60), off + length);
	if (slen < 0) {
		err = (int)slen;
		goto bad;
	}
	if (length + (uint64_t)slen > UINT32_MAX)
		goto bad;
	nd->off = off;
	nd->len = (uint32_t)(length + (uint64_t)slen);
	err = claim(ps, off, nd->len);
	if (err)
		goto bad;
	*ret = 0;
	return i;
bad:
	*ret = err ? err : -EINVAL;
	return NONE;
}

static bool bad_child_name(const struct node *nd)
{
	return nd->name_len == 0 || !strcmp(nd->e.name, ".") || !strcmp(nd->e.name, "..") ||
	       strchr(nd->e.name, '/');
}

/* Reads the children of directory @dir (its list at list_off). */
static int parse_list(struct parse *ps, uint32_t dir)
{
	struct wim_meta *m = ps->m;
	uint64_t off = m->nodes[dir].list_off, start = off;
	int ret;

	for (;;) {
		uint32_t i = parse_dentry(ps, off, &ret);
		if (i == NONE) {
			if (ret)
				return ret;
			m->nodes[dir].list_len = off + 8 - start;
			return 0;
		}
		struct node *nd = &m->nodes[i];
		off += nd->len;
		if (bad_child_name(nd))
			return -EINVAL;
		if (!attr_is_dir(nd->e.attributes) && nd->list_off)
			return -EINVAL;
		if (!(nd->e.attributes & ATTR_REPARSE_POINT) &&
		    nd->e.hard_link_group_id > m->max_link)
			m->max_link = nd->e.hard_link_group_id;
		nd->parent = dir;
		link_last(m, dir, i);
	}
}

static int parse_tree(struct parse *ps)
{
	struct wim_meta *m = ps->m;
	int ret;
	uint32_t root = parse_dentry(ps, m->root_off, &ret);

	if (root == NONE)
		return ret ? ret : -EINVAL; /* an image without a root */
	struct node *r = &m->nodes[root];
	if (r->name_len || r->e.dos_name || !attr_is_dir(r->e.attributes))
		return -EINVAL;
	if (!(r->e.attributes & ATTR_REPARSE_POINT) && r->e.hard_link_group_id > m->max_link)
		m->max_link = r->e.hard_link_group_id;
	/* the end mark after the root belongs to it */
	if (m->len - r->off - r->len < 8 || (ret = claim_mark(ps, r->off + r->len)) < 0)
		return -EINVAL;
	/* room for as many dentries as the bytes can hold, so that the array
	 * does not grow while parsing */
	uint64_t most = (m->len - m->root_off) / sizeof(struct dentry_disk) + 1;
	if ((ret = nodes_reserve(m, most + 1)) < 0)
		return ret;
	if (m->lazy) {
		if (m->nodes[root].list_off)
			m->nodes[root].flags |= N_UNLOADED;
		return 0;
	}

	/* breadth first, each directory's depth checked as its list is read */
	uint32_t *depth = NULL;
	size_t depth_cap = 0;
	for (uint32_t i = 0; i < m->nnodes; i++) {
		struct node *nd = &m->nodes[i];
		if (!nd->list_off)
			continue;
		uint32_t dd = i == root ? 0 : depth[i] + 1;
		if (dd >= MAX_DEPTH) {
			ret = -EINVAL;
			break;
		}
		uint32_t first = m->nnodes;
		ret = parse_list(ps, i);
		if (ret)
			break;
		if (m->nnodes > depth_cap) {
			size_t cap = depth_cap ? depth_cap : 1024;
			while (cap < m->nnodes)
				cap *= 2;
			uint32_t *d = realloc(depth, cap * sizeof(*d));
			if (!d) {
				ret = -ENOMEM;
				break;
			}
			depth = d;
			depth_cap = cap;
		}
		for (uint32_t c = first; c < m->nnodes; c++)
			depth[c] = dd;
	}
	free(depth);
	return ret;
}

void wim_meta_entry_init(struct wim_meta_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->security_id = -1;
}

static int parse(const void *bytes, size_t len, bool copy, bool lazy, struct wim_meta **ret)
{
	struct wim_meta *m = calloc(1, sizeof(*m));
	struct parse ps = {.m = m};
	int err = -ENOMEM;

	*ret = NULL;
	if (!m)
		return -ENOMEM;
	pthread_once(&collate_once, collate_init);
	m->own = copy;
	m->lazy = lazy;
	m->orig = copy ? malloc(len ? len : 1) : (uint8_t *)bytes;
	ps.dentry = calloc(len / 64 + 1, 1);
	ps.mark = calloc(len / 64 + 1, 1);
	if (!m->orig || !ps.dentry || !ps.mark)
		goto fail;
	if (copy)
		memcpy(m->orig, bytes, len);
	m->len = len;
	err = parse_security(m);
	if (!err)
		err = parse_tree(&ps);
	if (err)
		goto fail;
	if (lazy) {
		m->claim_dentry = ps.dentry;
		m->claim_mark = ps.mark;
	} else {
		free(ps.dentry);
		free(ps.mark);
	}
	*ret = m;
	return 0;
fail:
	free(ps.dentry);
	free(ps.mark);
	wim_meta_free(m);
	return err;
}

/* Reads directory @dir's list when a lazy parse has not yet: the checks
 * a whole parse makes of it (depth, bounds, bytes read twice). */
static int load(struct wim_meta *m, uint32_t dir)
{
	if (m->broken)
		return m->broken;
	if (!(m->nodes[dir].flags & N_UNLOADED))
		return 0;
	m->nodes[dir].flags &= ~N_UNLOADED;
	struct parse ps = {.m = m, .dentry = m->claim_dentry, .mark = m->claim_mark};
	uint32_t first = m->nnodes;
	int ret = depth_of(m, dir) >= MAX_DEPTH ? -EINVAL : parse_list(&ps, dir);
	if (ret)
		return m->broken = ret;
	for (uint32_t c = first; c < m->nnodes; c++)
		if (m->nodes[c].list_off)
			m->nodes[c].flags |= N_UNLOADED;
	return 0;
}

/* Every list under @top read (a lazy parse), and how many levels the
 * subtree has below it in *@height (NULL: not wanted): iterative, down the
 * first children, then siblings, up again. */
static int load_subtree(struct wim_meta *m, uint32_t top, uint32_t *height)
{
	uint32_t i = top, d = 0, most = 0;
	int ret;

	for (;;) {
		if ((ret = load(m, i)) < 0)
			return ret;
		if (m->nodes[i].first_child != NONE) {
			i = m->nodes[i].first_child;
			if (++d > most)
				most = d;
			continue;
		}
		while (i != top && m->nodes[i].next_sibling == NONE) {
			i = m->nodes[i].parent;
			d--;
		}
		if (i == top)
			break;
		i = m->nodes[i].next_sibling;
	}
	if (height)
		*height = most;
	return 0;
}

/* The whole tree read (what is removed stays unread). */
static int load_all(struct wim_meta *m)
{
	int ret = m->broken;

	for (uint32_t i = 0; !ret && m->lazy && i < m->nnodes; i++)
		if (!(m->nodes[i].flags & N_REMOVED))
			ret = load(m, i);
	if (!ret)
		m->lazy = false;
	return ret;
}

/* The lists that lie in [@from, @to) of the parsed bytes, which a grown
 * start covers and moves: those of every directory held whose list starts
 * below @to are read, until each 8-byte unit there is a read dentry's (so
 * no unread list lies there); else (a gap, an end mark an empty list may
 * share, the end of the bytes) the whole tree is read. */
static int load_start(struct wim_meta *m, uint64_t from, uint64_t to)
{
	int ret;

	for (bool more = true; more;) {
		more = false;
		for (uint32_t i = 0; i < m->nnodes; i++) {
			const struct node *nd = &m->nodes[i];
			if ((nd->flags & N_UNLOADED) && !(nd->flags & N_REMOVED) &&
			    nd->list_off < to) {
				if ((ret = load(m, i)) < 0)
					return ret;
				more = true;
			}
		}
	}
	if (to > m->len)
		return load_all(m);
	for (uint64_t u = from / 8; u < (to + 7) / 8; u++)
		if (!((m->claim_dentry[u / 8] >> (u % 8)) & 1))
			return load_all(m);
	return 0;
}

int wim_meta_parse_lazy(const void *bytes, size_t len, struct wim_meta **ret)
{
	return parse(bytes, len, false, true, ret);
}

int wim_meta_parse(const void *bytes, size_t len, struct wim_meta **ret)
{
	return parse(bytes, len, true, false, ret);
}

int wim_meta_parse_shared(const void *bytes, size_t len, struct wim_meta **ret)
{
	return parse(bytes, len, false, false, ret);
}

void wim_meta_free(struct wim_meta *m)
{
	if (!m)
		return;
	while (m->arena) {
		struct arena_block *b = m->arena;
		m->arena = b->next;
		free(b);
	}
	if (m->own)
		free(m->orig);
	free(m->sd);
	free(m->sd_len);
	free(m->nodes);
	free(m->buckets);
	free(m->spare);
	free(m->before);
	free(m->claim_dentry);
	free(m->claim_mark);
	free(m);
}

/* ---- security table ---- */

uint32_t wim_meta_sd_count(const struct wim_meta *m)
{
	return m->nsd;
}

int wim_meta_sd_get(const struct wim_meta *m, uint32_t id, const void **sd, size_t *len)
{
	if (id >= m->nsd)
		return -ENOENT;
	*sd = m->sd[id];
	*len = (size_t)m->sd_len[id];
	return 0;
}

int wim_meta_sd_find(const struct wim_meta *m, const void *sd, size_t len)
{
	for (uint32_t i = 0; i < m->nsd; i++)
		if (m->sd_len[i] == len && !memcmp(m->sd[i], sd, len))
			return (int)i;
	return -ENOENT;
}

int wim_meta_sd_add(struct wim_meta *m, const void *sd, size_t len)
{
	int id = wim_meta_sd_find(m, sd, len);

	if (id >= 0)
		return id;
	if (!len || len > UINT32_MAX || m->nsd >= 0x7FFFFFFF)
		return -EINVAL;
	if (m->nsd == m->sd_cap) {
		uint32_t cap = m->sd_cap ? m->sd_cap * 2 : 16;
		const uint8_t **s = realloc(m->sd, cap * sizeof(*s));
		if (!s)
			return -ENOMEM;
		m->sd = s;
		uint64_t *l = realloc(m->sd_len, cap * sizeof(*l));
		if (!l)
			return -ENOMEM;
		m->sd_len = l;
		m->sd_cap = cap;
	}
	const uint8_t *copy = arena_dup(m, sd, len);
	if (!copy)
		return -ENOMEM;
	m->sd[m->nsd] = copy;
	m->sd_len[m->nsd] = len;
	m->sd_added = true;
	m->changed = true;
	return (int)m->nsd++;
}

/* ---- paths ---- */

/* The node at @path, or NONE with *err -ENOENT / -ENOTDIR / -EINVAL. */
static uint32_t lookup(struct wim_meta *m, const char *path, int *err)
{
	uint32_t cur = 0;

	if (!path) {
		*err = -EINVAL;
		return NONE;
	}
	while (*path) {
		const char *slash = strchr(path, '/');
		size_t n = slash ? (size_t)(slash - path) : strlen(path);
		if (!n) {
			*err = -EINVAL;
			return NONE;
		}
		if (!attr_is_dir(m->nodes[cur].e.attributes)) {
			*err = -ENOTDIR;
			return NONE;
		}
		cur = find_child(m, cur, path, n, err);
		if (cur == NONE)
			return NONE;
		path += n;
		if (*path == '/' && !*++path) {
			*err = -EINVAL;
			return NONE;
		}
	}
	return cur;
}

int wim_meta_get(struct wim_meta *m, const char *path, struct wim_meta_entry *out)
{
	int err;
	uint32_t i = lookup(m, path, &err);

	if (i == NONE)
		return err;
	*out = m->nodes[i].e;
	return 0;
}

/* ---- encoding ---- */

struct enc {
	uint8_t name[65536], dos[65536];
	long name_n, dos_n;
	uint64_t dentry_len; /* the length field */
	uint64_t total;	     /* with the stream entries */
	bool extra;	     /* streams in entries, not in the dentry */
	size_t nextra;
};

static bool tagged_ok(const uint8_t *p, size_t len)
{
	if (len % 8)
		return false;
	while (len) {
		if (len < 8)
			return false;
		uint64_t full = 8 + align8(wtg_get_le32(p + 4));
		if (full > len)
			return false;
		p += full;
		len -= (size_t)full;
	}
	return true;
}

static uint64_t stream_len(size_t name_nbytes)
{
	return align8(sizeof(struct stream_disk) + (name_nbytes ? name_nbytes + 2 : 0));
}

/* Checks @e and computes its encoding's lengths (wimlib 1.13's layout). */
static int enc_prepare(const struct wim_meta_entry *e, bool root, struct enc *x)
{
	uint8_t tmp[65536];
	bool reparse = e->attributes & ATTR_REPARSE_POINT;

	x->name_n = root ? 0 : name_to_disk(e->name, x->name);
	if (x->name_n < 0 || (!root && x->name_n == 0))
		return -EINVAL;
	x->dos_n = 0;
	if (e->dos_name) {
		x->dos_n = name_to_disk(e->dos_name, x->dos);
		if (x->dos_n <= 0)
			return -EINVAL;
	}
	if (e->object_id && (e->object_id_len < 16 || e->object_id_len > 0xFFFF))
		return -EINVAL;
	if ((e->tagged_len && !e->tagged) || !tagged_ok(e->tagged, e->tagged_len))
		return -EINVAL;
	x->dentry_len = align8(sizeof(struct dentry_disk) + (x->name_n ? x->name_n + 2 : 0) +
			       (x->dos_n ? x->dos_n + 2 : 0));
	if (e->object_id)
		x->dentry_len += 8 + align8(e->object_id_len);
	x->dentry_len += e->tagged_len;
	x->total = x->dentry_len;
	if (e->nstreams > 0xFFFD || (e->nstreams && !e->streams))
		return -EINVAL;
	x->extra = !(e->attributes & ATTR_ENCRYPTED) && (reparse || e->nstreams);
	x->nextra = 0;
	if (x->extra) {
		x->nextra = (reparse ? 2 : 1) + e->nstreams;
		x->total += (reparse ? 2 : 1) * stream_len(0);
		for (size_t i = 0; i < e->nstreams; i++) {
			long n = e->streams[i].name ? name_to_disk(e->streams[i].name, tmp) : -1;
			if (n <= 0)
				return -EINVAL;
			x->total += stream_len((size_t)n);
		}
	}
	if (x->total > UINT32_MAX)
		return -EINVAL;
	return 0;
}

static uint8_t *put_stream(uint8_t *p, const uint8_t *hash, const uint8_t *name, size_t nbytes)
{
	uint64_t len = stream_len(nbytes);

	memset(p, 0, len);
	wtg_put_le64(p, len);
	memcpy(p + 0x10, hash, WIM_META_HASH_LEN);
	wtg_put_le16(p + 0x24, (uint16_t)nbytes);
	if (nbytes)
		memcpy(p + 0x26, name, nbytes);
	return p + len;
}

/* Writes @e's dentry with @subdir at @p (x->total bytes, zeroed first). */
static void enc_write(const struct wim_meta_entry *e, const struct enc *x, uint64_t subdir,
		      uint8_t *p)
{
	static const uint8_t zero[WIM_META_HASH_LEN];
	uint8_t tmp[65536];
	uint8_t *d = p;

	memset(p, 0, x->total);
	wtg_put_le64(d, x->dentry_len);
	wtg_put_le32(d + 0x08, e->attributes);
	wtg_put_le32(d + 0x0C, (uint32_t)e->security_id);
	wtg_put_le64(d + 0x10, subdir);
	wtg_put_le64(d + 0x28, e->creation_time);
	wtg_put_le64(d + 0x30, e->last_access_time);
	wtg_put_le64(d + 0x38, e->last_write_time);
	memcpy(d + 0x40, x->extra ? zero : e->hash, WIM_META_HASH_LEN);
	wtg_put_le32(d + 0x54, e->unknown_0x54);
	if (e->attributes & ATTR_REPARSE_POINT) {
		wtg_put_le32(d + 0x58, e->reparse_tag);
		wtg_put_le16(d + 0x5C, e->rp_reserved);
		wtg_put_le16(d + 0x5E, e->rp_flags);
	} else {
		wtg_put_le64(d + 0x58, e->hard_link_group_id);
	}
	wtg_put_le16(d + 0x60, (uint16_t)x->nextra);
	wtg_put_le16(d + 0x62, (uint16_t)x->dos_n);
	wtg_put_le16(d + 0x64, (uint16_t)x->name_n);
	p += sizeof(struct dentry_disk);
	if (x->name_n) {
		memcpy(p, x->name, (size_t)x->name_n);
		p += x->name_n + 2;
	}
	if (x->dos_n) {
		memcpy(p, x->dos, (size_t)x->dos_n);
		p += x->dos_n + 2;
	}
	p = d + align8((uint64_t)(p - d));
	if (e->object_id) {
		wtg_put_le32(p, WIM_META_TAG_OBJECT_ID);
		wtg_put_le32(p + 4, (uint32_t)e->object_id_len);
		memcpy(p + 8, e->object_id, e->object_id_len);
		p += 8 + align8(e->object_id_len);
	}
	if (e->tagged_len) {
		memcpy(p, e->tagged, e->tagged_len);
		p += e->tagged_len;
	}
	if (!x->extra)
		return;
	if (e->attributes & ATTR_REPARSE_POINT)
		p = put_stream(p, e->reparse_hash, NULL, 0);
	p = put_stream(p, e->hash, NULL, 0);
	for (size_t i = 0; i < e->nstreams; i++) {
		long n = name_to_disk(e->streams[i].name, tmp);
		p = put_stream(p, e->streams[i].hash, tmp, (size_t)n);
	}
}

/* ---- changes ---- */

/* A deep copy of @e's strings and arrays into the arena. */
static int entry_copy(struct wim_meta *m, const struct wim_meta_entry *e, const char *name,
		      struct wim_meta_entry *out)
{
	*out = *e;
	out->name = arena_strdup(m, name, strlen(name));
	out->dos_name = e->dos_name ? arena_strdup(m, e->dos_name, strlen(e->dos_name)) : NULL;
	if (!out->name || (e->dos_name && !out->dos_name))
		return -ENOMEM;
	if (e->object_id && !(out->object_id = arena_dup(m, e->object_id, e->object_id_len)))
		return -ENOMEM;
	if (e->tagged_len && !(out->tagged = arena_dup(m, e->tagged, e->tagged_len)))
		return -ENOMEM;
	if (!e->tagged_len)
		out->tagged = NULL;
	if (e->nstreams) {
		struct wim_meta_stream *s = arena_alloc(m, e->nstreams * sizeof(*s));
		if (!s)
			return -ENOMEM;
		for (size_t i = 0; i < e->nstreams; i++) {
			s[i] = e->streams[i];
			s[i].name = arena_strdup(m, s[i].name, strlen(s[i].name));
			if (!s[i].name)
				return -ENOMEM;
		}
		out->streams = s;
	} else {
		out->streams = NULL;
	}
	return 0;
}

static int check_entry(const struct wim_meta *m, const struct wim_meta_entry *e, bool root,
		       struct enc *x)
{
	if (e->security_id < -1 || (e->security_id >= 0 && (uint32_t)e->security_id >= m->nsd))
		return -EINVAL;
	return enc_prepare(e, root, x);
}

static struct enc *enc_new(void)
{
	return malloc(sizeof(struct enc));
}

static bool has_live_children(const struct wim_meta *m, uint32_t i)
{
	return m->nodes[i].first_child != NONE;
}

/* Keeps the parsed facts of node @i before they first change. */
static int save_before(struct wim_meta *m, uint32_t i)
{
	struct node *nd = &m->nodes[i];
	int err;

	if (nd->flags & (N_NEW | N_FACTS))
		return 0;
	if ((err = wtg_grow((void **)&m->before, &m->before_cap, m->nbefore, sizeof(*m->before))))
		return err;
	m->before[m->nbefore++] = nd->e;
	nd->before = (uint32_t)m->nbefore;
	return 0;
}

int wim_meta_set(struct wim_meta *m, const char *path, const struct wim_meta_entry *e)
{
	int err;
	uint32_t i = lookup(m, path, &err);

	if (i == NONE)
		return err;
	struct node *nd = &m->nodes[i];
	bool root = nd->parent == NONE;
	if (e->name && strcmp(e->name, nd->e.name))
		return -EINVAL;
	if ((err = load(m, i)) < 0)
		return err;
	nd = &m->nodes[i];
	if (attr_is_dir(nd->e.attributes) && !attr_is_dir(e->attributes) && has_live_children(m, i))
		return -EISDIR;
	if (!attr_is_dir(nd->e.attributes) && attr_is_dir(e->attributes))
		return -ENOTDIR;
	if (root && !attr_is_dir(e->attributes))
		return -EISDIR;
	struct wim_meta_entry copy = *e;
	copy.name = nd->e.name;
	struct enc *x = enc_new();
	if (!x)
		return -ENOMEM;
	err = check_entry(m, &copy, root, x);
	uint64_t total = x->total;
	free(x);
	if (err)
		return err;
	struct wim_meta_entry n;
	err = entry_copy(m, &copy, nd->e.name, &n);
	if (!err)
		err = save_before(m, i);
	if (err)
		return err;
	nd = &m->nodes[i];
	n.name = nd->e.name; /* the node's own, which the hash knows */
	nd->e = n;
	nd->flags |= N_FACTS;
	m->changed = true;
	if (!root && !(nd->flags & N_NEW) && total != nd->len)
		m->nodes[nd->parent].flags |= N_LIST;
	if (!(e->attributes & ATTR_REPARSE_POINT) && e->hard_link_group_id > m->max_link)
		m->max_link = e->hard_link_group_id;
	return 0;
}

/* Where a new child named @name (UTF-16LE) goes among @dir's children:
 * before the first one that collates after it. */
static uint32_t sorted_position(const struct wim_meta *m, uint32_t dir, const uint8_t *name,
				size_t nbytes)
{
	uint8_t *tmp = malloc(65536);
	uint32_t n = 0, *kids = NULL, c, lo = 0, hi;

	for (c = m->nodes[dir].first_child; c != NONE; c = m->nodes[c].next_sibling)
		n++;
	if (n)
		kids = malloc((size_t)n * sizeof(*kids));
	if (!tmp || (n && !kids)) {
		free(tmp);
		free(kids);
		return NONE; /* last, out of order: only when out of memory */
	}
	n = 0;
	for (c = m->nodes[dir].first_child; c != NONE; c = m->nodes[c].next_sibling)
		kids[n++] = c;
	/* binary search in the stored (sorted) order: the first child that
	 * collates after the name */
	for (hi = n; lo < hi;) {
		uint32_t mid = lo + (hi - lo) / 2;
		long k = name_to_disk(m->nodes[kids[mid]].e.name, tmp);
		if (k >= 0 && collate(name, nbytes, tmp, (size_t)k) < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	c = lo < n ? kids[lo] : NONE;
	free(tmp);
	free(kids);
	return c;
}

static int check_name(const char *name)
{
	if (!name || !*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	return 0;
}

static void place(struct wim_meta *m, uint32_t dir, uint32_t i, const uint8_t *name, size_t nbytes)
{
	m->changed = true;
	link_before(m, dir, sorted_position(m, dir, name, nbytes), i);
	if (m->nodes[dir].flags & N_INDEXED)
		hash_insert(m, i);
	m->nodes[dir].flags |= N_LIST;
}

/* How deep @i lies (the root: 0). */
static uint32_t depth_of(const struct wim_meta *m, uint32_t i)
{
	uint32_t d = 0;

	while (m->nodes[i].parent != NONE) {
		i = m->nodes[i].parent;
		d++;
	}
	return d;
}

int wim_meta_add(struct wim_meta *m, const char *dir, const struct wim_meta_entry *e)
{
	int err;
	uint32_t d = lookup(m, dir, &err);

	if (d == NONE)
		return err;
	if (!attr_is_dir(m->nodes[d].e.attributes))
		return -ENOTDIR;
	if ((err = check_name(e->name)) < 0)
		return err;
	if (depth_of(m, d) + 1 >= MAX_DEPTH)
		return -EINVAL;
	if ((err = name_free(m, d, e->name)) < 0)
		return err;
	struct enc *x = enc_new();
	if (!x)
		return -ENOMEM;
	err = check_entry(m, e, false, x);
	if (err) {
		free(x);
		return err;
	}
	if ((err = hash_reserve(m)) < 0) {
		free(x);
		return err;
	}
	uint32_t i = node_new(m);
	if (i == NONE) {
		free(x);
		return -ENOMEM;
	}
	err = entry_copy(m, e, e->name, &m->nodes[i].e);
	if (err) {
		m->nnodes--;
		free(x);
		return err;
	}
	struct node *nd = &m->nodes[i];
	nd->name_len = (uint32_t)strlen(nd->e.name);
	nd->flags = N_NEW | N_FACTS | (attr_is_dir(e->attributes) ? N_LIST : 0);
	nd->parent = d;
	place(m, d, i, x->name, (size_t)x->name_n);
	free(x);
	if (!(e->attributes & ATTR_REPARSE_POINT) && e->hard_link_group_id > m->max_link)
		m->max_link = e->hard_link_group_id;
	return 0;
}

static void remove_subtree(struct wim_meta *m, uint32_t top)
{
	/* iterative: down the first children, then siblings, up again */
	uint32_t i = top;

	for (;;) {
		struct node *nd = &m->nodes[i];
		if (nd->first_child != NONE) {
			i = nd->first_child;
			continue;
		}
		uint32_t parent = nd->parent, next = nd->next_sibling;
		hash_remove(m, i);
		unlink_node(m, i);
		nd->flags |= N_REMOVED;
		if (i == top)
			return;
		i = next != NONE ? next : parent;
	}
}

int wim_meta_remove(struct wim_meta *m, const char *path)
{
	int err;
	uint32_t i = lookup(m, path, &err);

	if (i == NONE)
		return err;
	if (m->nodes[i].parent == NONE)
		return -EINVAL;
	/* (what goes is read first: each_change names it) */
	if ((err = load_subtree(m, i, NULL)) < 0)
		return err;
	m->nodes[m->nodes[i].parent].flags |= N_LIST;
	m->changed = true;
	remove_subtree(m, i);
	return 0;
}

int wim_meta_rename(struct wim_meta *m, const char *from, const char *to)
{
	int err;
	uint32_t i = lookup(m, from, &err);

	if (i == NONE)
		return err;
	if (m->nodes[i].parent == NONE || !to)
		return -EINVAL;
	if ((err = hash_reserve(m)) < 0)
		return err;
	const char *slash = strrchr(to, '/');
	const char *base = slash ? slash + 1 : to;
	char *dir = strndup(to, slash ? (size_t)(slash - to) : 0);
	if (!dir)
		return -ENOMEM;
	uint32_t d = lookup(m, dir, &err);
	free(dir);
	if (d == NONE)
		return err;
	if (!attr_is_dir(m->nodes[d].e.attributes))
		return -ENOTDIR;
	if ((err = check_name(base)) < 0)
		return err;
	for (uint32_t a = d; a != NONE; a = m->nodes[a].parent)
		if (a == i)
			return -EINVAL;
	uint32_t height;
	if ((err = load_subtree(m, i, &height)) < 0 || (err = save_before(m, i)) < 0)
		return err;
	if ((uint64_t)depth_of(m, d) + 1 + height >= MAX_DEPTH)
		return -EINVAL;
	if ((err = name_free(m, d, base)) < 0)
		return err;
	uint8_t *u16 = malloc(65536);
	if (!u16)
		return -ENOMEM;
	long n = name_to_disk(base, u16);
	char *name = n > 0 ? arena_strdup(m, base, strlen(base)) : NULL;
	if (!name) {
		free(u16);
		return n > 0 ? -ENOMEM : -EINVAL;
	}
	struct node *nd = &m->nodes[i];
	hash_remove(m, i);
	m->nodes[nd->parent].flags |= N_LIST;
	unlink_node(m, i);
	nd->e.name = name;
	nd->name_len = (uint32_t)strlen(name);
	nd->flags |= N_FACTS;
	nd->parent = d;
	place(m, d, i, u16, (size_t)n);
	free(u16);
	return 0;
}

uint64_t wim_meta_max_link_group(struct wim_meta *m)
{
	/* (of what was read: the whole tree for the caller) */
	if (load_all(m) < 0)
		return UINT64_MAX;
	return m->max_link;
}

/* ---- walk ---- */

int wim_meta_walk(struct wim_meta *m,
		  int (*fn)(void *arg, const char *path, const struct wim_meta_entry *e), void *arg)
{
	size_t cap = 4096, plen = 0;
	char *path;
	uint32_t i = 0;
	int ret = load_all(m);

	if (ret < 0)
		return ret;
	if (!(path = malloc(cap)))
		return -ENOMEM;
	path[0] = '\0';
	ret = fn(arg, path, &m->nodes[0].e);
	/* pre-order without recursion: the path grows going down and is cut
	 * back at each parent's length going up */
	while (!ret) {
		const struct node *nd = &m->nodes[i];
		uint32_t next;
		if (nd->first_child != NONE) {
			next = nd->first_child;
		} else {
			while (i != 0 && m->nodes[i].next_sibling == NONE) {
				i = m->nodes[i].parent;
				/* drop the last component */
				while (plen && path[plen - 1] != '/')
					plen--;
				if (plen)
					plen--;
			}
			if (i == 0)
				break;
			next = m->nodes[i].next_sibling;
			while (plen && path[plen - 1] != '/')
				plen--;
			if (plen)
				plen--;
		}
		const struct node *c = &m->nodes[next];
		size_t need = plen + 1 + c->name_len + 1;
		if (need > cap) {
			while (cap < need)
				cap *= 2;
			char *p = realloc(path, cap);
			if (!p) {
				ret = -ENOMEM;
				break;
			}
			path = p;
		}
		if (plen)
			path[plen++] = '/';
		memcpy(path + plen, c->e.name, c->name_len);
		plen += c->name_len;
		path[plen] = '\0';
		i = next;
		ret = fn(arg, path, &c->e);
	}
	free(path);
	return ret;
}

int wim_meta_each(struct wim_meta *m, int (*fn)(void *arg, const struct wim_meta_entry *e),
		  void *arg)
{
	int ret = load_all(m);

	for (uint32_t i = 0; i < m->nnodes && !ret; i++)
		if (!(m->nodes[i].flags & N_REMOVED))
			ret = fn(arg, &m->nodes[i].e);
	return ret;
}

int wim_meta_each_change(const struct wim_meta *m,
			 int (*fn)(void *arg, const struct wim_meta_entry *e, int sign), void *arg)
{
	int ret = m->broken;

	for (uint32_t i = 0; i < m->nnodes && !ret; i++) {
		const struct node *nd = &m->nodes[i];
		if (!(nd->flags & N_NEW) && (nd->flags & (N_REMOVED | N_FACTS)))
			ret = fn(arg, nd->before ? &m->before[nd->before - 1] : &nd->e, -1);
		if (!ret && !(nd->flags & N_REMOVED) && (nd->flags & (N_NEW | N_FACTS)))
			ret = fn(arg, &nd->e, 1);
	}
	return ret;
}

bool wim_meta_is_lazy(const struct wim_meta *m)
{
	return m->lazy;
}

/* ---- writing ---- */

struct out {
	uint8_t *buf;
	size_t len, cap;
};

static int out_reserve(struct out *o, size_t n)
{
	if (o->cap - o->len >= n)
		return 0;
	size_t cap = o->cap ? o->cap : 4096;
	while (cap - o->len < n) {
		if (cap > SIZE_MAX / 2)
			return -ENOMEM;
		cap *= 2;
	}
	uint8_t *b = realloc(o->buf, cap);
	if (!b)
		return -ENOMEM;
	o->buf = b;
	o->cap = cap;
	return 0;
}

/* The security table as it is now. */
static uint64_t sd_table_len(const struct wim_meta *m)
{
	uint64_t n = 8 + 8 * (uint64_t)m->nsd;

	for (uint32_t i = 0; i < m->nsd; i++)
		n += m->sd_len[i];
	return align8(n);
}

static void sd_table_write(const struct wim_meta *m, uint8_t *p)
{
	uint64_t total = sd_table_len(m);
	uint8_t *q = p + 8 + 8 * (uint64_t)m->nsd;

	memset(p, 0, total);
	wtg_put_le32(p, (uint32_t)total);
	wtg_put_le32(p + 4, m->nsd);
	for (uint32_t i = 0; i < m->nsd; i++) {
		wtg_put_le64(p + 8 + 8 * (uint64_t)i, m->sd_len[i]);
		memcpy(q, m->sd[i], m->sd_len[i]);
		q += m->sd_len[i];
	}
}

struct wplan {
	uint64_t *pos;	  /* where each node's dentry goes */
	uint64_t *subdir; /* each node's new subdir offset */
	uint32_t *elen;	  /* each node's encoded length */
	uint8_t *moved;	  /* each node's dentry written anew (relocated/changed) */
};

void wim_meta_give_copy(struct wim_meta *m, void *copy, size_t cap)
{
	if (!copy || cap < m->len) {
		free(copy);
		return;
	}
	free(m->spare);
	m->spare = copy;
	m->spare_cap = cap;
}

/* The length of the leading entries of directory @d's new list that stay
 * where they were in its old one, with their lengths (0: none). */
static uint64_t list_kept(const struct wim_meta *m, const struct wplan *w, uint32_t d)
{
	const struct node *dn = &m->nodes[d];
	uint64_t rel = 0;

	if (!dn->list_off || (dn->flags & N_NEW))
		return 0;
	for (uint32_t c = dn->first_child; c != NONE; c = m->nodes[c].next_sibling) {
		const struct node *cn = &m->nodes[c];
		if ((cn->flags & N_NEW) || cn->off != dn->list_off + rel || w->elen[c] != cn->len)
			break;
		rel += cn->len;
	}
	return rel;
}

/* Runs of new chunks that may equal old ones: chunk new + k, old + k. */
struct runs {
	struct run {
		uint64_t new, old;
	} * v;
	size_t n, cap;
};

/* Where directory @d's new list of @size bytes goes at the end @o->len:
 * there, or (@cs set) where the old list's kept entries fall at their old
 * offsets within a chunk, when they fill at least one chunk: the old bytes
 * before the list in its first chunk are copied in front of it, so each
 * chunk of kept entries equals an old chunk (a run in @runs). */
static int list_place(const struct wim_meta *m, const struct wplan *w, uint32_t d, uint64_t size,
		      uint32_t cs, struct out *o, struct runs *runs)
{
	const struct node *dn = &m->nodes[d];
	uint64_t kept = cs ? list_kept(m, w, d) : 0;
	int err;

	if (cs && (dn->list_off + kept) / cs > (dn->list_off + cs - 1) / cs) {
		uint64_t first = dn->list_off / cs * cs;
		uint64_t start = (o->len + cs - 1) / cs * cs;
		uint64_t at = start + (dn->list_off - first);
		if ((err = wtg_grow((void **)&runs->v, &runs->cap, runs->n, sizeof(*runs->v))))
			return err;
		runs->v[runs->n++] = (struct run){start / cs, first / cs};
		if ((err = out_reserve(o, at - o->len)) < 0)
			return err;
		memset(o->buf + o->len, 0, start - o->len);
		memcpy(o->buf + start, m->orig + first, at - start);
		o->len = at;
	}
	if ((err = out_reserve(o, size)) < 0)
		return err;
	memset(o->buf + o->len, 0, size);
	o->len += size;
	return 0;
}

/* For each chunk of @len new bytes, the old chunk it may equal: its own
 * index, or the one a run gives (runs in increasing order of new). */
static uint32_t *runs_map(const struct runs *runs, uint64_t len, uint32_t cs, uint64_t old_len,
			  size_t *n_ret)
{
	size_t n = (size_t)((len + cs - 1) / cs), r = 0;
	uint64_t old_n = (old_len + cs - 1) / cs;
	uint32_t *from = malloc((n ? n : 1) * sizeof(*from));

	if (!from)
		return NULL;
	for (size_t k = 0; k < n; k++) {
		while (r + 1 < runs->n && runs->v[r + 1].new <= k)
			r++;
		uint64_t j = k;
		if (r < runs->n && runs->v[r].new <= k) {
			j = runs->v[r].old + (k - runs->v[r].new);
			if (j >= old_n)
				j = k;
		}
		from[k] = (uint32_t)j;
	}
	*n_ret = n;
	return from;
}

int wim_meta_write(struct wim_meta *m, void **bytes, size_t *len)
{
	return wim_meta_write_chunked(m, 0, bytes, len, NULL, NULL);
}

int wim_meta_write_chunked(struct wim_meta *m, uint32_t cs, void **bytes, size_t *len,
			   uint32_t **from_ret, size_t *nfrom_ret)
{
	struct wplan w = {0};
	struct out o = {0};
	struct runs runs = {0};
	struct enc *x = enc_new();
	int err = -ENOMEM;

	*bytes = NULL;
	*len = 0;
	if (from_ret) {
		*from_ret = NULL;
		*nfrom_ret = 0;
	}
	if (from_ret && !cs) {
		free(x);
		return -EINVAL;
	}
	if (!x || m->broken) {
		free(x);
		return m->broken ? m->broken : -ENOMEM;
	}
	/* the start: the security table and the root, which may grow over the
	 * first lists (they move out of its way: a lazy parse reads those) */
	uint64_t root_len = m->nodes[0].len;
	if (m->nodes[0].flags & N_FACTS) {
		if ((err = enc_prepare(&m->nodes[0].e, true, x)) < 0) {
			free(x);
			return err;
		}
		root_len = x->total;
	}
	uint64_t root_off = m->sd_added ? sd_table_len(m) : m->root_off;
	uint64_t old_end = m->root_off + m->nodes[0].len + 8, new_end = root_off + root_len + 8;
	if (m->lazy && m->changed && new_end > old_end &&
	    (err = load_start(m, old_end, new_end)) < 0) {
		free(x);
		return err;
	}
	uint32_t n = m->nnodes;
	/* (a copy made beforehand is used once) */
	uint8_t *spare = m->spare;
	size_t spare_cap = m->spare_cap;
	m->spare = NULL;
	if (!m->changed) {
		free(x);
		*bytes = spare ? spare : malloc(m->len ? m->len : 1);
		if (!*bytes)
			return -ENOMEM;
		if (!spare)
			memcpy(*bytes, m->orig, m->len);
		*len = m->len;
		if (from_ret && !(*from_ret = runs_map(&runs, m->len, cs, m->len, nfrom_ret))) {
			free(*bytes);
			*bytes = NULL;
			return -ENOMEM;
		}
		return 0;
	}
	if (spare) {
		o.buf = spare;
		o.cap = spare_cap;
	}
	w.pos = calloc(n, sizeof(*w.pos));
	w.subdir = calloc(n, sizeof(*w.subdir));
	w.elen = calloc(n, sizeof(*w.elen));
	w.moved = calloc(n, 1);
	if (!x || !w.pos || !w.subdir || !w.elen || !w.moved)
		goto out;

	/* the encoded length of every changed dentry */
	for (uint32_t i = 0; i < n; i++) {
		struct node *nd = &m->nodes[i];
		w.pos[i] = nd->off;
		w.subdir[i] = nd->list_off;
		w.elen[i] = nd->len;
		if ((nd->flags & N_REMOVED) || !(nd->flags & N_FACTS))
			continue;
		err = enc_prepare(&nd->e, nd->parent == NONE, x);
		if (err)
			goto out;
		w.elen[i] = (uint32_t)x->total;
		if (nd->parent != NONE && !(nd->flags & N_NEW) && w.elen[i] != nd->len)
			m->nodes[nd->parent].flags |= N_LIST;
	}

	if (new_end > old_end) {
		/* lists under the grown start move out of its way */
		for (uint32_t i = 1; i < n; i++) {
			struct node *nd = &m->nodes[i];
			if (!(nd->flags & N_REMOVED) && nd->list_off && nd->list_off < new_end &&
			    nd->list_off + nd->list_len > old_end)
				nd->flags |= N_LIST;
		}
		if (m->nodes[0].list_off && m->nodes[0].list_off < new_end)
			m->nodes[0].flags |= N_LIST;
	}

	/* the new lists go after the old bytes and after the grown start */
	uint64_t tail = align8(m->len) > new_end ? align8(m->len) : new_end;
	if ((err = out_reserve(&o, tail)) < 0)
		goto out;
	o.len = tail;
	if (!spare)
		memcpy(o.buf, m->orig, m->len);
	memset(o.buf + m->len, 0, o.len - m->len);

	/* new lists at the end, in node order */
	w.pos[0] = root_off;
	for (uint32_t d = 0; d < n; d++) {
		struct node *dn = &m->nodes[d];
		if ((dn->flags & N_REMOVED) || !attr_is_dir(dn->e.attributes)) {
			w.subdir[d] = 0;
			continue;
		}
		if (!(dn->flags & N_LIST))
			continue;
		uint64_t size = 8;
		for (uint32_t c = dn->first_child; c != NONE; c = m->nodes[c].next_sibling)
			size += w.elen[c];
		if ((err = list_place(m, &w, d, size, cs, &o, &runs)) < 0)
			goto out;
		uint64_t at = o.len - size;
		w.subdir[d] = at;
		for (uint32_t c = dn->first_child; c != NONE; c = m->nodes[c].next_sibling) {
			w.pos[c] = at;
			w.moved[c] = 1;
			at += w.elen[c];
		}
	}

	/* every dentry that is new, changed, moved or points elsewhere now */
	if (m->sd_added)
		sd_table_write(m, o.buf);
	for (uint32_t i = 0; i < n; i++) {
		struct node *nd = &m->nodes[i];
		if (nd->flags & N_REMOVED)
			continue;
		bool root = i == 0;
		bool redo = (nd->flags & N_FACTS) || w.moved[i] || (root && w.pos[0] != nd->off);
		if (!redo && w.subdir[i] == nd->list_off)
			continue;
		uint8_t *p = o.buf + w.pos[i];
		if (nd->flags & N_FACTS) {
			err = enc_prepare(&nd->e, root, x);
			if (err)
				goto out;
			enc_write(&nd->e, x, w.subdir[i], p);
		} else {
			if (redo)
				memmove(p, m->orig + nd->off, nd->len);
			wtg_put_le64(p + 0x10, w.subdir[i]);
		}
		if (root)
			memset(p + w.elen[0], 0, 8);
	}
	if (from_ret && !(*from_ret = runs_map(&runs, o.len, cs, m->len, nfrom_ret))) {
		err = -ENOMEM;
		goto out;
	}
	*bytes = o.buf;
	*len = o.len;
	o.buf = NULL;
	err = 0;
out:
	free(runs.v);
	free(o.buf);
	free(x);
	free(w.pos);
	free(w.subdir);
	free(w.elen);
	free(w.moved);
	return err;
}
