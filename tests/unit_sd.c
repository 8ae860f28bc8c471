/*
 * ACE inheritance: parent SDs assembled here from SID strings and ACE lists
 * (and two real ones from a Windows image), their children compared byte for
 * byte with the SD the rules give, and malformed parents refused.  With
 * WTGFS_KEEP_SDS=DIR every parent is also written there as a fuzz seed.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "unit.h"
#include "wtgfs/le.h"
#include "wtgfs/sd.h"

#define OI WTG_ACE_OBJECT_INHERIT
#define CI WTG_ACE_CONTAINER_INHERIT
#define NP WTG_ACE_NO_PROPAGATE_INHERIT
#define IO WTG_ACE_INHERIT_ONLY
#define INH WTG_ACE_INHERITED
#define ALLOW WTG_ACE_ACCESS_ALLOWED
#define DENY WTG_ACE_ACCESS_DENIED
#define AUDIT WTG_ACE_SYSTEM_AUDIT
#define LABEL WTG_ACE_SYSTEM_MANDATORY_LABEL
#define OBJECT WTG_ACE_ACCESS_ALLOWED_OBJECT

#define GR 0x80000000u
#define GW 0x40000000u
#define GX 0x20000000u
#define GA 0x10000000u
#define FA 0x1F01FFu

#define SYSTEM "S-1-5-18"
#define ADMINS "S-1-5-32-544"
#define USERS "S-1-5-32-545"
#define GUESTS "S-1-5-32-546"
#define EVERYONE "S-1-1-0"
#define CREATOR_OWNER "S-1-3-0"
#define CREATOR_GROUP "S-1-3-1"
#define ALICE "S-1-5-21-1004336348-1177238915-682003330-1001"
#define ALICE_GROUP "S-1-5-21-1004336348-1177238915-682003330-513"

#define PARENT_CONTROL (WTG_SE_SELF_RELATIVE | WTG_SE_DACL_PRESENT | WTG_SE_DACL_AUTO_INHERITED)
#define CHILD_CONTROL PARENT_CONTROL
#define NO_ACL -1

struct tace {
	uint8_t type, flags;
	uint32_t mask;
	const char *sid;
};

/* "S-1-5-21-..." to its binary form at @out; returns its length. */
static size_t sid_bytes(const char *s, uint8_t *out)
{
	char *end;
	unsigned long long auth;
	int n = 0;

	if (strncmp(s, "S-1-", 4))
		abort();
	auth = strtoull(s + 4, &end, 10);
	out[0] = 1;
	for (int i = 0; i < 6; i++)
		out[2 + i] = (uint8_t)(auth >> 8 * (5 - i));
	while (*end == '-') {
		wtg_put_le32(out + 8 + 4 * n++, (uint32_t)strtoul(end + 1, &end, 10));
	}
	out[1] = (uint8_t)n;
	return 8 + 4 * (size_t)n;
}

static bool is_object(uint8_t type)
{
	return (type >= 5 && type <= 8) || type == 0x0B || type == 0x0C || type == 0x0F ||
	       type == 0x10;
}

/* An ACL of @n ACEs at @out (nothing for NO_ACL); returns its size.  Object
 * ACEs get an InheritedObjectType GUID of 0xAB bytes. */
static size_t acl_bytes(const struct tace *aces, int n, uint8_t *out)
{
	size_t pos = 8;
	bool object = false;

	if (n == NO_ACL)
		return 0;
	for (int i = 0; i < n; i++) {
		uint8_t *a = out + pos;
		size_t hdr = 8;
		a[0] = aces[i].type;
		a[1] = aces[i].flags;
		wtg_put_le32(a + 4, aces[i].mask);
		if (is_object(aces[i].type)) {
			object = true;
			wtg_put_le32(a + 8, 2);
			memset(a + 12, 0xAB, 16);
			hdr = 28;
		}
		size_t size = hdr + sid_bytes(aces[i].sid, a + hdr);
		wtg_put_le16(a + 2, (uint16_t)size);
		pos += size;
	}
	out[0] = object ? 4 : 2;
	out[1] = 0;
	wtg_put_le16(out + 2, (uint16_t)pos);
	wtg_put_le16(out + 4, (uint16_t)n);
	wtg_put_le16(out + 6, 0);
	return pos;
}

/* An SD in Windows' layout: header, SACL, DACL, owner, group.  NO_ACL for
 * @nsacl or @ndacl leaves that offset 0. */
static size_t sd_bytes(uint8_t *out, uint16_t control, const char *owner, const char *group,
		       const struct tace *sacl, int nsacl, const struct tace *dacl, int ndacl)
{
	size_t off = 20, n;

	memset(out, 0, 20);
	out[0] = 1;
	wtg_put_le16(out + 2, control);
	if ((n = acl_bytes(sacl, nsacl, out + off))) {
		wtg_put_le32(out + 12, (uint32_t)off);
		off += n;
	}
	if ((n = acl_bytes(dacl, ndacl, out + off))) {
		wtg_put_le32(out + 16, (uint32_t)off);
		off += n;
	}
	if (owner) {
		wtg_put_le32(out + 4, (uint32_t)off);
		off += sid_bytes(owner, out + off);
	}
	if (group) {
		wtg_put_le32(out + 8, (uint32_t)off);
		off += sid_bytes(group, out + off);
	}
	return off;
}

