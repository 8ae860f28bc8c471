/*
 * The flush's one libhivex user: writes the BCD store a flush puts on the ESP (the
 * object set of src/flush/bcd.c, starting from the image's BCD-Template as
 * bcdboot does) and makes the WTG changes in the offline SYSTEM hive.
 * Both work on hive files the caller made (copies of the image's hives, or
 * a fresh empty hive written here), never on the image or the delta.
 */
#include <errno.h>
#include <fcntl.h>
#include <hivex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "wtgfs/bcd.h"
#include "wtgfs/flush.h"
#include "wtgfs/log.h"

static int hive_errno(void)
{
	return errno ? -errno : -EIO;
}

/* The child @name of @node, added when missing; 0 on error (errno set). */
static hive_node_h child(hive_h *h, hive_node_h node, const char *name)
{
	errno = 0;
	hive_node_h c = hivex_node_get_child(h, node, name);
	if (c || errno)
		return c;
	return hivex_node_add_child(h, node, name);
}

static int set_value(hive_h *h, hive_node_h node, const char *key, hive_type t, const void *data,
		     size_t len)
{
	hive_set_value v = {.key = (char *)key, .t = t, .len = len, .value = (char *)data};
	return hivex_node_set_value(h, node, &v, 0) ? hive_errno() : 0;
}

static int set_dword(hive_h *h, hive_node_h node, const char *key, uint32_t value)
{
	uint8_t le[4] = {(uint8_t)value, (uint8_t)(value >> 8), (uint8_t)(value >> 16),
			 (uint8_t)(value >> 24)};
	return set_value(h, node, key, hive_t_REG_DWORD, le, sizeof(le));
}

static int set_sz(hive_h *h, hive_node_h node, const char *key, const char *s)
{
	uint8_t *data;
	size_t len;
	int ret = wtg_bcd_encode_string(s, &data, &len);
	if (ret)
		return ret;
	ret = set_value(h, node, key, hive_t_REG_SZ, data, len);
	free(data);
	return ret;
}

/*
 * An empty hive (regf 1.3) with the root key @root and the one security
 * cell every hive has: a base block and one 4 KiB bin, laid out as Windows
 * lays out a new hive.  hivex edits files only, so a store made without a
 * template starts from this.
 */
