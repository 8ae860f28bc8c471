/*
 * The NTFS source: libntfs-3g's reading side (src/ntfs_write.c is its
 * writing side) over the device of src/ntfs_device.c, which reads any byte
 * range, so a volume inside a VHDX, a raw disk image or a block device
 * reads the same way.  The whole tree is loaded at
 * open, as the WIM source does; data is read per request.
 *
 * libntfs-3g has no locking of its own: one mutex per volume serialises
 * every call into it.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <ntfs-3g/types.h>
#include <ntfs-3g/attrib.h>
#include <ntfs-3g/device.h>
#include <ntfs-3g/dir.h>
#include <ntfs-3g/ea.h>
#include <ntfs-3g/inode.h>
#include <ntfs-3g/layout.h>
#include <ntfs-3g/logging.h>
#include <ntfs-3g/object_id.h>
#include <ntfs-3g/reparse.h>
#include <ntfs-3g/security.h>
#include <ntfs-3g/volume.h>

#include "wtgfs/log.h"
#include "wtgfs/names.h"
#include "wtgfs/ntfs_device.h"
#include "wtgfs/ntfs.h"
#include "wtgfs/ntfs_source.h"
#include "wtgfs/source.h"
#include "wtgfs/tree.h"

bool wtg_ntfs_probe(wtg_volume_read_fn read, void *ctx)
{
	uint8_t boot[512];

	return read(ctx, boot, sizeof(boot), 0) == 0 && !memcmp(boot + 3, "NTFS    ", 8) &&
	       boot[510] == 0x55 && boot[511] == 0xAA;
}

/* Mounts the range read-only; the device belongs to the volume after. */
static ntfs_volume *mount_range(struct wtg_ntfs_range *r, const char *what)
{
	if (!wtg_ntfs_probe(r->read, r->ctx)) {
		wtg_error("'%s': not an NTFS volume", what);
		errno = EINVAL;
		return NULL;
	}
	struct ntfs_device *dev = wtg_ntfs_device_new(r, what);
	if (!dev)
		return NULL;
	ntfs_volume *vol = ntfs_device_mount(dev, NTFS_MNT_RDONLY);
	if (!vol) {
		int err = errno;
		wtg_error("'%s': cannot read this NTFS volume: %s", what, strerror(err));
		ntfs_device_free(dev);
		errno = err;
	}
	return vol;
}

/* ---- the source ---- */

struct wtg_blob {
	uint64_t mft_no;
	ntfschar *name; /* NULL: the unnamed stream */
	int name_len;
	bool wof; /* compressed by Windows' WOF: not readable here */
	bool reported;
	char *path; /* for messages */
	struct wtg_blob *next;
};

struct mft_map_entry {
	uint64_t mft_no;
	struct wtg_inode *inode;
	uint16_t ntfs_links;
	struct mft_map_entry *next;
};

struct ntfs_source {
	struct wtg_source base;
	struct wtg_ntfs_range range;
	void (*release)(void *ctx);
	pthread_mutex_t lock;
	ntfs_volume *vol;
	struct wtg_blob *blobs;
	uint64_t skipped;
};

struct entry {
	char *name;
	uint64_t mref;
	int type; /* FILE_NAME_POSIX, _WIN32, _DOS or _WIN32_AND_DOS */
};

struct entry_list {
	struct entry *v;
	size_t n, cap;
	struct entry **dos; /* the DOS entries, by MFT record number */
	size_t ndos;
	bool root;
	int err;
	const char *path; /* the directory's, for messages */
	uint64_t refused; /* names that cannot be shown */
};