static void keep(const uint8_t *sd, size_t len)
{
	static int n;
	const char *dir = getenv("WTGFS_KEEP_SDS");
	char path[4096];

	if (!dir)
		return;
	snprintf(path, sizeof(path), "%s/sd-%03d", dir, n++);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(sd, 1, len, f) != len || fclose(f)) {
		fprintf(stderr, "cannot write '%s'\n", path);
		exit(1);
	}
}

static void dump(const char *what, const uint8_t *p, size_t len)
{
	fprintf(stderr, "  %s (%zu bytes):", what, len);
	for (size_t i = 0; i < len; i++)
		fprintf(stderr, "%s%02x", i % 32 ? " " : "\n    ", p[i]);
	fprintf(stderr, "\n");
}

/* Checks that the child of @parent is exactly @want; the child is valid. */
static void expect_child(int line, const uint8_t *parent, size_t plen, bool is_dir,
			 const uint8_t *want, size_t wlen)
{
	uint8_t *child = NULL;
	size_t len = 0;

	keep(parent, plen);
	int ret = wtg_sd_inherit(parent, plen, is_dir, &child, &len);
	if (ret || len != wlen || memcmp(child, want, wlen) || !wtg_sd_valid(child, len)) {
		fprintf(stderr, "%s:%d: %s child differs (ret %d, valid %d)\n", __FILE__, line,
			is_dir ? "directory" : "file", ret, child ? wtg_sd_valid(child, len) : 0);
		dump("got", child, len);
		dump("want", want, wlen);
		unit_failures++;
	}
	free(child);
}

#define EXPECT_CHILD(p, plen, is_dir, w, wlen) expect_child(__LINE__, p, plen, is_dir, w, wlen)

/* The same DACL parent for several tests: owner Alice. */
static size_t parent_with(uint8_t *out, const struct tace *dacl, int n)
{
	return sd_bytes(out, PARENT_CONTROL, ALICE, ALICE_GROUP, NULL, NO_ACL, dacl, n);
}

static size_t child_with(uint8_t *out, const struct tace *dacl, int n)
{
	return sd_bytes(out, CHILD_CONTROL, ALICE, ALICE_GROUP, NULL, NO_ACL, dacl, n);
}

static const struct tace mixed[] = {
    {ALLOW, OI | CI, FA, SYSTEM},
    {ALLOW, 0, FA, ADMINS}, /* this directory only */
    {ALLOW, CI, 0x1200A9, USERS},
    {DENY, OI | CI | IO, 0x10000, GUESTS},
    {ALLOW, OI, 0x1200A9, EVERYONE},
    {ALLOW, INH | OI | CI, 0x1301BF, ALICE}, /* inherited from further up */
};

TEST(file_child)
{
	uint8_t p[1024], w[1024];
	size_t plen = parent_with(p, mixed, 6);
	const struct tace want[] = {
	    {ALLOW, INH, FA, SYSTEM},
	    {DENY, INH, 0x10000, GUESTS},
	    {ALLOW, INH, 0x1200A9, EVERYONE},
	    {ALLOW, INH, 0x1301BF, ALICE},
	};
	size_t wlen = child_with(w, want, 4);

	CHECK(wtg_sd_valid(p, plen));
	EXPECT_CHILD(p, plen, false, w, wlen);
}

TEST(dir_child)
{
	uint8_t p[1024], w[1024];
	size_t plen = parent_with(p, mixed, 6);
	const struct tace want[] = {
	    {ALLOW, INH | OI | CI, FA, SYSTEM},		/* effective and passed on */
	    {ALLOW, INH | CI, 0x1200A9, USERS},		/* subdirectories only */
	    {DENY, INH | OI | CI, 0x10000, GUESTS},	/* IO dropped */
	    {ALLOW, INH | OI | IO, 0x1200A9, EVERYONE}, /* for files only */
	    {ALLOW, INH | OI | CI, 0x1301BF, ALICE},
	};
	size_t wlen = child_with(w, want, 5);

	EXPECT_CHILD(p, plen, true, w, wlen);
}

TEST(no_propagate)
{
	uint8_t p[1024], w[1024];
	const struct tace dacl[] = {
	    {ALLOW, OI | CI | NP, FA, SYSTEM},
	    {ALLOW, CI | NP, 0x1200A9, USERS},
	    {ALLOW, OI | NP, 0x1200A9, EVERYONE},
	    {DENY, OI | CI | NP | IO, 0x10000, GUESTS},
	};
	size_t plen = parent_with(p, dacl, 4);
	const struct tace want_file[] = {
	    {ALLOW, INH, FA, SYSTEM},
	    {ALLOW, INH, 0x1200A9, EVERYONE},
	    {DENY, INH, 0x10000, GUESTS},
	};
	const struct tace want_dir[] = {
	    {ALLOW, INH, FA, SYSTEM},
	    {ALLOW, INH, 0x1200A9, USERS},
	    {DENY, INH, 0x10000, GUESTS},
	};
	size_t wlen = child_with(w, want_file, 3);
	EXPECT_CHILD(p, plen, false, w, wlen);
	wlen = child_with(w, want_dir, 3);
	EXPECT_CHILD(p, plen, true, w, wlen);
}

