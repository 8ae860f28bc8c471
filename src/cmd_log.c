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
			    "  --json   one JSON object on one line, for scripts\n";

static const struct option options[] = {
    {"json", no_argument, NULL, 'j'},
    CLI_OPTIONS_END,
};

static const struct cli_command cmd = {"log", usage, "", options};

static void when(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0 || !gmtime_r(&tt, &tm) || !strftime(buf, size, "%Y-%m-%d %H:%M:%SZ", &tm))
		snprintf(buf, size, "-");
}

static void print_json(const char *path, const struct wtg_store_base *base,
		       const struct wtg_store_layer *layers, size_t n)
{
	struct json_object *o = json_object_new_object(), *b = json_object_new_object(),
			   *list = json_object_new_array();

	cli_json_add_name(o, "delta", path);
	cli_json_add_name(b, "path", base->path);
	cli_json_add_u64(b, "size", base->size);
	cli_json_add_string(b, "id", base->guid);
	cli_json_add_u64(b, "index", base->index);
	json_object_object_add(o, "base", b);
	for (size_t i = 0; i < n; i++) {
		const struct wtg_store_layer *l = &layers[i];
		struct json_object *j = json_object_new_object();
		cli_json_add_i64(j, "id", l->id);
		cli_json_add_i64(j, "parent", l->parent);
		cli_json_add_bool(j, "head", l->head);
		cli_json_add_i64(j, "created", l->created);
		cli_json_add_i64(j, "sealed", l->sealed);
		cli_json_add_string_or_null(j, "snapshot", l->snapshot);
		cli_json_add_string_or_null(j, "message", l->message);
		cli_json_add_u64(j, "inodes", l->inodes);
		cli_json_add_u64(j, "names", l->names);
		cli_json_add_u64(j, "extents", l->extents);
		cli_json_add_u64(j, "chunk_bytes", l->chunk_bytes);
		json_object_array_add(list, j);
	}
	json_object_object_add(o, "layers", list);
	cli_json_print(o, CLI_JSON_LINE);
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

	int c;
	while ((c = cli_getopt(&cmd, argc, argv)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		default:
			return cli_getopt_exit(c);
		}
	}
	if (optind == argc)
		return cli_usage_error(&cmd, "DELTA is missing");
	if (argc - optind > 1)
		return cli_usage_error(&cmd, "one DELTA at a time");
	path = argv[optind];
	if (wtg_store_open(path, &opt, &store) < 0)
		return EXIT_ERROR;
	wtg_store_get_base(store, &base);
	if (wtg_store_list_layers(store, &layers, &n) < 0) {
		wtg_store_close(store);
		return EXIT_ERROR;
	}
	if (json) {
		print_json(path, &base, layers, n);
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