static int collect(void *arg, const ntfschar *name, const int name_len, const int name_type,
		   const s64 pos, const MFT_REF mref, const unsigned dt_type)
{
	struct entry_list *l = arg;
	char buf[1024];

	long n = wtg_utf16le_to_utf8((const uint8_t *)name, (size_t)name_len, buf, sizeof(buf));
	if (n < 0)
		return 0;
	if (memchr(buf, '\0', (size_t)n)) {
		/* no POSIX name holds a NUL, and cut there it would be another
		 * name, maybe one the directory has: refuse it, spelled out */
		char shown[2 * sizeof(buf)];
		size_t o = 0;
		for (long i = 0; i < n && o + 3 < sizeof(shown); i++) {
			unsigned char c = (unsigned char)buf[i];
			if (c == 0) {
				shown[o++] = '\\';
				shown[o++] = '0';
			} else {
				shown[o++] = c < 0x20 || c == 0x7F ? '?' : (char)c;
			}
		}
		shown[o] = '\0';
		if (name_type != FILE_NAME_DOS) {
			wtg_warning("'%s': a name holding a NUL character ('%s'); not shown",
				    *l->path ? l->path : "/", shown);
			l->refused++;
		}
		return 0;
	}
	if (!strcmp(buf, ".") || !strcmp(buf, ".."))
		return 0;
	/* the volume's own files: $MFT, $Bitmap, ..., $Extend */
	if (l->root && MREF(mref) < FILE_first_user && buf[0] == '$')
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		struct entry *v = realloc(l->v, cap * sizeof(*v));
		if (!v) {
			l->err = -ENOMEM;
			return -1;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n].name = strndup(buf, (size_t)n);
	l->v[l->n].mref = mref;
	l->v[l->n].type = name_type;
	if (!l->v[l->n].name) {
		l->err = -ENOMEM;
		return -1;
	}
	l->n++;
	return 0;
}

static int by_record(const void *a, const void *b)
{
	uint64_t x = MREF((*(struct entry *const *)a)->mref);
	uint64_t y = MREF((*(struct entry *const *)b)->mref);

	return x < y ? -1 : x > y;
}

/* Indexes the DOS entries of a listed directory by record number. */
static int index_dos_names(struct entry_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		l->ndos += l->v[i].type == FILE_NAME_DOS;
	if (!l->ndos)
		return 0;
	if (!(l->dos = malloc(l->ndos * sizeof(*l->dos))))
		return -ENOMEM;
	for (size_t i = 0, j = 0; i < l->n; i++)
		if (l->v[i].type == FILE_NAME_DOS)
			l->dos[j++] = &l->v[i];
	qsort(l->dos, l->ndos, sizeof(*l->dos), by_record);
	return 0;
}

/* The DOS name of the entry @e: a Win32 name's short name is the DOS
 * FILE_NAME of the same record in the same directory; a name valid in both
 * namespaces is its own.  A POSIX name has none. */
static const char *dos_name_of(const struct entry_list *l, const struct entry *e)
{
	if (e->type == FILE_NAME_WIN32_AND_DOS)
		return e->name;
	if (e->type != FILE_NAME_WIN32 || !l->ndos)
		return NULL;
	const struct entry key = {.mref = e->mref}, *kp = &key;
	struct entry **hit = bsearch(&kp, l->dos, l->ndos, sizeof(*l->dos), by_record);
	return hit ? (*hit)->name : NULL;
}

/* A getter of ntfs-3g's xattr family into a fresh buffer; NULL when the
 * value is absent. */
static uint8_t *get_value(int (*get)(ntfs_inode *, char *, size_t), ntfs_inode *ni,
			  uint32_t *len_ret)
{
	int n = get(ni, NULL, 0);
	if (n <= 0)
		return NULL;
	uint8_t *buf = malloc((size_t)n);
	if (buf && get(ni, (char *)buf, (size_t)n) != n) {
		free(buf);
		buf = NULL;
	}
	*len_ret = buf ? (uint32_t)n : 0;
	return buf;
}

static int get_reparse(ntfs_inode *ni, char *value, size_t size)
{
	return ntfs_get_ntfs_reparse_data(ni, value, size);
}

static int get_ea(ntfs_inode *ni, char *value, size_t size)
{
	return ntfs_get_ntfs_ea(ni, value, size);
}