TEST(inherit_only)
{
	uint8_t p[1024], w[1024];
	const struct tace dacl[] = {
	    {ALLOW, OI | IO, 0x1200A9, USERS},
	    {ALLOW, CI | IO, 0x100004, USERS},
	    {ALLOW, IO, FA, EVERYONE}, /* inherit-only but inherited by nothing */
	};
	size_t plen = parent_with(p, dacl, 3);
	const struct tace want_file[] = {
	    {ALLOW, INH, 0x1200A9, USERS},
	};
	const struct tace want_dir[] = {
	    {ALLOW, INH | OI | IO, 0x1200A9, USERS},
	    {ALLOW, INH | CI, 0x100004, USERS},
	};
	size_t wlen = child_with(w, want_file, 1);
	EXPECT_CHILD(p, plen, false, w, wlen);
	wlen = child_with(w, want_dir, 2);
	EXPECT_CHILD(p, plen, true, w, wlen);
}

TEST(generic_and_creator)
{
	uint8_t p[1024], w[1024];
	const struct tace dacl[] = {
	    {ALLOW, OI | CI | IO, GA, CREATOR_OWNER},  /* each new file's owner */
	    {ALLOW, OI | CI, GR | GX, USERS},	       /* mapped and split */
	    {ALLOW, CI | NP, GW, CREATOR_GROUP},       /* subdirectories, one level */
	    {ALLOW, OI | CI, 0x1200A9, CREATOR_GROUP}, /* no generic rights, still split */
	    {DENY, OI | CI, GR | 0x10000, GUESTS},     /* generic and specific rights */
	    {ALLOW, OI, GA, EVERYONE},		       /* files only */
	};
	size_t plen = parent_with(p, dacl, 6);
	const struct tace want_file[] = {
	    {ALLOW, INH, FA, ALICE},
	    {ALLOW, INH, 0x1200A9, USERS},
	    {ALLOW, INH, 0x1200A9, ALICE_GROUP},
	    {DENY, INH, 0x130089, GUESTS},
	    {ALLOW, INH, FA, EVERYONE},
	};
	const struct tace want_dir[] = {
	    {ALLOW, INH, FA, ALICE},
	    {ALLOW, INH | OI | CI | IO, GA, CREATOR_OWNER},
	    {ALLOW, INH, 0x1200A9, USERS},
	    {ALLOW, INH | OI | CI | IO, GR | GX, USERS},
	    {ALLOW, INH, 0x120116, ALICE_GROUP}, /* NP: nothing to pass on */
	    {ALLOW, INH, 0x1200A9, ALICE_GROUP},
	    {ALLOW, INH | OI | CI | IO, 0x1200A9, CREATOR_GROUP},
	    {DENY, INH, 0x130089, GUESTS},
	    {DENY, INH | OI | CI | IO, GR | 0x10000, GUESTS},
	    {ALLOW, INH | OI | IO, GA, EVERYONE}, /* not effective: not mapped */
	};
	size_t wlen = child_with(w, want_file, 5);
	EXPECT_CHILD(p, plen, false, w, wlen);
	wlen = child_with(w, want_dir, 10);
	EXPECT_CHILD(p, plen, true, w, wlen);
}

TEST(grandchild)
{
	/* a file in a new directory gets what a file in the parent gets when no
	 * ACE stops at one level */
	uint8_t p[1024], *dir, *f1, *f2;
	size_t dlen, l1, l2;
	const struct tace dacl[] = {
	    {ALLOW, OI | CI | IO, GA, CREATOR_OWNER},
	    {ALLOW, OI | CI, GR | GX, USERS},
	    {ALLOW, OI | CI, FA, SYSTEM},
	    {ALLOW, CI, FA, ADMINS},
	};
	size_t plen = parent_with(p, dacl, 4);

	CHECK(!wtg_sd_inherit(p, plen, true, &dir, &dlen));
	CHECK(!wtg_sd_inherit(dir, dlen, false, &f2, &l2));
	CHECK(!wtg_sd_inherit(p, plen, false, &f1, &l1));
	CHECK(l1 == l2 && !memcmp(f1, f2, l1));
	free(dir);
	free(f1);
	free(f2);
}

