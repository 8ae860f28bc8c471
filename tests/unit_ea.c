/*
 * NTFS extended attribute buffers: the checks ntfs-3g makes before it
 * writes a $EA, lookups, the EAs WSL gives special files, and the POSIX
 * type the tree derives from WSL's reparse tags.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "unit.h"
#include "wtgfs/ea.h"
#include "wtgfs/ntfs.h"
#include "wtgfs/tree.h"

/* What ntfs-3g -o special_files=wsl writes for 'mknod c 4 5' (mode 0644). */
static const uint8_t chr_ea[] = {
    0x14, 0, 0, 0, 0, 6, 4, 0, '$', 'L', 'X', 'M', 'O', 'D', 0, 0xa4, 0x21, 0, 0, 0,
    0x18, 0, 0, 0, 0, 6, 8, 0, '$', 'L', 'X', 'D', 'E', 'V', 0, 4, 0, 0, 0, 5, 0, 0, 0, 0};

TEST(valid)
{
	uint8_t b[sizeof(chr_ea)];

	CHECK(wtg_ea_valid(chr_ea, sizeof(chr_ea)));
	CHECK(wtg_ea_valid(chr_ea, 20)); /* the first entry alone */
	CHECK(!wtg_ea_valid(chr_ea, 0));
	CHECK(!wtg_ea_valid(NULL, 4));
	CHECK(!wtg_ea_valid(chr_ea, 19)); /* cut inside an entry */
	CHECK(!wtg_ea_valid(chr_ea, 24)); /* a second entry cut short */
	memcpy(b, chr_ea, sizeof(b));
	b[0] = 0x13; /* not a multiple of 4 */
	CHECK(!wtg_ea_valid(b, sizeof(b)));
	b[0] = 0; /* no progress */
	CHECK(!wtg_ea_valid(b, sizeof(b)));
	b[0] = 0x80; /* past the end */
	CHECK(!wtg_ea_valid(b, sizeof(b)));
	memcpy(b, chr_ea, sizeof(b));
	b[5] = 0; /* an empty name */
	CHECK(!wtg_ea_valid(b, sizeof(b)));
	memcpy(b, chr_ea, sizeof(b));
	b[14] = 'X'; /* no NUL after the name */
	CHECK(!wtg_ea_valid(b, sizeof(b)));
	memcpy(b, chr_ea, sizeof(b));
	b[6] = 9; /* a value longer than its entry */
	CHECK(!wtg_ea_valid(b, sizeof(b)));
	uint8_t pad[24] = {0};
	memcpy(pad, chr_ea, 20);
	pad[0] = 0x18; /* more than 3 bytes of padding */
	CHECK(!wtg_ea_valid(pad, sizeof(pad)));
}

TEST(find)
{
	const uint8_t *v;
	size_t n;
	uint32_t major, minor;

	CHECK(wtg_ea_find(chr_ea, sizeof(chr_ea), "$LXMOD", &v, &n) == 0 && n == 4 &&
	      ntfs_get_le32(v) == 020644);
	CHECK(wtg_ea_find(chr_ea, sizeof(chr_ea), "$LXDE", &v, &n) == -ENODATA);
	CHECK(wtg_ea_find(chr_ea, sizeof(chr_ea), "$LXUID", &v, &n) == -ENODATA);
	CHECK(wtg_ea_find(NULL, 0, "$LXMOD", &v, &n) == -ENODATA);
	CHECK(wtg_ea_wsl_dev(chr_ea, sizeof(chr_ea), &major, &minor) == 0 && major == 4 &&
	      minor == 5);
	CHECK(wtg_ea_wsl_dev(chr_ea, 20, &major, &minor) == -ENODATA);
}

TEST(make_wsl)
{
	uint8_t *b;
	size_t n;

	CHECK(wtg_ea_make_wsl(S_IFCHR | 0644, 4, 5, &b, &n) == 0);
	CHECK(n == sizeof(chr_ea) && !memcmp(b, chr_ea, n));
	free(b);
	CHECK(wtg_ea_make_wsl(S_IFIFO | 0644, 9, 9, &b, &n) == 0);
	CHECK(n == 20 && !memcmp(b, chr_ea, 14) && b[15] == 0xa4 && b[16] == 0x11);
	CHECK(wtg_ea_valid(b, n));
	free(b);
}