static int add_streams(struct ntfs_source *ns, ntfs_inode *ni, struct wtg_inode *inode,
		       const char *path)
{
	ntfs_attr_search_ctx *ctx = ntfs_attr_get_search_ctx(ni, NULL);
	int ret = 0;

	if (!ctx)
		return -ENOMEM;
	while (!ntfs_attr_lookup(AT_DATA, NULL, 0, CASE_SENSITIVE, 0, NULL, 0, ctx)) {
		ATTR_RECORD *a = ctx->attr;
		if (a->non_resident && sle64_to_cpu(a->lowest_vcn) != 0)
			continue; /* a later extent of an attribute already seen */
		char name[1024];
		int nlen = a->name_length;
		const ntfschar *uname =
		    (const ntfschar *)((const uint8_t *)a + le16_to_cpu(a->name_offset));
		if (nlen && wtg_utf16le_to_utf8((const uint8_t *)uname, (size_t)nlen, name,
						sizeof(name)) < 0)
			continue;
		uint64_t size = a->non_resident ? (uint64_t)sle64_to_cpu(a->data_size)
						: le32_to_cpu(a->value_length);
		struct wtg_blob *blob = calloc(1, sizeof(*blob));
		if (!blob || !(blob->path = strdup(path))) {
			free(blob);
			ret = -ENOMEM;
			break;
		}
		blob->mft_no = ni->mft_no;
		blob->name_len = nlen;
		if (nlen) {
			blob->name = malloc((size_t)nlen * sizeof(ntfschar));
			if (!blob->name) {
				free(blob->path);
				free(blob);
				ret = -ENOMEM;
				break;
			}
			memcpy(blob->name, uname, (size_t)nlen * sizeof(ntfschar));
		}
		blob->wof = !nlen && inode->reparse_tag == NTFS_REPARSE_TAG_WOF;
		blob->next = ns->blobs;
		ns->blobs = blob;
		if (!wtg_inode_add_stream(inode, nlen ? name : NULL, size, blob)) {
			ret = -ENOMEM;
			break;
		}
	}
	ntfs_attr_put_search_ctx(ctx);
	return ret;
}

static int fill_inode(struct ntfs_source *ns, struct wtg_tree *tree, ntfs_inode *ni,
		      struct wtg_inode *inode, const char *path)
{
	struct SECURITY_CONTEXT scx = {.vol = ns->vol};
	le32 attrib;
	le64 times[4];
	int ret;

	if (ntfs_get_ntfs_attrib(ni, (char *)&attrib, sizeof(attrib)) == sizeof(attrib))
		inode->attributes = le32_to_cpu(attrib);
	if (ntfs_inode_get_times(ni, (char *)times, sizeof(times)) == sizeof(times)) {
		inode->crtime = (int64_t)le64_to_cpu(times[0]);
		inode->mtime = (int64_t)le64_to_cpu(times[1]);
		inode->atime = (int64_t)le64_to_cpu(times[2]);
		inode->ctime = (int64_t)le64_to_cpu(times[3]);
	}
	int sdlen = ntfs_get_ntfs_acl(&scx, ni, NULL, 0);
	if (sdlen > 0) {
		char *sd = malloc((size_t)sdlen);
		if (!sd)
			return -ENOMEM;
		if (ntfs_get_ntfs_acl(&scx, ni, sd, (size_t)sdlen) == sdlen)
			inode->sd = wtg_tree_intern_sd(tree, sd, (size_t)sdlen);
		free(sd);
	}
	inode->reparse = get_value(get_reparse, ni, &inode->reparse_len);
	if (inode->reparse && inode->reparse_len >= 8) {
		uint32_t tag;
		memcpy(&tag, inode->reparse, 4);
		inode->reparse_tag = le32toh(tag);
	}
	/* $EA as it stands (ntfs-3g does not check it when reading either) */
	inode->ea = get_value(get_ea, ni, &inode->ea_len);
	/* the whole 64-byte $OBJECT_ID value, as ntfs-3g and the WIM source
	 * show it (the birth and domain ids zero when the volume has none) */
	uint8_t oid[64] = {0};
	if (ntfs_get_ntfs_object_id(ni, (char *)oid, sizeof(oid)) > 0 &&
	    (inode->object_id = malloc(sizeof(oid)))) {
		memcpy(inode->object_id, oid, sizeof(oid));
		inode->object_id_len = sizeof(oid);
	}
	ret = add_streams(ns, ni, inode, path);
	if (ret < 0)
		return ret;
	if (!inode->dir && !wtg_inode_data(inode) && !wtg_inode_add_stream(inode, NULL, 0, NULL))
		return -ENOMEM;
	return 0;
}

struct walk {
	struct ntfs_source *ns;
	struct wtg_tree *tree;
	struct mft_map_entry **map;
	size_t nmap;
};

/* Gives the name just linked as @e in @dir its DOS name, if it has one. */
static int link_dos_name(struct walk *w, struct wtg_inode *dir, const struct entry_list *l,
			 const struct entry *e)
{
	const char *dos = dos_name_of(l, e);
	if (!dos)
		return 0;
	struct wtg_dentry *de = wtg_tree_lookup(w->tree, dir, e->name, strlen(e->name));
	return de ? wtg_dentry_set_dos_name(de, dos) : 0;
}

static struct mft_map_entry **map_slot(struct walk *w, uint64_t mft_no)
{
	struct mft_map_entry **p = &w->map[(mft_no * 0x9E3779B97F4A7C15ull >> 40) & (w->nmap - 1)];