TEST(sacl)
{
	uint8_t p[1024], w[1024];
	const struct tace sacl[] = {
	    {AUDIT, OI | CI | WTG_ACE_SUCCESSFUL_ACCESS | WTG_ACE_FAILED_ACCESS, GW, EVERYONE},
	    {AUDIT, WTG_ACE_FAILED_ACCESS, 0x10000, EVERYONE}, /* not inheritable */
	    {LABEL, OI | CI, 1, "S-1-16-12288"},
	};
	const struct tace dacl[] = {{ALLOW, OI | CI, FA, SYSTEM}};
	uint16_t pc = PARENT_CONTROL | WTG_SE_SACL_PRESENT;
	uint16_t cc = CHILD_CONTROL | WTG_SE_SACL_PRESENT | WTG_SE_SACL_AUTO_INHERITED;
	size_t plen = sd_bytes(p, pc, ALICE, ALICE_GROUP, sacl, 3, dacl, 1);
	const struct tace want_sacl_file[] = {
	    {AUDIT, INH | WTG_ACE_SUCCESSFUL_ACCESS | WTG_ACE_FAILED_ACCESS, 0x120116, EVERYONE},
	    {LABEL, INH, 1, "S-1-16-12288"},
	};
	const struct tace want_sacl_dir[] = {
	    {AUDIT, INH | WTG_ACE_SUCCESSFUL_ACCESS | WTG_ACE_FAILED_ACCESS, 0x120116, EVERYONE},
	    {AUDIT, INH | OI | CI | IO | WTG_ACE_SUCCESSFUL_ACCESS | WTG_ACE_FAILED_ACCESS, GW,
	     EVERYONE},
	    {LABEL, INH | OI | CI, 1, "S-1-16-12288"},
	};
	const struct tace want_dacl_file[] = {{ALLOW, INH, FA, SYSTEM}};
	const struct tace want_dacl_dir[] = {{ALLOW, INH | OI | CI, FA, SYSTEM}};
	size_t wlen = sd_bytes(w, cc, ALICE, ALICE_GROUP, want_sacl_file, 2, want_dacl_file, 1);
	EXPECT_CHILD(p, plen, false, w, wlen);
	wlen = sd_bytes(w, cc, ALICE, ALICE_GROUP, want_sacl_dir, 3, want_dacl_dir, 1);
	EXPECT_CHILD(p, plen, true, w, wlen);

	/* a SACL of which nothing is inherited: none on the child */
	plen = sd_bytes(p, pc, ALICE, ALICE_GROUP, sacl + 1, 1, dacl, 1);
	wlen = child_with(w, want_dacl_file, 1);
	EXPECT_CHILD(p, plen, false, w, wlen);
	/* a NULL SACL */
	plen = sd_bytes(p, pc, ALICE, ALICE_GROUP, NULL, NO_ACL, dacl, 1);
	EXPECT_CHILD(p, plen, false, w, wlen);
}

TEST(object_aces)
{
	uint8_t p[1024], w[1024];
	const struct tace dacl[] = {
	    {OBJECT, OI | CI | IO, GA, CREATOR_OWNER}, /* copied as it is, flags aside */
	    {ALLOW, OI | CI, FA, SYSTEM},
	};
	size_t plen = parent_with(p, dacl, 2);
	const struct tace want_file[] = {
	    {OBJECT, INH, GA, CREATOR_OWNER},
	    {ALLOW, INH, FA, SYSTEM},
	};
	const struct tace want_dir[] = {
	    {OBJECT, INH | OI | CI, GA, CREATOR_OWNER},
	    {ALLOW, INH | OI | CI, FA, SYSTEM},
	};
	size_t wlen = child_with(w, want_file, 2);
	EXPECT_CHILD(p, plen, false, w, wlen);
	wlen = child_with(w, want_dir, 2);
	EXPECT_CHILD(p, plen, true, w, wlen);
	CHECK(w[20] == 4); /* ACL revision with object ACEs */

	/* an ACE of an unknown type is valid but not inherited */
	plen = parent_with(p, dacl + 1, 1);
	CHECK(p[28] == ALLOW);
	p[28] = 0x20;
	CHECK(wtg_sd_valid(p, plen));
	const struct tace fallback[] = {
	    {ALLOW, 0, FA, SYSTEM},
	    {ALLOW, 0, FA, ADMINS},
	    {ALLOW, 0, FA, ALICE},
	};
	wlen = sd_bytes(w, WTG_SE_SELF_RELATIVE | WTG_SE_DACL_PRESENT, ALICE, ALICE_GROUP, NULL,
			NO_ACL, fallback, 3);
	EXPECT_CHILD(p, plen, false, w, wlen);
}

TEST(nothing_inheritable)
{
	uint8_t p[1024], w[1024];
	const struct tace dacl[] = {
	    {ALLOW, 0, FA, SYSTEM},
	    {ALLOW, CI | NP, FA, ADMINS}, /* reaches a directory, not a file */
	};
	const uint16_t control = WTG_SE_SELF_RELATIVE | WTG_SE_DACL_PRESENT;
	const struct tace fallback[] = {
	    {ALLOW, 0, FA, SYSTEM},
	    {ALLOW, 0, FA, ADMINS},
	    {ALLOW, 0, FA, ALICE},
	};
	size_t plen = parent_with(p, dacl, 2);
	size_t wlen = sd_bytes(w, control, ALICE, ALICE_GROUP, NULL, NO_ACL, fallback, 3);
	EXPECT_CHILD(p, plen, false, w, wlen);

	/* an empty DACL; the owner already among the two */
	plen = sd_bytes(p, PARENT_CONTROL, ADMINS, SYSTEM, NULL, NO_ACL, dacl, 0);
	wlen = sd_bytes(w, control, ADMINS, SYSTEM, NULL, NO_ACL, fallback, 2);
	EXPECT_CHILD(p, plen, true, w, wlen);
}

