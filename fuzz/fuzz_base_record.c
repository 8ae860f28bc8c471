/*
 * Fuzz target: the input is a packed record of a delta's base index (what
 * diff reads of a base inode, src/base_index.c), outside bytes like the
 * rest of a delta.  Unpacking must stay inside the input, and a record it
 * accepts must pack into bytes that unpack again and pack the same (the
 * input itself may spell a number or a flag in ways packing does not):
 * anything else traps.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wtgfs/base_index.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact copy, so that a read past the end is caught */
	uint8_t *rec = malloc(size ? size : 1), *again;
	struct wtg_base_inode *in;
	size_t n;

	if (!rec)
		return 0;
	memcpy(rec, data, size);
	if (wtg_base_record_unpack(rec, size, 5, &in) == 0) {
		struct wtg_base_inode *in2;
		uint8_t *twice;
		size_t n2;
		if (in->ino != 5 || wtg_base_record_pack(in, &again, &n) != 0)
			__builtin_trap();
		if (wtg_base_record_unpack(again, n, 5, &in2) != 0 ||
		    wtg_base_record_pack(in2, &twice, &n2) != 0 || n2 != n || memcmp(twice, again, n))
			__builtin_trap();
		free(twice);
		free(again);
		wtg_base_record_free(in2);
		wtg_base_record_free(in);
	}
	free(rec);
	return 0;
}
