/*
 * The BCD store's contents as data: the objects and elements bcdboot writes
 * for a UEFI install, encoded as the registry values a BCD hive holds (see
 * wtgfs/bcd.h and DESIGN.md "Flush").  No hive library here, so all of it
 * is unit-tested (tests/unit_bcd.c); src/flush/hive.c writes the result.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "wtgfs/bcd.h"
#include "wtgfs/le.h"
#include "wtgfs/names.h"

/* A partition device element (BCD device data of type partition). */
struct bcd_device {
	uint8_t options[16];   /* 0x00 additional options object: none */
	uint32_t type;	       /* 0x10 6: partition */
	uint32_t flags;	       /* 0x14 */
	uint32_t length;       /* 0x18 0x48: from here to the end, less 16 */
	uint32_t reserved;     /* 0x1c */
	uint8_t partition[16]; /* 0x20 GPT partition GUID, or MBR u64 start in bytes */
	uint32_t reserved2;    /* 0x30 */
	uint32_t style;	       /* 0x34 0 GPT, 1 MBR */
	uint8_t disk[16];      /* 0x38 GPT disk GUID, or MBR u32 signature */
	uint8_t tail[16];      /* 0x48 */
} __attribute__((packed));
_Static_assert(sizeof(struct bcd_device) == WTG_BCD_DEVICE_SIZE, "BCD device element size");

void wtg_bcd_encode_integer(uint64_t v, uint8_t out[8])
{
	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(v >> (8 * i));
}

uint32_t wtg_bcd_reg_type(uint32_t id)
{
	switch ((id >> 24) & 0xf) {
	case 1: /* device */
	case 5: /* integer */
	case 6: /* boolean */
	case 7: /* integer list */
		return WTG_REG_BINARY;
	case 2: /* string */
	case 3: /* object */
		return WTG_REG_SZ;
	case 4: /* object list */
		return WTG_REG_MULTI_SZ;
	default:
		return 0;
	}
}

/* The first three fields of a GUID are little-endian on disk. */
static void swap_fields(const uint8_t in[16], uint8_t out[16])
{
	static const uint8_t order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
	uint8_t tmp[16];
	for (int i = 0; i < 16; i++)
		tmp[i] = in[order[i]];
	memcpy(out, tmp, 16);
}

