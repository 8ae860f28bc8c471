/*
 * --verify: the Windows partition read back through the NTFS source (which
 * loads it into a tree of its own) and compared with the view, path by
 * path: type, attributes, security descriptor, times, reparse data, object
 * id, extended attributes, DOS name, link count and hard-link groups, and every stream byte for
 * byte.  Paths the flush changed on purpose (the SYSTEM hive, unattend.xml)
 * are compared by existence only.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flush_int.h"
#include "wtgfs/ea.h"
#include "wtgfs/fileio.h"
#include "wtgfs/log.h"
#include "wtgfs/ntfs.h"
#include "wtgfs/ntfs_source.h"
#include "wtgfs/ntfs_write.h"
#include "wtgfs/source.h"
#include "wtgfs/tree.h"
#include "wtgfs/view.h"

#define MAX_REPORTED 20
#define BUF (1u << 20)

struct verify {
	struct wtg_view *view;
	struct wtg_tree *a, b;
	const char *const *changed;
	uint64_t *map; /* a's inode number - 1 -> b's inode number */
	uint8_t *bufa, *bufb;
	uint64_t differences, files, bytes;
	int err;
};

static bool is_changed(const struct verify *v, const char *path)
{
	for (const char *const *c = v->changed; c && *c; c++)
		if (!strcasecmp(*c, path))
			return true;
	return false;
}

/* A directory that a changed path was created in. */
static bool holds_changed(const struct verify *v, const char *path)
{
	size_t n = strlen(path);

	for (const char *const *c = v->changed; c && *c; c++)
		if (!strncasecmp(*c, path, n) && (n == 0 || (*c)[n] == '/'))
			return true;
	return false;
}

static void differ(struct verify *v, const char *path, const char *fmt, const char *what)
{
	if (++v->differences <= MAX_REPORTED) {
		char msg[256];
		snprintf(msg, sizeof(msg), fmt, what);
		wtg_error("verify: '%s': %s", path[0] ? path : "/", msg);
	}
}

static bool same_bytes(const void *a, size_t alen, const void *b, size_t blen)
{
	return alen == blen && (!alen || !memcmp(a, b, alen));
}

static void compare_stream(struct verify *v, const char *path, struct wtg_inode *ia,
			   struct wtg_stream *sa, struct wtg_stream *sb)
{
	for (uint64_t off = 0; off < sa->size; off += BUF) {
		size_t n = sa->size - off < BUF ? (size_t)(sa->size - off) : BUF;
		long ra = wtg_view_read(v->view, ia, sa, v->bufa, n, off);
		long rb = wtg_tree_read(&v->b, sb, v->bufb, n, off);
		if (ra != (long)n || rb != (long)n) {
			differ(v, path, "%s cannot be read back", sa->name ? sa->name : "data");
			return;
		}
		if (memcmp(v->bufa, v->bufb, n)) {
			differ(v, path, "%s differs", sa->name ? sa->name : "data");
			return;
		}
		v->bytes += n;
	}
}

static void compare_inode(struct verify *v, const char *path, struct wtg_inode *ia,
			  struct wtg_inode *ib, bool changed)
{
	uint64_t *m = &v->map[ia->ino - 1];

	if (*m) {
		if (*m != ib->ino)
			differ(v, path, "%s", "is not a hard link of the names it shares an inode with");
		return;
	}
	*m = ib->ino;
	if (wtg_inode_is_dir(ia) != wtg_inode_is_dir(ib)) {
		differ(v, path, "%s", "is a directory on one side only");
		return;
	}
	uint32_t mask = ~(NTFS_ATTR_NORMAL | NTFS_ATTR_ENCRYPTED);
	if ((ia->attributes & mask) != (ib->attributes & mask))
		differ(v, path, "%s", "attributes differ");
	const struct wtg_sd *sda = wtg_tree_sd(v->a, ia->sd), *sdb = wtg_tree_sd(&v->b, ib->sd);
	if (!same_bytes(sda ? sda->data : NULL, sda ? sda->len : 0, sdb ? sdb->data : NULL,
			sdb ? sdb->len : 0))
		differ(v, path, "%s", "security descriptors differ");
	if (!changed && (ia->crtime != ib->crtime || ia->mtime != ib->mtime ||
			 ia->atime != ib->atime))
		differ(v, path, "%s", "times differ");
	uint32_t ra_len = 0, rb_len = 0;
	const uint8_t *ra = wtg_inode_reparse(v->a, ia, &ra_len);
	const uint8_t *rb = wtg_inode_reparse(&v->b, ib, &rb_len);
	if (!same_bytes(ra, ra ? ra_len : 0, rb, rb ? rb_len : 0))
		differ(v, path, "%s", "reparse data differ");
	if (!same_bytes(ia->object_id, ia->object_id_len, ib->object_id, ib->object_id_len))
		differ(v, path, "%s", "object ids differ");
	/* a malformed $EA of the base is left out by the writer (with a warning) */
	uint32_t ea_len = 0, eb_len = 0;
	const uint8_t *ea = wtg_inode_ea(ia, &ea_len);
	const uint8_t *eb = wtg_inode_ea(ib, &eb_len);
	if (ea && !wtg_ea_valid(ea, ea_len))
		ea = NULL, ea_len = 0;
	if (!same_bytes(ea, ea ? ea_len : 0, eb, eb ? eb_len : 0))
		differ(v, path, "%s", "extended attributes differ");
	if (ia->nlink != ib->nlink)
		differ(v, path, "%s", "link counts differ");
	v->files++;
	for (uint32_t i = 0; i < ia->nstreams; i++) {
		struct wtg_stream *sa = &ia->streams[i];
		struct wtg_stream *sb = sa->name ? wtg_inode_named_stream(ib, sa->name)
						 : wtg_inode_data(ib);
		if (!sb) {
			if (sa->name || sa->size)
				differ(v, path, "stream '%s' is missing", sa->name ? sa->name : "");
			continue;
		}
		if (sa->size != sb->size) {
			if (!changed || sa->name)
				differ(v, path, "%s sizes differ", sa->name ? sa->name : "data");
			continue;
		}
		if (!changed || sa->name)
			compare_stream(v, path, ia, sa, sb);
	}
	uint32_t na = 0, nb = 0;
	for (uint32_t i = 0; i < ia->nstreams; i++)
		na += ia->streams[i].name != NULL;
	for (uint32_t i = 0; i < ib->nstreams; i++)
		nb += ib->streams[i].name != NULL;
	if (na != nb)
		differ(v, path, "%s", "named streams differ");
}

