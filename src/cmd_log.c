/*
 * wtgfs log DELTA [--json]: the base, then the layers and snapshots from
 * the working layer down.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "wtgfs/store.h"

static const char usage[] = "usage: wtgfs log DELTA [--json]\n"
			    "\n"
			    "Shows the base a delta is bound to and its layers from the working\n"
			    "layer (HEAD) down: snapshot names and messages, when each was made\n"
			    "and sealed, how many records it holds and the bytes of its chunks.\n"
			    "\n"
			    "  --json   one JSON object, for scripts\n";

static void when(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0 || !gmtime_r(&tt, &tm) || !strftime(buf, size, "%Y-%m-%d %H:%M:%SZ", &tm))
		snprintf(buf, size, "-");
}

int cmd_log(int argc, char **argv)
{
	const char *path = NULL;
	bool json = false;
	struct wtg_store *store;
	struct wtg_store_options opt = {.read_only = true};
	struct wtg_store_base base;
	struct wtg_store_layer *layers;
	size_t n;

	if (cli_wants_help(argc, argv, usage))
		return 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (argv[i][0] == '-')
			return cli_usage_error(usage, "unknown option '%s'", argv[i]);
		else if (path)
			return cli_usage_error(usage, "one DELTA at a time");
		else
			path = argv[i];
	}
	if (!path)
		return cli_usage_error(usage, "DELTA is missing");
	if (wtg_store_open(path, &opt, &store) < 0)
		return EXIT_ERROR;
	wtg_store_get_base(store, &base);
	if (wtg_store_list_layers(store, &layers, &n) < 0) {
		wtg_store_close(store);
		return EXIT_ERROR;
	}
	if (json) {
		printf("{\"delta\":");
		cli_json_string(stdout, path);
		printf(",\"base\":{\"path\":");
		cli_json_string(stdout, base.path);
		printf(",\"size\":%" PRIu64 ",\"id\":", base.size);
		cli_json_string(stdout, base.guid);
		printf(",\"index\":%u},\"layers\":[", base.index);
		for (size_t i = 0; i < n; i++) {
			const struct wtg_store_layer *l = &layers[i];
			printf("%s{\"id\":%" PRId64 ",\"parent\":%" PRId64
			       ",\"head\":%s,\"created\":%" PRId64 ",\"sealed\":%" PRId64
			       ",\"snapshot\":",
			       i ? "," : "", l->id, l->parent, l->head ? "true" : "false",
			       l->created, l->sealed);
			if (l->snapshot)
				cli_json_string(stdout, l->snapshot);
			else
				printf("null");
			printf(",\"message\":");
			if (l->message)
				cli_json_string(stdout, l->message);
			else
				printf("null");
			printf(",\"inodes\":%" PRIu64 ",\"names\":%" PRIu64 ",\"extents\":%" PRIu64
			       ",\"chunk_bytes\":%" PRIu64 "}",
			       l->inodes, l->names, l->extents, l->chunk_bytes);
		}
		printf("]}\n");
	} else {
		printf("base: %s (%" PRIu64 " bytes, id %s", base.path, base.size,
		       base.guid[0] ? base.guid : "-");
		if (base.index)
			printf(", %u", base.index);
		printf(")\n");
		for (size_t i = 0; i < n; i++) {
			const struct wtg_store_layer *l = &layers[i];
			char created[32], sealed[32];
			when(l->created, created, sizeof(created));
			when(l->sealed, sealed, sizeof(sealed));
			printf("layer %" PRId64 "%s%s%s  created %s  %s%s\n", l->id,
			       l->head ? " (HEAD)" : "", l->snapshot ? "  snapshot " : "",
			       l->snapshot ? l->snapshot : "", created, l->sealed ? "sealed " : "",
			       l->sealed ? sealed : "");
			if (l->message)
				printf("    %s\n", l->message);
			printf("    %" PRIu64 " inodes, %" PRIu64 " names, %" PRIu64
			       " extents, %" PRIu64 " bytes of chunks\n",
			       l->inodes, l->names, l->extents, l->chunk_bytes);
		}
	}
	wtg_store_layers_free(layers, n);
	wtg_store_close(store);
	return 0;
}
