/*
 * The merged view: the base tree with a delta's layers applied in memory,
 * changed in place and written through to the delta.
 *
 * What goes to the delta when: names (and whiteouts) and truncations at
 * once, into the open batch; inode records and grown stream sizes at commit,
 * from the list of dirty inodes; file data as 64 KiB chunk buffers kept in a
 * hash table until a write fills one, the file is closed, there are too
 * many, or a commit comes.  A commit always runs under the exclusive lock,
 * so a batch never holds half an operation.
 *
 * A commit that an fsync or the commit thread asks for puts the bytes a
 * buffer changed into the delta's journal when they are few (a 4 KiB write
 * into a 64 KiB slot), and keeps the buffer: storing the chunk would hash,
 * compress and write all 64 KiB, and free the chunk it replaces, for every
 * fsync.  The buffer goes into its chunk when its file is closed, when it
 * has changed too much, or at a snapshot, a rollback or the unmount; rows a
 * crash leaves are folded in when the delta is opened again.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wtgfs/base_index.h"
#include "wtgfs/ea.h"
#include "wtgfs/hash.h"
#include "wtgfs/log.h"
#include "wtgfs/mem.h"
#include "wtgfs/names.h"
#include "wtgfs/ntfs.h"
#include "wtgfs/reparse.h"
#include "wtgfs/sd.h"
#include "wtgfs/source.h"
#include "wtgfs/store.h"
#include "wtgfs/view.h"
#include "wtgfs/workpool.h"

#define CHUNK WTG_STORE_CHUNK_SIZE
/* Chunk buffers beyond this many are stored without waiting (64 MiB). */
#define MAX_DIRTY_CHUNKS 1024
/* The longest a change waits in memory before a commit. */
#define COMMIT_MS 1000
/* The most bytes of a buffer one journal row takes, and the most rows one
 * slot gathers before its buffer goes into a chunk instead: 16 rows of
 * 4 KiB are a chunk's bytes (with 8, a random 4 KiB writer stored a whole
 * chunk, and read it back, at every 9th fsync of a slot). */
#define JOURNAL_MAX_BYTES (16 << 10)
#define JOURNAL_MAX_ROWS 16

/* A chunk of a stream that writes changed and the delta does not hold yet. */
struct chunk_buf {
	uint64_t ino;
	char *stream; /* "" for the unnamed one */
	uint64_t index;
	uint8_t *data;	   /* CHUNK bytes */
	uint8_t *orig;	   /* the base's bytes it started from, or NULL */
	uint32_t orig_len; /* valid bytes of @orig */
	/* bytes changed since the buffer was last stored or journaled
	 * (dirty_hi 0: none), and the journal rows the delta holds for it */
	uint32_t dirty_lo, dirty_hi;
	uint32_t journaled;
	/* the view's list of buffers with changed bytes (dirty_hi set): what
	 * an fsync's commit looks at, not every buffer */
	struct chunk_buf *dirty_prev, *dirty_next;
	/* stored in the open batch in place of journal rows: kept for reads
	 * until that batch commits, so a lost batch loses none of them */
	bool held;
	struct chunk_enc *enc; /* its bytes being hashed and compressed, or NULL */
	struct chunk_buf *next;
};

/* A chunk buffer (a whole chunk, or a file's new last one) hashed and
 * compressed on a worker while the writer goes on (the next FUSE write, the
 * SQL of the chunks before): the buffer's bytes do not change while it
 * exists (a change drops it first), and chunk_store() stores what it made. */
struct chunk_enc {
	struct wtg_work work; /* first */
	struct wtg_view *v;
	struct chunk_buf *cb;
	size_t len; /* bytes of the buffer encoded */
	bool zero;  /* all of them zero: a hole, nothing encoded */
	bool done;  /* the work ran (atomic) */
	int ret;
	struct wtg_store_encoded out;
	struct chunk_enc *prev, *next; /* the view's, oldest first */
};

/* Buffers of CHUNK (or WTG_STORE_ENCODED_MAX) bytes kept for the next
 * chunk: fresh ones fault their pages in at every chunk (1.3% of the FUSE
 * threads' time over a 1 GiB copy). */
#define SPARE_BUFS 32
struct spare_bufs {
	void *p[SPARE_BUFS];
	int n;
};

/* What a commit does with chunk buffers. */
enum commit_mode {
	COMMIT_FOLD,	/* each into its chunk */
	COMMIT_JOURNAL, /* small changes into the journal, the rest into chunks */
};

struct wtg_view {
	struct wtg_tree tree;
	/* the base as loaded, before any layer: what a rollback goes back to
	 * for what the layers it brings say nothing about (writable views) */
	struct wtg_tree base;
	bool has_base;
	bool read_only; /* changes answer EROFS: an image, or a snapshot */
	uint64_t generation; /* rollbacks so far: handles from before go stale */
	struct wtg_store *store; /* NULL: a bare image */
	char *delta_path;
	char *base_path;
	pid_t pid; /* that opened the store */
	pthread_rwlock_t lock;
	uint64_t next_ino;
	uint64_t base_ninodes; /* inodes the base has: numbers above are the delta's */
	uint64_t *free_inos;   /* numbers of inodes freed without a trace, to use again */
	size_t nfree, free_cap;
	/* a lost batch (a failed commit, or one SQLite rolled back): the delta
	 * holds the last good commit, and nothing more goes in */
	int error;

	struct chunk_buf **chunks;
	size_t nchunks, chunk_buckets;
	struct chunk_buf *dirty_chunks; /* buffers with changed bytes */

	struct wtg_inode **dirty;
	size_t ndirty, dirty_cap;
	/* security descriptors put into the delta, by the tree's id */
	uint8_t (*sd_hash)[WTG_STORE_HASH_LEN];
	uint32_t nsd_put;
	struct timespec pending_since; /* tv_sec 0: nothing pending */
	bool journal_used; /* rows went into the journal since the last fold of all */
	size_t nheld;	   /* buffers held until the batch commits */

	/* chunks encoded beside the writer (NULL: each where it fills) */
	struct wtg_workpool *pool;
	struct chunk_enc *enc_head, *enc_tail;
	struct spare_bufs spare_data, spare_out; /* the write lock's */

	pthread_t thread;
	bool thread_running, stopping;
	pthread_mutex_t thread_lock;
	pthread_cond_t thread_cond;
};

static int64_t now_ntfs(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ntfs_time_from_unix(ts.tv_sec, (uint32_t)ts.tv_nsec);
}

static long elapsed_ms(const struct timespec *since)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)((ts.tv_sec - since->tv_sec) * 1000 + (ts.tv_nsec - since->tv_nsec) / 1000000);
}

static void note_pending(struct wtg_view *v)
{
	if (v->pending_since.tv_sec == 0)
		clock_gettime(CLOCK_MONOTONIC, &v->pending_since);
}

static const char *stream_key(const struct wtg_stream *s)
{
	return s->name ? s->name : "";
}

/* ---- stream sums: the SHA-1 of a stream written in order ---- */

/* (struct wtg_stream_sum is the tree's, which frees it with the stream: 48
 * bytes a stream written whole, until the view closes) */

static void sum_drop(struct wtg_stream *s)
{
	wtg_stream_sum_free(s->sum);
	s->sum = NULL;
	s->summed = 0;
}

/* Before a write at @off: whether the sum follows it (a write where a
 * running sum ends, or at 0, where a sum starts again). */
static bool sum_follows(struct wtg_stream *s, uint64_t off)
{
	if (s->sum && s->sum->ctx && off == s->summed)
		return true;
	sum_drop(s);
	if (off || !(s->sum = calloc(1, sizeof(*s->sum))))
		return false;
	if (!(s->sum->ctx = wtg_sha1_new()))
		sum_drop(s);
	return s->sum != NULL;
}

/* The last handle of @in closed: a sum of every byte becomes a digest, any
 * other goes. */
static void sums_settle(struct wtg_inode *in)
{
	for (uint32_t k = 0; k < in->nstreams; k++) {
		struct wtg_stream *s = &in->streams[k];
		if (!s->sum || !s->sum->ctx)
			continue;
		if (s->summed != s->size) {
			sum_drop(s);
			continue;
		}
		wtg_sha1_final(s->sum->ctx, s->sum->sha1);
		s->sum->ctx = NULL;
	}
}

/*
 * At close, everything committed and folded: each stream whose every byte
 * was written in order since a write at 0 has its SHA-1 kept under its
 * fingerprint (wtg_store_put_sum), so that an export need not read it
 * again.  A sum is a cache: one that cannot be kept is left out.
 */
static void sums_keep(struct wtg_view *v)
{
	uint64_t rows;
	size_t kept = 0;

	if (wtg_store_journal_count(v->store, &rows) || rows)
		return;
	for (uint64_t i = 0; i < v->tree.ninodes; i++) {
		struct wtg_inode *in = v->tree.inodes[i];
		for (uint32_t k = 0; in && !in->gone && k < in->nstreams; k++) {
			struct wtg_stream *s = &in->streams[k];
			struct wtg_store_sum sum = {.ino = in->ino, .size = s->size,
						    .stream = (char *)stream_key(s)};
			if (!s->sum || !s->size || s->summed != s->size)
				continue;
			if (s->sum->ctx) {
				wtg_sha1_final(s->sum->ctx, sum.sha1);
				s->sum->ctx = NULL;
			} else {
				memcpy(sum.sha1, s->sum->sha1, sizeof(sum.sha1));
			}
			if (wtg_store_stream_fingerprint(v->store, NULL, sum.ino, sum.stream, sum.size,
							 sum.fp) ||
			    wtg_store_put_sum(v->store, &sum))
				return;
			kept++;
		}
	}
	if (kept && wtg_store_commit(v->store) == 0)
		wtg_debug("kept the SHA-1 of %zu stream(s) written whole", kept);
}

/* Every sum dropped: the bytes change under them (a rollback). */
static void sums_drop_all(struct wtg_view *v)
{
	for (uint64_t i = 0; i < v->tree.ninodes; i++) {
		struct wtg_inode *in = v->tree.inodes[i];
		for (uint32_t k = 0; in && k < in->nstreams; k++)
			sum_drop(&in->streams[k]);
	}
}

/* ---- opening ---- */

int wtg_view_describe_base(const char *spec, const struct wtg_source *src,
			   struct wtg_store_base *base)
{
	char *path, *sel;
	struct stat st;
	int ret = wtg_source_split_spec(spec, &path, &sel);

	if (ret < 0)
		return ret;
	memset(base, 0, sizeof(*base));
	if (!realpath(path, base->path))
		snprintf(base->path, sizeof(base->path), "%s", path);
	if (stat(base->path, &st) == 0)
		base->size = (uint64_t)st.st_size;
	/* "wim:GUID:INDEX:SHA1" or "ntfs:SERIAL[:FORMAT:ID:PART]" */
	const char *id = strchr(src->identity, ':');
	if (id) {
		size_t n = strcspn(id + 1, ":");
		snprintf(base->guid, sizeof(base->guid), "%.*s", (int)n, id + 1);
	}
	const char *last = strrchr(src->identity, ':');
	if (!strncmp(src->identity, "wim:", 4)) {
		const char *idx = strchr(src->identity + 4, ':');
		base->index = idx ? (uint32_t)strtoul(idx + 1, NULL, 10) : 0;
	} else if (last && strchr(src->identity + 5, ':')) {
		base->index = (uint32_t)strtoul(last + 1, NULL, 10);
	}
	wtg_sha256(src->identity, strlen(src->identity), base->meta_hash);
	free(path);
	free(sel);
	return 0;
}

static struct wtg_view *view_new(void)
{
	struct wtg_view *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	/* Writers first: glibc's default lets a stream of readers (each
	 * holding the lock across the decoding of up to 1 MiB) keep a change
	 * waiting for as long as they keep coming.  No reader takes the lock
	 * twice, which writer preference would deadlock. */
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&v->lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&v->thread_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&v->thread_cond, &ca);
	pthread_condattr_destroy(&ca);
	v->pid = getpid();
	return v;
}

static void chunk_enc_forget(struct wtg_view *v, struct chunk_buf *cb);

static void *spare_take(struct spare_bufs *sp, size_t size)
{
	return sp->n ? sp->p[--sp->n] : malloc(size);
}

static void spare_give(struct spare_bufs *sp, void *p)
{
	if (p && sp->n < SPARE_BUFS)
		sp->p[sp->n++] = p;
	else
		free(p);
}

static void spare_free(struct spare_bufs *sp)
{
	while (sp->n)
		free(sp->p[--sp->n]);
}

static void view_free(struct wtg_view *v)
{
	for (size_t b = 0; b < v->chunk_buckets; b++) {
		for (struct chunk_buf *c = v->chunks[b], *n; c; c = n) {
			n = c->next;
			chunk_enc_forget(v, c);
			free(c->stream);
			free(c->data);
			free(c->orig);
			free(c);
		}
	}
	wtg_workpool_free(v->pool);
	spare_free(&v->spare_data);
	spare_free(&v->spare_out);
	free(v->chunks);
	free(v->dirty);
	free(v->free_inos);
	free(v->sd_hash);
	if (v->has_base)
		wtg_tree_release(&v->base);
	wtg_tree_release(&v->tree);
	free(v->delta_path);
	free(v->base_path);
	pthread_rwlock_destroy(&v->lock);
	pthread_mutex_destroy(&v->thread_lock);
	pthread_cond_destroy(&v->thread_cond);
	free(v);
}

int wtg_view_open_image(const char *spec, const struct wtg_source_options *opt,
			struct wtg_view **view_ret)
{
	struct wtg_view *v = view_new();

	if (!v)
		return -ENOMEM;
	int ret = wtg_tree_open_image(spec, opt, &v->tree);
	if (ret < 0) {
		free(v);
		return ret;
	}
	v->read_only = true;
	v->base_path = strdup(v->tree.source->path);
	*view_ret = v;
	return 0;
}

/* Applying the layer stack to the freshly loaded base tree. */
/* What a format 1 inode record said of the inode's DOS name ("" none). */
struct legacy_dos {
	uint64_t ino;
	char *dos;
};

struct load {
	struct wtg_view *v;
	uint8_t (*sd_hash)[WTG_STORE_HASH_LEN]; /* per inode record, to fetch after */
	uint64_t *sd_ino;
	size_t nsd;
	uint64_t *mentioned; /* inodes a record names */
	size_t nmentioned;
	struct legacy_dos *legacy; /* to carry over to names */
	size_t nlegacy;
	uint64_t *deleted; /* inodes the stack deleted, in order */
	size_t ndeleted;
	int damaged;
};

static int load_damaged(struct load *l, const char *what, uint64_t ino)
{
	wtg_error("'%s' is damaged: %s (inode %llu); run 'wtgfs verify'", l->v->delta_path, what,
		  (unsigned long long)ino);
	return -EIO;
}

