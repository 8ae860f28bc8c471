/*
 * ACE inheritance: the security descriptor a file or directory created by
 * us gets from its parent directory's, computed the way Windows does for a
 * new NTFS file without an explicit SD (SeAssignSecurity with automatic
 * inheritance), so that a Windows booted from the volume later sees the
 * permissions it would have given the file itself.  The parent's bytes come
 * from an image: they are checked whole by sd_parse before anything is
 * built, and the child is measured before it is written.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wtgfs/ntfs.h"
#include "wtgfs/sd.h"

/* ---- on-disk structures (MS-DTYP 2.4.2, 2.4.4.1, 2.4.5, 2.4.6) ---- */

struct sd_header {
	uint8_t revision; /* 0x00: 1 */
	uint8_t sbz1;	  /* 0x01: resource-manager bits, ignored */
	uint16_t control; /* 0x02 le16: WTG_SE_* */
	uint32_t owner;	  /* 0x04 le32: offset of the owner SID, 0 for none */
	uint32_t group;	  /* 0x08 le32: offset of the group SID, 0 for none */
	uint32_t sacl;	  /* 0x0C le32: offset of the SACL, 0 for none */
	uint32_t dacl;	  /* 0x10 le32: offset of the DACL, 0 for none (a NULL DACL) */
} __attribute__((packed));
_Static_assert(sizeof(struct sd_header) == 20, "SD header is 20 bytes");

struct acl_header {
	uint8_t revision; /* 0x00: 2, or 4 with object ACEs */
	uint8_t sbz1;	  /* 0x01 */
	uint16_t size;	  /* 0x02 le16: header and ACEs, bytes */
	uint16_t count;	  /* 0x04 le16: ACEs */
	uint16_t sbz2;	  /* 0x06 */
} __attribute__((packed));
_Static_assert(sizeof(struct acl_header) == 8, "ACL header is 8 bytes");

struct ace_header {
	uint8_t type;  /* 0x00: WTG_ACE_* type */
	uint8_t flags; /* 0x01: WTG_ACE_* flags */
	uint16_t size; /* 0x02 le16: whole ACE, bytes */
} __attribute__((packed));
_Static_assert(sizeof(struct ace_header) == 4, "ACE header is 4 bytes");

/* An ACE of the common layout: mask at 0x04, SID at 0x08, then any
 * application data up to the ACE's size. */
struct ace_common {
	struct ace_header h; /* 0x00 */
	uint32_t mask;	     /* 0x04 le32: access rights */
} __attribute__((packed));
_Static_assert(sizeof(struct ace_common) == 8, "ACE common part is 8 bytes");

/* An object ACE: the GUIDs are there only when their flag bit is set. */
struct ace_object {
	struct ace_header h; /* 0x00 */
	uint32_t mask;	     /* 0x04 le32 */
	uint32_t flags;	     /* 0x08 le32: 1 ObjectType present, 2 InheritedObjectType */
} __attribute__((packed));
_Static_assert(sizeof(struct ace_object) == 12, "object ACE fixed part is 12 bytes");

struct sid_header {
	uint8_t revision;     /* 0x00: 1 */
	uint8_t sub_count;    /* 0x01: at most SID_MAX_SUB */
	uint8_t authority[6]; /* 0x02: big-endian */
	uint32_t sub[];	      /* 0x08 le32: sub_count sub-authorities */
} __attribute__((packed));
_Static_assert(sizeof(struct sid_header) == 8, "SID header is 8 bytes");

#define SID_MAX_SUB 15
#define ACL_REVISION 2
#define ACL_REVISION_DS 4
#define ACL_MAX_SIZE 0xFFFFu

#define GENERIC_READ 0x80000000u
#define GENERIC_WRITE 0x40000000u
#define GENERIC_EXECUTE 0x20000000u
#define GENERIC_ALL 0x10000000u
#define GENERIC_BITS (GENERIC_READ | GENERIC_WRITE | GENERIC_EXECUTE | GENERIC_ALL)
#define FILE_ALL_ACCESS 0x1F01FFu

#define AUDIT_BITS (WTG_ACE_SUCCESSFUL_ACCESS | WTG_ACE_FAILED_ACCESS)

