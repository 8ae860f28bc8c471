/*
 * Windows name rules on UTF-8 strings: case folding for case-insensitive,
 * case-preserving lookups, and what a name may hold.
 *
 * Names come from images as UTF-8 that may carry unpaired surrogates
 * (WTF-8: ED A0..BF xx); such sequences and any other byte that is not valid
 * UTF-8 compare as themselves, so no name is ever lost or merged by accident.
 * Folding maps each code point through towupper() of the C.UTF-8 locale,
 * which is Unicode's simple uppercase mapping, close to NTFS's $UpCase.
 */
#ifndef WTGFS_NAMES_H
#define WTGFS_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Hash of the folded name: names equal ignoring case hash equal. */
uint32_t wtg_name_hash(const char *name, size_t len);

/* True when @a and @b are equal ignoring case. */
bool wtg_name_equal_ci(const char *a, size_t alen, const char *b, size_t blen);

/* True when a name can appear in a POSIX directory: not empty, not "." or
 * "..", no '/' and no NUL. */
bool wtg_name_posix_ok(const char *name, size_t len);

/* True when Windows can hold the name: wtg_name_posix_ok(), and no
 * \ : * ? " < > | or control character, no trailing dot or space, not a
 * reserved device name (CON, PRN, AUX, NUL, COM1-9, LPT1-9, with or without
 * an extension), at most 255 UTF-16 units. */
bool wtg_name_windows_ok(const char *name, size_t len);

/* Converts @units UTF-16LE code units to UTF-8 (unpaired surrogates become
 * WTF-8, as wimlib hands them out).  Returns the length written (NUL
 * terminated), or -ENAMETOOLONG when @size is too small. */
long wtg_utf16le_to_utf8(const uint8_t *in, size_t units, char *out, size_t size);

/* Converts UTF-8 (WTF-8 surrogates pass through as themselves) to at most
 * @units UTF-16LE code units.  Returns the units written, -EINVAL for bytes
 * that are not UTF-8, -ENAMETOOLONG when @units is too few. */
long wtg_utf8_to_utf16le(const char *in, size_t len, uint8_t *out, size_t units);

#endif
