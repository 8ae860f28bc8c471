/* The tree: links, case-insensitive lookup, interning, symlink targets. */
#include <errno.h>
#include <string.h>

#include "unit.h"
#include "wtgfs/ntfs.h"
#include "wtgfs/reparse.h"
#include "wtgfs/tree.h"

/* Builds a symlink (or junction when @junction) reparse buffer to @target. */
static size_t make_link(uint8_t *buf, const char *target, int junction, int relative)
{
	size_t n = strlen(target), hdr = junction ? 8 : 12;
	uint32_t tag = junction ? NTFS_REPARSE_TAG_MOUNT_POINT : NTFS_REPARSE_TAG_SYMLINK;
	uint16_t data_len = (uint16_t)(hdr + 2 * n);

	memset(buf, 0, 8 + hdr + 2 * n);
	memcpy(buf, &tag, 4);
	memcpy(buf + 4, &data_len, 2);
	uint16_t subst_len = (uint16_t)(2 * n);
	memcpy(buf + 10, &subst_len, 2);
	if (!junction) {
		uint32_t flags = relative ? NTFS_SYMLINK_FLAG_RELATIVE : 0;
		memcpy(buf + 16, &flags, 4);
	}
	for (size_t i = 0; i < n; i++)
		buf[8 + hdr + 2 * i] = (uint8_t)target[i];
	return 8 + hdr + 2 * n;
}

TEST(link_targets)
{
	uint8_t buf[512];
	char path[256];
	bool rel;
	size_t n = make_link(buf, "\\??\\C:\\Users", 1, 0);

	CHECK(wtg_reparse_link_target(buf, n, &rel, path, sizeof(path)) == 0);
	CHECK(!rel && !strcmp(path, "/Users"));
	n = make_link(buf, "..\\x\\y.txt", 0, 1);
	CHECK(wtg_reparse_link_target(buf, n, &rel, path, sizeof(path)) == 0);
	CHECK(rel && !strcmp(path, "../x/y.txt"));
	n = make_link(buf, "\\??\\Volume{1234}\\a", 0, 0);
	CHECK(wtg_reparse_link_target(buf, n, &rel, path, sizeof(path)) == 0);
	CHECK(!strcmp(path, "/a"));
	/* malformed: every truncation must be refused, never read past */
	n = make_link(buf, "\\??\\C:\\Windows\\System32", 0, 0);
	for (size_t cut = 0; cut < n; cut++) {
		int r = wtg_reparse_link_target(buf, cut, &rel, path, sizeof(path));
		CHECK(r == -EINVAL || r == 0);
	}
	uint32_t wof = NTFS_REPARSE_TAG_WOF;
	memcpy(buf, &wof, 4);
	CHECK(wtg_reparse_link_target(buf, n, &rel, path, sizeof(path)) == -EINVAL);
}

struct fixture {
	struct wtg_tree t;
	struct wtg_inode *root, *windows, *sys32, *users, *file, *junction, *rel, *evil;
};

static void build(struct fixture *f)
{
	uint8_t buf[512];
	wtg_tree_init(&f->t, NULL);
	f->root = wtg_tree_new_inode(&f->t, true);
	f->root->parent = f->root;
	f->windows = wtg_tree_new_inode(&f->t, true);
	f->sys32 = wtg_tree_new_inode(&f->t, true);
	f->users = wtg_tree_new_inode(&f->t, true);
	f->file = wtg_tree_new_inode(&f->t, false);
	CHECK(wtg_tree_link(&f->t, f->root, "Windows", 7, f->windows) == 0);
	CHECK(wtg_tree_link(&f->t, f->windows, "System32", 8, f->sys32) == 0);
	CHECK(wtg_tree_link(&f->t, f->root, "Users", 5, f->users) == 0);
	CHECK(wtg_tree_link(&f->t, f->sys32, "kernel32.dll", 12, f->file) == 0);
	CHECK(wtg_tree_link(&f->t, f->users, "hardlink.dll", 12, f->file) == 0);

	f->junction = wtg_tree_new_inode(&f->t, true);
	f->junction->attributes |= NTFS_ATTR_REPARSE_POINT;
	f->junction->reparse_tag = NTFS_REPARSE_TAG_MOUNT_POINT;
	size_t n = make_link(buf, "\\??\\C:\\WINDOWS\\system32", 1, 0);
	f->junction->reparse = malloc(n);
	memcpy(f->junction->reparse, buf, n);
	f->junction->reparse_len = (uint32_t)n;
	CHECK(wtg_tree_link(&f->t, f->users, "Link", 4, f->junction) == 0);

	f->rel = wtg_tree_new_inode(&f->t, false);
	f->rel->attributes |= NTFS_ATTR_REPARSE_POINT;
	f->rel->reparse_tag = NTFS_REPARSE_TAG_SYMLINK;
	n = make_link(buf, "..\\Windows\\missing\\x", 0, 1);
	f->rel->reparse = malloc(n);
	memcpy(f->rel->reparse, buf, n);
	f->rel->reparse_len = (uint32_t)n;
	CHECK(wtg_tree_link(&f->t, f->users, "rel", 3, f->rel) == 0);

	f->evil = wtg_tree_new_inode(&f->t, false);
	f->evil->attributes |= NTFS_ATTR_REPARSE_POINT;
	f->evil->reparse_tag = NTFS_REPARSE_TAG_SYMLINK;
	n = make_link(buf, "..\\..\\..\\..\\etc\\passwd", 0, 1);
	f->evil->reparse = malloc(n);
	memcpy(f->evil->reparse, buf, n);
	f->evil->reparse_len = (uint32_t)n;
	CHECK(wtg_tree_link(&f->t, f->users, "evil", 4, f->evil) == 0);
}