TEST(null_dacl)
{
	uint8_t p[1024], w[1024];
	const struct tace dacl[] = {{ALLOW, OI | CI, FA, SYSTEM}};
	size_t wlen =
	    sd_bytes(w, WTG_SE_SELF_RELATIVE, ALICE, ALICE_GROUP, NULL, NO_ACL, NULL, NO_ACL);

	/* DACL_PRESENT with offset 0 */
	size_t plen = parent_with(p, NULL, NO_ACL);
	EXPECT_CHILD(p, plen, false, w, wlen);
	EXPECT_CHILD(p, plen, true, w, wlen);
	/* a DACL whose present bit is clear is not there */
	plen = sd_bytes(p, WTG_SE_SELF_RELATIVE, ALICE, ALICE_GROUP, NULL, NO_ACL, dacl, 1);
	EXPECT_CHILD(p, plen, true, w, wlen);
}

static void expect_bad(int line, const uint8_t *sd, size_t len)
{
	uint8_t *child = NULL;
	size_t clen;
	bool valid = wtg_sd_valid(sd, len);
	uint8_t *child_dir = NULL;
	int ret = wtg_sd_inherit(sd, len, false, &child, &clen);
	int ret_dir = wtg_sd_inherit(sd, len, true, &child_dir, &clen);

	if (valid || ret != -EINVAL || ret_dir != -EINVAL || child || child_dir) {
		fprintf(stderr, "%s:%d: malformed SD accepted (valid %d, ret %d/%d)\n", __FILE__,
			line, valid, ret, ret_dir);
		unit_failures++;
	}
	free(child);
	free(child_dir);
}

#define EXPECT_BAD(sd, len) expect_bad(__LINE__, sd, len)

TEST(malformed)
{
	uint8_t good[1024], p[1024 + 128];
	const struct tace dacl[] = {
	    {ALLOW, OI | CI, FA, SYSTEM},
	    {OBJECT, OI | CI, FA, USERS},
	};
	size_t len = parent_with(good, dacl, 2);
	/* layout: header 0, DACL 20 (header, ACE at 28 of 20 bytes, object ACE at
	 * 48 of 44 bytes), owner 92 (28 bytes), group 120 (28 bytes) */
	const size_t dacl_off = 20, ace_off = 28, obj_off = 48, owner_off = 92;

	CHECK(len == 148);
	CHECK(wtg_sd_valid(good, len));
	memset(p, 0, sizeof(p));
#define RESET() memcpy(p, good, len)

	EXPECT_BAD(NULL, 0);
	for (size_t n = 0; n < len; n++)
		EXPECT_BAD(good, n);

	RESET();
	p[0] = 2; /* SD revision */
	EXPECT_BAD(p, len);
	RESET();
	wtg_put_le16(p + 2, PARENT_CONTROL & ~WTG_SE_SELF_RELATIVE);
	EXPECT_BAD(p, len);

	/* offsets past the end, into the header, far away */
	const uint32_t offs[] = {(uint32_t)len, (uint32_t)len - 4, 1000, 0xFFFFFFFF, 19, 4};
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		for (int field = 4; field <= 16; field += 4) {
			RESET();
			wtg_put_le32(p + field, offs[i]);
			if (field == 12)
				wtg_put_le16(p + 2, PARENT_CONTROL | WTG_SE_SACL_PRESENT);
			EXPECT_BAD(p, len);
		}
	}

	/* SID: revision, more than 15 sub-authorities even with the bytes there */
	RESET();
	p[owner_off] = 2;
	EXPECT_BAD(p, len);
	RESET();
	p[owner_off + 1] = 16;
	EXPECT_BAD(p, len + 128);
	RESET();
	p[owner_off + 1] = 15;
	CHECK(wtg_sd_valid(p, len + 128));

	/* ACL: revision, AclSize past the end, too small, unaligned; more ACEs
	 * than fit */
	const uint8_t acl_revs[] = {0, 1, 5};
	for (size_t i = 0; i < sizeof(acl_revs); i++) {
		RESET();
		p[dacl_off] = acl_revs[i];
		EXPECT_BAD(p, len);
	}
	const uint16_t acl_sizes[] = {(uint16_t)(len - dacl_off + 4), 0xFFFF, 0, 4, 8, 70, 74};
	for (size_t i = 0; i < sizeof(acl_sizes) / sizeof(acl_sizes[0]); i++) {
		RESET();
		wtg_put_le16(p + dacl_off + 2, acl_sizes[i]);
		EXPECT_BAD(p, len);
	}
	RESET();
	wtg_put_le16(p + dacl_off + 4, 3);
	EXPECT_BAD(p, len);
	RESET();
	wtg_put_le16(p + dacl_off + 4, 0xFFFF);
	EXPECT_BAD(p, len);
	/* fewer ACEs than fit: the rest is slack, and that is allowed */
	RESET();
	wtg_put_le16(p + dacl_off + 4, 1);
	CHECK(wtg_sd_valid(p, len));

	/* ACE: size 0, below a header, below its SID, unaligned, past the ACL */
	const uint16_t ace_sizes[] = {0, 2, 4, 8, 12, 18, 22, 200};
	for (size_t i = 0; i < sizeof(ace_sizes) / sizeof(ace_sizes[0]); i++) {
		RESET();
		wtg_put_le16(p + ace_off + 2, ace_sizes[i]);
		EXPECT_BAD(p, len);
	}
	/* an unaligned size that would fit: the ACL's only ACE, slack after it */
	RESET();
	wtg_put_le16(p + dacl_off + 4, 1);
	wtg_put_le16(p + ace_off + 2, 24);
	CHECK(wtg_sd_valid(p, len));
	wtg_put_le16(p + ace_off + 2, 22);
	EXPECT_BAD(p, len);
	/* the SID in an ACE claiming more sub-authorities than the ACE holds */
	RESET();
	p[ace_off + 9] = 2;
	EXPECT_BAD(p, len);
	/* an object ACE whose flags announce a GUID that leaves no room for the
	 * SID; one too short for its fixed part */
	RESET();
	wtg_put_le32(p + obj_off + 8, 3);
	EXPECT_BAD(p, len);
	RESET();
	wtg_put_le16(p + obj_off + 2, 8);
	EXPECT_BAD(p, len);