static int write_empty_hive(const char *path, const char *root)
{
	/* O:BA G:SY D:P(A;CI;KA;;;SY)(A;CI;KA;;;BA)(A;CI;KR;;;BU), self-relative */
	static const uint8_t sd[] = {
	    0x01, 0x00, 0x04, 0x90, 0x60, 0x00, 0x00, 0x00, 0x70, 0x00, 0x00, 0x00, 0x00, 0x00,
	    0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x02, 0x00, 0x4c, 0x00, 0x03, 0x00, 0x00, 0x00,
	    0x00, 0x02, 0x14, 0x00, 0x3f, 0x00, 0x0f, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00,
	    0x00, 0x05, 0x12, 0x00, 0x00, 0x00, 0x00, 0x02, 0x18, 0x00, 0x3f, 0x00, 0x0f, 0x00,
	    0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x20, 0x00, 0x00, 0x00, 0x20, 0x02,
	    0x00, 0x00, 0x00, 0x02, 0x18, 0x00, 0x19, 0x00, 0x02, 0x00, 0x01, 0x02, 0x00, 0x00,
	    0x00, 0x00, 0x00, 0x05, 0x20, 0x00, 0x00, 0x00, 0x21, 0x02, 0x00, 0x00, 0x01, 0x02,
	    0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x20, 0x00, 0x00, 0x00, 0x20, 0x02, 0x00, 0x00,
	    0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x12, 0x00, 0x00, 0x00};
	static uint8_t buf[8192];
	memset(buf, 0, sizeof(buf));
	uint8_t *base = buf, *bin = buf + 4096;
#define LE16(p, v) ((p)[0] = (uint8_t)(v), (p)[1] = (uint8_t)((v) >> 8))
#define LE32(p, v) (LE16(p, (v) & 0xffff), LE16((p) + 2, (uint32_t)(v) >> 16))
	size_t rlen = strlen(root);
	uint32_t sk = 0x20, sk_size = (4 + 20 + sizeof(sd) + 7) & ~7u;
	uint32_t nk = sk + sk_size, nk_size = (uint32_t)(4 + 76 + rlen + 7) & ~7u;
	if (nk + nk_size + 8 > 4096)
		return -ENAMETOOLONG;

	memcpy(base, "regf", 4);
	LE32(base + 0x04, 1); /* sequence numbers equal: clean */
	LE32(base + 0x08, 1);
	LE32(base + 0x14, 1); /* major */
	LE32(base + 0x18, 3); /* minor */
	LE32(base + 0x20, 1); /* format: direct memory load */
	LE32(base + 0x24, nk); /* root cell */
	LE32(base + 0x28, 4096); /* hive bins size */
	LE32(base + 0x2c, 1); /* clustering factor */
	uint32_t sum = 0;
	for (int i = 0; i < 0x1fc; i += 4)
		sum ^= (uint32_t)base[i] | (uint32_t)base[i + 1] << 8 | (uint32_t)base[i + 2] << 16 |
		       (uint32_t)base[i + 3] << 24;
	LE32(base + 0x1fc, sum == 0 ? 1 : sum == 0xffffffff ? 0xfffffffe : sum);

	memcpy(bin, "hbin", 4);
	LE32(bin + 0x08, 4096);
	uint8_t *c = bin + sk;
	LE32(c, -(int32_t)sk_size);
	memcpy(c + 4, "sk", 2);
	LE32(c + 8, sk); /* flink, blink: itself */
	LE32(c + 12, sk);
	LE32(c + 16, 1); /* references: the root */
	LE32(c + 20, sizeof(sd));
	memcpy(c + 24, sd, sizeof(sd));
	c = bin + nk;
	LE32(c, -(int32_t)nk_size);
	memcpy(c + 4, "nk", 2);
	LE16(c + 6, 0x2c); /* HIVE_ENTRY | NO_DELETE | COMP_NAME */
	LE32(c + 0x14, 0xffffffff); /* parent */
	LE32(c + 0x20, 0xffffffff); /* subkey list */
	LE32(c + 0x24, 0xffffffff); /* volatile subkey list */
	LE32(c + 0x2c, 0xffffffff); /* value list */
	LE32(c + 0x30, sk);
	LE32(c + 0x34, 0xffffffff); /* class name */
	LE16(c + 0x4c, rlen);
	memcpy(c + 0x50, root, rlen);
	LE32(bin + nk + nk_size, 4096 - nk - nk_size); /* the rest: one free cell */
#undef LE16
#undef LE32

	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	int ret = write(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf) ? 0 : -EIO;
	if (close(fd) && !ret)
		ret = -errno;
	return ret;
}

/* Removes the template's objects that must not stay and the template-only
 * elements of the ones that do. */
static int strip_template(hive_h *h, hive_node_h objects)
{
	hive_node_h *kids = hivex_node_children(h, objects);
	if (!kids)
		return hive_errno();
	int ret = 0;
	for (size_t i = 0; kids[i] && !ret; i++) {
		char *name = hivex_node_name(h, kids[i]);
		if (!name) {
			ret = hive_errno();
			break;
		}
		if (!wtg_bcd_keeps_object(name)) {
			if (hivex_node_delete_child(h, kids[i]))
				ret = hive_errno();
			free(name);
			continue;
		}
		free(name);
		errno = 0;
		hive_node_h elements = hivex_node_get_child(h, kids[i], "Elements");
		if (!elements) {
			ret = errno ? -errno : 0;
			continue;
		}
		hive_node_h *els = hivex_node_children(h, elements);
		if (!els) {
			ret = hive_errno();
			break;
		}
		for (size_t j = 0; els[j] && !ret; j++) {
			char *id = hivex_node_name(h, els[j]);
			char *end;
			unsigned long v = id ? strtoul(id, &end, 16) : 0;
			if (id && !*end && wtg_bcd_template_element((uint32_t)v) &&
			    hivex_node_delete_child(h, els[j]))
				ret = hive_errno();
			free(id);
		}
		free(els);
	}
	free(kids);
	return ret;
}

static int write_object(hive_h *h, hive_node_h objects, const struct wtg_bcd_object *obj)
{
	hive_node_h o = child(h, objects, obj->key);
	hive_node_h desc = o ? child(h, o, "Description") : 0;
	hive_node_h elements = desc ? child(h, o, "Elements") : 0;
	if (!elements)
		return hive_errno();
	int ret = set_dword(h, desc, "Type", obj->type);
	for (size_t i = 0; i < obj->nelements && !ret; i++) {
		const struct wtg_bcd_element *e = &obj->elements[i];
		char id[9];
		snprintf(id, sizeof(id), "%08x", e->id);
		hive_node_h el = child(h, elements, id);
		if (!el)
			return hive_errno();
		ret = set_value(h, el, "Element", (hive_type)e->reg_type, e->data, e->len);
	}
	return ret;
}