TEST(links_and_lookup)
{
	struct fixture f;
	build(&f);
	CHECK(f.root->ino == WTG_ROOT_INO);
	CHECK(f.file->nlink == 2);
	CHECK(f.root->nsubdirs == 2);
	CHECK(wtg_tree_lookup(&f.t, f.root, "windows", 7)->inode == f.windows);
	CHECK(wtg_tree_lookup(&f.t, f.root, "WINDOWS", 7)->inode == f.windows);
	CHECK(wtg_tree_lookup(&f.t, f.root, "Window", 6) == NULL);
	CHECK(wtg_tree_link(&f.t, f.root, "Windows", 7, f.file) == -EEXIST);
	CHECK(wtg_tree_link(&f.t, f.root, "a/b", 3, f.file) == -EINVAL);
	CHECK(wtg_tree_link(&f.t, f.root, "..", 2, f.file) == -EINVAL);
	CHECK(wtg_tree_link(&f.t, f.file, "x", 1, f.file) == -ENOTDIR);
	/* names equal ignoring case: exact match first, then the older one */
	struct wtg_inode *other = wtg_tree_new_inode(&f.t, false);
	CHECK(wtg_tree_link(&f.t, f.root, "WINDOWS", 7, other) == 0);
	CHECK(wtg_tree_lookup(&f.t, f.root, "WINDOWS", 7)->inode == other);
	CHECK(wtg_tree_lookup(&f.t, f.root, "Windows", 7)->inode == f.windows);
	CHECK(wtg_tree_lookup(&f.t, f.root, "windows", 7)->inode == f.windows);
	/* many names: the buckets grow */
	for (int i = 0; i < 1000; i++) {
		char name[16];
		int len = snprintf(name, sizeof(name), "File%d.txt", i);
		CHECK(wtg_tree_link(&f.t, f.sys32, name, (size_t)len,
				    wtg_tree_new_inode(&f.t, false)) == 0);
	}
	CHECK(wtg_tree_lookup(&f.t, f.sys32, "FILE999.TXT", 11) != NULL);
	CHECK(wtg_tree_lookup(&f.t, f.sys32, "kernel32.DLL", 12)->inode == f.file);
	char path[256];
	CHECK(wtg_tree_path(&f.t, f.file, path, sizeof(path)) == 0);
	CHECK(!strcmp(path, "Windows/System32/kernel32.dll"));
	wtg_tree_release(&f.t);
}

/* A DOS name is a name's, not its inode's: the other names of a hard-linked
 * file have none, and removing the owning name drops it. */
