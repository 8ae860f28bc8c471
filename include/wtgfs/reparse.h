/*
 * Reparse buffers of symbolic links and junctions (mount points): what they
 * point at, as a '/'-separated path.  Pure parsing of outside bytes.
 */
#ifndef WTGFS_REPARSE_H
#define WTGFS_REPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Parses a full reparse buffer (header included) of tag SYMLINK or
 * MOUNT_POINT.  On success writes the substitute name to @path with '\'
 * turned into '/', without the "\??\C:" style prefix, sets *relative (a
 * relative symlink: resolved from the link's directory; otherwise, and for
 * a relative one whose target starts with '\', from the volume root) and
 * returns 0.  -EINVAL for any other tag or a malformed
 * buffer, -ENAMETOOLONG when @size is too small.
 */
int wtg_reparse_link_target(const uint8_t *buf, size_t len, bool *relative, char *path,
			    size_t size);

/*
 * Builds the reparse buffer of an NTFS symbolic link to the POSIX path
 * @target: relative ('\\'-separated) when it does not start with '/',
 * else absolute from the volume root ("\\??\\C:\\...").  *buf_ret is
 * malloc'd.  -EINVAL for an empty target or one that is not UTF-8,
 * -ENAMETOOLONG when it does not fit a reparse buffer.
 */
int wtg_reparse_make_symlink(const char *target, uint8_t **buf_ret, size_t *len_ret);

#endif
