/*
 * Fuzz target: symlink and junction targets as a mount shows them.  The
 * input's first 4 bytes place a link in a small tree (the depth of its
 * first name, the depth of a second, hard-linked name or none) and say how
 * the rest becomes its reparse data: as is (a full reparse buffer), as the
 * substitute name of a symbolic link (relative or not) or junction, or as
 * a POSIX target through wtg_reparse_make_symlink, as a writable mount
 * stores one.  readlink through each name's directory, and without one,
 * must give a text that never leaves the tree: a run of '..' no longer
 * than the directory is deep, then names, no '.', '..' or empty component
 * after them.  Anything else traps.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wtgfs/log.h"
#include "wtgfs/names.h"
#include "wtgfs/ntfs.h"
#include "wtgfs/reparse.h"
#include "wtgfs/tree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHAIN 8

static const char *const chain_names[CHAIN] = {"Windows", "System32", "drivers", "etc",
					       "a",	  "b",	      "c",	 "d"};

/* The text read through a directory of depth @depth stays inside. */
static void check_inside(const char *t, long n, int depth)
{
	if (n < 0)
		return;
	if (n == 0 || (size_t)n != strlen(t) || t[0] == '/')
		__builtin_trap();
	if (!strcmp(t, "."))
		return;
	int ups = 0;
	bool names = false;
	for (const char *p = t;;) {
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		bool dotdot = len == 2 && p[0] == '.' && p[1] == '.';
		if (len == 0 || (len == 1 && p[0] == '.') || (dotdot && names))
			__builtin_trap();
		if (dotdot)
			ups++;
		else
			names = true;
		if (!end)
			break;
		p = end + 1;
	}
	if (ups > depth)
		__builtin_trap();
}

/* A reparse buffer of @tag whose substitute name is the UTF-8 @s. */
static size_t make_buffer(uint8_t *buf, size_t cap, uint32_t tag, bool relative, const char *s,
			  size_t len)
{
	size_t hdr = tag == NTFS_REPARSE_TAG_SYMLINK ? 12 : 8;
	long units = wtg_utf8_to_utf16le(s, len, buf + 8 + hdr, (cap - 8 - hdr) / 2);
	if (units < 0 || 2 * (size_t)units + hdr > 0xFFFF)
		return 0;
	memset(buf, 0, 8 + hdr);
	ntfs_put_le32(buf, tag);
	ntfs_put_le16(buf + 4, (uint16_t)(hdr + 2 * (size_t)units));
	ntfs_put_le16(buf + 10, (uint16_t)(2 * units));
	if (tag == NTFS_REPARSE_TAG_SYMLINK)
		ntfs_put_le32(buf + 16, relative ? NTFS_SYMLINK_FLAG_RELATIVE : 0);
	return 8 + hdr + 2 * (size_t)units;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool quiet;
	uint8_t p[4] = {0};
	uint8_t *buf = NULL;
	size_t len = 0;

	if (!quiet) {
		wtg_log_to_syslog(false);
		quiet = true;
	}
	memcpy(p, data, size < 4 ? size : 4);
	data += size < 4 ? size : 4;
	size -= size < 4 ? size : 4;
	if (size > 16384)
		return 0;

	int mode = p[2] % 4;
	if (mode == 0) { /* a reparse buffer as an image holds it */
		buf = malloc(size ? size : 1);
		memcpy(buf, data, size);
		len = size;
	} else if (mode == 3) { /* a POSIX target, as symlink(2) on the mount */
		char *target = malloc(size + 1);
		memcpy(target, data, size);
		target[size] = '\0';
		if (wtg_reparse_make_symlink(target, &buf, &len) < 0)
			buf = NULL;
		free(target);
	} else { /* a symlink (relative or not) or junction to this name */
		buf = malloc(2 * size + 64);
		uint32_t tag = mode == 1 ? NTFS_REPARSE_TAG_SYMLINK : NTFS_REPARSE_TAG_MOUNT_POINT;
		len = make_buffer(buf, 2 * size + 64, tag, p[3] & 1, (const char *)data, size);
	}
	if (!buf || len == 0 || len > UINT32_MAX) {
		free(buf);
		return 0;
	}

	struct wtg_tree t;
	wtg_tree_init(&t, NULL);
	struct wtg_inode *dirs[CHAIN + 1];
	dirs[0] = wtg_tree_new_inode(&t, true);
	dirs[0]->parent = dirs[0];
	for (int i = 1; i <= CHAIN; i++) {
		dirs[i] = wtg_tree_new_inode(&t, true);
		wtg_tree_link(&t, dirs[i - 1], chain_names[i - 1], strlen(chain_names[i - 1]),
			      dirs[i]);
	}
	/* a side branch, so targets that leave the chain can still exist */
	struct wtg_inode *users = wtg_tree_new_inode(&t, true);
	wtg_tree_link(&t, dirs[0], "Users", 5, users);
	wtg_tree_link(&t, users, "passwd", 6, wtg_tree_new_inode(&t, false));

	struct wtg_inode *in = wtg_tree_new_inode(&t, p[3] & 2);
	in->attributes |= NTFS_ATTR_REPARSE_POINT;
	in->reparse_tag = len >= 4 ? ntfs_get_le32(buf) : 0;
	in->reparse = buf;
	in->reparse_len = (uint32_t)len;
	int d1 = p[0] % (CHAIN + 1), d2 = p[1] % (CHAIN + 1);
	wtg_tree_link(&t, dirs[d1], "link", 4, in);
	bool second = !(p[1] & 0x80) && !in->dir;
	if (second)
		wtg_tree_link(&t, dirs[d2], "link2", 5, in);

	char out[8192];
	check_inside(out, wtg_tree_readlink(&t, in, dirs[d1], out, sizeof(out)), d1);
	if (second)
		check_inside(out, wtg_tree_readlink(&t, in, dirs[d2], out, sizeof(out)), d2);
	int shallow = second && d2 < d1 ? d2 : d1;
	check_inside(out, wtg_tree_readlink(&t, in, NULL, out, sizeof(out)), shallow);
	/* a directory that holds no name of it: as without one */
	check_inside(out, wtg_tree_readlink(&t, in, users, out, sizeof(out)), shallow);
	/* a short buffer is refused, never overrun */
	long n = wtg_tree_readlink(&t, in, dirs[d1], out, 3);
	if (n >= 3)
		__builtin_trap();
	wtg_tree_release(&t);
	return 0;
}