TEST(dos_name_per_name)
{
	struct fixture f;
	build(&f);
	struct wtg_dentry *s32 = wtg_tree_lookup(&f.t, f.sys32, "kernel32.dll", 12);
	struct wtg_dentry *users = wtg_tree_lookup(&f.t, f.users, "hardlink.dll", 12);
	CHECK(s32 && users && s32->inode == users->inode);
	CHECK(!wtg_dentry_dos_name(s32) && !wtg_dentry_dos_name(users));
	CHECK(wtg_dentry_set_dos_name(users, "HARDLI~1.DLL") == 0);
	CHECK(!strcmp(wtg_dentry_dos_name(users), "HARDLI~1.DLL"));
	CHECK(!wtg_dentry_dos_name(s32));
	CHECK(f.file->nlink == 2 && f.file->nlink_extra == 1);
	/* replacing it keeps one separate FILE_NAME; dropping it none */
	CHECK(wtg_dentry_set_dos_name(users, "HARDLI~2.DLL") == 0);
	CHECK(f.file->nlink_extra == 1);
	CHECK(wtg_dentry_set_dos_name(users, NULL) == 0);
	CHECK(!wtg_dentry_dos_name(users) && f.file->nlink_extra == 0);
	/* each name may have its own; unlinking one takes only its own */
	CHECK(wtg_dentry_set_dos_name(users, "HARDLI~1.DLL") == 0);
	CHECK(wtg_dentry_set_dos_name(s32, "KERNEL~1.DLL") == 0);
	CHECK(f.file->nlink_extra == 2);
	wtg_tree_unlink(&f.t, f.users, users);
	CHECK(f.file->nlink == 1 && f.file->nlink_extra == 1);
	CHECK(!strcmp(wtg_dentry_dos_name(f.file->first_name), "KERNEL~1.DLL"));
	wtg_tree_release(&f.t);
}

TEST(readlink_targets)
{
	struct fixture f;
	char buf[256];
	build(&f);
	/* junction from Users/Link: the tree's own spelling */
	CHECK(wtg_tree_readlink(&f.t, f.junction, f.users, buf, sizeof(buf)) > 0);
	CHECK(!strcmp(buf, "../Windows/System32"));
	CHECK(wtg_tree_readlink(&f.t, f.rel, NULL, buf, sizeof(buf)) > 0);
	CHECK(!strcmp(buf, "../Windows/missing/x"));
	/* a run of '..' stops at the root, as on Windows */
	CHECK(wtg_tree_readlink(&f.t, f.evil, NULL, buf, sizeof(buf)) > 0);
	CHECK(!strcmp(buf, "../etc/passwd"));
	CHECK(wtg_tree_readlink(&f.t, f.file, NULL, buf, sizeof(buf)) == -EINVAL);
	CHECK(wtg_tree_readlink(&f.t, f.junction, NULL, buf, 8) == -ENAMETOOLONG);
	wtg_tree_release(&f.t);
}

/* A symlink (or junction) inode named @name in @dir, to @target. */
static struct wtg_inode *add_link(struct wtg_tree *t, struct wtg_inode *dir, const char *name,
				  const char *target, int junction, int relative)
{
	uint8_t buf[512];
	struct wtg_inode *in = wtg_tree_new_inode(t, false);
	in->attributes |= NTFS_ATTR_REPARSE_POINT;
	in->reparse_tag = junction ? NTFS_REPARSE_TAG_MOUNT_POINT : NTFS_REPARSE_TAG_SYMLINK;
	size_t n = make_link(buf, target, junction, relative);
	in->reparse = malloc(n);
	memcpy(in->reparse, buf, n);
	in->reparse_len = (uint32_t)n;
	CHECK(wtg_tree_link(t, dir, name, strlen(name), in) == 0);
	return in;
}

/* readlink of @in through its name in @dir (NULL: any) gives @want. */
static int readlink_is(struct wtg_tree *t, struct wtg_inode *in, struct wtg_inode *dir,
		       const char *want)
{
	char buf[256];
	long n = wtg_tree_readlink(t, in, dir, buf, sizeof(buf));
	if (n < 0 || strcmp(buf, want) || (size_t)n != strlen(want)) {
		fprintf(stderr, "readlink: got '%s' (%ld), want '%s'\n", n < 0 ? "" : buf, n, want);
		return 0;
	}
	return 1;
}

/* A WSL symlink (LX_SYMLINK) named @name in @dir holding @target as is. */
static struct wtg_inode *add_lx_link(struct wtg_tree *t, struct wtg_inode *dir, const char *name,
				     const char *target, bool made_here)
{
	struct wtg_inode *in = wtg_tree_new_inode(t, false);
	size_t n;
	in->attributes |= NTFS_ATTR_REPARSE_POINT;
	in->reparse_tag = NTFS_REPARSE_TAG_LX_SYMLINK;
	CHECK(wtg_reparse_make_lx_symlink(target, &in->reparse, &n) == 0);
	CHECK(wtg_reparse_is_lx_symlink(in->reparse, n));
	in->reparse_len = (uint32_t)n;
	in->reparse_made_here = made_here;
	CHECK(wtg_tree_link(t, dir, name, strlen(name), in) == 0);
	return in;
}