int wtg_bcd_write_store(const struct wtg_bcd *bcd, const char *template_path, const char *out)
{
	const char *what = template_path ? template_path : out;
	int ret = 0;
	if (!template_path && (ret = write_empty_hive(out, "NewStoreRoot"))) {
		wtg_error("cannot write '%s': %s", out, strerror(-ret));
		return ret;
	}
	hive_h *h = hivex_open(template_path ? template_path : out, HIVEX_OPEN_WRITE);
	if (!h) {
		ret = hive_errno();
		wtg_error("cannot open '%s' as a registry hive: %s", what, strerror(-ret));
		return ret;
	}
	hive_node_h root = hivex_root(h);
	hive_node_h desc = root ? child(h, root, "Description") : 0;
	hive_node_h objects = desc ? child(h, root, "Objects") : 0;
	if (!objects)
		ret = hive_errno();
	if (!ret)
		ret = set_sz(h, desc, "KeyName", "BCD00000000");
	if (!ret)
		ret = set_dword(h, desc, "System", 1);
	if (!ret && template_path)
		ret = strip_template(h, objects);
	for (size_t i = 0; i < bcd->nobjects && !ret; i++)
		ret = write_object(h, objects, &bcd->objects[i]);
	if (!ret && hivex_commit(h, out, 0))
		ret = hive_errno();
	if (ret)
		wtg_error("cannot write the BCD store '%s' (from '%s'): %s", out, what,
			  strerror(-ret));
	hivex_close(h);
	return ret;
}

int wtg_hive_get_string(const char *path, const char *key, const char *name, char **value_ret)
{
	hive_h *h = hivex_open(path, 0);
	if (!h)
		return hive_errno();
	int ret = 0;
	hive_node_h node = hivex_root(h);
	char *copy = strdup(key), *save = NULL;
	if (!copy)
		ret = -ENOMEM;
	for (char *part = copy ? strtok_r(copy, "\\", &save) : NULL; part && node;
	     part = strtok_r(NULL, "\\", &save)) {
		errno = 0;
		node = hivex_node_get_child(h, node, part);
	}
	free(copy);
	hive_value_h v = 0;
	if (!ret && node) {
		errno = 0;
		v = hivex_node_get_value(h, node, name);
	}
	if (!ret && !v)
		ret = errno ? -errno : -ENOENT;
	if (!ret && !(*value_ret = hivex_value_string(h, v)))
		ret = hive_errno();
	hivex_close(h);
	return ret;
}

int wtg_flush_tweak_system_hive(const char *hive_path, struct wtg_flush_report *rep)
{
	static const char *const path[] = {"ControlSet001", "Services", "partmgr"};
	hive_h *h = hivex_open(hive_path, HIVEX_OPEN_WRITE);
	if (!h) {
		int ret = hive_errno();
		wtg_error("cannot open the SYSTEM hive '%s': %s (use --no-wtg-tweaks to flush "
			  "without the WTG settings)", hive_path, strerror(-ret));
		return ret;
	}
	int ret = 0;
	hive_node_h node = hivex_root(h);
	for (size_t i = 0; i < sizeof(path) / sizeof(path[0]) && node; i++) {
		errno = 0;
		node = hivex_node_get_child(h, node, path[i]);
	}
	if (!node) {
		ret = errno ? -errno : -ENOENT;
		wtg_error("cannot set SanPolicy: the SYSTEM hive has no "
			  "ControlSet001\\Services\\partmgr (use --no-wtg-tweaks to flush without "
			  "the WTG settings)");
		goto out;
	}
	node = child(h, node, "Parameters");
	if (!node || (ret = set_dword(h, node, "SanPolicy", 4)) || hivex_commit(h, NULL, 0)) {
		ret = ret ? ret : hive_errno();
		wtg_error("cannot set SanPolicy in the SYSTEM hive: %s", strerror(-ret));
		goto out;
	}
	ret = wtg_flush_report_add(rep, "SYSTEM: ControlSet001\\Services\\partmgr\\Parameters "
					"SanPolicy = 4 (internal disks offline)");
out:
	hivex_close(h);
	return ret;
}