	while (*p && (*p)->mft_no != mft_no)
		p = &(*p)->next;
	return p;
}

/* Loads directory @dir (MFT record @mft_no, path @path) and, depth first,
 * everything below it. */
static int walk_dir(struct walk *w, struct wtg_inode *dir, uint64_t mft_no, const char *path,
		    int depth)
{
	struct ntfs_source *ns = w->ns;
	struct entry_list l = {.root = mft_no == FILE_root, .path = path};
	s64 pos = 0;
	int ret = 0;

	if (depth > 1000) {
		wtg_warning("'%s': directories nested too deep; the rest not shown", path);
		return 0;
	}
	ntfs_inode *dir_ni = ntfs_inode_open(ns->vol, mft_no);
	if (!dir_ni) {
		wtg_warning("'%s': cannot open this directory (%s); not shown", path,
			    strerror(errno));
		ns->skipped++;
		return 0;
	}
	if (ntfs_readdir(dir_ni, &pos, &l, collect) != 0 && !l.err)
		wtg_warning("'%s': cannot list all of this directory (%s)", path, strerror(errno));
	ns->skipped += l.refused;
	if (l.err || (l.err = index_dos_names(&l))) {
		ret = l.err;
		goto out;
	}
	for (size_t i = 0; i < l.n && ret == 0; i++) {
		if (l.v[i].type == FILE_NAME_DOS)
			continue; /* the short name of an entry seen under its long one */
		uint64_t child_no = MREF(l.v[i].mref);
		char *child_path = NULL;
		if (asprintf(&child_path, "%s%s%s", path, *path ? "/" : "", l.v[i].name) < 0) {
			ret = -ENOMEM;
			break;
		}
		struct mft_map_entry **slot = map_slot(w, child_no);
		if (*slot) {
			/* a hard link; NTFS has none to directories, and we never
			 * show one: that keeps the tree a tree */
			if ((*slot)->inode->dir) {
				wtg_warning("'%s': a second name of a directory; not shown",
					    child_path);
			} else if (wtg_tree_link(w->tree, dir, l.v[i].name, strlen(l.v[i].name),
						 (*slot)->inode) < 0) {
				wtg_warning("'%s': cannot be shown", child_path);
			} else {
				ret = link_dos_name(w, dir, &l, &l.v[i]);
			}
			free(child_path);
			continue;
		}
		ntfs_inode *ni = ntfs_inode_open(ns->vol, child_no);
		if (!ni) {
			wtg_warning("'%s': cannot open (%s); not shown", child_path,
				    strerror(errno));
			ns->skipped++;
			free(child_path);
			continue;
		}
		bool is_dir = ni->mrec->flags & MFT_RECORD_IS_DIRECTORY;
		struct wtg_inode *inode = wtg_tree_new_inode(w->tree, is_dir);
		struct mft_map_entry *m = calloc(1, sizeof(*m));
		if (!inode || !m) {
			free(m);
			ntfs_inode_close(ni);
			free(child_path);
			ret = -ENOMEM;
			break;
		}
		m->mft_no = child_no;
		m->inode = inode;
		m->ntfs_links = le16_to_cpu(ni->mrec->link_count);
		*slot = m;
		ret = fill_inode(ns, w->tree, ni, inode, child_path);
		ntfs_inode_close(ni);
		if (ret == 0) {
			int r =
			    wtg_tree_link(w->tree, dir, l.v[i].name, strlen(l.v[i].name), inode);
			if (r == -EEXIST || r == -EINVAL) {
				wtg_warning("'%s': name cannot be shown on Linux; not shown",
					    child_path);
				ns->skipped++;
			} else if (r < 0) {
				ret = r;
			} else if ((ret = link_dos_name(w, dir, &l, &l.v[i])) == 0 && is_dir &&
				   !wtg_inode_is_link(inode)) {
				ret = walk_dir(w, inode, child_no, child_path, depth + 1);
			}
		}
		free(child_path);
	}
out:
	for (size_t i = 0; i < l.n; i++)
		free(l.v[i].name);
	free(l.v);
	free(l.dos);
	ntfs_inode_close(dir_ni);
	return ret;
}