/* A WSL link reads back as its text when the text is plain (a run of '..'
 * the directory's depth allows, then names), or was made through wtgfs;
 * any other from an image reads as a Windows link to the same text would,
 * normalised: a '..' after a name that is itself a link to the root would
 * climb out of the mount. */
TEST(readlink_posix_links)
{
	struct fixture f;
	build(&f);
	struct wtg_tree *t = &f.t;
	struct wtg_inode *l = add_lx_link(t, f.users, "p", "../Windows/System32", false);
	CHECK(readlink_is(t, l, NULL, "../Windows/System32"));
	l = add_lx_link(t, f.users, "a", "x/./y//z/", false);
	CHECK(readlink_is(t, l, NULL, "x/y/z"));
	l = add_lx_link(t, f.users, "b", "../windows/../Users", false);
	CHECK(readlink_is(t, l, NULL, "../Users"));
	/* r leads to the root: read as it was, r/../../etc would climb out */
	CHECK(readlink_is(t, add_lx_link(t, f.users, "r", "..", false), NULL, ".."));
	l = add_lx_link(t, f.users, "c", "r/../../etc", false);
	CHECK(readlink_is(t, l, NULL, "../etc"));
	l = add_lx_link(t, f.users, "out", "../../etc/passwd", false);
	CHECK(readlink_is(t, l, NULL, "../etc/passwd"));
	l = add_lx_link(t, f.users, "abs", "/etc/passwd", false);
	CHECK(readlink_is(t, l, NULL, "../etc/passwd"));
	l = add_lx_link(t, f.users, "mine", "/etc/passwd", true);
	CHECK(readlink_is(t, l, NULL, "/etc/passwd"));
	l = add_lx_link(t, f.users, "mine2", "../../../up", true);
	CHECK(readlink_is(t, l, NULL, "../../../up"));
	CHECK(wtg_inode_is_link(l));
	/* the text as symlink(2) gave it, bytes that are not UTF-8 too */
	char path[64];
	bool rel;
	CHECK(wtg_reparse_link_target(l->reparse, l->reparse_len, &rel, path, sizeof(path)) == 0);
	CHECK(rel && !strcmp(path, "../../../up"));
	uint8_t *rp;
	size_t n;
	CHECK(wtg_reparse_make_lx_symlink("a\xff\\b", &rp, &n) == 0);
	CHECK(wtg_reparse_link_target(rp, n, &rel, path, sizeof(path)) == 0);
	CHECK(!strcmp(path, "a\xff\\b"));
	CHECK(wtg_reparse_link_target(rp, n - 1, &rel, path, sizeof(path)) == -EINVAL);
	CHECK(wtg_reparse_link_target(rp, n, &rel, path, 4) == -ENAMETOOLONG);
	free(rp);
	wtg_tree_release(&f.t);
}

/* Targets that led out of the mount: relative ones starting with '\',
 * '..' runs above the root, '..' after a symlink component, links with
 * names at several depths. */