static int compare_dir(struct verify *v, struct wtg_inode *da, struct wtg_inode *db,
		       const char *path)
{
	uint32_t seen = 0;

	for (uint32_t i = 0; i < da->dir->count; i++) {
		struct wtg_dentry *de = da->dir->entries[i];
		if (de->inode->gone)
			continue;
		char *sub;
		if (asprintf(&sub, "%s%s%s", path, path[0] ? "/" : "", de->name) < 0)
			return -ENOMEM;
		struct wtg_dentry *hit = wtg_tree_lookup(&v->b, db, de->name, de->name_len);
		if (!hit || strcmp(hit->name, de->name)) {
			differ(v, sub, "%s", "is missing");
			free(sub);
			continue;
		}
		seen++;
		const char *da_dos, *db_dos = wtg_dentry_dos_name(hit);
		if (wtg_ntfs_dos_owner(de->inode, &da_dos) != de)
			da_dos = NULL;
		if (!same_bytes(da_dos, da_dos ? strlen(da_dos) : 0, db_dos,
				db_dos ? strlen(db_dos) : 0))
			differ(v, sub, "%s", "DOS names differ");
		compare_inode(v, sub, de->inode, hit->inode, is_changed(v, sub));
		int ret = 0;
		if (wtg_inode_is_dir(de->inode) && wtg_inode_is_dir(hit->inode))
			ret = compare_dir(v, de->inode, hit->inode, sub);
		free(sub);
		if (ret)
			return ret;
	}
	if (seen != db->dir->count && !holds_changed(v, path))
		differ(v, path, "%s", "holds names the tree does not have");
	return 0;
}

struct part_reader {
	int fd;
	uint64_t offset;
};

static int part_read(void *ctx, void *buf, size_t size, uint64_t off)
{
	const struct part_reader *r = ctx;

	return wtg_pread_all(r->fd, buf, size, r->offset + off);
}

int flush_verify(struct wtg_view *view, struct wtg_flush_target *t,
		 const struct wtg_flush_layout *layout, const char *const *changed)
{
	struct verify v = {.view = view, .a = wtg_view_tree(view), .changed = changed};
	struct part_reader *r = malloc(sizeof(*r));
	struct wtg_source *src;
	char what[4200];
	int ret;

	if (!r)
		return -ENOMEM;
	*r = (struct part_reader){.fd = t->fd, .offset = layout->windows.offset};
	snprintf(what, sizeof(what), "%s:%u", t->path, layout->windows.number);
	ret = wtg_ntfs_source_open(part_read, r, free, layout->windows.size, what, &src);
	if (ret)
		return ret; /* @r released by the source */
	wtg_tree_init(&v.b, src);
	ret = wtg_source_load(src, &v.b);
	if (ret)
		goto out;
	v.map = calloc(v.a->ninodes ? v.a->ninodes : 1, sizeof(*v.map));
	v.bufa = malloc(BUF);
	v.bufb = malloc(BUF);
	if (!v.map || !v.bufa || !v.bufb) {
		ret = -ENOMEM;
		goto out;
	}
	wtg_view_lock_shared(view);
	struct wtg_inode *ra = wtg_tree_inode(v.a, WTG_ROOT_INO);
	struct wtg_inode *rb = wtg_tree_inode(&v.b, WTG_ROOT_INO);
	compare_inode(&v, "", ra, rb, false);
	ret = compare_dir(&v, ra, rb, "");
	wtg_view_unlock(view);
	if (!ret && v.differences) {
		if (v.differences > MAX_REPORTED)
			wtg_error("verify: %" PRIu64 " differences in all", v.differences);
		ret = -EIO;
	}
out:
	free(v.map);
	free(v.bufa);
	free(v.bufb);
	wtg_tree_release(&v.b);
	return ret;
}
