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
 * Parses a full reparse buffer (header included) of tag SYMLINK,
 * MOUNT_POINT or LX_SYMLINK.  On success writes the target to @path and
 * returns 0: for SYMLINK and MOUNT_POINT the substitute name with '\'
 * turned into '/', without the "\??\C:" style prefix, *relative set for a
 * relative symlink (resolved from the link's directory; otherwise, and for
 * a relative one whose target starts with '\', from the volume root); for
 * LX_SYMLINK the POSIX text as it is, *relative unless it starts with '/'.
 * -EINVAL for any other tag or a malformed buffer (a NUL in the target
 * too), -ENAMETOOLONG when @size is too small.
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
/* The same as WSL's LX_SYMLINK, which keeps @target byte for byte. */
int wtg_reparse_make_lx_symlink(const char *target, uint8_t **buf_ret, size_t *len_ret);
/* True for an LX_SYMLINK buffer: a POSIX target, not a Windows one. */
bool wtg_reparse_is_lx_symlink(const uint8_t *buf, size_t len);

#endif