TEST(posix_type)
{
	uint8_t ea[sizeof(chr_ea)];
	struct wtg_inode in = {.attributes = NTFS_ATTR_REPARSE_POINT};
	uint32_t major = 9, minor = 9;

	memcpy(ea, chr_ea, sizeof(ea));
	in.reparse_tag = NTFS_REPARSE_TAG_LX_FIFO;
	CHECK(wtg_inode_posix_type(&in, &major, &minor) == S_IFIFO && major == 0 && minor == 0);
	in.reparse_tag = NTFS_REPARSE_TAG_AF_UNIX;
	CHECK(wtg_inode_posix_type(&in, NULL, NULL) == S_IFSOCK);
	in.reparse_tag = NTFS_REPARSE_TAG_LX_BLK;
	CHECK(wtg_inode_posix_type(&in, &major, &minor) == S_IFBLK && major == 0);
	in.reparse_tag = NTFS_REPARSE_TAG_LX_CHR;
	in.ea = ea;
	in.ea_len = sizeof(ea);
	CHECK(wtg_inode_posix_type(&in, &major, &minor) == S_IFCHR && major == 4 && minor == 5);
	in.attributes = 0; /* the tag counts only on a reparse point */
	CHECK(wtg_inode_posix_type(&in, NULL, NULL) == S_IFREG);
	in.attributes = NTFS_ATTR_REPARSE_POINT;
	in.reparse_tag = NTFS_REPARSE_TAG_SYMLINK;
	CHECK(wtg_inode_posix_type(&in, NULL, NULL) == S_IFLNK);
	in.reparse_tag = NTFS_REPARSE_TAG_WOF;
	CHECK(wtg_inode_posix_type(&in, NULL, NULL) == S_IFREG);
}

TEST(put_u32)
{
	static const char *const ug[] = {"$LXUID", "$LXGID"};
	static const char *const mod[] = {"$LXMOD"};
	const uint32_t ugv[] = {1000, 100}, modv[] = {020600};
	uint8_t *b, *c;
	size_t n, m;
	uint32_t x;

	/* from none */
	CHECK(wtg_ea_put_u32(NULL, 0, ug, ugv, 2, &b, &n) == 0 && wtg_ea_valid(b, n));
	CHECK(wtg_ea_wsl_u32(b, n, "$LXUID", &x) == 0 && x == 1000);
	CHECK(wtg_ea_wsl_u32(b, n, "$LXGID", &x) == 0 && x == 100);
	CHECK(wtg_ea_wsl_u32(b, n, "$LXMOD", &x) == -ENODATA);
	free(b);
	/* $LXMOD replaced, $LXDEV kept */
	CHECK(wtg_ea_put_u32(chr_ea, sizeof(chr_ea), mod, modv, 1, &b, &n) == 0);
	CHECK(wtg_ea_valid(b, n) && n == sizeof(chr_ea));
	CHECK(wtg_ea_wsl_u32(b, n, "$LXMOD", &x) == 0 && x == 020600);
	uint32_t major, minor;
	CHECK(wtg_ea_wsl_dev(b, n, &major, &minor) == 0 && major == 4 && minor == 5);
	CHECK(wtg_ea_put_u32(b, n, ug, ugv, 2, &c, &m) == 0 && wtg_ea_valid(c, m));
	CHECK(wtg_ea_wsl_u32(c, m, "$LXMOD", &x) == 0 && x == 020600);
	CHECK(wtg_ea_wsl_u32(c, m, "$LXGID", &x) == 0 && x == 100);
	free(b);
	free(c);
	/* a malformed one is refused */
	CHECK(wtg_ea_put_u32(chr_ea, 19, mod, modv, 1, &b, &n) == -EINVAL);
	CHECK(wtg_ea_wsl_u32(chr_ea, sizeof(chr_ea), "$LXDEV", &x) == -ENODATA); /* 8 bytes */
}

int main(void)
{
	RUN(valid);
	RUN(find);
	RUN(make_wsl);
	RUN(posix_type);
	RUN(put_u32);
	UNIT_EXIT();
}