#undef RESET

	/* valid, but with no owner or no group there is nothing to inherit from */
	size_t n = sd_bytes(p, PARENT_CONTROL, NULL, ALICE_GROUP, NULL, NO_ACL, dacl, 1);
	uint8_t *child = NULL;
	size_t clen;
	CHECK(wtg_sd_valid(p, n));
	CHECK(wtg_sd_inherit(p, n, false, &child, &clen) == -EINVAL && !child);
	n = sd_bytes(p, PARENT_CONTROL, ALICE, NULL, NULL, NO_ACL, dacl, 1);
	CHECK(wtg_sd_valid(p, n));
	CHECK(wtg_sd_inherit(p, n, false, &child, &clen) == -EINVAL && !child);
}

TEST(overflow)
{
	/* 0xFFFC bytes of CREATOR OWNER ACEs: replaced by Alice's longer SID,
	 * the child's ACL would pass 64 KiB */
	static uint8_t p[0x10000 + 256];
	size_t acl = 20, pos = acl + 8;
	unsigned count = 0;

	memset(p, 0, sizeof(p));
	p[0] = 1;
	wtg_put_le16(p + 2, PARENT_CONTROL);
	while (pos + 20 <= acl + 0xFFFC) {
		p[pos + 1] = OI;
		wtg_put_le16(p + pos + 2, 20);
		wtg_put_le32(p + pos + 4, FA);
		sid_bytes(CREATOR_OWNER, p + pos + 8);
		pos += 20;
		count++;
	}
	p[acl] = 2;
	wtg_put_le16(p + acl + 2, (uint16_t)(pos - acl));
	wtg_put_le16(p + acl + 4, (uint16_t)count);
	wtg_put_le32(p + 16, (uint32_t)acl);
	wtg_put_le32(p + 4, (uint32_t)pos);
	pos += sid_bytes(ALICE, p + pos);
	wtg_put_le32(p + 8, (uint32_t)pos);
	pos += sid_bytes(ALICE_GROUP, p + pos);

	uint8_t *child = NULL;
	size_t clen;
	CHECK(wtg_sd_valid(p, pos));
	CHECK(wtg_sd_inherit(p, pos, false, &child, &clen) == -EOVERFLOW && !child);
	/* as directory child the ACEs are OI only: inherit-only copies, fine */
	CHECK(wtg_sd_inherit(p, pos, true, &child, &clen) == 0);
	CHECK(child && wtg_sd_valid(child, clen));
	free(child);
}

/* C:\Windows and C:\ of the small test image (tests/mkimage.sh), read with
 * getfattr -n system.ntfs_acl through ntfs-3g.  Owner and group
 * TrustedInstaller; DACL protected: TrustedInstaller (this folder; subfolders
 * GA, CI|IO), SYSTEM, Administrators (this folder; GA OI|CI|IO each),
 * Users, ALL APPLICATION PACKAGES, ALL RESTRICTED APPLICATION PACKAGES
 * (this folder; GR|GX OI|CI|IO each), CREATOR OWNER (GA OI|CI|IO). */
