/*
 * Fuzz target: the input is a parent directory's security descriptor, as
 * read from an image.  It goes through wtg_sd_valid and wtg_sd_inherit for a
 * file and a directory child; a child must be valid itself and have children
 * of its own, and inherit must agree with valid.  Any disagreement traps.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wtgfs/sd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_child(const uint8_t *child, size_t len)
{
	uint8_t *grandchild;
	size_t glen;

	if (!wtg_sd_valid(child, len))
		__builtin_trap();
	for (int is_dir = 0; is_dir < 2; is_dir++) {
		int ret = wtg_sd_inherit(child, len, is_dir, &grandchild, &glen);
		if (ret == -EOVERFLOW || ret == -ENOMEM)
			continue;
		if (ret || !wtg_sd_valid(grandchild, glen))
			__builtin_trap();
		free(grandchild);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact copy, so that a read past the end is caught */
	uint8_t *sd = malloc(size ? size : 1);

	if (!sd)
		return 0;
	memcpy(sd, data, size);
	bool valid = wtg_sd_valid(sd, size);
	for (int is_dir = 0; is_dir < 2; is_dir++) {
		uint8_t *child = NULL;
		size_t len = 0;
		int ret = wtg_sd_inherit(sd, size, is_dir, &child, &len);
		if (ret == 0) {
			if (!valid)
				__builtin_trap();
			check_child(child, len);
			free(child);
		} else if (child || (ret != -EINVAL && ret != -EOVERFLOW && ret != -ENOMEM)) {
			__builtin_trap();
		}
	}
	free(sd);
	return 0;
}
