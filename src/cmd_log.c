/*
 * wtgfs log DELTA [--all] [--json]: the base, then the layers as the tree
 * they form (a rollback starts a branch), with names, messages, times, the
 * files each layer changed and the bytes it stores.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "wtgfs/store.h"

static const char usage[] =
    "usage: wtgfs log DELTA [--all] [--json]\n"
    "\n"
    "Shows the base a delta is bound to and its layers as a tree, from the\n"
    "base down: each snapshot with its name, message and when it was taken,\n"
    "HEAD (the working layer), and per layer the files it changed and the\n"
    "bytes of the chunks it stores.  A rollback starts a new branch; the\n"
    "working layer it left is kept under a name of its own ('abandoned-N'),\n"
    "shown with --all, until 'wtgfs gc' expires it.\n"
    "\n"
    "  -a, --all   also the layers rollbacks left\n"
    "      --json  one JSON object on one line, for scripts: the layers in\n"
    "              parent-before-child order, each with its parent's id\n";

static const struct option options[] = {
    {"all", no_argument, NULL, 'a'},
    {"json", no_argument, NULL, 'j'},
    CLI_OPTIONS_END,
};

static const struct cli_command cmd = {"log", usage, "a", options};

static void when(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0 || !gmtime_r(&tt, &tm) || !strftime(buf, size, "%Y-%m-%d %H:%M:%SZ", &tm))
		snprintf(buf, size, "-");
}

struct log {
	struct wtg_store_layer *l;
	size_t n;
	bool *shown;
};

static size_t index_of(const struct log *g, int64_t id)
{
	for (size_t i = 0; i < g->n; i++)
		if (g->l[i].id == id)
			return i;
	return g->n;
}

/* What is shown: HEAD, the snapshots and what they stand on; with --all
 * every layer. */
static int choose(struct log *g, bool all)
{
	g->shown = calloc(g->n ? g->n : 1, sizeof(*g->shown));
	if (!g->shown)
		return -1;
	for (size_t i = 0; i < g->n; i++) {
		const struct wtg_store_layer *l = &g->l[i];
		if (!all && !l->head && !(l->snapshot && !l->abandoned))
			continue;
		for (size_t j = i; j < g->n && !g->shown[j]; j = index_of(g, g->l[j].parent))
			g->shown[j] = true;
	}
	return 0;
}

static void print_layer(const struct wtg_store_layer *l, const char *lead)
{
	char t[32];

	if (l->head)
		printf("HEAD (layer %" PRId64 ")", l->id);
	else if (l->snapshot)
		printf("%s (layer %" PRId64 "%s)", l->snapshot, l->id,
		       l->abandoned ? ", left by a rollback" : "");
	else
		printf("layer %" PRId64, l->id);
	when(l->head ? l->created : l->sealed, t, sizeof(t));
	printf("  %s %s\n", l->head ? "since" : l->abandoned ? "left" : "taken", t);
	if (l->message)
		printf("%s    %s\n", lead, l->message);
	printf("%s    %" PRIu64 " file%s changed, %" PRIu64 " bytes stored\n", lead, l->files,
	       l->files == 1 ? "" : "s", l->chunk_bytes);
}

static void print_tree(const struct log *g, int64_t parent, char *lead, size_t lead_len)
{
	size_t last = g->n;

	for (size_t i = 0; i < g->n; i++)
		if (g->shown[i] && g->l[i].parent == parent)
			last = i;
	for (size_t i = 0; i < g->n; i++) {
		if (!g->shown[i] || g->l[i].parent != parent)
			continue;
		bool is_last = i == last;
		printf("%s%s", lead, is_last ? "`-- " : "|-- ");
		size_t len = strlen(lead);
		if (len + 5 < lead_len)
			strcpy(lead + len, is_last ? "    " : "|   ");
		print_layer(&g->l[i], lead);
		print_tree(g, g->l[i].id, lead, lead_len);
		lead[len] = '\0';
	}
}

static void print_json(const char *path, const struct wtg_store_base *base, const struct log *g)
{
	struct json_object *o = json_object_new_object(), *b = json_object_new_object(),
			   *list = json_object_new_array();

	cli_json_add_name(o, "delta", path);
	cli_json_add_name(b, "path", base->path);
	cli_json_add_u64(b, "size", base->size);
	cli_json_add_string(b, "id", base->guid);
	cli_json_add_u64(b, "index", base->index);
	json_object_object_add(o, "base", b);
	for (size_t i = 0; i < g->n; i++) {
		const struct wtg_store_layer *l = &g->l[i];
		if (!g->shown[i])
			continue;
		struct json_object *j = json_object_new_object();
		cli_json_add_i64(j, "id", l->id);
		cli_json_add_i64(j, "parent", l->parent);
		cli_json_add_bool(j, "head", l->head);
		cli_json_add_bool(j, "in_head", l->in_stack);
		cli_json_add_i64(j, "created", l->created);
		cli_json_add_i64(j, "sealed", l->sealed);
		cli_json_add_string_or_null(j, "snapshot", l->snapshot && !l->abandoned ? l->snapshot
											 : NULL);
		cli_json_add_string_or_null(j, "abandoned", l->abandoned ? l->snapshot : NULL);
		if (l->abandoned)
			cli_json_add_i64(j, "abandoned_at", l->abandoned);
		else
			json_object_object_add(j, "abandoned_at", NULL);
		cli_json_add_string_or_null(j, "message", l->message);
		cli_json_add_u64(j, "files", l->files);
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
	bool json = false, all = false;
	struct wtg_store *store;
	struct wtg_store_options opt = {.read_only = true};
	struct wtg_store_base base;
	struct log g = {0};
	int c;

	while ((c = cli_getopt(&cmd, argc, argv)) != -1) {
		switch (c) {
		case 'a':
			all = true;
			break;
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
	const char *path = argv[optind];
	if (wtg_store_open(path, &opt, &store) < 0)
		return EXIT_ERROR;
	wtg_store_get_base(store, &base);
	int ret = wtg_store_list_layers(store, &g.l, &g.n);
	wtg_store_close(store);
	if (ret < 0 || choose(&g, all) < 0) {
		wtg_store_layers_free(g.l, g.n);
		return EXIT_ERROR;
	}
	if (json) {
		print_json(path, &base, &g);
	} else {
		char lead[256] = "";
		printf("base %s (%" PRIu64 " bytes, id %s", base.path, base.size,
		       base.guid[0] ? base.guid : "-");
		if (base.index)
			printf(", image %u", base.index);
		printf(")\n");
		print_tree(&g, 0, lead, sizeof(lead));
	}
	free(g.shown);
	wtg_store_layers_free(g.l, g.n);
	return 0;
}