void wtg_bcd_guid_key(const uint8_t guid[16], char out[39])
{
	uint8_t p[16];
	swap_fields(guid, p);
	snprintf(out, 39,
		 "{%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x}", p[0],
		 p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], p[12], p[13],
		 p[14], p[15]);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int wtg_bcd_parse_guid(const char *s, uint8_t out[16])
{
	size_t len = strlen(s);
	if (len == 38 && s[0] == '{' && s[37] == '}') {
		s++;
		len = 36;
	}
	if (len != 36)
		return -EINVAL;
	uint8_t p[16];
	int n = 0;
	for (size_t i = 0; i < 36;) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i++] != '-')
				return -EINVAL;
			continue;
		}
		int hi = hexval(s[i]), lo = hexval(s[i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		p[n++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	swap_fields(p, out);
	return 0;
}

int wtg_bcd_random_key(char out[39])
{
	uint8_t p[16];
	if (getrandom(p, sizeof(p), 0) != (ssize_t)sizeof(p))
		return -EIO;
	p[6] = (uint8_t)((p[6] & 0x0f) | 0x40); /* version 4 */
	p[8] = (uint8_t)((p[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	uint8_t d[16];
	swap_fields(p, d);
	wtg_bcd_guid_key(d, out);
	return 0;
}

void wtg_bcd_encode_device(const struct wtg_flush_layout *layout, const struct wtg_flush_part *part,
			   uint8_t out[WTG_BCD_DEVICE_SIZE])
{
	struct bcd_device d;
	memset(&d, 0, sizeof(d));
	wtg_put_le32((uint8_t *)&d.type, 6);
	wtg_put_le32((uint8_t *)&d.length, 0x48);
	if (layout->scheme == WTG_FLUSH_GPT) {
		memcpy(d.partition, part->guid, 16);
		wtg_put_le32((uint8_t *)&d.style, 0);
		memcpy(d.disk, layout->disk_guid, 16);
	} else {
		wtg_bcd_encode_integer(part->offset, d.partition);
		wtg_put_le32((uint8_t *)&d.style, 1);
		wtg_put_le32(d.disk, layout->mbr_signature);
	}
	memcpy(out, &d, sizeof(d));
}

int wtg_bcd_encode_string(const char *s, uint8_t **data_ret, size_t *len_ret)
{
	size_t len = strlen(s);
	size_t units = len + 1; /* UTF-16 never needs more units than UTF-8 bytes */
	uint8_t *buf = malloc(units * 2);
	if (!buf)
		return -ENOMEM;
	long n = wtg_utf8_to_utf16le(s, len, buf, units);
	if (n < 0) {
		free(buf);
		return (int)n;
	}
	buf[2 * n] = buf[2 * n + 1] = 0;
	*data_ret = buf;
	*len_ret = (size_t)(n + 1) * 2;
	return 0;
}

int wtg_bcd_encode_list(const char *const *keys, size_t n, uint8_t **data_ret, size_t *len_ret)
{
	size_t total = 1;
	for (size_t i = 0; i < n; i++)
		total += strlen(keys[i]) + 1;
	uint8_t *buf = calloc(total, 2);
	if (!buf)
		return -ENOMEM;
	size_t at = 0;
	for (size_t i = 0; i < n; i++) {
		long u = wtg_utf8_to_utf16le(keys[i], strlen(keys[i]), buf + 2 * at, total - at);
		if (u < 0) {
			free(buf);
			return (int)u;
		}
		at += (size_t)u + 1; /* the NUL is already zero */
	}
	*data_ret = buf;
	*len_ret = total * 2;
	return 0;
}

/* ---- the object set ---- */

static const char *const kept_objects[] = {
	WTG_BCD_BOOTMGR,	    WTG_BCD_MEMDIAG,	       WTG_BCD_GLOBALSETTINGS,
	WTG_BCD_DBGSETTINGS,	    WTG_BCD_EMSSETTINGS,       WTG_BCD_BADMEMORY,
	WTG_BCD_BOOTLOADERSETTINGS, WTG_BCD_HYPERVISORSETTINGS, WTG_BCD_RESUMELOADERSETTINGS,
};

bool wtg_bcd_keeps_object(const char *key)
{
	for (size_t i = 0; i < sizeof(kept_objects) / sizeof(kept_objects[0]); i++)
		if (!strcasecmp(key, kept_objects[i]))
			return true;
	return false;
}

bool wtg_bcd_template_element(uint32_t id)
{
	switch (id) {
	case 0x45000001:
	case 0x42000002:
	case 0x42000003:
	case 0x46000004:
	case 0x46000008:
	case 0x47000005:
	case 0x47000006:
		return true;
	default:
		return false;
	}
}

struct builder {
	struct wtg_bcd *bcd;
	struct wtg_bcd_object *obj;
	int err;
};

static void begin(struct builder *b, const char *key, uint32_t type)
{
	if (b->err)
		return;
	struct wtg_bcd *bcd = b->bcd;
	struct wtg_bcd_object *v = realloc(bcd->objects, (bcd->nobjects + 1) * sizeof(*v));
	if (!v) {
		b->err = -ENOMEM;
		return;
	}
	bcd->objects = v;
	b->obj = &v[bcd->nobjects++];
	memset(b->obj, 0, sizeof(*b->obj));
	snprintf(b->obj->key, sizeof(b->obj->key), "%s", key);
	b->obj->type = type;
}

/* Takes over @data (freed on failure). */
static void add(struct builder *b, uint32_t id, uint8_t *data, size_t len)
{
	if (b->err) {
		free(data);
		return;
	}
	struct wtg_bcd_object *o = b->obj;
	struct wtg_bcd_element *v = realloc(o->elements, (o->nelements + 1) * sizeof(*v));
	if (!v) {
		free(data);
		b->err = -ENOMEM;
		return;
	}
	o->elements = v;
	v[o->nelements++] = (struct wtg_bcd_element){
	    .id = id, .reg_type = wtg_bcd_reg_type(id), .data = data, .len = len};
}

static void add_bytes(struct builder *b, uint32_t id, const void *bytes, size_t len)
{
	uint8_t *data = b->err ? NULL : malloc(len);
	if (!b->err && !data)
		b->err = -ENOMEM;
	if (data)
		memcpy(data, bytes, len);
	add(b, id, data, len);
}

static void add_device(struct builder *b, uint32_t id, const struct wtg_flush_layout *layout,
		       const struct wtg_flush_part *part)
{
	uint8_t dev[WTG_BCD_DEVICE_SIZE];
	wtg_bcd_encode_device(layout, part, dev);
	add_bytes(b, id, dev, sizeof(dev));
}

/* Strings and objects (both REG_SZ). */
static void add_string(struct builder *b, uint32_t id, const char *s)
{
	uint8_t *data = NULL;
	size_t len = 0;
	if (!b->err)
		b->err = wtg_bcd_encode_string(s, &data, &len);
	add(b, id, data, len);
}

static void add_list(struct builder *b, uint32_t id, const char *const *keys, size_t n)
{
	uint8_t *data = NULL;
	size_t len = 0;
	if (!b->err)
		b->err = wtg_bcd_encode_list(keys, n, &data, &len);
	add(b, id, data, len);
}

static void add_integer(struct builder *b, uint32_t id, uint64_t v)
{
	uint8_t le[8];
	wtg_bcd_encode_integer(v, le);
	add_bytes(b, id, le, sizeof(le));
}

static void add_boolean(struct builder *b, uint32_t id, bool v)
{
	uint8_t byte = v ? 1 : 0;
	add_bytes(b, id, &byte, 1);
}

int wtg_bcd_build(const struct wtg_bcd_params *p, struct wtg_bcd *bcd_ret)
{
	const struct wtg_flush_layout *l = p->layout;
	const char *locale = p->locale ? p->locale : "en-US";
	const char *description = p->description ? p->description : "Windows";
	struct wtg_bcd bcd = {0};
	struct builder b = {.bcd = &bcd};
#define LIST(...) (const char *const[]){__VA_ARGS__}, sizeof((const char *const[]){__VA_ARGS__}) / sizeof(char *)

	begin(&b, WTG_BCD_BOOTMGR, WTG_BCD_TYPE_BOOTMGR);
	add_device(&b, WTG_BCD_E_DEVICE, l, &l->esp);
	add_string(&b, WTG_BCD_E_PATH, "\\EFI\\Microsoft\\Boot\\bootmgfw.efi");
	add_string(&b, WTG_BCD_E_DESCRIPTION, "Windows Boot Manager");
	add_string(&b, 0x12000005, locale);
	add_list(&b, 0x14000006, LIST(WTG_BCD_GLOBALSETTINGS));
	add_string(&b, 0x23000003, p->loader_key);
	add_string(&b, 0x23000006, p->resume_key);
	add_list(&b, 0x24000001, LIST(p->loader_key));
	add_list(&b, 0x24000010, LIST(WTG_BCD_MEMDIAG));
	add_integer(&b, 0x25000004, 30);

	begin(&b, p->loader_key, WTG_BCD_TYPE_OSLOADER);
	add_device(&b, WTG_BCD_E_DEVICE, l, &l->windows);
	add_device(&b, WTG_BCD_E_OSDEVICE, l, &l->windows);
	add_string(&b, WTG_BCD_E_PATH, "\\Windows\\system32\\winload.efi");
	add_string(&b, WTG_BCD_E_DESCRIPTION, description);
	add_string(&b, 0x12000005, locale);
	add_list(&b, 0x14000006, LIST(WTG_BCD_BOOTLOADERSETTINGS));
	add_boolean(&b, 0x16000060, true);
	add_integer(&b, 0x17000077, 0x15000075);
	add_string(&b, 0x22000002, "\\Windows");
	add_string(&b, 0x23000003, p->resume_key);
	add_integer(&b, 0x25000020, 0);
	add_integer(&b, 0x250000c2, 1);
	if (p->recovery_off)
		add_boolean(&b, WTG_BCD_E_RECOVERY_ENABLED, false);

	begin(&b, p->resume_key, WTG_BCD_TYPE_RESUME);
	add_device(&b, WTG_BCD_E_DEVICE, l, &l->windows);
	add_device(&b, WTG_BCD_E_OSDEVICE, l, &l->windows);
	add_string(&b, WTG_BCD_E_PATH, "\\Windows\\system32\\winresume.efi");
	add_string(&b, WTG_BCD_E_DESCRIPTION, "Windows Resume Application");
	add_string(&b, 0x12000005, locale);
	add_list(&b, 0x14000006, LIST(WTG_BCD_RESUMELOADERSETTINGS));
	add_boolean(&b, 0x16000060, true);
	add_integer(&b, 0x17000077, 0x15000075);
	add_string(&b, 0x22000002, "\\hiberfil.sys");
	add_integer(&b, 0x25000008, 1);

	begin(&b, WTG_BCD_MEMDIAG, WTG_BCD_TYPE_MEMDIAG);
	add_device(&b, WTG_BCD_E_DEVICE, l, &l->esp);
	add_string(&b, WTG_BCD_E_PATH, "\\EFI\\Microsoft\\Boot\\memtest.efi");
	add_string(&b, WTG_BCD_E_DESCRIPTION, "Windows Memory Diagnostic");
	add_string(&b, 0x12000005, locale);
	add_list(&b, 0x14000006, LIST(WTG_BCD_GLOBALSETTINGS));
	add_boolean(&b, 0x1600000b, true);

	begin(&b, WTG_BCD_GLOBALSETTINGS, WTG_BCD_TYPE_INHERIT_ANY);
	add_list(&b, 0x14000006, LIST(WTG_BCD_DBGSETTINGS, WTG_BCD_EMSSETTINGS, WTG_BCD_BADMEMORY));
	begin(&b, WTG_BCD_DBGSETTINGS, WTG_BCD_TYPE_INHERIT_ANY);
	add_integer(&b, 0x15000011, 4);
	begin(&b, WTG_BCD_EMSSETTINGS, WTG_BCD_TYPE_INHERIT_ANY);
	add_boolean(&b, 0x16000020, false);
	begin(&b, WTG_BCD_BADMEMORY, WTG_BCD_TYPE_INHERIT_ANY);

	begin(&b, WTG_BCD_BOOTLOADERSETTINGS, WTG_BCD_TYPE_INHERIT_OSLOADER);
	add_list(&b, 0x14000006, LIST(WTG_BCD_GLOBALSETTINGS, WTG_BCD_HYPERVISORSETTINGS));
	begin(&b, WTG_BCD_HYPERVISORSETTINGS, WTG_BCD_TYPE_INHERIT_OSLOADER);
	add_integer(&b, 0x250000f3, 0);
	add_integer(&b, 0x250000f4, 1);
	add_integer(&b, 0x250000f5, 115200);
	begin(&b, WTG_BCD_RESUMELOADERSETTINGS, WTG_BCD_TYPE_INHERIT_RESUME);
	add_list(&b, 0x14000006, LIST(WTG_BCD_GLOBALSETTINGS));
#undef LIST

	if (b.err) {
		wtg_bcd_release(&bcd);
		return b.err;
	}
	*bcd_ret = bcd;
	return 0;
}

void wtg_bcd_release(struct wtg_bcd *bcd)
{
	for (size_t i = 0; i < bcd->nobjects; i++) {
		for (size_t j = 0; j < bcd->objects[i].nelements; j++)
			free(bcd->objects[i].elements[j].data);
		free(bcd->objects[i].elements);
	}
	free(bcd->objects);
	bcd->objects = NULL;
	bcd->nobjects = 0;
}

const struct wtg_bcd_object *wtg_bcd_find(const struct wtg_bcd *bcd, const char *key)
{
	for (size_t i = 0; i < bcd->nobjects; i++)
		if (!strcasecmp(bcd->objects[i].key, key))
			return &bcd->objects[i];
	return NULL;
}

const struct wtg_bcd_element *wtg_bcd_object_element(const struct wtg_bcd_object *obj, uint32_t id)
{
	for (size_t i = 0; i < obj->nelements; i++)
		if (obj->elements[i].id == id)
			return &obj->elements[i];
	return NULL;
}