static const uint8_t sid_creator_owner[] = {1, 1, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0};
static const uint8_t sid_creator_group[] = {1, 1, 0, 0, 0, 0, 0, 3, 1, 0, 0, 0};
static const uint8_t sid_system[] = {1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0};
static const uint8_t sid_admins[] = {1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 0x02, 0, 0};

/* ---- checking ---- */

struct sid_view {
	const uint8_t *p; /* NULL: none */
	size_t len;
};

struct acl_view {
	const uint8_t *p; /* header included; NULL: none */
	unsigned count;
};

struct sd_view {
	uint16_t control;
	struct sid_view owner, group;
	struct acl_view sacl, dacl;
};

/* The length of the SID at @p, or 0 when it is not one or passes @avail. */
static size_t sid_len(const uint8_t *p, size_t avail)
{
	struct sid_header h;

	if (avail < sizeof(h))
		return 0;
	memcpy(&h, p, sizeof(h));
	if (h.revision != 1 || h.sub_count > SID_MAX_SUB)
		return 0;
	size_t n = sizeof(h) + 4 * (size_t)h.sub_count;
	return n <= avail ? n : 0;
}

enum ace_kind {
	ACE_RIGHTS,  /* common layout, the mask is access rights */
	ACE_OPAQUE,  /* common layout, the mask means something else */
	ACE_OBJECT,  /* object ACE */
	ACE_UNKNOWN, /* not a type MS-DTYP defines */
};

static enum ace_kind ace_kind(uint8_t type)
{
	switch (type) {
	case 0x00: /* ACCESS_ALLOWED */
	case 0x01: /* ACCESS_DENIED */
	case 0x02: /* SYSTEM_AUDIT */
	case 0x03: /* SYSTEM_ALARM */
	case 0x09: /* ACCESS_ALLOWED_CALLBACK */
	case 0x0A: /* ACCESS_DENIED_CALLBACK */
	case 0x0D: /* SYSTEM_AUDIT_CALLBACK */
	case 0x0E: /* SYSTEM_ALARM_CALLBACK */
		return ACE_RIGHTS;
	case 0x11: /* SYSTEM_MANDATORY_LABEL */
	case 0x12: /* SYSTEM_RESOURCE_ATTRIBUTE */
	case 0x13: /* SYSTEM_SCOPED_POLICY_ID */
		return ACE_OPAQUE;
	case 0x05: /* ACCESS_ALLOWED_OBJECT */
	case 0x06: /* ACCESS_DENIED_OBJECT */
	case 0x07: /* SYSTEM_AUDIT_OBJECT */
	case 0x08: /* SYSTEM_ALARM_OBJECT */
	case 0x0B: /* ACCESS_ALLOWED_CALLBACK_OBJECT */
	case 0x0C: /* ACCESS_DENIED_CALLBACK_OBJECT */
	case 0x0F: /* SYSTEM_AUDIT_CALLBACK_OBJECT */
	case 0x10: /* SYSTEM_ALARM_CALLBACK_OBJECT */
		return ACE_OBJECT;
	default:
		return ACE_UNKNOWN;
	}
}

/* Whether the ACE of @size bytes at @p holds its SID (and GUIDs); an ACE of
 * an unknown type is opaque bytes. */
static bool ace_ok(const uint8_t *p, size_t size)
{
	switch (ace_kind(p[0])) {
	case ACE_RIGHTS:
	case ACE_OPAQUE:
		return size >= sizeof(struct ace_common) &&
		       sid_len(p + sizeof(struct ace_common), size - sizeof(struct ace_common));
	case ACE_OBJECT: {
		if (size < sizeof(struct ace_object))
			return false;
		uint32_t oflags = ntfs_get_le32(p + offsetof(struct ace_object, flags));
		size_t off =
		    sizeof(struct ace_object) + (oflags & 1 ? 16 : 0) + (oflags & 2 ? 16 : 0);
		return size >= off && sid_len(p + off, size - off);
	}
	default:
		return true;
	}
}