static const uint8_t windows_sd[] = {
    0x01, 0x00, 0x04, 0x94, 0x68, 0x01, 0x00, 0x00, 0x88, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x14, 0x00, 0x00, 0x00, 0x02, 0x00, 0x54, 0x01, 0x0d, 0x00, 0x00, 0x00, 0x00, 0x00, 0x28, 0x00,
    0xff, 0x01, 0x1f, 0x00, 0x01, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x50, 0x00, 0x00, 0x00,
    0xb5, 0x89, 0xfb, 0x38, 0x19, 0x84, 0xc2, 0xcb, 0x5c, 0x6c, 0x23, 0x6d, 0x57, 0x00, 0x77, 0x6e,
    0xc0, 0x02, 0x64, 0x87, 0x00, 0x0a, 0x28, 0x00, 0x00, 0x00, 0x00, 0x10, 0x01, 0x06, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x05, 0x50, 0x00, 0x00, 0x00, 0xb5, 0x89, 0xfb, 0x38, 0x19, 0x84, 0xc2, 0xcb,
    0x5c, 0x6c, 0x23, 0x6d, 0x57, 0x00, 0x77, 0x6e, 0xc0, 0x02, 0x64, 0x87, 0x00, 0x00, 0x14, 0x00,
    0xbf, 0x01, 0x13, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x12, 0x00, 0x00, 0x00,
    0x00, 0x0b, 0x14, 0x00, 0x00, 0x00, 0x00, 0x10, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,
    0x12, 0x00, 0x00, 0x00, 0x00, 0x00, 0x18, 0x00, 0xbf, 0x01, 0x13, 0x00, 0x01, 0x02, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x05, 0x20, 0x00, 0x00, 0x00, 0x20, 0x02, 0x00, 0x00, 0x00, 0x0b, 0x18, 0x00,
    0x00, 0x00, 0x00, 0x10, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x20, 0x00, 0x00, 0x00,
    0x20, 0x02, 0x00, 0x00, 0x00, 0x00, 0x18, 0x00, 0xa9, 0x00, 0x12, 0x00, 0x01, 0x02, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x05, 0x20, 0x00, 0x00, 0x00, 0x21, 0x02, 0x00, 0x00, 0x00, 0x0b, 0x18, 0x00,
    0x00, 0x00, 0x00, 0xa0, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x20, 0x00, 0x00, 0x00,
    0x21, 0x02, 0x00, 0x00, 0x00, 0x0b, 0x14, 0x00, 0x00, 0x00, 0x00, 0x10, 0x01, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x18, 0x00, 0xa9, 0x00, 0x12, 0x00,
    0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x00, 0x0b, 0x18, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f,
    0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x18, 0x00, 0xa9, 0x00, 0x12, 0x00,
    0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f, 0x02, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00,
    0x00, 0x0b, 0x18, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f,
    0x02, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,
    0x50, 0x00, 0x00, 0x00, 0xb5, 0x89, 0xfb, 0x38, 0x19, 0x84, 0xc2, 0xcb, 0x5c, 0x6c, 0x23, 0x6d,
    0x57, 0x00, 0x77, 0x6e, 0xc0, 0x02, 0x64, 0x87, 0x01, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,
    0x50, 0x00, 0x00, 0x00, 0xb5, 0x89, 0xfb, 0x38, 0x19, 0x84, 0xc2, 0xcb, 0x5c, 0x6c, 0x23, 0x6d,
    0x57, 0x00, 0x77, 0x6e, 0xc0, 0x02, 0x64, 0x87,
};

/* C:\ : owner SYSTEM, group SYSTEM, DACL not auto-inherited: Administrators,
 * SYSTEM (FA OI|CI), CREATOR OWNER (GA OI|CI|IO), Users (RX OI|CI),
 * Authenticated Users (AppendData CI; DELETE OI|CI|IO). */
static const uint8_t root_sd[] = {
    0x01, 0x00, 0x04, 0x80, 0x9c, 0x00, 0x00, 0x00, 0xa8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x14, 0x00, 0x00, 0x00, 0x02, 0x00, 0x88, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x03,
    0x18, 0x00, 0xff, 0x01, 0x1f, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x20,
    0x00, 0x00, 0x00, 0x20, 0x02, 0x00, 0x00, 0x00, 0x03, 0x14, 0x00, 0xff, 0x01, 0x1f, 0x00,
    0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x12, 0x00, 0x00, 0x00, 0x00, 0x0b, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x10, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x03, 0x18, 0x00, 0xa9, 0x00, 0x12, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x05, 0x20, 0x00, 0x00, 0x00, 0x21, 0x02, 0x00, 0x00, 0x00, 0x02, 0x14, 0x00,
    0x04, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x0b, 0x00, 0x00,
    0x00, 0x00, 0x0b, 0x14, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x05, 0x0b, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x12,
    0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x12, 0x00, 0x00, 0x00,
};

#define TRUSTED_INSTALLER "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464"
#define ALL_APP_PACKAGES "S-1-15-2-1"
#define ALL_RESTRICTED_APP_PACKAGES "S-1-15-2-2"
#define AUTH_USERS "S-1-5-11"