TEST(readlink_stays_inside)
{
	struct fixture f;
	build(&f);
	struct wtg_tree *t = &f.t;
	/* Windows resolves these from the volume root */
	struct wtg_inode *l = add_link(t, f.users, "rooted", "\\etc\\passwd", 0, 1);
	CHECK(readlink_is(t, l, NULL, "../etc/passwd"));
	l = add_link(t, f.users, "unc", "\\\\server\\share\\x", 0, 1);
	CHECK(readlink_is(t, l, NULL, "../server/share/x"));
	l = add_link(t, f.sys32, "rooted2", "\\windows\\System32\\kernel32.dll", 0, 1);
	CHECK(readlink_is(t, l, NULL, "kernel32.dll"));
	/* lexical, as Windows: a name and a '..' cancel, even through a link */
	struct wtg_inode *s = add_link(t, f.users, "s", "..\\Windows\\System32", 0, 1);
	CHECK(readlink_is(t, s, NULL, "../Windows/System32"));
	l = add_link(t, f.users, "via", "s\\..\\..\\..\\x", 0, 1);
	CHECK(readlink_is(t, l, NULL, "../x"));
	l = add_link(t, f.users, "dots", ".\\a\\..\\.\\Link", 0, 1);
	CHECK(readlink_is(t, l, NULL, "Link"));
	l = add_link(t, f.users, "self", "a\\..", 0, 1);
	CHECK(readlink_is(t, l, NULL, "."));
	l = add_link(t, f.users, "back", "..\\USERS\\Link", 0, 1);
	CHECK(readlink_is(t, l, NULL, "../Users/Link"));
	l = add_link(t, f.root, "top", "..\\..\\etc", 0, 1);
	CHECK(readlink_is(t, l, NULL, "etc"));
	l = add_link(t, f.users, "rootj", "\\??\\C:\\", 1, 0);
	CHECK(readlink_is(t, l, NULL, ".."));
	l = add_link(t, f.users, "abs", "\\??\\C:\\..\\..\\Users\\..\\etc", 0, 0);
	CHECK(readlink_is(t, l, NULL, "../etc"));

	/* names at several depths: each directory its own text; without one,
	 * the shallowest name's, which stays inside from every name */
	struct wtg_inode *a = wtg_tree_new_inode(t, true), *b = wtg_tree_new_inode(t, true),
			 *c = wtg_tree_new_inode(t, true);
	CHECK(wtg_tree_link(t, f.root, "a", 1, a) == 0);
	CHECK(wtg_tree_link(t, a, "b", 1, b) == 0);
	CHECK(wtg_tree_link(t, b, "c", 1, c) == 0);
	struct wtg_inode *hl = add_link(t, c, "link", "\\??\\C:\\etc\\passwd", 0, 0);
	CHECK(wtg_tree_link(t, c, "link2", 5, hl) == 0);
	CHECK(wtg_inode_names_in_one_dir(hl));
	CHECK(readlink_is(t, hl, NULL, "../../../etc/passwd"));
	CHECK(wtg_tree_link(t, f.root, "link", 4, hl) == 0);
	CHECK(!wtg_inode_names_in_one_dir(hl));
	CHECK(readlink_is(t, hl, c, "../../../etc/passwd"));
	CHECK(readlink_is(t, hl, f.root, "etc/passwd"));
	CHECK(readlink_is(t, hl, NULL, "etc/passwd"));
	CHECK(readlink_is(t, hl, f.users, "etc/passwd")); /* no name there: as NULL */
	struct wtg_inode *hj = add_link(t, b, "j", "\\??\\C:\\Windows", 1, 0);
	CHECK(wtg_tree_link(t, f.users, "j", 1, hj) == 0);
	CHECK(readlink_is(t, hj, b, "../../Windows"));
	CHECK(readlink_is(t, hj, NULL, "../Windows"));
	struct wtg_inode *hr = add_link(t, a, "r", "\\", 0, 0);
	CHECK(wtg_tree_link(t, c, "r", 1, hr) == 0);
	CHECK(readlink_is(t, hr, c, "../../.."));
	CHECK(readlink_is(t, hr, NULL, ".."));
	/* a relative one: its '..' run clamped at each name's depth */
	struct wtg_inode *hu = add_link(t, c, "up", "..\\..\\..\\..\\x", 0, 1);
	CHECK(readlink_is(t, hu, NULL, "../../../x"));
	CHECK(wtg_tree_link(t, a, "up", 2, hu) == 0);
	CHECK(readlink_is(t, hu, c, "../../../x"));
	CHECK(readlink_is(t, hu, a, "../x"));
	CHECK(readlink_is(t, hu, NULL, "../x"));
	/* the shallow name gone: the deep one decides */
	CHECK(hu->unlinks == 0);
	wtg_tree_unlink(t, a, wtg_tree_lookup(t, a, "up", 2));
	CHECK(hu->unlinks == 1);
	CHECK(readlink_is(t, hu, NULL, "../../../x"));
	wtg_tree_release(t);
}

TEST(security_descriptors_interned)
{
	struct wtg_tree t;
	wtg_tree_init(&t, NULL);
	uint32_t a = wtg_tree_intern_sd(&t, "abcd", 4);
	uint32_t b = wtg_tree_intern_sd(&t, "abce", 4);
	CHECK(a != b);
	CHECK(wtg_tree_intern_sd(&t, "abcd", 4) == a);
	for (int i = 0; i < 500; i++)
		wtg_tree_intern_sd(&t, &i, sizeof(i));
	CHECK(wtg_tree_intern_sd(&t, "abce", 4) == b);
	CHECK(t.nsds == 502);
	CHECK(wtg_tree_sd(&t, a)->len == 4 && !memcmp(wtg_tree_sd(&t, a)->data, "abcd", 4));
	CHECK(wtg_tree_sd(&t, WTG_NO_SD) == NULL);
	wtg_tree_release(&t);
}

int main(void)
{
	RUN(link_targets);
	RUN(links_and_lookup);
	RUN(dos_name_per_name);
	RUN(readlink_targets);
	RUN(readlink_stays_inside);
	RUN(readlink_posix_links);
	RUN(security_descriptors_interned);
	UNIT_EXIT();
}