static bool acl_parse(const uint8_t *sd, size_t len, uint32_t off, struct acl_view *acl)
{
	struct acl_header h;

	if (off < sizeof(struct sd_header) || off > len || len - off < sizeof(h))
		return false;
	memcpy(&h, sd + off, sizeof(h));
	size_t size = le16toh(h.size);
	if (h.revision < ACL_REVISION || h.revision > ACL_REVISION_DS || size < sizeof(h) ||
	    size % 4 || size > len - off)
		return false;
	const uint8_t *p = sd + off;
	unsigned count = le16toh(h.count);
	size_t pos = sizeof(h);
	for (unsigned i = 0; i < count; i++) {
		struct ace_header a;
		if (size - pos < sizeof(a))
			return false;
		memcpy(&a, p + pos, sizeof(a));
		size_t asize = le16toh(a.size);
		if (asize < sizeof(a) || asize % 4 || asize > size - pos || !ace_ok(p + pos, asize))
			return false;
		pos += asize;
	}
	acl->p = p;
	acl->count = count;
	return true;
}

static bool sid_parse(const uint8_t *sd, size_t len, uint32_t off, struct sid_view *sid)
{
	if (!off)
		return true;
	if (off < sizeof(struct sd_header) || off > len)
		return false;
	sid->p = sd + off;
	sid->len = sid_len(sid->p, len - off);
	return sid->len != 0;
}

/* Checks the whole of @sd and fills @v; false when it is malformed. */
static bool sd_parse(const uint8_t *sd, size_t len, struct sd_view *v)
{
	struct sd_header h;

	memset(v, 0, sizeof(*v));
	if (!sd || len < sizeof(h))
		return false;
	memcpy(&h, sd, sizeof(h));
	v->control = le16toh(h.control);
	if (h.revision != 1 || !(v->control & WTG_SE_SELF_RELATIVE))
		return false;
	if (!sid_parse(sd, len, le32toh(h.owner), &v->owner) ||
	    !sid_parse(sd, len, le32toh(h.group), &v->group))
		return false;
	/* an offset whose present bit is clear is ignored, as Windows does */
	if ((v->control & WTG_SE_SACL_PRESENT) && h.sacl &&
	    !acl_parse(sd, len, le32toh(h.sacl), &v->sacl))
		return false;
	if ((v->control & WTG_SE_DACL_PRESENT) && h.dacl &&
	    !acl_parse(sd, len, le32toh(h.dacl), &v->dacl))
		return false;
	return true;
}

bool wtg_sd_valid(const uint8_t *sd, size_t len)
{
	struct sd_view v;

	return sd_parse(sd, len, &v);
}

/* ---- building ---- */

/* A child ACL being measured (buf NULL) or written (buf sized by the
 * measuring pass); ACEs start at sizeof(struct acl_header). */
struct acl_out {
	uint8_t *buf;
	size_t pos;
	unsigned count;
	bool object;   /* holds an object ACE: revision 4 */
	bool overflow; /* an ACE passed 64 KiB */
};

static bool sid_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	return alen == blen && !memcmp(a, b, alen);
}

static uint32_t map_generic(uint32_t mask)
{
	uint32_t m = mask & ~GENERIC_BITS;

	if (mask & GENERIC_READ)
		m |= 0x120089;
	if (mask & GENERIC_WRITE)
		m |= 0x120116;
	if (mask & GENERIC_EXECUTE)
		m |= 0x1200A0;
	if (mask & GENERIC_ALL)
		m |= FILE_ALL_ACCESS;
	return m;
}

/* The owner or group a creator SID of @ace (common layout) stands for;
 * NULL when its SID is not one. */
static const struct sid_view *creator_of(const uint8_t *ace, size_t sidlen, const struct sd_view *v)
{
	const uint8_t *sid = ace + sizeof(struct ace_common);

	if (sid_equal(sid, sidlen, sid_creator_owner, sizeof(sid_creator_owner)))
		return &v->owner;
	if (sid_equal(sid, sidlen, sid_creator_group, sizeof(sid_creator_group)))
		return &v->group;
	return NULL;
}

static void put_raw(struct acl_out *o, const uint8_t *ace, size_t size, uint8_t flags)
{
	if (o->buf) {
		memcpy(o->buf + o->pos, ace, size);
		o->buf[o->pos + 1] = flags;
	}
	o->pos += size;
	o->count++;
}