static int ntfs_load(struct wtg_source *src, struct wtg_tree *tree)
{
	struct ntfs_source *ns = (struct ntfs_source *)src;
	struct walk w = {.ns = ns, .tree = tree, .nmap = 1 << 16};
	int ret = -ENOMEM;

	w.map = calloc(w.nmap, sizeof(*w.map));
	struct wtg_inode *root = wtg_tree_new_inode(tree, true);
	if (!w.map || !root)
		goto out;
	root->parent = root;
	pthread_mutex_lock(&ns->lock);
	ntfs_inode *ni = ntfs_inode_open(ns->vol, FILE_root);
	if (!ni) {
		wtg_error("'%s': cannot open the root directory: %s", ns->base.path,
			  strerror(errno));
		pthread_mutex_unlock(&ns->lock);
		ret = -EIO;
		goto out;
	}
	ret = fill_inode(ns, tree, ni, root, "");
	ntfs_inode_close(ni);
	if (ret == 0)
		ret = walk_dir(&w, root, FILE_root, "", 0);
	pthread_mutex_unlock(&ns->lock);
	for (size_t i = 0; i < w.nmap; i++) {
		for (struct mft_map_entry *m = w.map[i], *next; m; m = next) {
			next = m->next;
			/* NTFS counts a DOS name as a link of its own */
			if (m->ntfs_links > m->inode->nlink)
				m->inode->nlink_extra = m->ntfs_links - m->inode->nlink;
			if (!m->inode->dir && m->inode->streams && !m->inode->streams[0].name)
				tree->data_bytes += m->inode->streams[0].size;
			free(m);
		}
	}
	if (ns->skipped)
		wtg_warning("'%s': %" PRIu64 " files could not be shown", ns->base.path,
			    ns->skipped);
out:
	free(w.map);
	return ret;
}

static int ntfs_read(struct wtg_source *src, struct wtg_blob *blob, void *buf, size_t size,
		     uint64_t off)
{
	struct ntfs_source *ns = (struct ntfs_source *)src;
	int ret = 0;

	if (blob->wof) {
		if (!__atomic_exchange_n(&blob->reported, true, __ATOMIC_RELAXED))
			wtg_error("'%s': compressed by Windows (WOF/CompactOS), which wtgfs cannot "
				  "read yet",
				  blob->path);
		return -EIO;
	}
	pthread_mutex_lock(&ns->lock);
	ntfs_inode *ni = ntfs_inode_open(ns->vol, blob->mft_no);
	ntfs_attr *na =
	    ni ? ntfs_attr_open(ni, AT_DATA, blob->name ? blob->name : AT_UNNAMED, blob->name_len)
	       : NULL;
	uint8_t *out = buf;
	while (na && size) {
		s64 n = ntfs_attr_pread(na, (s64)off, (s64)size, out);
		if (n <= 0)
			break;
		out += n;
		off += (uint64_t)n;
		size -= (size_t)n;
	}
	if (size) {
		int err = errno;
		if (!__atomic_exchange_n(&blob->reported, true, __ATOMIC_RELAXED))
			wtg_error("'%s': cannot read its data (%s)", blob->path,
				  err == EACCES ? "encrypted by Windows (EFS)"
						: strerror(err ? err : EIO));
		ret = -EIO;
	}
	if (na)
		ntfs_attr_close(na);
	if (ni)
		ntfs_inode_close(ni);
	pthread_mutex_unlock(&ns->lock);
	return ret;
}

static void ntfs_free(struct wtg_source *src)
{
	struct ntfs_source *ns = (struct ntfs_source *)src;

	for (struct wtg_blob *b = ns->blobs, *next; b; b = next) {
		next = b->next;
		free(b->name);
		free(b->path);
		free(b);
	}
	if (ns->vol)
		ntfs_umount(ns->vol, FALSE); /* frees the device too */
	if (ns->release)
		ns->release(ns->range.ctx);
	pthread_mutex_destroy(&ns->lock);
	free(ns->base.path);
	free(ns);
}

/* ---- blobs by key (a source that never loads its tree) ---- */

/* le64 MFT record number, a byte that says WOF, the UTF-16LE stream name. */
static int ntfs_blob_key(struct wtg_source *src, const struct wtg_blob *blob, uint8_t *key)
{
	uint64_t mft = htole64(blob->mft_no);
	size_t nbytes = (size_t)blob->name_len * sizeof(ntfschar);

	if (9 + nbytes > WTG_BLOB_KEY_MAX)
		return -ENAMETOOLONG;
	memcpy(key, &mft, 8);
	key[8] = blob->wof;
	if (nbytes)
		memcpy(key + 9, blob->name, nbytes);
	return (int)(9 + nbytes);
}