/* Reparse data from the delta or a change, not the base image. */
static void set_reparse(struct wtg_inode *in, uint8_t *data, uint32_t len)
{
	free(in->reparse);
	in->reparse = data;
	in->reparse_len = data ? len : 0;
	in->reparse_blob = NULL;
	in->reparse_made_here = true;
	in->reparse_tag = data && len >= 4 ? (uint32_t)data[0] | (uint32_t)data[1] << 8 |
						 (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24
					   : 0;
	if (data)
		in->attributes |= NTFS_ATTR_REPARSE_POINT;
	else
		in->attributes &= ~NTFS_ATTR_REPARSE_POINT;
}

static int load_inode(void *arg, const struct wtg_store_record *rec)
{
	struct load *l = arg;
	struct wtg_tree *t = &l->v->tree;
	struct wtg_inode *in = wtg_tree_inode(t, rec->ino);

	if (rec->deleted) {
		if (in)
			in->gone = true;
		uint64_t *d = realloc(l->deleted, (l->ndeleted + 1) * sizeof(*d));
		if (!d)
			return -ENOMEM;
		l->deleted = d;
		d[l->ndeleted++] = rec->ino;
		return 0;
	}
	const struct wtg_store_inode *si = rec->inode;
	if (!in) {
		in = wtg_tree_new_inode_at(t, rec->ino, si->attributes & NTFS_ATTR_DIRECTORY);
		if (!in)
			return rec->ino == 0 ? load_damaged(l, "an inode number is 0", rec->ino)
					     : -ENOMEM;
	} else if (!!in->dir != !!(si->attributes & NTFS_ATTR_DIRECTORY)) {
		return load_damaged(l, "a file became a directory", rec->ino);
	}
	in->crtime = si->crtime;
	in->mtime = si->mtime;
	in->atime = si->atime;
	in->ctime = si->ctime;
	uint8_t *rp = NULL, *oid = NULL, *ea = NULL;
	if ((si->reparse && !(rp = malloc(si->reparse_len ? si->reparse_len : 1))) ||
	    (si->object_id && !(oid = malloc(si->object_id_len ? si->object_id_len : 1))) ||
	    (si->ea && !(ea = malloc(si->ea_len ? si->ea_len : 1)))) {
		free(rp);
		free(oid);
		free(ea);
		return -ENOMEM;
	}
	if (si->legacy_dos_name) {
		struct legacy_dos *p = realloc(l->legacy, (l->nlegacy + 1) * sizeof(*p));
		if (!p || !(p[l->nlegacy].dos = strdup(si->legacy_dos_name))) {
			if (p)
				l->legacy = p;
			free(rp);
			free(oid);
			free(ea);
			return -ENOMEM;
		}
		l->legacy = p;
		p[l->nlegacy++].ino = rec->ino;
	}
	if (ea)
		memcpy(ea, si->ea, si->ea_len);
	free(in->ea);
	in->ea = ea;
	in->ea_len = ea ? si->ea_len : 0;
	if (rp)
		memcpy(rp, si->reparse, si->reparse_len);
	set_reparse(in, rp, si->reparse_len);
	in->attributes = si->attributes;
	if (oid)
		memcpy(oid, si->object_id, si->object_id_len);
	free(in->object_id);
	in->object_id = oid;
	in->object_id_len = oid ? si->object_id_len : 0;

	static const uint8_t none[WTG_STORE_HASH_LEN];
	if (memcmp(si->sd_hash, none, sizeof(none))) {
		void *p = realloc(l->sd_hash, (l->nsd + 1) * sizeof(*l->sd_hash));
		if (!p)
			return -ENOMEM;
		l->sd_hash = p;
		p = realloc(l->sd_ino, (l->nsd + 1) * sizeof(*l->sd_ino));
		if (!p)
			return -ENOMEM;
		l->sd_ino = p;
		memcpy(l->sd_hash[l->nsd], si->sd_hash, WTG_STORE_HASH_LEN);
		l->sd_ino[l->nsd++] = rec->ino;
	} else {
		in->sd = WTG_NO_SD;
	}
	uint64_t *m = realloc(l->mentioned, (l->nmentioned + 1) * sizeof(*m));
	if (!m)
		return -ENOMEM;
	l->mentioned = m;
	m[l->nmentioned++] = rec->ino;
	return 0;
}

static int load_name(void *arg, const struct wtg_store_record *rec)
{
	struct load *l = arg;
	struct wtg_tree *t = &l->v->tree;
	struct wtg_inode *dir = wtg_tree_inode(t, rec->ino);
	size_t len = strlen(rec->name);

	if (!dir && rec->deleted)
		return 0; /* a whiteout in a directory made and removed since */
	if (!dir || !dir->dir)
		return load_damaged(l, "a name is in a directory that does not exist", rec->ino);
	/* the record replaces the name spelled exactly so (a lookup finds an
	 * exact match first) */
	struct wtg_dentry *de = wtg_tree_lookup(t, dir, rec->name, len);
	if (de && de->name_len == len && !memcmp(de->name, rec->name, len))
		wtg_tree_unlink(t, dir, de);
	if (rec->deleted)
		return 0;
	struct wtg_inode *child = wtg_tree_inode(t, rec->value);
	if (!child || child->gone)
		return load_damaged(l, "a name points at an inode that does not exist", rec->value);
	int ret = wtg_tree_link(t, dir, rec->name, len, child);
	if (ret == -EINVAL)
		return load_damaged(l, "a name cannot appear in a directory", rec->ino);
	if (!ret && rec->dos_name) {
		de = wtg_tree_lookup(t, dir, rec->name, len);
		ret = wtg_dentry_set_dos_name(de, rec->dos_name);
	}
	return ret;
}

static int store_inode(struct wtg_view *v, struct wtg_inode *in);

/*
 * What a format 1 delta said of an inode's DOS name, carried over to its
 * names: none ("") drops every name's; a DOS name stays on the name that
 * has it (the base's owner), else goes to the first name.  A writable view
 * then records it the new way, per name, and a fresh inode record hides
 * the old one, so this happens once.
 */
static int carry_legacy_dos(struct wtg_view *v, struct load *l)
{
	int ret = 0;

	for (size_t i = 0; !ret && i < l->nlegacy; i++) {
		struct wtg_inode *in = wtg_tree_inode(&v->tree, l->legacy[i].ino);
		const char *dos = l->legacy[i].dos[0] ? l->legacy[i].dos : NULL;
		if (!in || in->gone || !in->first_name || in->ino == WTG_ROOT_INO)
			continue;
		struct wtg_dentry *owner = NULL;
		for (struct wtg_dentry *de = in->first_name; de && dos; de = de->alias_next)
			if (de->dos_name && !strcmp(de->dos_name, dos)) {
				owner = de;
				break;
			}
		if (dos && !owner)
			owner = in->first_name;
		for (struct wtg_dentry *de = in->first_name; !ret && de; de = de->alias_next) {
			const char *want = de == owner ? dos : NULL;
			if (!want == !de->dos_name && (!want || !strcmp(want, de->dos_name)))
				continue;
			ret = wtg_dentry_set_dos_name(de, want);
			if (!ret && v->store)
				ret = wtg_store_set_name_dos(v->store, de->parent->ino, de->name,
							     in->ino, want);
		}
		if (!ret && v->store)
			ret = store_inode(v, in);
	}
	return ret;
}

static int cmp_ino(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int load_stream(void *arg, const struct wtg_store_record *rec)
{
	struct load *l = arg;
	struct wtg_inode *in = wtg_tree_inode(&l->v->tree, rec->ino);
	const char *name = rec->name[0] ? rec->name : NULL;

	if (!in && l->ndeleted &&
	    bsearch(&rec->ino, l->deleted, l->ndeleted, sizeof(*l->deleted), cmp_ino))
		return 0; /* a layer below wrote it, a layer above deleted the inode */
	if (!in)
		return load_damaged(l, "a stream belongs to no inode", rec->ino);
	if (rec->deleted) {
		wtg_inode_remove_stream(in, name);
		return 0;
	}
	struct wtg_stream *s = name ? wtg_inode_named_stream(in, name) : wtg_inode_data(in);
	if (!s && !(s = wtg_inode_add_stream(in, name, 0, NULL)))
		return -ENOMEM;
	s->size = s->stored_size = rec->value;
	s->delta = true;
	return 0;
}

static int store_gone(struct wtg_view *v, struct wtg_inode *in);
static int replay_journal(struct wtg_view *v);

static int apply_layers(struct wtg_view *v)
{
	struct load l = {.v = v};
	v->base_ninodes = v->tree.ninodes;
	int ret = wtg_store_each(v->store, WTG_STORE_INODES, load_inode, &l);

	if (!ret)
		ret = wtg_store_each(v->store, WTG_STORE_NAMES, load_name, &l);
	if (!ret)
		ret = wtg_store_each(v->store, WTG_STORE_STREAMS, load_stream, &l);
	if (!ret)
		ret = carry_legacy_dos(v, &l);
	for (size_t i = 0; !ret && i < l.nsd; i++) {
		uint8_t *sd;
		size_t len;
		ret = wtg_store_get_sd(v->store, l.sd_hash[i], &sd, &len);
		if (ret == -ENOENT)
			ret = load_damaged(&l, "a security descriptor is missing", l.sd_ino[i]);
		if (ret)
			break;
		uint32_t id = wtg_tree_intern_sd(&v->tree, sd, len);
		free(sd);
		if (id == WTG_NO_SD)
			ret = -ENOMEM;
		else
			wtg_tree_inode(&v->tree, l.sd_ino[i])->sd = id;
	}
	/* Inodes a crash left without names (deleted while open) go now. */
	for (size_t i = 0; !ret && i < l.nmentioned; i++) {
		struct wtg_inode *in = wtg_tree_inode(&v->tree, l.mentioned[i]);
		if (in->ino != WTG_ROOT_INO && in->nlink == 0 && !in->gone) {
			in->gone = true;
			if (!v->read_only)
				ret = store_gone(v, in);
		}
	}
	if (!ret)
		ret = replay_journal(v);
	if (!ret && !v->read_only)
		ret = wtg_store_commit(v->store);
	uint64_t max;
	if (!ret)
		ret = wtg_store_max_ino(v->store, &max);
	if (!ret)
		v->next_ino = (max > v->tree.ninodes ? max : v->tree.ninodes) + 1;
	free(l.sd_hash);
	free(l.sd_ino);
	free(l.mentioned);
	for (size_t i = 0; i < l.nlegacy; i++)
		free(l.legacy[i].dos);
	free(l.legacy);
	free(l.deleted);
	return ret;
}

int wtg_view_open_base(struct wtg_store *store, const char *base_path,
		       const struct wtg_source_options *opt, struct wtg_source **src_ret)
{
	struct wtg_store_base want, have;
	struct wtg_source *src;
	char spec[PATH_MAX + 16];

	wtg_store_get_base(store, &want);
	const char *path = base_path ? base_path : want.path;
	if (want.index)
		snprintf(spec, sizeof(spec), "%s:%u", path, want.index);
	else
		snprintf(spec, sizeof(spec), "%s", path);
	if (!base_path && access(path, F_OK) != 0) {
		wtg_error("cannot find the base of '%s': '%s' is gone (give its new place with "
			  "--base PATH)",
			  wtg_store_path(store), path);
		return -ENOENT;
	}
	int ret = wtg_source_open(spec, opt, &src);
	if (ret < 0)
		return ret;
	ret = wtg_view_describe_base(spec, src, &have);
	/* A WIM image is its GUID, index and metadata: images appended to the
	 * file (wtgfs export --append) change its size, not the image. */
	if (!ret && !strncmp(src->identity, "wim:", 4))
		have.size = want.size;
	if (!ret)
		ret = wtg_store_check_base(store, &have);
	if (!ret && base_path && strcmp(have.path, want.path) && wtg_store_writable(store))
		ret = wtg_store_set_base_path(store, have.path);
	if (ret) {
		wtg_source_free(src);
		return ret;
	}
	*src_ret = src;
	return 0;
}

int wtg_view_load_base(struct wtg_store *store, const char *base_path,
		       const struct wtg_source_options *opt, struct wtg_tree *tree_ret)
{
	struct wtg_source *src;
	int ret = wtg_view_open_base(store, base_path, opt, &src);

	if (ret)
		return ret;
	wtg_tree_init(tree_ret, src);
	ret = wtg_source_load(src, tree_ret);
	if (ret)
		wtg_tree_release(tree_ret);
	/* a delta older than the index gets one from its first writer */
	if (!ret && wtg_store_writable(store) && !wtg_store_base_indexed(store) &&
	    (ret = wtg_base_index_build(store, tree_ret)))
		wtg_tree_release(tree_ret);
	return ret;
}

static int open_base(struct wtg_view *v, const char *base_path,
		     const struct wtg_source_options *opt)
{
	int ret = wtg_view_load_base(v->store, base_path, opt, &v->tree);

	if (!ret && !(v->base_path = strdup(v->tree.source->path)))
		ret = -ENOMEM;
	return ret;
}

/* Keeps the base as loaded, for rollbacks (writable views only). */
static int keep_base(struct wtg_view *v)
{
	if (v->read_only)
		return 0;
	int ret = wtg_tree_clone(&v->tree, &v->base);
	v->has_base = ret == 0;
	return ret;
}

static int open_delta(const char *path, const char *base_path, const char *at, bool read_only,
		      const struct wtg_source_options *opt, struct wtg_view **view_ret)
{
	struct wtg_view *v = view_new();
	struct wtg_store_options so = {.at = at, .read_only = read_only, .consistent = read_only};

	if (!v || !(v->delta_path = strdup(path))) {
		free(v);
		return -ENOMEM;
	}
	v->read_only = read_only;
	int ret = wtg_store_open(path, &so, &v->store);
	if (ret) {
		view_free(v);
		return ret;
	}
	ret = open_base(v, base_path, opt);
	if (!ret)
		ret = keep_base(v);
	if (!ret)
		ret = apply_layers(v);
	if (ret) {
		wtg_store_close(v->store);
		view_free(v);
		return ret;
	}
	*view_ret = v;
	return 0;
}

int wtg_view_open_delta(const char *path, const char *base_path,
			const struct wtg_source_options *opt, struct wtg_view **view_ret)
{
	return open_delta(path, base_path, NULL, false, opt, view_ret);
}

int wtg_view_open_at(const char *path, const char *base_path, const char *snapshot,
		     const struct wtg_source_options *opt, struct wtg_view **view_ret)
{
	return open_delta(path, base_path, snapshot, true, opt, view_ret);
}

int wtg_view_open_tree(struct wtg_store *store, struct wtg_tree *tree, struct wtg_view **view_ret)
{
	struct wtg_view *v = view_new();

	if (!v || !(v->delta_path = strdup(wtg_store_path(store)))) {
		if (v)
			view_free(v);
		wtg_tree_release(tree);
		wtg_store_close(store);
		return -ENOMEM;
	}
	v->store = store;
	v->tree = *tree;
	memset(tree, 0, sizeof(*tree));
	int ret = keep_base(v);
	if (!ret)
		ret = apply_layers(v);
	if (ret) {
		wtg_store_close(v->store);
		view_free(v);
		return ret;
	}
	*view_ret = v;
	return 0;
}

struct wtg_tree *wtg_view_tree(struct wtg_view *v)
{
	return &v->tree;
}

bool wtg_view_writable(const struct wtg_view *v)
{
	return !v->read_only;
}

uint64_t wtg_view_generation(const struct wtg_view *v)
{
	return __atomic_load_n(&v->generation, __ATOMIC_ACQUIRE);
}

struct wtg_dentry *wtg_view_lookup(struct wtg_view *v, struct wtg_inode *dir, const char *name)
{
	return dir->dir ? wtg_tree_lookup(&v->tree, dir, name, strlen(name)) : NULL;
}

struct wtg_dentry *wtg_view_lookup_path(struct wtg_view *v, const char *rel)
{
	struct wtg_inode *dir = wtg_view_inode(v, WTG_ROOT_INO);
	struct wtg_dentry *de = NULL;
	char *copy = strdup(rel), *save = NULL;

	if (!copy)
		return NULL;
	for (char *c = strtok_r(copy, "/", &save); c && dir; c = strtok_r(NULL, "/", &save)) {
		de = wtg_view_lookup(v, dir, c);
		dir = de && !de->inode->gone ? de->inode : NULL;
		if (!dir)
			de = NULL;
	}
	free(copy);
	return de;
}

long wtg_view_readlink(struct wtg_view *v, const struct wtg_inode *in,
		       const struct wtg_inode *dir, char *buf, size_t size)
{
	return wtg_tree_readlink(&v->tree, in, dir, buf, size);
}

const struct wtg_sd *wtg_view_sd(struct wtg_view *v, const struct wtg_inode *in)
{
	return wtg_tree_sd(&v->tree, in->sd);
}

const uint8_t *wtg_view_reparse(struct wtg_view *v, const struct wtg_inode *in, uint32_t *len_ret)
{
	return wtg_inode_reparse(&v->tree, in, len_ret);
}

void wtg_view_counts(struct wtg_view *v, uint64_t *data_bytes_ret, uint64_t *inodes_ret)
{
	*data_bytes_ret = v->tree.data_bytes;
	*inodes_ret = v->tree.ninodes;
}

const char *wtg_view_base_path(const struct wtg_view *v)
{
	return v->base_path ? v->base_path : "";
}

void wtg_view_lock_shared(struct wtg_view *v)
{
	pthread_rwlock_rdlock(&v->lock);
}

void wtg_view_unlock(struct wtg_view *v)
{
	pthread_rwlock_unlock(&v->lock);
}

struct wtg_inode *wtg_view_inode(struct wtg_view *v, uint64_t ino)
{
	struct wtg_inode *in = wtg_tree_inode(&v->tree, ino);
	return in && (!in->gone || in->opens) ? in : NULL;
}

/* ---- chunk buffers ---- */

static size_t chunk_bucket(const struct wtg_view *v, uint64_t ino, const char *stream,
			   uint64_t index)
{
	uint64_t h = ino * 0x9E3779B97F4A7C15ull ^ index * 0xC2B2AE3D27D4EB4Full;
	for (const char *p = stream; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001B3ull;
	return (size_t)(h ^ (h >> 29)) & (v->chunk_buckets - 1);
}

static struct chunk_buf *chunk_find(const struct wtg_view *v, uint64_t ino, const char *stream,
				    uint64_t index)
{
	if (!v->chunk_buckets)
		return NULL;
	for (struct chunk_buf *c = v->chunks[chunk_bucket(v, ino, stream, index)]; c; c = c->next)
		if (c->ino == ino && c->index == index && !strcmp(c->stream, stream))
			return c;
	return NULL;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* ---- chunks encoded beside the writer ---- */

static void chunk_enc_run(struct wtg_work *work)
{
	struct chunk_enc *enc = (struct chunk_enc *)work;

	enc->zero = all_zero(enc->cb->data, enc->len);
	if (!enc->zero)
		enc->ret = wtg_store_encode_chunk(enc->v->store, enc->cb->data, enc->len, &enc->out);
	__atomic_store_n(&enc->done, true, __ATOMIC_RELEASE);
}

/* The buffer's encoding, done (or, unless @wanted, never to run), out of
 * the buffer and the view's list (chunk_enc_free() it); NULL when it has
 * none. */
static struct chunk_enc *chunk_enc_take(struct wtg_view *v, struct chunk_buf *cb, bool wanted)
{
	struct chunk_enc *enc = cb->enc;

	if (!enc)
		return NULL;
	if (wanted)
		wtg_workpool_wait(v->pool, &enc->work);
	else
		wtg_workpool_cancel(v->pool, &enc->work);
	*(enc->prev ? &enc->prev->next : &v->enc_head) = enc->next;
	*(enc->next ? &enc->next->prev : &v->enc_tail) = enc->prev;
	cb->enc = NULL;
	return enc;
}

static void chunk_enc_free(struct wtg_view *v, struct chunk_enc *enc)
{
	if (enc) {
		spare_give(&v->spare_out, enc->out.data);
		free(enc);
	}
}

/* Drops the buffer's encoding, if any: takes it back from the queue, or
 * waits for the worker that runs it. */
static void chunk_enc_forget(struct wtg_view *v, struct chunk_buf *cb)
{
	chunk_enc_free(v, chunk_enc_take(v, cb, false));
}

/* Hands the first @len bytes of a buffer to a worker to encode; false when
 * it cannot take them (no pool, its queue full, no memory). */
static bool chunk_enc_submit(struct wtg_view *v, struct chunk_buf *cb, size_t len)
{
	struct chunk_enc *enc;

	if (!v->pool || cb->enc || !(enc = calloc(1, sizeof(*enc))))
		return false;
	enc->work.fn = chunk_enc_run;
	enc->v = v;
	enc->cb = cb;
	enc->len = len;
	enc->out.data = spare_take(&v->spare_out, WTG_STORE_ENCODED_MAX);
	if (!enc->out.data || !wtg_workpool_submit(v->pool, &enc->work)) {
		spare_give(&v->spare_out, enc->out.data);
		free(enc);
		return false;
	}
	enc->prev = v->enc_tail;
	*(v->enc_tail ? &v->enc_tail->next : &v->enc_head) = enc;
	v->enc_tail = enc;
	cb->enc = enc;
	return true;
}

/* Notes that bytes [@lo, @hi) of the buffer changed. */
static void chunk_dirty(struct wtg_view *v, struct chunk_buf *cb, uint32_t lo, uint32_t hi)
{
	if (!cb->dirty_hi) {
		cb->dirty_lo = lo;
		cb->dirty_hi = hi;
		cb->dirty_prev = NULL;
		cb->dirty_next = v->dirty_chunks;
		if (v->dirty_chunks)
			v->dirty_chunks->dirty_prev = cb;
		v->dirty_chunks = cb;
		return;
	}
	if (lo < cb->dirty_lo)
		cb->dirty_lo = lo;
	if (hi > cb->dirty_hi)
		cb->dirty_hi = hi;
}

/* The buffer's changed bytes are in the delta now (or never will be). */
static void chunk_clean(struct wtg_view *v, struct chunk_buf *cb)
{
	if (!cb->dirty_hi)
		return;
	*(cb->dirty_prev ? &cb->dirty_prev->dirty_next : &v->dirty_chunks) = cb->dirty_next;
	if (cb->dirty_next)
		cb->dirty_next->dirty_prev = cb->dirty_prev;
	cb->dirty_lo = cb->dirty_hi = 0;
}

static void chunk_unlink(struct wtg_view *v, struct chunk_buf *cb)
{
	chunk_clean(v, cb);
	struct chunk_buf **p = &v->chunks[chunk_bucket(v, cb->ino, cb->stream, cb->index)];
	while (*p != cb)
		p = &(*p)->next;
	*p = cb->next;
	v->nchunks--;
	if (cb->held)
		v->nheld--;
	chunk_enc_forget(v, cb);
	free(cb->stream);
	spare_give(&v->spare_data, cb->data);
	free(cb->orig);
	free(cb);
}

/* The base's bytes of slot @index of @s into @buf (CHUNK bytes, zero
 * filled); returns how many the base has there. */
static long read_base_slot(struct wtg_view *v, const struct wtg_stream *s, uint64_t index,
			   uint8_t *buf)
{
	uint64_t off = index * CHUNK;
	long n = 0;

	if (s->blob && off < s->base_size) {
		n = wtg_tree_read(&v->tree, s, buf, CHUNK, off);
		if (n < 0)
			return n;
	}
	memset(buf + n, 0, CHUNK - (size_t)n);
	return n;
}

/* What slot @index of a stream holds now, as CHUNK bytes (zero filled).
 * *from_base set when the bytes are the base's (then *base_len of them). */
static int read_slot(struct wtg_view *v, uint64_t ino, const struct wtg_stream *s, uint64_t index,
		     uint8_t *buf, bool *from_base, long *base_len)
{
	const char *key = stream_key(s);
	struct chunk_buf *cb = chunk_find(v, ino, key, index);
	enum wtg_store_state state = WTG_STORE_BASE;
	uint8_t hash[WTG_STORE_HASH_LEN];
	size_t got;

	*from_base = false;
	if (cb) {
		memcpy(buf, cb->data, CHUNK);
		return 0;
	}
	if (s->delta && v->store) {
		int ret = wtg_store_get_extent(v->store, ino, key, index, &state, hash);
		if (ret)
			return ret;
	}
	switch (state) {
	case WTG_STORE_PRESENT: {
		int ret = wtg_store_get_chunk(v->store, hash, buf, &got);
		if (ret)
			return ret == -ENOENT ? -EIO : ret;
		memset(buf + got, 0, CHUNK - got);
		return 0;
	}
	case WTG_STORE_DELETED:
		memset(buf, 0, CHUNK);
		return 0;
	case WTG_STORE_BASE:
		break;
	}
	long n = read_base_slot(v, s, index, buf);
	if (n < 0)
		return (int)n;
	*from_base = true;
	*base_len = n;
	return 0;
}

uint64_t wtg_view_allocated(struct wtg_view *v, const struct wtg_inode *in, struct wtg_stream *s)
{
	uint64_t slots;

	if (!s)
		return 0;
	if (!s->delta || !v->store)
		return s->base_size < s->size ? s->base_size : s->size;
	uint64_t cached = __atomic_load_n(&s->usage, __ATOMIC_RELAXED);
	if (cached) {
		slots = cached - 1;
	} else {
		uint64_t base_slots = s->blob ? s->base_size / CHUNK + (s->base_size % CHUNK != 0) : 0;
		if (wtg_store_stream_usage(v->store, in->ino, stream_key(s), base_slots, &slots))
			return s->size; /* cannot tell: all of it */
		__atomic_store_n(&s->usage, slots + 1, __ATOMIC_RELAXED);
	}
	/* a partial last slot counts in full: at most the size */
	return slots <= s->size / CHUNK ? slots * CHUNK : s->size;
}

long wtg_view_read(struct wtg_view *v, struct wtg_inode *in, struct wtg_stream *s, void *buf,
		   size_t size, uint64_t off)
{
	if (!s->delta)
		return wtg_tree_read(&v->tree, s, buf, size, off);
	if (off >= s->size)
		return 0;
	if (size > s->size - off)
		size = (size_t)(s->size - off);
	uint8_t *slot = malloc(CHUNK);
	if (!slot)
		return -ENOMEM;
	size_t done = 0;
	while (done < size) {
		uint64_t pos = off + done, index = pos / CHUNK;
		size_t in_slot = (size_t)(pos % CHUNK), n = CHUNK - in_slot;
		bool from_base;
		long base_len;
		if (n > size - done)
			n = size - done;
		int ret = read_slot(v, in->ino, s, index, slot, &from_base, &base_len);
		if (ret) {
			free(slot);
			return ret;
		}
		memcpy((uint8_t *)buf + done, slot + in_slot, n);
		done += n;
	}
	free(slot);
	return (long)done;
}

long wtg_view_read_data(struct wtg_view *v, uint64_t ino, void *buf, size_t size, uint64_t off)
{
	pthread_rwlock_rdlock(&v->lock);
	struct wtg_inode *in = wtg_view_inode(v, ino);
	struct wtg_stream *s = in ? wtg_inode_data(in) : NULL;
	if (s && !s->delta) {
		/* only the base's bytes, which never change: decoding them (up
		 * to 1 MiB of LZX) needs no lock, and no change waits for it */
		struct wtg_stream base = *s;
		pthread_rwlock_unlock(&v->lock);
		return wtg_tree_read(&v->tree, &base, buf, size, off);
	}
	long n = s ? wtg_view_read(v, in, s, buf, size, off) : 0;
	pthread_rwlock_unlock(&v->lock);
	return n;
}

static int grow_chunk_table(struct wtg_view *v)
{
	size_t nb = v->chunk_buckets ? v->chunk_buckets * 2 : 256;
	struct chunk_buf **b = calloc(nb, sizeof(*b));

	if (!b)
		return -ENOMEM;
	struct chunk_buf **old = v->chunks;
	size_t oldn = v->chunk_buckets;
	v->chunks = b;
	v->chunk_buckets = nb;
	for (size_t i = 0; i < oldn; i++) {
		for (struct chunk_buf *c = old[i], *n; c; c = n) {
			n = c->next;
			size_t h = chunk_bucket(v, c->ino, c->stream, c->index);
			c->next = b[h];
			b[h] = c;
		}
	}
	free(old);
	return 0;
}

/* The buffer of slot @index, made from what the slot holds unless @whole
 * (the caller overwrites all of it). */
static int chunk_get(struct wtg_view *v, uint64_t ino, const struct wtg_stream *s, uint64_t index,
		     bool whole, struct chunk_buf **cb_ret)
{
	const char *key = stream_key(s);
	struct chunk_buf *cb = chunk_find(v, ino, key, index);
	bool from_base = false;
	long base_len = 0;
	int ret;

	if (cb) {
		if (cb->held) { /* changed again: to be stored again */
			cb->held = false;
			v->nheld--;
		}
		chunk_enc_forget(v, cb); /* its bytes are about to change */
		*cb_ret = cb;
		return 0;
	}
	if (v->nchunks >= v->chunk_buckets && (ret = grow_chunk_table(v)))
		return ret;
	cb = calloc(1, sizeof(*cb));
	if (!cb || !(cb->data = spare_take(&v->spare_data, CHUNK)) || !(cb->stream = strdup(key))) {
		if (cb)
			spare_give(&v->spare_data, cb->data);
		free(cb);
		return -ENOMEM;
	}
	cb->ino = ino;
	cb->index = index;
	if (whole)
		ret = 0;
	else
		ret = read_slot(v, ino, s, index, cb->data, &from_base, &base_len);
	if (!ret && from_base && base_len > 0) {
		/* kept to notice a chunk written back as it was */
		cb->orig = malloc((size_t)base_len);
		if (cb->orig) {
			memcpy(cb->orig, cb->data, (size_t)base_len);
			cb->orig_len = (uint32_t)base_len;
		}
	}
	if (ret) {
		free(cb->stream);
		spare_give(&v->spare_data, cb->data);
		free(cb);
		return ret;
	}
	size_t h = chunk_bucket(v, ino, key, index);
	cb->next = v->chunks[h];
	v->chunks[h] = cb;
	v->nchunks++;
	note_pending(v);
	*cb_ret = cb;
	return 0;
}

/* True when the first @len bytes of the buffer are the base's bytes of its
 * slot, all of them (the base has exactly @len there). */
static bool same_as_base(struct wtg_view *v, const struct wtg_stream *s, struct chunk_buf *cb,
			 size_t len)
{
	uint64_t start = cb->index * CHUNK;

	if (!s->blob || start >= s->base_size)
		return false;
	size_t base_len = s->base_size - start < CHUNK ? (size_t)(s->base_size - start) : CHUNK;
	if (base_len != len)
		return false;
	if (cb->orig)
		return cb->orig_len == len && !memcmp(cb->orig, cb->data, len);
	uint8_t *base = malloc(CHUNK);
	bool same = base && read_base_slot(v, s, cb->index, base) == (long)len &&
		    !memcmp(base, cb->data, len);
	free(base);
	return same;
}

/* The live stream a buffer belongs to, NULL when truncated away or
 * deleted meanwhile. */
static struct wtg_stream *chunk_stream(struct wtg_view *v, const struct chunk_buf *cb)
{
	struct wtg_inode *in = wtg_tree_inode(&v->tree, cb->ino);
	struct wtg_stream *s = NULL;

	if (in && !in->gone)
		s = cb->stream[0] ? wtg_inode_named_stream(in, cb->stream) : wtg_inode_data(in);
	return s && cb->index * CHUNK < s->size ? s : NULL;
}

/* A buffer now in the open batch: dropped, or held until the batch commits
 * when it replaced journal rows (which the batch drops). */
static void chunk_done(struct wtg_view *v, struct chunk_buf *cb, bool had_rows)
{
	if (!had_rows)
		return chunk_unlink(v, cb);
	cb->held = true;
	chunk_clean(v, cb);
	v->nheld++;
}

/* Drops the buffers held for the batch that just committed. */
static void chunks_release_held(struct wtg_view *v)
{
	for (size_t b = 0; v->nheld && b < v->chunk_buckets; b++)
		for (struct chunk_buf *c = v->chunks[b], *n; c; c = n) {
			n = c->next;
			if (c->held)
				chunk_unlink(v, c);
		}
}

static int mark_dirty(struct wtg_view *v, struct wtg_inode *in);
static void unlist_dirty(struct wtg_view *v, struct wtg_inode *in);
static int store_dirty(struct wtg_view *v);

/* Stores one chunk buffer in the open batch and drops it, with the journal
 * rows it replaces. */
static int chunk_store(struct wtg_view *v, struct chunk_buf *cb)
{
	struct wtg_inode *in = wtg_tree_inode(&v->tree, cb->ino);
	struct wtg_stream *s = NULL;
	uint8_t hash[WTG_STORE_HASH_LEN];
	bool had_rows = cb->journaled > 0;
	int ret = 0;

	if (cb->held)
		return 0; /* stored in this batch already */
	if (had_rows && (ret = wtg_store_journal_drop(v->store, cb->ino, cb->stream, cb->index)))
		return ret;
	cb->journaled = 0;
	/* the rows may have carried the inode's times, which go with them */
	struct wtg_inode *tin = had_rows ? wtg_tree_inode(&v->tree, cb->ino) : NULL;
	if (tin && !tin->gone && (ret = mark_dirty(v, tin)))
		return ret;
	/* what a worker made of the buffer's bytes, which it now stores */
	struct chunk_enc *enc = chunk_enc_take(v, cb, true);
	if (in && !in->gone)
		s = cb->stream[0] ? wtg_inode_named_stream(in, cb->stream) : wtg_inode_data(in);
	uint64_t start = cb->index * CHUNK;
	if (!s || start >= s->size) {
		chunk_enc_free(v, enc);
		chunk_unlink(v, cb); /* truncated away or deleted meanwhile */
		return 0;
	}
	size_t len = s->size - start < CHUNK ? (size_t)(s->size - start) : CHUNK;
	s->usage = 0; /* what the delta holds changes */
	if (same_as_base(v, s, cb, len)) {
		/* written back as the base has it (a hive rewritten whole, a
		 * file copied over itself): the slot shows the base, no data */
		ret = wtg_store_set_extent_base(v->store, cb->ino, cb->stream, cb->index);
		chunk_enc_free(v, enc);
		if (!ret)
			chunk_done(v, cb, had_rows);
		return ret;
	}
	if (enc && (enc->len != len || enc->ret)) { /* the stream's end moved: again here */
		chunk_enc_free(v, enc);
		enc = NULL;
	}
	if (enc ? enc->zero : all_zero(cb->data, len)) {
		ret = wtg_store_set_extent(v->store, cb->ino, cb->stream, cb->index, NULL);
	} else {
		if (enc) {
			ret = wtg_store_put_encoded(v->store, &enc->out);
			memcpy(hash, enc->out.hash, sizeof(hash));
		} else {
			ret = wtg_store_put_chunk(v->store, cb->data, len, hash);
		}
		if (!ret)
			ret = wtg_store_set_extent(v->store, cb->ino, cb->stream, cb->index, hash);
	}
	chunk_enc_free(v, enc);
	if (!ret)
		chunk_done(v, cb, had_rows);
	return ret;
}

/* Stores the buffers whose encoding is done, oldest first, stopping at the
 * first still at work: the writer's SQL runs while the worker encodes the
 * next ones. */
static int chunks_store_encoded(struct wtg_view *v)
{
	struct chunk_enc *enc;
	int ret = 0;

	while (!ret && (enc = v->enc_head) && __atomic_load_n(&enc->done, __ATOMIC_ACQUIRE)) {
		struct chunk_buf *cb = enc->cb;
		ret = chunk_store(v, cb);
		if (!ret && v->enc_head == enc)
			chunk_enc_forget(v, cb); /* not stored (it had been): not again */
	}
	return ret;
}

/* Puts the bytes a buffer changed into the journal, and keeps it; stores
 * it instead when that costs little more (the change is a quarter of the
 * slot or more: a small file, a slot mostly rewritten) or when the rows of
 * its slot grew too many. */
static int chunk_journal(struct wtg_view *v, struct chunk_buf *cb)
{
	struct wtg_stream *s = chunk_stream(v, cb);
	uint32_t dirty = cb->dirty_hi - cb->dirty_lo;

	if (!s || dirty > JOURNAL_MAX_BYTES || cb->journaled >= JOURNAL_MAX_ROWS ||
	    (uint64_t)dirty * 4 > s->size - cb->index * CHUNK)
		return chunk_store(v, cb);
	/* an inode whose times alone changed: the row takes them, and its
	 * record is not rewritten */
	struct wtg_inode *in = wtg_tree_inode(&v->tree, cb->ino);
	bool carry = in && in->dirty && in->times_only && !in->gone;
	int64_t times[2] = {carry ? in->mtime : 0, carry ? in->ctime : 0};
	int ret = wtg_store_journal_put(v->store, cb->ino, cb->stream, cb->index, cb->dirty_lo,
					cb->data + cb->dirty_lo, cb->dirty_hi - cb->dirty_lo,
					carry ? times : NULL);
	if (ret)
		return ret;
	if (carry)
		unlist_dirty(v, in);
	cb->journaled++;
	chunk_clean(v, cb);
	v->journal_used = true;
	return 0;
}

/* Hands a buffer about to be stored to a worker to hash and compress;
 * false when the pool takes no more now. */
static bool chunk_enc_ahead(struct wtg_view *v, struct chunk_buf *cb)
{
	struct wtg_stream *s = cb->held || cb->enc ? NULL : chunk_stream(v, cb);

	if (!s)
		return true; /* nothing to encode: stored already, or no bytes left */
	uint64_t start = cb->index * CHUNK;
	return chunk_enc_submit(v, cb, s->size - start < CHUNK ? (size_t)(s->size - start) : CHUNK);
}

/* Buffers encoded ahead of the one being stored: the workers hash and
 * compress the next ones while the writer stores this one. */
#define STORE_AHEAD 16

/* Stores the buffers of @ino (0: all) into their chunks (a file closed, a
 * fold of all): their encodings run ahead on the workers, so that closing
 * a file that fsyncs left with a thousand changed chunks costs the writer
 * their SQL, not their hashing and compression too. */
static int chunks_store(struct wtg_view *v, uint64_t ino)
{
	struct chunk_buf **list = v->nchunks ? malloc(v->nchunks * sizeof(*list)) : NULL;
	size_t n = 0, ahead = 0;
	int ret = 0;

	for (size_t b = 0; b < v->chunk_buckets; b++) {
		for (struct chunk_buf *c = v->chunks[b], *next; c; c = next) {
			next = c->next;
			if ((ino && c->ino != ino) || c->held)
				continue;
			if (list) {
				list[n++] = c;
			} else if ((ret = chunk_store(v, c))) { /* no memory for the list */
				return ret;
			}
		}
	}
	for (size_t i = 0; !ret && i < n; i++) {
		if (ahead < i)
			ahead = i;
		while (ahead < n && ahead < i + STORE_AHEAD && chunk_enc_ahead(v, list[ahead]))
			ahead++;
		ret = chunk_store(v, list[i]);
	}
	free(list);
	return ret;
}

/* Puts every buffer into the open batch as @mode says; the buffers of
 * @fold_ino (its file is being closed) go into their chunks either way. */
static int chunks_commit(struct wtg_view *v, enum commit_mode mode, uint64_t fold_ino)
{
	int ret = 0;

	if (mode == COMMIT_FOLD || fold_ino)
		ret = chunks_store(v, mode == COMMIT_FOLD ? 0 : fold_ino);
	/* the rest: only buffers with changed bytes have anything to put in */
	for (struct chunk_buf *c = v->dirty_chunks, *n; !ret && c; c = n) {
		n = c->dirty_next;
		ret = chunk_journal(v, c);
	}
	if (!ret && mode == COMMIT_FOLD && v->journal_used) {
		/* every buffer is in its chunk: no row of the working layer is
		 * needed any more (each went with its buffer already) */
		ret = wtg_store_journal_clear(v->store);
		if (!ret)
			v->journal_used = false;
	}
	return ret;
}

/*
 * Rows of the journal (fsynced writes whose buffers never went into their
 * chunks: a crash left them, or, for a read-only view of HEAD, the mount
 * that writes the delta holds them): each goes over what its slot holds,
 * in order, into a buffer.  A writable view then stores the buffers, in the
 * batch that drops the rows; a read-only one reads through them.  Rows of
 * a file or a stream gone since, or past its end, are dropped with the
 * rest.
 */
static int replay_journal(struct wtg_view *v)
{
	struct wtg_store_journal_row *rows;
	size_t n;
	uint64_t times_ino = 0;
	int64_t times_seq = 0;
	int ret = wtg_store_journal_read(v->store, &rows, &n);

	if (ret || !n)
		return ret;
	for (size_t i = 0; !ret && i < n; i++) {
		struct wtg_store_journal_row *row = &rows[i];
		struct wtg_inode *in = wtg_tree_inode(&v->tree, row->ino);
		struct wtg_stream *s = NULL;
		struct chunk_buf *cb;
		/* the inode's times: the newest row's that carries them (rows
		 * come by inode, each inode's in no order of time) */
		if (in && !in->gone && row->timed &&
		    (row->ino != times_ino || row->seq > times_seq)) {
			times_ino = row->ino;
			times_seq = row->seq;
			in->mtime = row->mtime;
			in->ctime = row->ctime;
			if (!v->read_only && (ret = mark_dirty(v, in)))
				break;
		}
		if (in && !in->gone && !in->dir)
			s = row->stream[0] ? wtg_inode_named_stream(in, row->stream) : wtg_inode_data(in);
		if (!s || row->index >= s->size / CHUNK + (s->size % CHUNK != 0))
			continue;
		s->delta = true;
		ret = chunk_get(v, row->ino, s, row->index, false, &cb);
		if (ret)
			break;
		memcpy(cb->data + row->off, row->data, row->len);
		chunk_dirty(v, cb, 0, CHUNK);
		if (v->nchunks > MAX_DIRTY_CHUNKS && !v->read_only)
			ret = chunks_store(v, 0);
	}
	if (!ret && !v->read_only)
		ret = chunks_store(v, 0);
	if (!ret && !v->read_only) /* the times rows carried, in the batch that drops them */
		ret = store_dirty(v);
	if (!ret && !v->read_only)
		ret = wtg_store_journal_clear(v->store);
	if (!ret && !v->read_only)
		wtg_debug("'%s': %zu write(s) fsynced before a crash folded in", v->delta_path, n);
	wtg_store_journal_free(rows, n);
	return ret;
}

/* Drops buffers of a stream (@stream NULL: every stream of @ino) from slot
 * @from on: truncated or deleted. */
static void chunks_drop(struct wtg_view *v, uint64_t ino, const char *stream, uint64_t from)
{
	for (size_t b = 0; b < v->chunk_buckets; b++) {
		for (struct chunk_buf *c = v->chunks[b], *n; c; c = n) {
			n = c->next;
			if (c->ino == ino && (!stream || !strcmp(c->stream, stream)) &&
			    c->index >= from)
				chunk_unlink(v, c);
		}
	}
}

/* ---- inode records ---- */

/* Lists @in among the inodes to record at the next commit. */
static int list_dirty(struct wtg_view *v, struct wtg_inode *in)
{
	if (in->dirty)
		return 0;
	if (v->ndirty == v->dirty_cap) {
		size_t cap = v->dirty_cap ? v->dirty_cap * 2 : 64;
		struct wtg_inode **p = realloc(v->dirty, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		v->dirty = p;
		v->dirty_cap = cap;
	}
	v->dirty[v->ndirty++] = in;
	in->dirty = true;
	note_pending(v);
	return 0;
}

/* @in changed: its record goes into the delta at the next commit. */
static int mark_dirty(struct wtg_view *v, struct wtg_inode *in)
{
	in->times_only = false;
	return list_dirty(v, in);
}

/* Only @in's mtime and ctime changed (by a write): a journal row may take
 * them instead of its record (chunk_journal). */
static int mark_times(struct wtg_view *v, struct wtg_inode *in)
{
	if (in->dirty)
		return 0; /* changed otherwise too, or times only already */
	int ret = list_dirty(v, in);
	if (!ret)
		in->times_only = true;
	return ret;
}

/* Takes @in off the list of inodes to record. */
static void unlist_dirty(struct wtg_view *v, struct wtg_inode *in)
{
	for (size_t i = 0; in->dirty && i < v->ndirty; i++) {
		if (v->dirty[i] == in) {
			v->dirty[i] = v->dirty[--v->ndirty];
			in->dirty = false;
		}
	}
	in->times_only = false;
}

/* The delta's hash of security descriptor @id, put once per mount. */
static int put_sd(struct wtg_view *v, uint32_t id, uint8_t hash[WTG_STORE_HASH_LEN])
{
	const struct wtg_sd *sd = wtg_tree_sd(&v->tree, id);
	static const uint8_t none[WTG_STORE_HASH_LEN];

	if (!sd)
		return -EINVAL;
	if (id >= v->nsd_put) {
		uint32_t n = v->tree.nsds;
		uint8_t(*p)[WTG_STORE_HASH_LEN] = realloc(v->sd_hash, n * sizeof(*p));
		if (!p)
			return -ENOMEM;
		memset(p + v->nsd_put, 0, (n - v->nsd_put) * sizeof(*p));
		v->sd_hash = p;
		v->nsd_put = n;
	}
	if (!memcmp(v->sd_hash[id], none, sizeof(none))) {
		int ret = wtg_store_put_sd(v->store, sd->data, sd->len, v->sd_hash[id]);
		if (ret) {
			memset(v->sd_hash[id], 0, sizeof(none));
			return ret;
		}
	}
	memcpy(hash, v->sd_hash[id], WTG_STORE_HASH_LEN);
	return 0;
}

/* Records a stream's size in the delta (@fresh: nothing below shows). */
static int store_size(struct wtg_view *v, struct wtg_inode *in, struct wtg_stream *s,
		      uint64_t size, bool fresh)
{
	int ret = wtg_store_set_stream(v->store, in->ino, stream_key(s), size, fresh);
	s->usage = 0;
	if (!ret)
		s->stored_size = size;
	return ret;
}

static int store_inode(struct wtg_view *v, struct wtg_inode *in)
{
	struct wtg_store_inode si = {
	    .attributes = in->attributes,
	    .crtime = in->crtime,
	    .mtime = in->mtime,
	    .atime = in->atime,
	    .ctime = in->ctime,
	    .object_id = in->object_id,
	    .object_id_len = in->object_id_len,
	    .ea = in->ea,
	    .ea_len = in->ea_len,
	};
	uint32_t rlen;
	const uint8_t *rp = wtg_inode_reparse(&v->tree, in, &rlen);
	int ret = 0;

	si.reparse = (uint8_t *)rp;
	si.reparse_len = rp ? rlen : 0;
	if (in->sd != WTG_NO_SD)
		ret = put_sd(v, in->sd, si.sd_hash);
	if (!ret)
		ret = wtg_store_set_inode(v->store, in->ino, &si);
	for (uint32_t i = 0; !ret && i < in->nstreams; i++)
		if (in->streams[i].delta && in->streams[i].size != in->streams[i].stored_size)
			ret = store_size(v, in, &in->streams[i], in->streams[i].size, false);
	return ret;
}

/* The records of the inodes listed dirty into the batch. */
static int store_dirty(struct wtg_view *v)
{
	int ret = 0;

	while (!ret && v->ndirty) {
		struct wtg_inode *in = v->dirty[--v->ndirty];
		in->dirty = in->times_only = false;
		if (!in->gone)
			ret = store_inode(v, in);
	}
	return ret;
}

/* Everything pending into the batch (chunk buffers as @mode says, those of
 * @fold_ino into chunks), then the commit. */
static int commit_locked(struct wtg_view *v, bool durable, enum commit_mode mode,
			 uint64_t fold_ino)
{
	int ret;

	if (v->error)
		return v->error;
	ret = chunks_commit(v, mode, fold_ino);
	if (!ret)
		ret = store_dirty(v);
	if (!ret)
		ret = durable ? wtg_store_commit(v->store) : wtg_store_commit_nosync(v->store);
	if (ret) {
		/* The batch is lost: the delta keeps its last commit, and
		 * nothing more goes in that could refer to what was lost. */
		wtg_error("'%s': cannot store changes (%s); the delta holds what was committed "
			  "before; unmount and free space",
			  v->delta_path, strerror(-ret));
		v->error = ret;
		return ret;
	}
	chunks_release_held(v);
	v->pending_since.tv_sec = 0;
	return 0;
}

int wtg_view_sync(struct wtg_view *v, bool durable)
{
	if (v->read_only)
		return 0;
	pthread_rwlock_wrlock(&v->lock);
	int ret = commit_locked(v, durable, COMMIT_JOURNAL, 0);
	pthread_rwlock_unlock(&v->lock);
	return ret;
}

/* ---- the commit thread ---- */

static void *commit_thread(void *arg)
{
	struct wtg_view *v = arg;

	pthread_mutex_lock(&v->thread_lock);
	while (!v->stopping) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 200 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&v->thread_cond, &v->thread_lock, &ts);
		if (v->stopping)
			break;
		pthread_mutex_unlock(&v->thread_lock);
		pthread_rwlock_wrlock(&v->lock);
		long age = wtg_store_batch_age_ms(v->store);
		if (!v->error && ((v->pending_since.tv_sec && elapsed_ms(&v->pending_since) >= COMMIT_MS) ||
				  age >= COMMIT_MS))
			commit_locked(v, true, COMMIT_JOURNAL, 0);
		pthread_rwlock_unlock(&v->lock);
		pthread_mutex_lock(&v->thread_lock);
	}
	pthread_mutex_unlock(&v->thread_lock);
	return NULL;
}

int wtg_view_start(struct wtg_view *v)
{
	if (!v->store)
		return 0;
	if (v->pid != getpid()) {
		int ret = wtg_store_after_fork(v->store);
		if (ret)
			return ret;
		v->pid = getpid();
	}
	if (v->read_only)
		return 0;
	wtg_store_start(v->store);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (cpus > 1)
		v->pool = wtg_workpool_new(cpus > 4 ? 3 : (unsigned)(cpus - 1));
	if (pthread_create(&v->thread, NULL, commit_thread, v) != 0)
		return -EAGAIN;
	v->thread_running = true;
	return 0;
}

int wtg_view_close(struct wtg_view *v)
{
	int ret = 0;

	if (v->thread_running) {
		pthread_mutex_lock(&v->thread_lock);
		v->stopping = true;
		pthread_cond_signal(&v->thread_cond);
		pthread_mutex_unlock(&v->thread_lock);
		pthread_join(v->thread, NULL);
	}
	if (v->store && v->read_only) {
		ret = wtg_store_close(v->store);
	} else if (v->store) {
		/* handles the kernel still held at unmount: their inodes go now */
		for (uint64_t i = 0; i < v->tree.ninodes; i++) {
			struct wtg_inode *in = v->tree.inodes[i];
			if (in && in->opens && in->nlink == 0 && in->ino != WTG_ROOT_INO && !in->gone) {
				in->gone = true;
				chunks_drop(v, in->ino, NULL, 0);
				if (!v->error)
					store_gone(v, in);
			}
		}
		ret = v->error ? v->error : commit_locked(v, true, COMMIT_FOLD, 0);
		if (!ret)
			sums_keep(v);
		/* a lost batch leaves encodings: none may run once the store,
		 * whose codecs they use, is gone */
		while (v->enc_head)
			chunk_enc_forget(v, v->enc_head->cb);
		int r2 = wtg_store_close(v->store);
		if (!ret)
			ret = r2;
	}
	view_free(v);
	return ret;
}

/* ---- changes ---- */

/* The exclusive lock, after the checks every change makes. */
static int begin_change(struct wtg_view *v)
{
	if (v->read_only)
		return -EROFS;
	pthread_rwlock_wrlock(&v->lock);
	if (v->error) {
		pthread_rwlock_unlock(&v->lock);
		return v->error;
	}
	return 0;
}

/* After a failed store call: when the store lost its batch, the view stops
 * at once, so nothing done after it reaches the delta. */
static int note_lost(struct wtg_view *v, int ret)
{
	int lost;

	if (!ret || v->error || !v->store || !(lost = wtg_store_lost(v->store)))
		return ret;
	wtg_error("'%s': cannot store changes (%s); the delta holds what was committed "
		  "before; unmount and free space",
		  v->delta_path, strerror(-lost));
	v->error = lost;
	return ret;
}

/* Ends a change: stores chunk buffers when there are too many. */
static int end_change(struct wtg_view *v, int ret)
{
	if (v->nchunks - v->nheld > MAX_DIRTY_CHUNKS && !v->error) {
		int r = chunks_store(v, 0);
		if (r && !ret)
			ret = r;
	}
	note_lost(v, ret);
	pthread_rwlock_unlock(&v->lock);
	return ret;
}

/* A write sets the archive bit, as NTFS does; FILE_ATTRIBUTE_NORMAL, which
 * means "no other attribute" (a WIM captured off Windows has it on every
 * file), goes with it. */
static void set_archive(struct wtg_inode *in)
{
	in->attributes = (in->attributes & ~NTFS_ATTR_NORMAL) | NTFS_ATTR_ARCHIVE;
}

static int touch(struct wtg_view *v, struct wtg_inode *in, bool modified)
{
	int64_t t = now_ntfs();
	in->ctime = t;
	if (modified)
		in->mtime = t;
	return mark_dirty(v, in);
}

/* Tells the delta that @in is gone: an inode born in the working layer
 * leaves no record at all. */
static int store_gone(struct wtg_view *v, struct wtg_inode *in)
{
	if (in->ino <= v->base_ninodes)
		return wtg_store_delete_inode(v->store, in->ino);
	return wtg_store_delete_new_inode(v->store, in->ino, &in->traceless);
}

/* The inode is gone once it has no name and no handle. */
static int maybe_gone(struct wtg_view *v, struct wtg_inode *in)
{
	if (in->nlink > 0 || in->opens > 0 || in->gone || in->ino == WTG_ROOT_INO)
		return 0;
	in->gone = true;
	chunks_drop(v, in->ino, NULL, 0);
	return store_gone(v, in);
}

/* A gone inode goes from memory once the kernel holds no reference to it
 * (and nothing is pending for it); the number of one the delta keeps no
 * trace of is used again, so churn costs neither memory nor numbers. */
static void maybe_free(struct wtg_view *v, struct wtg_inode *in)
{
	if (!in->gone || in->opens || in->nlookup || in->ino == WTG_ROOT_INO)
		return;
	unlist_dirty(v, in);
	if (in->traceless && in->ino > v->base_ninodes) {
		if (v->nfree == v->free_cap) {
			size_t cap = v->free_cap ? v->free_cap * 2 : 64;
			uint64_t *p = realloc(v->free_inos, cap * sizeof(*p));
			if (p) {
				v->free_inos = p;
				v->free_cap = cap;
			}
		}
		if (v->nfree < v->free_cap)
			v->free_inos[v->nfree++] = in->ino;
	}
	wtg_tree_free_inode(&v->tree, in);
}

/* The number the next new inode gets, and taking it. */
static uint64_t peek_ino(const struct wtg_view *v)
{
	return v->nfree ? v->free_inos[v->nfree - 1] : v->next_ino;
}

static void take_ino(struct wtg_view *v, uint64_t ino)
{
	if (v->nfree && v->free_inos[v->nfree - 1] == ino)
		v->nfree--;
	else
		v->next_ino++;
}

static int check_name(const char *name)
{
	size_t len = strlen(name);
	uint8_t units[2 * 256];

	if (wtg_name_windows_ok(name, len))
		return 0;
	/* longer than NTFS's 255 UTF-16 units: what POSIX says for NAME_MAX */
	if (len > 255 && wtg_utf8_to_utf16le(name, len, units, 255) == -ENAMETOOLONG)
		return -ENAMETOOLONG;
	return -EINVAL;
}

/* A directory removed while open holds nothing, and takes nothing new. */
static struct wtg_inode *dir_inode(struct wtg_view *v, uint64_t ino, int *err)
{
	struct wtg_inode *d = wtg_view_inode(v, ino);
	bool removed = d && d->nlink == 0 && d->ino != WTG_ROOT_INO;
	*err = !d || removed ? -ENOENT : !d->dir ? -ENOTDIR : 0;
	return *err ? NULL : d;
}

static int inherit_sd(struct wtg_view *v, struct wtg_inode *parent, bool is_dir, uint32_t *id)
{
	const struct wtg_sd *psd = wtg_tree_sd(&v->tree, parent->sd);
	uint8_t *sd;
	size_t len;

	*id = WTG_NO_SD;
	if (!psd)
		return 0;
	int ret = wtg_sd_inherit(psd->data, psd->len, is_dir, &sd, &len);
	if (ret == -EINVAL)
		return 0; /* a parent SD we cannot read passes nothing on */
	if (ret)
		return ret;
	*id = wtg_tree_intern_sd(&v->tree, sd, len);
	free(sd);
	return *id == WTG_NO_SD ? -ENOMEM : 0;
}

/*
 * Names change in two steps: first the delta takes the change (name_store,
 * unname_store), then the tree (name_tree, unname_tree), so that a change
 * the delta refuses leaves the tree as it was.
 */

/* Records @name -> @in in @dir; *fresh_ret: the base does not hold that
 * exact name (no whiteout of it lies in the stack, or @dir is new), so its
 * removal needs no whiteout for the base's sake. */
static int name_store(struct wtg_view *v, struct wtg_inode *dir, const char *name,
		      struct wtg_inode *in, bool *fresh_ret)
{
	enum wtg_store_state state = WTG_STORE_BASE;
	uint64_t old;
	int ret = 0;

	if (dir->ino <= v->base_ninodes)
		ret = wtg_store_get_name(v->store, dir->ino, name, &state, &old);
	*fresh_ret = state == WTG_STORE_BASE;
	return ret ? ret : wtg_store_set_name(v->store, dir->ino, name, in->ino);
}

static int name_tree(struct wtg_view *v, struct wtg_inode *dir, const char *name,
		     struct wtg_inode *in, bool fresh)
{
	int ret = wtg_tree_link(&v->tree, dir, name, strlen(name), in);

	if (ret)
		return ret;
	struct wtg_dentry *de = in->first_name;
	while (de->alias_next)
		de = de->alias_next; /* the new name is the last */
	de->fresh = fresh;
	return 0;
}

static int unname_store(struct wtg_view *v, struct wtg_inode *dir, struct wtg_dentry *de)
{
	return wtg_store_remove_name(v->store, dir->ino, de->name, !de->fresh);
}

/* Removes the name @de of @dir from the tree; the inode goes when it was
 * the last name and no handle holds it. */
static int unname_tree(struct wtg_view *v, struct wtg_inode *dir, struct wtg_dentry *de)
{
	struct wtg_inode *in = de->inode;

	/* its DOS name goes with it (the tree drops it), as a rename or a
	 * removal of the long name on Windows takes the short one along */
	wtg_tree_unlink(&v->tree, dir, de);
	int ret = touch(v, in, false);
	if (!ret)
		ret = touch(v, dir, true);
	if (!ret)
		ret = maybe_gone(v, in);
	return ret;
}

/* A new inode named @name in @dir: a directory, or a file with an empty
 * unnamed stream unless @no_data (symlinks); @rp (reparse data) and @ea
 * are taken over, also on failure. */
static int create_locked(struct wtg_view *v, uint64_t dirino, const char *name, bool is_dir,
			 bool no_data, uint32_t attributes, uint8_t *rp, size_t rplen, uint8_t *ea,
			 size_t ealen, struct wtg_inode **inode_ret)
{
	bool fresh = false, named = false, data = !is_dir && !no_data;
	int ret = check_name(name);

	if (ret || (ret = begin_change(v))) {
		free(rp);
		free(ea);
		return ret;
	}
	struct wtg_inode *dir = dir_inode(v, dirino, &ret), *in = NULL;
	if (dir && wtg_tree_lookup(&v->tree, dir, name, strlen(name)))
		ret = -EEXIST;
	uint32_t sd = WTG_NO_SD;
	if (!ret)
		ret = inherit_sd(v, dir, is_dir, &sd);
	uint64_t ino = peek_ino(v);
	if (!ret && !(in = wtg_tree_new_inode_at(&v->tree, ino, is_dir)))
		ret = -ENOMEM;
	/* the delta first: the tree shows the name once the delta took it */
	if (!ret && !(ret = name_store(v, dir, name, in, &fresh)))
		named = true;
	if (!ret && data)
		ret = wtg_store_set_stream(v->store, ino, "", 0, true);
	struct wtg_stream *s = NULL;
	if (!ret && data && !(s = wtg_inode_add_stream(in, NULL, 0, NULL)))
		ret = -ENOMEM;
	if (!ret)
		ret = name_tree(v, dir, name, in, fresh);
	if (ret) {
		if (named)
			wtg_store_remove_name(v->store, dir->ino, name, !fresh);
		if (in)
			wtg_tree_free_inode(&v->tree, in);
		free(rp);
		free(ea);
		return end_change(v, ret);
	}
	take_ino(v, ino);
	if (s) {
		s->delta = true;
		s->stored_size = 0;
	}
	in->sd = sd;
	in->attributes = attributes;
	in->crtime = in->mtime = in->atime = in->ctime = now_ntfs();
	if (rp)
		set_reparse(in, rp, (uint32_t)rplen);
	in->ea = ea;
	in->ea_len = ea ? (uint32_t)ealen : 0;
	ret = mark_dirty(v, in);
	if (!ret)
		ret = touch(v, dir, true);
	if (!ret)
		*inode_ret = in;
	return end_change(v, ret);
}

/* The reparse data of a new symlink to @target in @dirino: Windows' own
 * form when it reads back as @target from there (so Windows follows it
 * too), else WSL's, which keeps the text byte for byte. */
static int symlink_reparse(struct wtg_view *v, uint64_t dirino, const char *target,
			   uint8_t **rp, size_t *rplen)
{
	char back[4096];

	if (!wtg_reparse_make_symlink(target, rp, rplen)) {
		pthread_rwlock_rdlock(&v->lock);
		struct wtg_inode *dir = wtg_view_inode(v, dirino);
		long n = dir && dir->dir ? wtg_tree_link_text(&v->tree, dir, *rp, (uint32_t)*rplen,
							     true, back, sizeof(back))
					 : -ENOENT;
		pthread_rwlock_unlock(&v->lock);
		if (n >= 0 && !strcmp(back, target))
			return 0;
		free(*rp);
		*rp = NULL;
	}
	return wtg_reparse_make_lx_symlink(target, rp, rplen);
}

int wtg_view_create(struct wtg_view *v, uint64_t dirino, const char *name, enum wtg_view_kind kind,
		    const char *target, struct wtg_inode **inode_ret)
{
	uint8_t *rp = NULL;
	size_t rplen = 0;
	int ret = check_name(name);

	if (ret)
		return ret;
	if (kind == WTG_VIEW_SYMLINK && (ret = symlink_reparse(v, dirino, target, &rp, &rplen)))
		return ret;
	bool is_dir = kind == WTG_VIEW_DIR;
	return create_locked(v, dirino, name, is_dir, kind == WTG_VIEW_SYMLINK,
			     is_dir ? NTFS_ATTR_DIRECTORY : NTFS_ATTR_ARCHIVE, rp, rplen, NULL, 0,
			     inode_ret);
}

int wtg_view_mknod(struct wtg_view *v, uint64_t dirino, const char *name, uint32_t mode,
		   uint32_t major, uint32_t minor, struct wtg_inode **inode_ret)
{
	uint32_t tag;
	uint8_t *rp, *ea;
	size_t ealen;

	switch (mode & S_IFMT) {
	case S_IFIFO:
		tag = NTFS_REPARSE_TAG_LX_FIFO;
		break;
	case S_IFSOCK:
		tag = NTFS_REPARSE_TAG_AF_UNIX;
		break;
	case S_IFCHR:
		tag = NTFS_REPARSE_TAG_LX_CHR;
		break;
	case S_IFBLK:
		tag = NTFS_REPARSE_TAG_LX_BLK;
		break;
	default:
		return -EINVAL;
	}
	if (!(rp = calloc(1, sizeof(struct ntfs_reparse_header))))
		return -ENOMEM;
	ntfs_put_le32(rp, tag); /* no data after the header, as WSL writes it */
	int ret = wtg_ea_make_wsl(mode, major, minor, &ea, &ealen);
	if (ret) {
		free(rp);
		return ret;
	}
	/* the attributes WSL and ntfs-3g give a special file */
	return create_locked(v, dirino, name, false, false,
			     NTFS_ATTR_ARCHIVE | NTFS_ATTR_RECALL_ON_OPEN, rp,
			     sizeof(struct ntfs_reparse_header), ea, ealen, inode_ret);
}

int wtg_view_link(struct wtg_view *v, uint64_t ino, uint64_t dirino, const char *name,
		  struct wtg_inode **inode_ret)
{
	bool fresh;
	int ret = check_name(name);

	if (ret || (ret = begin_change(v)))
		return ret;
	struct wtg_inode *in = wtg_view_inode(v, ino), *dir = dir_inode(v, dirino, &ret);
	if (!ret && (!in || in->nlink == 0))
		ret = -ENOENT;
	else if (!ret && in->dir)
		ret = -EPERM;
	else if (!ret && wtg_tree_lookup(&v->tree, dir, name, strlen(name)))
		ret = -EEXIST;
	if (!ret && !(ret = name_store(v, dir, name, in, &fresh)) &&
	    (ret = name_tree(v, dir, name, in, fresh)))
		wtg_store_remove_name(v->store, dir->ino, name, !fresh);
	if (!ret)
		ret = touch(v, in, false);
	if (!ret)
		ret = touch(v, dir, true);
	if (!ret)
		*inode_ret = in;
	return end_change(v, ret);
}

int wtg_view_remove(struct wtg_view *v, uint64_t dirino, const char *name, bool want_dir)
{
	int ret = begin_change(v);

	if (ret)
		return ret;
	struct wtg_inode *dir = dir_inode(v, dirino, &ret);
	struct wtg_dentry *de = dir ? wtg_tree_lookup(&v->tree, dir, name, strlen(name)) : NULL;
	if (!ret && !de)
		ret = -ENOENT;
	else if (!ret && want_dir && !de->inode->dir)
		ret = -ENOTDIR;
	else if (!ret && !want_dir && de->inode->dir && !wtg_inode_is_link(de->inode))
		ret = -EISDIR; /* (a junction is a link to POSIX: unlink(2) takes it, as on ntfs-3g) */
	else if (!ret && de->inode->dir && de->inode->dir->count)
		ret = -ENOTEMPTY;
	else if (!ret && de->inode->ino == WTG_ROOT_INO)
		ret = -EBUSY;
	if (!ret && !(ret = unname_store(v, dir, de)))
		ret = unname_tree(v, dir, de);
	return end_change(v, ret);
}

/* True when @a is @d or above it (the root is its own parent).  A damaged
 * delta could make a loop without the root: the walk is bounded. */
static bool is_ancestor(const struct wtg_inode *a, const struct wtg_inode *d)
{
	for (int depth = 0; d && depth < 4096; d = d->parent, depth++) {
		if (d == a)
			return true;
		if (d->ino == WTG_ROOT_INO)
			return false;
	}
	return d != NULL; /* a loop: as if inside, so nothing moves into it */
}

/* Both names stay, each now naming the other's inode: the delta takes the
 * two records first, then the tree swaps them. */
static int exchange(struct wtg_view *v, struct wtg_inode *dir, struct wtg_dentry *src,
		    struct wtg_inode *newdir, struct wtg_dentry *dst)
{
	struct wtg_inode *in = src->inode, *other = dst->inode;
	char *a = strdup(src->name), *b = strdup(dst->name);
	bool afresh = src->fresh, bfresh = dst->fresh;
	int ret = !a || !b ? -ENOMEM : 0;

	if (!ret && !(ret = wtg_store_set_name(v->store, dir->ino, a, other->ino)) &&
	    (ret = wtg_store_set_name(v->store, newdir->ino, b, in->ino)))
		wtg_store_set_name(v->store, dir->ino, a, in->ino);
	if (!ret) {
		in->opens++, other->opens++; /* both keep living without a name */
		ret = unname_tree(v, dir, src);
		if (!ret)
			ret = unname_tree(v, newdir, dst);
		if (!ret)
			ret = name_tree(v, newdir, b, in, bfresh);
		if (!ret)
			ret = name_tree(v, dir, a, other, afresh);
		in->opens--, other->opens--;
	}
	free(a);
	free(b);
	return ret;
}

/* The rename, under the exclusive lock. */
static int rename_locked(struct wtg_view *v, uint64_t dirino, const char *name,
			 uint64_t newdirino, const char *newname, unsigned flags)
{
	int ret = 0;
	struct wtg_inode *dir = dir_inode(v, dirino, &ret), *newdir = NULL;
	if (!ret)
		newdir = dir_inode(v, newdirino, &ret);
	struct wtg_dentry *src = NULL, *dst = NULL;
	if (!ret && !(src = wtg_tree_lookup(&v->tree, dir, name, strlen(name))))
		ret = -ENOENT;
	if (ret)
		return ret;
	struct wtg_inode *in = src->inode;
	dst = wtg_tree_lookup(&v->tree, newdir, newname, strlen(newname));
	if (dst == src) {
		/* the same name, maybe in another case: a case-only rename */
		if (!strcmp(src->name, newname) || flags & WTG_VIEW_EXCHANGE)
			return 0;
		dst = NULL;
	} else if (flags & WTG_VIEW_EXCHANGE) {
		if (!dst)
			return -ENOENT;
		if ((in->dir && is_ancestor(in, newdir)) ||
		    (dst->inode->dir && is_ancestor(dst->inode, dir)))
			return -EINVAL;
		return exchange(v, dir, src, newdir, dst);
	}
	if (dst && (flags & WTG_VIEW_NOREPLACE))
		return -EEXIST;
	if (in->dir && is_ancestor(in, newdir))
		return -EINVAL;
	if (dst) {
		if (dst->inode == in)
			return 0; /* two names of one file: nothing to do */
		if (in->dir && !dst->inode->dir)
			return -ENOTDIR;
		if (!in->dir && dst->inode->dir)
			return -EISDIR;
		if (dst->inode->dir && dst->inode->dir->count)
			return -ENOTEMPTY;
	}
	/* the delta first: the old name, the new one, and the replaced name
	 * when it is spelled otherwise; what it took is undone if it refuses
	 * a later step, and the tree changes only once all went in */
	bool fresh, dst_other = dst && strcmp(dst->name, newname);
	char *old = strdup(src->name);
	if (!old)
		return -ENOMEM;
	bool src_fresh = src->fresh;
	int step = 0;
	if (!(ret = unname_store(v, dir, src)))
		step = 1;
	if (!ret && !(ret = name_store(v, newdir, newname, in, &fresh)))
		step = 2;
	if (!ret && dst_other)
		ret = unname_store(v, newdir, dst);
	if (ret) {
		if (step == 2)
			wtg_store_remove_name(v->store, newdir->ino, newname, !fresh);
		if (step >= 1)
			wtg_store_set_name(v->store, dir->ino, old, in->ino);
		free(old);
		return ret;
	}
	/* an exact-spelling target's record was replaced by the new name */
	if (dst && !dst_other)
		fresh = dst->fresh;
	in->opens++; /* keeps it while it has no name */
	if (dst)
		ret = unname_tree(v, newdir, dst);
	if (!ret)
		ret = unname_tree(v, dir, src);
	if (!ret && (ret = name_tree(v, newdir, newname, in, fresh)) == -ENOMEM)
		name_tree(v, dir, old, in, src_fresh);
	in->opens--;
	free(old);
	return ret;
}

int wtg_view_rename(struct wtg_view *v, uint64_t dirino, const char *name, uint64_t newdirino,
		    const char *newname, unsigned flags)
{
	int ret = check_name(newname);

	if (flags & ~(WTG_VIEW_NOREPLACE | WTG_VIEW_EXCHANGE) ||
	    (flags & WTG_VIEW_NOREPLACE && flags & WTG_VIEW_EXCHANGE))
		return -EINVAL;
	if (ret || (ret = begin_change(v)))
		return ret;
	return end_change(v, rename_locked(v, dirino, name, newdirino, newname, flags));
}

int wtg_view_respell(struct wtg_view *v, uint64_t ino, const char *name, uint64_t *dir_ret,
		     char **old_ret)
{
	size_t len = strlen(name);
	int ret = check_name(name);

	*old_ret = NULL;
	if (ret || (ret = begin_change(v)))
		return ret;
	struct wtg_inode *in = wtg_view_inode(v, ino);
	struct wtg_dentry *de = in ? in->first_name : NULL;
	for (; de; de = de->alias_next)
		if (wtg_name_equal_ci(de->name, de->name_len, name, len))
			break;
	if (!in)
		ret = -ENOENT;
	else if (!de)
		ret = -EINVAL; /* not a change of case */
	else if (!(*old_ret = strdup(de->name)))
		ret = -ENOMEM;
	if (ret)
		return end_change(v, ret);
	else if (wtg_tree_lookup(&v->tree, de->parent, name, len) != de)
		ret = -EEXIST; /* another file has that spelling */
	if (ret) {
		free(*old_ret);
		*old_ret = NULL;
		return end_change(v, ret);
	}
	*dir_ret = de->parent->ino;
	ret = rename_locked(v, *dir_ret, *old_ret, *dir_ret, name, 0);
	if (ret) {
		free(*old_ret);
		*old_ret = NULL;
	}
	return end_change(v, ret);
}

int wtg_view_open(struct wtg_view *v, uint64_t ino)
{
	if (v->read_only) { /* nothing is ever unlinked: no count to keep */
		pthread_rwlock_rdlock(&v->lock);
		bool there = wtg_view_inode(v, ino) != NULL;
		pthread_rwlock_unlock(&v->lock);
		return there ? 0 : -ENOENT;
	}
	pthread_rwlock_wrlock(&v->lock);
	struct wtg_inode *in = wtg_view_inode(v, ino);
	if (in)
		in->opens++;
	pthread_rwlock_unlock(&v->lock);
	return in ? 0 : -ENOENT;
}

int wtg_view_release(struct wtg_view *v, uint64_t ino)
{
	int ret = 0;

	if (v->read_only)
		return 0;
	pthread_rwlock_wrlock(&v->lock);
	struct wtg_inode *in = wtg_tree_inode(&v->tree, ino);
	if (in && in->opens) {
		in->opens--;
		if (!in->opens)
			sums_settle(in);
		if (!v->read_only && !v->error) {
			ret = maybe_gone(v, in);
			if (!ret && !in->gone)
				ret = chunks_store(v, ino);
			note_lost(v, ret);
		}
	}
	pthread_rwlock_unlock(&v->lock);
	return ret;
}

void wtg_view_ref(struct wtg_view *v, struct wtg_inode *in)
{
	if (v->store)
		__atomic_add_fetch(&in->nlookup, 1, __ATOMIC_RELAXED);
}

void wtg_view_forget(struct wtg_view *v, uint64_t ino, uint64_t n)
{
	if (!v->store)
		return;
	pthread_rwlock_wrlock(&v->lock);
	struct wtg_inode *in = wtg_tree_inode(&v->tree, ino);
	if (in) {
		in->nlookup -= n < in->nlookup ? n : in->nlookup;
		maybe_free(v, in);
	}
	pthread_rwlock_unlock(&v->lock);
}

int wtg_view_flush(struct wtg_view *v, uint64_t ino)
{
	int ret = 0;

	if (v->read_only)
		return 0;
	pthread_rwlock_wrlock(&v->lock);
	if (v->error)
		ret = v->error;
	else if (v->pending_since.tv_sec || wtg_store_batch_age_ms(v->store) >= 0 ||
		 v->journal_used)
		ret = commit_locked(v, false, COMMIT_JOURNAL, ino);
	pthread_rwlock_unlock(&v->lock);
	return ret;
}

static struct wtg_stream *find_stream(struct wtg_inode *in, const char *name)
{
	return name ? wtg_inode_named_stream(in, name) : wtg_inode_data(in);
}

/* The stream @name (NULL: unnamed) of the file @ino, made when missing. */
static int file_stream(struct wtg_view *v, uint64_t ino, const char *name,
		       struct wtg_inode **in_ret, struct wtg_stream **s_ret)
{
	struct wtg_inode *in = wtg_view_inode(v, ino);
	struct wtg_stream *s = in ? find_stream(in, name) : NULL;

	if (!in)
		return -ENOENT;
	if (in->dir)
		return -EISDIR;
	if (!s && !(s = wtg_inode_add_stream(in, name, 0, NULL)))
		return -ENOMEM;
	*in_ret = in;
	*s_ret = s;
	return 0;
}

static int write_locked(struct wtg_view *v, struct wtg_inode *in, struct wtg_stream *s,
			const uint8_t *buf, size_t size, uint64_t off)
{
	if (off > INT64_MAX - size)
		return -EFBIG;
	bool summed = sum_follows(s, off);
	size_t done = 0;
	while (done < size) {
		uint64_t pos = off + done, index = pos / CHUNK;
		size_t in_slot = (size_t)(pos % CHUNK), n = CHUNK - in_slot;
		struct chunk_buf *cb;
		if (n > size - done)
			n = size - done;
		bool whole = n == CHUNK;
		size_t had = v->nchunks;
		int ret = chunk_get(v, in->ino, s, index, whole, &cb);
		if (ret) {
			sum_drop(s);
			return ret;
		}
		memcpy(cb->data + in_slot, buf + done, n);
		chunk_dirty(v, cb, (uint32_t)in_slot, (uint32_t)(in_slot + n));
		done += n;
		bool tail = pos + n >= s->size;
		if (pos + n > s->size)
			s->size = pos + n;
		s->delta = true;
		/* a whole chunk goes to a worker to be hashed and compressed
		 * (stored by a later write, or by the commit), else here; so
		 * does the new last chunk of a file being written, where the
		 * close is likely to come next (only the first time: a file
		 * grown by small writes would have each of them wait for it) */
		if (whole && !chunk_enc_submit(v, cb, CHUNK) && (ret = chunk_store(v, cb))) {
			sum_drop(s);
			return ret;
		}
		if (!whole && tail && v->nchunks > had)
			chunk_enc_submit(v, cb, in_slot + n);
	}
	if (summed) {
		wtg_sha1_update(s->sum->ctx, buf, size);
		s->summed += size;
	}
	/* the delta's record of the stream must say its size (the record
	 * makes the delta's slots of it count): a first write, or one that
	 * grows the file, records the inode */
	if (!(in->attributes & NTFS_ATTR_ARCHIVE) || s->size != s->stored_size) {
		set_archive(in);
		return touch(v, in, true);
	}
	/* the bytes and the times alone changed: an fsync's journal row can
	 * carry the times instead of a rewrite of the inode's record */
	in->mtime = in->ctime = now_ntfs();
	return mark_times(v, in);
}

long wtg_view_write(struct wtg_view *v, uint64_t ino, const char *stream, const void *buf,
		    size_t size, uint64_t off)
{
	return wtg_view_write_handle(v, UINT64_MAX, ino, stream, buf, size, off);
}

long wtg_view_write_handle(struct wtg_view *v, uint64_t generation, uint64_t ino,
			   const char *stream, const void *buf, size_t size, uint64_t off)
{
	struct wtg_inode *in;
	struct wtg_stream *s;
	int ret = begin_change(v);

	if (ret)
		return ret;
	if (generation != UINT64_MAX && generation != v->generation)
		return end_change(v, -ESTALE);
	ret = file_stream(v, ino, stream, &in, &s);
	if (!ret)
		ret = write_locked(v, in, s, buf, size, off);
	if (!ret)
		ret = chunks_store_encoded(v);
	ret = end_change(v, ret);
	return ret ? ret : (long)size;
}

static int truncate_locked(struct wtg_view *v, struct wtg_inode *in, struct wtg_stream *s,
			   uint64_t size)
{
	const char *key = stream_key(s);
	int ret = 0;

	if (size > INT64_MAX)
		return -EFBIG;
	if (size < s->summed)
		sum_drop(s);
	if (size < s->size) {
		uint64_t keep = size / CHUNK + (size % CHUNK != 0);
		chunks_drop(v, in->ino, key, keep);
		if (size % CHUNK) {
			/* the slot the new end falls in: zeros past it, so a
			 * later extension reads zeros there */
			struct chunk_buf *cb;
			ret = chunk_get(v, in->ino, s, size / CHUNK, false, &cb);
			if (ret)
				return ret;
			memset(cb->data + size % CHUNK, 0, CHUNK - size % CHUNK);
			chunk_dirty(v, cb, (uint32_t)(size % CHUNK), CHUNK);
			free(cb->orig);
			cb->orig = NULL;
		}
		ret = store_size(v, in, s, size, false);
		if (ret)
			return ret;
	}
	s->size = size;
	s->delta = true;
	set_archive(in);
	return touch(v, in, true);
}

int wtg_view_truncate(struct wtg_view *v, uint64_t ino, const char *stream, uint64_t size)
{
	struct wtg_inode *in;
	struct wtg_stream *s;
	int ret = begin_change(v);

	if (ret)
		return ret;
	ret = file_stream(v, ino, stream, &in, &s);
	if (!ret)
		ret = truncate_locked(v, in, s, size);
	return end_change(v, ret);
}

int wtg_view_set_stream(struct wtg_view *v, uint64_t ino, const char *name, const void *data,
			size_t size, int flags)
{
	int ret = begin_change(v);

	if (ret)
		return ret;
	struct wtg_inode *in = wtg_view_inode(v, ino);
	struct wtg_stream *s = in ? wtg_inode_named_stream(in, name) : NULL;
	if (!in) {
		ret = -ENOENT;
	} else if ((flags & 1) && s) {
		ret = -EEXIST;
	} else if ((flags & 2) && !s) {
		ret = -ENODATA;
	} else if (!s) {
		if (!(s = wtg_inode_add_stream(in, name, 0, NULL)))
			ret = -ENOMEM;
		else
			s->delta = true;
		if (!ret)
			ret = store_size(v, in, s, 0, true);
	} else {
		ret = truncate_locked(v, in, s, 0);
	}
	if (!ret && size)
		ret = write_locked(v, in, s, data, size, 0);
	if (!ret)
		ret = touch(v, in, false);
	return end_change(v, ret);
}

int wtg_view_remove_stream(struct wtg_view *v, uint64_t ino, const char *name)
{
	int ret = begin_change(v);

	if (ret)
		return ret;
	struct wtg_inode *in = wtg_view_inode(v, ino);
	if (!in)
		ret = -ENOENT;
	else if (!wtg_inode_named_stream(in, name))
		ret = -ENODATA;
	if (!ret) {
		chunks_drop(v, ino, name, 0);
		wtg_inode_remove_stream(in, name);
		ret = wtg_store_delete_stream(v->store, ino, name);
	}
	if (!ret)
		ret = touch(v, in, false);
	return end_change(v, ret);
}

/* The start of a metadata change: the exclusive lock and the inode. */
static struct wtg_inode *meta_begin(struct wtg_view *v, uint64_t ino, int *ret)
{
	if ((*ret = begin_change(v)))
		return NULL;
	struct wtg_inode *in = wtg_view_inode(v, ino);
	if (!in)
		*ret = end_change(v, -ENOENT);
	return in;
}

/* Its end: the new ctime, the dirty mark, the lock released. */
static int meta_end(struct wtg_view *v, struct wtg_inode *in, int ret)
{
	if (!ret)
		ret = touch(v, in, false);
	return end_change(v, ret);
}

int wtg_view_set_times(struct wtg_view *v, uint64_t ino, int64_t crtime, int64_t mtime,
		       int64_t atime, int64_t ctime)
{
	int ret = begin_change(v);

	if (ret)
		return ret;
	struct wtg_inode *in = wtg_view_inode(v, ino);
	if (!in)
		return end_change(v, -ENOENT);
	if (crtime >= 0)
		in->crtime = crtime;
	if (mtime >= 0)
		in->mtime = mtime;
	if (atime >= 0)
		in->atime = atime;
	in->ctime = ctime >= 0 ? ctime : now_ntfs();
	return end_change(v, mark_dirty(v, in));
}

int wtg_view_set_attributes(struct wtg_view *v, uint64_t ino, uint32_t attributes)
{
	const uint32_t fixed = NTFS_ATTR_DIRECTORY | NTFS_ATTR_REPARSE_POINT;
	int ret;
	struct wtg_inode *in = meta_begin(v, ino, &ret);

	if (!in)
		return ret;
	in->attributes = (attributes & ~fixed) | (in->attributes & fixed);
	return meta_end(v, in, 0);
}

int wtg_view_set_sd(struct wtg_view *v, uint64_t ino, const void *sd, size_t len)
{
	int ret;

	if (!wtg_sd_valid(sd, len))
		return -EINVAL;
	struct wtg_inode *in = meta_begin(v, ino, &ret);
	if (!in)
		return ret;
	uint32_t id = wtg_tree_intern_sd(&v->tree, sd, len);
	if (id != WTG_NO_SD)
		in->sd = id;
	return meta_end(v, in, id == WTG_NO_SD ? -ENOMEM : 0);
}

int wtg_view_set_reparse(struct wtg_view *v, uint64_t ino, const void *data, size_t len)
{
	uint8_t *copy = NULL;
	int ret;

	if (data) {
		/* a header whose length says what follows, at most 16 KiB */
		const uint8_t *p = data;
		if (len < 8 || len > 16384 || (size_t)(p[4] | p[5] << 8) != len - 8)
			return -EINVAL;
		if (!(copy = malloc(len)))
			return -ENOMEM;
		memcpy(copy, data, len);
	}
	struct wtg_inode *in = meta_begin(v, ino, &ret);
	if (!in) {
		free(copy);
		return ret;
	}
	if (!data && !(in->attributes & NTFS_ATTR_REPARSE_POINT))
		ret = -ENODATA;
	else if (data && in->dir && in->dir->count)
		ret = -ENOTEMPTY; /* NTFS: a directory that is a reparse point is empty */
	if (ret)
		free(copy);
	else
		set_reparse(in, copy, (uint32_t)len);
	return meta_end(v, in, ret);
}

static bool dos_name_ok(const char *name)
{
	size_t len = strlen(name);
	const char *dot = strchr(name, '.');
	size_t base = dot ? (size_t)(dot - name) : len;

	if (!wtg_name_windows_ok(name, len) || base == 0 || base > 8 ||
	    (dot && (len - base - 1 > 3 || strchr(dot + 1, '.'))))
		return false;
	for (const char *p = name; *p; p++)
		if ((unsigned char)*p >= 0x80 || (*p >= 'a' && *p <= 'z') || strchr(" +,;=[]", *p))
			return false;
	return true;
}

/* True when a name of @dir other than @de is @dos, long or short. */
static bool dos_name_taken(const struct wtg_tree *t, struct wtg_inode *dir,
			   const struct wtg_dentry *de, const char *dos)
{
	const struct wtg_dentry *same = wtg_tree_lookup(t, dir, dos, strlen(dos));

	if (same && same != de)
		return true;
	for (uint32_t i = 0; i < dir->dir->count; i++) {
		const struct wtg_dentry *o = dir->dir->entries[i];
		if (o != de && o->dos_name && !strcasecmp(o->dos_name, dos))
			return true;
	}
	return false;
}

int wtg_view_set_dos_name(struct wtg_view *v, uint64_t dirino, const char *name, const char *dos)
{
	int ret;

	if (dos && !dos_name_ok(dos))
		return -EINVAL;
	if ((ret = begin_change(v)))
		return ret;
	struct wtg_inode *dir = dir_inode(v, dirino, &ret);
	struct wtg_dentry *de = dir ? wtg_tree_lookup(&v->tree, dir, name, strlen(name)) : NULL;
	if (dir && !de)
		ret = -ENOENT;
	if (ret)
		return end_change(v, ret);
	struct wtg_inode *in = de->inode;
	if (!dos && !de->dos_name)
		ret = -ENODATA;
	else if (dos && de->dos_name && !strcmp(dos, de->dos_name))
		ret = 0; /* already so: nothing to record */
	else if (dos && dos_name_taken(&v->tree, dir, de, dos))
		ret = -EEXIST;
	else if (!(ret = wtg_store_set_name_dos(v->store, dir->ino, de->name, in->ino, dos)))
		ret = wtg_dentry_set_dos_name(de, dos);
	return meta_end(v, in, ret);
}

enum blob { BLOB_OBJECT_ID, BLOB_EA };

/* Replaces the inode's object id or EA with a copy of @data (NULL: removes
 * it; -ENODATA when there is none to remove). */
static int set_blob(struct wtg_view *v, uint64_t ino, enum blob which, const void *data,
		    size_t len)
{
	uint8_t *copy = NULL;
	int ret;

	if (data && !(copy = malloc(len)))
		return -ENOMEM;
	if (copy)
		memcpy(copy, data, len);
	struct wtg_inode *in = meta_begin(v, ino, &ret);
	if (!in) {
		free(copy);
		return ret;
	}
	uint8_t **blob = which == BLOB_EA ? &in->ea : &in->object_id;
	uint32_t *blob_len = which == BLOB_EA ? &in->ea_len : &in->object_id_len;
	if (!data && !*blob) {
		free(copy);
		return meta_end(v, in, -ENODATA);
	}
	free(*blob);
	*blob = copy;
	*blob_len = copy ? (uint32_t)len : 0;
	return meta_end(v, in, 0);
}

int wtg_view_set_object_id(struct wtg_view *v, uint64_t ino, const void *data, size_t len)
{
	if (data && (len < 16 || len > 64))
		return -EINVAL;
	return set_blob(v, ino, BLOB_OBJECT_ID, data, len);
}

int wtg_view_set_ea(struct wtg_view *v, uint64_t ino, const void *data, size_t len)
{
	if (data && !wtg_ea_valid(data, len))
		return -EINVAL;
	return set_blob(v, ino, BLOB_EA, data, len);
}

int wtg_view_put_ea_u32(struct wtg_view *v, uint64_t ino, const char *const *names,
			const uint32_t *values, size_t n)
{
	int ret;
	struct wtg_inode *in = meta_begin(v, ino, &ret);

	if (!in)
		return ret;
	uint8_t *ea;
	size_t len;
	/* a malformed $EA of the base gives way to the new entries alone */
	bool keep = in->ea && wtg_ea_valid(in->ea, in->ea_len);
	ret = wtg_ea_put_u32(keep ? in->ea : NULL, keep ? in->ea_len : 0, names, values, n, &ea,
			     &len);
	if (!ret) {
		free(in->ea);
		in->ea = ea;
		in->ea_len = (uint32_t)len;
	}
	return meta_end(v, in, ret);
}

/* ---- snapshots and rollbacks of a mounted delta ---- */

int wtg_view_snapshot(struct wtg_view *v, const char *name, const char *message)
{
	int ret = begin_change(v);

	if (ret)
		return ret;
	/* Under the exclusive lock: every change that returned is in memory,
	 * none is half done, and the commit puts all of it in the layer the
	 * snapshot seals.  The snapshot's own durable commit syncs the log,
	 * this one with it: one fdatasync, not two. */
	ret = commit_locked(v, false, COMMIT_FOLD, 0);
	if (!ret)
		ret = wtg_store_snapshot(v->store, name, message);
	pthread_rwlock_unlock(&v->lock);
	return ret;
}

void wtg_view_changes_release(struct wtg_view_changes *c)
{
	for (size_t i = 0; i < c->nentries; i++)
		free(c->entries[i].name);
	free(c->entries);
	free(c->inodes);
	memset(c, 0, sizeof(*c));
}

struct reset {
	struct wtg_view *v;
	struct wtg_view_changes *c;
	size_t inodes_cap, entries_cap;
	struct wtg_store_version head; /* the new stack, for names with their DOS names */
	uint64_t *rebuilt; /* inodes whose streams reset_inode rebuilt, sorted */
	size_t nrebuilt;
	uint64_t *based; /* inodes now as the base has them (sorted at the end) */
	size_t nbased, based_cap;
};

static int cmp_u64(const void *a, const void *b);

static int note_based(struct reset *r, uint64_t ino)
{
	if (wtg_grow((void **)&r->based, &r->based_cap, r->nbased, sizeof(*r->based)))
		return -ENOMEM;
	r->based[r->nbased++] = ino;
	return 0;
}

static int note_inode(struct reset *r, uint64_t ino)
{
	struct wtg_view_changes *c = r->c;

	if (c->ninodes && c->inodes[c->ninodes - 1] == ino)
		return 0;
	if (wtg_grow((void **)&c->inodes, &r->inodes_cap, c->ninodes, sizeof(*c->inodes)))
		return -ENOMEM;
	c->inodes[c->ninodes++] = ino;
	return 0;
}

static int note_entry(struct reset *r, uint64_t dir, const char *name)
{
	struct wtg_view_changes *c = r->c;

	if (wtg_grow((void **)&c->entries, &r->entries_cap, c->nentries, sizeof(*c->entries)))
		return -ENOMEM;
	if (!(c->entries[c->nentries].name = strdup(name)))
		return -ENOMEM;
	c->entries[c->nentries++].dir = dir;
	return note_inode(r, dir);
}

static void *copy_of(const void *p, size_t len)
{
	void *q = p ? malloc(len ? len : 1) : NULL;
	if (q && len)
		memcpy(q, p, len);
	return q;
}

static int add_stream_record(void *arg, const char *name, uint64_t size, bool deleted)
{
	struct wtg_inode *in = arg;
	const char *n = name[0] ? name : NULL;
	struct wtg_stream *s = find_stream(in, n);

	if (deleted) {
		if (s)
			wtg_inode_remove_stream(in, n);
		return 0;
	}
	if (!s && !(s = wtg_inode_add_stream(in, n, 0, NULL)))
		return -ENOMEM;
	s->size = s->stored_size = size;
	s->delta = true;
	s->usage = 0;
	return 0;
}

/* Every stream of @in as the base (@b, or none) and the new stack have it:
 * a deleted inode's records of its streams go with it, so nothing else
 * says what a rollback must bring back. */
static int rebuild_streams(struct wtg_view *v, struct wtg_inode *in, const struct wtg_inode *b)
{
	while (in->nstreams)
		wtg_inode_remove_stream(in, in->streams[in->nstreams - 1].name);
	for (uint32_t i = 0; b && i < b->nstreams; i++) {
		const struct wtg_stream *bs = &b->streams[i];
		if (!wtg_inode_add_stream(in, bs->name, bs->size, bs->blob))
			return -ENOMEM;
	}
	return wtg_store_list_streams(v->store, in->ino, add_stream_record, in);
}

/* The inode @ino as the new stack says, else as the base had it. */
static int reset_inode(void *arg, uint64_t ino, const char *unused)
{
	struct reset *r = arg;
	struct wtg_view *v = r->v;
	struct wtg_inode *in = wtg_tree_inode(&v->tree, ino);
	const struct wtg_inode *b = wtg_tree_inode(&v->base, ino);
	struct wtg_store_inode si;
	enum wtg_store_state state;
	int ret = wtg_store_get_inode(v->store, ino, &state, &si);

	(void)unused;
	if (ret)
		return ret;
	if (state == WTG_STORE_PRESENT) {
		if (!in && !(in = wtg_tree_new_inode_at(&v->tree, ino,
							si.attributes & NTFS_ATTR_DIRECTORY))) {
			wtg_store_inode_release(&si);
			return -ENOMEM;
		}
		uint32_t sd = WTG_NO_SD;
		static const uint8_t none[WTG_STORE_HASH_LEN];
		if (memcmp(si.sd_hash, none, sizeof(none))) {
			uint8_t *data;
			size_t len;
			ret = wtg_store_get_sd(v->store, si.sd_hash, &data, &len);
			if (!ret) {
				sd = wtg_tree_intern_sd(&v->tree, data, len);
				free(data);
				if (sd == WTG_NO_SD)
					ret = -ENOMEM;
			}
		}
		if (!ret) {
			in->crtime = si.crtime;
			in->mtime = si.mtime;
			in->atime = si.atime;
			in->ctime = si.ctime;
			in->sd = sd;
			set_reparse(in, si.reparse, si.reparse_len); /* takes it */
			si.reparse = NULL;
			in->attributes = si.attributes;
			free(in->object_id);
			in->object_id = si.object_id;
			in->object_id_len = si.object_id ? si.object_id_len : 0;
			si.object_id = NULL;
			free(in->ea);
			in->ea = si.ea;
			in->ea_len = si.ea ? si.ea_len : 0;
			si.ea = NULL;
			in->gone = false;
		}
		wtg_store_inode_release(&si);
		/* its streams, also those of layers both stacks share */
		if (!ret)
			ret = rebuild_streams(v, in, b);
		if (ret)
			return ret;
	} else if (state == WTG_STORE_BASE && b) {
		/* freed when its last name went: back as the base has it */
		if (!in && !(in = wtg_tree_new_inode_at(&v->tree, ino, b->dir != NULL)))
			return -ENOMEM;
		uint8_t *rp = b->reparse ? copy_of(b->reparse, b->reparse_len) : NULL;
		uint8_t *oid = b->object_id ? copy_of(b->object_id, b->object_id_len) : NULL;
		uint8_t *ea = b->ea ? copy_of(b->ea, b->ea_len) : NULL;
		if ((b->reparse && !rp) || (b->object_id && !oid) || (b->ea && !ea)) {
			free(rp);
			free(oid);
			free(ea);
			return -ENOMEM;
		}
		free(in->ea);
		in->ea = ea;
		in->ea_len = ea ? b->ea_len : 0;
		set_reparse(in, rp, b->reparse_len);
		in->reparse_blob = b->reparse_blob;
		in->reparse_blob_len = b->reparse_blob_len;
		in->reparse_tag = b->reparse_tag;
		in->reparse_made_here = false;
		in->attributes = b->attributes;
		in->crtime = b->crtime;
		in->mtime = b->mtime;
		in->atime = b->atime;
		in->ctime = b->ctime;
		in->sd = b->sd;
		free(in->object_id);
		in->object_id = oid;
		in->object_id_len = oid ? b->object_id_len : 0;
		in->gone = false;
		if ((ret = note_based(r, ino)) || (ret = rebuild_streams(v, in, b)))
			return ret;
	} else if (in) {
		in->gone = true; /* deleted, or made in what was left */
	}
	return in ? note_inode(r, ino) : 0;
}

/* The stream as the new stack says, else as the base had it. */
static int reset_stream(void *arg, uint64_t ino, const char *key)
{
	struct reset *r = arg;
	struct wtg_view *v = r->v;
	struct wtg_inode *in = wtg_tree_inode(&v->tree, ino);
	const struct wtg_inode *b = wtg_tree_inode(&v->base, ino);
	const char *name = key[0] ? key : NULL;
	const struct wtg_stream *bs = b ? find_stream((struct wtg_inode *)b, name) : NULL;
	enum wtg_store_state state;
	uint64_t size;

	if (r->nrebuilt && bsearch(&ino, r->rebuilt, r->nrebuilt, sizeof(*r->rebuilt), cmp_u64))
		return 0; /* all its streams are as the new stack says already */
	int ret = wtg_store_get_stream(v->store, ino, key, &state, &size);

	if (ret || !in)
		return ret;
	if (state == WTG_STORE_DELETED || (state == WTG_STORE_BASE && !bs)) {
		wtg_inode_remove_stream(in, name);
		return note_inode(r, ino);
	}
	struct wtg_stream *s = find_stream(in, name);
	if (!s && !(s = wtg_inode_add_stream(in, name, 0, NULL)))
		return -ENOMEM;
	s->blob = bs ? bs->blob : NULL;
	s->base_size = bs ? bs->base_size : 0;
	s->usage = 0;
	if (state == WTG_STORE_PRESENT) {
		s->size = s->stored_size = size;
		s->delta = true;
	} else {
		s->size = bs->size;
		s->stored_size = 0;
		s->delta = false;
	}
	return note_inode(r, ino);
}

static int reset_data(void *arg, uint64_t ino, const char *key)
{
	(void)key;
	return note_inode(arg, ino);
}

/* The name @name of @dir as the new stack says, else as the base had it. */
static int reset_name(void *arg, uint64_t dirino, const char *name)
{
	struct reset *r = arg;
	struct wtg_view *v = r->v;
	struct wtg_inode *dir = wtg_tree_inode(&v->tree, dirino);
	enum wtg_store_state state;
	uint64_t ino = 0;
	size_t len = strlen(name);
	char *rec_dos = NULL;
	int ret = wtg_store_get_name_dos_at(v->store, &r->head, dirino, name, &state, &ino,
					    &rec_dos);

	if (ret || !dir || !dir->dir) {
		free(rec_dos);
		return ret;
	}
	struct wtg_inode *target = NULL;
	const char *dos = NULL;
	if (state == WTG_STORE_PRESENT) {
		target = wtg_tree_inode(&v->tree, ino);
		dos = rec_dos;
	} else if (state == WTG_STORE_BASE) {
		struct wtg_inode *bdir = wtg_tree_inode(&v->base, dirino);
		struct wtg_dentry *bde = bdir && bdir->dir
					     ? wtg_tree_lookup(&v->base, bdir, name, len)
					     : NULL;
		if (bde && bde->name_len == len && !memcmp(bde->name, name, len)) {
			target = wtg_tree_inode(&v->tree, bde->inode->ino);
			dos = wtg_dentry_dos_name(bde);
		}
	}
	struct wtg_dentry *de = wtg_tree_lookup(&v->tree, dir, name, len);
	if (de && !(de->name_len == len && !memcmp(de->name, name, len)))
		de = NULL;
	if (de && de->inode == target) {
		/* the same name of the same inode: only its DOS name may differ */
		const char *now = wtg_dentry_dos_name(de);
		if (!dos == !now && (!dos || !strcmp(dos, now))) {
			free(rec_dos);
			return 0;
		}
		ret = wtg_dentry_set_dos_name(de, dos);
		free(rec_dos);
		if (!ret)
			ret = note_inode(r, target->ino);
		return ret ? ret : note_entry(r, dirino, name);
	}
	if (de && !(ret = note_inode(r, de->inode->ino)))
		wtg_tree_unlink(&v->tree, dir, de);
	if (!ret && target)
		ret = wtg_tree_link(&v->tree, dir, name, len, target);
	if (!ret && target && dos)
		ret = wtg_dentry_set_dos_name(dir->dir->entries[dir->dir->count - 1], dos);
	free(rec_dos);
	if (!ret && target)
		ret = note_inode(r, target->ino);
	return ret ? ret : note_entry(r, dirino, name);
}

static int in_set(const int64_t *set, size_t n, int64_t x)
{
	for (size_t i = 0; i < n; i++)
		if (set[i] == x)
			return 1;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int wtg_view_rollback(struct wtg_view *v, const char *name, char **kept_ret,
		      struct wtg_view_changes *changes)
{
	struct wtg_view_changes c = {0};
	struct reset r = {.v = v, .c = &c};
	int64_t *before = NULL, *after = NULL, *diff = NULL;
	size_t nbefore = 0, nafter = 0, ndiff = 0;
	int ret = begin_change(v);

	if (kept_ret)
		*kept_ret = NULL;
	if (ret)
		return ret;
	if (!v->has_base) {
		ret = -EOPNOTSUPP;
		goto out;
	}
	sums_drop_all(v);
	ret = commit_locked(v, true, COMMIT_FOLD, 0);
	if (!ret)
		ret = wtg_store_stack(v->store, &before, &nbefore);
	if (!ret)
		ret = wtg_store_rollback(v->store, name, kept_ret);
	if (ret)
		goto out;
	/* From here on the delta says the new tree: what fails below leaves
	 * the mount showing something else, so it stops taking changes. */
	ret = wtg_store_stack(v->store, &after, &nafter);
	if (!ret)
		ret = wtg_store_version_open(v->store, "HEAD", &r.head);
	/* the lookups below in one transaction (they only read): SQLite takes
	 * its locks and its view of the log once, not once per key */
	bool reading = false;
	if (!ret)
		reading = (ret = wtg_store_begin(v->store)) == 0;
	if (!ret && !(diff = malloc((nbefore + nafter) * sizeof(*diff) + 1)))
		ret = -ENOMEM;
	for (size_t i = 0; !ret && i < nbefore; i++)
		if (!in_set(after, nafter, before[i]))
			diff[ndiff++] = before[i];
	for (size_t i = 0; !ret && i < nafter; i++)
		if (!in_set(before, nbefore, after[i]))
			diff[ndiff++] = after[i];
	/* inodes first (names point at them), names, then streams */
	if (!ret)
		ret = wtg_store_each_key(v->store, diff, ndiff, WTG_STORE_KEY_INODES, reset_inode, &r);
	/* what reset_inode touched so far had its streams rebuilt */
	if (!ret && c.ninodes && !(r.rebuilt = malloc(c.ninodes * sizeof(*r.rebuilt))))
		ret = -ENOMEM;
	if (!ret && c.ninodes) {
		memcpy(r.rebuilt, c.inodes, c.ninodes * sizeof(*r.rebuilt));
		r.nrebuilt = c.ninodes;
		qsort(r.rebuilt, r.nrebuilt, sizeof(*r.rebuilt), cmp_u64);
	}
	if (!ret)
		ret = wtg_store_each_key(v->store, diff, ndiff, WTG_STORE_KEY_NAMES, reset_name, &r);
	if (!ret)
		ret = wtg_store_each_key(v->store, diff, ndiff, WTG_STORE_KEY_STREAMS, reset_stream,
					 &r);
	if (!ret)
		ret = wtg_store_each_key(v->store, diff, ndiff, WTG_STORE_KEY_EXTENTS, reset_data,
					 &r);
	/* files open across the rollback: the kernel must not serve their old
	 * pages to a stale handle, which gets ESTALE from here */
	for (uint64_t i = 0; !ret && i < v->tree.ninodes; i++)
		if (v->tree.inodes[i] && v->tree.inodes[i]->opens)
			ret = note_inode(&r, v->tree.inodes[i]->ino);
	if (!ret && c.ninodes) {
		qsort(c.inodes, c.ninodes, sizeof(*c.inodes), cmp_u64);
		size_t n = 0;
		for (size_t i = 0; i < c.ninodes; i++)
			if (!n || c.inodes[n - 1] != c.inodes[i])
				c.inodes[n++] = c.inodes[i];
		c.ninodes = n;
		if (r.nbased)
			qsort(r.based, r.nbased, sizeof(*r.based), cmp_u64);
		/* an inode is there when a name reaches it; NTFS's separate DOS
		 * names count as the base or the record has them */
		for (size_t i = 0; i < n; i++) {
			struct wtg_inode *in = wtg_tree_inode(&v->tree, c.inodes[i]);
			if (!in)
				continue;
			if (in->ino != WTG_ROOT_INO)
				in->gone = in->nlink == 0;
			if (in->gone && !in->opens && !in->nlookup && (!in->dir || !in->dir->count)) {
				maybe_free(v, in); /* the kernel holds nothing of it */
				continue;
			}
		}
	}
	/* numbers freed in the layer left may be taken in the other branch:
	 * new inodes take numbers above every one the file knows */
	uint64_t max = 0;
	v->nfree = 0;
	if (!ret)
		ret = wtg_store_max_ino(v->store, &max);
	if (reading)
		wtg_store_rollback_batch(v->store); /* nothing was written */
	if (!ret && max + 1 > v->next_ino)
		v->next_ino = max + 1;
	if (ret) {
		wtg_error("'%s': rolled back to '%s', but the mount cannot show it (%s); unmount "
			  "and mount again",
			  v->delta_path, name, strerror(-ret));
		v->error = -EIO;
	}
	__atomic_store_n(&v->generation, v->generation + 1, __ATOMIC_RELEASE);
out:
	pthread_rwlock_unlock(&v->lock);
	free(before);
	free(after);
	free(diff);
	free(r.based);
	free(r.rebuilt);
	wtg_store_version_release(&r.head);
	if (changes && !ret)
		*changes = c;
	else
		wtg_view_changes_release(&c);
	return ret;
}

/* ---- what a delta takes from its base ---- */

struct base_check {
	struct wtg_view *v;
	uint64_t nbase; /* inode numbers the base has */
	uint64_t streams, sums, problems;
	uint8_t *buf;
};

static int base_problem(struct base_check *c, uint64_t ino, const char *what)
{
	char path[1024] = "";
	struct wtg_inode *in = wtg_tree_inode(&c->v->tree, ino);

	if (in)
		wtg_tree_path(&c->v->tree, in, path, sizeof(path));
	if (++c->problems <= 20)
		wtg_error("'%s': base inode %llu%s%s%s: %s", c->v->delta_path,
			  (unsigned long long)ino, in ? " ('" : "", path, in ? "')" : "", what);
	return 0;
}

/* A record about base inode @ino needs the base to have it. */
static bool base_has(struct base_check *c, uint64_t ino)
{
	return ino > c->nbase || wtg_tree_inode(&c->v->tree, ino) != NULL;
}

static int check_base_name(void *arg, uint64_t dir, const char *name)
{
	struct base_check *c = arg;

	(void)name;
	return base_has(c, dir) ? 0 : base_problem(c, dir, "a name is in it, but the base has no "
							 "such directory");
}

static int check_base_inode(void *arg, uint64_t ino, const char *unused)
{
	struct base_check *c = arg;

	(void)unused;
	return base_has(c, ino) ? 0 : base_problem(c, ino, "a record is about it, but the base "
							 "does not have it");
}

/* Reads the base's bytes of a stream a layer builds on, all of them. */
static int check_base_stream(void *arg, uint64_t ino, const char *key)
{
	struct base_check *c = arg;
	struct wtg_inode *in = wtg_tree_inode(&c->v->tree, ino);

	if (!base_has(c, ino))
		return check_base_inode(arg, ino, NULL);
	if (!in)
		return 0; /* made in the delta */
	struct wtg_stream *s = find_stream(in, key[0] ? key : NULL);
	if (!s || !s->blob || s->delta)
		return 0; /* none in the base, or read already */
	s->delta = true; /* this tree is ours alone: the mark of a stream read */
	c->streams++;
	for (uint64_t off = 0; off < s->base_size;) {
		long n = wtg_tree_read(&c->v->tree, s, c->buf, CHUNK, off);
		if (n <= 0) {
			char what[600];
			snprintf(what, sizeof(what), "its stream '%s' cannot be read whole (%s)",
				 key, n < 0 ? strerror((int)-n) : "shorter than it says");
			return base_problem(c, ino, what);
		}
		off += (uint64_t)n;
	}
	return 0;
}

/*
 * A kept stream sum against the bytes it names (in its layer, read with
 * the base's): a sum whose fingerprint no longer fits there was put for
 * bytes that changed since, and is left (it never matches again).
 */
static int check_sum(struct base_check *c, const struct wtg_store_sum *sum)
{
	struct wtg_view *v = c->v;
	struct wtg_store_version ver;
	uint8_t fp[WTG_STORE_HASH_LEN], sha1[WTG_SHA1_LEN];
	int ret = wtg_store_version_of_layer(v->store, sum->layer, &ver);

	if (ret)
		return ret;
	ret = wtg_store_stream_fingerprint(v->store, &ver, sum->ino, sum->stream, sum->size, fp);
	if (ret || memcmp(fp, sum->fp, sizeof(fp))) {
		wtg_store_version_release(&ver);
		return ret;
	}
	struct wtg_inode *in = wtg_tree_inode(&v->tree, sum->ino);
	struct wtg_stream *s = in ? find_stream(in, sum->stream[0] ? sum->stream : NULL) : NULL;
	struct wtg_sha1 *h = wtg_sha1_new();
	if (!h)
		ret = -ENOMEM;
	c->sums++;
	for (uint64_t i = 0, off = 0; !ret && off < sum->size; i++, off += CHUNK) {
		enum wtg_store_state state;
		uint8_t key[WTG_STORE_HASH_LEN];
		size_t got = 0, len = sum->size - off < CHUNK ? (size_t)(sum->size - off) : CHUNK;
		memset(c->buf, 0, CHUNK);
		ret = wtg_store_get_extent_at(v->store, &ver, sum->ino, sum->stream, i, &state, key);
		if (!ret && state == WTG_STORE_PRESENT)
			ret = wtg_store_get_chunk(v->store, key, c->buf, &got);
		else if (!ret && state == WTG_STORE_BASE && s) {
			long n = read_base_slot(v, s, i, c->buf);
			ret = n < 0 ? (int)n : 0;
		}
		if (!ret)
			wtg_sha1_update(h, c->buf, len);
	}
	wtg_store_version_release(&ver);
	if (!h)
		return ret;
	wtg_sha1_final(h, sha1);
	if (ret)
		return ret;
	if (memcmp(sha1, sum->sha1, sizeof(sha1))) {
		char what[600];
		snprintf(what, sizeof(what), "the SHA-1 a mount kept of its stream '%s' (layer %lld) "
			 "is not its bytes' (an export would write a wrong blob)",
			 sum->stream, (long long)sum->layer);
		base_problem(c, sum->ino, what);
	}
	return 0;
}

int wtg_view_verify_base(const char *path, const char *base_path,
			 const struct wtg_source_options *opt, uint64_t *streams_ret,
			 uint64_t *sums_ret, uint64_t *problems_ret)
{
	struct wtg_view *v = view_new();
	struct wtg_store_options so = {.read_only = true};
	struct wtg_store_layer *layers = NULL;
	int64_t *ids = NULL;
	size_t n = 0;

	*streams_ret = *sums_ret = *problems_ret = 0;
	if (!v || !(v->delta_path = strdup(path))) {
		free(v);
		return -ENOMEM;
	}
	v->read_only = true;
	struct base_check c = {.v = v, .buf = malloc(CHUNK)};
	int ret = c.buf ? wtg_store_open(path, &so, &v->store) : -ENOMEM;
	if (!ret)
		ret = open_base(v, base_path, opt);
	if (!ret)
		ret = wtg_store_list_layers(v->store, &layers, &n);
	if (!ret && !(ids = malloc((n ? n : 1) * sizeof(*ids))))
		ret = -ENOMEM;
	for (size_t i = 0; !ret && i < n; i++)
		ids[i] = layers[i].id;
	c.nbase = v->tree.ninodes;
	if (!ret)
		ret = wtg_store_each_key(v->store, ids, n, WTG_STORE_KEY_NAMES, check_base_name, &c);
	if (!ret)
		ret = wtg_store_each_key(v->store, ids, n, WTG_STORE_KEY_INODES, check_base_inode,
					 &c);
	if (!ret)
		ret = wtg_store_each_key(v->store, ids, n, WTG_STORE_KEY_STREAMS, check_base_stream,
					 &c);
	if (!ret)
		ret = wtg_store_each_key(v->store, ids, n, WTG_STORE_KEY_EXTENTS, check_base_stream,
					 &c);
	/* the sums of the layers there are (gc drops the others) */
	struct wtg_store_sum *sums = NULL;
	size_t nsums = 0;
	if (!ret)
		ret = wtg_store_list_sums(v->store, &sums, &nsums);
	for (size_t i = 0; !ret && i < nsums; i++)
		for (size_t k = 0; k < n; k++)
			if (ids[k] == sums[i].layer) {
				ret = check_sum(&c, &sums[i]);
				break;
			}
	wtg_store_sums_free(sums, nsums);
	wtg_store_layers_free(layers, n);
	free(ids);
	free(c.buf);
	if (v->store)
		wtg_store_close(v->store);
	view_free(v);
	*streams_ret = c.streams;
	*sums_ret = c.sums;
	*problems_ret = c.problems;
	if (ret)
		return ret;
	return c.problems ? -EIO : 0;
}