/* Writes @ace (common layout) effective on the child: generic rights mapped,
 * a creator SID replaced by whom it stands for, application data kept. */
static void put_mapped(struct acl_out *o, const uint8_t *ace, size_t size, uint8_t flags,
		       const struct sd_view *v)
{
	size_t hdr = sizeof(struct ace_common);
	size_t old = sid_len(ace + hdr, size - hdr);
	const struct sid_view *who = creator_of(ace, old, v);
	const uint8_t *sid = who ? who->p : ace + hdr;
	size_t slen = who ? who->len : old;
	size_t n = hdr + slen + (size - hdr - old);

	if (n > ACL_MAX_SIZE) {
		o->overflow = true;
		return;
	}
	if (o->buf) {
		uint8_t *d = o->buf + o->pos;
		d[0] = ace[0];
		d[1] = flags;
		ntfs_put_le16(d + 2, (uint16_t)n);
		ntfs_put_le32(d + 4, map_generic(ntfs_get_le32(ace + 4)));
		memcpy(d + hdr, sid, slen);
		memcpy(d + hdr + slen, ace + hdr + old, size - hdr - old);
	}
	o->pos += n;
	o->count++;
}

/* What one parent ACE gives the child: nothing, one ACE, or an effective
 * ACE followed by an inherit-only copy of the original. */
static void inherit_ace(struct acl_out *o, const uint8_t *ace, bool is_dir, const struct sd_view *v)
{
	struct ace_header h;

	memcpy(&h, ace, sizeof(h));
	size_t size = le16toh(h.size);
	enum ace_kind kind = ace_kind(h.type);
	uint8_t keep = (h.flags & AUDIT_BITS) | WTG_ACE_INHERITED;
	uint8_t pass_on; /* flags of the copy that is inherited further */
	bool effective;

	if (kind == ACE_UNKNOWN)
		return;
	if (!is_dir) {
		if (!(h.flags & WTG_ACE_OBJECT_INHERIT))
			return;
		effective = true;
		pass_on = 0;
	} else if (h.flags & WTG_ACE_CONTAINER_INHERIT) {
		effective = true;
		pass_on = h.flags & WTG_ACE_NO_PROPAGATE_INHERIT
			      ? 0
			      : h.flags & (WTG_ACE_OBJECT_INHERIT | WTG_ACE_CONTAINER_INHERIT);
	} else if ((h.flags & WTG_ACE_OBJECT_INHERIT) &&
		   !(h.flags & WTG_ACE_NO_PROPAGATE_INHERIT)) {
		/* for the files the directory will hold, nothing for itself */
		effective = false;
		pass_on = WTG_ACE_OBJECT_INHERIT | WTG_ACE_INHERIT_ONLY;
	} else {
		return;
	}
	if (kind == ACE_OBJECT)
		o->object = true;

	bool rewrite = false;
	if (effective && kind == ACE_RIGHTS) {
		size_t hdr = sizeof(struct ace_common);
		rewrite = (ntfs_get_le32(ace + 4) & GENERIC_BITS) ||
			  creator_of(ace, sid_len(ace + hdr, size - hdr), v);
	}
	if (!rewrite) {
		put_raw(o, ace, size, keep | pass_on);
		return;
	}
	put_mapped(o, ace, size, keep, v);
	if (pass_on)
		put_raw(o, ace, size, keep | pass_on | WTG_ACE_INHERIT_ONLY);
}

static void inherit_acl(struct acl_out *o, const struct acl_view *acl, bool is_dir,
			const struct sd_view *v)
{
	const uint8_t *p = acl->p + sizeof(struct acl_header);

	for (unsigned i = 0; i < acl->count; i++) {
		struct ace_header h;
		memcpy(&h, p, sizeof(h));
		inherit_ace(o, p, is_dir, v);
		p += le16toh(h.size);
	}
}