static int ntfs_find_blob(struct wtg_source *src, const uint8_t *key, size_t len,
			  const char *path, struct wtg_blob **blob_ret)
{
	struct ntfs_source *ns = (struct ntfs_source *)src;
	uint64_t mft;

	if (len < 9 || (len - 9) % sizeof(ntfschar) || len > WTG_BLOB_KEY_MAX)
		return -EINVAL;
	struct wtg_blob *blob = calloc(1, sizeof(*blob));
	if (!blob || !(blob->path = strdup(path))) {
		free(blob);
		return -ENOMEM;
	}
	memcpy(&mft, key, 8);
	blob->mft_no = le64toh(mft);
	blob->wof = key[8] != 0;
	blob->name_len = (int)((len - 9) / sizeof(ntfschar));
	if (blob->name_len && !(blob->name = malloc(len - 9))) {
		free(blob->path);
		free(blob);
		return -ENOMEM;
	}
	if (blob->name_len)
		memcpy(blob->name, key + 9, len - 9);
	pthread_mutex_lock(&ns->lock);
	blob->next = ns->blobs;
	ns->blobs = blob;
	pthread_mutex_unlock(&ns->lock);
	*blob_ret = blob;
	return 0;
}

static const struct wtg_source_ops ntfs_source_ops = {
    .name = "ntfs",
    .load = ntfs_load,
    .read = ntfs_read,
    .blob_key = ntfs_blob_key,
    .find_blob = ntfs_find_blob,
    .free = ntfs_free,
};

int wtg_ntfs_source_open(wtg_volume_read_fn read, void *ctx, void (*release)(void *ctx),
			 uint64_t size, const char *what, struct wtg_source **src_ret)
{
	struct ntfs_source *ns = calloc(1, sizeof(*ns));

	if (!ns) {
		if (release)
			release(ctx);
		return -ENOMEM;
	}
	ns->base.ops = &ntfs_source_ops;
	ns->range = (struct wtg_ntfs_range){.read = read, .ctx = ctx, .size = size};
	ns->release = release;
	pthread_mutex_init(&ns->lock, NULL);
	ns->base.path = strdup(what);
	if (!ns->base.path) {
		ntfs_free(&ns->base);
		return -ENOMEM;
	}
	ns->vol = mount_range(&ns->range, what);
	if (!ns->vol) {
		int err = errno ? errno : EIO;
		ntfs_free(&ns->base);
		return -err;
	}
	/* the volume serial number, from the boot sector (le64 at 0x48) */
	uint8_t boot[512];
	uint64_t serial = 0;
	if (read(ctx, boot, sizeof(boot), 0) == 0) {
		memcpy(&serial, boot + 0x48, 8);
		serial = le64toh(serial);
	}
	snprintf(ns->base.identity, sizeof(ns->base.identity), "ntfs:%016" PRIx64, serial);
	*src_ret = &ns->base;
	return 0;
}

int wtg_ntfs_volume_info(wtg_volume_read_fn read, void *ctx, uint64_t size, const char *what,
			 struct wtg_ntfs_volume_info *info)
{
	struct wtg_ntfs_range r = {.read = read, .ctx = ctx, .size = size};

	memset(info, 0, sizeof(*info));
	info->size = size;
	ntfs_volume *vol = mount_range(&r, what);
	if (!vol)
		return -(errno ? errno : EIO);
	if (vol->vol_name)
		snprintf(info->label, sizeof(info->label), "%s", vol->vol_name);
	ntfs_inode *root = ntfs_inode_open(vol, FILE_root);
	if (root) {
		static const ntfschar windows[] = {const_cpu_to_le16('W'), const_cpu_to_le16('i'),
						   const_cpu_to_le16('n'), const_cpu_to_le16('d'),
						   const_cpu_to_le16('o'), const_cpu_to_le16('w'),
						   const_cpu_to_le16('s')};
		u64 mref = ntfs_inode_lookup_by_name(root, windows, 7);
		if (mref != (u64)-1) {
			ntfs_inode *ni = ntfs_inode_open(vol, MREF(mref));
			if (ni) {
				info->has_windows = ni->mrec->flags & MFT_RECORD_IS_DIRECTORY;
				ntfs_inode_close(ni);
			}
		}
		ntfs_inode_close(root);
	}
	ntfs_umount(vol, FALSE);
	return 0;
}
