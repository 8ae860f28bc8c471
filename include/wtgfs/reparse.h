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
 * relative symlink: resolved from the link's directory; otherwise from the
 * volume root) and returns 0.  -EINVAL for any other tag or a malformed
 * buffer, -ENAMETOOLONG when @size is too small.
 */
int wtg_reparse_link_target(const uint8_t *buf, size_t len, bool *relative, char *path,
			    size_t size);

#endif