static void put_allowed(struct acl_out *o, const uint8_t *sid, size_t slen)
{
	size_t n = sizeof(struct ace_common) + slen;

	if (o->buf) {
		uint8_t *d = o->buf + o->pos;
		d[0] = WTG_ACE_ACCESS_ALLOWED;
		d[1] = 0;
		ntfs_put_le16(d + 2, (uint16_t)n);
		ntfs_put_le32(d + 4, FILE_ALL_ACCESS);
		memcpy(d + sizeof(struct ace_common), sid, slen);
	}
	o->pos += n;
	o->count++;
}

/* The stand-in for the creator token's default DACL. */
static void default_dacl(struct acl_out *o, const struct sd_view *v)
{
	put_allowed(o, sid_system, sizeof(sid_system));
	put_allowed(o, sid_admins, sizeof(sid_admins));
	if (!sid_equal(v->owner.p, v->owner.len, sid_system, sizeof(sid_system)) &&
	    !sid_equal(v->owner.p, v->owner.len, sid_admins, sizeof(sid_admins)))
		put_allowed(o, v->owner.p, v->owner.len);
}

/* Builds (o->buf NULL: measures) the child's SACL and DACL; *dacl_default
 * tells whether the DACL is the stand-in. */
static void child_acls(struct acl_out *sacl, struct acl_out *dacl, bool *dacl_default,
		       const struct sd_view *v, bool is_dir)
{
	*sacl = (struct acl_out){.buf = sacl->buf, .pos = sizeof(struct acl_header)};
	*dacl = (struct acl_out){.buf = dacl->buf, .pos = sizeof(struct acl_header)};
	if (v->sacl.p)
		inherit_acl(sacl, &v->sacl, is_dir, v);
	if (v->dacl.p)
		inherit_acl(dacl, &v->dacl, is_dir, v);
	*dacl_default = v->dacl.p && !dacl->count;
	if (*dacl_default)
		default_dacl(dacl, v);
}

static void put_acl_header(const struct acl_out *o)
{
	struct acl_header h = {
	    .revision = o->object ? ACL_REVISION_DS : ACL_REVISION,
	    .size = htole16((uint16_t)o->pos),
	    .count = htole16((uint16_t)o->count),
	};

	memcpy(o->buf, &h, sizeof(h));
}

int wtg_sd_inherit(const uint8_t *parent, size_t len, bool is_dir, uint8_t **child_ret,
		   size_t *len_ret)
{
	struct sd_view v;
	struct acl_out sacl = {0}, dacl = {0};
	bool dacl_default;

	if (!sd_parse(parent, len, &v) || !v.owner.p || !v.group.p)
		return -EINVAL;
	child_acls(&sacl, &dacl, &dacl_default, &v, is_dir);
	if (sacl.overflow || dacl.overflow || sacl.pos > ACL_MAX_SIZE || dacl.pos > ACL_MAX_SIZE)
		return -EOVERFLOW;
	bool has_sacl = sacl.count > 0, has_dacl = v.dacl.p != NULL;
	size_t sacl_size = has_sacl ? sacl.pos : 0, dacl_size = has_dacl ? dacl.pos : 0;
	size_t total = sizeof(struct sd_header) + sacl_size + dacl_size + v.owner.len + v.group.len;
	uint8_t *out = malloc(total);
	if (!out)
		return -ENOMEM;

	/* every part is a multiple of 4 bytes long, so each offset is aligned */
	uint16_t control = WTG_SE_SELF_RELATIVE;
	size_t off = sizeof(struct sd_header);
	struct sd_header h = {.revision = 1};
	if (has_sacl) {
		control |= WTG_SE_SACL_PRESENT | WTG_SE_SACL_AUTO_INHERITED;
		h.sacl = htole32((uint32_t)off);
		sacl.buf = out + off;
		off += sacl_size;
	}
	if (has_dacl) {
		control |= WTG_SE_DACL_PRESENT;
		h.dacl = htole32((uint32_t)off);
		dacl.buf = out + off;
		off += dacl_size;
	}
	child_acls(&sacl, &dacl, &dacl_default, &v, is_dir);
	if (has_sacl)
		put_acl_header(&sacl);
	if (has_dacl) {
		put_acl_header(&dacl);
		if (!dacl_default)
			control |= WTG_SE_DACL_AUTO_INHERITED;
	}
	h.owner = htole32((uint32_t)off);
	memcpy(out + off, v.owner.p, v.owner.len);
	off += v.owner.len;
	h.group = htole32((uint32_t)off);
	memcpy(out + off, v.group.p, v.group.len);
	h.control = htole16(control);
	memcpy(out, &h, sizeof(h));
	*child_ret = out;
	*len_ret = total;
	return 0;
}

