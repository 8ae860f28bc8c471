/*
 * NTFS extended attribute buffers ($EA), as NTFS stores them and ntfs-3g
 * shows them, and the ones WSL writes for special files.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wtgfs/ea.h"
#include "wtgfs/ntfs.h"

#define ENTRY_HDR 8

/* The entry at @off of a valid buffer: its name and value, and the next
 * offset.  False at the end or on a malformed entry. */
static bool entry_at(const uint8_t *buf, size_t len, size_t off, size_t *next_ret,
		     const uint8_t **name_ret, size_t *name_len, const uint8_t **value_ret,
		     size_t *value_len)
{
	if (off >= len || len - off < ENTRY_HDR)
		return false;
	const uint8_t *p = buf + off;
	size_t next = off + ntfs_get_le32(p);
	size_t n = p[5], v = ntfs_get_le16(p + 6);
	size_t used = ENTRY_HDR + n + 1 + v; /* from @off */
	if (next <= off || next > len || (next & 3) || !n || off + used > next ||
	    off + used < next - 3 || p[ENTRY_HDR + n] != '\0')
		return false;
	*next_ret = next;
	*name_ret = p + ENTRY_HDR;
	*name_len = n;
	*value_ret = p + ENTRY_HDR + n + 1;
	*value_len = v;
	return true;
}

bool wtg_ea_valid(const uint8_t *buf, size_t len)
{
	size_t off = 0, next, n, v;
	const uint8_t *name, *value;

	if (!buf || len == 0 || len > WTG_EA_MAX)
		return false;
	while (off < len) {
		if (!entry_at(buf, len, off, &next, &name, &n, &value, &v))
			return false;
		off = next;
	}
	return true;
}

int wtg_ea_find(const uint8_t *buf, size_t len, const char *want, const uint8_t **value_ret,
		size_t *len_ret)
{
	size_t off = 0, next, n, v, wlen = strlen(want);
	const uint8_t *name, *value;

	if (!buf)
		return -ENODATA;
	while (entry_at(buf, len, off, &next, &name, &n, &value, &v)) {
		if (n == wlen && !memcmp(name, want, n)) {
			*value_ret = value;
			*len_ret = v;
			return 0;
		}
		off = next;
	}
	return -ENODATA;
}

/* Appends one entry (padded to 4 bytes) at @p; returns its size. */
static size_t put_entry(uint8_t *p, const char *name, const uint8_t *value, size_t vlen)
{
	size_t n = strlen(name), size = (ENTRY_HDR + n + 1 + vlen + 3) & ~(size_t)3;

	memset(p, 0, size);
	ntfs_put_le32(p, (uint32_t)size);
	p[5] = (uint8_t)n;
	ntfs_put_le16(p + 6, (uint16_t)vlen);
	memcpy(p + ENTRY_HDR, name, n);
	memcpy(p + ENTRY_HDR + n + 1, value, vlen);
	return size;
}

int wtg_ea_make_wsl(uint32_t mode, uint32_t major, uint32_t minor, uint8_t **buf_ret,
		    size_t *len_ret)
{
	uint8_t *buf = malloc(64), mod[4], dev[8];
	uint32_t type = mode & 0170000;
	size_t len;

	if (!buf)
		return -ENOMEM;
	ntfs_put_le32(mod, mode);
	len = put_entry(buf, "$LXMOD", mod, sizeof(mod));
	if (type == 0020000 || type == 0060000) { /* S_IFCHR, S_IFBLK */
		ntfs_put_le32(dev, major);
		ntfs_put_le32(dev + 4, minor);
		len += put_entry(buf + len, "$LXDEV", dev, sizeof(dev));
	}
	*buf_ret = buf;
	*len_ret = len;
	return 0;
}

int wtg_ea_wsl_dev(const uint8_t *buf, size_t len, uint32_t *major_ret, uint32_t *minor_ret)
{
	const uint8_t *v;
	size_t vlen;

	if (wtg_ea_find(buf, len, "$LXDEV", &v, &vlen) || vlen != 8)
		return -ENODATA;
	*major_ret = ntfs_get_le32(v);
	*minor_ret = ntfs_get_le32(v + 4);
	return 0;
}

int wtg_ea_wsl_u32(const uint8_t *buf, size_t len, const char *name, uint32_t *value_ret)
{
	const uint8_t *v;
	size_t vlen;

	if (wtg_ea_find(buf, len, name, &v, &vlen) || vlen != 4)
		return -ENODATA;
	*value_ret = ntfs_get_le32(v);
	return 0;
}

int wtg_ea_put_u32(const uint8_t *buf, size_t len, const char *const *names,
		   const uint32_t *values, size_t n, uint8_t **buf_ret, size_t *len_ret)
{
	size_t off = 0, next, nl, vl, out = 0;
	const uint8_t *name, *value;

	if (buf && !wtg_ea_valid(buf, len))
		return -EINVAL;
	/* each new entry takes at most 8 + 255 + 1 + 4 bytes */
	uint8_t *p = malloc((buf ? len : 0) + n * 268 + 1);
	if (!p)
		return -ENOMEM;
	/* the entries kept, in their order, less those replaced */
	while (buf && entry_at(buf, len, off, &next, &name, &nl, &value, &vl)) {
		bool replaced = false;
		for (size_t i = 0; i < n; i++)
			replaced |= strlen(names[i]) == nl && !memcmp(names[i], name, nl);
		if (!replaced) {
			memcpy(p + out, buf + off, next - off);
			ntfs_put_le32(p + out, (uint32_t)(next - off));
			out += next - off;
		}
		off = next;
	}
	for (size_t i = 0; i < n; i++) {
		uint8_t v[4];
		ntfs_put_le32(v, values[i]);
		out += put_entry(p + out, names[i], v, sizeof(v));
	}
	if (out > WTG_EA_MAX) {
		free(p);
		return -ENOSPC;
	}
	*buf_ret = p;
	*len_ret = out;
	return 0;
}
