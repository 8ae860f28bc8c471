/*
 * Fuzz target: the input is an NTFS $EA value, as an NTFS base or a
 * setxattr of system.ntfs_ea hands it over.  wtg_ea_find and
 * wtg_ea_wsl_dev must stay inside it whether or not it is valid (the tree
 * reads a base's $EA unchecked), and what wtg_ea_valid accepts must be
 * walkable to its end; a WSL $EA built from its first bytes must be valid
 * and say what it was built from.  Any disagreement traps.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wtgfs/ea.h"
#include "wtgfs/ntfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact copy, so that a read past the end is caught */
	uint8_t *ea = malloc(size ? size : 1);
	const uint8_t *v;
	size_t n;
	uint32_t major, minor;

	if (!ea)
		return 0;
	memcpy(ea, data, size);
	bool valid = wtg_ea_valid(ea, size);
	if (wtg_ea_find(ea, size, "$LXMOD", &v, &n) == 0 && (v < ea || v + n > ea + size))
		__builtin_trap();
	if (wtg_ea_wsl_dev(ea, size, &major, &minor) == 0 &&
	    wtg_ea_find(ea, size, "$LXDEV", &v, &n) != 0)
		__builtin_trap();
	if (valid && size >= 8) {
		/* the first entry's name is found again */
		char name[256];
		memcpy(name, ea + 8, ea[5]);
		name[ea[5]] = '\0';
		if (!memchr(name, '\0', ea[5]) && wtg_ea_find(ea, size, name, &v, &n) != 0)
			__builtin_trap();
	}
	free(ea);
	if (size >= 12) {
		uint32_t mode = ntfs_get_le32(data), a = ntfs_get_le32(data + 4),
			 b = ntfs_get_le32(data + 8);
		uint8_t *w;
		if (wtg_ea_make_wsl(mode, a, b, &w, &n) == 0) {
			uint32_t type = mode & 0170000;
			bool dev = type == 0020000 || type == 0060000;
			if (!wtg_ea_valid(w, n) || wtg_ea_find(w, n, "$LXMOD", &v, &size) ||
			    ntfs_get_le32(v) != mode ||
			    (wtg_ea_wsl_dev(w, n, &major, &minor) == 0) != dev ||
			    (dev && (major != a || minor != b)))
				__builtin_trap();
			free(w);
		}
	}
	return 0;
}