/* ---- SDDL, for people reading a diff ---- */

/* Well-known SIDs by their SDDL aliases (MS-DTYP 2.4.2.4). */
static const struct {
	const char *sid, *alias;
} sid_aliases[] = {
    {"S-1-1-0", "WD"},	     {"S-1-3-0", "CO"},	      {"S-1-3-1", "CG"},
    {"S-1-5-7", "AN"},	     {"S-1-5-11", "AU"},      {"S-1-5-18", "SY"},
    {"S-1-5-19", "LS"},	     {"S-1-5-20", "NS"},      {"S-1-5-32-544", "BA"},
    {"S-1-5-32-545", "BU"},  {"S-1-5-32-546", "BG"},  {"S-1-5-32-547", "PU"},
    {"S-1-5-4", "IU"},	     {"S-1-5-6", "SU"},	      {"S-1-5-2", "NU"},
    {"S-1-15-2-1", "AC"},    {"S-1-16-4096", "LW"},   {"S-1-16-8192", "ME"},
    {"S-1-16-12288", "HI"},  {"S-1-16-16384", "SI"},  {"S-1-5-32-555", "RD"},
};

/* The SID at @p (checked, @len bytes) as SDDL: an alias when it has one. */
static void sid_text(const uint8_t *p, size_t len, char *buf, size_t size)
{
	uint64_t auth = 0;
	size_t n;

	for (int i = 0; i < 6; i++)
		auth = auth << 8 | p[2 + i];
	n = (size_t)snprintf(buf, size, "S-1-%llu", (unsigned long long)auth);
	for (size_t i = 0; i < p[1] && 8 + 4 * i + 4 <= len && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "-%u", ntfs_get_le32(p + 8 + 4 * i));
	for (size_t i = 0; i < sizeof(sid_aliases) / sizeof(sid_aliases[0]); i++)
		if (!strcmp(buf, sid_aliases[i].sid)) {
			snprintf(buf, size, "%s", sid_aliases[i].alias);
			return;
		}
}

static const char *ace_type_text(uint8_t type)
{
	static const char *const names[] = {
	    [0x00] = "A",   [0x01] = "D",   [0x02] = "AU",  [0x03] = "AL",  [0x05] = "OA",
	    [0x06] = "OD",  [0x07] = "OU",  [0x08] = "OL",  [0x09] = "XA",  [0x0A] = "XD",
	    [0x0B] = "ZA",  [0x0D] = "XU",  [0x11] = "ML",  [0x12] = "RA",  [0x13] = "SP",
	};
	return type < sizeof(names) / sizeof(names[0]) ? names[type] : NULL;
}

static void rights_text(uint32_t mask, char *buf, size_t size)
{
	static const struct {
		uint32_t mask;
		const char *name;
	} whole[] = {{0x1F01FF, "FA"}, {0x120089, "FR"}, {0x120116, "FW"}, {0x1200A9, "FX"},
		     {0x10000000, "GA"}, {0x80000000, "GR"}, {0x40000000, "GW"},
		     {0x20000000, "GX"}, {0xA0000000, "GRGX"}};

	for (size_t i = 0; i < sizeof(whole) / sizeof(whole[0]); i++)
		if (mask == whole[i].mask) {
			snprintf(buf, size, "%s", whole[i].name);
			return;
		}
	snprintf(buf, size, "0x%x", mask);
}

static void guid_text(const uint8_t *g, char *buf, size_t size)
{
	snprintf(buf, size, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 ntfs_get_le32(g), ntfs_get_le16(g + 4), ntfs_get_le16(g + 6), g[8], g[9], g[10],
		 g[11], g[12], g[13], g[14], g[15]);
}

