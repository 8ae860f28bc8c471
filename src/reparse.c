/*
 * Symlink and junction reparse buffers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wtgfs/names.h"
#include "wtgfs/ntfs.h"
#include "wtgfs/reparse.h"

/* Drops "\??\C:", "\\?\C:", "\??\UNC\" or "\??\Volume{...}" so what is left
 * is a path from the root of the volume. */
static const char *strip_prefix(const char *p)
{
	if ((!strncmp(p, "\\??\\", 4) || !strncmp(p, "\\\\?\\", 4)))
		p += 4;
	if (((p[0] >= 'A' && p[0] <= 'Z') || (p[0] >= 'a' && p[0] <= 'z')) && p[1] == ':')
		return p + 2;
	if (!strncmp(p, "UNC\\", 4))
		return p + 3;
	if (!strncmp(p, "Volume{", 7)) {
		const char *slash = strchr(p, '\\');
		return slash ? slash : "";
	}
	return p;
}

/* An LX_SYMLINK's text after its version; @data_len is within the buffer. */
static int lx_target(const uint8_t *buf, size_t data_len, bool *relative, char *path, size_t size)
{
	if (data_len <= 4)
		return -EINVAL;
	const uint8_t *text = buf + 8 + 4;
	size_t n = data_len - 4;
	if (memchr(text, '\0', n))
		return -EINVAL;
	if (n + 1 > size)
		return -ENAMETOOLONG;
	memcpy(path, text, n);
	path[n] = '\0';
	*relative = path[0] != '/';
	return 0;
}

bool wtg_reparse_is_lx_symlink(const uint8_t *buf, size_t len)
{
	return len >= 8 && ntfs_get_le32(buf) == NTFS_REPARSE_TAG_LX_SYMLINK;
}

int wtg_reparse_link_target(const uint8_t *buf, size_t len, bool *relative, char *path, size_t size)
{
	char tmp[4096];
	size_t hdr = 8 + 8;

	if (len < 8)
		return -EINVAL;
	uint32_t tag = ntfs_get_le32(buf);
	size_t data_len = ntfs_get_le16(buf + 4);
	if (data_len > len - 8)
		return -EINVAL;
	if (tag == NTFS_REPARSE_TAG_LX_SYMLINK)
		return lx_target(buf, data_len, relative, path, size);
	if (len < hdr)
		return -EINVAL;
	bool is_symlink = tag == NTFS_REPARSE_TAG_SYMLINK;
	if (!is_symlink && tag != NTFS_REPARSE_TAG_MOUNT_POINT)
		return -EINVAL;
	if (is_symlink)
		hdr += 4;
	if (data_len + 8 < hdr)
		return -EINVAL;
	const uint8_t *names = buf + hdr;
	size_t names_len = data_len + 8 - hdr;
	size_t off = ntfs_get_le16(buf + 8), nlen = ntfs_get_le16(buf + 10);
	if (off > names_len || nlen > names_len - off || (nlen & 1))
		return -EINVAL;
	long n = wtg_utf16le_to_utf8(names + off, nlen / 2, tmp, sizeof(tmp));
	if (n < 0)
		return (int)n;
	if (memchr(tmp, '\0', (size_t)n))
		return -EINVAL;
	/* Windows resolves a "relative" target that starts with '\' (or is
	 * a UNC path, "\\server\share") from the root of the link's volume */
	*relative = is_symlink && (ntfs_get_le32(buf + 16) & NTFS_SYMLINK_FLAG_RELATIVE) &&
		    tmp[0] != '\\';
	const char *p = *relative ? tmp : strip_prefix(tmp);
	size_t plen = strlen(p);
	if (plen + 1 > size)
		return -ENAMETOOLONG;
	for (size_t i = 0; i <= plen; i++)
		path[i] = p[i] == '\\' ? '/' : p[i];
	return 0;
}

/* A reparse buffer holds at most 16 KiB; both names share it. */
#define REPARSE_MAX 16384

int wtg_reparse_make_symlink(const char *target, uint8_t **buf_ret, size_t *len_ret)
{
	size_t len = strlen(target);
	bool relative = target[0] != '/';
	char *win;

	if (len == 0)
		return -EINVAL;
	if (len > REPARSE_MAX / 2)
		return -ENAMETOOLONG;
	win = malloc(len + 8);
	if (!win)
		return -ENOMEM;
	size_t n = 0;
	if (!relative) {
		memcpy(win, "\\??\\C:", 6);
		n = 6;
	}
	for (size_t i = 0; i < len; i++)
		win[n++] = target[i] == '/' ? '\\' : target[i];
	uint8_t *units = malloc(REPARSE_MAX);
	long u = units ? wtg_utf8_to_utf16le(win, n, units, REPARSE_MAX / 4) : -ENOMEM;
	free(win);
	if (u < 0) {
		free(units);
		return (int)u;
	}
	/* the print name is the substitute name without the "\??\" prefix */
	size_t skip = relative ? 0 : 4, subst = (size_t)u * 2, print = subst - skip * 2;
	size_t data_len = 8 + 4 + subst + print;
	uint8_t *buf = calloc(1, 8 + data_len);
	if (!buf) {
		free(units);
		return -ENOMEM;
	}
	ntfs_put_le32(buf, NTFS_REPARSE_TAG_SYMLINK);
	ntfs_put_le16(buf + 4, (uint16_t)data_len);
	ntfs_put_le16(buf + 8, 0);
	ntfs_put_le16(buf + 10, (uint16_t)subst);
	ntfs_put_le16(buf + 12, (uint16_t)subst);
	ntfs_put_le16(buf + 14, (uint16_t)print);
	ntfs_put_le32(buf + 16, relative ? NTFS_SYMLINK_FLAG_RELATIVE : 0);
	memcpy(buf + 20, units, subst);
	memcpy(buf + 20 + subst, units + skip * 2, print);
	free(units);
	*buf_ret = buf;
	*len_ret = 8 + data_len;
	return 0;
}

int wtg_reparse_make_lx_symlink(const char *target, uint8_t **buf_ret, size_t *len_ret)
{
	size_t len = strlen(target);

	if (len == 0)
		return -EINVAL;
	if (len > REPARSE_MAX - 12)
		return -ENAMETOOLONG;
	uint8_t *buf = malloc(12 + len);
	if (!buf)
		return -ENOMEM;
	ntfs_put_le32(buf, NTFS_REPARSE_TAG_LX_SYMLINK);
	ntfs_put_le16(buf + 4, (uint16_t)(4 + len));
	ntfs_put_le16(buf + 6, 0);
	ntfs_put_le32(buf + 8, NTFS_LX_SYMLINK_VERSION);
	memcpy(buf + 12, target, len);
	*buf_ret = buf;
	*len_ret = 12 + len;
	return 0;
}
