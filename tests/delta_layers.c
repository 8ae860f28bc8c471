/*
 * delta_layers snapshot DELTA NAME | rollback DELTA NAME: takes a snapshot
 * of, or rolls back, a closed delta through the store's own calls, for the
 * diff tests to build versions with.  Exit 0, or 1 after one line.
 */
#include <stdio.h>
#include <string.h>

#include "wtgfs/store.h"

int main(int argc, char **argv)
{
	struct wtg_store_options opt = {0};
	struct wtg_store *st;
	int r;

	if (argc != 4 || (strcmp(argv[1], "snapshot") && strcmp(argv[1], "rollback"))) {
		fprintf(stderr, "usage: delta_layers snapshot|rollback DELTA NAME\n");
		return 1;
	}
	if (wtg_store_open(argv[2], &opt, &st))
		return 1;
	r = !strcmp(argv[1], "snapshot") ? wtg_store_snapshot(st, argv[3], NULL)
					 : wtg_store_rollback(st, argv[3], NULL);
	if (wtg_store_close(st) || r) {
		fprintf(stderr, "delta_layers: %s failed\n", argv[1]);
		return 1;
	}
	return 0;
}