/* One ACE (checked by acl_parse) as SDDL "(type;flags;rights;guid;guid;sid)". */
static char *ace_text(const uint8_t *p, size_t size)
{
	static const struct {
		uint8_t bit;
		const char *name;
	} flags[] = {{WTG_ACE_OBJECT_INHERIT, "OI"},	  {WTG_ACE_CONTAINER_INHERIT, "CI"},
		     {WTG_ACE_NO_PROPAGATE_INHERIT, "NP"}, {WTG_ACE_INHERIT_ONLY, "IO"},
		     {WTG_ACE_INHERITED, "ID"},		  {WTG_ACE_SUCCESSFUL_ACCESS, "SA"},
		     {WTG_ACE_FAILED_ACCESS, "FA"}};
	char type[8], fl[24] = "", rights[16], sid[200] = "", og[40] = "", ig[40] = "";
	const char *t = ace_type_text(p[0]);
	char *out;

	if (t)
		snprintf(type, sizeof(type), "%s", t);
	else
		snprintf(type, sizeof(type), "0x%02x", p[0]);
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		if (p[1] & flags[i].bit)
			strcat(fl, flags[i].name);
	switch (ace_kind(p[0])) {
	case ACE_RIGHTS:
	case ACE_OPAQUE:
		rights_text(ntfs_get_le32(p + 4), rights, sizeof(rights));
		sid_text(p + 8, size - 8, sid, sizeof(sid));
		break;
	case ACE_OBJECT: {
		uint32_t oflags = ntfs_get_le32(p + 8);
		size_t off = sizeof(struct ace_object);
		rights_text(ntfs_get_le32(p + 4), rights, sizeof(rights));
		if (oflags & 1) {
			guid_text(p + off, og, sizeof(og));
			off += 16;
		}
		if (oflags & 2) {
			guid_text(p + off, ig, sizeof(ig));
			off += 16;
		}
		sid_text(p + off, size - off, sid, sizeof(sid));
		break;
	}
	default:
		snprintf(rights, sizeof(rights), "?");
		break;
	}
	if (asprintf(&out, "(%s;%s;%s;%s;%s;%s)", type, fl, rights, og, ig, sid) < 0)
		return NULL;
	return out;
}

static int acl_texts(const struct acl_view *acl, char ***list_ret, size_t *count_ret)
{
	char **list = NULL;
	size_t pos = sizeof(struct acl_header);

	*list_ret = NULL;
	*count_ret = 0;
	if (!acl->p || !acl->count)
		return 0;
	if (!(list = calloc(acl->count, sizeof(*list))))
		return -ENOMEM;
	for (unsigned i = 0; i < acl->count; i++) {
		size_t asize = ntfs_get_le16(acl->p + pos + 2);
		if (!(list[i] = ace_text(acl->p + pos, asize))) {
			for (unsigned j = 0; j < i; j++)
				free(list[j]);
			free(list);
			return -ENOMEM;
		}
		pos += asize;
	}
	*list_ret = list;
	*count_ret = acl->count;
	return 0;
}

int wtg_sd_describe(const uint8_t *sd, size_t len, struct wtg_sd_text *out)
{
	struct sd_view v;
	int ret;

	memset(out, 0, sizeof(*out));
	if (!sd_parse(sd, len, &v))
		return -EINVAL;
	out->control = v.control;
	out->dacl_present = (v.control & WTG_SE_DACL_PRESENT) && v.dacl.p;
	out->sacl_present = (v.control & WTG_SE_SACL_PRESENT) && v.sacl.p;
	if (v.owner.p)
		sid_text(v.owner.p, v.owner.len, out->owner, sizeof(out->owner));
	if (v.group.p)
		sid_text(v.group.p, v.group.len, out->group, sizeof(out->group));
	ret = acl_texts(&v.dacl, &out->dacl, &out->ndacl);
	if (!ret)
		ret = acl_texts(&v.sacl, &out->sacl, &out->nsacl);
	if (ret)
		wtg_sd_text_release(out);
	return ret;
}

void wtg_sd_text_release(struct wtg_sd_text *t)
{
	for (size_t i = 0; i < t->ndacl; i++)
		free(t->dacl[i]);
	for (size_t i = 0; i < t->nsacl; i++)
		free(t->sacl[i]);
	free(t->dacl);
	free(t->sacl);
	memset(t, 0, sizeof(*t));
}
