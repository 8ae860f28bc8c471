/*
 * NTFS extended attributes ($EA): the attribute's value as NTFS stores it
 * and as ntfs-3g shows it in system.ntfs_ea, a run of entries
 *
 *     0x00 le32 offset of the next entry (kept non-zero on the last one)
 *     0x04 u8   flags (0x80: NEED_EA)
 *     0x05 u8   name length n (bytes, no NUL)
 *     0x06 le16 value length v
 *     0x08      name, NUL, value, padding to a multiple of 4
 *
 * and the EAs WSL keeps POSIX facts in ($LXMOD: le32 st_mode; $LXDEV: le32
 * major, le32 minor).  Pure parsing of outside bytes; no I/O.
 */
#ifndef WTGFS_EA_H
#define WTGFS_EA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest $EA NTFS holds (Windows refuses more than 64 KiB). */
#define WTG_EA_MAX 65536

/* True when @buf is a well-formed $EA value, by the checks ntfs-3g makes
 * before it writes one: every entry's offset moves forward by a multiple
 * of 4 inside the buffer, its name is non-empty and NUL-terminated, and its
 * name and value fill the entry up to the padding. */
bool wtg_ea_valid(const uint8_t *buf, size_t len);

/* The value of the entry named @name (exact bytes, as NTFS compares EA
 * names once upper-cased) in a valid $EA: 0 and *value_ret, *len_ret, or
 * -ENODATA. */
int wtg_ea_find(const uint8_t *buf, size_t len, const char *name, const uint8_t **value_ret,
		size_t *len_ret);

/* The $EA WSL gives a special file of POSIX mode @mode (type and
 * permission bits): $LXMOD, and $LXDEV for a character or block device
 * (@major, @minor).  *buf_ret is malloc'd. */
int wtg_ea_make_wsl(uint32_t mode, uint32_t major, uint32_t minor, uint8_t **buf_ret,
		    size_t *len_ret);

/* The device number $LXDEV holds: 0, or -ENODATA when @buf has none of
 * the right size. */
int wtg_ea_wsl_dev(const uint8_t *buf, size_t len, uint32_t *major_ret, uint32_t *minor_ret);

/* The le32 value of the entry @name ($LXUID, $LXGID, $LXMOD as WSL's DrvFs
 * "metadata" keeps them): 0, or -ENODATA when @buf has none of 4 bytes. */
int wtg_ea_wsl_u32(const uint8_t *buf, size_t len, const char *name, uint32_t *value_ret);

/* A new $EA (*buf_ret malloc'd): @buf's entries (NULL: none) in their
 * order, less those named in @names, then one le32 entry per name with
 * its value.  -EINVAL when @buf is malformed, -ENOSPC past WTG_EA_MAX. */
int wtg_ea_put_u32(const uint8_t *buf, size_t len, const char *const *names,
		   const uint32_t *values, size_t n, uint8_t **buf_ret, size_t *len_ret);

#endif