TEST(windows_directory)
{
	uint8_t w[1024];
	const struct tace want_file[] = {
	    {ALLOW, INH, FA, SYSTEM},
	    {ALLOW, INH, FA, ADMINS},
	    {ALLOW, INH, 0x1200A9, USERS},
	    {ALLOW, INH, FA, TRUSTED_INSTALLER}, /* CREATOR OWNER */
	    {ALLOW, INH, 0x1200A9, ALL_APP_PACKAGES},
	    {ALLOW, INH, 0x1200A9, ALL_RESTRICTED_APP_PACKAGES},
	};
	const struct tace want_dir[] = {
	    {ALLOW, INH, FA, TRUSTED_INSTALLER},
	    {ALLOW, INH | CI | IO, GA, TRUSTED_INSTALLER},
	    {ALLOW, INH, FA, SYSTEM},
	    {ALLOW, INH | OI | CI | IO, GA, SYSTEM},
	    {ALLOW, INH, FA, ADMINS},
	    {ALLOW, INH | OI | CI | IO, GA, ADMINS},
	    {ALLOW, INH, 0x1200A9, USERS},
	    {ALLOW, INH | OI | CI | IO, GR | GX, USERS},
	    {ALLOW, INH, FA, TRUSTED_INSTALLER},
	    {ALLOW, INH | OI | CI | IO, GA, CREATOR_OWNER},
	    {ALLOW, INH, 0x1200A9, ALL_APP_PACKAGES},
	    {ALLOW, INH | OI | CI | IO, GR | GX, ALL_APP_PACKAGES},
	    {ALLOW, INH, 0x1200A9, ALL_RESTRICTED_APP_PACKAGES},
	    {ALLOW, INH | OI | CI | IO, GR | GX, ALL_RESTRICTED_APP_PACKAGES},
	};

	CHECK(wtg_sd_valid(windows_sd, sizeof(windows_sd)));
	size_t wlen = sd_bytes(w, CHILD_CONTROL, TRUSTED_INSTALLER, TRUSTED_INSTALLER, NULL, NO_ACL,
			       want_file, 6);
	EXPECT_CHILD(windows_sd, sizeof(windows_sd), false, w, wlen);
	wlen = sd_bytes(w, CHILD_CONTROL, TRUSTED_INSTALLER, TRUSTED_INSTALLER, NULL, NO_ACL,
			want_dir, 14);
	EXPECT_CHILD(windows_sd, sizeof(windows_sd), true, w, wlen);
}

TEST(windows_root)
{
	uint8_t w[1024];
	const struct tace want_file[] = {
	    {ALLOW, INH, FA, ADMINS},
	    {ALLOW, INH, FA, SYSTEM},
	    {ALLOW, INH, FA, SYSTEM}, /* CREATOR OWNER */
	    {ALLOW, INH, 0x1200A9, USERS},
	    {ALLOW, INH, 0x10000, AUTH_USERS}, /* not the CI-only AppendData */
	};
	const struct tace want_dir[] = {
	    {ALLOW, INH | OI | CI, FA, ADMINS},
	    {ALLOW, INH | OI | CI, FA, SYSTEM},
	    {ALLOW, INH, FA, SYSTEM},
	    {ALLOW, INH | OI | CI | IO, GA, CREATOR_OWNER},
	    {ALLOW, INH | OI | CI, 0x1200A9, USERS},
	    {ALLOW, INH | CI, 4, AUTH_USERS},
	    {ALLOW, INH | OI | CI, 0x10000, AUTH_USERS},
	};

	CHECK(wtg_sd_valid(root_sd, sizeof(root_sd)));
	size_t wlen = sd_bytes(w, CHILD_CONTROL, SYSTEM, SYSTEM, NULL, NO_ACL, want_file, 5);
	EXPECT_CHILD(root_sd, sizeof(root_sd), false, w, wlen);
	wlen = sd_bytes(w, CHILD_CONTROL, SYSTEM, SYSTEM, NULL, NO_ACL, want_dir, 7);
	EXPECT_CHILD(root_sd, sizeof(root_sd), true, w, wlen);
}

/* Every byte of the real SDs changed a few ways, and every cut: refused or
 * inherited into a valid child, never a crash (ASan watches). */
static void mutate(const uint8_t *sd, size_t len)
{
	uint8_t *p = malloc(len);
	const uint8_t deltas[] = {0x01, 0x04, 0x10, 0x80, 0xFF};

	for (size_t n = 0; n <= len; n++) {
		uint8_t *buf = malloc(n ? n : 1), *child;
		size_t clen;
		memcpy(buf, sd, n);
		for (int d = 0; d < 2; d++) {
			if (!wtg_sd_inherit(buf, n, d, &child, &clen)) {
				CHECK(wtg_sd_valid(child, clen));
				free(child);
			}
		}
		free(buf);
	}
	for (size_t i = 0; i < len; i++) {
		for (size_t k = 0; k < sizeof(deltas); k++) {
			uint8_t *child;
			size_t clen;
			memcpy(p, sd, len);
			p[i] ^= deltas[k];
			for (int d = 0; d < 2; d++) {
				if (!wtg_sd_inherit(p, len, d, &child, &clen)) {
					CHECK(wtg_sd_valid(child, clen));
					free(child);
				}
			}
		}
	}
	free(p);
}

TEST(mutations)
{
	mutate(windows_sd, sizeof(windows_sd));
	mutate(root_sd, sizeof(root_sd));
}

int main(void)
{
	RUN(file_child);
	RUN(dir_child);
	RUN(no_propagate);
	RUN(inherit_only);
	RUN(generic_and_creator);
	RUN(grandchild);
	RUN(sacl);
	RUN(object_aces);
	RUN(nothing_inheritable);
	RUN(null_dacl);
	RUN(malformed);
	RUN(overflow);
	RUN(windows_directory);
	RUN(windows_root);
	RUN(mutations);
	UNIT_EXIT();
}
